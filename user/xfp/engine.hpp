// The daemon's core: the policy (a FilterSet), the loaded fast path (a
// Datapath) and the state file (a StateStore), kept in step.
//
// A transaction copies the set, applies its commands to the copy, compiles
// it, installs it, saves the state, and only then commits the copy. On any
// error nothing changes: not the maps, not the set, not the file. If saving
// fails after the install, the previous set is installed again.
//
// Not thread-safe: the daemon calls it from its one control thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "xfp/callout_runtime.hpp"
#include "xfp/compiler.hpp"
#include "xfp/datapath.hpp"
#include "xfp/filter_set.hpp"
#include "xfp/filter_syntax.hpp"
#include "xfp/result.hpp"
#include "xfp/state_store.hpp"

namespace xfp {

struct EngineOptions {
  CompileLimits limits;
  bool callouts = true;  // run the callout path (workers, plugins)
  CalloutRuntimeOptions callout;
};

struct TransactionResult {
  uint64_t generation = 0;
  std::vector<uint64_t> added;  // ids of the filters the transaction added, in order
};

struct EngineStatus {
  std::vector<Attachment> attachments;
  std::vector<AttachRecord> missing;  // in the state but not attached (interface absent at restore)
  std::vector<WorkerStatus> workers;  // callout workers, one per attached queue
  uint64_t generation = 0;
  size_t filters[XFP_LAYER_COUNT] = {};
  size_t sublayers = 0;
  Action defaults[XFP_LAYER_COUNT] = {Action::Permit, Action::Permit};
  LayerCounters counters[XFP_LAYER_COUNT];
  std::string state_file;
};

class Engine {
 public:
  // Restores the saved state (when there is one): filters installed,
  // interfaces attached. A state that does not restore is an error (the
  // daemon refuses to start rather than drop policy); an interface that is
  // missing or does not attach is only a warning, appended to `warnings`.
  static Result<std::unique_ptr<Engine>> open(StateStore store, std::unique_ptr<Datapath> datapath,
                                              const EngineOptions& options,
                                              std::vector<std::string>& warnings);

  // All or nothing. With several commands, an error names the one that
  // failed: "command 3 (filter add name x): ...".
  Result<TransactionResult> transaction(const std::vector<Command>& commands);

  // Attach or detach an interface, and record it in the state so that a
  // restart re-attaches. Detaching an interface that is only recorded (it was
  // missing at restore) forgets it.
  Status attach(const AttachRecord& request);
  Status detach(const std::string& ifname);

  // Callout plugins: loaded into the daemon and recorded, so that a restart
  // loads them again.
  Result<PluginRecord> load_plugin(const std::string& path, const std::string& config);
  Status unload_plugin(const std::string& name);
  std::vector<PluginRecord> plugins() const;
  CalloutRuntime* callouts() { return callouts_.get(); }

  const FilterSet& filters() const { return set_; }
  FilterCounters counters(uint64_t filter_id) const;
  uint64_t generation() const { return dp_->generation(); }
  EngineStatus status() const;

 private:
  Engine(StateStore store, std::unique_ptr<Datapath> datapath, const EngineOptions& options);
  Status restore(const SavedState& saved, std::vector<std::string>& warnings);
  Status save(const FilterSet& set, const std::vector<AttachRecord>& records) const;
  bool attached(const std::string& ifname) const;
  Status install(const FilterSet& set);
  Status start_workers(const std::string& ifname);
  void tell_existing_filters(const PluginRecord& plugin);

  StateStore store_;
  std::unique_ptr<Datapath> dp_;
  EngineOptions options_;
  FilterSet set_;
  std::vector<AttachRecord> records_;
  std::vector<PluginLoadRecord> plugin_records_;
  std::unique_ptr<CalloutRuntime> callouts_;  // after dp_: stops before the datapath goes
};

}  // namespace xfp
