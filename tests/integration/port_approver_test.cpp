// Message ports end to end on a veth pair: the mac_allowlist sample in
// approver mode asks a user-mode client (libxfp-client, in a thread of the
// test) about each new source MAC through its port. Frames of the approved
// MAC reach the xfp namespace's stack byte for byte (the ones that waited
// are re-injected), the denied MAC's never do, and a MAC the client leaves
// unanswered gets the default verdict when the timeout passes. Two test
// namespaces: "peer" sends, "xfp" has xfp attached (as callout_test.cpp).
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
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
#include "xfp/port_client.h"
#include "xfp/sample_mac_approval.h"

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

constexpr Mac kPeerMac{0x02, 0x00, 0x00, 0x00, 0xca, 0x05};
constexpr Mac kXfpMac{0x02, 0x00, 0x00, 0x00, 0xcb, 0x05};
constexpr Mac kApproved{0x02, 0x00, 0x00, 0xa9, 0x00, 0x01};
constexpr Mac kDenied{0x02, 0x00, 0x00, 0xde, 0x00, 0x02};
constexpr Mac kSilent{0x02, 0x00, 0x00, 0x51, 0x00, 0x03};  // the approver never answers
constexpr uint16_t kMarked = 0x88b5;

const std::string kAllowList = std::string(XFP_SAMPLE_PLUGIN_DIR) + "/libxfp_mac_allowlist.so";

// A user-mode approver: answers each question by the MAC's verdict in
// `verdicts` (none: no answer, the plugin's send times out).
class Approver {
 public:
  Approver(const std::string& path, std::map<Mac, uint32_t> verdicts) : verdicts_(std::move(verdicts)) {
    char why[256] = "";
    rc_ = xfp_port_connect_ex(path.c_str(), "e2e", 3, &conn_, why, sizeof why);
    reason_ = why;
    if (rc_ == 0) thread_ = std::thread([this] { run(); });
  }
  ~Approver() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    xfp_port_close(conn_);
  }
  int rc() const { return rc_; }
  const std::string& reason() const { return reason_; }
  std::vector<xfp_mac_approval_request> asked() {
    std::lock_guard lk(mu_);
    return asked_;
  }

 private:
  void run() {
    while (!stop_) {
      xfp_mac_approval_request req{};
      size_t len = 0;
      uint64_t id = 0;
      uint32_t flags = 0;
      if (xfp_port_get_message(conn_, &req, sizeof req, &len, &id, &flags, 100) != 0) continue;
      if (len != sizeof req || req.magic != XFP_MAC_APPROVAL_MAGIC) continue;
      {
        std::lock_guard lk(mu_);
        asked_.push_back(req);
      }
      Mac mac;
      std::memcpy(mac.data(), req.mac, 6);
      auto it = verdicts_.find(mac);
      if (it == verdicts_.end() || !(flags & XFP_PORT_F_REPLY_EXPECTED)) continue;
      xfp_mac_approval_verdict v{XFP_MAC_APPROVAL_MAGIC, it->second};
      xfp_port_reply(conn_, id, &v, sizeof v);
    }
  }

  std::map<Mac, uint32_t> verdicts_;
  xfp_port_conn* conn_ = nullptr;
  int rc_ = 0;
  std::string reason_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<xfp_mac_approval_request> asked_;
};

class PortApproverTest : public ::testing::TestWithParam<XdpMode>, protected test::PeerPair {
 protected:
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    char tmpl[] = "/tmp/xfp-e2e-ports.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    port_dir_ = tmpl;
    XFP_ASSERT_OK(create_peer_pair(kPeerMac, kXfpMac));

    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    XFP_ASSERT_OK(inside);
    auto dp = Datapath::open();
    XFP_ASSERT_OK(dp);
    dp_ = std::move(dp).value();
    CalloutRuntimeOptions ro;
    ro.ports.dir = port_dir_;
    runtime_ = std::make_unique<CalloutRuntime>(*dp_, ro);
    AttachOptions ao;
    ao.mode = GetParam();
    ao.outbound = false;
    XFP_ASSERT_OK(dp_->attach(pair_->b().name, ao));
    for (const Attachment& a : dp_->attachments())
      if (a.ifname == pair_->b().name) XFP_ASSERT_OK(runtime_->attach(a));
  }

  void TearDown() override {
    if (xfp_ns_) {
      auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
      runtime_.reset();
      if (dp_)
        for (const Attachment& a : dp_->attachments()) (void)dp_->detach(a.ifname);
      dp_.reset();
    }
    std::error_code ec;
    if (!port_dir_.empty()) std::filesystem::remove_all(port_dir_, ec);
  }

  void start(const std::string& config) {
    auto r = runtime_->host().load(kAllowList, config);
    ASSERT_TRUE(r.ok()) << r.error().message;
    Filter f;
    f.name = "ask";
    f.layer = Layer::Inbound;
    f.action = Action::CalloutTerminating;
    f.callout = "xfp.sample.mac-allowlist";
    f.weight = 10;
    f.conditions = {Condition{Field::EtherType, Match::Equal, kMarked, 0, ~0ull}};
    ASSERT_TRUE(set_.add_filter(f).ok());
    auto compiled = compile(set_, {}, runtime_->host().id_fn());
    XFP_ASSERT_OK(compiled);
    XFP_ASSERT_OK(dp_->install(*compiled));
    auto snap = PolicySnapshot::create(set_, *compiled, dp_->generation());
    XFP_ASSERT_OK(snap);
    runtime_->publish(std::move(snap).value());
  }

  Frame marked(const Mac& src, uint32_t seq, size_t size = 60) {
    return FrameBuilder().dst(kXfpMac).src(src).ethertype(kMarked).marker(seq).pad_to(size).build();
  }

  // Sends `frames` from the peer; returns the marked frames the xfp side's
  // stack got within `window` (at least `expected` of them waited for).
  std::vector<Frame> exchange(const std::vector<Frame>& frames, size_t expected, std::chrono::milliseconds window) {
    xfp_sock_->drain();
    EXPECT_TRUE(peer_sock_->send_frames(frames).ok());
    std::vector<Frame> got;
    if (expected) {
      auto r = xfp_sock_->receive(window, has_marker, expected);
      EXPECT_TRUE(r.ok()) << r.error().message;
      if (r) got = std::move(*r);
    }
    auto more = xfp_sock_->receive(300ms, has_marker);
    if (more) got.insert(got.end(), more->begin(), more->end());
    return got;
  }

  // seq -> how often it arrived; every arrival must equal what was sent.
  std::map<uint32_t, int> arrivals(const std::vector<Frame>& got, const std::map<uint32_t, Frame>& sent) {
    std::map<uint32_t, int> seen;
    for (const Frame& f : got) {
      auto seq = find_marker(f);
      if (!seq) continue;
      ++seen[*seq];
      auto it = sent.find(*seq);
      if (it != sent.end()) {
        EXPECT_EQ(f, it->second) << "frame " << *seq << " changed on the way";
      }
    }
    return seen;
  }

  std::string port_dir_;
  std::unique_ptr<Datapath> dp_;
  std::unique_ptr<CalloutRuntime> runtime_;
  FilterSet set_;
};

TEST_P(PortApproverTest, ApprovedFramesArriveAfterTheAnswerDeniedAndUnansweredOnesNever) {
  start("approver=appr,timeout_ms=400,default=block");
  Approver approver(port_dir_ + "/appr", {{kApproved, XFP_MAC_VERDICT_PERMIT}, {kDenied, XFP_MAC_VERDICT_BLOCK}});
  ASSERT_EQ(approver.rc(), 0) << approver.reason();

  std::vector<Frame> frames;
  std::map<uint32_t, Frame> sent;
  auto add = [&](const Mac& m, uint32_t seq, size_t size) {
    frames.push_back(marked(m, seq, size));
    sent[seq] = frames.back();
  };
  for (uint32_t i = 0; i < 3; ++i) {
    add(kApproved, i, i == 1 ? 1200 : 60);
    add(kDenied, 10 + i, 60);
    add(kSilent, 20 + i, 60);
  }
  auto seen = arrivals(exchange(frames, 3, 3000ms), sent);
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(seen[i], 1) << "approved frame " << i << " (waited, then re-injected)";
    EXPECT_EQ(seen[10 + i], 0) << "denied frame " << 10 + i << " arrived";
    EXPECT_EQ(seen[20 + i], 0) << "unanswered frame " << 20 + i << " arrived (default is block)";
  }
  // Each MAC was asked about once, with what the frame carried.
  auto asked = approver.asked();
  ASSERT_EQ(asked.size(), 3u);
  std::set<Mac> macs;
  for (const auto& q : asked) {
    Mac m;
    std::memcpy(m.data(), q.mac, 6);
    macs.insert(m);
    EXPECT_EQ(q.vlan, 0u);
    EXPECT_EQ(q.ifindex, static_cast<uint32_t>(*test::ifindex_in(*xfp_ns_, pair_->b().name)));
    EXPECT_GE(q.waiting, 1u);
  }
  EXPECT_EQ(macs, (std::set<Mac>{kApproved, kDenied, kSilent}));

  // Decided now: later frames pass or drop at once, with no question.
  std::this_thread::sleep_for(500ms);  // the silent MAC's timeout has passed
  frames.clear();
  sent.clear();
  for (uint32_t i = 0; i < 4; ++i) {
    add(kApproved, 30 + i, 60);
    add(kDenied, 40 + i, 60);
    add(kSilent, 50 + i, 60);
  }
  seen = arrivals(exchange(frames, 4, 1500ms), sent);
  for (uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(seen[30 + i], 1) << 30 + i;
    EXPECT_EQ(seen[40 + i], 0) << 40 + i;
    EXPECT_EQ(seen[50 + i], 0) << 50 + i;
  }
  EXPECT_EQ(approver.asked().size(), 3u) << "no question about a decided MAC";
  auto w = runtime_->workers();
  ASSERT_FALSE(w.empty());
  // The first frame of each MAC waited (absorbed); later ones may have met
  // the verdict already. Every frame was decided once.
  EXPECT_GE(w[0].absorbed, 3u);
  EXPECT_EQ(w[0].absorbed + w[0].permitted + w[0].blocked, 21u);
  EXPECT_GE(w[0].blocked, 8u);
}

TEST_P(PortApproverTest, TimeoutAppliesAPermitDefaultAndWithoutAClientItAppliesAtOnce) {
  start("approver=appr,timeout_ms=300,default=permit");
  // Nobody connected: the default at once.
  std::map<uint32_t, Frame> sent{{0, marked(kDenied, 0)}, {1, marked(kDenied, 1)}};
  auto seen = arrivals(exchange({sent[0], sent[1]}, 2, 2000ms), sent);
  EXPECT_EQ(seen[0], 1);
  EXPECT_EQ(seen[1], 1);

  // A client that never answers: the default when the 300 ms have passed.
  Approver silent(port_dir_ + "/appr", {});
  ASSERT_EQ(silent.rc(), 0) << silent.reason();
  std::this_thread::sleep_for(50ms);  // the plugin hears of the client
  sent = {{5, marked(kSilent, 5)}, {6, marked(kSilent, 6, 900)}};
  auto start_time = std::chrono::steady_clock::now();
  seen = arrivals(exchange({sent[5], sent[6]}, 2, 3000ms), sent);
  EXPECT_GE(std::chrono::steady_clock::now() - start_time, 280ms);
  EXPECT_EQ(seen[5], 1);
  EXPECT_EQ(seen[6], 1);
  EXPECT_EQ(silent.asked().size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Modes, PortApproverTest, ::testing::Values(XdpMode::Native, XdpMode::Generic),
                         [](const ::testing::TestParamInfo<XdpMode>& i) {
                           return i.param == XdpMode::Native ? std::string("Native") : std::string("Generic");
                         });

}  // namespace
}  // namespace xfp
