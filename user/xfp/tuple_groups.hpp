// Tuple merging: which tuples the fast path probes with one hash.
//
// Tuple-space search costs one hash probe per tuple (condition shape). Many
// shapes nest: "remote MAC", "remote MAC and EtherType", "remote MAC on VLAN
// 10" all fix the whole remote MAC. A group probes its tuples together, keyed
// by the common part of their masks; a key found leads to a short chain of
// rows, and the frame is checked against each row's own key (under its own
// tuple's mask) before its matches count. That trades a hash probe per tuple
// for a few compares on a hit. A tuple joins a group only while no group key
// leads to more than XFP_GROUP_CHAIN rows, the bound the BPF programs walk
// (after Daly and Torng's TupleMerge, which relaxes masks the same way under
// a collision limit).
#pragma once

#include <cstdint>
#include <vector>

#include "xfp/abi.h"

namespace xfp {

struct CompiledEntry;

struct TupleGroup {
  xfp_fields mask{};            // AND of its tuples' masks: the probe's key mask
  std::vector<uint8_t> tuples;  // member tuple ids
};

struct TupleGrouping {
  std::vector<TupleGroup> groups;        // probe order
  std::vector<uint8_t> group_of_tuple;   // tuple id -> group id
};

// Groups `tuples` (ids 0..n-1; entries name theirs in key.tuple). Larger
// tuples are placed first; each joins the first group it fits.
TupleGrouping group_tuples(const std::vector<xfp_tuple>& tuples, const std::vector<CompiledEntry>& entries);

// `key` (an entry's masked fields) as its group's probe key: masked with the
// group's mask, with the layer and the group id set.
xfp_fields group_key(const xfp_fields& key, const TupleGroup& group, uint8_t group_id);

}  // namespace xfp
