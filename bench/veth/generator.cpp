#include "generator.hpp"

#include <linux/bpf.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <chrono>

#include "topology.hpp"

namespace xfpbench {

void Generator::start(GeneratorOptions options) {
  stop_.store(false);
  done_.store(false);
  error_.store(0);
  th_ = std::thread([this, o = std::move(options)] {
    struct Done {
      std::atomic<bool>& d;
      ~Done() { d.store(true); }
    } done{done_};
    if (setns(o.ns_fd, CLONE_NEWNET) != 0) {
      error_.store(errno);
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
        error_.store(rc);
        return;
      }
    }
    std::vector<uint8_t> data = o.frame;
    xdp_md ctx{};
    ctx.data_end = static_cast<__u32>(data.size());
    ctx.ingress_ifindex = o.ifindex;
    while (!stop_.load(std::memory_order_relaxed) && !g_stop.load(std::memory_order_relaxed)) {
      LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = data.data(), .data_size_in = static_cast<__u32>(data.size()),
                  .ctx_in = &ctx, .ctx_size_in = sizeof ctx, .repeat = o.chunk,
                  .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = static_cast<__u32>(o.batch));
      int err = bpf_prog_test_run_opts(o.prog_fd, &run);
      if (err == -EINTR) continue;
      if (err) {
        error_.store(-err);
        return;
      }
      sent_.fetch_add(static_cast<uint64_t>(o.chunk), std::memory_order_relaxed);
    }
  });
}

void Generator::stop() {
  stop_.store(true);
  if (!th_.joinable()) return;
  while (!done_.load()) {
    pthread_kill(th_.native_handle(), SIGUSR1);
    for (int i = 0; i < 20 && !done_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  th_.join();
}

}  // namespace xfpbench
