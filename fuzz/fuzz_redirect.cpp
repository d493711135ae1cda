// Redirect records (user/redirect_store.cpp, the daemon's redirect.* ops)
// and libxfp-client's redirect calls (user/redirect_client.c), three ways,
// chosen by the input's first byte:
//
// 0. A request as JSON text (the control socket's body), handled as
//    tools/xfp/service.cpp does (redirect_request() on a store, then
//    ok_reply/error_reply and dump()). Checks: an error has an errno and a
//    message; a redirect.query reply has "needed" and a "result" that agrees
//    with the buffer rules (size 0 -> "size"; size < needed ->
//    "insufficient-buffer"; else "data" with exactly needed bytes of hex).
// 1. A scripted conversation through the real client library: a thread of
//    this process serves a control socket with redirect_request() on one
//    store; the input sets records on a few flows (valid blobs made from the
//    input, blobs that are raw input bytes, empty blobs that clear) and
//    queries records and contexts with buffers of chosen sizes. Checks
//    against a model of the store (records per flow key): set succeeds
//    exactly when the frame has a flow and the blob decodes (or is empty);
//    query: -ENOENT without records, size 0 -> 0 and *needed = the answer's
//    size, a small buffer -> -ENOBUFS and *needed, else 0 and the bytes
//    (records re-encoded, or the latest record's context). The buffer is
//    allocated to exactly `cap` bytes, so ASan sees any write past it.
// 2. The client library against a hostile daemon: the thread answers with
//    the input's bytes (any length prefix, any body). Checks: the result is
//    0 or a negative errno; 0 with a buffer means *needed <= cap, -ENOBUFS
//    means *needed > cap; nothing written past cap.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_common.hpp"
#include "xfp/control.hpp"
#include "xfp/redirect_client.h"
#include "xfp/redirect_store.hpp"

namespace {

using nlohmann::json;

using Input = xfp::fuzz::ByteReader;

// What the daemon replies to one request (tools/xfp/service.cpp's handle_request for the redirect ops).
json handle(xfp::RedirectStore& store, const json& req) {
  auto r = xfp::redirect_request(store, req);
  if (!r) return xfp::control::error_reply(r.error());
  return xfp::control::ok_reply(std::move(*r));
}

// The control socket of mode 1 and 2, served by one thread for the process's life.
struct Daemon {
  std::string path;
  int listen_fd = -1;
  std::mutex mu;
  xfp::RedirectStore* store = nullptr;  // mode 1
  std::string scripted;                 // mode 2: the raw reply bytes
  std::atomic<uint64_t> served{0};

  Daemon() {
    path = "/tmp/xfp-fuzz-redirect-" + std::to_string(::getpid()) + ".sock";
    ::unlink(path.c_str());
    listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    XFP_FUZZ_CHECK(listen_fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    XFP_FUZZ_CHECK(::bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    XFP_FUZZ_CHECK(::listen(listen_fd, 16) == 0);
    std::atexit([] { ::unlink(instance().path.c_str()); });
    std::thread([this] { serve(); }).detach();
  }

  static Daemon& instance() {
    static Daemon* d = new Daemon();  // never destroyed: its thread runs until exit
    return *d;
  }

  void serve() {
    for (;;) {
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      auto req = xfp::control::recv_message(fd, 2000);
      std::lock_guard lock(mu);
      if (store) {
        // The library writes well-formed requests: anything else is its bug.
        XFP_FUZZ_CHECK(req.ok());
        (void)xfp::control::send_message(fd, handle(*store, *req), 2000);
      } else {
        size_t off = 0;
        while (off < scripted.size()) {
          ssize_t w = ::send(fd, scripted.data() + off, scripted.size() - off, MSG_NOSIGNAL);
          if (w <= 0) break;
          off += static_cast<size_t>(w);
        }
      }
      ::close(fd);
      served.fetch_add(1);
    }
  }
};

bool is_errno(int rc) { return rc < 0 && rc > -4096; }

// Frames of a few flows: IPv4/UDP between 198.18.0.1 and 198.18.0.2, one
// port pair per flow; frame 3 is flow 0 the other way round.
std::vector<uint8_t> flow_frame(int i) {
  const bool reverse = i == 3;
  const int flow = reverse ? 0 : i;
  std::vector<uint8_t> f(14 + 20 + 8 + 4, 0);
  uint8_t a[6] = {0x02, 0, 0, 0, 0, 1}, b[6] = {0x02, 0, 0, 0, 0, 2};
  std::memcpy(&f[0], reverse ? a : b, 6);
  std::memcpy(&f[6], reverse ? b : a, 6);
  f[12] = 0x08;
  f[13] = 0x00;
  uint8_t* ip = &f[14];
  ip[0] = 0x45;
  ip[2] = 0;
  ip[3] = 32;
  ip[8] = 64;
  ip[9] = 17;
  uint8_t s[4] = {198, 18, 0, 1}, d[4] = {198, 18, 0, 2};
  std::memcpy(ip + 12, reverse ? d : s, 4);
  std::memcpy(ip + 16, reverse ? s : d, 4);
  uint8_t* udp = ip + 20;
  const uint16_t sp = 1000, dp = static_cast<uint16_t>(2000 + flow);
  const uint16_t p1 = reverse ? dp : sp, p2 = reverse ? sp : dp;
  udp[0] = p1 >> 8;
  udp[1] = p1 & 0xff;
  udp[2] = p2 >> 8;
  udp[3] = p2 & 0xff;
  udp[5] = 12;
  return f;
}

std::string key_bytes(const xfp_flow_key& k) { return std::string(reinterpret_cast<const char*>(&k), sizeof k); }

void mode_json(Input& in) {
  xfp::RedirectStore store(xfp::RedirectOptions{8, 3, 300'000'000'000ull});
  // A flow with records, so that queries can find something.
  const auto f0 = flow_frame(0);
  xfp::RedirectRecord r0{7, "fuzz", "ctx"};
  XFP_FUZZ_CHECK(store.set_records(f0, std::vector<uint8_t>(
                                             [&] {
                                               std::string b = xfp::encode_redirect_records({r0});
                                               return std::vector<uint8_t>(b.begin(), b.end());
                                             }()))
                     .ok());
  const std::string text(reinterpret_cast<const char*>(in.p), in.n);
  json req = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!req.is_object()) return;
  json reply;
  try {
    reply = handle(store, req);
  } catch (const std::exception& e) {
    // service.cpp turns an exception into a bad-request reply; the store
    // must not throw for a type the op checks itself.
    reply = xfp::control::error_reply(xfp::make_error(EINVAL, e.what()));
  }
  XFP_FUZZ_CHECK(reply.is_object());
  if (reply.value("ok", false) == false) {
    XFP_FUZZ_CHECK(reply.at("errno").get<int>() > 0);
    XFP_FUZZ_CHECK(!reply.at("error").get<std::string>().empty());
  } else if (req["op"] == "redirect.query") {
    const uint64_t needed = reply.at("needed").get<uint64_t>();
    const std::string result = reply.at("result").get<std::string>();
    const auto size = req.find("size");
    const uint64_t cap = size == req.end() || size->is_null() ? UINT64_MAX : size->get<uint64_t>();
    if (cap == 0) XFP_FUZZ_CHECK(result == "size");
    else if (cap < needed) XFP_FUZZ_CHECK(result == "insufficient-buffer");
    else {
      XFP_FUZZ_CHECK(result == "data");
      XFP_FUZZ_CHECK(reply.at("data").get<std::string>().size() == 2 * needed);
    }
  }
  XFP_FUZZ_CHECK(!xfp::control::dump(reply).empty());
}

void mode_library(Input& in, Daemon& d) {
  xfp::RedirectStore store(xfp::RedirectOptions{64, 3, 300'000'000'000ull});
  {
    std::lock_guard lock(d.mu);
    d.store = &store;
  }
  std::map<std::string, std::vector<xfp::RedirectRecord>> model;  // by flow key
  for (int step = 0; step < 16 && in.n > 0; ++step) {
    const uint8_t op = in.byte();
    std::vector<uint8_t> frame;
    if ((op & 0x1c) == 0x1c) frame = in.bytes(in.byte());  // a frame from the input (maybe no flow)
    else frame = flow_frame((op >> 2) & 3);
    auto key = xfp::redirect_flow_key(frame);
    if (op & 1) {
      // set
      std::vector<uint8_t> blob;
      const uint8_t kind = in.byte() % 3;
      if (kind == 1) {
        std::vector<xfp::RedirectRecord> recs(1 + in.byte() % 4);
        for (auto& r : recs) {
          r.redirector = in.le(2);
          auto name = in.bytes(in.byte() % 8);
          r.plugin.assign(name.begin(), name.end());
          auto ctx = in.bytes(in.byte() % 24);
          r.context.assign(ctx.begin(), ctx.end());
        }
        std::string b = xfp::encode_redirect_records(recs);
        blob.assign(b.begin(), b.end());
        if (in.byte() & 1 && !blob.empty()) blob[in.byte() % blob.size()] ^= static_cast<uint8_t>(1 + in.byte() % 255);
      } else if (kind == 2) {
        blob = in.bytes(in.byte());
      }
      const int rc = xfp_redirect_set_records(d.path.c_str(), frame.data(), frame.size(), blob.data(), blob.size());
      if (!key) {
        XFP_FUZZ_CHECK(rc == -EINVAL);
        continue;
      }
      if (blob.empty()) {
        XFP_FUZZ_CHECK(rc == 0);
        model.erase(key_bytes(*key));
        continue;
      }
      auto decoded = xfp::decode_redirect_records(blob, 3);
      XFP_FUZZ_CHECK((rc == 0) == decoded.ok());
      if (rc == 0) model[key_bytes(*key)] = *decoded;
      else XFP_FUZZ_CHECK(rc == -EINVAL);
    } else {
      // query
      const bool context = op & 2;
      const uint8_t c = in.byte();
      std::optional<std::string> want;
      if (key) {
        auto it = model.find(key_bytes(*key));
        if (it != model.end() && !it->second.empty())
          want = context ? it->second.back().context : xfp::encode_redirect_records(it->second);
      }
      size_t cap = c & 0x80 ? (want ? want->size() : 0) + (c & 3) - 1 : c % 64;  // around the answer's size, or small
      if (cap == SIZE_MAX) cap = 0;
      std::unique_ptr<uint8_t[]> buf(cap ? new uint8_t[cap] : nullptr);
      if (cap) std::memset(buf.get(), 0xa5, cap);
      size_t needed = 12345;
      const int rc = context ? xfp_redirect_query_context(d.path.c_str(), frame.data(), frame.size(), buf.get(), cap, &needed)
                             : xfp_redirect_query_records(d.path.c_str(), frame.data(), frame.size(), buf.get(), cap, &needed);
      if (!key) {
        XFP_FUZZ_CHECK(rc == -EINVAL);
      } else if (!want) {
        XFP_FUZZ_CHECK(rc == -ENOENT);
      } else if (cap == 0) {
        XFP_FUZZ_CHECK(rc == 0 && needed == want->size());
      } else if (cap < want->size()) {
        XFP_FUZZ_CHECK(rc == -ENOBUFS && needed == want->size());
        for (size_t i = 0; i < cap; ++i) XFP_FUZZ_CHECK(buf[i] == 0xa5);  // nothing copied
      } else {
        XFP_FUZZ_CHECK(rc == 0 && needed == want->size());
        XFP_FUZZ_CHECK(std::memcmp(buf.get(), want->data(), want->size()) == 0);
        for (size_t i = want->size(); i < cap; ++i) XFP_FUZZ_CHECK(buf[i] == 0xa5);
      }
    }
  }
  std::lock_guard lock(d.mu);
  d.store = nullptr;
}

void mode_hostile(Input& in, Daemon& d) {
  const uint8_t how = in.byte();
  const size_t cap = in.byte() % 48;
  const auto body = in.bytes(in.n);
  std::string reply;
  uint32_t len = static_cast<uint32_t>(body.size());
  if (how & 1) len = static_cast<uint32_t>(in.le(4)) ^ len;  // a length that lies
  if (!(how & 2)) reply.append(reinterpret_cast<const char*>(&len), 4);  // little-endian host
  reply.append(body.begin(), body.end());
  {
    std::lock_guard lock(d.mu);
    d.scripted = std::move(reply);
  }
  const auto frame = flow_frame(0);
  std::unique_ptr<uint8_t[]> buf(cap ? new uint8_t[cap] : nullptr);
  size_t needed = 0;
  int rc;
  if (how & 4) {
    rc = xfp_redirect_set_records(d.path.c_str(), frame.data(), frame.size(), "XFR1", 4);
  } else {
    rc = (how & 8) ? xfp_redirect_query_context(d.path.c_str(), frame.data(), frame.size(), buf.get(), cap, &needed)
                   : xfp_redirect_query_records(d.path.c_str(), frame.data(), frame.size(), buf.get(), cap, &needed);
    if (rc == 0 && cap > 0) XFP_FUZZ_CHECK(needed <= cap);
    if (rc == -ENOBUFS) XFP_FUZZ_CHECK(needed > cap);
  }
  XFP_FUZZ_CHECK(rc == 0 || is_errno(rc));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 16 * 1024) return 0;
  Input in{data + 1, size - 1};
  switch (data[0] % 3) {
    case 0: mode_json(in); break;
    case 1: mode_library(in, Daemon::instance()); break;
    default: mode_hostile(in, Daemon::instance()); break;
  }
  return 0;
}
