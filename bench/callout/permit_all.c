/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * permit_all: the callout of xfp-bench-callout's "xfp-callout" case. One
 * terminating callout, key "xfp.bench.permit", that permits every frame it
 * is given. It does nothing else on purpose: the benchmark measures what the
 * callout path costs (punt, worker, classify call, receive injection), so
 * the callout itself must cost next to nothing.
 *
 * Registered with XFP_CALLOUT_FLAG_BATCH: the worker hands it every frame of
 * a receive batch that reaches it in one classify call, as a plugin that
 * cares about throughput would ask for.
 *
 * Config: none (anything given is refused, so that a typo does not look like
 * a setting that took effect).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "xfp/callout.h"

#define PERMIT_KEY "xfp.bench.permit"

static void permit_classify(void *ctx, const struct xfp_filter_info *filter, struct xfp_classify_item *items,
			    uint32_t count)
{
	(void)ctx;
	(void)filter;
	for (uint32_t i = 0; i < count; i++)
		items[i].action = XFP_ACTION_PERMIT;
}

/* Any filter may name it. */
static int permit_notify(void *ctx, enum xfp_notify_type type, const struct xfp_filter_info *filter)
{
	(void)ctx;
	(void)type;
	(void)filter;
	return 0;
}

static int permit_init(const struct xfp_host_api *api, struct xfp_host *host, const char *config,
		       void **plugin_ctx)
{
	struct xfp_callout callout = {
		.key = PERMIT_KEY,
		.description = "permits every frame (xfp-bench-callout)",
		.flags = XFP_CALLOUT_FLAG_BATCH,
		.classify = permit_classify,
		.notify = permit_notify,
		.flow_delete = NULL,
		.context = NULL,
	};
	int rc;

	*plugin_ctx = NULL;
	if (config && config[0]) {
		api->log(host, 3, PERMIT_KEY ": takes no config");
		return -EINVAL;
	}
	rc = api->register_callout(host, &callout, NULL);
	if (rc)
		api->log(host, 3, PERMIT_KEY ": register_callout failed");
	return rc;
}

static void permit_fini(void *plugin_ctx)
{
	(void)plugin_ctx;
}

XFP_PLUGIN("bench-permit", "xfp-bench-callout: a terminating callout that permits every frame", permit_init,
	   permit_fini);
