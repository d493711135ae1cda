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
// Traffic: bench/veth's generator on the sending veth: the kernel one (an
// XDP_TX program under BPF_PROG_TEST_RUN with live frames), or where the
// kernel refuses live frames, AF_XDP transmit in copy mode (about 2 Mpps:
// with it the receiving veth's NAPI is threaded by default, its receive
// thread's CPU per frame is measured, and the target is judged on that). Decided frames
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
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bench_common.hpp"
#include "generator.hpp"
#include "rx_cpu.hpp"
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
  // The punt header's carrier of the attached XDP program ("metadata",
  // "in-band"); only the punted case punts, but every case's program has one.
  virtual std::string carrier() const = 0;
  virtual void stop() = 0;
};

constexpr const char* kCalloutKey = "xfp.bench.flow";
constexpr uint32_t kTestRunIface = 1;  // BPF_PROG_TEST_RUN runs on lo

class KernelSetup final : public Setup {
 public:
  KernelSetup(Kind k, const std::vector<uint8_t>& frame, xfp::PuntCarrier carrier)
      : kind_(k), frame_(frame), carrier_asked_(carrier) {}
  ~KernelSetup() override { stop(); }

  xfp::Status start() override {
    xfp::DatapathOptions dopts;
    dopts.carrier = carrier_asked_;
    auto dp = xfp::Datapath::open(dopts);
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
    carrier_ = xfp::punt_carrier_name(atts[0].carrier);
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
  std::string carrier() const override { return carrier_; }
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
  xfp::PuntCarrier carrier_asked_;
  std::string carrier_;
  std::unique_ptr<xfp::Datapath> dp_;
  bool attached_ = false;
  std::string detail_;
};

#ifdef XFPBF_WITH_CALLOUT
// bench/callout's xfp-callout case: punt, permit-all callout, injection.
class PuntedSetup final : public Setup {
 public:
  PuntedSetup(const Topology& t, std::string carrier) : topo_(t), carrier_asked_(std::move(carrier)) {}
  ~PuntedSetup() override { stop(); }
  xfp::Status start() override {
    impl_ = xfpbc::make_xfp_callout_case();
    xfpbc::CaseEnv env;
    env.rx_dev = Topology::kRxDev;
    env.rx_ns = topo_.rx_ns();
    env.rx_ifindex = topo_.rx_ifindex();
    env.punt_carrier = carrier_asked_;
    return impl_->start(env);
  }
  uint64_t decided() const override { return impl_->counters().consumed; }
  uint64_t other() const override { return impl_->counters().dropped; }
  uint64_t consumer_cpu_ns() const override { return impl_->counters().consumer_cpu_ns; }
  std::string detail() const override { return impl_->detail(); }
  std::string carrier() const override { return impl_->punt_carrier(); }
  void stop() override {
    if (impl_) impl_->stop();
    impl_.reset();
  }

 private:
  const Topology& topo_;
  std::string carrier_asked_;
  std::unique_ptr<xfpbc::Case> impl_;
};
#endif

struct Result {
  std::string name;
  std::string detail, unavailable, carrier;
  std::vector<double> mpps, prog_ns, busy_ns, consumer_ns, test_run_ns;
  std::vector<double> rx_ns;  // the receive thread's CPU per decided frame (threaded NAPI)
  uint64_t other = 0;
};

int run(int argc, char** argv) {
  double duration = 2.0, cpu_duration = 1.0, warmup = 0.5;
  int rounds = 3, chunk = 1 << 22, gen_cpu = -1, rx_cpu = -1, napi_flag = 0, gen_batch = 64;
  uint32_t gen_ring = 2048;
  std::string generator_arg = "auto", carrier_arg = "auto";
  std::vector<std::string> names = {"offload", "fastpath", "punted"};
  CLI::App app{
      "xfp-bench-flow: frames per second and CPU per frame of one flow (64-byte IPv4/UDP) on a veth pair between\n"
      "two namespaces made for the purpose, decided by xfp three ways in one run: offload (the flow's permit\n"
      "verdict offloaded into the kernel; the policy would block), fastpath (a permit filter, no offloads), punted\n"
      "(every frame through a permit-all callout in user space, injected back). Prints the ratios; the target is\n"
      "offload within 10% of fastpath, in frames/s, or with the AF_XDP generator (--generator; threaded NAPI)\n"
      "in the receive thread's CPU per frame. Prints the generator and the punt-header carrier it ran with.\n"
      "Needs root. Smoke runs only on a shared machine."};
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
  app.add_option("--generator", generator_arg, xfpbench::kGeneratorHelp)
      ->check(CLI::IsMember({"auto", "kernel", "afxdp"}))
      ->capture_default_str();
  app.add_option("--gen-ring", gen_ring, "AF_XDP generator: TX and completion ring size (power of 2, >= 64)")
      ->capture_default_str();
  app.add_option("--gen-batch", gen_batch, "generator batch (live-frames batch_size; AF_XDP: descriptors per kick)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--gen-cpu", gen_cpu, "pin the generator thread to this CPU (-1: no pinning)")->capture_default_str();
  app.add_flag("--napi-threaded,!--no-napi-threaded", napi_flag,
               "threaded NAPI on the receiving veth (its receive thread's CPU per frame is then measured). Default: "
               "on with the AF_XDP generator, off with the kernel one");
  app.add_option("--rx-cpu", rx_cpu, "pin the receive thread (threaded NAPI) to this CPU (-1: no pinning)")
      ->capture_default_str();
  app.add_option("--punt-carrier", carrier_arg,
                 "where the punt header travels: metadata (the XDP metadata area), in-band (in front of the frame), "
                 "auto (the datapath's choice)")
      ->check(CLI::IsMember({"auto", "metadata", "in-band"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (gen_ring < 64 || (gen_ring & (gen_ring - 1))) {
    fprintf(stderr, "xfp-bench-flow: --gen-ring must be a power of 2 >= 64\n");
    return 1;
  }
  const xfp::PuntCarrier carrier_asked = *xfp::punt_carrier_from_name(carrier_arg);

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
  const int gen_fd = bpf_program__fd(gen_skel->progs.xfpb_gen_tx);
  int probe_err = 0;
  const xfpbench::GeneratorChoice gen_choice = xfpbench::choose_generator(
      *xfpbench::generator_from_name(generator_arg), topo->tx_ns_fd(), gen_fd, topo->tx_ifindex(), frame, &probe_err);
  if (probe_err) {
    fprintf(stderr, "xfp-bench-flow: generator: %s\n", gen_choice.reason.c_str());
    return 1;
  }
  const bool afxdp = gen_choice.kind == xfpbench::GeneratorKind::AfXdp;
  const bool threaded = napi_flag > 0 || (napi_flag == 0 && afxdp);
  printf("  generator: %s: %s; NAPI threaded=%d; punt-header carrier asked: %s\n",
         xfpbench::generator_name(gen_choice.kind), gen_choice.reason.c_str(), threaded ? 1 : 0, carrier_arg.c_str());
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
    if (n == "offload") return std::make_unique<KernelSetup>(Kind::Offload, frame, carrier_asked);
    if (n == "fastpath") return std::make_unique<KernelSetup>(Kind::Fastpath, frame, carrier_asked);
#ifdef XFPBF_WITH_CALLOUT
    return std::make_unique<PuntedSetup>(*topo, carrier_arg);
#else
    return nullptr;
#endif
  };

  const double tick_ns = 1e9 / static_cast<double>(sysconf(_SC_CLK_TCK));
  for (int round = 0; round < rounds && !g_stop.load(); ++round) {
    for (size_t i = 0; i < results.size() && !g_stop.load(); ++i) {
      Result& r = results[(i + static_cast<size_t>(round)) % results.size()];
      if (!r.unavailable.empty()) continue;
      auto setup = make(r.name);
      const std::set<pid_t> napi_before = xfpbench::napi_threads(Topology::kRxDev);
      if (auto s = setup->start(); !s) {
        r.unavailable = s.error().message;
        printf("round %d: %s: cannot set up: %s\n", round + 1, r.name.c_str(), r.unavailable.c_str());
        continue;
      }
      r.detail = setup->detail();
      r.carrier = setup->carrier();
      std::set<pid_t> napi;
      if (threaded) {
        if (!topo->set_rx_threaded(true)) fprintf(stderr, "xfp-bench-flow: warning: could not make NAPI threaded\n");
        for (pid_t t : xfpbench::napi_threads(Topology::kRxDev))
          if (!napi_before.count(t)) napi.insert(t);
        if (rx_cpu >= 0 && !xfpbench::pin_tasks(napi, rx_cpu))
          fprintf(stderr, "xfp-bench-flow: warning: could not pin the receive thread to CPU %d\n", rx_cpu);
      }
      if (const double tr = setup->test_run_ns(); tr > 0) r.test_run_ns.push_back(tr);
      Generator gen;
      gen.start({.kind = gen_choice.kind, .ns_fd = topo->tx_ns_fd(), .ifindex = topo->tx_ifindex(),
                 .ifname = Topology::kTxDev, .frame = frame, .cpu = gen_cpu, .prog_fd = gen_fd, .chunk = chunk,
                 .batch = gen_batch, .ring = gen_ring});
      sleep_for(warmup);
      const uint64_t n0 = xfpbench::tasks_cpu_ns(napi);
      const uint64_t d0 = setup->decided(), o0 = setup->other(), c0 = setup->consumer_cpu_ns();
      const auto cpu0 = xfpbench::read_cpu_times();
      const uint64_t t0 = xfpbench::now_ns();
      sleep_for(duration);
      const uint64_t d1 = setup->decided(), o1 = setup->other(), c1 = setup->consumer_cpu_ns();
      const uint64_t n1 = xfpbench::tasks_cpu_ns(napi);
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
      const double rx_ns = frames > 0 && n1 > n0 ? static_cast<double>(n1 - n0) / frames : 0;
      const double rx_busy = n1 > n0 ? static_cast<double>(n1 - n0) / static_cast<double>(t1 - t0) : 0;
      r.rx_ns.push_back(rx_ns);
      r.mpps.push_back(mpps);
      r.prog_ns.push_back(prog_ns);
      r.busy_ns.push_back(busy_ns);
      r.consumer_ns.push_back(consumer_ns);
      r.other += o1 - o0;
      printf("round %d  %-9s %7.3f Mpps decided, machine CPU %7.1f ns/frame, XDP prog %6.1f ns/frame, user space "
             "%7.1f ns/frame, decided otherwise %llu",
             round + 1, r.name.c_str(), mpps, busy_ns, prog_ns, consumer_ns,
             static_cast<unsigned long long>(o1 - o0));
      if (rx_ns > 0) printf(", receive thread %.1f ns/frame (busy %.0f%%)", rx_ns, 100 * rx_busy);
      printf("\n");
      fflush(stdout);
    }
  }

  auto med = [](const std::vector<double>& v) { return xfpbench::median_of(v); };
  printf("\n%-9s %10s %14s %12s %14s %14s %11s\n", "case", "Mpps med", "machine ns/fr", "prog ns/fr", "user ns/fr",
         "test-run ns/fr", "rx ns/fr");
  for (const auto& r : results) {
    if (r.mpps.empty()) {
      printf("%-9s not measured: %s\n", r.name.c_str(), r.unavailable.empty() ? "interrupted" : r.unavailable.c_str());
      continue;
    }
    printf("%-9s %10.3f %14.1f %12.1f %14.1f %14s %11s\n", r.name.c_str(), med(r.mpps), med(r.busy_ns), med(r.prog_ns),
           med(r.consumer_ns), r.test_run_ns.empty() ? "-" : fmt::format("{:.0f}", med(r.test_run_ns)).c_str(),
           med(r.rx_ns) > 0 ? fmt::format("{:.1f}", med(r.rx_ns)).c_str() : "-");
  }
  printf("(rx ns/fr = the receiving veth's NAPI thread's CPU per decided frame: XDP and the stack; threaded NAPI "
         "only)\n");
  for (const auto& r : results)
    if (!r.detail.empty()) printf("  %-8s %s\n", r.name.c_str(), r.detail.c_str());
  for (const auto& r : results)
    if (!r.carrier.empty()) printf("  %-8s punt-header carrier: %s\n", r.name.c_str(), r.carrier.c_str());
  printf("  generator: %s\n", gen_choice.reason.c_str());
  auto find = [&](const char* n) -> const Result* {
    for (const auto& r : results)
      if (r.name == n && !r.mpps.empty()) return &r;
    return nullptr;
  };
  const Result *off = find("offload"), *fast = find("fastpath"), *punt = find("punted");
  printf("\n");
  if (off && fast) {
    // With the AF_XDP generator (about as costly per frame as the receive
    // path) frames/s moves with the generator's share of the machine: the
    // target is the receive thread's CPU per frame, fastpath's over offload's.
    const double ratio = med(off->mpps) / med(fast->mpps);
    const double rx = med(off->rx_ns) > 0 && med(fast->rx_ns) > 0 ? med(fast->rx_ns) / med(off->rx_ns) : 0;
    const bool by_cpu = afxdp && rx > 0;
    printf("offload/fastpath: %.3f frames/s (%s), prog CPU %.2fx, machine CPU %.2fx\n", ratio,
           by_cpu ? "info: AF_XDP generator" : (ratio >= 0.9 ? "target >= 0.90: PASS" : "target >= 0.90: FAIL"),
           med(fast->prog_ns) > 0 ? med(off->prog_ns) / med(fast->prog_ns) : 0.0,
           med(fast->busy_ns) > 0 ? med(off->busy_ns) / med(fast->busy_ns) : 0.0);
    if (rx > 0)
      printf("offload/fastpath: %.3f by receive CPU per frame (fastpath %.1f / offload %.1f ns)%s\n", rx,
             med(fast->rx_ns), med(off->rx_ns),
             by_cpu ? (rx >= 0.9 ? " (target >= 0.90: PASS)" : " (target >= 0.90: FAIL)") : " (info)");
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
