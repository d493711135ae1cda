#!/usr/bin/env bash
# Builds xfp and runs the whole test suite (unit, BPF, integration, CLI).
# Privileged tests need root; with XFP_REQUIRE_PRIVILEGED=1 they fail
# instead of skipping when privileges are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then
  scripts/install-deps.sh --if-missing
fi
build=${XFP_BUILD:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"
# Every test makes its own namespaces, veths and pins (unique names), so
# tests run two at a time (XFP_TEST_JOBS to change): the suite takes about
# 3.5 minutes instead of 9 serially on a 2-core machine.
ctest --test-dir "$build" --output-on-failure --timeout 300 -j"${XFP_TEST_JOBS:-2}" "$@"
