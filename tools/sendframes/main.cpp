// xfp-sendframes: send crafted Ethernet frames from one interface.
//
// Meant to run inside a test namespace (ip netns exec NS xfp-sendframes ...)
// to make traffic for the demo and for manual checks of the classifier. So
// that a slip cannot put frames on a real network it sends only from a veth,
// and (unless --allow-host-netns) refuses a namespace that looks like the
// host's: the same as PID 1's, or holding a hardware-backed interface.
//
// Frames go through the interface's qdisc (no PACKET_QDISC_BYPASS): the TC
// egress program, xfp's outbound layer, sees every one of them.

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "support/frame_builder.hpp"

namespace {

using xfp::test::FrameBuilder;
using xfp::test::Mac;

std::atomic<bool> g_stop{false};

extern "C" void request_stop(int) { g_stop.store(true); }

int fail(const std::string& message, int code = 1) {
  std::fprintf(stderr, "xfp-sendframes: %s\n", message.c_str());
  return code;
}

// Inode of a namespace file, 0 when it cannot be read.
ino_t netns_inode(const char* path) {
  struct stat st {};
  return ::stat(path, &st) == 0 ? st.st_ino : 0;
}

// ETHTOOL_GDRVINFO: driver name and bus ("" for virtual devices). Devices
// without ethtool support (lo) come back as nullopt.
std::optional<ethtool_drvinfo> driver_info(int sock, const char* ifname) {
  ethtool_drvinfo info{};
  info.cmd = ETHTOOL_GDRVINFO;
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  ifr.ifr_data = reinterpret_cast<char*>(&info);
  if (::ioctl(sock, SIOCETHTOOL, &ifr) != 0) return std::nullopt;
  return info;
}

// Why this namespace looks like the host's, or "" when it looks like a test namespace.
std::string host_netns_reason(int sock) {
  const ino_t self = netns_inode("/proc/self/ns/net");
  const ino_t init = netns_inode("/proc/1/ns/net");  // unreadable in some sandboxes
  if (self != 0 && self == init) return "this is PID 1's network namespace";
  struct if_nameindex* names = ::if_nameindex();
  if (!names) return std::string("cannot list interfaces: ") + std::strerror(errno);
  std::string reason;
  for (const struct if_nameindex* n = names; n->if_index != 0 && reason.empty(); ++n) {
    auto info = driver_info(sock, n->if_name);
    // A bus address means real hardware (PCI, virtio, USB): a test namespace has none.
    if (info && info->bus_info[0] != '\0')
      reason = std::string("interface ") + n->if_name + " is hardware (" + info->driver + " at " + info->bus_info + ")";
  }
  ::if_freenameindex(names);
  return reason;
}

timespec add_ns(timespec t, int64_t ns) {
  t.tv_sec += ns / 1'000'000'000;
  t.tv_nsec += ns % 1'000'000'000;
  if (t.tv_nsec >= 1'000'000'000) {
    t.tv_sec += 1;
    t.tv_nsec -= 1'000'000'000;
  }
  return t;
}

double seconds_between(const timespec& a, const timespec& b) {
  return static_cast<double>(b.tv_sec - a.tv_sec) + static_cast<double>(b.tv_nsec - a.tv_nsec) / 1e9;
}

struct Settings {
  std::string dev;
  std::string dst = "ff:ff:ff:ff:ff:ff";
  std::string src;  // default: the interface's own address
  std::vector<uint16_t> vlans;
  unsigned pcp = 0;
  std::string ethertype = "0x88b5";
  std::string src_ip = "198.18.0.1";
  std::string dst_ip = "198.18.0.2";
  uint64_t count = 1;
  double rate = 0;
  size_t size = 60;
  double duration = 0;
  bool no_marker = false;
  bool allow_host_netns = false;
  bool json = false;
};

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  CLI::App app{
      "Send crafted Ethernet frames from one interface (run it inside a test namespace with ip netns exec).\n"
      "Each frame carries a marker (\"XFPT\", this process's id, a sequence number) after the headers."};
  app.add_option("--dev", s.dev, "Interface to send from (a veth)")->required();
  app.add_option("--dst", s.dst, "Destination MAC")->capture_default_str();
  app.add_option("--src", s.src, "Source MAC (default: the interface's address)");
  app.add_option("--vlan", s.vlans,
                 "VLAN ID, repeatable, outer first; with two tags the outer one is an 802.1ad S-tag (0x88a8)")
      ->check(CLI::Range(0, 4095));
  app.add_option("--pcp", s.pcp, "Priority code point for every tag")->check(CLI::Range(0, 7));
  app.add_option("--ethertype", s.ethertype, "EtherType: number or ipv4, arp, ipv6, lldp (ipv4 adds IPv4+UDP headers)")
      ->capture_default_str();
  app.add_option("--src-ip", s.src_ip, "IPv4 source with --ethertype ipv4 (inside 198.18.0.0/15)")
      ->capture_default_str();
  app.add_option("--dst-ip", s.dst_ip, "IPv4 destination with --ethertype ipv4 (inside 198.18.0.0/15)")
      ->capture_default_str();
  auto* count_opt = app.add_option("--count", s.count, "Frames to send (0 = no limit; needs --duration)");
  app.add_option("--rate", s.rate, "Frames per second (0 = as fast as possible)")->check(CLI::NonNegativeNumber);
  app.add_option("--size", s.size, "Frame length in bytes without FCS; shorter than the headers truncates them")
      ->check(CLI::Range(static_cast<size_t>(ETH_HLEN), static_cast<size_t>(65535)))
      ->capture_default_str();
  auto* duration_opt =
      app.add_option("--duration", s.duration, "Stop after this many seconds")->check(CLI::NonNegativeNumber);
  app.add_flag("--no-marker", s.no_marker, "Do not put the marker into the payload");
  app.add_flag("--allow-host-netns", s.allow_host_netns,
               "Send even from a namespace that looks like the host's (the device must still be a veth)");
  app.add_flag("--json", s.json, "Print the result as one JSON object");
  CLI11_PARSE(app, argc, argv);

  // --duration without --count means "for that long".
  if (duration_opt->count() > 0 && count_opt->count() == 0) s.count = 0;
  if (s.count == 0 && s.duration <= 0) return fail("--count 0 (no limit) needs --duration", 2);
  if (s.vlans.size() > 8) return fail("at most 8 --vlan tags", 2);

  auto dst = xfp::test::parse_mac(s.dst);
  if (!dst) return fail("--dst: " + dst.error().message, 2);
  auto ethertype = xfp::test::parse_ethertype(s.ethertype);
  if (!ethertype) return fail("--ethertype: " + ethertype.error().message, 2);
  std::optional<Mac> src;
  if (!s.src.empty()) {
    auto parsed = xfp::test::parse_mac(s.src);
    if (!parsed) return fail("--src: " + parsed.error().message, 2);
    src = *parsed;
  }
  const bool with_ipv4 = *ethertype == xfp::test::ethertype::kIpv4;
  xfp::test::Ipv4Options ip;
  if (with_ipv4) {
    auto a = xfp::test::parse_ipv4(s.src_ip);
    auto b = xfp::test::parse_ipv4(s.dst_ip);
    if (!a) return fail("--src-ip: " + a.error().message, 2);
    if (!b) return fail("--dst-ip: " + b.error().message, 2);
    if (!xfp::test::is_test_range_ipv4(*a) || !xfp::test::is_test_range_ipv4(*b))
      return fail("IPv4 addresses must be inside 198.18.0.0/15", 2);
    ip.src = *a;
    ip.dst = *b;
  }

  const int ifindex = static_cast<int>(::if_nametoindex(s.dev.c_str()));
  const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) return fail(std::string("cannot open a raw socket (needs CAP_NET_RAW): ") + std::strerror(errno));
  if (!s.allow_host_netns) {
    const std::string reason = host_netns_reason(fd);
    if (!reason.empty())
      return fail("refusing to send: " + reason + "; run it inside a test namespace (ip netns exec NS " +
                  std::string(argv[0]) + " ...) or pass --allow-host-netns");
  }
  if (ifindex == 0) return fail("unknown interface '" + s.dev + "' in this network namespace");
  {
    auto info = driver_info(fd, s.dev.c_str());
    if (!info || std::strcmp(info->driver, "veth") != 0)
      return fail("interface '" + s.dev + "' is not a veth (driver " + (info ? info->driver : "unknown") +
                  "); xfp-sendframes only sends between test veth pairs");
  }
  if (!src) {
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", s.dev.c_str());
    if (::ioctl(fd, SIOCGIFHWADDR, &ifr) != 0)
      return fail("cannot read the address of " + s.dev + ": " + std::strerror(errno));
    Mac m{};
    std::memcpy(m.data(), ifr.ifr_hwaddr.sa_data, m.size());
    src = m;
  }
  // Bound with protocol 0: this socket only sends, it must not queue copies
  // of every frame on the link.
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = 0;
  addr.sll_ifindex = ifindex;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return fail("cannot bind to " + s.dev + ": " + std::strerror(errno));

  // One template; per frame only the marker's sequence number changes.
  FrameBuilder builder;
  builder.dst(*dst).src(*src).ethertype(*ethertype).pad_to(s.size).truncate_to(s.size);
  for (size_t i = 0; i < s.vlans.size(); ++i) {
    const bool outer_of_several = s.vlans.size() > 1 && i == 0;
    builder.vlan(s.vlans[i], static_cast<uint8_t>(s.pcp),
                 outer_of_several ? xfp::test::ethertype::kQinQ : xfp::test::ethertype::kVlan);
  }
  size_t header_len = ETH_HLEN + 4 * s.vlans.size();
  if (with_ipv4) {
    builder.ipv4(ip).udp();
    header_len += 28;
  }
  // The payload fills the frame to --size, so IPv4/UDP lengths match it.
  const size_t payload_len = s.size > header_len ? s.size - header_len : 0;
  std::vector<uint8_t> payload(payload_len, 0);
  const bool marked = !s.no_marker && payload_len >= xfp::test::kMarkerSize;
  if (marked) {
    const auto m = xfp::test::make_marker(0);
    std::copy(m.begin(), m.end(), payload.begin());
  }
  builder.payload(std::span<const uint8_t>(payload));
  std::vector<uint8_t> frame = builder.build();
  const size_t seq_at = header_len + 8;  // marker: magic(4) pid(4) sequence(4)
  // UDP checksum covers the sequence number: keep it right by adjusting it
  // incrementally (RFC 1624) instead of rebuilding every frame.
  const size_t udp_csum_at = ETH_HLEN + 4 * s.vlans.size() + 20 + 6;
  const bool fix_udp_csum = marked && with_ipv4 && frame.size() >= seq_at + 4;

  struct sigaction sa {};
  sa.sa_handler = request_stop;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  timespec start{};
  ::clock_gettime(CLOCK_MONOTONIC, &start);
  const int64_t duration_ns = s.duration > 0 ? static_cast<int64_t>(std::llround(s.duration * 1e9)) : 0;
  const timespec end_at = add_ns(start, duration_ns);
  const double gap_ns = s.rate > 0 ? 1e9 / s.rate : 0;

  uint64_t sent = 0, dropped = 0, bytes = 0;
  uint32_t prev_seq = 0;
  for (uint64_t i = 0; (s.count == 0 || i < s.count) && !g_stop.load(std::memory_order_relaxed); ++i) {
    timespec now{};
    if (duration_ns > 0 || gap_ns > 0) ::clock_gettime(CLOCK_MONOTONIC, &now);
    if (duration_ns > 0 && seconds_between(end_at, now) >= 0) break;
    if (gap_ns > 0) {
      // Absolute schedule: a late frame does not push the rest back.
      const timespec due = add_ns(start, static_cast<int64_t>(gap_ns * static_cast<double>(i)));
      if (seconds_between(now, due) > 0) {
        if (duration_ns > 0 && seconds_between(end_at, due) >= 0) break;
        while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, nullptr) == EINTR) {
          if (g_stop.load()) break;
        }
        if (g_stop.load()) break;
      }
    }
    if (marked && frame.size() >= seq_at + 4) {
      const auto seq = static_cast<uint32_t>(i);
      if (fix_udp_csum) {
        // HC' = ~(~HC + ~m + m') over the two 16-bit words of the sequence.
        uint32_t sum = static_cast<uint16_t>(~(frame[udp_csum_at] << 8 | frame[udp_csum_at + 1]));
        sum += static_cast<uint16_t>(~(prev_seq >> 16)) + static_cast<uint16_t>(~prev_seq);
        sum += (seq >> 16) + (seq & 0xffff);
        while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
        uint16_t csum = static_cast<uint16_t>(~sum);
        if (csum == 0) csum = 0xffff;
        frame[udp_csum_at] = static_cast<uint8_t>(csum >> 8);
        frame[udp_csum_at + 1] = static_cast<uint8_t>(csum);
      }
      for (int b = 0; b < 4; ++b) frame[seq_at + b] = static_cast<uint8_t>(seq >> (24 - 8 * b));
      prev_seq = seq;
    }
    const ssize_t n = ::send(fd, frame.data(), frame.size(), 0);
    if (n < 0) {
      if (errno == EINTR) {
        --i;  // retry this frame
        continue;
      }
      if (errno == ENOBUFS || errno == EAGAIN) {
        ++dropped;  // queue full: counted, not fatal
        continue;
      }
      const int err = errno;
      std::fprintf(stderr, "xfp-sendframes: send on %s failed after %llu frames: %s%s\n", s.dev.c_str(),
                   static_cast<unsigned long long>(sent), std::strerror(err),
                   err == ENETDOWN ? " (is the interface up?)" : "");
      ::close(fd);
      return 1;
    }
    ++sent;
    bytes += static_cast<uint64_t>(n);
  }
  timespec stop{};
  ::clock_gettime(CLOCK_MONOTONIC, &stop);
  ::close(fd);

  const double secs = seconds_between(start, stop);
  const double pps = secs > 0 ? static_cast<double>(sent) / secs : 0;
  if (s.json) {
    std::printf("{\"dev\":\"%s\",\"sent\":%llu,\"dropped\":%llu,\"bytes\":%llu,\"frame_len\":%zu,"
                "\"seconds\":%.6f,\"pps\":%.0f}\n",
                s.dev.c_str(), static_cast<unsigned long long>(sent), static_cast<unsigned long long>(dropped),
                static_cast<unsigned long long>(bytes), frame.size(), secs, pps);
  } else {
    std::printf("sent %llu frames (%zu bytes each) on %s in %.3f s (%.0f pps)", static_cast<unsigned long long>(sent),
                frame.size(), s.dev.c_str(), secs, pps);
    if (dropped) std::printf(", %llu refused by the queue (ENOBUFS)", static_cast<unsigned long long>(dropped));
    std::printf("\n");
  }
  return 0;
}
