/*
 * The flow probe (tests/integration/flow_test.cpp). Two callouts:
 *  - xfp.test.flow (main): on a flow's first frame it associates a context
 *    for itself (FLOWP_MAIN_CONTEXT + n) and for the conditional callout
 *    (FLOWP_COND_CONTEXT + n), checks that associating again is refused with
 *    -EEXIST, and permits; later frames come with its context. Config
 *    "offload=permit": on a frame with its context, it also hands the flow's
 *    permit to the kernel (flow_offload).
 *  - xfp.test.flowcond (CONDITIONAL_ON_FLOW): counts and continues; it must
 *    never see a frame without its context.
 * flow_delete (both) counts per context; fini records how many came first.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "xfp/callout.h"
#include "flow_probe.h"

static const struct xfp_host_api *api;
static struct xfp_host *host;
static uint32_t main_id, cond_id;
static int offload_mode;
static _Atomic uint64_t classified, with_context, cond_classified, cond_without_context, associated,
	associate_failed, eexist, offloads, deletes, deletes_at_fini, finis, last_handle, next_flow;
static _Atomic int32_t last_associate_error, last_offload_error;
static _Atomic uint32_t delete_count[2][FLOWP_MAX_FLOWS];
/* The contexts given, by flow (n), with the flow's handle. */
static _Atomic uint64_t flow_handle_of[FLOWP_MAX_FLOWS];

static void classify_main(void *ctx, const struct xfp_filter_info *filter, struct xfp_classify_item *items,
			  uint32_t count)
{
	(void)ctx;
	(void)filter;
	for (uint32_t i = 0; i < count; i++) {
		struct xfp_classify_item *it = &items[i];
		const uint64_t h = it->meta->flow_handle;
		classified++;
		last_handle = h;
		it->action = XFP_ACTION_PERMIT;
		if (it->flow_context) {
			with_context++;
			if (offload_mode) {
				int r = api->flow_offload(host, it, main_id, XFP_FLOW_VERDICT_PERMIT);
				if (r == 0)
					offloads++;
				else
					last_offload_error = r;
			}
			continue;
		}
		if (!h)
			continue;
		uint64_t n = atomic_fetch_add(&next_flow, 1) % FLOWP_MAX_FLOWS;
		int r1 = api->flow_associate_context(host, h, it->meta->layer, main_id, FLOWP_MAIN_CONTEXT + n);
		int r2 = api->flow_associate_context(host, h, it->meta->layer, cond_id, FLOWP_COND_CONTEXT + n);
		if (r1 == 0 && r2 == 0) {
			associated++;
			flow_handle_of[n] = h;
		} else {
			associate_failed++;
			last_associate_error = r1 ? r1 : r2;
		}
		if (api->flow_associate_context(host, h, it->meta->layer, main_id, 1) == -EEXIST)
			eexist++;
	}
}

static void classify_cond(void *ctx, const struct xfp_filter_info *filter, struct xfp_classify_item *items,
			  uint32_t count)
{
	(void)ctx;
	(void)filter;
	for (uint32_t i = 0; i < count; i++) {
		cond_classified++;
		if (!items[i].flow_context)
			cond_without_context++;
		items[i].action = XFP_ACTION_CONTINUE;
	}
}

static int notify(void *ctx, enum xfp_notify_type type, const struct xfp_filter_info *filter)
{
	(void)ctx;
	(void)type;
	(void)filter;
	return 0;
}

static void flow_delete(void *ctx, uint8_t layer, uint64_t flow_handle, uint64_t flow_context)
{
	int which = ctx != NULL; /* NULL: main, non-NULL: conditional */
	(void)layer;
	(void)flow_handle;
	deletes++;
	uint64_t base = which ? FLOWP_COND_CONTEXT : FLOWP_MAIN_CONTEXT;
	if (flow_context >= base && flow_context < base + FLOWP_MAX_FLOWS)
		delete_count[which][flow_context - base]++;
}

static int init(const struct xfp_host_api *a, struct xfp_host *h, const char *config, void **plugin_ctx)
{
	static const char cond_marker = 1;
	api = a;
	host = h;
	offload_mode = config && strstr(config, "offload=permit") != NULL;
	*plugin_ctx = NULL;
	struct xfp_callout c = {0};
	c.key = FLOWP_KEY;
	c.description = "flow probe: associates contexts, permits";
	c.classify = classify_main;
	c.notify = notify;
	c.flow_delete = flow_delete;
	c.context = NULL;
	int r = a->register_callout(h, &c, &main_id);
	if (r)
		return r;
	c.key = FLOWP_COND_KEY;
	c.description = "flow probe: conditional on flow";
	c.flags = XFP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW;
	c.classify = classify_cond;
	c.context = (void *)&cond_marker;
	return a->register_callout(h, &c, &cond_id);
}

static void fini(void *plugin_ctx)
{
	(void)plugin_ctx;
	deletes_at_fini = deletes;
	finis++;
}

XFP_PLUGIN("flow_probe", "flow context and offload probe for the tests", init, fini);

XFP_PLUGIN_EXPORT void flowp_stats(struct flowp_stats *o)
{
	memset(o, 0, sizeof(*o));
	o->classified = classified;
	o->with_context = with_context;
	o->cond_classified = cond_classified;
	o->cond_without_context = cond_without_context;
	o->associated = associated;
	o->associate_failed = associate_failed;
	o->last_associate_error = last_associate_error;
	o->last_offload_error = last_offload_error;
	o->eexist = eexist;
	o->offloads = offloads;
	o->deletes = deletes;
	o->deletes_at_fini = deletes_at_fini;
	o->finis = finis;
	o->last_handle = last_handle;
}

XFP_PLUGIN_EXPORT uint32_t flowp_delete_count(uint64_t context)
{
	if (context >= FLOWP_COND_CONTEXT && context < FLOWP_COND_CONTEXT + FLOWP_MAX_FLOWS)
		return delete_count[1][context - FLOWP_COND_CONTEXT];
	if (context >= FLOWP_MAIN_CONTEXT && context < FLOWP_MAIN_CONTEXT + FLOWP_MAX_FLOWS)
		return delete_count[0][context - FLOWP_MAIN_CONTEXT];
	return 0;
}

XFP_PLUGIN_EXPORT uint64_t flowp_context_of(uint64_t handle, int conditional)
{
	for (uint32_t n = 0; n < FLOWP_MAX_FLOWS && n < next_flow; n++)
		if (flow_handle_of[n] == handle)
			return (conditional ? FLOWP_COND_CONTEXT : FLOWP_MAIN_CONTEXT) + n;
	return 0;
}

XFP_PLUGIN_EXPORT int flowp_remove(uint64_t handle)
{
	return api->flow_remove_context(host, handle, XFP_LAYER_INBOUND, main_id);
}
