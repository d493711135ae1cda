// Tests of the shared test support (tests/support): the namespaces, veth
// pairs, raw sockets, BPF_PROG_TEST_RUN wrapper and frame builder that the
// integration, BPF and CLI tests stand on. If these are wrong, every test
// built on them proves nothing.

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/frame_builder.hpp"
#include "support/netns.hpp"
#include "support/packet_io.hpp"
#include "support/privileges.hpp"

namespace xfp::test {
namespace {

using namespace std::chrono_literals;

#define ASSERT_OK(expr)                                                \
  do {                                                                 \
    const auto& xfp_assert_r_ = (expr);                                \
    ASSERT_TRUE(xfp_assert_r_.ok()) << xfp_assert_r_.error().message;  \
  } while (0)
#define EXPECT_OK(expr)                                                \
  do {                                                                 \
    const auto& xfp_expect_r_ = (expr);                                \
    EXPECT_TRUE(xfp_expect_r_.ok()) << xfp_expect_r_.error().message;  \
  } while (0)

std::vector<uint8_t> bytes(std::initializer_list<int> list) {
  std::vector<uint8_t> v;
  for (int b : list) v.push_back(static_cast<uint8_t>(b));
  return v;
}

bool link_exists(const std::string& netns, const std::string& ifname) {
  auto r = run_command({"ip", "-n", netns, "link", "show", ifname});
  return r && r->succeeded();
}

bool netns_listed(const std::string& name) {
  auto r = netns_exists(name);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() && *r;
}

constexpr Mac kMacA{0x02, 0x00, 0x00, 0x00, 0x0a, 0x01};
constexpr Mac kMacB{0x02, 0x00, 0x00, 0x00, 0x0b, 0x01};

// ===========================================================================
// FrameBuilder: byte-exact. Pure user space, so no privileges needed.

TEST(FrameBuilder, UntaggedIsPaddedToSixtyBytes) {
  const auto f = FrameBuilder().dst(kMacB).src(kMacA).ethertype(0x88b5).payload("hi").build();
  ASSERT_EQ(f.size(), 60u);
  const auto head = bytes({0x02, 0, 0, 0, 0x0b, 0x01, 0x02, 0, 0, 0, 0x0a, 0x01, 0x88, 0xb5, 'h', 'i'});
  EXPECT_EQ(std::vector<uint8_t>(f.begin(), f.begin() + 16), head);
  for (size_t i = 16; i < f.size(); ++i) EXPECT_EQ(f[i], 0) << "padding byte " << i;
}

TEST(FrameBuilder, SingleTagCarriesPcpDeiAndVid) {
  const auto f = FrameBuilder().dst(kMacB).src(kMacA).vlan(0x123, 5, ethertype::kVlan, true).ethertype(0x0806)
                     .pad_to(0).build();
  EXPECT_EQ(f, bytes({0x02, 0, 0, 0, 0x0b, 0x01, 0x02, 0, 0, 0, 0x0a, 0x01,
                      0x81, 0x00, 0xb1, 0x23,  // TPID, PCP 5 | DEI | VID 0x123
                      0x08, 0x06}));
}

TEST(FrameBuilder, QinQPutsTheSTagOutside) {
  const auto f = FrameBuilder().dst(kMacB).src(kMacA).qinq(100, 200).ethertype(0x86dd).pad_to(0).build();
  EXPECT_EQ(f, bytes({0x02, 0, 0, 0, 0x0b, 0x01, 0x02, 0, 0, 0, 0x0a, 0x01,
                      0x88, 0xa8, 0x00, 0x64,   // S-tag VID 100
                      0x81, 0x00, 0x00, 0xc8,   // C-tag VID 200
                      0x86, 0xdd}));
}

TEST(FrameBuilder, VidAndPcpAreMaskedToTheirFieldWidths) {
  const auto f = FrameBuilder().vlan(0xffff, 0xff).pad_to(0).build();
  EXPECT_EQ(f[14], 0xef);  // PCP 7, DEI 0, VID high nibble f
  EXPECT_EQ(f[15], 0xff);
}

TEST(FrameBuilder, Ipv4UdpHeadersAndChecksums) {
  Ipv4Options ip;
  ip.src = {198, 18, 0, 1};
  ip.dst = {198, 18, 0, 2};
  ip.id = 0x1234;
  ip.dont_fragment = true;
  UdpOptions udp;
  udp.src_port = 1000;
  udp.dst_port = 2000;
  const auto f = FrameBuilder().dst(kMacB).src(kMacA).ipv4(ip).udp(udp).payload("abcd").pad_to(0).build();
  ASSERT_EQ(f.size(), 14u + 20 + 8 + 4);
  EXPECT_EQ(f[12], 0x08);
  EXPECT_EQ(f[13], 0x00);  // EtherType defaults to IPv4
  const std::vector<uint8_t> ip_hdr(f.begin() + 14, f.begin() + 34);
  EXPECT_EQ(ip_hdr[0], 0x45);
  EXPECT_EQ(ip_hdr[2] << 8 | ip_hdr[3], 32);       // total length
  EXPECT_EQ(ip_hdr[4] << 8 | ip_hdr[5], 0x1234);   // id
  EXPECT_EQ(ip_hdr[6] << 8 | ip_hdr[7], 0x4000);   // DF, offset 0
  EXPECT_EQ(ip_hdr[8], 64);
  EXPECT_EQ(ip_hdr[9], 17);
  EXPECT_EQ(internet_checksum(ip_hdr), 0) << "header checksum must verify";
  // By hand: 4500+0020+1234+4000+4011+c612+0001+c612+0002 = 2638c, folded 638e, complement 9c71.
  EXPECT_EQ(ip_hdr[10] << 8 | ip_hdr[11], 0x9c71);
  EXPECT_EQ(f[34] << 8 | f[35], 1000);
  EXPECT_EQ(f[36] << 8 | f[37], 2000);
  EXPECT_EQ(f[38] << 8 | f[39], 12);  // UDP length
  // UDP checksum verifies over pseudo-header + segment.
  const uint32_t pseudo = (198 << 8 | 18) + (0 << 8 | 1) + (198 << 8 | 18) + (0 << 8 | 2) + 17 + 12;
  EXPECT_EQ(internet_checksum(std::span<const uint8_t>(f).subspan(34), pseudo), 0);
  EXPECT_EQ(std::string(f.begin() + 42, f.end()), "abcd");
}

TEST(FrameBuilder, Ipv4FragmentFlagsAndOffset) {
  Ipv4Options ip;
  ip.more_fragments = true;
  ip.fragment_offset = 185;  // 1480 bytes
  const auto f = FrameBuilder().vlan(7).ipv4(ip).payload("x").build();
  // After one tag: EtherType at 16, IPv4 at 18; flags+offset at 18+6.
  EXPECT_EQ(f[16] << 8 | f[17], 0x0800);
  EXPECT_EQ(f[24] << 8 | f[25], 0x2000 | 185);
  EXPECT_EQ(f[18 + 2] << 8 | f[18 + 3], 21);  // no UDP header in a fragment built without udp()
  EXPECT_EQ(internet_checksum(std::span<const uint8_t>(f).subspan(18, 20)), 0);
}

TEST(FrameBuilder, TruncateMakesRuntsAndCutTags) {
  const auto runt = FrameBuilder().dst(kMacB).src(kMacA).truncate_to(10).build();
  EXPECT_EQ(runt, bytes({0x02, 0, 0, 0, 0x0b, 0x01, 0x02, 0, 0, 0}));
  const auto cut_tag = FrameBuilder().dst(kMacB).src(kMacA).vlan(5).truncate_to(15).build();
  ASSERT_EQ(cut_tag.size(), 15u);
  EXPECT_EQ(cut_tag[12], 0x81);
  EXPECT_EQ(cut_tag[14], 0x00);
  const auto long_min = FrameBuilder().pad_to(128).build();
  EXPECT_EQ(long_min.size(), 128u);
}

TEST(FrameBuilder, MarkerIsFoundOnlyForThisProcess) {
  const auto f = FrameBuilder().payload("zz").marker(0xdeadbeef).build();
  auto seq = find_marker(f);
  ASSERT_TRUE(seq.has_value());
  EXPECT_EQ(*seq, 0xdeadbeefu);
  auto foreign = make_marker(1);
  foreign[4] ^= 0xff;  // another process id
  EXPECT_FALSE(find_marker(foreign).has_value());
  EXPECT_FALSE(has_marker(FrameBuilder().build()));
}

TEST(FrameBuilder, MacIpv4AndEtherTypeParsing) {
  auto mac = parse_mac("02:AB:cd:00:10:ff");
  ASSERT_OK(mac);
  EXPECT_EQ(format_mac(*mac), "02:ab:cd:00:10:ff");
  EXPECT_TRUE(parse_mac("02-00-00-00-00-01").ok());
  for (const char* bad : {"", "02:00:00:00:00", "02:00:00:00:00:0g", "2:0:0:0:0:1", "02:00:00:00:00:01:02",
                          "02:00-00:00:00:01"})
    EXPECT_FALSE(parse_mac(bad).ok()) << bad;
  EXPECT_TRUE(is_locally_administered_unicast(kMacA));
  EXPECT_FALSE(is_locally_administered_unicast(Mac{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}));
  EXPECT_FALSE(is_locally_administered_unicast(Mac{0x03, 0, 0, 0, 0, 1}));

  auto ip = parse_ipv4("198.19.255.1");
  ASSERT_OK(ip);
  EXPECT_TRUE(is_test_range_ipv4(*ip));
  EXPECT_FALSE(is_test_range_ipv4(*parse_ipv4("198.20.0.1")));
  EXPECT_FALSE(parse_ipv4("198.18.0").ok());
  EXPECT_FALSE(parse_ipv4("198.18.0.256").ok());

  EXPECT_EQ(*parse_ethertype("ipv4"), 0x0800);
  EXPECT_EQ(*parse_ethertype("arp"), 0x0806);
  EXPECT_EQ(*parse_ethertype("ipv6"), 0x86dd);
  EXPECT_EQ(*parse_ethertype("lldp"), 0x88cc);
  EXPECT_EQ(*parse_ethertype("0x88B5"), 0x88b5);
  EXPECT_EQ(*parse_ethertype("1500"), 1500);
  EXPECT_FALSE(parse_ethertype("0x10000").ok());
  EXPECT_FALSE(parse_ethertype("ipx").ok());
}

// ===========================================================================
// Commands

TEST(RunCommand, CapturesOutputAndExitStatus) {
  auto out = run_command({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_OK(out);
  EXPECT_EQ(out->exit_code, 3);
  EXPECT_NE(out->output.find("out\n"), std::string::npos);
  EXPECT_NE(out->output.find("err\n"), std::string::npos);

  auto failed = run({"sh", "-c", "echo why; exit 1"});
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find("why"), std::string::npos) << failed.error().message;

  EXPECT_EQ(run({"xfpt-no-such-command"}).error().code, ENOENT);
  auto slow = run_command({"sleep", "5"}, 200ms);
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.error().code, ETIMEDOUT);
}

// ===========================================================================
// Namespaces and veth pairs

TEST(NetNs, CreatedVisibleAndRemoved) {
  XFP_REQUIRE_ROOT();
  std::string name;
  {
    auto ns = NetNs::create();
    ASSERT_OK(ns);
    name = ns->name();
    EXPECT_EQ(name.rfind("xfpt-" + std::to_string(::getpid()) + "-", 0), 0u) << name;
    EXPECT_TRUE(netns_listed(name));
    EXPECT_NE(ns->inode(), 0u);
    auto lo = query_link(*ns, "lo");
    ASSERT_OK(lo);
    EXPECT_TRUE(lo->up);
    // ip netns exec works on it and sees its own links only.
    auto links = run_in_netns(*ns, {"ip", "-o", "link", "show"});
    ASSERT_OK(links);
    EXPECT_NE(links->find("lo:"), std::string::npos);
    EXPECT_EQ(links->find("eth0"), std::string::npos) << *links;
    // IPv6 is off inside (no ND/MLD noise on test links).
    auto v6 = run_in_netns(*ns, {"cat", "/proc/sys/net/ipv6/conf/default/disable_ipv6"});
    if (v6) {
      EXPECT_EQ(*v6, "1\n");
    }
    const auto registered = registered_namespaces();
    EXPECT_NE(std::find(registered.begin(), registered.end(), name), registered.end());
  }
  EXPECT_FALSE(netns_listed(name));
  const auto registered = registered_namespaces();
  EXPECT_EQ(std::find(registered.begin(), registered.end(), name), registered.end());
}

TEST(NetNs, MovedFromOwnerDoesNotRemove) {
  XFP_REQUIRE_ROOT();
  auto created = NetNs::create();
  ASSERT_OK(created);
  NetNs first = std::move(created).value();
  const std::string name = first.name();
  NetNs second = std::move(first);
  EXPECT_FALSE(first.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_TRUE(netns_listed(name));
  ASSERT_OK(second.remove());
  EXPECT_FALSE(netns_listed(name));
}

TEST(ScopedNetnsEnter, SwitchesTheThreadAndBack) {
  XFP_REQUIRE_ROOT();
  auto ns = NetNs::create();
  ASSERT_OK(ns);
  auto pair = VethPair::create(*ns, *ns);
  ASSERT_OK(pair);
  EXPECT_EQ(::if_nametoindex(pair->a().name.c_str()), 0u) << "a test link must never be in the host namespace";
  {
    auto inside = ScopedNetnsEnter::enter(*ns);
    ASSERT_OK(inside);
    EXPECT_EQ(static_cast<int>(::if_nametoindex(pair->a().name.c_str())), pair->a().ifindex);
  }
  EXPECT_EQ(::if_nametoindex(pair->a().name.c_str()), 0u);
}

TEST(VethPair, EndsLiveInTheirNamespacesWithChosenMacsMtuAndAddresses) {
  XFP_REQUIRE_ROOT();
  auto ns_a = NetNs::create();
  auto ns_b = NetNs::create();
  ASSERT_OK(ns_a);
  ASSERT_OK(ns_b);
  VethOptions opt;
  opt.mac_a = kMacA;
  opt.mac_b = kMacB;
  opt.mtu = 9000;
  opt.ipv4_a = "198.18.0.1/24";
  opt.ipv4_b = "198.18.0.2/24";
  auto pair = VethPair::create(*ns_a, *ns_b, opt);
  ASSERT_OK(pair);
  EXPECT_LE(pair->a().name.size(), 15u);
  EXPECT_EQ(pair->a().netns, ns_a->name());
  EXPECT_EQ(pair->b().netns, ns_b->name());

  auto a = query_link(*ns_a, pair->a().name);
  auto b = query_link(*ns_b, pair->b().name);
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ(a->mac, kMacA);
  EXPECT_EQ(b->mac, kMacB);
  EXPECT_EQ(a->mtu, 9000u);
  EXPECT_TRUE(a->up);
  EXPECT_TRUE(b->up);
  EXPECT_EQ(a->ifindex, pair->a().ifindex);
  EXPECT_FALSE(query_link(*ns_a, pair->b().name).ok()) << "end b must not be in namespace a";

  auto addr = run_in_netns(*ns_a, {"ip", "-o", "-4", "addr", "show", "dev", pair->a().name});
  ASSERT_OK(addr);
  EXPECT_NE(addr->find("198.18.0.1/24"), std::string::npos) << *addr;
}

TEST(VethPair, DefaultNamesAndMacsAreUniqueAndLocallyAdministered) {
  XFP_REQUIRE_ROOT();
  auto ns = NetNs::create();
  ASSERT_OK(ns);
  auto p1 = VethPair::create(*ns, *ns);
  auto p2 = VethPair::create(*ns, *ns);
  ASSERT_OK(p1);
  ASSERT_OK(p2);
  EXPECT_NE(p1->a().name, p2->a().name);
  EXPECT_NE(p1->a().mac, p1->b().mac);
  EXPECT_NE(p1->a().mac, p2->a().mac);
  for (const auto* p : {&*p1, &*p2}) {
    EXPECT_TRUE(is_locally_administered_unicast(p->a().mac));
    EXPECT_TRUE(is_locally_administered_unicast(p->b().mac));
    auto info = query_link(*ns, p->b().name);
    ASSERT_OK(info);
    EXPECT_EQ(info->mac, p->b().mac);
  }
}

TEST(VethPair, RefusesAddressesOutsideTheTestRanges) {
  XFP_REQUIRE_ROOT();
  auto ns = NetNs::create();
  ASSERT_OK(ns);
  VethOptions bad_ip;
  bad_ip.ipv4_a = "10.0.0.1/24";
  EXPECT_EQ(VethPair::create(*ns, *ns, bad_ip).error().code, EINVAL);
  VethOptions bad_mac;
  bad_mac.mac_b = Mac{0x00, 0x11, 0x22, 0x33, 0x44, 0x55};
  EXPECT_EQ(VethPair::create(*ns, *ns, bad_mac).error().code, EINVAL);
  auto links = run_in_netns(*ns, {"ip", "-o", "link", "show"});
  ASSERT_OK(links);
  EXPECT_EQ(links->find("xfpt"), std::string::npos) << "a refused pair left a link: " << *links;
}

TEST(VethPair, RemovedByDestructorAndNamespacesToo) {
  XFP_REQUIRE_ROOT();
  std::string ns_a_name, ns_b_name, link_a;
  {
    auto ns_a = NetNs::create();
    auto ns_b = NetNs::create();
    ASSERT_OK(ns_a);
    ASSERT_OK(ns_b);
    ns_a_name = ns_a->name();
    ns_b_name = ns_b->name();
    {
      auto pair = VethPair::create(*ns_a, *ns_b);
      ASSERT_OK(pair);
      link_a = pair->a().name;
      EXPECT_TRUE(link_exists(ns_a_name, link_a));
    }
    EXPECT_FALSE(link_exists(ns_a_name, link_a));
    EXPECT_TRUE(netns_listed(ns_a_name));
  }
  EXPECT_FALSE(netns_listed(ns_a_name));
  EXPECT_FALSE(netns_listed(ns_b_name));
}

// A pair that outlives its namespaces (wrong order) must not complain or leak.
TEST(VethPair, NamespaceRemovedFirstIsFine) {
  XFP_REQUIRE_ROOT();
  auto ns_a = NetNs::create();
  auto ns_b = NetNs::create();
  ASSERT_OK(ns_a);
  ASSERT_OK(ns_b);
  auto pair = VethPair::create(*ns_a, *ns_b);
  ASSERT_OK(pair);
  ASSERT_OK(ns_a->remove());
  ASSERT_OK(ns_b->remove());
  EXPECT_OK(pair->remove());
}

// ===========================================================================
// Frames across a pair

class VethTraffic : public ::testing::Test {
 protected:
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    auto a = NetNs::create();
    auto b = NetNs::create();
    ASSERT_OK(a);
    ASSERT_OK(b);
    ns_a_.emplace(std::move(a).value());
    ns_b_.emplace(std::move(b).value());
    VethOptions opt;
    opt.mac_a = kMacA;
    opt.mac_b = kMacB;
    auto pair = VethPair::create(*ns_a_, *ns_b_, opt);
    ASSERT_OK(pair);
    pair_.emplace(std::move(pair).value());
    auto tx = PacketSocket::open(*ns_a_, pair_->a().name);
    auto rx = PacketSocket::open(*ns_b_, pair_->b().name);
    ASSERT_OK(tx);
    ASSERT_OK(rx);
    tx_.emplace(std::move(tx).value());
    rx_.emplace(std::move(rx).value());
  }

  // Declared in teardown order: sockets, pair, namespaces.
  std::optional<NetNs> ns_a_, ns_b_;
  std::optional<VethPair> pair_;
  std::optional<PacketSocket> tx_, rx_;
};

TEST_F(VethTraffic, FramesArriveByteIdentical) {
  std::vector<Frame> sent;
  uint32_t seq = 0;
  sent.push_back(FrameBuilder().dst(kMacB).src(kMacA).marker(seq++).build());
  sent.push_back(FrameBuilder().dst(kMacB).src(kMacA).vlan(42, 3).marker(seq++).build());
  sent.push_back(FrameBuilder().dst(kMacB).src(kMacA).qinq(100, 200).marker(seq++).build());
  sent.push_back(FrameBuilder().dst(kBroadcastMac).src(kMacA).vlan(0, 6).ethertype(0x88cc).marker(seq++).build());
  sent.push_back(FrameBuilder().dst(kMacB).src(kMacA).ipv4().udp().marker(seq++).pad_to(300).build());
  sent.push_back(FrameBuilder().dst(kMacB).src(kMacA).vlan(5).ipv4(Ipv4Options{.more_fragments = true})
                     .marker(seq++).build());
  ASSERT_OK(tx_->send_frames(sent));

  auto got = rx_->receive(2s, has_marker, sent.size());
  ASSERT_OK(got);
  ASSERT_EQ(got->size(), sent.size());
  for (const auto& frame : *got) {
    const auto s = find_marker(frame);
    ASSERT_TRUE(s.has_value());
    ASSERT_LT(*s, sent.size());
    EXPECT_EQ(frame, sent[*s]) << "frame " << *s << " changed on the way";
  }
}

TEST_F(VethTraffic, StatisticsCountTheFrames) {
  auto rx_before = read_link_stats(*ns_b_, pair_->b().name);
  auto tx_before = read_link_stats(*ns_a_, pair_->a().name);
  ASSERT_OK(rx_before);
  ASSERT_OK(tx_before);
  constexpr uint32_t kFrames = 50;
  for (uint32_t i = 0; i < kFrames; ++i)
    ASSERT_OK(tx_->send_frame(FrameBuilder().dst(kMacB).src(kMacA).marker(i).build()));
  auto got = rx_->receive(2s, has_marker, kFrames);
  ASSERT_OK(got);
  EXPECT_EQ(got->size(), kFrames);
  auto rx_after = read_link_stats(*ns_b_, pair_->b().name);
  auto tx_after = read_link_stats(*ns_a_, pair_->a().name);
  ASSERT_OK(rx_after);
  ASSERT_OK(tx_after);
  // IPv6 is off in test namespaces, so nothing else moves on the link.
  EXPECT_EQ(rx_after->rx_packets - rx_before->rx_packets, kFrames);
  EXPECT_EQ(tx_after->tx_packets - tx_before->tx_packets, kFrames);
  EXPECT_EQ(rx_after->rx_bytes - rx_before->rx_bytes, kFrames * 60u);
  EXPECT_EQ(rx_after->rx_dropped, rx_before->rx_dropped);
  EXPECT_EQ(tx_after->tx_dropped, tx_before->tx_dropped);
}

TEST_F(VethTraffic, ReceiveFiltersAndTimesOut) {
  // A frame the predicate rejects is not returned; the call waits out its window.
  ASSERT_OK(tx_->send_frame(FrameBuilder().dst(kMacB).src(kMacA).payload("not marked").build()));
  const auto t0 = std::chrono::steady_clock::now();
  auto got = rx_->receive(150ms, has_marker);
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_OK(got);
  EXPECT_TRUE(got->empty());
  EXPECT_GE(waited, 140ms);
  EXPECT_LT(waited, 2s);
}

TEST_F(VethTraffic, IgnoreOutgoingHidesOwnTransmissions) {
  // The sender's socket ignores outgoing frames; a second socket on the same
  // end without the option sees them.
  PacketSocket::Options see_all;
  see_all.ignore_outgoing = false;
  auto tap = PacketSocket::open(*ns_a_, pair_->a().name, see_all);
  ASSERT_OK(tap);
  ASSERT_OK(tx_->send_frame(FrameBuilder().dst(kMacB).src(kMacA).marker(7).build()));
  auto on_tap = tap->receive(1s, has_marker, 1);
  ASSERT_OK(on_tap);
  EXPECT_EQ(on_tap->size(), 1u);
  auto on_sender = tx_->receive(100ms, has_marker);
  ASSERT_OK(on_sender);
  EXPECT_TRUE(on_sender->empty());
}

TEST_F(VethTraffic, FrameCutInsideItsIpv4HeaderIsDeliveredAsIs) {
  // The IPv4 header claims more than the frame holds: the stack must not
  // "fix" it on the way to a packet socket.
  const auto frame = FrameBuilder().dst(kMacB).src(kMacA).vlan(9).ipv4().udp().marker(1).pad_to(0).build();
  const auto cut = FrameBuilder().dst(kMacB).src(kMacA).vlan(9).ipv4().udp().marker(1).pad_to(0)
                       .truncate_to(frame.size() - 4).build();
  ASSERT_EQ(cut.size(), frame.size() - 4);
  ASSERT_OK(tx_->send_frame(cut));
  auto got = rx_->receive(1s, [](std::span<const uint8_t> f) {
    return f.size() >= 12 && std::equal(kMacA.begin(), kMacA.end(), f.begin() + 6);
  }, 1);
  ASSERT_OK(got);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(got->front(), cut);
}

// ===========================================================================
// Cleanup when the process dies

// Creates two namespaces joined by a veth in a child process, reports their
// names, then ends the child with `how`. Returns the names.
struct ChildNames {
  std::string ns_a, ns_b, link;
};

enum class ChildEnd { kSigterm, kSigint, kExit };

ChildNames run_child_that_dies(ChildEnd how, int* wait_status) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(fds[0]);
    // Heap-allocated and never freed: only the registry can clean up.
    auto a = NetNs::create();
    auto b = NetNs::create();
    if (!a || !b) ::_exit(3);
    auto* ns_a = new NetNs(std::move(a).value());
    auto* ns_b = new NetNs(std::move(b).value());
    auto pair = VethPair::create(*ns_a, *ns_b);
    if (!pair) ::_exit(4);
    auto* p = new VethPair(std::move(pair).value());
    const std::string msg = ns_a->name() + " " + ns_b->name() + " " + p->a().name + "\n";
    if (::write(fds[1], msg.data(), msg.size()) != static_cast<ssize_t>(msg.size())) ::_exit(5);
    ::close(fds[1]);
    switch (how) {
      case ChildEnd::kSigterm:
        ::raise(SIGTERM);
        break;
      case ChildEnd::kSigint:
        ::kill(::getpid(), SIGINT);
        break;
      case ChildEnd::kExit:
        std::exit(0);  // atexit handlers run, destructors of the leaked objects do not
    }
    ::_exit(6);  // not reached when the handler re-raises
  }
  ::close(fds[1]);
  std::string text;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  ::waitpid(child, wait_status, 0);
  ChildNames names;
  std::istringstream in(text);
  in >> names.ns_a >> names.ns_b >> names.link;
  return names;
}

TEST(Cleanup, SigtermRemovesNamespacesAndLinks) {
  XFP_REQUIRE_ROOT();
  int status = 0;
  const auto names = run_child_that_dies(ChildEnd::kSigterm, &status);
  ASSERT_FALSE(names.ns_a.empty()) << "child failed to set up, status " << status;
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << "the signal must still end the process";
  EXPECT_FALSE(netns_listed(names.ns_a));
  EXPECT_FALSE(netns_listed(names.ns_b));
  EXPECT_FALSE(std::filesystem::exists("/run/netns/" + names.ns_a));
}

TEST(Cleanup, SigintRemovesNamespaces) {
  XFP_REQUIRE_ROOT();
  int status = 0;
  const auto names = run_child_that_dies(ChildEnd::kSigint, &status);
  ASSERT_FALSE(names.ns_a.empty()) << "child failed to set up, status " << status;
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT);
  EXPECT_FALSE(netns_listed(names.ns_a));
  EXPECT_FALSE(netns_listed(names.ns_b));
}

TEST(Cleanup, ExitWithoutDestructorsRemovesNamespaces) {
  XFP_REQUIRE_ROOT();
  int status = 0;
  const auto names = run_child_that_dies(ChildEnd::kExit, &status);
  ASSERT_FALSE(names.ns_a.empty()) << "child failed to set up, status " << status;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_FALSE(netns_listed(names.ns_a));
  EXPECT_FALSE(netns_listed(names.ns_b));
}

TEST(Cleanup, ForkedChildDoesNotRemoveTheParentsNamespace) {
  XFP_REQUIRE_ROOT();
  auto ns = NetNs::create();
  ASSERT_OK(ns);
  const pid_t child = ::fork();
  if (child == 0) {
    // Destroying the copy the child inherited must leave the parent's alone.
    (void)ns->remove();
    std::exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(netns_listed(ns->name()));
}

// ===========================================================================
// BPF_PROG_TEST_RUN wrapper, on two-instruction programs loaded here.

int load_return_program(bpf_prog_type type, int32_t verdict) {
  const bpf_insn insns[] = {
      // r0 = verdict
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = verdict},
      // exit
      {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
  };
  return bpf_prog_load(type, "xfpt_ret", "GPL", insns, 2, nullptr);
}

TEST(TestRun, XdpProgramVerdictAndFrame) {
  XFP_REQUIRE_ROOT();
  const int fd = load_return_program(BPF_PROG_TYPE_XDP, XDP_DROP);
  ASSERT_GE(fd, 0) << "loading a trivial XDP program: " << std::strerror(-fd);
  const auto frame = FrameBuilder().dst(kMacB).src(kMacA).vlan(3).marker(1).build();
  const auto r = test_run(fd, frame, 10);
  EXPECT_EQ(r.err, 0) << std::strerror(r.err);
  EXPECT_EQ(r.retval, static_cast<uint32_t>(XDP_DROP));
  EXPECT_EQ(r.data_out, frame);
  // XDP refuses frames shorter than an Ethernet header.
  const auto runt = test_run(fd, FrameBuilder().truncate_to(8).build());
  EXPECT_EQ(runt.err, EINVAL);
  ::close(fd);
}

TEST(TestRun, TcProgramVerdictAndIfindex) {
  XFP_REQUIRE_ROOT();
  const int fd = load_return_program(BPF_PROG_TYPE_SCHED_CLS, TC_ACT_SHOT);
  ASSERT_GE(fd, 0) << "loading a trivial TC program: " << std::strerror(-fd);
  const auto frame = FrameBuilder().dst(kMacB).src(kMacA).ipv4().udp().marker(2).build();
  const auto r = test_run(fd, frame, 1, /*xdp=*/false);
  EXPECT_EQ(r.err, 0) << std::strerror(r.err);
  EXPECT_EQ(r.retval, static_cast<uint32_t>(TC_ACT_SHOT));
  EXPECT_EQ(r.data_out, frame);

  // With an ifindex, run inside a namespace where that device exists.
  auto ns = NetNs::create();
  ASSERT_OK(ns);
  auto pair = VethPair::create(*ns, *ns);
  ASSERT_OK(pair);
  {
    auto inside = ScopedNetnsEnter::enter(*ns);
    ASSERT_OK(inside);
    TestRunOptions opt;
    opt.xdp = false;
    opt.ifindex = static_cast<uint32_t>(pair->a().ifindex);
    const auto with_dev = test_run(fd, frame, opt);
    EXPECT_EQ(with_dev.err, 0) << std::strerror(with_dev.err);
    EXPECT_EQ(with_dev.retval, static_cast<uint32_t>(TC_ACT_SHOT));
  }
  ::close(fd);
}

// ===========================================================================
// xfp-sendframes

std::string sendframes_path() {
  const char* build = std::getenv("XFP_BUILD_DIR");
  std::vector<std::string> candidates;
  if (build) candidates.push_back(std::string(build) + "/tools/sendframes/xfp-sendframes");
  // Run straight from the build tree: tests/integration/<binary>.
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back((self.parent_path().parent_path() / "tools/sendframes/xfp-sendframes").string());
  for (const auto& c : candidates)
    if (::access(c.c_str(), X_OK) == 0) return c;
  return {};
}

TEST_F(VethTraffic, SendframesToolSendsTaggedFrames) {
  const std::string tool = sendframes_path();
  ASSERT_FALSE(tool.empty()) << "xfp-sendframes is part of the build but was not found (set XFP_BUILD_DIR)";
  auto out = run_in_netns(*ns_a_, {tool, "--dev", pair_->a().name, "--dst", format_mac(kMacB), "--vlan", "100",
                                   "--vlan", "200", "--ethertype", "ipv4", "--count", "5", "--size", "128"});
  ASSERT_OK(out);
  EXPECT_NE(out->find("sent 5 frames"), std::string::npos) << *out;
  // The tool's marker carries its own pid: match the magic and our MACs.
  auto got = rx_->receive(2s, [](std::span<const uint8_t> f) {
    return f.size() > 60 && std::equal(kMacA.begin(), kMacA.end(), f.begin() + 6);
  }, 5);
  ASSERT_OK(got);
  ASSERT_EQ(got->size(), 5u);
  const auto& f = got->front();
  EXPECT_EQ(f.size(), 128u);
  EXPECT_EQ(f[12] << 8 | f[13], 0x88a8);
  EXPECT_EQ((f[14] << 8 | f[15]) & 0xfff, 100);
  EXPECT_EQ(f[16] << 8 | f[17], 0x8100);
  EXPECT_EQ((f[18] << 8 | f[19]) & 0xfff, 200);
  EXPECT_EQ(f[20] << 8 | f[21], 0x0800);
  EXPECT_EQ(internet_checksum(std::span<const uint8_t>(f).subspan(22, 20)), 0);
  EXPECT_EQ(f[22 + 2] << 8 | f[22 + 3], 128 - 22);  // IPv4 total length fills the frame
}

TEST_F(VethTraffic, SendframesToolPacesByRateForADuration) {
  const std::string tool = sendframes_path();
  ASSERT_FALSE(tool.empty()) << "xfp-sendframes is part of the build but was not found (set XFP_BUILD_DIR)";
  auto before = read_link_stats(*ns_b_, pair_->b().name);
  ASSERT_OK(before);
  // 500 pps for 0.3 s: about 150 frames; the schedule is absolute, so the
  // count stays close even on a busy machine.
  auto out = run_in_netns(*ns_a_, {tool, "--dev", pair_->a().name, "--dst", format_mac(kMacB), "--rate", "500",
                                   "--duration", "0.3", "--json"});
  ASSERT_OK(out);
  const auto at = out->find("\"sent\":");
  ASSERT_NE(at, std::string::npos) << *out;
  const unsigned long sent = std::stoul(out->substr(at + 7));
  EXPECT_GE(sent, 120u) << *out;
  EXPECT_LE(sent, 152u) << *out;
  // Give the receiver's backlog a moment, then every frame is counted.
  auto got = rx_->receive(1s, [](std::span<const uint8_t> f) {
    return f.size() >= 12 && std::equal(kMacA.begin(), kMacA.end(), f.begin() + 6);
  }, sent);
  ASSERT_OK(got);
  EXPECT_EQ(got->size(), sent);
  auto after = read_link_stats(*ns_b_, pair_->b().name);
  ASSERT_OK(after);
  EXPECT_EQ(after->rx_packets - before->rx_packets, sent);
}

TEST(Sendframes, ClearErrors) {
  XFP_REQUIRE_ROOT();
  const std::string tool = sendframes_path();
  ASSERT_FALSE(tool.empty()) << "xfp-sendframes is part of the build but was not found (set XFP_BUILD_DIR)";
  auto ns = NetNs::create();
  ASSERT_OK(ns);
  auto unknown = run_command_in_netns(*ns, {tool, "--dev", "xfpt-nodev"});
  ASSERT_OK(unknown);
  EXPECT_EQ(unknown->exit_code, 1);
  EXPECT_NE(unknown->output.find("unknown interface 'xfpt-nodev'"), std::string::npos) << unknown->output;

  auto bad_mac = run_command_in_netns(*ns, {tool, "--dev", "lo", "--dst", "02:00:00:00:00"});
  ASSERT_OK(bad_mac);
  EXPECT_EQ(bad_mac->exit_code, 2);
  EXPECT_NE(bad_mac->output.find("--dst: bad MAC address"), std::string::npos) << bad_mac->output;

  auto not_veth = run_command_in_netns(*ns, {tool, "--dev", "lo"});
  ASSERT_OK(not_veth);
  EXPECT_EQ(not_veth->exit_code, 1);
  EXPECT_NE(not_veth->output.find("is not a veth"), std::string::npos) << not_veth->output;

  // In the host namespace (it has hardware interfaces) it refuses before
  // looking at the device, which does not exist either, as a second guard.
  auto host = run_command({tool, "--dev", "xfpt-nodev"});
  ASSERT_OK(host);
  EXPECT_EQ(host->exit_code, 1);
  EXPECT_NE(host->output.find("refusing"), std::string::npos) << host->output;
}

}  // namespace
}  // namespace xfp::test
