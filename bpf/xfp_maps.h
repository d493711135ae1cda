/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The fast path's maps. Names carry a layout version (_v1, _v2): a layout change
 * makes new maps rather than reinterpreting old pinned ones.
 */
#ifndef XFP_MAPS_H
#define XFP_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "xfp/abi.h"

/* Active bank and per-layer default actions. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xfp_config);
} xfp_cfg_v1 SEC(".maps");

/* [bank][layer]: group, tuple and sublayer counts of the compiled set. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XFP_BANKS * XFP_LAYER_COUNT);
	__type(key, __u32);
	__type(value, struct xfp_set_header);
} xfp_hdr_v4 SEC(".maps");

/* [bank][layer][tuple]: the masks of each condition shape, which a row's
 * own key is checked under (abi.h, struct xfp_entry). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XFP_BANKS * XFP_LAYER_COUNT * XFP_MAX_TUPLES);
	__type(key, __u32);
	__type(value, struct xfp_tuple);
} xfp_tuples_v1 SEC(".maps");

/* [bank][layer][group]: the probe masks of tuple space, one per group of
 * tuples (user/xfp/tuple_groups.hpp). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XFP_BANKS * XFP_LAYER_COUNT * XFP_MAX_TUPLES);
	__type(key, __u32);
	__type(value, struct xfp_tuple);
} xfp_groups_v1 SEC(".maps");

/*
 * The entry table (abi.h, struct xfp_bucket): [bank][bucket], built whole
 * by user space for the inactive bank, then switched to with the bank.
 * Memory-mapped: user space writes it in place. Sized by user space before
 * load (--max-entries).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XFP_BANKS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct xfp_bucket);
} xfp_buckets_v2 SEC(".maps");

/*
 * [bank][entry]: the per-sublayer matches that tuple-space keys and
 * direct-table values lead to. Memory-mapped; sized before load.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XFP_BANKS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct xfp_entry);
} xfp_entries_v5 SEC(".maps");

/* [bank][layer][rank]: each rank's rule (abi.h, struct xfp_rule).
 * Memory-mapped: user space writes a layer's rules with one copy. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XFP_BANKS * XFP_LAYER_COUNT * XFP_MAX_FILTERS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct xfp_rule);
} xfp_rules_v2 SEC(".maps");

/* [bank][layer][XFP_PRUNE_SPAN]: group masks per field value (abi.h).
 * Memory-mapped: user space writes a whole span with one copy. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XFP_BANKS * XFP_LAYER_COUNT * XFP_PRUNE_SPAN);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} xfp_prune_v1 SEC(".maps");

/* [bank][layer][XFP_PRUNE_SPAN]: per small-field value, 0 when no filter
 * matches it, an inline packed rank or 1 + the index of its row in
 * xfp_entries_v5 (abi.h, XFP_DIRECT_INLINE). u64 because a
 * memory-mapped array spaces its elements 8 bytes apart. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XFP_BANKS * XFP_LAYER_COUNT * XFP_PRUNE_SPAN);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} xfp_dmap_v3 SEC(".maps");

/* Attached interfaces, by attachment key (see xfp_attachment_key). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct xfp_iface);
} xfp_ifaces_v1 SEC(".maps");

/* Callout ids that a loaded plugin serves (non-zero value). A callout
 * filter punts only if its callout is served and a socket is bound. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XFP_MAX_CALLOUTS);
	__type(key, __u32);
	__type(value, __u32);
} xfp_callouts_v1 SEC(".maps");

/* AF_XDP sockets of the workers, at XFP_XSK_INDEX(attachment key, queue).
 * A socket that closes (daemon stopped or killed) leaves the map by itself,
 * and callout filters fall back to their fail action. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XFP_MAX_ATTACHMENTS * XFP_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xfp_xsks_v1 SEC(".maps");

/* Overload guard of each AF_XDP socket, at XFP_XSK_INDEX (abi.h, struct
 * xfp_xsk_load). Memory-mapped: a worker publishes its consumed count with
 * one store, no syscall. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XFP_MAX_ATTACHMENTS * XFP_MAX_QUEUES);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct xfp_xsk_load);
} xfp_xsk_load_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XFP_MAX_FILTERS);
	__type(key, __u32);
	__type(value, struct xfp_filter_counter);
} xfp_fcnt_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XFP_LAYER_COUNT);
	__type(key, __u32);
	__type(value, struct xfp_layer_counters);
} xfp_lcnt_v2 SEC(".maps");

/*
 * Flow-verdict offload: (flow key, layer) -> verdict, generation range and
 * the flow's counters. LRU: when full, the least recently used flow loses
 * its offload and is classified (and punted) again, never wrongly decided.
 * max_entries is set by user space before load (DatapathOptions).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XFP_OFFLOAD_DEFAULT_ENTRIES);
	__type(key, struct xfp_offload_key);
	__type(value, struct xfp_offload);
} xfp_offload_v2 SEC(".maps");

/* One offload key per CPU: the classifier's own locals fill most of the
 * 512-byte BPF stack, so the 72-byte key is built here. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xfp_offload_key);
} xfp_flow_scratch_v1 SEC(".maps");

#endif /* XFP_MAPS_H */
