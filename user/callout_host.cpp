// The callout host (see xfp/callout_host.hpp).
#include "xfp/callout_host.hpp"

#include <dlfcn.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <utility>

#include "xfp/frame.hpp"

// The ABI's opaque plugin handle. xfp::Plugin derives from it, so the table's
// functions get back to the plugin with a static_cast.
struct xfp_host {};

namespace xfp {

namespace {

constexpr size_t kMaxNameBytes = 63;  // callout keys and plugin names

// The process's host, for the table functions that get no host argument.
std::atomic<CalloutHost*> g_process_host{nullptr};

// Owns a dlopen handle.
class LibraryHandle {
 public:
  LibraryHandle() = default;
  explicit LibraryHandle(void* handle) : handle_(handle) {}
  LibraryHandle(const LibraryHandle&) = delete;
  LibraryHandle& operator=(const LibraryHandle&) = delete;
  LibraryHandle(LibraryHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  LibraryHandle& operator=(LibraryHandle&& other) noexcept {
    if (this != &other) {
      close();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  ~LibraryHandle() { close(); }
  void* get() const { return handle_; }

 private:
  void close() {
    if (handle_ && dlclose(handle_) != 0) spdlog::warn("dlclose: {}", dlerror());
    handle_ = nullptr;
  }
  void* handle_ = nullptr;
};

// What went wrong with a callout key or plugin name, if anything.
std::optional<std::string> name_problem(const char* what, const char* name) {
  // A name is quoted in errors (logs, the CLI) only through this: a bad one
  // may hold control characters (a terminal escape).
  auto printable = [&](size_t n) {
    std::string out;
    for (size_t j = 0; j < n; ++j) out += std::isprint(static_cast<unsigned char>(name[j])) ? name[j] : '?';
    return out;
  };
  size_t len = strnlen(name, kMaxNameBytes + 1);
  if (len == 0) return fmt::format("{} is empty", what);
  if (len > kMaxNameBytes)
    return fmt::format("{} \"{}...\" is longer than {} bytes", what, printable(20), kMaxNameBytes);
  for (size_t i = 0; i < len; ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-') continue;
    std::string shown = std::isprint(c) ? fmt::format("'{}'", static_cast<char>(c)) : fmt::format("byte {:#04x}", c);
    return fmt::format("{} \"{}\" has the character {} (allowed: A-Z a-z 0-9 _ . -)", what, printable(len), shown);
  }
  return std::nullopt;
}

// An ABI return code in words: strerror for errnos, names for XFP_STATUS_*.
std::string status_text(int rc) {
  switch (rc) {
    case XFP_STATUS_NOT_READY: return "not ready (XFP_STATUS_NOT_READY)";
    case XFP_STATUS_HANDLE_CLOSING: return "handle closing (XFP_STATUS_HANDLE_CLOSING)";
    case XFP_STATUS_HANDLE_STALE: return "handle stale (XFP_STATUS_HANDLE_STALE)";
    case XFP_STATUS_DROPPED: return "dropped (XFP_STATUS_DROPPED)";
    case XFP_STATUS_PORT_DISCONNECTED: return "port disconnected (XFP_STATUS_PORT_DISCONNECTED)";
    case XFP_STATUS_BUFFER_OVERFLOW: return "buffer overflow (XFP_STATUS_BUFFER_OVERFLOW)";
    case XFP_STATUS_INSUFFICIENT_RESOURCES: return "insufficient resources (XFP_STATUS_INSUFFICIENT_RESOURCES)";
    case XFP_STATUS_SHUTTING_DOWN: return "shutting down (XFP_STATUS_SHUTTING_DOWN)";
    case XFP_STATUS_TIMEOUT: return "timeout (XFP_STATUS_TIMEOUT)";
    default: break;
  }
  if (rc < 0 && rc > -4096) return std::strerror(-rc);
  return fmt::format("returned {}", rc);
}

// The errno an ABI return code becomes in an Error.
int error_code_of(int rc) { return rc < 0 && rc > -4096 ? -rc : EINVAL; }

// dlerror() text usually starts with the path; the message names it already.
std::string dlerror_without_path(const std::string& path) {
  const char* e = dlerror();
  std::string text = e ? e : "unknown dlopen error";
  if (text.rfind(path + ": ", 0) == 0) text.erase(0, path.size() + 2);
  return text;
}

std::string describe_filter(const Filter& f) {
  return f.name.empty() ? fmt::format("filter {}", f.id) : fmt::format("filter {} ({})", f.id, f.name);
}

}  // namespace

// The descriptor and callout checks, pure (no host state) so that the fuzz
// target fuzz/fuzz_plugin_check.cpp can run them on made-up descriptors.
Status check_plugin_info(const xfp_plugin_info& info) {
  // abi_version and size come first in every version of the descriptor.
  if (info.abi_version != XFP_CALLOUT_ABI_VERSION)
    return make_error(ENOEXEC, fmt::format("built for callout ABI {}, this xfp speaks {}", info.abi_version,
                                           XFP_CALLOUT_ABI_VERSION));
  if (info.size < sizeof(xfp_plugin_info))
    return make_error(ENOEXEC, fmt::format("its {} descriptor is {} bytes, callout ABI {} needs {}", XFP_PLUGIN_SYMBOL,
                                           info.size, XFP_CALLOUT_ABI_VERSION, sizeof(xfp_plugin_info)));
  if (!info.name) return make_error(EINVAL, "the plugin has no name");
  if (auto problem = name_problem("plugin name", info.name)) return make_error(EINVAL, *problem);
  if (!info.init) return make_error(EINVAL, fmt::format("plugin {} has no init function", info.name));
  return Ok{};
}

Status check_callout(const xfp_callout* callout) {
  if (!callout) return make_error(EINVAL, "register_callout without a callout");
  if (!callout->key) return make_error(EINVAL, "a callout without a key");
  if (auto problem = name_problem("callout key", callout->key)) return make_error(EINVAL, *problem);
  const char* key = callout->key;
  if (uint32_t unknown = callout->flags & ~static_cast<uint32_t>(XFP_CALLOUT_KNOWN_FLAGS))
    return make_error(EINVAL, fmt::format("callout {}: unknown flag bits {:#x}", key, unknown));
  if (!callout->classify) return make_error(EINVAL, fmt::format("callout {}: no classify hook", key));
  if (!callout->notify) return make_error(EINVAL, fmt::format("callout {}: no notify hook", key));
  if ((callout->flags & XFP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW) && !callout->flow_delete)
    return make_error(EINVAL, fmt::format("callout {}: conditional on flow but no flow_delete hook", key));
  return Ok{};
}

// A loaded plugin (or one being loaded).
class Plugin : public xfp_host {
 public:
  LibraryHandle library;  // first member: closed after every other one is gone
  CalloutHost* owner = nullptr;
  std::string name;
  std::string description;
  std::string path;
  uint32_t abi_version = 0;
  const xfp_plugin_info* info = nullptr;
  void* context = nullptr;  // from init, for fini
  bool init_succeeded = false;
  std::vector<std::unique_ptr<RegisteredCallout>> callouts;
  // The first registration that was refused fails the load with this.
  std::optional<Error> registration_error;

  // The last error-level log line (for load and notify errors); lines may
  // come from any thread.
  void note_error_line(std::string line) {
    std::lock_guard lock(log_mutex_);
    last_error_line_ = std::move(line);
    ++error_lines_;
  }
  uint64_t error_lines() const {
    std::lock_guard lock(log_mutex_);
    return error_lines_;
  }
  // " (line)" when an error line was logged since `since` error_lines(), else "".
  std::string error_line_since(uint64_t since) const {
    std::lock_guard lock(log_mutex_);
    return error_lines_ != since ? " (" + last_error_line_ + ")" : std::string();
  }

  PluginRecord record() const {
    PluginRecord r{name, description, path, abi_version, {}};
    for (const auto& c : callouts) r.callouts.push_back({c->key, c->id, c->flags, c->description});
    return r;
  }

 private:
  mutable std::mutex log_mutex_;
  std::string last_error_line_;
  uint64_t error_lines_ = 0;
};

// ---- the function table --------------------------------------------------------------
// C entry points: nothing may throw out of them.

struct HostApiCalls {
  static int register_callout(xfp_host* host, const xfp_callout* callout, uint32_t* callout_id) noexcept {
    if (!host) return -EINVAL;
    auto* plugin = static_cast<Plugin*>(host);
    try {
      return plugin->owner->register_callout(*plugin, callout, callout_id);
    } catch (...) {
      return -ENOMEM;
    }
  }

  static InjectionService* process_injection() noexcept {
    CalloutHost* host = g_process_host.load(std::memory_order_acquire);
    return host ? host->injection_.load(std::memory_order_acquire) : nullptr;
  }

  // The handle type is the service's to check: it knows which types it serves.
  static int injection_handle_create(xfp_host* host, uint32_t type, xfp_injection_handle** handle) noexcept {
    if (!host || !handle) return -EINVAL;
    auto* plugin = static_cast<Plugin*>(host);
    InjectionService* service = plugin->owner->injection_.load(std::memory_order_acquire);
    if (!service) return -EOPNOTSUPP;
    return service->create_handle(plugin->name, type, handle);
  }

  static void injection_handle_destroy(xfp_injection_handle* handle) noexcept {
    if (!handle) return;
    if (InjectionService* service = process_injection()) service->destroy_handle(handle);
  }

  static int inject_receive(xfp_injection_handle* handle, uint32_t iface, xfp_frame* frames, uint64_t inject_context,
                            xfp_inject_complete_fn complete, void* completion_ctx) noexcept {
    InjectionService* service = process_injection();
    if (!service) return XFP_STATUS_NOT_READY;
    return service->inject_receive(handle, iface, frames, inject_context, complete, completion_ctx);
  }

  static int inject_send(xfp_injection_handle* handle, uint32_t iface, xfp_frame* frames, uint64_t inject_context,
                         xfp_inject_complete_fn complete, void* completion_ctx) noexcept {
    InjectionService* service = process_injection();
    if (!service) return XFP_STATUS_NOT_READY;
    return service->inject_send(handle, iface, frames, inject_context, complete, completion_ctx);
  }

  static xfp_injection_state injection_state(const xfp_injection_handle* handle, const xfp_classify_item* item,
                                             uint64_t* inject_context) noexcept {
    InjectionService* service = process_injection();
    if (service) return service->injection_state(handle, item, inject_context);
    if (inject_context) *inject_context = 0;  // nothing can have been injected
    return XFP_NOT_INJECTED;
  }

  static uint32_t iface_by_name(const char* ifname) noexcept {
    CalloutHost* host = g_process_host.load(std::memory_order_acquire);
    if (!host || !ifname) return 0;
    try {
      CalloutHost::IfaceResolver resolver;
      {
        std::lock_guard lock(host->resolver_mutex_);
        resolver = host->iface_resolver_;
      }
      return resolver ? resolver(ifname) : 0;
    } catch (...) {
      return 0;
    }
  }

  // ---- flows: forwarded to the FlowService; redirect records: to the RedirectService ----

  // The plugin's own callout with this id, or null.
  static const RegisteredCallout* own_callout(xfp_host* host, uint32_t callout_id) noexcept {
    if (!host) return nullptr;
    auto* plugin = static_cast<Plugin*>(host);
    for (const auto& c : plugin->callouts)
      if (c->id == callout_id) return c.get();
    return nullptr;
  }

  static int flow_associate_context(xfp_host* host, uint64_t flow_handle, uint8_t layer, uint32_t callout_id,
                                    uint64_t context) noexcept {
    const RegisteredCallout* callout = own_callout(host, callout_id);
    if (!callout) return -EINVAL;
    FlowService* flows = static_cast<Plugin*>(host)->owner->flows_.load(std::memory_order_acquire);
    if (!flows) return -EOPNOTSUPP;
    return flows->associate_context(*callout, flow_handle, layer, context);
  }

  static int flow_remove_context(xfp_host* host, uint64_t flow_handle, uint8_t layer, uint32_t callout_id) noexcept {
    const RegisteredCallout* callout = own_callout(host, callout_id);
    if (!callout) return -EINVAL;
    FlowService* flows = static_cast<Plugin*>(host)->owner->flows_.load(std::memory_order_acquire);
    if (!flows) return -EOPNOTSUPP;
    return flows->remove_context(*callout, flow_handle, layer);
  }

  static int flow_offload(xfp_host* host, const xfp_classify_item* item, uint32_t callout_id,
                          uint32_t verdict) noexcept {
    const RegisteredCallout* callout = own_callout(host, callout_id);
    if (!callout || !item) return -EINVAL;
    FlowService* flows = static_cast<Plugin*>(host)->owner->flows_.load(std::memory_order_acquire);
    if (!flows) return -EOPNOTSUPP;
    return flows->offload(*callout, item, verdict);
  }

  static int flow_offload_remove(xfp_host* host, uint64_t flow_handle, uint8_t layer) noexcept {
    if (!host) return -EINVAL;
    FlowService* flows = static_cast<Plugin*>(host)->owner->flows_.load(std::memory_order_acquire);
    if (!flows) return -EOPNOTSUPP;
    return flows->offload_remove(flow_handle, layer);
  }

  static RedirectService* process_redirects() noexcept {
    CalloutHost* host = g_process_host.load(std::memory_order_acquire);
    return host ? host->redirects_.load(std::memory_order_acquire) : nullptr;
  }

  static int redirect_handle_create(xfp_host* host, xfp_redirect_handle** handle) noexcept {
    if (!host || !handle) return -EINVAL;
    auto* plugin = static_cast<Plugin*>(host);
    RedirectService* redirects = plugin->owner->redirects_.load(std::memory_order_acquire);
    if (!redirects) return -EOPNOTSUPP;
    return redirects->create_handle(plugin->name, handle);
  }

  static void redirect_handle_destroy(xfp_redirect_handle* handle) noexcept {
    if (!handle) return;
    if (RedirectService* redirects = process_redirects()) redirects->destroy_handle(handle);
  }

  static xfp_redirect_state redirect_state(const xfp_redirect_handle* handle, const xfp_classify_item* item) noexcept {
    RedirectService* redirects = process_redirects();
    return redirects && handle && item ? redirects->redirect_state(handle, item) : XFP_NOT_REDIRECTED;
  }

  static int redirect_flow(xfp_redirect_handle* handle, xfp_classify_item* item, const char* ifname,
                           const void* context, uint32_t context_len, uint32_t flags) noexcept {
    if (!handle || !item || !ifname) return -EINVAL;
    RedirectService* redirects = process_redirects();
    if (!redirects) return -EOPNOTSUPP;
    return redirects->redirect_flow(handle, item, ifname, context, context_len, flags);
  }

  // ---- message ports: forwarded to the PortService ----

  static PortService* process_ports() noexcept {
    CalloutHost* host = g_process_host.load(std::memory_order_acquire);
    return host ? host->ports_.load(std::memory_order_acquire) : nullptr;
  }

  static int port_create(xfp_host* host, const char* name, uint32_t max_connections, const xfp_port_ops* ops,
                         void* port_ctx, xfp_port** port) noexcept {
    if (!host || !name || !ops || !port) return -EINVAL;
    auto* plugin = static_cast<Plugin*>(host);
    PortService* ports = plugin->owner->ports_.load(std::memory_order_acquire);
    if (!ports) return -EOPNOTSUPP;
    return ports->create_port(plugin->name, name, max_connections, ops, port_ctx, port);
  }

  static void port_close(xfp_port* port) noexcept {
    if (!port) return;
    if (PortService* ports = process_ports()) ports->close_port(port);
  }

  static int port_send(xfp_port* port, uint64_t client, const void* message, uint32_t len, void* reply,
                       uint32_t* reply_len, const int64_t* timeout_ns) noexcept {
    if (!port || (len > 0 && !message) || (reply && !reply_len)) return -EINVAL;
    PortService* ports = process_ports();
    if (!ports) return XFP_STATUS_SHUTTING_DOWN;
    return ports->send(port, client, message, len, reply, reply_len, timeout_ns);
  }

  static void log(xfp_host* host, int level, const char* message) noexcept {
    try {
      std::string text = message ? message : "(null)";
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
      auto* plugin = static_cast<Plugin*>(host);
      const std::string& name = plugin ? plugin->name : std::string("?");
      switch (level <= 0 ? 0 : level >= 3 ? 3 : level) {
        case 0: spdlog::debug("plugin {}: {}", name, text); break;
        case 1: spdlog::info("plugin {}: {}", name, text); break;
        case 2: spdlog::warn("plugin {}: {}", name, text); break;
        default:
          spdlog::error("plugin {}: {}", name, text);
          if (plugin) plugin->note_error_line(std::move(text));
          break;
      }
    } catch (...) {
    }
  }
};

namespace {
constinit const xfp_host_api kHostApi = {
    .abi_version = XFP_CALLOUT_ABI_VERSION,
    .size = sizeof(xfp_host_api),
    .register_callout = &HostApiCalls::register_callout,
    .frame_alloc = &frame_alloc,
    .frame_clone = &frame_clone,
    .frame_ref = &frame_ref,
    .frame_free = &frame_free,
    .frame_data = &frame_data,
    .frame_len = &frame_len,
    .frame_push = &frame_push,
    .frame_pull = &frame_pull,
    .frame_set_len = &frame_set_len,
    .frame_next = &frame_next,
    .frame_set_next = &frame_set_next,
    .injection_handle_create = &HostApiCalls::injection_handle_create,
    .injection_handle_destroy = &HostApiCalls::injection_handle_destroy,
    .inject_receive = &HostApiCalls::inject_receive,
    .inject_send = &HostApiCalls::inject_send,
    .injection_state = &HostApiCalls::injection_state,
    .iface_by_name = &HostApiCalls::iface_by_name,
    .log = &HostApiCalls::log,
    .flow_associate_context = &HostApiCalls::flow_associate_context,
    .flow_remove_context = &HostApiCalls::flow_remove_context,
    .flow_offload = &HostApiCalls::flow_offload,
    .flow_offload_remove = &HostApiCalls::flow_offload_remove,
    .redirect_handle_create = &HostApiCalls::redirect_handle_create,
    .redirect_handle_destroy = &HostApiCalls::redirect_handle_destroy,
    .redirect_state = &HostApiCalls::redirect_state,
    .redirect_flow = &HostApiCalls::redirect_flow,
    .port_create = &HostApiCalls::port_create,
    .port_close = &HostApiCalls::port_close,
    .port_send = &HostApiCalls::port_send,
};
}  // namespace

const xfp_host_api& CalloutHost::api() { return kHostApi; }

xfp_filter_info to_filter_info(const Filter& filter) {
  xfp_filter_info info{};
  info.id = filter.id;
  info.weight = filter.weight;
  info.context = filter.context;
  info.name = filter.name.c_str();
  info.sublayer = filter.sublayer.c_str();
  info.callout_key = filter.callout.c_str();
  info.layer = static_cast<uint8_t>(filter.layer);
  info.action = static_cast<uint8_t>(filter.action);
  info.flags = filter.flags;
  return info;
}

// ---- the host ----------------------------------------------------------------------------

CalloutHost::CalloutHost() : slots_(new CalloutSlot[XFP_MAX_CALLOUTS]) {
  if (g_process_host.exchange(this, std::memory_order_acq_rel))
    spdlog::warn("a second callout host in this process: the table functions without a host argument use the new one");
}

CalloutHost::~CalloutHost() {
  if (auto st = unload_all(); !st) spdlog::warn("{}", st.error().message);
  CalloutHost* self = this;
  g_process_host.compare_exchange_strong(self, nullptr, std::memory_order_acq_rel);
}

void CalloutHost::set_flow_service(FlowService* service) {
  std::lock_guard lock(control_mutex_);
  flows_.store(service, std::memory_order_release);
}

void CalloutHost::set_redirect_service(RedirectService* service) {
  std::lock_guard lock(control_mutex_);
  redirects_.store(service, std::memory_order_release);
}

void CalloutHost::set_port_service(PortService* service) {
  std::lock_guard lock(control_mutex_);
  ports_.store(service, std::memory_order_release);
}

void CalloutHost::set_on_served(ServedFn on_served) {
  std::lock_guard lock(control_mutex_);
  on_served_ = std::move(on_served);
}

void CalloutHost::set_injection_service(InjectionService* service) {
  std::lock_guard lock(control_mutex_);
  injection_.store(service, std::memory_order_release);
}

void CalloutHost::set_iface_resolver(IfaceResolver resolver) {
  std::lock_guard lock(resolver_mutex_);
  iface_resolver_ = std::move(resolver);
}

uint16_t CalloutHost::id_of(const std::string& key) {
  std::lock_guard lock(ids_mutex_);
  if (auto it = ids_.find(key); it != ids_.end()) return it->second;
  if (next_id_ >= XFP_MAX_CALLOUTS) {
    if (ids_refused_.insert(key).second)
      spdlog::error("callout {}: no callout id left (all {} are taken); its filters use their fail action", key,
                    XFP_MAX_CALLOUTS - 1);
    return 0;
  }
  uint16_t id = next_id_++;
  ids_.emplace(key, id);
  return id;
}

uint16_t CalloutHost::find_id(const std::string& key) const {
  std::lock_guard lock(ids_mutex_);
  auto it = ids_.find(key);
  return it == ids_.end() ? 0 : it->second;
}

const Plugin* CalloutHost::owner_of_key(const std::string& key, const Plugin& loading) const {
  auto registers = [&](const Plugin& p) {
    for (const auto& c : p.callouts)
      if (c->key == key) return true;
    return false;
  };
  for (const auto& p : plugins_)
    if (registers(*p)) return p.get();
  return registers(loading) ? &loading : nullptr;
}

int CalloutHost::register_callout(Plugin& plugin, const xfp_callout* callout, uint32_t* callout_id) {
  // try_lock: a plugin thread registering while init runs must not wait for
  // the load (init might be joining it); it is refused like any call outside init.
  std::unique_lock lock(control_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || loading_ != &plugin) {
    spdlog::error("plugin {}: register_callout outside init() is refused", plugin.name);
    return -EPERM;
  }
  auto refuse = [&](int code, std::string problem) {
    spdlog::error("plugin {}: {}", plugin.name, problem);
    if (!plugin.registration_error) plugin.registration_error = make_error(code, std::move(problem));
    return -code;
  };
  if (Status checked = check_callout(callout); !checked) return refuse(checked.error().code, checked.error().message);
  const std::string key = callout->key;
  if (const Plugin* owner = owner_of_key(key, plugin))
    return refuse(EEXIST, fmt::format("callout key {} is already registered by plugin {}", key, owner->name));
  uint16_t id = id_of(key);
  if (id == 0)
    return refuse(ENOSPC, fmt::format("callout {}: no callout id left (all {} are taken)", key, XFP_MAX_CALLOUTS - 1));

  auto registered = std::make_unique<RegisteredCallout>();
  registered->key = key;
  registered->description = callout->description ? callout->description : "";
  registered->flags = callout->flags;
  registered->id = id;
  registered->classify = callout->classify;
  registered->notify = callout->notify;
  registered->flow_delete = callout->flow_delete;
  registered->context = callout->context;
  registered->plugin = &plugin;
  plugin.callouts.push_back(std::move(registered));
  if (callout_id) *callout_id = id;
  return 0;
}

Result<PluginRecord> CalloutHost::load(const std::string& path, const std::string& config) {
  std::lock_guard lock(control_mutex_);
  auto fail = [&](int code, const std::string& problem) { return make_error(code, path + ": " + problem); };

  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return errno_error(path);
  if (!S_ISREG(st.st_mode)) return fail(EINVAL, "not a regular file");
  // The plugin directory policy, then an absolute path: dlopen searches the
  // library path for a name without a slash; this is a file.
  auto checked = check_plugin_path(plugin_policy_, path);
  if (!checked) return std::move(checked).error();
  const std::string absolute = std::move(*checked);

  dlerror();
  LibraryHandle library(dlopen(absolute.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (!library.get()) return fail(ELIBBAD, "cannot load it: " + dlerror_without_path(absolute));
  const auto* info = static_cast<const xfp_plugin_info*>(dlsym(library.get(), XFP_PLUGIN_SYMBOL));
  if (!info) return fail(ENOEXEC, "not an xfp callout plugin: it exports no symbol " XFP_PLUGIN_SYMBOL);
  if (Status checked_info = check_plugin_info(*info); !checked_info)
    return fail(checked_info.error().code, checked_info.error().message);
  for (const auto& p : plugins_)
    if (p->name == info->name)
      return fail(EEXIST, fmt::format("plugin {} is already loaded (from {})", p->name, p->path));

  auto plugin = std::make_unique<Plugin>();
  plugin->owner = this;
  plugin->name = info->name;
  plugin->description = info->description ? info->description : "";
  plugin->path = absolute;
  plugin->abi_version = info->abi_version;
  plugin->info = info;
  plugin->library = std::move(library);

  loading_ = plugin.get();
  uint64_t error_lines = plugin->error_lines();
  int rc = info->init(&kHostApi, plugin.get(), config.c_str(), &plugin->context);
  loading_ = nullptr;
  plugin->init_succeeded = rc == 0;

  // The first refused registration explains more than init's return code
  // (which is usually that refusal passed on).
  std::optional<Error> error = std::move(plugin->registration_error);
  if (!error && rc != 0)
    error = make_error(error_code_of(rc), "init failed: " + status_text(rc) + plugin->error_line_since(error_lines));

  // Publish, then tell the kernel: a punted frame then finds its callout.
  size_t served = 0;
  if (!error) {
    for (const auto& c : plugin->callouts) slots_[c->id].live.store(c.get(), std::memory_order_seq_cst);
    for (const auto& c : plugin->callouts) {
      if (on_served_) {
        if (auto st = on_served_(c->id, true); !st) {
          error = make_error(st.error().code, fmt::format("marking callout {} served: {}", c->key, st.error().message));
          break;
        }
      }
      ++served;
    }
  }
  if (error) {
    (void)retire(*plugin, served);  // its own errors are logged; the load error is the news
    return fail(error->code, error->message);
  }

  PluginRecord record = plugin->record();
  spdlog::info("loaded callout plugin {} from {} ({} callouts)", plugin->name, plugin->path, plugin->callouts.size());
  plugins_.push_back(std::move(plugin));
  return record;
}

Status CalloutHost::retire(Plugin& plugin, size_t served) {
  Status result;
  for (size_t i = 0; i < served && on_served_; ++i) {
    const RegisteredCallout& c = *plugin.callouts[i];
    if (auto st = on_served_(c.id, false); !st) {
      spdlog::error("plugin {}: marking callout {} unserved: {}", plugin.name, c.key, st.error().message);
      if (result.ok())
        result = make_error(st.error().code, fmt::format("plugin {} is unloaded, but marking callout {} unserved failed: {}",
                                                         plugin.name, c.key, st.error().message));
    }
  }
  for (const auto& c : plugin.callouts) {
    CalloutSlot& slot = slots_[c->id];
    const RegisteredCallout* expected = c.get();  // unpublished callouts (a failed load) are not there
    slot.live.compare_exchange_strong(expected, nullptr, std::memory_order_seq_cst);
  }
  for (const auto& c : plugin.callouts) {
    CalloutSlot& slot = slots_[c->id];
    auto start = std::chrono::steady_clock::now(), warned = start;
    for (unsigned spins = 0; slot.readers.load(std::memory_order_seq_cst) != 0; ++spins) {
      if (spins < 64) {
        std::this_thread::yield();
        continue;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      auto now = std::chrono::steady_clock::now();
      if (now - warned > std::chrono::seconds(5)) {
        warned = now;
        spdlog::warn("plugin {}: unloading waits for a classify of callout {} that has run for {} s", plugin.name,
                     c->key, std::chrono::duration_cast<std::chrono::seconds>(now - start).count());
      }
    }
  }
  // No classify runs now: the callouts' flow contexts end while the plugin
  // can still take their flow_delete calls.
  if (FlowService* flows = flows_.load(std::memory_order_acquire))
    for (const auto& c : plugin.callouts) flows->retire_callout(*c);
  if (plugin.init_succeeded && plugin.info->fini) plugin.info->fini(plugin.context);
  if (PortService* ports = ports_.load(std::memory_order_acquire)) ports->close_all_of(plugin.name);
  if (RedirectService* redirects = redirects_.load(std::memory_order_acquire)) redirects->destroy_all_of(plugin.name);
  if (InjectionService* service = injection_.load(std::memory_order_acquire)) service->destroy_all_of(plugin.name);
  return result;
}

Status CalloutHost::unload(const std::string& plugin_name) {
  std::lock_guard lock(control_mutex_);
  auto it = std::find_if(plugins_.begin(), plugins_.end(), [&](const auto& p) { return p->name == plugin_name; });
  if (it == plugins_.end()) return make_error(ENOENT, fmt::format("no callout plugin named {} is loaded", plugin_name));
  std::unique_ptr<Plugin> plugin = std::move(*it);
  plugins_.erase(it);
  Status st = retire(*plugin, plugin->callouts.size());
  spdlog::info("unloaded callout plugin {}", plugin->name);
  return st;  // the library closes with `plugin`
}

Status CalloutHost::unload_all() {
  std::lock_guard lock(control_mutex_);
  Status first;
  while (!plugins_.empty()) {
    Status st = unload(plugins_.back()->name);
    if (!st && first.ok()) first = std::move(st);
  }
  return first;
}

std::vector<PluginRecord> CalloutHost::list() const {
  std::lock_guard lock(control_mutex_);
  std::vector<PluginRecord> records;
  for (const auto& p : plugins_) records.push_back(p->record());
  return records;
}

Status CalloutHost::notify(xfp_notify_type type, const Filter& filter) {
  if (!is_callout(filter.action) || filter.callout.empty()) return Ok{};
  CalloutRef callout = acquire(find_id(filter.callout));
  if (!callout) return Ok{};  // not loaded: the filter uses its fail action until it is
  xfp_filter_info info = to_filter_info(filter);
  Plugin& plugin = *callout->plugin;
  uint64_t error_lines = plugin.error_lines();
  int rc = callout->notify(callout->context, type, &info);
  if (rc == 0 || type != XFP_NOTIFY_FILTER_ADD) return Ok{};
  return make_error(error_code_of(rc), fmt::format("callout {} refused {}: {}{}", callout->key, describe_filter(filter),
                                                   status_text(rc), plugin.error_line_since(error_lines)));
}

}  // namespace xfp
