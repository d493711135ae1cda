/* The port_proto fuzz target's window into libxfp-client (user/port_client.c,
 * compiled into this file): a connection made from a socket the target
 * holds the other end of, and the library's own read loop, so that the
 * target can play the daemon from a queue of records. The cancel guard is 0:
 * whatever the "daemon" answers is queued before the call. */
#define CANCEL_GUARD_MS 0
#include "../user/port_client.c"

#include "port_client_shim.h"

struct xfp_port_conn *xfp_fuzz_port_conn(int fd)
{
	struct xfp_port_conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->fd = fd;
	c->msg = malloc(XFP_PORT_MAX_FRAME + 1);
	c->rbuf = malloc(XFP_PORT_MAX_FRAME + 1);
	if (!c->msg || !c->rbuf) {
		c->fd = -1;
		xfp_port_close(c);
		return NULL;
	}
	return c;
}

int xfp_fuzz_port_connect_answer(struct xfp_port_conn *c, char *reason, size_t reason_cap)
{
	int r = 0;
	c->reason = reason;
	c->reason_cap = reason_cap;
	while (c->connect_state == 0) {
		r = read_one(c, now_ms());
		if (r < 0)
			break;
	}
	c->reason = NULL;
	c->reason_cap = 0;
	return c->connect_state != 0 ? c->connect_state : r;
}
