// `xfp redirect`: redirect records as an inspection proxy sees them
// (query, set) and the daemon's list of flows with records. redirect.cpp.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "cli.hpp"

namespace xfp::cli {

struct RedirectCliOptions {
  CLI::App* query = nullptr;
  CLI::App* set = nullptr;
  CLI::App* list = nullptr;
  std::string frame_hex;
  std::string records_hex;
  bool context = false;
  std::optional<size_t> size;
  size_t limit = 0;
};

// Adds `redirect` and its subcommands; returns `redirect`.
CLI::App* add_redirect_commands(CLI::App& app, RedirectCliOptions& opts);
int cmd_redirect(const Global& g, const RedirectCliOptions& opts);
// The daemon's ops redirect.query, redirect.set, redirect.list.
Result<nlohmann::json> op_redirect(Engine& engine, const nlohmann::json& request);

}  // namespace xfp::cli
