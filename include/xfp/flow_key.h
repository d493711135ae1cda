/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The flow key of a frame and its 64-bit flow handle, written once for both
 * sides like frame_parse.h: the BPF programs inline it on packet pointers
 * (every read is checked against `end` first), user space calls it on punted
 * frames. Both sides therefore derive the same key and handle from the same
 * bytes, by construction. The key's layout and rules: abi.h, "Flows".
 */
#ifndef XFP_FLOW_KEY_H
#define XFP_FLOW_KEY_H

#include "xfp/abi.h"
#include "xfp/frame_parse.h"

#define XFP_ETH_P_IPV6 0x86dd
#define XFP_IPV6_HLEN 40
#define XFP_IPPROTO_HOPOPTS 0
#define XFP_IPPROTO_TCP 6
#define XFP_IPPROTO_UDP 17
#define XFP_IPPROTO_ROUTING 43
#define XFP_IPPROTO_FRAGMENT 44
#define XFP_IPPROTO_DSTOPTS 60
#define XFP_IPPROTO_SCTP 132
#define XFP_TCP_FIN 0x01
#define XFP_TCP_RST 0x04
/* IPv6 extension headers walked before the upper-layer header (fixed depth
 * for the verifier); a deeper chain keeps the last next-header, no ports. */
#define XFP_FLOW_IPV6_EXT_MAX 2

/* What xfp_flow_key_from_frame() found besides the key. */
struct xfp_flow_info {
	__u8 tcp_flags; /* TCP header flags (FIN 0x01, RST 0x04, ...), 0 when not TCP */
};

XFP_INLINE void xfp_flow_copy16(__u8 *dst, const __u8 *src)
{
	__builtin_memcpy(dst, src, 16);
}

XFP_INLINE void xfp_flow_copy4(__u8 *dst, const __u8 *src)
{
	__builtin_memcpy(dst, src, 4);
}

/* Aligned loads and stores inside the key (8-byte aligned): whole-word
 * accesses rather than byte by byte, and few live registers, so the BPF
 * code needs little stack. */
XFP_INLINE __u64 xfp_flow_ld64(const __u8 *p)
{
	__u64 w;

	__builtin_memcpy(&w, __builtin_assume_aligned(p, 8), 8);
	return w;
}

XFP_INLINE void xfp_flow_st64(__u8 *p, __u64 w)
{
	__builtin_memcpy(__builtin_assume_aligned(p, 8), &w, 8);
}

XFP_INLINE __u16 xfp_flow_ld16(const __u8 *p)
{
	__u16 w;

	__builtin_memcpy(&w, __builtin_assume_aligned(p, 2), 2);
	return w;
}

XFP_INLINE void xfp_flow_st16(__u8 *p, __u16 w)
{
	__builtin_memcpy(__builtin_assume_aligned(p, 2), &w, 2);
}

/* Swaps the 2-byte-aligned 16-bit words at p and q. */
XFP_INLINE void xfp_flow_swap16(__u8 *p, __u8 *q)
{
	__u16 t = xfp_flow_ld16(p);

	xfp_flow_st16(p, xfp_flow_ld16(q));
	xfp_flow_st16(q, t);
}

XFP_INLINE void xfp_flow_swap64(__u8 *p, __u8 *q)
{
	__u64 t = xfp_flow_ld64(p);

	xfp_flow_st64(p, xfp_flow_ld64(q));
	xfp_flow_st64(q, t);
}

/* A MAC (2-byte aligned in the key) as a number for ordering. */
XFP_INLINE __u64 xfp_flow_mac_order(const __u8 *m)
{
	return ((__u64)xfp_flow_ld16(m) << 32) | ((__u64)xfp_flow_ld16(m + 2) << 16) | xfp_flow_ld16(m + 4);
}

/*
 * Puts the lower endpoint (address, then port, then MAC) first. Words are
 * compared as the host loads them, the same on both sides (one machine):
 * the order need only be consistent, not numeric.
 */
XFP_INLINE void xfp_flow_canonicalize(struct xfp_flow_key *k)
{
	__u8 *b = (__u8 *)k;
	__u64 x, y;

	x = xfp_flow_ld64(b);
	y = xfp_flow_ld64(b + 16);
	if (x == y) {
		x = xfp_flow_ld64(b + 8);
		y = xfp_flow_ld64(b + 24);
	}
	if (x == y) {
		x = k->port_a;
		y = k->port_b;
	}
	if (x == y) {
		x = xfp_flow_mac_order(k->mac_a);
		y = xfp_flow_mac_order(k->mac_b);
	}
	if (x <= y)
		return;
	xfp_flow_swap64(b, b + 16);
	xfp_flow_swap64(b + 8, b + 24);
	xfp_flow_swap16(k->mac_a, k->mac_b);
	xfp_flow_swap16(k->mac_a + 2, k->mac_b + 2);
	xfp_flow_swap16(k->mac_a + 4, k->mac_b + 4);
	xfp_flow_swap16((__u8 *)&k->port_a, (__u8 *)&k->port_b);
}

/*
 * Reads the ports (and TCP flags) of an upper-layer header at l4. Returns 0
 * when the header is cut short (malformed: no flow), 1 otherwise. Protocols
 * without ports leave them zero.
 */
XFP_INLINE int xfp_flow_ports(const __u8 *l4, const __u8 *end, __u8 proto, struct xfp_flow_key *k,
			      struct xfp_flow_info *info)
{
	__u32 need;

	if (proto == XFP_IPPROTO_TCP)
		need = 20;
	else if (proto == XFP_IPPROTO_UDP)
		need = 8;
	else if (proto == XFP_IPPROTO_SCTP)
		need = 12;
	else
		return 1;
	if (l4 + need > end)
		return 0;
	k->port_a = xfp_load_be16(l4);     /* source, until canonicalized */
	k->port_b = xfp_load_be16(l4 + 2); /* destination */
	if (proto == XFP_IPPROTO_TCP)
		info->tcp_flags = l4[13];
	return 1;
}

/*
 * Fills *k with the flow key of the frame [data, end) seen on attachment
 * `iface`, and *info. Returns 1 when the frame has a flow, 0 when it is
 * malformed (a header it announces is cut short, an IP header with a bad
 * version or length): then there is no flow. Nothing past `end` is read.
 */
XFP_INLINE int xfp_flow_key_from_frame(const __u8 *data, const __u8 *end, __u32 iface,
				       struct xfp_flow_key *k, struct xfp_flow_info *info)
{
	const __u8 *p;
	__u16 proto;

	__builtin_memset(k, 0, sizeof(*k));
	info->tcp_flags = 0;
	if (data + XFP_ETH_HLEN > end)
		return 0;
	k->iface = iface;
	/* Source first; canonicalize() orders the endpoints at the end. */
	xfp_copy_mac(k->mac_a, data + 6);
	xfp_copy_mac(k->mac_b, data);
	proto = xfp_load_be16(data + 12);
	p = data + XFP_ETH_HLEN;
	if (xfp_is_vlan_tpid(proto)) {
		if (p + XFP_VLAN_HLEN > end)
			return 0;
		k->vlan = xfp_load_be16(p) & 0x0fff;
		proto = xfp_load_be16(p + 2);
		p += XFP_VLAN_HLEN;
		if (xfp_is_vlan_tpid(proto)) {
			if (p + XFP_VLAN_HLEN > end)
				return 0;
			proto = xfp_load_be16(p + 2);
			p += XFP_VLAN_HLEN;
		}
	}
	if (proto < XFP_ETH_P_MIN) {
		k->ethertype = 0; /* LLC: one flow per MAC pair, whatever the length */
		goto done;
	}
	k->ethertype = proto;
	if (proto == XFP_ETH_P_IPV4) {
		__u32 ihl;
		const __u8 *l4;

		if (p + XFP_IPV4_MIN_HLEN > end || (p[0] >> 4) != 4 || (p[0] & 0x0f) < 5)
			return 0;
		ihl = (__u32)(p[0] & 0x0f) * 4;
		k->ip_version = 4;
		k->protocol = p[9];
		xfp_flow_copy4(k->addr_a, p + 12);
		xfp_flow_copy4(k->addr_b, p + 16);
		if (xfp_load_be16(p + 6) & 0x3fff)
			goto done; /* a fragment: no ports */
		l4 = p + ihl;
		if (l4 > end)
			return 0;
		if (!xfp_flow_ports(l4, end, k->protocol, k, info))
			return 0;
	} else if (proto == XFP_ETH_P_IPV6) {
		const __u8 *l4;
		__u8 next;
		int i;

		if (p + XFP_IPV6_HLEN > end || (p[0] >> 4) != 6)
			return 0;
		k->ip_version = 6;
		next = p[6];
		xfp_flow_copy16(k->addr_a, p + 8);
		xfp_flow_copy16(k->addr_b, p + 24);
		l4 = p + XFP_IPV6_HLEN;
		for (i = 0; i < XFP_FLOW_IPV6_EXT_MAX; i++) {
			if (next == XFP_IPPROTO_HOPOPTS || next == XFP_IPPROTO_ROUTING ||
			    next == XFP_IPPROTO_DSTOPTS) {
				if (l4 + 8 > end)
					return 0;
				next = l4[0];
				l4 += ((__u32)l4[1] + 1) * 8;
			} else if (next == XFP_IPPROTO_FRAGMENT) {
				if (l4 + 8 > end)
					return 0;
				k->protocol = l4[0];
				goto done; /* a fragment: no ports */
			} else {
				break;
			}
		}
		k->protocol = next;
		if (next == XFP_IPPROTO_HOPOPTS || next == XFP_IPPROTO_ROUTING || next == XFP_IPPROTO_DSTOPTS ||
		    next == XFP_IPPROTO_FRAGMENT)
			goto done; /* deeper than we walk: no ports */
		if (l4 > end)
			return 0;
		if (!xfp_flow_ports(l4, end, next, k, info))
			return 0;
	}
done:
	xfp_flow_canonicalize(k);
	return 1;
}

XFP_INLINE __u64 xfp_flow_mix(__u64 h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* The flow handle: a 64-bit hash of the whole key (padding included, which
 * is zero), never 0. */
XFP_INLINE __u64 xfp_flow_handle(const struct xfp_flow_key *k)
{
	const __u8 *b = (const __u8 *)k;
	__u64 h = 0x9e3779b97f4a7c15ull;
	int i;

	for (i = 0; i < (int)(sizeof(*k) / 8); i++) {
		h ^= xfp_flow_ld64(b + i * 8);
		h = (h << 27 | h >> 37) * 0x9e3779b97f4a7c15ull;
	}
	h = xfp_flow_mix(h);
	return h ? h : 1;
}

#endif /* XFP_FLOW_KEY_H */
