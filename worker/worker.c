/* worker.c — a worker process: its libev loop, accepting on the inherited
 * listeners, the per-process pools, its stats slot, and the way out (fast stop
 * or drain). Runs in each child of the master. Never touches another worker's
 * slot, never exits because of one connection. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "heritage.h"
#include "log.h"
#include "pool.h"
#include "relay.h"
#include "stats.h"
#include "worker.h"

#define WORKER_ACCEPTS_PER_EVENT 64
#define WORKER_ACCEPT_PAUSE 0.5 /* seconds to stop accepting on EMFILE/ENFILE */
#define WORKER_SESSION_CHUNK (64 * 1024)
#define WORKER_BUFFER_CHUNK_BUFFERS 16

static struct worker worker;

static ev_signal sig_term, sig_int, sig_quit, sig_usr1;
static ev_timer heartbeat, drain_timer;

static void
accept_stop(struct worker *w)
{
	for (unsigned i = 0; i < w->naccept; i++)
		ev_io_stop(w->loop, &w->accept_w[i]);
}

static void
accept_start(struct worker *w)
{
	if (w->draining)
		return;
	for (unsigned i = 0; i < w->naccept; i++)
		ev_io_start(w->loop, &w->accept_w[i]);
	w->accept_paused = 0;
}

static void
accept_pause(struct worker *w)
{
	accept_stop(w);
	w->accept_paused = 1;
	STATS_ADD(w->slot, accept_pauses, 1);
}

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = ev_userdata(loop);
	unsigned li = (unsigned)(io - w->accept_w);

	for (int i = 0; i < WORKER_ACCEPTS_PER_EVENT; i++) {
		int fd;

		if (w->active >= w->max_active) {
			/* Resumed by worker_session_closed below the limit. */
			accept_pause(w);
			return;
		}
		fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			switch (errno) {
			case EAGAIN:
				return;
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
				accept_pause(w);
				ev_timer_set(&w->accept_resume, WORKER_ACCEPT_PAUSE, 0.);
				ev_timer_start(loop, &w->accept_resume);
				return;
			default:
				log_warn("accept on %s", w->conf->listeners[li].address);
				return;
			}
		}
		relay_start(w, fd, li);
	}
}

static void
accept_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = ev_userdata(loop);

	if (w->active < w->max_active)
		accept_start(w);
}

void
worker_session_closed(struct worker *w)
{
	if (w->draining) {
		if (w->active == 0)
			ev_break(w->loop, EVBREAK_ALL);
		return;
	}
	if (w->accept_paused && w->active < w->max_active && !ev_is_active(&w->accept_resume))
		accept_start(w);
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
	publish_pools(ev_userdata(loop));
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
	for (unsigned i = 0; i < w->naccept; i++)
		close(w->accept_w[i].fd);
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

static unsigned
share_of(unsigned total, unsigned workers)
{
	return (total + workers - 1) / workers;
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
	w->max_active = share_of(c->max_connections, c->workers);
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
	w->accept_w = calloc(c->nlisteners, sizeof(*w->accept_w));
	if (w->buffers == NULL || w->sessions == NULL || w->rr == NULL || w->accept_w == NULL) {
		log_err("cannot set up the pools (buffer_size %zu, max_memory %zu)",
		    c->buffer_size, c->max_memory);
		exit(WORKER_EXIT_CONFIG);
	}
	/* Spread the workers' round robins so they do not all start on the
	 * first server. */
	for (unsigned i = 0; i < c->nupstreams; i++)
		w->rr[i] = h->index;

	relay_init(w);
	w->naccept = c->nlisteners;
	for (unsigned i = 0; i < c->nlisteners; i++) {
		ev_io_init(&w->accept_w[i], accept_cb, h->listen_fds[i], EV_READ);
		ev_io_start(w->loop, &w->accept_w[i]);
	}
	ev_init(&w->accept_resume, accept_resume_cb);
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
