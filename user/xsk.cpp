#include "xfp/xsk.hpp"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace xfp {

#ifndef SO_PREFER_BUSY_POLL
#define SO_PREFER_BUSY_POLL 69
#endif
#ifndef SO_BUSY_POLL_BUDGET
#define SO_BUSY_POLL_BUDGET 70
#endif

Result<std::unique_ptr<XskSocket>> XskSocket::open(const std::string& ifname, uint32_t queue,
                                                   const XskOptions& options) {
  if (options.frame_size == 0 || (options.frame_size & (options.frame_size - 1)) != 0)
    return make_error(EINVAL, fmt::format("AF_XDP frame size {} is not a power of two", options.frame_size));
  std::unique_ptr<XskSocket> s(new XskSocket());
  s->ifname_ = ifname;
  s->queue_ = queue;
  s->options_ = options;
  s->area_size_ = size_t(options.frames) * options.frame_size;
  void* area = ::mmap(nullptr, s->area_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) return errno_error(fmt::format("mapping a {}-byte UMEM", s->area_size_));
  s->area_ = static_cast<uint8_t*>(area);

  xsk_umem_config ucfg{};
  ucfg.fill_size = options.ring_size;
  ucfg.comp_size = options.ring_size;
  ucfg.frame_size = options.frame_size;
  ucfg.frame_headroom = 0;
  ucfg.flags = 0;
  if (int err = xsk_umem__create(&s->umem_, s->area_, s->area_size_, &s->fill_, &s->comp_, &ucfg); err)
    return make_error(-err, fmt::format("creating the UMEM for {} queue {}", ifname, queue));

  xsk_socket_config scfg{};
  scfg.rx_size = options.rx ? options.ring_size : 0;
  scfg.tx_size = options.tx ? options.ring_size : 0;
  // xfp loads its own XDP program and fills its own XSKMAP.
  scfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
  // veth refuses zero-copy (MACHINE_NOTES 5): copy mode, always.
  scfg.bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP;
  if (int err = xsk_socket__create(&s->xsk_, ifname.c_str(), queue, s->umem_, options.rx ? &s->rx_ : nullptr,
                                   options.tx ? &s->tx_ : nullptr, &scfg);
      err)
    return make_error(-err, fmt::format("binding an AF_XDP socket to {} queue {}", ifname, queue));

  if (options.busy_poll) {
    int one = 1, usecs = 20, budget = 64, fd = s->fd();
    if (::setsockopt(fd, SOL_SOCKET, SO_PREFER_BUSY_POLL, &one, sizeof one) != 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &usecs, sizeof usecs) != 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL_BUDGET, &budget, sizeof budget) != 0)
      return errno_error(fmt::format("enabling busy polling on {} queue {}", ifname, queue));
  }

  if (options.rx_frames > options.frames)
    return make_error(EINVAL, fmt::format("{} receive chunks in a UMEM of {}", options.rx_frames, options.frames));
  for (uint32_t i = 0; i < options.frames; ++i)
    (i < options.rx_frames ? s->rx_free_ : s->tx_free_).push_back(uint64_t(i) * options.frame_size);
  if (options.rx && options.fill_at_start) s->refill(options.ring_size);
  return s;
}

XskSocket::~XskSocket() {
  if (xsk_) xsk_socket__delete(xsk_);
  if (umem_) xsk_umem__delete(umem_);
  if (area_) ::munmap(area_, area_size_);
}

int XskSocket::fd() const { return xsk_socket__fd(xsk_); }

bool XskSocket::tx_alloc(uint64_t& addr) {
  if (tx_free_.empty()) return false;
  addr = tx_free_.back();
  tx_free_.pop_back();
  return true;
}

uint32_t XskSocket::refill(uint32_t max) {
  uint32_t n = static_cast<uint32_t>(std::min<size_t>(max, rx_free_.size()));
  if (n == 0) return 0;
  uint32_t idx = 0;
  // Reserve what fits: the ring may hold fewer free slots than asked.
  uint32_t room = xsk_prod_nb_free(&fill_, n);
  if (room < n) n = room;
  if (n == 0 || xsk_ring_prod__reserve(&fill_, n, &idx) != n) return 0;
  for (uint32_t i = 0; i < n; ++i) {
    *xsk_ring_prod__fill_addr(&fill_, idx + i) = rx_free_.back();
    rx_free_.pop_back();
  }
  xsk_ring_prod__submit(&fill_, n);
  return n;
}

int XskSocket::kick() {
  if (::sendto(fd(), nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) return 0;
  if (errno == EAGAIN || errno == EBUSY || errno == ENOBUFS || errno == ENETDOWN) return 0;
  return -errno;
}

uint32_t XskSocket::drain_completions(std::vector<uint64_t>& out, uint32_t max) {
  uint32_t idx = 0;
  uint32_t n = xsk_ring_cons__peek(&comp_, max, &idx);
  for (uint32_t i = 0; i < n; ++i) out.push_back(*xsk_ring_cons__comp_addr(&comp_, idx + i));
  if (n) xsk_ring_cons__release(&comp_, n);
  tx_outstanding_ -= std::min(tx_outstanding_, n);
  return n;
}

bool XskSocket::wait_rx(int timeout_ms) {
  pollfd p{fd(), POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) > 0 && (p.revents & POLLIN);
}

Result<xdp_statistics> XskSocket::statistics() const {
  xdp_statistics st{};
  socklen_t len = sizeof st;
  if (::getsockopt(fd(), SOL_XDP, XDP_STATISTICS, &st, &len) != 0)
    return errno_error(fmt::format("reading XDP_STATISTICS of {} queue {}", ifname_, queue_));
  return st;
}

}  // namespace xfp
