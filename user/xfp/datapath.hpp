// The loaded fast path: owns the BPF object (skeleton), the attachments
// (XDP through libxdp, or through libbpf when it takes over a killed daemon's
// program atomically; TC egress through libbpf) and the compiled-set maps.
// Move-only; destroying it detaches everything it attached.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "xfp/abi.h"
#include "xfp/compiler.hpp"
#include "xfp/filter.hpp"
#include "xfp/result.hpp"

namespace xfp {

enum class XdpMode : uint8_t { Auto, Native, Generic };

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
  uint32_t max_entries = 1u << 20;  // capacity of the compiled-set hash (both banks)
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

  int xdp_prog_fd() const;  // the loaded programs, for BPF_PROG_TEST_RUN
  int tc_prog_fd() const;

  struct Impl;

 private:
  explicit Datapath(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  uint64_t generation_ = 0;
};

}  // namespace xfp
