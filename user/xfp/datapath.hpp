// The loaded fast path: owns the BPF object (skeleton), the attachments
// (XDP through libxdp, or through libbpf when it takes over a killed daemon's
// program atomically; TC egress through libbpf) and the compiled-set maps.
// Move-only; destroying it detaches everything it attached.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xfp/abi.h"
#include "xfp/compiler.hpp"
#include "xfp/filter.hpp"
#include "xfp/result.hpp"

namespace xfp {

enum class XdpMode : uint8_t { Auto, Native, Generic };

// How a punted frame's header (abi.h, xfp_punt_meta) reaches the worker:
// in the XDP metadata area, or in band in front of the frame. Auto picks the
// metadata area where the kernel lets XDP programs call bpf_xdp_adjust_meta
// (probed once at open), in band elsewhere; the environment's
// XFP_PUNT_CARRIER (metadata, in-band) stands in for Auto, so that a test
// suite can run every program with either carrier. Under the metadata
// carrier a frame whose room the driver refuses at run time still goes in
// band; the worker reads both.
enum class PuntCarrier : uint8_t { Auto, Metadata, InBand };
const char* punt_carrier_name(PuntCarrier c);  // "auto", "metadata", "in-band"
std::optional<PuntCarrier> punt_carrier_from_name(std::string_view name);

struct AttachOptions {
  XdpMode mode = XdpMode::Auto;  // Auto: native, falling back to generic
  bool inbound = true;           // XDP
  bool outbound = true;          // TC egress
};

struct Attachment {
  std::string ifname;
  uint32_t ifindex = 0;
  bool inbound = false;
  bool outbound = false;
  std::string xdp_mode;    // "native" or "generic" (empty when !inbound)
  // "libxdp dispatcher", "single program (libxdp dispatcher refused: ...)"
  // or "single program (replaced a stale xfp program atomically)"
  std::string xdp_loader;
  PuntCarrier carrier = PuntCarrier::InBand;  // of the inbound program (never Auto)
  uint32_t key = 0;          // attachment key (1..XFP_MAX_ATTACHMENTS-1): callouts' `iface`
  uint32_t compartment = 0;  // network namespace inode
  uint8_t mac[6] = {};
};

struct LayerCounters {
  uint64_t c[XFP_CNT_COUNT] = {};
};

struct FilterCounters {
  uint64_t frames = 0;
  uint64_t bytes = 0;
};

struct DatapathOptions {
  // Rows of the entry table, both banks (each compiled set may use half):
  // tuple-space entries plus direct results. About 180 bytes each (an 80-byte
  // row and its share of the entry table's buckets), allocated at load, plus
  // 8 MB of rules (xfp_rules_v2) whatever the size.
  uint32_t max_entries = 1u << 18;
  uint32_t max_offloads = XFP_OFFLOAD_DEFAULT_ENTRIES;  // flow-verdict offload map (LRU)
  // Metadata fails open() where the kernel refuses bpf_xdp_adjust_meta.
  PuntCarrier carrier = PuntCarrier::Auto;

  // Rows one compiled set may use (CompileLimits::max_entries): the running
  // set and the one being installed each have a bank.
  uint32_t set_capacity() const { return max_entries / XFP_BANKS; }
};

// One offloaded flow verdict as the kernel holds it (xfp_offload_v2).
struct OffloadedFlow {
  xfp_flow_key key{};
  Layer layer = Layer::Inbound;
  uint8_t verdict = 0;            // enum xfp_offload_verdict
  uint32_t redirect_ifindex = 0;  // XFP_OFFLOAD_REDIRECT only
  uint32_t gen_first = 0;         // valid for generations [gen_first, gen_last] (low 32 bits)
  uint32_t gen_last = 0;
  uint64_t packets = 0;           // frames the kernel decided with it
  uint64_t bytes = 0;
  uint64_t last_seen_ns = 0;      // CLOCK_MONOTONIC_COARSE (bpf_ktime_get_coarse_ns); set at offload too
  uint8_t flags = 0;              // enum xfp_offload_flag (FIN/RST seen)

  // Valid under the compiled set of `generation` (what the kernel checks).
  bool valid_for(uint64_t generation) const {
    return static_cast<uint32_t>(generation) - gen_first <= gen_last - gen_first;
  }
};

// What the kernel does when a queue's AF_XDP socket cannot take a punted
// frame (abi.h, xfp_xsk_load): capacity in frames (0: unguarded, the kernel
// drops at the full ring, counted only in XDP_STATISTICS) and the verdict.
enum class OverloadPolicy : uint8_t {
  FailAction = XFP_OVERLOAD_FAIL_ACTION,  // the callout filter's fail action, as with no daemon
  FailOpen = XFP_OVERLOAD_FAIL_OPEN,      // permit
  FailClosed = XFP_OVERLOAD_FAIL_CLOSED,  // block
};
const char* overload_policy_name(OverloadPolicy p);  // "fail-action", "fail-open", "fail-closed"

struct XskGuard {
  uint32_t capacity = 0;
  OverloadPolicy policy = OverloadPolicy::FailAction;
};

class Datapath {
 public:
  static Result<std::unique_ptr<Datapath>> open(const DatapathOptions& opts = {});
  ~Datapath();
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  Status attach(const std::string& ifname, const AttachOptions& opts = {});
  Status detach(const std::string& ifname);
  std::vector<Attachment> attachments() const;

  // Installs a compiled set into the inactive bank, flips the active bank,
  // waits for an RCU grace period, then clears the old bank. A frame is
  // classified by the old set or by the new one, never by a mix.
  Status install(const CompiledSet& set);
  uint64_t generation() const { return generation_; }

  LayerCounters layer_counters(Layer l) const;
  FilterCounters filter_counters(uint32_t slot) const;
  Status reset_filter_counters(uint32_t slot);  // before a slot is reused

  // Callouts: whether user space serves a callout id (xfp_callouts_v1), and
  // the AF_XDP socket of a worker for (attachment key, queue) (xfp_xsks_v1).
  Status set_callout_served(uint16_t callout_id, bool served);
  Status bind_xsk(uint32_t key, uint32_t queue, int xsk_fd);
  Status unbind_xsk(uint32_t key, uint32_t queue);
  // The queue's overload guard (xfp_xsk_load_v1; abi.h): counters zeroed,
  // capacity and policy set. Call it for a new socket before its first
  // bind_xsk (while no socket is bound at that index and its worker has
  // taken nothing); not when binding the same socket again (the watchdog
  // does), whose worker's count goes on. EINVAL beyond XFP_MAX_QUEUES.
  Status guard_xsk(uint32_t key, uint32_t queue, const XskGuard& guard);
  // The guard entry in the memory-mapped map (valid while the Datapath
  // lives): the worker publishes `consumed` through it, status reads it.
  // Null for a queue beyond XFP_MAX_QUEUES.
  xfp_xsk_load* xsk_load(uint32_t key, uint32_t queue) const;

  // ---- Flow-verdict offload (xfp_offload_v2; docs/ARCHITECTURE.md, "Flows").
  // Thread-safe with each other and with install(): a worker may offload
  // while the control thread installs.
  //
  // Hands the verdict of the flow `key` at `layer` to the kernel: frames of
  // the flow are then decided in XDP/TC (permit, block, or redirect to
  // redirect_ifindex, an interface in the attachment's namespace) while the
  // active compiled set's generation is `generation` (as decided: the
  // generation the frame was classified under, e.g. xfp_punt_meta's). A
  // stale generation is accepted and simply never applies. Replaces an
  // entry of the same key (its counters restart). Turns the layer's offload
  // lookup on (set_offload_enabled). EINVAL for a bad verdict or layer, a
  // redirect without ifindex; ENOSPC/E2BIG... from the kernel.
  Status offload_flow(const xfp_flow_key& key, Layer layer, uint8_t verdict, uint32_t redirect_ifindex,
                      uint64_t generation);
  // Takes the verdict back: later frames are classified again. ENOENT when
  // there is none (never offloaded, removed, or evicted by the LRU).
  Status remove_offload(const xfp_flow_key& key, Layer layer);
  // One entry (ENOENT when absent), or all of them (the map is walked
  // key by key; entries added meanwhile may be missed).
  Result<OffloadedFlow> read_offload(const xfp_flow_key& key, Layer layer) const;
  Result<std::vector<OffloadedFlow>> read_offloads() const;
  // Before install() of the next set (generation() + 1 = next_generation):
  // entries for which keep() is true stay valid under it (gen_last =
  // next_generation, written before the bank flip, so they apply without a
  // gap); the others keep their range and turn stale at the flip, in the
  // same instant as the filters change. Calling it again (after a failed
  // install) re-decides every entry. Frames counted while an entry is being
  // re-stamped may be lost from its counters (the kernel replaces the
  // element). Returns how many entries were kept.
  Result<size_t> revalidate_offloads(uint64_t next_generation,
                                     const std::function<bool(const OffloadedFlow&)>& keep);
  // Whether XDP/TC look offloads up at all (xfp_config.offload_layers, both
  // layers). Off, the fast path pays one bit test; on, one flow-key parse
  // and one LRU hash lookup per frame. Off by default; offload_flow turns
  // the entry's layer on.
  Status set_offload_enabled(bool enabled);
  bool offload_enabled(Layer layer) const;
  uint32_t offload_capacity() const;

  // The carrier open() resolved (never Auto): new attachments' programs, and
  // the daemon's own copy (xdp_prog_fd), carry the punt header so.
  PuntCarrier carrier() const;
  // Whether the kernel lets XDP programs call bpf_xdp_adjust_meta.
  bool metadata_available() const;

  int xdp_prog_fd() const;  // the loaded programs, for BPF_PROG_TEST_RUN
  int tc_prog_fd() const;

  struct Impl;

 private:
  explicit Datapath(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  uint64_t generation_ = 0;
};

}  // namespace xfp
