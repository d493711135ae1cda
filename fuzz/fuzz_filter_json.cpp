// The JSON forms of filters, sublayers and commands (user/xfp/filter_json.hpp)
// on arbitrary text: what the control protocol and the state file carry.
//
// The text is parsed as JSON (without exceptions); the value, and each
// element when it is an array, goes through filter_from_json,
// sublayer_from_json and command_from_json. What parses must be a valid
// filter (check_filter) and round-trip: to_json then from_json gives the
// same filter, sublayer or command.
#include <cstdint>

#include <nlohmann/json.hpp>

#include "fuzz_common.hpp"
#include "xfp/filter_json.hpp"
#include "xfp/filter_syntax.hpp"

namespace {

bool same_command(const xfp::Command& a, const xfp::Command& b) {
  return a.kind == b.kind && a.filter == b.filter && a.ref == b.ref && a.sublayer == b.sublayer &&
         a.layer == b.layer && a.default_action == b.default_action;
}

void one(const nlohmann::json& j) {
  if (auto f = xfp::filter_from_json(j); f.ok()) {
    XFP_FUZZ_CHECK(xfp::check_filter(*f).ok());
    auto again = xfp::filter_from_json(xfp::filter_to_json(*f));
    XFP_FUZZ_CHECK(again.ok() && *again == *f);
    (void)xfp::format_filter_line(*f);
  }
  if (auto s = xfp::sublayer_from_json(j); s.ok()) {
    auto again = xfp::sublayer_from_json(xfp::sublayer_to_json(*s));
    XFP_FUZZ_CHECK(again.ok() && *again == *s);
  }
  if (auto c = xfp::command_from_json(j); c.ok()) {
    auto again = xfp::command_from_json(xfp::command_to_json(*c));
    if (!again.ok()) {
      std::fprintf(stderr, "command does not round-trip: %s\n  %s\n", xfp::command_to_json(*c).dump().c_str(),
                   again.error().message.c_str());
    }
    XFP_FUZZ_CHECK(again.ok() && same_command(*again, *c));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  one(j);
  if (j.is_array())
    for (const auto& e : j) one(e);
  if (j.is_object())
    for (const auto& [k, v] : j.items()) one(v);
  return 0;
}
