"""Shared helpers for the Python-driven e2e groups.

Environment (set by run.sh):
  E2E_ENDPOINT        where clients talk (the proxy, or the origin with E2E_DIRECT=1)
  E2E_ACCESS_KEY      credentials the clients sign with
  E2E_SECRET_KEY
  E2E_ORIGIN_ENDPOINT the s3s-fs origin, for checks that bypass the proxy
  E2E_ORIGIN_ACCESS_KEY / E2E_ORIGIN_SECRET_KEY
  E2E_REGION          us-east-1
  E2E_WORK            scratch directory for this run
  E2E_BIG             path of a shared 20 MB random file
"""

import hashlib
import os
import subprocess
import sys
import traceback

import origin_check

ENDPOINT = os.environ["E2E_ENDPOINT"]
ACCESS_KEY = os.environ["E2E_ACCESS_KEY"]
SECRET_KEY = os.environ["E2E_SECRET_KEY"]
REGION = os.environ.get("E2E_REGION", "us-east-1")
WORK = os.environ["E2E_WORK"]
BIG = os.environ.get("E2E_BIG", "")
DIRECT = os.environ.get("E2E_DIRECT", "") == "1"

from keys import S3SFS_MAX_KEY, awkward_keys, list_limitation  # noqa: E402,F401


_counts = {"pass": 0, "fail": 0, "skip": 0}


def _out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def ok(name):
    _counts["pass"] += 1
    _out(f"PASS {name}")


def fail(name, reason):
    _counts["fail"] += 1
    reason = " ".join(str(reason).split())
    if len(reason) > 400:
        reason = reason[:400] + "..."
    _out(f"FAIL {name}: {reason}")


def skip(name, reason):
    _counts["skip"] += 1
    _out(f"SKIP {name}: {reason}")


def check(name, cond, reason="check failed"):
    if cond:
        ok(name)
    else:
        fail(name, reason)
    return bool(cond)


def run_test(name, fn, *args, **kw):
    """Run fn; PASS if it returns without raising (and does not return a failure string)."""
    try:
        r = fn(*args, **kw)
    except AssertionError as e:
        fail(name, e or "assertion failed")
        return False
    except Exception as e:  # noqa: BLE001
        fail(name, f"{type(e).__name__}: {e}")
        if os.environ.get("E2E_DEBUG"):
            traceback.print_exc()
        return False
    if isinstance(r, str) and r:
        fail(name, r)
        return False
    ok(name)
    return True


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


def write_random(path, size):
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n
    return path


def origin():
    return origin_check.client()


def assert_at_origin(bucket, key, sha256=None, *, size=None):
    """Raise AssertionError unless the object exists at the origin (with this sha256)."""
    origin_check.assert_exists(bucket, key, sha256, size=size)


def ensure_bucket_at_origin(bucket):
    origin_check.ensure_bucket(bucket)


def origin_cannot_put(bucket, key):
    """The origin's own error for this key (probing it directly), or None if the origin can store it."""
    return origin_check.can_put(bucket, key)


def assert_absent_at_origin(bucket, key):
    origin_check.assert_absent(bucket, key)


def client_env(access_key=None, secret_key=None):
    """Environment for running aws-cli against E2E_ENDPOINT."""
    env = dict(os.environ)
    env["AWS_ACCESS_KEY_ID"] = access_key or ACCESS_KEY
    env["AWS_SECRET_ACCESS_KEY"] = secret_key or SECRET_KEY
    env["AWS_DEFAULT_REGION"] = REGION
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    return env


def aws(*args, secret=None, timeout=180, check=True, input=None, endpoint=None, env=None):
    """Run `aws --endpoint-url E2E_ENDPOINT args...`; return CompletedProcess (text).
    endpoint: another endpoint URL; env: extra environment variables (e.g. AWS_CA_BUNDLE)."""
    cmd = ["aws", "--endpoint-url", endpoint or ENDPOINT, *args]
    e = client_env(secret_key=secret)
    e.update(env or {})
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"`aws {' '.join(args)[:200]}` exited {p.returncode}: {(p.stderr or p.stdout).strip()[-600:]}")
    return p


def boto3_client(secret=None, endpoint=None, verify=None, **cfg):
    """boto3 S3 client for E2E_ENDPOINT (or endpoint; verify: CA bundle for https)."""
    import boto3
    from botocore.config import Config

    conf = dict(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=120)
    conf.update(cfg)
    return boto3.client(
        "s3",
        endpoint_url=endpoint or ENDPOINT,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret or SECRET_KEY,
        region_name=REGION,
        config=Config(**conf),
        verify=verify,
    )


def finish():
    c = _counts
    _out(f"# {c['pass']} passed, {c['fail']} failed, {c['skip']} skipped")
    sys.exit(1 if c["fail"] else 0)


# ---------------------------------------------------------------------------------------------- processes
# For groups that start processes of their own (cdn, pool): free ports, children that die with the test
# process, their logs in a work directory, and a wait for their port.
def free_port(taken):
    """A free 127.0.0.1 port not in the set `taken`, which it is added to."""
    import socket

    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p not in taken:
            taken.add(p)
            return p


def find_bin(name):
    import shutil

    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)),
                                      None)


def _die_with_parent():
    """In a child: SIGTERM when this test process dies (a group timeout kills only us)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
    except Exception:  # noqa: BLE001 (not Linux: stop_all at exit still stops them on a normal exit)
        pass


class Procs:
    """The processes a group starts, each logging to WORK/NAME.log; all stopped at exit."""

    def __init__(self, work):
        import atexit

        self.work = work
        self.procs = []
        atexit.register(self.stop_all)

    def spawn(self, name, argv, env=None):
        log = open(os.path.join(self.work, name + ".log"), "ab")  # noqa: SIM115
        p = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             preexec_fn=_die_with_parent)
        self.procs.append((name, p))
        return p

    def stop_all(self):
        for _name, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for _name, p in reversed(self.procs):
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def wait_port(self, name, proc, port, secs=30):
        import socket
        import time

        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = open(os.path.join(self.work, name + ".log"), errors="replace").read()[-600:]
                raise RuntimeError(f"{name} exited with {proc.returncode} at start: {tail}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {secs} s")
