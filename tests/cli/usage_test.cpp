// The CLI without a daemon: usage errors, filter-language errors caught
// before anything is sent, help text, and an unreachable daemon.
#include "cli/cli_harness.hpp"

namespace xfp::clitest {
namespace {

class UsageTest : public ::testing::Test {
 protected:
  // A socket path where no daemon listens: a CLI that got past parsing would
  // fail with "cannot reach", so exit code 2 proves nothing was sent.
  Outcome xfp(const std::vector<std::string>& args, const RunOptions& opt = {}) const {
    std::vector<std::string> a{xfp_path(), "--socket", dir_ / "none.sock"};
    a.insert(a.end(), args.begin(), args.end());
    return run_process(a, opt);
  }
  TempDir dir_;
};

TEST_F(UsageTest, DaemonNotRunning) {
  const std::string sock = dir_ / "none.sock";
  Outcome r = xfp({"filter", "list"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "xfp: cannot reach the daemon at " + sock +
                       ": No such file or directory (is `xfp daemon` running?)\n");

  // The same from the environment, and for a command that changes the policy.
  RunOptions env;
  env.env = {"XFP_SOCKET=" + sock};
  r = run_process({xfp_path(), "flush"}, env);
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: cannot reach the daemon at " + sock +
                       ": No such file or directory (is `xfp daemon` running?)\n");
}

TEST_F(UsageTest, DefaultSocketPathInMessage) {
  if (::access(control::kDefaultSocket, F_OK) == 0) GTEST_SKIP() << "a daemon may be running at the default path";
  RunOptions opt;
  opt.env = {"XFP_SOCKET="};  // empty: the default applies
  Outcome r = run_process({xfp_path(), "status"}, opt);
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err,
            "xfp: cannot reach the daemon at /run/xfp/xfp.sock: No such file or directory (is `xfp daemon` running?)\n");
}

TEST_F(UsageTest, UnknownInterface) {
  Outcome r = xfp({"filter", "add", "interface", "eq", "xfpnosuch0", "action", "block"});
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_EQ(r.err, "xfp: unknown interface 'xfpnosuch0'\n");
}

TEST_F(UsageTest, BadMac) {
  Outcome r = xfp({"filter", "add", "remote-mac", "eq", "02:00:00:00:00:zz", "action", "block"});
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_EQ(r.err, "xfp: bad MAC address '02:00:00:00:00:zz': expected six hex bytes like 02:00:00:00:00:01\n");
}

TEST_F(UsageTest, OverlappingRange) {
  Outcome r = xfp({"filter", "add", "vlan", "range", "1-10", "vlan", "range", "5-20", "action", "block"});
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_EQ(r.err, "xfp: ranges 1-10 and 5-20 on vlan overlap\n");
}

TEST_F(UsageTest, UnknownFlag) {
  Outcome r = xfp({"filter", "add", "ethertype", "eq", "arp", "action", "block", "flags", "persistent,bogus"});
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_EQ(r.err,
            "xfp: unknown flag 'bogus' (expected one of: clear-action-right, permit-if-callout-unregistered, "
            "disabled, persistent)\n");
}

TEST_F(UsageTest, UnknownField) {
  Outcome r = xfp({"filter", "add", "colour", "eq", "red", "action", "block"});
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_EQ(r.err,
            "xfp: unknown field 'colour' (expected one of: interface, compartment, local-mac, remote-mac, "
            "interface-mac, ethertype, vlan, inner-vlan, frame-length, l2-flags, local-addr-type, "
            "remote-addr-type)\n");
}

TEST_F(UsageTest, FilterAddNeedsWords) {
  Outcome r = xfp({"filter", "add"});
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_EQ(r.err, "xfp: 'filter add' needs a filter (see xfp filter add --help)\n");
  r = xfp({"filter", "add", "ethertype", "eq", "arp"});
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_EQ(r.err,
            "xfp: missing 'action' (expected action "
            "permit|block|callout-terminating|callout-inspection|callout-unknown)\n");
}

TEST_F(UsageTest, CommandLineErrorsExitTwo) {
  struct Case {
    std::vector<std::string> args;
    std::string err;
  };
  const Case cases[] = {
      {{}, "xfp: a command is needed (see xfp --help)\n"},
      {{"frobnicate"}, "xfp: The following argument was not expected: frobnicate (see xfp --help)\n"},
      {{"attach"}, "xfp: DEV is required (see xfp --help)\n"},
      {{"attach", "veth0", "--mode", "turbo"}, "xfp: --mode: turbo not in {auto,native,generic} (see xfp --help)\n"},
      {{"attach", "veth0", "--layers", "sideways"},
       "xfp: --layers: sideways not in {inbound,outbound,both} (see xfp --help)\n"},
      {{"filter"}, "xfp: A subcommand is required (see xfp --help)\n"},
      {{"filter", "delete", "0"}, "xfp: filter id 0 is not valid (ids start at 1)\n"},
      {{"filter", "list", "--layer", "middle"}, "xfp: --layer: middle not in {inbound,outbound} (see xfp --help)\n"},
      {{"sublayer", "add", "audit", "height", "5"}, "xfp: unexpected word 'height' after sublayer add NAME\n"},
      {{"sublayer", "add", "audit", "weight", "70000"}, "xfp: sublayer weight 70000 is out of range 0-65535\n"},
      {{"default", "inbound", "maybe"}, "xfp: ACTION: maybe not in {permit,block} (see xfp --help)\n"},
      {{"status", "--watch", "0"}, "xfp: --watch: Value 0 not in range 0.100000 to 86400.000000 (see xfp --help)\n"},
  };
  for (const Case& c : cases) {
    Outcome r = xfp(c.args);
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_EQ(r.err, c.err);
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(UsageTest, FilterFileWithOneBadLine) {
  const std::string file = dir_ / "policy.xfp";
  write_file(file,
             "# a policy\n"
             "sublayer add audit weight 10\n"
             "filter add name ok ethertype eq arp action block\n"
             "filter add name bad remote-mac eq 02:00:00:00:00 action block\n"
             "filter add name later ethertype eq lldp action block\n");
  Outcome r = xfp({"apply", file});
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_EQ(r.err, "xfp: " + file + ":4: bad MAC address '02:00:00:00:00': expected six hex bytes like 02:00:00:00:00:01\n");

  // -f is the same command; standard input is named <stdin>.
  r = xfp({"-f", file});
  EXPECT_EQ(r.code, 2) << r;
  RunOptions in;
  in.input = "flush\nfilter add action maybe\n";
  r = xfp({"apply", "-"}, in);
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_EQ(r.err,
            "xfp: <stdin>:2: unknown action 'maybe' (expected one of: permit, block, callout-terminating, "
            "callout-inspection, callout-unknown)\n");
}

TEST_F(UsageTest, ApplyMissingFile) {
  const std::string file = dir_ / "absent.xfp";
  Outcome r = xfp({"apply", file});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: cannot read " + file + ": No such file or directory\n");
}

TEST_F(UsageTest, ApplyRefusesADirectoryAndAFileWithoutCommands) {
  Outcome r = xfp({"apply", dir_.path()});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: cannot read " + dir_.path() + ": it is a directory\n");
  const std::string empty = dir_ / "empty.xfp";
  write_file(empty, "# only a comment\n\n");
  r = xfp({"apply", empty});
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_EQ(r.err, "xfp: " + empty + " holds no commands: nothing applied\n");
}

TEST_F(UsageTest, FileOptionDoesNotCombineWithACommand) {
  const std::string file = dir_ / "policy.xfp";
  write_file(file, "flush\n");
  Outcome r = xfp({"-f", file, "status"});
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_EQ(r.err,
            "xfp: -f/--file cannot be combined with 'status' (run `xfp apply FILE` and the command one after the "
            "other)\n");
}

TEST_F(UsageTest, EveryCommandHasHelpWithExamples) {
  const std::vector<std::vector<std::string>> commands = {
      {},
      {"daemon"},
      {"attach"},
      {"detach"},
      {"filter"},
      {"filter", "add"},
      {"filter", "delete"},
      {"filter", "list"},
      {"filter", "show"},
      {"sublayer"},
      {"sublayer", "add"},
      {"sublayer", "delete"},
      {"sublayer", "list"},
      {"default"},
      {"apply"},
      {"flush"},
      {"status"},
      {"counters"},
      {"callout"},
      {"callout", "load"},
      {"callout", "unload"},
      {"callout", "list"},
      {"flows"},
      {"port"},
      {"port", "listen"},
      {"redirect"},
      {"redirect", "query"},
      {"redirect", "set"},
      {"redirect", "list"},
  };
  for (auto args : commands) {
    // Its own examples: a line that runs this very command (a subcommand
    // without a footer of its own would show its parent's).
    std::string command = "xfp";
    for (const std::string& a : args) command += " " + a;
    args.push_back("--help");
    Outcome r = xfp(args);
    EXPECT_EQ(r.code, 0) << r;
    EXPECT_NE(r.out.find("Usage: xfp"), std::string::npos) << r;
    const size_t examples = std::min(r.out.find("Example:"), r.out.find("Examples:"));
    ASSERT_NE(examples, std::string::npos) << r;
    const std::string shown = r.out.substr(examples);
    EXPECT_TRUE(shown.find("\n  " + command + " ") != std::string::npos ||
                shown.find("\n  " + command + "\n") != std::string::npos ||
                shown.find("\n  xfp --json" + command.substr(3) + " ") != std::string::npos ||
                shown.find("$(" + command + " ") != std::string::npos)
        << "no example of `" << command << "` in:\n" << r.out;
  }
  Outcome r = xfp({"filter", "add", "--help"});
  EXPECT_NE(r.out.find("Filter language"), std::string::npos) << r;
  EXPECT_NE(r.out.find("remote-addr-type"), std::string::npos) << r;
}

}  // namespace
}  // namespace xfp::clitest
