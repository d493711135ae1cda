// Tuple grouping (user/tuple_groups.cpp): nested shapes share a probe keyed
// by the common part of their masks, as long as no key leads to more than
// XFP_GROUP_CHAIN rows; the compiler's pruning tables name groups.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "xfp/compiler.hpp"
#include "xfp/tuple_groups.hpp"

namespace xfp {
namespace {

constexpr uint64_t kMac48 = 0xffffffffffffull;
constexpr uint64_t kOui = 0xffffff000000ull;

void put_mac(uint8_t* dst, uint64_t v) {
  for (int i = 0; i < 6; ++i) dst[i] = static_cast<uint8_t>(v >> (8 * (5 - i)));
}

xfp_tuple remote_mac_tuple(uint64_t mac_mask, uint16_t ethertype_mask = 0) {
  xfp_tuple t{};
  put_mac(t.mask.remote_mac, mac_mask);
  t.mask.ethertype = ethertype_mask;
  return t;
}

CompiledEntry row(uint8_t tuple, uint64_t mac, uint16_t ethertype = 0) {
  CompiledEntry e{};
  put_mac(e.key.remote_mac, mac);
  e.key.ethertype = ethertype;
  e.key.tuple = tuple;
  return e;
}

bool mask_equal(const xfp_fields& a, const xfp_fields& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

TEST(TupleGroups, NestedShapesShareOneProbeKeyedByWhatTheyHaveInCommon) {
  // Tuple 0: remote MAC; tuple 1: remote MAC and EtherType.
  const std::vector<xfp_tuple> tuples{remote_mac_tuple(kMac48), remote_mac_tuple(kMac48, 0xffff)};
  const std::vector<CompiledEntry> entries{row(0, 0x020000000001), row(0, 0x020000000002),
                                           row(1, 0x020000000001, 0x0806), row(1, 0x020000000003, 0x86dd)};
  const TupleGrouping g = group_tuples(tuples, entries);
  ASSERT_EQ(g.groups.size(), 1u);
  EXPECT_TRUE(mask_equal(g.groups[0].mask, remote_mac_tuple(kMac48).mask));
  EXPECT_EQ(g.group_of_tuple, (std::vector<uint8_t>{0, 0}));
  // Rows of both tuples with the same MAC meet under one group key.
  const xfp_fields a = group_key(entries[0].key, g.groups[0], 0);
  const xfp_fields b = group_key(entries[2].key, g.groups[0], 0);
  EXPECT_TRUE(mask_equal(a, b));
  EXPECT_EQ(a.tuple, 0u);
  EXPECT_EQ(a.ethertype, 0u);
}

TEST(TupleGroups, AKeyMayLeadToAChainsWorthOfRowsAndNoMore) {
  const std::vector<xfp_tuple> tuples{remote_mac_tuple(kMac48), remote_mac_tuple(kMac48, 0xffff)};
  for (uint32_t extra : {XFP_GROUP_CHAIN - 1u, static_cast<uint32_t>(XFP_GROUP_CHAIN)}) {
    // One MAC row, then `extra` EtherType rows of the same MAC.
    std::vector<CompiledEntry> entries{row(0, 0x020000000001)};
    for (uint32_t i = 0; i < extra; ++i) entries.push_back(row(1, 0x020000000001, static_cast<uint16_t>(0x9000 + i)));
    const TupleGrouping g = group_tuples(tuples, entries);
    EXPECT_EQ(g.groups.size(), 1 + extra == XFP_GROUP_CHAIN ? 1u : 2u) << extra;
  }
}

TEST(TupleGroups, AShorterPrefixJoinsOnlyWhileItsKeysStaySparse) {
  const std::vector<xfp_tuple> tuples{remote_mac_tuple(kMac48), remote_mac_tuple(kOui)};
  // Sparse: every MAC has an OUI of its own; the /24 rows too.
  std::vector<CompiledEntry> sparse;
  for (uint64_t i = 0; i < 100; ++i) sparse.push_back(row(0, (0x02ull << 40) | (i << 24) | 1));
  for (uint64_t i = 100; i < 150; ++i) sparse.push_back(row(1, (0x02ull << 40) | (i << 24)));
  const TupleGrouping joined = group_tuples(tuples, sparse);
  ASSERT_EQ(joined.groups.size(), 1u);
  EXPECT_TRUE(mask_equal(joined.groups[0].mask, remote_mac_tuple(kOui).mask));
  // Dense: five MACs of one vendor would chain five rows under its OUI.
  std::vector<CompiledEntry> dense = sparse;
  for (uint64_t i = 2; i < 2 + XFP_GROUP_CHAIN; ++i) dense.push_back(row(0, (0x02ull << 40) | i));
  const TupleGrouping apart = group_tuples(tuples, dense);
  ASSERT_EQ(apart.groups.size(), 2u);
  // The larger tuple (the MACs) was placed first, so it has group 0.
  EXPECT_EQ(apart.group_of_tuple, (std::vector<uint8_t>{0, 1}));
}

TEST(TupleGroups, FewRowsOfUnrelatedShapesShareAProbeThatAlwaysHits) {
  // Local MAC and remote MAC have no mask bit in common: the group's mask is
  // empty, every frame finds its one key, and the rows' own checks decide.
  xfp_tuple local{};
  put_mac(local.mask.local_mac, kMac48);
  const std::vector<xfp_tuple> tuples{remote_mac_tuple(kMac48), local};
  CompiledEntry l = row(1, 0);
  put_mac(l.key.local_mac, 0x020000000010);
  const TupleGrouping g = group_tuples(tuples, {row(0, 0x020000000001), row(0, 0x020000000002), l});
  ASSERT_EQ(g.groups.size(), 1u);
  EXPECT_TRUE(mask_equal(g.groups[0].mask, xfp_fields{}));
}

Filter mac_filter(uint64_t mac, std::vector<uint16_t> ethertypes = {}) {
  Filter f;
  f.action = Action::Block;
  f.conditions = {Condition{Field::RemoteMac, Match::Equal, mac, 0, ~0ull}};
  for (uint16_t et : ethertypes) f.conditions.push_back(Condition{Field::EtherType, Match::Equal, et, 0, ~0ull});
  return f;
}

// The compiler's pruning masks name groups, not tuples: an EtherType that a
// grouped tuple cannot match leaves the group only if no tuple of the group
// can, and a field that never leaves a group out is not looked up at all.
TEST(TupleGroups, PruningMasksNameGroups) {
  FilterSet set;
  ASSERT_TRUE(set.add_filter(mac_filter(0x020000000001)).ok());
  ASSERT_TRUE(set.add_filter(mac_filter(0x020000000001, {0x0806})).ok());
  auto compiled = compile(set);
  ASSERT_TRUE(compiled.ok()) << compiled.error().message;
  const CompiledLayer& cl = compiled->layers[XFP_LAYER_INBOUND];
  ASSERT_EQ(cl.tuples.size(), 2u);
  ASSERT_EQ(cl.grouping.groups.size(), 1u);
  // Every EtherType can still match the plain MAC tuple: group 0 survives all,
  // so the EtherType is no use for pruning.
  EXPECT_EQ(cl.prune[XFP_PRUNE_ETHERTYPE + 0x0806], 1u);
  EXPECT_EQ(cl.prune[XFP_PRUNE_ETHERTYPE + 0x86dd], 1u);
  EXPECT_EQ(cl.prune_fields & XFP_DIRECT_ETHERTYPE, 0);

  // Alone, the MAC-and-EtherType shape is its own group, which only ARP
  // frames can match: the EtherType prunes.
  FilterSet arp_only;
  ASSERT_TRUE(arp_only.add_filter(mac_filter(0x020000000001, {0x0806})).ok());
  auto pruned = compile(arp_only);
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  const CompiledLayer& pl = pruned->layers[XFP_LAYER_INBOUND];
  EXPECT_EQ(pl.prune[XFP_PRUNE_ETHERTYPE + 0x0806], 1u);
  EXPECT_EQ(pl.prune[XFP_PRUNE_ETHERTYPE + 0x86dd], 0u);
  EXPECT_NE(pl.prune_fields & XFP_DIRECT_ETHERTYPE, 0);
}

}  // namespace
}  // namespace xfp
