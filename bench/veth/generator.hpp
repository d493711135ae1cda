// The frame generator of the veth benches (bench/veth, bench/callout,
// bench/flow): a thread inside the sending namespace that calls
// BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES on the XDP_TX generator
// program (gen_xdp_tx.bpf.c), `chunk` frames per call, until stopped.
// Not rate-limited: the receiving side is the bottleneck (its drops show
// it). Pacing by short calls does not work: each live-frames call sets up and
// tears down a page pool (about 30 ms per call on a busy machine).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace xfpbench {

struct GeneratorOptions {
  int ns_fd = -1;         // the sending namespace
  int prog_fd = -1;       // the generator program
  uint32_t ifindex = 0;   // the sending interface (in ns_fd)
  std::vector<uint8_t> frame;
  int chunk = 1 << 22;    // frames per call
  int batch = 64;         // the kernel's live-frames batch size
  int cpu = -1;           // pin the thread to this CPU (-1: no pinning)
  int rt_prio = 0;        // SCHED_FIFO priority (0: normal scheduling)
};

class Generator {
 public:
  ~Generator() { stop(); }
  void start(GeneratorOptions options);
  // A BPF_PROG_TEST_RUN call runs until its repeat count is done or a
  // signal is pending: SIGUSR1 (a no-op handler the bench installs) ends the
  // current call. Resent until the thread is out, in case it arrived between
  // two calls.
  void stop();
  uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }  // frames of completed calls
  int error() const { return error_.load(); }  // 0 or the errno that ended the thread

 private:
  std::thread th_;
  std::atomic<bool> stop_{false}, done_{true};
  std::atomic<uint64_t> sent_{0};
  std::atomic<int> error_{0};
};

}  // namespace xfpbench
