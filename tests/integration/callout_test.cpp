// The callout path on real veth pairs and AF_XDP sockets: frames that match
// a callout filter are punted by the XDP program to a worker, classified by
// a plugin, and permitted ones reach the host stack on their interface
// (through the receive-injection veth). Two test namespaces joined by a
// veth: "peer" sends, "xfp" has xfp attached. Everything that touches
// interfaces runs inside the xfp namespace (ScopedNetnsEnter).
#include <dlfcn.h>
#include <net/if.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "integration/probe_plugin/probe.h"
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
using test::find_marker;
using test::Frame;
using test::FrameBuilder;
using test::has_marker;
using test::Mac;
using test::NetNs;
using test::PacketSocket;
using test::ScopedNetnsEnter;
using test::VethOptions;
using test::VethPair;

constexpr Mac kPeerMac{0x02, 0x00, 0x00, 0x00, 0xca, 0x01};
constexpr Mac kXfpMac{0x02, 0x00, 0x00, 0x00, 0xcb, 0x01};
constexpr Mac kGoodMac{0x02, 0x00, 0x00, 0x60, 0x0d, 0x02};
constexpr Mac kBadMac{0x02, 0x00, 0x00, 0xba, 0xd0, 0x02};
constexpr uint16_t kMarked = 0x88b5;

const std::string kProbe = XFP_TEST_PROBE_PATH;
const std::string kAllowList = std::string(XFP_SAMPLE_PLUGIN_DIR) + "/libxfp_mac_allowlist.so";

std::string mac_text(const Mac& m) {
  char b[18];
  std::snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return b;
}

// Waits until `done` holds (true) or the time is up (false).
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 2000ms) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

// The probe plugin's counters, read through its exported hook.
probe_stats read_probe() {
  probe_stats s{};
  void* h = ::dlopen(kProbe.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (!h) {
    ADD_FAILURE() << "the probe plugin is not loaded";
    return s;
  }
  auto fn = reinterpret_cast<probe_stats_fn>(::dlsym(h, "probe_stats"));
  if (fn) fn(&s);
  ::dlclose(h);
  return s;
}

template <typename Fn>
Fn probe_hook(const char* name) {
  void* h = ::dlopen(kProbe.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (!h) return nullptr;
  auto fn = reinterpret_cast<Fn>(::dlsym(h, name));
  ::dlclose(h);  // the host keeps its own reference
  return fn;
}

Filter callout_filter(const std::string& name, Action action, const std::string& key, uint64_t weight = 10,
                      uint32_t flags = 0) {
  Filter f;
  f.name = name;
  f.layer = Layer::Inbound;
  f.action = action;
  f.callout = key;
  f.weight = weight;
  f.flags = flags;
  f.conditions = {Condition{Field::EtherType, Match::Equal, kMarked, 0, ~0ull}};
  return f;
}

Filter plain_filter(const std::string& name, Action action, uint64_t weight) {
  Filter f = callout_filter(name, action, "", weight);
  f.callout.clear();
  return f;
}

class CalloutTest : public ::testing::TestWithParam<XdpMode>, protected test::PeerPair {
 protected:
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    XFP_ASSERT_OK(create_peer_pair(kPeerMac, kXfpMac));

    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    XFP_ASSERT_OK(inside);
    auto dp = Datapath::open();
    XFP_ASSERT_OK(dp);
    dp_ = std::move(dp).value();
    runtime_ = std::make_unique<CalloutRuntime>(*dp_);
    AttachOptions ao;
    ao.mode = GetParam();
    ao.outbound = false;
    XFP_ASSERT_OK(dp_->attach(pair_->b().name, ao));
    XFP_ASSERT_OK(runtime_->attach(attachment(pair_->b().name)));
  }

  void TearDown() override {
    if (!xfp_ns_) return;
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    runtime_.reset();
    if (dp_)
      for (const Attachment& a : dp_->attachments()) (void)dp_->detach(a.ifname);
    if (peer_ns_ && peer_dp_attached_) {
      auto p = ScopedNetnsEnter::enter(*peer_ns_);
      (void)dp_->detach(pair_->a().name);
    }
    dp_.reset();
  }

  Attachment attachment(const std::string& ifname) const {
    for (const Attachment& a : dp_->attachments())
      if (a.ifname == ifname) return a;
    ADD_FAILURE() << ifname << " is not attached";
    return {};
  }

  // Compiles with the host's callout ids, installs, publishes the snapshot.
  void install(const std::vector<Filter>& filters) {
    for (const Filter& f : filters) ASSERT_TRUE(set_.add_filter(f).ok()) << f.name;
    auto compiled = compile(set_, {}, runtime_->host().id_fn());
    XFP_ASSERT_OK(compiled);
    XFP_ASSERT_OK(dp_->install(*compiled));
    auto snap = PolicySnapshot::create(set_, *compiled, dp_->generation());
    XFP_ASSERT_OK(snap);
    runtime_->publish(std::move(snap).value());
  }

  void load(const std::string& path, const std::string& config) {
    auto r = runtime_->host().load(path, config);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }

  Frame marked(const Mac& src, uint32_t seq, size_t size = 60) {
    return FrameBuilder().dst(kXfpMac).src(src).ethertype(kMarked).marker(seq).pad_to(size).build();
  }

  // Sends frames from the peer side and returns what the xfp side's stack got.
  std::vector<Frame> exchange(const std::vector<Frame>& frames, size_t expected) {
    xfp_sock_->drain();
    EXPECT_TRUE(peer_sock_->send_frames(frames).ok());
    std::vector<Frame> got;
    if (expected) {
      auto r = xfp_sock_->receive(1500ms, has_marker, expected);
      EXPECT_TRUE(r.ok()) << r.error().message;
      if (r) got = std::move(*r);
    }
    auto more = xfp_sock_->receive(200ms, has_marker);
    if (more) got.insert(got.end(), more->begin(), more->end());
    return got;
  }

  WorkerStatus worker() const {
    auto w = runtime_->workers();
    return w.empty() ? WorkerStatus{} : w[0];
  }

  std::unique_ptr<Datapath> dp_;
  std::unique_ptr<CalloutRuntime> runtime_;
  FilterSet set_;
  bool peer_dp_attached_ = false;
};

TEST_P(CalloutTest, PermittedFramesReachTheStackUnchangedAndBlockedOnesDoNot) {
  load(kAllowList, "allow=" + mac_text(kGoodMac));
  install({callout_filter("allow", Action::CalloutTerminating, "xfp.sample.mac-allowlist")});
  std::vector<Frame> frames;
  std::set<uint32_t> good;
  for (uint32_t i = 0; i < 40; ++i) {
    const bool ok = i % 2 == 0;
    frames.push_back(marked(ok ? kGoodMac : kBadMac, i, i % 5 == 0 ? 1500 : 60));
    if (ok) good.insert(i);
  }
  frames.push_back(FrameBuilder().dst(kXfpMac).src(kGoodMac).vlan(42).ethertype(kMarked).marker(40).build());
  good.insert(40);
  auto got = exchange(frames, good.size());
  std::multiset<uint32_t> seen;
  for (const Frame& f : got) {
    auto seq = find_marker(f);
    ASSERT_TRUE(seq.has_value());
    seen.insert(*seq);
    EXPECT_TRUE(good.count(*seq)) << "blocked frame " << *seq << " arrived";
    EXPECT_EQ(f, frames[*seq]) << "frame " << *seq << " changed on the way";
  }
  for (uint32_t s : good) EXPECT_EQ(seen.count(s), 1u) << "frame " << s;
  // The tagged frame matched too: EtherType is the one after the tags.
  WorkerStatus w = worker();
  EXPECT_EQ(w.permitted, good.size());
  EXPECT_EQ(w.blocked, frames.size() - good.size());
  EXPECT_EQ(dp_->layer_counters(Layer::Inbound).c[XFP_CNT_PUNT], frames.size());
  EXPECT_EQ(dp_->layer_counters(Layer::Inbound).c[XFP_CNT_CALLOUT_FAIL], 0u);
}

TEST_P(CalloutTest, WithoutAServedCalloutTheFailActionAppliesInTheKernel) {
  // No plugin serves the key: fail closed (the default) blocks...
  install({callout_filter("closed", Action::CalloutTerminating, "xfp.test.nobody")});
  auto got = exchange({marked(kGoodMac, 0), marked(kGoodMac, 1)}, 0);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(dp_->layer_counters(Layer::Inbound).c[XFP_CNT_CALLOUT_FAIL], 2u);
  EXPECT_EQ(dp_->layer_counters(Layer::Inbound).c[XFP_CNT_PUNT], 0u);
  // ...and permit-if-callout-unregistered lets frames through, in the kernel.
  set_.flush();
  install({callout_filter("open", Action::CalloutTerminating, "xfp.test.nobody", 10,
                          XFP_FILTER_PERMIT_IF_CALLOUT_UNREGISTERED)});
  got = exchange({marked(kGoodMac, 2), marked(kGoodMac, 3)}, 2);
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(worker().frames, 0u) << "nothing may reach user space";
}

TEST_P(CalloutTest, UnloadingThePluginFallsBackToTheFailAction) {
  load(kProbe, "mode=block");
  install({callout_filter("probe", Action::CalloutTerminating, PROBE_KEY, 10,
                          XFP_FILTER_PERMIT_IF_CALLOUT_UNREGISTERED)});
  EXPECT_TRUE(exchange({marked(kGoodMac, 0)}, 0).empty()) << "the probe blocks";
  EXPECT_EQ(read_probe().classified, 1u);
  XFP_ASSERT_OK(runtime_->host().unload("probe"));
  EXPECT_EQ(exchange({marked(kGoodMac, 1)}, 1).size(), 1u) << "fail open once unloaded";
  EXPECT_EQ(worker().frames, 1u);
}

TEST_P(CalloutTest, AnInspectionCalloutSeesEveryFrameAndTheNextFilterDecides) {
  // The probe permits, but an inspection callout can only continue: the
  // block below it in the same sublayer decides.
  load(kProbe, "mode=permit");
  install({callout_filter("inspect", Action::CalloutInspection, PROBE_KEY, 20),
           plain_filter("block", Action::Block, 10)});
  std::vector<Frame> frames;
  for (uint32_t i = 0; i < 16; ++i) frames.push_back(marked(kGoodMac, i));
  EXPECT_TRUE(exchange(frames, 0).empty());
  EXPECT_TRUE(eventually([&] { return read_probe().classified == frames.size(); }));
  EXPECT_EQ(worker().blocked, frames.size());
}

TEST_P(CalloutTest, AContinueFallsThroughToTheNextSublayerAndFilter) {
  load(kProbe, "mode=continue");
  install({callout_filter("unknown", Action::CalloutUnknown, PROBE_KEY, 20),
           plain_filter("permit", Action::Permit, 10)});
  EXPECT_EQ(exchange({marked(kGoodMac, 0), marked(kBadMac, 1)}, 2).size(), 2u);
  EXPECT_EQ(read_probe().classified, 2u);
  EXPECT_EQ(worker().permitted, 2u);
}

TEST_P(CalloutTest, AbsorbedFramesInjectedIntoTheReceivePathArriveOnceWithACompletionEach) {
  load(kProbe, "mode=absorb-receive");
  install({callout_filter("absorb", Action::CalloutTerminating, PROBE_KEY)});
  std::vector<Frame> frames;
  for (uint32_t i = 0; i < 32; ++i) frames.push_back(marked(kGoodMac, i, 60 + i * 40));
  auto got = exchange(frames, frames.size());
  std::multiset<uint32_t> seen;
  for (const Frame& f : got) {
    auto seq = find_marker(f);
    ASSERT_TRUE(seq.has_value());
    seen.insert(*seq);
    EXPECT_EQ(f, frames[*seq]);
  }
  for (uint32_t i = 0; i < frames.size(); ++i) EXPECT_EQ(seen.count(i), 1u) << "frame " << i;
  EXPECT_TRUE(eventually([&] { return read_probe().completions == frames.size(); }));
  probe_stats s = read_probe();
  EXPECT_EQ(s.injected, frames.size());
  EXPECT_EQ(s.completion_ok, frames.size());
  EXPECT_EQ(s.inject_failed, 0u);
  EXPECT_EQ(worker().absorbed, frames.size());
}

TEST_P(CalloutTest, FramesItInjectsIntoTheSendPathComeBackInjectedBySelfAndDoNotLoop) {
  // xfp on both ends: the probe on the xfp side absorbs each frame and sends
  // it back out; the peer side's inbound layer punts it to the same probe,
  // which sees its own injection and permits. Each frame reaches the peer's
  // stack exactly once.
  {
    auto p = ScopedNetnsEnter::enter(*peer_ns_);
    XFP_ASSERT_OK(p);
    AttachOptions ao;
    ao.mode = GetParam();
    ao.outbound = false;
    XFP_ASSERT_OK(dp_->attach(pair_->a().name, ao));
    peer_dp_attached_ = true;
    XFP_ASSERT_OK(runtime_->attach(attachment(pair_->a().name)));
  }
  load(kProbe, "mode=absorb-send");
  install({callout_filter("reflect", Action::CalloutTerminating, PROBE_KEY)});
  std::vector<Frame> frames;
  for (uint32_t i = 0; i < 20; ++i)
    frames.push_back(FrameBuilder().dst(kXfpMac).src(kPeerMac).ethertype(kMarked).marker(i).build());
  peer_sock_->drain();
  ASSERT_TRUE(peer_sock_->send_frames(frames).ok());
  auto got = peer_sock_->receive(1500ms, has_marker, frames.size());
  ASSERT_TRUE(got.ok());
  auto more = peer_sock_->receive(300ms, has_marker);
  ASSERT_TRUE(more.ok());
  got->insert(got->end(), more->begin(), more->end());
  std::multiset<uint32_t> seen;
  for (const Frame& f : *got)
    if (auto seq = find_marker(f)) seen.insert(*seq);
  for (uint32_t i = 0; i < frames.size(); ++i) EXPECT_EQ(seen.count(i), 1u) << "frame " << i;
  probe_stats s = read_probe();
  EXPECT_EQ(s.classified, 2 * frames.size()) << "each frame once on each side, no loop";
  EXPECT_EQ(s.state[XFP_NOT_INJECTED], frames.size());
  EXPECT_EQ(s.state[XFP_INJECTED_BY_SELF], frames.size());
  EXPECT_EQ(s.last_context, 0x5eedu);
}

TEST_P(CalloutTest, InjectionFromScratchAndItsErrors) {
  load(kProbe, "mode=permit");
  install({callout_filter("probe", Action::CalloutTerminating, PROBE_KEY)});
  auto inject = probe_hook<probe_inject_fn>("probe_inject");
  ASSERT_NE(inject, nullptr);
  const uint32_t iface = attachment(pair_->b().name).key;
  Frame f = marked(kGoodMac, 7);
  xfp_sock_->drain();
  // Not attached: refused at once, no completion, the caller keeps the frame.
  EXPECT_EQ(inject(iface + 100, 0, f.data(), static_cast<uint32_t>(f.size())), XFP_STATUS_NOT_READY);
  // Receive path: the xfp side's stack gets it as if it had arrived.
  EXPECT_EQ(inject(iface, 0, f.data(), static_cast<uint32_t>(f.size())), 0);
  auto got = xfp_sock_->receive(1000ms, has_marker, 1);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0], f);
  // Send path: it leaves on the interface and the peer receives it.
  peer_sock_->drain();
  EXPECT_EQ(inject(iface, 1, f.data(), static_cast<uint32_t>(f.size())), 0);
  got = peer_sock_->receive(1000ms, has_marker, 1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->size(), 1u);
  EXPECT_TRUE(eventually([] { return read_probe().completions == 2; }));
  probe_stats s = read_probe();
  EXPECT_EQ(s.completion_ok, 2u) << "exactly once each, and none for the refused one";
  // A destroyed handle cannot inject.
  probe_hook<probe_destroy_handle_fn>("probe_destroy_handle")();
  EXPECT_EQ(inject(iface, 0, f.data(), static_cast<uint32_t>(f.size())), -EINVAL);
  EXPECT_EQ(read_probe().completions, 2u);
}

INSTANTIATE_TEST_SUITE_P(Modes, CalloutTest, ::testing::Values(XdpMode::Native, XdpMode::Generic),
                         [](const auto& info) { return info.param == XdpMode::Native ? "native" : "generic"; });

}  // namespace
}  // namespace xfp
