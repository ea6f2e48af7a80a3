#!/usr/bin/env bash
# Long exploring fuzz runs (issue 7's 30-minute runs), one target after the
# other: random seed, ASan, fork mode that keeps going after a finding
# (every disagreeing input is kept under $OUT/art/). Not run by CI.
#
# Usage: bash fuzz/campaign.sh [TARGET...]   (SECONDS_EACH=1800, OUT=/tmp/campaign)
# Progress and the final execution count of each target: $OUT/summary.log.
# On a shared 2-core machine lower the run's whole scheduling group, since
# `nice` alone does not reach across sessions:  echo 19 > /proc/$$/autogroup
set -uo pipefail
cd "$(dirname "$0")"
SECS=${SECONDS_EACH:-1800}
OUT=${OUT:-/tmp/campaign}
export RAYON_NUM_THREADS=1
if [ $# -gt 0 ]; then T=("$@"); else T=(squared_error bce bce_logits ce_labels ce_dense primitives lse_merge); fi
cargo +nightly fuzz build || exit 1
for t in "${T[@]}"; do
  mkdir -p "$OUT/$t" "$OUT/art"
  echo "=== $t start $(date -u +%H:%M:%S)" >> "$OUT/summary.log"
  cargo +nightly fuzz run "$t" "$OUT/$t" "corpus/$t" -- \
    -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$SECS" -timeout=60 -rss_limit_mb=4096 \
    -artifact_prefix="$OUT/art/$t-" -print_final_stats=1 > "$OUT/$t.log" 2>&1
  echo "=== $t end $(date -u +%H:%M:%S) rc=$?" >> "$OUT/summary.log"
  grep -E "^#[0-9]+" "$OUT/$t.log" | tail -1 >> "$OUT/summary.log"
done
