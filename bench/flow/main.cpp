// xfp-bench-flow: one flow of 64-byte IPv4/UDP frames through a veth pair,
// decided three ways by xfp on the receiving veth (XDP, native mode), in
// one run:
//   offload   the flow's permit verdict offloaded into the kernel
//             (Datapath::offload_flow): XDP finds the entry and passes the
//             frame before classification. The policy is a callout filter
//             whose callout nobody serves (its fail action blocks), so a
//             frame the entry did not decide would be dropped: the counters
//             show which decided;
//   fastpath  the pure fast path: a permit filter (ethertype eq ipv4), no
//             offloads (the lookup is off: one bit test);
//   punted    every frame punted to a permit-all callout in user space and
//             injected back (bench/callout's xfp-callout case, unchanged).
// Traffic: the kernel generator of bench/veth (an XDP_TX program under
// BPF_PROG_TEST_RUN with live frames) on the sending veth. Decided frames
// per second: xfp's own counters (offload permit hits, layer permits, the
// callout workers' frames). CPU per frame: the XDP program's run_time_ns /
// run_cnt (BPF statistics, a window of its own; offload and fastpath), and
// the machine's busy time (/proc/stat, all CPUs, generator included) per
// decided frame; and, before each round's traffic, the program's ns per
// frame under BPF_PROG_TEST_RUN (repeat 1,000,000, best of 5), which no
// generator disturbs. Rounds rotate the order; medians are reported.
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bench_common.hpp"
#include "generator.hpp"
#include "topology.hpp"
#include "xfp/compiler.hpp"
#include "xfp/datapath.hpp"
#include "xfp/filter_set.hpp"
#include "xfp/flow_key.h"
#include "xfpb_gen.skel.h"
#ifdef XFPBF_WITH_CALLOUT
#include "harness.hpp"
#endif

namespace {

using xfpbench::g_stop;
using xfpbench::Topology;

using xfpbench::Generator;  // bench/veth's (generator.hpp)

void sleep_for(double secs) {
  const uint64_t end = xfpbench::now_ns() + static_cast<uint64_t>(secs * 1e9);
  while (!g_stop.load() && xfpbench::now_ns() < end) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

// run_time_ns / run_cnt of the program attached natively to the receiving veth.
std::optional<std::pair<uint64_t, uint64_t>> prog_stats(uint32_t ifindex) {
  uint32_t id = 0;
  if (bpf_xdp_query_id(static_cast<int>(ifindex), XDP_FLAGS_DRV_MODE, &id) != 0 || id == 0) return std::nullopt;
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) return std::nullopt;
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  int rc = bpf_obj_get_info_by_fd(fd, &info, &len);
  close(fd);
  if (rc != 0) return std::nullopt;
  return std::pair{info.run_time_ns, info.run_cnt};
}

enum class Kind { Offload, Fastpath, Punted };

// One way of deciding the flow, set up on the receiving veth.
class Setup {
 public:
  virtual ~Setup() = default;
  virtual xfp::Status start() = 0;
  virtual uint64_t decided() const = 0;   // cumulative frames decided the measured way
  virtual uint64_t other() const { return 0; }  // frames decided otherwise (should stay 0)
  virtual uint64_t consumer_cpu_ns() const { return 0; }
  // The XDP program's own ns per frame under BPF_PROG_TEST_RUN (repeat),
  // before traffic: no generator shares the CPU. 0: not measured.
  virtual double test_run_ns() { return 0; }
  virtual std::string detail() const = 0;
  virtual void stop() = 0;
};

constexpr const char* kCalloutKey = "xfp.bench.flow";
constexpr uint32_t kTestRunIface = 1;  // BPF_PROG_TEST_RUN runs on lo

class KernelSetup final : public Setup {
 public:
  KernelSetup(Kind k, const std::vector<uint8_t>& frame) : kind_(k), frame_(frame) {}
  ~KernelSetup() override { stop(); }

  xfp::Status start() override {
    auto dp = xfp::Datapath::open();
    if (!dp) return std::move(dp).error().context("opening the xfp datapath");
    dp_ = std::move(*dp);
    xfp::AttachOptions ao;
    ao.mode = xfp::XdpMode::Native;
    ao.outbound = false;
    XFP_TRY(dp_->attach(Topology::kRxDev, ao));
    attached_ = true;
    xfp::FilterSet set;
    xfp::Filter f;
    f.name = "bench-flow";
    f.layer = xfp::Layer::Inbound;
    f.conditions.push_back(xfp::Condition{xfp::Field::EtherType, xfp::Match::Equal, 0x0800, 0, ~0ull});
    if (kind_ == Kind::Offload) {
      f.action = xfp::Action::CalloutTerminating;  // unserved: its fail action blocks
      f.callout = kCalloutKey;
    } else {
      f.action = xfp::Action::Permit;
    }
    if (auto id = set.add_filter(f); !id) return std::move(id).error();
    // Callout id 1, never marked served: the filter applies its fail action.
    auto compiled = xfp::compile(set, {}, [](const std::string&) -> uint16_t { return 1; });
    if (!compiled) return std::move(compiled).error().context("compiling the bench's filter");
    XFP_TRY(dp_->install(*compiled));
    const auto atts = dp_->attachments();
    if (atts.empty()) return xfp::make_error(ENOENT, "attached, but no attachment listed");
    if (kind_ == Kind::Offload) {
      xfp_flow_key k{};
      xfp_flow_info info{};
      if (!xfp_flow_key_from_frame(frame_.data(), frame_.data() + frame_.size(), atts[0].key, &k, &info))
        return xfp::make_error(EINVAL, "the bench frame has no flow");
      XFP_TRY(dp_->offload_flow(k, xfp::Layer::Inbound, XFP_OFFLOAD_PERMIT, 0, dp_->generation()));
      // The same flow as BPF_PROG_TEST_RUN sees it: on lo, through the
      // datapath's own program copy, whose attachment key is the ifindex (1).
      if (!xfp_flow_key_from_frame(frame_.data(), frame_.data() + frame_.size(), kTestRunIface, &k, &info))
        return xfp::make_error(EINVAL, "the bench frame has no flow");
      XFP_TRY(dp_->offload_flow(k, xfp::Layer::Inbound, XFP_OFFLOAD_PERMIT, 0, dp_->generation()));
    }
    detail_ = fmt::format("XDP {} via {}; {}", atts[0].xdp_mode, atts[0].xdp_loader,
                          kind_ == Kind::Offload
                              ? "filter ethertype eq ipv4 -> callout-terminating (unserved: would block) + "
                                "offloaded permit for the flow"
                              : "filter ethertype eq ipv4 -> permit, no offloads (lookup off)");
    return xfp::Ok{};
  }
  uint64_t decided() const override {
    auto c = dp_->layer_counters(xfp::Layer::Inbound);
    return kind_ == Kind::Offload ? c.c[XFP_CNT_OFFLOAD_PERMIT] : c.c[XFP_CNT_PERMIT];
  }
  uint64_t other() const override {
    auto c = dp_->layer_counters(xfp::Layer::Inbound);
    return kind_ == Kind::Offload ? c.c[XFP_CNT_BLOCK] + c.c[XFP_CNT_PERMIT] : c.c[XFP_CNT_BLOCK];
  }
  std::string detail() const override { return detail_; }
  // Best of 5 runs of 1,000,000 repetitions; the verdict must be the
  // expected one (the offload's permit, or the permit filter's).
  double test_run_ns() override {
    double best = 0;
    for (int i = 0; i < 5 && !g_stop.load(); ++i) {
      const xfpbench::TestRun t = xfpbench::test_run(dp_->xdp_prog_fd(), frame_, 1000000);
      if (t.err || t.retval != XDP_PASS) return 0;
      best = i == 0 ? t.ns : std::min(best, t.ns);
    }
    return best;
  }
  void stop() override {
    if (dp_ && attached_) (void)dp_->detach(Topology::kRxDev);
    attached_ = false;
    dp_.reset();
  }

 private:
  Kind kind_;
  std::vector<uint8_t> frame_;
  std::unique_ptr<xfp::Datapath> dp_;
  bool attached_ = false;
  std::string detail_;
};

#ifdef XFPBF_WITH_CALLOUT
// bench/callout's xfp-callout case: punt, permit-all callout, injection.
class PuntedSetup final : public Setup {
 public:
  explicit PuntedSetup(const Topology& t) : topo_(t) {}
  ~PuntedSetup() override { stop(); }
  xfp::Status start() override {
    impl_ = xfpbc::make_xfp_callout_case();
    xfpbc::CaseEnv env;
    env.rx_dev = Topology::kRxDev;
    env.rx_ns = topo_.rx_ns();
    env.rx_ifindex = topo_.rx_ifindex();
    return impl_->start(env);
  }
  uint64_t decided() const override { return impl_->counters().consumed; }
  uint64_t other() const override { return impl_->counters().dropped; }
  uint64_t consumer_cpu_ns() const override { return impl_->counters().consumer_cpu_ns; }
  std::string detail() const override { return impl_->detail(); }
  void stop() override {
    if (impl_) impl_->stop();
    impl_.reset();
  }

 private:
  const Topology& topo_;
  std::unique_ptr<xfpbc::Case> impl_;
};
#endif

struct Result {
  std::string name;
  std::string detail, unavailable;
  std::vector<double> mpps, prog_ns, busy_ns, consumer_ns, test_run_ns;
  uint64_t other = 0;
};

int run(int argc, char** argv) {
  double duration = 2.0, cpu_duration = 1.0, warmup = 0.5;
  int rounds = 3, chunk = 1 << 22;
  std::vector<std::string> names = {"offload", "fastpath", "punted"};
  CLI::App app{
      "xfp-bench-flow: frames per second and CPU per frame of one flow (64-byte IPv4/UDP) on a veth pair between\n"
      "two namespaces made for the purpose, decided by xfp three ways in one run: offload (the flow's permit\n"
      "verdict offloaded into the kernel; the policy would block), fastpath (a permit filter, no offloads), punted\n"
      "(every frame through a permit-all callout in user space, injected back). Prints the ratios; the target is\n"
      "offload within 10% of fastpath. Needs root. Smoke runs only on a shared machine."};
  app.add_option("-d,--duration", duration, "seconds of each throughput window")->capture_default_str();
  app.add_option("--cpu-duration", cpu_duration, "seconds of each BPF statistics window (0: skip)")
      ->capture_default_str();
  app.add_option("--warmup", warmup, "seconds of traffic before each window")->capture_default_str();
  app.add_option("-r,--rounds", rounds, "rounds (each measures every case once, order rotating)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("-c,--cases", names, "cases: offload, fastpath, punted")
      ->delimiter(',')
      ->check(CLI::IsMember({"offload", "fastpath", "punted"}))
      ->capture_default_str();
  app.add_option("--chunk", chunk, "repeat count of one generator call")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  spdlog::set_level(spdlog::level::warn);
  if (geteuid() != 0) {
    fprintf(stderr, "xfp-bench-flow: needs root (namespaces, XDP, BPF_PROG_TEST_RUN)\n");
    return 1;
  }
  xfpbench::install_signal_handlers();
  printf("xfp-bench-flow\n  machine: %s\n  command: %s\n", xfpbench::describe(xfpbench::machine_facts()).c_str(),
         xfpbench::reproduce_command(argc, argv).c_str());

  auto topo_r = Topology::create();
  if (!topo_r) {
    fprintf(stderr, "xfp-bench-flow: %s\n", topo_r.error().message.c_str());
    return 1;
  }
  std::unique_ptr<Topology> topo = std::move(*topo_r);
  std::unique_ptr<xfpb_gen, void (*)(xfpb_gen*)> gen_skel(xfpb_gen__open_and_load(), xfpb_gen__destroy);
  if (!gen_skel) {
    fprintf(stderr, "xfp-bench-flow: loading the generator: %s\n", strerror(errno));
    return 1;
  }
  int pass_rc = 0;
  auto st = xfpbench::run_in_netns(topo->tx_ns_fd(), [&] {
    pass_rc = bpf_xdp_attach(static_cast<int>(topo->tx_ifindex()), bpf_program__fd(gen_skel->progs.xfpb_pass),
                             XDP_FLAGS_DRV_MODE, nullptr);
  });
  if (!st || pass_rc) {
    fprintf(stderr, "xfp-bench-flow: attaching XDP_PASS to the sending veth failed\n");
    return 1;
  }
  xfpbench::FrameSpec fs;
  fs.dst = Topology::kRxMac;
  fs.src = Topology::kTxMac;
  const std::vector<uint8_t> frame = xfpbench::build_frame(fs);
  printf("  frame: %zu bytes IPv4/UDP 198.18.0.1:9 -> 198.19.0.1:9; %d rounds x (%.1f s warm-up, %.1f s "
         "throughput, %.1f s BPF stats)\n\n",
         frame.size(), rounds, warmup, duration, cpu_duration);

  std::vector<Result> results;
  for (const auto& n : names) {
    if (std::any_of(results.begin(), results.end(), [&](const Result& r) { return r.name == n; })) continue;
    Result r;
    r.name = n;
#ifndef XFPBF_WITH_CALLOUT
    if (n == "punted") r.unavailable = "built without bench/callout (libnetfilter_queue missing)";
#endif
    results.push_back(r);
  }
  auto make = [&](const std::string& n) -> std::unique_ptr<Setup> {
    if (n == "offload") return std::make_unique<KernelSetup>(Kind::Offload, frame);
    if (n == "fastpath") return std::make_unique<KernelSetup>(Kind::Fastpath, frame);
#ifdef XFPBF_WITH_CALLOUT
    return std::make_unique<PuntedSetup>(*topo);
#else
    return nullptr;
#endif
  };

  const int gen_fd = bpf_program__fd(gen_skel->progs.xfpb_gen_tx);
  const double tick_ns = 1e9 / static_cast<double>(sysconf(_SC_CLK_TCK));
  for (int round = 0; round < rounds && !g_stop.load(); ++round) {
    for (size_t i = 0; i < results.size() && !g_stop.load(); ++i) {
      Result& r = results[(i + static_cast<size_t>(round)) % results.size()];
      if (!r.unavailable.empty()) continue;
      auto setup = make(r.name);
      if (auto s = setup->start(); !s) {
        r.unavailable = s.error().message;
        printf("round %d: %s: cannot set up: %s\n", round + 1, r.name.c_str(), r.unavailable.c_str());
        continue;
      }
      r.detail = setup->detail();
      if (const double tr = setup->test_run_ns(); tr > 0) r.test_run_ns.push_back(tr);
      Generator gen;
      gen.start({.ns_fd = topo->tx_ns_fd(), .prog_fd = gen_fd, .ifindex = topo->tx_ifindex(), .frame = frame,
                 .chunk = chunk});
      sleep_for(warmup);
      const uint64_t d0 = setup->decided(), o0 = setup->other(), c0 = setup->consumer_cpu_ns();
      const auto cpu0 = xfpbench::read_cpu_times();
      const uint64_t t0 = xfpbench::now_ns();
      sleep_for(duration);
      const uint64_t d1 = setup->decided(), o1 = setup->other(), c1 = setup->consumer_cpu_ns();
      const auto cpu1 = xfpbench::read_cpu_times();
      const uint64_t t1 = xfpbench::now_ns();
      double prog_ns = 0;
      if (cpu_duration > 0 && r.name != "punted" && !g_stop.load()) {
        int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
        auto p0 = prog_stats(topo->rx_ifindex());
        sleep_for(cpu_duration);
        auto p1 = prog_stats(topo->rx_ifindex());
        if (stats_fd >= 0) close(stats_fd);
        if (p0 && p1 && p1->second > p0->second)
          prog_ns = static_cast<double>(p1->first - p0->first) / static_cast<double>(p1->second - p0->second);
      }
      gen.stop();
      setup->stop();
      if (gen.error()) {
        fprintf(stderr, "xfp-bench-flow: generator: %s\n", strerror(gen.error()));
        return 1;
      }
      if (g_stop.load()) break;
      const double frames = static_cast<double>(d1 - d0);
      const double mpps = frames / (static_cast<double>(t1 - t0) / 1e9) / 1e6;
      const double busy_ns = frames > 0 ? static_cast<double>(cpu1.busy() - cpu0.busy()) * tick_ns / frames : 0;
      const double consumer_ns = frames > 0 ? static_cast<double>(c1 - c0) / frames : 0;
      r.mpps.push_back(mpps);
      r.prog_ns.push_back(prog_ns);
      r.busy_ns.push_back(busy_ns);
      r.consumer_ns.push_back(consumer_ns);
      r.other += o1 - o0;
      printf("round %d  %-9s %7.3f Mpps decided, machine CPU %7.1f ns/frame, XDP prog %6.1f ns/frame, user space "
             "%7.1f ns/frame, decided otherwise %llu\n",
             round + 1, r.name.c_str(), mpps, busy_ns, prog_ns, consumer_ns,
             static_cast<unsigned long long>(o1 - o0));
      fflush(stdout);
    }
  }

  auto med = [](const std::vector<double>& v) { return xfpbench::median_of(v); };
  printf("\n%-9s %10s %14s %12s %14s %14s\n", "case", "Mpps med", "machine ns/fr", "prog ns/fr", "user ns/fr",
         "test-run ns/fr");
  for (const auto& r : results) {
    if (r.mpps.empty()) {
      printf("%-9s not measured: %s\n", r.name.c_str(), r.unavailable.empty() ? "interrupted" : r.unavailable.c_str());
      continue;
    }
    printf("%-9s %10.3f %14.1f %12.1f %14.1f %14s\n", r.name.c_str(), med(r.mpps), med(r.busy_ns), med(r.prog_ns),
           med(r.consumer_ns), r.test_run_ns.empty() ? "-" : fmt::format("{:.0f}", med(r.test_run_ns)).c_str());
  }
  for (const auto& r : results)
    if (!r.detail.empty()) printf("  %-8s %s\n", r.name.c_str(), r.detail.c_str());
  auto find = [&](const char* n) -> const Result* {
    for (const auto& r : results)
      if (r.name == n && !r.mpps.empty()) return &r;
    return nullptr;
  };
  const Result *off = find("offload"), *fast = find("fastpath"), *punt = find("punted");
  printf("\n");
  if (off && fast) {
    const double ratio = med(off->mpps) / med(fast->mpps);
    printf("offload/fastpath: %.3f frames/s (target >= 0.90: %s), prog CPU %.2fx, machine CPU %.2fx\n", ratio,
           ratio >= 0.9 ? "PASS" : "FAIL", med(fast->prog_ns) > 0 ? med(off->prog_ns) / med(fast->prog_ns) : 0.0,
           med(fast->busy_ns) > 0 ? med(off->busy_ns) / med(fast->busy_ns) : 0.0);
  }
  if (off && fast && !off->test_run_ns.empty() && !fast->test_run_ns.empty())
    printf("offload/fastpath: %.2fx the XDP program's ns per frame under BPF_PROG_TEST_RUN (no traffic)\n",
           med(off->test_run_ns) / med(fast->test_run_ns));
  if (off && punt)
    printf("offload/punted:   %.2fx frames/s, machine CPU %.2fx\n", med(off->mpps) / med(punt->mpps),
           med(punt->busy_ns) > 0 ? med(off->busy_ns) / med(punt->busy_ns) : 0.0);
  if (fast && punt) printf("fastpath/punted:  %.2fx frames/s\n", med(fast->mpps) / med(punt->mpps));
  for (const auto& r : results)
    if (r.other) printf("warning: %s: %llu frames decided another way (see the case's detail)\n", r.name.c_str(),
                        static_cast<unsigned long long>(r.other));
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
