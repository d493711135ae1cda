// The daemon's FlowService: flow contexts (over the FlowTable) and
// flow-verdict offload into the kernel (over an OffloadBackend, the
// Datapath's offload map in the daemon).
//
// Offload, step by step:
//  1. a callout calls flow_offload(item, verdict) during classify: the
//     request is recorded in the frame's PuntFrameInfo (nothing else);
//  2. when that frame's arbitration has finished with the same decision
//     (permit for PERMIT, block for BLOCK, not absorbed), the worker calls
//     complete_offload(): the kernel entry is written, valid for the
//     generation the frame was classified under;
//  3. before a new policy generation is installed, prepare_generation()
//     re-evaluates every offloaded flow under the new snapshot (the
//     offloading callout answering with its verdict): the same decision
//     re-stamps the entry for the new generation; any other (or another
//     callout on the way) leaves it to turn stale at the bank flip, and
//     generation_installed() then deletes it, so the flow is punted again;
//  4. the sweeper reads the entries' counters and last-seen times: an
//     offloaded flow idles out by its kernel last-seen; a FIN or RST the
//     kernel saw ends the flow;
//  5. flow_offload_remove, the flow's end (any reason) and the callout's
//     retirement take the entries back.
//
// A sweeper thread expires idle flows, delivers the flow_delete calls that
// must not run inside the call that caused them (remove_context outside a
// classify), and refreshes offloaded flows from the kernel.
#pragma once

#include <condition_variable>
#include <functional>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "xfp/abi.h"
#include "xfp/callout_host.hpp"
#include "xfp/flow_service.hpp"
#include "xfp/flow_table.hpp"
#include "xfp/policy_snapshot.hpp"
#include "xfp/result.hpp"

namespace xfp {

// The kernel's offload map, as the service needs it (the Datapath in the
// daemon, a fake in unit tests).
class OffloadBackend {
 public:
  virtual ~OffloadBackend() = default;
  // Writes (or overwrites) the entry: verdict, valid for [generation, generation].
  virtual Status offload(const xfp_offload_key& key, uint8_t verdict, uint32_t generation) = 0;
  virtual Status remove(const xfp_offload_key& key) = 0;
  // Every entry: its counters, last-seen time and flags.
  virtual Status read_all(const std::function<void(const xfp_offload_key&, const xfp_offload&)>& fn) = 0;
  // Before generation `next` is installed: the entries keep() accepts stay
  // valid under it (gen_last = next); the others keep their range (below
  // `next`) and turn stale at the bank flip. Decides every entry again when
  // called again for the same `next`.
  virtual Status revalidate(uint64_t next, const std::function<bool(const xfp_offload_key&)>& keep) = 0;
};

// An offloaded verdict as the service keeps it.
struct OffloadRecord {
  uint64_t handle = 0;
  xfp_offload_key key{};
  uint8_t verdict = 0;  // enum xfp_flow_verdict
  uint16_t callout = 0;
  uint32_t gen_first = 0;
  uint32_t gen_last = 0;  // as written in the kernel
  xfp_fields fields{};  // of the frame that offloaded it: what a new generation re-checks
  // Last read from the kernel.
  uint64_t packets = 0, bytes = 0, last_seen_ns = 0;
  uint8_t kernel_flags = 0;
  bool keep = true;  // the latest prepare_generation kept it
};

struct FlowServiceStats {
  FlowTableStats table;
  uint64_t offloaded = 0;           // entries now
  uint64_t offloads_installed = 0;  // complete_offload that wrote an entry
  uint64_t offloads_mismatch = 0;   // requests whose frame ended with another decision
  uint64_t offloads_restamped = 0;  // kept across a generation
  uint64_t offloads_dropped = 0;    // dropped by a generation change
  uint64_t offload_errors = 0;      // backend failures
};

class FlowServiceImpl final : public FlowService, private FlowDeleteSink {
 public:
  // `offloads` may be null (no kernel offload: flow_offload is -EOPNOTSUPP).
  // Not owned; both must outlive the service.
  FlowServiceImpl(CalloutHost& host, const FlowTableOptions& options, OffloadBackend* offloads);
  // Stops the sweeper. Call end_all() first for flow_delete calls.
  ~FlowServiceImpl() override;

  FlowTable& table() { return table_; }
  const FlowTable& table() const { return table_; }

  // ---- the workers ----
  // A frame of the ticket's flow finished arbitration with `action` (not
  // absorbed), under the snapshot of `generation`, with a recorded offload
  // request: writes the kernel entry when the decision matches.
  void complete_offload(uint64_t handle, const xfp_flow_key& key, uint8_t layer, uint16_t callout, uint8_t verdict,
                        Action action, const xfp_fields& fields, uint64_t generation);

  // ---- the control thread ----
  // Before generation `next.generation()` is installed: re-stamps the
  // entries the new policy keeps (see above).
  void prepare_generation(const PolicySnapshot& next);
  // After it was installed: deletes the entries it did not keep.
  void generation_installed(uint64_t generation);
  // The interface is detached: its flows end.
  void detach(uint32_t iface) { (void)table_.end_iface(iface); }
  // The daemon stops: every flow ends.
  void end_all() { (void)table_.end_all(FlowEndReason::Shutdown); }
  // One pass of the sweeper (tests call it to avoid waiting).
  void sweep(uint64_t now_ns);

  std::vector<OffloadRecord> offloads() const;
  FlowServiceStats stats() const;

  // ---- FlowService ----
  int associate_context(const RegisteredCallout& callout, uint64_t flow_handle, uint8_t layer,
                        uint64_t context) noexcept override;
  int remove_context(const RegisteredCallout& callout, uint64_t flow_handle, uint8_t layer) noexcept override;
  int offload(const RegisteredCallout& callout, const xfp_classify_item* item, uint32_t verdict) noexcept override;
  int offload_remove(uint64_t flow_handle, uint8_t layer) noexcept override;
  void retire_callout(const RegisteredCallout& callout) noexcept override;

  static uint64_t now_ns();

 private:
  // FlowDeleteSink
  bool deliver(const FlowEnd& end) noexcept override;
  void offload_ended(uint64_t handle, const xfp_flow_key& key) noexcept override;
  void wake() noexcept override;

  void run();
  // Under offload_mu_: deletes the record's kernel entry and the record.
  void drop_locked(std::map<std::pair<uint64_t, uint8_t>, OffloadRecord>::iterator it);

  CalloutHost& host_;
  OffloadBackend* backend_;
  FlowTable table_;

  mutable std::mutex offload_mu_;  // before any shard lock of the table
  std::map<std::pair<uint64_t, uint8_t>, OffloadRecord> offloads_;  // by (handle, layer)
  uint64_t installed_ = 0, mismatch_ = 0, restamped_ = 0, dropped_ = 0, errors_ = 0;

  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stop_ = false;
  bool woken_ = false;
  std::thread sweeper_;
};

}  // namespace xfp
