/* SPDX-License-Identifier: BSD-2-Clause */
/* relay.h — the session core: one relayed connection from accept to the
 * single teardown (relay.c). Runs in a worker's loop; never blocks, never
 * allocates outside the pools, never exits the process. */
#ifndef SLUICE_RELAY_H
#define SLUICE_RELAY_H

#include <stddef.h>

struct sockaddr;
struct worker;

/* sizeof(struct session), the user-space cost of an idle connection besides
 * libev's per-fd entries. */
size_t relay_session_size(void);

/* Prepare the wheels and pools' consumers. Call once before accepting. */
void relay_init(struct worker *);

/* Take ownership of an accepted client fd from listener li, whose peer
 * address accept gave, and start its session: admission (edge.c), the PROXY
 * header when the listener expects one, connect upstream, then relay. Never
 * fails loudly: a refused session is counted and its fd closed. */
void relay_start(struct worker *, int client_fd, unsigned li, const struct sockaddr *peer);

/* Try the upstream connect again for sessions that waited for a descriptor
 * (after a descriptor pause ends). */
void relay_retry_waiting(struct worker *);

/* An operator's shutdown: close (as CLOSE_SHUTDOWN) every session for which
 * match returns 1; returns how many. match may be called several times for
 * one session and must not close anything itself. */
struct session;
int relay_shut_where(struct worker *, int (*match)(struct worker *, struct session *, void *),
    void *arg);

/* Close every session at once (fast stop, end of drain). */
void relay_close_all(struct worker *);

#endif
