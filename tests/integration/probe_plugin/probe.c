/*
 * The probe callout (xfp.test.probe) of the callout integration tests.
 * config "mode=permit|block|continue|absorb-receive|absorb-send":
 *  - permit, block, continue: that verdict for every frame;
 *  - absorb-receive / absorb-send: absorb every frame that this plugin did
 *    not inject itself and inject it back (receive or send path) with
 *    context 0x5eed; frames it injected (INJECTED_BY_SELF or
 *    PREVIOUSLY_INJECTED_BY_SELF) are permitted, so nothing loops;
 *  - slow:USEC: permit every frame after sleeping USEC microseconds for it
 *    (a callout that falls behind: the overload tests).
 * Registered with the batch flag. Counts what it sees (struct probe_stats).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xfp/callout.h"
#include "probe.h"

enum mode { M_PERMIT, M_BLOCK, M_CONTINUE, M_ABSORB_RECEIVE, M_ABSORB_SEND, M_SLOW };

static unsigned long slow_us;

static const struct xfp_host_api *api;
static struct xfp_host *host;
static struct xfp_injection_handle *handle;
static enum mode mode;
static _Atomic uint64_t classified, batches, max_batch, st[4], last_context, injected, inject_failed,
	completions, completion_ok, completion_closing, completion_other;
static _Atomic int32_t last_inject_status;

static void complete(void *ctx, struct xfp_frame *frame, int status)
{
	(void)ctx;
	completions++;
	if (status == 0)
		completion_ok++;
	else if (status == XFP_STATUS_HANDLE_CLOSING)
		completion_closing++;
	else
		completion_other++;
	api->frame_free(frame);
}

static void classify(void *ctx, const struct xfp_filter_info *filter, struct xfp_classify_item *items, uint32_t n)
{
	(void)ctx;
	(void)filter;
	batches++;
	if (n > max_batch)
		max_batch = n;
	for (uint32_t i = 0; i < n; i++) {
		struct xfp_classify_item *it = &items[i];
		uint64_t ictx = 0;
		enum xfp_injection_state s = api->injection_state(handle, it, &ictx);
		classified++;
		if (s >= 0 && s < 4)
			st[s]++;
		if (s != XFP_NOT_INJECTED)
			last_context = ictx;
		switch (mode) {
		case M_PERMIT:
			it->action = XFP_ACTION_PERMIT;
			break;
		case M_SLOW: {
			struct timespec ts = {(time_t)(slow_us / 1000000), (long)(slow_us % 1000000) * 1000};
			nanosleep(&ts, NULL);
			it->action = XFP_ACTION_PERMIT;
			break;
		}
		case M_BLOCK:
			it->action = XFP_ACTION_BLOCK;
			break;
		case M_CONTINUE:
			it->action = XFP_ACTION_CONTINUE;
			break;
		case M_ABSORB_RECEIVE:
		case M_ABSORB_SEND: {
			int rc;
			if (s == XFP_INJECTED_BY_SELF || s == XFP_PREVIOUSLY_INJECTED_BY_SELF) {
				it->action = XFP_ACTION_PERMIT;
				break;
			}
			it->action = XFP_ACTION_BLOCK;
			it->flags |= XFP_CLASSIFY_ABSORB;
			/* In a batch the frames are chained: inject this one alone. */
			api->frame_set_next(it->frame, NULL);
			rc = mode == M_ABSORB_SEND
				     ? api->inject_send(handle, it->meta->iface, it->frame, 0x5eed, complete, NULL)
				     : api->inject_receive(handle, it->meta->iface, it->frame, 0x5eed, complete, NULL);
			last_inject_status = rc;
			if (rc == 0) {
				injected++;
			} else {
				inject_failed++;
				api->frame_free(it->frame); /* still ours */
			}
			break;
		}
		}
	}
}

static int notify(void *ctx, enum xfp_notify_type type, const struct xfp_filter_info *filter)
{
	(void)ctx;
	(void)type;
	(void)filter;
	return 0;
}

static int init(const struct xfp_host_api *a, struct xfp_host *h, const char *config, void **plugin_ctx)
{
	static const struct xfp_callout co = {
		.key = PROBE_KEY,
		.description = "test probe",
		.flags = XFP_CALLOUT_FLAG_BATCH,
		.classify = classify,
		.notify = notify,
	};
	int rc;

	api = a;
	host = h;
	*plugin_ctx = NULL;
	if (!strcmp(config, "mode=permit") || !*config)
		mode = M_PERMIT;
	else if (!strcmp(config, "mode=block"))
		mode = M_BLOCK;
	else if (!strcmp(config, "mode=continue"))
		mode = M_CONTINUE;
	else if (!strcmp(config, "mode=absorb-receive"))
		mode = M_ABSORB_RECEIVE;
	else if (!strcmp(config, "mode=absorb-send"))
		mode = M_ABSORB_SEND;
	else if (!strncmp(config, "mode=slow:", 10) && config[10]) {
		char *end;
		mode = M_SLOW;
		slow_us = strtoul(config + 10, &end, 10);
		if (*end) {
			a->log(h, 3, "probe: mode=slow:USEC wants a number");
			return -EINVAL;
		}
	}
	else {
		a->log(h, 3, "probe: unknown config");
		return -EINVAL;
	}
	rc = a->injection_handle_create(h, XFP_INJECTION_L2, &handle);
	if (rc)
		return rc;
	return a->register_callout(h, &co, NULL);
}

static void fini(void *plugin_ctx)
{
	(void)plugin_ctx;
	if (handle)
		api->injection_handle_destroy(handle);
	handle = NULL;
}

XFP_PLUGIN("probe", "callout integration test probe", init, fini);

__attribute__((visibility("default"))) void probe_stats(struct probe_stats *out)
{
	memset(out, 0, sizeof *out);
	out->classified = classified;
	out->batches = batches;
	out->max_batch = max_batch;
	for (int i = 0; i < 4; i++)
		out->state[i] = st[i];
	out->last_context = last_context;
	out->injected = injected;
	out->inject_failed = inject_failed;
	out->last_inject_status = last_inject_status;
	out->completions = completions;
	out->completion_ok = completion_ok;
	out->completion_closing = completion_closing;
	out->completion_other = completion_other;
}

__attribute__((visibility("default"))) int probe_inject(uint32_t iface, int send, const uint8_t *bytes, uint32_t len)
{
	struct xfp_frame *f = api->frame_alloc(len);
	int rc;

	if (!f)
		return -ENOMEM;
	memcpy(api->frame_data(f), bytes, len);
	rc = send ? api->inject_send(handle, iface, f, 0x1dea, complete, NULL)
		  : api->inject_receive(handle, iface, f, 0x1dea, complete, NULL);
	if (rc)
		api->frame_free(f);
	return rc;
}

__attribute__((visibility("default"))) void probe_destroy_handle(void)
{
	if (handle)
		api->injection_handle_destroy(handle);
	handle = NULL;
}
