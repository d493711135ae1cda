// Message ports, the server side. The design (transport, security, threads,
// send()'s rules, the padding pitfall) is in xfp/message_port.hpp; the wire
// format in xfp/port_proto.h.
//
// Implementation notes. One mutex guards every client and every waiting
// sender. A sender's Waiter lives on its stack; whoever finishes it (the
// server thread on a GET, REPLY, disconnect or stop, or the sender itself on
// its deadline) removes it from the client's `pending` queue or `awaiting`
// map under the mutex first, so no pointer to it survives its return. The
// server thread never closes a client in the middle of a pass: a client is
// marked dead (its waiters released with kPortDisconnected at once) and reaped
// at the top of the next pass, where its disconnect callback runs. Callbacks
// run with the mutex released, collected as jobs during a pass.
//
// Bounds per client: at most kMaxCredits GETs outstanding, Options::max_pending
// waiting senders, kExpiredMemory remembered timed-out ids (to tell a late
// REPLY, dropped and counted, from a REPLY to an id never sent, which closes
// the client), and an output queue over kMaxOutBytes stops reading its input
// until it drains. Every read is one SEQPACKET record of at most
// XFP_PORT_MAX_FRAME bytes into one preallocated buffer.
#include "xfp/message_port.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

namespace xfp::port {

const char* to_string(SendStatus s) {
  switch (s) {
    case SendStatus::kSuccess: return "success";
    case SendStatus::kTimeout: return "timeout";
    case SendStatus::kPortDisconnected: return "port disconnected";
    case SendStatus::kBufferOverflow: return "buffer overflow";
    case SendStatus::kInsufficientResources: return "insufficient resources";
    case SendStatus::kShuttingDown: return "shutting down";
  }
  return "unknown";
}

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kMaxCredits = 32;
constexpr size_t kMaxOutBytes = 1u << 20;
constexpr size_t kExpiredMemory = 256;
constexpr int kReadsPerPass = 32;
// A waiting sender reads the socket itself this long (see send()), in poll
// slices of kDirectSlice; the server thread leaves the socket to senders
// until kDirectLinger after the last one (see run()).
constexpr auto kDirectWindow = std::chrono::milliseconds(2);
constexpr auto kDirectSlice = std::chrono::milliseconds(1);
constexpr auto kDirectLinger = std::chrono::milliseconds(2);

std::string make_frame(uint16_t type, uint16_t flags, uint64_t id, uint32_t status, const void* payload,
                       size_t length) {
  xfp_port_hdr h{};
  h.magic = XFP_PORT_MAGIC;
  h.type = type;
  h.flags = flags;
  h.message_id = id;
  h.length = static_cast<uint32_t>(length);
  h.status = status;
  std::string f(sizeof h + length, '\0');
  std::memcpy(f.data(), &h, sizeof h);
  if (length > 0) std::memcpy(f.data() + sizeof h, payload, length);
  return f;
}

struct Waiter {
  ClientId client = 0;
  uint64_t id = 0;
  std::string frame;
  bool want_reply = false;
  uint8_t* reply_buf = nullptr;
  size_t reply_cap = 0;
  size_t reply_len = 0;
  bool delivered = false;
  bool done = false;
  SendStatus status = SendStatus::kSuccess;
  std::condition_variable cv;
  int wake_fd = -1;     // set while the sender polls the socket itself (send())
  bool woke_fd = false;  // finish() wrote to wake_fd

  void finish(SendStatus s) {
    status = s;
    done = true;
    cv.notify_one();
    if (wake_fd >= 0) {
      uint64_t one = 1;
      woke_fd = ::write(wake_fd, &one, sizeof one) == static_cast<ssize_t>(sizeof one);
    }
  }
};

// A sender thread's eventfd for the direct wait of send(): finish() from
// another thread (the server thread read the REPLY first, a disconnect,
// stop) wakes the sender's poll at once.
struct ThreadWakeFd {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ~ThreadWakeFd() {
    if (fd >= 0) ::close(fd);
  }
};

// kRefused: REFUSED was sent; input is read and dropped until the client
// closes or a second passes. Closing at once would reset the connection when
// the client's CONNECT is still unread (the kernel then reports ECONNRESET
// to the client before it reads the REFUSED and its reason).
enum class Phase { kHandshake, kConnecting, kConnected, kRefused };

struct Client {
  ClientInfo info;
  int fd = -1;
  Phase phase = Phase::kHandshake;
  bool dead = false;
  bool close_after_flush = false;
  Clock::time_point handshake_deadline;
  uint32_t credits = 0;
  std::deque<Waiter*> pending;
  std::unordered_map<uint64_t, Waiter*> awaiting;
  std::deque<uint64_t> expired;
  std::deque<std::string> out;
  size_t out_bytes = 0;
  // Senders reading this socket themselves (send()'s direct wait), and until
  // when the server thread leaves its input to them (see run()).
  int direct_waiters = 0;
  Clock::time_point direct_until{};
};

struct Job {
  enum Kind { kConnect, kSend, kDisconnect } kind;
  ClientInfo info;
  std::vector<uint8_t> data;
  uint64_t id = 0;
  bool want_reply = false;
  // Results.
  std::optional<std::string> refusal;
  std::optional<std::vector<uint8_t>> reply;
  uint32_t status = 0;
};

Job make_job(Job::Kind kind, const ClientInfo& info, std::vector<uint8_t> data = {}) {
  Job j{};
  j.kind = kind;
  j.info = info;
  j.data = std::move(data);
  return j;
}

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 64 || n[0] == '.') return false;
  return std::all_of(n.begin(), n.end(),
                     [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-'; });
}

Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return make_error(ENAMETOOLONG, "port socket path '" + path + "' is empty or longer than " +
                                        std::to_string(sizeof addr.sun_path - 1) + " bytes");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

struct MessagePortServer::Impl {
  Options opts;
  Callbacks cb;
  std::string path;
  int listen_fd = -1;
  int wake_fd = -1;
  ino_t inode = 0;

  mutable std::mutex mu;
  std::unordered_map<ClientId, std::unique_ptr<Client>> clients;
  ClientId next_client = 1;
  std::atomic<uint64_t> next_message{1};
  bool stopping = false;
  bool stopped = false;
  Stats stats;
  std::vector<Job> deferred;  // callbacks a sender's direct read came upon: the server thread runs them
  std::thread thread;

  ~Impl() {
    if (listen_fd >= 0) ::close(listen_fd);
    if (wake_fd >= 0) ::close(wake_fd);
    struct stat st {};
    if (inode != 0 && ::lstat(path.c_str(), &st) == 0 && st.st_ino == inode) ::unlink(path.c_str());
  }

  void wake() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  }

  // ---- everything below with `mu` held ----

  Client* find(ClientId id) {
    auto it = clients.find(id);
    return it == clients.end() ? nullptr : it->second.get();
  }

  void fail_waiters(Client& c, SendStatus s) {
    for (Waiter* w : c.pending) w->finish(s);
    for (auto& [id, w] : c.awaiting) w->finish(s);
    c.pending.clear();
    c.awaiting.clear();
  }

  void mark_dead(Client& c) {
    if (c.dead) return;
    c.dead = true;
    fail_waiters(c, SendStatus::kPortDisconnected);
    wake();
  }

  void protocol_error(Client& c, const std::string& what) {
    ++stats.protocol_errors;
    spdlog::warn("port {}: closing client {} (pid {}): {}", opts.name, c.info.id, c.info.pid, what);
    mark_dead(c);
  }

  // Writes at once when nothing is queued (a SEQPACKET record goes whole or
  // not at all), else queues for the server thread.
  void write_frame(Client& c, std::string frame) {
    if (c.dead) return;
    if (c.out.empty()) {
      ssize_t n = ::send(c.fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n == static_cast<ssize_t>(frame.size())) return;
      if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS && errno != EINTR)) {
        mark_dead(c);
        return;
      }
    }
    c.out_bytes += frame.size();
    c.out.push_back(std::move(frame));
    wake();
  }

  void flush(Client& c) {
    while (!c.out.empty() && !c.dead) {
      const std::string& f = c.out.front();
      ssize_t n = ::send(c.fd, f.data(), f.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) return;
      if (n != static_cast<ssize_t>(f.size())) {
        mark_dead(c);
        return;
      }
      c.out_bytes -= f.size();
      c.out.pop_front();
    }
    if (c.out.empty() && c.close_after_flush) mark_dead(c);
  }

  // Consumes a credit and writes the waiter's MESSAGE.
  void deliver(Client& c, Waiter* w) {
    --c.credits;
    write_frame(c, std::move(w->frame));
    if (c.dead) {
      w->finish(SendStatus::kPortDisconnected);
      return;
    }
    ++stats.messages;
    w->delivered = true;
    if (w->want_reply)
      c.awaiting.emplace(w->id, w);
    else
      w->finish(SendStatus::kSuccess);
  }

  void deliver_pending(Client& c) {
    while (c.credits > 0 && !c.pending.empty() && !c.dead) {
      Waiter* w = c.pending.front();
      c.pending.pop_front();
      deliver(c, w);
    }
  }

  void refuse_fd(int fd, const ucred& cred, uint32_t code, const std::string& reason) {
    ++stats.refused;
    auto c = std::make_unique<Client>();
    c->fd = fd;
    c->phase = Phase::kRefused;
    c->info = ClientInfo{next_client++, cred.pid, cred.uid, cred.gid};
    c->handshake_deadline = Clock::now() + std::chrono::seconds(1);
    write_frame(*c, make_frame(XFP_PORT_REFUSED, 0, 0, code, reason.data(), reason.size()));
    clients.emplace(c->info.id, std::move(c));
  }

  bool peer_allowed(int fd, const ucred& cred) const {
    if (cred.uid == 0 || cred.uid == ::geteuid()) return true;
    if (!opts.group) return false;
    if (cred.gid == *opts.group) return true;
    std::vector<gid_t> groups(64);
    for (int tries = 0; tries < 4; ++tries) {
      socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
      if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
        groups.resize(len / sizeof(gid_t));
        return std::find(groups.begin(), groups.end(), *opts.group) != groups.end();
      }
      if (errno != ERANGE) return false;
      groups.resize(len / sizeof(gid_t) + 1);
    }
    return false;
  }

  size_t live_clients() const {
    return static_cast<size_t>(std::count_if(clients.begin(), clients.end(),
                                             [](const auto& kv) { return !kv.second->dead && kv.second->phase != Phase::kRefused; }));
  }

  void accept_all() {
    for (;;) {
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) spdlog::warn("port {}: accept: {}", opts.name, std::strerror(errno));
        return;
      }
      ucred cred{};
      socklen_t len = sizeof cred;
      if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        refuse_fd(fd, cred, EPERM, std::string("cannot read the peer's credentials: ") + std::strerror(errno));
        continue;
      }
      if (!peer_allowed(fd, cred)) {
        refuse_fd(fd, cred, EPERM,
                  "permission denied: uid " + std::to_string(cred.uid) + " may not connect to port " + opts.name +
                      (opts.group ? " (only root or members of group " + std::to_string(*opts.group) + " may)"
                                  : " (only root may)"));
        continue;
      }
      if (live_clients() >= opts.max_connections) {
        refuse_fd(fd, cred, EBUSY, "too many connections to port " + opts.name + " (limit " +
                                 std::to_string(opts.max_connections) + ")");
        continue;
      }
      auto c = std::make_unique<Client>();
      c->fd = fd;
      c->info = ClientInfo{next_client++, cred.pid, cred.uid, cred.gid};
      c->handshake_deadline = Clock::now() + opts.handshake_timeout;
      clients.emplace(c->info.id, std::move(c));
    }
  }

  void on_frame(Client& c, const uint8_t* buf, size_t n, std::vector<Job>& jobs) {
    if (n < sizeof(xfp_port_hdr)) return protocol_error(c, "frame shorter than the header");
    xfp_port_hdr h;
    std::memcpy(&h, buf, sizeof h);
    if (h.magic != XFP_PORT_MAGIC) return protocol_error(c, "bad magic or version");
    if (h.length > XFP_PORT_MAX_MESSAGE || sizeof h + h.length != n)
      return protocol_error(c, "payload length does not match the frame");
    const uint8_t* payload = buf + sizeof h;
    if (c.phase == Phase::kHandshake) {
      if (h.type != XFP_PORT_CONNECT) return protocol_error(c, "expected CONNECT");
      c.phase = Phase::kConnecting;
      jobs.push_back(make_job(Job::kConnect, c.info, std::vector<uint8_t>(payload, payload + h.length)));
      return;
    }
    switch (h.type) {
      case XFP_PORT_GET:
        if (c.credits >= kMaxCredits) return protocol_error(c, "too many GETs outstanding");
        ++c.credits;
        deliver_pending(c);
        return;
      case XFP_PORT_GET_CANCEL: {
        uint32_t none = c.credits == 0 ? 1 : 0;
        if (c.credits > 0) --c.credits;
        write_frame(c, make_frame(XFP_PORT_GET_CANCELLED, 0, 0, none, nullptr, 0));
        return;
      }
      case XFP_PORT_REPLY: {
        auto it = c.awaiting.find(h.message_id);
        if (it == c.awaiting.end()) {
          auto e = std::find(c.expired.begin(), c.expired.end(), h.message_id);
          if (e == c.expired.end()) return protocol_error(c, "REPLY to an unknown message id");
          c.expired.erase(e);
          ++stats.late_replies;
          return;
        }
        Waiter* w = it->second;
        c.awaiting.erase(it);
        if (w->reply_cap > 0 && h.length > 0) std::memcpy(w->reply_buf, payload, std::min<size_t>(h.length, w->reply_cap));
        w->reply_len = h.length;
        ++stats.replies;
        w->finish(h.length > w->reply_cap ? SendStatus::kBufferOverflow : SendStatus::kSuccess);
        return;
      }
      case XFP_PORT_SEND: {
        Job j = make_job(Job::kSend, c.info, std::vector<uint8_t>(payload, payload + h.length));
        j.id = h.message_id;
        j.want_reply = (h.flags & XFP_PORT_F_WANT_REPLY) != 0;
        jobs.push_back(std::move(j));
        return;
      }
      default:
        return protocol_error(c, "unexpected frame type " + std::to_string(h.type));
    }
  }

  // Reads up to kReadsPerPass records, or until *until_done is set (a
  // direct-waiting sender's own record came: the rest is for later, which
  // saves the read that would find the socket empty).
  void on_readable(Client& c, std::vector<uint8_t>& buf, std::vector<Job>& jobs, const bool* until_done = nullptr) {
    for (int i = 0; i < kReadsPerPass && !c.dead && c.phase != Phase::kConnecting && !c.close_after_flush &&
                    c.out_bytes < kMaxOutBytes && !(until_done && *until_done);
         ++i) {
      iovec iov{buf.data(), buf.size()};
      msghdr mh{};
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      ssize_t n = ::recvmsg(c.fd, &mh, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) mark_dead(c);
        return;
      }
      if (n == 0) return mark_dead(c);  // the client closed
      if (c.phase == Phase::kRefused) continue;
      if ((mh.msg_flags & MSG_TRUNC) || static_cast<size_t>(n) > XFP_PORT_MAX_FRAME)
        return protocol_error(c, "frame larger than " + std::to_string(XFP_PORT_MAX_FRAME) + " bytes");
      on_frame(c, buf.data(), static_cast<size_t>(n), jobs);
    }
  }

  // Runs on the server thread, mutex released.
  void run_jobs(std::vector<Job>& jobs) {
    for (Job& j : jobs) {
      try {
        switch (j.kind) {
          case Job::kConnect:
            if (cb.connect) j.refusal = cb.connect(j.info, j.data);
            break;
          case Job::kSend:
            if (cb.message_status) {
              std::vector<uint8_t> reply;
              j.status = static_cast<uint32_t>(cb.message_status(j.info, j.data, reply));
              if (j.status == 0 && reply.size() > XFP_PORT_MAX_MESSAGE) j.status = EMSGSIZE;
              if (j.status == 0) j.reply = std::move(reply);
            } else if (!cb.message) {
              j.status = ENOTSUP;
            } else {
              j.reply = cb.message(j.info, j.data);
              if (j.reply && j.reply->size() > XFP_PORT_MAX_MESSAGE) {
                j.reply.reset();
                j.status = EMSGSIZE;
              }
            }
            break;
          case Job::kDisconnect:
            if (cb.disconnect) cb.disconnect(j.info);
            break;
        }
      } catch (const std::exception& e) {
        spdlog::error("port {}: a callback threw: {}", opts.name, e.what());
        if (j.kind == Job::kConnect) j.refusal = "the port's connect handler failed";
        j.status = EIO;
      }
    }
  }

  // Mutex held: applies the callbacks' answers.
  void apply_jobs(std::vector<Job>& jobs) {
    for (Job& j : jobs) {
      Client* c = find(j.info.id);
      if (c == nullptr || c->dead) continue;
      if (j.kind == Job::kConnect) {
        if (j.refusal) {
          ++stats.refused;
          write_frame(*c, make_frame(XFP_PORT_REFUSED, 0, 0, ECONNREFUSED, j.refusal->data(), j.refusal->size()));
          c->close_after_flush = true;
          if (c->out.empty()) mark_dead(*c);
        } else {
          ++stats.accepted;
          c->phase = Phase::kConnected;
          write_frame(*c, make_frame(XFP_PORT_CONNECTED, 0, c->info.id, 0, nullptr, 0));
        }
      } else if (j.kind == Job::kSend) {
        ++stats.sends;
        if (!j.want_reply) continue;
        const std::vector<uint8_t> empty;
        const auto& r = j.reply ? *j.reply : empty;
        write_frame(*c, make_frame(XFP_PORT_SEND_REPLY, 0, j.id, j.status, r.data(), r.size()));
      }
    }
  }

  // Mutex held: removes dead clients, queueing disconnect callbacks for the
  // accepted ones.
  void reap(std::vector<Job>& jobs) {
    for (auto it = clients.begin(); it != clients.end();) {
      Client& c = *it->second;
      if (!c.dead) {
        ++it;
        continue;
      }
      if (c.phase == Phase::kConnected) jobs.push_back(make_job(Job::kDisconnect, c.info));
      ::close(c.fd);
      it = clients.erase(it);
    }
  }

  void run() {
    std::vector<uint8_t> buf(XFP_PORT_MAX_FRAME + 1);
    std::vector<pollfd> fds;
    std::vector<ClientId> ids;
    std::vector<Job> jobs;
    for (;;) {
      jobs.clear();
      int timeout = -1;
      {
        std::lock_guard lk(mu);
        if (stopping) return;
        reap(jobs);
        for (Job& j : deferred) jobs.push_back(std::move(j));
        deferred.clear();
        fds.clear();
        ids.clear();
        fds.push_back({wake_fd, POLLIN, 0});
        fds.push_back({listen_fd, POLLIN, 0});
        auto next = Clock::time_point::max();
        const auto now = Clock::now();
        for (auto& [id, c] : clients) {
          short ev = 0;
          if (!c->out.empty()) ev |= POLLOUT;
          // A socket senders read themselves (or did a moment ago, and
          // likely will again) is left to them: waking this thread for
          // records they read would cost a thread switch per message. It is
          // looked at again within kDirectLinger.
          const bool direct = c->direct_waiters > 0 || now < c->direct_until;
          if (direct) next = std::min(next, std::max(c->direct_until, now + kDirectLinger));
          if (!direct && c->phase != Phase::kConnecting && !c->close_after_flush && c->out_bytes < kMaxOutBytes)
            ev |= POLLIN;
          fds.push_back({c->fd, ev, 0});
          ids.push_back(id);
          if (c->phase == Phase::kHandshake || c->phase == Phase::kRefused)
            next = std::min(next, c->handshake_deadline);
        }
        if (next != Clock::time_point::max()) {
          auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count() + 1;
          timeout = static_cast<int>(std::clamp<int64_t>(ms, 0, 60000));
        }
      }
      if (!jobs.empty()) {
        run_jobs(jobs);
        {
          std::lock_guard lk(mu);
          apply_jobs(jobs);  // the deferred SENDs' replies (disconnects need none)
        }
        jobs.clear();
        continue;  // poll with a fresh set
      }
      int r = ::poll(fds.data(), fds.size(), timeout);
      if (r < 0 && errno != EINTR) {
        spdlog::error("port {}: poll: {}", opts.name, std::strerror(errno));
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      {
        std::lock_guard lk(mu);
        if (stopping) return;
        if (fds[0].revents & POLLIN) {
          uint64_t v;
          [[maybe_unused]] auto n = ::read(wake_fd, &v, sizeof v);
        }
        if (fds[1].revents & POLLIN) accept_all();
        for (size_t i = 0; i < ids.size(); ++i) {
          const short re = fds[i + 2].revents;
          if (re == 0) continue;
          Client* c = find(ids[i]);
          if (c == nullptr || c->dead) continue;
          if (re & POLLOUT) flush(*c);
          if (re & POLLIN) on_readable(*c, buf, jobs);
          else if (re & (POLLHUP | POLLERR | POLLNVAL)) mark_dead(*c);
        }
        const auto now = Clock::now();
        for (auto& [id, c] : clients)
          if ((c->phase == Phase::kHandshake || c->phase == Phase::kRefused) && !c->dead &&
              now >= c->handshake_deadline) {
            if (c->phase == Phase::kHandshake) ++stats.protocol_errors;
            mark_dead(*c);
          }
      }
      if (jobs.empty()) continue;
      run_jobs(jobs);
      std::lock_guard lk(mu);
      apply_jobs(jobs);
    }
  }
};

MessagePortServer::MessagePortServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MessagePortServer::~MessagePortServer() { stop(); }

const std::string& MessagePortServer::path() const { return impl_->path; }

Result<std::unique_ptr<MessagePortServer>> MessagePortServer::create(const Options& opts, Callbacks callbacks) {
  if (!valid_name(opts.name))
    return make_error(EINVAL, "invalid port name '" + opts.name +
                                  "': use 1-64 letters, digits, '.', '_' or '-', not starting with '.'");
  if (opts.max_connections == 0) return make_error(EINVAL, "a port needs a connection limit of at least 1");
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  impl->cb = std::move(callbacks);
  impl->path = opts.dir + "/" + opts.name;
  auto addr = unix_address(impl->path);
  if (!addr) return std::move(addr).error();
  // Bound under a temporary name, given its mode and owner, then renamed into
  // place: the socket never exists at DIR/NAME with the umask's mode, and no
  // process-wide umask change is needed in a threaded daemon.
  const std::string tmp = opts.dir + "/.tmp." + std::to_string(::getpid()) + "." + opts.name;
  auto tmp_addr = unix_address(tmp);
  if (!tmp_addr) return std::move(tmp_addr).error();

  std::error_code ec;
  std::filesystem::create_directories(opts.dir, ec);
  if (ec) return make_error(ec.value(), "creating " + opts.dir + ": " + ec.message());

  struct stat st {};
  if (::lstat(impl->path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return make_error(EEXIST, impl->path + " exists and is not a socket");
    int probe = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 && ::connect(probe, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) == 0;
    if (probe >= 0) ::close(probe);
    if (live) return make_error(EADDRINUSE, "port " + opts.name + " is already served at " + impl->path);
  }

  impl->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl->wake_fd < 0) return errno_error("eventfd");
  impl->listen_fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (impl->listen_fd < 0) return errno_error("socket");
  ::unlink(tmp.c_str());
  if (::bind(impl->listen_fd, reinterpret_cast<const sockaddr*>(&*tmp_addr), sizeof *tmp_addr) != 0)
    return errno_error("binding " + tmp);
  auto fail = [&](const std::string& what) {
    Error e = errno_error(what);
    ::unlink(tmp.c_str());
    return e;
  };
  if (::chmod(tmp.c_str(), 0660) != 0) return fail("chmod " + tmp);
  if (::geteuid() == 0) {
    if (::chown(tmp.c_str(), 0, opts.group.value_or(0)) != 0) return fail("chown " + tmp);
  } else if (opts.group && ::chown(tmp.c_str(), static_cast<uid_t>(-1), *opts.group) != 0) {
    return fail("chgrp " + tmp);
  }
  if (::listen(impl->listen_fd, 128) != 0) return fail("listen on " + tmp);
  if (::rename(tmp.c_str(), impl->path.c_str()) != 0) return fail("renaming " + tmp + " to " + impl->path);
  if (::lstat(impl->path.c_str(), &st) == 0) impl->inode = st.st_ino;

  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  return std::unique_ptr<MessagePortServer>(new MessagePortServer(std::move(impl)));
}

SendStatus MessagePortServer::send(ClientId client, const void* message, size_t length, void* reply_buffer,
                                   size_t reply_capacity, size_t* reply_length, Deadline timeout) {
  Impl& s = *impl_;
  if (reply_length != nullptr) *reply_length = 0;
  if (length > XFP_PORT_MAX_MESSAGE || (length > 0 && message == nullptr)) return SendStatus::kInsufficientResources;
  Waiter w;
  w.client = client;
  w.id = s.next_message.fetch_add(1, std::memory_order_relaxed);
  w.want_reply = reply_buffer != nullptr;
  w.reply_buf = static_cast<uint8_t*>(reply_buffer);
  w.reply_cap = w.want_reply ? reply_capacity : 0;
  w.frame = make_frame(XFP_PORT_MESSAGE, w.want_reply ? XFP_PORT_F_REPLY_EXPECTED : 0, w.id, 0, message, length);

  std::unique_lock lk(s.mu);
  if (s.stopping) return SendStatus::kShuttingDown;
  Client* c = s.find(client);
  if (c == nullptr || c->dead || c->phase != Phase::kConnected) return SendStatus::kPortDisconnected;
  if (c->credits > 0 && c->pending.empty()) {
    s.deliver(*c, &w);
  } else {
    if (c->pending.size() >= s.opts.max_pending) return SendStatus::kInsufficientResources;
    c->pending.push_back(&w);
  }
  // Waiting (for the client's GET, or for its REPLY): for a short while the
  // sender reads the client's socket itself instead of waiting for the
  // server thread to read the record and wake it, which saves a thread
  // switch per message; the server thread leaves the socket alone meanwhile
  // (run()). Reads are under the mutex and whole records, whoever makes
  // them: a GET read here delivers the oldest waiting message (maybe
  // another sender's), a REPLY finishes its sender, a client's SEND becomes
  // a job for the server thread. After kDirectWindow the server thread
  // takes over, so a reply that takes long (a person answering) costs no
  // polling here. finish() from elsewhere (stop, a disconnect, the server
  // thread) wakes the poll through the thread's eventfd.
  thread_local ThreadWakeFd wake;
  const auto direct_until = Clock::now() + kDirectWindow;
  while (!w.done && wake.fd >= 0 && Clock::now() < direct_until) {
    Client* cc = s.find(client);
    if (cc == nullptr || cc->dead) break;
    const int fd = cc->fd;
    ++cc->direct_waiters;
    auto slice = std::chrono::duration_cast<std::chrono::milliseconds>(kDirectSlice).count();
    if (!timeout.infinite()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*timeout.at() - Clock::now()).count();
      slice = std::clamp<int64_t>(left, 0, slice);
    }
    w.wake_fd = wake.fd;
    lk.unlock();
    pollfd p[2] = {{fd, POLLIN, 0}, {wake.fd, POLLIN, 0}};
    int pr = ::poll(p, 2, static_cast<int>(slice));
    lk.lock();
    w.wake_fd = -1;
    cc = s.find(client);
    if (cc != nullptr && cc->fd == fd) {
      --cc->direct_waiters;
      cc->direct_until = Clock::now() + kDirectLinger;
    }
    if (w.woke_fd) {
      uint64_t v;
      [[maybe_unused]] auto n = ::read(wake.fd, &v, sizeof v);
      w.woke_fd = false;
    }
    if (w.done) break;
    if (pr > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) && cc != nullptr && !cc->dead && cc->fd == fd) {
      thread_local std::vector<uint8_t> buf(XFP_PORT_MAX_FRAME + 1);
      std::vector<Job> jobs;
      s.on_readable(*cc, buf, jobs, &w.done);
      if (!jobs.empty()) {
        for (Job& j : jobs) s.deferred.push_back(std::move(j));
        s.wake();
      }
    }
    if (!w.done && !timeout.infinite() && Clock::now() >= *timeout.at()) break;  // the loop below times out
  }
  if (!w.done) {
    // Still waiting, now on the server thread: let it read the socket again at
    // once rather than after the linger.
    if (Client* cc = s.find(client); cc != nullptr && cc->direct_waiters == 0) {
      cc->direct_until = Clock::time_point{};
      s.wake();
    }
  }
  while (!w.done) {
    if (timeout.infinite()) {
      w.cv.wait(lk);
      continue;
    }
    if (w.cv.wait_until(lk, *timeout.at()) != std::cv_status::timeout || w.done) continue;
    // Expired: still queued (nothing delivered) or awaiting its reply.
    c = s.find(client);
    if (c != nullptr) {
      if (!w.delivered) {
        std::erase(c->pending, &w);
      } else {
        c->awaiting.erase(w.id);
        c->expired.push_back(w.id);
        if (c->expired.size() > kExpiredMemory) c->expired.pop_front();
      }
    }
    return SendStatus::kTimeout;
  }
  if (reply_length != nullptr) *reply_length = w.reply_len;
  return w.status;
}

void MessagePortServer::stop() {
  Impl& s = *impl_;
  {
    std::lock_guard lk(s.mu);
    if (s.stopped) return;
    s.stopped = true;
    s.stopping = true;
    for (auto& [id, c] : s.clients) s.fail_waiters(*c, SendStatus::kShuttingDown);
    s.wake();
  }
  if (s.thread.joinable()) s.thread.join();
  std::vector<Job> jobs;
  {
    std::lock_guard lk(s.mu);
    for (auto& [id, c] : s.clients) c->dead = true;
    s.reap(jobs);
  }
  s.run_jobs(jobs);
  if (s.listen_fd >= 0) {
    ::close(s.listen_fd);
    s.listen_fd = -1;
  }
  struct stat st {};
  if (s.inode != 0 && ::lstat(s.path.c_str(), &st) == 0 && st.st_ino == s.inode) ::unlink(s.path.c_str());
  s.inode = 0;
}

std::vector<ClientInfo> MessagePortServer::clients() const {
  std::lock_guard lk(impl_->mu);
  std::vector<ClientInfo> out;
  for (auto& [id, c] : impl_->clients)
    if (!c->dead && c->phase == Phase::kConnected) out.push_back(c->info);
  std::sort(out.begin(), out.end(), [](const ClientInfo& a, const ClientInfo& b) { return a.id < b.id; });
  return out;
}

Stats MessagePortServer::stats() const {
  std::lock_guard lk(impl_->mu);
  return impl_->stats;
}

}  // namespace xfp::port
