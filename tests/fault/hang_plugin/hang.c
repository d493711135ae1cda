/*
 * The hung-classify plugin of tests/fault/hung_plugin_test.cpp (issue 6: a
 * plugin that hangs). Two callouts:
 *  - xfp.test.hang blocks every frame, except that a frame carrying the
 *    bytes "XFP-HANG" makes its classify wait until the file named by the
 *    config "gate=PATH" exists (then it permits that frame). The wait is
 *    bounded (60 s) so that a broken test cannot hang CI forever.
 *  - xfp.test.steady permits every frame, at once.
 * Neither is a batch callout: each classify call sees one frame.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "xfp/callout.h"

#define HANG_MARK "XFP-HANG"
#define MAX_WAIT_MS 60000

static const struct xfp_host_api *api;
static struct xfp_host *host;
static char gate[512];

static int carries_mark(struct xfp_frame *frame)
{
	const uint8_t *p = api->frame_data(frame);
	uint32_t n = api->frame_len(frame), m = sizeof HANG_MARK - 1;

	for (uint32_t i = 0; i + m <= n; i++)
		if (!memcmp(p + i, HANG_MARK, m))
			return 1;
	return 0;
}

static void wait_for_gate(void)
{
	struct timespec tick = {0, 5 * 1000 * 1000};
	struct stat st;

	api->log(host, 2, "hang: a marked frame: classify waits for the gate file");
	for (int waited = 0; waited < MAX_WAIT_MS && stat(gate, &st) != 0; waited += 5)
		nanosleep(&tick, NULL);
	api->log(host, 2, "hang: the gate is open: classify returns");
}

static void classify_hang(void *ctx, const struct xfp_filter_info *filter, struct xfp_classify_item *items,
			  uint32_t n)
{
	(void)ctx;
	(void)filter;
	for (uint32_t i = 0; i < n; i++) {
		if (carries_mark(items[i].frame)) {
			wait_for_gate();
			items[i].action = XFP_ACTION_PERMIT;
		} else {
			items[i].action = XFP_ACTION_BLOCK;
		}
	}
}

static void classify_steady(void *ctx, const struct xfp_filter_info *filter, struct xfp_classify_item *items,
			    uint32_t n)
{
	(void)ctx;
	(void)filter;
	for (uint32_t i = 0; i < n; i++)
		items[i].action = XFP_ACTION_PERMIT;
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
	static const struct xfp_callout hang = {
		.key = "xfp.test.hang",
		.description = "blocks; hangs on a frame marked XFP-HANG until the gate file exists",
		.classify = classify_hang,
		.notify = notify,
	};
	static const struct xfp_callout steady = {
		.key = "xfp.test.steady",
		.description = "permits every frame",
		.classify = classify_steady,
		.notify = notify,
	};
	int rc;

	api = a;
	host = h;
	*plugin_ctx = NULL;
	if (strncmp(config, "gate=", 5) != 0 || strlen(config + 5) >= sizeof gate || !config[5]) {
		a->log(h, 3, "hang: the config must be gate=PATH");
		return -EINVAL;
	}
	strcpy(gate, config + 5);
	rc = a->register_callout(h, &hang, NULL);
	return rc ? rc : a->register_callout(h, &steady, NULL);
}

XFP_PLUGIN("hang", "watchdog test: a classify that hangs on demand", init, NULL);
