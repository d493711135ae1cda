// A masked struct xfp_fields as a hash-map key: its five words, hashed with
// the entry table's own hash (include/xfp/entry_hash.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstring>

#include "xfp/abi.h"
#include "xfp/entry_hash.h"

namespace xfp {

using FieldsKey = std::array<__u64, XFP_ENTRY_KEY_WORDS>;

inline FieldsKey fields_key(const xfp_fields& f) {
  FieldsKey w;
  std::memcpy(w.data(), &f, sizeof f);
  return w;
}

struct FieldsKeyHash {
  size_t operator()(const FieldsKey& w) const { return static_cast<size_t>(xfp_entry_hash(w.data(), 0)); }
};

}  // namespace xfp
