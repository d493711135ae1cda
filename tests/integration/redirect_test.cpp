// Redirect records end to end (issue 4 item 4): two cooperating inspection
// proxies from two redirectors inspect one flow, without a loop, and the
// traffic reaches its destination.
//
//   C (client) --veth-- X (xfp on x-c, x-p1, x-p2, inbound) --veth-- P1 (proxy 1)
//                                                          \--veth-- P2 (proxy 2)
//
// The redirect probe (tests/integration/redirect_plugin) has two redirectors:
// A sends NOT_REDIRECTED flows to x-p1 (context "ctx-A"), B sends flows A
// redirected (REDIRECTED_BY_OTHER) to x-p2 ("ctx-B"); each permits a flow it
// finds BY_SELF or PREVIOUSLY_BY_SELF. The proxies are test threads with
// AF_PACKET sockets in P1 and P2: each takes the frame, queries the records
// and the context of its flow through libxfp-client on the daemon's control
// socket (served here in-process by control::Server), rewrites the MACs
// (source its own, destination X's), sets the records on that onward flow
// and sends it back to X. The UDP datagram from C must reach a UDP socket in
// X, each proxy must see it exactly once, and each redirector redirect once.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "integration/redirect_plugin/redirect_probe.h"
#include "support/assert_ok.hpp"
#include "support/frame_builder.hpp"
#include "support/netns.hpp"
#include "support/packet_io.hpp"
#include "support/privileges.hpp"
#include "xfp/callout_runtime.hpp"
#include "xfp/compiler.hpp"
#include "xfp/control.hpp"
#include "xfp/datapath.hpp"
#include "xfp/filter_set.hpp"
#include "xfp/policy_snapshot.hpp"
#include "xfp/redirect_client.h"

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

constexpr Mac kClientMac{0x02, 0x00, 0x00, 0x00, 0x7c, 0x01};
constexpr Mac kXcMac{0x02, 0x00, 0x00, 0x00, 0x7c, 0x02};
constexpr Mac kP1Mac{0x02, 0x00, 0x00, 0x00, 0x7c, 0x11};
constexpr Mac kXp1Mac{0x02, 0x00, 0x00, 0x00, 0x7c, 0x12};
constexpr Mac kP2Mac{0x02, 0x00, 0x00, 0x00, 0x7c, 0x21};
constexpr Mac kXp2Mac{0x02, 0x00, 0x00, 0x00, 0x7c, 0x22};
constexpr uint16_t kPort = 9977;

const std::string kRedirectProbe = XFP_TEST_REDIRECT_PROBE_PATH;

class RedirectProbe {
 public:
  RedirectProbe() : handle_(::dlopen(kRedirectProbe.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    EXPECT_NE(handle_, nullptr) << ::dlerror();
  }
  ~RedirectProbe() {
    if (handle_) ::dlclose(handle_);
  }
  rdp_stats stats() const {
    rdp_stats s{};
    if (auto f = handle_ ? reinterpret_cast<rdp_stats_fn>(::dlsym(handle_, "rdp_stats")) : nullptr) f(&s);
    return s;
  }

 private:
  void* handle_;
};

Filter callout_filter(const std::string& name, const std::string& key, uint64_t weight) {
  Filter f;
  f.name = name;
  f.layer = Layer::Inbound;
  f.action = Action::CalloutTerminating;
  f.callout = key;
  f.weight = weight;
  f.conditions = {Condition{Field::EtherType, Match::Equal, 0x0800, 0, ~0ull}};
  return f;
}

// What a proxy thread saw and did.
struct ProxyResult {
  size_t frames = 0;         // marked frames received (must be 1)
  int size_rc = 1, records_rc = 1, context_rc = 1, set_rc = 1;
  size_t needed = 0;
  std::string records, context;
  Status sent = Ok{};
};

class RedirectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    for (auto* ns : {&c_, &x_, &p1_, &p2_}) {
      auto n = NetNs::create();
      XFP_ASSERT_OK(n);
      ns->emplace(std::move(n).value());
    }
    auto link = [&](std::optional<VethPair>& pair, std::optional<NetNs>& far, Mac far_mac, Mac x_mac,
                    std::optional<std::string> far_ip, std::optional<std::string> x_ip) {
      VethOptions o;
      o.mac_a = far_mac;
      o.mac_b = x_mac;
      o.ipv4_a = far_ip;
      o.ipv4_b = x_ip;
      auto p = VethPair::create(*far, *x_, o);
      XFP_ASSERT_OK(p);
      pair.emplace(std::move(p).value());
    };
    link(xc_, c_, kClientMac, kXcMac, "198.18.124.1/24", "198.18.124.2/24");
    link(xp1_, p1_, kP1Mac, kXp1Mac, std::nullopt, std::nullopt);
    link(xp2_, p2_, kP2Mac, kXp2Mac, std::nullopt, std::nullopt);
    if (HasFatalFailure()) return;
    // The datagram comes back to X on x-p2, from C's address routed via x-c.
    for (const std::string& dev : {std::string("all"), std::string("default"), xc_->b().name, xp1_->b().name,
                                   xp2_->b().name})
      XFP_ASSERT_OK(test::run_in_netns(*x_, {"sysctl", "-qw", "net.ipv4.conf." + dev + ".rp_filter=0"}));

    auto inside = ScopedNetnsEnter::enter(*x_);
    XFP_ASSERT_OK(inside);
    auto dp = Datapath::open();
    XFP_ASSERT_OK(dp);
    dp_ = std::move(dp).value();
    runtime_ = std::make_unique<CalloutRuntime>(*dp_);
    AttachOptions ao;
    ao.mode = XdpMode::Generic;
    ao.outbound = false;
    for (const auto* pair : {&xc_, &xp1_, &xp2_}) XFP_ASSERT_OK(dp_->attach((*pair)->b().name, ao));
    for (const Attachment& a : dp_->attachments()) XFP_ASSERT_OK(runtime_->attach(a));
    auto r = runtime_->host().load(kRedirectProbe, "a=" + xp1_->b().name + ",b=" + xp2_->b().name);
    ASSERT_TRUE(r.ok()) << r.error().message;
    FilterSet set;
    ASSERT_TRUE(set.add_filter(callout_filter("redirector-b", RDP_KEY_B, 20)).ok());
    ASSERT_TRUE(set.add_filter(callout_filter("redirector-a", RDP_KEY_A, 10)).ok());
    auto compiled = compile(set, {}, runtime_->host().id_fn());
    XFP_ASSERT_OK(compiled);
    auto snap = PolicySnapshot::create(set, *compiled, dp_->generation() + 1);
    XFP_ASSERT_OK(snap);
    runtime_->prepare(**snap);
    XFP_ASSERT_OK(dp_->install(*compiled));
    runtime_->publish(std::move(snap).value());

    // The daemon's control socket, for the proxies' client library.
    char tmpl[] = "/tmp/xfp-rd-int-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    control::Server::Options so;
    so.path = dir_ + "/xfp.sock";
    auto server = control::Server::listen(so);
    XFP_ASSERT_OK(server);
    server_ = std::move(server).value();
    stop_ = ::eventfd(0, EFD_CLOEXEC);
    serving_ = std::thread([this] {
      (void)server_->serve(
          [this](const nlohmann::json& req) {
            auto r = redirect_request(runtime_->redirects(), req);
            return r ? control::ok_reply(*r) : control::error_reply(r.error());
          },
          stop_);
    });
  }

  void TearDown() override {
    if (serving_.joinable()) {
      uint64_t one = 1;
      (void)!::write(stop_, &one, sizeof one);
      serving_.join();
    }
    server_.reset();
    if (stop_ >= 0) ::close(stop_);
    if (!dir_.empty()) ::rmdir(dir_.c_str());
    if (!x_) return;
    auto inside = ScopedNetnsEnter::enter(*x_);
    runtime_.reset();
    if (dp_)
      for (const Attachment& a : dp_->attachments()) (void)dp_->detach(a.ifname);
    dp_.reset();
  }

  // A proxy: the first marked frame on its end, queried, rewritten, its
  // records set on the onward flow, sent back to X; then it keeps watching
  // (a second copy would mean a loop).
  void proxy(NetNs& ns, const VethPair& pair, Mac own, Mac x_mac, ProxyResult& out) {
    auto sock = PacketSocket::open(ns, pair.a().name);
    if (!sock) {
      out.sent = std::move(sock).error();
      return;
    }
    ready_.fetch_add(1);
    auto got = sock->receive(5000ms, [](std::span<const uint8_t> b) { return test::has_marker(b); }, 1);
    if (!got || got->empty()) {
      out.sent = got ? make_error(ETIMEDOUT, "no frame reached the proxy") : std::move(got).error();
      return;
    }
    out.frames = got->size();
    Frame f = got->front();
    const char* path = server_->path().c_str();
    out.size_rc = xfp_redirect_query_records(path, f.data(), f.size(), nullptr, 0, &out.needed);
    std::vector<uint8_t> records(out.needed);
    size_t n = 0;
    out.records_rc = xfp_redirect_query_records(path, f.data(), f.size(), records.data(), records.size(), &n);
    out.records.assign(records.begin(), records.begin() + static_cast<long>(n));
    char ctx[XFP_REDIRECT_CONTEXT_MAX];
    out.context_rc = xfp_redirect_query_context(path, f.data(), f.size(), ctx, sizeof ctx, &n);
    if (out.context_rc == 0) out.context.assign(ctx, n);
    std::memcpy(f.data(), x_mac.data(), 6);
    std::memcpy(f.data() + 6, own.data(), 6);
    out.set_rc = xfp_redirect_set_records(path, f.data(), f.size(), records.data(), records.size());
    out.sent = sock->send_frame(f);
    auto more = sock->receive(700ms, [](std::span<const uint8_t> b) { return test::has_marker(b); });
    if (more) out.frames += more->size();
  }

  std::optional<NetNs> c_, x_, p1_, p2_;
  std::optional<VethPair> xc_, xp1_, xp2_;
  std::unique_ptr<Datapath> dp_;
  std::unique_ptr<CalloutRuntime> runtime_;
  std::string dir_;
  std::unique_ptr<control::Server> server_;
  int stop_ = -1;
  std::thread serving_;
  std::atomic<int> ready_{0};
};

TEST_F(RedirectTest, TwoProxiesFromTwoRedirectorsInspectTheFlowOnceAndItArrives) {
  RedirectProbe probe;
  // The destination: a UDP socket in X on x-c's address.
  int udp_fd = -1;
  {
    auto inside = ScopedNetnsEnter::enter(*x_);
    XFP_ASSERT_OK(inside);
    udp_fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(udp_fd, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(kPort);
    sin.sin_addr.s_addr = htonl(0xc6127c02);  // 198.18.124.2
    ASSERT_EQ(::bind(udp_fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0) << std::strerror(errno);
    timeval tv{3, 0};
    ::setsockopt(udp_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ProxyResult r1, r2;
  std::thread t1([&] { proxy(*p1_, *xp1_, kP1Mac, kXp1Mac, r1); });
  std::thread t2([&] { proxy(*p2_, *xp2_, kP2Mac, kXp2Mac, r2); });
  while (ready_.load() < 2) std::this_thread::sleep_for(5ms);

  test::Ipv4Options ip;
  ip.src = {198, 18, 124, 1};
  ip.dst = {198, 18, 124, 2};
  test::UdpOptions u;
  u.src_port = 40000;
  u.dst_port = kPort;
  const Frame datagram = FrameBuilder().dst(kXcMac).src(kClientMac).ipv4(ip).udp(u).payload("inspect me").marker(1).build();
  auto client = PacketSocket::open(*c_, xc_->a().name);
  XFP_ASSERT_OK(client);
  XFP_ASSERT_OK(client->send_frame(datagram));

  char buf[256];
  const ssize_t got = ::recv(udp_fd, buf, sizeof buf, 0);
  const int recv_errno = errno;
  ::close(udp_fd);
  t1.join();
  t2.join();

  const rdp_stats s = probe.stats();
  ASSERT_GT(got, 0) << "the datagram did not arrive: " << std::strerror(recv_errno) << "; proxy 1 " << r1.sent.ok()
                    << " frames " << r1.frames << ", proxy 2 " << r2.sent.ok() << " frames " << r2.frames
                    << "; A redirects " << s.redirects[0] << " errors " << s.errors[0] << " (" << s.last_error[0]
                    << "), B redirects " << s.redirects[1] << " errors " << s.errors[1] << " (" << s.last_error[1]
                    << ")";
  EXPECT_EQ(std::string(buf, 10), "inspect me");

  for (ProxyResult* r : {&r1, &r2}) {
    XFP_EXPECT_OK(r->sent);
    EXPECT_EQ(r->frames, 1u) << "each proxy sees the datagram exactly once: no loop";
    EXPECT_EQ(r->size_rc, 0);
    EXPECT_GT(r->needed, 0u);
    EXPECT_EQ(r->records_rc, 0);
    EXPECT_EQ(r->records.size(), r->needed);
    EXPECT_EQ(r->context_rc, 0);
    EXPECT_EQ(r->set_rc, 0);
  }
  EXPECT_EQ(r1.context, RDP_CONTEXT_A) << "P1 was sent the flow by A";
  EXPECT_EQ(r2.context, RDP_CONTEXT_B) << "P2 was sent the flow by B";
  auto decoded1 = decode_redirect_records({reinterpret_cast<const uint8_t*>(r1.records.data()), r1.records.size()}, 8);
  auto decoded2 = decode_redirect_records({reinterpret_cast<const uint8_t*>(r2.records.data()), r2.records.size()}, 8);
  XFP_ASSERT_OK(decoded1);
  XFP_ASSERT_OK(decoded2);
  EXPECT_EQ(decoded1->size(), 1u);
  ASSERT_EQ(decoded2->size(), 2u) << "P2 sees A's record, then B's";
  EXPECT_EQ((*decoded2)[0].context, RDP_CONTEXT_A);
  EXPECT_EQ((*decoded2)[1].context, RDP_CONTEXT_B);

  EXPECT_EQ(s.redirects[0], 1u);
  EXPECT_EQ(s.redirects[1], 1u);
  EXPECT_EQ(s.errors[0] + s.errors[1], 0u) << s.last_error[0] << " " << s.last_error[1];
  EXPECT_EQ(s.states[1][XFP_REDIRECTED_BY_SELF], 1u) << "B permits P2's onward flow";
  EXPECT_EQ(s.states[0][XFP_NOT_REDIRECTED], 1u);
  const RedirectStats rs = runtime_->redirects().stats();
  EXPECT_EQ(rs.redirects, 2u);
  EXPECT_EQ(rs.sets, 2u);
  EXPECT_EQ(rs.flows, 3u) << "C's flow, P1's onward flow, P2's onward flow";
}

}  // namespace
}  // namespace xfp
