#include "support/netns.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>

namespace xfp::test {
namespace {

constexpr const char* kNetnsDir = "/run/netns/";
constexpr const char* kNetnsPrefix = "xfpt-";

// ---------------------------------------------------------------------------
// Registry of what this process created. It is read from signal handlers, so
// it is a fixed array of slots claimed with atomics: no locks, no allocation.

enum SlotState : int { kSlotFree = 0, kSlotClaimed = 1, kSlotLive = 2 };
enum SlotKind : int { kKindNamespace = 1, kKindLink = 2 };

struct Slot {
  std::atomic<int> state{kSlotFree};
  int kind = 0;
  pid_t owner = 0;
  char name[64] = {};   // namespace name, or link name
  char netns[64] = {};  // for links: the namespace the link lives in
};

constexpr size_t kSlotCount = 256;
Slot g_slots[kSlotCount];

int registry_add(int kind, const std::string& name, const std::string& netns) {
  if (name.size() >= sizeof(Slot::name) || netns.size() >= sizeof(Slot::netns)) return -1;
  for (size_t i = 0; i < kSlotCount; ++i) {
    int expected = kSlotFree;
    if (g_slots[i].state.compare_exchange_strong(expected, kSlotClaimed, std::memory_order_acq_rel)) {
      Slot& s = g_slots[i];
      s.kind = kind;
      s.owner = ::getpid();
      std::memset(s.name, 0, sizeof s.name);
      std::memset(s.netns, 0, sizeof s.netns);
      std::memcpy(s.name, name.data(), name.size());
      std::memcpy(s.netns, netns.data(), netns.size());
      s.state.store(kSlotLive, std::memory_order_release);
      return static_cast<int>(i);
    }
  }
  return -1;
}

void registry_remove(int slot) {
  if (slot >= 0 && static_cast<size_t>(slot) < kSlotCount)
    g_slots[slot].state.store(kSlotFree, std::memory_order_release);
}

bool registry_has_link(const std::string& name) {
  for (auto& s : g_slots)
    if (s.state.load(std::memory_order_acquire) == kSlotLive && s.kind == kKindLink && name == s.name) return true;
  return false;
}

// --- async-signal-safe removal (syscalls and mem*/str* only) ---------------

// dst = a + b, truncated; returns false if it did not fit.
bool join_path(char* dst, size_t cap, const char* a, const char* b) {
  const size_t la = std::strlen(a), lb = std::strlen(b);
  if (la + lb + 1 > cap) return false;
  std::memcpy(dst, a, la);
  std::memcpy(dst + la, b, lb + 1);
  return true;
}

// What `ip netns del` does: detach the bind mount that keeps the namespace
// alive, then the mount point file.
void remove_netns_raw(const char* name) {
  char path[128];
  if (!join_path(path, sizeof path, kNetnsDir, name)) return;
  ::umount2(path, MNT_DETACH);
  ::unlink(path);
}

// RTM_DELLINK by name inside the namespace `netns`, then back. Deleting one
// veth end deletes its peer too.
void remove_link_raw(const char* netns, const char* ifname) {
  char path[128];
  if (!join_path(path, sizeof path, kNetnsDir, netns)) return;
  const int target = ::open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) return;
  const int saved = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (saved >= 0 && ::setns(target, CLONE_NEWNET) == 0) {
    const int sock = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (sock >= 0) {
      struct {
        nlmsghdr hdr;
        ifinfomsg ifi;
        char attrs[64];
      } req;
      std::memset(&req, 0, sizeof req);
      const size_t name_len = std::strlen(ifname) + 1;
      auto* rta = reinterpret_cast<rtattr*>(req.attrs);
      rta->rta_type = IFLA_IFNAME;
      rta->rta_len = static_cast<unsigned short>(RTA_LENGTH(name_len));
      std::memcpy(RTA_DATA(rta), ifname, name_len);
      req.hdr.nlmsg_len = static_cast<__u32>(NLMSG_LENGTH(sizeof(ifinfomsg)) + RTA_ALIGN(rta->rta_len));
      req.hdr.nlmsg_type = RTM_DELLINK;
      req.hdr.nlmsg_flags = NLM_F_REQUEST;
      req.ifi.ifi_family = AF_UNSPEC;
      sockaddr_nl kernel;
      std::memset(&kernel, 0, sizeof kernel);
      kernel.nl_family = AF_NETLINK;
      // rtnetlink handles the request inside sendto(); no reply is needed.
      ::sendto(sock, &req, req.hdr.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
      ::close(sock);
    }
    ::setns(saved, CLONE_NEWNET);
  }
  if (saved >= 0) ::close(saved);
  ::close(target);
}

// Removes everything this process registered: links first (they need their
// namespace's file), then namespaces.
void cleanup_owned_raw() {
  const pid_t self = ::getpid();
  for (int pass_kind : {kKindLink, kKindNamespace}) {
    for (auto& s : g_slots) {
      if (s.state.load(std::memory_order_acquire) != kSlotLive || s.kind != pass_kind || s.owner != self) continue;
      if (pass_kind == kKindLink)
        remove_link_raw(s.netns, s.name);
      else
        remove_netns_raw(s.name);
      s.state.store(kSlotFree, std::memory_order_release);
    }
  }
}

constexpr int kCleanupSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS};
struct sigaction g_previous_actions[NSIG];

extern "C" void xfp_test_cleanup_on_signal(int sig) {
  const int saved_errno = errno;
  cleanup_owned_raw();
  // Hand the signal to whatever was there before (usually the default
  // action: terminate). It is blocked while we run, so raise() delivers it
  // on return.
  ::sigaction(sig, &g_previous_actions[sig], nullptr);
  ::raise(sig);
  errno = saved_errno;
}

extern "C" void xfp_test_cleanup_at_exit() { cleanup_owned_raw(); }

void install_cleanup_handlers_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::atexit(xfp_test_cleanup_at_exit);
    for (int sig : kCleanupSignals) {
      struct sigaction old {};
      if (::sigaction(sig, nullptr, &old) != 0) continue;
      // An ignored signal cannot kill us; leave the test's choice alone.
      if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN) continue;
      g_previous_actions[sig] = old;
      struct sigaction sa {};
      sa.sa_handler = xfp_test_cleanup_on_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = 0;
      ::sigaction(sig, &sa, nullptr);
    }
  });
}

// ---------------------------------------------------------------------------

std::string resolve_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  std::string dirs = std::getenv("PATH") ? std::getenv("PATH") : "";
  dirs += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::stringstream ss(dirs);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return {};
}

std::string join_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

std::string trim_trailing_newlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::string netns_path(const std::string& name) { return std::string(kNetnsDir) + name; }

// Writes "1" to a sysctl file; a missing file (no IPv6 in this kernel) is fine.
Status write_sysctl_if_present(const std::string& path, const char* value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Ok{};
    return errno_error("opening " + path);
  }
  const size_t n = std::strlen(value);
  if (::write(fd.get(), value, n) != static_cast<ssize_t>(n)) return errno_error("writing " + path);
  return Ok{};
}

// Parses "a.b.c.d/len" and checks it lies in 198.18.0.0/15.
Status check_test_cidr(const std::string& cidr) {
  const auto slash = cidr.find('/');
  if (slash == std::string::npos)
    return make_error(EINVAL, "IPv4 address '" + cidr + "' needs a prefix length (e.g. 198.18.0.1/24)");
  auto addr = parse_ipv4(std::string_view(cidr).substr(0, slash));
  if (!addr) return std::move(addr).error();
  unsigned len = 0;
  const char* p = cidr.data() + slash + 1;
  const char* end = cidr.data() + cidr.size();
  auto [next, ec] = std::from_chars(p, end, len);
  if (ec != std::errc{} || next != end || p == end || len > 32)
    return make_error(EINVAL, "bad prefix length in '" + cidr + "'");
  if (!is_test_range_ipv4(*addr) || len < 15)
    return make_error(EINVAL, "IPv4 address '" + cidr + "' is outside 198.18.0.0/15, the only range tests may use");
  return Ok{};
}

std::atomic<unsigned> g_netns_counter{0};
std::atomic<unsigned> g_veth_counter{0};

// Netlink: one RTM_GETLINK by name in the calling thread's namespace.
Result<LinkInfo> query_link_here(const std::string& ifname) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) return make_error(EINVAL, "bad interface name '" + ifname + "'");
  UniqueFd sock(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (sock.get() < 0) return errno_error("opening an rtnetlink socket");

  struct {
    nlmsghdr hdr;
    ifinfomsg ifi;
    char attrs[64];
  } req{};
  auto* rta = reinterpret_cast<rtattr*>(req.attrs);
  rta->rta_type = IFLA_IFNAME;
  rta->rta_len = static_cast<unsigned short>(RTA_LENGTH(ifname.size() + 1));
  std::memcpy(RTA_DATA(rta), ifname.c_str(), ifname.size() + 1);
  req.hdr.nlmsg_len = static_cast<__u32>(NLMSG_LENGTH(sizeof(ifinfomsg)) + RTA_ALIGN(rta->rta_len));
  req.hdr.nlmsg_type = RTM_GETLINK;
  req.hdr.nlmsg_flags = NLM_F_REQUEST;
  req.hdr.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(sock.get(), &req, req.hdr.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0)
    return errno_error("sending RTM_GETLINK for " + ifname);

  std::vector<char> buf(65536);
  const ssize_t n = ::recv(sock.get(), buf.data(), buf.size(), 0);
  if (n < 0) return errno_error("receiving RTM_GETLINK reply for " + ifname);

  int len = static_cast<int>(n);
  for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
    if (h->nlmsg_type == NLMSG_ERROR) {
      const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
      if (e->error == 0) continue;
      const int code = -e->error;
      if (code == ENODEV) return make_error(ENODEV, "no interface '" + ifname + "' in this namespace");
      return errno_error("RTM_GETLINK " + ifname, code);
    }
    if (h->nlmsg_type != RTM_NEWLINK) continue;
    const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
    LinkInfo info;
    info.ifindex = ifi->ifi_index;
    info.up = (ifi->ifi_flags & IFF_UP) != 0;
    int attr_len = static_cast<int>(IFLA_PAYLOAD(h));
    for (auto* a = IFLA_RTA(ifi); RTA_OK(a, attr_len); a = RTA_NEXT(a, attr_len)) {
      const auto* data = static_cast<const char*>(RTA_DATA(a));
      const size_t payload = RTA_PAYLOAD(a);
      switch (a->rta_type) {
        case IFLA_IFNAME:
          info.name.assign(data, strnlen(data, payload));
          break;
        case IFLA_ADDRESS:
          if (payload == info.mac.size()) std::memcpy(info.mac.data(), data, payload);
          break;
        case IFLA_MTU:
          if (payload >= sizeof(uint32_t)) std::memcpy(&info.mtu, data, sizeof(uint32_t));
          break;
        case IFLA_STATS64: {
          // Older or newer kernels may send a shorter or longer struct.
          rtnl_link_stats64 s{};
          std::memcpy(&s, data, std::min(payload, sizeof s));
          info.stats.rx_packets = s.rx_packets;
          info.stats.tx_packets = s.tx_packets;
          info.stats.rx_bytes = s.rx_bytes;
          info.stats.tx_bytes = s.tx_bytes;
          info.stats.rx_dropped = s.rx_dropped;
          info.stats.tx_dropped = s.tx_dropped;
          info.stats.rx_errors = s.rx_errors;
          info.stats.tx_errors = s.tx_errors;
          break;
        }
        default:
          break;
      }
    }
    return info;
  }
  return make_error(EPROTO, "no RTM_NEWLINK in the reply for " + ifname);
}

// Makes the default MAC of one veth end: 02:<pid, 3 bytes>:<pair number << 1 | side, 2 bytes>.
Mac default_veth_mac(unsigned pair_number, int side) {
  const auto pid = static_cast<uint32_t>(::getpid());
  const uint32_t low = (pair_number << 1 | static_cast<uint32_t>(side)) & 0xffff;
  return Mac{0x02, static_cast<uint8_t>(pid >> 16), static_cast<uint8_t>(pid >> 8), static_cast<uint8_t>(pid),
             static_cast<uint8_t>(low >> 8), static_cast<uint8_t>(low)};
}

}  // namespace

// ---------------------------------------------------------------------------
// Commands

Result<CommandOutput> run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  if (argv.empty()) return make_error(EINVAL, "run_command: empty argv");
  const std::string exe = resolve_executable(argv[0]);
  if (exe.empty()) return make_error(ENOENT, "command not found: " + argv[0]);

  // Everything the child needs is prepared before fork(): between fork and
  // exec only async-signal-safe calls are allowed (other threads may hold
  // the allocator's locks).
  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return errno_error("pipe2");
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (devnull.get() < 0) return errno_error("opening /dev/null");

  const pid_t child = ::fork();
  if (child < 0) return errno_error("fork");
  if (child == 0) {
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    ::dup2(devnull.get(), STDIN_FILENO);
    ::dup2(write_end.get(), STDOUT_FILENO);
    ::dup2(write_end.get(), STDERR_FILENO);
    // BPF program and map fds, sockets: none of them belong to the child.
    ::close_range(3, ~0U, 0);
    ::execv(exe.c_str(), cargv.data());
    const char msg[] = "exec failed\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  write_end.reset();

  CommandOutput out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool eof = false;
  bool reaped = false;
  int status = 0;
  char buf[4096];
  while (!eof) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      return make_error(ETIMEDOUT, "'" + join_argv(argv) + "' did not finish within " +
                                       std::to_string(timeout.count()) + " ms; output: " + out.output);
    }
    pollfd p{read_end.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100)));
    if (ready < 0 && errno != EINTR) return errno_error("poll on command output");
    if (ready > 0) {
      const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
      if (n > 0) {
        out.output.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 || (errno != EINTR && errno != EAGAIN)) eof = true;
      continue;
    }
    // A daemon the command started may hold the pipe open forever: once the
    // child itself is gone, take what is buffered and stop.
    if (::waitpid(child, &status, WNOHANG) == child) {
      reaped = true;
      ::fcntl(read_end.get(), F_SETFL, O_NONBLOCK);
      ssize_t n;
      while ((n = ::read(read_end.get(), buf, sizeof buf)) > 0) out.output.append(buf, static_cast<size_t>(n));
      break;
    }
  }
  if (!reaped) {
    while (::waitpid(child, &status, 0) < 0) {
      if (errno != EINTR) return errno_error("waitpid");
    }
  }
  if (WIFEXITED(status)) {
    out.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    out.term_signal = WTERMSIG(status);
  }
  return out;
}

Result<std::string> run(const std::vector<std::string>& argv) {
  auto r = run_command(argv);
  if (!r) return std::move(r).error();
  if (!r->succeeded()) {
    const std::string how = r->term_signal ? "was killed by signal " + std::to_string(r->term_signal)
                                           : "exited with status " + std::to_string(r->exit_code);
    return make_error(r->exit_code == 127 ? ENOENT : EIO,
                      "'" + join_argv(argv) + "' " + how + ": " + trim_trailing_newlines(r->output));
  }
  return std::move(r->output);
}

static std::vector<std::string> netns_exec_argv(const NetNs& ns, const std::vector<std::string>& argv) {
  std::vector<std::string> full{"ip", "netns", "exec", ns.name()};
  full.insert(full.end(), argv.begin(), argv.end());
  return full;
}

Result<std::string> run_in_netns(const NetNs& ns, const std::vector<std::string>& argv) {
  return run(netns_exec_argv(ns, argv));
}

Result<CommandOutput> run_command_in_netns(const NetNs& ns, const std::vector<std::string>& argv,
                                           std::chrono::milliseconds timeout) {
  return run_command(netns_exec_argv(ns, argv), timeout);
}

// ---------------------------------------------------------------------------
// NetNs

Result<NetNs> NetNs::create() { return create(Options{}); }

Result<NetNs> NetNs::create(const Options& options) {
  install_cleanup_handlers_once();
  static std::once_flag swept;
  std::call_once(swept, [] { sweep_stale_namespaces(); });

  NetNs ns;
  ns.owner_ = ::getpid();
  ns.name_ = std::string(kNetnsPrefix) + std::to_string(ns.owner_) + "-" + std::to_string(g_netns_counter++);
  // Registered before it exists: a signal during creation still removes it.
  ns.registry_slot_ = registry_add(kKindNamespace, ns.name_, "");
  if (ns.registry_slot_ < 0)
    return make_error(ENOSPC, "too many test namespaces alive at once (registry of " + std::to_string(kSlotCount) + ")");

  if (auto r = run({"ip", "netns", "add", ns.name_}); !r) {
    registry_remove(std::exchange(ns.registry_slot_, -1));
    const std::string name = std::exchange(ns.name_, std::string());  // nothing for ~NetNs to remove
    return std::move(r).error().context("creating network namespace " + name);
  }
  ns.fd_ = ::open(netns_path(ns.name_).c_str(), O_RDONLY | O_CLOEXEC);
  if (ns.fd_ < 0) return errno_error("opening " + netns_path(ns.name_));  // ~NetNs removes it
  struct stat st {};
  if (::fstat(ns.fd_, &st) != 0) return errno_error("stat " + netns_path(ns.name_));
  ns.inode_ = st.st_ino;

  {
    auto inside = ScopedNetnsEnter::enter(ns);
    if (!inside) return std::move(inside).error();
    if (options.disable_ipv6) {
      // /proc/sys/net follows the calling thread's namespace. "default"
      // covers links added later, "all" the ones that exist (lo).
      XFP_TRY(write_sysctl_if_present("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1"));
      XFP_TRY(write_sysctl_if_present("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1"));
    }
  }
  if (auto r = run({"ip", "-n", ns.name_, "link", "set", "lo", "up"}); !r)
    return std::move(r).error().context("bringing lo up in " + ns.name_);
  return ns;
}

NetNs::NetNs(NetNs&& other) noexcept
    : name_(std::move(other.name_)),
      fd_(std::exchange(other.fd_, -1)),
      inode_(std::exchange(other.inode_, 0)),
      owner_(std::exchange(other.owner_, 0)),
      registry_slot_(std::exchange(other.registry_slot_, -1)) {
  other.name_.clear();
}

NetNs& NetNs::operator=(NetNs&& other) noexcept {
  if (this != &other) {
    (void)remove();
    name_ = std::move(other.name_);
    other.name_.clear();
    fd_ = std::exchange(other.fd_, -1);
    inode_ = std::exchange(other.inode_, 0);
    owner_ = std::exchange(other.owner_, 0);
    registry_slot_ = std::exchange(other.registry_slot_, -1);
  }
  return *this;
}

NetNs::~NetNs() { (void)remove(); }

Status NetNs::remove() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (name_.empty()) return Ok{};
  const std::string name = std::exchange(name_, std::string());
  // A fork()ed child holds a copy of the parent's object; it must not take
  // the parent's namespace away.
  if (owner_ != ::getpid()) return Ok{};
  Status result = Ok{};
  if (auto r = run({"ip", "netns", "del", name}); !r) {
    // ip failed (not installed, or the file is already gone): do it by hand.
    remove_netns_raw(name.c_str());
    if (::access(netns_path(name).c_str(), F_OK) == 0)
      result = std::move(r).error().context("removing network namespace " + name);
  }
  registry_remove(std::exchange(registry_slot_, -1));
  return result;
}

// ---------------------------------------------------------------------------
// ScopedNetnsEnter

Result<ScopedNetnsEnter> ScopedNetnsEnter::enter(const NetNs& ns) {
  if (!ns.valid()) return make_error(EBADF, "entering a network namespace that was removed or moved from");
  auto r = enter_fd(ns.fd());
  if (!r) return std::move(r).error().context("entering " + ns.name());
  return r;
}

Result<ScopedNetnsEnter> ScopedNetnsEnter::enter_fd(int netns_fd) {
  // thread-self, not self: setns() changes only the calling thread.
  UniqueFd saved(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (saved.get() < 0) return errno_error("opening /proc/thread-self/ns/net");
  if (::setns(netns_fd, CLONE_NEWNET) != 0) return errno_error("setns");
  return ScopedNetnsEnter(saved.release());
}

ScopedNetnsEnter::ScopedNetnsEnter(ScopedNetnsEnter&& other) noexcept
    : saved_fd_(std::exchange(other.saved_fd_, -1)) {}

ScopedNetnsEnter::~ScopedNetnsEnter() {
  if (saved_fd_ < 0) return;
  if (::setns(saved_fd_, CLONE_NEWNET) != 0) {
    // Carrying on in the wrong namespace would make every later socket,
    // ip command and assertion lie; stop here instead.
    std::fprintf(stderr, "xfp test support: cannot return to the original network namespace: %s\n",
                 std::strerror(errno));
    std::abort();
  }
  ::close(saved_fd_);
}

// ---------------------------------------------------------------------------
// VethPair

Result<VethPair> VethPair::create(const NetNs& ns_a, const NetNs& ns_b) { return create(ns_a, ns_b, VethOptions{}); }

Result<VethPair> VethPair::create(const NetNs& ns_a, const NetNs& ns_b, const VethOptions& options) {
  if (!ns_a.valid() || !ns_b.valid()) return make_error(EINVAL, "veth pair needs two live test namespaces");
  if (options.mtu < 68 || options.mtu > 65535)
    return make_error(EINVAL, "veth MTU " + std::to_string(options.mtu) + " is outside 68..65535");
  for (const auto* ip : {&options.ipv4_a, &options.ipv4_b})
    if (*ip) XFP_TRY(check_test_cidr(**ip));

  VethPair pair;
  pair.owner_ = ::getpid();
  pair.mtu_ = options.mtu;

  // "xfpt<pid hex>-<n hex><a|b>": at most 4 + 6 + 1 + 3 + 1 = 15 characters
  // (pid_max <= 2^22). The number wraps at 0x1000, skipping names still alive.
  unsigned number = 0;
  std::string base;
  for (int tries = 0; tries < 0x1000; ++tries) {
    number = g_veth_counter++ % 0x1000;
    char buf[IFNAMSIZ + 8];
    std::snprintf(buf, sizeof buf, "xfpt%x-%x", static_cast<unsigned>(pair.owner_), number);
    base = buf;
    if (!registry_has_link(base + "a")) break;
  }
  if (base.size() + 1 >= IFNAMSIZ) return make_error(ENAMETOOLONG, "veth name '" + base + "a' is too long");

  pair.a_ = VethEnd{ns_a.name(), base + "a", options.mac_a.value_or(default_veth_mac(number, 0)), 0, options.ipv4_a};
  pair.b_ = VethEnd{ns_b.name(), base + "b", options.mac_b.value_or(default_veth_mac(number, 1)), 0, options.ipv4_b};
  for (const auto* end : {&pair.a_, &pair.b_})
    if (!is_locally_administered_unicast(end->mac))
      return make_error(EINVAL, "MAC " + format_mac(end->mac) + " for " + end->name +
                                    " is not a locally administered unicast address (02:...)");

  pair.registry_slot_ = registry_add(kKindLink, pair.a_.name, pair.a_.netns);
  if (pair.registry_slot_ < 0) return make_error(ENOSPC, "too many test links alive at once");

  // Both ends are created directly in their namespaces: a veth end never
  // appears in the host namespace, so nothing can leak onto a real network.
  const std::string mtu = std::to_string(options.mtu);
  auto created = run({"ip", "link", "add", pair.a_.name, "netns", ns_a.name(), "mtu", mtu, "address",
                      format_mac(pair.a_.mac), "type", "veth", "peer", "name", pair.b_.name, "netns", ns_b.name(),
                      "mtu", mtu, "address", format_mac(pair.b_.mac)});
  if (!created) {
    registry_remove(std::exchange(pair.registry_slot_, -1));
    pair.a_.name.clear();
    return std::move(created).error().context("creating veth pair " + base);
  }
  // From here on a failure returns and ~VethPair deletes the link.
  for (auto* end : {&pair.a_, &pair.b_}) {
    const NetNs& ns = end == &pair.a_ ? ns_a : ns_b;
    if (end->ipv4) XFP_TRY(run({"ip", "-n", ns.name(), "addr", "add", *end->ipv4, "dev", end->name}));
    if (options.up) XFP_TRY(run({"ip", "-n", ns.name(), "link", "set", end->name, "up"}));
    auto info = query_link(ns, end->name);
    if (!info) return std::move(info).error();
    end->ifindex = info->ifindex;
  }
  return pair;
}

VethPair::VethPair(VethPair&& other) noexcept
    : a_(std::move(other.a_)),
      b_(std::move(other.b_)),
      mtu_(other.mtu_),
      owner_(std::exchange(other.owner_, 0)),
      registry_slot_(std::exchange(other.registry_slot_, -1)) {
  other.a_.name.clear();
  other.b_.name.clear();
}

VethPair& VethPair::operator=(VethPair&& other) noexcept {
  if (this != &other) {
    (void)remove();
    a_ = std::move(other.a_);
    b_ = std::move(other.b_);
    mtu_ = other.mtu_;
    owner_ = std::exchange(other.owner_, 0);
    registry_slot_ = std::exchange(other.registry_slot_, -1);
    other.a_.name.clear();
    other.b_.name.clear();
  }
  return *this;
}

VethPair::~VethPair() { (void)remove(); }

Status VethPair::remove() {
  if (a_.name.empty()) return Ok{};
  const std::string name = std::exchange(a_.name, std::string());
  b_.name.clear();
  if (owner_ != ::getpid()) return Ok{};
  Status result = Ok{};
  auto r = run_command({"ip", "-n", a_.netns, "link", "del", name});
  if (!r || !r->succeeded()) {
    // Gone already is fine: the namespace (and so the link) may have been
    // removed first, or the test deleted the link itself.
    auto exists = netns_exists(a_.netns);
    if (exists && *exists) {
      remove_link_raw(a_.netns.c_str(), name.c_str());
      auto still = run_command({"ip", "-n", a_.netns, "link", "show", name});
      if (still && still->succeeded())
        result = make_error(EBUSY, "could not delete veth " + name + " in " + a_.netns + ": " +
                                       (r ? trim_trailing_newlines(r->output) : r.error().message));
    }
  }
  registry_remove(std::exchange(registry_slot_, -1));
  return result;
}

// ---------------------------------------------------------------------------
// Link facts

Result<LinkInfo> query_link(const NetNs& ns, const std::string& ifname) {
  auto inside = ScopedNetnsEnter::enter(ns);
  if (!inside) return std::move(inside).error();
  auto r = query_link_here(ifname);
  if (!r) return std::move(r).error().context("in namespace " + ns.name());
  return r;
}

Result<LinkStats> read_link_stats(const NetNs& ns, const std::string& ifname) {
  auto r = query_link(ns, ifname);
  if (!r) return std::move(r).error();
  return r->stats;
}

Result<int> ifindex_in(const NetNs& ns, const std::string& ifname) {
  auto r = query_link(ns, ifname);
  if (!r) return std::move(r).error();
  return r->ifindex;
}

// ---------------------------------------------------------------------------
// Registry introspection and maintenance

std::vector<std::string> registered_namespaces() {
  std::vector<std::string> names;
  const pid_t self = ::getpid();
  for (auto& s : g_slots)
    if (s.state.load(std::memory_order_acquire) == kSlotLive && s.kind == kKindNamespace && s.owner == self)
      names.emplace_back(s.name);
  return names;
}

size_t sweep_stale_namespaces() {
  DIR* dir = ::opendir(kNetnsDir);
  if (!dir) return 0;
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(dir)) {
    const std::string_view name(e->d_name);
    if (name.substr(0, std::strlen(kNetnsPrefix)) != kNetnsPrefix) continue;
    const std::string_view rest = name.substr(std::strlen(kNetnsPrefix));
    int pid = 0;
    auto [next, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), pid);
    if (ec != std::errc{} || next == rest.data() || next == rest.data() + rest.size() || *next != '-' || pid <= 0)
      continue;
    if (pid == ::getpid()) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // owner alive (or not ours to judge)
    stale.emplace_back(name);
  }
  ::closedir(dir);
  size_t removed = 0;
  for (const auto& name : stale) {
    if (run({"ip", "netns", "del", name})) {
      ++removed;
    } else {
      remove_netns_raw(name.c_str());
      if (::access(netns_path(name).c_str(), F_OK) != 0) ++removed;
    }
  }
  if (removed) std::fprintf(stderr, "xfp test support: removed %zu stale test namespace(s)\n", removed);
  return removed;
}

Result<bool> netns_exists(const std::string& name) {
  auto out = run({"ip", "netns", "list"});
  if (!out) return std::move(out).error();
  std::istringstream lines(*out);
  std::string line;
  while (std::getline(lines, line)) {
    // "name" or "name (id: 3)"
    const std::string first = line.substr(0, line.find(' '));
    if (first == name) return true;
  }
  return false;
}

}  // namespace xfp::test
