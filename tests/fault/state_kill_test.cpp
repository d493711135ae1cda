// A kill while the daemon writes state.json (issue 6, "power cut while
// writing the filter set"). A client applies two large filter sets in turn,
// as fast as the daemon takes them; the daemon is SIGKILLed XFP_STATE_KILLS
// times (default 10): every other kill at a random moment, the others 0-3 ms
// after the temporary file appears (inside the write). After each kill, state.json
// must be one whole set (A or B, every filter of it, nothing else), and the
// restarted daemon must restore exactly that set.
//
// What SIGKILL proves and what it does not: it stops the process at any
// instruction, so it tests the write-temp / fsync / rename / fsync-dir order
// in user/state_store.cpp against a half-written file; the page cache
// survives it, so it cannot show the fsyncs reach the disk in a real power
// cut (that rests on the fsync of the file before the rename and of the
// directory after, and the filesystem's rename atomicity).
#include <random>
#include <thread>

#include <fmt/format.h>

#include "fault_support.hpp"
#include "xfp/state_store.hpp"

namespace xfp::faulttest {
namespace {

constexpr int kFilters = 3000;  // ~1 MB of state.json: the write takes long enough to be hit

std::string filter_set(char tag) {
  std::string s = "flush\n";
  for (int i = 0; i < kFilters; ++i)
    s += fmt::format("filter add name {}-{} remote-mac eq 02:00:{:02x}:00:{:02x}:{:02x} action block flags persistent\n",
                     tag, i, tag, (i >> 8) & 0xff, i & 0xff);
  return s;
}

// Which whole set the filter names are: 'A', 'B', '0' (none), or '?' (mixed, partial).
char which_set(const std::vector<std::string>& names) {
  if (names.empty()) return '0';
  char tag = names[0].empty() ? '?' : names[0][0];
  if (names.size() != static_cast<size_t>(kFilters)) return '?';
  std::vector<bool> seen(kFilters, false);
  for (const auto& n : names) {
    if (n.size() < 3 || n[0] != tag || n[1] != '-') return '?';
    int i = std::atoi(n.c_str() + 2);
    if (i < 0 || i >= kFilters || seen[i]) return '?';
    seen[i] = true;
  }
  return tag;
}

TEST(StateKill, AKillDuringTheWriteLeavesTheOldOrTheNewSet) {
  XFP_REQUIRE_ROOT();
  const int kills = env_int("XFP_STATE_KILLS", 10);
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto ns = test::NetNs::create();
  ASSERT_TRUE(ns.ok()) << ns.error().message;
  // No callouts: the test is about the state file; restarts are quicker.
  Daemon daemon(ns->name(), dir / "xfp.sock", dir / "state", dir / "daemon.log");
  daemon.set_start_timeout(30s);
  const std::vector<std::string> kNoCallouts{"--no-callouts"};
  ASSERT_TRUE(daemon.start(kNoCallouts));
  const std::string sets[2] = {filter_set('A'), filter_set('B')};
  const std::string state = dir / "state/state.json";

  std::mt19937 rng(static_cast<unsigned>(::getpid()));
  int mid_write = 0, old_set = 0, new_set = 0, applied_total = 0;
  for (int k = 0; k < kills; ++k) {
    // The writer: applies A, B, A, ... until the daemon dies under it.
    std::atomic<int> applied{0};
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      for (int i = 0; !stop; ++i) {
        clitest::RunOptions o;
        o.input = sets[i % 2];
        Outcome r = run_process({xfp_path(), "--socket", daemon.socket(), "apply", "-"}, o);
        if (r.code != 0) return;
        ++applied;
      }
    });
    // Past a first apply, then into a write: the temporary file exists from
    // its open() to its rename(); the kill comes 0-3 ms after it appears
    // (odd kills), or at a random moment of the applies (even kills).
    while (applied == 0 && daemon.pid() > 0) std::this_thread::sleep_for(5ms);
    if (k % 2 == 1) {
      std::error_code ec;
      const auto give_up = std::chrono::steady_clock::now() + 10s;
      while (!std::filesystem::exists(state + ".tmp", ec) && std::chrono::steady_clock::now() < give_up) {
      }
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 400000));
    }
    EXPECT_EQ(daemon.stop(SIGKILL), -1);
    const bool tmp_after = std::filesystem::exists(state + ".tmp");
    stop = true;
    writer.join();
    applied_total += applied;
    if (tmp_after) ++mid_write;  // killed between creating the temp file and the rename

    // The file: valid, and one whole set.
    std::string text = read_file(state);
    json j = json::parse(text, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "kill " << k << ": state.json is not JSON (" << text.size() << " bytes)";
    auto saved = state_from_json(j, state);
    ASSERT_TRUE(saved.ok()) << "kill " << k << ": " << saved.error().message;
    std::vector<std::string> names;
    for (const auto& f : saved->filters) names.push_back(f.name);
    const char in_file = which_set(names);
    ASSERT_NE(in_file, '?') << "kill " << k << ": state.json holds a partial set of " << names.size() << " filters";
    // The set applied last (acknowledged) or the one being applied.
    const char last_acked = applied % 2 == 1 ? 'A' : 'B';
    if (in_file == last_acked) ++old_set;
    else ++new_set;

    // The restart restores exactly that set.
    ASSERT_TRUE(daemon.start(kNoCallouts)) << "kill " << k;
    Outcome r = run_process({xfp_path(), "--socket", daemon.socket(), "--json", "filter", "list"});
    ASSERT_EQ(r.code, 0) << r;
    json list = json::parse(r.out, nullptr, false);
    std::vector<std::string> restored;
    for (const json& f : list.value("filters", json::array())) restored.push_back(f.value("name", std::string()));
    EXPECT_EQ(which_set(restored), in_file) << "kill " << k;
  }
  std::cout << fmt::format(
      "[ measured ] {} kills during back-to-back applies of {} filters ({} applies acknowledged): state.json "
      "always whole; it held the last acknowledged set {} times and the set being applied {} times; {} kills "
      "landed between the temp file's creation and its rename\n",
      kills, kFilters, applied_total, old_set, new_set, mid_write);
  EXPECT_EQ(daemon.stop(SIGTERM), 0) << daemon.log();
  EXPECT_TRUE(ns->remove().ok());
}

}  // namespace
}  // namespace xfp::faulttest
