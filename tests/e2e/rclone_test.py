#!/usr/bin/env python3
"""rclone (Debian's 1.60): mkdir, copyto 1 MB (single PUT) and 20 MB (multipart), ls/lsf, cat, copy of a
directory, sync with a changed and a removed file, deletefile, purge, and a wrong secret.

rclone is run as `env -u AWS_CA_BUNDLE rclone --config FILE ...` (it fails while AWS_CA_BUNDLE is set), with
an rclone config written to the scratch dir. Its single PUT sends `x-amz-content-sha256: UNSIGNED-PAYLOAD`
with `Expect: 100-Continue` and signs content-md5 and x-amz-meta-mtime; that is asserted from rclone's own
`--dump headers` output. Every write is checked at the origin with the origin credentials (origin_check.py).
"""

import filecmp
import os
import re
import subprocess

import e2elib as t

B = "e2e-rclone"
W = os.path.join(t.WORK, "rclone")
CFG = None

# exactly the text the project README shows
CONFIG_TEMPLATE = """[proxy]
type = s3
provider = Other
access_key_id = {access_key}
secret_access_key = {secret_key}
endpoint = {endpoint}
force_path_style = true
region = us-east-1
"""


def write_cfg(path, secret=None):
    with open(path, "w") as f:
        f.write(CONFIG_TEMPLATE.format(access_key=t.ACCESS_KEY, secret_key=secret or t.SECRET_KEY,
                                       endpoint=t.ENDPOINT))
    return path


def rclone(*args, cfg=None, check=True, timeout=180, binary=False):
    cmd = ["env", "-u", "AWS_CA_BUNDLE", "rclone", "--config", cfg or CFG,
           "--contimeout", "10s", "--timeout", "60s", *args]
    p = subprocess.run(cmd, capture_output=True, text=not binary, timeout=timeout)
    if check and p.returncode != 0:
        err = p.stderr if not binary else p.stderr.decode("utf-8", "replace")
        raise AssertionError(f"`rclone {' '.join(args)[:150]}` exited {p.returncode}: {err.strip()[-600:]}")
    return p


def dumped_requests(stderr):
    """Request heads from `--dump headers,auth` output: [(request line, {lower-case header: value})].
    rclone logs "... DEBUG : HTTP REQUEST (req 0x...)", then "... DEBUG : PUT /b/k HTTP/1.1", the header
    lines and an empty line."""
    reqs = []
    for line, block in re.findall(r"HTTP REQUEST \(req [^)]*\)\n[^\n]*? : ([A-Z]+ \S+ HTTP/1\.1)\n(.*?)\n\n", stderr, re.S):
        heads = {}
        for ln in block.splitlines():
            if ":" in ln:
                k, v = ln.split(":", 1)
                heads[k.strip().lower()] = v.strip()
        reqs.append((line, heads))
    return reqs


def single_put(path, key, expect_100):
    """copyto with --dump headers,auth; check the one PUT's head (what rclone signs) and the origin."""
    p = rclone("copyto", "--dump", "headers,auth", path, f"proxy:{B}/{key}")
    t.assert_at_origin(B, key, t.sha256_file(path), size=os.path.getsize(path))
    puts = [(rl, h) for rl, h in dumped_requests(p.stderr) if rl.startswith(f"PUT /{B}/")]
    assert len(puts) == 1, f"expected one object PUT in --dump output, saw {[rl for rl, _ in puts]}"
    rl, h = puts[0]
    assert "uploadId=" not in rl, f"expected a single PUT: {rl}"
    sha = h.get("x-amz-content-sha256")
    assert sha == "UNSIGNED-PAYLOAD", f"x-amz-content-sha256 {sha!r}, expected UNSIGNED-PAYLOAD"
    if expect_100:
        assert h.get("expect") == "100-Continue", f"Expect {h.get('expect')!r}, expected 100-Continue"
    signed = re.search(r"SignedHeaders=([^,\s]+)", h.get("authorization", ""))
    signed = signed.group(1).split(";") if signed else []
    for need in ("content-md5", "x-amz-meta-mtime"):
        assert need in signed, f"{need} not in SignedHeaders {signed}"
    meta = t.origin().head_object(Bucket=B, Key=key)["Metadata"]
    assert meta.get("mtime") == h.get("x-amz-meta-mtime"), \
        f"x-amz-meta-mtime {h.get('x-amz-meta-mtime')!r} did not reach the origin: {meta}"


def empty_delimiter_quirk():
    """The origin's own answer to a listing with an empty `delimiter=` (what rclone's recursive ListR sends),
    as a SKIP reason when s3s-fs gives first-byte CommonPrefixes and no keys; else None."""
    r = t.origin().list_objects(Bucket=B, Delimiter="")
    pres = [c["Prefix"] for c in r.get("CommonPrefixes", [])]
    if pres and not r.get("Contents") and all(len(x) == 1 for x in pres):
        return ("s3s-fs 0.14.1 treats an empty delimiter= (sent by rclone's recursive listing, ListR) as a real "
                f"delimiter: the origin itself returns first-byte CommonPrefixes {pres} and no keys")
    return None


def main():
    global CFG
    os.makedirs(W, exist_ok=True)
    CFG = write_cfg(os.path.join(W, "rclone.conf"))
    origin = t.origin()

    def mkdir():
        rclone("mkdir", f"proxy:{B}")
        origin.head_bucket(Bucket=B)

    if not t.run_test("rclone/mkdir-bucket", mkdir):
        t.ensure_bucket_at_origin(B)  # carry on, so the other tests still say something

    # ------------------------------------------------------------ copyto 1 MB (single PUT)
    one = t.write_random(os.path.join(W, "one-mb.bin"), 1024 * 1024)
    one_sha = t.sha256_file(one)

    t.run_test("rclone/copyto-1MB-single-put", single_put, one, "files/one-mb.bin", False)
    # aws-sdk-go (inside rclone) adds `Expect: 100-Continue` to PUTs of 2 MiB and more
    three = t.write_random(os.path.join(W, "three-mb.bin"), 3 * 1000 * 1000)
    t.run_test("rclone/copyto-3MB-single-put-expect-100-continue", single_put, three, "files/three-mb.bin", True)

    # ------------------------------------------------------------ copyto 20 MB (multipart, 5 MiB parts)
    big_sha = t.sha256_file(t.BIG)
    big_size = os.path.getsize(t.BIG)

    def copyto_20mb():
        rclone("copyto", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", t.BIG, f"proxy:{B}/files/big-20MB.bin")
        t.assert_at_origin(B, "files/big-20MB.bin", big_sha, size=big_size)
        etag = origin.head_object(Bucket=B, Key="files/big-20MB.bin")["ETag"].strip('"')
        assert etag.endswith("-4"), f"expected a 4-part multipart upload, origin ETag {etag}"

    t.run_test("rclone/copyto-20MB-multipart", copyto_20mb)

    want_ls = {"files/one-mb.bin": 1024 * 1024, "files/three-mb.bin": 3 * 1000 * 1000, "files/big-20MB.bin": big_size}

    def parse_ls(out):
        got = {}
        for ln in out.splitlines():
            parts = ln.split(None, 1)
            if len(parts) == 2 and parts[0].isdigit():
                got[parts[1]] = int(parts[0])
        return got

    def ls_walk():
        # --disable ListR: one delimiter=/ listing per directory (see rclone/ls-recursive-listr)
        out = rclone("ls", "--disable", "ListR", f"proxy:{B}").stdout
        got = parse_ls(out)
        assert got == want_ls, f"rclone ls gave {got}, want {want_ls}"

    t.run_test("rclone/ls", ls_walk)

    # plain `rclone ls` lists the whole bucket at once (ListR) with an empty `delimiter=`
    try:
        got = parse_ls(rclone("ls", f"proxy:{B}").stdout)
        if got == want_ls:
            t.ok("rclone/ls-recursive-listr")
        else:
            why = empty_delimiter_quirk()
            if why:
                t.skip("rclone/ls-recursive-listr", why)
            else:
                t.fail("rclone/ls-recursive-listr", f"rclone ls gave {got}, want {want_ls}")
    except Exception as e:  # noqa: BLE001
        t.fail("rclone/ls-recursive-listr", e if isinstance(e, AssertionError) else f"{type(e).__name__}: {e}")

    def lsf():
        out = rclone("lsf", f"proxy:{B}").stdout.split()
        assert out == ["files/"], f"rclone lsf proxy:{B} gave {out}"
        want = ["big-20MB.bin", "one-mb.bin", "three-mb.bin"]
        out = sorted(rclone("lsf", f"proxy:{B}/files/").stdout.split())
        assert out == want, f"rclone lsf proxy:{B}/files/ gave {out}"
        out = rclone("lsf", "proxy:").stdout.split()
        assert f"{B}/" in out, f"rclone lsf proxy: (buckets) lacks {B}/: {out}"
        # Without the trailing slash rclone first HEADs "files" (is the root a file?); s3s-fs answers a key that
        # is a directory on its disk with 500, which rclone retries 10 times (~80 s) and then treats as "not a
        # file". With one low-level retry the listing must still be right.
        out = sorted(rclone("lsf", "--low-level-retries", "1", f"proxy:{B}/files").stdout.split())
        assert out == want, f"rclone lsf proxy:{B}/files gave {out}"

    t.run_test("rclone/lsf", lsf)

    def cat():
        p = rclone("cat", f"proxy:{B}/files/one-mb.bin", binary=True)
        assert p.stdout == open(one, "rb").read(), f"cat of 1 MB gave {len(p.stdout)} different bytes"
        p = rclone("cat", f"proxy:{B}/files/big-20MB.bin", binary=True, timeout=240)
        assert t.sha256_bytes(p.stdout) == big_sha, f"cat of 20 MB gave {len(p.stdout)} different bytes"
        p = rclone("cat", "--offset", "1000", "--count", "5000", f"proxy:{B}/files/one-mb.bin", binary=True)
        assert p.stdout == open(one, "rb").read()[1000:6000], "ranged cat differs"

    t.run_test("rclone/cat-compare", cat)

    # ------------------------------------------------------------ copy a directory of 20 small files, sync
    src = os.path.join(W, "tree")
    shas = {}
    for i in range(20):
        rel = f"f{i:02d}.txt" if i < 14 else f"sub/g{i:02d}.dat"
        p = os.path.join(src, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        data = os.urandom(200 + i * 41)
        open(p, "wb").write(data)
        shas[rel] = t.sha256_bytes(data)

    def check_tree(prefix):
        bad = []
        for rel, sha in shas.items():
            try:
                t.assert_at_origin(B, f"{prefix}/{rel}", sha)
            except AssertionError as e:
                bad.append(str(e))
        assert not bad, f"{len(bad)} of {len(shas)} wrong at origin, e.g. {bad[0]}"

    def copy_dir():
        rclone("copy", src, f"proxy:{B}/tree/")
        check_tree("tree")
        n = origin.list_objects_v2(Bucket=B, Prefix="tree/").get("KeyCount", 0)
        assert n == 20, f"origin has {n} objects under tree/, want 20"

    t.run_test("rclone/copy-dir-20-files", copy_dir)

    def sync():
        changed, removed = "f03.txt", "sub/g15.dat"
        data = os.urandom(777)  # a different size as well as different bytes
        open(os.path.join(src, changed), "wb").write(data)
        shas[changed] = t.sha256_bytes(data)
        os.remove(os.path.join(src, removed))
        del shas[removed]
        out = rclone("sync", "-v", src, f"proxy:{B}/tree/").stderr
        check_tree("tree")
        t.assert_absent_at_origin(B, f"tree/{removed}")
        n = origin.list_objects_v2(Bucket=B, Prefix="tree/").get("KeyCount", 0)
        assert n == 19, f"origin has {n} objects under tree/ after sync, want 19"
        copied = re.findall(r"INFO\s*:\s*(\S+): Copied", out)
        assert copied == [changed], f"sync copied {copied}, want only {changed}"
        # and a sync with nothing changed copies nothing
        out = rclone("sync", "-v", src, f"proxy:{B}/tree/").stderr
        assert "Copied" not in out and "Deleted" not in out, f"second sync did something: {out[-300:]!r}"
        dst = os.path.join(W, "tree.down")
        rclone("sync", f"proxy:{B}/tree/", dst)
        for rel in shas:
            assert filecmp.cmp(os.path.join(src, rel), os.path.join(dst, rel), shallow=False), f"{rel} differs"
        assert not os.path.exists(os.path.join(dst, removed)), f"{removed} came back down"

    t.run_test("rclone/sync-changed-removed", sync)

    def deletefile():
        rclone("deletefile", f"proxy:{B}/files/one-mb.bin")
        t.assert_absent_at_origin(B, "files/one-mb.bin")
        t.assert_at_origin(B, "files/big-20MB.bin", big_sha)  # the neighbour is still there

    t.run_test("rclone/deletefile", deletefile)

    # ------------------------------------------------------------ negative: wrong secret
    def wrong_secret():
        bad = write_cfg(os.path.join(W, "rclone-wrong-secret.conf"), secret="definitely-not-the-secret")
        p = rclone("copyto", "--retries", "1", "--low-level-retries", "1", one, f"proxy:{B}/neg/wrong-secret.bin",
                   cfg=bad, check=False, timeout=120)
        assert p.returncode != 0, "copyto with a wrong secret succeeded"
        assert "SignatureDoesNotMatch" in p.stderr or "403" in p.stderr, \
            f"error lacks SignatureDoesNotMatch / 403: {p.stderr.strip()[-300:]!r}"
        t.assert_absent_at_origin(B, "neg/wrong-secret.bin")
        # rclone gives up at its first HEAD (403); force the object PUT itself to be sent with the bad signature
        p = rclone("copyto", "--retries", "1", "--low-level-retries", "1", "--no-check-dest", "--s3-no-check-bucket",
                   "--dump", "headers", one, f"proxy:{B}/neg/wrong-secret-put.bin", cfg=bad, check=False, timeout=120)
        assert p.returncode != 0, "copyto --no-check-dest with a wrong secret succeeded"
        assert re.search(rf"DEBUG : PUT /{B}/neg/wrong-secret-put\.bin HTTP/1\.1", p.stderr), "no object PUT was sent"
        assert "SignatureDoesNotMatch" in p.stderr, f"PUT error lacks SignatureDoesNotMatch: {p.stderr.strip()[-300:]!r}"
        t.assert_absent_at_origin(B, "neg/wrong-secret-put.bin")
        p = rclone("ls", "--retries", "1", "--low-level-retries", "1", f"proxy:{B}", cfg=bad, check=False, timeout=120)
        assert p.returncode != 0, "ls with a wrong secret succeeded"
        n = origin.list_objects_v2(Bucket=B, Prefix="neg/").get("KeyCount", 0)
        assert n == 0, f"origin has {n} objects under neg/"

    t.run_test("rclone/neg-wrong-secret", wrong_secret)

    # ------------------------------------------------------------ purge
    def left(prefix=""):
        return origin.list_objects_v2(Bucket=B, Prefix=prefix).get("KeyCount", 0)

    # plain `rclone purge` of a directory: the s3 backend's own Purge lists recursively (empty delimiter=)
    try:
        rclone("purge", f"proxy:{B}/tree/")
        n = left("tree/")
        why = empty_delimiter_quirk() if n else None
        if n == 0:
            t.ok("rclone/purge-dir")
        elif why:
            t.skip("rclone/purge-dir", f"rclone exited 0 but deleted nothing ({n} objects left under tree/): {why}")
        else:
            t.fail("rclone/purge-dir", f"origin still has {n} objects under tree/")
    except Exception as e:  # noqa: BLE001
        t.fail("rclone/purge-dir", e if isinstance(e, AssertionError) else f"{type(e).__name__}: {e}")

    # the same with --disable Purge,ListR: rclone walks the tree (delimiter=/), deletes each file, removes dirs
    def purge_dir_walk():
        rclone("copy", src, f"proxy:{B}/walk/")
        assert left("walk/") == len(shas), f"copy to walk/ left {left('walk/')} objects, want {len(shas)}"
        rclone("purge", "--disable", "Purge,ListR", f"proxy:{B}/walk/")
        assert left("walk/") == 0, f"origin still has {left('walk/')} objects under walk/"
        t.assert_at_origin(B, "files/big-20MB.bin", big_sha)  # outside the purged directory

    t.run_test("rclone/purge-dir-walk", purge_dir_walk)

    def purge_bucket():
        rclone("purge", "--disable", "Purge,ListR", f"proxy:{B}")
        from botocore.exceptions import ClientError

        try:
            origin.head_bucket(Bucket=B)
        except ClientError:
            return
        raise AssertionError(f"bucket {B} still exists at the origin after purge ({left()} objects)")

    t.run_test("rclone/purge-bucket-walk", purge_bucket)
    t.finish()


if __name__ == "__main__":
    main()
