// `xfp port listen` against a real daemon: usage errors, a port that is not
// there, and the mac_allowlist sample's questions answered with --approve and
// --interactive while frames cross the test namespace's veth pair: what the
// listener prints (--json), and that the approved MAC's frame reaches the
// stack and the denied one's does not.
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "cli_harness.hpp"
#include "support/frame_builder.hpp"
#include "support/packet_io.hpp"

namespace xfp::clitest {
namespace {

using namespace std::chrono_literals;

std::string build_dir() {
  const char* d = std::getenv("XFP_BUILD_DIR");
  return d && *d ? d : ".";
}
std::string allowlist_path() { return build_dir() + "/plugins/libxfp_mac_allowlist.so"; }
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

constexpr test::Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr test::Mac kApproved{0x02, 0x00, 0x00, 0x7e, 0x00, 0x01};
constexpr test::Mac kDenied{0x02, 0x00, 0x00, 0x7e, 0x00, 0x02};

// The daemon with its ports in the test's directory.
class PortCliTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    port_dir_ = dir_ / "ports";
    ASSERT_EQ(daemon_->stop(SIGTERM), 0) << daemon_->log();
    ASSERT_TRUE(daemon_->start({"--port-dir", port_dir_}));
  }

  // `xfp port listen ...` in the namespace, in the background.
  std::future<Outcome> listen(std::vector<std::string> args, RunOptions opt = {}) {
    std::vector<std::string> a{"--json", "port", "listen", "appr", "--port-dir", port_dir_};
    a.insert(a.end(), args.begin(), args.end());
    opt.timeout = 20s;
    return std::async(std::launch::async, [this, a, opt] { return xfp(a, opt); });
  }

  // Waits until the daemon's log shows `n` approver connections.
  bool connected(size_t n) {
    for (int i = 0; i < 400; ++i) {
      const std::string log = daemon_->log();
      size_t count = 0;
      for (size_t at = log.find("connected to port appr"); at != std::string::npos;
           at = log.find("connected to port appr", at + 1))
        ++count;
      if (count >= n) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  std::string port_dir_;
};

TEST_F(PortCliTest, UsageErrorsAndAMissingPortSayWhat) {
  Outcome r = xfp({"port", "listen"});
  EXPECT_EQ(r.code, 2) << r;
  r = xfp({"port", "listen", "appr", "--approve", "--deny"});
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_TRUE(contains(r.err, "excludes")) << r;
  r = xfp({"port", "listen", "appr", "--hex", "abc"});
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_TRUE(contains(r.err, "--hex abc: not an even number of hex digits")) << r;
  r = xfp({"port", "listen", "nosuch", "--port-dir", port_dir_});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_TRUE(contains(r.err, "cannot connect to port " + port_dir_ + "/nosuch: no such port")) << r;
  r = xfp({"port", "listen", "--help"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_TRUE(contains(r.out, "--interactive")) << r;
  EXPECT_TRUE(contains(r.out, "xfp port listen approver --approve --count 1")) << r;
  // The plugin's port appears when it loads, and --count with --timeout
  // fails when nothing comes.
  r = xfp({"callout", "load", allowlist_path(), "--config", "approver=appr,timeout_ms=500"});
  ASSERT_EQ(r.code, 0) << r << daemon_->log();
  r = xfp({"port", "listen", "appr", "--port-dir", port_dir_, "--count", "1", "--timeout", "200"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_TRUE(contains(r.err, "no message within 200 ms (0 of 1 handled)")) << r;
}

TEST_F(PortCliTest, ListenAnswersTheAllowlistsQuestionsAndFramesFollowTheAnswer) {
  const std::string dev = veth_->b().name;
  ASSERT_EQ(xfp({"attach", dev, "--mode", "generic", "--layers", "inbound"}).code, 0) << daemon_->log();
  Outcome r = xfp({"callout", "load", allowlist_path(), "--config", "approver=appr,timeout_ms=5000,default=block"});
  ASSERT_EQ(r.code, 0) << r << daemon_->log();
  r = xfp({"filter", "add", "name", "ask", "ethertype", "eq", "0x88b5", "action", "callout-terminating", "callout",
           "xfp.sample.mac-allowlist"});
  ASSERT_EQ(r.code, 0) << r;

  auto tx = test::PacketSocket::open(*ns_, veth_->a().name);
  ASSERT_TRUE(tx.ok()) << tx.error().message;
  auto rx = test::PacketSocket::open(*ns_, dev);
  ASSERT_TRUE(rx.ok()) << rx.error().message;
  auto frame = [](const test::Mac& src, uint32_t seq) {
    return test::FrameBuilder().dst(kBroadcast).src(src).ethertype(0x88b5).marker(seq).pad_to(60).build();
  };

  // --approve: the question is printed, decoded, and answered with permit.
  auto approver = listen({"--approve", "--count", "1", "--timeout", "10000"});
  ASSERT_TRUE(connected(1)) << daemon_->log();
  rx->drain();
  ASSERT_TRUE(tx->send_frames({frame(kApproved, 1)}).ok());
  Outcome a = approver.get();
  ASSERT_EQ(a.code, 0) << a;
  json j = json::parse(a.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << a;
  EXPECT_EQ(j["reply_expected"], true) << j;
  EXPECT_EQ(j["length"], 24) << j;
  EXPECT_EQ(j["mac_approval"]["mac"], "02:00:00:7e:00:01") << j;
  EXPECT_EQ(j["mac_approval"]["waiting"], 1) << j;
  EXPECT_EQ(j["reply"]["hex"], "314341" "4d01000000") << "magic MAC1, verdict 1 (permit)";
  auto got = rx->receive(3000ms, test::has_marker, 1);
  ASSERT_TRUE(got.ok()) << got.error().message;
  // The daemon's log and status (its workers' and the plugin's counters)
  // say where a missing frame went.
  ASSERT_EQ(got->size(), 1u) << "the approved frame, re-injected\n"
                             << daemon_->log() << xfp({"status"}).out << xfp({"callout", "list"}).out;
  EXPECT_EQ((*got)[0], frame(kApproved, 1));

  // --interactive: a line of stdin per question; "d" denies.
  RunOptions in;
  in.input = "d\n";
  auto interactive = listen({"--interactive", "--count", "1", "--timeout", "10000"}, in);
  ASSERT_TRUE(connected(2)) << daemon_->log();
  rx->drain();
  ASSERT_TRUE(tx->send_frames({frame(kDenied, 2)}).ok());
  Outcome d = interactive.get();
  ASSERT_EQ(d.code, 0) << d;
  j = json::parse(d.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << d;
  EXPECT_EQ(j["mac_approval"]["mac"], "02:00:00:7e:00:02") << j;
  EXPECT_EQ(j["reply"]["hex"], "314341" "4d02000000") << "verdict 2 (block)";
  EXPECT_TRUE(contains(d.err, "answer message")) << d;
  got = rx->receive(500ms, test::has_marker);
  EXPECT_TRUE(!got.ok() || got->empty()) << "the denied frame arrived";

  // Decided MACs are not asked about again: the approved one passes at once.
  rx->drain();
  ASSERT_TRUE(tx->send_frames({frame(kApproved, 3), frame(kDenied, 4)}).ok());
  got = rx->receive(1000ms, test::has_marker, 1);
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(test::find_marker((*got)[0]), 3u);
  EXPECT_TRUE(contains(daemon_->log(), "approver permits 02:00:00:7e:00:01")) << daemon_->log();
  EXPECT_TRUE(contains(daemon_->log(), "approver denies 02:00:00:7e:00:02")) << daemon_->log();
}

}  // namespace
}  // namespace xfp::clitest
