#!/usr/bin/env python3
"""A byte-transparent TCP relay that logs HTTP request heads (and chunked trailers) on the way through.

  wirelog.py LISTEN_PORT http://127.0.0.1:TARGET_PORT LOGFILE

Used by run.sh with E2E_WIRELOG=1 to see exactly what each client sends. Bytes are forwarded unchanged,
so signatures computed over Host still verify. Bodies are not logged, only their framing: Content-Length,
or for Transfer-Encoding: chunked the number of chunks, total size and any trailer lines. Response status
lines are logged when a read from the server starts with one (best effort).
"""

import asyncio
import sys
import time
from urllib.parse import urlsplit

LOG = None
_conn_ids = 0


def log(cid, msg):
    LOG.write(f"{time.strftime('%H:%M:%S')} c{cid} {msg}\n")
    LOG.flush()


async def pump_requests(cid, reader, writer):
    """Client -> server: parse request framing so request heads can be logged."""
    buf = b""

    async def fill(n=65536):
        nonlocal buf
        data = await reader.read(n)
        if not data:
            raise EOFError
        buf += data

    async def forward(n):
        nonlocal buf
        while n > 0:
            if not buf:
                await fill()
            take = min(n, len(buf))
            writer.write(buf[:take])
            buf = buf[take:]
            n -= take
            await writer.drain()

    async def read_line():
        nonlocal buf
        while b"\r\n" not in buf:
            await fill()
        i = buf.index(b"\r\n") + 2
        line, buf = buf[:i], buf[i:]
        writer.write(line)
        return line

    try:
        while True:
            while b"\r\n\r\n" not in buf:
                await fill()
            i = buf.index(b"\r\n\r\n") + 4
            head, buf = buf[:i], buf[i:]
            writer.write(head)
            await writer.drain()
            lines = head.decode("latin-1").split("\r\n")
            log(cid, ">> " + lines[0])
            headers = {}
            for h in lines[1:]:
                if not h:
                    continue
                log(cid, "   " + h)
                k, _, v = h.partition(":")
                headers[k.strip().lower()] = v.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                chunks = total = 0
                while True:
                    line = await read_line()
                    size = int(line.split(b";")[0].strip(), 16)
                    if size == 0:
                        while True:  # trailers
                            t = await read_line()
                            if t == b"\r\n":
                                break
                            log(cid, "   [trailer] " + t.decode("latin-1").rstrip())
                        await writer.drain()
                        break
                    chunks += 1
                    total += size
                    await forward(size + 2)
                log(cid, f"   [TE chunked body: {chunks} HTTP chunks, {total} bytes]")
            elif "content-length" in headers:
                await forward(int(headers["content-length"]))
    except (EOFError, ConnectionError, ValueError):
        pass
    finally:
        try:
            if buf:
                writer.write(buf)
            writer.close()
        except Exception:  # noqa: BLE001
            pass


async def pump_responses(cid, reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if data.startswith(b"HTTP/1."):
                log(cid, "<< " + data.split(b"\r\n", 1)[0].decode("latin-1"))
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        try:
            writer.close()
        except Exception:  # noqa: BLE001
            pass


async def main():
    global LOG
    port = int(sys.argv[1])
    target = urlsplit(sys.argv[2])
    LOG = open(sys.argv[3], "a", encoding="utf-8")

    async def handle(creader, cwriter):
        global _conn_ids
        _conn_ids += 1
        cid = _conn_ids
        try:
            sreader, swriter = await asyncio.open_connection(target.hostname, target.port)
        except OSError as e:
            log(cid, f"!! connect to target failed: {e}")
            cwriter.close()
            return
        await asyncio.gather(pump_requests(cid, creader, swriter), pump_responses(cid, sreader, cwriter))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
