#include "xfp/flow_offloads.hpp"

namespace xfp {

namespace {

xfp_offload_key key_of(const OffloadedFlow& f) {
  xfp_offload_key k{};
  k.flow = f.key;
  k.layer = static_cast<uint8_t>(f.layer);
  return k;
}

}  // namespace

Status DatapathOffloads::offload(const xfp_offload_key& key, uint8_t verdict, uint32_t generation) {
  // The generation's low 32 bits are what the kernel compares; the Datapath
  // takes the full one and keeps those.
  return dp_.offload_flow(key.flow, static_cast<Layer>(key.layer), verdict, 0, generation);
}

Status DatapathOffloads::remove(const xfp_offload_key& key) {
  return dp_.remove_offload(key.flow, static_cast<Layer>(key.layer));
}

Status DatapathOffloads::read_all(const std::function<void(const xfp_offload_key&, const xfp_offload&)>& fn) {
  auto all = dp_.read_offloads();
  if (!all) return std::move(all).error();
  for (const OffloadedFlow& f : *all) {
    xfp_offload v{};
    v.packets = f.packets;
    v.bytes = f.bytes;
    v.last_seen_ns = f.last_seen_ns;
    v.gen_first = f.gen_first;
    v.gen_last = f.gen_last;
    v.redirect_ifindex = f.redirect_ifindex;
    v.verdict = f.verdict;
    v.flags = f.flags;
    fn(key_of(f), v);
  }
  return Ok{};
}

Status DatapathOffloads::revalidate(uint64_t next, const std::function<bool(const xfp_offload_key&)>& keep) {
  auto kept = dp_.revalidate_offloads(next, [&](const OffloadedFlow& f) { return keep(key_of(f)); });
  if (!kept) return std::move(kept).error();
  return Ok{};
}

}  // namespace xfp
