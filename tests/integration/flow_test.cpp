// Flows on a real veth pair with XDP and AF_XDP (issue 4): the flow probe
// plugin (tests/integration/flow_plugin) associates contexts on the first
// frame of each flow; a callout conditional on flow is called only for the
// flows carrying its context; flow_delete runs exactly once per context when
// the flow ends by TCP FIN, by RST, by idle timeout, when the plugin unloads
// and when the interface is detached; an offloaded flow's later frames are
// decided in the kernel (the worker sees no more of them, the entry's
// counters rise). "peer" sends, "xfp" has xfp attached.
#include <dlfcn.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "integration/flow_plugin/flow_probe.h"
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
#include "xfp/flow_key.h"
#include "xfp/policy_snapshot.hpp"

namespace xfp {
namespace {

using namespace std::chrono_literals;
using test::Frame;
using test::FrameBuilder;
using test::has_marker;
using test::Mac;
using test::NetNs;
using test::PacketSocket;
using test::ScopedNetnsEnter;
using test::VethOptions;
using test::VethPair;

constexpr Mac kPeerMac{0x02, 0x00, 0x00, 0x00, 0xfa, 0x01};
constexpr Mac kXfpMac{0x02, 0x00, 0x00, 0x00, 0xfb, 0x01};
constexpr uint8_t kSyn = 0x02, kAck = 0x10, kFin = 0x01, kRst = 0x04;

const std::string kFlowProbe = XFP_TEST_FLOW_PROBE_PATH;

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 3000ms) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

// The test's own reference to the plugin library: its counters stay
// readable after the host has unloaded it.
class FlowProbe {
 public:
  FlowProbe() : handle_(::dlopen(kFlowProbe.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    EXPECT_NE(handle_, nullptr) << ::dlerror();
  }
  ~FlowProbe() {
    if (handle_) ::dlclose(handle_);
  }
  template <typename Fn>
  Fn fn(const char* name) const {
    return handle_ ? reinterpret_cast<Fn>(::dlsym(handle_, name)) : nullptr;
  }
  flowp_stats stats() const {
    flowp_stats s{};
    if (auto f = fn<flowp_stats_fn>("flowp_stats")) f(&s);
    return s;
  }
  uint32_t deletes_of(uint64_t context) const {
    auto f = fn<flowp_delete_count_fn>("flowp_delete_count");
    return f ? f(context) : 0;
  }
  uint64_t context_of(uint64_t handle, bool conditional) const {
    auto f = fn<flowp_context_of_fn>("flowp_context_of");
    return f ? f(handle, conditional ? 1 : 0) : 0;
  }

 private:
  void* handle_;
};

// A TCP segment from the peer (port `sport`) to the xfp side, marked.
Frame tcp(uint16_t sport, uint8_t flags, uint32_t seq) {
  test::Ipv4Options ip;
  ip.src = {198, 18, 7, 1};
  ip.dst = {198, 18, 7, 2};
  ip.protocol = 6;
  uint8_t h[20] = {};
  h[0] = static_cast<uint8_t>(sport >> 8);
  h[1] = static_cast<uint8_t>(sport);
  h[2] = 0;
  h[3] = 80;
  h[12] = 0x50;  // data offset 5 words
  h[13] = flags;
  return FrameBuilder().dst(kXfpMac).src(kPeerMac).ipv4(ip).payload(std::span<const uint8_t>(h, 20)).marker(seq).build();
}

// The flow handle the kernel computes for a frame arriving on `iface`.
uint64_t handle_of(const Frame& f, uint32_t iface) {
  xfp_flow_key k;
  xfp_flow_info info;
  if (!xfp_flow_key_from_frame(f.data(), f.data() + f.size(), iface, &k, &info)) return 0;
  return xfp_flow_handle(&k);
}

Filter callout_filter(const std::string& name, Action action, const std::string& key, uint64_t weight) {
  Filter f;
  f.name = name;
  f.layer = Layer::Inbound;
  f.action = action;
  f.callout = key;
  f.weight = weight;
  f.conditions = {Condition{Field::EtherType, Match::Equal, 0x0800, 0, ~0ull}};
  return f;
}

class FlowTest : public ::testing::Test, protected test::PeerPair {
 protected:
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    XFP_ASSERT_OK(create_peer_pair(kPeerMac, kXfpMac));
  }

  // The runtime with these flow options, the plugin loaded, the two filters:
  // the conditional callout first (it continues), then the main one.
  void start(uint64_t idle_ms = 60000, const std::string& config = "") {
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    XFP_ASSERT_OK(inside);
    auto dp = Datapath::open();
    XFP_ASSERT_OK(dp);
    dp_ = std::move(dp).value();
    CalloutRuntimeOptions o;
    o.flows.idle_timeout_ns = idle_ms * 1000000ull;
    o.flows.max_flows = 1024;
    runtime_ = std::make_unique<CalloutRuntime>(*dp_, o);
    AttachOptions ao;
    ao.mode = XdpMode::Generic;
    ao.outbound = false;
    XFP_ASSERT_OK(dp_->attach(pair_->b().name, ao));
    for (const Attachment& a : dp_->attachments()) attachment_ = a;
    XFP_ASSERT_OK(runtime_->attach(attachment_));
    auto r = runtime_->host().load(kFlowProbe, config);
    ASSERT_TRUE(r.ok()) << r.error().message;
    install({callout_filter("cond", Action::CalloutInspection, FLOWP_COND_KEY, 20),
             callout_filter("main", Action::CalloutTerminating, FLOWP_KEY, 10)});
  }

  void install(const std::vector<Filter>& filters) {
    for (const Filter& f : filters) ASSERT_TRUE(set_.add_filter(f).ok()) << f.name;
    auto compiled = compile(set_, {}, runtime_->host().id_fn());
    XFP_ASSERT_OK(compiled);
    auto snap = PolicySnapshot::create(set_, *compiled, dp_->generation() + 1);
    XFP_ASSERT_OK(snap);
    runtime_->prepare(**snap);
    XFP_ASSERT_OK(dp_->install(*compiled));
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

  // Sends and waits until the worker has seen `frames` frames in all.
  void send(const std::vector<Frame>& frames, uint64_t worker_total) {
    ASSERT_TRUE(peer_sock_->send_frames(frames).ok());
    EXPECT_TRUE(eventually([&] { return worker_frames() >= worker_total; }))
        << "worker saw " << worker_frames() << " of " << worker_total;
  }

  uint64_t worker_frames() const {
    uint64_t n = 0;
    for (const WorkerStatus& w : runtime_->workers()) n += w.frames;
    return n;
  }

  std::unique_ptr<Datapath> dp_;
  std::unique_ptr<CalloutRuntime> runtime_;
  Attachment attachment_;
  FilterSet set_;
};

TEST_F(FlowTest, ContextsAreAssociatedAndTheConditionalCalloutSeesOnlyFlowsCarryingItsContext) {
  FlowProbe probe;
  start();
  // Three flows, three frames each.
  std::vector<Frame> frames;
  for (uint32_t i = 0; i < 9; ++i) frames.push_back(tcp(static_cast<uint16_t>(40000 + i % 3), kAck, i));
  send(frames, frames.size());
  ASSERT_TRUE(eventually([&] { return probe.stats().classified == frames.size(); }));
  flowp_stats s = probe.stats();
  EXPECT_EQ(s.associated, 3u) << "last error " << s.last_associate_error;
  EXPECT_EQ(s.associate_failed, 0u);
  EXPECT_EQ(s.eexist, 3u) << "associating over an existing context is refused";
  EXPECT_EQ(s.with_context, 6u) << "frames 2 and 3 of each flow carry the main context";
  EXPECT_EQ(s.cond_classified, 6u) << "the conditional callout is skipped on each flow's first frame";
  EXPECT_EQ(s.cond_without_context, 0u);
  EXPECT_EQ(runtime_->flows().table().size(), 3u);
  const uint64_t h = handle_of(frames[0], attachment_.key);
  FlowSnapshot snap;
  ASSERT_TRUE(runtime_->flows().table().snapshot(h, snap)) << "the kernel's handle is the table's";
  EXPECT_EQ(snap.contexts.size(), 2u);
  EXPECT_EQ(s.deletes, 0u);
  // Every frame was permitted by the main callout.
  EXPECT_EQ(runtime_->workers()[0].permitted, frames.size());
}

TEST_F(FlowTest, FinAndRstEndTheFlowAndDeleteEachContextOnce) {
  FlowProbe probe;
  start();
  const Frame fin_flow = tcp(41000, kSyn, 0), rst_flow = tcp(41001, kSyn, 1), live = tcp(41002, kSyn, 2);
  send({fin_flow, rst_flow, live}, 3);
  ASSERT_TRUE(eventually([&] { return probe.stats().associated == 3; }));
  const uint64_t hf = handle_of(fin_flow, attachment_.key), hr = handle_of(rst_flow, attachment_.key);
  const uint64_t cf = probe.context_of(hf, false), cr = probe.context_of(hr, false);
  ASSERT_NE(cf, 0u);
  ASSERT_NE(cr, 0u);
  send({tcp(41000, kFin | kAck, 3), tcp(41001, kRst, 4)}, 5);
  ASSERT_TRUE(eventually([&] { return probe.stats().deletes == 4; })) << probe.stats().deletes;
  EXPECT_EQ(probe.deletes_of(cf), 1u);
  EXPECT_EQ(probe.deletes_of(probe.context_of(hf, true)), 1u);
  EXPECT_EQ(probe.deletes_of(cr), 1u);
  EXPECT_EQ(probe.deletes_of(probe.context_of(hr, true)), 1u);
  EXPECT_EQ(runtime_->flows().table().size(), 1u) << "only the live flow is left";
  auto st = runtime_->flows().table().stats();
  EXPECT_EQ(st.ended[static_cast<int>(FlowEndReason::TcpFin)], 1u);
  EXPECT_EQ(st.ended[static_cast<int>(FlowEndReason::TcpRst)], 1u);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(probe.stats().deletes, 4u) << "never twice";
}

TEST_F(FlowTest, IdleFlowsEndAfterTheTimeout) {
  FlowProbe probe;
  start(/*idle_ms=*/300);
  send({tcp(42000, kSyn, 0)}, 1);
  ASSERT_TRUE(eventually([&] { return probe.stats().associated == 1; }));
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return probe.stats().deletes == 2; }, 3000ms));
  const auto took = std::chrono::steady_clock::now() - sent;
  EXPECT_GE(took, 250ms) << "not before the timeout";
  EXPECT_EQ(runtime_->flows().table().size(), 0u);
  EXPECT_EQ(runtime_->flows().table().stats().ended[static_cast<int>(FlowEndReason::Idle)], 1u);
}

TEST_F(FlowTest, UnloadingThePluginDeletesItsContextsBeforeFini) {
  FlowProbe probe;
  start();
  send({tcp(43000, kSyn, 0), tcp(43001, kSyn, 1)}, 2);
  ASSERT_TRUE(eventually([&] { return probe.stats().associated == 2; }));
  {
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    XFP_ASSERT_OK(runtime_->host().unload("flow_probe"));
  }
  flowp_stats s = probe.stats();
  EXPECT_EQ(s.finis, 1u);
  EXPECT_EQ(s.deletes_at_fini, 4u) << "every context's flow_delete ran before fini";
  EXPECT_EQ(s.deletes, 4u);
  EXPECT_EQ(runtime_->flows().table().stats().contexts, 0u);
  EXPECT_EQ(runtime_->flows().table().size(), 2u) << "the flows themselves go on";
}

TEST_F(FlowTest, DetachingTheInterfaceEndsItsFlows) {
  FlowProbe probe;
  start();
  send({tcp(44000, kSyn, 0), tcp(44001, kSyn, 1), tcp(44002, kSyn, 2)}, 3);
  ASSERT_TRUE(eventually([&] { return probe.stats().associated == 3; }));
  {
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    runtime_->detach(attachment_.key);
  }
  EXPECT_EQ(probe.stats().deletes, 6u);
  EXPECT_EQ(runtime_->flows().table().size(), 0u);
  for (uint32_t n = 0; n < 3; ++n) {
    EXPECT_EQ(probe.deletes_of(FLOWP_MAIN_CONTEXT + n), 1u);
    EXPECT_EQ(probe.deletes_of(FLOWP_COND_CONTEXT + n), 1u);
  }
}

TEST_F(FlowTest, RemovingAContextFromAPluginThreadDeletesItOnce) {
  FlowProbe probe;
  start();
  const Frame f = tcp(45000, kSyn, 0);
  send({f}, 1);
  ASSERT_TRUE(eventually([&] { return probe.stats().associated == 1; }));
  auto remove = probe.fn<flowp_remove_fn>("flowp_remove");
  ASSERT_NE(remove, nullptr);
  const uint64_t h = handle_of(f, attachment_.key);
  EXPECT_EQ(remove(h), 0);
  EXPECT_EQ(remove(h), -ENOENT);
  ASSERT_TRUE(eventually([&] { return probe.stats().deletes == 1; }));
  EXPECT_EQ(probe.deletes_of(probe.context_of(h, false)), 1u);
  // Daemon shutdown ends the rest (the conditional callout's context).
  {
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    runtime_.reset();
  }
  EXPECT_EQ(probe.stats().deletes, 2u);
  EXPECT_EQ(probe.deletes_of(probe.context_of(h, true)), 1u);
}

TEST_F(FlowTest, AnOffloadedFlowIsDecidedInTheKernelUntilItsFin) {
  FlowProbe probe;
  start(60000, "offload=permit");
  // Frame 0 associates, frame 1 carries the context and offloads the permit.
  send({tcp(46000, kAck, 0), tcp(46000, kAck, 1)}, 2);
  ASSERT_TRUE(eventually([&] { return runtime_->flows().offloads().size() == 1; }))
      << "offload error " << probe.stats().last_offload_error;
  xfp_flow_key key;
  xfp_flow_info info;
  const Frame first = tcp(46000, kAck, 0);
  ASSERT_TRUE(xfp_flow_key_from_frame(first.data(), first.data() + first.size(), attachment_.key, &key, &info));
  // 20 more frames: decided in XDP, delivered to the stack, never punted.
  std::vector<Frame> more;
  for (uint32_t i = 2; i < 22; ++i) more.push_back(tcp(46000, kAck, i));
  xfp_sock_->drain();
  ASSERT_TRUE(peer_sock_->send_frames(more).ok());
  auto got = xfp_sock_->receive(2000ms, has_marker, more.size());
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->size(), more.size()) << "permitted in the kernel";
  EXPECT_EQ(worker_frames(), 2u) << "user space saw none of them";
  auto entry = dp_->read_offload(key, Layer::Inbound);
  ASSERT_TRUE(entry.ok()) << entry.error().message;
  EXPECT_EQ(entry->packets, more.size()) << "the entry's counters rise";
  EXPECT_GT(entry->bytes, 0u);
  // Another flow is still punted.
  send({tcp(46001, kAck, 40)}, 3);
  // The FIN is classified (punted): the flow ends, its contexts are deleted,
  // the kernel entry goes.
  send({tcp(46000, kFin | kAck, 41)}, 4);
  ASSERT_TRUE(eventually([&] { return probe.stats().deletes == 2; }));
  EXPECT_TRUE(eventually([&] { return !dp_->read_offload(key, Layer::Inbound).ok(); }));
  EXPECT_TRUE(runtime_->flows().offloads().empty());
}

TEST_F(FlowTest, APolicyChangeKeepsAnOffloadItAgreesWithAndDropsOneItChanges) {
  FlowProbe probe;
  start(60000, "offload=permit");
  send({tcp(47000, kAck, 0), tcp(47000, kAck, 1)}, 2);
  ASSERT_TRUE(eventually([&] { return runtime_->flows().offloads().size() == 1; }));
  // An unrelated filter: the permit holds, the entry is re-stamped.
  Filter arp;
  arp.layer = Layer::Inbound;
  arp.action = Action::Block;
  arp.weight = 30;
  arp.conditions = {Condition{Field::EtherType, Match::Equal, 0x0806, 0, ~0ull}};
  {
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    install({arp});
  }
  EXPECT_EQ(runtime_->flows().offloads().size(), 1u);
  send({tcp(47000, kAck, 2)}, 2);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(worker_frames(), 2u) << "still decided in the kernel under the new generation";
  // A block above the callout: the decision changes, the entry is dropped
  // and the kernel blocks the flow's frames by the filter.
  Filter block = arp;
  block.conditions = {Condition{Field::EtherType, Match::Equal, 0x0800, 0, ~0ull}};
  {
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    install({block});
  }
  EXPECT_TRUE(runtime_->flows().offloads().empty());
  xfp_sock_->drain();
  ASSERT_TRUE(peer_sock_->send_frames({tcp(47000, kAck, 3)}).ok());
  auto got = xfp_sock_->receive(300ms, has_marker);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty()) << "blocked, not permitted by a stale offload";
}

}  // namespace
}  // namespace xfp
