/* A callout plugin with one defect, chosen at build time (BROKEN_<DEFECT>,
 * see CMakeLists.txt), one library per load failure the host must report.
 * The registration defects first register a valid callout (broken.ok), so
 * that the tests also see it rolled back, and return 0 from init: the host
 * must fail the load all the same. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>

#include "test_plugins.h"
#include "xfp/callout.h"

static struct broken_plugin_state state;

XFP_PLUGIN_EXPORT const struct broken_plugin_state *xfp_test_broken_state(void) { return &state; }

static void classify(void *ctx, const struct xfp_filter_info *filter, struct xfp_classify_item *items,
		     uint32_t count)
{
	(void)ctx;
	(void)filter;
	(void)items;
	(void)count;
}

static int notify(void *ctx, enum xfp_notify_type type, const struct xfp_filter_info *filter)
{
	(void)ctx;
	(void)type;
	(void)filter;
	return 0;
}

__attribute__((unused)) static int init(const struct xfp_host_api *api, struct xfp_host *host, const char *config,
				       void **plugin_ctx)
{
	(void)plugin_ctx;
	state.init_calls++;
#ifdef BROKEN_INIT_EINVAL
	char line[128];
	snprintf(line, sizeof(line), "config \"%s\" is not a number", config);
	api->log(host, 3, line);
	return -EINVAL;
#else
	(void)config;
#endif
	struct xfp_callout valid = {
		.key = "broken.ok",
		.description = "valid, registered before the broken one",
		.classify = classify,
		.notify = notify,
	};
	state.valid_register_rc = api->register_callout(host, &valid, NULL);
	struct xfp_callout broken = valid;
	broken.key = "broken.bad";
#if defined(BROKEN_NO_CLASSIFY)
	broken.classify = NULL;
#elif defined(BROKEN_NO_NOTIFY)
	broken.notify = NULL;
#elif defined(BROKEN_FLOW_WITHOUT_DELETE)
	broken.flags = XFP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW;
#elif defined(BROKEN_BAD_KEY)
	broken.key = "bad key!";
#elif defined(BROKEN_DUPLICATE_KEY)
	broken.key = "good.count";
#elif defined(BROKEN_UNKNOWN_FLAGS)
	broken.flags = 1u << 7;
#endif
	state.broken_register_rc = api->register_callout(host, &broken, NULL);
	return 0;
}

static void fini(void *plugin_ctx)
{
	(void)plugin_ctx;
	state.fini_calls++;
}

#if defined(BROKEN_NO_SYMBOL)
XFP_PLUGIN_EXPORT const struct xfp_plugin_info xfp_plugin_misspelt = {
	XFP_CALLOUT_ABI_VERSION, sizeof(struct xfp_plugin_info), BROKEN_NAME, "", init, fini};
#elif defined(BROKEN_WRONG_ABI)
XFP_PLUGIN_EXPORT const struct xfp_plugin_info xfp_plugin = {
	XFP_CALLOUT_ABI_VERSION + 1, sizeof(struct xfp_plugin_info), BROKEN_NAME, "", init, fini};
#elif defined(BROKEN_SMALL_DESCRIPTOR)
XFP_PLUGIN_EXPORT const struct xfp_plugin_info xfp_plugin = {
	XFP_CALLOUT_ABI_VERSION, offsetof(struct xfp_plugin_info, init), BROKEN_NAME, "", init, fini};
#elif defined(BROKEN_NO_NAME)
XFP_PLUGIN_EXPORT const struct xfp_plugin_info xfp_plugin = {
	XFP_CALLOUT_ABI_VERSION, sizeof(struct xfp_plugin_info), NULL, "", init, fini};
#elif defined(BROKEN_NO_INIT)
XFP_PLUGIN_EXPORT const struct xfp_plugin_info xfp_plugin = {
	XFP_CALLOUT_ABI_VERSION, sizeof(struct xfp_plugin_info), BROKEN_NAME, "", NULL, fini};
#else
XFP_PLUGIN(BROKEN_NAME, "a plugin with one defect", init, fini);
#endif
