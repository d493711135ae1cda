// The classifier on synthetic frames: every field, match type, arbitration
// rule and malformed-frame case, through BPF_PROG_TEST_RUN on the loaded XDP
// (inbound) and TC egress (outbound) programs.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <net/if.h>

#include <memory>
#include <string>
#include <vector>

#include "support/frame_builder.hpp"
#include "support/packet_io.hpp"
#include "support/privileges.hpp"
#include "xfp/compiler.hpp"
#include "xfp/datapath.hpp"

namespace xfp {
namespace {

using test::FrameBuilder;
using test::Mac;

constexpr Mac kLocal{0x02, 0x00, 0x00, 0x00, 0x00, 0x10};
constexpr Mac kRemote{0x02, 0x5e, 0x10, 0x00, 0x00, 0x01};
constexpr Mac kRemoteSameOui{0x02, 0x5e, 0x10, 0x77, 0x00, 0x02};
constexpr Mac kOther{0x02, 0x99, 0x00, 0x00, 0x00, 0x03};
constexpr uint64_t kRemoteMac = 0x025e10000001ull;
constexpr uint64_t kFull = ~0ull;

enum class Verdict { Permit, Block };

Condition cond(Field f, Match m, uint64_t v, uint64_t hi = 0, uint64_t mask = kFull) {
  return Condition{f, m, v, hi, mask};
}

Filter filter(Action a, std::vector<Condition> conds, uint64_t weight = 0, uint32_t flags = 0,
              std::string sublayer = kDefaultSublayer, Layer layer = Layer::Inbound) {
  Filter f;
  f.action = a;
  f.conditions = std::move(conds);
  f.weight = weight;
  f.flags = flags;
  f.sublayer = std::move(sublayer);
  f.layer = layer;
  if (is_callout(a)) f.callout = "test.callout";
  return f;
}

FrameBuilder base() { return FrameBuilder().dst(kLocal).src(kRemote).ethertype(test::ethertype::kLocalExperimental1); }
FrameBuilder ipv4_base() { return FrameBuilder().dst(kLocal).src(kRemote); }

class ClassifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::missing_privileges().empty()) return;
    auto dp = Datapath::open();
    ASSERT_TRUE(dp.ok()) << dp.error().message;
    datapath_ = std::move(dp).value().release();
  }
  static void TearDownTestSuite() {
    delete datapath_;
    datapath_ = nullptr;
  }
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    ASSERT_NE(datapath_, nullptr);
  }

  // Installs `filters` (and sublayers) as the whole policy.
  void install(const std::vector<Filter>& filters, std::vector<Sublayer> sublayers = {},
               Action default_inbound = Action::Permit, Action default_outbound = Action::Permit) {
    set_ = FilterSet();
    for (const Sublayer& s : sublayers) ASSERT_TRUE(set_.add_sublayer(s).ok());
    set_.set_default(Layer::Inbound, default_inbound);
    set_.set_default(Layer::Outbound, default_outbound);
    for (const Filter& f : filters) {
      auto r = set_.add_filter(f);
      ASSERT_TRUE(r.ok()) << r.error().message;
      // A reused counter slot starts from zero, as the daemon does it.
      ASSERT_TRUE(datapath_->reset_filter_counters(*set_.slot_of(*r)).ok());
    }
    auto compiled = compile(set_);
    ASSERT_TRUE(compiled.ok()) << compiled.error().message;
    inbound_groups_ = compiled->layers[XFP_LAYER_INBOUND].grouping.groups.size();
    Status s = datapath_->install(*compiled);
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  static Verdict run_inbound(const std::vector<uint8_t>& frame) {
    std::vector<uint8_t> data = frame;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(),
                .data_size_in = static_cast<uint32_t>(data.size()), .repeat = 1);
    int rc = bpf_prog_test_run_opts(datapath_->xdp_prog_fd(), &opts);
    EXPECT_EQ(rc, 0) << "XDP test run: " << std::strerror(errno);
    EXPECT_TRUE(opts.retval == XDP_PASS || opts.retval == XDP_DROP) << opts.retval;
    return opts.retval == XDP_DROP ? Verdict::Block : Verdict::Permit;
  }

  static Verdict run_outbound(const std::vector<uint8_t>& frame) {
    std::vector<uint8_t> data = frame;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(),
                .data_size_in = static_cast<uint32_t>(data.size()), .repeat = 1);
    int rc = bpf_prog_test_run_opts(datapath_->tc_prog_fd(), &opts);
    EXPECT_EQ(rc, 0) << "TC test run: " << std::strerror(errno);
    EXPECT_TRUE(opts.retval == TC_ACT_OK || opts.retval == TC_ACT_SHOT) << opts.retval;
    return opts.retval == TC_ACT_SHOT ? Verdict::Block : Verdict::Permit;
  }

  FilterCounters counters_of(uint64_t id) { return datapath_->filter_counters(*set_.slot_of(id)); }

  static Datapath* datapath_;
  FilterSet set_;
  size_t inbound_groups_ = 0;  // probe groups of the last install's inbound layer
};

Datapath* ClassifierTest::datapath_ = nullptr;

// ---- one field, one match type: the frame that matches is blocked, the one
// ---- that does not is permitted.
struct FieldCase {
  std::string name;
  Condition condition;
  std::vector<uint8_t> matching;
  std::vector<uint8_t> other;
};

std::vector<FieldCase> field_cases() {
  using namespace test::ethertype;
  return {
      {"remote_mac_eq", cond(Field::RemoteMac, Match::Equal, kRemoteMac), base().build(),
       base().src(kOther).build()},
      {"remote_mac_ne", cond(Field::RemoteMac, Match::NotEqual, kRemoteMac), base().src(kOther).build(),
       base().build()},
      {"remote_mac_oui_prefix", cond(Field::RemoteMac, Match::Prefix, 0x025e10000000ull, 0, 0xffffff000000ull),
       base().src(kRemoteSameOui).build(), base().src(kOther).build()},
      {"remote_mac_masked_ne", cond(Field::RemoteMac, Match::NotEqual, 0x025e10000000ull, 0, 0xffffff000000ull),
       base().src(kOther).build(), base().src(kRemoteSameOui).build()},
      {"remote_mac_range", cond(Field::RemoteMac, Match::Range, 0x025e10000000ull, 0x025e10000fffull),
       base().build(), base().src(kRemoteSameOui).build()},
      {"local_mac_eq", cond(Field::LocalMac, Match::Equal, 0x020000000010ull), base().build(),
       base().dst(kOther).build()},
      {"ethertype_eq", cond(Field::EtherType, Match::Equal, kArp), base().ethertype(kArp).build(),
       base().ethertype(kIpv6).build()},
      {"ethertype_ne", cond(Field::EtherType, Match::NotEqual, kArp), base().ethertype(kIpv6).build(),
       base().ethertype(kArp).build()},
      {"ethertype_gt", cond(Field::EtherType, Match::Greater, 0x86dd), base().ethertype(kLldp).build(),
       base().ethertype(kIpv6).build()},
      {"ethertype_ge", cond(Field::EtherType, Match::GreaterOrEqual, 0x86dd), base().ethertype(kIpv6).build(),
       base().ethertype(kArp).build()},
      {"ethertype_lt", cond(Field::EtherType, Match::Less, 0x0806), base().ethertype(kIpv4).ipv4().build(),
       base().ethertype(kArp).build()},
      {"ethertype_le", cond(Field::EtherType, Match::LessOrEqual, 0x0806), base().ethertype(kArp).build(),
       base().ethertype(kIpv6).build()},
      {"ethertype_range", cond(Field::EtherType, Match::Range, 0x0800, 0x0806), base().ethertype(kArp).build(),
       base().ethertype(kIpv6).build()},
      {"vlan_eq", cond(Field::Vlan, Match::Equal, 100), base().vlan(100).build(), base().vlan(101).build()},
      {"vlan_range", cond(Field::Vlan, Match::Range, 10, 20), base().vlan(13).build(), base().vlan(21).build()},
      {"vlan_outer_of_qinq", cond(Field::Vlan, Match::Equal, 300), base().qinq(300, 7).build(),
       base().qinq(7, 300).build()},
      {"inner_vlan_eq", cond(Field::InnerVlan, Match::Equal, 7), base().qinq(300, 7).build(),
       base().qinq(7, 300).build()},
      {"frame_length_gt", cond(Field::FrameLength, Match::Greater, 1000), base().pad_to(1200).build(),
       base().build()},
      {"frame_length_lt", cond(Field::FrameLength, Match::Less, 100), base().build(), base().pad_to(200).build()},
      {"local_addr_broadcast", cond(Field::LocalAddrType, Match::Equal, XFP_ADDR_BROADCAST),
       base().dst(test::kBroadcastMac).build(), base().build()},
      {"local_addr_multicast", cond(Field::LocalAddrType, Match::Equal, XFP_ADDR_MULTICAST),
       base().dst(Mac{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}).build(), base().dst(test::kBroadcastMac).build()},
      {"local_addr_not_unicast", cond(Field::LocalAddrType, Match::NotEqual, XFP_ADDR_UNICAST),
       base().dst(test::kBroadcastMac).build(), base().build()},
      {"remote_addr_unicast", cond(Field::RemoteAddrType, Match::Equal, XFP_ADDR_UNICAST), base().build(),
       base().src(Mac{0x03, 0, 0, 0, 0, 1}).build()},
      {"flags_all_set_tagged_qinq", cond(Field::L2Flags, Match::FlagsAllSet, XFP_L2_VLAN_TAGGED | XFP_L2_QINQ),
       base().qinq(1, 2).build(), base().vlan(1).build()},
      {"flags_any_set", cond(Field::L2Flags, Match::FlagsAnySet, XFP_L2_LLC | XFP_L2_IP_FRAGMENT),
       base().ethertype(0x0040).build(), base().build()},
      {"flags_none_set_tagged", cond(Field::L2Flags, Match::FlagsNoneSet, XFP_L2_VLAN_TAGGED), base().build(),
       base().vlan(5).build()},
      {"flags_ip_fragment", cond(Field::L2Flags, Match::FlagsAllSet, XFP_L2_IP_FRAGMENT),
       ipv4_base().ipv4({.more_fragments = true}).build(), ipv4_base().ipv4().build()},
      {"flags_ip_fragment_offset", cond(Field::L2Flags, Match::FlagsAllSet, XFP_L2_IP_FRAGMENT),
       ipv4_base().ipv4({.fragment_offset = 100}).build(), ipv4_base().ipv4({.dont_fragment = true}).build()},
      {"flags_tag_stack_deep", cond(Field::L2Flags, Match::FlagsAnySet, XFP_L2_TAG_STACK_DEEP),
       base().qinq(1, 2).vlan(3).build(), base().qinq(1, 2).build()},
      {"interface_eq_lo", cond(Field::Interface, Match::Equal, 1), base().build(), {}},
  };
}

class FieldTest : public ClassifierTest, public ::testing::WithParamInterface<FieldCase> {};

TEST_P(FieldTest, InboundBlocksMatchingFramesOnly) {
  const FieldCase& c = GetParam();
  install({filter(Action::Block, {c.condition})});
  EXPECT_EQ(run_inbound(c.matching), Verdict::Block);
  if (!c.other.empty()) {
    EXPECT_EQ(run_inbound(c.other), Verdict::Permit);
  }
}

INSTANTIATE_TEST_SUITE_P(AllFields, FieldTest, ::testing::ValuesIn(field_cases()),
                         [](const auto& info) { return info.param.name; });

// ---- malformed frames: flagged, classified, never read out of bounds.
struct MalformedCase {
  std::string name;
  std::vector<uint8_t> frame;
  // BPF_PROG_TEST_RUN for skb programs refuses an IPv4 frame shorter than
  // its header (EINVAL before the program runs); XDP takes any frame.
  bool skb_test_run_accepts = true;
};

std::vector<MalformedCase> malformed_cases() {
  return {
      {"header_only_tpid", base().vlan(5).truncate_to(14).build()},
      {"truncated_tag", base().vlan(5).truncate_to(16).build()},
      {"truncated_inner_tag", base().qinq(5, 6).truncate_to(20).build()},
      {"truncated_ipv4", ipv4_base().ipv4().truncate_to(30).build(), false},
      {"ipv4_bad_version", base().ethertype(0x0800).payload(std::string(20, '\x60')).build()},
  };
}

class MalformedTest : public ClassifierTest, public ::testing::WithParamInterface<MalformedCase> {};

TEST_P(MalformedTest, FlaggedAndBlockedByAMalformedFilterOnBothLayers) {
  Filter in = filter(Action::Block, {cond(Field::L2Flags, Match::FlagsAllSet, XFP_L2_MALFORMED)});
  Filter out = in;
  out.layer = Layer::Outbound;
  install({in, out});
  LayerCounters before = datapath_->layer_counters(Layer::Inbound);
  EXPECT_EQ(run_inbound(GetParam().frame), Verdict::Block);
  if (GetParam().skb_test_run_accepts) {
    EXPECT_EQ(run_outbound(GetParam().frame), Verdict::Block);
  }
  LayerCounters after = datapath_->layer_counters(Layer::Inbound);
  EXPECT_EQ(after.c[XFP_CNT_MALFORMED] - before.c[XFP_CNT_MALFORMED], 1u);
  // A well-formed frame is not flagged.
  EXPECT_EQ(run_inbound(ipv4_base().ipv4().udp().build()), Verdict::Permit);
}

INSTANTIATE_TEST_SUITE_P(Frames, MalformedTest, ::testing::ValuesIn(malformed_cases()),
                         [](const auto& info) { return info.param.name; });

TEST_F(ClassifierTest, MalformedFrameKeepsFieldsParsedBeforeTheCut) {
  // A truncated inner tag still has its outer VLAN: a VLAN filter sees it.
  install({filter(Action::Block, {cond(Field::Vlan, Match::Equal, 5)})});
  EXPECT_EQ(run_inbound(base().qinq(5, 6).truncate_to(20).build()), Verdict::Block);
}

// ---- conditions: same field OR, different fields AND, no condition = all.
TEST_F(ClassifierTest, SameFieldConditionsAreOred) {
  install({filter(Action::Block, {cond(Field::EtherType, Match::Equal, 0x0806),
                                  cond(Field::EtherType, Match::Equal, 0x86dd)})});
  EXPECT_EQ(run_inbound(base().ethertype(0x0806).build()), Verdict::Block);
  EXPECT_EQ(run_inbound(base().ethertype(0x86dd).build()), Verdict::Block);
  EXPECT_EQ(run_inbound(base().ethertype(0x88cc).build()), Verdict::Permit);
}

TEST_F(ClassifierTest, DifferentFieldConditionsAreAnded) {
  install({filter(Action::Block, {cond(Field::EtherType, Match::Equal, 0x0806),
                                  cond(Field::RemoteMac, Match::Equal, kRemoteMac)})});
  EXPECT_EQ(run_inbound(base().ethertype(0x0806).build()), Verdict::Block);
  EXPECT_EQ(run_inbound(base().ethertype(0x0806).src(kOther).build()), Verdict::Permit);
  EXPECT_EQ(run_inbound(base().ethertype(0x86dd).build()), Verdict::Permit);
}

TEST_F(ClassifierTest, FilterWithoutConditionsMatchesEverything) {
  install({filter(Action::Block, {})});
  EXPECT_EQ(run_inbound(base().build()), Verdict::Block);
  EXPECT_EQ(run_inbound(base().vlan(9).ethertype(0x0806).build()), Verdict::Block);
}

// ---- layers: outbound swaps local and remote.
TEST_F(ClassifierTest, OutboundLayerUsesSourceAsLocal) {
  Filter f = filter(Action::Block, {cond(Field::LocalMac, Match::Equal, kRemoteMac)}, 0, 0,
                    kDefaultSublayer, Layer::Outbound);
  install({f});
  // On the way out, our own address is the source.
  EXPECT_EQ(run_outbound(base().build()), Verdict::Block);
  EXPECT_EQ(run_outbound(base().src(kOther).build()), Verdict::Permit);
  // The inbound layer has no filter.
  EXPECT_EQ(run_inbound(base().build()), Verdict::Permit);
}

TEST_F(ClassifierTest, LayerDefaultsApplyWhenNothingMatches) {
  install({filter(Action::Permit, {cond(Field::EtherType, Match::Equal, 0x0806)})}, {}, Action::Block,
          Action::Permit);
  EXPECT_EQ(run_inbound(base().ethertype(0x0806).build()), Verdict::Permit);
  EXPECT_EQ(run_inbound(base().build()), Verdict::Block);
  EXPECT_EQ(run_outbound(base().build()), Verdict::Permit);
}

// ---- arbitration.
TEST_F(ClassifierTest, HigherWeightDecidesWithinASublayer) {
  install({filter(Action::Permit, {cond(Field::EtherType, Match::Equal, 0x0806)}, 10),
           filter(Action::Block, {}, 5)});
  EXPECT_EQ(run_inbound(base().ethertype(0x0806).build()), Verdict::Permit);
  EXPECT_EQ(run_inbound(base().build()), Verdict::Block);
  install({filter(Action::Permit, {cond(Field::EtherType, Match::Equal, 0x0806)}, 5),
           filter(Action::Block, {}, 10)});
  EXPECT_EQ(run_inbound(base().ethertype(0x0806).build()), Verdict::Block);
}

TEST_F(ClassifierTest, EqualWeightsGoToTheOlderFilter) {
  install({filter(Action::Permit, {}, 7), filter(Action::Block, {}, 7)});
  EXPECT_EQ(run_inbound(base().build()), Verdict::Permit);
}

TEST_F(ClassifierTest, BlockInALowerSublayerOverridesASoftPermit) {
  install({filter(Action::Permit, {}, 0, 0, "high"), filter(Action::Block, {}, 0, 0, "low")},
          {{"high", 100}, {"low", 10}});
  EXPECT_EQ(run_inbound(base().build()), Verdict::Block);
}

TEST_F(ClassifierTest, HardPermitStandsAgainstALowerBlock) {
  install({filter(Action::Permit, {}, 0, XFP_FILTER_CLEAR_ACTION_RIGHT, "high"),
           filter(Action::Block, {}, 0, 0, "low")},
          {{"high", 100}, {"low", 10}});
  EXPECT_EQ(run_inbound(base().build()), Verdict::Permit);
}

TEST_F(ClassifierTest, HardBlockIsFinal) {
  install({filter(Action::Block, {}, 0, 0, "high"),
           filter(Action::Permit, {}, 0, XFP_FILTER_CLEAR_ACTION_RIGHT, "low")},
          {{"high", 100}, {"low", 10}});
  EXPECT_EQ(run_inbound(base().build()), Verdict::Block);
  // And the lower sublayer's filter is not evaluated (its counter stays 0).
  EXPECT_EQ(counters_of(2).frames, 0u);
  EXPECT_EQ(counters_of(1).frames, 1u);
}

TEST_F(ClassifierTest, EverySublayerIsEvaluatedEvenAfterAPermit) {
  install({filter(Action::Permit, {}, 0, 0, "high"), filter(Action::Permit, {}, 0, 0, "low")},
          {{"high", 100}, {"low", 10}});
  EXPECT_EQ(run_inbound(base().build()), Verdict::Permit);
  EXPECT_EQ(counters_of(1).frames, 1u);
  EXPECT_EQ(counters_of(2).frames, 1u);
}

// A deny list of MACs is one probe group and nothing else: the kernel takes
// a frame's verdict from the one row its key leads to (abi.h,
// XFP_ROW_DECIDES), or the default when there is none, without the
// arbitration. A row with a callout still goes through it. Verdicts and
// every counter must be what the arbitration gives.
TEST_F(ClassifierTest, AMacListDecidesFromItsOneRowWithTheArbitrationsCounters) {
  constexpr uint64_t kPermittedMac = 0x025e20000002ull, kCalloutMac = 0x025e20000003ull;
  const Mac permitted{0x02, 0x5e, 0x20, 0x00, 0x00, 0x02}, callout{0x02, 0x5e, 0x20, 0x00, 0x00, 0x03};
  install({filter(Action::Block, {cond(Field::RemoteMac, Match::Equal, kRemoteMac)}, 0, 0, "high"),
           filter(Action::Permit, {cond(Field::RemoteMac, Match::Equal, kRemoteMac)}, 0, 0, "low"),
           filter(Action::Permit, {cond(Field::RemoteMac, Match::Equal, kPermittedMac)}, 0, 0, "high"),
           filter(Action::Block, {cond(Field::RemoteMac, Match::Equal, kPermittedMac)}, 0, 0, "low"),
           filter(Action::CalloutTerminating, {cond(Field::RemoteMac, Match::Equal, kCalloutMac)}, 0, 0, "high")},
          {{"high", 100}, {"low", 10}});
  ASSERT_EQ(inbound_groups_, 1u);
  const LayerCounters before = datapath_->layer_counters(Layer::Inbound);
  auto frame = [](const Mac& src) { return base().src(src).pad_to(80).build(); };
  EXPECT_EQ(run_inbound(frame(kRemote)), Verdict::Block);     // hard block: the low permit not evaluated
  EXPECT_EQ(run_inbound(frame(permitted)), Verdict::Block);   // soft permit, then the low block
  EXPECT_EQ(run_inbound(frame(permitted)), Verdict::Block);
  EXPECT_EQ(run_inbound(frame(callout)), Verdict::Block);     // unregistered: its fail action
  EXPECT_EQ(run_inbound(frame(kOther)), Verdict::Permit);     // no row: the default
  const LayerCounters after = datapath_->layer_counters(Layer::Inbound);
  EXPECT_EQ(counters_of(1).frames, 1u);
  EXPECT_EQ(counters_of(1).bytes, 80u);
  EXPECT_EQ(counters_of(2).frames, 0u);
  EXPECT_EQ(counters_of(3).frames, 2u);
  EXPECT_EQ(counters_of(4).frames, 2u);
  EXPECT_EQ(counters_of(4).bytes, 160u);
  EXPECT_EQ(counters_of(5).frames, 1u);
  auto delta = [&](int c) { return after.c[c] - before.c[c]; };
  EXPECT_EQ(delta(XFP_CNT_FRAMES), 5u);
  EXPECT_EQ(delta(XFP_CNT_BYTES), 400u);
  EXPECT_EQ(delta(XFP_CNT_BLOCK), 4u);
  EXPECT_EQ(delta(XFP_CNT_PERMIT), 1u);
  EXPECT_EQ(delta(XFP_CNT_DEFAULT), 1u);
  EXPECT_EQ(delta(XFP_CNT_CALLOUT_FAIL), 1u);
  // The same on a default of block: a frame no row names takes it.
  install({filter(Action::Permit, {cond(Field::RemoteMac, Match::Equal, kRemoteMac)})}, {}, Action::Block);
  EXPECT_EQ(run_inbound(frame(kRemote)), Verdict::Permit);
  EXPECT_EQ(run_inbound(frame(kOther)), Verdict::Block);
}

// A value of a direct table (one small field) whose filters sit in three,
// two or one sublayers: its row lists that many ranks (abi.h, struct
// xfp_entry), and the lowest sublayer's block must count in every case.
TEST_F(ClassifierTest, ADirectTableValueWithFiltersInThreeSublayersKeepsThemAll) {
  const Condition ether = cond(Field::EtherType, Match::Equal, test::ethertype::kLocalExperimental1);
  const std::vector<Sublayer> sublayers{{"high", 300}, {"mid", 200}, {"low", 100}};
  install({filter(Action::Permit, {ether}, 0, 0, "high"), filter(Action::Permit, {ether}, 0, 0, "mid"),
           filter(Action::Block, {ether}, 0, 0, "low")},
          sublayers);
  EXPECT_EQ(run_inbound(base().build()), Verdict::Block);
  EXPECT_EQ(counters_of(1).frames, 1u);
  EXPECT_EQ(counters_of(2).frames, 1u);
  EXPECT_EQ(counters_of(3).frames, 1u);
  // Two sublayers: the block in "low" still overrides.
  install({filter(Action::Permit, {ether}, 0, 0, "high"), filter(Action::Block, {ether}, 0, 0, "low")}, sublayers);
  EXPECT_EQ(run_inbound(base().build()), Verdict::Block);
  // One.
  install({filter(Action::Permit, {ether}, 0, 0, "high")}, sublayers);
  EXPECT_EQ(run_inbound(base().build()), Verdict::Permit);
  EXPECT_EQ(inbound_groups_, 0u);  // served by the direct table, not tuple space
}

// A direct value whose filters sit in one sublayer slot carries that
// slot's best rank in the table itself (abi.h, XFP_DIRECT_INLINE); one of
// two slots leads to a row. Both decide and count as arbitration says.
TEST_F(ClassifierTest, ADirectValueOfOneSublayerDecidesFromTheRankInTheTable) {
  const std::vector<Sublayer> sublayers{{"high", 300}, {"low", 100}};
  auto ether = [](uint16_t et) { return cond(Field::EtherType, Match::Equal, et); };
  install({filter(Action::Block, {ether(0x9001)}, 0, 0, "low"),    // 1: alone in its value
           filter(Action::Permit, {ether(0x9002)}, 0, 0, "high"),  // 2, 3: two slots, a row
           filter(Action::Block, {ether(0x9002)}, 0, 0, "low"),
           filter(Action::Permit, {ether(0x9003)}, 10, 0, "low"),  // 4, 5: one slot, 4 weighs more
           filter(Action::Block, {ether(0x9003)}, 1, 0, "low")},
          sublayers);
  ASSERT_EQ(inbound_groups_, 0u);  // every filter in the direct table
  const LayerCounters before = datapath_->layer_counters(Layer::Inbound);
  EXPECT_EQ(run_inbound(base().ethertype(0x9001).build()), Verdict::Block);
  EXPECT_EQ(run_inbound(base().ethertype(0x9002).build()), Verdict::Block);  // the low block overrides
  EXPECT_EQ(run_inbound(base().ethertype(0x9003).build()), Verdict::Permit);
  EXPECT_EQ(run_inbound(base().ethertype(0x9004).build()), Verdict::Permit);
  const std::vector<uint64_t> frames{counters_of(1).frames, counters_of(2).frames, counters_of(3).frames,
                                     counters_of(4).frames, counters_of(5).frames};
  EXPECT_EQ(frames, (std::vector<uint64_t>{1, 1, 1, 1, 0}));
  const LayerCounters after = datapath_->layer_counters(Layer::Inbound);
  EXPECT_EQ(after.c[XFP_CNT_BLOCK] - before.c[XFP_CNT_BLOCK], 2u);
  EXPECT_EQ(after.c[XFP_CNT_PERMIT] - before.c[XFP_CNT_PERMIT], 2u);
  EXPECT_EQ(after.c[XFP_CNT_DEFAULT] - before.c[XFP_CNT_DEFAULT], 1u);
}

TEST_F(ClassifierTest, SublayerWeightNotInsertionOrderDecides) {
  // "low" is created first but weighs less: the hard permit in "high" wins.
  install({filter(Action::Block, {}, 0, 0, "low"),
           filter(Action::Permit, {}, 0, XFP_FILTER_CLEAR_ACTION_RIGHT, "high")},
          {{"low", 10}, {"high", 100}});
  EXPECT_EQ(run_inbound(base().build()), Verdict::Permit);
}

TEST_F(ClassifierTest, UnregisteredTerminatingCalloutBlocksHard) {
  LayerCounters before = datapath_->layer_counters(Layer::Inbound);
  install({filter(Action::CalloutTerminating, {}, 0, 0, "high"),
           filter(Action::Permit, {}, 0, XFP_FILTER_CLEAR_ACTION_RIGHT, "low")},
          {{"high", 100}, {"low", 10}});
  EXPECT_EQ(run_inbound(base().build()), Verdict::Block);
  LayerCounters after = datapath_->layer_counters(Layer::Inbound);
  EXPECT_EQ(after.c[XFP_CNT_CALLOUT_FAIL] - before.c[XFP_CNT_CALLOUT_FAIL], 1u);
}

TEST_F(ClassifierTest, PermitIfCalloutUnregisteredFailsOpenSoftly) {
  install({filter(Action::CalloutUnknown, {}, 0, XFP_FILTER_PERMIT_IF_CALLOUT_UNREGISTERED)});
  EXPECT_EQ(run_inbound(base().build()), Verdict::Permit);
  // Soft: a lower sublayer's block still overrides it.
  install({filter(Action::CalloutTerminating, {}, 0, XFP_FILTER_PERMIT_IF_CALLOUT_UNREGISTERED, "high"),
           filter(Action::Block, {}, 0, 0, "low")},
          {{"high", 100}, {"low", 10}});
  EXPECT_EQ(run_inbound(base().build()), Verdict::Block);
}

TEST_F(ClassifierTest, InspectionCalloutContinuesToTheNextFilter) {
  install({filter(Action::CalloutInspection, {}, 10), filter(Action::Block, {}, 5)});
  EXPECT_EQ(run_inbound(base().build()), Verdict::Block);
}

TEST_F(ClassifierTest, DisabledFiltersAreIgnored) {
  install({filter(Action::Block, {}, 0, XFP_FILTER_DISABLED)});
  EXPECT_EQ(run_inbound(base().build()), Verdict::Permit);
}

// ---- direct tables (one small field) and tuple space (the rest) together.
TEST_F(ClassifierTest, OverlappingSmallFieldFiltersResolveByWeight) {
  install({filter(Action::Block, {cond(Field::Vlan, Match::Range, 10, 20)}, 5),
           filter(Action::Permit, {cond(Field::Vlan, Match::Equal, 15)}, 10),
           filter(Action::Permit, {cond(Field::Vlan, Match::Range, 18, 30)}, 1)});
  EXPECT_EQ(run_inbound(base().vlan(15).build()), Verdict::Permit);  // weight 10 beats 5
  EXPECT_EQ(run_inbound(base().vlan(12).build()), Verdict::Block);
  EXPECT_EQ(run_inbound(base().vlan(19).build()), Verdict::Block);   // 5 beats 1
  EXPECT_EQ(run_inbound(base().vlan(25).build()), Verdict::Permit);
  EXPECT_EQ(run_inbound(base().vlan(31).build()), Verdict::Permit);  // default
}

TEST_F(ClassifierTest, SmallFieldAndMacFiltersShareASublayerByWeight) {
  install({filter(Action::Block, {cond(Field::EtherType, Match::Equal, 0x0806)}, 5),
           filter(Action::Permit, {cond(Field::RemoteMac, Match::Equal, kRemoteMac)}, 10)});
  EXPECT_EQ(run_inbound(base().ethertype(0x0806).build()), Verdict::Permit);
  EXPECT_EQ(run_inbound(base().ethertype(0x0806).src(kOther).build()), Verdict::Block);
  install({filter(Action::Block, {cond(Field::EtherType, Match::Equal, 0x0806)}, 10),
           filter(Action::Permit, {cond(Field::RemoteMac, Match::Equal, kRemoteMac)}, 5)});
  EXPECT_EQ(run_inbound(base().ethertype(0x0806).build()), Verdict::Block);
}

TEST_F(ClassifierTest, AddressTypeFiltersCombineLocalAndRemote) {
  install({filter(Action::Block, {cond(Field::LocalAddrType, Match::Equal, XFP_ADDR_BROADCAST),
                                  cond(Field::RemoteAddrType, Match::Equal, XFP_ADDR_UNICAST)})});
  EXPECT_EQ(run_inbound(base().dst(test::kBroadcastMac).build()), Verdict::Block);
  EXPECT_EQ(run_inbound(base().dst(test::kBroadcastMac).src(Mac{0x03, 0, 0, 0, 0, 1}).build()), Verdict::Permit);
  EXPECT_EQ(run_inbound(base().build()), Verdict::Permit);
}

TEST_F(ClassifierTest, SmallFieldFiltersInDifferentSublayersArbitrate) {
  install({filter(Action::Permit, {cond(Field::Vlan, Match::Range, 1, 100)}, 0, 0, "high"),
           filter(Action::Block, {cond(Field::FrameLength, Match::Greater, 100)}, 0, 0, "low")},
          {{"high", 100}, {"low", 10}});
  EXPECT_EQ(run_inbound(base().vlan(50).build()), Verdict::Permit);
  EXPECT_EQ(run_inbound(base().vlan(50).pad_to(200).build()), Verdict::Block);  // soft permit overridden
}

// ---- counters.
TEST_F(ClassifierTest, PerFilterAndPerLayerCountersCountFramesAndBytes) {
  install({filter(Action::Block, {cond(Field::EtherType, Match::Equal, 0x0806)}),
           filter(Action::Permit, {cond(Field::EtherType, Match::Equal, 0x86dd)})});
  LayerCounters before = datapath_->layer_counters(Layer::Inbound);
  auto arp = base().ethertype(0x0806).pad_to(100).build();
  for (int i = 0; i < 3; ++i) run_inbound(arp);
  run_inbound(base().ethertype(0x86dd).build());
  run_inbound(base().build());  // no match: default
  EXPECT_EQ(counters_of(1).frames, 3u);
  EXPECT_EQ(counters_of(1).bytes, 300u);
  EXPECT_EQ(counters_of(2).frames, 1u);
  LayerCounters after = datapath_->layer_counters(Layer::Inbound);
  EXPECT_EQ(after.c[XFP_CNT_FRAMES] - before.c[XFP_CNT_FRAMES], 5u);
  EXPECT_EQ(after.c[XFP_CNT_BLOCK] - before.c[XFP_CNT_BLOCK], 3u);
  EXPECT_EQ(after.c[XFP_CNT_PERMIT] - before.c[XFP_CNT_PERMIT], 2u);
  EXPECT_EQ(after.c[XFP_CNT_DEFAULT] - before.c[XFP_CNT_DEFAULT], 1u);
}

// ---- installs.
TEST_F(ClassifierTest, InstallSwapsTheWholeSet) {
  install({filter(Action::Block, {cond(Field::EtherType, Match::Equal, 0x0806)})});
  uint64_t gen = datapath_->generation();
  EXPECT_EQ(run_inbound(base().ethertype(0x0806).build()), Verdict::Block);
  install({filter(Action::Block, {cond(Field::EtherType, Match::Equal, 0x86dd)})});
  EXPECT_EQ(datapath_->generation(), gen + 1);
  EXPECT_EQ(run_inbound(base().ethertype(0x0806).build()), Verdict::Permit);
  EXPECT_EQ(run_inbound(base().ethertype(0x86dd).build()), Verdict::Block);
  install({});
  EXPECT_EQ(run_inbound(base().ethertype(0x86dd).build()), Verdict::Permit);
}

// ---- flags tests and non-prefix masks on a 12- or 16-bit field alone: the
// ---- field's direct table must hold exactly the values they match.
TEST_F(ClassifierTest, FlagsTestsOnAWideFieldAloneMatchExactly) {
  install({filter(Action::Block, {cond(Field::FrameLength, Match::FlagsAnySet, 0x20)})});
  EXPECT_EQ(run_inbound(base().pad_to(65).build()), Verdict::Permit);  // 0x41: bit 0x20 clear
  EXPECT_EQ(run_inbound(base().pad_to(96).build()), Verdict::Block);   // 0x60
  install({filter(Action::Block, {cond(Field::FrameLength, Match::FlagsAllSet, 14)})});
  EXPECT_EQ(run_inbound(base().pad_to(60).build()), Verdict::Permit);  // 0x3c lacks bit 2
  EXPECT_EQ(run_inbound(base().pad_to(62).build()), Verdict::Block);   // 0x3e
  install({filter(Action::Block, {cond(Field::FrameLength, Match::FlagsNoneSet, 0x3)})});
  EXPECT_EQ(run_inbound(base().pad_to(61).build()), Verdict::Permit);
  EXPECT_EQ(run_inbound(base().pad_to(64).build()), Verdict::Block);
  // VLAN id with a non-prefix mask: the low nibble is 5, whatever the rest.
  install({filter(Action::Block, {cond(Field::Vlan, Match::Equal, 0x005, 0, 0x00f)})});
  EXPECT_EQ(run_inbound(base().vlan(0x125).build()), Verdict::Block);
  EXPECT_EQ(run_inbound(base().vlan(0x126).build()), Verdict::Permit);
  EXPECT_EQ(run_inbound(base().vlan(0x005).build()), Verdict::Block);
  EXPECT_EQ(run_inbound(base().vlan(0x00f).build()), Verdict::Permit);
}

// ---- test::test_run() with an interface: the XDP context must describe the
// ---- frame itself (data 0, data_end its size), or the program classifies
// ---- something else and every frame here came back XDP_PASS.
TEST_F(ClassifierTest, TestRunWithAnIfindexClassifiesTheFrame) {
  install({filter(Action::Block,
                  {cond(Field::LocalAddrType, Match::NotEqual, XFP_ADDR_MULTICAST),
                   cond(Field::LocalMac, Match::FlagsAllSet, 0x029900000004ull), cond(Field::Vlan, Match::GreaterOrEqual, 0)},
                  5, XFP_FILTER_CLEAR_ACTION_RIGHT),
           filter(Action::Block, {}, 2, XFP_FILTER_CLEAR_ACTION_RIGHT),
           filter(Action::Permit, {cond(Field::RemoteAddrType, Match::FlagsNoneSet, XFP_ADDR_MULTICAST)}, 5,
                  XFP_FILTER_CLEAR_ACTION_RIGHT)});
  const unsigned lo = ::if_nametoindex("lo");  // present in every namespace, one receive queue
  ASSERT_NE(lo, 0u);
  auto run = [&](const std::vector<uint8_t>& frame) {
    test::TestRunOptions opt;
    opt.ifindex = lo;
    const test::TestRunResult r = test::test_run(datapath_->xdp_prog_fd(), frame, opt);
    EXPECT_EQ(r.err, 0) << std::strerror(r.err);
    EXPECT_EQ(r.data_out, frame);
    return r.retval;
  };
  const Mac bits_set{0x02, 0x99, 0x00, 0x00, 0x00, 0x04};
  const Mac multicast_src{0x03, 0x00, 0x00, 0x00, 0x00, 0x01};
  EXPECT_EQ(run(base().dst(bits_set).build()), static_cast<uint32_t>(XDP_DROP));                   // (a)
  EXPECT_EQ(run(base().dst(bits_set).vlan(7).build()), static_cast<uint32_t>(XDP_DROP));           // (a)
  EXPECT_EQ(run(base().build()), static_cast<uint32_t>(XDP_PASS));                                 // (c)
  EXPECT_EQ(run(base().src(multicast_src).build()), static_cast<uint32_t>(XDP_DROP));              // (b)
  EXPECT_EQ(run(base().dst(bits_set).src(multicast_src).build()), static_cast<uint32_t>(XDP_DROP));  // (a)
}

TEST_F(ClassifierTest, ManyFiltersStillClassifyExactly) {
  std::vector<Filter> filters;
  for (uint64_t i = 0; i < 20000; ++i)
    filters.push_back(filter(Action::Block, {cond(Field::RemoteMac, Match::Equal, 0x02aa00000000ull + i)}));
  install(filters);
  EXPECT_EQ(run_inbound(base().src(Mac{0x02, 0xaa, 0, 0, 0x4e, 0x1f}).build()), Verdict::Block);  // i = 19999
  EXPECT_EQ(run_inbound(base().src(Mac{0x02, 0xaa, 0, 0, 0x4e, 0x20}).build()), Verdict::Permit);  // i = 20000
}

// Tuple groups (user/xfp/tuple_groups.hpp): "remote MAC" and "remote MAC and
// EtherType" are probed together, keyed by the MAC; the key leads to every
// row of that MAC, and only the rows whose own key the frame matches count.
// A frame from kRemote with an EtherType no filter names must see the MAC
// filter's block, not the permits of the rows it shares the key with.
TEST_F(ClassifierTest, GroupedTuplesCountOnlyTheRowsTheFrameMatches) {
  using namespace test::ethertype;
  constexpr uint64_t kSecondMac = 0x025e20000002ull;
  const Mac second{0x02, 0x5e, 0x20, 0x00, 0x00, 0x02};
  install({filter(Action::Block, {cond(Field::RemoteMac, Match::Equal, kRemoteMac)}),
           filter(Action::Permit, {cond(Field::RemoteMac, Match::Equal, kRemoteMac), cond(Field::EtherType, Match::Equal, kArp)}, 10),
           filter(Action::Permit, {cond(Field::RemoteMac, Match::Equal, kRemoteMac), cond(Field::EtherType, Match::Equal, kIpv6)}, 10),
           filter(Action::Block, {cond(Field::RemoteMac, Match::Equal, kSecondMac), cond(Field::EtherType, Match::Equal, kLldp)})});
  ASSERT_EQ(inbound_groups_, 1u) << "the two shapes nest under the remote MAC: one probe";
  EXPECT_EQ(run_inbound(base().ethertype(kArp).build()), Verdict::Permit);
  EXPECT_EQ(run_inbound(base().ethertype(kIpv6).build()), Verdict::Permit);
  EXPECT_EQ(run_inbound(ipv4_base().ipv4().build()), Verdict::Block);  // only the MAC's own row
  EXPECT_EQ(run_inbound(base().ethertype(kLldp).build()), Verdict::Block);
  EXPECT_EQ(run_inbound(base().src(second).ethertype(kLldp).build()), Verdict::Block);
  EXPECT_EQ(run_inbound(base().src(second).ethertype(kArp).build()), Verdict::Permit);  // key found, row not
  EXPECT_EQ(run_inbound(base().src(kOther).ethertype(kLldp).build()), Verdict::Permit);
  EXPECT_EQ(counters_of(1).frames, 2u);  // the MAC filter: IPv4 and LLDP from kRemote
  EXPECT_EQ(counters_of(4).frames, 1u);
}

// One MAC in more rows than a group key may lead to (XFP_GROUP_CHAIN): the
// shapes get a probe each, and every row still decides its own frames.
TEST_F(ClassifierTest, AKeyWithMoreRowsThanAChainHoldsKeepsItsOwnProbes) {
  std::vector<Filter> filters{filter(Action::Block, {cond(Field::RemoteMac, Match::Equal, kRemoteMac)})};
  for (uint64_t e = 0; e < XFP_GROUP_CHAIN; ++e)
    filters.push_back(filter(Action::Permit, {cond(Field::RemoteMac, Match::Equal, kRemoteMac),
                                              cond(Field::EtherType, Match::Equal, 0x9000 + e)}, 10));
  install(filters);
  ASSERT_EQ(inbound_groups_, 2u);
  for (uint16_t e = 0; e < XFP_GROUP_CHAIN; ++e)
    EXPECT_EQ(run_inbound(base().ethertype(static_cast<uint16_t>(0x9000 + e)).build()), Verdict::Permit) << e;
  EXPECT_EQ(run_inbound(base().ethertype(0x9000 + XFP_GROUP_CHAIN).build()), Verdict::Block);
  EXPECT_EQ(run_inbound(base().src(kOther).ethertype(0x9000).build()), Verdict::Permit);

  // A compiled set that puts the two shapes in one group anyway would need a
  // longer chain than the kernel walks: refused, and the running set stays.
  auto forced = compile(set_);
  ASSERT_TRUE(forced.ok());
  TupleGrouping& g = forced->layers[XFP_LAYER_INBOUND].grouping;
  ASSERT_EQ(g.groups.size(), 2u);
  g.groups[0].mask = xfp_fields{};
  std::fill(g.group_of_tuple.begin(), g.group_of_tuple.end(), 0);
  g.groups.resize(1);
  Status s = datapath_->install(*forced);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("group key of more than 4 rows"), std::string::npos) << s.error().message;
  EXPECT_EQ(run_inbound(base().ethertype(0x9000).build()), Verdict::Permit);
  EXPECT_EQ(run_inbound(base().ethertype(0x9000 + XFP_GROUP_CHAIN).build()), Verdict::Block);
}

// The entry table at scale (user/entry_table.cpp builds it, the BPF probe
// reads it): every one of 20,000 installed keys is found by the kernel, in
// whichever of its two buckets it landed, on both layers, and 2,000 keys
// that were never installed are not. 12,500 EtherType values with a result
// each (more than the 8,192 the direct results once held) are found too.
TEST_F(ClassifierTest, EveryKeyOfALargeSetIsFoundAndNoOtherOnBothLayers) {
  std::vector<Filter> filters;
  const uint64_t base_mac = 0x02ab00000000ull;
  for (uint64_t i = 0; i < 20000; ++i) {
    filters.push_back(filter(Action::Block, {cond(Field::RemoteMac, Match::Equal, base_mac + i * 7919)}));
    filters.push_back(filter(Action::Block, {cond(Field::RemoteMac, Match::Equal, base_mac + i * 7919)}, 0, 0,
                             kDefaultSublayer, Layer::Outbound));
  }
  for (uint64_t e = 0; e < 12500; ++e)
    filters.push_back(filter(Action::Block, {cond(Field::EtherType, Match::Equal, 0x1000 + e)}, e % 1000));
  install(filters);
  auto mac_of = [](uint64_t v) {
    Mac m;
    for (int b = 0; b < 6; ++b) m[b] = static_cast<uint8_t>(v >> (8 * (5 - b)));
    return m;
  };
  size_t missed = 0, false_hits = 0;
  for (uint64_t i = 0; i < 20000; ++i) {
    const Mac m = mac_of(base_mac + i * 7919);
    // Inbound: the frame's source is the remote MAC; outbound: its destination.
    if (run_inbound(ipv4_base().src(m).build()) != Verdict::Block) ++missed;
    if (i % 10 == 0 && run_outbound(FrameBuilder().src(kLocal).dst(m).build()) != Verdict::Block) ++missed;
  }
  for (uint64_t i = 0; i < 2000; ++i)
    if (run_inbound(ipv4_base().src(mac_of(base_mac + i * 7919 + 1)).build()) != Verdict::Permit) ++false_hits;
  EXPECT_EQ(missed, 0u);
  EXPECT_EQ(false_hits, 0u);
  size_t ethertype_missed = 0;
  for (uint64_t e = 0; e < 12500; e += 97)
    if (run_inbound(base().ethertype(static_cast<uint16_t>(0x1000 + e)).build()) != Verdict::Block) ++ethertype_missed;
  EXPECT_EQ(ethertype_missed, 0u);
  EXPECT_EQ(run_inbound(base().ethertype(static_cast<uint16_t>(0x1000 + 12500)).build()), Verdict::Permit);
}

// A fast path whose entry table holds 8 rows per set.
Result<std::unique_ptr<Datapath>> open_eight_row_datapath() {
  DatapathOptions o;
  o.max_entries = 16;  // both banks
  return Datapath::open(o);
}

// The inbound program's XDP verdict on one frame.
uint32_t xdp_verdict(Datapath& dp, const std::vector<uint8_t>& frame) {
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = static_cast<uint32_t>(frame.size()),
              .repeat = 1);
  EXPECT_EQ(bpf_prog_test_run_opts(dp.xdp_prog_fd(), &opts), 0);
  return opts.retval;
}

// A set that compiles (its limits are the caller's) but does not fit the
// fast path's table is refused whole, with the remedy, and the running set
// keeps classifying.
TEST(EntryTableCapacity, ASetLargerThanTheTableIsRefusedAndTheRunningSetStays) {
  XFP_REQUIRE_ROOT();
  auto dp = open_eight_row_datapath();
  ASSERT_TRUE(dp.ok()) << dp.error().message;
  auto make = [](size_t n) {
    FilterSet set;
    for (uint64_t i = 0; i < n; ++i)
      EXPECT_TRUE(set.add_filter(filter(Action::Block, {cond(Field::RemoteMac, Match::Equal, 0x02cd00000000ull + i)})).ok());
    auto c = compile(set);
    EXPECT_TRUE(c.ok());
    return std::move(c).value();
  };
  ASSERT_TRUE((*dp)->install(make(8)).ok());
  Status s = (*dp)->install(make(9));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ENOSPC);
  EXPECT_EQ(s.error().message,
            "the filter set needs 9 table entries; the fast path holds 8 per set (raise the daemon's --max-entries)");
  auto run = [&](uint8_t last) { return xdp_verdict(**dp, base().src(Mac{0x02, 0xcd, 0, 0, 0, last}).build()); };
  EXPECT_EQ(run(7), static_cast<uint32_t>(XDP_DROP));  // the running set of 8
  EXPECT_EQ(run(8), static_cast<uint32_t>(XDP_PASS));  // the refused 9th
  EXPECT_EQ((*dp)->generation(), 1u);
}

// Only a direct value with filters in more than one sublayer takes an entry
// row; the others live in the direct map itself. So twenty values of one
// sublayer and one of two fit in a table of eight rows.
TEST(EntryTableCapacity, DirectValuesOfOneSublayerTakeNoEntryRow) {
  XFP_REQUIRE_ROOT();
  auto dp = open_eight_row_datapath();
  ASSERT_TRUE(dp.ok()) << dp.error().message;
  FilterSet set;
  ASSERT_TRUE(set.add_sublayer(Sublayer{"high", 300}).ok());
  ASSERT_TRUE(set.add_sublayer(Sublayer{"low", 100}).ok());
  auto ether = [](uint16_t et) { return cond(Field::EtherType, Match::Equal, et); };
  for (uint16_t i = 0; i < 20; ++i) ASSERT_TRUE(set.add_filter(filter(Action::Block, {ether(0x9200 + i)}, 0, 0, "low")).ok());
  ASSERT_TRUE(set.add_filter(filter(Action::Permit, {ether(0x9300)}, 0, 0, "high")).ok());
  ASSERT_TRUE(set.add_filter(filter(Action::Block, {ether(0x9300)}, 0, 0, "low")).ok());
  auto compiled = compile(set);
  ASSERT_TRUE(compiled.ok()) << compiled.error().message;
  EXPECT_EQ(compiled->entry_count(), 1u);
  Status s = (*dp)->install(*compiled);
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto run = [&](uint16_t et) { return xdp_verdict(**dp, base().ethertype(et).build()); };
  EXPECT_EQ(run(0x9200), static_cast<uint32_t>(XDP_DROP));
  EXPECT_EQ(run(0x9213), static_cast<uint32_t>(XDP_DROP));
  EXPECT_EQ(run(0x9214), static_cast<uint32_t>(XDP_PASS));  // no filter
  EXPECT_EQ(run(0x9300), static_cast<uint32_t>(XDP_DROP));  // the low block overrides the soft permit
}

}  // namespace
}  // namespace xfp
