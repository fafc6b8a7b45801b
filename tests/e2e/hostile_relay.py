#!/usr/bin/env python3
"""A byte-recording TCP relay and a canary listener, for the `hostile` group.

Relay: listens on 127.0.0.1 (port 0 by default), connects each accepted connection to the target and pumps
bytes both ways, unchanged. Every byte the proxy sends (proxy -> origin direction) is appended, per
connection, to LOGDIR/relay-cNNNN.bin and kept in memory, so a test can take a mark before a request and
ask afterwards what went to the origin since then. Responses are forwarded, not recorded.

Canary: a listening socket that must never be connected to; it counts and records what connects.

Both run in daemon threads of the calling process. As a program (for poking by hand):

  hostile_relay.py LISTEN_PORT http://127.0.0.1:TARGET_PORT LOGDIR
"""

import os
import socket
import sys
import threading
import time
from urllib.parse import urlsplit


class Relay:
    def __init__(self, target_host, target_port, logdir, listen_port=0):
        self.target = (target_host, target_port)
        self.logdir = logdir
        os.makedirs(logdir, exist_ok=True)
        self.lock = threading.Lock()
        self.conns = []  # per connection: bytearray of everything the proxy sent
        self.total = 0
        self.last_activity = time.monotonic()
        # optional bytes -> bytes applied to what goes to the origin (recorded as the proxy sent it); a test
        # uses it to make the origin refuse the proxy's own signature
        self.tamper = None
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", listen_port))
        self.srv.listen(128)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept_loop, name="relay-accept", daemon=True).start()

    # ------------------------------------------------------------ inspection
    def mark(self):
        """(connections so far, bytes per connection so far): pass it to since()."""
        with self.lock:
            return len(self.conns), [len(c) for c in self.conns]

    def since(self, mark):
        """Bytes the proxy sent to the origin after `mark`: (new connections, [bytes of each connection that
        grew, old ones first]). Bytes of one connection are contiguous; different connections are not joined."""
        n, lens = mark
        with self.lock:
            out = []
            for i, c in enumerate(self.conns):
                start = lens[i] if i < n else 0
                if len(c) > start:
                    out.append(bytes(c[start:]))
            return len(self.conns) - n, out

    def quiet(self, secs=0.03, limit=1.0):
        """Wait until nothing has arrived for `secs` (at most `limit` seconds)."""
        deadline = time.monotonic() + limit
        time.sleep(secs)
        while time.monotonic() < deadline:
            with self.lock:
                idle = time.monotonic() - self.last_activity
            if idle >= secs:
                return
            time.sleep(secs - idle)

    # ------------------------------------------------------------ plumbing
    def _accept_loop(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with self.lock:
                cid = len(self.conns)
                buf = bytearray()
                self.conns.append(buf)
                self.last_activity = time.monotonic()
            threading.Thread(target=self._serve, args=(c, cid, buf), name=f"relay-c{cid}", daemon=True).start()

    def _serve(self, client, cid, buf):
        try:
            upstream = socket.create_connection(self.target, timeout=10)
            upstream.settimeout(None)
        except OSError as e:
            sys.stderr.write(f"relay c{cid}: connect to {self.target} failed: {e}\n")
            client.close()
            return
        log = open(os.path.join(self.logdir, f"relay-c{cid:04d}.bin"), "ab")  # noqa: SIM115
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def up():  # proxy -> origin: recorded
            try:
                while True:
                    data = client.recv(65536)
                    if not data:
                        break
                    with self.lock:
                        buf.extend(data)
                        self.total += len(data)
                        self.last_activity = time.monotonic()
                    log.write(data)
                    log.flush()
                    tamper = self.tamper
                    upstream.sendall(tamper(data) if tamper else data)
            except OSError:
                pass
            finally:
                try:
                    upstream.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        t = threading.Thread(target=up, name=f"relay-c{cid}-up", daemon=True)
        t.start()
        try:  # origin -> proxy: passed through
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                with self.lock:
                    self.last_activity = time.monotonic()
                client.sendall(data)
        except OSError:
            pass
        finally:
            try:
                client.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        t.join(timeout=30)
        for s in (client, upstream):
            try:
                s.close()
            except OSError:
                pass
        log.close()


class Canary:
    """A listening socket nobody should connect to. `count()` is the number of connections accepted."""

    def __init__(self):
        self.lock = threading.Lock()
        self.accepted = []  # (peer, first bytes)
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._loop, name="canary", daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, peer = self.srv.accept()
            except OSError:
                return
            c.settimeout(0.5)
            try:
                first = c.recv(4096)
            except OSError:
                first = b""
            with self.lock:
                self.accepted.append((peer, first))
            c.close()

    def count(self):
        with self.lock:
            return len(self.accepted)

    def last(self):
        with self.lock:
            return self.accepted[-1] if self.accepted else None


if __name__ == "__main__":
    target = urlsplit(sys.argv[2])
    r = Relay(target.hostname, target.port, sys.argv[3], int(sys.argv[1]))
    print(f"relay 127.0.0.1:{r.port} -> {target.hostname}:{target.port}, logs in {sys.argv[3]}", flush=True)
    threading.Event().wait()
