#include "xfp/flow_service_impl.hpp"

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include <spdlog/spdlog.h>

#include "xfp/punt_worker.hpp"

namespace xfp {

namespace {

uint8_t action_of(uint8_t verdict) {
  return verdict == XFP_FLOW_VERDICT_PERMIT ? XFP_ACTION_PERMIT : XFP_ACTION_BLOCK;
}

std::string key_bytes(const xfp_flow_key& k) { return std::string(reinterpret_cast<const char*>(&k), sizeof k); }

bool decision_matches(uint8_t verdict, Action action) {
  return (verdict == XFP_FLOW_VERDICT_PERMIT && action == Action::Permit) ||
         (verdict == XFP_FLOW_VERDICT_BLOCK && action == Action::Block);
}

// Re-evaluates an offloaded flow: the offloading callout answers with its
// verdict; an inspection callout cannot change a verdict (it continues); any
// other callout on the way makes the outcome unknown.
class RecheckInvoker final : public CalloutInvoker {
 public:
  RecheckInvoker(uint16_t callout, uint8_t verdict) : callout_(callout), verdict_(verdict) {}
  bool other_callout = false;
  CalloutVerdict invoke(const Filter& f, const xfp_fields&, bool) override {
    if (PolicySnapshot::callout_id_of(f) == callout_) return {true, action_of(verdict_), false};
    if (f.action == Action::CalloutInspection) return {true, XFP_ACTION_CONTINUE, false};
    other_callout = true;
    return {};
  }

 private:
  uint16_t callout_;
  uint8_t verdict_;
};

}  // namespace

uint64_t FlowServiceImpl::now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);  // bpf_ktime_get_ns()'s clock
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

FlowServiceImpl::FlowServiceImpl(CalloutHost& host, const FlowTableOptions& options, OffloadBackend* offloads)
    : host_(host), backend_(offloads), table_(options, *this), sweeper_([this] { run(); }) {}

FlowServiceImpl::~FlowServiceImpl() {
  {
    std::lock_guard lock(run_mu_);
    stop_ = true;
  }
  run_cv_.notify_all();
  sweeper_.join();
}

// ---- the sweeper ----

void FlowServiceImpl::run() {
  // A quarter of the idle timeout, between 10 ms and 1 s: a flow outlives
  // its timeout by at most that much.
  const auto period = std::chrono::nanoseconds(
      std::clamp<uint64_t>(table_.options().idle_timeout_ns / 4, 10'000'000ull, 1'000'000'000ull));
  std::unique_lock lock(run_mu_);
  while (!stop_) {
    run_cv_.wait_for(lock, period, [this] { return stop_ || woken_; });
    if (stop_) break;
    const bool only_flush = woken_;
    woken_ = false;
    lock.unlock();
    if (only_flush) table_.flush();
    else sweep(now_ns());
    lock.lock();
  }
}

void FlowServiceImpl::wake() noexcept {
  {
    std::lock_guard lock(run_mu_);
    woken_ = true;
  }
  run_cv_.notify_one();
}

void FlowServiceImpl::sweep(uint64_t now) {
  // Offloaded flows: their frames no longer reach the workers, so the
  // kernel's last-seen time is the flow's.
  std::vector<std::pair<uint64_t, FlowEndReason>> ended;
  std::vector<std::pair<uint64_t, uint64_t>> seen;
  if (backend_) {
    std::lock_guard lock(offload_mu_);
    if (!offloads_.empty()) {
      std::map<std::pair<std::string, uint8_t>, OffloadRecord*> by_key;
      for (auto& [k, r] : offloads_) by_key[{key_bytes(r.key.flow), r.key.layer}] = &r;
      Status s = backend_->read_all([&](const xfp_offload_key& key, const xfp_offload& v) {
        auto it = by_key.find({key_bytes(key.flow), key.layer});
        if (it == by_key.end()) return;
        OffloadRecord& r = *it->second;
        r.packets = v.packets;
        r.bytes = v.bytes;
        r.last_seen_ns = v.last_seen_ns;
        r.kernel_flags = v.flags;
        seen.emplace_back(r.handle, v.last_seen_ns);
        if (v.flags & XFP_OFFLOAD_RST_SEEN) ended.emplace_back(r.handle, FlowEndReason::TcpRst);
        else if (v.flags & XFP_OFFLOAD_FIN_SEEN) ended.emplace_back(r.handle, FlowEndReason::TcpFin);
      });
      if (!s) {
        ++errors_;
        spdlog::warn("flows: reading the offload entries: {}", s.error().message);
      }
    }
  }
  // An entry the kernel's LRU map evicted is simply not seen: the flow idles out.
  for (auto [handle, t] : seen) table_.touch(handle, t);
  for (auto [handle, reason] : ended) (void)table_.end_flow(handle, reason);
  (void)table_.expire(now);
  (void)table_.flush();
}

// ---- FlowDeleteSink ----

bool FlowServiceImpl::deliver(const FlowEnd& end) noexcept {
  // The reference keeps the plugin loaded during the call. None: the
  // callout is being retired, and retire_callout delivers this end.
  CalloutRef ref = host_.acquire(end.callout);
  if (!ref) return false;
  ref.flow_delete(end.layer, end.handle, end.context);
  return true;
}

void FlowServiceImpl::offload_ended(uint64_t handle, const xfp_flow_key&) noexcept {
  std::lock_guard lock(offload_mu_);
  for (auto it = offloads_.lower_bound({handle, 0}); it != offloads_.end() && it->first.first == handle;)
    drop_locked(it++);
}

void FlowServiceImpl::drop_locked(std::map<std::pair<uint64_t, uint8_t>, OffloadRecord>::iterator it) {
  if (backend_)
    if (Status s = backend_->remove(it->second.key); !s && s.error().code != ENOENT) {
      ++errors_;
      spdlog::warn("flows: removing an offload entry: {}", s.error().message);
    }
  offloads_.erase(it);
}

// ---- contexts ----

int FlowServiceImpl::associate_context(const RegisteredCallout& callout, uint64_t flow_handle, uint8_t layer,
                                       uint64_t context) noexcept {
  if (!callout.flow_delete) return -EINVAL;
  // Only a callout in service associates: retire_callout then finds every
  // context it made (it runs once no reference is left).
  CalloutRef pin = host_.acquire(callout.id);
  if (!pin || &*pin != &callout) return -EINVAL;
  return table_.associate(flow_handle, layer, callout.id, context);
}

int FlowServiceImpl::remove_context(const RegisteredCallout& callout, uint64_t flow_handle, uint8_t layer) noexcept {
  return table_.remove(flow_handle, layer, callout.id);
}

void FlowServiceImpl::retire_callout(const RegisteredCallout& callout) noexcept {
  table_.retire_callout(callout.id, [&](const FlowEnd& e) {
    if (callout.flow_delete) callout.flow_delete(callout.context, e.layer, e.handle, e.context);
  });
  std::vector<uint64_t> handles;
  {
    std::lock_guard lock(offload_mu_);
    for (auto it = offloads_.begin(); it != offloads_.end();) {
      if (it->second.callout == callout.id) {
        handles.push_back(it->first.first);
        drop_locked(it++);
      } else {
        ++it;
      }
    }
  }
  for (uint64_t h : handles) {
    bool any = false;
    {
      std::lock_guard lock(offload_mu_);
      auto it = offloads_.lower_bound({h, 0});
      any = it != offloads_.end() && it->first.first == h;
    }
    if (!any) table_.set_offloaded(h, false);
  }
}

// ---- offload ----

int FlowServiceImpl::offload(const RegisteredCallout& callout, const xfp_classify_item* item,
                             uint32_t verdict) noexcept {
  if (!item || !item->meta) return -EINVAL;
  if (verdict != XFP_FLOW_VERDICT_PERMIT && verdict != XFP_FLOW_VERDICT_BLOCK) return -EINVAL;
  if (!backend_) return -EOPNOTSUPP;
  if (!item->action_right) return -EPERM;
  const PuntFrameInfo* info = punt_info_of(item->meta);
  if (item->meta->flow_handle == 0 || !info->flow.valid()) return -ENOENT;
  info->offload_verdict = static_cast<uint8_t>(verdict);
  info->offload_callout = callout.id;
  return 0;
}

void FlowServiceImpl::complete_offload(uint64_t handle, const xfp_flow_key& key, uint8_t layer, uint16_t callout,
                                       uint8_t verdict, Action action, const xfp_fields& fields,
                                       uint64_t generation) {
  std::lock_guard lock(offload_mu_);
  if (!backend_) return;
  if (!decision_matches(verdict, action)) {
    ++mismatch_;
    return;
  }
  OffloadRecord r;
  r.handle = handle;
  r.key.flow = key;
  r.key.layer = layer;
  r.verdict = verdict;
  r.callout = callout;
  r.gen_first = r.gen_last = static_cast<uint32_t>(generation);
  r.fields = fields;
  if (Status s = backend_->offload(r.key, verdict, r.gen_first); !s) {
    ++errors_;
    spdlog::warn("flows: offloading a verdict: {}", s.error().message);
    return;
  }
  // The flow is held by the frame's ticket: it is in the table.
  table_.set_offloaded(handle, true);
  offloads_[{handle, layer}] = r;
  ++installed_;
}

int FlowServiceImpl::offload_remove(uint64_t flow_handle, uint8_t layer) noexcept {
  bool any;
  {
    std::lock_guard lock(offload_mu_);
    auto it = offloads_.find({flow_handle, layer});
    if (it == offloads_.end()) return -ENOENT;
    drop_locked(it);
    auto rest = offloads_.lower_bound({flow_handle, 0});
    any = rest != offloads_.end() && rest->first.first == flow_handle;
  }
  if (!any) table_.set_offloaded(flow_handle, false);
  return 0;
}

void FlowServiceImpl::prepare_generation(const PolicySnapshot& next) {
  std::lock_guard lock(offload_mu_);
  if (!backend_ || offloads_.empty()) return;
  const auto gen = static_cast<uint32_t>(next.generation());
  std::map<std::pair<std::string, uint8_t>, OffloadRecord*> by_key;
  for (auto& [k, r] : offloads_) {
    RecheckInvoker inv(r.callout, r.verdict);
    const Decision d = next.classify(static_cast<Layer>(r.key.layer), r.fields, inv);
    r.keep = !inv.other_callout && !d.absorbed && decision_matches(r.verdict, d.action);
    by_key[{key_bytes(r.key.flow), r.key.layer}] = &r;
  }
  // Entries the service does not know (left over) are not kept.
  Status s = backend_->revalidate(next.generation(), [&](const xfp_offload_key& key) {
    auto it = by_key.find({key_bytes(key.flow), key.layer});
    return it != by_key.end() && it->second->keep;
  });
  if (!s) {
    ++errors_;
    spdlog::warn("flows: re-stamping the offload entries: {}", s.error().message);
    for (auto& [k, r] : offloads_) r.keep = false;  // dropped after the install: punted again
  }
  for (auto& [k, r] : offloads_)
    if (r.keep) r.gen_last = gen;
    else if (r.gen_last - r.gen_first >= gen - r.gen_first) r.gen_last = gen - 1;  // undo an earlier stamp
}

void FlowServiceImpl::generation_installed(uint64_t generation) {
  std::vector<uint64_t> dropped;
  {
    std::lock_guard lock(offload_mu_);
    const auto gen = static_cast<uint32_t>(generation);
    for (auto it = offloads_.begin(); it != offloads_.end();) {
      if (it->second.gen_last == gen) {
        ++restamped_;
        ++it;
        continue;
      }
      dropped.push_back(it->first.first);
      ++dropped_;
      drop_locked(it++);
    }
    std::erase_if(dropped, [&](uint64_t h) {
      auto it = offloads_.lower_bound({h, 0});
      return it != offloads_.end() && it->first.first == h;
    });
  }
  for (uint64_t h : dropped) table_.set_offloaded(h, false);
}

std::vector<OffloadRecord> FlowServiceImpl::offloads() const {
  std::lock_guard lock(offload_mu_);
  std::vector<OffloadRecord> out;
  out.reserve(offloads_.size());
  for (const auto& [k, r] : offloads_) out.push_back(r);
  return out;
}

FlowServiceStats FlowServiceImpl::stats() const {
  FlowServiceStats st;
  st.table = table_.stats();
  std::lock_guard lock(offload_mu_);
  st.offloaded = offloads_.size();
  st.offloads_installed = installed_;
  st.offloads_mismatch = mismatch_;
  st.offloads_restamped = restamped_;
  st.offloads_dropped = dropped_;
  st.offload_errors = errors_;
  return st;
}

}  // namespace xfp
