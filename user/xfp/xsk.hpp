// One AF_XDP socket with its own UMEM (RAII). xfp gives every socket its own
// UMEM rather than sharing one: a queue's worker then owns its fill and
// completion rings alone (no locks between queues), and a frame that must go
// elsewhere is copied once into the target socket's UMEM, which on veth costs
// nothing next to copy mode's own copy into an skb.
//
// Chunks: the UMEM is cut into `frames` chunks of `frame_size` bytes (aligned
// mode). Received frames start XDP_PACKET_HEADROOM into their chunk; the
// punt metadata sits right before the data. The chunks are split in two
// pools: receive chunks (fill ring, rx ring, rx_free()) belong to the thread
// that receives, transmit chunks (tx_alloc(), tx ring, completion ring) to
// whoever transmits under its own lock. Each ring has one user, so a worker
// can receive while another thread injects on the same socket.
#pragma once

#include <linux/if_xdp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <xdp/xsk.h>

#include "xfp/result.hpp"

namespace xfp {

struct XskOptions {
  uint32_t frames = 4096;      // chunks in the UMEM: the first rx_frames receive, the rest transmit
  uint32_t rx_frames = 2048;
  uint32_t frame_size = XSK_UMEM__DEFAULT_FRAME_SIZE;
  uint32_t ring_size = 2048;   // every ring
  bool rx = true;              // false: a transmit-only socket
  bool tx = true;
  bool fill_at_start = true;   // hand half the chunks to the fill ring
  bool busy_poll = false;      // SO_PREFER_BUSY_POLL + SO_BUSY_POLL
};

class XskSocket {
 public:
  // Binds to (ifname, queue) in the calling thread's network namespace, in
  // copy mode with need_wakeup. The socket is not put into any XSKMAP: the
  // caller does that (xfp_xsks_v1 is the daemon's).
  static Result<std::unique_ptr<XskSocket>> open(const std::string& ifname, uint32_t queue,
                                                 const XskOptions& options = {});
  ~XskSocket();
  XskSocket(const XskSocket&) = delete;
  XskSocket& operator=(const XskSocket&) = delete;

  int fd() const;
  uint32_t queue() const { return queue_; }
  const std::string& ifname() const { return ifname_; }
  uint32_t frame_size() const { return options_.frame_size; }

  uint8_t* chunk(uint64_t addr) { return area_ + (addr & ~uint64_t(options_.frame_size - 1)); }
  uint8_t* data(uint64_t addr) { return area_ + addr; }
  uint64_t chunk_base(uint64_t addr) const { return addr & ~uint64_t(options_.frame_size - 1); }

  // Receive chunks back from user space (the next refill() hands them on).
  void rx_free(uint64_t addr) { rx_free_.push_back(chunk_base(addr)); }
  // Transmit chunks: take one to fill, give it back when its completion arrives.
  bool tx_alloc(uint64_t& addr);
  void tx_free(uint64_t addr) { tx_free_.push_back(chunk_base(addr)); }
  size_t tx_free_count() const { return tx_free_.size(); }

  // Receive: up to `max` descriptors; release them with rx_release(n) once read.
  uint32_t rx_peek(uint32_t max, uint32_t& idx) { return xsk_ring_cons__peek(&rx_, max, &idx); }
  const xdp_desc* rx_desc(uint32_t idx) const { return xsk_ring_cons__rx_desc(&rx_, idx); }
  void rx_release(uint32_t n) { xsk_ring_cons__release(&rx_, n); }

  // Moves free receive chunks into the fill ring (as many as fit, at most `max`).
  uint32_t refill(uint32_t max = 64);

  // Transmit: copies are the caller's; this queues descriptors and kicks.
  uint32_t tx_reserve(uint32_t n, uint32_t& idx) { return xsk_ring_prod__reserve(&tx_, n, &idx); }
  xdp_desc* tx_desc(uint32_t idx) { return xsk_ring_prod__tx_desc(&tx_, idx); }
  void tx_submit(uint32_t n) { xsk_ring_prod__submit(&tx_, n); tx_outstanding_ += n; }
  // Wakes the kernel to send (copy mode always needs it). 0 or -errno;
  // EAGAIN/EBUSY/ENOBUFS mean "try again later" and are not errors.
  int kick();
  // Completed transmissions: up to `max` chunk addresses appended to `out`.
  uint32_t drain_completions(std::vector<uint64_t>& out, uint32_t max = 256);
  uint32_t tx_outstanding() const { return tx_outstanding_; }

  // Waits until a frame arrives (or `timeout_ms`); true if readable.
  bool wait_rx(int timeout_ms);
  bool fill_needs_wakeup() { return xsk_ring_prod__needs_wakeup(&fill_); }

  // XDP_STATISTICS of the socket (drops for want of ring space etc.).
  Result<xdp_statistics> statistics() const;

 private:
  XskSocket() = default;
  std::string ifname_;
  uint32_t queue_ = 0;
  XskOptions options_;
  uint8_t* area_ = nullptr;
  size_t area_size_ = 0;
  xsk_umem* umem_ = nullptr;
  xsk_socket* xsk_ = nullptr;
  // libxdp leaves cached indices to the caller: zeroed (MACHINE_NOTES 3).
  xsk_ring_prod fill_{};
  xsk_ring_cons comp_{};
  xsk_ring_cons rx_{};
  xsk_ring_prod tx_{};
  std::vector<uint64_t> rx_free_, tx_free_;
  uint32_t tx_outstanding_ = 0;
};

}  // namespace xfp
