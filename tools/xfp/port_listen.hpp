// `xfp port listen`: a client of a message port (libxfp-client) that prints
// what the daemon's plugins send and answers it. port_listen.cpp.
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "cli.hpp"

namespace xfp::cli {

struct PortListenOptions {
  std::string name;                   // NAME, or a path when it has a '/'
  std::string dir = XFP_PORT_DEFAULT_DIR;
  std::string reply_text;             // --reply
  std::string reply_hex;              // --hex
  bool approve = false, deny = false;  // the mac_allowlist sample's verdict
  bool interactive = false;
  uint64_t count = 0;                 // 0: without end
  int64_t timeout_ms = -1;            // -1: wait without end
  std::string context;                // --context: the connect handler's bytes
};

// Adds `port` and `port listen` to the app; returns the `listen` subcommand.
CLI::App* add_port_commands(CLI::App& app, PortListenOptions& opts);
int cmd_port_listen(const Global& g, const PortListenOptions& opts);

}  // namespace xfp::cli
