/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libxfp-client: connect to an xfp message port, get the messages the daemon
 * sends (FilterGetMessage), reply to them (FilterReplyMessage) and send to
 * the port (FilterSendMessage). C, links nothing but libc; shared
 * (libxfp-client.so) and static (libxfp-client.a).
 *
 * Errors are negative errno values; 0 is success. A connection is used by one
 * thread at a time (open several connections for several threads).
 *
 *   -ECONNREFUSED  the port's connect handler refused (reason given)
 *   -EPERM         the daemon refused the peer's credentials (reason given)
 *   -EACCES        the socket file's mode kept us out (not root / not in the group)
 *   -EBUSY         the port's connection limit is reached (reason given)
 *   -ETIMEDOUT     the timeout expired
 *   -EMSGSIZE      a message longer than the buffer (kept: call again with a
 *                  buffer of *len bytes), or more than XFP_PORT_MAX_MESSAGE to send
 *   -EOVERFLOW     a SEND's reply longer than the buffer: truncated, *reply_len is the full size
 *   -ECONNRESET    the daemon closed the connection (port removed, daemon stopped)
 *   -EPROTO        the daemon sent something this library does not understand
 *
 * Getting a message and the timeout race. xfp_port_get_message() sends a GET
 * (one credit: "I am waiting for one message") and waits. When its timeout
 * expires, a MESSAGE may already be on its way: the server may have consumed
 * the credit an instant before. The library does not guess: it sends
 * GET_CANCEL and reads until the server's GET_CANCELLED, which the server
 * writes after anything it sent before (the socket is ordered). Either the
 * credit was still there and is withdrawn (nothing delivered, the sender sees
 * its own TIMEOUT: -ETIMEDOUT here), or a MESSAGE arrives first and is
 * returned (it was delivered at the deadline: 0). So no message is ever lost
 * or delivered to nobody, and after -ETIMEDOUT no credit is outstanding. Only
 * if the server does not answer the cancel within a second does the call
 * return -ETIMEDOUT keeping the credit; the message that comes for it is
 * kept for the next call.
 */
#ifndef XFP_PORT_CLIENT_H
#define XFP_PORT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "xfp/port_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XFP_PORT_API __attribute__((visibility("default")))

struct xfp_port_conn;

/* Connects to the port's socket (DIR/NAME, e.g. /run/xfp/ports/approver)
 * with up to XFP_PORT_MAX_MESSAGE bytes of context for the port's connect
 * handler, and waits (up to 10 s) for its answer. */
XFP_PORT_API int xfp_port_connect(const char *path, const void *context, size_t context_len,
				  struct xfp_port_conn **conn);
/* The same; a refusal's reason is copied into reason (NUL-terminated, may be NULL). */
XFP_PORT_API int xfp_port_connect_ex(const char *path, const void *context, size_t context_len,
				     struct xfp_port_conn **conn, char *reason, size_t reason_cap);
/* Closes the connection (the daemon's waiting senders get PORT_DISCONNECTED). NULL is fine. */
XFP_PORT_API void xfp_port_close(struct xfp_port_conn *conn);

/* The client id the daemon gave this connection. */
XFP_PORT_API uint64_t xfp_port_client_id(const struct xfp_port_conn *conn);

/* Waits for one message: timeout_ms < 0 waits without end, 0 takes only a
 * message a sender is already waiting to deliver. On success *len is the
 * message's length, *message_id its id for xfp_port_reply() and *flags has
 * XFP_PORT_F_REPLY_EXPECTED when the sender waits for a reply (message_id and
 * flags may be NULL). */
XFP_PORT_API int xfp_port_get_message(struct xfp_port_conn *conn, void *buf, size_t cap, size_t *len,
				      uint64_t *message_id, uint32_t *flags, int timeout_ms);

/* For event loops: the socket to poll for POLLIN. */
XFP_PORT_API int xfp_port_fd(const struct xfp_port_conn *conn);
/* Posts a GET unless one is outstanding or a message is already here
 * (non-blocking: -EAGAIN when the socket is full). */
XFP_PORT_API int xfp_port_post_get(struct xfp_port_conn *conn);
/* Non-blocking: the message the posted GET brought, or -EAGAIN. The fd may
 * also become readable for nothing (a late SEND_REPLY): -EAGAIN then too. */
XFP_PORT_API int xfp_port_read_message(struct xfp_port_conn *conn, void *buf, size_t cap, size_t *len,
				       uint64_t *message_id, uint32_t *flags);

/* Replies to a message received with XFP_PORT_F_REPLY_EXPECTED. The daemon's
 * sender receives exactly these len bytes (see "the padding pitfall" in
 * user/xfp/message_port.hpp: size both sides as the payload). */
XFP_PORT_API int xfp_port_reply(struct xfp_port_conn *conn, uint64_t message_id, const void *bytes, size_t len);

/* Sends to the port's message handler. With reply_buf non-NULL it waits (as
 * timeout_ms above) for the handler's answer: *reply_len is its full length
 * (-EOVERFLOW when larger than cap); the handler's error comes back as its
 * negative errno (-ENOTSUP: the port has no message handler). Without
 * reply_buf it returns once the message is written. */
XFP_PORT_API int xfp_port_send(struct xfp_port_conn *conn, const void *bytes, size_t len, void *reply_buf,
			       size_t cap, size_t *reply_len, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* XFP_PORT_CLIENT_H */
