// `xfp callout load|unload|list` against a real daemon: what a user reads
// when a plugin is wrong, and that loads survive a restart.
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "cli_harness.hpp"

namespace xfp::clitest {
namespace {

using CalloutCliTest = DaemonTest;

std::string build_dir() {
  const char* d = std::getenv("XFP_BUILD_DIR");
  return d && *d ? d : ".";
}
std::string allowlist_path() { return build_dir() + "/plugins/libxfp_mac_allowlist.so"; }
std::string broken_path(const std::string& defect) { return build_dir() + "/tests/plugins/broken_" + defect + ".so"; }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST_F(CalloutCliTest, BadPluginsAreRefusedWithTheReasonAndNothingLoads) {
  Outcome r = xfp({"callout", "load", "/nonexistent/plugin.so"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_TRUE(contains(r.err, "/nonexistent/plugin.so")) << r;

  r = xfp({"callout", "load", broken_path("wrong_abi")});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_TRUE(contains(r.err, "built for callout ABI")) << r;

  r = xfp({"callout", "load", broken_path("no_symbol")});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_TRUE(contains(r.err, "not an xfp callout plugin")) << r;

  r = xfp({"callout", "load", allowlist_path(), "--config", "mode=sideways"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_TRUE(contains(r.err, "init failed")) << r;

  json list = xfp_json({"callout", "list"});
  EXPECT_TRUE(list["plugins"].empty()) << list;
  r = xfp({"callout", "list"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_TRUE(contains(r.out, "no callout plugin loaded")) << r;

  r = xfp({"callout", "unload", "nobody"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_TRUE(contains(r.err, "no plugin named 'nobody' is loaded")) << r;
  r = xfp({"callout"});
  EXPECT_EQ(r.code, 2) << r;
}

TEST_F(CalloutCliTest, ALoadedPluginIsListedAndLoadedAgainAfterARestart) {
  Outcome r = xfp({"callout", "load", allowlist_path(), "--config", "allow=02:00:00:00:00:01"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_TRUE(contains(r.out, "loaded mac_allowlist: xfp.sample.mac-allowlist")) << r;
  r = xfp({"callout", "list"});
  EXPECT_TRUE(contains(r.out, "xfp.sample.mac-allowlist")) << r;
  // A second load of the same plugin is refused: its name is taken.
  r = xfp({"callout", "load", allowlist_path(), "--config", "allow=02:00:00:00:00:01"});
  EXPECT_EQ(r.code, 1) << r;

  ASSERT_EQ(daemon_->stop(SIGTERM), 0) << daemon_->log();
  ASSERT_TRUE(daemon_->start());
  json list = xfp_json({"callout", "list"});
  ASSERT_EQ(list["plugins"].size(), 1u) << list;
  EXPECT_EQ(list["plugins"][0]["name"], "mac_allowlist");
  EXPECT_EQ(list["plugins"][0]["callouts"][0]["key"], "xfp.sample.mac-allowlist");

  ASSERT_EQ(xfp({"callout", "unload", "mac_allowlist"}).code, 0);
  ASSERT_EQ(daemon_->stop(SIGTERM), 0) << daemon_->log();
  ASSERT_TRUE(daemon_->start());
  EXPECT_TRUE(xfp_json({"callout", "list"})["plugins"].empty()) << "an unload is saved too";
}

}  // namespace
}  // namespace xfp::clitest
