/* The flow probe plugin of tests/integration/flow_test.cpp: two callouts,
 * what they count, and the hooks the tests call (dlsym on the library). */
#ifndef XFP_TEST_FLOW_PROBE_H
#define XFP_TEST_FLOW_PROBE_H

#include <stdint.h>

#define FLOWP_KEY "xfp.test.flow"          /* terminating: associates, permits */
#define FLOWP_COND_KEY "xfp.test.flowcond" /* conditional on flow: counts, continues */
#define FLOWP_MAIN_CONTEXT 0x1000u         /* + n: the main callout's context on the n-th flow */
#define FLOWP_COND_CONTEXT 0x2000u         /* + n: the conditional callout's */
#define FLOWP_MAX_FLOWS 4096

struct flowp_stats {
	uint64_t classified;           /* frames the main callout saw */
	uint64_t with_context;         /* of those, with its context on the flow */
	uint64_t cond_classified;      /* frames the conditional callout saw */
	uint64_t cond_without_context; /* of those, without its context: must stay 0 */
	uint64_t associated;           /* flows given both contexts */
	uint64_t associate_failed;
	int32_t last_associate_error;
	int32_t last_offload_error;
	uint64_t eexist;               /* a second associate that got -EEXIST */
	uint64_t offloads;             /* flow_offload calls that returned 0 */
	uint64_t deletes;              /* flow_delete calls, both callouts */
	uint64_t deletes_at_fini;      /* `deletes` when fini ran */
	uint64_t finis;
	uint64_t last_handle;          /* flow handle of the latest frame */
};

typedef void (*flowp_stats_fn)(struct flowp_stats *out);
/* How many times flow_delete saw this context. */
typedef uint32_t (*flowp_delete_count_fn)(uint64_t context);
/* The context a callout (0 main, 1 conditional) got on the flow, 0 if none. */
typedef uint64_t (*flowp_context_of_fn)(uint64_t handle, int conditional);
/* flow_remove_context for the main callout, from the caller's thread. */
typedef int (*flowp_remove_fn)(uint64_t handle);

#endif
