/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * WFP filter arbitration, written once for the BPF fast path and the C++
 * runtime. Sublayers are fed in priority order (highest weight first), each
 * with the decision of its highest-priority matching filter:
 *
 *  - the first decision is taken as it is;
 *  - while the current decision is soft (action right still set), a later
 *    sublayer's decision replaces it: block overrides permit, and a permit
 *    may lift a soft block;
 *  - a hard permit stands against everything but a callout's block (veto);
 *  - a hard block is final and stops evaluation.
 *
 * A plain filter's block is hard; permits and callout verdicts are soft
 * unless the filter has CLEAR_ACTION_RIGHT. An unavailable callout applies
 * its fail action: block (hard) or, with PERMIT_IF_CALLOUT_UNREGISTERED,
 * permit (soft).
 */
#ifndef XFP_ARBITRATION_H
#define XFP_ARBITRATION_H

#include "xfp/abi.h"
#include "xfp/inline.h"


struct xfp_arbitration {
	__u8 action;  /* XFP_ACTION_NONE, _PERMIT or _BLOCK */
	__u8 hard;    /* the action right was cleared */
	__u8 final;   /* a hard block: later sublayers are not evaluated */
	__u8 vetoed;  /* a callout block overrode a hard permit */
	__u32 slot;   /* counter slot of the filter that decided */
};

XFP_INLINE void xfp_arbitration_init(struct xfp_arbitration *st)
{
	st->action = XFP_ACTION_NONE;
	st->hard = 0;
	st->final = 0;
	st->vetoed = 0;
	st->slot = XFP_RANK_NONE;
}

/* Feed one sublayer's decision (permit or block; anything else is ignored). */
XFP_INLINE void xfp_arbitration_step(struct xfp_arbitration *st, __u8 action, __u8 hard,
				     __u8 from_callout, __u32 slot)
{
	if (st->final || (action != XFP_ACTION_PERMIT && action != XFP_ACTION_BLOCK))
		return;
	if (st->action == XFP_ACTION_NONE || !st->hard) {
		st->action = action;
		st->hard = hard;
		st->slot = slot;
	} else if (st->action == XFP_ACTION_PERMIT && action == XFP_ACTION_BLOCK && from_callout) {
		st->action = XFP_ACTION_BLOCK;
		st->hard = 1;
		st->vetoed = 1;
		st->slot = slot;
	}
	if (st->action == XFP_ACTION_BLOCK && st->hard)
		st->final = 1;
}

/*
 * The decision a sublayer's winning filter makes in the kernel while no
 * callout is reachable: plain actions as they are, callouts their fail
 * action. Returns XFP_ACTION_CONTINUE for an inspection callout.
 */
XFP_INLINE __u8 xfp_match_fail_decision(const struct xfp_match *m, __u8 *hard)
{
	*hard = (m->flags & XFP_MATCH_HARD) ? 1 : 0;
	switch (m->action) {
	case XFP_ACTION_PERMIT:
		return XFP_ACTION_PERMIT;
	case XFP_ACTION_BLOCK:
		*hard = 1;
		return XFP_ACTION_BLOCK;
	case XFP_ACTION_CALLOUT_INSPECTION:
		return XFP_ACTION_CONTINUE;
	case XFP_ACTION_CALLOUT_TERMINATING:
	case XFP_ACTION_CALLOUT_UNKNOWN:
		if (m->flags & XFP_MATCH_FAIL_OPEN)
			return XFP_ACTION_PERMIT;
		*hard = 1;
		return XFP_ACTION_BLOCK;
	default:
		return XFP_ACTION_CONTINUE;
	}
}

#endif /* XFP_ARBITRATION_H */
