// The filter language (user/xfp/filter_syntax.hpp) on arbitrary text: the
// `xfp filter add` arguments and filter files (`xfp apply`).
//
// Each line: tokenize() then parse_command(); the whole text: parse_batch().
// For every filter that parses, format_filter_line() then parsing that line
// again must give the same filter (the round trip the header promises), and
// check_filter() must accept it. The commands that parsed are then applied
// to a FilterSet, compiled and snapshotted (what the daemon does with a
// batch), which must fail cleanly or succeed, never crash. The compiler
// fills 64K-entry direct tables (tens of ms per input under the sanitizers),
// so only inputs that start with the comment "#compile" take that step; the
// corpus has one, and the fuzzer mutates from it.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.hpp"
#include "xfp/compiler.hpp"
#include "xfp/filter_json.hpp"
#include "xfp/filter_set.hpp"
#include "xfp/filter_syntax.hpp"
#include "xfp/policy_snapshot.hpp"

namespace {

// Two interfaces by name; anything else is unknown.
xfp::Result<uint32_t> resolve(std::string_view name) {
  if (name == "lo") return 1u;
  if (name == "eth0") return 2u;
  return xfp::make_error(19, "no interface '" + std::string(name) + "'");
}

void round_trip(const xfp::Filter& f) {
  XFP_FUZZ_CHECK(xfp::check_filter(f).ok());
  const std::string line = xfp::format_filter_line(f);
  auto words = xfp::tokenize(line);
  if (!words.ok()) {
    std::fprintf(stderr, "formatted line does not tokenize: %s\n  %s\n", line.c_str(),
                 words.error().message.c_str());
    XFP_FUZZ_CHECK(words.ok());
  }
  auto again = xfp::parse_command(*words, resolve);
  if (!again.ok()) {
    std::fprintf(stderr, "formatted line does not parse: %s\n  %s\n", line.c_str(),
                 again.error().message.c_str());
    XFP_FUZZ_CHECK(again.ok());
  }
  XFP_FUZZ_CHECK(again->kind == xfp::Command::Kind::AddFilter);
  if (!(again->filter == f)) {
    std::fprintf(stderr, "round trip changed the filter: %s\n  -> %s\n", line.c_str(),
                 xfp::format_filter_line(again->filter).c_str());
    XFP_FUZZ_CHECK(again->filter == f);
  }
  // The JSON form (control protocol, state file) round-trips too.
  auto from_json = xfp::filter_from_json(xfp::filter_to_json(f));
  XFP_FUZZ_CHECK(from_json.ok() && *from_json == f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  std::vector<xfp::Command> commands;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t nl = text.find('\n', start);
    const std::string_view line = text.substr(start, nl == std::string_view::npos ? nl : nl - start);
    auto words = xfp::tokenize(line);
    if (words.ok() && !words->empty()) {
      auto c = xfp::parse_command(*words, resolve);
      if (c.ok()) {
        if (c->kind == xfp::Command::Kind::AddFilter) round_trip(c->filter);
        commands.push_back(std::move(*c));
      }
      // The words after `filter add`, as the CLI hands them over.
      if (words->size() > 2 && (*words)[0] == "filter" && (*words)[1] == "add") {
        std::vector<std::string> rest(words->begin() + 2, words->end());
        auto f = xfp::parse_filter(rest, resolve);
        if (f.ok()) round_trip(*f);
      }
    }
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }

  auto batch = xfp::parse_batch(text, "fuzz.xfp", resolve);
  if (batch.ok()) XFP_FUZZ_CHECK(batch->size() == commands.size());

  // What the daemon does with a transaction (see the top for "#compile").
  if (text.starts_with("#compile") && commands.size() <= 32) {
    xfp::FilterSet set;
    for (const auto& c : commands) (void)set.apply(c);
    auto compiled = xfp::compile(set);
    if (compiled.ok()) {
      auto snap = xfp::PolicySnapshot::create(set, *compiled, 1);
      XFP_FUZZ_CHECK(snap.ok());
      xfp_fields fields{};
      xfp::UnservedCallouts none;
      for (auto layer : {xfp::Layer::Inbound, xfp::Layer::Outbound}) {
        auto d = (*snap)->classify(layer, fields, none);
        XFP_FUZZ_CHECK(d.action == xfp::Action::Permit || d.action == xfp::Action::Block);
      }
    }
  }
  return 0;
}
