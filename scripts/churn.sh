#!/usr/bin/env bash
# Filter churn under traffic (docs/RELIABILITY.md): for SECONDS (default 60),
# flip between two filter sets A and B and replace junk filters through the
# daemon's control socket (one transaction per flip, 4 + 2 * BATCH filter
# changes each) while frames flow on a veth pair in test namespaces through
# the inbound XDP program. Prints the changes per second reached and the
# frames sent, delivered, dropped by policy and lost, and the frames
# classified by a mix of A and B (must be 0). Needs root.
#   scripts/churn.sh [SECONDS]
# Environment: XFP_CHURN_BATCH (junk filters replaced per transaction, default 1000),
# XFP_CHURN_POOL (junk filters live, default 2000), XFP_CHURN_FPS (frames per
# second, default 20000), XFP_CHURN_MIN_RATE (changes/s required, default
# 10000), XFP_BUILD (build directory, default build).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${XFP_BUILD:-build}
if [ "$(id -u)" -ne 0 ]; then
  echo "churn.sh: run as root (namespaces, XDP)" >&2
  exit 1
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target xfp_fault_tests xfp >/dev/null
export XFP_BUILD_DIR=$PWD/$build XFP_REQUIRE_PRIVILEGED=1 XFP_CHURN_SECONDS=$seconds
log=$(mktemp --suffix=.log /tmp/xfp-churn.XXXXXX)
rc=0
"$build/tests/xfp_fault_tests" --gtest_color=no --gtest_filter='Churn.*' >"$log" 2>&1 || rc=$?
grep -E '^\[ (measured|  FAILED  |  PASSED  |       OK) \]|Failure' "$log" || true
echo "full output: $log"
exit "$rc"
