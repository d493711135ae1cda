// The transmit side of one AF_XDP socket, shared by every thread that sends
// through it (workers delivering permitted frames, plugins injecting). One
// mutex guards the transmit chunks, the tx ring and the completion ring; the
// receive side of the same socket stays with its worker, untouched.
//
// Each frame is copied into a transmit chunk (with the receive-injection
// trailer when the port feeds the internal veth), queued and kicked at once,
// once per send() call however many frames it carries (again while the
// kernel says EAGAIN): in copy mode the kernel sends during the kick. A
// frame that carries a completion is remembered by chunk until the
// completion ring returns the chunk; its callback is then queued for the
// injector's completion thread, never run under the lock or inside the
// caller's inject call.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "xfp/xsk.hpp"

namespace xfp {

// What happens when a queued frame's transmission completes.
struct TxCompletion {
  uint64_t token = 0;  // the injector's pending id; 0: nothing to report
};

class TxPort {
 public:
  // `trailer` true: append struct xfp_reinject_trailer (receive injection).
  TxPort(XskSocket& socket, bool trailer) : socket_(socket), trailer_(trailer) {}

  struct Frame {
    const uint8_t* data;
    uint32_t len;
    uint64_t token;  // reported by reap() when sent; 0: nothing to report
  };
  // Copies and sends frames, all or none: -EMSGSIZE (one does not fit a
  // chunk) or -ENOBUFS (not enough free chunks or ring slots) leave nothing
  // queued. `trailer_ifindex` is the receive target. A failed kick is not an
  // error: the frames are in the ring and the next kick sends them.
  int send(const Frame* frames, size_t n, uint32_t trailer_ifindex);
  int send(const uint8_t* data, uint32_t len, uint32_t trailer_ifindex, uint64_t token) {
    Frame f{data, len, token};
    return send(&f, 1, trailer_ifindex);
  }

  // Collects finished transmissions: their tokens go to `done`.
  void reap(std::vector<uint64_t>& done);
  // The port is going away: finished transmissions to `done`, the tokens of
  // frames still in flight to `abandoned`.
  void abandon(std::vector<uint64_t>& done, std::vector<uint64_t>& abandoned);

  uint64_t sent() const { return sent_; }
  uint64_t refused() const { return refused_; }

 private:
  void reap_locked(std::vector<uint64_t>& done);
  void kick_all();  // under mu_

  XskSocket& socket_;
  const bool trailer_;
  std::mutex mu_;
  std::unordered_map<uint64_t, uint64_t> token_of_chunk_;
  std::vector<uint64_t> completed_;  // scratch
  uint64_t sent_ = 0, refused_ = 0;
};

}  // namespace xfp
