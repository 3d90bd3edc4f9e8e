/* master.c — the master's process table and event loop: spawns a generation
 * of workers, reaps them (folding their counters into the retired row),
 * replaces the ones that die with back-off, reloads on SIGHUP keeping the
 * running config when the new one is bad, and stops fast or gracefully.
 * Runs in the master only; never touches client traffic. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "conf.h"
#include "heritage.h"
#include "listen.h"
#include "log.h"
#include "master.h"
#include "stats.h"

#define MASTER_TICK 0.2           /* seconds: respawns and kill deadlines */
#define MASTER_KILL_GRACE 5.0     /* after the drain timeout, SIGKILL */
#define MASTER_CRASH_WINDOW 1.0   /* a worker dying younger than this is crash-looping */
#define MASTER_BACKOFF_FIRST 0.1
#define MASTER_BACKOFF_MAX 30.0

struct child {
	pid_t pid; /* 0: the slot is free */
	uint32_t generation;
	unsigned index;
	ev_tstamp started;
	ev_tstamp kill_at; /* SIGKILL then if still alive (0: never) */
	int quitting;      /* told to drain or stop: its exit is expected */
};

struct respawn {
	ev_tstamp at; /* 0: nothing pending */
	unsigned failures;
};

enum stopping { RUNNING, STOP_GRACEFUL, STOP_FAST };

static struct {
	struct ev_loop *loop;
	struct conf *conf;
	int *fds;
	struct stats_seg *stats;
	int pid_fd;
	int foreground;
	uint32_t generation;
	enum stopping stopping;
	ev_tstamp stop_deadline;
	unsigned nchildren;
	struct child children[STATS_SLOTS]; /* indexed by stats slot */
	struct respawn respawn[CONF_WORKERS_MAX];
	ev_signal sig_hup, sig_term, sig_int, sig_quit, sig_usr1;
	ev_child child_w;
	ev_timer tick;
} m;

static void
signal_children(int sig)
{
	for (unsigned i = 0; i < STATS_SLOTS; i++)
		if (m.children[i].pid != 0)
			kill(m.children[i].pid, sig);
}

int
master_check_fd_budget(const struct conf *c)
{
	struct rlimit rl;
	unsigned long per_worker, fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return 1;
	per_worker = conf_fd_capacity(c, (unsigned long)rl.rlim_cur);
	if (c->max_connections_per_worker != 0 && c->max_connections_per_worker > per_worker)
		log_warnx("limits.max_connections_per_worker = %u cannot fit: a worker's %lu "
		          "descriptors (RLIMIT_NOFILE) hold at most %lu relayed connections; "
		          "accepting will pause on EMFILE",
		    c->max_connections_per_worker, (unsigned long)rl.rlim_cur, per_worker);
	fit = per_worker * c->workers;
	if (c->max_connections <= fit)
		return 1;
	log_warnx("limits.max_connections = %u cannot fit: %u workers with %lu descriptors "
	          "each (RLIMIT_NOFILE) hold at most %lu relayed connections (2 descriptors "
	          "each); raise workers to %lu or lower max_connections",
	    c->max_connections, c->workers, (unsigned long)rl.rlim_cur, fit,
	    per_worker ? (c->max_connections + per_worker - 1) / per_worker : 0);
	return 0;
}

/* In the new child: forget everything of the master's but what the worker
 * inherits, then become the worker. */
static void __attribute__((noreturn))
child_become_worker(unsigned slot, unsigned index)
{
	struct heritage h;
	sigset_t none;

	ev_signal_stop(m.loop, &m.sig_hup);
	ev_signal_stop(m.loop, &m.sig_term);
	ev_signal_stop(m.loop, &m.sig_int);
	ev_signal_stop(m.loop, &m.sig_quit);
	ev_signal_stop(m.loop, &m.sig_usr1);
	ev_child_stop(m.loop, &m.child_w);
	ev_timer_stop(m.loop, &m.tick);
	/* The epoll set is shared with the master until the loop is forked. */
	ev_loop_fork(m.loop);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* A worker holding the pid-file lock would keep it past the master. */
	close(m.pid_fd);

	h.conf = m.conf;
	h.listen_fds = m.fds;
	h.stats = m.stats;
	h.slot = slot;
	h.index = index;
	h.generation = m.generation;
	h.master_pid = getppid();
	worker_main(&h);
}

static int
free_slots(void)
{
	int n = 0;

	for (unsigned i = 0; i < STATS_SLOTS; i++)
		if (m.children[i].pid == 0)
			n++;
	return n;
}

static void schedule_respawn(unsigned index, int failed_young);

static void
spawn(unsigned index)
{
	struct stats_slot *ss;
	unsigned slot;
	pid_t pid;

	for (slot = 0; slot < STATS_SLOTS; slot++)
		if (m.children[slot].pid == 0)
			break;
	if (slot == STATS_SLOTS) {
		log_errx("no free statistics slot for worker %u", index);
		schedule_respawn(index, 1);
		return;
	}
	/* The worker is the slot's only writer once forked; until then it is
	 * ours. */
	ss = &m.stats->slots[slot];
	memset(ss, 0, sizeof(*ss));
	ss->generation = m.generation;
	ss->index = index;
	__atomic_store_n(&ss->state, STATS_SLOT_STARTING, __ATOMIC_RELEASE);

	pid = fork();
	if (pid == -1) {
		log_warn("fork for worker %u", index);
		__atomic_store_n(&ss->state, STATS_SLOT_FREE, __ATOMIC_RELEASE);
		schedule_respawn(index, 1);
		return;
	}
	if (pid == 0)
		child_become_worker(slot, index);
	m.children[slot] = (struct child){ .pid = pid, .generation = m.generation,
		.index = index, .started = ev_now(m.loop) };
	m.nchildren++;
	log_debug("worker %u started (pid %d, generation %u)", index, (int)pid, m.generation);
}

static void
schedule_respawn(unsigned index, int failed_young)
{
	struct respawn *r = &m.respawn[index];
	ev_tstamp delay = 0;

	if (failed_young)
		r->failures++;
	else
		r->failures = 0;
	if (r->failures > 0) {
		unsigned shift = r->failures > 10 ? 10 : r->failures - 1;

		delay = MASTER_BACKOFF_FIRST * (double)(1u << shift);
		if (delay > MASTER_BACKOFF_MAX)
			delay = MASTER_BACKOFF_MAX;
		log_warnx("worker %u keeps failing (%u in a row): restarting it in %.1fs", index,
		    r->failures, delay);
		r->at = ev_now(m.loop) + delay;
		return;
	}
	spawn(index);
}

static void
child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	int status = w->rstatus;
	struct child *c = NULL;
	unsigned slot, lvl_expected;

	for (slot = 0; slot < STATS_SLOTS; slot++)
		if (m.children[slot].pid == w->rpid) {
			c = &m.children[slot];
			break;
		}
	if (c == NULL)
		return;
	lvl_expected = c->quitting || m.stopping != RUNNING;
	if (WIFSIGNALED(status)) {
		if (lvl_expected)
			log_info("worker %u (pid %d) killed by signal %d", c->index, (int)c->pid,
			    WTERMSIG(status));
		else
			log_warnx("worker %u (pid %d) killed by signal %d", c->index, (int)c->pid,
			    WTERMSIG(status));
	} else if (WEXITSTATUS(status) != 0) {
		log_warnx("worker %u (pid %d) exited with status %d", c->index, (int)c->pid,
		    WEXITSTATUS(status));
	} else {
		log_info("worker %u (pid %d, generation %u) exited", c->index, (int)c->pid,
		    c->generation);
	}
	stats_fold(m.stats, slot);
	m.nchildren--;

	if (m.stopping != RUNNING) {
		c->pid = 0;
		if (m.nchildren == 0)
			ev_break(loop, EVBREAK_ALL);
		return;
	}
	if (!c->quitting && c->generation == m.generation) {
		unsigned index = c->index;
		int young = ev_now(loop) - c->started < MASTER_CRASH_WINDOW;

		c->pid = 0;
		if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_CONFIG) {
			log_errx("worker %u cannot run with this configuration; not restarting it",
			    index);
			return;
		}
		schedule_respawn(index, young);
		return;
	}
	c->pid = 0;
}

static void
stop(enum stopping how)
{
	ev_tstamp grace;

	if (m.stopping == STOP_FAST || m.stopping == how)
		return;
	m.stopping = how;
	log_notice("%s stop: %u workers", how == STOP_FAST ? "fast" : "graceful", m.nchildren);
	/* Our copies of the listening sockets go first, so that once the
	 * workers close theirs new connections are refused, not queued. */
	listen_close(m.conf, m.fds, NULL, NULL);
	m.fds = NULL;
	signal_children(how == STOP_FAST ? SIGTERM : SIGQUIT);
	grace = how == STOP_FAST ? MASTER_KILL_GRACE
	                         : m.conf->drain_timeout_ms / 1000.0 + MASTER_KILL_GRACE;
	m.stop_deadline = ev_now(m.loop) + grace;
	if (m.nchildren == 0)
		ev_break(m.loop, EVBREAK_ALL);
}

static void
term_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	stop(STOP_FAST);
}

static void
quit_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	stop(STOP_GRACEFUL);
}

static void
usr1_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (log_reopen() == -1)
		log_warn("reopening the log file");
	else
		log_info("log file reopened");
	signal_children(SIGUSR1);
}

static void
apply_log(const struct conf *c)
{
	if (m.foreground) {
		log_open(LOG_TARGET_STDERR, NULL, 0, c->log_level);
		return;
	}
	if (log_open(c->log_target, c->log_file, c->log_facility, c->log_level) == -1)
		log_warn("cannot open log file %s; keeping the previous log", c->log_file);
}

static void
reload(void)
{
	char err[512];
	struct conf *next;
	int *fds;
	ev_tstamp now = ev_now(m.loop);

	next = conf_load(m.conf->path, err, sizeof(err));
	if (next == NULL) {
		log_errx("reload failed, keeping the running configuration: %s", err);
		return;
	}
	if ((unsigned)free_slots() < next->workers) {
		log_errx("reload failed, keeping the running configuration: %u workers of "
		         "earlier generations are still draining",
		    STATS_SLOTS - free_slots());
		conf_free(next);
		return;
	}
	fds = listen_open(next, m.conf, m.fds, err, sizeof(err));
	if (fds == NULL) {
		log_errx("reload failed, keeping the running configuration: %s", err);
		conf_free(next);
		return;
	}
	if (strcmp(next->pid_file, m.conf->pid_file) != 0)
		log_warnx("pid_file changes take effect at restart; still using %s",
		    m.conf->pid_file);
	if (strcmp(next->stats_file, m.conf->stats_file) != 0)
		log_warnx("stats_file changes take effect at restart; still using %s",
		    m.conf->stats_file);
	apply_log(next);
	master_check_fd_budget(next);
	listen_close(m.conf, m.fds, next, fds);
	conf_free(m.conf);
	m.conf = next;
	m.fds = fds;

	/* The new generation starts accepting before the old one stops: the
	 * kept sockets queue connections in between, so none is refused. */
	for (unsigned i = 0; i < STATS_SLOTS; i++) {
		struct child *c = &m.children[i];

		if (c->pid != 0 && !c->quitting) {
			c->quitting = 1;
			c->kill_at = now + next->drain_timeout_ms / 1000.0 + MASTER_KILL_GRACE;
		}
	}
	m.generation++;
	__atomic_store_n(&m.stats->hdr->generation, m.generation, __ATOMIC_RELEASE);
	memset(m.respawn, 0, sizeof(m.respawn));
	for (unsigned i = 0; i < next->workers; i++)
		spawn(i);
	for (unsigned i = 0; i < STATS_SLOTS; i++) {
		struct child *c = &m.children[i];

		if (c->pid != 0 && c->generation != m.generation)
			kill(c->pid, SIGQUIT);
	}
	log_notice("reloaded %s: generation %u, %u workers", next->path, m.generation,
	    next->workers);
}

static void
hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (m.stopping != RUNNING)
		return;
	log_info("reloading %s", m.conf->path);
	reload();
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_tstamp now = ev_now(loop);

	if (m.stopping != RUNNING) {
		if (now >= m.stop_deadline) {
			log_warnx("stop: %u workers still running after the deadline; killing them",
			    m.nchildren);
			signal_children(SIGKILL);
			m.stop_deadline = now + MASTER_KILL_GRACE;
		}
		return;
	}
	for (unsigned i = 0; i < m.conf->workers; i++)
		if (m.respawn[i].at != 0 && now >= m.respawn[i].at) {
			m.respawn[i].at = 0;
			spawn(i);
		}
	for (unsigned i = 0; i < STATS_SLOTS; i++) {
		struct child *c = &m.children[i];

		if (c->pid != 0 && c->kill_at != 0 && now >= c->kill_at) {
			log_warnx("worker %u (pid %d, generation %u) still draining after the "
			          "drain timeout; killing it",
			    c->index, (int)c->pid, c->generation);
			kill(c->pid, SIGKILL);
			c->kill_at = 0;
		}
	}
}

int
master_run(struct master_start *st)
{
	m.loop = EV_DEFAULT;
	m.conf = st->conf;
	m.fds = st->listen_fds;
	m.stats = st->stats;
	m.pid_fd = st->pid_fd;
	m.foreground = st->foreground;
	m.generation = 1;
	__atomic_store_n(&m.stats->hdr->generation, m.generation, __ATOMIC_RELEASE);

	ev_signal_init(&m.sig_hup, hup_cb, SIGHUP);
	ev_signal_init(&m.sig_term, term_cb, SIGTERM);
	ev_signal_init(&m.sig_int, term_cb, SIGINT);
	ev_signal_init(&m.sig_quit, quit_cb, SIGQUIT);
	ev_signal_init(&m.sig_usr1, usr1_cb, SIGUSR1);
	ev_signal_start(m.loop, &m.sig_hup);
	ev_signal_start(m.loop, &m.sig_term);
	ev_signal_start(m.loop, &m.sig_int);
	ev_signal_start(m.loop, &m.sig_quit);
	ev_signal_start(m.loop, &m.sig_usr1);
	ev_child_init(&m.child_w, child_cb, 0, 0);
	ev_child_start(m.loop, &m.child_w);
	ev_timer_init(&m.tick, tick_cb, MASTER_TICK, MASTER_TICK);
	ev_timer_start(m.loop, &m.tick);

	for (unsigned i = 0; i < m.conf->workers; i++)
		spawn(i);
	log_notice("started: %u workers, %u listeners, generation %u", m.conf->workers,
	    m.conf->nlisteners, m.generation);
	if (st->ready_fd != -1) {
		if (write(st->ready_fd, "1", 1) != 1)
			log_warn("telling the starting process we are ready");
		close(st->ready_fd);
	}

	ev_run(m.loop, 0);

	log_notice("stopped");
	listen_close(m.conf, m.fds, NULL, NULL);
	conf_free(m.conf);
	return 0;
}
