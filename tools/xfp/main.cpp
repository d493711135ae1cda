// `xfp`: the command line of the xfp filter engine, and its daemon.
// Subcommands in the manner of iproute2 and nft; each one's --help carries
// examples. This file only declares the command line; the work is in
// commands.cpp (client) and daemon.cpp.
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "port_listen.hpp"
#include "redirect.hpp"
#include "xfp/control.hpp"

namespace xfp::cli {

int fail(const std::string& message, int code) {
  std::cerr << "xfp: " << message << std::endl;
  return code;
}

namespace {

constexpr const char* kFilterLanguage = R"(

Filter language (the words after `filter add`, one filter per line in files):
  CONDITIONS   FIELD MATCH VALUE, repeated; different fields AND, same field OR
    fields     interface (name or index), compartment, local-mac, remote-mac,
               interface-mac, ethertype, vlan, inner-vlan, frame-length,
               l2-flags, local-addr-type, remote-addr-type
    matches    eq (==), ne (!=), gt (>), lt (<), ge (>=), le (<=), range,
               all-set, any-set, none-set (l2-flags), prefix (MACs)
  action permit|block|callout-terminating|callout-inspection|callout-unknown
  name NAME  layer inbound|outbound  sublayer NAME  weight N  callout KEY
  flags persistent,disabled,clear-action-right,permit-if-callout-unregistered
  context N  description TEXT
)";

// Options that every subcommand accepts (CLI11 hands unknown options of a
// subcommand to its parent: `xfp filter list --json` works).
void global_options(CLI::App& app, Global& g) {
  const char* env = std::getenv("XFP_SOCKET");
  g.socket = env && *env ? env : control::kDefaultSocket;
  app.add_option("--socket", g.socket, "control socket of the daemon (env XFP_SOCKET)")
      ->default_str(control::kDefaultSocket)
      ->type_name("PATH");
  app.add_flag("--json", g.json, "machine-readable output (the daemon's JSON reply)");
}

// `filter add` takes the rest of the line as the filter, so the global
// options given after it arrive among its words: they are taken out here
// (not where a name or description is expected, which may be any word).
std::vector<std::string> take_global_options(std::vector<std::string> words, Global& g) {
  std::vector<std::string> filter;
  for (size_t i = 0; i < words.size(); ++i) {
    const bool is_value = !filter.empty() && (filter.back() == "name" || filter.back() == "description");
    if (!is_value && words[i] == "--json") {
      g.json = true;
    } else if (!is_value && words[i] == "--socket" && i + 1 < words.size()) {
      g.socket = words[++i];
    } else if (!is_value && words[i].rfind("--socket=", 0) == 0) {
      g.socket = words[i].substr(9);
    } else {
      filter.push_back(std::move(words[i]));
    }
  }
  return filter;
}

std::optional<double> watch_value(CLI::Option* opt, const std::string& text) {
  if (opt->count() == 0) return std::nullopt;
  if (text.empty()) return 1.0;
  return std::stod(text);
}

void add_watch(CLI::App* sub, std::string& text) {
  sub->add_option("--watch", text, "redraw every SECONDS (default 1) until Ctrl-C, with per-second rates")
      ->expected(0, 1)
      ->type_name("[SECONDS]")
      ->check(CLI::Range(0.1, 86400.0).description(""));
}

}  // namespace

int main_cli(int argc, char** argv) {
  CLI::App app{"xfp: the Windows Filtering Platform's layer-2 filter model on Linux.\n"
               "Filters classify Ethernet frames on attached interfaces: XDP for the inbound\n"
               "layer, TC egress for the outbound layer. `xfp daemon` owns the BPF programs;\n"
               "the other commands talk to it over its control socket.",
               "xfp"};
  app.set_version_flag("--version", kVersion);
  app.require_subcommand(0, 1);
  app.fallthrough();
  app.footer(R"(Examples:
  xfp daemon &                       start the daemon (as root)
  xfp attach veth0                   classify frames of veth0, both layers
  xfp filter add name no-arp ethertype eq arp action block
  xfp filter list
  xfp apply policy.xfp               a filter file, all or nothing
  xfp callout load plugin.so         serve a callout key in user space
  xfp port listen approver --interactive   answer a plugin's questions
  xfp status --watch                 counters and rates, until Ctrl-C

Exit status: 0 success, 1 error (from the daemon, or it cannot be reached),
2 usage error (command line or filter text; nothing was sent).)");

  Global g;
  global_options(app, g);
  std::string apply_file;
  app.add_option("-f,--file", apply_file, "same as `xfp apply FILE`")->type_name("FILE");

  // daemon
  DaemonOptions dopts;
  auto* daemon = app.add_subcommand("daemon", "run the xfp daemon in the foreground");
  daemon->add_option("--state-dir", dopts.state_dir, "where the policy is saved (state.json)")->capture_default_str();
  daemon->add_option("--max-entries", dopts.max_entries,
                     "rows of the kernel's filter tables, for the running set and the one being installed: a "
                     "set may use half (a filter takes one row, or several when its ranges expand into "
                     "prefixes). Allocated at start-up: about 180 bytes a row, plus 8 MB")
      ->capture_default_str()
      ->check(CLI::Range(2u, 1u << 24));
  daemon->add_flag("--reset-state", dopts.reset_state,
                   "start with an empty policy; the old state file is kept as state.json.old");
  daemon->add_flag("!--no-callouts", dopts.callouts,
                   "no callout workers or plugins: callout filters apply their fail action in the kernel");
  daemon->add_flag("--busy-poll", dopts.busy_poll,
                   "callout workers spin on their rings (lower latency, a core each) instead of sleeping");
  daemon->add_option("--overload", dopts.overload,
                     "what the kernel does with a frame to punt while its queue's worker has fallen behind (its "
                     "socket full): fail-action = the callout filter's own fail action, as when no daemon runs "
                     "(the default: each filter's author chose it); fail-open = permit; fail-closed = block. "
                     "Counted as overload_permit / overload_block, never dropped silently")
      ->check(CLI::IsMember({"fail-action", "fail-open", "fail-closed"}))
      ->capture_default_str();
  daemon->add_option("--punt-carrier", dopts.punt_carrier,
                     "how a frame punted to a callout carries xfp's 32-byte header to the worker: metadata = "
                     "the XDP metadata area (bpf_xdp_adjust_meta); in-band = pushed in front of the frame "
                     "(bpf_xdp_adjust_head) and stripped by the worker; auto = metadata where the kernel lets "
                     "XDP programs use it, in band elsewhere (the daemon logs its probe at start). Under metadata a "
                     "frame whose room the driver refuses still goes in band. status: PUNT-CARRIER")
      ->check(CLI::IsMember({"auto", "metadata", "in-band"}))
      ->capture_default_str();
  daemon->add_option("--max-flows", dopts.max_flows,
                     "flows the daemon tracks at most (about 134 bytes each with one context); beyond it the "
                     "least recently seen flow is evicted and its callouts' flow_delete run")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1u << 26));
  daemon->add_option("--flow-idle-timeout", dopts.flow_idle_timeout,
                     "a flow without frames for this long ends (flow_delete runs); offloaded flows count "
                     "the kernel's frames")
      ->capture_default_str()
      ->type_name("SECONDS")
      ->check(CLI::Range(0.05, 86400.0 * 7));
  daemon->add_option("--classify-budget-ms", dopts.classify_budget_ms,
                     "the watchdog's budget for one plugin classify call: a call that runs longer quarantines "
                     "its callout (its filters take their fail action in the kernel until its plugin is loaded "
                     "again) and takes the worker's queue out of the XSKMAP until the call returns; 0 = no "
                     "watchdog")
      ->capture_default_str()
      ->type_name("MS")
      ->check(CLI::Range(0u, 3600u * 1000u));
  daemon->add_option("--port-dir", dopts.port_dir, "where plugins' message ports are made (sockets DIR/NAME)")
      ->capture_default_str();
  daemon->add_option("--port-group", dopts.port_group,
                     "a group (name or gid) whose members may connect to message ports (default: root only)");
  daemon->add_option("--group", dopts.group,
                     "a group (name or gid) whose members may use the control socket (mode 0660; default: "
                     "root only, mode 0600)")
      ->type_name("GROUP");
  daemon->add_option("--plugin-dir", dopts.plugin_dirs,
                     "a directory callout plugins may be loaded from (repeatable; it, the plugin file and every "
                     "directory above must be root's and not writable by others)")
      ->capture_default_str()
      ->type_name("DIR");
  daemon->add_flag("--keep-caps", dopts.keep_caps,
                   "keep every capability (by default the daemon drops all but cap_bpf, cap_net_admin, "
                   "cap_net_raw, cap_sys_admin and cap_ipc_lock once set up, and cap_chown with --port-group)");
  daemon->footer(R"(The daemon loads the BPF programs, restores the saved policy (filters marked
persistent, sublayers, defaults, attached interfaces), then serves the control
socket until SIGINT or SIGTERM, when it detaches what it attached and exits 0.
A state file that cannot be read stops the start (no policy is silently dropped);
--reset-state starts empty instead. Logs go to stderr.

The control socket is root's (mode 0600), or root's and --group's (0660);
other clients are refused. Plugins load only from --plugin-dir directories
owned by root and writable by nobody else. Once set up, the daemon keeps only
cap_bpf, cap_net_admin, cap_net_raw, cap_sys_admin and cap_ipc_lock (and
cap_chown with --port-group; --keep-caps keeps all).

Examples:
  xfp daemon
  xfp daemon --socket /tmp/xfp.sock --state-dir /tmp/xfp-state
  xfp daemon --group xfp --plugin-dir /usr/lib/xfp/plugins --plugin-dir /opt/xfp/plugins
  xfp daemon --reset-state

Callouts: for every attached interface the daemon binds one AF_XDP socket and
worker per receive queue; frames whose filter names a callout of a loaded
plugin (`xfp callout load`) are punted there, decided in user space, and
permitted frames are delivered into the host stack as if received on the
interface. While no worker serves a callout (daemon stopped or killed, plugin
unloaded), its filters apply their fail action in the kernel.

Overload: the kernel counts the frames it punts to each queue's socket and
the worker says how many it has taken back; when the socket's rings are full
(a slow callout, a flood), further frames are not punted but decided by
--overload and counted (status: OVL-PERMIT / OVL-BLOCK). The default,
fail-action, is the rule that holds when no daemon runs: a filter marked
permit-if-callout-unregistered fails open, any other fails closed. A global
fail-open would let a flood past security callouts; a global fail-closed would
turn a slow monitoring callout into an outage.

Message ports: plugins may make ports (Unix sockets in --port-dir, mode 0660,
for root or members of --port-group) to ask user-mode programs; see
`xfp port listen --help`. Stopping the daemon releases a plugin thread waiting
in port_send with XFP_STATUS_SHUTTING_DOWN.)");

  // attach / detach
  std::string dev, mode = "auto", layers = "both";
  auto* attach = app.add_subcommand("attach", "attach the classifier to an interface");
  attach->add_option("DEV", dev, "interface name")->required();
  attach->add_option("--mode", mode, "XDP mode: auto tries native, then generic")
      ->check(CLI::IsMember({"auto", "native", "generic"}))
      ->capture_default_str();
  attach->add_option("--layers", layers, "inbound (XDP), outbound (TC egress) or both")
      ->check(CLI::IsMember({"inbound", "outbound", "both"}))
      ->capture_default_str();
  attach->footer(R"(The attachment is saved: a restarted daemon attaches DEV again.

Examples:
  xfp attach veth0
  xfp attach eth1 --mode generic --layers inbound)");

  auto* detach = app.add_subcommand("detach", "detach the classifier from an interface");
  detach->add_option("DEV", dev, "interface name")->required();
  detach->footer("Example:\n  xfp detach veth0");

  // filter
  auto* filter = app.add_subcommand("filter", "add, delete, list and show filters");
  filter->require_subcommand(1);
  filter->footer(std::string("Examples:\n"
                             "  xfp filter add name lab-oui remote-mac prefix 02:00:5e:00:00:00/24 action block\n"
                             "  xfp filter list --layer inbound\n"
                             "  xfp filter show lab-oui\n"
                             "  xfp filter delete lab-oui") +
                 kFilterLanguage);
  std::vector<std::string> words;
  auto* fadd = filter->add_subcommand("add", "add a filter (the rest of the line is the filter)");
  fadd->prefix_command();
  fadd->fallthrough(false);  // the words stay with `add`, none go up as unknown options
  fadd->footer(std::string(R"(Everything after `add` is the filter, in the filter language below, but for
--json and --socket, which may also come after it. Interface names are
resolved here, in the caller's network namespace.

Examples:
  xfp filter add name no-arp ethertype eq arp action block
  xfp filter add layer outbound vlan range 100-199 vlan eq 300 action block flags persistent
  xfp filter add sublayer audit weight 10 l2-flags any-set malformed action block)") +
                 kFilterLanguage);
  std::string ref;
  auto* fdel = filter->add_subcommand("delete", "delete a filter by id or name");
  fdel->add_option("ID|NAME", ref, "filter id or name")->required();
  fdel->footer("Examples:\n  xfp filter delete 7\n  xfp filter delete no-arp");
  std::string list_layer;
  auto* flist = filter->add_subcommand("list", "list filters with their counters");
  flist->add_option("--layer", list_layer, "only this layer")->check(CLI::IsMember({"inbound", "outbound"}));
  flist->footer("Examples:\n  xfp filter list\n  xfp filter list --layer outbound --json");
  auto* fshow = filter->add_subcommand("show", "show one filter in full");
  fshow->add_option("ID|NAME", ref, "filter id or name")->required();
  fshow->footer("Example:\n  xfp filter show no-arp");

  // sublayer
  auto* sublayer = app.add_subcommand("sublayer", "add, delete and list sublayers");
  sublayer->require_subcommand(1);
  sublayer->footer(R"(Every sublayer is evaluated (highest weight first); inside one, filters are
tried by weight until one permits or blocks. Block overrides permit.

Examples:
  xfp sublayer add audit weight 100
  xfp sublayer delete audit
  xfp sublayer list)");
  std::vector<std::string> sl_words;
  auto* sadd = sublayer->add_subcommand("add", "add a sublayer");
  sadd->add_option("words", sl_words, "the sublayer's name, the word weight, its weight 0-65535")
      ->required()
      ->type_name("NAME weight N");
  sadd->footer("Example:\n  xfp sublayer add audit weight 100");
  std::string sl_name;
  auto* sdel = sublayer->add_subcommand("delete", "delete a sublayer (it must hold no filter)");
  sdel->add_option("NAME", sl_name, "sublayer name")->required();
  sdel->footer("Example:\n  xfp sublayer delete audit");
  auto* slist = sublayer->add_subcommand("list", "list sublayers");
  slist->footer("Example:\n  xfp sublayer list");

  // default
  std::string def_layer, def_action;
  auto* deflt = app.add_subcommand("default", "set a layer's action when no filter decides");
  deflt->add_option("LAYER", def_layer, "inbound or outbound")->required()->check(CLI::IsMember({"inbound", "outbound"}));
  deflt->add_option("ACTION", def_action, "permit or block")->required()->check(CLI::IsMember({"permit", "block"}));
  deflt->footer("Examples:\n  xfp default inbound block\n  xfp default outbound permit");

  // apply / flush
  std::string file;
  auto* apply = app.add_subcommand("apply", "apply a filter file as one transaction");
  apply->add_option("FILE", file, "the file, or - for standard input")->required();
  apply->footer(R"(One command per line: filter add ..., filter delete ID|NAME,
sublayer add NAME weight N, sublayer delete NAME, default LAYER ACTION, flush.
`#` starts a comment. The file is checked here first (errors name FILE:LINE),
then sent as one transaction: every command applies, or none does.

Examples:
  xfp apply policy.xfp
  xfp -f policy.xfp
  echo 'filter add ethertype eq lldp action block' | xfp apply -)");
  auto* flush = app.add_subcommand("flush", "delete every filter and every sublayer but default");
  flush->footer("Example:\n  xfp flush");

  // callout
  std::string plugin_path, plugin_config, plugin_name;
  auto* callout = app.add_subcommand("callout", "load, unload and list callout plugins");
  callout->require_subcommand(1);
  auto* cload = callout->add_subcommand("load", "load a callout plugin (a shared library) into the daemon");
  cload->add_option("PATH", plugin_path, "the plugin's .so file")->required();
  cload->add_option("--config", plugin_config, "text handed to the plugin's init (its README says what it takes)")
      ->type_name("TEXT");
  cload->footer(R"(The daemon checks the plugin's ABI version and hooks, calls its init, and
serves its callouts from then on: filters naming them are punted to user space.
The load is saved: a restarted daemon loads the plugin again.

Examples:
  xfp callout load /usr/lib/xfp/plugins/libxfp_pcap_capture.so --config file=/tmp/cap.pcap
  xfp filter add remote-mac eq 02:00:00:00:00:01 action callout-inspection callout xfp.sample.pcap)");
  auto* cunload = callout->add_subcommand("unload", "unload a plugin by name (its filters fall back to their fail action)");
  cunload->add_option("NAME", plugin_name, "the plugin's name, as `xfp callout list` shows it")->required();
  cunload->footer(R"(Its callouts stop being served at once: their filters apply their fail action
in the kernel until a plugin serving the key is loaded again. Handles the
plugin left are destroyed. The unload is saved: a restarted daemon does not
load the plugin again.

Example:
  xfp callout unload mac_allowlist)");
  auto* clist = callout->add_subcommand("list", "list loaded plugins and their callouts");
  clist->footer(R"(For each plugin: its name, its callouts (key, id, flags), the classify
watchdog's record of each (trips, quarantined) and the file it came from.

Examples:
  xfp callout list
  xfp --json callout list)");
  callout->footer(R"(A callout is a plugin (a shared library with the C ABI of include/xfp/callout.h)
that classifies, in the daemon, the frames of filters whose action is
callout-terminating, callout-inspection or callout-unknown with its key. While
no loaded plugin serves a key, its filters apply their fail action in the kernel.

Examples:
  xfp callout load build/plugins/libxfp_mac_allowlist.so --config allow=02:00:00:00:02:02
  xfp callout list
  xfp callout unload mac_allowlist)");

  // flows
  size_t flows_limit = 0;
  auto* flows = app.add_subcommand("flows", "the flows the daemon tracks: keys, contexts, offloaded verdicts");
  flows->add_option("--limit", flows_limit, "show at most N flows (the most recently seen of each shard first)")
      ->type_name("N");
  flows->footer(R"(A flow is the frames of one conversation (interface, VLAN, MAC pair, EtherType,
IP protocol, addresses and ports; both directions). The daemon tracks the flows
of frames punted to callouts: a callout may associate a context with a flow
(flow_delete runs when the flow ends: idle timeout, TCP FIN or RST, eviction,
detach, unload, shutdown) and offload the flow's verdict to the kernel.
Columns: AGE since the first frame, IDLE since the last (offloaded flows: the
kernel's last frame), CONTEXTS callout=context, OFFLOAD layer, verdict and the
kernel's counters.

Examples:
  xfp flows
  xfp flows --limit 20
  xfp flows --json)");

  // status / counters
  std::string watch_text;
  auto* status = app.add_subcommand("status", "attachments, generation, filter counts, layer counters");
  add_watch(status, watch_text);
  status->footer(R"(Layer counters: FRAMES and BYTES classified; PERMIT and BLOCK final verdicts;
DEFAULT frames no filter decided; MALFORMED frames with the malformed L2 flag;
CALLOUT-FAIL frames whose callout was absent (the filter's fail action applied);
VETO callout blocks that overrode a hard permit; PUNT frames sent to a callout in
user space (their verdicts are the workers' PERMIT, BLOCK and ABSORB);
OVL-PERMIT and OVL-BLOCK punted frames whose queue's worker had fallen behind
(socket full), decided by the daemon's --overload policy instead.
Flow-verdict offload (a table shown once it has counted): OFFL-PERMIT, OFFL-BLOCK
and OFFL-REDIRECT frames an offloaded flow's verdict decided before the filters;
OFFL-MISS frames looked up and classified (no flow or no entry); OFFL-STALE
entries of an older policy, ignored; FIN-RST TCP ends, classified.
Workers: IN-FLIGHT frames punted and not yet taken back, of at most CAPACITY;
OVERLOAD frames the queue's guard kept from the socket; RX-DROPPED, RING-FULL
and FILL-EMPTY the socket's own XDP_STATISTICS drops (0 while the guard works).

Examples:
  xfp status
  xfp status --watch          redraw every second
  xfp status --watch 5 --json one JSON document per sample)");
  // port (port_listen.cpp)
  PortListenOptions port_listen;
  auto* plisten = add_port_commands(app, port_listen);
  // redirect (redirect.cpp)
  RedirectCliOptions redirect_opts;
  auto* redirect = add_redirect_commands(app, redirect_opts);

  auto* counters = app.add_subcommand("counters", "per-filter frame and byte counters");
  add_watch(counters, watch_text);
  counters->footer("Examples:\n  xfp counters\n  xfp counters --watch 2");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(std::string(e.what()) + " (see xfp --help)", kExitUsage);
  }
  // -f is a whole command of its own: with another one, one of the two
  // would be dropped without a word.
  if (!apply_file.empty() && !app.get_subcommands().empty())
    return fail("-f/--file cannot be combined with '" + app.get_subcommands().front()->get_name() +
                    "' (run `xfp apply FILE` and the command one after the other)",
                kExitUsage);

  if (*daemon) {
    dopts.socket = g.socket;
    return run_daemon(dopts);
  }
  if (*attach) return cmd_attach(g, dev, mode, layers);
  if (*detach) return cmd_detach(g, dev);
  if (*fadd) {
    words = take_global_options(fadd->remaining(), g);
    if (words.empty()) return fail("'filter add' needs a filter (see xfp filter add --help)", kExitUsage);
    return cmd_filter_add(g, words);
  }
  if (*fdel) return cmd_filter_delete(g, ref);
  if (*flist) return cmd_filter_list(g, list_layer);
  if (*fshow) return cmd_filter_show(g, ref);
  if (*sadd) {
    std::vector<std::string> w{"sublayer", "add"};
    w.insert(w.end(), sl_words.begin(), sl_words.end());
    return cmd_policy(g, w);
  }
  if (*sdel) return cmd_policy(g, {"sublayer", "delete", sl_name});
  if (*slist) return cmd_sublayer_list(g);
  if (*deflt) return cmd_policy(g, {"default", def_layer, def_action});
  if (*flush) return cmd_policy(g, {"flush"});
  if (*apply) return cmd_apply(g, file);
  if (*cload) return cmd_callout_load(g, plugin_path, plugin_config);
  if (*cunload) return cmd_callout_unload(g, plugin_name);
  if (*clist) return cmd_callout_list(g);
  if (*flows) return cmd_flows(g, flows_limit);
  if (*plisten) return cmd_port_listen(g, port_listen);
  if (*redirect) return cmd_redirect(g, redirect_opts);
  if (*status) return cmd_status(g, watch_value(status->get_option("--watch"), watch_text));
  if (*counters) return cmd_counters(g, watch_value(counters->get_option("--watch"), watch_text));
  if (!apply_file.empty()) return cmd_apply(g, apply_file);
  return fail("a command is needed (see xfp --help)", kExitUsage);
}

}  // namespace xfp::cli

int main(int argc, char** argv) { return xfp::cli::main_cli(argc, argv); }
