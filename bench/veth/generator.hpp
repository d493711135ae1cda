// The frame generator of the veth benches (bench/veth, bench/callout,
// bench/flow): a thread inside the sending namespace that sends one 64-byte
// frame over and over out of the sending veth into its peer, until stopped.
// Two implementations:
//
//   kernel  BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES on the XDP_TX
//           program (gen_xdp_tx.bpf.c), `chunk` frames per call
//           (generator_kernel.cpp). About 16 Mpps here: the receiver is
//           always the bottleneck. Pacing by short calls does not work: each
//           live-frames call sets up and tears down a page pool.
//   afxdp   user-space AF_XDP transmit in copy mode on the sending veth
//           (generator_afxdp.cpp): the kernel builds an skb per frame and
//           hands it to the veth's xmit, so it reaches the peer's XDP
//           program like any frame. About 2 Mpps here: it can be the
//           bottleneck, which the benches then say.
//
// Neither is rate-limited. choose_generator() picks one: a one-frame
// live-frames test run decides (some kernels refuse live frames with EPERM).
// sent() counts what the generator handed to the kernel (the kernel's calls,
// or AF_XDP completions); a copy-mode completion does not mean the veth
// delivered the frame, so delivery is always counted on the receiving side.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace xfpbench {

enum class GeneratorKind : uint8_t { Auto, Kernel, AfXdp };
const char* generator_name(GeneratorKind k);  // "auto", "kernel", "afxdp"
std::optional<GeneratorKind> generator_from_name(std::string_view name);
// The --generator option's help text, the same in every bench.
extern const char* const kGeneratorHelp;

struct GeneratorChoice {
  GeneratorKind kind = GeneratorKind::Kernel;  // never Auto
  std::string reason;                          // one line: why this one
};

// Resolves `asked`: Kernel and AfXdp are taken as they are; Auto probes the
// kernel generator with one live frame of `frame` from `ifindex` inside the
// namespace `ns_fd` (the frame reaches the peer: probe before measuring)
// and takes afxdp when the kernel refuses it (EPERM, EOPNOTSUPP, EINVAL).
// Any other error of the probe is returned as an errno in `error`.
GeneratorChoice choose_generator(GeneratorKind asked, int ns_fd, int prog_fd, uint32_t ifindex,
                                 const std::vector<uint8_t>& frame, int* error);

struct GeneratorOptions {
  GeneratorKind kind = GeneratorKind::Kernel;  // Kernel or AfXdp (resolved)
  int ns_fd = -1;         // the sending namespace
  uint32_t ifindex = 0;   // the sending interface (in ns_fd)
  std::string ifname;     // its name (afxdp binds to it)
  std::vector<uint8_t> frame;
  int cpu = -1;           // pin the thread to this CPU (-1: no pinning)
  int rt_prio = 0;        // SCHED_FIFO priority (0: normal scheduling)
  // kernel
  int prog_fd = -1;       // the generator program
  int chunk = 1 << 22;    // frames per call
  int batch = 64;         // the kernel's live-frames batch size; afxdp: descriptors per kick
  // afxdp
  uint32_t ring = 2048;   // TX and completion ring sizes (power of 2)
};

// What the generator thread shares with its owner.
struct GeneratorState {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::atomic<int> error{0};
};

// The thread bodies (generator_kernel.cpp, generator_afxdp.cpp): run in the
// generator thread, already inside the sending namespace and pinned.
void run_kernel_generator(const GeneratorOptions& o, GeneratorState& st);
void run_afxdp_generator(const GeneratorOptions& o, GeneratorState& st);
// One live frame through the kernel generator, on the calling thread (which
// must be in the sending namespace): 0 or the errno of the refusal.
int probe_kernel_generator(int prog_fd, uint32_t ifindex, const std::vector<uint8_t>& frame);

class Generator {
 public:
  ~Generator() { stop(); }
  void start(GeneratorOptions options);
  // The kernel generator's BPF_PROG_TEST_RUN call runs until its repeat
  // count is done or a signal is pending: SIGUSR1 (a no-op handler the bench
  // installs) ends the current call. Resent until the thread is out, in case
  // it arrived between two calls. The afxdp generator sees the flag.
  void stop();
  uint64_t sent() const { return st_.sent.load(std::memory_order_relaxed); }
  int error() const { return st_.error.load(); }  // 0 or the errno that ended the thread
  GeneratorKind kind() const { return kind_; }
  // CPU time of the generator thread so far (CLOCK_THREAD_CPUTIME_ID of
  // that thread); 0 when it is not running. Without IRQ-time accounting it
  // includes softirq work that ran while the thread was current (the
  // receiving veth's NAPI, unless that is threaded).
  uint64_t cpu_ns() const;

 private:
  std::thread th_;
  std::atomic<bool> done_{true};
  GeneratorState st_;
  GeneratorKind kind_ = GeneratorKind::Kernel;
};

}  // namespace xfpbench
