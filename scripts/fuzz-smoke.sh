#!/usr/bin/env bash
# Short fuzz run for CI (docs/RELIABILITY.md, "Fuzzing campaign"): builds the cargo-fuzz
# targets of fuzz/ with libFuzzer instrumentation on the stable toolchain
# (RUSTC_BOOTSTRAP=1, the flags cargo-fuzz passes), replays fuzz/regressions/<target>/*,
# then runs each target for FUZZ_SECONDS (default 20) over a corpus seeded from the golden
# fixtures (fuzz/seed.py). Fails if any target crashes, panics, times out or leaks past the
# RSS limit; crash inputs are kept under $FUZZ_OUT (default target-fz/fuzz-smoke/).
#
#   scripts/fuzz-smoke.sh                 all five targets, 20 s each
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh jt808_frame    one target, 10 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(jt808_frame jt808_message gbt32960_frame gbt32960_message raw_framers)
fi
seconds="${FUZZ_SECONDS:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target-fz}"
out="${FUZZ_OUT:-$CARGO_TARGET_DIR/fuzz-smoke}"
host="$(rustc -vV | sed -n 's/^host: //p')"

# The flags cargo-fuzz uses (sancov + libFuzzer's counters and cmp tracing), plus debug
# assertions and overflow checks. --target keeps them off build scripts and proc macros.
echo "== build fuzz targets (release, $host)"
start=$(date +%s)
RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
  cargo build --release --target "$host" --manifest-path fuzz/Cargo.toml --bins
echo "build took $(($(date +%s) - start)) s"
bin="$CARGO_TARGET_DIR/$host/release"

rm -rf "$out"
mkdir -p "$out"
if command -v python3 >/dev/null 2>&1; then
  python3 fuzz/seed.py --out "$out/corpus"
else
  echo "warning: python3 missing, fuzzing from empty corpora" >&2
fi

failed=()
for t in "${targets[@]}"; do
  mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
  regressions=(fuzz/regressions/"$t"/*)
  if [ -e "${regressions[0]}" ]; then
    echo "== $t: replay ${#regressions[@]} regression input(s)"
    if ! "$bin/$t" -rss_limit_mb=2048 -timeout=10 "${regressions[@]}" >"$out/$t.regressions.log" 2>&1; then
      grep -E -A3 "panicked at|ERROR: libFuzzer" "$out/$t.regressions.log" | head -n 20 >&2 || true
      echo "FAIL: $t regression input crashes (log: $out/$t.regressions.log)" >&2
      failed+=("$t(regression)")
    fi
  fi
  echo "== $t: fuzz ${seconds}s"
  if "$bin/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$out/artifacts/$t/" "$out/corpus/$t" >"$out/$t.log" 2>&1; then
    grep -E "^#[0-9]+" "$out/$t.log" | tail -n 1
    grep -E "^stat::(number_of_executed_units|average_exec_per_sec)" "$out/$t.log" || true
  else
    grep -E -A3 "panicked at|ERROR: libFuzzer|SUMMARY" "$out/$t.log" | head -n 20 >&2 || true
    echo "FAIL: $t crashed; input in $out/artifacts/$t/ (log: $out/$t.log)" >&2
    failed+=("$t")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz smoke failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz smoke ok: ${targets[*]}"
