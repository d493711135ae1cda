/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * xfp's fast path: the inbound MAC layer as an XDP program and the outbound
 * MAC layer as a TC egress program, both running xfp_classify().
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <xdp/xdp_helpers.h>
#include "xfp_classify.h"

/*
 * Set per attachment before load: the key of this attachment's entry in
 * xfp_ifaces_v1. An ifindex alone is not unique once one daemon attaches in
 * several namespaces. 0 (the daemon's own copy, used by tests) = ifindex.
 */
const volatile __u32 xfp_attachment_key = 0;

/*
 * Set per attachment before load: how a punted frame's header reaches user
 * space (enum xfp_punt_carrier, abi.h). A frozen .rodata constant, so the
 * verifier prunes the branch not taken: under XFP_CARRIER_IN_BAND the
 * program never calls bpf_xdp_adjust_meta and loads on kernels that refuse
 * that helper to XDP programs. The default is the carrier every kernel
 * loads; the daemon probes the helper and sets METADATA where it exists.
 */
const volatile __u32 xfp_punt_carrier = XFP_CARRIER_IN_BAND;

static __always_inline __u32 xfp_iface_key(__u32 ifindex)
{
	return xfp_attachment_key ? xfp_attachment_key : ifindex;
}

/*
 * Admission of a punted frame into the queue's AF_XDP socket (abi.h, struct
 * xfp_xsk_load). -1: room, the frame was counted into `punted` and goes on
 * to the socket. Otherwise the socket is full (user space fell behind) and
 * the return value is the overload policy's XDP verdict, counted; fallback
 * is the verdict as if no callout were served. A global function: the
 * verifier checks it once, not once per path of the classifier that punts
 * (see xfp_classify.h).
 */
__noinline int xfp_xsk_admit(__u32 xsk, int fallback)
{
	struct xfp_xsk_load *q = bpf_map_lookup_elem(&xfp_xsk_load_v1, &xsk);
	struct xfp_layer_counters *lc;
	__u32 layer = XFP_LAYER_INBOUND;
	__s64 in_flight;
	int verdict;

	if (!q)
		return -1;
	/* READ_ONCE of both: `consumed` is a worker's store, `punted` other
	 * CPUs' atomic adds. u64 never wraps in practice; the signed difference
	 * also keeps a zeroed entry from looking full. */
	in_flight = (__s64)(*(volatile __u64 *)&q->punted - *(volatile __u64 *)&q->consumed);
	if (!q->capacity || in_flight < (__s64)q->capacity) {
		__sync_fetch_and_add(&q->punted, 1);
		return -1;
	}
	__sync_fetch_and_add(&q->overloaded, 1);
	verdict = q->policy == XFP_OVERLOAD_FAIL_OPEN	  ? XDP_PASS
		  : q->policy == XFP_OVERLOAD_FAIL_CLOSED ? XDP_DROP
							  : fallback;
	lc = bpf_map_lookup_elem(&xfp_lcnt_v2, &layer);
	if (lc)
		lc->c[verdict == XDP_DROP ? XFP_CNT_OVERLOAD_BLOCK : XFP_CNT_OVERLOAD_PERMIT]++;
	return verdict;
}

/* libxdp's run configuration: priority and the actions that chain on. */
struct {
	__uint(priority, 10);
	__uint(XDP_PASS, 1);
} XDP_RUN_CONFIG(xfp_inbound);

SEC("xdp")
int xfp_inbound(struct xdp_md *ctx)
{
	const __u8 *data = (const __u8 *)(long)ctx->data;
	const __u8 *end = (const __u8 *)(long)ctx->data_end;
	__u32 key = xfp_iface_key(ctx->ingress_ifindex);
	__u32 xsk = XFP_XSK_INDEX(key, ctx->rx_queue_index);
	struct xfp_decision d;
	int fallback;

	xfp_classify(ctx, data, end, (__u32)(end - data), ctx->ingress_ifindex, key, XFP_LAYER_INBOUND, xsk, 0, &d);
	if (d.redirect)
		return bpf_redirect(d.redirect_ifindex, 0);
	fallback = d.verdict == XFP_ACTION_BLOCK ? XDP_DROP : XDP_PASS;
	if (d.punt) {
		struct xfp_punt_meta *meta;
		__u64 flow;
		int admit, in_band = 0;

		/* A socket gone: the frame goes on untouched. bpf_redirect_map
		 * only records the target here, and returns the flags' action
		 * (0) when the slot is empty. */
		if (bpf_redirect_map(&xfp_xsks_v1, xsk, 0) != XDP_REDIRECT)
			return fallback;
		/* The flow handle (user space keys its flow state by it), read
		 * off the frame before a header moves its start. */
		flow = xfp_flow_handle_xdp(ctx, key);
		if (xfp_punt_carrier == XFP_CARRIER_METADATA && bpf_xdp_adjust_meta(ctx, -(int)sizeof(*meta)) == 0) {
			meta = (void *)(long)ctx->data_meta;
			if ((void *)(meta + 1) > (void *)(long)ctx->data)
				goto punt_failed;
		} else {
			/* In band: the kernel has no metadata helper for XDP,
			 * or the driver gave no metadata room. No headroom
			 * either: the frame is untouched, the fail action
			 * decides. */
			if (bpf_xdp_adjust_head(ctx, -(int)sizeof(*meta)) != 0)
				goto punt_failed;
			in_band = 1;
			meta = (void *)(long)ctx->data;
			if ((void *)(meta + 1) > (void *)(long)ctx->data_end)
				goto restore;
		}
		*meta = d.meta;
		meta->flow = flow;
		/* After the header's room (whose failure must not count as a
		 * punt): a full socket would drop the frame silently. */
		admit = xfp_xsk_admit(xsk, fallback);
		if (admit >= 0) {
			fallback = admit;
			goto restore;
		}
		if (in_band)
			xfp_count_layer(XFP_LAYER_INBOUND, XFP_CNT_PUNT_IN_BAND);
		/* To the socket, or dropped by the kernel if the redirect
		 * cannot complete: never on to the stack with the header. */
		return XDP_REDIRECT;

	restore:
		/* Every verdict but the socket hands the frame on as it came. */
		if (in_band) {
			if (bpf_xdp_adjust_head(ctx, (int)sizeof(*meta)) != 0)
				return XDP_DROP;
		} else if (xfp_punt_carrier == XFP_CARRIER_METADATA) {
			/* Metadata the stack ignores: taken back for
			 * tidiness, harmless if it stays. */
			bpf_xdp_adjust_meta(ctx, (int)sizeof(*meta));
		}
		return fallback;
	}
	return fallback;

punt_failed:
	xfp_count_punt_failed(XFP_LAYER_INBOUND);
	return fallback;
}

SEC("tc")
int xfp_outbound(struct __sk_buff *skb)
{
	const __u8 *data, *end;
	/* 128: the flow key reads past the 64 bytes the filters need (tags,
	 * IPv6 extension headers, the TCP flags). Only a shorter linear part
	 * is pulled. */
	__u32 want = skb->len < 128 ? skb->len : 128;
	/* A VLAN device's frames carry their tag beside the bytes here (the
	 * driver or the stack inserts it after TC): it is their outer tag, and
	 * four bytes of the frame on the wire. */
	__u32 outer_tag = skb->vlan_present ? XFP_OUTER_TAG(skb->vlan_tci) : 0;
	__u32 wire_len = skb->len + (outer_tag ? XFP_VLAN_HLEN : 0);
	struct xfp_decision d;

	/* Headers may sit in paged data. */
	if ((long)skb->data_end - (long)skb->data < want)
		bpf_skb_pull_data(skb, want);
	data = (const __u8 *)(long)skb->data;
	end = (const __u8 *)(long)skb->data_end;
	/* No AF_XDP socket on egress: outbound callouts use their fail action. */
	xfp_classify(skb, data, end, wire_len, skb->ifindex, xfp_iface_key(skb->ifindex), XFP_LAYER_OUTBOUND, ~0u,
		     outer_tag, &d);
	if (d.redirect)
		return bpf_redirect(d.redirect_ifindex, 0);
	return d.verdict == XFP_ACTION_BLOCK ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
