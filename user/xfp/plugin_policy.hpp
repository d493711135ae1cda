// Where the daemon may load callout plugins from.
//
// A plugin runs inside the daemon, with the daemon's privileges, so loading
// one is as strong as being root: the path comes from a control request or
// from state.json, and the policy makes sure that only a file root put in a
// place only root can change is loaded. With the policy enforced:
//  - the file's real path (symbolic links resolved) must be directly inside
//    one of the configured plugin directories (themselves resolved);
//  - the file is a regular file owned by root, not writable by group or others;
//  - the directory is owned by root and not writable by group or others;
//  - every directory above it up to / is owned by root and not writable by
//    group or others, unless it is sticky (/tmp: others cannot rename or
//    remove root's entries there).
// Then nobody but root can replace the file between this check and dlopen(),
// so the check is not racy in any way that matters.
//
// The default-constructed policy is not enforced: CalloutHost used alone
// (unit tests, benches) trusts its caller. `xfp daemon` always enforces one
// (--plugin-dir, default /usr/lib/xfp/plugins).
#pragma once

#include <string>
#include <vector>

#include "xfp/result.hpp"

namespace xfp {

inline constexpr const char* kDefaultPluginDir = "/usr/lib/xfp/plugins";

struct PluginPolicy {
  bool enforce = false;
  std::vector<std::string> dirs;  // plugin directories, as configured

  static PluginPolicy directories(std::vector<std::string> dirs) { return PluginPolicy{true, std::move(dirs)}; }
};

// Checks `path` against the policy. Returns the file's real path (what to
// dlopen), or EACCES/ENOENT/... with a message that names the path and the
// reason ("... is not in a plugin directory (...)", "... is writable by group
// or others (mode 0775)"). A policy that is not enforced returns the
// absolute, normalised path unchanged (no symlink resolution).
Result<std::string> check_plugin_path(const PluginPolicy& policy, const std::string& path);

// The checks of one configured directory alone (the daemon runs them at
// start-up to warn about a directory that would refuse every plugin).
Status check_plugin_dir(const std::string& dir);

}  // namespace xfp
