// The loaded fast path: skeleton, attachments and compiled-set installs.
#include "xfp/datapath.hpp"

#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/membarrier.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "xfp/entry_table.hpp"
#include "xfp/fields_key.hpp"
#include "xfp/kernel_features.hpp"
#include "xfp_bpf.skel.h"

namespace xfp {
namespace {

constexpr const char* kXdpProgName = "xfp_inbound";
constexpr uint32_t kTcHandle = 0x7866;  // "xf": fixed so a restart finds its own filter
constexpr uint32_t kTcPriority = 1;

// libxdp says why it refused its dispatcher only in its log, at INFO or WARN
// level, and only the first time (it caches the result). Keep that reason so
// status can show which loader was used and why.
std::mutex g_libxdp_log_mu;
std::string g_dispatcher_refusal;

int libxdp_log(enum libxdp_print_level level, const char* fmt_str, va_list args) {
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt_str, args);
  std::string msg(buf);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (level != LIBXDP_DEBUG && msg.find("ispatcher") != std::string::npos) {
    std::lock_guard<std::mutex> lock(g_libxdp_log_mu);
    if (g_dispatcher_refusal.empty()) g_dispatcher_refusal = msg;
  }
  if (level == LIBXDP_DEBUG) spdlog::trace("libxdp: {}", msg);
  else spdlog::debug("libxdp: {}", msg);
  return 0;
}

int libbpf_log(enum libbpf_print_level level, const char* fmt_str, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  vsnprintf(buf, sizeof buf, fmt_str, args);
  std::string msg(buf);
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  spdlog::debug("libbpf: {}", msg);
  return 0;
}

std::string dispatcher_refusal() {
  std::lock_guard<std::mutex> lock(g_libxdp_log_mu);
  return g_dispatcher_refusal;
}

Result<std::array<uint8_t, 6>> interface_mac(const std::string& ifname) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_error("socket");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  int rc = ioctl(fd, SIOCGIFHWADDR, &ifr);
  int err = errno;
  close(fd);
  if (rc < 0) return errno_error(fmt::format("reading the MAC address of {}", ifname), err);
  std::array<uint8_t, 6> mac;
  std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, 6);
  return mac;
}

uint32_t current_netns_inode() {
  struct stat st {};
  // thread-self: setns() moves only the calling thread, and attach may run
  // on a thread other than the first.
  if (stat("/proc/thread-self/ns/net", &st) != 0) return 0;
  return static_cast<uint32_t>(st.st_ino);
}

// Waits until every BPF program run that started before the call has ended:
// MEMBARRIER_CMD_GLOBAL is synchronize_rcu(), and XDP and TC programs run
// inside RCU read-side sections.
Status wait_for_rcu_grace_period() {
  if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) != 0)
    return errno_error("membarrier(MEMBARRIER_CMD_GLOBAL)");
  return Ok{};
}

// An inbound attachment is made one of two ways: by libxdp (prog set; obj is
// still ours: xdp_program__create() with opts.obj marks it external and
// xdp_program__close() leaves it open), or, when xfp takes over a killed
// daemon's program, by xfp itself with libbpf (prog null; obj is ours and
// holds the loaded program), because libxdp can only detach the old program
// and then attach, leaving a gap.
struct XdpAttachment {
  xdp_program* prog = nullptr;
  bpf_object* obj = nullptr;  // ours in both cases; closed after prog
  xdp_attach_mode mode = XDP_MODE_UNSPEC;

  bool direct() const { return prog == nullptr && obj != nullptr; }
  int direct_fd() const { return bpf_program__fd(bpf_object__find_program_by_name(obj, kXdpProgName)); }
  // Drops xfp's references (the program stays attached if it still is).
  void release() {
    if (prog) xdp_program__close(prog);  // does not close obj (external to libxdp)
    if (obj) bpf_object__close(obj);
    prog = nullptr;
    obj = nullptr;
  }
};

// A descriptor closed on scope exit.
class OwnedFd {
 public:
  explicit OwnedFd(int fd = -1) : fd_(fd) {}
  ~OwnedFd() {
    if (fd_ >= 0) close(fd_);
  }
  OwnedFd(OwnedFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  OwnedFd& operator=(OwnedFd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) close(fd_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// The kernel's mode flag for a libxdp mode (bpf_xdp_attach/detach).
uint32_t xdp_mode_flag(xdp_attach_mode m) {
  return m == XDP_MODE_SKB ? XDP_FLAGS_SKB_MODE : m == XDP_MODE_HW ? XDP_FLAGS_HW_MODE : XDP_FLAGS_DRV_MODE;
}

// A lone (legacy, no dispatcher) xfp_inbound on an interface: what a daemon
// killed without detaching leaves behind. fd pins it for the replace.
struct StaleXdp {
  OwnedFd fd;
  uint32_t id = 0;
  xdp_attach_mode mode = XDP_MODE_UNSPEC;
};

struct TcAttachment {
  bpf_object* obj = nullptr;  // this attachment's loaded copy
  uint32_t prog_id = 0;
  bool created_hook = false;  // xfp made the clsact qdisc
};

// Everything xfp holds for one attached interface.
struct AttachedInterface {
  Attachment info;     // what status shows
  uint32_t key = 0;    // xfp_ifaces_v1 key, also in each copy's .rodata
  XdpAttachment xdp;   // when info.inbound
  TcAttachment tc;     // when info.outbound
};

uint32_t prog_id_of(int fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

}  // namespace

struct Datapath::Impl {
  xfp_bpf* skel = nullptr;
  int ncpus = 1;
  std::map<std::string, AttachedInterface> interfaces;  // by name
  size_t rodata_key_offset = 0;
  size_t rodata_carrier_offset = 0;
  PuntCarrier carrier = PuntCarrier::InBand;  // resolved at open
  bool carrier_forced = false;                // asked for, not chosen by the probe
  bool metadata_available = false;
  uint32_t active_bank = 0;
  // Frames may still read the inactive bank: the grace period after the
  // last flip failed. The next install waits before writing that bank.
  bool inactive_bank_in_use = false;

  // xfp_config is written whole; install() and the offload switch both
  // write it, from different threads.
  mutable std::mutex cfg_mu;
  uint32_t offload_layers = 0;  // guarded by cfg_mu
  uint64_t cfg_generation = 0;  // guarded by cfg_mu: what xfp_config holds

  Status write_config_locked(uint32_t bank, uint64_t generation, uint32_t offload);

  uint64_t* prune = nullptr;  // mmap of xfp_prune_v1
  size_t prune_bytes = 0;
  uint64_t* dmap = nullptr;  // mmap of xfp_dmap_v3
  size_t dmap_bytes = 0;
  xfp_entry* entries = nullptr;  // mmap of xfp_entries_v5: [bank][bank_entries]
  size_t entries_bytes = 0;
  xfp_rule* rules = nullptr;  // mmap of xfp_rules_v2: [bank][layer][XFP_MAX_FILTERS]
  size_t rules_bytes = 0;
  xfp_bucket* buckets = nullptr;  // mmap of xfp_buckets_v2: [bank][bank_buckets]
  size_t buckets_bytes = 0;
  uint32_t bank_entries = 0;
  uint32_t bank_buckets = 0;
  std::unique_ptr<EntryTable> tables[XFP_BANKS];  // over each bank's buckets
  xfp_xsk_load* xsk_load = nullptr;  // mmap of xfp_xsk_load_v1
  size_t xsk_load_bytes = 0;

  ~Impl() {
    if (xsk_load) munmap(xsk_load, xsk_load_bytes);
    if (prune) munmap(prune, prune_bytes);
    if (dmap) munmap(dmap, dmap_bytes);
    if (entries) munmap(entries, entries_bytes);
    if (rules) munmap(rules, rules_bytes);
    if (buckets) munmap(buckets, buckets_bytes);
    if (skel) xfp_bpf__destroy(skel);
  }

  int map_fd(bpf_map* m) const { return bpf_map__fd(m); }

  Result<bpf_object*> open_copy(const char* prog_name, uint32_t key, PuntCarrier carrier);
  Result<XdpAttachment> attach_xdp(uint32_t ifindex, uint32_t key, XdpMode mode, std::string& loader,
                                   PuntCarrier& used);
  Result<XdpAttachment> attach_xdp_with(uint32_t ifindex, uint32_t key, XdpMode mode, std::string& loader,
                                        PuntCarrier carrier);
  // The carriers an attachment tries, in order: the resolved one, then in
  // band where the probe (not the user) chose the metadata area, so that an
  // interface whose program will not load with it still gets one.
  std::vector<PuntCarrier> carriers_to_try() const {
    if (carrier == PuntCarrier::Metadata && !carrier_forced) return {PuntCarrier::Metadata, PuntCarrier::InBand};
    return {carrier};
  }
  Status attach_tc(uint32_t ifindex, uint32_t key, TcAttachment& tc);
  Status detach_tc(uint32_t ifindex, const TcAttachment& tc);
  Status detach_xdp(uint32_t ifindex, XdpAttachment& x);
  void remove_stale_xdp(uint32_t ifindex);
  Result<XdpAttachment> take_over_xdp(uint32_t ifindex, uint32_t key, const StaleXdp& stale, bool& refused,
                                      PuntCarrier& used);
};

Result<std::unique_ptr<Datapath>> Datapath::open(const DatapathOptions& opts) {
  static std::once_flag once;
  std::call_once(once, [] {
    libxdp_set_print(libxdp_log);
    libbpf_set_print(libbpf_log);
  });
  auto impl = std::make_unique<Impl>();
  impl->ncpus = libbpf_num_possible_cpus();
  if (impl->ncpus <= 0) return make_error(-impl->ncpus, "cannot count the possible CPUs");
  impl->skel = xfp_bpf__open();
  if (!impl->skel) return errno_error("opening the xfp BPF object");
  if (opts.max_entries < XFP_BANKS)
    return make_error(EINVAL, fmt::format("--max-entries {} leaves no room: each of the {} banks needs at least one entry",
                                          opts.max_entries, XFP_BANKS));
  impl->bank_entries = opts.set_capacity();
  impl->bank_buckets = entry_table_buckets(impl->bank_entries);
  if (bpf_map__set_max_entries(impl->skel->maps.xfp_entries_v5, impl->bank_entries * XFP_BANKS) != 0 ||
      bpf_map__set_max_entries(impl->skel->maps.xfp_buckets_v2, impl->bank_buckets * XFP_BANKS) != 0)
    return errno_error("sizing the entry table");
  if (opts.max_offloads == 0) return make_error(EINVAL, "the flow offload map needs at least one entry");
  if (bpf_map__set_max_entries(impl->skel->maps.xfp_offload_v2, opts.max_offloads) != 0)
    return errno_error("sizing the flow offload map");
  impl->rodata_key_offset = static_cast<size_t>(reinterpret_cast<const char*>(&impl->skel->rodata->xfp_attachment_key) -
                                                reinterpret_cast<const char*>(impl->skel->rodata));
  impl->rodata_carrier_offset = static_cast<size_t>(reinterpret_cast<const char*>(&impl->skel->rodata->xfp_punt_carrier) -
                                                    reinterpret_cast<const char*>(impl->skel->rodata));
  PuntCarrier want = opts.carrier;
  if (want == PuntCarrier::Auto) {
    if (const char* env = std::getenv("XFP_PUNT_CARRIER"); env && *env) {
      auto c = punt_carrier_from_name(env);
      if (!c) return make_error(EINVAL, fmt::format("XFP_PUNT_CARRIER={}: expected auto, metadata or in-band", env));
      want = *c;
    }
  }
  impl->metadata_available = xdp_metadata_helper_available();
  impl->carrier_forced = want != PuntCarrier::Auto;
  if (want == PuntCarrier::Metadata && !impl->metadata_available)
    return make_error(EOPNOTSUPP,
                      "the metadata carrier was asked for, but this kernel refuses bpf_xdp_adjust_meta to XDP programs "
                      "(use the in-band carrier, or auto)");
  impl->carrier = want == PuntCarrier::Auto ? (impl->metadata_available ? PuntCarrier::Metadata : PuntCarrier::InBand)
                                            : want;
  impl->skel->rodata->xfp_punt_carrier =
      impl->carrier == PuntCarrier::Metadata ? XFP_CARRIER_METADATA : XFP_CARRIER_IN_BAND;
  if (int err = xfp_bpf__load(impl->skel); err != 0)
    return errno_error("loading the xfp BPF programs (are you root, with BPF and BTF in the kernel?)", -err);
  auto map_array = [](bpf_map* m, size_t value_size, size_t& bytes) -> void* {
    bytes = static_cast<size_t>(bpf_map__max_entries(m)) * value_size;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(m), 0);
    return p == MAP_FAILED ? nullptr : p;
  };
  impl->prune = static_cast<uint64_t*>(map_array(impl->skel->maps.xfp_prune_v1, sizeof(uint64_t), impl->prune_bytes));
  impl->dmap = static_cast<uint64_t*>(map_array(impl->skel->maps.xfp_dmap_v3, sizeof(uint64_t), impl->dmap_bytes));
  impl->entries =
      static_cast<xfp_entry*>(map_array(impl->skel->maps.xfp_entries_v5, sizeof(xfp_entry), impl->entries_bytes));
  impl->buckets =
      static_cast<xfp_bucket*>(map_array(impl->skel->maps.xfp_buckets_v2, sizeof(xfp_bucket), impl->buckets_bytes));
  impl->rules = static_cast<xfp_rule*>(map_array(impl->skel->maps.xfp_rules_v2, sizeof(xfp_rule), impl->rules_bytes));
  impl->xsk_load = static_cast<xfp_xsk_load*>(
      map_array(impl->skel->maps.xfp_xsk_load_v1, sizeof(xfp_xsk_load), impl->xsk_load_bytes));
  if (!impl->prune || !impl->dmap || !impl->entries || !impl->buckets || !impl->rules || !impl->xsk_load)
    return errno_error("mapping the fast path's tables");
  for (uint32_t b = 0; b < XFP_BANKS; ++b)
    impl->tables[b] = std::make_unique<EntryTable>(
        std::span<xfp_bucket>(impl->buckets + static_cast<size_t>(b) * impl->bank_buckets, impl->bank_buckets));
  // Bank 0 active, both layers empty, default permit.
  uint32_t zero = 0;
  xfp_config cfg{};
  if (bpf_map_update_elem(impl->map_fd(impl->skel->maps.xfp_cfg_v1), &zero, &cfg, BPF_ANY) != 0)
    return errno_error("initialising the configuration map");
  for (uint32_t i = 0; i < XFP_BANKS * XFP_LAYER_COUNT; ++i) {
    xfp_set_header h{};
    h.default_action = XFP_ACTION_PERMIT;
    if (bpf_map_update_elem(impl->map_fd(impl->skel->maps.xfp_hdr_v4), &i, &h, BPF_ANY) != 0)
      return errno_error("initialising the set headers");
  }
  return std::unique_ptr<Datapath>(new Datapath(std::move(impl)));
}

Datapath::Datapath(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Datapath::~Datapath() {
  std::vector<std::string> names;
  for (const auto& [name, a] : impl_->interfaces) names.push_back(name);
  for (const auto& name : names) {
    Status s = detach(name);
    if (!s) spdlog::warn("detaching {}: {}", name, s.error().message);
  }
}

namespace {

// Calls visit(mp, prog, legacy) for each XDP program attached to the
// interface (the single program, or each one under libxdp's dispatcher)
// until it returns true.
template <typename Visit>
void visit_attached_xdp(uint32_t ifindex, Visit visit) {
  xdp_multiprog* mp = xdp_multiprog__get_from_ifindex(static_cast<int>(ifindex));
  if (!mp || libxdp_get_error(mp)) return;
  if (xdp_multiprog__is_legacy(mp)) {
    if (xdp_program* main = xdp_multiprog__main_prog(mp)) visit(mp, main, true);
  } else {
    for (xdp_program* p = xdp_multiprog__next_prog(nullptr, mp); p; p = xdp_multiprog__next_prog(p, mp))
      if (visit(mp, p, false)) break;
  }
  xdp_multiprog__close(mp);
}

}  // namespace

namespace {

// The interface's lone xfp_inbound, if that is what it carries (not libxdp's
// dispatcher, not another tool's program). Read with the kernel's own query
// rather than libxdp's, which needs the program's BTF metadata and a bpffs.
std::optional<StaleXdp> find_stale_single_xdp(uint32_t ifindex) {
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (bpf_xdp_query(static_cast<int>(ifindex), 0, &q) != 0) return std::nullopt;
  StaleXdp stale;
  if (q.attach_mode == XDP_ATTACHED_DRV) {
    stale.id = q.drv_prog_id;
    stale.mode = XDP_MODE_NATIVE;
  } else if (q.attach_mode == XDP_ATTACHED_SKB) {
    stale.id = q.skb_prog_id;
    stale.mode = XDP_MODE_SKB;
  } else {
    return std::nullopt;  // nothing, offloaded, or several modes: not a killed xfp's
  }
  stale.fd = OwnedFd(bpf_prog_get_fd_by_id(stale.id));
  if (stale.fd.get() < 0) return std::nullopt;  // gone meanwhile
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(stale.fd.get(), &info, &len) != 0) return std::nullopt;
  if (std::strncmp(info.name, kXdpProgName, sizeof info.name) != 0) return std::nullopt;
  return stale;
}

}  // namespace

// Replaces `stale` by this attachment's copy in one netlink request
// (XDP_FLAGS_REPLACE with the expected old program): the interface goes from
// the old program to the new one with no moment in between, and the kernel
// refuses (EEXIST) if the attached program is no longer `stale`.
// `refused` tells a refused swap (worth the detach-then-attach fallback) from
// a copy that does not even load (which libxdp would not load either: then
// the stale program had better stay and go on enforcing the old policy).
Result<XdpAttachment> Datapath::Impl::take_over_xdp(uint32_t ifindex, uint32_t key, const StaleXdp& stale,
                                                    bool& refused, PuntCarrier& used) {
  refused = false;
  XdpAttachment x;
  int err = 0;
  for (PuntCarrier c : carriers_to_try()) {
    auto obj_or = open_copy(kXdpProgName, key, c);
    if (!obj_or) return std::move(obj_or).error();
    x.obj = *obj_or;
    x.mode = stale.mode;
    err = bpf_object__load(x.obj);
    if (err == 0) {
      used = c;
      break;
    }
    x.release();
  }
  if (err != 0) return errno_error("loading the XDP program (the stale xfp program stays attached)", -err);
  refused = true;
  LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = stale.fd.get());
  int rc = bpf_xdp_attach(static_cast<int>(ifindex), x.direct_fd(), XDP_FLAGS_REPLACE | xdp_mode_flag(stale.mode), &o);
  if (rc != 0) {
    x.release();
    return errno_error(fmt::format("replacing the stale XDP program {} in {} mode", stale.id,
                                   stale.mode == XDP_MODE_NATIVE ? "native" : "generic"),
                       -rc);
  }
  refused = false;
  return x;
}

void Datapath::Impl::remove_stale_xdp(uint32_t ifindex) {
  // A daemon killed without detaching leaves its program attached. Under the
  // dispatcher, detaching it alone is libxdp's atomic rebuild of the
  // dispatcher; a lone program reaches here only when take_over_xdp() could
  // not replace it, and then it goes before the attach (a short gap).
  visit_attached_xdp(ifindex, [&](xdp_multiprog* mp, xdp_program* p, bool legacy) {
    if (std::strcmp(xdp_program__name(p), kXdpProgName) != 0) return false;
    spdlog::warn("ifindex {}: replacing a stale xfp XDP program{}", ifindex, legacy ? "" : " in the dispatcher");
    if (legacy) xdp_multiprog__detach(mp);
    else xdp_program__detach(p, static_cast<int>(ifindex), xdp_multiprog__attach_mode(mp), 0);
    return true;
  });
}

Result<bpf_object*> Datapath::Impl::open_copy(const char* prog_name, uint32_t key, PuntCarrier carrier) {
  size_t sz = 0;
  const void* elf = xfp_bpf__elf_bytes(&sz);
  bpf_object* obj = bpf_object__open_mem(elf, sz, nullptr);
  if (!obj) return errno_error("opening a copy of the xfp BPF object");
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    if (bpf_map__is_internal(map)) {
      // .rodata: this copy's own constants, the attachment key among them.
      size_t size = 0;
      const auto* data = static_cast<const char*>(bpf_map__initial_value(map, &size));
      const uint32_t carrier_value = carrier == PuntCarrier::Metadata ? XFP_CARRIER_METADATA : XFP_CARRIER_IN_BAND;
      if (data && size >= rodata_key_offset + sizeof key && size >= rodata_carrier_offset + sizeof carrier_value &&
          std::strstr(bpf_map__name(map), ".rodata")) {
        std::vector<char> copy(data, data + size);
        std::memcpy(copy.data() + rodata_key_offset, &key, sizeof key);
        std::memcpy(copy.data() + rodata_carrier_offset, &carrier_value, sizeof carrier_value);
        if (bpf_map__set_initial_value(map, copy.data(), size) != 0) {
          int err = errno;
          bpf_object__close(obj);
          return errno_error("setting the attachment key and punt carrier", err);
        }
      }
      continue;
    }
    // Every other map is the daemon's: all attachments share one state.
    bpf_map* orig = bpf_object__find_map_by_name(skel->obj, bpf_map__name(map));
    if (orig && bpf_map__reuse_fd(map, bpf_map__fd(orig)) != 0) {
      int err = errno;
      bpf_object__close(obj);
      return errno_error(fmt::format("sharing map {}", bpf_map__name(map)), err);
    }
  }
  bpf_program* p;
  bpf_object__for_each_program(p, obj) {
    if (std::strcmp(bpf_program__name(p), prog_name) != 0) bpf_program__set_autoload(p, false);
  }
  return obj;
}

Result<XdpAttachment> Datapath::Impl::attach_xdp(uint32_t ifindex, uint32_t key, XdpMode mode, std::string& loader,
                                                 PuntCarrier& used) {
  if (auto stale = find_stale_single_xdp(ifindex)) {
    // Take over in the stale program's mode: the kernel cannot hold a native
    // and a generic program at once, so another mode means detaching first.
    const bool mode_fits = mode == XdpMode::Auto || (mode == XdpMode::Native) == (stale->mode == XDP_MODE_NATIVE);
    if (mode_fits) {
      bool refused = false;
      auto x = take_over_xdp(ifindex, key, *stale, refused, used);
      if (x) {
        spdlog::warn("ifindex {}: replaced a stale xfp XDP program (id {}) atomically", ifindex, stale->id);
        loader = "single program (replaced a stale xfp program atomically)";
        return x;
      }
      if (!refused) return std::move(x).error();
      spdlog::warn("ifindex {}: {}; detaching it and attaching anew", ifindex, x.error().message);
    } else {
      spdlog::warn("ifindex {}: the stale xfp XDP program runs in {} mode, {} was asked for: detaching it first",
                   ifindex, stale->mode == XDP_MODE_NATIVE ? "native" : "generic",
                   mode == XdpMode::Native ? "native" : "generic");
    }
  }
  remove_stale_xdp(ifindex);
  std::optional<Error> first_error;
  for (PuntCarrier c : carriers_to_try()) {
    auto x = attach_xdp_with(ifindex, key, mode, loader, c);
    if (x) {
      if (first_error)
        spdlog::warn("ifindex {}: the punt header goes in band: with the metadata carrier, {}", ifindex,
                     first_error->message);
      used = c;
      return x;
    }
    if (!first_error) first_error = std::move(x).error();
  }
  return std::move(*first_error);
}

Result<XdpAttachment> Datapath::Impl::attach_xdp_with(uint32_t ifindex, uint32_t key, XdpMode mode,
                                                      std::string& loader, PuntCarrier carrier) {
  std::vector<xdp_attach_mode> modes;
  if (mode != XdpMode::Generic) modes.push_back(XDP_MODE_NATIVE);
  if (mode != XdpMode::Native) modes.push_back(XDP_MODE_SKB);
  int last_err = 0;
  for (xdp_attach_mode m : modes) {
    // A fresh object per attachment: libxdp loads the program itself (as a
    // dispatcher extension, or alone when the kernel refuses the dispatcher).
    auto obj_or = open_copy(kXdpProgName, key, carrier);
    if (!obj_or) return std::move(obj_or).error();
    bpf_object* obj = *obj_or;
    xdp_program_opts popts{};
    popts.sz = sizeof popts;
    popts.obj = obj;
    popts.prog_name = kXdpProgName;
    xdp_program* prog = xdp_program__create(&popts);
    if (libxdp_get_error(prog)) {
      int err = static_cast<int>(-libxdp_get_error(prog));
      bpf_object__close(obj);
      return errno_error("creating the libxdp program", err);
    }
    int rc = xdp_program__attach(prog, static_cast<int>(ifindex), m, 0);
    if (rc == 0) {
      xdp_multiprog* mp = xdp_multiprog__get_from_ifindex(static_cast<int>(ifindex));
      bool legacy = !mp || libxdp_get_error(mp) || xdp_multiprog__is_legacy(mp);
      if (mp && !libxdp_get_error(mp)) xdp_multiprog__close(mp);
      std::string why = dispatcher_refusal();
      loader = legacy ? "single program (libxdp dispatcher refused" + (why.empty() ? std::string(")") : ": " + why + ")")
                      : "libxdp dispatcher";
      XdpAttachment a;
      a.prog = prog;
      a.obj = obj;
      a.mode = m;
      return a;
    }
    last_err = -rc;
    spdlog::debug("XDP attach in {} mode failed: {}", m == XDP_MODE_NATIVE ? "native" : "generic",
                  std::strerror(last_err));
    xdp_program__close(prog);
    bpf_object__close(obj);
  }
  return errno_error("attaching the XDP program", last_err);
}

Status Datapath::Impl::attach_tc(uint32_t ifindex, uint32_t key, TcAttachment& tc) {
  auto obj = open_copy("xfp_outbound", key, PuntCarrier::InBand);  // TC never punts
  if (!obj) return std::move(obj).error();
  if (int err = bpf_object__load(*obj); err != 0) {
    bpf_object__close(*obj);
    return errno_error("loading the TC egress program", -err);
  }
  int prog_fd = bpf_program__fd(bpf_object__find_program_by_name(*obj, "xfp_outbound"));
  bpf_tc_hook hook{};
  hook.sz = sizeof hook;
  hook.ifindex = static_cast<int>(ifindex);
  hook.attach_point = BPF_TC_EGRESS;
  int rc = bpf_tc_hook_create(&hook);
  if (rc != 0 && rc != -EEXIST) {
    bpf_object__close(*obj);
    return errno_error("creating the clsact qdisc", -rc);
  }
  tc.created_hook = rc == 0;
  bpf_tc_opts opts{};
  opts.sz = sizeof opts;
  opts.handle = kTcHandle;
  opts.priority = kTcPriority;
  opts.prog_fd = prog_fd;
  opts.flags = BPF_TC_F_REPLACE;  // replaces a stale xfp filter of a killed daemon
  rc = bpf_tc_attach(&hook, &opts);
  if (rc != 0) {
    if (tc.created_hook) bpf_tc_hook_destroy(&hook);
    bpf_object__close(*obj);
    return errno_error("attaching the TC egress program", -rc);
  }
  tc.obj = *obj;
  tc.prog_id = prog_id_of(prog_fd);
  return Ok{};
}

Status Datapath::Impl::detach_tc(uint32_t ifindex, const TcAttachment& tc) {
  bpf_tc_hook hook{};
  hook.sz = sizeof hook;
  hook.ifindex = static_cast<int>(ifindex);
  hook.attach_point = BPF_TC_EGRESS;
  bpf_tc_opts opts{};
  opts.sz = sizeof opts;
  opts.handle = kTcHandle;
  opts.priority = kTcPriority;
  // Another xfp may have replaced our filter (same handle): then it is not
  // ours to remove, and neither is the qdisc it now relies on.
  int rc = bpf_tc_query(&hook, &opts);
  if (rc == 0 && opts.prog_id != tc.prog_id) {
    spdlog::info("ifindex {}: the TC egress filter was replaced by program {}; leaving it", ifindex, opts.prog_id);
    return Ok{};
  }
  bpf_tc_opts del{};
  del.sz = sizeof del;
  del.handle = kTcHandle;
  del.priority = kTcPriority;
  rc = rc == 0 ? bpf_tc_detach(&hook, &del) : rc;
  if (tc.created_hook) {
    hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    bpf_tc_hook_destroy(&hook);
  }
  if (rc != 0 && rc != -ENOENT && rc != -ENODEV && rc != -EINVAL)
    return errno_error("detaching the TC egress program", -rc);
  return Ok{};
}

Status Datapath::Impl::detach_xdp(uint32_t ifindex, XdpAttachment& x) {
  if (x.direct()) {
    // Only if it is still ours: the kernel compares the attached program with
    // the expected one in the same request (EEXIST: a later xfp took over).
    LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = x.direct_fd());
    int rc = bpf_xdp_detach(static_cast<int>(ifindex), XDP_FLAGS_REPLACE | xdp_mode_flag(x.mode), &o);
    if (rc == -EEXIST) spdlog::info("ifindex {}: the XDP program was replaced; leaving it", ifindex);
    x.release();
    if (rc != 0 && rc != -EEXIST && rc != -ENODEV && rc != -ENOENT) return errno_error("detaching XDP", -rc);
    return Ok{};
  }
  // Detach only if our program is still the one attached (a later xfp may
  // have replaced it as stale).
  const uint32_t ours = xdp_program__id(x.prog);
  bool attached = false;
  visit_attached_xdp(ifindex, [&](xdp_multiprog*, xdp_program* p, bool) {
    attached = xdp_program__id(p) == ours;
    return attached;
  });
  int rc = attached ? xdp_program__detach(x.prog, static_cast<int>(ifindex), x.mode, 0) : 0;
  if (!attached) spdlog::info("ifindex {}: the XDP program was replaced; leaving it", ifindex);
  x.release();
  if (rc != 0 && rc != -ENODEV && rc != -ENOENT) return errno_error("detaching XDP", -rc);
  return Ok{};
}

Status Datapath::attach(const std::string& ifname, const AttachOptions& opts) {
  if (!opts.inbound && !opts.outbound) return make_error(EINVAL, "attach needs at least one layer");
  if (impl_->interfaces.count(ifname)) return make_error(EEXIST, fmt::format("{} is attached already", ifname));
  uint32_t ifindex = if_nametoindex(ifname.c_str());
  if (ifindex == 0) return make_error(ENODEV, fmt::format("unknown interface '{}'", ifname));
  auto mac = interface_mac(ifname);
  if (!mac) return std::move(mac).error();

  AttachedInterface ai;
  // Small keys: XFP_XSK_INDEX folds a key into XFP_MAX_ATTACHMENTS rows.
  ai.key = 0;
  for (uint32_t k = 1; k < XFP_MAX_ATTACHMENTS && ai.key == 0; ++k)
    if (std::none_of(impl_->interfaces.begin(), impl_->interfaces.end(),
                     [k](const auto& kv) { return kv.second.key == k; }))
      ai.key = k;
  if (ai.key == 0)
    return make_error(ENOSPC, fmt::format("{} interfaces are attached already; at most {}",
                                          impl_->interfaces.size(), XFP_MAX_ATTACHMENTS - 1));
  ai.info.key = ai.key;
  ai.info.ifname = ifname;
  ai.info.ifindex = ifindex;
  const int ifaces_fd = impl_->map_fd(impl_->skel->maps.xfp_ifaces_v1);
  xfp_iface facts{};
  std::memcpy(facts.mac, mac->data(), 6);
  facts.compartment = current_netns_inode();
  ai.info.compartment = facts.compartment;
  std::memcpy(ai.info.mac, mac->data(), 6);
  facts.layers = (opts.inbound ? 1u << XFP_LAYER_INBOUND : 0) | (opts.outbound ? 1u << XFP_LAYER_OUTBOUND : 0);
  if (bpf_map_update_elem(ifaces_fd, &ai.key, &facts, BPF_ANY) != 0) return errno_error("recording the interface");

  if (opts.inbound) {
    auto x = impl_->attach_xdp(ifindex, ai.key, opts.mode, ai.info.xdp_loader, ai.info.carrier);
    if (!x) {
      bpf_map_delete_elem(ifaces_fd, &ai.key);
      return std::move(x).error().context(fmt::format("attaching to {}", ifname));
    }
    ai.xdp = *x;
    ai.info.inbound = true;
    ai.info.xdp_mode = x->mode == XDP_MODE_NATIVE ? "native" : "generic";
  }
  if (opts.outbound) {
    if (Status s = impl_->attach_tc(ifindex, ai.key, ai.tc); !s) {
      if (ai.info.inbound) (void)impl_->detach_xdp(ifindex, ai.xdp);
      bpf_map_delete_elem(ifaces_fd, &ai.key);
      return std::move(s).error().context(fmt::format("attaching to {}", ifname));
    }
    ai.info.outbound = true;
  }
  const Attachment& a = ai.info;
  spdlog::info("attached to {} (ifindex {}): {}{}", ifname, ifindex,
               a.inbound ? fmt::format("inbound XDP {} mode via {}, punt header {}", a.xdp_mode, a.xdp_loader,
                                       a.carrier == PuntCarrier::Metadata ? "in the metadata area" : "in band")
                         : "",
               a.outbound ? std::string(a.inbound ? ", " : "") + "outbound TC egress" : "");
  impl_->interfaces.emplace(ifname, std::move(ai));
  return Ok{};
}

Status Datapath::detach(const std::string& ifname) {
  auto it = impl_->interfaces.find(ifname);
  if (it == impl_->interfaces.end()) return make_error(ENOENT, fmt::format("{} is not attached", ifname));
  AttachedInterface& ai = it->second;
  const Attachment& a = ai.info;
  // The interface may be gone already (a deleted veth): nothing to detach.
  const bool present = if_nametoindex(ifname.c_str()) == a.ifindex;
  Status result = Ok{};
  if (a.inbound) {
    if (present) {
      if (Status s = impl_->detach_xdp(a.ifindex, ai.xdp); !s) result = std::move(s).error().context(ifname);
    } else {
      ai.xdp.release();
    }
  }
  if (a.outbound) {
    if (present) {
      Status s = impl_->detach_tc(a.ifindex, ai.tc);
      if (!s && result) result = std::move(s).error().context(ifname);
    }
    bpf_object__close(ai.tc.obj);
  }
  bpf_map_delete_elem(impl_->map_fd(impl_->skel->maps.xfp_ifaces_v1), &ai.key);
  impl_->interfaces.erase(it);
  if (result) spdlog::info("detached from {}", ifname);
  return result;
}

std::vector<Attachment> Datapath::attachments() const {
  std::vector<Attachment> out;
  for (const auto& [name, ai] : impl_->interfaces) out.push_back(ai.info);
  return out;
}

Status Datapath::install(const CompiledSet& set) {
  const uint32_t bank = impl_->active_bank ^ 1;
  const int tuples_fd = impl_->map_fd(impl_->skel->maps.xfp_tuples_v1);
  const int groups_fd = impl_->map_fd(impl_->skel->maps.xfp_groups_v1);
  const int hdr_fd = impl_->map_fd(impl_->skel->maps.xfp_hdr_v4);
  for (const CompiledLayer& cl : set.layers)
    if ((!cl.tuples.empty() && (cl.prune.size() != XFP_PRUNE_SPAN ||
                                cl.grouping.group_of_tuple.size() != cl.tuples.size())) ||
        (cl.direct_fields && (cl.direct_map.size() != XFP_PRUNE_SPAN || cl.direct_results.empty())))
      return make_error(EINVAL, "compiled set without its tables (not made by compile())");
  for (const CompiledLayer& cl : set.layers)
    if (cl.match_of_rank.size() > XFP_MAX_FILTERS)
      return make_error(E2BIG, fmt::format("a layer of the set has {} filters; the fast path ranks at most {}",
                                           cl.match_of_rank.size(), XFP_MAX_FILTERS));
  if (set.entry_count() > impl_->bank_entries)
    return make_error(ENOSPC, fmt::format("the filter set needs {} table entries; the fast path holds {} per set "
                                          "(raise the daemon's --max-entries)",
                                          set.entry_count(), impl_->bank_entries));
  // The bank to fill must be one no frame reads any more.
  if (impl_->inactive_bank_in_use) {
    XFP_TRY(wait_for_rcu_grace_period());
    impl_->inactive_bank_in_use = false;
  }
  // 1. Fill the inactive bank in place: its rows (tuple-space entries, then
  // direct results, layer by layer), the entry table over the tuple-space
  // group keys (each leads to the first of the rows that share it, linked by
  // `next`), and the direct maps, which name rows by absolute index + 1.
  const uint32_t row_base = bank * impl_->bank_entries;
  xfp_entry* rows = impl_->entries + row_base;
  uint32_t nrows = 0;
  std::vector<EntryKey> keys;
  keys.reserve(set.layers[0].entries.size() + set.layers[1].entries.size());
  for (uint32_t l = 0; l < XFP_LAYER_COUNT; ++l) {
    const CompiledLayer& cl = set.layers[l];
    struct Chain {
      size_t key;     // index in keys
      uint32_t rows;  // rows it leads to
    };
    std::unordered_map<FieldsKey, Chain, FieldsKeyHash> chains;  // by group key
    // A tuple whose mask is its group's: its rows need no check in the kernel.
    std::vector<uint8_t> row_flags_of_tuple(cl.tuples.size(), 0);
    for (size_t t = 0; t < cl.tuples.size(); ++t) {
      if (cl.grouping.group_of_tuple[t] >= cl.grouping.groups.size())
        return make_error(EINVAL, "compiled set with a tuple of an unknown group");
      const TupleGroup& group = cl.grouping.groups[cl.grouping.group_of_tuple[t]];
      if (std::memcmp(&cl.tuples[t].mask, &group.mask, sizeof(xfp_fields)) == 0) row_flags_of_tuple[t] = XFP_ROW_EXACT;
    }
    // The rules first: a row that decides alone is worked out from them.
    xfp_rule* rules = impl_->rules + static_cast<size_t>(bank * XFP_LAYER_COUNT + l) * XFP_MAX_FILTERS;
    for (size_t rank = 0; rank < cl.match_of_rank.size(); ++rank) rules[rank] = kernel_rule(cl.match_of_rank[rank]);
    const size_t first_key = keys.size();
    for (const CompiledEntry& e : cl.entries) {
      if (e.key.tuple >= cl.grouping.group_of_tuple.size())
        return make_error(EINVAL, "compiled set with an entry of an unknown tuple");
      const uint8_t g = cl.grouping.group_of_tuple[e.key.tuple];
      const xfp_fields gk = group_key(e.key, cl.grouping.groups[g], g);
      rows[nrows] = kernel_row(e.key, e.ranks);
      rows[nrows].flags = row_flags_of_tuple[e.key.tuple];
      auto [it, fresh] = chains.try_emplace(fields_key(gk), Chain{keys.size(), 0});
      // The BPF programs walk XFP_GROUP_CHAIN rows of a key and no more.
      if (++it->second.rows > XFP_GROUP_CHAIN)
        return make_error(EINVAL, fmt::format("compiled set with a group key of more than {} rows", XFP_GROUP_CHAIN));
      if (fresh) {
        keys.push_back(EntryKey{gk, row_base + nrows});
      } else {  // push the row in front of the key's chain
        rows[nrows].next = keys[it->second.key].entry;
        keys[it->second.key].entry = row_base + nrows;
      }
      ++nrows;
    }
    // A key that leads to one exact row: that row is all a frame with this
    // key matches in its group (abi.h, XFP_ROW_DECIDES).
    for (size_t k = first_key; k < keys.size(); ++k) {
      xfp_entry& head = rows[keys[k].entry - row_base];
      if ((head.flags & XFP_ROW_EXACT) && head.next == XFP_ROW_NONE)
        mark_decides_alone(head, std::span<const xfp_rule>(rules, cl.match_of_rank.size()));
    }
    if (!cl.direct_fields) continue;
    // What the direct map holds for each result id: the packed rank of a
    // result of one sublayer's filters, or 1 + the absolute index of the
    // row the others take.
    std::vector<uint64_t> direct_value(cl.direct_results.size(), 0);
    for (size_t id = 1; id < cl.direct_results.size(); ++id) {
      const xfp_entry row = kernel_row(xfp_fields{}, cl.direct_results[id]);
      if (!direct_result_needs_row(cl.direct_results[id])) {
        direct_value[id] = row.nranks ? XFP_DIRECT_INLINE | row.ranks[0] : 0;
        continue;
      }
      direct_value[id] = uint64_t{row_base} + nrows + 1;
      rows[nrows++] = row;
    }
    uint64_t* dmap = impl_->dmap + static_cast<size_t>(bank * XFP_LAYER_COUNT + l) * XFP_PRUNE_SPAN;
    for (size_t v = 0; v < XFP_PRUNE_SPAN; ++v) {
      const uint64_t id = cl.direct_map[v];
      if (id >= cl.direct_results.size()) return make_error(EINVAL, "compiled set with a bad direct result id");
      dmap[v] = direct_value[id];
    }
  }
  if (Status s = impl_->tables[bank]->build(keys); !s) return std::move(s).error().context("building the entry table");
  for (uint32_t l = 0; l < XFP_LAYER_COUNT; ++l) {
    const CompiledLayer& cl = set.layers[l];
    for (uint32_t t = 0; t < cl.tuples.size(); ++t) {
      uint32_t idx = (bank * XFP_LAYER_COUNT + l) * XFP_MAX_TUPLES + t;
      if (bpf_map_update_elem(tuples_fd, &idx, &cl.tuples[t], BPF_ANY) != 0)
        return errno_error("writing the tuple table");
    }
    for (uint32_t g = 0; g < cl.grouping.groups.size(); ++g) {
      uint32_t idx = (bank * XFP_LAYER_COUNT + l) * XFP_MAX_TUPLES + g;
      const xfp_tuple mask{cl.grouping.groups[g].mask};
      if (bpf_map_update_elem(groups_fd, &idx, &mask, BPF_ANY) != 0) return errno_error("writing the group table");
    }
    if (cl.prune.size() == XFP_PRUNE_SPAN)
      std::memcpy(impl_->prune + static_cast<size_t>(bank * XFP_LAYER_COUNT + l) * XFP_PRUNE_SPAN,
                  cl.prune.data(), XFP_PRUNE_SPAN * sizeof(uint64_t));
    xfp_set_header h{};
    h.direct_fields = cl.direct_fields;
    h.prune_fields = cl.prune_fields;
    h.needs_iface = cl.needs_iface ? 1 : 0;
    h.ngroups = static_cast<uint32_t>(cl.grouping.groups.size());
    h.one_probe = one_probe(cl) ? 1 : 0;
    h.nsublayers = cl.nsublayers;
    h.generation = generation_ + 1;
    h.default_action = set.default_action[l];
    h.bucket_base = bank * impl_->bank_buckets;
    h.bucket_mask = impl_->tables[bank]->bucket_mask();
    h.hash_seed = impl_->tables[bank]->seed();
    uint32_t hidx = bank * XFP_LAYER_COUNT + l;
    if (bpf_map_update_elem(hdr_fd, &hidx, &h, BPF_ANY) != 0) return errno_error("writing the set header");
  }
  // 2. Flip: one aligned word; each frame reads it once. Offload entries
  // carry the generation they are valid for, read from the same bank's
  // header: they turn stale (or stay valid) in the same instant.
  {
    std::lock_guard<std::mutex> lock(impl_->cfg_mu);
    if (Status s = impl_->write_config_locked(bank, generation_ + 1, impl_->offload_layers); !s)
      return std::move(s).error().context("switching to the new filter set");
    impl_->active_bank = bank;  // under the lock: the offload switch rewrites the config too
  }
  ++generation_;
  // 3. Frames that started on the old bank finish before the next install
  // may overwrite it.
  if (Status s = wait_for_rcu_grace_period(); !s) {
    spdlog::warn("{}; the next install waits for it", s.error().message);
    impl_->inactive_bank_in_use = true;
  }
  return Ok{};
}

LayerCounters Datapath::layer_counters(Layer l) const {
  LayerCounters out;
  std::vector<xfp_layer_counters> per_cpu(static_cast<size_t>(impl_->ncpus));
  uint32_t key = static_cast<uint32_t>(l);
  if (bpf_map_lookup_elem(impl_->map_fd(impl_->skel->maps.xfp_lcnt_v2), &key, per_cpu.data()) != 0) return out;
  for (const auto& c : per_cpu)
    for (int i = 0; i < XFP_CNT_COUNT; ++i) out.c[i] += c.c[i];
  return out;
}

FilterCounters Datapath::filter_counters(uint32_t slot) const {
  FilterCounters out;
  std::vector<xfp_filter_counter> per_cpu(static_cast<size_t>(impl_->ncpus));
  if (bpf_map_lookup_elem(impl_->map_fd(impl_->skel->maps.xfp_fcnt_v1), &slot, per_cpu.data()) != 0) return out;
  for (const auto& c : per_cpu) {
    out.frames += c.frames;
    out.bytes += c.bytes;
  }
  return out;
}

Status Datapath::reset_filter_counters(uint32_t slot) {
  std::vector<xfp_filter_counter> zeros(static_cast<size_t>(impl_->ncpus));
  if (bpf_map_update_elem(impl_->map_fd(impl_->skel->maps.xfp_fcnt_v1), &slot, zeros.data(), BPF_ANY) != 0)
    return errno_error(fmt::format("resetting counter slot {}", slot));
  return Ok{};
}

Status Datapath::set_callout_served(uint16_t callout_id, bool served) {
  if (callout_id == 0 || callout_id >= XFP_MAX_CALLOUTS)
    return make_error(EINVAL, fmt::format("callout id {} out of range", callout_id));
  uint32_t id = callout_id, value = served ? 1 : 0;
  if (bpf_map_update_elem(impl_->map_fd(impl_->skel->maps.xfp_callouts_v1), &id, &value, BPF_ANY) != 0)
    return errno_error(fmt::format("marking callout {} {}", callout_id, served ? "served" : "unserved"));
  return Ok{};
}

const char* overload_policy_name(OverloadPolicy p) {
  switch (p) {
    case OverloadPolicy::FailOpen: return "fail-open";
    case OverloadPolicy::FailClosed: return "fail-closed";
    default: return "fail-action";
  }
}

xfp_xsk_load* Datapath::xsk_load(uint32_t key, uint32_t queue) const {
  if (queue >= XFP_MAX_QUEUES) return nullptr;
  return impl_->xsk_load + XFP_XSK_INDEX(key, queue);
}

Status Datapath::guard_xsk(uint32_t key, uint32_t queue, const XskGuard& guard) {
  xfp_xsk_load* q = xsk_load(key, queue);
  if (!q) return make_error(EINVAL, fmt::format("queue {} beyond the {} xfp serves", queue, XFP_MAX_QUEUES));
  // A fresh start for a new socket: frames the previous one held and never
  // gave back would otherwise count as in flight for ever. No frame is
  // punted to this index meanwhile (no socket is bound there), so nothing
  // adds to `punted` while it is zeroed; the bind that follows (a syscall,
  // a full barrier) publishes these stores before the first punt.
  q->policy = static_cast<uint8_t>(guard.policy);
  q->capacity = guard.capacity;
  __atomic_store_n(&q->punted, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&q->consumed, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&q->overloaded, 0, __ATOMIC_RELAXED);
  return Ok{};
}

Status Datapath::bind_xsk(uint32_t key, uint32_t queue, int xsk_fd) {
  if (queue >= XFP_MAX_QUEUES) return make_error(EINVAL, fmt::format("queue {} beyond the {} xfp serves", queue, XFP_MAX_QUEUES));
  uint32_t index = XFP_XSK_INDEX(key, queue);
  if (bpf_map_update_elem(impl_->map_fd(impl_->skel->maps.xfp_xsks_v1), &index, &xsk_fd, BPF_ANY) != 0)
    return errno_error(fmt::format("binding the AF_XDP socket of queue {}", queue));
  return Ok{};
}

Status Datapath::unbind_xsk(uint32_t key, uint32_t queue) {
  uint32_t index = XFP_XSK_INDEX(key, queue);
  if (bpf_map_delete_elem(impl_->map_fd(impl_->skel->maps.xfp_xsks_v1), &index) != 0 && errno != ENOENT)
    return errno_error(fmt::format("unbinding the AF_XDP socket of queue {}", queue));
  return Ok{};
}

Status Datapath::Impl::write_config_locked(uint32_t bank, uint64_t generation, uint32_t offload) {
  xfp_config cfg{};
  cfg.active_bank = bank;
  cfg.offload_layers = offload;
  cfg.generation = generation;
  uint32_t zero = 0;
  if (bpf_map_update_elem(map_fd(skel->maps.xfp_cfg_v1), &zero, &cfg, BPF_ANY) != 0)
    return errno_error("writing the fast path's configuration");
  cfg_generation = generation;
  return Ok{};
}

namespace {

const char* verdict_name(uint8_t v) {
  switch (v) {
    case XFP_OFFLOAD_PERMIT: return "permit";
    case XFP_OFFLOAD_BLOCK: return "block";
    case XFP_OFFLOAD_REDIRECT: return "redirect";
    default: return "?";
  }
}

xfp_offload_key offload_key(const xfp_flow_key& key, Layer layer) {
  xfp_offload_key k{};
  k.flow = key;
  k.layer = static_cast<uint8_t>(layer);
  return k;
}

OffloadedFlow to_entry(const xfp_offload_key& k, const xfp_offload& v) {
  OffloadedFlow e;
  e.key = k.flow;
  e.layer = static_cast<Layer>(k.layer);
  e.verdict = v.verdict;
  e.redirect_ifindex = v.redirect_ifindex;
  e.gen_first = v.gen_first;
  e.gen_last = v.gen_last;
  e.packets = v.packets;
  e.bytes = v.bytes;
  e.last_seen_ns = v.last_seen_ns;
  e.flags = v.flags;
  return e;
}

uint64_t monotonic_coarse_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  // bpf_ktime_get_coarse_ns()'s clock
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

Status Datapath::offload_flow(const xfp_flow_key& key, Layer layer, uint8_t verdict, uint32_t redirect_ifindex,
                              uint64_t generation) {
  if (static_cast<uint32_t>(layer) >= XFP_LAYER_COUNT)
    return make_error(EINVAL, fmt::format("offloading a flow: no layer {}", static_cast<int>(layer)));
  if (verdict != XFP_OFFLOAD_PERMIT && verdict != XFP_OFFLOAD_BLOCK && verdict != XFP_OFFLOAD_REDIRECT)
    return make_error(EINVAL, fmt::format("offloading a flow: verdict {} is not permit (1), block (2) or redirect (3)",
                                          verdict));
  if (verdict == XFP_OFFLOAD_REDIRECT && redirect_ifindex == 0)
    return make_error(EINVAL, "offloading a flow: a redirect needs the target's ifindex");
  xfp_offload_key k = offload_key(key, layer);
  xfp_offload v{};
  v.verdict = verdict;
  v.redirect_ifindex = verdict == XFP_OFFLOAD_REDIRECT ? redirect_ifindex : 0;
  v.gen_first = v.gen_last = static_cast<uint32_t>(generation);
  v.last_seen_ns = monotonic_coarse_ns();  // an idle timer starts at the offload
  if (bpf_map_update_elem(impl_->map_fd(impl_->skel->maps.xfp_offload_v2), &k, &v, BPF_ANY) != 0)
    return errno_error(fmt::format("offloading a flow's {} verdict", verdict_name(verdict)));
  std::lock_guard<std::mutex> lock(impl_->cfg_mu);
  const uint32_t bit = 1u << static_cast<uint32_t>(layer);
  if (!(impl_->offload_layers & bit)) {
    XFP_TRY(impl_->write_config_locked(impl_->active_bank, impl_->cfg_generation, impl_->offload_layers | bit));
    impl_->offload_layers |= bit;
  }
  return Ok{};
}

Status Datapath::remove_offload(const xfp_flow_key& key, Layer layer) {
  xfp_offload_key k = offload_key(key, layer);
  if (bpf_map_delete_elem(impl_->map_fd(impl_->skel->maps.xfp_offload_v2), &k) != 0)
    return errno_error(errno == ENOENT ? "removing a flow offload: no such offloaded flow" : "removing a flow offload");
  return Ok{};
}

Result<OffloadedFlow> Datapath::read_offload(const xfp_flow_key& key, Layer layer) const {
  xfp_offload_key k = offload_key(key, layer);
  xfp_offload v{};
  if (bpf_map_lookup_elem(impl_->map_fd(impl_->skel->maps.xfp_offload_v2), &k, &v) != 0)
    return errno_error(errno == ENOENT ? "reading a flow offload: no such offloaded flow" : "reading a flow offload");
  return to_entry(k, v);
}

Result<std::vector<OffloadedFlow>> Datapath::read_offloads() const {
  const int fd = impl_->map_fd(impl_->skel->maps.xfp_offload_v2);
  std::vector<OffloadedFlow> out;
  xfp_offload_key k{}, next{};
  const xfp_offload_key* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    xfp_offload v{};
    // An entry evicted or removed between the two calls is skipped.
    if (bpf_map_lookup_elem(fd, &next, &v) == 0) out.push_back(to_entry(next, v));
    k = next;
    prev = &k;
  }
  if (errno != ENOENT) return errno_error("reading the flow offloads");
  return out;
}

Result<size_t> Datapath::revalidate_offloads(uint64_t next_generation,
                                             const std::function<bool(const OffloadedFlow&)>& keep) {
  const int fd = impl_->map_fd(impl_->skel->maps.xfp_offload_v2);
  auto entries = read_offloads();
  if (!entries) return std::move(entries).error().context("revalidating the flow offloads");
  const uint32_t next = static_cast<uint32_t>(next_generation);
  size_t kept = 0;
  for (const OffloadedFlow& e : *entries) {
    const bool valid_now = e.valid_for(next_generation - 1);
    const bool k = valid_now && keep(e);
    // Kept: valid through `next`. Not kept: valid at most through next - 1,
    // which also undoes a re-stamp for an install that failed.
    uint32_t last = e.gen_last;
    if (k) last = next;
    else if (e.valid_for(next_generation)) last = next - 1;
    if (k) ++kept;
    if (last == e.gen_last) continue;
    xfp_offload_key key = offload_key(e.key, e.layer);
    xfp_offload v{};
    // Re-read just before the write: the counters move meanwhile.
    if (bpf_map_lookup_elem(fd, &key, &v) != 0) continue;  // gone (evicted, removed)
    v.gen_last = last;
    if (bpf_map_update_elem(fd, &key, &v, BPF_EXIST) != 0 && errno != ENOENT)
      return errno_error("re-stamping a flow offload for the next filter set");
  }
  return kept;
}

Status Datapath::set_offload_enabled(bool enabled) {
  std::lock_guard<std::mutex> lock(impl_->cfg_mu);
  const uint32_t bits = enabled ? (1u << XFP_LAYER_COUNT) - 1 : 0;
  if (bits == impl_->offload_layers) return Ok{};
  XFP_TRY(impl_->write_config_locked(impl_->active_bank, impl_->cfg_generation, bits));
  impl_->offload_layers = bits;
  return Ok{};
}

bool Datapath::offload_enabled(Layer layer) const {
  std::lock_guard<std::mutex> lock(impl_->cfg_mu);
  return impl_->offload_layers & (1u << static_cast<uint32_t>(layer));
}

uint32_t Datapath::offload_capacity() const { return bpf_map__max_entries(impl_->skel->maps.xfp_offload_v2); }

PuntCarrier Datapath::carrier() const { return impl_->carrier; }
bool Datapath::metadata_available() const { return impl_->metadata_available; }

const char* punt_carrier_name(PuntCarrier c) {
  switch (c) {
    case PuntCarrier::Auto: return "auto";
    case PuntCarrier::Metadata: return "metadata";
    case PuntCarrier::InBand: return "in-band";
  }
  return "?";
}

std::optional<PuntCarrier> punt_carrier_from_name(std::string_view name) {
  for (PuntCarrier c : {PuntCarrier::Auto, PuntCarrier::Metadata, PuntCarrier::InBand})
    if (name == punt_carrier_name(c)) return c;
  return std::nullopt;
}

int Datapath::xdp_prog_fd() const { return bpf_program__fd(impl_->skel->progs.xfp_inbound); }
int Datapath::tc_prog_fd() const { return bpf_program__fd(impl_->skel->progs.xfp_outbound); }

}  // namespace xfp
