#!/usr/bin/env python3
"""Check objects directly at the origin (s3s-fs), bypassing the proxy, with the ORIGIN credentials.

CLI:
  origin_check.py exists BUCKET KEY [SHA256] [--size N]   exit 0 if present (and its body has this sha256)
  origin_check.py absent BUCKET KEY                       exit 0 if the origin has no such object
  origin_check.py sha256 BUCKET KEY                       print the sha256 of the object's body
  origin_check.py mkbucket BUCKET -                      create the bucket at the origin if missing
  origin_check.py bucket BUCKET -                        exit 0 if the bucket exists at the origin
  origin_check.py nobucket BUCKET -                      exit 0 if the origin has no such bucket
  origin_check.py canput BUCKET KEY                       exit 0 if the origin itself can store and return
                                                          this key (probe put/get/delete): tells an origin
                                                          limitation apart from a proxy bug
  origin_check.py batch < lines                           one JSON object per line:
        {"op": "exists"|"absent"|"bucket"|"nobucket"|..., "bucket": ..., "key": ..., "sha256": ..., "name": ...}
        prints "PASS name" / "FAIL name: reason" per line; exit 1 if any failed
  Keys may be given as "b64:<base64 of utf-8>" to avoid shell quoting trouble.

Environment: E2E_ORIGIN_ENDPOINT, E2E_ORIGIN_ACCESS_KEY, E2E_ORIGIN_SECRET_KEY, E2E_REGION.
"""

import base64
import hashlib
import json
import os
import sys

_client = None


def client():
    global _client
    if _client is None:
        import boto3
        from botocore.config import Config

        _client = boto3.client(
            "s3",
            endpoint_url=os.environ["E2E_ORIGIN_ENDPOINT"],
            aws_access_key_id=os.environ["E2E_ORIGIN_ACCESS_KEY"],
            aws_secret_access_key=os.environ["E2E_ORIGIN_SECRET_KEY"],
            region_name=os.environ.get("E2E_REGION", "us-east-1"),
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, signature_version="s3v4",
                          connect_timeout=10, read_timeout=60),
        )
    return _client


def _decode_key(key):
    if key.startswith("b64:"):
        return base64.b64decode(key[4:]).decode("utf-8")
    return key


def _error_code(e):
    r = getattr(e, "response", None) or {}
    return str(r.get("Error", {}).get("Code", "")), r.get("ResponseMetadata", {}).get("HTTPStatusCode")


def body_sha256(bucket, key):
    """sha256 and length of the object's body at the origin, or None if it does not exist."""
    from botocore.exceptions import ClientError

    try:
        r = client().get_object(Bucket=bucket, Key=key)
    except ClientError as e:
        code, status = _error_code(e)
        if code in ("NoSuchKey", "404", "NotFound") or status == 404:
            return None
        raise
    h = hashlib.sha256()
    n = 0
    body = r["Body"]
    for chunk in iter(lambda: body.read(1 << 20), b""):
        h.update(chunk)
        n += len(chunk)
    return h.hexdigest(), n


def assert_exists(bucket, key, sha256=None, *, size=None):
    got = body_sha256(bucket, key)
    if got is None:
        raise AssertionError(f"origin: {bucket}/{key!r} does not exist")
    digest, n = got
    if sha256 and digest != sha256:
        raise AssertionError(f"origin: {bucket}/{key!r} sha256 {digest} ({n} bytes) != expected {sha256}")
    if size is not None and n != size:
        raise AssertionError(f"origin: {bucket}/{key!r} is {n} bytes, expected {size}")


def assert_absent(bucket, key):
    if body_sha256(bucket, key) is not None:
        raise AssertionError(f"origin: {bucket}/{key!r} exists but should not")


def can_put(bucket, key):
    """None if the origin (directly) can store, return and delete this key; else the error text."""
    c = client()
    body = b"origin probe"
    try:
        c.put_object(Bucket=bucket, Key=key, Body=body)
        got = c.get_object(Bucket=bucket, Key=key)["Body"].read()
        c.delete_object(Bucket=bucket, Key=key)
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"
    return None if got == body else "probe read back different bytes"


def assert_can_put(bucket, key):
    err = can_put(bucket, key)
    if err:
        raise AssertionError(f"origin itself cannot store {key[:60]!r}: {err}")


def ensure_bucket(bucket):
    """Create the bucket directly at the origin if it is not there (so a group can go on after its
    client failed to create it)."""
    from botocore.exceptions import ClientError

    try:
        client().head_bucket(Bucket=bucket)
    except ClientError:
        client().create_bucket(Bucket=bucket)


def bucket_exists(bucket):
    from botocore.exceptions import ClientError

    try:
        client().head_bucket(Bucket=bucket)
    except ClientError as e:
        code, status = _error_code(e)
        if status == 404 or code in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
    return True


def _run(op, bucket, key, sha=None, size=None):
    if op == "mkbucket":
        ensure_bucket(bucket)
    elif op == "bucket":
        if not bucket_exists(bucket):
            raise AssertionError(f"origin: bucket {bucket!r} does not exist")
    elif op == "nobucket":
        if bucket_exists(bucket):
            raise AssertionError(f"origin: bucket {bucket!r} exists but should not")
    elif op == "canput":
        assert_can_put(bucket, key)
    elif op == "exists":
        assert_exists(bucket, key, sha or None, size=size)
    elif op == "absent":
        assert_absent(bucket, key)
    else:
        raise ValueError(f"unknown op {op}")


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    op = argv[1]
    try:
        if op == "batch":
            failed = 0
            for line in iter(sys.stdin.readline, ""):  # line by line, so callers can talk to it
                line = line.strip()
                if not line:
                    continue
                c = json.loads(line)
                name = c.get("name") or f"origin {c['op']} {c['bucket']}/{c['key']}"
                try:
                    _run(c["op"], c["bucket"], _decode_key(c["key"]), c.get("sha256"), c.get("size"))
                    print(f"PASS {name}", flush=True)
                except Exception as e:  # noqa: BLE001
                    failed += 1
                    print(f"FAIL {name}: {' '.join(str(e).split())}", flush=True)
            return 1 if failed else 0
        args = [a for a in argv[2:] if not a.startswith("--")]
        size = None
        if "--size" in argv:
            size = int(argv[argv.index("--size") + 1])
            args.remove(str(size))
        if op == "sha256":
            got = body_sha256(args[0], _decode_key(args[1]))
            if got is None:
                print("absent")
                return 1
            print(got[0])
            return 0
        _run(op, args[0], _decode_key(args[1]), args[2] if len(args) > 2 else None, size)
        return 0
    except AssertionError as e:
        print(str(e), file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))
