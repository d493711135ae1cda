/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The xfp callout plugin ABI (pure C). A plugin is a shared library that
 * exports one symbol, XFP_PLUGIN_SYMBOL, a struct xfp_plugin_info. The
 * daemon loads it (`xfp callout load PATH`), checks the ABI version and the
 * hooks, and calls init(), in which the plugin registers its callouts by
 * key. Filters whose action is a callout name that key.
 *
 * The plugin links against nothing of xfp: everything the host offers
 * (frames, injection, logging) comes through the function table handed to
 * init(). A host that speaks a newer ABI minor keeps the table's prefix.
 *
 * Threads: classify runs on the workers (one per interface queue), possibly
 * on several at once, and must be thread-safe; notify runs on the daemon's
 * control thread; completions run on xfp's completion thread, never inside
 * the inject call that queued the frame.
 * Nothing in a hook may block for long: a worker that waits stalls its
 * queue (the kernel then counts and applies the overload policy).
 *
 * Errors at this ABI are negative errno values or the XFP_STATUS_* codes
 * below (also negative); 0 is success.
 */
#ifndef XFP_CALLOUT_H
#define XFP_CALLOUT_H

#include <stddef.h>
#include <stdint.h>

#include "xfp/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change to this header. */
#define XFP_CALLOUT_ABI_VERSION 1
#define XFP_PLUGIN_SYMBOL "xfp_plugin"

/* Status codes beyond errno (FWP/NDIS counterparts in comments). */
enum xfp_status {
	XFP_STATUS_SUCCESS = 0,
	XFP_STATUS_NOT_READY = -10001,      /* interface not attached (STATUS_FWP_NOT_READY-ish) */
	XFP_STATUS_HANDLE_CLOSING = -10002, /* injection handle being destroyed */
	XFP_STATUS_HANDLE_STALE = -10003,   /* wrong handle type (STATUS_FWP_INJECT_HANDLE_STALE) */
	XFP_STATUS_DROPPED = -10004,        /* the frame could not be queued or sent */
	/* Message ports (FltSendMessage's NTSTATUS values in comments). */
	XFP_STATUS_PORT_DISCONNECTED = -10005,       /* STATUS_PORT_DISCONNECTED: the client is gone */
	XFP_STATUS_BUFFER_OVERFLOW = -10006,         /* STATUS_BUFFER_OVERFLOW: reply longer than the buffer */
	XFP_STATUS_INSUFFICIENT_RESOURCES = -10007,  /* STATUS_INSUFFICIENT_RESOURCES */
	XFP_STATUS_SHUTTING_DOWN = -10008,           /* the port or the daemon is closing (STATUS_FLT_DELETING_OBJECT) */
	/* Success-class codes are positive. STATUS_TIMEOUT is 0x102 in NT too. */
	XFP_STATUS_TIMEOUT = 258,                    /* the wait expired: nothing delivered, or no reply */
};

/* ---- frames (NET_BUFFER_LIST counterparts) ------------------------------- */

/*
 * A frame: bytes with headroom and tailroom, a reference count, and a `next`
 * link that makes chains (like NET_BUFFER_LIST chains). Opaque: use the
 * host's frame functions. A punted frame handed to classify is valid during
 * the call only, unless the callout absorbs it or takes a reference.
 */
struct xfp_frame;

/* ---- what a callout sees -------------------------------------------------- */

/* FWPS_PACKET_INJECTION_STATE. */
enum xfp_injection_state {
	XFP_NOT_INJECTED = 0,
	XFP_INJECTED_BY_SELF = 1,
	XFP_INJECTED_BY_OTHER = 2,
	XFP_PREVIOUSLY_INJECTED_BY_SELF = 3,
};

/* The incoming metadata values of one frame. */
struct xfp_metadata {
	uint8_t layer;         /* enum xfp_layer */
	uint8_t pad[3];
	uint32_t ifindex;      /* interface the frame arrived on (in its namespace) */
	uint32_t iface;        /* xfp's attachment id of that interface: inject with it */
	uint32_t rx_queue;     /* queue (and worker) of the frame */
	uint32_t compartment;  /* network namespace inode */
	uint32_t frame_len;    /* bytes on the wire */
	uint64_t flow_handle;  /* 0 until flows exist (see docs) */
	uint64_t filter_id;    /* the filter that called this callout */
};

/* The matching filter, as FWPS_FILTER: what classify and notify are told. */
struct xfp_filter_info {
	uint64_t id;
	uint64_t weight;
	uint64_t context;      /* the filter's context value (opaque to xfp) */
	const char *name;      /* "" when unnamed */
	const char *sublayer;
	const char *callout_key;
	uint8_t layer;         /* enum xfp_layer */
	uint8_t action;        /* enum xfp_action: one of the CALLOUT_* */
	uint16_t pad;
	uint32_t flags;        /* enum xfp_filter_flag */
};

/* Classify output flags. */
enum xfp_classify_flag {
	XFP_CLASSIFY_ABSORB = 1u << 0, /* the callout owns the frame now (out) */
};

/*
 * One frame of a classify call. `frame` may be modified in place (a later
 * filter and the delivery see the change). The callout writes `action`:
 * XFP_ACTION_PERMIT, _BLOCK or _CONTINUE (the default when left alone), and
 * may set XFP_CLASSIFY_ABSORB in `flags`: the frame is then neither
 * delivered nor dropped by xfp; the callout must inject or free it.
 * An inspection callout's PERMIT or BLOCK counts as CONTINUE.
 */
struct xfp_classify_item {
	struct xfp_frame *frame;            /* in/out */
	const struct xfp_fields *fields;    /* in: parsed from the frame */
	const struct xfp_metadata *meta;    /* in */
	uint64_t flow_context;              /* in: this callout's context on the flow, 0 if none */
	uint8_t action_right;               /* in: 1 if the callout's decision can still change the verdict */
	uint8_t action;                     /* out: enum xfp_action */
	uint8_t flags;                      /* out: enum xfp_classify_flag */
	uint8_t pad[5];
};

/*
 * classify: `count` frames, all matched by `filter`. count is 1 unless the
 * callout was registered with XFP_CALLOUT_FLAG_BATCH; then the frames of one
 * receive batch that matched the same filter come together, also linked as
 * a chain through their `next` pointers, in arrival order. Injecting takes a
 * chain: to inject or keep one frame of a batch alone, unlink it first
 * (frame_set_next(frame, NULL)); xfp unlinks the rest after the call.
 *
 * An absorbed frame (or one the callout took a reference to) is the
 * callout's, and may be injected or freed inside classify. Its bytes move
 * out of the receive ring when classify returns, so a pointer from
 * frame_data() taken during classify is stale afterwards, and the frame must
 * not be handed to another thread before classify has returned.
 */
typedef void (*xfp_classify_fn)(void *callout_ctx, const struct xfp_filter_info *filter,
				struct xfp_classify_item *items, uint32_t count);

enum xfp_notify_type {
	XFP_NOTIFY_FILTER_ADD = 1,
	XFP_NOTIFY_FILTER_DELETE = 2,
};

/* notify: a filter naming this callout is being added (return 0 to accept,
 * a negative errno to refuse: the transaction fails) or was deleted. */
typedef int (*xfp_notify_fn)(void *callout_ctx, enum xfp_notify_type type,
			     const struct xfp_filter_info *filter);

/* flow-delete: a flow that carried this callout's context ended. */
typedef void (*xfp_flow_delete_fn)(void *callout_ctx, uint8_t layer, uint64_t flow_handle,
				   uint64_t flow_context);

/* Callout flags (FWP_CALLOUT_FLAG_*). */
enum xfp_callout_flag {
	XFP_CALLOUT_FLAG_BATCH = 1u << 0,              /* ALLOW_L2_BATCH_CLASSIFY */
	XFP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW = 1u << 1, /* needs flow_delete */
	XFP_CALLOUT_KNOWN_FLAGS = (1u << 2) - 1,
};

/* What a plugin registers per callout. The strings are copied. */
struct xfp_callout {
	const char *key;          /* unique, [A-Za-z0-9_.-], at most 63 bytes */
	const char *description;
	uint32_t flags;           /* enum xfp_callout_flag */
	uint32_t pad;
	xfp_classify_fn classify;       /* required */
	xfp_notify_fn notify;           /* required */
	xfp_flow_delete_fn flow_delete; /* required with CONDITIONAL_ON_FLOW */
	void *context;                  /* passed to every hook */
};

/* ---- injection ------------------------------------------------------------ */

struct xfp_injection_handle;

enum xfp_injection_type {
	XFP_INJECTION_L2 = 1, /* MAC-frame layers: the only type xfp has */
};

/*
 * Called once per injected frame, on success of the inject call only, after
 * the frame has left xfp's hands. `status` is 0 or a negative code (for
 * example XFP_STATUS_HANDLE_CLOSING when the handle was destroyed first).
 * The frame is the caller's again: free it or reuse it.
 */
typedef void (*xfp_inject_complete_fn)(void *completion_ctx, struct xfp_frame *frame, int status);

/* ---- flows (FwpsFlowAssociateContext0, FwpsFlowRemoveContext0) ---------- */

/*
 * A flow is the set of frames with one flow key: the attachment, the outer
 * VLAN id, the MAC pair, the EtherType, and the IPv4/IPv6 protocol and ports
 * when present. Both directions of a conversation share it (the key orders
 * the two endpoints). xfp_metadata.flow_handle names it; 0 means the frame
 * has no flow (malformed). docs/ARCHITECTURE.md, "Flows", has the details.
 *
 * associate_context: gives `callout_id` (from register_callout, a callout of
 * this plugin that has a flow_delete hook) the context `context` on the flow
 * at `layer`. One context per flow, layer and callout; many callouts per
 * flow. 0, or -EEXIST (the callout already has one: remove it first),
 * -EINVAL (not this plugin's callout, no flow_delete hook, or context 0),
 * -ENOENT (the flow has ended or was never seen).
 *
 * remove_context: 0, and flow_delete runs for the context, at once or, when
 * a classify on that flow is in progress, when it returns (never inside
 * remove_context itself); -ENOENT when the callout has no context there.
 *
 * Whatever ends a flow (idle timeout, TCP FIN or RST, eviction from the
 * bounded flow table, its interface detached, the callout's plugin unloaded,
 * the daemon stopping) calls flow_delete exactly once per context.
 */

/* Verdicts a callout may hand to the kernel for a whole flow. */
enum xfp_flow_verdict {
	XFP_FLOW_VERDICT_PERMIT = 1,
	XFP_FLOW_VERDICT_BLOCK = 2,
	XFP_FLOW_VERDICT_REDIRECT = 3, /* to redirect_ifname (see redirect_flow) */
};

/* ---- redirect records (SIO_QUERY_WFP_CONNECTION_REDIRECT_*) ------------- */

/* FWPS_CONNECTION_REDIRECT_STATE: a flow seen from a redirect handle. */
enum xfp_redirect_state {
	XFP_NOT_REDIRECTED = 0,
	XFP_REDIRECTED_BY_SELF = 1,             /* the latest record is this handle's */
	XFP_REDIRECTED_BY_OTHER = 2,            /* the latest record is another's; none is this handle's */
	XFP_PREVIOUSLY_REDIRECTED_BY_SELF = 3,  /* a record of this handle, but not the latest */
};

struct xfp_redirect_handle;

/* ---- message ports (FltCreateCommunicationPort, FltSendMessage) --------- */

struct xfp_port; /* a server port created by the plugin */

/*
 * The port's callbacks run on the port's own thread, never on a worker. They
 * must not block, and must not call port_send with a reply buffer (the port
 * thread is what receives replies: it would wait for itself).
 *
 * connect: a client asks to connect with its context bytes. Return 0 to
 *   accept (*connection_cookie, initially NULL, is handed to the other two),
 *   or a negative errno to refuse (the client gets -ECONNREFUSED).
 * disconnect: an accepted client went away. Once per accepted client.
 * message: the client's xfp_port_send(). Write at most out_cap bytes to `out`
 *   and set *out_len; return 0, or a negative errno the client receives.
 */
struct xfp_port_ops {
	int (*connect)(void *port_ctx, uint64_t client, const void *context, uint32_t context_len,
		       void **connection_cookie);
	void (*disconnect)(void *port_ctx, uint64_t client, void *connection_cookie);
	int (*message)(void *port_ctx, uint64_t client, void *connection_cookie, const void *in, uint32_t in_len,
		       void *out, uint32_t out_cap, uint32_t *out_len); /* may be NULL: clients get -ENOTSUP */
};

/* ---- the host's function table ------------------------------------------ */

struct xfp_host; /* opaque: this plugin's handle in the daemon */

struct xfp_host_api {
	uint32_t abi_version; /* XFP_CALLOUT_ABI_VERSION */
	uint32_t size;        /* sizeof(struct xfp_host_api) of the host */

	/* Registration, from init() only. Returns 0 or a negative code; on
	 * success *callout_id (may be NULL) names the callout in logs. */
	int (*register_callout)(struct xfp_host *host, const struct xfp_callout *callout,
				uint32_t *callout_id);

	/* Frames. alloc: `len` bytes (uninitialised) with room to grow.
	 * clone: a deep copy (own bytes, refcount 1, no `next`).
	 * ref/free: reference counting; free at zero releases the bytes. */
	struct xfp_frame *(*frame_alloc)(uint32_t len);
	struct xfp_frame *(*frame_clone)(const struct xfp_frame *frame);
	void (*frame_ref)(struct xfp_frame *frame);
	void (*frame_free)(struct xfp_frame *frame);
	uint8_t *(*frame_data)(struct xfp_frame *frame);
	uint32_t (*frame_len)(const struct xfp_frame *frame);
	/* push: grow at the front by n bytes (e.g. a VLAN tag), pull: shrink at
	 * the front; set_len: grow or shrink at the end. 0 or -ENOSPC/-EINVAL. */
	int (*frame_push)(struct xfp_frame *frame, uint32_t n);
	int (*frame_pull)(struct xfp_frame *frame, uint32_t n);
	int (*frame_set_len)(struct xfp_frame *frame, uint32_t len);
	struct xfp_frame *(*frame_next)(const struct xfp_frame *frame);
	void (*frame_set_next)(struct xfp_frame *frame, struct xfp_frame *next);

	/* Injection handles. create: 0 or negative; destroy completes every
	 * frame still pending on the handle with XFP_STATUS_HANDLE_CLOSING. */
	int (*injection_handle_create)(struct xfp_host *host, uint32_t type,
				       struct xfp_injection_handle **handle);
	void (*injection_handle_destroy)(struct xfp_injection_handle *handle);

	/* Inject a frame or a chain into the receive path (the host stack gets
	 * it as if received on interface `iface`) or the send path (it leaves
	 * on `iface`). `inject_context` is what a layer that sees the frame
	 * again reports with its injection state. On 0 the completion runs once
	 * per frame of the chain, later; on failure it never runs and the
	 * caller still owns the frames. */
	int (*inject_receive)(struct xfp_injection_handle *handle, uint32_t iface, struct xfp_frame *frames,
			      uint64_t inject_context, xfp_inject_complete_fn complete, void *completion_ctx);
	int (*inject_send)(struct xfp_injection_handle *handle, uint32_t iface, struct xfp_frame *frames,
			   uint64_t inject_context, xfp_inject_complete_fn complete, void *completion_ctx);

	/* FwpsQueryPacketInjectionState: the frame of a classify call, seen from
	 * `handle`; *inject_context (may be NULL) gets the injector's context. */
	enum xfp_injection_state (*injection_state)(const struct xfp_injection_handle *handle,
						    const struct xfp_classify_item *item,
						    uint64_t *inject_context);

	/* Interfaces: the attachment id of an attached interface by name, in the
	 * daemon's namespace of that attachment (0 if not attached). */
	uint32_t (*iface_by_name)(const char *ifname);

	/* Logging into the daemon's log. level: 0 debug, 1 info, 2 warn, 3 error. */
	void (*log)(struct xfp_host *host, int level, const char *message);

	/* Flow contexts: see "flows" above. */
	int (*flow_associate_context)(struct xfp_host *host, uint64_t flow_handle, uint8_t layer,
				      uint32_t callout_id, uint64_t context);
	int (*flow_remove_context)(struct xfp_host *host, uint64_t flow_handle, uint8_t layer, uint32_t callout_id);

	/*
	 * Flow-verdict offload. Hands the verdict of the item's flow to the
	 * kernel: once the item's own arbitration has finished with the same
	 * decision, later frames of the flow at the item's layer are decided in
	 * XDP/TC (XFP_FLOW_VERDICT_PERMIT / _BLOCK; _REDIRECT goes through
	 * redirect_flow) without reaching user space. Call from classify only,
	 * by the callout `callout_id` of this plugin. 0 (the request is recorded),
	 * -EINVAL, -ENOENT (no flow), -EPERM (the callout has no action right on
	 * this frame). A filter change that would change the flow's decision
	 * takes the verdict back (the flow is punted again); so does
	 * flow_offload_remove (0 or -ENOENT).
	 */
	int (*flow_offload)(struct xfp_host *host, const struct xfp_classify_item *item, uint32_t callout_id,
			    uint32_t verdict);
	int (*flow_offload_remove)(struct xfp_host *host, uint64_t flow_handle, uint8_t layer);

	/*
	 * Redirect records. A handle is a redirector's identity. redirect_state
	 * tells how the item's flow was redirected so far (its records come with
	 * the flow: a proxy that forwards onward sets them on its new flow with
	 * libxfp-client or `xfp redirect set`). redirect_flow sends the item's
	 * frame to `ifname` (an interface in the namespace of the item's
	 * interface, e.g. a veth into a proxy's namespace) and appends a record
	 * of the handle, carrying `context` (at most XFP_REDIRECT_CONTEXT_MAX
	 * bytes, copied), to the flow; with XFP_REDIRECT_OFFLOAD, later frames
	 * of the flow go there from the kernel. The item's frame is then the
	 * host's: it counts as absorbed. 0, -EINVAL, -ENODEV (no such
	 * interface), -EALREADY (this handle's record is already on the flow:
	 * redirecting again would loop), -ENOENT (no flow).
	 */
	int (*redirect_handle_create)(struct xfp_host *host, struct xfp_redirect_handle **handle);
	void (*redirect_handle_destroy)(struct xfp_redirect_handle *handle);
	enum xfp_redirect_state (*redirect_state)(const struct xfp_redirect_handle *handle,
						   const struct xfp_classify_item *item);
	int (*redirect_flow)(struct xfp_redirect_handle *handle, struct xfp_classify_item *item, const char *ifname,
			     const void *context, uint32_t context_len, uint32_t flags);

	/*
	 * Message ports. port_create makes the socket /run/xfp/ports/NAME (name:
	 * [A-Za-z0-9._-], at most 63 bytes; the daemon's --port-dir and
	 * --port-group apply) that at most max_connections clients may hold at
	 * once. 0, -EEXIST (a live port of that name), -EINVAL, an errno of
	 * the socket, or XFP_STATUS_SHUTTING_DOWN (the daemon is stopping).
	 * port_close closes every client (their disconnect callbacks run, on
	 * the calling thread) and the port; senders waiting on it are released
	 * with XFP_STATUS_SHUTTING_DOWN, and the handle is stale from then on
	 * (port_send returns XFP_STATUS_SHUTTING_DOWN). Never call it from the
	 * port's own callbacks. The host closes a plugin's ports left open at
	 * unload, after fini: a plugin whose thread sends closes its port in
	 * fini before joining that thread, so that the join does not wait.
	 *
	 * port_send (FltSendMessage): sends `len` bytes (at most
	 * XFP_PORT_MAX_MESSAGE) to `client`. Delivered at once when the client is
	 * waiting for a message, otherwise the sender waits. With `reply` it then
	 * waits for the reply: *reply_len is the buffer's size in and the reply's
	 * length out. The reply buffer receives exactly the bytes the client
	 * passed to xfp_port_reply(): size it as that payload (no header; see
	 * the padding pitfall in docs/ARCHITECTURE.md). `timeout_ns`: NULL or 0
	 * waits without end; negative is a relative duration; positive an
	 * absolute CLOCK_REALTIME time, as the seed's LARGE_INTEGER.
	 * Returns 0; XFP_STATUS_TIMEOUT (success class: nothing delivered or no
	 * reply received); XFP_STATUS_PORT_DISCONNECTED; XFP_STATUS_BUFFER_OVERFLOW
	 * (the buffer holds the reply's first bytes, *reply_len the full length);
	 * XFP_STATUS_INSUFFICIENT_RESOURCES; XFP_STATUS_SHUTTING_DOWN (the port is
	 * closing or the daemon stopping: every waiting sender is released);
	 * -EINVAL. Never call it from classify: it blocks (absorb the frame and
	 * send from a thread of the plugin's own).
	 */
	int (*port_create)(struct xfp_host *host, const char *name, uint32_t max_connections,
			   const struct xfp_port_ops *ops, void *port_ctx, struct xfp_port **port);
	void (*port_close)(struct xfp_port *port);
	int (*port_send)(struct xfp_port *port, uint64_t client, const void *message, uint32_t len, void *reply,
			 uint32_t *reply_len, const int64_t *timeout_ns);
};

#define XFP_REDIRECT_CONTEXT_MAX 256
enum xfp_redirect_flag {
	XFP_REDIRECT_OFFLOAD = 1u << 0, /* later frames of the flow are redirected by the kernel */
};

/* ---- the plugin's export ------------------------------------------------ */

struct xfp_plugin_info {
	uint32_t abi_version; /* XFP_CALLOUT_ABI_VERSION the plugin was built for */
	uint32_t size;        /* sizeof(struct xfp_plugin_info) */
	const char *name;
	const char *description;
	/* Register callouts with api->register_callout(host, ...). `config` is
	 * the text given at load (`xfp callout load PATH --config TEXT`), "" when
	 * none; the plugin parses it and fails with -EINVAL (after a log line
	 * saying why) when it is wrong. Return 0, or a negative errno: loading
	 * fails and nothing stays registered. *plugin_ctx is handed to fini. */
	int (*init)(const struct xfp_host_api *api, struct xfp_host *host, const char *config,
		    void **plugin_ctx);
	/* Unloading: every filter naming the plugin's callouts has fallen back to
	 * its fail action and no classify runs any more. The plugin destroys its
	 * injection handles here (the host destroys any left, completing their
	 * frames with XFP_STATUS_HANDLE_CLOSING, before the library is closed). */
	void (*fini)(void *plugin_ctx);
};

/* Defines the exported descriptor: XFP_PLUGIN("name", "what it does", init, fini). */
#ifdef __cplusplus
#define XFP_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))
#else
#define XFP_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif
#define XFP_PLUGIN(name_, description_, init_, fini_)                              \
	XFP_PLUGIN_EXPORT const struct xfp_plugin_info xfp_plugin = {              \
		XFP_CALLOUT_ABI_VERSION, sizeof(struct xfp_plugin_info), (name_),              \
		(description_), (init_), (fini_)}

#ifdef __cplusplus
}
#endif

#endif /* XFP_CALLOUT_H */
