/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The messages of the mac_allowlist sample's approver mode
 * (plugins/mac_allowlist.c, config approver=PORT): what the plugin asks a
 * user-mode approver through its message port, and the answer it expects.
 * `xfp port listen` decodes the request and --approve / --deny send the
 * verdict; a program of your own includes this header and uses
 * libxfp-client (include/xfp/port_client.h).
 *
 * Both are fixed structs with no padding anywhere (static_asserts below), so
 * the reply buffer is exactly sizeof(struct xfp_mac_approval_verdict) on both
 * sides: the padding pitfall of FltSendMessage (docs/ARCHITECTURE.md,
 * "Message ports") cannot arise. Integers are in host byte order.
 */
#ifndef XFP_SAMPLE_MAC_APPROVAL_H
#define XFP_SAMPLE_MAC_APPROVAL_H

#include <stddef.h>
#include <stdint.h>

#define XFP_MAC_APPROVAL_MAGIC 0x4d414331u /* "MAC1" */

/* plugin -> approver: a frame came from a source MAC that is neither
 * allowed nor denied yet. Its frames wait until the answer. */
struct xfp_mac_approval_request {
	uint32_t magic;   /* XFP_MAC_APPROVAL_MAGIC */
	uint8_t mac[6];   /* the source MAC */
	uint16_t vlan;    /* outer VLAN id of the first frame, 0 untagged */
	uint32_t iface;   /* xfp's attachment id of the interface */
	uint32_t ifindex; /* the interface's index (in its namespace) */
	uint32_t waiting; /* frames of this MAC waiting when asked (at least 1) */
};

enum xfp_mac_verdict {
	XFP_MAC_VERDICT_PERMIT = 1,
	XFP_MAC_VERDICT_BLOCK = 2,
};

/* approver -> plugin (the reply). */
struct xfp_mac_approval_verdict {
	uint32_t magic;   /* XFP_MAC_APPROVAL_MAGIC */
	uint32_t verdict; /* enum xfp_mac_verdict */
};

#ifdef __cplusplus
#define XFP_MAC_APPROVAL_ASSERT(c, m) static_assert(c, m)
#else
#define XFP_MAC_APPROVAL_ASSERT(c, m) _Static_assert(c, m)
#endif
XFP_MAC_APPROVAL_ASSERT(sizeof(struct xfp_mac_approval_request) == 24, "request has no padding");
XFP_MAC_APPROVAL_ASSERT(offsetof(struct xfp_mac_approval_request, vlan) == 10, "vlan offset");
XFP_MAC_APPROVAL_ASSERT(offsetof(struct xfp_mac_approval_request, waiting) == 20, "waiting offset");
XFP_MAC_APPROVAL_ASSERT(sizeof(struct xfp_mac_approval_verdict) == 8, "verdict has no padding");

#endif /* XFP_SAMPLE_MAC_APPROVAL_H */
