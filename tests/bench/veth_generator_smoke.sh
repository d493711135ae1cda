#!/usr/bin/env bash
# The veth benches (xfp-bench-veth, xfp-bench-callout, xfp-bench-flow),
# briefly, with the user-space generator: not their figures (bench/README.md:
# reported, never asserted), but that the generator is chosen and named
# (auto falls back to afxdp where the kernel refuses live frames), that its
# frames reach the receiving side, that the CPU-per-frame ratios and the
# punt-header carrier are printed, and that every namespace a bench made is
# gone afterwards.
set -euo pipefail
build=${XFP_BUILD_DIR:?set XFP_BUILD_DIR to the build directory}
if [ "$(id -u)" -ne 0 ]; then
  if [ "${XFP_REQUIRE_PRIVILEGED:-}" = 1 ]; then echo "FAIL: needs root"; exit 1; fi
  echo "SKIPPED: needs root"; exit 0
fi
fail=0
say() { echo "FAIL: $*"; fail=1; }
ns_before=$(ip netns list | awk '{print $1}' | grep '^xfpb-' | sort || true)

veth="$build/bench/veth/xfp-bench-veth"
out=$("$veth" --generator afxdp -p drop,xfp -r 1 -d 0.5 --cpu-duration 0.3 --warmup 0.2 2>&1) || {
  echo "$out"; say "xfp-bench-veth --generator afxdp exited with an error"; }
grep -qE '^  generator: afxdp: afxdp \(asked for\)' <<<"$out" || say "veth: no generator line for afxdp"
grep -qE '^  method: AF_XDP transmit, copy mode, .*NAPI threaded=1' <<<"$out" || say "veth: NAPI not threaded with afxdp"
# Frames arrive: XDP_DROP's median Mpps is above 0.05.
mpps=$(awk '$1 == "XDP_DROP" && $2 ~ /^[0-9.]+$/ { print $2; exit }' <<<"$out")
awk -v m="${mpps:-0}" 'BEGIN { exit !(m > 0.05) }' || say "veth: XDP_DROP received ${mpps:-nothing} Mpps"
grep -qE '^target  xfp/XDP_DROP >= 0\.90 by receive CPU per frame: [0-9.]+  (PASS|FAIL)' <<<"$out" ||
  say "veth: no target line by receive CPU per frame"
[ "$fail" -eq 0 ] || echo "$out"

out=$("$veth" --generator auto -p drop -r 1 -d 0.3 --cpu-duration 0 --warmup 0.1 --json - 2>/dev/null) || {
  echo "$out"; say "xfp-bench-veth --generator auto exited with an error"; }
grep -qE '"generator": "(kernel|afxdp)"' <<<"$out" || { echo "$out"; say "veth: no generator in the JSON"; }

callout="$build/bench/callout/xfp-bench-callout"
if [ -x "$callout" ]; then
  out=$("$callout" -c xfp-callout,rxdrop -r 1 -s 0.5 --warmup 0.2 2>&1) || {
    echo "$out"; say "xfp-bench-callout exited with an error"; }
  grep -qE '^  generator: (kernel|afxdp): ' <<<"$out" || say "callout: no generator line"
  grep -qE '^  xfp-callout punt-header carrier: (metadata|in-band)$' <<<"$out" || say "callout: no carrier line"
  grep -qE '^rxdrop +[0-9.]+\*? ' <<<"$out" || say "callout: rxdrop not measured"
  grep -qE '^ratio  xfp/rxdrop .* consumer CPU per frame [0-9.]+x' <<<"$out" || say "callout: no consumer CPU ratio"
  [ "$fail" -eq 0 ] || echo "$out"
fi

flow="$build/bench/flow/xfp-bench-flow"
out=$("$flow" --generator afxdp -c offload,fastpath -r 1 -d 0.5 --cpu-duration 0.3 --warmup 0.2 2>&1) || {
  echo "$out"; say "xfp-bench-flow exited with an error"; }
grep -qE '^  generator: afxdp: afxdp \(asked for\); NAPI threaded=1' <<<"$out" || say "flow: no generator line"
grep -qE '^  (offload|fastpath) +punt-header carrier: (metadata|in-band)$' <<<"$out" || say "flow: no carrier line"
grep -qE '^offload/fastpath: [0-9.]+ by receive CPU per frame .*\(target >= 0\.90: (PASS|FAIL)\)' <<<"$out" ||
  say "flow: no target line by receive CPU per frame"
[ "$fail" -eq 0 ] || echo "$out"

ns_after=$(ip netns list | awk '{print $1}' | grep '^xfpb-' | sort || true)
left=$(comm -13 <(echo "$ns_before") <(echo "$ns_after") | grep . || true)
[ -z "$left" ] || say "namespaces left behind: $left"
if [ "$fail" -ne 0 ]; then exit 1; fi
echo "PASS"
