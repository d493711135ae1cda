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

// `frame` with an 802.1Q tag of `tci` inserted after the MACs.
std::vector<uint8_t> with_outer_tag(std::vector<uint8_t> frame, uint16_t tci) {
  const uint8_t tag[4] = {0x81, 0x00, static_cast<uint8_t>(tci >> 8), static_cast<uint8_t>(tci)};
  frame.insert(frame.begin() + 12, tag, tag + 4);
  return frame;
}

// Parses `bytes` whose outer tag `tci` the kernel holds beside them
// (skb->vlan_tci at TC egress), as the outbound program does.
xfp_fields parse_with_tag_beside(const std::vector<uint8_t>& bytes, uint16_t tci, uint8_t layer) {
  xfp_fields f{};
  const uint8_t* data = test::frame_start(bytes);
  xfp_parse_frame(data, data + bytes.size(), static_cast<uint32_t>(bytes.size()) + 4, layer, &f);
  xfp_fields_add_outer_tag(&f, tci);
  return f;
}

TEST(FrameParse, ATagBesideTheBytesGivesTheFieldsOfTheSameTagInThem) {
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    uint16_t tci;
  };
  const Case cases[] = {
      {"untagged inside", FrameBuilder().dst(kDst).src(kSrc).ethertype(0x88b5).build(), 100},
      {"one tag inside: QinQ on the wire", FrameBuilder().dst(kDst).src(kSrc).vlan(7).ethertype(0x0806).build(), 300},
      {"priority and DEI bits are not the VID", FrameBuilder().dst(kDst).src(kSrc).ipv4().udp().build(), 0xb000 | 42},
      {"a runt", {0x02, 0, 0, 0, 0, 0x10, 0x02}, 5},
  };
  for (const Case& c : cases) {
    for (uint8_t layer : {uint8_t{XFP_LAYER_INBOUND}, uint8_t{XFP_LAYER_OUTBOUND}}) {
      SCOPED_TRACE(std::string(c.what) + (layer == XFP_LAYER_INBOUND ? ", inbound" : ", outbound"));
      const xfp_fields got = parse_with_tag_beside(c.bytes, c.tci, layer);
      if (c.bytes.size() < 14) {
        // Nothing parsed from the bytes; the tag is still the frame's.
        EXPECT_EQ(got.vlan, c.tci & 0x0fff);
        EXPECT_EQ(got.l2_flags, XFP_L2_NATIVE_ETHERNET | XFP_L2_MALFORMED | XFP_L2_VLAN_TAGGED);
        EXPECT_EQ(got.frame_len, c.bytes.size() + 4);
        continue;
      }
      const xfp_fields want = parse(with_outer_tag(c.bytes, c.tci), layer);
      EXPECT_EQ(got.vlan, want.vlan);
      EXPECT_EQ(got.inner_vlan, want.inner_vlan);
      EXPECT_EQ(got.ethertype, want.ethertype);
      EXPECT_EQ(got.l2_flags, want.l2_flags);
      EXPECT_EQ(got.frame_len, want.frame_len);
      EXPECT_EQ(mac_of(got.local_mac), mac_of(want.local_mac));
      EXPECT_EQ(mac_of(got.remote_mac), mac_of(want.remote_mac));
      EXPECT_EQ(got.local_addr_type, want.local_addr_type);
      EXPECT_EQ(got.layer, want.layer);
    }
  }
  // Two tags inside and one beside: three on the wire, the outer two kept.
  const xfp_fields deep = parse_with_tag_beside(FrameBuilder().dst(kDst).src(kSrc).qinq(1, 2).build(), 3,
                                                XFP_LAYER_OUTBOUND);
  EXPECT_EQ(deep.vlan, 3);
  EXPECT_EQ(deep.inner_vlan, 1);
  EXPECT_EQ(deep.l2_flags,
            XFP_L2_NATIVE_ETHERNET | XFP_L2_VLAN_TAGGED | XFP_L2_QINQ | XFP_L2_TAG_STACK_DEEP);
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
