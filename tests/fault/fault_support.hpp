// Shared by the fault tests: the CLI harness's daemon, a bpffs of the test's
// own, and bpftool's view of programs, maps and links.
#pragma once

#include <sys/mount.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli_harness.hpp"
#include "support/frame_builder.hpp"
#include "support/packet_io.hpp"

namespace xfp::faulttest {

using namespace std::chrono_literals;
using clitest::Daemon;
using clitest::Outcome;
using clitest::read_file;
using clitest::run_process;
using clitest::TempDir;
using clitest::xfp_path;
using nlohmann::json;

inline int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// A bpffs of the test's own (LIBXDP_BPFFS points libxdp at it); unmounted
// when destroyed.
class TestBpffs {
 public:
  explicit TestBpffs(std::string path) : path_(std::move(path)) {
    std::filesystem::create_directories(path_);
    mounted_ = ::mount("bpf", path_.c_str(), "bpf", 0, "mode=0700") == 0;
  }
  ~TestBpffs() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& path() const { return path_; }
  std::string listing() const {
    std::string s;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
      s += it->path().string().substr(path_.size()) + "\n";
    return s;
  }
  // Pinned objects: files, except the kernel's own iterators at the top
  // (progs.debug, maps.debug); libxdp's empty xdp/ directory is no pin.
  size_t pins() const {
    size_t n = 0;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      const auto rel = it->path().string().substr(path_.size());
      if (!it->is_directory() && rel != "/progs.debug" && rel != "/maps.debug") ++n;
    }
    return n;
  }

 private:
  std::string path_;
  bool mounted_ = false;
};

struct BpfObject {
  uint32_t id = 0;
  std::string name;
  std::set<uint32_t> maps;  // programs: the maps they use
  uint32_t prog_id = 0;     // links: their program
};

// `bpftool KIND show --json` (KIND prog, map or link).
inline std::vector<BpfObject> bpf_objects(const std::string& kind) {
  std::vector<BpfObject> out;
  auto r = test::run_command({"bpftool", kind, "show", "--json"});
  if (!r.ok() || !r->succeeded()) return out;
  json j = json::parse(r->output, nullptr, false);
  if (!j.is_array()) return out;
  for (const json& o : j) {
    BpfObject b{o.value("id", 0u), o.value("name", std::string()), {}, o.value("prog_id", 0u)};
    for (const json& m : o.value("map_ids", json::array())) b.maps.insert(m.get<uint32_t>());
    out.push_back(std::move(b));
  }
  return out;
}

// Ids of the XDP and TC programs attached to the links of a namespace.
inline std::set<uint32_t> attached_programs(const test::NetNs& ns) {
  std::set<uint32_t> ids;
  auto r = test::run_command_in_netns(ns, {"bpftool", "net", "show", "--json"});
  if (!r.ok() || !r->succeeded()) return ids;
  json j = json::parse(r->output, nullptr, false);
  if (!j.is_array()) return ids;
  for (const json& section : j)
    for (const char* kind : {"xdp", "tc"})
      for (const json& p : section.value(kind, json::array())) ids.insert(p.value("id", 0u));
  return ids;
}

// Traffic with a sequence number in every frame: a sender paced at `fps`
// (bursts of a millisecond's worth, then a sleep to the next millisecond)
// and a receiver that records which sequence numbers arrived. `frame_of`
// builds frame `seq` with test::FrameBuilder::marker(seq).
class SequencedTraffic {
 public:
  using FrameFn = std::function<std::vector<uint8_t>(uint32_t seq)>;
  SequencedTraffic(test::PacketSocket sender, test::PacketSocket receiver, FrameFn frame_of, uint32_t fps,
                   uint32_t max_frames)
      : received_(max_frames),
        max_frames_(max_frames),
        fps_(fps),
        frame_of_(std::move(frame_of)),
        tx_(std::move(sender)),
        rx_(std::move(receiver)) {
    receiver_ = std::thread([this] { receive_loop(); });
    sender_ = std::thread([this] { send_loop(); });
  }
  ~SequencedTraffic() { stop(); }
  SequencedTraffic(const SequencedTraffic&) = delete;
  SequencedTraffic& operator=(const SequencedTraffic&) = delete;
  void stop() {
    stop_send_ = true;
    if (sender_.joinable()) sender_.join();
    if (receiver_.joinable()) {
      std::this_thread::sleep_for(200ms);  // the last frames arrive
      stop_recv_ = true;
      receiver_.join();
    }
  }
  uint32_t sent() const { return next_; }
  bool received(uint32_t seq) const { return received_[seq].load() != 0; }
  std::string error() const { return error_; }

 private:
  void send_loop() {
    const uint32_t per_ms = std::max<uint32_t>(1, fps_ / 1000);
    auto next = std::chrono::steady_clock::now();
    while (!stop_send_ && next_ < max_frames_) {
      for (uint32_t i = 0; i < per_ms && next_ < max_frames_; ++i) {
        const uint32_t seq = next_;
        if (auto s = tx_.send_frame(frame_of_(seq)); !s) {
          error_ = s.error().message;
          return;
        }
        next_ = seq + 1;
      }
      next += 1ms;
      std::this_thread::sleep_until(next);
    }
  }
  void receive_loop() {
    auto mine = [](std::span<const uint8_t> f) { return f.size() >= 14 && test::has_marker(f); };
    while (!stop_recv_) {
      auto frames = rx_.receive(20ms, mine);
      if (!frames) continue;
      for (const auto& f : *frames)
        if (auto seq = test::find_marker(f); seq && *seq < max_frames_) received_[*seq] = 1;
    }
  }

  std::vector<std::atomic<uint8_t>> received_;
  const uint32_t max_frames_, fps_;
  const FrameFn frame_of_;
  std::atomic<uint32_t> next_{0};
  std::atomic<bool> stop_send_{false}, stop_recv_{false};
  test::PacketSocket tx_, rx_;
  std::string error_;  // written by the sender before it returns; read after stop()
  std::thread sender_, receiver_;
};

}  // namespace xfp::faulttest
