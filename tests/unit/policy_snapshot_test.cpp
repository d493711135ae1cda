// The user-space classifier (PolicySnapshot): every match type, the snapshot
// layout (shadow slots, ranks, copies), every arbitration rule with callout
// invokers, and resume() from punt metadata.
//
// Match types are checked two ways: against values written down here, and
// against a model of the kernel's lookup run on the compiler's own tables
// (direct tables and tuple-space entries), so that a disagreement between
// condition_matches() and compile() shows up without root. The BPF
// agreement test (tests/bpf/agreement_test.cpp) runs the real programs.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "xfp/arbitration.h"
#include "xfp/compiler.hpp"
#include "xfp/filter_syntax.hpp"
#include "xfp/policy_snapshot.hpp"

namespace xfp {
namespace {

constexpr uint64_t kFull = ~0ull;

Condition cond(Field f, Match m, uint64_t v, uint64_t hi = 0, uint64_t mask = kFull) {
  return Condition{f, m, v, hi, mask};
}


xfp_fields fields_with(Field f, uint64_t v) {
  xfp_fields k{};
  set_field_value(k, f, v);
  return k;
}

// ---- a model of the kernel's lookup on compiled tables ---------------------
// xfp_classify() without pruning (pruning only skips tuples that cannot
// match) and without served callouts: direct tables, then every tuple's
// entry, merged per slot by rank, then arbitration on fail decisions.
uint8_t kernel_model_verdict(const CompiledSet& cs, Layer layer, const xfp_fields& f) {
  const int l = static_cast<int>(layer);
  const CompiledLayer& cl = cs.layers[l];
  uint32_t best[XFP_MAX_SUBLAYERS];
  for (auto& b : best) b = XFP_RANK_NONE;
  auto merge = [&](const SublayerRanks& ranks) {
    for (int s = 0; s < XFP_MAX_SUBLAYERS; ++s) best[s] = std::min(best[s], ranks[s]);
  };
  struct Direct {
    uint8_t bit;
    uint32_t offset;
    uint32_t value;
  };
  const Direct direct[] = {
      {XFP_DIRECT_ETHERTYPE, XFP_PRUNE_ETHERTYPE, f.ethertype},
      {XFP_DIRECT_FRAME_LEN, XFP_PRUNE_FRAME_LEN, f.frame_len},
      {XFP_DIRECT_VLAN, XFP_PRUNE_VLAN, f.vlan & 0xfffu},
      {XFP_DIRECT_INNER_VLAN, XFP_PRUNE_INNER_VLAN, f.inner_vlan & 0xfffu},
      {XFP_DIRECT_L2_FLAGS, XFP_PRUNE_L2_FLAGS, f.l2_flags & 0x7fu},
      {XFP_DIRECT_ADDR_TYPES, XFP_PRUNE_ADDR_TYPES,
       ((f.local_addr_type & 3u) << 2) | (f.remote_addr_type & 3u)},
  };
  for (const Direct& d : direct) {
    if (!(cl.direct_fields & d.bit)) continue;
    const uint64_t id = cl.direct_map[d.offset + d.value];
    if (id) merge(cl.direct_results[id]);
  }
  for (size_t t = 0; t < cl.tuples.size(); ++t) {
    uint8_t key[sizeof(xfp_fields)];
    const auto* fb = reinterpret_cast<const uint8_t*>(&f);
    const auto* mb = reinterpret_cast<const uint8_t*>(&cl.tuples[t].mask);
    for (size_t i = 0; i < sizeof key; ++i) key[i] = fb[i] & mb[i];
    auto* kf = reinterpret_cast<xfp_fields*>(key);
    kf->layer = static_cast<uint8_t>(l);
    kf->tuple = static_cast<uint8_t>(t);
    for (const CompiledEntry& e : cl.entries)
      if (std::memcmp(&e.key, key, sizeof key) == 0) merge(e.ranks);
  }
  xfp_arbitration arb;
  xfp_arbitration_init(&arb);
  for (uint32_t s = 0; s < cl.nsublayers && s < XFP_MAX_SUBLAYERS; ++s) {
    if (best[s] == XFP_RANK_NONE) continue;
    const xfp_match& m = cl.match_of_rank.at(best[s]);  // the rule the kernel reads for the rank
    uint8_t hard = 0;
    const uint8_t action = xfp_match_fail_decision(&m, &hard);
    xfp_arbitration_step(&arb, action, hard, 0, m.slot);
    if (arb.final) break;
  }
  if (arb.action == XFP_ACTION_NONE)
    return cs.default_action[l] == XFP_ACTION_BLOCK ? XFP_ACTION_BLOCK : XFP_ACTION_PERMIT;
  return arb.action;
}

// ---- match types: written-down expectations --------------------------------
struct MatchCase {
  std::string name;
  Condition condition;
  std::vector<uint64_t> matching;
  std::vector<uint64_t> other;
};

std::vector<MatchCase> match_cases() {
  return {
      {"mac_equal", cond(Field::RemoteMac, Match::Equal, 0x025e10000001), {0x025e10000001},
       {0x025e10000002, 0x035e10000001, 0}},
      {"mac_equal_masked", cond(Field::LocalMac, Match::Equal, 0x025e10ffffff, 0, 0xffffff000000),
       {0x025e10000000, 0x025e10123456}, {0x025e11000000}},
      {"mac_oui_prefix", cond(Field::RemoteMac, Match::Prefix, 0x025e10000000, 0, 0xffffff000000),
       {0x025e10770002, 0x025e10000000}, {0x02990000003, 0x025e11000000}},
      {"mac_not_equal", cond(Field::RemoteMac, Match::NotEqual, 0x025e10000001), {0x025e10000002, 0},
       {0x025e10000001}},
      {"mac_not_equal_masked", cond(Field::RemoteMac, Match::NotEqual, 0x025e10000000, 0, 0xffffff000000),
       {0x029900000003, 0x025e11000000}, {0x025e10770002, 0x025e10ffffff}},
      // The value's bits outside the mask do not take part.
      {"mac_not_equal_masked_value_bits_ignored",
       cond(Field::RemoteMac, Match::NotEqual, 0x025e10abcdef, 0, 0xffffff000000), {0x025e11abcdef},
       {0x025e10000000}},
      // No masked bit: the compiler emits no pair, nothing matches.
      {"mac_not_equal_zero_mask", cond(Field::RemoteMac, Match::NotEqual, 0x025e10000000, 0, 0), {},
       {0, 0x025e10000000, 0xffffffffffff}},
      {"mac_equal_zero_mask", cond(Field::RemoteMac, Match::Equal, 0x025e10000000, 0, 0), {0, 0xffffffffffff}, {}},
      {"mac_range", cond(Field::RemoteMac, Match::Range, 0x025e10000000, 0x025e10000fff),
       {0x025e10000000, 0x025e10000fff, 0x025e10000800}, {0x025e10001000, 0x025e0fffffff}},
      {"mac_greater", cond(Field::LocalMac, Match::Greater, 0xfffffffffffe), {0xffffffffffff}, {0xfffffffffffe, 0}},
      {"iface_mac_less", cond(Field::InterfaceMac, Match::Less, 1), {0}, {1, 0xffffffffffff}},
      {"interface_equal", cond(Field::Interface, Match::Equal, 7), {7}, {1, 8}},
      {"interface_not_equal", cond(Field::Interface, Match::NotEqual, 7), {1, 0xffffffff}, {7}},
      {"compartment_range", cond(Field::Compartment, Match::Range, 4026531840, 4026532000),
       {4026531840, 4026532000}, {4026531839, 4026532001}},
      {"ethertype_equal", cond(Field::EtherType, Match::Equal, 0x0806), {0x0806}, {0x0800, 0x86dd}},
      {"ethertype_not_equal", cond(Field::EtherType, Match::NotEqual, 0x0806), {0x0800, 0, 0xffff}, {0x0806}},
      {"ethertype_not_equal_masked", cond(Field::EtherType, Match::NotEqual, 0x8800, 0, 0xff00), {0x86dd, 0x0800},
       {0x88cc, 0x88b5, 0x8800}},
      {"ethertype_greater", cond(Field::EtherType, Match::Greater, 0x86dd), {0x86de, 0xffff}, {0x86dd, 0x0800}},
      {"ethertype_greater_max", cond(Field::EtherType, Match::Greater, 0xffff), {}, {0xffff, 0}},
      {"ethertype_greater_or_equal", cond(Field::EtherType, Match::GreaterOrEqual, 0x86dd), {0x86dd, 0xffff},
       {0x86dc}},
      {"ethertype_less", cond(Field::EtherType, Match::Less, 0x0600), {0, 0x05ff}, {0x0600}},
      {"ethertype_less_zero", cond(Field::EtherType, Match::Less, 0), {}, {0, 1}},
      {"ethertype_less_or_equal", cond(Field::EtherType, Match::LessOrEqual, 0x0806), {0x0806, 0}, {0x0807}},
      {"ethertype_range", cond(Field::EtherType, Match::Range, 0x0800, 0x0806), {0x0800, 0x0803, 0x0806},
       {0x07ff, 0x0807}},
      {"vlan_equal", cond(Field::Vlan, Match::Equal, 100), {100}, {0, 101}},
      {"vlan_range_whole", cond(Field::Vlan, Match::Range, 0, 4095), {0, 4095}, {}},
      {"inner_vlan_greater", cond(Field::InnerVlan, Match::Greater, 4000), {4001, 4095}, {4000, 0}},
      {"frame_length_less_or_equal", cond(Field::FrameLength, Match::LessOrEqual, 64), {60, 64}, {65, 1514}},
      {"frame_length_greater", cond(Field::FrameLength, Match::Greater, 1500), {1501, 65535}, {1500}},
      {"flags_all_set", cond(Field::L2Flags, Match::FlagsAllSet, XFP_L2_VLAN_TAGGED | XFP_L2_QINQ),
       {XFP_L2_VLAN_TAGGED | XFP_L2_QINQ | XFP_L2_NATIVE_ETHERNET}, {XFP_L2_VLAN_TAGGED, XFP_L2_NATIVE_ETHERNET}},
      {"flags_all_set_none", cond(Field::L2Flags, Match::FlagsAllSet, 0), {0, XFP_L2_MALFORMED}, {}},
      {"flags_any_set", cond(Field::L2Flags, Match::FlagsAnySet, XFP_L2_LLC | XFP_L2_IP_FRAGMENT),
       {XFP_L2_LLC, XFP_L2_IP_FRAGMENT | XFP_L2_NATIVE_ETHERNET}, {XFP_L2_NATIVE_ETHERNET, 0}},
      // any-set of no flag has no pair: it never matches.
      {"flags_any_set_none", cond(Field::L2Flags, Match::FlagsAnySet, 0), {}, {0, XFP_L2_KNOWN_FLAGS}},
      {"flags_none_set", cond(Field::L2Flags, Match::FlagsNoneSet, XFP_L2_VLAN_TAGGED | XFP_L2_MALFORMED),
       {XFP_L2_NATIVE_ETHERNET, XFP_L2_LLC}, {XFP_L2_VLAN_TAGGED, XFP_L2_MALFORMED | XFP_L2_NATIVE_ETHERNET}},
      {"flags_equal", cond(Field::L2Flags, Match::Equal, XFP_L2_NATIVE_ETHERNET), {XFP_L2_NATIVE_ETHERNET},
       {XFP_L2_NATIVE_ETHERNET | XFP_L2_LLC}},
      {"local_addr_broadcast", cond(Field::LocalAddrType, Match::Equal, XFP_ADDR_BROADCAST), {XFP_ADDR_BROADCAST},
       {XFP_ADDR_UNICAST, XFP_ADDR_MULTICAST}},
      {"local_addr_not_unicast", cond(Field::LocalAddrType, Match::NotEqual, XFP_ADDR_UNICAST),
       {XFP_ADDR_BROADCAST, XFP_ADDR_MULTICAST}, {XFP_ADDR_UNICAST}},
      {"remote_addr_greater", cond(Field::RemoteAddrType, Match::Greater, XFP_ADDR_UNICAST),
       {XFP_ADDR_MULTICAST, XFP_ADDR_BROADCAST}, {XFP_ADDR_UNICAST}},
  };
}

class MatchTypeTest : public ::testing::TestWithParam<MatchCase> {};

TEST_P(MatchTypeTest, MatchesExactlyTheListedValues) {
  const MatchCase& c = GetParam();
  for (uint64_t v : c.matching)
    EXPECT_TRUE(condition_matches(c.condition, fields_with(c.condition.field, v))) << std::hex << v;
  for (uint64_t v : c.other)
    EXPECT_FALSE(condition_matches(c.condition, fields_with(c.condition.field, v))) << std::hex << v;
}

TEST_P(MatchTypeTest, AgreesWithTheCompiledTablesOnTheListedValues) {
  const MatchCase& c = GetParam();
  FilterSet set;
  Filter f;
  f.action = Action::Block;
  f.conditions = {c.condition};
  ASSERT_TRUE(set.add_filter(f).ok());
  auto compiled = compile(set);
  ASSERT_TRUE(compiled.ok()) << compiled.error().message;
  std::vector<uint64_t> values = c.matching;
  values.insert(values.end(), c.other.begin(), c.other.end());
  for (uint64_t v : values) {
    const xfp_fields k = fields_with(c.condition.field, v);
    EXPECT_EQ(condition_matches(c.condition, k), kernel_model_verdict(*compiled, Layer::Inbound, k) == XFP_ACTION_BLOCK)
        << std::hex << v;
  }
}

INSTANTIATE_TEST_SUITE_P(All, MatchTypeTest, ::testing::ValuesIn(match_cases()),
                         [](const auto& info) { return info.param.name; });

// ---- match types: random conditions against the compiled tables -----------
uint64_t random_value(std::mt19937_64& rng, Field f) {
  const uint64_t full = field_max(f);
  switch (rng() % 4) {
    case 0: return 0;
    case 1: return full;
    default: return rng() & full;
  }
}

Condition random_condition(std::mt19937_64& rng, Field f) {
  static constexpr Match kMatches[] = {Match::Equal,          Match::NotEqual,     Match::Greater,
                                       Match::Less,           Match::GreaterOrEqual, Match::LessOrEqual,
                                       Match::Range,          Match::FlagsAllSet,  Match::FlagsAnySet,
                                       Match::FlagsNoneSet,   Match::Prefix};
  Condition c;
  c.field = f;
  c.match = kMatches[rng() % std::size(kMatches)];
  c.value = random_value(rng, f);
  if (c.match == Match::Range) {
    c.value_hi = random_value(rng, f);
    if (c.value_hi < c.value) std::swap(c.value, c.value_hi);
  }
  if ((c.match == Match::Equal || c.match == Match::NotEqual || c.match == Match::Prefix) && rng() % 2) {
    // A prefix mask or a random one (masked ne expands bit by bit).
    const unsigned bits = field_bits(f);
    c.mask = rng() % 2 ? (field_max(f) << (rng() % (bits + 1))) & field_max(f) : rng() & field_max(f);
  }
  return c;
}

// Values near the condition's edges, plus random ones. L2 flags only take
// the bits the parser sets: the kernel's direct table of that field reads
// the low 7 bits, tuple space all 16, and no frame has the others.
std::vector<uint64_t> probe_values(std::mt19937_64& rng, const Condition& c) {
  const uint64_t full = c.field == Field::L2Flags ? static_cast<uint64_t>(XFP_L2_KNOWN_FLAGS) : field_max(c.field);
  std::vector<uint64_t> out = {0, 1, full, full - 1};
  for (uint64_t base : {c.value, c.value_hi, c.value & c.mask, c.value ^ 1})
    for (int d = -2; d <= 2; ++d) out.push_back((base + static_cast<uint64_t>(d)) & full);
  for (int i = 0; i < 24; ++i) out.push_back(rng() & full);
  for (int i = 0; i < 8; ++i) out.push_back((c.value ^ (1ull << (rng() % field_bits(c.field)))) & full);
  return out;
}

TEST(PolicySnapshotMatch, RandomConditionsAgreeWithTheCompiledTables) {
  const uint64_t seed = std::random_device{}();
  std::mt19937_64 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (int round = 0; round < 400; ++round) {
    const Field field = static_cast<Field>(rng() % kFieldCount);
    const Condition c = random_condition(rng, field);
    FilterSet set;
    Filter f;
    f.action = Action::Block;
    f.conditions = {c};
    // Half the time a second, always-true condition on another field moves a
    // small-field filter from its direct table into tuple space; alone, it
    // stays in its direct table. Both take any condition FilterSet accepts,
    // the masks and flags tests the filter language refuses included.
    if (rng() % 2)
      f.conditions.push_back(cond(field == Field::Interface ? Field::Compartment : Field::Interface,
                                  Match::GreaterOrEqual, 0));
    ASSERT_TRUE(set.add_filter(f).ok());
    auto compiled = compile(set);
    ASSERT_TRUE(compiled.ok()) << compiled.error().message;
    for (uint64_t v : probe_values(rng, c)) {
      const xfp_fields k = fields_with(field, v);
      const bool kernel = kernel_model_verdict(*compiled, Layer::Inbound, k) == XFP_ACTION_BLOCK;
      ASSERT_EQ(condition_matches(c, k), kernel)
          << "field " << field_name(field) << " match " << match_name(c.match) << std::hex << " value 0x" << c.value
          << " hi 0x" << c.value_hi << " mask 0x" << c.mask << " probe 0x" << v;
      ASSERT_EQ(filter_matches(f, k), kernel);
    }
  }
}

// FilterSet accepts `frame-length any-set 0x20` (check_filter() would refuse
// it). The direct table once painted it as the interval [0x20, 0xffff],
// taking every pair of a 12- or 16-bit field for a prefix: an any-set pair's
// mask is one bit, and frame length 0x41 (bit 0x20 clear) was blocked.
TEST(PolicySnapshotMatch, DirectTableOfAWideFieldMisreadsAnySet) {
  const Condition c = cond(Field::FrameLength, Match::FlagsAnySet, 0x20);
  FilterSet set;
  Filter f;
  f.action = Action::Block;
  f.conditions = {c};
  ASSERT_TRUE(set.add_filter(f).ok());
  auto compiled = compile(set);
  ASSERT_TRUE(compiled.ok());
  ASSERT_TRUE(compiled->layers[0].direct_fields & XFP_DIRECT_FRAME_LEN);
  const xfp_fields k = fields_with(Field::FrameLength, 0x41);
  EXPECT_FALSE(condition_matches(c, k));
  EXPECT_EQ(kernel_model_verdict(*compiled, Layer::Inbound, k), XFP_ACTION_PERMIT);
}

// Every value of a 12- or 16-bit field's direct table, for the shapes that
// are not prefixes: flags tests, sparse masks (equal and not-equal), and a
// mix of them with a range in one filter (same field: OR).
TEST(PolicySnapshotMatch, DirectTablesOfWideFieldsAreExactForAnyMask) {
  const Field wide[] = {Field::EtherType, Field::FrameLength, Field::Vlan, Field::InnerVlan};
  for (Field field : wide) {
    const uint64_t full = field_max(field);
    const std::vector<std::vector<Condition>> shapes = {
        {cond(field, Match::FlagsAnySet, 0x20)},
        {cond(field, Match::FlagsAnySet, 0x801)},
        {cond(field, Match::FlagsAllSet, 14)},
        {cond(field, Match::FlagsAllSet, 0x0)},
        {cond(field, Match::FlagsNoneSet, 0x3)},
        {cond(field, Match::FlagsNoneSet, full)},
        {cond(field, Match::Equal, 0x005, 0, 0x00f)},
        {cond(field, Match::Equal, 0x104, 0, 0x30c)},
        {cond(field, Match::Equal, 0x7, 0, 0x0)},
        {cond(field, Match::NotEqual, 0x5, 0, 0x10f)},
        {cond(field, Match::Prefix, 0x800, 0, full & ~0xffull)},
        {cond(field, Match::FlagsAllSet, 0x40), cond(field, Match::Range, 100, 200)},
        {cond(field, Match::Greater, full), cond(field, Match::FlagsNoneSet, 0xff0)},
    };
    for (const auto& conds : shapes) {
      FilterSet set;
      Filter f;
      f.action = Action::Block;
      f.conditions = conds;
      ASSERT_TRUE(set.add_filter(f).ok());
      auto compiled = compile(set);
      ASSERT_TRUE(compiled.ok()) << compiled.error().message;
      ASSERT_TRUE(compiled->layers[0].direct_fields) << field_name(field);
      for (uint64_t v = 0; v <= full; ++v) {
        const xfp_fields k = fields_with(field, v);
        ASSERT_EQ(filter_matches(f, k), kernel_model_verdict(*compiled, Layer::Inbound, k) == XFP_ACTION_BLOCK)
            << field_name(field) << " " << match_name(conds.front().match) << std::hex << " value 0x"
            << conds.front().value << " mask 0x" << conds.front().mask << " at 0x" << v;
      }
    }
  }
}

// ---- conditions: same field OR, different fields AND -----------------------
TEST(PolicySnapshotMatch, SameFieldOrsDifferentFieldsAnd) {
  Filter f;
  f.conditions = {cond(Field::EtherType, Match::Equal, 0x0806), cond(Field::Vlan, Match::Equal, 5),
                  cond(Field::EtherType, Match::Equal, 0x86dd)};
  xfp_fields k{};
  k.ethertype = 0x0806;
  k.vlan = 5;
  EXPECT_TRUE(filter_matches(f, k));
  k.ethertype = 0x86dd;
  EXPECT_TRUE(filter_matches(f, k));
  k.vlan = 6;
  EXPECT_FALSE(filter_matches(f, k));
  k.vlan = 5;
  k.ethertype = 0x0800;
  EXPECT_FALSE(filter_matches(f, k));
  EXPECT_TRUE(filter_matches(Filter{}, k));  // no condition: every frame
}

TEST(PolicySnapshotMatch, MacValueHasTheFirstWireByteOnTop) {
  xfp_fields k{};
  const uint8_t mac[6] = {0x02, 0x5e, 0x10, 0x00, 0x00, 0x01};
  std::memcpy(k.remote_mac, mac, 6);
  EXPECT_EQ(field_value(Field::RemoteMac, k), 0x025e10000001ull);
  EXPECT_TRUE(condition_matches(cond(Field::RemoteMac, Match::Prefix, 0x025e00000000, 0, 0xffff00000000), k));
}

// ---- snapshot layout --------------------------------------------------------
struct Built {
  FilterSet set;
  CompiledSet compiled;
  PolicySnapshotPtr snap;
  std::vector<uint64_t> ids;
};

Filter make_filter(Action a, std::vector<Condition> conds, uint64_t weight = 0, uint32_t flags = 0,
                   std::string sublayer = kDefaultSublayer, std::string callout = {}) {
  Filter f;
  f.action = a;
  f.conditions = std::move(conds);
  f.weight = weight;
  f.flags = flags;
  f.sublayer = std::move(sublayer);
  if (is_callout(a)) f.callout = callout.empty() ? "c.unserved" : callout;
  return f;
}

Built build(const std::vector<Filter>& filters, const std::vector<Sublayer>& sublayers = {},
            Action default_inbound = Action::Permit, uint64_t generation = 1) {
  Built b;
  for (const Sublayer& s : sublayers) EXPECT_TRUE(b.set.add_sublayer(s).ok());
  b.set.set_default(Layer::Inbound, default_inbound);
  for (const Filter& f : filters) {
    auto id = b.set.add_filter(f);
    EXPECT_TRUE(id.ok()) << id.error().message;
    b.ids.push_back(id.ok() ? *id : 0);
  }
  auto compiled = compile(b.set);
  EXPECT_TRUE(compiled.ok()) << compiled.error().message;
  if (compiled.ok()) b.compiled = *compiled;
  auto snap = PolicySnapshot::create(b.set, b.compiled, generation);
  EXPECT_TRUE(snap.ok()) << snap.error().message;
  if (snap.ok()) b.snap = *snap;
  return b;
}

TEST(PolicySnapshotLayout, SublayersInWeightOrderShadowSlotsFoldedDisabledLeftOut) {
  Built b = build({make_filter(Action::Permit, {}, 1, 0, "low"),
                   make_filter(Action::CalloutInspection, {}, 9, 0, "high", "c.look"),
                   make_filter(Action::Block, {}, 5, 0, "high"),
                   make_filter(Action::Block, {}, 50, XFP_FILTER_DISABLED, "high")},
                  {{"low", 10}, {"high", 100}});
  const CompiledLayer& cl = b.compiled.layers[0];
  ASSERT_EQ(cl.sublayer_order, (std::vector<std::string>{"high", "high", "low"}));
  const auto& subs = b.snap->sublayers(Layer::Inbound);
  ASSERT_EQ(subs.size(), 2u);
  EXPECT_EQ(subs[0].name, "high");
  EXPECT_EQ(subs[1].name, "low");
  EXPECT_EQ(b.snap->sublayer_index_of_slot(Layer::Inbound, 0), 0u);  // shadow slot
  EXPECT_EQ(b.snap->sublayer_index_of_slot(Layer::Inbound, 1), 0u);
  EXPECT_EQ(b.snap->sublayer_index_of_slot(Layer::Inbound, 2), 1u);
  EXPECT_EQ(b.snap->sublayer_index_of_slot(Layer::Inbound, 3), std::nullopt);
  EXPECT_EQ(b.snap->sublayer_index_of_slot(Layer::Inbound, 200), std::nullopt);
  // Rank: weight across the layer; the disabled filter has none.
  ASSERT_EQ(cl.filter_of_rank.size(), 3u);
  for (uint32_t r = 0; r < 3; ++r) EXPECT_EQ(b.snap->filter_at_rank(Layer::Inbound, r)->id, cl.filter_of_rank[r]);
  EXPECT_EQ(b.snap->filter_at_rank(Layer::Inbound, 3), nullptr);
  EXPECT_EQ(subs[0].ranks, (std::vector<uint32_t>{0, 1}));  // inspection (9), block (5)
  EXPECT_EQ(subs[1].ranks, (std::vector<uint32_t>{2}));
  EXPECT_EQ(b.snap->generation(), 1u);
  EXPECT_TRUE(b.snap->sublayers(Layer::Outbound).empty());
}

TEST(PolicySnapshotLayout, FiltersAreCopiesThatOutliveTheSet) {
  Built b = build({make_filter(Action::Block, {cond(Field::EtherType, Match::Equal, 0x0806)})});
  ASSERT_TRUE(b.set.remove_filter(std::to_string(b.ids[0])).ok());
  b.set.flush();
  const Filter* f = b.snap->filter_at_rank(Layer::Inbound, 0);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->id, b.ids[0]);
  UnservedCallouts none;
  EXPECT_EQ(b.snap->classify(Layer::Inbound, fields_with(Field::EtherType, 0x0806), none).action, Action::Block);
}

TEST(PolicySnapshotLayout, RefusesACompiledSetOfAnotherFilterSet) {
  Built b = build({make_filter(Action::Block, {})});
  FilterSet other;
  auto snap = PolicySnapshot::create(other, b.compiled, 1);
  ASSERT_FALSE(snap.ok());
  EXPECT_NE(snap.error().message.find("do not belong together"), std::string::npos);
}

// ---- arbitration with callouts ---------------------------------------------
// Callouts by key: "c.permit", "c.block", "c.continue" (served), "c.absorb",
// anything else unserved. Records every call and its action right.
class ScriptedCallouts final : public CalloutInvoker {
 public:
  struct Call {
    uint64_t filter_id;
    bool action_right;
  };
  CalloutVerdict invoke(const Filter& filter, const xfp_fields&, bool action_right) override {
    calls.push_back({filter.id, action_right});
    if (filter.callout == "c.permit") return {true, XFP_ACTION_PERMIT, false};
    if (filter.callout == "c.block") return {true, XFP_ACTION_BLOCK, false};
    if (filter.callout == "c.continue") return {true, XFP_ACTION_CONTINUE, false};
    if (filter.callout == "c.absorb") return {true, XFP_ACTION_CONTINUE, true};
    return {};
  }
  std::vector<Call> calls;
};

const std::vector<Sublayer> kHighLow = {{"high", 100}, {"low", 10}};

Decision classify(const Built& b, ScriptedCallouts& callouts, xfp_fields k = {}) {
  return b.snap->classify(Layer::Inbound, k, callouts);
}

TEST(PolicySnapshotArbitration, CalloutContinuePassesToTheNextFilterOfTheSublayer) {
  Built b = build({make_filter(Action::CalloutTerminating, {}, 10, 0, kDefaultSublayer, "c.continue"),
                   make_filter(Action::Block, {}, 5)});
  ScriptedCallouts c;
  Decision d = classify(b, c);
  EXPECT_EQ(d.action, Action::Block);
  EXPECT_TRUE(d.hard);
  EXPECT_EQ(d.filter_id, b.ids[1]);
  EXPECT_EQ(d.callouts_invoked, 1u);
  EXPECT_EQ(d.invoked[0], b.ids[0]);
  EXPECT_EQ(d.callouts_unserved, 0u);
}

TEST(PolicySnapshotArbitration, NonMatchingFiltersAreSkipped) {
  Built b = build({make_filter(Action::Block, {cond(Field::EtherType, Match::Equal, 0x0806)}, 10),
                   make_filter(Action::Permit, {}, 5)},
                  {}, Action::Block);
  ScriptedCallouts c;
  EXPECT_EQ(classify(b, c, fields_with(Field::EtherType, 0x0806)).filter_id, b.ids[0]);
  Decision d = classify(b, c, fields_with(Field::EtherType, 0x0800));
  EXPECT_EQ(d.action, Action::Permit);
  EXPECT_EQ(d.filter_id, b.ids[1]);
  EXPECT_FALSE(d.by_default);
}

TEST(PolicySnapshotArbitration, InspectionCalloutVerdictsCountAsContinue) {
  for (const char* key : {"c.block", "c.permit"}) {
    Built b = build({make_filter(Action::CalloutInspection, {}, 10, XFP_FILTER_CLEAR_ACTION_RIGHT,
                                 kDefaultSublayer, key),
                     make_filter(Action::Permit, {}, 5)},
                    {}, Action::Block);
    ScriptedCallouts c;
    Decision d = classify(b, c);
    EXPECT_EQ(d.action, Action::Permit) << key;
    EXPECT_FALSE(d.hard) << key;
    EXPECT_EQ(d.filter_id, b.ids[1]) << key;
    EXPECT_EQ(c.calls.size(), 1u) << key;
  }
}

TEST(PolicySnapshotArbitration, CalloutPermitIsSoftUnlessItClearsTheActionRight) {
  {
    Built b = build({make_filter(Action::CalloutTerminating, {}, 0, 0, "high", "c.permit"),
                     make_filter(Action::Block, {}, 0, 0, "low")},
                    kHighLow);
    ScriptedCallouts c;
    Decision d = classify(b, c);
    EXPECT_EQ(d.action, Action::Block);
    EXPECT_EQ(d.filter_id, b.ids[1]);
  }
  {
    Built b = build({make_filter(Action::CalloutUnknown, {}, 0, XFP_FILTER_CLEAR_ACTION_RIGHT, "high", "c.permit"),
                     make_filter(Action::Block, {}, 0, 0, "low")},
                    kHighLow);
    ScriptedCallouts c;
    Decision d = classify(b, c);
    EXPECT_EQ(d.action, Action::Permit);
    EXPECT_TRUE(d.hard);
    EXPECT_EQ(d.filter_id, b.ids[0]);
  }
}

TEST(PolicySnapshotArbitration, CalloutBlockIsSoftAndALaterPermitLiftsIt) {
  Built b = build({make_filter(Action::CalloutTerminating, {}, 0, 0, "high", "c.block"),
                   make_filter(Action::Permit, {}, 0, 0, "low")},
                  kHighLow);
  ScriptedCallouts c;
  Decision d = classify(b, c);
  EXPECT_EQ(d.action, Action::Permit);
  EXPECT_EQ(d.filter_id, b.ids[1]);
}

TEST(PolicySnapshotArbitration, CalloutBlockVetoesAHardPermitAPlainBlockDoesNot) {
  {
    Built b = build({make_filter(Action::Permit, {}, 0, XFP_FILTER_CLEAR_ACTION_RIGHT, "high"),
                     make_filter(Action::CalloutTerminating, {}, 0, 0, "low", "c.block")},
                    kHighLow);
    ScriptedCallouts c;
    Decision d = classify(b, c);
    EXPECT_EQ(d.action, Action::Block);
    EXPECT_TRUE(d.vetoed);
    EXPECT_TRUE(d.hard);
    EXPECT_EQ(d.filter_id, b.ids[1]);
    ASSERT_EQ(c.calls.size(), 1u);
    EXPECT_FALSE(c.calls[0].action_right);  // told that its verdict only counts as a veto
  }
  {
    Built b = build({make_filter(Action::Permit, {}, 0, XFP_FILTER_CLEAR_ACTION_RIGHT, "high"),
                     make_filter(Action::Block, {}, 0, 0, "low")},
                    kHighLow);
    ScriptedCallouts c;
    Decision d = classify(b, c);
    EXPECT_EQ(d.action, Action::Permit);
    EXPECT_FALSE(d.vetoed);
    EXPECT_EQ(d.filter_id, b.ids[0]);
  }
}

TEST(PolicySnapshotArbitration, ActionRightIsSetUntilADecisionIsHard) {
  Built b = build({make_filter(Action::CalloutTerminating, {}, 0, 0, "high", "c.permit"),
                   make_filter(Action::CalloutTerminating, {}, 0, 0, "low", "c.continue")},
                  kHighLow);
  ScriptedCallouts c;
  classify(b, c);
  ASSERT_EQ(c.calls.size(), 2u);
  EXPECT_TRUE(c.calls[0].action_right);
  EXPECT_TRUE(c.calls[1].action_right);  // a soft permit leaves the right in place
}

TEST(PolicySnapshotArbitration, HardBlockIsFinal) {
  Built b = build({make_filter(Action::Block, {}, 0, 0, "high"),
                   make_filter(Action::CalloutTerminating, {}, 0, XFP_FILTER_CLEAR_ACTION_RIGHT, "low", "c.permit")},
                  kHighLow);
  ScriptedCallouts c;
  Decision d = classify(b, c);
  EXPECT_EQ(d.action, Action::Block);
  EXPECT_TRUE(d.hard);
  EXPECT_EQ(d.filter_id, b.ids[0]);
  EXPECT_TRUE(c.calls.empty());  // the later sublayer is not evaluated
  EXPECT_EQ(d.callouts_invoked, 0u);
}

TEST(PolicySnapshotArbitration, UnservedCalloutFailsClosedHard) {
  Built b = build({make_filter(Action::CalloutTerminating, {}, 0, 0, "high", "c.gone"),
                   make_filter(Action::Permit, {}, 0, XFP_FILTER_CLEAR_ACTION_RIGHT, "low")},
                  kHighLow);
  ScriptedCallouts c;
  Decision d = classify(b, c);
  EXPECT_EQ(d.action, Action::Block);
  EXPECT_TRUE(d.hard);
  EXPECT_EQ(d.filter_id, b.ids[0]);
  EXPECT_EQ(d.callouts_invoked, 1u);
  EXPECT_EQ(d.callouts_unserved, 1u);
}

TEST(PolicySnapshotArbitration, UnservedCalloutWithPermitIfUnregisteredFailsOpenSoftly) {
  Built b = build({make_filter(Action::CalloutUnknown, {}, 0, XFP_FILTER_PERMIT_IF_CALLOUT_UNREGISTERED, "high",
                               "c.gone"),
                   make_filter(Action::Block, {}, 0, 0, "low")},
                  kHighLow);
  ScriptedCallouts c;
  Decision d = classify(b, c);
  EXPECT_EQ(d.action, Action::Block);  // the soft permit is overridden
  EXPECT_EQ(d.filter_id, b.ids[1]);
  Built alone = build({make_filter(Action::CalloutUnknown, {}, 0, XFP_FILTER_PERMIT_IF_CALLOUT_UNREGISTERED,
                                   kDefaultSublayer, "c.gone")},
                      {}, Action::Block);
  d = classify(alone, c);
  EXPECT_EQ(d.action, Action::Permit);
  EXPECT_FALSE(d.hard);
  EXPECT_FALSE(d.by_default);
}

TEST(PolicySnapshotArbitration, UnservedInspectionCalloutContinues) {
  Built b = build({make_filter(Action::CalloutInspection, {}, 10, 0, kDefaultSublayer, "c.gone"),
                   make_filter(Action::Block, {}, 5)});
  ScriptedCallouts c;
  Decision d = classify(b, c);
  EXPECT_EQ(d.action, Action::Block);
  EXPECT_EQ(d.filter_id, b.ids[1]);
  EXPECT_EQ(d.callouts_unserved, 1u);
}

TEST(PolicySnapshotArbitration, AbsorbStopsEverything) {
  Built b = build({make_filter(Action::Permit, {}, 0, XFP_FILTER_CLEAR_ACTION_RIGHT, "high"),
                   make_filter(Action::CalloutInspection, {}, 0, 0, "low", "c.absorb"),
                   make_filter(Action::Block, {}, 0, 0, "low")},
                  kHighLow);
  ScriptedCallouts c;
  Decision d = classify(b, c);
  EXPECT_TRUE(d.absorbed);
  EXPECT_EQ(d.filter_id, b.ids[1]);
  EXPECT_EQ(d.callouts_invoked, 1u);
}

TEST(PolicySnapshotArbitration, NoDecisionTakesTheLayerDefault) {
  Built b = build({make_filter(Action::Block, {cond(Field::Vlan, Match::Equal, 7)}),
                   make_filter(Action::CalloutInspection, {}, 0, 0, kDefaultSublayer, "c.permit")},
                  {}, Action::Block);
  ScriptedCallouts c;
  Decision d = classify(b, c);
  EXPECT_EQ(d.action, Action::Block);
  EXPECT_TRUE(d.by_default);
  EXPECT_EQ(d.filter_id, 0u);
  EXPECT_FALSE(d.hard);
}

TEST(PolicySnapshotArbitration, RecordsTheFirstCalloutsInvoked) {
  std::vector<Filter> filters;
  for (int i = 0; i < 12; ++i)
    filters.push_back(make_filter(Action::CalloutTerminating, {}, 100 - i, 0, kDefaultSublayer, "c.continue"));
  Built b = build(filters);
  ScriptedCallouts c;
  Decision d = classify(b, c);
  EXPECT_EQ(d.callouts_invoked, 12u);
  for (size_t i = 0; i < Decision::kRecordedCallouts; ++i) EXPECT_EQ(d.invoked[i], b.ids[i]);
  EXPECT_TRUE(d.by_default);
}

// ---- resume from punt metadata ---------------------------------------------
xfp_punt_meta meta_for(const Built& b, uint8_t slot, uint32_t rank, uint8_t arb) {
  xfp_punt_meta m{};
  m.magic = XFP_PUNT_MAGIC;
  m.layer = XFP_LAYER_INBOUND;
  m.sublayer = slot;
  m.arb = arb;
  m.rank = rank;
  m.generation = static_cast<uint32_t>(b.snap->generation());
  return m;
}

TEST(PolicySnapshotResume, HardPermitFromTheKernelIsVetoedByTheServedCallout) {
  Built b = build({make_filter(Action::Permit, {}, 0, XFP_FILTER_CLEAR_ACTION_RIGHT, "high"),
                   make_filter(Action::CalloutTerminating, {}, 0, 0, "low", "c.block")},
                  kHighLow);
  ScriptedCallouts c;
  const uint32_t callout_rank = 1;
  ASSERT_EQ(b.snap->filter_at_rank(Layer::Inbound, callout_rank)->id, b.ids[1]);
  auto d = b.snap->resume(meta_for(b, 1, callout_rank, XFP_ACTION_PERMIT | static_cast<uint8_t>(XFP_PUNT_ARB_HARD)), {}, c);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->action, Action::Block);
  EXPECT_TRUE(d->vetoed);
  EXPECT_EQ(d->filter_id, b.ids[1]);
  ASSERT_EQ(c.calls.size(), 1u);
  EXPECT_FALSE(c.calls[0].action_right);
}

TEST(PolicySnapshotResume, StartStateDecidesWhenTheRestHasNoOpinion) {
  Built b = build({make_filter(Action::Permit, {}, 0, 0, "high"),
                   make_filter(Action::CalloutTerminating, {}, 0, 0, "low", "c.continue")},
                  kHighLow, Action::Block);
  ScriptedCallouts c;
  auto d = b.snap->resume(meta_for(b, 1, 1, XFP_ACTION_PERMIT), {}, c);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->action, Action::Permit);
  EXPECT_TRUE(d->decided_before_resume);
  EXPECT_EQ(d->filter_id, 0u);
  EXPECT_FALSE(d->by_default);
  // No earlier decision: the layer default.
  d = b.snap->resume(meta_for(b, 1, 1, XFP_ACTION_NONE), {}, c);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->action, Action::Block);
  EXPECT_TRUE(d->by_default);
}

TEST(PolicySnapshotResume, SoftBlockFromTheKernelIsLiftedByACalloutPermit) {
  Built b = build({make_filter(Action::CalloutTerminating, {}, 0, 0, "high", "c.block"),
                   make_filter(Action::CalloutTerminating, {}, 0, 0, "low", "c.permit")},
                  kHighLow);
  ScriptedCallouts c;
  auto d = b.snap->resume(meta_for(b, 1, 1, XFP_ACTION_BLOCK), {}, c);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->action, Action::Permit);
  EXPECT_EQ(d->filter_id, b.ids[1]);
  EXPECT_EQ(c.calls.size(), 1u);  // the earlier sublayer is not evaluated again
}

TEST(PolicySnapshotResume, PuntAtAShadowSlotEvaluatesTheWholeSublayerByRank) {
  // The plain permit ranks above the inspection callout, but the kernel keeps
  // the callout in the shadow slot in front and punts there.
  Built b = build({make_filter(Action::Permit, {}, 10), make_filter(Action::CalloutInspection, {}, 5, 0,
                                                                     kDefaultSublayer, "c.block")},
                  {}, Action::Block);
  ASSERT_EQ(b.compiled.layers[0].sublayer_order.size(), 2u);
  ScriptedCallouts c;
  auto d = b.snap->resume(meta_for(b, 0, 1, XFP_ACTION_NONE), {}, c);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->action, Action::Permit);
  EXPECT_EQ(d->filter_id, b.ids[0]);
  EXPECT_TRUE(c.calls.empty());  // WFP never reaches the callout
}

TEST(PolicySnapshotResume, RefusesMetadataOfAnotherSnapshot) {
  Built b = build({make_filter(Action::Permit, {}, 0, 0, "high"),
                   make_filter(Action::CalloutTerminating, {}, 0, 0, "low", "c.block")},
                  kHighLow, Action::Permit, 0x100000007ull);
  ScriptedCallouts c;
  xfp_punt_meta good = meta_for(b, 1, 1, XFP_ACTION_PERMIT);
  EXPECT_EQ(good.generation, 7u);  // the low 32 bits
  EXPECT_TRUE(b.snap->is_generation_of(good));
  EXPECT_TRUE(b.snap->resume(good, {}, c).has_value());
  auto bad = good;
  bad.generation = 8;
  EXPECT_FALSE(b.snap->is_generation_of(bad));
  EXPECT_FALSE(b.snap->resume(bad, {}, c).has_value());
  bad = good;
  bad.magic = 0;
  EXPECT_FALSE(b.snap->resume(bad, {}, c).has_value());
  bad = good;
  bad.layer = XFP_LAYER_COUNT;
  EXPECT_FALSE(b.snap->resume(bad, {}, c).has_value());
  bad = good;
  bad.sublayer = 2;  // no such slot
  EXPECT_FALSE(b.snap->resume(bad, {}, c).has_value());
  bad = good;
  bad.rank = 0;  // not a callout
  EXPECT_FALSE(b.snap->resume(bad, {}, c).has_value());
  bad = good;
  bad.sublayer = 0;  // the callout is not in that sublayer
  EXPECT_FALSE(b.snap->resume(bad, {}, c).has_value());
  bad = good;
  bad.arb = XFP_PUNT_ARB_ACTION;  // action 3 is not a decision
  EXPECT_FALSE(b.snap->resume(bad, {}, c).has_value());
}

TEST(PolicySnapshotResume, AgreesWithClassifyWhenTheKernelStateIsReplayed) {
  // Resuming at a sublayer with the state the earlier ones produce gives the
  // from-scratch answer, for every sublayer that holds a callout.
  Built b = build({make_filter(Action::Permit, {}, 3, XFP_FILTER_CLEAR_ACTION_RIGHT, "high"),
                   make_filter(Action::CalloutTerminating, {}, 2, 0, "mid", "c.continue"),
                   make_filter(Action::Permit, {}, 1, 0, "mid"),
                   make_filter(Action::CalloutTerminating, {}, 0, 0, "low", "c.block")},
                  {{"high", 100}, {"mid", 50}, {"low", 10}});
  ScriptedCallouts c;
  Decision scratch = classify(b, c);
  EXPECT_EQ(scratch.action, Action::Block);
  EXPECT_TRUE(scratch.vetoed);
  auto resumed = b.snap->resume(meta_for(b, 1, 1, XFP_ACTION_PERMIT | static_cast<uint8_t>(XFP_PUNT_ARB_HARD)), {}, c);
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->action, scratch.action);
  EXPECT_EQ(resumed->vetoed, scratch.vetoed);
  EXPECT_EQ(resumed->filter_id, scratch.filter_id);
}

}  // namespace
}  // namespace xfp
