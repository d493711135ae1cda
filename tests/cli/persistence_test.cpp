// The state file across daemon restarts: persistent filters come back with
// their ids, the rest does not; a bad state file stops the start; SIGKILL at
// any moment leaves a valid file; a vanished interface is only a warning.
#include <atomic>

#include "cli/cli_harness.hpp"

namespace xfp::clitest {
namespace {

using PersistenceTest = DaemonTest;

bool has_xdp(const test::NetNs& ns, const std::string& ifname) {
  Outcome r = run_process({"ip", "-n", ns.name(), "link", "show", "dev", ifname});
  return r.out.find("prog/xdp") != std::string::npos;
}

TEST_F(PersistenceTest, RestartRestoresPersistentFiltersWithTheirIds) {
  const std::string dev = veth_->a().name;
  ASSERT_EQ(xfp({"sublayer", "add", "audit", "weight", "50"}).code, 0);
  ASSERT_EQ(xfp({"default", "inbound", "block"}).code, 0);
  ASSERT_EQ(xfp({"filter", "add", "name", "p1", "ethertype", "eq", "arp", "action", "permit", "flags", "persistent"}).code, 0);
  ASSERT_EQ(xfp({"filter", "add", "name", "n1", "ethertype", "eq", "ipv6", "action", "block"}).code, 0);
  ASSERT_EQ(xfp({"filter", "add", "name", "p2", "sublayer", "audit", "layer", "outbound", "vlan", "range", "10-20",
                 "action", "block", "flags", "persistent,disabled"})
                .code,
            0);
  Outcome r = xfp({"attach", dev});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_TRUE(has_xdp(*ns_, dev));
  const json before = xfp_json({"filter", "list"});

  ASSERT_EQ(daemon_->stop(SIGTERM), 0) << daemon_->log();
  EXPECT_NE(daemon_->log().find("SIGTERM received: detaching and exiting"), std::string::npos) << daemon_->log();
  EXPECT_FALSE(has_xdp(*ns_, dev)) << "the daemon left its XDP program attached";
  EXPECT_NE(::access(daemon_->socket().c_str(), F_OK), 0) << "the socket file outlived the daemon";

  json state = json::parse(read_file(daemon_->state_file()));
  EXPECT_EQ(state["format"], "xfp-state");
  EXPECT_EQ(state["version"], 1);
  EXPECT_EQ(state["filters"].size(), 2u);

  ASSERT_TRUE(daemon_->start());
  json after = xfp_json({"filter", "list"});
  ASSERT_EQ(after["filters"].size(), 2u) << after;
  EXPECT_EQ(after["filters"][0], before["filters"][0]);  // p1, id 1, everything equal
  EXPECT_EQ(after["filters"][1], before["filters"][2]);  // p2, id 3
  EXPECT_EQ(after["filters"][1]["id"], 3);
  json st = xfp_json({"status"});
  EXPECT_EQ(st["defaults"]["inbound"], "block");
  EXPECT_EQ(st["sublayers"], 2);
  ASSERT_EQ(st["attachments"].size(), 1u) << st;
  EXPECT_EQ(st["attachments"][0]["device"], dev);
  EXPECT_TRUE(has_xdp(*ns_, dev));

  // Ids are never handed out twice: n1's id 2 is not reused after the restart.
  ASSERT_EQ(xfp({"filter", "add", "name", "n2", "ethertype", "eq", "lldp", "action", "block"}).code, 0);
  EXPECT_EQ(filter_ids(), (std::vector<uint64_t>{1, 3, 4}));
  ASSERT_EQ(xfp({"filter", "delete", "n2"}).code, 0);

  // Deleting a persistent filter is persisted too.
  ASSERT_EQ(xfp({"filter", "delete", "p1"}).code, 0);
  ASSERT_EQ(daemon_->stop(SIGINT), 0);
  ASSERT_TRUE(daemon_->start());
  EXPECT_EQ(filter_ids(), std::vector<uint64_t>{3});
  ASSERT_EQ(xfp({"filter", "add", "name", "n3", "ethertype", "eq", "lldp", "action", "block"}).code, 0);
  EXPECT_EQ(filter_ids(), (std::vector<uint64_t>{3, 5}));
}

TEST_F(PersistenceTest, BadStateFileRefusesToStart) {
  ASSERT_EQ(xfp({"filter", "add", "name", "keep", "ethertype", "eq", "arp", "action", "block", "flags", "persistent"}).code, 0);
  ASSERT_EQ(daemon_->stop(), 0);
  const std::string path = daemon_->state_file();
  const std::string good = read_file(path);
  RunOptions opt;
  opt.timeout = 60s;

  write_file(path, good.substr(0, good.size() / 2));  // torn
  Outcome r = run_process(daemon_->argv(), opt);
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_NE(r.err.find("xfp: state file " + path +
                       " is corrupt: it is not valid JSON; repair or remove it, or start the daemon with --reset-state\n"),
            std::string::npos)
      << r;

  json j = json::parse(good);
  j["version"] = 7;
  write_file(path, j.dump());
  r = run_process(daemon_->argv(), opt);
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_NE(r.err.find("xfp: state file " + path +
                       " is not valid: format version 7, but this xfp reads version 1; repair or remove it, or "
                       "start the daemon with --reset-state\n"),
            std::string::npos)
      << r;

  j = json::parse(good);
  j["filters"][0]["conditions"][0]["value"] = "not-an-ethertype";
  write_file(path, j.dump());
  r = run_process(daemon_->argv(), opt);
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_NE(r.err.find("xfp: state file " + path + " is not valid: filter 1: filter JSON: condition 1: unknown ethertype"),
            std::string::npos)
      << r;
  EXPECT_NE(::access(daemon_->socket().c_str(), F_OK), 0) << "a daemon that refused to start left its socket";

  // --reset-state starts empty and keeps the bad file aside.
  const std::string bad = read_file(path);
  ASSERT_TRUE(daemon_->start({"--reset-state"}));
  EXPECT_TRUE(filter_ids().empty());
  EXPECT_EQ(read_file(path + ".old"), bad);
  EXPECT_NE(daemon_->log().find("--reset-state: moved the previous state to " + path + ".old"), std::string::npos);
}

TEST_F(PersistenceTest, KillDashNineLeavesAValidStateFile) {
  std::atomic<int> acked{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop && i < 500; ++i) {
      Outcome r = xfp({"filter", "add", "name", "f" + std::to_string(i), "vlan", "eq", std::to_string(i % 4000 + 1),
                       "action", "block", "flags", "persistent"});
      if (r.code != 0) break;
      ++acked;
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (acked < 5 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(daemon_->stop(SIGKILL), -1);
  stop = true;
  writer.join();
  const int n = acked.load();
  ASSERT_GE(n, 5) << daemon_->log();

  const std::string text = read_file(daemon_->state_file());
  json state = json::parse(text, nullptr, false);
  ASSERT_FALSE(state.is_discarded()) << text;
  EXPECT_EQ(state["format"], "xfp-state");
  const size_t saved = state["filters"].size();
  // Every acknowledged filter is saved; one more may have been saved just
  // before the kill without its reply getting out.
  EXPECT_GE(saved, static_cast<size_t>(n));
  EXPECT_LE(saved, static_cast<size_t>(n) + 1);

  // The stale socket file is replaced, and everything saved comes back.
  ASSERT_TRUE(daemon_->start()) << daemon_->log();
  std::vector<uint64_t> ids = filter_ids();
  EXPECT_EQ(ids.size(), saved);
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], i + 1);
}

// Makes a directory immutable (even root cannot create files in it) for
// the guard's lifetime.
class Immutable {
 public:
  explicit Immutable(std::string dir) : dir_(std::move(dir)) { ok_ = run_process({"chattr", "+i", dir_}).code == 0; }
  ~Immutable() { run_process({"chattr", "-i", dir_}); }
  bool ok() const { return ok_; }

 private:
  std::string dir_;
  bool ok_ = false;
};

TEST_F(PersistenceTest, AFailedSaveChangesNothing) {
  const std::string dev = veth_->a().name;
  ASSERT_EQ(xfp({"filter", "add", "name", "a", "ethertype", "eq", "arp", "action", "block", "flags", "persistent"}).code, 0);
  const json before = xfp_json({"filter", "list"});
  const std::string saved = read_file(daemon_->state_file());
  {
    Immutable frozen(daemon_->state_dir());
    if (!frozen.ok()) GTEST_SKIP() << "chattr +i is not available on " << daemon_->state_dir();
    const std::string expected = "xfp: saving the state: creating " + daemon_->state_file() +
                                 ".tmp: Operation not permitted\n";
    Outcome r = xfp({"filter", "add", "name", "b", "ethertype", "eq", "lldp", "action", "block"});
    EXPECT_EQ(r.code, 1) << r;
    EXPECT_EQ(r.err, expected);
    r = xfp({"attach", dev});
    EXPECT_EQ(r.code, 1) << r;
    EXPECT_EQ(r.err, expected);
    EXPECT_TRUE(xfp_json({"status"})["attachments"].empty());
    EXPECT_FALSE(has_xdp(*ns_, dev)) << "a failed attach left the program attached";
    EXPECT_EQ(xfp_json({"filter", "list"}), before);
  }
  EXPECT_EQ(read_file(daemon_->state_file()), saved);
  Outcome r = xfp({"filter", "add", "name", "b", "ethertype", "eq", "lldp", "action", "block"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "added filter 2\n");
}

TEST_F(PersistenceTest, MissingInterfaceAtRestoreIsAWarning) {
  const std::string dev = veth_->b().name;
  ASSERT_EQ(xfp({"attach", dev, "--mode", "generic", "--layers", "inbound"}).code, 0);
  ASSERT_EQ(daemon_->stop(), 0);
  ASSERT_TRUE(veth_->remove().ok());

  ASSERT_TRUE(daemon_->start());
  EXPECT_NE(daemon_->log().find("interface '" + dev + "' from the state file does not exist; not attached"),
            std::string::npos)
      << daemon_->log();
  json st = xfp_json({"status"});
  EXPECT_TRUE(st["attachments"].empty());
  ASSERT_EQ(st["missing"].size(), 1u) << st;
  EXPECT_EQ(st["missing"][0], json::parse(R"({"device":")" + dev +
                                          R"(","mode":"generic","inbound":true,"outbound":false})"));
  Outcome r = xfp({"status"});
  EXPECT_NE(r.out.find("not attached: " + dev + " is in the state file but does not exist\n"), std::string::npos) << r;

  // detach forgets it; a second detach has nothing to do.
  r = xfp({"detach", dev});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_TRUE(xfp_json({"status"})["missing"].empty());
  EXPECT_TRUE(json::parse(read_file(daemon_->state_file()))["attachments"].empty());
  r = xfp({"detach", dev});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: '" + dev + "' is not attached\n");
}

}  // namespace
}  // namespace xfp::clitest
