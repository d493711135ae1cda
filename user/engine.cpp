#include "xfp/engine.hpp"

#include <net/if.h>

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace xfp {

namespace {

// A short name for a command in error messages: "filter add name x".
std::string describe(const Command& c) {
  switch (c.kind) {
    case Command::Kind::AddFilter:
      return c.filter.name.empty() ? "filter add" : "filter add name " + c.filter.name;
    case Command::Kind::DeleteFilter:
      return "filter delete " + c.ref;
    case Command::Kind::AddSublayer:
      return "sublayer add " + c.sublayer.name;
    case Command::Kind::DeleteSublayer:
      return "sublayer delete " + c.ref;
    case Command::Kind::Flush:
      return "flush";
    case Command::Kind::SetDefault:
      return fmt::format("default {} {}", layer_name(c.layer), action_name(c.default_action));
  }
  return "unknown command";
}

// Counter slot -> the filter that owns it.
std::map<uint32_t, uint64_t> slot_owners(const FilterSet& set) {
  std::map<uint32_t, uint64_t> owners;
  for (const Filter* f : set.filters())
    if (auto slot = set.slot_of(f->id)) owners[*slot] = f->id;
  return owners;
}

AttachOptions attach_options(const AttachRecord& r) {
  AttachOptions o;
  o.mode = r.mode;
  o.inbound = r.inbound;
  o.outbound = r.outbound;
  return o;
}

}  // namespace

Engine::Engine(StateStore store, std::unique_ptr<Datapath> datapath, const EngineOptions& options)
    : store_(std::move(store)), dp_(std::move(datapath)), options_(options) {
  if (options.callouts) callouts_ = std::make_unique<CalloutRuntime>(*dp_, options.callout);
}

// Compiles and installs a set, then hands the workers the matching snapshot
// (frames punted under the previous generation are classified anew).
Status Engine::install(const FilterSet& set) {
  auto compiled = callouts_ ? compile(set, options_.limits, callouts_->host().id_fn()) : compile(set, options_.limits);
  if (!compiled) return std::move(compiled).error().context("compiling the filter set");
  PolicySnapshotPtr snap;
  if (callouts_) {
    // The snapshot of the generation install() is about to make (it counts
    // up by one): offloaded flow verdicts the new set keeps are re-stamped
    // for it first, so that they stay valid across the bank flip.
    auto created = PolicySnapshot::create(set, *compiled, dp_->generation() + 1);
    if (!created) return std::move(created).error().context("the callout workers' view of the filter set");
    snap = std::move(*created);
    callouts_->prepare(*snap);
  }
  if (auto s = dp_->install(*compiled); !s) return std::move(s).error().context("installing the filter set");
  if (callouts_) callouts_->publish(std::move(snap));
  return Ok{};
}

Status Engine::start_workers(const std::string& ifname) {
  if (!callouts_) return Ok{};
  for (const Attachment& a : dp_->attachments())
    if (a.ifname == ifname) return callouts_->attach(a);
  return Ok{};
}

Result<PluginRecord> Engine::load_plugin(const std::string& path, const std::string& config) {
  if (!callouts_) return make_error(EOPNOTSUPP, "the daemon runs without callouts (--no-callouts)");
  auto rec = callouts_->host().load(path, config);
  if (!rec) return rec;
  tell_existing_filters(*rec);
  auto records = plugin_records_;
  records.push_back({rec->path, config});
  plugin_records_.swap(records);
  if (auto s = save(set_, records_); !s) {
    plugin_records_.swap(records);
    (void)callouts_->host().unload(rec->name);
    return std::move(s).error();
  }
  return rec;
}

// As WFP does at callout registration: the new callouts hear of the filters
// that already name them. A refusal cannot undo those filters; it is logged.
void Engine::tell_existing_filters(const PluginRecord& plugin) {
  for (const Filter* f : set_.filters()) {
    if (!is_callout(f->action)) continue;
    for (const CalloutRecord& c : plugin.callouts)
      if (c.key == f->callout)
        if (auto s = callouts_->host().notify(XFP_NOTIFY_FILTER_ADD, *f); !s)
          spdlog::warn("plugin {}: {} (the filter stays)", plugin.name, s.error().message);
  }
}

Status Engine::unload_plugin(const std::string& name) {
  if (!callouts_) return make_error(EOPNOTSUPP, "the daemon runs without callouts (--no-callouts)");
  std::string path;
  for (const PluginRecord& p : callouts_->host().list())
    if (p.name == name) path = p.path;
  if (path.empty()) return make_error(ENOENT, fmt::format("no plugin named '{}' is loaded", name));
  XFP_TRY(callouts_->host().unload(name));
  std::erase_if(plugin_records_, [&](const PluginLoadRecord& r) { return r.path == path; });
  return save(set_, records_);
}

std::vector<PluginRecord> Engine::plugins() const {
  return callouts_ ? callouts_->host().list() : std::vector<PluginRecord>{};
}

Result<std::unique_ptr<Engine>> Engine::open(StateStore store, std::unique_ptr<Datapath> datapath,
                                             const EngineOptions& options, std::vector<std::string>& warnings) {
  std::unique_ptr<Engine> engine(new Engine(std::move(store), std::move(datapath), options));
  auto saved = engine->store_.load();
  if (!saved) return std::move(saved).error();
  if (*saved) {
    XFP_TRY(engine->restore(**saved, warnings));
  } else {
    XFP_TRY(engine->install(engine->set_));
  }
  return engine;
}

Status Engine::restore(const SavedState& saved, std::vector<std::string>& warnings) {
  const std::string where = "restoring " + store_.path();
  FilterSet set;
  for (const Sublayer& s : saved.sublayers) {
    if (set.find_sublayer(s.name)) continue;  // "default" always exists
    if (auto r = set.add_sublayer(s); !r) return std::move(r).error().context(where + ": sublayer " + s.name);
  }
  set.set_default(Layer::Inbound, saved.defaults[XFP_LAYER_INBOUND]);
  set.set_default(Layer::Outbound, saved.defaults[XFP_LAYER_OUTBOUND]);
  for (const Filter& f : saved.filters) {
    if (auto r = set.add_filter(f); !r)
      return std::move(r).error().context(fmt::format("{}: filter {}", where, f.id));
  }
  set.reserve_ids_below(saved.next_filter_id);
  // Plugins first: the filters that name their callouts are served at once.
  for (const PluginLoadRecord& p : saved.plugins) {
    if (!callouts_) break;
    if (auto r = callouts_->host().load(p.path, p.config); !r)
      warnings.push_back(fmt::format("loading plugin '{}' failed: {}", p.path, r.error().message));
    plugin_records_.push_back(p);  // kept: a plugin that fails now may load at the next start
  }
  if (auto s = install(set); !s) return std::move(s).error().context(where);
  set_ = std::move(set);
  if (callouts_)
    for (const PluginRecord& p : callouts_->host().list()) tell_existing_filters(p);

  records_ = saved.attachments;
  for (const AttachRecord& r : records_) {
    if (::if_nametoindex(r.ifname.c_str()) == 0) {
      warnings.push_back(fmt::format(
          "interface '{}' from the state file does not exist; not attached (a restart attaches it "
          "once it exists; `xfp detach {}` forgets it)",
          r.ifname, r.ifname));
      continue;
    }
    if (auto s = dp_->attach(r.ifname, attach_options(r)); !s)
      warnings.push_back(fmt::format("re-attaching '{}' failed: {}", r.ifname, s.error().message));
    else if (auto w = start_workers(r.ifname); !w)
      warnings.push_back(fmt::format("'{}': callout workers did not start: {}", r.ifname, w.error().message));
  }
  return Ok{};
}

Status Engine::save(const FilterSet& set, const std::vector<AttachRecord>& records) const {
  SavedState s;
  s.sublayers = set.sublayers();
  s.defaults[XFP_LAYER_INBOUND] = set.default_action(Layer::Inbound);
  s.defaults[XFP_LAYER_OUTBOUND] = set.default_action(Layer::Outbound);
  for (const Filter* f : set.filters())
    if (f->flags & XFP_FILTER_PERSISTENT) s.filters.push_back(*f);
  s.attachments = records;
  s.next_filter_id = set.next_id();
  s.plugins = plugin_records_;
  if (auto r = store_.save(s); !r) return std::move(r).error().context("saving the state");
  return Ok{};
}

Result<TransactionResult> Engine::transaction(const std::vector<Command>& commands) {
  TransactionResult result;
  FilterSet next = set_;
  for (size_t i = 0; i < commands.size(); ++i) {
    const Command& c = commands[i];
    Status s;
    if (c.kind == Command::Kind::AddFilter) {
      auto id = next.add_filter(c.filter);
      if (id) result.added.push_back(*id);
      else s = std::move(id).error();
    } else {
      s = next.apply(c);
    }
    if (!s) {
      // A file's command names its line; a lone typed command needs no place.
      if (!c.origin.empty()) return std::move(s).error().context(fmt::format("{} ({})", c.origin, describe(c)));
      if (commands.size() == 1) return std::move(s).error();
      return std::move(s).error().context(fmt::format("command {} ({})", i + 1, describe(c)));
    }
  }

  // Callouts are told of their filters first; a refusal fails the transaction.
  std::vector<const Filter*> added, deleted;
  for (const Filter* f : next.filters())
    if (is_callout(f->action) && (!set_.find_id(f->id) || !(*set_.find_id(f->id) == *f))) added.push_back(f);
  for (const Filter* f : set_.filters())
    if (is_callout(f->action) && (!next.find_id(f->id) || !(*next.find_id(f->id) == *f))) deleted.push_back(f);
  if (callouts_)
    for (const Filter* f : added)
      if (auto s = callouts_->host().notify(XFP_NOTIFY_FILTER_ADD, *f); !s) return std::move(s).error();

  XFP_TRY(install(next));
  if (auto s = save(next, records_); !s) {
    // The new set is in the kernel but not on disk: put the old one back so
    // that what runs is what a restart would restore.
    if (auto back = install(set_); !back)
      spdlog::critical("rolling back after a failed save also failed: {}; the kernel runs a filter set "
                       "that is not saved",
                       back.error().message);
    return std::move(s).error();
  }

  // Counter slots that changed hands start from zero. The old set is out of
  // the kernel (install waited for the grace period), so nothing counts into
  // a freed slot any more.
  auto before = slot_owners(set_);
  auto after = slot_owners(next);
  auto reset = [&](uint32_t slot) {
    if (auto s = dp_->reset_filter_counters(slot); !s)
      spdlog::warn("resetting the counters of slot {}: {}", slot, s.error().message);
  };
  for (const auto& [slot, id] : before)
    if (auto it = after.find(slot); it == after.end() || it->second != id) reset(slot);
  for (const auto& [slot, id] : after)
    if (!before.count(slot)) reset(slot);

  if (callouts_)
    for (const Filter* f : deleted) (void)callouts_->host().notify(XFP_NOTIFY_FILTER_DELETE, *f);
  set_ = std::move(next);
  result.generation = dp_->generation();
  return result;
}

bool Engine::attached(const std::string& ifname) const {
  auto list = dp_->attachments();
  return std::any_of(list.begin(), list.end(), [&](const Attachment& a) { return a.ifname == ifname; });
}

Status Engine::attach(const AttachRecord& request) {
  if (::if_nametoindex(request.ifname.c_str()) == 0)
    return make_error(ENODEV, "unknown interface '" + request.ifname + "'");
  if (!request.inbound && !request.outbound) return make_error(EINVAL, "attach needs at least one layer");
  XFP_TRY(dp_->attach(request.ifname, attach_options(request)));
  if (auto w = start_workers(request.ifname); !w) {
    (void)dp_->detach(request.ifname);
    return std::move(w).error().context("starting the callout workers");
  }
  auto records = records_;
  std::erase_if(records, [&](const AttachRecord& r) { return r.ifname == request.ifname; });
  records.push_back(request);
  if (auto s = save(set_, records); !s) {
    for (const Attachment& a : dp_->attachments())
      if (a.ifname == request.ifname && callouts_) callouts_->detach(a.key);
    if (auto d = dp_->detach(request.ifname); !d)
      spdlog::error("detaching '{}' after a failed save: {}", request.ifname, d.error().message);
    return std::move(s).error();
  }
  records_ = std::move(records);
  return Ok{};
}

Status Engine::detach(const std::string& ifname) {
  const bool is_attached = attached(ifname);
  auto rec = std::find_if(records_.begin(), records_.end(), [&](const AttachRecord& r) { return r.ifname == ifname; });
  if (!is_attached && rec == records_.end()) return make_error(ENOENT, "'" + ifname + "' is not attached");
  const AttachRecord previous = rec != records_.end() ? *rec : AttachRecord{ifname};
  if (is_attached) {
    for (const Attachment& a : dp_->attachments())
      if (a.ifname == ifname && callouts_) callouts_->detach(a.key);
    XFP_TRY(dp_->detach(ifname));
  }
  auto records = records_;
  std::erase_if(records, [&](const AttachRecord& r) { return r.ifname == ifname; });
  if (auto s = save(set_, records); !s) {
    if (is_attached) {
      if (auto a = dp_->attach(ifname, attach_options(previous)); !a)
        spdlog::error("re-attaching '{}' after a failed save: {}", ifname, a.error().message);
      else if (auto w = start_workers(ifname); !w)
        spdlog::error("restarting the callout workers of '{}': {}", ifname, w.error().message);
    }
    return std::move(s).error();
  }
  records_ = std::move(records);
  return Ok{};
}

FilterCounters Engine::counters(uint64_t filter_id) const {
  auto slot = set_.slot_of(filter_id);
  return slot ? dp_->filter_counters(*slot) : FilterCounters{};
}

EngineStatus Engine::status() const {
  EngineStatus st;
  st.attachments = dp_->attachments();
  for (const AttachRecord& r : records_)
    if (std::none_of(st.attachments.begin(), st.attachments.end(),
                     [&](const Attachment& a) { return a.ifname == r.ifname; }))
      st.missing.push_back(r);
  st.generation = dp_->generation();
  for (const Filter* f : set_.filters()) ++st.filters[static_cast<int>(f->layer)];
  st.sublayers = set_.sublayers().size();
  for (int l = 0; l < XFP_LAYER_COUNT; ++l) {
    st.defaults[l] = set_.default_action(static_cast<Layer>(l));
    st.counters[l] = dp_->layer_counters(static_cast<Layer>(l));
  }
  st.state_file = store_.path();
  if (callouts_) st.workers = callouts_->workers();
  // Vetoes happen where callouts' verdicts are applied: in the workers, on
  // the inbound layer (the kernel's own veto counter never moves).
  for (const WorkerStatus& w : st.workers) st.counters[XFP_LAYER_INBOUND].c[XFP_CNT_VETO] += w.vetoed;
  return st;
}

}  // namespace xfp
