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

XFP_INLINE __u8 xfp_mac_addr_type(const __u8 *mac)
{
	if ((mac[0] & mac[1] & mac[2] & mac[3] & mac[4] & mac[5]) == 0xff)
		return XFP_ADDR_BROADCAST;
	if (mac[0] & 0x01)
		return XFP_ADDR_MULTICAST;
	return XFP_ADDR_UNICAST;
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

/*
 * Fill the frame-derived fields of `f` (MACs, address types, EtherType,
 * VLANs, flags, length, layer). The caller zeroes `f` and sets ifindex,
 * compartment and iface_mac. A frame too short for what its headers
 * announce gets XFP_L2_MALFORMED and keeps whatever was parsed before the
 * cut; nothing past `end` is ever read.
 */
XFP_INLINE void xfp_parse_frame(const __u8 *data, const __u8 *end, __u32 wire_len,
				__u8 layer, struct xfp_fields *f)
{
	const __u8 *p;
	__u16 proto;

	f->layer = layer;
	f->frame_len = wire_len > 0xffff ? 0xffff : (__u16)wire_len;
	f->l2_flags = XFP_L2_NATIVE_ETHERNET;
	if (data + XFP_ETH_HLEN > end) {
		f->l2_flags |= XFP_L2_MALFORMED;
		return;
	}
	/* Inbound: the frame is addressed to us (local = destination). */
	if (layer == XFP_LAYER_INBOUND) {
		xfp_copy_mac(f->local_mac, data);
		xfp_copy_mac(f->remote_mac, data + 6);
	} else {
		xfp_copy_mac(f->local_mac, data + 6);
		xfp_copy_mac(f->remote_mac, data);
	}
	f->local_addr_type = xfp_mac_addr_type(f->local_mac);
	f->remote_addr_type = xfp_mac_addr_type(f->remote_mac);

	proto = xfp_load_be16(data + 12);
	p = data + XFP_ETH_HLEN;
	/* Two tags at most, unrolled: a fixed depth keeps the verifier happy. */
	if (xfp_is_vlan_tpid(proto)) {
		if (p + XFP_VLAN_HLEN > end) {
			f->l2_flags |= XFP_L2_VLAN_TAGGED | XFP_L2_MALFORMED;
			return;
		}
		f->l2_flags |= XFP_L2_VLAN_TAGGED;
		f->vlan = xfp_load_be16(p) & 0x0fff;
		proto = xfp_load_be16(p + 2);
		p += XFP_VLAN_HLEN;
		if (xfp_is_vlan_tpid(proto)) {
			if (p + XFP_VLAN_HLEN > end) {
				f->l2_flags |= XFP_L2_QINQ | XFP_L2_MALFORMED;
				return;
			}
			f->l2_flags |= XFP_L2_QINQ;
			f->inner_vlan = xfp_load_be16(p) & 0x0fff;
			proto = xfp_load_be16(p + 2);
			p += XFP_VLAN_HLEN;
			if (xfp_is_vlan_tpid(proto))
				f->l2_flags |= XFP_L2_TAG_STACK_DEEP;
		}
	}
	f->ethertype = proto;
	if (proto < XFP_ETH_P_MIN) {
		f->l2_flags |= XFP_L2_LLC;
		return;
	}
	if (proto == XFP_ETH_P_IPV4) {
		if (p + XFP_IPV4_MIN_HLEN > end || (p[0] >> 4) != 4 || (p[0] & 0x0f) < 5) {
			f->l2_flags |= XFP_L2_MALFORMED;
			return;
		}
		/* MF flag or a non-zero fragment offset. */
		if (xfp_load_be16(p + 6) & 0x3fff)
			f->l2_flags |= XFP_L2_IP_FRAGMENT;
	}
}

#endif /* XFP_FRAME_PARSE_H */
