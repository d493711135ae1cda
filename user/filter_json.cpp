// JSON forms of filters, sublayers and commands. Condition values travel in
// the text form of the filter language, so the JSON reader and the text
// parser accept exactly the same values and share their error messages.
//
// Reading never throws: every member is type-checked before it is read, and
// unknown keys are refused so that a misspelt key is not silently dropped.
#include "xfp/filter_json.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>

namespace xfp {
namespace {

using json = nlohmann::json;
using Keys = std::initializer_list<std::string_view>;

constexpr std::string_view kFilterWhat = "filter JSON";
constexpr std::string_view kSublayerWhat = "sublayer JSON";
constexpr std::string_view kCommandWhat = "command JSON";

Error json_error(std::string_view what, std::string_view message) {
  return make_error(EINVAL, fmt::format("{}: {}", what, message));
}

std::string join(Keys keys) {
  std::string out;
  for (std::string_view k : keys) {
    if (!out.empty()) out += ", ";
    out += k;
  }
  return out;
}

Status check_object(const json& j, std::string_view what, Keys allowed) {
  if (!j.is_object())
    return json_error(what, fmt::format("expected an object, got {}", j.type_name()));
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
      return json_error(
          what, fmt::format("unknown key '{}' (expected one of: {})", it.key(), join(allowed)));
    }
  }
  return Ok{};
}

const json* member(const json& j, std::string_view key) {
  auto it = j.find(std::string(key));
  return it == j.end() ? nullptr : &*it;
}

Result<std::string> read_string(const json& j, std::string_view key, std::string_view what,
                                std::string fallback) {
  const json* m = member(j, key);
  if (!m) return fallback;
  if (!m->is_string()) return json_error(what, fmt::format("'{}' must be a string", key));
  return m->get<std::string>();
}

Result<std::string> require_string(const json& j, std::string_view key, std::string_view what) {
  if (!member(j, key)) return json_error(what, fmt::format("missing '{}'", key));
  return read_string(j, key, what, "");
}

Result<uint64_t> read_u64(const json& j, std::string_view key, std::string_view what, uint64_t max,
                          uint64_t fallback) {
  const json* m = member(j, key);
  if (!m) return fallback;
  uint64_t v = 0;
  if (m->is_number_unsigned()) {
    v = m->get<uint64_t>();
  } else if (m->is_number_integer() && m->get<int64_t>() >= 0) {
    v = static_cast<uint64_t>(m->get<int64_t>());
  } else {
    return json_error(what, fmt::format("'{}' must be an integer 0-{}", key, max));
  }
  if (v > max) return json_error(what, fmt::format("'{}' {} is out of range 0-{}", key, v, max));
  return v;
}

// ---- conditions --------------------------------------------------------------

json condition_to_json(const Condition& c) {
  return json{{"field", field_name(c.field)},
              {"match", match_name(c.match)},
              {"value", format_condition_value(c)}};
}

Result<Condition> condition_from_json(const json& j, std::string_view what) {
  XFP_TRY(check_object(j, what, {"field", "match", "value"}));
  auto field_text = require_string(j, "field", what);
  if (!field_text) return std::move(field_text).error();
  auto field = field_from_name(*field_text);
  if (!field) {
    return json_error(what, fmt::format("unknown field '{}' (expected one of: {})", *field_text,
                                        all_field_names()));
  }
  auto match_text = require_string(j, "match", what);
  if (!match_text) return std::move(match_text).error();
  auto match = match_from_name(*match_text);
  if (!match) return json_error(what, fmt::format("unknown match type '{}'", *match_text));

  const json* value = member(j, "value");
  if (!value) return json_error(what, "missing 'value'");
  std::string value_text;
  if (value->is_string()) {
    value_text = value->get<std::string>();
  } else if (value->is_number_unsigned()) {
    value_text = std::to_string(value->get<uint64_t>());  // an ifindex, a VLAN...
  } else {
    return json_error(what, "'value' must be a string (the filter language's value text)");
  }
  // No resolver: JSON carries interface indexes, never names.
  auto c = parse_condition(*field, *match, value_text, nullptr);
  if (!c) return json_error(what, c.error().message);
  return *c;
}

Result<std::vector<Condition>> conditions_from_json(const json& j) {
  const json* list = member(j, "conditions");
  std::vector<Condition> out;
  if (!list) return out;
  if (!list->is_array()) return json_error(kFilterWhat, "'conditions' must be an array");
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string what = fmt::format("{}: condition {}", kFilterWhat, i + 1);
    auto c = condition_from_json((*list)[i], what);
    if (!c) return std::move(c).error();
    out.push_back(*c);
  }
  return out;
}

// ---- filter flags ------------------------------------------------------------

json flags_to_json(uint32_t flags) {
  json out = json::array();
  const std::string text = flags_to_string(flags);
  size_t start = 0;
  while (start < text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

Result<uint32_t> flags_from_json(const json& j) {
  const json* flags = member(j, "flags");
  if (!flags) return 0u;
  if (!flags->is_array()) return json_error(kFilterWhat, "'flags' must be an array of flag names");
  uint32_t out = 0;
  for (const json& item : *flags) {
    if (!item.is_string()) return json_error(kFilterWhat, "'flags' must be an array of flag names");
    const std::string name = item.get<std::string>();
    auto bits = flags_from_string(name);
    if (!bits || name.empty()) {
      return json_error(kFilterWhat, bits ? "empty flag name" : bits.error().message);
    }
    out |= *bits;
  }
  return out;
}

// ---- sublayers -----------------------------------------------------------------

Result<Sublayer> read_sublayer(const json& j, std::string_view what) {
  auto name = require_string(j, "name", what);
  if (!name) return std::move(name).error();
  if (name->empty()) return json_error(what, "'name' must not be empty");
  if (!member(j, "weight")) return json_error(what, "missing 'weight'");
  auto weight = read_u64(j, "weight", what, 0xffff, 0);
  if (!weight) return std::move(weight).error();
  return Sublayer{*name, static_cast<uint16_t>(*weight)};
}

// ---- commands ------------------------------------------------------------------

Result<std::string> filter_ref_from_json(const json& j) {
  const json* ref = member(j, "ref");
  if (!ref) return json_error(kCommandWhat, "missing 'ref'");
  if (ref->is_number_unsigned()) return std::to_string(ref->get<uint64_t>());
  if (ref->is_string() && !ref->get<std::string>().empty()) return ref->get<std::string>();
  return json_error(kCommandWhat, "'ref' must be a filter id or a non-empty filter name");
}

Result<Command> default_from_json(const json& j) {
  Command c;
  c.kind = Command::Kind::SetDefault;
  auto layer_text = require_string(j, "layer", kCommandWhat);
  if (!layer_text) return std::move(layer_text).error();
  auto layer = layer_from_name(*layer_text);
  if (!layer) {
    return json_error(kCommandWhat, fmt::format("unknown layer '{}' (expected inbound or outbound)",
                                                *layer_text));
  }
  c.layer = *layer;
  auto action_text = require_string(j, "action", kCommandWhat);
  if (!action_text) return std::move(action_text).error();
  auto action = action_from_name(*action_text);
  if (!action || is_callout(*action)) {
    return json_error(
        kCommandWhat,
        fmt::format("bad default action '{}' (expected permit or block)", *action_text));
  }
  c.default_action = *action;
  return c;
}

}  // namespace

json filter_to_json(const Filter& f) {
  json conditions = json::array();
  for (const Condition& c : f.conditions) conditions.push_back(condition_to_json(c));
  return json{{"id", f.id},
              {"name", f.name},
              {"description", f.description},
              {"layer", layer_name(f.layer)},
              {"sublayer", f.sublayer},
              {"weight", f.weight},
              {"conditions", std::move(conditions)},
              {"action", action_name(f.action)},
              {"callout", f.callout},
              {"flags", flags_to_json(f.flags)},
              {"context", f.context}};
}

Result<Filter> filter_from_json(const json& j) {
  XFP_TRY(check_object(j, kFilterWhat,
                       {"id", "name", "description", "layer", "sublayer", "weight", "conditions",
                        "action", "callout", "flags", "context"}));
  constexpr uint64_t kAny = std::numeric_limits<uint64_t>::max();
  Filter f;

  auto id = read_u64(j, "id", kFilterWhat, kAny, 0);
  if (!id) return std::move(id).error();
  f.id = *id;
  auto name = read_string(j, "name", kFilterWhat, "");
  if (!name) return std::move(name).error();
  f.name = std::move(*name);
  auto description = read_string(j, "description", kFilterWhat, "");
  if (!description) return std::move(description).error();
  f.description = std::move(*description);

  auto layer_text = read_string(j, "layer", kFilterWhat, "inbound");
  if (!layer_text) return std::move(layer_text).error();
  auto layer = layer_from_name(*layer_text);
  if (!layer) {
    return json_error(
        kFilterWhat, fmt::format("unknown layer '{}' (expected inbound or outbound)", *layer_text));
  }
  f.layer = *layer;

  auto sublayer = read_string(j, "sublayer", kFilterWhat, kDefaultSublayer);
  if (!sublayer) return std::move(sublayer).error();
  f.sublayer = std::move(*sublayer);
  auto weight = read_u64(j, "weight", kFilterWhat, kAny, 0);
  if (!weight) return std::move(weight).error();
  f.weight = *weight;

  auto conditions = conditions_from_json(j);
  if (!conditions) return std::move(conditions).error();
  f.conditions = std::move(*conditions);

  auto action_text = require_string(j, "action", kFilterWhat);
  if (!action_text) return std::move(action_text).error();
  auto action = action_from_name(*action_text);
  if (!action) return json_error(kFilterWhat, fmt::format("unknown action '{}'", *action_text));
  f.action = *action;

  auto callout = read_string(j, "callout", kFilterWhat, "");
  if (!callout) return std::move(callout).error();
  f.callout = std::move(*callout);
  auto flags = flags_from_json(j);
  if (!flags) return std::move(flags).error();
  f.flags = *flags;
  auto context = read_u64(j, "context", kFilterWhat, kAny, 0);
  if (!context) return std::move(context).error();
  f.context = *context;

  auto valid = check_filter(f);
  if (!valid) return json_error(kFilterWhat, valid.error().message);
  return f;
}

json sublayer_to_json(const Sublayer& s) { return json{{"name", s.name}, {"weight", s.weight}}; }

Result<Sublayer> sublayer_from_json(const json& j) {
  XFP_TRY(check_object(j, kSublayerWhat, {"name", "weight"}));
  return read_sublayer(j, kSublayerWhat);
}

// The command without its origin (command_to_json adds it).
static json command_body_to_json(const Command& c) {
  switch (c.kind) {
    case Command::Kind::AddFilter:
      return json{{"op", "filter-add"}, {"filter", filter_to_json(c.filter)}};
    case Command::Kind::DeleteFilter:
      return json{{"op", "filter-delete"}, {"ref", c.ref}};
    case Command::Kind::AddSublayer:
      return json{{"op", "sublayer-add"}, {"name", c.sublayer.name}, {"weight", c.sublayer.weight}};
    case Command::Kind::DeleteSublayer:
      return json{{"op", "sublayer-delete"}, {"name", c.ref}};
    case Command::Kind::Flush:
      return json{{"op", "flush"}};
    case Command::Kind::SetDefault:
      return json{{"op", "default"},
                  {"layer", layer_name(c.layer)},
                  {"action", action_name(c.default_action)}};
  }
  return json{{"op", "?"}};
}

static Result<Command> command_body_from_json(const json& j) {
  if (!j.is_object()) {
    return json_error(kCommandWhat, fmt::format("expected an object, got {}", j.type_name()));
  }
  auto op = require_string(j, "op", kCommandWhat);
  if (!op) return std::move(op).error();

  Command c;
  if (*op == "filter-add") {
    XFP_TRY(check_object(j, kCommandWhat, {"op", "filter"}));
    const json* filter = member(j, "filter");
    if (!filter) return json_error(kCommandWhat, "missing 'filter'");
    auto f = filter_from_json(*filter);
    if (!f) return std::move(f).error();
    c.kind = Command::Kind::AddFilter;
    c.filter = std::move(*f);
    return c;
  }
  if (*op == "filter-delete") {
    XFP_TRY(check_object(j, kCommandWhat, {"op", "ref"}));
    auto ref = filter_ref_from_json(j);
    if (!ref) return std::move(ref).error();
    c.kind = Command::Kind::DeleteFilter;
    c.ref = std::move(*ref);
    return c;
  }
  if (*op == "sublayer-add") {
    XFP_TRY(check_object(j, kCommandWhat, {"op", "name", "weight"}));
    auto s = read_sublayer(j, kCommandWhat);
    if (!s) return std::move(s).error();
    c.kind = Command::Kind::AddSublayer;
    c.sublayer = std::move(*s);
    return c;
  }
  if (*op == "sublayer-delete") {
    XFP_TRY(check_object(j, kCommandWhat, {"op", "name"}));
    auto name = require_string(j, "name", kCommandWhat);
    if (!name) return std::move(name).error();
    if (name->empty()) return json_error(kCommandWhat, "'name' must not be empty");
    c.kind = Command::Kind::DeleteSublayer;
    c.ref = std::move(*name);
    return c;
  }
  if (*op == "flush") {
    XFP_TRY(check_object(j, kCommandWhat, {"op"}));
    c.kind = Command::Kind::Flush;
    return c;
  }
  if (*op == "default") {
    XFP_TRY(check_object(j, kCommandWhat, {"op", "layer", "action"}));
    return default_from_json(j);
  }
  return json_error(kCommandWhat,
                    fmt::format("unknown op '{}' (expected one of: filter-add, filter-delete, "
                                "sublayer-add, sublayer-delete, flush, default)",
                                *op));
}

json command_to_json(const Command& c) {
  json j = command_body_to_json(c);
  if (!c.origin.empty()) j["origin"] = c.origin;
  return j;
}

Result<Command> command_from_json(const json& j) {
  // "origin" (optional) goes with every kind of command.
  if (!j.is_object() || !j.contains("origin")) return command_body_from_json(j);
  const json& origin = j["origin"];
  if (!origin.is_string()) return json_error(kCommandWhat, fmt::format("'origin' must be a string, got {}", origin.type_name()));
  json body = j;
  body.erase("origin");
  auto c = command_body_from_json(body);
  if (c) c->origin = origin.get<std::string>();
  return c;
}

}  // namespace xfp
