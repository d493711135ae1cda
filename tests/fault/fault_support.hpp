// Shared by the fault tests: the CLI harness's daemon, a bpffs of the test's
// own, and bpftool's view of programs, maps and links.
#pragma once

#include <sys/mount.h>

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "cli/cli_harness.hpp"

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

}  // namespace xfp::faulttest
