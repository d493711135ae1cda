/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libxfp-client, redirect records (include/xfp/redirect_client.h).
 *
 * One request per call on the daemon's control socket: a 4-byte
 * little-endian length and a small JSON object (user/xfp/control.hpp). The
 * request is written here with fixed keys and hex strings; the reply, which
 * the daemon writes compactly with sorted keys, is read by looking for the
 * few keys the library needs ("ok", "errno", "needed", "result", "data").
 * A quoted key cannot be found inside a JSON string value by mistake: there
 * every quote is escaped.
 */
#include "xfp/redirect_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "xfp/flow_key.h"

#define RD_DEFAULT_SOCKET "/run/xfp/xfp.sock"
#define RD_MAX_FRAME 65536u
#define RD_MAX_REPLY (1u << 20)
#define RD_TIMEOUT_S 10

static int rd_connect(const char *path)
{
	struct sockaddr_un addr;
	struct timeval tv = {RD_TIMEOUT_S, 0};
	int fd, e;

	if (!path)
		path = RD_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)&addr, sizeof(addr)) != 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static int rd_write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int rd_read_all(int fd, char *p, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, p, n, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		if (r == 0)
			return -ECONNRESET;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void rd_hex(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int rd_unhex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The value after "key": in the reply, or NULL. */
static const char *rd_find(const char *body, const char *key)
{
	char pattern[32];

	snprintf(pattern, sizeof(pattern), "\"%s\":", key);
	const char *p = strstr(body, pattern);
	return p ? p + strlen(pattern) : NULL;
}

static int rd_number(const char *body, const char *key, unsigned long long *out)
{
	const char *p = rd_find(body, key);
	char *end;

	if (!p)
		return -1;
	errno = 0;
	*out = strtoull(p, &end, 10);
	return end == p || errno ? -1 : 0;
}

/*
 * Sends `request` (a NUL-terminated JSON object) and reads the reply into a
 * malloc'd NUL-terminated *reply. 0, or a negative errno; an {"ok": false}
 * reply becomes its -errno.
 */
static int rd_call(const char *socket_path, const char *request, char **reply)
{
	unsigned char hdr[4];
	size_t len = strlen(request);
	uint32_t rlen;
	char *body;
	int fd, rc;

	*reply = NULL;
	fd = rd_connect(socket_path);
	if (fd < 0)
		return fd;
	hdr[0] = (unsigned char)len;
	hdr[1] = (unsigned char)(len >> 8);
	hdr[2] = (unsigned char)(len >> 16);
	hdr[3] = (unsigned char)(len >> 24);
	rc = rd_write_all(fd, (const char *)hdr, 4);
	if (!rc)
		rc = rd_write_all(fd, request, len);
	if (!rc)
		rc = rd_read_all(fd, (char *)hdr, 4);
	if (rc) {
		close(fd);
		return rc;
	}
	rlen = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	if (rlen > RD_MAX_REPLY) {
		close(fd);
		return -EPROTO;
	}
	body = malloc(rlen + 1);
	if (!body) {
		close(fd);
		return -ENOMEM;
	}
	rc = rd_read_all(fd, body, rlen);
	close(fd);
	if (rc) {
		free(body);
		return rc;
	}
	body[rlen] = '\0';
	if (!strstr(body, "\"ok\":true")) {
		unsigned long long e;

		rc = rd_number(body, "errno", &e) == 0 && e > 0 && e < 4096 ? -(int)e : -EPROTO;
		free(body);
		return rc;
	}
	*reply = body;
	return 0;
}

/* The request's "frame" member: checks that the frame has a flow first. */
static char *rd_frame_hex(const uint8_t *frame, size_t frame_len, int *rc)
{
	struct xfp_flow_key k;
	struct xfp_flow_info info;
	char *hex;

	*rc = -EINVAL;
	if (!frame || frame_len == 0 || frame_len > RD_MAX_FRAME ||
	    !xfp_flow_key_from_frame(frame, frame + frame_len, 0, &k, &info))
		return NULL;
	hex = malloc(frame_len * 2 + 1);
	if (!hex) {
		*rc = -ENOMEM;
		return NULL;
	}
	rd_hex(hex, frame, frame_len);
	*rc = 0;
	return hex;
}

static int rd_query(const char *socket_path, const char *what, const uint8_t *frame, size_t frame_len, void *buf,
		    size_t cap, size_t *needed)
{
	unsigned long long n;
	char *fhex, *req, *reply;
	const char *data;
	size_t i, reqlen;
	int rc;

	if (!needed || (cap && !buf))
		return -EINVAL;
	*needed = 0;
	fhex = rd_frame_hex(frame, frame_len, &rc);
	if (!fhex)
		return rc;
	reqlen = strlen(fhex) + 128;
	req = malloc(reqlen);
	if (!req) {
		free(fhex);
		return -ENOMEM;
	}
	snprintf(req, reqlen, "{\"op\":\"redirect.query\",\"what\":\"%s\",\"size\":%zu,\"frame\":\"%s\"}", what, cap,
		 fhex);
	free(fhex);
	rc = rd_call(socket_path, req, &reply);
	free(req);
	if (rc)
		return rc;
	if (rd_number(reply, "needed", &n) != 0) {
		free(reply);
		return -EPROTO;
	}
	*needed = (size_t)n;
	if (cap == 0) {
		free(reply);
		return 0;
	}
	data = rd_find(reply, "data");
	if (!data) {
		/* "result":"insufficient-buffer" */
		free(reply);
		return n > cap ? -ENOBUFS : -EPROTO;
	}
	if (*data != '"' || n > cap) {
		free(reply);
		return -EPROTO;
	}
	data++;
	for (i = 0; i < n; i++) {
		int hi = rd_unhex_digit(data[2 * i]), lo = hi < 0 ? -1 : rd_unhex_digit(data[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(reply);
			return -EPROTO;
		}
		((uint8_t *)buf)[i] = (uint8_t)(hi << 4 | lo);
	}
	rc = data[2 * n] == '"' ? 0 : -EPROTO;
	free(reply);
	return rc;
}

XFP_REDIRECT_API int xfp_redirect_query_records(const char *socket_path, const uint8_t *frame, size_t frame_len,
						 void *buf, size_t cap, size_t *needed)
{
	return rd_query(socket_path, "records", frame, frame_len, buf, cap, needed);
}

XFP_REDIRECT_API int xfp_redirect_query_context(const char *socket_path, const uint8_t *frame, size_t frame_len,
						 void *buf, size_t cap, size_t *needed)
{
	return rd_query(socket_path, "context", frame, frame_len, buf, cap, needed);
}

XFP_REDIRECT_API int xfp_redirect_set_records(const char *socket_path, const uint8_t *frame, size_t frame_len,
					       const void *records, size_t len)
{
	char *fhex, *req, *reply;
	size_t reqlen;
	int rc;

	if ((len && !records) || len > RD_MAX_FRAME)
		return -EINVAL;
	fhex = rd_frame_hex(frame, frame_len, &rc);
	if (!fhex)
		return rc;
	reqlen = strlen(fhex) + len * 2 + 96;
	req = malloc(reqlen);
	if (!req) {
		free(fhex);
		return -ENOMEM;
	}
	rc = snprintf(req, reqlen, "{\"op\":\"redirect.set\",\"frame\":\"%s\",\"records\":\"", fhex);
	free(fhex);
	rd_hex(req + rc, records, len);
	strcat(req, "\"}");
	rc = rd_call(socket_path, req, &reply);
	free(req);
	if (rc)
		return rc;
	free(reply);
	return 0;
}
