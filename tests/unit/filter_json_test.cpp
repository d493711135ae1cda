// JSON forms of filters, sublayers and commands: exact shape, round trips
// filter -> JSON -> filter, and the errors of the reader.
#include "xfp/filter_json.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace xfp {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

Result<uint32_t> fake_resolve(std::string_view name) {
  if (name == "eth0") return 2u;
  return make_error(ENODEV, "unknown interface '" + std::string(name) + "'");
}

Filter parse_ok(std::string_view text) {
  auto words = tokenize(text);
  EXPECT_TRUE(words.ok());
  auto f = parse_filter(*words, fake_resolve);
  EXPECT_TRUE(f.ok()) << text << ": " << f.error().message;
  return f.ok() ? *f : Filter{};
}

TEST(FilterJson, ExactShape) {
  Filter f = parse_ok(
      "name web layer outbound sublayer edge weight 9 interface eq eth0 vlan range 100-200 "
      "local-mac prefix 02:00:5e:00:00:00/24 action callout-terminating callout ids "
      "flags persistent,clear-action-right context 42 description \"two words\"");
  f.id = 5;
  const json expected = json::parse(R"({
    "id": 5,
    "name": "web",
    "description": "two words",
    "layer": "outbound",
    "sublayer": "edge",
    "weight": 9,
    "conditions": [
      {"field": "interface", "match": "eq", "value": "2"},
      {"field": "vlan", "match": "range", "value": "100-200"},
      {"field": "local-mac", "match": "prefix", "value": "02:00:5e:00:00:00/24"}
    ],
    "action": "callout-terminating",
    "callout": "ids",
    "flags": ["clear-action-right", "persistent"],
    "context": 42
  })");
  EXPECT_EQ(filter_to_json(f), expected) << filter_to_json(f).dump(2);
}

TEST(FilterJson, EmptyPartsAreStillPresent) {
  Filter f;
  const json j = filter_to_json(f);
  EXPECT_EQ(j["name"], "");
  EXPECT_EQ(j["callout"], "");
  EXPECT_EQ(j["conditions"], json::array());
  EXPECT_EQ(j["flags"], json::array());
  EXPECT_EQ(j["sublayer"], "default");
  EXPECT_EQ(j["action"], "block");
  EXPECT_EQ(j["weight"], 0);
}

TEST(FilterJson, MinimalObjectGetsTheDefaults) {
  auto f = filter_from_json(json{{"action", "permit"}});
  ASSERT_TRUE(f.ok()) << f.error().message;
  Filter expected;
  expected.action = Action::Permit;
  EXPECT_EQ(*f, expected);
}

const char* const kJsonRoundTrip[] = {
    "action block",
    "name a layer outbound sublayer s weight 18446744073709551615 action permit",
    "interface eq eth0 interface ne 9 compartment range 1-4 action block",
    "local-mac eq 02:11:22:33:44:55/ff:00:ff:00:00:ff remote-mac prefix 01:00:5e:00:00:00/25 "
    "interface-mac ne 02:00:00:00:00:01 action block",
    "remote-mac range 02:00:00:00:00:00-02:00:00:00:00:ff local-mac gt 02:00:00:00:00:00 "
    "action block",
    "ethertype eq ipv6 ethertype range 0x9000-0x9100 ethertype eq 0x1234 action permit",
    "vlan range 1-10 vlan range 20-30 inner-vlan le 100 frame-length ge 1500 action block",
    "l2-flags all-set malformed,qinq l2-flags none-set llc l2-flags any-set 0x100 action block",
    "local-addr-type eq broadcast remote-addr-type ne multicast action block",
    "action callout-inspection callout k flags permit-if-callout-unregistered,disabled "
    "context 0xffffffffffffffff description \"with \\\"quotes\\\" and # hash\"",
};

class JsonRoundTripTest : public ::testing::TestWithParam<const char*> {};

TEST_P(JsonRoundTripTest, FilterJsonFilter) {
  Filter f = parse_ok(GetParam());
  f.id = 1234;  // unlike the text, JSON carries the id
  const json j = filter_to_json(f);
  auto back = filter_from_json(j);
  ASSERT_TRUE(back.ok()) << j.dump() << ": " << back.error().message;
  EXPECT_EQ(*back, f) << j.dump();
  // Through the serialized text too, as the state file does it.
  auto reparsed = filter_from_json(json::parse(j.dump()));
  ASSERT_TRUE(reparsed.ok()) << reparsed.error().message;
  EXPECT_EQ(*reparsed, f);
}

INSTANTIATE_TEST_SUITE_P(Lines, JsonRoundTripTest, ::testing::ValuesIn(kJsonRoundTrip));

TEST(FilterJson, AcceptsNumbersForValuesAndSymbolsForMatches) {
  auto f = filter_from_json(json::parse(R"({
    "action": "block",
    "conditions": [
      {"field": "vlan", "match": ">=", "value": 100},
      {"field": "interface", "match": "eq", "value": 3}
    ]})"));
  ASSERT_TRUE(f.ok()) << f.error().message;
  ASSERT_EQ(f->conditions.size(), 2u);
  EXPECT_EQ(f->conditions[0].match, Match::GreaterOrEqual);
  EXPECT_EQ(f->conditions[0].value, 100u);
  EXPECT_EQ(f->conditions[1].value, 3u);
}

struct BadJson {
  const char* text;
  const char* error;
};

std::ostream& operator<<(std::ostream& os, const BadJson& b) { return os << b.text; }

const BadJson kBadFilters[] = {
    {R"({})", "filter JSON: missing 'action'"},
    {R"([])", "filter JSON: expected an object, got array"},
    {R"("block")", "filter JSON: expected an object"},
    {R"({"action": "block", "foo": 1})", "filter JSON: unknown key 'foo' (expected one of: id,"},
    {R"({"action": 5})", "filter JSON: 'action' must be a string"},
    {R"({"action": "drop"})", "filter JSON: unknown action 'drop'"},
    {R"({"action": "block", "layer": "up"})", "unknown layer 'up' (expected inbound or outbound)"},
    {R"({"action": "block", "name": 7})", "'name' must be a string"},
    {R"({"action": "block", "name": "7"})", "filter name '7' must not be a number"},
    {R"({"action": "block", "weight": -1})", "'weight' must be an integer 0-18446744073709551615"},
    {R"({"action": "block", "weight": "5"})", "'weight' must be an integer"},
    {R"({"action": "block", "weight": 1.5})", "'weight' must be an integer"},
    {R"({"action": "block", "context": null})", "'context' must be an integer"},
    {R"({"action": "block", "id": true})", "'id' must be an integer"},
    {R"({"action": "block", "sublayer": ""})", "sublayer name must not be empty"},
    {R"({"action": "block", "conditions": {}})", "'conditions' must be an array"},
    {R"({"action": "block", "conditions": [5]})", "filter JSON: condition 1: expected an object"},
    {R"({"action": "block", "conditions": [{"match": "eq", "value": "1"}]})",
     "filter JSON: condition 1: missing 'field'"},
    {R"({"action": "block", "conditions": [{"field": "vlan", "value": "1"}]})",
     "condition 1: missing 'match'"},
    {R"({"action": "block", "conditions": [{"field": "vlan", "match": "eq"}]})",
     "condition 1: missing 'value'"},
    {R"({"action": "block", "conditions": [{"field": "vlan", "match": "eq", "value": true}]})",
     "condition 1: 'value' must be a string"},
    {R"({"action": "block", "conditions": [{"field": "vlan", "match": "eq", "value": "1", "x": 1}]})",
     "condition 1: unknown key 'x'"},
    {R"({"action": "block", "conditions": [{"field": "vlan", "match": "eq", "value": "1"},
                                           {"field": "foo", "match": "eq", "value": "1"}]})",
     "filter JSON: condition 2: unknown field 'foo' (expected one of: interface, compartment"},
    {R"({"action": "block", "conditions": [{"field": "vlan", "match": "like", "value": "1"}]})",
     "condition 1: unknown match type 'like'"},
    {R"({"action": "block", "conditions": [{"field": "vlan", "match": "eq", "value": "5000"}]})",
     "filter JSON: condition 1: vlan value 5000 is out of range 0-4095"},
    {R"({"action": "block", "conditions": [{"field": "vlan", "match": "eq", "value": 5000}]})",
     "vlan value 5000 is out of range 0-4095"},
    {R"({"action": "block", "conditions": [{"field": "interface", "match": "eq", "value": "eth0"}]})",
     "interface name 'eth0' cannot be resolved here"},
    {R"({"action": "block", "conditions": [{"field": "vlan", "match": "all-set", "value": "1"}]})",
     "match type all-set applies only to l2-flags"},
    {R"({"action": "block", "conditions": [
         {"field": "vlan", "match": "range", "value": "100-200"},
         {"field": "vlan", "match": "range", "value": "150-250"}]})",
     "filter JSON: ranges 100-200 and 150-250 on vlan overlap"},
    {R"({"action": "block", "flags": "persistent"})", "'flags' must be an array of flag names"},
    {R"({"action": "block", "flags": [1]})", "'flags' must be an array of flag names"},
    {R"({"action": "block", "flags": ["foo"]})",
     "filter JSON: unknown flag 'foo' (expected one of:"},
    {R"({"action": "block", "flags": [""]})", "filter JSON: empty flag name"},
    {R"({"action": "callout-inspection"})",
     "filter JSON: action callout-inspection needs 'callout KEY'"},
    {R"({"action": "permit", "callout": "k"})", "'callout k' applies only to callout actions"},
};

class BadFilterJsonTest : public ::testing::TestWithParam<BadJson> {};

TEST_P(BadFilterJsonTest, FailsWithAClearMessage) {
  const BadJson& b = GetParam();
  auto f = filter_from_json(json::parse(b.text));
  ASSERT_FALSE(f.ok()) << "accepted: " << filter_to_json(*f).dump();
  EXPECT_THAT(f.error().message, HasSubstr(b.error));
  EXPECT_EQ(f.error().code, EINVAL);
}

INSTANTIATE_TEST_SUITE_P(Objects, BadFilterJsonTest, ::testing::ValuesIn(kBadFilters));

// ---- sublayers ---------------------------------------------------------------

TEST(SublayerJson, RoundTripAndShape) {
  const Sublayer s{"edge", 65535};
  const json j = sublayer_to_json(s);
  EXPECT_EQ(j, json::parse(R"({"name": "edge", "weight": 65535})"));
  auto back = sublayer_from_json(j);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, s);
}

TEST(SublayerJson, Errors) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"weight": 1})", "sublayer JSON: missing 'name'"},
      {R"({"name": "a"})", "sublayer JSON: missing 'weight'"},
      {R"({"name": "", "weight": 1})", "sublayer JSON: 'name' must not be empty"},
      {R"({"name": "a", "weight": 65536})",
       "sublayer JSON: 'weight' 65536 is out of range 0-65535"},
      {R"({"name": "a", "weight": -3})", "'weight' must be an integer 0-65535"},
      {R"({"name": "a", "weight": 1, "x": 2})", "sublayer JSON: unknown key 'x'"},
      {R"([1])", "sublayer JSON: expected an object"},
  };
  for (auto [text, error] : cases) {
    SCOPED_TRACE(text);
    auto s = sublayer_from_json(json::parse(text));
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(s.error().message, HasSubstr(error));
  }
}

// ---- commands ------------------------------------------------------------------

Command command_of(std::string_view text) {
  auto words = tokenize(text);
  EXPECT_TRUE(words.ok());
  auto c = parse_command(*words, fake_resolve);
  EXPECT_TRUE(c.ok()) << text << ": " << c.error().message;
  return c.ok() ? *c : Command{};
}

void expect_same_command(const Command& a, const Command& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.filter, b.filter);
  EXPECT_EQ(a.ref, b.ref);
  EXPECT_EQ(a.sublayer, b.sublayer);
  EXPECT_EQ(a.layer, b.layer);
  EXPECT_EQ(a.default_action, b.default_action);
}

TEST(CommandJson, ShapeOfEachKind) {
  const std::pair<const char*, const char*> cases[] = {
      {"filter delete web", R"({"op": "filter-delete", "ref": "web"})"},
      {"filter delete id 12", R"({"op": "filter-delete", "ref": "12"})"},
      {"sublayer add edge weight 7", R"({"op": "sublayer-add", "name": "edge", "weight": 7})"},
      {"sublayer delete edge", R"({"op": "sublayer-delete", "name": "edge"})"},
      {"flush", R"({"op": "flush"})"},
      {"default outbound block", R"({"op": "default", "layer": "outbound", "action": "block"})"},
  };
  for (auto [text, expected] : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(command_to_json(command_of(text)), json::parse(expected));
  }
  const json add = command_to_json(command_of("filter add vlan eq 5 action block"));
  EXPECT_EQ(add["op"], "filter-add");
  EXPECT_EQ(add["filter"]["conditions"][0]["value"], "5");
  EXPECT_EQ(add["filter"]["action"], "block");
}

TEST(CommandJson, RoundTripEveryKind) {
  for (const char* text :
       {"filter add name n vlan range 1-2 ethertype eq arp action callout-unknown callout c "
        "description \"d e\"",
        "filter delete 3", "filter delete name web", "sublayer add s weight 0",
        "sublayer add t weight 65535", "sublayer delete s", "flush", "default inbound permit",
        "default outbound block"}) {
    SCOPED_TRACE(text);
    const Command c = command_of(text);
    const json j = command_to_json(c);
    auto back = command_from_json(json::parse(j.dump()));
    ASSERT_TRUE(back.ok()) << j.dump() << ": " << back.error().message;
    expect_same_command(*back, c);
  }
}

TEST(CommandJson, OriginTravelsWithEveryKind) {
  for (const char* text : {"filter add vlan eq 5 action block", "filter delete 3", "sublayer add s weight 0",
                           "sublayer delete s", "flush", "default inbound permit"}) {
    SCOPED_TRACE(text);
    Command c = command_of(text);
    EXPECT_FALSE(command_to_json(c).contains("origin")) << "none unless set";
    c.origin = "policy.xfp:7";
    const json j = command_to_json(c);
    EXPECT_EQ(j.value("origin", ""), "policy.xfp:7");
    auto back = command_from_json(json::parse(j.dump()));
    ASSERT_TRUE(back.ok()) << j.dump() << ": " << back.error().message;
    expect_same_command(*back, c);
    EXPECT_EQ(back->origin, "policy.xfp:7");
  }
  auto bad = command_from_json(json::parse(R"({"op": "flush", "origin": 7})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "command JSON: 'origin' must be a string, got number");
}

TEST(CommandJson, NumericRefBecomesDigits) {
  auto c = command_from_json(json::parse(R"({"op": "filter-delete", "ref": 42})"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->kind, Command::Kind::DeleteFilter);
  EXPECT_EQ(c->ref, "42");
}

TEST(CommandJson, Errors) {
  const std::pair<const char*, const char*> cases[] = {
      {R"([])", "command JSON: expected an object"},
      {R"({})", "command JSON: missing 'op'"},
      {R"({"op": 1})", "command JSON: 'op' must be a string"},
      {R"({"op": "reboot"})",
       "command JSON: unknown op 'reboot' (expected one of: filter-add, filter-delete, "
       "sublayer-add, sublayer-delete, flush, default)"},
      {R"({"op": "filter-add"})", "command JSON: missing 'filter'"},
      {R"({"op": "filter-add", "filter": {}})", "filter JSON: missing 'action'"},
      {R"({"op": "filter-add", "filter": {"action": "block"}, "x": 1})",
       "command JSON: unknown key 'x' (expected one of: op, filter)"},
      {R"({"op": "filter-delete"})", "command JSON: missing 'ref'"},
      {R"({"op": "filter-delete", "ref": ""})",
       "'ref' must be a filter id or a non-empty filter name"},
      {R"({"op": "filter-delete", "ref": -1})", "'ref' must be a filter id"},
      {R"({"op": "sublayer-add", "name": "s"})", "command JSON: missing 'weight'"},
      {R"({"op": "sublayer-add", "name": "s", "weight": 70000})",
       "'weight' 70000 is out of range 0-65535"},
      {R"({"op": "sublayer-delete"})", "command JSON: missing 'name'"},
      {R"({"op": "sublayer-delete", "name": ""})", "'name' must not be empty"},
      {R"({"op": "flush", "all": true})", "command JSON: unknown key 'all'"},
      {R"({"op": "default", "layer": "inbound"})", "command JSON: missing 'action'"},
      {R"({"op": "default", "action": "block"})", "command JSON: missing 'layer'"},
      {R"({"op": "default", "layer": "side", "action": "block"})", "unknown layer 'side'"},
      {R"({"op": "default", "layer": "inbound", "action": "callout-unknown"})",
       "bad default action 'callout-unknown' (expected permit or block)"},
  };
  for (auto [text, error] : cases) {
    SCOPED_TRACE(text);
    auto c = command_from_json(json::parse(text));
    ASSERT_FALSE(c.ok());
    EXPECT_THAT(c.error().message, HasSubstr(error));
  }
}

}  // namespace
}  // namespace xfp
