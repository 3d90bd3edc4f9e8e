/* SPDX-License-Identifier: BSD-2-Clause */
/* worker.c — a worker process: its libev loop, accepting on the inherited
 * listeners, the per-process pools, its stats slot, and the way out (fast stop
 * or drain). Runs in each child of the master. Never touches another worker's
 * slot, never exits because of one connection. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "command.h"
#include "conf.h"
#include "connlog.h"
#include "edge.h"
#include "handoff_worker.h"
#include "heritage.h"
#include "log.h"
#include "pool.h"
#include "proctitle.h"
#include "relay.h"
#include "session.h"
#include "stats.h"
#include "upstream.h"
#include "worker.h"

#define WORKER_ACCEPTS_PER_WAKEUP 4
#define WORKER_ACCEPTS_MAX 64 /* per wake-up, for a worker below the mean */
#define WORKER_ACCEPT_PAUSE 0.5 /* seconds to stop accepting on EMFILE/ENFILE */
#define WORKER_GLOBAL_RECHECK 0.1 /* seconds between checks of the global limit */
#define WORKER_FAIR_TURN 0.01     /* seconds a worker over its fair share sits out */
/* Mean clients per accepting worker below which new ones are dealt out one
 * by one (accept_cb). */
#define WORKER_LIGHT_LOAD 4
#define WORKER_DRAIN_ACCEPTS 1024 /* queued clients a draining worker takes at most */
#define WORKER_SESSION_CHUNK (64 * 1024)

static struct worker worker;

/* CLOCK_MONOTONIC in seconds: the worker's time for deadlines and rates.
 * ev_now() follows the wall clock, which an operator or NTP may step. */
static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs first after every poll (highest priority), before any I/O or timer
 * callback of that iteration: one clock read per iteration, like ev_now. */
static void
clock_cb(struct ev_loop *loop, ev_check *c, int revents)
{
	struct worker *w = ev_userdata(loop);

	w->now = mono_now();
}

static ev_signal sig_term, sig_int, sig_quit, sig_usr1;
static ev_timer heartbeat, drain_timer;

/* Register (EPOLL_CTL_ADD) or withdraw (EPOLL_CTL_DEL) one listener in our
 * accept set. Adding it again after a wake-up puts us at the tail of the
 * socket's queue of exclusive waiters, so the next connection wakes the next
 * worker: measured on 4 processes, accepts split 22-27% each, against 79%
 * for the first process with EPOLLEXCLUSIVE alone. */
static void
accept_ctl(struct worker *w, int op, unsigned li)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = li };

	if (w->conf->listeners[li].reuseport)
		return; /* in rp_epfd, see rp_update */
	if (epoll_ctl(w->accept_epfd, op, w->listen_fds[li], &ev) == -1 && errno != ENOENT &&
	    errno != EEXIST)
		log_warn("epoll_ctl on listener %s", w->conf->listeners[li].address);
}

/* A worker's reuseport sockets have nobody else to accept them: it stays
 * on them through the duty and fairness turns, and comes off them only at
 * its limit, for a shortage, or to drain. Their clients then wait in the
 * queue (the cost of the mode, sluice.conf(5)). */
static void
rp_update(struct worker *w)
{
	int on = !w->draining && (w->paused & ~(WORKER_PAUSE_FAIR | WORKER_PAUSE_DUTY)) == 0;

	if (w->rp_epfd == -1 || on == ev_is_active(&w->rp_w))
		return;
	if (on)
		ev_io_start(w->loop, &w->rp_w);
	else
		ev_io_stop(w->loop, &w->rp_w);
	STATS_SET(w->slot, accepting, on || ev_is_active(&w->accept_w));
}

/* Withdrawing from the listeners' queues matters: a paused worker left in
 * them would still be handed connections it will not accept. */
static void
accept_stop(struct worker *w)
{
	rp_update(w);
	if (!ev_is_active(&w->accept_w))
		return;
	ev_io_stop(w->loop, &w->accept_w);
	for (unsigned i = 0; i < w->conf->nlisteners; i++)
		accept_ctl(w, EPOLL_CTL_DEL, i);
	STATS_SET(w->slot, accepting, w->rp_epfd != -1 && ev_is_active(&w->rp_w));
}

static void
accept_start(struct worker *w)
{
	rp_update(w);
	if (w->draining || w->paused || ev_is_active(&w->accept_w))
		return;
	for (unsigned i = 0; i < w->conf->nlisteners; i++)
		accept_ctl(w, EPOLL_CTL_ADD, i);
	ev_io_start(w->loop, &w->accept_w);
	STATS_SET(w->slot, accepting, 1);
}

/* Whether this worker is blocked by a shortage of its own (descriptors,
 * relay buffers): the others then pass it over when they look whose turn it
 * is to accept, as if it were full (see accept_view). */
static void
publish_blocked(struct worker *w)
{
	STATS_SET(w->slot, accept_blocked,
	    (w->paused & (WORKER_PAUSE_FDS | WORKER_PAUSE_MEMORY)) != 0);
}

void
worker_pause(struct worker *w, unsigned why, int on)
{
	if (on) {
		/* A fairness or duty turn is routine, not an overload: not counted. */
		if ((w->paused & why) == 0 && why != WORKER_PAUSE_FAIR &&
		    why != WORKER_PAUSE_DUTY)
			STATS_ADD(w->slot, accept_pauses, 1);
		w->paused |= why;
		publish_blocked(w);
		accept_stop(w);
		if (why == WORKER_PAUSE_FDS) {
			/* Out of descriptors: try again in a moment rather than
			 * spin on a listener that stays readable. */
			ev_timer_stop(w->loop, &w->accept_resume);
			ev_timer_set(&w->accept_resume, WORKER_ACCEPT_PAUSE, 0.);
			ev_timer_start(w->loop, &w->accept_resume);
		}
	} else if (w->paused & why) {
		w->paused &= ~why;
		publish_blocked(w);
		accept_start(w);
	}
}

/* Slots worth reading: one past the highest one in use, refreshed by the
 * heartbeat with a full scan (which lowers it when top slots are freed), so
 * the per-accept sum below reads a handful of slots instead of all of them. */
static void
global_scan_range(struct worker *w)
{
	const struct stats_seg *seg = w->h->stats;
	unsigned hw = w->h->slot + 1;

	for (unsigned i = 0; i < seg->nslots; i++)
		if (__atomic_load_n(&seg->slots[i].state, __ATOMIC_RELAXED) != STATS_SLOT_FREE)
			hw = i + 1 > hw ? i + 1 : hw;
	w->slot_hw = hw;
}

unsigned
worker_slots(struct worker *w)
{
	const struct stats_seg *seg = w->h->stats;

	/* The master takes the lowest free slot, so a worker newer than our
	 * last scan sits exactly at slot_hw: one load finds it at once. */
	while (w->slot_hw < seg->nslots &&
	       __atomic_load_n(&seg->slots[w->slot_hw].state, __ATOMIC_RELAXED) != STATS_SLOT_FREE)
		w->slot_hw++;
	return w->slot_hw;
}

/* Connections open in the whole daemon: every live slot's gauge. */
static unsigned
global_active(struct worker *w)
{
	const struct stats_seg *seg = w->h->stats;
	unsigned sum = 0, hi = worker_slots(w);

	for (unsigned i = 0; i < hi; i++) {
		const struct stats_slot *s = &seg->slots[i];
		uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

		if (st == STATS_SLOT_RUNNING || st == STATS_SLOT_DRAINING)
			sum += (unsigned)STATS_GET(s, active);
	}
	return sum;
}

/* --- whose turn it is to accept --------------------------------------------
 * Where descriptors per process are capped, holding many connections takes
 * more workers than CPUs. If all of them took new connections, each would
 * see a trickle of events and sleep between them: measured with 8 workers on
 * 2 CPUs, 4.5 voluntary context switches per connection against 0.6 with 2
 * workers, and 0.6 x the connections per second. So only accept_workers of
 * them (the CPUs, by default) take new connections at a time: the running
 * workers in slot order, those not yet full (7/8 of their maximum) first. A
 * worker filling up hands its turn on, one that empties takes it back, and
 * the connections a worker holds stay where they are. The others sit out of
 * the listeners' queues and look again on a timer, briskly while a worker on
 * duty is near full or missing, slowly otherwise.
 *
 * Each worker decides alone from the slots' gauges: no token, no lock. Two
 * workers reading at different moments may both believe it is their turn,
 * or neither, for one look: the first costs some spreading, the second a
 * short wait in the listen queue, never a connection. */
#define WORKER_DUTY_LOOK_SOON 0.02
#define WORKER_DUTY_LOOK_LATER 0.25

struct accept_view {
	unsigned load, n; /* connections and workers of those taking them now */
	int mine;         /* this worker is one of them */
	int soon;         /* one of them is near full, or too few: look soon */
};

static int
slot_running(const struct stats_seg *seg, unsigned i, unsigned *active, int *blocked)
{
	const struct stats_slot *s = &seg->slots[i];

	if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != STATS_SLOT_RUNNING)
		return 0;
	*active = (unsigned)STATS_GET(s, active);
	*blocked = STATS_GET(s, accept_blocked) != 0;
	return 1;
}

static void
accept_view(struct worker *w, struct accept_view *v)
{
	const struct stats_seg *seg = w->h->stats;
	unsigned hi = worker_slots(w), me = w->h->slot, k = w->duty_k, a;
	unsigned taken = 0;

	memset(v, 0, sizeof(*v));
	/* Two passes in the order of turns: the workers not full, then the
	 * full ones; the first k take connections (all of them when k is 0).
	 * A worker out of descriptors or buffers counts as full: its turn
	 * must pass on, or clients would wait for its shortage to end. */
	for (int full = 0; full <= 1; full++) {
		for (unsigned i = 0; i < hi; i++) {
			int is_full, blocked;

			if (i == me) {
				if (w->draining)
					continue;
				a = w->active; /* our own, exact */
				blocked = (w->paused & (WORKER_PAUSE_FDS | WORKER_PAUSE_MEMORY)) != 0;
			} else if (!slot_running(seg, i, &a, &blocked))
				continue;
			is_full = w->duty_k != 0 && (a >= w->duty_full || blocked);
			if (is_full != full)
				continue;
			if (k != 0 && taken >= k)
				break;
			taken++;
			v->load += a;
			v->n++;
			if (i == me)
				v->mine = 1;
			if (k != 0 && a >= w->duty_full - w->duty_full / 8)
				v->soon = 1;
		}
	}
	if (k != 0 && taken < k)
		v->soon = 1;
}

static void
duty_look(struct worker *w, const struct accept_view *v)
{
	ev_timer_stop(w->loop, &w->duty_timer);
	ev_timer_set(&w->duty_timer, v->soon ? WORKER_DUTY_LOOK_SOON : WORKER_DUTY_LOOK_LATER, 0.);
	ev_timer_start(w->loop, &w->duty_timer);
}

/* Sit out a turn (WORKER_FAIR_TURN): the listeners' queues are the other
 * workers' for a moment. */
static void
fair_turn(struct worker *w)
{
	worker_pause(w, WORKER_PAUSE_FAIR, 1);
	ev_timer_start(w->loop, &w->fair_timer);
}

/* After accepting: still our turn? And among those whose turn it is, rotation
 * alone spreads wake-ups, not load: under a flood from many clients some
 * workers come back to accept sooner than others. A worker holding clearly
 * more than its fair share sits out a turn, leaving the listeners' queues to
 * the others for a moment. */
static void
accept_review(struct worker *w)
{
	struct accept_view v;

	if (w->draining)
		return;
	accept_view(w, &v);
	if (w->duty_k != 0 && !v.mine) {
		worker_pause(w, WORKER_PAUSE_DUTY, 1);
		duty_look(w, &v);
		return;
	}
	worker_pause(w, WORKER_PAUSE_DUTY, 0);
	/* Above 1.1 times the mean, plus 2 so steady loads are not churned
	 * (light ones are dealt out in accept_cb). */
	if (v.n > 1 && (uint64_t)w->active * v.n * 10 > (uint64_t)v.load * 11 + 20ull * v.n)
		fair_turn(w);
}

static void
duty_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = ev_userdata(loop);
	struct accept_view v;

	if (w->draining)
		return;
	accept_view(w, &v);
	if (v.mine) {
		worker_pause(w, WORKER_PAUSE_DUTY, 0);
		return;
	}
	duty_look(w, &v);
}

static void
fair_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	worker_pause(ev_userdata(loop), WORKER_PAUSE_FAIR, 0);
}

static int
over_global(struct worker *w)
{
	return global_active(w) >= w->conf->max_connections;
}

/* Accept a few connections from socket fd of listener li. Returns -1 when
 * accepting was paused. */
static int
accept_fd(struct worker *w, unsigned li, int fd_listen, unsigned max)
{
	for (unsigned i = 0; i < max; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		unsigned turn;
		int fd;

		if (w->active >= w->max_active) {
			/* Resumed by worker_session_closed below the limit. */
			worker_pause(w, WORKER_PAUSE_LIMIT, 1);
			return -1;
		}
		if (over_global(w)) {
			/* Others' closes do not reach us: re-checked by timer. */
			worker_pause(w, WORKER_PAUSE_GLOBAL, 1);
			if (!ev_is_active(&w->accept_resume)) {
				ev_timer_set(&w->accept_resume, WORKER_GLOBAL_RECHECK, 0.);
				ev_timer_start(w->loop, &w->accept_resume);
			}
			return -1;
		}
		/* The peer comes free with the accept: the edge judges it. */
		fd = accept4(fd_listen, (struct sockaddr *)&peer, &plen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			switch (errno) {
			case EAGAIN:
				return 0;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/* Out of descriptors or memory: stop accepting for a
				 * moment instead of spinning on a ready listener. */
				log_warn("accept on %s: pausing for %.1fs",
				    w->conf->listeners[li].address, WORKER_ACCEPT_PAUSE);
				worker_pause(w, WORKER_PAUSE_FDS, 1);
				return -1;
			default:
				log_warn("accept on %s", w->conf->listeners[li].address);
				return 0;
			}
		}
		addr_unix_terminate(&peer, plen);
		turn = w->paused & (WORKER_PAUSE_FAIR | WORKER_PAUSE_DUTY);
		relay_start(w, fd, li, (struct sockaddr *)&peer);
		/* That client made us pause (descriptors, memory). Being off
		 * duty or in a fairness turn already does not stop us: a
		 * reuseport socket is accepted whatever the turn, and a
		 * draining worker empties its queue (it would be reset). */
		if (w->paused & ~turn)
			return -1;
	}
	return 0;
}

/* Accept a few connections from listener li's socket. */
static int
accept_some(struct worker *w, unsigned li, unsigned max)
{
	return accept_fd(w, li, w->listen_fds[li], max);
}

/* Reuseport sockets: ours alone, so no turn to hand on; taking up to
 * WORKER_ACCEPTS_MAX a wake-up keeps one busy socket from starving the
 * loop. data.u32 is k: the own socket of listener k, or extra k - nlisteners. */
static void
rp_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = ev_userdata(loop);
	struct epoll_event ev[16];
	int n = epoll_wait(w->rp_epfd, ev, 16, 0);

	for (int i = 0; i < n; i++) {
		unsigned k = ev[i].data.u32, nl = w->conf->nlisteners;
		unsigned li = k < nl ? k : w->h->extra_listeners[k - nl];
		int fd = k < nl ? w->listen_fds[k] : w->h->extra_fds[k - nl];

		if (accept_fd(w, li, fd, WORKER_ACCEPTS_MAX) == -1)
			return;
	}
}

/* The reuseport set, at start. Returns 0, or -1 with errno. */
static int
rp_init(struct worker *w)
{
	const struct heritage *h = w->h;
	unsigned nl = w->conf->nlisteners;

	w->rp_epfd = -1;
	for (unsigned k = 0; k < nl + h->nextra; k++) {
		int fd = k < nl ? h->listen_fds[k] : h->extra_fds[k - nl];
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = k };

		if (k < nl && !w->conf->listeners[k].reuseport)
			continue;
		if (w->rp_epfd == -1 && (w->rp_epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
			return -1;
		if (epoll_ctl(w->rp_epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
			return -1;
	}
	if (w->rp_epfd != -1)
		ev_io_init(&w->rp_w, rp_cb, w->rp_epfd, EV_READ);
	return 0;
}

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = ev_userdata(loop);
	struct epoll_event ev[16];
	int n = epoll_wait(w->accept_epfd, ev, 16, 0);
	unsigned max = WORKER_ACCEPTS_PER_WAKEUP;
	struct accept_view v;
	int light = 0;

	/* A worker below the mean load of those accepting takes what it
	 * lacks in one go: between two wake-ups of a busy worker a burst can
	 * queue many clients, and 4 per wake-up left a burst of 100 split
	 * 87/13 when the other one came back to accept sooner. */
	if (n > 0) {
		accept_view(w, &v);
		/* Light load (a few streams starting together): the worker that
		 * wakes first would take them all before another got a CPU
		 * (4 at once went 3/1 or 4/0 in 28 bursts of 30). One above the
		 * mean sits out a turn instead, and one at or below it takes
		 * clients one at a time only while it stays there: 2/2 in 30 of
		 * 30. Back from such a turn it takes one whatever its load,
		 * so a worker that cannot take them (stopped, busy) delays a
		 * client by a turn at most, and only while loads are light. */
		light = v.n > 1 && v.load < (uint64_t)WORKER_LIGHT_LOAD * v.n;
		if (light && (uint64_t)w->active * v.n > v.load && !w->light_turn) {
			w->light_turn = 1;
			fair_turn(w);
			return;
		}
		w->light_turn = 0;
		if (v.n > 1 && w->active * v.n < v.load) {
			max += v.load / v.n - w->active;
			if (max > WORKER_ACCEPTS_MAX)
				max = WORKER_ACCEPTS_MAX;
		}
	}
	for (int i = 0; i < n; i++) {
		unsigned li = ev[i].data.u32;

		if (!light) {
			if (accept_some(w, li, max) == -1)
				return;
		} else {
			for (unsigned got = 0; got < max; got++) {
				unsigned before = w->active;

				if (accept_some(w, li, 1) == -1)
					return;
				if (w->active == before ||
				    (uint64_t)w->active * v.n > v.load + got + 1)
					break;
			}
		}
		/* Few accepts per wake-up, then to the back of the queue: a
		 * burst is shared out rather than drained by one worker. */
		accept_ctl(w, EPOLL_CTL_DEL, li);
		accept_ctl(w, EPOLL_CTL_ADD, li);
	}
	if (n > 0)
		accept_review(w);
}

/* EMFILE pauses end after a fixed time; a global-limit pause when the daemon
 * is below the limit again (polled: the closes happen in other workers). */
static void
accept_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = ev_userdata(loop);

	if (w->paused & WORKER_PAUSE_FDS) {
		/* Sessions that waited for a descriptor go first; if they
		 * still find none, the pause starts over. */
		w->paused &= ~WORKER_PAUSE_FDS;
		relay_retry_waiting(w);
		if (w->paused & WORKER_PAUSE_FDS)
			return;
		accept_start(w);
	}
	if ((w->paused & WORKER_PAUSE_GLOBAL) && global_active(w) >= w->conf->max_connections) {
		ev_timer_set(t, WORKER_GLOBAL_RECHECK, 0.);
		ev_timer_start(loop, t);
		return;
	}
	worker_pause(w, WORKER_PAUSE_GLOBAL, 0);
}

void
worker_session_closed(struct worker *w)
{
	if (w->draining) {
		if (w->active == 0 && !handoff_busy(w))
			ev_break(w->loop, EVBREAK_ALL);
		return;
	}
	if (w->active < w->max_active)
		worker_pause(w, WORKER_PAUSE_LIMIT, 0);
}

/* Resident memory from /proc/self/statm (pages), or 0 when unreadable. One
 * pread a second on a descriptor opened at start. */
static uint64_t
read_rss(struct worker *w)
{
	static long page;
	unsigned long size, resident;
	char buf[128];
	ssize_t n;

	if (w->statm_fd == -1)
		return 0;
	if (page == 0)
		page = sysconf(_SC_PAGESIZE);
	n = pread(w->statm_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
		return 0;
	return (uint64_t)resident * (uint64_t)page;
}

/* The once-a-second figures: pools, RSS and the heartbeat itself. */
static void
publish_pools(struct worker *w)
{
	struct pool_stats b, s, k;

	pool_get_stats(w->buffers, &b);
	pool_get_stats(w->sessions, &s);
	STATS_SET(w->slot, pool_buffers_total, b.total);
	STATS_SET(w->slot, pool_buffers_used, b.used);
	STATS_SET(w->slot, pool_buffers_free, b.total - b.used);
	STATS_SET(w->slot, pool_buffers_high_water, b.high_water);
	STATS_SET(w->slot, pool_buffers_failed, b.failed);
	STATS_SET(w->slot, pool_buffers_bytes_mapped, b.bytes_mapped);
	STATS_SET(w->slot, pool_sessions_total, s.total);
	STATS_SET(w->slot, pool_sessions_used, s.used);
	STATS_SET(w->slot, pool_sessions_free, s.total - s.used);
	STATS_SET(w->slot, pool_sessions_high_water, s.high_water);
	STATS_SET(w->slot, pool_sessions_failed, s.failed);
	STATS_SET(w->slot, pool_sessions_bytes_mapped, s.bytes_mapped);
	memset(&k, 0, sizeof(k));
	if (w->bulk != NULL)
		pool_get_stats(w->bulk, &k);
	STATS_SET(w->slot, pool_bulk_used, k.used);
	STATS_SET(w->slot, pool_bulk_high_water, k.high_water);
	STATS_SET(w->slot, pool_bulk_failed, k.failed);
	STATS_SET(w->slot, pool_bulk_bytes_mapped, k.bytes_mapped);
	STATS_SET(w->slot, pool_bytes_mapped, b.bytes_mapped + s.bytes_mapped + k.bytes_mapped);
	STATS_SET(w->slot, rss_bytes, read_rss(w));
	__atomic_store_n(&w->slot->heartbeat_ms, stats_now_ms(), __ATOMIC_RELAXED);
}

/* Where listeners and servers without a row in the segment count: nobody
 * reads these, so the hot path needs no test for a missing row. */
static struct stats_listener_counters sink_listener;
static struct stats_server_counters sink_server;

/* Resolve this worker's listener and server rows (see struct worker).
 * Returns 0, or -1 when out of memory. */
static int
rows_init(struct worker *w, const struct heritage *h)
{
	const struct conf *c = w->conf;
	const struct stats_seg *seg = h->stats;
	unsigned n = 0, *ubase;

	w->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	ubase = calloc(c->nupstreams, sizeof(*ubase));
	for (unsigned u = 0; u < c->nupstreams; u++) {
		if (ubase != NULL)
			ubase[u] = n;
		n += c->upstreams[u].nservers;
	}
	w->nlisteners = c->nlisteners;
	w->nservers = n;
	/* Past the config's entries, one per row of the segment, for sessions
	 * taken over whose listener or server this config lacks. */
	w->lstats = calloc(c->nlisteners + seg->nlisteners, sizeof(*w->lstats));
	w->sstats = calloc(n + seg->nservers + 1, sizeof(*w->sstats));
	w->sbase = ubase;
	if (ubase == NULL || w->lstats == NULL || w->sstats == NULL)
		return -1;
	for (unsigned i = 0; i < c->nlisteners; i++) {
		unsigned row = h->listener_rows ? h->listener_rows[i] : STATS_NO_ROW;

		w->lstats[i] = row < seg->nlisteners
		    ? stats_slot_listener(seg, h->slot, row) : &sink_listener;
	}
	for (unsigned k = 0; k < n; k++) {
		unsigned row = h->server_rows ? h->server_rows[k] : STATS_NO_ROW;

		w->sstats[k] = row < seg->nservers
		    ? stats_slot_server(seg, h->slot, row) : &sink_server;
	}
	for (unsigned r = 0; r < seg->nlisteners; r++)
		w->lstats[c->nlisteners + r] = stats_slot_listener(seg, h->slot, r);
	for (unsigned r = 0; r < seg->nservers; r++)
		w->sstats[n + r] = stats_slot_server(seg, h->slot, r);
	return 0;
}

unsigned
worker_listener_row(const struct worker *w, const struct session *s)
{
	if (session_foreign(w, s))
		return s->listener - w->nlisteners;
	return w->h->listener_rows != NULL ? w->h->listener_rows[s->listener] : STATS_NO_ROW;
}

unsigned
worker_server_row(const struct worker *w, const struct session *s)
{
	if (s->sfd == -1)
		return STATS_NO_ROW;
	if (session_foreign(w, s))
		return s->server_idx;
	return w->h->server_rows != NULL ? w->h->server_rows[w->sbase[session_upstream(w, s)] + s->server_idx]
	                                 : STATS_NO_ROW;
}

static void
heartbeat_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = ev_userdata(loop);

	publish_pools(w);
	global_scan_range(w);
	child_follow_log_level(w->h->stats);
	/* A worker on duty that has not accepted since a lower one came back
	 * below full finds out here at the latest. */
	if (w->duty_k != 0 && !(w->paused & WORKER_PAUSE_DUTY))
		accept_review(w);
}

static void
stop_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
	struct worker *w = ev_userdata(loop);

	log_debug("fast stop: closing %u connections", w->active);
	ev_break(loop, EVBREAK_ALL);
}

static void
drain_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = ev_userdata(loop);

	log_info("drain timeout: closing %u remaining connections", w->active);
	ev_break(loop, EVBREAK_ALL);
}

/* Stop accepting and let the connections we hold finish, within the drain
 * timeout. Closing our copies of the listening sockets matters: the master
 * and the new generation keep the ones still configured. */
static void
worker_drain(struct worker *w)
{
	if (w->draining)
		return;
	/* Clients already in the listen queue are ours to serve: when this is
	 * the last holder of a listener a reload removed, closing it would
	 * reset them. Bounded: a flood must not keep a draining worker here. */
	for (unsigned i = 0; i < w->conf->nlisteners && !w->paused; i++)
		for (unsigned k = 0; k < WORKER_DRAIN_ACCEPTS / WORKER_ACCEPTS_PER_WAKEUP &&
		                     !w->conf->listeners[i].reuseport;
		     k++) {
			unsigned before = w->active;

			if (accept_some(w, i, WORKER_ACCEPTS_PER_WAKEUP) == -1 ||
			    w->active == before)
				break;
		}
	/* Our reuseport sockets likewise, even off duty: nobody else in this
	 * generation accepts them. */
	for (unsigned i = 0; i < w->conf->nlisteners + w->h->nextra && w->rp_epfd != -1; i++) {
		unsigned nl = w->conf->nlisteners;

		if (i < nl && !w->conf->listeners[i].reuseport)
			continue;
		for (unsigned k = 0; k < WORKER_DRAIN_ACCEPTS / WORKER_ACCEPTS_PER_WAKEUP &&
		                     (w->paused & ~(WORKER_PAUSE_FAIR | WORKER_PAUSE_DUTY)) == 0;
		     k++) {
			unsigned before = w->active;

			if (accept_fd(w, i < nl ? i : w->h->extra_listeners[i - nl],
			        i < nl ? w->listen_fds[i] : w->h->extra_fds[i - nl],
			        WORKER_ACCEPTS_PER_WAKEUP) == -1 ||
			    w->active == before)
				break;
		}
	}
	w->draining = 1;
	proctitle_set("sluiced-worker", "sluiced: worker %u (generation %u, draining)",
	    w->h->index, w->h->generation);
	accept_stop(w);
	ev_timer_stop(w->loop, &w->accept_resume);
	close(w->accept_epfd);
	for (unsigned i = 0; i < w->conf->nlisteners; i++)
		close(w->listen_fds[i]);
	for (unsigned i = 0; i < w->h->nextra; i++)
		close(w->h->extra_fds[i]);
	if (w->rp_epfd != -1)
		close(w->rp_epfd);
	__atomic_store_n(&w->slot->state, STATS_SLOT_DRAINING, __ATOMIC_RELEASE);
	log_debug("draining %u connections", w->active);
	/* After a reload, the sessions move to the new generation as they
	 * can, and senders to us are told to stop; the drain timeout bounds
	 * what cannot move, and our wait for their channels to close. */
	handoff_drain(w);
	if (w->active == 0 && !handoff_busy(w)) {
		ev_break(w->loop, EVBREAK_ALL);
		return;
	}
	ev_timer_set(&drain_timer, w->conf->drain_timeout_ms / 1000.0, 0.);
	ev_timer_start(w->loop, &drain_timer);
}

static void
quit_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
	worker_drain(ev_userdata(loop));
}

static void
reopen_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
	if (log_reopen() == -1)
		log_warn("reopening the log file");
	else
		log_info("log file reopened");
	connlog_reopen(ev_userdata(loop));
}

/* Without an explicit cap, a worker takes what its descriptors can hold, up
 * to the daemon's limit: accepting into EMFILE would only fail later. */
static unsigned
max_active_default(const struct conf *c, unsigned extra_listen)
{
	struct rlimit rl;
	unsigned cap;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return c->max_connections;
	cap = conf_fd_capacity(c, (unsigned long)rl.rlim_cur, extra_listen);
	if (cap == 0)
		cap = 1;
	return cap < c->max_connections ? cap : c->max_connections;
}

void
worker_main(const struct heritage *h)
{
	const struct conf *c = h->conf;
	struct worker *w = &worker;
	char role[32];
	size_t session_budget;

	snprintf(role, sizeof(role), "worker %u", h->index);
	log_set_role(role);
	proctitle_set("sluiced-worker", "sluiced: worker %u (generation %u)", h->index,
	    h->generation);

	memset(w, 0, sizeof(*w));
	w->conf = c;
	w->h = h;
	w->slot = &h->stats->slots[h->slot];
	w->loop = EV_DEFAULT;
	w->buffer_size = c->buffer_size;
	w->max_active = c->max_connections_per_worker ? c->max_connections_per_worker
	                                              : max_active_default(c, h->nextra);
	ev_set_userdata(w->loop, w);
	w->now = mono_now();
	ev_check_init(&w->clock_w, clock_cb);
	ev_set_priority(&w->clock_w, EV_MAXPRI);
	ev_check_start(w->loop, &w->clock_w);
	/* The clock alone must not keep the loop running. */
	ev_unref(w->loop);

	w->slot->pid = getpid();
	w->slot->started_ms = stats_now_ms();

	/* If the master dies, stop taking connections and drain: no orphan
	 * keeps the port. The check after catches a master that died before
	 * the request was made (even before the fork returned here): with no
	 * connection taken yet, there is nothing to drain. Once in the loop, a
	 * later death arrives as SIGQUIT, held blocked until then. */
	prctl(PR_SET_PDEATHSIG, SIGQUIT);
	if (getppid() != h->master_pid) {
		log_warnx("the master (pid %d) is gone; not starting", (int)h->master_pid);
		__atomic_store_n(&w->slot->state, STATS_SLOT_EXITED, __ATOMIC_RELEASE);
		exit(WORKER_EXIT_OK);
	}

	/* Every refusal that depends on the config alone is made by conf.c
	 * already (pool bounds, weights), so what fails here is a shortage of
	 * memory or descriptors, which passes: the master respawns us with
	 * back-off on WORKER_EXIT_TEMPFAIL. Anything else still means we
	 * cannot run with this config. */
	w->buffers = pool_create(c->buffer_size, c->buffer_size * CONF_BUFFERS_PER_CHUNK,
	    c->max_memory - c->bulk_memory);
	if (w->buffers == NULL) {
		log_err("cannot set up the buffer pool (buffer_size %zu, max_memory %zu)",
		    c->buffer_size, c->max_memory);
		exit(heritage_exit_status(errno));
	}
	if (c->bulk_memory > 0) {
		w->bulk = pool_create(c->bulk_buffer_size,
		    c->bulk_buffer_size * CONF_BULK_PER_CHUNK, c->bulk_memory);
		if (w->bulk == NULL) {
			log_err("cannot set up the bulk buffer pool (bulk_buffer_size %zu)",
			    c->bulk_buffer_size);
			exit(heritage_exit_status(errno));
		}
	}
	/* A session object is struct session plus what the edge keeps per
	 * connection, which is nothing unless the config asks for it. Within
	 * CONF_MAX_CONNECTIONS, a budget of objects under 6 KB stays inside
	 * the pool's bounds. */
	session_budget = (size_t)w->max_active * (relay_session_size() + edge_session_extra(c)) +
	    2 * WORKER_SESSION_CHUNK;
	w->sessions = pool_create(relay_session_size() + edge_session_extra(c),
	    WORKER_SESSION_CHUNK, session_budget);
	if (w->sessions == NULL) {
		log_err("cannot set up the session pool (%u connections)", w->max_active);
		exit(heritage_exit_status(errno));
	}
	w->listen_fds = h->listen_fds;
	w->accept_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->accept_epfd == -1) {
		log_err("cannot create the accept set");
		exit(heritage_exit_status(errno));
	}
	if (rp_init(w) == -1) {
		log_err("cannot create the reuseport accept set");
		exit(heritage_exit_status(errno));
	}
	if (upstream_init(w) == -1) {
		log_err("cannot set up the upstream groups");
		exit(heritage_exit_status(errno));
	}
	if (rows_init(w, h) == -1) {
		log_err("cannot set up the statistics rows");
		exit(heritage_exit_status(errno));
	}
	if (edge_init(w) == -1) {
		log_err("cannot set up the access limits");
		exit(heritage_exit_status(errno));
	}
	if (relay_init(w) == -1) {
		log_err("cannot set up the sessions' epoll set");
		exit(heritage_exit_status(errno));
	}
	connlog_init(w);
	global_scan_range(w);
	ev_io_init(&w->accept_w, accept_cb, w->accept_epfd, EV_READ);
	ev_init(&w->accept_resume, accept_resume_cb);
	ev_timer_init(&w->fair_timer, fair_timer_cb, WORKER_FAIR_TURN, 0.);
	ev_init(&w->duty_timer, duty_timer_cb);
	if (c->accept_workers < c->workers) {
		w->duty_k = c->accept_workers;
		w->duty_full = w->max_active - w->max_active / 8;
		if (w->duty_full == 0)
			w->duty_full = 1;
	}
	accept_start(w);
	ev_init(&drain_timer, drain_timeout_cb);

	ev_signal_init(&sig_term, stop_cb, SIGTERM);
	ev_signal_init(&sig_int, stop_cb, SIGINT);
	ev_signal_init(&sig_quit, quit_cb, SIGQUIT);
	ev_signal_init(&sig_usr1, reopen_cb, SIGUSR1);
	ev_signal_start(w->loop, &sig_term);
	ev_signal_start(w->loop, &sig_int);
	ev_signal_start(w->loop, &sig_quit);
	ev_signal_start(w->loop, &sig_usr1);
	/* The master reloads; a HUP sent to the whole group must not kill us. */
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR2, SIG_IGN); /* likewise an upgrade's */
	/* The master forks with every signal blocked, so that a QUIT or USR1
	 * sent before the watchers above existed is held, not lost or fatal;
	 * it is delivered now. */
	{
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}

	ev_timer_init(&heartbeat, heartbeat_cb, 1., 1.);
	ev_timer_start(w->loop, &heartbeat);
	publish_pools(w);
	command_init(w, h->command_fd);
	handoff_init(w, h->handoff_fd);

	__atomic_store_n(&w->slot->state, STATS_SLOT_RUNNING, __ATOMIC_RELEASE);
	log_debug("running, generation %u, up to %u connections", h->generation, w->max_active);
	/* Siblings starting now may not be running yet: whoever is not on
	 * duty finds out at its first accept, or at its first look. */
	accept_review(w);

	ev_run(w->loop, 0);

	relay_close_all(w);
	handoff_fini(w);
	connlog_fini(w);
	publish_pools(w);
	__atomic_store_n(&w->slot->state, STATS_SLOT_EXITED, __ATOMIC_RELEASE);
	log_debug("exiting");
	exit(WORKER_EXIT_OK);
}
