// `xfp port listen NAME`: connects to a plugin's message port with
// libxfp-client, prints each message as it comes and answers it (a fixed
// reply from a flag, or one line of stdin per message).
#include "port_listen.hpp"

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "xfp/port_client.h"
#include "xfp/sample_mac_approval.h"

namespace xfp::cli {

namespace {

using Bytes = std::vector<uint8_t>;

std::optional<Bytes> parse_hex(const std::string& text) {
  Bytes out;
  int hi = -1;
  for (char ch : text) {
    if (ch == ' ' || ch == ':' || ch == '-' || ch == '\t') continue;
    int v = std::isxdigit(static_cast<unsigned char>(ch))
                ? (std::isdigit(static_cast<unsigned char>(ch)) ? ch - '0' : std::tolower(ch) - 'a' + 10)
                : -1;
    if (v < 0) return std::nullopt;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  if (hi >= 0) return std::nullopt;
  return out;
}

std::string hex_of(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += fmt::format("{:02x}", p[i]);
  return s;
}

std::string printable(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += std::isprint(p[i]) ? static_cast<char>(p[i]) : '.';
  return s;
}

// "  0000  02 00 ...  |....|", 16 bytes a line.
std::string hex_dump(const uint8_t* p, size_t n) {
  std::string out;
  for (size_t off = 0; off < n; off += 16) {
    size_t k = std::min<size_t>(16, n - off);
    std::string hex;
    for (size_t i = 0; i < 16; ++i) hex += i < k ? fmt::format("{:02x} ", p[off + i]) : "   ";
    out += fmt::format("  {:04x}  {} |{}|\n", off, hex, printable(p + off, k));
  }
  return out;
}

std::string mac_text(const uint8_t m[6]) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

// The mac_allowlist sample's question, when the message is one.
std::optional<xfp_mac_approval_request> as_mac_request(const uint8_t* p, size_t n) {
  xfp_mac_approval_request r{};
  if (n != sizeof r) return std::nullopt;
  std::memcpy(&r, p, sizeof r);
  if (r.magic != XFP_MAC_APPROVAL_MAGIC) return std::nullopt;
  return r;
}

Bytes verdict_bytes(uint32_t verdict) {
  xfp_mac_approval_verdict v{XFP_MAC_APPROVAL_MAGIC, verdict};
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  return Bytes(p, p + sizeof v);
}

// A line of --interactive input as the reply; nullopt: no reply.
std::optional<Bytes> parse_answer(const std::string& line, std::string& error) {
  std::string l = line;
  while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.pop_back();
  if (l.empty()) return std::nullopt;
  if (l == "a" || l == "y" || l == "approve" || l == "permit" || l == "yes") return verdict_bytes(XFP_MAC_VERDICT_PERMIT);
  if (l == "d" || l == "n" || l == "deny" || l == "block" || l == "no") return verdict_bytes(XFP_MAC_VERDICT_BLOCK);
  if (l.rfind("hex:", 0) == 0) {
    auto b = parse_hex(l.substr(4));
    if (!b) error = "'" + l.substr(4) + "' is not hex";
    return b;
  }
  if (l.rfind("text:", 0) == 0) l = l.substr(5);
  return Bytes(l.begin(), l.end());
}

std::string describe(const std::optional<Bytes>& reply) {
  if (!reply) return "not answered";
  xfp_mac_approval_verdict v{};
  if (reply->size() == sizeof v) {
    std::memcpy(&v, reply->data(), sizeof v);
    if (v.magic == XFP_MAC_APPROVAL_MAGIC && (v.verdict == XFP_MAC_VERDICT_PERMIT || v.verdict == XFP_MAC_VERDICT_BLOCK))
      return fmt::format("replied {} ({} bytes)", v.verdict == XFP_MAC_VERDICT_PERMIT ? "permit" : "deny", reply->size());
  }
  return fmt::format("replied {} bytes: {}", reply->size(), hex_of(reply->data(), reply->size()));
}

const char* client_error(int rc) {
  switch (rc) {
    case -ENOENT: return "no such port (is the plugin that makes it loaded? `xfp callout list`)";
    case -ECONNREFUSED: return "connection refused";
    case -EACCES: return "permission denied (root, or a member of the daemon's --port-group, may connect)";
    default: return std::strerror(-rc);
  }
}

}  // namespace

CLI::App* add_port_commands(CLI::App& app, PortListenOptions& o) {
  auto* port = app.add_subcommand("port", "message ports: talk to callout plugins from user mode");
  port->require_subcommand(1);
  port->footer(R"(A message port is a Unix socket a callout plugin makes in the daemon
(port_create in include/xfp/callout.h), in --port-dir of `xfp daemon`
(/run/xfp/ports by default). The plugin sends messages to a connected client
and may wait for its reply (FltSendMessage's semantics); programs use
libxfp-client (include/xfp/port_client.h), and `xfp port listen` is one.

Examples:
  xfp port listen approver --interactive
  xfp port listen /tmp/xfp-ports/echo --reply pong)");
  auto* listen = port->add_subcommand("listen", "connect to a port, print its messages and answer them");
  listen->add_option("NAME", o.name, "the port's name (a socket in --port-dir), or a path with a '/'")->required();
  listen->add_option("--port-dir", o.dir, "where the daemon makes its ports (its --port-dir)")->capture_default_str();
  auto* reply = listen->add_option("--reply", o.reply_text, "answer every message with these bytes (text)");
  auto* hex = listen->add_option("--hex", o.reply_hex, "answer every message with these bytes (hex: 0a1b2c or 0a:1b:2c)");
  auto* approve = listen->add_flag("--approve", o.approve, "answer the mac_allowlist sample's questions: permit");
  auto* deny = listen->add_flag("--deny", o.deny, "answer the mac_allowlist sample's questions: deny");
  auto* inter = listen->add_flag("--interactive", o.interactive, "ask on the terminal (stdin) for each answer");
  std::vector<CLI::Option*> answers{reply, hex, approve, deny, inter};
  for (auto* a : answers)
    for (auto* b : answers)
      if (a != b) a->excludes(b);
  listen->add_option("--count", o.count, "stop after N messages (exit 1 if --timeout passes first)")->type_name("N");
  listen->add_option("--timeout", o.timeout_ms, "stop when no message comes for MS milliseconds")->type_name("MS");
  listen->add_option("--context", o.context, "bytes (text) for the plugin's connect handler");
  listen->footer(R"(Prints each message as it arrives: its id, length and flags ("reply expected"
when the plugin waits for an answer), a hex and printable dump, and for the
mac_allowlist sample's question a decoded line (source MAC, interface, VLAN).
Then it answers messages that expect a reply:
  --reply TEXT / --hex HEX   the same bytes every time
  --approve / --deny         the sample's verdict (struct xfp_mac_approval_verdict)
  --interactive              one line of stdin per message: a (approve), d (deny),
                             hex:0a1b, text:..., any other text as it is, or an
                             empty line for no answer (the plugin's wait times out)
Without any of them, messages are printed but not answered. With --json, one
JSON object per message and line. The plugin sees an answer as the reply to its
port_send; its reply buffer gets exactly these bytes (no header).

Exit status: 0 (--count messages handled, --timeout passed, stdin closed in
--interactive mode, or the daemon closed the port), 1 (cannot connect; --count
not reached), 2 (usage).

Examples:
  xfp callout load build/plugins/libxfp_mac_allowlist.so \
      --config 'approver=approver,timeout_ms=10000,default=block'
  xfp port listen approver --interactive
  xfp port listen approver --approve --count 1
  xfp port listen /tmp/xfp-ports/echo --reply pong --json)");
  return listen;
}

int cmd_port_listen(const Global& g, const PortListenOptions& o) {
  std::optional<Bytes> fixed;
  if (!o.reply_text.empty()) fixed = Bytes(o.reply_text.begin(), o.reply_text.end());
  if (!o.reply_hex.empty()) {
    fixed = parse_hex(o.reply_hex);
    if (!fixed) return fail("--hex " + o.reply_hex + ": not an even number of hex digits", kExitUsage);
  }
  if (o.approve) fixed = verdict_bytes(XFP_MAC_VERDICT_PERMIT);
  if (o.deny) fixed = verdict_bytes(XFP_MAC_VERDICT_BLOCK);
  if (o.timeout_ms < -1 || o.timeout_ms > INT32_MAX) return fail("--timeout: 0.." + std::to_string(INT32_MAX) + " ms", kExitUsage);

  const std::string path = o.name.find('/') != std::string::npos ? o.name : o.dir + "/" + o.name;
  xfp_port_conn* conn = nullptr;
  char reason[256] = "";
  int rc = xfp_port_connect_ex(path.c_str(), o.context.data(), o.context.size(), &conn, reason, sizeof reason);
  if (rc != 0)
    return fail(fmt::format("cannot connect to port {}: {}{}{}", path, client_error(rc), reason[0] ? ": " : "", reason),
                kExitError);
  if (!g.json)
    std::cerr << fmt::format("xfp: connected to {} as client {}", path, xfp_port_client_id(conn)) << std::endl;

  std::vector<uint8_t> buf(XFP_PORT_MAX_MESSAGE);
  uint64_t handled = 0;
  int result = kExitOk;
  while (o.count == 0 || handled < o.count) {
    size_t len = 0;
    uint64_t id = 0;
    uint32_t flags = 0;
    rc = xfp_port_get_message(conn, buf.data(), buf.size(), &len, &id, &flags, static_cast<int>(o.timeout_ms));
    if (rc == -ETIMEDOUT) {
      if (o.count != 0) {
        result = fail(fmt::format("no message within {} ms ({} of {} handled)", o.timeout_ms, handled, o.count),
                      kExitError);
      }
      break;
    }
    if (rc == -ECONNRESET) {
      std::cerr << "xfp: the daemon closed port " << path << std::endl;
      break;
    }
    if (rc != 0) {
      result = fail(fmt::format("reading from port {}: {}", path, std::strerror(-rc)), kExitError);
      break;
    }
    ++handled;
    const bool expects = (flags & XFP_PORT_F_REPLY_EXPECTED) != 0;
    auto req = as_mac_request(buf.data(), len);
    std::string decoded;
    if (req)
      decoded = fmt::format("mac_allowlist asks about source {} on interface {} (ifindex {}), {}, {} frame{} waiting",
                            mac_text(req->mac), req->iface, req->ifindex,
                            req->vlan ? fmt::format("vlan {}", req->vlan) : std::string("untagged"), req->waiting,
                            req->waiting == 1 ? "" : "s");
    if (!g.json) {
      std::cout << fmt::format("message {}: {} bytes, {}\n", id, len, expects ? "reply expected" : "no reply expected")
                << hex_dump(buf.data(), len);
      if (req) std::cout << "  " << decoded << "\n";
      std::cout << std::flush;
    }

    std::optional<Bytes> answer;
    if (expects && fixed) answer = fixed;
    if (expects && o.interactive) {
      for (;;) {
        std::cerr << fmt::format("answer message {} (a = approve, d = deny, hex:..., text:..., empty = none)> ", id)
                  << std::flush;
        std::string line;
        if (!std::getline(std::cin, line)) {
          std::cerr << "\nxfp: end of input" << std::endl;
          xfp_port_close(conn);
          return result;
        }
        std::string error;
        answer = parse_answer(line, error);
        if (error.empty()) break;
        std::cerr << "xfp: " << error << std::endl;
      }
    }
    std::string outcome = expects ? describe(answer) : "no reply expected";
    if (answer) {
      rc = xfp_port_reply(conn, id, answer->data(), answer->size());
      if (rc != 0) outcome = fmt::format("reply failed: {}", std::strerror(-rc));
    }
    if (g.json) {
      nlohmann::json j{{"id", id},
                       {"length", len},
                       {"flags", flags},
                       {"reply_expected", expects},
                       {"hex", hex_of(buf.data(), len)},
                       {"text", printable(buf.data(), len)}};
      if (req)
        j["mac_approval"] = {{"mac", mac_text(req->mac)},
                             {"iface", req->iface},
                             {"ifindex", req->ifindex},
                             {"vlan", req->vlan},
                             {"waiting", req->waiting}};
      j["reply"] = answer ? nlohmann::json{{"hex", hex_of(answer->data(), answer->size())}, {"length", answer->size()}}
                          : nlohmann::json(nullptr);
      if (rc != 0 && answer) j["reply_error"] = std::strerror(-rc);
      std::cout << j.dump() << std::endl;
    } else {
      std::cout << "  " << outcome << std::endl;
    }
  }
  xfp_port_close(conn);
  return result;
}

}  // namespace xfp::cli
