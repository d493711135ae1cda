// Filter compiler: conditions -> (value, mask) pairs per field -> cross
// product per filter -> tuple-space tables. See compiler.hpp.
#include "xfp/compiler.hpp"
#include "xfp/arbitration.h"
#include "xfp/fields_key.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <map>
#include <set>
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


struct LayerBuilder {
  std::map<FieldsKey, uint8_t> tuple_ids;  // mask -> id (ids in order of first use)
  std::vector<xfp_tuple> tuples;
  std::unordered_map<FieldsKey, SublayerRanks, FieldsKeyHash> entries;
};

// Sublayer slots of one layer. An inspection callout never decides (it can
// only continue), so its filters sit in a shadow slot just before their
// sublayer's own: while no callout is served, the kernel's arbitration skips
// the shadow slot and the sublayer's deciding filter is still found; when
// one is served, the shadow slot is where the frame is punted.
struct SlotMap {
  std::map<std::string, uint32_t> real, shadow;
  uint32_t of(const Filter& f) const {
    return f.action == Action::CalloutInspection ? shadow.at(f.sublayer) : real.at(f.sublayer);
  }
};

xfp_match make_match(const Filter& f, uint32_t rank, uint32_t slot, uint16_t callout_id) {
  xfp_match m{};
  m.rank = rank;
  m.slot = slot;
  m.callout_id = callout_id;
  m.action = static_cast<uint8_t>(f.action);
  if (f.flags & XFP_FILTER_CLEAR_ACTION_RIGHT) m.flags |= XFP_MATCH_HARD;
  if (is_callout(f.action)) m.flags |= XFP_MATCH_CALLOUT;
  if (f.flags & XFP_FILTER_PERMIT_IF_CALLOUT_UNREGISTERED) m.flags |= XFP_MATCH_FAIL_OPEN;
  return m;
}

// A filter's conditions as (value, mask) pairs per field: the OR of each
// field's conditions.
using PairsByField = std::map<Field, std::vector<MaskedValue>>;

Result<PairsByField> pairs_by_field(const Filter& f) {
  PairsByField per_field;
  for (const Condition& c : f.conditions) {
    auto pairs = expand_condition(c);
    if (!pairs) return std::move(pairs).error();
    auto& dst = per_field[c.field];
    dst.insert(dst.end(), pairs->begin(), pairs->end());
  }
  return per_field;
}

Status add_filter_entries(LayerBuilder& lb, const Filter& f, uint32_t rank, uint32_t sublayer_slot,
                          const CompileLimits& limits) {
  auto grouped = pairs_by_field(f);
  if (!grouped) return std::move(grouped).error();
  const PairsByField& per_field = *grouped;
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
      set_field_value(key, fields[d], mv.value & mv.mask);
      set_field_value(mask, fields[d], mv.mask);
    }
    const FieldsKey mb = fields_key(mask);
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
    auto [eit, fresh] = lb.entries.try_emplace(fields_key(key));
    if (fresh) eit->second.fill(XFP_RANK_NONE);
    uint32_t& cur = eit->second[sublayer_slot];
    cur = std::min(cur, rank);
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

// One small field as the pruning tables see it.
struct PruneField {
  uint8_t bit;  // enum xfp_direct_field
  uint32_t offset;
  uint32_t domain;
  uint32_t (*get)(const xfp_fields&);
};

constexpr PruneField kPruneFields[] = {
    {XFP_DIRECT_ETHERTYPE, XFP_PRUNE_ETHERTYPE, 65536, [](const xfp_fields& k) -> uint32_t { return k.ethertype; }},
    {XFP_DIRECT_FRAME_LEN, XFP_PRUNE_FRAME_LEN, 65536, [](const xfp_fields& k) -> uint32_t { return k.frame_len; }},
    {XFP_DIRECT_VLAN, XFP_PRUNE_VLAN, 4096, [](const xfp_fields& k) -> uint32_t { return k.vlan; }},
    {XFP_DIRECT_INNER_VLAN, XFP_PRUNE_INNER_VLAN, 4096, [](const xfp_fields& k) -> uint32_t { return k.inner_vlan; }},
    {XFP_DIRECT_L2_FLAGS, XFP_PRUNE_L2_FLAGS, 128, [](const xfp_fields& k) -> uint32_t { return k.l2_flags; }},
    {XFP_DIRECT_ADDR_TYPES, XFP_PRUNE_ADDR_TYPES, 16,
     [](const xfp_fields& k) -> uint32_t { return (uint32_t(k.local_addr_type) << 2) | k.remote_addr_type; }},
};

// For each value of each small field, the tuples that could match it: a
// tuple that does not constrain the field, or one with an entry whose masked
// value equals the frame's value under the tuple's mask. Necessary, not
// sufficient: pruning only skips tuples that cannot match. The kernel probes
// groups of tuples, so the masks name groups: a group survives while one of
// its tuples does.
void build_prune_tables(CompiledLayer& cl) {
  std::vector<uint64_t>& prune = cl.prune;
  prune.assign(XFP_PRUNE_SPAN, 0);
  cl.prune_fields = 0;
  cl.needs_iface = false;
  for (const xfp_tuple& t : cl.tuples) {
    for (const PruneField& pf : kPruneFields)
      if (pf.get(t.mask)) cl.prune_fields |= pf.bit;
    static constexpr uint8_t kZeroMac[6] = {};
    if (t.mask.compartment || std::memcmp(t.mask.iface_mac, kZeroMac, 6) != 0) cl.needs_iface = true;
  }
  std::vector<std::vector<uint32_t>> values_of_tuple(cl.tuples.size());
  for (const PruneField& pf : kPruneFields) {
    for (auto& v : values_of_tuple) v.clear();
    for (const CompiledEntry& e : cl.entries) values_of_tuple[e.key.tuple].push_back(pf.get(e.key));
    for (size_t t = 0; t < cl.tuples.size(); ++t) {
      const uint64_t bit = 1ull << t;
      const uint32_t mask = pf.get(cl.tuples[t].mask);
      uint64_t* span = prune.data() + pf.offset;
      if (mask == 0) {
        for (uint32_t v = 0; v < pf.domain; ++v) span[v] |= bit;
        continue;
      }
      std::vector<uint32_t>& values = values_of_tuple[t];
      std::sort(values.begin(), values.end());
      values.erase(std::unique(values.begin(), values.end()), values.end());
      if ((mask & (pf.domain - 1)) == pf.domain - 1 && mask < pf.domain) {
        for (uint32_t v : values)
          if (v < pf.domain) span[v] |= bit;
        continue;
      }
      for (uint32_t v = 0; v < pf.domain; ++v)
        if (std::binary_search(values.begin(), values.end(), v & mask)) span[v] |= bit;
    }
  }
  for (uint64_t& tuple_bits : prune) {
    uint64_t group_bits = 0;
    for (uint64_t b = tuple_bits; b != 0; b &= b - 1)
      group_bits |= 1ull << cl.grouping.group_of_tuple[std::countr_zero(b)];
    tuple_bits = group_bits;
  }
  // A field whose every value leaves every group standing prunes nothing: a
  // frame would look its value up for no effect (tuples that constrain it
  // share groups with tuples that do not).
  const size_t ngroups = cl.grouping.groups.size();
  const uint64_t all_groups = ngroups >= 64 ? ~0ull : (1ull << ngroups) - 1;
  for (const PruneField& pf : kPruneFields) {
    const uint64_t* span = prune.data() + pf.offset;
    if (std::all_of(span, span + pf.domain, [&](uint64_t g) { return g == all_groups; }))
      cl.prune_fields &= static_cast<uint8_t>(~pf.bit);
  }
}

// ---- direct tables ---------------------------------------------------------

struct DirectGroup {
  uint8_t bit;       // enum xfp_direct_field
  uint32_t offset;   // in the XFP_PRUNE_SPAN layout
  uint32_t domain;
};

constexpr DirectGroup kDirectGroups[] = {
    {XFP_DIRECT_ETHERTYPE, XFP_PRUNE_ETHERTYPE, 65536}, {XFP_DIRECT_FRAME_LEN, XFP_PRUNE_FRAME_LEN, 65536},
    {XFP_DIRECT_VLAN, XFP_PRUNE_VLAN, 4096},           {XFP_DIRECT_INNER_VLAN, XFP_PRUNE_INNER_VLAN, 4096},
    {XFP_DIRECT_L2_FLAGS, XFP_PRUNE_L2_FLAGS, 128},     {XFP_DIRECT_ADDR_TYPES, XFP_PRUNE_ADDR_TYPES, 16},
};

int direct_group_of_field(Field f) {
  switch (f) {
    case Field::EtherType: return 0;
    case Field::FrameLength: return 1;
    case Field::Vlan: return 2;
    case Field::InnerVlan: return 3;
    case Field::L2Flags: return 4;
    case Field::LocalAddrType:
    case Field::RemoteAddrType: return 5;
    default: return -1;
  }
}

// The direct group a filter belongs to: every condition on the same small
// field (address types count as one), at least one condition. -1 otherwise.
int direct_group_of(const Filter& f) {
  if (f.conditions.empty()) return -1;
  int g = direct_group_of_field(f.conditions.front().field);
  for (const Condition& c : f.conditions)
    if (direct_group_of_field(c.field) != g) return -1;
  return g;
}

// Next-unpainted-value pointers: painting an interval costs its unpainted
// values only, so a whole group paints in O(domain + intervals).
class PaintCursor {
 public:
  explicit PaintCursor(uint32_t domain) : next_(domain + 1) {
    for (uint32_t v = 0; v <= domain; ++v) next_[v] = v;
  }
  uint32_t find(uint32_t v) {
    uint32_t root = v;
    while (next_[root] != root) root = next_[root];
    while (next_[v] != root) {
      uint32_t n = next_[v];
      next_[v] = root;
      v = n;
    }
    return root;
  }
  void take(uint32_t v) { next_[v] = v + 1; }

 private:
  std::vector<uint32_t> next_;
};

// Values of a group's domain a filter matches, as intervals where possible.
struct DirectPredicate {
  std::vector<std::pair<uint32_t, uint32_t>> intervals;  // when the group is one field
  std::vector<uint32_t> values;                          // small domains: listed
};

Result<DirectPredicate> direct_predicate(const Filter& f, const DirectGroup& g) {
  DirectPredicate p;
  if (g.domain <= 128) {
    // Few values: evaluate the filter on each (same field OR, fields AND).
    auto grouped = pairs_by_field(f);
    if (!grouped) return std::move(grouped).error();
    for (uint32_t v = 0; v < g.domain; ++v) {
      bool all = true;
      for (const auto& [field, pairs] : *grouped) {
        uint64_t x = v;
        if (field == Field::LocalAddrType) x = v >> 2;
        if (field == Field::RemoteAddrType) x = v & 3;
        bool any = std::any_of(pairs.begin(), pairs.end(),
                               [&](const MaskedValue& mv) { return (x & mv.mask) == mv.value; });
        if (!any) { all = false; break; }
      }
      if (all) p.values.push_back(v);
    }
    return p;
  }
  // A 12- or 16-bit field: its conditions' pairs, OR-ed. A pair matches the
  // values x of the domain with (x & mask) == value. The bits it leaves free
  // below its lowest masked bit make runs of consecutive values; the free
  // bits above pick which runs. A prefix (an equality, a range's piece) is
  // one run; a flags test or a sparse mask is several, at most the domain.
  const uint64_t dmask = g.domain - 1;
  for (const Condition& c : f.conditions) {
    auto pairs = expand_condition(c);
    if (!pairs) return std::move(pairs).error();
    for (const MaskedValue& mv : *pairs) {
      const uint64_t mask = mv.mask & dmask;
      if (mv.value & ~mask) continue;  // wants a bit outside the mask or the domain: no value
      const uint64_t run = mask ? (mask & -mask) - 1 : dmask;
      const uint64_t picks = ~mask & dmask & ~run;
      uint64_t s = 0;
      do {
        p.intervals.emplace_back(static_cast<uint32_t>(mv.value | s), static_cast<uint32_t>(mv.value | s | run));
        s = (s - picks) & picks;  // next subset of the free upper bits
      } while (s != 0);
    }
  }
  return p;
}

// Paints one group: for each value of its domain, the best rank per sublayer.
Result<std::vector<SublayerRanks>> paint_group(
    const DirectGroup& g, const std::vector<const Filter*>& filters, const std::vector<uint32_t>& rank_of,
    uint32_t nsublayers, const SlotMap& slots) {
  std::vector<SublayerRanks> ranks(g.domain);
  for (auto& r : ranks) r.fill(XFP_RANK_NONE);
  std::vector<PaintCursor> cursors(nsublayers, PaintCursor(g.domain));
  for (size_t i = 0; i < filters.size(); ++i) {  // rank order: the first painter wins
    const Filter& f = *filters[i];
    const uint32_t s = slots.of(f);
    auto pred = direct_predicate(f, g);
    if (!pred) return std::move(pred).error();
    PaintCursor& cur = cursors[s];
    for (auto [lo, hi] : pred->intervals)
      for (uint32_t v = cur.find(lo); v <= hi; v = cur.find(v)) {
        ranks[v][s] = rank_of[i];
        cur.take(v);
      }
    for (uint32_t v : pred->values)
      if (cur.find(v) == v) {
        ranks[v][s] = rank_of[i];
        cur.take(v);
      }
  }
  return ranks;
}

// Builds the direct tables, smallest domains first. Distinct results share
// the entry table with tuple space (the set's size limit counts both).
Status build_direct_tables(CompiledLayer& cl, const std::vector<std::vector<const Filter*>>& by_group,
                           const std::vector<std::vector<uint32_t>>& ranks_of_group, const SlotMap& slots) {
  cl.direct_map.assign(XFP_PRUNE_SPAN, 0);
  cl.direct_results.assign(1, SublayerRanks{});
  std::map<SublayerRanks, uint32_t> result_ids;
  std::vector<size_t> order(std::size(kDirectGroups));
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [](size_t a, size_t b) { return kDirectGroups[a].domain < kDirectGroups[b].domain; });
  for (size_t gi : order) {
    if (by_group[gi].empty()) continue;
    const DirectGroup& g = kDirectGroups[gi];
    auto painted = paint_group(g, by_group[gi], ranks_of_group[gi], cl.nsublayers, slots);
    if (!painted) return std::move(painted).error();
    const auto& ranks = *painted;
    auto unmatched = [](const SublayerRanks& r) {
      return std::all_of(r.begin(), r.end(), [](uint32_t x) { return x == XFP_RANK_NONE; });
    };
    std::set<SublayerRanks> fresh;
    for (const SublayerRanks& r : ranks)
      if (!unmatched(r) && !result_ids.count(r)) fresh.insert(r);
    for (const SublayerRanks& r : fresh) {
      result_ids.emplace(r, static_cast<uint32_t>(cl.direct_results.size()));
      cl.direct_results.push_back(r);
    }
    for (uint32_t v = 0; v < g.domain; ++v)
      if (!unmatched(ranks[v])) cl.direct_map[g.offset + v] = result_ids.at(ranks[v]);
    cl.direct_fields |= g.bit;
    cl.direct_filters += by_group[gi].size();
  }
  return Ok{};
}

}  // namespace

Result<CompiledSet> compile(const FilterSet& set, const CompileLimits& limits, const CalloutIdFn& callout_id) {
  CompiledSet out;
  for (int l = 0; l < XFP_LAYER_COUNT; ++l)
    out.default_action[l] = static_cast<uint8_t>(set.default_action(static_cast<Layer>(l)));

  for (int l = 0; l < XFP_LAYER_COUNT; ++l) {
    const Layer layer = static_cast<Layer>(l);
    // Filters the kernel evaluates: all but the disabled ones.
    std::vector<const Filter*> active;
    for (const Filter* f : set.filters())
      if (f->layer == layer && !(f->flags & XFP_FILTER_DISABLED)) active.push_back(f);

    // Sublayer slots: sublayers holding filters, highest weight first.
    std::vector<const Sublayer*> used;
    for (const Sublayer& s : set.sublayers())
      if (std::any_of(active.begin(), active.end(), [&](const Filter* f) { return f->sublayer == s.name; }))
        used.push_back(&s);
    std::sort(used.begin(), used.end(), [](const Sublayer* a, const Sublayer* b) {
      return a->weight != b->weight ? a->weight > b->weight : a->name < b->name;
    });
    SlotMap slots;
    CompiledLayer& cl = out.layers[l];
    for (const Sublayer* s : used) {
      bool inspection = false, deciding = false;
      for (const Filter* f : active)
        if (f->sublayer == s->name) (f->action == Action::CalloutInspection ? inspection : deciding) = true;
      if (inspection) {
        slots.shadow[s->name] = static_cast<uint32_t>(cl.sublayer_order.size());
        cl.sublayer_order.push_back(s->name);
      }
      if (deciding) {
        slots.real[s->name] = static_cast<uint32_t>(cl.sublayer_order.size());
        cl.sublayer_order.push_back(s->name);
      }
    }
    if (cl.sublayer_order.size() > XFP_MAX_SUBLAYERS)
      return make_error(E2BIG, fmt::format("the {} layer has filters in {} sublayers, which take {} slots; at most {} "
                                           "are supported (a sublayer with inspection callouts and other filters "
                                           "takes two)",
                                           layer_name(layer), used.size(), cl.sublayer_order.size(),
                                           XFP_MAX_SUBLAYERS));
    cl.nsublayers = static_cast<uint32_t>(cl.sublayer_order.size());

    // Rank: weight order within a sublayer (ties: older filter first).
    std::sort(active.begin(), active.end(), [](const Filter* a, const Filter* b) {
      return a->weight != b->weight ? a->weight > b->weight : a->id < b->id;
    });
    LayerBuilder lb;
    std::vector<std::vector<const Filter*>> direct(std::size(kDirectGroups));
    std::vector<std::vector<uint32_t>> direct_ranks(std::size(kDirectGroups));
    for (size_t rank = 0; rank < active.size(); ++rank) {
      const Filter& f = *active[rank];
      uint16_t cid = is_callout(f.action) && callout_id ? callout_id(f.callout) : 0;
      xfp_match m = make_match(f, static_cast<uint32_t>(rank), set.slot_of(f.id).value_or(0), cid);
      cl.match_of_rank.push_back(m);
      cl.filter_of_rank.push_back(f.id);
      if (int g = direct_group_of(f); g >= 0) {
        direct[g].push_back(&f);
        direct_ranks[g].push_back(static_cast<uint32_t>(rank));
        continue;
      }
      XFP_TRY(add_filter_entries(lb, f, m.rank, slots.of(f), limits));
      if (lb.entries.size() > limits.max_entries)
        return make_error(E2BIG, fmt::format("the compiled set needs more than {} table entries "
                                             "(raise the daemon's --max-entries)",
                                             limits.max_entries));
    }
    XFP_TRY(build_direct_tables(cl, direct, direct_ranks, slots));
    cl.tuples = std::move(lb.tuples);
    cl.entries.reserve(lb.entries.size());
    for (auto& [kb, ranks] : lb.entries) {
      CompiledEntry ce;
      std::memcpy(&ce.key, kb.data(), sizeof ce.key);
      ce.ranks = ranks;
      cl.entries.push_back(ce);
    }
    cl.grouping = group_tuples(cl.tuples, cl.entries);
    build_prune_tables(cl);
  }
  if (out.entry_count() > limits.max_entries)
    return make_error(E2BIG, fmt::format("the compiled set needs {} table entries, more than {} "
                                         "(raise the daemon's --max-entries)",
                                         out.entry_count(), limits.max_entries));
  return out;
}

xfp_entry kernel_row(const xfp_fields& key, const SublayerRanks& ranks) {
  xfp_entry row{};
  row.key = key;
  row.next = XFP_ROW_NONE;
  for (uint32_t s = 0; s < XFP_MAX_SUBLAYERS; ++s)
    if (ranks[s] != XFP_RANK_NONE) row.ranks[row.nranks++] = XFP_RANK_PACK(s, ranks[s]);
  return row;
}

bool direct_result_needs_row(const SublayerRanks& ranks) {
  return std::count_if(ranks.begin(), ranks.end(), [](uint32_t r) { return r != XFP_RANK_NONE; }) > 1;
}

xfp_rule kernel_rule(const xfp_match& m) {
  uint8_t hard = 0;
  const uint8_t decision = xfp_match_fail_decision(&m, &hard);
  xfp_rule r{};
  r.slot = m.slot;
  r.decision = decision;
  r.flags = static_cast<uint8_t>((hard ? XFP_MATCH_HARD : 0) | (m.flags & XFP_MATCH_CALLOUT));
  r.callout_id = m.callout_id;
  return r;
}

bool one_probe(const CompiledLayer& cl) {
  return cl.grouping.groups.size() == 1 && !cl.direct_fields && !cl.prune_fields;
}

void mark_decides_alone(xfp_entry& row, std::span<const xfp_rule> rules) {
  xfp_arbitration arb;
  xfp_arbitration_init(&arb);
  uint8_t evaluated = 0;
  // As the kernel's loop: slot order (ranks[] is), every winner counted
  // until a hard block ends it.
  for (uint32_t i = 0; i < row.nranks && i < XFP_MAX_SUBLAYERS && !arb.final; ++i) {
    const uint32_t rank = row.ranks[i] & XFP_RANK_MASK;
    if (rank >= rules.size()) return;
    const xfp_rule& r = rules[rank];
    if (r.flags & XFP_MATCH_CALLOUT) return;
    xfp_arbitration_step(&arb, r.decision, (r.flags & XFP_MATCH_HARD) ? 1 : 0, 0, r.slot);
    ++evaluated;
  }
  if (arb.action != XFP_ACTION_PERMIT && arb.action != XFP_ACTION_BLOCK) return;
  row.flags |= XFP_ROW_DECIDES;
  row.verdict = arb.action;
  row.ndecide = evaluated;
}

}  // namespace xfp
