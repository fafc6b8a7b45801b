#!/usr/bin/env python3
"""vanity: clients address buckets virtual-hosted (Host bucket.s3.vanity.test:PORT, only the key in the path)
through the proxy started with VIRTUAL_HOST_DOMAINS=s3.vanity.test and ALLOWED_HOSTS (issue 13).

- JS SDK v3 with its default addressing (node/vanity.mjs), boto3 with addressing_style=virtual (SigV4, and
  SigV2 presigned URLs used with curl), aws-cli with `s3 = addressing_style = virtual`, s3cmd with
  `host_bucket = %(bucket)s.s3.vanity.test:PORT` (SigV4 and signature_v2).
- Every result is checked at the origin (origin_check.py: path-style at 127.0.0.1, origin keys), and every
  client's requests are checked to have gone virtual-hosted, from the client's own record of what it sent
  (JS: a middleware after signing; boto3: a before-send hook; aws-cli and s3cmd: --debug), so a client that
  quietly fell back to path-style fails.
- Refusals, as raw signed requests to 127.0.0.1 (no DNS needed): a Host under the domain whose bucket label
  is not a valid bucket name gets 400 InvalidBucketName, a Host outside ALLOWED_HOSTS gets 400
  InvalidRequest, and the origin's data directory is unchanged by them.

Names resolve through /etc/hosts lines that run.sh adds; without them the group SKIPs, saying why.
"""

import filecmp
import os
import re
import socket
import subprocess
import time
from urllib.parse import parse_qs, urlsplit

import e2elib as t
import hostile_sign as hs

ENDPOINT = os.environ.get("E2E_VANITY_ENDPOINT", "")
DOMAIN = os.environ.get("E2E_VANITY_DOMAIN", "s3.vanity.test")
PORT = urlsplit(ENDPOINT).port if ENDPOINT else 0
HERE = os.path.dirname(os.path.abspath(__file__))
W = os.path.join(t.WORK, "vanity")
MiB = 1024 * 1024

BOTO = "vbkt-boto"
PUBLIC, PRIVATE = "vbkt-public", "vbkt-private"  # PRIVATE is never a Host: it needs no name
DOTTED = "my.dotted.vbkt"
CLI = "vbkt-cli"
S3CMD, S3CMD_V2 = "vbkt-s3cmd", "vbkt-s3cmd-v2"
NAMES = [DOMAIN] + [f"{b}.{DOMAIN}" for b in ("vbkt-js", DOTTED, BOTO, PUBLIC, CLI, S3CMD, S3CMD_V2)]


def vhost(bucket):
    """host:port a virtual-hosted request for bucket carries (bucket None: the bare domain)."""
    return f"{bucket + '.' if bucket else ''}{DOMAIN}:{PORT}"


def expect_virtual(seen, bucket, what):
    """seen: [(method, host:port, path)] a client sent. All went to bucket's virtual host, none with the
    bucket as the first path segment."""
    assert seen, f"{what}: the client sent no request that could be recorded"
    for m, host, p in seen:
        assert host == vhost(bucket), f"{what}: {m} {p} went to {host}, not virtual-hosted {vhost(bucket)}"
        if bucket:
            assert p != f"/{bucket}" and not p.startswith(f"/{bucket}/"), \
                f"{what}: {m} {host}{p} has the bucket in the path"


def names_resolve():
    """None if every name resolves to 127.0.0.1 only; else why not."""
    bad = []
    for n in NAMES:
        try:
            addrs = {ai[4][0] for ai in socket.getaddrinfo(n, PORT, proto=socket.IPPROTO_TCP)}
        except OSError as e:
            bad.append(f"{n} ({e.strerror or e})")
            continue
        if addrs != {"127.0.0.1"}:
            bad.append(f"{n} -> {sorted(addrs)}")
    if not bad:
        return None
    note = os.environ.get("E2E_HOSTS_NOTE") or "run.sh's /etc/hosts block is missing"
    return f"names do not resolve to 127.0.0.1: {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}; {note}"


# --debug output carries canonical requests, strings to sign and signatures: a failure reports only the
# client's error lines, with anything that looks like a signature taken out.
_ERROR_LINE = re.compile(r"^(ERROR: .*|.*An error occurred \(.*|\w+ failed: .*|fatal error: .*)$")
_SECRETS = [
    (re.compile(r"[0-9a-fA-F]{32,}"), "<hex>"),
    (re.compile(r"(Signature[=:]\s*)[^\s,&'\"]+"), r"\1<redacted>"),
    (re.compile(r"(AWS [A-Za-z0-9]+:)[A-Za-z0-9+/=]+"), r"\1<redacted>"),
]


def s3_error(body):
    """<Code> and <Message> of an S3 XML error (never its SignatureProvided or StringToSign), else the start of
    the body."""
    body = body.split(b"\r\n\r\n", 1)[-1] if body.startswith(b"HTTP/") else body
    code = re.search(rb"<Code>([^<]*)</Code>", body)
    msg = re.search(rb"<Message>([^<]*)</Message>", body)
    if code:
        return f"{code.group(1).decode(errors='replace')}: {(msg.group(1) if msg else b'').decode(errors='replace')[:160]}"
    return repr(body[:80])


def client_error(stderr):
    lines = [ln for ln in stderr.splitlines() if _ERROR_LINE.match(ln) and "Authorization" not in ln]
    text = " ".join(lines[-3:]) or "(no error line in its output)"
    for pat, rep in _SECRETS:
        text = pat.sub(rep, text)
    return text[-400:]


# ---------------------------------------------------------------------------------------------- JS
def js():
    """node/vanity.mjs prints its own PASS/FAIL lines (vanity/js-*); they are counted here."""
    p = subprocess.Popen(["node", os.path.join(HERE, "node", "vanity.mjs")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    saw = fails = 0
    for line in p.stdout:
        line = line.rstrip("\n")
        if line.startswith("PASS "):
            saw += 1
            t.ok(line[5:])
        elif line.startswith("FAIL "):
            saw += 1
            fails += 1
            name, _, why = line[5:].partition(": ")
            t.fail(name, why)
        elif line:
            print(line, flush=True)
    err = p.stderr.read()
    rc = p.wait()
    if saw == 0 or (rc != 0 and fails == 0):
        t.fail("vanity/js-run", f"node vanity.mjs exited {rc} with {saw} result(s): {err.strip()[-400:]}")


# ---------------------------------------------------------------------------------------------- boto3
class Wire:
    """What a boto3 client sent: a before-send hook (after signing) records method, host:port, path."""

    def __init__(self, client):
        self.seen = []
        client.meta.events.register("before-send.s3", self._rec)

    def _rec(self, request, **_):
        u = urlsplit(request.url)
        self.seen.append((request.method, u.netloc, u.path))

    def take(self):
        s, self.seen = self.seen, []
        return s


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "60", *args], capture_output=True, timeout=90)


def assert_sigv2_url(url, bucket, path):
    u = urlsplit(url)
    q = parse_qs(u.query)
    assert {"AWSAccessKeyId", "Signature", "Expires"} <= set(q) and not any(k.startswith("X-Amz-") for k in q), \
        f"not a SigV2 presigned URL: {u.scheme}://{u.netloc}{u.path}?{sorted(q)}"
    assert u.netloc == vhost(bucket), f"presigned URL host {u.netloc}, expected the bucket host {vhost(bucket)}"
    assert u.path == path, f"presigned URL path {u.path}, expected {path}"


def boto3_tests():
    from boto3.s3.transfer import TransferConfig

    s3 = t.boto3_client(endpoint=ENDPOINT, s3={"addressing_style": "virtual"}, max_pool_connections=8)
    wire = Wire(s3)
    o = t.origin()

    def create():
        s3.create_bucket(Bucket=BOTO)
        expect_virtual(wire.take(), BOTO, "create_bucket")
        o.head_bucket(Bucket=BOTO)

    if not t.run_test("vanity/boto3-create-bucket", create):
        t.ensure_bucket_at_origin(BOTO)

    body = os.urandom(5000)

    def put_get_head():
        s3.put_object(Bucket=BOTO, Key="dir/obj.bin", Body=body, Metadata={"from": "vanity"})
        t.assert_at_origin(BOTO, "dir/obj.bin", t.sha256_bytes(body))
        assert o.head_object(Bucket=BOTO, Key="dir/obj.bin")["Metadata"].get("from") == "vanity", "metadata lost"
        got = s3.get_object(Bucket=BOTO, Key="dir/obj.bin")["Body"].read()
        assert got == body, "get_object body differs"
        h = s3.head_object(Bucket=BOTO, Key="dir/obj.bin")
        assert h["ContentLength"] == len(body), f"head ContentLength {h['ContentLength']}"
        seen = wire.take()
        expect_virtual(seen, BOTO, "put/get/head")
        assert [p for _, _, p in seen] == ["/dir/obj.bin"] * 3, f"paths sent: {[p for _, _, p in seen]}"

    t.run_test("vanity/boto3-put-get-head", put_get_head)

    def listing():
        r = s3.list_objects_v2(Bucket=BOTO, Prefix="d", Delimiter="/")
        assert [c["Prefix"] for c in r.get("CommonPrefixes", [])] == ["dir/"], f"CommonPrefixes: {r.get('CommonPrefixes')}"
        r = s3.list_objects_v2(Bucket=BOTO, Prefix="dir/")
        assert [c["Key"] for c in r.get("Contents", [])] == ["dir/obj.bin"], f"Contents: {r.get('Contents')}"
        expect_virtual(wire.take(), BOTO, "list_objects_v2")
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert BOTO in names, f"list_buckets lacks {BOTO}: {names}"
        expect_virtual(wire.take(), None, "list_buckets")  # the bare domain

    t.run_test("vanity/boto3-list", listing)

    def multipart():
        # upload_file over the 8 MB threshold: CreateMultipartUpload, 3 x UploadPart, Complete, all virtual
        s3.upload_file(t.BIG, BOTO, "big/20MB.bin", Config=TransferConfig(multipart_threshold=8 * MiB,
                                                                          multipart_chunksize=8 * MiB))
        seen = wire.take()
        expect_virtual(seen, BOTO, "upload_file")
        assert len(seen) == 5, f"expected 5 requests (create, 3 parts, complete), got {len(seen)}"
        t.assert_at_origin(BOTO, "big/20MB.bin", t.sha256_file(t.BIG))
        etag = o.head_object(Bucket=BOTO, Key="big/20MB.bin")["ETag"]
        assert etag.strip('"').endswith("-3"), f"expected a 3-part upload, origin ETag {etag}"
        dst = os.path.join(W, "boto3-big.down")
        s3.download_file(BOTO, "big/20MB.bin", dst)
        expect_virtual(wire.take(), BOTO, "download_file")
        assert filecmp.cmp(t.BIG, dst, shallow=False), "downloaded 20 MB differs"
        os.remove(dst)

    t.run_test("vanity/boto3-upload-file-multipart-20MB", multipart)

    def delete():
        s3.put_object(Bucket=BOTO, Key="del/a", Body=b"a")
        s3.put_object(Bucket=BOTO, Key="del/b", Body=b"b")
        s3.delete_object(Bucket=BOTO, Key="del/a")
        t.assert_absent_at_origin(BOTO, "del/a")
        r = s3.delete_objects(Bucket=BOTO, Delete={"Objects": [{"Key": "del/b"}]})  # POST /?delete
        assert [d["Key"] for d in r.get("Deleted", [])] == ["del/b"], f"delete_objects: {r}"
        t.assert_absent_at_origin(BOTO, "del/b")
        expect_virtual(wire.take(), BOTO, "delete_object(s)")

    t.run_test("vanity/boto3-delete", delete)

    # boto3's default presigns with SigV2 against a custom endpoint: its resource is /bucket/key although
    # the URL's path is /key (the proxy must sign it that way, as S3 does).
    def presigned_v2_get():
        url = s3.generate_presigned_url("get_object", Params={"Bucket": BOTO, "Key": "dir/obj.bin"}, ExpiresIn=300)
        assert_sigv2_url(url, BOTO, "/dir/obj.bin")
        p = curl("-o", "-", "-w", "\n%{http_code}", url)
        out, _, code = p.stdout.rpartition(b"\n")
        assert code == b"200", f"SigV2 presigned GET gave HTTP {code.decode()}: {s3_error(out)}"
        assert out == body, "SigV2 presigned GET body differs"

    t.run_test("vanity/boto3-presigned-sigv2-get-curl", presigned_v2_get)

    def presigned_v2_put():
        data = os.urandom(3333)
        src = os.path.join(W, "v2put.bin")
        open(src, "wb").write(data)
        url = s3.generate_presigned_url("put_object", Params={"Bucket": BOTO, "Key": "v2/put me.bin"}, ExpiresIn=300)
        assert_sigv2_url(url, BOTO, "/v2/put%20me.bin")
        p = curl("-T", src, "-o", "-", "-w", "\n%{http_code}", url)
        out, _, code = p.stdout.rpartition(b"\n")
        assert code == b"200", f"SigV2 presigned PUT (curl -T) gave HTTP {code.decode()}: {s3_error(out)}"
        t.assert_at_origin(BOTO, "v2/put me.bin", t.sha256_bytes(data))

    t.run_test("vanity/boto3-presigned-sigv2-put-curl", presigned_v2_put)

    # A Host equal to the domain is path-style: the same endpoint with addressing_style=path still works.
    def path_style_on_domain():
        ps = t.boto3_client(endpoint=ENDPOINT, s3={"addressing_style": "path"})
        pw = Wire(ps)
        assert ps.get_object(Bucket=BOTO, Key="dir/obj.bin")["Body"].read() == body, "body differs"
        ps.put_object(Bucket=BOTO, Key="pathstyle/x", Body=b"path-style")
        t.assert_at_origin(BOTO, "pathstyle/x", t.sha256_bytes(b"path-style"))
        seen = pw.take()
        assert seen and all(h == vhost(None) and p.startswith(f"/{BOTO}/") for _, h, p in seen), \
            f"expected path-style requests to {vhost(None)}: {seen}"

    t.run_test("vanity/boto3-path-style-on-domain", path_style_on_domain)

    # A dotted bucket, virtual-hosted over http (SigV4 calls and a SigV2 presigned GET).
    def dotted():
        s3.create_bucket(Bucket=DOTTED)
        o.head_bucket(Bucket=DOTTED)
        data = os.urandom(1234)
        s3.put_object(Bucket=DOTTED, Key="k/x.bin", Body=data)
        t.assert_at_origin(DOTTED, "k/x.bin", t.sha256_bytes(data))
        assert s3.get_object(Bucket=DOTTED, Key="k/x.bin")["Body"].read() == data, "body differs"
        expect_virtual(wire.take(), DOTTED, "dotted bucket")
        url = s3.generate_presigned_url("get_object", Params={"Bucket": DOTTED, "Key": "k/x.bin"}, ExpiresIn=300)
        assert_sigv2_url(url, DOTTED, "/k/x.bin")
        p = curl("-o", "-", "-w", "\n%{http_code}", url)
        out, _, code = p.stdout.rpartition(b"\n")
        assert code == b"200" and out == data, f"SigV2 presigned GET: HTTP {code.decode()} {s3_error(out)}"
        s3.delete_object(Bucket=DOTTED, Key="k/x.bin")
        s3.delete_bucket(Bucket=DOTTED)
        expect_virtual(wire.take(), DOTTED, "dotted bucket delete")
        assert DOTTED not in [b["Name"] for b in o.list_buckets()["Buckets"]], "bucket still at the origin"

    t.run_test("vanity/boto3-dotted-bucket", dotted)

    # The red-team case: a URL minted for vbkt-public.<domain>/vbkt-private/x is key "vbkt-private/x" of
    # bucket vbkt-public, never object x of bucket vbkt-private.
    def public_private():
        for b in (PUBLIC, PRIVATE):
            t.ensure_bucket_at_origin(b)
        o.put_object(Bucket=PUBLIC, Key=f"{PRIVATE}/x", Body=b"public copy")
        o.put_object(Bucket=PRIVATE, Key="x", Body=b"private secret")
        got = s3.get_object(Bucket=PUBLIC, Key=f"{PRIVATE}/x")["Body"].read()
        assert got == b"public copy", f"GET {vhost(PUBLIC)}/{PRIVATE}/x returned {got[:40]!r}"
        for v4 in (False, True):
            c = t.boto3_client(endpoint=ENDPOINT, s3={"addressing_style": "virtual"},
                               **({"signature_version": "s3v4"} if v4 else {}))
            url = c.generate_presigned_url("get_object", Params={"Bucket": PUBLIC, "Key": f"{PRIVATE}/x"})
            assert urlsplit(url).netloc == vhost(PUBLIC) and urlsplit(url).path == f"/{PRIVATE}/x", url.split("?")[0]
            p = curl("-o", "-", "-w", "\n%{http_code}", url)
            out, _, code = p.stdout.rpartition(b"\n")
            assert code == b"200" and out == b"public copy", \
                f"presigned {'V4' if v4 else 'V2'} GET {vhost(PUBLIC)}/{PRIVATE}/x: HTTP {code.decode()} {s3_error(out)}"
        s3.put_object(Bucket=PUBLIC, Key=f"{PRIVATE}/y", Body=b"new")
        t.assert_at_origin(PUBLIC, f"{PRIVATE}/y", t.sha256_bytes(b"new"))
        t.assert_absent_at_origin(PRIVATE, "y")
        s3.delete_object(Bucket=PUBLIC, Key=f"{PRIVATE}/x")
        t.assert_absent_at_origin(PUBLIC, f"{PRIVATE}/x")
        t.assert_at_origin(PRIVATE, "x", t.sha256_bytes(b"private secret"))
        expect_virtual(wire.take(), PUBLIC, "public/private")

    t.run_test("vanity/boto3-host-bucket-wins-over-path", public_private)


# ---------------------------------------------------------------------------------------------- aws-cli
AWS_SEND = re.compile(r"Sending http request: <AWSPreparedRequest stream_output=\w+, method=(\w+), url=([^,\s]+),")


def awscli_tests():
    cfg = os.path.join(W, "aws-config-virtual")
    with open(cfg, "w") as f:
        f.write("[default]\nregion = us-east-1\ns3 =\n  addressing_style = virtual\n")

    def aws(*args):
        env = t.client_env()
        env["AWS_CONFIG_FILE"] = cfg
        p = subprocess.run(["aws", "--endpoint-url", ENDPOINT, "--debug", *args], env=env, capture_output=True,
                           text=True, timeout=180)
        if p.returncode != 0:
            raise AssertionError(f"`aws {' '.join(args)[:120]}` exited {p.returncode}: {client_error(p.stderr)}")
        seen = [(m, urlsplit(u).netloc, urlsplit(u).path) for m, u in AWS_SEND.findall(p.stderr)]
        return p, seen

    def mb():
        _, seen = aws("s3", "mb", f"s3://{CLI}")
        expect_virtual(seen, CLI, "aws s3 mb")
        t.origin().head_bucket(Bucket=CLI)

    if not t.run_test("vanity/awscli-mb", mb):
        t.ensure_bucket_at_origin(CLI)

    small = t.write_random(os.path.join(W, "cli-small.bin"), 70_000)

    def cp_up():
        _, seen = aws("s3", "cp", small, f"s3://{CLI}/dir/small file.bin")
        expect_virtual(seen, CLI, "aws s3 cp (small)")
        t.assert_at_origin(CLI, "dir/small file.bin", t.sha256_file(small))
        _, seen = aws("s3", "cp", t.BIG, f"s3://{CLI}/big.bin")
        expect_virtual(seen, CLI, "aws s3 cp (20 MB)")
        assert len(seen) >= 5, f"20 MB went in {len(seen)} requests, not a multipart upload"
        t.assert_at_origin(CLI, "big.bin", t.sha256_file(t.BIG))

    t.run_test("vanity/awscli-cp-up", cp_up)

    def ls():
        p, seen = aws("s3", "ls", f"s3://{CLI}/dir/")
        assert "small file.bin" in p.stdout and " 70000 " in p.stdout, f"ls: {p.stdout!r}"
        expect_virtual(seen, CLI, "aws s3 ls s3://bucket/dir/")
        p, seen = aws("s3", "ls")
        assert CLI in p.stdout, f"ls of buckets lacks {CLI}: {p.stdout!r}"
        expect_virtual(seen, None, "aws s3 ls (ListBuckets)")

    t.run_test("vanity/awscli-ls", ls)

    def cp_down():
        dst = os.path.join(W, "cli-small.down")
        _, seen = aws("s3", "cp", f"s3://{CLI}/dir/small file.bin", dst)
        expect_virtual(seen, CLI, "aws s3 cp down")
        assert filecmp.cmp(small, dst, shallow=False), "downloaded bytes differ"
        dst = os.path.join(W, "cli-big.down")
        _, seen = aws("s3", "cp", f"s3://{CLI}/big.bin", dst)
        expect_virtual(seen, CLI, "aws s3 cp down (20 MB)")
        assert filecmp.cmp(t.BIG, dst, shallow=False), "downloaded 20 MB differs"
        os.remove(dst)

    t.run_test("vanity/awscli-cp-down", cp_down)

    def rm():
        _, seen = aws("s3", "rm", f"s3://{CLI}/dir/small file.bin")
        expect_virtual(seen, CLI, "aws s3 rm")
        t.assert_absent_at_origin(CLI, "dir/small file.bin")
        _, seen = aws("s3", "rm", f"s3://{CLI}/big.bin")
        expect_virtual(seen, CLI, "aws s3 rm")
        t.assert_absent_at_origin(CLI, "big.bin")
        _, seen = aws("s3", "rb", f"s3://{CLI}")
        expect_virtual(seen, CLI, "aws s3 rb")
        assert CLI not in [b["Name"] for b in t.origin().list_buckets()["Buckets"]], "bucket still at the origin"

    t.run_test("vanity/awscli-rm-rb", rm)


# ---------------------------------------------------------------------------------------------- s3cmd
def s3cmd_tests():
    def write_cfg(v2):
        path = os.path.join(W, f"s3cfg{'-v2' if v2 else ''}")
        with open(path, "w") as f:
            f.write(
                "[default]\n"
                f"access_key = {t.ACCESS_KEY}\n"
                f"secret_key = {t.SECRET_KEY}\n"
                f"host_base = {DOMAIN}:{PORT}\n"
                f"host_bucket = %(bucket)s.{DOMAIN}:{PORT}\n"
                "use_https = False\n"
                f"signature_v2 = {'True' if v2 else 'False'}\n"
                "bucket_location = us-east-1\n"
                "progress_meter = False\n"
            )
        return path

    def run(cfg, v2, *args):
        p = subprocess.run(["s3cmd", "-c", cfg, "--no-progress", "--debug", *args], capture_output=True, text=True,
                           timeout=180, env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")})
        if p.returncode != 0:
            raise AssertionError(f"`s3cmd {' '.join(args)[:120]}` exited {p.returncode}: {client_error(p.stderr)}")
        # s3cmd falls back between signature versions on its own after some errors: one version throughout
        want, other = ("v2", "v4") if v2 else ("v4", "v2")
        assert f"Using signature {want}" in p.stderr and f"Using signature {other}" not in p.stderr, \
            f"`s3cmd {args[0]}` did not sign with Sig{want.upper()} only"
        # What went on the wire: each format_uri() (the request target) after the get_hostname() of its
        # connection's host.
        seen, host = [], None
        for ln in p.stderr.splitlines():
            m = re.match(r"DEBUG: get_hostname\([^)]*\): (\S+)", ln)
            if m:
                host = m.group(1)
            m = re.match(r"DEBUG: format_uri\(\): (\S+)", ln)
            if m:
                seen.append(("?", host, m.group(1).split("?")[0]))
        return p, seen

    small = t.write_random(os.path.join(W, "s3cmd-small.bin"), 40_000)
    small_sha = t.sha256_file(small)
    for v2, b in ((False, S3CMD), (True, S3CMD_V2)):
        cfg = write_cfg(v2)
        tag = "sigv2" if v2 else "sigv4"

        def mb():
            _, seen = run(cfg, v2, "mb", f"s3://{b}")
            expect_virtual(seen, b, "s3cmd mb")
            t.origin().head_bucket(Bucket=b)

        if not t.run_test(f"vanity/s3cmd-{tag}-mb", mb):
            t.ensure_bucket_at_origin(b)

        def put():
            _, seen = run(cfg, v2, "put", small, f"s3://{b}/dir/small file.bin")
            expect_virtual(seen, b, "s3cmd put")
            t.assert_at_origin(b, "dir/small file.bin", small_sha)

        t.run_test(f"vanity/s3cmd-{tag}-put", put)

        def get():
            dst = os.path.join(W, f"s3cmd-{tag}.down")
            _, seen = run(cfg, v2, "get", "--force", f"s3://{b}/dir/small file.bin", dst)
            expect_virtual(seen, b, "s3cmd get")
            assert filecmp.cmp(small, dst, shallow=False), "downloaded bytes differ"

        t.run_test(f"vanity/s3cmd-{tag}-get", get)

        def ls():
            p, seen = run(cfg, v2, "ls", f"s3://{b}/dir/")
            assert f"s3://{b}/dir/small file.bin" in p.stdout, f"ls: {p.stdout[-300:]!r}"
            expect_virtual(seen, b, "s3cmd ls s3://bucket/dir/")
            p, seen = run(cfg, v2, "ls")
            assert f"s3://{b}" in p.stdout, f"ls of buckets lacks {b}: {p.stdout[-300:]!r}"
            expect_virtual(seen, None, "s3cmd ls (ListBuckets)")

        t.run_test(f"vanity/s3cmd-{tag}-ls", ls)

        def delete():
            _, seen = run(cfg, v2, "del", f"s3://{b}/dir/small file.bin")
            expect_virtual(seen, b, "s3cmd del")
            t.assert_absent_at_origin(b, "dir/small file.bin")
            _, seen = run(cfg, v2, "rb", f"s3://{b}")
            expect_virtual(seen, b, "s3cmd rb")
            assert b not in [x["Name"] for x in t.origin().list_buckets()["Buckets"]], "bucket still at the origin"

        t.run_test(f"vanity/s3cmd-{tag}-del-rb", delete)


# ---------------------------------------------------------------------------------------------- refusals
def raw(req, timeout=10):
    """Send the request bytes to the endpoint's listener at 127.0.0.1; (status, response bytes)."""
    req.set("Connection", "close")
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    try:
        s.sendall(req.bytes())
        data = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", data)
    return (int(m.group(1)) if m else 0), data


def origin_tree():
    root = os.environ.get("E2E_ORIGIN_DATA", "")
    out = {}
    for d, _, files in os.walk(root):
        for f in files + [""]:
            p = os.path.join(d, f)
            st = os.stat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns if f else 0)
    return out


def refusals():
    def signer(host):
        return hs.Signer(t.ACCESS_KEY, t.SECRET_KEY, t.REGION, host)

    # Control: the same raw machinery, signed for a good virtual host, is forwarded and stored.
    def control():
        t.ensure_bucket_at_origin(BOTO)
        st, resp = raw(signer(vhost(BOTO)).v4("PUT", "/neg/control", body=b"control"))
        assert st == 200, f"signed PUT to {vhost(BOTO)}/neg/control: HTTP {st} {s3_error(resp)}"
        t.assert_at_origin(BOTO, "neg/control", t.sha256_bytes(b"control"))

    t.run_test("vanity/raw-control-virtual-put", control)

    before = origin_tree()
    cases = [
        # (name, Host, expected code(s)); each a correctly signed PUT of /neg/<name> for exactly that Host
        ("bad-label-upper", f"BAD_UPPER.{DOMAIN}:{PORT}", "InvalidBucketName"),
        ("bad-label-upper-existing", f"VBKT-BOTO.{DOMAIN}:{PORT}", "InvalidBucketName"),  # no case folding
        ("bad-label-short", f"ab.{DOMAIN}:{PORT}", "InvalidBucketName"),
        ("bad-label-leading-dash", f"-bad.{DOMAIN}:{PORT}", "InvalidBucketName"),
        ("bad-label-double-dot", f"a..b.{DOMAIN}:{PORT}", "InvalidBucketName"),
        ("bad-label-64-chars", f"{'a' * 64}.{DOMAIN}:{PORT}", "InvalidBucketName"),
        ("bad-label-ip", f"192.168.1.1.{DOMAIN}:{PORT}", "InvalidBucketName"),
        # an empty label is also outside *.s3.vanity.test (one or more labels): the bucket check names it first
        ("bad-label-empty", f".{DOMAIN}:{PORT}", "InvalidBucketName"),
        ("host-not-allowed-other-domain", f"evil.example:{PORT}", "InvalidRequest"),
        ("host-not-allowed-suffix", f"{DOMAIN}.evil.example:{PORT}", "InvalidRequest"),
        ("host-not-allowed-parent", f"vanity.test:{PORT}", "InvalidRequest"),
        ("host-not-allowed-ip", f"127.0.0.2:{PORT}", "InvalidRequest"),
    ]
    for name, host, code in cases:
        # path-style target for the hosts outside ALLOWED_HOSTS: it would otherwise write to vbkt-boto
        target = f"/{BOTO}/neg/{name}" if code == "InvalidRequest" else f"/neg/{name}"
        codes = code if isinstance(code, tuple) else (code,)

        def one(name=name, host=host, codes=codes, target=target):
            st, resp = raw(signer(host).v4("PUT", target, body=b"must not be stored"))
            assert st == 400 and any(f"<Code>{c}</Code>".encode() in resp for c in codes), \
                f"PUT {host}{target} (signed for that Host): expected 400 {' or '.join(codes)}, got HTTP {st} {s3_error(resp)}"
            t.assert_absent_at_origin(BOTO, f"neg/{name}")

        t.run_test(f"vanity/neg-{name}", one)

    # SigV2 and presigned forms of the same refusals
    def v2_bad_label():
        host = f"BAD_UPPER.{DOMAIN}:{PORT}"
        st, resp = raw(signer(host).v2("GET", "/neg/x"))
        assert st == 400 and b"<Code>InvalidBucketName</Code>" in resp, f"SigV2 GET {host}/neg/x: HTTP {st} {s3_error(resp)}"

    t.run_test("vanity/neg-bad-label-sigv2", v2_bad_label)

    def presigned_not_allowed():
        host = f"evil.example:{PORT}"
        st, resp = raw(signer(host).presign_v4("PUT", f"/{BOTO}/neg/presigned-evil", body=b"must not be stored"))
        assert st == 400 and b"<Code>InvalidRequest</Code>" in resp, \
            f"presigned PUT for {host}: expected 400 InvalidRequest, got HTTP {st} {s3_error(resp)}"
        t.assert_absent_at_origin(BOTO, "neg/presigned-evil")

    t.run_test("vanity/neg-host-not-allowed-presigned", presigned_not_allowed)

    def nothing_stored():
        after = origin_tree()
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        assert not changed, f"the origin's data directory changed under the refused requests: {changed[:5]}"

    t.run_test("vanity/neg-origin-untouched", nothing_stored)


def main():
    if t.DIRECT:
        t.skip("vanity/all", "E2E_DIRECT=1: s3s-fs here serves no virtual-hosted domain (the proxy's feature)")
        t.finish()
    if not ENDPOINT:
        t.fail("vanity/setup", "E2E_VANITY_ENDPOINT is not set (run through tests/e2e/run.sh)")
        t.finish()
    why = names_resolve()
    if why:
        t.skip("vanity/all", why)
        t.finish()
    os.makedirs(W, exist_ok=True)
    js()
    boto3_tests()
    awscli_tests()
    s3cmd_tests()
    refusals()
    t.finish()


if __name__ == "__main__":
    main()
