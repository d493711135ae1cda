// xfp-bench-callout: what it costs to hand frames to user space and back,
// on a veth pair between two namespaces made for the purpose, in one run:
//   xfp-callout  xfp's permit-all callout (punt, classify, receive-inject; case_xfp.cpp)
//   nfqueue      iptables NFQUEUE + libnetfilter_queue accepting every packet (batch verdicts)
//   rxdrop       bare AF_XDP: redirect to an XSK, recycle every buffer (the floor of an AF_XDP design)
//   stack        no user space at all (the floor of the cases that end in the stack)
//
// Throughput: bench/veth's generator (the kernel one, XDP_TX under
// BPF_PROG_TEST_RUN with live frames, or where the kernel refuses those,
// AF_XDP transmit in copy mode) floods the receiving veth with valid
// 64-byte IPv4/UDP frames to its own MAC and address; each case's consumer
// counts what it got. A case that dropped nothing took all the generator
// sent: its rate is then the generator's (a lower bound of its own), which
// the report says, and its CPU per frame is what still compares. CPU per frame two ways: the consumer thread's CPU time
// and the whole machine's non-idle time from /proc/stat, each over the frames
// the consumer got. Latency (--latency): one UDP datagram at a time from the
// sending namespace; the case's path brings it back (see harness.hpp).
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench_common.hpp"
#include "harness.hpp"
#include "generator.hpp"
#include "topology.hpp"
#include "xfpb_gen.skel.h"

namespace {

using xfpbc::Case;
using xfpbc::CaseCounters;
using xfpbc::CaseEnv;
using xfpbc::Mode;
using xfpbench::g_stop;
using xfpbench::Topology;

// ---- generator: bench/veth's (generator.hpp) ----------------------------------------
using xfpbench::Generator;

// ---- /proc/stat ---------------------------------------------------------------------
using xfpbench::CpuTimes;
using xfpbench::read_cpu_times;

// ---- one throughput window ----------------------------------------------------------
struct Snapshot {
  CaseCounters c;
  xfpbench::LinkStats link;
  xfpbench::LinkStats tx;  // the sending veth (AF_XDP generator only)
  std::map<std::string, uint64_t> ethtool;  // the receiving veth's XDP counters
  CpuTimes cpu;
  uint64_t t = 0;
};

Snapshot snapshot(const Case& k, const Topology& topo, bool tx_side) {
  Snapshot s;
  if (tx_side) s.tx = topo.tx_stats().value_or(xfpbench::LinkStats{});
  s.c = k.counters();
  s.link = topo.rx_stats().value_or(xfpbench::LinkStats{});
  s.ethtool = topo.rx_ethtool();
  s.cpu = read_cpu_times();
  s.t = xfpbench::now_ns();
  return s;
}

struct Sample {
  double rx_fps = 0, offered_fps = 0, drops = 0, drop_frac = 0;
  double consumer_ns = 0, machine_ns = 0, softirq_ns = 0, busy = 0, steal = 0;
  double consumer_busy_ns = 0;  // 0: not measured (see CaseCounters)
  double sent_fps = 0, tx_dropped = 0;  // AF_XDP generator: the sending veth's xmit took / refused
  std::map<std::string, uint64_t> drop_detail;
  std::map<std::string, uint64_t> veth_xdp;  // the receiving veth's XDP counters that moved
};

Sample derive(const Snapshot& a, const Snapshot& b) {
  Sample s;
  const double secs = static_cast<double>(b.t - a.t) / 1e9;
  const double got = static_cast<double>(b.c.consumed - a.c.consumed);
  s.rx_fps = got / secs;
  // What reached the receiving veth: every frame its XDP program ran on (the
  // veth's ethtool counter rx_xdp_packets, the same for every case). Not
  // rx_packets + rx_dropped: a frame that XDP redirected and the socket could
  // not take is in both.
  auto delta = [&](const char* k) {
    auto i = b.ethtool.find(k), j = a.ethtool.find(k);
    return i == b.ethtool.end() ? 0 : i->second - (j == a.ethtool.end() ? 0 : j->second);
  };
  uint64_t offered = delta("rx_xdp_packets");
  if (!offered) offered = b.link.rx_packets - a.link.rx_packets;
  s.offered_fps = static_cast<double>(offered) / secs;
  s.drops = static_cast<double>(b.c.dropped - a.c.dropped);
  s.drop_frac = s.offered_fps > 0 ? s.drops / (s.offered_fps * secs) : 0;
  for (const auto& [k, v] : b.c.drop_detail) s.drop_detail[k] = v - (a.c.drop_detail.count(k) ? a.c.drop_detail.at(k) : 0);
  for (const auto& [k, v] : b.ethtool)
    if (k.find("xdp") != std::string::npos && v != (a.ethtool.count(k) ? a.ethtool.at(k) : 0))
      s.veth_xdp["veth_" + k] = v - (a.ethtool.count(k) ? a.ethtool.at(k) : 0);
  const double tick_ns = 1e9 / static_cast<double>(sysconf(_SC_CLK_TCK));
  s.sent_fps = static_cast<double>((b.tx.tx_packets + b.tx.tx_dropped) - (a.tx.tx_packets + a.tx.tx_dropped)) / secs;
  s.tx_dropped = static_cast<double>(b.tx.tx_dropped - a.tx.tx_dropped);
  if (got > 0) {
    s.consumer_ns = b.c.has_consumer ? static_cast<double>(b.c.consumer_cpu_ns - a.c.consumer_cpu_ns) / got : 0;
    s.consumer_busy_ns = static_cast<double>(b.c.consumer_busy_ns - a.c.consumer_busy_ns) / got;
    s.machine_ns = static_cast<double>(b.cpu.busy() - a.cpu.busy()) * tick_ns / got;
    s.softirq_ns = static_cast<double>(b.cpu.softirq - a.cpu.softirq) * tick_ns / got;
  }
  const double dt = static_cast<double>(b.cpu.total() - a.cpu.total());
  s.busy = dt > 0 ? static_cast<double>(b.cpu.busy() - a.cpu.busy()) / dt : 0;
  s.steal = dt > 0 ? static_cast<double>(b.cpu.steal - a.cpu.steal) / dt : 0;
  return s;
}

// ---- latency -----------------------------------------------------------------------------
// The UDP echo of the receiving namespace (port 7): what answers a probe that
// a case let into the stack. Blocking recv (100 ms timeout to see the stop flag).
xfp::Status echo_loop(const std::atomic<bool>& stop) {
  xfpbc::Fd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return xfp::errno_error("echo socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(xfpbc::kEchoPort);
  a.sin_addr.s_addr = htonl(xfpbc::kRxIp);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return xfp::errno_error("binding the echo socket");
  timeval tv{0, 100000};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[2048];
  while (!stop.load()) {
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
    if (n < 0) continue;
    sendto(fd.get(), buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), fl);
  }
  return xfp::Ok{};
}

struct LatencyResult {
  std::vector<double> rtt_us;
  uint64_t lost = 0;
  std::string error;
};

double pct(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

// Runs in the sending namespace: one datagram (18 bytes of payload, a 60-byte
// frame) to 198.19.0.1:7, wait for the answer carrying the same sequence
// number, next. Replies to a probe given up as lost are skipped.
LatencyResult probe(int count, int warmup, int timeout_ms, bool spin, int cpu) {
  LatencyResult r;
  xfpbc::pin_to_cpu(cpu);
  xfpbc::Fd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in me{}, peer{};
  me.sin_family = peer.sin_family = AF_INET;
  me.sin_addr.s_addr = htonl(xfpbc::kTxIp);
  peer.sin_addr.s_addr = htonl(xfpbc::kRxIp);
  peer.sin_port = htons(xfpbc::kEchoPort);
  if (fd.get() < 0 || bind(fd.get(), reinterpret_cast<sockaddr*>(&me), sizeof me) != 0 ||
      connect(fd.get(), reinterpret_cast<sockaddr*>(&peer), sizeof peer) != 0) {
    r.error = fmt::format("probe socket: {}", strerror(errno));
    return r;
  }
  char out[18] = {}, in[2048];
  int lost_in_a_row = 0;
  for (int i = 0; i < warmup + count && !g_stop.load(); ++i) {
    const uint64_t seq = static_cast<uint64_t>(i) + 1;
    std::memcpy(out, &seq, sizeof seq);
    const uint64_t t0 = xfpbench::now_ns();
    if (send(fd.get(), out, sizeof out, 0) != static_cast<ssize_t>(sizeof out)) {
      r.error = fmt::format("probe send: {}", strerror(errno));
      return r;
    }
    const uint64_t deadline = t0 + static_cast<uint64_t>(timeout_ms) * 1000000ull;
    bool got = false;
    while (!got && !g_stop.load()) {
      const uint64_t now = xfpbench::now_ns();
      if (now >= deadline) break;
      if (!spin) {
        pollfd p{fd.get(), POLLIN, 0};
        if (poll(&p, 1, static_cast<int>((deadline - now) / 1000000 + 1)) <= 0) continue;
      }
      ssize_t n = recv(fd.get(), in, sizeof in, MSG_DONTWAIT);
      if (n < static_cast<ssize_t>(sizeof seq)) continue;
      uint64_t back;
      std::memcpy(&back, in, sizeof back);
      got = back == seq;
    }
    const uint64_t t1 = xfpbench::now_ns();
    if (!got && ++lost_in_a_row >= 20) {
      r.error = fmt::format("{} probes in a row were not answered within {} ms", lost_in_a_row, timeout_ms);
      break;
    }
    if (got) lost_in_a_row = 0;
    if (i < warmup) continue;
    if (got)
      r.rtt_us.push_back(static_cast<double>(t1 - t0) / 1e3);
    else
      ++r.lost;
  }
  std::sort(r.rtt_us.begin(), r.rtt_us.end());
  return r;
}

// ---- results ----------------------------------------------------------------------------------
struct CaseResult {
  std::string key;
  std::unique_ptr<Case> impl;
  std::string detail, unavailable;
  std::string impl_carrier;  // xfp-callout: the punt-header carrier it ran with
  std::vector<Sample> samples;
  LatencyResult latency;
  bool latency_done = false;
  std::string latency_unavailable;
};

double med(const std::vector<Sample>& v, double Sample::*f) {
  std::vector<double> x;
  for (const auto& s : v) x.push_back(s.*f);
  return xfpbench::median_of(x);
}

// A case took all the generator sent when in no round 1 % of the frames
// that reached the receiving veth were lost or not consumed, nor the veth's xmit refused 1 % of what
// the AF_XDP generator sent: its rate is then the generator's (with the
// receive softirq that shares its CPU), a lower bound of its own.
bool took_all(const CaseResult& c) {
  if (c.samples.empty()) return false;
  for (const auto& s : c.samples)
    if (s.drop_frac >= 0.01 || s.rx_fps < 0.99 * s.offered_fps || (s.sent_fps > 0 && s.tx_dropped >= 0.01 * s.sent_fps))
      return false;
  return true;
}

// A consumer's CPU per frame: where it took all and spins, the time of its
// batches that held frames (its CPU time is the whole window there).
double consumer_cost(const CaseResult& c) {
  const double busy = med(c.samples, &Sample::consumer_busy_ns);
  return took_all(c) && busy > 0 ? busy : med(c.samples, &Sample::consumer_ns);
}

std::unique_ptr<Case> make_case(const std::string& k) {
  if (k == "xfp-callout") return xfpbc::make_xfp_callout_case();
  if (k == "nfqueue") return xfpbc::make_nfqueue_case();
  if (k == "rxdrop") return xfpbc::make_rxdrop_case();
  return xfpbc::make_stack_case();
}

int run(int argc, char** argv) {
  double seconds = 3.0, warmup = 0.5;
  int rounds = 1, chunk = 1 << 24, gen_batch = 64, gen_cpu = -1, probe_cpu = -1;
  bool latency = false, no_throughput = false, probe_spin = false, verbose = false;
  int lat_count = 10000, lat_warmup = 200, lat_timeout_ms = 200;
  std::vector<std::string> names = {"xfp-callout", "nfqueue", "rxdrop", "stack"};
  std::string json_path, generator_arg = "auto";
  uint32_t gen_ring = 2048;
  CaseEnv env;

  CLI::App app{
      "xfp-bench-callout: frames per second, CPU per frame and round-trip latency of user-space frame\n"
      "consumers on a veth pair between two namespaces made for the purpose (xfpb-PID-tx, xfpb-PID-rx;\n"
      "removed at exit, also on Ctrl-C): xfp's permit-all callout (punt, classify, receive-inject), NFQUEUE with\n"
      "libnetfilter_queue accepting everything in verdict batches, bare AF_XDP rxdrop, and the plain\n"
      "stack. Traffic: bench/veth's generator (the kernel's XDP_TX live frames, or AF_XDP transmit in copy\n"
      "mode where the kernel refuses live frames: --generator), 64-byte IPv4/UDP frames 198.18.0.1 ->\n"
      "198.19.0.1 to the receiving veth's MAC. A case that drops nothing took all the generator sent (marked\n"
      "'*'): its rate is a lower bound, and the ratios against it are also given in consumer CPU per frame.\n"
      "Prints the punt-header carrier xfp-callout ran with. See bench/README.md. Needs root."};
  app.add_option("-c,--cases", names, "cases: xfp-callout, nfqueue, rxdrop, stack")
      ->delimiter(',')
      ->check(CLI::IsMember({"xfp-callout", "nfqueue", "rxdrop", "stack"}))
      ->capture_default_str();
  app.add_option("-s,--seconds", seconds, "seconds of each throughput window")->check(CLI::Range(0.1, 600.0))->capture_default_str();
  app.add_option("--warmup", warmup, "seconds of traffic before each window")->capture_default_str();
  app.add_option("-r,--rounds", rounds, "rounds (each measures every case once, order rotating); medians reported")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--chunk", chunk, "frames per generator call (ended early by a signal when a window ends)")->check(CLI::Range(64, 1 << 26))->capture_default_str();
  app.add_option("--gen-batch", gen_batch, "generator batch size (BPF_F_TEST_XDP_LIVE_FRAMES; AF_XDP: descriptors per kick)")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--generator", generator_arg, xfpbench::kGeneratorHelp)
      ->check(CLI::IsMember({"auto", "kernel", "afxdp"}))
      ->capture_default_str();
  app.add_option("--gen-ring", gen_ring, "AF_XDP generator: TX and completion ring size (power of 2, >= 64)")
      ->capture_default_str();
  app.add_option("--punt-carrier", env.punt_carrier,
                 "xfp-callout: where the punt header travels: metadata (the XDP metadata area), in-band (in front of "
                 "the frame), auto (the datapath's choice: metadata where the kernel lets XDP programs call "
                 "bpf_xdp_adjust_meta)")
      ->check(CLI::IsMember({"auto", "metadata", "in-band"}))
      ->capture_default_str();
  app.add_option("--gen-cpu", gen_cpu, "pin the generator thread (-1: no)")->capture_default_str();
  app.add_option("--consumer-cpu", env.consumer_cpu, "pin consumer threads (-1: no)")->capture_default_str();
  app.add_option("--batch", env.batch, "consumer batch: NFQUEUE verdict batch, AF_XDP ring batch")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--ring", env.ring_size, "AF_XDP ring sizes (power of 2)")->capture_default_str();
  app.add_option("--queue-num", env.queue_num, "NFQUEUE queue number")->check(CLI::Range(0, 65535))->capture_default_str();
  app.add_option("--queue-maxlen", env.queue_maxlen, "NFQUEUE maximum queue length")->capture_default_str();
  app.add_flag("--poll", env.poll, "AF_XDP consumers block in poll() instead of spinning");
  app.add_flag("--spin", env.spin, "the NFQUEUE consumer spins on a non-blocking recv instead of blocking");
  app.add_flag("--latency", latency, "also measure round-trip latency, one frame at a time");
  app.add_flag("--no-throughput", no_throughput, "skip the throughput windows (with --latency)");
  app.add_option("--latency-count", lat_count, "probes per case")->check(CLI::Range(10, 10000000))->capture_default_str();
  app.add_option("--latency-timeout-ms", lat_timeout_ms, "a probe not answered within this is lost")->capture_default_str();
  app.add_flag("--probe-spin", probe_spin, "the prober spins on recv instead of blocking in poll()");
  app.add_option("--probe-cpu", probe_cpu, "pin the prober (-1: no)")->capture_default_str();
  app.add_flag("-v,--verbose", verbose, "print each window's drop counters and the receiving veth's XDP counters");
  app.add_option("--json", json_path, "also write the results as JSON to this file ('-' = stdout, the table goes to stderr)");
  CLI11_PARSE(app, argc, argv);
  if (env.ring_size < 64 || (env.ring_size & (env.ring_size - 1)) || gen_ring < 64 || (gen_ring & (gen_ring - 1))) {
    fprintf(stderr, "xfp-bench-callout: --ring and --gen-ring must be powers of 2 >= 64\n");
    return 1;
  }

  FILE* out = json_path == "-" ? stderr : stdout;
  if (geteuid() != 0) {
    fprintf(stderr, "xfp-bench-callout: needs root (namespaces, XDP, AF_XDP, iptables)\n");
    return 1;
  }
  xfpbench::install_signal_handlers();
  const auto machine = xfpbench::machine_facts();
  const std::string command = xfpbench::reproduce_command(argc, argv);
  fprintf(out, "xfp-bench-callout\n  machine: %s\n  command: %s\n", xfpbench::describe(machine).c_str(), command.c_str());

  std::vector<CaseResult> cases;
  for (const auto& n : names) {
    if (std::any_of(cases.begin(), cases.end(), [&](const CaseResult& c) { return c.key == n; })) continue;
    CaseResult c;
    c.key = n;
    cases.push_back(std::move(c));
  }

  // Declared before everything that lives in it: destroyed last, so every
  // case has detached and closed its sockets before the namespaces go.
  auto topo_r = Topology::create();
  if (!topo_r) {
    fprintf(stderr, "xfp-bench-callout: %s\n", topo_r.error().message.c_str());
    return 1;
  }
  std::unique_ptr<Topology> topo = std::move(*topo_r);
  // Addresses and permanent neighbours: the frames are valid IPv4 to the
  // receiving namespace's own MAC and address (NFQUEUE sees them in
  // PREROUTING; the stack delivers them locally), and no ARP frame ever
  // crosses the pair to be counted or reflected.
  const std::string tx_ip = "198.18.0.1", rx_ip = "198.19.0.1";
  for (const auto& argv_ : std::vector<std::vector<std::string>>{
           {"ip", "-n", topo->tx_ns(), "addr", "add", tx_ip + "/15", "dev", Topology::kTxDev},
           {"ip", "-n", topo->rx_ns(), "addr", "add", rx_ip + "/15", "dev", Topology::kRxDev},
           {"ip", "-n", topo->tx_ns(), "neigh", "replace", rx_ip, "lladdr", xfpbench::mac_to_string(Topology::kRxMac),
            "dev", Topology::kTxDev, "nud", "permanent"},
           {"ip", "-n", topo->rx_ns(), "neigh", "replace", tx_ip, "lladdr", xfpbench::mac_to_string(Topology::kTxMac),
            "dev", Topology::kRxDev, "nud", "permanent"}}) {
    if (xfpbench::run_command(argv_, false) != 0) {
      fprintf(stderr, "xfp-bench-callout: network setup failed\n");
      return 1;
    }
  }
  // The probes' UDP checksum must be complete on the wire: with the veth's
  // TX checksum offload on, a socket's datagram leaves with only the
  // pseudo-header sum (CHECKSUM_PARTIAL), and a frame that the AF_XDP
  // reflector sends back as plain bytes would fail the receiver's check.
  if (xfpbench::run_command({"ip", "netns", "exec", topo->tx_ns(), "ethtool", "-K", Topology::kTxDev, "tx", "off"},
                            true) != 0)
    fprintf(out, "  warning: could not turn off TX checksum offload on %s (ethtool): the rxdrop reflector's answers "
                 "may be dropped\n", Topology::kTxDev);
  xfpbc::Fd rx_ns_fd(open(("/run/netns/" + topo->rx_ns()).c_str(), O_RDONLY | O_CLOEXEC));
  if (rx_ns_fd.get() < 0) {
    fprintf(stderr, "xfp-bench-callout: opening %s: %s\n", topo->rx_ns().c_str(), strerror(errno));
    return 1;
  }
  env.rx_ns_fd = rx_ns_fd.get();
  env.rx_ns = topo->rx_ns();
  env.rx_dev = Topology::kRxDev;
  env.rx_ifindex = topo->rx_ifindex();
  fprintf(out, "  topology: %s/%s %s %s <-> %s/%s %s %s\n", topo->tx_ns().c_str(), Topology::kTxDev,
          xfpbench::mac_to_string(Topology::kTxMac).c_str(), tx_ip.c_str(), topo->rx_ns().c_str(), Topology::kRxDev,
          xfpbench::mac_to_string(Topology::kRxMac).c_str(), rx_ip.c_str());

  std::unique_ptr<xfpb_gen, void (*)(xfpb_gen*)> gen_skel(xfpb_gen__open_and_load(), xfpb_gen__destroy);
  if (!gen_skel) {
    fprintf(stderr, "xfp-bench-callout: loading the generator: %s\n", strerror(errno));
    return 1;
  }
  xfpbench::FrameSpec fs;
  fs.dst = Topology::kRxMac;
  fs.src = Topology::kTxMac;
  const std::vector<uint8_t> frame = xfpbench::build_frame(fs);  // IPv4/UDP 198.18.0.1:9 -> 198.19.0.1:9
  bool failed = false;
  xfpbench::GeneratorChoice gen_choice;

  if (!no_throughput) {
    // The sending veth needs XDP set up for XDP_TX to leave through it
    // (MACHINE_NOTES gotcha 4); removed after the throughput windows so that
    // the latency probes, which come from a socket, take the plain path.
    int pass_rc = 0;
    auto st = xfpbench::run_in_netns(topo->tx_ns_fd(), [&] {
      pass_rc = bpf_xdp_attach(static_cast<int>(topo->tx_ifindex()), bpf_program__fd(gen_skel->progs.xfpb_pass),
                               XDP_FLAGS_DRV_MODE, nullptr);
    });
    if (!st || pass_rc) {
      fprintf(stderr, "xfp-bench-callout: XDP_PASS on the sending veth: %s\n",
              st ? strerror(-pass_rc) : st.error().message.c_str());
      return 1;
    }
    int probe_err = 0;
    gen_choice = xfpbench::choose_generator(*xfpbench::generator_from_name(generator_arg), topo->tx_ns_fd(),
                                            bpf_program__fd(gen_skel->progs.xfpb_gen_tx), topo->tx_ifindex(), frame,
                                            &probe_err);
    if (probe_err) {
      fprintf(stderr, "xfp-bench-callout: generator: %s\n", gen_choice.reason.c_str());
      return 1;
    }
    fprintf(out, "  generator: %s: %s\n", xfpbench::generator_name(gen_choice.kind), gen_choice.reason.c_str());
    fprintf(out, "  throughput: %zu-byte IPv4/UDP frames to UDP port %u (no socket); generator %s, unlimited, "
                 "%s %d%s; %d round(s) x (%.1f s warm-up + %.1f s) per case\n\n",
            frame.size(), xfpbc::kSinkPort,
            gen_choice.kind == xfpbench::GeneratorKind::AfXdp ? "AF_XDP transmit (copy mode)" : "kernel live frames",
            gen_choice.kind == xfpbench::GeneratorKind::AfXdp ? "descriptors per kick" : "batch", gen_batch,
            gen_choice.kind == xfpbench::GeneratorKind::AfXdp ? fmt::format(", ring {}", gen_ring).c_str() : "",
            rounds, warmup, seconds);
    env.mode = Mode::Throughput;
    for (int r = 0; r < rounds && !g_stop.load() && !failed; ++r) {
      for (size_t k = 0; k < cases.size() && !g_stop.load(); ++k) {
        CaseResult& c = cases[(k + static_cast<size_t>(r)) % cases.size()];
        if (!c.unavailable.empty()) continue;
        c.impl = make_case(c.key);
        auto s0 = c.impl->start(env);
        if (!s0) {
          c.unavailable = s0.error().message;
          c.impl.reset();
          fprintf(out, "round %d  %-11s not measured: %s\n", r + 1, c.key.c_str(), c.unavailable.c_str());
          continue;
        }
        c.detail = c.impl->detail();
        c.impl_carrier = c.impl->punt_carrier();
        Generator gen;
        const bool afxdp = gen_choice.kind == xfpbench::GeneratorKind::AfXdp;
        gen.start({.kind = gen_choice.kind, .ns_fd = topo->tx_ns_fd(), .ifindex = topo->tx_ifindex(),
                   .ifname = Topology::kTxDev, .frame = frame, .cpu = gen_cpu,
                   .prog_fd = bpf_program__fd(gen_skel->progs.xfpb_gen_tx), .chunk = chunk, .batch = gen_batch,
                   .ring = gen_ring});
        xfpbc::sleep_for(warmup);
        const Snapshot a = snapshot(*c.impl, *topo, afxdp);
        xfpbc::sleep_for(seconds);
        const Snapshot b = snapshot(*c.impl, *topo, afxdp);
        gen.stop();
        const std::string why = c.impl->failure();
        c.impl->stop();
        c.impl.reset();
        if (gen.error()) {
          fprintf(stderr, "xfp-bench-callout: generator: %s\n", strerror(gen.error()));
          failed = true;
          break;
        }
        if (!why.empty()) {
          c.unavailable = "consumer failed: " + why;
          fprintf(out, "round %d  %-11s %s\n", r + 1, c.key.c_str(), c.unavailable.c_str());
          continue;
        }
        if (g_stop.load()) break;
        Sample s = derive(a, b);
        c.samples.push_back(s);
        fprintf(out, "round %d  %-11s %8.3f Mpps consumed of %8.3f offered, drops %5.1f%%, consumer %7s ns/frame, "
                     "machine %7.1f ns/frame (softirq %6.1f), busy %3.0f%%, steal %2.0f%%",
                r + 1, c.key.c_str(), s.rx_fps / 1e6, s.offered_fps / 1e6, 100 * s.drop_frac,
                c.key == "stack" ? "-" : fmt::format("{:.1f}", s.consumer_ns).c_str(), s.machine_ns, s.softirq_ns,
                100 * s.busy, 100 * s.steal);
        if (s.consumer_busy_ns > 0) fprintf(out, ", consumer busy %.1f ns/frame", s.consumer_busy_ns);
        if (afxdp)
          fprintf(out, ", sent %.3f Mpps (veth refused %.0f)", s.sent_fps / 1e6, s.tx_dropped);
        fprintf(out, "\n");
        if (verbose) {
          std::string d;
          for (const auto& m : {s.drop_detail, s.veth_xdp})
            for (const auto& [k, v] : m) d += fmt::format(" {}={}", k, v);
          fprintf(out, "         %-11s window counters:%s\n", "", d.c_str());
        }
        fflush(out);
      }
    }
    (void)xfpbench::run_in_netns(topo->tx_ns_fd(), [&] {
      bpf_xdp_detach(static_cast<int>(topo->tx_ifindex()), XDP_FLAGS_DRV_MODE, nullptr);
    });
  }

  if (latency && !failed && !g_stop.load()) {
    fprintf(out, "\n  latency: %d probes per case (after %d warm-up), one 60-byte UDP datagram at a time %s:%u -> %s:%u; "
                 "prober %s; stack cases answered by a UDP echo (blocking recv) in %s\n",
            lat_count, lat_warmup, tx_ip.c_str(), 0u, rx_ip.c_str(), xfpbc::kEchoPort,
            probe_spin ? "spinning" : "blocking in poll()", topo->rx_ns().c_str());
    env.mode = Mode::Latency;
    xfpbc::Worker echo;
    echo.start(rx_ns_fd.get(), -1, echo_loop);
    for (auto& c : cases) {
      if (g_stop.load()) break;
      // A case that could not start for throughput is tried again here: the
      // reason may be specific to that mode.
      c.impl = make_case(c.key);
      auto s0 = c.impl->start(env);
      if (!s0) {
        c.latency_unavailable = s0.error().message;
        c.impl.reset();
        fprintf(out, "latency  %-11s not measured: %s\n", c.key.c_str(), c.latency_unavailable.c_str());
        continue;
      }
      if (c.detail.empty()) c.detail = c.impl->detail();
      if (c.impl_carrier.empty()) c.impl_carrier = c.impl->punt_carrier();
      LatencyResult lr;
      auto st = xfpbench::run_in_netns(topo->tx_ns_fd(), [&] {
        lr = probe(lat_count, lat_warmup, lat_timeout_ms, probe_spin, probe_cpu);
      });
      const std::string why = c.impl->failure();
      c.impl->stop();
      c.impl.reset();
      if (!st) lr.error = st.error().message;
      if (!why.empty()) lr.error = "consumer failed: " + why;
      if (!echo.failure().empty()) lr.error = "echo: " + echo.failure();
      c.latency = lr;
      c.latency_done = lr.error.empty() && !lr.rtt_us.empty();
      if (!c.latency_done) {
        c.latency_unavailable = lr.error.empty() ? "no probe came back" : lr.error;
        fprintf(out, "latency  %-11s not measured: %s\n", c.key.c_str(), c.latency_unavailable.c_str());
        continue;
      }
      fprintf(out, "latency  %-11s p50 %7.1f us  p99 %7.1f us  (min %.1f, max %.1f, lost %llu of %d)\n", c.key.c_str(),
              pct(lr.rtt_us, 50), pct(lr.rtt_us, 99), lr.rtt_us.front(), lr.rtt_us.back(),
              static_cast<unsigned long long>(lr.lost), lat_count);
      fflush(out);
    }
    echo.stop();
  }
  if (g_stop.load()) fprintf(out, "\ninterrupted: reporting what was measured\n");

  // ---- report ----------------------------------------------------------------------------------
  nlohmann::json jcases = nlohmann::json::array();
  if (!no_throughput) {
    fprintf(out, "\n%-12s %10s %10s %8s %13s %13s %12s %9s %13s\n", "case", "Mpps", "offered", "drops", "consumer ns/f",
            "machine ns/f", "softirq ns/f", "busy", "c. busy ns/f");
  }
  for (const auto& c : cases) {
    nlohmann::json j = {{"case", c.key}, {"detail", c.detail}};
    if (!no_throughput) {
      if (c.samples.empty()) {
        const std::string why = c.unavailable.empty() ? "interrupted" : c.unavailable;
        fprintf(out, "%-12s not measured: %s\n", c.key.c_str(), why.c_str());
        j["unavailable"] = why;
      } else {
        const auto& v = c.samples;
        const bool consumer = c.key != "stack";
        const double cbusy = med(v, &Sample::consumer_busy_ns);
        fprintf(out, "%-12s %9.3f%s %10.3f %7.1f%% %13s %13.1f %12.1f %8.0f%% %13s\n", c.key.c_str(),
                med(v, &Sample::rx_fps) / 1e6, took_all(c) ? "*" : " ", med(v, &Sample::offered_fps) / 1e6,
                100 * med(v, &Sample::drop_frac),
                consumer ? fmt::format("{:.1f}", med(v, &Sample::consumer_ns)).c_str() : "-", med(v, &Sample::machine_ns),
                med(v, &Sample::softirq_ns), 100 * med(v, &Sample::busy),
                cbusy > 0 ? fmt::format("{:.1f}", cbusy).c_str() : "-");
        nlohmann::json rounds_j = nlohmann::json::array();
        for (const auto& s : v)
          rounds_j.push_back({{"fps", s.rx_fps}, {"offered_fps", s.offered_fps}, {"drops", s.drops},
                              {"drop_detail", s.drop_detail}, {"veth_xdp", s.veth_xdp}, {"consumer_cpu_ns_per_frame", s.consumer_ns},
                              {"machine_cpu_ns_per_frame", s.machine_ns}, {"softirq_ns_per_frame", s.softirq_ns},
                              {"machine_busy", s.busy}, {"steal", s.steal},
                              {"consumer_busy_ns_per_frame", s.consumer_busy_ns}, {"sent_fps", s.sent_fps},
                              {"tx_dropped", s.tx_dropped}});
        j["throughput"] = {{"fps_median", med(v, &Sample::rx_fps)},
                           {"offered_fps_median", med(v, &Sample::offered_fps)},
                           {"drop_fraction_median", med(v, &Sample::drop_frac)},
                           {"consumer_cpu_ns_per_frame_median", consumer ? med(v, &Sample::consumer_ns) : 0.0},
                           {"machine_cpu_ns_per_frame_median", med(v, &Sample::machine_ns)},
                           {"consumer_busy_ns_per_frame_median", cbusy},
                           {"took_all_offered", took_all(c)},
                           {"rounds", rounds_j}};
      }
    }
    if (c.latency_done) {
      const auto& l = c.latency.rtt_us;
      j["latency"] = {{"p50_us", pct(l, 50)}, {"p90_us", pct(l, 90)}, {"p99_us", pct(l, 99)},
                      {"min_us", l.front()}, {"max_us", l.back()}, {"mean_us", xfpbench::mean_of(l)},
                      {"samples", l.size()}, {"lost", c.latency.lost}};
    } else if (latency) {
      j["latency_unavailable"] = c.latency_unavailable.empty() ? "not run" : c.latency_unavailable;
    }
    if (c.impl_carrier.size()) j["punt_carrier"] = c.impl_carrier;
    jcases.push_back(j);
  }
  if (!no_throughput)
    fprintf(out, "(Mpps = frames the consumer got per second; offered = frames that reached the receiving veth; drops = "
                 "lost before the consumer (queue/ring full) over offered; consumer ns/f = the consumer thread's CPU "
                 "time per frame; machine ns/f = /proc/stat user+nice+system+irq+softirq of all CPUs per frame, "
                 "generator included; c. busy ns/f = a spinning consumer's time in batches that held frames; * = took "
                 "all the generator sent (no drops): the rate is the generator's, a lower bound of the case's)\n");
  for (const auto& c : cases)
    if (!c.detail.empty()) fprintf(out, "  %-11s %s\n", c.key.c_str(), c.detail.c_str());
  for (const auto& c : cases)
    if (!c.impl_carrier.empty()) fprintf(out, "  %-11s punt-header carrier: %s\n", c.key.c_str(), c.impl_carrier.c_str());

  // Ratios against the xfp callout, once it is measured.
  auto find = [&](const std::string& k) -> const CaseResult* {
    for (const auto& c : cases)
      if (c.key == k) return &c;
    return nullptr;
  };
  nlohmann::json jratios = nlohmann::json::object();
  const CaseResult* x = find("xfp-callout");
  for (const char* peer : {"nfqueue", "rxdrop"}) {
    const CaseResult* p = find(peer);
    if (!x || !p) continue;
    const std::string key = fmt::format("xfp/{}", peer);
    if (!x->samples.empty() && !p->samples.empty()) {
      const double fr = med(x->samples, &Sample::rx_fps) / med(p->samples, &Sample::rx_fps);
      const double cr = med(x->samples, &Sample::machine_ns) / med(p->samples, &Sample::machine_ns);
      const double pc = consumer_cost(*p), xc = consumer_cost(*x);
      const double ccr = pc > 0 ? xc / pc : 0;
      fprintf(out, "ratio  %-14s frames/s %.2fx%s   machine CPU per frame %.2fx   consumer CPU per frame %.2fx (%.1f / %.1f ns)\n",
              key.c_str(), fr, took_all(*p) ? fmt::format(" (at most: {} took all the generator sent)", peer).c_str() : "",
              cr, ccr, xc, pc);
      jratios[key] = {{"fps", fr}, {"machine_cpu_per_frame", cr}, {"consumer_cpu_per_frame", ccr},
                      {"peer_took_all_offered", took_all(*p)}, {"fps_is_upper_bound", took_all(*p)}};
    }
    if (x->latency_done && p->latency_done) {
      const double r50 = pct(x->latency.rtt_us, 50) / pct(p->latency.rtt_us, 50);
      const double r99 = pct(x->latency.rtt_us, 99) / pct(p->latency.rtt_us, 99);
      fprintf(out, "ratio  %-14s latency p50 %.2fx  p99 %.2fx\n", key.c_str(), r50, r99);
      jratios[key]["latency_p50"] = r50;
      jratios[key]["latency_p99"] = r99;
    }
  }

  if (!json_path.empty()) {
    nlohmann::json j = {{"bench", "xfp-bench-callout"},
                        {"machine", to_json(machine)},
                        {"command", command},
                        {"method",
                         {{"seconds", seconds}, {"warmup_s", warmup}, {"rounds", rounds}, {"frame_bytes", frame.size()},
                          {"generator", no_throughput ? "none" : xfpbench::generator_name(gen_choice.kind)},
                          {"generator_reason", gen_choice.reason}, {"punt_carrier_asked", env.punt_carrier},
                          {"generator_batch", gen_batch}, {"consumer_batch", env.batch},
                          {"ring", env.ring_size}, {"queue_maxlen", env.queue_maxlen}, {"poll", env.poll},
                          {"nfqueue_spin", env.spin}, {"latency_count", lat_count}, {"probe_spin", probe_spin}}},
                        {"cases", jcases},
                        {"ratios", jratios},
                        {"interrupted", g_stop.load()}};
    if (!xfpbench::write_json(json_path, j)) fprintf(stderr, "xfp-bench-callout: cannot write %s\n", json_path.c_str());
  }
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
