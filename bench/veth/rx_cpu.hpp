// CPU time of the receive path when the receiving veth's NAPI is threaded:
// the NAPI poll (the veth's receive, its XDP program, and for XDP_PASS the
// stack) then runs in a kernel thread of its own, "napi/DEV-ID", whose
// on-CPU time is the whole receive side's cost. Used by the benches when the
// user-space generator, not the receiver, sets the rate.
//
// The thread is found by difference: the "napi/DEV-" threads present after
// XDP was attached and NAPI made threaded that were not there before (veth
// creates its NAPI when XDP is attached and removes it on detach). Interface
// names are per namespace, so a second bench running at the same moment
// could add one of its own: the caller takes the set as it is.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>

namespace xfpbench {

// Threads whose comm starts with "napi/DEV-" (comm is cut at 15 characters).
std::set<pid_t> napi_threads(const std::string& dev);
// On-CPU time of a task in ns (first field of /proc/PID/schedstat, the clock
// of CLOCK_THREAD_CPUTIME_ID); nullopt once it is gone.
std::optional<uint64_t> task_cpu_ns(pid_t pid);
// The sum over `pids` (a task that is gone counts 0).
uint64_t tasks_cpu_ns(const std::set<pid_t>& pids);
// Pins every task of `pids` to `cpu`; false when one refused.
bool pin_tasks(const std::set<pid_t>& pids, int cpu);

}  // namespace xfpbench
