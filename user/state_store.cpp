// The state file: JSON form, validation on load, atomic replacement on save.
#include "xfp/state_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "xfp/filter_json.hpp"

namespace xfp {

namespace {

using nlohmann::json;

constexpr const char* kFormatTag = "xfp-state";
constexpr const char* kFixHint = "; repair or remove it, or start the daemon with --reset-state";

struct ModeName {
  XdpMode mode;
  const char* name;
};
constexpr ModeName kModes[] = {{XdpMode::Auto, "auto"}, {XdpMode::Native, "native"}, {XdpMode::Generic, "generic"}};

// Closes an fd on every path out of a function.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

Status write_all(int fd, const std::string& data, const std::string& what) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("writing " + what);
    }
    off += static_cast<size_t>(n);
  }
  return Ok{};
}

Status fsync_dir(const std::string& dir) {
  FdGuard d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) return errno_error("opening " + dir);
  if (::fsync(d.fd) != 0) return errno_error("fsync " + dir);
  return Ok{};
}

Result<Action> default_from_json(const json& j, const char* layer) {
  auto it = j.find(layer);
  if (it == j.end()) return Action::Permit;
  auto a = it->is_string() ? action_from_name(it->get<std::string>()) : std::nullopt;
  if (!a || (*a != Action::Permit && *a != Action::Block))
    return make_error(EINVAL, std::string("defaults.") + layer + " must be \"permit\" or \"block\"");
  return *a;
}

Result<AttachRecord> attach_from_json(const json& j) {
  AttachRecord r;
  r.ifname = j.at("device").get<std::string>();
  if (r.ifname.empty()) return make_error(EINVAL, "attachment with an empty device name");
  auto mode = xdp_mode_from_name(j.value("mode", std::string("auto")));
  if (!mode) return make_error(EINVAL, "attachment " + r.ifname + ": unknown XDP mode");
  r.mode = *mode;
  r.inbound = j.value("inbound", true);
  r.outbound = j.value("outbound", true);
  return r;
}

// The body of state_from_json; nlohmann exceptions are caught by the caller.
Result<SavedState> parse_state(const json& j) {
  if (!j.is_object()) return make_error(EINVAL, "not a JSON object");
  if (j.value("format", std::string()) != kFormatTag)
    return make_error(EINVAL, std::string("no \"format\": \"") + kFormatTag + "\" member");
  auto version = j.find("version");
  if (version == j.end()) return make_error(EINVAL, "no \"version\" member");
  if (!version->is_number_integer() || version->get<int64_t>() != kStateFormatVersion)
    return make_error(EPROTO, "format version " + version->dump() + ", but this xfp reads version " +
                                  std::to_string(kStateFormatVersion));
  SavedState s;
  for (const json& sj : j.value("sublayers", json::array())) {
    auto sl = sublayer_from_json(sj);
    if (!sl) return std::move(sl).error().context("sublayer " + sj.dump());
    s.sublayers.push_back(std::move(*sl));
  }
  const json defaults = j.value("defaults", json::object());
  auto in = default_from_json(defaults, "inbound");
  if (!in) return std::move(in).error();
  auto out = default_from_json(defaults, "outbound");
  if (!out) return std::move(out).error();
  s.defaults[XFP_LAYER_INBOUND] = *in;
  s.defaults[XFP_LAYER_OUTBOUND] = *out;
  for (const json& fj : j.value("filters", json::array())) {
    auto f = filter_from_json(fj);
    if (!f) return std::move(f).error().context("filter " + fj.value("id", json(nullptr)).dump());
    if (f->id == 0) return make_error(EINVAL, "a filter without an id");  // ids survive restarts
    s.filters.push_back(std::move(*f));
  }
  const json next_id = j.value("next_filter_id", json(1));
  if (!next_id.is_number_unsigned() || next_id.get<uint64_t>() == 0)
    return make_error(EINVAL, "\"next_filter_id\" must be a positive integer");
  s.next_filter_id = next_id.get<uint64_t>();
  for (const json& aj : j.value("attachments", json::array())) {
    auto a = attach_from_json(aj);
    if (!a) return std::move(a).error();
    s.attachments.push_back(std::move(*a));
  }
  for (const json& pj : j.value("plugins", json::array())) {
    if (!pj.is_object() || !pj.contains("path") || !pj["path"].is_string())
      return make_error(EINVAL, "a plugin entry without a \"path\" string");
    s.plugins.push_back({pj["path"].get<std::string>(), pj.value("config", std::string())});
  }
  return s;
}

}  // namespace

std::string_view xdp_mode_name(XdpMode m) {
  for (const auto& e : kModes)
    if (e.mode == m) return e.name;
  return "auto";
}

std::optional<XdpMode> xdp_mode_from_name(std::string_view s) {
  for (const auto& e : kModes)
    if (s == e.name) return e.mode;
  return std::nullopt;
}

json state_to_json(const SavedState& s) {
  json j = {{"format", kFormatTag}, {"version", kStateFormatVersion}};
  j["sublayers"] = json::array();
  for (const auto& sl : s.sublayers) j["sublayers"].push_back(sublayer_to_json(sl));
  j["defaults"] = {{"inbound", action_name(s.defaults[XFP_LAYER_INBOUND])},
                   {"outbound", action_name(s.defaults[XFP_LAYER_OUTBOUND])}};
  j["filters"] = json::array();
  for (const auto& f : s.filters) j["filters"].push_back(filter_to_json(f));  // with its id
  j["next_filter_id"] = s.next_filter_id;
  j["attachments"] = json::array();
  for (const auto& a : s.attachments)
    j["attachments"].push_back(
        {{"device", a.ifname}, {"mode", xdp_mode_name(a.mode)}, {"inbound", a.inbound}, {"outbound", a.outbound}});
  j["plugins"] = json::array();
  for (const auto& p : s.plugins) j["plugins"].push_back({{"path", p.path}, {"config", p.config}});
  return j;
}

Result<SavedState> state_from_json(const json& j, const std::string& source) {
  Result<SavedState> r = make_error(EINVAL, "");
  try {
    r = parse_state(j);
  } catch (const json::exception& e) {
    r = make_error(EINVAL, e.what());
  }
  if (!r) {
    Error e = std::move(r).error();
    e.message = "state file " + source + " is not valid: " + e.message + kFixHint;
    return e;
  }
  return r;
}

// ---- StateStore -----------------------------------------------------------

StateStore::StateStore(std::string dir, int lock_fd)
    : dir_(std::move(dir)), path_(dir_ + "/state.json"), lock_fd_(lock_fd) {}

StateStore::StateStore(StateStore&& o) noexcept
    : dir_(std::move(o.dir_)), path_(std::move(o.path_)), lock_fd_(o.lock_fd_) {
  o.lock_fd_ = -1;
}

StateStore& StateStore::operator=(StateStore&& o) noexcept {
  if (this != &o) {
    if (lock_fd_ >= 0) ::close(lock_fd_);
    dir_ = std::move(o.dir_);
    path_ = std::move(o.path_);
    lock_fd_ = o.lock_fd_;
    o.lock_fd_ = -1;
  }
  return *this;
}

StateStore::~StateStore() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<StateStore> StateStore::open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(ec.value(), "creating the state directory " + dir + ": " + ec.message());
  // Whoever can write the directory can replace state.json, and the policy
  // (and the plugins) with it.
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return errno_error("the state directory " + dir);
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(EACCES, "the state directory " + dir + " is writable by group or others (mode " + mode +
                                  "); chmod go-w " + dir);
  }
  std::string lock_path = dir + "/lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return errno_error("opening " + lock_path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) return make_error(EBUSY, "another xfp daemon is using the state directory " + dir);
    return errno_error("locking " + lock_path, e);
  }
  return StateStore(dir, fd);
}

Result<std::optional<SavedState>> StateStore::load() const {
  FdGuard f{::open(path_.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) {
    if (errno == ENOENT) return std::optional<SavedState>{};
    return errno_error("opening the state file " + path_);
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("reading the state file " + path_);
    }
    text.append(buf, static_cast<size_t>(n));
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return make_error(EINVAL, "state file " + path_ + " is corrupt: it is not valid JSON" + kFixHint);
  auto s = state_from_json(j, path_);
  if (!s) return std::move(s).error();
  return std::optional<SavedState>(std::move(*s));
}

Status StateStore::save(const SavedState& s) const {
  const std::string text = state_to_json(s).dump(2) + "\n";
  const std::string tmp = path_ + ".tmp";
  {
    // 0600: the policy is root's business. The temporary file is written
    // and flushed in full before the rename, and the rename is flushed with
    // the directory: a crash (SIGKILL, power cut) at any point leaves either
    // the old state.json or the new one, and at worst a stale .tmp that the
    // next save truncates.
    FdGuard f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)};
    if (f.fd < 0) return errno_error("creating " + tmp);
    XFP_TRY(write_all(f.fd, text, tmp));
    if (::fsync(f.fd) != 0) return errno_error("fsync " + tmp);
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return errno_error("renaming " + tmp + " to " + path_, e);
  }
  return fsync_dir(dir_);
}

Result<std::string> StateStore::move_aside() const {
  const std::string old = path_ + ".old";
  if (::rename(path_.c_str(), old.c_str()) != 0) {
    if (errno == ENOENT) return std::string();
    return errno_error("moving " + path_ + " aside");
  }
  XFP_TRY(fsync_dir(dir_));
  return old;
}

}  // namespace xfp
