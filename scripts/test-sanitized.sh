#!/usr/bin/env bash
# Builds xfp with ASan+UBSan (-DXFP_SANITIZE=ON, see CMakeLists.txt) in
# build-asan and runs the tests there, as root with XFP_REQUIRE_PRIVILEGED=1
# like .ci/run. The xfp binary and daemon the tests start run sanitized too.
#   scripts/test-sanitized.sh [CTEST ARGS]  the whole ctest (-R, -L, ... pass through)
#   scripts/test-sanitized.sh --ci          only the unit and BPF suites (what .ci/run runs):
#                                           builds just those and runs each binary once
# Every report, from any process (also one whose stderr a test discards), is
# written to build-asan/sanitizer-logs; any report fails the run. LeakSanitizer
# suppressions (third-party internals only): tests/sanitizers/lsan.supp.
# Leak stacks stop at libraries built without frame pointers (libbpf, libxdp);
# add fast_unwind_on_malloc=0 to ASAN_OPTIONS for full ones (slower).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${XFP_ASAN_BUILD:-build-asan}
ci=0
if [ "${1:-}" = --ci ]; then ci=1; shift; fi
cmake -S . -B "$build" -DXFP_SANITIZE=ON -DCMAKE_BUILD_TYPE="${XFP_ASAN_BUILD_TYPE:-Debug}" >/dev/null
if [ "$ci" = 1 ]; then
  cmake --build "$build" -j"$(nproc)" --target xfp_unit_tests xfp_bpf_tests
else
  cmake --build "$build" -j"$(nproc)"
fi
logs=$root/$build/sanitizer-logs
rm -rf "$logs" && mkdir -p "$logs"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:print_stacktrace=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:log_path=$logs/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
status=0
if [ "$ci" = 1 ]; then
  for t in xfp_unit_tests xfp_bpf_tests; do
    XFP_BUILD_DIR=$root/$build "$build/tests/$t" --gtest_brief=1 "$@" || status=$?
  done
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
