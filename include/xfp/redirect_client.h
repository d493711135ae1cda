/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libxfp-client, redirect records: what an inspection proxy calls
 * (SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS / _CONTEXT and
 * SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS at layer 2). C, libc only.
 *
 * The flow is named by a frame of it, as the proxy received it: the library
 * computes its flow key (include/xfp/flow_key.h, the same code as the kernel
 * and the daemon; the attachment is not part of a redirect record's key) and
 * the daemon looks the records up. Each call is one request on the daemon's
 * control socket (socket_path: NULL for /run/xfp/xfp.sock), whose peer rules
 * apply (root, or the daemon's --group).
 *
 * Buffer rules (the seed's):
 *   cap == 0          -> 0, *needed = the size of the answer (nothing copied)
 *   cap <  needed     -> -ENOBUFS ("insufficient buffer"), *needed set
 *   cap >= needed     -> 0, the bytes copied, *needed = their number
 * The records are an opaque blob: hand it back unchanged with
 * xfp_redirect_set_records() on the proxy's onward flow. The context is the
 * context bytes of the latest record: those of the redirector that sent the
 * flow to this proxy.
 *
 * Errors: -EINVAL (no flow in the frame, bad arguments), -ENOENT (the flow
 * has no records), -ENOBUFS, -EPERM/-EACCES (not allowed on the control
 * socket), -ECONNREFUSED/-ENOENT from connect (no daemon), -ETIMEDOUT,
 * -EOPNOTSUPP (the daemon runs without callouts), -EPROTO (a reply the
 * library does not understand), or the daemon's errno.
 */
#ifndef XFP_REDIRECT_CLIENT_H
#define XFP_REDIRECT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XFP_REDIRECT_API __attribute__((visibility("default")))

XFP_REDIRECT_API int xfp_redirect_query_records(const char *socket_path, const uint8_t *frame, size_t frame_len,
						 void *buf, size_t cap, size_t *needed);
XFP_REDIRECT_API int xfp_redirect_query_context(const char *socket_path, const uint8_t *frame, size_t frame_len,
						 void *buf, size_t cap, size_t *needed);
/* Sets (replaces) the records of the frame's flow; len 0 clears them. */
XFP_REDIRECT_API int xfp_redirect_set_records(const char *socket_path, const uint8_t *frame, size_t frame_len,
					       const void *records, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* XFP_REDIRECT_CLIENT_H */
