/* What the test plugins let the callout host's tests observe: each exports a
 * function returning its state, which a test reaches with dlopen(RTLD_NOLOAD)
 * and dlsym. Counters are updated with __atomic builtins (classify runs on
 * several threads). */
#ifndef XFP_TEST_PLUGINS_H
#define XFP_TEST_PLUGINS_H

#include <stdint.h>

#define GOOD_STATE_SYMBOL "xfp_test_good_state"
#define BROKEN_STATE_SYMBOL "xfp_test_broken_state"

struct good_plugin_state {
	int64_t init_calls;
	int64_t fini_calls;
	int64_t classify_calls;
	int64_t classify_frames;
	int64_t calls_while_finalised; /* classify after fini: must stay 0 */
	int64_t notify_adds;
	int64_t notify_deletes;
	int32_t live;            /* set by init, cleared by fini */
	int32_t handle_rc;       /* injection_handle_create's result in init */
	uint32_t count_id;       /* ids register_callout gave */
	uint32_t veto_id;
	char config[64];         /* the config text init got */
};

struct broken_plugin_state {
	int64_t init_calls;
	int64_t fini_calls;
	int32_t valid_register_rc;  /* registering the valid callout first */
	int32_t broken_register_rc; /* registering the broken one */
};

#endif
