/* SPDX-License-Identifier: BSD-2-Clause */
/* sio.c — the sessions' sockets, watched edge-triggered (see sio.h). Runs
 * in a worker's loop: one epoll set, watched by libev as one descriptor,
 * and a run queue for sessions whose wish meets a readiness already known.
 *
 * Why not libev's ev_io: its epoll backend is level-triggered, so a session
 * that stops reading while its peer cannot take more (back-pressure), or
 * that saw EOF, costs an epoll_ctl each way, and a hang-up an extra one;
 * about 6 per relayed connection against 2 here (one EPOLL_CTL_ADD per
 * socket, close removes it). Two ev_io also cost 96 bytes per session and
 * libev's per-descriptor entries, which an idle connection pays for.
 *
 * The rule that keeps edges from being lost: a side's ready bit is set by an
 * edge and cleared only by a read or write that found the socket dry
 * (sio_dry); a session that waits for a side still marked ready is queued
 * and run from the queue (reads per run stay bounded by xfer.c, so a bulk
 * session takes turns with the others). Events of a batch that belong to a
 * session or socket closed earlier in the same batch are dropped. Never
 * blocks; allocates only in sio_init (the queue has room for every session
 * the pool can hold). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "relay.h"
#include "sio.h"
#include "worker.h"

#define SIO_BATCH 64
/* Queued sessions run per loop iteration at most, before the loop polls
 * again (without blocking while any are left). */
#define SIO_RUNS_PER_TURN 256

static struct {
	int epfd;
	ev_io io;           /* epfd readable */
	ev_prepare prep;    /* runs the queue before the loop polls */
	ev_idle idle;       /* active while the queue is not empty: no blocking */
	struct epoll_event ev[SIO_BATCH];
	int n, i;           /* the batch being dispatched, and where */
	struct session *cur; /* the session being run; NULL once it closed */
	struct session **q; /* run queue, a ring of qcap entries */
	unsigned qh, qn, qcap;
} sio = { .epfd = -1 };

static uint64_t
tag(struct session *s, int side)
{
	return (uint64_t)(uintptr_t)s | (unsigned)side;
}

static unsigned
want_of(const struct session *s, int side)
{
	return (s->io >> SIO_WANT_SHIFT(side)) & (SIO_R | SIO_W);
}

static unsigned
ready_of(const struct session *s, int side)
{
	return (s->io >> SIO_READY_SHIFT(side)) & (SIO_R | SIO_W);
}

static int
runnable(const struct session *s)
{
	return (want_of(s, SIO_CLIENT) & ready_of(s, SIO_CLIENT)) ||
	       (want_of(s, SIO_SERVER) & ready_of(s, SIO_SERVER));
}

static void
enqueue(struct worker *w, struct session *s)
{
	if (s->iox & SIO_QUEUED)
		return;
	if (sio.qn == sio.qcap) {
		/* Not reached while sio_init's size holds every session the
		 * pool can give; should that change, grow rather than lose a
		 * session's turn. */
		unsigned cap = sio.qcap * 2;
		struct session **q = malloc(cap * sizeof(*q));

		CHECK(q != NULL);
		for (unsigned k = 0; k < sio.qn; k++)
			q[k] = sio.q[(sio.qh + k) % sio.qcap];
		free(sio.q);
		sio.q = q;
		sio.qh = 0;
		sio.qcap = cap;
	}
	CHECK(sio.qn < sio.qcap);
	sio.q[(sio.qh + sio.qn) % sio.qcap] = s;
	sio.qn++;
	s->iox |= SIO_QUEUED;
	if (!ev_is_active(&sio.idle))
		ev_idle_start(w->loop, &sio.idle);
}

/* Run one side's callback with what it waits for and is ready for. Returns
 * 0 when the session is still open afterwards, -1 when it closed. */
static int
run_side(struct worker *w, struct session *s, int side)
{
	unsigned r = want_of(s, side) & ready_of(s, side);

	if (r == 0)
		return 0;
	/* Invariants: only an open socket is ready, and a session runs only
	 * outside another's run. */
	CHECK((side == SIO_CLIENT ? s->cfd : s->sfd) >= 0);
	CHECK(sio.cur == NULL);
	sio.cur = s;
	relay_io(w, s, side, r);
	if (sio.cur != s)
		return -1;
	sio.cur = NULL;
	return 0;
}

static void
run_queue(struct worker *w)
{
	for (unsigned k = 0; k < SIO_RUNS_PER_TURN && sio.qn > 0; k++) {
		struct session *s = sio.q[sio.qh];

		sio.qh = (sio.qh + 1) % sio.qcap;
		sio.qn--;
		if (s == NULL)
			continue; /* closed while queued */
		s->iox &= (uint8_t)~SIO_QUEUED;
		if (run_side(w, s, SIO_SERVER) == -1 || run_side(w, s, SIO_CLIENT) == -1)
			continue;
		if (runnable(s))
			enqueue(w, s);
	}
	if (sio.qn == 0 && ev_is_active(&sio.idle))
		ev_idle_stop(w->loop, &sio.idle);
}

static void
prep_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	(void)p;
	(void)revents;
	if (sio.qn > 0)
		run_queue(ev_userdata(loop));
}

static void
idle_cb(struct ev_loop *loop, ev_idle *i, int revents)
{
	(void)loop;
	(void)i;
	(void)revents;
	/* Nothing to do: being active keeps the loop from blocking while the
	 * queue holds sessions; prep_cb runs them. */
}

static void
epfd_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = ev_userdata(loop);

	(void)io;
	(void)revents;
	sio.n = epoll_wait(sio.epfd, sio.ev, SIO_BATCH, 0);
	for (sio.i = 0; sio.i < sio.n; sio.i++) {
		uint64_t d = sio.ev[sio.i].data.u64;
		uint32_t e = sio.ev[sio.i].events;
		struct session *s = (struct session *)(uintptr_t)(d & ~(uint64_t)1);
		int side = (int)(d & 1);
		unsigned got = 0;

		if (s == NULL)
			continue; /* its session or socket closed in this batch */
		if (e & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
			got |= SIO_R;
		if (e & (EPOLLRDHUP | EPOLLERR | EPOLLHUP))
			s->iox |= (uint8_t)SIO_END(side);
		if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			got |= SIO_W;
		s->io |= (uint8_t)(got << SIO_READY_SHIFT(side));
		if (run_side(w, s, side) == 0 && runnable(s))
			enqueue(w, s);
	}
	sio.n = 0;
	if (sio.qn > 0)
		run_queue(w);
}

int
sio_init(struct worker *w)
{
	sio.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sio.epfd == -1)
		return -1;
	/* Every session the pool can hold: worker.c budgets max_active
	 * objects and two chunks (64K each) more. */
	sio.qcap = w->max_active + 2 * (64 * 1024) / (unsigned)sizeof(struct session) + 1;
	sio.q = malloc(sio.qcap * sizeof(*sio.q));
	if (sio.q == NULL) {
		int err = errno;

		close(sio.epfd);
		sio.epfd = -1;
		errno = err;
		return -1;
	}
	sio.qh = sio.qn = 0;
	ev_io_init(&sio.io, epfd_cb, sio.epfd, EV_READ);
	ev_io_start(w->loop, &sio.io);
	ev_prepare_init(&sio.prep, prep_cb);
	ev_prepare_start(w->loop, &sio.prep);
	ev_idle_init(&sio.idle, idle_cb);
	return 0;
}

int
sio_add(struct worker *w, struct session *s, int side)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.u64 = tag(s, side),
	};
	int fd = side == SIO_CLIENT ? s->cfd : s->sfd;

	(void)w;
	s->io &= (uint8_t)~((SIO_R | SIO_W) << SIO_READY_SHIFT(side));
	s->iox &= (uint8_t)~SIO_END(side);
	return epoll_ctl(sio.epfd, EPOLL_CTL_ADD, fd, &ev);
}

void
sio_want(struct worker *w, struct session *s, int side, unsigned want)
{
	s->io = (uint8_t)((s->io & ~((SIO_R | SIO_W) << SIO_WANT_SHIFT(side))) |
	                  (want << SIO_WANT_SHIFT(side)));
	/* The session being run is looked at when its callback returns. */
	if (s != sio.cur && (want & ready_of(s, side)))
		enqueue(w, s);
}

/* Take a side's socket out of the set by hand. */
static void
unwatch(int fd)
{
	if (fd != -1 && epoll_ctl(sio.epfd, EPOLL_CTL_DEL, fd, NULL) == -1 && errno != ENOENT)
		log_warn("epoll_ctl DEL of a shared session socket");
}

void
sio_forget(struct worker *w, struct session *s, int side)
{
	(void)w;
	if (s->iox & SIO_SHARED) {
		if (side != SIO_SERVER)
			unwatch(s->cfd);
		if (side != SIO_CLIENT)
			unwatch(s->sfd);
	}
	for (int k = sio.i + 1; k < sio.n; k++) {
		uint64_t d = sio.ev[k].data.u64;

		if ((d & ~(uint64_t)1) == (uint64_t)(uintptr_t)s &&
		    (side == SIO_ALL || (int)(d & 1) == side))
			sio.ev[k].data.u64 = 0;
	}
	if (side != SIO_ALL) {
		s->io &= (uint8_t)~((SIO_R | SIO_W) << SIO_READY_SHIFT(side));
		s->iox &= (uint8_t)~SIO_END(side);
		return;
	}
	if (s->iox & SIO_QUEUED)
		for (unsigned k = 0; k < sio.qn; k++)
			if (sio.q[(sio.qh + k) % sio.qcap] == s)
				sio.q[(sio.qh + k) % sio.qcap] = NULL;
	s->iox = 0;
	s->io = 0;
	if (sio.cur == s)
		sio.cur = NULL;
}

void
sio_detach(struct worker *w, struct session *s)
{
	s->iox |= SIO_SHARED;
	sio_forget(w, s, SIO_ALL);
}
