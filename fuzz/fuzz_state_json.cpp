// The daemon's state file reader, state_from_json (user/xfp/state_store.hpp),
// on arbitrary text: what a restart reads from DIR/state.json.
//
// What parses must round-trip: state_to_json then state_from_json gives the
// same state (sublayers, defaults, filters, attachments, next id, plugins),
// and every restored filter is valid (check_filter).
#include <cstdint>

#include <nlohmann/json.hpp>

#include "fuzz_common.hpp"
#include "xfp/filter_syntax.hpp"
#include "xfp/state_store.hpp"

namespace {

bool same(const xfp::SavedState& a, const xfp::SavedState& b) {
  return a.sublayers == b.sublayers && a.defaults[0] == b.defaults[0] && a.defaults[1] == b.defaults[1] &&
         a.filters == b.filters && a.attachments == b.attachments && a.next_filter_id == b.next_filter_id &&
         a.plugins == b.plugins;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  auto s = xfp::state_from_json(j, "fuzz/state.json");
  if (!s.ok()) return 0;
  for (const auto& f : s->filters) XFP_FUZZ_CHECK(xfp::check_filter(f).ok());
  auto again = xfp::state_from_json(xfp::state_to_json(*s), "round-trip");
  if (!again.ok()) {
    std::fprintf(stderr, "state does not round-trip: %s\n", again.error().message.c_str());
    XFP_FUZZ_CHECK(again.ok());
  }
  XFP_FUZZ_CHECK(same(*again, *s));
  return 0;
}
