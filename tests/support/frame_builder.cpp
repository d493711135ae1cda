#include "support/frame_builder.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace xfp::test {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void put_u16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v & 0xff));
}

void set_u16(std::vector<uint8_t>& out, size_t at, uint16_t v) {
  out[at] = static_cast<uint8_t>(v >> 8);
  out[at + 1] = static_cast<uint8_t>(v & 0xff);
}

constexpr std::array<uint8_t, 4> kMarkerMagic{'X', 'F', 'P', 'T'};

}  // namespace

Result<Mac> parse_mac(std::string_view text) {
  // Exactly six two-digit groups, one separator kind: "2:0:..." is refused
  // because a typo there would silently name a different address.
  Mac mac{};
  if (text.size() != 17) return make_error(EINVAL, "bad MAC address '" + std::string(text) + "': expected xx:xx:xx:xx:xx:xx");
  const char sep = text[2];
  if (sep != ':' && sep != '-') return make_error(EINVAL, "bad MAC address '" + std::string(text) + "': expected ':' separators");
  for (size_t i = 0; i < 6; ++i) {
    const size_t at = i * 3;
    const int hi = hex_digit(text[at]);
    const int lo = hex_digit(text[at + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && text[at + 2] != sep))
      return make_error(EINVAL, "bad MAC address '" + std::string(text) + "': expected xx:xx:xx:xx:xx:xx");
    mac[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return mac;
}

std::string format_mac(const Mac& mac) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  return buf;
}

Result<Ipv4Addr> parse_ipv4(std::string_view text) {
  Ipv4Addr addr{};
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (size_t i = 0; i < 4; ++i) {
    unsigned value = 0;
    auto [next, ec] = std::from_chars(p, end, value);
    if (ec != std::errc{} || next == p || value > 255 || next - p > 3)
      return make_error(EINVAL, "bad IPv4 address '" + std::string(text) + "'");
    addr[i] = static_cast<uint8_t>(value);
    p = next;
    if (i < 3) {
      if (p == end || *p != '.') return make_error(EINVAL, "bad IPv4 address '" + std::string(text) + "'");
      ++p;
    }
  }
  if (p != end) return make_error(EINVAL, "bad IPv4 address '" + std::string(text) + "'");
  return addr;
}

std::string format_ipv4(const Ipv4Addr& addr) {
  return std::to_string(addr[0]) + "." + std::to_string(addr[1]) + "." + std::to_string(addr[2]) + "." +
         std::to_string(addr[3]);
}

Result<uint16_t> parse_ethertype(std::string_view text) {
  struct Named {
    std::string_view name;
    uint16_t value;
  };
  static constexpr Named kNames[] = {
      {"ipv4", ethertype::kIpv4}, {"ip", ethertype::kIpv4}, {"arp", ethertype::kArp},
      {"ipv6", ethertype::kIpv6}, {"lldp", ethertype::kLldp}, {"vlan", ethertype::kVlan},
      {"qinq", ethertype::kQinQ}, {"experimental", ethertype::kLocalExperimental1},
  };
  for (const auto& n : kNames)
    if (n.name == text) return n.value;
  int base = 10;
  std::string_view digits = text;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits.remove_prefix(2);
  }
  unsigned value = 0;
  auto [next, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (digits.empty() || ec != std::errc{} || next != digits.data() + digits.size() || value > 0xffff)
    return make_error(EINVAL, "bad EtherType '" + std::string(text) +
                                  "': expected a number up to 0xffff or one of ipv4, arp, ipv6, lldp, vlan, qinq");
  return static_cast<uint16_t>(value);
}

std::array<uint8_t, kMarkerSize> make_marker(uint32_t sequence) {
  std::array<uint8_t, kMarkerSize> m{};
  std::copy(kMarkerMagic.begin(), kMarkerMagic.end(), m.begin());
  const auto pid = static_cast<uint32_t>(::getpid());
  for (int i = 0; i < 4; ++i) {
    m[4 + i] = static_cast<uint8_t>(pid >> (24 - 8 * i));
    m[8 + i] = static_cast<uint8_t>(sequence >> (24 - 8 * i));
  }
  return m;
}

std::optional<uint32_t> find_marker(std::span<const uint8_t> frame) {
  const auto pid = static_cast<uint32_t>(::getpid());
  auto it = frame.begin();
  while (true) {
    it = std::search(it, frame.end(), kMarkerMagic.begin(), kMarkerMagic.end());
    if (it == frame.end() || frame.end() - it < static_cast<ptrdiff_t>(kMarkerSize)) return std::nullopt;
    uint32_t got_pid = 0, seq = 0;
    for (int i = 0; i < 4; ++i) {
      got_pid = got_pid << 8 | it[4 + i];
      seq = seq << 8 | it[8 + i];
    }
    if (got_pid == pid) return seq;
    ++it;
  }
}

uint16_t internet_checksum(std::span<const uint8_t> bytes, uint32_t initial) {
  uint64_t sum = initial;
  size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) sum += static_cast<uint32_t>(bytes[i]) << 8 | bytes[i + 1];
  if (i < bytes.size()) sum += static_cast<uint32_t>(bytes[i]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

FrameBuilder& FrameBuilder::dst(const Mac& mac) {
  dst_ = mac;
  return *this;
}

FrameBuilder& FrameBuilder::src(const Mac& mac) {
  src_ = mac;
  return *this;
}

FrameBuilder& FrameBuilder::vlan(uint16_t vid, uint8_t pcp, uint16_t tpid, bool dei) {
  return tag(VlanTag{tpid, vid, pcp, dei});
}

FrameBuilder& FrameBuilder::tag(const VlanTag& t) {
  tags_.push_back(t);
  return *this;
}

FrameBuilder& FrameBuilder::qinq(uint16_t outer_vid, uint16_t inner_vid) {
  vlan(outer_vid, 0, ethertype::kQinQ);
  return vlan(inner_vid, 0, ethertype::kVlan);
}

FrameBuilder& FrameBuilder::ethertype(uint16_t type) {
  ethertype_ = type;
  return *this;
}

FrameBuilder& FrameBuilder::ipv4(const Ipv4Options& options) {
  ipv4_ = options;
  return *this;
}

FrameBuilder& FrameBuilder::udp(const UdpOptions& options) {
  udp_ = options;
  return *this;
}

FrameBuilder& FrameBuilder::payload(std::span<const uint8_t> bytes) {
  payload_.insert(payload_.end(), bytes.begin(), bytes.end());
  return *this;
}

FrameBuilder& FrameBuilder::payload(std::string_view text) {
  payload_.insert(payload_.end(), text.begin(), text.end());
  return *this;
}

FrameBuilder& FrameBuilder::marker(uint32_t sequence) {
  const auto m = make_marker(sequence);
  return payload(std::span<const uint8_t>(m));
}

FrameBuilder& FrameBuilder::pad_to(size_t min_length) {
  pad_to_ = min_length;
  return *this;
}

FrameBuilder& FrameBuilder::truncate_to(size_t n) {
  truncate_to_ = n;
  return *this;
}

std::vector<uint8_t> FrameBuilder::build() const {
  std::vector<uint8_t> f;
  f.reserve(14 + 4 * tags_.size() + 28 + payload_.size() + pad_to_);
  f.insert(f.end(), dst_.begin(), dst_.end());
  f.insert(f.end(), src_.begin(), src_.end());
  for (const auto& t : tags_) {
    put_u16(f, t.tpid);
    put_u16(f, static_cast<uint16_t>((t.pcp & 0x7) << 13 | (t.dei ? 1 : 0) << 12 | (t.vid & 0x0fff)));
  }
  put_u16(f, ethertype_.value_or(ipv4_ ? ethertype::kIpv4 : ethertype::kLocalExperimental1));

  if (ipv4_) {
    const Ipv4Options& ip = *ipv4_;
    const size_t ip_at = f.size();
    const size_t udp_len = udp_ ? 8 + payload_.size() : 0;
    const size_t total = 20 + (udp_ ? udp_len : payload_.size());
    f.push_back(0x45);  // version 4, IHL 5
    f.push_back(ip.tos);
    put_u16(f, static_cast<uint16_t>(std::min<size_t>(total, 0xffff)));
    put_u16(f, ip.id);
    put_u16(f, static_cast<uint16_t>((ip.dont_fragment ? 0x4000 : 0) | (ip.more_fragments ? 0x2000 : 0) |
                                     (ip.fragment_offset & 0x1fff)));
    f.push_back(ip.ttl);
    f.push_back(ip.protocol);
    put_u16(f, 0);  // checksum, filled below
    f.insert(f.end(), ip.src.begin(), ip.src.end());
    f.insert(f.end(), ip.dst.begin(), ip.dst.end());
    set_u16(f, ip_at + 10, internet_checksum(std::span<const uint8_t>(f).subspan(ip_at, 20)));

    if (udp_) {
      const size_t udp_at = f.size();
      put_u16(f, udp_->src_port);
      put_u16(f, udp_->dst_port);
      put_u16(f, static_cast<uint16_t>(std::min<size_t>(udp_len, 0xffff)));
      put_u16(f, 0);
      f.insert(f.end(), payload_.begin(), payload_.end());
      // Pseudo-header: src, dst, zero+protocol, UDP length.
      uint32_t pseudo = 0;
      pseudo += static_cast<uint32_t>(ip.src[0]) << 8 | ip.src[1];
      pseudo += static_cast<uint32_t>(ip.src[2]) << 8 | ip.src[3];
      pseudo += static_cast<uint32_t>(ip.dst[0]) << 8 | ip.dst[1];
      pseudo += static_cast<uint32_t>(ip.dst[2]) << 8 | ip.dst[3];
      pseudo += ip.protocol;
      pseudo += static_cast<uint32_t>(udp_len & 0xffff);
      uint16_t sum = internet_checksum(std::span<const uint8_t>(f).subspan(udp_at), pseudo);
      if (sum == 0) sum = 0xffff;  // 0 means "no checksum" in UDP over IPv4
      set_u16(f, udp_at + 6, sum);
    } else {
      f.insert(f.end(), payload_.begin(), payload_.end());
    }
  } else {
    f.insert(f.end(), payload_.begin(), payload_.end());
  }

  if (f.size() < pad_to_) f.resize(pad_to_, 0);
  if (truncate_to_ && *truncate_to_ < f.size()) f.resize(*truncate_to_);
  return f;
}

}  // namespace xfp::test
