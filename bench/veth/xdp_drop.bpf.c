/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The floor of xfp-bench-veth: the cheapest possible XDP program on the
 * receiving veth. Drops every frame and does nothing else (no counters: the
 * bench counts frames with the veth's receive statistics for every peer).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xfpb_drop(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
