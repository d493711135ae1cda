#!/usr/bin/env bash
# xfp demo: builds xfp, makes a two-namespace veth topology, attaches xfp,
# loads two sample callouts (a MAC allow-list and a pcap capture), applies
# tools/demo/policy.xfp, sends seven kinds of traffic at it, and shows live
# counters. Everything it creates is removed on exit or Ctrl-C.
#
#   sudo tools/demo/xfp-demo.sh [--duration SECONDS] [--no-build]
#
# Topology (names carry the PID, so two demos never collide):
#   [ns xfpdemo-PID-src]  xd-PID-s  <== veth ==>  xd-PID-h  [ns xfpdemo-PID-host]
#     xfp-sendframes                               xfp daemon (XDP + TC egress)
# Addresses: MACs 02:..., IPv4 in 198.18.0.0/15 (RFC 2544 benchmarking).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
duration=20
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "xfp-demo: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" -ne 0 ]; then
  echo "xfp-demo: run as root (it creates namespaces and attaches XDP programs)" >&2
  exit 1
fi

bdir=${XFP_BUILD:-$root/build}
if [ "$build" = 1 ]; then
  "$root/scripts/install-deps.sh" --if-missing
  echo "== building xfp in $bdir"
  cmake -S "$root" -B "$bdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$bdir" -j"$(nproc)" --target xfp xfp-sendframes xfp_plugin_mac_allowlist \
    xfp_plugin_pcap_capture >/dev/null
fi
xfp="$bdir/tools/xfp"
send="$bdir/tools/sendframes/xfp-sendframes"

id=$$
ns_host="xfpdemo-$id-host"
ns_src="xfpdemo-$id-src"
dev_host="xd-$id-h"
dev_src="xd-$id-s"
run="/run/xfp-demo-$id"
sock="$run/xfp.sock"
pids=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # A demo that failed shows why before its files go: the daemon's log.
  if [ "$rc" -ne 0 ] && [ -s "$run/daemon.log" ]; then
    echo "xfp-demo: failed (exit $rc); the daemon's log ($run/daemon.log):" >&2
    tail -n 40 "$run/daemon.log" >&2
  fi
  echo
  echo "== cleaning up"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$ns_src" 2>/dev/null || true
  ip netns del "$ns_host" 2>/dev/null || true
  rm -rf "$run"
  echo "removed namespaces $ns_host, $ns_src and $run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== topology: $ns_src/$dev_src <-> $ns_host/$dev_host"
ip netns add "$ns_host"
ip netns add "$ns_src"
ip link add "$dev_host" netns "$ns_host" address 02:00:00:00:01:01 type veth \
  peer name "$dev_src" netns "$ns_src" address 02:00:00:00:02:02
ip -n "$ns_host" link set lo up
ip -n "$ns_src" link set lo up
ip -n "$ns_host" link set "$dev_host" up
ip -n "$ns_src" link set "$dev_src" up
ip -n "$ns_host" addr add 198.18.0.1/24 dev "$dev_host"
ip -n "$ns_src" addr add 198.18.0.2/24 dev "$dev_src"

mkdir -p "$run"
echo "== starting the daemon in $ns_host (log: $run/daemon.log)"
# `ip netns exec` gives the daemon a fresh /sys without bpffs; libxdp needs
# one to try its multi-program dispatcher.
ip netns exec "$ns_host" sh -c 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; exec "$@"' sh \
  "$xfp" daemon --socket "$sock" --state-dir "$run/state" --plugin-dir "$bdir/plugins" >"$run/daemon.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
if ! [ -S "$sock" ] || ! kill -0 "${pids[0]}" 2>/dev/null; then
  echo "xfp-demo: the daemon did not start" >&2
  exit 1
fi
x() { ip netns exec "$ns_host" "$xfp" --socket "$sock" "$@"; }

x attach "$dev_host"
# What the kernel gave the daemon (the punt header's carrier among it).
grep -h "kernel: " "$run/daemon.log" | sed 's/^.* info: /   /' || true
# Sample callouts (plugins/README.md): the allow-list knows the sender's own
# MAC only; the capture writes the ARP broadcasts it is shown to a pcap file.
x callout load "$bdir/plugins/libxfp_mac_allowlist.so" --config "allow=02:00:00:00:02:02"
x callout load "$bdir/plugins/libxfp_pcap_capture.so" --config "file=$run/arp.pcap,flush=1"
x apply "$here/policy.xfp"
echo "== policy (tools/demo/policy.xfp)"
x filter list

echo "== traffic from $ns_src for ${duration}s: IPv4, VLAN 100, VLAN 200, LLDP, OUI 02:0b:ad, broadcast, a new MAC"
flow() { ip netns exec "$ns_src" "$send" --dev "$dev_src" --duration "$duration" "$@" >/dev/null & pids+=($!); }
host_mac=02:00:00:00:01:01
flow --dst $host_mac --ethertype ipv4 --rate 400                          # permitted (allow-list callout)
flow --dst $host_mac --ethertype ipv4 --src 02:00:00:00:0e:0e --rate 100  # blocked (allow-list: a new MAC)
flow --dst $host_mac --ethertype ipv4 --vlan 100 --rate 300               # permitted (permit-vlan-100)
flow --dst $host_mac --ethertype ipv4 --vlan 200 --rate 200               # blocked (block-other-vlans)
flow --dst $host_mac --ethertype lldp --rate 100                          # blocked (block-lldp)
flow --dst $host_mac --ethertype ipv4 --src 02:0b:ad:00:00:07 --rate 150  # blocked (block-bad-oui)
flow --dst ff:ff:ff:ff:ff:ff --ethertype arp --rate 50                    # captured (pcap callout), permitted (count-broadcast)

# Live counters until the traffic ends (or Ctrl-C).
if [ -t 1 ]; then
  timeout --foreground "$duration" "$xfp" --socket "$sock" status --watch 1 || true
else
  sleep "$duration"
fi
echo "== final counters"
x status
x counters
x callout list
echo "captured ARP broadcasts: $run/arp.pcap ($(stat -c %s "$run/arp.pcap" 2>/dev/null || echo 0) bytes; removed at exit)"
