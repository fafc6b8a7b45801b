#!/usr/bin/env python3
"""smoke: aws-cli mb / cp 20 MB up+down (multipart) / ls / rm, every step checked at the origin."""

import filecmp
import os

import e2elib as t

B = "e2e-smoke"
KEY = "big/20MB.bin"


def main():
    big = t.BIG
    big_sha = t.sha256_file(big)
    size = os.path.getsize(big)

    def mb():
        t.aws("s3", "mb", f"s3://{B}")
        t.origin().head_bucket(Bucket=B)

    if not t.run_test("smoke/mb", mb):
        t.ensure_bucket_at_origin(B)  # carry on, so the other tests still say something

    def cp_up():
        t.aws("s3", "cp", big, f"s3://{B}/{KEY}")
        t.assert_at_origin(B, KEY, big_sha, size=size)

    up = t.run_test("smoke/cp-up-20MB-multipart", cp_up)

    def cp_down():
        dst = os.path.join(t.WORK, "smoke-down.bin")
        t.aws("s3", "cp", f"s3://{B}/{KEY}", dst)
        assert filecmp.cmp(big, dst, shallow=False), "downloaded file differs from the uploaded one"

    if up:
        t.run_test("smoke/cp-down-20MB-cmp", cp_down)
    else:
        t.fail("smoke/cp-down-20MB-cmp", "upload failed")

    def ls():
        out = t.aws("s3", "ls", f"s3://{B}/big/").stdout
        assert f"{size} 20MB.bin" in " ".join(out.split()), f"ls output lacks '{size} 20MB.bin': {out!r}"
        out = t.aws("s3", "ls").stdout
        assert B in out.split(), f"`aws s3 ls` does not list bucket {B}: {out!r}"

    t.run_test("smoke/ls", ls)

    def rm():
        t.aws("s3", "rm", f"s3://{B}/{KEY}")
        t.assert_absent_at_origin(B, KEY)
        out = t.aws("s3", "ls", f"s3://{B}/big/", check=False).stdout
        assert "20MB.bin" not in out, f"still listed after rm: {out!r}"

    t.run_test("smoke/rm", rm)
    t.finish()


if __name__ == "__main__":
    main()
