// The sample callout plugins (plugins/), loaded through the real CalloutHost
// and fed synthetic frames, checked the way a user would check them: the pcap
// file read back with libpcap, the allow-list's verdicts and log lines, the
// exact bytes the VLAN rewrite injects (through a fake InjectionService that
// records injected frames and runs their completions when the test says so).
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/time.h>
#include <unistd.h>

#include "support/frame_builder.hpp"
#include "xfp/callout.h"
#include "xfp/callout_host.hpp"
#include "xfp/frame.hpp"
#include "xfp/frame_parse.h"
#include "xfp/injection_service.hpp"
#include "xfp/port_client.h"
#include "xfp/port_service_impl.hpp"
#include "xfp/sample_mac_approval.h"

namespace xfp {
namespace {

using test::FrameBuilder;
using test::Mac;
using Bytes = std::vector<uint8_t>;

// ---- where the plugins are ----------------------------------------------------------

std::string plugin_path(const std::string& name) {
#if defined(XFP_SAMPLE_PLUGIN_PCAP_CAPTURE) && defined(XFP_SAMPLE_PLUGIN_MAC_ALLOWLIST) && \
    defined(XFP_SAMPLE_PLUGIN_VLAN_REWRITE)
  // Set by plugins/CMakeLists.txt.
  if (name == "pcap_capture") return XFP_SAMPLE_PLUGIN_PCAP_CAPTURE;
  if (name == "mac_allowlist") return XFP_SAMPLE_PLUGIN_MAC_ALLOWLIST;
  if (name == "vlan_rewrite") return XFP_SAMPLE_PLUGIN_VLAN_REWRITE;
#endif
  const char* dir = std::getenv("XFP_BUILD_DIR");
  return std::string(dir ? dir : ".") + "/plugins/libxfp_" + name + ".so";
}

// ---- log lines ----------------------------------------------------------------------

// Captures what the process logs (plugins log through the host into spdlog)
// while it exists, at every level.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(4096)) {
    previous_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>("sample-plugins-test", sink_);
    logger->set_level(spdlog::level::trace);
    sink_->set_pattern("%l %v");
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }

  std::vector<std::string> lines() const { return sink_->last_formatted(); }
  // Lines that contain every one of `parts`.
  size_t count(std::initializer_list<std::string> parts) const {
    auto all = lines();
    return std::count_if(all.begin(), all.end(), [&](const std::string& l) {
      return std::all_of(parts.begin(), parts.end(), [&](const std::string& p) { return l.find(p) != std::string::npos; });
    });
  }
  std::string dump() const {
    std::string out;
    for (const auto& l : lines()) out += l + "\n";
    return out;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

// ---- frames and classify calls ------------------------------------------------------

xfp_frame* make_frame(const Bytes& bytes) {
  xfp_frame* f = frame_alloc(static_cast<uint32_t>(bytes.size()));
  EXPECT_NE(f, nullptr);
  std::memcpy(frame_data(f), bytes.data(), bytes.size());
  return f;
}

Bytes bytes_of(xfp_frame* f) { return Bytes(frame_data(f), frame_data(f) + frame_len(f)); }

// What a classify call hands a callout, for one frame.
struct Punted {
  xfp_frame* frame = nullptr;
  xfp_fields fields{};
  xfp_metadata meta{};
};

// One classify call on `frames` (a batch when more than one, chained as the
// workers chain them). Frames the callout did not absorb are freed; the
// items are returned with the callout's answers.
std::vector<xfp_classify_item> classify(CalloutHost& host, const Filter& filter, const std::vector<Bytes>& frames,
                                        uint32_t iface = 7, xfp_frame* prebuilt = nullptr) {
  std::vector<Punted> punted(frames.size());
  std::vector<xfp_classify_item> items(frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    Punted& p = punted[i];
    p.frame = prebuilt && i == 0 ? prebuilt : make_frame(frames[i]);
    p.fields.ifindex = 3;
    xfp_parse_frame(frame_data(p.frame), frame_data(p.frame) + frame_len(p.frame), frame_len(p.frame),
                    static_cast<uint8_t>(filter.layer), &p.fields);
    p.meta.layer = static_cast<uint8_t>(filter.layer);
    p.meta.ifindex = 3;
    p.meta.iface = iface;
    p.meta.frame_len = frame_len(p.frame);
    p.meta.filter_id = filter.id;
    items[i].frame = p.frame;
    items[i].fields = &p.fields;
    items[i].meta = &p.meta;
    items[i].action_right = 1;
    items[i].action = XFP_ACTION_CONTINUE;
    if (i > 0) frame_set_next(punted[i - 1].frame, p.frame);
  }
  CalloutRef callout = host.acquire(host.id_of(filter.callout));
  EXPECT_TRUE(callout) << filter.callout << " is not served";
  if (callout) {
    xfp_filter_info info = to_filter_info(filter);
    callout.classify(&info, items.data(), static_cast<uint32_t>(items.size()));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (!(items[i].flags & XFP_CLASSIFY_ABSORB)) {
      frame_set_next(punted[i].frame, nullptr);
      frame_free(punted[i].frame);
    }
    items[i].frame = nullptr;  // no longer the test's to look at
    items[i].fields = nullptr;
    items[i].meta = nullptr;
  }
  return items;
}

Filter callout_filter(uint64_t id, const std::string& key, Action action, Layer layer = Layer::Inbound) {
  Filter f;
  f.id = id;
  f.name = "sample-" + std::to_string(id);
  f.layer = layer;
  f.action = action;
  f.callout = key;
  return f;
}

Mac mac(uint8_t last, uint8_t first = 0x02) { return Mac{first, 0x00, 0x00, 0x00, 0x00, last}; }

Bytes udp_frame(const Mac& src, uint32_t sequence, size_t pad_to = 60) {
  return FrameBuilder().dst(Mac{0x02, 0x00, 0x00, 0x00, 0x01, 0x01}).src(src).ipv4().udp().marker(sequence).pad_to(pad_to).build();
}

// Loads `name` with `config`: the load must succeed.
void load_ok(CalloutHost& host, const std::string& name, const std::string& config) {
  auto r = host.load(plugin_path(name), config);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->name, name);
}

// Loading with `config` fails with EINVAL and a message that says `why`.
void expect_refused(const std::string& name, const std::string& config, const std::string& why) {
  CalloutHost host;
  auto r = host.load(plugin_path(name), config);
  ASSERT_FALSE(r.ok()) << "config '" << config << "' was accepted";
  EXPECT_EQ(r.error().code, EINVAL) << r.error().message;
  EXPECT_NE(r.error().message.find(why), std::string::npos)
      << "config '" << config << "': " << r.error().message << " (wanted: " << why << ")";
  EXPECT_TRUE(host.list().empty());
}

class SamplePlugins : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"pcap_capture", "mac_allowlist", "vlan_rewrite"})
      if (!std::filesystem::exists(plugin_path(name)))
        GTEST_FAIL() << plugin_path(name) << " is not built (set XFP_BUILD_DIR or build the plugins)";
    dir_ = std::filesystem::temp_directory_path() /
           ("xfp-sample-plugins-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
  LogCapture log_;
};

// ---- pcap_capture -------------------------------------------------------------------

struct PcapRecord {
  Bytes data;
  uint32_t len = 0;  // on the wire
  timeval ts{};
};

std::vector<PcapRecord> read_pcap(const std::string& path, int* linktype = nullptr, int* snaplen = nullptr) {
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_open_offline(path.c_str(), err);
  EXPECT_NE(p, nullptr) << err;
  std::vector<PcapRecord> out;
  if (!p) return out;
  if (linktype) *linktype = pcap_datalink(p);
  if (snaplen) *snaplen = pcap_snapshot(p);
  pcap_pkthdr* h;
  const u_char* data;
  while (pcap_next_ex(p, &h, &data) == 1) out.push_back({Bytes(data, data + h->caplen), h->len, h->ts});
  pcap_close(p);
  return out;
}

TEST_F(SamplePlugins, PcapWritesEveryFrameByteForByteAndAppends) {
  const std::string file = (dir_ / "capture.pcap").string();
  std::vector<Bytes> batch = {udp_frame(mac(1), 1), udp_frame(mac(2), 2, 200),
                              FrameBuilder().src(mac(3)).vlan(100).ethertype(test::ethertype::kArp).build()};
  Bytes single = udp_frame(mac(4), 4, 1514);
  timeval before{};
  gettimeofday(&before, nullptr);
  {
    CalloutHost host;
    auto r = host.load(plugin_path("pcap_capture"), "file=" + file);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->callouts.size(), 1u);
    EXPECT_EQ(r->callouts[0].key, "xfp.sample.pcap");
    EXPECT_EQ(r->callouts[0].flags, uint32_t{XFP_CALLOUT_FLAG_BATCH});  // shows batching

    Filter filter = callout_filter(11, "xfp.sample.pcap", Action::CalloutInspection);
    ASSERT_TRUE(host.notify(XFP_NOTIFY_FILTER_ADD, filter).ok());
    for (const auto& item : classify(host, filter, batch)) {  // one call, three frames
      EXPECT_EQ(item.action, XFP_ACTION_CONTINUE);
      EXPECT_EQ(item.flags, 0);
    }
    auto items = classify(host, filter, {single});
    EXPECT_EQ(items[0].action, XFP_ACTION_CONTINUE);
    ASSERT_TRUE(host.unload("pcap_capture").ok());  // fini flushes
  }
  EXPECT_EQ(log_.count({"debug", "xfp.sample.pcap", "filter 11 'sample-11' added"}), 1u) << log_.dump();
  EXPECT_EQ(log_.count({"xfp.sample.pcap: 4 frames", "in 2 calls", "0 cut to snaplen", "0 write errors"}), 1u)
      << log_.dump();

  int linktype = 0, snaplen = 0;
  auto records = read_pcap(file, &linktype, &snaplen);
  EXPECT_EQ(linktype, DLT_EN10MB);
  EXPECT_EQ(snaplen, 262144);
  std::vector<Bytes> expected = batch;
  expected.push_back(single);
  ASSERT_EQ(records.size(), expected.size());
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].data, expected[i]) << "frame " << i;
    EXPECT_EQ(records[i].len, expected[i].size());
    EXPECT_GE(records[i].ts.tv_sec, before.tv_sec - 1);  // CLOCK_REALTIME, not a zero or monotonic time
    EXPECT_LE(records[i].ts.tv_sec, before.tv_sec + 60);
  }

  // Loading again appends to the valid file.
  {
    CalloutHost host;
    load_ok(host, "pcap_capture", "file=" + file + ",flush=1");
    Filter filter = callout_filter(12, "xfp.sample.pcap", Action::CalloutInspection);
    (void)classify(host, filter, {udp_frame(mac(5), 5)});
    // flush=1: on disk before unloading.
    auto now = read_pcap(file);
    ASSERT_EQ(now.size(), 5u);
    EXPECT_EQ(now[4].data, udp_frame(mac(5), 5));
  }
  EXPECT_EQ(log_.count({"xfp.sample.pcap: appending to", file}), 1u) << log_.dump();
  EXPECT_EQ(read_pcap(file).size(), 5u);
}

TEST_F(SamplePlugins, PcapCutsFramesToSnaplen) {
  const std::string file = (dir_ / "short.pcap").string();
  Bytes big = udp_frame(mac(1), 1, 300);
  {
    CalloutHost host;
    load_ok(host, "pcap_capture", "file=" + file + ",snaplen=64");
    Filter filter = callout_filter(13, "xfp.sample.pcap", Action::CalloutInspection);
    (void)classify(host, filter, {big, udp_frame(mac(2), 2)});
  }
  int snaplen = 0;
  auto records = read_pcap(file, nullptr, &snaplen);
  EXPECT_EQ(snaplen, 64);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].data, Bytes(big.begin(), big.begin() + 64));
  EXPECT_EQ(records[0].len, 300u);
  EXPECT_EQ(records[1].data, udp_frame(mac(2), 2));
  EXPECT_EQ(log_.count({"xfp.sample.pcap: 2 frames", "1 cut to snaplen"}), 1u) << log_.dump();
}

TEST_F(SamplePlugins, PcapRefusesBadConfigSayingWhy) {
  const std::string not_pcap = (dir_ / "notes.txt").string();
  std::ofstream(not_pcap) << "These are notes, not a capture: nothing to append to.\n";
  const std::string pcap64 = (dir_ / "s64.pcap").string();
  {
    CalloutHost host;
    load_ok(host, "pcap_capture", "file=" + pcap64 + ",snaplen=64");
  }
  expect_refused("pcap_capture", "", "config needs file=PATH");
  expect_refused("pcap_capture", "snaplen=100", "config needs file=PATH");
  expect_refused("pcap_capture", "file=" + (dir_ / "x.pcap").string() + ",snaplen=10", "snaplen=10 is not a number in 64..262144");
  expect_refused("pcap_capture", "file=" + (dir_ / "x.pcap").string() + ",flush=0", "flush=0");
  expect_refused("pcap_capture", "file=" + (dir_ / "x.pcap").string() + ",colour=red", "unknown config option 'colour'");
  expect_refused("pcap_capture", "file", "'file' is not key=value");
  expect_refused("pcap_capture", "file=" + not_pcap, "not a pcap file");
  expect_refused("pcap_capture", "file=" + pcap64, "different snaplen");  // default 262144
  expect_refused("pcap_capture", "file=" + (dir_ / "no" / "such" / "dir.pcap").string(), "cannot create the file");
  // A refused append leaves the file alone.
  EXPECT_EQ(read_pcap(pcap64).size(), 0u);
}

// ---- mac_allowlist ------------------------------------------------------------------

constexpr const char* kAllowKey = "xfp.sample.mac-allowlist";

// The verdict for one frame from `src`.
uint8_t verdict(CalloutHost& host, const Filter& filter, const Mac& src) {
  auto items = classify(host, filter, {udp_frame(src, 0)});
  EXPECT_EQ(items[0].flags, 0);
  return items[0].action;
}

TEST_F(SamplePlugins, AllowlistEnforcePermitsListedMacsOnly) {
  CalloutHost host;
  load_ok(host, "mac_allowlist", "allow=02:00:00:00:00:01;02-00-00-00-00-02");
  Filter filter = callout_filter(21, kAllowKey, Action::CalloutTerminating);
  ASSERT_TRUE(host.notify(XFP_NOTIFY_FILTER_ADD, filter).ok());
  EXPECT_EQ(verdict(host, filter, mac(1)), XFP_ACTION_PERMIT);
  EXPECT_EQ(verdict(host, filter, mac(2)), XFP_ACTION_PERMIT);
  EXPECT_EQ(verdict(host, filter, mac(3)), XFP_ACTION_BLOCK);
  EXPECT_EQ(verdict(host, filter, mac(3)), XFP_ACTION_BLOCK);
  EXPECT_EQ(verdict(host, filter, mac(4)), XFP_ACTION_BLOCK);
  EXPECT_EQ(verdict(host, filter, mac(1)), XFP_ACTION_PERMIT);
  // A batch of several frames (one call) gets one verdict each.
  auto items = classify(host, filter, {udp_frame(mac(2), 1), udp_frame(mac(5), 2), udp_frame(mac(1), 3)});
  EXPECT_EQ(items[0].action, XFP_ACTION_PERMIT);
  EXPECT_EQ(items[1].action, XFP_ACTION_BLOCK);
  EXPECT_EQ(items[2].action, XFP_ACTION_PERMIT);

  // The outbound layer checks the remote MAC too: the destination there.
  Filter out = callout_filter(22, kAllowKey, Action::CalloutTerminating, Layer::Outbound);
  auto to = [&](const Mac& dst) {
    return classify(host, out, {FrameBuilder().src(mac(9)).dst(dst).build()})[0].action;
  };
  EXPECT_EQ(to(mac(1)), XFP_ACTION_PERMIT);
  EXPECT_EQ(to(mac(9)), XFP_ACTION_BLOCK);

  // Each blocked MAC is logged once, however often it is seen.
  EXPECT_EQ(log_.count({"warn", "blocked 02:00:00:00:00:03: not listed"}), 1u) << log_.dump();
  EXPECT_EQ(log_.count({"blocked 02:00:00:00:00:04"}), 1u);
  EXPECT_EQ(log_.count({"blocked 02:00:00:00:00:01"}), 0u);
  ASSERT_TRUE(host.unload("mac_allowlist").ok());
  EXPECT_EQ(log_.count({"permitted 6 listed, 0 learned; blocked 5 not listed, 0 list full, 0 group source; "
                        "2 MACs listed, 0 learned, 4 blocked MACs seen"}),
            1u)
      << log_.dump();
}

TEST_F(SamplePlugins, AllowlistReadsAFileWithComments) {
  const std::string file = (dir_ / "allowed.txt").string();
  std::ofstream(file) << "# lab hosts\n02:00:00:00:00:0a\n\n   02:00:00:00:00:0B   # upper case\r\n#02:00:00:00:00:0c\n";
  CalloutHost host;
  load_ok(host, "mac_allowlist", "file=" + file + ",mode=enforce");
  Filter filter = callout_filter(23, kAllowKey, Action::CalloutTerminating);
  EXPECT_EQ(verdict(host, filter, mac(0x0a)), XFP_ACTION_PERMIT);
  EXPECT_EQ(verdict(host, filter, mac(0x0b)), XFP_ACTION_PERMIT);
  EXPECT_EQ(verdict(host, filter, mac(0x0c)), XFP_ACTION_BLOCK);
  EXPECT_EQ(log_.count({"enforce mode, 2 MACs listed"}), 1u) << log_.dump();
}

TEST_F(SamplePlugins, AllowlistLearnModeLearnsUpToMax) {
  CalloutHost host;
  load_ok(host, "mac_allowlist", "mode=learn,max=2,allow=02:00:00:00:00:01");
  Filter filter = callout_filter(24, kAllowKey, Action::CalloutUnknown);
  EXPECT_EQ(verdict(host, filter, mac(1)), XFP_ACTION_PERMIT);  // listed
  EXPECT_EQ(verdict(host, filter, mac(2)), XFP_ACTION_PERMIT);  // learned
  EXPECT_EQ(verdict(host, filter, mac(2)), XFP_ACTION_PERMIT);  // listed now
  EXPECT_EQ(verdict(host, filter, mac(3)), XFP_ACTION_PERMIT);  // learned: the second
  EXPECT_EQ(verdict(host, filter, mac(4)), XFP_ACTION_BLOCK);   // list full
  EXPECT_EQ(verdict(host, filter, mac(4)), XFP_ACTION_BLOCK);
  EXPECT_EQ(verdict(host, filter, mac(3)), XFP_ACTION_PERMIT);
  EXPECT_EQ(verdict(host, filter, mac(5, 0x03)), XFP_ACTION_BLOCK);  // group source: never learned
  EXPECT_EQ(log_.count({"info", "learned 02:00:00:00:00:02"}), 1u) << log_.dump();
  EXPECT_EQ(log_.count({"info", "learned 02:00:00:00:00:03"}), 1u);
  EXPECT_EQ(log_.count({"learned 02:00:00:00:00:01"}), 0u);
  EXPECT_EQ(log_.count({"blocked 02:00:00:00:00:04: list full"}), 1u);
  EXPECT_EQ(log_.count({"blocked 03:00:00:00:00:05: group source"}), 1u);
  ASSERT_TRUE(host.unload("mac_allowlist").ok());
  EXPECT_EQ(log_.count({"permitted 3 listed, 2 learned; blocked 0 not listed, 2 list full, 1 group source"}), 1u)
      << log_.dump();
}

TEST_F(SamplePlugins, AllowlistLearnModeWithoutListLearnsEverySource) {
  CalloutHost host;
  load_ok(host, "mac_allowlist", "mode=learn");
  Filter filter = callout_filter(25, kAllowKey, Action::CalloutTerminating);
  for (uint8_t i = 1; i <= 20; ++i) EXPECT_EQ(verdict(host, filter, mac(i)), XFP_ACTION_PERMIT);
  EXPECT_EQ(log_.count({"learned 02:00:00:00:00:"}), 20u);
}

TEST_F(SamplePlugins, AllowlistRefusesBadConfigSayingWhy) {
  expect_refused("mac_allowlist", "", "mode=enforce with no MAC would block everything");
  expect_refused("mac_allowlist", "mode=enforce", "mode=enforce with no MAC");
  expect_refused("mac_allowlist", "allow=02:00:00:00:00:1", "'02:00:00:00:00:1' is not a MAC address");
  expect_refused("mac_allowlist", "allow=02:00:00:00:00:01;nonsense", "'nonsense' is not a MAC address");
  expect_refused("mac_allowlist", "allow=02:00:00:00:00:01,mode=strict", "mode=strict: want learn or enforce");
  expect_refused("mac_allowlist", "mode=learn,max=0", "max=0 is not a number");
  expect_refused("mac_allowlist", "allow=02:00:00:00:00:01,max=5", "max= only applies to mode=learn");
  expect_refused("mac_allowlist", "allow=02:00:00:00:00:01,colour=red", "unknown config option 'colour'");
  expect_refused("mac_allowlist", "file=" + (dir_ / "missing.txt").string(), "No such file or directory");
  const std::string bad = (dir_ / "bad.txt").string();
  std::ofstream(bad) << "02:00:00:00:00:01\n# fine so far\n02:00:00:00:00:zz\n";
  expect_refused("mac_allowlist", "file=" + bad, bad + ":3: '02:00:00:00:00:zz' is not a MAC address");
  const std::string empty = (dir_ / "empty.txt").string();
  std::ofstream(empty) << "# nothing yet\n";
  expect_refused("mac_allowlist", "file=" + empty, "a file with MACs in it");
}

// ---- vlan_rewrite -------------------------------------------------------------------

// Records injected frames; runs their completions when the test calls
// complete_all() (never inside the inject call, as the contract says).
// Injection state comes from the bytes, as with the real injector: a frame
// whose bytes a handle injected is INJECTED_BY_SELF for that handle.
class FakeInjection : public InjectionService {
 public:
  struct Injected {
    xfp_injection_handle* handle;
    bool receive;
    uint32_t iface;
    uint64_t context;
    Bytes bytes;
    xfp_frame* frame;
    xfp_inject_complete_fn complete;
    void* completion_ctx;
  };

  // The ABI's handles are opaque: the host only passes them back to the
  // service. (The real struct lives with the injector, whose headers clash
  // with libpcap's.)
  struct Handle {
    bool closing = false;
  };
  static Handle* handle_of(const xfp_injection_handle* h) {
    return reinterpret_cast<Handle*>(const_cast<xfp_injection_handle*>(h));
  }

  int create_handle(const std::string& plugin, uint32_t type, xfp_injection_handle** handle) noexcept override {
    if (type != XFP_INJECTION_L2) return XFP_STATUS_HANDLE_STALE;
    handles_.push_back(std::make_unique<Handle>());
    owners.push_back(plugin);
    *handle = reinterpret_cast<xfp_injection_handle*>(handles_.back().get());
    ++created;
    return 0;
  }
  void destroy_handle(xfp_injection_handle* handle) noexcept override {
    ++destroyed;
    complete_where([&](const Injected& i) { return i.handle == handle; }, XFP_STATUS_HANDLE_CLOSING);
    handle_of(handle)->closing = true;
  }
  int inject_receive(xfp_injection_handle* handle, uint32_t iface, xfp_frame* frames, uint64_t context,
                     xfp_inject_complete_fn complete, void* completion_ctx) noexcept override {
    return inject(true, handle, iface, frames, context, complete, completion_ctx);
  }
  int inject_send(xfp_injection_handle* handle, uint32_t iface, xfp_frame* frames, uint64_t context,
                  xfp_inject_complete_fn complete, void* completion_ctx) noexcept override {
    return inject(false, handle, iface, frames, context, complete, completion_ctx);
  }
  xfp_injection_state injection_state(const xfp_injection_handle* handle, const xfp_classify_item* item,
                                      uint64_t* context) noexcept override {
    ++state_queries;
    if (context) *context = 0;
    if (force_state) return *force_state;
    Bytes b = bytes_of(item->frame);
    for (const auto& i : all) {
      if (i.bytes != b) continue;
      if (context) *context = i.context;
      return i.handle == handle ? XFP_INJECTED_BY_SELF : XFP_INJECTED_BY_OTHER;
    }
    return XFP_NOT_INJECTED;
  }
  void destroy_all_of(const std::string&) noexcept override {}

  // Runs the completions of every frame still pending.
  void complete_all(int status = 0) {
    complete_where([](const Injected&) { return true; }, status);
  }

  std::vector<Injected> all;      // every accepted injection
  std::vector<Injected> pending;  // not yet completed
  std::vector<std::string> owners;
  int created = 0, destroyed = 0, state_queries = 0, completions = 0;
  int fail_next = 0;  // the next inject call returns this
  std::optional<xfp_injection_state> force_state;

 private:
  int inject(bool receive, xfp_injection_handle* handle, uint32_t iface, xfp_frame* frames, uint64_t context,
             xfp_inject_complete_fn complete, void* completion_ctx) {
    if (int rc = fail_next) {
      fail_next = 0;
      return rc;
    }
    if (!handle || handle_of(handle)->closing) return XFP_STATUS_HANDLE_CLOSING;
    for (xfp_frame* f = frames; f; f = frame_next(f)) {
      Injected i{handle, receive, iface, context, bytes_of(f), f, complete, completion_ctx};
      all.push_back(i);
      pending.push_back(i);
    }
    return 0;
  }
  template <typename Pred>
  void complete_where(Pred pred, int status) {
    std::vector<Injected> run;
    for (auto it = pending.begin(); it != pending.end();) {
      if (pred(*it)) {
        run.push_back(*it);
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& i : run) {
      ++completions;
      i.complete(i.completion_ctx, i.frame, status);
    }
  }
  std::vector<std::unique_ptr<Handle>> handles_;
};

constexpr const char* kVlanKey = "xfp.sample.vlan-rewrite";

class VlanRewrite : public SamplePlugins {
 protected:
  void load(const std::string& config) {
    host_.set_injection_service(&fake_);
    load_ok(host_, "vlan_rewrite", config);
    ASSERT_EQ(fake_.created, 1);  // one handle, created in init
    EXPECT_EQ(fake_.owners.at(0), "vlan_rewrite");
  }
  // One frame through the callout; returns its answer.
  xfp_classify_item run(const Bytes& frame, Layer layer = Layer::Inbound, uint32_t iface = 7) {
    Filter filter = callout_filter(31, kVlanKey, Action::CalloutTerminating, layer);
    return classify(host_, filter, {frame}, iface)[0];
  }
  static void expect_absorbed(const xfp_classify_item& item) {
    EXPECT_EQ(item.action, XFP_ACTION_BLOCK);
    EXPECT_EQ(item.flags, XFP_CLASSIFY_ABSORB);
  }
  static void expect_passed(const xfp_classify_item& item) {
    EXPECT_EQ(item.action, XFP_ACTION_PERMIT);
    EXPECT_EQ(item.flags, 0);
  }

  FakeInjection fake_;  // outlives the host
  CalloutHost host_;
};

FrameBuilder base_frame() {
  return FrameBuilder().dst(Mac{0x02, 0x00, 0x00, 0x00, 0x01, 0x01}).src(mac(1)).ipv4().udp().payload("vlan rewrite").pad_to(0);
}

TEST_F(VlanRewrite, PushInsertsATagAfterTheMacs) {
  load("push=100");
  expect_absorbed(run(base_frame().build(), Layer::Inbound, 9));
  ASSERT_EQ(fake_.pending.size(), 1u);
  const auto& i = fake_.pending[0];
  EXPECT_EQ(i.bytes, base_frame().vlan(100).build());
  EXPECT_TRUE(i.receive);  // inbound: the host stack receives it
  EXPECT_EQ(i.iface, 9u);  // on the interface it came from
  // An already tagged frame gets a second, outer tag.
  expect_absorbed(run(base_frame().vlan(7).build()));
  ASSERT_EQ(fake_.pending.size(), 2u);
  EXPECT_EQ(fake_.pending[1].bytes, base_frame().vlan(100).vlan(7).build());
  fake_.complete_all();
  EXPECT_EQ(fake_.completions, 2);
}

TEST_F(VlanRewrite, PushWithoutHeadroomCopiesIntoABiggerFrame) {
  load("push=4094");
  Bytes original = base_frame().build();
  // A borrowed frame at the very start of its chunk: no headroom to push into.
  std::vector<uint8_t> chunk(2048);
  std::memcpy(chunk.data(), original.data(), original.size());
  xfp_frame* f = frame_borrow(chunk.data(), static_cast<uint32_t>(chunk.size()), 0,
                              static_cast<uint32_t>(original.size()));
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(frame_headroom(f), 0u);
  Filter filter = callout_filter(32, kVlanKey, Action::CalloutTerminating);
  expect_absorbed(classify(host_, filter, {original}, 7, f)[0]);
  ASSERT_EQ(fake_.pending.size(), 1u);
  EXPECT_EQ(fake_.pending[0].bytes, base_frame().vlan(4094).build());
  EXPECT_NE(fake_.pending[0].frame, f);  // a new frame; the borrowed one was freed
  fake_.complete_all();
}

TEST_F(VlanRewrite, PopRemovesTheOuterTagAndPassesUntaggedFrames) {
  load("pop");
  expect_absorbed(run(base_frame().vlan(100).build()));
  expect_absorbed(run(base_frame().qinq(10, 20).build()));
  ASSERT_EQ(fake_.pending.size(), 2u);
  EXPECT_EQ(fake_.pending[0].bytes, base_frame().build());
  EXPECT_EQ(fake_.pending[1].bytes, base_frame().vlan(20).build());
  // Untagged, or too short for a tag: permitted as they are, not injected.
  // (Not the bytes of the first injected frame: those would be our own.)
  expect_passed(run(base_frame().src(mac(2)).build()));
  expect_passed(run(base_frame().vlan(5).truncate_to(16).build()));
  expect_passed(run(FrameBuilder().truncate_to(10).build()));
  EXPECT_EQ(fake_.all.size(), 2u);
  fake_.complete_all();
  ASSERT_TRUE(host_.unload("vlan_rewrite").ok());
  EXPECT_EQ(log_.count({"2 rewritten, 2 injected (2 completed, 0 failed), 0 dropped, 0 own frames permitted, 3 unchanged"}),
            1u)
      << log_.dump();
}

TEST_F(VlanRewrite, SetSourceRewritesTheSourceMacAndSendsOutboundFrames) {
  load("set-src=02:aa:bb:cc:dd:ee");
  expect_absorbed(run(base_frame().vlan(3).build()));
  // Outbound: the rewritten frame leaves through the send path.
  expect_absorbed(run(base_frame().build(), Layer::Outbound, 4));
  ASSERT_EQ(fake_.pending.size(), 2u);
  Mac src{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};
  EXPECT_EQ(fake_.pending[0].bytes, base_frame().src(src).vlan(3).build());
  EXPECT_TRUE(fake_.pending[0].receive);
  EXPECT_EQ(fake_.pending[1].bytes, base_frame().src(src).build());
  EXPECT_FALSE(fake_.pending[1].receive);
  EXPECT_EQ(fake_.pending[1].iface, 4u);
  fake_.complete_all();
}

TEST_F(VlanRewrite, OwnInjectedFramesArePermittedNotRewrittenAgain) {
  load("push=100");
  expect_absorbed(run(base_frame().build()));
  ASSERT_EQ(fake_.all.size(), 1u);
  Bytes injected = fake_.all[0].bytes;
  fake_.complete_all();
  // The injected frame comes through the layer again: INJECTED_BY_SELF.
  expect_passed(run(injected));
  EXPECT_EQ(fake_.all.size(), 1u);  // nothing injected: no loop
  EXPECT_EQ(fake_.state_queries, 2);
  // PREVIOUSLY_INJECTED_BY_SELF too; another injector's frame is rewritten.
  fake_.force_state = XFP_PREVIOUSLY_INJECTED_BY_SELF;
  expect_passed(run(base_frame().build()));
  fake_.force_state = XFP_INJECTED_BY_OTHER;
  expect_absorbed(run(base_frame().build()));
  EXPECT_EQ(fake_.all.size(), 2u);
  fake_.complete_all();
  ASSERT_TRUE(host_.unload("vlan_rewrite").ok());
  EXPECT_EQ(fake_.destroyed, 1);  // fini destroyed its handle
  EXPECT_EQ(log_.count({"2 rewritten, 2 injected (2 completed, 0 failed), 0 dropped, 2 own frames permitted"}), 1u)
      << log_.dump();
}

TEST_F(VlanRewrite, FailedInjectDropsTheFrameAndPendingOnesCompleteAtUnload) {
  load("push=42");
  fake_.fail_next = XFP_STATUS_NOT_READY;
  expect_absorbed(run(base_frame().build()));  // absorbed, then freed by the plugin
  EXPECT_TRUE(fake_.all.empty());
  EXPECT_EQ(log_.count({"warn", "inject on interface 7 failed (-10001); frame dropped"}), 1u) << log_.dump();
  // Pending at unload: destroying the handle completes it with HANDLE_CLOSING.
  expect_absorbed(run(base_frame().build()));
  ASSERT_EQ(fake_.pending.size(), 1u);
  ASSERT_TRUE(host_.unload("vlan_rewrite").ok());
  EXPECT_TRUE(fake_.pending.empty());
  EXPECT_EQ(fake_.completions, 1);
  EXPECT_EQ(log_.count({"2 rewritten, 1 injected (0 completed, 1 failed), 1 dropped"}), 1u) << log_.dump();
}

TEST_F(VlanRewrite, RefusesBadConfigSayingWhy) {
  FakeInjection fake;
  auto refused = [&](const std::string& config, const std::string& why) {
    CalloutHost host;
    host.set_injection_service(&fake);
    auto r = host.load(plugin_path("vlan_rewrite"), config);
    ASSERT_FALSE(r.ok()) << config;
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
  };
  refused("", "give exactly one of push=VID, pop, set-src=MAC");
  refused("push=0", "push=0: the VID must be a number in 1..4094");
  refused("push=4095", "1..4094");
  refused("push=10x", "1..4094");
  refused("pop,push=3", "exactly one of");
  refused("pop=1", "exactly one of");
  refused("set-src=02:00:00:00:00", "is not a MAC address");
  refused("set-src=01:00:5e:00:00:01", "is a group address, not a source");
  EXPECT_EQ(fake.created, 0);  // config is checked before the handle is made
  // Without an injection service the handle cannot be made: the load fails.
  CalloutHost host;
  auto r = host.load(plugin_path("vlan_rewrite"), "pop");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("injection_handle_create failed"), std::string::npos) << r.error().message;
}


// ---- mac_allowlist with an approver (message ports) ---------------------------------

// Thread-safe: the allow-list's approver thread injects, the test reads.
// Completions run when the test calls complete_all() (never inside the
// inject call, as the contract says).
class RecordingInjection : public InjectionService {
 public:
  struct Injected {
    uint32_t iface;
    Bytes bytes;
    xfp_frame* frame;
    xfp_inject_complete_fn complete;
    void* ctx;
  };
  int create_handle(const std::string&, uint32_t, xfp_injection_handle** h) noexcept override {
    *h = reinterpret_cast<xfp_injection_handle*>(this);
    return 0;
  }
  void destroy_handle(xfp_injection_handle*) noexcept override { complete_all(XFP_STATUS_HANDLE_CLOSING); }
  int inject_receive(xfp_injection_handle*, uint32_t iface, xfp_frame* frames, uint64_t, xfp_inject_complete_fn complete,
                     void* ctx) noexcept override {
    std::lock_guard lk(mu_);
    for (xfp_frame* f = frames; f; f = frame_next(f)) {
      all_.push_back({iface, bytes_of(f), f, complete, ctx});
      pending_.push_back(all_.back());
    }
    return 0;
  }
  int inject_send(xfp_injection_handle*, uint32_t, xfp_frame*, uint64_t, xfp_inject_complete_fn, void*) noexcept override {
    return -ENOTSUP;
  }
  xfp_injection_state injection_state(const xfp_injection_handle*, const xfp_classify_item*, uint64_t*) noexcept override {
    return XFP_NOT_INJECTED;
  }
  void destroy_all_of(const std::string&) noexcept override {}
  std::vector<Injected> all() {
    std::lock_guard lk(mu_);
    return all_;
  }
  void complete_all(int status = 0) {
    std::vector<Injected> run;
    {
      std::lock_guard lk(mu_);
      run.swap(pending_);
    }
    for (auto& i : run) i.complete(i.ctx, i.frame, status);
  }

 private:
  std::mutex mu_;
  std::vector<Injected> all_, pending_;
};

template <typename F>
bool within(F cond, std::chrono::milliseconds limit = std::chrono::milliseconds(3000)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return cond();
}

class AllowlistApprover : public SamplePlugins {
 protected:
  void SetUp() override {
    SamplePlugins::SetUp();
    char tmpl[] = "/tmp/xfp-appr.XXXXXX";  // short: a socket path has at most 107 bytes
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    port_dir_ = tmpl;
    PortServiceOptions o;
    o.dir = port_dir_;
    ports_ = std::make_unique<MessagePortService>(o);
    host_ = std::make_unique<CalloutHost>();
    host_->set_port_service(ports_.get());
    host_->set_injection_service(&inject_);
  }
  void TearDown() override {
    xfp_port_close(conn_);
    conn_ = nullptr;
    host_.reset();  // unloads: the plugin closes its port
    inject_.complete_all();
    ports_.reset();
    std::filesystem::remove_all(port_dir_);
    SamplePlugins::TearDown();
  }
  void load(const std::string& config) { load_ok(*host_, "mac_allowlist", config); }
  void connect() {
    char why[128] = "";
    ASSERT_EQ(xfp_port_connect_ex((port_dir_ + "/appr").c_str(), nullptr, 0, &conn_, why, sizeof why), 0) << why;
    // The plugin hears of the client on the port's thread.
    ASSERT_TRUE(within([&] { return log_.count({"approver client", "connected to port appr"}) == 1; })) << log_.dump();
  }
  // The next question; answers it with `verdict` (0: no answer).
  xfp_mac_approval_request answer(uint32_t verdict, int timeout_ms = 3000) {
    xfp_mac_approval_request req{};
    size_t len = 0;
    uint64_t id = 0;
    uint32_t flags = 0;
    EXPECT_EQ(xfp_port_get_message(conn_, &req, sizeof req, &len, &id, &flags, timeout_ms), 0);
    EXPECT_EQ(len, sizeof req);
    EXPECT_EQ(req.magic, XFP_MAC_APPROVAL_MAGIC);
    EXPECT_TRUE(flags & XFP_PORT_F_REPLY_EXPECTED);
    if (verdict) {
      xfp_mac_approval_verdict v{XFP_MAC_APPROVAL_MAGIC, verdict};
      EXPECT_EQ(xfp_port_reply(conn_, id, &v, sizeof v), 0);
    }
    return req;
  }
  std::vector<xfp_classify_item> run(const std::vector<Bytes>& frames) {
    return classify(*host_, filter_, frames, 7);
  }

  Filter filter_ = callout_filter(41, kAllowKey, Action::CalloutTerminating);
  RecordingInjection inject_;  // outlives the host
  std::unique_ptr<MessagePortService> ports_;
  std::unique_ptr<CalloutHost> host_;
  xfp_port_conn* conn_ = nullptr;
  std::string port_dir_;
};

TEST_F(AllowlistApprover, AnApprovedMacsWaitingFramesAreReinjectedAndADeniedOnesFreed) {
  load("allow=02:00:00:00:00:01,approver=appr,timeout_ms=5000");
  connect();
  EXPECT_EQ(run({udp_frame(mac(1), 0)})[0].action, XFP_ACTION_PERMIT);  // listed: no question

  // Two frames of a new MAC wait, absorbed, for one question.
  Bytes a = udp_frame(mac(2), 1), b = udp_frame(mac(2), 2, 200);
  auto items = run({a});
  EXPECT_EQ(items[0].flags, XFP_CLASSIFY_ABSORB);
  EXPECT_EQ(run({b})[0].flags, XFP_CLASSIFY_ABSORB);
  auto req = answer(XFP_MAC_VERDICT_PERMIT);
  EXPECT_EQ((Mac{req.mac[0], req.mac[1], req.mac[2], req.mac[3], req.mac[4], req.mac[5]}), mac(2));
  EXPECT_EQ(req.iface, 7u);
  EXPECT_EQ(req.ifindex, 3u);
  EXPECT_EQ(req.vlan, 0u);
  EXPECT_GE(req.waiting, 1u);
  ASSERT_TRUE(within([&] { return inject_.all().size() == 2; }));
  auto injected = inject_.all();
  EXPECT_EQ(injected[0].bytes, a) << "re-injected byte for byte, in arrival order";
  EXPECT_EQ(injected[1].bytes, b);
  EXPECT_EQ(injected[0].iface, 7u);
  inject_.complete_all();
  // From now on the MAC is decided: no question, no absorb.
  items = run({udp_frame(mac(2), 3)});
  EXPECT_EQ(items[0].action, XFP_ACTION_PERMIT);
  EXPECT_EQ(items[0].flags, 0);

  // Denied: its waiting frame is freed, later frames blocked.
  EXPECT_EQ(run({udp_frame(mac(3), 4)})[0].flags, XFP_CLASSIFY_ABSORB);
  answer(XFP_MAC_VERDICT_BLOCK);
  ASSERT_TRUE(within([&] { return log_.count({"approver denies 02:00:00:00:00:03"}) == 1; })) << log_.dump();
  EXPECT_EQ(run({udp_frame(mac(3), 5)})[0].action, XFP_ACTION_BLOCK);
  EXPECT_EQ(inject_.all().size(), 2u);
  EXPECT_EQ(log_.count({"approver permits 02:00:00:00:00:02"}), 1u) << log_.dump();

  ASSERT_TRUE(host_->unload("mac_allowlist").ok());
  EXPECT_EQ(log_.count({"approver on port appr: asked 2, permitted 1, denied 1, 0 timed out, 0 without approver, "
                        "0 bad answers; 2 frames re-injected, 0 failed, 1 freed, 0 dropped at unload"}),
            1u)
      << log_.dump();
  EXPECT_EQ(log_.count({"approver verdicts: permitted 1 approved; blocked 1 denied, 0 waiting full; "
                        "3 frames absorbed to wait; 2 MACs decided"}),
            1u)
      << log_.dump();
}

TEST_F(AllowlistApprover, TimeoutAndNoApproverApplyTheDefaultVerdict) {
  load("approver=appr,timeout_ms=150,default=permit");
  // No client: the default at once.
  EXPECT_EQ(run({udp_frame(mac(4), 1)})[0].flags, XFP_CLASSIFY_ABSORB);
  ASSERT_TRUE(within([&] { return inject_.all().size() == 1; }));
  EXPECT_EQ(log_.count({"no approver on port appr: 02:00:00:00:00:04 permitted by default"}), 1u) << log_.dump();

  // A client that takes the question and never answers: the default after 150 ms.
  connect();
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(run({udp_frame(mac(5), 2)})[0].flags, XFP_CLASSIFY_ABSORB);
  answer(0);
  ASSERT_TRUE(within([&] { return inject_.all().size() == 2; }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(140));
  EXPECT_EQ(log_.count({"did not answer about 02:00:00:00:00:05 within 150 ms: permitted by default"}), 1u)
      << log_.dump();
  EXPECT_EQ(run({udp_frame(mac(5), 3)})[0].action, XFP_ACTION_PERMIT);
}

TEST_F(AllowlistApprover, WaitingFramesAreBoundedAndABadAnswerIsTheDefault) {
  load("approver=appr,timeout_ms=2000,max_waiting=2");
  connect();
  EXPECT_EQ(run({udp_frame(mac(6), 1)})[0].flags, XFP_CLASSIFY_ABSORB);
  EXPECT_EQ(run({udp_frame(mac(6), 2)})[0].flags, XFP_CLASSIFY_ABSORB);
  auto third = run({udp_frame(mac(6), 3)})[0];
  EXPECT_EQ(third.flags, 0) << "beyond max_waiting: blocked, not held";
  EXPECT_EQ(third.action, XFP_ACTION_BLOCK);
  // A reply of the wrong size (a header added, say): the default, block.
  xfp_mac_approval_request req{};
  size_t len = 0;
  uint64_t id = 0;
  ASSERT_EQ(xfp_port_get_message(conn_, &req, sizeof req, &len, &id, nullptr, 3000), 0);
  char padded[16] = {};
  xfp_mac_approval_verdict v{XFP_MAC_APPROVAL_MAGIC, XFP_MAC_VERDICT_PERMIT};
  std::memcpy(padded, &v, sizeof v);
  ASSERT_EQ(xfp_port_reply(conn_, id, padded, sizeof padded), 0);
  ASSERT_TRUE(within([&] { return log_.count({"bad answer about 02:00:00:00:00:06"}) == 1; })) << log_.dump();
  EXPECT_EQ(log_.count({"status -10006, 16 bytes; want a 8-byte verdict"}), 1u) << log_.dump();
  EXPECT_EQ(run({udp_frame(mac(6), 4)})[0].action, XFP_ACTION_BLOCK);
  EXPECT_TRUE(inject_.all().empty());
}

TEST_F(AllowlistApprover, UnloadingWhileAQuestionWaitsReturnsAtOnce) {
  load("approver=appr,timeout_ms=600000");
  connect();
  EXPECT_EQ(run({udp_frame(mac(7), 1)})[0].flags, XFP_CLASSIFY_ABSORB);
  answer(0);  // taken, never answered: the plugin's thread waits in port_send
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(host_->unload("mac_allowlist").ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(log_.count({"1 dropped at unload"}), 1u) << log_.dump();
  EXPECT_TRUE(inject_.all().empty());
}

TEST_F(AllowlistApprover, RefusesBadConfigSayingWhy) {
  expect_refused("mac_allowlist", "approver=appr,mode=learn", "not with mode=learn");
  expect_refused("mac_allowlist", "allow=02:00:00:00:00:01,timeout_ms=5", "need approver=PORT");
  expect_refused("mac_allowlist", "approver=a/b", "approver=a/b: a port name is");
  expect_refused("mac_allowlist", "approver=appr,default=maybe", "default=maybe: want permit or block");
  expect_refused("mac_allowlist", "approver=appr,timeout_ms=0", "timeout_ms=0 is not a number in 1..3600000");
  expect_refused("mac_allowlist", "approver=appr,max_waiting=x", "max_waiting=x is not a number");
  // Without a port service (or an injection service) the port cannot be made.
  CalloutHost bare;
  bare.set_injection_service(&inject_);
  auto r = bare.load(plugin_path("mac_allowlist"), "approver=appr");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("port_create failed"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace xfp
