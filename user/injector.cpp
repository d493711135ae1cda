#include "xfp/injector.hpp"

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "xfp/frame.hpp"

namespace xfp {

namespace {
constexpr auto kRecordLifetime = std::chrono::seconds(5);
constexpr size_t kMaxRecords = 1 << 16;
constexpr size_t kMaxChain = 256;
}  // namespace

// FNV-1a over the bytes and the length: cheap, and only computed while
// injection records exist.
uint64_t frame_hash(const uint8_t* data, uint32_t len) {
  uint64_t h = 0xcbf29ce484222325ull ^ len;
  for (uint32_t i = 0; i < len; ++i) {
    h ^= data[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

Injector::Injector() : thread_([this] { completion_loop(); }) {}

Injector::~Injector() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    // Whatever is still in flight completes as dropped: exactly once.
    for (auto& [token, p] : pending_) to_run_.emplace_back(p, XFP_STATUS_DROPPED);
    pending_.clear();
  }
  cv_.notify_all();
  thread_.join();
  for (xfp_injection_handle* h : handles_) delete h;
}

void Injector::add_interface(uint32_t key, uint32_t ifindex, TxPort* send, TxPort* receive) {
  std::lock_guard lock(mu_);
  ports_[key] = Ports{ifindex, send, receive};
}

void Injector::remove_interface(uint32_t key) {
  std::vector<uint64_t> done, abandoned;
  {
    std::lock_guard lock(mu_);
    auto it = ports_.find(key);
    if (it == ports_.end()) return;
    if (it->second.send) it->second.send->abandon(done, abandoned);
    if (it->second.receive) it->second.receive->abandon(done, abandoned);
    ports_.erase(it);
    for (uint64_t t : done) finish(t, 0);
    for (uint64_t t : abandoned) finish(t, XFP_STATUS_DROPPED);
  }
  cv_.notify_all();
}

int Injector::create_handle(const void* owner, uint32_t type, xfp_injection_handle** out) {
  if (!out) return -EINVAL;
  if (type != XFP_INJECTION_L2) return -EPROTONOSUPPORT;
  auto* h = new (std::nothrow) xfp_injection_handle();
  if (!h) return -ENOMEM;
  h->type = type;
  h->owner = owner;
  std::lock_guard lock(mu_);
  h->id = next_handle_id_++;
  handles_.push_back(h);
  *out = h;
  return 0;
}

void Injector::destroy_handle(xfp_injection_handle* h) {
  if (!h) return;
  {
    std::lock_guard lock(mu_);
    auto it = std::find(handles_.begin(), handles_.end(), h);
    if (it == handles_.end()) return;
    h->closing = true;
    // Frames still in flight on this handle complete now, with "closing";
    // their chunks come back through the completion ring later, silently.
    for (auto pit = pending_.begin(); pit != pending_.end();) {
      if (pit->second.handle == h) {
        to_run_.emplace_back(pit->second, XFP_STATUS_HANDLE_CLOSING);
        pit = pending_.erase(pit);
      } else {
        ++pit;
      }
    }
    handles_.erase(it);
  }
  cv_.notify_all();
  // The callbacks queued above may still name the handle: wait for them.
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] {
    for (auto& [p, s] : to_run_)
      if (p.handle == h) return false;
    return running_handle_ != h;
  });
  delete h;
}

void Injector::destroy_handles_of(const void* owner) {
  std::vector<xfp_injection_handle*> mine;
  {
    std::lock_guard lock(mu_);
    for (auto* h : handles_)
      if (h->owner == owner) mine.push_back(h);
  }
  for (auto* h : mine) destroy_handle(h);
}

int Injector::inject(xfp_injection_handle* h, Path path, uint32_t key, xfp_frame* frames, uint64_t context,
                     xfp_inject_complete_fn complete, void* completion_ctx, const InjectionOrigin* origin) {
  if (!h || !frames) return -EINVAL;
  if (h->type != XFP_INJECTION_L2) return XFP_STATUS_HANDLE_STALE;
  if (h->closing) return XFP_STATUS_HANDLE_CLOSING;
  std::vector<xfp_frame*> chain;
  for (xfp_frame* f = frames; f; f = frame_next(f)) {
    if (chain.size() == kMaxChain) return -E2BIG;
    chain.push_back(f);
  }
  std::unique_lock lock(mu_);
  auto it = ports_.find(key);
  if (it == ports_.end()) return XFP_STATUS_NOT_READY;
  TxPort* port = path == Path::Receive ? it->second.receive : it->second.send;
  if (!port) return XFP_STATUS_NOT_READY;
  const uint32_t ifindex = it->second.ifindex;

  // Records first: the frame may come back before send() returns.
  {
    std::lock_guard rl(records_mu_);
    auto now = std::chrono::steady_clock::now();
    if (records_.size() > kMaxRecords)
      for (auto r = records_.begin(); r != records_.end();)
        r = now - r->second.at > kRecordLifetime ? records_.erase(r) : std::next(r);
    for (xfp_frame* f : chain) {
      Record& r = records_[frame_hash(frame_data(f), frame_len(f))];
      r.origin.handle_id = h->id;
      r.origin.context = context;
      r.origin.earlier.clear();
      if (origin && origin->handle_id) {
        r.origin.earlier = origin->earlier;
        r.origin.earlier.push_back(origin->handle_id);
      }
      r.count++;
      r.at = now;
    }
    live_records_ = records_.size();
  }

  std::vector<TxPort::Frame> tx;
  std::vector<uint64_t> tokens;
  for (xfp_frame* f : chain) {
    uint64_t token = next_token_++;
    tokens.push_back(token);
    tx.push_back({frame_data(f), frame_len(f), token});
  }
  // Registered before sending: a completion may be reaped at once.
  for (size_t i = 0; i < chain.size(); ++i)
    pending_.emplace(tokens[i], Pending{chain[i], complete, completion_ctx, h});
  int rc = port->send(tx.data(), tx.size(), ifindex);
  if (rc != 0) {
    for (uint64_t t : tokens) pending_.erase(t);
    lock.unlock();
    std::lock_guard rl(records_mu_);
    for (xfp_frame* f : chain) {
      auto r = records_.find(frame_hash(frame_data(f), frame_len(f)));
      if (r != records_.end() && --r->second.count == 0) records_.erase(r);
    }
    live_records_ = records_.size();
    refused_ += chain.size();
    return rc == -ENOBUFS ? XFP_STATUS_DROPPED : rc;
  }
  injected_ += chain.size();
  lock.unlock();
  cv_.notify_all();  // the completion thread reaps
  return 0;
}

bool Injector::deliver(uint32_t key, const uint8_t* data, uint32_t len) {
  const TxPort::Frame f{data, len, 0};
  return deliver(key, &f, 1) == 1;
}

size_t Injector::deliver(uint32_t key, const TxPort::Frame* frames, size_t n) {
  if (n == 0) return 0;
  TxPort* port = nullptr;
  uint32_t ifindex = 0;
  {
    std::lock_guard lock(mu_);
    auto it = ports_.find(key);
    if (it != ports_.end()) {
      port = it->second.receive;
      ifindex = it->second.ifindex;
    }
  }
  size_t queued = 0;
  if (port) {
    const int rc = port->send(frames, n, ifindex);
    if (rc == 0) {
      queued = n;
    } else if (n > 1 && (rc == -ENOBUFS || rc == -EMSGSIZE)) {
      // TxPort::send is all or none: a frame too big, or too little room for
      // the whole batch, must not cost the frames that do fit.
      for (size_t i = 0; i < n; ++i)
        if (port->send(&frames[i], 1, ifindex) == 0) ++queued;
    }
  }
  delivered_ += queued;
  deliver_failed_ += n - queued;
  return queued;
}

InjectionOrigin Injector::take_origin(const uint8_t* data, uint32_t len) {
  std::lock_guard rl(records_mu_);
  auto it = records_.find(frame_hash(data, len));
  if (it == records_.end()) return {};
  if (std::chrono::steady_clock::now() - it->second.at > kRecordLifetime) {
    records_.erase(it);
    live_records_ = records_.size();
    return {};
  }
  InjectionOrigin o = it->second.origin;
  if (--it->second.count == 0) records_.erase(it);
  live_records_ = records_.size();
  return o;
}

xfp_injection_state Injector::state_for(const xfp_injection_handle* asker, const InjectionOrigin& origin) {
  if (origin.handle_id == 0) return XFP_NOT_INJECTED;
  if (asker && origin.handle_id == asker->id) return XFP_INJECTED_BY_SELF;
  if (asker && std::find(origin.earlier.begin(), origin.earlier.end(), asker->id) != origin.earlier.end())
    return XFP_PREVIOUSLY_INJECTED_BY_SELF;
  return XFP_INJECTED_BY_OTHER;
}

void Injector::finish(uint64_t token, int status) {
  auto it = pending_.find(token);
  if (it == pending_.end()) return;  // completed already (handle closed first)
  to_run_.emplace_back(it->second, status);
  pending_.erase(it);
}

void Injector::completion_loop() {
  std::unique_lock lock(mu_);
  std::vector<uint64_t> done;
  for (;;) {
    // Frames in flight: reap every millisecond; otherwise sleep until woken.
    if (to_run_.empty()) {
      if (stopping_) return;
      if (pending_.empty()) cv_.wait(lock);
      else cv_.wait_for(lock, std::chrono::milliseconds(1));
    }
    done.clear();
    for (auto& [key, ports] : ports_) {
      if (ports.send) ports.send->reap(done);
      if (ports.receive && ports.receive != ports.send) ports.receive->reap(done);
    }
    for (uint64_t t : done) finish(t, 0);
    while (!to_run_.empty()) {
      auto [p, status] = to_run_.front();
      to_run_.pop_front();
      running_handle_ = p.handle;
      lock.unlock();
      if (p.complete) p.complete(p.ctx, p.frame, status);
      ++completed_;
      lock.lock();
      running_handle_ = nullptr;
      cv_.notify_all();
    }
  }
}

Injector::Stats Injector::stats() const {
  return {injected_.load(), refused_.load(), completed_.load(), delivered_.load(), deliver_failed_.load()};
}

}  // namespace xfp
