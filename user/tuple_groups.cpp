#include "xfp/tuple_groups.hpp"

#include <algorithm>
#include <numeric>
#include <unordered_map>

#include "xfp/compiler.hpp"
#include "xfp/fields_key.hpp"

namespace xfp {

namespace {

xfp_fields and_fields(const xfp_fields& a, const xfp_fields& b) {
  FieldsKey wa = fields_key(a);
  const FieldsKey wb = fields_key(b);
  for (size_t i = 0; i < wa.size(); ++i) wa[i] &= wb[i];
  xfp_fields out;
  std::memcpy(&out, wa.data(), sizeof out);
  return out;
}

// No key under `mask` (a tuple mask never covers layer and tuple id) is
// shared by more than XFP_GROUP_CHAIN of these rows.
bool chains_fit(const xfp_fields& mask, const std::vector<const std::vector<xfp_fields>*>& row_sets) {
  std::unordered_map<FieldsKey, uint32_t, FieldsKeyHash> rows_of_key;
  for (const std::vector<xfp_fields>* rows : row_sets)
    for (const xfp_fields& k : *rows)
      if (++rows_of_key[fields_key(and_fields(k, mask))] > XFP_GROUP_CHAIN) return false;
  return true;
}

}  // namespace

TupleGrouping group_tuples(const std::vector<xfp_tuple>& tuples, const std::vector<CompiledEntry>& entries) {
  std::vector<std::vector<xfp_fields>> rows(tuples.size());
  for (const CompiledEntry& e : entries)
    if (e.key.tuple < rows.size()) rows[e.key.tuple].push_back(e.key);
  std::vector<size_t> order(tuples.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rows[a].size() > rows[b].size(); });

  TupleGrouping out;
  out.group_of_tuple.assign(tuples.size(), 0);
  for (size_t t : order) {
    bool placed = false;
    for (size_t g = 0; g < out.groups.size() && !placed; ++g) {
      TupleGroup& group = out.groups[g];
      const xfp_fields relaxed = and_fields(group.mask, tuples[t].mask);
      std::vector<const std::vector<xfp_fields>*> row_sets{&rows[t]};
      for (uint8_t member : group.tuples) row_sets.push_back(&rows[member]);
      if (!chains_fit(relaxed, row_sets)) continue;
      group.mask = relaxed;
      group.tuples.push_back(static_cast<uint8_t>(t));
      out.group_of_tuple[t] = static_cast<uint8_t>(g);
      placed = true;
    }
    if (placed) continue;
    out.group_of_tuple[t] = static_cast<uint8_t>(out.groups.size());
    out.groups.push_back(TupleGroup{tuples[t].mask, {static_cast<uint8_t>(t)}});
  }
  return out;
}

xfp_fields group_key(const xfp_fields& key, const TupleGroup& group, uint8_t group_id) {
  xfp_fields k = and_fields(key, group.mask);
  k.layer = key.layer;
  k.tuple = group_id;
  return k;
}

}  // namespace xfp
