#!/usr/bin/env bash
# A short run of every cargo-fuzz target (fuzz/README.md), for CI: the targets are
# built once, then each runs FUZZ_SECONDS (default 25) from its committed seeds.
# A crash, a broken invariant or a leak fails the script, naming the input that
# triggered it and the command that replays it.
#
#   scripts/fuzz-smoke.sh                  # every target, 25 s each
#   FUZZ_SECONDS=5 scripts/fuzz-smoke.sh spec_loader
#
# Builds into target/fuzz, kept with the workspace's own build cache: a cold build of
# the runtime and libcontainer with coverage instrumentation takes ~10 minutes; with
# the dependencies cached, a changed runtime crate about one (CI's budget for the
# whole script is 3 minutes: 4 x 25 s of fuzzing plus that build). Needs the nightly toolchain and cargo-fuzz (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-25}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# No sanitizer: the parsers are safe Rust, so AddressSanitizer would find nothing
# a panic does not, and it halves the executions per second. Debug assertions and
# overflow checks stay on: an overflow is a panic, and a panic is a finding.
cargo +nightly fuzz build --sanitizer none --debug-assertions --target-dir "$target_dir"

bin_dir="$target_dir/x86_64-unknown-linux-gnu/release"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "$work/artifacts"
  # New inputs go to the scratch corpus (first dir); the seeds are only read.
  if "$bin_dir/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
      -print_final_stats=1 -artifact_prefix="$work/artifacts/$t-" \
      "$work/$t" "fuzz/corpus/$t" >"$work/$t.log" 2>&1; then
    echo "fuzz $t: ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/$t.log" | grep -o '[0-9]*$') runs in ${seconds}s)"
  else
    failed+=("$t")
    mkdir -p fuzz/artifacts
    cp "$work"/artifacts/"$t"-* fuzz/artifacts/ 2>/dev/null || true
    echo "fuzz $t: FAILED" >&2
    grep -E -A12 'panicked|ERROR: libFuzzer' "$work/$t.log" | head -40 >&2 || tail -n 40 "$work/$t.log" >&2
    for a in fuzz/artifacts/"$t"-*; do
      [[ -e "$a" ]] && echo "  replay: cargo +nightly fuzz run -s none -a $t $a" >&2
    done
  fi
done
((${#failed[@]} == 0)) || { echo "fuzz targets failed: ${failed[*]}" >&2; exit 1; }
