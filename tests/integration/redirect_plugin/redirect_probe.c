/*
 * The redirect test plugin (tests/integration/redirect_test.cpp): two
 * redirectors with a redirect handle each.
 *  - A (RDP_KEY_A, context "ctx-A"): a flow NOT_REDIRECTED goes to the
 *    interface a= of the config; BY_SELF / PREVIOUSLY_BY_SELF: permit;
 *    BY_OTHER: continue.
 *  - B (RDP_KEY_B, context "ctx-B"): a flow REDIRECTED_BY_OTHER (A's) goes
 *    to b=; BY_SELF / PREVIOUSLY_BY_SELF: permit; NOT_REDIRECTED: continue.
 * redirect_flow's -EALREADY (the flow came back from a proxy) permits too.
 * Config: "a=IFNAME,b=IFNAME".
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "xfp/callout.h"
#include "redirect_probe.h"

static const struct xfp_host_api *api;
static struct xfp_redirect_handle *handles[2];
static char ifnames[2][64];
static _Atomic uint64_t classified[2], states[2][4], redirects[2], again[2], errors[2], permits[2];
static _Atomic int32_t last_error[2];
static _Atomic uint64_t live_handles;

static const char *const contexts[2] = {RDP_CONTEXT_A, RDP_CONTEXT_B};

static void classify(int who, struct xfp_classify_item *items, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		struct xfp_classify_item *it = &items[i];
		enum xfp_redirect_state st = api->redirect_state(handles[who], it);
		int redirect;

		classified[who]++;
		if ((unsigned)st < 4)
			states[who][st]++;
		it->action = XFP_ACTION_CONTINUE;
		if (st == XFP_REDIRECTED_BY_SELF || st == XFP_PREVIOUSLY_REDIRECTED_BY_SELF) {
			it->action = XFP_ACTION_PERMIT;
			permits[who]++;
			continue;
		}
		redirect = who == 0 ? st == XFP_NOT_REDIRECTED : st == XFP_REDIRECTED_BY_OTHER;
		if (!redirect)
			continue;
		int r = api->redirect_flow(handles[who], it, ifnames[who], contexts[who], (uint32_t)strlen(contexts[who]),
					   0);
		if (r == 0) {
			redirects[who]++;
		} else if (r == -EALREADY) {
			again[who]++;
			it->action = XFP_ACTION_PERMIT;
			permits[who]++;
		} else {
			errors[who]++;
			last_error[who] = r;
			it->action = XFP_ACTION_BLOCK;
		}
	}
}

static void classify_a(void *ctx, const struct xfp_filter_info *f, struct xfp_classify_item *items, uint32_t n)
{
	(void)ctx;
	(void)f;
	classify(0, items, n);
}

static void classify_b(void *ctx, const struct xfp_filter_info *f, struct xfp_classify_item *items, uint32_t n)
{
	(void)ctx;
	(void)f;
	classify(1, items, n);
}

static int notify(void *ctx, enum xfp_notify_type type, const struct xfp_filter_info *filter)
{
	(void)ctx;
	(void)type;
	(void)filter;
	return 0;
}

static int parse_config(const char *config)
{
	char buf[256];
	char *save = NULL;

	if (strlen(config) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, config);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int who = strncmp(tok, "a=", 2) == 0 ? 0 : strncmp(tok, "b=", 2) == 0 ? 1 : -1;

		if (who < 0 || strlen(tok + 2) >= sizeof(ifnames[0]))
			return -EINVAL;
		strcpy(ifnames[who], tok + 2);
	}
	return ifnames[0][0] && ifnames[1][0] ? 0 : -EINVAL;
}

static int init(const struct xfp_host_api *host_api, struct xfp_host *host, const char *config, void **plugin_ctx)
{
	static const xfp_classify_fn fns[2] = {classify_a, classify_b};
	static const char *const keys[2] = {RDP_KEY_A, RDP_KEY_B};
	int r;

	api = host_api;
	*plugin_ctx = NULL;
	r = parse_config(config);
	if (r) {
		api->log(host, 3, "redirect_probe: config must be a=IFNAME,b=IFNAME");
		return r;
	}
	for (int who = 0; who < 2; who++) {
		struct xfp_callout c = {0};

		r = api->redirect_handle_create(host, &handles[who]);
		if (r)
			return r;
		live_handles++;
		c.key = keys[who];
		c.description = "redirect test";
		c.classify = fns[who];
		c.notify = notify;
		r = api->register_callout(host, &c, NULL);
		if (r)
			return r;
	}
	return 0;
}

static void fini(void *plugin_ctx)
{
	(void)plugin_ctx;
	for (int who = 0; who < 2; who++)
		if (handles[who]) {
			api->redirect_handle_destroy(handles[who]);
			handles[who] = NULL;
			live_handles--;
		}
}

XFP_PLUGIN("redirect_probe", "two redirectors for the redirect records test", init, fini);

__attribute__((visibility("default"))) void rdp_stats(struct rdp_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int who = 0; who < 2; who++) {
		out->classified[who] = classified[who];
		for (int s = 0; s < 4; s++)
			out->states[who][s] = states[who][s];
		out->redirects[who] = redirects[who];
		out->again[who] = again[who];
		out->errors[who] = errors[who];
		out->last_error[who] = last_error[who];
		out->permits[who] = permits[who];
	}
	out->handles = live_handles;
}
