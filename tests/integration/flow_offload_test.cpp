// Flow-verdict offload on a real attachment: namespaces "peer" and "xfp"
// joined by a veth, xfp attached to the xfp end. A flow's verdict written
// through Datapath::offload_flow decides that flow's frames on the wire
// (what arrives at the xfp end's raw socket, or at a redirect target), and
// the entry's per-flow counters count exactly the frames it decided.
#include <net/if.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/assert_ok.hpp"
#include "support/flow_frames.hpp"
#include "support/frame_builder.hpp"
#include "support/netns.hpp"
#include "support/packet_io.hpp"
#include "support/peer_pair.hpp"
#include "support/privileges.hpp"
#include "xfp/compiler.hpp"
#include "xfp/datapath.hpp"
#include "xfp/filter_set.hpp"

namespace xfp {
namespace {

using namespace std::chrono_literals;
using test::Frame;
using test::FrameBuilder;
using test::Mac;
using test::NetNs;
using test::PacketSocket;
using test::ScopedNetnsEnter;
using test::VethOptions;
using test::VethPair;

constexpr Mac kPeerMac{0x02, 0x00, 0x00, 0x00, 0xfc, 0x01};
constexpr Mac kXfpMac{0x02, 0x00, 0x00, 0x00, 0xfd, 0x01};
constexpr Mac kTapMac{0x02, 0x00, 0x00, 0x00, 0xfe, 0x01};   // redirect target (xfp side)
constexpr Mac kProxyMac{0x02, 0x00, 0x00, 0x00, 0xfe, 0x02}; // its far end
constexpr test::Ipv4Addr kPeerIp{198, 18, 7, 1};
constexpr test::Ipv4Addr kXfpIp{198, 18, 7, 2};

// A marked UDP frame of flow `port` from the peer to the xfp side.
Frame flow_frame(uint16_t port, uint32_t seq) {
  test::Ipv4Options ip;
  ip.src = kPeerIp;
  ip.dst = kXfpIp;
  test::UdpOptions udp;
  udp.src_port = port;
  udp.dst_port = 9;
  return FrameBuilder().src(kPeerMac).dst(kXfpMac).ipv4(ip).udp(udp).marker(seq).build();
}

// How many frames of each flow (UDP source port) arrived.
std::map<uint16_t, int> arrivals(PacketSocket& sock, size_t expected) {
  std::map<uint16_t, int> by_port;
  std::vector<Frame> got;
  if (expected > 0) {
    auto r = sock.receive(500ms, test::has_marker, expected);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (r) got = std::move(*r);
  }
  auto more = sock.receive(150ms, test::has_marker);  // nothing else may follow
  EXPECT_TRUE(more.ok()) << more.error().message;
  if (more) got.insert(got.end(), more->begin(), more->end());
  for (const Frame& f : got)
    if (f.size() >= 14 + 20 + 2) by_port[static_cast<uint16_t>(f[34] << 8 | f[35])]++;
  return by_port;
}

class FlowOffloadWireTest : public ::testing::Test, protected test::PeerPair {
 protected:
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    XFP_ASSERT_OK(create_peer_pair(kPeerMac, kXfpMac));
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    XFP_ASSERT_OK(inside);
    auto dp = Datapath::open();
    XFP_ASSERT_OK(dp);
    dp_ = std::move(dp).value();
  }

  void TearDown() override {
    // Detaching resolves names in the calling thread's namespace.
    if (dp_ && xfp_ns_) {
      auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
      if (inside) dp_.reset();
      else (void)dp_.release();  // the namespace takes the links with it
    }
  }

  Status attach(const AttachOptions& o = {}) {
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    if (!inside) return std::move(inside).error();
    return dp_->attach(pair_->b().name, o);
  }

  void install_default(Action inbound) {
    FilterSet set;
    set.set_default(Layer::Inbound, inbound);
    auto compiled = compile(set);
    ASSERT_TRUE(compiled.ok()) << compiled.error().message;
    XFP_ASSERT_OK(dp_->install(*compiled));
  }

  // The key xfp's kernel computes for the flow: the attachment's key is the
  // interface part.
  xfp_flow_key key_of(uint16_t port) {
    const auto atts = dp_->attachments();
    EXPECT_EQ(atts.size(), 1u);
    auto k = test::flow_key_of(flow_frame(port, 0), atts.empty() ? 0 : atts[0].key);
    EXPECT_TRUE(k.has_value());
    return k.value_or(xfp_flow_key{});
  }

  // Sends `n` frames of each flow in `ports`, interleaved.
  void send(const std::vector<uint16_t>& ports, int n) {
    for (int i = 0; i < n; ++i)
      for (uint16_t p : ports) XFP_EXPECT_OK(peer_sock_->send_frame(flow_frame(p, seq_++)));
  }

  std::unique_ptr<Datapath> dp_;
  uint32_t seq_ = 0;
};

TEST_F(FlowOffloadWireTest, OffloadedVerdictsDecideTheirFlowOnTheWireAndCountIt) {
  XFP_ASSERT_OK(attach());
  install_default(Action::Block);
  constexpr uint16_t kFlowX = 40001, kFlowY = 40002;
  send({kFlowX, kFlowY}, 3);
  EXPECT_TRUE(arrivals(*xfp_sock_, 0).empty()) << "the policy blocks everything";

  // Permit X in the kernel: X arrives, Y stays blocked.
  XFP_ASSERT_OK(dp_->offload_flow(key_of(kFlowX), Layer::Inbound, XFP_OFFLOAD_PERMIT, 0, dp_->generation()));
  send({kFlowX, kFlowY}, 5);
  auto got = arrivals(*xfp_sock_, 5);
  EXPECT_EQ(got[kFlowX], 5);
  EXPECT_EQ(got[kFlowY], 0);
  auto e = dp_->read_offload(key_of(kFlowX), Layer::Inbound);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->packets, 5u);
  EXPECT_EQ(e->bytes, 5u * flow_frame(kFlowX, 0).size());
  EXPECT_EQ(dp_->layer_counters(Layer::Inbound).c[XFP_CNT_OFFLOAD_PERMIT], 5u);

  // Under a permitting policy, block X in the kernel (a new generation: the
  // old entry is stale now, the new one is written for it).
  install_default(Action::Permit);
  XFP_ASSERT_OK(dp_->offload_flow(key_of(kFlowX), Layer::Inbound, XFP_OFFLOAD_BLOCK, 0, dp_->generation()));
  send({kFlowX, kFlowY}, 4);
  got = arrivals(*xfp_sock_, 4);
  EXPECT_EQ(got[kFlowX], 0);
  EXPECT_EQ(got[kFlowY], 4);
  e = dp_->read_offload(key_of(kFlowX), Layer::Inbound);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->packets, 4u);
  EXPECT_EQ(dp_->layer_counters(Layer::Inbound).c[XFP_CNT_OFFLOAD_BLOCK], 4u);

  // Taken back: X is classified again (the policy permits).
  XFP_ASSERT_OK(dp_->remove_offload(key_of(kFlowX), Layer::Inbound));
  send({kFlowX}, 2);
  EXPECT_EQ(arrivals(*xfp_sock_, 2)[kFlowX], 2);
}

// A redirect entry sends the flow's frames out of another interface (a veth
// towards a "proxy" namespace) instead of up the xfp end. Generic XDP: a
// native-mode redirect into a veth needs XDP on the target's peer too.
TEST_F(FlowOffloadWireTest, RedirectEntrySendsTheFlowToAnotherInterface) {
  auto proxy = NetNs::create();
  XFP_ASSERT_OK(proxy);
  NetNs proxy_ns = std::move(proxy).value();
  VethOptions opt;
  opt.mac_a = kTapMac;
  opt.mac_b = kProxyMac;
  auto tap = VethPair::create(*xfp_ns_, proxy_ns, opt);
  XFP_ASSERT_OK(tap);
  auto proxy_sock = PacketSocket::open(proxy_ns, tap->b().name);
  XFP_ASSERT_OK(proxy_sock);

  AttachOptions ao;
  ao.mode = XdpMode::Generic;
  ao.outbound = false;
  XFP_ASSERT_OK(attach(ao));
  install_default(Action::Permit);
  constexpr uint16_t kFlowX = 40011, kFlowY = 40012;
  XFP_ASSERT_OK(dp_->offload_flow(key_of(kFlowX), Layer::Inbound, XFP_OFFLOAD_REDIRECT,
                                  static_cast<uint32_t>(tap->a().ifindex), dp_->generation()));
  send({kFlowX, kFlowY}, 3);
  auto at_proxy = arrivals(*proxy_sock, 3);
  auto at_xfp = arrivals(*xfp_sock_, 3);
  EXPECT_EQ(at_proxy[kFlowX], 3);
  EXPECT_EQ(at_proxy[kFlowY], 0);
  EXPECT_EQ(at_xfp[kFlowX], 0);
  EXPECT_EQ(at_xfp[kFlowY], 3);
  auto e = dp_->read_offload(key_of(kFlowX), Layer::Inbound);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->packets, 3u);
  EXPECT_EQ(dp_->layer_counters(Layer::Inbound).c[XFP_CNT_OFFLOAD_REDIRECT], 3u);
}

}  // namespace
}  // namespace xfp
