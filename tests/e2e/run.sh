#!/usr/bin/env bash
# End-to-end tests of s3-resign-proxy with real S3 clients against an s3s-fs origin.
#
#   tests/e2e/run.sh                 all groups
#   tests/e2e/run.sh smoke js        only these groups (smoke awscli boto3 s3cmd rclone js minio-go hostile vanity cdn pool access browser tls)
#   E2E_DIRECT=1 tests/e2e/run.sh    clients talk straight to s3s-fs with the origin credentials (no proxy)
#
# Other knobs: E2E_CACHE (default ~/.cache/s3rp-e2e), E2E_KEEP=1 (keep the scratch dir),
# E2E_WIRELOG=1 (put tests/e2e/wirelog.py between clients and the endpoint, and between the proxy and the
# origin; request heads go to $WORK/wire.log and $WORK/origin-wire.log, which are then kept), E2E_NO_BUILD=1 (do not run cargo build), E2E_PROXY_BIN=path (run
# this proxy binary instead of target/release/s3-resign-proxy; implies no build), E2E_FAIL_FAST=1
# (stop after the first failing group), E2E_GROUP_TIMEOUT (seconds per group, default 300), RUST_LOG,
# E2E_RESULTS (TSV of every result, "group<TAB>test<TAB>PASS|FAIL|SKIP<TAB>reason"; default
# $WORK/results.tsv; copied to tests/e2e/last-results.tsv at the end; tests/e2e/table.py makes Markdown of it).
#
# Last line of output is exactly "N passed, M failed"; exit status is non-zero when M > 0.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${E2E_CACHE:-$HOME/.cache/s3rp-e2e}
DIRECT=${E2E_DIRECT:-0}
ALL_GROUPS=(smoke awscli boto3 s3cmd rclone js minio-go hostile vanity cdn pool access browser tls) # tls last: it stops and restarts the origin
GROUP_TIMEOUT=${E2E_GROUP_TIMEOUT:-300}
export DEBIAN_FRONTEND=noninteractive

PASSED=0
FAILED=0
SKIPPED=0
SUMMARY=()
PIDS=()
WORK=""
RESULTS=""

say() { printf '%s\n' "$*"; }
record() { # STATUS NAME [REASON]: one TSV line "group<TAB>test<TAB>STATUS<TAB>reason" in $RESULTS
  [ -n "$RESULTS" ] || return 0
  local name=$2 reason=${3:-}
  reason=${reason//$'\t'/ }
  reason=${reason//$'\n'/ }
  printf '%s\t%s\t%s\t%s\n' "${name%%/*}" "${name#*/}" "$1" "$reason" >>"$RESULTS"
}
pass() { PASSED=$((PASSED + 1)); say "PASS $1"; record PASS "$1"; }
fail() { FAILED=$((FAILED + 1)); say "FAIL $1: $2"; record FAIL "$1" "$2"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- group selection
GROUPS_TO_RUN=()
if [ $# -eq 0 ]; then
  GROUPS_TO_RUN=("${ALL_GROUPS[@]}")
else
  for g in "$@"; do
    case " ${ALL_GROUPS[*]} " in
      *" $g "*) GROUPS_TO_RUN+=("$g") ;;
      *) say "unknown group '$g' (groups: ${ALL_GROUPS[*]})" >&2; exit 2 ;;
    esac
  done
fi
want() { case " ${GROUPS_TO_RUN[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---------------------------------------------------------------- cleanup
cleanup() {
  local rc=$?
  # the tls group may have restarted the origin: its current pid is in $WORK/origin.pid
  if [ -n "$WORK" ] && [ -s "$WORK/origin.pid" ]; then
    local opid
    opid=$(cat "$WORK/origin.pid")
    case " ${PIDS[*]} " in *" $opid "*) ;; *) PIDS+=("$opid") ;; esac
  fi
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done # non-children
  done
  if [ -n "$RESULTS" ] && [ -f "$RESULTS" ] && [ "$RESULTS" != "$HERE/last-results.tsv" ]; then
    cp "$RESULTS" "$HERE/last-results.tsv" 2>/dev/null || true
  fi
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    if [ "${E2E_KEEP:-0}" = 1 ] || [ "$FAILED" -gt 0 ] || [ "${E2E_WIRELOG:-0}" = 1 ]; then
      rm -rf "$WORK/origin-data" "$WORK"/*.bin 2>/dev/null || true
      say "# logs kept in $WORK" >&2
    else
      rm -rf "$WORK"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- installs (idempotent)
declare -A BROKEN=()   # client -> reason it could not be installed
APT_UPDATED=0
apt_install() {
  if ! command -v apt-get >/dev/null; then
    say "# apt-get not available; cannot install $*" >&2
    return 1
  fi
  if [ "$APT_UPDATED" = 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    APT_UPDATED=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >"$CACHE/apt.log" 2>&1 ||
    { tail -5 "$CACHE/apt.log" >&2; return 1; }
}

install_python() {
  # aws-cli (v1) and boto3; boto3 is also what origin_check.py uses, so every group needs it.
  if [ -x "$CACHE/venv/bin/aws" ]; then
    export PATH="$CACHE/venv/bin:$PATH"
  fi
  if command -v aws >/dev/null && python3 -c 'import boto3' 2>/dev/null; then
    return 0
  fi
  if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt_install python3 python3-venv python3-pip || return 1
  fi
  python3 -m venv "$CACHE/venv" >/dev/null || return 1
  "$CACHE/venv/bin/pip" install -q awscli boto3 >"$CACHE/pip.log" 2>&1 || { tail -5 "$CACHE/pip.log" >&2; return 1; }
  export PATH="$CACHE/venv/bin:$PATH"
  command -v aws >/dev/null && python3 -c 'import boto3'
}

install_curl() { command -v curl >/dev/null || apt_install curl ca-certificates; }

install_s3cmd() { command -v s3cmd >/dev/null || apt_install s3cmd; }

install_rclone() { command -v rclone >/dev/null || apt_install rclone; }

install_haproxy() { # HAProxy (TLS terminator for the tls group, load balancer for cdn and pool) and openssl (the tls certificate)
  local pkgs=()
  command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || pkgs+=(haproxy)
  command -v openssl >/dev/null || pkgs+=(openssl)
  [ ${#pkgs[@]} = 0 ] || apt_install "${pkgs[@]}" || return 1
  command -v haproxy >/dev/null || export PATH="$PATH:/usr/sbin"
  command -v haproxy >/dev/null && command -v openssl >/dev/null
}

install_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm || return 1
  fi
  local d="$HERE/node"
  if [ ! -f "$d/node_modules/@aws-sdk/client-s3/package.json" ] ||
     [ ! -f "$d/node_modules/@aws-sdk/lib-storage/package.json" ] ||
     [ ! -f "$d/node_modules/@aws-sdk/s3-request-presigner/package.json" ] ||
     [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
    (cd "$d" && npm ci --no-audit --no-fund --loglevel=error >"$CACHE/npm.log" 2>&1) ||
      { tail -5 "$CACHE/npm.log" >&2; return 1; }
  fi
}

# Debian's Chromium (no browser can be downloaded: never `playwright install`) and Playwright for Python,
# which drives it by executable_path; pip keeps the wheel in its cache.
PLAYWRIGHT_VERSION=1.65.2
install_browser() {
  [ -x /usr/bin/chromium ] || apt_install chromium || return 1
  if ! python3 -c 'import playwright.sync_api' 2>/dev/null; then
    python3 -m pip install -q "playwright==$PLAYWRIGHT_VERSION" >"$CACHE/pip-playwright.log" 2>&1 ||
      { tail -5 "$CACHE/pip-playwright.log" >&2; return 1; }
  fi
  python3 -c 'import playwright.sync_api'
}

MINIO_BIN="$CACHE/bin/minio-go-e2e"
install_minio_go() {
  command -v go >/dev/null || apt_install golang-go || return 1
  [ -d /usr/share/gocode/src/github.com/minio/minio-go/v7 ] ||
    apt_install golang-github-minio-minio-go-v7-dev || return 1
  if [ ! -x "$MINIO_BIN" ] || [ "$HERE/minio-go/main.go" -nt "$MINIO_BIN" ]; then
    mkdir -p "$CACHE/bin"
    (cd "$HERE/minio-go" && GO111MODULE=off GOPATH=/usr/share/gocode:$HOME/go GOFLAGS='' \
       go build -o "$MINIO_BIN" . >"$CACHE/go-build.log" 2>&1) ||
      { tail -5 "$CACHE/go-build.log" >&2; return 1; }
  fi
}

S3SFS_BIN="$CACHE/s3s-fs/bin/s3s-fs"
install_s3sfs() {
  [ -x "$S3SFS_BIN" ] && return 0
  if ! command -v cargo >/dev/null; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null || { say "# cargo not found" >&2; return 1; }
  cargo install s3s-fs@0.14.1 --features binary --locked --root "$CACHE/s3s-fs" >"$CACHE/s3s-fs-install.log" 2>&1 ||
    { tail -5 "$CACHE/s3s-fs-install.log" >&2; return 1; }
}

PROXY_BIN=${E2E_PROXY_BIN:-$ROOT/target/release/s3-resign-proxy}
build_proxy() {
  if [ "${E2E_NO_BUILD:-0}" != 1 ] && [ -z "${E2E_PROXY_BIN:-}" ]; then
    if ! command -v cargo >/dev/null; then
      [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    (cd "$ROOT" && cargo build --release --bin s3-resign-proxy >"$WORK/cargo-build.log" 2>&1) ||
      { tail -15 "$WORK/cargo-build.log" >&2; return 1; }
  fi
  [ -x "$PROXY_BIN" ]
}

try_install() { # name function
  local t0 rc=0
  t0=$(now)
  "$2" || rc=$?
  if [ "$rc" != 0 ]; then
    BROKEN[$1]="could not install $1 (see messages above / $CACHE/*.log)"
    say "# install $1: FAILED after $(elapsed "$t0")s"
  else
    say "# install $1: ok ($(elapsed "$t0")s)"
  fi
}

mkdir -p "$CACHE"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/s3rp-e2e.XXXXXX")
RESULTS=${E2E_RESULTS:-$WORK/results.tsv}
mkdir -p "$(dirname "$RESULTS")"
: >"$RESULTS"
INSTALL_T0=$(now)
try_install python install_python
try_install s3s-fs install_s3sfs
if want awscli || want boto3 || want tls || want vanity || want browser; then try_install curl install_curl; fi
if want tls || want cdn || want pool; then try_install haproxy install_haproxy; fi
install_nginx() { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx; }
if want cdn; then try_install nginx install_nginx; fi
if want s3cmd || want vanity; then try_install s3cmd install_s3cmd; fi
if want rclone; then try_install rclone install_rclone; fi
if want js || want vanity || want browser; then try_install node install_node; fi
if want browser; then try_install browser install_browser; fi
if want minio-go; then try_install minio-go install_minio_go; fi
say "# installs checked in $(elapsed "$INSTALL_T0")s"

needs_for() {
  case "$1" in
    smoke | hostile) echo python ;;
    awscli | boto3) echo python curl ;;
    s3cmd) echo python s3cmd ;;
    rclone) echo python rclone ;;
    js) echo python node ;;
    minio-go) echo python minio-go ;;
    tls) echo python curl haproxy ;;
    vanity) echo python curl node s3cmd ;;
    cdn) echo python nginx haproxy ;;
    pool) echo python haproxy ;;
    access) echo python ;;
    browser) echo python curl node browser ;;
  esac
}

if [ -n "${BROKEN[python]:-}" ] || [ -n "${BROKEN[s3s-fs]:-}" ]; then
  for g in "${GROUPS_TO_RUN[@]}"; do
    fail "$g/install" "${BROKEN[python]:-}${BROKEN[s3s-fs]:+ ${BROKEN[s3s-fs]}}"
  done
  say "$PASSED passed, $FAILED failed"
  exit 1
fi

# ---------------------------------------------------------------- test host names (vanity, cdn groups)
# Clients must resolve virtual-hosted names (bucket.s3.vanity.test) to 127.0.0.1. /etc/hosts has no
# wildcards, so every name a test uses is listed. The block between the markers only ever grows (the union
# of what is there and these lists), so runs from other checkouts keep their names; it is left in place at
# exit. E2E_HOSTS_FILE: another file (for trying this out; the resolver reads only /etc/hosts).
VANITY_DOMAIN=s3.vanity.test
VANITY_HOSTS=("$VANITY_DOMAIN" "vbkt-js.$VANITY_DOMAIN" "my.dotted.vbkt.$VANITY_DOMAIN" "vbkt-boto.$VANITY_DOMAIN"
  "vbkt-public.$VANITY_DOMAIN" "vbkt-cli.$VANITY_DOMAIN" "vbkt-s3cmd.$VANITY_DOMAIN" "vbkt-s3cmd-v2.$VANITY_DOMAIN")
CDN_HOSTS=(origin.test) # the cdn group (nginx in front, a virtual-hosted origin): extend here
E2E_HOSTS=("${VANITY_HOSTS[@]}" "${CDN_HOSTS[@]}")
HOSTS_FILE=${E2E_HOSTS_FILE:-/etc/hosts}
E2E_HOSTS_NOTE="" # why the names may not resolve (the groups SKIP with it)
update_hosts() { # idempotent: rewrites the file only when a name is missing from the marked block
  python3 - "$HOSTS_FILE" "${E2E_HOSTS[@]}" <<'PY'
import sys
path, names = sys.argv[1], sys.argv[2:]
BEGIN = "# s3rp-e2e begin (tests/e2e/run.sh: names of its vanity and cdn groups; safe to delete)"
END = "# s3rp-e2e end"
try:
    lines = open(path).read().splitlines()
except FileNotFoundError:
    lines = []
keep, have, inside, found = [], [], False, False
for line in lines:
    if line.startswith("# s3rp-e2e begin"):
        inside = found = True
    elif line.startswith("# s3rp-e2e end"):
        inside = False
    elif inside:
        f = line.split()
        if len(f) == 2 and f[0] == "127.0.0.1" and f[1] not in have:
            have.append(f[1])
    else:
        keep.append(line)
missing = [n for n in names if n not in have]
if found and not missing:
    sys.exit(0)
out = keep + [BEGIN] + [f"127.0.0.1 {n}" for n in have + missing] + [END]
with open(path, "w") as f:  # in place: /etc/hosts may be a bind mount that cannot be replaced
    f.write("\n".join(out) + "\n")
PY
}
if want vanity || want cdn; then
  if [ -w "$HOSTS_FILE" ] || { [ ! -e "$HOSTS_FILE" ] && [ -w "$(dirname "$HOSTS_FILE")" ]; }; then
    update_hosts || E2E_HOSTS_NOTE="could not update $HOSTS_FILE"
  else
    E2E_HOSTS_NOTE="$HOSTS_FILE is not writable (run as root, or add '127.0.0.1 NAME' lines for: ${E2E_HOSTS[*]})"
  fi
fi
export E2E_VANITY_DOMAIN=$VANITY_DOMAIN E2E_HOSTS_NOTE

# ---------------------------------------------------------------- start servers
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() { # url seconds require-200(1|0): poll until the URL answers (with 200 if asked)
  python3 - "$@" <<'PY'
import sys, time, urllib.error, urllib.request
url, secs, need200 = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1"
deadline = time.time() + secs
while time.time() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200 or not need200:
                sys.exit(0)
    except urllib.error.HTTPError:
        if not need200:
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(1)
PY
}

ORIGIN_AK=E2EORIGINACCESSKEY
ORIGIN_SK=e2e-origin-secret-key-0123456789abcdef
CLIENT_AK=E2ECLIENTACCESSKEY
CLIENT_SK=e2e-client-secret-key-fedcba9876543210
REGION=us-east-1

ORIGIN_PORT=$(free_port)
mkdir -p "$WORK/origin-data"
"$S3SFS_BIN" --host 127.0.0.1 --port "$ORIGIN_PORT" --access-key "$ORIGIN_AK" --secret-key "$ORIGIN_SK" \
  "$WORK/origin-data" >"$WORK/s3s-fs.log" 2>&1 &
PIDS+=($!)
echo $! >"$WORK/origin.pid" # the tls group stops and restarts the origin (and rewrites this file)
if ! wait_http "http://127.0.0.1:$ORIGIN_PORT/" 20 0; then
  tail -20 "$WORK/s3s-fs.log" >&2 || true
  fail "origin/start" "s3s-fs did not come up on port $ORIGIN_PORT"
  say "$PASSED passed, $FAILED failed"
  exit 1
fi
ORIGIN_URL="http://127.0.0.1:$ORIGIN_PORT"

if [ "$DIRECT" = 1 ]; then
  say "# DIRECT mode: clients -> s3s-fs $ORIGIN_URL (origin credentials), no proxy"
  TARGET_URL=$ORIGIN_URL
  export E2E_ACCESS_KEY=$ORIGIN_AK E2E_SECRET_KEY=$ORIGIN_SK
else
  t0=$(now)
  if ! build_proxy; then
    fail "proxy/build" "cargo build --release failed or $PROXY_BIN missing"
    say "$PASSED passed, $FAILED failed"
    exit 1
  fi
  say "# proxy build checked in $(elapsed "$t0")s"
  PROXY_PORT=$(free_port)
  PROXY_ORIGIN_URL=$ORIGIN_URL
  if [ "${E2E_WIRELOG:-0}" = 1 ]; then # also log what the proxy sends to the origin
    OWIRE_PORT=$(free_port)
    python3 "$HERE/wirelog.py" "$OWIRE_PORT" "$ORIGIN_URL" "$WORK/origin-wire.log" >"$WORK/origin-wirelog.stderr" 2>&1 &
    PIDS+=($!)
    wait_http "http://127.0.0.1:$OWIRE_PORT/" 10 0 || true
    PROXY_ORIGIN_URL="http://127.0.0.1:$OWIRE_PORT"
    say "# wire log: proxy -> $PROXY_ORIGIN_URL -> s3s-fs (logged to $WORK/origin-wire.log)"
  fi
  # The vanity settings are on for every group: the path-style groups (all but vanity) show they change
  # nothing for a Host of 127.0.0.1 or localhost. The hostile group runs a proxy of its own without them.
  env CLIENT_ACCESS_KEY="$CLIENT_AK" CLIENT_SECRET_KEY="$CLIENT_SK" \
    ORIGIN_ACCESS_KEY="$ORIGIN_AK" ORIGIN_SECRET_KEY="$ORIGIN_SK" \
    ORIGIN_DOMAIN="$PROXY_ORIGIN_URL" AWS_REGION="$REGION" HOST=127.0.0.1 PORT="$PROXY_PORT" \
    VIRTUAL_HOST_DOMAINS="$VANITY_DOMAIN" \
    ALLOWED_HOSTS="127.0.0.1:*,localhost:*,$VANITY_DOMAIN:*,*.$VANITY_DOMAIN:*" \
    RUST_LOG="${RUST_LOG:-info}" "$PROXY_BIN" >"$WORK/proxy.log" 2>&1 &
  PIDS+=($!)
  if wait_http "http://127.0.0.1:$PROXY_PORT/healthz" 30 1; then
    pass "proxy/healthz"
  else
    tail -20 "$WORK/proxy.log" >&2 || true
    fail "proxy/healthz" "no 200 from http://127.0.0.1:$PROXY_PORT/healthz within 30 s"
    say "$PASSED passed, $FAILED failed"
    exit 1
  fi
  TARGET_URL="http://127.0.0.1:$PROXY_PORT"
  say "# PROXY mode: clients -> proxy $TARGET_URL -> s3s-fs $ORIGIN_URL"
  export E2E_ACCESS_KEY=$CLIENT_AK E2E_SECRET_KEY=$CLIENT_SK
fi

if [ "${E2E_WIRELOG:-0}" = 1 ]; then
  WIRE_PORT=$(free_port)
  python3 "$HERE/wirelog.py" "$WIRE_PORT" "$TARGET_URL" "$WORK/wire.log" >"$WORK/wirelog.stderr" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$WIRE_PORT/" 10 0 || true
  TARGET_URL="http://127.0.0.1:$WIRE_PORT"
  say "# wire log: clients -> $TARGET_URL (logged to $WORK/wire.log)"
fi

# ---------------------------------------------------------------- HAProxy as TLS terminator (tls group)
start_haproxy() {
  local d="$WORK/tls" backend check_lines
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -addext "basicConstraints=critical,CA:TRUE" \
    -keyout "$d/key.pem" -out "$d/cert.pem" >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; return 1; }
  cat "$d/cert.pem" "$d/key.pem" >"$d/haproxy.pem"
  TLS_PORT=$(free_port)
  if [ "$DIRECT" = 1 ]; then # no /healthz at s3s-fs: a plain TCP check
    backend="127.0.0.1:$ORIGIN_PORT"
    check_lines=""
  else # always the proxy itself, even with E2E_WIRELOG
    backend="127.0.0.1:$PROXY_PORT"
    # HAProxy 2.6 sends "GET /healthz HTTP/1.0" with no Host header: kept on purpose (the proxy must support it)
    check_lines=$'    option httpchk GET /healthz\n    http-check expect status 200'
  fi
  cat >"$d/haproxy.cfg" <<CFG
global
    stats socket $d/haproxy.sock mode 600 level admin
    log stdout format raw local0
    maxconn 512
    tune.ssl.default-dh-param 2048

defaults
    mode http
    log global
    option forwardfor
    http-reuse safe
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout http-request 30s
    timeout http-keep-alive 10s
    timeout check 3s

frontend fe_tls
    bind 127.0.0.1:$TLS_PORT ssl crt $d/haproxy.pem
    capture request header User-Agent len 80
    capture request header x-amz-content-sha256 len 70
    capture request header Transfer-Encoding len 30
    capture request header Content-Length len 20
    capture request header Content-Encoding len 30
    capture request header x-amz-decoded-content-length len 20
    capture request header x-amz-trailer len 40
    log-format "E2E %HM %{+Q}HU %ST %hr"
    default_backend be_proxy

backend be_proxy
$check_lines
    server proxy $backend check inter 500ms fall 2 rise 1
CFG
  haproxy -c -f "$d/haproxy.cfg" >"$d/haproxy-check.log" 2>&1 || { cat "$d/haproxy-check.log" >&2; return 1; }
  haproxy -db -f "$d/haproxy.cfg" >"$d/haproxy.log" 2>&1 &
  PIDS+=($!)
  local i code
  for i in $(seq 1 100); do # TLS handshake works and HAProxy forwards /healthz (server UP) -> 200
    code=$(curl -sS --cacert "$d/cert.pem" --max-time 2 -o /dev/null -w '%{http_code}' \
      "https://127.0.0.1:$TLS_PORT/healthz" 2>/dev/null || true)
    if [ "$code" = 200 ] || { [ "$DIRECT" = 1 ] && [ -n "$code" ] && [ "$code" != 000 ] && [ "$code" != 503 ]; }; then
      break
    fi
    sleep 0.1
  done
  say "# HAProxy: https://127.0.0.1:$TLS_PORT -> $backend (last /healthz via TLS: HTTP $code)"
  export E2E_TLS_ENDPOINT="https://127.0.0.1:$TLS_PORT" E2E_TLS_CA="$d/cert.pem" E2E_HAPROXY_SOCK="$d/haproxy.sock"
  export E2E_HAPROXY_LOG="$d/haproxy.log" E2E_PROXY_URL="http://$backend"
}
if want tls && [ -z "${BROKEN[haproxy]:-}" ]; then
  if ! start_haproxy; then
    BROKEN[haproxy]="HAProxy did not start (see $WORK/tls/)"
  fi
fi

export E2E_ENDPOINT=$TARGET_URL E2E_ORIGIN_ENDPOINT=$ORIGIN_URL
# the vanity group: the same listener by name, so clients address buckets virtual-hosted
export E2E_VANITY_ENDPOINT="http://$VANITY_DOMAIN:${TARGET_URL##*:}" E2E_PROXY_LOG="$WORK/proxy.log"
export E2E_S3SFS_BIN=$S3SFS_BIN E2E_ORIGIN_PORT=$ORIGIN_PORT E2E_ORIGIN_PIDFILE="$WORK/origin.pid"
export E2E_ORIGIN_ACCESS_KEY=$ORIGIN_AK E2E_ORIGIN_SECRET_KEY=$ORIGIN_SK
export E2E_REGION=$REGION E2E_WORK=$WORK E2E_DIRECT=$DIRECT E2E_ORIGIN_DATA="$WORK/origin-data"
export E2E_BIG="$WORK/big.bin" E2E_HERE=$HERE E2E_MINIO_BIN=$MINIO_BIN
# the hostile group runs a proxy of its own (this binary) behind a byte-recording relay
export E2E_PROXY_BIN_PATH=$PROXY_BIN E2E_CLIENT_ACCESS_KEY=$CLIENT_AK E2E_CLIENT_SECRET_KEY=$CLIENT_SK
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1
# isolated aws-cli / boto3 configuration; nothing from the host's profile leaks in
printf '[default]\nregion = us-east-1\n' >"$WORK/aws-config"
: >"$WORK/aws-credentials"
export AWS_CONFIG_FILE="$WORK/aws-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
export AWS_DEFAULT_REGION=$REGION AWS_MAX_ATTEMPTS=1 AWS_RETRY_MODE=standard AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
head -c 20971520 /dev/urandom >"$E2E_BIG"

# ---------------------------------------------------------------- run groups
group_exec() {
  case "$1" in
    smoke) exec python3 "$HERE/smoke.py" ;;
    awscli) exec python3 "$HERE/awscli_test.py" ;;
    boto3) exec python3 "$HERE/boto3_test.py" ;;
    s3cmd) exec python3 "$HERE/s3cmd_test.py" ;;
    rclone) exec python3 "$HERE/rclone_test.py" ;;
    js) exec node "$HERE/node/test.mjs" ;;
    minio-go) exec "$MINIO_BIN" ;;
    tls) exec python3 "$HERE/tls_test.py" ;;
    hostile) exec python3 "$HERE/hostile_test.py" ;;
    vanity) exec python3 "$HERE/vanity_test.py" ;;
    cdn) exec python3 "$HERE/cdn_test.py" ;;
    pool) exec python3 "$HERE/pool_test.py" ;;
    access) exec python3 "$HERE/access_test.py" ;;
    browser) exec python3 "$HERE/browser_test.py" ;;
  esac
}
export -f group_exec
export HERE MINIO_BIN

run_group() {
  local g=$1 t0 out err rc p f s need missing=""
  for need in $(needs_for "$g"); do
    [ -n "${BROKEN[$need]:-}" ] && missing+="${BROKEN[$need]}; "
  done
  say "== $g"
  t0=$(now)
  if [ -n "$missing" ]; then
    fail "$g/install" "${missing%; }"
    SUMMARY+=("$(printf '%-9s %3d passed %3d failed %3d skipped %7.1fs' "$g" 0 1 0 0)")
    return
  fi
  out="$WORK/group-$g.out"
  err="$WORK/group-$g.err"
  set +e
  (cd "$HERE" && timeout -k 5 "$GROUP_TIMEOUT" bash -c 'group_exec "$1"' _ "$g") 2>"$err" | tee "$out"
  rc=${PIPESTATUS[0]}
  set -e
  # every PASS/FAIL/SKIP line -> $RESULTS ("FAIL name: reason"; a name never contains ": ")
  awk -v OFS='\t' '/^(PASS|FAIL|SKIP) / {
      st = $1; rest = substr($0, 6); reason = ""; i = index(rest, ": ")
      if (st != "PASS" && i > 0) { reason = substr(rest, i + 2); rest = substr(rest, 1, i - 1) }
      gsub(/\t/, " ", reason); j = index(rest, "/")
      if (j > 0) print substr(rest, 1, j - 1), substr(rest, j + 1), st, reason
      else print "'"$g"'", rest, st, reason
    }' "$out" >>"$RESULTS"
  p=$(grep -c '^PASS ' "$out" || true)
  f=$(grep -c '^FAIL ' "$out" || true)
  s=$(grep -c '^SKIP ' "$out" || true)
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    local why="exited with status $rc"
    [ "$rc" = 124 ] && why="timed out after ${GROUP_TIMEOUT}s"
    say "FAIL $g/exit: $why; stderr: $(tail -c 600 "$err" | tr '\n' ' ')"
    record FAIL "$g/exit" "$why; stderr: $(tail -c 600 "$err" | tr '\n' ' ')"
    f=1
  elif [ -s "$err" ] && [ "$f" != 0 ]; then
    say "# $g stderr (tail):"; tail -5 "$err" | sed 's/^/#   /'
  fi
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  SKIPPED=$((SKIPPED + s))
  local secs
  secs=$(elapsed "$t0")
  say "== $g: $p passed, $f failed, $s skipped in ${secs}s"
  SUMMARY+=("$(printf '%-9s %3d passed %3d failed %3d skipped %7.1fs' "$g" "$p" "$f" "$s" "$secs")")
}

SUITE_T0=$(now)
for g in "${GROUPS_TO_RUN[@]}"; do
  before=$FAILED
  run_group "$g"
  if [ "${E2E_FAIL_FAST:-0}" = 1 ] && [ "$FAILED" -gt "$before" ]; then
    say "# E2E_FAIL_FAST: stopping after $g"
    break
  fi
done

say ""
say "# mode: $([ "$DIRECT" = 1 ] && echo "DIRECT (no proxy)" || echo PROXY); groups ran in $(elapsed "$SUITE_T0")s"
for line in "${SUMMARY[@]}"; do say "# $line"; done
[ "$SKIPPED" -gt 0 ] && say "# $SKIPPED skipped (SKIP lines above: s3s-fs limitations, E2E_DIRECT=1 or unresolved test host names; not counted)"
say "# results: $RESULTS, copied to tests/e2e/last-results.tsv (tests/e2e/table.py makes Markdown of it)"
if [ "$FAILED" -gt 0 ] && [ "$DIRECT" != 1 ] && [ -f "$WORK/proxy.log" ]; then
  say "# proxy log: $WORK/proxy.log"
fi
say "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
