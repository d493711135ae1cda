// The plugin directory policy (see plugin_policy.hpp for what and why).
#include "xfp/plugin_policy.hpp"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

namespace xfp {

namespace {

std::string mode_text(mode_t m) { return fmt::format("{:04o}", static_cast<unsigned>(m & 07777)); }

Result<std::string> real_path(const std::string& path) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) return errno_error(path);
  return std::string(buf);
}

// Owned by root, not writable by group or others. `what` names the object
// in the message ("the plugin file", "the plugin directory", ...).
Status trusted(const std::string& path, const struct stat& st, const char* what, bool sticky_ok) {
  if (st.st_uid != 0)
    return make_error(EACCES, fmt::format("{} {} is owned by uid {}, not by root", what, path, st.st_uid));
  const bool sticky = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX);
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(sticky_ok && sticky))
    return make_error(EACCES, fmt::format("{} {} is writable by group or others (mode {})", what, path,
                                          mode_text(st.st_mode)));
  return Ok{};
}

// `dir` is a resolved directory: it and every directory above it.
Status check_dir_chain(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return errno_error("plugin directory " + dir);
  if (!S_ISDIR(st.st_mode)) return make_error(ENOTDIR, "plugin directory " + dir + " is not a directory");
  XFP_TRY(trusted(dir, st, "the plugin directory", /*sticky_ok=*/false));
  for (auto p = std::filesystem::path(dir).parent_path();; p = p.parent_path()) {
    if (::stat(p.c_str(), &st) != 0) return errno_error(p.string());
    XFP_TRY(trusted(p.string(), st, "the directory", /*sticky_ok=*/true));
    if (p == p.root_path()) break;
  }
  return Ok{};
}

std::string dir_list(const PluginPolicy& policy) {
  if (policy.dirs.empty()) return "none configured";
  std::string s;
  for (const auto& d : policy.dirs) s += (s.empty() ? "" : ", ") + d;
  return s;
}

}  // namespace

Status check_plugin_dir(const std::string& dir) {
  auto real = real_path(dir);
  if (!real) return std::move(real).error().context("plugin directory");
  return check_dir_chain(*real);
}

Result<std::string> check_plugin_path(const PluginPolicy& policy, const std::string& path) {
  if (!policy.enforce) {
    std::error_code ec;
    std::string absolute = std::filesystem::absolute(path, ec).lexically_normal().string();
    if (ec) return make_error(ec.value(), path + ": " + ec.message());
    return absolute;
  }
  auto refused = [&](Error e) {
    e.message = path + ": refused by the plugin policy: " + e.message;
    return e;
  };
  auto real = real_path(path);
  if (!real) return std::move(real).error();  // "PATH: No such file or directory"
  struct stat st {};
  if (::stat(real->c_str(), &st) != 0) return errno_error(path);
  if (!S_ISREG(st.st_mode)) return make_error(EINVAL, path + ": not a regular file");

  const std::string parent = std::filesystem::path(*real).parent_path().string();
  bool listed = false;
  for (const auto& d : policy.dirs) {
    auto rd = real_path(d);
    if (rd && *rd == parent) listed = true;
  }
  if (!listed) {
    std::string where = *real == path ? "it" : "its real path " + *real;
    return refused(make_error(EACCES, fmt::format("{} is not in a plugin directory ({}; see xfp daemon --plugin-dir)",
                                                  where, dir_list(policy))));
  }
  if (auto s = trusted(*real, st, "the plugin file", false); !s) return refused(std::move(s).error());
  if (auto s = check_dir_chain(parent); !s) return refused(std::move(s).error());
  return *real;
}

}  // namespace xfp
