// `xfp redirect`: see redirect.hpp. The daemon side forwards the ops to the
// callout runtime's RedirectStore (user/redirect_store.cpp), which also
// serves libxfp-client's redirect calls (include/xfp/redirect_client.h).
#include "redirect.hpp"

#include <cctype>
#include <iostream>

#include <fmt/format.h>

#include "xfp/control.hpp"
#include "xfp/redirect_store.hpp"

namespace xfp::cli {

namespace {

using nlohmann::json;

// Hex with optional separators (':', ' ', '-') taken out; "" when not hex.
std::optional<std::string> clean_hex(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == ':' || c == ' ' || c == '-') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (out.size() % 2) return std::nullopt;
  return out;
}

std::vector<uint8_t> bytes_of(const std::string& hex) {
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

std::string printable(const std::vector<uint8_t>& b) {
  std::string s;
  for (uint8_t c : b) s.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '.');
  return s;
}

std::string render_list(const json& r) {
  std::vector<std::vector<std::string>> rows{{"FLOW", "MACS", "IDLE", "RECORDS (latest last)"}};
  for (const json& f : r.value("flows", json::array())) {
    const json k = f.value("key", json::object());
    std::string flow = k.value("handle", std::string());
    if (k.contains("addr_a"))
      flow += fmt::format(" proto {} {}:{} <-> {}:{}", k.value("protocol", 0), k.value("addr_a", std::string()),
                          k.value("port_a", 0), k.value("addr_b", std::string()), k.value("port_b", 0));
    std::string records;
    for (const json& rec : f.value("records", json::array())) {
      auto ctx = bytes_of(rec.value("context", std::string()));
      records += fmt::format("{}#{} {} \"{}\"", records.empty() ? "" : ", ", rec.value("redirector", uint64_t{0}),
                             rec.value("plugin", std::string()), printable(ctx));
    }
    rows.push_back({flow, k.value("mac_a", std::string()) + " <-> " + k.value("mac_b", std::string()),
                    fmt::format("{:.1f}s", f.value("idle_ms", uint64_t{0}) / 1000.0), records});
  }
  std::string out = render_table(rows);
  const json s = r.value("stats", json::object());
  const json l = r.value("limits", json::object());
  out += fmt::format("{} flow(s) with records (at most {}, idle timeout {}s); {} redirect(s), {} refused as "
                     "repeats, {} send error(s), {} set by proxies\n",
                     s.value("flows", uint64_t{0}), l.value("max_flows", uint64_t{0}),
                     l.value("idle_timeout_ms", uint64_t{0}) / 1000, s.value("redirects", uint64_t{0}),
                     s.value("refused_again", uint64_t{0}), s.value("send_errors", uint64_t{0}),
                     s.value("sets", uint64_t{0}));
  return out;
}

}  // namespace

Result<json> op_redirect(Engine& engine, const json& req) {
  CalloutRuntime* rt = engine.callouts();
  if (!rt) return make_error(EOPNOTSUPP, "redirect records need the callout path (the daemon runs with --no-callouts)");
  return redirect_request(rt->redirects(), req);
}

CLI::App* add_redirect_commands(CLI::App& app, RedirectCliOptions& o) {
  auto* redirect = app.add_subcommand("redirect", "redirect records: what an inspection proxy queries and sets");
  redirect->require_subcommand(1);
  o.query = redirect->add_subcommand("query", "the records (or the latest redirector's context) of a frame's flow");
  o.query->add_option("--frame-hex", o.frame_hex, "a frame of the flow, as received (hex; ':' and spaces allowed)")
      ->required()
      ->type_name("HEX");
  o.query->add_flag("--context", o.context, "the context of the latest record instead of the records");
  o.query->add_option("--size", o.size, "the buffer's size in bytes, as a proxy's call would give it")
      ->type_name("N");
  o.query->footer(R"(Buffer rules (as SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS / _CONTEXT):
  --size 0        succeeds and prints the size needed (nothing else)
  --size N small  fails with "insufficient buffer" and the size needed (exit 1)
  --size N large  prints the bytes (hex); without --size, always the bytes
The records are opaque: hand them back with `xfp redirect set` on the proxy's
onward flow. A flow without records: "no redirect records" (exit 1).

Examples:
  xfp redirect query --frame-hex 0200000000020200000000010800450000...
  xfp redirect query --frame-hex "$F" --context
  xfp redirect query --frame-hex "$F" --size 0 --json)");
  o.set = redirect->add_subcommand("set", "set (replace) the records of a frame's flow: the proxy's onward flow");
  o.set->add_option("--frame-hex", o.frame_hex, "a frame of the onward flow (hex)")->required()->type_name("HEX");
  o.set->add_option("--records-hex", o.records_hex, "the records from `xfp redirect query` (\"\" clears them)")
      ->required()
      ->type_name("HEX");
  o.set->footer(R"(Example:
  R=$(xfp redirect query --frame-hex "$IN")
  xfp redirect set --frame-hex "$OUT" --records-hex "$R")");
  o.list = redirect->add_subcommand("list", "flows with redirect records, and the redirect counters");
  o.list->add_option("--limit", o.limit, "at most N flows (most recently used first)")->type_name("N");
  o.list->footer(R"(Examples:
  xfp redirect list
  xfp redirect list --limit 20
  xfp --json redirect list)");
  redirect->footer(R"(A callout redirects a flow to a local inspection proxy (redirect_flow in
include/xfp/callout.h): the frame goes out another interface and the flow gets
a record (the redirector's id, its plugin, its context bytes). The proxy asks
for the records and the context of the flow of a frame it received, and sets
the records on the flow it forwards onward: the redirector then sees
REDIRECTED_BY_SELF (or PREVIOUSLY_REDIRECTED_BY_SELF, or BY_OTHER) and never
redirects that flow again. Programs use libxfp-client (xfp/redirect_client.h).
Records are per flow without the interface: frames are named by their MACs,
VLAN, EtherType, addresses and ports.

Examples:
  xfp redirect list
  xfp redirect query --frame-hex "$F" --context
  xfp redirect set --frame-hex "$OUT" --records-hex "$R")");
  return redirect;
}

int cmd_redirect(const Global& g, const RedirectCliOptions& o) {
  if (*o.list) {
    json req{{"op", "redirect.list"}};
    if (o.limit) req["limit"] = o.limit;
    auto r = request(g, req);
    if (!r) return fail(r.error());
    if (g.json) std::cout << control::dump(*r) << std::endl;
    else std::cout << render_list(*r);
    return kExitOk;
  }
  auto frame = clean_hex(o.frame_hex);
  if (!frame || frame->empty()) return fail("--frame-hex: not a frame in hex", kExitUsage);
  const std::vector<uint8_t> frame_bytes = bytes_of(*frame);
  if (auto key = redirect_flow_key(frame_bytes); !key) return fail("--frame-hex: " + key.error().message, kExitUsage);
  if (*o.set) {
    auto records = clean_hex(o.records_hex);
    if (!records) return fail("--records-hex: not hex", kExitUsage);
    auto r = request(g, {{"op", "redirect.set"}, {"frame", *frame}, {"records", *records}});
    if (!r) return fail(r.error());
    if (g.json) std::cout << control::dump(*r) << std::endl;
    return kExitOk;
  }
  json req{{"op", "redirect.query"}, {"frame", *frame}, {"what", o.context ? "context" : "records"}};
  if (o.size) req["size"] = *o.size;
  auto r = request(g, req);
  if (!r) return fail(r.error());
  if (g.json) {
    std::cout << control::dump(*r) << std::endl;
    return r->value("result", std::string()) == "insufficient-buffer" ? kExitError : kExitOk;
  }
  const std::string result = r->value("result", std::string());
  const uint64_t needed = r->value("needed", uint64_t{0});
  if (result == "size") {
    std::cout << needed << std::endl;
    return kExitOk;
  }
  if (result == "insufficient-buffer")
    return fail(fmt::format("insufficient buffer: the {} take{} {} bytes, the buffer holds {}",
                            o.context ? "context" : "records", o.context ? "s" : "", needed, o.size.value_or(0)),
                kExitError);
  std::cout << r->value("data", std::string()) << std::endl;
  return kExitOk;
}

}  // namespace xfp::cli
