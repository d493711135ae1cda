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
 *    a MAC into PERMIT or BLOCK (or, with an approver, into "ask").
 *
 *  - Asking user mode through a message port (approver=PORT), the
 *    FltSendMessage pattern: a frame from a source MAC that is neither on
 *    the list nor decided yet is ABSORBED (xfp neither delivers nor drops
 *    it) and waits; a thread of the plugin's own asks the approver (the
 *    first client connected to the port, e.g. `xfp port listen PORT
 *    --interactive`) with a struct xfp_mac_approval_request and waits up to
 *    timeout_ms for a struct xfp_mac_approval_verdict
 *    (include/xfp/sample_mac_approval.h). The answer, or default= when the
 *    wait times out, no approver is connected or the answer is malformed,
 *    puts the MAC in the allowed or the denied set, and the waiting frames
 *    are re-injected into the receive path (inject_receive, freed in the
 *    completion) or freed. port_send blocks, so it never runs in classify.
 *    At most max_waiting frames wait in all: more are blocked and counted.
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
 *    approver=PORT      (enforce mode) ask the client of message port PORT
 *                       about each new source MAC; the list may be empty.
 *                       With it: timeout_ms=N (default 5000, 1..3600000),
 *                       default=permit|block (default block: the verdict
 *                       on timeout or without an approver), max_waiting=N
 *                       frames held at once (default 256), max=N decided
 *                       MACs remembered (default 1024; beyond, new MACs get
 *                       the default verdict without asking).
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
#include "xfp/sample_mac_approval.h"

#define ALLOW_KEY "xfp.sample.mac-allowlist"
#define LEARN_MAX_DEFAULT 1024u
#define LEARN_MAX_LIMIT (1u << 20)
#define LISTED_LIMIT (1u << 20)
#define BLOCKED_LOG_MAX 256u
#define APPROVER_TIMEOUT_DEFAULT_MS 5000u
#define APPROVER_TIMEOUT_MAX_MS 3600000u
#define APPROVER_WAITING_DEFAULT 256u
#define APPROVER_WAITING_LIMIT 65536u
#define APPROVER_CLIENTS 4u /* connections the port accepts; the oldest is asked */

/* Why a frame got its verdict: one counter each. */
enum reason {
	REASON_LISTED,     /* permit: on the list (configured or learned before) */
	REASON_LEARNED,    /* permit: new, added now (learn mode) */
	REASON_NOT_LISTED, /* block: not on the list (enforce mode) */
	REASON_LIST_FULL,  /* block: new, but max learned MACs reached */
	REASON_GROUP,      /* block: a group address as source (learn mode) */
	REASON_APPROVED,   /* permit: the approver (or the default) allowed the MAC */
	REASON_DENIED,     /* block: the approver (or the default) denied the MAC */
	REASON_WAITING,    /* absorbed: waiting for the approver's answer */
	REASON_WAIT_FULL,  /* block: a new MAC, but max_waiting frames wait already */
	REASON_COUNT,
};
static const char *const reason_names[REASON_COUNT] = {
	"listed", "learned", "not listed", "list full", "group source", "approved", "denied",
	"waiting", "waiting full",
};

struct decision {
	uint8_t action; /* XFP_ACTION_PERMIT or XFP_ACTION_BLOCK (REASON_WAITING: ask) */
	enum reason reason;
};

/*
 * An open-addressing hash set of MACs (linear probing, never more than half
 * full, no deletion). A slot is 0 when empty, else the 48-bit MAC with its
 * state in the bits above.
 */
enum slot_state { SLOT_EMPTY = 0, SLOT_ALLOWED = 1, SLOT_BLOCKED_SEEN = 2, SLOT_APPROVED = 3, SLOT_DENIED = 4 };
#define MAC_BITS 0xffffffffffffull
#define SLOT(mac, state) ((mac) | ((uint64_t)(state) << 48))
#define SLOT_STATE(slot) ((enum slot_state)((slot) >> 48))

struct mac_set {
	uint64_t *slots;
	uint32_t mask; /* capacity - 1; capacity is a power of two */
	uint32_t used;
};

/* A frame waiting for the approver (a copy: see hold()). */
struct held {
	struct xfp_frame *frame;
	uint32_t iface;
	struct held *next;
};

/* A MAC the approver is asked about, with its waiting frames. */
struct pending {
	uint64_t mac;
	uint16_t vlan;
	uint32_t iface, ifindex;
	uint32_t frames;
	struct held *head, **tail;
	struct pending *next;
};

struct approver {
	char *port_name;
	uint32_t timeout_ms;
	uint8_t default_action; /* XFP_ACTION_PERMIT or _BLOCK */
	uint32_t max_waiting;
	uint32_t max_decided;
	struct xfp_port *port;
	struct xfp_injection_handle *inject;

	pthread_mutex_t mu; /* everything below; taken before the set's lock, never after */
	pthread_cond_t cv;
	struct pending *queue, **queue_tail; /* MACs to ask about, oldest first */
	uint32_t waiting;                    /* frames held in all */
	uint32_t decided;                    /* MACs approved or denied */
	uint64_t clients[APPROVER_CLIENTS];  /* connected, oldest first */
	uint32_t nclients;
	int stopping;
	pthread_t thread;
	int thread_started;

	atomic_uint_fast64_t asked, answered_permit, answered_block, timeouts, no_approver, bad_answers,
		reinjected, inject_failed, freed;
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
	struct approver *ap; /* approver=PORT; NULL in plain allow-list mode */
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
 * The only place where a MAC becomes a verdict. With an approver, a MAC
 * neither listed nor decided yet becomes REASON_WAITING: ask (see hold()).
 */
static struct decision decide(struct allowlist *a, uint64_t mac)
{
	enum slot_state state = lookup(a, mac);

	if (state == SLOT_ALLOWED)
		return (struct decision){XFP_ACTION_PERMIT, REASON_LISTED};
	if (a->ap) {
		if (state == SLOT_APPROVED)
			return (struct decision){XFP_ACTION_PERMIT, REASON_APPROVED};
		if (state == SLOT_DENIED)
			return (struct decision){XFP_ACTION_BLOCK, REASON_DENIED};
		return (struct decision){XFP_ACTION_BLOCK, REASON_WAITING};
	}
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

/* ---- the approver (approver=PORT) ----------------------------------------- */

static struct decision default_decision(const struct approver *ap)
{
	return ap->default_action == XFP_ACTION_PERMIT ? (struct decision){XFP_ACTION_PERMIT, REASON_APPROVED}
						       : (struct decision){XFP_ACTION_BLOCK, REASON_LIST_FULL};
}

/*
 * A frame from a MAC not decided yet: keep a copy in the MAC's pending entry
 * (made on first sight and queued for the approver thread) and absorb the
 * frame. REASON_WAITING when held; otherwise the verdict to apply now.
 *
 * Why a copy: an absorbed frame must not reach another thread before
 * classify has returned (its bytes are still in the receive ring), and the
 * thread may have its answer before that. The copy is ours at once; the
 * original is absorbed and its reference let go here, which the ABI allows.
 * Only frames of undecided MACs pay for it.
 */
static struct decision hold(struct allowlist *a, struct xfp_classify_item *item, uint64_t mac)
{
	struct approver *ap = a->ap;
	struct decision d = {XFP_ACTION_BLOCK, REASON_WAITING};
	struct pending *p = NULL;
	struct held *h = NULL;
	enum slot_state state;
	uint32_t npending = 0;

	pthread_mutex_lock(&ap->mu);
	/* Decided while we looked? The thread records the verdict before it
	 * takes the waiting frames, both under ap->mu for us. */
	state = lookup(a, mac);
	if (state == SLOT_APPROVED || state == SLOT_DENIED) {
		pthread_mutex_unlock(&ap->mu);
		return state == SLOT_APPROVED ? (struct decision){XFP_ACTION_PERMIT, REASON_APPROVED}
					      : (struct decision){XFP_ACTION_BLOCK, REASON_DENIED};
	}
	for (struct pending *q = ap->queue; q; q = q->next) {
		npending++;
		if (q->mac == mac)
			p = q;
	}
	if (ap->waiting >= ap->max_waiting) {
		d = (struct decision){XFP_ACTION_BLOCK, REASON_WAIT_FULL};
	} else if (!p && ap->decided + npending >= ap->max_decided) {
		d = default_decision(ap); /* no room to remember another MAC: don't ask */
	} else {
		h = calloc(1, sizeof(*h));
		if (h)
			h->frame = a->api->frame_clone(item->frame);
		if (!p && h && h->frame) {
			p = calloc(1, sizeof(*p));
			if (p) {
				p->mac = mac;
				p->vlan = item->fields->vlan;
				p->iface = item->meta->iface;
				p->ifindex = item->meta->ifindex;
				p->tail = &p->head;
				*ap->queue_tail = p;
				ap->queue_tail = &p->next;
				pthread_cond_signal(&ap->cv);
			}
		}
		if (!p || !h || !h->frame) {
			if (h)
				a->api->frame_free(h->frame);
			free(h);
			d = (struct decision){XFP_ACTION_BLOCK, REASON_WAIT_FULL}; /* out of memory */
		} else {
			h->iface = item->meta->iface;
			*p->tail = h;
			p->tail = &h->next;
			p->frames++;
			ap->waiting++;
		}
	}
	pthread_mutex_unlock(&ap->mu);
	if (d.reason == REASON_WAITING) {
		item->flags |= XFP_CLASSIFY_ABSORB;
		a->api->frame_free(item->frame); /* our reference to the original: the copy waits */
	}
	return d;
}

/* Remembers the approver's verdict for `mac`. */
static void record(struct allowlist *a, uint64_t mac, uint8_t action)
{
	uint64_t *slot;

	pthread_rwlock_wrlock(&a->lock);
	slot = set_slot(&a->set, mac);
	a->set.used += *slot == 0;
	if (SLOT_STATE(*slot) != SLOT_ALLOWED)
		*slot = SLOT(mac, action == XFP_ACTION_PERMIT ? SLOT_APPROVED : SLOT_DENIED);
	pthread_rwlock_unlock(&a->lock);
}

static void reinject_done(void *completion_ctx, struct xfp_frame *frame, int status)
{
	struct allowlist *a = completion_ctx;

	if (status != 0)
		atomic_fetch_add(&a->ap->inject_failed, 1);
	a->api->frame_free(frame);
}

/* Asks the approver about one MAC: its verdict, or the default. Blocks up
 * to timeout_ms (port_send: FltSendMessage with a relative timeout). */
static uint8_t ask(struct allowlist *a, const struct xfp_mac_approval_request *req, int have_client,
		   uint64_t client)
{
	struct approver *ap = a->ap;
	struct xfp_mac_approval_verdict v = {0};
	uint32_t len = sizeof(v); /* exactly the payload the client replies with: no header, no padding */
	int64_t timeout = -(int64_t)ap->timeout_ms * 1000000; /* negative: relative */
	char text[18];
	int rc;

	format_mac(mac_to_u64(req->mac), text);
	if (!have_client) {
		atomic_fetch_add(&ap->no_approver, 1);
		logf_(a, 2, ALLOW_KEY ": no approver on port %s: %s %s by default", ap->port_name, text,
		      ap->default_action == XFP_ACTION_PERMIT ? "permitted" : "blocked");
		return ap->default_action;
	}
	atomic_fetch_add(&ap->asked, 1);
	rc = a->api->port_send(ap->port, client, req, sizeof(*req), &v, &len, &timeout);
	if (rc == 0 && len == sizeof(v) && v.magic == XFP_MAC_APPROVAL_MAGIC &&
	    (v.verdict == XFP_MAC_VERDICT_PERMIT || v.verdict == XFP_MAC_VERDICT_BLOCK)) {
		int permit = v.verdict == XFP_MAC_VERDICT_PERMIT;

		atomic_fetch_add(permit ? &ap->answered_permit : &ap->answered_block, 1);
		logf_(a, 1, ALLOW_KEY ": approver %s %s", permit ? "permits" : "denies", text);
		return permit ? XFP_ACTION_PERMIT : XFP_ACTION_BLOCK;
	}
	if (rc == XFP_STATUS_TIMEOUT) {
		atomic_fetch_add(&ap->timeouts, 1);
		logf_(a, 2, ALLOW_KEY ": approver did not answer about %s within %u ms: %s by default", text,
		      ap->timeout_ms, ap->default_action == XFP_ACTION_PERMIT ? "permitted" : "blocked");
	} else if (rc == XFP_STATUS_PORT_DISCONNECTED || rc == XFP_STATUS_SHUTTING_DOWN) {
		atomic_fetch_add(&ap->no_approver, 1);
		logf_(a, 2, ALLOW_KEY ": the approver went away while asked about %s: %s by default", text,
		      ap->default_action == XFP_ACTION_PERMIT ? "permitted" : "blocked");
	} else {
		atomic_fetch_add(&ap->bad_answers, 1);
		logf_(a, 2, ALLOW_KEY ": bad answer about %s (status %d, %u bytes; want a %zu-byte verdict): %s by default",
		      text, rc, len, sizeof(v), ap->default_action == XFP_ACTION_PERMIT ? "permitted" : "blocked");
	}
	return ap->default_action;
}

static void *approver_main(void *arg)
{
	struct allowlist *a = arg;
	struct approver *ap = a->ap;

	pthread_mutex_lock(&ap->mu);
	for (;;) {
		struct pending *p;
		struct xfp_mac_approval_request req = {0};
		uint64_t client;
		int have_client;
		uint8_t action;
		struct held *h, *next;

		/* The oldest MAC not asked about: the head (answered ones leave). */
		while (!ap->stopping && !ap->queue)
			pthread_cond_wait(&ap->cv, &ap->mu);
		if (ap->stopping)
			break;
		p = ap->queue;
		req.magic = XFP_MAC_APPROVAL_MAGIC;
		for (int i = 0; i < 6; i++)
			req.mac[i] = (uint8_t)(p->mac >> (40 - 8 * i));
		req.vlan = p->vlan;
		req.iface = p->iface;
		req.ifindex = p->ifindex;
		req.waiting = p->frames;
		have_client = ap->nclients > 0;
		client = have_client ? ap->clients[0] : 0;
		pthread_mutex_unlock(&ap->mu);

		action = ask(a, &req, have_client, client);

		pthread_mutex_lock(&ap->mu);
		if (ap->stopping)
			break; /* fini frees what waits */
		record(a, p->mac, action);
		ap->queue = p->next;
		if (!ap->queue)
			ap->queue_tail = &ap->queue;
		ap->waiting -= p->frames;
		ap->decided++;
		pthread_mutex_unlock(&ap->mu);

		for (h = p->head; h; h = next) {
			next = h->next;
			if (action == XFP_ACTION_PERMIT &&
			    a->api->inject_receive(ap->inject, h->iface, h->frame, 0, reinject_done, a) == 0) {
				atomic_fetch_add(&ap->reinjected, 1);
			} else {
				if (action == XFP_ACTION_PERMIT)
					atomic_fetch_add(&ap->inject_failed, 1);
				else
					atomic_fetch_add(&ap->freed, 1);
				a->api->frame_free(h->frame);
			}
			free(h);
		}
		free(p);
		pthread_mutex_lock(&ap->mu);
	}
	pthread_mutex_unlock(&ap->mu);
	return NULL;
}

/* The port's callbacks (on the port's thread): track who may be asked. */
static int approver_connect(void *port_ctx, uint64_t client, const void *context, uint32_t context_len,
			    void **connection_cookie)
{
	struct allowlist *a = port_ctx;
	struct approver *ap = a->ap;
	int rc = -EBUSY;

	(void)context;
	(void)context_len;
	(void)connection_cookie;
	pthread_mutex_lock(&ap->mu);
	if (ap->nclients < APPROVER_CLIENTS) {
		ap->clients[ap->nclients++] = client;
		rc = 0;
	}
	pthread_mutex_unlock(&ap->mu);
	if (rc == 0)
		logf_(a, 1, ALLOW_KEY ": approver client %" PRIu64 " connected to port %s", client, ap->port_name);
	return rc;
}

static void approver_disconnect(void *port_ctx, uint64_t client, void *connection_cookie)
{
	struct allowlist *a = port_ctx;
	struct approver *ap = a->ap;

	(void)connection_cookie;
	pthread_mutex_lock(&ap->mu);
	for (uint32_t i = 0; i < ap->nclients; i++) {
		if (ap->clients[i] == client) {
			memmove(&ap->clients[i], &ap->clients[i + 1], (ap->nclients - i - 1) * sizeof(uint64_t));
			ap->nclients--;
			break;
		}
	}
	pthread_mutex_unlock(&ap->mu);
	logf_(a, 1, ALLOW_KEY ": approver client %" PRIu64 " disconnected from port %s", client, ap->port_name);
}

static const struct xfp_port_ops approver_ops = {
	.connect = approver_connect,
	.disconnect = approver_disconnect,
	.message = NULL, /* clients' xfp_port_send() gets -ENOTSUP */
};

static void approver_free(struct approver *ap)
{
	if (!ap)
		return;
	free(ap->port_name);
	free(ap);
}

/* Port, injection handle, thread. 0 or a negative code (after a log line). */
static int approver_start(struct allowlist *a)
{
	struct approver *ap = a->ap;
	int rc;

	pthread_mutex_init(&ap->mu, NULL);
	pthread_cond_init(&ap->cv, NULL);
	ap->queue_tail = &ap->queue;
	rc = a->api->injection_handle_create(a->host, XFP_INJECTION_L2, &ap->inject);
	if (rc) {
		logf_(a, 3, ALLOW_KEY ": approver: injection_handle_create failed (%d)", rc);
		goto fail;
	}
	rc = a->api->port_create(a->host, ap->port_name, APPROVER_CLIENTS, &approver_ops, a, &ap->port);
	if (rc) {
		logf_(a, 3, ALLOW_KEY ": approver=%s: port_create failed (%d%s%s)", ap->port_name, rc,
		      rc < 0 && rc > -4096 ? ": " : "", rc < 0 && rc > -4096 ? strerror(-rc) : "");
		goto fail_handle;
	}
	rc = -pthread_create(&ap->thread, NULL, approver_main, a);
	if (rc) {
		logf_(a, 3, ALLOW_KEY ": approver: pthread_create failed (%d)", rc);
		goto fail_port;
	}
	ap->thread_started = 1;
	return 0;
fail_port:
	a->api->port_close(ap->port);
fail_handle:
	a->api->injection_handle_destroy(ap->inject);
fail:
	pthread_cond_destroy(&ap->cv);
	pthread_mutex_destroy(&ap->mu);
	return rc;
}

/* Unloading (no classify runs): close the port first, which releases a
 * port_send in progress with XFP_STATUS_SHUTTING_DOWN, so the join below
 * cannot wait for a timeout. Frames still waiting are freed. */
static void approver_stop(struct allowlist *a)
{
	struct approver *ap = a->ap;
	struct pending *p, *pn;
	struct held *h, *hn;
	uint64_t dropped = 0;

	pthread_mutex_lock(&ap->mu);
	ap->stopping = 1;
	pthread_cond_broadcast(&ap->cv);
	pthread_mutex_unlock(&ap->mu);
	a->api->port_close(ap->port);
	if (ap->thread_started)
		pthread_join(ap->thread, NULL);
	for (p = ap->queue; p; p = pn) {
		pn = p->next;
		for (h = p->head; h; h = hn) {
			hn = h->next;
			a->api->frame_free(h->frame);
			free(h);
			dropped++;
		}
		free(p);
	}
	ap->queue = NULL;
	a->api->injection_handle_destroy(ap->inject); /* completes re-injections still pending */
	logf_(a, 1,
	      ALLOW_KEY ": approver on port %s: asked %" PRIu64 ", permitted %" PRIu64 ", denied %" PRIu64
			", %" PRIu64 " timed out, %" PRIu64 " without approver, %" PRIu64 " bad answers; %" PRIu64
			" frames re-injected, %" PRIu64 " failed, %" PRIu64 " freed, %" PRIu64 " dropped at unload",
	      ap->port_name, (uint64_t)atomic_load(&ap->asked), (uint64_t)atomic_load(&ap->answered_permit),
	      (uint64_t)atomic_load(&ap->answered_block), (uint64_t)atomic_load(&ap->timeouts),
	      (uint64_t)atomic_load(&ap->no_approver), (uint64_t)atomic_load(&ap->bad_answers),
	      (uint64_t)atomic_load(&ap->reinjected), (uint64_t)atomic_load(&ap->inject_failed),
	      (uint64_t)atomic_load(&ap->freed), dropped);
	pthread_cond_destroy(&ap->cv);
	pthread_mutex_destroy(&ap->mu);
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

		if (d.reason == REASON_WAITING)
			d = hold(a, &items[i], mac);
		if (d.reason == REASON_WAITING) {
			atomic_fetch_add_explicit(&a->count[d.reason], 1, memory_order_relaxed);
			continue; /* absorbed: the answer decides */
		}

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

/* A number in lo..hi for key=; 0, or -EINVAL after a log line. */
static int parse_u32(struct allowlist *a, const char *key, const char *value, uint32_t lo, uint32_t hi, uint32_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(value, &end, 10);
	if (*value < '0' || *value > '9' || errno || *end || v < lo || v > hi) {
		logf_(a, 3, ALLOW_KEY ": %s=%s is not a number in %u..%u", key, value, lo, hi);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

static int valid_port_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 63 || name[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* approver=, timeout_ms=, default=, max_waiting=: 1 when `opt` was one of them. */
static int parse_approver_option(struct allowlist *a, const char *opt, const char *value, int *rc)
{
	struct approver *ap = a->ap;

	if (strcmp(opt, "approver") != 0 && strcmp(opt, "timeout_ms") != 0 && strcmp(opt, "default") != 0 &&
	    strcmp(opt, "max_waiting") != 0)
		return 0;
	if (!ap) {
		ap = a->ap = calloc(1, sizeof(*ap));
		if (!ap) {
			*rc = -ENOMEM;
			return 1;
		}
		ap->timeout_ms = APPROVER_TIMEOUT_DEFAULT_MS;
		ap->default_action = XFP_ACTION_BLOCK;
		ap->max_waiting = APPROVER_WAITING_DEFAULT;
		ap->max_decided = LEARN_MAX_DEFAULT;
	}
	if (strcmp(opt, "approver") == 0) {
		if (!valid_port_name(value)) {
			logf_(a, 3, ALLOW_KEY ": approver=%s: a port name is 1-63 letters, digits, '.', '_' or '-'", value);
			*rc = -EINVAL;
		} else {
			free(ap->port_name);
			ap->port_name = strdup(value);
			*rc = ap->port_name ? 0 : -ENOMEM;
		}
	} else if (strcmp(opt, "timeout_ms") == 0) {
		*rc = parse_u32(a, opt, value, 1, APPROVER_TIMEOUT_MAX_MS, &ap->timeout_ms);
	} else if (strcmp(opt, "max_waiting") == 0) {
		*rc = parse_u32(a, opt, value, 1, APPROVER_WAITING_LIMIT, &ap->max_waiting);
	} else if (strcmp(value, "permit") == 0 || strcmp(value, "block") == 0) {
		ap->default_action = value[0] == 'p' ? XFP_ACTION_PERMIT : XFP_ACTION_BLOCK;
	} else {
		logf_(a, 3, ALLOW_KEY ": default=%s: want permit or block", value);
		*rc = -EINVAL;
	}
	return 1;
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
		if (parse_approver_option(a, opt, value, &rc)) {
			continue;
		} else if (strcmp(opt, "allow") == 0) {
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
			logf_(a, 3,
			      ALLOW_KEY ": unknown config option '%s' (allow=, file=, mode=, max=, approver=, "
					"timeout_ms=, default=, max_waiting=)",
			      opt);
			rc = -EINVAL;
		}
	}
	free(copy);
	if (rc)
		return rc;
	if (a->ap) {
		if (!a->ap->port_name) {
			logf_(a, 3, ALLOW_KEY ": timeout_ms=, default= and max_waiting= need approver=PORT");
			return -EINVAL;
		}
		if (a->learn) {
			logf_(a, 3, ALLOW_KEY ": approver= asks about new MACs instead of learning them: not with mode=learn");
			return -EINVAL;
		}
		if (have_max)
			a->ap->max_decided = a->learn_max; /* max=N: decided MACs remembered */
		return 0; /* the list may be empty: the approver decides */
	}
	if (have_max && !a->learn) {
		logf_(a, 3, ALLOW_KEY ": max= only applies to mode=learn (or with approver=)");
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
	approver_free(a->ap);
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
		rc = set_init(&a->set, l.n + (a->learn ? a->learn_max : 0) + (a->ap ? a->ap->max_decided : 0) +
					       BLOCKED_LOG_MAX);
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
	/* After the registration: the callout is published only when init
	 * returns 0, so no classify can meet a half-started approver. */
	if (a->ap && (rc = approver_start(a)) != 0) {
		pthread_rwlock_destroy(&a->lock);
		allow_free(a);
		return rc;
	}
	logf_(a, 1, ALLOW_KEY ": %s mode, %u MACs listed%s", a->learn ? "learn" : "enforce", a->listed,
	      a->learn ? ", learning new ones" : "");
	if (a->ap)
		logf_(a, 1,
		      ALLOW_KEY ": new MACs are asked about on port %s (timeout %u ms, then %s; at most %u frames wait)",
		      a->ap->port_name, a->ap->timeout_ms, a->ap->default_action == XFP_ACTION_PERMIT ? "permit" : "block",
		      a->ap->max_waiting);
	*plugin_ctx = a;
	return 0;
}

static void allow_fini(void *plugin_ctx)
{
	struct allowlist *a = plugin_ctx;
	uint64_t c[REASON_COUNT];

	if (a->ap)
		approver_stop(a);
	for (int i = 0; i < REASON_COUNT; i++)
		c[i] = atomic_load(&a->count[i]);
	logf_(a, 1,
	      ALLOW_KEY ": permitted %" PRIu64 " %s, %" PRIu64 " %s; blocked %" PRIu64 " %s, %" PRIu64
			" %s, %" PRIu64 " %s; %u MACs listed, %u learned, %u blocked MACs seen",
	      c[0], reason_names[0], c[1], reason_names[1], c[2], reason_names[2], c[3], reason_names[3],
	      c[4], reason_names[4], a->listed, a->learned, a->blocked_seen);
	if (a->ap)
		logf_(a, 1,
		      ALLOW_KEY ": approver verdicts: permitted %" PRIu64 " %s; blocked %" PRIu64 " %s, %" PRIu64
				" %s; %" PRIu64 " frames absorbed to wait; %u MACs decided",
		      (uint64_t)atomic_load(&a->count[REASON_APPROVED]), reason_names[REASON_APPROVED],
		      (uint64_t)atomic_load(&a->count[REASON_DENIED]), reason_names[REASON_DENIED],
		      (uint64_t)atomic_load(&a->count[REASON_WAIT_FULL]), reason_names[REASON_WAIT_FULL],
		      (uint64_t)atomic_load(&a->count[REASON_WAITING]), a->ap->decided);
	pthread_rwlock_destroy(&a->lock);
	allow_free(a);
}

XFP_PLUGIN("mac_allowlist", "sample: permit listed source MACs (or learn them, or ask an approver), block the rest", allow_init,
	   allow_fini);
