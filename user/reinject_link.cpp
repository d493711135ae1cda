// The receive-injection veth pair: rtnetlink for the links and the
// per-target mirred filters, libbpf for the skeleton and the direct-action
// TC filters. See xfp/reinject_link.hpp and bpf/xfp_reinject.bpf.c.
#include "xfp/reinject_link.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "xfp_reinject.skel.h"

namespace xfp {
namespace {

// Matches bpf/xfp_reinject.bpf.c.
constexpr uint32_t kModeMirred = 0;
constexpr uint32_t kModeRedirect = 1;
constexpr uint32_t kModeClone = 2;

// B's clsact ingress: the trailer check first, the catch-all last, the
// per-target filters between (one priority each).
constexpr uint32_t kPrioCheck = 1;
constexpr uint32_t kPrioFirstTarget = 2;
constexpr uint32_t kPrioLastTarget = 65534;
constexpr uint32_t kPrioNone = 65535;
constexpr uint32_t kTcHandle = 1;

// Locally administered unicast ("xfin"): the addresses never leave the pair,
// and fixed ones make a stale pair recognisable in `ip link`.
constexpr std::array<uint8_t, ETH_ALEN> kMacA{0x02, 0x78, 0x66, 0x69, 0x6e, 0x00};
constexpr std::array<uint8_t, ETH_ALEN> kMacB{0x02, 0x78, 0x66, 0x69, 0x6e, 0x01};

// ---------------------------------------------------------------------------
// A netlink message under construction: header, family header, attributes
// (nests are closed by patching their length).

class NlMsg {
 public:
  NlMsg(uint16_t type, uint16_t flags) {
    buf_.resize(NLMSG_HDRLEN);
    hdr()->nlmsg_type = type;
    hdr()->nlmsg_flags = static_cast<uint16_t>(flags | NLM_F_REQUEST | NLM_F_ACK);
  }
  template <typename T>
  T* put_header(const T& value) {
    const size_t at = buf_.size();
    append(&value, sizeof value);
    return reinterpret_cast<T*>(buf_.data() + at);
  }
  void put(uint16_t type, const void* data, size_t len) {
    rtattr a{};
    a.rta_type = type;
    a.rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    append(&a, sizeof a);
    append(data, len);
  }
  void put_u32(uint16_t type, uint32_t v) { put(type, &v, sizeof v); }
  void put_str(uint16_t type, const std::string& s) { put(type, s.c_str(), s.size() + 1); }
  size_t begin_nest(uint16_t type) {
    const size_t at = buf_.size();
    put(type, nullptr, 0);
    return at;
  }
  void end_nest(size_t at) {
    reinterpret_cast<rtattr*>(buf_.data() + at)->rta_len = static_cast<uint16_t>(buf_.size() - at);
  }
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  std::vector<char>& finish() {
    hdr()->nlmsg_len = static_cast<uint32_t>(buf_.size());
    return buf_;
  }

 private:
  void append(const void* data, size_t len) {
    const size_t at = buf_.size();
    buf_.resize(at + NLMSG_ALIGN(len));  // zero padding to the 4-byte boundary
    if (len) std::memcpy(buf_.data() + at, data, len);
  }
  std::vector<char> buf_;
};

struct LinkFacts {
  int ifindex = 0;
  std::string name;
  std::array<uint8_t, ETH_ALEN> mac{};
};

// A NETLINK_ROUTE socket. It belongs to the namespace it was opened in for
// its whole life, which is what lets the destructor and add_target() work
// from any thread.
class Rtnl {
 public:
  static Result<Rtnl> open() {
    Rtnl r;
    r.fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (r.fd_ < 0) return errno_error("opening a NETLINK_ROUTE socket");
    const int one = 1;
    // Errors then carry the kernel's extended ack text, when it has one.
    (void)::setsockopt(r.fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    if (::bind(r.fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      return errno_error("binding a NETLINK_ROUTE socket");
    return r;
  }
  Rtnl() = default;
  Rtnl(Rtnl&& o) noexcept : fd_(std::exchange(o.fd_, -1)), seq_(o.seq_) {}
  Rtnl& operator=(Rtnl&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(o.fd_, -1);
      seq_ = o.seq_;
    }
    return *this;
  }
  ~Rtnl() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Sends one request and reads up to its ack. RTM_NEWLINK replies (to
  // RTM_GETLINK) are passed to `on_link`. Returns the negative errno of the
  // kernel's answer as an Error with `what` and the extended ack message.
  Status request(NlMsg& msg, const std::string& what, LinkFacts* on_link = nullptr) {
    const uint32_t seq = ++seq_;
    msg.hdr()->nlmsg_seq = seq;
    std::vector<char>& out = msg.finish();
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(fd_, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0)
      return errno_error(what + ": sending to rtnetlink");
    std::vector<char> in(64 * 1024);
    for (;;) {
      const ssize_t n = ::recv(fd_, in.data(), in.size(), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_error(what + ": receiving from rtnetlink");
      }
      auto len = static_cast<unsigned>(n);
      for (auto* h = reinterpret_cast<nlmsghdr*>(in.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_seq != seq) continue;  // a late answer to an earlier request
        if (h->nlmsg_type == NLMSG_ERROR) {
          const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
          if (e->error == 0) return Ok{};
          return make_error(-e->error, what + ": " + std::strerror(-e->error) + ext_ack_text(h));
        }
        if (h->nlmsg_type == RTM_NEWLINK && on_link) parse_link(h, *on_link);
      }
    }
  }

  Result<LinkFacts> get_link(int ifindex, const std::string& name) {
    NlMsg m(RTM_GETLINK, 0);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = ifindex;
    m.put_header(ifi);
    if (ifindex == 0) m.put_str(IFLA_IFNAME, name);
    LinkFacts facts;
    const std::string what = ifindex ? fmt::format("looking up ifindex {}", ifindex) : "looking up " + name;
    XFP_TRY(request(m, what, &facts));
    return facts;
  }

  // Deletes a link by index (if non-zero) or by name; a missing one is fine.
  Status delete_link(int ifindex, const std::string& name) {
    NlMsg m(RTM_DELLINK, 0);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = ifindex;
    m.put_header(ifi);
    if (ifindex == 0) m.put_str(IFLA_IFNAME, name);
    Status s = request(m, "deleting link " + name);
    if (!s && s.error().code == ENODEV) return Ok{};
    return s;
  }

 private:
  static std::string ext_ack_text(const nlmsghdr* h) {
    if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
    const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
    // The request is echoed unless NLM_F_CAPPED: then only its header.
    size_t off = sizeof *e;
    if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - sizeof e->msg;
    const size_t total = h->nlmsg_len - NLMSG_HDRLEN;
    if (off > total) return {};
    auto* a = reinterpret_cast<const rtattr*>(static_cast<const char*>(NLMSG_DATA(h)) + off);
    for (auto rest = static_cast<unsigned>(total - off); RTA_OK(a, rest); a = RTA_NEXT(a, rest))
      if (a->rta_type == NLMSGERR_ATTR_MSG) return std::string(" (") + static_cast<const char*>(RTA_DATA(a)) + ")";
    return {};
  }
  static void parse_link(const nlmsghdr* h, LinkFacts& f) {
    const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
    f.ifindex = ifi->ifi_index;
    auto rest = static_cast<unsigned>(IFLA_PAYLOAD(h));
    for (auto* a = IFLA_RTA(ifi); RTA_OK(a, rest); a = RTA_NEXT(a, rest)) {
      if (a->rta_type == IFLA_IFNAME) f.name = static_cast<const char*>(RTA_DATA(a));
      if (a->rta_type == IFLA_ADDRESS && RTA_PAYLOAD(a) == ETH_ALEN) std::memcpy(f.mac.data(), RTA_DATA(a), ETH_ALEN);
    }
  }

  int fd_ = -1;
  uint32_t seq_ = 0;
};

// Link flags at creation: no ARP, no multicast (so no IGMP/MLD joins), down
// until IPv6 is off. The peer gets its own copy inside VETH_INFO_PEER.
ifinfomsg quiet_link_header() {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_flags = IFF_NOARP;
  ifi.ifi_change = IFF_NOARP | IFF_MULTICAST | IFF_UP;
  return ifi;
}

Status write_sysctl(const std::string& path, const char* value) {
  // /proc/sys/net resolves against the opening thread's network namespace.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno_error("opening " + path);
  const ssize_t n = ::write(fd, value, std::strlen(value));
  const int err = errno;
  ::close(fd);
  if (n < 0) return errno_error("writing " + path, err);
  return Ok{};
}

}  // namespace

// ---------------------------------------------------------------------------

struct ReinjectLink::Impl {
  ReinjectOptions options;
  Rtnl rtnl;
  int ifindex_a = 0;
  int ifindex_b = 0;
  xfp_reinject* skel = nullptr;
  std::map<uint32_t, uint32_t> targets;  // target ifindex -> filter priority on B

  ~Impl() {
    // Only the pair this object made: a later create() may have replaced it
    // under the same names, and then the index no longer carries the name.
    if (ifindex_a > 0) {
      auto facts = rtnl.get_link(ifindex_a, options.ifname_a);
      if (facts && facts->name == options.ifname_a) {
        Status s = rtnl.delete_link(ifindex_a, options.ifname_a);  // takes B, its qdisc and filters
        if (!s) spdlog::warn("removing the injection pair: {}", s.error().message);
      }
    }
    if (skel) xfp_reinject__destroy(skel);
  }

  Status create_pair();
  Status attach_da(bpf_program* prog, uint32_t prio, const char* what);
  Status delete_filter(uint32_t prio);
};

Status ReinjectLink::Impl::create_pair() {
  const std::string& a = options.ifname_a;
  const std::string& b = options.ifname_b;
  // A stale pair (a killed daemon's, or another ReinjectLink's) goes first.
  XFP_TRY(rtnl.delete_link(0, a));
  XFP_TRY(rtnl.delete_link(0, b));

  NlMsg m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  m.put_header(quiet_link_header());
  m.put_str(IFLA_IFNAME, a);
  m.put(IFLA_ADDRESS, kMacA.data(), kMacA.size());
  m.put_u32(IFLA_MTU, options.mtu);
  const size_t linkinfo = m.begin_nest(IFLA_LINKINFO);
  m.put_str(IFLA_INFO_KIND, "veth");
  const size_t data = m.begin_nest(IFLA_INFO_DATA);
  const size_t peer = m.begin_nest(VETH_INFO_PEER);
  m.put_header(quiet_link_header());
  m.put_str(IFLA_IFNAME, b);
  m.put(IFLA_ADDRESS, kMacB.data(), kMacB.size());
  m.put_u32(IFLA_MTU, options.mtu);
  m.end_nest(peer);
  m.end_nest(data);
  m.end_nest(linkinfo);
  XFP_TRY(rtnl.request(m, fmt::format("creating veth pair {}/{} (mtu {})", a, b, options.mtu)));

  auto fa = rtnl.get_link(0, a);
  if (!fa) return std::move(fa).error();
  ifindex_a = fa->ifindex;  // from here on the destructor removes the pair
  auto fb = rtnl.get_link(0, b);
  if (!fb) return std::move(fb).error();
  ifindex_b = fb->ifindex;

  // Before up: with IPv6 on, up would send router solicitations, MLD reports
  // and DAD probes into the pair, which B would have to drop and count.
  for (const std::string& name : {a, b}) {
    Status s = write_sysctl("/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6", "1");
    if (!s && s.error().code != ENOENT) return std::move(s).error();  // ENOENT: no IPv6 at all
  }
  for (int ifindex : {ifindex_a, ifindex_b}) {
    NlMsg up(RTM_NEWLINK, 0);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = ifindex;
    ifi.ifi_flags = IFF_UP;
    ifi.ifi_change = IFF_UP;
    up.put_header(ifi);
    XFP_TRY(rtnl.request(up, fmt::format("setting ifindex {} up", ifindex)));
  }
  return Ok{};
}

Status ReinjectLink::Impl::attach_da(bpf_program* prog, uint32_t prio, const char* what) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex_b, .attach_point = BPF_TC_INGRESS);
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(prog), .flags = BPF_TC_F_REPLACE,
              .handle = kTcHandle, .priority = prio);
  if (int rc = bpf_tc_attach(&hook, &opts); rc != 0)
    return errno_error(fmt::format("attaching {} to the TC ingress of {}", what, options.ifname_b), -rc);
  return Ok{};
}

Status ReinjectLink::Impl::delete_filter(uint32_t prio) {
  NlMsg m(RTM_DELTFILTER, 0);
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = ifindex_b;
  t.tcm_parent = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS);
  t.tcm_info = TC_H_MAKE(prio << 16, htons(ETH_P_ALL));
  m.put_header(t);
  Status s = rtnl.request(m, fmt::format("deleting the filter of priority {} on {}", prio, options.ifname_b));
  if (!s && s.error().code == ENOENT) return Ok{};
  return s;
}

// ---------------------------------------------------------------------------

Result<std::unique_ptr<ReinjectLink>> ReinjectLink::create(const ReinjectOptions& options) {
  for (const std::string* n : {&options.ifname_a, &options.ifname_b})
    if (n->empty() || n->size() >= IFNAMSIZ)
      return make_error(EINVAL, "injection link name '" + *n + "' must have 1 to 15 characters");
  if (options.ifname_a == options.ifname_b) return make_error(EINVAL, "the injection link names must differ");

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  auto rtnl = Rtnl::open();
  if (!rtnl) return std::move(rtnl).error().context("receive injection");
  impl->rtnl = std::move(rtnl).value();

  // Load first: a verifier refusal then leaves no links behind.
  impl->skel = xfp_reinject__open();
  if (!impl->skel) return errno_error("opening the xfp_reinject BPF object");
  switch (options.method) {
    case ReinjectMethod::Mirred:
      impl->skel->rodata->xfp_reinject_mode = kModeMirred;
      break;
    case ReinjectMethod::BpfRedirect:
      impl->skel->rodata->xfp_reinject_mode = kModeRedirect;
      break;
    case ReinjectMethod::BpfCloneRedirect:
      impl->skel->rodata->xfp_reinject_mode = kModeClone;
      break;
  }
  // xfp_reinject_to is loaded per target, as a copy that names it.
  bpf_program__set_autoload(impl->skel->progs.xfp_reinject_to, false);
  if (int err = xfp_reinject__load(impl->skel); err != 0)
    return errno_error("loading the xfp_reinject BPF programs", -err);

  if (Status s = impl->create_pair(); !s) return std::move(s).error().context("receive injection");

  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = impl->ifindex_b, .attach_point = BPF_TC_INGRESS);
  if (int rc = bpf_tc_hook_create(&hook); rc != 0 && rc != -EEXIST)
    return errno_error("creating the clsact qdisc on " + options.ifname_b, -rc);
  XFP_TRY(impl->attach_da(impl->skel->progs.xfp_reinject, kPrioCheck, "xfp_reinject"));
  if (options.method == ReinjectMethod::Mirred)
    XFP_TRY(impl->attach_da(impl->skel->progs.xfp_reinject_none, kPrioNone, "xfp_reinject_none"));
  return std::unique_ptr<ReinjectLink>(new ReinjectLink(std::move(impl)));
}

ReinjectLink::ReinjectLink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ReinjectLink::~ReinjectLink() = default;
ReinjectLink::ReinjectLink(ReinjectLink&&) noexcept = default;
ReinjectLink& ReinjectLink::operator=(ReinjectLink&&) noexcept = default;

Status ReinjectLink::add_target(uint32_t ifindex) {
  Impl& im = *impl_;
  if (im.options.method != ReinjectMethod::Mirred) return Ok{};  // the helpers take any ifindex
  if (ifindex == 0 || static_cast<int>(ifindex) == im.ifindex_a || static_cast<int>(ifindex) == im.ifindex_b)
    return make_error(EINVAL, fmt::format("ifindex {} cannot be an injection target (it would loop)", ifindex));
  // The target's name and MAC, in the pair's namespace (where mirred looks it up).
  auto facts = im.rtnl.get_link(static_cast<int>(ifindex), {});
  if (!facts) return std::move(facts).error().context("adding an injection target");

  uint32_t prio = 0;
  if (auto it = im.targets.find(ifindex); it != im.targets.end()) {
    prio = it->second;  // refresh in place: same priority, new program and MAC
  } else {
    prio = kPrioFirstTarget;
    for (const auto& [_, p] : im.targets)
      if (p >= prio) prio = p + 1;
    if (prio > kPrioLastTarget) return make_error(ENOSPC, "too many injection targets");
  }

  // A copy of xfp_reinject_to whose .rodata names this target; it shares
  // the counters. The filter holds the program, so the copy's object is
  // closed once attached.
  std::unique_ptr<xfp_reinject, void (*)(xfp_reinject*)> copy(xfp_reinject__open(), xfp_reinject__destroy);
  if (!copy) return errno_error("opening a copy of the xfp_reinject BPF object");
  copy->rodata->xfp_reinject_target = ifindex;
  std::memcpy(copy->rodata->xfp_reinject_target_mac, facts->mac.data(), ETH_ALEN);
  bpf_program__set_autoload(copy->progs.xfp_reinject, false);
  bpf_program__set_autoload(copy->progs.xfp_reinject_none, false);
  if (bpf_map__reuse_fd(copy->maps.xfp_reinject_cnt_v1, bpf_map__fd(im.skel->maps.xfp_reinject_cnt_v1)) != 0)
    return errno_error("sharing the injection counters");
  if (int err = xfp_reinject__load(copy.get()); err != 0)
    return errno_error("loading xfp_reinject_to for " + facts->name, -err);

  // Not direct action: the program only says "this frame is for X"; the
  // filter's mirred action does the redirect (which generic XDP respects).
  NlMsg m(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_REPLACE);
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = im.ifindex_b;
  t.tcm_handle = kTcHandle;
  t.tcm_parent = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS);
  t.tcm_info = TC_H_MAKE(prio << 16, htons(ETH_P_ALL));
  m.put_header(t);
  m.put_str(TCA_KIND, "bpf");
  const size_t options = m.begin_nest(TCA_OPTIONS);
  m.put_u32(TCA_BPF_FD, static_cast<uint32_t>(bpf_program__fd(copy->progs.xfp_reinject_to)));
  m.put_str(TCA_BPF_NAME, "xfp_reinject_to");
  const size_t acts = m.begin_nest(TCA_BPF_ACT);
  const size_t first = m.begin_nest(1);  // actions are numbered from 1
  m.put_str(TCA_ACT_KIND, "mirred");
  const size_t aopts = m.begin_nest(TCA_ACT_OPTIONS);
  tc_mirred parms{};
  parms.action = TC_ACT_STOLEN;  // the frame is X's now
  parms.eaction = TCA_INGRESS_REDIR;
  parms.ifindex = ifindex;
  m.put(TCA_MIRRED_PARMS, &parms, sizeof parms);
  m.end_nest(aopts);
  m.end_nest(first);
  m.end_nest(acts);
  m.end_nest(options);
  XFP_TRY(im.rtnl.request(m, fmt::format("adding the injection filter for {} (ifindex {})", facts->name, ifindex)));
  im.targets[ifindex] = prio;
  return Ok{};
}

Status ReinjectLink::remove_target(uint32_t ifindex) {
  Impl& im = *impl_;
  auto it = im.targets.find(ifindex);
  if (it == im.targets.end()) return Ok{};
  XFP_TRY(im.delete_filter(it->second));
  im.targets.erase(it);
  return Ok{};
}

int ReinjectLink::ifindex_a() const { return impl_->ifindex_a; }
int ReinjectLink::ifindex_b() const { return impl_->ifindex_b; }
const std::string& ReinjectLink::ifname_a() const { return impl_->options.ifname_a; }
const std::string& ReinjectLink::ifname_b() const { return impl_->options.ifname_b; }

ReinjectCounters ReinjectLink::counters() const {
  ReinjectCounters out;
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return out;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpu));  // u64 values: no rounding needed
  const int fd = bpf_map__fd(impl_->skel->maps.xfp_reinject_cnt_v1);
  for (uint32_t k = 0; k < XFP_REINJECT_COUNT; ++k) {
    if (bpf_map_lookup_elem(fd, &k, per_cpu.data()) != 0) continue;
    for (uint64_t v : per_cpu) out.c[k] += v;
  }
  return out;
}

}  // namespace xfp
