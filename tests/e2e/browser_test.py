#!/usr/bin/env python3
"""The `browser` group (issue 16): a real Chromium uploading through the proxy, CORS, anonymous access, POST
policy uploads.

Self-contained: it starts, on free ports, with logs in $E2E_WORK/browser/ (stopped at exit):
  - the test origin `s3-resign-proxy origin DIR` (E2E_PROXY_BIN_PATH) with ORIGIN_PUBLIC_BUCKETS=brw-public
    (anonymous GET/HEAD/List allowed there, as a public-read bucket policy; bucket CORS stored per bucket);
  - wirelog.py in front of it: every request head a proxy sends the origin is logged (the "reached the
    origin" checks, and that anonymous requests go unsigned);
  - three proxies in front of the relay: `cors` (CORS_ALLOWED_ORIGINS = page origin A only), `anon`
    (ANONYMOUS_ACCESS=forward, no CORS_*), `deny` (defaults: no CORS, anonymous denied);
  - two static page servers (python http.server) on other ports: page origin A (allowed) and B (not);
  - Debian's Chromium (/usr/bin/chromium), headless, driven by Playwright for Python (never a downloaded
    browser), with a screenshot of the page after each browser step in $E2E_WORK/browser/shots/.
The page is tests/e2e/browser/ (index.html, app.js, done.html, page.css); the forms are written next to it
per run from boto3's generate_presigned_post, as a web application's server side would render them.
Presigned URLs for the page come from the JS SDK's presigner (node/presign.mjs).

  step1   the page PUTs a chosen PNG to a presigned URL (JS SDK presigner), then shows it with a presigned
          GET in an <img> and reads it with fetch: bytes compared (sha256 in the page and on the origin's disk)
  step2   an HTML form (boto3 generate_presigned_post, SigV4, success_action_redirect) submitted by a click:
          the 303 to done.html with bucket/key/etag, the object on disk; and the same kind of form sent with
          fetch(FormData) and success_action_status=201: the XML body read from JavaScript
  step3   the ETag of a PUT read from JavaScript (Access-Control-Expose-Headers) equals the MD5
  step4   page origin B (not allowed): the preflight fails (fetch throws), nothing is stored; the proxy's
          answer to that preflight is 403 S3 XML (AccessForbidden)
  step5   anonymous proxy, CORS_* unset: a bucket CORS rule set with PutBucketCors (signed, through the
          proxy) answers Chromium's preflight for a custom header (origin A works, B is refused), and an
          <img src> of a public object loads without a signature
  anon-*  ANONYMOUS_ACCESS=forward: unsigned boto3 and curl read a public object and list a public bucket,
          forwarded unsigned; a private object gives the origin's own 403; an anonymous PUT to a private
          bucket stores nothing; a bad signature is never downgraded to anonymous
  deny-*  defaults: every unsigned request (GET, list, HEAD, PUT, DELETE, OPTIONS, form POST) is refused and
          nothing reaches the origin
  post-*  boto3 generate_presigned_post with curl, SigV4 and SigV2 (signature_version='s3'): stored; and for
          each, one violation of each kind (key prefix, content-length-range, Content-Type, expired):
          refused with S3's error, nothing stored
"""

import hashlib
import html
import http.client
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import urllib.parse
import zlib

import e2elib as t

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(os.environ["E2E_WORK"], "browser")
PROXY_BIN = os.environ.get("E2E_PROXY_BIN_PATH", "")
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
REGION = os.environ.get("E2E_REGION", "us-east-1")

CLIENT_AK, CLIENT_SK = "E2EBROWSERCLIENT", "e2e-browser-client-secret-0123456789"
ORIGIN_AK, ORIGIN_SK = "E2EBROWSERORIGIN", "e2e-browser-origin-secret-9876543210"

B_UP = "brw-up"  # private: the page's uploads (presigned PUT)
B_POST = "brw-post"  # private: POST policy uploads
B_PUBLIC = "brw-public"  # public-read at the origin (ORIGIN_PUBLIC_BUCKETS)
B_PRIVATE = "brw-private"  # private

# Chromium's restricted ports (net/base/port_util.cc) are all below this; a page or proxy there would be
# refused with ERR_UNSAFE_PORT.
CHROMIUM_SAFE_MIN_PORT = 10081

PROCS = t.Procs(WORK)
TAKEN = set()
RUN = hashlib.sha256(os.urandom(8)).hexdigest()[:8]  # markers: each request's target is unique per run


def port():
    while True:
        p = t.free_port(TAKEN)
        if p >= CHROMIUM_SAFE_MIN_PORT:
            return p


def mark(tag):
    return f"m{RUN}-{tag}"


# ---------------------------------------------------------------------------------------------- files
def png(width, height, seed):
    """A real PNG: an RGB gradient with noise from `seed`, and a random tEXt chunk (new bytes every run)."""
    rnd = hashlib.sha256(seed.encode()).digest()
    raw = b"".join(
        b"\0" + b"".join(bytes([x * 255 // width, y * 255 // height, rnd[(x * 7 + y * 13) % 32]]) for x in range(width))
        for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    text = b"Comment\0" + os.urandom(16).hex().encode()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tEXt", text) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def md5(b):
    return hashlib.md5(b).hexdigest()  # noqa: S324 (S3's ETag)


def on_disk(bucket, key):
    p = os.path.join(DATA, bucket, *key.split("/"))
    if not os.path.isfile(p):
        return None
    with open(p, "rb") as f:
        return f.read()


def assert_on_disk(bucket, key, data):
    got = on_disk(bucket, key)
    assert got is not None, f"{bucket}/{key} is not on the origin's disk"
    assert got == data, f"{bucket}/{key} on disk: {len(got)} bytes, sha256 {sha256(got)[:16]}; " \
                        f"want {len(data)} bytes, sha256 {sha256(data)[:16]}"


def snapshot():
    """Every file and directory under the origin's data: relative path -> (size, mtime_ns) (None for dirs)."""
    out = {}
    for d, dirs, files in os.walk(DATA):
        for n in dirs:
            out[os.path.relpath(os.path.join(d, n), DATA) + "/"] = None
        for n in files:
            st = os.stat(os.path.join(d, n))
            out[os.path.relpath(os.path.join(d, n), DATA)] = (st.st_size, st.st_mtime_ns)
    return out


def diff(before, after):
    added = sorted(set(after) - set(before))
    gone = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return "; ".join(f"{w}: {v[:5]}" for w, v in (("added", added), ("removed", gone), ("changed", changed)) if v)


class Unchanged:
    """`with Unchanged("what"):` asserts the origin's data directory is the same after the block."""

    def __init__(self, what):
        self.what = what

    def __enter__(self):
        self.before = snapshot()

    def __exit__(self, kind, *_):
        if kind is None:
            d = diff(self.before, snapshot())
            assert not d, f"{self.what}: the origin's data changed: {d}"


# ---------------------------------------------------------------------------------------------- the wire
class Wire:
    """What wirelog.py saw between the proxies and the origin: [(request line, [(header, value)])]."""

    def __init__(self, path):
        self.path = path

    def requests(self):
        time.sleep(0.15)  # the relay logs a head right after forwarding it
        try:
            text = open(self.path, encoding="utf-8", errors="replace").read()
        except FileNotFoundError:
            return []
        reqs, cur = [], {}
        for line in text.splitlines():
            m = re.match(r"\S+ c(\d+) (.*)$", line)
            if not m:
                continue
            cid, msg = m.group(1), m.group(2)
            if msg.startswith(">> "):
                cur[cid] = (msg[3:], [])
                reqs.append(cur[cid])
            elif msg.startswith("   ") and not msg.startswith("   [") and cid in cur:
                k, _, v = msg[3:].partition(":")
                cur[cid][1].append((k.strip().lower(), v.strip()))
        return reqs

    def with_marker(self, m):
        return [r for r in self.requests() if m in r[0]]


def assert_unsigned_on_wire(m):
    reqs = WIRE.with_marker(m)
    assert reqs, f"no request with {m} reached the origin"
    for line, headers in reqs:
        names = {k for k, _v in headers}
        assert "authorization" not in names, f"forwarded with an Authorization header: {line}"
        assert "x-amz-security-token" not in names, f"forwarded with x-amz-security-token: {line}"
        assert not re.search(r"[?&](X-Amz-Signature|Signature|X-Amz-Credential|AWSAccessKeyId)=", line, re.I), \
            f"forwarded with a query signature: {line}"
    return reqs


# ---------------------------------------------------------------------------------------------- clients
def client(endpoint, ak=CLIENT_AK, sk=CLIENT_SK, sig="s3v4"):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name=REGION,
                        config=Config(signature_version=sig, s3={"addressing_style": "path"},
                                      retries={"total_max_attempts": 1, "mode": "standard"},
                                      connect_timeout=5, read_timeout=30))


def unsigned_client(endpoint):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                        config=Config(signature_version=UNSIGNED, s3={"addressing_style": "path"},
                                      retries={"total_max_attempts": 1, "mode": "standard"},
                                      connect_timeout=5, read_timeout=30))


def err(e):
    r = getattr(e, "response", None) or {}
    st = r.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return f"{st} {(r.get('Error') or {}).get('Code')}" if st else f"{type(e).__name__}: {e}"


def raw(url, method="GET", headers=None, body=b""):
    """(status, headers dict lower-case, body) of one plain request (no signature, nothing added)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest(method, u.path + ("?" + u.query if u.query else ""), skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body or method in ("PUT", "POST"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def xml_field(body, name):
    m = re.search(rb"<" + name.encode() + rb">([^<]*)</" + name.encode() + rb">", body or b"")
    return m.group(1).decode() if m else None


def brief(body):
    return " ".join((body or b"")[:300].decode("utf-8", "replace").split())


def curl(*args, timeout=60):
    """(http status, body) of curl ARGS (-sS, body to a file)."""
    out = os.path.join(WORK, "curl.out")
    p = subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}", "--max-time", "30", *args],
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"curl exited {p.returncode}: {p.stderr.strip()[-300:]}")
    with open(out, "rb") as f:
        return int(p.stdout.strip() or 0), f.read()


def presign(endpoint, urls):
    """URLs made by the JS SDK v3's presigner (node/presign.mjs), in order."""
    req = {"endpoint": endpoint, "region": REGION, "accessKeyId": CLIENT_AK, "secretAccessKey": CLIENT_SK,
           "urls": urls}
    p = subprocess.run(["node", os.path.join(HERE, "node", "presign.mjs")], input=json.dumps(req),
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"node presign.mjs exited {p.returncode}: {p.stderr.strip()[-500:]}")
    return json.loads(p.stdout)


# ---------------------------------------------------------------------------------------------- processes
def start_origin(port_, data):
    env = {"PATH": os.environ.get("PATH", ""), "ORIGIN_ACCESS_KEY": ORIGIN_AK, "ORIGIN_SECRET_KEY": ORIGIN_SK,
           "HOST": "127.0.0.1", "PORT": str(port_), "RUST_LOG": "warn", "ORIGIN_PUBLIC_BUCKETS": B_PUBLIC}
    p = PROCS.spawn("origin", [PROXY_BIN, "origin", data], env)
    PROCS.wait_port("origin", p, port_)


def start_proxy(name, port_, origin_url, **settings):
    env = {"PATH": os.environ.get("PATH", ""), "CLIENT_ACCESS_KEY": CLIENT_AK, "CLIENT_SECRET_KEY": CLIENT_SK,
           "ORIGIN_ACCESS_KEY": ORIGIN_AK, "ORIGIN_SECRET_KEY": ORIGIN_SK, "ORIGIN_DOMAIN": origin_url,
           "AWS_REGION": REGION, "HOST": "127.0.0.1", "PORT": str(port_),
           "RUST_LOG": os.environ.get("RUST_LOG", "info"), **settings}
    p = PROCS.spawn(f"proxy-{name}", [PROXY_BIN], env)
    PROCS.wait_port(f"proxy-{name}", p, port_)


def start_pages(port_, site, name):
    p = PROCS.spawn(name, [sys.executable, "-m", "http.server", str(port_), "--bind", "127.0.0.1",
                           "--directory", site])
    PROCS.wait_port(name, p, port_)


# ---------------------------------------------------------------------------------------------- the browser
class Browser:
    def __init__(self):
        from playwright.sync_api import sync_playwright

        self.pw = sync_playwright().start()
        # As root, no sandbox; no background networking (this machine's closed network refuses it, noisily).
        self.browser = self.pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        self.page = self.browser.new_page(viewport={"width": 1000, "height": 700})
        self.page.set_default_timeout(15000)
        self.console = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.shots = 0

    def open(self, url):
        self.page.goto(url)
        self.page.wait_for_function("typeof presignedPutThenGet === 'function'")

    def call(self, fn, arg):
        return self.page.evaluate(f"(a) => {fn}(a)", arg)

    def choose(self, path, selector="#file"):
        self.page.set_input_files(selector, path)

    def shot(self, name):
        self.shots += 1
        path = os.path.join(SHOTS, f"{self.shots:02d}-{name}.png")
        self.page.screenshot(path=path, full_page=True)
        return path

    def close(self):
        try:
            self.browser.close()
        finally:
            self.pw.stop()


def cors_errors(b, since):
    """Chromium's console lines about CORS since index `since` (evidence for the failure reports)."""
    lines = [c for c in b.console[since:] if "CORS" in c or "Access-Control" in c][:2]
    return [re.sub(r"\?X-Amz-[^' ]*", "?...", c) for c in lines]


# ---------------------------------------------------------------------------------------------- the steps
def browser_steps(b):
    page_a, page_b = PAGE_A, PAGE_B

    # ---- step 1: presigned PUT (JS SDK presigner) from a chosen file, presigned GET in <img> and fetch
    pic = png(120, 80, mark("s1"))
    pic_path = write(os.path.join(FILES, "photo-step1.png"), pic)
    k1 = f"s1/{mark('photo')}.png"
    put1, get1 = presign(PROXY_CORS, [{"method": "PUT", "bucket": B_UP, "key": k1},
                                      {"method": "GET", "bucket": B_UP, "key": k1}])
    assert "X-Amz-Signature=" in put1 and "X-Amz-Signature=" in get1, "the presigner made no SigV4 URL"
    b.open(page_a + "/index.html")
    b.choose(pic_path)
    c0 = len(b.console)
    r1 = b.call("presignedPutThenGet", {"title": "Step 1: presigned PUT, then presigned GET", "putUrl": put1,
                                        "getUrl": get1})
    b.shot("step1-presigned-put-get")
    why = cors_errors(b, c0)

    def s1_put():
        assert "error" not in r1["put"], f"fetch PUT threw {r1['put']['error']} {why}"
        assert r1["put"]["status"] == 200, f"PUT: HTTP {r1['put']['status']}: {r1['put']['text'][:300]}"
        assert_on_disk(B_UP, k1, pic)
    t.run_test("browser/step1-presigned-put-from-file-input", s1_put)

    def s1_img():
        assert "img" in r1, "no GET: the PUT failed"
        assert r1["img"]["loaded"], f"<img> of the presigned GET did not load: {r1['img']}"
        assert (r1["img"]["width"], r1["img"]["height"]) == (120, 80), f"<img> size {r1['img']}"
    t.run_test("browser/step1-presigned-get-img", s1_img)

    def s1_get():
        assert "get" in r1, "no GET: the PUT failed"
        g = r1["get"]
        assert "error" not in g, f"fetch GET threw {g['error']} {why}"
        assert g["status"] == 200, f"GET: HTTP {g['status']}: {g['text'][:300]}"
        assert g["sha256"] == sha256(pic), f"GET read {g['size']} bytes, sha256 {g['sha256'][:16]}; " \
                                           f"want {len(pic)}, {sha256(pic)[:16]}"
    t.run_test("browser/step1-presigned-get-fetch-bytes", s1_get)

    # ---- step 2b: a POST policy form sent by fetch(FormData), success_action_status=201: the XML read in JS
    f201 = png(40, 30, mark("s2b"))
    f201_name = f"{mark('fetch')}.png"
    f201_path = write(os.path.join(FILES, f201_name), f201)
    post201 = client(PROXY_CORS).generate_presigned_post(
        B_POST, "fetch/${filename}", Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}, ["content-length-range", 1, 1 << 20]], ExpiresIn=600)
    b.choose(f201_path)  # same page as step 1: its cards stay
    c0 = len(b.console)
    r2 = b.call("postForm", {"title": "Step 2b: the form sent by fetch(FormData), success_action_status=201",
                             "url": post201["url"], "fields": list(post201["fields"].items())})
    b.shot("step2b-form-fetch-201")

    def s2_201():
        assert "error" not in r2, f"fetch POST threw {r2['error']} {cors_errors(b, c0)}"
        assert r2["status"] == 201, f"HTTP {r2['status']}: {r2['text'][:300]}"
        body = r2["text"].encode()
        key = f"fetch/{f201_name}"
        assert xml_field(body, "Key") == key, f"201 body Key {xml_field(body, 'Key')}, want {key}: {brief(body)}"
        assert xml_field(body, "Bucket") == B_POST, f"201 body Bucket: {brief(body)}"
        assert (xml_field(body, "ETag") or "").replace("&quot;", "").strip('"') == md5(f201), \
            f"201 body ETag, want {md5(f201)}: {brief(body)}"
        assert_on_disk(B_POST, key, f201)
    t.run_test("browser/step2-form-fetch-201-xml", s2_201)

    # ---- step 3: the ETag of an upload, read from JavaScript
    text = f"ETag check {mark('s3')} " + os.urandom(200).hex()
    k3 = f"s3/{mark('etag')}.txt"
    (put3,) = presign(PROXY_CORS, [{"method": "PUT", "bucket": B_UP, "key": k3}])
    c0 = len(b.console)  # same page again
    r3 = b.call("putText", {"title": "Step 3: the ETag read from JavaScript", "putUrl": put3, "text": text})
    b.shot("step3-etag-from-js")

    def s3_etag():
        assert "error" not in r3, f"fetch PUT threw {r3['error']} {cors_errors(b, c0)}"
        assert r3["status"] == 200, f"HTTP {r3['status']}: {r3['text'][:300]}"
        want = f'"{md5(text.encode())}"'
        assert r3["etag"] == want, f"headers.get('ETag') = {r3['etag']!r}, want {want} (the MD5)"
        assert_on_disk(B_UP, k3, text.encode())
    t.run_test("browser/step3-etag-read-from-js-is-md5", s3_etag)

    # step 1's PUT answer too (a file upload, not bytes made in the page)
    def s1_etag():
        assert r1["put"].get("etag") == f'"{md5(pic)}"', f"step 1 PUT ETag {r1['put'].get('etag')!r}, " \
                                                         f"want \"{md5(pic)}\""
    t.run_test("browser/step3-etag-of-file-upload", s1_etag)

    # ---- step 2: an HTML form with a POST policy (boto3 generate_presigned_post, SigV4), clicked
    form_pic = png(64, 48, mark("s2"))
    fname = f"{mark('form')}.png"
    form_path = write(os.path.join(FILES, fname), form_pic)
    redirect = page_a + "/done.html"
    post = client(PROXY_CORS).generate_presigned_post(
        B_POST, "form/${filename}",
        Fields={"success_action_redirect": redirect, "Content-Type": "image/png"},
        Conditions=[{"success_action_redirect": redirect}, ["starts-with", "$Content-Type", "image/"],
                    ["content-length-range", 1, 1 << 20]],
        ExpiresIn=600)
    inputs = "\n".join(f'  <input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                       for k, v in post["fields"].items())
    form_html = f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>POST policy form</title><link rel="stylesheet" href="page.css"></head>
<body>
<h1>Step 2: an HTML form upload (POST policy, SigV4)</h1>
<p>action: <code>{html.escape(post['url'])}</code>, {len(post['fields'])} hidden fields from boto3's
generate_presigned_post</p>
<form method="post" enctype="multipart/form-data" action="{html.escape(post['url'])}">
{inputs}
  <p><label>File: <input type="file" name="file"></label></p>
  <button type="submit" id="submit">Upload</button>
</form>
</body>
</html>
"""
    with open(os.path.join(SITE, "form-v4.html"), "w") as f:
        f.write(form_html)
    b.page.goto(page_a + "/form-v4.html")
    b.choose(form_path, "input[name=file]")
    b.shot("step2-form-filled")
    posted = []
    b.page.on("response", lambda r: posted.append((r.request.method, r.status, r.headers.get("location")))
              if r.request.method == "POST" else None)
    nav_err = None
    try:  # the 303 is followed before anything commits: the one navigation lands on done.html
        with b.page.expect_navigation(timeout=15000):
            b.page.click("#submit")
    except Exception as e:  # noqa: BLE001 (reported below with what the page shows)
        nav_err = f"{type(e).__name__}: {str(e).splitlines()[0]}"
    b.shot("step2-form-redirected")

    def s2_redirect():
        body = ""
        if nav_err:
            try:
                body = " ".join(b.page.inner_text("body")[:300].split())
            except Exception:  # noqa: BLE001
                pass
        assert not nav_err and "/done.html?" in b.page.url, \
            f"no navigation to done.html: {nav_err}; POST answers {posted}; page now {b.page.url}: {body}"
        assert posted and posted[0][1] == 303, f"the form POST was answered {posted}, want 303"
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(b.page.url).query)
        key = f"form/{fname}"
        assert q.get("bucket") == [B_POST], f"redirect bucket {q.get('bucket')}"
        assert q.get("key") == [key], f"redirect key {q.get('key')}, want {key} (${{filename}} substituted)"
        etag = (q.get("etag") or [""])[0]
        assert etag.strip('"') == md5(form_pic), f"redirect etag {etag}, want the MD5 {md5(form_pic)}"
        assert_on_disk(B_POST, key, form_pic)
    t.run_test("browser/step2-form-post-303-redirect", s2_redirect)

    # ---- step 4: from page origin B (not allowed) the preflight fails, nothing is stored
    denied = png(50, 50, mark("s4"))
    denied_path = write(os.path.join(FILES, "denied.png"), denied)
    k4 = f"s4/{mark('denied')}.png"
    (put4,) = presign(PROXY_CORS, [{"method": "PUT", "bucket": B_UP, "key": k4}])
    b.open(page_b + "/index.html")
    b.choose(denied_path)
    before = snapshot()
    c0 = len(b.console)
    r4 = b.call("presignedPutThenGet", {"title": "Step 4: from a page origin that is not allowed", "putUrl": put4,
                                        "getUrl": None})
    b.shot("step4-origin-not-allowed")

    def s4_throws():
        p = r4["put"]
        assert "error" in p, f"fetch PUT from {page_b} did not throw: HTTP {p.get('status')}: {p.get('text', '')[:200]}"
        assert p["error"].startswith("TypeError"), f"fetch threw {p['error']}, want a TypeError (CORS)"
        assert on_disk(B_UP, k4) is None, f"{B_UP}/{k4} was stored"
        d = diff(before, snapshot())
        assert not d, f"the origin's data changed: {d}"
        assert not WIRE.with_marker(mark("denied")), "the PUT reached the origin"
    t.run_test("browser/step4-not-allowed-origin-fetch-throws-nothing-stored", s4_throws)

    def s4_preflight():
        u = urllib.parse.urlsplit(put4)
        target = f"{PROXY_CORS}{u.path}?{u.query}"
        st, h, body = raw(target, "OPTIONS", {"Origin": page_b, "Access-Control-Request-Method": "PUT",
                                              "Access-Control-Request-Headers": "content-type"})
        assert st == 403, f"preflight from {page_b}: HTTP {st} (want 403): {brief(body)}"
        assert xml_field(body, "Code") == "AccessForbidden", f"preflight 403 body: {brief(body)}"
        assert "access-control-allow-origin" not in h, f"a refused preflight allows {h['access-control-allow-origin']}"
        # the allowed origin, same request: the control
        st, h, body = raw(target, "OPTIONS", {"Origin": page_a, "Access-Control-Request-Method": "PUT",
                                              "Access-Control-Request-Headers": "content-type"})
        assert st == 200, f"preflight from {page_a}: HTTP {st}: {brief(body)}"
        assert h.get("access-control-allow-origin") == page_a, f"Allow-Origin {h.get('access-control-allow-origin')}"
        assert not WIRE.with_marker(mark("denied")), "a preflight was forwarded to the origin"
    t.run_test("browser/step4-preflight-not-allowed-403-xml", s4_preflight)

    # ---- step 5: anonymous, CORS_* unset: the origin's bucket CORS answers Chromium's preflight
    def s5_put_cors():
        c = client(PROXY_ANON)
        c.put_bucket_cors(Bucket=B_PUBLIC, CORSConfiguration={"CORSRules": [{
            "AllowedOrigins": [page_a], "AllowedMethods": ["GET", "HEAD", "PUT"],
            "AllowedHeaders": ["x-brw-check", "content-type"],
            "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 60}]})
        got = c.get_bucket_cors(Bucket=B_PUBLIC)["CORSRules"]
        assert got and got[0]["AllowedOrigins"] == [page_a], f"GetBucketCors through the proxy: {got}"
        at_origin = ORIGIN.get_bucket_cors(Bucket=B_PUBLIC)["CORSRules"]
        assert at_origin and at_origin[0]["AllowedOrigins"] == [page_a], f"GetBucketCors at the origin: {at_origin}"
    cors_set = t.run_test("browser/step5-put-bucket-cors-through-proxy", s5_put_cors)

    pub_url = f"{PROXY_ANON}/{B_PUBLIC}/{PUBLIC_PNG_KEY}"
    b.open(page_a + "/index.html")
    c0 = len(b.console)
    r5 = b.call("getWithHeader", {"title": "Step 5: unsigned GET with a custom header (bucket CORS preflight)",
                                  "url": pub_url, "headers": {"x-brw-check": "1"}})
    r5img = b.call("showImage", {"title": "Step 5: <img src> of a public object, no signature", "url": pub_url})
    # the usual S3 setup: bucket CORS and a presigned PUT. Chromium's preflight goes to the presigned URL, query
    # and all; it carries no credential of its own, so it is forwarded and the bucket's rule answers.
    text5 = f"bucket CORS presigned PUT {mark('s5put')} " + os.urandom(64).hex()
    k5 = f"s5/{mark('s5put')}.txt"
    (put5,) = presign(PROXY_ANON, [{"method": "PUT", "bucket": B_PUBLIC, "key": k5}])
    c5 = len(b.console)
    r5put = b.call("putText", {"title": "Step 5: presigned PUT, preflight answered by the bucket's CORS",
                               "putUrl": put5, "text": text5})
    b.shot("step5-public-bucket-cors")

    def s5_fetch():
        assert "error" not in r5, f"fetch threw {r5['error']} {cors_errors(b, c0)}" + \
                                  ("" if cors_set else " (PutBucketCors failed above)")
        assert r5["status"] == 200, f"HTTP {r5['status']}: {r5['text'][:300]}"
        assert r5["sha256"] == sha256(PUBLIC_PNG), "the bytes differ from the public object's"
        pre = [r for r in WIRE.requests() if r[0].startswith(f"OPTIONS /{B_PUBLIC}/{PUBLIC_PNG_KEY}")]
        assert pre, "no preflight (OPTIONS) reached the origin: who answered it?"
    t.run_test("browser/step5-bucket-cors-answers-chromium-preflight", s5_fetch)

    def s5_presigned_put():
        assert "error" not in r5put, f"fetch PUT threw {r5put['error']} {cors_errors(b, c5)}"
        assert r5put["status"] == 200, f"HTTP {r5put['status']}: {r5put['text'][:300]}"
        assert r5put["etag"] == f'"{md5(text5.encode())}"', f"ETag read from JS: {r5put['etag']!r}"
        assert_on_disk(B_PUBLIC, k5, text5.encode())
        pre = [r for r in WIRE.requests() if r[0].startswith(f"OPTIONS /{B_PUBLIC}/{k5}")]
        assert pre, "no preflight (OPTIONS) reached the origin"
    t.run_test("browser/step5-bucket-cors-presigned-put-preflight-forwarded", s5_presigned_put)

    def s5_img():
        assert r5img["loaded"], f"<img src={pub_url}> did not load: {r5img}"
        assert (r5img["width"], r5img["height"]) == (90, 60), f"<img> size {r5img}"
    t.run_test("browser/step5-img-src-public-object-unsigned", s5_img)

    b.open(page_b + "/index.html")
    c0 = len(b.console)
    r5b = b.call("getWithHeader", {"title": "Step 5: the same from page origin B (not in the bucket's rule)",
                                   "url": pub_url, "headers": {"x-brw-check": "1"}})
    b.shot("step5-other-origin-refused")

    def s5_other():
        assert "error" in r5b, f"fetch from {page_b} did not throw: HTTP {r5b.get('status')}"
        assert r5b["error"].startswith("TypeError"), f"fetch threw {r5b['error']}, want a TypeError (CORS)"
    t.run_test("browser/step5-bucket-cors-other-origin-refused", s5_other)


# ---------------------------------------------------------------------------------------------- anonymous
def anonymous_tests():
    from botocore.exceptions import ClientError

    u = unsigned_client(PROXY_ANON)

    def public_get_boto3():
        m = mark("pub-get-boto3")
        ORIGIN.put_object(Bucket=B_PUBLIC, Key=f"{m}.txt", Body=PUBLIC_TXT)
        got = u.get_object(Bucket=B_PUBLIC, Key=f"{m}.txt")["Body"].read()
        assert got == PUBLIC_TXT, f"unsigned GetObject: {len(got)} bytes differ"
        assert_unsigned_on_wire(m)
    t.run_test("browser/anon-public-object-boto3-unsigned", public_get_boto3)

    def public_list_boto3():
        m = mark("pub-list-boto3")
        ORIGIN.put_object(Bucket=B_PUBLIC, Key=f"{m}/a.txt", Body=b"a")
        ORIGIN.put_object(Bucket=B_PUBLIC, Key=f"{m}/b.txt", Body=b"b")
        r = u.list_objects_v2(Bucket=B_PUBLIC, Prefix=f"{m}/")
        keys = [o["Key"] for o in r.get("Contents", [])]
        assert keys == [f"{m}/a.txt", f"{m}/b.txt"], f"unsigned ListObjectsV2: {keys}"
        r1 = u.list_objects(Bucket=B_PUBLIC, Prefix=f"{m}/")
        keys1 = [o["Key"] for o in r1.get("Contents", [])]
        assert keys1 == keys, f"unsigned ListObjects (v1): {keys1}"
        assert_unsigned_on_wire(m)
    t.run_test("browser/anon-public-list-boto3-unsigned", public_list_boto3)

    def public_get_curl():
        m = mark("pub-get-curl")
        ORIGIN.put_object(Bucket=B_PUBLIC, Key=f"{m}.txt", Body=PUBLIC_TXT)
        st, body = curl(f"{PROXY_ANON}/{B_PUBLIC}/{m}.txt")
        assert st == 200 and body == PUBLIC_TXT, f"curl GET: HTTP {st}: {brief(body)}"
        st, _ = curl("-I", f"{PROXY_ANON}/{B_PUBLIC}/{m}.txt")
        assert st == 200, f"curl HEAD: HTTP {st}"
        assert_unsigned_on_wire(m)
    t.run_test("browser/anon-public-object-curl", public_get_curl)

    def public_list_curl():
        m = mark("pub-list-curl")
        ORIGIN.put_object(Bucket=B_PUBLIC, Key=f"{m}/x.txt", Body=b"x")
        st, body = curl(f"{PROXY_ANON}/{B_PUBLIC}?list-type=2&prefix={m}/")
        assert st == 200, f"curl list: HTTP {st}: {brief(body)}"
        assert re.findall(rb"<Key>([^<]*)</Key>", body) == [f"{m}/x.txt".encode()], f"curl list: {brief(body)}"
        assert_unsigned_on_wire(m)
    t.run_test("browser/anon-public-list-curl", public_list_curl)

    def private_object_origin_403():
        m = mark("priv-get")
        ORIGIN.put_object(Bucket=B_PRIVATE, Key=f"{m}.txt", Body=b"secret")
        st_o, _h, body_o = raw(f"{ORIGIN_URL}/{B_PRIVATE}/{m}.txt")  # the origin's own answer
        st, _h, body = raw(f"{PROXY_ANON}/{B_PRIVATE}/{m}.txt")
        assert st_o == 403, f"the origin itself answered an anonymous GET of a private object with {st_o}"
        assert (st, xml_field(body, "Code")) == (st_o, xml_field(body_o, "Code")), \
            f"through the proxy: {st} {xml_field(body, 'Code')}; the origin's own: {st_o} {xml_field(body_o, 'Code')}"
        assert b"secret" not in body, "the private object's bytes came back"
        assert_unsigned_on_wire(m)  # the origin's verdict, not the proxy's
        try:
            u.get_object(Bucket=B_PRIVATE, Key=f"{m}.txt")
            raise AssertionError("unsigned boto3 read a private object")
        except ClientError as e:
            assert err(e) == f"403 {xml_field(body_o, 'Code')}", f"unsigned boto3: {err(e)}"
    t.run_test("browser/anon-private-object-origin-403", private_object_origin_403)

    def put_private_nothing_stored():
        m = mark("anon-put")
        with Unchanged("anonymous PUT"):
            st, body = curl("-X", "PUT", "--data-binary", "@" + BLOB_256K, "-H", "Expect: 100-continue",
                            f"{PROXY_ANON}/{B_PRIVATE}/{m}.bin")
            assert st == 403, f"anonymous PUT to a private bucket: HTTP {st}: {brief(body)}"
            try:
                u.put_object(Bucket=B_PRIVATE, Key=f"{m}-boto3.bin", Body=b"x" * 1000)
                raise AssertionError("unsigned boto3 PutObject to a private bucket succeeded")
            except ClientError as e:
                assert err(e).startswith("403 "), f"unsigned boto3 PutObject: {err(e)}"
        assert on_disk(B_PRIVATE, f"{m}.bin") is None and on_disk(B_PRIVATE, f"{m}-boto3.bin") is None
        assert_unsigned_on_wire(m)  # refused by the origin (the PUT was forwarded unsigned)
    t.run_test("browser/anon-put-private-bucket-nothing-stored", put_private_nothing_stored)

    def put_public_nothing_stored():
        # public-read is read only: a PUT to the public bucket is the origin's 403 too
        m = mark("anon-put-pub")
        with Unchanged("anonymous PUT to the public bucket"):
            st, body = curl("-X", "PUT", "--data-binary", "hello", f"{PROXY_ANON}/{B_PUBLIC}/{m}.txt")
            assert st == 403, f"anonymous PUT to a public-read bucket: HTTP {st}: {brief(body)}"
    t.run_test("browser/anon-put-public-read-bucket-nothing-stored", put_public_nothing_stored)

    def bad_signature_not_downgraded():
        m = mark("badsig")
        ORIGIN.put_object(Bucket=B_PUBLIC, Key=f"{m}.txt", Body=PUBLIC_TXT)
        bad = client(PROXY_ANON, sk="not-the-client-secret-at-all-000000")
        try:
            bad.get_object(Bucket=B_PUBLIC, Key=f"{m}.txt")
            raise AssertionError("a wrong signature read a public object (downgraded to anonymous)")
        except ClientError as e:
            assert err(e) == "403 SignatureDoesNotMatch", f"wrong secret: {err(e)}"
        bad_ak = client(PROXY_ANON, ak="E2EBROWSERUNKNOWNKEY")
        try:
            bad_ak.get_object(Bucket=B_PUBLIC, Key=f"{m}.txt")
            raise AssertionError("an unknown access key read a public object (downgraded to anonymous)")
        except ClientError as e:
            assert err(e) == "403 InvalidAccessKeyId", f"unknown access key: {err(e)}"
        assert not WIRE.with_marker(m), "a request with a bad credential reached the origin"
    t.run_test("browser/anon-bad-credential-not-downgraded", bad_signature_not_downgraded)


def deny_tests():
    """Defaults (ANONYMOUS_ACCESS unset): every unsigned request refused, nothing reaches the origin."""
    cases = [  # (name, method, path, headers, body)
        ("get-public-object", "GET", f"/{B_PUBLIC}/{PUBLIC_PNG_KEY}?m={mark('d-get')}", {}, b""),
        ("head-public-object", "HEAD", f"/{B_PUBLIC}/{PUBLIC_PNG_KEY}?m={mark('d-head')}", {}, b""),
        ("list-public-bucket", "GET", f"/{B_PUBLIC}?list-type=2&prefix={mark('d-list')}", {}, b""),
        ("list-v1-public-bucket", "GET", f"/{B_PUBLIC}?prefix={mark('d-list1')}", {}, b""),
        ("get-private-object", "GET", f"/{B_PRIVATE}/{mark('d-priv')}", {}, b""),
        ("put-object", "PUT", f"/{B_PUBLIC}/{mark('d-put')}", {"Content-Type": "text/plain"}, b"anonymous"),
        ("delete-object", "DELETE", f"/{B_PUBLIC}/{PUBLIC_PNG_KEY}?m={mark('d-del')}", {}, b""),
        ("list-buckets", "GET", f"/?m={mark('d-lb')}", {}, b""),
        ("options-preflight", "OPTIONS", f"/{B_PUBLIC}/{PUBLIC_PNG_KEY}?m={mark('d-opt')}",
         {"Origin": "http://127.0.0.1:1234", "Access-Control-Request-Method": "GET"}, b""),
    ]
    boundary = "----brw" + RUN
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n{mark('d-form')}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\nanonymous form\r\n--{boundary}--\r\n").encode()
    cases.append(("post-form-unsigned", "POST", f"/{B_PUBLIC}?m={mark('d-form')}",
                  {"Content-Type": f"multipart/form-data; boundary={boundary}"}, form))
    for name, method, path, headers, body in cases:
        m = re.search(r"m" + RUN + r"-[\w-]+", path).group(0)

        def one(method=method, path=path, headers=headers, body=body, m=m):
            with Unchanged(name):
                st, _h, rb = raw(PROXY_DENY + path, method, headers, body)
                assert 400 <= st < 500, f"{method} {path}: HTTP {st}: {brief(rb)}"
                if method != "HEAD":
                    assert xml_field(rb, "Code"), f"{method}: HTTP {st} without S3 XML: {brief(rb)}"
                if method == "GET" and PUBLIC_PNG_KEY in path:
                    assert PUBLIC_PNG not in rb, "the object's bytes came back"
            assert not WIRE.with_marker(m), f"{method} {path} reached the origin"
        t.run_test(f"browser/deny-unsigned-{name}", one)

    # CORS set does not open anonymous access: an unsigned GET with an allowed Origin is still refused
    def cors_not_anonymous():
        m = mark("d-cors")
        with Unchanged("unsigned GET with CORS on"):
            st, h, rb = raw(f"{PROXY_CORS}/{B_PUBLIC}/{PUBLIC_PNG_KEY}?m={m}", "GET", {"Origin": PAGE_A})
            assert st == 403, f"HTTP {st}: {brief(rb)}"
            assert h.get("access-control-allow-origin") == PAGE_A, \
                f"a 403 for an allowed Origin lacks ACAO ({h.get('access-control-allow-origin')})"
        assert not WIRE.with_marker(m), "reached the origin"
    t.run_test("browser/deny-unsigned-with-cors-on-403-readable", cors_not_anonymous)


# ---------------------------------------------------------------------------------------------- POST policy
def post_tests():
    v4 = client(PROXY_CORS, sig="s3v4")
    v2 = client(PROXY_CORS, sig="s3")
    data = os.urandom(3000)
    data_path = write(os.path.join(FILES, "post.bin"), data)
    big_path = write(os.path.join(FILES, "post-big.bin"), os.urandom(4096))

    def form_args(post, fields=None, file_path=data_path, filename="up.bin"):
        args = []
        for k, v in {**post["fields"], **(fields or {})}.items():
            args += ["--form-string", f"{k}={v}"]
        return args + ["-F", f"file=@{file_path};filename={filename}", post["url"]]

    # expired policies first, so their second passes while the others run
    expired = {}
    for tag, c in (("v4", v4), ("v2", v2)):
        expired[tag] = c.generate_presigned_post(B_POST, f"exp-{tag}/{mark('exp')}.bin", ExpiresIn=1)
    t_expired = time.monotonic()

    for tag, c in (("v4", v4), ("v2", v2)):
        def ok_upload(c=c, tag=tag):
            key = f"curl-{tag}/{mark('ok')}.bin"
            post = c.generate_presigned_post(B_POST, key, ExpiresIn=300)
            f = post["fields"]
            if tag == "v4":
                assert f.get("x-amz-algorithm") == "AWS4-HMAC-SHA256" and "x-amz-signature" in f, f"fields {list(f)}"
            else:
                assert "AWSAccessKeyId" in f and "signature" in f and "x-amz-signature" not in f, f"fields {list(f)}"
            st, body = curl(*form_args(post))
            assert st == 204, f"HTTP {st} (want 204, the default): {brief(body)}"
            assert_on_disk(B_POST, key, data)
        t.run_test(f"browser/post-{tag}-curl-204-stored", ok_upload)

        def ok_filename(c=c, tag=tag):
            post = c.generate_presigned_post(B_POST, f"fn-{tag}/" + "${filename}",
                                             Fields={"success_action_status": "201"},
                                             Conditions=[{"success_action_status": "201"}], ExpiresIn=300)
            name = f"{mark('fn')}.bin"
            st, body = curl(*form_args(post, filename=name))
            assert st == 201, f"HTTP {st} (want 201): {brief(body)}"
            assert xml_field(body, "Key") == f"fn-{tag}/{name}", f"201 body: {brief(body)}"
            assert_on_disk(B_POST, f"fn-{tag}/{name}", data)
            assert on_disk(B_POST, f"fn-{tag}/" + "${filename}") is None, "the literal ${filename} was stored"
        t.run_test(f"browser/post-{tag}-curl-filename-201", ok_filename)

        violations = []
        post = c.generate_presigned_post(B_POST, f"ok-{tag}/" + "${filename}",
                                         Conditions=[["starts-with", "$key", f"ok-{tag}/"]], ExpiresIn=300)
        violations.append(("key-prefix", post, {"key": f"bad-{tag}/{mark('kp')}.bin"}, data_path,
                           403, "AccessDenied", f"bad-{tag}/{mark('kp')}.bin"))
        key = f"len-{tag}/{mark('len')}.bin"
        post = c.generate_presigned_post(B_POST, key, Conditions=[["content-length-range", 1, 1024]], ExpiresIn=300)
        violations.append(("content-length-range", post, None, big_path, 400, "EntityTooLarge", key))
        key = f"ct-{tag}/{mark('ct')}.png"
        post = c.generate_presigned_post(B_POST, key, Fields={"Content-Type": "image/png"},
                                         Conditions=[["starts-with", "$Content-Type", "image/"]], ExpiresIn=300)
        violations.append(("content-type", post, {"Content-Type": "text/html"}, data_path, 403, "AccessDenied", key))
        for kind, post, fields, path, want_st, want_code, stored_key in violations:
            def refused(post=post, fields=fields, path=path, want_st=want_st, want_code=want_code, key=stored_key):
                with Unchanged(kind):
                    st, body = curl(*form_args(post, fields, path))
                    code = xml_field(body, "Code")
                    assert (st, code) == (want_st, want_code), \
                        f"HTTP {st} {code} (want {want_st} {want_code}): {brief(body)}"
                    if want_code == "AccessDenied":
                        assert "Invalid according to Policy" in (xml_field(body, "Message") or ""), \
                            f"message: {xml_field(body, 'Message')}"
                assert on_disk(B_POST, key) is None, f"{key} was stored"
            t.run_test(f"browser/post-{tag}-refused-{kind}", refused)

    time.sleep(max(0.0, 2.2 - (time.monotonic() - t_expired)))
    for tag in ("v4", "v2"):
        def refused_expired(tag=tag):
            post = expired[tag]
            key = post["fields"]["key"]
            with Unchanged("expired"):
                st, body = curl(*form_args(post))
                code, msg = xml_field(body, "Code"), xml_field(body, "Message") or ""
                assert (st, code) == (403, "AccessDenied"), f"HTTP {st} {code} (want 403 AccessDenied): {brief(body)}"
                assert "Invalid according to Policy" in msg and "xpired" in msg, f"message: {msg}"
            assert on_disk(B_POST, key) is None, f"{key} was stored"
        t.run_test(f"browser/post-{tag}-refused-expired", refused_expired)


# ---------------------------------------------------------------------------------------------- main
def setup():
    global DATA, SITE, SHOTS, FILES, ORIGIN_URL, PROXY_CORS, PROXY_ANON, PROXY_DENY, PAGE_A, PAGE_B, WIRE, ORIGIN
    global PUBLIC_PNG, PUBLIC_TXT, BLOB_256K
    os.makedirs(WORK, exist_ok=True)
    DATA, SITE, SHOTS, FILES = (os.path.join(WORK, d) for d in ("origin-data", "site", "shots", "files"))
    for d in (DATA, SITE, SHOTS, FILES):
        os.makedirs(d, exist_ok=True)
    for n in ("index.html", "app.js", "done.html", "page.css"):
        shutil.copy(os.path.join(HERE, "browser", n), os.path.join(SITE, n))
    assert PROXY_BIN and os.access(PROXY_BIN, os.X_OK), f"no proxy binary (E2E_PROXY_BIN_PATH={PROXY_BIN!r})"
    assert os.access(CHROMIUM, os.X_OK), f"no Chromium at {CHROMIUM} (apt-get install chromium)"

    ports = {k: port() for k in ("origin", "wire", "cors", "anon", "deny", "page_a", "page_b")}
    start_origin(ports["origin"], DATA)
    ORIGIN_URL = f"http://127.0.0.1:{ports['origin']}"
    wire_log = os.path.join(WORK, "origin-wire.log")
    p = PROCS.spawn("wirelog", [sys.executable, os.path.join(HERE, "wirelog.py"), str(ports["wire"]), ORIGIN_URL,
                                wire_log])
    PROCS.wait_port("wirelog", p, ports["wire"])
    WIRE = Wire(wire_log)
    relay = f"http://127.0.0.1:{ports['wire']}"
    PAGE_A, PAGE_B = f"http://127.0.0.1:{ports['page_a']}", f"http://127.0.0.1:{ports['page_b']}"
    start_proxy("cors", ports["cors"], relay, CORS_ALLOWED_ORIGINS=PAGE_A)
    start_proxy("anon", ports["anon"], relay, ANONYMOUS_ACCESS="forward")
    start_proxy("deny", ports["deny"], relay)
    PROXY_CORS, PROXY_ANON, PROXY_DENY = (f"http://127.0.0.1:{ports[k]}" for k in ("cors", "anon", "deny"))
    start_pages(ports["page_a"], SITE, "pages-a")
    start_pages(ports["page_b"], SITE, "pages-b")

    # seeds, with the origin's own credentials, straight to it
    ORIGIN = client(ORIGIN_URL, ORIGIN_AK, ORIGIN_SK)
    for bkt in (B_UP, B_POST, B_PUBLIC, B_PRIVATE):
        ORIGIN.create_bucket(Bucket=bkt)
    PUBLIC_PNG = png(90, 60, mark("public"))
    ORIGIN.put_object(Bucket=B_PUBLIC, Key=PUBLIC_PNG_KEY, Body=PUBLIC_PNG, ContentType="image/png")
    PUBLIC_TXT = f"public text {RUN}\n".encode() * 20
    BLOB_256K = write(os.path.join(FILES, "blob-256k.bin"), os.urandom(256 * 1024))


PUBLIC_PNG_KEY = "pics/public.png"


def main():
    if os.environ.get("E2E_DIRECT") == "1":
        t.skip("browser/all", "E2E_DIRECT=1: the group tests the proxy's CORS, anonymous and POST policy handling, "
                              "and runs no proxy")
        t.finish()
    t0 = time.monotonic()
    try:
        setup()
    except Exception as e:  # noqa: BLE001
        t.fail("browser/setup", f"{type(e).__name__}: {e}")
        t.finish()
    print(f"# browser: origin {ORIGIN_URL}, proxies cors {PROXY_CORS} anon {PROXY_ANON} deny {PROXY_DENY}, "
          f"pages {PAGE_A} {PAGE_B} ({time.monotonic() - t0:.1f}s)", flush=True)

    b = None
    try:
        b = Browser()
        print(f"# browser: Chromium {b.browser.version} via Playwright", flush=True)
    except Exception as e:  # noqa: BLE001
        t.fail("browser/chromium-start", f"{type(e).__name__}: {str(e)[:300]}")
    if b:
        try:
            browser_steps(b)
        except Exception as e:  # noqa: BLE001 (a step that could not even run)
            t.fail("browser/steps", f"{type(e).__name__}: {str(e)[:300]}")
            try:
                b.shot("steps-aborted")
            except Exception:  # noqa: BLE001
                pass
        finally:
            b.close()
        print(f"# browser: screenshots in {SHOTS}", flush=True)
    for part in (anonymous_tests, deny_tests, post_tests):
        try:
            part()
        except Exception as e:  # noqa: BLE001
            t.fail(f"browser/{part.__name__}", f"{type(e).__name__}: {e}")
    print(f"# browser: {time.monotonic() - t0:.1f}s", flush=True)
    t.finish()


if __name__ == "__main__":
    main()
