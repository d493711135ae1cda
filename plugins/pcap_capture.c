/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * pcap_capture: an inspection callout that writes every frame it sees to a
 * pcap file. The smallest useful plugin; what it shows of the ABI:
 *
 *  - The export. XFP_PLUGIN() defines the one symbol the daemon looks for
 *    (xfp_plugin, a struct xfp_plugin_info with the ABI version this file
 *    was compiled against). Everything else in the library is static, and
 *    the build hides every other symbol.
 *
 *  - init(api, host, config, &ctx). The plugin links against nothing of
 *    xfp: the host's functions arrive in `api`. It keeps `api` and `host`
 *    in its own context, because fini() and the hooks get only that
 *    context. It parses the load-time config text
 *    (`xfp callout load pcap_capture.so --config file=/tmp/x.pcap`), and on
 *    a bad one logs why at level 3 (error) and returns -EINVAL: loading
 *    fails and nothing stays registered.
 *
 *  - One callout, registered by key ("xfp.sample.pcap") with
 *    XFP_CALLOUT_FLAG_BATCH: classify then gets every frame of a receive
 *    batch that matched the same filter in one call (items[0..count-1],
 *    also chained through frame_next()). The plugin takes its lock and the
 *    time once per call instead of once per frame: that is what batching
 *    buys.
 *
 *  - Inspection: a filter with action CALLOUT_INSPECTION (or
 *    CALLOUT_UNKNOWN) names the key; classify only reads the frame (valid
 *    during the call only: it is copied into the file, never kept) and
 *    answers CONTINUE, "no opinion", so the other filters decide.
 *
 *  - Threads: classify runs on the daemon's workers, several at once, so
 *    the pcap writer sits behind one mutex. notify runs on the control
 *    thread; fini runs after the last classify.
 *
 * Config (comma-separated key=value):
 *    file=PATH     required: the capture file. A valid pcap file there
 *                  (Ethernet, same snaplen) is appended to; a missing or
 *                  empty one is created; anything else fails the load.
 *    snaplen=N     bytes kept per frame, 64..262144 (default 262144);
 *                  longer frames are cut, their wire length recorded.
 *    flush=N       write the buffered frames to the file every N frames
 *                  (default 64, 1 = every frame); fini writes the rest.
 *
 * Read the file with `tcpdump -r PATH -e` or Wireshark.
 */
#define _DEFAULT_SOURCE /* libpcap's headers use u_char and friends */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <pcap/pcap.h>

#include "xfp/callout.h"

#define PCAP_KEY "xfp.sample.pcap"
#define SNAPLEN_MIN 64u
#define SNAPLEN_MAX 262144u
#define FLUSH_DEFAULT 64u

struct capture {
	const struct xfp_host_api *api; /* the host's functions: kept for every hook */
	struct xfp_host *host;
	char path[4096];
	uint32_t snaplen;
	uint32_t flush_every;

	pthread_mutex_t lock; /* guards everything below */
	pcap_t *dead;         /* a "dead" pcap handle: only a link type and a snaplen */
	pcap_dumper_t *dumper;
	uint64_t frames;      /* frames written */
	uint64_t bytes;       /* their wire lengths */
	uint64_t truncated;   /* frames cut to snaplen */
	uint64_t calls;       /* classify calls (frames / calls = mean batch) */
	uint64_t unflushed;   /* frames since the last flush */
	uint64_t write_errors;
};

static void logf_(const struct capture *p, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logf_(const struct capture *p, int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	p->api->log(p->host, level, line);
}

/* "123" -> 123 within [min, max]; 0 on success, -EINVAL otherwise. */
static int parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (*text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* Fills p->path, p->snaplen and p->flush_every from the config text. */
static int parse_config(struct capture *p, const char *config)
{
	char *copy = strdup(config), *save = NULL, *opt;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	p->snaplen = SNAPLEN_MAX;
	p->flush_every = FLUSH_DEFAULT;
	for (opt = strtok_r(copy, ",", &save); opt && !rc; opt = strtok_r(NULL, ",", &save)) {
		char *value = strchr(opt, '=');

		if (!value) {
			logf_(p, 3, PCAP_KEY ": config option '%s' is not key=value", opt);
			rc = -EINVAL;
			break;
		}
		*value++ = '\0';
		if (strcmp(opt, "file") == 0) {
			if (!*value || strlen(value) >= sizeof(p->path)) {
				logf_(p, 3, PCAP_KEY ": file= needs a path (shorter than %zu bytes)",
				      sizeof(p->path));
				rc = -EINVAL;
			} else {
				strcpy(p->path, value);
			}
		} else if (strcmp(opt, "snaplen") == 0) {
			if (parse_u32(value, SNAPLEN_MIN, SNAPLEN_MAX, &p->snaplen)) {
				logf_(p, 3, PCAP_KEY ": snaplen=%s is not a number in %u..%u", value,
				      SNAPLEN_MIN, SNAPLEN_MAX);
				rc = -EINVAL;
			}
		} else if (strcmp(opt, "flush") == 0) {
			if (parse_u32(value, 1, 1000000, &p->flush_every)) {
				logf_(p, 3, PCAP_KEY ": flush=%s is not a number in 1..1000000", value);
				rc = -EINVAL;
			}
		} else {
			logf_(p, 3, PCAP_KEY ": unknown config option '%s' (file=, snaplen=, flush=)", opt);
			rc = -EINVAL;
		}
	}
	free(copy);
	if (!rc && !p->path[0]) {
		logf_(p, 3, PCAP_KEY ": config needs file=PATH (got '%s')", config);
		rc = -EINVAL;
	}
	return rc;
}

/* Opens the capture file: append to a pcap file that is there, else create. */
static int open_dumper(struct capture *p)
{
	struct stat st;
	int exists = stat(p->path, &st) == 0 && st.st_size > 0;

	p->dead = pcap_open_dead(DLT_EN10MB, (int)p->snaplen);
	if (!p->dead) {
		logf_(p, 3, PCAP_KEY ": pcap_open_dead failed");
		return -ENOMEM;
	}
	/* pcap_dump_open_append checks the file header (magic, link type,
	 * snaplen) and refuses a file it would corrupt. */
	p->dumper = exists ? pcap_dump_open_append(p->dead, p->path) : pcap_dump_open(p->dead, p->path);
	if (!p->dumper) {
		/* libpcap's message names the file. */
		logf_(p, 3, PCAP_KEY ": cannot %s: %s", exists ? "append" : "create the file",
		      pcap_geterr(p->dead));
		pcap_close(p->dead);
		p->dead = NULL;
		return -EINVAL;
	}
	logf_(p, 1, PCAP_KEY ": %s %s (snaplen %u, flush every %u frames)",
	      exists ? "appending to" : "writing", p->path, p->snaplen, p->flush_every);
	return 0;
}

/* Runs on the caller's lock. */
static void flush_locked(struct capture *p)
{
	if (pcap_dump_flush(p->dumper) != 0 && p->write_errors++ == 0)
		logf_(p, 2, PCAP_KEY ": writing %s failed (further errors are only counted)", p->path);
	p->unflushed = 0;
}

static void capture_classify(void *callout_ctx, const struct xfp_filter_info *filter,
			  struct xfp_classify_item *items, uint32_t count)
{
	struct capture *p = callout_ctx;
	const struct xfp_host_api *api = p->api;
	struct pcap_pkthdr hdr;
	struct timespec now;
	uint32_t i;

	(void)filter;
	/* One time stamp for the batch: its frames arrived together. */
	clock_gettime(CLOCK_REALTIME, &now);
	hdr.ts.tv_sec = now.tv_sec;
	hdr.ts.tv_usec = now.tv_nsec / 1000;

	pthread_mutex_lock(&p->lock);
	p->calls++;
	for (i = 0; i < count; i++) {
		struct xfp_frame *frame = items[i].frame;
		uint32_t len = api->frame_len(frame);

		hdr.len = len;
		hdr.caplen = len < p->snaplen ? len : p->snaplen;
		pcap_dump((u_char *)p->dumper, &hdr, api->frame_data(frame));
		p->frames++;
		p->bytes += len;
		p->truncated += hdr.caplen < len;
		if (++p->unflushed >= p->flush_every)
			flush_locked(p);
		/* Inspection: no opinion. (PERMIT or BLOCK would count as
		 * CONTINUE anyway on an inspection filter.) */
		items[i].action = XFP_ACTION_CONTINUE;
	}
	pthread_mutex_unlock(&p->lock);
}

static int capture_notify(void *callout_ctx, enum xfp_notify_type type, const struct xfp_filter_info *filter)
{
	struct capture *p = callout_ctx;

	logf_(p, 0, PCAP_KEY ": filter %" PRIu64 " '%s' %s", filter->id, filter->name,
	      type == XFP_NOTIFY_FILTER_ADD ? "added" : "deleted");
	return 0; /* every filter is welcome */
}

static int capture_init(const struct xfp_host_api *api, struct xfp_host *host, const char *config,
		     void **plugin_ctx)
{
	struct capture *p = calloc(1, sizeof(*p));
	struct xfp_callout callout = {
		.key = PCAP_KEY,
		.description = "append every frame to a pcap file",
		.flags = XFP_CALLOUT_FLAG_BATCH,
		.classify = capture_classify,
		.notify = capture_notify,
		.context = NULL,
	};
	int rc;

	if (!p)
		return -ENOMEM;
	p->api = api;
	p->host = host;
	rc = parse_config(p, config ? config : "");
	if (!rc)
		rc = open_dumper(p);
	if (rc) {
		free(p);
		return rc;
	}
	pthread_mutex_init(&p->lock, NULL);
	callout.context = p;
	rc = api->register_callout(host, &callout, NULL);
	if (rc) {
		logf_(p, 3, PCAP_KEY ": register_callout failed (%d)", rc);
		pcap_dump_close(p->dumper);
		pcap_close(p->dead);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return rc;
	}
	*plugin_ctx = p;
	return 0;
}

static void capture_fini(void *plugin_ctx)
{
	struct capture *p = plugin_ctx;

	/* No classify runs any more: no lock needed, but flush through the
	 * same path to count a failed final write. */
	flush_locked(p);
	pcap_dump_close(p->dumper);
	pcap_close(p->dead);
	logf_(p, 1,
	      PCAP_KEY ": %" PRIu64 " frames (%" PRIu64 " bytes) in %" PRIu64 " calls written to %s, %" PRIu64
		       " cut to snaplen, %" PRIu64 " write errors",
	      p->frames, p->bytes, p->calls, p->path, p->truncated, p->write_errors);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

XFP_PLUGIN("pcap_capture", "sample: append every frame a filter hands it to a pcap file", capture_init, capture_fini);
