#!/usr/bin/env bash
# Builds xfp with ASan+UBSan (-DXFP_SANITIZE=ON, see CMakeLists.txt) in
# build-asan and runs the tests there, as root with XFP_REQUIRE_PRIVILEGED=1
# like .ci/run. The xfp binary and daemon the tests start run sanitized too.
#   scripts/test-sanitized.sh [CTEST ARGS]  the whole ctest (-R, -L, ... pass through)
#   scripts/test-sanitized.sh --ci          only the unit and BPF suites (what .ci/run runs):
#                                           builds just those and runs each binary once; with
#                                           clang also the libFuzzer targets (fuzz/), each run
#                                           for XFP_FUZZ_SMOKE_SECONDS (default 5) on its seeds
# The compiler is clang when it is installed (then -DXFP_FUZZ=ON too: the
# fuzz targets link the same sanitized libraries, so the product is compiled
# once for tests and fuzzers), else the default one; XFP_ASAN_COMPILER=gcc
# forces g++. A build directory keeps the compiler it was configured with.
# Every report, from any process (also one whose stderr a test discards), is
# written to build-asan/sanitizer-logs; any report fails the run. LeakSanitizer
# suppressions (third-party internals only): tests/sanitizers/lsan.supp.
# Leak stacks stop at libraries built without frame pointers (libbpf, libxdp);
# add fast_unwind_on_malloc=0 to ASAN_OPTIONS for full ones (slower).
# A fuzz finding is saved as build-asan/fuzz-findings/<target>-crash-*.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${XFP_ASAN_BUILD:-build-asan}
case "$build" in /*) ;; *) build=$root/$build ;; esac
ci=0
if [ "${1:-}" = --ci ]; then ci=1; shift; fi
compiler=()
fuzz=0
if [ "${XFP_ASAN_COMPILER:-clang}" = clang ] && command -v clang >/dev/null && command -v clang++ >/dev/null; then
  compiler=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DXFP_FUZZ=ON)
  fuzz=1
fi
if [ -f "$build/CMakeCache.txt" ]; then
  cached=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
  cached_clang=0
  [[ "$cached" == *clang* ]] && cached_clang=1
  if [ "$cached_clang" != "$fuzz" ]; then
    echo "test-sanitized.sh: $build was configured with $cached; remove it (or set XFP_ASAN_BUILD)" >&2
    exit 2
  fi
fi
cmake -S . -B "$build" -DXFP_SANITIZE=ON "${compiler[@]}" -DCMAKE_BUILD_TYPE="${XFP_ASAN_BUILD_TYPE:-Debug}" >/dev/null
if [ "$ci" = 1 ]; then
  targets=(xfp_unit_tests xfp_bpf_tests)
  [ "$fuzz" = 1 ] && targets+=(xfp_fuzz)
  cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
else
  cmake --build "$build" -j"$(nproc)"
fi
logs=$build/sanitizer-logs
rm -rf "$logs" && mkdir -p "$logs"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:print_stacktrace=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:log_path=$logs/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
status=0
if [ "$ci" = 1 ]; then
  for t in xfp_unit_tests xfp_bpf_tests; do
    XFP_BUILD_DIR=$build "$build/tests/$t" --gtest_brief=1 "$@" || status=$?
  done
  if [ "$fuzz" = 1 ]; then
    # The fuzz smoke: each target on its seeds (fuzz/corpus, read only) and
    # what earlier runs in this tree kept (build-asan/fuzz-corpus).
    seconds=${XFP_FUZZ_SMOKE_SECONDS:-5}
    mkdir -p "$build/fuzz-findings"
    for bin in "$build"/fuzz/fuzz_*; do
      [ -f "$bin" ] && [ -x "$bin" ] || continue
      t=${bin##*/fuzz_}
      mkdir -p "$build/fuzz-corpus/$t"
      rc=0
      "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/fuzz-findings/$t-" "$build/fuzz-corpus/$t" "fuzz/corpus/$t" \
        >"$build/fuzz-findings/$t.log" 2>&1 || rc=$?
      execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/fuzz-findings/$t.log" | tail -1)
      if [ "$rc" -ne 0 ]; then
        echo "fuzz $t: FINDING (exit $rc), see $build/fuzz-findings/$t.log" >&2
        grep -E 'ERROR: |invariant failed|runtime error|Test unit written' "$build/fuzz-findings/$t.log" | head -5 >&2
        status=1
      else
        echo "fuzz $t: ${execs:-?} executions in ${seconds}s, no finding"
      fi
    done
  fi
else
  # Namespaces, XDP attachments and veths are per test: run one at a time.
  ctest --test-dir "$build" --output-on-failure --timeout 600 "$@" || status=$?
fi
if compgen -G "$logs/*" >/dev/null; then
  echo "== sanitizer reports ($logs) ==" >&2
  for f in "$logs"/*; do echo "--- $f" >&2; cat "$f" >&2; done
  status=1
fi
exit "$status"
