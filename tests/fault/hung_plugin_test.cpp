// A plugin whose classify hangs (issue 6, item 3): the daemon's watchdog
// (xfp daemon --classify-budget-ms) must notice within the budget, quarantine
// the callout (its filters take their fail action in the kernel), log and
// count it, and keep every other callout and queue going.
//
// Topology: two namespaces, "peer" and "xfp", joined by two veth pairs, A and
// B; the daemon runs in "xfp" with both xfp ends attached. The hang plugin
// (tests/fault/hang_plugin) serves two callouts:
//  - xfp.test.hang blocks every frame, and hangs on a frame marked XFP-HANG
//    until the test creates a gate file. Filter: EtherType 0x88b5, fail open
//    (permit-if-callout-unregistered): its frames arrive only when the
//    callout is NOT consulted, so arriving 0x88b5 frames prove the fail
//    action took over while the call still hangs.
//  - xfp.test.steady permits every frame. Filters: 0x88b6 fail open (sent on
//    A, the stuck queue's interface), 0x88b7 fail closed (sent on B: frames
//    arrive only if B's worker consults the callout in user space).
// Without the watchdog, the 0x88b5 frames sent while the call hangs are punted
// into the stuck worker's ring and never arrive: the test fails.
#include <fmt/format.h>

#include <atomic>
#include <thread>

#include "fault_support.hpp"
#include "support/frame_builder.hpp"
#include "support/packet_io.hpp"

namespace xfp::faulttest {
namespace {

using Clock = std::chrono::steady_clock;
using test::FrameBuilder;
using test::Mac;
using test::NetNs;
using test::PacketSocket;
using test::VethPair;

constexpr Mac kPeerA{0x02, 0x00, 0x00, 0x6c, 0x0a, 0x01};
constexpr Mac kXfpA{0x02, 0x00, 0x00, 0x6c, 0x0a, 0x02};
constexpr Mac kPeerB{0x02, 0x00, 0x00, 0x6c, 0x0b, 0x01};
constexpr Mac kXfpB{0x02, 0x00, 0x00, 0x6c, 0x0b, 0x02};
constexpr uint16_t kHangType = 0x88b5;        // xfp.test.hang, fail open
constexpr uint16_t kSteadyOpenType = 0x88b6;  // xfp.test.steady, fail open
constexpr uint16_t kSteadyClosedType = 0x88b7;  // xfp.test.steady, fail closed
constexpr int kBudgetMs = 200;

const std::string kHangPlugin = std::string(XFP_TEST_HANG_DIR) + "/hang.so";

// One side of a pair: a sender in "peer", a receiver on the xfp end.
struct Link {
  PacketSocket tx, rx;
  Mac src, dst;

  std::vector<uint8_t> frame(uint16_t type, uint32_t seq, bool hang = false) const {
    FrameBuilder b;
    b.dst(dst).src(src).ethertype(type);
    if (hang) b.payload("XFP-HANG");
    return b.marker(seq).pad_to(60).build();
  }
  // Sends `count` frames of `type` numbered from `first`, 5 ms apart, and
  // counts those of them that arrive within `window` of the last.
  size_t exchange(uint16_t type, uint32_t first, uint32_t count, std::chrono::milliseconds window = 600ms) {
    rx.drain();
    for (uint32_t i = 0; i < count; ++i) {
      EXPECT_TRUE(tx.send_frame(frame(type, first + i)).ok());
      std::this_thread::sleep_for(5ms);
    }
    return arrived(first, count, window);
  }
  size_t arrived(uint32_t first, uint32_t count, std::chrono::milliseconds window) {
    auto mine = [&](std::span<const uint8_t> f) {
      auto seq = test::find_marker(f);
      return seq && *seq >= first && *seq < first + count;
    };
    auto got = rx.receive(window, mine, count);
    return got.ok() ? got->size() : 0;
  }
};

// Opens the gate (the hung classify returns) when the test ends, however it ends.
struct Gate {
  std::string path;
  void open() const { clitest::write_file(path, "open\n"); }
  ~Gate() { open(); }
};

json worker_of(const json& status, const std::string& dev) {
  for (const json& w : status.value("workers", json::array()))
    if (w.value("device", "") == dev) return w;
  return json::object();
}

TEST(HungPlugin, WatchdogQuarantinesTheCalloutAndOtherCalloutsAndQueuesKeepGoing) {
  XFP_REQUIRE_ROOT();
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto peer = NetNs::create();
  ASSERT_TRUE(peer.ok()) << peer.error().message;
  auto xns = NetNs::create();
  ASSERT_TRUE(xns.ok()) << xns.error().message;
  test::VethOptions va, vb;
  va.mac_a = kPeerA;
  va.mac_b = kXfpA;
  vb.mac_a = kPeerB;
  vb.mac_b = kXfpB;
  auto veth_a = VethPair::create(*peer, *xns, va);
  ASSERT_TRUE(veth_a.ok()) << veth_a.error().message;
  auto veth_b = VethPair::create(*peer, *xns, vb);
  ASSERT_TRUE(veth_b.ok()) << veth_b.error().message;
  const std::string dev_a = veth_a->b().name, dev_b = veth_b->b().name;

  Daemon daemon(xns->name(), dir / "xfp.sock", dir / "state", dir / "daemon.log");
  daemon.set_start_timeout(30s);
  ASSERT_TRUE(daemon.start({"--plugin-dir", XFP_TEST_HANG_DIR, "--classify-budget-ms", std::to_string(kBudgetMs)}));
  Gate gate{dir / "gate"};  // after the daemon: opened before the daemon is killed
  // Every CLI call is bounded: a hung daemon must fail the test, not stall it.
  auto cli = [&](const std::vector<std::string>& args, const std::string& input = "") {
    clitest::RunOptions o;
    o.input = input;
    o.timeout = 10s;
    return daemon.cli(args, o);
  };
  auto cli_json = [&](const std::vector<std::string>& args) {
    clitest::RunOptions o;
    o.timeout = 10s;
    return daemon.cli_json(args, o);
  };
  const std::string load_config = "gate=" + gate.path;

  Outcome r = cli({"attach", dev_a});
  ASSERT_EQ(r.code, 0) << r << daemon.log();
  r = cli({"attach", dev_b});
  ASSERT_EQ(r.code, 0) << r << daemon.log();
  r = cli({"callout", "load", kHangPlugin, "--config", load_config});
  ASSERT_EQ(r.code, 0) << r << daemon.log();
  r = cli({"apply", "-"},
          fmt::format("filter add name hang ethertype eq {:#x} action callout-terminating callout xfp.test.hang "
                      "flags permit-if-callout-unregistered\n"
                      "filter add name steady-open ethertype eq {:#x} action callout-terminating callout "
                      "xfp.test.steady flags permit-if-callout-unregistered\n"
                      "filter add name steady-closed ethertype eq {:#x} action callout-terminating callout "
                      "xfp.test.steady\n",
                      kHangType, kSteadyOpenType, kSteadyClosedType));
  ASSERT_EQ(r.code, 0) << r;

  auto tx_a = PacketSocket::open(*peer, veth_a->a().name);
  auto rx_a = PacketSocket::open(*xns, dev_a);
  auto tx_b = PacketSocket::open(*peer, veth_b->a().name);
  auto rx_b = PacketSocket::open(*xns, dev_b);
  ASSERT_TRUE(tx_a.ok() && rx_a.ok() && tx_b.ok() && rx_b.ok());
  Link a{std::move(*tx_a), std::move(*rx_a), kPeerA, kXfpA};
  Link b{std::move(*tx_b), std::move(*rx_b), kPeerB, kXfpB};

  // 1. Healthy: the callouts decide in user space.
  EXPECT_EQ(a.exchange(kHangType, 100, 10, 400ms), 0u) << "xfp.test.hang blocks its frames";
  EXPECT_EQ(a.exchange(kSteadyOpenType, 200, 10), 10u);
  EXPECT_EQ(b.exchange(kSteadyClosedType, 300, 10), 10u);
  json st = cli_json({"status"});
  ASSERT_TRUE(st.is_object());
  EXPECT_EQ(st["watchdog"].value("budget_ms", 0), kBudgetMs) << st.dump(2);
  EXPECT_EQ(st["watchdog"].value("trips", 99), 0) << st.dump(2);
  EXPECT_GE(worker_of(st, dev_a).value("frames", 0), 20) << st.dump(2);  // hang's and steady's, punted
  const uint64_t callout_fail_before = st["counters"]["inbound"].value("callout_fail", 0ull);

  // 2. The hang: one marked frame, then a 0x88b5 probe every 5 ms until one
  // arrives (the fail action, decided in the kernel, once the watchdog has
  // quarantined the callout).
  a.rx.drain();
  const auto t0 = Clock::now();
  ASSERT_TRUE(a.tx.send_frame(a.frame(kHangType, 1000, true)).ok());
  std::optional<double> detected_ms;
  for (uint32_t seq = 1001; seq < 1001 + 600 && !detected_ms; ++seq) {  // at most ~3 s
    ASSERT_TRUE(a.tx.send_frame(a.frame(kHangType, seq)).ok());
    if (a.arrived(1001, 600, 5ms) > 0)
      detected_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }
  ASSERT_TRUE(detected_ms.has_value()) << "no xfp.test.hang frame took the fail action while its classify hung "
                                          "(no watchdog?)\n"
                                       << daemon.log();
  std::cout << fmt::format("[ measured ] hung classify: fail action in the kernel {:.0f} ms after the marked "
                           "frame was sent (budget {} ms)\n",
                           *detected_ms, kBudgetMs);
  EXPECT_GE(*detected_ms, kBudgetMs * 0.9);  // not before the budget
  EXPECT_LT(*detected_ms, kBudgetMs + 800) << "budget + budget/4 + slack for a loaded machine";

  // Counted, shown, logged.
  st = cli_json({"status"});
  const json& wd = st["watchdog"];
  EXPECT_EQ(wd.value("trips", 0), 1) << wd.dump(2);
  ASSERT_EQ(wd["callouts"].size(), 1u) << wd.dump(2);
  EXPECT_EQ(wd["callouts"][0].value("key", ""), "xfp.test.hang");
  EXPECT_EQ(wd["callouts"][0].value("trips", 0), 1);
  EXPECT_TRUE(wd["callouts"][0].value("quarantined", false));
  ASSERT_EQ(wd["stuck"].size(), 1u) << wd.dump(2);
  EXPECT_EQ(wd["stuck"][0].value("device", ""), dev_a);
  EXPECT_EQ(wd["stuck"][0].value("queue", 99), 0);
  EXPECT_GE(wd["stuck"][0].value("ms", 0), kBudgetMs);
  const std::string log = daemon.log();
  EXPECT_NE(log.find("watchdog: callout xfp.test.hang (id"), std::string::npos) << log;
  EXPECT_NE(log.find("classify on " + dev_a + " queue 0 has run for"), std::string::npos) << log;
  r = cli({"status"});
  EXPECT_NE(r.out.find("classify watchdog: budget 200 ms, 1 trip(s)"), std::string::npos) << r;
  EXPECT_NE(r.out.find("quarantined until its plugin is loaded again"), std::string::npos) << r;
  json list = cli_json({"callout", "list"});
  for (const json& c : list["plugins"][0]["callouts"]) {
    const bool hang = c.value("key", "") == "xfp.test.hang";
    EXPECT_EQ(c.value("watchdog_trips", 9), hang ? 1 : 0) << c.dump();
    EXPECT_EQ(c.value("quarantined", !hang), hang) << c.dump();
  }
  r = cli({"callout", "list"});
  EXPECT_NE(r.out.find("quarantined (1 trip(s))"), std::string::npos) << r;

  // Not stalled while the call still hangs: the stuck queue's other callout
  // takes its fail action in the kernel (open: delivered); interface B's
  // worker still runs xfp.test.steady in user space (its filter fails closed,
  // so arriving frames were permitted by the callout).
  const uint64_t b_frames = worker_of(st, dev_b).value("frames", 0ull);
  EXPECT_EQ(a.exchange(kSteadyOpenType, 2000, 10), 10u) << "the stuck queue's other callout stalled";
  EXPECT_EQ(b.exchange(kSteadyClosedType, 3000, 10), 10u) << "another interface's worker stalled";
  st = cli_json({"status"});
  EXPECT_GE(worker_of(st, dev_b).value("frames", 0ull), b_frames + 10) << "B's frames went through its worker";
  EXPECT_GT(st["counters"]["inbound"].value("callout_fail", 0ull), callout_fail_before);
  EXPECT_EQ(st["watchdog"]["stuck"].size(), 1u) << "the call still hangs";

  // 3. The call returns: the queue is served again, the callout stays
  // quarantined (its frames still take the fail action: they arrive, where
  // the callout would block them).
  gate.open();
  bool returned = false;
  for (int i = 0; i < 60 && !returned; ++i) {
    std::this_thread::sleep_for(50ms);
    returned = cli_json({"status"})["watchdog"]["stuck"].empty();
  }
  ASSERT_TRUE(returned) << daemon.log();
  EXPECT_NE(daemon.log().find("returned after at least"), std::string::npos);
  st = cli_json({"status"});
  const uint64_t a_frames = worker_of(st, dev_a).value("frames", 0ull);
  EXPECT_EQ(a.exchange(kSteadyOpenType, 4000, 10), 10u);
  st = cli_json({"status"});
  const uint64_t a_frames_after_steady = worker_of(st, dev_a).value("frames", 0ull);
  EXPECT_GE(a_frames_after_steady, a_frames + 10) << "A's worker takes the steady frames again (socket bound)";
  const uint64_t callout_fail = st["counters"]["inbound"].value("callout_fail", 0ull);
  EXPECT_EQ(a.exchange(kHangType, 5000, 10), 10u) << "the quarantined callout was consulted again";
  st = cli_json({"status"});
  EXPECT_EQ(worker_of(st, dev_a).value("frames", 0ull), a_frames_after_steady)
      << "the quarantined callout's frames are decided in the kernel, not punted";
  EXPECT_GE(st["counters"]["inbound"].value("callout_fail", 0ull), callout_fail + 10);
  EXPECT_TRUE(st["watchdog"]["callouts"][0].value("quarantined", false));

  // 4. A reload ends the quarantine; the count stays.
  r = cli({"callout", "unload", "hang"});
  ASSERT_EQ(r.code, 0) << r;
  r = cli({"callout", "load", kHangPlugin, "--config", load_config});
  ASSERT_EQ(r.code, 0) << r;
  st = cli_json({"status"});
  EXPECT_EQ(st["watchdog"].value("trips", 0), 1);
  EXPECT_FALSE(st["watchdog"]["callouts"][0].value("quarantined", true)) << st["watchdog"].dump(2);
  EXPECT_EQ(a.exchange(kHangType, 6000, 10, 400ms), 0u) << "the reloaded callout blocks again";

  EXPECT_EQ(daemon.stop(SIGTERM), 0) << daemon.log();
  EXPECT_TRUE(veth_a->remove().ok());
  EXPECT_TRUE(veth_b->remove().ok());
  EXPECT_TRUE(xns->remove().ok());
  EXPECT_TRUE(peer->remove().ok());
}

// 0 turns the watchdog off: the status says so, and a hung classify is not
// detected (its frames wait in the ring; nothing is quarantined).
TEST(HungPlugin, BudgetZeroMeansNoWatchdog) {
  XFP_REQUIRE_ROOT();
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto xns = NetNs::create();
  ASSERT_TRUE(xns.ok()) << xns.error().message;
  Daemon daemon(xns->name(), dir / "xfp.sock", dir / "state", dir / "daemon.log");
  ASSERT_TRUE(daemon.start({"--classify-budget-ms", "0"}));
  json st = daemon.cli_json({"status"});
  ASSERT_FALSE(st.is_discarded());
  EXPECT_EQ(st["watchdog"].value("budget_ms", 99), 0) << st.dump();
  Outcome r = daemon.cli({"status"});
  EXPECT_NE(r.out.find("classify watchdog: off"), std::string::npos) << r;
  EXPECT_EQ(daemon.stop(SIGTERM), 0) << daemon.log();
  EXPECT_TRUE(xns->remove().ok());
}

}  // namespace
}  // namespace xfp::faulttest
