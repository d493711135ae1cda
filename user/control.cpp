// The control socket: framing, the CLI's client, and the daemon's server.
//
// Server design: one thread, one poll() loop, every socket non-blocking.
// Each connection keeps its partial input and pending output, so a client
// that sends half a message, sends garbage, or never reads its reply costs a
// buffer, never a blocked daemon. Requests are handled on the loop thread one
// at a time: that serialises every policy change without locks, and a
// transaction (compile + install) is the only slow step. Input is read only
// up to the end of the current message and not at all while a reply is
// waiting to be sent, so a connection's memory is bounded by one message in
// each direction. Connections idle (or stuck mid-message) for
// idle_timeout_ms are closed.
#include "xfp/control.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <list>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "xfp/least_privilege.hpp"

namespace xfp::control {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr size_t kChunk = 64 * 1024;

std::string frame(const std::string& body) {
  std::string out(4, '\0');
  const auto n = static_cast<uint32_t>(body.size());
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += body;
  return out;
}

uint32_t read_le32(const std::string& s) {
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<unsigned char>(s[i])) << (8 * i);
  return n;
}

Error too_large(uint64_t n) {
  return make_error(EMSGSIZE, "message of " + std::to_string(n) + " bytes exceeds the limit of " +
                                  std::to_string(kMaxMessage) + " bytes");
}

// Milliseconds left until `deadline`, for poll(); -1 when there is no deadline.
int remaining_ms(const std::optional<Clock::time_point>& deadline) {
  if (!deadline) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

std::optional<Clock::time_point> deadline_in(int timeout_ms) {
  if (timeout_ms < 0) return std::nullopt;
  return Clock::now() + std::chrono::milliseconds(timeout_ms);
}

// Waits until fd is ready for `events`; ETIMEDOUT when the deadline passes.
Status wait_fd(int fd, short events, const std::optional<Clock::time_point>& deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, remaining_ms(deadline));
    if (r > 0) return Ok{};
    if (r == 0) return make_error(ETIMEDOUT, "timed out waiting for the other side");
    if (errno != EINTR) return errno_error("poll");
  }
}

Status write_all(int fd, const std::string& data, const std::optional<Clock::time_point>& deadline) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      XFP_TRY(wait_fd(fd, POLLOUT, deadline));
    } else if (errno != EINTR) {
      return errno_error("sending");
    }
  }
  return Ok{};
}

// Appends exactly `want` bytes to `out`, growing it as data arrives.
Status read_exact(int fd, std::string& out, size_t want, const std::optional<Clock::time_point>& deadline) {
  char buf[kChunk];
  while (want > 0) {
    ssize_t n = ::recv(fd, buf, std::min(want, sizeof buf), 0);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      want -= static_cast<size_t>(n);
    } else if (n == 0) {
      return make_error(ECONNRESET, "the connection was closed before a complete message arrived");
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      XFP_TRY(wait_fd(fd, POLLIN, deadline));
    } else if (errno != EINTR) {
      return errno_error("receiving");
    }
  }
  return Ok{};
}

// Deeper than `limit` levels of arrays and objects? A linear scan of the raw
// bytes (strings skipped) before the parser runs: a request nested a million
// levels deep is refused without building it (the serialiser and the
// request's readers recurse).
bool too_deep(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char ch : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = true;
      else if (ch == '"') in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > limit) return true;
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
  return false;
}

// Is the peer root, or in `group` (its primary gid or, through
// SO_PEERGROUPS, a supplementary one, as they were at connect())?
bool peer_in_group(int fd, const ucred& cred, gid_t group) {
  if (cred.gid == group) return true;
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 2; ++attempt) {
    socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      return std::find(groups.begin(), groups.end(), group) != groups.end();
    }
    if (errno != ERANGE) return false;
    groups.resize(len / sizeof(gid_t) + 1);
  }
  return false;
}

Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return make_error(ENAMETOOLONG, "socket path '" + path + "' is empty or longer than " +
                                        std::to_string(sizeof addr.sun_path - 1) + " bytes");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json ok_reply(json fields) {
  if (!fields.is_object()) fields = json::object();
  fields["ok"] = true;
  return fields;
}

json error_reply(const Error& e) {
  return json{{"ok", false}, {"errno", e.code}, {"error", e.message}};
}

Status send_message(int fd, const json& message, int timeout_ms) {
  std::string body = dump(message);
  if (body.size() > kMaxMessage) return too_large(body.size());
  return write_all(fd, frame(body), deadline_in(timeout_ms));
}

Result<json> recv_message(int fd, int timeout_ms) {
  auto deadline = deadline_in(timeout_ms);
  std::string header;
  XFP_TRY(read_exact(fd, header, 4, deadline));
  uint32_t len = read_le32(header);
  if (len > kMaxMessage) return too_large(len);
  std::string body;
  XFP_TRY(read_exact(fd, body, len, deadline));
  if (too_deep(body, kMaxDepth))
    return make_error(EBADMSG, "malformed message: nested deeper than " + std::to_string(kMaxDepth) + " levels");
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return make_error(EBADMSG, "malformed message: not a JSON object");
  return j;
}

// ---- client ---------------------------------------------------------------

Result<Client> Client::connect(const std::string& path, int timeout_ms) {
  auto unreachable = [&](int code) {
    if (code == EACCES || code == EPERM) {
      // The file mode kept us out: say who may connect, as the daemon would.
      struct stat st {};
      std::string who = " is not root";
      if (::stat(path.c_str(), &st) == 0 && st.st_gid != 0 && (st.st_mode & S_IWGRP))
        who += " and not in group " + group_name(st.st_gid);
      return make_error(code, "cannot reach the daemon at " + path + ": permission denied: uid " +
                                  std::to_string(::getuid()) + who);
    }
    return make_error(code, "cannot reach the daemon at " + path + ": " + std::strerror(code) +
                                " (is `xfp daemon` running?)");
  };
  auto addr = unix_address(path);
  if (!addr) return std::move(addr).error();
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_error("socket");
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    int e = errno;
    ::close(fd);
    return unreachable(e);
  }
  return Client(fd, timeout_ms);
}

Client::Client(Client&& o) noexcept : fd_(o.fd_), timeout_ms_(o.timeout_ms_) { o.fd_ = -1; }

Client& Client::operator=(Client&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    timeout_ms_ = o.timeout_ms_;
    o.fd_ = -1;
  }
  return *this;
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

Result<json> Client::call(const json& request) {
  Status sent = send_message(fd_, request, timeout_ms_);
  // When sending failed, the daemon may still have refused the connection
  // with an error reply (permission denied, too many clients) before closing it.
  auto reply = recv_message(fd_, sent ? timeout_ms_ : 1000);
  if (!reply && !sent) return std::move(sent).error().context("sending the request");
  if (!reply) return std::move(reply).error().context("reading the daemon's reply");
  json& r = *reply;
  if (r.value("ok", false) == true) return std::move(r);
  int code = EPROTO;
  std::string msg = "the daemon sent an error reply without a message";
  if (auto it = r.find("errno"); it != r.end() && it->is_number_integer()) code = it->get<int>();
  if (auto it = r.find("error"); it != r.end() && it->is_string()) msg = it->get<std::string>();
  return make_error(code, msg);
}

// ---- server ---------------------------------------------------------------

namespace {

struct Conn {
  int fd = -1;
  std::string in;          // the current message so far: header, then body
  std::string out;         // reply bytes not yet sent
  size_t out_off = 0;
  bool closing = false;    // read nothing more; close once `out` is sent
  Clock::time_point deadline;
};

}  // namespace

struct Server::Impl {
  Options opts;
  int listen_fd = -1;
  ino_t inode = 0;  // of the socket file we created, so we remove only ours
  std::list<Conn> conns;

  ~Impl() {
    for (auto& c : conns) ::close(c.fd);
    if (listen_fd >= 0) ::close(listen_fd);
    struct stat st {};
    if (inode != 0 && ::lstat(opts.path.c_str(), &st) == 0 && st.st_ino == inode) ::unlink(opts.path.c_str());
  }

  void touch(Conn& c) { c.deadline = Clock::now() + std::chrono::milliseconds(opts.idle_timeout_ms); }

  void queue(Conn& c, const json& reply) {
    std::string body = dump(reply);
    if (body.size() > kMaxMessage) body = dump(error_reply(too_large(body.size()).context("reply")));
    c.out += frame(body);
  }

  void refuse(Conn& c, const Error& e) {
    spdlog::warn("control: closing a connection: {}", e.message);
    queue(c, error_reply(e));
    c.closing = true;
    c.in.clear();
  }

  void accept_all() {
    for (;;) {
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
          spdlog::warn("control: accept: {}", std::strerror(errno));
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;
      }
      Conn& c = conns.emplace_back();
      c.fd = fd;
      touch(c);
      ucred cred{};
      socklen_t len = sizeof cred;
      if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        refuse(c, errno_error("reading the peer's credentials"));
      } else if (cred.uid != opts.allowed_uid && !(opts.group && peer_in_group(fd, cred, *opts.group))) {
        std::string who = "uid " + std::to_string(cred.uid) + " (pid " + std::to_string(cred.pid) + ")";
        std::string refusal = "permission denied: uid " + std::to_string(cred.uid) + " is not root";
        if (opts.group) refusal += " and not in group " + group_name(*opts.group);
        else refusal += " (the daemon runs without --group)";
        spdlog::warn("control: refused {}: {}", who, refusal);
        queue(c, error_reply(make_error(EPERM, refusal)));
        c.closing = true;
      } else if (conns.size() > opts.max_clients) {
        refuse(c, make_error(EBUSY, "too many connections to the daemon (limit " +
                                        std::to_string(opts.max_clients) + "), try again"));
      }
    }
  }

  // Bytes still missing from the current message (header first).
  size_t wanted(const Conn& c) const {
    if (c.in.size() < 4) return 4 - c.in.size();
    return 4 + static_cast<size_t>(read_le32(c.in)) - c.in.size();
  }

  static json call(const Handler& handler, const json& request) {
    try {
      return handler(request);
    } catch (const std::exception& e) {
      return error_reply(make_error(EINVAL, std::string("bad request: ") + e.what()));
    }
  }

  // Reads what the current message still lacks; handles it once complete.
  // Returns false when the connection is finished.
  bool on_readable(Conn& c, const Handler& handler) {
    char buf[kChunk];
    for (int rounds = 0; rounds < 16 && !c.closing && c.out.empty(); ++rounds) {
      ssize_t n = ::recv(c.fd, buf, std::min(wanted(c), sizeof buf), 0);
      if (n == 0) return false;  // peer closed
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK;
      }
      touch(c);
      c.in.append(buf, static_cast<size_t>(n));
      if (c.in.size() < 4) continue;
      uint32_t len = read_le32(c.in);
      if (len > kMaxMessage) {
        refuse(c, too_large(len));
        break;
      }
      if (c.in.size() < 4 + static_cast<size_t>(len)) continue;
      if (too_deep(std::string_view(c.in).substr(4), kMaxDepth)) {
        refuse(c, make_error(EBADMSG, "malformed request: nested deeper than " + std::to_string(kMaxDepth) + " levels"));
        break;
      }
      json request = json::parse(c.in.begin() + 4, c.in.end(), nullptr, /*allow_exceptions=*/false);
      c.in.clear();
      if (request.is_discarded() || !request.is_object()) {
        refuse(c, make_error(EBADMSG, "malformed request: expected a JSON object"));
        break;
      }
      queue(c, call(handler, request));
    }
    return true;
  }

  // Sends pending output. Returns false when the connection is finished.
  bool on_writable(Conn& c) {
    while (c.out_off < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK;
      }
      c.out_off += static_cast<size_t>(n);
      touch(c);
    }
    c.out.clear();
    c.out_off = 0;
    return !c.closing;
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;
const std::string& Server::path() const { return impl_->opts.path; }

Result<std::unique_ptr<Server>> Server::listen(const Options& opts) {
  auto addr = unix_address(opts.path);
  if (!addr) return std::move(addr).error();
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;

  std::error_code ec;
  auto dir = std::filesystem::path(opts.path).parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return make_error(ec.value(), "creating " + dir.string() + ": " + ec.message());
    // Searchable by the group's members whatever the daemon's umask; the
    // socket's own mode is the lock.
    std::filesystem::permissions(dir, std::filesystem::perms(0755), ec);
  }

  struct stat st {};
  if (::lstat(opts.path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return make_error(EEXIST, opts.path + " exists and is not a socket");
    if (Client::connect(opts.path, 1000).ok())
      return make_error(EADDRINUSE, "another daemon is already listening on " + opts.path);
    if (::unlink(opts.path.c_str()) != 0) return errno_error("removing the stale socket " + opts.path);
  }

  impl->listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (impl->listen_fd < 0) return errno_error("socket");
  // The mode is right from the moment the file exists: no window with the
  // umask's mode (the daemon is single-threaded here).
  const mode_t mode = opts.group ? 0660 : 0600;
  mode_t old_mask = ::umask(0177);
  int rc = ::bind(impl->listen_fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr);
  int bind_errno = errno;
  ::umask(old_mask);
  if (rc != 0) return errno_error("binding " + opts.path, bind_errno);
  if (::lstat(opts.path.c_str(), &st) == 0) impl->inode = st.st_ino;
  if (::chown(opts.path.c_str(), 0, opts.group.value_or(0)) != 0) return errno_error("chown " + opts.path);
  if (::chmod(opts.path.c_str(), mode) != 0) return errno_error("chmod " + opts.path);
  if (::listen(impl->listen_fd, 64) != 0) return errno_error("listen on " + opts.path);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Status Server::serve(const Handler& handler, int stop_fd) {
  Impl& s = *impl_;
  std::vector<pollfd> fds;
  std::vector<std::list<Conn>::iterator> owners;
  for (;;) {
    fds.clear();
    owners.clear();
    fds.push_back({stop_fd, POLLIN, 0});
    fds.push_back({s.listen_fd, POLLIN, 0});
    auto next_deadline = Clock::time_point::max();
    for (auto it = s.conns.begin(); it != s.conns.end(); ++it) {
      short ev = it->out.empty() ? (it->closing ? 0 : POLLIN) : POLLOUT;
      fds.push_back({it->fd, ev, 0});
      owners.push_back(it);
      next_deadline = std::min(next_deadline, it->deadline);
    }
    int timeout = -1;
    if (next_deadline != Clock::time_point::max()) timeout = remaining_ms(next_deadline) + 1;

    int r = ::poll(fds.data(), fds.size(), timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno_error("poll");
    }
    if (fds[0].revents != 0) return Ok{};
    if (fds[1].revents & POLLIN) s.accept_all();

    auto now = Clock::now();
    for (size_t i = 0; i < owners.size(); ++i) {
      Conn& c = *owners[i];
      short re = fds[i + 2].revents;
      bool keep = true;
      if (re & POLLOUT) keep = s.on_writable(c);
      else if (re & POLLIN) keep = s.on_readable(c, handler);
      else if (re & (POLLERR | POLLHUP | POLLNVAL)) keep = false;
      // A reply queued just now goes out without waiting for another poll round.
      if (keep && !c.out.empty()) keep = s.on_writable(c);
      if (keep && now >= c.deadline && re == 0) {
        spdlog::info("control: closing a connection idle for {} ms", s.opts.idle_timeout_ms);
        keep = false;
      }
      if (!keep) {
        ::close(c.fd);
        s.conns.erase(owners[i]);
      }
    }
  }
}

}  // namespace xfp::control
