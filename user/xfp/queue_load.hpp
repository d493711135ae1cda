// The worker's half of a queue's overload guard (abi.h, struct
// xfp_xsk_load): it publishes how many punted frames it has given back, so
// that the XDP program stops punting (and applies the overload policy)
// before the socket's rings overflow and the kernel drops frames silently.
//
// consumed = frames taken off the rx ring (after their chunks are back in the
// fill ring) + frames the socket itself dropped (XDP_STATISTICS rx_dropped +
// rx_ring_full: a frame too large for a chunk, or a drop the guard's margin
// did not prevent). Without the second term every such drop would hold one
// slot of the capacity for ever; with it, the count heals when the worker is
// next idle. The hot path is one store per batch; the statistics are read
// only when the rx ring is empty.
#pragma once

#include <atomic>
#include <cstdint>

#include "xfp/abi.h"
#include "xfp/xsk.hpp"

namespace xfp {

class QueueLoad {
 public:
  QueueLoad(xfp_xsk_load* entry, XskSocket& socket) : entry_(entry), socket_(socket) {}

  // After a batch of `n` frames was released and its chunks refilled. A
  // release store: on a weakly ordered CPU the XDP program must not see the
  // count before the ring indices that make the room real (on x86 it is a
  // plain move, like a relaxed store).
  void given_back(uint32_t n) {
    taken_ += n;
    publish();
  }

  // The rx ring was empty. busy: called on every spin of a busy-polling
  // worker, so only every 1024th call reads the statistics (a syscall).
  void idle(bool busy) {
    if (!entry_ || (busy && (++idle_calls_ & 1023) != 0)) return;
    auto st = socket_.statistics();
    if (!st) return;
    const uint64_t drops = st->rx_dropped + st->rx_ring_full;
    if (drops == drops_) return;
    drops_ = drops;
    publish();
  }

 private:
  void publish() {
    if (entry_) std::atomic_ref<__u64>(entry_->consumed).store(taken_ + drops_, std::memory_order_release);
  }

  xfp_xsk_load* entry_;
  XskSocket& socket_;
  uint64_t taken_ = 0;
  uint64_t drops_ = 0;
  uint32_t idle_calls_ = 0;
};

}  // namespace xfp
