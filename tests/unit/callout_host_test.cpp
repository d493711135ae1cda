// The callout host: loading the test plugins (tests/plugins), the exact error
// a user reads for each broken one and that nothing stays registered after
// it, unload and reload with stable ids, notify, injection and interface
// delegation, and unload racing workers that call the callout.
#include "xfp/callout_host.hpp"

#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "plugins/test_plugins.h"
#include "xfp/frame.hpp"

namespace xfp {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Where tests/plugins put the libraries: XFP_BUILD_DIR (set by ctest), else
// the directory this binary was configured with.
std::string plugin_path(const std::string& file) {
  const char* build = std::getenv("XFP_BUILD_DIR");
  std::string dir = build && *build ? std::string(build) + "/tests/plugins" : XFP_TEST_PLUGIN_DIR;
  return std::filesystem::absolute(dir + "/" + file + ".so").lexically_normal().string();
}

// A reference of the test's own to a plugin library: the library stays mapped
// while the host loads and closes it, so its state can be read afterwards.
class PluginProbe {
 public:
  explicit PluginProbe(const std::string& path) : handle_(dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    EXPECT_NE(handle_, nullptr) << dlerror();
  }
  ~PluginProbe() {
    if (handle_) dlclose(handle_);
  }
  PluginProbe(const PluginProbe&) = delete;
  PluginProbe& operator=(const PluginProbe&) = delete;

  template <typename State>
  const State& state(const char* symbol) const {
    using StateFn = const State* (*)();
    auto fn = reinterpret_cast<StateFn>(dlsym(handle_, symbol));
    static const State none{};
    EXPECT_NE(fn, nullptr) << symbol;
    return fn ? *fn() : none;
  }
  const good_plugin_state& good() const { return state<good_plugin_state>(GOOD_STATE_SYMBOL); }
  const broken_plugin_state& broken() const { return state<broken_plugin_state>(BROKEN_STATE_SYMBOL); }

 private:
  void* handle_;
};

// Records what the host tells the kernel.
struct ServedLog {
  std::vector<std::pair<uint16_t, bool>> events;
  std::map<uint16_t, bool> served;  // last word per id
  uint16_t refuse_id = 0;           // on_served fails for this id

  CalloutHost::ServedFn fn() {
    return [this](uint16_t id, bool on) -> Status {
      if (on && id == refuse_id) return make_error(EIO, "kernel says no");
      events.emplace_back(id, on);
      served[id] = on;
      return Ok{};
    };
  }
  size_t serving() const {
    size_t n = 0;
    for (const auto& [id, on] : served) n += on;
    return n;
  }
};

// An injection service that hands out tokens and records what happens.
class FakeInjection : public InjectionService {
 public:
  std::map<xfp_injection_handle*, std::string> live;  // handle -> plugin
  std::vector<std::string> destroyed_all_of;
  std::function<void(const std::string&)> before_destroy_all;

  int create_handle(const std::string& plugin, uint32_t type, xfp_injection_handle** handle) noexcept override {
    if (type != XFP_INJECTION_L2) return -EINVAL;
    *handle = reinterpret_cast<xfp_injection_handle*>(&tokens_[next_++ % 16]);
    live[*handle] = plugin;
    return 0;
  }
  void destroy_handle(xfp_injection_handle* handle) noexcept override { live.erase(handle); }
  int inject_receive(xfp_injection_handle*, uint32_t, xfp_frame*, uint64_t, xfp_inject_complete_fn,
                     void*) noexcept override {
    return -EIO;
  }
  int inject_send(xfp_injection_handle*, uint32_t, xfp_frame*, uint64_t, xfp_inject_complete_fn,
                  void*) noexcept override {
    return -EIO;
  }
  xfp_injection_state injection_state(const xfp_injection_handle*, const xfp_classify_item*,
                                      uint64_t*) noexcept override {
    return XFP_INJECTED_BY_OTHER;
  }
  void destroy_all_of(const std::string& plugin) noexcept override {
    if (before_destroy_all) before_destroy_all(plugin);
    destroyed_all_of.push_back(plugin);
    std::erase_if(live, [&](const auto& kv) { return kv.second == plugin; });
  }

 private:
  char tokens_[16] = {};
  unsigned next_ = 0;
};

class CalloutHostTest : public ::testing::Test {
 protected:
  void SetUp() override { host_.set_on_served(served_.fn()); }

  // Everything the host could still have of a failed or unloaded plugin.
  void expect_nothing_registered(const std::vector<std::string>& keys) {
    EXPECT_TRUE(host_.list().empty());
    EXPECT_EQ(served_.serving(), 0u);
    for (const auto& key : keys) EXPECT_FALSE(host_.acquire(host_.id_of(key))) << key;
  }

  ServedLog served_;
  CalloutHost host_;
  const std::string good_ = plugin_path("good");
};

TEST_F(CalloutHostTest, LoadsTheGoodPlugin) {
  PluginProbe probe(good_);
  auto loaded = host_.load(good_, "hello world");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->name, "good");
  EXPECT_EQ(loaded->description, "counts and vetoes frames, for the host's tests");
  EXPECT_EQ(loaded->path, good_);
  EXPECT_EQ(loaded->abi_version, uint32_t{XFP_CALLOUT_ABI_VERSION});
  ASSERT_EQ(loaded->callouts.size(), 2u);
  EXPECT_EQ(loaded->callouts[0].key, "good.count");
  EXPECT_EQ(loaded->callouts[0].flags, uint32_t{XFP_CALLOUT_FLAG_BATCH});
  EXPECT_EQ(loaded->callouts[0].description, "counts frames");
  EXPECT_EQ(loaded->callouts[1].key, "good.veto");
  EXPECT_EQ(loaded->callouts[1].flags, 0u);

  const good_plugin_state& state = probe.good();
  EXPECT_STREQ(state.config, "hello world");
  EXPECT_EQ(state.count_id, loaded->callouts[0].id);
  EXPECT_EQ(state.veto_id, loaded->callouts[1].id);
  EXPECT_EQ(host_.id_of("good.count"), loaded->callouts[0].id);
  EXPECT_EQ(state.init_calls, 1);
  EXPECT_EQ(state.handle_rc, -EOPNOTSUPP);  // no injection service set

  EXPECT_EQ(served_.serving(), 2u);
  EXPECT_TRUE(served_.served[state.count_id]);
  EXPECT_TRUE(served_.served[state.veto_id]);
  auto listed = host_.list();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].name, "good");
  EXPECT_EQ(listed[0].callouts.size(), 2u);
}

TEST_F(CalloutHostTest, WorkersCallCalloutsById) {
  PluginProbe probe(good_);
  auto loaded = host_.load(good_);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const good_plugin_state& state = probe.good();

  xfp_frame* frames[3] = {frame_alloc(60), frame_alloc(60), frame_alloc(60)};
  xfp_classify_item items[3] = {};
  for (int i = 0; i < 3; ++i) items[i].frame = frames[i];
  Filter filter;
  filter.id = 9;
  filter.action = Action::CalloutTerminating;
  filter.callout = "good.count";
  xfp_filter_info info = to_filter_info(filter);
  {
    CalloutRef count = host_.acquire(host_.id_of("good.count"));
    ASSERT_TRUE(count);
    EXPECT_EQ(count->key, "good.count");
    EXPECT_EQ(count->flags & XFP_CALLOUT_FLAG_BATCH, uint32_t{XFP_CALLOUT_FLAG_BATCH});
    count.classify(&info, items, 3);
  }
  EXPECT_EQ(state.classify_calls, 1);
  EXPECT_EQ(state.classify_frames, 3);
  for (const auto& item : items) EXPECT_EQ(item.action, XFP_ACTION_PERMIT);
  host_.acquire(host_.id_of("good.veto")).classify(&info, items, 1);
  EXPECT_EQ(items[0].action, XFP_ACTION_BLOCK);
  for (auto* f : frames) frame_free(f);

  EXPECT_FALSE(host_.acquire(0));
  EXPECT_FALSE(host_.acquire(XFP_MAX_CALLOUTS));
  EXPECT_FALSE(host_.acquire(host_.id_of("not.loaded")));
}

TEST_F(CalloutHostTest, UnloadAndReloadKeepTheIds) {
  // A filter names good.veto before the plugin is there: the id comes first.
  uint16_t veto_id = host_.id_of("good.veto");
  EXPECT_EQ(veto_id, 1);
  PluginProbe probe(good_);
  const good_plugin_state& state = probe.good();
  ASSERT_TRUE(host_.load(good_).ok());
  EXPECT_EQ(state.veto_id, veto_id);
  uint16_t count_id = host_.id_of("good.count");
  EXPECT_EQ(count_id, 2);

  ASSERT_TRUE(host_.unload("good").ok());
  EXPECT_EQ(state.fini_calls, 1);
  expect_nothing_registered({"good.count", "good.veto"});
  EXPECT_EQ(served_.events.size(), 4u);  // two served, two unserved

  auto again = host_.load(good_);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(state.init_calls, 2);
  EXPECT_EQ(host_.id_of("good.count"), count_id);
  EXPECT_EQ(host_.id_of("good.veto"), veto_id);
  EXPECT_EQ(again->callouts[0].id, count_id);
  EXPECT_TRUE(host_.acquire(veto_id));
  EXPECT_EQ(served_.serving(), 2u);
}

TEST_F(CalloutHostTest, UnloadOfAnUnknownPlugin) {
  auto st = host_.unload("nope");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ENOENT);
  EXPECT_EQ(st.error().message, "no callout plugin named nope is loaded");
}

TEST_F(CalloutHostTest, ThePluginNameIsTakenOnce) {
  ASSERT_TRUE(host_.load(good_).ok());
  auto twice = host_.load(good_);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, EEXIST);
  EXPECT_EQ(twice.error().message, good_ + ": plugin good is already loaded (from " + good_ + ")");
  EXPECT_EQ(host_.list().size(), 1u);
  EXPECT_EQ(served_.serving(), 2u);
  EXPECT_TRUE(host_.acquire(host_.id_of("good.count")));
}

TEST_F(CalloutHostTest, FilesThatAreNoPlugins) {
  auto missing = host_.load("/nonexistent/libnothing.so");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_EQ(missing.error().message, "/nonexistent/libnothing.so: No such file or directory");

  const std::string dir = std::filesystem::path(good_).parent_path().string();
  auto directory = host_.load(dir);
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().message, dir + ": not a regular file");

  const std::string text = testing::TempDir() + "xfp_not_a_library.so";
  std::ofstream(text) << "not ELF\n";
  auto not_elf = host_.load(text);
  ASSERT_FALSE(not_elf.ok());
  EXPECT_THAT(not_elf.error().message, StartsWith(text + ": cannot load it: "));
  std::remove(text.c_str());
  EXPECT_TRUE(host_.list().empty());
}

// One broken plugin per load failure: the exact message, and nothing left.
struct BrokenCase {
  const char* defect;
  const char* problem;  // the message after "<path>: "
  int code;
  bool init_runs;
  bool fini_runs;
};

class BrokenPluginTest : public CalloutHostTest, public ::testing::WithParamInterface<BrokenCase> {};

TEST_P(BrokenPluginTest, FailsWithAClearMessageAndLeavesNothing) {
  const BrokenCase& c = GetParam();
  const bool duplicate = std::string(c.defect) == "duplicate_key";
  if (duplicate) {
    ASSERT_TRUE(host_.load(good_).ok());
  }
  size_t served_before = served_.serving();

  const std::string path = plugin_path(std::string("broken_") + c.defect);
  PluginProbe probe(path);
  auto loaded = host_.load(path, "x");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().message, path + ": " + c.problem);
  EXPECT_EQ(loaded.error().code, c.code);

  const broken_plugin_state& state = probe.broken();
  EXPECT_EQ(state.init_calls, c.init_runs ? 1 : 0);
  EXPECT_EQ(state.fini_calls, c.fini_runs ? 1 : 0);
  if (c.fini_runs) {  // a registration defect: refused with an errno, after a valid one
    EXPECT_EQ(state.valid_register_rc, 0);
    EXPECT_EQ(state.broken_register_rc, -c.code);
  }
  EXPECT_FALSE(host_.acquire(host_.id_of("broken.ok")));
  EXPECT_FALSE(host_.acquire(host_.id_of("broken.bad")));
  EXPECT_EQ(served_.serving(), served_before);
  auto listed = host_.list();
  if (duplicate) {
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].name, "good");
    EXPECT_TRUE(host_.acquire(host_.id_of("good.count")));  // the first owner keeps its key
  } else {
    EXPECT_TRUE(listed.empty());
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryDefect, BrokenPluginTest,
    ::testing::Values(
        BrokenCase{"no_symbol", "not an xfp callout plugin: it exports no symbol xfp_plugin", ENOEXEC, false, false},
        BrokenCase{"wrong_abi", "built for callout ABI 2, this xfp speaks 1", ENOEXEC, false, false},
        BrokenCase{"small_descriptor", "its xfp_plugin descriptor is 24 bytes, callout ABI 1 needs 40", ENOEXEC, false,
                   false},
        BrokenCase{"no_name", "the plugin has no name", EINVAL, false, false},
        BrokenCase{"no_init", "plugin broken-no_init has no init function", EINVAL, false, false},
        BrokenCase{"init_einval", "init failed: Invalid argument (config \"x\" is not a number)", EINVAL, true, false},
        BrokenCase{"no_classify", "callout broken.bad: no classify hook", EINVAL, true, true},
        BrokenCase{"no_notify", "callout broken.bad: no notify hook", EINVAL, true, true},
        BrokenCase{"flow_without_delete", "callout broken.bad: conditional on flow but no flow_delete hook", EINVAL,
                   true, true},
        BrokenCase{"bad_key", "callout key \"bad key!\" has the character ' ' (allowed: A-Z a-z 0-9 _ . -)", EINVAL,
                   true, true},
        BrokenCase{"duplicate_key", "callout key good.count is already registered by plugin good", EEXIST, true, true},
        BrokenCase{"unknown_flags", "callout broken.bad: unknown flag bits 0x80", EINVAL, true, true}),
    [](const ::testing::TestParamInfo<BrokenCase>& info) { return std::string(info.param.defect); });

TEST_F(CalloutHostTest, AFailureToMarkServedRollsTheLoadBack) {
  PluginProbe probe(good_);
  served_.refuse_id = host_.id_of("good.veto");  // the second callout
  auto loaded = host_.load(good_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().code, EIO);
  EXPECT_EQ(loaded.error().message, good_ + ": marking callout good.veto served: kernel says no");
  // good.count was marked served, then unserved again.
  uint16_t count_id = host_.id_of("good.count");
  EXPECT_EQ(served_.events, (std::vector<std::pair<uint16_t, bool>>{{count_id, true}, {count_id, false}}));
  expect_nothing_registered({"good.count", "good.veto"});
  EXPECT_EQ(probe.good().fini_calls, 1);
  EXPECT_EQ(probe.good().live, 0);

  served_.refuse_id = 0;
  EXPECT_TRUE(host_.load(good_).ok());  // nothing was left behind to collide with
}

TEST_F(CalloutHostTest, NotifyPassesFiltersAndCarriesARefusal) {
  PluginProbe probe(good_);
  ASSERT_TRUE(host_.load(good_).ok());
  const good_plugin_state& state = probe.good();

  Filter filter;
  filter.id = 7;
  filter.name = "web";
  filter.action = Action::CalloutTerminating;
  filter.callout = "good.veto";
  filter.context = 1;
  EXPECT_TRUE(host_.notify(XFP_NOTIFY_FILTER_ADD, filter).ok());
  EXPECT_EQ(state.notify_adds, 1);

  filter.context = 666;
  auto refused = host_.notify(XFP_NOTIFY_FILTER_ADD, filter);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, EPERM);
  EXPECT_EQ(refused.error().message,
            "callout good.veto refused filter 7 (web): Operation not permitted (context 666 is not for me)");

  EXPECT_TRUE(host_.notify(XFP_NOTIFY_FILTER_DELETE, filter).ok());
  EXPECT_EQ(state.notify_deletes, 1);

  Filter unloaded = filter;
  unloaded.callout = "not.loaded";
  EXPECT_TRUE(host_.notify(XFP_NOTIFY_FILTER_ADD, unloaded).ok());
  Filter plain = filter;
  plain.action = Action::Permit;
  plain.callout.clear();
  EXPECT_TRUE(host_.notify(XFP_NOTIFY_FILTER_ADD, plain).ok());
  EXPECT_EQ(state.notify_adds, 2);  // context 1 and 666: the other two never reached the plugin
}

TEST_F(CalloutHostTest, WithoutInjectionServiceInjectionIsRefused) {
  const xfp_host_api& api = CalloutHost::api();
  EXPECT_EQ(api.abi_version, uint32_t{XFP_CALLOUT_ABI_VERSION});
  EXPECT_EQ(api.size, sizeof(xfp_host_api));
  xfp_frame* f = frame_alloc(60);
  EXPECT_EQ(api.inject_send(nullptr, 1, f, 0, nullptr, nullptr), XFP_STATUS_NOT_READY);
  EXPECT_EQ(api.inject_receive(nullptr, 1, f, 0, nullptr, nullptr), XFP_STATUS_NOT_READY);
  xfp_classify_item item{};
  item.frame = f;
  uint64_t ctx = 99;
  EXPECT_EQ(api.injection_state(nullptr, &item, &ctx), XFP_NOT_INJECTED);
  EXPECT_EQ(ctx, 0u);
  frame_free(f);
}

TEST_F(CalloutHostTest, InjectionHandlesGoThroughTheServiceAndDieWithThePlugin) {
  FakeInjection injection;
  host_.set_injection_service(&injection);
  PluginProbe probe(good_);
  const good_plugin_state& state = probe.good();

  ASSERT_TRUE(host_.load(good_).ok());
  EXPECT_EQ(state.handle_rc, 0);
  ASSERT_EQ(injection.live.size(), 1u);
  EXPECT_EQ(injection.live.begin()->second, "good");
  const xfp_host_api& api = CalloutHost::api();
  EXPECT_EQ(api.inject_send(injection.live.begin()->first, 1, nullptr, 0, nullptr, nullptr), -EIO);
  EXPECT_EQ(api.injection_state(nullptr, nullptr, nullptr), XFP_INJECTED_BY_OTHER);
  ASSERT_TRUE(host_.unload("good").ok());
  EXPECT_TRUE(injection.live.empty());  // fini destroyed it
  EXPECT_EQ(injection.destroyed_all_of, std::vector<std::string>{"good"});

  // A plugin that leaves its handle: the host destroys it, after fini.
  int64_t fini_seen = -1;
  size_t live_seen = 0;
  injection.before_destroy_all = [&](const std::string&) {
    fini_seen = state.fini_calls;
    live_seen = injection.live.size();
  };
  ASSERT_TRUE(host_.load(good_, "leave-handle").ok());
  ASSERT_TRUE(host_.unload("good").ok());
  EXPECT_EQ(fini_seen, 2);
  EXPECT_EQ(live_seen, 1u);
  EXPECT_TRUE(injection.live.empty());
  host_.set_injection_service(nullptr);
}

TEST_F(CalloutHostTest, InterfacesResolveThroughTheDaemon) {
  const xfp_host_api& api = CalloutHost::api();
  EXPECT_EQ(api.iface_by_name("eth0"), 0u);
  host_.set_iface_resolver([](const std::string& name) { return name == "eth0" ? 7u : 0u; });
  EXPECT_EQ(api.iface_by_name("eth0"), 7u);
  EXPECT_EQ(api.iface_by_name("eth1"), 0u);
  EXPECT_EQ(api.iface_by_name(nullptr), 0u);
}

TEST(CalloutIds, StableAndExhaustible) {
  CalloutHost host;
  CalloutIdFn id_of = host.id_fn();
  for (uint32_t i = 1; i < XFP_MAX_CALLOUTS; ++i) ASSERT_EQ(id_of("key" + std::to_string(i)), i);
  EXPECT_EQ(id_of("key1"), 1);
  EXPECT_EQ(id_of("one.too.many"), 0);
  EXPECT_EQ(id_of("one.too.many"), 0);
  EXPECT_EQ(id_of(("key" + std::to_string(XFP_MAX_CALLOUTS - 1))), XFP_MAX_CALLOUTS - 1);
}

// Workers call good.count in a loop while the control thread unloads: once
// unload has returned no call may start, and none may still run after fini
// (the plugin's classify counts calls that see its fini flag).
TEST_F(CalloutHostTest, NoCallAfterUnloadReturns) {
  PluginProbe probe(good_);
  const good_plugin_state& state = probe.good();
  const uint16_t id = host_.id_of("good.count");
  for (int round = 0; round < 20; ++round) {
    ASSERT_TRUE(host_.load(good_).ok());
    std::atomic<bool> unloaded{false}, stop{false};
    std::atomic<int64_t> calls{0}, late{0};
    auto worker = [&] {
      xfp_classify_item item{};
      xfp_filter_info info{};
      while (!stop.load()) {
        bool after_unload = unloaded.load();
        CalloutRef callout = host_.acquire(id);
        if (!callout) continue;
        if (after_unload) ++late;
        callout.classify(&info, &item, 1);
        ++calls;
      }
    };
    std::thread a(worker), b(worker);
    while (calls.load() < 200) std::this_thread::yield();
    ASSERT_TRUE(host_.unload("good").ok());
    unloaded = true;
    int64_t at_unload = calls.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    stop = true;
    a.join();
    b.join();
    EXPECT_EQ(late.load(), 0) << "round " << round;
    EXPECT_EQ(calls.load(), at_unload) << "round " << round;
    EXPECT_EQ(state.calls_while_finalised, 0) << "round " << round;
  }
  EXPECT_EQ(state.fini_calls, 20);
}

}  // namespace
}  // namespace xfp

namespace xfp {
namespace {

// The loader's checks on their own (check_plugin_info, check_callout): what
// load() and register_callout() refuse, and the words they use.
int test_init(const xfp_host_api*, xfp_host*, const char*, void**) { return 0; }

TEST(PluginChecks, TheDescriptorIsCheckedInOrder) {
  xfp_plugin_info info{XFP_CALLOUT_ABI_VERSION, sizeof(xfp_plugin_info), "fine", nullptr, &test_init, nullptr};
  EXPECT_TRUE(check_plugin_info(info).ok());
  info.size = 24;
  auto st = check_plugin_info(info);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ENOEXEC);
  EXPECT_EQ(st.error().message, "its xfp_plugin descriptor is 24 bytes, callout ABI 1 needs 40");
  info.size = sizeof(xfp_plugin_info);
  info.name = "bad name";
  st = check_plugin_info(info);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, EINVAL);
  EXPECT_EQ(st.error().message, "plugin name \"bad name\" has the character ' ' (allowed: A-Z a-z 0-9 _ . -)");
  info.name = "fine";
  info.init = nullptr;
  EXPECT_EQ(check_plugin_info(info).error().message, "plugin fine has no init function");
}

// Found by fuzz/fuzz_plugin_check.cpp: a name longer than 63 bytes was
// quoted raw in the error (its first 20 bytes), so control characters (a
// terminal escape) went into the log and the CLI's output.
TEST(PluginChecks, ALongNameIsQuotedPrintable) {
  const std::string name = "\x1b[31mred" + std::string(70, 'n');
  xfp_plugin_info info{XFP_CALLOUT_ABI_VERSION, sizeof(xfp_plugin_info), name.c_str(), nullptr, &test_init, nullptr};
  auto st = check_plugin_info(info);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, EINVAL);
  EXPECT_EQ(st.error().message, "plugin name \"?[31mrednnnnnnnnnnnn...\" is longer than 63 bytes");
  xfp_callout c{};
  c.key = name.c_str();
  auto cs = check_callout(&c);
  ASSERT_FALSE(cs.ok());
  EXPECT_EQ(cs.error().message, "callout key \"?[31mrednnnnnnnnnnnn...\" is longer than 63 bytes");
}

}  // namespace
}  // namespace xfp
