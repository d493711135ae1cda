/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The classification pipeline shared by the XDP and TC programs, on the
 * active bank: parse -> direct tables of the small fields -> tuple-space
 * search, one probe per group of tuples that survives pruning -> WFP
 * arbitration -> counters. A set of one probe group and nothing else skips
 * to the verdict of the one row a frame's key finds, when that row decides
 * alone (abi.h, XFP_ROW_DECIDES). Cost per frame depends on the condition
 * shapes in use, never on the number of filters.
 */
#ifndef XFP_CLASSIFY_H
#define XFP_CLASSIFY_H

#include "xfp_maps.h"
#include "xfp/frame_parse.h"
#include "xfp/flow_key.h"
#include "xfp/arbitration.h"
#include "xfp/entry_hash.h"

struct xfp_key_words {
	__u64 w[sizeof(struct xfp_fields) / 8];
};

/*
 * The frame's fields as the classifier holds them: the five words of a
 * struct xfp_fields, read and written as words only, small fields by shift.
 * Read by field, clang splits the struct into bytes and halfwords and
 * rebuilds each word a probe hashes from those pieces (some thirty
 * instructions per probe); read by word it keeps five registers.
 */
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_fields, compartment) == 4, "compartment: w0 bits 32..63");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_fields, iface_mac) == 20, "iface_mac: w2 bits 32..63, w3 bits 0..15");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_fields, vlan) == 28, "vlan: w3 bits 32..47");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_fields, inner_vlan) == 30, "inner_vlan: w3 bits 48..63");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_fields, frame_len) == 32, "frame_len: w4 bits 0..15");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_fields, l2_flags) == 34, "l2_flags: w4 bits 16..31");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_fields, local_addr_type) == 36, "local type: w4 bits 32..39");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_fields, remote_addr_type) == 37, "remote type: w4 bits 40..47");
#define XFP_FW_ETHERTYPE(fw) ((__u32)((fw).w[3] >> 16) & 0xffff)
#define XFP_FW_VLAN(fw) ((__u32)((fw).w[3] >> 32) & 0xfff)
#define XFP_FW_INNER_VLAN(fw) ((__u32)((fw).w[3] >> 48) & 0xfff)
#define XFP_FW_FRAME_LEN(fw) ((__u32)(fw).w[4] & 0xffff)
#define XFP_FW_L2_FLAGS(fw) ((__u32)((fw).w[4] >> 16) & 0xffff)
/* local type * 4 + remote type, the index of the address-type tables */
#define XFP_FW_ADDR_TYPES(fw) ((((__u32)((fw).w[4] >> 32) & 3) << 2) | ((__u32)((fw).w[4] >> 40) & 3))

/* The bits of a key's last word that hold fields, not the layer and the
 * tuple or group id (abi.h: they are its top two bytes; BPF is little-endian
 * here, as the C++ side that writes the keys). */
#define XFP_KEY_W4_FIELDS 0x0000ffffffffffffull

/* ANDs into *cand the groups that value `v` of one field can match. */
static __always_inline void xfp_prune(__u64 *cand, __u32 fields, __u32 field, __u32 span, __u32 off,
				      __u32 v)
{
	__u32 i = span + off + v;
	__u64 *m;

	if (!(fields & field))
		return;
	m = bpf_map_lookup_elem(&xfp_prune_v1, &i);
	*cand &= m ? *m : 0;
}

/* Keeps, in the sublayer slot of packed rank `p`, the lower of best[] and p's rank. */
static __always_inline void xfp_merge_rank(__u32 *best, __u32 p)
{
	__u32 s = (p >> XFP_RANK_SLOT_SHIFT) & (XFP_MAX_SUBLAYERS - 1);
	__u64 r = p & XFP_RANK_MASK, b = best[s];
	/* All ones when the row's rank is lower. */
	__u64 take = 0 - ((r - b) >> 63);

	best[s] = (__u32)(b ^ ((b ^ r) & take));
}

/*
 * Takes, for each rank the row lists, the lower of the frame's best rank so
 * far in that rank's sublayer slot and the row's (xfp_merge_rank: one packed
 * rank). `use` (0 or 1) says
 * whether the row counts at all. A row lists only the slots it has a rank
 * in (abi.h, struct xfp_entry), so the loop stops at `nranks`: one or two
 * rounds for most rows. `best` is indexed by the packed slot (a variable
 * stack offset, bounded by the mask). clang makes the min a short branch;
 * the verifier's paths still meet after the loop (instruction counts in
 * docs/ARCHITECTURE.md).
 */
static __always_inline void xfp_merge_if(__u32 *best, const struct xfp_entry *e, __u64 use)
{
	__u32 n = e->nranks & (__u32)(0 - use), i;

#pragma unroll
	for (i = 0; i < XFP_MAX_SUBLAYERS; i++) {
		if (i >= n)
			break;
		xfp_merge_rank(best, e->ranks[i]);
	}
}

static __always_inline void xfp_merge(__u32 *best, const struct xfp_entry *e)
{
	xfp_merge_if(best, e, 1);
}

/*
 * Merges the rows a group key leads to (abi.h, struct xfp_entry) whose own
 * key the frame matches: the probe matched only what the group's tuples
 * have in common. At most XFP_GROUP_CHAIN rows, unrolled; a row's check is
 * a tuple-mask lookup and five masked compares, merged without a branch, and
 * an XFP_ROW_EXACT row needs none.
 * `tbase`: the first of this bank's and layer's slots in xfp_tuples_v1.
 */
static __always_inline void xfp_merge_chain(__u32 *best, struct xfp_entry *e,
					    const struct xfp_key_words *fw, __u32 tbase)
{
	__u32 i;

#pragma unroll
	for (i = 0; i < XFP_GROUP_CHAIN; i++) {
		const struct xfp_key_words *rk, *mw;
		struct xfp_tuple *tup;
		__u32 tidx, next;
		__u64 diff, use;

		if (!e)
			return;
		use = 1;
		/* A row of a tuple whose mask is the group's matched with the
		 * probe: only the others pay for the mask and the compares. */
		if (!(e->flags & XFP_ROW_EXACT)) {
			rk = (const void *)&e->key;
			tidx = tbase + (e->key.tuple & (XFP_MAX_TUPLES - 1));
			tup = bpf_map_lookup_elem(&xfp_tuples_v1, &tidx);
			if (!tup)
				return;
			mw = (const void *)&tup->mask;
			diff = ((fw->w[0] & mw->w[0]) ^ rk->w[0]) | ((fw->w[1] & mw->w[1]) ^ rk->w[1]) |
			       ((fw->w[2] & mw->w[2]) ^ rk->w[2]) | ((fw->w[3] & mw->w[3]) ^ rk->w[3]) |
			       (((fw->w[4] & mw->w[4]) ^ rk->w[4]) & XFP_KEY_W4_FIELDS);
			/* 1 when diff is 0: diff | -diff has its top bit set otherwise. */
			use = ((diff | (0 - diff)) >> 63) ^ 1;
		}
		xfp_merge_if(best, e, use);
		next = e->next;
		e = bpf_map_lookup_elem(&xfp_entries_v5, &next);
	}
}

/* Merges the direct table of one small field, if it holds filters. */
static __always_inline void xfp_direct(__u32 *best, __u32 fields, __u32 field,
				       __u32 span, __u32 off, __u32 v)
{
	__u32 i = span + off + v, id;
	__u64 *idp;
	struct xfp_entry *e;

	if (!(fields & field))
		return;
	idp = bpf_map_lookup_elem(&xfp_dmap_v3, &i);
	if (!idp || !*idp)
		return;
	/* One sublayer's filters: the rank is in the table itself. */
	if (*idp & XFP_DIRECT_INLINE) {
		xfp_merge_rank(best, (__u32)*idp);
		return;
	}
	id = (__u32)*idp - 1;
	e = bpf_map_lookup_elem(&xfp_entries_v5, &id);
	if (e)
		xfp_merge(best, e);
}

/* The entry index of key `k` in bucket `b`, or ~0 when no slot holds it.
 * The five words are compared together, one branch per slot: a branch per
 * word would multiply the verifier's states by the tuple loop's trip count
 * (a branch-free select measured the same here). */
static __always_inline __u32 xfp_bucket_find(const struct xfp_bucket *b, const struct xfp_key_words *k)
{
	__u32 found = ~0u, i;

#pragma unroll
	for (i = 0; i < XFP_BUCKET_SLOTS; i++) {
		const struct xfp_key_words *a = (const void *)&b->slot[i].key;
		__u64 diff = (a->w[0] ^ k->w[0]) | (a->w[1] ^ k->w[1]) | (a->w[2] ^ k->w[2]) |
			     (a->w[3] ^ k->w[3]) | (a->w[4] ^ k->w[4]);

		if (!diff)
			found = b->slot[i].entry;
	}
	return found;
}

/* Every slot holds a key (user/entry_table.cpp, bucket_full). */
static __always_inline int xfp_bucket_full(const struct xfp_bucket *b)
{
	int full = 1, i;

#pragma unroll
	for (i = 0; i < XFP_BUCKET_SLOTS; i++)
		full &= b->slot[i].key.tuple != XFP_SLOT_FREE;
	return full;
}

/*
 * Looks a masked key up in the active bank's entry table: its first
 * candidate bucket, then, only if that one is full, its second: placement
 * leaves a key in its second bucket only while its first is full
 * (user/entry_table.cpp), so most misses read one bucket. And most of those
 * read one byte of it: a bucket's slots fill in order and none comes free
 * during a build, so a free first slot means an empty bucket and the key is
 * nowhere. At the daemon's default size a set fills under a fifth of the
 * slots, so most first buckets are empty; stopping there spares a miss the
 * compares of two slots (about 4 ns a frame in the 100,000-filter bench).
 * Array lookups are inlined by the verifier, so this costs a hash and a
 * byte, two compares or four, not a helper call (abi.h, struct xfp_bucket). Must stay
 * inline: as a global function the call and its spills cost more than the
 * probe.
 */
static __always_inline struct xfp_entry *xfp_find_entry(const struct xfp_set_header *hdr,
							const struct xfp_key_words *k)
{
	__u64 h = xfp_entry_hash(k->w, hdr->hash_seed);
	__u32 b = hdr->bucket_base + xfp_entry_bucket(h, 0, hdr->bucket_mask);
	__u32 id = ~0u;
	struct xfp_bucket *bk = bpf_map_lookup_elem(&xfp_buckets_v2, &b);

	if (!bk || bk->slot[0].key.tuple == XFP_SLOT_FREE)
		return 0;
	id = xfp_bucket_find(bk, k);
	if (id == ~0u && xfp_bucket_full(bk)) {
		b = hdr->bucket_base + xfp_entry_bucket(h, 1, hdr->bucket_mask);
		bk = bpf_map_lookup_elem(&xfp_buckets_v2, &b);
		if (bk)
			id = xfp_bucket_find(bk, k);
	}
	return bpf_map_lookup_elem(&xfp_entries_v5, &id);
}

static __always_inline void xfp_count_filter(__u32 slot, __u32 bytes)
{
	struct xfp_filter_counter *c = bpf_map_lookup_elem(&xfp_fcnt_v1, &slot);

	if (c) {
		c->frames++;
		c->bytes += bytes;
	}
}

static __always_inline void xfp_count_punt_failed(__u32 layer)
{
	struct xfp_layer_counters *lc = bpf_map_lookup_elem(&xfp_lcnt_v2, &layer);

	if (lc)
		lc->c[XFP_CNT_PUNT_FAIL]++;
}

/* A served callout: a plugin registered it and a worker's socket is bound
 * for this queue. Only the inbound layer (XDP) can reach AF_XDP. */
static __always_inline int xfp_callout_served(__u16 callout_id, __u32 xsk_index)
{
	__u32 id = callout_id;
	__u32 *served = bpf_map_lookup_elem(&xfp_callouts_v1, &id);

	if (!served || !*served)
		return 0;
	return bpf_map_lookup_elem(&xfp_xsks_v1, &xsk_index) != 0;
}

/*
 * What the classifier decided. `verdict` is XFP_ACTION_PERMIT or _BLOCK: the
 * final verdict, or, when `punt` is set, the verdict to use if the punt
 * cannot happen (every callout on its fail action). punt_meta then says
 * where user space resumes.
 */
struct xfp_decision {
	__u8 verdict;
	__u8 punt;
	__u8 redirect;           /* an offload entry redirects: to redirect_ifindex */
	__u8 pad;
	__u32 redirect_ifindex;
	struct xfp_punt_meta meta;
};

/*
 * Flows. The flow key is built in a per-CPU scratch key (the classifier's
 * own frame holds 456 of the 512 bytes of BPF stack). The code that reads
 * it runs in global functions (one per program type): the verifier checks a
 * global function once, on its own, instead of once per path of the
 * classifier that reaches the call; on return the caller's state differs
 * only in the returned scalar, so its paths still merge. Without that the
 * inbound program no longer verifies within the 1M-instruction limit.
 */
static __always_inline struct xfp_offload_key *xfp_flow_key_of(const __u8 *data, const __u8 *end,
								 __u32 iface_key, __u8 *tcp_flags)
{
	__u32 zero = 0;
	struct xfp_offload_key *k = bpf_map_lookup_elem(&xfp_flow_scratch_v1, &zero);
	struct xfp_flow_info info;

	if (!k)
		return 0;
	if (!xfp_flow_key_from_frame(data, end, iface_key, &k->flow, &info))
		return 0;
	k->layer = 0;
	__builtin_memset(k->pad, 0, sizeof(k->pad));
	*tcp_flags = info.tcp_flags;
	return k;
}

static __always_inline void xfp_count_layer(__u32 layer, __u32 counter)
{
	struct xfp_layer_counters *lc = bpf_map_lookup_elem(&xfp_lcnt_v2, &layer);

	if (lc && counter < XFP_CNT_COUNT)
		lc->c[counter]++;
}

/* What an offload entry decided: 0 (classify), or an enum
 * xfp_offload_verdict in the low byte and the redirect ifindex above. */
#define XFP_OFFLOAD_RESULT(verdict, ifindex) ((__u64)(verdict) | ((__u64)(ifindex) << 32))

/*
 * Flow-verdict offload, before classification (only while user space has
 * set the layer's bit). An entry valid for `gen` decides the frame; no flow,
 * no entry, a stale entry, or a TCP FIN/RST: 0, the frame is classified.
 */
static __always_inline __u64 xfp_offload_decide(const __u8 *data, const __u8 *end, __u32 wire_len,
						__u32 iface_key, __u32 layer, __u32 gen)
{
	struct xfp_offload_key *ok;
	struct xfp_offload *e;
	__u64 tick;
	__u8 tcp_flags = 0;

	ok = xfp_flow_key_of(data, end, iface_key, &tcp_flags);
	if (!ok) {
		xfp_count_layer(layer, XFP_CNT_OFFLOAD_MISS);
		return 0;
	}
	ok->layer = (__u8)layer;
	e = bpf_map_lookup_elem(&xfp_offload_v2, ok);
	if (!e) {
		xfp_count_layer(layer, XFP_CNT_OFFLOAD_MISS);
		return 0;
	}
	/* Valid for generations [gen_first, gen_last], modulo 2^32. */
	if (gen - e->gen_first > e->gen_last - e->gen_first) {
		xfp_count_layer(layer, XFP_CNT_OFFLOAD_STALE);
		return 0;
	}
	if (tcp_flags & (XFP_TCP_FIN | XFP_TCP_RST)) {
		/* The flow ends: user space must see it, so classify. */
		e->flags |= (tcp_flags & XFP_TCP_FIN ? XFP_OFFLOAD_FIN_SEEN : 0) |
			    (tcp_flags & XFP_TCP_RST ? XFP_OFFLOAD_RST_SEEN : 0);
		xfp_count_layer(layer, XFP_CNT_FLOW_FIN_RST);
		return 0;
	}
	__sync_fetch_and_add(&e->packets, 1);
	__sync_fetch_and_add(&e->bytes, wire_len);
	/* The coarse clock (CLOCK_MONOTONIC_COARSE, a tick's resolution) is
	 * enough for idle expiry; it is read once per tick and entry: jiffies
	 * is a plain load, the clock a seqlocked read (15 ns here, most of an
	 * offloaded frame's cost after the lookup). */
	tick = bpf_jiffies64();
	if (e->last_seen_tick != tick) {
		e->last_seen_tick = tick;
		e->last_seen_ns = bpf_ktime_get_coarse_ns();
	}
	/* The caller counts the hit (it holds the layer's counters). */
	if (e->verdict == XFP_OFFLOAD_BLOCK)
		return XFP_OFFLOAD_RESULT(XFP_OFFLOAD_BLOCK, 0);
	if (e->verdict == XFP_OFFLOAD_REDIRECT)
		return XFP_OFFLOAD_RESULT(XFP_OFFLOAD_REDIRECT, e->redirect_ifindex);
	return XFP_OFFLOAD_RESULT(XFP_OFFLOAD_PERMIT, 0);
}

__noinline __u64 xfp_offload_xdp(struct xdp_md *ctx, __u32 iface_key, __u32 gen)
{
	const __u8 *data = (const __u8 *)(long)ctx->data;
	const __u8 *end = (const __u8 *)(long)ctx->data_end;

	return xfp_offload_decide(data, end, (__u32)(end - data), iface_key, XFP_LAYER_INBOUND, gen);
}

__noinline __u64 xfp_offload_tc(struct __sk_buff *skb, __u32 iface_key, __u32 gen)
{
	const __u8 *data = (const __u8 *)(long)skb->data;
	const __u8 *end = (const __u8 *)(long)skb->data_end;

	return xfp_offload_decide(data, end, skb->len, iface_key, XFP_LAYER_OUTBOUND, gen);
}

/* The flow handle of a punted frame (0: malformed, no flow). */
__noinline __u64 xfp_flow_handle_xdp(struct xdp_md *ctx, __u32 iface_key)
{
	const __u8 *data = (const __u8 *)(long)ctx->data;
	const __u8 *end = (const __u8 *)(long)ctx->data_end;
	__u8 tcp_flags = 0;
	struct xfp_offload_key *k = xfp_flow_key_of(data, end, iface_key, &tcp_flags);

	return k ? xfp_flow_handle(&k->flow) : 0;
}

#define XFP_UNROLLED_GROUPS 4

/* The first row group `t`'s key of the frame's fields `fw` leads to, or 0;
 * `key` is the caller's scratch (idx: the set's bank and layer). */
static __always_inline struct xfp_entry *xfp_group_row(const struct xfp_set_header *hdr,
						       const struct xfp_key_words *fw, struct xfp_key_words *key,
						       __u32 idx, __u8 layer, __u32 t)
{
	const struct xfp_key_words *mw;
	struct xfp_tuple *grp;
	__u32 gidx = idx * XFP_MAX_TUPLES + t;

	grp = bpf_map_lookup_elem(&xfp_groups_v1, &gidx);
	if (!grp)
		return 0;
	mw = (const void *)&grp->mask;
	key->w[0] = fw->w[0] & mw->w[0];
	key->w[1] = fw->w[1] & mw->w[1];
	key->w[2] = fw->w[2] & mw->w[2];
	key->w[3] = fw->w[3] & mw->w[3];
	key->w[4] = fw->w[4] & mw->w[4];
	((struct xfp_fields *)key)->layer = layer;
	((struct xfp_fields *)key)->tuple = (__u8)t;
	return xfp_find_entry(hdr, key);
}

/* Probes group `t` and merges the rows the frame matches. */
static __always_inline void xfp_probe_group(__u32 *best, const struct xfp_set_header *hdr,
					    const struct xfp_key_words *fw, struct xfp_key_words *key, __u32 idx,
					    __u8 layer, __u32 t)
{
	xfp_merge_chain(best, xfp_group_row(hdr, fw, key, idx, layer, t), fw, idx * XFP_MAX_TUPLES);
}

/* The frame's verdict, counted. */
static __always_inline void xfp_decide(struct xfp_layer_counters *lc, struct xfp_decision *d, __u8 verdict)
{
	d->verdict = verdict;
	lc->c[verdict == XFP_ACTION_BLOCK ? XFP_CNT_BLOCK : XFP_CNT_PERMIT]++;
}

/* No filter decided: the layer's default, counted as such. */
static __always_inline __u8 xfp_default_verdict(const struct xfp_set_header *hdr, struct xfp_layer_counters *lc)
{
	lc->c[XFP_CNT_DEFAULT]++;
	return hdr->default_action == XFP_ACTION_BLOCK ? XFP_ACTION_BLOCK : XFP_ACTION_PERMIT;
}

/* The index in xfp_rules_v2 of `rank`'s rule (packed or not: the slot bits
 * are masked off) in the set `idx` (bank and layer). */
static __always_inline __u32 xfp_rule_index(__u32 idx, __u32 rank)
{
	return idx * XFP_MAX_FILTERS + (rank & (XFP_MAX_FILTERS - 1));
}

/* A row that decides alone (abi.h, XFP_ROW_DECIDES): counts the filters its
 * arbitration evaluated, as the general path's loop would. */
static __always_inline void xfp_count_row(const struct xfp_entry *e, __u32 idx, __u32 wire_len)
{
	__u32 n = e->ndecide, i;

#pragma unroll
	for (i = 0; i < XFP_MAX_SUBLAYERS; i++) {
		struct xfp_rule *rule;
		__u32 ridx;

		if (i >= n)
			break;
		ridx = xfp_rule_index(idx, e->ranks[i]);
		rule = bpf_map_lookup_elem(&xfp_rules_v2, &ridx);
		if (rule)
			xfp_count_filter(rule->slot, wire_len);
	}
}

/* xsk_index: XFP_XSK_INDEX of the frame's queue, or ~0 where no socket can be.
 * outer_tag: XFP_OUTER_TAG(tci) for a tag held beside the frame's bytes
 * (xfp_fields_add_outer_tag), 0 for none. */
/* ctx: the program's context (struct xdp_md inbound, struct __sk_buff
 * outbound), for the flow functions. */
#define XFP_OUTER_TAG(tci) ((1u << 16) | ((tci) & 0xffff))

static __always_inline void xfp_classify(void *ctx, const __u8 *data, const __u8 *end, __u32 wire_len,
					 __u32 ifindex, __u32 iface_key, __u8 layer, __u32 xsk_index,
					 __u32 outer_tag, struct xfp_decision *d)
{
	__u32 zero = 0, idx, lidx = layer;
	struct xfp_config *cfg;
	struct xfp_set_header *hdr;
	struct xfp_layer_counters *lc;
	struct xfp_iface *ifc;
	struct xfp_key_words fw; /* the frame's struct xfp_fields, by word */
	struct xfp_key_words key;
	__u32 best[XFP_MAX_SUBLAYERS]; /* per sublayer slot: the best rank so far */
	struct xfp_arbitration arb;
	__u32 bank, ngroups, nsub, t, s, span;
	__u64 cand;
	__u8 verdict;

	d->verdict = XFP_ACTION_PERMIT;
	d->punt = 0;
	d->redirect = 0;
	cfg = bpf_map_lookup_elem(&xfp_cfg_v1, &zero);
	lc = bpf_map_lookup_elem(&xfp_lcnt_v2, &lidx);
	if (!cfg || !lc)
		return;
	/* One read of the bank: this frame sees that compiled set only. */
	bank = *(volatile __u32 *)&cfg->active_bank & 1;
	idx = bank * XFP_LAYER_COUNT + layer;
	hdr = bpf_map_lookup_elem(&xfp_hdr_v4, &idx);

	/* Offloaded flows are decided first, before the frame parser: an
	 * offloaded frame costs its flow key and one hash lookup. An entry
	 * counts only under the generation of the bank read above, the bank
	 * the filters would be read from, so a bank flip retires stale
	 * entries and changes the filters at once. A frame with a flow key is
	 * never malformed (the key needs every header the parser checks). A
	 * policy with no offloads pays one bit test. */
	if (hdr && (cfg->offload_layers & (1u << layer))) {
		__u64 r = layer == XFP_LAYER_INBOUND
				  ? xfp_offload_xdp(ctx, iface_key, (__u32)hdr->generation)
				  : xfp_offload_tc(ctx, iface_key, (__u32)hdr->generation);

		if (r) {
			__u8 v = (__u8)r;

			lc->c[XFP_CNT_FRAMES]++;
			lc->c[XFP_CNT_BYTES] += wire_len;
			lc->c[v == XFP_OFFLOAD_BLOCK	  ? XFP_CNT_OFFLOAD_BLOCK
			      : v == XFP_OFFLOAD_REDIRECT ? XFP_CNT_OFFLOAD_REDIRECT
							  : XFP_CNT_OFFLOAD_PERMIT]++;
			d->verdict = v == XFP_OFFLOAD_BLOCK ? XFP_ACTION_BLOCK : XFP_ACTION_PERMIT;
			d->redirect = v == XFP_OFFLOAD_REDIRECT;
			d->redirect_ifindex = (__u32)(r >> 32);
			return;
		}
	}

	/* ifindex and compartment (0 until the interface step) as one word. */
	fw.w[0] = ifindex;
	fw.w[1] = fw.w[2] = fw.w[3] = fw.w[4] = 0;
	/* Sets only the known flags, which the direct tables index. */
	xfp_parse_frame(data, end, wire_len, layer, (struct xfp_fields *)&fw);
	if (outer_tag)
		xfp_fields_add_outer_tag((struct xfp_fields *)&fw, (__u16)outer_tag);

	lc->c[XFP_CNT_FRAMES]++;
	lc->c[XFP_CNT_BYTES] += wire_len;
	if (XFP_FW_L2_FLAGS(fw) & XFP_L2_MALFORMED)
		lc->c[XFP_CNT_MALFORMED]++;
	if (!hdr)
		return;
	ngroups = hdr->ngroups;
	nsub = hdr->nsublayers;
	/* The interface's facts cost a hash lookup: only when a filter reads them. */
	if (hdr->needs_iface) {
		ifc = bpf_map_lookup_elem(&xfp_ifaces_v1, &iface_key);
		if (ifc) {
			/* A little-endian 48-bit word, as the parser loads MACs
			 * (the map value is 8-byte aligned). */
			__u64 mac = XFP_LOAD(__u64, ifc->mac) & XFP_MAC48;

			fw.w[0] = (fw.w[0] & 0xffffffffull) | ((__u64)ifc->compartment << 32);
			fw.w[2] = (fw.w[2] & 0xffffffffull) | (mac << 32);
			fw.w[3] = (fw.w[3] & ~0xffffull) | (mac >> 32);
		}
	}

	/* A set of one probe group and nothing else (the set header's
	 * one_probe): the rows of one key are all the frame can match. No
	 * row, or one that decides alone, and the verdict is known without
	 * best[] or the arbitration: a deny list of MACs takes this path. A
	 * key with a chain, or with a callout to consult, goes the general way
	 * below, which probes it again. */
	if (hdr->one_probe && ngroups == 1) {
		struct xfp_entry *row = xfp_group_row(hdr, &fw, &key, idx, layer, 0);

		if (!row) {
			xfp_decide(lc, d, xfp_default_verdict(hdr, lc));
			return;
		}
		if (row->flags & XFP_ROW_DECIDES) {
			xfp_count_row(row, idx, wire_len);
			xfp_decide(lc, d, row->verdict == XFP_ACTION_BLOCK ? XFP_ACTION_BLOCK : XFP_ACTION_PERMIT);
			return;
		}
	}

	for (s = 0; s < XFP_MAX_SUBLAYERS; s++)
		best[s] = XFP_RANK_NONE;

	/* Only groups every small field agrees with can hold a match. */
	cand = ngroups >= 64 ? ~0ull : (1ull << ngroups) - 1;
	span = idx * XFP_PRUNE_SPAN;
	if (hdr->prune_fields) {
		__u32 pf = hdr->prune_fields;

		xfp_prune(&cand, pf, XFP_DIRECT_ETHERTYPE, span, XFP_PRUNE_ETHERTYPE, XFP_FW_ETHERTYPE(fw));
		xfp_prune(&cand, pf, XFP_DIRECT_FRAME_LEN, span, XFP_PRUNE_FRAME_LEN, XFP_FW_FRAME_LEN(fw));
		xfp_prune(&cand, pf, XFP_DIRECT_VLAN, span, XFP_PRUNE_VLAN, XFP_FW_VLAN(fw));
		xfp_prune(&cand, pf, XFP_DIRECT_INNER_VLAN, span, XFP_PRUNE_INNER_VLAN, XFP_FW_INNER_VLAN(fw));
		xfp_prune(&cand, pf, XFP_DIRECT_L2_FLAGS, span, XFP_PRUNE_L2_FLAGS, XFP_FW_L2_FLAGS(fw) & 0x7f);
		xfp_prune(&cand, pf, XFP_DIRECT_ADDR_TYPES, span, XFP_PRUNE_ADDR_TYPES,
			  XFP_FW_ADDR_TYPES(fw));
	}

	if (hdr->direct_fields) {
		__u32 df = hdr->direct_fields;

		xfp_direct(best, df, XFP_DIRECT_ETHERTYPE, span, XFP_PRUNE_ETHERTYPE, XFP_FW_ETHERTYPE(fw));
		xfp_direct(best, df, XFP_DIRECT_FRAME_LEN, span, XFP_PRUNE_FRAME_LEN, XFP_FW_FRAME_LEN(fw));
		xfp_direct(best, df, XFP_DIRECT_VLAN, span, XFP_PRUNE_VLAN, XFP_FW_VLAN(fw));
		xfp_direct(best, df, XFP_DIRECT_INNER_VLAN, span, XFP_PRUNE_INNER_VLAN, XFP_FW_INNER_VLAN(fw));
		xfp_direct(best, df, XFP_DIRECT_L2_FLAGS, span, XFP_PRUNE_L2_FLAGS, XFP_FW_L2_FLAGS(fw) & 0x7f);
		xfp_direct(best, df, XFP_DIRECT_ADDR_TYPES, span, XFP_PRUNE_ADDR_TYPES,
			   XFP_FW_ADDR_TYPES(fw));
	}

	/* Tuple space, one probe per group of tuples (t: the group id). The
	 * first XFP_UNROLLED_GROUPS probes are unrolled: most sets have a few
	 * groups, and straight-line probes ran faster than the loop's. */
#pragma unroll
	for (t = 0; t < XFP_UNROLLED_GROUPS; t++)
		if (t < ngroups && (cand & (1ull << t)))
			xfp_probe_group(best, hdr, &fw, &key, idx, layer, t);
	for (t = XFP_UNROLLED_GROUPS; t < XFP_MAX_TUPLES && t < ngroups; t++)
		if (cand & (1ull << t))
			xfp_probe_group(best, hdr, &fw, &key, idx, layer, t);

	xfp_arbitration_init(&arb);
	for (s = 0; s < XFP_MAX_SUBLAYERS && s < nsub; s++) {
		struct xfp_rule *rule;
		__u32 rank = best[s], ridx;
		__u8 flags;

		if (rank == XFP_RANK_NONE)
			continue;
		/* The winner's rule: how it counts and decides. */
		ridx = xfp_rule_index(idx, rank);
		rule = bpf_map_lookup_elem(&xfp_rules_v2, &ridx);
		if (!rule)
			continue;
		flags = rule->flags;
		xfp_count_filter(rule->slot, wire_len);
		if ((flags & XFP_MATCH_CALLOUT) && !d->punt) {
			/* The first served callout stops the kernel's arbitration;
			 * the rest runs on as if every callout were unavailable,
			 * which gives the verdict should the punt fail. */
			if (xsk_index != ~0u && xfp_callout_served(rule->callout_id, xsk_index)) {
				d->punt = 1;
				d->meta.magic = XFP_PUNT_MAGIC;
				d->meta.layer = layer;
				d->meta.sublayer = (__u8)s;
				d->meta.arb = (arb.action & XFP_PUNT_ARB_ACTION) |
					      (arb.hard ? XFP_PUNT_ARB_HARD : 0) |
					      (arb.vetoed ? XFP_PUNT_ARB_VETOED : 0);
				d->meta.pad[0] = d->meta.pad[1] = d->meta.pad[2] = 0;
				d->meta.rank = rank;
				d->meta.slot = rule->slot;
				d->meta.generation = (__u32)hdr->generation;
				d->meta.iface = iface_key;
				d->meta.flow = 0; /* see below */
			} else {
				lc->c[XFP_CNT_CALLOUT_FAIL]++;
			}
		}
		/* The decision without a served callout, worked out at install
		 * (abi.h, struct xfp_rule). */
		xfp_arbitration_step(&arb, rule->decision, (flags & XFP_MATCH_HARD) ? 1 : 0, 0, rule->slot);
		if (arb.final)
			break;
	}

	verdict = arb.action == XFP_ACTION_NONE ? xfp_default_verdict(hdr, lc) : arb.action;
	if (d->punt) {
		d->verdict = verdict;
		/* User space decides and counts permit or block. meta.flow is
		 * filled in by the XDP program (xfp_flow_handle_xdp), after this
		 * function: called here, on every path that punts, it multiplies
		 * the verifier's work past its limit. */
		lc->c[XFP_CNT_PUNT]++;
		return;
	}
	xfp_decide(lc, d, verdict);
}

#endif /* XFP_CLASSIFY_H */
