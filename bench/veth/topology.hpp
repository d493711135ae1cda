// The bench's private network: two namespaces "xfpb-PID-tx" and
// "xfpb-PID-rx" joined by one veth pair with locally administered MACs.
// Nothing else is touched. The destructor removes both namespaces (and with
// them the veth pair); a SIGINT/SIGTERM handler only sets a flag so that the
// program unwinds through this destructor.
//
// Threads: the constructing thread (the main thread) moves into the
// receiving namespace for its lifetime (so attachments made by libxdp and
// xfp's Datapath, and their destructors, act on the receiving veth); the
// generator runs on a thread that enters the sending namespace.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "xfp/result.hpp"

namespace xfpbench {

extern std::atomic<bool> g_stop;  // set by SIGINT, SIGTERM, SIGHUP
// Also installs a no-op SIGUSR1 handler (used to end a BPF_PROG_TEST_RUN call).
void install_signal_handlers();

struct LinkStats {
  uint64_t rx_packets = 0, rx_bytes = 0, rx_dropped = 0;
  uint64_t tx_packets = 0, tx_dropped = 0;
};

class Topology {
 public:
  static constexpr const char* kTxDev = "xfpbtx0";
  static constexpr const char* kRxDev = "xfpbrx0";
  static constexpr uint64_t kTxMac = 0x02b5c6120001ull;  // 02:b5:c6:12:00:01
  static constexpr uint64_t kRxMac = 0x02b5c6120002ull;

  static xfp::Result<std::unique_ptr<Topology>> create();
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  const std::string& tx_ns() const { return tx_ns_; }
  const std::string& rx_ns() const { return rx_ns_; }
  int tx_ns_fd() const { return tx_fd_; }
  uint32_t tx_ifindex() const { return tx_ifindex_; }  // inside tx_ns
  uint32_t rx_ifindex() const { return rx_ifindex_; }  // inside rx_ns

  // Runs argv inside the receiving namespace with its own sysfs and a fresh
  // bpffs on /sys/fs/bpf (`ip netns exec NS sh -c 'mount -t bpf ...; CMD'`).
  int exec_in_rx(const std::string& shell_command, bool quiet, std::string* output = nullptr) const;

  // Statistics of the receiving veth (netlink, from the receiving namespace).
  std::optional<LinkStats> rx_stats() const;
  // Statistics of the sending veth (netlink, from the sending namespace, on a
  // thread of its own). Frames the veth's xmit refused are its tx_dropped.
  std::optional<LinkStats> tx_stats() const;
  // The receiving veth's ethtool statistics, summed over queues by name
  // ("rx_queue_0_xdp_drops" + ... -> "xdp_drops").
  std::map<std::string, uint64_t> rx_ethtool() const;

  // /sys/class/net/DEV/threaded of the receiving veth (needs XDP attached).
  bool set_rx_threaded(bool on) const;
  std::optional<std::string> rx_threaded() const;

 private:
  Topology() = default;
  std::string tx_ns_, rx_ns_;
  bool tx_made_ = false, rx_made_ = false;
  int tx_fd_ = -1, rx_fd_ = -1, orig_fd_ = -1;
  bool entered_rx_ = false;
  uint32_t tx_ifindex_ = 0, rx_ifindex_ = 0;
};

// Runs fn() on a new thread inside the network namespace `ns_fd` and waits.
xfp::Status run_in_netns(int ns_fd, const std::function<void()>& fn);

}  // namespace xfpbench
