// The filter compiler: turns a FilterSet into the kernel's tuple-space
// tables. Each condition becomes (value, mask) pairs per field (ranges and
// inequalities expand into prefixes, any-set flags into one bit each); a
// filter becomes the cross product of its fields' pairs; pairs that share a
// mask combination share a tuple. Entries with the same masked key keep, per
// sublayer, the rank of the highest-priority filter. Tuples whose masks nest are then
// grouped so that the kernel probes them with one hash (tuple_groups.hpp).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <span>
#include <vector>

#include "xfp/abi.h"
#include "xfp/filter_set.hpp"
#include "xfp/result.hpp"
#include "xfp/tuple_groups.hpp"

namespace xfp {

// A key's best rank per sublayer slot (XFP_RANK_NONE: no filter in it), as
// the compiler reasons; the kernel's row lists the slots that hold one
// (kernel_row).
using SublayerRanks = std::array<uint32_t, XFP_MAX_SUBLAYERS>;

struct CompiledEntry {
  xfp_fields key;       // masked with its tuple's mask; key.tuple holds the tuple id
  SublayerRanks ranks;  // the install writes kernel_row(key, ranks) and links `next`
};

struct CompiledLayer {
  std::vector<xfp_tuple> tuples;
  std::vector<CompiledEntry> entries;
  TupleGrouping grouping;  // the kernel's probes over the tuples
  uint32_t nsublayers = 0;
  std::vector<std::string> sublayer_order;  // slot -> sublayer name (an inspection callout's shadow slot repeats it)
  std::vector<uint64_t> filter_of_rank;     // rank -> filter id
  std::vector<xfp_match> match_of_rank;     // rank -> its match (the kernel's xfp_rules_v2: kernel_rule() of it)
  std::vector<uint64_t> prune;  // XFP_PRUNE_SPAN group masks (abi.h)
  uint8_t prune_fields = 0;     // enum xfp_direct_field: fields some tuple constrains
  bool needs_iface = false;     // a tuple reads interface MAC or compartment
  // Direct tables (abi.h): filters on one small field only.
  uint8_t direct_fields = 0;               // enum xfp_direct_field
  std::vector<uint64_t> direct_map;        // XFP_PRUNE_SPAN result ids (0: no filter)
  std::vector<SublayerRanks> direct_results;  // by result id; [0] unused
  size_t direct_filters = 0;
};

// A direct result whose matches sit in one sublayer goes in the direct map
// itself (abi.h, XFP_DIRECT_INLINE); only the others take an entry row.
bool direct_result_needs_row(const SublayerRanks& ranks);

struct CompiledSet {
  CompiledLayer layers[XFP_LAYER_COUNT];
  uint8_t default_action[XFP_LAYER_COUNT] = {XFP_ACTION_PERMIT, XFP_ACTION_PERMIT};
  // Rows of the kernel's entry array: tuple-space entries and the direct
  // results that are not inline.
  size_t entry_count() const {
    size_t n = 0;
    for (const CompiledLayer& l : layers) {
      n += l.entries.size();
      for (size_t id = 1; id < l.direct_results.size(); ++id) n += direct_result_needs_row(l.direct_results[id]);
    }
    return n;
  }
};

struct CompileLimits {
  uint32_t max_entries_per_filter = 65536;
  uint32_t max_entries = 1u << 17;  // entry_count() per bank, both layers
};

// The id of a callout key in the kernel's xfp_callouts_v1 (1..XFP_MAX_CALLOUTS-1),
// stable for the daemon's life. Without one, every callout filter gets id 0,
// which is never served: callouts use their fail action.
using CalloutIdFn = std::function<uint16_t(const std::string& key)>;

Result<CompiledSet> compile(const FilterSet& set, const CompileLimits& limits = {},
                            const CalloutIdFn& callout_id = {});

// The kernel's row of a key (abi.h, struct xfp_entry): its ranks packed with
// their slots, in slot order, the empty slots left out; next = XFP_ROW_NONE,
// flags 0 (the install links the row and marks it exact).
xfp_entry kernel_row(const xfp_fields& key, const SublayerRanks& ranks);

// The kernel's rule of a match (abi.h, struct xfp_rule): the decision it
// makes while its callout, if any, is not served, worked out here once.
xfp_rule kernel_rule(const xfp_match& m);

// A layer of one probe group and nothing else (no direct table, no pruning):
// a frame's only lookup is that group's, so a row that decides alone is the
// frame's verdict (the set header's one_probe).
bool one_probe(const CompiledLayer& cl);

// Marks `row` XFP_ROW_DECIDES (abi.h) with the verdict the kernel's
// arbitration reaches over the row's own ranks, and how many of them it
// evaluates, unless one of those filters has a callout: whether that is
// served is only known per frame. `rules`: the layer's, by rank. The
// caller decides whether the row may decide alone (an exact row alone in
// its chain); this only works out what it would decide.
void mark_decides_alone(xfp_entry& row, std::span<const xfp_rule> rules);

}  // namespace xfp
