// The user-space classifier over one generation of the policy. See
// xfp/policy_snapshot.hpp.
#include "xfp/policy_snapshot.hpp"

#include <cstddef>

#include <algorithm>

#include <fmt/format.h>

namespace xfp {
namespace {

bool test_matches(const PolicySnapshot::Test& t, uint64_t x) {
  switch (t.kind) {
    case PolicySnapshot::Test::kMaskedEqual: return (x & t.a) == t.b;
    case PolicySnapshot::Test::kMaskedNotEqual: return (x & t.a) != t.b;
    case PolicySnapshot::Test::kRange: return t.a <= x && x <= t.b;
    case PolicySnapshot::Test::kAnyBit: return (x & t.a) != 0;
    case PolicySnapshot::Test::kNever: return false;
  }
  return false;
}

std::vector<PolicySnapshot::Test> compile_conditions(const std::vector<Condition>& conditions) {
  std::vector<PolicySnapshot::Test> tests;
  tests.reserve(conditions.size());
  for (const Condition& c : conditions) tests.push_back(PolicySnapshot::compile_condition(c));
  // Runs of one field form the OR groups that tests_match() walks.
  std::stable_sort(tests.begin(), tests.end(), [](const PolicySnapshot::Test& a, const PolicySnapshot::Test& b) {
    return static_cast<int>(a.field) < static_cast<int>(b.field);
  });
  return tests;
}

void record_callout(Decision& d, uint64_t filter_id) {
  if (d.callouts_invoked < Decision::kRecordedCallouts) d.invoked[d.callouts_invoked] = filter_id;
  ++d.callouts_invoked;
}

}  // namespace

// Mirrors expand_condition() in user/compiler.cpp: every case below names
// the set of values the compiler's (value, mask) pairs cover, as one test.
PolicySnapshot::Test PolicySnapshot::compile_condition(const Condition& c) {
  const uint64_t full = field_max(c.field);
  const uint64_t mask = c.mask & full;
  auto range = [&](uint64_t lo, uint64_t hi) {
    hi = std::min(hi, full);
    return lo <= hi ? Test{c.field, Test::kRange, lo, hi} : Test{c.field, Test::kNever, 0, 0};
  };
  const Test never{c.field, Test::kNever, 0, 0};
  switch (c.match) {
    case Match::Equal:
    case Match::Prefix:
      return {c.field, Test::kMaskedEqual, mask, c.value & mask};
    case Match::NotEqual:
      // A whole-field ne is the two intervals around the value (the value
      // itself unmasked); a masked ne differs in some masked bit, and with
      // no masked bit at all the compiler emits no pair: it never matches.
      if (mask == full) return {c.field, Test::kMaskedNotEqual, full, c.value};
      if (mask == 0) return never;
      return {c.field, Test::kMaskedNotEqual, mask, c.value & mask};
    case Match::Greater:
      return c.value < full ? range(c.value + 1, full) : never;
    case Match::GreaterOrEqual:
      return range(c.value, full);
    case Match::Less:
      return c.value > 0 ? range(0, c.value - 1) : never;
    case Match::LessOrEqual:
      return range(0, c.value);
    case Match::Range:
      return range(c.value, c.value_hi);
    case Match::FlagsAllSet:
      return {c.field, Test::kMaskedEqual, c.value & full, c.value & full};
    case Match::FlagsNoneSet:
      return {c.field, Test::kMaskedEqual, c.value & full, 0};
    case Match::FlagsAnySet:
      // One pair per flag bit of the field's width; no bit: no pair.
      return (c.value & full) ? Test{c.field, Test::kAnyBit, c.value & full, 0} : never;
  }
  return never;
}

bool condition_matches(const Condition& condition, const xfp_fields& fields) {
  return test_matches(PolicySnapshot::compile_condition(condition), field_value(condition.field, fields));
}

bool filter_matches(const Filter& filter, const xfp_fields& fields) {
  // Same field OR, different fields AND, written out without precompiling.
  bool seen[kFieldCount] = {};
  bool any[kFieldCount] = {};
  for (const Condition& c : filter.conditions) {
    const int i = static_cast<int>(c.field);
    seen[i] = true;
    if (!any[i] && condition_matches(c, fields)) any[i] = true;
  }
  for (int i = 0; i < kFieldCount; ++i)
    if (seen[i] && !any[i]) return false;
  return true;
}

bool PolicySnapshot::tests_match(const std::vector<Test>& tests, const xfp_fields& fields) {
  size_t i = 0;
  while (i < tests.size()) {
    const Field field = tests[i].field;
    const uint64_t x = field_value(field, fields);
    bool any = false;
    for (; i < tests.size() && tests[i].field == field; ++i)
      if (!any && test_matches(tests[i], x)) any = true;
    if (!any) return false;
  }
  return true;
}

Result<std::shared_ptr<const PolicySnapshot>> PolicySnapshot::create(const FilterSet& set,
                                                                     const CompiledSet& compiled,
                                                                     uint64_t generation) {
  // make_shared cannot reach the private constructor.
  std::shared_ptr<PolicySnapshot> snap(new PolicySnapshot());
  snap->generation_ = generation;
  for (int l = 0; l < XFP_LAYER_COUNT; ++l) {
    const Layer layer = static_cast<Layer>(l);
    const CompiledLayer& cl = compiled.layers[l];
    LayerView& lv = snap->layers_[l];
    lv.default_action = compiled.default_action[l] == XFP_ACTION_BLOCK ? Action::Block : Action::Permit;
    lv.sublayer_of_slot.fill(-1);
    if (cl.sublayer_order.size() > XFP_MAX_SUBLAYERS)
      return make_error(EINVAL, fmt::format("the compiled {} layer has {} sublayer slots, more than {}",
                                            layer_name(layer), cl.sublayer_order.size(), XFP_MAX_SUBLAYERS));
    // A shadow slot repeats its sublayer's name: one sublayer, two slots.
    for (size_t slot = 0; slot < cl.sublayer_order.size(); ++slot) {
      const std::string& name = cl.sublayer_order[slot];
      auto it = std::find_if(lv.sublayers.begin(), lv.sublayers.end(),
                             [&](const SnapshotSublayer& s) { return s.name == name; });
      if (it == lv.sublayers.end()) {
        lv.sublayers.push_back(SnapshotSublayer{name, {}});
        it = std::prev(lv.sublayers.end());
      }
      lv.sublayer_of_slot[slot] = static_cast<int16_t>(it - lv.sublayers.begin());
    }
    lv.by_rank.reserve(cl.filter_of_rank.size());
    for (size_t rank = 0; rank < cl.filter_of_rank.size(); ++rank) {
      const uint64_t id = cl.filter_of_rank[rank];
      const Filter* f = set.find_id(id);
      if (!f || f->layer != layer)
        return make_error(EINVAL, fmt::format("the compiled {} layer ranks filter {}, which the filter set "
                                              "does not hold there: set and compiled set do not belong together",
                                              layer_name(layer), id));
      auto sub = std::find_if(lv.sublayers.begin(), lv.sublayers.end(),
                              [&](const SnapshotSublayer& s) { return s.name == f->sublayer; });
      if (sub == lv.sublayers.end())
        return make_error(EINVAL, fmt::format("filter {} is in sublayer '{}', which the compiled {} layer has "
                                              "no slot for",
                                              id, f->sublayer, layer_name(layer)));
      RankedFilter rf;
      rf.filter = *f;
      rf.sublayer = static_cast<size_t>(sub - lv.sublayers.begin());
      if (rank >= cl.match_of_rank.size())
        return make_error(EINVAL, fmt::format("the compiled {} layer has no match for rank {}", layer_name(layer), rank));
      rf.match = cl.match_of_rank[rank];  // what the kernel holds: flags, callout id
      rf.tests = compile_conditions(f->conditions);
      sub->ranks.push_back(static_cast<uint32_t>(rank));
      lv.by_rank.push_back(std::move(rf));
    }
  }
  return std::shared_ptr<const PolicySnapshot>(std::move(snap));
}

const Filter* PolicySnapshot::filter_at_rank(Layer layer, uint32_t rank) const {
  const LayerView& lv = layer_of(layer);
  return rank < lv.by_rank.size() ? &lv.by_rank[rank].filter : nullptr;
}

std::optional<size_t> PolicySnapshot::sublayer_index_of_slot(Layer layer, uint8_t slot) const {
  if (slot >= XFP_MAX_SUBLAYERS) return std::nullopt;
  const int16_t idx = layer_of(layer).sublayer_of_slot[slot];
  if (idx < 0) return std::nullopt;
  return static_cast<size_t>(idx);
}

// `start.slot`, when not XFP_RANK_NONE, is the rank of the filter behind
// start's decision: the arbitration state carries ranks here, because in
// user space the rank is what names a filter.
Decision PolicySnapshot::evaluate(Layer layer, const xfp_fields& fields, size_t first_sublayer,
                                  xfp_arbitration arb, CalloutInvoker& invoke) const {
  const LayerView& lv = layer_of(layer);
  Decision d;
  for (size_t s = first_sublayer; s < lv.sublayers.size() && !arb.final; ++s) {
    for (uint32_t rank : lv.sublayers[s].ranks) {
      const RankedFilter& rf = lv.by_rank[rank];
      if (!tests_match(rf.tests, fields)) continue;
      uint8_t hard = 0, from_callout = 0;
      uint8_t action;
      if (rf.match.flags & XFP_MATCH_CALLOUT) {
        record_callout(d, rf.filter.id);
        const CalloutVerdict v = invoke.invoke(rf.filter, fields, !arb.hard);
        if (!v.served) {
          // The kernel's fail action: block (hard) or permit; inspection continues.
          ++d.callouts_unserved;
          action = xfp_match_fail_decision(&rf.match, &hard);
        } else if (v.absorbed) {
          // The frame is gone: nothing later sees it, no verdict applies.
          d.absorbed = true;
          d.filter_id = rf.filter.id;
          d.action = arb.action == XFP_ACTION_BLOCK ? Action::Block : Action::Permit;
          d.hard = arb.hard;
          d.vetoed = arb.vetoed;
          return d;
        } else {
          // An inspection callout only looks; any callout's verdict clears
          // the action right only with CLEAR_ACTION_RIGHT, and its block
          // may veto a hard permit.
          action = rf.filter.action == Action::CalloutInspection ? static_cast<uint8_t>(XFP_ACTION_CONTINUE) : v.action;
          hard = (rf.match.flags & XFP_MATCH_HARD) ? 1 : 0;
          from_callout = 1;
        }
      } else {
        action = xfp_match_fail_decision(&rf.match, &hard);
      }
      if (action != XFP_ACTION_PERMIT && action != XFP_ACTION_BLOCK) continue;  // the next filter decides
      xfp_arbitration_step(&arb, action, hard, from_callout, rank);
      break;  // one decision per sublayer
    }
  }
  d.hard = arb.hard;
  d.vetoed = arb.vetoed;
  if (arb.action == XFP_ACTION_NONE) {
    d.by_default = true;
    d.action = lv.default_action;
    return d;
  }
  d.action = arb.action == XFP_ACTION_BLOCK ? Action::Block : Action::Permit;
  if (arb.slot < lv.by_rank.size())
    d.filter_id = lv.by_rank[arb.slot].filter.id;
  else
    d.decided_before_resume = true;
  return d;
}

Decision PolicySnapshot::classify(Layer layer, const xfp_fields& fields, CalloutInvoker& invoke) const {
  xfp_arbitration start;
  xfp_arbitration_init(&start);
  return evaluate(layer, fields, 0, start, invoke);
}

std::optional<Decision> PolicySnapshot::resume(const xfp_punt_meta& meta, const xfp_fields& fields,
                                               CalloutInvoker& invoke) const {
  if (meta.magic != XFP_PUNT_MAGIC || meta.layer >= XFP_LAYER_COUNT || !is_generation_of(meta))
    return std::nullopt;
  const Layer layer = static_cast<Layer>(meta.layer);
  const std::optional<size_t> sublayer = sublayer_index_of_slot(layer, meta.sublayer);
  if (!sublayer) return std::nullopt;
  // The punted filter must be a callout of that sublayer; anything else is
  // a meta this snapshot did not produce.
  const LayerView& lv = layer_of(layer);
  if (meta.rank >= lv.by_rank.size() || lv.by_rank[meta.rank].sublayer != *sublayer ||
      !is_callout(lv.by_rank[meta.rank].filter.action))
    return std::nullopt;
  xfp_arbitration start;
  xfp_arbitration_init(&start);
  start.action = meta.arb & XFP_PUNT_ARB_ACTION;
  if (start.action != XFP_ACTION_NONE && start.action != XFP_ACTION_PERMIT && start.action != XFP_ACTION_BLOCK)
    return std::nullopt;
  start.hard = (meta.arb & XFP_PUNT_ARB_HARD) ? 1 : 0;
  start.vetoed = (meta.arb & XFP_PUNT_ARB_VETOED) ? 1 : 0;
  start.final = start.action == XFP_ACTION_BLOCK && start.hard;
  // start.slot stays XFP_RANK_NONE: the kernel's decider is not in the meta.
  return evaluate(layer, fields, *sublayer, start, invoke);
}

uint16_t PolicySnapshot::callout_id_of(const Filter& filter) {
  // Every Filter a snapshot hands out is the first member of its RankedFilter.
  static_assert(offsetof(RankedFilter, filter) == 0);
  return reinterpret_cast<const RankedFilter*>(&filter)->match.callout_id;
}

}  // namespace xfp
