#!/usr/bin/env python3
"""awscli: high-level `aws s3` and low-level `aws s3api` commands, awkward keys, a wrong secret.

Every write is checked at the origin with the origin credentials (origin_check.py).
"""

import concurrent.futures as cf
import filecmp
import hashlib
import json
import os
import re
import subprocess

import e2elib as t

B = "e2e-awscli"
W = os.path.join(t.WORK, "awscli")


def api_json(*args, **kw):
    out = t.aws("s3api", *args, "--output", "json", **kw).stdout
    return json.loads(out) if out.strip() else {}


def main():
    os.makedirs(W, exist_ok=True)

    def mb():
        t.aws("s3", "mb", f"s3://{B}")
        t.origin().head_bucket(Bucket=B)

    if not t.run_test("awscli/mb", mb):
        t.ensure_bucket_at_origin(B)  # carry on, so the other tests still say something

    # ------------------------------------------------------------ s3 cp 20 KB
    small = t.write_random(os.path.join(W, "small20k.bin"), 20 * 1024)
    small_sha = t.sha256_file(small)

    def cp_up():
        t.aws("s3", "cp", small, f"s3://{B}/cp/small20k.bin")
        t.assert_at_origin(B, "cp/small20k.bin", small_sha)

    t.run_test("awscli/cp-up-20KB", cp_up)

    def cp_down():
        dst = os.path.join(W, "small20k.down")
        t.aws("s3", "cp", f"s3://{B}/cp/small20k.bin", dst)
        assert filecmp.cmp(small, dst, shallow=False), "downloaded bytes differ"

    t.run_test("awscli/cp-down-20KB", cp_down)

    # ------------------------------------------------------------ s3 sync 50 files
    src = os.path.join(W, "syncsrc")
    files = {}
    for i in range(50):
        rel = f"f{i:02d}.txt" if i < 30 else f"sub/g{i:02d}.dat"
        p = os.path.join(src, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        data = os.urandom(100 + i * 37)
        with open(p, "wb") as f:
            f.write(data)
        files[rel] = hashlib.sha256(data).hexdigest()

    def sync_up():
        t.aws("s3", "sync", src, f"s3://{B}/sync/")
        bad = []
        for rel, sha in files.items():
            try:
                t.assert_at_origin(B, f"sync/{rel}", sha)
            except AssertionError as e:
                bad.append(str(e))
        assert not bad, f"{len(bad)} of 50 wrong at origin, e.g. {bad[0]}"
        again = t.aws("s3", "sync", src, f"s3://{B}/sync/").stdout
        assert "upload:" not in again, f"second sync uploaded again: {again[:300]!r}"

    t.run_test("awscli/sync-up-50-files", sync_up)

    def sync_down():
        dst = os.path.join(W, "syncdst")
        t.aws("s3", "sync", f"s3://{B}/sync/", dst)
        cmp = filecmp.dircmp(src, dst)
        diff = []

        def walk(c, pre=""):
            diff.extend(pre + x for x in c.left_only + c.right_only + c.diff_files + c.funny_files)
            for name, sub in c.subdirs.items():
                walk(sub, pre + name + "/")

        walk(cmp)
        # dircmp compares shallowly; compare contents too
        for rel in files:
            if not filecmp.cmp(os.path.join(src, rel), os.path.join(dst, rel), shallow=False):
                diff.append(rel)
        assert not diff, f"synced-down tree differs: {diff[:5]}"

    t.run_test("awscli/sync-down-50-files", sync_down)

    def ls_recursive():
        out = t.aws("s3", "ls", "--recursive", f"s3://{B}/").stdout
        keys = {line.split(None, 3)[3] for line in out.splitlines() if len(line.split(None, 3)) == 4}
        want = {f"sync/{r}" for r in files} | {"cp/small20k.bin"}
        missing = want - keys
        assert not missing, f"ls --recursive lacks {sorted(missing)[:5]}"

    t.run_test("awscli/ls-recursive", ls_recursive)

    def ls_prefix():
        out = t.aws("s3", "ls", f"s3://{B}/sync/sub/").stdout
        names = {line.split(None, 3)[3] for line in out.splitlines() if len(line.split(None, 3)) == 4}
        want = {r.split("/", 1)[1] for r in files if r.startswith("sub/")}
        assert names == want, f"ls sync/sub/ gave {sorted(names)[:5]}..., want {len(want)} g*.dat"
        out = t.aws("s3", "ls", f"s3://{B}/sync/").stdout
        assert "PRE sub/" in out, f"ls sync/ lacks 'PRE sub/': {out[:200]!r}"

    t.run_test("awscli/ls-prefix", ls_prefix)

    def mv():
        t.aws("s3", "mv", f"s3://{B}/cp/small20k.bin", f"s3://{B}/moved/small20k.bin")
        t.assert_at_origin(B, "moved/small20k.bin", small_sha)
        t.assert_absent_at_origin(B, "cp/small20k.bin")

    t.run_test("awscli/mv", mv)

    def rm_recursive():
        out = t.aws("s3", "rm", "--recursive", f"s3://{B}/sync/").stdout
        assert out.count("delete:") == 50, f"expected 50 deletes, got {out.count('delete:')}"
        left = t.origin().list_objects_v2(Bucket=B, Prefix="sync/").get("KeyCount", 0)
        assert left == 0, f"{left} objects left under sync/ at the origin"
        for rel in list(files)[:3]:
            t.assert_absent_at_origin(B, f"sync/{rel}")

    t.run_test("awscli/rm-recursive", rm_recursive)

    # ------------------------------------------------------------ s3api
    body = t.write_random(os.path.join(W, "api.bin"), 4096 + 17)
    body_sha = t.sha256_file(body)
    body_md5 = hashlib.md5(open(body, "rb").read()).hexdigest()

    def put_object():
        r = api_json("put-object", "--bucket", B, "--key", "api/obj", "--body", body,
                     "--content-type", "application/x-e2e", "--metadata", "color=blue,Mixed-Case=Yes")
        assert r.get("ETag", "").strip('"') == body_md5, f"ETag {r.get('ETag')} != md5 {body_md5}"
        t.assert_at_origin(B, "api/obj", body_sha)
        h = t.origin().head_object(Bucket=B, Key="api/obj")
        assert h["ContentType"] == "application/x-e2e", f"origin content-type {h['ContentType']}"
        assert h["Metadata"].get("color") == "blue", f"origin metadata {h['Metadata']}"

    t.run_test("awscli/s3api-put-object", put_object)

    def head_object():
        r = api_json("head-object", "--bucket", B, "--key", "api/obj")
        assert r["ContentLength"] == 4096 + 17, r
        assert r["ContentType"] == "application/x-e2e", r
        assert r["ETag"].strip('"') == body_md5, r
        assert r["Metadata"].get("color") == "blue" and r["Metadata"].get("mixed-case") == "Yes", r["Metadata"]
        p = t.aws("s3api", "head-object", "--bucket", B, "--key", "api/absent", check=False)
        assert p.returncode != 0 and ("404" in p.stderr or "Not Found" in p.stderr), \
            f"head of a missing key: rc={p.returncode} {p.stderr[-200:]!r}"

    t.run_test("awscli/s3api-head-object", head_object)

    def copy_object():
        api_json("copy-object", "--bucket", B, "--key", "api/copy of obj", "--copy-source", f"{B}/api/obj")
        t.assert_at_origin(B, "api/copy of obj", body_sha)
        # a copy source that needs URL-encoding
        api_json("put-object", "--bucket", B, "--key", "api/src é+&.bin", "--body", body)
        api_json("copy-object", "--bucket", B, "--key", "api/dst2", "--copy-source", f"{B}/api/src é+&.bin")
        t.assert_at_origin(B, "api/dst2", body_sha)
        # ('+' would be mangled in listings by s3s-fs's encoding-type=url bug, see e2elib.list_limitation)
        t.aws("s3api", "delete-object", "--bucket", B, "--key", "api/src é+&.bin")
        t.assert_absent_at_origin(B, "api/src é+&.bin")

    t.run_test("awscli/s3api-copy-object", copy_object)

    def list_delim():
        for k in ("api/d1/x", "api/d1/y", "api/d2/z"):
            api_json("put-object", "--bucket", B, "--key", k, "--body", body)
        r = api_json("list-objects-v2", "--bucket", B, "--prefix", "api/", "--delimiter", "/")
        keys = sorted(o["Key"] for o in r.get("Contents", []))
        pres = sorted(p["Prefix"] for p in r.get("CommonPrefixes", []))
        assert pres == ["api/d1/", "api/d2/"], f"CommonPrefixes {pres}"
        assert keys == sorted(["api/obj", "api/copy of obj", "api/dst2"]), f"Contents {keys}"
        r = api_json("list-objects-v2", "--bucket", B, "--prefix", "api/d1/", "--max-items", "1")
        assert [o["Key"] for o in r.get("Contents", [])] == ["api/d1/x"], r

    t.run_test("awscli/s3api-list-objects-v2-delimiter", list_delim)

    def get_range():
        out = os.path.join(W, "range.out")
        r = api_json("get-object", "--bucket", B, "--key", "api/obj", "--range", "bytes=100-1123", out)
        data = open(body, "rb").read()
        got = open(out, "rb").read()
        assert got == data[100:1124], f"range body mismatch ({len(got)} bytes)"
        assert r.get("ContentRange") == f"bytes 100-1123/{len(data)}", f"ContentRange {r.get('ContentRange')}"
        r = api_json("get-object", "--bucket", B, "--key", "api/obj", "--range", "bytes=-10", out)
        assert open(out, "rb").read() == data[-10:], "suffix range mismatch"

    t.run_test("awscli/s3api-get-object-range", get_range)

    def multipart_by_hand():
        key = "api/manual multipart.bin"
        big = open(t.BIG, "rb").read()
        p1 = os.path.join(W, "part1")
        p2 = os.path.join(W, "part2")
        open(p1, "wb").write(big[: 5 * 1024 * 1024])
        open(p2, "wb").write(big[5 * 1024 * 1024 : 5 * 1024 * 1024 + 123457])
        up = api_json("create-multipart-upload", "--bucket", B, "--key", key, "--content-type", "x/mp")["UploadId"]
        e1 = api_json("upload-part", "--bucket", B, "--key", key, "--upload-id", up, "--part-number", "1", "--body", p1)["ETag"]
        e2 = api_json("upload-part", "--bucket", B, "--key", key, "--upload-id", up, "--part-number", "2", "--body", p2)["ETag"]
        mp = os.path.join(W, "mp.json")
        json.dump({"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]}, open(mp, "w"))
        r = api_json("complete-multipart-upload", "--bucket", B, "--key", key, "--upload-id", up,
                     "--multipart-upload", f"file://{mp}")
        assert r.get("ETag", "").strip('"').endswith("-2"), f"multipart ETag {r.get('ETag')}"
        want = hashlib.sha256(open(p1, "rb").read() + open(p2, "rb").read()).hexdigest()
        t.assert_at_origin(B, key, want)
        # and an aborted one leaves nothing behind
        up2 = api_json("create-multipart-upload", "--bucket", B, "--key", "api/aborted")["UploadId"]
        api_json("upload-part", "--bucket", B, "--key", "api/aborted", "--upload-id", up2, "--part-number", "1", "--body", p2)
        t.aws("s3api", "abort-multipart-upload", "--bucket", B, "--key", "api/aborted", "--upload-id", up2)
        t.assert_absent_at_origin(B, "api/aborted")

    t.run_test("awscli/s3api-multipart-by-hand", multipart_by_hand)

    # ------------------------------------------------------------ presign (SigV2 by default in aws-cli v1)
    def presign_default():
        url = t.aws("s3", "presign", f"s3://{B}/api/obj", "--expires-in", "300").stdout.strip()
        out = os.path.join(W, "presigned.out")
        code = subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}", url],
                              capture_output=True, text=True, timeout=60).stdout
        q = url.split("?", 1)[1] if "?" in url else ""
        assert "AWSAccessKeyId=" in q and "Signature=" in q and "X-Amz-" not in q, \
            f"aws s3 presign (defaults) did not give a SigV2 URL: {url}"
        assert code == "200", f"SigV2 presigned GET gave HTTP {code}: {open(out, 'rb').read()[:300]!r}"
        assert open(out, "rb").read() == open(body, "rb").read(), "presigned GET body differs"

    t.run_test("awscli/presign-get-default-sigv2", presign_default)

    def presign_v4():
        cfg = os.path.join(W, "aws-config-s3v4")
        with open(cfg, "w") as f:
            f.write("[default]\nregion = us-east-1\ns3 =\n    signature_version = s3v4\n")
        env = t.client_env()
        env["AWS_CONFIG_FILE"] = cfg
        p = subprocess.run(["aws", "--endpoint-url", t.ENDPOINT, "s3", "presign", f"s3://{B}/api/obj"],
                           env=env, capture_output=True, text=True, timeout=60)
        url = p.stdout.strip()
        assert "X-Amz-Signature=" in url, f"not a SigV4 URL: {url!r} {p.stderr[-200:]}"
        out = os.path.join(W, "presigned4.out")
        code = subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}", url],
                              capture_output=True, text=True, timeout=60).stdout
        assert code == "200", f"presigned GET gave HTTP {code}: {open(out, 'rb').read()[:300]!r}"
        assert open(out, "rb").read() == open(body, "rb").read(), "presigned GET body differs"

    t.run_test("awscli/presign-get-sigv4", presign_v4)

    # ------------------------------------------------------------ a profile with endpoint_url, no --endpoint-url
    profile_endpoint_url(small, small_sha)

    # ------------------------------------------------------------ negative: wrong secret
    def wrong_secret_put():
        p = t.aws("s3api", "put-object", "--bucket", B, "--key", "neg/wrong-secret", "--body", body,
                  secret="definitely-not-the-secret", check=False)
        assert p.returncode != 0, "put-object with a wrong secret succeeded"
        assert "SignatureDoesNotMatch" in p.stderr, f"error lacks SignatureDoesNotMatch: {p.stderr.strip()[-300:]!r}"
        t.assert_absent_at_origin(B, "neg/wrong-secret")

    t.run_test("awscli/neg-wrong-secret-put", wrong_secret_put)

    def wrong_secret_cp():
        p = t.aws("s3", "cp", small, f"s3://{B}/neg/wrong-secret-cp", secret="definitely-not-the-secret", check=False)
        assert p.returncode != 0, "s3 cp with a wrong secret succeeded"
        assert "SignatureDoesNotMatch" in p.stderr, f"error lacks SignatureDoesNotMatch: {p.stderr.strip()[-300:]!r}"
        t.assert_absent_at_origin(B, "neg/wrong-secret-cp")

    t.run_test("awscli/neg-wrong-secret-cp", wrong_secret_cp)

    def wrong_secret_get():
        p = t.aws("s3api", "get-object", "--bucket", B, "--key", "api/obj", os.path.join(W, "neg.out"),
                  secret="definitely-not-the-secret", check=False)
        assert p.returncode != 0, "get-object with a wrong secret succeeded"
        assert "SignatureDoesNotMatch" in p.stderr, f"error lacks SignatureDoesNotMatch: {p.stderr.strip()[-300:]!r}"

    t.run_test("awscli/neg-wrong-secret-get", wrong_secret_get)

    # ------------------------------------------------------------ awkward keys
    awkward(body, body_sha)
    t.finish()


# exactly the text the project README shows (aws-cli reads endpoint_url from a profile since 1.29 / botocore 1.31)
PROFILE_CONFIG = """[profile proxy]
region = us-east-1
endpoint_url = {endpoint}
"""
PROFILE_CREDENTIALS = """[proxy]
aws_access_key_id = {access_key}
aws_secret_access_key = {secret_key}
"""


def profile_endpoint_url(small, small_sha):
    """`aws --profile proxy ...` with an isolated AWS_CONFIG_FILE whose profile has endpoint_url, credentials in
    an isolated AWS_SHARED_CREDENTIALS_FILE, and no --endpoint-url flag. If this aws-cli ignored endpoint_url
    it would go to real AWS (and fail offline): that is reported as a FAIL naming the endpoint it used."""
    cfg = os.path.join(W, "aws-config-profile")
    creds = os.path.join(W, "aws-credentials-profile")
    with open(cfg, "w") as f:
        f.write(PROFILE_CONFIG.format(endpoint=t.ENDPOINT))
    with open(creds, "w") as f:
        f.write(PROFILE_CREDENTIALS.format(access_key=t.ACCESS_KEY, secret_key=t.SECRET_KEY))
    env = dict(os.environ)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
              "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
              "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        env.pop(k, None)
    env["AWS_CONFIG_FILE"] = cfg
    env["AWS_SHARED_CREDENTIALS_FILE"] = creds

    def paws(*args, check=True):
        p = subprocess.run(["aws", "--profile", "proxy", "--cli-connect-timeout", "10", *args], env=env,
                           capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"`aws --profile proxy {' '.join(args)[:150]}` exited {p.returncode}: "
                                 f"{(p.stderr or p.stdout).strip()[-400:]}")
        return p

    # Which endpoint does it use? `--debug` logs botocore's "Endpoint provider result: URL" for each client.
    p = paws("s3", "ls", "--debug", check=False)
    used = re.findall(r"Endpoint provider result: (\S+)", p.stderr)
    found = re.findall(r"Found endpoint for s3 via: (\S+?)\.?$", p.stderr, re.M)
    ignored = None
    if not used or any(u.rstrip("/") != t.ENDPOINT for u in used):
        last = [ln for ln in p.stderr.strip().splitlines() if ln.strip() and " - DEBUG - " not in ln][-1:]
        ver = subprocess.run(["aws", "--version"], capture_output=True, text=True).stdout.split(" ")[0]
        ignored = (f"{ver} ignores endpoint_url in [profile proxy] of AWS_CONFIG_FILE: it sent requests to "
                   f"{sorted(set(used)) or 'an unknown endpoint'} instead of {t.ENDPOINT} "
                   f"(exit {p.returncode}: {' '.join(last)[-200:]})")

    def ls():
        if ignored:
            raise AssertionError(ignored)
        assert p.returncode == 0, f"`aws --profile proxy s3 ls` exited {p.returncode}: {p.stderr.strip()[-300:]}"
        assert found and found[0] == "config_global", f"endpoint came from {found}, not the profile's endpoint_url"
        assert B in p.stdout.split(), f"`aws --profile proxy s3 ls` does not list {B}: {p.stdout[-300:]!r}"

    t.run_test("awscli/profile-endpoint-url-ls-buckets", ls)

    def cp_up():
        if ignored:
            raise AssertionError(ignored)
        paws("s3", "cp", small, f"s3://{B}/profile/small20k.bin")
        t.assert_at_origin(B, "profile/small20k.bin", small_sha)
        out = paws("s3", "ls", f"s3://{B}/profile/").stdout
        assert "20480 small20k.bin" in " ".join(out.split()), f"ls profile/ lacks '20480 small20k.bin': {out!r}"

    up = t.run_test("awscli/profile-endpoint-url-cp-up-ls", cp_up)

    def cp_down():
        if ignored:
            raise AssertionError(ignored)
        if not up:
            raise AssertionError("the upload failed")
        dst = os.path.join(W, "profile.down")
        paws("s3", "cp", f"s3://{B}/profile/small20k.bin", dst)
        assert filecmp.cmp(small, dst, shallow=False), "downloaded bytes differ"
        paws("s3", "rm", f"s3://{B}/profile/small20k.bin")
        t.assert_absent_at_origin(B, "profile/small20k.bin")

    t.run_test("awscli/profile-endpoint-url-cp-down-rm", cp_down)


def limited(name, key, limitation, err):
    """SKIP when this is a known s3s-fs limitation that the origin itself shows when probed directly."""
    if limitation:
        origin_err = t.origin_cannot_put(B, key)
        if origin_err:
            return ("skip", f"awscli/key/{name}", f"{limitation} [origin directly: {origin_err[-150:]}]")
    return ("fail", f"awscli/key/{name}", err)


def awkward(body, body_sha):
    keys = t.awkward_keys()
    data = open(body, "rb").read()

    def one(item):
        name, key, limitation = item
        res = []
        p = t.aws("s3api", "put-object", "--bucket", B, "--key", key, "--body", body, check=False)
        if p.returncode != 0:
            return [limited(name, key, limitation, f"put-object: {p.stderr.strip()[-300:]}")]
        out = os.path.join(W, f"awk-{name}.out")
        g = t.aws("s3api", "get-object", "--bucket", B, "--key", key, out, check=False)
        if g.returncode != 0:
            return [limited(name, key, limitation, f"get-object: {g.stderr.strip()[-300:]}")]
        if open(out, "rb").read() != data:
            return [("fail", f"awscli/key/{name}", "get-object body differs")]
        try:
            t.assert_at_origin(B, key, body_sha)
        except AssertionError as e:
            return [("fail", f"awscli/key/{name}", str(e))]
        res.append(("pass", f"awscli/key/{name}", ""))
        # and the same key through the high-level `aws s3 cp` download path
        if not key.endswith("/"):
            out2 = os.path.join(W, f"awk-{name}.cp")
            c = t.aws("s3", "cp", f"s3://{B}/{key}", out2, check=False)
            if c.returncode != 0 or open(out2, "rb").read() != data:
                res.append(("fail", f"awscli/key/{name}/s3-cp-down", f"rc={c.returncode} {c.stderr.strip()[-300:]}"))
            else:
                res.append(("pass", f"awscli/key/{name}/s3-cp-down", ""))
        return res

    with cf.ThreadPoolExecutor(4) as ex:
        results = list(ex.map(one, [k for k in keys]))
    stored = set()
    for item, res in zip(keys, results):
        for kind, name, why in res:
            {"pass": lambda: t.ok(name), "fail": lambda: t.fail(name, why), "skip": lambda: t.skip(name, why)}[kind]()
        if res and res[0][0] == "pass":
            stored.add(item[1])

    def listing():
        r = json.loads(t.aws("s3api", "list-objects-v2", "--bucket", B, "--output", "json").stdout)
        listed = {o["Key"] for o in r.get("Contents", [])}
        missing = [k for k in stored if k not in listed and not t.list_limitation(k)]
        assert not missing, f"list-objects-v2 lacks {[m[:40] for m in missing]}"
        for k in stored:
            lim = t.list_limitation(k)
            if lim and k not in listed:
                t.skip(f"awscli/key-list/{k[:20]!r}", lim)

    t.run_test("awscli/key-list-objects-v2", listing)


if __name__ == "__main__":
    main()
