// Receive injection on real veth pairs: namespaces "peer" and "x" joined by
// a veth (v0 in peer, v1 in x; v1 is the interface X that frames are
// injected into), and xfp's internal injection pair inside x. Frames with a
// trailer are sent into end A with an AF_PACKET socket; the tests check
// what a user would: the bytes a socket bound to X receives, the counters,
// that nothing leaves on the wire, and that X's XDP program does not see an
// injected frame again.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "support/assert_ok.hpp"
#include "support/frame_builder.hpp"
#include "support/netns.hpp"
#include "support/packet_io.hpp"
#include "support/privileges.hpp"
#include "xfp/abi.h"
#include "xfp/reinject_link.hpp"

namespace xfp {
namespace {

using namespace std::chrono_literals;
using test::find_marker;
using test::Frame;
using test::FrameBuilder;
using test::has_marker;
using test::Mac;
using test::NetNs;
using test::PacketSocket;
using test::ScopedNetnsEnter;
using test::VethOptions;
using test::VethPair;

constexpr Mac kPeerMac{0x02, 0x00, 0x00, 0x00, 0x1a, 0x01};   // v0
constexpr Mac kXMac{0x02, 0x00, 0x00, 0x00, 0x1b, 0x01};      // v1 = X
constexpr Mac kOtherMac{0x02, 0x00, 0x00, 0x07, 0x4e, 0x01};  // nobody's
constexpr const char* kPeerIp = "198.18.77.1";
constexpr const char* kXIp = "198.18.77.2";

constexpr auto kArriveWindow = 500ms;
constexpr auto kQuietWindow = 150ms;

// The frame as user space hands it to end A: the trailer in host order.
Frame with_trailer(Frame f, uint32_t ifindex, uint32_t magic = XFP_REINJECT_MAGIC) {
  xfp_reinject_trailer t{ifindex, magic};
  const auto* p = reinterpret_cast<const uint8_t*>(&t);
  f.insert(f.end(), p, p + sizeof t);
  return f;
}

// ---------------------------------------------------------------------------
// A minimal XDP program that counts the frames it sees (one u64 in an array
// map) and passes them. Written as instructions so the test needs no second
// BPF object in the build.

class CountingXdp {
 public:
  static Result<std::unique_ptr<CountingXdp>> load() {
    auto c = std::unique_ptr<CountingXdp>(new CountingXdp());
    c->map_fd_ = bpf_map_create(BPF_MAP_TYPE_ARRAY, "xfpt_xdp_cnt", 4, 8, 1, nullptr);
    if (c->map_fd_ < 0) return errno_error("creating the counting map");
    auto ins = [](uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
      bpf_insn i{};
      i.code = code;
      i.dst_reg = dst & 0xf;
      i.src_reg = src & 0xf;
      i.off = off;
      i.imm = imm;
      return i;
    };
    const bpf_insn prog[] = {
        ins(BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -4, 0),        // key = 0
        ins(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),  // r2 = &key
        ins(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4),
        ins(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, c->map_fd_),  // r1 = map
        ins(0, 0, 0, 0, 0),
        ins(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
        ins(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 2, 0),  // no value: skip the add
        ins(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_1, 0, 0, 1),
        ins(BPF_STX | BPF_ATOMIC | BPF_DW, BPF_REG_0, BPF_REG_1, 0, BPF_ADD),  // *value += 1
        ins(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS),
        ins(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    };
    c->prog_fd_ = bpf_prog_load(BPF_PROG_TYPE_XDP, "xfpt_xdp_count", "GPL", prog, std::size(prog), nullptr);
    if (c->prog_fd_ < 0) return errno_error("loading the counting XDP program");
    return c;
  }
  ~CountingXdp() {
    if (prog_fd_ >= 0) ::close(prog_fd_);
    if (map_fd_ >= 0) ::close(map_fd_);
  }
  // Attaches inside `ns` (the interface goes with the namespace, so there is
  // no detach to forget).
  Status attach(const NetNs& ns, const std::string& ifname, bool generic) {
    auto inside = ScopedNetnsEnter::enter(ns);
    if (!inside) return std::move(inside).error();
    const int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (ifindex == 0) return errno_error("if_nametoindex " + ifname);
    const uint32_t flags = generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
    if (int rc = bpf_xdp_attach(ifindex, prog_fd_, flags, nullptr); rc != 0)
      return errno_error("attaching the counting XDP program to " + ifname, -rc);
    return Ok{};
  }
  uint64_t count() const {
    uint32_t key = 0;
    uint64_t v = 0;
    (void)bpf_map_lookup_elem(map_fd_, &key, &v);
    return v;
  }

 private:
  CountingXdp() = default;
  int map_fd_ = -1;
  int prog_fd_ = -1;
};

// ---------------------------------------------------------------------------

class ReinjectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    auto peer = NetNs::create();
    XFP_ASSERT_OK(peer);
    peer_ns_.emplace(std::move(peer).value());
    auto x = NetNs::create();
    XFP_ASSERT_OK(x);
    x_ns_.emplace(std::move(x).value());
    VethOptions opt;
    opt.mac_a = kPeerMac;
    opt.mac_b = kXMac;
    opt.ipv4_a = std::string(kPeerIp) + "/24";
    opt.ipv4_b = std::string(kXIp) + "/24";
    auto pair = VethPair::create(*peer_ns_, *x_ns_, opt);
    XFP_ASSERT_OK(pair);
    pair_.emplace(std::move(pair).value());
  }

  // Members go in reverse: sockets, link, pair, namespaces. The link's
  // destructor reaches its namespace through its own netlink socket.
  void TearDown() override {
    rx_.reset();
    tx_.reset();
    wire_.reset();
    link_.reset();
  }

  const std::string& x_if() const { return pair_->b().name; }
  uint32_t x_ifindex() const { return static_cast<uint32_t>(pair_->b().ifindex); }

  Result<std::unique_ptr<ReinjectLink>> create_in_x(const ReinjectOptions& o = {}) {
    auto inside = ScopedNetnsEnter::enter(*x_ns_);
    if (!inside) return std::move(inside).error();
    return ReinjectLink::create(o);
  }

  // The injection pair in x with X as its target, and the three sockets:
  // rx on X, tx on end A, wire on v0 (what would leave X on the wire).
  void start(ReinjectMethod method = ReinjectMethod::Mirred) {
    ReinjectOptions o;
    o.method = method;
    auto l = create_in_x(o);
    XFP_ASSERT_OK(l);
    link_ = std::move(l).value();
    XFP_ASSERT_OK(link_->add_target(x_ifindex()));
    auto rx = PacketSocket::open(*x_ns_, x_if());
    XFP_ASSERT_OK(rx);
    rx_.emplace(std::move(rx).value());
    auto tx = PacketSocket::open(*x_ns_, link_->ifname_a());
    XFP_ASSERT_OK(tx);
    tx_.emplace(std::move(tx).value());
    auto wire = PacketSocket::open(*peer_ns_, pair_->a().name);
    XFP_ASSERT_OK(wire);
    wire_.emplace(std::move(wire).value());
  }

  std::optional<NetNs> peer_ns_, x_ns_;
  std::optional<VethPair> pair_;
  std::unique_ptr<ReinjectLink> link_;
  std::optional<PacketSocket> rx_, tx_, wire_;
};

// Sends frames (marked with their index) and returns, per marker, what X's
// socket received.
std::map<uint32_t, Frame> receive_by_marker(PacketSocket& sock, size_t expected) {
  std::map<uint32_t, Frame> got;
  auto r = sock.receive(kArriveWindow, has_marker, expected);
  EXPECT_TRUE(r.ok()) << r.error().message;
  auto more = sock.receive(kQuietWindow, has_marker);  // anything beyond: duplicates
  EXPECT_TRUE(more.ok()) << more.error().message;
  if (r && more) r->insert(r->end(), more->begin(), more->end());
  if (!r) return got;
  for (Frame& f : *r) {
    const uint32_t seq = *find_marker(f);
    EXPECT_FALSE(got.count(seq)) << "frame " << seq << " arrived twice";
    got[seq] = std::move(f);
  }
  return got;
}

// ===========================================================================

TEST_F(ReinjectTest, DeliversFramesUnchangedOnTargetAndNothingLeavesOnTheWire) {
  start();
  ASSERT_FALSE(HasFatalFailure());
  auto v0_before = test::read_link_stats(*peer_ns_, pair_->a().name);
  XFP_ASSERT_OK(v0_before);

  std::vector<Frame> frames;
  frames.push_back(FrameBuilder().dst(kXMac).src(kPeerMac).marker(0).build());  // 60 bytes
  frames.push_back(FrameBuilder().dst(kXMac).src(kPeerMac).marker(1).pad_to(1514).build());  // MTU-sized
  frames.push_back(FrameBuilder().dst(kXMac).src(kPeerMac).vlan(42, 3).marker(2).build());
  frames.push_back(FrameBuilder().dst(kXMac).src(kPeerMac).qinq(100, 200).marker(3).pad_to(1522).build());
  frames.push_back(FrameBuilder().dst(test::kBroadcastMac).src(kPeerMac).marker(4).build());
  frames.push_back(FrameBuilder().dst(kOtherMac).src(kPeerMac).ipv4().udp().marker(5).build());
  ASSERT_EQ(frames[0].size(), 60u);
  ASSERT_EQ(frames[1].size(), 1514u);
  for (const Frame& f : frames) XFP_ASSERT_OK(tx_->send_frame(with_trailer(f, x_ifindex())));

  auto got = receive_by_marker(*rx_, frames.size());
  for (uint32_t i = 0; i < frames.size(); ++i) {
    ASSERT_TRUE(got.count(i)) << "frame " << i << " (" << frames[i].size() << " bytes) did not arrive on X";
    EXPECT_EQ(got[i], frames[i]) << "frame " << i << " changed on the way (trailer not cut?)";
  }
  EXPECT_EQ(got.size(), frames.size());
  const ReinjectCounters c = link_->counters();
  EXPECT_EQ(c.ok(), frames.size());
  EXPECT_EQ(c.bad(), 0u);
  EXPECT_EQ(c.failed(), 0u);

  // Injected into X's ingress: the peer behind X's wire sees nothing.
  auto on_wire = wire_->receive(kQuietWindow, has_marker);
  XFP_ASSERT_OK(on_wire);
  EXPECT_TRUE(on_wire->empty()) << on_wire->size() << " injected frames left X on the wire";
  auto v0_after = test::read_link_stats(*peer_ns_, pair_->a().name);
  XFP_ASSERT_OK(v0_after);
  EXPECT_EQ(v0_after->rx_packets, v0_before->rx_packets);
}

TEST_F(ReinjectTest, DropsAndCountsFramesWithoutAValidTrailer) {
  start();
  ASSERT_FALSE(HasFatalFailure());
  const Frame base = FrameBuilder().dst(kXMac).src(kPeerMac).marker(0).build();
  Frame runt = with_trailer(FrameBuilder().dst(kXMac).src(kPeerMac).pad_to(0).build(), x_ifindex());
  runt.resize(14 + sizeof(xfp_reinject_trailer) - 1);  // one byte short of header + trailer

  XFP_ASSERT_OK(tx_->send_frame(with_trailer(base, x_ifindex(), 0xdeadbeef)));  // bad magic
  XFP_ASSERT_OK(tx_->send_frame(base));                                          // no trailer
  XFP_ASSERT_OK(tx_->send_frame(runt));                                          // too short
  XFP_ASSERT_OK(tx_->send_frame(with_trailer(base, 0)));                         // no target
  XFP_ASSERT_OK(tx_->send_frame(with_trailer(base, 9999)));                      // no such interface
  XFP_ASSERT_OK(tx_->send_frame(with_trailer(base, 1)));                         // lo: not a target

  auto got = rx_->receive(kArriveWindow, has_marker);
  XFP_ASSERT_OK(got);
  EXPECT_TRUE(got->empty()) << got->size() << " bad frames were delivered";
  const ReinjectCounters c = link_->counters();
  EXPECT_EQ(c.bad(), 4u);
  EXPECT_EQ(c.failed(), 2u);
  EXPECT_EQ(c.ok(), 0u);
}

// The point of the exercise: the stack takes the frame as received on X.
// A UDP socket bound to X (SO_BINDTODEVICE) gets a datagram sent to X's MAC
// and address, and not one sent to another MAC (packet type other-host),
// as it would be if the frames had come in on X's wire.
TEST_F(ReinjectTest, UdpSocketBoundToTargetReceivesTheInjectedDatagram) {
  start();
  ASSERT_FALSE(HasFatalFailure());
  int fd = -1;
  {
    auto inside = ScopedNetnsEnter::enter(*x_ns_);
    XFP_ASSERT_OK(inside);
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  }
  ASSERT_GE(fd, 0) << std::strerror(errno);
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* p) { ::close(*p); });
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, x_if().c_str(), static_cast<socklen_t>(x_if().size())), 0)
      << std::strerror(errno);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(5555);
  ASSERT_EQ(inet_pton(AF_INET, kXIp, &sa.sin_addr), 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0) << std::strerror(errno);

  auto udp_frame = [](const Mac& dst, std::string_view text) {
    test::Ipv4Options ip;
    ip.src = *test::parse_ipv4(kPeerIp);
    ip.dst = *test::parse_ipv4(kXIp);
    test::UdpOptions udp;
    udp.dst_port = 5555;
    return FrameBuilder().dst(dst).src(kPeerMac).ipv4(ip).udp(udp).payload(text).build();
  };
  XFP_ASSERT_OK(tx_->send_frame(with_trailer(udp_frame(kOtherMac, "not-for-x"), x_ifindex())));
  XFP_ASSERT_OK(tx_->send_frame(with_trailer(udp_frame(kXMac, "injected-for-x"), x_ifindex())));

  std::vector<std::string> received;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(kArriveWindow.count())) <= 0) break;
    char buf[256];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) break;
    received.emplace_back(buf, static_cast<size_t>(n));
  }
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0], "injected-for-x");
  EXPECT_EQ(link_->counters().ok(), 2u);
}

// Does X's XDP program see an injected frame again? Measured for each way of
// handing the frame over and each XDP mode; only Mirred must be 0 in generic
// mode (that is the one xfp uses). The figures are printed for the record.
struct XdpCase {
  ReinjectMethod method;
  bool generic;
};

class ReinjectXdpTest : public ReinjectTest, public ::testing::WithParamInterface<XdpCase> {};

TEST_P(ReinjectXdpTest, GenericXdpOnTarget) {
  const XdpCase k = GetParam();
  start(k.method);
  ASSERT_FALSE(HasFatalFailure());
  auto xdp = CountingXdp::load();
  XFP_ASSERT_OK(xdp);
  XFP_ASSERT_OK((*xdp)->attach(*x_ns_, x_if(), k.generic));

  // The program runs: a frame from the wire is counted once.
  XFP_ASSERT_OK(wire_->send_frame(FrameBuilder().dst(kXMac).src(kPeerMac).marker(100).build()));
  auto wire_got = rx_->receive(kArriveWindow, has_marker, 1);
  XFP_ASSERT_OK(wire_got);
  ASSERT_EQ(wire_got->size(), 1u);
  const uint64_t before = (*xdp)->count();
  ASSERT_EQ(before, 1u);

  constexpr uint32_t kFrames = 5;
  for (uint32_t i = 0; i < kFrames; ++i)
    XFP_ASSERT_OK(tx_->send_frame(with_trailer(FrameBuilder().dst(kXMac).src(kPeerMac).marker(i).build(), x_ifindex())));
  auto got = receive_by_marker(*rx_, kFrames);
  EXPECT_EQ(got.size(), kFrames) << "injected frames must reach X's sockets";
  const uint64_t seen = (*xdp)->count() - before;
  const char* name = k.method == ReinjectMethod::Mirred        ? "mirred"
                     : k.method == ReinjectMethod::BpfRedirect ? "bpf_redirect"
                                                               : "bpf_clone_redirect";
  std::printf("[ measured ] %s into X with %s XDP on X: XDP saw %llu of %u injected frames\n", name,
              k.generic ? "generic" : "native", static_cast<unsigned long long>(seen), kFrames);
  RecordProperty("xdp_saw_injected", static_cast<int>(seen));
  if (k.method == ReinjectMethod::Mirred || !k.generic) {
    EXPECT_EQ(seen, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Reinject, ReinjectXdpTest,
                         ::testing::Values(XdpCase{ReinjectMethod::Mirred, true}, XdpCase{ReinjectMethod::Mirred, false},
                                           XdpCase{ReinjectMethod::BpfRedirect, true},
                                           XdpCase{ReinjectMethod::BpfRedirect, false},
                                           XdpCase{ReinjectMethod::BpfCloneRedirect, true},
                                           XdpCase{ReinjectMethod::BpfCloneRedirect, false}),
                         [](const ::testing::TestParamInfo<XdpCase>& i) {
                           std::string m = i.param.method == ReinjectMethod::Mirred        ? "Mirred"
                                           : i.param.method == ReinjectMethod::BpfRedirect ? "BpfRedirect"
                                                                                           : "BpfCloneRedirect";
                           return m + (i.param.generic ? "Generic" : "Native");
                         });

// ---------------------------------------------------------------------------
// Lifetime: one pair per namespace, fixed names.

TEST_F(ReinjectTest, SecondCreateReplacesTheFirstAndEachDestructorRemovesOnlyItsOwn) {
  auto first = create_in_x();
  XFP_ASSERT_OK(first);
  const int first_a = (*first)->ifindex_a();
  auto second = create_in_x();
  XFP_ASSERT_OK(second);
  EXPECT_NE((*second)->ifindex_a(), first_a);
  auto now = test::query_link(*x_ns_, "xfpinj0");
  XFP_ASSERT_OK(now);
  EXPECT_EQ(now->ifindex, (*second)->ifindex_a());
  EXPECT_TRUE(now->up);
  EXPECT_EQ(now->mtu, 65535u);

  // The replaced object goes; the pair that replaced it stays and works.
  first->reset();
  auto still = test::query_link(*x_ns_, "xfpinj1");
  XFP_ASSERT_OK(still);
  EXPECT_EQ(still->ifindex, (*second)->ifindex_b());
  XFP_ASSERT_OK((*second)->add_target(x_ifindex()));
  auto rx = PacketSocket::open(*x_ns_, x_if());
  XFP_ASSERT_OK(rx);
  auto tx = PacketSocket::open(*x_ns_, "xfpinj0");
  XFP_ASSERT_OK(tx);
  const Frame f = FrameBuilder().dst(kXMac).src(kPeerMac).marker(7).build();
  XFP_ASSERT_OK(tx->send_frame(with_trailer(f, x_ifindex())));
  auto got = rx->receive(kArriveWindow, has_marker, 1);
  XFP_ASSERT_OK(got);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(got->front(), f);

  second->reset();
  EXPECT_FALSE(test::query_link(*x_ns_, "xfpinj0").ok()) << "end A outlived its ReinjectLink";
  EXPECT_FALSE(test::query_link(*x_ns_, "xfpinj1").ok()) << "end B outlived its ReinjectLink";
}

// A killed daemon leaves its pair (and B's filters) behind: create() starts over.
TEST_F(ReinjectTest, ReplacesAStalePairLeftInTheNamespace) {
  XFP_ASSERT_OK(test::run_in_netns(*x_ns_, {"/usr/sbin/ip", "link", "add", "xfpinj0", "address", "02:00:00:00:5a:01",
                                           "type", "veth", "peer", "name", "xfpinj1", "address", "02:00:00:00:5a:02"}));
  auto stale = test::query_link(*x_ns_, "xfpinj0");
  XFP_ASSERT_OK(stale);
  start();
  ASSERT_FALSE(HasFatalFailure());
  auto now = test::query_link(*x_ns_, "xfpinj0");
  XFP_ASSERT_OK(now);
  EXPECT_NE(now->ifindex, stale->ifindex);
  const Frame f = FrameBuilder().dst(kXMac).src(kPeerMac).marker(9).build();
  XFP_ASSERT_OK(tx_->send_frame(with_trailer(f, x_ifindex())));
  auto got = rx_->receive(kArriveWindow, has_marker, 1);
  XFP_ASSERT_OK(got);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(got->front(), f);
}

// The pair keeps quiet: IPv6 off, no ARP, no multicast, no addresses.
TEST_F(ReinjectTest, ThePairCarriesNothingOfItsOwn) {
  start();
  ASSERT_FALSE(HasFatalFailure());
  for (const char* name : {"xfpinj0", "xfpinj1"}) {
    auto sysctl = test::run_in_netns(*x_ns_, {"/usr/bin/cat", std::string("/proc/sys/net/ipv6/conf/") + name + "/disable_ipv6"});
    if (sysctl) {
      EXPECT_EQ(*sysctl, "1\n") << name;
    }
    auto details = test::run_in_netns(*x_ns_, {"/usr/sbin/ip", "-o", "addr", "show", "dev", name});
    XFP_ASSERT_OK(details);
    EXPECT_EQ(details->find("inet"), std::string::npos) << *details;
    auto flags = test::run_in_netns(*x_ns_, {"/usr/sbin/ip", "-o", "link", "show", "dev", name});
    XFP_ASSERT_OK(flags);
    EXPECT_NE(flags->find("NOARP"), std::string::npos) << *flags;
    EXPECT_EQ(flags->find("MULTICAST"), std::string::npos) << *flags;
  }
  // Nothing reached B but what the test sent (zero frames so far).
  std::this_thread::sleep_for(200ms);
  const ReinjectCounters c = link_->counters();
  EXPECT_EQ(c.ok() + c.bad() + c.failed(), 0u);
}

// Throughput through A -> B -> X's ingress with one AF_PACKET sender, for the
// record (printed). A frame that B drops at the trailer check shows what the
// veth hop alone costs.
TEST_F(ReinjectTest, Throughput) {
  start();
  ASSERT_FALSE(HasFatalFailure());
  rx_.reset();  // nobody reads X: the stack frees the frames (unknown EtherType)
  wire_.reset();
  const uint32_t n = 20000;  // enough to see a burst delivered whole; bench/ has the speed figures
  auto run = [&](const Frame& frame, const char* what) {
    rusage r0{}, r1{};
    getrusage(RUSAGE_THREAD, &r0);
    const auto t0 = std::chrono::steady_clock::now();
    for (uint32_t i = 0; i < n; ++i) {
      const Status s = tx_->send_frame(frame);
      if (!s) {
        ADD_FAILURE() << s.error().message;
        return;
      }
    }
    const auto t1 = std::chrono::steady_clock::now();
    getrusage(RUSAGE_THREAD, &r1);
    auto us = [](const timeval& tv) { return tv.tv_sec * 1e6 + tv.tv_usec; };
    const double wall = std::chrono::duration<double>(t1 - t0).count();
    const double cpu_us = (us(r1.ru_utime) - us(r0.ru_utime)) + (us(r1.ru_stime) - us(r0.ru_stime));
    std::printf("[ measured ] %s: %u frames of %zu bytes in %.3f s: %.0f frames/s, sender thread CPU %.2f us/frame\n",
                what, n, frame.size(), wall, n / wall, cpu_us / n);
  };
  const Frame f60 = FrameBuilder().dst(kXMac).src(kPeerMac).marker(1).build();
  const uint64_t ok0 = link_->counters().ok();
  run(with_trailer(f60, x_ifindex()), "inject 60 B into X (mirred)");
  const uint64_t ok1 = link_->counters().ok();
  run(with_trailer(FrameBuilder().dst(kXMac).src(kPeerMac).marker(1).pad_to(1514).build(), x_ifindex()),
      "inject 1514 B into X (mirred)");
  run(with_trailer(f60, x_ifindex(), 0), "60 B dropped at B's trailer check");
  EXPECT_EQ(ok1 - ok0, n) << "every frame must be delivered (the sender runs the receive path itself)";
}

}  // namespace
}  // namespace xfp
