#include "rx_cpu.hpp"

#include <dirent.h>
#include <sched.h>

#include <cstdlib>
#include <fstream>

#include <fmt/format.h>

namespace xfpbench {

std::set<pid_t> napi_threads(const std::string& dev) {
  std::set<pid_t> out;
  const std::string prefix = ("napi/" + dev + "-").substr(0, 15);
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end) continue;
    std::ifstream in(fmt::format("/proc/{}/comm", pid));
    std::string comm;
    if (std::getline(in, comm) && comm.rfind(prefix, 0) == 0) out.insert(static_cast<pid_t>(pid));
  }
  closedir(d);
  return out;
}

std::optional<uint64_t> task_cpu_ns(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/schedstat", pid));
  uint64_t ns = 0;
  if (!(in >> ns)) return std::nullopt;
  return ns;
}

uint64_t tasks_cpu_ns(const std::set<pid_t>& pids) {
  uint64_t sum = 0;
  for (pid_t p : pids) sum += task_cpu_ns(p).value_or(0);
  return sum;
}

bool pin_tasks(const std::set<pid_t>& pids, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  bool ok = true;
  for (pid_t p : pids) ok = sched_setaffinity(p, sizeof set, &set) == 0 && ok;
  return ok;
}

}  // namespace xfpbench
