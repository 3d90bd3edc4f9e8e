/* SPDX-License-Identifier: BSD-2-Clause */
/* handoff.c — established sessions moving to a newer generation on reload
 * (see handoff.h for the wire format). The master gives each worker a
 * SOCK_SEQPACKET socket of its own (heritage handoff_fd) on which it sends,
 * after a reload, one end of a fresh socketpair per (old worker, new worker)
 * pair: "send" to the old one, "receive" to the new one. The receiver greets
 * with its version; once the old worker drains, it walks its idle sessions
 * and sends each (record plus both descriptors), at most HANDOFF_WINDOW
 * unanswered per channel; the receiver adopts it, or sends it back when it
 * is full or leaving. What cannot move (pending bytes, mid-connect, another
 * version) stays and drains as before; the walk comes back for sessions
 * that become movable. Runs in a worker's loop; never blocks; allocates
 * only when a channel arrives. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handoff.h"
#include "handoff_worker.h"
#include "heritage.h"
#include "log.h"
#include "relay.h"
#include "session.h"
#include "stats.h"
#include "worker.h"

#define HANDOFF_WINDOW 128   /* sessions in flight per channel, unanswered */
#define HANDOFF_BATCH 512    /* sessions sent per loop iteration at most */
#define HANDOFF_RETRY 0.05   /* seconds before walking again for sessions that became movable */
#define HANDOFF_FULL_PAUSE 1.0 /* seconds a receiver that said FULL gets no offer */
#define HANDOFF_READS 64     /* messages read per wake-up of a channel */

enum chan_role { CHAN_SEND = 1, CHAN_RECV };

struct chan {
	ev_io io;
	int fd; /* -1: closed */
	enum chan_role role;
	/* CHAN_SEND */
	int ready;          /* greeted with our version */
	int gone;           /* the receiver said BYE: close once answered for */
	int blocked;        /* the socket was full: wait for it to drain */
	unsigned inflight;  /* sent, not answered */
	double full_until;  /* the receiver said it cannot take any: not before */
	/* CHAN_RECV: answers owed, sent as the socket takes them */
	unsigned taken, rejected;
	int hello;          /* the greeting still to send */
	int bye;            /* BYE still to send (we drain) */
	int ret_pending;    /* a RETURN waits for room (ret, ret_fds) */
	struct handoff_msg ret;
	int ret_fds[2];
};

#define HOLD_MAX 64

struct handoff {
	ev_io ctl;       /* the master's socket */
	ev_timer pump_w; /* the next walk */
	struct chan **chans; /* each allocated once: libev holds their watchers */
	unsigned nchans, cap;
	unsigned nfree;  /* closed channels whose slot may be taken again */
	unsigned next;   /* round robin over send channels */
	unsigned cursor; /* the wheel slot the walk goes on from (pump) */
	uint16_t hello_version;
	int corrupt_every; /* test hook: every Nth record sent is damaged */
	unsigned sent;
	double stall;      /* test hook: seconds a receiver leaves a new channel unread */
	ev_timer stall_w;
	/* Test hook: seconds a sender keeps copies of a sent session's
	 * descriptors, as a sender the scheduler stopped between its send and
	 * its close would; HOLD_MAX sessions at most. */
	double hold;
	ev_timer hold_w;
	int held[2 * HOLD_MAX];
	unsigned nheld;
	/* Two descriptors held in reserve and let go just before each read
	 * that may bring descriptors: the kernel drops (closes) what it
	 * cannot install, which would cut the connections they carry. When
	 * they cannot be taken back, reading waits (room_w) and the senders'
	 * windows hold the rest in the kernel meanwhile. */
	int spare[2];
	ev_timer room_w;
	int ctl_gone; /* the master closed its end */
};

static struct handoff ho = { .spare = { -1, -1 } };

#define HANDOFF_ROOM_RETRY 0.1 /* seconds before reading again after no room */

static void pump(struct worker *);

/* Close channel c. Sessions sent on it and not answered for went down with a
 * receiver that died (lost = 1), or, when we are the one leaving (lost =
 * 0), are in the hands of a receiver that takes them. */
static void
chan_end(struct worker *w, struct chan *c, int lost)
{
	if (c->fd == -1)
		return;
	ev_io_stop(w->loop, &c->io);
	close(c->fd);
	c->fd = -1;
	ho.nfree++;
	/* The last channel a draining worker waited for may let it go. */
	if (c->role == CHAN_RECV && w->draining)
		worker_session_closed(w);
	if (c->ret_pending) {
		/* Nobody to give it back to: the connection is lost. */
		close(c->ret_fds[0]);
		close(c->ret_fds[1]);
		c->ret_pending = 0;
		log_warnx("hand-off: a session given back was lost with its channel");
	}
	if (c->role == CHAN_SEND && c->inflight > 0) {
		if (lost) {
			log_warnx("hand-off: %u sessions in flight lost with a receiver",
			    c->inflight);
			relay_handed(w, 0, c->inflight);
		} else {
			relay_handed(w, c->inflight, 0);
		}
		c->inflight = 0;
	}
}

static void
chan_close(struct worker *w, struct chan *c)
{
	chan_end(w, c, 1);
}

/* Send one message with descriptors (nfds 0 or 2). Returns 0; 1 when the
 * socket is full (wait until it is writable); 2 when the kernel is short of
 * something else (memory, or too many descriptors in flight for our user:
 * RLIMIT_NOFILE), to try again in a moment; -1 on a dead channel. */
static int
chan_send(struct chan *c, const struct handoff_msg *m, const int *fds, int nfds)
{
	ssize_t n = handoff_send(c->fd, m, fds, (unsigned)nfds);

	if (n == (ssize_t)sizeof(*m))
		return 0;
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 1;
	/* ETOOMANYREFS: too many descriptors in flight for our user
	 * (RLIMIT_NOFILE); they come back as the receivers read. */
	if (n == -1 && (errno == ENOBUFS || errno == ENOMEM || errno == ETOOMANYREFS))
		return 2;
	return -1;
}

/* Take the reserve back. Returns 1 when both are held. */
static int
spares_take(void)
{
	for (int i = 0; i < 2; i++)
		if (ho.spare[i] == -1)
			ho.spare[i] = fcntl(ho.ctl.fd, F_DUPFD_CLOEXEC, 0);
	return ho.spare[0] != -1 && ho.spare[1] != -1;
}

static void room_wait(struct worker *);

/* Read one message (handoff_recv, at most two descriptors), with room for
 * two descriptors guaranteed: -2 (and reading paused for a moment) when
 * there is none. */
static ssize_t
recv_room(struct worker *w, int fd, struct handoff_msg *m, int fds[2], int *nfds, int *truncated)
{
	ssize_t n;

	if (!spares_take()) {
		room_wait(w);
		return -2;
	}
	for (int i = 0; i < 2; i++) {
		close(ho.spare[i]);
		ho.spare[i] = -1;
	}
	{
		unsigned k;

		n = handoff_recv(fd, m, fds, 2, &k, truncated);
		*nfds = (int)k;
	}
	(void)spares_take();
	return n;
}

static void
close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* Two stream sockets, or not a session worth adopting. */
static int
fds_are_sockets(const int fds[2])
{
	for (int i = 0; i < 2; i++) {
		struct stat st;

		if (fstat(fds[i], &st) == -1 || !S_ISSOCK(st.st_mode))
			return 0;
	}
	return 1;
}

/* --- the receiving end (a new worker) ------------------------------------ */

static void chan_cb(struct ev_loop *, ev_io *, int);

static void
chan_want(struct worker *w, struct chan *c, int events)
{
	if (c->fd == -1 || (c->io.events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(w->loop, &c->io);
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(w->loop, &c->io);
}

/* Send the answers owed. Returns 1 when all are out, 0 when the socket is
 * full (the channel then waits for EV_WRITE), -1 when the channel died. */
static int
recv_flush(struct worker *w, struct chan *c)
{
	struct handoff_msg m;
	int rc;

	memset(&m, 0, sizeof(m));
	m.magic = HANDOFF_MAGIC;
	m.version = HANDOFF_VERSION;
	m.size = sizeof(m);
	if (c->hello) {
		m.kind = HANDOFF_HELLO;
		m.version = ho.hello_version;
		if ((rc = chan_send(c, &m, NULL, 0)) != 0)
			goto out;
		c->hello = 0;
		m.version = HANDOFF_VERSION;
	}
	if (c->ret_pending) {
		if ((rc = chan_send(c, &c->ret, c->ret_fds, 2)) != 0)
			goto out;
		close_fds(c->ret_fds, 2);
		c->ret_pending = 0;
	}
	if (c->taken > 0 || c->rejected > 0) {
		m.kind = HANDOFF_ACK;
		m.count = c->taken;
		m.rejected = c->rejected;
		if ((rc = chan_send(c, &m, NULL, 0)) != 0)
			goto out;
		c->taken = c->rejected = 0;
	}
	if (c->bye) {
		m.kind = HANDOFF_BYE;
		m.count = m.rejected = 0;
		if ((rc = chan_send(c, &m, NULL, 0)) != 0)
			goto out;
		c->bye = 0;
	}
	chan_want(w, c, EV_READ);
	return 1;
out:
	if (rc == -1) {
		chan_close(w, c);
		return -1;
	}
	chan_want(w, c, EV_WRITE);
	return 0;
}

/* One session offered: adopt it, or give it back when we cannot take it. */
static void
recv_session(struct worker *w, struct chan *c, const struct handoff_msg *m, const int fds[2])
{
	uint32_t why = 0;

	if (w->draining)
		why = HANDOFF_RET_DRAINING;
	else if (w->active >= w->max_active)
		why = HANDOFF_RET_FULL;
	else if (relay_adopt(w, m, fds[0], fds[1], 0) == 0) {
		c->taken++;
		return;
	} else if (errno != EINVAL) {
		/* No session object, or the kernel would not watch its sockets
		 * (ENOSPC: epoll's max_user_watches; ENOMEM): the sender keeps
		 * relaying it and offers it again later. */
		why = HANDOFF_RET_FULL;
	} else {
		/* Rows we cannot count in: not ours to relay. */
		log_warnx("hand-off: a session with rows out of range (%u, %u) refused",
		    m->listener_row, m->server_row);
		close_fds(fds, 2);
		c->rejected++;
		return;
	}
	c->ret = *m;
	c->ret.kind = HANDOFF_RETURN;
	c->ret.count = why;
	c->ret_fds[0] = fds[0];
	c->ret_fds[1] = fds[1];
	c->ret_pending = 1;
}

static void
recv_ready(struct worker *w, struct chan *c)
{
	for (int i = 0; i < HANDOFF_READS; i++) {
		struct handoff_msg m;
		int fds[2], nfds, trunc;
		const char *bad;
		ssize_t n;

		/* Answers first: a RETURN waiting for room stops the reading
		 * (the sender's window bounds what piles up meanwhile). */
		if ((c->ret_pending || c->hello || c->bye) && recv_flush(w, c) != 1)
			return;
		n = recv_room(w, c->fd, &m, fds, &nfds, &trunc);
		if (n == -2)
			break;
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			recv_flush(w, c);
			chan_close(w, c);
			return;
		}
		if (n == -1)
			break;
		bad = handoff_check(&m, (size_t)n, nfds, trunc);
		if (bad == NULL && m.kind != HANDOFF_SESSION)
			bad = "not a session";
		if (bad == NULL && !fds_are_sockets(fds))
			bad = "descriptors that are not sockets";
		if (bad != NULL) {
			log_warnx("hand-off: unreadable message (%s) rejected", bad);
			STATS_ADD(w->slot, handoff_rejected, 1);
			close_fds(fds, nfds);
			/* Whatever it was, a message with descriptors or that
			 * says it is a session is answered for, so that the
			 * sender's count of unanswered ones comes down. */
			if (nfds > 0 || ((size_t)n >= 12 && m.magic == HANDOFF_MAGIC &&
			                    m.kind == HANDOFF_SESSION))
				c->rejected++;
			continue;
		}
		recv_session(w, c, &m, fds);
	}
	recv_flush(w, c);
}

/* --- the sending end (an old worker) ------------------------------------- */

static void
send_answer(struct worker *w, struct chan *c, const struct handoff_msg *m, const int fds[2])
{
	unsigned n;

	switch (m->kind) {
	case HANDOFF_HELLO:
		if (m->version != HANDOFF_VERSION) {
			log_warnx("hand-off: a new worker speaks version %u, we speak %u: our "
			          "sessions stay here and drain", m->version, HANDOFF_VERSION);
			chan_close(w, c);
			return;
		}
		c->ready = 1;
		log_debug("hand-off: a new worker greeted us (version %u)", m->version);
		return;
	case HANDOFF_ACK:
		/* Never more than we sent: a confused peer must not make our
		 * counts go below zero. */
		n = m->count > c->inflight ? c->inflight : m->count;
		c->inflight -= n;
		relay_handed(w, n, 0);
		n = m->rejected > c->inflight ? c->inflight : m->rejected;
		if (n > 0) {
			log_warnx("hand-off: %u sessions could not be read by the new worker "
			          "and are lost", n);
			c->inflight -= n;
			relay_handed(w, 0, n);
		}
		return;
	case HANDOFF_BYE:
		c->ready = 0;
		c->gone = 1;
		return;
	case HANDOFF_RETURN:
		if (c->inflight == 0) {
			close_fds(fds, 2);
			return;
		}
		c->inflight--;
		c->full_until = w->now + HANDOFF_FULL_PAUSE;
		log_debug("hand-off: a session given back (%s)",
		    m->count == HANDOFF_RET_DRAINING ? "the new worker is leaving"
		                                     : "the new worker cannot take it now");
		/* A receiver that leaves will never take one: no more offers. */
		if (m->count == HANDOFF_RET_DRAINING)
			c->ready = 0;
		if (relay_adopt(w, m, fds[0], fds[1], 1) == -1) {
			/* Its object was ours a moment ago; only the kernel
			 * refusing to watch its sockets again (epoll's watch
			 * limit) leaves us nothing to relay it with. */
			log_warn("hand-off: a session given back could not be taken again");
			close_fds(fds, 2);
			relay_handed(w, 0, 1);
		}
		return;
	default:
		return;
	}
}

static void
send_ready(struct worker *w, struct chan *c, int revents)
{
	for (int i = 0; i < HANDOFF_READS && c->fd != -1; i++) {
		struct handoff_msg m;
		int fds[2], nfds, trunc;
		const char *bad;
		ssize_t n = recv_room(w, c->fd, &m, fds, &nfds, &trunc);

		if (n == -2)
			break;
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			chan_close(w, c);
			break;
		}
		if (n == -1)
			break;
		bad = handoff_check(&m, (size_t)n, nfds, trunc);
		if (bad == NULL && m.kind == HANDOFF_SESSION)
			bad = "a session sent the wrong way";
		if (bad == NULL && m.kind == HANDOFF_RETURN && !fds_are_sockets(fds))
			bad = "descriptors that are not sockets";
		if (bad != NULL) {
			log_warnx("hand-off: unreadable answer (%s); closing the channel", bad);
			STATS_ADD(w->slot, handoff_rejected, 1);
			close_fds(fds, nfds);
			chan_close(w, c);
			break;
		}
		send_answer(w, c, &m, fds);
		/* A receiver that leaves waits for us to close: as soon as
		 * nothing sent on it is unanswered. */
		if (c->gone && c->inflight == 0) {
			chan_end(w, c, 0);
			break;
		}
	}
	if (c->fd != -1 && (revents & EV_WRITE)) {
		c->blocked = 0;
		chan_want(w, c, EV_READ);
	}
	if (w->draining)
		pump(w);
}

static void
chan_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = ev_userdata(loop);
	struct chan *c = io->data;

	if (c->role == CHAN_RECV) {
		if ((revents & EV_WRITE) && recv_flush(w, c) != 1)
			return;
		if (c->fd != -1)
			recv_ready(w, c);
		return;
	}
	send_ready(w, c, revents);
}

/* A send channel that can take a session now, round robin; NULL: none. */
static struct chan *
pick(struct worker *w)
{
	for (unsigned k = 0; k < ho.nchans; k++) {
		struct chan *c = ho.chans[(ho.next + k) % ho.nchans];

		if (c->fd == -1 || c->role != CHAN_SEND || !c->ready || c->blocked ||
		    c->inflight >= HANDOFF_WINDOW || c->full_until > w->now)
			continue;
		ho.next = (ho.next + k + 1) % ho.nchans;
		return c;
	}
	return NULL;
}

/* Send s on c. Returns 0 when it went, 1 when c is full (s stays), -1 when
 * c died (s stays). */
static int
send_one(struct worker *w, struct chan *c, struct session *s)
{
	struct handoff_msg m;
	int fds[2] = { s->cfd, s->sfd }, rc;

	relay_export(w, s, &m);
	if (ho.corrupt_every > 0 && ++ho.sent % (unsigned)ho.corrupt_every == 0)
		m.size ^= 0x40; /* the test hook: a record the receiver must refuse */
	rc = chan_send(c, &m, fds, 2);
	if (rc == 1) {
		c->blocked = 1;
		chan_want(w, c, EV_READ | EV_WRITE);
		return 1;
	}
	if (rc == 2)
		return 1; /* the walk comes back after HANDOFF_RETRY */
	if (rc == -1) {
		log_warn("hand-off: a channel to a new worker failed");
		chan_close(w, c);
		return -1;
	}
	c->inflight++;
	if (ho.hold > 0 && ho.nheld < HOLD_MAX) {
		ho.held[2 * ho.nheld] = dup(s->cfd);
		ho.held[2 * ho.nheld + 1] = dup(s->sfd);
		ho.nheld++;
		if (!ev_is_active(&ho.hold_w)) {
			ev_timer_set(&ho.hold_w, ho.hold, 0.);
			ev_timer_start(w->loop, &ho.hold_w);
		}
	}
	relay_detach(w, s);
	return 0;
}

/* Walk the idle sessions from where the last walk stopped and send the
 * movable ones while a channel takes them. Comes back soon while sessions
 * remain: those not movable yet (bytes pending, connecting) may become so. */
static void
pump(struct worker *w)
{
	/* The rooms of sessions that relay unhindered (see relay_movable). */
	static const enum session_room rooms[] = { ROOM_IDLE, ROOM_CLIENT_FIN, ROOM_SERVER_FIN };
	const unsigned nslots = WHEEL_SLOTS * (sizeof(rooms) / sizeof(rooms[0]));
	unsigned sent = 0, any = 0, seen = 0;
	struct chan *c = NULL;

	if (!w->draining)
		return;
	for (unsigned k = 0; k < ho.nchans; k++)
		if (ho.chans[k]->fd != -1 && ho.chans[k]->role == CHAN_SEND)
			any = 1;
	if (!any) {
		ev_timer_stop(w->loop, &ho.pump_w);
		return;
	}
	unsigned start = ho.cursor % nslots;

	for (unsigned i = 0; i < nslots && sent < HANDOFF_BATCH; i++) {
		unsigned k = (start + i) % nslots;
		struct wlink *l = w->rooms[rooms[k / WHEEL_SLOTS]].slot[k % WHEEL_SLOTS], *next;

		for (; l != NULL && sent < HANDOFF_BATCH; l = next) {
			struct session *s = SESSION_OF(l);

			next = l->next;
			seen++;
			if (!relay_movable(w, s))
				continue;
			if ((c = pick(w)) == NULL)
				goto out;
			if (send_one(w, c, s) != 0)
				goto out;
			sent++;
		}
		if (l != NULL)
			break; /* the batch is spent: this slot again next time */
		ho.cursor = (k + 1) % nslots;
	}
out:
	log_debug("hand-off: walked %u sessions, sent %u; %u open, %u in flight", seen, sent,
	    w->active, w->handoff_inflight);
	if (w->active - w->handoff_inflight == 0) {
		ev_timer_stop(w->loop, &ho.pump_w);
		return;
	}
	/* Straight on while sessions go; a pause when no channel could take
	 * one or nothing was movable. */
	ev_timer_stop(w->loop, &ho.pump_w);
	ev_timer_set(&ho.pump_w, sent == HANDOFF_BATCH ? 0. : HANDOFF_RETRY, 0.);
	ev_timer_start(w->loop, &ho.pump_w);
}

static void
pump_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	pump(ev_userdata(loop));
}

/* --- the master's socket ------------------------------------------------- */

static void
chan_add(struct worker *w, int fd, enum chan_role role)
{
	struct chan *c;

	/* A slot whose channel closed is taken again: channels come with
	 * every reload while a worker drains. */
	c = NULL;
	for (unsigned i = 0; ho.nfree > 0 && i < ho.nchans && c == NULL; i++)
		if (ho.chans[i]->fd == -1) {
			c = ho.chans[i];
			ho.nfree--;
		}
	if (c == NULL && ho.nchans == ho.cap) {
		unsigned cap = ho.cap ? ho.cap * 2 : 16;
		struct chan **p = realloc(ho.chans, cap * sizeof(*p));

		if (p == NULL) {
			log_warn("hand-off: no memory for a channel");
			close(fd);
			return;
		}
		ho.chans = p;
		ho.cap = cap;
	}
	if (c == NULL) {
		if ((c = malloc(sizeof(*c))) == NULL) {
			log_warn("hand-off: no memory for a channel");
			close(fd);
			return;
		}
		ho.chans[ho.nchans++] = c;
	}
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->role = role;
	ev_io_init(&c->io, chan_cb, fd, EV_READ);
	c->io.data = c;
	ev_io_start(w->loop, &c->io);
	if (role == CHAN_RECV) {
		c->hello = 1;
		recv_flush(w, c);
		if (ho.stall > 0 && c->fd != -1) {
			/* The test hook: greet, then read nothing for a while. */
			ev_io_stop(w->loop, &c->io);
			if (!ev_is_active(&ho.stall_w)) {
				ev_timer_set(&ho.stall_w, ho.stall, 0.);
				ev_timer_start(w->loop, &ho.stall_w);
			}
		}
	}
}

/* No room for descriptors: read nothing that may carry some for a moment. */
static void
room_wait(struct worker *w)
{
	if (ev_is_active(&ho.room_w))
		return;
	for (unsigned i = 0; i < ho.nchans; i++)
		if (ho.chans[i]->fd != -1)
			chan_want(w, ho.chans[i], ho.chans[i]->io.events & EV_WRITE);
	ev_io_stop(w->loop, &ho.ctl);
	ev_timer_set(&ho.room_w, HANDOFF_ROOM_RETRY, 0.);
	ev_timer_start(w->loop, &ho.room_w);
}

static void
room_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = ev_userdata(loop);

	for (unsigned i = 0; i < ho.nchans; i++)
		if (ho.chans[i]->fd != -1 && !(ho.stall > 0 && ev_is_active(&ho.stall_w) &&
		                                 ho.chans[i]->role == CHAN_RECV))
			chan_want(w, ho.chans[i], (ho.chans[i]->io.events & EV_WRITE) | EV_READ);
	if (!ho.ctl_gone)
		ev_io_start(loop, &ho.ctl);
}

static void
stall_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = ev_userdata(loop);

	for (unsigned i = 0; i < ho.nchans; i++)
		if (ho.chans[i]->fd != -1 && ho.chans[i]->role == CHAN_RECV)
			chan_want(w, ho.chans[i], EV_READ | EV_WRITE);
}

static void
hold_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = ev_userdata(loop);

	close_fds(ho.held, (int)(2 * ho.nheld));
	ho.nheld = 0;
	worker_session_closed(w); /* a draining worker may leave now */
}

static void
ctl_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = ev_userdata(loop);

	for (int i = 0; i < HANDOFF_READS; i++) {
		struct handoff_msg m;
		int fds[2], nfds, trunc;
		ssize_t n = recv_room(w, io->fd, &m, fds, &nfds, &trunc);

		if (n == -2)
			return;
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			/* The master is gone: no more channels will come. The
			 * descriptor stays open: the reserve is made of it. */
			ev_io_stop(loop, io);
			ho.ctl_gone = 1;
			return;
		}
		if (n == -1)
			return;
		if (trunc || nfds != 1 || (size_t)n != sizeof(m) || m.magic != HANDOFF_MAGIC ||
		    (m.kind != HANDOFF_CHAN_SEND && m.kind != HANDOFF_CHAN_RECV)) {
			log_warnx("hand-off: the master sent a message we cannot read");
			close_fds(fds, nfds);
			continue;
		}
		log_debug("hand-off: a channel to %s sessions on",
		    m.kind == HANDOFF_CHAN_SEND ? "send" : "receive");
		chan_add(w, fds[0], m.kind == HANDOFF_CHAN_SEND ? CHAN_SEND : CHAN_RECV);
	}
	if (w->draining)
		pump(w);
}

void
handoff_init(struct worker *w, int fd)
{
	const char *v;

	if (fd < 0)
		return;
	w->handoff = &ho;
	ho.hello_version = HANDOFF_VERSION;
	/* Test hooks (tests/i_handoff): greet with another version; damage
	 * every Nth record sent; leave new channels unread for a while; keep
	 * sent sessions' descriptors open for a while. */
	if ((v = getenv("SLUICE_TEST_HANDOFF_VERSION")) != NULL)
		ho.hello_version = (uint16_t)atoi(v);
	if ((v = getenv("SLUICE_TEST_HANDOFF_CORRUPT")) != NULL)
		ho.corrupt_every = atoi(v);
	if ((v = getenv("SLUICE_TEST_HANDOFF_STALL_MS")) != NULL)
		ho.stall = atoi(v) / 1000.0;
	if ((v = getenv("SLUICE_TEST_HANDOFF_HOLD_MS")) != NULL)
		ho.hold = atoi(v) / 1000.0;
	ev_init(&ho.stall_w, stall_cb);
	ev_init(&ho.hold_w, hold_cb);
	ev_init(&ho.room_w, room_cb);
	ev_io_init(&ho.ctl, ctl_cb, fd, EV_READ);
	ev_io_start(w->loop, &ho.ctl);
	(void)spares_take();
	ev_init(&ho.pump_w, pump_cb);
}

void
handoff_drain(struct worker *w)
{
	if (w->handoff == NULL)
		return;
	/* A draining worker takes no sessions: it says so to every sender
	 * (BYE, and by returning what they still offer) and offers its own to
	 * whoever it can. */
	for (unsigned i = 0; i < ho.nchans; i++)
		if (ho.chans[i]->fd != -1 && ho.chans[i]->role == CHAN_RECV) {
			ho.chans[i]->bye = 1;
			recv_flush(w, ho.chans[i]);
		}
	pump(w);
}

int
handoff_busy(const struct worker *w)
{
	if (w->handoff == NULL)
		return 0;
	if (ho.nheld > 0)
		return 1; /* the test hook's copies */
	/* A sender may still have sessions on the way in one. */
	for (unsigned i = 0; i < ho.nchans; i++)
		if (ho.chans[i]->fd != -1 && ho.chans[i]->role == CHAN_RECV)
			return 1;
	return 0;
}

void
handoff_fini(struct worker *w)
{
	if (w->handoff == NULL)
		return;
	for (unsigned i = 0; i < ho.nchans; i++)
		chan_end(w, ho.chans[i], 0);
	ev_timer_stop(w->loop, &ho.pump_w);
	ev_timer_stop(w->loop, &ho.room_w);
	ev_timer_stop(w->loop, &ho.stall_w);
}
