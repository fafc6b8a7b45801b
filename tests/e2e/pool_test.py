#!/usr/bin/env python3
"""The `pool` group (issue 14): two origins, one proxy each, HAProxy in front with deploy/haproxy.cfg.

Self-contained: it starts two s3s-fs origins (A and B) holding the same objects (written to both with the
origin credentials), one proxy per origin (E2E_PROXY_BIN_PATH) and HAProxy running the shipped
deploy/haproxy.cfg byte for byte (its addresses come from the environment: HAPROXY_BIND, PROXY_A, PROXY_B,
HAPROXY_STATS_SOCKET), each on a free port with its log in $E2E_WORK/pool/, and stops them at exit.
Clients are boto3, path-style, with botocore's retries off (total_max_attempts 1; RetryAttempts asserted 0):
every failure HAProxy lets through is counted.

  failover  a bounded loop of GET and HEAD through HAProxy (at least 600 requests, and at least 100 after
            HAProxy marks A down); origin A gets SIGKILL at request 200. Zero failed requests, the detection
            window included; HAProxy marks proxy-a DOWN (admin socket `show stat`, check code 450).
  policy    origin A still dead, proxy-a put back into rotation (`disable health`, `set server ... health up`):
            GETs that reach it are retried on proxy-b; PUT (small, no Expect), DELETE and POST are not (502 to
            the client, nothing done at origin B).
  recover   origin A restarted on its port and data: HAProxy marks proxy-a UP again.
  drain     20 downloads of a 50 MB object straight from proxy B, paced to last past the drain grace; proxy B
            gets SIGTERM: its /healthz says draining within 100 ms, HAProxy marks it DOWN and sends it no new
            request, a GET/HEAD loop through HAProxy meanwhile sees zero failures, the 20 downloads complete
            byte-identical, and B exits 0.

The figures (requests, failures, detection time, drain timings) are printed as `# pool:` lines.
Knobs: E2E_POOL_CFG (another HAProxy file, to check the group against a weaker configuration).
"""

import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import e2elib as t

MiB = 1024 * 1024
REGION = os.environ.get("E2E_REGION", "us-east-1")
HERE = os.environ.get("E2E_HERE") or os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CFG = os.environ.get("E2E_POOL_CFG") or os.path.join(ROOT, "deploy", "haproxy.cfg")
WORK = os.path.join(os.environ["E2E_WORK"], "pool")
CLIENT_AK = os.environ.get("E2E_CLIENT_ACCESS_KEY", "")
CLIENT_SK = os.environ.get("E2E_CLIENT_SECRET_KEY", "")
ORIGIN_AK = os.environ["E2E_ORIGIN_ACCESS_KEY"]
ORIGIN_SK = os.environ["E2E_ORIGIN_SECRET_KEY"]
PROXY_BIN = os.environ.get("E2E_PROXY_BIN_PATH", "")
S3SFS_BIN = os.environ.get("E2E_S3SFS_BIN") or os.path.expanduser("~/.cache/s3rp-e2e/s3s-fs/bin/s3s-fs")

BUCKET = "pool"
SMALL = 32  # small objects the loops read
BIG_KEY = "big-50m"
BIG_SIZE = 50 * MiB
LOOP_MIN = 600  # requests in the failover loop, at least
KILL_AT = 200  # origin A dies after this request
AFTER_DOWN = 100  # requests the loop still makes once HAProxy has marked A down
LOOP_CAP_S = 40  # the loop's hard bound in time
DOWNLOADS = 20
DOWNLOAD_PACE_S = 7.0  # each download is read over this long: past DRAIN_GRACE (5 s), so the listener
# closes while they are in flight
DRAIN_HEALTHZ_MAX_S = 0.100


# ---------------------------------------------------------------------------------------------- processes
PROCS = t.Procs(WORK)
spawn, stop_all, wait_port = PROCS.spawn, PROCS.stop_all, PROCS.wait_port
free_port, find_bin = t.free_port, t.find_bin


def start_origin(name, port, data):
    p = spawn(name, [S3SFS_BIN, "--host", "127.0.0.1", "--port", str(port), "--access-key", ORIGIN_AK,
                     "--secret-key", ORIGIN_SK, data])
    wait_port(name, p, port)
    return p


# Settings of the suite's proxy (run.sh) or of the environment that must not leak into the pool's proxies.
PROXY_SETTINGS = ("VIRTUAL_HOST_DOMAINS", "ORIGIN_ADDRESSING", "PUBLIC_HOST", "ALLOWED_HOSTS", "TRUSTED_PROXIES",
                  "DRAIN_GRACE", "SHUTDOWN_TIMEOUT", "HEALTH_CACHE_MS", "METRICS_PORT", "TLS_CERT", "TLS_KEY")


def start_proxy(name, port, origin_port):
    env = dict(os.environ)
    for k in PROXY_SETTINGS:
        env.pop(k, None)
    env.update(CLIENT_ACCESS_KEY=CLIENT_AK, CLIENT_SECRET_KEY=CLIENT_SK, ORIGIN_ACCESS_KEY=ORIGIN_AK,
               ORIGIN_SECRET_KEY=ORIGIN_SK, ORIGIN_DOMAIN=f"http://127.0.0.1:{origin_port}", AWS_REGION=REGION,
               HOST="127.0.0.1", PORT=str(port), RUST_LOG=os.environ.get("RUST_LOG", "info"))
    p = spawn(name, [PROXY_BIN], env)
    wait_port(name, p, port)
    return p


# ---------------------------------------------------------------------------------------------- HAProxy
class HAProxy:
    """HAProxy running deploy/haproxy.cfg, and its admin socket."""

    def __init__(self, port, proxy_a, proxy_b):
        self.port = port
        self.sock = os.path.join(WORK, "haproxy.sock")
        self.log = os.path.join(WORK, "haproxy.log")
        haproxy = find_bin("haproxy")
        if not haproxy:
            raise RuntimeError("haproxy is not installed (apt-get install haproxy)")
        # The shipped file takes its addresses from the environment: nothing is rewritten.
        env = dict(os.environ, HAPROXY_BIND=f"127.0.0.1:{port}", PROXY_A=f"127.0.0.1:{proxy_a}",
                   PROXY_B=f"127.0.0.1:{proxy_b}", HAPROXY_STATS_SOCKET=self.sock)
        chk = subprocess.run([haproxy, "-c", "-f", CFG], env=env, capture_output=True, text=True, timeout=30)
        if chk.returncode != 0:
            raise RuntimeError(f"haproxy -c -f {CFG}: {(chk.stderr or chk.stdout).strip()[-600:]}")
        self.proc = spawn("haproxy", [haproxy, "-db", "-f", CFG], env)
        wait_port("haproxy", self.proc, port)

    def command(self, cmd):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(self.sock)
            s.sendall(cmd.encode() + b"\n")
            out = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        finally:
            s.close()
        return out.decode()

    def servers(self):
        """svname -> {status, stot, check_status, check_code, ...} of the backend s3_proxies."""
        lines = self.command("show stat").splitlines()
        head = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("pxname") == "s3_proxies" and row.get("svname") not in ("FRONTEND", "BACKEND"):
                out[row["svname"]] = row
        return out

    def wait_status(self, server, prefix, secs):
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            if self.servers()[server]["status"].startswith(prefix):
                return True
            time.sleep(0.05)
        return False

    def log_lines(self):
        with open(self.log, errors="replace") as f:
            return f.read().splitlines()


class Monitor(threading.Thread):
    """Polls `show stat` every 20 ms and records each server's status changes (monotonic time, status,
    sessions counted so far, check code)."""

    def __init__(self, hap):
        super().__init__(daemon=True)
        self.hap = hap
        self.events = []  # (t, server, status, stot, check_code)
        self.last = {}
        self.stot = {}
        self.errors = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        while not self.stop.is_set():
            try:
                rows = self.hap.servers()
            except Exception:  # noqa: BLE001 (counted; a test that needs a transition then fails on its own)
                self.errors += 1
                time.sleep(0.02)
                continue
            now = time.monotonic()
            with self.lock:
                for name, row in rows.items():
                    status = row["status"].split(" ")[0]
                    self.stot[name] = int(row.get("stot") or 0)
                    if self.last.get(name) != status:
                        self.last[name] = status
                        self.events.append((now, name, status, self.stot[name], row.get("check_code", "")))
            time.sleep(0.02)

    def first(self, server, status, after):
        with self.lock:
            for e in self.events:
                if e[1] == server and e[2] == status and e[0] >= after:
                    return e
        return None

    def sessions(self, server):
        with self.lock:
            return self.stot.get(server, 0)


# ---------------------------------------------------------------------------------------------- clients
def client(endpoint, ak=None, sk=None, pool=10):
    import boto3
    from botocore.config import Config

    # Retries off: a failure HAProxy lets through must reach the count, not be hidden by botocore. In
    # botocore `max_attempts` counts retries (1 = one retry, after a jittered sleep of up to 1 s);
    # `total_max_attempts` counts attempts. Loop.one also asserts RetryAttempts == 0 on every response.
    conf = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60,
                  signature_version="s3v4", s3={"addressing_style": "path"}, max_pool_connections=pool)
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak or CLIENT_AK,
                        aws_secret_access_key=sk or CLIENT_SK, region_name=REGION, config=conf)


def describe(e):
    r = getattr(e, "response", None) or {}
    st = r.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = (r.get("Error") or {}).get("Code")
    return f"{st} {code}" if st else f"{type(e).__name__}: {e}"


class Loop:
    """Sequential GET/HEAD requests of the small objects through HAProxy; counts failures."""

    def __init__(self, endpoint, objects, seed):
        self.c = client(endpoint)
        self.objects = objects
        self.keys = sorted(objects)
        self.rng = random.Random(seed)
        self.n = 0
        self.gets = 0
        self.heads = 0
        self.failures = []  # (i, t, op, key, why)
        self.times = []  # (t_start, seconds)

    def one(self):
        i = self.n
        self.n += 1
        key = self.rng.choice(self.keys)
        data = self.objects[key]
        t0 = time.monotonic()
        op = "GET" if i % 2 == 0 else "HEAD"
        try:
            if op == "GET":
                self.gets += 1
                r = self.c.get_object(Bucket=BUCKET, Key=key)
                body = r["Body"].read()
                if body != data:
                    raise AssertionError(f"body of {len(body)} bytes differs from the {len(data)} stored")
            else:
                self.heads += 1
                r = self.c.head_object(Bucket=BUCKET, Key=key)
                if r["ContentLength"] != len(data):
                    raise AssertionError(f"Content-Length {r['ContentLength']}, stored {len(data)}")
            if r["ResponseMetadata"].get("RetryAttempts"):
                raise AssertionError(f"botocore retried it {r['ResponseMetadata']['RetryAttempts']} times")
        except Exception as e:  # noqa: BLE001
            self.failures.append((i, t0, op, key, describe(e)))
        self.times.append((t0, time.monotonic() - t0))

    def failure_text(self, limit=5):
        return "; ".join(f"#{i} {op} {k}: {w}" for i, _t, op, k, w in self.failures[:limit])


def put_both(origins, key, data):
    for o in origins:
        o.put_object(Bucket=BUCKET, Key=key, Body=data)


def healthz(port, timeout=1.0):
    """(status, parsed JSON or None) of GET /healthz on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        body = r.read()
        try:
            return r.status, json.loads(body)
        except ValueError:
            return r.status, None
    finally:
        conn.close()


def log_figures(hap, since_line):
    """Requests HAProxy logged from line `since_line` on: per server, and how many it retried."""
    per_server, retried, redispatched = {}, 0, 0
    rx = re.compile(r" s3 s3_proxies/(\S+) \S+ (\d{3}) .* \d+/\d+/\d+/\d+/(\+?)(\d+) \d+/\d+ \"")
    for line in hap.log_lines()[since_line:]:
        m = rx.search(line)
        if not m:
            continue
        per_server[m.group(1)] = per_server.get(m.group(1), 0) + 1
        if int(m.group(4)) > 0:
            retried += 1
            if m.group(3):
                redispatched += 1
    return per_server, retried, redispatched


# ---------------------------------------------------------------------------------------------- tests
class Pool:
    def __init__(self):
        taken = set()
        self.ports = {k: free_port(taken) for k in ("OA", "OB", "PA", "PB", "H")}
        self.data = {k: os.path.join(WORK, f"origin-{k.lower()}") for k in ("A", "B")}
        for d in self.data.values():
            os.makedirs(d)
        self.origin_a = start_origin("origin-a", self.ports["OA"], self.data["A"])
        self.origin_b = start_origin("origin-b", self.ports["OB"], self.data["B"])
        origins = [client(f"http://127.0.0.1:{self.ports[k]}", ORIGIN_AK, ORIGIN_SK) for k in ("OA", "OB")]
        for o in origins:
            o.create_bucket(Bucket=BUCKET)
        rng = random.Random(14)
        self.objects = {}
        for i in range(SMALL):
            key = f"obj-{i:02d}"
            self.objects[key] = rng.randbytes(rng.randint(512, 32 * 1024))
            put_both(origins, key, self.objects[key])
        self.big = os.urandom(BIG_SIZE)
        self.big_sha = hashlib.sha256(self.big).hexdigest()
        put_both(origins, BIG_KEY, self.big)
        self.proxy_a = start_proxy("proxy-a", self.ports["PA"], self.ports["OA"])
        self.proxy_b = start_proxy("proxy-b", self.ports["PB"], self.ports["OB"])
        self.hap = HAProxy(self.ports["H"], self.ports["PA"], self.ports["PB"])
        self.endpoint = f"http://127.0.0.1:{self.ports['H']}"
        for s in ("proxy-a", "proxy-b"):
            if not self.hap.wait_status(s, "UP", 15):
                raise RuntimeError(f"HAProxy did not mark {s} UP within 15 s: {self.hap.servers()[s]}")
        self.monitor = Monitor(self.hap)
        self.monitor.start()


def failover(pool):
    hap, mon = pool.hap, pool.monitor
    loop = Loop(pool.endpoint, pool.objects, seed=1)
    log_mark = len(hap.log_lines())
    t_kill = None
    started = time.monotonic()
    down, n_at_down = None, 0
    while True:
        loop.one()
        if loop.n == KILL_AT:
            pool.origin_a.send_signal(signal.SIGKILL)
            t_kill = time.monotonic()
            pool.origin_a.wait(5)
        if t_kill is not None and down is None:
            down = mon.first("proxy-a", "DOWN", t_kill)
            if down is not None:
                n_at_down = loop.n
        if loop.n >= LOOP_MIN and down is not None and loop.n - n_at_down >= AFTER_DOWN:
            break
        if time.monotonic() - started > LOOP_CAP_S:
            break
    elapsed = time.monotonic() - started
    window = [(t0, d) for t0, d in loop.times if t_kill <= t0 <= (down[0] if down else time.monotonic())]
    per_server, retried, redispatched = log_figures(hap, log_mark)
    det_ms = (down[0] - t_kill) * 1000 if down else None
    slowest = max(d for _t, d in loop.times)
    t._out(f"# pool: failover loop: {loop.n} requests ({loop.gets} GET, {loop.heads} HEAD) in {elapsed:.1f} s, "
           f"{len(loop.failures)} failed; origin A SIGKILLed after request {KILL_AT}; HAProxy marked proxy-a DOWN "
           + (f"{det_ms:.0f} ms after the kill (check code {down[4]})" if down else "NEVER")
           + f"; {len(window)} requests in that window (slowest {max((d for _t, d in window), default=0) * 1000:.0f} ms"
           f", slowest overall {slowest * 1000:.0f} ms); HAProxy log: {per_server}, {retried} retried "
           f"({redispatched} redispatched)")

    def zero_failures():
        assert loop.n >= LOOP_MIN, f"the loop made {loop.n} requests in {LOOP_CAP_S} s, fewer than {LOOP_MIN}"
        assert not loop.failures, f"{len(loop.failures)} of {loop.n} requests failed: {loop.failure_text()}"
        assert window, "no request fell between the kill and HAProxy marking proxy-a down: the window was not tested"

    def marked_down():
        assert down is not None, f"HAProxy never marked proxy-a DOWN after origin A died: {hap.servers()['proxy-a']}"
        assert down[4] == "450", f"proxy-a went DOWN with check code {down[4]!r}, expected the proxy's 450"
        assert loop.n - n_at_down >= AFTER_DOWN, f"only {loop.n - n_at_down} requests after proxy-a went DOWN"

    t.run_test("pool/failover-zero-failures", zero_failures)
    t.run_test("pool/failover-haproxy-marks-down", marked_down)
    return det_ms


def origin_down_answer(pool):
    """What proxy A answers while its origin is dead: fast, and a status HAProxy retries (502/504)."""
    from botocore.exceptions import ClientError

    c = client(f"http://127.0.0.1:{pool.ports['PA']}")
    times, seen = [], []
    for i in range(5):
        t0 = time.monotonic()
        try:
            c.get_object(Bucket=BUCKET, Key=f"obj-{i:02d}")["Body"].read()
            seen.append("200")
        except ClientError as e:
            r = e.response
            seen.append(f"{r['ResponseMetadata']['HTTPStatusCode']} {r['Error'].get('Code')} "
                        f"Retry-After={r['ResponseMetadata'].get('HTTPHeaders', {}).get('retry-after')}")
        times.append(time.monotonic() - t0)
    t._out(f"# pool: proxy A with its origin dead answers {sorted(set(seen))} in "
           f"{min(times) * 1000:.1f}-{max(times) * 1000:.1f} ms")
    assert all(s.split()[0] in ("502", "504") for s in seen), f"proxy A answered {seen}, expected 502/504"
    assert max(times) < 1.0, f"proxy A took up to {max(times):.2f} s to answer (origin dead: refused at once)"


def retry_policy(pool):
    """With origin A still dead, proxy-a is put back into rotation (checks off, health set UP): reads sent
    to it are retried on proxy-b; writes are not: the client gets proxy A's 502, and nothing happens at
    origin B. The writes are ones HAProxy could replay without the rule: a small PUT whose body goes with
    its head (no `Expect: 100-continue`, which boto3 sends and which alone prevents a replay, as HAProxy 2.6
    replays only a request it has whole), a DELETE, and a POST (CreateMultipartUpload) with no body."""
    from botocore.exceptions import ClientError

    hap = pool.hap
    c = client(pool.endpoint)
    origin_b = client(f"http://127.0.0.1:{pool.ports['OB']}", ORIGIN_AK, ORIGIN_SK)

    def no_expect(request, **_kw):  # `expect` is never signed (botocore leaves it out)
        request.headers.pop("Expect", None)

    c.meta.events.register("before-send.s3.PutObject", no_expect)
    doomed = {f"del-{i:02d}": os.urandom(1024) for i in range(40)}  # at origin B; deleted only if replayed
    for k, v in doomed.items():
        origin_b.put_object(Bucket=BUCKET, Key=k, Body=v)
    out = hap.command("disable health s3_proxies/proxy-a") + hap.command("set server s3_proxies/proxy-a health up")
    refused = {"PUT": [], "DELETE": [], "POST": []}
    stored, deleted, reads, read_fail = [], [], 0, []
    try:
        if not hap.wait_status("proxy-a", "no check", 5):  # unchecked: in rotation
            raise AssertionError(f"proxy-a not in rotation after `disable health` and `set server ... health up` "
                                 f"({out.strip()!r}): {hap.servers()['proxy-a']}")
        mark = len(hap.log_lines())
        rng = random.Random(3)
        for i in range(len(doomed)):  # until each kind of write has met proxy-a 3 times
            if all(len(v) >= 3 for v in refused.values()) and i >= 8:
                break
            key, data = f"write-{i:02d}", os.urandom(4096)
            dkey = f"del-{i:02d}"
            steps = [("PUT", lambda: c.put_object(Bucket=BUCKET, Key=key, Body=data)), ("GET", None),
                     ("DELETE", lambda: c.delete_object(Bucket=BUCKET, Key=dkey)), ("GET", None),
                     ("POST", lambda: c.create_multipart_upload(Bucket=BUCKET, Key=f"mpu-{i:02d}"))]
            rng.shuffle(steps)  # which member a request meets depends on the ones before it
            for j, (op, fn) in enumerate(steps):
                if op == "GET":
                    rkey = f"obj-{(5 * i + j) % SMALL:02d}"
                    reads += 1
                    try:
                        if c.get_object(Bucket=BUCKET, Key=rkey)["Body"].read() != pool.objects[rkey]:
                            read_fail.append(f"{rkey}: body differs")
                    except ClientError as e:
                        read_fail.append(f"{rkey}: {describe(e)}")
                    continue
                try:
                    fn()
                    if op == "PUT":
                        stored.append((key, data))
                    elif op == "DELETE":
                        deleted.append(dkey)
                except ClientError as e:
                    refused[op].append(((key if op == "PUT" else dkey), describe(e)))
        lines = hap.log_lines()[mark:]
    finally:
        hap.command("enable health s3_proxies/proxy-a")
    _per_server, retried, redispatched = log_figures(hap, mark)
    retry_rx = re.compile(r" \d+/\d+/\d+/\d+/\+?[1-9]\d* \d+/\d+ \"(\S+) ")
    writes_retried = [ln for ln in lines if (m := retry_rx.search(ln)) and m.group(1) not in ("GET", "HEAD")]
    t._out(f"# pool: retry policy (proxy-a in rotation, origin A dead): "
           + ", ".join(f"{op} {len(v)} answered {sorted({w for _k, w in v})} by proxy-a" for op, v in refused.items())
           + f" (not retried; {len(stored)} PUTs and {len(deleted)} DELETEs done via proxy-b); {reads} GETs, "
           f"{len(read_fail)} failed, {retried} requests retried ({redispatched} redispatched)")
    assert not read_fail, f"reads failed although HAProxy should retry them: {read_fail[:4]}"
    assert not writes_retried, f"HAProxy retried {len(writes_retried)} writes: {writes_retried[:2]}"
    assert retried >= 5, f"only {retried} reads were retried: too few reached proxy-a to exercise the policy"
    for op, v in refused.items():
        assert len(v) >= 3, f"only {len(v)} {op}s reached proxy-a: the policy for writes was not exercised"
        assert all(w.startswith("502 ") for _k, w in v), f"{op}s answered otherwise than 502: {v[:4]}"
    for key, data in stored:
        assert origin_b.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data, f"{key}: other bytes at origin B"
    for key, _w in refused["PUT"]:
        try:
            origin_b.head_object(Bucket=BUCKET, Key=key)
        except ClientError as e:
            if describe(e).startswith("404"):
                continue
            raise
        raise AssertionError(f"PUT {key} was answered 502 but exists at origin B: it was replayed")
    for key, _w in refused["DELETE"]:
        try:
            origin_b.head_object(Bucket=BUCKET, Key=key)
        except ClientError as e:
            raise AssertionError(f"DELETE {key} was answered 502 but origin B no longer has it ({describe(e)}): "
                                 f"it was replayed") from None
    if not hap.wait_status("proxy-a", "DOWN", 5):
        raise AssertionError(f"proxy-a not DOWN again after `enable health`: {hap.servers()['proxy-a']}")


def recover(pool):
    t0 = time.monotonic()
    pool.origin_a = start_origin("origin-a", pool.ports["OA"], pool.data["A"])
    if not pool.hap.wait_status("proxy-a", "UP", 15):
        raise AssertionError(f"proxy-a not UP within 15 s of origin A's restart: {pool.hap.servers()['proxy-a']}")
    t._out(f"# pool: origin A restarted; HAProxy marked proxy-a UP {time.monotonic() - t0:.2f} s later")


def drain(pool):
    hap, mon = pool.hap, pool.monitor
    for s in ("proxy-a", "proxy-b"):
        if not hap.servers()[s]["status"].startswith("UP"):
            raise AssertionError(f"{s} is not UP before the drain test: {hap.servers()[s]}")
    pb = pool.ports["PB"]
    loop = Loop(pool.endpoint, pool.objects, seed=2)
    stop = threading.Event()
    log_mark = len(hap.log_lines())

    def run_loop():
        while not stop.is_set():
            loop.one()

    # 20 downloads straight from proxy B, each read at a pace that makes it last DOWNLOAD_PACE_S
    dl = client(f"http://127.0.0.1:{pb}", pool=DOWNLOADS + 4)
    results = [None] * DOWNLOADS
    first_bytes = threading.Barrier(DOWNLOADS + 1)

    def download(i):
        t0 = time.monotonic()
        h, n, passed = hashlib.sha256(), 0, False
        try:
            body = dl.get_object(Bucket=BUCKET, Key=BIG_KEY)["Body"]
            while True:
                chunk = body.read(MiB)
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
                if not passed:
                    passed = True
                    first_bytes.wait(30)
                ahead = t0 + DOWNLOAD_PACE_S * n / BIG_SIZE - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
            results[i] = (n, h.hexdigest(), time.monotonic(), None)
        except Exception as e:  # noqa: BLE001
            if not passed:
                first_bytes.abort()
            results[i] = (n, h.hexdigest(), time.monotonic(), describe(e))

    loop_thread = threading.Thread(target=run_loop, daemon=True)
    loop_thread.start()
    threads = [threading.Thread(target=download, args=(i,), daemon=True) for i in range(DOWNLOADS)]
    for th in threads:
        th.start()
    try:
        first_bytes.wait(30)  # all 20 are in flight
    except threading.BrokenBarrierError:
        stop.set()
        raise AssertionError(f"the downloads did not all start: {[r for r in results if r]}") from None
    time.sleep(0.3)  # the loop has been running through both members

    t_closed = None

    def watch_listener():  # when does B stop accepting? (a connect every 20 ms, closed at once)
        nonlocal t_closed
        while pool.proxy_b.poll() is None and time.monotonic() - t_term < 60:
            try:
                socket.create_connection(("127.0.0.1", pb), timeout=0.5).close()
            except OSError:
                t_closed = time.monotonic()
                return
            time.sleep(0.02)

    b_sessions_before = mon.sessions("proxy-b")
    t_term = time.monotonic()
    pool.proxy_b.send_signal(signal.SIGTERM)
    closer = threading.Thread(target=watch_listener, daemon=True)
    closer.start()
    # /healthz right away, on fresh connections
    t_draining, healthz_seen = None, []
    while time.monotonic() - t_term < 2.0:
        try:
            st, js = healthz(pb, timeout=0.5)
            healthz_seen.append(st)
            if st == 503 and js and js.get("status") == "draining":
                t_draining = time.monotonic()
                break
        except OSError as e:
            healthz_seen.append(type(e).__name__)
        time.sleep(0.005)
    closer.join(65)
    for th in threads:
        th.join(max(1.0, t_term + 60 - time.monotonic()))
    t_done = max((r[2] for r in results if r), default=None)
    try:
        rc = pool.proxy_b.wait(max(1.0, t_term + 60 - time.monotonic()))
    except subprocess.TimeoutExpired:
        rc = None
    t_exit = time.monotonic() if rc is not None else None
    time.sleep(1.0)  # the loop goes on a little past B's exit
    stop.set()
    loop_thread.join(30)
    down = mon.first("proxy-b", "DOWN", t_term)
    b_sessions_end = mon.sessions("proxy-b")
    per_server, retried, redispatched = log_figures(hap, log_mark)

    def ms(x):
        return f"{(x - t_term) * 1000:.0f} ms" if x else "never"

    t._out(f"# pool: drain: SIGTERM to proxy B with {DOWNLOADS} x 50 MB downloads in flight; /healthz draining "
           f"after {ms(t_draining)} (answers seen {healthz_seen[:6]}); HAProxy marked proxy-b DOWN after "
           f"{ms(down[0] if down else None)} (check code {down[4] if down else '-'}); listener closed after "
           f"{ms(t_closed)}; downloads done after {ms(t_done)}; B exited {rc} after {ms(t_exit)}; loop through "
           f"HAProxy: {loop.n} requests, {len(loop.failures)} failed; HAProxy log: {per_server}, {retried} retried; "
           f"proxy-b sessions {b_sessions_before} at SIGTERM, {down[3] if down else '-'} at DOWN, {b_sessions_end} "
           f"at the end")

    def healthz_fast():
        assert t_draining is not None, f"/healthz never said draining within 2 s (answers: {healthz_seen[:10]})"
        took = t_draining - t_term
        assert took <= DRAIN_HEALTHZ_MAX_S, f"/healthz said draining after {took * 1000:.0f} ms (> 100 ms)"

    def downloads_complete():
        bad = [(i, r) for i, r in enumerate(results) if r is None or r[3] or r[0] != BIG_SIZE or r[1] != pool.big_sha]
        assert not bad, f"{len(bad)} of {DOWNLOADS} downloads incomplete or different: " + "; ".join(
            f"#{i}: {r[0] if r else 0} bytes, {r[3] if r and r[3] else 'sha256 differs' if r else 'no result'}"
            for i, r in bad[:4])
        assert t_closed is not None and t_done > t_closed, (
            "the downloads ended before B stopped accepting: they did not test finishing in-flight transfers")

    def haproxy_takes_b_out():
        assert down is not None, f"HAProxy never marked proxy-b DOWN: {hap.servers()['proxy-b']}"
        assert t_closed is None or down[0] < t_closed, (
            f"proxy-b stopped accepting ({ms(t_closed)}) before HAProxy marked it DOWN ({ms(down[0])})")
        assert b_sessions_end == down[3], (
            f"HAProxy sent proxy-b {b_sessions_end - down[3]} requests after marking it DOWN")

    def loop_zero_failures():
        assert loop.n >= 100, f"the loop made only {loop.n} requests during the drain"
        assert not loop.failures, f"{len(loop.failures)} of {loop.n} requests failed: {loop.failure_text()}"

    def exit_0():
        assert rc == 0, f"proxy B exited with {rc}" if rc is not None else "proxy B did not exit within 60 s"

    t.run_test("pool/drain-healthz-draining-within-100ms", healthz_fast)
    t.run_test("pool/drain-downloads-complete-byte-identical", downloads_complete)
    t.run_test("pool/drain-haproxy-takes-b-out", haproxy_takes_b_out)
    t.run_test("pool/drain-loop-zero-failures", loop_zero_failures)
    t.run_test("pool/drain-exit-0", exit_0)


# ---------------------------------------------------------------------------------------------- main
def main():
    if os.environ.get("E2E_DIRECT") == "1":
        t.skip("pool/all", "E2E_DIRECT=1: the group tests a pool of proxies, and runs no proxy")
        t.finish()
    shutil.rmtree(WORK, ignore_errors=True)  # a rerun with the same E2E_WORK starts empty (logs, data)
    os.makedirs(WORK)
    t0 = time.monotonic()
    for what, path in (("E2E_PROXY_BIN_PATH", PROXY_BIN), ("s3s-fs (E2E_S3SFS_BIN)", S3SFS_BIN)):
        if not path or not os.access(path, os.X_OK):
            t.fail("pool/setup", f"{what} is not an executable: {path!r}")
            t.finish()
    try:
        pool = Pool()
    except Exception as e:  # noqa: BLE001
        t.fail("pool/setup", f"{type(e).__name__}: {e} (logs in {WORK})")
        t.finish()
    t._out(f"# pool: {CFG}; HAProxy :{pool.ports['H']} -> proxy-a :{pool.ports['PA']} (origin A "
           f":{pool.ports['OA']}), proxy-b :{pool.ports['PB']} (origin B :{pool.ports['OB']}); "
           f"setup {time.monotonic() - t0:.1f} s; logs in {WORK}")
    failover(pool)
    t.run_test("pool/origin-down-answer-fast-502", origin_down_answer, pool)
    t.run_test("pool/retry-policy-reads-retried-writes-not", retry_policy, pool)
    if t.run_test("pool/recover-a-up-again", recover, pool):
        drain(pool)
    else:
        t.fail("pool/drain", "not run: proxy-a did not come back UP")
    pool.monitor.stop.set()
    stop_all()
    t._out(f"# pool: {time.monotonic() - t0:.1f} s")
    t.finish()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        t.fail("pool/harness", f"{type(e).__name__}: {e}")
        t.finish()
