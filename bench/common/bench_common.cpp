#include "bench_common.hpp"

#include <fcntl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

namespace xfpbench {

// ---- machine and invocation ----------------------------------------------
MachineFacts machine_facts() {
  MachineFacts m;
  struct utsname u {};
  if (uname(&u) == 0) {
    m.kernel = u.release;
    m.kernel_version = u.version;
    m.machine = u.machine;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  m.cpus_online = n > 0 ? static_cast<unsigned>(n) : 0;
  if (auto info = read_file("/proc/cpuinfo")) {
    std::istringstream in(*info);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("model name", 0) == 0) {
        auto colon = line.find(':');
        if (colon != std::string::npos) m.cpu_model = line.substr(colon + 2);
        break;
      }
    }
  }
  m.libbpf = std::to_string(libbpf_major_version()) + "." + std::to_string(libbpf_minor_version());
  return m;
}

nlohmann::json to_json(const MachineFacts& m) {
  return {{"kernel", m.kernel},       {"kernel_version", m.kernel_version},
          {"machine", m.machine},     {"cpu_model", m.cpu_model},
          {"cpus_online", m.cpus_online}, {"libbpf", m.libbpf}};
}

std::string describe(const MachineFacts& m) {
  std::ostringstream o;
  o << "kernel " << m.kernel << " (" << m.machine << "), " << m.cpus_online << " CPUs online";
  if (!m.cpu_model.empty()) o << ", " << m.cpu_model;
  o << ", libbpf " << m.libbpf;
  return o.str();
}

namespace {
std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_./=:,+@%") == std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}
}  // namespace

std::string reproduce_command(int argc, char** argv) {
  std::string cmd;
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd)) cmd = "cd " + shell_quote(cwd) + " && ";
  if (getenv("SUDO_USER")) cmd += "sudo ";
  for (int i = 0; i < argc; ++i) {
    if (i) cmd += ' ';
    cmd += shell_quote(argv[i]);
  }
  return cmd;
}

// ---- statistics -----------------------------------------------------------
double min_of(const std::vector<double>& v) {
  return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
}
double max_of(const std::vector<double>& v) {
  return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
}
double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}
double mean_of(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

TestRun test_run(int prog_fd, const std::vector<uint8_t>& frame, int repeat) {
  std::vector<uint8_t> out(frame.size() + 256);  // room for a program that grows the frame
  LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.data(), .data_out = out.data(),
              .data_size_in = static_cast<__u32>(frame.size()), .data_size_out = static_cast<__u32>(out.size()),
              .repeat = repeat);
  TestRun r;
  if (int err = bpf_prog_test_run_opts(prog_fd, &o); err != 0) {
    r.err = err;
    return r;
  }
  r.ns = static_cast<double>(o.duration);
  r.retval = o.retval;
  return r;
}

uint64_t now_ns() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// ---- frames ---------------------------------------------------------------
std::string mac_to_string(uint64_t mac) {
  char buf[18];
  snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", static_cast<unsigned>((mac >> 40) & 0xff),
           static_cast<unsigned>((mac >> 32) & 0xff), static_cast<unsigned>((mac >> 24) & 0xff),
           static_cast<unsigned>((mac >> 16) & 0xff), static_cast<unsigned>((mac >> 8) & 0xff),
           static_cast<unsigned>(mac & 0xff));
  return buf;
}

std::optional<uint64_t> mac_from_string(const std::string& s) {
  unsigned b[6];
  char tail;
  if (sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
    return std::nullopt;
  uint64_t mac = 0;
  for (unsigned x : b) {
    if (x > 0xff) return std::nullopt;
    mac = (mac << 8) | x;
  }
  return mac;
}

namespace {
void put_mac(std::vector<uint8_t>& f, size_t at, uint64_t mac) {
  for (int i = 0; i < 6; ++i) f[at + i] = static_cast<uint8_t>(mac >> (8 * (5 - i)));
}
void put16(std::vector<uint8_t>& f, size_t at, uint16_t v) {
  f[at] = static_cast<uint8_t>(v >> 8);
  f[at + 1] = static_cast<uint8_t>(v);
}
void put32(std::vector<uint8_t>& f, size_t at, uint32_t v) {
  put16(f, at, static_cast<uint16_t>(v >> 16));
  put16(f, at + 2, static_cast<uint16_t>(v));
}
}  // namespace

std::vector<uint8_t> build_frame(const FrameSpec& spec) {
  const uint32_t src_ip = 0xc6120001;  // 198.18.0.1
  const uint32_t dst_ip = 0xc6130001;  // 198.19.0.1
  const uint32_t arp_target = 0xc6120002;  // 198.18.0.2
  std::vector<uint8_t> f(std::max<size_t>(spec.length, 60), 0);
  put_mac(f, 0, spec.dst);
  put_mac(f, 6, spec.src);
  size_t at = 12;
  if (spec.vlan) {
    put16(f, at, 0x8100);
    put16(f, at + 2, static_cast<uint16_t>(*spec.vlan & 0x0fff));
    at += 4;
  }
  switch (spec.payload) {
    case Payload::Ipv4Udp: {
      put16(f, at, 0x0800);
      at += 2;
      const size_t ip = at;
      const uint16_t ip_len = static_cast<uint16_t>(f.size() - ip);
      f[ip] = 0x45;
      put16(f, ip + 2, ip_len);
      f[ip + 8] = 64;  // TTL
      f[ip + 9] = 17;  // UDP
      put32(f, ip + 12, src_ip);
      put32(f, ip + 16, dst_ip);
      uint32_t sum = 0;
      for (size_t i = 0; i < 20; i += 2) sum += (static_cast<uint32_t>(f[ip + i]) << 8) | f[ip + i + 1];
      while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
      put16(f, ip + 10, static_cast<uint16_t>(~sum));
      put16(f, ip + 20, 9);
      put16(f, ip + 22, 9);
      put16(f, ip + 24, static_cast<uint16_t>(ip_len - 20));  // UDP length; checksum 0
      break;
    }
    case Payload::Arp:
      put16(f, at, 0x0806);
      at += 2;
      put16(f, at, 1);        // Ethernet
      put16(f, at + 2, 0x0800);
      f[at + 4] = 6;
      f[at + 5] = 4;
      put16(f, at + 6, 1);    // request
      put_mac(f, at + 8, spec.src);
      put32(f, at + 14, src_ip);
      put32(f, at + 24, arp_target);
      break;
    case Payload::Raw:
      put16(f, at, spec.ethertype);
      break;
  }
  return f;
}

// ---- system ---------------------------------------------------------------
int run_command(const std::vector<std::string>& argv, bool quiet, std::string* output) {
  if (argv.empty()) return -1;
  int pipefd[2] = {-1, -1};
  if (output && pipe2(pipefd, O_CLOEXEC) != 0) return -1;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    if (output) {
      close(pipefd[0]);
      close(pipefd[1]);
    }
    return -1;
  }
  if (pid == 0) {
    if (quiet) {
      int null = open("/dev/null", O_WRONLY);
      if (null >= 0) {
        dup2(null, 1);
        dup2(null, 2);
      }
    }
    if (output) dup2(pipefd[1], 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  if (output) {
    close(pipefd[1]);
    char buf[4096];
    ssize_t n;
    while ((n = read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
      if (n > 0) output->append(buf, static_cast<size_t>(n));
    close(pipefd[0]);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  if (!out) return false;
  out << text;
  return static_cast<bool>(out.flush());
}

bool write_json(const std::string& path, const nlohmann::json& j) {
  if (path == "-") {
    std::cout << j.dump(2) << std::endl;
    return true;
  }
  return write_file(path, j.dump(2) + "\n");
}

CpuTimes read_cpu_times() {
  CpuTimes c;
  if (auto s = read_file("/proc/stat")) {
    std::istringstream in(*s);
    std::string cpu;
    in >> cpu >> c.user >> c.nice >> c.system >> c.idle >> c.iowait >> c.irq >> c.softirq >> c.steal;
  }
  return c;
}

}  // namespace xfpbench
