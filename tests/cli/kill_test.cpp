// SIGKILL under traffic, then a restart: the kernel keeps classifying with
// the killed daemon's program, each callout filter falls back to its fail
// action as soon as the workers' AF_XDP sockets are gone, and a restarted
// daemon takes the interface over without a moment with no program.
//
// Two test namespaces joined by a veth: "peer" sends a steady stream of
// marked frames of two EtherTypes, "xfp" runs the daemon attached to its end.
// Both types are callout filters of the probe plugin (mode=permit): 0x88b5
// fails closed, 0x88b6 fails open (permit-if-callout-unregistered). The
// latencies are printed as "[ measured ]" lines. After a clean stop no
// program of either daemon may stay loaded (`bpftool prog show`).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli_harness.hpp"
#include "integration/probe_plugin/probe.h"
#include "support/frame_builder.hpp"
#include "support/netns.hpp"
#include "support/packet_io.hpp"
#include "xfp/abi.h"

namespace xfp::clitest {
namespace {

using Clock = std::chrono::steady_clock;
using test::FrameBuilder;
using test::Mac;
using test::NetNs;
using test::PacketSocket;
using test::ScopedNetnsEnter;
using test::VethPair;

constexpr Mac kPeerMac{0x02, 0x00, 0x00, 0x4b, 0x11, 0x01};
constexpr Mac kXfpMac{0x02, 0x00, 0x00, 0x4b, 0x11, 0x02};
constexpr uint16_t kFailClosed = 0x88b5;  // even sequence numbers
constexpr uint16_t kFailOpen = 0x88b6;    // odd sequence numbers
constexpr uint32_t kMaxFrames = 400'000;  // the sender stops there (400 s at its rate)
constexpr auto kSendInterval = std::chrono::microseconds(1000);
// user/datapath.cpp's fixed TC filter handle and priority.
constexpr uint32_t kTcHandle = 0x7866;
constexpr uint32_t kTcPriority = 1;

uint16_t type_of(uint32_t seq) { return seq % 2 == 0 ? kFailClosed : kFailOpen; }

std::string build_dir() {
  if (const char* dir = std::getenv("XFP_BUILD_DIR"); dir && *dir) return dir;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : self.parent_path().parent_path().string();
}

std::string probe_path() { return build_dir() + "/tests/integration/probe_plugin/probe.so"; }

int64_t ns_of(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
double ms_between(int64_t from_ns, int64_t to_ns) { return static_cast<double>(to_ns - from_ns) / 1e6; }

// The calling thread must be in the interface's namespace (netlink).
uint32_t xdp_prog_id(int ifindex) {
  uint32_t id = 0;
  return bpf_xdp_query_id(ifindex, 0, &id) == 0 ? id : 0;
}

uint32_t tc_prog_id(int ifindex) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kTcHandle, .priority = kTcPriority);
  return bpf_tc_query(&hook, &opts) == 0 ? opts.prog_id : 0;
}

// The inbound layer counters of an attached program's daemon: found through
// the program's maps, so they stay readable after the daemon is killed.
class LayerCounterReader {
 public:
  explicit LayerCounterReader(uint32_t prog_id) {
    int prog = bpf_prog_get_fd_by_id(prog_id);
    if (prog < 0) return;
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    std::vector<uint32_t> ids;
    if (bpf_obj_get_info_by_fd(prog, &info, &len) == 0 && info.nr_map_ids > 0) {
      ids.resize(info.nr_map_ids);
      const uint32_t n = info.nr_map_ids;
      info = {};
      info.nr_map_ids = n;
      info.map_ids = reinterpret_cast<uint64_t>(ids.data());
      len = sizeof info;
      if (bpf_obj_get_info_by_fd(prog, &info, &len) != 0) ids.clear();
    }
    ::close(prog);
    for (uint32_t id : ids) {
      int fd = bpf_map_get_fd_by_id(id);
      if (fd < 0) continue;
      bpf_map_info mi{};
      uint32_t mlen = sizeof mi;
      if (fd_ < 0 && bpf_obj_get_info_by_fd(fd, &mi, &mlen) == 0 && std::string(mi.name) == "xfp_lcnt_v2") {
        fd_ = fd;
      } else {
        ::close(fd);
      }
    }
  }
  ~LayerCounterReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  LayerCounterReader(const LayerCounterReader&) = delete;
  LayerCounterReader& operator=(const LayerCounterReader&) = delete;

  bool ok() const { return fd_ >= 0; }
  uint64_t callout_fail() const {
    std::vector<xfp_layer_counters> per_cpu(static_cast<size_t>(std::max(libbpf_num_possible_cpus(), 1)));
    uint32_t key = XFP_LAYER_INBOUND;
    if (bpf_map_lookup_elem(fd_, &key, per_cpu.data()) != 0) return 0;
    uint64_t sum = 0;
    for (const auto& c : per_cpu) sum += c.c[XFP_CNT_CALLOUT_FAIL];
    return sum;
  }

 private:
  int fd_ = -1;
};

// Runs `body(stop)` on a thread until destroyed (also on a failed assertion).
class Worker {
 public:
  template <typename Body>
  explicit Worker(Body body) : thread_([this, body] { body(stop_); }) {}
  ~Worker() { join(); }
  void join() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Peer → xfp: one marked frame every kSendInterval, the two types in turn;
// the xfp side's stack records when each sequence number arrives.
class Traffic {
 public:
  Traffic(PacketSocket sender, PacketSocket receiver)
      : sent_(kMaxFrames), received_(kMaxFrames), sender_sock_(std::move(sender)), receiver_sock_(std::move(receiver)) {
    receiver_.emplace([this](std::atomic<bool>& stop) { receive_loop(stop); });
    sender_.emplace([this](std::atomic<bool>& stop) { send_loop(stop); });
  }
  ~Traffic() { stop(); }
  void stop() {
    sender_.reset();
    receiver_.reset();
  }

  uint32_t sent_count() const { return next_.load(); }
  int64_t sent_at(uint32_t seq) const { return sent_[seq].load(); }
  int64_t received_at(uint32_t seq) const { return received_[seq].load(); }
  std::string send_error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

  // Waits until a frame of `type` sent at or after `since` arrives.
  bool wait_for(uint16_t type, int64_t since, std::chrono::milliseconds limit) const {
    const auto end = Clock::now() + limit;
    while (Clock::now() < end) {
      for (uint32_t s = 0, n = sent_count(); s < n; ++s)
        if (type_of(s) == type && sent_at(s) >= since && received_at(s) != 0) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

 private:
  void send_loop(std::atomic<bool>& stop) {
    auto next = Clock::now();
    while (!stop && next_ < kMaxFrames) {
      const uint32_t seq = next_;
      auto frame = FrameBuilder().dst(kXfpMac).src(kPeerMac).ethertype(type_of(seq)).marker(seq).pad_to(60).build();
      sent_[seq] = ns_of(Clock::now());
      if (auto s = sender_sock_.send_frame(frame); !s) {
        std::lock_guard<std::mutex> lock(mu_);
        error_ = s.error().message;
        return;
      }
      next_ = seq + 1;
      next += kSendInterval;
      std::this_thread::sleep_until(next);
    }
  }

  void receive_loop(std::atomic<bool>& stop) {
    auto mine = [](std::span<const uint8_t> f) { return f.size() >= 14 && test::has_marker(f); };
    while (!stop) {
      auto frames = receiver_sock_.receive(20ms, mine, 1);
      const int64_t now = ns_of(Clock::now());
      if (!frames) continue;
      for (const auto& f : *frames) {
        auto seq = test::find_marker(f);
        const uint16_t type = static_cast<uint16_t>(f[12] << 8 | f[13]);
        if (seq && *seq < kMaxFrames && type == type_of(*seq) && received_[*seq] == 0) received_[*seq] = now;
      }
    }
  }

  std::vector<std::atomic<int64_t>> sent_;      // steady-clock ns, 0: not sent
  std::vector<std::atomic<int64_t>> received_;  // steady-clock ns, 0: not (yet) received
  std::atomic<uint32_t> next_{0};
  PacketSocket sender_sock_;
  PacketSocket receiver_sock_;
  mutable std::mutex mu_;
  std::string error_;
  std::optional<Worker> receiver_;
  std::optional<Worker> sender_;
};

// `bpftool prog show` entries of xfp's programs.
struct ProgEntry {
  uint32_t id = 0;
  std::string name;
  std::set<uint32_t> maps;
};

bool is_xfp_prog_name(const std::string& n) {
  return n == "xfp_inbound" || n == "xfp_outbound" || n.rfind("xfp_reinject", 0) == 0;
}

std::vector<ProgEntry> xfp_programs() {
  std::vector<ProgEntry> out;
  auto r = test::run_command({"bpftool", "prog", "show", "--json"});
  if (!r.ok() || !r->succeeded()) {
    ADD_FAILURE() << "bpftool prog show: " << (r.ok() ? r->output : r.error().message);
    return out;
  }
  json j = json::parse(r->output, nullptr, false);
  if (!j.is_array()) {
    ADD_FAILURE() << "bpftool prog show --json: " << r->output;
    return out;
  }
  for (const json& p : j) {
    ProgEntry e{p.value("id", 0u), p.value("name", std::string()), {}};
    if (!is_xfp_prog_name(e.name)) continue;
    for (const json& m : p.value("map_ids", json::array())) e.maps.insert(m.get<uint32_t>());
    out.push_back(std::move(e));
  }
  return out;
}

// Namespaces of other test processes: they may load xfp programs meanwhile,
// and then a system-wide count says nothing about this test.
bool other_tests_running() {
  auto r = test::run_command({"ip", "netns", "list"});
  if (!r.ok()) return true;
  const std::string mine = fmt::format("xfpt-{}-", ::getpid());
  std::istringstream lines(r->output);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("xfpt-", 0) == 0 && line.rfind(mine, 0) != 0) return true;
  return false;
}

class KillFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    ASSERT_TRUE(std::filesystem::exists(probe_path())) << probe_path() << " is not built";
    auto peer = NetNs::create();
    ASSERT_TRUE(peer.ok()) << peer.error().message;
    peer_ns_.emplace(std::move(*peer));
    auto xfp = NetNs::create();
    ASSERT_TRUE(xfp.ok()) << xfp.error().message;
    xfp_ns_.emplace(std::move(*xfp));
    test::VethOptions vo;
    vo.mac_a = kPeerMac;
    vo.mac_b = kXfpMac;
    auto pair = VethPair::create(*peer_ns_, *xfp_ns_, vo);
    ASSERT_TRUE(pair.ok()) << pair.error().message;
    veth_.emplace(std::move(*pair));
    ASSERT_FALSE(dir_.path().empty());
    daemon_.emplace(xfp_ns_->name(), dir_ / "xfp.sock", dir_ / "state", dir_ / "daemon.log");
  }

  void TearDown() override {
    traffic_.reset();
    if (daemon_ && daemon_->running()) { EXPECT_EQ(daemon_->stop(), 0) << daemon_->log(); }
    daemon_.reset();
    const std::string peer = peer_ns_ ? peer_ns_->name() : "", xfp = xfp_ns_ ? xfp_ns_->name() : "";
    if (veth_) { EXPECT_TRUE(veth_->remove().ok()); }
    veth_.reset();
    if (xfp_ns_) { EXPECT_TRUE(xfp_ns_->remove().ok()); }
    if (peer_ns_) { EXPECT_TRUE(peer_ns_->remove().ok()); }
    xfp_ns_.reset();
    peer_ns_.reset();
    for (const std::string& n : {peer, xfp}) {
      if (n.empty()) continue;
      auto exists = test::netns_exists(n);
      EXPECT_TRUE(exists.ok() && !*exists) << n << " is left behind";
    }
  }

  Outcome xfp(const std::vector<std::string>& args) const {
    std::vector<std::string> a{"ip", "netns", "exec", xfp_ns_->name(), xfp_path(), "--socket", daemon_->socket()};
    a.insert(a.end(), args.begin(), args.end());
    return run_process(a);
  }

  // Programs and maps the daemons use in the xfp namespace (`bpftool net`
  // lists XDP and TC programs of every link there, the injection pair's too).
  void remember_daemon_programs() {
    auto r = test::run_command_in_netns(*xfp_ns_, {"bpftool", "net", "show", "--json"});
    ASSERT_TRUE(r.ok() && r->succeeded()) << (r.ok() ? r->output : r.error().message);
    json j = json::parse(r->output, nullptr, false);
    ASSERT_TRUE(j.is_array()) << r->output;
    std::set<uint32_t> ids;
    for (const json& section : j)
      for (const char* kind : {"xdp", "tc"})
        for (const json& p : section.value(kind, json::array())) ids.insert(p.value("id", 0u));
    for (const ProgEntry& e : xfp_programs())
      if (ids.count(e.id)) {
        our_progs_.insert(e.id);
        our_maps_.insert(e.maps.begin(), e.maps.end());
      }
  }

  std::optional<NetNs> peer_ns_;
  std::optional<NetNs> xfp_ns_;
  std::optional<VethPair> veth_;
  TempDir dir_;
  std::optional<Daemon> daemon_;
  std::optional<Traffic> traffic_;
  std::set<uint32_t> our_progs_, our_maps_;
};

class KillTest : public KillFixture, public ::testing::WithParamInterface<std::string> {};

// The parameter is the attach's --mode: the takeover keeps the stale
// program's mode, and each mode has its own slot in the kernel.
TEST_P(KillTest, SigkillAppliesFailActionsAndRestartTakesOverWithoutAGap) {
  const bool others_before = other_tests_running();
  const size_t global_before = xfp_programs().size();
  const std::string dev = veth_->b().name;
  const int ifindex = veth_->b().ifindex;

  // 1. Daemon, attachment, plugin, the two callout filters (persistent: the
  //    restart restores them with the plugin).
  ASSERT_TRUE(daemon_->start());
  Outcome r = xfp({"attach", dev, "--mode", GetParam()});
  ASSERT_EQ(r.code, 0) << r;
  r = xfp({"callout", "load", probe_path(), "--config", "mode=permit"});
  ASSERT_EQ(r.code, 0) << r;
  r = xfp({"filter", "add", "name", "fail-closed", "ethertype", "eq", "0x88b5", "action", "callout-terminating",
           "callout", PROBE_KEY, "flags", "persistent"});
  ASSERT_EQ(r.code, 0) << r;
  r = xfp({"filter", "add", "name", "fail-open", "ethertype", "eq", "0x88b6", "action", "callout-terminating",
           "callout", PROBE_KEY, "flags", "persistent,permit-if-callout-unregistered"});
  ASSERT_EQ(r.code, 0) << r;
  remember_daemon_programs();

  uint32_t prog_before = 0, tc_before = 0;
  {
    auto in = ScopedNetnsEnter::enter(*xfp_ns_);
    ASSERT_TRUE(in.ok()) << in.error().message;
    prog_before = xdp_prog_id(ifindex);
    tc_before = tc_prog_id(ifindex);
  }
  ASSERT_NE(prog_before, 0u);
  ASSERT_NE(tc_before, 0u);
  LayerCounterReader counters(prog_before);
  ASSERT_TRUE(counters.ok()) << "cannot find xfp_lcnt_v2 of program " << prog_before;

  auto tx = PacketSocket::open(*peer_ns_, veth_->a().name);
  ASSERT_TRUE(tx.ok()) << tx.error().message;
  auto rx = PacketSocket::open(*xfp_ns_, dev);
  ASSERT_TRUE(rx.ok()) << rx.error().message;
  traffic_.emplace(std::move(*tx), std::move(*rx));
  const int64_t t_start = ns_of(Clock::now());
  ASSERT_TRUE(traffic_->wait_for(kFailClosed, t_start, 5s)) << "the plugin does not permit 0x88b5\n" << daemon_->log();
  ASSERT_TRUE(traffic_->wait_for(kFailOpen, t_start, 5s)) << "the plugin does not permit 0x88b6\n" << daemon_->log();
  std::this_thread::sleep_for(300ms);  // steady state: both types served by the plugin

  // 2. SIGKILL. The kernel's callout-fail counter, polled tightly, dates the
  //    first frame decided by a fail action.
  const uint64_t fail_before = counters.callout_fail();
  std::atomic<int64_t> t_first_fail{0};
  std::optional<Worker> fail_watch;
  fail_watch.emplace([&](std::atomic<bool>& stop) {
    while (!stop) {
      if (counters.callout_fail() > fail_before) {
        t_first_fail = ns_of(Clock::now());
        return;
      }
      std::this_thread::sleep_for(200us);
    }
  });
  const int64_t t_kill = ns_of(Clock::now());
  ASSERT_EQ(daemon_->stop(SIGKILL), -1);
  std::this_thread::sleep_for(2s);
  fail_watch.reset();
  ASSERT_EQ(traffic_->send_error(), "");

  ASSERT_NE(t_first_fail.load(), 0) << "no frame met a fail action within 2 s of the kill";
  const double fail_ms = ms_between(t_kill, t_first_fail);
  EXPECT_LT(fail_ms, 1000.0);
  EXPECT_GT(counters.callout_fail(), fail_before);
  // Fail closed: nothing sent 1 s after the kill (or later) arrives.
  // Fail open: everything sent between 1 s and 2 s after the kill arrives.
  const int64_t one_s = 1'000'000'000;
  int64_t last_closed_sent = 0;  // the latest-sent 0x88b5 that still arrived
  size_t open_sent = 0, open_arrived = 0, closed_late = 0;
  int64_t open_gap = 0, prev_open = t_kill;  // longest wait between 0x88b6 arrivals from the kill on
  for (uint32_t s = 0, n = traffic_->sent_count(); s < n; ++s) {
    const int64_t sent = traffic_->sent_at(s), got = traffic_->received_at(s);
    if (type_of(s) == kFailClosed) {
      if (got != 0) last_closed_sent = std::max(last_closed_sent, sent);
      if (got != 0 && sent >= t_kill + one_s) ++closed_late;
    } else {
      if (sent >= t_kill + one_s && sent < t_kill + 2 * one_s) {
        ++open_sent;
        open_arrived += got != 0;
      }
      if (got != 0 && got >= t_kill) {
        open_gap = std::max(open_gap, got - prev_open);
        prev_open = std::max(prev_open, got);
      }
    }
  }
  const double closed_ms = ms_between(t_kill, last_closed_sent);
  std::printf("[ measured ] SIGKILL -> first frame decided by a fail action (callout-fail counter): %.2f ms\n",
              fail_ms);
  std::printf("[ measured ] last fail-closed frame to arrive was sent %.2f ms after the kill\n", closed_ms);
  std::printf("[ measured ] longest fail-open silence after the kill: %.2f ms; %zu/%zu arrived in [1 s, 2 s)\n",
              static_cast<double>(open_gap) / 1e6, open_arrived, open_sent);
  EXPECT_EQ(closed_late, 0u) << "0x88b5 frames still arrive more than 1 s after the kill";
  EXPECT_LT(closed_ms, 1000.0);
  EXPECT_GT(open_sent, 400u);
  EXPECT_GE(open_arrived * 100, open_sent * 99) << open_arrived << " of " << open_sent;
  EXPECT_LT(open_gap, one_s) << "0x88b6 stopped for a second or more";
  {
    auto in = ScopedNetnsEnter::enter(*xfp_ns_);
    ASSERT_TRUE(in.ok());
    EXPECT_EQ(xdp_prog_id(ifindex), prog_before) << "the killed daemon's XDP program must stay attached";
    EXPECT_EQ(tc_prog_id(ifindex), tc_before);
  }

  // 3. Restart with the same state: a poller in the namespace watches the
  //    attached XDP and TC programs through the whole start.
  std::atomic<uint64_t> polls{0}, xdp_missing{0}, tc_missing{0};
  std::mutex seen_mu;
  std::set<uint32_t> xdp_seen, tc_seen;
  std::optional<Worker> poller;
  poller.emplace([&](std::atomic<bool>& stop) {
    auto in = ScopedNetnsEnter::enter(*xfp_ns_);
    if (!in.ok()) return;
    while (!stop) {
      const uint32_t x = xdp_prog_id(ifindex), t = tc_prog_id(ifindex);
      ++polls;
      if (x == 0) ++xdp_missing;
      if (t == 0) ++tc_missing;
      std::lock_guard<std::mutex> lock(seen_mu);
      xdp_seen.insert(x);
      tc_seen.insert(t);
    }
  });
  for (auto end = Clock::now() + 2s; polls < 10 && Clock::now() < end;) std::this_thread::sleep_for(1ms);
  ASSERT_GE(polls.load(), 10u) << "the poller does not run";
  const auto t_restart = Clock::now();
  ASSERT_TRUE(daemon_->start()) << daemon_->log();
  const int64_t t_up = ns_of(Clock::now());
  EXPECT_TRUE(traffic_->wait_for(kFailClosed, t_up, 5s))
      << "0x88b5 is not permitted by the plugin again after the restart\n"
      << daemon_->log();
  const double resume_ms = ms_between(ns_of(t_restart), ns_of(Clock::now()));
  poller.reset();
  std::printf("[ measured ] restart: %llu polls of the attached programs, XDP ids seen %zu, fail-closed type "
              "permitted again %.0f ms after the start began\n",
              static_cast<unsigned long long>(polls.load()), xdp_seen.size(), resume_ms);
  EXPECT_EQ(xdp_missing.load(), 0u) << "the interface was without an XDP program during the restart";
  EXPECT_EQ(tc_missing.load(), 0u) << "the interface was without the TC egress filter during the restart";
  uint32_t prog_after = 0;
  {
    auto in = ScopedNetnsEnter::enter(*xfp_ns_);
    ASSERT_TRUE(in.ok());
    prog_after = xdp_prog_id(ifindex);
    EXPECT_NE(tc_prog_id(ifindex), tc_before) << "the TC filter was not replaced";
  }
  EXPECT_NE(prog_after, 0u);
  EXPECT_NE(prog_after, prog_before) << "the restarted daemon did not take the interface over";
  EXPECT_EQ(xdp_seen, (std::set<uint32_t>{prog_before, prog_after}));
  remember_daemon_programs();

  json status = json::parse(xfp({"--json", "status"}).out, nullptr, false);
  ASSERT_TRUE(status.is_object());
  ASSERT_EQ(status["attachments"].size(), 1u) << status.dump(2);
  EXPECT_EQ(status["attachments"][0].value("loader", ""), "single program (replaced a stale xfp program atomically)")
      << status.dump(2);
  EXPECT_EQ(status["attachments"][0].value("xdp_mode", ""), GetParam());
  r = xfp({"callout", "list"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find(PROBE_KEY), std::string::npos) << r;
  EXPECT_NE(daemon_->log().find("replaced a stale xfp XDP program"), std::string::npos) << daemon_->log();

  // 4. A clean stop detaches the taken-over program, and nothing of either
  //    daemon stays loaded.
  traffic_->stop();
  ASSERT_EQ(daemon_->stop(), 0) << daemon_->log();
  {
    auto in = ScopedNetnsEnter::enter(*xfp_ns_);
    ASSERT_TRUE(in.ok());
    EXPECT_EQ(xdp_prog_id(ifindex), 0u) << "the taken-over XDP program was not detached";
    EXPECT_EQ(tc_prog_id(ifindex), 0u);
  }
  // The kernel frees a detached program after a grace period (TC filters
  // through a deferred work item): give it a moment.
  EXPECT_FALSE(our_progs_.empty());
  std::string leaked;
  for (auto end = Clock::now() + 3s;;) {
    leaked.clear();
    for (const ProgEntry& e : xfp_programs()) {
      const bool ours = our_progs_.count(e.id) || std::any_of(e.maps.begin(), e.maps.end(), [&](uint32_t m) {
                          return our_maps_.count(m) != 0;
                        });
      if (ours) leaked += fmt::format(" {} (id {})", e.name, e.id);
    }
    if (leaked.empty() || Clock::now() > end) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(leaked, "") << "programs of the daemons are still loaded";
  const size_t global_after = xfp_programs().size();
  std::printf("[ measured ] bpftool prog show: %zu attached programs of the two daemons tracked (with %zu maps), "
              "%s; %zu xfp programs before, %zu after (system-wide)\n",
              our_progs_.size(), our_maps_.size(), leaked.empty() ? "none left" : "SOME LEFT", global_before,
              global_after);
  // System-wide, the count is exact only while no other xfp test runs on the
  // machine (they load and free programs at any moment); the check above on
  // this test's own programs holds regardless.
  if (!others_before && !other_tests_running() && global_after != global_before)
    std::printf("[ note     ] the system-wide count changed: another xfp user may have run meanwhile\n");
}

INSTANTIATE_TEST_SUITE_P(Modes, KillTest, ::testing::Values("native", "generic"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace xfp::clitest
