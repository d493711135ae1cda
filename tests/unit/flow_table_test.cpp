// The flow table's rules (user/xfp/flow_table.hpp): WFP's association rules,
// flow_delete exactly once per context under every way a flow ends, the
// deferred delete while a classify runs, LRU eviction, the memory bound with
// a million flows, and a concurrency smoke test.
#include "xfp/flow_table.hpp"

#include <malloc.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "xfp/flow_key.h"

namespace xfp {
namespace {

constexpr uint64_t kSec = 1000000000ull;

// Counts flow_delete calls; refuses the callouts in `out_of_service`.
class Sink final : public FlowDeleteSink {
 public:
  bool deliver(const FlowEnd& e) noexcept override {
    if (out_of_service.count(e.callout)) return false;
    std::lock_guard lock(mu);
    ends.push_back(e);
    return true;
  }
  void offload_ended(uint64_t handle, const xfp_flow_key&) noexcept override {
    std::lock_guard lock(mu);
    offload_ends.push_back(handle);
  }
  void wake() noexcept override { ++wakes; }

  size_t count() {
    std::lock_guard lock(mu);
    return ends.size();
  }
  std::vector<FlowEnd> take() {
    std::lock_guard lock(mu);
    return std::exchange(ends, {});
  }

  std::mutex mu;
  std::vector<FlowEnd> ends;
  std::vector<uint64_t> offload_ends;
  std::set<uint16_t> out_of_service;
  std::atomic<int> wakes{0};
};

xfp_flow_key key_for(uint64_t n, uint32_t iface = 1) {
  xfp_flow_key k{};
  k.iface = iface;
  k.ethertype = 0x0800;
  k.ip_version = 4;
  k.protocol = 6;
  std::memcpy(k.addr_a, &n, 4);
  k.port_a = static_cast<uint16_t>(n >> 32);
  return k;
}

uint64_t handle_for(uint64_t n, uint32_t iface = 1) {
  xfp_flow_key k = key_for(n, iface);
  return xfp_flow_handle(&k);
}

FlowTableOptions small(uint32_t max_flows = 16) {
  FlowTableOptions o;
  o.max_flows = max_flows;
  o.idle_timeout_ns = 10 * kSec;
  o.shards = 1;
  return o;
}

// One frame of flow n: begin + end.
void frame(FlowTable& t, uint64_t n, uint64_t now, uint8_t tcp_flags = 0, uint32_t iface = 1) {
  FlowTicket tk = t.begin(handle_for(n, iface), key_for(n, iface), now);
  ASSERT_TRUE(tk.valid());
  t.end(tk, tcp_flags);
}

TEST(FlowTable, AssociateFollowsWfpRules) {
  Sink sink;
  FlowTable t(small(), sink);
  const uint64_t h = handle_for(1);
  EXPECT_EQ(t.associate(h, XFP_LAYER_INBOUND, 5, 100), -ENOENT) << "a flow never seen";
  frame(t, 1, 1);
  EXPECT_EQ(t.associate(h, XFP_LAYER_INBOUND, 5, 100), 0);
  EXPECT_EQ(t.associate(h, XFP_LAYER_INBOUND, 5, 101), -EEXIST) << "remove first";
  EXPECT_EQ(t.associate(h, XFP_LAYER_INBOUND, 6, 200), 0) << "many callouts per flow";
  EXPECT_EQ(t.associate(h, XFP_LAYER_OUTBOUND, 5, 300), 0) << "one per layer";
  EXPECT_EQ(t.associate(h, XFP_LAYER_INBOUND, 7, 0), -EINVAL) << "context 0 means none";
  EXPECT_EQ(t.associate(0, XFP_LAYER_INBOUND, 7, 1), -ENOENT) << "handle 0: no flow";

  FlowTicket tk = t.begin(h, key_for(1), 2);
  EXPECT_EQ(t.context(tk, XFP_LAYER_INBOUND, 5), 100u);
  EXPECT_EQ(t.context(tk, XFP_LAYER_INBOUND, 6), 200u);
  EXPECT_EQ(t.context(tk, XFP_LAYER_OUTBOUND, 5), 300u);
  EXPECT_EQ(t.context(tk, XFP_LAYER_INBOUND, 7), 0u);
  t.end(tk, 0);
  EXPECT_EQ(t.stats().contexts, 3u);
  EXPECT_EQ(sink.count(), 0u);
}

TEST(FlowTable, RemoveDeliversOnceAndNeverInsideRemove) {
  Sink sink;
  FlowTable t(small(), sink);
  const uint64_t h = handle_for(1);
  frame(t, 1, 1);
  ASSERT_EQ(t.associate(h, XFP_LAYER_INBOUND, 5, 100), 0);
  EXPECT_EQ(t.remove(h, XFP_LAYER_INBOUND, 5), 0);
  EXPECT_EQ(sink.count(), 0u) << "flow_delete must not run inside remove";
  EXPECT_GE(sink.wakes.load(), 1) << "the delivery thread is woken";
  EXPECT_EQ(t.remove(h, XFP_LAYER_INBOUND, 5), -ENOENT);
  EXPECT_EQ(t.flush(), 1u);
  auto ends = sink.take();
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0].handle, h);
  EXPECT_EQ(ends[0].context, 100u);
  EXPECT_EQ(ends[0].callout, 5);
  EXPECT_EQ(ends[0].reason, FlowEndReason::Removed);
  EXPECT_EQ(t.flush(), 0u);
  // The flow goes on, and the callout may associate again.
  EXPECT_EQ(t.associate(h, XFP_LAYER_INBOUND, 5, 101), 0);
  EXPECT_EQ(t.size(), 1u);
}

TEST(FlowTable, RemoveDuringClassifyIsDeferredUntilItReturns) {
  Sink sink;
  FlowTable t(small(), sink);
  const uint64_t h = handle_for(1);
  frame(t, 1, 1);
  ASSERT_EQ(t.associate(h, XFP_LAYER_INBOUND, 5, 100), 0);
  ASSERT_EQ(t.associate(h, XFP_LAYER_INBOUND, 6, 600), 0);
  FlowTicket tk = t.begin(h, key_for(1), 2);
  EXPECT_EQ(t.remove(h, XFP_LAYER_INBOUND, 5), 0);
  EXPECT_EQ(t.context(tk, XFP_LAYER_INBOUND, 5), 0u) << "removed: no longer seen";
  t.flush();
  EXPECT_EQ(sink.count(), 0u) << "not while the classify on the flow is in progress";
  // Two frames of the flow in classify at once: the last to return delivers.
  FlowTicket tk2 = t.begin(h, key_for(1), 3);
  t.end(tk, 0);
  EXPECT_EQ(sink.count(), 0u);
  t.end(tk2, 0);
  auto ends = sink.take();
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0].context, 100u);
  EXPECT_EQ(ends[0].reason, FlowEndReason::Removed);
  t.flush();
  EXPECT_EQ(sink.count(), 0u) << "exactly once";
  EXPECT_EQ(t.stats().contexts, 1u) << "the other callout's context stays";
}

TEST(FlowTable, TcpFinAndRstEndTheFlow) {
  for (uint8_t flags : {uint8_t{XFP_TCP_FIN}, uint8_t{XFP_TCP_RST}, uint8_t{XFP_TCP_FIN | 0x10}}) {
    Sink sink;
    FlowTable t(small(), sink);
    const uint64_t h = handle_for(1);
    frame(t, 1, 1);
    ASSERT_EQ(t.associate(h, XFP_LAYER_INBOUND, 5, 100), 0);
    ASSERT_EQ(t.associate(h, XFP_LAYER_INBOUND, 6, 200), 0);
    frame(t, 1, 2, 0x10);  // a plain ACK: nothing ends
    EXPECT_EQ(sink.count(), 0u);
    frame(t, 1, 3, flags);
    auto ends = sink.take();
    ASSERT_EQ(ends.size(), 2u) << int(flags);
    const auto want = (flags & XFP_TCP_RST) ? FlowEndReason::TcpRst : FlowEndReason::TcpFin;
    for (const FlowEnd& e : ends) EXPECT_EQ(e.reason, want);
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(t.associate(h, XFP_LAYER_INBOUND, 5, 1), -ENOENT) << "the flow has ended";
    frame(t, 1, 4);  // a later frame starts a new flow, without contexts
    EXPECT_EQ(t.stats().contexts, 0u);
    t.end_all();
    EXPECT_EQ(sink.count(), 0u);
  }
}

TEST(FlowTable, IdleTimeoutEndsFlowsButNotOnesInClassify) {
  Sink sink;
  FlowTable t(small(), sink);
  frame(t, 1, 1 * kSec);
  frame(t, 2, 5 * kSec);
  ASSERT_EQ(t.associate(handle_for(1), XFP_LAYER_INBOUND, 5, 100), 0);
  ASSERT_EQ(t.associate(handle_for(2), XFP_LAYER_INBOUND, 5, 200), 0);
  EXPECT_EQ(t.expire(10 * kSec), 0u) << "1 + 10 s is not yet past";
  EXPECT_EQ(t.expire(11 * kSec), 1u);
  auto ends = sink.take();
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0].context, 100u);
  EXPECT_EQ(ends[0].reason, FlowEndReason::Idle);
  // A flow in classify is not expired, even when its time is up.
  FlowTicket tk = t.begin(handle_for(2), key_for(2), 5 * kSec);
  EXPECT_EQ(t.expire(100 * kSec), 0u);
  t.end(tk, 0);
  EXPECT_EQ(t.expire(100 * kSec), 1u);
  EXPECT_EQ(sink.take().size(), 1u);
  // The kernel's last-seen time (touch) keeps an offloaded flow alive.
  frame(t, 3, 1 * kSec);
  t.touch(handle_for(3), 20 * kSec);
  EXPECT_EQ(t.expire(25 * kSec), 0u);
  EXPECT_EQ(t.expire(31 * kSec), 1u);
}

TEST(FlowTable, LruEvictionCallsFlowDelete) {
  Sink sink;
  FlowTable t(small(4), sink);
  for (uint64_t n = 1; n <= 4; ++n) {
    frame(t, n, n);
    ASSERT_EQ(t.associate(handle_for(n), XFP_LAYER_INBOUND, 5, 100 + n), 0);
  }
  frame(t, 1, 10);  // flow 1 is now the most recent; 2 the least
  frame(t, 5, 11);
  auto ends = sink.take();
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0].context, 102u);
  EXPECT_EQ(ends[0].reason, FlowEndReason::Evicted);
  EXPECT_EQ(t.size(), 4u);
  EXPECT_EQ(t.stats().ended[static_cast<int>(FlowEndReason::Evicted)], 1u);
  // A flow in classify is never evicted: the next least recent goes.
  // LRU order now (most recent first): 5, 1, 4, 3.
  FlowTicket held = t.begin(handle_for(3), key_for(3), 12);  // 3, 5, 1, 4
  for (uint64_t n = 6; n <= 9; ++n) frame(t, n, 12 + n);      // evicts 4, 1, 5, then 6 (3 is held)
  std::set<uint64_t> evicted;
  for (const FlowEnd& e : sink.take()) evicted.insert(e.context);
  EXPECT_EQ(evicted, (std::set<uint64_t>{101, 104}));
  EXPECT_EQ(t.context(held, XFP_LAYER_INBOUND, 5), 103u);
  t.end(held, 0);
  EXPECT_EQ(t.size(), 4u);
  // Every flow of the shard in classify: the frame is not tracked.
  Sink sink1;
  FlowTable one(small(1), sink1);
  FlowTicket a = one.begin(handle_for(1), key_for(1), 1);
  EXPECT_FALSE(one.begin(handle_for(2), key_for(2), 1).valid());
  EXPECT_EQ(one.stats().untracked, 1u);
  one.end(a, 0);
}

TEST(FlowTable, DetachEndsOnlyThatInterfacesFlows) {
  Sink sink;
  FlowTable t(small(), sink);
  frame(t, 1, 1, 0, 1);
  frame(t, 2, 1, 0, 2);
  ASSERT_EQ(t.associate(handle_for(1, 1), XFP_LAYER_INBOUND, 5, 1), 0);
  ASSERT_EQ(t.associate(handle_for(2, 2), XFP_LAYER_INBOUND, 5, 2), 0);
  EXPECT_EQ(t.end_iface(2), 1u);
  auto ends = sink.take();
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0].context, 2u);
  EXPECT_EQ(ends[0].reason, FlowEndReason::Detached);
  EXPECT_EQ(t.size(), 1u);
}

TEST(FlowTable, RetireCalloutDeliversEachOfItsContextsOnceThroughItsOwnPath) {
  Sink sink;
  FlowTable t(small(), sink);
  for (uint64_t n = 1; n <= 3; ++n) {
    frame(t, n, n);
    ASSERT_EQ(t.associate(handle_for(n), XFP_LAYER_INBOUND, 5, 100 + n), 0);
    ASSERT_EQ(t.associate(handle_for(n), XFP_LAYER_INBOUND, 6, 200 + n), 0);
  }
  // Callout 5: one context removed and queued (not yet flushed), one
  // removed during a classify (deferred), one live.
  ASSERT_EQ(t.remove(handle_for(1), XFP_LAYER_INBOUND, 5), 0);
  FlowTicket tk = t.begin(handle_for(2), key_for(2), 10);
  ASSERT_EQ(t.remove(handle_for(2), XFP_LAYER_INBOUND, 5), 0);
  // Its plugin is unloading: the sink can no longer reach it.
  sink.out_of_service.insert(5);
  std::vector<FlowEnd> retired;
  t.retire_callout(5, [&](const FlowEnd& e) { retired.push_back(e); });
  std::set<uint64_t> got;
  for (const FlowEnd& e : retired) got.insert(e.context);
  EXPECT_EQ(got, (std::set<uint64_t>{101, 102, 103}));
  EXPECT_EQ(retired.size(), 3u);
  t.end(tk, 0);
  t.flush();
  EXPECT_EQ(sink.count(), 0u) << "callout 6 untouched, callout 5 not delivered twice";
  EXPECT_EQ(t.stats().contexts, 3u);
  // An end that was collected elsewhere while the callout retires is queued
  // by the failed delivery and still reaches retire_callout.
  sink.out_of_service.insert(6);
  EXPECT_EQ(t.end_flow(handle_for(3), FlowEndReason::TcpRst), true);
  EXPECT_EQ(sink.count(), 0u);
  retired.clear();
  t.retire_callout(6, [&](const FlowEnd& e) { retired.push_back(e); });
  ASSERT_EQ(retired.size(), 3u);
  t.end_all();
  EXPECT_EQ(sink.count(), 0u);
}

TEST(FlowTable, EndAllWaitsForClassifyInProgress) {
  Sink sink;
  FlowTable t(small(), sink);
  frame(t, 1, 1);
  frame(t, 2, 1);
  ASSERT_EQ(t.associate(handle_for(1), XFP_LAYER_INBOUND, 5, 1), 0);
  ASSERT_EQ(t.associate(handle_for(2), XFP_LAYER_INBOUND, 5, 2), 0);
  FlowTicket tk = t.begin(handle_for(1), key_for(1), 2);
  t.end_all();
  auto ends = sink.take();
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0].context, 2u);
  EXPECT_EQ(t.context(tk, XFP_LAYER_INBOUND, 5), 1u) << "the classify in progress still sees its context";
  t.end(tk, 0);
  ends = sink.take();
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0].context, 1u);
  EXPECT_EQ(ends[0].reason, FlowEndReason::Shutdown);
  EXPECT_EQ(t.size(), 0u);
}

TEST(FlowTable, OffloadedFlowsReportTheirEnd) {
  Sink sink;
  FlowTable t(small(2), sink);
  frame(t, 1, 1);
  EXPECT_TRUE(t.set_offloaded(handle_for(1), true));
  EXPECT_FALSE(t.set_offloaded(handle_for(9), true));
  frame(t, 2, 2);
  frame(t, 3, 3);  // evicts flow 1
  ASSERT_EQ(sink.offload_ends.size(), 1u);
  EXPECT_EQ(sink.offload_ends[0], handle_for(1));
}

// Every context associated is deleted exactly once, whatever ends it, with
// workers, plugin threads, the sweeper and detach all running at once.
TEST(FlowTable, ConcurrencySmokeExactlyOnce) {
  class CountingSink final : public FlowDeleteSink {
   public:
    explicit CountingSink(size_t n) : counts(n) {}
    bool deliver(const FlowEnd& e) noexcept override {
      counts[e.context].fetch_add(1);
      return true;
    }
    std::vector<std::atomic<uint32_t>> counts;
  };
  constexpr size_t kContexts = 400000;
  CountingSink sink(kContexts + 1);
  FlowTableOptions o;
  o.max_flows = 2048;  // small: evictions happen
  o.idle_timeout_ns = 2000;
  o.shards = 8;
  FlowTable t(o, sink);
  std::atomic<uint64_t> next_context{1};
  std::atomic<bool> stop{false};
  std::vector<std::atomic<uint8_t>> associated(kContexts + 1);
  auto worker = [&](int id) {
    std::mt19937_64 rng(id);
    uint64_t clock = 0;
    while (!stop.load()) {
      const uint64_t n = rng() % 5000;
      const uint32_t iface = 1 + n % 3;
      FlowTicket tk = t.begin(handle_for(n, iface), key_for(n, iface), ++clock * 1000);
      if (!tk.valid()) continue;
      const uint16_t callout = 1 + rng() % 4;
      if (rng() % 2) {
        const uint64_t c = next_context.fetch_add(1);
        if (c > kContexts) {
          stop = true;
          t.end(tk, 0);
          break;
        }
        if (t.associate(handle_for(n, iface), XFP_LAYER_INBOUND, callout, c) == 0) associated[c] = 1;
      } else {
        (void)t.remove(handle_for(n, iface), XFP_LAYER_INBOUND, callout);
      }
      t.end(tk, rng() % 50 == 0 ? XFP_TCP_FIN : 0);
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back(worker, i);
  threads.emplace_back([&] {
    uint64_t k = 0;
    while (!stop.load()) {
      t.expire(++k * 1000000);
      t.flush();
      if (k % 16 == 0) t.end_iface(1 + k % 3);
      std::this_thread::yield();
    }
  });
  for (auto& th : threads) th.join();
  t.end_all();
  size_t bad = 0, delivered = 0;
  for (size_t c = 1; c <= kContexts; ++c) {
    const uint32_t want = associated[c].load();
    const uint32_t got = sink.counts[c].load();
    delivered += got;
    if (got != want) ++bad;
  }
  EXPECT_EQ(bad, 0u) << "contexts deleted other than exactly once";
  EXPECT_GT(delivered, 1000u);
  EXPECT_EQ(t.stats().contexts, 0u);
  EXPECT_EQ(t.size(), 0u);
}

// 1,000,000 flows tracked with one context each, then 500,000 more: memory
// stays under the configured bound, eviction and shutdown call flow_delete
// exactly once per context.
TEST(FlowTable, MillionFlowsStayInTheBoundAndDeleteEachContextOnce) {
  class CountingSink final : public FlowDeleteSink {
   public:
    explicit CountingSink(size_t n) : counts(n, 0) {}
    bool deliver(const FlowEnd& e) noexcept override {
      ++counts[e.context];  // one thread here
      ++total;
      return true;
    }
    std::vector<uint8_t> counts;
    size_t total = 0;
  };
  constexpr uint32_t kMax = 1000000;
  constexpr uint32_t kFlows = 1500000;
  CountingSink sink(kFlows + 1);
  const auto start = std::chrono::steady_clock::now();
  const size_t heap_before = ::mallinfo2().uordblks;
  FlowTableOptions o;
  o.max_flows = kMax;
  o.idle_timeout_ns = 3600 * kSec;
  FlowTable t(o, sink);
  for (uint32_t n = 1; n <= kFlows; ++n) {
    const uint64_t h = handle_for(n);
    FlowTicket tk = t.begin(h, key_for(n), n);
    ASSERT_TRUE(tk.valid());
    ASSERT_EQ(t.associate(h, XFP_LAYER_INBOUND, 7, n), 0);
    t.end(tk, 0);
    if (n == kMax) {
      const size_t bytes = t.memory_bytes();
      const size_t heap = ::mallinfo2().uordblks - heap_before;
      std::printf("[ FIGURES  ] %u flows, 1 context each: table %zu bytes (%.1f per flow), heap growth %zu bytes, "
                  "bound %zu bytes\n",
                  kMax, bytes, double(bytes) / kMax, heap, t.memory_bound(kMax));
    }
  }
  EXPECT_EQ(t.size(), kMax);
  const size_t bound = t.memory_bound(kMax);
  EXPECT_LE(t.memory_bytes(), bound);
  EXPECT_LE(::mallinfo2().uordblks - heap_before, bound + bound / 20) << "what malloc sees agrees";
  EXPECT_LE(double(t.memory_bytes()) / kMax, 160.0) << "bytes per flow with one context";
  EXPECT_EQ(sink.total, kFlows - kMax) << "each eviction deleted its context";
  EXPECT_EQ(t.stats().ended[static_cast<int>(FlowEndReason::Evicted)], kFlows - kMax);
  t.end_all();
  EXPECT_EQ(sink.total, size_t{kFlows});
  size_t wrong = 0;
  for (uint32_t n = 1; n <= kFlows; ++n) wrong += sink.counts[n] != 1;
  EXPECT_EQ(wrong, 0u) << "contexts not deleted exactly once";
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ FIGURES  ] %u flows through a %u-flow table and shut down in %.2f s\n", kFlows, kMax, secs);
}

}  // namespace
}  // namespace xfp
