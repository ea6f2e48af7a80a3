#!/usr/bin/env bash
# Bounded differential fuzzing for CI (issue 7): builds the cargo-fuzz
# targets of fuzz/ with AddressSanitizer and runs each for FUZZ_RUNS
# executions (default 10000, with at most FUZZ_SECONDS = 60 s per target)
# from the committed seed corpus, with a fixed seed (FUZZ_SEED, default 1)
# and one rayon thread, so that CI runs explore much the same inputs and a
# crash comes with its input, reproducible anywhere. Longer, exploring
# runs (random seeds, hours) are for developers: see fuzz/README.md. A
# crash (a panic in the crate, an AddressSanitizer report), a timeout or
# an out-of-memory fails the step and prints the input's path and the command
# that reproduces it. Oracle disagreements (a failed check of the harness,
# src/check.rs) are handled in two ways:
# - on the committed corpus (every past finding and the hand-picked seeds),
#   replayed first and deterministically, any disagreement fails the step:
#   a kernel change cannot bring back a fixed bug;
# - on inputs the run itself discovers, a disagreement is printed with its
#   input but does not fail CI: the seed-1 runs are not exactly reproducible
#   (libFuzzer's scheduling depends on timing) and can turn up a new input
#   at the edge of the harness's tolerances, to be triaged
#   (fuzz/findings/README.md) rather than block every landing.
# FUZZ_STRICT=1 makes those fail too, except for the targets listed in
# FUZZ_REPORT_ONLY (default none).
#
# Toolchain: cargo-fuzz needs -Z flags (the sanitizer), so it runs on the
# nightly toolchain when one is installed (`cargo +nightly fuzz`), else on
# stable with RUSTC_BOOTSTRAP=1. If neither can build a sanitized crate, or
# cargo-fuzz cannot be installed, the step says so and is skipped; a build
# failure of the fuzz crate itself fails CI.
#
# Usage: bash .ci/fuzz.sh [TARGET...]     (FUZZ_RUNS, FUZZ_SEED, FUZZ_SECONDS)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECS=${FUZZ_SECONDS:-60}
RUNS=${FUZZ_RUNS:-10000}
SEED=${FUZZ_SEED:-1}
export RAYON_NUM_THREADS=1
ALL=(squared_error bce bce_logits ce_labels ce_dense primitives lse_merge)
REPORT_ONLY=" ${FUZZ_REPORT_ONLY-} "
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi

skip() {
  echo "fuzz: SKIPPED (not a failure of the crate): $*"
  exit 0
}

# 1. The toolchain.
if cargo +nightly --version >/dev/null 2>&1; then
  TC=(+nightly)
  echo "fuzz: using $(cargo +nightly --version)"
else
  TC=()
  export RUSTC_BOOTSTRAP=1
  echo "fuzz: no nightly toolchain; using $(cargo --version) with RUSTC_BOOTSTRAP=1"
fi
probe=$(mktemp -d)
if ! echo 'pub fn f() {}' | rustc "${TC[@]}" -Zsanitizer=address --crate-type lib \
    --out-dir "$probe" - >"$probe/log" 2>&1; then
  cat "$probe/log"
  skip "this toolchain cannot build with -Zsanitizer=address"
fi
rm -rf "$probe"

# 2. cargo-fuzz, from crates.io when missing.
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked >/dev/null 2>&1 || skip "cargo install cargo-fuzz failed"
fi
echo "fuzz: $(cargo fuzz --version)"

# 3. Build every target (failures here are real failures).
start=$SECONDS
if [ $# -eq 0 ]; then
  cargo "${TC[@]}" fuzz build
else
  for t in "${TARGETS[@]}"; do cargo "${TC[@]}" fuzz build "$t"; done
fi
echo "fuzz: built ${#TARGETS[@]} targets in $((SECONDS - start)) s"

# 4. Replay each target's committed corpus once (-runs=0: every input, no
#    mutation): deterministic, and any failure, a disagreement included,
#    fails the step.
scratch=$(mktemp -d)
failed=()
findings=()
for t in "${TARGETS[@]}"; do
  log="$scratch/$t.replay.log"
  mkdir -p "$scratch/artifacts"
  if cargo "${TC[@]}" fuzz run "$t" "corpus/$t" -- -runs=0 -timeout=60 -rss_limit_mb=4096 \
      -artifact_prefix="$scratch/artifacts/$t-replay-" >"$log" 2>&1; then
    echo "fuzz: $t corpus replay ok: $(ls "corpus/$t" | wc -l) inputs"
  else
    echo "fuzz: $t corpus replay FAILED (a committed input; last lines of its log):"
    grep -E -A12 'panicked|ERROR: (libFuzzer|AddressSanitizer)' "$log" | head -n 40 || tail -n 40 "$log"
    echo "      replay one input: (cd fuzz && cargo ${TC[*]} fuzz run $t corpus/$t/<file>)"
    failed+=("$t (corpus)")
  fi
done

# 5. Run each for RUNS executions on a scratch copy of its seed corpus (new
#    inputs go to the scratch directory, not into the committed corpus).
for t in "${TARGETS[@]}"; do
  mkdir -p "$scratch/$t" "$scratch/artifacts"
  log="$scratch/$t.log"
  if cargo "${TC[@]}" fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
      -seed="$SEED" -runs="$RUNS" -max_total_time="$SECS" -timeout=60 -rss_limit_mb=4096 \
      -artifact_prefix="$scratch/artifacts/$t-" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    echo "fuzz: $t ok: ${runs:-?} executions (seed $SEED)"
  elif { [ "${FUZZ_STRICT:-0}" != 1 ] || [[ "$REPORT_ONLY" == *" $t "* ]]; } && grep -qE 'panicked at src/check\.rs:' "$log" \
      && ! grep -qE 'ERROR: AddressSanitizer|ERROR: libFuzzer: (timeout|out-of-memory)' "$log"; then
    # An oracle disagreement found by the harness's checks (src/check.rs),
    # not a crash of the crate: reported, and listed in the open fuzz issue
    # until fixed, without failing CI (memory errors, panics in the crate,
    # hangs and out-of-memory do fail it).
    echo "fuzz: $t FINDING (oracle disagreement, reported, not failing CI):"
    grep -E -A3 'panicked at src/check\.rs' "$log" | head -n 5 | cut -c1-400
    for a in "$scratch"/artifacts/"$t"-*; do
      [ -e "$a" ] && echo "      input: $a"
    done
    findings+=("$t")
  else
    echo "fuzz: $t FAILED; last lines of its log:"
    grep -E -A12 'panicked|ERROR: (libFuzzer|AddressSanitizer)' "$log" | head -n 40 || tail -n 40 "$log"
    for a in "$scratch"/artifacts/"$t"-*; do
      [ -e "$a" ] || continue
      echo "fuzz: input saved at $a; reproduce with:"
      echo "      (cd fuzz && cargo ${TC[*]} fuzz run $t $a)"
    done
    failed+=("$t")
  fi
done
if [ ${#findings[@]} -gt 0 ]; then
  echo "fuzz: oracle disagreements (reported only) in: ${findings[*]}"
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED targets: ${failed[*]}"
  exit 1
fi
echo "fuzz: no crash, memory error or hang in ${#TARGETS[@]} targets"
