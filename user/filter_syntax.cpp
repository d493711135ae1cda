// The filter language: tokenizer, condition values, `filter add` words,
// filter files, and the formatter that writes the same language back.
//
// Every error is a sentence that names the word at fault and what would
// have been accepted there, because the person reading it is usually
// looking at a filter file and not at this code.
#include "xfp/filter_syntax.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <charconv>
#include <limits>
#include <span>
#include <vector>

namespace xfp {
namespace {

constexpr uint64_t kMacFull = 0xffff'ffff'ffffull;

// ---- name tables -----------------------------------------------------------

struct NamedValue {
  std::string_view name;
  uint64_t value;
};

constexpr NamedValue kFilterFlags[] = {
    {"clear-action-right", XFP_FILTER_CLEAR_ACTION_RIGHT},
    {"permit-if-callout-unregistered", XFP_FILTER_PERMIT_IF_CALLOUT_UNREGISTERED},
    {"disabled", XFP_FILTER_DISABLED},
    {"persistent", XFP_FILTER_PERSISTENT},
};

constexpr NamedValue kL2Flags[] = {
    {"malformed", XFP_L2_MALFORMED},
    {"vlan-tagged", XFP_L2_VLAN_TAGGED},
    {"qinq", XFP_L2_QINQ},
    {"llc", XFP_L2_LLC},
    {"ip-fragment", XFP_L2_IP_FRAGMENT},
    {"native-ethernet", XFP_L2_NATIVE_ETHERNET},
    {"tag-stack-deep", XFP_L2_TAG_STACK_DEEP},
};

constexpr NamedValue kAddrTypes[] = {
    {"unicast", XFP_ADDR_UNICAST},
    {"multicast", XFP_ADDR_MULTICAST},
    {"broadcast", XFP_ADDR_BROADCAST},
};

constexpr NamedValue kEtherTypes[] = {
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

std::optional<uint64_t> value_named(std::span<const NamedValue> table, std::string_view name) {
  for (const NamedValue& nv : table) {
    if (nv.name == name) return nv.value;
  }
  return std::nullopt;
}

std::optional<std::string_view> name_of_value(std::span<const NamedValue> table, uint64_t value) {
  for (const NamedValue& nv : table) {
    if (nv.value == value) return nv.name;
  }
  return std::nullopt;
}

std::string join_names(std::span<const NamedValue> table) {
  std::string out;
  for (const NamedValue& nv : table) {
    if (!out.empty()) out += ", ";
    out += nv.name;
  }
  return out;
}

constexpr Match kAllMatches[] = {
    Match::Equal,          Match::NotEqual,     Match::Greater, Match::Less,
    Match::GreaterOrEqual, Match::LessOrEqual,  Match::Range,   Match::FlagsAllSet,
    Match::FlagsAnySet,    Match::FlagsNoneSet, Match::Prefix,
};

std::string all_match_names() {
  std::string out;
  for (Match m : kAllMatches) {
    if (!out.empty()) out += ", ";
    out += match_name(m);
  }
  return out;
}

constexpr Action kAllActions[] = {Action::Permit, Action::Block, Action::CalloutTerminating,
                                  Action::CalloutInspection, Action::CalloutUnknown};

std::string all_action_names(std::string_view separator) {
  std::string out;
  for (Action a : kAllActions) {
    if (!out.empty()) out += separator;
    out += action_name(a);
  }
  return out;
}

Error invalid(std::string message) { return make_error(EINVAL, std::move(message)); }

// ---- numbers ---------------------------------------------------------------

enum class NumberForm { Ok, NotNumber, TooBig };

// Decimal or 0x hex, nothing else: no sign, no spaces, no suffix.
NumberForm parse_u64(std::string_view text, uint64_t& out) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
    base = 16;
  }
  if (text.empty() || text[0] == '+' || text[0] == '-') return NumberForm::NotNumber;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out, base);
  if (ptr != end) return NumberForm::NotNumber;
  if (ec == std::errc::result_out_of_range) return NumberForm::TooBig;
  if (ec != std::errc()) return NumberForm::NotNumber;
  return NumberForm::Ok;
}

bool is_number(std::string_view text) {
  uint64_t ignored = 0;
  return parse_u64(text, ignored) != NumberForm::NotNumber;
}

// `what` names the value in messages: "vlan value 5000 is out of range 0-4095".
Result<uint64_t> parse_number(std::string_view text, std::string_view what, uint64_t max) {
  uint64_t v = 0;
  NumberForm form = parse_u64(text, v);
  if (form == NumberForm::NotNumber) {
    return invalid(fmt::format("bad {} '{}': expected a number (decimal or 0x hex)", what, text));
  }
  if (form == NumberForm::TooBig || v > max) {
    return invalid(fmt::format("{} {} is out of range 0-{}", what, text, max));
  }
  return v;
}

std::string value_what(Field f) { return fmt::format("{} value", field_name(f)); }

// ---- MAC addresses ---------------------------------------------------------

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "02:00:5e:00:00:01" or "02-00-5E-00-00-01": six two-digit hex bytes, one
// separator throughout. The first byte lands in bits 47..40.
std::optional<uint64_t> parse_mac(std::string_view text) {
  if (text.size() != 17) return std::nullopt;
  const char sep = text[2];
  if (sep != ':' && sep != '-') return std::nullopt;
  uint64_t mac = 0;
  for (size_t byte = 0; byte < 6; ++byte) {
    const size_t at = byte * 3;
    if (byte > 0 && text[at - 1] != sep) return std::nullopt;
    const int hi = hex_digit(text[at]);
    const int lo = hex_digit(text[at + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    mac = (mac << 8) | static_cast<uint64_t>(hi << 4 | lo);
  }
  return mac;
}

std::string format_mac(uint64_t mac) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", (mac >> 40) & 0xff,
                     (mac >> 32) & 0xff, (mac >> 24) & 0xff, (mac >> 16) & 0xff, (mac >> 8) & 0xff,
                     mac & 0xff);
}

Error bad_mac(std::string_view text) {
  return invalid(
      fmt::format("bad MAC address '{}': expected six hex bytes like 02:00:00:00:00:01", text));
}

uint64_t mac_prefix_mask(unsigned length) {
  return length == 0 ? 0 : (kMacFull << (48 - length)) & kMacFull;
}

// The prefix length when `mask` is leading ones only.
std::optional<unsigned> mac_prefix_length(uint64_t mask) {
  const auto ones = static_cast<unsigned>(std::popcount(mask & kMacFull));
  if (mac_prefix_mask(ones) != (mask & kMacFull)) return std::nullopt;
  return ones;
}

bool all_digits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

struct MaskedMac {
  uint64_t mac = 0;
  uint64_t mask = kMacFull;
  bool has_mask = false;
};

// "MAC", "MAC/LEN" or "MAC/MASK".
Result<MaskedMac> parse_masked_mac(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string_view address = text.substr(0, slash);
  auto mac = parse_mac(address);
  if (!mac) return bad_mac(address);
  if (slash == std::string_view::npos) return MaskedMac{*mac, kMacFull, false};

  const std::string_view mask_text = text.substr(slash + 1);
  if (all_digits(mask_text)) {
    auto length = parse_number(mask_text, "prefix length", 48);
    if (!length) return std::move(length).error();
    return MaskedMac{*mac, mac_prefix_mask(static_cast<unsigned>(*length)), true};
  }
  if (auto mask = parse_mac(mask_text)) return MaskedMac{*mac, *mask, true};
  return invalid(fmt::format(
      "bad MAC mask '{}' in '{}': expected a prefix length 0-48 or a mask like ff:ff:ff:00:00:00",
      mask_text, text));
}

// ---- plain values, one per field -------------------------------------------

Result<uint64_t> parse_interface(std::string_view text, const IfaceResolver& resolve) {
  if (is_number(text)) return parse_number(text, "interface index", UINT32_MAX);
  if (!resolve) {
    return invalid(fmt::format(
        "interface name '{}' cannot be resolved here: give the interface index (a number)", text));
  }
  auto index = resolve(text);
  if (!index) return std::move(index).error();  // the resolver's own words
  return static_cast<uint64_t>(*index);
}

Result<uint64_t> parse_ethertype(std::string_view text) {
  if (is_number(text)) return parse_number(text, value_what(Field::EtherType), 0xffff);
  if (auto v = value_named(kEtherTypes, text)) return *v;
  return invalid(fmt::format("unknown ethertype '{}' (expected a number or one of: {})", text,
                             join_names(kEtherTypes)));
}

Result<uint64_t> parse_l2_flags(std::string_view text) {
  uint64_t bits = 0;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string_view item = text.substr(start, comma - start);
    if (is_number(item)) {
      auto v = parse_number(item, value_what(Field::L2Flags), field_max(Field::L2Flags));
      if (!v) return std::move(v).error();
      bits |= *v;
    } else if (auto v = value_named(kL2Flags, item)) {
      bits |= *v;
    } else {
      return invalid(fmt::format("unknown l2 flag '{}' (expected a number or one of: {})", item,
                                 join_names(kL2Flags)));
    }
    if (comma == std::string_view::npos) return bits;
    start = comma + 1;
  }
}

Result<uint64_t> parse_addr_type(std::string_view text) {
  if (auto v = value_named(kAddrTypes, text)) return *v;
  return invalid(
      fmt::format("unknown address type '{}' (expected one of: {})", text, join_names(kAddrTypes)));
}

// One value without mask or range.
Result<uint64_t> parse_plain_value(Field f, std::string_view text, const IfaceResolver& resolve) {
  switch (f) {
    case Field::Interface:
      return parse_interface(text, resolve);
    case Field::LocalMac:
    case Field::RemoteMac:
    case Field::InterfaceMac:
      if (auto mac = parse_mac(text)) return *mac;
      return bad_mac(text);
    case Field::EtherType:
      return parse_ethertype(text);
    case Field::L2Flags:
      return parse_l2_flags(text);
    case Field::LocalAddrType:
    case Field::RemoteAddrType:
      return parse_addr_type(text);
    case Field::Compartment:
    case Field::Vlan:
    case Field::InnerVlan:
    case Field::FrameLength:
      break;
  }
  return parse_number(text, value_what(f), field_max(f));
}

std::string format_plain_value(Field f, uint64_t v) {
  switch (f) {
    case Field::LocalMac:
    case Field::RemoteMac:
    case Field::InterfaceMac:
      return format_mac(v);
    case Field::EtherType:
      if (auto name = name_of_value(kEtherTypes, v)) return std::string(*name);
      return fmt::format("0x{:04x}", v);
    case Field::L2Flags:
      return l2_flags_to_string(static_cast<uint32_t>(v));
    case Field::LocalAddrType:
    case Field::RemoteAddrType:
      if (auto name = name_of_value(kAddrTypes, v)) return std::string(*name);
      break;
    case Field::Interface:
    case Field::Compartment:
    case Field::Vlan:
    case Field::InnerVlan:
    case Field::FrameLength:
      break;
  }
  return std::to_string(v);
}

// ---- ranges ----------------------------------------------------------------

struct Bounds {
  uint64_t lo = 0;
  uint64_t hi = 0;
};

std::string_view range_example(Field f) {
  if (field_is_mac(f)) return "02:00:00:00:00:00-02:00:00:00:00:ff";
  if (f == Field::EtherType) return "0x8100-0x88a8";
  return "100-200";
}

Result<Bounds> split_range_at(Field f, std::string_view text, size_t dash) {
  auto lo = parse_plain_value(f, text.substr(0, dash), nullptr);
  if (!lo) return std::move(lo).error();
  auto hi = parse_plain_value(f, text.substr(dash + 1), nullptr);
  if (!hi) return std::move(hi).error();
  return Bounds{*lo, *hi};
}

// "LO-HI". The dash is found by trying: MACs may be written with dashes and
// ethertype names contain them ("mpls-multicast"), so a split is right when
// both halves parse.
Result<Bounds> parse_range(Field f, std::string_view text) {
  std::vector<size_t> dashes;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '-') dashes.push_back(i);
  }
  if (dashes.size() == 1) return split_range_at(f, text, dashes[0]);
  if (field_is_mac(f) && text.size() == 35 && text[17] == '-') return split_range_at(f, text, 17);
  if (!field_is_mac(f)) {
    for (size_t dash : dashes) {
      if (auto bounds = split_range_at(f, text, dash)) return bounds;
    }
  }
  return invalid(fmt::format("bad range '{}' on {}: expected LOW-HIGH like {}", text, field_name(f),
                             range_example(f)));
}

// ---- condition checks ------------------------------------------------------

bool is_flag_match(Match m) {
  return m == Match::FlagsAllSet || m == Match::FlagsAnySet || m == Match::FlagsNoneSet;
}

bool is_equality(Match m) { return m == Match::Equal || m == Match::NotEqual; }

bool takes_mac_mask(Match m) { return is_equality(m) || m == Match::Prefix; }

// Which match types make sense for which fields, checked before the value so
// that "vlan all-set 5" is told about the match type, not about the 5.
Status check_match_applies(Field f, Match m) {
  if (field_name(f) == "?") return invalid(fmt::format("unknown field {}", static_cast<int>(f)));
  if (match_name(m) == "?")
    return invalid(fmt::format("unknown match type {}", static_cast<int>(m)));
  if (is_flag_match(m) && f != Field::L2Flags) {
    return invalid(fmt::format("match type {} applies only to l2-flags", match_name(m)));
  }
  if (m == Match::Prefix && !field_is_mac(f)) {
    return invalid(
        "match type prefix applies only to MAC fields (local-mac, remote-mac, interface-mac)");
  }
  if (f == Field::L2Flags && !is_equality(m) && !is_flag_match(m)) {
    return invalid(fmt::format(
        "match type {} does not apply to l2-flags (expected eq, ne, all-set, any-set or none-set)",
        match_name(m)));
  }
  const bool names_only =
      f == Field::Interface || f == Field::LocalAddrType || f == Field::RemoteAddrType;
  if (names_only && !is_equality(m)) {
    return invalid(fmt::format("match type {} does not apply to {} (expected eq or ne)",
                               match_name(m), field_name(f)));
  }
  return Ok{};
}

bool can_never_match(const Condition& c) {
  const uint64_t max = field_max(c.field);
  switch (c.match) {
    case Match::Greater:
      return c.value >= max;
    case Match::Less:
      return c.value == 0;
    case Match::FlagsAnySet:
      return c.value == 0;
    case Match::NotEqual:
      // "ne X/0" excludes every frame.
      return field_is_mac(c.field) && (c.mask & kMacFull) == 0;
    default:
      return false;
  }
}

// The value side of a condition. `shown` is the value as the user wrote it
// (or as formatted, for filters built in code), for the messages.
Status check_condition_value(const Condition& c, std::string_view shown) {
  const std::string_view field = field_name(c.field);
  const uint64_t max = field_max(c.field);
  const bool ranged = c.match == Match::Range;
  if (c.value > max || (ranged && c.value_hi > max)) {
    return invalid(fmt::format("{} value {} is out of range 0-{}", field, shown, max));
  }
  if (ranged && c.value > c.value_hi) {
    return invalid(fmt::format("range {} on {} is empty (low is above high)", shown, field));
  }
  if (field_is_mac(c.field)) {
    const uint64_t mask = c.mask & kMacFull;
    if (mask != kMacFull && !takes_mac_mask(c.match)) {
      return invalid(fmt::format("a MAC mask applies only to eq, ne and prefix, not to {} on {}",
                                 match_name(c.match), field));
    }
    if (c.match == Match::Prefix && !mac_prefix_length(mask)) {
      return invalid(fmt::format(
          "mask in '{}' on {} is not a prefix (use eq with a mask to match arbitrary bits)", shown,
          field));
    }
  } else if ((c.mask & max) != max) {
    return invalid(fmt::format("a mask applies only to MAC fields, not to {}", field));
  }
  if (can_never_match(c)) {
    return invalid(
        fmt::format("condition '{} {} {}' can never match", field, match_name(c.match), shown));
  }
  return Ok{};
}

// Same-field conditions are OR-ed; two overlapping ranges there are almost
// always a typo, and they would also double the compiled entries.
Status check_ranges_disjoint(const std::vector<Condition>& conditions) {
  for (size_t i = 0; i < conditions.size(); ++i) {
    const Condition& a = conditions[i];
    if (a.match != Match::Range) continue;
    for (size_t j = i + 1; j < conditions.size(); ++j) {
      const Condition& b = conditions[j];
      if (b.match != Match::Range || b.field != a.field) continue;
      if (a.value <= b.value_hi && b.value <= a.value_hi) {
        return invalid(fmt::format("ranges {} and {} on {} overlap", format_condition_value(a),
                                   format_condition_value(b), field_name(a.field)));
      }
    }
  }
  return Ok{};
}

// ---- `filter add` keywords -------------------------------------------------

enum class Keyword { Name, Layer, Sublayer, Weight, Action, Callout, Flags, Context, Description };

struct KeywordInfo {
  Keyword keyword;
  std::string_view word;
  std::string_view usage;
};

constexpr KeywordInfo kKeywords[] = {
    {Keyword::Name, "name", "name NAME"},
    {Keyword::Layer, "layer", "layer inbound|outbound"},
    {Keyword::Sublayer, "sublayer", "sublayer NAME"},
    {Keyword::Weight, "weight", "weight N"},
    {Keyword::Action, "action",
     "action permit|block|callout-terminating|callout-inspection|callout-unknown"},
    {Keyword::Callout, "callout", "callout KEY"},
    {Keyword::Flags, "flags", "flags FLAG[,FLAG...]"},
    {Keyword::Context, "context", "context N"},
    {Keyword::Description, "description", "description TEXT"},
};

const KeywordInfo* find_keyword(std::string_view word) {
  for (const KeywordInfo& k : kKeywords) {
    if (k.word == word) return &k;
  }
  return nullptr;
}

std::string all_keywords() {
  std::string out;
  for (const KeywordInfo& k : kKeywords) {
    if (!out.empty()) out += ", ";
    out += k.word;
  }
  return out;
}

Status set_keyword(Filter& f, Keyword keyword, const std::string& value) {
  switch (keyword) {
    case Keyword::Name:
      if (value.empty()) return invalid("'name' needs a non-empty value");
      f.name = value;
      return Ok{};
    case Keyword::Layer:
      if (auto layer = layer_from_name(value)) {
        f.layer = *layer;
        return Ok{};
      }
      return invalid(fmt::format("unknown layer '{}' (expected inbound or outbound)", value));
    case Keyword::Sublayer:
      if (value.empty()) return invalid("'sublayer' needs a non-empty name");
      f.sublayer = value;
      return Ok{};
    case Keyword::Weight: {
      auto weight = parse_number(value, "weight", std::numeric_limits<uint64_t>::max());
      if (!weight) return std::move(weight).error();
      f.weight = *weight;
      return Ok{};
    }
    case Keyword::Action:
      if (auto action = action_from_name(value)) {
        f.action = *action;
        return Ok{};
      }
      return invalid(
          fmt::format("unknown action '{}' (expected one of: {})", value, all_action_names(", ")));
    case Keyword::Callout:
      if (value.empty()) return invalid("'callout' needs a non-empty key");
      f.callout = value;
      return Ok{};
    case Keyword::Flags: {
      auto flags = flags_from_string(value);
      if (!flags) return std::move(flags).error();
      f.flags = *flags;
      return Ok{};
    }
    case Keyword::Context: {
      auto context = parse_number(value, "context", std::numeric_limits<uint64_t>::max());
      if (!context) return std::move(context).error();
      f.context = *context;
      return Ok{};
    }
    case Keyword::Description:
      f.description = value;
      return Ok{};
  }
  return Ok{};
}

// A word where a keyword or field belongs. "foo eq 5" was meant as a
// condition, so it is reported as an unknown field; anything else is just
// unexpected.
Error unexpected_word(const std::vector<std::string>& words, size_t i) {
  if (i + 1 < words.size() && match_from_name(words[i + 1])) {
    return invalid(
        fmt::format("unknown field '{}' (expected one of: {})", words[i], all_field_names()));
  }
  return invalid(
      fmt::format("unexpected word '{}' (expected a condition FIELD MATCH VALUE or one of: {})",
                  words[i], all_keywords()));
}

// ---- quoting ---------------------------------------------------------------

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

bool needs_quotes(std::string_view word) {
  if (word.empty()) return true;
  for (char c : word) {
    if (is_space(c) || c == '"' || c == '#') return true;
  }
  return false;
}

std::string quote(std::string_view word) {
  std::string out = "\"";
  for (char c : word) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  return out + "\"";
}

char unescape(char c) {
  switch (c) {
    case 'n':
      return '\n';
    case 't':
      return '\t';
    case 'r':
      return '\r';
    default:
      return c;  // \" \\ and anything else stand for themselves
  }
}

// ---- commands --------------------------------------------------------------

using Words = std::vector<std::string>;

Error extra_word(const Words& words, size_t i, std::string_view after) {
  return invalid(fmt::format("unexpected word '{}' after {}", words[i], after));
}

// A filter reference becomes an id in decimal (what FilterSet looks up) or a
// name.
Result<std::string> filter_id_ref(std::string_view text) {
  auto id = parse_number(text, "filter id", std::numeric_limits<uint64_t>::max());
  if (!id) return std::move(id).error();
  if (*id == 0) return invalid("filter id 0 is not valid (ids start at 1)");
  return std::to_string(*id);
}

Result<Command> parse_filter_delete(const Words& words) {
  // words: "filter" "delete" ...
  Command c;
  c.kind = Command::Kind::DeleteFilter;
  const size_t n = words.size();
  if (n < 3) return invalid("'filter delete' needs a filter id or name");
  const std::string& first = words[2];
  if (first == "id" || first == "name") {
    if (n < 4) return invalid(fmt::format("'filter delete {}' needs a value", first));
    if (n > 4) return extra_word(words, 4, "filter delete");
    if (first == "id") {
      auto ref = filter_id_ref(words[3]);
      if (!ref) return std::move(ref).error();
      c.ref = *ref;
    } else {
      if (words[3].empty() || is_number(words[3])) {
        return invalid(fmt::format(
            "bad filter name '{}': names are not empty and not numbers (use 'filter delete id N')",
            words[3]));
      }
      c.ref = words[3];
    }
    return c;
  }
  if (n > 3) return extra_word(words, 3, "filter delete");
  if (first.empty()) return invalid("'filter delete' needs a filter id or name");
  if (is_number(first)) {
    auto ref = filter_id_ref(first);
    if (!ref) return std::move(ref).error();
    c.ref = *ref;
  } else {
    c.ref = first;
  }
  return c;
}

Result<Command> parse_filter_command(const Words& words, const IfaceResolver& resolve) {
  if (words.size() < 2)
    return invalid(
        "'filter' needs add or delete (expected filter add ... or filter delete ID|NAME)");
  if (words[1] == "add") {
    auto f = parse_filter(Words(words.begin() + 2, words.end()), resolve);
    if (!f) return std::move(f).error();
    Command c;
    c.kind = Command::Kind::AddFilter;
    c.filter = std::move(*f);
    return c;
  }
  if (words[1] == "delete") return parse_filter_delete(words);
  return invalid(fmt::format("unknown filter command '{}' (expected add or delete)", words[1]));
}

Result<Command> parse_sublayer_command(const Words& words) {
  if (words.size() < 2)
    return invalid(
        "'sublayer' needs add or delete (expected sublayer add NAME weight N or sublayer delete "
        "NAME)");
  const std::string& verb = words[1];
  if (verb != "add" && verb != "delete") {
    return invalid(fmt::format("unknown sublayer command '{}' (expected add or delete)", verb));
  }
  if (words.size() < 3 || words[2].empty()) {
    return invalid(fmt::format("'sublayer {}' needs a sublayer name", verb));
  }
  Command c;
  if (verb == "delete") {
    if (words.size() > 3) return extra_word(words, 3, "sublayer delete NAME");
    c.kind = Command::Kind::DeleteSublayer;
    c.ref = words[2];
    return c;
  }
  c.kind = Command::Kind::AddSublayer;
  c.sublayer.name = words[2];
  if (words.size() < 4) {
    return invalid(fmt::format("missing 'weight' (expected sublayer add {} weight N)", words[2]));
  }
  if (words[3] != "weight") return extra_word(words, 3, "sublayer add NAME");
  if (words.size() < 5) return invalid("'weight' needs a value (expected weight N, 0-65535)");
  if (words.size() > 5) return extra_word(words, 5, "sublayer add NAME weight N");
  auto weight = parse_number(words[4], "sublayer weight", 0xffff);
  if (!weight) return std::move(weight).error();
  c.sublayer.weight = static_cast<uint16_t>(*weight);
  return c;
}

Result<Command> parse_default_command(const Words& words) {
  if (words.size() < 3) {
    return invalid(
        "'default' needs a layer and an action (expected default inbound|outbound permit|block)");
  }
  if (words.size() > 3) return extra_word(words, 3, "default LAYER ACTION");
  Command c;
  c.kind = Command::Kind::SetDefault;
  auto layer = layer_from_name(words[1]);
  if (!layer) {
    return invalid(fmt::format("unknown layer '{}' (expected inbound or outbound)", words[1]));
  }
  c.layer = *layer;
  auto action = action_from_name(words[2]);
  if (!action || is_callout(*action)) {
    return invalid(fmt::format("bad default action '{}' (expected permit or block)", words[2]));
  }
  c.default_action = *action;
  return c;
}

}  // namespace

// ---- public API ------------------------------------------------------------

Result<std::vector<std::string>> tokenize(std::string_view line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // true also for "" so that it yields an empty word
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '"') {
      in_word = true;
      bool closed = false;
      for (++i; i < line.size(); ++i) {
        if (line[i] == '"') {
          closed = true;
          break;
        }
        if (line[i] == '\\' && i + 1 < line.size()) {
          word += unescape(line[++i]);
        } else {
          word += line[i];
        }
      }
      if (!closed) return invalid(fmt::format("missing closing quote (\") in: {}", line));
      continue;
    }
    if (c == '#') break;
    if (is_space(c)) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    word += c;
    in_word = true;
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

Result<Condition> parse_condition(Field field, Match match, std::string_view value,
                                  const IfaceResolver& resolve) {
  XFP_TRY(check_match_applies(field, match));
  Condition c;
  c.field = field;
  c.match = match;
  c.mask = field_is_mac(field) ? kMacFull : ~0ull;
  if (match == Match::Range) {
    auto bounds = parse_range(field, value);
    if (!bounds) return std::move(bounds).error();
    c.value = bounds->lo;
    c.value_hi = bounds->hi;
  } else if (field_is_mac(field)) {
    auto mac = parse_masked_mac(value);
    if (!mac) return std::move(mac).error();
    if (match == Match::Prefix && !mac->has_mask) {
      return invalid(
          fmt::format("prefix on {} needs /LEN or /MASK, e.g. 02:00:5e:00:00:00/24 (got '{}')",
                      field_name(field), value));
    }
    c.mask = mac->mask;
    c.value = mac->mac & mac->mask;  // one spelling per meaning
  } else {
    auto v = parse_plain_value(field, value, resolve);
    if (!v) return std::move(v).error();
    c.value = *v;
  }
  XFP_TRY(check_condition_value(c, value));
  return c;
}

std::string format_condition_value(const Condition& c) {
  if (c.match == Match::Range) {
    return format_plain_value(c.field, c.value) + "-" + format_plain_value(c.field, c.value_hi);
  }
  if (!field_is_mac(c.field)) return format_plain_value(c.field, c.value);

  const uint64_t mask = c.mask & kMacFull;
  std::string text = format_mac(c.value & mask);
  // prefix always shows its length: the parser requires one.
  if (mask == kMacFull && c.match != Match::Prefix) return text;
  if (auto length = mac_prefix_length(mask)) return text + "/" + std::to_string(*length);
  return text + "/" + format_mac(mask);
}

std::string flags_to_string(uint32_t filter_flags) {
  std::string out;
  uint32_t rest = filter_flags;
  for (const NamedValue& nv : kFilterFlags) {
    if (!(filter_flags & nv.value)) continue;
    if (!out.empty()) out += ",";
    out += nv.name;
    rest &= ~static_cast<uint32_t>(nv.value);
  }
  if (rest) out += fmt::format("{}0x{:x}", out.empty() ? "" : ",", rest);
  return out;
}

std::string l2_flags_to_string(uint32_t l2_flags) {
  if (l2_flags == 0) return "0";
  std::string out;
  uint32_t rest = l2_flags;
  for (const NamedValue& nv : kL2Flags) {
    if (!(l2_flags & nv.value)) continue;
    if (!out.empty()) out += ",";
    out += nv.name;
    rest &= ~static_cast<uint32_t>(nv.value);
  }
  if (rest) out += fmt::format("{}0x{:x}", out.empty() ? "" : ",", rest);
  return out;
}

Result<uint32_t> flags_from_string(std::string_view text) {
  uint32_t flags = 0;
  if (text.empty()) return flags;  // the inverse of flags_to_string(0)
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string_view item = text.substr(start, comma - start);
    auto bit = value_named(kFilterFlags, item);
    if (!bit) {
      return invalid(
          fmt::format("unknown flag '{}' (expected one of: {})", item, join_names(kFilterFlags)));
    }
    flags |= static_cast<uint32_t>(*bit);
    if (comma == std::string_view::npos) return flags;
    start = comma + 1;
  }
}

Status check_filter(const Filter& f) {
  if (!f.name.empty() && is_number(f.name)) {
    return invalid(
        fmt::format("filter name '{}' must not be a number (numbers refer to filter ids)", f.name));
  }
  if (layer_name(f.layer) == "?") {
    return invalid(fmt::format("unknown layer {}", static_cast<int>(f.layer)));
  }
  if (f.sublayer.empty()) return invalid("sublayer name must not be empty");
  if (action_name(f.action) == "?") {
    return invalid(fmt::format("unknown action {}", static_cast<int>(f.action)));
  }
  if (is_callout(f.action) && f.callout.empty()) {
    return invalid(fmt::format("action {} needs 'callout KEY'", action_name(f.action)));
  }
  if (!is_callout(f.action) && !f.callout.empty()) {
    return invalid(fmt::format(
        "'callout {}' applies only to callout actions (callout-terminating, callout-inspection, "
        "callout-unknown), not to action {}",
        f.callout, action_name(f.action)));
  }
  if (f.flags & ~static_cast<uint32_t>(XFP_FILTER_KNOWN_FLAGS)) {
    return invalid(fmt::format("unknown filter flag bits 0x{:x}",
                               f.flags & ~static_cast<uint32_t>(XFP_FILTER_KNOWN_FLAGS)));
  }
  if ((f.flags & XFP_FILTER_PERMIT_IF_CALLOUT_UNREGISTERED) && !is_callout(f.action)) {
    return invalid(fmt::format(
        "flag permit-if-callout-unregistered applies only to callout actions, not to action {}",
        action_name(f.action)));
  }
  for (const Condition& c : f.conditions) {
    XFP_TRY(check_match_applies(c.field, c.match));
    XFP_TRY(check_condition_value(c, format_condition_value(c)));
  }
  return check_ranges_disjoint(f.conditions);
}

Result<Filter> parse_filter(const std::vector<std::string>& words, const IfaceResolver& resolve) {
  Filter f;
  std::vector<Keyword> seen;
  size_t i = 0;
  while (i < words.size()) {
    const std::string& word = words[i];
    if (auto field = field_from_name(word)) {
      if (i + 2 >= words.size()) {
        return invalid(fmt::format("'{}' needs a match type and a value", word));
      }
      auto match = match_from_name(words[i + 1]);
      if (!match) {
        return invalid(fmt::format("unknown match type '{}' for {} (expected one of: {})",
                                   words[i + 1], word, all_match_names()));
      }
      auto c = parse_condition(*field, *match, words[i + 2], resolve);
      if (!c) return std::move(c).error();
      f.conditions.push_back(*c);
      i += 3;
      continue;
    }
    const KeywordInfo* keyword = find_keyword(word);
    if (!keyword) return unexpected_word(words, i);
    if (std::find(seen.begin(), seen.end(), keyword->keyword) != seen.end()) {
      return invalid(fmt::format("'{}' given twice", word));
    }
    if (i + 1 >= words.size()) {
      return invalid(fmt::format("'{}' needs a value (expected {})", word, keyword->usage));
    }
    XFP_TRY(set_keyword(f, keyword->keyword, words[i + 1]));
    seen.push_back(keyword->keyword);
    i += 2;
  }
  if (std::find(seen.begin(), seen.end(), Keyword::Action) == seen.end()) {
    return invalid(fmt::format("missing 'action' (expected action {})", all_action_names("|")));
  }
  XFP_TRY(check_filter(f));
  return f;
}

std::vector<std::string> format_filter_words(const Filter& f) {
  std::vector<std::string> words;
  auto add = [&words](std::string_view keyword, std::string value) {
    words.emplace_back(keyword);
    words.push_back(std::move(value));
  };
  if (!f.name.empty()) add("name", f.name);
  add("layer", std::string(layer_name(f.layer)));
  add("sublayer", f.sublayer);
  add("weight", std::to_string(f.weight));
  for (const Condition& c : f.conditions) {
    words.emplace_back(field_name(c.field));
    words.emplace_back(match_name(c.match));
    words.push_back(format_condition_value(c));
  }
  add("action", std::string(action_name(f.action)));
  if (!f.callout.empty()) add("callout", f.callout);
  if (f.flags) add("flags", flags_to_string(f.flags));
  if (f.context) add("context", std::to_string(f.context));
  if (!f.description.empty()) add("description", f.description);
  return words;
}

std::string format_filter_line(const Filter& f) {
  const std::vector<std::string> words = format_filter_words(f);
  std::string line = "filter add";
  for (size_t i = 0; i < words.size(); ++i) {
    // The description is always quoted so that it reads as text.
    const bool is_description = !f.description.empty() && i + 1 == words.size();
    line += ' ';
    line += is_description || needs_quotes(words[i]) ? quote(words[i]) : words[i];
  }
  return line;
}

Result<Command> parse_command(const std::vector<std::string>& words, const IfaceResolver& resolve) {
  if (words.empty()) return invalid("empty command");
  const std::string& verb = words[0];
  if (verb == "filter") return parse_filter_command(words, resolve);
  if (verb == "sublayer") return parse_sublayer_command(words);
  if (verb == "default") return parse_default_command(words);
  if (verb == "flush") {
    if (words.size() > 1) return extra_word(words, 1, "flush");
    Command c;
    c.kind = Command::Kind::Flush;
    return c;
  }
  return invalid(
      fmt::format("unknown command '{}' (expected filter, sublayer, default or flush)", verb));
}

Result<std::vector<Command>> parse_batch(std::string_view text, std::string_view source_name,
                                         const IfaceResolver& resolve) {
  std::vector<Command> commands;
  size_t line_number = 0;
  size_t start = 0;
  // A UTF-8 byte-order mark (some editors write one) is not a word.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") start = 3;
  while (start <= text.size()) {
    const size_t newline = text.find('\n', start);
    std::string_view line = text.substr(start, newline - start);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    auto where = [&](Error e) {
      return make_error(e.code, fmt::format("{}:{}: {}", source_name, line_number, e.message));
    };
    auto words = tokenize(line);
    if (!words) return where(std::move(words).error());
    if (!words->empty()) {
      auto command = parse_command(*words, resolve);
      if (!command) return where(std::move(command).error());
      command->origin = fmt::format("{}:{}", source_name, line_number);
      commands.push_back(std::move(*command));
    }
    if (newline == std::string_view::npos) break;
    start = newline + 1;
  }
  return commands;
}

}  // namespace xfp
