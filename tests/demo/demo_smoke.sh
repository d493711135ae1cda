#!/usr/bin/env bash
# The README's first command, without the build step: runs the demo for a
# few seconds and checks what its user would see: the policy applied, every
# traffic flow counted on the filter meant for it, and nothing left behind.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${XFP_BUILD_DIR:?set XFP_BUILD_DIR to the build directory}
if [ "$(id -u)" -ne 0 ]; then
  if [ "${XFP_REQUIRE_PRIVILEGED:-}" = 1 ]; then echo "FAIL: needs root"; exit 1; fi
  echo "SKIPPED: needs root"; exit 0
fi
out=$(XFP_BUILD="$build" "$root/tools/demo/xfp-demo.sh" --duration 3 --no-build 2>&1) || {
  echo "$out"; echo "FAIL: the demo exited with an error"; exit 1; }
fail=0
check() { grep -qE "$1" <<<"$out" || { echo "FAIL: expected /$1/ in the demo's output"; fail=1; }; }
check 'applied 13 command\(s\)'
check 'attached xd-[0-9]+-h .*inbound XDP'
# Per-filter counters after the traffic (ID NAME LAYER FRAMES BYTES):
# every flow reached its filter, so none of these shows 0 frames.
for name in block-lldp block-bad-oui permit-vlan-100 block-other-vlans count-broadcast allowlist capture-arp; do
  frames=$(awk -v n="$name" '$2 == n && NF == 5 {print $4}' <<<"$out" | tail -1)
  if [ -z "$frames" ] || [ "$frames" -eq 0 ]; then
    echo "FAIL: filter $name counted ${frames:-no} frames"; fail=1
  fi
done
# The callouts ran in user space: the allow-list both permitted and blocked
# (the workers table: device, queue, frames, permit, block, ...).
check 'loaded mac_allowlist: xfp.sample.mac-allowlist'
workers=$(awk '$1 ~ /^xd-[0-9]+-h$/ && $3 ~ /^[0-9]+$/ {print $4, $5}' <<<"$out" | tail -1)
read -r permitted blocked <<<"${workers:-0 0}"
if [ "${permitted:-0}" -eq 0 ] || [ "${blocked:-0}" -eq 0 ]; then
  echo "FAIL: callout workers permitted ${permitted:-?} and blocked ${blocked:-?} frames"; fail=1
fi
check 'captured ARP broadcasts: .*arp.pcap \([1-9][0-9]* bytes'
check 'removed namespaces xfpdemo-'
check 'kernel: bpf_xdp_adjust_meta for XDP (available|refused); punt header carried (in the XDP metadata area|in band)'
pid=$(grep -oE 'xfpdemo-[0-9]+' <<<"$out" | head -1)
if ip netns list | grep -q "$pid"; then echo "FAIL: namespaces of $pid are left"; fail=1; fi
if [ "$fail" -ne 0 ]; then echo "$out"; exit 1; fi

# A daemon that cannot start (here: a carrier name it refuses): the demo
# fails, shows the daemon's own error before cleaning up, and leaves nothing.
if bad=$(XFP_PUNT_CARRIER=bogus XFP_BUILD="$build" "$root/tools/demo/xfp-demo.sh" --duration 1 --no-build 2>&1); then
  echo "$bad"; echo "FAIL: the demo succeeded with a daemon that cannot start"; exit 1
fi
for want in "the daemon's log" 'XFP_PUNT_CARRIER=bogus: expected auto, metadata or in-band' 'removed namespaces xfpdemo-'; do
  grep -qF "$want" <<<"$bad" || { echo "$bad"; echo "FAIL: expected '$want' in the failed demo's output"; exit 1; }
done
pid=$(grep -oE 'xfpdemo-[0-9]+' <<<"$bad" | head -1)
if ip netns list | grep -q "$pid"; then echo "FAIL: namespaces of $pid are left"; exit 1; fi
echo "demo smoke: OK"
