// The plugin ABI's message ports on MessagePortServer: see
// xfp/port_service_impl.hpp for handles, lifetime and the timeout rule.
#include "xfp/port_service_impl.hpp"

#include <time.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace xfp {

namespace {

// Longer waits are waits without end: steady_clock's now() plus this cannot
// overflow its int64 nanoseconds.
constexpr int64_t kForeverNs = 1'000'000'000'000'000'000;  // ~31.7 years

int64_t realtime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

bool valid_port_name(const char* name) {
  size_t n = ::strnlen(name, 64);
  if (n == 0 || n > 63 || name[0] == '.') return false;
  return std::all_of(name, name + n, [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-';
  });
}

}  // namespace

port::Deadline deadline_from_abi(const int64_t* timeout_ns) {
  if (timeout_ns == nullptr || *timeout_ns == 0) return port::Deadline::none();
  int64_t t = *timeout_ns;
  int64_t rel;
  if (t < 0) {
    rel = t == INT64_MIN ? INT64_MAX : -t;
  } else {
    // Absolute CLOCK_REALTIME. A time already past has expired (a 1 ns wait
    // that ends before anything can be waited for).
    int64_t now = realtime_ns();
    rel = t > now ? t - now : 1;
  }
  if (rel > kForeverNs) return port::Deadline::none();
  return port::Deadline(std::chrono::nanoseconds(rel));
}

int status_to_abi(port::SendStatus s) {
  switch (s) {
    case port::SendStatus::kSuccess: return XFP_STATUS_SUCCESS;
    case port::SendStatus::kTimeout: return XFP_STATUS_TIMEOUT;
    case port::SendStatus::kPortDisconnected: return XFP_STATUS_PORT_DISCONNECTED;
    case port::SendStatus::kBufferOverflow: return XFP_STATUS_BUFFER_OVERFLOW;
    case port::SendStatus::kInsufficientResources: return XFP_STATUS_INSUFFICIENT_RESOURCES;
    case port::SendStatus::kShuttingDown: return XFP_STATUS_SHUTTING_DOWN;
  }
  return -EINVAL;
}

struct MessagePortService::Port {
  std::string plugin;
  std::string name;
  xfp_port_ops ops{};  // copied: the plugin's struct may be on its stack
  void* ctx = nullptr;
  std::mutex cookies_mu;
  std::unordered_map<port::ClientId, void*> cookies;  // accepted clients' connection cookies
  std::unique_ptr<port::MessagePortServer> server;

  void* cookie_of(port::ClientId id) {
    std::lock_guard lk(cookies_mu);
    auto it = cookies.find(id);
    return it == cookies.end() ? nullptr : it->second;
  }
};

MessagePortService::MessagePortService(PortServiceOptions options) : options_(std::move(options)) {}

MessagePortService::~MessagePortService() {
  shutdown();
  std::unordered_map<uintptr_t, std::shared_ptr<Port>> ports;
  {
    std::lock_guard lk(mu_);
    ports.swap(ports_);
  }
  for (auto& [h, p] : ports)
    spdlog::warn("port {} of plugin {} was still open when the port service went", p->name, p->plugin);
}

std::shared_ptr<MessagePortService::Port> MessagePortService::find(xfp_port* port) const {
  std::lock_guard lk(mu_);
  auto it = ports_.find(reinterpret_cast<uintptr_t>(port));
  return it == ports_.end() ? nullptr : it->second;
}

int MessagePortService::create_port(const std::string& plugin, const char* name, uint32_t max_connections,
                                    const xfp_port_ops* ops, void* port_ctx, xfp_port** port) noexcept {
  if (name == nullptr || ops == nullptr || port == nullptr || max_connections == 0 || !valid_port_name(name))
    return -EINVAL;
  try {
    auto p = std::make_shared<Port>();
    p->plugin = plugin;
    p->name = name;
    p->ops = *ops;
    p->ctx = port_ctx;
    {
      std::lock_guard lk(mu_);
      if (shut_down_) return XFP_STATUS_SHUTTING_DOWN;
      for (auto& [h, other] : ports_)
        if (other->name == p->name) return -EEXIST;
    }

    // The callbacks run on the server's thread (and, for disconnects, on the
    // thread that stops it). They hold a raw pointer: the server, which calls
    // them, is owned by the Port and stopped before the Port goes.
    Port* raw = p.get();
    port::Callbacks cb;
    cb.connect = [raw](const port::ClientInfo& info,
                       const std::vector<uint8_t>& context) -> std::optional<std::string> {
      void* cookie = nullptr;
      if (raw->ops.connect) {
        int rc = raw->ops.connect(raw->ctx, info.id, context.data(), static_cast<uint32_t>(context.size()), &cookie);
        if (rc != 0)
          return fmt::format("port {}: the plugin refused the connection ({})", raw->name,
                             rc < 0 && rc > -4096 ? std::strerror(-rc) : std::to_string(rc));
      }
      std::lock_guard lk(raw->cookies_mu);
      raw->cookies[info.id] = cookie;
      return std::nullopt;
    };
    cb.disconnect = [raw](const port::ClientInfo& info) {
      void* cookie = nullptr;
      {
        std::lock_guard lk(raw->cookies_mu);
        auto it = raw->cookies.find(info.id);
        if (it == raw->cookies.end()) return;
        cookie = it->second;
        raw->cookies.erase(it);
      }
      if (raw->ops.disconnect) raw->ops.disconnect(raw->ctx, info.id, cookie);
    };
    cb.message_status = [raw](const port::ClientInfo& info, const std::vector<uint8_t>& in,
                              std::vector<uint8_t>& reply) -> int {
      if (!raw->ops.message) return ENOTSUP;
      reply.resize(XFP_PORT_MAX_MESSAGE);
      uint32_t out_len = 0;
      int rc = raw->ops.message(raw->ctx, info.id, raw->cookie_of(info.id), in.data(), static_cast<uint32_t>(in.size()),
                                reply.data(), static_cast<uint32_t>(reply.size()), &out_len);
      if (rc != 0) {
        reply.clear();
        return rc < 0 && rc > -4096 ? -rc : EIO;  // XFP_STATUS_* are no errno: the client sees EIO
      }
      reply.resize(std::min<size_t>(out_len, XFP_PORT_MAX_MESSAGE));
      return 0;
    };

    port::Options o;
    o.dir = options_.dir;
    o.name = p->name;
    o.max_connections = max_connections;
    o.group = options_.group;
    o.max_pending = options_.max_pending;
    auto server = port::MessagePortServer::create(o, std::move(cb));
    if (!server) {
      const Error& e = server.error();
      spdlog::warn("plugin {}: creating port {}: {}", plugin, p->name, e.message);
      return e.code == EADDRINUSE ? -EEXIST : -e.code;
    }
    p->server = std::move(*server);

    std::lock_guard lk(mu_);
    for (auto& [h, other] : ports_)
      if (other->name == p->name) return -EEXIST;  // raced with another create: ours goes (its socket is not
                                                    // the other's: the server refused a live one)
    if (shut_down_) return XFP_STATUS_SHUTTING_DOWN;
    uintptr_t handle = next_++;
    spdlog::info("plugin {}: port {} at {} (at most {} connections)", plugin, p->name, p->server->path(),
                 max_connections);
    ports_.emplace(handle, std::move(p));
    *port = reinterpret_cast<xfp_port*>(handle);
    return 0;
  } catch (const std::exception& e) {
    spdlog::error("plugin {}: creating a port: {}", plugin, e.what());
    return -ENOMEM;
  }
}

void MessagePortService::close_port(xfp_port* port) noexcept {
  std::shared_ptr<Port> p;
  {
    std::lock_guard lk(mu_);
    auto it = ports_.find(reinterpret_cast<uintptr_t>(port));
    if (it == ports_.end()) return;
    p = std::move(it->second);
    ports_.erase(it);
  }
  p->server->stop();  // senders released, clients closed, disconnect callbacks run here
}

int MessagePortService::send(xfp_port* port, uint64_t client, const void* message, uint32_t len, void* reply,
                             uint32_t* reply_len, const int64_t* timeout_ns) noexcept {
  if ((len > 0 && message == nullptr) || (reply != nullptr && reply_len == nullptr)) return -EINVAL;
  std::shared_ptr<Port> p = find(port);
  if (!p) return XFP_STATUS_SHUTTING_DOWN;  // closed (or never a port)
  size_t got = 0;
  port::SendStatus s;
  try {
    s = p->server->send(client, message, len, reply, reply ? *reply_len : 0, reply ? &got : nullptr,
                        deadline_from_abi(timeout_ns));
  } catch (const std::exception&) {  // std::bad_alloc building the frame
    return XFP_STATUS_INSUFFICIENT_RESOURCES;
  }
  if (reply != nullptr)
    *reply_len = (s == port::SendStatus::kSuccess || s == port::SendStatus::kBufferOverflow)
                     ? static_cast<uint32_t>(got)
                     : 0;
  return status_to_abi(s);
}

void MessagePortService::close_all_of(const std::string& plugin) noexcept {
  std::vector<std::shared_ptr<Port>> mine;
  {
    std::lock_guard lk(mu_);
    for (auto it = ports_.begin(); it != ports_.end();) {
      if (it->second->plugin == plugin) {
        mine.push_back(std::move(it->second));
        it = ports_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& p : mine) {
    spdlog::info("plugin {}: closing port {} it left open", plugin, p->name);
    p->server->stop();
  }
}

void MessagePortService::shutdown() noexcept {
  std::vector<std::shared_ptr<Port>> all;
  {
    std::lock_guard lk(mu_);
    shut_down_ = true;
    for (auto& [h, p] : ports_) all.push_back(p);
  }
  for (auto& p : all) p->server->stop();
}

std::vector<MessagePortService::PortInfo> MessagePortService::list() const {
  std::vector<std::shared_ptr<Port>> all;
  {
    std::lock_guard lk(mu_);
    for (auto& [h, p] : ports_) all.push_back(p);
  }
  std::vector<PortInfo> out;
  for (auto& p : all) out.push_back({p->plugin, p->name, p->server->path(), p->server->clients().size(), p->server->stats()});
  std::sort(out.begin(), out.end(), [](const PortInfo& a, const PortInfo& b) { return a.name < b.name; });
  return out;
}

}  // namespace xfp
