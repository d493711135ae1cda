// Filter compiler: conditions -> (value, mask) pairs per field -> cross
// product per filter -> tuple-space tables. See compiler.hpp.
#include "xfp/compiler.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <unordered_map>

#include <fmt/format.h>

namespace xfp {
namespace {

struct MaskedValue {
  uint64_t value;
  uint64_t mask;
};

// Smallest set of prefixes (value, mask) covering [lo, hi] in `bits` bits.
void append_range_prefixes(uint64_t lo, uint64_t hi, unsigned bits, std::vector<MaskedValue>& out) {
  const uint64_t full = bits >= 64 ? ~0ull : (1ull << bits) - 1;
  while (lo <= hi) {
    unsigned k = lo == 0 ? bits : static_cast<unsigned>(__builtin_ctzll(lo));
    if (k > bits) k = bits;
    // Shrink the block until it fits inside [lo, hi].
    while (k > 0 && (k >= 64 || lo + ((1ull << k) - 1) > hi || lo + ((1ull << k) - 1) < lo)) --k;
    uint64_t size_mask = k >= 64 ? ~0ull : (1ull << k) - 1;
    out.push_back({lo, full & ~size_mask});
    uint64_t next = lo + size_mask + 1;
    if (next == 0 || next - 1 >= hi || next > full) break;
    lo = next;
  }
}

// The (value, mask) pairs a single condition matches, OR-ed.
Result<std::vector<MaskedValue>> expand_condition(const Condition& c) {
  const unsigned bits = field_bits(c.field);
  const uint64_t full = field_max(c.field);
  const uint64_t mask = c.mask & full;
  std::vector<MaskedValue> out;
  auto range = [&](uint64_t lo, uint64_t hi) {
    if (lo <= hi) append_range_prefixes(lo, hi, bits, out);
  };
  switch (c.match) {
    case Match::Equal:
    case Match::Prefix:
      out.push_back({c.value & mask, mask});
      break;
    case Match::NotEqual:
      if (mask == full) {
        if (c.value > 0) range(0, c.value - 1);
        if (c.value < full) range(c.value + 1, full);
      } else {
        // x & mask != v: the first masked bit (from the top) where x differs.
        uint64_t above = 0;
        for (int b = static_cast<int>(bits) - 1; b >= 0; --b) {
          uint64_t bit = 1ull << b;
          if (!(mask & bit)) continue;
          out.push_back({((c.value & above) | (~c.value & bit)), above | bit});
          above |= bit;
        }
      }
      break;
    case Match::Greater:
      if (c.value < full) range(c.value + 1, full);
      break;
    case Match::GreaterOrEqual:
      range(c.value, full);
      break;
    case Match::Less:
      if (c.value > 0) range(0, c.value - 1);
      break;
    case Match::LessOrEqual:
      range(0, c.value);
      break;
    case Match::Range:
      range(c.value, c.value_hi);
      break;
    case Match::FlagsAllSet:
      out.push_back({c.value & full, c.value & full});
      break;
    case Match::FlagsNoneSet:
      out.push_back({0, c.value & full});
      break;
    case Match::FlagsAnySet:
      for (unsigned b = 0; b < bits; ++b)
        if (c.value & (1ull << b)) out.push_back({1ull << b, 1ull << b});
      break;
  }
  return out;
}

void put_mac(uint8_t* dst, uint64_t v) {
  for (int i = 0; i < 6; ++i) dst[i] = static_cast<uint8_t>(v >> (8 * (5 - i)));
}

// Writes a field's value into its place in xfp_fields (host order for
// integers, wire order for MACs).
void put_field(xfp_fields& k, Field f, uint64_t v) {
  switch (f) {
    case Field::Interface: k.ifindex = static_cast<uint32_t>(v); break;
    case Field::Compartment: k.compartment = static_cast<uint32_t>(v); break;
    case Field::LocalMac: put_mac(k.local_mac, v); break;
    case Field::RemoteMac: put_mac(k.remote_mac, v); break;
    case Field::InterfaceMac: put_mac(k.iface_mac, v); break;
    case Field::EtherType: k.ethertype = static_cast<uint16_t>(v); break;
    case Field::Vlan: k.vlan = static_cast<uint16_t>(v); break;
    case Field::InnerVlan: k.inner_vlan = static_cast<uint16_t>(v); break;
    case Field::FrameLength: k.frame_len = static_cast<uint16_t>(v); break;
    case Field::L2Flags: k.l2_flags = static_cast<uint16_t>(v); break;
    case Field::LocalAddrType: k.local_addr_type = static_cast<uint8_t>(v); break;
    case Field::RemoteAddrType: k.remote_addr_type = static_cast<uint8_t>(v); break;
  }
}

using KeyBytes = std::array<uint8_t, sizeof(xfp_fields)>;

KeyBytes to_bytes(const xfp_fields& k) {
  KeyBytes b;
  std::memcpy(b.data(), &k, sizeof k);
  return b;
}

struct KeyHash {
  size_t operator()(const KeyBytes& b) const {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (uint8_t c : b) h = (h ^ c) * 1099511628211ull;
    return h;
  }
};

struct LayerBuilder {
  std::map<KeyBytes, uint8_t> tuple_ids;  // mask -> id, ordered for stable output
  std::vector<xfp_tuple> tuples;
  std::unordered_map<KeyBytes, xfp_entry, KeyHash> entries;
};

xfp_match make_match(const Filter& f, uint32_t rank, uint32_t slot) {
  xfp_match m{};
  m.rank = rank;
  m.slot = slot;
  m.action = static_cast<uint8_t>(f.action);
  if (f.flags & XFP_FILTER_CLEAR_ACTION_RIGHT) m.flags |= XFP_MATCH_HARD;
  if (is_callout(f.action)) m.flags |= XFP_MATCH_CALLOUT;
  if (f.flags & XFP_FILTER_PERMIT_IF_CALLOUT_UNREGISTERED) m.flags |= XFP_MATCH_FAIL_OPEN;
  return m;
}

Status add_filter_entries(LayerBuilder& lb, const Filter& f, const xfp_match& m, uint32_t sublayer_slot,
                          const CompileLimits& limits) {
  // Per field, the OR of its conditions' pairs.
  std::map<Field, std::vector<MaskedValue>> per_field;
  for (const Condition& c : f.conditions) {
    auto pairs = expand_condition(c);
    if (!pairs) return std::move(pairs).error();
    auto& dst = per_field[c.field];
    dst.insert(dst.end(), pairs->begin(), pairs->end());
  }
  uint64_t combos = 1;
  for (const auto& [field, pairs] : per_field) {
    if (pairs.empty()) return Ok{};  // a condition that matches nothing: the filter never matches
    combos *= pairs.size();
    if (combos > limits.max_entries_per_filter)
      return make_error(E2BIG, fmt::format("filter {} expands into more than {} table entries; "
                                           "narrow its ranges or split it",
                                           f.id, limits.max_entries_per_filter));
  }
  std::vector<const std::vector<MaskedValue>*> dims;
  std::vector<Field> fields;
  for (const auto& [field, pairs] : per_field) {
    fields.push_back(field);
    dims.push_back(&pairs);
  }
  std::vector<size_t> idx(dims.size(), 0);
  for (;;) {
    xfp_fields key{}, mask{};
    for (size_t d = 0; d < dims.size(); ++d) {
      const MaskedValue& mv = (*dims[d])[idx[d]];
      put_field(key, fields[d], mv.value & mv.mask);
      put_field(mask, fields[d], mv.mask);
    }
    KeyBytes mb = to_bytes(mask);
    auto [it, inserted] = lb.tuple_ids.try_emplace(mb, static_cast<uint8_t>(lb.tuples.size()));
    if (inserted) {
      if (lb.tuples.size() >= XFP_MAX_TUPLES)
        return make_error(E2BIG, fmt::format("the {} layer needs more than {} condition shapes "
                                             "(filter {} adds one); use fewer distinct masks, "
                                             "prefix lengths or ranges",
                                             layer_name(f.layer), XFP_MAX_TUPLES, f.id));
      lb.tuples.push_back(xfp_tuple{mask});
    }
    key.layer = static_cast<uint8_t>(f.layer);
    key.tuple = it->second;
    auto [eit, fresh] = lb.entries.try_emplace(to_bytes(key));
    if (fresh)
      for (auto& b : eit->second.best) b = xfp_match{XFP_RANK_NONE, 0, 0, 0, 0};
    xfp_match& cur = eit->second.best[sublayer_slot];
    if (m.rank < cur.rank) cur = m;
    // Advance the odometer.
    size_t d = 0;
    for (; d < dims.size(); ++d) {
      if (++idx[d] < dims[d]->size()) break;
      idx[d] = 0;
    }
    if (d == dims.size()) break;
  }
  return Ok{};
}

}  // namespace

Result<CompiledSet> compile(const FilterSet& set, const CompileLimits& limits) {
  CompiledSet out;
  for (int l = 0; l < XFP_LAYER_COUNT; ++l)
    out.default_action[l] = static_cast<uint8_t>(set.default_action(static_cast<Layer>(l)));

  for (int l = 0; l < XFP_LAYER_COUNT; ++l) {
    const Layer layer = static_cast<Layer>(l);
    // Filters the kernel evaluates. An inspection callout can only continue,
    // and no callout is reachable yet, so it cannot change a decision.
    std::vector<const Filter*> active;
    for (const Filter* f : set.filters())
      if (f->layer == layer && !(f->flags & XFP_FILTER_DISABLED) &&
          f->action != Action::CalloutInspection)
        active.push_back(f);

    // Sublayer slots: sublayers holding filters, highest weight first.
    std::vector<const Sublayer*> used;
    for (const Sublayer& s : set.sublayers())
      if (std::any_of(active.begin(), active.end(), [&](const Filter* f) { return f->sublayer == s.name; }))
        used.push_back(&s);
    std::sort(used.begin(), used.end(), [](const Sublayer* a, const Sublayer* b) {
      return a->weight != b->weight ? a->weight > b->weight : a->name < b->name;
    });
    if (used.size() > XFP_MAX_SUBLAYERS)
      return make_error(E2BIG, fmt::format("the {} layer has filters in {} sublayers; at most {} are supported",
                                           layer_name(layer), used.size(), XFP_MAX_SUBLAYERS));
    std::map<std::string, uint32_t> slot_of_sublayer;
    CompiledLayer& cl = out.layers[l];
    for (size_t i = 0; i < used.size(); ++i) {
      slot_of_sublayer[used[i]->name] = static_cast<uint32_t>(i);
      cl.sublayer_order.push_back(used[i]->name);
    }
    cl.nsublayers = static_cast<uint32_t>(used.size());

    // Rank: weight order within a sublayer (ties: older filter first).
    std::sort(active.begin(), active.end(), [](const Filter* a, const Filter* b) {
      return a->weight != b->weight ? a->weight > b->weight : a->id < b->id;
    });
    LayerBuilder lb;
    for (size_t rank = 0; rank < active.size(); ++rank) {
      const Filter& f = *active[rank];
      xfp_match m = make_match(f, static_cast<uint32_t>(rank), set.slot_of(f.id).value_or(0));
      XFP_TRY(add_filter_entries(lb, f, m, slot_of_sublayer.at(f.sublayer), limits));
      if (lb.entries.size() > limits.max_entries)
        return make_error(E2BIG, fmt::format("the compiled set needs more than {} table entries "
                                             "(raise the daemon's --max-entries)",
                                             limits.max_entries));
    }
    cl.tuples = std::move(lb.tuples);
    cl.entries.reserve(lb.entries.size());
    for (auto& [kb, entry] : lb.entries) {
      CompiledEntry ce;
      std::memcpy(&ce.key, kb.data(), sizeof ce.key);
      ce.value = entry;
      cl.entries.push_back(ce);
    }
  }
  if (out.entry_count() > limits.max_entries)
    return make_error(E2BIG, fmt::format("the compiled set needs {} table entries, more than {} "
                                         "(raise the daemon's --max-entries)",
                                         out.entry_count(), limits.max_entries));
  return out;
}

}  // namespace xfp
