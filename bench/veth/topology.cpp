#include "topology.hpp"

#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench_common.hpp"

namespace xfpbench {

std::atomic<bool> g_stop{false};

static void on_stop_signal(int) { g_stop.store(true); }
static void on_wake_signal(int) {}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: sleeps and test runs return early
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  // SIGUSR1 interrupts the generator's BPF_PROG_TEST_RUN call; nothing else.
  struct sigaction wake {};
  wake.sa_handler = on_wake_signal;
  sigemptyset(&wake.sa_mask);
  sigaction(SIGUSR1, &wake, nullptr);
}

xfp::Status run_in_netns(int ns_fd, const std::function<void()>& fn) {
  xfp::Status result;
  std::thread t([&] {
    if (setns(ns_fd, CLONE_NEWNET) != 0) {
      result = xfp::errno_error("entering the network namespace");
      return;
    }
    fn();
  });
  t.join();
  return result;
}

xfp::Result<std::unique_ptr<Topology>> Topology::create() {
  std::unique_ptr<Topology> t(new Topology());
  const std::string base = fmt::format("xfpb-{}", getpid());
  t->tx_ns_ = base + "-tx";
  t->rx_ns_ = base + "-rx";

  auto ip = [](std::vector<std::string> args) {
    args.insert(args.begin(), "ip");
    return run_command(args, false) == 0;
  };
  if (!ip({"netns", "add", t->tx_ns_})) return xfp::make_error(EIO, "ip netns add " + t->tx_ns_ + " failed");
  t->tx_made_ = true;
  if (!ip({"netns", "add", t->rx_ns_})) return xfp::make_error(EIO, "ip netns add " + t->rx_ns_ + " failed");
  t->rx_made_ = true;
  // No IPv6 on the pair: no router solicitations or DAD frames in the counts.
  for (const auto& ns : {t->tx_ns_, t->rx_ns_})
    run_command({"ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                 "net.ipv6.conf.default.disable_ipv6=1"},
                true);
  if (!ip({"-n", t->tx_ns_, "link", "add", kTxDev, "address", mac_to_string(kTxMac), "type", "veth", "peer",
           "name", kRxDev, "address", mac_to_string(kRxMac), "netns", t->rx_ns_}))
    return xfp::make_error(EIO, "creating the veth pair failed");
  if (!ip({"-n", t->tx_ns_, "link", "set", kTxDev, "up"}) || !ip({"-n", t->rx_ns_, "link", "set", kRxDev, "up"}))
    return xfp::make_error(EIO, "setting the veth pair up failed");

  t->orig_fd_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  t->tx_fd_ = open(("/run/netns/" + t->tx_ns_).c_str(), O_RDONLY | O_CLOEXEC);
  t->rx_fd_ = open(("/run/netns/" + t->rx_ns_).c_str(), O_RDONLY | O_CLOEXEC);
  if (t->orig_fd_ < 0 || t->tx_fd_ < 0 || t->rx_fd_ < 0) return xfp::errno_error("opening the namespaces");

  uint32_t tx_index = 0;
  XFP_TRY(run_in_netns(t->tx_fd_, [&] { tx_index = if_nametoindex(kTxDev); }));
  if (tx_index == 0) return xfp::make_error(ENODEV, "the sending veth is missing");
  t->tx_ifindex_ = tx_index;

  if (setns(t->rx_fd_, CLONE_NEWNET) != 0) return xfp::errno_error("entering " + t->rx_ns_);
  t->entered_rx_ = true;
  t->rx_ifindex_ = if_nametoindex(kRxDev);
  if (t->rx_ifindex_ == 0) return xfp::make_error(ENODEV, "the receiving veth is missing");
  return t;
}

Topology::~Topology() {
  if (entered_rx_ && orig_fd_ >= 0 && setns(orig_fd_, CLONE_NEWNET) != 0)
    fprintf(stderr, "xfp-bench-veth: cannot leave %s: %s\n", rx_ns_.c_str(), strerror(errno));
  for (int fd : {tx_fd_, rx_fd_, orig_fd_})
    if (fd >= 0) close(fd);
  // Deleting a namespace destroys the veth end inside it, and with it the peer.
  if (rx_made_ && run_command({"ip", "netns", "del", rx_ns_}, false) != 0)
    fprintf(stderr, "xfp-bench-veth: could not delete namespace %s; remove it with: ip netns del %s\n",
            rx_ns_.c_str(), rx_ns_.c_str());
  if (tx_made_ && run_command({"ip", "netns", "del", tx_ns_}, false) != 0)
    fprintf(stderr, "xfp-bench-veth: could not delete namespace %s; remove it with: ip netns del %s\n",
            tx_ns_.c_str(), tx_ns_.c_str());
}

int Topology::exec_in_rx(const std::string& shell_command, bool quiet, std::string* output) const {
  // `ip netns exec` gives the command a fresh sysfs of the namespace; bpffs is
  // not mounted there (MACHINE_NOTES gotcha 1), so mount a private one.
  const std::string script = "mount -t bpf bpf /sys/fs/bpf || exit 90; " + shell_command;
  return run_command({"ip", "netns", "exec", rx_ns_, "sh", "-c", script}, quiet, output);
}

// IFLA_STATS64 of an interface of the calling thread's namespace.
static std::optional<LinkStats> link_stats(uint32_t ifindex) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return std::nullopt;
  struct {
    nlmsghdr nh;
    ifinfomsg ifm;
  } req{};
  req.nh.nlmsg_len = sizeof req;
  req.nh.nlmsg_type = RTM_GETLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.nh.nlmsg_seq = 1;
  req.ifm.ifi_family = AF_UNSPEC;
  req.ifm.ifi_index = static_cast<int>(ifindex);
  std::optional<LinkStats> out;
  if (send(fd, &req, sizeof req, 0) == static_cast<ssize_t>(sizeof req)) {
    std::vector<char> buf(65536);
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    for (auto* nh = reinterpret_cast<nlmsghdr*>(buf.data()); n > 0 && NLMSG_OK(nh, static_cast<unsigned>(n));
         nh = NLMSG_NEXT(nh, n)) {
      if (nh->nlmsg_type != RTM_NEWLINK) continue;
      auto* ifm = static_cast<ifinfomsg*>(NLMSG_DATA(nh));
      int len = static_cast<int>(IFLA_PAYLOAD(nh));
      for (auto* a = IFLA_RTA(ifm); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type != IFLA_STATS64 || RTA_PAYLOAD(a) < sizeof(rtnl_link_stats64)) continue;
        rtnl_link_stats64 s;
        std::memcpy(&s, RTA_DATA(a), sizeof s);
        out = LinkStats{s.rx_packets, s.rx_bytes, s.rx_dropped, s.tx_packets, s.tx_dropped};
      }
    }
  }
  close(fd);
  return out;
}

std::optional<LinkStats> Topology::rx_stats() const { return link_stats(rx_ifindex_); }

std::optional<LinkStats> Topology::tx_stats() const {
  std::optional<LinkStats> out;
  if (!run_in_netns(tx_fd_, [&] { out = link_stats(tx_ifindex_); })) return std::nullopt;
  return out;
}

std::map<std::string, uint64_t> Topology::rx_ethtool() const {
  std::map<std::string, uint64_t> out;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return out;
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", kRxDev);
  // ethtool_sset_info followed by one u32: the number of ETH_SS_STATS strings.
  alignas(8) uint8_t sbuf_info[sizeof(ethtool_sset_info) + sizeof(uint32_t)] = {};
  auto* sset = reinterpret_cast<ethtool_sset_info*>(sbuf_info);
  sset->cmd = ETHTOOL_GSSET_INFO;
  sset->sset_mask = 1ull << ETH_SS_STATS;
  ifr.ifr_data = reinterpret_cast<char*>(sset);
  if (ioctl(fd, SIOCETHTOOL, &ifr) != 0 || !(sset->sset_mask & (1ull << ETH_SS_STATS))) {
    close(fd);
    return out;
  }
  uint32_t n;
  std::memcpy(&n, sbuf_info + sizeof(ethtool_sset_info), sizeof n);
  std::vector<uint8_t> sbuf(sizeof(ethtool_gstrings) + static_cast<size_t>(n) * ETH_GSTRING_LEN);
  auto* strings = reinterpret_cast<ethtool_gstrings*>(sbuf.data());
  strings->cmd = ETHTOOL_GSTRINGS;
  strings->string_set = ETH_SS_STATS;
  strings->len = n;
  std::vector<uint8_t> vbuf(sizeof(ethtool_stats) + static_cast<size_t>(n) * sizeof(uint64_t));
  auto* stats = reinterpret_cast<ethtool_stats*>(vbuf.data());
  stats->cmd = ETHTOOL_GSTATS;
  stats->n_stats = n;
  ifr.ifr_data = reinterpret_cast<char*>(strings);
  bool ok = ioctl(fd, SIOCETHTOOL, &ifr) == 0;
  ifr.ifr_data = reinterpret_cast<char*>(stats);
  ok = ok && ioctl(fd, SIOCETHTOOL, &ifr) == 0;
  close(fd);
  if (!ok) return out;
  for (uint32_t i = 0; i < n; ++i) {
    std::string name(reinterpret_cast<const char*>(strings->data) + static_cast<size_t>(i) * ETH_GSTRING_LEN,
                     strnlen(reinterpret_cast<const char*>(strings->data) + static_cast<size_t>(i) * ETH_GSTRING_LEN,
                             ETH_GSTRING_LEN));
    // "rx_queue_3_xdp_drops" -> "rx_xdp_drops"
    for (const char* dir : {"rx_queue_", "tx_queue_"}) {
      if (name.rfind(dir, 0) == 0) {
        size_t us = name.find('_', std::strlen(dir));
        if (us != std::string::npos) name = std::string(dir, 3) + name.substr(us + 1);
      }
    }
    uint64_t v;
    std::memcpy(&v, reinterpret_cast<const uint8_t*>(stats->data) + static_cast<size_t>(i) * sizeof(uint64_t),
                sizeof v);
    out[name] += v;
  }
  return out;
}

bool Topology::set_rx_threaded(bool on) const {
  return exec_in_rx(fmt::format("echo {} > /sys/class/net/{}/threaded", on ? 1 : 0, kRxDev), true) == 0;
}

std::optional<std::string> Topology::rx_threaded() const {
  std::string out;
  if (exec_in_rx(fmt::format("cat /sys/class/net/{}/threaded", kRxDev), true, &out) != 0) return std::nullopt;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace xfpbench
