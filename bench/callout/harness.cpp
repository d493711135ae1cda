#include "harness.hpp"

#include <linux/if_link.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <chrono>
#include <sstream>

#include "bench_common.hpp"
#include "topology.hpp"

namespace xfpbc {

void Fd::reset() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void pin_to_cpu(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

void sleep_for(double secs) {
  const uint64_t end = xfpbench::now_ns() + static_cast<uint64_t>(secs * 1e9);
  while (!xfpbench::g_stop.load() && xfpbench::now_ns() < end) {
    uint64_t left = end - xfpbench::now_ns();
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<uint64_t>(left, 50000000)));
  }
}

static uint64_t thread_cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void Worker::start(int ns_fd, int cpu, Body body) {
  stop();
  stop_.store(false);
  done_.store(false);
  failure_.clear();
  th_ = std::thread([this, ns_fd, cpu, body = std::move(body)] {
    xfp::Status st;
    if (ns_fd >= 0 && setns(ns_fd, CLONE_NEWNET) != 0)
      st = xfp::errno_error("consumer thread: entering the receiving namespace");
    else {
      pin_to_cpu(cpu);
      st = body(stop_);
    }
    if (!st) failure_ = st.error().message;
    final_cpu_ns_.store(thread_cpu_now());
    done_.store(true);
  });
}

void Worker::stop() {
  stop_.store(true);
  if (th_.joinable()) th_.join();
}

uint64_t Worker::cpu_ns() const {
  if (done_.load() || !th_.joinable()) return final_cpu_ns_.load();
  // The thread's CPU clock (user + system; without IRQ time accounting this
  // also holds softirq work that ran on its CPU while it was current).
  clockid_t cid;
  timespec ts{};
  if (pthread_getcpuclockid(const_cast<std::thread&>(th_).native_handle(), &cid) == 0 &&
      clock_gettime(cid, &ts) == 0) {
    last_cpu_ns_.store(static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec));
  } else if (done_.load()) {
    return final_cpu_ns_.load();  // ended between the two checks
  }
  return last_cpu_ns_.load();
}

std::string Worker::failure() const { return done_.load() ? failure_ : std::string(); }

xfp::Status XdpAttachment::attach(uint32_t ifindex, int prog_fd) {
  reset();
  int rc = bpf_xdp_attach(static_cast<int>(ifindex), prog_fd, XDP_FLAGS_DRV_MODE, nullptr);
  if (rc) return xfp::errno_error("attaching an XDP program (native) to the receiving veth", -rc);
  ifindex_ = ifindex;
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0) prog_id_ = info.id;
  return xfp::Ok{};
}

void XdpAttachment::reset() {
  if (!ifindex_) return;
  // Detach only our own program (another case may have replaced it).
  uint32_t cur = 0;
  if (bpf_xdp_query_id(static_cast<int>(ifindex_), XDP_FLAGS_DRV_MODE, &cur) == 0 && cur == prog_id_)
    bpf_xdp_detach(static_cast<int>(ifindex_), XDP_FLAGS_DRV_MODE, nullptr);
  ifindex_ = 0;
  prog_id_ = 0;
}

std::map<std::string, uint64_t> read_snmp(const std::string& section) {
  // Two lines per section: names, then values ("Udp: InDatagrams NoPorts ...").
  std::map<std::string, uint64_t> out;
  auto text = xfpbench::read_file("/proc/thread-self/net/snmp");
  if (!text) return out;
  std::istringstream in(*text);
  std::string names, values;
  const std::string tag = section + ":";
  while (std::getline(in, names)) {
    if (names.rfind(tag, 0) != 0) continue;
    if (!std::getline(in, values)) break;
    std::istringstream n(names), v(values);
    std::string key, val;
    n >> key;
    v >> val;
    while (n >> key && v >> val) out[key] = std::strtoull(val.c_str(), nullptr, 10);
    break;
  }
  return out;
}

}  // namespace xfpbc
