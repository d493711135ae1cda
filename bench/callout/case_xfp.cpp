// Case "xfp-callout": xfp's own callout path with a permit-all callout,
// set up in-process exactly as the daemon does it (and as
// tests/integration/callout_test.cpp does):
//
//   xfp_inbound (XDP, native) on the receiving veth
//     -> filter "ethertype eq ipv4 -> callout-terminating xfp.bench.permit"
//     -> punt over AF_XDP (copy mode) to the queue's PuntWorker
//     -> the worker parses, resumes WFP arbitration, calls the callout
//        (bench/callout/permit_all.c, XFP_CALLOUT_FLAG_BATCH: one classify
//        call per receive batch) -> permit
//     -> receive injection: copied into the xfpinj0 AF_XDP socket, mirred
//        from xfpinj1 into the receiving veth's ingress -> the stack.
//
// In the throughput mode the injected frames die at UDP port 9 (no socket),
// like the nfqueue case's accepted packets and the stack case's frames; in
// the latency mode they reach the harness's UDP echo, which answers, so the
// round trip is punt + classify + injection + stack (echoes_itself() false).
//
// The Datapath and the CalloutRuntime are made on the main thread, which the
// harness keeps inside the receiving namespace: the attach, the AF_XDP
// sockets and the xfpinj0/xfpinj1 pair all land there, and the runtime's
// threads (the per-queue PuntWorker, the Injector's completion thread)
// inherit that namespace from their creator.
//
// Options: env.batch -> the worker's batch; env.ring_size -> every AF_XDP
// ring; env.poll -> the worker sleeps in poll() when its ring is empty (the
// daemon's default), otherwise it spins (the bench's default, as rxdrop).
//
// Counters:
//   consumed = frames the worker(s) took from the ring (WorkerStatus.frames);
//   dropped  = the queue socket's XDP_STATISTICS rx_dropped + rx_ring_full
//              (punted frames the ring could not take) + the worker's
//              deliver_failed (permitted but the injection ring was full) +
//              the kernel's XFP_CNT_PUNT_FAIL (punt refused: no socket, no
//              headroom for the metadata) + XFP_CNT_OVERLOAD_BLOCK (the
//              overload policy dropped the frame); by cause in drop_detail;
//   consumer_cpu_ns = the CPU time of the runtime's own threads. They are
//              not the harness's Worker threads (the runtime starts them
//              itself, as in the daemon), so they are found by difference:
//              the process's threads (/proc/self/task) that exist after the
//              runtime started and did not exist before it; their on-CPU
//              time is the first field of /proc/self/task/TID/schedstat
//              (sum_exec_runtime in ns, the same clock as
//              CLOCK_THREAD_CPUTIME_ID, which Worker::cpu_ns reads for the
//              other cases). The generator and the echo start after start()
//              returns, and the harness's earlier Workers have ended, so
//              none of them is counted.
#include <dirent.h>
#include <sched.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include <fmt/format.h>

#include "harness.hpp"
#include "xfp/callout_runtime.hpp"
#include "xfp/compiler.hpp"
#include "xfp/datapath.hpp"
#include "xfp/filter_set.hpp"
#include "xfp/filter_syntax.hpp"
#include "xfp/policy_snapshot.hpp"

#ifndef XFPBC_PERMIT_PLUGIN
#error "XFPBC_PERMIT_PLUGIN (the path of libxfp_bench_permit.so) comes from bench/callout/CMakeLists.txt"
#endif

namespace xfpbc {
namespace {

constexpr const char* kPermitKey = "xfp.bench.permit";
// The one filter, in the filter language (what `xfp filter add` takes).
constexpr const char* kFilterText =
    "name bench-permit layer inbound ethertype eq ipv4 action callout-terminating callout xfp.bench.permit";

std::set<pid_t> thread_ids() {
  std::set<pid_t> out;
  DIR* d = opendir("/proc/self/task");
  if (!d) return out;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') out.insert(static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10)));
  closedir(d);
  return out;
}

// On-CPU time of one thread of this process in ns; nullopt once it is gone.
std::optional<uint64_t> thread_cpu_ns(pid_t tid) {
  std::ifstream in(fmt::format("/proc/self/task/{}/schedstat", tid));
  uint64_t ns = 0;
  if (!(in >> ns)) return std::nullopt;
  return ns;
}

class XfpCalloutCase final : public Case {
 public:
  ~XfpCalloutCase() override { stop(); }
  std::string name() const override { return "xfp-callout"; }

  xfp::Status start(const CaseEnv& env) override {
    stop();
    const std::set<pid_t> before = thread_ids();

    xfp::DatapathOptions dopts;
    auto carrier = xfp::punt_carrier_from_name(env.punt_carrier);
    if (!carrier) return xfp::make_error(EINVAL, "unknown punt-header carrier '" + env.punt_carrier + "'");
    dopts.carrier = *carrier;
    auto dp = xfp::Datapath::open(dopts);
    if (!dp) return std::move(dp).error().context("opening the xfp datapath");
    dp_ = std::move(*dp);

    xfp::CalloutRuntimeOptions ro;
    ro.worker.batch = env.batch;
    ro.worker.busy_poll = !env.poll;
    ro.socket.ring_size = env.ring_size;
    // Receive chunks: a full fill ring plus a full rx ring; as many again for
    // transmitting (the runtime halves `frames` for the injection socket).
    ro.socket.rx_frames = 2 * env.ring_size;
    ro.socket.frames = 4 * env.ring_size;
    runtime_ = std::make_unique<xfp::CalloutRuntime>(*dp_, ro);

    xfp::AttachOptions ao;
    ao.mode = xfp::XdpMode::Native;
    ao.inbound = true;
    ao.outbound = false;
    XFP_TRY(dp_->attach(env.rx_dev, ao));
    attached_ = env.rx_dev;
    xfp::Attachment att;
    for (const xfp::Attachment& a : dp_->attachments())
      if (a.ifname == env.rx_dev) att = a;
    if (att.ifname.empty()) return xfp::make_error(ENOENT, env.rx_dev + " attached but not listed by the datapath");
    if (auto s = runtime_->attach(att); !s) return std::move(s).error().context("starting the callout workers");

    auto plugin = runtime_->host().load(XFPBC_PERMIT_PLUGIN, "");
    if (!plugin) return std::move(plugin).error().context(fmt::format("loading {}", XFPBC_PERMIT_PLUGIN));

    auto words = xfp::tokenize(kFilterText);
    if (!words) return std::move(words).error();
    auto filter = xfp::parse_filter(*words, [](std::string_view n) -> xfp::Result<uint32_t> {
      return xfp::make_error(ENOENT, fmt::format("no interface '{}' here", n));
    });
    if (!filter) return std::move(filter).error().context("the bench's filter");
    xfp::FilterSet set;
    if (auto id = set.add_filter(*filter); !id) return std::move(id).error();
    auto compiled = xfp::compile(set, {}, runtime_->host().id_fn());
    if (!compiled) return std::move(compiled).error().context("compiling the bench's filter");
    XFP_TRY(dp_->install(*compiled));
    auto snap = xfp::PolicySnapshot::create(set, *compiled, dp_->generation());
    if (!snap) return std::move(snap).error();
    runtime_->publish(std::move(*snap));

    // The runtime's threads: whatever appeared since `before`.
    {
      std::lock_guard lock(cpu_mu_);
      for (pid_t t : thread_ids())
        if (!before.count(t)) cpu_last_[t] = 0;
    }
    if (cpu_last_.empty()) return xfp::make_error(ESRCH, "the callout runtime started no thread that could be found");
    if (env.consumer_cpu >= 0) {
      cpu_set_t cs;
      CPU_ZERO(&cs);
      CPU_SET(env.consumer_cpu, &cs);
      for (const auto& [tid, ns] : cpu_last_) sched_setaffinity(tid, sizeof cs, &cs);
    }
    cpu_base_ = sum_thread_cpu();
    base_ = raw_counters();
    carrier_ = xfp::punt_carrier_name(att.carrier);

    detail_ = fmt::format(
        "permit-all callout {} (batch classify), filter \"ethertype eq ipv4 -> callout-terminating\"; XDP {} via {}; "
        "punt header {} (carrier {}{}); AF_XDP copy mode, ring {}, batch {}, worker {}; receive injection through "
        "xfpinj0; {} runtime thread(s) measured",
        kPermitKey, att.xdp_mode, att.xdp_loader,
        att.carrier == xfp::PuntCarrier::Metadata ? "in the XDP metadata area" : "in band in front of the frame",
        carrier_, env.punt_carrier == "auto" ? ", chosen by the datapath" : ", asked for", env.ring_size, env.batch,
        env.poll ? "poll()" : "spinning", cpu_last_.size());
    return xfp::Ok{};
  }

  CaseCounters counters() const override {
    CaseCounters c;
    if (!runtime_) return c;
    const Raw now = raw_counters();
    c.consumed = now.frames - base_.frames;
    c.drop_detail["rx_dropped"] = now.rx_dropped - base_.rx_dropped;
    c.drop_detail["rx_ring_full"] = now.rx_ring_full - base_.rx_ring_full;
    c.drop_detail["deliver_failed"] = now.deliver_failed - base_.deliver_failed;
    c.drop_detail["punt_fail"] = now.punt_fail - base_.punt_fail;
    c.drop_detail["overload_block"] = now.overload_block - base_.overload_block;
    for (const auto& [k, v] : c.drop_detail) c.dropped += v;
    // Not a drop of its own (such a frame is in rx_dropped), but worth seeing
    // with -v: the fill ring ran dry, i.e. the worker refilled too slowly.
    c.drop_detail["fill_ring_empty"] = now.fill_ring_empty - base_.fill_ring_empty;
    // Nor this: frames whose header went in band under the metadata carrier.
    c.drop_detail["punt_in_band"] = now.punt_in_band - base_.punt_in_band;
    c.consumer_cpu_ns = sum_thread_cpu() - cpu_base_;
    return c;
  }

  std::string detail() const override { return detail_; }
  std::string punt_carrier() const override { return carrier_; }

  void stop() override {
    // The runtime first: it unbinds the sockets, joins the workers, removes
    // the injection pair and unloads the plugin; then the XDP program goes.
    runtime_.reset();
    if (dp_ && !attached_.empty()) (void)dp_->detach(attached_);
    attached_.clear();
    dp_.reset();
    std::lock_guard lock(cpu_mu_);
    cpu_last_.clear();
  }

 private:
  struct Raw {
    uint64_t frames = 0, deliver_failed = 0, rx_dropped = 0, rx_ring_full = 0, fill_ring_empty = 0,
             punt_fail = 0, overload_block = 0, punt_in_band = 0;
  };
  Raw raw_counters() const {
    Raw r;
    for (const xfp::WorkerStatus& w : runtime_->workers()) {
      r.frames += w.frames;
      r.deliver_failed += w.deliver_failed;
      r.rx_dropped += w.rx_dropped;
      r.rx_ring_full += w.rx_ring_full;
      r.fill_ring_empty += w.fill_ring_empty;
    }
    const auto lc = dp_->layer_counters(xfp::Layer::Inbound);
    r.punt_fail = lc.c[XFP_CNT_PUNT_FAIL];
    r.overload_block = lc.c[XFP_CNT_OVERLOAD_BLOCK];
    r.punt_in_band = lc.c[XFP_CNT_PUNT_IN_BAND];
    return r;
  }
  // A thread that has ended keeps the last time read from it.
  uint64_t sum_thread_cpu() const {
    std::lock_guard lock(cpu_mu_);
    uint64_t sum = 0;
    for (auto& [tid, last] : cpu_last_) {
      if (auto ns = thread_cpu_ns(tid)) last = *ns;
      sum += last;
    }
    return sum;
  }

  std::unique_ptr<xfp::Datapath> dp_;
  std::unique_ptr<xfp::CalloutRuntime> runtime_;
  std::string attached_;
  Raw base_;
  mutable std::mutex cpu_mu_;
  mutable std::map<pid_t, uint64_t> cpu_last_;
  uint64_t cpu_base_ = 0;
  std::string detail_;
  std::string carrier_;
};

}  // namespace

std::unique_ptr<Case> make_xfp_callout_case() { return std::make_unique<XfpCalloutCase>(); }

}  // namespace xfpbc
