// Case "rxdrop": bare AF_XDP, the floor of any design that punts frames to
// user space over AF_XDP (as xfp's callout path does).
//
// The receiving veth carries xfpbc_xsk (redirect every frame into the XSKMAP
// slot of its receive queue; veth has one queue here), and one AF_XDP socket
// with its own UMEM is bound to queue 0 in copy mode (veth refuses zero-copy,
// MACHINE_NOTES gotcha 5). The consumer thread takes received descriptors in
// batches, reads each frame's first bytes (a consumer that never touches the
// data would be cheating), and gives the buffers straight back to the fill
// ring. It spins by default; --poll makes it block in poll() when the ring is
// empty.
//
// In the latency mode the same socket is an l2fwd reflector: it swaps the
// Ethernet, IPv4 and UDP source and destination of each frame (the checksums
// stay valid: the sums are order-independent) and transmits it on the same
// socket, so the sender's UDP socket receives it as an answer. Buffers come
// back through the completion ring into the fill ring.
//
// Counters: consumed = frames taken from the RX ring; dropped = the socket's
// XDP_STATISTICS rx_dropped + rx_ring_full (frames the kernel could not put
// in the ring: no fill buffer, or RX ring full); consumer_busy_ns = wall
// time of the batches that held frames (a spinning consumer's CPU time is
// its whole window whatever the rate; this is the part that was work).
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <bpf/bpf.h>
#include <xdp/xsk.h>

#include <cstring>

#include <fmt/format.h>

#include "bench_common.hpp"
#include "harness.hpp"
#include "xfpbc_xsk.skel.h"

namespace xfpbc {
namespace {

constexpr uint32_t kFrameSize = XSK_UMEM__DEFAULT_FRAME_SIZE;

// UMEM memory, rings and socket, in the order they must be torn down.
class XskSocket {
 public:
  ~XskSocket() { close(); }
  xfp::Status open(const std::string& dev, uint32_t ring, bool with_tx) {
    ring_ = ring;
    nframes_ = ring * (with_tx ? 4 : 2);  // fill + rx (+ tx + completion) all full at once
    size_ = static_cast<size_t>(nframes_) * kFrameSize;
    void* area = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (area == MAP_FAILED) return xfp::errno_error("mapping the UMEM");
    area_ = static_cast<uint8_t*>(area);
    xsk_umem_config ucfg{};
    ucfg.fill_size = ring;
    ucfg.comp_size = ring;
    ucfg.frame_size = kFrameSize;
    ucfg.frame_headroom = 0;
    ucfg.flags = 0;
    // Ring structs must start zeroed (MACHINE_NOTES gotcha 3): they are members
    // value-initialised below, and reset here for a reopen.
    fq_ = {};
    cq_ = {};
    rx_ = {};
    tx_ = {};
    int rc = xsk_umem__create(&umem_, area_, size_, &fq_, &cq_, &ucfg);
    if (rc) return xfp::errno_error("xsk_umem__create", -rc);
    xsk_socket_config scfg{};
    scfg.rx_size = ring;
    scfg.tx_size = with_tx ? ring : 0;
    scfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;  // our own program is attached
    scfg.xdp_flags = XDP_FLAGS_DRV_MODE;
    scfg.bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP;
    rc = xsk_socket__create(&xsk_, dev.c_str(), 0, umem_, &rx_, with_tx ? &tx_ : nullptr, &scfg);
    if (rc) return xfp::errno_error("xsk_socket__create (copy mode, queue 0)", -rc);
    // Every buffer not needed for TX goes into the fill ring.
    uint32_t idx = 0;
    if (xsk_ring_prod__reserve(&fq_, ring, &idx) != ring) return xfp::make_error(EIO, "cannot fill the fill ring");
    for (uint32_t i = 0; i < ring; ++i) *xsk_ring_prod__fill_addr(&fq_, idx + i) = static_cast<uint64_t>(i) * kFrameSize;
    xsk_ring_prod__submit(&fq_, ring);
    return xfp::Ok{};
  }
  void close() {
    if (xsk_) xsk_socket__delete(xsk_);
    xsk_ = nullptr;
    if (umem_) xsk_umem__delete(umem_);
    umem_ = nullptr;
    if (area_) munmap(area_, size_);
    area_ = nullptr;
  }
  int fd() const { return xsk_ ? xsk_socket__fd(xsk_) : -1; }
  xdp_statistics stats() const {
    xdp_statistics s{};
    socklen_t len = sizeof s;
    if (xsk_) getsockopt(fd(), SOL_XDP, XDP_STATISTICS, &s, &len);
    return s;
  }

  xsk_ring_prod fq_{};
  xsk_ring_cons cq_{};
  xsk_ring_cons rx_{};
  xsk_ring_prod tx_{};
  uint8_t* area_ = nullptr;
  uint32_t ring_ = 0;

 private:
  xsk_umem* umem_ = nullptr;
  xsk_socket* xsk_ = nullptr;
  size_t size_ = 0;
  uint32_t nframes_ = 0;
};

uint64_t drops_of(const xdp_statistics& s) { return s.rx_dropped + s.rx_ring_full; }

// Swaps two byte ranges of equal length in place.
void swap_bytes(uint8_t* a, uint8_t* b, size_t n) {
  uint8_t t[6];
  std::memcpy(t, a, n);
  std::memcpy(a, b, n);
  std::memcpy(b, t, n);
}

class RxdropCase final : public Case {
 public:
  ~RxdropCase() override { stop(); }
  std::string name() const override { return "rxdrop"; }
  bool echoes_itself() const override { return true; }

  xfp::Status start(const CaseEnv& env) override {
    env_ = env;
    reflect_ = env.mode == Mode::Latency;
    skel_.reset(xfpbc_xsk__open_and_load());
    if (!skel_) return xfp::errno_error("loading the XSKMAP redirect program");
    // Attach first: the veth has no NAPI (and no queue to bind to in XDP mode)
    // until XDP is set up.
    XFP_TRY(xdp_.attach(env.rx_ifindex, bpf_program__fd(skel_->progs.xfpbc_xsk)));
    XFP_TRY(xsk_.open(env.rx_dev, env.ring_size, reflect_));
    const uint32_t key = 0;
    const int sfd = xsk_.fd();
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.xfpbc_xsks), &key, &sfd, BPF_ANY) != 0)
      return xfp::errno_error("putting the socket into the XSKMAP");
    base_ = xsk_.stats();
    consumed_.store(0);
    busy_ns_.store(0);
    worker_.start(env.rx_ns_fd, env.consumer_cpu, [this](const std::atomic<bool>& stop) {
      return reflect_ ? reflect_loop(stop) : drop_loop(stop);
    });
    detail_ = fmt::format("XSKMAP redirect, copy mode, ring {}, batch {}, {}{}", env.ring_size, env.batch,
                          env.poll ? "poll()" : "spinning", reflect_ ? ", l2fwd reflector (swap MAC/IP/port)" : "");
    return xfp::Ok{};
  }

  CaseCounters counters() const override {
    CaseCounters c;
    c.consumed = consumed_.load(std::memory_order_relaxed);
    auto s = xsk_.stats();
    c.drop_detail["rx_dropped"] = s.rx_dropped - base_.rx_dropped;
    c.drop_detail["rx_ring_full"] = s.rx_ring_full - base_.rx_ring_full;
    c.drop_detail["rx_fill_ring_empty_descs"] = s.rx_fill_ring_empty_descs - base_.rx_fill_ring_empty_descs;
    c.dropped = drops_of(s) - drops_of(base_);
    c.consumer_cpu_ns = worker_.cpu_ns();
    c.consumer_busy_ns = busy_ns_.load(std::memory_order_relaxed);
    return c;
  }
  std::string detail() const override { return detail_; }
  std::string failure() const override { return worker_.failure(); }

  void stop() override {
    worker_.stop();
    xdp_.reset();  // no more redirects before the socket goes
    xsk_.close();
    skel_.reset();
  }

 private:
  // Waits for frames: poll() with a timeout (to see the stop flag) or nothing.
  void idle() {
    if (!env_.poll) return;
    pollfd p{xsk_.fd(), POLLIN, 0};
    ::poll(&p, 1, 100);
  }

  xfp::Status drop_loop(const std::atomic<bool>& stop) {
    uint64_t sink = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      uint32_t idx_rx = 0, idx_fq = 0;
      const uint32_t n = xsk_ring_cons__peek(&xsk_.rx_, env_.batch, &idx_rx);
      if (!n) {
        idle();
        continue;
      }
      const uint64_t t0 = xfpbench::now_ns();
      // The fill ring has room for every buffer we hold: they came out of it.
      while (xsk_ring_prod__reserve(&xsk_.fq_, n, &idx_fq) != n) {
      }
      for (uint32_t i = 0; i < n; ++i) {
        const xdp_desc* d = xsk_ring_cons__rx_desc(&xsk_.rx_, idx_rx + i);
        const uint64_t addr = xsk_umem__extract_addr(d->addr);
        uint64_t head;
        std::memcpy(&head, xsk_.area_ + xsk_umem__add_offset_to_addr(d->addr), sizeof head);
        sink += head;
        *xsk_ring_prod__fill_addr(&xsk_.fq_, idx_fq + i) = addr;
      }
      xsk_ring_prod__submit(&xsk_.fq_, n);
      xsk_ring_cons__release(&xsk_.rx_, n);
      if (xsk_ring_prod__needs_wakeup(&xsk_.fq_)) recvfrom(xsk_.fd(), nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
      consumed_.fetch_add(n, std::memory_order_relaxed);
      busy_ns_.fetch_add(xfpbench::now_ns() - t0, std::memory_order_relaxed);
    }
    sink_ = sink;
    return xfp::Ok{};
  }

  xfp::Status reflect_loop(const std::atomic<bool>& stop) {
    // TX buffers: the second half of the UMEM is never in the fill ring; a
    // received buffer is transmitted as is and returns via completion.
    while (!stop.load(std::memory_order_relaxed)) {
      uint32_t idx = 0, idx_fq = 0;
      // Completed transmissions go back to the fill ring.
      if (uint32_t done = xsk_ring_cons__peek(&xsk_.cq_, env_.batch, &idx)) {
        while (xsk_ring_prod__reserve(&xsk_.fq_, done, &idx_fq) != done) {
        }
        for (uint32_t i = 0; i < done; ++i)
          *xsk_ring_prod__fill_addr(&xsk_.fq_, idx_fq + i) = *xsk_ring_cons__comp_addr(&xsk_.cq_, idx + i);
        xsk_ring_prod__submit(&xsk_.fq_, done);
        xsk_ring_cons__release(&xsk_.cq_, done);
      }
      uint32_t idx_rx = 0, idx_tx = 0;
      const uint32_t n = xsk_ring_cons__peek(&xsk_.rx_, env_.batch, &idx_rx);
      if (!n) {
        idle();
        continue;
      }
      while (xsk_ring_prod__reserve(&xsk_.tx_, n, &idx_tx) != n) {
        // TX ring full: kick the kernel so it drains it.
        sendto(xsk_.fd(), nullptr, 0, MSG_DONTWAIT, nullptr, 0);
      }
      for (uint32_t i = 0; i < n; ++i) {
        const xdp_desc* d = xsk_ring_cons__rx_desc(&xsk_.rx_, idx_rx + i);
        uint8_t* f = xsk_.area_ + xsk_umem__add_offset_to_addr(d->addr);
        if (d->len >= 14) swap_bytes(f, f + 6, 6);  // Ethernet dst <-> src
        if (d->len >= 14 + 20 && f[12] == 0x08 && f[13] == 0x00) {
          uint8_t* ip = f + 14;
          const size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
          swap_bytes(ip + 12, ip + 16, 4);  // IPv4 src <-> dst
          if (ip[9] == 17 && d->len >= 14 + ihl + 8) swap_bytes(ip + ihl, ip + ihl + 2, 2);  // UDP ports
        }
        xdp_desc* t = xsk_ring_prod__tx_desc(&xsk_.tx_, idx_tx + i);
        t->addr = d->addr;
        t->len = d->len;
        t->options = 0;
      }
      xsk_ring_prod__submit(&xsk_.tx_, n);
      xsk_ring_cons__release(&xsk_.rx_, n);
      // Copy-mode TX always needs a kick (MACHINE_NOTES gotcha 5).
      sendto(xsk_.fd(), nullptr, 0, MSG_DONTWAIT, nullptr, 0);
      consumed_.fetch_add(n, std::memory_order_relaxed);
    }
    return xfp::Ok{};
  }

  CaseEnv env_;
  bool reflect_ = false;
  struct SkelDel {
    void operator()(xfpbc_xsk* s) const { xfpbc_xsk__destroy(s); }
  };
  std::unique_ptr<xfpbc_xsk, SkelDel> skel_;
  XdpAttachment xdp_;
  XskSocket xsk_;
  Worker worker_;
  xdp_statistics base_{};
  std::atomic<uint64_t> consumed_{0};
  std::atomic<uint64_t> busy_ns_{0};  // drop_loop: wall time of the batches that held frames
  volatile uint64_t sink_ = 0;
  std::string detail_;
};

}  // namespace

std::unique_ptr<Case> make_rxdrop_case() { return std::make_unique<RxdropCase>(); }

}  // namespace xfpbc
