// Test harness for the `xfp` binary: run it with separate stdout and stderr,
// start and stop `xfp daemon` inside a test network namespace, temporary
// directories that remove themselves.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/netns.hpp"
#include "support/privileges.hpp"
#include "xfp/control.hpp"

namespace xfp::clitest {

using namespace std::chrono_literals;
using nlohmann::json;

// XFP_BUILD_DIR (set by ctest), else the build tree this test binary sits in
// (BUILD/tests/xfp_cli_tests).
inline std::string xfp_path() {
  if (const char* dir = std::getenv("XFP_BUILD_DIR"); dir && *dir) return std::string(dir) + "/tools/xfp";
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("./tools/xfp") : (self.parent_path().parent_path() / "tools/xfp").string();
}

struct Outcome {
  int code = -1;      // exit status; -1 when a signal ended it
  std::string out;    // stdout
  std::string err;    // stderr
};

inline std::ostream& operator<<(std::ostream& os, const Outcome& r) {
  return os << "exit " << r.code << "\n--- stdout\n" << r.out << "--- stderr\n" << r.err;
}

struct RunOptions {
  std::string input;                     // fed to stdin
  std::chrono::milliseconds timeout = 30s;  // then SIGKILL
  std::optional<std::chrono::milliseconds> interrupt_after;  // SIGINT then
  std::vector<std::string> env;          // extra "K=V"
  std::optional<uid_t> uid;              // run as this uid/gid
};

// fork/exec without a shell; stdout and stderr captured apart.
inline Outcome run_process(const std::vector<std::string>& argv, const RunOptions& opt = {}) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    for (const auto& e : opt.env) ::putenv(const_cast<char*>(e.c_str()));
    if (opt.uid && (::setgroups(0, nullptr) != 0 || ::setresgid(*opt.uid, *opt.uid, *opt.uid) != 0 ||
                    ::setresuid(*opt.uid, *opt.uid, *opt.uid) != 0))
      ::_exit(126);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  // Small inputs fit in the pipe buffer; the tests feed only small ones.
  if (!opt.input.empty()) {
    [[maybe_unused]] auto n = ::write(in[1], opt.input.data(), opt.input.size());
  }
  ::close(in[1]);

  Outcome r;
  const auto start = std::chrono::steady_clock::now();
  bool interrupted = false, killed = false;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  while (open_fds > 0) {
    auto elapsed = std::chrono::steady_clock::now() - start;
    if (opt.interrupt_after && !interrupted && elapsed >= *opt.interrupt_after) {
      ::kill(pid, SIGINT);
      interrupted = true;
    }
    if (!killed && elapsed >= opt.timeout) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    if (::poll(fds, 2, 50) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

class TempDir {
 public:
  TempDir() {
    char templ[] = "/tmp/xfp-cli-XXXXXX";
    if (::mkdtemp(templ)) path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// `xfp daemon` in a namespace, its output in a log file; `env` ("K=V") is
// set for the daemon alone (`ip netns exec NS env K=V... xfp daemon ...`).
class Daemon {
 public:
  Daemon(std::string netns, std::string socket, std::string state_dir, std::string log,
         std::vector<std::string> env = {})
      : netns_(std::move(netns)),
        socket_(std::move(socket)),
        state_dir_(std::move(state_dir)),
        log_(std::move(log)),
        env_(std::move(env)) {}
  ~Daemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  std::vector<std::string> argv(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> a{"ip", "netns", "exec", netns_};
    if (!env_.empty()) {
      a.push_back("env");
      a.insert(a.end(), env_.begin(), env_.end());
    }
    a.insert(a.end(), {xfp_path(), "daemon", "--socket", socket_, "--state-dir", state_dir_});
    // The build tree's plugin directories (sample plugins, broken ones, the probe).
    const auto build = std::filesystem::path(xfp_path()).parent_path().parent_path();
    for (const char* dir : {"plugins", "tests/plugins", "tests/integration/probe_plugin"})
      a.insert(a.end(), {"--plugin-dir", (build / dir).string()});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  // Starts it and waits until it answers on its socket.
  ::testing::AssertionResult start(const std::vector<std::string>& extra = {}) {
    if (pid_ > 0) return ::testing::AssertionFailure() << "daemon already running";
    int log_fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return ::testing::AssertionFailure() << "cannot open " << log_;
    auto args = argv(extra);
    pid_t pid = ::fork();
    if (pid == 0) {
      int devnull = ::open("/dev/null", O_RDONLY);
      ::dup2(devnull, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      std::vector<char*> v;
      for (auto& s : args) v.push_back(s.data());
      v.push_back(nullptr);
      ::execvp(v[0], v.data());
      ::_exit(127);
    }
    ::close(log_fd);
    pid_ = pid;
    const auto deadline = std::chrono::steady_clock::now() + start_timeout_;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return ::testing::AssertionFailure() << "the daemon exited during start-up:\n" << log();
      }
      if (auto c = control::Client::connect(socket_, 2000); c.ok() && c->call({{"op", "ping"}}).ok())
        return ::testing::AssertionSuccess();
      std::this_thread::sleep_for(50ms);
    }
    return ::testing::AssertionFailure() << "the daemon did not answer within " << start_timeout_.count()
                                         << " s:\n" << log();
  }

  // Sends `sig` and waits for the exit; returns the exit status (-1 for a signal).
  int stop(int sig = SIGTERM) {
    if (pid_ <= 0) return -2;
    ::kill(pid_, sig);
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // How long start() waits for the first answer (default 20 s).
  void set_start_timeout(std::chrono::seconds t) { start_timeout_ = t; }

  // `xfp --socket S ARGS...` inside the daemon's namespace.
  std::vector<std::string> cli_argv(const std::vector<std::string>& args) const {
    std::vector<std::string> a{"ip", "netns", "exec", netns_, xfp_path(), "--socket", socket_};
    a.insert(a.end(), args.begin(), args.end());
    return a;
  }
  Outcome cli(const std::vector<std::string>& args, const RunOptions& opt = {}) const {
    return run_process(cli_argv(args), opt);
  }
  // `xfp --json ARGS...`, which must succeed; its stdout parsed.
  json cli_json(const std::vector<std::string>& args, const RunOptions& opt = {}) const {
    std::vector<std::string> a{"--json"};
    a.insert(a.end(), args.begin(), args.end());
    Outcome r = cli(a, opt);
    EXPECT_EQ(r.code, 0) << r;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r;
    return j;
  }

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  std::string log() const { return read_file(log_); }
  const std::string& socket() const { return socket_; }
  const std::string& state_dir() const { return state_dir_; }
  std::string state_file() const { return state_dir_ + "/state.json"; }

 private:
  std::string netns_, socket_, state_dir_, log_;
  std::vector<std::string> env_;
  std::chrono::seconds start_timeout_{20};
  pid_t pid_ = -1;
};

// A namespace with a veth pair (both ends inside) and a daemon serving a
// socket in a temporary directory. Tests drive it with xfp(...).
class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    auto ns = test::NetNs::create();
    ASSERT_TRUE(ns.ok()) << ns.error().message;
    ns_.emplace(std::move(*ns));
    auto veth = test::VethPair::create(*ns_, *ns_);
    ASSERT_TRUE(veth.ok()) << veth.error().message;
    veth_.emplace(std::move(*veth));
    ASSERT_FALSE(dir_.path().empty());
    daemon_.emplace(ns_->name(), dir_ / "xfp.sock", dir_ / "state", dir_ / "daemon.log");
    ASSERT_TRUE(daemon_->start());
  }

  void TearDown() override {
    if (daemon_ && daemon_->running()) {
      EXPECT_EQ(daemon_->stop(), 0) << daemon_->log();
    }
    daemon_.reset();
    veth_.reset();
    ns_.reset();
  }

  std::vector<std::string> cli_argv(const std::vector<std::string>& args) const { return daemon_->cli_argv(args); }

  // `xfp --socket S ARGS...` inside the namespace.
  Outcome xfp(const std::vector<std::string>& args, const RunOptions& opt = {}) const { return daemon_->cli(args, opt); }

  // `xfp --json ARGS...`, which must succeed; its stdout parsed.
  json xfp_json(const std::vector<std::string>& args) const { return daemon_->cli_json(args); }

  // Ids of the filters, from `filter list --json`.
  std::vector<uint64_t> filter_ids() const {
    std::vector<uint64_t> ids;
    for (const json& f : xfp_json({"filter", "list"}).value("filters", json::array()))
      ids.push_back(f.value("id", uint64_t{0}));
    return ids;
  }

  std::optional<test::NetNs> ns_;
  std::optional<test::VethPair> veth_;
  TempDir dir_;
  std::optional<Daemon> daemon_;
};

}  // namespace xfp::clitest
