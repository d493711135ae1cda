// The control protocol between `xfp` and `xfp daemon`: an AF_UNIX stream
// socket carrying messages framed as a 4-byte little-endian length followed
// by that many bytes of JSON (at most kMaxMessage).
//
//   request: {"op": "status", ...}
//   reply:   {"ok": true, ...}  or  {"ok": false, "errno": 2, "error": "no filter 'x'"}
//
// A connection may carry several requests, one after the other; each gets
// exactly one reply, in order. A malformed or oversized message gets an error
// reply and the connection is closed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "xfp/result.hpp"

namespace xfp::control {

inline constexpr uint32_t kMaxMessage = 64u << 20;  // 64 MiB, either direction
inline constexpr int kMaxDepth = 32;  // nesting of a request's arrays and objects (real requests: a few)
inline constexpr const char* kDefaultSocket = "/run/xfp/xfp.sock";

// Framing on a connected socket. Both wait at most timeout_ms for the whole
// message (-1: no limit). A length above kMaxMessage is refused before any
// buffer of that size exists.
Status send_message(int fd, const nlohmann::json& message, int timeout_ms);
Result<nlohmann::json> recv_message(int fd, int timeout_ms);

// Serialises with invalid UTF-8 replaced, so a reply can always be sent.
std::string dump(const nlohmann::json& j);

nlohmann::json ok_reply(nlohmann::json fields = nlohmann::json::object());
nlohmann::json error_reply(const Error& e);

// The CLI side: one connection, requests answered in order.
class Client {
 public:
  // Fails with "cannot reach the daemon at PATH: <strerror> (is `xfp daemon` running?)".
  static Result<Client> connect(const std::string& path, int timeout_ms = 120000);
  Client(Client&& o) noexcept;
  Client& operator=(Client&& o) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // Sends a request and waits for its reply. {"ok": false} replies come back
  // as their Error (errno and message from the daemon).
  Result<nlohmann::json> call(const nlohmann::json& request);

 private:
  Client(int fd, int timeout_ms) : fd_(fd), timeout_ms_(timeout_ms) {}
  int fd_ = -1;
  int timeout_ms_ = 120000;
};

// The daemon side. See control.cpp for the event loop's design.
class Server {
 public:
  // Runs on the serving thread; must not throw (exceptions are caught and
  // turned into error replies anyway).
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  struct Options {
    std::string path = kDefaultSocket;
    uid_t allowed_uid = 0;        // peers with another uid get an EPERM reply...
    std::optional<gid_t> group;   // ...unless in this group (xfp daemon --group): then mode 0660, else 0600
    int idle_timeout_ms = 30000;  // a connection silent (or stuck mid-message) this long is closed
    size_t max_clients = 64;      // beyond this, new connections get EBUSY
  };

  // Creates the socket (owner root, group `group` or root, mode 0660 with a
  // group and 0600 without; a missing parent directory is created 0755),
  // replacing a stale socket file but refusing when a daemon answers there.
  static Result<std::unique_ptr<Server>> listen(const Options& opts);
  ~Server();  // closes every connection and removes the socket file
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves until stop_fd becomes readable (a signalfd, an eventfd...).
  Status serve(const Handler& handler, int stop_fd);

  const std::string& path() const;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace xfp::control
