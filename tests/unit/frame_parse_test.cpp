// The layer-2 parser compiled for user space: the same source the BPF
// programs inline, checked field by field on built frames.
#include <gtest/gtest.h>

#include <cstring>

#include "support/frame_builder.hpp"
#include "xfp/frame_parse.h"

namespace xfp {
namespace {

using test::FrameBuilder;
using test::Mac;

constexpr Mac kDst{0x02, 0x00, 0x00, 0x00, 0x00, 0x10};
constexpr Mac kSrc{0x02, 0x5e, 0x10, 0x00, 0x00, 0x01};

xfp_fields parse(const std::vector<uint8_t>& frame, uint8_t layer = XFP_LAYER_INBOUND) {
  xfp_fields f{};
  const uint8_t* data = test::frame_start(frame);
  xfp_parse_frame(data, data + frame.size(), static_cast<uint32_t>(frame.size()), layer, &f);
  return f;
}

Mac mac_of(const uint8_t* p) {
  Mac m;
  std::memcpy(m.data(), p, 6);
  return m;
}

TEST(FrameParse, UntaggedFrameInboundAndOutbound) {
  auto frame = FrameBuilder().dst(kDst).src(kSrc).ethertype(0x88b5).build();
  xfp_fields in = parse(frame);
  EXPECT_EQ(mac_of(in.local_mac), kDst);
  EXPECT_EQ(mac_of(in.remote_mac), kSrc);
  EXPECT_EQ(in.ethertype, 0x88b5);
  EXPECT_EQ(in.vlan, 0);
  EXPECT_EQ(in.frame_len, 60);
  EXPECT_EQ(in.l2_flags, XFP_L2_NATIVE_ETHERNET);
  EXPECT_EQ(in.local_addr_type, XFP_ADDR_UNICAST);
  EXPECT_EQ(in.layer, XFP_LAYER_INBOUND);
  xfp_fields out = parse(frame, XFP_LAYER_OUTBOUND);
  EXPECT_EQ(mac_of(out.local_mac), kSrc);
  EXPECT_EQ(mac_of(out.remote_mac), kDst);
}

TEST(FrameParse, AddressTypes) {
  EXPECT_EQ(parse(FrameBuilder().dst(test::kBroadcastMac).src(kSrc).build()).local_addr_type, XFP_ADDR_BROADCAST);
  EXPECT_EQ(parse(FrameBuilder().dst(Mac{0x33, 0x33, 0, 0, 0, 1}).src(kSrc).build()).local_addr_type,
            XFP_ADDR_MULTICAST);
  EXPECT_EQ(parse(FrameBuilder().dst(kDst).src(kSrc).build()).remote_addr_type, XFP_ADDR_UNICAST);
}

TEST(FrameParse, SingleTagAnd8021adQinQ) {
  xfp_fields one = parse(FrameBuilder().dst(kDst).src(kSrc).vlan(100, 5).ethertype(0x0806).build());
  EXPECT_EQ(one.vlan, 100);
  EXPECT_EQ(one.inner_vlan, 0);
  EXPECT_EQ(one.ethertype, 0x0806);
  EXPECT_EQ(one.l2_flags, XFP_L2_NATIVE_ETHERNET | XFP_L2_VLAN_TAGGED);

  xfp_fields two = parse(FrameBuilder().dst(kDst).src(kSrc).qinq(300, 7).ethertype(0x86dd).build());
  EXPECT_EQ(two.vlan, 300);
  EXPECT_EQ(two.inner_vlan, 7);
  EXPECT_EQ(two.ethertype, 0x86dd);
  EXPECT_EQ(two.l2_flags, XFP_L2_NATIVE_ETHERNET | XFP_L2_VLAN_TAGGED | XFP_L2_QINQ);
}

TEST(FrameParse, ThirdTagIsFlaggedAndLeftAsTheEtherType) {
  xfp_fields f = parse(FrameBuilder().dst(kDst).src(kSrc).qinq(1, 2).vlan(3).build());
  EXPECT_TRUE(f.l2_flags & XFP_L2_TAG_STACK_DEEP);
  EXPECT_EQ(f.ethertype, 0x8100);
  EXPECT_FALSE(f.l2_flags & XFP_L2_MALFORMED);
}

TEST(FrameParse, LlcLengthField) {
  xfp_fields f = parse(FrameBuilder().dst(kDst).src(kSrc).ethertype(46).build());
  EXPECT_TRUE(f.l2_flags & XFP_L2_LLC);
  EXPECT_EQ(f.ethertype, 46);
}

TEST(FrameParse, Ipv4Fragments) {
  EXPECT_TRUE(parse(FrameBuilder().ipv4({.more_fragments = true}).build()).l2_flags & XFP_L2_IP_FRAGMENT);
  EXPECT_TRUE(parse(FrameBuilder().ipv4({.fragment_offset = 3}).build()).l2_flags & XFP_L2_IP_FRAGMENT);
  EXPECT_FALSE(parse(FrameBuilder().ipv4({.dont_fragment = true}).build()).l2_flags & XFP_L2_IP_FRAGMENT);
}

TEST(FrameParse, FrameLengthSaturates) {
  xfp_fields f{};
  std::vector<uint8_t> frame = FrameBuilder().build();
  xfp_parse_frame(frame.data(), frame.data() + frame.size(), 100000, XFP_LAYER_INBOUND, &f);
  EXPECT_EQ(f.frame_len, 0xffff);
}

// Every truncation of a QinQ IPv4 frame: never reads past the end (ASan
// would see it), flags malformed exactly when a header is cut.
TEST(FrameParse, EveryTruncationIsSafeAndFlaggedWhenAHeaderIsCut) {
  auto full = FrameBuilder().dst(kDst).src(kSrc).qinq(5, 6).ipv4().udp().pad_to(0).build();
  const size_t headers_end = 14 + 4 + 4 + 20;
  for (size_t n = 0; n <= full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(n));
    xfp_fields f = parse(cut);
    EXPECT_EQ(f.frame_len, n);
    EXPECT_EQ(bool(f.l2_flags & XFP_L2_MALFORMED), n < headers_end) << "length " << n;
    if (n >= 18) {
      EXPECT_EQ(f.vlan, 5) << "length " << n;
    }
  }
}

TEST(FrameParse, RuntHasOnlyTheMalformedAndEthernetFlags) {
  std::vector<uint8_t> runt(13, 0xff);
  xfp_fields f = parse(runt);
  EXPECT_EQ(f.l2_flags, XFP_L2_NATIVE_ETHERNET | XFP_L2_MALFORMED);
  EXPECT_EQ(f.ethertype, 0);
  EXPECT_EQ(f.local_addr_type, XFP_ADDR_UNICAST);
}

}  // namespace
}  // namespace xfp
