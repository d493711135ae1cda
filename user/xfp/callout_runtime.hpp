// The user-space half of the callout path, as the daemon runs it: the
// callout host (plugins), one AF_XDP socket and worker per queue of every
// attached interface, the receive-injection veth of each namespace, the
// injector, and the policy snapshot the workers evaluate with.
//
// attach() must run on a thread inside the interface's network namespace
// (the daemon's control thread, as Datapath::attach does): sockets and the
// injection veth are made there.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "xfp/callout_host.hpp"
#include "xfp/datapath.hpp"
#include "xfp/flow_offloads.hpp"
#include "xfp/flow_service_impl.hpp"
#include "xfp/injection_service.hpp"
#include "xfp/injector.hpp"
#include "xfp/policy_snapshot.hpp"
#include "xfp/port_service_impl.hpp"
#include "xfp/punt_worker.hpp"
#include "xfp/redirect_store.hpp"
#include "xfp/reinject_link.hpp"
#include "xfp/tx_port.hpp"
#include "xfp/xsk.hpp"

namespace xfp {

struct CalloutRuntimeOptions {
  WorkerOptions worker;
  XskOptions socket;
  uint32_t max_queues = XFP_MAX_QUEUES;  // workers per interface at most
  FlowTableOptions flows;                // the flow table (xfp daemon --max-flows, --flow-idle-timeout)
  PortServiceOptions ports;              // the plugins' message ports (xfp daemon --port-dir, --port-group)
  PluginPolicy plugins;                  // where plugins may load from (default: anywhere; xfp daemon --plugin-dir)
  RedirectOptions redirects;             // redirect records (bounds, idle timeout)
  // What the kernel does with a frame to punt while the queue's socket is
  // full (xfp daemon --overload): the guard keeps the rings from overflowing.
  OverloadPolicy overload = OverloadPolicy::FailAction;
  // The classify watchdog (xfp daemon --classify-budget-ms): a classify call
  // that runs longer than this quarantines its callout. 0: no watchdog.
  uint32_t classify_budget_ms = 250;
};

// The watchdog's view (CalloutRuntime::watchdog()).
struct CalloutWatchStatus {
  uint16_t id = 0;
  std::string key;           // "" if its plugin had gone when it tripped
  uint64_t trips = 0;        // classify calls that overran the budget
  uint64_t longest_ms = 0;   // the longest such call seen (so far, if one still runs)
  bool quarantined = false;  // served=0 in the kernel until its plugin loads again
};
struct StuckWorkerStatus {
  std::string ifname;
  uint32_t queue = 0;
  uint16_t callout_id = 0;
  std::string callout;
  uint64_t ms = 0;  // how long the call has run (at least)
};
struct WatchdogStatus {
  uint32_t budget_ms = 0;  // 0: off
  uint64_t trips = 0;
  std::vector<CalloutWatchStatus> callouts;  // those that ever tripped, by id
  std::vector<StuckWorkerStatus> stuck;      // workers in a call past the budget now
};

struct WorkerStatus {
  std::string ifname;
  uint32_t queue = 0;
  uint64_t frames = 0, permitted = 0, blocked = 0, absorbed = 0, deliver_failed = 0, rescanned = 0, bad_meta = 0;
  uint64_t vetoed = 0;  // a callout's block overrode a hard permit
  // The socket's XDP_STATISTICS: frames the kernel dropped at this socket
  // (rx_dropped, of which fill_ring_empty, and rx_ring_full); descriptors
  // it refused (rx/tx_invalid); transmit attempts on an empty tx ring.
  uint64_t rx_dropped = 0, rx_ring_full = 0, fill_ring_empty = 0;
  uint64_t rx_invalid = 0, tx_invalid = 0, tx_ring_empty = 0;
  // The overload guard (abi.h, xfp_xsk_load): frames punted and not yet
  // given back, the most that may be, and the frames it kept from the socket.
  uint64_t in_flight = 0, capacity = 0, overloaded = 0;
};

class CalloutRuntime final : public CalloutCaller, public InjectionService {
 public:
  CalloutRuntime(Datapath& datapath, const CalloutRuntimeOptions& options = {});
  ~CalloutRuntime() override;

  CalloutHost& host() { return host_; }
  Injector& injector() { return injector_; }
  FlowServiceImpl& flows() { return *flows_; }
  MessagePortService& ports() { return *ports_; }
  RedirectStore& redirects() { return *redirects_; }

  // Starts the workers of an attached interface (inbound layer only).
  Status attach(const Attachment& attachment);
  void detach(uint32_t key);

  // Before the snapshot's generation is installed: offloaded flow verdicts
  // the new policy keeps are re-stamped for it (FlowServiceImpl).
  void prepare(const PolicySnapshot& next) { flows_->prepare_generation(next); }
  // After: the workers use it; offloaded verdicts it did not keep go.
  void publish(PolicySnapshotPtr snapshot) {
    const uint64_t generation = snapshot ? snapshot->generation() : 0;
    std::atomic_store(&snapshot_, std::move(snapshot));
    flows_->generation_installed(generation);
  }
  PolicySnapshotPtr snapshot() const { return std::atomic_load(&snapshot_); }

  std::vector<WorkerStatus> workers() const;
  WatchdogStatus watchdog() const;
  bool quarantined(uint16_t callout_id) const {
    return callout_id < XFP_MAX_CALLOUTS && quarantined_[callout_id].load(std::memory_order_relaxed);
  }

  // CalloutCaller
  bool classify(const Filter& filter, xfp_classify_item* items, uint32_t count) override;
  bool batch_capable(const Filter& filter) override;

  // InjectionService
  int create_handle(const std::string& plugin, uint32_t type, xfp_injection_handle** handle) noexcept override;
  void destroy_handle(xfp_injection_handle* handle) noexcept override;
  int inject_receive(xfp_injection_handle* handle, uint32_t iface, xfp_frame* frames, uint64_t inject_context,
                     xfp_inject_complete_fn complete, void* completion_ctx) noexcept override;
  int inject_send(xfp_injection_handle* handle, uint32_t iface, xfp_frame* frames, uint64_t inject_context,
                  xfp_inject_complete_fn complete, void* completion_ctx) noexcept override;
  xfp_injection_state injection_state(const xfp_injection_handle* handle, const xfp_classify_item* item,
                                      uint64_t* inject_context) noexcept override;
  void destroy_all_of(const std::string& plugin) noexcept override;

 private:
  struct Namespace {
    std::unique_ptr<ReinjectLink> link;
    std::unique_ptr<XskSocket> socket;  // transmit-only, on the link's end A
    std::unique_ptr<TxPort> port;
    size_t users = 0;
  };
  struct Interface {
    Attachment attachment;
    std::vector<std::unique_ptr<XskSocket>> sockets;  // one per queue
    std::unique_ptr<TxPort> send_port;                 // queue 0's transmit side
    std::vector<std::unique_ptr<PuntWorker>> workers;
  };
  int inject(xfp_injection_handle* h, Injector::Path path, uint32_t iface, xfp_frame* frames, uint64_t ctx,
             xfp_inject_complete_fn complete, void* cctx) noexcept;
  void stop_interface(Interface& itf);

  // The classify watchdog (docs/RELIABILITY.md, "Plugins that crash or
  // hang"). One entry per worker, added once its socket is bound, removed
  // before it is unbound and joined; a thread samples the workers' stamps
  // every budget/4. A call whose stamp stays for the budget trips it: the
  // callout is quarantined (user space stops calling it, the kernel stops
  // punting to it: its filters take their fail action), and the worker's
  // socket leaves xfp_xsks_v1 until the call returns, so that the other
  // callouts on that queue take their fail action in the kernel instead of
  // piling up in a ring nobody drains.
  struct Watched {
    uint32_t key = 0, queue = 0;
    std::string ifname;
    int xsk_fd = -1;
    const ClassifyStamp* stamp = nullptr;
    uint64_t last = 0;  // the stamp at the last sample
    std::chrono::steady_clock::time_point since;  // when `last` was first seen
    bool stuck = false;  // tripped on `last`; the socket is unbound
  };
  struct CalloutWatch {
    std::string key;
    uint64_t trips = 0, longest_ms = 0;
  };
  void watchdog_loop();
  void watch_tick(std::chrono::steady_clock::time_point now);
  void unwatch(uint32_t key);

  Datapath& dp_;
  CalloutRuntimeOptions options_;
  Injector injector_;
  // Before host_: the plugins' ports outlive the plugins (see ~CalloutRuntime).
  std::unique_ptr<MessagePortService> ports_;
  // Before host_ too: unloading a plugin destroys its redirect handles here.
  std::unique_ptr<RedirectStore> redirects_;
  CalloutHost host_;
  // Flows: the destructor ends them and unloads the plugins (whose
  // retire_callout runs here) before the members go.
  std::unique_ptr<DatapathOffloads> offloads_;  // the kernel's offload map, for flows_
  std::unique_ptr<FlowServiceImpl> flows_;
  PolicySnapshotPtr snapshot_;
  mutable std::mutex mu_;  // interfaces_, namespaces_
  std::map<uint32_t, Interface> interfaces_;  // by attachment key
  std::map<uint32_t, Namespace> namespaces_;  // by compartment
  std::mutex owners_mu_;
  std::set<std::string> owners_;  // interned plugin names: stable owner pointers
  // Absorbed frames that had been injected before: their origin, so that
  // re-injecting them keeps the chain (PREVIOUSLY_INJECTED_BY_SELF).
  std::mutex absorbed_mu_;
  std::unordered_map<const xfp_frame*, InjectionOrigin> absorbed_origins_;

  // By callout id: set by the watchdog, cleared when a plugin serves the id
  // again (a load). One relaxed load per classify call.
  std::unique_ptr<std::atomic<uint8_t>[]> quarantined_;
  mutable std::mutex watch_mu_;  // after mu_ when both are held
  std::condition_variable watch_cv_;
  bool watch_stop_ = false;
  std::vector<Watched> watched_;
  std::map<uint16_t, CalloutWatch> callout_watch_;
  uint64_t trips_ = 0;
  std::thread watchdog_;
};

}  // namespace xfp
