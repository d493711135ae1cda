#!/usr/bin/env bash
# Soak of the daemon under ASan+UBSan (issue 6 item 2; docs/RELIABILITY.md).
#
#   scripts/soak-sanitized.sh [MINUTES]     default 5; as root
#
# Builds the sanitized tree (XFP_ASAN_BUILD, default build-asan, as
# scripts/test-sanitized.sh makes it; an existing tree is reused, only the
# targets below are brought up to date), then makes two namespaces joined by
# a veth pair (names carry the PID; MACs 02:..., IPv4 in 198.18.0.0/15;
# everything removed on exit or failure) and runs, for MINUTES:
#   - the sanitized `xfp daemon` attached to the host side, with the sample
#     callouts loaded (mac_allowlist asking an approver over the message port
#     "approver", pcap_capture) and tools/demo/policy.xfp applied;
#   - a port listener (`xfp port listen approver --approve`, itself sanitized);
#   - traffic from the other namespace (xfp-sendframes, the project's frame
#     sender): IPv4, VLAN 100 and 200, LLDP, ARP broadcasts, and frames from
#     a new source MAC every round (each one is a question on the port);
#   - control-socket churn: filter add/delete, status, flows, callout list,
#     redirect list/query/set, apply of the policy file, as fast as it goes.
# Then SIGTERM to the daemon. It fails on a nonzero daemon exit, a daemon
# that died early, or any sanitizer report from any sanitized process
# (log_path, as in test-sanitized.sh: $run/sanitizer-logs, kept on failure).
# Prints the figures: frames sent, frames the daemon counted, requests,
# port messages answered, reports.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
minutes=${1:-5}
[ "$(id -u)" -eq 0 ] || { echo "soak-sanitized.sh: run as root (namespaces, XDP)" >&2; exit 2; }
build=${XFP_ASAN_BUILD:-build-asan}
case "$build" in /*) ;; *) build=$root/$build ;; esac

if ! [ -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DXFP_SANITIZE=ON -DCMAKE_BUILD_TYPE="${XFP_ASAN_BUILD_TYPE:-Debug}" >/dev/null
fi
grep -q '^XFP_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" || { echo "soak-sanitized.sh: $build is not a sanitized build" >&2; exit 2; }
cmake --build "$build" -j"$(nproc)" --target xfp xfp-sendframes xfp_plugin_mac_allowlist xfp_plugin_pcap_capture >/dev/null

id=$$
ns_host="xfpsoak-$id-host"
ns_src="xfpsoak-$id-src"
dev_host="xk-$id-h"
dev_src="xk-$id-s"
run=$(mktemp -d "/tmp/xfp-soak-$id.XXXXXX")
sock="$run/xfp.sock"
logs="$run/sanitizer-logs"
mkdir -p "$logs" "$run/ports"
chmod 755 "$run"
xfp="$build/tools/xfp"
send="$build/tools/sendframes/xfp-sendframes"
daemon_pid=
bg=()
ok=0

cleanup() {
  trap - EXIT INT TERM
  for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  ip netns del "$ns_src" 2>/dev/null || true
  ip netns del "$ns_host" 2>/dev/null || true
  if [ "$ok" = 1 ]; then rm -rf "$run"; else echo "soak-sanitized.sh: kept $run (daemon.log, sanitizer-logs)" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:print_stacktrace=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:log_path=$logs/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

ip netns add "$ns_host"
ip netns add "$ns_src"
ip link add "$dev_host" netns "$ns_host" address 02:00:00:00:01:01 type veth \
  peer name "$dev_src" netns "$ns_src" address 02:00:00:00:02:02
for ns in "$ns_host" "$ns_src"; do ip -n "$ns" link set lo up; done
ip -n "$ns_host" link set "$dev_host" up
ip -n "$ns_src" link set "$dev_src" up
ip -n "$ns_host" addr add 198.18.0.1/24 dev "$dev_host"
ip -n "$ns_src" addr add 198.18.0.2/24 dev "$dev_src"

# `ip netns exec` gives a fresh /sys without bpffs; libxdp wants one.
ip netns exec "$ns_host" sh -c 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; exec "$@"' sh \
  "$xfp" daemon --socket "$sock" --state-dir "$run/state" --plugin-dir "$build/plugins" \
  --port-dir "$run/ports" >"$run/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 600); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "soak-sanitized.sh: the daemon did not start:" >&2; cat "$run/daemon.log" >&2; exit 1; }
x() { ip netns exec "$ns_host" "$xfp" --socket "$sock" "$@"; }

x attach "$dev_host" >/dev/null
x callout load "$build/plugins/libxfp_mac_allowlist.so" \
  --config "allow=02:00:00:00:02:02,approver=approver,timeout_ms=2000,default=block" >/dev/null
x callout load "$build/plugins/libxfp_pcap_capture.so" --config "file=$run/arp.pcap" >/dev/null
x apply tools/demo/policy.xfp >/dev/null

ip netns exec "$ns_host" "$xfp" port listen approver --port-dir "$run/ports" --approve --json \
  >"$run/port.log" 2>"$run/port.err" &
bg+=($!)
listener_pid=$!

seconds=$((minutes * 60))
host_mac=02:00:00:00:01:01
flow() { ip netns exec "$ns_src" "$send" --dev "$dev_src" --duration "$seconds" --json "$@" >>"$run/sent.json" & bg+=($!); }
flow --dst $host_mac --ethertype ipv4 --rate 400
flow --dst $host_mac --ethertype ipv4 --vlan 100 --rate 300
flow --dst $host_mac --ethertype ipv4 --vlan 200 --rate 200
flow --dst $host_mac --ethertype lldp --rate 100
flow --dst ff:ff:ff:ff:ff:ff --ethertype arp --rate 50
traffic=("${bg[@]:1}")

# A frame of a flow, for the redirect ops (an IPv4/UDP frame, hex).
frame_hex=020000000101020000000202080045000020000000004011000000c6120002c612000103e807d0000c000000000000
records_hex=584652310100000007000000000000000466757a7a0300637478  # one record: redirector 7, plugin "fuzz", context "ctx"
requests=0
failures=0
round=0
req() {
  requests=$((requests + 1))
  if ! x "$@" >/dev/null 2>>"$run/requests.err"; then failures=$((failures + 1)); fi
}
end=$((SECONDS + seconds))
while [ $SECONDS -lt $end ]; do
  kill -0 "$daemon_pid" 2>/dev/null || { echo "soak-sanitized.sh: the daemon died" >&2; cat "$run/daemon.log" >&2; exit 1; }
  round=$((round + 1))
  # A new source MAC inside the policy's allow-list filter (remote MAC
  # 02:00:00:00:00:00/24): the allow-list asks the approver about it.
  mac=$(printf '02:00:00:5e:%02x:%02x' $(((round >> 8) & 255)) $((round & 255)))
  ip netns exec "$ns_src" "$send" --dev "$dev_src" --dst $host_mac --src "$mac" --ethertype ipv4 --count 3 \
    --json >>"$run/sent.json" 2>/dev/null || true
  req filter add name "soak-$round" ethertype eq 0x88b6 vlan range 300-399 action block
  req status
  req flows --limit 20
  req callout list
  req filter list
  req redirect list
  req redirect set --frame-hex "$frame_hex" --records-hex "$records_hex"
  req redirect query --frame-hex "$frame_hex" --size 0
  req redirect query --frame-hex "$frame_hex" --context
  req redirect set --frame-hex "$frame_hex" --records-hex ""
  req filter delete "soak-$round"
  if [ $((round % 20)) = 0 ]; then req apply tools/demo/policy.xfp; fi
done

for p in "${traffic[@]}"; do wait "$p" || true; done
x --json status >"$run/status.json" || true
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
kill -TERM "$listener_pid" 2>/dev/null || true
wait "$listener_pid" 2>/dev/null || true

sent=$(python3 -c 'import json,sys; print(sum(json.loads(l)["sent"] for l in open(sys.argv[1]) if l.strip()))' "$run/sent.json")
counted=$(python3 - "$run/status.json" <<'EOF'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except Exception:
    print("?"); sys.exit()
def walk(o, keys=("frames",)):
    total = 0
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "inbound" and isinstance(v, dict) and isinstance(v.get("frames"), int):
                total += v["frames"]
            else:
                total += walk(v)
    elif isinstance(o, list):
        for v in o:
            total += walk(v)
    return total
print(walk(s))
EOF
)
answered=$(grep -c . "$run/port.log" || true)
reports=$(find "$logs" -type f | wc -l)
echo "soak: ${minutes} min; frames sent $sent; inbound frames counted by xfp $counted;" \
  "control requests $requests ($failures failed); rounds $round; port messages answered $answered;" \
  "daemon exit $rc; sanitizer reports $reports"
if [ "$failures" -gt 0 ]; then echo "--- failed requests:" >&2; sort "$run/requests.err" | uniq -c | sort -rn | head >&2; fi
if [ "$reports" -gt 0 ]; then
  for f in "$logs"/*; do echo "--- $f" >&2; cat "$f" >&2; done
  exit 1
fi
[ "$rc" -eq 0 ] || { echo "soak-sanitized.sh: the daemon exited $rc" >&2; tail -20 "$run/daemon.log" >&2; exit 1; }
[ "$failures" -eq 0 ] || exit 1
ok=1
