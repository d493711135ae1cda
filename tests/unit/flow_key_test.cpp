// The flow key and handle compiled for user space: the source the BPF
// programs inline (include/xfp/flow_key.h). Direction independence, what
// each protocol contributes, malformed frames, and that no cut of a frame
// is read past its end. tests/bpf/flow_offload_test.cpp checks that the
// kernel derives the same keys from the same bytes.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "support/flow_frames.hpp"
#include "support/frame_builder.hpp"
#include "xfp/flow_key.h"

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
constexpr uint32_t kIface = 7;

bool same(const xfp_flow_key& x, const xfp_flow_key& y) { return std::memcmp(&x, &y, sizeof x) == 0; }

L4Options tcp(uint16_t sport, uint16_t dport, uint8_t flags = test::kTcpAck) {
  return L4Options{.protocol = 6, .src_port = sport, .dst_port = dport, .tcp_flags = flags};
}
L4Options udp(uint16_t sport, uint16_t dport) { return L4Options{.protocol = 17, .src_port = sport, .dst_port = dport}; }

// Both directions of a conversation: the same key, the same handle.
void expect_direction_independent(const std::vector<uint8_t>& ab, const std::vector<uint8_t>& ba) {
  auto k1 = flow_key_of(ab, kIface);
  auto k2 = flow_key_of(ba, kIface);
  ASSERT_TRUE(k1 && k2);
  EXPECT_TRUE(same(*k1, *k2));
  EXPECT_EQ(xfp_flow_handle(&*k1), xfp_flow_handle(&*k2));
  EXPECT_NE(xfp_flow_handle(&*k1), 0u);
}

TEST(FlowKey, Ipv4TcpFieldsAndBothDirections) {
  auto ab = ipv4_frame(kA, kB, kIpA, kIpB, tcp(40000, 80));
  auto ba = ipv4_frame(kB, kA, kIpB, kIpA, tcp(80, 40000));
  auto k = flow_key_of(ab, kIface);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->iface, kIface);
  EXPECT_EQ(k->ethertype, 0x0800);
  EXPECT_EQ(k->ip_version, 4);
  EXPECT_EQ(k->protocol, 6);
  EXPECT_EQ(k->vlan, 0);
  // 198.18.0.1 < 198.18.0.2: endpoint a is A, with its port and MAC.
  EXPECT_EQ(std::memcmp(k->addr_a, kIpA.data(), 4), 0);
  EXPECT_EQ(std::memcmp(k->addr_b, kIpB.data(), 4), 0);
  EXPECT_EQ(k->port_a, 40000);
  EXPECT_EQ(k->port_b, 80);
  EXPECT_EQ(std::memcmp(k->mac_a, kA.data(), 6), 0);
  EXPECT_EQ(std::memcmp(k->mac_b, kB.data(), 6), 0);
  for (uint8_t b : k->pad) EXPECT_EQ(b, 0);
  expect_direction_independent(ab, ba);
}

TEST(FlowKey, Ipv4UdpSctpAndTaggedBothDirections) {
  expect_direction_independent(ipv4_frame(kA, kB, kIpA, kIpB, udp(5000, 53)),
                               ipv4_frame(kB, kA, kIpB, kIpA, udp(53, 5000)));
  L4Options sctp{.protocol = 132, .src_port = 3868, .dst_port = 3869};
  L4Options sctp_back{.protocol = 132, .src_port = 3869, .dst_port = 3868};
  expect_direction_independent(ipv4_frame(kA, kB, kIpA, kIpB, sctp), ipv4_frame(kB, kA, kIpB, kIpA, sctp_back));
  auto tagged = ipv4_frame(kA, kB, kIpA, kIpB, udp(5000, 53), 42);
  expect_direction_independent(tagged, ipv4_frame(kB, kA, kIpB, kIpA, udp(53, 5000), 42));
  EXPECT_EQ(flow_key_of(tagged, kIface)->vlan, 42);
  EXPECT_EQ(flow_key_of(tagged, kIface)->ethertype, 0x0800);
}

TEST(FlowKey, Ipv6TcpUdpWithAndWithoutExtensionHeaders) {
  const auto a = test::test_ipv6(1), b = test::test_ipv6(2);
  expect_direction_independent(ipv6_frame(kA, kB, a, b, tcp(40000, 443)), ipv6_frame(kB, kA, b, a, tcp(443, 40000)));
  expect_direction_independent(ipv6_frame(kA, kB, a, b, udp(1, 2)), ipv6_frame(kB, kA, b, a, udp(2, 1)));
  auto k = flow_key_of(ipv6_frame(kA, kB, a, b, tcp(40000, 443)), kIface);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->ip_version, 6);
  EXPECT_EQ(k->ethertype, 0x86dd);
  EXPECT_EQ(k->protocol, 6);
  EXPECT_EQ(std::memcmp(k->addr_a, a.data(), 16), 0);
  EXPECT_EQ(k->port_a, 40000);
  // Two extension headers are walked: same ports, same key as without.
  auto k2 = flow_key_of(ipv6_frame(kA, kB, a, b, tcp(40000, 443), std::nullopt, 2), kIface);
  ASSERT_TRUE(k2);
  EXPECT_TRUE(same(*k, *k2));
  // A third is beyond the walk: the flow is (addresses, next header), no ports.
  auto k3 = flow_key_of(ipv6_frame(kA, kB, a, b, tcp(40000, 443), std::nullopt, 3), kIface);
  ASSERT_TRUE(k3);
  EXPECT_EQ(k3->protocol, 60);
  EXPECT_EQ(k3->port_a, 0);
  EXPECT_EQ(k3->port_b, 0);
}

TEST(FlowKey, NonIpFramesAreKeyedByTheMacPairInEitherDirection) {
  auto ab = FrameBuilder().src(kA).dst(kB).ethertype(0x88b5).build();
  auto ba = FrameBuilder().src(kB).dst(kA).ethertype(0x88b5).build();
  expect_direction_independent(ab, ba);
  auto k = flow_key_of(ab, kIface);
  EXPECT_EQ(k->ip_version, 0);
  EXPECT_EQ(k->ethertype, 0x88b5);
  EXPECT_EQ(std::memcmp(k->mac_a, kA.data(), 6), 0);  // the lower MAC first
  // An 802.3 length: EtherType 0, whatever the length.
  auto llc1 = flow_key_of(FrameBuilder().src(kA).dst(kB).ethertype(46).build(), kIface);
  auto llc2 = flow_key_of(FrameBuilder().src(kB).dst(kA).ethertype(100).build(), kIface);
  ASSERT_TRUE(llc1 && llc2);
  EXPECT_EQ(llc1->ethertype, 0);
  EXPECT_TRUE(same(*llc1, *llc2));
}

TEST(FlowKey, EveryKeyPartSeparatesFlows) {
  std::set<uint64_t> handles;
  std::vector<std::vector<uint8_t>> frames = {
      ipv4_frame(kA, kB, kIpA, kIpB, tcp(40000, 80)),
      ipv4_frame(kA, kB, kIpA, kIpB, tcp(40001, 80)),                  // port
      ipv4_frame(kA, kB, kIpA, kIpB, udp(40000, 80)),                  // protocol
      ipv4_frame(kA, kB, kIpA, test::Ipv4Addr{198, 18, 0, 3}, tcp(40000, 80)),  // address
      ipv4_frame(kA, Mac{0x02, 0, 0, 0, 0, 0x0c}, kIpA, kIpB, tcp(40000, 80)),  // MAC
      ipv4_frame(kA, kB, kIpA, kIpB, tcp(40000, 80), 5),               // VLAN
      FrameBuilder().src(kA).dst(kB).ethertype(0x88b5).build(),        // EtherType
      FrameBuilder().src(kA).dst(kB).ethertype(0x88b6).build(),
  };
  for (const auto& f : frames) {
    auto k = flow_key_of(f, kIface);
    ASSERT_TRUE(k);
    handles.insert(xfp_flow_handle(&*k));
  }
  auto other_iface = flow_key_of(frames[0], kIface + 1);
  handles.insert(xfp_flow_handle(&*other_iface));  // interface
  EXPECT_EQ(handles.size(), frames.size() + 1);
}

TEST(FlowKey, FragmentsHaveNoPortsAndTcpFlagsAreReported) {
  test::Ipv4Options frag;
  frag.src = kIpA;
  frag.dst = kIpB;
  frag.protocol = 6;
  frag.fragment_offset = 10;
  auto f = FrameBuilder().src(kA).dst(kB).ipv4(frag).payload(std::string(40, 'x')).build();
  auto k = flow_key_of(f, kIface);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->protocol, 6);
  EXPECT_EQ(k->port_a, 0);
  EXPECT_EQ(k->port_b, 0);

  xfp_flow_info info{};
  ASSERT_TRUE(flow_key_of(ipv4_frame(kA, kB, kIpA, kIpB, tcp(1, 2, test::kTcpFin | test::kTcpAck)), kIface, &info));
  EXPECT_EQ(info.tcp_flags, test::kTcpFin | test::kTcpAck);
  ASSERT_TRUE(flow_key_of(ipv4_frame(kA, kB, kIpA, kIpB, udp(1, 2)), kIface, &info));
  EXPECT_EQ(info.tcp_flags, 0);
}

TEST(FlowKey, MalformedFramesHaveNoFlow) {
  auto tcp4 = ipv4_frame(kA, kB, kIpA, kIpB, tcp(1, 2));
  std::vector<std::vector<uint8_t>> bad = {
      FrameBuilder().src(kA).dst(kB).pad_to(0).truncate_to(13).build(),        // runt
      FrameBuilder().src(kA).dst(kB).vlan(5).truncate_to(16).build(),          // cut tag
      FrameBuilder().src(kA).dst(kB).qinq(5, 6).truncate_to(20).build(),       // cut inner tag
      std::vector<uint8_t>(tcp4.begin(), tcp4.begin() + 30),                   // cut IPv4 header
      std::vector<uint8_t>(tcp4.begin(), tcp4.begin() + 14 + 20 + 10),         // cut TCP header
      FrameBuilder().src(kA).dst(kB).ethertype(0x0800).payload(std::string(20, '\x60')).build(),  // version 6 in IPv4
      FrameBuilder().src(kA).dst(kB).ethertype(0x86dd).payload(std::string(39, '\x60')).pad_to(0).build(),  // short IPv6
      FrameBuilder().src(kA).dst(kB).ethertype(0x86dd).payload(std::string(40, '\x40')).build(),  // version 4 in IPv6
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_FALSE(flow_key_of(bad[i], kIface)) << "case " << i;
  }
}

// Every cut of every kind of frame: a key or none, never a read past the end
// (the ASan build checks the reads: each cut is copied into a buffer of its
// own size).
TEST(FlowKey, EveryTruncationIsSafeAndAgreesWithTheWholeFrameWhereItMust) {
  const auto a6 = test::test_ipv6(1), b6 = test::test_ipv6(2);
  std::vector<std::vector<uint8_t>> frames = {
      ipv4_frame(kA, kB, kIpA, kIpB, tcp(1, 2), 9),
      ipv6_frame(kA, kB, a6, b6, udp(1, 2), 9, 2),
      FrameBuilder().src(kA).dst(kB).qinq(1, 2).ethertype(0x88b5).build(),
  };
  for (const auto& f : frames) {
    for (size_t n = 0; n <= f.size(); ++n) {
      std::vector<uint8_t> cut(f.begin(), f.begin() + static_cast<long>(n));
      auto k = flow_key_of(cut, kIface);
      if (k) {
        EXPECT_NE(xfp_flow_handle(&*k), 0u);
      }
    }
  }
}

TEST(FlowKey, HandleIsNeverZeroAndSpreads) {
  std::set<uint64_t> seen;
  xfp_flow_key k{};
  for (uint32_t i = 0; i < 20000; ++i) {
    k.iface = i;
    k.port_a = static_cast<uint16_t>(i * 7);
    uint64_t h = xfp_flow_handle(&k);
    EXPECT_NE(h, 0u);
    seen.insert(h);
  }
  EXPECT_EQ(seen.size(), 20000u);
}

}  // namespace
}  // namespace xfp
