// Pieces of the `xfp` tool shared between its source files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "xfp/engine.hpp"
#include "xfp/result.hpp"

namespace xfp::cli {

inline constexpr const char* kVersion = "0.1.0";

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // the daemon refused, or it could not be reached, or I/O failed
inline constexpr int kExitUsage = 2;  // the command line or policy text is wrong; nothing was sent

// Prints "xfp: <message>" to stderr and returns `code`.
int fail(const std::string& message, int code);
inline int fail(const Error& e, int code = kExitError) { return fail(e.message, code); }

// ---- daemon side (daemon.cpp, service.cpp) ----------------------------------

struct DaemonOptions {
  std::string socket;
  std::string state_dir = "/var/lib/xfp";
  uint32_t max_entries = 1u << 18;  // --max-entries: rows of the entry table, both banks
  bool reset_state = false;
  bool callouts = true;   // --no-callouts: no workers, callout filters on their fail action
  bool busy_poll = false; // workers spin instead of sleeping in poll()
  std::string punt_carrier = "auto";  // --punt-carrier: auto, metadata, in-band
  std::string overload = "fail-action";  // --overload: a queue's socket full (fail-action, fail-open, fail-closed)
  std::string group;      // --group: members may use the control socket (mode 0660)
  std::vector<std::string> plugin_dirs{"/usr/lib/xfp/plugins"};  // --plugin-dir: where plugins may load from
  bool keep_caps = false; // --keep-caps: do not drop capabilities after start-up
  uint32_t max_flows = 262144;         // --max-flows: flow table bound (LRU eviction beyond)
  double flow_idle_timeout = 120.0;    // --flow-idle-timeout SECONDS
  uint32_t classify_budget_ms = 250;   // --classify-budget-ms: the hung-classify watchdog (0 = off)
  std::string port_dir = XFP_PORT_DEFAULT_DIR;  // the plugins' message port sockets
  std::string port_group;                       // a group whose members may connect to them ("" = root only)
};
int run_daemon(const DaemonOptions& opts);

// Answers one control request; never throws.
nlohmann::json handle_request(Engine& engine, const nlohmann::json& request);
// The "flows" op (flows.cpp).
Result<nlohmann::json> op_flows(Engine& engine, const nlohmann::json& request);

// ---- client side (commands.cpp, render.cpp) ---------------------------------

struct Global {
  std::string socket;
  bool json = false;
};

// One request to the daemon; errors are already "cannot reach ..." or the daemon's.
Result<nlohmann::json> request(const Global& g, const nlohmann::json& req);

int cmd_attach(const Global& g, const std::string& dev, const std::string& mode, const std::string& layers);
int cmd_detach(const Global& g, const std::string& dev);
int cmd_filter_add(const Global& g, const std::vector<std::string>& words);
int cmd_filter_delete(const Global& g, const std::string& ref);
int cmd_filter_list(const Global& g, const std::string& layer);
int cmd_filter_show(const Global& g, const std::string& ref);
// `words` is a whole command of the filter language ("sublayer add x weight 5").
int cmd_policy(const Global& g, const std::vector<std::string>& words);
int cmd_sublayer_list(const Global& g);
int cmd_apply(const Global& g, const std::string& file);
int cmd_status(const Global& g, std::optional<double> watch_seconds);
int cmd_counters(const Global& g, std::optional<double> watch_seconds);
int cmd_callout_load(const Global& g, const std::string& path, const std::string& config);
int cmd_callout_unload(const Global& g, const std::string& name);
int cmd_callout_list(const Global& g);
int cmd_flows(const Global& g, size_t limit);  // limit 0: all

// Rendering (render.cpp). `rates` (per second) is given in --watch mode.
std::string render_table(const std::vector<std::vector<std::string>>& rows);  // first row: headers
std::string render_status(const nlohmann::json& status, const nlohmann::json* rates);
std::string render_filter_list(const nlohmann::json& filters);
std::string render_filter(const nlohmann::json& filter);
std::string render_counters(const nlohmann::json& counters, const nlohmann::json* rates);
std::string render_sublayers(const nlohmann::json& sublayers);
std::string render_plugins(const nlohmann::json& plugins);

}  // namespace xfp::cli
