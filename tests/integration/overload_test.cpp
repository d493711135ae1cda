// User space falling behind (issue 6): a callout that takes 200 µs per frame
// while the peer sends a burst several times larger than the queue's socket
// rings. The overload guard (abi.h, struct xfp_xsk_load) must keep every
// frame accounted for: punted and decided by the worker, or decided by the
// overload policy in the kernel and counted, and none dropped by the socket
// (XDP_STATISTICS stays zero). Fail open: every frame reaches the xfp side's
// stack. Fail closed: exactly the frames the overload-block counter counts
// are missing. Without the guard the socket's rx ring overflows and frames
// vanish: these tests then fail on the "lost" and XDP_STATISTICS checks.
#include <net/if.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/assert_ok.hpp"
#include "support/frame_builder.hpp"
#include "support/netns.hpp"
#include "support/packet_io.hpp"
#include "support/peer_pair.hpp"
#include "support/privileges.hpp"
#include "xfp/callout_runtime.hpp"
#include "xfp/compiler.hpp"
#include "xfp/datapath.hpp"
#include "xfp/filter_set.hpp"
#include "xfp/policy_snapshot.hpp"

namespace xfp {
namespace {

using namespace std::chrono_literals;
using test::FrameBuilder;
using test::Mac;
using test::ScopedNetnsEnter;

constexpr Mac kPeerMac{0x02, 0x00, 0x00, 0x00, 0xda, 0x01};
constexpr Mac kXfpMac{0x02, 0x00, 0x00, 0x00, 0xdb, 0x01};
constexpr uint16_t kMarked = 0x88b5;
constexpr uint32_t kBurst = 2000;  // frames; the rings hold 256
const std::string kProbe = XFP_TEST_PROBE_PATH;

struct Param {
  XdpMode mode;
  OverloadPolicy policy;
};

class OverloadTest : public ::testing::TestWithParam<Param>, protected test::PeerPair {
 protected:
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    XFP_ASSERT_OK(create_peer_pair(kPeerMac, kXfpMac));
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    XFP_ASSERT_OK(inside);
    auto dp = Datapath::open();
    XFP_ASSERT_OK(dp);
    dp_ = std::move(dp).value();
    CalloutRuntimeOptions ro;
    // Small rings, so that a burst overruns them many times over.
    ro.socket.ring_size = 256;
    ro.socket.rx_frames = 256;
    ro.socket.frames = 512;
    ro.overload = GetParam().policy;
    runtime_ = std::make_unique<CalloutRuntime>(*dp_, ro);
    AttachOptions ao;
    ao.mode = GetParam().mode;
    ao.outbound = false;
    XFP_ASSERT_OK(dp_->attach(pair_->b().name, ao));
    Attachment at;
    for (const Attachment& a : dp_->attachments())
      if (a.ifname == pair_->b().name) at = a;
    XFP_ASSERT_OK(runtime_->attach(at));

    auto r = runtime_->host().load(kProbe, "mode=slow:200");
    XFP_ASSERT_OK(r);
    FilterSet set;
    Filter f;
    f.name = "slow";
    f.layer = Layer::Inbound;
    f.action = Action::CalloutTerminating;
    f.callout = "xfp.test.probe";
    f.conditions = {Condition{Field::EtherType, Match::Equal, kMarked, 0, ~0ull}};
    ASSERT_TRUE(set.add_filter(f).ok());
    auto compiled = compile(set, {}, runtime_->host().id_fn());
    XFP_ASSERT_OK(compiled);
    XFP_ASSERT_OK(dp_->install(*compiled));
    auto snap = PolicySnapshot::create(set, *compiled, dp_->generation());
    XFP_ASSERT_OK(snap);
    runtime_->publish(std::move(snap).value());
  }

  void TearDown() override {
    if (!xfp_ns_) return;
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    runtime_.reset();
    if (dp_)
      for (const Attachment& a : dp_->attachments()) (void)dp_->detach(a.ifname);
    dp_.reset();
  }

  LayerCounters counters() const { return dp_->layer_counters(Layer::Inbound); }
  WorkerStatus worker() const {
    auto w = runtime_->workers();
    return w.empty() ? WorkerStatus{} : w[0];
  }

  std::unique_ptr<Datapath> dp_;
  std::unique_ptr<CalloutRuntime> runtime_;
};

TEST_P(OverloadTest, EveryFrameOfABurstIsDeliveredOrDroppedByPolicyNoneLost) {
  const OverloadPolicy policy = GetParam().policy;
  // The xfp side's stack: what it receives, concurrently (the burst would
  // not fit a socket buffer).
  std::atomic<bool> stop{false};
  std::set<uint32_t> delivered;
  size_t duplicates = 0, altered = 0;
  std::thread receiver([&] {
    bool quiet = false;
    while (!(stop.load() && quiet)) {
      auto got = xfp_sock_->receive(100ms, test::has_marker);
      quiet = !got || got->empty();
      if (!got) continue;
      for (const auto& fr : *got) {
        // Exactly as sent: a punt header left on (in band, 32 bytes in
        // front) would shift the EtherType and grow the frame.
        if (fr.size() != 60 || fr[12] != (kMarked >> 8) || fr[13] != (kMarked & 0xff) ||
            !std::equal(kXfpMac.begin(), kXfpMac.end(), fr.begin()))
          ++altered;
        if (auto seq = test::find_marker(fr); seq && !delivered.insert(*seq).second) ++duplicates;
      }
    }
  });

  const LayerCounters before = counters();
  // The burst, paced only so that the veth's own 256-frame ring in front of
  // XDP does not overflow (that would be a loss before xfp): each chunk of
  // 32 is sent once XDP has seen the previous one. The worker, at 200 µs a
  // frame, falls behind within the first milliseconds.
  uint32_t sent = 0;
  for (uint32_t seq = 0; seq < kBurst;) {
    std::vector<test::Frame> chunk;
    for (uint32_t k = 0; k < 32 && seq < kBurst; ++k, ++seq)
      chunk.push_back(FrameBuilder().dst(kXfpMac).src(kPeerMac).ethertype(kMarked).marker(seq).pad_to(60).build());
    XFP_ASSERT_OK(peer_sock_->send_frames(chunk));
    sent += static_cast<uint32_t>(chunk.size());
    const auto limit = std::chrono::steady_clock::now() + 2s;
    while (counters().c[XFP_CNT_FRAMES] - before.c[XFP_CNT_FRAMES] < sent &&
           std::chrono::steady_clock::now() < limit)
      std::this_thread::sleep_for(50us);
  }

  // Until every punted frame is decided: by the worker, or by the policy.
  auto settled = [&] {
    const LayerCounters c = counters();
    const WorkerStatus w = worker();
    const uint64_t overload = (c.c[XFP_CNT_OVERLOAD_PERMIT] - before.c[XFP_CNT_OVERLOAD_PERMIT]) +
                              (c.c[XFP_CNT_OVERLOAD_BLOCK] - before.c[XFP_CNT_OVERLOAD_BLOCK]);
    return c.c[XFP_CNT_PUNT] - before.c[XFP_CNT_PUNT] == sent && w.frames + overload == sent &&
           w.permitted + w.blocked + w.absorbed + w.deliver_failed + w.bad_meta == w.frames && w.in_flight == 0;
  };
  const auto limit = std::chrono::steady_clock::now() + 30s;
  while (!settled() && std::chrono::steady_clock::now() < limit) std::this_thread::sleep_for(20ms);
  stop = true;
  receiver.join();

  const LayerCounters c = counters();
  const WorkerStatus w = worker();
  const uint64_t frames = c.c[XFP_CNT_FRAMES] - before.c[XFP_CNT_FRAMES];
  const uint64_t punted = c.c[XFP_CNT_PUNT] - before.c[XFP_CNT_PUNT];
  const uint64_t ovl_permit = c.c[XFP_CNT_OVERLOAD_PERMIT] - before.c[XFP_CNT_OVERLOAD_PERMIT];
  const uint64_t ovl_block = c.c[XFP_CNT_OVERLOAD_BLOCK] - before.c[XFP_CNT_OVERLOAD_BLOCK];
  const uint64_t policy_drops = ovl_block + w.blocked;
  const int64_t lost = static_cast<int64_t>(sent) - static_cast<int64_t>(delivered.size() + policy_drops);
  ::testing::Test::RecordProperty("overloaded", static_cast<int>(ovl_permit + ovl_block));
  std::printf("sent %u, classified %llu, punted %llu, worker took %llu (permit %llu, block %llu, deliver-fail %llu), "
              "overload permit %llu / block %llu, delivered %zu, lost %lld; socket drops %llu + ring-full %llu\n",
              sent, (unsigned long long)frames, (unsigned long long)punted, (unsigned long long)w.frames,
              (unsigned long long)w.permitted, (unsigned long long)w.blocked, (unsigned long long)w.deliver_failed,
              (unsigned long long)ovl_permit, (unsigned long long)ovl_block, delivered.size(), (long long)lost,
              (unsigned long long)w.rx_dropped, (unsigned long long)w.rx_ring_full);

  EXPECT_EQ(frames, sent) << "frames lost before XDP (the veth's ring): pace the sender";
  EXPECT_EQ(punted, sent);
  EXPECT_EQ(c.c[XFP_CNT_PUNT_FAIL] - before.c[XFP_CNT_PUNT_FAIL], 0u);
  // The socket never had to drop: the guard stopped punting first.
  EXPECT_EQ(w.rx_dropped, 0u);
  EXPECT_EQ(w.rx_ring_full, 0u);
  EXPECT_EQ(w.fill_ring_empty, 0u);
  // The burst did overrun the worker, and the per-queue count agrees.
  EXPECT_GT(ovl_permit + ovl_block, sent / 4) << "the worker kept up: no overload to test";
  EXPECT_EQ(w.overloaded, ovl_permit + ovl_block);
  EXPECT_GT(w.capacity, 0u);
  EXPECT_LE(w.capacity, 256u);
  // Every punted frame was decided: by the worker or by the policy.
  EXPECT_EQ(w.frames + ovl_permit + ovl_block, sent);
  EXPECT_EQ(w.deliver_failed, 0u);
  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(altered, 0u) << "frames reached the stack not as they were sent";
  EXPECT_EQ(lost, 0);
  if (policy == OverloadPolicy::FailOpen) {
    EXPECT_EQ(ovl_block, 0u);
    EXPECT_EQ(delivered.size(), sent);
  } else {
    // Fail closed, and fail action of a terminating callout (block).
    EXPECT_EQ(ovl_permit, 0u);
    EXPECT_EQ(sent - delivered.size(), ovl_block);
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, OverloadTest,
                         ::testing::Values(Param{XdpMode::Native, OverloadPolicy::FailOpen},
                                           Param{XdpMode::Native, OverloadPolicy::FailClosed},
                                           Param{XdpMode::Native, OverloadPolicy::FailAction},
                                           Param{XdpMode::Generic, OverloadPolicy::FailOpen},
                                           Param{XdpMode::Generic, OverloadPolicy::FailClosed}),
                         [](const ::testing::TestParamInfo<Param>& i) {
                           std::string n = i.param.mode == XdpMode::Native ? "Native" : "Generic";
                           n += i.param.policy == OverloadPolicy::FailOpen     ? "FailOpen"
                                : i.param.policy == OverloadPolicy::FailClosed ? "FailClosed"
                                                                               : "FailAction";
                           return n;
                         });

}  // namespace
}  // namespace xfp
