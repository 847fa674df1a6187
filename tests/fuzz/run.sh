#!/usr/bin/env bash
# Runs every libFuzzer target in BIN_DIR for SECONDS each, on its seed corpus
# (tests/fuzz/corpus/<name>, copied to a scratch dir so the repo stays clean).
# Usage: tests/fuzz/run.sh BIN_DIR SECONDS [RUNS]   (RUNS: stop after that many executions)
set -euo pipefail
bin=${1:?bin dir}; secs=${2:-60}; runs=${3:--1}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
status=0
for f in "$bin"/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f"); short=${name#fuzz_}
    mkdir -p "$work/$short"
    [ -d "$here/corpus/$short" ] && cp -r "$here/corpus/$short/." "$work/$short/"
    dict=(); [ -f "$here/$short.dict" ] && dict=(-dict="$here/$short.dict")
    echo "== $name: ${secs}s"
    if ! "$f" "$work/$short" "${dict[@]}" -max_total_time="$secs" -runs="$runs" \
            -rss_limit_mb=2048 -artifact_prefix="$work/" -print_final_stats=1 2>"$work/$short.log"; then
        echo "FAILED: $name"; tail -50 "$work/$short.log"; status=1
        cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* . 2>/dev/null || true
    else
        grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$work/$short.log" | tail -2
    fi
done
exit $status
