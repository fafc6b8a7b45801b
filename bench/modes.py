#!/usr/bin/env python3
"""Upload throughput per payload mode: through the proxy vs straight to the origin.

Starts `target/release/s3-resign-proxy origin DIR` (s3s-fs, signature-checking) and the
release proxy in front of it, then PUTs SIZE MiB in each mode, interleaving direct and
proxied uploads for ROUNDS rounds, and prints MB/s, the ratio proxied/direct (median over
rounds), and the proxy's peak RSS (VmHWM). Requests are signed here with hashlib/hmac.

    python3 bench/modes.py [--size-mib 256] [--rounds 3]
"""
import argparse, base64, datetime, hashlib, hmac, http.client, os, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target/release/s3-resign-proxy")
CAK, CSK, OAK, OSK = "BENCHCLIENT", "bench-client-secret", "BENCHORIGIN", "bench-origin-secret"
BLOCK = 1 << 20
CHUNK = 64 << 10
EMPTY = hashlib.sha256(b"").hexdigest()


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def hm(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret, date):
    k = ("AWS4" + secret).encode()
    for part in (date, "us-east-1", "s3", "aws4_request"):
        k = hm(k, part)
    return k


def sign(method, host, path, headers, payload, ak, sk):
    amz = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    h = {k.lower(): v for k, v in headers.items()}
    h.update({"host": host, "x-amz-date": amz, "x-amz-content-sha256": payload})
    names = sorted(h)
    creq = "\n".join([method, path, "", "".join(f"{n}:{h[n]}\n" for n in names), ";".join(names), payload])
    scope = f"{amz[:8]}/us-east-1/s3/aws4_request"
    sts = f"AWS4-HMAC-SHA256\n{amz}\n{scope}\n{hashlib.sha256(creq.encode()).hexdigest()}"
    key = signing_key(sk, amz[:8])
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    h["authorization"] = f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={';'.join(names)}, Signature={sig}"
    return h, (key, amz, scope, sig)


BLOCKS = [bytes((i * 7 + k) % 251 for i in range(BLOCK)) for k in range(4)]


def data_blocks(n):
    for i in range(n):
        yield BLOCKS[i % 4]


def put(port, path, mode, size_mib, ak, sk):
    host = f"127.0.0.1:{port}"
    size = size_mib * BLOCK
    extra = {}
    if mode == "unsigned":
        payload = "UNSIGNED-PAYLOAD"
    elif mode == "hex":
        d = hashlib.sha256()
        for b in data_blocks(size_mib):
            d.update(b)
        payload = d.hexdigest()
    else:
        payload = {"signed": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "signed-trailer": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
                   "unsigned-trailer": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"}[mode]
        extra = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(size)}
        if mode != "signed":
            extra["x-amz-trailer"] = "x-amz-checksum-sha256"
    headers, (key, amz, scope, seed) = sign("PUT", host, path, extra, payload, ak, sk)
    prev = [seed]

    def chunk_sig(data):
        sts = f"AWS4-HMAC-SHA256-PAYLOAD\n{amz}\n{scope}\n{prev[0]}\n{EMPTY}\n{hashlib.sha256(data).hexdigest()}"
        prev[0] = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        return prev[0]

    def body():
        if mode in ("unsigned", "hex"):
            yield from data_blocks(size_mib)
            return
        whole = hashlib.sha256()
        for b in data_blocks(size_mib):
            whole.update(b)
            for o in range(0, len(b), CHUNK):
                c = b[o:o + CHUNK]
                if mode == "unsigned-trailer":
                    yield b"%x\r\n" % len(c) + c + b"\r\n"
                else:
                    yield b"%x;chunk-signature=%s\r\n" % (len(c), chunk_sig(c).encode()) + c + b"\r\n"
        line = "x-amz-checksum-sha256:" + base64.b64encode(whole.digest()).decode()
        if mode == "signed":
            yield b"0;chunk-signature=%s\r\n\r\n" % chunk_sig(b"").encode()
        elif mode == "unsigned-trailer":
            yield f"0\r\n{line}\r\n\r\n".encode()
        else:
            last = chunk_sig(b"")
            sts = f"AWS4-HMAC-SHA256-TRAILER\n{amz}\n{scope}\n{last}\n{hashlib.sha256((line + chr(10)).encode()).hexdigest()}"
            tsig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
            yield f"0;chunk-signature={last}\r\n{line}\r\nx-amz-trailer-signature:{tsig}\r\n\r\n".encode()

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    if mode == "unsigned-trailer":
        conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        t0 = time.perf_counter()
        for piece in body():
            conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
    else:
        if mode in ("unsigned", "hex"):
            length = size
        else:
            length = sum(len(p) for p in body())
            prev[0] = seed
        conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        t0 = time.perf_counter()
        for piece in body():
            conn.send(piece)
    r = conn.getresponse()
    out = r.read()
    dt = time.perf_counter() - t0
    conn.close()
    if r.status != 200:
        raise SystemExit(f"{mode} {path}: HTTP {r.status} {out[:300]!r}")
    return size / dt / 1e6


def vmhwm(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmHWM:"):
            return int(l.split()[1]) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if not os.path.exists(BIN):
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    data = tempfile.mkdtemp(prefix="modes-")
    os.mkdir(os.path.join(data, "bench"))
    oport, pport = free_port(), free_port()
    env = dict(os.environ, ORIGIN_ACCESS_KEY=OAK, ORIGIN_SECRET_KEY=OSK, HOST="127.0.0.1", PORT=str(oport), RUST_LOG="warn")
    origin = subprocess.Popen([BIN, "origin", data], env=env, stderr=subprocess.DEVNULL)
    penv = dict(os.environ, CLIENT_ACCESS_KEY=CAK, CLIENT_SECRET_KEY=CSK, ORIGIN_ACCESS_KEY=OAK, ORIGIN_SECRET_KEY=OSK,
                ORIGIN_DOMAIN=f"http://127.0.0.1:{oport}", HOST="127.0.0.1", PORT=str(pport), RUST_LOG="warn")
    proxy = subprocess.Popen([BIN], env=penv)
    try:
        time.sleep(1)
        rows = []
        for mode in ("unsigned", "hex", "signed", "signed-trailer", "unsigned-trailer"):
            direct, proxied, ratios = [], [], []
            for r in range(a.rounds):
                d = put(oport, f"/bench/{mode}-d", mode, a.size_mib, OAK, OSK)
                p = put(pport, f"/bench/{mode}-p", mode, a.size_mib, CAK, CSK)
                direct.append(d); proxied.append(p); ratios.append(p / d)
            rows.append((mode, statistics.median(direct), statistics.median(proxied), statistics.median(ratios), min(ratios), max(ratios)))
            print(f"{mode:17s} direct {rows[-1][1]:7.0f} MB/s  proxied {rows[-1][2]:7.0f} MB/s  ratio {rows[-1][3]:.2f} ({rows[-1][4]:.2f}-{rows[-1][5]:.2f})", flush=True)
        print(f"\n| mode | straight to s3s-fs MB/s | through the proxy MB/s | ratio (min–max) |\n|---|---:|---:|---:|")
        for m, d, p, r, lo, hi in rows:
            print(f"| {m} | {d:.0f} | {p:.0f} | {r:.2f} ({lo:.2f}–{hi:.2f}) |")
        print(f"\nproxy peak RSS (VmHWM) after all uploads: {vmhwm(proxy.pid):.1f} MiB; size {a.size_mib} MiB, {a.rounds} rounds")
    finally:
        proxy.terminate(); origin.terminate()
        proxy.wait(); origin.wait()
        subprocess.run(["rm", "-rf", data])


if __name__ == "__main__":
    main()
