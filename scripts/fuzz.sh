#!/usr/bin/env bash
# Fuzzes xfp's parsers with libFuzzer (issue 6; docs/RELIABILITY.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     default 60 (not run by CI: see docs/RELIABILITY.md)
#
# The BPF programs are fuzzed by a test of the BPF suite instead (random and
# mutated frames through BPF_PROG_TEST_RUN, verdicts checked against the
# user-space classifier): CI runs it for 6 s; a long run is
#   XFP_BPF_FUZZ_SECONDS=600 build/tests/xfp_bpf_tests --gtest_filter='*Fuzz*'
#
# Configures build-fuzz (XFP_FUZZ_BUILD to change) with clang, ASan and UBSan
# and -DXFP_FUZZ=ON (which turns XFP_SANITIZE on: the targets link the
# product's sanitized libraries; asserts stay on), builds the targets of
# fuzz/ (only what they need: no tests, tools or plugins), then runs each one for the
# given time on its seed corpus (fuzz/corpus/<target>, read only); inputs
# that add coverage are kept in build-fuzz/corpus/<target> and reused by the
# next run. XFP_FUZZ_TARGETS="frame control" runs only those.
#
# Prints, per target, the executions and the result. A finding (crash,
# sanitizer report, failed invariant, timeout, leak) is saved as
# build-fuzz/findings/<target>-crash-<sha1> and reproduced with
#   build-fuzz/fuzz/fuzz_<target> build-fuzz/findings/<target>-crash-<sha1>
# The script exits 1 when any target found something.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${XFP_FUZZ_BUILD:-build-fuzz}
all_targets="frame punt_meta filter_syntax filter_json state_json control port_proto redirect plugin_check"
targets=${XFP_FUZZ_TARGETS:-$all_targets}

for tool in clang clang++; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found (apt-get install clang)" >&2; exit 2; }
done

# RelWithDebInfo without -DNDEBUG: the product's asserts are checks too.
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only" \
  -DXFP_FUZZ=ON -DXFP_BUILD_TESTS=OFF -DXFP_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target xfp_fuzz

mkdir -p "$build/findings"
failed=()
total=0
printf '%-14s %12s %8s  %s\n' target executions exec/s result
for t in $targets; do
  bin="$build/fuzz/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz.sh: no target '$t' (known: $all_targets)" >&2; exit 2; }
  mkdir -p "$build/corpus/$t"
  log="$build/findings/$t.log"
  rc=0
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/findings/$t-" "$build/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [ "$rc" -eq 0 ]; then
    result="no finding"
  else
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    result="FINDING (exit $rc): ${artifact:-see $log}"
    failed+=("$t")
  fi
  total=$((total + ${execs:-0}))
  printf '%-14s %12s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$result"
  if [ "$rc" -ne 0 ]; then
    grep -E 'ERROR: |invariant failed|runtime error|SUMMARY' "$log" | head -5 | sed 's/^/    /'
  fi
done
echo "total: $total executions, ${seconds}s per target"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]} (logs and inputs under $build/findings/)" >&2
  exit 1
fi
