/* SPDX-License-Identifier: BSD-2-Clause */
/* relay.h — the session core: one relayed connection from accept to the
 * single teardown (relay.c). Runs in a worker's loop; never blocks, never
 * allocates outside the pools, never exits the process. */
#ifndef SLUICE_RELAY_H
#define SLUICE_RELAY_H

#include <stddef.h>

struct sockaddr;
struct session;
struct worker;

/* sizeof(struct session), the user-space cost of an idle connection. */
size_t relay_session_size(void);

/* Prepare the wheels and the sockets' epoll set (sio.c). Call once before
 * accepting. Returns 0, or -1 with errno. */
int relay_init(struct worker *);

/* sio.c's call: side (SIO_CLIENT, SIO_SERVER) of s is ready for revents
 * (SIO_R, SIO_W) that the session waits for. */
void relay_io(struct worker *, struct session *, int side, unsigned revents);

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
int relay_shut_where(struct worker *, int (*match)(struct worker *, struct session *, void *),
    void *arg);

/* Hand-off (handoff.c). relay_movable: may s move to a newer generation now
 * (relaying, idle, nothing pending in a buffer or pipe, rows known)?
 * relay_export: its record. relay_detach: it moved: forget it without
 * closing the connection (our descriptors close; it stays in active until
 * relay_handed says how it went). relay_adopt: take a session from a
 * record and its two descriptors, as a newcomer, or back (back = 1) from a
 * receiver that could not take it; returns 0, or -1 with errno (ENOMEM: no
 * session object; EINVAL: rows out of range) leaving the descriptors to the
 * caller. relay_handed: the receivers took `taken` sessions and lost
 * `lost` (counted closed, as lost). */
struct handoff_msg;
int relay_movable(const struct worker *, const struct session *);
void relay_export(const struct worker *, const struct session *, struct handoff_msg *);
void relay_detach(struct worker *, struct session *);
int relay_adopt(struct worker *, const struct handoff_msg *, int client_fd, int server_fd,
    int back);
void relay_handed(struct worker *, unsigned taken, unsigned lost);
/* Close every session at once (fast stop, end of drain). */
void relay_close_all(struct worker *);

#endif
