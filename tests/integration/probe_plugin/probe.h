/* The probe callout of the callout integration tests: what it counts and the
 * hooks the tests call in it (dlsym on the loaded library). */
#ifndef XFP_TEST_PROBE_H
#define XFP_TEST_PROBE_H

#include <stdint.h>

#define PROBE_KEY "xfp.test.probe"

struct probe_stats {
	uint64_t classified;     /* frames classify saw */
	uint64_t batches;        /* classify calls */
	uint64_t max_batch;      /* most frames in one call */
	uint64_t state[4];       /* by enum xfp_injection_state */
	uint64_t last_context;   /* inject context of the last injected frame seen */
	uint64_t injected;       /* inject calls that succeeded (frames) */
	uint64_t inject_failed;  /* inject calls that failed */
	int32_t last_inject_status;
	int32_t pad;
	uint64_t completions;    /* completion calls */
	uint64_t completion_ok;  /* of those, status 0 */
	uint64_t completion_closing;
	uint64_t completion_other;
};

typedef void (*probe_stats_fn)(struct probe_stats *out);
/* Builds a frame of `len` bytes from `bytes` and injects it on `iface`
 * (send != 0: send path, else receive path). Returns the inject status. */
typedef int (*probe_inject_fn)(uint32_t iface, int send, const uint8_t *bytes, uint32_t len);
typedef void (*probe_destroy_handle_fn)(void);

#endif
