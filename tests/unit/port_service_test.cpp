// The plugin ABI's message ports (port_create / port_close / port_send of
// include/xfp/callout.h) as the daemon serves them: MessagePortService on
// real SEQPACKET sockets in a temporary directory, clients with
// libxfp-client. Sends go through the host's function table
// (CalloutHost::api().port_send), as a plugin's would. Every status code and
// timeout rule (infinite, zero, relative, absolute), disconnects at each
// step, the connection limit, many clients, the callbacks' cookies and
// errors, and close_all_of / shutdown releasing waiting senders.
#include "xfp/port_service_impl.hpp"

#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "xfp/callout_host.hpp"
#include "xfp/port_client.h"

namespace xfp {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Conn {
  xfp_port_conn* c = nullptr;
  Conn() = default;
  explicit Conn(xfp_port_conn* p) : c(p) {}
  Conn(Conn&& o) noexcept : c(o.c) { o.c = nullptr; }
  Conn& operator=(Conn&& o) noexcept {
    std::swap(c, o.c);
    return *this;
  }
  ~Conn() { xfp_port_close(c); }
  void close() {
    xfp_port_close(c);
    c = nullptr;
  }
  uint64_t id() const { return xfp_port_client_id(c); }
};

template <typename F>
bool eventually(F cond, std::chrono::milliseconds limit = 2000ms) {
  auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return cond();
}

int64_t realtime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// What the port's callbacks saw (the plugin's side).
struct Seen {
  std::mutex mu;
  std::vector<std::string> connects;  // context bytes
  std::vector<std::pair<uint64_t, intptr_t>> disconnects;  // client, cookie
  std::vector<std::pair<uint64_t, intptr_t>> messages;     // client, cookie
  int refuse = 0;           // connect returns this
  int message_rc = 0;       // message returns this
  std::atomic<intptr_t> next_cookie{100};
};

int on_connect(void* ctx, uint64_t, const void* context, uint32_t len, void** cookie) {
  auto* s = static_cast<Seen*>(ctx);
  std::lock_guard lk(s->mu);
  s->connects.emplace_back(static_cast<const char*>(context), len);
  if (s->refuse) return s->refuse;
  *cookie = reinterpret_cast<void*>(s->next_cookie.fetch_add(1));
  return 0;
}
void on_disconnect(void* ctx, uint64_t client, void* cookie) {
  auto* s = static_cast<Seen*>(ctx);
  std::lock_guard lk(s->mu);
  s->disconnects.emplace_back(client, reinterpret_cast<intptr_t>(cookie));
}
int on_message(void* ctx, uint64_t client, void* cookie, const void* in, uint32_t in_len, void* out, uint32_t out_cap,
               uint32_t* out_len) {
  auto* s = static_cast<Seen*>(ctx);
  {
    std::lock_guard lk(s->mu);
    s->messages.emplace_back(client, reinterpret_cast<intptr_t>(cookie));
  }
  if (s->message_rc) return s->message_rc;
  std::string r = "re:" + std::string(static_cast<const char*>(in), in_len);
  *out_len = static_cast<uint32_t>(std::min<size_t>(r.size(), out_cap));
  std::memcpy(out, r.data(), *out_len);
  return 0;
}

const xfp_port_ops kOps{on_connect, on_disconnect, on_message};

class PortServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/xfp-portsvc-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    PortServiceOptions o;
    o.dir = dir_;
    o.max_pending = 4;
    service_ = std::make_unique<MessagePortService>(o);
    host_.set_port_service(service_.get());
  }
  void TearDown() override {
    service_->shutdown();
    for (xfp_port* p : ports_) service_->close_port(p);
    service_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  xfp_port* create(const std::string& name = "p", uint32_t max = 8, const xfp_port_ops* ops = &kOps,
                   const std::string& plugin = "plug") {
    xfp_port* p = nullptr;
    int rc = service_->create_port(plugin, name.c_str(), max, ops, &seen_, &p);
    EXPECT_EQ(rc, 0);
    ports_.push_back(p);
    return p;
  }

  Conn connect(const std::string& name = "p", const std::string& context = "", int* err = nullptr) {
    xfp_port_conn* c = nullptr;
    char why[256] = "";
    int r = xfp_port_connect_ex((dir_ + "/" + name).c_str(), context.data(), context.size(), &c, why, sizeof why);
    if (err) *err = r;
    else EXPECT_EQ(r, 0) << why;
    return Conn(c);
  }

  // The ABI's port_send, as a plugin calls it.
  static int send(xfp_port* p, uint64_t client, const std::string& msg, const int64_t* timeout,
                  std::string* reply = nullptr, uint32_t cap = 64, uint32_t* reply_len_out = nullptr) {
    std::vector<char> buf(cap);
    uint32_t len = cap;
    int rc = CalloutHost::api().port_send(p, client, msg.data(), static_cast<uint32_t>(msg.size()),
                                          reply ? buf.data() : nullptr, reply ? &len : nullptr, timeout);
    if (reply) *reply = std::string(buf.data(), std::min(len, cap));
    if (reply_len_out) *reply_len_out = len;
    return rc;
  }

  // Takes one message (waiting up to timeout_ms); "" with rc != 0 when none.
  static std::string get(Conn& c, int timeout_ms, uint64_t* id = nullptr, uint32_t* flags = nullptr, int* rc = nullptr) {
    char buf[256];
    size_t len = 0;
    int r = xfp_port_get_message(c.c, buf, sizeof buf, &len, id, flags, timeout_ms);
    if (rc) *rc = r;
    return r == 0 ? std::string(buf, len) : std::string();
  }

  std::string dir_;
  CalloutHost host_;
  std::unique_ptr<MessagePortService> service_;
  std::vector<xfp_port*> ports_;
  Seen seen_;
};

TEST_F(PortServiceTest, TimeoutConversionFollowsTheAbi) {
  EXPECT_TRUE(deadline_from_abi(nullptr).infinite());
  int64_t zero = 0;
  EXPECT_TRUE(deadline_from_abi(&zero).infinite());
  int64_t rel = -50'000'000;  // 50 ms
  auto d = deadline_from_abi(&rel);
  ASSERT_FALSE(d.infinite());
  auto left = *d.at() - Clock::now();
  EXPECT_GT(left, 30ms);
  EXPECT_LE(left, 50ms);
  int64_t abs = realtime_ns() + 200'000'000;  // 200 ms from now
  d = deadline_from_abi(&abs);
  ASSERT_FALSE(d.infinite());
  left = *d.at() - Clock::now();
  EXPECT_GT(left, 150ms);
  EXPECT_LE(left, 200ms);
  int64_t past = realtime_ns() - 1'000'000'000;
  d = deadline_from_abi(&past);
  ASSERT_FALSE(d.infinite());
  EXPECT_LE(*d.at(), Clock::now());
  int64_t huge = INT64_MIN;  // relative, ~292 years: no overflow, without end
  EXPECT_TRUE(deadline_from_abi(&huge).infinite());
  int64_t far = INT64_MAX;  // absolute, year 2262
  EXPECT_TRUE(deadline_from_abi(&far).infinite());
}

TEST_F(PortServiceTest, StatusCodesMapOneToOne) {
  using port::SendStatus;
  EXPECT_EQ(status_to_abi(SendStatus::kSuccess), 0);
  EXPECT_EQ(status_to_abi(SendStatus::kTimeout), XFP_STATUS_TIMEOUT);
  EXPECT_GT(XFP_STATUS_TIMEOUT, 0);  // a success code
  EXPECT_EQ(status_to_abi(SendStatus::kPortDisconnected), XFP_STATUS_PORT_DISCONNECTED);
  EXPECT_EQ(status_to_abi(SendStatus::kBufferOverflow), XFP_STATUS_BUFFER_OVERFLOW);
  EXPECT_EQ(status_to_abi(SendStatus::kInsufficientResources), XFP_STATUS_INSUFFICIENT_RESOURCES);
  EXPECT_EQ(status_to_abi(SendStatus::kShuttingDown), XFP_STATUS_SHUTTING_DOWN);
}

TEST_F(PortServiceTest, NullAndZeroTimeoutsWaitWithoutEnd) {
  xfp_port* p = create();
  Conn c = connect();
  int64_t zero = 0;
  for (const int64_t* t : {static_cast<const int64_t*>(nullptr), static_cast<const int64_t*>(&zero)}) {
    auto f = std::async(std::launch::async, [&] { return send(p, c.id(), "wait", t); });
    EXPECT_EQ(f.wait_for(100ms), std::future_status::timeout) << "no GET yet: the sender waits";
    EXPECT_EQ(get(c, 2000), "wait");
    EXPECT_EQ(f.get(), 0);
  }
}

TEST_F(PortServiceTest, RelativeTimeoutDeliversNothing) {
  xfp_port* p = create();
  Conn c = connect();
  int64_t t = -80'000'000;  // 80 ms
  auto start = Clock::now();
  EXPECT_EQ(send(p, c.id(), "late", &t), XFP_STATUS_TIMEOUT);
  EXPECT_GE(Clock::now() - start, 75ms);
  int rc = 0;
  EXPECT_EQ(get(c, 50, nullptr, nullptr, &rc), "");
  EXPECT_EQ(rc, -ETIMEDOUT) << "a timed-out message is never delivered";
}

TEST_F(PortServiceTest, AbsoluteTimeoutDeliversNothingAndAPastOneExpiresAtOnce) {
  xfp_port* p = create();
  Conn c = connect();
  int64_t t = realtime_ns() + 80'000'000;
  auto start = Clock::now();
  EXPECT_EQ(send(p, c.id(), "x", &t), XFP_STATUS_TIMEOUT);
  EXPECT_GE(Clock::now() - start, 60ms);
  int64_t past = realtime_ns() - 5'000'000'000;
  start = Clock::now();
  EXPECT_EQ(send(p, c.id(), "x", &past), XFP_STATUS_TIMEOUT);
  EXPECT_LT(Clock::now() - start, 50ms);
  int rc = 0;
  EXPECT_EQ(get(c, 50, nullptr, nullptr, &rc), "");
  EXPECT_EQ(rc, -ETIMEDOUT);
}

TEST_F(PortServiceTest, ReplyLengthInAndOutAndBufferOverflow) {
  xfp_port* p = create();
  Conn c = connect();
  auto reply_with = [&](std::string r) {
    return std::thread([&c, r] {
      uint64_t id = 0;
      uint32_t flags = 0;
      std::string m = get(c, 2000, &id, &flags);
      EXPECT_TRUE(flags & XFP_PORT_F_REPLY_EXPECTED);
      xfp_port_reply(c.c, id, r.data(), r.size());
    });
  };
  std::string reply;
  uint32_t len = 0;
  auto th = reply_with("verdict!");
  EXPECT_EQ(send(p, c.id(), "q", nullptr, &reply, 64, &len), 0);
  th.join();
  EXPECT_EQ(len, 8u);  // out: the reply's length, not the buffer's
  EXPECT_EQ(reply, "verdict!");

  th = reply_with("0123456789");
  EXPECT_EQ(send(p, c.id(), "q", nullptr, &reply, 4, &len), XFP_STATUS_BUFFER_OVERFLOW);
  th.join();
  EXPECT_EQ(len, 10u) << "the full length, so the caller can size its buffer";
  EXPECT_EQ(reply, "0123") << "the buffer holds the first bytes";

  // Exactly the payload size fits: no header to add (the padding pitfall).
  th = reply_with("abcd");
  EXPECT_EQ(send(p, c.id(), "q", nullptr, &reply, 4, &len), 0);
  th.join();
  EXPECT_EQ(len, 4u);
}

TEST_F(PortServiceTest, NoReplyInTimeIsATimeoutWithNothingReceived) {
  xfp_port* p = create();
  Conn c = connect();
  std::thread reader([&] { EXPECT_EQ(get(c, 2000), "q"); });  // takes it, never replies
  int64_t t = -100'000'000;
  std::string reply;
  uint32_t len = 99;
  EXPECT_EQ(send(p, c.id(), "q", &t, &reply, 16, &len), XFP_STATUS_TIMEOUT);
  reader.join();
  EXPECT_EQ(len, 0u);
}

TEST_F(PortServiceTest, PortDisconnectedAtEachStep) {
  xfp_port* p = create();
  // Never connected (or an id from another port).
  EXPECT_EQ(send(p, 12345, "x", nullptr), XFP_STATUS_PORT_DISCONNECTED);
  // Gone before it ever asked for a message: the waiting sender is released.
  {
    Conn c = connect();
    auto f = std::async(std::launch::async, [&, id = c.id()] { return send(p, id, "x", nullptr); });
    EXPECT_EQ(f.wait_for(50ms), std::future_status::timeout);
    c.close();
    EXPECT_EQ(f.get(), XFP_STATUS_PORT_DISCONNECTED);
  }
  // Gone after taking the message, before replying.
  {
    Conn c = connect();
    uint64_t id = c.id();
    std::thread reader([&] {
      EXPECT_EQ(get(c, 2000), "ask");
      c.close();
    });
    std::string reply;
    EXPECT_EQ(send(p, id, "ask", nullptr, &reply), XFP_STATUS_PORT_DISCONNECTED);
    reader.join();
    // And after it is gone.
    EXPECT_EQ(send(p, id, "x", nullptr), XFP_STATUS_PORT_DISCONNECTED);
  }
  // Every accepted client's disconnect callback ran once, with its cookie.
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lk(seen_.mu);
    return seen_.disconnects.size() == 2;
  }));
  std::lock_guard lk(seen_.mu);
  EXPECT_EQ(seen_.disconnects[0].second, 100);
  EXPECT_EQ(seen_.disconnects[1].second, 101);
}

TEST_F(PortServiceTest, InsufficientResourcesAndInvalidArguments) {
  xfp_port* p = create();
  Conn c = connect();
  std::string big(XFP_PORT_MAX_MESSAGE + 1, 'x');
  EXPECT_EQ(send(p, c.id(), big, nullptr), XFP_STATUS_INSUFFICIENT_RESOURCES);
  // max_pending (4) senders wait for this client; the fifth is refused.
  std::vector<std::future<int>> waiting;
  int64_t t = -3'000'000'000;
  for (int i = 0; i < 4; ++i)
    waiting.push_back(std::async(std::launch::async, [&] { return send(p, c.id(), "w", &t); }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(send(p, c.id(), "fifth", &t), XFP_STATUS_INSUFFICIENT_RESOURCES);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(get(c, 2000), "w");
  for (auto& f : waiting) EXPECT_EQ(f.get(), 0);

  const xfp_host_api& api = CalloutHost::api();
  EXPECT_EQ(api.port_send(p, c.id(), nullptr, 3, nullptr, nullptr, nullptr), -EINVAL);
  char r[4];
  EXPECT_EQ(api.port_send(p, c.id(), "x", 1, r, nullptr, nullptr), -EINVAL) << "a reply buffer needs reply_len";
  EXPECT_EQ(api.port_send(nullptr, c.id(), "x", 1, nullptr, nullptr, nullptr), -EINVAL);
}

TEST_F(PortServiceTest, CreateChecksNamesLimitsAndDuplicates) {
  xfp_port* p = nullptr;
  EXPECT_EQ(service_->create_port("plug", "bad/name", 1, &kOps, nullptr, &p), -EINVAL);
  EXPECT_EQ(service_->create_port("plug", ".hidden", 1, &kOps, nullptr, &p), -EINVAL);
  EXPECT_EQ(service_->create_port("plug", std::string(64, 'a').c_str(), 1, &kOps, nullptr, &p), -EINVAL);
  EXPECT_EQ(service_->create_port("plug", "p", 0, &kOps, nullptr, &p), -EINVAL) << "connection limit 0";
  EXPECT_EQ(service_->create_port("plug", "p", 1, nullptr, nullptr, &p), -EINVAL);
  create("dup");
  EXPECT_EQ(service_->create_port("other", "dup", 1, &kOps, nullptr, &p), -EEXIST);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/dup"));
  auto list = service_->list();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].plugin, "plug");
  EXPECT_EQ(list[0].path, dir_ + "/dup");
}

TEST_F(PortServiceTest, ConnectionLimitAndRefusalByThePlugin) {
  create("lim", 2);
  Conn a = connect("lim", "first"), b = connect("lim", "second");
  int err = 0;
  Conn c = connect("lim", "", &err);
  EXPECT_EQ(err, -EBUSY);
  b.close();
  ASSERT_TRUE(eventually([&] { return service_->list()[0].clients == 1; }));
  Conn d = connect("lim", "third");  // room again
  {
    std::lock_guard lk(seen_.mu);
    EXPECT_EQ(seen_.connects, (std::vector<std::string>{"first", "second", "third"}));
  }
  seen_.refuse = -EACCES;
  a.close();
  ASSERT_TRUE(eventually([&] { return service_->list()[0].clients == 1; }));
  Conn e = connect("lim", "refused", &err);
  EXPECT_EQ(err, -ECONNREFUSED);
}

TEST_F(PortServiceTest, ClientSendsReachTheMessageHandlerWithTheCookie) {
  create("h");
  Conn c = connect("h");
  char reply[32];
  size_t len = 0;
  ASSERT_EQ(xfp_port_send(c.c, "hello", 5, reply, sizeof reply, &len, 2000), 0);
  EXPECT_EQ(std::string(reply, len), "re:hello");
  seen_.message_rc = -EPERM;
  EXPECT_EQ(xfp_port_send(c.c, "x", 1, reply, sizeof reply, &len, 2000), -EPERM);
  {
    std::lock_guard lk(seen_.mu);
    ASSERT_EQ(seen_.messages.size(), 2u);
    EXPECT_EQ(seen_.messages[0].first, c.id());
    EXPECT_EQ(seen_.messages[0].second, 100) << "the cookie connect set";
  }
  // A port without a message handler: ENOTSUP.
  xfp_port_ops no_message{on_connect, on_disconnect, nullptr};
  create("nomsg", 2, &no_message);
  Conn n = connect("nomsg");
  EXPECT_EQ(xfp_port_send(n.c, "x", 1, reply, sizeof reply, &len, 2000), -ENOTSUP);
}

TEST_F(PortServiceTest, ManyClientsManySenders) {
  xfp_port* p = create("many", 16);
  constexpr int kClients = 8, kEach = 40;
  std::vector<Conn> conns;
  for (int i = 0; i < kClients; ++i) conns.push_back(connect("many"));
  std::vector<std::thread> answerers;
  for (auto& c : conns)
    answerers.emplace_back([&c] {
      for (int k = 0; k < kEach; ++k) {
        uint64_t id = 0;
        std::string m = get(c, 5000, &id);
        if (m.empty()) return;
        std::string r = "ok:" + m;
        xfp_port_reply(c.c, id, r.data(), r.size());
      }
    });
  std::atomic<int> good{0};
  std::vector<std::thread> senders;
  for (int i = 0; i < kClients; ++i)
    senders.emplace_back([&, i] {
      int64_t t = -5'000'000'000;
      for (int k = 0; k < kEach; ++k) {
        std::string msg = std::to_string(i) + "/" + std::to_string(k), reply;
        if (send(p, conns[i].id(), msg, &t, &reply) == 0 && reply == "ok:" + msg) ++good;
      }
    });
  for (auto& t : senders) t.join();
  for (auto& t : answerers) t.join();
  EXPECT_EQ(good.load(), kClients * kEach);
  EXPECT_EQ(service_->list()[0].stats.replies, static_cast<uint64_t>(kClients * kEach));
}

TEST_F(PortServiceTest, ClosingAPortReleasesItsSendersAndItsHandleGoesStale) {
  xfp_port* p = create("c");
  Conn c = connect("c");
  auto f = std::async(std::launch::async, [&] { return send(p, c.id(), "x", nullptr); });
  EXPECT_EQ(f.wait_for(50ms), std::future_status::timeout);
  CalloutHost::api().port_close(p);
  EXPECT_EQ(f.get(), XFP_STATUS_SHUTTING_DOWN);
  EXPECT_EQ(send(p, c.id(), "x", nullptr), XFP_STATUS_SHUTTING_DOWN) << "a closed port's handle";
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/c"));
  std::lock_guard lk(seen_.mu);
  EXPECT_EQ(seen_.disconnects.size(), 1u) << "port_close runs the disconnect callbacks";
}

TEST_F(PortServiceTest, CloseAllOfAtUnloadReleasesOnlyThatPluginsSenders) {
  xfp_port* mine = create("mine", 4, &kOps, "leaving");
  xfp_port* theirs = create("theirs", 4, &kOps, "staying");
  Conn a = connect("mine"), b = connect("theirs");
  std::vector<std::future<int>> waiting;
  for (int i = 0; i < 3; ++i)
    waiting.push_back(std::async(std::launch::async, [&] { return send(mine, a.id(), "x", nullptr); }));
  std::this_thread::sleep_for(50ms);
  service_->close_all_of("leaving");
  for (auto& f : waiting) EXPECT_EQ(f.get(), XFP_STATUS_SHUTTING_DOWN);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/mine"));
  ASSERT_EQ(service_->list().size(), 1u);
  // The other plugin's port works on.
  std::thread r([&] {
    uint64_t id = 0;
    EXPECT_EQ(get(b, 2000, &id), "still");
    xfp_port_reply(b.c, id, "y", 1);
  });
  std::string reply;
  EXPECT_EQ(send(theirs, b.id(), "still", nullptr, &reply), 0);
  r.join();
  EXPECT_EQ(reply, "y");
}

TEST_F(PortServiceTest, ShutdownReleasesEverySenderAndRefusesNewWork) {
  xfp_port* p = create("s");
  Conn c = connect("s");
  auto f = std::async(std::launch::async, [&] { return send(p, c.id(), "x", nullptr); });
  std::this_thread::sleep_for(50ms);
  service_->shutdown();
  EXPECT_EQ(f.get(), XFP_STATUS_SHUTTING_DOWN);
  EXPECT_EQ(send(p, c.id(), "x", nullptr), XFP_STATUS_SHUTTING_DOWN);
  xfp_port* q = nullptr;
  EXPECT_EQ(service_->create_port("plug", "new", 1, &kOps, nullptr, &q), XFP_STATUS_SHUTTING_DOWN);
  char buf[8];
  size_t len = 0;
  EXPECT_EQ(xfp_port_get_message(c.c, buf, sizeof buf, &len, nullptr, nullptr, 1000), -ECONNRESET);
}

TEST_F(PortServiceTest, WithoutAServiceTheHostSaysSo) {
  CalloutHost bare;  // the most recent host: the table's port functions reach it
  xfp_port* p = reinterpret_cast<xfp_port*>(uintptr_t{1});
  EXPECT_EQ(CalloutHost::api().port_send(p, 1, "x", 1, nullptr, nullptr, nullptr), XFP_STATUS_SHUTTING_DOWN);
}

}  // namespace
}  // namespace xfp
