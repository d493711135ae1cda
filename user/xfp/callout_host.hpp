// The callout host: loads callout plugins (include/xfp/callout.h), keeps the
// registry of their callouts, and hands the workers a cheap way to call them.
//
// Loading checks the library (a regular file, dlopen, the xfp_plugin symbol,
// the ABI version and descriptor size, a name, an init function, a name not
// yet loaded), calls init, which registers callouts through the host's
// function table, and only when everything succeeded publishes the callouts
// (acquire() finds them) and marks them served (on_served). Any failure rolls
// everything back: nothing stays registered, fini runs if init succeeded, the
// library is closed. Error messages start with the plugin file's path.
//
// Callout ids: each key gets an id in 1..XFP_MAX_CALLOUTS-1 on first sight
// (a filter may name a callout before its plugin loads), kept for the life
// of the host, so that compiled filters and the kernel's xfp_callouts_v1 map
// agree across unloads and reloads. id_of is the compiler's CalloutIdFn.
//
// Threads: load, unload, list, notify and the setters run on the daemon's
// control thread (they are serialised by a lock, so other threads may call
// them too). acquire() runs on the workers, lock-free; see CalloutSlot for
// how unload waits for the calls in flight.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "xfp/callout.h"
#include "xfp/compiler.hpp"
#include "xfp/filter.hpp"
#include "xfp/flow_service.hpp"
#include "xfp/injection_service.hpp"
#include "xfp/plugin_policy.hpp"
#include "xfp/port_service.hpp"
#include "xfp/redirect_service.hpp"
#include "xfp/result.hpp"

namespace xfp {

struct CalloutRecord {
  std::string key;
  uint16_t id = 0;
  uint32_t flags = 0;  // enum xfp_callout_flag
  std::string description;
};

struct PluginRecord {
  std::string name;
  std::string description;
  std::string path;  // absolute
  uint32_t abi_version = 0;
  std::vector<CalloutRecord> callouts;  // in registration order
};

class Plugin;  // a loaded plugin (callout_host.cpp)

// One registered callout: the plugin's hooks and copies of its strings.
// Immutable while published.
struct RegisteredCallout {
  std::string key;
  std::string description;
  uint32_t flags = 0;
  uint16_t id = 0;
  xfp_classify_fn classify = nullptr;
  xfp_notify_fn notify = nullptr;
  xfp_flow_delete_fn flow_delete = nullptr;
  void* context = nullptr;
  Plugin* plugin = nullptr;
};

// How workers and unload meet, per callout id. The scheme (a reader count
// per slot, Dekker style):
//  - a reader first increments `readers`, then loads `live`; if that is null
//    it decrements again and has nothing; otherwise it may call the callout's
//    hooks until it decrements `readers` (CalloutRef's destructor);
//  - unload first stores null in `live`, then waits until `readers` is 0.
// Both sides use sequentially consistent operations, so either the reader
// sees null or unload sees its count: no call can start after `live` was
// cleared and no call is still running when the wait ends, and the release
// decrement makes the call's effects visible to fini. The slots are never
// freed, so a reader may touch one whatever unload does. The cost is two
// atomic read-modify-writes per acquire, on one cache line per callout that
// all workers share: cheap next to a batch of frames, and with no worker
// registration (a per-worker epoch scheme would avoid the shared line but
// make every worker announce itself). A callout whose classify hangs makes
// unload wait (with a warning in the log every few seconds).
struct alignas(64) CalloutSlot {
  std::atomic<const RegisteredCallout*> live{nullptr};
  std::atomic<uint32_t> readers{0};
};

// A callout in use: while it exists, the plugin is not finalised. Hold it for
// a batch of frames, not longer (unload waits for it). Move-only.
class CalloutRef {
 public:
  CalloutRef() = default;
  CalloutRef(const CalloutRef&) = delete;
  CalloutRef& operator=(const CalloutRef&) = delete;
  CalloutRef(CalloutRef&& other) noexcept : slot_(other.slot_), callout_(other.callout_) {
    other.slot_ = nullptr;
    other.callout_ = nullptr;
  }
  CalloutRef& operator=(CalloutRef&& other) noexcept {
    if (this != &other) {
      reset();
      slot_ = other.slot_;
      callout_ = other.callout_;
      other.slot_ = nullptr;
      other.callout_ = nullptr;
    }
    return *this;
  }
  ~CalloutRef() { reset(); }

  explicit operator bool() const { return callout_ != nullptr; }
  const RegisteredCallout* operator->() const { return callout_; }
  const RegisteredCallout& operator*() const { return *callout_; }

  void classify(const xfp_filter_info* filter, xfp_classify_item* items, uint32_t count) const {
    callout_->classify(callout_->context, filter, items, count);
  }
  // Only for callouts with a flow_delete hook (CONDITIONAL_ON_FLOW ones have one).
  void flow_delete(uint8_t layer, uint64_t flow_handle, uint64_t flow_context) const {
    if (callout_->flow_delete) callout_->flow_delete(callout_->context, layer, flow_handle, flow_context);
  }

  void reset() noexcept {
    if (slot_) slot_->readers.fetch_sub(1, std::memory_order_release);
    slot_ = nullptr;
    callout_ = nullptr;
  }

 private:
  friend class CalloutHost;
  CalloutRef(CalloutSlot* slot, const RegisteredCallout* callout) : slot_(slot), callout_(callout) {}
  CalloutSlot* slot_ = nullptr;
  const RegisteredCallout* callout_ = nullptr;
};

// The filter as a callout sees it. The strings point into `filter`: the
// result is valid while `filter` is alive and unchanged.
xfp_filter_info to_filter_info(const Filter& filter);

// The loader's checks of a plugin's descriptor (ABI version, size, a valid
// name, an init function) and of a callout given to register_callout (key,
// flags, hooks), without the host's state (a name or key already taken).
// The error's message is the part after "<path>: " in load()'s errors.
Status check_plugin_info(const xfp_plugin_info& info);
Status check_callout(const xfp_callout* callout);

class CalloutHost {
 public:
  // Writes the kernel's xfp_callouts_v1 entry of a callout id.
  using ServedFn = std::function<Status(uint16_t id, bool served)>;
  // The attachment id of an attached interface by name, 0 if none.
  using IfaceResolver = std::function<uint32_t(const std::string& ifname)>;

  // The host's function table has functions without a host argument
  // (inject_*, injection_state, injection_handle_destroy, iface_by_name):
  // they reach the most recently constructed host of the process (the daemon
  // has one).
  CalloutHost();
  ~CalloutHost();  // unloads every plugin, last loaded first
  CalloutHost(const CalloutHost&) = delete;
  CalloutHost& operator=(const CalloutHost&) = delete;

  // Loads the plugin at `path` with its configuration text ("" for none).
  Result<PluginRecord> load(const std::string& path, const std::string& config = "");
  // Unserves the plugin's callouts, waits for the calls in flight, calls fini,
  // destroys the injection handles it still owns, closes the library. An
  // error from on_served is returned after the unload has completed anyway.
  Status unload(const std::string& plugin_name);
  // Unloads every plugin, last loaded first (what the destructor does). An
  // owner whose members the plugins' unload still needs (an InjectionService
  // that holds the host, say) calls it first thing in its own destructor.
  // Returns the first error; every plugin is unloaded anyway.
  Status unload_all();
  std::vector<PluginRecord> list() const;

  // The id of a callout key (assigned on first sight); 0, with an error in the
  // log, when all ids are taken.
  uint16_t id_of(const std::string& key);
  CalloutIdFn id_fn() {
    return [this](const std::string& key) { return id_of(key); };
  }

  // Set these before loading plugins. on_served is called with true for each
  // callout of a plugin that loads and false for each callout of one that
  // unloads (or whose load is rolled back after the true); a load fails when
  // it fails. Without one, nothing is told.
  void set_on_served(ServedFn on_served);
  // Not owned; must outlive the host's plugins (see unload_all). Without one, creating a
  // handle fails with -EOPNOTSUPP and injecting with XFP_STATUS_NOT_READY.
  void set_injection_service(InjectionService* service);
  void set_iface_resolver(IfaceResolver resolver);
  // Not owned; must outlive the host's plugins. Without one, the ABI's flow
  // functions return -EOPNOTSUPP.
  void set_flow_service(FlowService* service);
  // Not owned; must outlive the host's plugins. Without one, the ABI's
  // redirect functions return -EOPNOTSUPP (redirect_state: NOT_REDIRECTED).
  void set_redirect_service(RedirectService* service);
  // Not owned; must outlive the host's plugins. Without one, port_create
  // returns -EOPNOTSUPP.
  void set_port_service(PortService* service);
  // Where plugins may be loaded from (plugin_policy.hpp); load() refuses any
  // other file with the reason. Default: not enforced (the daemon sets one).
  void set_plugin_policy(PluginPolicy policy) {
    std::lock_guard lock(control_mutex_);
    plugin_policy_ = std::move(policy);
  }

  // The callout with this id, if a loaded plugin serves it. Lock-free.
  CalloutRef acquire(uint16_t id) noexcept {
    if (id == 0 || id >= XFP_MAX_CALLOUTS) return {};
    CalloutSlot& slot = slots_[id];
    slot.readers.fetch_add(1, std::memory_order_seq_cst);
    const RegisteredCallout* callout = slot.live.load(std::memory_order_seq_cst);
    if (!callout) {
      slot.readers.fetch_sub(1, std::memory_order_release);
      return {};
    }
    return CalloutRef(&slot, callout);
  }

  // Tells the callout that `filter` names that a filter is being added or was
  // deleted. A refused add is an error (the transaction must fail): its code is
  // the plugin's errno, its message names the callout and the filter and
  // carries the plugin's last error log line. Filters that name no callout, or
  // one that is not loaded, are accepted without a call.
  Status notify(xfp_notify_type type, const Filter& filter);

  // The function table handed to plugins (the same for every plugin).
  static const xfp_host_api& api();

 private:
  friend struct HostApiCalls;  // the C functions of the table (callout_host.cpp)

  int register_callout(Plugin& plugin, const xfp_callout* callout, uint32_t* callout_id);
  // Takes a plugin's callouts out of service and undoes its load: unserve
  // (those marked served), unpublish, wait for the readers, fini (if init
  // succeeded), destroy its injection handles. The library closes when the
  // Plugin is destroyed. Returns the first on_served error.
  Status retire(Plugin& plugin, size_t served);
  uint16_t find_id(const std::string& key) const;
  const Plugin* owner_of_key(const std::string& key, const Plugin& loading) const;

  std::unique_ptr<CalloutSlot[]> slots_;

  // Serialises load, unload, list and the setters. Recursive: a plugin's init
  // calls register_callout on the loading thread, which holds it already.
  mutable std::recursive_mutex control_mutex_;
  std::vector<std::unique_ptr<Plugin>> plugins_;  // load order
  Plugin* loading_ = nullptr;                     // whose init is running
  ServedFn on_served_;
  std::atomic<InjectionService*> injection_{nullptr};
  std::atomic<FlowService*> flows_{nullptr};
  std::atomic<PortService*> ports_{nullptr};
  PluginPolicy plugin_policy_;
  std::atomic<RedirectService*> redirects_{nullptr};

  mutable std::mutex resolver_mutex_;
  IfaceResolver iface_resolver_;

  mutable std::mutex ids_mutex_;  // a leaf lock: nothing is called while it is held
  std::unordered_map<std::string, uint16_t> ids_;
  std::set<std::string> ids_refused_;  // keys already logged as refused for want of ids
  uint16_t next_id_ = 1;
};

}  // namespace xfp
