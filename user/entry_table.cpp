#include "xfp/entry_table.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "xfp/entry_hash.h"

namespace xfp {

namespace {

// Moves before a placement gives up: at 80% load a key needs a handful;
// hundreds mean a cycle, which only another seed breaks.
constexpr int kMaxKicks = 500;
constexpr int kSeeds = 8;

uint64_t hash_of(const xfp_fields& key, uint64_t seed) {
  __u64 w[XFP_ENTRY_KEY_WORDS];
  std::memcpy(w, &key, sizeof w);
  return xfp_entry_hash(w, seed);
}

bool slot_free(const xfp_slot& s) { return s.key.tuple == XFP_SLOT_FREE; }

void free_slot(xfp_slot& s) {
  std::memset(&s, 0, sizeof s);
  s.key.tuple = XFP_SLOT_FREE;
  s.entry = ~0u;
}

// splitmix64: which occupant to move, reproducibly.
uint64_t next_random(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

uint32_t entry_table_buckets(uint32_t entries) {
  const uint64_t slots = static_cast<uint64_t>(entries) + entries / 4 + 1;
  const uint64_t buckets = (slots + XFP_BUCKET_SLOTS - 1) / XFP_BUCKET_SLOTS;
  return static_cast<uint32_t>(std::bit_ceil(std::max<uint64_t>(buckets, 1)));
}

EntryTable::EntryTable(std::span<xfp_bucket> buckets) : buckets_(buckets) {}

void EntryTable::clear_written() {
  if (all_dirty_) {
    for (xfp_bucket& b : buckets_)
      for (xfp_slot& s : b.slot) free_slot(s);
    all_dirty_ = false;
  } else {
    for (uint32_t i : written_)
      for (xfp_slot& s : buckets_[i].slot) free_slot(s);
  }
  written_.clear();
}

bool EntryTable::place(const xfp_fields& key, uint32_t entry, uint64_t& rng) {
  const uint32_t mask = bucket_mask();
  xfp_slot item{};
  item.key = key;
  item.entry = entry;
  uint64_t h = hash_of(item.key, seed_);
  uint32_t b = xfp_entry_bucket(h, 0, mask);
  for (int kick = 0; kick <= kMaxKicks; ++kick) {
    // A free slot in either candidate bucket takes the key, the first
    // bucket's before the second's. Since no slot comes free during a build
    // (an eviction hands its slot straight to the key being placed), a key
    // sits in its second bucket only while its first is full: a probe that
    // misses in a first bucket with a free slot can stop there, and most
    // misses read one bucket, not two (bpf/xfp_classify.h). The slots are
    // taken in order, so a bucket with a free first slot is empty: the
    // probe reads that slot's tuple byte alone.
    for (uint32_t choice = 0; choice < 2; ++choice) {
      const uint32_t c = xfp_entry_bucket(h, choice, mask);
      for (xfp_slot& s : buckets_[c].slot)
        if (slot_free(s)) {
          s = item;
          written_.push_back(c);
          return true;
        }
    }
    // Both full: evict a random occupant of bucket b, take its slot, and
    // carry the occupant to its other bucket.
    xfp_slot& victim = buckets_[b].slot[next_random(rng) % XFP_BUCKET_SLOTS];
    std::swap(item, victim);
    written_.push_back(b);
    h = hash_of(item.key, seed_);
    const uint32_t first = xfp_entry_bucket(h, 0, mask);
    b = first == b ? xfp_entry_bucket(h, 1, mask) : first;
  }
  return false;
}

Status EntryTable::build(std::span<const EntryKey> keys) {
  if (buckets_.empty() || !std::has_single_bit(buckets_.size()))
    return make_error(EINVAL, "the entry table's bucket count must be a power of two");
  if (keys.size() > buckets_.size() * XFP_BUCKET_SLOTS)
    return make_error(ENOSPC, fmt::format("{} keys do not fit {} entry-table slots (raise --max-entries)", keys.size(),
                                          buckets_.size() * XFP_BUCKET_SLOTS));
  for (const EntryKey& k : keys)
    if (k.key.tuple == XFP_SLOT_FREE) return make_error(EINVAL, "an entry-table key carries the free-slot tuple id");
  for (int attempt = 0; attempt < kSeeds; ++attempt) {
    clear_written();
    seed_ = 0x243f6a8885a308d3ull * static_cast<uint64_t>(attempt + 1);
    uint64_t rng = seed_;
    bool placed = true;
    for (const EntryKey& k : keys)
      if (!place(k.key, k.entry, rng)) {
        placed = false;
        break;
      }
    if (placed) return Ok{};
  }
  clear_written();
  return make_error(ENOSPC, fmt::format("cannot place {} keys in {} entry-table buckets with {} seeds "
                                        "(raise --max-entries)",
                                        keys.size(), buckets_.size(), kSeeds));
}

bool bucket_full(const xfp_bucket& b) {
  return std::none_of(std::begin(b.slot), std::end(b.slot), slot_free);
}

uint32_t EntryTable::find(const xfp_fields& key) const {
  const uint64_t h = hash_of(key, seed_);
  for (uint32_t choice = 0; choice < 2; ++choice) {
    const xfp_bucket& b = buckets_[xfp_entry_bucket(h, choice, bucket_mask())];
    for (const xfp_slot& s : b.slot)
      if (std::memcmp(&s.key, &key, sizeof key) == 0) return s.entry;
    if (!bucket_full(b)) break;  // settled: not in the second bucket either
  }
  return ~0u;
}

}  // namespace xfp
