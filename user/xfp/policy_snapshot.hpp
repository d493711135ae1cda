// The user-space classifier: WFP filter evaluation over an immutable copy of
// one installed generation of the policy. It serves two purposes:
//
//  - finishing arbitration for frames the kernel punted to a callout served
//    in user space (resume(): the kernel stopped at the callout's sublayer
//    slot and handed over the state of the earlier slots in xfp_punt_meta);
//  - a reference classifier (classify(): from scratch) that the BPF tests
//    compare with the kernel's verdicts, frame by frame.
//
// Both evaluate filters one by one, in WFP's order: sublayers by weight,
// inside a sublayer the matching filters by rank until one returns permit or
// block (a callout may return continue). Arbitration between sublayers is
// include/xfp/arbitration.h, the same code the kernel runs.
//
// Cost: linear in the filters of the sublayers still to evaluate (and in
// their conditions), with each condition precompiled into one mask or range
// test. That is acceptable because only punted frames come here: the kernel
// decides every other frame in a cost independent of the number of filters.
// A policy that punts most of its traffic to a callout sitting in front of
// thousands of filters pays for those filters per punted frame.
//
// Threads: a snapshot never changes after create(). The control thread
// publishes a new std::shared_ptr<const PolicySnapshot> per installed
// generation; a worker keeps the one it loaded for as long as it uses it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "xfp/abi.h"
#include "xfp/arbitration.h"
#include "xfp/compiler.hpp"
#include "xfp/filter.hpp"
#include "xfp/filter_set.hpp"
#include "xfp/result.hpp"

namespace xfp {


// Exactly the frames the kernel's compiled tables match (user/compiler.cpp,
// expand_condition): masked equality and prefixes; `ne` on a whole field is
// x != value, a masked `ne` is (x & mask) != (value & mask); ordering tests
// and ranges are on the field's width; flags tests on the value's bits.
// (One known exception, a compiler slip: a filter whose only field is
// EtherType, frame length or a VLAN and that uses a flags test or a
// non-prefix mask, which check_filter() refuses but FilterSet accepts, is
// painted wrongly into the kernel's direct table. This follows tuple space.)
bool condition_matches(const Condition& condition, const xfp_fields& fields);
// Conditions on different fields AND, on the same field OR; none: every frame.
bool filter_matches(const Filter& filter, const xfp_fields& fields);

// What a callout said about one frame.
struct CalloutVerdict {
  bool served = false;                   // false: nobody serves it, its fail action applies
  uint8_t action = XFP_ACTION_CONTINUE;  // XFP_ACTION_PERMIT, _BLOCK or _CONTINUE
  bool absorbed = false;                 // the callout owns the frame now
};

// Calls the callout a filter names. `action_right` tells the callout whether
// its permit or block can still change the verdict (no hard decision yet).
class CalloutInvoker {
 public:
  virtual ~CalloutInvoker() = default;
  virtual CalloutVerdict invoke(const Filter& filter, const xfp_fields& fields, bool action_right) = 0;
};

// Every callout unavailable: each applies its fail action, as in the kernel
// while no callout is served.
class UnservedCallouts final : public CalloutInvoker {
 public:
  CalloutVerdict invoke(const Filter&, const xfp_fields&, bool) override { return {}; }
};

// A std::function as an invoker (tests, simple hosts).
class FunctionInvoker final : public CalloutInvoker {
 public:
  using Fn = std::function<CalloutVerdict(const Filter& filter, const xfp_fields& fields, bool action_right)>;
  explicit FunctionInvoker(Fn fn) : fn_(std::move(fn)) {}
  CalloutVerdict invoke(const Filter& filter, const xfp_fields& fields, bool action_right) override {
    return fn_ ? fn_(filter, fields, action_right) : CalloutVerdict{};
  }

 private:
  Fn fn_;
};

// The outcome of one evaluation. Check `absorbed` first: an absorbed frame
// belongs to the callout and must be neither delivered nor freed.
struct Decision {
  static constexpr size_t kRecordedCallouts = 8;

  Action action = Action::Permit;  // Permit or Block
  bool hard = false;               // the action right was cleared
  bool vetoed = false;             // a callout's block overrode a hard permit
  bool absorbed = false;           // a callout took the frame; `filter_id` is that callout
  bool by_default = false;         // no filter decided: the layer's default action
  // The decision came from the sublayers the kernel evaluated before it
  // punted (resume() only): the deciding filter is not known here.
  bool decided_before_resume = false;
  uint64_t filter_id = 0;          // the deciding (or absorbing) filter; 0 when none is known
  uint32_t callouts_invoked = 0;   // invoker calls, served or not
  uint32_t callouts_unserved = 0;  // of those, fail actions applied (kernel: callout-fail)
  // Ids of the first kRecordedCallouts callout filters invoked, in order.
  std::array<uint64_t, kRecordedCallouts> invoked{};
};

// One sublayer of a layer in evaluation order. A sublayer with inspection
// callouts has two slots in the kernel (a shadow slot, then its own) and one
// entry here: its filters are evaluated together, by rank.
struct SnapshotSublayer {
  std::string name;
  std::vector<uint32_t> ranks;  // its active filters, best first
};

class PolicySnapshot {
 public:
  // `compiled` must be compile(set) and `generation` the Datapath's
  // generation once that compiled set is installed. Fails when the two do
  // not belong together (a ranked filter that the set does not hold).
  static Result<std::shared_ptr<const PolicySnapshot>> create(const FilterSet& set, const CompiledSet& compiled,
                                                              uint64_t generation);

  uint64_t generation() const { return generation_; }
  Action default_action(Layer layer) const { return layer_of(layer).default_action; }
  const std::vector<SnapshotSublayer>& sublayers(Layer layer) const { return layer_of(layer).sublayers; }
  // The filter of a rank (nullptr past the end).
  const Filter* filter_at_rank(Layer layer, uint32_t rank) const;
  // The sublayer a kernel slot belongs to (shadow slots included).
  std::optional<size_t> sublayer_index_of_slot(Layer layer, uint8_t slot) const;

  // WFP evaluation of `fields` from sublayer `first_sublayer` on, with the
  // decision of the earlier sublayers in `start`.
  Decision evaluate(Layer layer, const xfp_fields& fields, size_t first_sublayer, xfp_arbitration start,
                    CalloutInvoker& invoke) const;
  // From scratch: every sublayer, no decision yet.
  Decision classify(Layer layer, const xfp_fields& fields, CalloutInvoker& invoke) const;

  // True when `meta` was written by the kernel under this snapshot's
  // generation (the header carries its low 32 bits).
  bool is_generation_of(const xfp_punt_meta& meta) const {
    return meta.generation == static_cast<uint32_t>(generation_);
  }
  // Finishes the arbitration of a punted frame: the state of the earlier
  // sublayers is decoded from meta.arb, and evaluation restarts at the
  // *first filter* of the punted slot's sublayer. That is deliberate: the
  // kernel may punt at an inspection callout's shadow slot although a plain
  // filter of the same sublayer ranks above the callout (the kernel keeps
  // the two in separate slots), and only evaluating the whole sublayer in
  // rank order gives WFP's answer.
  //
  // nullopt when the meta is not from this snapshot: bad magic or layer, a
  // generation that differs (a new set was installed since the kernel
  // punted), a slot or rank this snapshot does not have. The caller then
  // classifies the frame from scratch under its current snapshot.
  std::optional<Decision> resume(const xfp_punt_meta& meta, const xfp_fields& fields,
                                 CalloutInvoker& invoke) const;

  // The kernel's callout id of a filter this snapshot holds (a Filter
  // reference from filter_at_rank(), resume() or an invoker): what the
  // compiler wrote into xfp_match.callout_id, without a lookup by key.
  static uint16_t callout_id_of(const Filter& filter);

  // A condition precompiled into one test of the field's value; public so
  // that condition_matches() and the snapshot share one definition.
  struct Test {
    enum Kind : uint8_t {
      kMaskedEqual,     // (x & a) == b
      kMaskedNotEqual,  // (x & a) != b
      kRange,           // a <= x <= b
      kAnyBit,          // (x & a) != 0
      kNever,           // matches nothing (an empty interval, a zero mask on ne)
    };
    Field field;
    Kind kind;
    uint64_t a;
    uint64_t b;
  };
  static Test compile_condition(const Condition& condition);

 private:
  struct RankedFilter {
    Filter filter;               // a copy: the snapshot outlives FilterSet changes
    size_t sublayer = 0;         // index into LayerView::sublayers
    xfp_match match{};           // as the kernel's tables hold it (action, HARD/CALLOUT/FAIL_OPEN)
    std::vector<Test> tests;     // sorted by field: a run of one field is an OR group
  };
  struct LayerView {
    std::vector<RankedFilter> by_rank;
    std::vector<SnapshotSublayer> sublayers;
    std::array<int16_t, XFP_MAX_SUBLAYERS> sublayer_of_slot{};  // -1: no such slot
    Action default_action = Action::Permit;
  };

  PolicySnapshot() = default;
  const LayerView& layer_of(Layer layer) const { return layers_[static_cast<int>(layer)]; }
  static bool tests_match(const std::vector<Test>& tests, const xfp_fields& fields);

  LayerView layers_[XFP_LAYER_COUNT];
  uint64_t generation_ = 0;
};

using PolicySnapshotPtr = std::shared_ptr<const PolicySnapshot>;

}  // namespace xfp
