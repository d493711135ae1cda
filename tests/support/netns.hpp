// Network namespaces and veth pairs that tests own, and the helpers to run
// commands and read link facts inside them.
//
// Every namespace and link made here has a unique name, is registered in a
// process-wide, signal-safe registry, and is removed by its destructor, by an
// atexit handler, and by a handler for SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGABRT/
// SIGSEGV/SIGBUS (which then re-raises the signal). A SIGKILLed run cannot clean
// up after itself: the next NetNs::create() sweeps namespaces whose owning
// process is gone (sweep_stale_namespaces()).
//
// Network rule: traffic only between veth ends in namespaces made here.
// VethPair therefore creates both ends directly inside test namespaces (a
// link never exists in the host namespace, not even for a moment), refuses
// MACs that are not locally administered unicast and IPv4 addresses outside
// 198.18.0.0/15.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "support/frame_builder.hpp"
#include "xfp/result.hpp"

namespace xfp::test {

class NetNs;

// ---------------------------------------------------------------------------
// Commands: fork/exec, no shell, stdin from /dev/null, stdout and stderr
// captured together, every other descriptor closed in the child.

struct CommandOutput {
  int exit_code = -1;    // exit status, or -1 when killed by a signal
  int term_signal = 0;   // the signal that ended it, 0 if it exited
  std::string output;    // stdout and stderr interleaved
  bool succeeded() const { return exit_code == 0; }
};

// argv[0] is looked up in PATH and then /usr/sbin, /sbin, /usr/bin, /bin.
// The child is killed (SIGKILL) after `timeout`, which is an ETIMEDOUT error.
// Errors are only about running it; a non-zero exit is a CommandOutput.
Result<CommandOutput> run_command(const std::vector<std::string>& argv,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Runs argv; a non-zero exit is an error whose message holds the command and its output.
Result<std::string> run(const std::vector<std::string>& argv);
// Same, inside `ns` through `ip netns exec` (so /sys is that namespace's sysfs).
Result<std::string> run_in_netns(const NetNs& ns, const std::vector<std::string>& argv);
Result<CommandOutput> run_command_in_netns(const NetNs& ns, const std::vector<std::string>& argv,
                                           std::chrono::milliseconds timeout = std::chrono::seconds(30));

// ---------------------------------------------------------------------------

// A network namespace named "xfpt-<pid>-<n>", visible to `ip netns exec NAME`
// and `ip -n NAME`, with lo up. Move-only; removed by the destructor. Only
// the process that made it removes it (a fork()ed child never does).
class NetNs {
 public:
  struct Options {
    // IPv6 off in the namespace (before any link is added), so links carry
    // no router solicitations, MLD or DAD frames and counters stay exact.
    bool disable_ipv6 = true;
  };

  static Result<NetNs> create();
  static Result<NetNs> create(const Options& options);

  NetNs(NetNs&& other) noexcept;
  NetNs& operator=(NetNs&& other) noexcept;
  NetNs(const NetNs&) = delete;
  NetNs& operator=(const NetNs&) = delete;
  ~NetNs();

  const std::string& name() const { return name_; }
  // Read-only descriptor of the namespace, for setns(); owned by this object.
  int fd() const { return fd_; }
  // The namespace's inode number: what xfp calls the interface's compartment.
  uint64_t inode() const { return inode_; }
  bool valid() const { return fd_ >= 0; }

  // Removes it now (the destructor then does nothing). Links inside go with it.
  Status remove();

 private:
  NetNs() = default;
  std::string name_;
  int fd_ = -1;
  uint64_t inode_ = 0;
  pid_t owner_ = 0;
  int registry_slot_ = -1;
};

// Switches the calling thread into a namespace; the destructor switches it
// back. Sockets opened meanwhile stay in that namespace for their lifetime.
// Must be destroyed on the thread that created it. Move-only.
class ScopedNetnsEnter {
 public:
  static Result<ScopedNetnsEnter> enter(const NetNs& ns);
  static Result<ScopedNetnsEnter> enter_fd(int netns_fd);

  ScopedNetnsEnter(ScopedNetnsEnter&& other) noexcept;
  ScopedNetnsEnter& operator=(ScopedNetnsEnter&&) = delete;
  ScopedNetnsEnter(const ScopedNetnsEnter&) = delete;
  ScopedNetnsEnter& operator=(const ScopedNetnsEnter&) = delete;
  ~ScopedNetnsEnter();

 private:
  explicit ScopedNetnsEnter(int saved_fd) : saved_fd_(saved_fd) {}
  int saved_fd_ = -1;  // the thread's namespace before enter()
};

// ---------------------------------------------------------------------------

struct VethOptions {
  std::optional<Mac> mac_a;  // default: 02:<pid:3 bytes>:<pair number, side>
  std::optional<Mac> mac_b;
  unsigned mtu = 1500;
  std::optional<std::string> ipv4_a;  // CIDR inside 198.18.0.0/15, e.g. "198.18.0.1/24"
  std::optional<std::string> ipv4_b;
  bool up = true;
};

struct VethEnd {
  std::string netns;  // name of the namespace it lives in
  std::string name;   // interface name there (<= 15 characters)
  Mac mac{};
  int ifindex = 0;    // inside its namespace
  std::optional<std::string> ipv4;  // CIDR as configured
};

// A veth pair whose end a lives in ns_a and end b in ns_b (may be the same
// namespace). The namespaces must outlive the pair. Move-only.
class VethPair {
 public:
  static Result<VethPair> create(const NetNs& ns_a, const NetNs& ns_b);
  static Result<VethPair> create(const NetNs& ns_a, const NetNs& ns_b, const VethOptions& options);

  VethPair(VethPair&& other) noexcept;
  VethPair& operator=(VethPair&& other) noexcept;
  VethPair(const VethPair&) = delete;
  VethPair& operator=(const VethPair&) = delete;
  ~VethPair();

  const VethEnd& a() const { return a_; }
  const VethEnd& b() const { return b_; }
  unsigned mtu() const { return mtu_; }
  bool valid() const { return !a_.name.empty(); }

  // Deletes the pair now (both ends); the destructor then does nothing.
  Status remove();

 private:
  VethPair() = default;
  VethEnd a_;
  VethEnd b_;
  unsigned mtu_ = 0;
  pid_t owner_ = 0;
  int registry_slot_ = -1;
};

// ---------------------------------------------------------------------------
// Link facts read with rtnetlink (RTM_GETLINK) from inside the namespace:
// sysfs would show the namespace /sys was mounted in, not the thread's.

struct LinkStats {
  uint64_t rx_packets = 0;
  uint64_t tx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_bytes = 0;
  uint64_t rx_dropped = 0;
  uint64_t tx_dropped = 0;
  uint64_t rx_errors = 0;
  uint64_t tx_errors = 0;
};

struct LinkInfo {
  int ifindex = 0;
  std::string name;
  Mac mac{};
  unsigned mtu = 0;
  bool up = false;  // IFF_UP
  LinkStats stats;  // IFLA_STATS64
};

Result<LinkInfo> query_link(const NetNs& ns, const std::string& ifname);
Result<LinkStats> read_link_stats(const NetNs& ns, const std::string& ifname);
Result<int> ifindex_in(const NetNs& ns, const std::string& ifname);

// ---------------------------------------------------------------------------
// Registry introspection and maintenance.

// Names of namespaces this process has made and not yet removed.
std::vector<std::string> registered_namespaces();
// Removes "xfpt-<pid>-*" namespaces whose process no longer exists; returns how many.
size_t sweep_stale_namespaces();
// True when `ip netns list` shows a namespace of this name.
Result<bool> netns_exists(const std::string& name);

}  // namespace xfp::test
