// xfp-bench-veth: frames per second through a veth pair, 64-byte frames,
// comparing in one run the receiving side's XDP program:
//   XDP_DROP    a bare XDP_DROP program (the floor),
//   xdp-filter  xdp-tools' xdp-filter denying 100 source MACs,
//   xfp         xfp's inbound layer with 100 remote-mac block filters,
//   xfp-general the same and one EtherType filter no frame matches (the
//               general path: see PeerKind).
// Every generated frame is dropped by all of them (its source is one of the
// 100 MACs), so they do the same job.
//
// Traffic: generator.hpp's generator on a thread inside the sending
// namespace: the kernel generator (an XDP_TX program under BPF_PROG_TEST_RUN
// with BPF_F_TEST_XDP_LIVE_FRAMES, ingress_ifindex = the sending veth), or,
// where the kernel refuses live frames (or --generator afxdp), AF_XDP
// transmit in copy mode. Received frames: the receiving veth's rx_packets
// (every frame its XDP program saw), the same counter for all peers. Rounds
// interleave the peers (rotating their order) and the median is reported.
// CPU per frame: the program's run_time_ns / run_cnt with BPF statistics on
// (a separate window, since the statistics cost time per run), system+irq+
// softirq time of /proc/stat over the throughput window per received frame
// (includes the generator's own kernel time), and with threaded NAPI the
// receive thread's CPU time per received frame (rx_cpu.hpp). The AF_XDP
// generator (about 2 Mpps) is slower than every peer: with it NAPI is
// threaded by default and the targets are judged on the receive thread's CPU
// per frame, the Mpps ratios being what the generator allowed.
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
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bench_common.hpp"
#include "generator.hpp"
#include "rx_cpu.hpp"
#include "topology.hpp"
#include "xfp/compiler.hpp"
#include "xfp/datapath.hpp"
#include "xfp/filter_set.hpp"
#include "xfpb_drop.skel.h"
#include "xfpb_gen.skel.h"

namespace {

using xfpbench::g_stop;
using xfpbench::Topology;

constexpr uint64_t kDenyBase = 0x02b5c6200000ull;  // 02:b5:c6:20:00:00 + i

// ---- the generator: generator.hpp ----------------------------------------------------
using xfpbench::Generator;

// ---- CPU accounting -------------------------------------------------------------
using xfpbench::CpuTimes;
using xfpbench::read_cpu_times;

struct ProgStats {
  uint32_t id = 0;
  std::string name;
  uint64_t run_time_ns = 0, run_cnt = 0;
};

// The program attached (native mode) to the receiving veth.
std::optional<ProgStats> attached_prog_stats(uint32_t ifindex) {
  ProgStats p;
  if (bpf_xdp_query_id(static_cast<int>(ifindex), XDP_FLAGS_DRV_MODE, &p.id) != 0 || p.id == 0) return std::nullopt;
  int fd = bpf_prog_get_fd_by_id(p.id);
  if (fd < 0) return std::nullopt;
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  int rc = bpf_obj_get_info_by_fd(fd, &info, &len);
  close(fd);
  if (rc != 0) return std::nullopt;
  p.name = info.name;
  p.run_time_ns = info.run_time_ns;
  p.run_cnt = info.run_cnt;
  return p;
}

std::string stats_enabled_sysctl() {
  auto s = xfpbench::read_file("/proc/sys/kernel/bpf_stats_enabled");
  if (!s) return "?";
  while (!s->empty() && s->back() == '\n') s->pop_back();
  return *s;
}

// Sleeps up to `secs`, returning early on SIGINT/SIGTERM.
void sleep_for(double secs) {
  const uint64_t end = xfpbench::now_ns() + static_cast<uint64_t>(secs * 1e9);
  while (!g_stop.load() && xfpbench::now_ns() < end) {
    uint64_t left = end - xfpbench::now_ns();
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<uint64_t>(left, 50000000)));
  }
}

// ---- peers -----------------------------------------------------------------
// XfpGeneral: the same deny list plus one EtherType filter that no generated
// frame matches. The set then has a direct table, so it is no longer one
// probe group alone, and every frame takes the general path (best ranks,
// arbitration) instead of the row that decides alone: what a mixed policy
// pays for the same verdict.
enum class PeerKind { Drop, XdpFilter, Xfp, XfpGeneral };

// Both xfp peers share one Datapath: each installs its own set before it attaches.
bool is_xfp(PeerKind k) { return k == PeerKind::Xfp || k == PeerKind::XfpGeneral; }

struct PeerResult {
  PeerKind kind;
  std::string name;
  std::string detail;
  std::string unavailable;  // why it could not be measured
  std::vector<double> mpps, offered_mpps, kernel_ns, busy, steal, bpf_ns, drop_frac;
  std::vector<double> rx_ns, rx_busy, gen_ns;  // receive thread (threaded NAPI) and generator thread
  std::vector<int> rounds;  // the round of each sample above
};

struct Ctx {
  Topology* topo = nullptr;
  xfpb_drop* drop = nullptr;
  xfp::Datapath* dp = nullptr;
  std::optional<xfp::CompiledSet> deny_set, general_set;  // what the xfp peers install
  std::vector<uint64_t> deny;
  int xdpfilter_fd = -1;  // the loaded xdp-filter program, kept across rounds
  bool threaded = false;
  int rx_cpu = -1;               // pin the receive thread (threaded NAPI) here
  std::set<pid_t> napi;          // the receive thread(s) of the attached peer
  bool verbose = false;
};

xfp::Status attach_peer(Ctx& c, PeerResult& p) {
  const int ifindex = static_cast<int>(c.topo->rx_ifindex());
  const std::set<pid_t> napi_before = xfpbench::napi_threads(Topology::kRxDev);
  switch (p.kind) {
    case PeerKind::Drop: {
      int rc = bpf_xdp_attach(ifindex, bpf_program__fd(c.drop->progs.xfpb_drop), XDP_FLAGS_DRV_MODE, nullptr);
      if (rc) return xfp::errno_error("attaching XDP_DROP", -rc);
      p.detail = "xfpb_drop, native";
      break;
    }
    case PeerKind::XdpFilter: {
      if (c.xdpfilter_fd >= 0) {  // loaded and filled in an earlier round
        int rc = bpf_xdp_attach(ifindex, c.xdpfilter_fd, XDP_FLAGS_DRV_MODE, nullptr);
        if (rc) return xfp::errno_error("re-attaching xdp-filter's program", -rc);
        break;
      }
      std::string cmd = fmt::format("xdp-filter load -m native -p allow -f ethernet {} || exit 1; for m in",
                                    Topology::kRxDev);
      for (uint64_t m : c.deny) cmd += " " + xfpbench::mac_to_string(m);
      cmd += "; do xdp-filter ether -m src $m || exit 2; done";
      std::string out;
      int rc = c.topo->exec_in_rx(cmd + " 2>&1", false, &out);
      if (rc != 0) {
        bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, nullptr);
        return xfp::make_error(EIO, fmt::format("xdp-filter failed (exit {}): {}", rc, out));
      }
      auto st = attached_prog_stats(c.topo->rx_ifindex());
      if (!st) return xfp::make_error(EIO, "xdp-filter loaded, but no native XDP program is attached");
      c.xdpfilter_fd = bpf_prog_get_fd_by_id(st->id);
      if (c.xdpfilter_fd < 0) return xfp::errno_error("holding xdp-filter's program");
      p.detail = fmt::format("program {} (xdp-filter load -m native -p allow -f ethernet; {} x ether -m src)",
                             st->name, c.deny.size());
      if (st->name.find("dispatch") != std::string::npos)
        p.detail += " [warning: libxdp dispatcher: re-attach in later rounds may lose the filter]";
      break;
    }
    case PeerKind::Xfp:
    case PeerKind::XfpGeneral: {
      const bool general = p.kind == PeerKind::XfpGeneral;
      if (auto s = c.dp->install(general ? *c.general_set : *c.deny_set); !s)
        return std::move(s).error().context("installing the filter set");
      xfp::AttachOptions o;
      o.mode = xfp::XdpMode::Native;
      o.inbound = true;
      o.outbound = false;
      XFP_TRY(c.dp->attach(Topology::kRxDev, o));
      for (const auto& a : c.dp->attachments())
        if (a.ifname == Topology::kRxDev)
          p.detail = fmt::format("{} filters{}, XDP {} via {}", c.deny.size(),
                                 general ? " + 1 EtherType filter no frame matches (general path)" : "", a.xdp_mode,
                                 a.xdp_loader);
      break;
    }
  }
  if (!c.topo->set_rx_threaded(c.threaded))
    fprintf(stderr, "xfp-bench-veth: warning: could not set threaded NAPI to %d\n", c.threaded ? 1 : 0);
  c.napi.clear();
  if (c.threaded) {
    for (pid_t t : xfpbench::napi_threads(Topology::kRxDev))
      if (!napi_before.count(t)) c.napi.insert(t);
    if (c.rx_cpu >= 0 && !xfpbench::pin_tasks(c.napi, c.rx_cpu))
      fprintf(stderr, "xfp-bench-veth: warning: could not pin the receive thread to CPU %d\n", c.rx_cpu);
  }
  return xfp::Ok{};
}

void detach_peer(Ctx& c, const PeerResult& p) {
  if (is_xfp(p.kind)) {
    auto s = c.dp->detach(Topology::kRxDev);
    if (!s) fprintf(stderr, "xfp-bench-veth: detaching xfp: %s\n", s.error().message.c_str());
    return;
  }
  bpf_xdp_detach(static_cast<int>(c.topo->rx_ifindex()), XDP_FLAGS_DRV_MODE, nullptr);
}

// One throughput window (BPF statistics off) then one CPU window (on).
struct Sample {
  double mpps = 0, offered_mpps = 0, kernel_ns = 0, busy = 0, steal = 0, bpf_ns = 0, drop_frac = 0;
  double rx_ns = 0, rx_busy = 0, gen_ns = 0;  // 0: not measured
  uint64_t frames = 0, dropped_at_ring = 0;
};

xfp::Result<Sample> measure(Ctx& c, const Generator& gen, double duration, double cpu_duration) {
  Sample s;
  const bool afxdp = gen.kind() == xfpbench::GeneratorKind::AfXdp;
  // The sending veth's counters (AF_XDP generator) are read just outside
  // the window: a thread each.
  bool tx_ok = true;
  auto read_tx = [&] {
    auto t = afxdp ? c.topo->tx_stats() : std::nullopt;
    tx_ok = tx_ok && (!afxdp || t);
    return t.value_or(xfpbench::LinkStats{});
  };
  const xfpbench::LinkStats tx0 = read_tx();
  auto rx0 = c.topo->rx_stats();
  auto e0 = c.topo->rx_ethtool();
  CpuTimes cpu0 = read_cpu_times();
  const uint64_t napi0 = xfpbench::tasks_cpu_ns(c.napi), gen0 = gen.cpu_ns();
  uint64_t t0 = xfpbench::now_ns();
  sleep_for(duration);
  auto rx1 = c.topo->rx_stats();
  auto e1 = c.topo->rx_ethtool();
  CpuTimes cpu1 = read_cpu_times();
  const uint64_t napi1 = xfpbench::tasks_cpu_ns(c.napi), gen1 = gen.cpu_ns();
  uint64_t t1 = xfpbench::now_ns();
  const xfpbench::LinkStats tx1 = read_tx();
  if (!rx0 || !rx1) return xfp::make_error(EIO, "cannot read the receiving veth's statistics");
  if (!tx_ok) return xfp::make_error(EIO, "cannot read the sending veth's statistics");
  const double secs = static_cast<double>(t1 - t0) / 1e9;
  s.frames = rx1->rx_packets - rx0->rx_packets;
  s.mpps = static_cast<double>(s.frames) / secs / 1e6;
  // Frames the generator pushed at the veth. Kernel generator: received,
  // plus those the veth refused because its receive ring was full (counted
  // in rx_dropped). AF_XDP generator: what the sending veth's xmit took or
  // refused (tx_packets + tx_dropped), not the socket's completions, which
  // count dropped frames too.
  s.dropped_at_ring = rx1->rx_dropped - rx0->rx_dropped;
  uint64_t offered = s.frames + s.dropped_at_ring;
  if (afxdp) {
    offered = (tx1.tx_packets + tx1.tx_dropped) - (tx0.tx_packets + tx0.tx_dropped);
    s.dropped_at_ring += tx1.tx_dropped - tx0.tx_dropped;
  }
  s.offered_mpps = static_cast<double>(offered) / secs / 1e6;
  if (!c.napi.empty() && s.frames && napi1 > napi0) {
    s.rx_ns = static_cast<double>(napi1 - napi0) / static_cast<double>(s.frames);
    s.rx_busy = static_cast<double>(napi1 - napi0) / static_cast<double>(t1 - t0);
  }
  if (gen1 > gen0 && offered) s.gen_ns = static_cast<double>(gen1 - gen0) / static_cast<double>(offered);
  const double tick_ns = 1e9 / static_cast<double>(sysconf(_SC_CLK_TCK));
  const double dk = static_cast<double>(cpu1.kernel() - cpu0.kernel());
  const double dt = static_cast<double>(cpu1.total() - cpu0.total());
  s.kernel_ns = s.frames ? dk * tick_ns / static_cast<double>(s.frames) : 0;
  s.busy = dt > 0 ? 1.0 - static_cast<double>(cpu1.idle + cpu1.iowait - cpu0.idle - cpu0.iowait) / dt : 0;
  s.steal = dt > 0 ? static_cast<double>(cpu1.steal - cpu0.steal) / dt : 0;
  const uint64_t drops = e1["rx_xdp_drops"] - e0["rx_xdp_drops"];
  s.drop_frac = s.frames ? static_cast<double>(drops) / static_cast<double>(s.frames) : 0;

  if (cpu_duration > 0 && !g_stop.load()) {
    int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);  // off again when closed
    if (stats_fd < 0) return xfp::errno_error("enabling BPF run-time statistics", -stats_fd);
    auto p0 = attached_prog_stats(c.topo->rx_ifindex());
    sleep_for(cpu_duration);
    auto p1 = attached_prog_stats(c.topo->rx_ifindex());
    close(stats_fd);
    if (p0 && p1 && p1->id == p0->id && p1->run_cnt > p0->run_cnt)
      s.bpf_ns = static_cast<double>(p1->run_time_ns - p0->run_time_ns) / static_cast<double>(p1->run_cnt - p0->run_cnt);
  }
  return s;
}

const char* kind_key(PeerKind k) {
  switch (k) {
    case PeerKind::Drop: return "xdp_drop";
    case PeerKind::XdpFilter: return "xdp_filter";
    case PeerKind::Xfp: return "xfp";
    case PeerKind::XfpGeneral: return "xfp_general";
  }
  return "?";
}

int run(int argc, char** argv) {
  double duration = 3.0, cpu_duration = 1.0, warmup = 0.5;
  int rounds = 3, chunk = 1 << 24, batch = 64, gen_cpu = -1, rt_prio = 0, rx_cpu = -1, napi_flag = 0;
  uint32_t ring = 2048;
  size_t nmacs = 100;
  std::string generator_arg = "auto";
  std::vector<std::string> peer_names = {"drop", "xdp-filter", "xfp", "xfp-general"};
  double target_drop = 0.9, target_xdpfilter = 1.0;
  std::string json_path;

  CLI::App app{
      "xfp-bench-veth: frames per second of 64-byte frames on a veth pair between two namespaces made for\n"
      "the purpose (xfpb-PID-tx, xfpb-PID-rx; removed at exit, also on Ctrl-C), comparing in one run the\n"
      "receiving veth's XDP program: a bare XDP_DROP, xdp-filter (xdp-tools) denying N source MACs, xfp\n"
      "with N remote-mac block filters (one probe group: each frame's row decides alone), and xfp-general,\n"
      "the same plus one EtherType filter no frame matches, which sends every frame down the general path\n"
      "(best ranks, arbitration; info only). Traffic comes from the kernel generator (XDP_TX program under\n"
      "BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES) on the sending veth, or where the kernel refuses\n"
      "live frames from AF_XDP transmit in copy mode (--generator). Received = the receiving veth's\n"
      "rx_packets. CPU/frame = the program's run_time_ns/run_cnt (BPF stats, own window), /proc/stat\n"
      "system+irq+softirq per received frame, and with threaded NAPI the receive thread's CPU per frame.\n"
      "Targets: xfp/XDP_DROP >= 0.9, xfp/xdp-filter >= 1.0, each the median over rounds of the ratio within\n"
      "the round; with the AF_XDP generator (about 2 Mpps, about as costly per frame as the receiver)\n"
      "judged on the receive thread's CPU per frame (peer's / xfp's), the Mpps ratio shown beside it\n"
      "(reported, not asserted: exit status 0 unless the measurement failed). Needs root."};
  app.add_option("-d,--duration", duration, "seconds of each throughput window")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  app.add_option("--cpu-duration", cpu_duration, "seconds of each CPU window with BPF statistics on (0: skip)")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  app.add_option("--warmup", warmup, "seconds of traffic before each window")->capture_default_str();
  app.add_option("-r,--rounds", rounds, "rounds; each measures every peer once (order rotates)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("-p,--peers", peer_names, "peers to measure: drop, xdp-filter, xfp, xfp-general")
      ->delimiter(',')
      ->check(CLI::IsMember({"drop", "xdp-filter", "xfp", "xfp-general"}))
      ->capture_default_str();
  app.add_option("-m,--macs", nmacs, "MACs in the deny set (xdp-filter and xfp)")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--chunk", chunk,
                 "repeat count of one BPF_PROG_TEST_RUN call of the generator (calls are ended early by a signal "
                 "at the end of a measurement; small values cost a page-pool setup per call)")
      ->check(CLI::Range(64, 1 << 26))
      ->capture_default_str();
  app.add_option("--batch", batch, "generator batch size (BPF_F_TEST_XDP_LIVE_FRAMES batch_size)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--gen-cpu", gen_cpu, "pin the generator thread to this CPU (-1: no pinning)")->capture_default_str();
  app.add_option("--rt", rt_prio,
                 "run the generator thread SCHED_FIFO at this priority (1-99; 0: normal), so that other load "
                 "on the machine does not take its CPU; the kernel still leaves others 5 %")
      ->check(CLI::Range(0, 99))
      ->capture_default_str();
  app.add_option("--generator", generator_arg, xfpbench::kGeneratorHelp)
      ->check(CLI::IsMember({"auto", "kernel", "afxdp"}))
      ->capture_default_str();
  app.add_option("--ring", ring, "AF_XDP generator: TX and completion ring size (power of 2, >= 64)")
      ->capture_default_str();
  app.add_flag("--napi-threaded,!--no-napi-threaded", napi_flag,
               "threaded NAPI on the receiving veth (receive runs in a kthread, not in the generator's softirq; its "
               "CPU time per frame is then measured). Default: on with the AF_XDP generator, off with the kernel one");
  app.add_option("--rx-cpu", rx_cpu, "pin the receive thread (threaded NAPI) to this CPU (-1: no pinning)")
      ->capture_default_str();
  app.add_option("--target-drop", target_drop, "PASS when xfp/XDP_DROP >= this")->capture_default_str();
  app.add_option("--target-xdp-filter", target_xdpfilter, "PASS when xfp/xdp-filter >= this")->capture_default_str();
  app.add_option("--json", json_path, "also write the results as JSON to this file ('-' = stdout)");
  CLI11_PARSE(app, argc, argv);
  if (ring < 64 || (ring & (ring - 1))) {
    fprintf(stderr, "xfp-bench-veth: --ring must be a power of 2 >= 64\n");
    return 1;
  }

  FILE* out = json_path == "-" ? stderr : stdout;
  spdlog::set_level(spdlog::level::warn);
  if (geteuid() != 0) {
    fprintf(stderr, "xfp-bench-veth: needs root (namespaces, XDP, BPF_PROG_TEST_RUN)\n");
    return 1;
  }
  xfpbench::install_signal_handlers();

  const auto machine = xfpbench::machine_facts();
  const std::string command = xfpbench::reproduce_command(argc, argv);
  const std::string stats_before = stats_enabled_sysctl();
  fprintf(out, "xfp-bench-veth\n  machine: %s\n  command: %s\n", xfpbench::describe(machine).c_str(), command.c_str());
  if (stats_before != "0")
    fprintf(out, "  note: kernel.bpf_stats_enabled is %s before the run (someone else enabled it): throughput "
                 "windows then include the statistics' cost\n",
            stats_before.c_str());

  // Everything below unwinds in reverse order: peers detach before the
  // namespaces go.
  auto topo_r = Topology::create();
  if (!topo_r) {
    fprintf(stderr, "xfp-bench-veth: %s\n", topo_r.error().message.c_str());
    return 1;
  }
  std::unique_ptr<Topology> topo = std::move(*topo_r);
  fprintf(out, "  topology: %s/%s (%s) <-> %s/%s (%s)\n", topo->tx_ns().c_str(), Topology::kTxDev,
          xfpbench::mac_to_string(Topology::kTxMac).c_str(), topo->rx_ns().c_str(), Topology::kRxDev,
          xfpbench::mac_to_string(Topology::kRxMac).c_str());

  std::unique_ptr<xfpb_gen, void (*)(xfpb_gen*)> gen_skel(xfpb_gen__open_and_load(), xfpb_gen__destroy);
  std::unique_ptr<xfpb_drop, void (*)(xfpb_drop*)> drop_skel(xfpb_drop__open_and_load(), xfpb_drop__destroy);
  if (!gen_skel || !drop_skel) {
    fprintf(stderr, "xfp-bench-veth: loading the generator or XDP_DROP program failed: %s\n", strerror(errno));
    return 1;
  }
  // The sending veth needs XDP set up for XDP_TX to reach its peer.
  int pass_rc = 0;
  auto st = xfpbench::run_in_netns(topo->tx_ns_fd(), [&] {
    pass_rc = bpf_xdp_attach(static_cast<int>(topo->tx_ifindex()), bpf_program__fd(gen_skel->progs.xfpb_pass),
                             XDP_FLAGS_DRV_MODE, nullptr);
  });
  if (!st || pass_rc) {
    fprintf(stderr, "xfp-bench-veth: attaching XDP_PASS to the sending veth failed: %s\n",
            st ? strerror(-pass_rc) : st.error().message.c_str());
    return 1;
  }

  Ctx ctx;
  ctx.topo = topo.get();
  ctx.drop = drop_skel.get();
  ctx.rx_cpu = rx_cpu;
  for (size_t i = 0; i < nmacs; ++i) ctx.deny.push_back(kDenyBase + i);
  const uint64_t src = ctx.deny[nmacs * 57 / 100];  // one in the middle of the set
  xfpbench::FrameSpec fs;
  fs.dst = Topology::kRxMac;
  fs.src = src;
  const std::vector<uint8_t> frame = xfpbench::build_frame(fs);

  // Which generator: probed once, before any peer is attached (the probe's
  // one frame reaches the receiving veth outside every window).
  const int gen_fd = bpf_program__fd(gen_skel->progs.xfpb_gen_tx);
  int probe_err = 0;
  const xfpbench::GeneratorChoice gen_choice = xfpbench::choose_generator(
      *xfpbench::generator_from_name(generator_arg), topo->tx_ns_fd(), gen_fd, topo->tx_ifindex(), frame, &probe_err);
  if (probe_err) {
    fprintf(stderr, "xfp-bench-veth: generator: %s\n", gen_choice.reason.c_str());
    return 1;
  }
  const bool afxdp = gen_choice.kind == xfpbench::GeneratorKind::AfXdp;
  const bool threaded = napi_flag > 0 || (napi_flag == 0 && afxdp);
  ctx.threaded = threaded;
  const std::string gen_method =
      afxdp ? fmt::format("AF_XDP transmit, copy mode, ring {}, {} descriptors per kick", ring, batch)
            : fmt::format("kernel generator (XDP_TX, live frames, batch {}, {} frames per call)", batch, chunk);
  fprintf(out, "  generator: %s: %s\n", xfpbench::generator_name(gen_choice.kind), gen_choice.reason.c_str());
  fprintf(out, "  method: %s -> veth -> peer's XDP; "
               "%d rounds x (%.1f s warm-up, %.1f s throughput, %.1f s CPU with BPF stats) per peer; "
               "NAPI threaded=%d%s; generator %s%s\n",
          gen_method.c_str(), rounds, warmup, duration, cpu_duration, threaded ? 1 : 0,
          rx_cpu >= 0 && threaded ? fmt::format(" (receive thread on CPU {})", rx_cpu).c_str() : "",
          rt_prio ? fmt::format("SCHED_FIFO {}", rt_prio).c_str() : "SCHED_OTHER",
          gen_cpu >= 0 ? fmt::format(" on CPU {}", gen_cpu).c_str() : "");

  std::unique_ptr<xfp::Datapath> dp;
  std::vector<PeerResult> peers;
  for (const auto& n : peer_names) {
    PeerResult p;
    p.kind = n == "drop"         ? PeerKind::Drop
             : n == "xdp-filter" ? PeerKind::XdpFilter
             : n == "xfp"        ? PeerKind::Xfp
                                 : PeerKind::XfpGeneral;
    p.name = n == "drop" ? "XDP_DROP" : n == "xdp-filter" ? "xdp-filter" : n == "xfp" ? "xfp" : "xfp-general";
    if (std::any_of(peers.begin(), peers.end(), [&](const PeerResult& q) { return q.kind == p.kind; })) continue;
    if (p.kind == PeerKind::XdpFilter && xfpbench::run_command({"xdp-filter", "help"}, true) == 127)
      p.unavailable = "xdp-filter is not installed (Debian package xdp-tools)";
    if (is_xfp(p.kind) && !dp) {
      auto d = xfp::Datapath::open();
      if (!d) {
        fprintf(stderr, "xfp-bench-veth: loading xfp: %s\n", d.error().message.c_str());
        return 1;
      }
      dp = std::move(*d);
      xfp::FilterSet set;
      for (size_t i = 0; i < nmacs; ++i) {
        xfp::Filter f;
        f.name = fmt::format("deny-{}", i);
        f.layer = xfp::Layer::Inbound;
        f.action = xfp::Action::Block;
        xfp::Condition c;
        c.field = xfp::Field::RemoteMac;
        c.match = xfp::Match::Equal;
        c.value = ctx.deny[i];
        f.conditions.push_back(c);
        auto id = set.add_filter(std::move(f));
        if (!id) {
          fprintf(stderr, "xfp-bench-veth: %s\n", id.error().message.c_str());
          return 1;
        }
      }
      auto compiled = xfp::compile(set);
      // 0x88b5 (IEEE local experimental): the generated frames are IPv4.
      xfp::Filter et;
      et.name = "general-path";
      et.layer = xfp::Layer::Inbound;
      et.action = xfp::Action::Permit;
      et.conditions.push_back(xfp::Condition{xfp::Field::EtherType, xfp::Match::Equal, 0x88b5, 0, ~0ull});
      auto et_id = set.add_filter(std::move(et));
      auto general = et_id ? xfp::compile(set) : xfp::Result<xfp::CompiledSet>(std::move(et_id).error());
      if (!compiled || !general) {
        fprintf(stderr, "xfp-bench-veth: compiling: %s\n",
                (!compiled ? compiled.error() : general.error()).message.c_str());
        return 1;
      }
      ctx.deny_set = std::move(*compiled);
      ctx.general_set = std::move(*general);
      ctx.dp = dp.get();
    }
    peers.push_back(std::move(p));
  }

  fprintf(out, "  frame: %zu bytes IPv4/UDP 198.18.0.1 -> 198.19.0.1, %s -> %s (deny set: %zu MACs %s .. %s)\n\n",
          frame.size(), xfpbench::mac_to_string(src).c_str(), xfpbench::mac_to_string(fs.dst).c_str(), nmacs,
          xfpbench::mac_to_string(ctx.deny.front()).c_str(), xfpbench::mac_to_string(ctx.deny.back()).c_str());

  bool failed = false;
  std::string threaded_seen;
  for (int r = 0; r < rounds && !g_stop.load() && !failed; ++r) {
    for (size_t k = 0; k < peers.size() && !g_stop.load(); ++k) {
      PeerResult& p = peers[(k + static_cast<size_t>(r)) % peers.size()];
      if (!p.unavailable.empty()) continue;
      auto a = attach_peer(ctx, p);
      if (!a) {
        p.unavailable = a.error().message;
        fprintf(out, "round %d: %s: cannot attach: %s\n", r + 1, p.name.c_str(), p.unavailable.c_str());
        continue;
      }
      if (threaded_seen.empty()) threaded_seen = topo->rx_threaded().value_or("?");
      Generator gen;
      gen.start({.kind = gen_choice.kind, .ns_fd = topo->tx_ns_fd(), .ifindex = topo->tx_ifindex(),
                 .ifname = Topology::kTxDev, .frame = frame, .cpu = gen_cpu, .rt_prio = rt_prio, .prog_fd = gen_fd,
                 .chunk = chunk, .batch = batch, .ring = ring});
      sleep_for(warmup);
      auto s = measure(ctx, gen, duration, cpu_duration);
      gen.stop();
      detach_peer(ctx, p);
      if (gen.error()) {
        fprintf(stderr, "xfp-bench-veth: generator: %s\n", strerror(gen.error()));
        failed = true;
        break;
      }
      if (!s) {
        fprintf(stderr, "xfp-bench-veth: %s\n", s.error().message.c_str());
        failed = true;
        break;
      }
      if (g_stop.load()) break;  // an interrupted window is not a sample
      p.rounds.push_back(r);
      p.mpps.push_back(s->mpps);
      p.offered_mpps.push_back(s->offered_mpps);
      p.kernel_ns.push_back(s->kernel_ns);
      p.busy.push_back(s->busy);
      p.steal.push_back(s->steal);
      p.bpf_ns.push_back(s->bpf_ns);
      p.drop_frac.push_back(s->drop_frac);
      p.rx_ns.push_back(s->rx_ns);
      p.rx_busy.push_back(s->rx_busy);
      p.gen_ns.push_back(s->gen_ns);
      fprintf(out, "round %d  %-10s %6.2f Mpps received (generator %6.2f Mpps), dropped by XDP %5.1f%%, "
                   "kernel CPU %6.1f ns/frame, prog %5.1f ns/frame, machine busy %3.0f%%",
              r + 1, p.name.c_str(), s->mpps, s->offered_mpps, 100.0 * s->drop_frac, s->kernel_ns, s->bpf_ns,
              100.0 * s->busy);
      if (s->rx_ns > 0) fprintf(out, ", receive thread %6.1f ns/frame (busy %3.0f%%)", s->rx_ns, 100.0 * s->rx_busy);
      if (s->gen_ns > 0) fprintf(out, ", generator thread %6.1f ns/frame", s->gen_ns);
      fprintf(out, "\n");
      fflush(out);
    }
  }
  if (ctx.xdpfilter_fd >= 0) close(ctx.xdpfilter_fd);
  if (g_stop.load()) fprintf(out, "\ninterrupted: reporting the rounds completed so far\n");

  // ---- report --------------------------------------------------------------
  fprintf(out, "\n%-11s %9s %9s %9s %11s %12s %14s %9s %11s %8s %10s\n", "peer", "Mpps med", "min", "max", "offered",
          "prog ns/fr", "kernel ns/fr", "XDP drop", "rx ns/fr", "rx busy", "gen ns/fr");
  nlohmann::json jpeers = nlohmann::json::array();
  auto med = [](const std::vector<double>& v) { return xfpbench::median_of(v); };
  for (const auto& p : peers) {
    nlohmann::json jp = {{"peer", kind_key(p.kind)}, {"name", p.name}, {"detail", p.detail}};
    if (p.mpps.empty()) {
      fprintf(out, "%-11s not measured: %s\n", p.name.c_str(), p.unavailable.empty() ? "interrupted" : p.unavailable.c_str());
      jp["unavailable"] = p.unavailable.empty() ? "interrupted" : p.unavailable;
      jpeers.push_back(jp);
      continue;
    }
    auto opt = [](double v, const char* f) { return v > 0 ? fmt::format(fmt::runtime(f), v) : std::string("-"); };
    fprintf(out, "%-11s %9.2f %9.2f %9.2f %11.2f %12.1f %14.1f %8.1f%% %11s %8s %10s\n", p.name.c_str(), med(p.mpps),
            xfpbench::min_of(p.mpps), xfpbench::max_of(p.mpps), med(p.offered_mpps), med(p.bpf_ns), med(p.kernel_ns),
            100.0 * med(p.drop_frac), opt(med(p.rx_ns), "{:.1f}").c_str(), opt(100.0 * med(p.rx_busy), "{:.0f}%").c_str(),
            opt(med(p.gen_ns), "{:.1f}").c_str());
    jp.update({{"mpps_median", med(p.mpps)},
               {"mpps_min", xfpbench::min_of(p.mpps)},
               {"mpps_max", xfpbench::max_of(p.mpps)},
               {"mpps_rounds", p.mpps},
               {"offered_mpps_median", med(p.offered_mpps)},
               {"prog_ns_per_frame_median", med(p.bpf_ns)},
               {"prog_ns_per_frame_rounds", p.bpf_ns},
               {"kernel_cpu_ns_per_frame_median", med(p.kernel_ns)},
               {"kernel_cpu_ns_per_frame_rounds", p.kernel_ns},
               {"machine_busy_rounds", p.busy},
               {"steal_rounds", p.steal},
               {"xdp_drop_fraction_median", med(p.drop_frac)},
               {"rx_thread_cpu_ns_per_frame_median", med(p.rx_ns)},
               {"rx_thread_cpu_ns_per_frame_rounds", p.rx_ns},
               {"rx_thread_busy_rounds", p.rx_busy},
               {"generator_thread_cpu_ns_per_frame_median", med(p.gen_ns)}});
    jpeers.push_back(jp);
  }
  fprintf(out, "(Mpps = receiving veth rx_packets per second; offered = generator; prog ns/fr = run_time_ns/run_cnt "
               "with BPF stats on; kernel ns/fr = /proc/stat system+irq+softirq per received frame, both CPUs, "
               "generator included; rx ns/fr = the receive thread's CPU per received frame (threaded NAPI only), rx "
               "busy = its share of one CPU; gen ns/fr = the generator thread's CPU per offered frame)\n");
  for (const auto& p : peers)
    if (!p.detail.empty()) fprintf(out, "  %-10s %s\n", p.name.c_str(), p.detail.c_str());

  auto find = [&](PeerKind k) -> const PeerResult* {
    for (const auto& p : peers)
      if (p.kind == k && !p.mpps.empty()) return &p;
    return nullptr;
  };
  nlohmann::json jtargets = nlohmann::json::object();
  // The ratio within each round, where the two peers ran back to back: its
  // median is the target's figure. The ratio of the peers' medians mixes
  // rounds, so this machine's drift between rounds (10-15 %) moves it: one
  // run gave 0.935 from rounds of 0.834, 0.935 and 0.845.
  auto per_round = [](const PeerResult& a, const PeerResult& b) {
    std::vector<double> r;
    for (size_t i = 0; i < a.rounds.size(); ++i)
      for (size_t j = 0; j < b.rounds.size(); ++j)
        if (a.rounds[i] == b.rounds[j] && b.mpps[j] > 0) r.push_back(a.mpps[i] / b.mpps[j]);
    return r;
  };
  // The same within each round from the receive thread's CPU per frame,
  // peer's over xfp's: the frames/s ratio the two would give where the
  // receiver, not the generator, sets the rate (threaded NAPI only).
  auto per_round_rx = [](const PeerResult& a, const PeerResult& b) {
    std::vector<double> r;
    for (size_t i = 0; i < a.rounds.size(); ++i)
      for (size_t j = 0; j < b.rounds.size(); ++j)
        if (a.rounds[i] == b.rounds[j] && a.rx_ns[i] > 0 && b.rx_ns[j] > 0) r.push_back(b.rx_ns[j] / a.rx_ns[i]);
    return r;
  };
  // With the AF_XDP generator the generator thread needs about as much CPU
  // per frame as the receive thread (each about one CPU of the two): the
  // Mpps ratio moves with the generator's share of the machine, so the
  // target is judged on the receive thread's CPU per frame.
  const bool by_cpu = afxdp;
  auto compare = [&](const PeerResult& a, const PeerResult& b, std::optional<double> target) {
    const std::vector<double> paired = per_round(a, b);
    const double of_medians = med(a.mpps) / med(b.mpps);
    const double ratio = paired.empty() ? of_medians : med(paired);
    const double cpu_ratio = med(b.bpf_ns) > 0 ? med(a.bpf_ns) / med(b.bpf_ns) : 0;
    const std::vector<double> paired_rx = per_round_rx(a, b);
    const double rx_ratio = paired_rx.empty() ? 0 : med(paired_rx);
    std::string list, list_rx;
    for (double v : paired) list += fmt::format(" {:.3f}", v);
    for (double v : paired_rx) list_rx += fmt::format(" {:.3f}", v);
    const std::string what = fmt::format("{}/{}", a.name, b.name);
    const bool judge_mpps = target && !(by_cpu && rx_ratio > 0);
    if (judge_mpps)
      fprintf(out, "target  %s >= %.2f: %.3f  %s", what.c_str(), *target, ratio, ratio >= *target ? "PASS" : "FAIL");
    else
      fprintf(out, "info    %s: %.3f", what.c_str(), ratio);
    fprintf(out, "   (frames/s: median of the rounds'%s; of the medians %.3f; prog CPU per frame %s: %.2fx)%s\n",
            list.c_str(), of_medians, what.c_str(), cpu_ratio,
            by_cpu ? " [AF_XDP generator: it sets the rate as much as the receiver; judged on CPU per frame]" : "");
    if (rx_ratio > 0) {
      if (target && !judge_mpps)
        fprintf(out, "target  %s >= %.2f by receive CPU per frame: %.3f  %s", what.c_str(), *target, rx_ratio,
                rx_ratio >= *target ? "PASS" : "FAIL");
      else
        fprintf(out, "info    %s by receive CPU per frame: %.3f", what.c_str(), rx_ratio);
      fprintf(out, "   (%s's receive ns/frame over %s's, median of the rounds'%s; %.1f / %.1f ns)\n", b.name.c_str(),
              a.name.c_str(), list_rx.c_str(), med(b.rx_ns), med(a.rx_ns));
    }
    nlohmann::json j = {{"value", ratio},
                        {"per_round", paired},
                        {"ratio_of_medians", of_medians},
                        {"prog_cpu_ratio", cpu_ratio},
                        {"generator_bound", by_cpu},
                        {"judged_by", judge_mpps || !target ? "frames_per_second" : "rx_cpu_per_frame"}};
    if (rx_ratio > 0) j.update({{"rx_cpu_ratio", rx_ratio}, {"rx_cpu_per_round", paired_rx}});
    if (target) {
      const double judged = judge_mpps ? ratio : rx_ratio;
      j.update({{"target", *target}, {"pass", judged >= *target}});
    }
    return j;
  };
  fprintf(out, "\n");
  const PeerResult* x = find(PeerKind::Xfp);
  const PeerResult* general = find(PeerKind::XfpGeneral);
  const PeerResult* drop = find(PeerKind::Drop);
  const PeerResult* xdpfilter = find(PeerKind::XdpFilter);
  if (x && drop) jtargets["xfp_vs_xdp_drop"] = compare(*x, *drop, target_drop);
  if (x && xdpfilter) jtargets["xfp_vs_xdp_filter"] = compare(*x, *xdpfilter, target_xdpfilter);
  if (general && drop) jtargets["xfp_general_vs_xdp_drop"] = compare(*general, *drop, std::nullopt);
  if (general && xdpfilter) jtargets["xfp_general_vs_xdp_filter"] = compare(*general, *xdpfilter, std::nullopt);

  const std::string stats_after = stats_enabled_sysctl();
  fprintf(out, "kernel.bpf_stats_enabled: %s before, %s after\n", stats_before.c_str(), stats_after.c_str());
  if (!json_path.empty()) {
    nlohmann::json j = {{"bench", "xfp-bench-veth"},
                        {"machine", to_json(machine)},
                        {"command", command},
                        {"method",
                         {{"duration_s", duration},
                          {"cpu_duration_s", cpu_duration},
                          {"warmup_s", warmup},
                          {"rounds", rounds},
                          {"frame_bytes", frame.size()},
                          {"generator", xfpbench::generator_name(gen_choice.kind)},
                          {"generator_reason", gen_choice.reason},
                          {"generator_ring", afxdp ? ring : 0},
                          {"generator_batch", batch},
                          {"generator_chunk", chunk},
                          {"generator_rt_priority", rt_prio},
                          {"generator_cpu", gen_cpu},
                          {"napi_threaded", threaded_seen},
                          {"rx_cpu", rx_cpu},
                          {"deny_macs", nmacs}}},
                        {"peers", jpeers},
                        {"targets", jtargets},
                        {"interrupted", g_stop.load()}};
    if (!xfpbench::write_json(json_path, j)) fprintf(stderr, "xfp-bench-veth: cannot write %s\n", json_path.c_str());
  }
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
