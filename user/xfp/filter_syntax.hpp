// The filter language: `xfp filter add` arguments and filter files (one
// command per line) share one tokenizer and one parser. Formatting a filter
// gives text that parses back to the same filter.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "xfp/filter.hpp"
#include "xfp/result.hpp"

namespace xfp {

// Resolves an interface name to its ifindex (the daemon's namespace).
using IfaceResolver = std::function<Result<uint32_t>(std::string_view name)>;

// Splits a line into words: whitespace separates, double quotes group
// (inside them \" \\ \n \t \r are escapes), `#` outside quotes starts a
// comment.
Result<std::vector<std::string>> tokenize(std::string_view line);

// Parses the words after `filter add`.
Result<Filter> parse_filter(const std::vector<std::string>& words, const IfaceResolver& resolve);

// Parses one condition value for a field and match type ("02:00:5e:00:00:00/24",
// "100-200", "ipv4", "malformed,vlan-tagged"...). Shared with JSON.
Result<Condition> parse_condition(Field field, Match match, std::string_view value,
                                  const IfaceResolver& resolve);
std::string format_condition_value(const Condition& c);

// `filter add ...` words for a filter (without the leading "filter add").
std::vector<std::string> format_filter_words(const Filter& f);
// One line: "filter add name x layer inbound ... action block".
std::string format_filter_line(const Filter& f);

std::string flags_to_string(uint32_t filter_flags);        // "persistent,disabled"
std::string l2_flags_to_string(uint32_t l2_flags);
// Parses "persistent,disabled" (filter flag names, comma separated).
Result<uint32_t> flags_from_string(std::string_view text);

// Checks what a filter means as a whole, whatever it came from (text, JSON,
// code): every condition valid for its field, no overlapping ranges on one
// field, a callout key exactly when the action is a callout, known flags, a
// name that cannot be taken for an id. parse_filter and filter_from_json call it.
Status check_filter(const Filter& f);

// One command of a filter file or of a transaction.
struct Command {
  enum class Kind { AddFilter, DeleteFilter, AddSublayer, DeleteSublayer, Flush, SetDefault };
  Kind kind = Kind::AddFilter;
  Filter filter;          // AddFilter
  std::string ref;        // DeleteFilter: id (digits) or name; DeleteSublayer: name
  Sublayer sublayer;      // AddSublayer
  Layer layer = Layer::Inbound;        // SetDefault
  Action default_action = Action::Permit;  // SetDefault
  // Where it was written ("policy.xfp:7"), so that an error the daemon finds
  // names the line; empty for a command typed on its own.
  std::string origin;
};

// Parses a whole filter file. Errors name the place: "policy.xfp:7: ...".
Result<std::vector<Command>> parse_batch(std::string_view text, std::string_view source_name,
                                         const IfaceResolver& resolve);
// Parses one command line (the same grammar as a file line).
Result<Command> parse_command(const std::vector<std::string>& words, const IfaceResolver& resolve);

}  // namespace xfp
