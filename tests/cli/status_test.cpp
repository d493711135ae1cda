// attach, detach, status and counters (with --watch) on a veth pair inside
// the test namespace, with frames sent from one end to the other.
#include "cli/cli_harness.hpp"
#include "support/frame_builder.hpp"
#include "support/packet_io.hpp"
#include "xfp/kernel_features.hpp"

namespace xfp::clitest {
namespace {

using StatusTest = DaemonTest;

// What the daemon's auto choice must take here (XFP_PUNT_CARRIER, set by the
// suite's second registration, stands in for auto).
std::string expected_carrier() {
  if (const char* env = std::getenv("XFP_PUNT_CARRIER"); env && *env) return env;
  return xdp_metadata_helper_available() ? "metadata" : "in-band";
}

TEST_F(StatusTest, AttachDetachAndStatus) {
  const auto& a = veth_->a();
  const auto& b = veth_->b();
  json st = xfp_json({"status"});
  EXPECT_TRUE(st["attachments"].empty());
  EXPECT_EQ(st["filters"], json::parse(R"({"total":0,"inbound":0,"outbound":0})"));
  EXPECT_EQ(st["state_file"], daemon_->state_file());
  for (const char* layer : {"inbound", "outbound"})
    for (const char* key : {"frames", "bytes", "permit", "block", "default", "malformed", "callout_fail", "veto",
                            "overload_permit", "overload_block", "offload_permit", "offload_block",
                            "offload_redirect", "offload_miss", "offload_stale", "flow_fin_rst"})
      EXPECT_TRUE(st["counters"][layer].contains(key)) << layer << " " << key;

  Outcome r = xfp({"attach", a.name});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out.rfind("attached " + a.name + " (ifindex " + std::to_string(a.ifindex) + "): inbound XDP ", 0), 0u)
      << r;
  EXPECT_NE(r.out.find("; outbound TC egress\n"), std::string::npos) << r;
  r = xfp({"attach", b.name, "--mode", "generic", "--layers", "inbound"});
  EXPECT_EQ(r.code, 0) << r;

  st = xfp_json({"status"});
  ASSERT_EQ(st["attachments"].size(), 2u) << st;
  for (const json& at : st["attachments"]) {
    if (at["device"] == a.name) {
      EXPECT_EQ(at["ifindex"], a.ifindex);
      EXPECT_EQ(at["inbound"], true);
      EXPECT_EQ(at["outbound"], true);
      EXPECT_TRUE(at["xdp_mode"] == "native" || at["xdp_mode"] == "generic") << at;
      EXPECT_FALSE(at["loader"].get<std::string>().empty()) << at;
      EXPECT_EQ(at["punt_carrier"], expected_carrier()) << at;
    } else {
      EXPECT_EQ(at["device"], b.name);
      EXPECT_EQ(at["xdp_mode"], "generic");
      EXPECT_EQ(at["outbound"], false);
    }
  }
  r = xfp({"status"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find("DEVICE"), std::string::npos) << r;
  EXPECT_NE(r.out.find("XDP-MODE"), std::string::npos) << r;
  EXPECT_NE(r.out.find("PUNT-CARRIER"), std::string::npos) << r;
  EXPECT_NE(r.out.find(b.name), std::string::npos) << r;
  EXPECT_NE(r.out.find("CALLOUT-FAIL"), std::string::npos) << r;
  EXPECT_NE(r.out.find("OVL-BLOCK"), std::string::npos) << r;
  // Offload's table only once it has counted something.
  EXPECT_EQ(r.out.find("flow-verdict offload"), std::string::npos) << r;

  r = xfp({"detach", a.name});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "");
  r = xfp({"detach", a.name});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: '" + a.name + "' is not attached\n");
  r = xfp({"attach", "xfpnosuch0"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: unknown interface 'xfpnosuch0'\n");
  st = xfp_json({"status"});
  ASSERT_EQ(st["attachments"].size(), 1u);
  EXPECT_EQ(st["attachments"][0]["device"], b.name);
}

TEST_F(StatusTest, CountersCountFrames) {
  const auto& a = veth_->a();
  const auto& b = veth_->b();
  ASSERT_EQ(xfp({"attach", a.name, "--layers", "inbound"}).code, 0);
  ASSERT_EQ(xfp({"attach", b.name, "--layers", "outbound"}).code, 0);
  ASSERT_EQ(xfp({"filter", "add", "name", "drop-exp", "ethertype", "eq", "0x88b5", "action", "block"}).code, 0);
  ASSERT_EQ(xfp({"filter", "add", "name", "see-exp", "layer", "outbound", "ethertype", "eq", "0x88b5", "action",
                 "permit"})
                .code,
            0);

  auto sock = test::PacketSocket::open(*ns_, b.name);
  ASSERT_TRUE(sock.ok()) << sock.error().message;
  const auto frame = test::FrameBuilder().dst(a.mac).src(b.mac).ethertype(0x88b5).marker(1).pad_to(60).build();
  ASSERT_EQ(frame.size(), 60u);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(sock->send_frame(frame).ok());

  // Counters are read when asked; give the frames a moment to cross.
  json counters;
  for (int tries = 0; tries < 50; ++tries) {
    counters = xfp_json({"counters"});
    if (counters["filters"][0]["frames"] == 5) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(counters["filters"].size(), 2u) << counters;
  EXPECT_EQ(counters["filters"][0], json::parse(R"({"id":1,"name":"drop-exp","layer":"inbound","frames":5,"bytes":300})"));
  EXPECT_EQ(counters["filters"][1], json::parse(R"({"id":2,"name":"see-exp","layer":"outbound","frames":5,"bytes":300})"));

  json st = xfp_json({"status"});
  EXPECT_GE(st["counters"]["inbound"]["block"].get<uint64_t>(), 5u) << st;
  EXPECT_GE(st["counters"]["outbound"]["permit"].get<uint64_t>(), 5u) << st;
  EXPECT_GE(st["counters"]["inbound"]["frames"].get<uint64_t>(), 5u) << st;

  Outcome r = xfp({"counters"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out,
            "ID  NAME      LAYER     FRAMES  BYTES\n"
            " 1  drop-exp  inbound        5    300\n"
            " 2  see-exp   outbound       5    300\n");
  json list = xfp_json({"filter", "list"});
  EXPECT_EQ(list["filters"][0]["counters"], json::parse(R"({"frames":5,"bytes":300})"));

  // A deleted filter's slot starts from zero for the next filter.
  ASSERT_EQ(xfp({"filter", "delete", "drop-exp"}).code, 0);
  ASSERT_EQ(xfp({"filter", "add", "name", "fresh", "ethertype", "eq", "lldp", "action", "block"}).code, 0);
  json fresh = xfp_json({"filter", "show", "fresh"});
  EXPECT_EQ(fresh["filter"]["counters"], json::parse(R"({"frames":0,"bytes":0})"));
}

// WFP's veto: a callout's block overrides a hard permit (clear-action-right)
// of a higher sublayer. Only user space sees the callout's verdict, so the
// workers count it and status shows it in the inbound layer's VETO.
TEST_F(StatusTest, ACalloutBlockThatVetoesAHardPermitIsCounted) {
  const auto& a = veth_->a();
  const auto& b = veth_->b();
  const char* build = std::getenv("XFP_BUILD_DIR");
  const std::string allowlist = std::string(build && *build ? build : ".") + "/plugins/libxfp_mac_allowlist.so";
  ASSERT_EQ(xfp({"attach", a.name, "--layers", "inbound"}).code, 0);
  // b's MAC is not on the allow-list: the callout blocks every frame.
  Outcome r = xfp({"callout", "load", allowlist, "--config", "allow=02:00:00:00:00:01"});
  ASSERT_EQ(r.code, 0) << r << daemon_->log();
  ASSERT_EQ(xfp({"sublayer", "add", "high", "weight", "200"}).code, 0);
  ASSERT_EQ(xfp({"sublayer", "add", "low", "weight", "100"}).code, 0);
  r = xfp({"filter", "add", "name", "hard-permit", "sublayer", "high", "ethertype", "eq", "0x88b5", "action",
           "permit", "flags", "clear-action-right"});
  ASSERT_EQ(r.code, 0) << r;
  r = xfp({"filter", "add", "name", "check", "sublayer", "low", "ethertype", "eq", "0x88b5", "action",
           "callout-terminating", "callout", "xfp.sample.mac-allowlist"});
  ASSERT_EQ(r.code, 0) << r;

  auto sock = test::PacketSocket::open(*ns_, b.name);
  ASSERT_TRUE(sock.ok()) << sock.error().message;
  auto rx = test::PacketSocket::open(*ns_, a.name);
  ASSERT_TRUE(rx.ok()) << rx.error().message;
  constexpr uint64_t kFrames = 6;
  for (uint32_t i = 0; i < kFrames; ++i)
    ASSERT_TRUE(sock->send_frame(test::FrameBuilder().dst(a.mac).src(b.mac).ethertype(0x88b5).marker(i).pad_to(60).build()).ok());

  json st;
  for (int tries = 0; tries < 50; ++tries) {
    st = xfp_json({"status"});
    if (st["counters"]["inbound"]["veto"] == kFrames) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(st["counters"]["inbound"]["veto"], kFrames) << st << daemon_->log();
  EXPECT_EQ(st["counters"]["outbound"]["veto"], 0u) << st;
  EXPECT_EQ(st["counters"]["inbound"]["punt"], kFrames) << st;
  // One worker per receive queue of a: the frames may have come in on any.
  uint64_t vetoed = 0, blocked = 0, permitted = 0;
  for (const json& w : st["workers"]) {
    vetoed += w.value("veto", uint64_t{0});
    blocked += w.value("block", uint64_t{0});
    permitted += w.value("permit", uint64_t{0});
  }
  EXPECT_EQ(vetoed, kFrames) << st;
  EXPECT_EQ(blocked, kFrames) << st;
  EXPECT_EQ(permitted, 0u) << st;
  // Vetoed means blocked: none of the frames reached a's stack.
  auto got = rx->receive(300ms, test::has_marker);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_TRUE(got->empty()) << got->size() << " vetoed frame(s) arrived";
}

TEST_F(StatusTest, WatchRedrawsUntilInterrupted) {
  RunOptions opt;
  opt.interrupt_after = 1200ms;
  opt.timeout = 10s;
  Outcome r = xfp({"status", "--watch", "0.3"}, opt);
  EXPECT_EQ(r.code, 0) << r;
  size_t samples = 0;
  for (size_t at = r.out.find("every 0.3s, Ctrl-C to stop"); at != std::string::npos;
       at = r.out.find("every 0.3s, Ctrl-C to stop", at + 1))
    ++samples;
  EXPECT_GE(samples, 2u) << r;
  EXPECT_NE(r.out.find("inbound/s"), std::string::npos) << r;

  r = xfp({"--json", "counters", "--watch", "0.3"}, opt);
  EXPECT_EQ(r.code, 0) << r;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<json> docs;
  while (std::getline(lines, line)) {
    json j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    docs.push_back(j);
  }
  ASSERT_GE(docs.size(), 2u) << r;
  EXPECT_FALSE(docs[0].contains("rates"));
  EXPECT_TRUE(docs[1].contains("rates"));
  EXPECT_TRUE(docs[1].contains("filters"));

  // --watch without a value means every second.
  opt.interrupt_after = 500ms;
  r = xfp({"status", "--watch"}, opt);
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find("every 1s, Ctrl-C to stop"), std::string::npos) << r;
}

// --punt-carrier: in-band runs on every kernel and says so in the log and in
// status; metadata runs where the kernel gives XDP the metadata area and is
// refused, with the reason, where it does not.
TEST_F(StatusTest, ThePuntCarrierCanBeChosenAndIsRefusedWhereTheKernelLacksIt) {
  const auto& a = veth_->a();
  ASSERT_EQ(daemon_->stop(), 0) << daemon_->log();
  ASSERT_TRUE(daemon_->start({"--punt-carrier", "in-band"}));
  ASSERT_EQ(xfp({"attach", a.name}).code, 0);
  json st = xfp_json({"status"});
  ASSERT_EQ(st["attachments"].size(), 1u) << st;
  EXPECT_EQ(st["attachments"][0]["punt_carrier"], "in-band") << st;
  EXPECT_TRUE(st["counters"]["inbound"].contains("punt_in_band")) << st;
  EXPECT_NE(daemon_->log().find("punt header carried in band (--punt-carrier)"), std::string::npos)
      << daemon_->log();
  ASSERT_EQ(daemon_->stop(), 0) << daemon_->log();

  if (xdp_metadata_helper_available()) {
    ASSERT_TRUE(daemon_->start({"--punt-carrier", "metadata"}));
    ASSERT_EQ(xfp({"attach", a.name}).code, 0);
    st = xfp_json({"status"});
    EXPECT_EQ(st["attachments"][0]["punt_carrier"], "metadata") << st;
  } else {
    EXPECT_FALSE(daemon_->start({"--punt-carrier", "metadata"}));
    EXPECT_NE(daemon_->log().find("the metadata carrier was asked for, but this kernel refuses bpf_xdp_adjust_meta to "
                                  "XDP programs"),
              std::string::npos)
        << daemon_->log();
    ASSERT_TRUE(daemon_->start());  // for TearDown
  }
}

}  // namespace
}  // namespace xfp::clitest
