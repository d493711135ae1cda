// The generator facade: which generator, and the thread that runs it
// (generator.hpp). The thread bodies are generator_kernel.cpp and
// generator_afxdp.cpp.
#include "generator.hpp"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "topology.hpp"

namespace xfpbench {

namespace {
constexpr int kKernelEnotsupp = 524;  // the kernel's ENOTSUPP, which test runs return for what they cannot do
}  // namespace

const char* generator_name(GeneratorKind k) {
  switch (k) {
    case GeneratorKind::Auto: return "auto";
    case GeneratorKind::Kernel: return "kernel";
    case GeneratorKind::AfXdp: return "afxdp";
  }
  return "?";
}

std::optional<GeneratorKind> generator_from_name(std::string_view name) {
  if (name == "auto") return GeneratorKind::Auto;
  if (name == "kernel") return GeneratorKind::Kernel;
  if (name == "afxdp") return GeneratorKind::AfXdp;
  return std::nullopt;
}

const char* const kGeneratorHelp =
    "traffic generator: kernel = an XDP_TX program under BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES "
    "(about 16 Mpps here, far above every receiver); afxdp = user-space AF_XDP transmit in copy mode on the "
    "sending veth (about 2 Mpps here; where it, not the receiver, is the bottleneck the bench also states its "
    "ratios in CPU time per frame); auto = kernel if a one-frame live-frames test run is allowed, else afxdp "
    "(some kernels refuse live frames with EPERM)";

GeneratorChoice choose_generator(GeneratorKind asked, int ns_fd, int prog_fd, uint32_t ifindex,
                                 const std::vector<uint8_t>& frame, int* error) {
  *error = 0;
  if (asked == GeneratorKind::Kernel) return {GeneratorKind::Kernel, "kernel (asked for)"};
  if (asked == GeneratorKind::AfXdp) return {GeneratorKind::AfXdp, "afxdp (asked for)"};
  int err = 0;
  auto st = run_in_netns(ns_fd, [&] { err = probe_kernel_generator(prog_fd, ifindex, frame); });
  if (!st) {
    *error = st.error().code ? st.error().code : EIO;
    return {GeneratorKind::Kernel, st.error().message};
  }
  if (err == 0) return {GeneratorKind::Kernel, "kernel (auto: the live-frames probe ran)"};
  if (err == EPERM || err == EOPNOTSUPP || err == EINVAL || err == kKernelEnotsupp)
    return {GeneratorKind::AfXdp,
            fmt::format("afxdp (auto: the kernel refuses BPF_F_TEST_XDP_LIVE_FRAMES: {})", strerror(err))};
  *error = err;
  return {GeneratorKind::Kernel, fmt::format("the live-frames probe failed: {}", strerror(err))};
}

void Generator::start(GeneratorOptions options) {
  stop();
  st_.stop.store(false);
  st_.sent.store(0);
  st_.error.store(0);
  done_.store(false);
  kind_ = options.kind;
  th_ = std::thread([this, o = std::move(options)] {
    struct Done {
      std::atomic<bool>& d;
      ~Done() { d.store(true); }
    } done{done_};
    if (setns(o.ns_fd, CLONE_NEWNET) != 0) {
      st_.error.store(errno);
      return;
    }
    if (o.cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(o.cpu, &set);
      pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    if (o.rt_prio > 0) {
      // Real-time priority: the generator (and, without threaded NAPI, the
      // receive path that runs in its softirq) gets its CPU even when the
      // machine is busy. The kernel's RT throttling still leaves others 5 %.
      sched_param sp{};
      sp.sched_priority = o.rt_prio;
      if (int rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp); rc != 0) {
        st_.error.store(rc);
        return;
      }
    }
    if (o.kind == GeneratorKind::AfXdp)
      run_afxdp_generator(o, st_);
    else
      run_kernel_generator(o, st_);
  });
}

void Generator::stop() {
  st_.stop.store(true);
  if (!th_.joinable()) return;
  while (!done_.load()) {
    if (kind_ == GeneratorKind::Kernel) pthread_kill(th_.native_handle(), SIGUSR1);
    for (int i = 0; i < 20 && !done_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  th_.join();
}

uint64_t Generator::cpu_ns() const {
  if (!th_.joinable() || done_.load()) return 0;
  clockid_t id;
  timespec ts{};
  if (pthread_getcpuclockid(const_cast<std::thread&>(th_).native_handle(), &id) != 0 || clock_gettime(id, &ts) != 0)
    return 0;
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace xfpbench
