// FrameBuilder: Ethernet frames for tests, benches and xfp-sendframes.
//
// Builds exactly the bytes a test asks for, including frames a real stack
// would never send (runts, truncated tags, three-deep tag stacks, IPv4
// fragments), so the classifier's parser can be exercised on them. Frames are
// returned without the FCS, as XDP, TC and AF_PACKET see them.
//
// This file is compiled into two libraries (xfp_test_support and the tools'
// xfp_frame_builder); it must depend on nothing but the standard library and
// the header-only xfp/result.hpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "xfp/result.hpp"

namespace xfp::test {

// A MAC address in wire order.
using Mac = std::array<uint8_t, 6>;

// "02:00:5e:10:00:01" (also accepts '-' separators, any hex case).
Result<Mac> parse_mac(std::string_view text);
// Lower-case, colon-separated.
std::string format_mac(const Mac& mac);

inline constexpr Mac kBroadcastMac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
// Locally administered (bit 1 of the first octet) and unicast (bit 0 clear):
// the only source addresses the tests may put on a wire.
inline bool is_locally_administered_unicast(const Mac& mac) { return (mac[0] & 0x03) == 0x02; }

// Where a frame's bytes start, for the parsers written for BPF and C++
// (frame_parse.h, flow_key.h): a real buffer even for an empty frame, as
// their callers have (a UMEM chunk, a packet). An empty vector's data() is
// null, and `data + 14 > end` on null is undefined (clang's UBSan reports it).
inline const uint8_t* frame_start(const std::vector<uint8_t>& frame) {
  static const uint8_t kNone[1] = {0};
  return frame.empty() ? kNone : frame.data();
}

// An IPv4 address in wire order.
using Ipv4Addr = std::array<uint8_t, 4>;
Result<Ipv4Addr> parse_ipv4(std::string_view text);
std::string format_ipv4(const Ipv4Addr& addr);
// 198.18.0.0/15 (RFC 2544 benchmarking): the only range the tests use.
inline bool is_test_range_ipv4(const Ipv4Addr& addr) { return addr[0] == 198 && (addr[1] & 0xfe) == 18; }

// EtherTypes and TPIDs the tests use by name.
namespace ethertype {
inline constexpr uint16_t kIpv4 = 0x0800;
inline constexpr uint16_t kArp = 0x0806;
inline constexpr uint16_t kVlan = 0x8100;  // 802.1Q C-tag TPID
inline constexpr uint16_t kIpv6 = 0x86dd;
inline constexpr uint16_t kQinQ = 0x88a8;  // 802.1ad S-tag TPID
inline constexpr uint16_t kLocalExperimental1 = 0x88b5;  // IEEE 802 "local experimental"
inline constexpr uint16_t kLldp = 0x88cc;
}  // namespace ethertype

// "ipv4", "arp", "ipv6", "lldp", "vlan", "qinq", or a number ("0x88b5", "34997").
Result<uint16_t> parse_ethertype(std::string_view text);

struct VlanTag {
  uint16_t tpid = ethertype::kVlan;
  uint16_t vid = 0;  // 12 bits; higher bits are masked off
  uint8_t pcp = 0;   // 3 bits
  bool dei = false;
};

struct Ipv4Options {
  Ipv4Addr src{198, 18, 0, 1};
  Ipv4Addr dst{198, 18, 0, 2};
  uint8_t protocol = 17;  // UDP
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t id = 0;
  bool dont_fragment = false;
  bool more_fragments = false;
  uint16_t fragment_offset = 0;  // in 8-byte units, 13 bits
};

struct UdpOptions {
  uint16_t src_port = 49152;
  uint16_t dst_port = 9;  // discard
};

// Test marker: a magic, this process's id and a sequence number, written
// into a payload so that a receiver can tell the test's own frames from
// anything else on the link (and which frame it is).
inline constexpr size_t kMarkerSize = 12;
std::array<uint8_t, kMarkerSize> make_marker(uint32_t sequence);
// The sequence number of this process's marker if the frame carries one.
std::optional<uint32_t> find_marker(std::span<const uint8_t> frame);
inline bool has_marker(std::span<const uint8_t> frame) { return find_marker(frame).has_value(); }

// Fluent builder; every setter returns *this. Layout of build():
//   dst | src | tags (outer first) | ethertype | [IPv4 | [UDP]] | payload | zero padding
// then truncated to truncate_to() bytes if set.
class FrameBuilder {
 public:
  FrameBuilder& dst(const Mac& mac);
  FrameBuilder& src(const Mac& mac);
  // Appends one tag; call twice for QinQ (outer first).
  FrameBuilder& vlan(uint16_t vid, uint8_t pcp = 0, uint16_t tpid = ethertype::kVlan, bool dei = false);
  FrameBuilder& tag(const VlanTag& tag);
  // 802.1ad S-tag outer + 802.1Q C-tag inner.
  FrameBuilder& qinq(uint16_t outer_vid, uint16_t inner_vid);
  // The EtherType (or 802.3 length) after the tags. When unset it is 0x0800
  // with ipv4(), 0x88b5 otherwise.
  FrameBuilder& ethertype(uint16_t type);
  // Adds an IPv4 header (checksum computed) with total length covering what follows.
  FrameBuilder& ipv4(const Ipv4Options& options = {});
  // Adds a UDP header after the IPv4 header (checksum computed); needs ipv4().
  FrameBuilder& udp(const UdpOptions& options = {});
  FrameBuilder& payload(std::span<const uint8_t> bytes);  // appends
  FrameBuilder& payload(std::string_view text);           // appends
  FrameBuilder& marker(uint32_t sequence);                 // appends make_marker()
  // Zero padding up to this many bytes (default 60, the minimum without FCS); 0 = none.
  FrameBuilder& pad_to(size_t min_length);
  // Cuts the finished frame to n bytes (after padding): runts and truncated headers.
  FrameBuilder& truncate_to(size_t n);

  std::vector<uint8_t> build() const;

 private:
  Mac dst_ = kBroadcastMac;
  Mac src_{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
  std::vector<VlanTag> tags_;
  std::optional<uint16_t> ethertype_;
  std::optional<Ipv4Options> ipv4_;
  std::optional<UdpOptions> udp_;
  std::vector<uint8_t> payload_;
  size_t pad_to_ = 60;
  std::optional<size_t> truncate_to_;
};

// RFC 1071 Internet checksum over bytes (odd length padded with zero), folded
// and complemented; `initial` carries a pseudo-header sum.
uint16_t internet_checksum(std::span<const uint8_t> bytes, uint32_t initial = 0);

}  // namespace xfp::test
