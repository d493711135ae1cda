// Case "xfp-callout": xfp's own callout path, permit-all.
//
// ======================================================================
// STUB: to be written when the callout path (punt, AF_XDP daemon side,
// receive-injection) is complete. Until then start() fails with ENOSYS and
// the harness reports the case as "not measured".
// ======================================================================
//
// What it must do so that its figures compare with nfqueue and rxdrop
// (read harness.hpp's Case contract first):
//
// start(env), on the main thread inside the receiving namespace:
//   - open an xfp::Datapath, install one filter on the inbound layer that
//     sends every frame of the generator (IPv4/UDP from 02:b5:c6:12:00:01 to
//     env.rx_dev's MAC, 198.18.0.1 -> 198.19.0.1) to a served callout, and
//     attach it natively to env.rx_dev (bench/veth's Xfp peer shows the
//     Datapath calls);
//   - start the user-space side in-process: the AF_XDP queue socket of
//     env.rx_dev, a callout that classifies every frame as permit, and the
//     receive-injection of permitted frames into the receiving namespace's
//     stack; its thread(s) run through Worker (env.rx_ns_fd,
//     env.consumer_cpu) so that their CPU time is measured; honour
//     env.batch, env.ring_size, env.poll.
//   - Mode::Throughput: the injected frames go to UDP port 9 (no socket), as
//     the nfqueue case's accepted packets do. Mode::Latency: the injected
//     frame reaches the harness's UDP echo, which answers (echoes_itself()
//     stays false), exactly as for nfqueue: the two are then comparable
//     directly, and "stack" is their common floor.
// counters(): consumed = frames the callout permitted and injected;
//   dropped = frames lost on the punt path (the queue socket's XDP_STATISTICS
//   rx_dropped + rx_ring_full, injection failures), by cause in drop_detail;
//   consumer_cpu_ns = the CPU time of every thread of the user-space side.
// stop(): idempotent, undoes everything (detach, close sockets, join).
#include "harness.hpp"

namespace xfpbc {
namespace {

class XfpCalloutCase final : public Case {
 public:
  ~XfpCalloutCase() override { stop(); }
  std::string name() const override { return "xfp-callout"; }
  xfp::Status start(const CaseEnv& env) override {
    (void)env;
    return xfp::make_error(ENOSYS, "not built yet (stub in bench/callout/case_xfp.cpp)");
  }
  CaseCounters counters() const override { return {}; }
  std::string detail() const override { return "permit-all callout: punt, classify, receive-inject"; }
  void stop() override {}
};

}  // namespace

std::unique_ptr<Case> make_xfp_callout_case() { return std::make_unique<XfpCalloutCase>(); }

}  // namespace xfpbc
