// The flow service's offload bookkeeping against a fake kernel map: an
// offload request is written only when the frame's arbitration agrees; a new
// policy generation re-stamps the entries whose decision it keeps and drops
// the others after the install; the kernel's last-seen keeps an offloaded
// flow alive and its FIN flag ends it; a flow that ends, flow_offload_remove
// and the callout's retirement take the entry back. And the context rules
// through the service: no flow_delete hook, a callout out of service.
#include "xfp/flow_service_impl.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "xfp/compiler.hpp"
#include "xfp/filter_set.hpp"
#include "xfp/flow_key.h"
#include "xfp/punt_worker.hpp"

namespace xfp {
namespace {

constexpr uint64_t kSec = 1000000000ull;

class FakeOffloads final : public OffloadBackend {
 public:
  Status offload(const xfp_offload_key& key, uint8_t verdict, uint32_t generation) override {
    std::lock_guard lock(mu);
    xfp_offload v{};
    v.verdict = verdict;
    v.gen_first = v.gen_last = generation;
    entries[bytes(key)] = v;
    return Ok{};
  }
  Status revalidate(uint64_t next, const std::function<bool(const xfp_offload_key&)>& keep) override {
    std::lock_guard lock(mu);
    const auto gen = static_cast<uint32_t>(next);
    for (auto& [k, v] : entries) {
      xfp_offload_key key;
      std::memcpy(&key, k.data(), sizeof key);
      if (keep(key)) v.gen_last = gen;
      else if (v.gen_last - v.gen_first >= gen - v.gen_first) v.gen_last = gen - 1;
    }
    return Ok{};
  }
  Status remove(const xfp_offload_key& key) override {
    std::lock_guard lock(mu);
    return entries.erase(bytes(key)) ? Status{} : Status{make_error(ENOENT, "no entry")};
  }
  Status read_all(const std::function<void(const xfp_offload_key&, const xfp_offload&)>& fn) override {
    std::lock_guard lock(mu);
    for (auto& [k, v] : entries) {
      xfp_offload_key key;
      std::memcpy(&key, k.data(), sizeof key);
      fn(key, v);
    }
    return Ok{};
  }
  static std::string bytes(const xfp_offload_key& k) { return std::string(reinterpret_cast<const char*>(&k), sizeof k); }
  xfp_offload* find(const xfp_flow_key& flow, uint8_t layer) {
    xfp_offload_key k{};
    k.flow = flow;
    k.layer = layer;
    auto it = entries.find(bytes(k));
    return it == entries.end() ? nullptr : &it->second;
  }

  std::mutex mu;
  std::map<std::string, xfp_offload> entries;
};

xfp_flow_key key_for(uint32_t n) {
  xfp_flow_key k{};
  k.iface = 1;
  k.ethertype = 0x88b5;
  k.mac_a[5] = static_cast<uint8_t>(n);
  k.mac_b[5] = 0xff;
  return k;
}

uint64_t handle_for(uint32_t n) {
  xfp_flow_key k = key_for(n);
  return xfp_flow_handle(&k);
}

int deletes = 0;
void count_delete(void*, uint8_t, uint64_t, uint64_t) { ++deletes; }

class FlowServiceTest : public ::testing::Test {
 protected:
  FlowServiceTest() : service_(host_, options(), &kernel_) {
    callout_.key = "xfp.test.offloader";
    callout_.id = host_.id_of(callout_.key);
    callout_.flow_delete = count_delete;
    deletes = 0;
  }
  ~FlowServiceTest() override { service_.end_all(); }

  static FlowTableOptions options() {
    FlowTableOptions o;
    o.max_flows = 64;
    o.idle_timeout_ns = 10 * kSec;
    return o;
  }

  // A policy: the offloader's filter for EtherType 0x88b5, plus `extra`.
  std::shared_ptr<const PolicySnapshot> policy(std::vector<Filter> extra, uint64_t generation) {
    FilterSet set;
    Filter f;
    f.name = "offloader";
    f.layer = Layer::Inbound;
    f.action = Action::CalloutTerminating;
    f.callout = callout_.key;
    f.weight = 10;
    f.conditions = {Condition{Field::EtherType, Match::Equal, 0x88b5, 0, ~0ull}};
    EXPECT_TRUE(set.add_filter(f).ok());
    for (const Filter& e : extra) EXPECT_TRUE(set.add_filter(e).ok());
    auto compiled = compile(set, {}, host_.id_fn());
    EXPECT_TRUE(compiled.ok());
    auto snap = PolicySnapshot::create(set, *compiled, generation);
    EXPECT_TRUE(snap.ok());
    return std::move(snap).value();
  }

  xfp_fields fields() const {
    xfp_fields f{};
    f.ethertype = 0x88b5;
    f.layer = XFP_LAYER_INBOUND;
    return f;
  }

  // One frame of flow n whose callout asks to offload `verdict` and whose
  // arbitration ends with `action`.
  int frame(uint32_t n, uint32_t verdict, Action action, uint64_t generation, uint64_t at = 0) {
    const uint64_t now = base_ + at;
    PuntFrameInfo info{};
    info.meta.layer = XFP_LAYER_INBOUND;
    info.meta.flow_handle = handle_for(n);
    info.flow = service_.table().begin(handle_for(n), key_for(n), now);
    xfp_classify_item item{};
    item.meta = &info.meta;
    item.action_right = 1;
    const int r = service_.offload(callout_, &item, verdict);
    if (info.offload_verdict)
      service_.complete_offload(handle_for(n), key_for(n), XFP_LAYER_INBOUND, info.offload_callout,
                                info.offload_verdict, action, fields(), generation);
    service_.table().end(info.flow, 0);
    return r;
  }

  // Times are offsets from the real clock: the service's own sweeper runs
  // too (every second here) and must find nothing idle.
  const uint64_t base_ = FlowServiceImpl::now_ns();
  CalloutHost host_;
  FakeOffloads kernel_;
  FlowServiceImpl service_;
  RegisteredCallout callout_;
};

TEST_F(FlowServiceTest, OffloadIsWrittenOnlyWhenTheFramesDecisionAgrees) {
  EXPECT_EQ(frame(1, XFP_FLOW_VERDICT_PERMIT, Action::Permit, 1), 0);
  ASSERT_NE(kernel_.find(key_for(1), XFP_LAYER_INBOUND), nullptr);
  EXPECT_EQ(kernel_.find(key_for(1), XFP_LAYER_INBOUND)->verdict, XFP_OFFLOAD_PERMIT);
  // A later sublayer blocked the frame: no entry.
  EXPECT_EQ(frame(2, XFP_FLOW_VERDICT_PERMIT, Action::Block, 1), 0);
  EXPECT_EQ(kernel_.find(key_for(2), XFP_LAYER_INBOUND), nullptr);
  EXPECT_EQ(service_.stats().offloads_mismatch, 1u);
  // Errors the ABI names.
  PuntFrameInfo info{};
  xfp_classify_item item{};
  item.meta = &info.meta;
  item.action_right = 1;
  EXPECT_EQ(service_.offload(callout_, &item, XFP_FLOW_VERDICT_PERMIT), -ENOENT) << "no flow";
  EXPECT_EQ(service_.offload(callout_, &item, 9), -EINVAL);
  EXPECT_EQ(service_.offload(callout_, &item, XFP_FLOW_VERDICT_REDIRECT), -EINVAL) << "redirect_flow's business";
  info.meta.flow_handle = handle_for(3);
  info.flow = service_.table().begin(handle_for(3), key_for(3), 1);
  item.action_right = 0;
  EXPECT_EQ(service_.offload(callout_, &item, XFP_FLOW_VERDICT_BLOCK), -EPERM) << "no action right";
  service_.table().end(info.flow, 0);
  EXPECT_EQ(service_.offloads().size(), 1u);
}

TEST_F(FlowServiceTest, ANewGenerationRestampsWhatItKeepsAndDropsTheRest) {
  ASSERT_EQ(frame(1, XFP_FLOW_VERDICT_PERMIT, Action::Permit, 1), 0);
  ASSERT_EQ(frame(2, XFP_FLOW_VERDICT_BLOCK, Action::Block, 1), 0);
  // Generation 2 adds an unrelated filter: both decisions hold.
  Filter other;
  other.layer = Layer::Inbound;
  other.action = Action::Block;
  other.weight = 5;
  other.conditions = {Condition{Field::EtherType, Match::Equal, 0x0806, 0, ~0ull}};
  service_.prepare_generation(*policy({other}, 2));
  EXPECT_EQ(kernel_.find(key_for(1), XFP_LAYER_INBOUND)->gen_last, 2u);
  EXPECT_EQ(kernel_.find(key_for(2), XFP_LAYER_INBOUND)->gen_last, 2u);
  service_.generation_installed(2);
  EXPECT_EQ(service_.offloads().size(), 2u);
  // Generation 3: a block weighing more than the callout's filter decides
  // 0x88b5 first: the permit would change (dropped), the block stays.
  Filter block;
  block.layer = Layer::Inbound;
  block.action = Action::Block;
  block.weight = 100;
  block.conditions = {Condition{Field::EtherType, Match::Equal, 0x88b5, 0, ~0ull}};
  service_.prepare_generation(*policy({block}, 3));
  EXPECT_EQ(kernel_.find(key_for(1), XFP_LAYER_INBOUND)->gen_last, 2u) << "left to turn stale at the flip";
  EXPECT_EQ(kernel_.find(key_for(2), XFP_LAYER_INBOUND)->gen_last, 3u);
  // The install failed: generation 3 never came. Generation 3 again, now
  // without the block: the permit is re-stamped, and the earlier stamp of a
  // dropped entry was undone in between.
  service_.prepare_generation(*policy({}, 3));
  EXPECT_EQ(kernel_.find(key_for(1), XFP_LAYER_INBOUND)->gen_last, 3u);
  service_.prepare_generation(*policy({block}, 3));
  EXPECT_EQ(kernel_.find(key_for(1), XFP_LAYER_INBOUND)->gen_last, 2u) << "back to the confirmed generation";
  service_.generation_installed(3);
  EXPECT_EQ(kernel_.find(key_for(1), XFP_LAYER_INBOUND), nullptr) << "dropped: the flow is punted again";
  ASSERT_NE(kernel_.find(key_for(2), XFP_LAYER_INBOUND), nullptr);
  EXPECT_EQ(service_.stats().offloads_dropped, 1u);
  FlowSnapshot snap;
  ASSERT_TRUE(service_.table().snapshot(handle_for(1), snap));
  EXPECT_FALSE(snap.offloaded);
}

TEST_F(FlowServiceTest, KernelLastSeenKeepsAnOffloadedFlowAliveAndItsFinEndsIt) {
  ASSERT_EQ(frame(1, XFP_FLOW_VERDICT_PERMIT, Action::Permit, 1), 0);
  ASSERT_EQ(frame(2, XFP_FLOW_VERDICT_PERMIT, Action::Permit, 1), 0);
  kernel_.find(key_for(1), XFP_LAYER_INBOUND)->last_seen_ns = base_ + 20 * kSec;
  kernel_.find(key_for(1), XFP_LAYER_INBOUND)->packets = 7;
  service_.sweep(base_ + 25 * kSec);
  EXPECT_EQ(service_.table().size(), 1u) << "flow 2 idled out, flow 1 is seen by the kernel";
  EXPECT_EQ(kernel_.find(key_for(2), XFP_LAYER_INBOUND), nullptr) << "its entry went with it";
  ASSERT_EQ(service_.offloads().size(), 1u);
  EXPECT_EQ(service_.offloads()[0].packets, 7u);
  kernel_.find(key_for(1), XFP_LAYER_INBOUND)->flags = XFP_OFFLOAD_FIN_SEEN;
  service_.sweep(base_ + 26 * kSec);
  EXPECT_EQ(service_.table().size(), 0u);
  EXPECT_TRUE(kernel_.entries.empty());
  EXPECT_EQ(service_.table().stats().ended[static_cast<int>(FlowEndReason::TcpFin)], 1u);
}

TEST_F(FlowServiceTest, OffloadRemoveAndRetirementTakeTheEntriesBack) {
  ASSERT_EQ(frame(1, XFP_FLOW_VERDICT_PERMIT, Action::Permit, 1), 0);
  ASSERT_EQ(frame(2, XFP_FLOW_VERDICT_PERMIT, Action::Permit, 1), 0);
  EXPECT_EQ(service_.offload_remove(handle_for(1), XFP_LAYER_INBOUND), 0);
  EXPECT_EQ(service_.offload_remove(handle_for(1), XFP_LAYER_INBOUND), -ENOENT);
  EXPECT_EQ(kernel_.find(key_for(1), XFP_LAYER_INBOUND), nullptr);
  service_.retire_callout(callout_);
  EXPECT_TRUE(kernel_.entries.empty());
  EXPECT_TRUE(service_.offloads().empty());
}

TEST_F(FlowServiceTest, ContextsNeedAFlowDeleteHookAndACalloutInService) {
  frame(1, XFP_FLOW_VERDICT_PERMIT, Action::Block, 1);
  RegisteredCallout no_hook = callout_;
  no_hook.flow_delete = nullptr;
  EXPECT_EQ(service_.associate_context(no_hook, handle_for(1), XFP_LAYER_INBOUND, 5), -EINVAL);
  // callout_ is not published by the host (no plugin serves it): refused.
  EXPECT_EQ(service_.associate_context(callout_, handle_for(1), XFP_LAYER_INBOUND, 5), -EINVAL);
  EXPECT_EQ(service_.remove_context(callout_, handle_for(1), XFP_LAYER_INBOUND), -ENOENT);
}

}  // namespace
}  // namespace xfp
