// Redirect records (user/redirect_store.cpp, user/redirect_client.c): the
// state rules, -EALREADY, the bounds, and the seed's buffer rules through the
// C client library against an in-process control server. The redirect
// itself (a frame out of a veth) needs root and a test namespace.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/assert_ok.hpp"
#include "support/frame_builder.hpp"
#include "support/netns.hpp"
#include "support/packet_io.hpp"
#include "support/privileges.hpp"
#include "xfp/control.hpp"
#include "xfp/frame.hpp"
#include "xfp/redirect_client.h"
#include "xfp/redirect_store.hpp"

namespace xfp {
namespace {

using namespace std::chrono_literals;
using test::Frame;
using test::FrameBuilder;
using test::Mac;

constexpr Mac kClientMac{0x02, 0x00, 0x00, 0x00, 0x4d, 0x01};
constexpr Mac kServerMac{0x02, 0x00, 0x00, 0x00, 0x4d, 0x02};
constexpr Mac kProxyMac{0x02, 0x00, 0x00, 0x00, 0x4d, 0x03};

Frame udp(uint16_t sport, const Mac& src = kClientMac, const Mac& dst = kServerMac, uint32_t seq = 0) {
  test::Ipv4Options ip;
  ip.src = {198, 18, 77, 1};
  ip.dst = {198, 18, 77, 2};
  test::UdpOptions u;
  u.src_port = sport;
  u.dst_port = 7777;
  return FrameBuilder().dst(dst).src(src).ipv4(ip).udp(u).marker(seq).build();
}

// The other direction of udp(sport).
Frame reply_to(uint16_t sport) {
  test::Ipv4Options ip;
  ip.src = {198, 18, 77, 2};
  ip.dst = {198, 18, 77, 1};
  test::UdpOptions u;
  u.src_port = 7777;
  u.dst_port = sport;
  return FrameBuilder().dst(kClientMac).src(kServerMac).ipv4(ip).udp(u).build();
}

std::span<const uint8_t> bytes(const Frame& f) { return {f.data(), f.size()}; }
std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// A classify item around a host frame holding a copy of `f`; two references
// like a worker's item (the worker's, and the one an absorber takes over).
struct Item {
  explicit Item(const Frame& f) {
    frame = frame_alloc(static_cast<uint32_t>(f.size()));
    std::memcpy(frame_data(frame), f.data(), f.size());
    frame_ref(frame);
    item.frame = frame;
    item.action = XFP_ACTION_CONTINUE;
  }
  ~Item() {
    // The worker's reference, and the absorber's when nobody took it.
    if (!(item.flags & XFP_CLASSIFY_ABSORB)) frame_free(frame);
    frame_free(frame);
  }
  xfp_frame* frame;
  xfp_classify_item item{};
};

struct Handles {
  explicit Handles(RedirectStore& s) : store(s) {
    EXPECT_EQ(store.create_handle("plugin-a", &a), 0);
    EXPECT_EQ(store.create_handle("plugin-b", &b), 0);
  }
  ~Handles() {
    store.destroy_handle(a);
    store.destroy_handle(b);
  }
  RedirectStore& store;
  xfp_redirect_handle* a = nullptr;
  xfp_redirect_handle* b = nullptr;
};

std::string records_of(std::initializer_list<std::pair<uint64_t, std::string>> list) {
  std::vector<RedirectRecord> v;
  for (const auto& [id, ctx] : list) v.push_back({id, "p", ctx});
  return encode_redirect_records(v);
}

TEST(RedirectStore, StatesFollowTheRecords) {
  RedirectStore store;
  Handles h(store);
  const uint64_t a = store.id_of(h.a), b = store.id_of(h.b);
  ASSERT_NE(a, 0u);
  ASSERT_NE(a, b);
  const Frame f = udp(1000);
  EXPECT_EQ(store.state_of(h.a, bytes(f)), XFP_NOT_REDIRECTED);
  XFP_ASSERT_OK(store.set_records(bytes(f), bytes(records_of({{a, "ctx-A"}}))));
  EXPECT_EQ(store.state_of(h.a, bytes(f)), XFP_REDIRECTED_BY_SELF);
  EXPECT_EQ(store.state_of(h.b, bytes(f)), XFP_REDIRECTED_BY_OTHER);
  XFP_ASSERT_OK(store.set_records(bytes(f), bytes(records_of({{a, "ctx-A"}, {b, "ctx-B"}}))));
  EXPECT_EQ(store.state_of(h.a, bytes(f)), XFP_PREVIOUSLY_REDIRECTED_BY_SELF);
  EXPECT_EQ(store.state_of(h.b, bytes(f)), XFP_REDIRECTED_BY_SELF);
  // Both directions are one flow; the records are the flow's.
  EXPECT_EQ(store.state_of(h.b, bytes(reply_to(1000))), XFP_REDIRECTED_BY_SELF);
  // A handle made later never takes another's records for its own.
  xfp_redirect_handle* c = nullptr;
  ASSERT_EQ(store.create_handle("plugin-c", &c), 0);
  EXPECT_EQ(store.state_of(c, bytes(f)), XFP_REDIRECTED_BY_OTHER);
  store.destroy_handle(c);
  // An empty blob clears them.
  XFP_ASSERT_OK(store.set_records(bytes(f), {}));
  EXPECT_EQ(store.state_of(h.a, bytes(f)), XFP_NOT_REDIRECTED);
}

TEST(RedirectStore, AFlowBackFromAProxyIsNeverRedirectedAgain) {
  RedirectStore store;
  Handles h(store);
  const Frame onward = udp(1001, kProxyMac, kServerMac);
  XFP_ASSERT_OK(store.set_records(bytes(onward), bytes(records_of({{store.id_of(h.a), "ctx-A"}}))));
  Item it(onward);
  EXPECT_EQ(store.redirect_flow(h.a, &it.item, "lo", "x", 1, 0), -EALREADY);
  EXPECT_EQ(it.item.flags, 0) << "the frame stays the caller's";
  EXPECT_EQ(store.stats().refused_again, 1u);
  EXPECT_EQ(store.stats().redirects, 0u);
}

TEST(RedirectStore, ArgumentsAndBounds) {
  RedirectOptions o;
  o.max_flows = 2;
  o.max_records = 3;
  RedirectStore store(o);
  Handles h(store);
  const Frame f = udp(2000);
  Item it(f);
  std::string big(XFP_REDIRECT_CONTEXT_MAX + 1, 'x');
  EXPECT_EQ(store.redirect_flow(h.a, &it.item, "lo", big.data(), static_cast<uint32_t>(big.size()), 0), -EINVAL);
  EXPECT_EQ(store.redirect_flow(h.a, &it.item, "lo", nullptr, 0, 1u << 7), -EINVAL);
  EXPECT_EQ(store.redirect_flow(h.a, &it.item, "lo", nullptr, 0, XFP_REDIRECT_OFFLOAD), -EOPNOTSUPP)
      << "no offloader";
  EXPECT_EQ(store.redirect_flow(h.a, &it.item, "", nullptr, 0, 0), -EINVAL);
  // No such interface: nothing stays behind.
  EXPECT_EQ(store.redirect_flow(h.a, &it.item, "xfp-no-such0", "c", 1, 0), -ENODEV);
  EXPECT_EQ(it.item.flags, 0);
  EXPECT_EQ(store.state_of(h.a, bytes(f)), XFP_NOT_REDIRECTED);
  EXPECT_EQ(store.stats().send_errors, 1u);
  // A frame without a flow.
  Frame runt = udp(2000);
  runt.resize(10);
  Item r(runt);
  EXPECT_EQ(store.redirect_flow(h.a, &r.item, "lo", nullptr, 0, 0), -ENOENT);
  // A full chain of records: -ENOSPC, checked before anything is sent.
  XFP_ASSERT_OK(store.set_records(bytes(f), bytes(records_of({{9001, "1"}, {9002, "2"}, {9003, "3"}}))));
  EXPECT_EQ(store.redirect_flow(h.a, &it.item, "lo", nullptr, 0, 0), -ENOSPC);
  // More records than the bound, or a broken blob: refused.
  auto s = store.set_records(bytes(f), bytes(records_of({{1, ""}, {2, ""}, {3, ""}, {4, ""}})));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, EINVAL);
  std::string broken = records_of({{1, "abc"}});
  broken.pop_back();
  EXPECT_FALSE(store.set_records(bytes(f), bytes(broken)).ok());
  EXPECT_FALSE(store.set_records(bytes(f), bytes(std::string("nonsense"))).ok());
  // max_flows 2: the least recently used flow goes.
  const Frame f2 = udp(2002), f3 = udp(2003);
  XFP_ASSERT_OK(store.set_records(bytes(f2), bytes(records_of({{7, "b"}}))));
  EXPECT_EQ(store.state_of(h.a, bytes(f)), XFP_REDIRECTED_BY_OTHER);  // f used again: f2 is the oldest
  XFP_ASSERT_OK(store.set_records(bytes(f3), bytes(records_of({{7, "c"}}))));
  EXPECT_EQ(store.stats().flows, 2u);
  EXPECT_EQ(store.stats().evicted, 1u);
  EXPECT_EQ(store.state_of(h.a, bytes(f2)), XFP_NOT_REDIRECTED);
  EXPECT_EQ(store.state_of(h.a, bytes(f)), XFP_REDIRECTED_BY_OTHER);
}

TEST(RedirectStore, RecordsExpireWhenIdle) {
  RedirectOptions o;
  o.idle_timeout_ns = 50'000'000;
  RedirectStore store(o);
  Handles h(store);
  const Frame f = udp(3000);
  XFP_ASSERT_OK(store.set_records(bytes(f), bytes(records_of({{5, "x"}}))));
  EXPECT_EQ(store.state_of(h.a, bytes(f)), XFP_REDIRECTED_BY_OTHER);
  std::this_thread::sleep_for(120ms);
  auto q = store.query(bytes(f), RedirectStore::What::Records, 0);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, ENOENT);
  EXPECT_EQ(store.stats().expired, 1u);
}

TEST(RedirectStore, DestroyAllOfAPluginKeepsTheRecords) {
  RedirectStore store;
  xfp_redirect_handle *a = nullptr, *b = nullptr;
  ASSERT_EQ(store.create_handle("gone", &a), 0);
  ASSERT_EQ(store.create_handle("stays", &b), 0);
  const uint64_t ida = store.id_of(a);
  const Frame f = udp(3100);
  XFP_ASSERT_OK(store.set_records(bytes(f), bytes(records_of({{ida, "x"}}))));
  store.destroy_all_of("gone");
  EXPECT_EQ(store.stats().handles, 1u);
  EXPECT_EQ(store.id_of(a), 0u);
  EXPECT_EQ(store.state_of(b, bytes(f)), XFP_REDIRECTED_BY_OTHER);
  store.destroy_handle(b);
}

// ---- the client library against an in-process control server ------------------

class ControlServer {
 public:
  explicit ControlServer(RedirectStore& store) : store_(store) {
    char tmpl[] = "/tmp/xfp-rd-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/xfp.sock";
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    stop_ = ::eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this] { serve(); });
  }
  ~ControlServer() {
    uint64_t one = 1;
    (void)!::write(stop_, &one, sizeof one);
    thread_.join();
    ::close(fd_);
    ::close(stop_);
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  const char* path() const { return path_.c_str(); }

 private:
  void serve() {
    for (;;) {
      pollfd p[2] = {{fd_, POLLIN, 0}, {stop_, POLLIN, 0}};
      if (::poll(p, 2, -1) < 0 || (p[1].revents & POLLIN)) return;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      while (auto req = control::recv_message(c, 2000)) {
        auto r = redirect_request(store_, *req);
        if (!control::send_message(c, r ? control::ok_reply(*r) : control::error_reply(r.error()), 2000).ok()) break;
      }
      ::close(c);
    }
  }
  RedirectStore& store_;
  std::string dir_, path_;
  int fd_ = -1, stop_ = -1;
  std::thread thread_;
};

TEST(RedirectClient, BufferRulesForRecordsAndContext) {
  RedirectStore store;
  ControlServer server(store);
  const Frame f = udp(4000);
  const std::string blob = records_of({{11, "ctx-A"}, {12, "ctx-B"}});
  XFP_ASSERT_OK(store.set_records(bytes(f), bytes(blob)));

  size_t needed = 0;
  // Size 0: success and the size needed.
  EXPECT_EQ(xfp_redirect_query_records(server.path(), f.data(), f.size(), nullptr, 0, &needed), 0);
  EXPECT_EQ(needed, blob.size());
  // Too small: insufficient buffer, and the size needed.
  std::vector<uint8_t> buf(blob.size() - 1, 0xee);
  needed = 0;
  EXPECT_EQ(xfp_redirect_query_records(server.path(), f.data(), f.size(), buf.data(), buf.size(), &needed), -ENOBUFS);
  EXPECT_EQ(needed, blob.size());
  EXPECT_EQ(buf[0], 0xee) << "nothing copied";
  // Exact: the bytes.
  buf.assign(blob.size(), 0);
  EXPECT_EQ(xfp_redirect_query_records(server.path(), f.data(), f.size(), buf.data(), buf.size(), &needed), 0);
  EXPECT_EQ(std::string(buf.begin(), buf.end()), blob);
  // The context is the latest record's.
  char ctx[16] = {};
  EXPECT_EQ(xfp_redirect_query_context(server.path(), f.data(), f.size(), nullptr, 0, &needed), 0);
  EXPECT_EQ(needed, 5u);
  EXPECT_EQ(xfp_redirect_query_context(server.path(), f.data(), f.size(), ctx, 4, &needed), -ENOBUFS);
  EXPECT_EQ(xfp_redirect_query_context(server.path(), f.data(), f.size(), ctx, sizeof ctx, &needed), 0);
  EXPECT_EQ(std::string(ctx, needed), "ctx-B");

  // Set on the onward flow; the same bytes come back from it.
  const Frame onward = udp(4000, kProxyMac, kServerMac);
  EXPECT_EQ(xfp_redirect_set_records(server.path(), onward.data(), onward.size(), buf.data(), buf.size()), 0);
  std::vector<uint8_t> again(blob.size());
  EXPECT_EQ(xfp_redirect_query_records(server.path(), onward.data(), onward.size(), again.data(), again.size(),
                                       &needed),
            0);
  EXPECT_EQ(again, buf);
}

TEST(RedirectClient, Errors) {
  RedirectStore store;
  ControlServer server(store);
  const Frame f = udp(4100);
  size_t needed = 7;
  char buf[64];
  EXPECT_EQ(xfp_redirect_query_records(server.path(), f.data(), f.size(), buf, sizeof buf, &needed), -ENOENT)
      << "no records on the flow";
  EXPECT_EQ(xfp_redirect_query_records(server.path(), f.data(), 10, buf, sizeof buf, &needed), -EINVAL)
      << "a frame without a flow";
  EXPECT_EQ(xfp_redirect_query_records(server.path(), f.data(), f.size(), nullptr, 8, &needed), -EINVAL);
  EXPECT_EQ(xfp_redirect_set_records(server.path(), f.data(), f.size(), "garbage!", 8), -EINVAL)
      << "the daemon checks the blob";
  EXPECT_EQ(xfp_redirect_query_records("/tmp/xfp-rd-no-such-socket", f.data(), f.size(), buf, sizeof buf, &needed),
            -ENOENT);
}

// ---- the redirect itself: a frame out of a veth (root) -------------------------

TEST(RedirectStore, RedirectSendsTheFrameOutAndLaterFramesOfTheFlowFollow) {
  XFP_REQUIRE_ROOT();
  auto ns = test::NetNs::create();
  XFP_ASSERT_OK(ns);
  auto pair = test::VethPair::create(*ns, *ns);
  XFP_ASSERT_OK(pair);
  auto rx = test::PacketSocket::open(*ns, pair->b().name);
  XFP_ASSERT_OK(rx);
  auto inside = test::ScopedNetnsEnter::enter(*ns);
  XFP_ASSERT_OK(inside);
  RedirectStore store;
  Handles h(store);
  const Frame f1 = udp(5000, kClientMac, kServerMac, 1), f2 = udp(5000, kClientMac, kServerMac, 2);
  {
    Item it(f1);
    EXPECT_EQ(store.redirect_flow(h.a, &it.item, pair->a().name.c_str(), "ctx-A", 5, 0), 0);
    EXPECT_TRUE(it.item.flags & XFP_CLASSIFY_ABSORB);
  }
  {
    Item it(f2);
    EXPECT_EQ(store.redirect_flow(h.a, &it.item, pair->a().name.c_str(), "ctx-A", 5, 0), 0)
        << "a later frame of the flow it redirected goes the same way";
    EXPECT_TRUE(it.item.flags & XFP_CLASSIFY_ABSORB);
  }
  auto got = rx->receive(2000ms, [](std::span<const uint8_t> b) { return test::has_marker(b); }, 2);
  XFP_ASSERT_OK(got);
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0], f1) << "byte for byte";
  EXPECT_EQ((*got)[1], f2);
  EXPECT_EQ(store.state_of(h.a, bytes(f1)), XFP_REDIRECTED_BY_SELF);
  EXPECT_EQ(store.state_of(h.b, bytes(f1)), XFP_REDIRECTED_BY_OTHER);
  auto q = store.query(bytes(f1), RedirectStore::What::Context, SIZE_MAX);
  XFP_ASSERT_OK(q);
  EXPECT_EQ(q->data, "ctx-A");
  EXPECT_EQ(store.stats().redirects, 2u);
  auto blob = store.query(bytes(f1), RedirectStore::What::Records, SIZE_MAX);
  XFP_ASSERT_OK(blob);
  auto decoded = decode_redirect_records(bytes(blob->data), 8);
  XFP_ASSERT_OK(decoded);
  ASSERT_EQ(decoded->size(), 1u) << "one record for the flow, not one per frame";
  EXPECT_EQ((*decoded)[0].plugin, "plugin-a");

  // XFP_REDIRECT_OFFLOAD: the kernel entry is for the key WITH the
  // attachment, at the item's layer, to the interface's ifindex.
  xfp_flow_key offloaded{};
  uint8_t offloaded_layer = 0xff;
  uint32_t offloaded_ifindex = 0;
  store.set_offloader([&](const xfp_flow_key& k, uint8_t layer, uint32_t ifindex) {
    offloaded = k;
    offloaded_layer = layer;
    offloaded_ifindex = ifindex;
    return 0;
  });
  const Frame f3 = udp(5001, kClientMac, kServerMac, 3);
  xfp_metadata meta{};
  meta.layer = XFP_LAYER_INBOUND;
  meta.iface = 7;
  Item it(f3);
  it.item.meta = &meta;
  EXPECT_EQ(store.redirect_flow(h.b, &it.item, pair->a().name.c_str(), nullptr, 0, XFP_REDIRECT_OFFLOAD), 0);
  EXPECT_EQ(offloaded.iface, 7u);
  EXPECT_EQ(offloaded.port_a + offloaded.port_b, 5001 + 7777);
  EXPECT_EQ(offloaded_layer, XFP_LAYER_INBOUND);
  EXPECT_EQ(offloaded_ifindex, static_cast<uint32_t>(pair->a().ifindex));
  EXPECT_EQ(store.stats().offloads, 1u);
}

}  // namespace
}  // namespace xfp
