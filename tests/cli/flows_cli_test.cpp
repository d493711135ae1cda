// `xfp flows` and `xfp --json flows` on a populated flow table: the daemon
// on a veth pair in test namespaces, the flow probe plugin (it gives each
// flow its context and, with "offload=permit", hands the flow's permit to
// the kernel), one UDP flow sent from the peer. What a user reads: the flow
// in words, its device, the callout's context, the offloaded verdict and
// the kernel's packet count for it.
#include <gtest/gtest.h>

#include <thread>

#include <fmt/format.h>

#include "cli_harness.hpp"
#include "support/assert_ok.hpp"
#include "support/flow_frames.hpp"
#include "support/netns.hpp"
#include "support/packet_io.hpp"
#include "support/peer_pair.hpp"
#include "support/privileges.hpp"

namespace xfp::clitest {
namespace {

using nlohmann::json;
using test::L4Options;
using test::Mac;

constexpr Mac kPeerMac{0x02, 0x00, 0x00, 0x6d, 0x01, 0x01};
constexpr Mac kXfpMac{0x02, 0x00, 0x00, 0x6d, 0x01, 0x02};
constexpr test::Ipv4Addr kPeerIp{198, 18, 77, 1};
constexpr test::Ipv4Addr kXfpIp{198, 18, 77, 2};
constexpr int kFrames = 20;

class FlowsCli : public ::testing::Test, protected test::PeerPair {};

TEST_F(FlowsCli, ShowsTheFlowItsContextAndItsOffloadedVerdictWithKernelCounters) {
  XFP_REQUIRE_ROOT();
  XFP_ASSERT_OK(create_peer_pair(kPeerMac, kXfpMac));
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string dev = pair_->b().name;

  Daemon daemon(xfp_ns_->name(), dir / "xfp.sock", dir / "state", dir / "daemon.log");
  ASSERT_TRUE(daemon.start({"--plugin-dir", XFP_TEST_FLOW_PROBE_DIR}));
  auto cli = [&](const std::vector<std::string>& args) {
    RunOptions o;
    o.timeout = std::chrono::seconds(10);
    return daemon.cli(args, o);
  };
  Outcome r = cli({"flows"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find("0 flow(s) tracked"), std::string::npos) << r.out;

  r = cli({"attach", dev, "--layers", "inbound"});
  ASSERT_EQ(r.code, 0) << r << daemon.log();
  r = cli({"callout", "load", std::string(XFP_TEST_FLOW_PROBE_DIR) + "/flow_probe.so", "--config", "offload=permit"});
  ASSERT_EQ(r.code, 0) << r << daemon.log();
  r = cli({"filter", "add", "name", "flows", "ethertype", "eq", "ipv4", "action", "callout-terminating", "callout",
           "xfp.test.flow"});
  ASSERT_EQ(r.code, 0) << r << daemon.log();

  // One UDP flow, 198.18.77.1:40000 -> 198.18.77.2:9: the first frames go to
  // the callout (context, then the offload), the rest stay in the kernel.
  const auto frame = test::ipv4_frame(kPeerMac, kXfpMac, kPeerIp, kXfpIp,
                                      L4Options{.protocol = 17, .src_port = 40000, .dst_port = 9});
  // The JSON: this flow, on this device, with the probe's context and a
  // permit offloaded on the inbound layer. The offload is written a moment
  // after the callout asks (its frames meanwhile still go to the callout):
  // send until it shows, then kFrames more, which the kernel alone decides.
  json flow;
  json j;
  auto find_flow = [&] {
    Outcome out = cli({"--json", "flows"});
    EXPECT_EQ(out.code, 0) << out;
    j = json::parse(out.out, nullptr, false);
    flow = json();
    if (j.is_discarded()) return;
    for (const json& f : j.value("flows", json::array()))
      if (f.value("key", "").find("198.18.77.1:40000") != std::string::npos &&
          !f.value("offload", json::array()).empty())
        flow = f;
  };
  for (int i = 0; i < 100 && flow.is_null(); ++i) {
    ASSERT_TRUE(peer_sock_->send_frame(frame).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    find_flow();
  }
  ASSERT_FALSE(flow.is_null()) << "no offloaded flow of 198.18.77.1:40000 in:\n" << j.dump(2) << daemon.log();
  const uint64_t packets_before = flow["offload"][0].value("packets", uint64_t{0});
  for (int i = 0; i < kFrames; ++i) ASSERT_TRUE(peer_sock_->send_frame(frame).ok());
  for (int i = 0; i < 50; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    find_flow();
    if (!flow.is_null() && flow["offload"][0].value("packets", uint64_t{0}) >= packets_before + kFrames) break;
  }
  ASSERT_FALSE(flow.is_null()) << "no offloaded flow of 198.18.77.1:40000 in:\n" << j.dump(2) << daemon.log();
  const std::string key = flow.value("key", "");
  EXPECT_NE(key.find("udp "), std::string::npos) << key;
  EXPECT_NE(key.find("198.18.77.2:9"), std::string::npos) << key;
  EXPECT_NE(key.find("02:00:00:6d:01:01"), std::string::npos) << key;
  EXPECT_EQ(flow.value("device", ""), dev);
  EXPECT_EQ(flow.value("protocol", 0), 17);
  EXPECT_EQ(flow.value("ethertype", 0), 0x0800);
  EXPECT_EQ(flow.value("handle", "").size(), 16u);
  // The probe gives each flow two contexts: its own (FLOWP_MAIN_CONTEXT + n)
  // and its conditional callout's (FLOWP_COND_CONTEXT + n).
  uint64_t context = 0, cond_context = 0;
  ASSERT_EQ(flow["contexts"].size(), 2u) << flow.dump(2);
  for (const json& c : flow["contexts"]) {
    EXPECT_EQ(c.value("layer", ""), "inbound");
    if (c.value("callout", "") == "xfp.test.flow") context = c.value("context", uint64_t{0});
    if (c.value("callout", "") == "xfp.test.flowcond") cond_context = c.value("context", uint64_t{0});
  }
  EXPECT_GE(context, 0x1000u) << flow.dump(2);
  EXPECT_LT(context, 0x2000u);
  EXPECT_EQ(cond_context, context + 0x1000u) << flow.dump(2);
  const json& off = flow["offload"][0];
  EXPECT_EQ(off.value("layer", ""), "inbound");
  EXPECT_EQ(off.value("verdict", ""), "permit");
  EXPECT_EQ(off.value("callout", ""), "xfp.test.flow");
  // Every frame after the offload was decided in the kernel, and counted.
  const uint64_t packets = off.value("packets", uint64_t{0});
  EXPECT_EQ(packets, packets_before + kFrames) << off.dump();
  EXPECT_EQ(off.value("bytes", uint64_t{0}), packets * frame.size());
  EXPECT_GE(off.value("kernel_idle_ms", -1.0), 0.0);
  EXPECT_GE(j.value("count", uint64_t{0}), 1u);
  EXPECT_GE(j["stats"].value("offloaded", uint64_t{0}), 1u);
  EXPECT_GE(j["stats"].value("contexts", uint64_t{0}), 1u);

  // The table says the same in words.
  r = cli({"flows"});
  ASSERT_EQ(r.code, 0) << r;
  for (const std::string& want :
       {std::string("HANDLE"), flow.value("handle", ""), dev, key, fmt::format("xfp.test.flow={}", context),
        fmt::format("xfp.test.flowcond={}", cond_context), fmt::format("inbound permit ({} pkts", packets)})
    EXPECT_NE(r.out.find(want), std::string::npos) << "missing '" << want << "' in:\n" << r.out;
  EXPECT_NE(r.out.find("flow(s) tracked"), std::string::npos) << r.out;

  // status counts the frames the offloaded verdict decided, in JSON and in
  // its offload table.
  const json st = json::parse(cli({"--json", "status"}).out, nullptr, false);
  ASSERT_FALSE(st.is_discarded());
  EXPECT_GE(st["counters"]["inbound"].value("offload_permit", uint64_t{0}), packets) << st.dump(2);
  EXPECT_EQ(st["counters"]["inbound"].value("offload_block", uint64_t{1}), 0u) << st.dump(2);
  EXPECT_EQ(st["counters"]["outbound"].value("offload_permit", uint64_t{1}), 0u) << st.dump(2);
  r = cli({"status"});
  ASSERT_EQ(r.code, 0) << r;
  for (const char* want : {"flow-verdict offload", "OFFL-PERMIT", "OFFL-MISS", "FIN-RST"})
    EXPECT_NE(r.out.find(want), std::string::npos) << "missing '" << want << "' in:\n" << r.out;

  EXPECT_EQ(daemon.stop(), 0) << daemon.log();
}

}  // namespace
}  // namespace xfp::clitest
