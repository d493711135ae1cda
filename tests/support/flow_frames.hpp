// Frames for the flow tests: IPv4 and IPv6 with a TCP, UDP or SCTP header
// (and IPv6 extension headers), and the flow key user space derives from a
// frame (include/xfp/flow_key.h, the function the kernel runs).
// Header-only on top of FrameBuilder. Checksums of the upper-layer headers
// are not computed: the tests classify frames, no stack receives them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "support/frame_builder.hpp"
#include "xfp/flow_key.h"

namespace xfp::test {

using Ipv6Addr = std::array<uint8_t, 16>;

// 2001:db8::/32 (documentation) addresses for tests: 2001:db8::<n>.
inline Ipv6Addr test_ipv6(uint8_t n) {
  Ipv6Addr a{0x20, 0x01, 0x0d, 0xb8};
  a[15] = n;
  return a;
}

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpAck = 0x10;

struct L4Options {
  uint8_t protocol = 6;  // TCP
  uint16_t src_port = 40000;
  uint16_t dst_port = 80;
  uint8_t tcp_flags = kTcpAck;
};

// The upper-layer header alone: TCP 20 bytes, UDP 8, SCTP 12, others none.
inline std::vector<uint8_t> l4_header(const L4Options& o) {
  std::vector<uint8_t> h;
  const size_t len = o.protocol == 6 ? 20 : o.protocol == 17 ? 8 : o.protocol == 132 ? 12 : 0;
  h.resize(len, 0);
  if (len == 0) return h;
  h[0] = static_cast<uint8_t>(o.src_port >> 8);
  h[1] = static_cast<uint8_t>(o.src_port);
  h[2] = static_cast<uint8_t>(o.dst_port >> 8);
  h[3] = static_cast<uint8_t>(o.dst_port);
  if (o.protocol == 6) {
    h[12] = 5 << 4;  // data offset: 20 bytes
    h[13] = o.tcp_flags;
    h[14] = 0xff;  // window
  } else if (o.protocol == 17) {
    h[5] = 8;  // length
  }
  return h;
}

// Ethernet (optionally one tag) | IPv4 | L4 header | payload.
inline std::vector<uint8_t> ipv4_frame(const Mac& src, const Mac& dst, const Ipv4Addr& saddr, const Ipv4Addr& daddr,
                                       const L4Options& l4 = {}, std::optional<uint16_t> vlan = std::nullopt,
                                       std::string_view payload = "flow") {
  FrameBuilder b;
  b.src(src).dst(dst);
  if (vlan) b.vlan(*vlan);
  Ipv4Options ip;
  ip.src = saddr;
  ip.dst = daddr;
  ip.protocol = l4.protocol;
  b.ipv4(ip).payload(l4_header(l4)).payload(payload);
  return b.build();
}

// Ethernet (optionally one tag) | IPv6 | `ext_headers` hop-by-hop/destination
// options headers (8 bytes each) | L4 header | payload.
inline std::vector<uint8_t> ipv6_frame(const Mac& src, const Mac& dst, const Ipv6Addr& saddr,
                                       const Ipv6Addr& daddr, const L4Options& l4 = {},
                                       std::optional<uint16_t> vlan = std::nullopt, int ext_headers = 0,
                                       std::string_view payload = "flow") {
  std::vector<uint8_t> l4h = l4_header(l4);
  std::vector<uint8_t> ip(40, 0);
  const size_t plen = static_cast<size_t>(ext_headers) * 8 + l4h.size() + payload.size();
  ip[0] = 0x60;
  ip[4] = static_cast<uint8_t>(plen >> 8);
  ip[5] = static_cast<uint8_t>(plen);
  ip[6] = ext_headers > 0 ? 0 /* hop-by-hop */ : l4.protocol;
  ip[7] = 64;
  std::copy(saddr.begin(), saddr.end(), ip.begin() + 8);
  std::copy(daddr.begin(), daddr.end(), ip.begin() + 24);
  for (int i = 0; i < ext_headers; ++i) {
    // Each one names the next: destination options, and the L4 last.
    const uint8_t next = i + 1 < ext_headers ? 60 : l4.protocol;
    const uint8_t ext[8] = {next, 0, 1, 4, 0, 0, 0, 0};  // PadN option fills it
    ip.insert(ip.end(), ext, ext + 8);
  }
  ip.insert(ip.end(), l4h.begin(), l4h.end());
  FrameBuilder b;
  b.src(src).dst(dst);
  if (vlan) b.vlan(*vlan);
  b.ethertype(ethertype::kIpv6).payload(ip).payload(payload);
  return b.build();
}

// The flow key of a frame as user space derives it; nullopt: no flow.
inline std::optional<xfp_flow_key> flow_key_of(const std::vector<uint8_t>& frame, uint32_t iface,
                                               xfp_flow_info* info = nullptr) {
  xfp_flow_key k{};
  xfp_flow_info i{};
  const uint8_t* data = frame_start(frame);
  if (!xfp_flow_key_from_frame(data, data + frame.size(), iface, &k, &i)) return std::nullopt;
  if (info) *info = i;
  return k;
}

}  // namespace xfp::test
