/* See port_client_shim.c. */
#pragma once
#include <stddef.h>

#include "xfp/port_client.h"

#ifdef __cplusplus
extern "C" {
#endif
/* A connection on fd (SOCK_SEQPACKET, non-blocking), CONNECT not yet answered. */
struct xfp_port_conn *xfp_fuzz_port_conn(int fd);
/* Reads queued records until CONNECTED or REFUSED: 1, the refusal's -errno,
 * or the read error (-ETIMEDOUT: nothing more queued). */
int xfp_fuzz_port_connect_answer(struct xfp_port_conn *c, char *reason, size_t reason_cap);
#ifdef __cplusplus
}
#endif
