#!/usr/bin/env python3
"""Turn the e2e results TSV (written by run.sh) into a Markdown "client x operation x result" table.

  tests/e2e/table.py [RESULTS.tsv] [--title TEXT] [--date [YYYY-MM-DD]] [--versions] > RESULTS.md

RESULTS.tsv defaults to tests/e2e/last-results.tsv; each line is
"group<TAB>test<TAB>PASS|FAIL|SKIP<TAB>reason" (lines starting with # are ignored). One row per
client/operation: ✅ pass, ❌ fail, ⏭ skip; skip and failure reasons become footnotes. The date defaults to
the TSV's modification date; --date with no value gives today's. --versions adds the versions of the installed clients (best effort).
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

CLIENTS = {  # group -> client column
    "proxy": "s3-resign-proxy",
    "origin": "s3s-fs origin",
    "smoke": "aws-cli (smoke)",
    "awscli": "aws-cli",
    "boto3": "boto3",
    "s3cmd": "s3cmd",
    "rclone": "rclone",
    "js": "AWS SDK for JavaScript v3",
    "minio-go": "minio-go",
}
TLS_CLIENTS = [  # tls group: test-name prefix -> client
    ("native-", "built-in TLS (TLS_CERT/TLS_KEY), aws-cli"),
    ("boto3-", "boto3 over HTTPS (HAProxy)"),
    ("awscli-", "aws-cli over HTTPS (HAProxy)"),
    ("haproxy-", "HAProxy 2.6 health check"),
    ("proxy-", "HAProxy 2.6 health check"),
]
VANITY_CLIENTS = [  # vanity group: test-name prefix -> client (virtual-hosted on s3.vanity.test)
    ("js-", "AWS SDK for JavaScript v3, virtual-hosted"),
    ("boto3-", "boto3, addressing_style=virtual"),
    ("awscli-", "aws-cli, addressing_style=virtual"),
    ("s3cmd-", "s3cmd, host_bucket"),
    ("raw-", "vanity: bad bucket labels, ALLOWED_HOSTS"),
    ("neg-", "vanity: bad bucket labels, ALLOWED_HOSTS"),
]
ICON = {"PASS": "✅", "FAIL": "❌", "SKIP": "⏭"}
RANK = {"PASS": 0, "SKIP": 1, "FAIL": 2}  # a test reported twice keeps its worst result


def client_and_op(group, test):
    if group == "tls":
        for prefix, client in TLS_CLIENTS:
            if test.startswith(prefix):
                return client, test[len(prefix):] if prefix != "proxy-" else test
        return "HTTPS via HAProxy", test
    if group == "vanity":
        for prefix, client in VANITY_CLIENTS:
            if test.startswith(prefix):
                return client, test[len(prefix):] if prefix not in ("raw-", "neg-") else test
        return "vanity", test
    return CLIENTS.get(group, group), test


def read(path):
    rows = {}  # (group, test) -> (status, reason); insertion order = run order
    with open(path, encoding="utf-8", errors="replace") as f:
        for ln in f:
            ln = ln.rstrip("\n")
            if not ln or ln.startswith("#"):
                continue
            parts = ln.split("\t")
            if len(parts) < 3 or parts[2] not in RANK:
                continue
            group, test, status = parts[:3]
            reason = parts[3] if len(parts) > 3 else ""
            old = rows.get((group, test))
            if old is None or RANK[status] > RANK[old[0]]:
                rows[(group, test)] = (status, reason)
    return rows


def cell(s):
    return s.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def run(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except Exception:  # noqa: BLE001
        return ""
    return (p.stdout or p.stderr).strip().splitlines()[0] if (p.stdout or p.stderr).strip() else ""


def versions():
    v = []
    aws = run(["aws", "--version"])
    if aws:
        v.append(("aws-cli", aws.split()[0].split("/")[1] + " (" + aws.split()[-1] + ")"))
    b = run([sys.executable, "-c", "import boto3, botocore; print(boto3.__version__, botocore.__version__)"])
    if b:
        v.append(("boto3", "%s (botocore %s)" % tuple(b.split())))
    s = run(["s3cmd", "--version"])
    if s:
        v.append(("s3cmd", s.split()[-1]))
    r = run(["rclone", "version"])  # "rclone v1.60.1-DEV"
    if r:
        pkg = run(["dpkg-query", "-W", "-f=${Version}", "rclone"])
        v.append(("rclone", r.split()[-1] + (f" (Debian {pkg})" if pkg else "")))
    try:
        lock = json.load(open(os.path.join(HERE, "node", "package-lock.json")))
        sdk = lock["packages"]["node_modules/@aws-sdk/client-s3"]["version"]
        node = run(["node", "--version"])
        v.append(("AWS SDK for JavaScript v3", f"@aws-sdk/client-s3 {sdk}" + (f" (Node {node})" if node else "")))
    except Exception:  # noqa: BLE001
        pass
    mg = run(["dpkg-query", "-W", "-f=${Version}", "golang-github-minio-minio-go-v7-dev"])
    if mg:
        v.append(("minio-go", mg.split("-")[0]))
    h = run(["haproxy", "-v"]) or run(["/usr/sbin/haproxy", "-v"])
    m = re.search(r"version (\S+)", h)
    if m:
        v.append(("HAProxy", m.group(1)))
    v.append(("origin", "s3s-fs 0.14.1"))
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tsv", nargs="?", default=os.path.join(HERE, "last-results.tsv"))
    ap.add_argument("--title", default="End-to-end results: real S3 clients through s3-resign-proxy")
    ap.add_argument("--date", nargs="?", const="today", default=None,
                    help="date in the heading: YYYY-MM-DD, or no value for today (default: the TSV's mtime)")
    ap.add_argument("--versions", action="store_true")
    a = ap.parse_args()

    rows = read(a.tsv)
    if a.date == "today":
        date = datetime.date.today().isoformat()
    else:
        date = a.date or datetime.datetime.fromtimestamp(os.path.getmtime(a.tsv)).strftime("%Y-%m-%d")
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    per_client = {}
    notes = {}  # footnote text -> number
    body = {}  # client -> its rows, clients in order of first appearance
    groups = []
    for (group, test), (status, reason) in rows.items():
        if group not in groups:
            groups.append(group)
        counts[status] += 1
        client, op = client_and_op(group, test)
        pc = per_client.setdefault(client, {"PASS": 0, "FAIL": 0, "SKIP": 0})
        pc[status] += 1
        result = ICON[status]
        if status != "PASS":
            text = (f"{client} / `{op}` failed: " if status == "FAIL" else "") + (reason or "(no reason given)")
            if status == "SKIP":
                text = reason or "(no reason given)"
            n = notes.setdefault(text, len(notes) + 1)
            result += f"[^{n}]"
        code = op.replace("|", "\\|")
        body.setdefault(client, []).append(f"| {cell(client)} | `{code}` | {result} |")

    out = [f"# {a.title}", ""]
    out.append(f"Run of {date}: `tests/e2e/run.sh` (groups: {', '.join(g for g in groups if g not in ('proxy', 'origin'))}), **{counts['PASS']} passed, {counts['FAIL']} failed**, "
               f"{counts['SKIP']} skipped. Every write was checked at the origin (s3s-fs) byte for byte.")
    out.append("")
    if a.versions:
        out.append("Versions: " + "; ".join(f"{k} {v}" for k, v in versions()) + ".")
        out.append("")
    out += ["| Client | ✅ | ❌ | ⏭ |", "| --- | ---: | ---: | ---: |"]
    for client, c in per_client.items():
        out.append(f"| {cell(client)} | {c['PASS']} | {c['FAIL']} | {c['SKIP']} |")
    out += ["", "| Client | Operation | Result |", "| --- | --- | :---: |"]
    for lines in body.values():
        out += lines
    out.append("")
    if notes:
        out.append("✅ passed, ❌ failed, ⏭ skipped; the footnotes give the reasons.")
        out.append("")
        for text, n in notes.items():
            out.append(f"[^{n}]: {cell(text)}")
        out.append("")
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
