#include "xfp/tx_port.hpp"

#include <linux/if_xdp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "xfp/abi.h"

namespace xfp {

// Where a received frame's data starts in its chunk; used for sends too so
// that a frame may grow at the front in place later if needed.
static constexpr uint32_t kTxHeadroom = 256;

int TxPort::send(const Frame* frames, size_t n, uint32_t trailer_ifindex) {
  const uint32_t extra = trailer_ ? sizeof(xfp_reinject_trailer) : 0;
  for (size_t i = 0; i < n; ++i)
    if (frames[i].len + extra + kTxHeadroom > socket_.frame_size()) return -EMSGSIZE;
  std::lock_guard lock(mu_);
  reap_locked(completed_);
  uint32_t idx = 0;
  if (socket_.tx_free_count() < n || socket_.tx_reserve(static_cast<uint32_t>(n), idx) != n) {
    ++refused_;
    return -ENOBUFS;
  }
  for (size_t i = 0; i < n; ++i) {
    uint64_t chunk = 0;
    socket_.tx_alloc(chunk);
    uint8_t* dst = socket_.data(chunk + kTxHeadroom);
    std::memcpy(dst, frames[i].data, frames[i].len);
    if (trailer_) {
      xfp_reinject_trailer t{trailer_ifindex, XFP_REINJECT_MAGIC};
      std::memcpy(dst + frames[i].len, &t, sizeof t);
    }
    xdp_desc* d = socket_.tx_desc(idx + static_cast<uint32_t>(i));
    d->addr = chunk + kTxHeadroom;
    d->len = frames[i].len + extra;
    d->options = 0;
    if (frames[i].token) token_of_chunk_[chunk] = frames[i].token;
  }
  socket_.tx_submit(static_cast<uint32_t>(n));
  sent_ += n;
  kick_all();
  return 0;
}

// Copy mode transmits at most 32 descriptors per kick (the kernel's
// TX_BATCH_SIZE) and answers EAGAIN when it stopped there with more in the
// ring. A batch of permits has no completion that would make the injector's
// thread kick again, so kick until the ring is empty: otherwise the tail of a
// burst would wait in the ring for the next frame to arrive. EAGAIN also
// means "completion ring full" or "device busy", hence the bound.
void TxPort::kick_all() {
  for (uint32_t tries = socket_.tx_outstanding() / 32 + 1; tries > 0; --tries) {
    if (::sendto(socket_.fd(), nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) return;
    if (errno != EAGAIN) return;  // not an error here either (XskSocket::kick); the next send or reap retries
  }
}

void TxPort::reap_locked(std::vector<uint64_t>& done) {
  std::vector<uint64_t> chunks;
  socket_.drain_completions(chunks);
  for (uint64_t addr : chunks) {
    uint64_t base = socket_.chunk_base(addr);
    if (auto it = token_of_chunk_.find(base); it != token_of_chunk_.end()) {
      done.push_back(it->second);
      token_of_chunk_.erase(it);
    }
    socket_.tx_free(base);
  }
}

void TxPort::reap(std::vector<uint64_t>& done) {
  std::lock_guard lock(mu_);
  // A kick also lets copy mode finish what an earlier kick left (ring busy).
  if (socket_.tx_outstanding()) socket_.kick();
  reap_locked(done);
  done.insert(done.end(), completed_.begin(), completed_.end());
  completed_.clear();
}

void TxPort::abandon(std::vector<uint64_t>& done, std::vector<uint64_t>& abandoned) {
  std::lock_guard lock(mu_);
  reap_locked(completed_);
  done.insert(done.end(), completed_.begin(), completed_.end());
  completed_.clear();
  for (auto& [chunk, token] : token_of_chunk_) abandoned.push_back(token);
  token_of_chunk_.clear();
}

}  // namespace xfp
