/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * vlan_rewrite: absorbs frames, rewrites them and injects them back. The
 * pattern of every callout that changes traffic rather than judging it.
 * What it shows of the ABI:
 *
 *  - An injection handle, created once in init
 *    (api->injection_handle_create(host, XFP_INJECTION_L2, &h)) and
 *    destroyed in fini; destroying it completes the frames still pending
 *    with XFP_STATUS_HANDLE_CLOSING, so the completion and its context must
 *    outlive the destroy call.
 *
 *  - The injection state. A frame this callout injected comes through the
 *    layer again and matches the same filter. api->injection_state(h, item)
 *    tells: INJECTED_BY_SELF or PREVIOUSLY_INJECTED_BY_SELF means "mine,
 *    already rewritten": the callout permits it untouched. Without this
 *    check every frame would be rewritten and re-injected for ever.
 *
 *  - Absorbing. Setting XFP_CLASSIFY_ABSORB in item->flags takes the frame
 *    away from xfp: it is neither delivered nor dropped; the callout owns it
 *    and must inject or free it. The action written alongside is BLOCK, as
 *    WFP callouts do when they absorb (the original must not go on).
 *
 *  - Changing a frame's bytes: api->frame_push() grows it at the front (the
 *    room for a tag), frame_pull() shrinks it, frame_data() gives the
 *    bytes to memmove. When there is no headroom left, frame_alloc() makes
 *    a bigger frame and the original is freed.
 *
 *  - Injecting, and who owns the frame when. inject_receive() hands the
 *    frame to the host stack as if it had arrived on `iface` (frames from
 *    the inbound layer); inject_send() sends it out of `iface` (frames from
 *    the outbound layer). On 0 the frame is xfp's until the completion runs
 *    (once, on a worker) and gives it back: the completion frees it. On an
 *    error the completion never runs and the frame is still the callout's:
 *    it frees it and counts a drop.
 *
 * Use it from a filter with action CALLOUT_TERMINATING (or CALLOUT_UNKNOWN)
 * naming "xfp.sample.vlan-rewrite". Frames the rewrite does not apply to (too
 * short for an Ethernet header, or untagged with pop) are permitted
 * unchanged.
 *
 * Config, exactly one of:
 *    push=VID      insert an 802.1Q tag (TPID 0x8100, PCP 0) with VID
 *                  1..4094 after the MAC addresses
 *    pop           remove the outer tag (0x8100, 0x88a8 or 0x9100)
 *    set-src=MAC   rewrite the source MAC (a unicast address)
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xfp/callout.h"

#define VLAN_KEY "xfp.sample.vlan-rewrite"
#define ETH_ALEN 6
#define ETH_HLEN 14
#define VLAN_HLEN 4
/* What this callout gives as inject_context: a layer that sees the frame
 * again reports it to whoever asks injection_state() (ASCII "vlan"). */
#define VLAN_INJECT_CONTEXT 0x766c616eu

enum rewrite { REWRITE_PUSH, REWRITE_POP, REWRITE_SET_SRC };

enum counter {
	CNT_REWRITTEN,   /* absorbed and rewritten */
	CNT_INJECTED,    /* injected (the inject call returned 0) */
	CNT_COMPLETED,   /* completions with status 0 */
	CNT_FAILED,      /* completions with an error status */
	CNT_DROPPED,     /* the inject call failed, or no memory for a bigger frame */
	CNT_OWN,         /* our own injected frames seen again: permitted */
	CNT_UNCHANGED,   /* the rewrite did not apply: permitted as they were */
	CNT_COUNT,
};

struct vlan_plugin {
	const struct xfp_host_api *api;
	struct xfp_host *host;
	enum rewrite rewrite;
	uint16_t vid;             /* push */
	uint8_t src[ETH_ALEN];    /* set-src */
	struct xfp_injection_handle *inject;
	atomic_uint_fast64_t count[CNT_COUNT];
	atomic_int inject_error_logged;
};

static void logf_(const struct vlan_plugin *v, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logf_(const struct vlan_plugin *v, int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	v->api->log(v->host, level, line);
}

static void count(struct vlan_plugin *v, enum counter c)
{
	atomic_fetch_add_explicit(&v->count[c], 1, memory_order_relaxed);
}

static int is_vlan_tpid(const uint8_t *p)
{
	uint16_t tpid = (uint16_t)(p[0] << 8 | p[1]);

	return tpid == 0x8100 || tpid == 0x88a8 || tpid == 0x9100;
}

/* Would the rewrite change this frame? */
static int applies(const struct vlan_plugin *v, struct xfp_frame *frame)
{
	const struct xfp_host_api *api = v->api;
	uint32_t len = api->frame_len(frame);

	if (len < ETH_HLEN)
		return 0;
	if (v->rewrite == REWRITE_POP)
		return len >= ETH_HLEN + VLAN_HLEN && is_vlan_tpid(api->frame_data(frame) + 2 * ETH_ALEN);
	return 1;
}

/*
 * Rewrites an absorbed frame. Returns the frame to inject: the same one
 * changed in place, or (push without headroom) a new, bigger one, the old
 * one freed. NULL: no memory, the frame is freed.
 */
static struct xfp_frame *rewrite(struct vlan_plugin *v, struct xfp_frame *frame)
{
	const struct xfp_host_api *api = v->api;
	uint8_t *d;

	switch (v->rewrite) {
	case REWRITE_SET_SRC:
		memcpy(api->frame_data(frame) + ETH_ALEN, v->src, ETH_ALEN);
		return frame;
	case REWRITE_POP:
		/* dst src TAG type ... -> move the MACs 4 bytes on, drop the front. */
		d = api->frame_data(frame);
		memmove(d + VLAN_HLEN, d, 2 * ETH_ALEN);
		api->frame_pull(frame, VLAN_HLEN);
		return frame;
	case REWRITE_PUSH:
		if (api->frame_push(frame, VLAN_HLEN) == 0) {
			/* 4 new bytes in front: move the MACs there, tag after. */
			d = api->frame_data(frame);
			memmove(d, d + VLAN_HLEN, 2 * ETH_ALEN);
		} else {
			uint32_t len = api->frame_len(frame);
			struct xfp_frame *bigger = api->frame_alloc(len + VLAN_HLEN);
			const uint8_t *old = api->frame_data(frame);

			if (!bigger) {
				api->frame_free(frame);
				return NULL;
			}
			d = api->frame_data(bigger);
			memcpy(d, old, 2 * ETH_ALEN);
			memcpy(d + 2 * ETH_ALEN + VLAN_HLEN, old + 2 * ETH_ALEN, len - 2 * ETH_ALEN);
			api->frame_free(frame);
			frame = bigger;
		}
		d[12] = 0x81; /* TPID 0x8100 */
		d[13] = 0x00;
		d[14] = (uint8_t)(v->vid >> 8); /* PCP 0, DEI 0, VID */
		d[15] = (uint8_t)v->vid;
		return frame;
	}
	return frame;
}

/* Runs once per injected frame, on a worker: the frame is ours again. */
static void inject_complete(void *completion_ctx, struct xfp_frame *frame, int status)
{
	struct vlan_plugin *v = completion_ctx;

	count(v, status == 0 ? CNT_COMPLETED : CNT_FAILED);
	v->api->frame_free(frame);
}

static void classify_one(struct vlan_plugin *v, struct xfp_classify_item *item)
{
	const struct xfp_host_api *api = v->api;
	enum xfp_injection_state state = api->injection_state(v->inject, item, NULL);
	struct xfp_frame *frame;
	int rc;

	/* Ours, already rewritten: let it through, never rewrite twice. */
	if (state == XFP_INJECTED_BY_SELF || state == XFP_PREVIOUSLY_INJECTED_BY_SELF) {
		item->action = XFP_ACTION_PERMIT;
		count(v, CNT_OWN);
		return;
	}
	if (!applies(v, item->frame)) {
		item->action = XFP_ACTION_PERMIT;
		count(v, CNT_UNCHANGED);
		return;
	}

	/* Absorb: from here on the frame is ours to inject or free. */
	item->flags |= XFP_CLASSIFY_ABSORB;
	item->action = XFP_ACTION_BLOCK;
	frame = item->frame;
	api->frame_set_next(frame, NULL); /* inject this frame, not a chain */
	frame = rewrite(v, frame);
	if (!frame) {
		count(v, CNT_DROPPED);
		return;
	}
	count(v, CNT_REWRITTEN);

	if (item->meta->layer == XFP_LAYER_OUTBOUND)
		rc = api->inject_send(v->inject, item->meta->iface, frame, VLAN_INJECT_CONTEXT, inject_complete, v);
	else
		rc = api->inject_receive(v->inject, item->meta->iface, frame, VLAN_INJECT_CONTEXT,
					 inject_complete, v);
	if (rc != 0) {
		/* The completion will not run: the frame is still ours. */
		api->frame_free(frame);
		count(v, CNT_DROPPED);
		if (atomic_exchange(&v->inject_error_logged, 1) == 0)
			logf_(v, 2, VLAN_KEY ": inject on interface %u failed (%d); frame dropped (logged once)",
			      item->meta->iface, rc);
		return;
	}
	count(v, CNT_INJECTED);
}

static void vlan_classify(void *callout_ctx, const struct xfp_filter_info *filter,
			  struct xfp_classify_item *items, uint32_t n)
{
	(void)filter;
	for (uint32_t i = 0; i < n; i++) /* n is 1: no XFP_CALLOUT_FLAG_BATCH */
		classify_one(callout_ctx, &items[i]);
}

static int vlan_notify(void *callout_ctx, enum xfp_notify_type type, const struct xfp_filter_info *filter)
{
	struct vlan_plugin *v = callout_ctx;

	logf_(v, 0, VLAN_KEY ": filter %" PRIu64 " '%s' %s", filter->id, filter->name,
	      type == XFP_NOTIFY_FILTER_ADD ? "added" : "deleted");
	return 0;
}

/* ---- config ------------------------------------------------------------------ */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly "xx:xx:xx:xx:xx:xx" (or with '-'). */
static int parse_mac(const char *text, uint8_t mac[ETH_ALEN])
{
	if (strlen(text) != 17)
		return -EINVAL;
	for (int i = 0; i < ETH_ALEN; i++) {
		const char *p = text + 3 * i;
		int hi = hex_digit(p[0]), lo = hex_digit(p[1]);

		if (hi < 0 || lo < 0 || (i < 5 && p[2] != ':' && p[2] != '-'))
			return -EINVAL;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int parse_config(struct vlan_plugin *v, const char *config)
{
	const char *value = strchr(config, '=');
	size_t key_len = value ? (size_t)(value - config) : strlen(config);
	char *end;
	unsigned long vid;

	if (value)
		value++;
	if (strchr(config, ',')) {
		logf_(v, 3, VLAN_KEY ": config '%s': give exactly one of push=VID, pop, set-src=MAC", config);
		return -EINVAL;
	}
	if (key_len == 4 && strncmp(config, "push", 4) == 0 && value) {
		errno = 0;
		vid = strtoul(value, &end, 10);
		if (*value < '0' || *value > '9' || errno || *end || vid < 1 || vid > 4094) {
			logf_(v, 3, VLAN_KEY ": push=%s: the VID must be a number in 1..4094", value);
			return -EINVAL;
		}
		v->rewrite = REWRITE_PUSH;
		v->vid = (uint16_t)vid;
		return 0;
	}
	if (strcmp(config, "pop") == 0) {
		v->rewrite = REWRITE_POP;
		return 0;
	}
	if (key_len == 7 && strncmp(config, "set-src", 7) == 0 && value) {
		if (parse_mac(value, v->src)) {
			logf_(v, 3, VLAN_KEY ": set-src=%s is not a MAC address (aa:bb:cc:dd:ee:ff)", value);
			return -EINVAL;
		}
		if (v->src[0] & 1) {
			logf_(v, 3, VLAN_KEY ": set-src=%s is a group address, not a source", value);
			return -EINVAL;
		}
		v->rewrite = REWRITE_SET_SRC;
		return 0;
	}
	logf_(v, 3, VLAN_KEY ": config '%s': give exactly one of push=VID, pop, set-src=MAC", config);
	return -EINVAL;
}

/* ---- load and unload --------------------------------------------------------- */

static int vlan_init(const struct xfp_host_api *api, struct xfp_host *host, const char *config,
		     void **plugin_ctx)
{
	struct vlan_plugin *v = calloc(1, sizeof(*v));
	struct xfp_callout callout = {
		.key = VLAN_KEY,
		.description = "push or pop an 802.1Q tag, or rewrite the source MAC, and re-inject",
		.classify = vlan_classify,
		.notify = vlan_notify,
	};
	int rc;

	if (!v)
		return -ENOMEM;
	v->api = api;
	v->host = host;
	for (int i = 0; i < CNT_COUNT; i++)
		atomic_init(&v->count[i], 0);
	atomic_init(&v->inject_error_logged, 0);
	rc = parse_config(v, config ? config : "");
	if (rc)
		goto fail;
	rc = api->injection_handle_create(host, XFP_INJECTION_L2, &v->inject);
	if (rc) {
		logf_(v, 3, VLAN_KEY ": injection_handle_create failed (%d)", rc);
		goto fail;
	}
	callout.context = v;
	rc = api->register_callout(host, &callout, NULL);
	if (rc) {
		logf_(v, 3, VLAN_KEY ": register_callout failed (%d)", rc);
		api->injection_handle_destroy(v->inject);
		goto fail;
	}
	*plugin_ctx = v;
	return 0;
fail:
	free(v);
	return rc;
}

static void vlan_fini(void *plugin_ctx)
{
	struct vlan_plugin *v = plugin_ctx;
	uint64_t c[CNT_COUNT];

	/* Completes what is still pending (status HANDLE_CLOSING) through
	 * inject_complete, which frees the frames and counts them: v must
	 * still be there. */
	v->api->injection_handle_destroy(v->inject);
	for (int i = 0; i < CNT_COUNT; i++)
		c[i] = atomic_load(&v->count[i]);
	logf_(v, 1,
	      VLAN_KEY ": %" PRIu64 " rewritten, %" PRIu64 " injected (%" PRIu64 " completed, %" PRIu64
		       " failed), %" PRIu64 " dropped, %" PRIu64 " own frames permitted, %" PRIu64 " unchanged",
	      c[CNT_REWRITTEN], c[CNT_INJECTED], c[CNT_COMPLETED], c[CNT_FAILED], c[CNT_DROPPED], c[CNT_OWN],
	      c[CNT_UNCHANGED]);
	free(v);
}

XFP_PLUGIN("vlan_rewrite", "sample: absorb frames, push or pop a VLAN tag or set the source MAC, re-inject",
	   vlan_init, vlan_fini);
