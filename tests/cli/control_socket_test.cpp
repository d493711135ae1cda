// The control socket under abuse: garbage, oversized length prefixes, a
// client that stalls mid-message, wrong requests, non-root peers, a second
// daemon. The daemon must answer with an error, close that connection, and
// keep serving everyone else.
#include <sys/socket.h>
#include <sys/un.h>

#include "cli/cli_harness.hpp"

namespace xfp::clitest {
namespace {

using ControlSocketTest = DaemonTest;

// A raw connection to the daemon's socket.
class RawConn {
 public:
  explicit RawConn(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawConn() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  void send(const std::string& bytes) const { ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), (ssize_t)bytes.size()); }
  Result<json> reply() const { return control::recv_message(fd_, 10000); }
  // True when the daemon closed the connection (EOF or reset) within 5 s.
  bool closed_by_peer() const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return false;
    char c;
    ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

std::string le32(uint32_t n) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

std::string framed(const std::string& body) { return le32(static_cast<uint32_t>(body.size())) + body; }

void expect_error_reply(const Result<json>& reply, int code, const std::string& message) {
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ((*reply)["ok"], false) << *reply;
  EXPECT_EQ((*reply)["errno"], code) << *reply;
  EXPECT_EQ((*reply)["error"], message) << *reply;
}

uint64_t rss_kib(int pid) {
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

TEST_F(ControlSocketTest, GarbageGetsAnErrorReplyAndTheDaemonSurvives) {
  {
    RawConn c(daemon_->socket());
    ASSERT_TRUE(c.ok());
    c.send("hello daemon, this is not a framed message\n");
    // "hell" read as a little-endian length is far above the limit.
    expect_error_reply(c.reply(), EMSGSIZE, "message of 1819043176 bytes exceeds the limit of 67108864 bytes");
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    RawConn c(daemon_->socket());
    c.send(framed("{\"op\": \"status\""));  // truncated JSON
    expect_error_reply(c.reply(), EBADMSG, "malformed request: expected a JSON object");
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    RawConn c(daemon_->socket());
    c.send(framed("[1, 2, 3]"));  // JSON, but not an object
    expect_error_reply(c.reply(), EBADMSG, "malformed request: expected a JSON object");
  }
  {
    RawConn c(daemon_->socket());
    c.send(framed(""));  // an empty message
    expect_error_reply(c.reply(), EBADMSG, "malformed request: expected a JSON object");
  }
  {
    RawConn c(daemon_->socket());
    c.send(std::string("\x00\x01\x02\xff\xfe", 5) + std::string(1000, '\xff'));
    auto r = c.reply();
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ((*r)["ok"], false);
  }
  Outcome r = xfp({"status"});
  EXPECT_EQ(r.code, 0) << r << daemon_->log();
}

TEST_F(ControlSocketTest, OversizedLengthPrefix) {
  json ping = xfp_json({"status"});
  ASSERT_TRUE(ping.contains("generation"));
  auto client = control::Client::connect(daemon_->socket());
  ASSERT_TRUE(client.ok());
  auto pong = client->call({{"op", "ping"}});
  ASSERT_TRUE(pong.ok());
  const int pid = (*pong)["pid"].get<int>();
  const uint64_t rss_before = rss_kib(pid);

  for (uint32_t n : {control::kMaxMessage + 1, 0x7fffffffu, 0xffffffffu}) {
    RawConn c(daemon_->socket());
    c.send(le32(n));
    expect_error_reply(c.reply(), EMSGSIZE,
                       "message of " + std::to_string(n) + " bytes exceeds the limit of 67108864 bytes");
    EXPECT_TRUE(c.closed_by_peer());
  }

  // Claiming the maximum is allowed, but memory follows what arrives, not
  // what is claimed: eight connections each promising 64 MiB cost nothing.
  std::vector<std::unique_ptr<RawConn>> stalled;
  for (int i = 0; i < 8; ++i) {
    stalled.push_back(std::make_unique<RawConn>(daemon_->socket()));
    stalled.back()->send(le32(control::kMaxMessage) + "{\"op\":");
  }
  Outcome r = xfp({"status"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_LT(rss_kib(pid), rss_before + 16 * 1024) << "the daemon allocated what the length prefixes claimed";

  // The client side refuses oversized replies the same way.
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  std::string prefix = le32(0xffffffffu);
  ASSERT_EQ(::write(sv[0], prefix.data(), 4), 4);
  auto reply = control::recv_message(sv[1], 1000);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, EMSGSIZE);
  EXPECT_EQ(reply.error().message, "message of 4294967295 bytes exceeds the limit of 67108864 bytes");
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_F(ControlSocketTest, AStalledClientDoesNotBlockOthers) {
  RawConn half(daemon_->socket());
  half.send(le32(200) + "{\"op\": \"sta");  // and then nothing
  RawConn silent(daemon_->socket());       // connects and says nothing
  for (int i = 0; i < 3; ++i) {
    Outcome r = xfp({"filter", "add", "ethertype", "eq", "arp", "action", "block"});
    EXPECT_EQ(r.code, 0) << r;
  }
  EXPECT_EQ(filter_ids().size(), 3u);
  // A client that pipelines requests and reads the replies later.
  RawConn pipelined(daemon_->socket());
  pipelined.send(framed(R"({"op":"ping"})") + framed(R"({"op":"sublayer.list"})"));
  auto first = pipelined.reply();
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE((*first).contains("pid"));
  auto second = pipelined.reply();
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE((*second).contains("sublayers"));
}

TEST_F(ControlSocketTest, WrongRequestsKeepTheConnection) {
  auto client = control::Client::connect(daemon_->socket());
  ASSERT_TRUE(client.ok());
  struct Case {
    json request;
    std::string error;
  };
  const Case cases[] = {
      {{{"noop", 1}}, "bad request: a request needs an \"op\" string"},
      {{{"op", "reboot"}},
       "bad request: unknown op 'reboot' (expected one of: attach, callout.list, callout.load, callout.unload, counters, detach, filter.list, filter.show, flows, ping, "
       "redirect.list, redirect.query, redirect.set, status, sublayer.list, transaction)"},
      {{{"op", "transaction"}, {"commands", "flush"}}, "bad request: 'commands' must be an array"},
      {{{"op", "transaction"}, {"commands", {{{"op", "explode"}}}}},
       "bad request: command 1: command JSON: unknown op 'explode' (expected one of: filter-add, filter-delete, "
       "sublayer-add, sublayer-delete, flush, default)"},
      {{{"op", "attach"}}, "bad request: 'device' must be a non-empty string"},
      {{{"op", "attach"}, {"device", "lo"}, {"mode", "warp"}}, "bad request: 'mode' must be auto, native or generic"},
      {{{"op", "filter.show"}, {"ref", 7}}, "bad request: 'ref' must be a non-empty string"},
      {{{"op", "filter.list"}, {"layer", "sideways"}}, "bad request: 'layer' must be inbound or outbound"},
  };
  for (const Case& c : cases) {
    auto r = client->call(c.request);
    ASSERT_FALSE(r.ok()) << c.request;
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_EQ(r.error().message, c.error);
  }
  auto ok = client->call({{"op", "ping"}});  // the same connection still works
  EXPECT_TRUE(ok.ok());
}

TEST_F(ControlSocketTest, SocketIsRootOnly) {
  struct stat st {};
  ASSERT_EQ(::stat(daemon_->socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);  // 0660 with --group (security_test.cpp)
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);

  // Another uid cannot open the socket...
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  RunOptions nobody;
  nobody.uid = 65534;
  Outcome r = run_process({xfp_path(), "--socket", daemon_->socket(), "status"}, nobody);
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: cannot reach the daemon at " + daemon_->socket() + ": permission denied: uid 65534 is not root\n");
  // ...and when the file mode lets it in, the peer credentials keep it out.
  ASSERT_EQ(::chmod(daemon_->socket().c_str(), 0666), 0);
  r = run_process({xfp_path(), "--socket", daemon_->socket(), "flush"}, nobody);
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: permission denied: uid 65534 is not root (the daemon runs without --group)\n");
  EXPECT_EQ(xfp({"status"}).code, 0);
}

TEST_F(ControlSocketTest, ASecondDaemonIsRefused) {
  RunOptions opt;
  opt.timeout = 30s;
  Outcome r = run_process(daemon_->argv(), opt);  // same socket, same state dir
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: another daemon is already listening on " + daemon_->socket() + "\n");

  Daemon other(ns_->name(), dir_ / "other.sock", daemon_->state_dir(), dir_ / "other.log");
  r = run_process(other.argv(), opt);  // same state dir, another socket
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: another xfp daemon is using the state directory " + daemon_->state_dir() + "\n");
  EXPECT_NE(::access((dir_ / "other.sock").c_str(), F_OK), 0) << "the refused daemon left its socket behind";
  EXPECT_EQ(xfp({"status"}).code, 0);
}

}  // namespace
}  // namespace xfp::clitest
