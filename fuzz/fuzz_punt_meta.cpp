// The punt metadata header: what a punt worker does with the 32 bytes of
// struct xfp_punt_meta in front of a frame in a UMEM chunk
// (user/punt_worker.cpp): parse the frame under meta.layer, then
// PolicySnapshot::resume() against the installed policy.
//
// The policy is fixed: tools/demo/policy.xfp (a hard sublayer, terminating
// and inspection callouts, fail-open, VLAN and MAC filters) plus a second
// callout sublayer, compiled and snapshotted once under a generation whose
// low 32 bits differ from its high ones.
//
// Input: [32 bytes meta][1 control byte][4 verdict bytes][frame...]. Control
// bits force the magic (bit 0), the generation (bit 1) and a valid layer
// (bit 2), so most inputs get past the header checks; the verdict bytes
// script what the callouts answer (served, action, absorbed).
//
// Invariants: resume() returns nullopt or a Decision, never crashes; a
// Decision only for a meta that names a callout filter of this snapshot;
// a Decision's action is permit or block, unserved <= invoked, the recorded
// callouts are the ones invoked, an absorbed frame names its callout.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "fuzz_common.hpp"
#include "xfp/compiler.hpp"
#include "xfp/filter_set.hpp"
#include "xfp/filter_syntax.hpp"
#include "xfp/frame_parse.h"
#include "xfp/policy_snapshot.hpp"

namespace {

constexpr uint64_t kGeneration = 0x500000007ull;

const char kPolicy[] = R"(
flush
default inbound permit
default outbound block
sublayer add security weight 100
sublayer add inspect weight 50
filter add name block-lldp sublayer security ethertype eq lldp action block flags persistent
filter add name block-bad-oui sublayer security remote-mac prefix 02:0b:ad:00:00:00/24 action block
filter add name block-malformed sublayer security l2-flags all-set malformed action block
filter add name watch sublayer inspect ethertype range 0x0800-0x86dd action callout-inspection callout fuzz.inspect
filter add name veto sublayer inspect weight 3 vlan range 1-4094 action callout-terminating callout fuzz.veto flags permit-if-callout-unregistered
filter add name permit-vlan-100 weight 20 vlan eq 100 action permit
filter add name block-other-vlans weight 10 l2-flags any-set vlan-tagged action block
filter add name allowlist weight 15 ethertype eq ipv4 l2-flags none-set vlan-tagged remote-mac prefix 02:00:00:00:00:00/24 action callout-terminating callout xfp.sample.mac-allowlist flags persistent,permit-if-callout-unregistered
filter add name capture-arp weight 6 ethertype eq arp action callout-inspection callout xfp.sample.pcap
filter add name count-broadcast weight 5 local-addr-type eq broadcast action permit
filter add name unknown weight 4 frame-length range 0-63 action callout-unknown callout fuzz.unknown
filter add name no-lldp-out layer outbound ethertype eq lldp action block
filter add name out-callout layer outbound weight 2 action callout-terminating callout fuzz.out
filter add name out-permit layer outbound weight 1 ethertype ne lldp action permit
)";

const xfp::PolicySnapshot& snapshot() {
  static const std::shared_ptr<const xfp::PolicySnapshot> snap = [] {
    auto no_ifaces = [](std::string_view) -> xfp::Result<uint32_t> {
      return xfp::make_error(19, "no interfaces here");
    };
    auto cmds = xfp::parse_batch(kPolicy, "fuzz-policy", no_ifaces);
    XFP_FUZZ_CHECK(cmds.ok());
    static xfp::FilterSet set;
    XFP_FUZZ_CHECK(set.apply(*cmds).ok());
    auto compiled = xfp::compile(set);
    XFP_FUZZ_CHECK(compiled.ok());
    auto s = xfp::PolicySnapshot::create(set, *compiled, kGeneration);
    XFP_FUZZ_CHECK(s.ok());
    return *s;
  }();
  return *snap;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kHead = sizeof(xfp_punt_meta) + 1 + 4;
  if (size < kHead) return 0;
  const xfp::PolicySnapshot& snap = snapshot();

  xfp_punt_meta meta;
  std::memcpy(&meta, data, sizeof meta);
  const uint8_t ctl = data[sizeof meta];
  if (ctl & 1) meta.magic = XFP_PUNT_MAGIC;
  if (ctl & 2) meta.generation = static_cast<uint32_t>(kGeneration);
  if (ctl & 4) meta.layer &= 1;
  const uint8_t* verdicts = data + sizeof meta + 1;
  // Exactly the frame's bytes on the heap, never a null pointer (a UMEM
  // chunk always exists).
  const size_t len = size - kHead;
  std::unique_ptr<uint8_t[]> frame(new uint8_t[len]);
  if (len) std::memcpy(frame.get(), data + kHead, len);

  // As the worker: the frame is parsed under the layer the meta names,
  // and only a known layer gets this far.
  xfp_fields fields{};
  fields.ifindex = 3;
  if (meta.layer < XFP_LAYER_COUNT)
    xfp_parse_frame(frame.get(), frame.get() + len, static_cast<uint32_t>(len), meta.layer, &fields);

  uint32_t calls = 0;
  std::vector<uint64_t> seen;
  xfp::FunctionInvoker invoker([&](const xfp::Filter& f, const xfp_fields&, bool) {
    XFP_FUZZ_CHECK(xfp::is_callout(f.action));
    const uint8_t v = verdicts[calls++ % 4];
    seen.push_back(f.id);
    xfp::CalloutVerdict r;
    r.served = v & 1;
    const uint8_t a = (v >> 1) & 3;
    r.action = a == 0 ? XFP_ACTION_PERMIT : a == 1 ? XFP_ACTION_BLOCK : XFP_ACTION_CONTINUE;
    r.absorbed = (v & 8) && r.served;
    return r;
  });

  std::optional<xfp::Decision> d = snap.resume(meta, fields, invoker);
  if (!d) return 0;

  XFP_FUZZ_CHECK(meta.magic == XFP_PUNT_MAGIC);
  XFP_FUZZ_CHECK(meta.layer < XFP_LAYER_COUNT);
  XFP_FUZZ_CHECK(snap.is_generation_of(meta));
  const xfp::Layer layer = static_cast<xfp::Layer>(meta.layer);
  const xfp::Filter* punted = snap.filter_at_rank(layer, meta.rank);
  XFP_FUZZ_CHECK(punted != nullptr && xfp::is_callout(punted->action));

  XFP_FUZZ_CHECK(d->action == xfp::Action::Permit || d->action == xfp::Action::Block);
  XFP_FUZZ_CHECK(d->callouts_invoked == calls);
  XFP_FUZZ_CHECK(d->callouts_unserved <= d->callouts_invoked);
  for (size_t i = 0; i < seen.size() && i < xfp::Decision::kRecordedCallouts; ++i)
    XFP_FUZZ_CHECK(d->invoked[i] == seen[i]);
  if (d->absorbed) XFP_FUZZ_CHECK(d->filter_id != 0);
  if (d->decided_before_resume) XFP_FUZZ_CHECK(d->filter_id == 0);
  return 0;
}
