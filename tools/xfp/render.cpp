// Human-readable output of the CLI: aligned tables and key/value blocks,
// built from the daemon's JSON replies (the same data --json prints).
#include <fmt/format.h>

#include <algorithm>

#include "cli.hpp"

namespace xfp::cli {

namespace {

using nlohmann::json;

bool is_numeric(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

std::string num(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return "0";
  if (it->is_number_float()) return fmt::format("{:.1f}", it->get<double>());
  return std::to_string(it->get<uint64_t>());
}

std::string str(const json& j, const char* key, const std::string& fallback = "") {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

std::string conditions_text(const json& filter) {
  std::vector<std::string> parts;
  for (const json& c : filter.value("conditions", json::array()))
    parts.push_back(str(c, "field") + " " + str(c, "match") + " " + str(c, "value"));
  return parts.empty() ? "any" : join(parts, ", ");
}

std::string flags_text(const json& filter) {
  std::vector<std::string> parts;
  for (const json& f : filter.value("flags", json::array()))
    if (f.is_string()) parts.push_back(f.get<std::string>());
  return parts.empty() ? "-" : join(parts, ",");
}

std::string action_text(const json& filter) {
  std::string callout = str(filter, "callout");
  return str(filter, "action") + (callout.empty() ? "" : "(" + callout + ")");
}

std::string layers_text(const json& a) {
  std::vector<std::string> parts;
  if (a.value("inbound", false)) parts.push_back("inbound");
  if (a.value("outbound", false)) parts.push_back("outbound");
  return parts.empty() ? "-" : join(parts, ",");
}

constexpr const char* kLayerCounterKeys[] = {"frames",       "bytes", "permit", "block",
                                             "default",      "malformed", "callout_fail", "veto",
                                             "punt",         "overload_permit", "overload_block"};

// Flow-verdict offload: a table of its own, shown once offload has counted.
constexpr const char* kOffloadCounterKeys[] = {"offload_permit", "offload_block", "offload_redirect",
                                               "offload_miss",   "offload_stale", "flow_fin_rst"};

template <size_t N>
std::vector<std::string> counter_row(const std::string& label, const json& c, const char* const (&keys)[N]) {
  std::vector<std::string> row{label};
  for (const char* k : keys) row.push_back(num(c, k));
  return row;
}

bool offload_counted(const json& counters) {
  for (const char* layer : {"inbound", "outbound"})
    for (const char* k : kOffloadCounterKeys)
      if (counters.value(layer, json::object()).value(k, uint64_t{0}) != 0) return true;
  return false;
}

}  // namespace

std::string render_table(const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return "";
  size_t ncol = 0;
  for (const auto& r : rows) ncol = std::max(ncol, r.size());
  std::vector<size_t> width(ncol, 0);
  std::vector<bool> right(ncol, rows.size() > 1);  // numeric columns align right
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t c = 0; c < rows[i].size(); ++c) {
      width[c] = std::max(width[c], rows[i][c].size());
      if (i > 0 && !is_numeric(rows[i][c])) right[c] = false;
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t c = 0; c < r.size(); ++c) {
      if (c) line += "  ";
      const size_t pad = width[c] - r[c].size();
      line += right[c] ? std::string(pad, ' ') + r[c] : r[c] + (c + 1 < r.size() ? std::string(pad, ' ') : "");
    }
    out += line + "\n";
  }
  return out;
}

std::string render_status(const json& st, const json* rates) {
  const json filters = st.value("filters", json::object());
  const json defaults = st.value("defaults", json::object());
  std::string out = fmt::format("generation {}, {} filter(s) (inbound {}, outbound {}) in {} sublayer(s)\n",
                                num(st, "generation"), num(filters, "total"), num(filters, "inbound"),
                                num(filters, "outbound"), num(st, "sublayers"));
  out += fmt::format("defaults: inbound {}, outbound {}\n", str(defaults, "inbound"), str(defaults, "outbound"));
  out += fmt::format("state file: {}\n\n", str(st, "state_file"));

  const json attachments = st.value("attachments", json::array());
  if (attachments.empty()) {
    out += "no interface attached (xfp attach DEV)\n";
  } else {
    std::vector<std::vector<std::string>> rows{{"DEVICE", "IFINDEX", "LAYERS", "XDP-MODE", "PUNT-CARRIER", "LOADER"}};
    for (const json& a : attachments)
      rows.push_back({str(a, "device"), num(a, "ifindex"), layers_text(a),
                      a.value("inbound", false) ? str(a, "xdp_mode", "-") : "-",
                      a.value("inbound", false) ? str(a, "punt_carrier", "-") : "-",
                      a.value("inbound", false) ? str(a, "loader", "-") : "-"});
    out += render_table(rows);
  }
  for (const json& m : st.value("missing", json::array()))
    out += fmt::format("not attached: {} is in the state file but does not exist\n", str(m, "device"));

  out += "\n";
  std::vector<std::vector<std::string>> rows{
      {"LAYER", "FRAMES", "BYTES", "PERMIT", "BLOCK", "DEFAULT", "MALFORMED", "CALLOUT-FAIL", "VETO", "PUNT",
       "OVL-PERMIT", "OVL-BLOCK"}};
  const json counters = st.value("counters", json::object());
  // Rows of one table: each layer's counters, then, with --watch, its rates.
  auto add_layer_rows = [&](std::vector<std::vector<std::string>>& table, const auto& keys) {
    for (const char* layer : {"inbound", "outbound"})
      table.push_back(counter_row(layer, counters.value(layer, json::object()), keys));
    if (rates)
      for (const char* layer : {"inbound", "outbound"})
        table.push_back(counter_row(std::string(layer) + "/s", rates->value(layer, json::object()), keys));
  };
  add_layer_rows(rows, kLayerCounterKeys);
  out += render_table(rows);
  if (offload_counted(counters)) {
    out += "\nflow-verdict offload (frames decided by an offloaded flow's verdict, before the filters):\n";
    std::vector<std::vector<std::string>> orows{
        {"LAYER", "OFFL-PERMIT", "OFFL-BLOCK", "OFFL-REDIRECT", "OFFL-MISS", "OFFL-STALE", "FIN-RST"}};
    add_layer_rows(orows, kOffloadCounterKeys);
    out += render_table(orows);
  }

  const json workers = st.value("workers", json::array());
  if (!workers.empty()) {
    out += "\ncallout workers (punted frames, decided in user space):\n";
    std::vector<std::vector<std::string>> wrows{
        {"DEVICE", "QUEUE", "FRAMES", "PERMIT", "BLOCK", "ABSORB", "DELIVER-FAIL", "IN-FLIGHT", "CAPACITY",
         "OVERLOAD", "RX-DROPPED", "RING-FULL", "FILL-EMPTY"}};
    for (const json& w : workers)
      wrows.push_back({str(w, "device"), num(w, "queue"), num(w, "frames"), num(w, "permit"), num(w, "block"),
                       num(w, "absorb"), num(w, "deliver_failed"), num(w, "in_flight"), num(w, "capacity"),
                       num(w, "overload"), num(w, "rx_dropped"), num(w, "rx_ring_full"), num(w, "fill_ring_empty")});
    out += render_table(wrows);
  }
  const json wd = st.value("watchdog", json());
  if (wd.is_object()) {
    if (num(wd, "budget_ms") == "0") {
      out += "\nclassify watchdog: off\n";
    } else {
      out += fmt::format("\nclassify watchdog: budget {} ms, {} trip(s)\n", num(wd, "budget_ms"), num(wd, "trips"));
      for (const json& c : wd.value("callouts", json::array()))
        out += fmt::format("  callout {} (id {}): {} trip(s), longest {} ms{}\n",
                           str(c, "key").empty() ? "?" : str(c, "key"), num(c, "id"), num(c, "trips"),
                           num(c, "longest_ms"),
                           c.value("quarantined", false) ? ", quarantined until its plugin is loaded again" : "");
      for (const json& s : wd.value("stuck", json::array()))
        out += fmt::format("  {} queue {}: in a classify of {} for {} ms (the queue is out of the XSKMAP)\n",
                           str(s, "device"), num(s, "queue"), str(s, "callout").empty() ? "?" : str(s, "callout"),
                           num(s, "ms"));
    }
  }
  return out;
}

std::string render_plugins(const json& plugins) {
  if (plugins.empty()) return "no callout plugin loaded (xfp callout load PATH)\n";
  std::vector<std::vector<std::string>> rows{{"PLUGIN", "CALLOUT", "ID", "FLAGS", "WATCHDOG", "PATH"}};
  for (const json& p : plugins)
    for (const json& c : p.value("callouts", json::array())) {
      std::string flags;
      for (const json& f : c.value("flags", json::array())) flags += (flags.empty() ? "" : ",") + f.get<std::string>();
      // The classify watchdog: trips, and whether the callout is quarantined.
      std::string watchdog = c.value("quarantined", false) ? "quarantined" : "-";
      if (c.value("watchdog_trips", 0) > 0) watchdog += fmt::format(" ({} trip(s))", num(c, "watchdog_trips"));
      rows.push_back({str(p, "name"), str(c, "key"), num(c, "id"), flags.empty() ? "-" : flags, watchdog,
                      str(p, "path")});
    }
  return render_table(rows);
}

std::string render_filter_list(const json& filters) {
  std::vector<std::vector<std::string>> rows{
      {"ID", "NAME", "LAYER", "SUBLAYER", "WEIGHT", "CONDITIONS", "ACTION", "FLAGS", "FRAMES", "BYTES"}};
  for (const json& f : filters) {
    const json counters = f.value("counters", json::object());
    std::string name = str(f, "name");
    rows.push_back({num(f, "id"), name.empty() ? "-" : name, str(f, "layer"), str(f, "sublayer"), num(f, "weight"),
                    conditions_text(f), action_text(f), flags_text(f), num(counters, "frames"),
                    num(counters, "bytes")});
  }
  return render_table(rows);
}

std::string render_filter(const json& reply) {
  const json f = reply.value("filter", json::object());
  const json counters = f.value("counters", json::object());
  std::vector<std::vector<std::string>> rows{
      {"id", num(f, "id")},
      {"name", str(f, "name").empty() ? "-" : str(f, "name")},
      {"layer", str(f, "layer")},
      {"sublayer", str(f, "sublayer")},
      {"weight", num(f, "weight")},
  };
  const json conditions = f.value("conditions", json::array());
  if (conditions.empty()) rows.push_back({"conditions", "any (matches every frame)"});
  for (size_t i = 0; i < conditions.size(); ++i) {
    const json& c = conditions[i];
    rows.push_back({i == 0 ? "conditions" : "", str(c, "field") + " " + str(c, "match") + " " + str(c, "value")});
  }
  rows.push_back({"action", action_text(f)});
  rows.push_back({"flags", flags_text(f)});
  rows.push_back({"context", num(f, "context")});
  if (!str(f, "description").empty()) rows.push_back({"description", str(f, "description")});
  rows.push_back({"frames", num(counters, "frames")});
  rows.push_back({"bytes", num(counters, "bytes")});
  // Key/value pairs, not a table: no header row, no numeric alignment.
  std::string out;
  for (const auto& r : rows) out += fmt::format("{:<12}{}\n", r[0], r[1]);
  return out + "as a command: " + str(reply, "line") + "\n";
}

std::string render_counters(const json& reply, const json* rates) {
  std::vector<std::vector<std::string>> rows{{"ID", "NAME", "LAYER", "FRAMES", "BYTES"}};
  if (rates) {
    rows[0].push_back("FRAMES/S");
    rows[0].push_back("BYTES/S");
  }
  for (const json& f : reply.value("filters", json::array())) {
    std::string name = str(f, "name");
    std::vector<std::string> row{num(f, "id"), name.empty() ? "-" : name, str(f, "layer"), num(f, "frames"),
                                 num(f, "bytes")};
    if (rates) {
      const json r = rates->value(num(f, "id"), json::object());
      row.push_back(num(r, "frames"));
      row.push_back(num(r, "bytes"));
    }
    rows.push_back(std::move(row));
  }
  return render_table(rows);
}

std::string render_sublayers(const json& reply) {
  std::vector<std::vector<std::string>> rows{{"NAME", "WEIGHT", "FILTERS"}};
  for (const json& s : reply.value("sublayers", json::array()))
    rows.push_back({str(s, "name"), num(s, "weight"), num(s, "filters")});
  return render_table(rows);
}

}  // namespace xfp::cli
