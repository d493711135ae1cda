// The policy as data: sublayers, filters and the per-layer default actions.
// Every mutation validates first and changes nothing on error. A transaction
// is applied to a copy and committed only when it compiled and installed.
#pragma once

#include <cstdint>
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "xfp/filter.hpp"
#include "xfp/filter_syntax.hpp"
#include "xfp/result.hpp"

namespace xfp {

class FilterSet {
 public:
  FilterSet();  // holds the sublayer "default" (weight 0), defaults permit

  // Adds a filter; assigns its id (when 0) and a counter slot. Fails on an
  // unknown sublayer, a duplicate name or id, a callout action without a key,
  // a key without a callout action, unknown flags, or a full slot table.
  Result<uint64_t> add_filter(Filter f);
  // `ref` is an id (digits) or a name.
  Result<Filter> remove_filter(const std::string& ref);
  Status add_sublayer(const Sublayer& s);
  Status remove_sublayer(const std::string& name);  // fails while filters use it
  void flush();  // drops every filter and every sublayer but "default"
  void set_default(Layer layer, Action action);     // permit or block only
  Status apply(const Command& c);
  Status apply(const std::vector<Command>& commands);  // stops at the first error

  const Filter* find(const std::string& ref) const;
  const Filter* find_id(uint64_t id) const;
  std::vector<const Filter*> filters() const;  // by id
  const std::vector<Sublayer>& sublayers() const { return sublayers_; }
  const Sublayer* find_sublayer(const std::string& name) const;
  Action default_action(Layer l) const { return defaults_[static_cast<int>(l)]; }
  std::optional<uint32_t> slot_of(uint64_t id) const;
  size_t size() const { return filters_.size(); }
  uint64_t next_id() const { return next_id_; }
  // Ids are never handed out twice, also across restarts where only the
  // persistent filters come back: the saved next id is reserved again.
  void reserve_ids_below(uint64_t next) { next_id_ = std::max(next_id_, next); }

 private:
  std::map<uint64_t, Filter> filters_;
  std::map<std::string, uint64_t> by_name_;
  std::map<uint64_t, uint32_t> slots_;
  std::vector<uint32_t> free_slots_;
  uint32_t slot_high_ = 0;
  std::vector<Sublayer> sublayers_;
  Action defaults_[XFP_LAYER_COUNT] = {Action::Permit, Action::Permit};
  uint64_t next_id_ = 1;
};

}  // namespace xfp
