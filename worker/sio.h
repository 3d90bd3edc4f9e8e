/* SPDX-License-Identifier: BSD-2-Clause */
/* sio.h — the sessions' sockets, watched edge-triggered (sio.c). Each
 * socket enters the worker's session epoll set once, for reading and
 * writing, and leaves it when it closes: no system call when what a session
 * waits for changes. What a side is ready for is remembered between edges
 * and cleared only when a read or write finds the socket dry, so a session
 * that waits for a side which is ready already is run without an event.
 * Runs in a worker. */
#ifndef SLUICE_SIO_H
#define SLUICE_SIO_H

#include <stdint.h>

#include "session.h"

struct worker;

#define SIO_CLIENT 0
#define SIO_SERVER 1
/* What a side can do; the same bits as libev's EV_READ and EV_WRITE. */
#define SIO_R 0x1
#define SIO_W 0x2

/* Bits of s->io: want (what the session waits for) and ready (what an edge
 * said and no dry read or write has taken back), per side. */
#define SIO_WANT_SHIFT(side) ((side) * 2)
#define SIO_READY_SHIFT(side) (4 + (side) * 2)

/* Open the session epoll set and watch it from the worker's loop. */
int sio_init(struct worker *);

/* Register the side's socket (s->cfd or s->sfd). Returns 0, or -1 with
 * errno (ENOMEM, ENOSPC: the kernel's watch limit). */
int sio_add(struct worker *, struct session *, int side);

/* What the session waits for on a side now (SIO_R | SIO_W, or 0). A side
 * ready for it already is run soon, without waiting for an edge. */
void sio_want(struct worker *, struct session *, int side, unsigned want);

/* A read (SIO_R) or write (SIO_W) on the side found it dry: EAGAIN, a short
 * read, a short write, EOF. Until the next edge the side is not ready. */
/* Bits of s->iox: queued to run (sio.c), and per side an end seen
 * (EPOLLRDHUP, HUP, ERR). After an end a short read is not dry: the EOF or
 * error behind the bytes brings no edge of its own, so the side stays ready
 * for reading until a read returns it. */
#define SIO_QUEUED 0x1
#define SIO_END(side) (0x2 << (side))
/* The session's sockets came from another process (a hand-off), which may
 * still hold them for a moment: an epoll entry lives as long as its socket,
 * not our descriptor, so closing them takes them out of the set first. */
#define SIO_SHARED 0x8

/* The session's sockets were handed to us. */
static inline void
sio_shared(struct session *s)
{
	s->iox |= SIO_SHARED;
}

static inline void
sio_dry(struct session *s, int side, unsigned what)
{
	if (s->iox & SIO_END(side))
		what &= ~(unsigned)SIO_R;
	s->io &= (uint8_t)~(what << SIO_READY_SHIFT(side));
}

/* Before the side's socket closes (side), or the whole session goes
 * (SIO_ALL): no event still on its way reaches it (and a shared session's
 * sockets leave the set). */
#define SIO_ALL 2
void sio_forget(struct worker *, struct session *, int side);

/* Take both sockets out of the set by hand, for a session whose sockets
 * live on in another process (a hand-off): an epoll entry lives as long as
 * its socket, not the descriptor. Then sio_forget(SIO_ALL). */
void sio_detach(struct worker *, struct session *);

#endif
