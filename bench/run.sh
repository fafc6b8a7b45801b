#!/usr/bin/env bash
# Load benchmark of s3-resign-proxy: one command.
#
#   bench/run.sh                 full run (3 rounds; ~12 min on 2 cores)
#   bench/run.sh --smoke         CI: 1 round, ~1 s per scenario, small objects, no timing asserts
#                                (output in bench/out/smoke);
#                                exits 0 when every scenario ran
#   bench/run.sh --only small,get --rounds 5 --small-secs 5 --big-size-mib 64 --nginx-workers 2
#
# Installs nginx (Debian package) when missing, builds target/release/s3-resign-proxy
# (cargo build --release; a no-op when up to date, BENCH_NO_BUILD=1 to skip) and the
# load generator bench/loadgen (its own cargo project, built into target/bench-loadgen),
# then runs bench/bench.py, which starts the origins, nginx and the proxy on 127.0.0.1,
# runs every scenario and writes bench/out/results.md, bench/out/ratios.svg and
# bench/out/results.json. Everything it starts is stopped when it ends.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"
export DEBIAN_FRONTEND=noninteractive

case "${1:-}" in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; python3 "$HERE/bench.py" --help; exit 0 ;;
esac

say() { printf '[run.sh] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- tools (idempotent)
need_apt=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  say "installing ${need_apt[*]} (apt)"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian starts nothing here (no systemd in containers); the benchmark runs its own
# nginx instances with their own configs and never touches a system one.

# ---------------------------------------------------------------- builds
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  say "cargo build --release (s3-resign-proxy)"
  if ! cargo build --release --quiet --bin s3-resign-proxy; then
    if [ -x target/release/s3-resign-proxy ]; then
      say "WARNING: build failed; benchmarking the existing target/release/s3-resign-proxy"
    else
      exit 1
    fi
  fi
  say "cargo build --release (bench/loadgen)"
  CARGO_TARGET_DIR="$ROOT/target/bench-loadgen" cargo build --release --quiet --locked --manifest-path "$HERE/loadgen/Cargo.toml"
fi
[ -x target/release/s3-resign-proxy ] || { say "missing target/release/s3-resign-proxy"; exit 1; }

# ---------------------------------------------------------------- run
ulimit -n 65536 2>/dev/null || true
exec python3 "$HERE/bench.py" "$@"
