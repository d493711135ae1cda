// Helpers shared by the xfp benchmarks: machine facts, the reproduce line,
// order statistics, 64-byte test frames and small system utilities.
// Nothing here throws; failures are reported through return values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace xfpbench {

// ---- machine and invocation ----------------------------------------------
struct MachineFacts {
  std::string kernel;     // uname -r
  std::string kernel_version;  // uname -v
  std::string machine;    // uname -m
  std::string cpu_model;  // /proc/cpuinfo "model name"
  unsigned cpus_online = 0;
  std::string libbpf;     // libbpf version the binary runs with
};
MachineFacts machine_facts();
nlohmann::json to_json(const MachineFacts& m);
std::string describe(const MachineFacts& m);  // one line for the report

// The exact command that reproduces this run: "cd DIR && [sudo] ARGV...".
std::string reproduce_command(int argc, char** argv);

// ---- statistics -----------------------------------------------------------
double min_of(const std::vector<double>& v);
double max_of(const std::vector<double>& v);
double median_of(std::vector<double> v);  // mean of the middle two when even
double mean_of(const std::vector<double>& v);

// ---- time -----------------------------------------------------------------
uint64_t now_ns();  // CLOCK_MONOTONIC

// ---- BPF_PROG_TEST_RUN -----------------------------------------------------
// `repeat` runs of an XDP program on `frame`, timed by the kernel: its
// average ns per run and the program's return value; err is -errno when
// the kernel refuses the run (0 otherwise).
struct TestRun {
  double ns = 0;
  uint32_t retval = 0;
  int err = 0;
};
TestRun test_run(int prog_fd, const std::vector<uint8_t>& frame, int repeat);

// ---- frames ---------------------------------------------------------------
// A MAC is its 48 bits with the first wire byte in bits 47..40 (xfp's
// convention for Condition values).
std::string mac_to_string(uint64_t mac);
std::optional<uint64_t> mac_from_string(const std::string& s);

enum class Payload : uint8_t {
  Ipv4Udp,  // IPv4 198.18.0.1 -> 198.19.0.1, UDP 9 -> 9
  Arp,      // ARP request who-has 198.18.0.2 tell 198.18.0.1
  Raw,      // `ethertype` followed by zero bytes
};

struct FrameSpec {
  uint64_t dst = 0;
  uint64_t src = 0;
  std::optional<uint16_t> vlan;  // one 802.1Q tag when set
  Payload payload = Payload::Ipv4Udp;
  uint16_t ethertype = 0;        // Raw only
  size_t length = 64;            // bytes handed to the program (no FCS)
};
std::vector<uint8_t> build_frame(const FrameSpec& spec);

// ---- system ---------------------------------------------------------------
// Runs argv (no shell) and waits; returns the exit status, or -1 when it
// could not start. Output goes to the caller's stdout/stderr unless `quiet`
// (then stdout and stderr go to /dev/null); `output` (when set) captures stdout.
int run_command(const std::vector<std::string>& argv, bool quiet = false,
                std::string* output = nullptr);

std::optional<std::string> read_file(const std::string& path);

// The machine's CPU time from the first line of /proc/stat, in ticks.
struct CpuTimes {
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  uint64_t busy() const { return user + nice + system + irq + softirq; }  // steal is not our CPU
  uint64_t kernel() const { return system + irq + softirq; }
  uint64_t total() const { return busy() + idle + iowait + steal; }
};
CpuTimes read_cpu_times();
bool write_file(const std::string& path, const std::string& text);

// Writes `j` to `path` ("-" = stdout) with a trailing newline.
bool write_json(const std::string& path, const nlohmann::json& j);

// Deterministic PRNG (splitmix64): the same seed gives the same filters.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }  // [0, n)
  uint64_t between(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }  // [lo, hi]

 private:
  uint64_t s_;
};

}  // namespace xfpbench
