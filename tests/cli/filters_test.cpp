// Filters, sublayers, defaults and filter files through a running daemon:
// what is printed, what the daemon refuses, and that a refused transaction
// changes nothing.
#include "cli/cli_harness.hpp"

namespace xfp::clitest {
namespace {

using FilterTest = DaemonTest;

uint64_t generation_of(const json& status) { return status.value("generation", uint64_t{0}); }

TEST_F(FilterTest, AddListShowDelete) {
  Outcome r = xfp({"filter", "add", "name", "no-arp", "ethertype", "eq", "arp", "action", "block"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "added filter 1\n");
  r = xfp({"filter", "add", "layer", "outbound", "weight", "7", "vlan", "range", "100-199", "vlan", "eq", "300",
           "action", "permit", "flags", "persistent"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "added filter 2\n");

  json all = xfp_json({"filter", "list"});
  ASSERT_EQ(all["filters"].size(), 2u) << all;
  const json& f1 = all["filters"][0];
  EXPECT_EQ(f1["id"], 1);
  EXPECT_EQ(f1["name"], "no-arp");
  EXPECT_EQ(f1["layer"], "inbound");
  EXPECT_EQ(f1["action"], "block");
  EXPECT_EQ(f1["conditions"], json::parse(R"([{"field":"ethertype","match":"eq","value":"arp"}])"));
  EXPECT_EQ(f1["counters"], json::parse(R"({"frames":0,"bytes":0})"));
  const json& f2 = all["filters"][1];
  EXPECT_EQ(f2["weight"], 7);
  EXPECT_EQ(f2["flags"], json::array({"persistent"}));

  json outbound = xfp_json({"filter", "list", "--layer", "outbound"});
  ASSERT_EQ(outbound["filters"].size(), 1u);
  EXPECT_EQ(outbound["filters"][0]["id"], 2);

  r = xfp({"filter", "list"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out,
            "ID  NAME    LAYER     SUBLAYER  WEIGHT  CONDITIONS                       ACTION  FLAGS       FRAMES  BYTES\n"
            " 1  no-arp  inbound   default        0  ethertype eq arp                 block   -                0      0\n"
            " 2  -       outbound  default        7  vlan range 100-199, vlan eq 300  permit  persistent       0      0\n");

  r = xfp({"filter", "show", "no-arp"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find("conditions  ethertype eq arp\n"), std::string::npos) << r;
  EXPECT_NE(r.out.find("as a command: filter add name no-arp layer inbound sublayer default weight 0 ethertype eq "
                       "arp action block\n"),
            std::string::npos)
      << r;
  json shown = xfp_json({"filter", "show", "2"});
  EXPECT_EQ(shown["filter"]["id"], 2);

  r = xfp({"filter", "delete", "no-arp"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(filter_ids(), std::vector<uint64_t>{2});
  r = xfp({"filter", "delete", "2"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_TRUE(filter_ids().empty());
}

TEST_F(FilterTest, AddPrintsJsonWithIds) {
  json j = xfp_json({"filter", "add", "ethertype", "eq", "lldp", "action", "block"});
  EXPECT_EQ(j["added"], json::array({1}));
  EXPECT_GT(j["generation"].get<uint64_t>(), 0u);
  EXPECT_FALSE(j.contains("ok"));
}

TEST_F(FilterTest, InterfaceNamesResolveInTheCallersNamespace) {
  const auto& end = veth_->a();
  Outcome r = xfp({"filter", "add", "interface", "eq", end.name, "action", "block"});
  ASSERT_EQ(r.code, 0) << r;
  json list = xfp_json({"filter", "list"});
  EXPECT_EQ(list["filters"][0]["conditions"][0]["value"], std::to_string(end.ifindex));
}

TEST_F(FilterTest, DuplicateName) {
  ASSERT_EQ(xfp({"filter", "add", "name", "x", "ethertype", "eq", "arp", "action", "block"}).code, 0);
  const uint64_t gen = generation_of(xfp_json({"status"}));
  Outcome r = xfp({"filter", "add", "name", "x", "ethertype", "eq", "ipv4", "action", "permit"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "xfp: a filter named 'x' exists already (id 1)\n");
  EXPECT_EQ(filter_ids(), std::vector<uint64_t>{1});
  EXPECT_EQ(generation_of(xfp_json({"status"})), gen) << "a refused transaction installed something";
}

TEST_F(FilterTest, DeleteOrShowUnknownIdOrName) {
  ASSERT_EQ(xfp({"filter", "add", "name", "kept", "ethertype", "eq", "arp", "action", "block"}).code, 0);
  Outcome r = xfp({"filter", "delete", "42"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: no filter with id or name '42'\n");
  r = xfp({"filter", "delete", "ghost"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: no filter with id or name 'ghost'\n");
  r = xfp({"filter", "show", "ghost"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: no filter with id or name 'ghost'\n");
  EXPECT_EQ(filter_ids(), std::vector<uint64_t>{1});
}

// Global options after the filter's words are still global options; as a
// name or a description the same word is just text.
TEST_F(FilterTest, GlobalOptionsAfterTheFilterWords) {
  Outcome r = xfp({"filter", "add", "name", "late-json", "ethertype", "eq", "arp", "action", "block", "--json"});
  ASSERT_EQ(r.code, 0) << r;
  const json reply = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(reply.is_discarded()) << r.out;
  ASSERT_EQ(reply.value("added", json::array()).size(), 1u) << r.out;
  r = xfp({"filter", "add", "name", "--json", "ethertype", "eq", "lldp", "action", "block", "description", "--json"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out.rfind("added filter ", 0), 0u) << "text output: --json was the name here\n" << r.out;
  bool found = false;
  const json list = xfp_json({"filter", "list"});
  for (const json& f : list["filters"])
    if (f.value("name", "") == "--json") {
      found = true;
      EXPECT_EQ(f.value("description", ""), "--json") << f;
    }
  EXPECT_TRUE(found) << "no filter named --json in " << list.dump();
}

// `filter delete REF` takes a name or an id; the words `id` and `name` are
// names like any other there.
TEST_F(FilterTest, FiltersNamedIdOrNameCanBeDeletedByName) {
  for (const char* name : {"id", "name"}) {
    SCOPED_TRACE(name);
    ASSERT_EQ(xfp({"filter", "add", "name", name, "ethertype", "eq", "arp", "action", "block"}).code, 0);
    Outcome r = xfp({"filter", "delete", name});
    EXPECT_EQ(r.code, 0) << r;
    EXPECT_TRUE(xfp_json({"filter", "list"})["filters"].empty());
  }
  ASSERT_EQ(xfp({"filter", "add", "name", "web", "ethertype", "eq", "arp", "action", "block"}).code, 0);
  const uint64_t id = filter_ids().at(0);
  Outcome r = xfp({"filter", "delete", std::to_string(id)});
  EXPECT_EQ(r.code, 0) << r;
  r = xfp({"filter", "delete", "ghost"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: no filter with id or name 'ghost'\n");
}

TEST_F(FilterTest, FilterFileIsAllOrNothing) {
  ASSERT_EQ(xfp({"filter", "add", "name", "base", "ethertype", "eq", "arp", "action", "block"}).code, 0);
  const json before = xfp_json({"filter", "list"});
  const json sublayers_before = xfp_json({"sublayer", "list"});
  const uint64_t gen = generation_of(xfp_json({"status"}));

  // A line the parser refuses: nothing is sent.
  const std::string bad_syntax = dir_ / "bad-syntax.xfp";
  write_file(bad_syntax,
             "sublayer add audit weight 10\n"
             "filter add name a ethertype eq lldp action block\n"
             "filter add name b frame-length gt 70000 action block\n");
  Outcome r = xfp({"apply", bad_syntax});
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_EQ(r.err, "xfp: " + bad_syntax + ":3: frame-length value 70000 is out of range 0-65535\n");

  // A line the daemon refuses: the commands before it are undone.
  const std::string bad_ref = dir_ / "bad-ref.xfp";
  write_file(bad_ref,
             "sublayer add audit weight 10\n"
             "filter add name a sublayer audit ethertype eq lldp action block\n"
             "# comments and blank lines are not commands\n"
             "\n"
             "filter delete ghost\n"
             "filter add name c ethertype eq ipv6 action block\n");
  r = xfp({"apply", bad_ref});
  EXPECT_EQ(r.code, 1) << r;
  // Named by its line in the file (comments and blank lines count).
  EXPECT_EQ(r.err, "xfp: " + bad_ref + ":5 (filter delete ghost): no filter with id or name 'ghost'\n");

  // A duplicate name inside the file.
  RunOptions in;
  in.input = "filter add name d ethertype eq arp action permit\nfilter add name base ethertype eq arp action permit\n";
  r = xfp({"apply", "-"}, in);
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: <stdin>:2 (filter add name base): a filter named 'base' exists already (id 1)\n");

  EXPECT_EQ(xfp_json({"filter", "list"}), before);
  EXPECT_EQ(xfp_json({"sublayer", "list"}), sublayers_before);
  EXPECT_EQ(generation_of(xfp_json({"status"})), gen);
}

TEST_F(FilterTest, ASetLargerThanTheKernelTablesIsRefusedWithTheRemedyAndChangesNothing) {
  // 16 rows for both banks: a set may use 8.
  ASSERT_EQ(daemon_->stop(SIGTERM), 0) << daemon_->log();
  ASSERT_TRUE(daemon_->start({"--max-entries", "16"}));
  for (int i = 1; i <= 8; ++i) {
    Outcome r = xfp({"filter", "add", "name", "m" + std::to_string(i), "remote-mac", "eq",
                     "02:00:00:00:00:0" + std::to_string(i), "action", "block"});
    ASSERT_EQ(r.code, 0) << r;
  }
  const json before = xfp_json({"filter", "list"});
  const uint64_t gen = generation_of(xfp_json({"status"}));
  Outcome r = xfp({"filter", "add", "name", "m9", "remote-mac", "eq", "02:00:00:00:00:09", "action", "block"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: compiling the filter set: the compiled set needs more than 8 table entries (raise the daemon's --max-entries)\n");
  EXPECT_EQ(xfp_json({"filter", "list"}), before);
  EXPECT_EQ(generation_of(xfp_json({"status"})), gen);
  // Below the two rows the banks need at the least, the daemon does not start.
  ASSERT_EQ(daemon_->stop(SIGTERM), 0) << daemon_->log();
  Outcome bad = run_process(daemon_->argv({"--max-entries", "1"}));
  EXPECT_EQ(bad.code, 2) << bad;
  EXPECT_EQ(bad.err, "xfp: --max-entries: Value 1 not in range 2 to 16777216 (see xfp --help)\n") << bad;
  ASSERT_TRUE(daemon_->start());
}

TEST_F(FilterTest, ApplyFileAndStdin) {
  const std::string file = dir_ / "policy.xfp";
  write_file(file,
             "sublayer add audit weight 100\n"
             "filter add name lab sublayer audit remote-mac prefix 02:00:5e:00:00:00/24 action block\n"
             "filter add name tagged l2-flags any-set vlan-tagged action permit   # trailing comment\n"
             "default outbound block\n");
  Outcome r = xfp({"apply", file});
  EXPECT_EQ(r.code, 0) << r;
  const uint64_t gen = generation_of(xfp_json({"status"}));
  EXPECT_EQ(r.out, "applied 4 command(s) from " + file + ": generation " + std::to_string(gen) + "\n");
  EXPECT_EQ(filter_ids(), (std::vector<uint64_t>{1, 2}));
  json st = xfp_json({"status"});
  EXPECT_EQ(st["defaults"]["outbound"], "block");
  EXPECT_EQ(st["sublayers"], 2);

  RunOptions in;
  in.input = "flush\nfilter add name only ethertype eq arp action block\n";
  r = xfp({"apply", "-"}, in);
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "applied 2 command(s) from <stdin>: generation " + std::to_string(gen + 1) + "\n");
  json list = xfp_json({"filter", "list"});
  ASSERT_EQ(list["filters"].size(), 1u);
  EXPECT_EQ(list["filters"][0]["name"], "only");

  r = xfp({"-f", file});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(xfp_json({"filter", "list"})["filters"].size(), 3u);
}

TEST_F(FilterTest, Sublayers) {
  Outcome r = xfp({"sublayer", "add", "audit", "weight", "100"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "");
  r = xfp({"sublayer", "add", "audit", "weight", "5"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: sublayer 'audit' exists already\n");
  ASSERT_EQ(xfp({"filter", "add", "sublayer", "audit", "ethertype", "eq", "arp", "action", "block"}).code, 0);

  r = xfp({"sublayer", "list"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out,
            "NAME     WEIGHT  FILTERS\n"
            "default       0        0\n"
            "audit       100        1\n");

  r = xfp({"sublayer", "delete", "audit"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: sublayer 'audit' still holds filter 1; delete its filters first\n");
  r = xfp({"sublayer", "delete", "default"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: the sublayer 'default' cannot be deleted\n");
  r = xfp({"sublayer", "delete", "nope"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: no sublayer named 'nope'\n");
  r = xfp({"filter", "add", "sublayer", "nope", "ethertype", "eq", "arp", "action", "block"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: unknown sublayer 'nope' (add it first: sublayer add nope weight N)\n");

  ASSERT_EQ(xfp({"filter", "delete", "1"}).code, 0);
  r = xfp({"sublayer", "delete", "audit"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(xfp_json({"sublayer", "list"})["sublayers"].size(), 1u);
}

TEST_F(FilterTest, DefaultsAndFlush) {
  json st = xfp_json({"status"});
  EXPECT_EQ(st["defaults"], json::parse(R"({"inbound":"permit","outbound":"permit"})"));
  ASSERT_EQ(xfp({"default", "inbound", "block"}).code, 0);
  st = xfp_json({"status"});
  EXPECT_EQ(st["defaults"], json::parse(R"({"inbound":"block","outbound":"permit"})"));

  ASSERT_EQ(xfp({"sublayer", "add", "audit", "weight", "1"}).code, 0);
  ASSERT_EQ(xfp({"filter", "add", "sublayer", "audit", "ethertype", "eq", "arp", "action", "block"}).code, 0);
  Outcome r = xfp({"flush"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_TRUE(filter_ids().empty());
  EXPECT_EQ(xfp_json({"sublayer", "list"})["sublayers"].size(), 1u);
  // flush keeps the defaults (they are not filters)
  EXPECT_EQ(xfp_json({"status"})["defaults"]["inbound"], "block");
}

}  // namespace
}  // namespace xfp::clitest
