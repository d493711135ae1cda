/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * xfp message ports: the wire format between the daemon (user/message_port.cpp)
 * and libxfp-client (user/port_client.c). C, shared by both; there is no
 * second copy.
 *
 * Transport: one AF_UNIX SOCK_SEQPACKET socket per port at DIR/NAME. Every
 * frame is one SEQPACKET record: a fixed struct xfp_port_hdr followed by
 * exactly hdr.length payload bytes (at most XFP_PORT_MAX_MESSAGE). The record
 * boundary is the frame boundary, so there is no framing code, and a record
 * whose size differs from sizeof(hdr) + hdr.length is malformed.
 *
 * Conversation (C = client, S = server):
 *   C: CONNECT(context bytes)        S: CONNECTED(id = client id) | REFUSED(status = errno, reason text)
 *   C: GET                           one credit: "I am waiting for one message"
 *   S: MESSAGE(id, flags)            consumes one credit; XFP_PORT_F_REPLY_EXPECTED when the sender waits
 *   C: REPLY(id of the MESSAGE)      only for a MESSAGE with XFP_PORT_F_REPLY_EXPECTED
 *   C: GET_CANCEL                    withdraw the credit (after a timed-out get)
 *   S: GET_CANCELLED(status)         status 0: withdrawn; 1: there was none (a MESSAGE went out first)
 *   C: SEND(id chosen by C, flags)   to the port's message handler; XFP_PORT_F_WANT_REPLY asks for
 *   S: SEND_REPLY(same id, status)   status 0 or a positive errno (ENOTSUP: no handler)
 *
 * Anything else (bad magic, length mismatch, unknown type, a REPLY to an id
 * never sent to that client, a frame before CONNECT) closes that connection.
 * Integers are in host byte order: both ends are on the same machine.
 */
#ifndef XFP_PORT_PROTO_H
#define XFP_PORT_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* 'X' 'P' magic in the high half, protocol version in the low half. */
#define XFP_PORT_MAGIC 0x58500001u
#define XFP_PORT_MAX_MESSAGE (64u * 1024u) /* payload bytes, either direction */
#define XFP_PORT_DEFAULT_DIR "/run/xfp/ports"

enum xfp_port_type {
	XFP_PORT_CONNECT = 1,
	XFP_PORT_CONNECTED = 2,
	XFP_PORT_REFUSED = 3,
	XFP_PORT_GET = 4,
	XFP_PORT_MESSAGE = 5,
	XFP_PORT_REPLY = 6,
	XFP_PORT_SEND = 7,
	XFP_PORT_SEND_REPLY = 8,
	XFP_PORT_GET_CANCEL = 9,
	XFP_PORT_GET_CANCELLED = 10,
};

enum xfp_port_flags {
	XFP_PORT_F_REPLY_EXPECTED = 1u << 0, /* MESSAGE: the sender waits for a REPLY */
	XFP_PORT_F_WANT_REPLY = 1u << 1,     /* SEND: answer with SEND_REPLY */
};

struct xfp_port_hdr {
	uint32_t magic;      /* XFP_PORT_MAGIC */
	uint16_t type;       /* enum xfp_port_type */
	uint16_t flags;      /* enum xfp_port_flags */
	uint64_t message_id; /* MESSAGE/REPLY: server's id; SEND/SEND_REPLY: client's id */
	uint32_t length;     /* payload bytes after the header */
	uint32_t status;     /* REFUSED, SEND_REPLY, GET_CANCELLED: see above; 0 elsewhere */
};

#define XFP_PORT_HDR_SIZE 24u
#define XFP_PORT_MAX_FRAME (XFP_PORT_HDR_SIZE + XFP_PORT_MAX_MESSAGE)

#ifdef __cplusplus
#define XFP_PORT_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define XFP_PORT_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif
XFP_PORT_STATIC_ASSERT(sizeof(struct xfp_port_hdr) == XFP_PORT_HDR_SIZE, "xfp_port_hdr layout");
XFP_PORT_STATIC_ASSERT(offsetof(struct xfp_port_hdr, message_id) == 8, "message_id offset");
XFP_PORT_STATIC_ASSERT(offsetof(struct xfp_port_hdr, length) == 16, "length offset");
XFP_PORT_STATIC_ASSERT(offsetof(struct xfp_port_hdr, status) == 20, "status offset");

#endif /* XFP_PORT_PROTO_H */
