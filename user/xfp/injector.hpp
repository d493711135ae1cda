// Injection: handles, receive and send paths, completions, injection state
// (FwpsInjectMacReceiveAsync0 / FwpsInjectMacSendAsync0 and
// FwpsQueryPacketInjectionState, for layer 2).
//
// Paths, per attached interface (attachment key):
//  - send: the interface's own AF_XDP socket (queue 0's worker socket);
//    the frame leaves on the interface.
//  - receive: the internal veth of the interface's namespace, through which
//    xfp_reinject redirects the frame into the interface's ingress, so the
//    host stack receives it as if it had arrived there.
//
// Completions: an accepted frame's completion runs exactly once, on the
// injector's completion thread, never inside the inject call: with status 0
// when the kernel has taken the frame, XFP_STATUS_HANDLE_CLOSING when its
// handle was destroyed first, XFP_STATUS_DROPPED when its interface went away
// with the frame still queued. A refused frame's completion never runs.
//
// Injection state: before sending, the injector records the frame's bytes
// (a 64-bit hash) with the handle and context; a layer that sees the same
// bytes again within a few seconds reports INJECTED_BY_SELF (the asking
// handle injected it), PREVIOUSLY_INJECTED_BY_SELF (an earlier injection of
// the chain was the asker's), or INJECTED_BY_OTHER. Kernel metadata cannot
// follow a frame across a veth wire or a stack traversal; the bytes do.
// Known limit: a byte-identical frame that a host really sends inside that
// window is reported as injected (one record per injection is consumed).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "xfp/callout.h"
#include "xfp/tx_port.hpp"

struct xfp_injection_handle {
  uint32_t type = 0;
  const void* owner = nullptr;  // the plugin that created it (xfp_host)
  uint64_t id = 0;
  std::atomic<bool> closing{false};
};

namespace xfp {

// What the injection record of a punted frame says (kept with its metadata).
struct InjectionOrigin {
  uint64_t handle_id = 0;           // 0: not injected
  uint64_t context = 0;
  std::vector<uint64_t> earlier;    // handles of earlier injections of the frame
};

uint64_t frame_hash(const uint8_t* data, uint32_t len);

class Injector {
 public:
  Injector();
  ~Injector();

  // Interfaces come and go with attach/detach. Removing one completes its
  // frames still queued with XFP_STATUS_DROPPED.
  void add_interface(uint32_t key, uint32_t ifindex, TxPort* send, TxPort* receive);
  void remove_interface(uint32_t key);

  int create_handle(const void* owner, uint32_t type, xfp_injection_handle** out);
  void destroy_handle(xfp_injection_handle* h);
  void destroy_handles_of(const void* owner);

  enum class Path { Receive, Send };
  int inject(xfp_injection_handle* h, Path path, uint32_t key, xfp_frame* frames, uint64_t context,
             xfp_inject_complete_fn complete, void* completion_ctx, const InjectionOrigin* origin = nullptr);

  // Permit after a callout: the frame goes up the receive path of `key`, no
  // completion. False if it could not be queued (counted as a drop).
  bool deliver(uint32_t key, const uint8_t* data, uint32_t len);
  // The permitted frames of one worker batch, in order, in one go: one lock
  // and one kick for the lot instead of one each (the kick, a sendto(), is
  // most of a single frame's cost). Returns how many were queued; the rest
  // are counted as drops. Tokens must be 0: a delivery has no completion.
  size_t deliver(uint32_t key, const TxPort::Frame* frames, size_t n);

  // For a punted frame: the injection record of its bytes (consumed), if any.
  bool records_pending() const { return live_records_.load(std::memory_order_relaxed) > 0; }
  InjectionOrigin take_origin(const uint8_t* data, uint32_t len);
  static xfp_injection_state state_for(const xfp_injection_handle* asker, const InjectionOrigin& origin);

  struct Stats {
    uint64_t injected = 0, refused = 0, completed = 0, delivered = 0, deliver_failed = 0;
  };
  Stats stats() const;

 private:
  struct Pending {
    xfp_frame* frame;
    xfp_inject_complete_fn complete;
    void* ctx;
    xfp_injection_handle* handle;
    int status_override = 0;  // set when the handle closed first
  };
  struct Ports {
    uint32_t ifindex;
    TxPort* send;
    TxPort* receive;
  };
  struct Record {
    InjectionOrigin origin;
    uint32_t count = 0;
    std::chrono::steady_clock::time_point at;
  };

  void completion_loop();
  void finish(uint64_t token, int status);  // moves a pending to the run queue

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint32_t, Ports> ports_;
  std::unordered_map<uint64_t, Pending> pending_;
  std::vector<xfp_injection_handle*> handles_;
  std::deque<std::pair<Pending, int>> to_run_;
  uint64_t next_token_ = 1, next_handle_id_ = 1;
  bool stopping_ = false;
  xfp_injection_handle* running_handle_ = nullptr;  // whose completion runs now

  std::mutex records_mu_;
  std::unordered_map<uint64_t, Record> records_;
  std::atomic<size_t> live_records_{0};

  std::atomic<uint64_t> injected_{0}, refused_{0}, completed_{0}, delivered_{0}, deliver_failed_{0};
  std::thread thread_;
};

}  // namespace xfp
