// Message ports: the server (user/message_port.cpp) against libxfp-client
// (user/port_client.c) over SEQPACKET sockets in a temporary directory. Every
// SendStatus and timeout rule, disconnects at each step, the connection
// limit, refusals, malformed frames, a client that never reads, many clients,
// and credentials (as root: a forked client as nobody).
#include "xfp/message_port.hpp"

#include <gtest/gtest.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "xfp/port_client.h"

namespace xfp::port {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Conn {
  xfp_port_conn* c = nullptr;
  Conn() = default;
  explicit Conn(xfp_port_conn* p) : c(p) {}
  Conn(Conn&& o) noexcept : c(o.c) { o.c = nullptr; }
  ~Conn() { xfp_port_close(c); }
  void close() {
    xfp_port_close(c);
    c = nullptr;
  }
  ClientId id() const { return xfp_port_client_id(c); }
};

// Polls cond every millisecond for up to 2 s.
template <typename F>
bool eventually(F cond) {
  auto end = Clock::now() + 2s;
  while (Clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return cond();
}

class MessagePortTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/xfp-port-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void start(Options o = {}, Callbacks cb = {}) {
    o.dir = dir_;
    if (o.name.empty()) o.name = "p";
    auto s = MessagePortServer::create(o, std::move(cb));
    ASSERT_TRUE(s.ok()) << s.error().message;
    server_ = std::move(*s);
  }

  Conn connect(const std::string& context = "", int* err = nullptr, std::string* reason = nullptr) {
    xfp_port_conn* c = nullptr;
    char why[256];
    int r = xfp_port_connect_ex(server_->path().c_str(), context.data(), context.size(), &c, why, sizeof why);
    if (err) *err = r;
    if (reason) *reason = why;
    if (!err) {
      EXPECT_EQ(r, 0) << why;
    }
    return Conn(c);
  }

  // A client thread that answers `n` messages with `reply` (or an echo).
  static std::thread answerer(xfp_port_conn* c, int n, std::optional<std::string> reply = std::nullopt) {
    return std::thread([c, n, reply] {
      std::vector<char> buf(XFP_PORT_MAX_MESSAGE);
      for (int i = 0; i < n; ++i) {
        size_t len = 0;
        uint64_t id = 0;
        uint32_t flags = 0;
        if (xfp_port_get_message(c, buf.data(), buf.size(), &len, &id, &flags, 2000) != 0) return;
        if (!(flags & XFP_PORT_F_REPLY_EXPECTED)) continue;
        if (reply)
          xfp_port_reply(c, id, reply->data(), reply->size());
        else
          xfp_port_reply(c, id, buf.data(), len);
      }
    });
  }

  std::string dir_;
  std::unique_ptr<MessagePortServer> server_;
};

TEST_F(MessagePortTest, DeliveredAtOnceWhenAGetIsOutstanding) {
  start();
  Conn c = connect();
  ASSERT_EQ(xfp_port_post_get(c.c), 0);
  // With an already expired deadline a send succeeds only if it needs no
  // wait: once the server has seen the GET, it does.
  SendStatus s = SendStatus::kTimeout;
  ASSERT_TRUE(eventually([&] {
    s = server_->send(c.id(), "hi", 2, Deadline(-1ns));
    return s != SendStatus::kTimeout;
  }));
  EXPECT_EQ(s, SendStatus::kSuccess);
  char buf[16];
  size_t len = 0;
  uint32_t flags = 99;
  ASSERT_TRUE(eventually([&] { return xfp_port_read_message(c.c, buf, sizeof buf, &len, nullptr, &flags) == 0; }));
  EXPECT_EQ(std::string(buf, len), "hi");
  EXPECT_EQ(flags, 0u);
  EXPECT_EQ(server_->stats().messages, 1u);
}

TEST_F(MessagePortTest, WithoutTimeoutTheSenderWaitsForAGet) {
  start();
  Conn c = connect();
  auto f = std::async(std::launch::async, [&] { return server_->send(c.id(), "abc", 3); });
  EXPECT_EQ(f.wait_for(50ms), std::future_status::timeout);  // no GET yet
  char buf[16];
  size_t len = 0;
  ASSERT_EQ(xfp_port_get_message(c.c, buf, sizeof buf, &len, nullptr, nullptr, 1000), 0);
  EXPECT_EQ(std::string(buf, len), "abc");
  EXPECT_EQ(f.get(), SendStatus::kSuccess);
  // A zero duration also means "without end".
  auto g = std::async(std::launch::async, [&] { return server_->send(c.id(), "d", 1, Deadline(0ms)); });
  EXPECT_EQ(g.wait_for(30ms), std::future_status::timeout);
  ASSERT_EQ(xfp_port_get_message(c.c, buf, sizeof buf, &len, nullptr, nullptr, 1000), 0);
  EXPECT_EQ(g.get(), SendStatus::kSuccess);
}

TEST_F(MessagePortTest, RelativeAndAbsoluteTimeoutsDeliverNothing) {
  start();
  Conn c = connect();
  auto t0 = Clock::now();
  EXPECT_EQ(server_->send(c.id(), "a", 1, Deadline(30ms)), SendStatus::kTimeout);
  EXPECT_GE(Clock::now() - t0, 30ms);
  EXPECT_TRUE(is_success(SendStatus::kTimeout));
  t0 = Clock::now();
  EXPECT_EQ(server_->send(c.id(), "b", 1, Deadline(Clock::now() + 20ms)), SendStatus::kTimeout);
  EXPECT_GE(Clock::now() - t0, 20ms);
  EXPECT_EQ(server_->send(c.id(), "c", 1, Deadline(std::chrono::system_clock::now() + 20ms)), SendStatus::kTimeout);
  char buf[8];
  size_t len = 0;
  // Nothing was delivered: the client's get times out, and withdraws its credit.
  EXPECT_EQ(xfp_port_get_message(c.c, buf, sizeof buf, &len, nullptr, nullptr, 20), -ETIMEDOUT);
  EXPECT_EQ(server_->send(c.id(), "d", 1, Deadline(-1ns)), SendStatus::kTimeout);
  EXPECT_EQ(server_->stats().messages, 0u);
  // A get with timeout 0 takes a message a sender is waiting to deliver.
  auto f = std::async(std::launch::async, [&] { return server_->send(c.id(), "e", 1, Deadline(2s)); });
  ASSERT_TRUE(eventually([&] { return xfp_port_get_message(c.c, buf, sizeof buf, &len, nullptr, nullptr, 0) == 0; }));
  EXPECT_EQ(std::string(buf, len), "e");
  EXPECT_EQ(f.get(), SendStatus::kSuccess);
}

TEST_F(MessagePortTest, ReplyAndBufferOverflow) {
  start();
  Conn c = connect();
  const std::string reply(100, 'r');
  std::thread t = answerer(c.c, 3, reply);
  char buf[200];
  size_t len = 0;
  EXPECT_EQ(server_->send(c.id(), "q", 1, buf, sizeof buf, &len, Deadline(2s)), SendStatus::kSuccess);
  EXPECT_EQ(len, 100u);
  EXPECT_EQ(server_->send(c.id(), "q", 1, buf, 100, &len, Deadline(2s)), SendStatus::kSuccess);
  std::memset(buf, 0, sizeof buf);
  EXPECT_EQ(server_->send(c.id(), "q", 1, buf, 40, &len, Deadline(2s)), SendStatus::kBufferOverflow);
  EXPECT_EQ(len, 100u);  // the full size
  EXPECT_EQ(std::string(buf, 40), reply.substr(0, 40));
  EXPECT_EQ(buf[40], 0);  // truncated to the buffer
  t.join();
  EXPECT_EQ(server_->stats().replies, 3u);
}

TEST_F(MessagePortTest, ReplyAfterTheTimeoutIsDroppedAndCounted) {
  start();
  Conn c = connect();
  std::thread t([&] {
    char buf[16];
    size_t len = 0;
    uint64_t id = 0;
    uint32_t flags = 0;
    ASSERT_EQ(xfp_port_get_message(c.c, buf, sizeof buf, &len, &id, &flags, 2000), 0);
    EXPECT_TRUE(flags & XFP_PORT_F_REPLY_EXPECTED);
    std::this_thread::sleep_for(60ms);
    EXPECT_EQ(xfp_port_reply(c.c, id, "late", 4), 0);
  });
  char buf[16];
  size_t len = 7;
  EXPECT_EQ(server_->send(c.id(), "q", 1, buf, sizeof buf, &len, Deadline(20ms)), SendStatus::kTimeout);
  EXPECT_EQ(len, 0u);
  t.join();
  EXPECT_TRUE(eventually([&] { return server_->stats().late_replies == 1; }));
  EXPECT_EQ(server_->stats().protocol_errors, 0u);
  // The client is still served.
  std::thread t2 = answerer(c.c, 1);
  EXPECT_EQ(server_->send(c.id(), "ok", 2, buf, sizeof buf, &len, Deadline(2s)), SendStatus::kSuccess);
  EXPECT_EQ(std::string(buf, len), "ok");
  t2.join();
}

TEST_F(MessagePortTest, PortDisconnectedBeforeAndWhileWaiting) {
  std::atomic<int> disconnects{0};
  Callbacks cb;
  cb.disconnect = [&](const ClientInfo&) { ++disconnects; };
  start({}, cb);
  EXPECT_EQ(server_->send(12345, "x", 1), SendStatus::kPortDisconnected);  // never existed

  // Gone before the send.
  Conn a = connect();
  ClientId a_id = a.id();
  a.close();
  ASSERT_TRUE(eventually([&] { return server_->clients().empty(); }));
  EXPECT_EQ(server_->send(a_id, "x", 1), SendStatus::kPortDisconnected);

  // Gone while the sender waits for a GET.
  Conn b = connect();
  auto f = std::async(std::launch::async, [&, id = b.id()] { return server_->send(id, "x", 1); });
  EXPECT_EQ(f.wait_for(20ms), std::future_status::timeout);
  b.close();
  EXPECT_EQ(f.get(), SendStatus::kPortDisconnected);

  // Gone while the sender waits for the reply.
  Conn c = connect();
  auto g = std::async(std::launch::async, [&, id = c.id()] {
    char buf[8];
    size_t len = 0;
    return server_->send(id, "x", 1, buf, sizeof buf, &len);
  });
  char buf[8];
  size_t len = 0;
  ASSERT_EQ(xfp_port_get_message(c.c, buf, sizeof buf, &len, nullptr, nullptr, 1000), 0);
  c.close();
  EXPECT_EQ(g.get(), SendStatus::kPortDisconnected);
  EXPECT_TRUE(eventually([&] { return disconnects == 3; }));
}

TEST_F(MessagePortTest, StopReleasesEveryWaitingSender) {
  start();
  Conn a = connect();
  Conn b = connect();
  auto waiting_delivery = std::async(std::launch::async, [&, id = a.id()] { return server_->send(id, "x", 1); });
  auto waiting_reply = std::async(std::launch::async, [&, id = b.id()] {
    char buf[8];
    size_t len = 0;
    return server_->send(id, "y", 1, buf, sizeof buf, &len);
  });
  char buf[8];
  size_t len = 0;
  ASSERT_EQ(xfp_port_get_message(b.c, buf, sizeof buf, &len, nullptr, nullptr, 1000), 0);
  EXPECT_EQ(waiting_delivery.wait_for(20ms), std::future_status::timeout);
  server_->stop();
  EXPECT_EQ(waiting_delivery.get(), SendStatus::kShuttingDown);
  EXPECT_EQ(waiting_reply.get(), SendStatus::kShuttingDown);
  EXPECT_EQ(server_->send(a.id(), "z", 1), SendStatus::kShuttingDown);
  EXPECT_EQ(xfp_port_get_message(a.c, buf, sizeof buf, &len, nullptr, nullptr, 1000), -ECONNRESET);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/p"));
}

TEST_F(MessagePortTest, InsufficientResources) {
  Options o;
  o.max_pending = 2;
  start(o);
  Conn c = connect();
  std::vector<char> big(XFP_PORT_MAX_MESSAGE + 1, 'b');
  EXPECT_EQ(server_->send(c.id(), big.data(), big.size(), Deadline(10ms)), SendStatus::kInsufficientResources);
  auto f1 = std::async(std::launch::async, [&] { return server_->send(c.id(), "1", 1, Deadline(2s)); });
  auto f2 = std::async(std::launch::async, [&] { return server_->send(c.id(), "2", 1, Deadline(2s)); });
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(server_->send(c.id(), "3", 1, Deadline(1s)), SendStatus::kInsufficientResources);
  // The largest message goes through.
  std::vector<char> buf(XFP_PORT_MAX_MESSAGE);
  size_t len = 0;
  for (int i = 0; i < 2; ++i) ASSERT_EQ(xfp_port_get_message(c.c, buf.data(), buf.size(), &len, nullptr, nullptr, 1000), 0);
  EXPECT_EQ(f1.get(), SendStatus::kSuccess);
  EXPECT_EQ(f2.get(), SendStatus::kSuccess);
  auto f3 = std::async(std::launch::async,
                       [&] { return server_->send(c.id(), big.data(), XFP_PORT_MAX_MESSAGE, Deadline(2s)); });
  ASSERT_EQ(xfp_port_get_message(c.c, buf.data(), buf.size(), &len, nullptr, nullptr, 1000), 0);
  EXPECT_EQ(len, XFP_PORT_MAX_MESSAGE);
  EXPECT_EQ(f3.get(), SendStatus::kSuccess);
}

TEST_F(MessagePortTest, SmallClientBufferKeepsTheMessage) {
  start();
  Conn c = connect();
  auto f = std::async(std::launch::async, [&] { return server_->send(c.id(), "0123456789", 10, Deadline(2s)); });
  char buf[16];
  size_t len = 0;
  ASSERT_EQ(xfp_port_get_message(c.c, buf, 4, &len, nullptr, nullptr, 1000), -EMSGSIZE);
  EXPECT_EQ(len, 10u);
  ASSERT_EQ(xfp_port_get_message(c.c, buf, sizeof buf, &len, nullptr, nullptr, 0), 0);
  EXPECT_EQ(std::string(buf, len), "0123456789");
  EXPECT_EQ(f.get(), SendStatus::kSuccess);
}

TEST_F(MessagePortTest, ConnectionLimit) {
  Options o;
  o.max_connections = 2;
  start(o);
  Conn a = connect();
  Conn b = connect();
  int err = 0;
  std::string reason;
  Conn c = connect("", &err, &reason);
  EXPECT_EQ(err, -EBUSY);
  EXPECT_NE(reason.find("limit 2"), std::string::npos) << reason;
  a.close();
  ASSERT_TRUE(eventually([&] { return server_->clients().size() == 1; }));
  Conn d = connect();
  EXPECT_NE(d.c, nullptr);
}

TEST_F(MessagePortTest, ConnectCallbackSeesTheContextAndMayRefuse) {
  std::mutex m;
  std::vector<std::string> contexts;
  Callbacks cb;
  cb.connect = [&](const ClientInfo& info, const std::vector<uint8_t>& ctx) -> std::optional<std::string> {
    std::lock_guard lk(m);
    contexts.emplace_back(ctx.begin(), ctx.end());
    EXPECT_EQ(info.pid, ::getpid());
    if (contexts.back() == "no") return "not today";
    return std::nullopt;
  };
  start({}, cb);
  int err = 0;
  std::string reason;
  Conn r = connect("no", &err, &reason);
  EXPECT_EQ(err, -ECONNREFUSED);
  EXPECT_EQ(reason, "not today");
  Conn ok = connect("yes");
  ASSERT_NE(ok.c, nullptr);
  EXPECT_NE(ok.id(), 0u);
  std::lock_guard lk(m);
  EXPECT_EQ(contexts, (std::vector<std::string>{"no", "yes"}));
  EXPECT_EQ(server_->stats().refused, 1u);
  EXPECT_EQ(server_->stats().accepted, 1u);
}

TEST_F(MessagePortTest, ClientSendsToThePort) {
  Callbacks cb;
  cb.message = [](const ClientInfo&, const std::vector<uint8_t>& m) -> std::optional<std::vector<uint8_t>> {
    std::vector<uint8_t> r(m.rbegin(), m.rend());
    return r;
  };
  start({}, cb);
  Conn c = connect();
  char buf[16];
  size_t len = 0;
  EXPECT_EQ(xfp_port_send(c.c, "abc", 3, buf, sizeof buf, &len, 1000), 0);
  EXPECT_EQ(std::string(buf, len), "cba");
  EXPECT_EQ(xfp_port_send(c.c, "abcdef", 6, buf, 2, &len, 1000), -EOVERFLOW);
  EXPECT_EQ(len, 6u);
  EXPECT_EQ(xfp_port_send(c.c, "x", 1, nullptr, 0, nullptr, 1000), 0);  // no reply wanted
  EXPECT_TRUE(eventually([&] { return server_->stats().sends == 3; }));
  std::vector<char> big(XFP_PORT_MAX_MESSAGE + 1);
  EXPECT_EQ(xfp_port_send(c.c, big.data(), big.size(), nullptr, 0, nullptr, 1000), -EMSGSIZE);

  server_.reset();
  start({}, {});  // no handler
  Conn d = connect();
  EXPECT_EQ(xfp_port_send(d.c, "abc", 3, buf, sizeof buf, &len, 1000), -ENOTSUP);
}

// Raw frames from a hand-made client.
int raw_connect(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  int sz = 1 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  return fd;
}

std::string raw_frame(uint16_t type, uint64_t id = 0, std::string payload = "", uint32_t magic = XFP_PORT_MAGIC,
                      uint16_t flags = 0) {
  xfp_port_hdr h{};
  h.flags = flags;
  h.magic = magic;
  h.type = type;
  h.message_id = id;
  h.length = static_cast<uint32_t>(payload.size());
  return std::string(reinterpret_cast<char*>(&h), sizeof h) + payload;
}

TEST_F(MessagePortTest, MalformedFramesCloseOnlyThatClient) {
  start();
  Conn good = connect();
  std::string bad_length = raw_frame(XFP_PORT_SEND, 1, "abc");
  bad_length.pop_back();
  const std::vector<std::string> bad = {
      raw_frame(XFP_PORT_GET, 0, "", 0xdeadbeef),          // bad magic
      bad_length,                                           // length mismatch
      raw_frame(77),                                        // unknown type
      raw_frame(XFP_PORT_REPLY, 999999, "r"),               // reply to an unknown id
      raw_frame(XFP_PORT_SEND, 1, std::string(XFP_PORT_MAX_MESSAGE + 1000, 'o')),  // oversize
      std::string(5, 'x'),                                  // shorter than a header
      raw_frame(XFP_PORT_CONNECT),                          // CONNECT twice
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    int fd = raw_connect(server_->path());
    ASSERT_GE(fd, 0);
    std::string connect = raw_frame(XFP_PORT_CONNECT);
    ASSERT_EQ(::send(fd, connect.data(), connect.size(), 0), static_cast<ssize_t>(connect.size()));
    char buf[256];
    ASSERT_EQ(::recv(fd, buf, sizeof buf, 0), static_cast<ssize_t>(sizeof(xfp_port_hdr)));  // CONNECTED
    ASSERT_EQ(::send(fd, bad[i].data(), bad[i].size(), 0), static_cast<ssize_t>(bad[i].size())) << i;
    EXPECT_EQ(::recv(fd, buf, sizeof buf, 0), 0) << "frame " << i << " did not close the client";
    ::close(fd);
    EXPECT_EQ(server_->stats().protocol_errors, i + 1);
  }
  // Garbage before CONNECT, too.
  int fd = raw_connect(server_->path());
  ASSERT_EQ(::send(fd, "garbage", 7, 0), 7);
  char buf[64];
  EXPECT_EQ(::recv(fd, buf, sizeof buf, 0), 0);
  ::close(fd);
  // The good client never noticed.
  std::thread t = answerer(good.c, 1);
  size_t len = 0;
  EXPECT_EQ(server_->send(good.id(), "fine", 4, buf, sizeof buf, &len, Deadline(2s)), SendStatus::kSuccess);
  EXPECT_EQ(std::string(buf, len), "fine");
  t.join();
}

TEST_F(MessagePortTest, AClientThatNeverReadsStallsNoOne) {
  Callbacks cb;
  cb.message = [](const ClientInfo&, const std::vector<uint8_t>& m) -> std::optional<std::vector<uint8_t>> {
    return m;  // an echo: big replies that the stuck client never reads
  };
  start({}, cb);
  Conn stuck = connect();
  Conn good = connect();
  // The stuck client floods the port with requests and never reads a reply:
  // its socket fills, then the server's queue for it, then the server stops
  // reading it, and its own writes block.
  const int fd = xfp_port_fd(stuck.c);
  const std::string req = raw_frame(XFP_PORT_SEND, 1, std::string(60000, 's'), XFP_PORT_MAGIC, XFP_PORT_F_WANT_REPLY);
  int sent = 0;
  while (sent < 2000) {
    if (::send(fd, req.data(), req.size(), MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      ++sent;
      continue;
    }
    ASSERT_EQ(errno, EAGAIN);
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 100) == 0) break;  // blocked for good
  }
  EXPECT_LT(sent, 2000) << "the server kept reading a client that never reads";
  // Sends to it time out (no GET); sends to the other client succeed.
  auto to_stuck = std::async(std::launch::async, [&] { return server_->send(stuck.id(), "x", 1, Deadline(50ms)); });
  std::thread t = answerer(good.c, 5);
  for (int i = 0; i < 5; ++i) {
    char buf[8];
    size_t len = 0;
    auto t0 = Clock::now();
    EXPECT_EQ(server_->send(good.id(), "ok", 2, buf, sizeof buf, &len, Deadline(1s)), SendStatus::kSuccess);
    EXPECT_LT(Clock::now() - t0, 200ms);
  }
  t.join();
  char buf[8];
  size_t len = 0;
  EXPECT_EQ(xfp_port_send(good.c, "hey", 3, buf, sizeof buf, &len, 1000), 0);
  EXPECT_EQ(to_stuck.get(), SendStatus::kTimeout);
  // Closing the stuck client frees everything it held.
  stuck.close();
  EXPECT_TRUE(eventually([&] { return server_->clients().size() == 1; }));
}

TEST_F(MessagePortTest, ManyClientsInParallel) {
  Options o;
  o.max_connections = 32;
  start(o);
  constexpr int kClients = 32, kMessages = 20;
  std::vector<Conn> conns;
  for (int i = 0; i < kClients; ++i) conns.push_back(connect("c" + std::to_string(i)));
  std::vector<std::thread> answerers, senders;
  for (auto& c : conns) answerers.push_back(answerer(c.c, kMessages));
  std::atomic<int> ok{0};
  for (auto& c : conns)
    senders.emplace_back([&, id = c.id()] {
      for (int i = 0; i < kMessages; ++i) {
        std::string m = std::to_string(id) + ":" + std::to_string(i);
        char buf[64];
        size_t len = 0;
        if (server_->send(id, m.data(), m.size(), buf, sizeof buf, &len, Deadline(5s)) == SendStatus::kSuccess &&
            std::string(buf, len) == m)
          ++ok;
      }
    });
  for (auto& t : senders) t.join();
  for (auto& t : answerers) t.join();
  EXPECT_EQ(ok, kClients * kMessages);
  EXPECT_EQ(server_->clients().size(), static_cast<size_t>(kClients));
}

TEST_F(MessagePortTest, ASecondServerOnTheSameNameIsRefused) {
  start();
  Options o;
  o.dir = dir_;
  o.name = "p";
  auto s = MessagePortServer::create(o, {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, EADDRINUSE);
  o.name = "../x";
  EXPECT_EQ(MessagePortServer::create(o, {}).error().code, EINVAL);
}

// Runs `fn` in a child with the given credentials; returns its exit status.
template <typename F>
int as_user(uid_t uid, gid_t gid, std::vector<gid_t> groups, F fn) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setresgid(gid, gid, gid) != 0 ||
        ::setresuid(uid, uid, uid) != 0)
      ::_exit(126);
    ::_exit(fn());
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

TEST_F(MessagePortTest, CredentialsDecideWhoMayConnect) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as nobody";
  ASSERT_EQ(::chmod(dir_.c_str(), 0711), 0);
  constexpr gid_t kGroup = 54321;
  constexpr uid_t kNobody = 65534;
  start();
  struct stat st {};
  ASSERT_EQ(::stat(server_->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_uid, 0u);
  auto try_connect = [this] {
    xfp_port_conn* c = nullptr;
    char why[256];
    int r = xfp_port_connect_ex(server_->path().c_str(), nullptr, 0, &c, why, sizeof why);
    xfp_port_close(c);
    if (r == -EPERM && std::strstr(why, "permission denied") == nullptr) return 99;
    return -r;
  };
  // The socket's mode keeps nobody out...
  EXPECT_EQ(as_user(kNobody, kNobody, {}, try_connect), EACCES);
  // ...and with the mode opened, its credentials do.
  ASSERT_EQ(::chmod(server_->path().c_str(), 0666), 0);
  EXPECT_EQ(as_user(kNobody, kNobody, {}, try_connect), EPERM);
  EXPECT_EQ(server_->stats().refused, 1u);

  // A configured group lets its members in (supplementary membership is enough).
  server_.reset();
  Options o;
  o.group = kGroup;
  start(o);
  ASSERT_EQ(::stat(server_->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, kGroup);
  EXPECT_EQ(as_user(kNobody, kNobody, {kGroup}, try_connect), 0);
  EXPECT_EQ(as_user(kNobody, kGroup, {}, try_connect), 0);
  EXPECT_EQ(as_user(kNobody, kNobody, {}, try_connect), EACCES);
}

}  // namespace
}  // namespace xfp::port
