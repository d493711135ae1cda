/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The traffic generator of xfp-bench-veth and the sender's placeholder.
 *
 * xfpb_gen_tx runs under BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES:
 * every repetition is a live frame built from data_in, and XDP_TX sends it
 * out of ctx.ingress_ifindex (the sending veth), i.e. into its peer.
 *
 * xfpb_pass is attached to the sending veth itself: a veth only delivers
 * XDP-transmitted frames when XDP is set up on it.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xfpb_gen_tx(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_TX;
}

SEC("xdp")
int xfpb_pass(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
