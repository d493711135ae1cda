// Least privilege for the daemon: Linux capabilities (raw capget/capset and
// prctl, no libcap), and group names for the sockets' --group options.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "xfp/result.hpp"

namespace xfp {

using CapMask = uint64_t;  // bit n = capability n (linux/capability.h)

constexpr CapMask cap_bit(int cap) { return CapMask{1} << cap; }

struct CapState {
  CapMask effective = 0, permitted = 0, inheritable = 0;
};

// The capabilities `xfp daemon` keeps after start-up unless --keep-caps; see
// least_privilege.cpp and docs/RELIABILITY.md for what each one is needed by.
CapMask daemon_capabilities();

// "cap_bpf,cap_net_admin" <-> mask. Unknown names are an error.
std::string cap_names(CapMask mask);
Result<CapMask> parse_cap_names(const std::string& text);

Result<CapState> current_capabilities();

// Keeps only `keep` (intersected with what the process has): drops the rest
// from the bounding set (so no execve can get them back, root or not), the
// ambient and inheritable sets, then the permitted and effective sets, and
// sets no_new_privs. Irreversible for the process.
Status limit_capabilities(CapMask keep);

// A group by name or numeric gid ("xfp", "4242"); ENOENT names the option.
Result<gid_t> resolve_group(const std::string& name_or_gid, const std::string& option);
// The name of a gid, or its number when it has none.
std::string group_name(gid_t gid);

}  // namespace xfp
