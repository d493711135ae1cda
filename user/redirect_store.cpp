// Redirect records: see xfp/redirect_store.hpp.
#include "xfp/redirect_store.hpp"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "xfp/datapath.hpp"
#include "xfp/flow_key.h"
#include "xfp/frame.hpp"

// The ABI's opaque handle: a redirector's identity.
struct xfp_redirect_handle {
  uint64_t id = 0;
  std::string plugin;
};

namespace xfp {

namespace {

using nlohmann::json;

constexpr char kMagic[4] = {'X', 'F', 'R', '1'};

uint64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::vector<uint8_t>> from_hex(const std::string& text, const char* what) {
  if (text.size() % 2) return make_error(EINVAL, fmt::format("bad request: '{}' has an odd number of hex digits", what));
  std::vector<uint8_t> out(text.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return make_error(EINVAL, fmt::format("bad request: '{}' is not hex", what));
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

std::string mac_text(const uint8_t* m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

std::string addr_text(const xfp_flow_key& k, const uint8_t* a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (k.ip_version == 4) ::inet_ntop(AF_INET, a, buf, sizeof buf);
  else if (k.ip_version == 6) ::inet_ntop(AF_INET6, a, buf, sizeof buf);
  return buf;
}

json key_json(const xfp_flow_key& k) {
  json j = {{"mac_a", mac_text(k.mac_a)}, {"mac_b", mac_text(k.mac_b)}, {"vlan", k.vlan},
            {"ethertype", k.ethertype}, {"handle", fmt::format("{:016x}", xfp_flow_handle(&k))}};
  if (k.ip_version) {
    j["ip_version"] = k.ip_version;
    j["protocol"] = k.protocol;
    j["addr_a"] = addr_text(k, k.addr_a);
    j["addr_b"] = addr_text(k, k.addr_b);
    j["port_a"] = k.port_a;
    j["port_b"] = k.port_b;
  }
  return j;
}

}  // namespace

// ---- the records blob ---------------------------------------------------------
//
// "XFR1", u8 count, 3 zero bytes, then per record: u64 redirector (LE),
// u8 plugin name length, the name, u16 context length (LE), the context.

std::string encode_redirect_records(const std::vector<RedirectRecord>& records) {
  std::string out(kMagic, 4);
  put_le(out, records.size(), 1);
  put_le(out, 0, 3);
  for (const RedirectRecord& r : records) {
    put_le(out, r.redirector, 8);
    const size_t n = std::min<size_t>(r.plugin.size(), 255);
    put_le(out, n, 1);
    out.append(r.plugin, 0, n);
    put_le(out, r.context.size(), 2);
    out += r.context;
  }
  return out;
}

Result<std::vector<RedirectRecord>> decode_redirect_records(std::span<const uint8_t> blob, size_t max_records) {
  auto bad = [](const std::string& why) { return make_error(EINVAL, "malformed redirect records: " + why); };
  if (blob.size() < 8 || std::memcmp(blob.data(), kMagic, 4) != 0)
    return bad("not a records blob (it starts with \"XFR1\")");
  const size_t count = blob[4];
  if (count == 0) return bad("no record");
  if (count > max_records) return bad(fmt::format("{} records, at most {}", count, max_records));
  std::vector<RedirectRecord> out;
  size_t at = 8;
  for (size_t i = 0; i < count; ++i) {
    if (at + 9 > blob.size()) return bad("cut short");
    RedirectRecord r;
    r.redirector = get_le(blob.data() + at, 8);
    const size_t n = blob[at + 8];
    at += 9;
    if (at + n + 2 > blob.size()) return bad("cut short");
    r.plugin.assign(reinterpret_cast<const char*>(blob.data() + at), n);
    at += n;
    const size_t c = get_le(blob.data() + at, 2);
    at += 2;
    if (c > XFP_REDIRECT_CONTEXT_MAX) return bad(fmt::format("a context of {} bytes", c));
    if (at + c > blob.size()) return bad("cut short");
    r.context.assign(reinterpret_cast<const char*>(blob.data() + at), c);
    at += c;
    if (r.redirector == 0) return bad("redirector 0");
    out.push_back(std::move(r));
  }
  if (at != blob.size()) return bad("trailing bytes");
  return out;
}

Result<xfp_flow_key> redirect_flow_key(std::span<const uint8_t> frame) {
  xfp_flow_key k;
  xfp_flow_info info;
  if (frame.empty() || !xfp_flow_key_from_frame(frame.data(), frame.data() + frame.size(), 0, &k, &info))
    return make_error(EINVAL, "the frame has no flow (shorter than an Ethernet header, or a header is cut short)");
  return k;
}

// ---- the store ------------------------------------------------------------------

size_t RedirectStore::KeyHash::operator()(const xfp_flow_key& k) const noexcept {
  return static_cast<size_t>(xfp_flow_handle(&k));
}

bool RedirectStore::KeyEq::operator()(const xfp_flow_key& a, const xfp_flow_key& b) const noexcept {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

RedirectStore::RedirectStore(const RedirectOptions& options) : options_(options) {
  options_.max_flows = std::max<size_t>(1, options_.max_flows);
  options_.max_records = std::clamp<size_t>(options_.max_records, 1, 255);
}

RedirectStore::~RedirectStore() {
  for (auto& [name, fd] : sockets_) ::close(fd);
}

int RedirectStore::create_handle(const std::string& plugin, xfp_redirect_handle** handle) noexcept {
  if (!handle) return -EINVAL;
  try {
    auto h = std::make_unique<xfp_redirect_handle>();
    h->plugin = plugin;
    std::lock_guard lock(mu_);
    h->id = next_id_++;
    *handle = h.get();
    handles_.emplace(h.get(), std::move(h));
    ++stats_.handles;
    return 0;
  } catch (...) {
    return -ENOMEM;
  }
}

void RedirectStore::destroy_handle(xfp_redirect_handle* handle) noexcept {
  // The handle's records stay on their flows: a proxy may still be handing
  // them on, and the id is never reused, so nobody takes them for its own.
  std::lock_guard lock(mu_);
  if (handles_.erase(handle)) --stats_.handles;
}

void RedirectStore::destroy_all_of(const std::string& plugin) noexcept {
  std::lock_guard lock(mu_);
  for (auto it = handles_.begin(); it != handles_.end();) {
    if (it->second->plugin == plugin) {
      it = handles_.erase(it);
      --stats_.handles;
    } else {
      ++it;
    }
  }
}

uint64_t RedirectStore::id_of(const xfp_redirect_handle* handle) const noexcept {
  std::lock_guard lock(mu_);
  auto it = handles_.find(handle);
  return it == handles_.end() ? 0 : it->second->id;
}

void RedirectStore::expire_locked(uint64_t now) {
  // The LRU's tail is the least recently used: expire from there.
  while (!lru_.empty() && now - lru_.back().last_used_ns > options_.idle_timeout_ns) {
    flows_.erase(lru_.back().key);
    lru_.pop_back();
    ++stats_.expired;
  }
}

RedirectFlow* RedirectStore::find_locked(const xfp_flow_key& key, uint64_t now) {
  expire_locked(now);
  auto it = flows_.find(key);
  if (it == flows_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  it->second->last_used_ns = now;
  return &*it->second;
}

RedirectFlow& RedirectStore::get_or_add_locked(const xfp_flow_key& key, uint64_t now) {
  if (RedirectFlow* f = find_locked(key, now)) return *f;
  while (flows_.size() >= options_.max_flows) {
    flows_.erase(lru_.back().key);
    lru_.pop_back();
    ++stats_.evicted;
  }
  lru_.push_front(RedirectFlow{key, {}, {}, now});
  flows_.emplace(key, lru_.begin());
  return lru_.front();
}

void RedirectStore::erase_locked(const xfp_flow_key& key) {
  auto it = flows_.find(key);
  if (it == flows_.end()) return;
  lru_.erase(it->second);
  flows_.erase(it);
}

xfp_redirect_state RedirectStore::state_of(const xfp_redirect_handle* handle, std::span<const uint8_t> frame) noexcept {
  auto key = redirect_flow_key(frame);
  if (!key) return XFP_NOT_REDIRECTED;
  std::lock_guard lock(mu_);
  auto h = handles_.find(handle);
  RedirectFlow* f = find_locked(*key, now_ns());
  if (!f || f->records.empty()) return XFP_NOT_REDIRECTED;
  const uint64_t self = h == handles_.end() ? 0 : h->second->id;
  if (self && f->records.back().redirector == self) return XFP_REDIRECTED_BY_SELF;
  for (const RedirectRecord& r : f->records)
    if (self && r.redirector == self) return XFP_PREVIOUSLY_REDIRECTED_BY_SELF;
  return XFP_REDIRECTED_BY_OTHER;
}

xfp_redirect_state RedirectStore::redirect_state(const xfp_redirect_handle* handle,
                                                 const xfp_classify_item* item) noexcept {
  if (!handle || !item || !item->frame) return XFP_NOT_REDIRECTED;
  return state_of(handle, {frame_data(item->frame), frame_len(item->frame)});
}

int RedirectStore::send_out(const char* ifname, const uint8_t* data, size_t len) noexcept {
  std::lock_guard lock(sockets_mu_);
  // Twice: a cached socket whose interface went away (or was renamed and
  // replaced) fails with ENXIO/ENODEV; a fresh one resolves the name again.
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = -1;
    if (auto it = sockets_.find(ifname); it != sockets_.end()) {
      fd = it->second;
    } else {
      const unsigned ifindex = ::if_nametoindex(ifname);
      if (ifindex == 0) return -ENODEV;
      // Protocol 0: a send-only socket, it receives nothing.
      fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
      if (fd < 0) return -errno;
      sockaddr_ll sll{};
      sll.sll_family = AF_PACKET;
      sll.sll_ifindex = static_cast<int>(ifindex);
      if (::bind(fd, reinterpret_cast<const sockaddr*>(&sll), sizeof sll) != 0) {
        int e = errno;
        ::close(fd);
        return -e;
      }
      try {
        sockets_.emplace(ifname, fd);
      } catch (...) {
        ::close(fd);
        return -ENOMEM;
      }
    }
    ssize_t n = ::send(fd, data, len, MSG_DONTWAIT);
    if (n == static_cast<ssize_t>(len)) return 0;
    const int e = n < 0 ? errno : EIO;
    if (e != ENXIO && e != ENODEV && e != ENETDOWN) return -e;
    ::close(fd);
    sockets_.erase(ifname);
    if (e == ENETDOWN) return -e;
  }
  return -ENODEV;
}

int RedirectStore::redirect_flow(xfp_redirect_handle* handle, xfp_classify_item* item, const char* ifname,
                                 const void* context, uint32_t context_len, uint32_t flags) noexcept {
  if (!handle || !item || !item->frame || !ifname || !*ifname || std::strlen(ifname) >= IF_NAMESIZE) return -EINVAL;
  if (context_len > XFP_REDIRECT_CONTEXT_MAX || (context_len && !context)) return -EINVAL;
  if (flags & ~static_cast<uint32_t>(XFP_REDIRECT_OFFLOAD)) return -EINVAL;
  if ((flags & XFP_REDIRECT_OFFLOAD) && !offloader_) return -EOPNOTSUPP;
  const uint8_t* data = frame_data(item->frame);
  const uint32_t len = frame_len(item->frame);
  auto key = redirect_flow_key({data, len});
  if (!key) return -ENOENT;
  uint64_t self = 0;
  std::string again_ifname;
  try {
    std::lock_guard lock(mu_);
    auto h = handles_.find(handle);
    if (h == handles_.end()) return -EINVAL;
    self = h->second->id;
    RedirectFlow& f = get_or_add_locked(*key, now_ns());
    auto sent = std::find_if(f.sent.begin(), f.sent.end(), [&](const auto& s) { return s.first == self; });
    if (sent != f.sent.end()) {
      // A later frame of the flow this handle redirected: same way, no new record.
      again_ifname = sent->second;
    } else {
      for (const RedirectRecord& r : f.records)
        if (r.redirector == self) {
          ++stats_.refused_again;
          return -EALREADY;  // the flow came back through a proxy: never twice, it would loop
        }
      if (f.records.size() >= options_.max_records) {
        if (f.records.empty()) erase_locked(*key);
        return -ENOSPC;
      }
      // The record goes on before the frame leaves: a proxy quick enough to
      // query before we return finds it.
      f.records.push_back(RedirectRecord{self, h->second->plugin,
                                         std::string(static_cast<const char*>(context), context_len)});
      f.sent.emplace_back(self, ifname);
    }
  } catch (...) {
    return -ENOMEM;
  }
  const int rc = send_out(again_ifname.empty() ? ifname : again_ifname.c_str(), data, len);
  std::lock_guard lock(mu_);
  if (rc != 0 && !again_ifname.empty()) {
    ++stats_.send_errors;
    return rc;
  }
  if (rc != 0) {
    ++stats_.send_errors;
    if (RedirectFlow* f = find_locked(*key, now_ns())) {
      auto& recs = f->records;
      for (auto it = recs.rbegin(); it != recs.rend(); ++it)
        if (it->redirector == self) {
          recs.erase(std::next(it).base());
          break;
        }
      std::erase_if(f->sent, [&](const auto& s) { return s.first == self; });
      if (recs.empty()) erase_locked(*key);
    }
    return rc;
  }
  ++stats_.redirects;
  if (flags & XFP_REDIRECT_OFFLOAD) {
    // The kernel's key has the attachment (the store's does not).
    xfp_flow_key kernel_key;
    xfp_flow_info info;
    const uint32_t iface = item->meta ? item->meta->iface : 0;
    const uint8_t layer = item->meta ? item->meta->layer : static_cast<uint8_t>(XFP_LAYER_INBOUND);
    const unsigned ifindex = ::if_nametoindex(again_ifname.empty() ? ifname : again_ifname.c_str());
    int orc = -ENODEV;
    if (ifindex && xfp_flow_key_from_frame(data, data + len, iface, &kernel_key, &info))
      orc = offloader_(kernel_key, layer, ifindex);
    if (orc == 0) {
      ++stats_.offloads;
    } else {
      // Logged at the 1st, 2nd, 4th, 8th... failure: never a flood from the workers.
      const uint64_t n = ++stats_.offload_errors;
      if ((n & (n - 1)) == 0)
        spdlog::warn("redirect: offloading a flow's redirect to {} failed: {}", ifname, std::strerror(-orc));
    }
  }
  // The frame is the host's now: absorbed, and our reference dropped (the
  // worker keeps its own until the classify call has returned).
  item->flags |= XFP_CLASSIFY_ABSORB;
  frame_free(item->frame);
  return 0;
}

Result<RedirectStore::Answer> RedirectStore::query(std::span<const uint8_t> frame, What what, size_t cap) {
  auto key = redirect_flow_key(frame);
  if (!key) return std::move(key).error();
  std::string bytes;
  {
    std::lock_guard lock(mu_);
    RedirectFlow* f = find_locked(*key, now_ns());
    if (!f || f->records.empty()) return make_error(ENOENT, "the flow has no redirect records");
    bytes = what == What::Records ? encode_redirect_records(f->records) : f->records.back().context;
  }
  Answer a;
  a.needed = bytes.size();
  if (cap != 0 && cap >= a.needed) {
    a.delivered = true;
    a.data = std::move(bytes);
  }
  return a;
}

Status RedirectStore::set_records(std::span<const uint8_t> frame, std::span<const uint8_t> blob) {
  auto key = redirect_flow_key(frame);
  if (!key) return std::move(key).error();
  std::vector<RedirectRecord> records;
  if (!blob.empty()) {
    auto decoded = decode_redirect_records(blob, options_.max_records);
    if (!decoded) return std::move(decoded).error();
    records = std::move(*decoded);
  }
  std::lock_guard lock(mu_);
  if (records.empty()) {
    erase_locked(*key);
    return Ok{};
  }
  RedirectFlow& f = get_or_add_locked(*key, now_ns());
  f.records = std::move(records);
  f.sent.clear();  // whatever this flow was, its records now come from a proxy
  ++stats_.sets;
  return Ok{};
}

std::vector<RedirectFlow> RedirectStore::list(size_t limit) {
  std::lock_guard lock(mu_);
  expire_locked(now_ns());
  std::vector<RedirectFlow> out;
  for (const RedirectFlow& f : lru_) {
    if (limit && out.size() >= limit) break;
    out.push_back(f);
  }
  return out;
}

RedirectStats RedirectStore::stats() const {
  std::lock_guard lock(mu_);
  RedirectStats s = stats_;
  s.flows = flows_.size();
  return s;
}

RedirectStore::Offloader redirect_offloader(Datapath& datapath) {
  return [&datapath](const xfp_flow_key& key, uint8_t layer, uint32_t ifindex) -> int {
    Status s = datapath.offload_flow(key, static_cast<Layer>(layer), XFP_OFFLOAD_REDIRECT, ifindex,
                                     datapath.generation());
    return s ? 0 : -s.error().code;
  };
}

// ---- control ops ------------------------------------------------------------------

Result<json> redirect_request(RedirectStore& store, const json& req) {
  auto bad = [](const std::string& m) { return make_error(EINVAL, "bad request: " + m); };
  const std::string op = req.value("op", std::string());
  auto hex_arg = [&](const char* name, bool allow_empty) -> Result<std::vector<uint8_t>> {
    auto it = req.find(name);
    if (it == req.end() || !it->is_string() || (!allow_empty && it->get<std::string>().empty()))
      return bad(fmt::format("'{}' must be a{} hex string", name, allow_empty ? "" : " non-empty"));
    return from_hex(it->get<std::string>(), name);
  };
  if (op == "redirect.list") {
    size_t limit = 0;
    if (auto it = req.find("limit"); it != req.end() && !it->is_null()) {
      if (!it->is_number_unsigned()) return bad("'limit' must be a number");
      limit = it->get<size_t>();
    }
    json flows = json::array();
    const uint64_t now = now_ns();
    for (const RedirectFlow& f : store.list(limit)) {
      json records = json::array();
      for (const RedirectRecord& r : f.records)
        records.push_back({{"redirector", r.redirector}, {"plugin", r.plugin}, {"context", to_hex(r.context)}});
      flows.push_back({{"key", key_json(f.key)},
                       {"idle_ms", (now - std::min(now, f.last_used_ns)) / 1000000},
                       {"records", std::move(records)}});
    }
    const RedirectStats s = store.stats();
    return json{{"flows", std::move(flows)},
                {"stats",
                 {{"flows", s.flows}, {"handles", s.handles}, {"redirects", s.redirects},
                  {"refused_again", s.refused_again}, {"send_errors", s.send_errors}, {"evicted", s.evicted},
                  {"expired", s.expired}, {"sets", s.sets}, {"offloads", s.offloads},
                  {"offload_errors", s.offload_errors}}},
                {"limits",
                 {{"max_flows", store.options().max_flows}, {"max_records", store.options().max_records},
                  {"idle_timeout_ms", store.options().idle_timeout_ns / 1000000}}}};
  }
  auto frame = hex_arg("frame", false);
  if (!frame) return std::move(frame).error();
  if (op == "redirect.query") {
    const std::string what = req.value("what", std::string("records"));
    if (what != "records" && what != "context") return bad("'what' must be records or context");
    size_t cap = SIZE_MAX;
    if (auto it = req.find("size"); it != req.end() && !it->is_null()) {
      if (!it->is_number_unsigned()) return bad("'size' must be a number");
      cap = it->get<size_t>();
    }
    auto a = store.query(*frame, what == "records" ? RedirectStore::What::Records : RedirectStore::What::Context, cap);
    if (!a) return std::move(a).error();
    json reply{{"needed", a->needed}};
    if (a->delivered) {
      reply["result"] = "data";
      reply["data"] = to_hex(a->data);
    } else {
      reply["result"] = cap == 0 ? "size" : "insufficient-buffer";
    }
    return reply;
  }
  if (op == "redirect.set") {
    auto records = hex_arg("records", true);
    if (!records) return std::move(records).error();
    XFP_TRY(store.set_records(*frame, *records));
    return json::object();
  }
  return bad("unknown redirect op '" + op + "'");
}

}  // namespace xfp
