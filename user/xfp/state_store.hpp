// The daemon's state file: what a restart restores. It holds the sublayers,
// the per-layer default actions, the filters that carry the PERSISTENT flag
// (with their ids) and the interfaces to attach. Written atomically (temporary
// file, fsync, rename, fsync of the directory), so a crash at any moment
// leaves either the old file or the new one. A state directory is used by one
// daemon at a time (an flock on DIR/lock).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "xfp/datapath.hpp"
#include "xfp/filter.hpp"
#include "xfp/result.hpp"

namespace xfp {

std::string_view xdp_mode_name(XdpMode m);  // "auto", "native", "generic"
std::optional<XdpMode> xdp_mode_from_name(std::string_view s);

// An interface the user asked to attach, as asked (not as it ended up).
struct AttachRecord {
  std::string ifname;
  XdpMode mode = XdpMode::Auto;
  bool inbound = true;
  bool outbound = true;
  bool operator==(const AttachRecord&) const = default;
};

// A callout plugin to load again at restart.
struct PluginLoadRecord {
  std::string path;
  std::string config;
  bool operator==(const PluginLoadRecord&) const = default;
};

struct SavedState {
  std::vector<Sublayer> sublayers;
  Action defaults[XFP_LAYER_COUNT] = {Action::Permit, Action::Permit};
  std::vector<Filter> filters;  // persistent ones only, in id order
  std::vector<AttachRecord> attachments;
  uint64_t next_filter_id = 1;  // no filter id below it is handed out again
  std::vector<PluginLoadRecord> plugins;  // loaded callout plugins, in load order
};

inline constexpr int kStateFormatVersion = 1;

nlohmann::json state_to_json(const SavedState& s);
// `source` names the file in errors.
Result<SavedState> state_from_json(const nlohmann::json& j, const std::string& source);

class StateStore {
 public:
  // Creates the directory when missing and takes its lock; fails when
  // another daemon holds it.
  static Result<StateStore> open(const std::string& dir);
  StateStore(StateStore&& o) noexcept;
  StateStore& operator=(StateStore&& o) noexcept;
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;
  ~StateStore();

  const std::string& path() const { return path_; }  // DIR/state.json

  // nullopt when there is no state file yet. A file that cannot be read,
  // is not JSON, or has an unknown format version is an error naming it.
  Result<std::optional<SavedState>> load() const;
  Status save(const SavedState& s) const;
  // Renames the current file (if any) to DIR/state.json.old; returns that
  // path, or "" when there was nothing to move.
  Result<std::string> move_aside() const;

 private:
  StateStore(std::string dir, int lock_fd);
  std::string dir_;
  std::string path_;
  int lock_fd_ = -1;
};

}  // namespace xfp
