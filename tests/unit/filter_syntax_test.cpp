// The filter language: names, tokenizer, condition values, `filter add`,
// formatting (and its round trip), filter files and their commands.
#include "xfp/filter_syntax.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace xfp {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr uint64_t kMacFull = 0xffff'ffff'ffffull;

// A fixed namespace: eth0 is 2, lo is 1, br-lan is 7; anything else fails
// the way the daemon's resolver does.
Result<uint32_t> fake_resolve(std::string_view name) {
  if (name == "lo") return 1u;
  if (name == "eth0") return 2u;
  if (name == "br-lan") return 7u;
  return make_error(ENODEV, "unknown interface '" + std::string(name) + "'");
}

const IfaceResolver kResolve = fake_resolve;

Result<Filter> parse_text(std::string_view text) {
  auto words = tokenize(text);
  if (!words) return std::move(words).error();
  return parse_filter(*words, kResolve);
}

Result<Command> parse_command_text(std::string_view text) {
  auto words = tokenize(text);
  if (!words) return std::move(words).error();
  return parse_command(*words, kResolve);
}

// ---- names -------------------------------------------------------------------

TEST(FilterNames, FieldNamesAreTheDocumentedOnesAndParseBack) {
  const std::vector<std::string> expected = {"interface",  "compartment",     "local-mac",
                                             "remote-mac", "interface-mac",   "ethertype",
                                             "vlan",       "inner-vlan",      "frame-length",
                                             "l2-flags",   "local-addr-type", "remote-addr-type"};
  ASSERT_EQ(expected.size(), static_cast<size_t>(kFieldCount));
  for (int i = 0; i < kFieldCount; ++i) {
    const auto f = static_cast<Field>(i);
    EXPECT_EQ(field_name(f), expected[i]);
    EXPECT_EQ(field_from_name(expected[i]), f) << expected[i];
  }
  EXPECT_EQ(field_from_name("foo"), std::nullopt);
  EXPECT_EQ(field_from_name("VLAN"), std::nullopt);  // names are lower case
  EXPECT_EQ(field_from_name(""), std::nullopt);
}

TEST(FilterNames, FieldWidths) {
  struct Case {
    Field field;
    unsigned bits;
    bool mac;
  };
  const Case cases[] = {
      {Field::Interface, 32, false},    {Field::Compartment, 32, false},
      {Field::LocalMac, 48, true},      {Field::RemoteMac, 48, true},
      {Field::InterfaceMac, 48, true},  {Field::EtherType, 16, false},
      {Field::Vlan, 12, false},         {Field::InnerVlan, 12, false},
      {Field::FrameLength, 16, false},  {Field::L2Flags, 16, false},
      {Field::LocalAddrType, 2, false}, {Field::RemoteAddrType, 2, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(field_name(c.field)));
    EXPECT_EQ(field_bits(c.field), c.bits);
    EXPECT_EQ(field_is_mac(c.field), c.mac);
    EXPECT_EQ(field_max(c.field), (1ull << c.bits) - 1);
  }
}

TEST(FilterNames, MatchWordsAndSymbols) {
  struct Case {
    Match match;
    const char* word;
    const char* symbol;  // nullptr: none
  };
  const Case cases[] = {
      {Match::Equal, "eq", "=="},
      {Match::NotEqual, "ne", "!="},
      {Match::Greater, "gt", ">"},
      {Match::Less, "lt", "<"},
      {Match::GreaterOrEqual, "ge", ">="},
      {Match::LessOrEqual, "le", "<="},
      {Match::Range, "range", nullptr},
      {Match::FlagsAllSet, "all-set", nullptr},
      {Match::FlagsAnySet, "any-set", nullptr},
      {Match::FlagsNoneSet, "none-set", nullptr},
      {Match::Prefix, "prefix", nullptr},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.word);
    EXPECT_EQ(match_name(c.match), c.word);
    EXPECT_EQ(match_from_name(c.word), c.match);
    if (c.symbol) {
      EXPECT_EQ(match_from_name(c.symbol), c.match);
    }
  }
  EXPECT_EQ(match_from_name("="), std::nullopt);
  EXPECT_EQ(match_from_name(""), std::nullopt);
  EXPECT_EQ(match_from_name("equal"), std::nullopt);
}

TEST(FilterNames, ActionsAndLayers) {
  const std::pair<Action, const char*> actions[] = {
      {Action::Permit, "permit"},
      {Action::Block, "block"},
      {Action::CalloutTerminating, "callout-terminating"},
      {Action::CalloutInspection, "callout-inspection"},
      {Action::CalloutUnknown, "callout-unknown"},
  };
  for (auto [action, name] : actions) {
    EXPECT_EQ(action_name(action), name);
    EXPECT_EQ(action_from_name(name), action);
  }
  EXPECT_EQ(action_from_name("drop"), std::nullopt);
  EXPECT_EQ(layer_name(Layer::Inbound), "inbound");
  EXPECT_EQ(layer_name(Layer::Outbound), "outbound");
  EXPECT_EQ(layer_from_name("inbound"), Layer::Inbound);
  EXPECT_EQ(layer_from_name("outbound"), Layer::Outbound);
  EXPECT_EQ(layer_from_name("ingress"), std::nullopt);
}

// ---- tokenizer ---------------------------------------------------------------

struct TokenizeCase {
  const char* line;
  std::vector<std::string> words;
};

TEST(Tokenize, SplitsQuotesAndComments) {
  const TokenizeCase cases[] = {
      {"", {}},
      {"   \t ", {}},
      {"# only a comment", {}},
      {"filter add action block", {"filter", "add", "action", "block"}},
      {"  a\tb   c  ", {"a", "b", "c"}},
      {"description \"two words\"", {"description", "two words"}},
      {"a \"\" b", {"a", "", "b"}},
      {"x\"y z\"w", {"xy zw"}},
      {"a # comment with \"quote", {"a"}},
      {"a#b", {"a"}},
      {"\"has # inside\" c", {"has # inside", "c"}},
      {R"("say \"hi\"" "back\\slash")", {"say \"hi\"", "back\\slash"}},
      {R"("line\nbreak\ttab")", {"line\nbreak\ttab"}},
      {"plain\\backslash", {"plain\\backslash"}},
  };
  for (const TokenizeCase& c : cases) {
    SCOPED_TRACE(c.line);
    auto words = tokenize(c.line);
    ASSERT_TRUE(words.ok()) << words.error().message;
    EXPECT_EQ(*words, c.words);
  }
}

TEST(Tokenize, UnterminatedQuoteIsAnError) {
  for (const char* line : {"description \"open", "\"", "a \"b\\\""}) {
    SCOPED_TRACE(line);
    auto words = tokenize(line);
    ASSERT_FALSE(words.ok());
    EXPECT_THAT(words.error().message, HasSubstr("missing closing quote"));
  }
}

// ---- condition values --------------------------------------------------------

struct GoodCondition {
  Field field;
  Match match;
  const char* text;
  uint64_t value;
  uint64_t value_hi;
  uint64_t mask;
};

std::ostream& operator<<(std::ostream& os, const GoodCondition& c) {
  return os << field_name(c.field) << " " << match_name(c.match) << " " << c.text;
}

constexpr uint64_t kNoMask = ~0ull;

const GoodCondition kGoodConditions[] = {
    // interface: names through the resolver, or numbers; eq/ne only.
    {Field::Interface, Match::Equal, "eth0", 2, 0, kNoMask},
    {Field::Interface, Match::NotEqual, "br-lan", 7, 0, kNoMask},
    {Field::Interface, Match::Equal, "5", 5, 0, kNoMask},
    {Field::Interface, Match::Equal, "0x10", 16, 0, kNoMask},
    // compartment: u32 with every comparison.
    {Field::Compartment, Match::Equal, "4026531840", 4026531840u, 0, kNoMask},
    {Field::Compartment, Match::NotEqual, "4294967295", 4294967295u, 0, kNoMask},
    {Field::Compartment, Match::Greater, "10", 10, 0, kNoMask},
    {Field::Compartment, Match::Less, "10", 10, 0, kNoMask},
    {Field::Compartment, Match::GreaterOrEqual, "0", 0, 0, kNoMask},
    {Field::Compartment, Match::LessOrEqual, "0xffffffff", 0xffffffff, 0, kNoMask},
    {Field::Compartment, Match::Range, "1-100", 1, 100, kNoMask},
    // MACs: colon or dash, any case, optional /LEN or /MASK.
    {Field::LocalMac, Match::Equal, "02:00:00:00:00:01", 0x020000000001, 0, kMacFull},
    {Field::RemoteMac, Match::Equal, "02-AA-bb-CC-dd-EE", 0x02aabbccddee, 0, kMacFull},
    {Field::InterfaceMac, Match::Equal, "02:00:5e:00:00:01/24", 0x02005e000000, 0, 0xffffff000000},
    {Field::LocalMac, Match::NotEqual, "ff:ff:ff:ff:ff:ff", kMacFull, 0, kMacFull},
    {Field::LocalMac, Match::Equal, "02:11:22:33:44:55/ff:00:ff:00:00:ff", 0x020022000055, 0,
     0xff00ff0000ff},
    {Field::LocalMac, Match::Equal, "02:11:22:33:44:55/48", 0x021122334455, 0, kMacFull},
    {Field::RemoteMac, Match::Prefix, "01:00:5e:00:00:00/25", 0x01005e000000, 0, 0xffffff800000},
    {Field::RemoteMac, Match::Prefix, "02:00:5e:12:34:56/24", 0x02005e000000, 0, 0xffffff000000},
    {Field::RemoteMac, Match::Prefix, "02:00:00:00:00:00/ff:ff:00:00:00:00", 0x020000000000, 0,
     0xffff00000000},
    {Field::RemoteMac, Match::Prefix, "02:00:00:00:00:00/0", 0, 0, 0},
    {Field::InterfaceMac, Match::Prefix, "02:00:00:00:00:07/48", 0x020000000007, 0, kMacFull},
    {Field::LocalMac, Match::Greater, "02:00:00:00:00:00", 0x020000000000, 0, kMacFull},
    {Field::LocalMac, Match::Less, "02:00:00:00:00:00", 0x020000000000, 0, kMacFull},
    {Field::LocalMac, Match::GreaterOrEqual, "00:00:00:00:00:00", 0, 0, kMacFull},
    {Field::LocalMac, Match::LessOrEqual, "ff:ff:ff:ff:ff:ff", kMacFull, 0, kMacFull},
    {Field::RemoteMac, Match::Range, "02:00:00:00:00:00-02:00:00:00:00:ff", 0x020000000000,
     0x0200000000ff, kMacFull},
    {Field::RemoteMac, Match::Range, "02-00-00-00-00-00-02-00-00-00-00-FF", 0x020000000000,
     0x0200000000ff, kMacFull},
    // ethertype: names or numbers, names on both sides of a range.
    {Field::EtherType, Match::Equal, "ipv4", 0x0800, 0, kNoMask},
    {Field::EtherType, Match::Equal, "0x86DD", 0x86dd, 0, kNoMask},
    {Field::EtherType, Match::Equal, "2054", 0x0806, 0, kNoMask},
    {Field::EtherType, Match::NotEqual, "arp", 0x0806, 0, kNoMask},
    {Field::EtherType, Match::Greater, "0x0600", 0x0600, 0, kNoMask},
    {Field::EtherType, Match::Less, "0x0600", 0x0600, 0, kNoMask},
    {Field::EtherType, Match::GreaterOrEqual, "ipv6", 0x86dd, 0, kNoMask},
    {Field::EtherType, Match::LessOrEqual, "0xffff", 0xffff, 0, kNoMask},
    {Field::EtherType, Match::Range, "ipv4-arp", 0x0800, 0x0806, kNoMask},
    {Field::EtherType, Match::Range, "0x0800-0x86dd", 0x0800, 0x86dd, kNoMask},
    {Field::EtherType, Match::Range, "mpls-mpls-multicast", 0x8847, 0x8848, kNoMask},
    {Field::EtherType, Match::Range, "pppoe-discovery-pppoe-session", 0x8863, 0x8864, kNoMask},
    {Field::EtherType, Match::Range, "vlan-0x88a8", 0x8100, 0x88a8, kNoMask},
    // VLANs.
    {Field::Vlan, Match::Equal, "0", 0, 0, kNoMask},
    {Field::Vlan, Match::Equal, "4095", 4095, 0, kNoMask},
    {Field::Vlan, Match::NotEqual, "1", 1, 0, kNoMask},
    {Field::Vlan, Match::Greater, "4094", 4094, 0, kNoMask},
    {Field::Vlan, Match::Less, "1", 1, 0, kNoMask},
    {Field::Vlan, Match::GreaterOrEqual, "100", 100, 0, kNoMask},
    {Field::Vlan, Match::LessOrEqual, "0x0ff", 255, 0, kNoMask},
    {Field::Vlan, Match::Range, "100-200", 100, 200, kNoMask},
    {Field::Vlan, Match::Range, "7-7", 7, 7, kNoMask},
    {Field::InnerVlan, Match::Equal, "10", 10, 0, kNoMask},
    {Field::InnerVlan, Match::Range, "0-4095", 0, 4095, kNoMask},
    // frame length.
    {Field::FrameLength, Match::Range, "64-1518", 64, 1518, kNoMask},
    {Field::FrameLength, Match::Greater, "1500", 1500, 0, kNoMask},
    {Field::FrameLength, Match::LessOrEqual, "65535", 65535, 0, kNoMask},
    {Field::FrameLength, Match::Less, "60", 60, 0, kNoMask},
    // l2 flags: names, numbers, mixed lists.
    {Field::L2Flags, Match::FlagsAllSet, "malformed,vlan-tagged",
     XFP_L2_MALFORMED | XFP_L2_VLAN_TAGGED, 0, kNoMask},
    {Field::L2Flags, Match::FlagsAnySet, "qinq", XFP_L2_QINQ, 0, kNoMask},
    {Field::L2Flags, Match::FlagsNoneSet, "llc", XFP_L2_LLC, 0, kNoMask},
    {Field::L2Flags, Match::FlagsAllSet, "native-ethernet,tag-stack-deep",
     XFP_L2_NATIVE_ETHERNET | XFP_L2_TAG_STACK_DEEP, 0, kNoMask},
    {Field::L2Flags, Match::NotEqual, "ip-fragment", XFP_L2_IP_FRAGMENT, 0, kNoMask},
    {Field::L2Flags, Match::Equal, "0", 0, 0, kNoMask},
    {Field::L2Flags, Match::FlagsAnySet, "0x3", 3, 0, kNoMask},
    {Field::L2Flags, Match::FlagsAllSet, "malformed,0x40", XFP_L2_MALFORMED | 0x40, 0, kNoMask},
    {Field::L2Flags, Match::FlagsNoneSet, "0", 0, 0, kNoMask},
    // address types.
    {Field::LocalAddrType, Match::Equal, "unicast", XFP_ADDR_UNICAST, 0, kNoMask},
    {Field::LocalAddrType, Match::NotEqual, "multicast", XFP_ADDR_MULTICAST, 0, kNoMask},
    {Field::RemoteAddrType, Match::Equal, "broadcast", XFP_ADDR_BROADCAST, 0, kNoMask},
};

class GoodConditionTest : public ::testing::TestWithParam<GoodCondition> {};

TEST_P(GoodConditionTest, ParsesToTheExpectedValues) {
  const GoodCondition& g = GetParam();
  auto c = parse_condition(g.field, g.match, g.text, kResolve);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->field, g.field);
  EXPECT_EQ(c->match, g.match);
  EXPECT_EQ(c->value, g.value);
  EXPECT_EQ(c->value_hi, g.value_hi);
  EXPECT_EQ(c->mask, g.mask);
}

TEST_P(GoodConditionTest, FormattedValueParsesBackToTheSameCondition) {
  const GoodCondition& g = GetParam();
  auto c = parse_condition(g.field, g.match, g.text, kResolve);
  ASSERT_TRUE(c.ok()) << c.error().message;
  const std::string text = format_condition_value(*c);
  auto again = parse_condition(g.field, g.match, text, kResolve);
  ASSERT_TRUE(again.ok()) << text << ": " << again.error().message;
  EXPECT_EQ(*again, *c) << text;
  EXPECT_EQ(format_condition_value(*again), text);
}

INSTANTIATE_TEST_SUITE_P(Values, GoodConditionTest, ::testing::ValuesIn(kGoodConditions));

TEST(ParseCondition, EveryEthertypeName) {
  const std::pair<const char*, uint64_t> names[] = {
      {"ipv4", 0x0800},
      {"arp", 0x0806},
      {"wol", 0x0842},
      {"rarp", 0x8035},
      {"vlan", 0x8100},
      {"ipv6", 0x86dd},
      {"mpls", 0x8847},
      {"mpls-multicast", 0x8848},
      {"pppoe-discovery", 0x8863},
      {"pppoe-session", 0x8864},
      {"eapol", 0x888e},
      {"qinq", 0x88a8},
      {"lldp", 0x88cc},
      {"ptp", 0x88f7},
      {"macsec", 0x88e5},
  };
  for (auto [name, number] : names) {
    SCOPED_TRACE(name);
    auto c = parse_condition(Field::EtherType, Match::Equal, name, kResolve);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->value, number);
    EXPECT_EQ(format_condition_value(*c), name);  // the name wins over the number
  }
}

TEST(ParseCondition, EveryL2FlagName) {
  const std::pair<const char*, uint64_t> names[] = {
      {"malformed", XFP_L2_MALFORMED},
      {"vlan-tagged", XFP_L2_VLAN_TAGGED},
      {"qinq", XFP_L2_QINQ},
      {"llc", XFP_L2_LLC},
      {"ip-fragment", XFP_L2_IP_FRAGMENT},
      {"native-ethernet", XFP_L2_NATIVE_ETHERNET},
      {"tag-stack-deep", XFP_L2_TAG_STACK_DEEP},
  };
  for (auto [name, bit] : names) {
    SCOPED_TRACE(name);
    auto c = parse_condition(Field::L2Flags, Match::FlagsAnySet, name, kResolve);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->value, bit);
    EXPECT_EQ(l2_flags_to_string(static_cast<uint32_t>(bit)), name);
  }
}

struct BadCondition {
  Field field;
  Match match;
  const char* text;
  const char* error;  // a substring of the message
};

std::ostream& operator<<(std::ostream& os, const BadCondition& c) {
  return os << field_name(c.field) << " " << match_name(c.match) << " " << c.text;
}

const BadCondition kBadConditions[] = {
    // Numbers out of range, per field width.
    {Field::Vlan, Match::Equal, "5000", "vlan value 5000 is out of range 0-4095"},
    {Field::InnerVlan, Match::Equal, "4096", "inner-vlan value 4096 is out of range 0-4095"},
    {Field::FrameLength, Match::Equal, "65536", "frame-length value 65536 is out of range 0-65535"},
    {Field::Compartment, Match::Equal, "4294967296",
     "compartment value 4294967296 is out of range 0-4294967295"},
    {Field::EtherType, Match::Equal, "0x10000", "ethertype value 0x10000 is out of range 0-65535"},
    {Field::Vlan, Match::Equal, "99999999999999999999999", "is out of range 0-4095"},
    {Field::Interface, Match::Equal, "4294967296", "interface index 4294967296 is out of range"},
    {Field::L2Flags, Match::Equal, "0x10000", "l2-flags value 0x10000 is out of range 0-65535"},
    // Not numbers.
    {Field::Vlan, Match::Equal, "abc", "bad vlan value 'abc': expected a number"},
    {Field::Vlan, Match::Equal, "-1", "bad vlan value '-1'"},
    {Field::Vlan, Match::Equal, "+1", "bad vlan value '+1'"},
    {Field::Vlan, Match::Equal, "1.5", "bad vlan value '1.5'"},
    {Field::Vlan, Match::Equal, "0x", "bad vlan value '0x'"},
    {Field::FrameLength, Match::Equal, "", "bad frame-length value ''"},
    {Field::EtherType, Match::Equal, "foo",
     "unknown ethertype 'foo' (expected a number or one of: ipv4, arp"},
    // MAC syntax.
    {Field::LocalMac, Match::Equal, "02:zz:00:00:00:01",
     "bad MAC address '02:zz:00:00:00:01': expected six hex bytes like 02:00:00:00:00:01"},
    {Field::LocalMac, Match::Equal, "02:00:00:00:00", "bad MAC address '02:00:00:00:00'"},
    {Field::RemoteMac, Match::Equal, "02:00:00-00:00:01", "bad MAC address '02:00:00-00:00:01'"},
    {Field::RemoteMac, Match::Equal, "2:0:0:0:0:1", "bad MAC address '2:0:0:0:0:1'"},
    {Field::InterfaceMac, Match::Equal, "02:00:00:00:00:01:02", "bad MAC address"},
    {Field::LocalMac, Match::Equal, "02:00:00:00:00:01/49",
     "prefix length 49 is out of range 0-48"},
    {Field::LocalMac, Match::Equal, "02:00:00:00:00:01/zz", "bad MAC mask 'zz'"},
    {Field::LocalMac, Match::Equal, "02:00:00:00:00:01/", "bad MAC mask ''"},
    {Field::LocalMac, Match::Equal, "02:zz:00:00:00:01/24", "bad MAC address '02:zz:00:00:00:01'"},
    // MAC masks and match types.
    {Field::LocalMac, Match::Prefix, "02:00:00:00:00:01",
     "prefix on local-mac needs /LEN or /MASK"},
    {Field::LocalMac, Match::Prefix, "02:00:00:00:00:00/ff:00:ff:00:00:00", "is not a prefix"},
    {Field::LocalMac, Match::Greater, "02:00:00:00:00:00/24",
     "a MAC mask applies only to eq, ne and prefix, not to gt on local-mac"},
    {Field::RemoteMac, Match::LessOrEqual, "02:00:00:00:00:00/ff:ff:ff:ff:ff:00",
     "a MAC mask applies only to eq, ne and prefix"},
    // Ranges.
    {Field::Vlan, Match::Range, "200-100", "range 200-100 on vlan is empty (low is above high)"},
    {Field::EtherType, Match::Range, "ipv6-ipv4", "range ipv6-ipv4 on ethertype is empty"},
    {Field::RemoteMac, Match::Range, "02:00:00:00:00:ff-02:00:00:00:00:00",
     "on remote-mac is empty (low is above high)"},
    {Field::Vlan, Match::Range, "100", "bad range '100' on vlan: expected LOW-HIGH like 100-200"},
    {Field::Vlan, Match::Range, "100-5000", "vlan value 5000 is out of range 0-4095"},
    {Field::Vlan, Match::Range, "x-5", "bad vlan value 'x'"},
    {Field::Vlan, Match::Range, "1-2-3", "bad range '1-2-3' on vlan"},
    {Field::RemoteMac, Match::Range, "02:00:00:00:00:00",
     "bad range '02:00:00:00:00:00' on remote-mac: expected LOW-HIGH like "
     "02:00:00:00:00:00-02:00:00:00:00:ff"},
    {Field::LocalMac, Match::Range, "02:00:00:00:00:00/24-02:00:00:00:00:ff",
     "bad MAC address '02:00:00:00:00:00/24'"},
    {Field::EtherType, Match::Range, "ipv4-nope", "unknown ethertype 'nope'"},
    // Conditions that can never match.
    {Field::Vlan, Match::Greater, "4095", "condition 'vlan gt 4095' can never match"},
    {Field::FrameLength, Match::Less, "0", "condition 'frame-length lt 0' can never match"},
    {Field::EtherType, Match::Greater, "0xffff", "condition 'ethertype gt 0xffff' can never match"},
    {Field::LocalMac, Match::Greater, "ff:ff:ff:ff:ff:ff", "can never match"},
    {Field::LocalMac, Match::Less, "00:00:00:00:00:00", "can never match"},
    {Field::LocalMac, Match::NotEqual, "02:00:00:00:00:00/0",
     "condition 'local-mac ne 02:00:00:00:00:00/0' can never match"},
    {Field::L2Flags, Match::FlagsAnySet, "0", "condition 'l2-flags any-set 0' can never match"},
    // Match types that do not fit the field.
    {Field::Vlan, Match::FlagsAllSet, "5", "match type all-set applies only to l2-flags"},
    {Field::EtherType, Match::FlagsAnySet, "ipv4", "match type any-set applies only to l2-flags"},
    {Field::LocalMac, Match::FlagsNoneSet, "02:00:00:00:00:00",
     "match type none-set applies only to l2-flags"},
    {Field::Vlan, Match::Prefix, "5", "match type prefix applies only to MAC fields"},
    {Field::EtherType, Match::Prefix, "ipv4", "match type prefix applies only to MAC fields"},
    {Field::L2Flags, Match::Greater, "1",
     "match type gt does not apply to l2-flags (expected eq, ne, all-set, any-set or none-set)"},
    {Field::L2Flags, Match::Range, "1-2", "match type range does not apply to l2-flags"},
    {Field::L2Flags, Match::Prefix, "1", "match type prefix applies only to MAC fields"},
    {Field::LocalAddrType, Match::Greater, "unicast",
     "match type gt does not apply to local-addr-type (expected eq or ne)"},
    {Field::RemoteAddrType, Match::Range, "unicast-broadcast",
     "match type range does not apply to remote-addr-type"},
    {Field::Interface, Match::Greater, "3", "match type gt does not apply to interface"},
    {Field::Interface, Match::Range, "1-3", "match type range does not apply to interface"},
    // Names that do not exist.
    {Field::L2Flags, Match::FlagsAllSet, "malformed,foo",
     "unknown l2 flag 'foo' (expected a number or one of: malformed, vlan-tagged, qinq, llc, "
     "ip-fragment, native-ethernet, tag-stack-deep)"},
    {Field::L2Flags, Match::FlagsAllSet, "malformed,", "unknown l2 flag ''"},
    {Field::LocalAddrType, Match::Equal, "anycast",
     "unknown address type 'anycast' (expected one of: unicast, multicast, broadcast)"},
    {Field::Interface, Match::Equal, "eth9", "unknown interface 'eth9'"},
};

class BadConditionTest : public ::testing::TestWithParam<BadCondition> {};

TEST_P(BadConditionTest, FailsWithAClearMessage) {
  const BadCondition& b = GetParam();
  auto c = parse_condition(b.field, b.match, b.text, kResolve);
  ASSERT_FALSE(c.ok()) << "parsed as value " << c->value;
  EXPECT_THAT(c.error().message, HasSubstr(b.error));
  EXPECT_EQ(c.error().code,
            b.field == Field::Interface && std::string(b.text) == "eth9" ? ENODEV : EINVAL);
}

INSTANTIATE_TEST_SUITE_P(Values, BadConditionTest, ::testing::ValuesIn(kBadConditions));

TEST(ParseCondition, InterfaceNameWithoutResolverAsksForTheIndex) {
  auto c = parse_condition(Field::Interface, Match::Equal, "eth0", nullptr);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("interface name 'eth0' cannot be resolved here"));
  auto by_index = parse_condition(Field::Interface, Match::Equal, "3", nullptr);
  ASSERT_TRUE(by_index.ok()) << by_index.error().message;
  EXPECT_EQ(by_index->value, 3u);
}

// ---- formatting of values and flags ------------------------------------------

Condition make(Field f, Match m, uint64_t value, uint64_t mask = ~0ull, uint64_t hi = 0) {
  Condition c;
  c.field = f;
  c.match = m;
  c.value = value;
  c.value_hi = hi;
  c.mask = mask;
  return c;
}

TEST(FormatConditionValue, CanonicalText) {
  const std::pair<Condition, const char*> cases[] = {
      {make(Field::Interface, Match::Equal, 2), "2"},
      {make(Field::Compartment, Match::Equal, 4026531840u), "4026531840"},
      {make(Field::LocalMac, Match::Equal, 0x02aabbccddee, kMacFull), "02:aa:bb:cc:dd:ee"},
      {make(Field::LocalMac, Match::Equal, 0x02aabbccddee), "02:aa:bb:cc:dd:ee"},
      {make(Field::LocalMac, Match::Equal, 0x020000000000, 0xffffff000000), "02:00:00:00:00:00/24"},
      {make(Field::LocalMac, Match::Equal, 0x020022000055, 0xff00ff0000ff),
       "02:00:22:00:00:55/ff:00:ff:00:00:ff"},
      {make(Field::LocalMac, Match::Prefix, 0x01005e000000, 0xffffff800000),
       "01:00:5e:00:00:00/25"},
      {make(Field::LocalMac, Match::Prefix, 0x020000000001, kMacFull), "02:00:00:00:00:01/48"},
      {make(Field::LocalMac, Match::Prefix, 0, 0), "00:00:00:00:00:00/0"},
      {make(Field::RemoteMac, Match::Range, 0x020000000000, kMacFull, 0x0200000000ff),
       "02:00:00:00:00:00-02:00:00:00:00:ff"},
      {make(Field::EtherType, Match::Equal, 0x0800), "ipv4"},
      {make(Field::EtherType, Match::Equal, 0x1234), "0x1234"},
      {make(Field::EtherType, Match::Equal, 0x05), "0x0005"},
      {make(Field::EtherType, Match::Range, 0x0800, ~0ull, 0x0806), "ipv4-arp"},
      {make(Field::Vlan, Match::Range, 100, ~0ull, 200), "100-200"},
      {make(Field::FrameLength, Match::Greater, 1500), "1500"},
      {make(Field::L2Flags, Match::FlagsAllSet, XFP_L2_MALFORMED | XFP_L2_QINQ), "malformed,qinq"},
      {make(Field::L2Flags, Match::Equal, 0), "0"},
      {make(Field::L2Flags, Match::FlagsAnySet, XFP_L2_LLC | 0x100), "llc,0x100"},
      {make(Field::L2Flags, Match::FlagsAnySet, 0x200), "0x200"},
      {make(Field::LocalAddrType, Match::Equal, XFP_ADDR_MULTICAST), "multicast"},
      {make(Field::RemoteAddrType, Match::NotEqual, XFP_ADDR_BROADCAST), "broadcast"},
  };
  for (const auto& [c, text] : cases) {
    EXPECT_EQ(format_condition_value(c), text);
  }
}

TEST(FilterFlags, ToStringAndBack) {
  const std::pair<uint32_t, const char*> cases[] = {
      {0, ""},
      {XFP_FILTER_CLEAR_ACTION_RIGHT, "clear-action-right"},
      {XFP_FILTER_PERMIT_IF_CALLOUT_UNREGISTERED, "permit-if-callout-unregistered"},
      {XFP_FILTER_DISABLED, "disabled"},
      {XFP_FILTER_PERSISTENT, "persistent"},
      {XFP_FILTER_PERSISTENT | XFP_FILTER_DISABLED, "disabled,persistent"},
      {XFP_FILTER_KNOWN_FLAGS,
       "clear-action-right,permit-if-callout-unregistered,disabled,persistent"},
  };
  for (auto [bits, text] : cases) {
    EXPECT_EQ(flags_to_string(bits), text);
    auto back = flags_from_string(text);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, bits) << text;
  }
  EXPECT_EQ(flags_to_string(XFP_FILTER_DISABLED | 0x100), "disabled,0x100");
  auto order = flags_from_string("persistent,disabled");
  ASSERT_TRUE(order.ok());
  EXPECT_EQ(*order, static_cast<uint32_t>(XFP_FILTER_PERSISTENT | XFP_FILTER_DISABLED));
  auto bad = flags_from_string("persistent,foo");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message,
            "unknown flag 'foo' (expected one of: clear-action-right, "
            "permit-if-callout-unregistered, disabled, persistent)");
}

TEST(L2Flags, ToString) {
  EXPECT_EQ(l2_flags_to_string(0), "0");
  EXPECT_EQ(l2_flags_to_string(XFP_L2_KNOWN_FLAGS),
            "malformed,vlan-tagged,qinq,llc,ip-fragment,native-ethernet,tag-stack-deep");
  EXPECT_EQ(l2_flags_to_string(XFP_L2_VLAN_TAGGED | XFP_L2_IP_FRAGMENT), "vlan-tagged,ip-fragment");
}

// ---- filter add ----------------------------------------------------------------

TEST(ParseFilter, DefaultsWithOnlyAnAction) {
  auto f = parse_text("action block");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->id, 0u);
  EXPECT_EQ(f->name, "");
  EXPECT_EQ(f->layer, Layer::Inbound);
  EXPECT_EQ(f->sublayer, "default");
  EXPECT_EQ(f->weight, 0u);
  EXPECT_TRUE(f->conditions.empty());
  EXPECT_EQ(f->action, Action::Block);
  EXPECT_EQ(f->callout, "");
  EXPECT_EQ(f->flags, 0u);
  EXPECT_EQ(f->context, 0u);
  EXPECT_EQ(f->description, "");
}

TEST(ParseFilter, EveryKeyword) {
  auto f = parse_text(
      "name web layer outbound sublayer edge weight 0x10 interface eq eth0 vlan range 10-20 "
      "action callout-inspection callout ids.v1 flags persistent,disabled context 42 "
      "description \"inspect web vlans\"");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->name, "web");
  EXPECT_EQ(f->layer, Layer::Outbound);
  EXPECT_EQ(f->sublayer, "edge");
  EXPECT_EQ(f->weight, 16u);
  ASSERT_EQ(f->conditions.size(), 2u);
  EXPECT_EQ(f->conditions[0], make(Field::Interface, Match::Equal, 2));
  EXPECT_EQ(f->conditions[1], make(Field::Vlan, Match::Range, 10, ~0ull, 20));
  EXPECT_EQ(f->action, Action::CalloutInspection);
  EXPECT_EQ(f->callout, "ids.v1");
  EXPECT_EQ(f->flags, static_cast<uint32_t>(XFP_FILTER_PERSISTENT | XFP_FILTER_DISABLED));
  EXPECT_EQ(f->context, 42u);
  EXPECT_EQ(f->description, "inspect web vlans");
}

TEST(ParseFilter, KeywordOrderDoesNotMatter) {
  auto a = parse_text("name x weight 5 vlan eq 3 action permit layer outbound");
  auto b = parse_text("action permit layer outbound vlan eq 3 weight 5 name x");
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->weight, 5u);
  EXPECT_EQ(a->layer, Layer::Outbound);
}

TEST(ParseFilter, SymbolMatchesEqualWordMatches) {
  auto symbols = parse_text(
      "vlan == 1 vlan != 2 frame-length > 3 frame-length < 9999 "
      "ethertype >= 5 ethertype <= 0x9000 action block");
  auto words = parse_text(
      "vlan eq 1 vlan ne 2 frame-length gt 3 frame-length lt 9999 "
      "ethertype ge 5 ethertype le 0x9000 action block");
  ASSERT_TRUE(symbols.ok()) << symbols.error().message;
  ASSERT_TRUE(words.ok()) << words.error().message;
  EXPECT_EQ(*symbols, *words);
  ASSERT_EQ(symbols->conditions.size(), 6u);
  EXPECT_EQ(symbols->conditions[2].match, Match::Greater);
}

TEST(ParseFilter, ExtremeNumbers) {
  auto f = parse_text("weight 18446744073709551615 context 0xffffffffffffffff action permit");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->weight, ~0ull);
  EXPECT_EQ(f->context, ~0ull);
}

TEST(ParseFilter, RangesThatOnlyTouchOrSitOnOtherFieldsAreFine) {
  auto f = parse_text(
      "vlan range 100-200 vlan range 201-300 inner-vlan range 150-250 "
      "vlan eq 150 action block");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->conditions.size(), 4u);
}

TEST(ParseFilter, EveryCalloutActionWithAKey) {
  for (const char* action : {"callout-terminating", "callout-inspection", "callout-unknown"}) {
    auto f = parse_text(std::string("action ") + action +
                        " callout key flags "
                        "permit-if-callout-unregistered");
    ASSERT_TRUE(f.ok()) << action << ": " << f.error().message;
    EXPECT_TRUE(is_callout(f->action));
    EXPECT_EQ(f->callout, "key");
  }
}

struct BadFilter {
  const char* text;
  const char* error;
};

std::ostream& operator<<(std::ostream& os, const BadFilter& b) { return os << b.text; }

const BadFilter kBadFilters[] = {
    {"foo eq 5 action block",
     "unknown field 'foo' (expected one of: interface, compartment, local-mac, remote-mac, "
     "interface-mac, ethertype, vlan, inner-vlan, frame-length, l2-flags, local-addr-type, "
     "remote-addr-type)"},
    {"action block xyz", "unexpected word 'xyz'"},
    {"xyz action block", "unexpected word 'xyz'"},
    {"weight 1 weight 2 action block", "'weight' given twice"},
    {"action block action permit", "'action' given twice"},
    {"name a name b action block", "'name' given twice"},
    {"layer inbound layer inbound action block", "'layer' given twice"},
    {"description a description b action block", "'description' given twice"},
    {"action block vlan eq", "'vlan' needs a match type and a value"},
    {"action block vlan", "'vlan' needs a match type and a value"},
    {"vlan foo 5 action block", "unknown match type 'foo' for vlan (expected one of: eq, ne, gt"},
    {"vlan eq 5",
     "missing 'action' (expected action permit|block|callout-terminating|callout-inspection|"
     "callout-unknown)"},
    {"", "missing 'action'"},
    {"action callout-terminating", "action callout-terminating needs 'callout KEY'"},
    {"action callout-inspection", "action callout-inspection needs 'callout KEY'"},
    {"action callout-unknown", "action callout-unknown needs 'callout KEY'"},
    {"action permit callout foo", "'callout foo' applies only to callout actions"},
    {"callout foo action block", "not to action block"},
    {"action block flags foo",
     "unknown flag 'foo' (expected one of: clear-action-right, permit-if-callout-unregistered, "
     "disabled, persistent)"},
    {"action block flags persistent,,disabled", "unknown flag ''"},
    {"action block flags permit-if-callout-unregistered",
     "flag permit-if-callout-unregistered applies only to callout actions"},
    {"action drop", "unknown action 'drop' (expected one of: permit, block, callout-terminating"},
    {"layer sideways action block", "unknown layer 'sideways' (expected inbound or outbound)"},
    {"weight -1 action block", "bad weight '-1': expected a number (decimal or 0x hex)"},
    {"weight 18446744073709551616 action block",
     "weight 18446744073709551616 is out of range 0-18446744073709551615"},
    {"context x action block", "bad context 'x'"},
    {"action block weight", "'weight' needs a value (expected weight N)"},
    {"action", "'action' needs a value (expected action permit|block"},
    {"action block name 42", "filter name '42' must not be a number"},
    {"action block name 0x2a", "filter name '0x2a' must not be a number"},
    {"name \"\" action block", "'name' needs a non-empty value"},
    {"sublayer \"\" action block", "'sublayer' needs a non-empty name"},
    {"callout \"\" action callout-unknown", "'callout' needs a non-empty key"},
    {"vlan range 100-200 vlan range 150-250 action block",
     "ranges 100-200 and 150-250 on vlan overlap"},
    {"vlan range 100-200 vlan range 200-300 action block",
     "ranges 100-200 and 200-300 on vlan overlap"},
    {"ethertype range ipv4-ipv6 ethertype range arp-arp action block",
     "ranges ipv4-ipv6 and arp-arp on ethertype overlap"},
    {"remote-mac range 02:00:00:00:00:00-02:00:00:00:00:ff "
     "remote-mac range 02:00:00:00:00:80-02:00:00:00:01:00 action block",
     "ranges 02:00:00:00:00:00-02:00:00:00:00:ff and 02:00:00:00:00:80-02:00:00:00:01:00 on "
     "remote-mac overlap"},
    {"vlan gt 4095 action block", "condition 'vlan gt 4095' can never match"},
    {"vlan eq 5000 action block", "vlan value 5000 is out of range 0-4095"},
    {"vlan all-set 1 action block", "match type all-set applies only to l2-flags"},
    {"interface eq eth9 action block", "unknown interface 'eth9'"},
    {"local-mac eq 02:zz:00:00:00:01 action block",
     "bad MAC address '02:zz:00:00:00:01': expected six hex bytes like 02:00:00:00:00:01"},
    {"vlan range 200-100 action block", "range 200-100 on vlan is empty (low is above high)"},
};

class BadFilterTest : public ::testing::TestWithParam<BadFilter> {};

TEST_P(BadFilterTest, FailsWithAClearMessage) {
  const BadFilter& b = GetParam();
  auto f = parse_text(b.text);
  ASSERT_FALSE(f.ok()) << "accepted: " << format_filter_line(*f);
  EXPECT_THAT(f.error().message, HasSubstr(b.error));
}

INSTANTIATE_TEST_SUITE_P(Texts, BadFilterTest, ::testing::ValuesIn(kBadFilters));

// ---- formatting and the round trip -------------------------------------------

TEST(FormatFilter, CanonicalLine) {
  auto f = parse_text(
      "description \"inspect web\" context 0x2a flags persistent,clear-action-right "
      "callout ids action callout-unknown vlan == 100 local-mac prefix 02:00:5e:00:00:00/24 "
      "ethertype range 0x0800-0x0806 weight 9 sublayer edge layer outbound name web");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(format_filter_line(*f),
            "filter add name web layer outbound sublayer edge weight 9 vlan eq 100 "
            "local-mac prefix 02:00:5e:00:00:00/24 ethertype range ipv4-arp "
            "action callout-unknown callout ids flags clear-action-right,persistent context 42 "
            "description \"inspect web\"");
}

TEST(FormatFilter, MinimalLineOmitsEmptyParts) {
  Filter f;
  f.action = Action::Permit;
  EXPECT_EQ(format_filter_line(f),
            "filter add layer inbound sublayer default weight 0 action permit");
}

TEST(FormatFilter, DescriptionIsAlwaysQuoted) {
  Filter f;
  f.description = "single";
  EXPECT_EQ(
      format_filter_line(f),
      "filter add layer inbound sublayer default weight 0 action block description \"single\"");
}

TEST(FormatFilter, WordsAreUnquoted) {
  Filter f;
  f.name = "two words";
  f.description = "say \"hi\"";
  const std::vector<std::string> expected = {"name",     "two words", "layer",       "inbound",
                                             "sublayer", "default",   "weight",      "0",
                                             "action",   "block",     "description", "say \"hi\""};
  EXPECT_EQ(format_filter_words(f), expected);
  auto parsed = parse_filter(format_filter_words(f), kResolve);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, f);
}

// Lines in every shape the language allows; each must survive
// text -> filter -> text -> filter unchanged, and formatting must be stable.
const char* const kRoundTripLines[] = {
    "action block",
    "action permit layer outbound",
    "name web sublayer edge weight 18446744073709551615 action permit",
    "interface eq eth0 interface ne lo action block",
    "interface eq 12 action block",
    "compartment eq 4026531840 compartment range 1-5 compartment gt 7 action permit",
    "compartment lt 9 compartment ge 1 compartment le 0xffffffff action permit",
    "local-mac eq 02:00:00:00:00:01 remote-mac ne ff:ff:ff:ff:ff:ff action block",
    "interface-mac eq 02:00:5e:00:00:01/24 action block",
    "local-mac eq 02:11:22:33:44:55/ff:00:ff:00:00:ff action block",
    "local-mac prefix 01:00:5e:00:00:00/25 local-mac prefix 33:33:00:00:00:00/16 action block",
    "remote-mac prefix 02:00:00:00:00:01/48 action block",
    "remote-mac prefix 00:00:00:00:00:00/0 action permit",
    "remote-mac range 02:00:00:00:00:00-02:00:00:00:00:ff action block",
    "remote-mac gt 02:00:00:00:00:00 remote-mac lt 04:00:00:00:00:00 action block",
    "local-mac ge 02:00:00:00:00:00 local-mac le 02:ff:ff:ff:ff:ff action block",
    "ethertype eq ipv4 ethertype eq arp ethertype eq 0x1234 action permit",
    "ethertype ne ipv6 ethertype gt 0x05ff ethertype lt 0x0600 action block",
    "ethertype range mpls-mpls-multicast ethertype range 0x9000-0x9100 action block",
    "vlan eq 0 vlan eq 4095 vlan ne 7 action block",
    "vlan range 100-200 vlan range 300-400 inner-vlan range 100-200 action block",
    "inner-vlan gt 10 inner-vlan lt 20 inner-vlan ge 1 inner-vlan le 4000 action block",
    "frame-length range 64-1518 frame-length gt 9000 action block",
    "l2-flags all-set malformed,vlan-tagged l2-flags any-set qinq,tag-stack-deep action block",
    "l2-flags none-set native-ethernet l2-flags eq 0 l2-flags ne llc,ip-fragment action block",
    "l2-flags any-set malformed,0x100 action block",
    "local-addr-type eq unicast remote-addr-type ne broadcast action permit",
    "remote-addr-type eq multicast action block",
    "action callout-terminating callout acme.dpi flags permit-if-callout-unregistered",
    "action callout-inspection callout log context 7 flags disabled",
    ("action callout-unknown callout x flags clear-action-right,permit-if-callout-unregistered,"
     "disabled,persistent context 0xffffffffffffffff"),  // one line, split on purpose
    "action block description \"blocks # and \\\"quotes\\\" and \\\\ too\"",
    "action block description \"tab\\there\\nnewline\"",
    "name \"has space\" sublayer \"also spaced\" action permit",
};

class RoundTripTest : public ::testing::TestWithParam<const char*> {};

TEST_P(RoundTripTest, TextFilterTextFilter) {
  const std::string text = GetParam();
  auto first = parse_text(text);
  ASSERT_TRUE(first.ok()) << first.error().message;
  const std::string line = format_filter_line(*first);
  ASSERT_TRUE(line.starts_with("filter add ")) << line;
  auto second = parse_text(line.substr(std::string("filter add ").size()));
  ASSERT_TRUE(second.ok()) << line << ": " << second.error().message;
  EXPECT_EQ(*second, *first) << line;
  EXPECT_EQ(format_filter_line(*second), line);
  // The words form parses back too, without any quoting.
  auto from_words = parse_filter(format_filter_words(*first), kResolve);
  ASSERT_TRUE(from_words.ok()) << from_words.error().message;
  EXPECT_EQ(*from_words, *first);
}

INSTANTIATE_TEST_SUITE_P(Lines, RoundTripTest, ::testing::ValuesIn(kRoundTripLines));

TEST(FormatFilter, IdIsNotInTheText) {
  auto f = parse_text("name x action block");
  ASSERT_TRUE(f.ok());
  f->id = 77;
  auto back = parse_text(format_filter_line(*f).substr(std::string("filter add ").size()));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->id, 0u);
  back->id = 77;
  EXPECT_EQ(*back, *f);
}

TEST(FormatFilter, InterfaceIsWrittenAsItsIndex) {
  auto f = parse_text("interface eq br-lan action block");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_THAT(format_filter_line(*f), HasSubstr(" interface eq 7 "));
}

// ---- check_filter on filters built in code -----------------------------------

TEST(CheckFilter, CatchesWhatTheParserWouldHaveRefused) {
  struct Case {
    Condition condition;
    const char* error;
  };
  const Case cases[] = {
      {make(Field::Vlan, Match::Equal, 5000), "vlan value 5000 is out of range 0-4095"},
      {make(Field::Vlan, Match::Range, 10, ~0ull, 5), "range 10-5 on vlan is empty"},
      {make(Field::Vlan, Match::FlagsAllSet, 1), "match type all-set applies only to l2-flags"},
      {make(Field::LocalMac, Match::Greater, 1, 0xffffff000000),
       "a MAC mask applies only to eq, ne and prefix"},
      {make(Field::LocalMac, Match::Prefix, 0, 0xff00ff000000), "is not a prefix"},
      {make(Field::Vlan, Match::Equal, 5, 0xff), "a mask applies only to MAC fields, not to vlan"},
      {make(Field::FrameLength, Match::Less, 0), "can never match"},
      {make(static_cast<Field>(40), Match::Equal, 0), "unknown field 40"},
  };
  for (const Case& c : cases) {
    Filter f;
    f.conditions.push_back(c.condition);
    auto st = check_filter(f);
    ASSERT_FALSE(st.ok()) << c.error;
    EXPECT_THAT(st.error().message, HasSubstr(c.error));
  }
  Filter flags;
  flags.flags = 0x100;
  auto st = check_filter(flags);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message, HasSubstr("unknown filter flag bits 0x100"));

  Filter no_sublayer;
  no_sublayer.sublayer.clear();
  auto st2 = check_filter(no_sublayer);
  ASSERT_FALSE(st2.ok());
  EXPECT_THAT(st2.error().message, HasSubstr("sublayer name must not be empty"));

  Filter fine;
  fine.conditions.push_back(make(Field::Vlan, Match::Equal, 5));
  fine.conditions.push_back(make(Field::LocalMac, Match::Equal, 0x020000000001));
  EXPECT_TRUE(check_filter(fine).ok());
}

// ---- commands and filter files -------------------------------------------------

TEST(ParseCommand, FilterAdd) {
  auto c = parse_command_text("filter add name a vlan eq 5 action block");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->kind, Command::Kind::AddFilter);
  EXPECT_EQ(c->filter.name, "a");
  ASSERT_EQ(c->filter.conditions.size(), 1u);
  EXPECT_EQ(c->filter.conditions[0].value, 5u);
}

TEST(ParseCommand, FilterDeleteForms) {
  const std::pair<const char*, const char*> cases[] = {
      {"filter delete 7", "7"},        {"filter delete 0x10", "16"},
      {"filter delete id 3", "3"},     {"filter delete id 0x0a", "10"},
      {"filter delete web", "web"},    {"filter delete name web", "web"},
      {"filter delete name id", "id"}, {"filter delete \"two words\"", "two words"},
  };
  for (auto [text, ref] : cases) {
    SCOPED_TRACE(text);
    auto c = parse_command_text(text);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->kind, Command::Kind::DeleteFilter);
    EXPECT_EQ(c->ref, ref);
  }
}

TEST(ParseCommand, Sublayers) {
  auto add = parse_command_text("sublayer add edge weight 65535");
  ASSERT_TRUE(add.ok()) << add.error().message;
  EXPECT_EQ(add->kind, Command::Kind::AddSublayer);
  EXPECT_EQ(add->sublayer, (Sublayer{"edge", 65535}));
  auto hex = parse_command_text("sublayer add core weight 0x100");
  ASSERT_TRUE(hex.ok()) << hex.error().message;
  EXPECT_EQ(hex->sublayer.weight, 256);
  auto del = parse_command_text("sublayer delete edge");
  ASSERT_TRUE(del.ok()) << del.error().message;
  EXPECT_EQ(del->kind, Command::Kind::DeleteSublayer);
  EXPECT_EQ(del->ref, "edge");
}

TEST(ParseCommand, DefaultsAndFlush) {
  const std::tuple<const char*, Layer, Action> cases[] = {
      {"default inbound block", Layer::Inbound, Action::Block},
      {"default inbound permit", Layer::Inbound, Action::Permit},
      {"default outbound block", Layer::Outbound, Action::Block},
      {"default outbound permit", Layer::Outbound, Action::Permit},
  };
  for (auto [text, layer, action] : cases) {
    auto c = parse_command_text(text);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->kind, Command::Kind::SetDefault);
    EXPECT_EQ(c->layer, layer);
    EXPECT_EQ(c->default_action, action);
  }
  auto flush = parse_command_text("flush");
  ASSERT_TRUE(flush.ok());
  EXPECT_EQ(flush->kind, Command::Kind::Flush);
}

TEST(ParseCommand, Errors) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "empty command"},
      {"filtr add action block",
       "unknown command 'filtr' (expected filter, sublayer, default or flush)"},
      {"filter", "'filter' needs add or delete"},
      {"filter remove 3", "unknown filter command 'remove' (expected add or delete)"},
      {"filter add vlan eq 5", "missing 'action'"},
      {"filter delete", "'filter delete' needs a filter id or name"},
      {"filter delete id", "'filter delete id' needs a value"},
      {"filter delete id x", "bad filter id 'x'"},
      {"filter delete id 0", "filter id 0 is not valid"},
      {"filter delete 0", "filter id 0 is not valid"},
      {"filter delete name 5", "bad filter name '5'"},
      {"filter delete a b", "unexpected word 'b' after filter delete"},
      {"filter delete id 3 4", "unexpected word '4' after filter delete"},
      {"sublayer", "'sublayer' needs add or delete"},
      {"sublayer move x", "unknown sublayer command 'move'"},
      {"sublayer add", "'sublayer add' needs a sublayer name"},
      {"sublayer add edge", "missing 'weight' (expected sublayer add edge weight N)"},
      {"sublayer add edge 5", "unexpected word '5' after sublayer add NAME"},
      {"sublayer add edge weight", "'weight' needs a value"},
      {"sublayer add edge weight 65536", "sublayer weight 65536 is out of range 0-65535"},
      {"sublayer add edge weight x", "bad sublayer weight 'x'"},
      {"sublayer add edge weight 1 extra", "unexpected word 'extra'"},
      {"sublayer delete", "'sublayer delete' needs a sublayer name"},
      {"sublayer delete a b", "unexpected word 'b'"},
      {"default inbound", "'default' needs a layer and an action"},
      {"default sideways block", "unknown layer 'sideways'"},
      {"default inbound callout-terminating",
       "bad default action 'callout-terminating' (expected permit or block)"},
      {"default inbound drop", "bad default action 'drop'"},
      {"default inbound block now", "unexpected word 'now'"},
      {"flush now", "unexpected word 'now' after flush"},
  };
  for (auto [text, error] : cases) {
    SCOPED_TRACE(text);
    auto c = parse_command_text(text);
    ASSERT_FALSE(c.ok());
    EXPECT_THAT(c.error().message, HasSubstr(error));
  }
}

TEST(ParseBatch, EveryCommandKindWithCommentsAndBlankLines) {
  const char* text =
      "# policy for the lab\n"
      "\n"
      "flush\n"
      "sublayer add edge weight 100   # before the default sublayer\n"
      "default inbound block\r\n"
      "filter add name arp sublayer edge ethertype eq arp action permit description \"let ARP "
      "in\"\n"
      "   \t \n"
      "filter add vlan range 10-20 action block\n"
      "filter delete arp\n"
      "sublayer delete edge\n"
      "default outbound permit";  // no newline at the end
  auto commands = parse_batch(text, "policy.xfp", kResolve);
  ASSERT_TRUE(commands.ok()) << commands.error().message;
  ASSERT_EQ(commands->size(), 8u);
  const Command::Kind kinds[] = {
      Command::Kind::Flush,          Command::Kind::AddSublayer, Command::Kind::SetDefault,
      Command::Kind::AddFilter,      Command::Kind::AddFilter,   Command::Kind::DeleteFilter,
      Command::Kind::DeleteSublayer, Command::Kind::SetDefault,
  };
  for (size_t i = 0; i < commands->size(); ++i) EXPECT_EQ((*commands)[i].kind, kinds[i]) << i;
  EXPECT_EQ((*commands)[1].sublayer, (Sublayer{"edge", 100}));
  EXPECT_EQ((*commands)[2].default_action, Action::Block);
  EXPECT_EQ((*commands)[3].filter.description, "let ARP in");
  EXPECT_EQ((*commands)[3].filter.sublayer, "edge");
  EXPECT_EQ((*commands)[5].ref, "arp");
  EXPECT_EQ((*commands)[7].layer, Layer::Outbound);
  EXPECT_EQ((*commands)[7].default_action, Action::Permit);
  // Each command knows its line, for the errors the daemon finds later.
  const char* origins[] = {"policy.xfp:3", "policy.xfp:4", "policy.xfp:5",  "policy.xfp:6",
                           "policy.xfp:8", "policy.xfp:9", "policy.xfp:10", "policy.xfp:11"};
  for (size_t i = 0; i < commands->size(); ++i) EXPECT_EQ((*commands)[i].origin, origins[i]) << i;
  // A command typed on its own has none.
  auto lone = parse_command({"flush"}, kResolve);
  ASSERT_TRUE(lone.ok());
  EXPECT_EQ(lone->origin, "");
}

TEST(ParseBatch, ErrorNamesSourceAndLine) {
  const char* text =
      "# line 1\n"
      "flush\n"
      "\n"
      "sublayer add edge weight 1\n"
      "filter add vlan eq 5 action block\n"
      "# line 6\n"
      "filter add foo eq 5 action block\n"
      "filter add bar eq 5 action block\n";
  auto commands = parse_batch(text, "policy.xfp", kResolve);
  ASSERT_FALSE(commands.ok());
  EXPECT_THAT(commands.error().message,
              StartsWith("policy.xfp:7: unknown field 'foo' (expected one of: interface"));
  EXPECT_THAT(commands.error().message, HasSubstr(":7:"));
  EXPECT_EQ(commands.error().code, EINVAL);
}

TEST(ParseBatch, FirstErrorWinsAndTokenizerErrorsHaveLines) {
  auto two_bad = parse_batch("flush\nflush now\nbogus\n", "f", kResolve);
  ASSERT_FALSE(two_bad.ok());
  EXPECT_THAT(two_bad.error().message, StartsWith("f:2: unexpected word 'now'"));

  auto quote =
      parse_batch("flush\nflush\nfilter add action block description \"open\n", "q.xfp", kResolve);
  ASSERT_FALSE(quote.ok());
  EXPECT_THAT(quote.error().message, StartsWith("q.xfp:3: missing closing quote"));

  auto iface = parse_batch("\n\nfilter add interface eq eth9 action block", "i", kResolve);
  ASSERT_FALSE(iface.ok());
  EXPECT_EQ(iface.error().message, "i:3: unknown interface 'eth9'");
  EXPECT_EQ(iface.error().code, ENODEV);
}

TEST(ParseBatch, AByteOrderMarkIsNotAWord) {
  auto commands = parse_batch("\xEF\xBB\xBF" "flush\nfilter add ethertype eq arp action block\n", "bom.xfp", kResolve);
  ASSERT_TRUE(commands.ok()) << commands.error().message;
  ASSERT_EQ(commands->size(), 2u);
  EXPECT_EQ((*commands)[0].kind, Command::Kind::Flush);
  EXPECT_EQ((*commands)[0].origin, "bom.xfp:1");
  // Only at the start: elsewhere it is a word, and a bad one.
  auto inside = parse_batch("flush\n\xEF\xBB\xBF" "flush\n", "bom.xfp", kResolve);
  ASSERT_FALSE(inside.ok());
  EXPECT_THAT(inside.error().message, HasSubstr("bom.xfp:2: unknown command"));
}

TEST(ParseBatch, EmptyAndCommentOnlyFiles) {
  for (const char* text : {"", "\n", "# nothing\n\n   # here\n"}) {
    auto commands = parse_batch(text, "empty", kResolve);
    ASSERT_TRUE(commands.ok()) << commands.error().message;
    EXPECT_TRUE(commands->empty());
  }
}

TEST(ParseBatch, FormattedLinesMakeAFileThatParsesBack) {
  std::string file;
  std::vector<Filter> filters;
  for (const char* text : kRoundTripLines) {
    auto f = parse_text(text);
    ASSERT_TRUE(f.ok()) << text << ": " << f.error().message;
    filters.push_back(*f);
    file += format_filter_line(*f) + "\n";
  }
  ASSERT_GT(filters.size(), 30u);
  auto commands = parse_batch(file, "saved", kResolve);
  ASSERT_TRUE(commands.ok()) << commands.error().message;
  ASSERT_EQ(commands->size(), filters.size());
  for (size_t i = 0; i < filters.size(); ++i) {
    EXPECT_EQ((*commands)[i].kind, Command::Kind::AddFilter);
    EXPECT_EQ((*commands)[i].filter, filters[i]) << format_filter_line(filters[i]);
  }
}

}  // namespace
}  // namespace xfp
