// Case "stack": no user-space consumer at all. The receiving veth carries an
// XDP_PASS program (as in the nfqueue case) and every frame goes straight
// into the receiving namespace's stack: in the throughput mode to UDP port 9,
// where no socket listens (the kernel counts it in Udp NoPorts and answers at
// most about 1,000 per second with ICMP port unreachable, its global rate
// limit); in the latency mode to the harness's UDP echo.
//
// It is the baseline of the two cases that end in the stack: nfqueue and the
// xfp callout (whose permitted frames are re-injected into the stack). Their
// latency minus this one is what the detour through user space adds.
//
// Counters: consumed = Udp InDatagrams + NoPorts (datagrams that reached UDP);
// dropped = Udp InErrors + RcvbufErrors.
#include <fmt/format.h>

#include "harness.hpp"
#include "xfpbc_xsk.skel.h"

namespace xfpbc {
namespace {

class StackCase final : public Case {
 public:
  ~StackCase() override { stop(); }
  std::string name() const override { return "stack"; }
  xfp::Status start(const CaseEnv& env) override {
    skel_.reset(xfpbc_xsk__open_and_load());
    if (!skel_) return xfp::errno_error("loading the XDP_PASS program");
    XFP_TRY(xdp_.attach(env.rx_ifindex, bpf_program__fd(skel_->progs.xfpbc_pass)));
    base_ = read_snmp("Udp");
    return xfp::Ok{};
  }
  CaseCounters counters() const override {
    auto u = read_snmp("Udp");
    auto d = [&](const char* k) { return u[k] - base_[k]; };
    CaseCounters c;
    c.has_consumer = false;
    c.consumed = d("InDatagrams") + d("NoPorts");
    c.drop_detail["InErrors"] = d("InErrors");
    c.drop_detail["RcvbufErrors"] = d("RcvbufErrors");
    c.dropped = c.drop_detail["InErrors"];  // RcvbufErrors are part of InErrors
    return c;
  }
  std::string detail() const override { return "XDP_PASS, frames go to the receiving namespace's UDP"; }
  void stop() override {
    xdp_.reset();
    skel_.reset();
  }

 private:
  struct SkelDel {
    void operator()(xfpbc_xsk* s) const { xfpbc_xsk__destroy(s); }
  };
  std::unique_ptr<xfpbc_xsk, SkelDel> skel_;
  XdpAttachment xdp_;
  mutable std::map<std::string, uint64_t> base_;
};

}  // namespace

std::unique_ptr<Case> make_stack_case() { return std::make_unique<StackCase>(); }

}  // namespace xfpbc
