#!/usr/bin/env bash
# Checks tools/systemd/xfp.service with `systemd-analyze verify` (syntax,
# directives, the ExecStart binary), pointed at a built xfp. Does not start it.
#   tools/systemd/verify.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-${XFP_BUILD_DIR:-$here/../../build}}
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIPPED: no systemd-analyze"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/bin/xfp|$(cd "$build" && pwd)/tools/xfp|" "$here/xfp.service" >"$tmp/xfp.service"
systemd-analyze verify "$tmp/xfp.service"
echo "xfp.service: systemd-analyze verify passed"
