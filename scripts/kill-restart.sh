#!/usr/bin/env bash
# Kill-restart cycles under traffic (docs/RELIABILITY.md): N cycles (default
# 100) of SIGKILL of the daemon while frames flow on a veth pair in test
# namespaces, then a restart that takes the attached program over. Counts the
# programs, maps, links and pins the killed daemons leave (none allowed) and
# the frames sent, delivered, dropped by policy and lost. Needs root.
#   scripts/kill-restart.sh [CYCLES]
# Also runs the state-file test with as many kills: XFP_STATE_KILLS=N.
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-100}
build=${XFP_BUILD:-build}
if [ "$(id -u)" -ne 0 ]; then
  echo "kill-restart.sh: run as root (namespaces, XDP, bpftool)" >&2
  exit 1
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target xfp_fault_tests xfp >/dev/null
export XFP_BUILD_DIR=$PWD/$build XFP_REQUIRE_PRIVILEGED=1
export XFP_KILL_CYCLES=$cycles XFP_STATE_KILLS=${XFP_STATE_KILLS:-$cycles}
log=$(mktemp --suffix=.log /tmp/xfp-kill-restart.XXXXXX)
rc=0
"$build/tests/xfp_fault_tests" --gtest_color=no >"$log" 2>&1 || rc=$?
grep -E '^\[ (measured|  FAILED  |  PASSED  |       OK) \]|Failure' "$log" || true
echo "full output: $log"
exit "$rc"
