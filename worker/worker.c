/* worker.c — a worker process: its libev loop, accepting on the inherited
 * listeners, the per-process pools, its stats slot, and the way out (fast stop
 * or drain). Runs in each child of the master. Never touches another worker's
 * slot, never exits because of one connection. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "heritage.h"
#include "log.h"
#include "pool.h"
#include "relay.h"
#include "stats.h"
#include "worker.h"

#define WORKER_ACCEPTS_PER_WAKEUP 4
#define WORKER_ACCEPT_PAUSE 0.5 /* seconds to stop accepting on EMFILE/ENFILE */
#define WORKER_GLOBAL_RECHECK 0.1 /* seconds between checks of the global limit */
#define WORKER_SESSION_CHUNK (64 * 1024)
#define WORKER_BUFFER_CHUNK_BUFFERS 16

static struct worker worker;

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

	if (epoll_ctl(w->accept_epfd, op, w->listen_fds[li], &ev) == -1 && errno != ENOENT &&
	    errno != EEXIST)
		log_warn("epoll_ctl on listener %s", w->conf->listeners[li].address);
}

/* Withdrawing from the listeners' queues matters: a paused worker left in
 * them would still be handed connections it will not accept. */
static void
accept_stop(struct worker *w)
{
	if (!ev_is_active(&w->accept_w))
		return;
	ev_io_stop(w->loop, &w->accept_w);
	for (unsigned i = 0; i < w->conf->nlisteners; i++)
		accept_ctl(w, EPOLL_CTL_DEL, i);
}

static void
accept_start(struct worker *w)
{
	if (w->draining || w->paused || ev_is_active(&w->accept_w))
		return;
	for (unsigned i = 0; i < w->conf->nlisteners; i++)
		accept_ctl(w, EPOLL_CTL_ADD, i);
	ev_io_start(w->loop, &w->accept_w);
}

void
worker_pause(struct worker *w, unsigned why, int on)
{
	if (on) {
		if ((w->paused & why) == 0)
			STATS_ADD(w->slot, accept_pauses, 1);
		w->paused |= why;
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
		accept_start(w);
	}
}

/* Slots worth reading: one past the highest one in use, refreshed by the
 * heartbeat with a full scan, so the per-accept sum below reads a handful of
 * slots instead of all of them. A worker started since is seen within a
 * second. */
static void
global_scan_range(struct worker *w)
{
	const struct stats_seg *seg = w->h->stats;
	unsigned hw = w->h->slot + 1;

	for (unsigned i = 0; i < seg->hdr->nslots; i++)
		if (__atomic_load_n(&seg->slots[i].state, __ATOMIC_RELAXED) != STATS_SLOT_FREE)
			hw = i + 1 > hw ? i + 1 : hw;
	w->slot_hw = hw;
}

/* Connections open in the whole daemon: every live slot's gauge. */
static unsigned
global_active(const struct worker *w)
{
	const struct stats_seg *seg = w->h->stats;
	unsigned sum = 0;

	for (unsigned i = 0; i < w->slot_hw; i++) {
		const struct stats_slot *s = &seg->slots[i];
		uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

		if (st == STATS_SLOT_RUNNING || st == STATS_SLOT_DRAINING)
			sum += (unsigned)STATS_GET(s, active);
	}
	return sum;
}

static int
over_global(struct worker *w)
{
	return global_active(w) >= w->conf->max_connections;
}

/* Accept a few connections from listener li. Returns -1 when accepting was
 * paused. */
static int
accept_some(struct worker *w, unsigned li)
{
	for (int i = 0; i < WORKER_ACCEPTS_PER_WAKEUP; i++) {
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
		fd = accept4(w->listen_fds[li], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
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
		relay_start(w, fd, li);
	}
	return 0;
}

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = ev_userdata(loop);
	struct epoll_event ev[16];
	int n = epoll_wait(w->accept_epfd, ev, 16, 0);

	for (int i = 0; i < n; i++) {
		unsigned li = ev[i].data.u32;

		if (accept_some(w, li) == -1)
			return;
		/* Few accepts per wake-up, then to the back of the queue: a
		 * burst is shared out rather than drained by one worker. */
		accept_ctl(w, EPOLL_CTL_DEL, li);
		accept_ctl(w, EPOLL_CTL_ADD, li);
	}
}

/* EMFILE pauses end after a fixed time; a global-limit pause when the daemon
 * is below the limit again (polled: the closes happen in other workers). */
static void
accept_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = ev_userdata(loop);

	worker_pause(w, WORKER_PAUSE_FDS, 0);
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
		if (w->active == 0)
			ev_break(w->loop, EVBREAK_ALL);
		return;
	}
	if (w->active < w->max_active)
		worker_pause(w, WORKER_PAUSE_LIMIT, 0);
}

static void
publish_pools(struct worker *w)
{
	struct pool_stats b, s;

	pool_get_stats(w->buffers, &b);
	pool_get_stats(w->sessions, &s);
	STATS_SET(w->slot, pool_buffers_total, b.total);
	STATS_SET(w->slot, pool_buffers_used, b.used);
	STATS_SET(w->slot, pool_bytes_mapped, b.bytes_mapped + s.bytes_mapped);
	__atomic_store_n(&w->slot->heartbeat_ms, stats_now_ms(), __ATOMIC_RELAXED);
}

static void
heartbeat_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = ev_userdata(loop);

	publish_pools(w);
	global_scan_range(w);
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
	w->draining = 1;
	accept_stop(w);
	ev_timer_stop(w->loop, &w->accept_resume);
	close(w->accept_epfd);
	for (unsigned i = 0; i < w->conf->nlisteners; i++)
		close(w->listen_fds[i]);
	__atomic_store_n(&w->slot->state, STATS_SLOT_DRAINING, __ATOMIC_RELEASE);
	log_debug("draining %u connections", w->active);
	if (w->active == 0) {
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
}

/* Without an explicit cap, a worker takes what its descriptors can hold, up
 * to the daemon's limit: accepting into EMFILE would only fail later. */
static unsigned
max_active_default(const struct conf *c)
{
	struct rlimit rl;
	unsigned cap;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return c->max_connections;
	cap = conf_fd_capacity(c, (unsigned long)rl.rlim_cur);
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

	memset(w, 0, sizeof(*w));
	w->conf = c;
	w->h = h;
	w->slot = &h->stats->slots[h->slot];
	w->loop = EV_DEFAULT;
	w->buffer_size = c->buffer_size;
	w->max_active = c->max_connections_per_worker ? c->max_connections_per_worker
	                                              : max_active_default(c);
	ev_set_userdata(w->loop, w);

	w->slot->pid = getpid();
	w->slot->started_ms = stats_now_ms();

	/* If the master dies, stop taking connections and drain: no orphan
	 * keeps the port. The check after catches a master that died before
	 * the request was made. */
	prctl(PR_SET_PDEATHSIG, SIGQUIT);

	w->buffers = pool_create(c->buffer_size, c->buffer_size * WORKER_BUFFER_CHUNK_BUFFERS,
	    c->max_memory);
	session_budget = (size_t)w->max_active * relay_session_size() + 2 * WORKER_SESSION_CHUNK;
	w->sessions = pool_create(relay_session_size(), WORKER_SESSION_CHUNK, session_budget);
	w->rr = calloc(c->nupstreams, sizeof(*w->rr));
	w->listen_fds = h->listen_fds;
	w->accept_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->buffers == NULL || w->sessions == NULL || w->rr == NULL || w->accept_epfd == -1) {
		log_err("cannot set up the pools (buffer_size %zu, max_memory %zu)",
		    c->buffer_size, c->max_memory);
		exit(WORKER_EXIT_CONFIG);
	}
	/* Spread the workers' round robins so they do not all start on the
	 * first server. */
	for (unsigned i = 0; i < c->nupstreams; i++)
		w->rr[i] = h->index;

	relay_init(w);
	global_scan_range(w);
	ev_io_init(&w->accept_w, accept_cb, w->accept_epfd, EV_READ);
	ev_init(&w->accept_resume, accept_resume_cb);
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

	ev_timer_init(&heartbeat, heartbeat_cb, 1., 1.);
	ev_timer_start(w->loop, &heartbeat);
	publish_pools(w);

	__atomic_store_n(&w->slot->state, STATS_SLOT_RUNNING, __ATOMIC_RELEASE);
	log_debug("running, generation %u, up to %u connections", h->generation, w->max_active);
	if (getppid() != h->master_pid)
		worker_drain(w);

	ev_run(w->loop, 0);

	relay_close_all(w);
	publish_pools(w);
	__atomic_store_n(&w->slot->state, STATS_SLOT_EXITED, __ATOMIC_RELEASE);
	log_debug("exiting");
	exit(WORKER_EXIT_OK);
}
