// The filter model: what a user writes (layer, sublayer, weight, conditions,
// action, flags), independent of how it is compiled into the kernel.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xfp/abi.h"

namespace xfp {

// Every classifiable field (FWPS_FIELD_*_MAC_FRAME_ETHERNET_*).
enum class Field : uint8_t {
  Interface,       // ifindex; written as an interface name or number
  Compartment,     // network namespace inode
  LocalMac,
  RemoteMac,
  InterfaceMac,
  EtherType,
  Vlan,            // outer tag's VID
  InnerVlan,       // second tag's VID
  FrameLength,
  L2Flags,         // enum xfp_l2_flag bits
  LocalAddrType,   // enum xfp_addr_type
  RemoteAddrType,
};
inline constexpr int kFieldCount = 12;

// FWP_MATCH_TYPE.
enum class Match : uint8_t {
  Equal,
  NotEqual,
  Greater,
  Less,
  GreaterOrEqual,
  LessOrEqual,
  Range,         // value .. value_hi inclusive
  FlagsAllSet,
  FlagsAnySet,
  FlagsNoneSet,
  Prefix,        // value under mask (MACs: an OUI is 02:00:5e:00:00:00/24)
};

// One condition. Values are plain integers: a MAC is its 48 bits with the
// first byte on the wire in bits 47..40.
struct Condition {
  Field field = Field::EtherType;
  Match match = Match::Equal;
  uint64_t value = 0;
  uint64_t value_hi = 0;  // Range only
  uint64_t mask = ~0ull;  // Equal/NotEqual/Prefix on MACs; full width otherwise

  bool operator==(const Condition&) const = default;
};

enum class Layer : uint8_t { Inbound = XFP_LAYER_INBOUND, Outbound = XFP_LAYER_OUTBOUND };

enum class Action : uint8_t {
  Permit = XFP_ACTION_PERMIT,
  Block = XFP_ACTION_BLOCK,
  CalloutTerminating = XFP_ACTION_CALLOUT_TERMINATING,
  CalloutInspection = XFP_ACTION_CALLOUT_INSPECTION,
  CalloutUnknown = XFP_ACTION_CALLOUT_UNKNOWN,
};

inline bool is_callout(Action a) {
  return a == Action::CalloutTerminating || a == Action::CalloutInspection ||
         a == Action::CalloutUnknown;
}

inline constexpr const char* kDefaultSublayer = "default";

struct Filter {
  uint64_t id = 0;           // assigned when added (> 0); 0 = not yet
  std::string name;          // optional, unique when set
  std::string description;   // free text
  Layer layer = Layer::Inbound;
  std::string sublayer = kDefaultSublayer;
  uint64_t weight = 0;       // higher first within the sublayer
  std::vector<Condition> conditions;  // different fields AND, same field OR
  Action action = Action::Block;
  std::string callout;       // callout key, required iff is_callout(action)
  uint32_t flags = 0;        // enum xfp_filter_flag
  uint64_t context = 0;      // opaque, handed to callouts

  bool operator==(const Filter&) const = default;
};

// WFP sublayers: weight 0..65535, higher evaluated first.
struct Sublayer {
  std::string name;
  uint16_t weight = 0;
  bool operator==(const Sublayer&) const = default;
};

// ---- names ---------------------------------------------------------------
// One table of names for fields, match types, actions, flags and address
// types serves the parser, the formatter, JSON and --help.
std::string_view field_name(Field f);
std::string all_field_names();  // "interface, compartment, ...", for error messages
std::optional<Field> field_from_name(std::string_view s);
std::string_view match_name(Match m);
std::optional<Match> match_from_name(std::string_view s);
std::string_view action_name(Action a);
std::optional<Action> action_from_name(std::string_view s);
std::string_view layer_name(Layer l);
std::optional<Layer> layer_from_name(std::string_view s);

// Width in bits of a field's value (MACs 48, EtherType 16, VLAN 12, ...).
unsigned field_bits(Field f);
inline uint64_t field_max(Field f) { return field_bits(f) >= 64 ? ~0ull : (1ull << field_bits(f)) - 1; }
bool field_is_mac(Field f);

// A field's value in a frame's xfp_fields as the compiled tables compare it:
// MACs as 48-bit integers (first wire byte in bits 47..40), every value cut
// to the field's width. set_field_value() is the inverse (host order for
// integers, wire order for MACs); the compiler builds its keys with it.
uint64_t field_value(Field field, const xfp_fields& fields);
void set_field_value(xfp_fields& fields, Field field, uint64_t value);

}  // namespace xfp
