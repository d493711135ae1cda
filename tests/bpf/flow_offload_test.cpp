// Flow-verdict offload in the loaded XDP and TC programs, through
// BPF_PROG_TEST_RUN: the kernel derives the same flow key as user space
// (an entry written under the user-space key of one direction decides
// frames of both), verdicts, counters and last-seen, FIN/RST bypass,
// generation validity across installs, and no lookup while disabled.
// BPF_PROG_TEST_RUN runs on the loopback device: the attachment key of the
// daemon's own program copy is the ifindex, 1.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/assert_ok.hpp"
#include "support/flow_frames.hpp"
#include "support/frame_builder.hpp"
#include "support/privileges.hpp"
#include "xfp/compiler.hpp"
#include "xfp/datapath.hpp"

namespace xfp {
namespace {

using test::FrameBuilder;
using test::L4Options;
using test::Mac;
using test::flow_key_of;
using test::ipv4_frame;
using test::ipv6_frame;

constexpr Mac kA{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
constexpr Mac kB{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b};
constexpr test::Ipv4Addr kIpA{198, 18, 0, 1};
constexpr test::Ipv4Addr kIpB{198, 18, 0, 2};
constexpr uint32_t kLoIface = 1;  // test runs happen on lo

L4Options tcp(uint16_t sport, uint16_t dport, uint8_t flags = test::kTcpAck) {
  return L4Options{.protocol = 6, .src_port = sport, .dst_port = dport, .tcp_flags = flags};
}
L4Options udp(uint16_t sport, uint16_t dport) { return L4Options{.protocol = 17, .src_port = sport, .dst_port = dport}; }

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  // the offload map's clock
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

xfp_flow_key key_of(const std::vector<uint8_t>& frame) {
  auto k = flow_key_of(frame, kLoIface);
  EXPECT_TRUE(k.has_value());
  return k.value_or(xfp_flow_key{});
}

class FlowOffloadTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::missing_privileges().empty()) return;
    DatapathOptions o;
    o.max_offloads = 1024;
    auto dp = Datapath::open(o);
    ASSERT_TRUE(dp.ok()) << dp.error().message;
    dp_ = std::move(dp).value().release();
  }
  static void TearDownTestSuite() {
    delete dp_;
    dp_ = nullptr;
  }
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    ASSERT_NE(dp_, nullptr);
    // Each test starts with no offloads, lookups off, the default permit.
    auto all = dp_->read_offloads();
    ASSERT_TRUE(all.ok());
    for (const auto& e : *all) XFP_ASSERT_OK(dp_->remove_offload(e.key, e.layer));
    XFP_ASSERT_OK(dp_->set_offload_enabled(false));
    install_default(Action::Permit);
  }

  // The whole policy: no filters, these defaults.
  void install_default(Action inbound, Action outbound = Action::Permit) {
    FilterSet set;
    set.set_default(Layer::Inbound, inbound);
    set.set_default(Layer::Outbound, outbound);
    auto compiled = compile(set);
    ASSERT_TRUE(compiled.ok()) << compiled.error().message;
    XFP_ASSERT_OK(dp_->install(*compiled));
  }

  static uint32_t run_xdp(const std::vector<uint8_t>& frame, int repeat = 1) {
    std::vector<uint8_t> data = frame;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(),
                .data_size_in = static_cast<uint32_t>(data.size()), .repeat = repeat);
    EXPECT_EQ(bpf_prog_test_run_opts(dp_->xdp_prog_fd(), &opts), 0) << std::strerror(errno);
    return opts.retval;
  }
  static uint32_t run_tc(const std::vector<uint8_t>& frame) {
    std::vector<uint8_t> data = frame;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(),
                .data_size_in = static_cast<uint32_t>(data.size()), .repeat = 1);
    EXPECT_EQ(bpf_prog_test_run_opts(dp_->tc_prog_fd(), &opts), 0) << std::strerror(errno);
    return opts.retval;
  }
  static uint64_t counter(Layer l, int c) { return dp_->layer_counters(l).c[c]; }

  static Datapath* dp_;
};

Datapath* FlowOffloadTest::dp_ = nullptr;

TEST_F(FlowOffloadTest, PermitEntryLetsItsFlowThroughABlockingPolicyInBothDirections) {
  install_default(Action::Block);
  auto ab = ipv4_frame(kA, kB, kIpA, kIpB, tcp(40000, 80));
  auto ba = ipv4_frame(kB, kA, kIpB, kIpA, tcp(80, 40000));
  auto other = ipv4_frame(kA, kB, kIpA, kIpB, tcp(40001, 80));
  EXPECT_EQ(run_xdp(ab), XDP_DROP);
  // The entry is written under the key user space derives from one direction.
  XFP_ASSERT_OK(dp_->offload_flow(key_of(ab), Layer::Inbound, XFP_OFFLOAD_PERMIT, 0, dp_->generation()));
  EXPECT_TRUE(dp_->offload_enabled(Layer::Inbound));
  const uint64_t hits = counter(Layer::Inbound, XFP_CNT_OFFLOAD_PERMIT);
  const uint64_t misses = counter(Layer::Inbound, XFP_CNT_OFFLOAD_MISS);
  EXPECT_EQ(run_xdp(ab), XDP_PASS);
  EXPECT_EQ(run_xdp(ba), XDP_PASS);
  EXPECT_EQ(run_xdp(other), XDP_DROP);
  EXPECT_EQ(counter(Layer::Inbound, XFP_CNT_OFFLOAD_PERMIT) - hits, 2u);
  EXPECT_EQ(counter(Layer::Inbound, XFP_CNT_OFFLOAD_MISS) - misses, 1u);
}

struct KeyCase {
  std::string name;
  std::vector<uint8_t> forward, reverse;
};

std::vector<KeyCase> key_cases() {
  const auto a6 = test::test_ipv6(1), b6 = test::test_ipv6(2);
  return {
      {"ipv4_udp", ipv4_frame(kA, kB, kIpA, kIpB, udp(5000, 53)), ipv4_frame(kB, kA, kIpB, kIpA, udp(53, 5000))},
      {"ipv4_tcp_tagged", ipv4_frame(kA, kB, kIpA, kIpB, tcp(1, 2), 42),
       ipv4_frame(kB, kA, kIpB, kIpA, tcp(2, 1), 42)},
      {"ipv6_tcp", ipv6_frame(kA, kB, a6, b6, tcp(40000, 443)), ipv6_frame(kB, kA, b6, a6, tcp(443, 40000))},
      {"ipv6_udp_ext_headers", ipv6_frame(kA, kB, a6, b6, udp(7, 9), 3, 2),
       ipv6_frame(kB, kA, b6, a6, udp(9, 7), 3, 2)},
      {"non_ip", FrameBuilder().src(kA).dst(kB).ethertype(0x88b5).build(),
       FrameBuilder().src(kB).dst(kA).ethertype(0x88b5).build()},
      {"qinq_non_ip", FrameBuilder().src(kA).dst(kB).qinq(10, 20).ethertype(0x88b5).build(),
       FrameBuilder().src(kB).dst(kA).qinq(10, 20).ethertype(0x88b5).build()},
  };
}

class FlowKeyAgreementTest : public FlowOffloadTest, public ::testing::WithParamInterface<KeyCase> {};

// The kernel's key equals user space's (the entry is found) for both
// directions, on both layers; a frame of another flow does not hit it.
TEST_P(FlowKeyAgreementTest, KernelFindsTheUserSpaceKeyInBothDirectionsOnBothLayers) {
  const KeyCase& c = GetParam();
  install_default(Action::Block, Action::Block);
  XFP_ASSERT_OK(dp_->offload_flow(key_of(c.forward), Layer::Inbound, XFP_OFFLOAD_PERMIT, 0, dp_->generation()));
  XFP_ASSERT_OK(dp_->offload_flow(key_of(c.forward), Layer::Outbound, XFP_OFFLOAD_PERMIT, 0, dp_->generation()));
  EXPECT_EQ(run_xdp(c.forward), XDP_PASS);
  EXPECT_EQ(run_xdp(c.reverse), XDP_PASS);
  EXPECT_EQ(run_tc(c.forward), TC_ACT_OK);
  EXPECT_EQ(run_tc(c.reverse), TC_ACT_OK);
  auto e = dp_->read_offload(key_of(c.reverse), Layer::Inbound);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->packets, 2u);
  EXPECT_EQ(e->bytes, c.forward.size() + c.reverse.size());
  // Another destination MAC is another flow: classified (blocked).
  std::vector<uint8_t> other = c.forward;
  other[0] ^= 0x40;  // destination MAC, still locally administered unicast
  EXPECT_EQ(run_xdp(other), XDP_DROP);
}

INSTANTIATE_TEST_SUITE_P(Frames, FlowKeyAgreementTest, ::testing::ValuesIn(key_cases()),
                         [](const auto& info) { return info.param.name; });

TEST_F(FlowOffloadTest, BlockAndRedirectVerdictsOnBothLayers) {
  auto f = ipv4_frame(kA, kB, kIpA, kIpB, udp(1000, 2000));
  XFP_ASSERT_OK(dp_->offload_flow(key_of(f), Layer::Inbound, XFP_OFFLOAD_BLOCK, 0, dp_->generation()));
  XFP_ASSERT_OK(dp_->offload_flow(key_of(f), Layer::Outbound, XFP_OFFLOAD_BLOCK, 0, dp_->generation()));
  uint64_t blocks = counter(Layer::Inbound, XFP_CNT_OFFLOAD_BLOCK);
  EXPECT_EQ(run_xdp(f), XDP_DROP);
  EXPECT_EQ(run_tc(f), TC_ACT_SHOT);
  EXPECT_EQ(counter(Layer::Inbound, XFP_CNT_OFFLOAD_BLOCK) - blocks, 1u);

  XFP_ASSERT_OK(dp_->offload_flow(key_of(f), Layer::Inbound, XFP_OFFLOAD_REDIRECT, 1, dp_->generation()));
  XFP_ASSERT_OK(dp_->offload_flow(key_of(f), Layer::Outbound, XFP_OFFLOAD_REDIRECT, 1, dp_->generation()));
  uint64_t redirects = counter(Layer::Outbound, XFP_CNT_OFFLOAD_REDIRECT);
  EXPECT_EQ(run_xdp(f), XDP_REDIRECT);
  EXPECT_EQ(run_tc(f), static_cast<uint32_t>(TC_ACT_REDIRECT));
  EXPECT_EQ(counter(Layer::Outbound, XFP_CNT_OFFLOAD_REDIRECT) - redirects, 1u);
  auto e = dp_->read_offload(key_of(f), Layer::Inbound);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->verdict, XFP_OFFLOAD_REDIRECT);
  EXPECT_EQ(e->redirect_ifindex, 1u);
}

TEST_F(FlowOffloadTest, LayersAreSeparate) {
  install_default(Action::Block, Action::Block);
  auto f = ipv4_frame(kA, kB, kIpA, kIpB, udp(1, 2));
  XFP_ASSERT_OK(dp_->offload_flow(key_of(f), Layer::Inbound, XFP_OFFLOAD_PERMIT, 0, dp_->generation()));
  EXPECT_EQ(run_xdp(f), XDP_PASS);
  EXPECT_EQ(run_tc(f), TC_ACT_SHOT);  // no outbound entry: classified
}

TEST_F(FlowOffloadTest, CountersAndLastSeenRise) {
  auto f = ipv4_frame(kA, kB, kIpA, kIpB, tcp(5, 6));
  const uint64_t before = now_ns();
  XFP_ASSERT_OK(dp_->offload_flow(key_of(f), Layer::Inbound, XFP_OFFLOAD_PERMIT, 0, dp_->generation()));
  auto e0 = dp_->read_offload(key_of(f), Layer::Inbound);
  ASSERT_TRUE(e0.ok());
  EXPECT_EQ(e0->packets, 0u);
  EXPECT_GE(e0->last_seen_ns, before);  // the idle clock starts at the offload
  usleep(20000);  // a few ticks of the coarse clock
  EXPECT_EQ(run_xdp(f, 10), XDP_PASS);
  auto e1 = dp_->read_offload(key_of(f), Layer::Inbound);
  ASSERT_TRUE(e1.ok());
  EXPECT_EQ(e1->packets, 10u);
  EXPECT_EQ(e1->bytes, 10u * f.size());
  EXPECT_GT(e1->last_seen_ns, e0->last_seen_ns);
  EXPECT_LE(e1->last_seen_ns, now_ns());
  auto all = dp_->read_offloads();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].packets, 10u);
}

TEST_F(FlowOffloadTest, FinAndRstAreClassifiedAndFlagged) {
  install_default(Action::Block);
  auto data = ipv4_frame(kA, kB, kIpA, kIpB, tcp(40000, 80));
  auto fin = ipv4_frame(kB, kA, kIpB, kIpA, tcp(80, 40000, test::kTcpFin | test::kTcpAck));
  auto rst = ipv4_frame(kA, kB, kIpA, kIpB, tcp(40000, 80, test::kTcpRst));
  XFP_ASSERT_OK(dp_->offload_flow(key_of(data), Layer::Inbound, XFP_OFFLOAD_PERMIT, 0, dp_->generation()));
  const uint64_t ends = counter(Layer::Inbound, XFP_CNT_FLOW_FIN_RST);
  EXPECT_EQ(run_xdp(data), XDP_PASS);
  EXPECT_EQ(run_xdp(fin), XDP_DROP);  // the policy decides, not the entry
  auto e = dp_->read_offload(key_of(data), Layer::Inbound);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->flags, XFP_OFFLOAD_FIN_SEEN);
  EXPECT_EQ(e->packets, 1u);
  EXPECT_EQ(run_xdp(rst), XDP_DROP);
  e = dp_->read_offload(key_of(data), Layer::Inbound);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->flags, XFP_OFFLOAD_FIN_SEEN | XFP_OFFLOAD_RST_SEEN);
  EXPECT_EQ(counter(Layer::Inbound, XFP_CNT_FLOW_FIN_RST) - ends, 2u);
}

TEST_F(FlowOffloadTest, StaleGenerationIsIgnoredAndRevalidatedEntriesSurviveTheInstall) {
  install_default(Action::Block);
  auto kept = ipv4_frame(kA, kB, kIpA, kIpB, udp(1, 1));
  auto dropped = ipv4_frame(kA, kB, kIpA, kIpB, udp(2, 2));
  auto old = ipv4_frame(kA, kB, kIpA, kIpB, udp(3, 3));
  const uint64_t g = dp_->generation();
  XFP_ASSERT_OK(dp_->offload_flow(key_of(kept), Layer::Inbound, XFP_OFFLOAD_PERMIT, 0, g));
  XFP_ASSERT_OK(dp_->offload_flow(key_of(dropped), Layer::Inbound, XFP_OFFLOAD_PERMIT, 0, g));
  // Decided under an older set: never applies.
  XFP_ASSERT_OK(dp_->offload_flow(key_of(old), Layer::Inbound, XFP_OFFLOAD_PERMIT, 0, g - 1));
  const uint64_t stale = counter(Layer::Inbound, XFP_CNT_OFFLOAD_STALE);
  EXPECT_EQ(run_xdp(old), XDP_DROP);
  EXPECT_EQ(counter(Layer::Inbound, XFP_CNT_OFFLOAD_STALE) - stale, 1u);

  auto kept_key = key_of(kept);
  auto n = dp_->revalidate_offloads(g + 1, [&](const OffloadedFlow& e) {
    return std::memcmp(&e.key, &kept_key, sizeof kept_key) == 0;
  });
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 1u);
  // Before the flip both still apply (the kept one is valid for g and g+1).
  EXPECT_EQ(run_xdp(kept), XDP_PASS);
  EXPECT_EQ(run_xdp(dropped), XDP_PASS);
  install_default(Action::Block);
  ASSERT_EQ(dp_->generation(), g + 1);
  EXPECT_EQ(run_xdp(kept), XDP_PASS);
  EXPECT_EQ(run_xdp(dropped), XDP_DROP);
  auto e = dp_->read_offload(kept_key, Layer::Inbound);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->gen_first, static_cast<uint32_t>(g));
  EXPECT_EQ(e->gen_last, static_cast<uint32_t>(g + 1));
  EXPECT_TRUE(e->valid_for(g + 1));
  EXPECT_FALSE(dp_->read_offload(key_of(dropped), Layer::Inbound)->valid_for(g + 1));

  // A re-stamp for an install that then did not happen is undone by the next.
  ASSERT_TRUE(dp_->revalidate_offloads(g + 2, [](const OffloadedFlow&) { return true; }).ok());
  ASSERT_TRUE(dp_->revalidate_offloads(g + 2, [](const OffloadedFlow&) { return false; }).ok());
  install_default(Action::Block);
  EXPECT_EQ(run_xdp(kept), XDP_DROP);
}

TEST_F(FlowOffloadTest, DisabledLooksNothingUp) {
  install_default(Action::Block);
  auto f = ipv4_frame(kA, kB, kIpA, kIpB, udp(9, 9));
  XFP_ASSERT_OK(dp_->offload_flow(key_of(f), Layer::Inbound, XFP_OFFLOAD_PERMIT, 0, dp_->generation()));
  XFP_ASSERT_OK(dp_->set_offload_enabled(false));
  EXPECT_FALSE(dp_->offload_enabled(Layer::Inbound));
  LayerCounters before = dp_->layer_counters(Layer::Inbound);
  EXPECT_EQ(run_xdp(f), XDP_DROP);
  EXPECT_EQ(run_xdp(ipv4_frame(kA, kB, kIpA, kIpB, udp(8, 8))), XDP_DROP);
  LayerCounters after = dp_->layer_counters(Layer::Inbound);
  for (int c : {XFP_CNT_OFFLOAD_PERMIT, XFP_CNT_OFFLOAD_BLOCK, XFP_CNT_OFFLOAD_REDIRECT, XFP_CNT_OFFLOAD_MISS,
                XFP_CNT_OFFLOAD_STALE, XFP_CNT_FLOW_FIN_RST})
    EXPECT_EQ(after.c[c], before.c[c]) << "counter " << c;
  EXPECT_EQ(dp_->read_offload(key_of(f), Layer::Inbound)->packets, 0u);
  // On again: the entry applies.
  XFP_ASSERT_OK(dp_->set_offload_enabled(true));
  EXPECT_EQ(run_xdp(f), XDP_PASS);
}

TEST_F(FlowOffloadTest, MalformedFramesHaveNoFlowAndAreClassified) {
  install_default(Action::Block);
  auto good = ipv4_frame(kA, kB, kIpA, kIpB, tcp(1, 2));
  XFP_ASSERT_OK(dp_->offload_flow(key_of(good), Layer::Inbound, XFP_OFFLOAD_PERMIT, 0, dp_->generation()));
  // The same frame cut inside its TCP header: no flow, so the entry does not apply.
  std::vector<uint8_t> cut(good.begin(), good.begin() + 14 + 20 + 10);
  const uint64_t misses = counter(Layer::Inbound, XFP_CNT_OFFLOAD_MISS);
  EXPECT_EQ(run_xdp(cut), XDP_DROP);
  EXPECT_EQ(counter(Layer::Inbound, XFP_CNT_OFFLOAD_MISS) - misses, 1u);
}

TEST_F(FlowOffloadTest, ApiErrors) {
  xfp_flow_key k{};
  auto bad_verdict = dp_->offload_flow(k, Layer::Inbound, 9, 0, 0);
  ASSERT_FALSE(bad_verdict.ok());
  EXPECT_NE(bad_verdict.error().message.find("verdict 9"), std::string::npos) << bad_verdict.error().message;
  auto no_target = dp_->offload_flow(k, Layer::Inbound, XFP_OFFLOAD_REDIRECT, 0, 0);
  ASSERT_FALSE(no_target.ok());
  EXPECT_NE(no_target.error().message.find("ifindex"), std::string::npos);
  auto gone = dp_->remove_offload(k, Layer::Inbound);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ENOENT);
  EXPECT_EQ(dp_->read_offload(k, Layer::Outbound).error().code, ENOENT);
  EXPECT_EQ(dp_->offload_capacity(), 1024u);
}

TEST_F(FlowOffloadTest, TheLruMapEvictsWhenFullAndEvictedFlowsAreClassifiedAgain) {
  install_default(Action::Block);
  // More entries than the map holds: the oldest go, writes never fail.
  for (uint32_t i = 0; i < 2048; ++i) {
    xfp_flow_key k{};
    k.iface = 1000 + i;
    XFP_ASSERT_OK(dp_->offload_flow(k, Layer::Inbound, XFP_OFFLOAD_PERMIT, 0, dp_->generation()));
  }
  auto all = dp_->read_offloads();
  ASSERT_TRUE(all.ok());
  EXPECT_LE(all->size(), 1024u);
  EXPECT_GT(all->size(), 0u);
}

}  // namespace
}  // namespace xfp
