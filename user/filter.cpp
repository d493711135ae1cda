// Name tables of the filter model. The parser, the formatter, JSON and the
// CLI's help all read these, so a name is spelled in exactly one place.
#include "xfp/filter.hpp"

#include <array>

namespace xfp {
namespace {

struct FieldInfo {
  Field field;
  std::string_view name;
  unsigned bits;  // width of the value in xfp_fields
  bool mac;
};

// Indexed by the enum value; the static_assert below keeps it complete.
constexpr std::array<FieldInfo, kFieldCount> kFields = {{
    {Field::Interface, "interface", 32, false},
    {Field::Compartment, "compartment", 32, false},
    {Field::LocalMac, "local-mac", 48, true},
    {Field::RemoteMac, "remote-mac", 48, true},
    {Field::InterfaceMac, "interface-mac", 48, true},
    {Field::EtherType, "ethertype", 16, false},
    {Field::Vlan, "vlan", 12, false},
    {Field::InnerVlan, "inner-vlan", 12, false},
    {Field::FrameLength, "frame-length", 16, false},
    {Field::L2Flags, "l2-flags", 16, false},
    {Field::LocalAddrType, "local-addr-type", 2, false},
    {Field::RemoteAddrType, "remote-addr-type", 2, false},
}};

constexpr bool fields_in_enum_order() {
  for (size_t i = 0; i < kFields.size(); ++i) {
    if (static_cast<size_t>(kFields[i].field) != i) return false;
  }
  return true;
}
static_assert(fields_in_enum_order(), "kFields must follow the order of enum Field");

struct MatchInfo {
  Match match;
  std::string_view word;    // canonical, used for output
  std::string_view symbol;  // accepted on input ("" when there is none)
};

constexpr std::array<MatchInfo, 11> kMatches = {{
    {Match::Equal, "eq", "=="},
    {Match::NotEqual, "ne", "!="},
    {Match::Greater, "gt", ">"},
    {Match::Less, "lt", "<"},
    {Match::GreaterOrEqual, "ge", ">="},
    {Match::LessOrEqual, "le", "<="},
    {Match::Range, "range", ""},
    {Match::FlagsAllSet, "all-set", ""},
    {Match::FlagsAnySet, "any-set", ""},
    {Match::FlagsNoneSet, "none-set", ""},
    {Match::Prefix, "prefix", ""},
}};

struct ActionInfo {
  Action action;
  std::string_view name;
};

constexpr std::array<ActionInfo, 5> kActions = {{
    {Action::Permit, "permit"},
    {Action::Block, "block"},
    {Action::CalloutTerminating, "callout-terminating"},
    {Action::CalloutInspection, "callout-inspection"},
    {Action::CalloutUnknown, "callout-unknown"},
}};

const FieldInfo* field_info(Field f) {
  auto i = static_cast<size_t>(f);
  return i < kFields.size() ? &kFields[i] : nullptr;
}

}  // namespace

std::string_view field_name(Field f) {
  const FieldInfo* info = field_info(f);
  return info ? info->name : "?";
}

std::optional<Field> field_from_name(std::string_view s) {
  for (const FieldInfo& info : kFields) {
    if (info.name == s) return info.field;
  }
  return std::nullopt;
}

std::string_view match_name(Match m) {
  for (const MatchInfo& info : kMatches) {
    if (info.match == m) return info.word;
  }
  return "?";
}

std::optional<Match> match_from_name(std::string_view s) {
  if (s.empty()) return std::nullopt;
  for (const MatchInfo& info : kMatches) {
    if (info.word == s || info.symbol == s) return info.match;
  }
  return std::nullopt;
}

std::string_view action_name(Action a) {
  for (const ActionInfo& info : kActions) {
    if (info.action == a) return info.name;
  }
  return "?";
}

std::optional<Action> action_from_name(std::string_view s) {
  for (const ActionInfo& info : kActions) {
    if (info.name == s) return info.action;
  }
  return std::nullopt;
}

std::string_view layer_name(Layer l) {
  switch (l) {
    case Layer::Inbound:
      return "inbound";
    case Layer::Outbound:
      return "outbound";
  }
  return "?";
}

std::optional<Layer> layer_from_name(std::string_view s) {
  if (s == "inbound") return Layer::Inbound;
  if (s == "outbound") return Layer::Outbound;
  return std::nullopt;
}

unsigned field_bits(Field f) {
  const FieldInfo* info = field_info(f);
  return info ? info->bits : 64;
}

bool field_is_mac(Field f) {
  const FieldInfo* info = field_info(f);
  return info && info->mac;
}

std::string all_field_names() {
  std::string out;
  for (int i = 0; i < kFieldCount; ++i) {
    if (i) out += ", ";
    out += field_name(static_cast<Field>(i));
  }
  return out;
}

namespace {
uint64_t mac_of(const uint8_t* m) {
  uint64_t v = 0;
  for (int i = 0; i < 6; ++i) v = v << 8 | m[i];
  return v;
}
}  // namespace

// ---- field values in xfp_fields ---------------------------------------------

uint64_t field_value(Field field, const xfp_fields& f) {
  uint64_t v = 0;
  switch (field) {
    case Field::Interface: v = f.ifindex; break;
    case Field::Compartment: v = f.compartment; break;
    case Field::LocalMac: v = mac_of(f.local_mac); break;
    case Field::RemoteMac: v = mac_of(f.remote_mac); break;
    case Field::InterfaceMac: v = mac_of(f.iface_mac); break;
    case Field::EtherType: v = f.ethertype; break;
    case Field::Vlan: v = f.vlan; break;
    case Field::InnerVlan: v = f.inner_vlan; break;
    case Field::FrameLength: v = f.frame_len; break;
    case Field::L2Flags: v = f.l2_flags; break;
    case Field::LocalAddrType: v = f.local_addr_type; break;
    case Field::RemoteAddrType: v = f.remote_addr_type; break;
  }
  // The kernel compares under masks no wider than the field (a VLAN's 12
  // bits of its u16), so bits above the width never take part.
  return v & field_max(field);
}

void set_field_value(xfp_fields& k, Field f, uint64_t v) {
  auto put_mac = [](uint8_t* dst, uint64_t m) {
    for (int i = 0; i < 6; ++i) dst[i] = static_cast<uint8_t>(m >> (8 * (5 - i)));
  };
  switch (f) {
    case Field::Interface: k.ifindex = static_cast<uint32_t>(v); break;
    case Field::Compartment: k.compartment = static_cast<uint32_t>(v); break;
    case Field::LocalMac: put_mac(k.local_mac, v); break;
    case Field::RemoteMac: put_mac(k.remote_mac, v); break;
    case Field::InterfaceMac: put_mac(k.iface_mac, v); break;
    case Field::EtherType: k.ethertype = static_cast<uint16_t>(v); break;
    case Field::Vlan: k.vlan = static_cast<uint16_t>(v); break;
    case Field::InnerVlan: k.inner_vlan = static_cast<uint16_t>(v); break;
    case Field::FrameLength: k.frame_len = static_cast<uint16_t>(v); break;
    case Field::L2Flags: k.l2_flags = static_cast<uint16_t>(v); break;
    case Field::LocalAddrType: k.local_addr_type = static_cast<uint8_t>(v); break;
    case Field::RemoteAddrType: k.remote_addr_type = static_cast<uint8_t>(v); break;
  }
}

}  // namespace xfp
