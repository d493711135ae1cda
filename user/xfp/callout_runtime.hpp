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
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
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
};

struct WorkerStatus {
  std::string ifname;
  uint32_t queue = 0;
  uint64_t frames = 0, permitted = 0, blocked = 0, absorbed = 0, deliver_failed = 0, rescanned = 0, bad_meta = 0;
  uint64_t rx_dropped = 0, rx_ring_full = 0, fill_ring_empty = 0;  // XDP_STATISTICS
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
};

}  // namespace xfp
