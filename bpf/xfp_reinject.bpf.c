/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Receive injection (abi.h, struct xfp_reinject_trailer). AF_XDP can only
 * transmit, so user space transmits a frame that must reach the host stack
 * "as if received on X" into end A of an internal veth pair, with an 8-byte
 * trailer naming X. End B's clsact ingress holds, in priority order:
 *
 *   prio 1      xfp_reinject (direct action): checks the trailer, cuts it
 *               off, leaves X's ifindex in skb->cb[0] and continues;
 *   prio 2..    one filter per target X (user/reinject_link.cpp,
 *               add_target()): xfp_reinject_to, a copy whose .rodata names X,
 *               matches frames for X and fixes pkt_type; its action is
 *               "mirred ingress redirect dev X";
 *   prio 65535  xfp_reinject_none (direct action): a frame for an X that has
 *               no filter is dropped and counted.
 *
 * Why mirred and not bpf_redirect(): measured on Linux 6.18 (tests/
 * integration/reinject_test.cpp, GenericXdpOnTarget), a frame put into X's
 * ingress with bpf_redirect(X, BPF_F_INGRESS), and equally one sent with
 * bpf_clone_redirect(skb, X, BPF_F_INGRESS) + TC_ACT_SHOT, IS run through a
 * generic (skb-mode) XDP program attached to X: 5 of 5 frames were counted
 * again. xfp's inbound layer would classify a permitted frame twice, and a
 * frame that hits a callout filter would be punted again, for ever. The
 * kernel skips generic XDP only for skbs marked skb_is_redirected(); act_mirred
 * sets that mark (skb_set_redirected), the BPF redirect helpers do not.
 * With mirred the same measurement counts 0, and X's TC
 * ingress, AF_PACKET and the IP stack still see the frame on X. Native XDP
 * never sees an injected frame with any variant (it runs in the driver).
 * The two BPF-helper variants stay selectable (xfp_reinject_mode) so that
 * the test measures them on every kernel it runs on.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "xfp/abi.h"

/* How xfp_reinject hands a good frame on; set by user space before load. */
#define XFP_REINJECT_MODE_MIRRED 0 /* the per-target mirred filters */
#define XFP_REINJECT_MODE_REDIRECT 1 /* bpf_redirect (measurement only) */
#define XFP_REINJECT_MODE_CLONE 2    /* bpf_clone_redirect (measurement only) */
const volatile __u32 xfp_reinject_mode = XFP_REINJECT_MODE_MIRRED;

/* xfp_reinject_to copies: the target X and X's MAC (for pkt_type). */
const volatile __u32 xfp_reinject_target = 0;
const volatile __u8 xfp_reinject_target_mac[ETH_ALEN] = {};

/* Per-CPU counters, indexed by enum xfp_reinject_counter. All programs of
 * one pair share this map (user space reuses its fd for the copies). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XFP_REINJECT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} xfp_reinject_cnt_v1 SEC(".maps");

static __always_inline int xfp_reinject_count(__u32 which, int verdict)
{
	__u64 *c = bpf_map_lookup_elem(&xfp_reinject_cnt_v1, &which);

	if (c)
		*c += 1; /* per-CPU slot, and TC runs with preemption off: one writer */
	return verdict;
}

SEC("tc")
int xfp_reinject(struct __sk_buff *skb)
{
	struct xfp_reinject_trailer t;
	/* At TC ingress skb->len counts from the Ethernet header. An outer
	 * VLAN tag has already been moved into skb metadata by B's receive
	 * path; it is not in skb->len and travels with the skb to X, exactly
	 * as X's own receive path would have presented it. */
	__u32 len = skb->len;
	long err;

	if (len < ETH_HLEN + sizeof(t))
		return xfp_reinject_count(XFP_REINJECT_BAD, TC_ACT_SHOT);
	if (bpf_skb_load_bytes(skb, len - sizeof(t), &t, sizeof(t)) != 0)
		return xfp_reinject_count(XFP_REINJECT_BAD, TC_ACT_SHOT);
	if (t.magic != XFP_REINJECT_MAGIC || t.ifindex == 0)
		return xfp_reinject_count(XFP_REINJECT_BAD, TC_ACT_SHOT);
	if (bpf_skb_change_tail(skb, len - sizeof(t), 0) != 0)
		return xfp_reinject_count(XFP_REINJECT_FAILED, TC_ACT_SHOT);

	if (xfp_reinject_mode == XFP_REINJECT_MODE_CLONE) {
		err = bpf_clone_redirect(skb, t.ifindex, BPF_F_INGRESS);
		return xfp_reinject_count(err == 0 ? XFP_REINJECT_OK : XFP_REINJECT_FAILED, TC_ACT_SHOT);
	}
	if (xfp_reinject_mode == XFP_REINJECT_MODE_REDIRECT) {
		if (bpf_redirect(t.ifindex, BPF_F_INGRESS) != TC_ACT_REDIRECT)
			return xfp_reinject_count(XFP_REINJECT_FAILED, TC_ACT_SHOT);
		return xfp_reinject_count(XFP_REINJECT_OK, TC_ACT_REDIRECT);
	}
	/* cb[] is the qdisc layer's scratch space: it survives from one
	 * filter of this classification to the next, and nothing beyond. */
	skb->cb[0] = t.ifindex;
	return TC_ACT_UNSPEC; /* on to the next filter: the target's */
}

/* Not direct action: 0 = no match (next filter), -1 = match, and the
 * filter's action (mirred ingress redirect to X) runs. */
SEC("tc")
int xfp_reinject_to(struct __sk_buff *skb)
{
	__u8 dst[ETH_ALEN];
	__u32 type;
	int i;

	if (skb->cb[0] != xfp_reinject_target)
		return 0;
	/* B's receive path set pkt_type against B's own address; X's would
	 * have said HOST for X's address, and mirred (unlike the BPF
	 * redirect) does not recompute it. Group addresses are already right
	 * (they do not depend on the device). */
	if (bpf_skb_load_bytes(skb, 0, dst, sizeof(dst)) != 0)
		goto failed;
	if (!(dst[0] & 1)) {
		type = PACKET_HOST;
		for (i = 0; i < ETH_ALEN; i++)
			if (dst[i] != xfp_reinject_target_mac[i])
				type = PACKET_OTHERHOST;
		if (bpf_skb_change_type(skb, type) != 0)
			goto failed;
	}
	return xfp_reinject_count(XFP_REINJECT_OK, -1);

failed:
	/* No target matches 0: xfp_reinject_none drops and counts it once. */
	skb->cb[0] = 0;
	return 0;
}

/* Last filter: a trailer named an interface no filter serves. */
SEC("tc")
int xfp_reinject_none(struct __sk_buff *skb)
{
	return xfp_reinject_count(XFP_REINJECT_FAILED, TC_ACT_SHOT);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
