// JSON forms of filters and sublayers (control protocol, state file, --json).
// Condition values use the text form of the filter language.
#pragma once

#include <nlohmann/json.hpp>

#include "xfp/filter.hpp"
#include "xfp/filter_syntax.hpp"
#include "xfp/result.hpp"

namespace xfp {

nlohmann::json filter_to_json(const Filter& f);
// Interfaces in JSON are ifindex numbers, so no resolver is needed.
Result<Filter> filter_from_json(const nlohmann::json& j);
nlohmann::json sublayer_to_json(const Sublayer& s);
Result<Sublayer> sublayer_from_json(const nlohmann::json& j);
nlohmann::json command_to_json(const Command& c);
Result<Command> command_from_json(const nlohmann::json& j);

}  // namespace xfp
