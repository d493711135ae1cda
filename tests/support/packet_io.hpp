// Frames in and out of test interfaces: raw AF_PACKET sockets opened inside
// a test namespace, and a BPF_PROG_TEST_RUN wrapper for classifier tests on
// synthetic frames.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "support/netns.hpp"
#include "xfp/result.hpp"

namespace xfp::test {

using Frame = std::vector<uint8_t>;
// Decides which received frames the caller wants (e.g. has_marker): links
// carry frames the test did not send, so receive() must never assume.
using FramePredicate = std::function<bool(std::span<const uint8_t>)>;

// A raw socket (SOCK_RAW, ETH_P_ALL) bound to one interface inside a test
// namespace. Sends go through the interface's qdisc (no PACKET_QDISC_BYPASS),
// so the TC egress (outbound) layer sees them. Move-only.
class PacketSocket {
 public:
  struct Options {
    // Do not receive the frames this host transmits on the interface
    // (PACKET_IGNORE_OUTGOING): a receiver then sees only what arrived.
    bool ignore_outgoing = true;
    int receive_buffer_bytes = 4 << 20;  // SO_RCVBUF; bursts must not be lost in the socket
  };

  static Result<PacketSocket> open(const NetNs& ns, const std::string& ifname);
  static Result<PacketSocket> open(const NetNs& ns, const std::string& ifname, const Options& options);

  PacketSocket(PacketSocket&& other) noexcept;
  PacketSocket& operator=(PacketSocket&& other) noexcept;
  PacketSocket(const PacketSocket&) = delete;
  PacketSocket& operator=(const PacketSocket&) = delete;
  ~PacketSocket();

  // Sends one frame exactly as given (no FCS, no padding added). The kernel
  // refuses frames shorter than the 14-byte Ethernet header.
  Status send_frame(std::span<const uint8_t> frame);
  // Sends each frame in order; stops at the first error.
  Status send_frames(const std::vector<Frame>& frames);

  // Collects frames for up to `window`, keeping those `keep` accepts (all if
  // empty), and returns early once `stop_after` have been kept. Frames come
  // back as they were on the wire: a VLAN tag the kernel moved into skb
  // metadata (veth's receive path always strips the outer one) is put back
  // from PACKET_AUXDATA.
  Result<std::vector<Frame>> receive(std::chrono::milliseconds window, const FramePredicate& keep = {},
                                     size_t stop_after = std::numeric_limits<size_t>::max());
  // Throws away whatever is queued now.
  void drain();

  int fd() const { return fd_; }
  int ifindex() const { return ifindex_; }
  const std::string& ifname() const { return ifname_; }

 private:
  PacketSocket() = default;
  int fd_ = -1;
  int ifindex_ = 0;
  std::string ifname_;
};

// ---------------------------------------------------------------------------
// BPF_PROG_TEST_RUN

struct TestRunResult {
  int err = 0;           // 0, or the positive errno of the run
  uint32_t retval = 0;   // the program's return value (XDP_* or TC_ACT_*)
  std::vector<uint8_t> data_out;  // the frame after the program (it may rewrite it)
  uint32_t duration_ns = 0;       // average per repetition
  bool ok() const { return err == 0; }
};

struct TestRunOptions {
  uint32_t repeat = 1;
  // XDP program (ctx xdp_md) or TC/sched_cls program (ctx __sk_buff).
  bool xdp = true;
  // When non-zero: xdp_md.ingress_ifindex or __sk_buff.ifindex. The device
  // must exist in the calling thread's namespace (enter it first).
  uint32_t ifindex = 0;
  uint32_t flags = 0;  // BPF_F_TEST_*
};

// Runs the program once (or `repeat` times) on `frame` (passed as data_in
// for both program types). XDP needs at least 14 bytes of frame.
TestRunResult test_run(int prog_fd, const std::vector<uint8_t>& frame, uint32_t repeat = 1, bool xdp = true);
TestRunResult test_run(int prog_fd, const std::vector<uint8_t>& frame, const TestRunOptions& options);

}  // namespace xfp::test
