// The entry table of one bank (abi.h, struct xfp_bucket): a cuckoo hash
// that user space builds whole and the BPF programs probe inline. Each key
// sits in one of its two candidate buckets (include/xfp/entry_hash.h), so
// a lookup reads two buckets at most; placing a key whose buckets are full
// moves an occupant to its other bucket, and so on. A key sits in its second
// bucket only while its first is full, so a miss in a first bucket with a
// free slot ends the lookup. A bucket's slots fill in order and none comes
// free during a build, so a bucket whose first slot is free is empty: the
// BPF probe stops at that one byte. The table is built in
// place (in the inactive bank's memory-mapped region): only the buckets a
// build wrote are cleared before the next one.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "xfp/abi.h"
#include "xfp/result.hpp"

namespace xfp {

struct EntryKey {
  xfp_fields key;      // masked fields, layer and tuple id (never XFP_SLOT_FREE)
  uint32_t entry = 0;  // index in xfp_entries_v2
};

// Buckets for `entries` keys: a power of two with room for 1.25x as many
// keys, so a table is never more than 80% full (cuckoo placement with two
// slots per bucket succeeds reliably below about 90%).
uint32_t entry_table_buckets(uint32_t entries);

// Every slot of `b` holds a key: only then may a settled table hold a key of
// this first bucket in its second one.
bool bucket_full(const xfp_bucket& b);

class EntryTable {
 public:
  // `buckets`: the region, a power of two in size; it may hold anything:
  // the first build() clears all of it.
  explicit EntryTable(std::span<xfp_bucket> buckets);

  // Clears what the previous build wrote, then places every key (keys must
  // be distinct). Tries a few seeds before giving up with ENOSPC. The seed used is seed() afterwards.
  Status build(std::span<const EntryKey> keys);

  uint64_t seed() const { return seed_; }
  uint32_t bucket_mask() const { return static_cast<uint32_t>(buckets_.size() - 1); }

  // The entry of `key`, as the BPF programs find it (~0u: none).
  uint32_t find(const xfp_fields& key) const;

 private:
  void clear_written();
  bool place(const xfp_fields& key, uint32_t entry, uint64_t& rng);

  std::span<xfp_bucket> buckets_;
  std::vector<uint32_t> written_;  // buckets the last build wrote
  bool all_dirty_ = true;          // before the first build: the whole region
  uint64_t seed_ = 0;
};

}  // namespace xfp
