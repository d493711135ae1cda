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
# Namespaces, XDP attachments and veths are per test: run one at a time.
ctest --test-dir "$build" --output-on-failure --timeout 300 "$@"
