// Message ports: FltSendMessage's semantics between the daemon (its callouts)
// and user-mode programs (libxfp-client, include/xfp/port_client.h).
//
// Transport and security. One AF_UNIX SOCK_SEQPACKET listening socket per
// port at DIR/NAME (DIR: Options::dir, /run/xfp/ports by default), mode 0660,
// owner root, group Options::group when set. SEQPACKET keeps record
// boundaries (one frame = one record, no framing code, a length mismatch is
// detectable), is reliable and ordered, and reports a peer's disconnect as
// POLLHUP / a zero-length read. Peers are identified with SO_PEERCRED and
// SO_PEERGROUPS: root, the server's own uid, or a member (primary or
// supplementary) of Options::group; anyone else gets REFUSED(EPERM, reason)
// and is closed. The wire format is include/xfp/port_proto.h.
//
// Threads. The server has its own thread and poll() loop; every socket is
// non-blocking. send() may be called from any thread, concurrently. A sender
// that finds its client's output queue empty writes its MESSAGE directly
// (SEQPACKET writes are all-or-nothing); otherwise the frame is queued and the
// server thread writes it when the socket drains. The server thread never
// waits on a client: a client that never reads fills its socket buffer, then
// its bounded output queue, and then the server stops reading its input
// (backpressure) while serving the others as before. A client that sends
// garbage is closed (counted in Stats::protocol_errors).
//
// Callbacks run on the server thread without any lock held. They must not
// block, and must not call send() with a reply buffer or on a client that may
// have no GET outstanding (the server thread is what receives GETs and
// REPLYs: it would wait for itself).
//
// send(), the FltSendMessage of xfp:
//  - delivered at once when the client has a GET outstanding (a credit);
//    otherwise the sender waits for a GET (FIFO among the client's senders);
//  - with a reply buffer it then waits for the client's REPLY;
//  - Deadline: none or a zero duration = wait without end; a relative
//    duration or an absolute steady/system-clock time point otherwise. The
//    same deadline covers delivery and reply, as in the seed;
//  - kTimeout (a success-class status, like STATUS_TIMEOUT) when it expires:
//    nothing was delivered (expired before a GET) or no reply was received
//    (a reply that comes later is dropped and counted in late_replies);
//  - kPortDisconnected: the client is gone, before or while waiting;
//  - kBufferOverflow: the reply is longer than the buffer; the buffer holds
//    its first `reply_capacity` bytes and *reply_length the full size;
//  - kInsufficientResources: message longer than XFP_PORT_MAX_MESSAGE, or too
//    many senders already waiting for that client (Options::max_pending);
//  - kShuttingDown: the server is stopping; every waiting sender is released.
//
// The padding pitfall of the seed. With Filter Manager the reply buffer holds
// FILTER_REPLY_HEADER + the client's struct, and sizing it with
// sizeof(struct { FILTER_REPLY_HEADER h; MY_STRUCT d; }) can include tail
// padding the client never sends (or the client sends the padded size and the
// driver's buffer is the unpadded one): STATUS_BUFFER_OVERFLOW. Here the
// reply header is the protocol's business and never reaches the reply
// buffer: reply_buffer receives exactly the payload bytes the client passed
// to xfp_port_reply(), so size it as the payload, i.e. sizeof(MY_STRUCT) when
// both sides exchange a MY_STRUCT (the same type, compiled by compilers with
// the same ABI: its own trailing padding is then on both sides). Do not add a
// header size and do not size it with a wrapper struct. A shorter reply is
// SUCCESS with *reply_length telling the length received.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "xfp/port_proto.h"
#include "xfp/result.hpp"

namespace xfp::port {

// NTSTATUS-like results of send(). kSuccess and kTimeout are success codes.
enum class SendStatus {
  kSuccess,
  kTimeout,
  kPortDisconnected,
  kBufferOverflow,
  kInsufficientResources,
  kShuttingDown,
};
const char* to_string(SendStatus s);
inline bool is_success(SendStatus s) { return s == SendStatus::kSuccess || s == SendStatus::kTimeout; }

// When a wait ends. The default and a zero duration mean "wait without end",
// as FltSendMessage's NULL or zero timeout; a negative duration has expired.
class Deadline {
 public:
  using Clock = std::chrono::steady_clock;
  Deadline() = default;  // no deadline
  // Relative: from now. Zero = no deadline; negative = already expired.
  template <typename Rep, typename Period>
  Deadline(std::chrono::duration<Rep, Period> d)  // NOLINT(google-explicit-constructor)
  {
    if (d == d.zero()) return;
    at_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(d);
  }
  // Absolute.
  Deadline(Clock::time_point t) : at_(t) {}  // NOLINT(google-explicit-constructor)
  Deadline(std::chrono::system_clock::time_point t)  // NOLINT(google-explicit-constructor)
      : at_(Clock::now() + std::chrono::duration_cast<Clock::duration>(t - std::chrono::system_clock::now())) {}
  static Deadline none() { return {}; }
  bool infinite() const { return !at_.has_value(); }
  const std::optional<Clock::time_point>& at() const { return at_; }

 private:
  std::optional<Clock::time_point> at_;
};

using ClientId = uint64_t;  // never reused within one server

struct ClientInfo {
  ClientId id = 0;
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

struct Callbacks {
  // A client asked to connect with its context bytes. Return std::nullopt to
  // accept, or a reason to refuse (sent to the client, ECONNREFUSED). Unset:
  // accept everyone allowed in.
  std::function<std::optional<std::string>(const ClientInfo&, const std::vector<uint8_t>& context)> connect;
  // An accepted client went away (or was closed). Once per accepted client.
  std::function<void(const ClientInfo&)> disconnect;
  // The client's SEND. The returned bytes (at most XFP_PORT_MAX_MESSAGE) go
  // back when the client asked for a reply. Unset: the client gets ENOTSUP.
  std::function<std::optional<std::vector<uint8_t>>(const ClientInfo&, const std::vector<uint8_t>& message)>
      message;
  // The same with an error for the client: returns 0 (and fills `reply`) or
  // a positive errno the client's xfp_port_send() returns negated. Used
  // instead of `message` when set (the plugin ABI's handler needs it).
  std::function<int(const ClientInfo&, const std::vector<uint8_t>& message, std::vector<uint8_t>& reply)>
      message_status;
};

struct Options {
  std::string dir = XFP_PORT_DEFAULT_DIR;
  std::string name;                     // the socket is dir/name; [A-Za-z0-9._-], no leading dot
  size_t max_connections = 16;          // client max+1 gets REFUSED(EBUSY)
  std::optional<gid_t> group;           // members may connect too; the socket's group
  size_t max_pending = 64;              // senders waiting per client
  std::chrono::milliseconds handshake_timeout{5000};  // accept() to CONNECT
};

struct Stats {
  uint64_t accepted = 0;         // connections that got CONNECTED
  uint64_t refused = 0;          // REFUSED: credentials, limit, callback
  uint64_t protocol_errors = 0;  // clients closed for a malformed frame
  uint64_t messages = 0;         // MESSAGEs delivered
  uint64_t replies = 0;          // REPLYs handed to a waiting sender
  uint64_t late_replies = 0;     // REPLYs for a send that had timed out: dropped
  uint64_t sends = 0;            // SENDs from clients handled
};

class MessagePortServer {
 public:
  // Creates DIR/NAME (replacing a stale socket, refusing a live one) and
  // starts the server thread.
  static Result<std::unique_ptr<MessagePortServer>> create(const Options& opts, Callbacks callbacks);
  ~MessagePortServer();  // stop(), then the socket file is removed
  MessagePortServer(const MessagePortServer&) = delete;
  MessagePortServer& operator=(const MessagePortServer&) = delete;

  // See the header comment. reply_buffer == nullptr: no reply expected
  // (reply_capacity and reply_length ignored; reply_length may be null).
  SendStatus send(ClientId client, const void* message, size_t length, void* reply_buffer,
                  size_t reply_capacity, size_t* reply_length, Deadline timeout = {});
  SendStatus send(ClientId client, const void* message, size_t length, Deadline timeout = {}) {
    return send(client, message, length, nullptr, 0, nullptr, timeout);
  }

  // Releases every waiting sender with kShuttingDown, closes every client
  // (their disconnect callbacks run) and joins the thread. Idempotent.
  void stop();

  const std::string& path() const;
  std::vector<ClientInfo> clients() const;
  Stats stats() const;

  struct Impl;

 private:
  explicit MessagePortServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace xfp::port
