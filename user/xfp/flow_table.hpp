// The daemon's flow table: the flows that punted frames belong to, and the
// callouts' contexts on them (FwpsFlowAssociateContext0 and friends).
//
// A flow is named by its 64-bit handle (include/xfp/flow_key.h, carried in
// xfp_punt_meta.flow) and keeps its key, when it was first and last seen,
// whether a classify on it is in progress, and the contexts, one per
// (layer, callout). WFP's rules, as the table enforces them:
//  - one context per flow, layer and callout; many callouts per flow;
//    associating over an existing context fails with -EEXIST;
//  - removing a context delivers flow_delete for it: when the frame whose
//    classify is in progress on that flow has been classified, otherwise
//    from the delivery thread (never from inside remove itself);
//  - every way a flow ends delivers flow_delete exactly once per context:
//    idle timeout, TCP FIN or RST, LRU eviction (the table is bounded),
//    the interface detached, the callout retired (its plugin unloads), and
//    end_all (the daemon stops).
//
// Memory is bounded: at most max_flows flows, split evenly over the shards,
// each shard evicting its own least recently used flow when full (so the
// LRU order is per shard; handles are hashes, so shards fill evenly). A
// flow costs kBytesPerFlow plus 16 bytes per context (see memory_bytes()).
//
// Threads: workers (begin/context/end per frame), plugin threads
// (associate/remove), the service's sweeper (expire, flush) and the control
// thread (end_iface, retire_callout, list) all call in at once. Each shard
// has its own mutex, held for a hash lookup and a few stores; nothing calls
// a plugin while holding it: ends are collected under the lock and
// delivered to the FlowDeleteSink after it is released.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "xfp/abi.h"

namespace xfp {

enum class FlowEndReason : uint8_t {
  Removed = 0,   // remove_context (the flow goes on)
  Idle = 1,      // no frame for the idle timeout
  TcpFin = 2,
  TcpRst = 3,
  Evicted = 4,   // the table was full: least recently used
  Detached = 5,  // its interface was detached
  Unloaded = 6,  // the callout's plugin unloaded (retire_callout)
  Shutdown = 7,  // end_all
  Count = 8,
};
const char* flow_end_reason_name(FlowEndReason reason);

// One context that ended: what flow_delete is called with.
struct FlowEnd {
  uint64_t handle = 0;
  uint64_t context = 0;
  uint16_t callout = 0;
  uint8_t layer = 0;
  FlowEndReason reason = FlowEndReason::Removed;
};

// Who runs flow_delete (the flow service, or a test).
class FlowDeleteSink {
 public:
  virtual ~FlowDeleteSink() = default;
  // Calls the callout's flow_delete for `end`, with no lock of the table
  // held. False: the callout is out of service (its plugin is unloading);
  // the table keeps the end for retire_callout, which delivers it.
  virtual bool deliver(const FlowEnd& end) noexcept = 0;
  // A flow that had an offloaded verdict ended (any reason): take the
  // kernel's entries back. No lock of the table held.
  virtual void offload_ended(uint64_t handle, const xfp_flow_key& key) noexcept {
    (void)handle;
    (void)key;
  }
  // An end was queued for the delivery thread (flush()): wake it.
  virtual void wake() noexcept {}
};

struct FlowTableOptions {
  uint32_t max_flows = 262144;
  uint64_t idle_timeout_ns = 120ull * 1000 * 1000 * 1000;
  uint32_t shards = 64;  // rounded up to a power of two, at most 1024
};

// A worker's hold on a flow while one frame is classified: the flow cannot
// be evicted or freed until end(). Copyable, no ownership: pair every valid
// begin() with one end().
struct FlowTicket {
  uint32_t shard = 0;
  uint32_t index = UINT32_MAX;
  bool valid() const { return index != UINT32_MAX; }
};

struct FlowContextInfo {
  uint16_t callout = 0;
  uint8_t layer = 0;
  uint64_t context = 0;
};

// One flow as `xfp flows` shows it.
struct FlowSnapshot {
  uint64_t handle = 0;
  xfp_flow_key key{};
  uint64_t first_seen_ns = 0;  // CLOCK_MONOTONIC
  uint64_t last_seen_ns = 0;
  bool in_classify = false;
  bool offloaded = false;
  std::vector<FlowContextInfo> contexts;
};

struct FlowTableStats {
  uint64_t flows = 0;           // tracked now
  uint64_t max_flows = 0;
  uint64_t created = 0;
  uint64_t untracked = 0;       // frames with a handle but no room (every flow of the shard in classify)
  uint64_t contexts = 0;        // live now
  uint64_t flow_deletes = 0;    // flow_delete calls made
  uint64_t ended[static_cast<int>(FlowEndReason::Count)] = {};  // flows ended, by reason (Removed: contexts)
  uint64_t memory_bytes = 0;
};

class FlowTable {
 public:
  // What one flow costs: its entry and its share of the hash index at the
  // worst load (a context adds kBytesPerContext).
  static const size_t kBytesPerFlow;
  static const size_t kBytesPerContext;

  FlowTable(const FlowTableOptions& options, FlowDeleteSink& sink);
  // Frees everything without flow_delete calls: call end_all() first.
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  const FlowTableOptions& options() const { return options_; }

  // ---- workers, per frame ----
  // A frame of flow `handle` (key `key`, computed from the frame) is about to
  // be classified: finds or creates the flow (evicting the shard's least
  // recently used one when full), marks it seen at `now_ns` and in classify.
  // Invalid ticket for handle 0 or when the shard has no room.
  FlowTicket begin(uint64_t handle, const xfp_flow_key& key, uint64_t now_ns);
  // The callout's context on the ticket's flow at `layer`, 0 when none.
  uint64_t context(const FlowTicket& ticket, uint8_t layer, uint16_t callout) const;
  // The frame is classified. `tcp_flags` (0 when not TCP): a FIN or RST ends
  // the flow now. Delivers the flow_delete calls deferred during classify.
  void end(const FlowTicket& ticket, uint8_t tcp_flags);

  // ---- contexts (plugins, any thread) ----
  // 0, -EEXIST, -ENOENT (no such flow), -EINVAL (context 0, callout 0).
  int associate(uint64_t handle, uint8_t layer, uint16_t callout, uint64_t context);
  // 0 (flow_delete follows, never inside this call) or -ENOENT.
  int remove(uint64_t handle, uint8_t layer, uint16_t callout);

  // ---- the flow service ----
  // Marks whether the flow has an offloaded verdict (offload_ended is then
  // called when it ends). False when the flow is not tracked.
  bool set_offloaded(uint64_t handle, bool offloaded);
  // The kernel saw a frame of the (offloaded) flow at `seen_ns`.
  void touch(uint64_t handle, uint64_t seen_ns);
  // Ends one flow (e.g. the kernel saw its FIN). False when not tracked.
  bool end_flow(uint64_t handle, FlowEndReason reason);
  // Ends the flows idle since before now_ns - idle timeout. Returns how many.
  size_t expire(uint64_t now_ns);
  // Ends the flows of attachment `iface` (key.iface). Returns how many.
  size_t end_iface(uint32_t iface);
  // Ends every flow (daemon shutdown). Flows in classify end when it returns.
  size_t end_all(FlowEndReason reason = FlowEndReason::Shutdown);
  // The callout is out of service (no classify of it runs or will start) and
  // its plugin not yet finalised: every context it has ends here, flow_delete
  // through `deliver` (the sink can no longer reach it), once each, including
  // those queued or being delivered on other threads (waited for).
  void retire_callout(uint16_t callout, const std::function<void(const FlowEnd&)>& deliver);
  // Delivers the ends queued for the delivery thread (remove outside a
  // classify, and those whose callout was busy retiring). Returns how many.
  size_t flush();

  // ---- observing ----
  size_t size() const;
  // Bytes the table has allocated (entries, index, context pools).
  size_t memory_bytes() const;
  // The configured bound: max_flows * kBytesPerFlow, plus the contexts.
  size_t memory_bound(size_t contexts) const;
  FlowTableStats stats() const;
  // Up to `limit` flows (0: all), most recently seen first per shard.
  std::vector<FlowSnapshot> list(size_t limit = 0) const;
  bool snapshot(uint64_t handle, FlowSnapshot& out) const;

  struct Shard;
  // The table's hash of a handle (shard: top bits, slot: low bits).
  static uint64_t mix(uint64_t handle);

 private:
  struct Collected;
  Shard& shard_of(uint64_t h) const;
  void deliver(Collected& c);
  void end_matching(const std::function<bool(const Shard&, uint32_t)>& match, FlowEndReason reason,
                    size_t& count);

  FlowTableOptions options_;
  FlowDeleteSink& sink_;
  uint32_t shard_bits_ = 0;
  std::unique_ptr<Shard[]> shards_;
  // Ends collected (shard lock) and not yet delivered, per callout id: what
  // retire_callout waits for.
  std::unique_ptr<std::atomic<uint32_t>[]> inflight_;
  // Ends for the delivery thread (FlowTable::flush).
  mutable std::mutex queue_mu_;
  std::vector<FlowEnd> queue_;
  std::atomic<uint64_t> created_{0}, untracked_{0}, flow_deletes_{0};
  std::atomic<uint64_t> ended_[static_cast<int>(FlowEndReason::Count)] = {};
};

}  // namespace xfp
