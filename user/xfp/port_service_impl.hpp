// The daemon's PortService: the plugin ABI's message ports (port_create,
// port_close, port_send of include/xfp/callout.h) on top of
// MessagePortServer (xfp/message_port.hpp), one server per plugin port.
//
// Handles. The xfp_port* a plugin holds is not a pointer but a number that
// is never reused (1, 2, ...): a send on a port already closed (a plugin
// thread racing its own port_close) finds nothing and returns
// XFP_STATUS_SHUTTING_DOWN instead of touching freed memory or, worse, a new
// port that happens to sit at the same address.
//
// Lifetime. A send holds a reference to its port for the whole wait, so a
// close (port_close, close_all_of at unload, shutdown) can stop the server
// (every waiting sender is released with XFP_STATUS_SHUTTING_DOWN) while the
// senders are still inside send(): the server is freed by whichever of them
// lets go last. The daemon calls shutdown() before it unloads the plugins, so
// a plugin's fini that joins a thread blocked in port_send does not hang.
//
// The ABI's timeout: NULL or 0 waits without end; negative is a relative
// duration in ns; positive an absolute CLOCK_REALTIME time in ns (the seed's
// LARGE_INTEGER, in ns instead of 100 ns units). Waits longer than about 30
// years are taken as without end (no clock arithmetic overflows).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "xfp/message_port.hpp"
#include "xfp/port_service.hpp"

namespace xfp {

struct PortServiceOptions {
  std::string dir = XFP_PORT_DEFAULT_DIR;  // `xfp daemon --port-dir`
  std::optional<gid_t> group;              // `xfp daemon --port-group`: members may connect too
  size_t max_pending = 64;                 // senders waiting per client (more: INSUFFICIENT_RESOURCES)
};

// The conversion of the ABI's timeout_ns (see the header comment).
port::Deadline deadline_from_abi(const int64_t* timeout_ns);
// SendStatus as the ABI's return value.
int status_to_abi(port::SendStatus s);

class MessagePortService final : public PortService {
 public:
  explicit MessagePortService(PortServiceOptions options = {});
  ~MessagePortService() override;  // shutdown()
  MessagePortService(const MessagePortService&) = delete;
  MessagePortService& operator=(const MessagePortService&) = delete;

  int create_port(const std::string& plugin, const char* name, uint32_t max_connections, const xfp_port_ops* ops,
                  void* port_ctx, xfp_port** port) noexcept override;
  void close_port(xfp_port* port) noexcept override;
  int send(xfp_port* port, uint64_t client, const void* message, uint32_t len, void* reply, uint32_t* reply_len,
           const int64_t* timeout_ns) noexcept override;
  void close_all_of(const std::string& plugin) noexcept override;

  // The daemon is stopping: every port stops (waiting senders get
  // XFP_STATUS_SHUTTING_DOWN, clients are closed and their disconnect
  // callbacks run); from then on sends return XFP_STATUS_SHUTTING_DOWN and
  // port_create fails with it. The ports stay listed until closed.
  void shutdown() noexcept;

  struct PortInfo {
    std::string plugin;
    std::string name;
    std::string path;
    size_t clients = 0;
    port::Stats stats;
  };
  std::vector<PortInfo> list() const;
  const PortServiceOptions& options() const { return options_; }

  struct Port;  // port_service.cpp

 private:
  std::shared_ptr<Port> find(xfp_port* port) const;

  PortServiceOptions options_;
  mutable std::mutex mu_;  // ports_, next_, shut_down_; never held across a server call
  std::unordered_map<uintptr_t, std::shared_ptr<Port>> ports_;
  uintptr_t next_ = 1;
  bool shut_down_ = false;
};

}  // namespace xfp
