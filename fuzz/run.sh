#!/usr/bin/env bash
# Runs each fuzz target (all, or those named) for SECONDS on its committed
# corpus; fails on the first crash. Stable Rust: libFuzzer without a
# sanitizer (see README.md).
#
#   fuzz/run.sh 30                  # the CI smoke run
#   FUZZ_GROW=1 fuzz/run.sh 600 aws_chunked
#
# New inputs go to a scratch directory, so the committed corpus stays as it
# is, unless FUZZ_GROW=1 (then they are added to fuzz/corpus/TARGET; run
# `cargo fuzz cmin` on it before committing).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(auth_header presigned_query canonical_encoding aws_chunked sigv2_string_to_sign signed_host)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# Release with debug assertions and overflow checks (cargo-fuzz's default);
# FUZZ_BUILD_ARGS adds options (e.g. "--codegen-units 16").
read -r -a build_args <<<"${FUZZ_BUILD_ARGS:-}"
cargo fuzz build --sanitizer none "${build_args[@]}"
# Full libFuzzer logs go to FUZZ_LOG_DIR when set (kept), else a temporary directory.
logs=${FUZZ_LOG_DIR:-$(mktemp -d)}
mkdir -p "$logs"
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    dirs=("corpus/$t")
    if [ "${FUZZ_GROW:-0}" != 1 ]; then
        dirs=("$logs/new-$t" "corpus/$t")
        mkdir -p "$logs/new-$t"
    fi
    args=(-max_total_time="$secs" -print_final_stats=1)
    case $t in
    auth_header | presigned_query) args+=(-dict=dict/sigv4.dict) ;;
    esac
    started=$(date +%s)
    if ! cargo fuzz run --sanitizer none "${build_args[@]}" "$t" "${dirs[@]}" -- "${args[@]}" >"$logs/$t.log" 2>&1; then
        tail -n 60 "$logs/$t.log"
        echo "fuzz target $t FAILED (input saved under fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    printf '%s (%ss): %s\n' "$t" "$(( $(date +%s) - started ))" "$(grep -E '^#[0-9]+.*DONE' "$logs/$t.log" | tail -n 1)"
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$logs/$t.log" | sed 's/^/    /'
done
[ -n "${FUZZ_LOG_DIR:-}" ] || rm -rf "$logs"
