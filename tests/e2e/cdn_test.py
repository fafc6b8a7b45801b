#!/usr/bin/env python3
"""The `cdn` group (issue 13): a virtual-hosted origin, nginx as a CDN stand-in, HAProxy passing Host through.

Self-contained: it starts its own s3s-fs, two wire-logging relays (wirelog.py), six proxies (E2E_PROXY_BIN_PATH),
nginx and HAProxy, each on a free port with its log in $E2E_WORK/cdn/, and stops them at exit. Every result is
checked at the origin with the origin's credentials (boto3, path-style, straight to s3s-fs).

Names: the test's Python clients resolve every `*.test` name to 127.0.0.1 (a getaddrinfo hook in this process),
so bucket host names need no /etc/hosts lines. The proxies resolve ORIGIN_DOMAIN's name `origin.test` with the
system resolver: it must be in /etc/hosts (127.0.0.1). nginx and HAProxy connect to 127.0.0.1 by address.

  s3s-fs  127.0.0.1:OPORT  --domain origin.test:OPORT --domain origin.test:WA --domain origin.test:WB
  wire A  127.0.0.1:WA -> s3s-fs   (log: wire-a.log)   proxy A (ORIGIN_ADDRESSING=virtual) -> origin.test:WA
  wire B  127.0.0.1:WB -> s3s-fs   (log: wire-b.log)   every other proxy (path addressing) -> origin.test:WB

A  ORIGIN_ADDRESSING=virtual: boto3 path-style at 127.0.0.1 and virtual-hosted at s3.vanity.test put, get,
   head, list, copy, multipart, presign, delete, create/delete bucket; on wire A every request carries the
   bucket in Host (`<bucket>.origin.test:WA`) and only the key in the path; ListBuckets goes to the bare host.
B  nginx (tests/e2e/cdn/nginx.conf.in) rewrites Host to internal.test:
     PUBLIC_HOST=s3.vanity.test:N1: path-style clients signing for the public name work; without PUBLIC_HOST
     (N2) they get 403 SignatureDoesNotMatch and nothing is stored.
     TRUSTED_PROXIES=127.0.0.2/32 with nginx sending X-Forwarded-Host from 127.0.0.2 (N3): virtual-hosted and
     path-style clients work, 20 MB up and down stream through nginx (no temporary file); a client's own
     X-Forwarded-Host / Forwarded headers through nginx change nothing; a client connecting straight to that
     proxy from 127.0.0.1 with a forged X-Forwarded-Host / Forwarded is untrusted: signed for the forged
     host, 403 and nothing forwarded; signed for the real Host, it works. The same nginx in front of a proxy
     that trusts only 127.0.0.1 (N4): virtual-hosted clients get 403.
     X-Forwarded-Host and Forwarded never reach the origin (wire B).
C  HAProxy (tests/e2e/cdn/haproxy.cfg.in) passing Host through: virtual-hosted boto3 works; a client's own
   X-Forwarded-Host / Forwarded are dropped by HAProxy (its proxy trusts HAProxy's address, to exercise that).
"""

import hashlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import e2elib as t

MiB = 1024 * 1024
DOMAIN = os.environ.get("E2E_VANITY_DOMAIN") or "s3.vanity.test"
ORIGIN_NAME = "origin.test"
INTERNAL = "internal.test"
NGINX_BIND = "127.0.0.2"  # nginx's source address towards the proxies (proxy_bind)

REGION = os.environ.get("E2E_REGION", "us-east-1")
HERE = os.environ.get("E2E_HERE") or os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(os.environ["E2E_WORK"], "cdn")
CLIENT_AK = os.environ.get("E2E_CLIENT_ACCESS_KEY", "")
CLIENT_SK = os.environ.get("E2E_CLIENT_SECRET_KEY", "")
ORIGIN_AK = os.environ["E2E_ORIGIN_ACCESS_KEY"]
ORIGIN_SK = os.environ["E2E_ORIGIN_SECRET_KEY"]
PROXY_BIN = os.environ.get("E2E_PROXY_BIN_PATH", "")
S3SFS_BIN = os.environ.get("E2E_S3SFS_BIN") or os.path.expanduser("~/.cache/s3rp-e2e/s3s-fs/bin/s3s-fs")

# ---------------------------------------------------------------------------------------------- names
_real_getaddrinfo = socket.getaddrinfo


def _loopback_getaddrinfo(host, port, *args, **kw):
    """Clients in this process: every *.test name is 127.0.0.1 (bucket names need no /etc/hosts line)."""
    h = host.decode() if isinstance(host, bytes) else host
    if isinstance(h, str) and h.lower().rstrip(".").endswith(".test"):
        host = "127.0.0.1"
    return _real_getaddrinfo(host, port, *args, **kw)


socket.getaddrinfo = _loopback_getaddrinfo


# ---------------------------------------------------------------------------------------------- processes
PROCS = t.Procs(WORK)
spawn, stop_all, wait_port = PROCS.spawn, PROCS.stop_all, PROCS.wait_port
free_port, find_bin = t.free_port, t.find_bin


PROXY_SETTINGS = ("VIRTUAL_HOST_DOMAINS", "ORIGIN_ADDRESSING", "PUBLIC_HOST", "ALLOWED_HOSTS", "TRUSTED_PROXIES")


def start_proxy(name, origin_url, taken, **settings):
    port = free_port(taken)
    taken.add(port)
    env = dict(os.environ)
    for k in PROXY_SETTINGS:
        env.pop(k, None)
    env.update(
        CLIENT_ACCESS_KEY=CLIENT_AK,
        CLIENT_SECRET_KEY=CLIENT_SK,
        ORIGIN_ACCESS_KEY=ORIGIN_AK,
        ORIGIN_SECRET_KEY=ORIGIN_SK,
        ORIGIN_DOMAIN=origin_url,
        AWS_REGION=REGION,
        HOST="127.0.0.1",
        PORT=str(port),
        RUST_LOG=os.environ.get("RUST_LOG", "info"),
    )
    env.update(settings)
    with open(os.path.join(WORK, name + ".log"), "a") as f:
        f.write(f"# {name}: ORIGIN_DOMAIN={origin_url} " + " ".join(f"{k}={v}" for k, v in settings.items()) + "\n")
    p = spawn(name, [PROXY_BIN], env)
    wait_port(name, p, port)
    return port


def render(template, out, values):
    text = open(os.path.join(HERE, "cdn", template)).read()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise RuntimeError(f"{template}: placeholders left: {left}")
    with open(out, "w") as f:
        f.write(text)


# ---------------------------------------------------------------------------------------------- wire logs
class WireReq:
    def __init__(self, cid, line):
        self.cid = cid
        self.line = line
        self.headers = []

    def header(self, name):
        vals = [v for k, v in self.headers if k.lower() == name]
        return vals[0] if vals else None

    @property
    def method(self):
        return self.line.split(" ", 1)[0]

    @property
    def target(self):
        return self.line.split(" ")[1] if " " in self.line else ""

    @property
    def path(self):
        return urllib.parse.unquote(self.target.split("?", 1)[0])

    def short(self):
        return f"{self.line!r} Host {self.header('host')!r}"


class Wire:
    """What wirelog.py saw between a proxy and the origin (request heads, one log line per header)."""

    def __init__(self, path):
        self.path = path

    def mark(self):
        return os.path.getsize(self.path) if os.path.exists(self.path) else 0

    def since(self, mark):
        size = -1
        for _ in range(40):  # settle: the relay writes a head's lines right after forwarding it
            time.sleep(0.05)
            now = self.mark()
            if now == size:
                break
            size = now
        with open(self.path, "rb") as f:
            f.seek(mark)
            text = f.read().decode("utf-8", "replace")
        reqs, cur = [], {}
        for line in text.splitlines():
            m = re.match(r"\S+ c(\d+) (.*)$", line)
            if not m:
                continue
            cid, msg = m.group(1), m.group(2)
            if msg.startswith(">> "):
                cur[cid] = WireReq(cid, msg[3:])
                reqs.append(cur[cid])
            elif msg.startswith("   ") and not msg.startswith("   [") and cid in cur:
                k, _, v = msg[3:].partition(":")
                cur[cid].headers.append((k.strip(), v.strip()))
        return reqs


# ---------------------------------------------------------------------------------------------- clients
def client(endpoint, style="path", sig="s3v4", ak=None, sk=None, **cfg):
    import boto3
    from botocore.config import Config

    conf = dict(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=120,
                signature_version=sig, s3={"addressing_style": style})
    conf.update(cfg)
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak or CLIENT_AK,
                        aws_secret_access_key=sk or CLIENT_SK, region_name=REGION, config=Config(**conf))


ORIGIN = None  # boto3 straight to s3s-fs with the origin's credentials


def err_of(e):
    r = getattr(e, "response", None) or {}
    return r.get("ResponseMetadata", {}).get("HTTPStatusCode"), str(r.get("Error", {}).get("Code", ""))


def err_msg(e):
    """An S3 error's Message only (never the signature or string to sign the proxy's body may carry)."""
    return str(((getattr(e, "response", None) or {}).get("Error") or {}).get("Message", ""))


def call(what, fn, *a, **kw):
    """fn(*a, **kw), with a botocore error turned into an AssertionError that names the request."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(*a, **kw)
    except ClientError as e:
        st, code = err_of(e)
        raise AssertionError(f"{what}: expected success, got {st} {code}: {err_msg(e)}") from None
    except BotoCoreError as e:
        raise AssertionError(f"{what}: expected success, got {type(e).__name__}: {e}") from None


def expect_error(what, want_status, want_code, fn, *a, **kw):
    from botocore.exceptions import ClientError

    try:
        fn(*a, **kw)
    except ClientError as e:
        st, code = err_of(e)
        if (st, code) != (want_status, want_code):
            raise AssertionError(f"{what}: expected {want_status} {want_code}, got {st} {code}: {err_msg(e)}") \
                from None
        return
    raise AssertionError(f"{what}: expected {want_status} {want_code}, got success")


def origin_object(bucket, key):
    """(sha256, size, etag) of the object at the origin, or None."""
    from botocore.exceptions import ClientError

    try:
        r = ORIGIN.get_object(Bucket=bucket, Key=key)
    except ClientError as e:
        st, code = err_of(e)
        if st == 404 or code in ("NoSuchKey", "NoSuchBucket"):
            return None
        raise
    data = r["Body"].read()
    return hashlib.sha256(data).hexdigest(), len(data), r.get("ETag", "").strip('"')


def at_origin(bucket, key, data, what):
    got = origin_object(bucket, key)
    if got is None:
        raise AssertionError(f"{what}: {bucket}/{key!r} is not at the origin")
    if got[0] != hashlib.sha256(data).hexdigest():
        raise AssertionError(f"{what}: {bucket}/{key!r} at the origin has {got[1]} other bytes, "
                             f"not the {len(data)} sent")
    return got


def absent_at_origin(bucket, key, what):
    if origin_object(bucket, key) is not None:
        raise AssertionError(f"{what}: {bucket}/{key!r} exists at the origin but must not")


def origin_bucket_exists(bucket):
    from botocore.exceptions import ClientError

    try:
        ORIGIN.head_bucket(Bucket=bucket)
        return True
    except ClientError as e:
        if err_of(e)[0] == 404:
            return False
        raise


def origin_put(bucket, key, data):
    if not origin_bucket_exists(bucket):
        ORIGIN.create_bucket(Bucket=bucket)
    ORIGIN.put_object(Bucket=bucket, Key=key, Body=data)


def fetch(url, method="GET", data=None, headers=None):
    """(status, body) of a plain HTTP request (presigned URLs)."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def brief(body):
    """A response body for a failure reason: an S3 error's Code and Message only (the proxy's
    SignatureDoesNotMatch body also carries the signature and string to sign), else its first bytes."""
    code = xml_code(body)
    if code is not None:
        m = re.search(rb"<Message>([^<]*)</Message>", body)
        return f"{code}: {m.group(1).decode(errors='replace') if m else ''}"
    return repr(body[:80]) + (f" ({len(body)} bytes)" if len(body) > 80 else "")


def shown(url):
    """A URL for a failure reason: the query's parameter names only (no credential, no signature)."""
    u = urllib.parse.urlsplit(url)
    names = [k for k, _ in urllib.parse.parse_qsl(u.query, keep_blank_values=True)]
    return f"{u.scheme}://{u.netloc}{u.path}?{'&'.join(names)}"


def xml_code(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


def raw_signed(port, method, path, signed_host, send_host, extra=None, body=b""):
    """A SigV4 request signed (by botocore) for signed_host, sent to 127.0.0.1:port with Host: send_host and
    extra unsigned headers. Returns (status, body)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method=method, url=f"http://{signed_host}{path}", data=body)
    S3SigV4Auth(Credentials(CLIENT_AK, CLIENT_SK), "s3", REGION).add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", send_host)
        for k, v in req.headers.items():
            conn.putheader(k, v)
        for k, v in (extra or {}).items():
            conn.putheader(k, v)
        if body or method in ("PUT", "POST"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def add_unsigned_header(c, name, value):
    """Add a header after signing (botocore's before-send), as a client or attacker would add an unsigned one."""

    def hook(request, **_kw):
        request.headers[name] = value

    c.meta.events.register("before-send.s3", hook)


def multipart(c, bucket, key, parts, what):
    up = call(f"{what} CreateMultipartUpload", c.create_multipart_upload, Bucket=bucket, Key=key)
    done = []
    for i, p in enumerate(parts, 1):
        r = call(f"{what} UploadPart {i}", c.upload_part, Bucket=bucket, Key=key, UploadId=up["UploadId"],
                 PartNumber=i, Body=p)
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    call(f"{what} CompleteMultipartUpload", c.complete_multipart_upload, Bucket=bucket, Key=key,
         UploadId=up["UploadId"], MultipartUpload={"Parts": done})


# ---------------------------------------------------------------------------------------------- A: virtual origin
def group_a(ports, wire_a):
    wa = ports["WA"]
    pa = ports["PA"]
    clients = {
        "path": client(f"http://127.0.0.1:{pa}", "path"),
        "virtual": client(f"http://{DOMAIN}:{pa}", "virtual"),
    }

    def wire_virtual(mark, bucket, key, what, min_reqs=1):
        """Every request the origin got since mark: Host <bucket>.origin.test:WA, path /<key> (or /)."""
        reqs = wire_a.since(mark)
        if len(reqs) < min_reqs:
            raise AssertionError(f"{what}: {len(reqs)} request(s) reached the origin, expected at least {min_reqs}")
        want_host = f"{bucket}.{ORIGIN_NAME}:{wa}"
        want_path = "/" + (key or "")
        for r in reqs:
            if r.header("host") != want_host:
                raise AssertionError(f"{what}: the origin got {r.short()}, expected Host {want_host!r}")
            if r.path != want_path:
                raise AssertionError(f"{what}: the origin got {r.short()}, expected the path {want_path!r} "
                                     f"(only the key, the bucket in Host)")
        return reqs

    for style, c in clients.items():
        b = f"cdn-a-{style}"
        key = "dir/a b=é.txt"  # no "+": s3s-fs does not url-encode listed keys (README), boto3 decodes "+"
        data = os.urandom(1500)
        n = f"cdn/a.{style}"

        def create(c=c, b=b, n=n):
            m = wire_a.mark()
            call(f"{n} CreateBucket {b}", c.create_bucket, Bucket=b)
            reqs = wire_virtual(m, b, None, f"{n} CreateBucket")
            assert any(r.method == "PUT" for r in reqs), \
                f"{n}: no PUT / reached the origin: {[x.short() for x in reqs]}"
            assert origin_bucket_exists(b), f"{n}: bucket {b} is not at the origin"

        def put(c=c, b=b, n=n, key=key, data=data):
            m = wire_a.mark()
            call(f"{n} PutObject {key!r}", c.put_object, Bucket=b, Key=key, Body=data)
            wire_virtual(m, b, key, f"{n} PutObject")
            at_origin(b, key, data, f"{n} PutObject")
            m = wire_a.mark()
            call(f"{n} PutObject 'p+q%'", c.put_object, Bucket=b, Key="p+q%", Body=data)
            wire_virtual(m, b, "p+q%", f"{n} PutObject 'p+q%'")
            at_origin(b, "p+q%", data, f"{n} PutObject 'p+q%'")

        def get(c=c, b=b, n=n, key=key, data=data):
            m = wire_a.mark()
            got = call(f"{n} GetObject", c.get_object, Bucket=b, Key=key)["Body"].read()
            assert got == data, f"{n} GetObject {b}/{key!r}: {len(got)} bytes differ from the {len(data)} put"
            wire_virtual(m, b, key, f"{n} GetObject")
            h = call(f"{n} HeadObject", c.head_object, Bucket=b, Key=key)
            assert h["ContentLength"] == len(data), f"{n} HeadObject: ContentLength {h['ContentLength']} != {len(data)}"
            wire_virtual(m, b, key, f"{n} GetObject+HeadObject", 2)

        def list_(c=c, b=b, n=n, key=key):
            call(f"{n} PutObject other", c.put_object, Bucket=b, Key="dir/sub/x", Body=b"x")
            m = wire_a.mark()
            r = call(f"{n} ListObjectsV2", c.list_objects_v2, Bucket=b, Prefix="dir/", Delimiter="/")
            keys = [o["Key"] for o in r.get("Contents", [])]
            prefixes = [p["Prefix"] for p in r.get("CommonPrefixes", [])]
            assert keys == [key] and prefixes == ["dir/sub/"], \
                f"{n} ListObjectsV2 prefix=dir/ delimiter=/: keys {keys}, prefixes {prefixes}; " \
                f"expected [{key!r}], ['dir/sub/']"
            reqs = wire_virtual(m, b, None, f"{n} ListObjectsV2")
            assert "prefix=dir" in reqs[0].target, f"{n}: the list query did not reach the origin: {reqs[0].short()}"

        def copy(c=c, b=b, n=n, key=key, data=data):
            m = wire_a.mark()
            call(f"{n} CopyObject", c.copy_object, Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": key})
            wire_virtual(m, b, "copy", f"{n} CopyObject")
            at_origin(b, "copy", data, f"{n} CopyObject")

        def mpu(c=c, b=b, n=n):
            parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(MiB)]
            m = wire_a.mark()
            multipart(c, b, "big/mpu.bin", parts, n)
            reqs = wire_virtual(m, b, "big/mpu.bin", f"{n} multipart", 5)
            assert [r.method for r in reqs] == ["POST", "PUT", "PUT", "PUT", "POST"], \
                f"{n} multipart: the origin got {[r.line for r in reqs]}"
            got = at_origin(b, "big/mpu.bin", b"".join(parts), f"{n} multipart")
            assert got[2].endswith("-3"), f"{n} multipart: origin ETag {got[2]!r}, expected a 3-part ETag"

        def presign(c=c, b=b, n=n, key=key, data=data):
            url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": key}, ExpiresIn=300)
            want_host = f"{b}.{DOMAIN}:{pa}" if style == "virtual" else f"127.0.0.1:{pa}"
            assert urllib.parse.urlsplit(url).netloc == want_host, \
                f"{n}: presigned URL {shown(url)} not for {want_host}"
            m = wire_a.mark()
            st, body = fetch(url)
            assert st == 200 and body == data, f"{n} presigned GET: {st} {brief(body)}"
            wire_virtual(m, b, key, f"{n} presigned GET")

        def delete(c=c, b=b, n=n, key=key):
            m = wire_a.mark()
            call(f"{n} DeleteObject", c.delete_object, Bucket=b, Key=key)
            wire_virtual(m, b, key, f"{n} DeleteObject")
            absent_at_origin(b, key, f"{n} DeleteObject")

        def delete_bucket(c=c, b=b, n=n):
            for k in ("dir/sub/x", "copy", "big/mpu.bin", "p+q%"):
                call(f"{n} DeleteObject {k}", c.delete_object, Bucket=b, Key=k)
            m = wire_a.mark()
            call(f"{n} DeleteBucket", c.delete_bucket, Bucket=b)
            wire_virtual(m, b, None, f"{n} DeleteBucket")
            assert not origin_bucket_exists(b), f"{n} DeleteBucket: {b} still exists at the origin"

        for name, fn in (("create-bucket", create), ("put", put), ("get-head", get), ("list-prefix-delimiter", list_),
                         ("copy", copy), ("multipart-3-parts", mpu), ("presigned-get", presign), ("delete", delete),
                         ("delete-bucket", delete_bucket)):
            t.run_test(f"{n}-{name}", fn)

    def list_buckets():
        ORIGIN.create_bucket(Bucket="cdn-a-listed")
        for style, c in clients.items():
            m = wire_a.mark()
            names = [x["Name"] for x in call(f"ListBuckets ({style})", c.list_buckets)["Buckets"]]
            assert "cdn-a-listed" in names, f"ListBuckets ({style}): {names} lacks cdn-a-listed"
            reqs = wire_a.since(m)
            want = f"{ORIGIN_NAME}:{wa}"
            assert reqs and all(r.line.startswith("GET / ") and r.header("host") == want for r in reqs), \
                f"ListBuckets ({style}): the origin got {[r.short() for r in reqs]}, expected GET / with Host {want!r}"

    t.run_test("cdn/a.list-buckets-bare-origin-host", list_buckets)

    def dotted():
        c = clients["path"]
        b = "cdn.a.dotted"
        data = os.urandom(300)
        m = wire_a.mark()
        call("CreateBucket cdn.a.dotted", c.create_bucket, Bucket=b)
        call("PutObject cdn.a.dotted/k", c.put_object, Bucket=b, Key="k", Body=data)
        got = call("GetObject cdn.a.dotted/k", c.get_object, Bucket=b, Key="k")["Body"].read()
        assert got == data, "GetObject cdn.a.dotted/k: bytes differ"
        reqs = wire_a.since(m)
        want = f"{b}.{ORIGIN_NAME}:{wa}"  # over http a dotted bucket can go virtual-hosted (no certificate)
        for r in reqs:
            assert r.header("host") == want and r.path in ("/", "/k"), \
                f"dotted bucket over http: the origin got {r.short()}, expected Host {want!r} and path / or /k"
        at_origin(b, "k", data, "dotted bucket")

    t.run_test("cdn/a.dotted-bucket-over-http", dotted)

    def public_private():
        # a URL minted for cdn-a-pub.<domain>/cdn-a-priv/x reads key cdn-a-priv/x of cdn-a-pub, never cdn-a-priv/x
        origin_put("cdn-a-priv", "x", b"PRIVATE")
        origin_put("cdn-a-pub", "cdn-a-priv/x", b"public")
        c = clients["virtual"]
        url = c.generate_presigned_url("get_object", Params={"Bucket": "cdn-a-pub", "Key": "cdn-a-priv/x"})
        m = wire_a.mark()
        st, body = fetch(url)
        assert (st, body) == (200, b"public"), f"GET {shown(url)}: {st} {brief(body)}, expected 200 b'public'"
        reqs = wire_a.since(m)
        assert [r.short() for r in reqs] == [f"{'GET /cdn-a-priv/x HTTP/1.1'!r} Host 'cdn-a-pub.{ORIGIN_NAME}:{wa}'"], \
            f"the origin got {[r.short() for r in reqs]}"
        url = c.generate_presigned_url("get_object", Params={"Bucket": "cdn-a-pub", "Key": "cdn-a-priv/y"})
        origin_put("cdn-a-priv", "y", b"PRIVATE")
        st, body = fetch(url)
        assert st == 404 and xml_code(body) == "NoSuchKey", \
            f"GET of cdn-a-pub/cdn-a-priv/y (only cdn-a-priv/y exists): {st} {brief(body)}, expected 404 NoSuchKey"

    t.run_test("cdn/a.virtual-host-never-path-bucket", public_private)


# ---------------------------------------------------------------------------------------------- B: nginx
def group_b(ports, wire_b, nginx_dir):
    n1, n2, n3, n4 = ports["N_PUBLIC"], ports["N_NOPUBLIC"], ports["N_FORWARDED"], ports["N_UNTRUSTED"]
    access = os.path.join(nginx_dir, "access.log")
    errlog = os.path.join(nginx_dir, "error.log")

    def access_since(mark):
        time.sleep(0.1)  # nginx writes the access line when the request ends
        with open(access, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace").splitlines()

    def amark():
        return os.path.getsize(access) if os.path.exists(access) else 0

    def via_nginx(mark, port, what, n=1):
        lines = [x for x in access_since(mark) if x.startswith(f"{port} ")]
        assert len(lines) >= n, f"{what}: nginx logged {len(lines)} request(s) on port {port}, expected {n}+"
        return lines

    # (1) PUBLIC_HOST
    pub = client(f"http://{DOMAIN}:{n1}", "path")
    data = os.urandom(2000)

    def public_ops():
        m, wm = amark(), wire_b.mark()
        call("CreateBucket via nginx (PUBLIC_HOST)", pub.create_bucket, Bucket="cdn-b-pub")
        assert origin_bucket_exists("cdn-b-pub"), "CreateBucket via nginx: cdn-b-pub not at the origin"
        call("PutObject via nginx (PUBLIC_HOST)", pub.put_object, Bucket="cdn-b-pub", Key="k 1", Body=data)
        at_origin("cdn-b-pub", "k 1", data, "PutObject via nginx (PUBLIC_HOST)")
        got = call("GetObject via nginx", pub.get_object, Bucket="cdn-b-pub", Key="k 1")["Body"].read()
        assert got == data, "GetObject via nginx (PUBLIC_HOST): bytes differ"
        h = call("HeadObject via nginx", pub.head_object, Bucket="cdn-b-pub", Key="k 1")
        assert h["ContentLength"] == len(data), f"HeadObject: {h['ContentLength']}"
        keys = [o["Key"] for o in call("ListObjectsV2 via nginx", pub.list_objects_v2, Bucket="cdn-b-pub")
                .get("Contents", [])]
        assert keys == ["k 1"], f"ListObjectsV2 via nginx (PUBLIC_HOST): {keys}"
        lines = via_nginx(m, n1, "PUBLIC_HOST ops", 5)
        assert all(f'host="{DOMAIN}:{n1}"' in x for x in lines), f"nginx saw another Host: {lines[:2]}"
        # the CloudFront stand-in's X-Amz-Cf-Id was accepted unsigned, and not passed on
        reqs = wire_b.since(wm)
        assert len(reqs) >= 5, f"the origin saw {len(reqs)} request(s), expected 5+"
        leaked = [r.short() for r in reqs if r.header("x-amz-cf-id") is not None]
        assert not leaked, f"X-Amz-Cf-Id reached the origin: {leaked[:2]}"

    t.run_test("cdn/b.public-host-path-style-put-get-head-list", public_ops)

    def public_presigned():
        url = pub.generate_presigned_url("get_object", Params={"Bucket": "cdn-b-pub", "Key": "k 1"})
        st, body = fetch(url)
        assert st == 200 and body == data, f"presigned GET via nginx (PUBLIC_HOST): {st} {brief(body)}"
        body2 = os.urandom(700)
        url = pub.generate_presigned_url("put_object", Params={"Bucket": "cdn-b-pub", "Key": "presigned-put"})
        st, body = fetch(url, "PUT", body2)
        assert st == 200, f"presigned PUT via nginx (PUBLIC_HOST): {st} {brief(body)}"
        at_origin("cdn-b-pub", "presigned-put", body2, "presigned PUT via nginx (PUBLIC_HOST)")

    t.run_test("cdn/b.public-host-presigned-get-put", public_presigned)

    def public_delete():
        call("DeleteObject via nginx", pub.delete_object, Bucket="cdn-b-pub", Key="k 1")
        absent_at_origin("cdn-b-pub", "k 1", "DeleteObject via nginx (PUBLIC_HOST)")

    t.run_test("cdn/b.public-host-delete", public_delete)

    def public_received_host_refused():
        # PUBLIC_HOST is the only host: a request signed for the Host it arrives with fails
        direct = client(f"http://127.0.0.1:{ports['P_PUBLIC']}", "path")
        m = wire_b.mark()
        expect_error(f"PutObject straight to the PUBLIC_HOST proxy signed for 127.0.0.1:{ports['P_PUBLIC']}", 403,
                     "SignatureDoesNotMatch", direct.put_object, Bucket="cdn-b-pub", Key="direct", Body=b"d")
        absent_at_origin("cdn-b-pub", "direct", "signed for the received Host")
        reqs = wire_b.since(m)
        assert not reqs, f"a refused request reached the origin: {[r.short() for r in reqs]}"

    t.run_test("cdn/b.public-host-signed-for-received-host-403", public_received_host_refused)

    # (1') no PUBLIC_HOST
    def no_public_host():
        nopub = client(f"http://{DOMAIN}:{n2}", "path")
        m, wm = amark(), wire_b.mark()
        expect_error("PutObject via nginx, proxy without PUBLIC_HOST", 403, "SignatureDoesNotMatch",
                     nopub.put_object, Bucket="cdn-b-pub", Key="nopub", Body=b"n")
        expect_error("GetObject via nginx, proxy without PUBLIC_HOST", 403, "SignatureDoesNotMatch",
                     nopub.get_object, Bucket="cdn-b-pub", Key="presigned-put")
        via_nginx(m, n2, "without PUBLIC_HOST", 2)
        absent_at_origin("cdn-b-pub", "nopub", "without PUBLIC_HOST")
        reqs = wire_b.since(wm)
        assert not reqs, f"a refused request reached the origin: {[r.short() for r in reqs]}"
        # control: the same proxy, reached without the Host rewrite, works (the 403 came from the rewrite)
        direct = client(f"http://127.0.0.1:{ports['P_NOPUBLIC']}", "path")
        call("PutObject straight to the proxy without PUBLIC_HOST", direct.put_object, Bucket="cdn-b-pub",
             Key="nopub-direct", Body=b"direct")
        at_origin("cdn-b-pub", "nopub-direct", b"direct", "control straight to the proxy")

    t.run_test("cdn/b.no-public-host-403-signature-does-not-match", no_public_host)

    # (2) trusted X-Forwarded-Host
    fv = client(f"http://{DOMAIN}:{n3}", "virtual")
    fp = client(f"http://{DOMAIN}:{n3}", "path")
    B = "cdn-b-fwd"
    small = os.urandom(3000)

    def fwd_ops():
        m = amark()
        call("CreateBucket (virtual, via nginx)", fv.create_bucket, Bucket=B)
        assert origin_bucket_exists(B), f"CreateBucket (virtual via nginx): {B} not at the origin"
        call("PutObject (virtual, via nginx)", fv.put_object, Bucket=B, Key="dir/é x", Body=small)
        at_origin(B, "dir/é x", small, "PutObject (virtual, via nginx)")
        got = call("GetObject (virtual)", fv.get_object, Bucket=B, Key="dir/é x")["Body"].read()
        assert got == small, "GetObject (virtual, via nginx): bytes differ"
        h = call("HeadObject (virtual)", fv.head_object, Bucket=B, Key="dir/é x")
        assert h["ContentLength"] == len(small), f"HeadObject: {h['ContentLength']}"
        call("PutObject (virtual) dir/sub/y", fv.put_object, Bucket=B, Key="dir/sub/y", Body=b"y")
        r = call("ListObjectsV2 (virtual)", fv.list_objects_v2, Bucket=B, Prefix="dir/", Delimiter="/")
        keys = [o["Key"] for o in r.get("Contents", [])]
        prefixes = [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        assert keys == ["dir/é x"] and prefixes == ["dir/sub/"], \
            f"ListObjectsV2 (virtual, via nginx): {keys} {prefixes}"
        call("CopyObject (virtual)", fv.copy_object, Bucket=B, Key="copy", CopySource={"Bucket": B, "Key": "dir/é x"})
        at_origin(B, "copy", small, "CopyObject (virtual, via nginx)")
        call("DeleteObject (virtual)", fv.delete_object, Bucket=B, Key="copy")
        absent_at_origin(B, "copy", "DeleteObject (virtual, via nginx)")
        lines = via_nginx(m, n3, "virtual-hosted via nginx", 8)
        assert all(f'host="{B}.{DOMAIN}:{n3}"' in x for x in lines), \
            f"nginx saw a Host other than {B}.{DOMAIN}:{n3}: {[x for x in lines if B + '.' not in x][:2]}"

    t.run_test("cdn/b.forwarded-virtual-create-put-get-head-list-copy-delete", fwd_ops)

    def fwd_path():
        call("PutObject (path-style, via nginx)", fp.put_object, Bucket=B, Key="path-style", Body=b"p")
        at_origin(B, "path-style", b"p", "PutObject (path-style, bare domain, via nginx)")
        got = call("GetObject (path-style)", fp.get_object, Bucket=B, Key="path-style")["Body"].read()
        assert got == b"p", "GetObject (path-style, via nginx): bytes differ"
        names = [x["Name"] for x in call("ListBuckets (bare domain, via nginx)", fp.list_buckets)["Buckets"]]
        assert B in names, f"ListBuckets via nginx: {names}"

    t.run_test("cdn/b.forwarded-path-style-and-list-buckets", fwd_path)

    def fwd_mpu():
        parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(MiB)]
        multipart(fv, B, "mpu/3", parts, "virtual via nginx")
        got = at_origin(B, "mpu/3", b"".join(parts), "multipart (virtual, via nginx)")
        assert got[2].endswith("-3"), f"multipart via nginx: origin ETag {got[2]!r}"

    t.run_test("cdn/b.forwarded-virtual-multipart-3-parts", fwd_mpu)

    def fwd_presigned():
        url = fv.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "dir/é x"})
        assert urllib.parse.urlsplit(url).netloc == f"{B}.{DOMAIN}:{n3}", f"not a virtual-hosted URL: {shown(url)}"
        st, body = fetch(url)
        assert st == 200 and body == small, f"presigned v4 GET (virtual, via nginx): {st} {brief(body)}"
        up = os.urandom(1234)
        url = fv.generate_presigned_url("put_object", Params={"Bucket": B, "Key": "presigned/put"})
        st, body = fetch(url, "PUT", up)
        assert st == 200, f"presigned v4 PUT (virtual, via nginx): {st} {brief(body)}"
        at_origin(B, "presigned/put", up, "presigned v4 PUT (virtual, via nginx)")
        # SigV2: the string to sign's resource is /bucket/key, the bucket known only from X-Forwarded-Host
        v2 = client(f"http://{DOMAIN}:{n3}", "virtual", sig="s3")
        url = v2.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "dir/é x"})
        assert "Signature=" in url and "AWSAccessKeyId=" in url, f"not a SigV2 URL: {shown(url)}"
        assert urllib.parse.urlsplit(url).netloc == f"{B}.{DOMAIN}:{n3}", f"not a virtual-hosted URL: {shown(url)}"
        st, body = fetch(url)
        assert st == 200 and body == small, f"presigned v2 GET (virtual, via nginx): {st} {brief(body)}"

    t.run_test("cdn/b.forwarded-virtual-presigned-v4-get-put-v2-get", fwd_presigned)

    def fwd_public_private():
        origin_put("cdn-b-priv", "x", b"PRIVATE")
        origin_put(B, "cdn-b-priv/x", b"public")
        url = fv.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "cdn-b-priv/x"})
        st, body = fetch(url)
        assert (st, body) == (200, b"public"), f"GET {shown(url)}: {st} {brief(body)}, expected 200 b'public'"

    t.run_test("cdn/b.forwarded-virtual-host-never-path-bucket", fwd_public_private)

    def stream_20mb():
        big = os.path.join(WORK, "big20.bin")
        if not os.path.exists(big):
            t.write_random(big, 20 * MiB)
        with open(big, "rb") as f:
            blob = f.read()
        m = amark()
        call("PutObject 20 MB (virtual, via nginx)", fv.put_object, Bucket=B, Key="big/20mb", Body=blob)
        at_origin(B, "big/20mb", blob, "PutObject 20 MB via nginx")
        got = call("GetObject 20 MB (virtual, via nginx)", fv.get_object, Bucket=B, Key="big/20mb")["Body"].read()
        assert got == blob, f"GetObject 20 MB via nginx: {len(got)} bytes, differ from the upload"
        lines = via_nginx(m, n3, "20 MB", 2)
        put = [x for x in lines if '"PUT /big/20mb' in x]
        assert put and " 200 " in put[0] and int(re.search(r"req_len=(\d+)", put[0]).group(1)) >= 20 * MiB, \
            f"nginx access log for the 20 MB PUT: {put}"
        get = [x for x in lines if '"GET /big/20mb' in x]
        assert get and int(re.search(r"sent=(\d+)", get[0]).group(1)) >= 20 * MiB, f"nginx log for the GET: {get}"
        spooled = [x for x in open(errlog, errors="replace") if "buffered to a temporary file" in x]
        assert not spooled, f"nginx spooled a body to disk (buffering not off): {spooled[:2]}"

    t.run_test("cdn/b.forwarded-stream-20mb-up-and-down", stream_20mb)

    def client_xfh_overwritten():
        c = client(f"http://{DOMAIN}:{n3}", "virtual")
        add_unsigned_header(c, "X-Forwarded-Host", f"cdn-b-priv.{DOMAIN}:{n3}")
        m = amark()
        got = call("GetObject with a client X-Forwarded-Host via nginx", c.get_object, Bucket=B,
                   Key="dir/é x")["Body"].read()
        assert got == small, "GetObject with the client's own X-Forwarded-Host via nginx: bytes differ"
        lines = via_nginx(m, n3, "client X-Forwarded-Host")
        assert f'xfh="cdn-b-priv.{DOMAIN}:{n3}"' in lines[-1], f"the client header did not reach nginx: {lines[-1]}"

    t.run_test("cdn/b.forwarded-client-x-forwarded-host-overwritten-by-nginx", client_xfh_overwritten)

    def client_forwarded_dropped():
        c = client(f"http://{DOMAIN}:{n3}", "virtual")
        add_unsigned_header(c, "Forwarded", f'host="cdn-b-priv.{DOMAIN}:{n3}"')
        got = call("GetObject with a client Forwarded: host= via nginx", c.get_object, Bucket=B,
                   Key="dir/é x")["Body"].read()
        assert got == small, "GetObject with the client's own Forwarded header via nginx: bytes differ"

    t.run_test("cdn/b.forwarded-client-forwarded-header-dropped-by-nginx", client_forwarded_dropped)

    # straight to the trusting proxy from 127.0.0.1 (not in TRUSTED_PROXIES), forged forwarded host
    pf = ports["P_FORWARDED"]
    real = f"127.0.0.1:{pf}"
    forged = f"{B}.{DOMAIN}:{n3}"

    def forged_cases():
        origin_put(B, "ping", b"pong")
        fails = []
        for label, hdrs in (("X-Forwarded-Host", {"X-Forwarded-Host": forged}),
                            ("Forwarded", {"Forwarded": f'host="{forged}"'})):
            m = wire_b.mark()
            st, body = raw_signed(pf, "GET", "/ping", forged, real, hdrs)
            if (st, xml_code(body)) != (403, "SignatureDoesNotMatch"):
                fails.append(f"GET /ping Host {real} {label}: {forged} signed for {forged}: got {st} "
                             f"{xml_code(body)}, expected 403 SignatureDoesNotMatch")
            st, body = raw_signed(pf, "PUT", "/forged", forged, real, hdrs, b"forged")
            if (st, xml_code(body)) != (403, "SignatureDoesNotMatch"):
                fails.append(f"PUT /forged {label} signed for the forged host: got {st} {xml_code(body)}, expected 403")
            reqs = wire_b.since(m)
            if reqs:
                fails.append(f"{label}: forged requests reached the origin: {[r.short() for r in reqs]}")
            if origin_object(B, "forged") is not None:
                fails.append(f"{label}: {B}/forged was stored")
            m = wire_b.mark()
            st, body = raw_signed(pf, "GET", f"/{B}/ping", real, real, hdrs)
            if (st, body) != (200, b"pong"):
                fails.append(f"GET /{B}/ping signed for the real Host {real} with a forged {label}: got {st} "
                             f"{brief(body)}, expected 200 b'pong'")
            reqs = wire_b.since(m)
            if [r.line for r in reqs] != [f"GET /{B}/ping HTTP/1.1"]:
                fails.append(f"{label}: the origin got {[r.short() for r in reqs]}, expected GET /{B}/ping")
        assert not fails, "; ".join(fails)

    t.run_test("cdn/b.forged-forwarded-host-from-untrusted-peer", forged_cases)

    # (2') nginx not trusted: X-Forwarded-Host is ignored, the signature is checked over internal.test
    def untrusted_nginx():
        c = client(f"http://{DOMAIN}:{n4}", "virtual")
        m, wm = amark(), wire_b.mark()
        expect_error("PutObject (virtual) via nginx, proxy trusting only 127.0.0.1", 403, "SignatureDoesNotMatch",
                     c.put_object, Bucket=B, Key="untrusted", Body=b"u")
        expect_error("GetObject (virtual) via nginx, proxy trusting only 127.0.0.1", 403, "SignatureDoesNotMatch",
                     c.get_object, Bucket=B, Key="ping")
        via_nginx(m, n4, "untrusted nginx", 2)
        absent_at_origin(B, "untrusted", "untrusted nginx")
        reqs = wire_b.since(wm)
        assert not reqs, f"a refused request reached the origin: {[r.short() for r in reqs]}"

    t.run_test("cdn/b.nginx-not-in-trusted-proxies-403", untrusted_nginx)

    def never_at_origin():
        reqs = wire_b.since(0)
        assert len(reqs) > 20, f"wire B saw only {len(reqs)} requests"
        bad = [r.short() + f" {k}: {v}" for r in reqs for k, v in r.headers
               if k.lower() in ("x-forwarded-host", "forwarded")]
        assert not bad, f"forwarding headers reached the origin: {bad[:3]}"
        other = sorted({r.header("host") for r in reqs} - {f"{ORIGIN_NAME}:{ports['WB']}"})
        assert not other, f"the origin saw Host {other}, not only {ORIGIN_NAME}:{ports['WB']}"

    t.run_test("cdn/b.forwarding-headers-never-reach-origin", never_at_origin)


# ---------------------------------------------------------------------------------------------- C: HAProxy
def group_c(ports, hlog):
    hp = ports["H"]
    c = client(f"http://{DOMAIN}:{hp}", "virtual")
    b = "cdn-c-haproxy"

    def ops():
        data = os.urandom(MiB)
        call("CreateBucket (virtual, via HAProxy)", c.create_bucket, Bucket=b)
        assert origin_bucket_exists(b), f"CreateBucket via HAProxy: {b} not at the origin"
        call("PutObject 1 MB (virtual, via HAProxy)", c.put_object, Bucket=b, Key="a/1mb", Body=data)
        at_origin(b, "a/1mb", data, "PutObject via HAProxy")
        got = call("GetObject (virtual, via HAProxy)", c.get_object, Bucket=b, Key="a/1mb")["Body"].read()
        assert got == data, "GetObject via HAProxy: bytes differ"
        keys = [o["Key"] for o in call("ListObjectsV2 (virtual)", c.list_objects_v2, Bucket=b).get("Contents", [])]
        assert keys == ["a/1mb"], f"ListObjectsV2 via HAProxy: {keys}"
        url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "a/1mb"})
        st, body = fetch(url)
        assert st == 200 and body == data, f"presigned GET via HAProxy: {st} {brief(body)}"
        parts = [os.urandom(5 * MiB), os.urandom(MiB)]
        multipart(c, b, "mpu", parts, "virtual via HAProxy")
        at_origin(b, "mpu", b"".join(parts), "multipart via HAProxy")
        call("DeleteObject (virtual)", c.delete_object, Bucket=b, Key="a/1mb")
        absent_at_origin(b, "a/1mb", "DeleteObject via HAProxy")
        time.sleep(0.2)
        log = [x for x in open(hlog, errors="replace") if x.startswith("E2E ")]
        hosts = {m.group(1) for x in log for m in [re.search(r"\{([^}|]*)\}", x)] if m}
        assert hosts == {f"{b}.{DOMAIN}:{hp}"}, f"HAProxy passed Hosts {hosts}, expected only {b}.{DOMAIN}:{hp}"
        assert len(log) >= 10, f"HAProxy logged {len(log)} requests, expected 10+"

    t.run_test("cdn/c.haproxy-host-passthrough-virtual-hosted", ops)

    def client_forwarding_headers():
        origin_put(b, "own", b"own object")
        origin_put("cdn-c-other", "own", b"OTHER")
        for name, value in (("X-Forwarded-Host", f"cdn-c-other.{DOMAIN}:{hp}"),
                            ("Forwarded", f'host="cdn-c-other.{DOMAIN}:{hp}"')):
            c2 = client(f"http://{DOMAIN}:{hp}", "virtual")
            add_unsigned_header(c2, name, value)
            got = call(f"GetObject (virtual, via HAProxy) with the client's own {name}", c2.get_object, Bucket=b,
                       Key="own")["Body"].read()
            assert got == b"own object", f"GetObject with a client {name} via HAProxy: {brief(got)}"

    t.run_test("cdn/c.haproxy-client-forwarding-headers-dropped", client_forwarding_headers)


# ---------------------------------------------------------------------------------------------- main
class HostsMissing(Exception):
    pass


def setup():
    """Start everything; returns (ports, wire_a, wire_b, nginx_dir, haproxy_log) or raises."""
    global ORIGIN
    for what, path in (("E2E_PROXY_BIN_PATH", PROXY_BIN), ("s3s-fs (E2E_S3SFS_BIN)", S3SFS_BIN)):
        if not path or not os.access(path, os.X_OK):
            raise RuntimeError(f"{what} is not an executable: {path!r}")
    try:
        addrs = {a[4][0] for a in _real_getaddrinfo(ORIGIN_NAME, 80, proto=socket.IPPROTO_TCP)}
    except OSError as e:
        addrs = {f"error: {e}"}
    if "127.0.0.1" not in addrs:
        if os.environ.get("E2E_HOSTS_NOTE"):  # run.sh could not write /etc/hosts: say so, as the vanity group does
            raise HostsMissing(f"{ORIGIN_NAME} does not resolve to 127.0.0.1: {os.environ['E2E_HOSTS_NOTE']}")
        raise RuntimeError(f"{ORIGIN_NAME} must resolve to 127.0.0.1 for the proxies (an /etc/hosts line "
                           f"'127.0.0.1 {ORIGIN_NAME}'); it resolves to {sorted(addrs)}")
    taken = set()
    ports = {}
    for k in ("OPORT", "WA", "WB"):
        ports[k] = free_port(taken)
        taken.add(ports[k])
    data = os.path.join(WORK, "origin-data")
    os.makedirs(data)
    argv = [S3SFS_BIN, "--host", "127.0.0.1", "--port", str(ports["OPORT"]), "--access-key", ORIGIN_AK,
            "--secret-key", ORIGIN_SK]
    for k in ("OPORT", "WA", "WB"):  # s3s-fs 0.14 compares the domain with the port of the Host
        argv += ["--domain", f"{ORIGIN_NAME}:{ports[k]}"]
    p = spawn("s3s-fs", argv + [data])
    wait_port("s3s-fs", p, ports["OPORT"])
    ORIGIN = client(f"http://{ORIGIN_NAME}:{ports['OPORT']}", "path", ak=ORIGIN_AK, sk=ORIGIN_SK)
    ORIGIN.list_buckets()

    wires = {}
    for k, log in (("WA", "wire-a.log"), ("WB", "wire-b.log")):
        path = os.path.join(WORK, log)
        open(path, "a").close()
        p = spawn(f"wirelog-{k}", [sys.executable, os.path.join(HERE, "wirelog.py"), str(ports[k]),
                                   f"http://127.0.0.1:{ports['OPORT']}", path])
        wait_port(f"wirelog-{k}", p, ports[k])
        wires[k] = Wire(path)

    oa = f"http://{ORIGIN_NAME}:{ports['WA']}"
    ob = f"http://{ORIGIN_NAME}:{ports['WB']}"
    for k in ("N_PUBLIC", "N_NOPUBLIC", "N_FORWARDED", "N_UNTRUSTED", "H"):
        ports[k] = free_port(taken)
        taken.add(ports[k])
    ports["PA"] = start_proxy("proxy-a-virtual-origin", oa, taken, VIRTUAL_HOST_DOMAINS=DOMAIN,
                              ORIGIN_ADDRESSING="virtual")
    ports["P_PUBLIC"] = start_proxy("proxy-public-host", ob, taken, PUBLIC_HOST=f"{DOMAIN}:{ports['N_PUBLIC']}")
    ports["P_NOPUBLIC"] = start_proxy("proxy-no-public-host", ob, taken)
    ports["P_FORWARDED"] = start_proxy("proxy-forwarded", ob, taken, VIRTUAL_HOST_DOMAINS=DOMAIN,
                                       TRUSTED_PROXIES=f"{NGINX_BIND}/32")
    ports["P_UNTRUSTED"] = start_proxy("proxy-untrusted", ob, taken, VIRTUAL_HOST_DOMAINS=DOMAIN,
                                       TRUSTED_PROXIES="127.0.0.1/32")
    # HAProxy passes Host through, so it needs no trust; trusting its address anyway exercises the recipe's
    # del-header lines (a client's own forwarding headers must not reach a proxy that would believe them)
    ports["P_HAPROXY"] = start_proxy("proxy-haproxy", ob, taken, VIRTUAL_HOST_DOMAINS=DOMAIN,
                                     TRUSTED_PROXIES="127.0.0.1/32")
    return ports, wires["WA"], wires["WB"]


def start_nginx(ports):
    nginx = find_bin("nginx")
    if not nginx:
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    d = os.path.join(WORK, "nginx")
    for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi", "logs"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    # as root, nginx's workers would switch to `nobody`, who cannot enter the scratch directory
    user = "user root;" if os.geteuid() == 0 else ""
    render("nginx.conf.in", os.path.join(d, "nginx.conf"), {
        "PREFIX": d, "USER_LINE": user,
        "PORT_PUBLIC": ports["N_PUBLIC"], "PROXY_PUBLIC": ports["P_PUBLIC"],
        "PORT_NOPUBLIC": ports["N_NOPUBLIC"], "PROXY_NOPUBLIC": ports["P_NOPUBLIC"],
        "PORT_FORWARDED": ports["N_FORWARDED"], "PROXY_FORWARDED": ports["P_FORWARDED"],
        "PORT_UNTRUSTED": ports["N_UNTRUSTED"], "PROXY_UNTRUSTED": ports["P_UNTRUSTED"],
    })
    argv = [nginx, "-p", d + "/", "-e", os.path.join(d, "error.log"), "-c", os.path.join(d, "nginx.conf")]
    chk = subprocess.run(argv + ["-t"], capture_output=True, text=True, timeout=30)
    if chk.returncode != 0:
        raise RuntimeError(f"nginx -t: {(chk.stderr or chk.stdout).strip()[-600:]}")
    p = spawn("nginx", argv)
    for k in ("N_PUBLIC", "N_NOPUBLIC", "N_FORWARDED", "N_UNTRUSTED"):
        wait_port("nginx", p, ports[k])
    return d


def start_haproxy(ports):
    haproxy = find_bin("haproxy")
    if not haproxy:
        raise RuntimeError("haproxy is not installed (apt-get install haproxy)")
    d = os.path.join(WORK, "haproxy")
    os.makedirs(d, exist_ok=True)
    cfg = os.path.join(d, "haproxy.cfg")
    render("haproxy.cfg.in", cfg, {"PORT_HAPROXY": ports["H"], "PROXY_HAPROXY": ports["P_HAPROXY"]})
    chk = subprocess.run([haproxy, "-c", "-f", cfg], capture_output=True, text=True, timeout=30)
    if chk.returncode != 0:
        raise RuntimeError(f"haproxy -c: {(chk.stderr or chk.stdout).strip()[-600:]}")
    p = spawn("haproxy", [haproxy, "-db", "-f", cfg])
    wait_port("haproxy", p, ports["H"])
    return os.path.join(WORK, "haproxy.log")


def main():
    if os.environ.get("E2E_DIRECT") == "1":
        t.skip("cdn/all", "E2E_DIRECT=1: the group tests the proxy's vanity-domain settings, and runs no proxy")
        t.finish()
    shutil.rmtree(WORK, ignore_errors=True)  # a rerun with the same E2E_WORK starts empty (logs, data)
    os.makedirs(WORK)
    t0 = time.monotonic()
    try:
        ports, wire_a, wire_b = setup()
    except HostsMissing as e:
        t.skip("cdn/all", str(e))
        t.finish()
    except Exception as e:  # noqa: BLE001
        t.fail("cdn/setup", f"{type(e).__name__}: {e} (logs in {WORK})")
        t.finish()
    t._out(f"# cdn: s3s-fs :{ports['OPORT']}, wire A :{ports['WA']}, wire B :{ports['WB']}, "
           f"proxies {', '.join(f'{k}:{v}' for k, v in ports.items() if k.startswith('P'))}; logs in {WORK}")
    group_a(ports, wire_a)
    try:
        nginx_dir = start_nginx(ports)
    except Exception as e:  # noqa: BLE001
        t.fail("cdn/b.nginx-start", f"{type(e).__name__}: {e}")
    else:
        group_b(ports, wire_b, nginx_dir)
    try:
        hlog = start_haproxy(ports)
    except Exception as e:  # noqa: BLE001
        t.fail("cdn/c.haproxy-start", f"{type(e).__name__}: {e}")
    else:
        group_c(ports, hlog)
    stop_all()
    t._out(f"# cdn: {time.monotonic() - t0:.1f} s")
    t.finish()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        t.fail("cdn/harness", f"{type(e).__name__}: {e}")
        t.finish()
