// XFP_REQUIRE_ROOT(): guard for tests that create namespaces, load BPF
// programs or open raw sockets.
//
// Without the privileges the test is skipped with the reason, so that
// `ctest` as a normal user still runs everything else. CI runs as root with
// XFP_REQUIRE_PRIVILEGED=1: there a missing privilege FAILS the test, because
// a privileged test that silently skips would let a broken data path pass.
#pragma once

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

namespace xfp::test {

// True when CI demands that privileged tests really run.
inline bool privileged_run_required() {
  const char* v = std::getenv("XFP_REQUIRE_PRIVILEGED");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

// Empty when the process may do what the privileged tests do; otherwise a
// sentence naming what is missing. Root alone is not enough: a container or
// `capsh --drop` can leave euid 0 without the capabilities.
inline std::string missing_privileges() {
  if (::geteuid() != 0) return "not running as root (euid " + std::to_string(::geteuid()) + ")";
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
  // glibc has no capget() wrapper without libcap; the raw syscall is stable.
  if (::syscall(SYS_capget, &header, data) != 0)
    return std::string("capget failed: ") + std::strerror(errno);
  struct Needed {
    int cap;
    const char* name;
  };
  // CAP_BPF and CAP_PERFMON are folded into CAP_SYS_ADMIN on older kernels;
  // requiring SYS_ADMIN (setns, mount for netns) covers both.
  static constexpr Needed kNeeded[] = {
      {CAP_NET_ADMIN, "CAP_NET_ADMIN"},
      {CAP_NET_RAW, "CAP_NET_RAW"},
      {CAP_SYS_ADMIN, "CAP_SYS_ADMIN"},
  };
  std::string missing;
  for (const auto& n : kNeeded) {
    const unsigned word = static_cast<unsigned>(n.cap) / 32;
    const unsigned bit = static_cast<unsigned>(n.cap) % 32;
    if (!(data[word].effective & (1u << bit))) missing += std::string(missing.empty() ? "" : ", ") + n.name;
  }
  if (!missing.empty()) return "root but missing capabilities: " + missing;
  return {};
}

}  // namespace xfp::test

// Use as the first statement of a TEST body (or a fixture's SetUp()).
#define XFP_REQUIRE_ROOT()                                                                          \
  do {                                                                                              \
    const std::string xfp_missing_privileges_ = ::xfp::test::missing_privileges();                  \
    if (!xfp_missing_privileges_.empty()) {                                                         \
      if (::xfp::test::privileged_run_required()) {                                                 \
        GTEST_FAIL() << "privileged test cannot run (" << xfp_missing_privileges_                   \
                     << ") and XFP_REQUIRE_PRIVILEGED=1 forbids skipping it";                       \
      } else {                                                                                      \
        GTEST_SKIP() << "needs root with CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN: "               \
                     << xfp_missing_privileges_ << " (set XFP_REQUIRE_PRIVILEGED=1 to fail instead)"; \
      }                                                                                             \
    }                                                                                               \
  } while (0)
