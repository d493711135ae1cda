/* The redirect test plugin's counters (tests/integration/redirect_test.cpp
 * reads them with dlsym on its own reference to the library). */
#ifndef XFP_TEST_REDIRECT_PROBE_H
#define XFP_TEST_REDIRECT_PROBE_H

#include <stdint.h>

#define RDP_KEY_A "xfp.test.redirect.a"
#define RDP_KEY_B "xfp.test.redirect.b"
#define RDP_CONTEXT_A "ctx-A"
#define RDP_CONTEXT_B "ctx-B"

/* Per redirector (0 = A, 1 = B). */
struct rdp_stats {
	uint64_t classified[2];
	uint64_t states[2][4];   /* by enum xfp_redirect_state */
	uint64_t redirects[2];   /* redirect_flow returned 0 */
	uint64_t again[2];       /* -EALREADY */
	uint64_t errors[2];      /* any other error */
	int32_t last_error[2];
	uint64_t permits[2];
	uint64_t handles;        /* live handles */
};

typedef void (*rdp_stats_fn)(struct rdp_stats *out);

#endif
