// The message-port wire protocol (include/xfp/port_proto.h), both readers:
//
// Server (input byte 0 even): the daemon's reader, user/message_port.cpp,
// compiled into this file so that its per-client machinery runs without the
// server thread: one client on a SOCK_SEQPACKET socketpair, the input's
// steps either write a client record (well-formed or not: wrong magic,
// length mismatch, short, oversized, any type, ids of delivered messages or
// any) which the server then reads (on_readable, then the callbacks and
// their answers as the server thread runs them), or make the daemon side
// send a MESSAGE (send()'s non-blocking part: deliver on a credit or queue),
// expire a waiting sender (send()'s timeout), or close the client end. A
// model of the conversation predicts, for every record, whether the server
// must close the client (protocol error), and checks what comes back:
// every frame well-formed; CONNECTED/REFUSED first, once; a MESSAGE only on
// a credit, with the id, flags and payload of the send it belongs to;
// GET_CANCELLED's status says whether a credit was withdrawn; one SEND_REPLY
// per SEND that asked for it, with its id and the handler's status (errno)
// or reply; a REPLY to a delivered message finishes exactly that sender
// with its bytes (cut to the buffer, kBufferOverflow then); a REPLY to an id
// never sent closes the client, one to a timed-out send is dropped; on a
// close every waiting sender gets kPortDisconnected and the disconnect
// callback runs once for an accepted client.
//
// Client (input byte 0 odd): libxfp-client's reader (user/port_client.c via
// port_client_shim.c): the input queues daemon records (well-formed or not)
// on a socketpair and calls the library (connect answer, post_get,
// read_message, get_message and send with a 0 timeout, reply). Checks:
// every result is 0 or a negative errno; a message handed out is exactly
// the payload, id and flags of a MESSAGE record queued (nothing read past a
// record, nothing mixed from two); a send's reply is that of a SEND_REPLY
// with the send's id (-EOVERFLOW when longer than the buffer, the
// daemon's errno negated); the buffers are exactly the caller's sizes for
// ASan; every record the library writes is well-formed.
#include "../user/message_port.cpp"  // NOLINT(bugprone-suspicious-include): the server's internals

#include <sys/eventfd.h>

#include <deque>
#include <list>

#include "fuzz_common.hpp"
#include "port_client_shim.h"

// Inside the server's namespace: its internals (Client, Waiter, Job, the
// limits) are in an anonymous namespace of the included file.
namespace xfp::port {
namespace {

using Impl = MessagePortServer::Impl;

using Input = xfp::fuzz::ByteReader;

struct Frame {
  xfp_port_hdr h{};
  std::vector<uint8_t> payload;
};

// A record the peer sent, checked to be well-formed.
std::optional<Frame> decode(const uint8_t* b, size_t n) {
  if (n < sizeof(xfp_port_hdr)) return std::nullopt;
  Frame f;
  std::memcpy(&f.h, b, sizeof f.h);
  if (f.h.magic != XFP_PORT_MAGIC || f.h.length > XFP_PORT_MAX_MESSAGE || sizeof f.h + f.h.length != n)
    return std::nullopt;
  f.payload.assign(b + sizeof f.h, b + n);
  return f;
}

std::vector<Frame> drain(int fd) {
  std::vector<Frame> out;
  static std::vector<uint8_t> buf(XFP_PORT_MAX_FRAME + 1);  // once: 64 KiB per call costs most of a run
  for (;;) {
    iovec iov{buf.data(), buf.size()};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    ssize_t n = ::recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n <= 0) break;
    XFP_FUZZ_CHECK(!(mh.msg_flags & MSG_TRUNC));
    auto f = decode(buf.data(), static_cast<size_t>(n));
    XFP_FUZZ_CHECK(f.has_value());
    out.push_back(std::move(*f));
  }
  return out;
}

// False when the peer's receive queue is full (it did not read).
bool send_record(int fd, const std::string& r) {
  ssize_t n = ::send(fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
  XFP_FUZZ_CHECK(n == static_cast<ssize_t>(r.size()));
  return true;
}

// What the harness's message handler answers a SEND with this payload.
struct HandlerAnswer {
  uint32_t status = 0;
  std::vector<uint8_t> reply;
};
HandlerAnswer handler_answer(const std::vector<uint8_t>& m) {
  HandlerAnswer a;
  const uint8_t k = m.empty() ? 1 : m[0] % 4;
  if (k == 0) {
    a.status = 1 + (m.size() > 1 ? m[1] : 0);  // an errno the handler chose
  } else if (k == 2 && m.size() > 1 && m[1] == 0xff) {
    a.status = EMSGSIZE;  // the handler's reply is too long for the protocol
  } else {
    a.reply.assign(m.rbegin(), m.rend());
  }
  return a;
}

// ---- the server side ----------------------------------------------------------

struct SenderModel {
  std::vector<uint8_t> message;
  bool want_reply = false;
  size_t cap = 0;
  std::vector<uint8_t> reply_buf;
  Waiter* w = nullptr;
  enum State { kQueued, kAwaiting, kExpired, kFinished } state = kQueued;
  bool delivered = false;
  uint64_t id = 0;
  // Expected once finished.
  SendStatus want_status = SendStatus::kSuccess;
  std::vector<uint8_t> want_reply_bytes;
  size_t want_reply_len = 0;
};

void fuzz_server(Input& in) {
  int sv[2];
  XFP_FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  const int peer = sv[1];

  Impl s;
  s.opts.name = "fuzz";
  s.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int connects = 0, disconnects = 0;
  s.cb.connect = [&](const xfp::port::ClientInfo&, const std::vector<uint8_t>& ctx) -> std::optional<std::string> {
    ++connects;
    if (!ctx.empty() && ctx[0] == 'R') return std::string(ctx.begin() + 1, ctx.end());
    return std::nullopt;
  };
  s.cb.disconnect = [&](const xfp::port::ClientInfo&) { ++disconnects; };
  s.cb.message_status = [](const xfp::port::ClientInfo&, const std::vector<uint8_t>& m, std::vector<uint8_t>& reply) {
    HandlerAnswer a = handler_answer(m);
    if (a.status == EMSGSIZE) {
      reply.assign(XFP_PORT_MAX_MESSAGE + 1, 0);
      return 0;
    }
    reply = a.reply;
    return static_cast<int>(a.status);
  };
  {
    auto c = std::make_unique<Client>();
    c->fd = sv[0];
    c->info = xfp::port::ClientInfo{s.next_client++, 1, 0, 0};
    c->handshake_deadline = Clock::now() + std::chrono::hours(1);
    s.clients.emplace(c->info.id, std::move(c));
  }
  Client& c = *s.clients.begin()->second;
  static std::vector<uint8_t> rbuf(XFP_PORT_MAX_FRAME + 1);

  // The model, as the client sees the conversation.
  enum { kHandshake, kWaitingAnswer, kConnected, kRefused } phase = kHandshake;
  bool closed = false;   // the server must have closed the client
  uint32_t credits = 0;  // GETs the server holds
  std::list<SenderModel> senders;
  std::deque<std::pair<uint64_t, HandlerAnswer>> send_replies;  // SENDs that asked for a reply, in order
  std::deque<uint64_t> expired;
  uint64_t protocol_errors = 0;

  // Checks what the server wrote since the last look.
  auto look = [&] {
    for (Frame& f : drain(peer)) {
      switch (f.h.type) {
        case XFP_PORT_CONNECTED:
          XFP_FUZZ_CHECK(phase == kWaitingAnswer);
          XFP_FUZZ_CHECK(f.h.message_id == c.info.id && f.h.length == 0);
          phase = kConnected;
          break;
        case XFP_PORT_REFUSED:
          XFP_FUZZ_CHECK(phase == kWaitingAnswer);
          XFP_FUZZ_CHECK(f.h.status == ECONNREFUSED);
          phase = kRefused;
          break;
        case XFP_PORT_MESSAGE: {
          XFP_FUZZ_CHECK(phase == kConnected && credits > 0);
          --credits;
          auto it = std::find_if(senders.begin(), senders.end(), [&](const SenderModel& m) { return m.delivered && m.id == f.h.message_id; });
          XFP_FUZZ_CHECK(it != senders.end());
          XFP_FUZZ_CHECK(f.payload == it->message);
          XFP_FUZZ_CHECK(f.h.flags == (it->want_reply ? XFP_PORT_F_REPLY_EXPECTED : 0));
          break;
        }
        case XFP_PORT_GET_CANCELLED:
          XFP_FUZZ_CHECK(phase == kConnected);
          XFP_FUZZ_CHECK(f.h.status == (credits == 0 ? 1u : 0u));
          if (credits > 0) --credits;
          break;
        case XFP_PORT_SEND_REPLY: {
          XFP_FUZZ_CHECK(phase == kConnected && !send_replies.empty());
          // In order: the server answers one client's SENDs as it read them.
          auto [id, answer] = send_replies.front();
          send_replies.pop_front();
          XFP_FUZZ_CHECK(f.h.message_id == id);
          XFP_FUZZ_CHECK(f.h.status == answer.status);
          XFP_FUZZ_CHECK(f.h.status < 4096);  // an errno, or 0
          XFP_FUZZ_CHECK(f.payload == (answer.status == 0 ? answer.reply : std::vector<uint8_t>{}));
          break;
        }
        default:
          XFP_FUZZ_CHECK(false && "the server sent a client's frame type");
      }
    }
  };

  auto finish_all = [&](SendStatus st) {
    for (SenderModel& m : senders)
      if (m.state == SenderModel::kQueued || m.state == SenderModel::kAwaiting) {
        m.state = SenderModel::kFinished;
        m.want_status = st;
      }
  };

  // The server reads what is queued, runs the callbacks, applies their answers.
  auto serve = [&] {
    for (int round = 0; round < 4; ++round) {
      std::vector<Job> jobs;
      {
        std::lock_guard lk(s.mu);
        if (!c.dead) {
          s.flush(c);
          s.on_readable(c, rbuf, jobs);
        }
      }
      if (jobs.empty()) break;
      s.run_jobs(jobs);
      std::lock_guard lk(s.mu);
      s.apply_jobs(jobs);
    }
  };

  auto protocol_error = [&] {
    closed = true;
    ++protocol_errors;
    finish_all(SendStatus::kPortDisconnected);
  };

  for (int step = 0; step < 48 && in.n > 0 && !closed && phase != kRefused; ++step) {
    const uint8_t op = in.byte();
    if (op < 0xc0) {
      // The client writes a record.
      uint16_t type = static_cast<uint16_t>(1 + op % 11);
      if (phase == kHandshake && (op & 0x30) == 0) type = XFP_PORT_CONNECT;
      const uint8_t shape = in.byte();
      uint16_t flags = static_cast<uint16_t>(in.byte() & 3);
      uint64_t id;
      const uint8_t idsel = in.byte();
      if (idsel < 0xc0 && !senders.empty()) {
        auto it = senders.begin();
        std::advance(it, idsel % senders.size());
        id = it->id;
      } else {
        id = in.le(2);
      }
      std::vector<uint8_t> payload = in.bytes(in.byte() % 40);
      if ((shape & 0x0f) == 0x0f) payload.resize(XFP_PORT_MAX_MESSAGE + (shape >> 7), 'x');  // at the limit and over
      std::string rec = make_frame(type, flags, id, static_cast<uint32_t>(in.byte()), payload.data(), payload.size());
      bool bad = payload.size() > XFP_PORT_MAX_MESSAGE;
      const uint8_t corrupt = (shape >> 4) & 7;
      if (corrupt == 1) {
        rec[0] ^= 1;  // magic
        bad = true;
      } else if (corrupt == 2) {
        uint32_t len;
        std::memcpy(&len, rec.data() + 16, 4);
        len += 1 + (shape & 7);
        std::memcpy(rec.data() + 16, &len, 4);  // length says more than the record
        bad = true;
      } else if (corrupt == 3 && !payload.empty()) {
        rec.pop_back();  // record shorter than its length
        bad = true;
      } else if (corrupt == 4) {
        rec.resize(shape & 15);  // shorter than a header (0 bytes: the peer's EOF)
        bad = true;
      }
      if (rec.empty()) {
        ::shutdown(peer, SHUT_WR);
      } else {
        XFP_FUZZ_CHECK(send_record(peer, rec));  // the server reads every step
      }
      // The model's verdict on it.
      if (rec.empty()) {
        closed = true;  // the client's end of stream
        finish_all(SendStatus::kPortDisconnected);
      } else if (phase == kRefused) {
        // Read and dropped (or not read at all): the client is gone already.
      } else if (bad) {
        protocol_error();
      } else if (phase == kHandshake) {
        if (type != XFP_PORT_CONNECT) {
          protocol_error();
        } else {
          phase = kWaitingAnswer;
        }
      } else if (type == XFP_PORT_GET) {
        if (credits >= kMaxCredits) protocol_error();
        else {
          ++credits;
          // Deliver the queued senders (FIFO) while credits last.
          uint32_t avail = credits;
          for (SenderModel& m : senders)
            if (avail > 0 && m.state == SenderModel::kQueued) {
              --avail;
              m.delivered = true;
              m.state = m.want_reply ? SenderModel::kAwaiting : SenderModel::kFinished;
            }
        }
      } else if (type == XFP_PORT_GET_CANCEL) {
        // The reply (checked in look()) says whether a credit was withdrawn.
      } else if (type == XFP_PORT_REPLY) {
        auto it = std::find_if(senders.begin(), senders.end(),
                               [&](const SenderModel& m) { return m.state == SenderModel::kAwaiting && m.id == id; });
        if (it != senders.end()) {
          it->state = SenderModel::kFinished;
          it->want_reply_len = payload.size();
          it->want_reply_bytes.assign(payload.begin(), payload.begin() + std::min(payload.size(), it->cap));
          it->want_status = payload.size() > it->cap ? SendStatus::kBufferOverflow : SendStatus::kSuccess;
        } else if (auto e = std::find(expired.begin(), expired.end(), id); e != expired.end()) {
          expired.erase(e);  // a late reply: dropped
        } else {
          protocol_error();
        }
      } else if (type == XFP_PORT_SEND) {
        if (flags & XFP_PORT_F_WANT_REPLY) send_replies.emplace_back(id, handler_answer(payload));
      } else {
        protocol_error();  // CONNECT again, or a server's frame type
      }
      serve();
    } else if (op < 0xf0 && phase == kConnected) {
      // The daemon side sends a MESSAGE (send() up to its wait).
      SenderModel& m = senders.emplace_back();
      m.message = in.bytes(in.byte() % 24);
      m.want_reply = op & 1;
      m.cap = in.byte() % 16;
      m.reply_buf.assign(m.cap, 0);
      auto* w = new Waiter;
      m.w = w;
      w->client = c.info.id;
      w->id = m.id = s.next_message.fetch_add(1);
      w->want_reply = m.want_reply;
      w->reply_buf = m.want_reply ? m.reply_buf.data() : nullptr;
      w->reply_cap = m.want_reply ? m.cap : 0;
      w->frame = make_frame(XFP_PORT_MESSAGE, m.want_reply ? XFP_PORT_F_REPLY_EXPECTED : 0, w->id, 0, m.message.data(),
                            m.message.size());
      std::lock_guard lk(s.mu);
      const bool queued_before = std::any_of(senders.begin(), senders.end(), [&](const SenderModel& o) {
        return &o != &m && o.state == SenderModel::kQueued;
      });
      if (c.credits > 0 && c.pending.empty()) {
        XFP_FUZZ_CHECK(credits > 0 && !queued_before);
        s.deliver(c, w);
        m.delivered = true;
        m.state = m.want_reply ? SenderModel::kAwaiting : SenderModel::kFinished;
      } else if (c.pending.size() >= s.opts.max_pending) {
        m.state = SenderModel::kFinished;
        m.want_status = SendStatus::kInsufficientResources;
        w->finish(SendStatus::kInsufficientResources);
      } else {
        c.pending.push_back(w);
      }
    } else if (phase == kConnected) {
      // A waiting sender's deadline passes (send()'s timeout branch).
      std::vector<SenderModel*> waiting;
      for (SenderModel& m : senders)
        if (m.state == SenderModel::kQueued || m.state == SenderModel::kAwaiting) waiting.push_back(&m);
      if (waiting.empty()) continue;
      SenderModel& m = *waiting[in.byte() % waiting.size()];
      std::lock_guard lk(s.mu);
      XFP_FUZZ_CHECK(!m.w->done);
      if (!m.w->delivered) {
        std::erase(c.pending, m.w);
      } else {
        c.awaiting.erase(m.w->id);
        c.expired.push_back(m.w->id);
        if (c.expired.size() > kExpiredMemory) c.expired.pop_front();
        expired.push_back(m.id);
        if (expired.size() > kExpiredMemory) expired.pop_front();
      }
      m.state = SenderModel::kExpired;
    }
    look();
    {
      std::lock_guard lk(s.mu);
      // The server closed the client exactly when the model says so (a
      // refused client is closed once its REFUSED is out).
      XFP_FUZZ_CHECK(c.dead == (closed || phase == kRefused));
      XFP_FUZZ_CHECK(s.stats.protocol_errors == protocol_errors);
      if (!c.dead) XFP_FUZZ_CHECK(c.credits == credits);
    }
    // Finished senders: status and reply bytes as the model says.
    for (SenderModel& m : senders) {
      if (m.state == SenderModel::kFinished) {
        XFP_FUZZ_CHECK(m.w->done);
        XFP_FUZZ_CHECK(m.w->status == m.want_status);
        if (m.want_reply && m.want_status != SendStatus::kPortDisconnected &&
            m.want_status != SendStatus::kInsufficientResources) {
          XFP_FUZZ_CHECK(m.w->reply_len == m.want_reply_len);
          XFP_FUZZ_CHECK(std::equal(m.want_reply_bytes.begin(), m.want_reply_bytes.end(), m.reply_buf.begin()));
        }
      } else if (m.state != SenderModel::kExpired) {
        XFP_FUZZ_CHECK(!m.w->done);
      }
    }
  }

  // The end: the client goes away; every waiter is released, the disconnect
  // callback runs once for an accepted client.
  const bool accepted = phase == kConnected;
  ::close(peer);
  serve();
  std::vector<Job> jobs;
  {
    std::lock_guard lk(s.mu);
    s.mark_dead(c);
    s.reap(jobs);
    XFP_FUZZ_CHECK(s.clients.empty());
  }
  s.run_jobs(jobs);
  XFP_FUZZ_CHECK(disconnects == (accepted ? 1 : 0));
  XFP_FUZZ_CHECK(connects <= 1);
  for (SenderModel& m : senders) {
    if (m.state != SenderModel::kExpired) XFP_FUZZ_CHECK(m.w->done);
    delete m.w;
  }
}

// ---- the client side ----------------------------------------------------------

bool is_errno(int rc) { return rc < 0 && rc > -4096; }

void fuzz_client(Input& in) {
  int sv[2];
  XFP_FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  const int daemon = sv[1];
  xfp_port_conn* conn = xfp_fuzz_port_conn(sv[0]);
  XFP_FUZZ_CHECK(conn != nullptr);

  std::deque<Frame> messages;                 // MESSAGE records queued, not yet handed out
  std::vector<Frame> send_replies;            // SEND_REPLY records queued
  uint64_t sends = 0;                         // the library numbers its SENDs 1, 2, ...
  bool connected = false;

  auto check_written = [&] {
    for (Frame& f : drain(daemon)) {
      const uint16_t t = f.h.type;
      XFP_FUZZ_CHECK(t == XFP_PORT_GET || t == XFP_PORT_REPLY || t == XFP_PORT_SEND || t == XFP_PORT_GET_CANCEL);
      if (t == XFP_PORT_SEND) XFP_FUZZ_CHECK(f.h.message_id == ++sends);
    }
  };

  // A message the library handed out must be one queued, whole.
  auto check_message = [&](const std::vector<uint8_t>& buf, size_t len, uint64_t id, uint32_t flags) {
    while (!messages.empty()) {
      Frame f = messages.front();
      messages.pop_front();
      if (f.h.message_id == id && f.h.flags == flags && f.payload.size() == len &&
          std::equal(f.payload.begin(), f.payload.end(), buf.begin()))
        return;
    }
    XFP_FUZZ_CHECK(false && "a message that was never queued");
  };

  for (int step = 0; step < 48 && in.n > 0; ++step) {
    const uint8_t op = in.byte();
    if (op < 0x80) {
      // The daemon queues a record.
      static const uint16_t kTypes[] = {XFP_PORT_CONNECTED, XFP_PORT_REFUSED, XFP_PORT_MESSAGE,
                                        XFP_PORT_SEND_REPLY, XFP_PORT_GET_CANCELLED, XFP_PORT_GET};
      const uint16_t type = kTypes[op % 6];
      const uint8_t shape = in.byte();
      const uint16_t flags = static_cast<uint16_t>(in.byte() & 3);
      uint64_t id = (shape & 0x40) ? in.le(2) : sends + (shape & 1);
      std::vector<uint8_t> payload = in.bytes(in.byte() % 40);
      if ((shape & 0x0f) == 0x0f) payload.resize(XFP_PORT_MAX_MESSAGE + (shape >> 7), 'y');
      const uint32_t status = (shape & 0x20) ? static_cast<uint32_t>(in.le(4)) : in.byte() % 2;
      std::string rec = make_frame(type, flags, id, status, payload.data(), payload.size());
      const uint8_t corrupt = (shape >> 4) & 3;
      bool bad = payload.size() > XFP_PORT_MAX_MESSAGE;
      if (corrupt == 1 && (shape & 2)) {
        rec[1] ^= 0x40;
        bad = true;
      } else if (corrupt == 2 && (shape & 2)) {
        rec.resize(shape % 24);
        bad = true;
      }
      if (rec.empty()) continue;
      if (!send_record(daemon, rec)) continue;
      if (!bad) {
        auto f = decode(reinterpret_cast<const uint8_t*>(rec.data()), rec.size());
        if (type == XFP_PORT_MESSAGE) messages.push_back(*f);
        if (type == XFP_PORT_SEND_REPLY) send_replies.push_back(*f);
      }
      continue;
    }
    const size_t cap = in.byte() % 48;
    std::vector<uint8_t> buf(cap);
    size_t len = 0;
    uint64_t id = 0;
    uint32_t flags = 0;
    int rc = 0;
    switch (op % 6) {
      case 0: {
        if (connected) break;
        char reason[16] = {};
        rc = xfp_fuzz_port_connect_answer(conn, reason, sizeof reason);
        if (rc == 1) connected = true;
        else XFP_FUZZ_CHECK(is_errno(rc));
        if (rc < 0 && rc != -ETIMEDOUT) XFP_FUZZ_CHECK(std::strlen(reason) < sizeof reason);
        rc = 0;
        break;
      }
      case 1:
        rc = xfp_port_post_get(conn);
        break;
      case 2:
      case 3:
        rc = op % 6 == 2 ? xfp_port_read_message(conn, buf.data(), cap, &len, &id, &flags)
                         : xfp_port_get_message(conn, buf.data(), cap, &len, &id, &flags, 0);
        if (rc == 0) check_message(buf, len, id, flags);
        if (rc == -EMSGSIZE) XFP_FUZZ_CHECK(len > cap);  // kept for a larger buffer
        break;
      case 4: {
        std::vector<uint8_t> m = in.bytes(in.byte() % 16);
        const bool want = in.byte() & 1;
        size_t rlen = 0;
        rc = xfp_port_send(conn, m.data(), m.size(), want ? buf.data() : nullptr, want ? cap : 0, want ? &rlen : nullptr, 0);
        check_written();
        if (want && (rc == 0 || rc == -EOVERFLOW || (is_errno(rc) && rc != -ETIMEDOUT && rc != -EPROTO && rc != -ECONNRESET))) {
          // Answered: by one of the SEND_REPLYs queued with this send's id
          // (the library drops those that come while no send waits).
          auto it = std::find_if(send_replies.begin(), send_replies.end(), [&](const Frame& f) {
            if (f.h.message_id != sends || f.payload.size() != rlen) return false;
            if (f.h.status != 0) return rc == (f.h.status < 4096 ? -static_cast<int>(f.h.status) : -EIO);
            return rc == (rlen > cap ? -EOVERFLOW : 0) &&
                   std::equal(buf.begin(), buf.begin() + std::min(cap, rlen), f.payload.begin());
          });
          XFP_FUZZ_CHECK(it != send_replies.end());
          send_replies.erase(it);
        }
        break;
      }
      default: {
        std::vector<uint8_t> r = in.bytes(in.byte() % 16);
        rc = xfp_port_reply(conn, in.le(2), r.data(), r.size());
        break;
      }
    }
    XFP_FUZZ_CHECK(rc == 0 || is_errno(rc));
    check_written();
  }
  xfp_port_close(conn);
  ::close(daemon);
}

}  // namespace
}  // namespace xfp::port

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  xfp::port::Input in{data + 1, size - 1};
  if (data[0] & 1) xfp::port::fuzz_client(in);
  else xfp::port::fuzz_server(in);
  return 0;
}
