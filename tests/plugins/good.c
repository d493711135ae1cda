/* A working callout plugin with two callouts:
 *  - good.count (batch): counts calls and frames, permits; its classify
 *    checks that fini has not run (the host must never call it afterwards);
 *  - good.veto: blocks, and refuses filters whose context is 666.
 * init echoes its config to the log and keeps it; it creates an injection
 * handle, which fini destroys unless the config is "leave-handle" (then the
 * host must destroy it). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "test_plugins.h"
#include "xfp/callout.h"

static struct good_plugin_state state;
static const struct xfp_host_api *host_api;
static struct xfp_injection_handle *handle;
static int leave_handle;

XFP_PLUGIN_EXPORT const struct good_plugin_state *xfp_test_good_state(void) { return &state; }

static void count_classify(void *ctx, const struct xfp_filter_info *filter, struct xfp_classify_item *items,
			   uint32_t count)
{
	(void)ctx;
	(void)filter;
	if (!__atomic_load_n(&state.live, __ATOMIC_SEQ_CST))
		__atomic_fetch_add(&state.calls_while_finalised, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&state.classify_calls, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&state.classify_frames, count, __ATOMIC_SEQ_CST);
	for (uint32_t i = 0; i < count; i++)
		items[i].action = XFP_ACTION_PERMIT;
	/* Take a little time, so that an unload racing the call finds it running. */
	for (int spin = 0; spin < 500; spin++)
		(void)__atomic_load_n(&state.live, __ATOMIC_RELAXED);
	/* Still alive at the end: fini must not have run during the call. */
	if (!__atomic_load_n(&state.live, __ATOMIC_SEQ_CST))
		__atomic_fetch_add(&state.calls_while_finalised, 1, __ATOMIC_SEQ_CST);
}

static void veto_classify(void *ctx, const struct xfp_filter_info *filter, struct xfp_classify_item *items,
			  uint32_t count)
{
	(void)ctx;
	(void)filter;
	for (uint32_t i = 0; i < count; i++)
		items[i].action = XFP_ACTION_BLOCK;
}

static int count_notify(void *ctx, enum xfp_notify_type type, const struct xfp_filter_info *filter)
{
	(void)ctx;
	(void)filter;
	__atomic_fetch_add(type == XFP_NOTIFY_FILTER_ADD ? &state.notify_adds : &state.notify_deletes, 1,
			   __ATOMIC_SEQ_CST);
	return 0;
}

static int veto_notify(void *ctx, enum xfp_notify_type type, const struct xfp_filter_info *filter)
{
	struct xfp_host *host = ctx;
	char line[128];

	count_notify(NULL, type, filter);
	if (type == XFP_NOTIFY_FILTER_ADD && filter->context == 666) {
		snprintf(line, sizeof(line), "context %llu is not for me", (unsigned long long)filter->context);
		host_api->log(host, 3, line);
		return -EPERM;
	}
	return 0;
}

static int init(const struct xfp_host_api *api, struct xfp_host *host, const char *config, void **plugin_ctx)
{
	char line[128];
	int rc;

	host_api = api;
	snprintf(state.config, sizeof(state.config), "%s", config);
	snprintf(line, sizeof(line), "config: \"%s\"", config);
	api->log(host, 1, line);
	leave_handle = strcmp(config, "leave-handle") == 0;

	struct xfp_callout count = {
		.key = "good.count",
		.description = "counts frames",
		.flags = XFP_CALLOUT_FLAG_BATCH,
		.classify = count_classify,
		.notify = count_notify,
	};
	struct xfp_callout veto = {
		.key = "good.veto",
		.description = "blocks everything",
		.classify = veto_classify,
		.notify = veto_notify,
		.context = host,
	};
	rc = api->register_callout(host, &count, &state.count_id);
	if (rc)
		return rc;
	rc = api->register_callout(host, &veto, &state.veto_id);
	if (rc)
		return rc;
	handle = NULL;
	state.handle_rc = api->injection_handle_create(host, XFP_INJECTION_L2, &handle);
	__atomic_store_n(&state.live, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&state.init_calls, 1, __ATOMIC_SEQ_CST);
	*plugin_ctx = &state;
	return 0;
}

static void fini(void *plugin_ctx)
{
	(void)plugin_ctx;
	__atomic_store_n(&state.live, 0, __ATOMIC_SEQ_CST);
	if (handle && !leave_handle)
		host_api->injection_handle_destroy(handle);
	handle = NULL;
	__atomic_fetch_add(&state.fini_calls, 1, __ATOMIC_SEQ_CST);
}

XFP_PLUGIN("good", "counts and vetoes frames, for the host's tests", init, fini);
