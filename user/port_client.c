/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libxfp-client: the client side of xfp message ports (include/xfp/port_client.h,
 * wire format include/xfp/port_proto.h). libc only.
 *
 * The socket is non-blocking; every wait is a poll() bounded by the caller's
 * deadline. Frames are read one SEQPACKET record at a time into `rbuf`
 * (XFP_PORT_MAX_FRAME + 1 bytes, so an oversized record shows as MSG_TRUNC).
 * The library keeps at most one GET outstanding, so at most one MESSAGE can
 * arrive before it is handed out: it is kept in `msg` (the buffers are
 * swapped, not copied) until a get or read call takes it. SEND_REPLYs are
 * matched by the send's id; one for a send that timed out is dropped.
 */
#include "xfp/port_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 10000
#ifndef CANCEL_GUARD_MS /* fuzz/port_client_shim.c sets 0: its peer answers from a queue, never later */
#define CANCEL_GUARD_MS 1000
#endif

struct xfp_port_conn {
	int fd;
	uint64_t id;
	int credit;    /* a GET is outstanding */
	int have_msg;  /* msg holds a MESSAGE not yet handed out */
	uint8_t *msg;  /* header + payload */
	uint8_t *rbuf; /* receive buffer */
	uint64_t next_send;
	int cancel_acked;
	/* The SEND waiting for its reply. */
	uint64_t sr_id; /* 0: none */
	int sr_done;
	uint8_t *sr_buf;
	size_t sr_cap;
	size_t sr_len;
	uint32_t sr_status;
	/* Connect answer. */
	int connect_state; /* 0 waiting, 1 connected, -errno refused */
	char *reason;
	size_t reason_cap;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_in(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

static int remaining(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - now_ms();
	if (left <= 0)
		return 0;
	return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = {fd, events, 0};
		int r = poll(&p, 1, remaining(deadline));
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int write_frame(struct xfp_port_conn *c, uint16_t type, uint16_t flags, uint64_t id, const void *payload,
		       size_t len, int64_t deadline)
{
	struct xfp_port_hdr h;
	memset(&h, 0, sizeof h);
	h.magic = XFP_PORT_MAGIC;
	h.type = type;
	h.flags = flags;
	h.message_id = id;
	h.length = (uint32_t)len;
	struct iovec iov[2] = {{&h, sizeof h}, {(void *)payload, len}};
	struct msghdr mh;
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = iov;
	mh.msg_iovlen = len > 0 ? 2 : 1;
	for (;;) {
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == (ssize_t)(sizeof h + len))
			return 0;
		if (n >= 0)
			return -EPROTO;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
			int r = wait_fd(c->fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			continue;
		}
		if (errno == EPIPE || errno == ENOTCONN)
			return -ECONNRESET;
		return -errno;
	}
}

/* Handles one received frame. */
static int dispatch(struct xfp_port_conn *c, size_t n)
{
	struct xfp_port_hdr h;
	if (n < sizeof h)
		return -EPROTO;
	memcpy(&h, c->rbuf, sizeof h);
	if (h.magic != XFP_PORT_MAGIC || h.length > XFP_PORT_MAX_MESSAGE || sizeof h + h.length != n)
		return -EPROTO;
	const uint8_t *payload = c->rbuf + sizeof h;
	switch (h.type) {
	case XFP_PORT_MESSAGE: {
		if (c->have_msg || !c->credit)
			return -EPROTO;
		uint8_t *t = c->msg;
		c->msg = c->rbuf;
		c->rbuf = t;
		c->have_msg = 1;
		c->credit = 0;
		return 0;
	}
	case XFP_PORT_SEND_REPLY:
		if (c->sr_id == 0 || h.message_id != c->sr_id)
			return 0; /* a reply to a send that timed out */
		if (c->sr_buf && c->sr_cap > 0 && h.length > 0)
			memcpy(c->sr_buf, payload, h.length < c->sr_cap ? h.length : c->sr_cap);
		c->sr_len = h.length;
		c->sr_status = h.status;
		c->sr_done = 1;
		c->sr_id = 0;
		return 0;
	case XFP_PORT_GET_CANCELLED:
		c->cancel_acked = 1;
		if (h.status == 0)
			c->credit = 0;
		return 0;
	case XFP_PORT_CONNECTED:
		if (c->connect_state != 0)
			return -EPROTO;
		c->id = h.message_id;
		c->connect_state = 1;
		return 0;
	case XFP_PORT_REFUSED:
		if (c->reason && c->reason_cap > 0) {
			size_t k = h.length < c->reason_cap - 1 ? h.length : c->reason_cap - 1;
			memcpy(c->reason, payload, k);
			c->reason[k] = '\0';
		}
		c->connect_state = h.status != 0 && h.status < 4096 ? -(int)h.status : -ECONNREFUSED;
		return 0;
	default:
		return -EPROTO;
	}
}

/* Reads and handles one frame, waiting until the deadline (-1: without end). */
static int read_one(struct xfp_port_conn *c, int64_t deadline)
{
	for (;;) {
		struct iovec iov = {c->rbuf, XFP_PORT_MAX_FRAME + 1};
		struct msghdr mh;
		memset(&mh, 0, sizeof mh);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT);
		if (n > 0) {
			if ((mh.msg_flags & MSG_TRUNC) || (size_t)n > XFP_PORT_MAX_FRAME)
				return -EPROTO;
			return dispatch(c, (size_t)n);
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int r = wait_fd(c->fd, POLLIN, deadline);
		if (r < 0)
			return r;
	}
}

static int take_message(struct xfp_port_conn *c, void *buf, size_t cap, size_t *len, uint64_t *message_id,
			uint32_t *flags)
{
	struct xfp_port_hdr h;
	memcpy(&h, c->msg, sizeof h);
	if (len)
		*len = h.length;
	if (h.length > cap)
		return -EMSGSIZE;
	if (h.length > 0)
		memcpy(buf, c->msg + sizeof h, h.length);
	if (message_id)
		*message_id = h.message_id;
	if (flags)
		*flags = h.flags;
	c->have_msg = 0;
	return 0;
}

void xfp_port_close(struct xfp_port_conn *conn)
{
	if (!conn)
		return;
	if (conn->fd >= 0)
		close(conn->fd);
	free(conn->msg);
	free(conn->rbuf);
	free(conn);
}

int xfp_port_connect_ex(const char *path, const void *context, size_t context_len, struct xfp_port_conn **conn,
			char *reason, size_t reason_cap)
{
	if (!path || !conn || (context_len > 0 && !context))
		return -EINVAL;
	*conn = NULL;
	if (reason && reason_cap > 0)
		reason[0] = '\0';
	if (context_len > XFP_PORT_MAX_MESSAGE)
		return -EMSGSIZE;
	struct sockaddr_un addr;
	memset(&addr, 0, sizeof addr);
	addr.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof addr.sun_path)
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);

	struct xfp_port_conn *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->msg = malloc(XFP_PORT_MAX_FRAME + 1);
	c->rbuf = malloc(XFP_PORT_MAX_FRAME + 1);
	if (!c->msg || !c->rbuf) {
		xfp_port_close(c);
		return -ENOMEM;
	}
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		int e = -errno;
		xfp_port_close(c);
		return e;
	}
	if (connect(c->fd, (const struct sockaddr *)&addr, sizeof addr) != 0) {
		int e = -errno;
		xfp_port_close(c);
		return e;
	}
	int fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int e = -errno;
		xfp_port_close(c);
		return e;
	}
	c->reason = reason;
	c->reason_cap = reason_cap;
	int64_t deadline = deadline_in(CONNECT_TIMEOUT_MS);
	/* The daemon may have refused us already (credentials, limit) and
	 * closed: its REFUSED is still readable, so read even when writing fails. */
	int wr = write_frame(c, XFP_PORT_CONNECT, 0, 0, context, context_len, deadline);
	int r = 0;
	int resets = 0;
	while (c->connect_state == 0) {
		r = read_one(c, deadline);
		/* A reset is reported once, before records still queued (the REFUSED). */
		if (r == -ECONNRESET && resets++ == 0)
			continue;
		if (r < 0)
			break;
	}
	c->reason = NULL;
	c->reason_cap = 0;
	if (c->connect_state == 1) {
		*conn = c;
		return 0;
	}
	int e = c->connect_state < 0 ? c->connect_state : (wr < 0 ? wr : r);
	xfp_port_close(c);
	return e;
}

int xfp_port_connect(const char *path, const void *context, size_t context_len, struct xfp_port_conn **conn)
{
	return xfp_port_connect_ex(path, context, context_len, conn, NULL, 0);
}

uint64_t xfp_port_client_id(const struct xfp_port_conn *conn)
{
	return conn ? conn->id : 0;
}

int xfp_port_fd(const struct xfp_port_conn *conn)
{
	return conn ? conn->fd : -EINVAL;
}

int xfp_port_get_message(struct xfp_port_conn *conn, void *buf, size_t cap, size_t *len, uint64_t *message_id,
			 uint32_t *flags, int timeout_ms)
{
	if (!conn || (cap > 0 && !buf))
		return -EINVAL;
	if (conn->have_msg)
		return take_message(conn, buf, cap, len, message_id, flags);
	int64_t deadline = deadline_in(timeout_ms);
	int r = 0;
	for (;;) {
		if (!conn->credit) {
			r = write_frame(conn, XFP_PORT_GET, 0, 0, NULL, 0, deadline);
			if (r < 0)
				return r;
			conn->credit = 1;
			/* The answer to a GET needs the server's turn: wait before
			 * reading (saves a recvmsg that would find nothing). */
			r = wait_fd(conn->fd, POLLIN, deadline);
			if (r == -ETIMEDOUT)
				break;
			if (r < 0)
				return r;
		}
		r = read_one(conn, deadline);
		if (conn->have_msg)
			return take_message(conn, buf, cap, len, message_id, flags);
		if (r == -ETIMEDOUT)
			break;
		if (r < 0)
			return r;
	}
	if (!conn->credit)
		return -ETIMEDOUT;
	/* Withdraw the credit; a MESSAGE sent before the server saw the cancel
	 * arrives first and is returned (see the header). */
	int64_t guard = now_ms() + CANCEL_GUARD_MS;
	conn->cancel_acked = 0;
	r = write_frame(conn, XFP_PORT_GET_CANCEL, 0, 0, NULL, 0, guard);
	if (r < 0 && r != -ETIMEDOUT)
		return r;
	while (r == 0 && !conn->cancel_acked) {
		r = read_one(conn, guard);
		if (r < 0 && r != -ETIMEDOUT)
			return r;
	}
	if (conn->have_msg)
		return take_message(conn, buf, cap, len, message_id, flags);
	return -ETIMEDOUT;
}

int xfp_port_post_get(struct xfp_port_conn *conn)
{
	if (!conn)
		return -EINVAL;
	if (conn->credit || conn->have_msg)
		return 0;
	int r = write_frame(conn, XFP_PORT_GET, 0, 0, NULL, 0, now_ms());
	if (r == -ETIMEDOUT)
		return -EAGAIN;
	if (r == 0)
		conn->credit = 1;
	return r;
}

int xfp_port_read_message(struct xfp_port_conn *conn, void *buf, size_t cap, size_t *len, uint64_t *message_id,
			  uint32_t *flags)
{
	if (!conn || (cap > 0 && !buf))
		return -EINVAL;
	for (;;) {
		if (conn->have_msg)
			return take_message(conn, buf, cap, len, message_id, flags);
		int r = read_one(conn, now_ms());
		if (r == -ETIMEDOUT)
			return -EAGAIN;
		if (r < 0)
			return r;
	}
}

int xfp_port_reply(struct xfp_port_conn *conn, uint64_t message_id, const void *bytes, size_t len)
{
	if (!conn || (len > 0 && !bytes))
		return -EINVAL;
	if (len > XFP_PORT_MAX_MESSAGE)
		return -EMSGSIZE;
	return write_frame(conn, XFP_PORT_REPLY, 0, message_id, bytes, len, -1);
}

int xfp_port_send(struct xfp_port_conn *conn, const void *bytes, size_t len, void *reply_buf, size_t cap,
		  size_t *reply_len, int timeout_ms)
{
	if (!conn || (len > 0 && !bytes) || (cap > 0 && !reply_buf))
		return -EINVAL;
	if (len > XFP_PORT_MAX_MESSAGE)
		return -EMSGSIZE;
	int want = reply_buf != NULL || reply_len != NULL;
	int64_t deadline = deadline_in(timeout_ms);
	uint64_t id = ++conn->next_send;
	int r = write_frame(conn, XFP_PORT_SEND, want ? XFP_PORT_F_WANT_REPLY : 0, id, bytes, len, deadline);
	if (r < 0 || !want)
		return r;
	conn->sr_id = id;
	conn->sr_done = 0;
	conn->sr_buf = reply_buf;
	conn->sr_cap = cap;
	conn->sr_len = 0;
	conn->sr_status = 0;
	while (!conn->sr_done) {
		r = read_one(conn, deadline);
		if (r < 0) {
			conn->sr_id = 0;
			return r;
		}
	}
	if (reply_len)
		*reply_len = conn->sr_len;
	if (conn->sr_status != 0)
		return conn->sr_status < 4096 ? -(int)conn->sr_status : -EIO;
	return conn->sr_len > cap ? -EOVERFLOW : 0;
}
