// The fast path on real veth pairs: two test namespaces joined by a veth,
// xfp attached to one end ("xfp side") inside its namespace, frames sent and
// received with raw AF_PACKET sockets. Every test checks what a user would:
// the bytes that arrive, the verdict, the counters and the error text.
//
// Every Datapath call that touches an interface (attach, detach, the
// destructor) runs with the test thread inside the xfp namespace: attach
// and detach resolve names and ifindexes in the calling thread's namespace,
// and an ifindex of a test veth means some other interface in the host's.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "support/assert_ok.hpp"
#include "support/frame_builder.hpp"
#include "support/netns.hpp"
#include "support/packet_io.hpp"
#include "support/peer_pair.hpp"
#include "support/privileges.hpp"
#include "xfp/compiler.hpp"
#include "xfp/datapath.hpp"
#include "xfp/filter.hpp"
#include "xfp/filter_set.hpp"

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

// The two veth ends. "peer" is the far side, "xfp" the end xfp attaches to.
constexpr Mac kPeerMac{0x02, 0x00, 0x00, 0x00, 0xfa, 0x01};
constexpr Mac kXfpMac{0x02, 0x00, 0x00, 0x00, 0xfb, 0x01};
// Addresses frames claim to come from / go to; locally administered unicast.
constexpr Mac kBadMac{0x02, 0x00, 0x00, 0xba, 0xd0, 0x01};
constexpr Mac kGoodMac{0x02, 0x00, 0x00, 0x60, 0x0d, 0x01};
constexpr Mac kOtherMac{0x02, 0x00, 0x00, 0x07, 0x4e, 0x01};

constexpr uint16_t kExp1 = 0x88b5;  // IEEE local experimental 1: the marked type
constexpr uint16_t kExp2 = 0x88b6;  // local experimental 2
constexpr uint16_t kExp3 = 0x88b7;  // OUI extended; only used as a third label

// Receive windows: generous for frames that must arrive (returns early), short
// for the quiet period that proves nothing else does.
constexpr auto kArriveWindow = 500ms;
constexpr auto kQuietWindow = 150ms;

uint64_t mac_value(const Mac& m) {
  uint64_t v = 0;
  for (uint8_t b : m) v = v << 8 | b;
  return v;
}

Condition eq(Field f, uint64_t v) { return Condition{f, Match::Equal, v, 0, ~0ull}; }

const char* mode_name(XdpMode m) {
  switch (m) {
    case XdpMode::Native:
      return "native";
    case XdpMode::Generic:
      return "generic";
    case XdpMode::Auto:
      break;
  }
  return "auto";
}

// ---------------------------------------------------------------------------
// A policy: a FilterSet whose filters are referred to by name.

class Policy {
 public:
  Policy& add(const std::string& name, Layer layer, Action action, std::vector<Condition> conditions,
              uint64_t weight = 0, uint32_t flags = 0) {
    Filter f;
    f.name = name;
    f.layer = layer;
    f.action = action;
    f.conditions = std::move(conditions);
    f.weight = weight;
    f.flags = flags;
    auto r = set_.add_filter(f);
    EXPECT_TRUE(r.ok()) << "adding " << name << ": " << r.error().message;
    return *this;
  }
  Policy& default_action(Layer l, Action a) {
    set_.set_default(l, a);
    return *this;
  }
  const FilterSet& set() const { return set_; }
  uint32_t slot(const std::string& name) const {
    const Filter* f = set_.find(name);
    EXPECT_NE(f, nullptr) << "no filter " << name;
    if (!f) return 0;
    auto s = set_.slot_of(f->id);
    EXPECT_TRUE(s.has_value());
    return s.value_or(0);
  }

 private:
  FilterSet set_;
};

// Compiles and installs. With `fresh_slots` every filter's counter slot starts
// from zero, as the daemon does it when a slot is (re)used; a re-install of
// filters that keep their slots keeps their counts.
Status install(Datapath& dp, const Policy& p, bool fresh_slots = true) {
  if (fresh_slots)
    for (const Filter* f : p.set().filters()) XFP_TRY(dp.reset_filter_counters(*p.set().slot_of(f->id)));
  auto compiled = compile(p.set());
  if (!compiled) return std::move(compiled).error();
  return dp.install(*compiled);
}

// ---------------------------------------------------------------------------
// Sent frames, tracked by their marker's sequence number.

struct Sent {
  std::map<uint32_t, Frame> frames;  // sequence -> bytes
  std::set<uint32_t> permitted;      // sequences that should arrive
  uint32_t next = 0;

  // Adds the marker and records the frame; `b` must not carry one yet.
  const Frame& add(FrameBuilder b, bool should_arrive) {
    const uint32_t seq = next++;
    if (should_arrive) permitted.insert(seq);
    return frames[seq] = b.marker(seq).build();
  }
  std::vector<Frame> all() const {
    std::vector<Frame> v;
    for (const auto& [seq, f] : frames) v.push_back(f);
    return v;
  }
};

// Receives marked frames until `expected` arrived (or kArriveWindow), then
// keeps listening for kQuietWindow so that frames that must not arrive get
// the time to show up if they do.
std::vector<Frame> receive_marked(PacketSocket& sock, size_t expected) {
  std::vector<Frame> got;
  if (expected > 0) {
    auto r = sock.receive(kArriveWindow, has_marker, expected);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (r) got = std::move(*r);
  }
  auto more = sock.receive(kQuietWindow, has_marker);
  EXPECT_TRUE(more.ok()) << more.error().message;
  if (more) got.insert(got.end(), more->begin(), more->end());
  return got;
}

// Sends each frame in sequence order out of the xfp side. A frame the TC
// egress program drops (TC_ACT_SHOT) makes the sender's send() fail with
// ENOBUFS: that is what a user sees, so a blocked frame must fail that way
// and a permitted one must not fail.
void send_outbound(PacketSocket& sock, const Sent& sent) {
  for (const auto& [seq, frame] : sent.frames) {
    const Status s = sock.send_frame(frame);
    if (sent.permitted.count(seq)) {
      EXPECT_TRUE(s.ok()) << "permitted frame " << seq << ": " << s.error().message;
    } else {
      EXPECT_FALSE(s.ok()) << "blocked frame " << seq << " was sent without error";
      if (!s.ok()) {
        EXPECT_EQ(s.error().code, ENOBUFS) << s.error().message;
      }
    }
  }
}

// Checks that exactly the permitted frames arrived, each once and byte-identical.
void expect_exactly_permitted(const Sent& sent, const std::vector<Frame>& got) {
  std::multiset<uint32_t> seen;
  for (const Frame& f : got) {
    auto seq = find_marker(f);
    if (!seq) {
      ADD_FAILURE() << "a received frame lost its marker";
      continue;
    }
    seen.insert(*seq);
    auto it = sent.frames.find(*seq);
    if (it == sent.frames.end()) {
      ADD_FAILURE() << "frame " << *seq << " was never sent";
      continue;
    }
    EXPECT_TRUE(sent.permitted.count(*seq)) << "frame " << *seq << " should have been blocked but arrived";
    EXPECT_EQ(f, it->second) << "frame " << *seq << " changed on the way";
  }
  for (uint32_t seq : sent.permitted)
    EXPECT_EQ(seen.count(seq), 1u) << "permitted frame " << seq << " arrived " << seen.count(seq) << " times";
  EXPECT_EQ(got.size(), sent.permitted.size());
}

// ---------------------------------------------------------------------------
// Facts about an interface, read inside its namespace.

struct XdpState {
  uint32_t prog_id = 0;
  uint8_t attach_mode = XDP_ATTACHED_NONE;
  std::string prog_name;
};

Result<XdpState> query_xdp(const NetNs& ns, const std::string& ifname) {
  auto inside = ScopedNetnsEnter::enter(ns);
  if (!inside) return std::move(inside).error();
  const unsigned ifindex = if_nametoindex(ifname.c_str());
  if (ifindex == 0) return errno_error("if_nametoindex " + ifname);
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (int rc = bpf_xdp_query(static_cast<int>(ifindex), 0, &q); rc != 0)
    return errno_error("bpf_xdp_query " + ifname, -rc);
  XdpState s;
  s.prog_id = q.prog_id;
  s.attach_mode = q.attach_mode;
  if (s.prog_id != 0) {
    const int fd = bpf_prog_get_fd_by_id(s.prog_id);
    if (fd < 0) return errno_error("bpf_prog_get_fd_by_id");
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    const int rc = bpf_obj_get_info_by_fd(fd, &info, &len);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return errno_error("bpf_obj_get_info_by_fd", err);
    s.prog_name = info.name;
  }
  return s;
}

std::string ip_link_details(const NetNs& ns, const std::string& ifname) {
  auto r = test::run_in_netns(ns, {"/usr/sbin/ip", "-d", "link", "show", "dev", ifname});
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r ? *r : std::string();
}

std::string tc_qdiscs(const NetNs& ns, const std::string& ifname) {
  auto r = test::run_in_netns(ns, {"/usr/sbin/tc", "qdisc", "show", "dev", ifname});
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r ? *r : std::string();
}

std::string tc_egress_filters(const NetNs& ns, const std::string& ifname) {
  auto r = test::run_command_in_netns(ns, {"/usr/sbin/tc", "filter", "show", "dev", ifname, "egress"});
  EXPECT_TRUE(r.ok()) << r.error().message;
  // Without a clsact qdisc tc fails: no egress filter either.
  return r && r->succeeded() ? r->output : std::string();
}

template <typename F>
class OnScopeExit {
 public:
  explicit OnScopeExit(F f) : f_(std::move(f)) {}
  ~OnScopeExit() { f_(); }
  OnScopeExit(const OnScopeExit&) = delete;
  OnScopeExit& operator=(const OnScopeExit&) = delete;

 private:
  F f_;
};

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------
// One Datapath shared by the tests that need "a loaded fast path" rather than
// a fresh one: loading and verifying the programs takes more than a second.
// Each test detaches it (inside its namespace) when it ends and reads its
// counters as differences from where they stood when the test took it.

class SharedDatapath {
 public:
  static Datapath* get() {
    if (!dp()) {
      auto r = Datapath::open();
      if (r) dp() = std::move(r).value();
      else error() = r.error().message;
    }
    return dp().get();
  }
  static const std::string& last_error() { return error(); }
  // Attachments are left that cannot be detached from inside their
  // namespace: never destroy it (its destructor would detach by ifindex in
  // the host namespace). The test namespaces take the links with them.
  static void abandon() { (void)dp().release(); }
  static void close() {
    if (dp() && !dp()->attachments().empty()) abandon();
    dp().reset();
  }

 private:
  static std::unique_ptr<Datapath>& dp() {
    static std::unique_ptr<Datapath> d;
    return d;
  }
  static std::string& error() {
    static std::string e;
    return e;
  }
};

class SharedDatapathEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { SharedDatapath::close(); }
};
[[maybe_unused]] ::testing::Environment* const kSharedDatapathEnvironment =
    ::testing::AddGlobalTestEnvironment(new SharedDatapathEnvironment);

// ---------------------------------------------------------------------------
// The fixture: namespaces "peer" and "xfp" joined by a veth, a raw socket on
// each end, and the Datapaths of the test (destroyed inside the xfp namespace).

class FastpathTest : public ::testing::Test, protected test::PeerPair {
 protected:
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    XFP_ASSERT_OK(create_peer_pair(kPeerMac, kXfpMac));
  }

  void TearDown() override {
    release_shared();
    destroy_all_datapaths();
  }
  ~FastpathTest() override { destroy_all_datapaths(); }

  const std::string& peer_if() const { return pair_->a().name; }
  const std::string& xfp_if() const { return pair_->b().name; }

  // Opens a Datapath (inside the xfp namespace) owned by the fixture.
  Datapath* open_datapath() {
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    EXPECT_TRUE(inside.ok()) << inside.error().message;
    if (!inside) return nullptr;
    auto dp = Datapath::open();
    EXPECT_TRUE(dp.ok()) << dp.error().message;
    if (!dp) return nullptr;
    datapaths_.push_back(std::move(dp).value());
    return datapaths_.back().get();
  }

  // The shared Datapath; its counters count from here for this test.
  Datapath* shared_datapath() {
    Datapath* dp = SharedDatapath::get();
    EXPECT_NE(dp, nullptr) << SharedDatapath::last_error();
    if (!dp) return nullptr;
    using_shared_ = true;
    baseline_[dp] = {dp->layer_counters(Layer::Inbound), dp->layer_counters(Layer::Outbound)};
    return dp;
  }

  // A layer's counters since the test took the Datapath.
  LayerCounters layer(const Datapath& dp, Layer l) const {
    LayerCounters c = dp.layer_counters(l);
    auto it = baseline_.find(&dp);
    if (it != baseline_.end())
      for (int i = 0; i < XFP_CNT_COUNT; ++i) c.c[i] -= it->second[static_cast<int>(l)].c[i];
    return c;
  }

  void release_shared() {
    if (!using_shared_) return;
    using_shared_ = false;
    Datapath* dp = SharedDatapath::get();
    if (!dp || dp->attachments().empty()) return;
    auto inside = xfp_ns_ ? ScopedNetnsEnter::enter(*xfp_ns_) : Result<ScopedNetnsEnter>(make_error(EBADF, "no namespace"));
    if (!inside) {
      ADD_FAILURE() << "cannot enter the xfp namespace to detach: " << inside.error().message;
      SharedDatapath::abandon();
      return;
    }
    for (const Attachment& a : dp->attachments()) {
      const Status s = dp->detach(a.ifname);
      EXPECT_TRUE(s.ok()) << "detaching the shared Datapath from " << a.ifname << ": " << s.error().message;
    }
    if (!dp->attachments().empty()) SharedDatapath::abandon();
  }

  // Destroys one Datapath inside the xfp namespace (its destructor detaches).
  void destroy_datapath(Datapath* dp) {
    auto it = std::find_if(datapaths_.begin(), datapaths_.end(), [&](const auto& p) { return p.get() == dp; });
    ASSERT_NE(it, datapaths_.end());
    std::unique_ptr<Datapath> owned = std::move(*it);
    datapaths_.erase(it);
    destroy_inside(std::move(owned));
  }

  void destroy_all_datapaths() {
    // Newest first, as a replacing daemon's would outlive a stale one.
    while (!datapaths_.empty()) {
      std::unique_ptr<Datapath> owned = std::move(datapaths_.back());
      datapaths_.pop_back();
      destroy_inside(std::move(owned));
    }
  }

  void destroy_inside(std::unique_ptr<Datapath> dp) {
    if (!dp) return;
    if (!xfp_ns_) {
      (void)dp.release();
      return;
    }
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    if (!inside) {
      // Detaching from the host namespace would address whatever interface
      // has that ifindex there: leak it instead (the namespace takes the
      // links with it).
      ADD_FAILURE() << "cannot enter the xfp namespace to destroy a Datapath: " << inside.error().message;
      (void)dp.release();
      return;
    }
    dp.reset();
  }

  Status attach(Datapath& dp, const AttachOptions& opts = {}) { return attach_name(dp, xfp_if(), opts); }
  Status attach_name(Datapath& dp, const std::string& ifname, const AttachOptions& opts = {}) {
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    if (!inside) return std::move(inside).error();
    return dp.attach(ifname, opts);
  }
  Status detach(Datapath& dp) { return detach_name(dp, xfp_if()); }
  Status detach_name(Datapath& dp, const std::string& ifname) {
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    if (!inside) return std::move(inside).error();
    return dp.detach(ifname);
  }

  // Sends `in` from the peer and `out` from the xfp side, then checks that
  // exactly the permitted frames of each arrived, unchanged.
  void exchange_and_expect_permitted(const Sent& in, const Sent& out) {
    XFP_ASSERT_OK(peer_sock_->send_frames(in.all()));
    send_outbound(*xfp_sock_, out);
    {
      SCOPED_TRACE("inbound");
      expect_exactly_permitted(in, receive_marked(*xfp_sock_, in.permitted.size()));
    }
    {
      SCOPED_TRACE("outbound");
      expect_exactly_permitted(out, receive_marked(*peer_sock_, out.permitted.size()));
    }
  }

  // Members are destroyed in reverse: sockets, pair, namespaces.
  std::vector<std::unique_ptr<Datapath>> datapaths_;
  bool using_shared_ = false;
  std::map<const Datapath*, std::array<LayerCounters, XFP_LAYER_COUNT>> baseline_;
};

// ===========================================================================
// 1. Inbound (XDP), native and generic.

class FastpathInbound : public FastpathTest, public ::testing::WithParamInterface<XdpMode> {};

TEST_P(FastpathInbound, BlocksMarkedFramesFromOneMacAndCountsThem) {
  const XdpMode mode = GetParam();
  Datapath* dp = open_datapath();
  ASSERT_NE(dp, nullptr);
  AttachOptions opts;
  opts.mode = mode;
  XFP_ASSERT_OK(attach(*dp, opts));

  // The attachment says what was asked for, and the kernel agrees.
  auto atts = dp->attachments();
  ASSERT_EQ(atts.size(), 1u);
  const Attachment& a = atts.front();
  EXPECT_EQ(a.ifname, xfp_if());
  EXPECT_EQ(a.ifindex, static_cast<uint32_t>(pair_->b().ifindex));
  EXPECT_TRUE(a.inbound);
  EXPECT_TRUE(a.outbound);
  EXPECT_EQ(a.xdp_mode, mode_name(mode));
  const bool dispatcher = a.xdp_loader == "libxdp dispatcher";
  const bool single = a.xdp_loader.rfind("single program (", 0) == 0 && a.xdp_loader.back() == ')';
  EXPECT_TRUE(dispatcher || single) << "xdp_loader: " << a.xdp_loader;
  std::printf("[ xdp mode %s ] xdp_loader: %s\n", a.xdp_mode.c_str(), a.xdp_loader.c_str());

  auto xdp = query_xdp(*xfp_ns_, xfp_if());
  XFP_ASSERT_OK(xdp);
  EXPECT_NE(xdp->prog_id, 0u);
  EXPECT_EQ(xdp->attach_mode, mode == XdpMode::Native ? XDP_ATTACHED_DRV : XDP_ATTACHED_SKB)
      << "the kernel's attach mode differs from the reported " << a.xdp_mode;
  EXPECT_EQ(xdp->prog_name, dispatcher ? "xdp_dispatcher" : "xfp_inbound");
  EXPECT_TRUE(contains(ip_link_details(*xfp_ns_, xfp_if()), mode == XdpMode::Native ? "xdp " : "xdpgeneric"));

  // Block the marked EtherType from kBadMac; permit it from anyone else.
  Policy p;
  p.add("block_bad", Layer::Inbound, Action::Block,
        {eq(Field::EtherType, kExp1), eq(Field::RemoteMac, mac_value(kBadMac))}, 10)
      .add("permit_exp1", Layer::Inbound, Action::Permit, {eq(Field::EtherType, kExp1)}, 1);
  XFP_ASSERT_OK(install(*dp, p));

  // Interleaved: good/exp1 (60 bytes, permit filter), bad/exp1 (100 bytes,
  // blocked), bad/exp2 (80 bytes, no filter: default permit).
  constexpr uint32_t kRounds = 15;
  Sent sent;
  for (uint32_t i = 0; i < kRounds; ++i) {
    sent.add(FrameBuilder().dst(kXfpMac).src(kGoodMac).ethertype(kExp1), true);
    sent.add(FrameBuilder().dst(kXfpMac).src(kBadMac).ethertype(kExp1).pad_to(100), false);
    sent.add(FrameBuilder().dst(kXfpMac).src(kBadMac).ethertype(kExp2).pad_to(80), true);
  }
  // One more permitted frame last: once it is in, everything before it was classified.
  sent.add(FrameBuilder().dst(kXfpMac).src(kGoodMac).ethertype(kExp1), true);
  XFP_ASSERT_OK(peer_sock_->send_frames(sent.all()));

  const auto got = receive_marked(*xfp_sock_, sent.permitted.size());
  expect_exactly_permitted(sent, got);

  const uint64_t good = kRounds + 1, bad = kRounds, other = kRounds;
  const LayerCounters in = layer(*dp, Layer::Inbound);
  EXPECT_EQ(in.c[XFP_CNT_FRAMES], good + bad + other);
  EXPECT_EQ(in.c[XFP_CNT_PERMIT], good + other);
  EXPECT_EQ(in.c[XFP_CNT_BLOCK], bad);
  EXPECT_EQ(in.c[XFP_CNT_DEFAULT], other);
  EXPECT_EQ(in.c[XFP_CNT_MALFORMED], 0u);
  EXPECT_EQ(in.c[XFP_CNT_BYTES], good * 60 + bad * 100 + other * 80);
  const FilterCounters blocked = dp->filter_counters(p.slot("block_bad"));
  EXPECT_EQ(blocked.frames, bad);
  EXPECT_EQ(blocked.bytes, bad * 100);
  const FilterCounters permitted = dp->filter_counters(p.slot("permit_exp1"));
  EXPECT_EQ(permitted.frames, good);
  EXPECT_EQ(permitted.bytes, good * 60);
  // Nothing left the xfp side: the outbound layer saw nothing.
  EXPECT_EQ(layer(*dp, Layer::Outbound).c[XFP_CNT_FRAMES], 0u);
}

INSTANTIATE_TEST_SUITE_P(Fastpath, FastpathInbound, ::testing::Values(XdpMode::Native, XdpMode::Generic),
                         [](const auto& info) { return std::string(mode_name(info.param)); });

// ===========================================================================
// 2. Outbound (TC egress): local = source, remote = destination.

TEST_F(FastpathTest, OutboundBlocksOnEgressWithLocalAsSource) {
  Datapath* dp = shared_datapath();
  ASSERT_NE(dp, nullptr);
  XFP_ASSERT_OK(attach(*dp));

  Policy p;
  p.add("block_local_bad", Layer::Outbound, Action::Block,
        {eq(Field::EtherType, kExp1), eq(Field::LocalMac, mac_value(kBadMac))}, 10)
      .add("permit_exp1", Layer::Outbound, Action::Permit, {eq(Field::EtherType, kExp1)}, 1)
      .add("block_remote_other", Layer::Outbound, Action::Block, {eq(Field::RemoteMac, mac_value(kOtherMac))}, 5)
      // An inbound filter that would block everything here: it must not apply.
      .add("inbound_block_all_exp", Layer::Inbound, Action::Block, {eq(Field::EtherType, kExp1)});
  XFP_ASSERT_OK(install(*dp, p));

  constexpr uint32_t kRounds = 10;
  Sent sent;
  for (uint32_t i = 0; i < kRounds; ++i) {
    // Source kBadMac: local on outbound, blocked.
    sent.add(FrameBuilder().dst(kPeerMac).src(kBadMac).ethertype(kExp1), false);
    // Destination kBadMac: remote, not local; the permit filter decides.
    sent.add(FrameBuilder().dst(kBadMac).src(kGoodMac).ethertype(kExp1).pad_to(90), true);
    // Destination kOtherMac is the remote address: blocked.
    sent.add(FrameBuilder().dst(kOtherMac).src(kXfpMac).ethertype(kExp2).pad_to(70), false);
    // Source kOtherMac is local, not remote: default permit.
    sent.add(FrameBuilder().dst(kPeerMac).src(kOtherMac).ethertype(kExp2).pad_to(70), true);
  }
  sent.add(FrameBuilder().dst(kPeerMac).src(kGoodMac).ethertype(kExp1).pad_to(90), true);
  send_outbound(*xfp_sock_, sent);

  const auto got = receive_marked(*peer_sock_, sent.permitted.size());
  expect_exactly_permitted(sent, got);

  const LayerCounters out = layer(*dp, Layer::Outbound);
  EXPECT_EQ(out.c[XFP_CNT_FRAMES], sent.frames.size());
  EXPECT_EQ(out.c[XFP_CNT_BLOCK], 2 * kRounds);
  EXPECT_EQ(out.c[XFP_CNT_PERMIT], 2 * kRounds + 1);
  EXPECT_EQ(out.c[XFP_CNT_DEFAULT], kRounds);
  EXPECT_EQ(out.c[XFP_CNT_BYTES], kRounds * (60 + 90 + 70 + 70) + 90);
  EXPECT_EQ(dp->filter_counters(p.slot("block_local_bad")).frames, kRounds);
  EXPECT_EQ(dp->filter_counters(p.slot("permit_exp1")).frames, kRounds + 1);
  EXPECT_EQ(dp->filter_counters(p.slot("permit_exp1")).bytes, (kRounds + 1) * 90);
  EXPECT_EQ(dp->filter_counters(p.slot("block_remote_other")).frames, kRounds);
  EXPECT_EQ(dp->filter_counters(p.slot("inbound_block_all_exp")).frames, 0u);
  EXPECT_EQ(layer(*dp, Layer::Inbound).c[XFP_CNT_FRAMES], 0u);
}

TEST_F(FastpathTest, InboundLocalIsDestination) {
  Datapath* dp = shared_datapath();
  ASSERT_NE(dp, nullptr);
  XFP_ASSERT_OK(attach(*dp));
  Policy p;
  p.add("block_local_other", Layer::Inbound, Action::Block, {eq(Field::LocalMac, mac_value(kOtherMac))});
  XFP_ASSERT_OK(install(*dp, p));

  Sent sent;
  for (int i = 0; i < 5; ++i) {
    sent.add(FrameBuilder().dst(kOtherMac).src(kGoodMac), false);  // local (destination) matches
    sent.add(FrameBuilder().dst(kXfpMac).src(kOtherMac), true);    // source is remote on inbound
  }
  XFP_ASSERT_OK(peer_sock_->send_frames(sent.all()));
  expect_exactly_permitted(sent, receive_marked(*xfp_sock_, sent.permitted.size()));
  EXPECT_EQ(dp->filter_counters(p.slot("block_local_other")).frames, 5u);
  EXPECT_EQ(layer(*dp, Layer::Inbound).c[XFP_CNT_BLOCK], 5u);
}

// ===========================================================================
// 3. VLAN and QinQ across the veth, both layers and both XDP modes.

class FastpathVlan : public FastpathTest, public ::testing::WithParamInterface<XdpMode> {};

TEST_P(FastpathVlan, TaggedFramesPassOrBlockByVlanAndInnerVlan) {
  Datapath* dp = shared_datapath();
  ASSERT_NE(dp, nullptr);
  AttachOptions opts;
  opts.mode = GetParam();
  XFP_ASSERT_OK(attach(*dp, opts));

  Policy p;
  for (Layer l : {Layer::Inbound, Layer::Outbound}) {
    const std::string suffix = l == Layer::Inbound ? "_in" : "_out";
    p.add("vlan100" + suffix, l, Action::Block, {eq(Field::Vlan, 100)})
        .add("inner7" + suffix, l, Action::Block, {eq(Field::InnerVlan, 7)});
  }
  XFP_ASSERT_OK(install(*dp, p));

  auto frames = [](Sent& s, const Mac& dst, const Mac& src) {
    auto base = [&] { return FrameBuilder().dst(dst).src(src).ethertype(kExp1); };
    s.add(base().vlan(100), false);        // outer 100: blocked
    s.add(base().vlan(101, 5), true);      // another VID
    s.add(base().qinq(300, 7), false);     // inner 7: blocked
    s.add(base().qinq(300, 8), true);      // inner 8
    s.add(base().qinq(100, 8), false);     // outer 100 of a QinQ: blocked
    s.add(base().qinq(7, 300), true);      // 7 is the outer VID here, not the inner
    s.add(base().vlan(7), true);           // single tag 7: no inner tag
    s.add(base().ipv4().udp(), true);      // untagged
    s.add(base().vlan(100, 0, test::ethertype::kQinQ), false);  // an 802.1ad S-tag alone
  };
  constexpr int kReps = 3;

  // Inbound: peer -> xfp side.
  Sent in;
  for (int i = 0; i < kReps; ++i) frames(in, kXfpMac, kPeerMac);
  XFP_ASSERT_OK(peer_sock_->send_frames(in.all()));
  expect_exactly_permitted(in, receive_marked(*xfp_sock_, in.permitted.size()));
  EXPECT_EQ(dp->filter_counters(p.slot("vlan100_in")).frames, 3u * kReps);
  EXPECT_EQ(dp->filter_counters(p.slot("inner7_in")).frames, 1u * kReps);
  EXPECT_EQ(layer(*dp, Layer::Inbound).c[XFP_CNT_BLOCK], 4u * kReps);
  EXPECT_EQ(layer(*dp, Layer::Inbound).c[XFP_CNT_PERMIT], 5u * kReps);

  // Outbound: xfp side -> peer.
  Sent out;
  for (int i = 0; i < kReps; ++i) frames(out, kPeerMac, kXfpMac);
  send_outbound(*xfp_sock_, out);
  expect_exactly_permitted(out, receive_marked(*peer_sock_, out.permitted.size()));
  EXPECT_EQ(dp->filter_counters(p.slot("vlan100_out")).frames, 3u * kReps);
  EXPECT_EQ(dp->filter_counters(p.slot("inner7_out")).frames, 1u * kReps);
  EXPECT_EQ(layer(*dp, Layer::Outbound).c[XFP_CNT_BLOCK], 4u * kReps);
  EXPECT_EQ(layer(*dp, Layer::Outbound).c[XFP_CNT_PERMIT], 5u * kReps);
}

INSTANTIATE_TEST_SUITE_P(Fastpath, FastpathVlan, ::testing::Values(XdpMode::Native, XdpMode::Generic),
                         [](const auto& info) { return std::string(mode_name(info.param)); });

// ===========================================================================
// 4. Atomic replace while traffic flows.
//
// Four kinds of frame:       set A     set B
//   X  src kGood, exp1       permit    block (remote MAC)
//   Y  src kOther, exp2      block     permit
//   Z  src kBad,  exp3       block     block  (A by EtherType, B by MAC:
//                                              different tuples, so any mix
//                                              of the two sets permits it)
//   W  src kPeer, exp1       permit    permit
// Both sets hold all filters (same counter slots); each disables the other's.

enum Kind : uint32_t { kX, kY, kZ, kW, kKinds };

Policy replace_policy(bool set_a) {
  const uint32_t a = set_a ? 0 : XFP_FILTER_DISABLED;
  const uint32_t b = set_a ? XFP_FILTER_DISABLED : 0;
  Policy p;
  p.add("a_block_y", Layer::Inbound, Action::Block, {eq(Field::EtherType, kExp2)}, 0, a)
      .add("a_block_z", Layer::Inbound, Action::Block, {eq(Field::EtherType, kExp3)}, 0, a)
      .add("b_block_x", Layer::Inbound, Action::Block, {eq(Field::RemoteMac, mac_value(kGoodMac))}, 0, b)
      .add("b_block_z", Layer::Inbound, Action::Block, {eq(Field::RemoteMac, mac_value(kBadMac))}, 0, b);
  return p;
}

TEST_F(FastpathTest, AtomicReplaceUnderTraffic) {
  Datapath* dp = shared_datapath();
  ASSERT_NE(dp, nullptr);
  XFP_ASSERT_OK(attach(*dp));
  const Policy set_a = replace_policy(true);
  const Policy set_b = replace_policy(false);
  const uint64_t generation0 = dp->generation();
  XFP_ASSERT_OK(install(*dp, set_a));

  auto frame_of = [](Kind k, uint32_t seq) {
    FrameBuilder b = FrameBuilder().dst(kXfpMac);
    switch (k) {
      case kX: b.src(kGoodMac).ethertype(kExp1); break;
      case kY: b.src(kOtherMac).ethertype(kExp2); break;
      case kZ: b.src(kBadMac).ethertype(kExp3); break;
      default: b.src(kPeerMac).ethertype(kExp1); break;
    }
    return b.marker(seq).build();
  };

  // Flow control on W, the kind every set permits: the sender stays at most
  // kWindow W frames (4 * kWindow frames) ahead of the receiver, so the
  // receiving socket never overflows however busy the machine is. A W frame
  // that never arrives stalls the sender; it gives up after a second.
  constexpr uint32_t kWindow = 128;
  std::atomic<bool> stop_sending{false}, sending_done{false}, send_failed{false}, stalled{false};
  std::atomic<uint32_t> sent{0}, received_w{0};
  std::thread sender([&] {
    uint32_t sent_w = 0;
    for (uint32_t seq = 0; !stop_sending.load(); ++seq) {
      const auto wait_start = std::chrono::steady_clock::now();
      while (sent_w - received_w.load() >= kWindow && !stop_sending.load()) {
        if (std::chrono::steady_clock::now() - wait_start > 1s) {
          stalled = true;
          break;
        }
        std::this_thread::sleep_for(50us);
      }
      if (stalled || stop_sending.load()) break;
      const Kind kind = static_cast<Kind>(seq % kKinds);
      if (!peer_sock_->send_frame(frame_of(kind, seq))) {
        send_failed = true;
        break;
      }
      sent_w += kind == kW;
      sent.store(seq + 1);
    }
    sending_done = true;
  });
  std::vector<Frame> received;
  std::thread receiver([&] {
    while (true) {
      const bool done = sending_done.load();
      auto r = xfp_sock_->receive(done ? 100ms : 10ms, has_marker, 64);
      if (!r) break;
      for (const Frame& f : *r) {
        auto seq = find_marker(f);
        if (seq && *seq % kKinds == kW) received_w.fetch_add(1);
      }
      received.insert(received.end(), r->begin(), r->end());
      if (done && r->empty()) break;
    }
  });

  // A, then B and A in turn: each phase lasts while at least 300 frames and 15 ms pass.
  constexpr int kFlips = 10;
  auto run_phase = [&] {
    const uint32_t start = sent.load();
    const auto t0 = std::chrono::steady_clock::now();
    while ((sent.load() - start < 300 || std::chrono::steady_clock::now() - t0 < 15ms) && !sending_done.load())
      std::this_thread::sleep_for(1ms);
  };
  std::vector<Status> installs;
  run_phase();
  for (int i = 0; i < kFlips; ++i) {
    // The filters keep their slots across A and B: counters keep counting.
    installs.push_back(install(*dp, i % 2 == 0 ? set_b : set_a, /*fresh_slots=*/false));
    run_phase();
  }
  stop_sending = true;
  sender.join();
  receiver.join();
  for (const Status& s : installs) XFP_EXPECT_OK(s);
  EXPECT_EQ(dp->generation() - generation0, 1u + kFlips);
  ASSERT_FALSE(send_failed.load());
  EXPECT_FALSE(stalled.load()) << "the sender stalled: a frame both sets permit did not arrive";

  const uint32_t total = sent.load();
  std::vector<uint32_t> arrived_by_kind(kKinds, 0);
  std::set<uint32_t> seen;
  for (const Frame& f : received) {
    auto seq = find_marker(f);
    ASSERT_TRUE(seq.has_value());
    ASSERT_LT(*seq, total);
    EXPECT_TRUE(seen.insert(*seq).second) << "frame " << *seq << " arrived twice";
    EXPECT_EQ(f, frame_of(static_cast<Kind>(*seq % kKinds), *seq)) << "frame " << *seq << " changed";
    ++arrived_by_kind[*seq % kKinds];
  }
  uint32_t sent_w = 0;
  for (uint32_t s = 0; s < total; ++s) sent_w += s % kKinds == kW;
  std::printf("[ replace ] sent %u frames: arrived X %u, Y %u, Z %u, W %u of %u\n", total, arrived_by_kind[kX],
              arrived_by_kind[kY], arrived_by_kind[kZ], arrived_by_kind[kW], sent_w);
  // Never a frame both sets block; every frame both permit.
  EXPECT_EQ(arrived_by_kind[kZ], 0u) << "a frame that A and B both block arrived";
  EXPECT_EQ(arrived_by_kind[kW], sent_w) << "frames that A and B both permit were lost";
  // Both sets really were in force while frames flowed.
  EXPECT_GT(arrived_by_kind[kX], 0u) << "set A never classified (X arrives only under A)";
  EXPECT_GT(arrived_by_kind[kY], 0u) << "set B never classified (Y arrives only under B)";
  EXPECT_LT(arrived_by_kind[kX], total / kKinds) << "X was never blocked: set B never applied";
  EXPECT_LT(arrived_by_kind[kY], total / kKinds) << "Y was never blocked: set A never applied";

  // The counters add up: sent = received + blocked.
  const LayerCounters in = layer(*dp, Layer::Inbound);
  EXPECT_EQ(in.c[XFP_CNT_FRAMES], total);
  EXPECT_EQ(in.c[XFP_CNT_PERMIT], received.size());
  EXPECT_EQ(in.c[XFP_CNT_BLOCK], total - received.size());
  EXPECT_EQ(in.c[XFP_CNT_PERMIT] + in.c[XFP_CNT_BLOCK], total);
  // Every Z was blocked by one filter or the other; X only by B's, Y only by A's.
  const uint64_t z_blocked =
      dp->filter_counters(set_a.slot("a_block_z")).frames + dp->filter_counters(set_a.slot("b_block_z")).frames;
  EXPECT_EQ(z_blocked, total / kKinds + (total % kKinds > kZ ? 1 : 0));
  const uint32_t sent_x = total / kKinds + (total % kKinds > kX ? 1 : 0);
  const uint32_t sent_y = total / kKinds + (total % kKinds > kY ? 1 : 0);
  EXPECT_EQ(dp->filter_counters(set_a.slot("b_block_x")).frames, sent_x - arrived_by_kind[kX]);
  EXPECT_EQ(dp->filter_counters(set_a.slot("a_block_y")).frames, sent_y - arrived_by_kind[kY]);
}

// ===========================================================================
// 5. Detach: nothing left on the interface, traffic unfiltered again.

class FastpathDetach : public FastpathTest {
 protected:
  // Blocks exp1 in both directions; checks that it is blocked.
  void attach_and_block(Datapath& dp) {
    XFP_ASSERT_OK(attach(dp));
    Policy p;
    p.add("in", Layer::Inbound, Action::Block, {eq(Field::EtherType, kExp1)})
        .add("out", Layer::Outbound, Action::Block, {eq(Field::EtherType, kExp1)});
    XFP_ASSERT_OK(install(dp, p));
    auto xdp = query_xdp(*xfp_ns_, xfp_if());
    XFP_ASSERT_OK(xdp);
    ASSERT_NE(xdp->prog_id, 0u);
    ASSERT_TRUE(contains(tc_qdiscs(*xfp_ns_, xfp_if()), "clsact"));
    ASSERT_FALSE(tc_egress_filters(*xfp_ns_, xfp_if()).empty());
    expect_traffic(false);
    EXPECT_EQ(layer(dp, Layer::Inbound).c[XFP_CNT_BLOCK], 3u);
    EXPECT_EQ(layer(dp, Layer::Outbound).c[XFP_CNT_BLOCK], 3u);
  }

  // Sends three exp1 frames each way; they arrive iff `flows`.
  void expect_traffic(bool flows) {
    Sent in, out;
    for (int i = 0; i < 3; ++i) {
      in.add(FrameBuilder().dst(kXfpMac).src(kPeerMac).ethertype(kExp1), flows);
      out.add(FrameBuilder().dst(kPeerMac).src(kXfpMac).ethertype(kExp1), flows);
    }
    exchange_and_expect_permitted(in, out);
  }

  void expect_nothing_attached() {
    auto xdp = query_xdp(*xfp_ns_, xfp_if());
    XFP_ASSERT_OK(xdp);
    EXPECT_EQ(xdp->prog_id, 0u) << "XDP program " << xdp->prog_name << " left on " << xfp_if();
    EXPECT_EQ(xdp->attach_mode, XDP_ATTACHED_NONE);
    const std::string link = ip_link_details(*xfp_ns_, xfp_if());
    EXPECT_FALSE(contains(link, "prog/xdp")) << link;
    const std::string qdiscs = tc_qdiscs(*xfp_ns_, xfp_if());
    EXPECT_FALSE(contains(qdiscs, "clsact")) << qdiscs;
    EXPECT_EQ(tc_egress_filters(*xfp_ns_, xfp_if()), "");
  }
};

TEST_F(FastpathDetach, DetachRemovesXdpAndClsact) {
  Datapath* dp = shared_datapath();
  ASSERT_NE(dp, nullptr);
  ASSERT_NO_FATAL_FAILURE(attach_and_block(*dp));
  XFP_ASSERT_OK(detach(*dp));
  EXPECT_TRUE(dp->attachments().empty());
  expect_nothing_attached();
  expect_traffic(true);
  // The detached program classifies nothing any more.
  EXPECT_EQ(layer(*dp, Layer::Inbound).c[XFP_CNT_FRAMES], 3u);
  EXPECT_EQ(layer(*dp, Layer::Outbound).c[XFP_CNT_FRAMES], 3u);
  // And it can attach again.
  XFP_ASSERT_OK(attach(*dp));
  expect_traffic(false);
}

TEST_F(FastpathDetach, DestroyingTheDatapathDetaches) {
  Datapath* dp = open_datapath();
  ASSERT_NE(dp, nullptr);
  ASSERT_NO_FATAL_FAILURE(attach_and_block(*dp));
  destroy_datapath(dp);
  expect_nothing_attached();
  expect_traffic(true);
}

TEST_F(FastpathDetach, DetachKeepsAClsactXfpDidNotCreate) {
  XFP_ASSERT_OK(test::run_in_netns(*xfp_ns_, {"/usr/sbin/tc", "qdisc", "add", "dev", xfp_if(), "clsact"}));
  Datapath* dp = shared_datapath();
  ASSERT_NE(dp, nullptr);
  ASSERT_NO_FATAL_FAILURE(attach_and_block(*dp));
  XFP_ASSERT_OK(detach(*dp));
  const std::string qdiscs = tc_qdiscs(*xfp_ns_, xfp_if());
  EXPECT_TRUE(contains(qdiscs, "clsact")) << "xfp removed a qdisc it did not create: " << qdiscs;
  EXPECT_EQ(tc_egress_filters(*xfp_ns_, xfp_if()), "") << "xfp's egress filter is still there";
  auto xdp = query_xdp(*xfp_ns_, xfp_if());
  XFP_ASSERT_OK(xdp);
  EXPECT_EQ(xdp->prog_id, 0u);
  expect_traffic(true);
}

// ===========================================================================
// 6. Errors a user sees.

TEST_F(FastpathTest, AttachErrors) {
  Datapath* dp = shared_datapath();
  ASSERT_NE(dp, nullptr);

  const Status unknown = attach_name(*dp, "xfpt-nosuchif");
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(contains(unknown.error().message, "unknown interface")) << unknown.error().message;
  EXPECT_TRUE(contains(unknown.error().message, "xfpt-nosuchif")) << unknown.error().message;
  EXPECT_TRUE(dp->attachments().empty());

  const Status not_attached = detach(*dp);
  ASSERT_FALSE(not_attached.ok());
  EXPECT_TRUE(contains(not_attached.error().message, "is not attached")) << not_attached.error().message;
  EXPECT_TRUE(contains(not_attached.error().message, xfp_if())) << not_attached.error().message;

  XFP_ASSERT_OK(attach(*dp));
  Policy p;
  p.add("block", Layer::Inbound, Action::Block, {eq(Field::EtherType, kExp1)});
  XFP_ASSERT_OK(install(*dp, p));
  auto before = query_xdp(*xfp_ns_, xfp_if());
  XFP_ASSERT_OK(before);

  const Status twice = attach(*dp);
  ASSERT_FALSE(twice.ok());
  EXPECT_TRUE(contains(twice.error().message, "attached already")) << twice.error().message;

  // The refused attach changed nothing: same program, still filtering.
  auto after = query_xdp(*xfp_ns_, xfp_if());
  XFP_ASSERT_OK(after);
  EXPECT_EQ(after->prog_id, before->prog_id);
  EXPECT_EQ(dp->attachments().size(), 1u);
  Sent sent;
  sent.add(FrameBuilder().dst(kXfpMac).src(kPeerMac).ethertype(kExp1), false);
  sent.add(FrameBuilder().dst(kXfpMac).src(kPeerMac).ethertype(kExp2), true);
  XFP_ASSERT_OK(peer_sock_->send_frames(sent.all()));
  expect_exactly_permitted(sent, receive_marked(*xfp_sock_, 1));

  XFP_ASSERT_OK(detach(*dp));
  const Status again = detach(*dp);
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(contains(again.error().message, "is not attached")) << again.error().message;
}

// ===========================================================================
// 7. A stale xfp program (a killed daemon's) is replaced by the next attach.

TEST_F(FastpathTest, AttachReplacesAStaleXfpProgram) {
  Datapath* stale = open_datapath();
  ASSERT_NE(stale, nullptr);
  XFP_ASSERT_OK(attach(*stale));
  Policy stale_policy;
  stale_policy.add("in", Layer::Inbound, Action::Block, {eq(Field::EtherType, kExp1)})
      .add("out", Layer::Outbound, Action::Block, {eq(Field::EtherType, kExp1)});
  XFP_ASSERT_OK(install(*stale, stale_policy));
  auto stale_xdp = query_xdp(*xfp_ns_, xfp_if());
  XFP_ASSERT_OK(stale_xdp);
  ASSERT_NE(stale_xdp->prog_id, 0u);

  // The second Datapath knows nothing of the first: its attach must replace it.
  Datapath* fresh = shared_datapath();
  ASSERT_NE(fresh, nullptr);
  XFP_ASSERT_OK(attach(*fresh));
  Policy fresh_policy;
  fresh_policy.add("in", Layer::Inbound, Action::Block, {eq(Field::EtherType, kExp2)})
      .add("out", Layer::Outbound, Action::Block, {eq(Field::EtherType, kExp2)});
  XFP_ASSERT_OK(install(*fresh, fresh_policy));
  auto fresh_xdp = query_xdp(*xfp_ns_, xfp_if());
  XFP_ASSERT_OK(fresh_xdp);
  EXPECT_NE(fresh_xdp->prog_id, 0u);
  EXPECT_NE(fresh_xdp->prog_id, stale_xdp->prog_id) << "the stale program is still attached";

  // The fresh policy applies (exp2 blocked, exp1 passes), in both directions.
  const LayerCounters stale_in_before = layer(*stale, Layer::Inbound);
  const LayerCounters stale_out_before = layer(*stale, Layer::Outbound);
  Sent in, out;
  for (int i = 0; i < 4; ++i) {
    in.add(FrameBuilder().dst(kXfpMac).src(kPeerMac).ethertype(kExp1), true);
    in.add(FrameBuilder().dst(kXfpMac).src(kPeerMac).ethertype(kExp2), false);
    out.add(FrameBuilder().dst(kPeerMac).src(kXfpMac).ethertype(kExp1), true);
    out.add(FrameBuilder().dst(kPeerMac).src(kXfpMac).ethertype(kExp2), false);
  }
  exchange_and_expect_permitted(in, out);
  EXPECT_EQ(fresh->filter_counters(fresh_policy.slot("in")).frames, 4u);
  EXPECT_EQ(fresh->filter_counters(fresh_policy.slot("out")).frames, 4u);
  EXPECT_EQ(layer(*fresh, Layer::Inbound).c[XFP_CNT_FRAMES], 8u);
  EXPECT_EQ(layer(*fresh, Layer::Outbound).c[XFP_CNT_FRAMES], 8u);
  // The stale programs classify nothing any more.
  EXPECT_EQ(layer(*stale, Layer::Inbound).c[XFP_CNT_FRAMES], stale_in_before.c[XFP_CNT_FRAMES]);
  EXPECT_EQ(layer(*stale, Layer::Outbound).c[XFP_CNT_FRAMES], stale_out_before.c[XFP_CNT_FRAMES]);

  // The fresh one detaches cleanly; then the stale one's cleanup finds nothing
  // of its own and the interface ends up bare.
  XFP_ASSERT_OK(detach(*fresh));
  destroy_datapath(stale);
  auto end = query_xdp(*xfp_ns_, xfp_if());
  XFP_ASSERT_OK(end);
  EXPECT_EQ(end->prog_id, 0u);
  EXPECT_FALSE(contains(tc_qdiscs(*xfp_ns_, xfp_if()), "clsact"));
}

// A stale Datapath that is still alive (a daemon being restarted while the
// old one shuts down) must not tear down its replacement when it goes.
TEST_F(FastpathTest, DestroyingAReplacedDatapathLeavesItsReplacementAttached) {
  Datapath* stale = open_datapath();
  ASSERT_NE(stale, nullptr);
  XFP_ASSERT_OK(attach(*stale));
  Datapath* fresh = shared_datapath();
  ASSERT_NE(fresh, nullptr);
  XFP_ASSERT_OK(attach(*fresh));
  Policy p;
  p.add("in", Layer::Inbound, Action::Block, {eq(Field::EtherType, kExp2)})
      .add("out", Layer::Outbound, Action::Block, {eq(Field::EtherType, kExp2)});
  XFP_ASSERT_OK(install(*fresh, p));
  auto fresh_xdp = query_xdp(*xfp_ns_, xfp_if());
  XFP_ASSERT_OK(fresh_xdp);

  destroy_datapath(stale);

  auto xdp = query_xdp(*xfp_ns_, xfp_if());
  XFP_ASSERT_OK(xdp);
  EXPECT_EQ(xdp->prog_id, fresh_xdp->prog_id) << "the replacement's XDP program was removed";
  const std::string qdiscs = tc_qdiscs(*xfp_ns_, xfp_if());
  EXPECT_TRUE(contains(qdiscs, "clsact")) << "the replacement's clsact qdisc was removed: " << qdiscs;
  EXPECT_FALSE(tc_egress_filters(*xfp_ns_, xfp_if()).empty()) << "the replacement's TC filter was removed";
  Sent in, out;
  in.add(FrameBuilder().dst(kXfpMac).src(kPeerMac).ethertype(kExp2), false);
  in.add(FrameBuilder().dst(kXfpMac).src(kPeerMac).ethertype(kExp1), true);
  out.add(FrameBuilder().dst(kPeerMac).src(kXfpMac).ethertype(kExp2), false);
  out.add(FrameBuilder().dst(kPeerMac).src(kXfpMac).ethertype(kExp1), true);
  exchange_and_expect_permitted(in, out);
}

// ===========================================================================
// The interface and compartment fields see the real attachment.

TEST_F(FastpathTest, InterfaceAndCompartmentMatchTheAttachedVeth) {
  Datapath* dp = shared_datapath();
  ASSERT_NE(dp, nullptr);
  XFP_ASSERT_OK(attach(*dp));
  const uint64_t ifindex = static_cast<uint64_t>(pair_->b().ifindex);
  const uint64_t compartment = xfp_ns_->inode() & 0xffffffffu;
  Policy p;
  // Permit exp1 only on this interface in this namespace; block the rest of exp1.
  p.add("here", Layer::Inbound, Action::Permit,
        {eq(Field::EtherType, kExp1), eq(Field::Interface, ifindex), eq(Field::Compartment, compartment)}, 10)
      .add("mac", Layer::Inbound, Action::Permit,
           {eq(Field::EtherType, kExp2), eq(Field::InterfaceMac, mac_value(kXfpMac))}, 10)
      .add("rest", Layer::Inbound, Action::Block, {eq(Field::EtherType, kExp1)}, 1)
      .add("rest2", Layer::Inbound, Action::Block, {eq(Field::EtherType, kExp2)}, 1);
  XFP_ASSERT_OK(install(*dp, p));
  Sent sent;
  sent.add(FrameBuilder().dst(kXfpMac).src(kPeerMac).ethertype(kExp1), true);
  sent.add(FrameBuilder().dst(kXfpMac).src(kPeerMac).ethertype(kExp2), true);
  XFP_ASSERT_OK(peer_sock_->send_frames(sent.all()));
  expect_exactly_permitted(sent, receive_marked(*xfp_sock_, sent.permitted.size()));
  EXPECT_EQ(dp->filter_counters(p.slot("here")).frames, 1u) << "interface or compartment did not match";
  EXPECT_EQ(dp->filter_counters(p.slot("mac")).frames, 1u) << "interface MAC did not match";
  EXPECT_EQ(dp->filter_counters(p.slot("rest")).frames, 0u);
}

// The compartment is the namespace of the interface, also when the thread
// that attaches is not the process's first thread (a daemon's control thread).
TEST_F(FastpathTest, CompartmentIsTheAttachingThreadsNamespace) {
  Datapath* dp = shared_datapath();
  ASSERT_NE(dp, nullptr);
  Status attached = make_error(EINVAL, "the attaching thread did not run");
  std::thread control([&] {
    auto inside = ScopedNetnsEnter::enter(*xfp_ns_);
    if (!inside) {
      attached = std::move(inside).error();
      return;
    }
    attached = dp->attach(xfp_if());
  });
  control.join();
  XFP_ASSERT_OK(attached);
  const uint64_t compartment = xfp_ns_->inode() & 0xffffffffu;
  Policy p;
  p.add("here", Layer::Inbound, Action::Block, {eq(Field::EtherType, kExp1), eq(Field::Compartment, compartment)});
  XFP_ASSERT_OK(install(*dp, p));
  Sent sent;
  sent.add(FrameBuilder().dst(kXfpMac).src(kPeerMac).ethertype(kExp1), false);
  sent.add(FrameBuilder().dst(kXfpMac).src(kPeerMac).ethertype(kExp2), true);
  XFP_ASSERT_OK(peer_sock_->send_frames(sent.all()));
  expect_exactly_permitted(sent, receive_marked(*xfp_sock_, sent.permitted.size()));
  EXPECT_EQ(dp->filter_counters(p.slot("here")).frames, 1u)
      << "the interface's compartment is not the inode of " << xfp_ns_->name();
}

// One Datapath attached to interfaces in two namespaces (compartments). Both
// veth ends have the same ifindex in their own namespace, as the first link
// of every new namespace does: their facts (MAC, compartment) must not mix.
TEST_F(FastpathTest, OneDatapathOnInterfacesInTwoNamespaces) {
  Datapath* dp = shared_datapath();
  ASSERT_NE(dp, nullptr);
  ASSERT_EQ(pair_->a().ifindex, pair_->b().ifindex) << "this case needs equal ifindexes";
  XFP_ASSERT_OK(attach(*dp));
  {
    auto inside = ScopedNetnsEnter::enter(*peer_ns_);
    XFP_ASSERT_OK(inside);
    XFP_ASSERT_OK(dp->attach(peer_if()));
  }
  // Detach the peer end from inside its own namespace, whatever happens below.
  OnScopeExit detach_peer([&] {
    auto inside = ScopedNetnsEnter::enter(*peer_ns_);
    if (!inside) {
      ADD_FAILURE() << inside.error().message;
      return;
    }
    const Status s = dp->detach(peer_if());
    EXPECT_TRUE(s.ok()) << s.error().message;
  });

  const uint64_t xfp_compartment = xfp_ns_->inode() & 0xffffffffu;
  Policy p;
  p.add("compartment", Layer::Inbound, Action::Block,
        {eq(Field::EtherType, kExp1), eq(Field::Compartment, xfp_compartment)})
      .add("iface_mac", Layer::Inbound, Action::Block,
           {eq(Field::EtherType, kExp2), eq(Field::InterfaceMac, mac_value(kXfpMac))});
  XFP_ASSERT_OK(install(*dp, p));

  Sent to_xfp, to_peer;
  for (const bool to_xfp_side : {true, false}) {
    Sent& s = to_xfp_side ? to_xfp : to_peer;
    const Mac dst = to_xfp_side ? kXfpMac : kPeerMac;
    const Mac src = to_xfp_side ? kPeerMac : kXfpMac;
    // Both filters are about the xfp-side interface: they block only there.
    s.add(FrameBuilder().dst(dst).src(src).ethertype(kExp1), !to_xfp_side);
    s.add(FrameBuilder().dst(dst).src(src).ethertype(kExp2), !to_xfp_side);
    s.add(FrameBuilder().dst(dst).src(src).ethertype(kExp3), true);
  }
  XFP_ASSERT_OK(peer_sock_->send_frames(to_xfp.all()));
  XFP_ASSERT_OK(xfp_sock_->send_frames(to_peer.all()));
  {
    SCOPED_TRACE("into the xfp namespace");
    expect_exactly_permitted(to_xfp, receive_marked(*xfp_sock_, to_xfp.permitted.size()));
  }
  {
    SCOPED_TRACE("into the peer namespace");
    expect_exactly_permitted(to_peer, receive_marked(*peer_sock_, to_peer.permitted.size()));
  }
  EXPECT_EQ(dp->filter_counters(p.slot("compartment")).frames, 1u);
  EXPECT_EQ(dp->filter_counters(p.slot("iface_mac")).frames, 1u);
}

}  // namespace
}  // namespace xfp
