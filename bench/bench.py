#!/usr/bin/env python3
"""Load benchmark of s3-resign-proxy. Run it through bench/run.sh (which installs
nginx and builds the binaries); `bench/run.sh --help` lists the options.

Starts, on 127.0.0.1 only:
  - the fast origin: nginx serving DATA for GET, and the loadgen sink for PUT (both ignore auth);
  - s3s-fs over the same DATA (`s3-resign-proxy origin DATA`, checks signatures);
  - nginx proxy_pass in front of the fast origin (the yardstick for a plain hop);
  - s3-resign-proxy in front of each origin.
Then runs every scenario, interleaving the targets within each round (3 rounds), and
writes OUT/results.json, OUT/results.md and OUT/ratios.svg.

Standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import report  # noqa: E402

PROXY_BIN = Path(os.environ.get("BENCH_PROXY_BIN", ROOT / "target/release/s3-resign-proxy"))
# A second proxy build to compare with in the same run (an A/B of a change): target `proxy_b`.
PROXY_B_BIN = Path(os.environ["BENCH_PROXY_B_BIN"]) if os.environ.get("BENCH_PROXY_B_BIN") else None
LOADGEN = Path(os.environ.get("BENCH_LOADGEN_BIN", ROOT / "target/bench-loadgen/release/s3rp-loadgen"))
NGINX = os.environ.get("BENCH_NGINX", shutil.which("nginx") or "/usr/sbin/nginx")
CLK = os.sysconf("SC_CLK_TCK")

CLIENT_AK, CLIENT_SK = "BENCHCLIENTKEY000001", "bench-client-secret-key-0000000000000001"
ORIGIN_AK, ORIGIN_SK = "BENCHORIGINKEY000001", "bench-origin-secret-key-0000000000000001"
BUCKET = "bench"
MiB = 1 << 20

# Target ids, in the order the tables list them.
ORIGIN, NGINX_PP, PROXY, S3SFS, PROXY_S3SFS, PROXY_B = "origin", "nginx", "proxy", "s3sfs", "proxy_s3sfs", "proxy_b"
TARGET_NAMES = {
    ORIGIN: "fast origin alone",
    NGINX_PP: "nginx proxy_pass → fast origin",
    PROXY: "s3-resign-proxy → fast origin",
    S3SFS: "s3s-fs alone",
    PROXY_S3SFS: "s3-resign-proxy → s3s-fs",
    PROXY_B: "s3-resign-proxy B (BENCH_PROXY_B_BIN) → fast origin",
}
# Each target's ratio is taken against this target, from the same round.
BASELINE = {ORIGIN: ORIGIN, NGINX_PP: ORIGIN, PROXY: ORIGIN, S3SFS: S3SFS, PROXY_S3SFS: S3SFS, PROXY_B: ORIGIN}
ALL_TARGETS = [ORIGIN, NGINX_PP, PROXY, S3SFS, PROXY_S3SFS] + ([PROXY_B] if PROXY_B_BIN else [])
CLIENT_TARGETS = (PROXY, PROXY_S3SFS, PROXY_B)  # signed with the client key


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ processes

class Proc:
    """A child process we started; stopped by its own pid only."""

    live: list["Proc"] = []

    def __init__(self, name: str, argv: list[str], env: dict | None = None, logfile: Path | None = None):
        self.name = name
        out = open(logfile, "ab") if logfile else subprocess.DEVNULL
        self.p = subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        self.pid = self.p.pid
        Proc.live.append(self)

    def pids(self) -> list[int]:
        """This process and its children (nginx workers)."""
        return [self.pid] + children(self.pid)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=5)
        if self in Proc.live:
            Proc.live.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        for p in list(reversed(cls.live)):
            try:
                p.stop()
            except Exception as e:  # noqa: BLE001
                log(f"stopping {p.name}: {e}")


def children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(d))
    return out


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def vmhwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def system_busy() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: Proc, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.p.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.p.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not listen on {port} within {timeout}s")


def http_status(port: int, path: str) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        head = s.recv(64).decode("latin-1")
    return int(head.split()[1])


# ------------------------------------------------------------------ loadgen

def loadgen(args: list[str], timeout: float) -> tuple[dict, float]:
    """Runs the load generator; returns its JSON and the CPU seconds it used."""
    p = subprocess.Popen([str(LOADGEN), *args, "--max-secs", str(int(timeout))], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timer = threading.Timer(timeout + 10, p.kill)
    timer.start()
    try:
        out = p.stdout.read()
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    finally:
        timer.cancel()
    if p.returncode != 0:
        raise RuntimeError(f"loadgen {' '.join(args[:1])} failed ({p.returncode}): {err.decode(errors='replace').strip()}")
    return json.loads(out), ru.ru_utime + ru.ru_stime


# ------------------------------------------------------------------ the bench

NGINX_COMMON = """
user root;
worker_processes {workers};
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size 0;
{body}
}}
"""

NGINX_ORIGIN = """
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {data};
        location / {{ }}
    }}
"""

# The yardstick: nginx proxy_pass in front of the fast origin. Upstream keep-alive,
# request bodies streamed (proxy_request_buffering off), responses through in-memory
# buffers only (proxy_max_temp_file_size 0).
NGINX_PP_CONF = """
    upstream fast_get {{ server 127.0.0.1:{get_port}; keepalive 256; keepalive_requests 10000000; }}
    upstream fast_put {{ server 127.0.0.1:{put_port}; keepalive 256; keepalive_requests 10000000; }}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_request_buffering off;
    proxy_buffering on;
    proxy_buffer_size 64k;
    proxy_buffers 16 64k;
    proxy_busy_buffers_size 128k;
    proxy_max_temp_file_size 0;
    client_body_buffer_size 64k;
    server {{
        listen 127.0.0.1:{port_get} backlog=4096;
        location / {{ proxy_pass http://fast_get; }}
    }}
    server {{
        listen 127.0.0.1:{port_put} backlog=4096;
        location / {{ proxy_pass http://fast_put; }}
    }}
"""


class Bench:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.work = Path(tempfile.mkdtemp(prefix="s3rp-bench-"))
        self.data = self.work / "data"
        (self.data / BUCKET).mkdir(parents=True)
        self.logs = a.out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        # A private copy: a rebuild of target/release during the run must not change the
        # binary under test half-way (fresh proxies are started per measurement).
        global PROXY_BIN, PROXY_B_BIN
        shutil.copy2(PROXY_BIN, self.work / "s3-resign-proxy")
        PROXY_BIN = self.work / "s3-resign-proxy"
        if PROXY_B_BIN:
            shutil.copy2(PROXY_B_BIN, self.work / "s3-resign-proxy-b")
            PROXY_B_BIN = self.work / "s3-resign-proxy-b"
        self.p: dict[str, int] = {}
        self.procs: dict[str, Proc] = {}

    # -------------------------------------------------------------- services

    def start_nginx(self, name: str, body: str) -> Proc:
        prefix = self.work / f"nginx-{name}"
        prefix.mkdir(exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(NGINX_COMMON.format(prefix=prefix, body=body, workers=self.a.nginx_workers))
        return Proc(f"nginx-{name}", [NGINX, "-p", str(prefix), "-c", str(conf)], logfile=self.logs / f"nginx-{name}.log")

    def start_proxy(self, name: str, origin_port: int, binary: Path | None = None) -> tuple[Proc, int]:
        port = free_port()
        env = {
            "CLIENT_ACCESS_KEY": CLIENT_AK,
            "CLIENT_SECRET_KEY": CLIENT_SK,
            "ORIGIN_ACCESS_KEY": ORIGIN_AK,
            "ORIGIN_SECRET_KEY": ORIGIN_SK,
            "ORIGIN_DOMAIN": f"http://127.0.0.1:{origin_port}",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "HEALTHCHECK_PATH": f"/{BUCKET}/obj-1k",
            "RUST_LOG": "warn",
        }
        p = Proc(f"proxy-{name}", [str(binary or PROXY_BIN)], env=env, logfile=self.logs / f"proxy-{name}.log")
        wait_port(port, p)
        st = http_status(port, "/healthz")
        if st != 200:
            raise RuntimeError(f"proxy-{name}: /healthz answered {st} (origin on {origin_port} not ready?)")
        return p, port

    def start_origins(self) -> None:
        p = self.p
        p["origin_get"], p["origin_put"], p["s3sfs"], p["nginx_get"], p["nginx_put"] = (free_port() for _ in range(5))
        self.procs["origin_get"] = self.start_nginx("origin", NGINX_ORIGIN.format(port=p["origin_get"], data=self.data))
        self.procs["origin_put"] = Proc("sink", [str(LOADGEN), "sink", "--listen", f"127.0.0.1:{p['origin_put']}"], logfile=self.logs / "sink.log")
        self.procs["s3sfs"] = Proc(
            "s3s-fs",
            [str(PROXY_BIN), "origin", str(self.data)],
            env={"ORIGIN_ACCESS_KEY": ORIGIN_AK, "ORIGIN_SECRET_KEY": ORIGIN_SK, "HOST": "127.0.0.1", "PORT": str(p["s3sfs"]), "RUST_LOG": "warn"},
            logfile=self.logs / "s3s-fs.log",
        )
        for k in ("origin_get", "origin_put", "s3sfs"):
            wait_port(p[k], self.procs[k])

    def start_nginx_pp(self) -> Proc:
        p = self.p
        proc = self.start_nginx(
            "proxy_pass",
            NGINX_PP_CONF.format(get_port=p["origin_get"], put_port=p["origin_put"], port_get=p["nginx_get"], port_put=p["nginx_put"]),
        )
        wait_port(p["nginx_get"], proc)
        wait_port(p["nginx_put"], proc)
        return proc

    def seed(self) -> None:
        """Objects are PUT through s3s-fs (so it has their ETags); nginx serves the same files."""
        for key, size in (("obj-1k", 1024), ("obj-big", self.a.big_size)):
            r, _ = loadgen(["put", "--url", f"http://127.0.0.1:{self.p['s3sfs']}/{BUCKET}/{key}", "--ak", ORIGIN_AK, "--sk", ORIGIN_SK,
                            "--size", str(size), "--parallel", "1", "--duration", "0"], timeout=120)
            if r["objects"] != 1:
                raise RuntimeError(f"seeding {key} failed: {r}")
        assert (self.data / BUCKET / "obj-big").stat().st_size == self.a.big_size

    # -------------------------------------------------------------- targets

    def url(self, target: str, port_of: dict[str, int], key: str) -> tuple[str, str, str]:
        """(URL, access key, secret key) for a target."""
        port = port_of[target]
        if target in CLIENT_TARGETS:
            ak, sk = CLIENT_AK, CLIENT_SK
        else:
            ak, sk = ORIGIN_AK, ORIGIN_SK  # the fast origin and nginx ignore them
        return f"http://127.0.0.1:{port}/{BUCKET}/{key}", ak, sk

    def quiet(self) -> None:
        """Waits (bounded by --quiet-wait) until the machine is idle apart from us: other
        people's builds on a shared machine skew every figure."""
        deadline = time.monotonic() + self.a.quiet_wait
        waited = False
        while True:
            b0, w0 = system_busy()[0], time.monotonic()
            time.sleep(0.3)
            frac = (system_busy()[0] - b0) / CLK / (time.monotonic() - w0) / (os.cpu_count() or 1)
            if frac < 0.15 or time.monotonic() >= deadline:
                if waited:
                    log(f"machine busy {frac:.0%} (others); {'going on' if frac >= 0.15 else 'quiet again'}")
                return
            if not waited:
                log(f"machine busy {frac:.0%} (not us): waiting up to {self.a.quiet_wait:g} s")
                waited = True

    def measured(self, target_procs: list[Proc], run) -> dict:
        """`measure_once`, repeated (up to --retries times) while other processes took more
        than --max-foreign of the machine during the run."""
        for attempt in range(self.a.retries + 1):
            r = self.measure_once(target_procs, run)
            r["attempts"] = attempt + 1
            if r["foreign_frac"] <= self.a.max_foreign:
                break
            if attempt < self.a.retries:
                log(f"other processes took {r['foreign_frac']:.0%} of the machine during the run: measuring again")
        return r

    def measure_once(self, target_procs: list[Proc], run) -> dict:
        """Runs `run()` (a loadgen call) with CPU accounting of the target's processes,
        and of the whole machine, to see how much CPU others took meanwhile."""
        self.quiet()
        pids = [pid for pr in target_procs for pid in pr.pids()]
        ours = sorted({pid for pr in Proc.live for pid in pr.pids()})
        t0, o0, b0, w0 = cpu_ticks(pids), cpu_ticks(ours), system_busy()[0], time.monotonic()
        r, lg_cpu = run()
        t1, o1, b1, w1 = cpu_ticks(pids), cpu_ticks(ours), system_busy()[0], time.monotonic()
        secs = w1 - w0
        ncpu = os.cpu_count() or 1
        r["target_cpu_s"] = (t1 - t0) / CLK
        r["loadgen_cpu_s"] = lg_cpu
        busy_s = (b1 - b0) / CLK
        r["system_busy_frac"] = busy_s / secs / ncpu
        # CPU taken by processes other than the origins, nginx, the proxies and the
        # load generator: other people's work on a shared machine.
        r["foreign_frac"] = max(0.0, busy_s - (o1 - o0) / CLK - lg_cpu) / secs / ncpu
        return r

    # -------------------------------------------------------------- scenarios

    def order(self, targets: list[str], rnd: int) -> list[str]:
        k = rnd % len(targets)
        return targets[k:] + targets[:k]

    def scenario_small(self) -> dict:
        a = self.a
        nginx_pp = self.start_nginx_pp()
        proxy_fast, port_pf = self.start_proxy("fast-get", self.p["origin_get"])
        proxy_s3, port_ps = self.start_proxy("s3sfs", self.p["s3sfs"])
        ports = {ORIGIN: self.p["origin_get"], NGINX_PP: self.p["nginx_get"], PROXY: port_pf, S3SFS: self.p["s3sfs"], PROXY_S3SFS: port_ps}
        procs = {ORIGIN: [self.procs["origin_get"]], NGINX_PP: [nginx_pp], PROXY: [proxy_fast], S3SFS: [self.procs["s3sfs"]], PROXY_S3SFS: [proxy_s3]}
        stop = [proxy_fast, proxy_s3, nginx_pp]
        if PROXY_B_BIN:
            proxy_b, ports[PROXY_B] = self.start_proxy("fast-get-b", self.p["origin_get"], PROXY_B_BIN)
            procs[PROXY_B] = [proxy_b]
            stop.append(proxy_b)
        points = []
        try:
            for conc in (16, 64):
                runs: dict[str, list] = {t: [] for t in ALL_TARGETS}
                for rnd in range(a.rounds):
                    for t in self.order(ALL_TARGETS, rnd):
                        url, ak, sk = self.url(t, ports, "obj-1k")
                        args = ["small", "--url", url, "--ak", ak, "--sk", sk, "--concurrency", str(conc),
                                "--duration", str(a.small_secs), "--warmup", str(a.warmup_secs)]
                        r = self.measured(procs[t], lambda args=args: loadgen(args, timeout=a.small_secs + a.warmup_secs + 30))
                        # The target's CPU over warm-up + measurement, per request served in both.
                        served = r["requests"] + r["warmup_requests"]
                        r["cpu_us_per_req"] = r["target_cpu_s"] / served * 1e6 if served else None
                        runs[t].append(r)
                        log(f"1KiB GET c={conc} round {rnd + 1} {t:12s} {r['rps']:9.0f} req/s p50 {r['p50_us']}µs p99 {r['p99_us']}µs "
                            f"cpu {r['cpu_us_per_req'] or 0:.1f}µs/req errors {r['errors']} others {r['foreign_frac']:.0%}")
                points.append({"label": f"c={conc}", "concurrency": conc, "runs": runs})
        finally:
            for pr in stop:
                pr.stop()
        return {"id": "small_get", "title": f"1 KiB GET, {a.small_secs:g} s per run", "kind": "small", "points": points}

    def scenario_big(self, sid: str, title: str, put: bool, parallels: list[int], size: int, targets: list[str], duration: float) -> dict:
        a = self.a
        points = []
        for par in parallels:
            runs: dict[str, list] = {t: [] for t in targets}
            for rnd in range(a.rounds):
                for t in self.order(targets, rnd):
                    fresh: list[Proc] = []
                    try:
                        origin_port = self.p["origin_put" if put else "origin_get"]
                        ports = {ORIGIN: origin_port, S3SFS: self.p["s3sfs"]}
                        procs = {ORIGIN: [self.procs["origin_put" if put else "origin_get"]], S3SFS: [self.procs["s3sfs"]]}
                        if t == NGINX_PP:
                            pr = self.start_nginx_pp()
                            fresh.append(pr)
                            ports[t], procs[t] = self.p["nginx_put" if put else "nginx_get"], [pr]
                        elif t in CLIENT_TARGETS:
                            binary = PROXY_B_BIN if t == PROXY_B else None
                            pr, port = self.start_proxy(f"{sid}-{par}-{t}", self.p["s3sfs"] if t == PROXY_S3SFS else origin_port, binary)
                            fresh.append(pr)
                            ports[t], procs[t] = port, [pr]
                        key = "put-{i}" if put else "obj-big"
                        url, ak, sk = self.url(t, ports, key)
                        args = ["put" if put else "get", "--url", url, "--ak", ak, "--sk", sk, "--parallel", str(par),
                                "--duration", str(duration), "--size", str(size)]
                        r = self.measured(procs[t], lambda args=args: loadgen(args, timeout=300))
                        gib = r["bytes"] / (1 << 30)
                        r["cpu_s_per_gib"] = r["target_cpu_s"] / gib if gib else None
                        if t in CLIENT_TARGETS:
                            r["peak_rss_mib"] = vmhwm_kib(procs[t][0].pid) / 1024
                        elif t == NGINX_PP:
                            r["peak_rss_mib"] = sum(vmhwm_kib(pid) for pid in procs[t][0].pids()) / 1024
                        runs[t].append(r)
                        log(f"{sid} x{par} round {rnd + 1} {t:12s} {r['mb_per_s']:8.1f} MB/s ({r['objects']} objects) "
                            f"cpu {r['cpu_s_per_gib'] or 0:.3f}s/GiB rss {r.get('peak_rss_mib', 0):.1f}MiB errors {r['errors']} "
                            f"{r['first_error']} others {r['foreign_frac']:.0%}")
                    finally:
                        for pr in fresh:
                            pr.stop()
            points.append({"label": f"{par} in parallel", "parallel": par, "runs": runs})
        return {"id": sid, "title": title, "kind": "big", "put": put, "size": size, "points": points}

    # -------------------------------------------------------------- main

    def run(self) -> dict:
        a = self.a
        started = time.time()
        log(f"work dir {self.work}")
        self.start_origins()
        self.seed()
        meta = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cores": os.cpu_count(),
            "cpu": cpu_model(),
            "kernel": platform.release(),
            "nginx": nginx_version(),
            "proxy_version": subprocess.run([str(PROXY_BIN), "--version"], capture_output=True, text=True).stdout.strip(),
            "git": git_rev(),
            "command": a.command,
            "smoke": a.smoke,
            "rounds": a.rounds,
            "retries": a.retries,
            "max_foreign": a.max_foreign,
            "loadavg_start": os.getloadavg(),
        }
        scenarios = []
        want = set(a.only.split(",")) if a.only else None

        def on(s: str) -> bool:
            return want is None or s in want

        if on("small"):
            scenarios.append(self.scenario_small())
        big, many = a.big_size, a.many_size
        if on("get"):
            scenarios.append(self.scenario_big("big_get", f"{fmt_size(big)} GET", False, [1, 4], big, ALL_TARGETS, a.big_secs))
        if on("put"):
            scenarios.append(self.scenario_big("big_put", f"{fmt_size(big)} PUT, hex x-amz-content-sha256", True, [1, 4], big, ALL_TARGETS, a.big_secs))
        if on("many"):
            scenarios.append(self.scenario_big("many_put", f"32 concurrent PUTs of {fmt_size(many)}", True, [32], many, ALL_TARGETS, 0))
        meta["loadavg_end"] = os.getloadavg()
        meta["elapsed_s"] = round(time.time() - started, 1)
        return {"meta": meta, "scenarios": scenarios}

    def cleanup(self) -> None:
        Proc.stop_all()
        shutil.rmtree(self.work, ignore_errors=True)


def fmt_size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB else f"{n // 1024} KiB"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def nginx_version() -> str:
    r = subprocess.run([NGINX, "-v"], capture_output=True, text=True)
    return (r.stderr or r.stdout).strip().replace("nginx version: ", "")


def git_rev() -> str:
    r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "Cargo.toml"], capture_output=True, text=True).stdout.strip()
    return r.stdout.strip() + ("+dirty" if dirty else "")


def main() -> int:
    ap = argparse.ArgumentParser(description="s3-resign-proxy load benchmark")
    ap.add_argument("--smoke", action="store_true", help="CI: 1 round, ~1 s per scenario, small objects; no timing asserts")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--small-secs", type=float, help="seconds per 1 KiB GET run (default 10)")
    ap.add_argument("--big-size-mib", type=int, help="size of the big GET/PUT objects (default 256)")
    ap.add_argument("--only", help="comma-separated subset of: small,get,put,many")
    ap.add_argument("--out", type=Path, help="output directory (default bench/out, bench/out/smoke with --smoke)")
    ap.add_argument("--nginx-workers", default="auto")
    ap.add_argument("--max-foreign", type=float, default=0.15, help="redo a run when other processes took more than this share of all cores")
    ap.add_argument("--retries", type=int, help="how often to redo such a run (default 2, smoke 0)")
    ap.add_argument("--quiet-wait", type=float, help="seconds to wait for other load to stop before each run (default 60, smoke 0)")
    a = ap.parse_args()
    a.command = "bench/run.sh " + " ".join(sys.argv[1:])
    a.out = a.out or (HERE / "out" / "smoke" if a.smoke else HERE / "out")
    if a.smoke:
        a.rounds = a.rounds or 1
        a.small_secs = a.small_secs or 1.0
        a.warmup_secs = 0.2
        a.big_size = (a.big_size_mib or 16) * MiB
        a.many_size = 2 * MiB
        a.big_secs = 0
        a.quiet_wait = a.quiet_wait if a.quiet_wait is not None else 0
        a.retries = a.retries if a.retries is not None else 0
    else:
        a.quiet_wait = a.quiet_wait if a.quiet_wait is not None else 60
        a.retries = a.retries if a.retries is not None else 2
        a.rounds = a.rounds or 3
        a.small_secs = a.small_secs or 10.0
        a.warmup_secs = 1.0
        a.big_size = (a.big_size_mib or 256) * MiB
        a.many_size = 64 * MiB
        a.big_secs = 2.0  # keep repeating whole objects until 2 s have passed
    a.out.mkdir(parents=True, exist_ok=True)
    for p in (PROXY_BIN, LOADGEN):
        if not p.exists():
            print(f"missing {p}: run bench/run.sh, which builds it", file=sys.stderr)
            return 2

    b = Bench(a)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        results = b.run()
    finally:
        b.cleanup()
    (a.out / "results.json").write_text(json.dumps(results, indent=1))
    md = report.markdown(results)
    (a.out / "results.md").write_text(md)
    (a.out / "ratios.svg").write_text(report.svg(results))
    print(md)
    log(f"wrote {a.out}/results.md, ratios.svg, results.json in {results['meta']['elapsed_s']} s")
    errors = sum(r["errors"] for s in results["scenarios"] for pt in s["points"] for rs in pt["runs"].values() for r in rs)
    if errors:
        log(f"note: {errors} failed requests in total (see the tables)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
