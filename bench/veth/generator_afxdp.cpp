// The user-space generator (generator.hpp): AF_XDP transmit in copy mode on
// the sending veth, queue 0.
//
// A UMEM of 2 x ring chunks, each holding a copy of the frame, is
// registered; a transmit-only socket is bound with XDP_COPY (veth has no
// zero-copy). The loop takes back the chunks the completion ring returns,
// puts up to `batch` descriptors of free chunks on the TX ring and kicks the
// kernel with sendto(): in copy mode nothing is sent without a kick, and one
// kick sends at most the socket's TX budget (32 frames unless
// XDP_MAX_TX_SKB_BUDGET raises it; tried, ignored where the kernel lacks it).
// Each frame becomes an skb that goes through the veth's xmit, so it reaches
// the peer's XDP program as a frame from the wire would. A completion only
// means the kernel is done with the chunk, also when the veth dropped the
// frame: sent() counts completions, delivery is counted by the receiver.
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "generator.hpp"
#include "owners.hpp"
#include "topology.hpp"

#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9  // linux/if_xdp.h since 6.17
#endif

namespace xfpbench {

namespace {
constexpr uint32_t kChunk = 2048;  // the smallest AF_XDP chunk
}  // namespace

void run_afxdp_generator(const GeneratorOptions& o, GeneratorState& st) {
  const uint32_t ring = o.ring;
  const uint32_t nchunks = 2 * ring;  // a full TX ring and a full completion ring at once
  if (ring < 64 || (ring & (ring - 1)) || o.frame.empty() || o.frame.size() > kChunk) {
    st.error.store(EINVAL);
    return;
  }
  Mapping area(static_cast<size_t>(nchunks) * kChunk);
  if (!area.data()) {
    st.error.store(errno);
    return;
  }
  std::vector<uint64_t> free_chunks;
  free_chunks.reserve(nchunks);
  for (uint32_t i = 0; i < nchunks; ++i) {
    const uint64_t addr = static_cast<uint64_t>(i) * kChunk;
    std::memcpy(area.data() + addr, o.frame.data(), o.frame.size());
    free_chunks.push_back(addr);
  }

  XskUmem umem;
  xsk_umem_config ucfg{};
  ucfg.fill_size = 64;  // unused: nothing is received
  ucfg.comp_size = ring;
  ucfg.frame_size = kChunk;
  ucfg.frame_headroom = 0;
  if (int rc = umem.create(area.data(), area.size(), ucfg); rc) {
    st.error.store(-rc);
    return;
  }
  XskSocket xsk;
  xsk_socket_config scfg{};
  scfg.rx_size = 0;
  scfg.tx_size = ring;
  scfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;  // transmit only: no XDP program of ours
  scfg.bind_flags = XDP_COPY;
  if (int rc = xsk.create_tx(o.ifname.c_str(), 0, umem, scfg); rc) {
    st.error.store(-rc);
    return;
  }
  const int fd = xsk.fd();
  const int budget = o.batch;
  (void)setsockopt(fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof budget);

  xsk_ring_prod& tx = xsk.tx();
  xsk_ring_cons& comp = umem.comp();
  const uint32_t len = static_cast<uint32_t>(o.frame.size());
  const uint32_t batch = static_cast<uint32_t>(o.batch);
  uint64_t outstanding = 0;  // descriptors submitted, not yet completed
  while (!st.stop.load(std::memory_order_relaxed) && !g_stop.load(std::memory_order_relaxed)) {
    uint32_t idx = 0;
    if (const uint32_t done = xsk_ring_cons__peek(&comp, ring, &idx)) {
      for (uint32_t i = 0; i < done; ++i) free_chunks.push_back(*xsk_ring_cons__comp_addr(&comp, idx + i));
      xsk_ring_cons__release(&comp, done);
      outstanding -= done;
      st.sent.fetch_add(done, std::memory_order_relaxed);
    }
    const uint32_t want = std::min<uint32_t>(batch, static_cast<uint32_t>(free_chunks.size()));
    if (want) {
      if (const uint32_t n = xsk_ring_prod__reserve(&tx, want, &idx)) {
        for (uint32_t i = 0; i < n; ++i) {
          xdp_desc* d = xsk_ring_prod__tx_desc(&tx, idx + i);
          d->addr = free_chunks.back();
          d->len = len;
          d->options = 0;
          free_chunks.pop_back();
        }
        xsk_ring_prod__submit(&tx, n);
        outstanding += n;
      }
    }
    if (!outstanding) continue;
    if (sendto(fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0) {
      // EAGAIN: the budget ran out with descriptors left (kick again);
      // ENOBUFS/EBUSY: no skb or the queue is busy for now.
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || errno == EBUSY || errno == EINTR) continue;
      st.error.store(errno);
      return;
    }
  }
}

}  // namespace xfpbench
