#include "xfp/punt_worker.hpp"

#include <poll.h>

#include <cstddef>
#include <cstring>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "xfp/flow_key.h"
#include "xfp/flow_service_impl.hpp"
#include "xfp/frame.hpp"
#include "xfp/frame_parse.h"
#include "xfp/punt_header.hpp"

namespace xfp {

const PuntFrameInfo* punt_info_of(const xfp_metadata* meta) {
  static_assert(offsetof(PuntFrameInfo, meta) == 0, "meta first: the host recovers the rest from it");
  return reinterpret_cast<const PuntFrameInfo*>(meta);
}

namespace {

constexpr uint32_t kMaxBatch = 256;

// One received frame while its batch is processed.
struct Slot {
  uint64_t addr = 0;
  xfp_punt_meta punt{};
  xfp_fields fields{};
  PuntFrameInfo info{};
  xfp_frame* frame = nullptr;
  bool valid = false;
  uint8_t tcp_flags = 0;  // of the frame (flow_key.h), 0 when not TCP
  xfp_flow_key flow_key;  // valid with info.flow
  // The first callout the evaluation reaches, found by a probe, and its
  // answer when it was asked in a batch.
  const Filter* first_callout = nullptr;
  bool first_action_right = true;
  bool preanswered = false;
  CalloutVerdict preanswer;
  Decision decision;
};

// Stops at the first callout: which filter, and whether it has the right.
class ProbeInvoker final : public CalloutInvoker {
 public:
  const Filter* first = nullptr;
  bool right = true;
  CalloutVerdict invoke(const Filter& f, const xfp_fields&, bool action_right) override {
    first = &f;
    right = action_right;
    return {true, XFP_ACTION_CONTINUE, true};  // "absorbed": ends the walk
  }
};

class FrameInvoker final : public CalloutInvoker {
 public:
  FrameInvoker(Slot& s, CalloutCaller& c, ClassifyStamp& stamp) : slot_(s), callouts_(c), stamp_(stamp) {}
  CalloutVerdict invoke(const Filter& f, const xfp_fields& fields, bool action_right) override {
    if (slot_.preanswered && &f == slot_.first_callout) {
      slot_.preanswered = false;
      return slot_.preanswer;
    }
    xfp_classify_item item{};
    item.frame = slot_.frame;
    item.fields = &fields;
    item.meta = &slot_.info.meta;
    item.action_right = action_right ? 1 : 0;
    item.action = XFP_ACTION_CONTINUE;
    slot_.info.meta.filter_id = f.id;
    stamp_.enter(PolicySnapshot::callout_id_of(f));
    const bool served = callouts_.classify(f, &item, 1);
    stamp_.leave();
    if (!served) return {};
    return {true, item.action, (item.flags & XFP_CLASSIFY_ABSORB) != 0};
  }

 private:
  Slot& slot_;
  CalloutCaller& callouts_;
  ClassifyStamp& stamp_;
};

Decision evaluate(const PolicySnapshot& snap, Slot& s, CalloutInvoker& inv, bool& rescanned) {
  if (snap.is_generation_of(s.punt))
    if (auto d = snap.resume(s.punt, s.fields, inv)) return *d;
  rescanned = true;
  return snap.classify(static_cast<Layer>(s.punt.layer), s.fields, inv);
}

}  // namespace

PuntWorker::PuntWorker(const WorkerTarget& target, XskSocket& socket, CalloutCaller& callouts, Injector& injector,
                       SnapshotFn snapshot, const WorkerOptions& options, FlowServiceImpl* flows)
    : target_(target),
      socket_(socket),
      callouts_(callouts),
      injector_(injector),
      snapshot_(std::move(snapshot)),
      options_(options),
      flows_(flows),
      load_(target.load, socket),
      thread_([this] { run(); }) {}

PuntWorker::~PuntWorker() {
  stop_ = true;
  thread_.join();
}

void PuntWorker::run() {
  const uint32_t batch = std::min(options_.batch, kMaxBatch);
  while (!stop_.load(std::memory_order_relaxed)) {
    uint32_t idx = 0;
    uint32_t n = socket_.rx_peek(batch, idx);
    if (n == 0) {
      socket_.refill(batch * 2);  // chunks the last refill could not place
      load_.idle(options_.busy_poll);  // the socket's own drops heal the overload guard's count
      // Sleep in poll(): the stop flag is checked at least every 100 ms.
      if (!options_.busy_poll) socket_.wait_rx(100);
      continue;
    }
    PolicySnapshotPtr snap = snapshot_();
    process(n, idx, snap);
    socket_.rx_release(n);
    // The batch's chunks go back to the fill ring (once per batch), before
    // the overload guard's count says there is room for them
    // (queue_load.hpp).
    socket_.refill(batch * 2);
    load_.given_back(n);
  }
}

void PuntWorker::process(uint32_t n, uint32_t idx, const PolicySnapshotPtr& snap) {
  Slot slots[kMaxBatch];
  const uint32_t frame_size = socket_.frame_size();
  const uint64_t now = flows_ ? FlowServiceImpl::now_ns() : 0;  // one clock read per batch
  for (uint32_t i = 0; i < n; ++i) {
    Slot& s = slots[i];
    const xdp_desc* d = socket_.rx_desc(idx + i);
    s.addr = d->addr;
    uint8_t* data = socket_.data(d->addr);
    uint64_t offset = d->addr - socket_.chunk_base(d->addr);
    uint32_t len = d->len;
    if (take_punt_header(data, offset, len, s.punt) == PuntHeaderSource::None || s.punt.layer >= XFP_LAYER_COUNT || !snap) {
      ++counters_.bad_meta;
      continue;
    }
    s.fields.ifindex = target_.ifindex;
    xfp_parse_frame(data, data + len, len, s.punt.layer, &s.fields);
    std::memcpy(s.fields.iface_mac, target_.mac, 6);
    s.fields.compartment = target_.compartment;
    s.info.meta.layer = s.punt.layer;
    s.info.meta.ifindex = target_.ifindex;
    s.info.meta.iface = target_.key;
    s.info.meta.rx_queue = target_.queue;
    s.info.meta.compartment = target_.compartment;
    s.info.meta.frame_len = len;
    s.info.meta.flow_handle = s.punt.flow;
    if (injector_.records_pending()) s.info.origin = injector_.take_origin(data, len);
    s.frame = frame_borrow(socket_.chunk(d->addr), frame_size, static_cast<uint32_t>(offset), len);
    s.valid = s.frame != nullptr;
    // The frame's flow (the kernel computed the same handle from the same
    // bytes): seen now, held until the frame is classified.
    if (s.valid && flows_ && s.punt.flow) {
      xfp_flow_info fi;
      if (xfp_flow_key_from_frame(data, data + len, target_.key, &s.flow_key, &fi)) {
        s.tcp_flags = fi.tcp_flags;
        s.info.flow = flows_->table().begin(s.punt.flow, s.flow_key, now);
      }
    }
    // Two references: the worker's, and the one a callout takes over when
    // it absorbs the frame. A callout may inject (and its completion free)
    // an absorbed frame before classify has even returned: the worker's own
    // reference keeps the object alive until the chunk is let go.
    if (s.valid) frame_ref(s.frame);
    ++counters_.frames;
  }

  // Batches: probe each frame's first callout, then ask batch-capable
  // callouts once for all the frames that reach them first. The probe walks
  // the policy a second time, so it runs only where the filter the kernel
  // punted at names a batch callout (or the generation changed and that
  // filter is unknown); other frames go to their callouts one by one, which
  // gives the same verdicts.
  std::unordered_map<const Filter*, std::vector<uint32_t>> groups;
  for (uint32_t i = 0; i < n; ++i) {
    if (!slots[i].valid) continue;
    const Filter* punted = snap->is_generation_of(slots[i].punt)
                               ? snap->filter_at_rank(static_cast<Layer>(slots[i].punt.layer), slots[i].punt.rank)
                               : nullptr;
    if (punted && !callouts_.batch_capable(*punted)) continue;
    ProbeInvoker probe;
    bool rescanned = false;
    (void)evaluate(*snap, slots[i], probe, rescanned);
    slots[i].first_callout = probe.first;
    slots[i].first_action_right = probe.right;
    if (probe.first && callouts_.batch_capable(*probe.first)) groups[probe.first].push_back(i);
  }
  for (auto& [filter, members] : groups) {
    if (members.size() < 2) continue;
    std::vector<xfp_classify_item> items(members.size());
    for (size_t k = 0; k < members.size(); ++k) {
      Slot& s = slots[members[k]];
      s.info.meta.filter_id = filter->id;
      items[k] = {};
      items[k].frame = s.frame;
      items[k].fields = &s.fields;
      items[k].meta = &s.info.meta;
      items[k].action_right = s.first_action_right ? 1 : 0;
      items[k].action = XFP_ACTION_CONTINUE;
      frame_set_next(s.frame, k + 1 < members.size() ? slots[members[k + 1]].frame : nullptr);
    }
    stamp_.enter(PolicySnapshot::callout_id_of(*filter));
    bool served = callouts_.classify(*filter, items.data(), static_cast<uint32_t>(items.size()));
    stamp_.leave();
    for (size_t k = 0; k < members.size(); ++k) {
      Slot& s = slots[members[k]];
      frame_set_next(s.frame, nullptr);
      s.preanswered = true;
      s.preanswer = served ? CalloutVerdict{true, items[k].action, (items[k].flags & XFP_CLASSIFY_ABSORB) != 0}
                           : CalloutVerdict{};
    }
  }

  // Permitted frames are delivered together after the loop (one kick for the
  // batch, Injector::deliver); until then the worker keeps its reference, so
  // their bytes stay put. Order among them is arrival order; a frame a callout
  // injected itself during classify may leave before them.
  uint32_t permitted[kMaxBatch];
  uint32_t npermitted = 0;
  // Lets go of the worker's reference to a slot's frame. Someone else still
  // holding it (the absorbing callout, or one that took a reference) gets a
  // copy, so that the chunk can be reused at once.
  auto release = [this](Slot& s) {
    if (frame_refcount(s.frame) > 1 && !frame_make_owned(s.frame))
      spdlog::error("{} queue {}: copying a kept frame out of the UMEM failed", target_.ifname, target_.queue);
    frame_free(s.frame);
  };
  for (uint32_t i = 0; i < n; ++i) {
    Slot& s = slots[i];
    if (s.valid) {
      FrameInvoker inv(s, callouts_, stamp_);
      bool rescanned = false;
      s.decision = evaluate(*snap, s, inv, rescanned);
      if (rescanned) ++counters_.rescanned;
      if (s.info.flow.valid()) {
        // A callout asked to offload the flow's verdict: done only when the
        // frame's own arbitration agrees (flow_service_impl.hpp).
        if (s.info.offload_verdict && !s.decision.absorbed)
          flows_->complete_offload(s.punt.flow, s.flow_key, s.punt.layer, s.info.offload_callout,
                                   s.info.offload_verdict, s.decision.action, s.fields, snap->generation());
        flows_->table().end(s.info.flow, s.tcp_flags);
        s.info.flow = {};
      }
      if (s.decision.vetoed) ++counters_.vetoed;
      if (s.decision.absorbed) {
        ++counters_.absorbed;
      } else {
        frame_free(s.frame);  // the reference no callout took
        if (s.decision.action == Action::Permit) {
          permitted[npermitted++] = i;
          continue;  // released after the delivery
        }
        ++counters_.blocked;
      }
      release(s);
    }
    socket_.rx_free(s.addr);
  }
  if (npermitted == 0) return;
  TxPort::Frame tx[kMaxBatch];
  for (uint32_t k = 0; k < npermitted; ++k) {
    xfp_frame* f = slots[permitted[k]].frame;
    tx[k] = {frame_data(f), frame_len(f), 0};
  }
  const size_t queued = injector_.deliver(target_.key, tx, npermitted);
  counters_.permitted += queued;
  counters_.deliver_failed += npermitted - queued;
  for (uint32_t k = 0; k < npermitted; ++k) {
    release(slots[permitted[k]]);
    socket_.rx_free(slots[permitted[k]].addr);
  }
}

}  // namespace xfp
