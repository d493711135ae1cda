// The daemon's answers to control requests: each op reads its arguments,
// calls the Engine and shapes the reply. Every request that changes the
// policy is a "transaction" (a list of commands, all or nothing).
//
//   ping                              -> version, pid
//   transaction {commands: [...]}     -> generation, added: [ids]
//   attach {device, mode, inbound, outbound} -> attachment
//   detach {device}
//   status                            -> attachments, generation, filter counts, layer counters...
//   filter.list {layer?}              -> filters: [filter + counters]
//   filter.show {ref}                 -> filter + counters, line
//   sublayer.list                     -> sublayers: [name, weight, filters]
//   counters                          -> filters: [id, name, layer, frames, bytes]
//   callout.load {path, config?}      -> plugin
//   callout.unload {name}
//   callout.list                      -> plugins: [name, path, callouts: [key, id, flags]]
//   flows {limit?}                    -> flows: [handle, key, device, age, contexts, offload], stats (flows.cpp)
//   redirect.query / .set / .list     -> redirect records (redirect.cpp, user/redirect_store.cpp)
#include <unistd.h>

#include <functional>
#include <map>

#include <spdlog/spdlog.h>

#include "cli.hpp"
#include "redirect.hpp"
#include "xfp/control.hpp"
#include "xfp/filter_json.hpp"

namespace xfp::cli {

namespace {

using nlohmann::json;

Error bad_request(const std::string& message) { return make_error(EINVAL, "bad request: " + message); }

Result<std::string> string_arg(const json& req, const char* key) {
  auto it = req.find(key);
  if (it == req.end() || !it->is_string() || it->get<std::string>().empty())
    return bad_request(std::string("'") + key + "' must be a non-empty string");
  return it->get<std::string>();
}

bool bool_arg(const json& req, const char* key, bool fallback) {
  auto it = req.find(key);
  return it != req.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

json counters_json(const FilterCounters& c) { return {{"frames", c.frames}, {"bytes", c.bytes}}; }

json filter_with_counters(const Engine& e, const Filter& f) {
  json j = filter_to_json(f);
  j["counters"] = counters_json(e.counters(f.id));
  return j;
}

json attachment_json(const Attachment& a) {
  return {{"device", a.ifname},   {"ifindex", a.ifindex},    {"inbound", a.inbound},
          {"outbound", a.outbound}, {"xdp_mode", a.xdp_mode}, {"loader", a.xdp_loader},
          {"punt_carrier", a.inbound ? punt_carrier_name(a.carrier) : ""}};
}

json layer_counters_json(const LayerCounters& c) {
  return {{"frames", c.c[XFP_CNT_FRAMES]},       {"bytes", c.c[XFP_CNT_BYTES]},
          {"permit", c.c[XFP_CNT_PERMIT]},       {"block", c.c[XFP_CNT_BLOCK]},
          {"default", c.c[XFP_CNT_DEFAULT]},     {"malformed", c.c[XFP_CNT_MALFORMED]},
          {"callout_fail", c.c[XFP_CNT_CALLOUT_FAIL]}, {"veto", c.c[XFP_CNT_VETO]},
          {"punt", c.c[XFP_CNT_PUNT]},           {"punt_fail", c.c[XFP_CNT_PUNT_FAIL]},
          {"punt_in_band", c.c[XFP_CNT_PUNT_IN_BAND]},
          {"overload_permit", c.c[XFP_CNT_OVERLOAD_PERMIT]}, {"overload_block", c.c[XFP_CNT_OVERLOAD_BLOCK]},
          {"offload_permit", c.c[XFP_CNT_OFFLOAD_PERMIT]}, {"offload_block", c.c[XFP_CNT_OFFLOAD_BLOCK]},
          {"offload_redirect", c.c[XFP_CNT_OFFLOAD_REDIRECT]}, {"offload_miss", c.c[XFP_CNT_OFFLOAD_MISS]},
          {"offload_stale", c.c[XFP_CNT_OFFLOAD_STALE]}, {"flow_fin_rst", c.c[XFP_CNT_FLOW_FIN_RST]}};
}

json worker_json(const WorkerStatus& w) {
  return {{"device", w.ifname},       {"queue", w.queue},         {"frames", w.frames},
          {"permit", w.permitted},    {"block", w.blocked},       {"absorb", w.absorbed},
          {"deliver_failed", w.deliver_failed}, {"rescanned", w.rescanned}, {"bad_meta", w.bad_meta},
          {"veto", w.vetoed},
          {"rx_dropped", w.rx_dropped}, {"rx_ring_full", w.rx_ring_full}, {"fill_ring_empty", w.fill_ring_empty},
          {"rx_invalid", w.rx_invalid}, {"tx_invalid", w.tx_invalid}, {"tx_ring_empty", w.tx_ring_empty},
          {"in_flight", w.in_flight}, {"capacity", w.capacity}, {"overload", w.overloaded}};
}

json plugin_json(const PluginRecord& p) {
  json callouts = json::array();
  for (const CalloutRecord& c : p.callouts) {
    json flags = json::array();
    if (c.flags & XFP_CALLOUT_FLAG_BATCH) flags.push_back("batch");
    if (c.flags & XFP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW) flags.push_back("conditional-on-flow");
    callouts.push_back({{"key", c.key}, {"id", c.id}, {"flags", flags}, {"description", c.description}});
  }
  return {{"name", p.name}, {"description", p.description}, {"path", p.path}, {"abi", p.abi_version},
          {"callouts", std::move(callouts)}};
}

Result<json> op_callout_load(Engine& e, const json& req) {
  auto path = string_arg(req, "path");
  if (!path) return std::move(path).error();
  auto cfg = req.find("config");
  if (cfg != req.end() && !cfg->is_string()) return bad_request("'config' must be a string");
  auto rec = e.load_plugin(*path, cfg != req.end() ? cfg->get<std::string>() : std::string());
  if (!rec) return std::move(rec).error();
  spdlog::info("loaded callout plugin {} from {} ({} callout(s))", rec->name, rec->path, rec->callouts.size());
  return json{{"plugin", plugin_json(*rec)}};
}

Result<json> op_callout_unload(Engine& e, const json& req) {
  auto name = string_arg(req, "name");
  if (!name) return std::move(name).error();
  XFP_TRY(e.unload_plugin(*name));
  spdlog::info("unloaded callout plugin {}", *name);
  return json::object();
}

// The classify watchdog's state (CalloutRuntime::watchdog); null without callouts.
json watchdog_json(Engine& e) {
  CalloutRuntime* rt = e.callouts();
  if (!rt) return nullptr;
  const WatchdogStatus w = rt->watchdog();
  json callouts = json::array(), stuck = json::array();
  for (const CalloutWatchStatus& c : w.callouts)
    callouts.push_back({{"id", c.id}, {"key", c.key}, {"trips", c.trips}, {"longest_ms", c.longest_ms},
                        {"quarantined", c.quarantined}});
  for (const StuckWorkerStatus& s : w.stuck)
    stuck.push_back({{"device", s.ifname}, {"queue", s.queue}, {"callout_id", s.callout_id}, {"callout", s.callout},
                     {"ms", s.ms}});
  return {{"budget_ms", w.budget_ms}, {"trips", w.trips}, {"callouts", std::move(callouts)}, {"stuck", std::move(stuck)}};
}

Result<json> op_callout_list(Engine& e, const json&) {
  json list = json::array();
  const json watchdog = watchdog_json(e);
  for (const PluginRecord& p : e.plugins()) {
    json pj = plugin_json(p);
    // Each callout's watchdog record: trips and whether it is quarantined.
    for (json& c : pj["callouts"]) {
      c["watchdog_trips"] = 0;
      c["quarantined"] = false;
      if (watchdog.is_object())
        for (const json& w : watchdog["callouts"])
          if (w["id"] == c["id"]) {
            c["watchdog_trips"] = w["trips"];
            c["quarantined"] = w["quarantined"];
          }
    }
    list.push_back(std::move(pj));
  }
  return json{{"plugins", std::move(list)}};
}

Result<json> op_transaction(Engine& e, const json& req) {
  auto it = req.find("commands");
  if (it == req.end() || !it->is_array()) return bad_request("'commands' must be an array");
  std::vector<Command> commands;
  for (size_t i = 0; i < it->size(); ++i) {
    auto c = command_from_json((*it)[i]);
    if (!c) return std::move(c).error().context("bad request: command " + std::to_string(i + 1));
    commands.push_back(std::move(*c));
  }
  auto r = e.transaction(commands);
  if (!r) return std::move(r).error();
  spdlog::info("transaction of {} command(s) installed: generation {}, {} filter(s)", commands.size(),
               r->generation, e.filters().size());
  return json{{"generation", r->generation}, {"added", r->added}};
}

Result<json> op_attach(Engine& e, const json& req) {
  auto dev = string_arg(req, "device");
  if (!dev) return std::move(dev).error();
  AttachRecord rec;
  rec.ifname = *dev;
  auto mode = xdp_mode_from_name(req.value("mode", std::string("auto")));
  if (!mode) return bad_request("'mode' must be auto, native or generic");
  rec.mode = *mode;
  rec.inbound = bool_arg(req, "inbound", true);
  rec.outbound = bool_arg(req, "outbound", true);
  XFP_TRY(e.attach(rec));
  for (const Attachment& a : e.status().attachments)
    if (a.ifname == rec.ifname) return json{{"attachment", attachment_json(a)}};  // the Datapath logged it
  return json::object();
}

Result<json> op_detach(Engine& e, const json& req) {
  auto dev = string_arg(req, "device");
  if (!dev) return std::move(dev).error();
  XFP_TRY(e.detach(*dev));
  return json::object();
}

Result<json> op_status(Engine& e, const json&) {
  EngineStatus st = e.status();
  json attachments = json::array();
  for (const Attachment& a : st.attachments) attachments.push_back(attachment_json(a));
  json missing = json::array();
  for (const AttachRecord& r : st.missing)
    missing.push_back({{"device", r.ifname}, {"mode", xdp_mode_name(r.mode)}, {"inbound", r.inbound},
                       {"outbound", r.outbound}});
  const size_t in = st.filters[XFP_LAYER_INBOUND], out = st.filters[XFP_LAYER_OUTBOUND];
  json workers = json::array();
  for (const WorkerStatus& w : st.workers) workers.push_back(worker_json(w));
  return json{
      {"version", kVersion},
      {"generation", st.generation},
      {"state_file", st.state_file},
      {"attachments", std::move(attachments)},
      {"missing", std::move(missing)},
      {"filters", {{"total", in + out}, {"inbound", in}, {"outbound", out}}},
      {"sublayers", st.sublayers},
      {"defaults",
       {{"inbound", action_name(st.defaults[XFP_LAYER_INBOUND])},
        {"outbound", action_name(st.defaults[XFP_LAYER_OUTBOUND])}}},
      {"counters",
       {{"inbound", layer_counters_json(st.counters[XFP_LAYER_INBOUND])},
        {"outbound", layer_counters_json(st.counters[XFP_LAYER_OUTBOUND])}}},
      {"workers", workers},
      {"watchdog", watchdog_json(e)},
  };
}

Result<json> op_filter_list(Engine& e, const json& req) {
  std::optional<Layer> only;
  if (auto it = req.find("layer"); it != req.end() && !it->is_null()) {
    only = it->is_string() ? layer_from_name(it->get<std::string>()) : std::nullopt;
    if (!only) return bad_request("'layer' must be inbound or outbound");
  }
  json filters = json::array();
  for (const Filter* f : e.filters().filters())
    if (!only || f->layer == *only) filters.push_back(filter_with_counters(e, *f));
  return json{{"filters", std::move(filters)}};
}

Result<json> op_filter_show(Engine& e, const json& req) {
  auto ref = string_arg(req, "ref");
  if (!ref) return std::move(ref).error();
  const Filter* f = e.filters().find(*ref);
  if (!f) return make_error(ENOENT, "no filter with id or name '" + *ref + "'");
  return json{{"filter", filter_with_counters(e, *f)}, {"line", format_filter_line(*f)}};
}

Result<json> op_sublayer_list(Engine& e, const json&) {
  std::map<std::string, size_t> used;
  for (const Filter* f : e.filters().filters()) ++used[f->sublayer];
  json list = json::array();
  for (const Sublayer& s : e.filters().sublayers()) {
    json j = sublayer_to_json(s);
    j["filters"] = used[s.name];
    list.push_back(std::move(j));
  }
  return json{{"sublayers", std::move(list)}};
}

Result<json> op_counters(Engine& e, const json&) {
  json list = json::array();
  for (const Filter* f : e.filters().filters()) {
    FilterCounters c = e.counters(f->id);
    list.push_back({{"id", f->id}, {"name", f->name}, {"layer", layer_name(f->layer)},
                    {"frames", c.frames}, {"bytes", c.bytes}});
  }
  return json{{"generation", e.generation()}, {"filters", std::move(list)}};
}

Result<json> op_ping(Engine&, const json&) { return json{{"version", kVersion}, {"pid", ::getpid()}}; }

using Op = std::function<Result<json>(Engine&, const json&)>;

const std::map<std::string, Op>& ops() {
  static const std::map<std::string, Op> table = {
      {"ping", op_ping},
      {"transaction", op_transaction},
      {"attach", op_attach},
      {"detach", op_detach},
      {"status", op_status},
      {"filter.list", op_filter_list},
      {"filter.show", op_filter_show},
      {"sublayer.list", op_sublayer_list},
      {"counters", op_counters},
      {"callout.load", op_callout_load},
      {"callout.unload", op_callout_unload},
      {"callout.list", op_callout_list},
      {"flows", op_flows},
      {"redirect.query", op_redirect},
      {"redirect.set", op_redirect},
      {"redirect.list", op_redirect},
  };
  return table;
}

}  // namespace

json handle_request(Engine& engine, const json& request) {
  auto op = request.find("op");
  if (op == request.end() || !op->is_string())
    return control::error_reply(bad_request("a request needs an \"op\" string"));
  auto it = ops().find(op->get<std::string>());
  if (it == ops().end()) {
    std::string known;
    for (const auto& [name, fn] : ops()) known += (known.empty() ? "" : ", ") + name;
    return control::error_reply(
        bad_request("unknown op '" + op->get<std::string>() + "' (expected one of: " + known + ")"));
  }
  try {
    auto r = it->second(engine, request);
    if (!r) return control::error_reply(r.error());
    return control::ok_reply(std::move(*r));
  } catch (const std::exception& e) {
    return control::error_reply(bad_request(e.what()));
  }
}

}  // namespace xfp::cli
