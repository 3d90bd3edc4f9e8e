/* relay.h — one relayed connection. The API is in worker.h (relay_init,
 * relay_start, relay_close_all); this header exists for the size check the
 * tests make on a session, the figure the memory target is about. */
#ifndef SLUICE_RELAY_H
#define SLUICE_RELAY_H

#include <stddef.h>

/* sizeof(struct session), the user-space cost of an idle connection besides
 * libev's per-fd entries. */
size_t relay_session_size(void);

#endif
