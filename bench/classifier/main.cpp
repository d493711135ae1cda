// xfp-bench-classifier: what one frame costs in the inbound classifier as
// the filter set grows. For each size N it builds N filters of mixed shapes,
// compiles and installs them into a freshly loaded fast path, then times the
// XDP program with BPF_PROG_TEST_RUN (repeat R, the kernel's average ns per
// run) on a mix of 64-byte frames that hit and miss. Each frame is timed on
// every size back to back, in slices of the repeat count interleaved across
// the sizes, so that drift on a shared machine hits every size alike and a
// slow spell can be seen and set aside (the least disturbed slice counts).
//
// Figures are reported, not asserted: the exit status is 0 whenever the
// measurement itself worked.
#include <linux/bpf.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include <algorithm>
#include <cstring>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bench_common.hpp"
#include "xfp/compiler.hpp"
#include "xfp/datapath.hpp"
#include "xfp/filter.hpp"
#include "xfp/filter_set.hpp"
#include "xfpb_floor.skel.h"

namespace {

using xfpbench::FrameSpec;
using xfpbench::Payload;
using xfpbench::Rng;

// ---- the filter mix --------------------------------------------------------
// Filter i has shape i % 8 and is instance i / 8 of it. Instance 0 of each
// shape is "planted": fixed values that some of the test frames match.
// Every other instance draws random values that the test frames do not
// match (except by the occasional VLAN range overlap), so hits and misses
// stay the same at every size.
enum Shape : unsigned {
  kExactMac,       // remote-mac eq
  kOui,            // remote-mac prefix /24
  kEtherType,      // ethertype eq
  kVlanEq,         // vlan eq
  kVlanRange,      // vlan range
  kEtherTypeMac,   // ethertype eq + remote-mac eq
  kFrameLenRange,  // frame-length range
  kL2FlagsAny,     // l2-flags any-set
  kShapes,
};
const char* const kShapeNames[kShapes] = {"remote-mac eq",   "remote-mac /24",       "ethertype eq",
                                          "vlan eq",         "vlan range",           "ethertype+remote-mac",
                                          "frame-length range", "l2-flags any-set"};

constexpr uint64_t kPlantedMac = 0x025e10000001ull;       // shape 0
constexpr uint64_t kPlantedOui = 0x025e11000000ull;       // shape 1: 02:5e:11/24
constexpr uint16_t kPlantedEtherType = 0x0806;            // shape 2: ARP, permit
constexpr uint16_t kPlantedVlan = 100;                    // shape 3
constexpr uint16_t kPlantedVlanLo = 1000, kPlantedVlanHi = 1100;  // shape 4
constexpr uint64_t kPlantedEtMac = 0x025e12000001ull;     // shape 5 (with IPv4)
constexpr uint16_t kPlantedLenLo = 65, kPlantedLenHi = 127;  // shape 6: no 64-byte frame
constexpr uint64_t kLocalMac = 0x025e01000002ull;         // destination of the test frames
constexpr uint64_t kMissMac = 0x025e7f000009ull;          // in no filter

const char* const kSublayers[] = {xfp::kDefaultSublayer, "bench-mid", "bench-high"};

xfp::Condition cond(xfp::Field f, xfp::Match m, uint64_t v, uint64_t hi = 0, uint64_t mask = ~0ull) {
  xfp::Condition c;
  c.field = f;
  c.match = m;
  c.value = v;
  c.value_hi = hi;
  c.mask = mask;
  return c;
}

bool is_frame_ethertype(uint64_t et) {
  return et == 0x0800 || et == 0x0806 || et == 0x8100 || et == 0x88a8 || et == 0x9100 || et == 0x86dd;
}

xfp::Filter make_filter(size_t i, Rng& rng) {
  using xfp::Field;
  using xfp::Match;
  const unsigned shape = static_cast<unsigned>(i % kShapes);
  const bool planted = i < kShapes;
  xfp::Filter f;
  f.layer = xfp::Layer::Inbound;
  f.name = fmt::format("bench-{}", i);
  f.sublayer = kSublayers[rng.below(3)];
  f.weight = rng.below(1001);
  f.action = rng.below(5) == 0 ? xfp::Action::Permit : xfp::Action::Block;
  if (rng.below(10) == 0) f.flags |= XFP_FILTER_CLEAR_ACTION_RIGHT;
  const uint64_t mac48 = 0xffffffffffffull;
  switch (shape) {
    case kExactMac: {
      uint64_t mac = planted ? kPlantedMac : (0x02ull << 40) | ((0x20 + rng.below(0x50)) << 32) | rng.below(1ull << 32);
      f.conditions.push_back(cond(Field::RemoteMac, Match::Equal, mac));
      if (planted) f.action = xfp::Action::Block;
      break;
    }
    case kOui: {
      uint64_t oui = planted ? kPlantedOui : (0x02ull << 40) | ((0x80 + rng.below(0x80)) << 32) | (rng.below(256) << 24);
      f.conditions.push_back(cond(Field::RemoteMac, Match::Prefix, oui, 0, 0xffffff000000ull));
      if (planted) f.action = xfp::Action::Block;
      break;
    }
    case kEtherType: {
      uint64_t et = kPlantedEtherType;
      if (!planted) do et = rng.between(0x0600, 0xffff); while (is_frame_ethertype(et));
      f.conditions.push_back(cond(Field::EtherType, Match::Equal, et));
      if (planted) f.action = xfp::Action::Permit;
      break;
    }
    case kVlanEq: {
      uint64_t vid = kPlantedVlan;
      if (!planted) do vid = rng.between(1, 4094); while (vid == kPlantedVlan || (vid >= kPlantedVlanLo && vid <= kPlantedVlanHi));
      f.conditions.push_back(cond(Field::Vlan, Match::Equal, vid));
      if (planted) f.action = xfp::Action::Block;
      break;
    }
    case kVlanRange: {
      uint64_t lo = kPlantedVlanLo, hi = kPlantedVlanHi;
      if (!planted) {
        lo = rng.between(1, 4000);
        hi = lo + rng.below(64);
      }
      f.conditions.push_back(cond(Field::Vlan, Match::Range, lo, hi));
      if (planted) f.action = xfp::Action::Block;
      break;
    }
    case kEtherTypeMac: {
      static const uint16_t kTypes[] = {0x0800, 0x86dd, 0x0806, 0x88cc};
      uint64_t et = planted ? 0x0800 : kTypes[rng.below(4)];
      uint64_t mac = planted ? kPlantedEtMac : (0x02ull << 40) | ((0x30 + rng.below(0x10)) << 32) | rng.below(1ull << 32);
      f.conditions.push_back(cond(Field::EtherType, Match::Equal, et));
      f.conditions.push_back(cond(Field::RemoteMac, Match::Equal, mac & mac48));
      if (planted) f.action = xfp::Action::Block;
      break;
    }
    case kFrameLenRange: {
      uint64_t lo = kPlantedLenLo, hi = kPlantedLenHi;
      if (!planted) {
        lo = rng.between(128, 1500);
        hi = lo + rng.below(256);
      }
      f.conditions.push_back(cond(Field::FrameLength, Match::Range, lo, hi));
      break;
    }
    case kL2FlagsAny: {
      static const uint64_t kBits[] = {XFP_L2_MALFORMED, XFP_L2_VLAN_TAGGED, XFP_L2_QINQ,
                                       XFP_L2_LLC,       XFP_L2_IP_FRAGMENT, XFP_L2_TAG_STACK_DEEP};
      uint64_t flags = XFP_L2_VLAN_TAGGED | XFP_L2_QINQ;
      if (!planted) {
        // Random non-empty subset without VLAN_TAGGED, so that only the
        // planted filter matches the tagged test frames.
        do {
          flags = 0;
          for (uint64_t b : kBits)
            if (b != XFP_L2_VLAN_TAGGED && rng.below(3) == 0) flags |= b;
        } while (flags == 0);
      }
      f.conditions.push_back(cond(Field::L2Flags, Match::FlagsAnySet, flags));
      if (planted) f.action = xfp::Action::Permit;
      break;
    }
    default:
      break;
  }
  return f;
}

// ---- the frame mix -------------------------------------------------------
struct TestFrame {
  std::string name;
  std::string expect;  // the planted filters it matches (from 8 filters on)
  std::vector<uint8_t> bytes;
};

std::vector<TestFrame> make_frames() {
  auto ipv4 = [](uint64_t src, std::optional<uint16_t> vlan = std::nullopt) {
    FrameSpec s;
    s.dst = kLocalMac;
    s.src = src;
    s.vlan = vlan;
    return xfpbench::build_frame(s);
  };
  FrameSpec arp;
  arp.dst = 0xffffffffffffull;
  arp.src = kMissMac;
  arp.payload = Payload::Arp;
  return {
      {"ipv4 remote-mac hit", "remote-mac eq (block)", ipv4(kPlantedMac)},
      {"ipv4 OUI hit", "remote-mac /24 (block)", ipv4(kPlantedOui | 0xabcdef)},
      {"ipv4 ethertype+mac hit", "ethertype+remote-mac (block)", ipv4(kPlantedEtMac)},
      {"ipv4 miss", "none (default permit)", ipv4(kMissMac)},
      {"vlan 100 hit", "vlan eq (block), l2-flags any-set (permit)", ipv4(kMissMac, kPlantedVlan)},
      {"vlan 1050 hit", "vlan range (block), l2-flags any-set (permit)", ipv4(kMissMac, 1050)},
      {"arp broadcast hit", "ethertype eq (permit)", xfpbench::build_frame(arp)},
  };
}

// ---- one installed configuration -----------------------------------------
struct Config {
  std::string label;
  bool baseline = false;  // the tuples-only row
  size_t filters = 0;
  size_t entries = 0;  // inbound layer
  long direct = -1;    // filters in direct tables (-1: compiler without them)
  size_t tuples = 0;
  size_t groups = 0;   // probes: groups of tuples (tuple_groups.hpp)
  bool one_probe = false;  // one group and nothing else: rows decide alone (xfp_set_header.one_probe)
  std::map<std::string, size_t> tuples_by_fields;
  double build_ms = 0, compile_ms = 0, install_ms = 0, reinstall_ms = 0;
  std::unique_ptr<xfp::Datapath> dp;
  std::vector<double> mix_ns;                 // per run: mean over the frames of each one's fastest slice
  std::vector<double> mix_mean_ns;            // per run: the same with each frame's mean over its slices
  std::vector<std::vector<double>> frame_ns;  // [frame][run]: the fastest slice
  std::vector<uint32_t> verdict;              // [frame] XDP return code
};

// Filters that the compiler served from direct (per-value) tables instead
// of tuple space, when the compiler has them; -1 when it does not.
template <typename L>
auto direct_filters_of(const L& l, int) -> decltype(static_cast<long>(l.direct_filters)) {
  return static_cast<long>(l.direct_filters);
}
template <typename L>
long direct_filters_of(const L&, long) {
  return -1;
}

double ms_since(uint64_t t0) { return static_cast<double>(xfpbench::now_ns() - t0) / 1e6; }

const char* xdp_name(uint32_t rc) {
  switch (rc) {
    case XDP_ABORTED: return "aborted";
    case XDP_DROP: return "drop";
    case XDP_PASS: return "pass";
    case XDP_TX: return "tx";
    case XDP_REDIRECT: return "redirect";
    default: return "?";
  }
}

// Average ns per run of the XDP program on one frame (kernel-timed).
xfp::Result<std::pair<double, uint32_t>> time_frame(int prog_fd, const std::vector<uint8_t>& frame,
                                                    int repeat) {
  const xfpbench::TestRun t = xfpbench::test_run(prog_fd, frame, repeat);
  if (t.err) return xfp::errno_error("BPF_PROG_TEST_RUN", -t.err);
  return std::make_pair(t.ns, t.retval);
}

xfp::Status install_timed(Config& c, const xfp::CompiledSet& set, const xfp::DatapathOptions& dopts) {
  auto dp = xfp::Datapath::open(dopts);
  if (!dp) return std::move(dp).error().context("loading the fast path");
  c.dp = std::move(*dp);
  uint64_t t0 = xfpbench::now_ns();
  XFP_TRY(c.dp->install(set));
  c.install_ms = ms_since(t0);
  t0 = xfpbench::now_ns();
  XFP_TRY(c.dp->install(set));  // replace: the old bank holds the same set
  c.reinstall_ms = ms_since(t0);
  return xfp::Ok{};
}

xfp::Result<xfp::CompiledSet> build_config(Config& c, size_t n, uint64_t seed, const xfp::DatapathOptions& dopts) {
  c.label = fmt::format("{}", n);
  c.filters = n;
  Rng rng(seed);
  uint64_t t0 = xfpbench::now_ns();
  xfp::FilterSet set;
  XFP_TRY(set.add_sublayer(xfp::Sublayer{"bench-mid", 100}));
  XFP_TRY(set.add_sublayer(xfp::Sublayer{"bench-high", 200}));
  for (size_t i = 0; i < n; ++i) {
    auto id = set.add_filter(make_filter(i, rng));
    if (!id) return std::move(id).error().context(fmt::format("adding filter {}", i));
  }
  c.build_ms = ms_since(t0);
  t0 = xfpbench::now_ns();
  xfp::CompileLimits limits;
  limits.max_entries = dopts.set_capacity();
  auto compiled = xfp::compile(set, limits);
  if (!compiled) return std::move(compiled).error().context(fmt::format("compiling {} filters", n));
  c.compile_ms = ms_since(t0);
  c.entries = compiled->layers[XFP_LAYER_INBOUND].entries.size();
  c.tuples = compiled->layers[XFP_LAYER_INBOUND].tuples.size();
  c.groups = compiled->layers[XFP_LAYER_INBOUND].grouping.groups.size();
  c.direct = direct_filters_of(compiled->layers[XFP_LAYER_INBOUND], 0);
  c.one_probe = xfp::one_probe(compiled->layers[XFP_LAYER_INBOUND]);
  XFP_TRY(install_timed(c, *compiled, dopts));
  return std::move(*compiled);
}

// A tuple's mask in words: the fields it looks at and how many bits of each
// ("remote-mac/48 ethertype/16", "vlan/9", "l2-flags=0x2").
std::string describe_mask(const xfp_fields& m) {
  std::string out;
  auto add = [&](const char* name, uint64_t mask, bool flags = false) {
    if (!mask) return;
    if (!out.empty()) out += ' ';
    if (flags)
      out += fmt::format("{}=0x{:x}", name, mask);
    else
      out += fmt::format("{}/{}", name, __builtin_popcountll(mask));
  };
  auto mac = [](const uint8_t* b) {
    uint64_t v = 0;
    for (int i = 0; i < 6; ++i) v = (v << 8) | b[i];
    return v;
  };
  add("ifindex", m.ifindex);
  add("compartment", m.compartment);
  add("local-mac", mac(m.local_mac));
  add("remote-mac", mac(m.remote_mac));
  add("iface-mac", mac(m.iface_mac));
  add("ethertype", m.ethertype);
  add("vlan", m.vlan);
  add("inner-vlan", m.inner_vlan);
  add("frame-length", m.frame_len);
  add("l2-flags", m.l2_flags, true);
  add("local-addr-type", m.local_addr_type, true);
  add("remote-addr-type", m.remote_addr_type, true);
  return out.empty() ? "(any)" : out;
}

// The same tuples as `full`, one entry each: what the classifier costs with
// the same condition shapes but (almost) no filters. The groups and pruning
// masks stay `full`'s, so the kernel probes the same way.
xfp::CompiledSet tuples_only(const xfp::CompiledSet& full) {
  xfp::CompiledSet out = full;
  auto& layer = out.layers[XFP_LAYER_INBOUND];
  std::vector<xfp::CompiledEntry> kept;
  std::vector<bool> seen(layer.tuples.size(), false);
  for (const auto& e : layer.entries) {
    if (e.key.tuple < seen.size() && !seen[e.key.tuple]) {
      seen[e.key.tuple] = true;
      kept.push_back(e);
    }
  }
  layer.entries = std::move(kept);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<size_t> sizes = {1, kShapes, 100, 10000, 100000};
  int repeat = 1000000;
  int runs = 5;
  int slices = 10;
  uint64_t seed = 1;
  bool baseline = true;
  bool per_frame = false;
  bool show_tuples = false;
  double target_ratio = 1.5;
  double install_target_s = 2.0;
  uint32_t max_entries = 1u << 18;
  std::string json_path;

  CLI::App app{
      "xfp-bench-classifier: ns per frame of xfp's inbound (XDP) classifier via BPF_PROG_TEST_RUN,\n"
      "for filter sets of mixed shapes (remote-mac eq and /24, ethertype eq, vlan eq and range,\n"
      "ethertype+remote-mac, frame-length range, l2-flags any-set; three sublayers, varied weights).\n"
      "Each size gets its own freshly loaded fast path; compile and install are timed; the frame mix\n"
      "(64-byte IPv4 hits and misses, 802.1Q-tagged, ARP broadcast) is timed with the kernel's\n"
      "repeat loop, each frame on every size back to back, in --slices slices of the repeat count\n"
      "interleaved across the sizes; a frame's figure in a run is its fastest slice (host noise only\n"
      "ever adds time). Reports min and median ns/frame over the runs, the ratio to the first size\n"
      "(target: the median of the runs' paired ratios, largest <= 1.5x; the same ratio from each\n"
      "frame's mean over its slices is printed beside it)\n"
      "and install time (target < 2 s for 100,000 filters). Needs root (loads BPF). Exit status 0\n"
      "unless the measurement failed."};
  app.add_option("-n,--sizes", sizes,
                 "filter counts to measure; the first is the reference of the ratios; 8 = one filter of each shape")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("-r,--repeat", repeat, "BPF_PROG_TEST_RUN repeat count per frame and run")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  app.add_option("--runs", runs, "runs per size (min and median are over these)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--slices", slices,
                 "slices each frame's repeat count is cut into per run and size, interleaved across the sizes; "
                 "the fastest counts (1 = one whole repeat, no slicing)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--seed", seed, "seed of the filter generator")->capture_default_str();
  app.add_option("--max-entries", max_entries, "rows of the kernel's entry table, both banks (the daemon's --max-entries)")
      ->capture_default_str();
  app.add_flag("!--no-baseline", baseline,
               "skip the tuples-only baseline (the largest set's tuples, one entry each)");
  app.add_flag("--per-frame", per_frame, "print the ns/frame and verdict of every test frame");
  app.add_flag("--tuples", show_tuples, "print the condition shape (mask) of every tuple of every size");
  app.add_option("--target-ratio", target_ratio,
                 "PASS when the median over runs of largest/first (each run's pair timed back to back) <= this")
      ->capture_default_str();
  app.add_option("--install-target", install_target_s, "PASS when installing 100,000 filters takes less (s)")
      ->capture_default_str();
  app.add_option("--json", json_path, "also write the results as JSON to this file ('-' = stdout)");
  CLI11_PARSE(app, argc, argv);

  if (sizes.empty()) {
    fprintf(stderr, "xfp-bench-classifier: --sizes is empty\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  if (geteuid() != 0) fprintf(stderr, "xfp-bench-classifier: warning: not root; loading BPF will probably fail\n");
  const bool json_stdout = json_path == "-";
  FILE* out = json_stdout ? stderr : stdout;  // keep stdout clean for JSON

  const auto machine = xfpbench::machine_facts();
  const std::string command = xfpbench::reproduce_command(argc, argv);
  fprintf(out, "xfp-bench-classifier\n  machine: %s\n  command: %s\n", xfpbench::describe(machine).c_str(),
          command.c_str());
  if (slices > repeat) slices = repeat;
  const int slice_repeat = repeat / slices;
  fprintf(out, "  method: BPF_PROG_TEST_RUN on the XDP program, repeat %d in %d slices of %d, %d runs; in each run "
               "every frame is timed on every size back to back, slice by slice; ns/frame = mean over the frame "
               "mix of each frame's fastest slice (the kernel's average ns per run)\n",
          slice_repeat * slices, slices, slice_repeat, runs);
  fprintf(out, "  shapes: ");
  for (unsigned s = 0; s < kShapes; ++s) fprintf(out, "%s%s", s ? ", " : "", kShapeNames[s]);
  fprintf(out, " (filter i has shape i %% %u)\n\n", kShapes);

  xfp::DatapathOptions dopts;
  dopts.max_entries = max_entries;
  std::vector<Config> configs;
  configs.reserve(sizes.size() + 1);
  xfp::CompiledSet largest;
  size_t largest_n = 0;
  for (size_t n : sizes) {
    fprintf(out, "building %zu filters...", n);
    fflush(out);
    Config c;
    auto compiled = build_config(c, n, seed, dopts);
    if (!compiled) {
      fprintf(out, "\nxfp-bench-classifier: %s\n", compiled.error().message.c_str());
      return 1;
    }
    fprintf(out, " build %.1f ms, compile %.1f ms, install %.1f ms, %zu entries, %zu tuples in %zu probe groups%s\n",
            c.build_ms, c.compile_ms, c.install_ms, c.entries, c.tuples, c.groups,
            c.direct < 0 ? "" : fmt::format(", {} filters in direct tables", c.direct).c_str());
    {
      // Tuples per combination of fields (prefix lengths and flag bits aside).
      std::map<std::string, size_t> by_fields;
      for (const auto& t : compiled->layers[XFP_LAYER_INBOUND].tuples) {
        std::string d = describe_mask(t.mask), fields;
        for (size_t p = 0; p < d.size();) {
          size_t end = d.find(' ', p);
          std::string w = d.substr(p, end == std::string::npos ? std::string::npos : end - p);
          w = w.substr(0, w.find_first_of("/="));
          fields += (fields.empty() ? "" : "+") + w;
          if (end == std::string::npos) break;
          p = end + 1;
        }
        ++by_fields[fields];
        if (show_tuples) fprintf(out, "    tuple %s\n", d.c_str());
      }
      fprintf(out, "    tuples by fields:");
      for (const auto& [k, v] : by_fields) fprintf(out, " %s %zu;", k.c_str(), v);
      fprintf(out, "\n");
      c.tuples_by_fields = by_fields;
    }
    if (n >= largest_n) {
      largest_n = n;
      largest = std::move(*compiled);
    }
    configs.push_back(std::move(c));
  }
  if (baseline && largest_n > 1) {
    Config c;
    c.baseline = true;
    c.label = fmt::format("tuples({})", largest_n);
    xfp::CompiledSet set = tuples_only(largest);
    c.filters = 0;
    c.entries = set.layers[XFP_LAYER_INBOUND].entries.size();
    c.tuples = set.layers[XFP_LAYER_INBOUND].tuples.size();
    c.groups = set.layers[XFP_LAYER_INBOUND].grouping.groups.size();
    c.direct = direct_filters_of(set.layers[XFP_LAYER_INBOUND], 0);
    auto st = install_timed(c, set, dopts);
    if (!st) {
      fprintf(out, "xfp-bench-classifier: tuples-only baseline: %s\n", st.error().message.c_str());
      return 1;
    }
    configs.push_back(std::move(c));
  }
  largest = xfp::CompiledSet{};  // free the memory before timing

  const auto frames = make_frames();
  for (auto& c : configs) {
    c.frame_ns.assign(frames.size(), {});
    c.verdict.assign(frames.size(), 0);
  }
  // The floor: BPF_PROG_TEST_RUN's own cost with an empty XDP program.
  std::unique_ptr<xfpb_floor, void (*)(xfpb_floor*)> floor_skel(xfpb_floor__open_and_load(), xfpb_floor__destroy);
  if (!floor_skel) {
    fprintf(out, "xfp-bench-classifier: loading the empty XDP program failed: %s\n", strerror(errno));
    return 1;
  }
  std::vector<double> floor_ns;

  fprintf(out, "\ntiming %zu frames x %zu configurations x %d runs...\n", frames.size(), configs.size(), runs);
  // Frame by frame, every configuration back to back (in turn forwards and
  // backwards, so that none is always timed first), and each frame's repeat
  // cut into slices that take turns across the configurations: the sizes a
  // ratio compares are timed within milliseconds of each other. This VM's
  // slow spells (another guest on the host) only ever add time, and they
  // come in bursts of tens to hundreds of ms: a frame's fastest slice is its
  // cost with the fewest of them, on every size alike. The mean over the
  // slices (the whole repeat, as one run of `repeat` would time it) is kept
  // and reported beside it.
  auto fail = [&](const xfp::Error& e) {
    fprintf(out, "xfp-bench-classifier: %s\n", e.message.c_str());
    return 1;
  };
  for (int r = 0; r < runs; ++r) {
    std::vector<double> floor_per;
    std::vector<std::vector<double>> per(configs.size()), per_mean(configs.size());
    for (size_t f = 0; f < frames.size(); ++f) {
      std::vector<double> floor_slices;
      std::vector<std::vector<double>> sliced(configs.size());
      for (int sl = 0; sl < slices; ++sl) {
        auto t = time_frame(bpf_program__fd(floor_skel->progs.xfpb_floor), frames[f].bytes, slice_repeat);
        if (!t) return fail(t.error());
        floor_slices.push_back(t->first);
        for (size_t k = 0; k < configs.size(); ++k) {
          const size_t i = (r + f + sl) % 2 == 0 ? k : configs.size() - 1 - k;
          t = time_frame(configs[i].dp->xdp_prog_fd(), frames[f].bytes, slice_repeat);
          if (!t) return fail(t.error());
          sliced[i].push_back(t->first);
          configs[i].verdict[f] = t->second;
        }
      }
      floor_per.push_back(xfpbench::min_of(floor_slices));
      for (size_t i = 0; i < configs.size(); ++i) {
        configs[i].frame_ns[f].push_back(xfpbench::min_of(sliced[i]));
        per[i].push_back(xfpbench::min_of(sliced[i]));
        per_mean[i].push_back(xfpbench::mean_of(sliced[i]));
      }
    }
    floor_ns.push_back(xfpbench::mean_of(floor_per));
    for (size_t i = 0; i < configs.size(); ++i) {
      configs[i].mix_ns.push_back(xfpbench::mean_of(per[i]));
      configs[i].mix_mean_ns.push_back(xfpbench::mean_of(per_mean[i]));
    }
  }

  // ---- report --------------------------------------------------------------
  const Config& ref = configs.front();
  const double ref_med = xfpbench::median_of(ref.mix_ns);
  const double ref_min = xfpbench::min_of(ref.mix_ns);
  fprintf(out, "\n%-14s %9s %8s %7s %7s %10s %10s %9s %9s %11s %11s\n", "filters", "entries", "tuples", "groups",
          "direct", "ns min", "ns median", "ratio", "ratio min", "compile ms", "install ms");
  nlohmann::json jresults = nlohmann::json::array();
  for (const auto& c : configs) {
    const double med = xfpbench::median_of(c.mix_ns), mn = xfpbench::min_of(c.mix_ns);
    const bool is_base = c.baseline;
    fprintf(out, "%-14s %9zu %8zu %7zu %7s %10.1f %10.1f %8.2fx %8.2fx %11s %11.1f\n", c.label.c_str(), c.entries,
            c.tuples, c.groups, c.direct < 0 ? "-" : std::to_string(c.direct).c_str(), mn, med, med / ref_med, mn / ref_min,
            is_base ? "-" : fmt::format("{:.1f}", c.compile_ms).c_str(), c.install_ms);
    nlohmann::json jf = nlohmann::json::array();
    for (size_t f = 0; f < frames.size(); ++f)
      jf.push_back({{"frame", frames[f].name},
                    {"expect", frames[f].expect},
                    {"verdict", xdp_name(c.verdict[f])},
                    {"ns_min", xfpbench::min_of(c.frame_ns[f])},
                    {"ns_median", xfpbench::median_of(c.frame_ns[f])},
                    {"ns_runs", c.frame_ns[f]}});
    nlohmann::json jr = {{"label", c.label},
                         {"filters", c.filters},
                         {"entries", c.entries},
                         {"direct_filters", c.direct},
                         {"tuples", c.tuples},
                         {"groups", c.groups},
                         {"tuples_by_fields", c.tuples_by_fields},
                         {"ns_per_frame_min", mn},
                         {"ns_per_frame_median", med},
                         {"ns_per_frame_runs", c.mix_ns},
                         {"ns_per_frame_runs_slice_mean", c.mix_mean_ns},
                         {"ratio_median_to_first", med / ref_med},
                         {"ratio_min_to_first", mn / ref_min},
                         {"install_ms", c.install_ms},
                         {"reinstall_ms", c.reinstall_ms},
                         {"frames", jf}};
    if (!is_base) {
      jr["build_ms"] = c.build_ms;
      jr["compile_ms"] = c.compile_ms;
    } else {
      jr["note"] = "tuples of the largest set, one entry per tuple (not compiled; built from its compiled set)";
    }
    jresults.push_back(jr);
  }
  fprintf(out, "%-14s %9s %8s %7s %7s %10.1f %10.1f   (empty XDP program: BPF_PROG_TEST_RUN's own cost)\n", "floor",
          "-", "-", "-", "", xfpbench::min_of(floor_ns), xfpbench::median_of(floor_ns));
  fprintf(out, "(entries and tuples: tuple space of the inbound layer; groups = its hash probes per frame, tuples "
               "probed together (tuple_groups.hpp); direct = filters served by per-value tables; ratio = median / median of %s filter%s; ratio min = min / min; install = first install "
               "into an empty fast path)\n",
          ref.label.c_str(), ref.filters == 1 ? "" : "s");
  fprintf(out, "replace (install the same set again over itself), ms:");
  for (const auto& c : configs) fprintf(out, "  %s: %.1f", c.label.c_str(), c.reinstall_ms);
  fprintf(out, "\n");

  if (per_frame) {
    for (const auto& c : configs) {
      fprintf(out, "\n%s filters: per frame (ns: median over the runs of the fastest slice; verdict)\n", c.label.c_str());
      for (size_t f = 0; f < frames.size(); ++f)
        fprintf(out, "  %-24s %8.1f  %-5s  matches: %s\n", frames[f].name.c_str(),
                xfpbench::median_of(c.frame_ns[f]), xdp_name(c.verdict[f]), frames[f].expect.c_str());
    }
  }

  // Targets: largest size vs the first, and the install time of 100,000.
  const Config* big = nullptr;
  for (const auto& c : configs)
    if (!c.baseline && (!big || c.filters > big->filters)) big = &c;
  const Config* base = configs.back().baseline ? &configs.back() : nullptr;
  nlohmann::json jtargets = nlohmann::json::object();
  fprintf(out, "\n");
  if (big && big != &ref) {
    // Run r of every size is timed frame by frame back to back (the loop
    // above), so the runs' paired ratios cancel the drift between runs,
    // which on a shared machine moves whole runs by 10-20 %: the target is
    // their median.
    auto paired_ratios = [&](const std::vector<double> Config::*ns, std::string* text) {
      std::vector<double> out_ratios;
      for (size_t r = 0; r < std::min((big->*ns).size(), (ref.*ns).size()); ++r) {
        out_ratios.push_back((big->*ns)[r] / (ref.*ns)[r]);
        if (text) *text += fmt::format("{}{:.2f}", r ? " " : "", out_ratios.back());
      }
      return out_ratios;
    };
    std::string paired_text, paired_mean_text;
    const std::vector<double> paired = paired_ratios(&Config::mix_ns, &paired_text);
    const std::vector<double> paired_mean = paired_ratios(&Config::mix_mean_ns, &paired_mean_text);
    const double ratio = xfpbench::median_of(paired);
    const double ratio_mean = xfpbench::median_of(paired_mean);
    const double of_medians = xfpbench::median_of(big->mix_ns) / ref_med;
    const double of_minima = xfpbench::min_of(big->mix_ns) / ref_min;
    const bool pass = ratio <= target_ratio;
    fprintf(out, "target  %zu filters <= %.2fx of %zu: %.2fx  %s   (median of the runs' paired ratios %s; of the "
                 "medians %.2f, of the minima %.2f)\n",
            big->filters, target_ratio, ref.filters, ratio, pass ? "PASS" : "FAIL", paired_text.c_str(), of_medians,
            of_minima);
    fprintf(out, "info    the same from each frame's mean over its slices (the whole repeat): %.2fx   (paired "
                 "ratios %s)\n",
            ratio_mean, paired_mean_text.c_str());
    jtargets["ratio"] = {{"largest", big->filters}, {"reference", ref.filters}, {"target", target_ratio},
                         {"value", ratio}, {"paired_ratios", paired}, {"ratio_of_medians", of_medians},
                         {"ratio_of_minima", of_minima}, {"slice_mean_value", ratio_mean},
                         {"slice_mean_paired_ratios", paired_mean}, {"pass", pass}};
    if (ref.one_probe && !big->one_probe)
      fprintf(out, "info    %zu filter%s: one probe group and nothing else, where a frame's row decides alone; %zu "
                   "filters: the general path (best ranks, arbitration). The ratio compares the two paths "
                   "(docs/ARCHITECTURE.md, \"A row that decides alone\")\n",
              ref.filters, ref.filters == 1 ? "" : "s", big->filters);
    for (const auto& c : configs) {
      if (c.baseline || c.filters != kShapes || &c == &ref || &c == big) continue;
      const double r3 = xfpbench::median_of(big->mix_ns) / xfpbench::median_of(c.mix_ns);
      fprintf(out, "info    %zu filters vs %u (one filter of each shape): %.2fx\n", big->filters, kShapes, r3);
      jtargets["vs_one_per_shape"] = {{"value", r3}, {"reference", kShapes}};
    }
    if (base) {
      const double r2 = xfpbench::median_of(big->mix_ns) / xfpbench::median_of(base->mix_ns);
      fprintf(out, "info    %zu filters vs the same %zu tuples with one entry each: %.2fx (the filter-count "
                   "effect alone; the rest is the condition shapes: %zu tuples in %zu probes%s vs %zu in %zu%s)\n",
              big->filters, base->tuples, r2, big->tuples, big->groups, big->direct > 0 ? " + direct tables" : "",
              ref.tuples, ref.groups, ref.direct > 0 ? " + direct tables" : "");
      jtargets["filter_count_effect"] = {{"value", r2}, {"tuples", base->tuples}};
    }
  }
  for (const auto& c : configs) {
    if (c.filters != 100000) continue;
    const bool pass = c.install_ms < install_target_s * 1000.0;
    fprintf(out, "target  install 100000 filters < %.1f s: %.3f s (compile %.3f s, compile+install %.3f s)  %s\n",
            install_target_s, c.install_ms / 1000.0, c.compile_ms / 1000.0, (c.compile_ms + c.install_ms) / 1000.0,
            pass ? "PASS" : "FAIL");
    jtargets["install_100k"] = {{"target_s", install_target_s}, {"install_s", c.install_ms / 1000.0},
                                {"compile_s", c.compile_ms / 1000.0}, {"replace_s", c.reinstall_ms / 1000.0},
                                {"pass", pass}};
  }

  if (!json_path.empty()) {
    nlohmann::json j = {{"bench", "xfp-bench-classifier"},
                        {"machine", to_json(machine)},
                        {"command", command},
                        {"method", {{"repeat", slice_repeat * slices}, {"slices", slices}, {"runs", runs}, {"seed", seed},
                                    {"frame_bytes", 64}, {"frame_figure", "fastest slice"}}},
                        {"results", jresults},
                        {"floor_ns_per_frame", {{"min", xfpbench::min_of(floor_ns)},
                                                {"median", xfpbench::median_of(floor_ns)},
                                                {"runs", floor_ns}}},
                        {"targets", jtargets}};
    if (!xfpbench::write_json(json_path, j)) {
      fprintf(stderr, "xfp-bench-classifier: cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  return 0;
}
