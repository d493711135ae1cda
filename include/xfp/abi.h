/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * xfp kernel/user ABI: the one definition of every value that crosses the
 * BPF boundary (map keys and values, enums, limits). Included by the BPF C
 * programs and by the C++ runtime; there is no second copy.
 *
 * Rules for editing (see docs/ARCHITECTURE.md, "ABI"):
 *  - fixed-width types, explicit padding, no pointers, no bitfields;
 *  - enums are append-only; a layout change bumps XFP_ABI_VERSION and the
 *    version suffix in the map names (bpf/xfp_maps.h);
 *  - every struct has its size checked below (C11/C++ static_assert).
 */
#ifndef XFP_ABI_H
#define XFP_ABI_H

#ifdef __BPF__
#include <linux/types.h>
#else
#include <linux/types.h>
#include <stddef.h>
#endif

#define XFP_ABI_VERSION 7

/* Limits of the compiled filter set. */
#define XFP_MAX_TUPLES 64     /* distinct condition shapes per layer (and probe groups) */
#define XFP_GROUP_CHAIN 4     /* rows one group key leads to, at most (struct xfp_entry) */
#define XFP_MAX_SUBLAYERS 8   /* sublayers that hold filters, per layer */
#define XFP_MAX_FILTERS 262144 /* counter slots, one per installed filter */
#define XFP_BANKS 2           /* double-buffered compiled sets */
#define XFP_RANK_NONE 0xffffffffu
#define XFP_MAX_CALLOUTS 1024  /* callout ids (xfp_match.callout_id) */
#define XFP_MAX_QUEUES 64      /* AF_XDP sockets per attachment */
#define XFP_MAX_ATTACHMENTS 256 /* attachment keys are 1..255 */

/*
 * Pruning: for every value of the small fields, the bitmask of the probe
 * groups (of tuples, struct xfp_entry) an entry of which could match that
 * value (one u64 per value, bit g = group g). A frame probes only the groups
 * that survive the AND of its fields' masks. Layout of one [bank][layer]
 * span of xfp_prune_v1:
 */
#define XFP_PRUNE_ETHERTYPE 0           /* 65536 values */
#define XFP_PRUNE_FRAME_LEN 65536       /* 65536 values */
#define XFP_PRUNE_VLAN 131072           /* 4096 values */
#define XFP_PRUNE_INNER_VLAN 135168     /* 4096 values */
#define XFP_PRUNE_L2_FLAGS 139264       /* 128 values: the known flag bits */
#define XFP_PRUNE_ADDR_TYPES 139392     /* 16 values: local * 4 + remote */
#define XFP_PRUNE_SPAN 139408

/*
 * Direct tables: filters whose conditions all sit on one of the small fields
 * above skip tuple space. For each value, xfp_dmap_v3 (same layout as the
 * prune table) holds 0 when no filter matches it; when its matches sit in
 * one sublayer slot, XFP_DIRECT_INLINE | their best rank, packed
 * (XFP_RANK_PACK), which a frame merges without reading a row; otherwise
 * 1 + the index in xfp_entries_v5 of the row of its per-sublayer best
 * matches.
 */
#define XFP_DIRECT_INLINE (1ull << 63)
enum xfp_direct_field {
	XFP_DIRECT_ETHERTYPE = 1u << 0,
	XFP_DIRECT_FRAME_LEN = 1u << 1,
	XFP_DIRECT_VLAN = 1u << 2,
	XFP_DIRECT_INNER_VLAN = 1u << 3,
	XFP_DIRECT_L2_FLAGS = 1u << 4,
	XFP_DIRECT_ADDR_TYPES = 1u << 5,
};

/* Layers: WFP's MAC-frame layers. */
enum xfp_layer {
	XFP_LAYER_INBOUND = 0,  /* INBOUND_MAC_FRAME_ETHERNET: XDP */
	XFP_LAYER_OUTBOUND = 1, /* OUTBOUND_MAC_FRAME_ETHERNET: TC egress */
	XFP_LAYER_COUNT = 2,
};

/* Filter actions (FWP_ACTION_*). Append-only. */
enum xfp_action {
	XFP_ACTION_NONE = 0, /* no filter decided */
	XFP_ACTION_PERMIT = 1,
	XFP_ACTION_BLOCK = 2,
	XFP_ACTION_CALLOUT_TERMINATING = 3, /* callout returns permit or block */
	XFP_ACTION_CALLOUT_INSPECTION = 4,  /* callout may only continue */
	XFP_ACTION_CALLOUT_UNKNOWN = 5,     /* callout returns any */
	XFP_ACTION_CONTINUE = 6,            /* a callout's "no opinion" */
};

/* Filter flags (FWPM_FILTER_FLAG_*). Append-only. */
enum xfp_filter_flag {
	XFP_FILTER_CLEAR_ACTION_RIGHT = 1u << 0,
	XFP_FILTER_PERMIT_IF_CALLOUT_UNREGISTERED = 1u << 1,
	XFP_FILTER_DISABLED = 1u << 2,
	XFP_FILTER_PERSISTENT = 1u << 3,
	XFP_FILTER_KNOWN_FLAGS = (1u << 4) - 1,
};

/* L2 flags field (FWP_CONDITION_L2_*). Append-only. */
enum xfp_l2_flag {
	XFP_L2_MALFORMED = 1u << 0,       /* runt, truncated tag or header */
	XFP_L2_VLAN_TAGGED = 1u << 1,     /* at least one 802.1Q/802.1ad tag */
	XFP_L2_QINQ = 1u << 2,            /* two tags (802.1ad outer) */
	XFP_L2_LLC = 1u << 3,             /* 802.3 length field, not EtherType */
	XFP_L2_IP_FRAGMENT = 1u << 4,     /* IPv4 fragment (MF or offset) */
	XFP_L2_NATIVE_ETHERNET = 1u << 5, /* always set: Ethernet framing */
	XFP_L2_TAG_STACK_DEEP = 1u << 6,  /* more than two tags */
	XFP_L2_KNOWN_FLAGS = (1u << 7) - 1,
};

/* DL_ADDRESS_TYPE. */
enum xfp_addr_type {
	XFP_ADDR_UNICAST = 0,
	XFP_ADDR_MULTICAST = 1,
	XFP_ADDR_BROADCAST = 2,
};

/*
 * The classification fields of one frame, and also the key of the
 * entry table (fields AND group mask, then layer and group id set) and of a
 * row (fields AND tuple mask, then layer and tuple id set).
 * Multi-byte integers are host order so that ranges compile to prefixes;
 * MACs are wire order. Size is a multiple of 8 so masking is 5 u64 ANDs.
 */
struct xfp_fields {
	__u32 ifindex;
	__u32 compartment; /* network namespace inode of the interface */
	__u8 local_mac[6];  /* inbound: destination; outbound: source */
	__u8 remote_mac[6]; /* inbound: source; outbound: destination */
	__u8 iface_mac[6];  /* the interface's own address */
	__u16 ethertype;    /* after the tags; 0 when malformed before it */
	__u16 vlan;         /* outer tag's VID, 0 when untagged */
	__u16 inner_vlan;   /* second tag's VID, 0 when absent */
	__u16 frame_len;    /* bytes on the wire, saturated at 65535 */
	__u16 l2_flags;     /* enum xfp_l2_flag */
	__u8 local_addr_type;  /* enum xfp_addr_type */
	__u8 remote_addr_type; /* enum xfp_addr_type */
	__u8 layer;            /* enum xfp_layer (key only) */
	__u8 tuple;            /* tuple id (key only; XFP_SLOT_FREE: a free slot) */
};

/* A tuple: the mask every key of one condition shape is ANDed with. */
struct xfp_tuple {
	struct xfp_fields mask;
};

/* Entry flags: how a sublayer's winning filter decides. */
enum xfp_match_flag {
	XFP_MATCH_HARD = 1u << 0,    /* decision clears the action right */
	XFP_MATCH_CALLOUT = 1u << 1, /* action is a callout */
	XFP_MATCH_FAIL_OPEN = 1u << 2, /* PERMIT_IF_CALLOUT_UNREGISTERED */
};

/*
 * What the kernel needs of the filter of one rank, to count it and to
 * arbitrate: xfp_rules_v2[bank][layer][rank]. Rows hold ranks only (the
 * merge of a frame's rows is then one min per rank); the winners' rules
 * are read once, at arbitration. The decision is worked out at install
 * (kernel_rule(), user/compiler.cpp): the filter's own action, or for a
 * callout its fail action (include/xfp/arbitration.h,
 * xfp_match_fail_decision), which is what the kernel applies unless the
 * callout is served; the kernel's arbitration then takes it as it is.
 */
struct xfp_rule {
	__u32 slot;       /* counter slot of the filter */
	__u8 decision;    /* XFP_ACTION_PERMIT, _BLOCK or _CONTINUE */
	__u8 flags;       /* XFP_MATCH_HARD: the decision is hard; XFP_MATCH_CALLOUT */
	__u16 callout_id;
};

/* The highest-priority filter of one sublayer for one key: its rank and
 * rule, as arbitration sees it (include/xfp/arbitration.h). */
struct xfp_match {
	__u32 rank; /* priority in the compiled set, lower first; NONE = empty */
	__u32 slot; /* counter slot of the filter */
	__u8 action; /* enum xfp_action */
	__u8 flags;  /* enum xfp_match_flag */
	__u16 callout_id;
};

/*
 * A row of xfp_entries_v5: the matches of one key, the best rank of each
 * sublayer slot that has one (its rule in xfp_rules_v2). Tuple space probes by group (user/xfp/tuple_groups.hpp):
 * tuples whose masks nest share one probe, keyed by the common part of their
 * masks (a group's mask, in xfp_groups_v1). The group key leads to the
 * first of at most XFP_GROUP_CHAIN rows, linked by `next`; a row's matches
 * count only if the frame, under the mask of the row's own tuple
 * (xfp_tuples_v1[key.tuple]), equals `key`; a row whose tuple's mask is the
 * group's own (XFP_ROW_EXACT) matches whenever its key is found, and is not
 * checked again. Rows of the direct tables are reached by value: their key
 * and next are unused (zero and ~0).
 *
 * Ranks are packed with their slot and only the slots that hold one are
 * listed (`nranks` of them): most rows hold one sublayer's filters, and
 * merging a row then costs one min, not one per slot of XFP_MAX_SUBLAYERS.
 *
 * XFP_ROW_DECIDES: the row alone gives a verdict, worked out at install with
 * the kernel's arbitration over its own ranks: `verdict`, after counting the
 * filters of its first `ndecide` ranks (those the arbitration evaluates, up
 * to a hard block). Set on an exact row alone in its chain whose evaluated
 * filters have no callout (a served callout is a run-time fact). The kernel
 * uses it only where the set header's `one_probe` says that the row's group
 * is the frame's only lookup, so nothing else can match.
 */
#define XFP_ROW_NONE 0xffffffffu
#define XFP_ROW_EXACT 1u   /* xfp_entry.flags: the row's key is its group key */
#define XFP_ROW_DECIDES 2u /* xfp_entry.flags: verdict and ndecide hold its outcome */
#define XFP_RANK_SLOT_SHIFT 24   /* packed rank: slot << 24 | rank */
#define XFP_RANK_MASK 0x00ffffffu
#define XFP_RANK_PACK(slot, rank) (((__u32)(slot) << XFP_RANK_SLOT_SHIFT) | ((__u32)(rank) & XFP_RANK_MASK))
struct xfp_entry {
	struct xfp_fields key; /* masked with its tuple's mask; layer and tuple id set */
	__u32 next;            /* next row of the same group key, XFP_ROW_NONE at the end */
	__u8 flags;            /* XFP_ROW_EXACT, XFP_ROW_DECIDES */
	__u8 nranks;           /* ranks[] in use, 0..XFP_MAX_SUBLAYERS */
	__u8 verdict;          /* XFP_ROW_DECIDES: XFP_ACTION_PERMIT or _BLOCK */
	__u8 ndecide;          /* XFP_ROW_DECIDES: ranks whose filters count, 1..nranks */
	__u32 ranks[XFP_MAX_SUBLAYERS]; /* XFP_RANK_PACK(slot, rank), by slot, each slot once */
};

/*
 * The entry table: tuple space's group keys -> index in xfp_entries_v5.
 * User space builds it whole for a bank (a cuckoo hash: every key sits in
 * one of its two candidate buckets, so a lookup reads two buckets at most)
 * in an array map that the BPF programs probe inline: the kernel's hash
 * map costs a helper call and its own hashing per lookup, about 4x this on
 * the machines measured (docs/ARCHITECTURE.md). Both layers of a bank share
 * the bank's region of buckets; xfp_fields.layer tells their keys apart.
 * include/xfp/entry_hash.h is the one hash both sides compute. A free slot
 * has key.tuple == XFP_SLOT_FREE, which no group id reaches.
 */
#define XFP_BUCKET_SLOTS 2
#define XFP_SLOT_FREE 0xff
struct xfp_slot {
	struct xfp_fields key; /* fields masked with the group's mask, layer and group id (in .tuple) */
	__u32 entry;           /* index in xfp_entries_v5: the key's first row */
	__u32 pad;
};

struct xfp_bucket {
	struct xfp_slot slot[XFP_BUCKET_SLOTS];
};

/* Per-bank, per-layer header of a compiled set. */
struct xfp_set_header {
	__u32 ngroups;        /* probe groups of tuple space (masks in xfp_groups_v1) */
	__u32 nsublayers;
	__u64 generation;     /* transaction number, shown in status */
	__u8 default_action;  /* enum xfp_action when no filter decides */
	__u8 direct_fields;   /* enum xfp_direct_field: tables to read */
	__u8 prune_fields;    /* enum xfp_direct_field: fields worth pruning on */
	__u8 needs_iface;     /* some filter reads interface MAC or compartment */
	__u32 bucket_mask;    /* buckets in the bank's region - 1 (a power of two - 1) */
	__u32 bucket_base;    /* index in xfp_buckets_v2 of the bank's first bucket */
	__u8 one_probe;       /* one group, no direct table, no pruning: a frame's only lookup is group 0's */
	__u8 pad[3];
	__u64 hash_seed;      /* xfp_entry_hash() seed the bank's table was built with */
};

/*
 * Global configuration, one entry. Written by user space only. The bank is
 * one aligned word, so a frame reads the old or the new value; everything
 * that must change with it lives in the bank's own header.
 */
struct xfp_config {
	__u32 active_bank;
	__u32 offload_layers; /* bit per enum xfp_layer: flow offloads may exist there */
	__u64 generation;
};

/* Per-interface facts the fast path needs (key: ifindex). */
struct xfp_iface {
	__u8 mac[6];
	__u16 pad;
	__u32 compartment;
	__u32 layers; /* bit per enum xfp_layer attached */
};

/* Per-filter counters (per-CPU array indexed by slot). */
struct xfp_filter_counter {
	__u64 frames;
	__u64 bytes;
};

/* Per-layer counters (per-CPU array indexed by layer). Append-only. */
enum xfp_layer_counter {
	XFP_CNT_FRAMES = 0,      /* frames classified */
	XFP_CNT_PERMIT = 1,      /* final verdict permit */
	XFP_CNT_BLOCK = 2,       /* final verdict block */
	XFP_CNT_DEFAULT = 3,     /* no filter matched: default action */
	XFP_CNT_MALFORMED = 4,   /* frames with XFP_L2_MALFORMED */
	XFP_CNT_CALLOUT_FAIL = 5, /* callout unavailable: fail action used */
	XFP_CNT_VETO = 6,        /* a callout block overrode a hard permit: only user
				  * space sees callouts' verdicts, so the kernel
				  * leaves this 0 and status adds the workers' count */
	XFP_CNT_BYTES = 7,       /* bytes classified */
	XFP_CNT_PUNT = 8,        /* frames sent to a callout in user space */
	XFP_CNT_PUNT_FAIL = 9,   /* punt refused (no headroom for the punt header) */
	/* Flow-verdict offload (counted only while the layer's offload bit is set). */
	XFP_CNT_OFFLOAD_PERMIT = 10,   /* decided by an offload entry: permit */
	XFP_CNT_OFFLOAD_BLOCK = 11,    /* decided by an offload entry: block */
	XFP_CNT_OFFLOAD_REDIRECT = 12, /* decided by an offload entry: redirect */
	XFP_CNT_OFFLOAD_MISS = 13,     /* looked up, no entry (or no flow): classified */
	XFP_CNT_OFFLOAD_STALE = 14,    /* entry of another policy generation: ignored, classified */
	XFP_CNT_FLOW_FIN_RST = 15,     /* TCP FIN or RST of an offloaded flow: classified, not offloaded */
	/* The queue's AF_XDP socket had no room (struct xfp_xsk_load): not punted,
	 * decided by the overload policy. Counted apart from PERMIT and BLOCK. */
	XFP_CNT_OVERLOAD_PERMIT = 16,  /* overload policy let the frame pass */
	XFP_CNT_OVERLOAD_BLOCK = 17,   /* overload policy dropped the frame */
	/* Punted frames whose header travelled in band (enum xfp_punt_carrier):
	 * all of them under XFP_CARRIER_IN_BAND, and under XFP_CARRIER_METADATA
	 * those whose metadata room the driver refused at run time. */
	XFP_CNT_PUNT_IN_BAND = 18,
	XFP_CNT_COUNT = 19,
};

struct xfp_layer_counters {
	__u64 c[XFP_CNT_COUNT];
};

/*
 * Punting to callouts. A frame whose winning filter in some sublayer is a
 * callout that user space serves (registered in xfp_callouts_v1, and a
 * socket bound in xfp_xsks_v1 for the frame's queue) is redirected to that
 * AF_XDP socket with this header as XDP metadata, right in front of the
 * frame in the UMEM. It says where the kernel stopped, so that user space
 * resumes WFP arbitration from there: the sublayers before `sublayer` are
 * folded into `arb`; the callout filter is `rank` in the compiled set of
 * `generation`. 32 bytes: the kernel's limit on XDP metadata.
 *
 * Two carriers bring it to user space (enum xfp_punt_carrier, a load-time
 * constant of each attachment's program): the metadata area, which AF_XDP
 * copies in front of the frame, or in band, pushed in front of the frame
 * with bpf_xdp_adjust_head so that the descriptor's first 32 bytes are the
 * header. The worker tells them apart per frame: a metadata header is
 * found in front of the descriptor's address (and cleared by the worker
 * once read, so a stale one never matches); otherwise the descriptor must
 * start with an in-band header, which the worker strips.
 */
enum xfp_punt_carrier {
	XFP_CARRIER_METADATA = 0,  /* bpf_xdp_adjust_meta; in band where the driver refuses the room */
	XFP_CARRIER_IN_BAND = 1,   /* bpf_xdp_adjust_head; never calls bpf_xdp_adjust_meta */
};

#define XFP_PUNT_MAGIC 0x5846u /* "XF" */
#define XFP_XSK_INDEX(key, queue) (((key) % XFP_MAX_ATTACHMENTS) * XFP_MAX_QUEUES + ((queue) % XFP_MAX_QUEUES))

enum xfp_punt_arb {
	XFP_PUNT_ARB_ACTION = 0x3,  /* XFP_ACTION_NONE, _PERMIT or _BLOCK so far */
	XFP_PUNT_ARB_HARD = 1u << 2,
	XFP_PUNT_ARB_VETOED = 1u << 3,
};

struct xfp_punt_meta {
	__u16 magic;       /* XFP_PUNT_MAGIC */
	__u8 layer;        /* enum xfp_layer */
	__u8 sublayer;     /* slot of the callout's sublayer */
	__u8 arb;          /* enum xfp_punt_arb: decision of the earlier sublayers */
	__u8 pad[3];
	__u32 rank;        /* the callout filter's rank in its layer */
	__u32 slot;        /* its counter slot */
	__u32 generation;  /* low bits of the compiled set's generation */
	__u32 iface;       /* attachment key */
	__u64 flow;        /* flow handle, 0 when none */
};

/*
 * Overload guard of a queue's AF_XDP socket (xfp_xsk_load_v1, an mmapable
 * array at XFP_XSK_INDEX). A punted frame needs a free fill-ring chunk and a
 * free rx-ring slot; without them the kernel drops it (visible only in the
 * socket's XDP_STATISTICS). So the XDP program counts the frames it hands
 * to the socket (`punted`, atomic adds), the queue's worker publishes how
 * many it has taken back (`consumed`: frames it took off the rx ring and
 * whose chunks are back in the fill ring, plus the frames the socket itself
 * dropped; one store per batch), and a frame is punted only while
 * punted - consumed < capacity. Otherwise the overload policy decides it,
 * and XFP_CNT_OVERLOAD_PERMIT/BLOCK count it. User space sets capacity to
 * min(rx ring, receive chunks) minus one frame per CPU (the check and the
 * add are not one atomic step, so each CPU may overshoot by one frame), and
 * zeroes the counters when it binds a socket to the queue. The difference is
 * read as signed: a worker ahead of the kernel (it cannot be, by
 * construction) never turns into a full queue.
 */
enum xfp_overload_policy {
	XFP_OVERLOAD_FAIL_ACTION = 0, /* the verdict as if no callout were served (each filter's fail action) */
	XFP_OVERLOAD_FAIL_OPEN = 1,   /* permit (XDP_PASS) */
	XFP_OVERLOAD_FAIL_CLOSED = 2, /* block (XDP_DROP) */
};

struct xfp_xsk_load {
	__u64 punted;     /* BPF: frames redirected to the socket (atomic adds) */
	__u64 consumed;   /* worker: frames given back, see above (one release store per batch) */
	__u64 overloaded; /* BPF: frames the policy decided because the socket was full (atomic adds) */
	__u32 capacity;   /* user space: frames in flight at most; 0 = unguarded */
	__u8 policy;      /* enum xfp_overload_policy */
	__u8 pad[3];
	__u64 spare[4];   /* one cache line per queue: workers of two queues share none */
};

/*
 * Receive injection. AF_XDP can only transmit, so a frame that must reach
 * the host stack "as if received on interface X" is transmitted into an
 * internal veth pair of X's namespace with this trailer appended; the TC
 * ingress program on the pair's far end (xfp_reinject) checks and strips the
 * trailer and redirects the frame into X's ingress.
 */
#define XFP_REINJECT_MAGIC 0x78667269u /* "xfri" */
struct xfp_reinject_trailer {
	__u32 ifindex; /* target interface, in the namespace of the veth pair */
	__u32 magic;   /* XFP_REINJECT_MAGIC */
};

/* xfp_reinject's counters (per-CPU array). Append-only. */
enum xfp_reinject_counter {
	XFP_REINJECT_OK = 0,        /* redirected into the target's ingress */
	XFP_REINJECT_BAD = 1,       /* no trailer, bad magic or too short: dropped */
	XFP_REINJECT_FAILED = 2,    /* trim or redirect failed: dropped */
	XFP_REINJECT_COUNT = 3,
};

/*
 * Flows. A flow is the set of frames with one flow key: the attachment, the
 * outer VLAN id, the EtherType, the MAC pair and, for IPv4/IPv6, the IP
 * version, the protocol, the addresses and the TCP/UDP/SCTP ports. Both
 * directions share a key: the two endpoints (address, port, MAC) are stored
 * in a canonical order (the lower by (address, port, MAC) first; without IP
 * the addresses and ports are zero, so the MACs decide). The key does not
 * hold the layer: the same conversation has one key (and one handle) at the
 * inbound and the outbound layer. include/xfp/flow_key.h extracts it from a
 * frame, for BPF and C++ alike, and hashes it into the 64-bit flow handle
 * (never 0; 0 means "no flow": a malformed frame).
 *
 * Details: IPv4 addresses fill the first 4 bytes of addr_*, the rest is zero;
 * a fragment (IPv4 MF or offset, an IPv6 fragment header) keeps protocol and
 * addresses but has no ports; an 802.3 length (LLC) frame has EtherType 0;
 * more than two tags: EtherType is the third TPID, no IP. Ports and
 * EtherType are host order, addresses and MACs wire order.
 */
struct xfp_flow_key {
	__u8 addr_a[16];  /* IPv4/IPv6 address of endpoint a (the lower) */
	__u8 addr_b[16];
	__u8 mac_a[6];    /* endpoint a's MAC (source or destination of the frame) */
	__u8 mac_b[6];
	__u16 port_a;     /* TCP/UDP/SCTP port of endpoint a, 0 without */
	__u16 port_b;
	__u32 iface;      /* attachment key (xfp_metadata.iface, xfp_punt_meta.iface) */
	__u16 vlan;       /* outer tag's VID, 0 untagged */
	__u16 ethertype;  /* after at most two tags; 0 for LLC */
	__u8 ip_version;  /* 4, 6, or 0 without IP */
	__u8 protocol;    /* IPv4 protocol / IPv6 upper-layer next header, 0 without IP */
	__u8 pad[6];      /* zero */
} __attribute__((aligned(8))); /* read as 8-byte words (hash, canonical order) */

/*
 * Flow-verdict offload (xfp_offload_v2, an LRU hash sized by user space):
 * while the layer's bit is set in xfp_config.offload_layers, XDP and TC look
 * the frame's (flow key, layer) up before classification. An entry valid
 * for the active compiled set's generation decides the frame (permit, block
 * or redirect to redirect_ifindex), and its counters move. TCP FIN and RST
 * frames are never decided by an entry: they are classified (and punted,
 * when a callout asks) so that user space sees the flow end.
 */
struct xfp_offload_key {
	struct xfp_flow_key flow;
	__u8 layer;   /* enum xfp_layer */
	__u8 pad[7];  /* zero */
};

/* Same values as enum xfp_flow_verdict in callout.h. */
enum xfp_offload_verdict {
	XFP_OFFLOAD_PERMIT = 1,   /* XDP_PASS / TC_ACT_OK */
	XFP_OFFLOAD_BLOCK = 2,    /* XDP_DROP / TC_ACT_SHOT */
	XFP_OFFLOAD_REDIRECT = 3, /* bpf_redirect(redirect_ifindex) */
};

/* xfp_offload.flags. Append-only. */
enum xfp_offload_flag {
	XFP_OFFLOAD_FIN_SEEN = 1u << 0, /* set by the kernel: a TCP FIN went by (classified) */
	XFP_OFFLOAD_RST_SEEN = 1u << 1, /* set by the kernel: a TCP RST went by (classified) */
};

/*
 * The entry is valid while the active set's generation (low 32 bits of
 * xfp_set_header.generation, as in xfp_punt_meta) lies in
 * [gen_first, gen_last] (modulo 2^32). User space offloads a verdict with
 * gen_first = gen_last = the generation the frame was classified under;
 * before installing generation G+1 it sets gen_last = G+1 on the entries
 * whose decision the new set keeps: the others turn stale at the bank flip,
 * in the same instant as the filters change.
 */
struct xfp_offload {
	__u64 packets;       /* frames decided by this entry (atomic adds) */
	__u64 bytes;         /* their bytes on the wire */
	__u64 last_seen_ns;  /* CLOCK_MONOTONIC_COARSE (bpf_ktime_get_coarse_ns) of the latest such frame, or of the offload */
	/* The kernel's own: the jiffies of the tick last_seen_ns was read in
	 * (0 from user space). The coarse clock moves only at a tick, so a
	 * frame of a tick already stamped skips the clock read, which costs
	 * more than the rest of the entry's update on a VM. */
	__u64 last_seen_tick;
	__u32 gen_first;
	__u32 gen_last;
	__u32 redirect_ifindex; /* XFP_OFFLOAD_REDIRECT: the target, in the interface's namespace */
	__u8 verdict;        /* enum xfp_offload_verdict */
	__u8 flags;          /* enum xfp_offload_flag */
	__u8 pad[2];
};

#define XFP_OFFLOAD_DEFAULT_ENTRIES 65536

/* Compile-time layout checks: both compilers see the same numbers. */
#ifdef __cplusplus
#define XFP_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define XFP_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif
XFP_STATIC_ASSERT(sizeof(struct xfp_fields) == 40, "xfp_fields layout");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_fields, ethertype) == 26, "ethertype offset");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_fields, layer) == 38, "layer offset");
XFP_STATIC_ASSERT(sizeof(struct xfp_match) == 12, "xfp_match layout");
XFP_STATIC_ASSERT(sizeof(struct xfp_entry) == 48 + 4 * XFP_MAX_SUBLAYERS, "xfp_entry layout");
XFP_STATIC_ASSERT(sizeof(struct xfp_rule) == 8, "xfp_rule layout: mmapable arrays stride 8 bytes");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_entry, next) == 40, "xfp_entry next offset");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_entry, ranks) == 48, "xfp_entry ranks offset");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_entry, verdict) == 46, "xfp_entry verdict offset");
XFP_STATIC_ASSERT(XFP_MAX_FILTERS <= XFP_RANK_MASK, "a packed rank holds every rank");
XFP_STATIC_ASSERT(XFP_MAX_SUBLAYERS <= (1u << (32 - XFP_RANK_SLOT_SHIFT)), "a packed rank holds every slot");
XFP_STATIC_ASSERT(sizeof(struct xfp_set_header) == 40, "xfp_set_header layout");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_set_header, one_probe) == 28, "xfp_set_header one_probe offset");
XFP_STATIC_ASSERT(sizeof(struct xfp_slot) == 48, "xfp_slot layout");
XFP_STATIC_ASSERT(sizeof(struct xfp_bucket) == 48 * XFP_BUCKET_SLOTS, "xfp_bucket layout");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_slot, entry) == 40, "xfp_slot entry offset");
XFP_STATIC_ASSERT(sizeof(struct xfp_config) == 16, "xfp_config layout");
XFP_STATIC_ASSERT(sizeof(struct xfp_iface) == 16, "xfp_iface layout");
XFP_STATIC_ASSERT(sizeof(struct xfp_filter_counter) == 16, "counter layout");
XFP_STATIC_ASSERT(sizeof(struct xfp_layer_counters) == 8 * XFP_CNT_COUNT, "layer counters");
XFP_STATIC_ASSERT(sizeof(struct xfp_reinject_trailer) == 8, "reinject trailer layout");
XFP_STATIC_ASSERT(sizeof(struct xfp_punt_meta) == 32, "XDP metadata is at most 32 bytes");
XFP_STATIC_ASSERT(sizeof(struct xfp_punt_meta) % 4 == 0, "XDP metadata length is a multiple of 4");
XFP_STATIC_ASSERT(sizeof(struct xfp_flow_key) == 64, "xfp_flow_key layout");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_flow_key, port_a) == 44, "flow key port offset");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_flow_key, iface) == 48, "flow key iface offset");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_flow_key, ip_version) == 56, "flow key ip_version offset");
XFP_STATIC_ASSERT(sizeof(struct xfp_offload_key) == 72, "xfp_offload_key layout");
XFP_STATIC_ASSERT(sizeof(struct xfp_offload) == 48, "xfp_offload layout");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_offload, gen_first) == 32, "offload generation offset");
XFP_STATIC_ASSERT(sizeof(struct xfp_xsk_load) == 64, "xfp_xsk_load: one cache line");
XFP_STATIC_ASSERT(__builtin_offsetof(struct xfp_xsk_load, consumed) == 8, "xfp_xsk_load consumed offset");
XFP_STATIC_ASSERT(XFP_MAX_CALLOUTS <= 65536, "callout ids are u16");
XFP_STATIC_ASSERT(XFP_MAX_TUPLES < XFP_SLOT_FREE, "a tuple id must never mark a free slot");
XFP_STATIC_ASSERT(XFP_MAX_TUPLES <= 64, "a prune mask is one u64");
XFP_STATIC_ASSERT(sizeof(struct xfp_entry) % 8 == 0, "mmapable array values are 8-byte strided");
XFP_STATIC_ASSERT(XFP_L2_KNOWN_FLAGS < 128, "prune index of l2 flags");
XFP_STATIC_ASSERT(XFP_PRUNE_ADDR_TYPES + 16 == XFP_PRUNE_SPAN, "prune layout");

#endif /* XFP_ABI_H */
