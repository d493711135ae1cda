// The kernel and the user-space classifier agree: random filter sets (every
// field, match type, sublayer layout, weight ties, action and flag, callouts
// included) are compiled and installed, and random and crafted frames are
// run through the real XDP (inbound) and TC (outbound) programs with
// BPF_PROG_TEST_RUN. PolicySnapshot::classify() on the same bytes, parsed
// with the same xfp_parse_frame(), must give the same verdict. No callout is
// served in the kernel (compile() without callout ids gives id 0), so the
// user-space invoker reports every callout as unserved.
//
// Reproduce a failure with XFP_AGREEMENT_SEED=<seed printed by the test>.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <net/if.h>

#include <bpf/bpf.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "support/frame_builder.hpp"
#include "support/packet_io.hpp"
#include "support/privileges.hpp"
#include "xfp/compiler.hpp"
#include "xfp/datapath.hpp"
#include "xfp/filter_syntax.hpp"
#include "xfp/frame_parse.h"
#include "xfp/policy_snapshot.hpp"

namespace xfp {
namespace {

using test::FrameBuilder;
using test::Mac;

constexpr int kSets = 200;
constexpr int kRandomFramesPerSet = 40;
constexpr int kMaxReportedMismatches = 5;
// BPF_PROG_TEST_RUN's data limit: a page less XDP headroom and skb_shared_info.
constexpr size_t kLargestTestRunFrame = 4096 - 256 - 320;

// ---- pools: conditions and frames draw from the same values, so that
// ---- filters match often enough to decide.
const std::vector<Mac> kMacs = {
    {0x02, 0x00, 0x00, 0x00, 0x00, 0x10}, {0x02, 0x5e, 0x10, 0x00, 0x00, 0x01}, {0x02, 0x5e, 0x10, 0x77, 0x00, 0x02},
    {0x02, 0x99, 0x00, 0x00, 0x00, 0x03}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01},
    {0x33, 0x33, 0x00, 0x00, 0x00, 0x01}, {0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e}, {0x03, 0x00, 0x00, 0x00, 0x00, 0x01},
};
const std::vector<uint16_t> kEtherTypes = {0x0800, 0x0806, 0x86dd, 0x88b5, 0x88cc, 0x0040,
                                           0x05dc, 0x05ff, 0x0600, 0x8100, 0x88a8, 0x9100};
const std::vector<uint16_t> kVids = {0, 1, 5, 100, 300, 4094, 4095};
const std::vector<uint16_t> kLengths = {14, 18, 22, 34, 60, 64, 100, 1000, 1514};

template <typename T>
const T& pick(std::mt19937& rng, const std::vector<T>& v) {
  return v[rng() % v.size()];
}

uint64_t mac_value(const Mac& m) {
  uint64_t v = 0;
  for (uint8_t b : m) v = (v << 8) | b;
  return v;
}

bool chance(std::mt19937& rng, unsigned percent) { return rng() % 100 < percent; }

// ---- random policies ---------------------------------------------------------
class PolicyGenerator {
 public:
  PolicyGenerator(std::mt19937& rng, std::vector<uint32_t> ifindexes) : rng_(rng), ifindexes_(std::move(ifindexes)) {}

  Condition condition() {
    static constexpr Field kFields[] = {
        Field::LocalMac,  Field::RemoteMac,   Field::RemoteMac,     Field::EtherType,      Field::EtherType,
        Field::Vlan,      Field::InnerVlan,   Field::FrameLength,   Field::FrameLength,    Field::L2Flags,
        Field::L2Flags,   Field::LocalAddrType, Field::RemoteAddrType, Field::Interface, Field::Compartment,
        Field::InterfaceMac,
    };
    static constexpr Match kMatches[] = {Match::Equal,       Match::Equal,          Match::NotEqual,
                                         Match::Greater,     Match::Less,           Match::GreaterOrEqual,
                                         Match::LessOrEqual, Match::Range,          Match::FlagsAllSet,
                                         Match::FlagsAnySet, Match::FlagsNoneSet,   Match::Prefix};
    Condition c;
    c.field = kFields[rng_() % std::size(kFields)];
    c.match = kMatches[rng_() % std::size(kMatches)];
    // Flags tests belong to l2-flags; elsewhere they are rarer.
    if (c.field == Field::L2Flags && chance(rng_, 60))
      c.match = std::array{Match::FlagsAllSet, Match::FlagsAnySet, Match::FlagsNoneSet}[rng_() % 3];
    // An interval on a 48-bit field covers up to 94 prefixes of as many
    // lengths, and a layer holds 64 condition shapes: keep them rare, or
    // most sets would not compile.
    const bool ordering = c.match == Match::Greater || c.match == Match::Less || c.match == Match::GreaterOrEqual ||
                          c.match == Match::LessOrEqual || c.match == Match::Range;
    if (ordering && field_bits(c.field) > 16 && chance(rng_, 75))
      c.match = std::array{Match::Equal, Match::NotEqual, Match::Prefix}[rng_() % 3];
    const uint64_t full = field_max(c.field);
    c.value = value_of(c.field);
    if (c.match == Match::Range) {
      static constexpr uint64_t kSpans[] = {0, 1, 2, 10, 100, 5000, ~0ull};
      const uint64_t span = kSpans[rng_() % std::size(kSpans)];
      c.value_hi = span > full - c.value ? full : c.value + span;
    }
    const bool masked = c.match == Match::Equal || c.match == Match::NotEqual || c.match == Match::Prefix;
    if (field_is_mac(c.field) && masked) {
      static constexpr uint64_t kMasks[] = {~0ull, 0xffffff000000, 0xffffffffff00, 0xff0000000000,
                                            0x010000000000, 0x00ff00ff00ff, 0};
      c.mask = kMasks[rng_() % std::size(kMasks)];
    }
    // Masks the filter language refuses but FilterSet takes, prefixes or not:
    // alone on their field they go to its direct table, like the flags tests.
    const bool wide = c.field == Field::EtherType || c.field == Field::FrameLength || c.field == Field::Vlan ||
                      c.field == Field::InnerVlan;
    if (wide && masked && chance(rng_, 25)) {
      static constexpr uint64_t kMasks[] = {0xff00, 0xfff0, 0x000f, 0x0f0f, 0x8001, 0x0ff0, 0x0004, 0};
      c.mask = kMasks[rng_() % std::size(kMasks)];
    }
    return c;
  }

  Filter filter(const std::vector<std::string>& sublayers) {
    Filter f;
    f.layer = chance(rng_, 50) ? Layer::Inbound : Layer::Outbound;
    f.sublayer = pick(rng_, sublayers);
    static const std::vector<uint64_t> kWeights = {0, 1, 2, 5, 5, 1000};
    f.weight = chance(rng_, 95) ? pick(rng_, kWeights) : rng_();
    const unsigned a = rng_() % 100;
    f.action = a < 30   ? Action::Permit
               : a < 60 ? Action::Block
               : a < 75 ? Action::CalloutTerminating
               : a < 90 ? Action::CalloutInspection
                        : Action::CalloutUnknown;
    if (is_callout(f.action)) f.callout = "agreement.callout";
    if (chance(rng_, 30)) f.flags |= XFP_FILTER_CLEAR_ACTION_RIGHT;
    if (chance(rng_, 30)) f.flags |= XFP_FILTER_PERMIT_IF_CALLOUT_UNREGISTERED;
    if (chance(rng_, 8)) f.flags |= XFP_FILTER_DISABLED;
    const unsigned nconds = rng_() % 100 < 15 ? 0 : 1 + rng_() % 3;
    for (unsigned i = 0; i < nconds; ++i) f.conditions.push_back(condition());
    return f;
  }

  // Sublayers, filters and defaults; nullopt when the set does not compile
  // (too many condition shapes for one layer, say): the caller draws again.
  struct Policy {
    FilterSet set;
    CompiledSet compiled;
  };
  std::optional<Policy> policy() {
    Policy p;
    std::vector<std::string> names = {kDefaultSublayer};
    const unsigned extra = rng_() % 4;  // at most four sublayers: eight slots with shadows
    for (unsigned i = 0; i < extra; ++i) {
      static const std::vector<uint16_t> kWeights = {0, 5, 10, 100, 65535};
      Sublayer s{"s" + std::to_string(i + 1), pick(rng_, kWeights)};
      if (!p.set.add_sublayer(s).ok()) return std::nullopt;
      names.push_back(s.name);
    }
    p.set.set_default(Layer::Inbound, chance(rng_, 50) ? Action::Permit : Action::Block);
    p.set.set_default(Layer::Outbound, chance(rng_, 50) ? Action::Permit : Action::Block);
    const unsigned nfilters = 1 + rng_() % 12;
    for (unsigned i = 0; i < nfilters; ++i)
      if (!p.set.add_filter(filter(names)).ok()) return std::nullopt;
    auto compiled = compile(p.set);
    if (!compiled.ok()) return std::nullopt;
    p.compiled = std::move(compiled).value();
    return p;
  }

  uint32_t ifindex() { return pick(rng_, ifindexes_); }

 private:
  uint64_t value_of(Field f) {
    const uint64_t full = field_max(f);
    uint64_t v = 0;
    switch (f) {
      case Field::LocalMac:
      case Field::RemoteMac:
        v = mac_value(pick(rng_, kMacs));
        break;
      case Field::InterfaceMac:
        v = chance(rng_, 50) ? 0 : mac_value(pick(rng_, kMacs));
        break;
      case Field::EtherType: v = pick(rng_, kEtherTypes); break;
      case Field::Vlan:
      case Field::InnerVlan: v = pick(rng_, kVids); break;
      case Field::FrameLength: v = pick(rng_, kLengths); break;
      case Field::L2Flags: v = rng_() & XFP_L2_KNOWN_FLAGS & (rng_() | rng_()); break;
      case Field::LocalAddrType:
      case Field::RemoteAddrType: v = rng_() % 3; break;
      case Field::Interface: v = chance(rng_, 80) ? ifindex() : 99; break;
      case Field::Compartment: v = chance(rng_, 70) ? 0 : rng_() % 5; break;
    }
    // Off by one now and then: boundaries are where ranges go wrong.
    if (chance(rng_, 20)) v += 1;
    if (chance(rng_, 20) && v > 0) v -= 1;
    return v & full;
  }

  std::mt19937& rng_;
  std::vector<uint32_t> ifindexes_;
};

// ---- frames ----------------------------------------------------------------
std::vector<uint8_t> random_frame(std::mt19937& rng) {
  FrameBuilder b;
  b.dst(pick(rng, kMacs)).src(pick(rng, kMacs));
  const unsigned tags = rng() % 100;
  if (tags < 45) {
  } else if (tags < 65) {
    b.vlan(pick(rng, kVids));
  } else if (tags < 80) {
    b.qinq(pick(rng, kVids), pick(rng, kVids));
  } else if (tags < 88) {
    b.qinq(pick(rng, kVids), pick(rng, kVids)).vlan(pick(rng, kVids));  // three deep
  } else if (tags < 94) {
    b.vlan(pick(rng, kVids), 0, 0x9100);
  } else {
    b.vlan(pick(rng, kVids), 0, test::ethertype::kQinQ);
  }
  const uint16_t type = pick(rng, kEtherTypes);
  if (type == 0x0800 && chance(rng, 80)) {
    test::Ipv4Options ip;
    ip.more_fragments = chance(rng, 20);
    ip.fragment_offset = chance(rng, 10) ? 100 : 0;
    ip.dont_fragment = chance(rng, 30);
    b.ipv4(ip);
    if (chance(rng, 50)) b.udp();
  } else {
    b.ethertype(type);
  }
  static const std::vector<size_t> kPads = {0, 60, 60, 64, 100, 1000, 1514};
  b.pad_to(pick(rng, kPads));
  if (chance(rng, 12)) b.truncate_to(14 + rng() % 30);  // XDP test runs need an Ethernet header
  return b.build();
}

// Frames every set sees: the parser's corner cases.
std::vector<std::vector<uint8_t>> crafted_frames() {
  const Mac local{0x02, 0x00, 0x00, 0x00, 0x00, 0x10};
  const Mac remote{0x02, 0x5e, 0x10, 0x00, 0x00, 0x01};
  auto base = [&] { return FrameBuilder().dst(local).src(remote); };
  return {
      base().ethertype(0x88b5).build(),
      base().ipv4().udp().build(),
      base().ipv4({.more_fragments = true}).build(),
      base().ipv4({.fragment_offset = 100}).pad_to(1514).build(),
      base().vlan(100).ethertype(0x0806).build(),
      base().qinq(300, 5).ipv4().build(),
      base().qinq(1, 2).vlan(3).build(),                           // tag stack too deep
      base().vlan(5).truncate_to(14).build(),                      // TPID, no tag
      base().qinq(5, 6).truncate_to(20).build(),                   // inner tag cut
      base().ipv4().truncate_to(30).build(),                       // IPv4 header cut
      base().ethertype(0x0800).payload(std::string(20, '\x60')).build(),  // not IPv4 inside
      base().ethertype(0x0040).build(),                            // 802.3 length: LLC
      FrameBuilder().dst(test::kBroadcastMac).src(remote).ethertype(0x0806).build(),
      FrameBuilder().dst(Mac{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}).src(Mac{0x03, 0, 0, 0, 0, 1}).build(),
      base().ethertype(0x88cc).pad_to(0).truncate_to(14).build(),  // header only
  };
}

std::string hex(const std::vector<uint8_t>& bytes) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < bytes.size() && i < 64; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", bytes[i]);
    out += buf;
  }
  if (bytes.size() > 64) out += "...";
  return out;
}

std::string describe(const FilterSet& set) {
  std::ostringstream out;
  for (const Sublayer& s : set.sublayers()) out << "  sublayer " << s.name << " weight " << s.weight << "\n";
  out << "  default inbound " << action_name(set.default_action(Layer::Inbound)) << ", outbound "
      << action_name(set.default_action(Layer::Outbound)) << "\n";
  for (const Filter* f : set.filters()) out << "  [" << f->id << "] " << format_filter_line(*f) << "\n";
  return out.str();
}

std::string describe(const xfp_fields& f) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "ifindex %u ethertype 0x%04x vlan %u inner %u len %u flags 0x%x (%s) addr types %u/%u",
                f.ifindex, f.ethertype, f.vlan, f.inner_vlan, f.frame_len, f.l2_flags,
                l2_flags_to_string(f.l2_flags).c_str(), f.local_addr_type, f.remote_addr_type);
  return buf;
}

// What the compiler made of one layer: enough to tell a compiler slip from
// an evaluation slip.
std::string describe(const CompiledLayer& cl) {
  std::ostringstream out;
  out << "  compiled: slots";
  for (size_t s = 0; s < cl.sublayer_order.size(); ++s) out << " " << s << "=" << cl.sublayer_order[s];
  out << "; ranks";
  for (size_t r = 0; r < cl.filter_of_rank.size(); ++r) out << " " << r << "=[" << cl.filter_of_rank[r] << "]";
  char buf[96];
  std::snprintf(buf, sizeof buf, "; direct fields 0x%x (%zu filters), %zu tuples, %zu entries\n", cl.direct_fields,
                cl.direct_filters, cl.tuples.size(), cl.entries.size());
  return out.str() + buf;
}

// One BPF_PROG_TEST_RUN with the interface in the context.
struct ProgramRun {
  int err = 0;  // 0 or a positive errno
  uint32_t retval = 0;
};

ProgramRun run_program(int prog_fd, bool xdp, const std::vector<uint8_t>& frame, uint32_t ifindex) {
  test::TestRunOptions options;
  options.xdp = xdp;
  options.ifindex = ifindex;
  const test::TestRunResult r = test::test_run(prog_fd, frame, options);
  return ProgramRun{r.err, r.retval};
}

// ---- the test ----------------------------------------------------------------
class AgreementTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::missing_privileges().empty()) return;
    auto dp = Datapath::open();
    ASSERT_TRUE(dp.ok()) << dp.error().message;
    datapath_ = std::move(dp).value().release();
  }
  static void TearDownTestSuite() {
    delete datapath_;
    datapath_ = nullptr;
  }
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    ASSERT_NE(datapath_, nullptr);
  }

  static Datapath* datapath_;
};

Datapath* AgreementTest::datapath_ = nullptr;

struct Tally {
  uint64_t compared = 0, blocked = 0, by_default = 0, decided_by_callout = 0, tc_refused = 0, redrawn = 0;
  uint64_t xdp_refused = 0;  // frames over the test run's size limit (fuzz only)
  int mismatches = 0;
};

// Runs one frame through the kernel program of `layer` and the user-space
// classifier and records the comparison. The kernel's verdict must be one of
// the two a filter set can give (XDP_PASS/XDP_DROP, TC_ACT_OK/TC_ACT_SHOT:
// no callout is served, so never a redirect, never XDP_ABORTED) and the
// same as user space's, default or not. Returns false on a fatal error (the
// caller stops).
bool compare_one(Datapath& dp, const PolicyGenerator::Policy& policy, const PolicySnapshot& snap,
                 const std::vector<uint8_t>& frame, Layer layer, uint32_t ifindex, int set_index,
                 bool fuzzing, Tally& t) {
  const bool xdp = layer == Layer::Inbound;
  if (xdp && frame.size() > kLargestTestRunFrame) {
    // The test run would put the rest in fragments (multi-buffer XDP). The
    // inbound program is not frags-aware, so the kernel never attaches it
    // where a frame can span buffers (veth refuses it above a page's MTU):
    // nothing to compare.
    ++t.xdp_refused;
    return true;
  }
  const LayerCounters before = dp.layer_counters(layer);
  const ProgramRun run = run_program(xdp ? dp.xdp_prog_fd() : dp.tc_prog_fd(), xdp, frame, ifindex);
  if (run.err != 0) {
    // skb test runs refuse an IPv4 or IPv6 frame shorter than its header
    // before the program runs; XDP takes every frame the run's buffer holds.
    if (fuzzing && run.err == EINVAL && frame.size() > kLargestTestRunFrame) {
      ++t.tc_refused;  // over the skb test run's size limit
      return true;
    }
    if (xdp) {
      ADD_FAILURE() << "XDP test run failed: " << std::strerror(run.err) << " on " << hex(frame) << " ("
                    << frame.size() << " bytes)";
      return false;
    }
    ++t.tc_refused;
    return true;
  }
  const LayerCounters after = dp.layer_counters(layer);
  const bool kernel_block = xdp ? run.retval == XDP_DROP : run.retval == TC_ACT_SHOT;
  const bool kernel_permit = xdp ? run.retval == XDP_PASS : run.retval == TC_ACT_OK;
  if (!kernel_block && !kernel_permit) {
    ADD_FAILURE() << "unexpected return value " << run.retval << " on " << hex(frame);
    return false;
  }
  const bool kernel_default = after.c[XFP_CNT_DEFAULT] != before.c[XFP_CNT_DEFAULT];

  xfp_fields fields{};
  fields.ifindex = ifindex;  // no attachment: compartment and interface MAC stay 0, as in the kernel
  xfp_parse_frame(frame.data(), frame.data() + frame.size(), static_cast<uint32_t>(frame.size()),
                  static_cast<uint8_t>(layer), &fields);
  if ((fields.l2_flags & XFP_L2_MALFORMED) != 0 &&
      after.c[XFP_CNT_MALFORMED] == before.c[XFP_CNT_MALFORMED]) {
    ADD_FAILURE() << "user space calls the frame malformed, the kernel did not count it: " << hex(frame);
    return false;
  }
  UnservedCallouts unserved;
  const Decision d = snap.classify(layer, fields, unserved);

  ++t.compared;
  t.blocked += kernel_block;
  t.by_default += d.by_default;
  if (d.filter_id != 0 && is_callout(policy.set.find_id(d.filter_id)->action)) ++t.decided_by_callout;
  const bool user_block = d.action == Action::Block;
  if (user_block == kernel_block && d.by_default == kernel_default) return true;
  ++t.mismatches;
  ADD_FAILURE() << "set " << set_index << ", " << layer_name(layer) << " frame " << hex(frame) << " ("
                << frame.size() << " bytes)\n  fields: " << describe(fields)
                << "\n  kernel: " << (kernel_block ? "block" : "permit") << (kernel_default ? " (default)" : "")
                << "\n  user space: " << action_name(d.action) << (d.by_default ? " (default)" : "")
                << " by filter " << d.filter_id << (d.hard ? " hard" : " soft") << "\n  policy:\n"
                << describe(policy.set) << describe(policy.compiled.layers[static_cast<int>(layer)]);
  return t.mismatches < kMaxReportedMismatches;
}

uint64_t seed_from_env(const char* name) {
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv(name)) seed = std::strtoull(s, nullptr, 0);
  std::printf("seed %llu (%s reproduces a run)\n", static_cast<unsigned long long>(seed), name);
  return seed;
}

// Interfaces a test run can name: lo and, when present, one more.
std::vector<uint32_t> test_ifindexes() {
  std::vector<uint32_t> ifindexes = {1};
  for (const char* name : {"eth0", "ifb0"})
    if (uint32_t i = if_nametoindex(name); i != 0) {
      ifindexes.push_back(i);
      break;
    }
  return ifindexes;
}

TEST_F(AgreementTest, KernelAndUserSpaceGiveTheSameVerdicts) {
  const uint64_t seed = seed_from_env("XFP_AGREEMENT_SEED");
  SCOPED_TRACE("XFP_AGREEMENT_SEED=" + std::to_string(seed));
  std::mt19937 rng(static_cast<std::mt19937::result_type>(seed));

  PolicyGenerator gen(rng, test_ifindexes());
  const auto crafted = crafted_frames();
  Tally t;
  const auto started = std::chrono::steady_clock::now();

  for (int set_index = 0; set_index < kSets && t.mismatches < kMaxReportedMismatches; ++set_index) {
    auto policy = gen.policy();
    while (!policy) {
      ++t.redrawn;
      policy = gen.policy();
    }
    Status installed = datapath_->install(policy->compiled);
    ASSERT_TRUE(installed.ok()) << installed.error().message;
    auto snap = PolicySnapshot::create(policy->set, policy->compiled, datapath_->generation());
    ASSERT_TRUE(snap.ok()) << snap.error().message;

    std::vector<std::vector<uint8_t>> frames = crafted;
    for (int i = 0; i < kRandomFramesPerSet; ++i) frames.push_back(random_frame(rng));
    bool go_on = true;
    for (const auto& frame : frames) {
      for (Layer layer : {Layer::Inbound, Layer::Outbound}) {
        go_on = compare_one(*datapath_, *policy, **snap, frame, layer, gen.ifindex(), set_index, false, t);
        if (!go_on) break;
      }
      if (!go_on) break;
    }
    if (!go_on) break;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("agreement: %llu verdicts compared (%llu block, %llu by default, %llu decided by a callout's fail "
              "action), %llu skb runs refused, %llu sets redrawn, %.2f s\n",
              static_cast<unsigned long long>(t.compared), static_cast<unsigned long long>(t.blocked),
              static_cast<unsigned long long>(t.by_default), static_cast<unsigned long long>(t.decided_by_callout),
              static_cast<unsigned long long>(t.tc_refused), static_cast<unsigned long long>(t.redrawn), seconds);
  EXPECT_EQ(t.mismatches, 0);
  // Not vacuous: both verdicts, filters and defaults, callouts all decide.
  if (t.mismatches == 0) {
    EXPECT_GT(t.blocked, t.compared / 10);
    EXPECT_LT(t.blocked, t.compared * 9 / 10);
    EXPECT_GT(t.by_default, t.compared / 20);
    EXPECT_LT(t.by_default, t.compared * 9 / 10);
    EXPECT_GT(t.decided_by_callout, t.compared / 50);
  }
}

// ---- the BPF fuzz test ---------------------------------------------------------
// Mutated frames: the parser's hostile inputs. Each frame of a corpus (the
// crafted and random frames above, and the mutants found so far) is mutated
// one to four times by byte-level operators (bit flips, interesting bytes at
// the tag and EtherType offsets, tag insertion up to six deep, truncation,
// giant frames padded with garbage, IPv4/IPv6 headers of garbage, wholly
// random bytes) and checked as above. A mutant that made the kernel take a
// verdict not seen before for its set joins the corpus (a cheap stand-in for
// coverage). Runs XFP_BPF_FUZZ_SECONDS (default 6) seconds.
std::vector<uint8_t> mutate(std::mt19937& rng, std::vector<uint8_t> f) {
  static const uint8_t kInteresting[] = {0x00, 0xff, 0x81, 0x88, 0xa8, 0x91, 0x08, 0x06, 0x86, 0xdd, 0x05, 0xdc,
                                         0x06, 0x00, 0x45, 0x4f, 0x60, 0x01, 0x0f, 0xfe};
  static const uint16_t kTpids[] = {0x8100, 0x88a8, 0x9100};
  const unsigned rounds = 1 + rng() % 4;
  for (unsigned r = 0; r < rounds; ++r) {
    switch (rng() % 9) {
      case 0:  // bit flips
        for (unsigned i = 0, n = 1 + rng() % 8; i < n && !f.empty(); ++i) f[rng() % f.size()] ^= 1u << (rng() % 8);
        break;
      case 1: {  // an interesting byte, mostly in the header
        if (f.empty()) break;
        const size_t at = chance(rng, 70) ? 12 + rng() % 24 : rng() % f.size();
        if (at < f.size()) f[at] = kInteresting[rng() % std::size(kInteresting)];
        break;
      }
      case 2: {  // a tag after the MACs (or after the tags already there)
        if (f.size() < 12) break;
        const uint16_t tpid = kTpids[rng() % std::size(kTpids)];
        const uint16_t tci = static_cast<uint16_t>(rng());
        const size_t at = 12 + 4 * (rng() % 3);
        if (at > f.size()) break;
        const uint8_t tag[4] = {static_cast<uint8_t>(tpid >> 8), static_cast<uint8_t>(tpid),
                                static_cast<uint8_t>(tci >> 8), static_cast<uint8_t>(tci)};
        f.insert(f.begin() + static_cast<long>(at), tag, tag + 4);
        break;
      }
      case 3:  // truncation (XDP test runs need the 14 bytes of an Ethernet header)
        if (f.size() > 14) f.resize(14 + rng() % (f.size() - 14));
        break;
      case 4: {  // giant: up to the test run's limit and a little beyond
        const size_t to = kLargestTestRunFrame - 64 + rng() % 128;
        while (f.size() < to) f.push_back(static_cast<uint8_t>(rng()));
        break;
      }
      case 5: {  // an IP header of garbage behind an IP EtherType
        if (f.size() < 14) break;
        const bool v6 = chance(rng, 50);
        f.resize(14);
        f[12] = v6 ? 0x86 : 0x08;
        f[13] = v6 ? 0xdd : 0x00;
        for (unsigned i = 0, n = rng() % 60; i < n; ++i) f.push_back(static_cast<uint8_t>(rng()));
        if (f.size() > 14) f[14] = static_cast<uint8_t>((v6 ? 0x60 : 0x40) | (rng() & 0x0f));
        break;
      }
      case 6: {  // wholly random
        f.resize(14 + rng() % 200);
        for (auto& b : f) b = static_cast<uint8_t>(rng());
        break;
      }
      case 7:  // a block of bytes removed
        if (f.size() > 16) {
          const size_t at = rng() % (f.size() - 2), n = 1 + rng() % std::min<size_t>(8, f.size() - at - 1);
          f.erase(f.begin() + static_cast<long>(at), f.begin() + static_cast<long>(at + n));
        }
        break;
      default:  // a random byte anywhere
        if (!f.empty()) f[rng() % f.size()] = static_cast<uint8_t>(rng());
        break;
    }
  }
  if (f.size() < 14) f.resize(14, 0);
  return f;
}

TEST_F(AgreementTest, FuzzedFramesGetOnlyVerdictsThePolicyAllows) {
  const uint64_t seed = seed_from_env("XFP_BPF_FUZZ_SEED");
  SCOPED_TRACE("XFP_BPF_FUZZ_SEED=" + std::to_string(seed));
  std::mt19937 rng(static_cast<std::mt19937::result_type>(seed));
  double budget = 6;
  if (const char* s = std::getenv("XFP_BPF_FUZZ_SECONDS")) budget = std::strtod(s, nullptr);

  PolicyGenerator gen(rng, test_ifindexes());
  std::vector<std::vector<uint8_t>> corpus = crafted_frames();
  for (int i = 0; i < 64; ++i) corpus.push_back(random_frame(rng));
  Tally t;
  uint64_t executions = 0, sets = 0, corpus_added = 0;
  const auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };

  while (elapsed() < budget && t.mismatches == 0) {
    auto policy = gen.policy();
    if (!policy) continue;
    Status installed = datapath_->install(policy->compiled);
    ASSERT_TRUE(installed.ok()) << installed.error().message;
    auto snap = PolicySnapshot::create(policy->set, policy->compiled, datapath_->generation());
    ASSERT_TRUE(snap.ok()) << snap.error().message;
    ++sets;
    bool seen_block = false, seen_permit = false;
    for (int i = 0; i < 500; ++i) {
      std::vector<uint8_t> frame = mutate(rng, corpus[rng() % corpus.size()]);
      const uint64_t blocked_before = t.blocked;
      const uint64_t compared_before = t.compared;
      bool go_on = true;
      for (Layer layer : {Layer::Inbound, Layer::Outbound}) {
        ++executions;
        go_on = compare_one(*datapath_, *policy, **snap, frame, layer, gen.ifindex(), static_cast<int>(sets), true, t);
        if (!go_on) break;
      }
      ASSERT_TRUE(go_on);
      if (t.compared == compared_before) continue;
      const bool blocked = t.blocked != blocked_before;
      if ((blocked && !seen_block) || (!blocked && !seen_permit)) {
        if (corpus.size() < 4096) {
          corpus.push_back(std::move(frame));
          ++corpus_added;
        }
      }
      seen_block |= blocked;
      seen_permit |= !blocked;
    }
  }
  std::printf("bpf fuzz: %llu program runs on %llu sets in %.1f s, %llu verdicts compared (%llu block), "
              "%llu XDP runs skipped (multi-buffer), %llu skb runs refused (size or skb rules), corpus %zu (+%llu), 0 findings\n",
              static_cast<unsigned long long>(executions), static_cast<unsigned long long>(sets), elapsed(),
              static_cast<unsigned long long>(t.compared), static_cast<unsigned long long>(t.blocked),
              static_cast<unsigned long long>(t.xdp_refused), static_cast<unsigned long long>(t.tc_refused),
              corpus.size(), static_cast<unsigned long long>(corpus_added));
  EXPECT_EQ(t.mismatches, 0);
  EXPECT_GT(t.compared, 1000u) << "the fuzz run compared too few verdicts to mean anything";
  EXPECT_GT(t.blocked, 0u);
  EXPECT_LT(t.blocked, t.compared);
}

}  // namespace
}  // namespace xfp
