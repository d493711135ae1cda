// The control protocol's decoding (user/control.cpp and what the daemon does
// with a request before it reaches the Engine).
//
// The input is the byte stream a client sends: it is written into one end of
// an AF_UNIX stream socketpair, which is then shut for writing, and
// recv_message() reads messages (4-byte little-endian length + JSON) from the
// other end until it reports an error (short message, oversized length, not
// a JSON object, end of stream). Each message is decoded as
// tools/xfp/service.cpp does: the "op" string and, for a transaction, every
// element of "commands" through command_from_json(); then the reply is
// serialised with dump() (invalid UTF-8 replaced).
//
// Not covered: handle_request() itself and the ops' Engine calls (they need
// an Engine, which needs the BPF datapath), and the server's incremental
// reader (Server::Impl::on_readable), which runs only inside serve().
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz_common.hpp"
#include "xfp/control.hpp"
#include "xfp/filter_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A socketpair's buffer holds a few hundred KiB; stay well below so the
  // write never blocks.
  if (size > 64 * 1024) return 0;
  int sv[2];
  XFP_FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  size_t off = 0;
  while (off < size) {
    ssize_t n = ::send(sv[0], data + off, size - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    XFP_FUZZ_CHECK(n > 0);
    off += static_cast<size_t>(n);
  }
  ::shutdown(sv[0], SHUT_WR);

  for (int messages = 0; messages < 256; ++messages) {
    auto m = xfp::control::recv_message(sv[1], 1000);
    if (!m.ok()) {
      XFP_FUZZ_CHECK(m.error().code != 0);
      (void)xfp::control::dump(xfp::control::error_reply(m.error()));
      break;
    }
    XFP_FUZZ_CHECK(m->is_object());
    nlohmann::json reply = xfp::control::ok_reply();
    auto op = m->find("op");
    if (op != m->end() && op->is_string()) reply["op"] = *op;
    auto cmds = m->find("commands");
    if (cmds != m->end() && cmds->is_array()) {
      for (const auto& c : *cmds) {
        auto parsed = xfp::command_from_json(c);
        if (!parsed.ok()) {
          reply = xfp::control::error_reply(parsed.error());
          break;
        }
        reply["commands"].push_back(xfp::command_to_json(*parsed));
      }
    }
    // Every reply can be sent: dump() never throws, whatever the strings hold.
    const std::string body = xfp::control::dump(reply);
    XFP_FUZZ_CHECK(!body.empty());
  }
  ::close(sv[0]);
  ::close(sv[1]);
  return 0;
}
