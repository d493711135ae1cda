// Kill-restart cycles under traffic (issue 6, item 3): N times (XFP_KILL_CYCLES,
// default 10; scripts/kill-restart.sh runs 100) SIGKILL the daemon while
// frames flow, wait a random 0-100 ms, start it again (it takes the attached
// program over) and count what the kernel holds.
//
// Two namespaces joined by a veth: "peer" sends one marked frame per ms, in
// turn of EtherType 0x88b5 (permitted by the policy) and 0x88b6 (blocked by
// a persistent filter); the xfp side's stack counts what arrives.
//
// Leak accounting, robust to other tests loading programs meanwhile: every
// daemon's programs are those attached in the xfp namespace while it runs,
// its maps are theirs. Once a daemon has been killed and its successor has
// taken over, no program, map or link of it may remain (the kernel frees them
// when the last reference, the attachment, goes). The current daemon's own
// counts must stay the same from cycle to cycle, and so must the pins under
// the bpffs libxdp is pointed at.
#include <net/if.h>

#include <atomic>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "fault_support.hpp"
#include "support/frame_builder.hpp"
#include "support/packet_io.hpp"

namespace xfp::faulttest {
namespace {

using Clock = std::chrono::steady_clock;
using test::FrameBuilder;
using test::Mac;
using test::NetNs;
using test::PacketSocket;
using test::VethPair;

constexpr Mac kPeerMac{0x02, 0x00, 0x00, 0x6b, 0x21, 0x01};
constexpr Mac kXfpMac{0x02, 0x00, 0x00, 0x6b, 0x21, 0x02};
constexpr uint16_t kPermitted = 0x88b5;  // even sequence numbers
constexpr uint16_t kBlocked = 0x88b6;    // odd ones
constexpr uint32_t kMaxFrames = 2'000'000;

uint16_t type_of(uint32_t seq) { return seq % 2 == 0 ? kPermitted : kBlocked; }

struct DaemonObjects {
  std::set<uint32_t> progs, maps;
};

// The programs attached in the namespace and the maps they use.
DaemonObjects objects_of(const NetNs& ns) {
  DaemonObjects d;
  d.progs = attached_programs(ns);
  for (const BpfObject& p : bpf_objects("prog"))
    if (d.progs.count(p.id)) d.maps.insert(p.maps.begin(), p.maps.end());
  return d;
}

TEST(KillRestart, CyclesUnderTrafficLeakNothingAndLoseNoPermittedFrame) {
  XFP_REQUIRE_ROOT();
  const int cycles = env_int("XFP_KILL_CYCLES", 10);
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  TestBpffs bpffs(dir / "bpffs");
  ASSERT_TRUE(bpffs.mounted()) << std::strerror(errno);
  auto peer = NetNs::create();
  ASSERT_TRUE(peer.ok()) << peer.error().message;
  auto xns = NetNs::create();
  ASSERT_TRUE(xns.ok()) << xns.error().message;
  test::VethOptions vo;
  vo.mac_a = kPeerMac;
  vo.mac_b = kXfpMac;
  auto veth = VethPair::create(*peer, *xns, vo);
  ASSERT_TRUE(veth.ok()) << veth.error().message;

  Daemon daemon(xns->name(), dir / "xfp.sock", dir / "state", dir / "daemon.log", {"LIBXDP_BPFFS=" + bpffs.path()});
  daemon.set_start_timeout(30s);
  ASSERT_TRUE(daemon.start());
  auto cli = [&](const std::vector<std::string>& args, const std::string& input = "") {
    clitest::RunOptions o;
    o.input = input;
    return daemon.cli(args, o);
  };
  Outcome r = cli({"attach", veth->b().name});
  ASSERT_EQ(r.code, 0) << r << daemon.log();
  r = cli({"apply", "-"}, fmt::format("filter add name no-88b6 ethertype eq {:#x} action block flags persistent\n"
                                      "filter add name ok-88b5 ethertype eq {:#x} action permit flags persistent\n",
                                      kBlocked, kPermitted));
  ASSERT_EQ(r.code, 0) << r;

  auto tx = PacketSocket::open(*peer, veth->a().name);
  ASSERT_TRUE(tx.ok()) << tx.error().message;
  auto rx = PacketSocket::open(*xns, veth->b().name);
  ASSERT_TRUE(rx.ok()) << rx.error().message;
  // One frame a millisecond: permitted (even) and blocked (odd) in turn.
  SequencedTraffic traffic(
      std::move(*tx), std::move(*rx),
      [](uint32_t seq) {
        return FrameBuilder().dst(kXfpMac).src(kPeerMac).ethertype(type_of(seq)).marker(seq).pad_to(60).build();
      },
      1000, kMaxFrames);
  std::this_thread::sleep_for(300ms);

  const size_t global_before[3] = {bpf_objects("prog").size(), bpf_objects("map").size(), bpf_objects("link").size()};
  DaemonObjects first = objects_of(*xns);
  ASSERT_FALSE(first.progs.empty()) << "nothing attached in the namespace";
  const size_t pins_first = bpffs.pins();
  std::cout << "[ measured ] under the bpffs while attached:\n" << bpffs.listing();
  std::vector<DaemonObjects> dead;  // killed daemons' objects
  std::mt19937 rng(static_cast<unsigned>(::getpid()));
  size_t leaked_progs = 0, leaked_maps = 0, leaked_links = 0, max_pins = pins_first;
  bool counts_stable = true;
  const auto t0 = Clock::now();
  for (int c = 0; c < cycles; ++c) {
    DaemonObjects before = objects_of(*xns);
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 200));  // traffic under the live daemon
    EXPECT_EQ(daemon.stop(SIGKILL), -1);
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 100));  // traffic under the orphaned program
    ASSERT_TRUE(daemon.start()) << "cycle " << c;
    DaemonObjects now = objects_of(*xns);
    if (now.progs.size() != first.progs.size() || now.maps.size() != first.maps.size()) counts_stable = false;
    EXPECT_EQ(now.progs.size(), first.progs.size()) << "cycle " << c;
    for (uint32_t p : now.progs) EXPECT_EQ(before.progs.count(p), 0u) << "cycle " << c << ": program " << p << " was not taken over";
    dead.push_back(std::move(before));
    max_pins = std::max(max_pins, bpffs.pins());
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::this_thread::sleep_for(300ms);
  traffic.stop();
  ASSERT_TRUE(traffic.error().empty()) << traffic.error();

  // What the killed daemons held is gone (the kernel frees objects after an
  // RCU grace period: a few tries).
  std::set<uint32_t> dead_progs, dead_maps;
  for (const auto& d : dead) {
    dead_progs.insert(d.progs.begin(), d.progs.end());
    dead_maps.insert(d.maps.begin(), d.maps.end());
  }
  for (int attempt = 0; attempt < 20; ++attempt) {
    leaked_progs = leaked_maps = leaked_links = 0;
    for (const BpfObject& p : bpf_objects("prog")) leaked_progs += dead_progs.count(p.id);
    for (const BpfObject& m : bpf_objects("map")) leaked_maps += dead_maps.count(m.id);
    for (const BpfObject& l : bpf_objects("link")) leaked_links += dead_progs.count(l.prog_id);
    if (leaked_progs + leaked_maps + leaked_links == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  const size_t global_after[3] = {bpf_objects("prog").size(), bpf_objects("map").size(), bpf_objects("link").size()};

  uint64_t sent = traffic.sent(), delivered = 0, blocked = 0, lost = 0, leaked_through = 0;
  for (uint32_t s = 0; s < sent; ++s) {
    if (type_of(s) == kPermitted) {
      if (traffic.received(s)) ++delivered;
      else ++lost;
    } else {
      ++blocked;
      if (traffic.received(s)) ++leaked_through;
    }
  }
  std::cout << fmt::format(
      "[ measured ] {} kill-restart cycles in {:.1f} s: frames sent {}, delivered {}, dropped by policy {}, lost {}, "
      "blocked type delivered {}\n"
      "[ measured ] per daemon: {} programs attached, {} maps; killed daemons' programs/maps/links left: {}/{}/{}; "
      "pins {} -> max {}; system-wide prog/map/link {}/{}/{} -> {}/{}/{} (other tests may add to these)\n",
      cycles, seconds, sent, delivered, blocked, lost, leaked_through, first.progs.size(), first.maps.size(),
      leaked_progs, leaked_maps, leaked_links, pins_first, max_pins, global_before[0], global_before[1],
      global_before[2], global_after[0], global_after[1], global_after[2]);
  EXPECT_TRUE(counts_stable);
  EXPECT_EQ(leaked_progs, 0u);
  EXPECT_EQ(leaked_maps, 0u);
  EXPECT_EQ(leaked_links, 0u);
  EXPECT_EQ(max_pins, pins_first);
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(leaked_through, 0u);
  EXPECT_GT(delivered, 0u);

  // A clean stop detaches: nothing of the last daemon stays.
  DaemonObjects last = objects_of(*xns);
  EXPECT_EQ(daemon.stop(SIGTERM), 0) << daemon.log();
  EXPECT_TRUE(attached_programs(*xns).empty());
  size_t left = 0;
  for (int attempt = 0; attempt < 20; ++attempt) {
    left = 0;
    for (const BpfObject& p : bpf_objects("prog")) left += last.progs.count(p.id);
    for (const BpfObject& m : bpf_objects("map")) left += last.maps.count(m.id);
    if (left == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(left, 0u) << "the stopped daemon's programs or maps are still loaded";
  EXPECT_EQ(bpffs.pins(), 0u) << "pins left after a clean stop:\n" << bpffs.listing();
  EXPECT_TRUE(veth->remove().ok());
  EXPECT_TRUE(xns->remove().ok());
  EXPECT_TRUE(peer->remove().ok());
}

}  // namespace
}  // namespace xfp::faulttest
