/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The layer-2 field parser, written once for both sides: the BPF programs
 * inline it on packet pointers (every read is bounds-checked against `end`
 * in a form the verifier accepts), and the C++ runtime calls it on frames
 * it holds, so both sides derive identical fields from identical bytes.
 */
#ifndef XFP_FRAME_PARSE_H
#define XFP_FRAME_PARSE_H

#include "xfp/abi.h"
#include "xfp/inline.h"


#define XFP_ETH_HLEN 14
#define XFP_VLAN_HLEN 4
#define XFP_ETH_P_IPV4 0x0800
#define XFP_ETH_P_8021Q 0x8100
#define XFP_ETH_P_8021AD 0x88a8
#define XFP_ETH_P_QINQ_LEGACY 0x9100
#define XFP_ETH_P_MIN 0x0600 /* below: an 802.3 length, not an EtherType */
#define XFP_IPV4_MIN_HLEN 20

XFP_INLINE __u16 xfp_load_be16(const __u8 *p)
{
	return (__u16)(((__u16)p[0] << 8) | p[1]);
}

XFP_INLINE int xfp_is_vlan_tpid(__u16 proto)
{
	return proto == XFP_ETH_P_8021Q || proto == XFP_ETH_P_8021AD ||
	       proto == XFP_ETH_P_QINQ_LEGACY;
}

XFP_INLINE void xfp_copy_mac(__u8 *dst, const __u8 *src)
{
	dst[0] = src[0];
	dst[1] = src[1];
	dst[2] = src[2];
	dst[3] = src[3];
	dst[4] = src[4];
	dst[5] = src[5];
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "xfp_parse_frame reads MAC addresses as little-endian words"
#endif

/*
 * Unaligned word loads (of frame bytes and of the fields) and stores into
 * the fields, as whole words. BPF: plain loads (the JITs xfp runs on allow
 * unaligned packet access; the fields sit 8-byte aligned on the stack).
 * C/C++: memcpy.
 */
#ifdef __BPF__
#define XFP_LOAD(type, p) (*(const type *)(p))
#define XFP_STORE64(p, v) (*(__u64 *)(p) = (v))
#else
#define XFP_LOAD(type, p) xfp_load_##type(p)
#define XFP_STORE64(p, v) xfp_store___u64((p), (v))
XFP_INLINE __u64 xfp_load___u64(const void *p) { __u64 v; __builtin_memcpy(&v, p, 8); return v; }
XFP_INLINE __u32 xfp_load___u32(const void *p) { __u32 v; __builtin_memcpy(&v, p, 4); return v; }
XFP_INLINE __u16 xfp_load___u16(const void *p) { __u16 v; __builtin_memcpy(&v, p, 2); return v; }
XFP_INLINE void xfp_store___u64(void *p, __u64 v) { __builtin_memcpy(p, &v, 8); }
#endif

#define XFP_MAC48 0x0000ffffffffffffull

/* The address type of a MAC held as a little-endian 48-bit word (byte 0,
 * which carries the group bit, lowest). */
XFP_INLINE __u8 xfp_mac48_addr_type(__u64 mac)
{
	if (mac == XFP_MAC48)
		return XFP_ADDR_BROADCAST;
	return (mac & 1) ? XFP_ADDR_MULTICAST : XFP_ADDR_UNICAST;
}

/*
 * Fill the frame-derived fields of `f` (MACs, address types, EtherType,
 * VLANs, flags, length, layer). The caller zeroes `f` and sets ifindex,
 * compartment and iface_mac, which the parser keeps, as it keeps `tuple`.
 * A frame too short for what its headers announce gets XFP_L2_MALFORMED
 * and keeps whatever was parsed before the cut; nothing past `end` is ever
 * read. Only the flags of XFP_L2_KNOWN_FLAGS are ever set.
 *
 * The fields are written as the four words after ifindex and compartment,
 * built in registers: the classifier reads them back as words (hash, key,
 * row checks), and a word load of bytes just stored one by one waits for
 * them (no store forwarding): a frame cost about 3 ns more with byte stores
 * here (interleaved A/B, bench/classifier, one filter).
 */
XFP_INLINE void xfp_parse_frame(const __u8 *data, const __u8 *end, __u32 wire_len,
				__u8 layer, struct xfp_fields *f)
{
	__u8 *fb = (__u8 *)f;
	__u64 local = 0, remote = 0, w2, w3, w4;
	__u16 proto, vlan = 0, inner_vlan = 0, ethertype = 0;
	__u16 flags = XFP_L2_NATIVE_ETHERNET;
	__u8 local_type = 0, remote_type = 0;
	const __u8 *p;

	if (data + XFP_ETH_HLEN > end) {
		flags |= XFP_L2_MALFORMED;
		goto done;
	}
	/* Inbound: the frame is addressed to us (local = destination). */
	if (layer == XFP_LAYER_INBOUND) {
		local = XFP_LOAD(__u64, data) & XFP_MAC48;
		remote = (__u64)XFP_LOAD(__u16, data + 6) | ((__u64)XFP_LOAD(__u32, data + 8) << 16);
	} else {
		local = XFP_LOAD(__u64, data + 6) & XFP_MAC48;
		remote = (__u64)XFP_LOAD(__u16, data) | ((__u64)XFP_LOAD(__u32, data + 2) << 16);
	}
	local_type = xfp_mac48_addr_type(local);
	remote_type = xfp_mac48_addr_type(remote);

	proto = xfp_load_be16(data + 12);
	p = data + XFP_ETH_HLEN;
	/* Two tags at most, unrolled: a fixed depth keeps the verifier happy. */
	if (xfp_is_vlan_tpid(proto)) {
		if (p + XFP_VLAN_HLEN > end) {
			flags |= XFP_L2_VLAN_TAGGED | XFP_L2_MALFORMED;
			goto done;
		}
		flags |= XFP_L2_VLAN_TAGGED;
		vlan = xfp_load_be16(p) & 0x0fff;
		proto = xfp_load_be16(p + 2);
		p += XFP_VLAN_HLEN;
		if (xfp_is_vlan_tpid(proto)) {
			if (p + XFP_VLAN_HLEN > end) {
				flags |= XFP_L2_QINQ | XFP_L2_MALFORMED;
				goto done;
			}
			flags |= XFP_L2_QINQ;
			inner_vlan = xfp_load_be16(p) & 0x0fff;
			proto = xfp_load_be16(p + 2);
			p += XFP_VLAN_HLEN;
			if (xfp_is_vlan_tpid(proto))
				flags |= XFP_L2_TAG_STACK_DEEP;
		}
	}
	ethertype = proto;
	if (proto < XFP_ETH_P_MIN) {
		flags |= XFP_L2_LLC;
		goto done;
	}
	if (proto == XFP_ETH_P_IPV4) {
		if (p + XFP_IPV4_MIN_HLEN > end || (p[0] >> 4) != 4 || (p[0] & 0x0f) < 5) {
			flags |= XFP_L2_MALFORMED;
			goto done;
		}
		/* MF flag or a non-zero fragment offset. */
		if (xfp_load_be16(p + 6) & 0x3fff)
			flags |= XFP_L2_IP_FRAGMENT;
	}
done:
	/* Bytes 8..39 (abi.h, struct xfp_fields): local MAC, remote MAC,
	 * interface MAC (kept), EtherType, VLANs, length, flags, address
	 * types, layer, tuple (kept). */
	w2 = XFP_LOAD(__u64, fb + 16);
	w3 = XFP_LOAD(__u64, fb + 24);
	w4 = XFP_LOAD(__u64, fb + 32);
	XFP_STORE64(fb + 8, local | (remote << 48));
	XFP_STORE64(fb + 16, (remote >> 16) | (w2 & 0xffffffff00000000ull));
	XFP_STORE64(fb + 24, (w3 & 0xffff) | ((__u64)ethertype << 16) | ((__u64)vlan << 32) |
				     ((__u64)inner_vlan << 48));
	XFP_STORE64(fb + 32, (__u64)(wire_len > 0xffff ? 0xffff : wire_len) | ((__u64)flags << 16) |
				     ((__u64)local_type << 32) | ((__u64)remote_type << 40) |
				     ((__u64)layer << 48) | (w4 & 0xff00000000000000ull));
}

/*
 * A VLAN tag the kernel holds beside the frame instead of in its bytes
 * (skb->vlan_tci: what a VLAN device sends reaches TC egress so, and the
 * driver or the stack inserts it later). On the wire it is the outermost
 * tag, so the tags parsed from the bytes move in by one. `tci` is the tag's
 * TCI (priority, DEI, VID). The wire length the parser was given must count
 * the tag's four bytes already.
 */
XFP_INLINE void xfp_fields_add_outer_tag(struct xfp_fields *f, __u16 tci)
{
	__u16 flags = f->l2_flags;

	if (flags & XFP_L2_QINQ)
		flags |= XFP_L2_TAG_STACK_DEEP;
	else if (flags & XFP_L2_VLAN_TAGGED)
		flags |= XFP_L2_QINQ;
	f->inner_vlan = (f->l2_flags & XFP_L2_VLAN_TAGGED) ? f->vlan : 0;
	f->vlan = tci & 0x0fff;
	f->l2_flags = flags | XFP_L2_VLAN_TAGGED;
}

#endif /* XFP_FRAME_PARSE_H */
