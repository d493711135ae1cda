// `xfp daemon`: restore the state, serve the control socket until SIGINT or
// SIGTERM, then detach what was attached and exit 0.
#include <linux/capability.h>
#include <grp.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli.hpp"
#include "xfp/control.hpp"
#include "xfp/least_privilege.hpp"
#include "xfp/plugin_policy.hpp"

namespace xfp::cli {

namespace {

void setup_logging() {
  auto logger = spdlog::stderr_color_mt("xfp");
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e xfp[%P] %l: %v");
  spdlog::set_default_logger(logger);
  spdlog::flush_on(spdlog::level::info);
}

// SIGINT and SIGTERM become readable events on a signalfd, which the
// server's poll loop watches; SIGPIPE is ignored (sockets use MSG_NOSIGNAL,
// this covers everything else).
Result<int> stop_signals() {
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return errno_error("sigprocmask");
  int fd = ::signalfd(-1, &set, SFD_CLOEXEC);
  if (fd < 0) return errno_error("signalfd");
  return fd;
}

// --port-group: a group name or a numeric gid.
Result<gid_t> resolve_port_group(const std::string& name) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(name.c_str(), &end, 10);
  if (!name.empty() && std::isdigit(static_cast<unsigned char>(name[0])) && *end == '\0' && errno == 0)
    return static_cast<gid_t>(v);
  std::vector<char> buf(16384);
  group g{};
  group* found = nullptr;
  int rc = ::getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found);
  if (rc != 0 || found == nullptr)
    return make_error(rc ? rc : ENOENT, "--port-group " + name + ": no such group" +
                                            (rc ? std::string(" (") + std::strerror(rc) + ")" : ""));
  return found->gr_gid;
}

}  // namespace

int run_daemon(const DaemonOptions& opts) {
  setup_logging();
  // Whatever the daemon creates (state files, libxdp's pins under a bpffs,
  // plugins' output) is for root alone unless it says otherwise.
  ::umask(077);
  auto sigfd = stop_signals();
  if (!sigfd) return fail(sigfd.error());
  std::optional<gid_t> control_group;
  if (!opts.group.empty()) {
    auto gid = resolve_group(opts.group, "--group");
    if (!gid) return fail(gid.error(), kExitUsage);
    control_group = *gid;
  }

  // The socket first: a second daemon on the same socket stops here, before
  // it loads anything. Connections wait in the backlog until serve().
  control::Server::Options so;
  so.path = opts.socket;
  so.group = control_group;
  auto server = control::Server::listen(so);
  if (!server) return fail(server.error());

  auto store = StateStore::open(opts.state_dir);
  if (!store) return fail(store.error());
  if (opts.reset_state) {
    auto moved = store->move_aside();
    if (!moved) return fail(moved.error());
    if (moved->empty()) spdlog::info("--reset-state: no state file in {}; starting empty", opts.state_dir);
    else spdlog::warn("--reset-state: moved the previous state to {}; starting empty", *moved);
  }

  DatapathOptions dpo;
  dpo.max_entries = opts.max_entries;
  dpo.carrier = punt_carrier_from_name(opts.punt_carrier).value_or(PuntCarrier::Auto);
  auto datapath = Datapath::open(dpo);
  if (!datapath) return fail(std::move(datapath).error().context("loading the BPF programs"));
  spdlog::info("kernel: bpf_xdp_adjust_meta for XDP {}; punt header carried {} ({})",
               (*datapath)->metadata_available() ? "available" : "refused",
               (*datapath)->carrier() == PuntCarrier::Metadata ? "in the XDP metadata area" : "in band",
               dpo.carrier == PuntCarrier::Auto ? "auto" : "--punt-carrier");

  EngineOptions eo;
  eo.limits.max_entries = dpo.set_capacity();
  eo.callouts = opts.callouts;
  eo.callout.worker.busy_poll = opts.busy_poll;
  eo.callout.overload = opts.overload == "fail-open"     ? OverloadPolicy::FailOpen
                        : opts.overload == "fail-closed" ? OverloadPolicy::FailClosed
                                                         : OverloadPolicy::FailAction;
  eo.callout.classify_budget_ms = opts.classify_budget_ms;
  eo.callout.plugins = PluginPolicy::directories(opts.plugin_dirs);
  for (const auto& dir : opts.plugin_dirs)
    if (auto st = check_plugin_dir(dir); !st)
      spdlog::warn("no plugin will load from {}: {}", dir, st.error().message);
  eo.callout.flows.max_flows = opts.max_flows;
  eo.callout.flows.idle_timeout_ns = static_cast<uint64_t>(opts.flow_idle_timeout * 1e9);
  eo.callout.ports.dir = opts.port_dir;
  if (!opts.port_group.empty()) {
    auto gid = resolve_port_group(opts.port_group);
    if (!gid) return fail(gid.error(), kExitUsage);
    eo.callout.ports.group = *gid;
  }
  std::vector<std::string> warnings;
  auto engine = Engine::open(std::move(*store), std::move(*datapath), eo, warnings);
  if (!engine) return fail(engine.error());
  for (const auto& w : warnings) spdlog::warn("{}", w);
  // Set up: from here on the daemon needs only what attach, detach, map
  // updates and the callout workers need (least_privilege.cpp says which).
  if (!opts.keep_caps) {
    CapMask keep = daemon_capabilities();
    // A plugin's port is created after the drop and handed to --port-group,
    // which root is not necessarily in: that chown needs CAP_CHOWN.
    if (!opts.port_group.empty()) keep |= cap_bit(CAP_CHOWN);
    if (const char* env = std::getenv("XFP_DAEMON_CAPS"); env) {  // for measuring which are needed
      auto parsed = parse_cap_names(env);
      if (!parsed) return fail(std::move(parsed).error().context("XFP_DAEMON_CAPS"), kExitUsage);
      keep = *parsed;
    }
    if (auto st = limit_capabilities(keep); !st) return fail(std::move(st).error().context("dropping capabilities"));
  }
  if (auto caps = current_capabilities(); caps)
    spdlog::info("capabilities: {}{}", caps->effective ? cap_names(caps->effective) : "none",
                 opts.keep_caps ? " (--keep-caps)" : "");

  Engine& e = **engine;
  EngineStatus st = e.status();
  spdlog::info("xfp {} listening on {}; state {}; {} filter(s), {} interface(s) attached", kVersion,
               opts.socket, st.state_file, e.filters().size(), st.attachments.size());

  auto served = (*server)->serve([&](const nlohmann::json& req) { return handle_request(e, req); }, *sigfd);
  if (!served) {
    spdlog::error("control socket: {}", served.error().message);
    return kExitError;
  }
  signalfd_siginfo info{};
  if (::read(*sigfd, &info, sizeof info) == static_cast<ssize_t>(sizeof info))
    spdlog::info("SIG{} received: detaching and exiting", ::sigabbrev_np(static_cast<int>(info.ssi_signo)));
  server->reset();  // no new requests while detaching
  engine->reset();  // the Datapath detaches everything it attached
  ::close(*sigfd);
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace xfp::cli
