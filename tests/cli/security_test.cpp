// Security of the daemon (issue 6, item 4): who may use the control socket
// (root, or a member of --group; refused peers get a reason, at the client and
// in the log), bounded requests, where plugins may load from (--plugin-dir),
// the modes of what the daemon writes (state, socket, bpffs pins) and the
// capabilities it keeps after start-up.
#include <grp.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cli_harness.hpp"
#include "xfp/least_privilege.hpp"

namespace xfp::clitest {
namespace {

namespace fs = std::filesystem;

constexpr uid_t kNobody = 65534;
constexpr gid_t kGroup = 54321;  // a gid with no name: no /etc/group entry is needed

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string build_dir() { return fs::path(xfp_path()).parent_path().parent_path().string(); }
std::string allowlist_path() { return build_dir() + "/plugins/libxfp_mac_allowlist.so"; }

// `xfp ARGS` as uid/gid `uid` with the supplementary groups `groups`.
Outcome run_as(uid_t uid, const std::vector<gid_t>& groups, const std::vector<std::string>& args) {
  // run_process can only drop to a uid with no groups; this sets them first.
  std::vector<std::string> argv{"setpriv", "--reuid=" + std::to_string(uid), "--regid=" + std::to_string(uid)};
  if (groups.empty()) {
    argv.push_back("--clear-groups");
  } else {
    std::string list;
    for (gid_t g : groups) list += (list.empty() ? "" : ",") + std::to_string(g);
    argv.push_back("--groups=" + list);
  }
  argv.push_back(xfp_path());
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv);
}

uint64_t status_hex(int pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1), nullptr, 16);
  return ~0ull;
}

int daemon_pid(const std::string& socket) {
  auto c = control::Client::connect(socket, 2000);
  if (!c) return -1;
  auto r = c->call({{"op", "ping"}});
  return r ? r->value("pid", -1) : -1;
}

// A daemon of its own per test (the fixture's takes no options).
class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    XFP_REQUIRE_ROOT();
    auto ns = test::NetNs::create();
    ASSERT_TRUE(ns.ok()) << ns.error().message;
    ns_.emplace(std::move(*ns));
    ASSERT_FALSE(dir_.path().empty());
    ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);  // others may reach the socket file (its mode decides)
  }
  void TearDown() override {
    if (daemon_ && daemon_->running()) {
      EXPECT_EQ(daemon_->stop(), 0) << daemon_->log();
    }
    daemon_.reset();
    ns_.reset();
  }
  void start(const std::vector<std::string>& extra) {
    daemon_.emplace(ns_->name(), dir_ / "xfp.sock", dir_ / "state", dir_ / "daemon.log");
    ASSERT_TRUE(daemon_->start(extra));
  }
  Outcome xfp(const std::vector<std::string>& args) const {
    std::vector<std::string> a{"ip", "netns", "exec", ns_->name(), xfp_path(), "--socket", daemon_->socket()};
    a.insert(a.end(), args.begin(), args.end());
    return run_process(a);
  }

  std::optional<test::NetNs> ns_;
  TempDir dir_;
  std::optional<Daemon> daemon_;
};

TEST_F(SecurityTest, WithoutGroupTheSocketIs0600AndOthersAreRefusedWithTheReason) {
  start({});
  struct stat st {};
  ASSERT_EQ(::stat(daemon_->socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);

  Outcome r = run_as(kNobody, {}, {"--socket", daemon_->socket(), "status"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: cannot reach the daemon at " + daemon_->socket() + ": permission denied: uid 65534 is not root\n");

  // A socket whose mode lets everyone in: the peer check still refuses.
  ASSERT_EQ(::chmod(daemon_->socket().c_str(), 0666), 0);
  r = run_as(kNobody, {kGroup}, {"--socket", daemon_->socket(), "flush"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: permission denied: uid 65534 is not root (the daemon runs without --group)\n");
  EXPECT_TRUE(contains(daemon_->log(), "refused uid 65534 (pid ")) << daemon_->log();
  EXPECT_EQ(xfp({"status"}).code, 0);
}

TEST_F(SecurityTest, GroupMembersAreAcceptedAndOthersRefused) {
  start({"--group", std::to_string(kGroup)});
  struct stat st {};
  ASSERT_EQ(::stat(daemon_->socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, kGroup);

  // A member (supplementary group) reads the status and changes the policy.
  Outcome r = run_as(kNobody, {kGroup}, {"--socket", daemon_->socket(), "status"});
  EXPECT_EQ(r.code, 0) << r;
  r = run_as(kNobody, {kGroup}, {"--socket", daemon_->socket(), "filter", "add", "ethertype", "eq", "lldp",
                                 "action", "block"});
  EXPECT_EQ(r.code, 0) << r;

  // Not a member: the file mode refuses it, with the same words as the daemon.
  const std::string refusal = "permission denied: uid 65534 is not root and not in group " + std::to_string(kGroup);
  r = run_as(kNobody, {}, {"--socket", daemon_->socket(), "status"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: cannot reach the daemon at " + daemon_->socket() + ": " + refusal + "\n");
  // ...and with the file opened to all, SO_PEERCRED/SO_PEERGROUPS refuse it.
  ASSERT_EQ(::chmod(daemon_->socket().c_str(), 0666), 0);
  r = run_as(kNobody, {}, {"--socket", daemon_->socket(), "flush"});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_EQ(r.err, "xfp: " + refusal + "\n");
  EXPECT_TRUE(contains(daemon_->log(), refusal)) << daemon_->log();
  EXPECT_EQ(xfp({"filter", "list"}).code, 0);
}

TEST_F(SecurityTest, AnUnknownGroupIsAUsageError) {
  Daemon d(ns_->name(), dir_ / "x.sock", dir_ / "state", dir_ / "x.log");
  Outcome r = run_process(d.argv({"--group", "no-such-group-xfp"}));
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_EQ(r.err, "xfp: --group no-such-group-xfp: no such group\n");
}

TEST_F(SecurityTest, DeeplyNestedRequestsAreRefused) {
  start({});
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", daemon_->socket().c_str());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  std::string body = "{\"op\":\"ping\",\"x\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  std::string msg(4, '\0');
  for (int i = 0; i < 4; ++i) msg[i] = static_cast<char>((body.size() >> (8 * i)) & 0xff);
  msg += body;
  ASSERT_EQ(::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL), static_cast<ssize_t>(msg.size()));
  auto reply = control::recv_message(fd, 10000);
  ::close(fd);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ((*reply)["error"], "malformed request: nested deeper than 32 levels") << *reply;
  EXPECT_EQ(xfp({"status"}).code, 0);
}

// The loader's policy, through the daemon: the reason names the path.
TEST_F(SecurityTest, PluginsLoadOnlyFromRootOwnedPluginDirectories) {
  const std::string good = dir_ / "good", loose = dir_ / "loose", elsewhere = dir_ / "elsewhere";
  for (const auto& d : {good, loose, elsewhere}) ASSERT_TRUE(fs::create_directory(d));
  ASSERT_EQ(::chmod(good.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(loose.c_str(), 0775), 0);
  for (const auto& d : {good, loose, elsewhere}) fs::copy_file(allowlist_path(), d + "/allow.so");
  fs::copy_file(allowlist_path(), good + "/theirs.so");
  ASSERT_EQ(::chown((good + "/theirs.so").c_str(), kNobody, 0), 0);
  fs::copy_file(allowlist_path(), good + "/writable.so");
  ASSERT_EQ(::chmod((good + "/writable.so").c_str(), 0666), 0);
  fs::create_symlink(elsewhere + "/allow.so", good + "/link.so");
  start({"--plugin-dir", good, "--plugin-dir", loose});

  struct Case {
    std::string path, reason;
  };
  const std::string p = ": refused by the plugin policy: ";
  for (const Case& c : std::vector<Case>{
           {elsewhere + "/allow.so", elsewhere + "/allow.so" + p + "it is not in a plugin directory ("},
           {elsewhere + "/allow.so", good + ", " + loose + "; see xfp daemon --plugin-dir)"},
           {good + "/link.so", good + "/link.so" + p + "its real path " + elsewhere +
                                   "/allow.so is not in a plugin directory"},
           {loose + "/allow.so", loose + "/allow.so" + p + "the plugin directory " + loose +
                                     " is writable by group or others (mode 0775)"},
           {good + "/theirs.so", good + "/theirs.so" + p + "the plugin file " + good +
                                     "/theirs.so is owned by uid 65534, not by root"},
           {good + "/writable.so", good + "/writable.so" + p + "the plugin file " + good +
                                       "/writable.so is writable by group or others (mode 0666)"}}) {
    Outcome r = xfp({"callout", "load", c.path});
    EXPECT_EQ(r.code, 1) << r;
    EXPECT_TRUE(contains(r.err, c.reason)) << "expected: " << c.reason << "\n" << r;
  }
  EXPECT_TRUE(contains(daemon_->log(), "no plugin will load from " + loose)) << daemon_->log();
  Outcome r = xfp({"callout", "load", good + "/allow.so", "--config", "allow=02:00:00:00:00:01"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_TRUE(contains(xfp({"callout", "list"}).out, "mac_allowlist"));
}

// What the daemon writes is root's alone: the state directory and file, the
// socket, and any pin under the bpffs libxdp uses (LIBXDP_BPFFS, a bpffs of
// this test's own).
TEST_F(SecurityTest, StateAndPinsAreNotWritableByOthers) {
  const std::string bpffs = dir_ / "bpffs";
  ASSERT_TRUE(fs::create_directory(bpffs));
  ASSERT_EQ(::mount("bpf", bpffs.c_str(), "bpf", 0, "mode=0700"), 0) << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{bpffs};
  auto veth = test::VethPair::create(*ns_, *ns_);
  ASSERT_TRUE(veth.ok()) << veth.error().message;
  // The harness's Daemon runs `ip netns exec NS xfp daemon`: put env in front.
  daemon_.emplace(ns_->name(), dir_ / "xfp.sock", dir_ / "state", dir_ / "daemon.log");
  {
    // Started by hand for the environment variable.
    auto args = daemon_->argv({});
    args.insert(args.begin() + 4, {"env", "LIBXDP_BPFFS=" + bpffs});
    int log_fd = ::open((dir_ / "daemon.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      std::vector<char*> v;
      for (auto& s : args) v.push_back(s.data());
      v.push_back(nullptr);
      ::execvp(v[0], v.data());
      ::_exit(127);
    }
    ::close(log_fd);
    int answered = -1;
    for (int i = 0; i < 200 && answered < 0; ++i) {
      std::this_thread::sleep_for(50ms);
      answered = daemon_pid(dir_ / "xfp.sock");
    }
    ASSERT_GT(answered, 0) << read_file(dir_ / "daemon.log");
    ASSERT_EQ(xfp({"attach", veth->a().name}).code, 0) << read_file(dir_ / "daemon.log");
    ASSERT_EQ(xfp({"filter", "add", "ethertype", "eq", "lldp", "action", "block", "flags", "persistent"}).code, 0);

    struct stat st {};
    ASSERT_EQ(::stat((dir_ / "state").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    ASSERT_EQ(::stat((dir_ / "state/state.json").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    ASSERT_EQ(::stat((dir_ / "xfp.sock").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    size_t pins = 0, entries = 0;
    for (const auto& e : fs::recursive_directory_iterator(bpffs)) {
      ASSERT_EQ(::lstat(e.path().c_str(), &st), 0);
      ++entries;
      const std::string name = e.path().filename().string();
      if (!S_ISDIR(st.st_mode) && name != "progs.debug" && name != "maps.debug") ++pins;
      EXPECT_EQ(st.st_uid, 0u) << e.path();
      EXPECT_EQ(st.st_mode & 0077, 0u) << e.path() << " mode " << std::oct << (st.st_mode & 07777);
    }
    std::cout << "[ measured ] " << entries << " entries under the bpffs after attach, " << pins
              << " of them pins (" << (pins ? "libxdp's dispatcher" : "libxdp used no dispatcher") << ")\n";
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(dir_ / "daemon.log");
  }
  daemon_.reset();
  EXPECT_TRUE(veth->remove().ok());
}

TEST_F(SecurityTest, TheDaemonKeepsOnlyTheCapabilitiesItNeeds) {
  start({});
  int pid = daemon_pid(daemon_->socket());
  ASSERT_GT(pid, 0);
  const uint64_t want = daemon_capabilities();
  EXPECT_EQ(status_hex(pid, "CapEff"), want) << cap_names(status_hex(pid, "CapEff"));
  EXPECT_EQ(status_hex(pid, "CapPrm"), want);
  EXPECT_EQ(status_hex(pid, "CapBnd"), want) << "an execve would get the dropped ones back";
  EXPECT_EQ(status_hex(pid, "CapInh"), 0u);
  EXPECT_EQ(status_hex(pid, "CapAmb"), 0u);
  EXPECT_EQ(status_hex(pid, "NoNewPrivs"), 1u);
  EXPECT_TRUE(contains(daemon_->log(), "capabilities: " + cap_names(want))) << daemon_->log();
  // It still does its work: attach, a filter, detach.
  auto veth = test::VethPair::create(*ns_, *ns_);
  ASSERT_TRUE(veth.ok()) << veth.error().message;
  Outcome r = xfp({"attach", veth->a().name});
  EXPECT_EQ(r.code, 0) << r << daemon_->log();
  r = xfp({"filter", "add", "ethertype", "eq", "arp", "action", "block"});
  EXPECT_EQ(r.code, 0) << r;
  r = xfp({"detach", veth->a().name});
  EXPECT_EQ(r.code, 0) << r << daemon_->log();
  EXPECT_EQ(daemon_->stop(), 0) << daemon_->log();

  // --keep-caps keeps them all.
  start({"--keep-caps"});
  pid = daemon_pid(daemon_->socket());
  ASSERT_GT(pid, 0);
  auto mine = current_capabilities();
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(status_hex(pid, "CapEff"), mine->effective);
  EXPECT_TRUE(contains(daemon_->log(), "(--keep-caps)")) << daemon_->log();
  EXPECT_EQ(daemon_->stop(), 0) << daemon_->log();

  // --port-group: plugins make their ports after the drop and hand them to
  // that group, which needs cap_chown as well.
  start({"--port-group", std::to_string(kGroup)});
  pid = daemon_pid(daemon_->socket());
  ASSERT_GT(pid, 0);
  EXPECT_EQ(status_hex(pid, "CapEff"), want | cap_bit(CAP_CHOWN)) << cap_names(status_hex(pid, "CapEff"));
  EXPECT_TRUE(veth->remove().ok());
}

}  // namespace
}  // namespace xfp::clitest
