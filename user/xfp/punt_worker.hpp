// One worker per (attached interface, queue): drives the AF_XDP socket that
// the XDP program punts that queue's callout frames to, in batches.
//
// Per frame: read the xfp_punt_meta in front of it, parse the fields with the
// same parser as the kernel, finish WFP arbitration with the policy snapshot
// of the frame's generation (calling the callouts), then act: permit ->
// receive injection (the host stack gets the frame, as modified, as if it had
// arrived on the interface), block -> drop and count, absorbed -> the frame
// becomes the callout's (copied out of the UMEM so the chunk is reused at
// once). A frame punted under an older generation is classified from
// scratch under the current one.
//
// Batches: frames whose first callout is the same filter of a callout
// registered with XFP_CALLOUT_FLAG_BATCH go to it in one classify call.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "xfp/callout.h"
#include "xfp/flow_table.hpp"
#include "xfp/injector.hpp"
#include "xfp/policy_snapshot.hpp"
#include "xfp/queue_load.hpp"
#include "xfp/xsk.hpp"

namespace xfp {

// The metadata a classify call sees, with what the host keeps beside it
// (the injection record of the frame); `meta` is the first member so that
// the host finds the rest from an item's meta pointer.
struct PuntFrameInfo {
  xfp_metadata meta;
  InjectionOrigin origin;
  // Flows: the frame's hold on its flow in the flow table (invalid when the
  // frame has none), and the offload request a callout recorded during
  // classify (flow_offload; the host sees the frame through a const item).
  FlowTicket flow;
  mutable uint8_t offload_verdict = 0;  // enum xfp_flow_verdict, 0: none
  mutable uint16_t offload_callout = 0;
};
const PuntFrameInfo* punt_info_of(const xfp_metadata* meta);

// How a worker reaches the callouts (the daemon's callout host).
class CalloutCaller {
 public:
  virtual ~CalloutCaller() = default;
  // Calls the callout `filter` names on `count` items (count > 1 only when
  // batch_capable() said so). False: no loaded plugin serves it.
  virtual bool classify(const Filter& filter, xfp_classify_item* items, uint32_t count) = 0;
  virtual bool batch_capable(const Filter& filter) = 0;
};

struct WorkerTarget {
  std::string ifname;
  uint32_t ifindex = 0;
  uint32_t key = 0;  // attachment key
  uint32_t queue = 0;
  uint32_t compartment = 0;
  uint8_t mac[6] = {};
  xfp_xsk_load* load = nullptr;  // the queue's overload guard (Datapath::xsk_load), null: none
};

struct WorkerCounters {
  std::atomic<uint64_t> frames{0}, permitted{0}, blocked{0}, absorbed{0}, deliver_failed{0};
  std::atomic<uint64_t> rescanned{0};  // generation changed since the punt
  std::atomic<uint64_t> bad_meta{0};   // no valid header: dropped
  // A callout's block overrode a hard permit. Only here: the kernel never
  // sees a callout's verdict, so it cannot veto (XFP_CNT_VETO stays 0 there).
  std::atomic<uint64_t> vetoed{0};
};

// What a worker is calling, for the callout runtime's watchdog: 0 while no
// classify runs, else (call number << 16) | callout id. The worker stores it
// before and after each classify call: two relaxed stores, no clock read, no
// lock. The watchdog samples it every budget/4 and times how long one value
// stays (a new call changes the number even for the same callout).
struct alignas(64) ClassifyStamp {
  std::atomic<uint64_t> word{0};
  uint64_t calls = 0;  // the worker's own
  void enter(uint16_t callout_id) { word.store((++calls << 16) | callout_id, std::memory_order_relaxed); }
  void leave() { word.store(0, std::memory_order_relaxed); }
  static uint16_t callout_of(uint64_t w) { return static_cast<uint16_t>(w & 0xffff); }
};

struct WorkerOptions {
  bool busy_poll = false;  // spin on the rings instead of sleeping in poll()
  uint32_t batch = 64;
};

class FlowServiceImpl;

class PuntWorker {
 public:
  using SnapshotFn = std::function<PolicySnapshotPtr()>;
  // The socket must be open already (bound to target.ifname/queue); the
  // caller puts it in xfp_xsks_v1 once the worker runs. `flows` (may be
  // null: no flow tracking) gets each frame with a flow handle: the frame
  // holds its flow while it is classified, and a FIN or RST ends the flow.
  PuntWorker(const WorkerTarget& target, XskSocket& socket, CalloutCaller& callouts, Injector& injector,
             SnapshotFn snapshot, const WorkerOptions& options, FlowServiceImpl* flows = nullptr);
  ~PuntWorker();  // stops and joins
  PuntWorker(const PuntWorker&) = delete;
  PuntWorker& operator=(const PuntWorker&) = delete;

  const WorkerCounters& counters() const { return counters_; }
  const WorkerTarget& target() const { return target_; }
  const ClassifyStamp& stamp() const { return stamp_; }  // for the watchdog

 private:
  void run();
  void process(uint32_t n, uint32_t idx, const PolicySnapshotPtr& snap);

  WorkerTarget target_;
  XskSocket& socket_;
  CalloutCaller& callouts_;
  Injector& injector_;
  SnapshotFn snapshot_;
  WorkerOptions options_;
  FlowServiceImpl* flows_ = nullptr;
  WorkerCounters counters_;
  ClassifyStamp stamp_;
  QueueLoad load_;  // the worker's half of the overload guard
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace xfp
