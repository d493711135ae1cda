#include "xfp/filter_set.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace xfp {
namespace {

std::optional<uint64_t> parse_id(const std::string& ref) {
  uint64_t id = 0;
  auto [end, ec] = std::from_chars(ref.data(), ref.data() + ref.size(), id);
  if (ec != std::errc() || end != ref.data() + ref.size() || ref.empty()) return std::nullopt;
  return id;
}

Status validate_filter(const Filter& f) {
  if (f.layer != Layer::Inbound && f.layer != Layer::Outbound)
    return make_error(EINVAL, "unknown layer");
  if (f.flags & ~static_cast<uint32_t>(XFP_FILTER_KNOWN_FLAGS))
    return make_error(EINVAL, fmt::format("unknown filter flags 0x{:x}", f.flags));
  if (is_callout(f.action) && f.callout.empty())
    return make_error(EINVAL, fmt::format("action {} needs 'callout KEY'", action_name(f.action)));
  if (!is_callout(f.action) && !f.callout.empty())
    return make_error(EINVAL, fmt::format("'callout {}' only goes with a callout action, not {}",
                                          f.callout, action_name(f.action)));
  for (const Condition& c : f.conditions) {
    uint64_t max = field_max(c.field);
    if (c.value > max || (c.match == Match::Range && (c.value_hi > max || c.value_hi < c.value)))
      return make_error(EINVAL, fmt::format("condition on {} is out of range", field_name(c.field)));
  }
  return Ok{};
}

}  // namespace

FilterSet::FilterSet() { sublayers_.push_back(Sublayer{kDefaultSublayer, 0}); }

Result<uint64_t> FilterSet::add_filter(Filter f) {
  XFP_TRY(validate_filter(f));
  if (!find_sublayer(f.sublayer))
    return make_error(ENOENT, fmt::format("unknown sublayer '{}' (add it first: sublayer add {} weight N)",
                                          f.sublayer, f.sublayer));
  if (!f.name.empty() && by_name_.count(f.name))
    return make_error(EEXIST, fmt::format("a filter named '{}' exists already (id {})", f.name,
                                          by_name_.at(f.name)));
  if (f.id != 0 && filters_.count(f.id))
    return make_error(EEXIST, fmt::format("a filter with id {} exists already", f.id));
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else if (slot_high_ < XFP_MAX_FILTERS) {
    slot = slot_high_++;
  } else {
    return make_error(ENOSPC, fmt::format("the filter table is full ({} filters)", XFP_MAX_FILTERS));
  }
  if (f.id == 0) f.id = next_id_;
  next_id_ = std::max(next_id_, f.id + 1);
  uint64_t id = f.id;
  if (!f.name.empty()) by_name_[f.name] = id;
  slots_[id] = slot;
  filters_.emplace(id, std::move(f));
  return id;
}

Result<Filter> FilterSet::remove_filter(const std::string& ref) {
  const Filter* found = find(ref);
  if (!found) return make_error(ENOENT, fmt::format("no filter with id or name '{}'", ref));
  uint64_t id = found->id;
  Filter removed = std::move(filters_.at(id));
  filters_.erase(id);
  if (!removed.name.empty()) by_name_.erase(removed.name);
  free_slots_.push_back(slots_.at(id));
  slots_.erase(id);
  return removed;
}

Status FilterSet::add_sublayer(const Sublayer& s) {
  if (s.name.empty()) return make_error(EINVAL, "a sublayer needs a name");
  if (find_sublayer(s.name)) return make_error(EEXIST, fmt::format("sublayer '{}' exists already", s.name));
  sublayers_.push_back(s);
  return Ok{};
}

Status FilterSet::remove_sublayer(const std::string& name) {
  if (name == kDefaultSublayer) return make_error(EPERM, "the sublayer 'default' cannot be deleted");
  auto it = std::find_if(sublayers_.begin(), sublayers_.end(),
                         [&](const Sublayer& s) { return s.name == name; });
  if (it == sublayers_.end()) return make_error(ENOENT, fmt::format("no sublayer named '{}'", name));
  for (const auto& [id, f] : filters_)
    if (f.sublayer == name)
      return make_error(EBUSY, fmt::format("sublayer '{}' still holds filter {}; delete its filters first",
                                           name, id));
  sublayers_.erase(it);
  return Ok{};
}

void FilterSet::flush() {
  filters_.clear();
  by_name_.clear();
  for (const auto& [id, slot] : slots_) free_slots_.push_back(slot);
  slots_.clear();
  sublayers_.erase(std::remove_if(sublayers_.begin(), sublayers_.end(),
                                  [](const Sublayer& s) { return s.name != kDefaultSublayer; }),
                   sublayers_.end());
}

void FilterSet::set_default(Layer layer, Action action) {
  defaults_[static_cast<int>(layer)] = action == Action::Block ? Action::Block : Action::Permit;
}

Status FilterSet::apply(const Command& c) {
  switch (c.kind) {
    case Command::Kind::AddFilter: {
      auto r = add_filter(c.filter);
      if (!r) return std::move(r).error();
      return Ok{};
    }
    case Command::Kind::DeleteFilter: {
      auto r = remove_filter(c.ref);
      if (!r) return std::move(r).error();
      return Ok{};
    }
    case Command::Kind::AddSublayer:
      return add_sublayer(c.sublayer);
    case Command::Kind::DeleteSublayer:
      return remove_sublayer(c.ref);
    case Command::Kind::Flush:
      flush();
      return Ok{};
    case Command::Kind::SetDefault:
      if (c.default_action != Action::Permit && c.default_action != Action::Block)
        return make_error(EINVAL, "a layer's default action is permit or block");
      set_default(c.layer, c.default_action);
      return Ok{};
  }
  return make_error(EINVAL, "unknown command");
}

Status FilterSet::apply(const std::vector<Command>& commands) {
  for (size_t i = 0; i < commands.size(); ++i) {
    Status s = apply(commands[i]);
    if (!s) return std::move(s).error().context(fmt::format("command {}", i + 1));
  }
  return Ok{};
}

const Filter* FilterSet::find(const std::string& ref) const {
  if (auto id = parse_id(ref)) {
    if (const Filter* f = find_id(*id)) return f;
  }
  auto it = by_name_.find(ref);
  return it == by_name_.end() ? nullptr : find_id(it->second);
}

const Filter* FilterSet::find_id(uint64_t id) const {
  auto it = filters_.find(id);
  return it == filters_.end() ? nullptr : &it->second;
}

std::vector<const Filter*> FilterSet::filters() const {
  std::vector<const Filter*> out;
  out.reserve(filters_.size());
  for (const auto& [id, f] : filters_) out.push_back(&f);
  return out;
}

const Sublayer* FilterSet::find_sublayer(const std::string& name) const {
  for (const Sublayer& s : sublayers_)
    if (s.name == name) return &s;
  return nullptr;
}

std::optional<uint32_t> FilterSet::slot_of(uint64_t id) const {
  auto it = slots_.find(id);
  if (it == slots_.end()) return std::nullopt;
  return it->second;
}

}  // namespace xfp
