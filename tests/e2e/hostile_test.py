#!/usr/bin/env python3
"""The `hostile` group: a table of hostile requests, written as raw bytes to the release proxy (issue 11).

Setup (all in this process but the two servers): a byte-recording relay (hostile_relay.Relay) in front of the
suite's s3s-fs origin, a canary listener nobody may connect to, and a proxy of its own (the suite's binary,
E2E_PROXY_BIN_PATH) whose ORIGIN_DOMAIN is the relay. Requests are built and signed here (hostile_sign.py:
SigV4 header and presigned, SigV2 header and query, aws-chunked), and sent with `socket`, so every byte is the
test's choice. The proxy's /healthz is never called.

Each row is one request (bytes) and its expectation. For every row:
  - a response arrives within 5 s (no hang, no close without a response);
  - rejected rows: a 4xx whose body is S3 XML `<Error><Code>...` with an expected code (hyper's bare 400 is
    accepted only on rows marked `bare`: bytes that are not HTTP/1.1 at all); never a 5xx;
  - nothing reached the origin through the relay (rows whose body can only be judged while streaming may
    reach it with their head, but not with the whole body); positive rows must reach it;
  - nothing is stored (the origin's data directory is listed before and after);
  - the canary saw no connection, and every request head the origin saw carried the relay's own Host;
  - the proxy keeps serving: a correctly signed GET succeeds after the row.
Positive control rows (signed PUT/GET that must work and reach the origin) prove the harness can fail.

The expected code of each kind of row is in EXPECT (one dict per class), to be adjusted in one place.
"""

import atexit
import os
import re
import socket
import subprocess
import sys
import time
import zlib
import base64

import e2elib as t
from hostile_relay import Canary, Relay
from hostile_sign import (
    EMPTY_SHA256,
    UNSIGNED,
    Req,
    Signer,
    amz_now,
    chunk_signature,
    http_date,
    pct_decode,
    seed_signature,
    sha256_hex,
    signing_key,
    trailer_signature,
    uri_encode,
)

TIMEOUT = 5.0
REGION = os.environ.get("E2E_REGION", "us-east-1")
BUCKET = "hostile"

# ---------------------------------------------------------------------------------------------- expectations
IA = (400, "InvalidArgument")
AHM = (400, "AuthorizationHeaderMalformed")
AQPE = (400, "AuthorizationQueryParametersError")
SDNM = (403, "SignatureDoesNotMatch")
AD = (403, "AccessDenied")
SHA_MISMATCH = (400, "XAmzContentSHA256Mismatch")
INVALID_URI = (400, "InvalidURI")
INVALID_REQ = (400, "InvalidRequest")
INCOMPLETE = (400, "IncompleteBody")

EXPECT = {
    "h1-connection": {"names-signed": [IA]},
    "h2-presigned-hash": {"mismatch": [SHA_MISMATCH]},
    "h3-signedheaders": {
        "header": [AHM],
        "presigned": [AQPE],
        # a bomb that also repeats a header: refusing either way is right
        "header-dup-values": [AHM, IA],
    },
    "h4-v2-params": {"disallowed": [IA], "unsigned-subresource": [SDNM]},
    "h5-dup-signed": {"dup": [IA]},
    # canonicalize the bytes as sent (then the lossy signature is wrong) or refuse non-UTF-8
    "h6-non-utf8": {"header": [SDNM, IA], "v2-query": [IA]},
    "h7-cl0-hash": {"mismatch": [SHA_MISMATCH]},
    "h8-v2-expires": {"too-far": [AQPE], "overflow": [AQPE, AD]},
    # S3 treats presigned x-amz-* query parameters as the headers they name: a checksum that does not match
    # the body is refused (BadDigest, or a checksum error); the proxy may refuse them outright.
    "h9-presigned-amz-query": {"constraint": [(400, "BadDigest"), (400, "InvalidRequest"), IA, SDNM]},
    "h10-origin-errors": {},  # see origin_auth_error_hidden()
    "ambiguity": {
        "dup-auth": [IA],
        "dup-date": [IA],
        "dup-sha256": [IA],
        "dup-host": [IA],
        "bad-host": [IA],
        "dup-presigned-param": [AQPE, IA],
        "dup-v2-param": [IA],
        "v2-bad-date": [AD],
        "v2-skewed-date": [(403, "RequestTimeTooSkewed")],
        "expires-noncanonical": [AQPE],
        # the signature over a non-canonical Expires may also simply not match
        "v2-expires-noncanonical": [AD, AQPE, SDNM],
        "number-noncanonical": [IA],
    },
    "methods": {"not-s3": [(405, "MethodNotAllowed")]},
    "sizes": {
        "target": [(414, "RequestURITooLong")],
        "header-section": [(400, "RequestHeaderSectionTooLarge")],
        "header-count": [(400, "RequestHeaderSectionTooLarge")],
        "query-params": [IA],
    },
    # S3 answers 400 InvalidURI for a path it cannot decode; InvalidArgument is as good; a signature
    # mismatch (the proxy canonicalizing a broken escape differently than this test) still refuses.
    "encoding": {
        "bad-escape": [INVALID_URI, IA, SDNM],
        "raw-byte": [INVALID_URI, IA, SDNM],
        # printable ASCII outside RFC 3986 (`"<>{}|\\^` and backquote): hyper takes some of them
        "raw-ascii": [INVALID_URI, IA, SDNM],
    },
    "crlf": {"unsigned-amz": [AD], "forwarded-safely": None},
    "smuggling": {"framing": [IA, INVALID_REQ]},
    "absolute": {"other-authority": [IA], "asterisk": [IA, INVALID_URI]},
    "host": {"signed-for-other": [SDNM], "no-host": [IA, AHM, SDNM]},
    "dotseg": {},
    "chunked": {
        "no-final-chunk": [INCOMPLETE, INVALID_REQ],
        "final-unsigned": [INCOMPLETE, INVALID_REQ, SDNM],
        "bad-chunk-sig": [SDNM],
        "undeclared-trailer": [INVALID_REQ, IA],
        "bad-framing": [INVALID_REQ, IA],
    },
    "sigv4a": {"header": [AHM], "presigned": [AQPE], "streaming": [AHM, IA, INVALID_REQ]},
    "badsig": {
        "sig": [SDNM],
        "key": [(403, "InvalidAccessKeyId")],
        "malformed": [AHM],
        "malformed-or-sig": [AHM, SDNM],
        "skew": [(403, "RequestTimeTooSkewed")],
        "denied": [AD],
        "two-mechanisms": [IA],
        "other-scheme": [AHM, IA],
    },
    "http": {"not-http": [], "h2-preface": []},
}

# ---------------------------------------------------------------------------------------------- environment
WORK = os.path.join(os.environ["E2E_WORK"], "hostile")
DATA = os.environ["E2E_ORIGIN_DATA"]
ORIGIN = os.environ["E2E_ORIGIN_ENDPOINT"]
CLIENT_AK = os.environ.get("E2E_CLIENT_ACCESS_KEY", "")
CLIENT_SK = os.environ.get("E2E_CLIENT_SECRET_KEY", "")
ORIGIN_AK = os.environ["E2E_ORIGIN_ACCESS_KEY"]
ORIGIN_SK = os.environ["E2E_ORIGIN_SECRET_KEY"]
PROXY_BIN = os.environ.get("E2E_PROXY_BIN_PATH", "")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _die_with_parent():
    """In the proxy's child process: SIGTERM when this test process dies (a group timeout kills only us)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
    except Exception:  # noqa: BLE001 (not Linux: atexit below still stops it on a normal exit)
        pass


class Proxy:
    def __init__(self, relay_port):
        self.port = free_port()
        self.relay_port = relay_port
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        env = dict(os.environ)
        env.update(
            CLIENT_ACCESS_KEY=CLIENT_AK,
            CLIENT_SECRET_KEY=CLIENT_SK,
            ORIGIN_ACCESS_KEY=ORIGIN_AK,
            ORIGIN_SECRET_KEY=ORIGIN_SK,
            ORIGIN_DOMAIN=f"http://127.0.0.1:{self.relay_port}",
            AWS_REGION=REGION,
            HOST="127.0.0.1",
            PORT=str(self.port),
            RUST_LOG=os.environ.get("RUST_LOG", "info"),
        )
        log = open(os.path.join(WORK, "proxy.log"), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([PROXY_BIN], env=env, stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # a TCP connect, not /healthz (which would reach the origin)
            if self.proc.poll() is not None:
                raise RuntimeError(f"proxy exited with {self.proc.returncode} at start; see {WORK}/proxy.log")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("proxy did not listen within 30 s")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# ---------------------------------------------------------------------------------------------- wire
class Resp:
    def __init__(self, status, head, body):
        self.status = status
        self.head = head
        self.body = body

    def header(self, name):
        m = re.search(rb"(?im)^" + re.escape(name.encode()) + rb":[ \t]*([^\r\n]*)", self.head)
        return m.group(1) if m else None

    def code(self):
        m = re.search(rb"<Error>\s*<Code>([^<]*)</Code>", self.body)
        return m.group(1).decode("latin-1") if m else None

    def short(self):
        c = self.code()
        return f"{self.status} {c}" if c else f"{self.status} (no S3 XML, {len(self.body)} body bytes)"


def exchange(port, data, responses=1, half_close=False, head=False, timeout=TIMEOUT, linger=0.0):
    """Write data, read `responses` responses. Returns (responses, problem or None, extra bytes after them)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    deadline = time.monotonic() + timeout
    buf = bytearray()
    eof = [False]
    out = []
    problem = None

    def fill():
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        s.settimeout(left)
        d = s.recv(1 << 18)
        if not d:
            eof[0] = True
        buf.extend(d)

    try:
        try:
            s.sendall(data)
        except OSError:
            pass  # the proxy may answer and close before reading everything; read what it said
        if half_close:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        while len(out) < responses:
            while b"\r\n\r\n" not in buf and not eof[0]:
                fill()
            if b"\r\n\r\n" not in buf:
                problem = "connection closed without a response" if not out and not buf else (
                    f"connection closed after {len(out)} response(s)" + (f" and {len(buf)} stray bytes" if buf else ""))
                break
            i = buf.index(b"\r\n\r\n") + 4
            headb = bytes(buf[:i])
            del buf[:i]
            m = re.match(rb"HTTP/1\.[01] (\d{3})", headb)
            if not m:
                problem = f"not an HTTP response: {headb[:60]!r}"
                break
            status = int(m.group(1))
            if 100 <= status < 200:
                continue
            r = Resp(status, headb, b"")
            cl = r.header("content-length")
            te = r.header("transfer-encoding")
            if head or status in (204, 304):
                pass
            elif te and b"chunked" in te.lower():
                body = bytearray()
                while True:
                    while b"\r\n" not in buf:
                        fill()
                        if eof[0] and b"\r\n" not in buf:
                            raise ConnectionError("eof in chunked body")
                    j = buf.index(b"\r\n")
                    size = int(bytes(buf[:j]).split(b";")[0], 16)
                    del buf[: j + 2]
                    if size == 0:
                        while b"\r\n" not in buf:
                            fill()
                        while not buf.startswith(b"\r\n"):  # trailers
                            k = buf.index(b"\r\n")
                            del buf[: k + 2]
                            while b"\r\n" not in buf:
                                fill()
                        del buf[:2]
                        break
                    while len(buf) < size + 2:
                        fill()
                        if eof[0] and len(buf) < size + 2:
                            raise ConnectionError("eof in chunked body")
                    body += buf[:size]
                    del buf[: size + 2]
                r.body = bytes(body)
            elif cl is not None:
                n = int(cl)
                while len(buf) < n and not eof[0]:
                    fill()
                if len(buf) < n:
                    problem = f"response body cut short ({len(buf)} of {n} bytes)"
                r.body = bytes(buf[:n])
                del buf[:n]
            else:
                while not eof[0]:
                    fill()
                r.body = bytes(buf)
                buf.clear()
            out.append(r)
        if linger and problem is None:  # a little more: a second (smuggled) response would show here
            end = time.monotonic() + linger
            s.settimeout(linger)
            try:
                while time.monotonic() < end and not eof[0]:
                    d = s.recv(65536)
                    if not d:
                        break
                    buf.extend(d)
            except (socket.timeout, OSError):
                pass
    except socket.timeout:
        problem = f"no {'response' if not out else 'further response'} within {timeout:.0f} s (hang)"
    except ConnectionResetError:
        problem = "connection reset" + (" without a response" if not out else f" after {len(out)} response(s)")
    except (ConnectionError, OSError, ValueError) as e:
        problem = f"{type(e).__name__}: {e}"
    finally:
        s.close()
    return out, problem, bytes(buf)


def snapshot():
    snap = {}
    for root, _dirs, files in os.walk(DATA):
        for f in files:
            p = os.path.join(root, f)
            try:
                st = os.stat(p)
            except OSError:
                continue
            snap[os.path.relpath(p, DATA)] = (st.st_size, st.st_mtime_ns)
    return snap


def snap_diff(a, b):
    changed = [k for k in b if a.get(k) != b[k]]
    gone = [k for k in a if k not in b]
    return changed, gone


# ---------------------------------------------------------------------------------------------- rows
class Row:
    def __init__(self, cls, name, req, expect=None, ok=None, bare=False, relay="none", store=None, forbid=(),
                 check=None, responses=1, half_close=False, head=False, tamper=None, settle=0.03,
                 max_body=None, max_secs=None, data=None, pre=()):
        self.cls, self.name = cls, name
        self.pre = pre  # requests sent (and required to succeed) before the row, outside its checks
        self.req = req
        self.data = data if data is not None else req.bytes()
        self.body = req.body if req is not None else b""
        self.expect = expect  # list of (status, code) for a refusal
        self.ok = ok  # set of statuses for a positive row
        self.bare = bare
        self.relay = relay  # none | head (may see the head, never the whole body) | any | forward
        self.store = store  # None: nothing stored; "any"; (key, body): that object is stored
        self.forbid = forbid
        self.check = check
        self.responses = responses
        self.half_close = half_close
        self.head = head
        self.tamper = tamper
        self.settle = settle
        self.max_body = max_body
        self.max_secs = max_secs


ROWS = []
_keyn = [0]


def key(tag="r"):
    _keyn[0] += 1
    return f"{tag}{_keyn[0]:03d}"


def body(tag):
    return b"hostile-body-" + tag.encode() + b"-" + os.urandom(8).hex().encode()


def neg(cls, name, req, case=None, expect=None, **kw):
    if expect is None:
        expect = EXPECT[cls][case]
    ROWS.append(Row(cls, name, req, expect=expect, **kw))


def pos(cls, name, req, ok=(200,), relay="forward", **kw):
    ROWS.append(Row(cls, name, req, ok=set(ok), relay=relay, **kw))


def raw(cls, name, data, case, **kw):
    kw.setdefault("bare", True)
    ROWS.append(Row(cls, name, None, expect=EXPECT[cls][case], data=data, **kw))


def relay_saw(line):
    """A check: the origin saw this request line."""

    def chk(resps, sent):
        if line not in sent:
            first = sent.split(b"\r\n", 1)[0] if sent else b"nothing"
            return f"the origin did not see {line!r} (it saw {first!r})"
        return None

    return chk


def status_not(*bad):
    def chk(resps, sent):
        if resps and (resps[0].status in bad or resps[0].status >= 500):
            return f"status {resps[0].short()}"
        return None

    return chk


def both(*checks):
    def chk(resps, sent):
        for c in checks:
            e = c(resps, sent)
            if e:
                return e
        return None

    return chk


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big"))


def sha256_b64(data):
    import hashlib

    return base64.b64encode(hashlib.sha256(data).digest())


def md5_b64(data):
    import hashlib

    return base64.b64encode(hashlib.md5(data).digest())  # noqa: S324 (Content-MD5 is MD5)


def build_rows(S, proxy_port, relay_port, canary_port):
    P = f"/{BUCKET}/"
    PH = f"127.0.0.1:{proxy_port}".encode()
    CAN = f"127.0.0.1:{canary_port}".encode()
    REL = f"127.0.0.1:{relay_port}".encode()
    OTHER = Signer("OTHERACCESSKEY0000", "other-secret-key", REGION, PH)

    # ------------------------------------------------------------------------------------------ controls
    k = key("ctl")
    b_ = body(k)
    pos("control", "put-v4-hex", S.v4("PUT", P + k, body=b_), store=(k, b_))
    pos("control", "get-v4", S.v4("GET", P + "ping"), check=lambda r, s: None if r[0].body == PING else "wrong body")
    k = key("ctl")
    b_ = body(k)
    pos("control", "put-v4-unsigned-payload", S.v4("PUT", P + k, body=b_, payload=UNSIGNED), store=(k, b_))
    pos("control", "get-presigned-v4", S.presign_v4("GET", P + "ping"))
    k = key("ctl")
    b_ = body(k)
    pos("control", "put-presigned-v4", S.presign_v4("PUT", P + k, body=b_), store=(k, b_))
    k = key("ctl")
    b_ = body(k)
    pos("control", "put-presigned-v4-signed-header-hash",
        S.presign_v4("PUT", P + k, body=b_, headers=[("x-amz-content-sha256", sha256_hex(b_))],
                     signed=["host", "x-amz-content-sha256"]), store=(k, b_))
    k = key("ctl")
    b_ = body(k)
    pos("control", "put-presigned-v4-query-hash",
        S.presign_v4("PUT", P + k, query=b"X-Amz-Content-Sha256=" + sha256_hex(b_), body=b_,
                     payload_line=sha256_hex(b_)), store=(k, b_))
    k = key("ctl")
    b_ = body(k)
    pos("control", "put-v2-header", S.v2("PUT", P + k, body=b_, headers=[("Content-Type", "text/plain"),
                                                                          ("Content-MD5", md5_b64(b_))]),
        store=(k, b_))
    pos("control", "get-v2-header", S.v2("GET", P + "ping"))
    pos("control", "get-presigned-v2", S.presign_v2("GET", P + "ping"))
    pos("control", "get-presigned-v2-x-id", S.presign_v2("GET", P + "ping", extra=b"x-id=GetObject"))
    pos("control", "get-presigned-v2-expires-6d", S.presign_v2("GET", P + "ping", expires=int(time.time()) + 6 * 86400))
    k = key("ctl")
    pos("control", "put-empty-cl0-empty-hash",
        S.v4("PUT", P + k, headers=[("Content-Length", "0")], payload=EMPTY_SHA256), store=(k, b""))
    r = S.v4("GET", P + "ping")
    r.version = b"HTTP/1.0"
    pos("control", "get-http10", r)
    pos("control", "95-headers", S.v4("GET", P + "ping", headers=[(f"X-Pad-{i}", "p") for i in range(90)]))
    pos("control", "target-8000", S.v4("GET", P + "ping?x-pad=" + "a" * (8000 - len(P) - 15)))
    pos("control", "presigned-v4-absent-content-type-unsigned",
        S.presign_v4("GET", P + "ping", headers=[("Content-Type", "text/plain")]))
    for conn in ("keep-alive", "close"):  # a Connection header that names no signed header is fine
        k = key("ctl")
        b_ = body(k)
        pos("control", f"put-v4-connection-{conn}", S.v4("PUT", P + k, body=b_, headers=[("Connection", conn)]),
            store=(k, b_))
    for mode in ("signed", "signed-trailer", "unsigned-trailer"):
        k = key("ctl")
        b_ = body(k) * 50
        pos("control", f"put-aws-chunked-{mode}", chunked_req(S, P + k, [b_[:1000], b_[1000:]], mode), store=(k, b_))

    # ------------------------------------------------------------------------------------------ hole 1
    c = "h1-connection"
    k = key()
    good, evil = body(k), body(k + "-evil")
    for conn in ("content-md5", "Content-MD5", "keep-alive, content-md5", "close, Content-MD5"):
        k = key()
        neg(c, f"v4-put-content-md5[{conn}]",
            S.v4("PUT", P + k, body=evil, payload=UNSIGNED,
                 headers=[("Content-MD5", md5_b64(good)), ("Connection", conn)],
                 signed=["content-md5", "host", "x-amz-content-sha256", "x-amz-date"]),
            "names-signed")
    for hname, hval in (("x-amz-meta-owner", "alice"), ("Content-Type", "text/plain"),
                        ("x-amz-tagging", "a=b"), ("x-amz-checksum-sha256", sha256_b64(good)),
                        ("If-None-Match", "*"), ("x-amz-acl", "private"), ("Cache-Control", "no-store")):
        k = key()
        neg(c, f"v4-put-{hname.lower()}",
            S.v4("PUT", P + k, body=evil, payload=UNSIGNED, headers=[(hname, hval), ("Connection", hname)],
                 signed=sorted(["host", "x-amz-content-sha256", "x-amz-date", hname.lower()])),
            "names-signed")
    neg(c, "v4-get-range", S.v4("GET", P + "ping", headers=[("Range", "bytes=0-1"), ("Connection", "range")],
                                signed=["host", "range", "x-amz-content-sha256", "x-amz-date"]), "names-signed")
    for name in ("x-amz-date", "x-amz-content-sha256", "host"):
        neg(c, f"v4-get-{name}", S.v4("GET", P + "ping", headers=[("Connection", name)]), "names-signed")
    k = key()
    neg(c, "presigned-put-content-md5",
        S.presign_v4("PUT", P + k, body=evil, headers=[("Content-MD5", md5_b64(good)), ("Connection", "content-md5")],
                     signed=["content-md5", "host"]), "names-signed")
    neg(c, "presigned-get-range",
        S.presign_v4("GET", P + "ping", headers=[("Range", "bytes=0-1"), ("Connection", "range")],
                     signed=["host", "range"]), "names-signed")
    k = key()
    neg(c, "presigned-put-if-none-match",
        S.presign_v4("PUT", P + k, body=evil, headers=[("If-None-Match", "*"), ("Connection", "if-none-match")],
                     signed=["host", "if-none-match"]), "names-signed")
    k = key()
    neg(c, "v2-put-content-md5",
        S.v2("PUT", P + k, body=evil, headers=[("Content-MD5", md5_b64(good)), ("Connection", "content-md5")]),
        "names-signed")
    k = key()
    neg(c, "v2-put-content-type",
        S.v2("PUT", P + k, body=evil, headers=[("Content-Type", "text/plain"), ("Connection", "Content-Type")]),
        "names-signed")
    k = key()
    neg(c, "v2-put-x-amz-meta",
        S.v2("PUT", P + k, body=evil, headers=[("x-amz-meta-owner", "alice"), ("Connection", "x-amz-meta-owner")]),
        "names-signed")
    k = key()
    r = S.v4("PUT", P + k, body=evil, payload=UNSIGNED, headers=[("Content-MD5", md5_b64(good))],
             signed=["content-md5", "host", "x-amz-content-sha256", "x-amz-date"])
    r.add("Connection", "keep-alive").add("Connection", "content-md5")
    neg(c, "v4-two-connection-headers", r, "names-signed")

    # ------------------------------------------------------------------------------------------ hole 2
    c = "h2-presigned-hash"
    for variant in ("other-body", "empty-hash", "longer-body"):
        k = key()
        good = body(k)
        sent = {"other-body": body(k + "x"), "empty-hash": good, "longer-body": good + b"!"}[variant]
        h = EMPTY_SHA256 if variant == "empty-hash" else sha256_hex(good)
        neg(c, f"presigned-header-hash-{variant}",
            S.presign_v4("PUT", P + k, body=sent, headers=[("x-amz-content-sha256", h)],
                         signed=["host", "x-amz-content-sha256"]), "mismatch", relay="head")
    k = key()
    good = body(k)
    neg(c, "presigned-query-hash-other-body",
        S.presign_v4("PUT", P + k, query=b"X-Amz-Content-Sha256=" + sha256_hex(good), body=body(k + "x"),
                     payload_line=sha256_hex(good)), "mismatch", relay="head")
    k = key()
    neg(c, "presigned-header-hash-with-meta",
        S.presign_v4("PUT", P + k, body=body(k + "x"),
                     headers=[("x-amz-content-sha256", sha256_hex(good)), ("x-amz-meta-a", "1")],
                     signed=["host", "x-amz-content-sha256", "x-amz-meta-a"]), "mismatch", relay="head")
    k = key()
    neg(c, "v2-header-amz-hash",
        S.v2("PUT", P + k, body=body(k + "x"), headers=[("x-amz-content-sha256", sha256_hex(good))]),
        "mismatch", relay="head")
    k = key()
    neg(c, "v2-presigned-amz-hash",
        S.presign_v2("PUT", P + k, body=body(k + "x"), headers=[("x-amz-content-sha256", sha256_hex(good))]),
        "mismatch", relay="head")
    k = key()
    b_ = body(k) * 4000  # > one read: the check must hold across frames too
    neg(c, "presigned-header-hash-large-body",
        S.presign_v4("PUT", P + k, body=b_[:-1] + b"X", headers=[("x-amz-content-sha256", sha256_hex(b_))],
                     signed=["host", "x-amz-content-sha256"]), "mismatch", relay="head")

    # ------------------------------------------------------------------------------------------ hole 3
    c = "h3-signedheaders"
    std = ["host", "x-amz-content-sha256", "x-amz-date"]
    for name, names in (("repeated-host", ["host", "host", "x-amz-content-sha256", "x-amz-date"]),
                        ("repeated-date", ["host", "x-amz-content-sha256", "x-amz-date", "x-amz-date"]),
                        ("unsorted-1", ["x-amz-date", "host", "x-amz-content-sha256"]),
                        ("unsorted-2", ["host", "x-amz-date", "x-amz-content-sha256"]),
                        ("absent-header", std + ["x-amz-meta-absent"]),
                        ("absent-range", ["host", "range", "x-amz-content-sha256", "x-amz-date"]),
                        ("empty-name", ["host", "", "x-amz-content-sha256", "x-amz-date"]),
                        ("trailing-semicolon", std + [""])):
        k = key()
        neg(c, f"header-{name}", S.v4("PUT", P + k, body=body(k), signed=names), "header")
    neg(c, "header-uppercase-name", S.v4("GET", P + "ping", signed=["Host", "x-amz-content-sha256", "x-amz-date"]),
        expect=[AHM, SDNM])
    r = S.v4("GET", P + "ping", signed=["host"] * 1500 + ["x-amz-content-sha256", "x-amz-date"])
    r.headers[-1] = (b"Authorization", re.sub(rb"Signature=[0-9a-f]+", b"Signature=" + b"0" * 64, r.headers[-1][1]))
    neg(c, "header-bomb-1500-host-garbage-sig", r, "header", max_body=64 << 10, max_secs=2.0)
    hdrs = [("x-amz-meta-a", "v" * 200)] * 20
    r = S.v4("GET", P + "ping", headers=hdrs, signed=["host"] + ["x-amz-meta-a"] * 700 + ["x-amz-content-sha256",
                                                                                           "x-amz-date"])
    r.headers[-1] = (b"Authorization", re.sub(rb"Signature=[0-9a-f]+", b"Signature=" + b"0" * 64, r.headers[-1][1]))
    neg(c, "header-bomb-700x20-values-garbage-sig", r, "header-dup-values", max_body=64 << 10, max_secs=2.0)
    for name, names, hdrs in (("repeated-host", ["host", "host"], []),
                              ("unsorted", ["x-amz-meta-a", "host"], [("x-amz-meta-a", "1")]),
                              ("absent-header", ["host", "x-amz-meta-absent"], []),
                              ("empty", [], [])):
        k = key()
        neg(c, f"presigned-{name}", S.presign_v4("PUT", P + k, body=body(k), signed=names, headers=hdrs),
            "presigned")
    r = S.presign_v4("GET", P + "ping", signed=["host"] * 1000)  # a 7.4 KB target: under the 8 KiB limit
    r.target = re.sub(rb"X-Amz-Signature=[0-9a-f]+", b"X-Amz-Signature=" + b"0" * 64, r.target)
    neg(c, "presigned-bomb-1000-host-garbage-sig", r, "presigned", max_body=64 << 10, max_secs=2.0)

    # ------------------------------------------------------------------------------------------ hole 4
    c = "h4-v2-params"
    for extra in (b"x-amz-acl=public-read", b"X-Amz-Acl=public-read", b"x-amz-meta-evil=1",
                  b"X-Amz-Security-Token=abc", b"session", b"session=", b"metadataTable", b"x-amz-tagging=a%3Db",
                  b"x-amz-server-side-encryption=AES256", b"x-amz-checksum-mode=ENABLED", b"foo=bar",
                  b"X-Amz-Date=20200101T000000Z", b"x-amz-storage-class=GLACIER"):
        neg(c, f"presigned-get+{extra.decode()}", S.presign_v2("GET", P + "ping", extra=extra), "disallowed")
    k = key()
    neg(c, "presigned-put+x-amz-acl", S.presign_v2("PUT", P + k, body=body(k), extra=b"x-amz-acl=public-read"),
        "disallowed")
    k = key()
    neg(c, "presigned-put+x-amz-meta", S.presign_v2("PUT", P + k, body=body(k), extra=b"x-amz-meta-evil=1"),
        "disallowed")
    for extra in (b"x-amz-acl=public-read", b"session", b"metadataTable", b"X-Amz-Security-Token=abc", b"foo=bar"):
        neg(c, f"header-get+{extra.decode()}", S.v2("GET", P + "ping?" + extra.decode()), "disallowed")
    for extra in (b"response-content-type=text/evil", b"partNumber=1", b"versionId=x", b"uploads"):
        neg(c, f"presigned-get+unsigned-{extra.decode().split('=')[0]}", S.presign_v2("GET", P + "ping", extra=extra),
            "unsigned-subresource")

    # ------------------------------------------------------------------------------------------ hole 5
    c = "h5-dup-signed"
    for hname, v1, v2 in (("Content-Type", "text/plain", "application/evil"),
                          ("Content-MD5", "md5", "md5-other"), ("x-amz-meta-a", "1", "2"),
                          ("x-amz-acl", "private", "public-read")):
        k = key()
        b_ = body(k)
        if hname == "Content-MD5":
            v1, v2 = md5_b64(b_), md5_b64(b"other")
        r = Req("PUT", P + k)
        r.add("Host", PH).add("Date", http_date()).add(hname, v1).add(hname, v2).add("Content-Length", len(b_))
        r.body = b_
        neg(c, f"v2-two-{hname.lower()}", S.authorize_v2(r), "dup")
    for hname, v1, v2 in (("Content-Type", "text/plain", "application/evil"), ("x-amz-meta-a", "1", "2"),
                          ("Range", "bytes=0-1", "bytes=2-3")):
        k = key()
        b_ = body(k)
        is_get = hname == "Range"
        r = S.v4("GET" if is_get else "PUT", P + ("ping" if is_get else k), body=b"" if is_get else b_,
                 headers=[(hname, v1), (hname, v2)])
        neg(c, f"v4-two-{hname.lower()}", r, "dup")
    k = key()
    neg(c, "presigned-v4-two-content-type",
        S.presign_v4("PUT", P + k, body=body(k), headers=[("Content-Type", "a/b"), ("Content-Type", "c/d")],
                     signed=["content-type", "host"]), "dup")
    k = key()
    neg(c, "presigned-v2-two-content-type",
        S.presign_v2("PUT", P + k, body=body(k), headers=[("Content-Type", "a/b"), ("Content-Type", "c/d")]), "dup")
    r = Req("GET", P + "ping").add("Host", PH).add("Date", http_date()).add("Date", http_date(time.time() - 60))
    neg(c, "v2-two-date", S.authorize_v2(r), "dup")

    # ------------------------------------------------------------------------------------------ hole 6
    c = "h6-non-utf8"
    fffd = "\ufffd".encode()
    for raw_b in (b"\xe9", b"\xff", b"\xc3\x28", b"\x80"):
        k = key()
        lossy = (b"caf" + raw_b).decode("utf-8", "replace").encode()
        neg(c, f"v4-meta-{raw_b.hex()}-signed-as-fffd",
            S.v4("PUT", P + k, body=body(k), headers=[("x-amz-meta-a", b"caf" + raw_b)],
                 overrides={b"x-amz-meta-a": lossy}), "header")
    k = key()
    neg(c, "v4-content-type-e9-signed-as-fffd",
        S.v4("PUT", P + k, body=body(k), headers=[("Content-Type", b"text/\xe9")],
             overrides={b"content-type": b"text/" + fffd}), "header")
    for raw_b in (b"\xe9", b"\xff"):
        k = key()
        neg(c, f"v2-meta-{raw_b.hex()}-signed-as-fffd",
            S.v2("PUT", P + k, body=body(k), headers=[("x-amz-meta-a", b"caf" + raw_b)],
                 overrides={b"x-amz-meta-a": b"caf" + fffd}), "header")
    k = key()
    neg(c, "v2-content-type-e9-signed-as-fffd",
        S.v2("PUT", P + k, body=body(k), headers=[("Content-Type", b"text/\xe9")],
             overrides={b"content-type": b"text/" + fffd}), "header")
    for enc in (b"%E9", b"%FF", b"%C3%28", b"%ED%A0%80", b"%C0%AF"):
        for how in ("lossy", "raw"):
            ov = {b"?response-content-type": pct_decode(enc).decode("utf-8", "replace").encode()} if how == "lossy" \
                else None
            neg(c, f"v2-presigned-query-{enc.decode()}-{how}",
                S.presign_v2("GET", P + "ping", query=b"response-content-type=" + enc, overrides=ov), "v2-query")
        neg(c, f"v2-header-query-{enc.decode()}",
            S.v2("GET", P + "ping?response-content-type=" + enc.decode()), "v2-query")

    # ------------------------------------------------------------------------------------------ hole 7
    c = "h7-cl0-hash"
    nonempty = sha256_hex(b"abc")
    k = key()
    neg(c, "v4-put-cl0", S.v4("PUT", P + k, headers=[("Content-Length", "0")], payload=nonempty), "mismatch")
    neg(c, "v4-get-cl0", S.v4("GET", P + "ping", headers=[("Content-Length", "0")], payload=nonempty), "mismatch")
    k = key()
    neg(c, "v4-post-cl0", S.v4("POST", P + k + "?uploads", headers=[("Content-Length", "0")], payload=nonempty),
        "mismatch")
    k = key("victim")
    neg(c, "v4-delete-cl0", S.v4("DELETE", P + k, headers=[("Content-Length", "0")], payload=nonempty),
        "mismatch", pre=[S.v4("PUT", P + k, body=b"victim")])
    k = key()
    neg(c, "presigned-header-hash-cl0",
        S.presign_v4("PUT", P + k, headers=[("x-amz-content-sha256", nonempty), ("Content-Length", "0")],
                     signed=["host", "x-amz-content-sha256"]), "mismatch")
    k = key()
    neg(c, "presigned-query-hash-cl0",
        S.presign_v4("PUT", P + k, query=b"X-Amz-Content-Sha256=" + nonempty, headers=[("Content-Length", "0")],
                     payload_line=nonempty), "mismatch")

    # ------------------------------------------------------------------------------------------ hole 8
    c = "h8-v2-expires"
    now = int(time.time())
    for name, exp in (("year-9999", 253402300799), ("7d+1h", now + 7 * 86400 + 3600), ("2038", 2**31),
                      ("i64-max", 2**63 - 1)):
        neg(c, f"presigned-get-{name}", S.presign_v2("GET", P + "ping", expires=exp), "too-far")
    k = key()
    neg(c, "presigned-put-year-9999", S.presign_v2("PUT", P + k, body=body(k), expires=253402300799), "too-far")
    neg(c, "presigned-get-overflow", S.presign_v2("GET", P + "ping", expires=10**20), "overflow")

    # ------------------------------------------------------------------------------------------ hole 9
    c = "h9-presigned-amz-query"
    k = key()
    good = body(k)
    neg(c, "presigned-put-query-checksum-sha256-mismatch",
        S.presign_v4("PUT", P + k, query=b"x-amz-checksum-sha256=" + uri_encode(sha256_b64(good)), body=body(k + "x")),
        "constraint", relay="any")
    k = key()
    neg(c, "presigned-put-query-checksum-crc32-mismatch",
        S.presign_v4("PUT", P + k, query=b"x-amz-checksum-crc32=" + uri_encode(crc32_b64(good)), body=body(k + "x")),
        "constraint", relay="any")
    k = key()
    neg(c, "presigned-put-query-content-md5-mismatch",
        S.presign_v4("PUT", P + k, query=b"Content-MD5=" + uri_encode(md5_b64(good)) + b"&x-amz-meta-a=1",
                     body=body(k + "x")),
        "constraint", relay="any", store="any-but-body")

    # ------------------------------------------------------------------------------------------ hole 10
    c = "h10-origin-errors"

    def break_sig(data):  # the origin gets a wrong signature: it answers SignatureDoesNotMatch
        return re.sub(rb"Signature=[0-9a-f]{64}", b"Signature=" + b"0" * 64, data)

    def break_key(data):
        return data.replace(ORIGIN_AK.encode(), b"X" * len(ORIGIN_AK))

    for name, fn in (("origin-signature-mismatch", break_sig), ("origin-unknown-key", break_key)):
        ROWS.append(Row(c, f"get-{name}", S.v4("GET", P + "ping"), relay="forward", tamper=fn,
                        check=origin_auth_error_hidden, ok=None, expect=None))
    k = key()
    ROWS.append(Row(c, "put-origin-signature-mismatch", S.v4("PUT", P + k, body=body(k)), relay="forward",
                    tamper=break_sig, check=origin_auth_error_hidden))

    # ------------------------------------------------------------------------------------------ ambiguity
    c = "ambiguity"
    b_ = body("two-auth")
    for name, first, second in (("identical", "v4", "v4"), ("valid+empty", "v4", ""), ("empty+valid", "", "v4"),
                                ("valid+garbage", "v4", "AWS4-HMAC-SHA256 garbage"), ("garbage+valid", "garbage", "v4"),
                                ("valid+v2", "v4", "v2"), ("v2+valid", "v2", "v4"), ("valid+other-key", "v4", "other"),
                                ("other-key+valid", "other", "v4")):
        k = key()
        r = S.v4("PUT", P + k, body=b_)
        alts = {"v4": r.get("authorization"), "v2": S.v2("PUT", P + k, body=b_).get("authorization"),
                "other": OTHER.v4("PUT", P + k, body=b_).get("authorization")}
        r.drop("authorization")
        r.headers.insert(len(r.headers) - 1, (b"Authorization", alts.get(first, first.encode())))
        r.headers.insert(len(r.headers) - 1, (b"authorization", alts.get(second, second.encode())))
        neg(c, f"two-authorization-{name}", r, "dup-auth")
    k = key()
    r = S.presign_v4("PUT", P + k, body=b_)
    r.add("Authorization", S.v4("PUT", P + k, body=b_).get("authorization"))
    neg(c, "authorization-and-presigned", r, "dup-auth")
    d, sd = amz_now()
    for name, d2 in (("identical", d), ("other-hour", amz_now(time.time() - 3600)[0]), ("garbage", b"garbage")):
        k = key()
        r = S.v4("PUT", P + k, body=body(k), headers=[("X-Amz-Date", d2)], amz_date=d)
        neg(c, f"two-x-amz-date-{name}", r, "dup-date")
    r = Req("GET", P + "ping").add("Host", PH).add("x-amz-date", http_date()).add("x-amz-date", http_date())
    neg(c, "v2-two-x-amz-date", S.authorize_v2(r), "dup-date")
    k = key()
    b_ = body(k)
    for name, p1, p2 in (("unsigned+hex", UNSIGNED, sha256_hex(b_)), ("hex+unsigned", sha256_hex(b_), UNSIGNED),
                         ("other-hex+hex", sha256_hex(b"x"), sha256_hex(b_)), ("identical", sha256_hex(b_),
                                                                                sha256_hex(b_)),
                         ("streaming+unsigned", b"STREAMING-UNSIGNED-PAYLOAD-TRAILER", UNSIGNED)):
        k = key()
        r = S.v4("PUT", P + k, body=b_, payload=p1, headers=[("x-amz-content-sha256", p2)])
        neg(c, f"two-x-amz-content-sha256-{name}", r, "dup-sha256")
    for name, h2 in (("identical", PH), ("canary", CAN), ("evil", b"evil.example"), ("empty", b"")):
        k = key()
        r = S.v4("PUT", P + k, body=body(k), headers=[("Host", h2)])
        neg(c, f"two-host-{name}", r, "dup-host")
    r = S.v4("GET", P + "ping", host=CAN, headers=[("Host", PH)])
    neg(c, "two-host-canary-first", r, "dup-host")
    port = str(proxy_port).encode()
    for name, h in (("userinfo", b"user@" + PH), ("userinfo-pass", b"u:p@" + PH), ("path", PH + b"/x"),
                    ("non-numeric-port", b"127.0.0.1:abc"), ("two-ports", PH + b":" + port),
                    ("negative-port", b"127.0.0.1:-1"), ("port-too-big", b"127.0.0.1:99999"),
                    ("plus-port", b"127.0.0.1:+" + port), ("trailing-colon-dot", PH + b"."),
                    ("query", PH + b"?x"), ("fragment", PH + b"#x"), ("space", b"127.0.0.1 " + port),
                    ("unclosed-bracket", b"[::1:" + port), ("empty", b"")):
        k = key()
        neg(c, f"bad-host-{name}", S.v4("PUT", P + k, body=body(k), host=h), "bad-host")
    # a second copy of an auth parameter, signed (the canonical query holds both): only the duplicate rule refuses
    d_other = amz_now(time.time() + 60)[0]  # sorts after the signed one (a proxy that takes the first uses that)
    cred2 = uri_encode(b"/".join([CLIENT_AK.encode(), amz_now()[1], REGION.encode(), b"s3", b"aws4_request"]))
    for param, dup in (("X-Amz-Date", d_other), ("X-Amz-Credential", cred2), ("X-Amz-Expires", b"7200"),
                       ("X-Amz-SignedHeaders", b"host"), ("X-Amz-Algorithm", b"AWS4-HMAC-SHA256")):
        r = S.presign_v4("GET", P + "ping", extra_auth=param.encode() + b"=" + dup)
        neg(c, f"presigned-two-{param}", r, "dup-presigned-param")
    for name, garbage in (("garbage-sorts-after", b"f" * 64), ("garbage-sorts-first", b"0" * 64)):
        r = S.presign_v4("GET", P + "ping")
        r.target += b"&X-Amz-Signature=" + garbage
        neg(c, f"presigned-two-X-Amz-Signature-{name}", r, "dup-presigned-param")
    r = S.presign_v4("GET", P + "ping")
    sig = r.target.rsplit(b"=", 1)[1]
    r.target = r.target.replace(b"X-Amz-Signature=" + sig, b"X-Amz-Signature=" + b"f" * 64 + b"&X-Amz-Signature=" + sig)
    neg(c, "presigned-two-X-Amz-Signature-valid-second-on-wire", r, "dup-presigned-param")
    for param in ("Signature", "AWSAccessKeyId", "Expires"):
        r = S.presign_v2("GET", P + "ping")
        m = re.search(rb"[?&]" + param.encode() + rb"=([^&]*)", r.target)
        r.target += b"&" + param.encode() + b"=" + m.group(1)
        neg(c, f"v2-presigned-two-{param}", r, "dup-v2-param")
    for name, dv in (("garbage", b"garbage"), ("before-1970", b"Wed, 31 Dec 1969 23:59:59 GMT"),
                     ("year-0000", b"Sat, 01 Jan 0000 00:00:00 GMT"), ("day-32", b"Mon, 32 Jan 2024 00:00:00 GMT"),
                     ("minus-one", b"-1"), ("empty", b""), ("unix-seconds", str(int(time.time())).encode())):
        k = key()
        neg(c, f"v2-date-{name}", S.v2("PUT", P + k, body=body(k), date=dv), "v2-bad-date")
    k = key()
    neg(c, "v2-x-amz-date-garbage", S.v2("PUT", P + k, body=body(k), headers=[("x-amz-date", "garbage")]),
        "v2-bad-date")
    neg(c, "v2-date-year-2000-skewed", S.v2("GET", P + "ping", date=b"Sat, 01 Jan 2000 00:00:00 GMT"),
        "v2-skewed-date")
    for v in (b"+60", b"%2B60", b"060", b"60.0", b"%2060", b"6e1", b"0x3c", b"-0", b"0", b"604801", b"+0000000060"):
        neg(c, f"presigned-expires-{v.decode()}", S.presign_v4("GET", P + "ping", expires=v), "expires-noncanonical")
    for v in (b"%2B" + str(now + 600).encode(), b"0" + str(now + 600).encode(), str(now + 600).encode() + b".0"):
        neg(c, f"v2-expires-{v.decode()}", S.presign_v2("GET", P + "ping", expires=v), "v2-expires-noncanonical")
        # signed over the number's canonical text: only the number rule can refuse it
        neg(c, f"v2-expires-{v.decode()}-signed-canonical",
            S.presign_v2("GET", P + "ping", expires=v, sign_expires=str(now + 600)), "v2-expires-noncanonical")
    k = key()
    neg(c, "decoded-content-length-plus",
        chunked_req(S, P + k, [b"hello"], "unsigned-trailer", decoded=b"+5"), "number-noncanonical")
    k = key()
    neg(c, "content-length-plus", S.v4("PUT", P + k, body=b"hello", headers=[("Content-Length", "+5")]),
        "number-noncanonical", bare=True)
    k = key()
    neg(c, "content-length-leading-space-plus", S.v4("PUT", P + k, body=b"hello", headers=[("Content-Length", " +5")]),
        "number-noncanonical", bare=True)

    # ------------------------------------------------------------------------------------------ methods
    c = "methods"
    for m in ("delete", "Delete", "DELETEX"):  # the object must survive
        k = key("victim")
        neg(c, f"v4-{m}", S.v4(m, P + k), "not-s3", pre=[S.v4("PUT", P + k, body=b"victim")])
    for m in ("TRACE", "PATCH", "PROPFIND", "get", "Get", "gET", "head", "MKCOL", "COPY", "MOVE", "LOCK",
              "UNLOCK", "PROPPATCH", "SEARCH", "REPORT", "PURGE", "LINK", "UNLINK", "QUERY", "BREW", "FOO", "X",
              "M-SEARCH", "ACL", "OPTIONSX", "GETS"):
        neg(c, f"v4-{m}", S.v4(m, P + "ping"), "not-s3")
    for m in ("PATCH", "put", "post", "MERGE"):
        k = key()
        neg(c, f"v4-{m}-with-body", S.v4(m, P + k, body=body(k)), "not-s3")
    for target, name in ((CAN, "canary"), (REL, "relay"), (b"evil.example:443", "evil")):
        r = S.v4("CONNECT", target, host=target if name != "evil" else PH)
        neg(c, f"v4-CONNECT-{name}", r, "not-s3")
    neg(c, "v4-CONNECT-origin-form", S.v4("CONNECT", P + "ping"), "not-s3", bare=True)
    for m in ("TRACE", "PATCH", "get", "PROPFIND"):
        neg(c, f"v2-{m}", S.v2(m, P + "ping"), "not-s3")
    for m in ("TRACE", "PATCH", "get", "PROPFIND"):
        neg(c, f"presigned-v4-{m}", S.presign_v4(m, P + "ping"), "not-s3")
    for m in ("TRACE", "get"):
        neg(c, f"presigned-v2-{m}", S.presign_v2(m, P + "ping"), "not-s3")

    # ------------------------------------------------------------------------------------------ sizes
    c = "sizes"
    long_key = "k" * 8300
    neg(c, "target-path-8300", S.v4("GET", P + long_key), "target")
    neg(c, "target-query-8300", S.v4("GET", P + "ping?x-pad=" + "a" * 8300), "target")
    neg(c, "target-20k", S.v4("GET", P + "ping?x-pad=" + "a" * 20000), "target")
    neg(c, "target-100k", S.v4("GET", P + "ping?x-pad=" + "a" * 100000), "target")
    neg(c, "target-200k", S.v4("GET", P + "ping?x-pad=" + "a" * 200000), "target")
    k = key()
    neg(c, "target-put-path-9k", S.v4("PUT", P + k + "x" * 9000, body=body(k)), "target")
    neg(c, "target-presigned-9k", S.presign_v4("GET", P + "ping", query=b"x-pad=" + b"a" * 9000), "target")
    neg(c, "target-v2-9k", S.v2("GET", P + "k" * 9000), "target")
    neg(c, "header-one-17k", S.v4("GET", P + "ping", headers=[("X-Pad", "a" * 17 * 1024)]), "header-section")
    neg(c, "header-signed-meta-17k", S.v4("GET", P + "ping", headers=[("x-amz-meta-big", "a" * 17 * 1024)]),
        "header-section")
    neg(c, "header-20x1k", S.v4("GET", P + "ping", headers=[(f"X-Pad-{i}", "a" * 1024) for i in range(20)]),
        "header-section")
    neg(c, "header-100k", S.v4("GET", P + "ping", headers=[(f"X-Pad-{i}", "a" * 4096) for i in range(25)]),
        "header-section")
    neg(c, "header-200k", S.v4("GET", P + "ping", headers=[(f"X-Pad-{i}", "a" * 8192) for i in range(25)]),
        "header-section")
    k = key()
    neg(c, "header-put-20k", S.v4("PUT", P + k, body=body(k), headers=[("X-Pad", "a" * 20 * 1024)]),
        "header-section")
    for n in (101, 110, 150, 200):
        # the signer adds Host, x-amz-date, x-amz-content-sha256, Authorization: n headers in all
        neg(c, f"headers-{n}", S.v4("GET", P + "ping", headers=[(f"X-P{i}", "p") for i in range(n - 4)]),
            "header-count")
    k = key()
    neg(c, "headers-120-put", S.v4("PUT", P + k, body=body(k), headers=[(f"X-P{i}", "p") for i in range(115)]),
        "header-count")
    neg(c, "query-params-1001", S.v4("GET", P + "ping?" + "&".join(f"a{i}=" for i in range(1001))), "query-params")
    neg(c, "query-params-1500-no-value", S.v4("GET", P + "ping?" + "&".join(["a"] * 1500)), "query-params")
    neg(c, "query-params-1001-same-name", S.v4("GET", P + "ping?" + "&".join(["a="] * 1001)), "query-params")
    neg(c, "query-params-presigned-1001",
        S.presign_v4("GET", P + "ping", query="&".join(f"a{i}=" for i in range(1001)).encode()), "query-params")
    neg(c, "query-params-v2-1001", S.v2("GET", P + "ping?" + "&".join(f"a{i}=" for i in range(1001))),
        "query-params")

    # ------------------------------------------------------------------------------------------ encoding
    c = "encoding"
    for esc in ("%", "%2", "%zz", "%G1", "%%41", "%C3%28", "%FF", "%ED%A0%80", "%C0%AF", "%E9"):
        neg(c, f"path-get-a{esc}", S.v4("GET", P + "a" + esc), "bad-escape")
    for esc in ("%", "%zz", "%C3%28", "%FF"):
        k = key()
        neg(c, f"path-put-a{esc}", S.v4("PUT", P + k + esc, body=body(k)), "bad-escape")
    for q in ("a=%", "a=%zz", "%zz=1", "a=%G0", "response-content-type=%"):
        neg(c, f"query-{q}", S.v4("GET", P + "ping?" + q), "bad-escape")
    for byte in (b"\x80", b"\xff", b"\xe9", b"\x7f", b"\x00", b"\x01", b"\t"):
        neg(c, f"path-raw-{byte.hex()}", S.v4("GET", P.encode() + b"a" + byte + b"b"), "raw-byte", bare=True)
    for byte in (b'"', b"<", b">", b"{", b"}", b"|", b"\\", b"^", b"`"):
        neg(c, f"path-raw-ascii-{byte.hex()}", S.v4("GET", P.encode() + b"a" + byte + b"b"), "raw-ascii", bare=True)
    for byte in (b"\x80", b"\xe9", b"\x7f"):
        neg(c, f"query-raw-{byte.hex()}", S.v4("GET", P.encode() + b"ping?x-a=" + byte), "raw-byte", bare=True)
    for byte in (b'"', b"{", b"|"):
        neg(c, f"query-raw-ascii-{byte.hex()}", S.v4("GET", P.encode() + b"ping?x-a=" + byte), "raw-ascii",
            bare=True)
    for byte in (b"\x00", b"\x01", b"\x7f", b"\x1b"):
        r = S.v4("GET", P + "ping", headers=[("x-amz-meta-a", b"a" + byte + b"b")])
        neg(c, f"header-value-raw-{byte.hex()}", r, "raw-byte", bare=True)
    for hn in (b"X Foo", b"x-amz-meta-\xe9", b"(bad)", b"x-amz-meta-a@", b"\x80"):
        r = S.v4("GET", P + "ping")
        r.headers.insert(1, (hn, b"1"))
        neg(c, f"header-name-{hn.hex()}", r, "raw-byte", bare=True)

    # ------------------------------------------------------------------------------------------ crlf
    c = "crlf"
    inj = b"X-Injected: yes"
    for name, tgt in (("path", P + "a%0D%0AX-Injected:%20yes"), ("path-lf", P + "a%0AX-Injected:%20yes"),
                      ("query", P + "ping?x-a=a%0D%0AX-Injected:%20yes"),
                      ("query-key", P + "ping?a%0D%0AX-Injected:%20yes=1")):
        ROWS.append(Row(c, f"encoded-{name}", S.v4("GET", tgt), relay="any", forbid=(b"\r\n" + inj, b"\n" + inj),
                        check=no_injected_header, expect=None, ok=None))
    r = S.v4("GET", P + "ping", headers=[("x-amz-meta-a", "1")], signed=std + ["x-amz-meta-a"])
    r.headers = [(n, v + b"\nx-amz-meta-b: evil") if n == b"x-amz-meta-a" else (n, v) for n, v in r.headers]
    neg(c, "bare-lf-adds-unsigned-amz-header", r, "unsigned-amz", bare=True)
    r = S.v4("GET", P + "ping")
    r.headers = [(n, v + b"\r\nx-amz-meta-b: evil") if n == b"Authorization" else (n, v) for n, v in r.headers]
    neg(c, "authorization-crlf-adds-unsigned-amz-header", r, "unsigned-amz")
    for name, data in (
        ("header-value-bare-cr", S.v4("GET", P + "ping", headers=[("x-amz-meta-a", b"a\rb")]).bytes()),
        ("obs-fold", S.v4("GET", P + "ping", headers=[("x-amz-meta-a", b"a\r\n b")]).bytes()),
        ("request-line-cr", b"GET " + P.encode() + b"ping\r HTTP/1.1\r\nHost: " + PH + b"\r\n\r\n"),
        ("cr-cr-lf", S.v4("GET", P + "ping").bytes().replace(b"\r\n", b"\r\r\n", 2)),
        ("host-obs-fold", b"GET " + P.encode() + b"ping HTTP/1.1\r\nHost: 127.0.0.1\r\n :" + port + b"\r\n\r\n"),
    ):
        ROWS.append(Row(c, name, None, data=data, expect=[], bare=True))

    # ------------------------------------------------------------------------------------------ smuggling
    c = "smuggling"
    chunked_body = b"5\r\nhello\r\n0\r\n\r\n"
    for name, hdrs in (("cl-then-te", [("Content-Length", str(len(chunked_body))), ("Transfer-Encoding", "chunked")]),
                       ("te-then-cl", [("Transfer-Encoding", "chunked"), ("Content-Length", str(len(chunked_body)))]),
                       ("te-chunked-chunked", [("Transfer-Encoding", "chunked, chunked")]),
                       ("te-two-headers", [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")]),
                       ("te-identity-chunked-cl", [("Transfer-Encoding", "identity, chunked"),
                                                   ("Content-Length", str(len(chunked_body)))])):
        k = key()
        r = S.v4("PUT", P + k, payload=UNSIGNED, headers=hdrs, content_length=False)
        r.body = chunked_body
        neg(c, name, r, "framing", bare=True)
    for name, hdrs, b_ in (("two-content-lengths", [("Content-Length", "5"), ("Content-Length", "6")], b"hello!"),
                           ("two-equal-content-lengths", [("Content-Length", "5"), ("Content-Length", "5")], b"hello"),
                           ("content-length-list", [("Content-Length", "5, 6")], b"hello!"),
                           ("content-length-negative", [("Content-Length", "-1")], b""),
                           ("content-length-hex", [("Content-Length", "0x5")], b"hello"),
                           ("content-length-huge", [("Content-Length", "99999999999999999999")], b"hello"),
                           ("te-xchunked", [("Transfer-Encoding", "xchunked")], chunked_body),
                           ("te-identity", [("Transfer-Encoding", "identity")], b"hello"),
                           ("te-space-before-colon", [("Transfer-Encoding ", "chunked")], chunked_body)):
        k = key()
        r = S.v4("PUT", P + k, payload=UNSIGNED, headers=hdrs, content_length=False)
        r.body = b_
        neg(c, name, r, "framing", bare=True)
    r = S.v4("GET", P + "ping", payload=UNSIGNED, content_length=False,
             headers=[("Content-Length", str(len(chunked_body))), ("Transfer-Encoding", "chunked")])
    r.body = chunked_body
    neg(c, "get-cl-then-te", r, "framing", bare=True)
    # CL + TE where the chunked body ends early and a signed request follows: a second, smuggled request
    smuggled = S.v4("GET", P + "smuggled-" + key()).bytes()
    for name, order, method in (("cl-te-smuggled-request", "cl-te", "PUT"), ("te-cl-smuggled-request", "te-cl", "PUT"),
                                ("get-cl-te-smuggled-request", "cl-te", "GET")):
        k = key()
        sm_body = b"0\r\n\r\n" + smuggled
        hdrs = [("Content-Length", "4"), ("Transfer-Encoding", "chunked")]
        if order == "te-cl":
            hdrs.reverse()
        r = S.v4(method, P + (k if method == "PUT" else "ping"), payload=UNSIGNED, headers=hdrs, content_length=False)
        r.body = sm_body
        neg(c, name, r, "framing", bare=True, forbid=(b"smuggled",), settle=0.3)
    k = key()
    r = S.v4("PUT", P + k, payload=UNSIGNED, headers=[("Content-Length", str(len(chunked_body))),
                                                       ("Transfer-Encoding", "chunked")], content_length=False)
    r.version = b"HTTP/1.0"
    r.body = chunked_body
    neg(c, "http10-cl-te", r, "framing", bare=True)

    # ------------------------------------------------------------------------------------------ absolute
    c = "absolute"
    for name, authority, host in (("canary", CAN, CAN), ("canary-host-proxy", CAN, PH), ("relay", REL, PH),
                                  ("userinfo-canary", b"u:p@" + CAN, CAN), ("evil", b"evil.example", PH),
                                  ("ipv6-canary", b"[::1]:" + str(canary_port).encode(), PH)):
        r = S.v4("GET", b"http://" + authority + P.encode() + b"ping", host=host)
        neg(c, f"get-{name}", r, "other-authority")
    r = S.v4("GET", b"https://" + CAN + P.encode() + b"ping", host=CAN)
    neg(c, "get-https-canary", r, "other-authority")
    k = key()
    r = S.v4("PUT", b"http://" + CAN + P.encode() + k.encode(), host=CAN, body=body(k))
    neg(c, "put-canary", r, "other-authority")
    r = S.presign_v4("GET", b"http://" + CAN + P.encode() + b"ping", host=CAN)
    neg(c, "presigned-v4-canary", r, "other-authority")
    r = S.v2("GET", b"http://" + CAN + P.encode() + b"ping", host=CAN)
    neg(c, "v2-canary", r, "other-authority")
    neg(c, "get-asterisk", S.v4("GET", "*"), "asterisk", bare=True)
    neg(c, "get-authority-form", S.v4("GET", CAN, host=CAN), "asterisk", bare=True)
    ROWS.append(Row(c, "get-self-absolute", S.v4("GET", b"http://" + PH + P.encode() + b"ping"),
                    expect=[IA], ok={200}, relay="any"))

    # ------------------------------------------------------------------------------------------ host
    c = "host"
    for name, h in (("evil", b"evil.example"), ("canary", CAN), ("metadata", b"169.254.169.254")):
        r = S.v4("GET", P + "ping")
        r.set("Host", h)
        neg(c, f"signed-for-proxy-sent-{name}", r, "signed-for-other")
    for name, h in (("canary", CAN), ("localhost-canary", b"localhost:" + str(canary_port).encode()),
                    ("metadata", b"169.254.169.254"), ("aws", b"s3.amazonaws.com"), ("relay", REL)):
        pos(c, f"signed-for-{name}", S.v4("GET", P + "ping", host=h))
    neg(c, "no-host-http11", S.v4("GET", P + "ping", host=False, overrides={b"host": PH}), "no-host")
    k = key()
    neg(c, "no-host-http11-put", S.v4("PUT", P + k, body=body(k), host=False, overrides={b"host": b""}), "no-host")

    # ------------------------------------------------------------------------------------------ dot segments
    c = "dotseg"
    for name, tgt, want in (("a-dotdot-b", "a/../b", b"a/../b"), ("dot-x", "./x", b"./x"), ("a-dot-b", "a/./b", b"a/./b"),
                            ("double-slash", "a//b", b"a//b"), ("encoded-dotdot", "a/%2E%2E/b", b"a/../b"),
                            ("lower-encoded-dot", "%2e/y", b"./y"), ("dotdot-ping", "../hostile/ping",
                                                                      b"../hostile/ping"),
                            ("x-dotdot-ping", "x/../ping", b"x/../ping"),
                            ("two-up", "a/b/../../ping", b"a/b/../../ping")):
        line = b"GET /" + BUCKET.encode() + b"/" + want + b" HTTP/1.1"
        pos(c, f"get-{name}", S.v4("GET", P + tgt), ok=(200, 404),
            check=both(relay_saw(line), status_not(403)))
    line = b"HEAD /" + BUCKET.encode() + b"/c/../d HTTP/1.1"
    pos(c, "head-c-dotdot-d", S.v4("HEAD", P + "c/../d"), ok=(200, 404), head=True,
        check=both(relay_saw(line), status_not(403)))
    line = b"GET /" + BUCKET.encode() + b"/e/../f"
    pos(c, "presigned-v4-e-dotdot-f", S.presign_v4("GET", P + "e/../f"), ok=(200, 404),
        check=both(relay_saw(line), status_not(403)))
    pos(c, "v2-g-dotdot-h", S.v2("GET", P + "g/../h"), ok=(200, 404),
        check=both(relay_saw(b"GET /" + BUCKET.encode() + b"/g/../h"), status_not(403)))

    # ------------------------------------------------------------------------------------------ aws-chunked
    c = "chunked"
    for mode in ("signed", "signed-trailer"):
        k = key()
        b_ = body(k) * 20
        neg(c, f"{mode}-no-final-chunk", chunked_req(S, P + k, [b_], mode, final=False), "no-final-chunk",
            relay="head")
        k = key()
        neg(c, f"{mode}-two-chunks-no-final-chunk", chunked_req(S, P + k, [b_[:300], b_[300:]], mode, final=False),
            "no-final-chunk", relay="head")
        k = key()
        neg(c, f"{mode}-final-chunk-unsigned", chunked_req(S, P + k, [b_], mode, final="unsigned"),
            "final-unsigned", relay="head")
        k = key()
        neg(c, f"{mode}-final-chunk-bad-signature", chunked_req(S, P + k, [b_], mode, final="bad-sig"),
            "bad-chunk-sig", relay="head")
        k = key()
        neg(c, f"{mode}-data-chunk-bad-signature", chunked_req(S, P + k, [b_], mode, bad_data_sig=True),
            "bad-chunk-sig", relay="head")
        k = key()
        neg(c, f"{mode}-chunk-size-plus", chunked_req(S, P + k, [b_], mode, size_fmt="+%x"), "bad-framing",
            relay="head")
    for name, trailers, declared in (
        ("unsigned-trailer-undeclared-sha256", [(b"x-amz-checksum-sha256", None)], b"x-amz-checksum-crc32"),
        ("unsigned-trailer-extra-meta", [(b"x-amz-checksum-crc32", None), (b"x-amz-meta-evil", b"1")],
         b"x-amz-checksum-crc32"),
        ("unsigned-trailer-none-declared", [(b"x-amz-checksum-crc32", None)], None),
        ("unsigned-trailer-extra-acl", [(b"x-amz-checksum-crc32", None), (b"x-amz-acl", b"public-read")],
         b"x-amz-checksum-crc32"),
    ):
        k = key()
        b_ = body(k) * 20
        neg(c, name, chunked_req(S, P + k, [b_], "unsigned-trailer", trailers=trailers, declared=declared),
            "undeclared-trailer", relay="head")
    for name, trailers in (("signed-trailer-extra-meta", [(b"x-amz-checksum-crc32", None), (b"x-amz-meta-evil", b"1")]),
                           ("signed-trailer-undeclared-sha256", [(b"x-amz-checksum-sha256", None)])):
        k = key()
        b_ = body(k) * 20
        neg(c, name, chunked_req(S, P + k, [b_], "signed-trailer", trailers=trailers), "undeclared-trailer",
            relay="head")
    k = key()
    b_ = body(k) * 20
    neg(c, "unsigned-trailer-chunk-size-plus", chunked_req(S, P + k, [b_], "unsigned-trailer", size_fmt="+%x"),
        "bad-framing", relay="head")

    # ------------------------------------------------------------------------------------------ SigV4a
    c = "sigv4a"
    d, sd = amz_now()
    r = Req("GET", P + "ping").add("Host", PH).add("x-amz-date", d).add("x-amz-content-sha256", EMPTY_SHA256)
    r.add("x-amz-region-set", "*")
    r.add("Authorization", b"AWS4-ECDSA-P256-SHA256 Credential=" + CLIENT_AK.encode() + b"/" + sd +
          b"/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-region-set, Signature=3045" +
          b"0" * 136)
    neg(c, "header-get", r, "header")
    k = key()
    r2 = Req("PUT", P + k, body=b"hello").add("Host", PH).add("x-amz-date", d)
    r2.add("x-amz-content-sha256", sha256_hex(b"hello")).add("x-amz-region-set", "us-east-1")
    r2.add("Content-Length", "5").add("Authorization", r.get("authorization"))
    neg(c, "header-put", r2, "header")
    r = S.presign_v4("GET", P + "ping", algorithm=b"AWS4-ECDSA-P256-SHA256")
    neg(c, "presigned-get", r, "presigned")
    k = key()
    r = S.presign_v4("PUT", P + k, body=body(k), algorithm=b"AWS4-ECDSA-P256-SHA256")
    neg(c, "presigned-put", r, "presigned")
    k = key()
    r = S.v4("PUT", P + k, payload=b"STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", body=b"5;chunk-signature=00\r\nhello\r\n",
             headers=[("x-amz-decoded-content-length", "5")])
    neg(c, "streaming-ecdsa-payload", r, "streaming")

    # ------------------------------------------------------------------------------------------ bad signatures
    c = "badsig"
    r = S.v4("GET", P + "ping")
    r.headers[-1] = (b"Authorization", r.headers[-1][1][:-1] + (b"0" if r.headers[-1][1][-1:] != b"0" else b"1"))
    neg(c, "v4-flipped", r, "sig")
    k = key()
    neg(c, "v4-wrong-secret-put", S.v4("PUT", P + k, body=body(k), secret="wrong"), "sig")
    k = key()
    r = S.v4("GET", P + k)
    r.method, r.body = b"PUT", body(k)
    r.add("Content-Length", len(r.body))
    neg(c, "v4-signed-get-sent-put", r, "sig")
    r = S.v4("GET", P + "other")
    r.target = (P + "ping").encode()
    neg(c, "v4-signed-other-path", r, "sig")
    r = S.presign_v4("GET", P + "ping")
    r.target = r.target[:-1] + (b"0" if r.target[-1:] != b"0" else b"1")
    neg(c, "presigned-v4-flipped", r, "sig")
    k = key()
    neg(c, "v2-wrong-secret-put", S.v2("PUT", P + k, body=body(k), secret="wrong"), "sig")
    neg(c, "presigned-v2-wrong-secret", S.presign_v2("GET", P + "ping", secret="wrong"), "sig")
    neg(c, "v4-unknown-key", S.v4("GET", P + "ping", access_key="UNKNOWNKEY"), "key")
    neg(c, "v2-unknown-key", S.v2("GET", P + "ping", access_key="UNKNOWNKEY"), "key")
    neg(c, "v4-service-ec2", S.v4("GET", P + "ping", service=b"ec2"), "malformed")
    r = S.v4("GET", P + "ping")
    r.headers[-1] = (b"Authorization", re.sub(rb"Signature=[0-9a-f]+", b"Signature=abc", r.headers[-1][1]))
    neg(c, "v4-short-signature", r, "malformed-or-sig")
    r = S.v4("GET", P + "ping")
    r.headers[-1] = (b"Authorization", re.sub(rb", Signature=[0-9a-f]+", b"", r.headers[-1][1]))
    neg(c, "v4-no-signature", r, "malformed")
    neg(c, "v4-skewed-1h", S.v4("GET", P + "ping", amz_date=amz_now(time.time() - 3600)[0]), "skew")
    neg(c, "presigned-v4-expired", S.presign_v4("GET", P + "ping", amz_date=amz_now(time.time() - 7200)[0]), "denied")
    neg(c, "presigned-v2-expired", S.presign_v2("GET", P + "ping", expires=int(time.time()) - 10), "denied")
    r = S.v4("GET", P + "ping")
    r.headers.insert(1, (b"x-amz-meta-unsigned", b"1"))
    neg(c, "v4-unsigned-amz-header", r, "denied")
    neg(c, "anonymous-get", Req("GET", P + "ping").add("Host", PH), "denied")
    k = key()
    b_ = body(k)
    neg(c, "anonymous-put", Req("PUT", P + k, body=b_).add("Host", PH).add("Content-Length", len(b_)), "denied")
    r = S.v4("GET", P + "ping")
    r.target += b"?" + S.presign_v4("GET", P + "ping").target.split(b"?", 1)[1]
    neg(c, "v4-header-and-presigned", r, "two-mechanisms")
    r = Req("GET", P + "ping").add("Host", PH).add("Authorization", "Bearer abc")
    neg(c, "bearer", r, "other-scheme")

    # ------------------------------------------------------------------------------------------ not HTTP/1.1
    c = "http"
    for name, data in (("hello", b"HELLO WORLD\r\n\r\n"),
                       ("tls-client-hello", bytes.fromhex("16030100a5010000a10303") + os.urandom(40) + b"\r\n\r\n"),
                       ("binary", bytes(range(0, 256)) + b"\r\n\r\n"),
                       ("http2-version", b"GET / HTTP/2.0\r\nHost: " + PH + b"\r\n\r\n"),
                       ("http12-version", b"GET / HTTP/1.2\r\nHost: " + PH + b"\r\n\r\n"),
                       ("lowercase-version", b"GET / http/1.1\r\nHost: " + PH + b"\r\n\r\n"),
                       ("http09", b"GET /\r\n\r\n"),
                       ("double-space", b"GET  " + P.encode() + b"ping HTTP/1.1\r\nHost: " + PH + b"\r\n\r\n"),
                       ("header-without-colon", b"GET / HTTP/1.1\r\nHost " + PH + b"\r\n\r\n"),
                       ("nul-in-request-line", b"GET /\x00 HTTP/1.1\r\nHost: " + PH + b"\r\n\r\n")):
        raw(c, name, data, "not-http")
    raw(c, "h2-prior-knowledge-preface",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000"), "h2-preface")
    both_gets = S.v4("GET", P + "ping").bytes() + S.v4("GET", P + "ping").bytes()
    ROWS.append(Row(c, "pipelined-two-gets", None, data=both_gets, ok={200}, relay="forward", responses=2))
    ROWS.append(Row(c, "pipelined-two-gets-half-close", None, data=both_gets, ok={200}, relay="forward", responses=2,
                    half_close=True))


def chunked_req(S, path, chunks, mode, final=True, bad_data_sig=False, size_fmt="%x", trailers=None, declared=b"",
                decoded=None):
    """aws-chunked PUT. mode: signed | signed-trailer | unsigned-trailer. final: True, False (missing),
    'unsigned' (`0` without a signature), 'bad-sig'. trailers: [(name, value or None for the body's
    checksum)]; declared: the x-amz-trailer value (None: no header; b'': derived from trailers)."""
    data = b"".join(chunks)
    amz_date, sd = amz_now()
    payload = {"signed": b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
               "signed-trailer": b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
               "unsigned-trailer": b"STREAMING-UNSIGNED-PAYLOAD-TRAILER"}[mode]
    if trailers is None and mode != "signed":
        trailers = [(b"x-amz-checksum-crc32", None)]
    trailers = [(n, v if v is not None else (crc32_b64(data) if n.endswith(b"crc32") else sha256_b64(data)))
                for n, v in (trailers or [])]
    if declared == b"" and trailers:
        declared = b",".join(n for n, _ in trailers if n.startswith(b"x-amz-checksum"))
    hdrs = [("Content-Encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", decoded if decoded is not None else str(len(data)))]
    if declared:
        hdrs.append(("x-amz-trailer", declared))
    r = S.v4("PUT", path, headers=hdrs, payload=payload, amz_date=amz_date, content_length=False)
    key_ = signing_key(S.sk, sd, S.region)
    scope = sd + b"/" + S.region + b"/s3/aws4_request"
    prev = seed_signature(r)
    out = bytearray()
    signed = mode != "unsigned-trailer"
    for ch in chunks:
        size = (size_fmt % len(ch)).encode()
        if signed:
            sig = chunk_signature(key_, amz_date, scope, prev, ch)
            prev = sig
            if bad_data_sig:
                sig = b"0" * 64
            out += size + b";chunk-signature=" + sig + b"\r\n" + ch + b"\r\n"
        else:
            out += size + b"\r\n" + ch + b"\r\n"
    if final:
        if signed and final is True:
            sig = chunk_signature(key_, amz_date, scope, prev, b"")
            prev = sig
            out += b"0;chunk-signature=" + sig + b"\r\n"
        elif signed and final == "bad-sig":
            out += b"0;chunk-signature=" + b"0" * 64 + b"\r\n"
        else:
            out += b"0\r\n"
        if mode == "signed":
            out += b"\r\n"
        else:
            canonical = b"".join(n + b":" + v + b"\n" for n, v in trailers)
            out += b"".join(n + b":" + v + b"\r\n" for n, v in trailers)
            if mode == "signed-trailer":
                out += b"x-amz-trailer-signature:" + trailer_signature(key_, amz_date, scope, prev, canonical) + b"\r\n"
            out += b"\r\n"
    r.body = bytes(out)
    r.add("Content-Length", len(r.body))
    return r


def no_injected_header(resps, sent):
    if resps and resps[0].header("x-injected") is not None:
        return "the response carries an injected X-Injected header"
    if resps and resps[0].status >= 500:
        return f"status {resps[0].short()}"
    return None


def origin_auth_error_hidden(resps, sent):
    """Hole 10: the origin refused the proxy's own credentials. The client must not get the origin's auth error
    (it would blame its own signature, and an origin like AWS echoes its key id and canonical request): a
    proxy-side error instead, and nothing of the origin's."""
    if not resps:
        return None
    r = resps[0]
    if 200 <= r.status < 300:
        return f"status {r.status}: the relay did not break the origin request (harness)"
    errs = []
    if r.status in (401, 403):  # s3s-fs answers SignatureDoesNotMatch, or NotSignedUp for an unknown key
        errs.append(f"the origin's {r.short()} reached the client")
    if ORIGIN_AK.encode() in r.body or b"<StringToSign>" in r.body or b"<CanonicalRequest>" in r.body:
        errs.append("the body echoes the origin's key id or canonical request")
    if r.code() is None:
        errs.append(f"status {r.status} without S3 XML")
    return "; ".join(errs) or None


PING = b""


# ---------------------------------------------------------------------------------------------- running
def main():
    global PING
    if os.environ.get("E2E_DIRECT") == "1":
        t.skip("hostile/table", "E2E_DIRECT=1: the table tests the proxy, which is not running")
        t.finish()
    if not (PROXY_BIN and os.access(PROXY_BIN, os.X_OK) and CLIENT_AK and CLIENT_SK):
        t.fail("hostile/setup", f"E2E_PROXY_BIN_PATH ({PROXY_BIN!r}) or the client keys are not set by run.sh")
        t.finish()
    os.makedirs(WORK, exist_ok=True)
    ou = ORIGIN.split("://", 1)[1]
    relay = Relay(ou.rsplit(":", 1)[0], int(ou.rsplit(":", 1)[1]), os.path.join(WORK, "relay"))
    canary = Canary()
    proxy = Proxy(relay.port)
    atexit.register(proxy.stop)
    proxy.start()
    PH = f"127.0.0.1:{proxy.port}"
    S = Signer(CLIENT_AK, CLIENT_SK, REGION, PH)
    t._out(f"# hostile: proxy 127.0.0.1:{proxy.port} -> relay 127.0.0.1:{relay.port} -> s3s-fs {ORIGIN}; "
           f"canary 127.0.0.1:{canary.port}; relay logs in {WORK}/relay")

    # setup: the bucket and the object every "keeps serving" GET reads
    PING = b"hostile-ping-" + os.urandom(8).hex().encode()
    for name, r in (("setup-create-bucket", S.v4("PUT", f"/{BUCKET}")),
                    ("setup-put-ping", S.v4("PUT", f"/{BUCKET}/ping", body=PING))):
        resps, problem, _ = exchange(proxy.port, r.bytes())
        if not resps or resps[0].status != 200:
            t.fail(f"hostile/{name}", problem or resps[0].short() + " " + resps[0].body[:200].decode("latin-1"))
            proxy.stop()
            t.finish()
    if not os.path.isfile(os.path.join(DATA, BUCKET, "ping")):
        t.fail("hostile/setup", f"the ping object is not in the origin's data directory {DATA}/{BUCKET}")
        proxy.stop()
        t.finish()

    build_rows(S, proxy.port, relay.port, canary.port)
    relay_host = f"127.0.0.1:{relay.port}".encode()

    def ping():
        resps, problem, _ = exchange(proxy.port, S.v4("GET", f"/{BUCKET}/ping").bytes())
        if not resps:
            return problem
        if resps[0].status != 200 or resps[0].body != PING:
            return f"a signed GET then got {resps[0].short()}"
        return None

    only = os.environ.get("E2E_HOSTILE_ONLY")  # a regex over "class.name": run only those rows
    verbose = os.environ.get("E2E_HOSTILE_VERBOSE") == "1"  # print each response and what the origin saw
    by_class = {}
    t0 = time.monotonic()
    for row in ROWS:
        if only and not re.search(only, f"{row.cls}.{row.name}"):
            continue
        row.verbose = verbose
        errs = run_row(row, proxy, relay, canary, relay_host)
        p = ping()
        if not proxy.alive():
            errs.append(f"the proxy exited with status {proxy.proc.returncode} (restarted)")
            proxy.start()
        elif p:
            errs.append(f"proxy stopped serving ({p})")
            # the row may have replaced or removed the ping object itself: put it back for the next rows
            exchange(proxy.port, S.v4("PUT", f"/{BUCKET}/ping", body=PING).bytes())
        name = f"hostile/{row.cls}.{row.name}"
        name = re.sub(r"[\s:]+", "_", name)
        st = by_class.setdefault(row.cls, [0, 0])
        if errs:
            st[1] += 1
            t.fail(name, "; ".join(errs))
        else:
            st[0] += 1
            t.ok(name)
    proxy.stop()
    total = sum(a + b for a, b in by_class.values())
    t._out(f"# hostile: {total} rows in {time.monotonic() - t0:.1f} s; rows by class (pass/fail):")
    for cls, (pa, fa) in by_class.items():
        t._out(f"#   {cls:24s} {pa + fa:4d} rows  {pa:4d} pass  {fa:4d} fail")
    t.finish()


def run_row(row, proxy, relay, canary, relay_host):
    errs = []
    for r in row.pre:
        resps, problem, _ = exchange(proxy.port, r.bytes())
        if not resps or resps[0].status != 200:
            return [f"setup request {r.method.decode()} {r.target[:60].decode('latin-1')} failed: "
                    f"{problem or resps[0].short()}"]
    mark = relay.mark()
    before = snapshot()
    can0 = canary.count()
    relay.tamper = row.tamper
    t0 = time.monotonic()
    resps, problem, extra = exchange(proxy.port, row.data, responses=row.responses, half_close=row.half_close,
                                     head=row.head, linger=0.2 if row.settle > 0.1 else 0.0)
    secs = time.monotonic() - t0
    relay.quiet(row.settle)
    relay.tamper = None
    new_conns, chunks = relay.since(mark)
    sent = b"".join(chunks)
    after = snapshot()

    # the response
    if problem:
        errs.append(problem)
    if resps:
        r = resps[0]
        if row.check is origin_auth_error_hidden or (row.expect is None and row.ok is None):
            pass  # judged by row.check
        elif row.ok is not None and r.status in row.ok and all(x.status in row.ok for x in resps):
            pass
        elif row.expect is not None:
            want = " or ".join(f"{s} {c}" for s, c in row.expect) or "400 (bare)"
            code = r.code()
            if r.status >= 500:
                errs.append(f"5xx: {r.short()}, want {want}")
            elif code is None:
                if not (row.bare and r.status == 400):
                    errs.append(f"got {r.short()}, want {want} as S3 XML" if row.expect else f"got {r.short()}")
            elif (r.status, code) not in row.expect and not (row.bare and not row.expect and 400 <= r.status < 500):
                errs.append(f"got {r.status} {code}, want {want}")
        else:
            errs.append(f"got {', '.join(x.short() for x in resps)}, want {sorted(row.ok)}")
        if row.max_body is not None and any(len(x.body) > row.max_body for x in resps):
            errs.append(f"error body of {max(len(x.body) for x in resps)} bytes (bound {row.max_body})")
    if row.max_secs is not None and secs > row.max_secs:
        errs.append(f"took {secs:.1f} s (bound {row.max_secs} s)")

    # what reached the origin
    first = sent.split(b"\r\n", 1)[0][:100] if sent else b""
    if row.relay == "none" and sent:
        errs.append(f"reached the origin: {first!r} ({len(sent)} bytes)")
    elif row.relay == "head" and row.body and len(row.body) > 16 and row.body in sent:
        errs.append(f"the whole body reached the origin ({first!r})")
    elif row.relay == "forward" and not sent:
        errs.append("nothing reached the origin")
    for f in row.forbid:
        if f in sent:
            errs.append(f"the origin saw {f!r}")
    for h in re.findall(rb"(?i)\r\nhost:[ \t]*([^\r\n]*)", sent):
        if h.strip() != relay_host:
            errs.append(f"the origin saw Host {h!r}, not the relay's {relay_host.decode()}")
            break

    # what was stored
    changed, gone = snap_diff(before, after)
    if row.store is None and (changed or gone):
        errs.append(f"origin data changed: {', '.join((changed + gone)[:3])}")
    elif isinstance(row.store, tuple):
        k, b_ = row.store
        p = os.path.join(DATA, BUCKET, k)
        try:
            with open(p, "rb") as f:
                got = f.read()
            if got != b_:
                errs.append(f"stored {k} has {len(got)} bytes, not the {len(b_)} sent")
        except OSError:
            errs.append(f"{k} was not stored at the origin")
    elif row.store == "any-but-body":
        if any(k.startswith(BUCKET + os.sep) for k in changed):
            errs.append(f"stored at the origin: {', '.join(changed[:3])}")

    # nowhere but the relay
    if canary.count() != can0:
        peer, first_bytes = canary.last()
        errs.append(f"the canary got a connection ({first_bytes[:60]!r})")

    if row.check:
        e = row.check(resps, sent)
        if e:
            errs.append(e)
    if getattr(row, "verbose", False):
        t._out(f"#   {row.cls}.{row.name}: {', '.join(x.short() for x in resps) or problem} in {secs:.2f} s; "
               f"origin saw {len(sent)} bytes {first!r}; body {resps[0].body[:160] if resps else b''!r}")
    return errs


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        t.fail("hostile/harness", f"{type(e).__name__}: {e}")
        t.finish()
