// The kernel's row and rule formats (abi.h, struct xfp_entry and struct
// xfp_rule). A row: a key's ranks packed
// with their sublayer slots, the empty slots left out. The BPF merge walks
// `nranks` of them, so a slot dropped or misplaced here is a filter the
// kernel never sees (tests/bpf covers the verdicts end to end).
#include <gtest/gtest.h>

#include "xfp/compiler.hpp"
#include "xfp/filter_set.hpp"

#include <vector>

namespace xfp {
namespace {

SublayerRanks no_ranks() {
  SublayerRanks r;
  r.fill(XFP_RANK_NONE);
  return r;
}

TEST(KernelRow, ListsTheSlotsThatHoldARankInSlotOrder) {
  SublayerRanks ranks = no_ranks();
  ranks[1] = 7;
  ranks[3] = 2;
  ranks[XFP_MAX_SUBLAYERS - 1] = XFP_MAX_FILTERS - 1;
  xfp_fields key{};
  key.remote_mac[5] = 0x2a;
  key.tuple = 3;
  const xfp_entry row = kernel_row(key, ranks);
  ASSERT_EQ(row.nranks, 3);
  EXPECT_EQ(row.ranks[0], (1u << XFP_RANK_SLOT_SHIFT) | 7u);
  EXPECT_EQ(row.ranks[1], (3u << XFP_RANK_SLOT_SHIFT) | 2u);
  EXPECT_EQ(row.ranks[2], (uint32_t{XFP_MAX_SUBLAYERS - 1} << XFP_RANK_SLOT_SHIFT) | (XFP_MAX_FILTERS - 1));
  EXPECT_EQ(row.next, XFP_ROW_NONE);
  EXPECT_EQ(row.flags, 0);
  EXPECT_EQ(row.key.remote_mac[5], 0x2a);
  EXPECT_EQ(row.key.tuple, 3);
}

TEST(KernelRow, ARankInEverySlotFillsTheRow) {
  SublayerRanks ranks;
  for (uint32_t s = 0; s < XFP_MAX_SUBLAYERS; ++s) ranks[s] = 100 - s;
  const xfp_entry row = kernel_row(xfp_fields{}, ranks);
  ASSERT_EQ(row.nranks, XFP_MAX_SUBLAYERS);
  for (uint32_t s = 0; s < XFP_MAX_SUBLAYERS; ++s) {
    EXPECT_EQ(row.ranks[s] >> XFP_RANK_SLOT_SHIFT, s);
    EXPECT_EQ(row.ranks[s] & XFP_RANK_MASK, 100 - s);
  }
}

// One key, filters in three sublayers: one row that lists the three, each
// with the rank of its sublayer's highest-weight filter.
TEST(KernelRow, AKeyWithFiltersInSeveralSublayersIsOneRowOfTheirBestRanks) {
  FilterSet set;
  ASSERT_TRUE(set.add_sublayer(Sublayer{"high", 300}).ok());
  ASSERT_TRUE(set.add_sublayer(Sublayer{"low", 100}).ok());
  auto add = [&](const std::string& sublayer, uint64_t weight) {
    Filter f;
    f.sublayer = sublayer;
    f.weight = weight;
    f.action = Action::Permit;
    f.conditions = {Condition{Field::RemoteMac, Match::Equal, 0x02000000002aull, 0, ~0ull}};
    ASSERT_TRUE(set.add_filter(f).ok());
  };
  add("high", 1);
  add("high", 9);  // wins "high"
  add("low", 5);
  add(std::string(kDefaultSublayer), 0);
  auto compiled = compile(set);
  ASSERT_TRUE(compiled.ok()) << compiled.error().message;
  const CompiledLayer& cl = compiled->layers[XFP_LAYER_INBOUND];
  ASSERT_EQ(cl.entries.size(), 1u);
  ASSERT_EQ(cl.nsublayers, 3u);
  const xfp_entry row = kernel_row(cl.entries[0].key, cl.entries[0].ranks);
  ASSERT_EQ(row.nranks, 3);
  for (uint32_t i = 0; i < row.nranks; ++i) {
    const uint32_t slot = row.ranks[i] >> XFP_RANK_SLOT_SHIFT;
    const uint32_t rank = row.ranks[i] & XFP_RANK_MASK;
    EXPECT_EQ(slot, i);  // each slot once, in order
    ASSERT_LT(rank, cl.filter_of_rank.size());
    const Filter* f = set.find_id(cl.filter_of_rank[rank]);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->sublayer, cl.sublayer_order[slot]);
    if (f->sublayer == "high") {
      EXPECT_EQ(f->weight, 9u);
    }
  }
}

// The kernel takes a rule's decision as it is: what a filter decides while its
// callout, if any, is not served.
struct RuleCase {
  const char* name;
  uint8_t action;
  uint8_t match_flags;
  uint8_t decision;
  uint8_t rule_flags;
};

TEST(KernelRule, CarriesTheDecisionWithoutAServedCallout) {
  const RuleCase cases[] = {
      {"permit", XFP_ACTION_PERMIT, 0, XFP_ACTION_PERMIT, 0},
      {"permit, clear action right", XFP_ACTION_PERMIT, XFP_MATCH_HARD, XFP_ACTION_PERMIT, XFP_MATCH_HARD},
      {"block", XFP_ACTION_BLOCK, 0, XFP_ACTION_BLOCK, XFP_MATCH_HARD},
      {"inspection callout", XFP_ACTION_CALLOUT_INSPECTION, XFP_MATCH_CALLOUT, XFP_ACTION_CONTINUE, XFP_MATCH_CALLOUT},
      {"terminating callout", XFP_ACTION_CALLOUT_TERMINATING, XFP_MATCH_CALLOUT, XFP_ACTION_BLOCK,
       XFP_MATCH_CALLOUT | XFP_MATCH_HARD},
      {"terminating callout, permit if unregistered", XFP_ACTION_CALLOUT_TERMINATING,
       XFP_MATCH_CALLOUT | XFP_MATCH_FAIL_OPEN, XFP_ACTION_PERMIT, XFP_MATCH_CALLOUT},
      {"unknown callout, permit if unregistered, clear action right", XFP_ACTION_CALLOUT_UNKNOWN,
       XFP_MATCH_CALLOUT | XFP_MATCH_FAIL_OPEN | XFP_MATCH_HARD, XFP_ACTION_PERMIT,
       XFP_MATCH_CALLOUT | XFP_MATCH_HARD},
  };
  for (const RuleCase& c : cases) {
    xfp_match m{};
    m.rank = 5;
    m.slot = 42;
    m.action = c.action;
    m.flags = c.match_flags;
    m.callout_id = 7;
    const xfp_rule r = kernel_rule(m);
    EXPECT_EQ(r.decision, c.decision) << c.name;
    EXPECT_EQ(r.flags, c.rule_flags) << c.name;
    EXPECT_EQ(r.slot, 42u) << c.name;
    EXPECT_EQ(r.callout_id, 7) << c.name;
  }
}

// A row that decides alone (XFP_ROW_DECIDES) carries what the kernel's
// arbitration over its own ranks would reach, and how many filters it
// counts on the way.
struct DecideCase {
  const char* name;
  std::vector<xfp_rule> rules;  // rule of rank r, one rank per slot in order
  bool decides;
  uint8_t verdict;
  uint8_t counted;
};

xfp_rule rule(uint8_t decision, uint8_t flags) {
  xfp_rule r{};
  r.decision = decision;
  r.flags = flags;
  return r;
}

TEST(KernelRow, DecidesAloneWithTheVerdictAndCountOfItsArbitration) {
  const xfp_rule block = rule(XFP_ACTION_BLOCK, XFP_MATCH_HARD);
  const xfp_rule permit = rule(XFP_ACTION_PERMIT, 0);
  const xfp_rule hard_permit = rule(XFP_ACTION_PERMIT, XFP_MATCH_HARD);
  const xfp_rule callout = rule(XFP_ACTION_BLOCK, XFP_MATCH_CALLOUT | XFP_MATCH_HARD);
  const xfp_rule inspection = rule(XFP_ACTION_CONTINUE, XFP_MATCH_CALLOUT);
  const DecideCase cases[] = {
      {"one block", {block}, true, XFP_ACTION_BLOCK, 1},
      {"one permit", {permit}, true, XFP_ACTION_PERMIT, 1},
      {"a soft permit, then a block", {permit, block}, true, XFP_ACTION_BLOCK, 2},
      {"a block ends it: the permit after is not counted", {block, permit}, true, XFP_ACTION_BLOCK, 1},
      {"a hard permit stands, the block after is still counted", {hard_permit, block}, true, XFP_ACTION_PERMIT, 2},
      {"permits in three sublayers", {permit, permit, permit}, true, XFP_ACTION_PERMIT, 3},
      {"a callout: served or not is per frame", {callout}, false, 0, 0},
      {"an inspection callout after a permit", {permit, inspection}, false, 0, 0},
      {"a callout after the block that ends it is never consulted", {block, callout}, true, XFP_ACTION_BLOCK, 1},
  };
  for (const DecideCase& c : cases) {
    SublayerRanks ranks = no_ranks();
    for (uint32_t i = 0; i < c.rules.size(); ++i) ranks[i] = i;
    xfp_entry row = kernel_row(xfp_fields{}, ranks);
    row.flags = XFP_ROW_EXACT;
    mark_decides_alone(row, c.rules);
    EXPECT_EQ((row.flags & XFP_ROW_DECIDES) != 0, c.decides) << c.name;
    EXPECT_TRUE(row.flags & XFP_ROW_EXACT) << c.name;
    if (!c.decides) continue;
    EXPECT_EQ(row.verdict, c.verdict) << c.name;
    EXPECT_EQ(row.ndecide, c.counted) << c.name;
  }
}

// A list of MACs is one probe group and nothing else; a filter on a small
// field adds a direct table, after which a frame has more than one lookup.
TEST(OneProbe, AMacListIsOneProbeUntilASmallFieldFilterJoinsIt) {
  FilterSet set;
  for (uint64_t mac : {0x020000000001ull, 0x020000000002ull}) {
    Filter f;
    f.action = Action::Block;
    f.conditions = {Condition{Field::RemoteMac, Match::Equal, mac, 0, ~0ull}};
    ASSERT_TRUE(set.add_filter(f).ok());
  }
  auto compiled = compile(set);
  ASSERT_TRUE(compiled.ok()) << compiled.error().message;
  EXPECT_TRUE(one_probe(compiled->layers[XFP_LAYER_INBOUND]));
  EXPECT_FALSE(one_probe(compiled->layers[XFP_LAYER_OUTBOUND])) << "no filter: no group to probe";
  Filter et;
  et.action = Action::Permit;
  et.conditions = {Condition{Field::EtherType, Match::Equal, 0x88b5, 0, ~0ull}};
  ASSERT_TRUE(set.add_filter(et).ok());
  compiled = compile(set);
  ASSERT_TRUE(compiled.ok()) << compiled.error().message;
  EXPECT_FALSE(one_probe(compiled->layers[XFP_LAYER_INBOUND]));
}

TEST(KernelRow, ARankWithoutARuleLeavesTheRowToTheArbitration) {
  SublayerRanks ranks = no_ranks();
  ranks[0] = 3;  // only ranks 0..1 have rules
  xfp_entry row = kernel_row(xfp_fields{}, ranks);
  const std::vector<xfp_rule> rules = {rule(XFP_ACTION_BLOCK, XFP_MATCH_HARD), rule(XFP_ACTION_BLOCK, XFP_MATCH_HARD)};
  mark_decides_alone(row, rules);
  EXPECT_EQ(row.flags & XFP_ROW_DECIDES, 0);
}

}  // namespace
}  // namespace xfp
