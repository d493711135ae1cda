// Receive injection: the internal veth pair of one network namespace.
//
// AF_XDP can only transmit. A frame that a callout permits (or injects) must
// reach the host stack as if it had been received on its interface X: a
// socket bound to X, AF_PACKET on X and the IP stack see it on X, unchanged.
// User space transmits it into end A of this pair with a struct
// xfp_reinject_trailer appended (abi.h); the TC ingress filters on end B
// (bpf/xfp_reinject.bpf.c) check and strip the trailer and put the frame
// into X's ingress with a mirred redirect, which the kernel exempts from
// X's generic XDP program: an injected frame is not classified again.
//
// One pair per namespace, with fixed names, no addresses, IPv6 disabled,
// ARP and multicast off: it carries nothing but injected frames. X must be
// in the pair's namespace and registered with add_target().
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "xfp/abi.h"
#include "xfp/result.hpp"

namespace xfp {

// How end B hands a frame to X. Only Mirred keeps a frame away from X's
// generic XDP program (measured on Linux 6.18; see xfp_reinject.bpf.c); the
// BPF-helper variants exist so that tests measure them on every kernel.
enum class ReinjectMethod : uint8_t {
  Mirred,            // per-target "mirred ingress redirect" filters (add_target)
  BpfRedirect,       // bpf_redirect(X, BPF_F_INGRESS): any X, no add_target needed
  BpfCloneRedirect,  // bpf_clone_redirect(X, BPF_F_INGRESS) + drop
};

struct ReinjectOptions {
  std::string ifname_a = "xfpinj0";  // user space transmits here
  std::string ifname_b = "xfpinj1";  // xfp_reinject runs on its TC ingress
  // Both ends: the largest frame of any X (its MTU, 14 bytes of header, up
  // to two VLAN tags) plus the 8-byte trailer must pass A's transmit and B's
  // receive checks. veth allows up to 65535 (ETH_MAX_MTU), which covers every
  // X, jumbo frames included; nothing else depends on it (no addresses).
  unsigned mtu = 65535;
  ReinjectMethod method = ReinjectMethod::Mirred;
};

struct ReinjectCounters {
  uint64_t c[XFP_REINJECT_COUNT] = {};  // enum xfp_reinject_counter, summed over CPUs
  uint64_t ok() const { return c[XFP_REINJECT_OK]; }
  uint64_t bad() const { return c[XFP_REINJECT_BAD]; }
  uint64_t failed() const { return c[XFP_REINJECT_FAILED]; }
};

class ReinjectLink {
 public:
  // Creates the pair in the calling thread's network namespace and attaches
  // xfp_reinject. A pair of the same names left there (by a killed daemon,
  // or by another ReinjectLink) is deleted and made anew: its attributes,
  // filters and programs are then all known.
  static Result<std::unique_ptr<ReinjectLink>> create(const ReinjectOptions& options = {});

  // Deletes the pair (both ends go together), unless it is no longer this
  // object's (replaced by a later create()). Works from any thread and
  // namespace: it talks to the pair's namespace through a socket opened there.
  ~ReinjectLink();
  ReinjectLink(ReinjectLink&&) noexcept;
  ReinjectLink& operator=(ReinjectLink&&) noexcept;
  ReinjectLink(const ReinjectLink&) = delete;
  ReinjectLink& operator=(const ReinjectLink&) = delete;

  // Frames whose trailer names `ifindex` (an interface of the pair's
  // namespace) are delivered to its ingress; frames for an interface that is
  // not a target are dropped and counted as XFP_REINJECT_FAILED. Adding a
  // target again refreshes it (the interface's MAC decides the delivered
  // frame's packet type, host or other-host, so re-add after a MAC change).
  // Mirred only; the other methods reach any interface without this.
  Status add_target(uint32_t ifindex);
  Status remove_target(uint32_t ifindex);

  int ifindex_a() const;
  int ifindex_b() const;
  const std::string& ifname_a() const;
  const std::string& ifname_b() const;
  ReinjectCounters counters() const;

  struct Impl;

 private:
  explicit ReinjectLink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace xfp
