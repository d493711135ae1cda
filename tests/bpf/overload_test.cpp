// The overload guard in the XDP program (abi.h, struct xfp_xsk_load),
// through BPF_PROG_TEST_RUN: a frame whose callout is served is redirected
// to the queue's AF_XDP socket while punted - consumed < capacity; once the
// queue is full it takes the overload policy's verdict instead, and
// XFP_CNT_OVERLOAD_PERMIT / _BLOCK and the entry's `overloaded` count it.
// The socket is a real one (an XSKMAP entry needs it), bound to the loopback
// device of a namespace the test makes; no frame goes anywhere: a test run
// of XDP_REDIRECT only returns the verdict.
#include <linux/bpf.h>
#include <net/if.h>

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>

#include "support/assert_ok.hpp"
#include "support/frame_builder.hpp"
#include "support/netns.hpp"
#include "support/packet_io.hpp"
#include "support/privileges.hpp"
#include "xfp/compiler.hpp"
#include "xfp/datapath.hpp"
#include "xfp/filter_set.hpp"
#include "xfp/punt_header.hpp"
#include "xfp/xsk.hpp"

namespace xfp {
namespace {

constexpr uint16_t kCalloutId = 7;
constexpr uint32_t kCapacity = 8;
constexpr uint16_t kMarked = 0x88b5;

class OverloadGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    auto ns = test::NetNs::create();
    XFP_ASSERT_OK(ns);
    ns_.emplace(std::move(*ns));
    auto inside = test::ScopedNetnsEnter::enter(*ns_);
    XFP_ASSERT_OK(inside);
    auto dp = Datapath::open();
    XFP_ASSERT_OK(dp);
    dp_ = std::move(dp).value();
    lo_ = ::if_nametoindex("lo");
    ASSERT_NE(lo_, 0u);
    XskOptions so;
    so.frames = 64;
    so.rx_frames = 32;
    so.ring_size = 32;
    auto sock = XskSocket::open("lo", 0, so);
    XFP_ASSERT_OK(sock);
    sock_ = std::move(sock).value();
  }

  void TearDown() override {
    if (!ns_) return;
    auto inside = test::ScopedNetnsEnter::enter(*ns_);
    sock_.reset();
    dp_.reset();
  }

  // One callout filter that every marked frame reaches; `flags` may ask it
  // to fail open. The test program's attachment key is the ifindex.
  void install(uint32_t flags, OverloadPolicy policy) {
    FilterSet set;
    Filter f;
    f.name = "slow";
    f.layer = Layer::Inbound;
    f.action = Action::CalloutTerminating;
    f.callout = "xfp.test.overload";
    f.flags = flags;
    f.conditions = {Condition{Field::EtherType, Match::Equal, kMarked, 0, ~0ull}};
    ASSERT_TRUE(set.add_filter(f).ok());
    auto compiled = compile(set, {}, [](const std::string&) { return kCalloutId; });
    XFP_ASSERT_OK(compiled);
    XFP_ASSERT_OK(dp_->install(*compiled));
    XFP_ASSERT_OK(dp_->set_callout_served(kCalloutId, true));
    XFP_ASSERT_OK(dp_->guard_xsk(lo_, 0, XskGuard{kCapacity, policy}));
    XFP_ASSERT_OK(dp_->bind_xsk(lo_, 0, sock_->fd()));
    q_ = dp_->xsk_load(lo_, 0);
    ASSERT_NE(q_, nullptr);
    EXPECT_EQ(q_->punted, 0u);  // guard_xsk starts the socket from zero
    EXPECT_EQ(q_->consumed, 0u);
    EXPECT_EQ(q_->capacity, kCapacity);
  }

  static std::vector<uint8_t> marked_frame() {
    return test::FrameBuilder()
        .dst({0x02, 0, 0, 0, 0, 0x10})
        .src({0x02, 0, 0, 0, 0, 0x11})
        .ethertype(kMarked)
        .pad_to(60)
        .build();
  }

  // The verdict, and in `out` the bytes the program handed on (the test run
  // returns the metadata area and the frame: a header in either carrier
  // shows in front of the frame).
  uint32_t run(std::vector<uint8_t>* out = nullptr) {
    auto inside = test::ScopedNetnsEnter::enter(*ns_);
    test::TestRunOptions o;
    o.ifindex = lo_;
    const test::TestRunResult r = test::test_run(dp_->xdp_prog_fd(), marked_frame(), o);
    EXPECT_EQ(r.err, 0) << std::strerror(r.err);
    if (out) *out = r.data_out;
    return r.retval;
  }

  uint64_t counter(int c) const { return dp_->layer_counters(Layer::Inbound).c[c]; }

  // Fills the queue: `capacity` frames punted, none given back.
  void fill() {
    q_->punted = 100 + kCapacity;
    q_->consumed = 100;
  }

  std::optional<test::NetNs> ns_;
  std::unique_ptr<Datapath> dp_;
  std::unique_ptr<XskSocket> sock_;
  uint32_t lo_ = 0;
  xfp_xsk_load* q_ = nullptr;
};

TEST_F(OverloadGuardTest, RoomPuntsAndCountsTheFrame) {
  install(0, OverloadPolicy::FailClosed);
  const uint64_t punts = counter(XFP_CNT_PUNT);
  EXPECT_EQ(run(), static_cast<uint32_t>(XDP_REDIRECT));
  EXPECT_EQ(run(), static_cast<uint32_t>(XDP_REDIRECT));
  EXPECT_EQ(q_->punted, 2u);
  EXPECT_EQ(q_->overloaded, 0u);
  EXPECT_EQ(counter(XFP_CNT_PUNT) - punts, 2u);
  // One slot left: the frame goes; then the queue is full.
  q_->punted = 100 + kCapacity - 1;
  q_->consumed = 100;
  EXPECT_EQ(run(), static_cast<uint32_t>(XDP_REDIRECT));
  EXPECT_EQ(q_->punted, 100u + kCapacity);
  EXPECT_EQ(run(), static_cast<uint32_t>(XDP_DROP));
  EXPECT_EQ(q_->punted, 100u + kCapacity);  // a refused frame is not punted
}

TEST_F(OverloadGuardTest, FullQueueFailsClosedAndCountsIt) {
  install(0, OverloadPolicy::FailClosed);
  fill();
  const uint64_t block = counter(XFP_CNT_OVERLOAD_BLOCK), permit = counter(XFP_CNT_OVERLOAD_PERMIT);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(run(), static_cast<uint32_t>(XDP_DROP));
  EXPECT_EQ(counter(XFP_CNT_OVERLOAD_BLOCK) - block, 3u);
  EXPECT_EQ(counter(XFP_CNT_OVERLOAD_PERMIT) - permit, 0u);
  EXPECT_EQ(q_->overloaded, 3u);
  EXPECT_EQ(q_->punted, 100u + kCapacity);
  // The worker gives one frame back: room for one.
  q_->consumed = 101;
  EXPECT_EQ(run(), static_cast<uint32_t>(XDP_REDIRECT));
  EXPECT_EQ(run(), static_cast<uint32_t>(XDP_DROP));
  EXPECT_EQ(q_->overloaded, 4u);
}

TEST_F(OverloadGuardTest, FullQueueFailsOpenAndCountsIt) {
  // Fail open although the filter's own fail action is block.
  install(0, OverloadPolicy::FailOpen);
  fill();
  const uint64_t block = counter(XFP_CNT_OVERLOAD_BLOCK), permit = counter(XFP_CNT_OVERLOAD_PERMIT);
  EXPECT_EQ(run(), static_cast<uint32_t>(XDP_PASS));
  EXPECT_EQ(run(), static_cast<uint32_t>(XDP_PASS));
  EXPECT_EQ(counter(XFP_CNT_OVERLOAD_PERMIT) - permit, 2u);
  EXPECT_EQ(counter(XFP_CNT_OVERLOAD_BLOCK) - block, 0u);
  EXPECT_EQ(q_->overloaded, 2u);
}

TEST_F(OverloadGuardTest, FailActionUsesTheFiltersOwnFailAction) {
  install(0, OverloadPolicy::FailAction);  // a terminating callout fails closed
  fill();
  uint64_t block = counter(XFP_CNT_OVERLOAD_BLOCK);
  EXPECT_EQ(run(), static_cast<uint32_t>(XDP_DROP));
  EXPECT_EQ(counter(XFP_CNT_OVERLOAD_BLOCK) - block, 1u);

  install(XFP_FILTER_PERMIT_IF_CALLOUT_UNREGISTERED, OverloadPolicy::FailAction);
  fill();
  const uint64_t permit = counter(XFP_CNT_OVERLOAD_PERMIT);
  block = counter(XFP_CNT_OVERLOAD_BLOCK);
  EXPECT_EQ(run(), static_cast<uint32_t>(XDP_PASS));
  EXPECT_EQ(counter(XFP_CNT_OVERLOAD_PERMIT) - permit, 1u);
  EXPECT_EQ(counter(XFP_CNT_OVERLOAD_BLOCK) - block, 0u);
}

TEST_F(OverloadGuardTest, AWorkerAheadOfTheKernelOrNoCapacityNeverLooksFull) {
  install(0, OverloadPolicy::FailClosed);
  // consumed > punted (the difference is read as signed): room.
  q_->punted = 5;
  q_->consumed = 1000;
  EXPECT_EQ(run(), static_cast<uint32_t>(XDP_REDIRECT));
  // Wrap of the u64 counters: the difference still counts.
  q_->punted = kCapacity - 1;
  q_->consumed = ~0ull;  // -1: kCapacity in flight
  EXPECT_EQ(run(), static_cast<uint32_t>(XDP_DROP));
  // Capacity 0: unguarded (every frame punted).
  q_->capacity = 0;
  q_->punted = 1u << 20;
  q_->consumed = 0;
  EXPECT_EQ(run(), static_cast<uint32_t>(XDP_REDIRECT));
  EXPECT_EQ(q_->overloaded, 1u);
}


// The punt header, in whichever carrier the datapath chose
// (XFP_PUNT_CARRIER picks one for the whole suite): a frame that goes to the
// socket has it in front; a frame that goes anywhere else leaves exactly as
// it came.
TEST_F(OverloadGuardTest, APuntedFrameCarriesTheHeaderInFrontAndTheFrameAfterIt) {
  install(0, OverloadPolicy::FailClosed);
  const uint64_t in_band = counter(XFP_CNT_PUNT_IN_BAND);
  std::vector<uint8_t> out;
  ASSERT_EQ(run(&out), static_cast<uint32_t>(XDP_REDIRECT));
  const auto frame = marked_frame();
  ASSERT_EQ(out.size(), frame.size() + sizeof(xfp_punt_meta));
  xfp_punt_meta meta;
  std::memcpy(&meta, out.data(), sizeof meta);
  EXPECT_EQ(meta.magic, XFP_PUNT_MAGIC);
  EXPECT_EQ(meta.layer, XFP_LAYER_INBOUND);
  EXPECT_EQ(std::vector<uint8_t>(out.begin() + sizeof meta, out.end()), frame);
  EXPECT_EQ(counter(XFP_CNT_PUNT_IN_BAND) - in_band, dp_->carrier() == PuntCarrier::InBand ? 1u : 0u);

  // What the worker reads off such a descriptor: the header, then the frame
  // alone.
  std::vector<uint8_t> chunk(256 + out.size());
  std::memcpy(chunk.data() + 256 - (dp_->carrier() == PuntCarrier::Metadata ? sizeof meta : 0), out.data(),
              out.size());
  uint8_t* data = chunk.data() + 256;
  uint64_t offset = 256;
  uint32_t len = static_cast<uint32_t>(dp_->carrier() == PuntCarrier::Metadata ? frame.size() : out.size());
  xfp_punt_meta read{};
  EXPECT_EQ(take_punt_header(data, offset, len, read),
            dp_->carrier() == PuntCarrier::Metadata ? PuntHeaderSource::Metadata : PuntHeaderSource::InBand);
  EXPECT_EQ(std::memcmp(&read, &meta, sizeof meta), 0);
  EXPECT_EQ(std::vector<uint8_t>(data, data + len), frame);
}

TEST_F(OverloadGuardTest, AFrameTheOverloadPolicyPassesLeavesWithoutTheHeader) {
  install(0, OverloadPolicy::FailOpen);
  fill();
  std::vector<uint8_t> out;
  EXPECT_EQ(run(&out), static_cast<uint32_t>(XDP_PASS));
  EXPECT_EQ(out, marked_frame());
  EXPECT_EQ(q_->punted, 100u + kCapacity);  // not counted as handed to the socket
}

TEST_F(OverloadGuardTest, AFrameWhoseSocketIsGoneTakesTheFailActionUntouched) {
  install(XFP_FILTER_PERMIT_IF_CALLOUT_UNREGISTERED, OverloadPolicy::FailClosed);
  XFP_ASSERT_OK(dp_->unbind_xsk(lo_, 0));
  const uint64_t punted = q_->punted;
  std::vector<uint8_t> out;
  EXPECT_EQ(run(&out), static_cast<uint32_t>(XDP_PASS));
  EXPECT_EQ(out, marked_frame());
  EXPECT_EQ(q_->punted, punted);
}

}  // namespace
}  // namespace xfp
