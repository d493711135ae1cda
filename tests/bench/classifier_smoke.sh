#!/usr/bin/env bash
# xfp-bench-classifier, briefly: not its figures (bench/README.md: they are
# reported, never asserted), but that it runs to the end and that its test
# frames meet the verdicts their planted filters give. A bench whose hits
# missed would time the wrong path.
set -euo pipefail
build=${XFP_BUILD_DIR:?set XFP_BUILD_DIR to the build directory}
if [ "$(id -u)" -ne 0 ]; then
  if [ "${XFP_REQUIRE_PRIVILEGED:-}" = 1 ]; then echo "FAIL: needs root"; exit 1; fi
  echo "SKIPPED: needs root"; exit 0
fi
out=$("$build/bench/classifier/xfp-bench-classifier" -n 1,8 -r 2000 --slices 4 --runs 2 --no-baseline --per-frame 2>&1) || {
  echo "$out"; echo "FAIL: the bench exited with an error"; exit 1; }
fail=0
# verdict SIZE FRAME WANT: the frame's verdict in the size's per-frame table.
verdict() {
  local got
  got=$(awk -v size="$1 filters:" -v frame="$2" '
    index($0, size) == 1 { on = 1; next }
    on && /^$/ { on = 0 }
    on && index($0, "  " frame " ") == 1 { split(substr($0, length(frame) + 3), f, " "); print f[2]; exit }' <<<"$out")
  [ "$got" = "$3" ] || { echo "FAIL: $1 filters, $2: verdict '${got}', want $3"; fail=1; }
}
verdict 1 "ipv4 remote-mac hit" drop
verdict 1 "ipv4 OUI hit" pass
verdict 1 "arp broadcast hit" pass
for f in "ipv4 remote-mac hit" "ipv4 OUI hit" "ipv4 ethertype+mac hit" "vlan 100 hit" "vlan 1050 hit"; do
  verdict 8 "$f" drop
done
verdict 8 "ipv4 miss" pass
verdict 8 "arp broadcast hit" pass
grep -qE '^  method: .*repeat 2000 in 4 slices of 500, 2 runs' <<<"$out" || { echo "FAIL: no method line"; fail=1; }
grep -qE '^target  8 filters <= 1\.50x of 1: [0-9.]+x  (PASS|FAIL)   \(median of the runs. paired ratios [0-9.]+ [0-9.]+;' <<<"$out" ||
  { echo "FAIL: no ratio target line with two paired ratios"; fail=1; }
grep -qE '^info    the same from each frame.s mean over its slices' <<<"$out" || { echo "FAIL: no slice-mean line"; fail=1; }
if [ "$fail" -ne 0 ]; then echo "$out"; exit 1; fi
echo "PASS"
