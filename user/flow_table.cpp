// The flow table (xfp/flow_table.hpp). Layout, per shard:
//  - entries in chunks allocated as the shard fills (never moved, so an
//    index names an entry for its whole life), a free list through `next`;
//  - an open-addressing hash index (linear probing, load at most 1/2,
//    backward-shift deletion) of entry index + 1, grown by doubling up to
//    what the shard's capacity needs;
//  - an intrusive LRU list (most recently seen first) through prev/next;
//  - contexts as 16-byte nodes in a per-shard pool, a singly linked list
//    per flow (flows without contexts pay 4 bytes for the empty head).
// Ends are collected under the shard's lock into a Collected and delivered
// after it is released.
#include "xfp/flow_table.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <thread>

#include "xfp/flow_key.h"

namespace xfp {

namespace {

constexpr uint32_t kNone = UINT32_MAX;
constexpr uint32_t kMaxChunk = 1024;

enum EntryFlag : uint8_t {
  kEnding = 1u << 0,     // end when the classify in progress returns (end_reason says why)
  kDeferred = 1u << 1,   // shard.deferred holds removed contexts of this flow
  kOffloaded = 1u << 2,  // the service offloaded its verdict
};

struct CtxNode {
  uint64_t context = 0;
  uint32_t next = kNone;
  uint16_t callout = 0;
  uint8_t layer = 0;
  uint8_t pad = 0;
};
static_assert(sizeof(CtxNode) == 16);

struct Entry {
  xfp_flow_key key;
  uint64_t handle;  // 0: free
  uint64_t first_seen_ns;
  uint64_t last_seen_ns;
  uint32_t prev;  // LRU (towards the head: more recent)
  uint32_t next;  // LRU (towards the tail), or the free list
  uint32_t ctx;   // first context node
  uint16_t in_classify;
  uint8_t flags;
  uint8_t end_reason;
};
static_assert(sizeof(Entry) == 104, "an entry is 104 bytes: update the docs' bytes per flow");

uint32_t pow2_ceil(uint64_t n) { return static_cast<uint32_t>(std::bit_ceil(std::max<uint64_t>(n, 1))); }

}  // namespace

const size_t FlowTable::kBytesPerFlow = sizeof(Entry) + 2 * sizeof(uint32_t);  // index at load 1/2
const size_t FlowTable::kBytesPerContext = sizeof(CtxNode);

const char* flow_end_reason_name(FlowEndReason reason) {
  switch (reason) {
    case FlowEndReason::Removed: return "removed";
    case FlowEndReason::Idle: return "idle";
    case FlowEndReason::TcpFin: return "tcp-fin";
    case FlowEndReason::TcpRst: return "tcp-rst";
    case FlowEndReason::Evicted: return "evicted";
    case FlowEndReason::Detached: return "detached";
    case FlowEndReason::Unloaded: return "unloaded";
    case FlowEndReason::Shutdown: return "shutdown";
    case FlowEndReason::Count: break;
  }
  return "?";
}

struct alignas(64) FlowTable::Shard {
  mutable std::mutex mu;
  uint32_t capacity = 0;
  uint32_t chunk_shift = 0;
  uint32_t count = 0;
  uint32_t allocated = 0;  // entries handed out of the chunks so far (free or not)
  uint32_t free_head = kNone;
  uint32_t lru_head = kNone, lru_tail = kNone;
  uint32_t max_index = 0;
  std::vector<std::unique_ptr<Entry[]>> chunks;
  std::vector<uint32_t> index;  // entry + 1, 0 empty
  std::vector<CtxNode> ctx;
  uint32_t ctx_free = kNone;
  uint32_t ctx_live = 0;
  std::vector<std::pair<uint32_t, FlowEnd>> deferred;  // removed during a classify

  uint32_t chunk_size() const { return 1u << chunk_shift; }
  Entry& at(uint32_t i) { return chunks[i >> chunk_shift][i & (chunk_size() - 1)]; }
  const Entry& at(uint32_t i) const { return chunks[i >> chunk_shift][i & (chunk_size() - 1)]; }

  uint32_t find(uint64_t h, uint64_t handle) const {
    if (index.empty()) return kNone;
    const uint32_t mask = static_cast<uint32_t>(index.size() - 1);
    for (uint32_t i = static_cast<uint32_t>(h) & mask;; i = (i + 1) & mask) {
      const uint32_t v = index[i];
      if (v == 0) return kNone;
      if (at(v - 1).handle == handle) return v - 1;
    }
  }

  void index_put(uint64_t h, uint32_t idx) {
    const uint32_t mask = static_cast<uint32_t>(index.size() - 1);
    uint32_t i = static_cast<uint32_t>(h) & mask;
    while (index[i] != 0) i = (i + 1) & mask;
    index[i] = idx + 1;
  }

  // Linear probing deletion without tombstones: later members of the probe
  // run move back into the hole when their home slot allows it.
  void index_erase(uint64_t h, uint32_t idx) {
    const uint32_t mask = static_cast<uint32_t>(index.size() - 1);
    uint32_t i = static_cast<uint32_t>(h) & mask;
    while (index[i] != idx + 1) i = (i + 1) & mask;
    uint32_t j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (index[j] == 0) break;
      const uint32_t home = static_cast<uint32_t>(FlowTable::mix(at(index[j] - 1).handle)) & mask;
      // Move index[j] into i unless its home lies cyclically in (i, j].
      const bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
      if (!stays) {
        index[i] = index[j];
        i = j;
      }
    }
    index[i] = 0;
  }

  void grow_index() {
    std::vector<uint32_t> old(index.size() ? index.size() * 2 : 16, 0);
    old.swap(index);
    for (uint32_t v : old)
      if (v) index_put(FlowTable::mix(at(v - 1).handle), v - 1);
  }

  uint32_t alloc_entry() {
    if (free_head != kNone) {
      uint32_t i = free_head;
      free_head = at(i).next;
      return i;
    }
    if (allocated == chunks.size() * chunk_size()) chunks.emplace_back(new Entry[chunk_size()]);
    return allocated++;
  }

  void lru_unlink(Entry& e) {
    if (e.prev != kNone) at(e.prev).next = e.next;
    else lru_head = e.next;
    if (e.next != kNone) at(e.next).prev = e.prev;
    else lru_tail = e.prev;
    e.prev = e.next = kNone;
  }

  void lru_push_front(uint32_t idx) {
    Entry& e = at(idx);
    e.prev = kNone;
    e.next = lru_head;
    if (lru_head != kNone) at(lru_head).prev = idx;
    lru_head = idx;
    if (lru_tail == kNone) lru_tail = idx;
  }

  uint32_t alloc_ctx() {
    if (ctx_free != kNone) {
      uint32_t i = ctx_free;
      ctx_free = ctx[i].next;
      return i;
    }
    ctx.emplace_back();
    return static_cast<uint32_t>(ctx.size() - 1);
  }

  void free_ctx(uint32_t i) {
    ctx[i].next = ctx_free;
    ctx_free = i;
  }
};

// Ends taken out of the table under a shard lock, delivered after it.
struct FlowTable::Collected {
  std::vector<FlowEnd> ends;
  std::vector<std::pair<uint64_t, xfp_flow_key>> offloads;
  bool empty() const { return ends.empty() && offloads.empty(); }
};

namespace {

// Under the shard lock: the contexts removed during the classify of entry
// `idx`, counted in flight.
void collect_deferred(FlowTable::Shard& s, uint32_t idx, std::vector<FlowEnd>& out, std::atomic<uint32_t>* inflight) {
  Entry& e = s.at(idx);
  if (!(e.flags & kDeferred)) return;
  std::erase_if(s.deferred, [&](const std::pair<uint32_t, FlowEnd>& d) {
    if (d.first != idx) return false;
    inflight[d.second.callout].fetch_add(1, std::memory_order_seq_cst);
    out.push_back(d.second);
    return true;
  });
  e.flags &= static_cast<uint8_t>(~kDeferred);
}

// Under the shard lock: every context of entry `idx` (and the ones removed
// during its classify), counted in flight.
void collect_contexts(FlowTable::Shard& s, uint32_t idx, FlowEndReason reason, std::vector<FlowEnd>& out,
                      std::atomic<uint32_t>* inflight) {
  Entry& e = s.at(idx);
  for (uint32_t n = e.ctx; n != kNone;) {
    CtxNode& node = s.ctx[n];
    inflight[node.callout].fetch_add(1, std::memory_order_seq_cst);
    out.push_back({e.handle, node.context, node.callout, node.layer, reason});
    const uint32_t next = node.next;
    s.free_ctx(n);
    --s.ctx_live;
    n = next;
  }
  e.ctx = kNone;
  collect_deferred(s, idx, out, inflight);
}

}  // namespace

FlowTable::FlowTable(const FlowTableOptions& options, FlowDeleteSink& sink) : options_(options), sink_(sink) {
  options_.max_flows = std::max<uint32_t>(options_.max_flows, 1);
  // At least 64 flows per shard when the bound allows: small tables keep an
  // LRU order close to the global one.
  uint32_t shards = std::min<uint32_t>(std::max<uint32_t>(options_.shards, 1), 1024);
  shards = std::bit_floor(std::min<uint32_t>(shards, std::max<uint32_t>(1, options_.max_flows / 64)));
  options_.shards = shards;
  shard_bits_ = static_cast<uint32_t>(std::countr_zero(shards));
  shards_.reset(new Shard[shards]);
  for (uint32_t i = 0; i < shards; ++i) {
    Shard& s = shards_[i];
    s.capacity = options_.max_flows / shards + (i < options_.max_flows % shards ? 1 : 0);
    s.chunk_shift = static_cast<uint32_t>(std::countr_zero(std::min(kMaxChunk, pow2_ceil(s.capacity))));
    s.max_index = pow2_ceil(static_cast<uint64_t>(s.capacity) * 2);
  }
  inflight_.reset(new std::atomic<uint32_t>[XFP_MAX_CALLOUTS]);
  for (uint32_t i = 0; i < XFP_MAX_CALLOUTS; ++i) inflight_[i].store(0, std::memory_order_relaxed);
}

FlowTable::~FlowTable() = default;

uint64_t FlowTable::mix(uint64_t handle) {
  // Handles are hashes already; mixing again keeps shard and slot bits
  // independent of how the handle was made.
  return xfp_flow_mix(handle ^ 0x5bd1e9955bd1e995ull);
}

FlowTable::Shard& FlowTable::shard_of(uint64_t h) const {
  return shards_[shard_bits_ ? static_cast<uint32_t>(h >> (64 - shard_bits_)) : 0];
}

namespace {

// Under the shard lock: ends the flow, or marks it to end when its classify
// returns. True when it ended now.
bool end_entry(FlowTable::Shard& s, uint32_t idx, FlowEndReason reason, std::vector<FlowEnd>& ends,
               std::vector<std::pair<uint64_t, xfp_flow_key>>& offloads, std::atomic<uint32_t>* inflight) {
  Entry& e = s.at(idx);
  if (e.in_classify) {
    if (!(e.flags & kEnding)) {
      e.flags |= kEnding;
      e.end_reason = static_cast<uint8_t>(reason);
    }
    return false;
  }
  collect_contexts(s, idx, reason, ends, inflight);
  if (e.flags & kOffloaded) offloads.emplace_back(e.handle, e.key);
  s.index_erase(FlowTable::mix(e.handle), idx);
  s.lru_unlink(e);
  e.handle = 0;
  e.flags = 0;
  e.next = s.free_head;
  s.free_head = idx;
  --s.count;
  return true;
}

}  // namespace

void FlowTable::deliver(Collected& c) {
  for (const auto& [handle, key] : c.offloads) sink_.offload_ended(handle, key);
  bool queued = false;
  for (const FlowEnd& e : c.ends) {
    if (sink_.deliver(e)) {
      flow_deletes_.fetch_add(1, std::memory_order_relaxed);
    } else {
      // Its plugin is unloading: retire_callout takes it from the queue.
      std::lock_guard lock(queue_mu_);
      queue_.push_back(e);
      queued = true;
    }
    inflight_[e.callout].fetch_sub(1, std::memory_order_seq_cst);
  }
  (void)queued;
}

FlowTicket FlowTable::begin(uint64_t handle, const xfp_flow_key& key, uint64_t now_ns) {
  if (handle == 0) return {};
  const uint64_t h = mix(handle);
  const uint32_t sid = shard_bits_ ? static_cast<uint32_t>(h >> (64 - shard_bits_)) : 0;
  Shard& s = shards_[sid];
  Collected c;
  FlowTicket t;
  {
    std::lock_guard lock(s.mu);
    uint32_t idx = s.find(h, handle);
    if (idx == kNone) {
      if (s.count >= s.capacity) {
        uint32_t v = s.lru_tail;
        while (v != kNone && s.at(v).in_classify) v = s.at(v).prev;
        if (v == kNone) {
          untracked_.fetch_add(1, std::memory_order_relaxed);
          return {};
        }
        end_entry(s, v, FlowEndReason::Evicted, c.ends, c.offloads, inflight_.get());
        ended_[static_cast<int>(FlowEndReason::Evicted)].fetch_add(1, std::memory_order_relaxed);
      }
      if ((s.count + 1) * 2 > s.index.size()) s.grow_index();
      idx = s.alloc_entry();
      Entry& e = s.at(idx);
      e.key = key;
      e.handle = handle;
      e.first_seen_ns = now_ns;
      e.ctx = kNone;
      e.in_classify = 0;
      e.flags = 0;
      e.end_reason = 0;
      e.prev = e.next = kNone;
      s.index_put(h, idx);
      ++s.count;
      created_.fetch_add(1, std::memory_order_relaxed);
    } else {
      s.lru_unlink(s.at(idx));
    }
    s.lru_push_front(idx);
    Entry& e = s.at(idx);
    e.last_seen_ns = now_ns;
    ++e.in_classify;
    t.shard = sid;
    t.index = idx;
  }
  if (!c.empty()) deliver(c);
  return t;
}

uint64_t FlowTable::context(const FlowTicket& t, uint8_t layer, uint16_t callout) const {
  if (!t.valid()) return 0;
  const Shard& s = shards_[t.shard];
  std::lock_guard lock(s.mu);
  for (uint32_t n = s.at(t.index).ctx; n != kNone; n = s.ctx[n].next)
    if (s.ctx[n].callout == callout && s.ctx[n].layer == layer) return s.ctx[n].context;
  return 0;
}

void FlowTable::end(const FlowTicket& t, uint8_t tcp_flags) {
  if (!t.valid()) return;
  Shard& s = shards_[t.shard];
  Collected c;
  {
    std::lock_guard lock(s.mu);
    Entry& e = s.at(t.index);
    if (tcp_flags & (XFP_TCP_FIN | XFP_TCP_RST)) {
      const FlowEndReason r = (tcp_flags & XFP_TCP_RST) ? FlowEndReason::TcpRst : FlowEndReason::TcpFin;
      if (!(e.flags & kEnding)) e.end_reason = static_cast<uint8_t>(r);
      e.flags |= kEnding;
    }
    if (--e.in_classify == 0) {
      collect_deferred(s, t.index, c.ends, inflight_.get());
      if (e.flags & kEnding) {
        const auto reason = static_cast<FlowEndReason>(e.end_reason);
        end_entry(s, t.index, reason, c.ends, c.offloads, inflight_.get());
        ended_[static_cast<int>(reason)].fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  if (!c.empty()) deliver(c);
}

int FlowTable::associate(uint64_t handle, uint8_t layer, uint16_t callout, uint64_t context) {
  if (handle == 0) return -ENOENT;
  if (context == 0 || callout == 0 || callout >= XFP_MAX_CALLOUTS || layer >= XFP_LAYER_COUNT) return -EINVAL;
  const uint64_t h = mix(handle);
  Shard& s = shard_of(h);
  std::lock_guard lock(s.mu);
  const uint32_t idx = s.find(h, handle);
  if (idx == kNone) return -ENOENT;
  for (uint32_t n = s.at(idx).ctx; n != kNone; n = s.ctx[n].next)
    if (s.ctx[n].callout == callout && s.ctx[n].layer == layer) return -EEXIST;
  const uint32_t n = s.alloc_ctx();  // may reallocate s.ctx: no node reference is held here
  Entry& e = s.at(idx);
  s.ctx[n] = CtxNode{context, e.ctx, callout, layer, 0};
  e.ctx = n;
  ++s.ctx_live;
  return 0;
}

int FlowTable::remove(uint64_t handle, uint8_t layer, uint16_t callout) {
  if (handle == 0) return -ENOENT;
  const uint64_t h = mix(handle);
  Shard& s = shard_of(h);
  bool wake = false;
  {
    std::lock_guard lock(s.mu);
    const uint32_t idx = s.find(h, handle);
    if (idx == kNone) return -ENOENT;
    Entry& e = s.at(idx);
    uint32_t* link = &e.ctx;
    while (*link != kNone && !(s.ctx[*link].callout == callout && s.ctx[*link].layer == layer))
      link = &s.ctx[*link].next;
    if (*link == kNone) return -ENOENT;
    const uint32_t n = *link;
    const FlowEnd end{handle, s.ctx[n].context, callout, layer, FlowEndReason::Removed};
    *link = s.ctx[n].next;
    s.free_ctx(n);
    --s.ctx_live;
    ended_[static_cast<int>(FlowEndReason::Removed)].fetch_add(1, std::memory_order_relaxed);
    if (e.in_classify) {
      // flow_delete when the classify in progress on the flow returns.
      s.deferred.emplace_back(idx, end);
      e.flags |= kDeferred;
    } else {
      // Never inside remove itself: the delivery thread calls it.
      std::lock_guard q(queue_mu_);
      queue_.push_back(end);
      wake = true;
    }
  }
  if (wake) sink_.wake();
  return 0;
}

bool FlowTable::set_offloaded(uint64_t handle, bool offloaded) {
  const uint64_t h = mix(handle);
  Shard& s = shard_of(h);
  std::lock_guard lock(s.mu);
  const uint32_t idx = s.find(h, handle);
  if (idx == kNone) return false;
  Entry& e = s.at(idx);
  if (offloaded) e.flags |= kOffloaded;
  else e.flags &= static_cast<uint8_t>(~kOffloaded);
  return true;
}

void FlowTable::touch(uint64_t handle, uint64_t seen_ns) {
  const uint64_t h = mix(handle);
  Shard& s = shard_of(h);
  std::lock_guard lock(s.mu);
  const uint32_t idx = s.find(h, handle);
  if (idx == kNone) return;
  Entry& e = s.at(idx);
  if (seen_ns <= e.last_seen_ns) return;
  e.last_seen_ns = seen_ns;
  s.lru_unlink(e);
  s.lru_push_front(idx);
}

bool FlowTable::end_flow(uint64_t handle, FlowEndReason reason) {
  const uint64_t h = mix(handle);
  Shard& s = shard_of(h);
  Collected c;
  {
    std::lock_guard lock(s.mu);
    const uint32_t idx = s.find(h, handle);
    if (idx == kNone) return false;
    if (end_entry(s, idx, reason, c.ends, c.offloads, inflight_.get()))
      ended_[static_cast<int>(reason)].fetch_add(1, std::memory_order_relaxed);
  }
  deliver(c);
  return true;
}

size_t FlowTable::expire(uint64_t now_ns) {
  size_t n = 0;
  const uint64_t timeout = options_.idle_timeout_ns;
  for (uint32_t i = 0; i < options_.shards; ++i) {
    Shard& s = shards_[i];
    Collected c;
    {
      std::lock_guard lock(s.mu);
      for (uint32_t v = s.lru_tail; v != kNone;) {
        Entry& e = s.at(v);
        const uint32_t prev = e.prev;
        if (e.last_seen_ns + timeout > now_ns) break;  // the rest are more recent
        if (!e.in_classify &&
            end_entry(s, v, FlowEndReason::Idle, c.ends, c.offloads, inflight_.get()))
          ++n;
        v = prev;
      }
    }
    if (!c.empty()) deliver(c);
  }
  ended_[static_cast<int>(FlowEndReason::Idle)].fetch_add(n, std::memory_order_relaxed);
  return n;
}

void FlowTable::end_matching(const std::function<bool(const Shard&, uint32_t)>& match, FlowEndReason reason,
                             size_t& count) {
  for (uint32_t i = 0; i < options_.shards; ++i) {
    Shard& s = shards_[i];
    Collected c;
    size_t ended = 0;
    {
      std::lock_guard lock(s.mu);
      for (uint32_t v = 0; v < s.allocated; ++v) {
        if (s.at(v).handle == 0 || !match(s, v)) continue;
        ++count;
        if (end_entry(s, v, reason, c.ends, c.offloads, inflight_.get()))
          ++ended;
      }
    }
    ended_[static_cast<int>(reason)].fetch_add(ended, std::memory_order_relaxed);
    if (!c.empty()) deliver(c);
  }
}

size_t FlowTable::end_iface(uint32_t iface) {
  size_t n = 0;
  end_matching([iface](const Shard& s, uint32_t v) { return s.at(v).key.iface == iface; }, FlowEndReason::Detached,
               n);
  return n;
}

size_t FlowTable::end_all(FlowEndReason reason) {
  size_t n = 0;
  end_matching([](const Shard&, uint32_t) { return true; }, reason, n);
  flush();
  return n;
}

void FlowTable::retire_callout(uint16_t callout, const std::function<void(const FlowEnd&)>& deliver_fn) {
  if (callout == 0 || callout >= XFP_MAX_CALLOUTS) return;
  std::vector<FlowEnd> mine;
  // 1. Its contexts in the table (no new ones come: the host refuses to
  //    associate for a callout out of service).
  for (uint32_t i = 0; i < options_.shards; ++i) {
    Shard& s = shards_[i];
    std::lock_guard lock(s.mu);
    if (s.ctx_live == 0 && s.deferred.empty()) continue;
    for (uint32_t v = 0; v < s.allocated; ++v) {
      Entry& e = s.at(v);
      if (e.handle == 0) continue;
      for (uint32_t* link = &e.ctx; *link != kNone;) {
        CtxNode& node = s.ctx[*link];
        if (node.callout != callout) {
          link = &node.next;
          continue;
        }
        mine.push_back({e.handle, node.context, callout, node.layer, FlowEndReason::Unloaded});
        const uint32_t n = *link;
        *link = node.next;
        s.free_ctx(n);
        --s.ctx_live;
      }
    }
    std::erase_if(s.deferred, [&](const std::pair<uint32_t, FlowEnd>& d) {
      if (d.second.callout != callout) return false;
      mine.push_back(d.second);
      return true;
    });
  }
  ended_[static_cast<int>(FlowEndReason::Unloaded)].fetch_add(mine.size(), std::memory_order_relaxed);
  // 2. Ends other threads collected before step 1: wait until they are
  //    delivered or queued (their sink calls fail now), then take the queued.
  for (;;) {
    {
      std::lock_guard lock(queue_mu_);
      if (inflight_[callout].load(std::memory_order_seq_cst) == 0) {
        std::erase_if(queue_, [&](const FlowEnd& e) {
          if (e.callout != callout) return false;
          mine.push_back(e);
          return true;
        });
        break;
      }
    }
    std::this_thread::yield();
  }
  for (const FlowEnd& e : mine) {
    deliver_fn(e);
    flow_deletes_.fetch_add(1, std::memory_order_relaxed);
  }
}

size_t FlowTable::flush() {
  std::vector<FlowEnd> q;
  {
    std::lock_guard lock(queue_mu_);
    q.swap(queue_);
    for (const FlowEnd& e : q) inflight_[e.callout].fetch_add(1, std::memory_order_seq_cst);
  }
  size_t delivered = 0;
  for (const FlowEnd& e : q) {
    if (sink_.deliver(e)) {
      flow_deletes_.fetch_add(1, std::memory_order_relaxed);
      ++delivered;
    } else {
      std::lock_guard lock(queue_mu_);
      queue_.push_back(e);
    }
    inflight_[e.callout].fetch_sub(1, std::memory_order_seq_cst);
  }
  return delivered;
}

size_t FlowTable::size() const {
  size_t n = 0;
  for (uint32_t i = 0; i < options_.shards; ++i) {
    std::lock_guard lock(shards_[i].mu);
    n += shards_[i].count;
  }
  return n;
}

size_t FlowTable::memory_bytes() const {
  size_t n = sizeof(*this) + options_.shards * sizeof(Shard) + XFP_MAX_CALLOUTS * sizeof(std::atomic<uint32_t>);
  for (uint32_t i = 0; i < options_.shards; ++i) {
    const Shard& s = shards_[i];
    std::lock_guard lock(s.mu);
    n += s.chunks.size() * (s.chunk_size() * sizeof(Entry) + sizeof(std::unique_ptr<Entry[]>));
    n += s.index.capacity() * sizeof(uint32_t);
    n += s.ctx.capacity() * sizeof(CtxNode);
    n += s.deferred.capacity() * sizeof(std::pair<uint32_t, FlowEnd>);
  }
  std::lock_guard lock(queue_mu_);
  return n + queue_.capacity() * sizeof(FlowEnd);
}

size_t FlowTable::memory_bound(size_t contexts) const {
  size_t n = sizeof(*this) + options_.shards * sizeof(Shard) + XFP_MAX_CALLOUTS * sizeof(std::atomic<uint32_t>);
  for (uint32_t i = 0; i < options_.shards; ++i) {
    const Shard& s = shards_[i];
    const size_t chunks = (s.capacity + s.chunk_size() - 1) / s.chunk_size();
    n += chunks * (s.chunk_size() * sizeof(Entry) + sizeof(std::unique_ptr<Entry[]>));
    n += static_cast<size_t>(s.max_index) * sizeof(uint32_t);
  }
  // A context pool grows by doubling: twice the live nodes at most.
  return n + 2 * contexts * sizeof(CtxNode);
}

FlowTableStats FlowTable::stats() const {
  FlowTableStats st;
  for (uint32_t i = 0; i < options_.shards; ++i) {
    std::lock_guard lock(shards_[i].mu);
    st.flows += shards_[i].count;
    st.contexts += shards_[i].ctx_live;
  }
  st.max_flows = options_.max_flows;
  st.created = created_.load(std::memory_order_relaxed);
  st.untracked = untracked_.load(std::memory_order_relaxed);
  st.flow_deletes = flow_deletes_.load(std::memory_order_relaxed);
  for (int r = 0; r < static_cast<int>(FlowEndReason::Count); ++r) st.ended[r] = ended_[r].load(std::memory_order_relaxed);
  st.memory_bytes = memory_bytes();
  return st;
}

namespace {

void fill_snapshot(const FlowTable::Shard& s, uint32_t v, FlowSnapshot& out) {
  const Entry& e = s.at(v);
  out.handle = e.handle;
  out.key = e.key;
  out.first_seen_ns = e.first_seen_ns;
  out.last_seen_ns = e.last_seen_ns;
  out.in_classify = e.in_classify != 0;
  out.offloaded = (e.flags & kOffloaded) != 0;
  out.contexts.clear();
  for (uint32_t n = e.ctx; n != kNone; n = s.ctx[n].next)
    out.contexts.push_back({s.ctx[n].callout, s.ctx[n].layer, s.ctx[n].context});
}

}  // namespace

std::vector<FlowSnapshot> FlowTable::list(size_t limit) const {
  std::vector<FlowSnapshot> out;
  for (uint32_t i = 0; i < options_.shards; ++i) {
    const Shard& s = shards_[i];
    std::lock_guard lock(s.mu);
    for (uint32_t v = s.lru_head; v != kNone; v = s.at(v).next) {
      if (limit && out.size() >= limit) return out;
      fill_snapshot(s, v, out.emplace_back());
    }
  }
  return out;
}

bool FlowTable::snapshot(uint64_t handle, FlowSnapshot& out) const {
  const uint64_t h = mix(handle);
  const Shard& s = shard_of(h);
  std::lock_guard lock(s.mu);
  const uint32_t idx = s.find(h, handle);
  if (idx == kNone) return false;
  fill_snapshot(s, idx, out);
  return true;
}

}  // namespace xfp
