/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mac_allowlist: a terminating callout that permits frames from the MAC
 * addresses it knows and blocks the rest. What it shows of the ABI:
 *
 *  - A terminating callout. A filter with action CALLOUT_TERMINATING
 *    naming "xfp.sample.mac-allowlist" hands it frames; classify must answer
 *    PERMIT or BLOCK, and WFP arbitration weighs that answer like a soft
 *    filter decision (item->action_right says whether it can still change
 *    the verdict: the callout answers the same either way).
 *
 *  - Reading the parsed fields instead of the frame. item->fields is the
 *    struct xfp_fields the kernel classified on. The MAC checked is
 *    fields->remote_mac: on the inbound layer, where this callout belongs,
 *    that is the frame's source. (On an outbound filter it would be the
 *    destination, the peer being sent to.)
 *
 *  - Shared state under concurrent classify. Workers classify at once, so
 *    the table of MACs is read under a read lock and grown (learn mode)
 *    under the write lock; the counters are C11 atomics.
 *
 *  - One place for the verdict. decide() is the only function that turns
 *    a MAC into PERMIT or BLOCK; asking a user-mode approver through a
 *    message port for unknown MACs will slot in there.
 *
 * Config (comma-separated key=value):
 *    allow=MAC;MAC;...  MACs to permit (aa:bb:cc:dd:ee:ff, ':' or '-')
 *    file=PATH          MACs to permit, one per line; '#' starts a comment
 *    mode=enforce       (default) block every MAC not listed; needs at
 *                       least one MAC from allow= or file=
 *    mode=learn         permit a new MAC and add it to the list, up to
 *                       max=N learned MACs (default 1024); each is logged;
 *                       once the list is full new MACs are blocked. A group
 *                       (multicast or broadcast) source is never learned.
 * Each blocked MAC is logged the first time it is seen (the first 256).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xfp/callout.h"

#define ALLOW_KEY "xfp.sample.mac-allowlist"
#define LEARN_MAX_DEFAULT 1024u
#define LEARN_MAX_LIMIT (1u << 20)
#define LISTED_LIMIT (1u << 20)
#define BLOCKED_LOG_MAX 256u

/* Why a frame got its verdict: one counter each. */
enum reason {
	REASON_LISTED,     /* permit: on the list (configured or learned before) */
	REASON_LEARNED,    /* permit: new, added now (learn mode) */
	REASON_NOT_LISTED, /* block: not on the list (enforce mode) */
	REASON_LIST_FULL,  /* block: new, but max learned MACs reached */
	REASON_GROUP,      /* block: a group address as source (learn mode) */
	REASON_COUNT,
};
static const char *const reason_names[REASON_COUNT] = {
	"listed", "learned", "not listed", "list full", "group source",
};

struct decision {
	uint8_t action; /* XFP_ACTION_PERMIT or XFP_ACTION_BLOCK */
	enum reason reason;
};

/*
 * An open-addressing hash set of MACs (linear probing, never more than half
 * full, no deletion). A slot is 0 when empty, else the 48-bit MAC with its
 * state in the bits above.
 */
enum slot_state { SLOT_EMPTY = 0, SLOT_ALLOWED = 1, SLOT_BLOCKED_SEEN = 2 };
#define MAC_BITS 0xffffffffffffull
#define SLOT(mac, state) ((mac) | ((uint64_t)(state) << 48))
#define SLOT_STATE(slot) ((enum slot_state)((slot) >> 48))

struct mac_set {
	uint64_t *slots;
	uint32_t mask; /* capacity - 1; capacity is a power of two */
	uint32_t used;
};

struct allowlist {
	const struct xfp_host_api *api;
	struct xfp_host *host;
	int learn;          /* mode=learn */
	uint32_t learn_max; /* max=N */

	pthread_rwlock_t lock; /* guards set, learned, blocked_seen */
	struct mac_set set;
	uint32_t listed;       /* configured MACs */
	uint32_t learned;      /* MACs added in learn mode */
	uint32_t blocked_seen; /* blocked MACs remembered (and logged) */

	atomic_uint_fast64_t count[REASON_COUNT];
};

static void logf_(const struct allowlist *a, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logf_(const struct allowlist *a, int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	a->api->log(a->host, level, line);
}

/* ---- MACs ------------------------------------------------------------------ */

static uint64_t mac_to_u64(const uint8_t mac[6])
{
	uint64_t v = 0;

	for (int i = 0; i < 6; i++)
		v = v << 8 | mac[i];
	return v;
}

static void format_mac(uint64_t mac, char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", (unsigned)(mac >> 40) & 0xff,
		 (unsigned)(mac >> 32) & 0xff, (unsigned)(mac >> 24) & 0xff, (unsigned)(mac >> 16) & 0xff,
		 (unsigned)(mac >> 8) & 0xff, (unsigned)mac & 0xff);
}

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

/* Exactly "xx:xx:xx:xx:xx:xx" (or with '-'). 0 or -EINVAL. */
static int parse_mac(const char *text, uint64_t *out)
{
	uint64_t v = 0;

	if (strlen(text) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		const char *p = text + 3 * i;
		int hi = hex_digit(p[0]), lo = hex_digit(p[1]);

		if (hi < 0 || lo < 0 || (i < 5 && p[2] != ':' && p[2] != '-'))
			return -EINVAL;
		v = v << 8 | (uint64_t)(hi << 4 | lo);
	}
	*out = v;
	return 0;
}

/* The I/G bit: multicast or broadcast. */
static int mac_is_group(uint64_t mac)
{
	return (mac >> 40) & 1;
}

/* ---- the set --------------------------------------------------------------- */

static int set_init(struct mac_set *s, uint32_t max_entries)
{
	uint32_t cap = 16;

	while (cap < 2 * (uint64_t)max_entries)
		cap <<= 1;
	s->slots = calloc(cap, sizeof(*s->slots));
	s->mask = cap - 1;
	s->used = 0;
	return s->slots ? 0 : -ENOMEM;
}

/* The slot that holds `mac`, or the empty slot where it would go. */
static uint64_t *set_slot(const struct mac_set *s, uint64_t mac)
{
	uint32_t i = (uint32_t)((mac * 0x9e3779b97f4a7c15ull) >> 32) & s->mask;

	while (s->slots[i] && (s->slots[i] & MAC_BITS) != mac)
		i = (i + 1) & s->mask;
	return &s->slots[i];
}

static enum slot_state lookup(struct allowlist *a, uint64_t mac)
{
	enum slot_state state;

	pthread_rwlock_rdlock(&a->lock);
	state = SLOT_STATE(*set_slot(&a->set, mac));
	pthread_rwlock_unlock(&a->lock);
	return state;
}

/* ---- the verdict ----------------------------------------------------------- */

/* Learn mode, a MAC not on the list: add it while there is room. */
static struct decision learn(struct allowlist *a, uint64_t mac)
{
	struct decision d = {XFP_ACTION_BLOCK, REASON_LIST_FULL};
	uint64_t *slot;

	pthread_rwlock_wrlock(&a->lock);
	slot = set_slot(&a->set, mac);
	if (SLOT_STATE(*slot) == SLOT_ALLOWED) {
		d = (struct decision){XFP_ACTION_PERMIT, REASON_LISTED}; /* another worker was first */
	} else if (a->learned < a->learn_max) {
		a->set.used += *slot == 0;
		*slot = SLOT(mac, SLOT_ALLOWED);
		a->learned++;
		d = (struct decision){XFP_ACTION_PERMIT, REASON_LEARNED};
	}
	pthread_rwlock_unlock(&a->lock);
	return d;
}

/*
 * The only place where a MAC becomes a verdict. (A user-mode approver asked
 * through a message port for MACs not on the list goes here.)
 */
static struct decision decide(struct allowlist *a, uint64_t mac)
{
	if (lookup(a, mac) == SLOT_ALLOWED)
		return (struct decision){XFP_ACTION_PERMIT, REASON_LISTED};
	if (!a->learn)
		return (struct decision){XFP_ACTION_BLOCK, REASON_NOT_LISTED};
	if (mac_is_group(mac))
		return (struct decision){XFP_ACTION_BLOCK, REASON_GROUP};
	return learn(a, mac);
}

/* Remembers a blocked MAC: 1 the first time it is seen (log it), else 0. */
static int first_block(struct allowlist *a, uint64_t mac)
{
	uint64_t *slot;
	int first = 0;

	pthread_rwlock_rdlock(&a->lock);
	if (a->blocked_seen >= BLOCKED_LOG_MAX || SLOT_STATE(*set_slot(&a->set, mac)) != SLOT_EMPTY) {
		pthread_rwlock_unlock(&a->lock);
		return 0;
	}
	pthread_rwlock_unlock(&a->lock);

	pthread_rwlock_wrlock(&a->lock);
	slot = set_slot(&a->set, mac);
	if (*slot == 0 && a->blocked_seen < BLOCKED_LOG_MAX) {
		*slot = SLOT(mac, SLOT_BLOCKED_SEEN);
		a->set.used++;
		first = ++a->blocked_seen;
	}
	pthread_rwlock_unlock(&a->lock);
	return first;
}

static void allow_classify(void *callout_ctx, const struct xfp_filter_info *filter,
			   struct xfp_classify_item *items, uint32_t count)
{
	struct allowlist *a = callout_ctx;
	char text[18];

	(void)filter;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t mac = mac_to_u64(items[i].fields->remote_mac);
		struct decision d = decide(a, mac);
		int first;

		items[i].action = d.action;
		atomic_fetch_add_explicit(&a->count[d.reason], 1, memory_order_relaxed);
		if (d.reason == REASON_LEARNED) {
			format_mac(mac, text);
			logf_(a, 1, ALLOW_KEY ": learned %s", text);
		} else if (d.action == XFP_ACTION_BLOCK && (first = first_block(a, mac))) {
			format_mac(mac, text);
			logf_(a, 2, ALLOW_KEY ": blocked %s: %s (logged once%s)", text, reason_names[d.reason],
			      first == BLOCKED_LOG_MAX ? "; no further new MACs are logged" : "");
		}
	}
}

static int allow_notify(void *callout_ctx, enum xfp_notify_type type, const struct xfp_filter_info *filter)
{
	struct allowlist *a = callout_ctx;

	logf_(a, 0, ALLOW_KEY ": filter %" PRIu64 " '%s' on layer %u %s", filter->id, filter->name,
	      filter->layer, type == XFP_NOTIFY_FILTER_ADD ? "added" : "deleted");
	return 0;
}

/* ---- config ------------------------------------------------------------------ */

/* The MACs of allow= and file=, before the set is sized. */
struct mac_list {
	uint64_t *v;
	uint32_t n, cap;
};

static int list_add(struct mac_list *l, uint64_t mac)
{
	if (l->n == l->cap) {
		uint32_t cap = l->cap ? 2 * l->cap : 16;
		uint64_t *v = cap <= LISTED_LIMIT ? realloc(l->v, cap * sizeof(*v)) : NULL;

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = mac;
	return 0;
}

static int parse_allow(struct allowlist *a, char *text, struct mac_list *l)
{
	char *save = NULL;
	uint64_t mac;

	for (char *m = strtok_r(text, ";", &save); m; m = strtok_r(NULL, ";", &save)) {
		if (parse_mac(m, &mac)) {
			logf_(a, 3, ALLOW_KEY ": allow=: '%s' is not a MAC address (aa:bb:cc:dd:ee:ff)", m);
			return -EINVAL;
		}
		if (list_add(l, mac))
			return -ENOMEM;
	}
	return 0;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		*--end = '\0';
	return s;
}

static int parse_file(struct allowlist *a, const char *path, struct mac_list *l)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t size = 0;
	unsigned lineno = 0;
	uint64_t mac;
	int rc = 0;

	if (!f) {
		logf_(a, 3, ALLOW_KEY ": file=%s: %s", path, strerror(errno));
		return -EINVAL;
	}
	while (!rc && getline(&line, &size, f) >= 0) {
		char *hash = strchr(line, '#'), *text;

		lineno++;
		if (hash)
			*hash = '\0';
		text = trim(line);
		if (!*text)
			continue;
		if (parse_mac(text, &mac)) {
			logf_(a, 3, ALLOW_KEY ": %s:%u: '%s' is not a MAC address", path, lineno, text);
			rc = -EINVAL;
		} else {
			rc = list_add(l, mac);
		}
	}
	free(line);
	fclose(f);
	return rc;
}

static int parse_config(struct allowlist *a, const char *config, struct mac_list *l)
{
	char *copy = strdup(config), *save = NULL;
	int rc = 0, have_max = 0, have_source = 0;
	unsigned long long v;
	char *end;

	if (!copy)
		return -ENOMEM;
	a->learn_max = LEARN_MAX_DEFAULT;
	for (char *opt = strtok_r(copy, ",", &save); opt && !rc; opt = strtok_r(NULL, ",", &save)) {
		char *value = strchr(opt, '=');

		if (!value) {
			logf_(a, 3, ALLOW_KEY ": config option '%s' is not key=value", opt);
			rc = -EINVAL;
			break;
		}
		*value++ = '\0';
		if (strcmp(opt, "allow") == 0) {
			rc = parse_allow(a, value, l);
			have_source = 1;
		} else if (strcmp(opt, "file") == 0) {
			rc = parse_file(a, value, l);
			have_source = 1;
		} else if (strcmp(opt, "mode") == 0) {
			if (strcmp(value, "learn") == 0 || strcmp(value, "enforce") == 0) {
				a->learn = value[0] == 'l';
			} else {
				logf_(a, 3, ALLOW_KEY ": mode=%s: want learn or enforce", value);
				rc = -EINVAL;
			}
		} else if (strcmp(opt, "max") == 0) {
			errno = 0;
			v = strtoull(value, &end, 10);
			if (*value < '0' || *value > '9' || errno || *end || v < 1 || v > LEARN_MAX_LIMIT) {
				logf_(a, 3, ALLOW_KEY ": max=%s is not a number in 1..%u", value, LEARN_MAX_LIMIT);
				rc = -EINVAL;
			} else {
				a->learn_max = (uint32_t)v;
			}
			have_max = 1;
		} else {
			logf_(a, 3, ALLOW_KEY ": unknown config option '%s' (allow=, file=, mode=, max=)", opt);
			rc = -EINVAL;
		}
	}
	free(copy);
	if (rc)
		return rc;
	if (have_max && !a->learn) {
		logf_(a, 3, ALLOW_KEY ": max= only applies to mode=learn");
		return -EINVAL;
	}
	if (!a->learn && l->n == 0) {
		logf_(a, 3, ALLOW_KEY ": mode=enforce with no MAC would block everything: give allow=MAC;... or %s",
		      have_source ? "a file with MACs in it" : "file=PATH");
		return -EINVAL;
	}
	return 0;
}

/* ---- load and unload --------------------------------------------------------- */

static void allow_free(struct allowlist *a)
{
	free(a->set.slots);
	free(a);
}

static int allow_init(const struct xfp_host_api *api, struct xfp_host *host, const char *config,
		      void **plugin_ctx)
{
	struct allowlist *a = calloc(1, sizeof(*a));
	struct mac_list l = {0};
	struct xfp_callout callout = {
		.key = ALLOW_KEY,
		.description = "permit frames from listed source MACs, block the rest",
		.classify = allow_classify,
		.notify = allow_notify,
	};
	int rc;

	if (!a)
		return -ENOMEM;
	a->api = api;
	a->host = host;
	for (int i = 0; i < REASON_COUNT; i++)
		atomic_init(&a->count[i], 0);
	rc = parse_config(a, config ? config : "", &l);
	if (!rc)
		rc = set_init(&a->set, l.n + (a->learn ? a->learn_max : 0) + BLOCKED_LOG_MAX);
	for (uint32_t i = 0; !rc && i < l.n; i++) {
		uint64_t *slot = set_slot(&a->set, l.v[i]);

		if (*slot == 0) { /* duplicates count once */
			*slot = SLOT(l.v[i], SLOT_ALLOWED);
			a->set.used++;
			a->listed++;
		}
	}
	free(l.v);
	if (rc) {
		allow_free(a);
		return rc;
	}
	pthread_rwlock_init(&a->lock, NULL);
	callout.context = a;
	rc = api->register_callout(host, &callout, NULL);
	if (rc) {
		logf_(a, 3, ALLOW_KEY ": register_callout failed (%d)", rc);
		pthread_rwlock_destroy(&a->lock);
		allow_free(a);
		return rc;
	}
	logf_(a, 1, ALLOW_KEY ": %s mode, %u MACs listed%s", a->learn ? "learn" : "enforce", a->listed,
	      a->learn ? ", learning new ones" : "");
	*plugin_ctx = a;
	return 0;
}

static void allow_fini(void *plugin_ctx)
{
	struct allowlist *a = plugin_ctx;
	uint64_t c[REASON_COUNT];

	for (int i = 0; i < REASON_COUNT; i++)
		c[i] = atomic_load(&a->count[i]);
	logf_(a, 1,
	      ALLOW_KEY ": permitted %" PRIu64 " %s, %" PRIu64 " %s; blocked %" PRIu64 " %s, %" PRIu64
			" %s, %" PRIu64 " %s; %u MACs listed, %u learned, %u blocked MACs seen",
	      c[0], reason_names[0], c[1], reason_names[1], c[2], reason_names[2], c[3], reason_names[3],
	      c[4], reason_names[4], a->listed, a->learned, a->blocked_seen);
	pthread_rwlock_destroy(&a->lock);
	allow_free(a);
}

XFP_PLUGIN("mac_allowlist", "sample: permit listed source MACs (or learn them), block the rest", allow_init,
	   allow_fini);
