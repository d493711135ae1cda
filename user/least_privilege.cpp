// Capabilities and groups for the daemon (see least_privilege.hpp).
#include "xfp/least_privilege.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace xfp {

namespace {

// Indexed by capability number (linux/capability.h); a kernel may know more.
constexpr const char* kCapNames[] = {
    "cap_chown",          "cap_dac_override",   "cap_dac_read_search", "cap_fowner",
    "cap_fsetid",         "cap_kill",           "cap_setgid",          "cap_setuid",
    "cap_setpcap",        "cap_linux_immutable", "cap_net_bind_service", "cap_net_broadcast",
    "cap_net_admin",      "cap_net_raw",        "cap_ipc_lock",        "cap_ipc_owner",
    "cap_sys_module",     "cap_sys_rawio",      "cap_sys_chroot",      "cap_sys_ptrace",
    "cap_sys_pacct",      "cap_sys_admin",      "cap_sys_boot",        "cap_sys_nice",
    "cap_sys_resource",   "cap_sys_time",       "cap_sys_tty_config",  "cap_mknod",
    "cap_lease",          "cap_audit_write",    "cap_audit_control",   "cap_setfcap",
    "cap_mac_override",   "cap_mac_admin",      "cap_syslog",          "cap_wake_alarm",
    "cap_block_suspend",  "cap_audit_read",     "cap_perfmon",         "cap_bpf",
    "cap_checkpoint_restore"};
constexpr int kKnownCaps = static_cast<int>(sizeof kCapNames / sizeof *kCapNames);

// The kernel's highest capability number.
int last_cap() {
  std::ifstream f("/proc/sys/kernel/cap_last_cap");
  int n = -1;
  if (f >> n && n >= 0 && n < 64) return n;
  return kKnownCaps - 1;
}

}  // namespace

// What each kept capability is for, measured on kernel 6.18 by removing each
// one (XFP_DAEMON_CAPS) and running the CLI tests that attach at runtime
// (docs/RELIABILITY.md has the table):
//  - CAP_NET_ADMIN: XDP and TC attach/detach (netlink), the clsact qdisc,
//    XDP/TC program types in BPF_PROG_LOAD;
//  - CAP_NET_RAW: AF_XDP sockets of the workers and of receive injection;
//  - CAP_SYS_ADMIN: BPF_PROG_GET_FD_BY_ID, which libxdp runs on every attach
//    and detach to read what the interface carries, and xfp's takeover of a
//    killed daemon's program;
//  - CAP_IPC_LOCK: a UMEM registered after the drop is charged against
//    RLIMIT_MEMLOCK without it;
//  - CAP_BPF: loading the per-attachment program copies. CAP_SYS_ADMIN
//    covers it today (bpf_capable()); kept so that the set stays right when
//    CAP_SYS_ADMIN can go. It grants nothing CAP_SYS_ADMIN does not.
// Everything else (CAP_DAC_OVERRIDE, CAP_SYS_MODULE, CAP_SYS_PTRACE,
// CAP_SETUID, CAP_CHOWN ...) goes: the socket is chowned before the drop.
CapMask daemon_capabilities() {
  return cap_bit(CAP_BPF) | cap_bit(CAP_NET_ADMIN) | cap_bit(CAP_NET_RAW) | cap_bit(CAP_SYS_ADMIN) |
         cap_bit(CAP_IPC_LOCK);
}

std::string cap_names(CapMask mask) {
  std::string s;
  for (int c = 0; c < 64; ++c) {
    if (!(mask & cap_bit(c))) continue;
    if (!s.empty()) s += ',';
    s += c < kKnownCaps ? kCapNames[c] : "cap_" + std::to_string(c);
  }
  return s;
}

Result<CapMask> parse_cap_names(const std::string& text) {
  CapMask mask = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string name = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!name.empty()) {
      if (name.rfind("cap_", 0) != 0) name = "cap_" + name;
      int found = -1;
      for (int c = 0; c < kKnownCaps; ++c)
        if (name == kCapNames[c]) found = c;
      if (found < 0) return make_error(EINVAL, "unknown capability '" + name + "'");
      mask |= cap_bit(found);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return mask;
}

Result<CapState> current_capabilities() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) != 0) return errno_error("capget");
  CapState s;
  s.effective = data[0].effective | (CapMask{data[1].effective} << 32);
  s.permitted = data[0].permitted | (CapMask{data[1].permitted} << 32);
  s.inheritable = data[0].inheritable | (CapMask{data[1].inheritable} << 32);
  return s;
}

Status limit_capabilities(CapMask keep) {
  auto now = current_capabilities();
  if (!now) return std::move(now).error();
  keep &= now->permitted;
  // The bounding set first: dropping from it needs CAP_SETPCAP, which goes next.
  const int last = last_cap();
  for (int c = 0; c <= last; ++c) {
    if (keep & cap_bit(c)) continue;
    if (::prctl(PR_CAPBSET_READ, c, 0, 0, 0) <= 0) continue;
    if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0)
      return errno_error("dropping " + cap_names(cap_bit(c)) + " from the bounding set");
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return errno_error("clearing the ambient capabilities");
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  for (int i = 0; i < 2; ++i) {
    data[i].effective = data[i].permitted = static_cast<uint32_t>(keep >> (32 * i));
    data[i].inheritable = 0;
  }
  if (::syscall(SYS_capset, &hdr, data) != 0) return errno_error("capset");
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno_error("setting no_new_privs");
  return Ok{};
}

Result<gid_t> resolve_group(const std::string& name, const std::string& option) {
  if (name.empty()) return make_error(EINVAL, option + ": an empty group name");
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(name.c_str(), &end, 10);
  if (std::isdigit(static_cast<unsigned char>(name[0])) && *end == '\0' && errno == 0 && v < 0xffffffffUL)
    return static_cast<gid_t>(v);
  std::string buf(16384, '\0');
  group g{};
  group* found = nullptr;
  int rc = ::getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found);
  if (rc != 0) return errno_error(option + " " + name, rc);
  if (!found) return make_error(ENOENT, option + " " + name + ": no such group");
  return found->gr_gid;
}

std::string group_name(gid_t gid) {
  std::string buf(16384, '\0');
  group g{};
  group* found = nullptr;
  if (::getgrgid_r(gid, &g, buf.data(), buf.size(), &found) == 0 && found) return found->gr_name;
  return std::to_string(gid);
}

}  // namespace xfp
