/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Receiving-side programs of xfp-bench-callout.
 *
 * xfpbc_xsk: the bare AF_XDP peer ("rxdrop"). Every frame goes to the
 * AF_XDP socket of its receive queue; with no socket there the frame is
 * dropped (a frame the peer never saw must not reach the stack and be
 * counted as something else).
 *
 * xfpbc_pass: the NFQUEUE peer's XDP program. The generator's XDP_TX frames
 * only reach a veth that has XDP set up (MACHINE_NOTES gotcha 4), so the
 * receiving veth carries a program that passes everything to the stack.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xfpbc_xsks SEC(".maps");

SEC("xdp")
int xfpbc_xsk(struct xdp_md *ctx)
{
	return bpf_redirect_map(&xfpbc_xsks, ctx->rx_queue_index, XDP_DROP);
}

SEC("xdp")
int xfpbc_pass(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
