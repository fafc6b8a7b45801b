#!/usr/bin/env python3
"""The `access` group (issue 15): scoped client keys, two origins behind one proxy, reload, rotation.

Self-contained: it starts two s3s-fs origins (`s3-resign-proxy origin DIR`, E2E_PROXY_BIN_PATH built with the
default `demo` feature), A and B, each with its OWN credentials, and one proxy started with ACCESS_FILE alone
(plus HOST, PORT, LOG_FORMAT=json, RUST_LOG and the `*_env` variables the file names: no CLIENT_* or ORIGIN_*
variable), each on a free port with its log in $E2E_WORK/access/, and stops them at exit. A second proxy is
started for the rotation test (its expiry is a few seconds after its start). Every write and delete is checked
on the origins' disks (a bucket is a directory of the origin's DIR, an object a file under it) and, where it
says so, with the origin's own credentials.

Routing ([[buckets]], first match wins, default origin A): `acc-b-first` -> A (a literal placed before the
glob that would send it to B), `acc-b*` -> B (glob), `acc-lit` -> B (literal), anything else -> A.

  ro        aws-cli with a read-only key (read + list on acc-ro): `s3 cp` down works; `s3 cp` up (PutObject,
            and a 20 MB multipart) and presigned PUTs (SigV4 and SigV2) get 403 AccessDenied; nothing is
            stored (both origin directories unchanged, the keys absent at origin A); its ListBuckets is acc-ro.
  route     a key with no rules creates buckets on both origins and writes and reads objects there with
            aws-cli and boto3; ListBuckets shows the buckets of both (and no bucket an origin holds that
            routes elsewhere); each object is on the right origin's disk and not on the other's.
  reload    while a 50 MB download (read slowly) is in flight, a rule is rewritten in place so the key loses
            `read`: new GETs get AccessDenied within a few seconds, the download completes byte-identical.
            Restored by rename: works again. Broken files (a TOML error on a line holding an inline secret;
            an unknown origin; a missing secret variable) are each refused with one log line naming the
            problem, and the old rules keep working. SIGHUP reloads (with a good and a broken file). With
            another file in the access file's directory written every 100 ms, a change is still read within a
            few seconds. The proxies' logs hold none of the secrets.
  rotation  a key with previous_secret_env and previous_secret_expires a few seconds ahead: both secrets
            work; after the expiry the old one gets 403 SignatureDoesNotMatch and the new one works.
  delete    DeleteObjects by a key allowed `delete` only under tmp/, with one key outside it in the batch:
            403 AccessDenied and nothing deleted on disk; the same batch without it deletes (control).
"""

import calendar
import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse

import e2elib as t

MiB = 1024 * 1024
REGION = os.environ.get("E2E_REGION", "us-east-1")
WORK = os.path.join(os.environ["E2E_WORK"], "access")
PROXY_BIN = os.environ.get("E2E_PROXY_BIN_PATH", "")
BIG = os.environ.get("E2E_BIG", "")  # run.sh's shared 20 MB random file (multipart with aws-cli)

BIG_SIZE = 50 * MiB
DOWNLOAD_MIN_S = 5.0  # the 50 MB download is read over at least this long
RELOAD_MAX_S = 5.0  # "within a few seconds"
ROTATION_WINDOW_S = 6  # previous_secret_expires = the rotation proxy's start + this


def _secret(tag):
    return f"acc-{tag}-{secrets.token_hex(12)}"


# Origins: different credentials each. Origin B's secret reaches the proxy through a variable, A's as well;
# the DELETE key's secret is inline in the file (and on the line the TOML-error file breaks).
ORIGIN_A_AK, ORIGIN_A_SK = "E2EACCORIGINA", _secret("origin-a")
ORIGIN_B_AK, ORIGIN_B_SK = "E2EACCORIGINB", _secret("origin-b")
KEYS = {  # name -> (access key, secret)
    "ro": ("E2EACCREADONLY", _secret("ro")),
    "all": ("E2EACCALL", _secret("all")),
    "rl": ("E2EACCRELOAD", _secret("rl")),
    "del": ("E2EACCDELETE", _secret("del")),
    "rot-new": ("E2EACCROTATE", _secret("rot-new")),
    "rot-old": ("E2EACCROTATE", _secret("rot-old")),
}
SECRET_ENV = {  # the variables the files name
    "ACC_ORIGIN_A_SECRET": ORIGIN_A_SK,
    "ACC_ORIGIN_B_SECRET": ORIGIN_B_SK,
    "ACC_RO_SECRET": KEYS["ro"][1],
    "ACC_ALL_SECRET": KEYS["all"][1],
    "ACC_RL_SECRET": KEYS["rl"][1],
    "ACC_ROT_NEW": KEYS["rot-new"][1],
    "ACC_ROT_OLD": KEYS["rot-old"][1],
}
ALL_SECRETS = sorted({ORIGIN_A_SK, ORIGIN_B_SK, *(sk for _ak, sk in KEYS.values())})
MISSING_VAR = "ACC_NOT_SET_ANYWHERE"

# ---------------------------------------------------------------------------------------------- processes
PROCS = t.Procs(WORK)
spawn, wait_port = PROCS.spawn, PROCS.wait_port


def start_origin(name, port, data, ak, sk):
    env = {"PATH": os.environ.get("PATH", ""), "ORIGIN_ACCESS_KEY": ak, "ORIGIN_SECRET_KEY": sk,
           "HOST": "127.0.0.1", "PORT": str(port), "RUST_LOG": "warn"}
    p = spawn(name, [PROXY_BIN, "origin", data], env)
    wait_port(name, p, port)
    return p


def start_proxy(name, port, access_file):
    # Only what a deployment with an access file needs: no CLIENT_*, ORIGIN_* or other settings.
    env = {"PATH": os.environ.get("PATH", ""), "ACCESS_FILE": access_file, "HOST": "127.0.0.1", "PORT": str(port),
           "LOG_FORMAT": "json", "RUST_LOG": os.environ.get("RUST_LOG", "info"), **SECRET_ENV}
    p = spawn(name, [PROXY_BIN], env)
    wait_port(name, p, port)
    return p


# ---------------------------------------------------------------------------------------------- the file
def access_toml(ports, rl_actions=("read", "list"), extra=""):
    acts = ", ".join(f'"{a}"' for a in rl_actions)
    return f"""# written by tests/e2e/access_test.py
[[origins]]
name = "a"
domain = "http://127.0.0.1:{ports['OA']}"
access_key = "{ORIGIN_A_AK}"
secret_key_env = "ACC_ORIGIN_A_SECRET"
region = "{REGION}"
addressing = "path"
default = true

[[origins]]
name = "b"
domain = "http://127.0.0.1:{ports['OB']}"
access_key = "{ORIGIN_B_AK}"
secret_key_env = "ACC_ORIGIN_B_SECRET"
region = "{REGION}"

[[buckets]]
name = "acc-b-first"   # before the glob: first match wins
origin = "a"

[[buckets]]
name = "acc-b*"
origin = "b"

[[buckets]]
name = "acc-lit"
origin = "b"

[[keys]]
access_key = "{KEYS['ro'][0]}"
secret_env = "ACC_RO_SECRET"
allow = [ {{ bucket = "acc-ro", actions = ["read", "list"] }} ]

[[keys]]
access_key = "{KEYS['all'][0]}"
secret_env = "ACC_ALL_SECRET"

[[keys]]
access_key = "{KEYS['rl'][0]}"
secret_env = "ACC_RL_SECRET"
allow = [ {{ bucket = "acc-rl", actions = [{acts}] }} ]

[[keys]]
access_key = "{KEYS['del'][0]}"
secret = "{KEYS['del'][1]}"
allow = [ {{ bucket = "acc-bdel", prefix = "tmp/", actions = ["delete"] }} ]
{extra}"""


def rotation_toml(ports, expires):
    return f"""[[origins]]
name = "a"
domain = "http://127.0.0.1:{ports['OA']}"
access_key = "{ORIGIN_A_AK}"
secret_key_env = "ACC_ORIGIN_A_SECRET"

[[keys]]
access_key = "{KEYS['rot-new'][0]}"
secret_env = "ACC_ROT_NEW"
previous_secret_env = "ACC_ROT_OLD"
previous_secret_expires = "{expires}"
"""


def write_in_place(path, text):
    """Rewrite the same inode (truncate + one write), as an editor saving in place does."""
    with open(path, "r+" if os.path.exists(path) else "w") as f:
        f.seek(0)
        f.truncate()
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_by_rename(path, text):
    """Write a temporary file in the same directory and rename it over the file (config-management style)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


# ---------------------------------------------------------------------------------------------- clients
def client(ak, sk, endpoint, **cfg):
    import boto3
    from botocore.config import Config

    conf = dict(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60,
                signature_version="s3v4", s3={"addressing_style": "path"})
    conf.update(cfg)
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name=REGION, config=Config(**conf))


def err(e):
    """`STATUS Code` of a botocore ClientError (or the exception's name)."""
    r = getattr(e, "response", None) or {}
    st = r.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return f"{st} {(r.get('Error') or {}).get('Code')}" if st else f"{type(e).__name__}: {e}"


def outcome(fn):
    """'200' when fn() returns, else `STATUS Code`."""
    from botocore.exceptions import ClientError

    try:
        fn()
        return "200"
    except ClientError as e:
        return err(e)


def aws(key, endpoint, *args, check=True, timeout=120):
    ak, sk = KEYS[key]
    p = subprocess.run(["aws", "--endpoint-url", endpoint, *args], env=t.client_env(ak, sk), capture_output=True,
                       text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"`aws {' '.join(args)[:200]}` ({key} key) exited {p.returncode}: "
                             f"{(p.stderr or p.stdout).strip()[-500:]}")
    return p


def raw(method, url, body=b""):
    """(status, body) of one request with no header a library adds (SigV2 signs Content-Type)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest(method, u.path + ("?" + u.query if u.query else ""), skip_accept_encoding=True)
        if method == "PUT":
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if method == "PUT" else None)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def xml_code(body):
    import re

    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


# ---------------------------------------------------------------------------------------------- disk
def snapshot(root):
    """Every file and directory under root: relative path -> (size, mtime_ns) (None for directories)."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs:
            out[os.path.relpath(os.path.join(d, n), root) + "/"] = None
        for n in files:
            st = os.stat(os.path.join(d, n))
            out[os.path.relpath(os.path.join(d, n), root)] = (st.st_size, st.st_mtime_ns)
    return out


def diff(before, after):
    added = sorted(set(after) - set(before))
    gone = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    parts = [f"{w}: {v[:5]}" for w, v in (("added", added), ("removed", gone), ("changed", changed)) if v]
    return "; ".join(parts)


def on_disk(data, bucket, key):
    p = os.path.join(data, bucket, *key.split("/"))
    if not os.path.isfile(p):
        return None
    with open(p, "rb") as f:
        return f.read()


# ---------------------------------------------------------------------------------------------- the log
class Log:
    """The proxy's log (JSON lines): the lines since a mark, the reload lines among them."""

    def __init__(self, path):
        self.path = path

    def lines(self):
        with open(self.path, errors="replace") as f:
            return f.read().splitlines()

    def mark(self):
        return len(self.lines())

    def events(self, since):
        """(raw line, flat dict of its fields) of the lines since the mark; a line that is not JSON -> None."""
        out = []
        for ln in self.lines()[since:]:
            try:
                obj = json.loads(ln)
            except ValueError:
                out.append((ln, None))
                continue
            flat = {}

            def walk(o):
                for k, v in o.items():
                    if isinstance(v, dict):
                        walk(v)
                    else:
                        flat.setdefault(k, v)

            if isinstance(obj, dict):
                walk(obj)
            out.append((ln, flat))
        return out

    def matching(self, since, text):
        return [(ln, f) for ln, f in self.events(since) if text in ln]

    def wait_for(self, since, text, secs):
        """The lines since the mark that hold text, waiting up to secs for the first."""
        deadline = time.monotonic() + secs
        while True:
            got = self.matching(since, text)
            if got or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    def secrets_found(self):
        with open(self.path, errors="replace") as f:
            body = f.read()
        return [s[:8] + "..." for s in ALL_SECRETS if s in body]


REFUSED = "access file refused"
RELOADED = "access file reloaded"


# ---------------------------------------------------------------------------------------------- setup
class Setup:
    def __init__(self):
        taken = set()
        self.ports = {k: t.free_port(taken) for k in ("OA", "OB", "P", "PR")}
        self.data = {k: os.path.join(WORK, f"origin-{k.lower()}") for k in ("A", "B")}
        for d in self.data.values():
            os.makedirs(d)
        self.origin_a = start_origin("origin-a", self.ports["OA"], self.data["A"], ORIGIN_A_AK, ORIGIN_A_SK)
        self.origin_b = start_origin("origin-b", self.ports["OB"], self.data["B"], ORIGIN_B_AK, ORIGIN_B_SK)
        self.oa = client(ORIGIN_A_AK, ORIGIN_A_SK, f"http://127.0.0.1:{self.ports['OA']}")
        self.ob = client(ORIGIN_B_AK, ORIGIN_B_SK, f"http://127.0.0.1:{self.ports['OB']}")
        # Seeds, with the origins' own credentials.
        self.ro_obj = os.urandom(70 * 1024)
        self.oa.create_bucket(Bucket="acc-ro")
        self.oa.put_object(Bucket="acc-ro", Key="ro/hello.bin", Body=self.ro_obj)
        if on_disk(self.data["A"], "acc-ro", "ro/hello.bin") != self.ro_obj:
            raise RuntimeError(f"the origin does not keep objects as DIR/bucket/key files: {snapshot(self.data['A'])}")
        self.big = os.urandom(BIG_SIZE)
        self.big_sha = hashlib.sha256(self.big).hexdigest()
        self.small = os.urandom(4096)
        self.oa.create_bucket(Bucket="acc-rl")
        self.oa.put_object(Bucket="acc-rl", Key="big", Body=self.big)
        self.oa.put_object(Bucket="acc-rl", Key="small", Body=self.small)
        self.ob.create_bucket(Bucket="acc-bdel")
        self.del_objs = {k: os.urandom(1000) for k in ("tmp/1", "tmp/2", "keep/x")}
        for k, v in self.del_objs.items():
            self.ob.put_object(Bucket="acc-bdel", Key=k, Body=v)
        self.oa.create_bucket(Bucket="acc-rot")
        self.oa.put_object(Bucket="acc-rot", Key="r", Body=b"rotation")
        # Buckets an origin holds that route elsewhere: never listed (ListBuckets takes a bucket from an origin
        # only when it routes there).
        self.oa.create_bucket(Bucket="acc-bstray")  # routes to B (glob)
        self.ob.create_bucket(Bucket="acc-zstray")  # routes to A (default)
        # The file in a directory of its own, as deployed (/etc/...): the proxy watches the directory; the
        # logs and data next to it would be changes of that directory (reload-busy-directory tests that).
        self.conf = os.path.join(WORK, "conf")
        os.makedirs(self.conf)
        self.file = os.path.join(self.conf, "access.toml")
        write_in_place(self.file, access_toml(self.ports))
        self.proxy = start_proxy("proxy", self.ports["P"], self.file)
        self.endpoint = f"http://127.0.0.1:{self.ports['P']}"
        self.log = Log(os.path.join(WORK, "proxy.log"))

    def c(self, key, **cfg):
        return client(*KEYS[key], self.endpoint, **cfg)


# ---------------------------------------------------------------------------------------------- 1. read-only
def ro_tests(s):
    from botocore.exceptions import ClientError

    local = os.path.join(WORK, "ro-down.bin")

    def cp_down():
        aws("ro", s.endpoint, "s3", "cp", "s3://acc-ro/ro/hello.bin", local)
        with open(local, "rb") as f:
            assert f.read() == s.ro_obj, "the downloaded file differs from the object"

    def ls():
        out = aws("ro", s.endpoint, "s3", "ls", "s3://acc-ro/ro/").stdout
        assert "hello.bin" in out, f"`s3 ls s3://acc-ro/ro/` does not list hello.bin: {out!r}"

    def listbuckets():
        names = [b["Name"] for b in s.c("ro").list_buckets()["Buckets"]]
        assert names == ["acc-ro"], f"ListBuckets for a key that may list only acc-ro: {names}"

    t.run_test("access/ro-awscli-cp-down", cp_down)
    t.run_test("access/ro-awscli-ls", ls)
    t.run_test("access/ro-listbuckets-only-acc-ro", listbuckets)

    before = {k: snapshot(d) for k, d in s.data.items()}
    small = t.write_random(os.path.join(WORK, "ro-up.bin"), 100 * 1024)
    up_keys = []

    def cp_up(src, key, what):
        up_keys.append(key)
        p = aws("ro", s.endpoint, "s3", "cp", src, f"s3://acc-ro/{key}", check=False)
        assert p.returncode != 0, f"`aws s3 cp` up ({what}) with the read-only key succeeded"
        assert "AccessDenied" in p.stderr, f"`aws s3 cp` up ({what}): no AccessDenied in {p.stderr.strip()[-400:]!r}"

    t.run_test("access/ro-awscli-cp-up-denied", cp_up, small, "up/small.bin", "PutObject")
    if BIG and os.path.exists(BIG):
        t.run_test("access/ro-awscli-cp-up-multipart-denied", cp_up, BIG, "up/big.bin", "20 MB, multipart")
    else:
        t.fail("access/ro-awscli-cp-up-multipart-denied", f"E2E_BIG ({BIG!r}) is missing: run the group via run.sh")

    def presigned_put(version):
        cfg = {"signature_version": "s3v4"} if version == "v4" else {"signature_version": "s3"}
        key = f"up/presigned-{version}.bin"
        up_keys.append(key)
        c = s.c("ro", **cfg)
        url = c.generate_presigned_url("put_object", Params={"Bucket": "acc-ro", "Key": key}, ExpiresIn=300)
        assert ("X-Amz-Signature=" in url) == (version == "v4"), f"not a {version} URL: {url[:120]}"
        # control: the same key's presigned GET of the object it may read works
        gurl = c.generate_presigned_url("get_object", Params={"Bucket": "acc-ro", "Key": "ro/hello.bin"},
                                        ExpiresIn=300)
        st, body = raw("GET", gurl)
        assert st == 200 and body == s.ro_obj, f"presigned {version} GET (allowed): {st} {xml_code(body)}"
        st, body = raw("PUT", url, b"must not be stored")
        assert (st, xml_code(body)) == (403, "AccessDenied"), f"presigned {version} PUT: {st} {body[:300]!r}"

    t.run_test("access/ro-presigned-v4-put-denied", presigned_put, "v4")
    t.run_test("access/ro-presigned-v2-put-denied", presigned_put, "v2")

    def nothing_stored():
        after = {k: snapshot(d) for k, d in s.data.items()}
        for k in s.data:
            d = diff(before[k], after[k])
            assert not d, f"origin {k}'s directory changed under the read-only key's refused writes: {d}"
        for key in up_keys:
            try:
                s.oa.head_object(Bucket="acc-ro", Key=key)
            except ClientError as e:
                assert err(e).startswith("404"), f"origin A HEAD acc-ro/{key}: {err(e)}"
                continue
            raise AssertionError(f"acc-ro/{key} exists at origin A")
        # (s3s-fs 0.14 has no ListMultipartUploads: the directory comparison covers a started upload)

    t.run_test("access/ro-nothing-stored", nothing_stored)


# ---------------------------------------------------------------------------------------------- 2. routing
ROUTE = {"acc-lit": "B", "acc-b-glob": "B", "acc-b-first": "A", "acc-dflt": "A"}


def route_tests(s):
    from botocore.exceptions import ClientError

    c = s.c("all")
    objs = {}  # (bucket, key) -> bytes

    def create():
        c.create_bucket(Bucket="acc-b-glob")
        c.create_bucket(Bucket="acc-b-first")
        aws("all", s.endpoint, "s3", "mb", "s3://acc-lit")
        aws("all", s.endpoint, "s3", "mb", "s3://acc-dflt")
        for b, o in ROUTE.items():
            other = "B" if o == "A" else "A"
            assert os.path.isdir(os.path.join(s.data[o], b)), f"bucket {b} is not at origin {o}"
            assert not os.path.exists(os.path.join(s.data[other], b)), f"bucket {b} was created at origin {other}"

    def write_read():
        for b in ROUTE:
            # aws-cli writes one object, boto3 another; each client reads the other's
            cli_key, boto_key = f"cli/{b}.bin", f"boto/{b}.bin"
            cli_data, boto_data = os.urandom(50 * 1024 + len(b)), os.urandom(30 * 1024 + len(b))
            src = os.path.join(WORK, f"route-{b}.bin")
            with open(src, "wb") as f:
                f.write(cli_data)
            aws("all", s.endpoint, "s3", "cp", src, f"s3://{b}/{cli_key}")
            c.put_object(Bucket=b, Key=boto_key, Body=boto_data)
            objs[(b, cli_key)], objs[(b, boto_key)] = cli_data, boto_data
            got = c.get_object(Bucket=b, Key=cli_key)["Body"].read()
            assert got == cli_data, f"boto3 read back {b}/{cli_key}: differs"
            dst = os.path.join(WORK, f"route-{b}.down")
            aws("all", s.endpoint, "s3", "cp", f"s3://{b}/{boto_key}", dst)
            with open(dst, "rb") as f:
                assert f.read() == boto_data, f"aws-cli read back {b}/{boto_key}: differs"

    def at_right_origin_only():
        origin = {"A": s.oa, "B": s.ob}
        for (b, k), v in objs.items():
            o = ROUTE[b]
            other = "B" if o == "A" else "A"
            assert on_disk(s.data[o], b, k) == v, f"{b}/{k} is not on origin {o}'s disk with its bytes"
            assert not os.path.exists(os.path.join(s.data[other], b)), f"origin {other} has a directory {b}"
            got = origin[o].get_object(Bucket=b, Key=k)["Body"].read()
            assert got == v, f"origin {o} (its own credentials) GET {b}/{k}: other bytes"
            try:
                origin[other].head_object(Bucket=b, Key=k)
            except ClientError as e:
                assert err(e).startswith("404"), f"origin {other} HEAD {b}/{k}: {err(e)}"
                continue
            raise AssertionError(f"{b}/{k} exists at origin {other} too")

    def listbuckets():
        names = {b["Name"] for b in c.list_buckets()["Buckets"]}
        want = {"acc-ro", "acc-rl", "acc-rot", "acc-dflt", "acc-b-first", "acc-bdel", "acc-b-glob", "acc-lit"}
        assert want <= names, f"ListBuckets lacks {sorted(want - names)} (got {sorted(names)})"
        stray = names & {"acc-bstray", "acc-zstray"}
        assert not stray, f"ListBuckets lists {sorted(stray)}, held by an origin it does not route to"
        out = aws("all", s.endpoint, "s3", "ls").stdout
        listed = {ln.split()[-1] for ln in out.splitlines() if ln.strip()}
        assert {"acc-lit", "acc-b-glob", "acc-dflt", "acc-b-first"} <= listed, f"`aws s3 ls`: {out!r}"

    def healthz():
        conn = http.client.HTTPConnection("127.0.0.1", s.ports["P"], timeout=5)
        try:
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            body = r.read()
        finally:
            conn.close()
        js = json.loads(body)
        assert r.status == 200 and js.get("status") == "ok", f"/healthz {r.status} {body[:300]!r}"
        o = js.get("origins") or {}
        assert set(o) == {"a", "b"} and all(v.get("status") == "ok" for v in o.values()), (
            f"/healthz origins: {o}")

    if t.run_test("access/route-create-buckets-on-both-origins", create):
        if t.run_test("access/route-awscli-boto3-write-read-both", write_read):
            t.run_test("access/route-each-object-at-its-origin-only", at_right_origin_only)
    t.run_test("access/route-listbuckets-merged", listbuckets)
    t.run_test("access/route-healthz-reports-each-origin", healthz)


# ---------------------------------------------------------------------------------------------- 3. reload
def reload_tests(s):
    log = s.log
    rl = s.c("rl")

    def get_small():
        return outcome(lambda: rl.get_object(Bucket="acc-rl", Key="small")["Body"].read())

    def wait_outcome(want, secs):
        """Poll GET acc-rl/small with the reload key until it answers `want`; seconds taken or None."""
        t0 = time.monotonic()
        seen = []
        while time.monotonic() - t0 < secs:
            o = get_small()
            if not seen or seen[-1] != o:
                seen.append(o)
            if o == want:
                return time.monotonic() - t0, seen
            time.sleep(0.1)
        return None, seen

    def inflight_change():
        assert get_small() == "200", f"GET with the reload key before the change: {get_small()}"
        denied = threading.Event()
        result = {}
        started = threading.Event()

        def download():
            h, n, t0 = hashlib.sha256(), 0, time.monotonic()
            try:
                body = s.c("rl").get_object(Bucket="acc-rl", Key="big")["Body"]
                while True:
                    if n >= BIG_SIZE - MiB:  # hold the last MiB until the new rule has been seen
                        denied.wait(RELOAD_MAX_S + 10)
                    chunk = body.read(256 * 1024)
                    if not chunk:
                        break
                    h.update(chunk)
                    n += len(chunk)
                    started.set()
                    ahead = t0 + DOWNLOAD_MIN_S * n / BIG_SIZE - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                result.update(n=n, sha=h.hexdigest(), done=time.monotonic())
            except Exception as e:  # noqa: BLE001
                result.update(n=n, error=err(e), done=time.monotonic())
            finally:
                started.set()

        th = threading.Thread(target=download, daemon=True)
        th.start()
        assert started.wait(30) and "error" not in result, f"the download did not start: {result}"
        mark = log.mark()
        t_change = time.monotonic()
        write_in_place(s.file, access_toml(s.ports, rl_actions=("list",)))
        took, seen = wait_outcome("403 AccessDenied", RELOAD_MAX_S)
        t_denied = time.monotonic()
        denied.set()
        listing = outcome(lambda: rl.list_objects_v2(Bucket="acc-rl"))
        th.join(60)
        reloaded = log.matching(mark, RELOADED)
        t._out(f"# access: rule rewritten in place during the download; GETs answered {seen}; denied after "
               f"{'%.2f s' % took if took is not None else 'never'}; download: "
               f"{result.get('n', 0) // MiB} MiB, done {result.get('done', t_change) - t_change:.2f} s after the "
               f"change{', ' + result['error'] if 'error' in result else ''}; {len(reloaded)} '{RELOADED}' lines")
        assert took is not None, (f"GET acc-rl/small with the reload key after its `read` was removed in place: "
                                  f"still {seen} after {RELOAD_MAX_S:.0f} s (expected 403 AccessDenied)")
        assert listing == "200", f"ListObjectsV2 (the `list` it kept) after the change: {listing}"
        assert "error" not in result, f"the in-flight download failed: {result}"
        assert result["n"] == BIG_SIZE and result["sha"] == s.big_sha, (
            f"the in-flight download is {result['n']} bytes, sha256 {'equal' if result['sha'] == s.big_sha else 'differs'}")
        assert result["done"] > t_denied, "the download ended before the new rule was seen (it was not in flight)"

    def rename_restore():
        write_by_rename(s.file, access_toml(s.ports))
        took, seen = wait_outcome("200", RELOAD_MAX_S)
        t._out(f"# access: rule restored by rename; GETs answered {seen}; allowed after "
               f"{'%.2f s' % took if took is not None else 'never'}")
        assert took is not None, f"GET after the rule was restored by rename: still {seen} after {RELOAD_MAX_S:.0f} s"

    # Each broken file is the good one with the reload key's `read` removed, plus the breakage: if a proxy
    # applied it in part, GET acc-rl/small would be denied.
    broken = {
        # The syntax error is on the line with the DELETE key's inline secret: a TOML parser's message quotes
        # the offending line, which must not reach the log.
        "toml": (write_in_place,
                 lambda: access_toml(s.ports, rl_actions=("list",)).replace(
                     f'secret = "{KEYS["del"][1]}"', f'secret = "{KEYS["del"][1]}" oops = 1'),
                 lambda e: any(w in e.lower() for w in ("toml", "parse", "syntax", "expected", "line"))),
        "unknown-origin": (write_by_rename,
                           lambda: access_toml(s.ports, rl_actions=("list",),
                                               extra='\n[[buckets]]\nname = "acc-nowhere"\norigin = "nosuch"\n'),
                           lambda e: "nosuch" in e or "origin" in e.lower()),
        "missing-secret-variable": (write_by_rename,
                                    lambda: access_toml(s.ports, rl_actions=("list",), extra=(
                                        f'\n[[keys]]\naccess_key = "E2EACCNOVAR"\nsecret_env = "{MISSING_VAR}"\n')),
                                    lambda e: MISSING_VAR in e or "secret_env" in e),
    }

    def refused(kind):
        writer, text, names_it = broken[kind]
        body = text()
        assert body != access_toml(s.ports), "the broken file is the good one"
        mark = log.mark()
        writer(s.file, body)
        got = log.wait_for(mark, REFUSED, RELOAD_MAX_S)
        time.sleep(1.0)  # a second refusal of the same change would show by now
        got = log.matching(mark, REFUSED)
        events = log.events(mark)
        assert got, f"no '{REFUSED}' log line within {RELOAD_MAX_S:.0f} s of writing the {kind} file"
        line, fields = got[0]
        e = str((fields or {}).get("error", ""))
        t._out(f"# access: {kind}: {len(got)} refusal line(s): error = {e[:200]!r}")
        not_json = [ln for ln, f in events if f is None and ln.strip()]
        assert not not_json, f"log lines that are not one JSON object each (a multi-line message?): {not_json[:3]}"
        assert len(got) == 1, f"{len(got)} '{REFUSED}' lines for one change: {[ln[:200] for ln, _f in got]}"
        assert (fields or {}).get("level", "").upper() == "ERROR", f"the refusal is not at error level: {line[:300]}"
        assert e and "\n" not in e, f"the refusal's error field is empty or spans lines: {e!r}"
        assert names_it(e), f"the refusal line does not name the problem ({kind}): {line[:400]}"
        assert not log.matching(mark, RELOADED), f"the {kind} file was also reported as reloaded"
        leaked = log.secrets_found()
        assert not leaked, f"the proxy's log holds secrets: {leaked}"
        o = get_small()
        assert o == "200", f"GET with the reload key after the {kind} file was refused: {o} (old rules: allowed)"
        lb = outcome(lambda: s.c("all").list_buckets())
        assert lb == "200", f"ListBuckets with the all key after the {kind} file was refused: {lb}"

    def sighup():
        # (1) the broken file left on disk: SIGHUP re-reads it and refuses it again
        mark = log.mark()
        s.proxy.send_signal(signal.SIGHUP)
        got = log.wait_for(mark, REFUSED, 3)
        time.sleep(0.3)
        assert s.proxy.poll() is None, f"the proxy exited ({s.proxy.returncode}) on SIGHUP"
        assert got, f"SIGHUP with a broken file on disk: no '{REFUSED}' line within 3 s"
        assert get_small() == "200", "GET after SIGHUP with a broken file: old rules not kept"
        # (2) a good file again (by rename), then SIGHUP alone: one more reload
        mark = log.mark()
        write_by_rename(s.file, access_toml(s.ports))
        assert log.wait_for(mark, RELOADED, RELOAD_MAX_S), f"no '{RELOADED}' line after the good file came back"
        time.sleep(1.0)  # let the watcher's reload(s) of that change pass
        mark = log.mark()
        s.proxy.send_signal(signal.SIGHUP)
        got = log.wait_for(mark, RELOADED, 3)
        assert s.proxy.poll() is None, f"the proxy exited ({s.proxy.returncode}) on SIGHUP"
        assert got, f"SIGHUP: no '{RELOADED}' line within 3 s"
        assert get_small() == "200", f"GET after SIGHUP with the good file: {get_small()}"

    def busy_directory():
        """Another file in the access file's directory written every 100 ms (a log, a sibling config being
        edited): a change of the access file must still be read within a few seconds."""
        sibling = os.path.join(s.conf, "sibling.log")
        stop = threading.Event()

        def scribble():
            with open(sibling, "a") as f:
                while not stop.is_set():
                    f.write(f"{time.time()}\n")
                    f.flush()
                    time.sleep(0.1)

        th = threading.Thread(target=scribble, daemon=True)
        th.start()
        try:
            time.sleep(1.0)
            mark = log.mark()
            write_in_place(s.file, access_toml(s.ports, rl_actions=("list",)))
            took, seen = wait_outcome("403 AccessDenied", RELOAD_MAX_S)
            write_by_rename(s.file, access_toml(s.ports))
            took2, seen2 = wait_outcome("200", RELOAD_MAX_S)
            n = len(log.matching(mark, RELOADED))
        finally:
            stop.set()
            th.join(5)
        t._out(f"# access: busy directory (a sibling file written every 100 ms): in-place change denied after "
               f"{'%.2f s' % took if took is not None else 'never'} ({seen}), restore by rename allowed after "
               f"{'%.2f s' % took2 if took2 is not None else 'never'} ({seen2}); {n} '{RELOADED}' lines meanwhile")
        assert took is not None, (f"GET acc-rl/small after its `read` was removed in place, while a sibling file "
                                  f"of the access file is written every 100 ms: still {seen} after {RELOAD_MAX_S:.0f} s")
        assert took2 is not None, (f"GET acc-rl/small after the rule was restored by rename, while a sibling file "
                                   f"is written every 100 ms: still {seen2} after {RELOAD_MAX_S:.0f} s")

    def no_secrets():
        leaked = log.secrets_found()
        assert not leaked, f"the proxy's log ({log.path}) holds secrets: {leaked}"

    ok = t.run_test("access/reload-in-place-denies-new-gets-download-completes", inflight_change)
    ok = t.run_test("access/reload-rename-restores", rename_restore) and ok
    if not ok:  # later tests need the good file in force
        write_by_rename(s.file, access_toml(s.ports))
        time.sleep(RELOAD_MAX_S)
    for kind in broken:
        t.run_test(f"access/reload-refuses-{kind}-keeps-old-rules", refused, kind)
    t.run_test("access/reload-sighup", sighup)
    t.run_test("access/reload-busy-directory", busy_directory)
    write_by_rename(s.file, access_toml(s.ports))  # whatever happened above: the good file
    took, seen = wait_outcome("200", RELOAD_MAX_S + 2)
    if took is None:
        t._out(f"# access: the good file is not in force after the reload tests ({seen}): later results may suffer")
    t.run_test("access/reload-log-holds-no-secret", no_secrets)


# ---------------------------------------------------------------------------------------------- 4. rotation
def rotation_tests(s):
    now = time.time()
    expires_at = int(now) + 1 + ROTATION_WINDOW_S
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_at))
    assert calendar.timegm(time.strptime(expires, "%Y-%m-%dT%H:%M:%SZ")) == expires_at
    os.makedirs(os.path.join(WORK, "conf-rotation"))
    path = os.path.join(WORK, "conf-rotation", "rotation.toml")
    write_by_rename(path, rotation_toml(s.ports, expires))
    proxy = start_proxy("proxy-rotation", s.ports["PR"], path)
    endpoint = f"http://127.0.0.1:{s.ports['PR']}"
    ak = KEYS["rot-new"][0]
    new = client(ak, KEYS["rot-new"][1], endpoint)
    old = client(ak, KEYS["rot-old"][1], endpoint)
    wrong = client(ak, _secret("wrong"), endpoint)

    def get(c):
        return outcome(lambda: c.get_object(Bucket="acc-rot", Key="r")["Body"].read())

    def before():
        got = {"new": get(new), "old": get(old), "wrong": get(wrong)}
        t_checked = time.time()
        assert t_checked < expires_at, (f"harness too slow: the checks before the expiry ended "
                                        f"{t_checked - expires_at:.1f} s after it")
        assert got == {"new": "200", "old": "200", "wrong": "403 SignatureDoesNotMatch"}, (
            f"before previous_secret_expires ({expires}): {got}")

    def after():
        wait = expires_at + 1.0 - time.time()  # the proxy compares with the wall clock, in whole seconds here
        if wait > 0:
            time.sleep(wait)
        got = {"old": get(old), "new": get(new)}
        assert got == {"old": "403 SignatureDoesNotMatch", "new": "200"}, f"1 s after {expires}: {got}"

    t.run_test("access/rotation-both-secrets-before-expiry", before)
    t.run_test("access/rotation-old-secret-refused-after-expiry", after)
    # left running: stop_all stops both proxies at once (each drains for DRAIN_GRACE, 5 s by default)


# ---------------------------------------------------------------------------------------------- 5. delete
def delete_tests(s):
    from botocore.exceptions import ClientError

    c = s.c("del")
    data = s.data["B"]  # acc-bdel routes to origin B (glob)

    def present():
        return {k: on_disk(data, "acc-bdel", k) == v for k, v in s.del_objs.items()}

    def batch_denied():
        assert all(present().values()), f"seeded objects not on origin B's disk: {present()}"
        before = snapshot(data)
        try:
            r = c.delete_objects(Bucket="acc-bdel", Delete={"Objects": [{"Key": "tmp/1"}, {"Key": "keep/x"},
                                                                         {"Key": "tmp/2"}]})
        except ClientError as e:
            got = err(e)
        else:
            got = f"200 Deleted={[d['Key'] for d in r.get('Deleted', [])]} Errors={r.get('Errors', [])}"
        d = diff(before, snapshot(data))
        assert got == "403 AccessDenied", f"DeleteObjects [tmp/1, keep/x, tmp/2]: {got} (expected 403 AccessDenied)"
        assert not d and all(present().values()), f"origin B's disk changed: {d}; present: {present()}"

    def single_denied():
        got = outcome(lambda: c.delete_object(Bucket="acc-bdel", Key="keep/x"))
        assert got == "403 AccessDenied", f"DeleteObject keep/x (outside tmp/): {got}"
        assert present()["keep/x"], "keep/x is gone from origin B's disk"

    def batch_allowed():
        r = c.delete_objects(Bucket="acc-bdel", Delete={"Objects": [{"Key": "tmp/1"}, {"Key": "tmp/2"}]})
        deleted = sorted(d["Key"] for d in r.get("Deleted", []))
        assert deleted == ["tmp/1", "tmp/2"] and not r.get("Errors"), f"DeleteObjects [tmp/1, tmp/2]: {r}"
        p = present()
        assert p == {"tmp/1": False, "tmp/2": False, "keep/x": True}, f"on origin B's disk afterwards: {p}"

    def listbuckets_empty():
        r = c.list_buckets()
        names = [b["Name"] for b in r["Buckets"]]
        assert names == [], f"ListBuckets for a key that may list nothing: {names} (expected an empty list)"

    if t.run_test("access/delete-objects-one-forbidden-key-refused-whole", batch_denied):
        t.run_test("access/delete-object-outside-prefix-denied", single_denied)
        t.run_test("access/delete-objects-allowed-prefix-deletes", batch_allowed)
    t.run_test("access/delete-key-listbuckets-empty", listbuckets_empty)


# ---------------------------------------------------------------------------------------------- main
def main():
    if os.environ.get("E2E_DIRECT") == "1":
        t.skip("access/all", "E2E_DIRECT=1: the group tests the proxy's access file, and runs no proxy")
        t.finish()
    shutil.rmtree(WORK, ignore_errors=True)  # a rerun with the same E2E_WORK starts empty (logs, data)
    os.makedirs(WORK)
    t0 = time.monotonic()
    if not PROXY_BIN or not os.access(PROXY_BIN, os.X_OK):
        t.fail("access/setup", f"E2E_PROXY_BIN_PATH is not an executable: {PROXY_BIN!r}")
        t.finish()
    try:
        s = Setup()
    except Exception as e:  # noqa: BLE001
        t.fail("access/setup", f"{type(e).__name__}: {e} (logs in {WORK})")
        t.finish()
    t._out(f"# access: proxy :{s.ports['P']} (ACCESS_FILE {s.file}) -> origin A :{s.ports['OA']}, origin B "
           f":{s.ports['OB']}; setup {time.monotonic() - t0:.1f} s; logs in {WORK}")
    for name, fn in (("ro", ro_tests), ("route", route_tests), ("reload", reload_tests), ("rotation", rotation_tests),
                     ("delete", delete_tests)):
        t1 = time.monotonic()
        try:
            fn(s)
        except Exception as e:  # noqa: BLE001 (a harness error in one part must not hide the others)
            t.fail(f"access/{name}-harness", f"{type(e).__name__}: {e}")
        t._out(f"# access: {name} {time.monotonic() - t1:.1f} s")
        if s.proxy.poll() is not None:
            t.fail("access/proxy-alive", f"the proxy exited with {s.proxy.returncode} during {name} (see {WORK})")
            break
    PROCS.stop_all()
    leaked = {n: Log(os.path.join(WORK, n)).secrets_found() for n in ("proxy.log", "proxy-rotation.log")
              if os.path.exists(os.path.join(WORK, n))}
    leaked = {n: v for n, v in leaked.items() if v}
    t.check("access/logs-hold-no-secret-at-exit", not leaked, f"the proxies' logs hold secrets: {leaked}")
    t._out(f"# access: {time.monotonic() - t0:.1f} s")
    t.finish()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        t.fail("access/harness", f"{type(e).__name__}: {e}")
        t.finish()
