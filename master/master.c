/* SPDX-License-Identifier: BSD-2-Clause */
/* master.c — the master's process table and event loop: spawns a generation
 * of workers, reaps them (folding their counters into the retired row),
 * replaces the ones that die with back-off, reloads on SIGHUP keeping the
 * running config when the new one is bad, and stops fast or gracefully.
 * Runs in the master only; never touches client traffic. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "addr.h"
#include "conf.h"
#include "control.h"
#include "handoff.h"
#include "heritage.h"
#include "srclimit.h"
#include "inherit.h"
#include "listen.h"
#include "log.h"
#include "logsink.h"
#include "master.h"
#include "net.h"
#include "notify.h"
#include "priv.h"
#include "proctitle.h"
#include "stats.h"

#define MASTER_TICK 0.2           /* seconds: respawns and kill deadlines */
#define MASTER_KILL_GRACE 5.0     /* after the drain timeout, SIGKILL */
#define MASTER_CRASH_WINDOW 1.0   /* a worker dying younger than this is crash-looping */
#define MASTER_BACKOFF_FIRST 0.1
#define MASTER_BACKOFF_MAX 30.0
/* Reload storms: requests closer than this to the previous reload are
 * coalesced into one, and a reload waits while this many older generations
 * still drain (see reload_maybe). */
#define MASTER_RELOAD_INTERVAL 0.5
#define MASTER_MAX_DRAINING 4
/* A worker whose heartbeat (refreshed every second) has not moved for this
 * long is stuck in a loop or stopped: it is killed and replaced. */
#define MASTER_HEARTBEAT_STALE 5.0
/* Every worker of a new generation (at start or reload) runs within this,
 * respawns for a shortage included, or the generation has failed. */
#define MASTER_START_DEADLINE 10.0
#define MASTER_ADMIN_SLOT (STATS_SLOTS + 1) /* child_become_worker: the admin process */
/* systemd's STATUS= line (notify.h) is refreshed this often, when it changed. */
#define MASTER_STATUS_EVERY 2.0

struct child {
	pid_t pid; /* 0: the slot is free */
	uint32_t generation;
	unsigned index;
	double started;     /* mono_now() at spawn */
	double kill_at;     /* mono_now() to SIGKILL it then if alive (0: never) */
	int quitting;      /* told to drain or stop: its exit is expected */
	uint64_t beat;      /* heartbeat_ms last seen in its slot */
	double beat_seen;   /* mono_now() when beat last changed */
	int stuck;          /* killed for a stale heartbeat */
	unsigned drain_ms;  /* timeouts.drain of its generation's config */
	int hand_fd;        /* our end of its hand-off socket (-1: none); valid while pid != 0 */
};

struct respawn {
	double at; /* mono_now() to spawn again (0: nothing pending) */
	unsigned failures;
};

/* A helper child (not a worker): forked by child_become_worker as "slot"
 * `slot`, respawned with back-off when it dies unexpectedly while wanted,
 * stopped (and, if still wanted, forked again) by helper_stop. */
struct helper {
	const char *name; /* for the log: "health checker", "admin process" */
	unsigned slot;    /* STATS_SLOTS, MASTER_ADMIN_SLOT */
	struct child c;
	struct respawn r;
	int wanted;       /* the current config has one */
};

enum stopping { RUNNING, STOP_GRACEFUL, STOP_FAST };

/*
 * A generation: one config and what its workers inherit. The current one
 * serves. A reload builds the next one beside it and starts its workers; it
 * becomes current only once every one of them runs (reload_commit), and the
 * old one is then told to drain. Should the next one fail (a worker exits
 * "cannot run with this config", or they do not all run within
 * MASTER_START_DEADLINE), its workers are stopped and the current one goes
 * on serving (reload_fail). generation 0: none.
 */
struct gen {
	uint32_t generation;
	struct conf *conf;
	int *fds;                /* listening sockets, parallel to conf->listeners */
	struct priv priv;        /* what its workers run as */
	uint16_t *listener_rows; /* its stats rows (heritage.h) */
	uint16_t *server_rows;
	struct respawn respawn[CONF_WORKERS_MAX];
	double deadline;         /* mono_now() by which all must run; 0: running */
};

static struct {
	struct ev_loop *loop;
	struct gen cur;       /* serving (at start: starting, see deadline) */
	struct gen next;      /* being started by a reload, or generation 0 */
	uint32_t last_generation; /* the highest number given out */
	struct stats_seg *stats;
	int pid_fd;
	int ready_fd;         /* -1, or the start-up readiness pipe until written */
	pid_t pid;            /* ours: children compare getppid() with it */
	int foreground;
	int status;           /* master_run's exit status */
	enum stopping stopping;
	double stop_deadline; /* mono_now() */
	char *stats_path;     /* the segment's file: stats_file as at start */
	int reload_pending;   /* a SIGHUP not acted on yet (see reload_maybe) */
	int reload_waiting;   /* ... and its deferral was logged */
	double last_reload;   /* mono_now() of the last reload attempt */
	double last_tick;     /* mono_now() of the last tick */
	unsigned nchildren;
	struct child children[STATS_SLOTS]; /* indexed by stats slot */
	/* The per-source table every worker counts in, and each worker's
	 * ledger in it (by stats slot), kept past the worker's death until
	 * its counts are taken back (child_cb). NULL: none. */
	struct srclimit *srclimit;
	struct srclimit_ledger *ledgers[STATS_SLOTS];
	double src_quiet_at; /* mono_now() from which no hand-off can be in flight */
	double src_audit_at; /* mono_now() of the next audit */
	double src_walk_at;  /* mono_now() of the next count of the slots in use */
	/* Helper processes outside the stats slots, each one at most: the
	 * health checker (checker/checker.c), started when the config has
	 * health checks, and the admin process (admin/admin.c). */
	struct helper checker, admin;
	/* Reloads started so far (the control socket waits for a number). */
	uint64_t reload_seq;
	/* Node drain (sluicectl drain): the grace period's end; undraining a
	 * drained node starts a generation like a reload. */
	ev_timer drain_w;
	int undraining;
	/* The admin process (admin/admin.c): /metrics and /healthz on a
	 * socket the master opens (admin_fd; admin_next_fd while a reload
	 * starts, -1: none), forked as child "slot" MASTER_ADMIN_SLOT. */
	int admin_fd, admin_next_fd;
	ev_signal sig_hup, sig_term, sig_int, sig_quit, sig_usr1;
	ev_child child_w;
	ev_timer tick;
	/* systemd (notify.h): why the last reload failed ("" after a success)
	 * and the STATUS= line last sent, with when. */
	char reload_error[512];
	char status_sent[768];
	double status_at;
	/* Hot binary upgrade, old side (sluiced -s upgrade, SIGUSR2, sluicectl
	 * upgrade): our binary's path as it was at start, the `-t` check of
	 * the new one, then the new master (our child) until it says it runs. */
	char exe[PATH_MAX];
	struct {
		int phase;       /* UPGRADE_NONE, UPGRADE_CHECKING, UPGRADE_STARTING */
		pid_t check_pid; /* sluiced -t of the new binary */
		int check_fd;    /* its output (a pipe), -1: none */
		pid_t pid;       /* the new master */
		int fd;          /* our end of our socketpair with it, -1: none */
		ev_io io;
		double deadline; /* mono_now() by which it must say it runs */
		int term_sent;
	} up;
	int upgraded; /* a new master took over: its files (pid, stats, control) stay */
	/* New side: the old master's socketpair until it exits, and its
	 * segment, whose totals ours carry on from (seeded at start). */
	int from_fd;
	ev_io from_w;
	struct stats_seg *old_seg;
	struct stats_counters seeded;
	struct stats_listener_counters *seeded_l;
	struct stats_server_counters *seeded_s;
	ev_signal sig_usr2;
} m;

enum { UPGRADE_NONE, UPGRADE_CHECKING, UPGRADE_STARTING };
/* The new binary's check and start, together, within this. */
#define MASTER_UPGRADE_DEADLINE 30.0

/* Seconds on CLOCK_MONOTONIC, for every deadline the master keeps (drain
 * kills, stop, respawn back-off, crash window, heartbeats, reload spacing):
 * ev_now follows the wall clock, and a step of it must neither kill a
 * draining worker early nor hold a respawn back for the length of the step. */
static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The master's title in ps: its generation, and the node's drain. */
static void
master_title(void)
{
	uint32_t node = __atomic_load_n(&m.stats->hdr->node_state, __ATOMIC_RELAXED);

	if (node == STATS_NODE_SERVING)
		proctitle_set("sluiced", "sluiced: master (generation %u)", m.cur.generation);
	else
		proctitle_set("sluiced", "sluiced: master (generation %u, %s)", m.cur.generation,
		    stats_node_name(node));
}

static void
signal_children(int sig)
{
	for (unsigned i = 0; i < STATS_SLOTS; i++)
		if (m.children[i].pid != 0)
			kill(m.children[i].pid, sig);
	if (m.checker.c.pid != 0)
		kill(m.checker.c.pid, sig);
	if (m.admin.c.pid != 0)
		kill(m.admin.c.pid, sig);
}

int
master_check_fd_budget(const struct conf *c)
{
	struct rlimit rl;
	unsigned long per_worker, fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return 1;
	per_worker = conf_fd_capacity(c, (unsigned long)rl.rlim_cur, 0);
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

/* In a child of generation g: close the listening sockets of generation o
 * that g does not share. Kept sockets are the same descriptors in both. */
static void
close_listeners_of(const struct gen *o, const struct gen *g)
{
	if (o->generation == 0 || o == g || o->fds == NULL)
		return;
	for (unsigned i = 0; i < o->conf->nlisteners; i++) {
		unsigned k;

		if (o->conf->listeners[i].reuseport)
			continue; /* listen_child's */
		for (k = 0; k < g->conf->nlisteners && g->fds[k] != o->fds[i]; k++)
			;
		if (k == g->conf->nlisteners)
			close(o->fds[i]);
	}
}

static void admin_child_close(unsigned slot);

/* In the new child: forget everything of the master's but what the worker
 * of generation g inherits, then become the worker (or, for slot
 * STATS_SLOTS, the health checker, which inherits the same and has no
 * slot). */
static void __attribute__((noreturn))
child_become_worker(const struct gen *g, unsigned slot, unsigned index, int command_fd,
    int handoff_fd)
{
	struct heritage h;
	char err[PATH_MAX + 256];
	int *own_fds, *extra_fds;
	unsigned *extra_li, nextra;

	ev_signal_stop(m.loop, &m.sig_hup);
	ev_signal_stop(m.loop, &m.sig_term);
	ev_signal_stop(m.loop, &m.sig_int);
	ev_signal_stop(m.loop, &m.sig_quit);
	ev_signal_stop(m.loop, &m.sig_usr1);
	ev_signal_stop(m.loop, &m.sig_usr2);
	ev_io_stop(m.loop, &m.up.io);
	if (m.from_fd != -1)
		ev_io_stop(m.loop, &m.from_w);
	ev_child_stop(m.loop, &m.child_w);
	ev_timer_stop(m.loop, &m.tick);
	ev_timer_stop(m.loop, &m.drain_w);
	/* The control socket, its clients and the other workers' command
	 * sockets are the master's alone. */
	control_child_forget(command_fd);
	/* The upgrade's sockets and pipes are the master's alone. */
	if (m.up.fd != -1)
		close(m.up.fd);
	if (m.up.check_fd != -1)
		close(m.up.check_fd);
	if (m.from_fd != -1)
		close(m.from_fd);
	/* Our ends of the other workers' hand-off sockets (and of this one's,
	 * once spawn has it) are the master's alone. */
	for (unsigned i = 0; i < STATS_SLOTS; i++)
		if (m.children[i].pid != 0 && m.children[i].hand_fd != -1)
			close(m.children[i].hand_fd);
	/* The epoll set is shared with the master until the loop is forked. */
	ev_loop_fork(m.loop);
	/* Every signal stays blocked (spawn forks that way) until worker_main
	 * has its own watchers: a QUIT arriving now must wait, not kill us or
	 * vanish into the master's handlers. */
	/* A worker holding the pid-file lock would keep it past the master;
	 * one holding the readiness pipe would keep the starting command
	 * waiting after the master died. */
	close(m.pid_fd);
	if (m.ready_fd != -1)
		close(m.ready_fd);
	/* Only the master speaks to systemd. */
	notify_close();
	/* While two generations exist, a listener only one of them has must
	 * not be held open by the other's workers: it would keep accepting
	 * into a queue nobody serves once its own generation is gone. */
	close_listeners_of(&m.cur, g);
	close_listeners_of(&m.next, g);
	/* A worker keeps its own reuseport sockets only; a socket the master
	 * closes must not live on in another process. */
	if (listen_child(g->conf, g->fds, slot < STATS_SLOTS ? (int)index : -1,
	        g == &m.next || g->deadline != 0, &own_fds, &extra_fds, &extra_li,
	        &nextra) == -1) {
		log_errx("worker %u: out of memory", index);
		_exit(WORKER_EXIT_TEMPFAIL);
	}
	admin_child_close(slot);
	/* The other workers' ledgers are theirs and the master's. */
	for (unsigned i = 0; i < STATS_SLOTS; i++)
		if (i != slot && m.ledgers[i] != NULL)
			srclimit_ledger_destroy(m.ledgers[i]);
	/* Before any child code runs: from here on this process can write only
	 * its own part of the statistics segment (its slot and rows, or the
	 * checker's health area), whatever a bug in it tries. */
	if ((slot == MASTER_ADMIN_SLOT ? stats_protect_reader(m.stats)
	        : slot == STATS_SLOTS  ? stats_protect_checker(m.stats)
	                               : stats_protect_worker(m.stats, slot)) == -1) {
		int why = errno;

		if (slot == STATS_SLOTS)
			log_err("health checker: cannot write-protect the statistics segment");
		else
			log_err("worker %u: cannot write-protect the statistics segment", index);
		_exit(why == EOPNOTSUPP ? WORKER_EXIT_CONFIG : WORKER_EXIT_FAILURE);
	}
	/* While the syslog socket and /proc are still in reach (no chroot,
	 * no lost privileges): the connection log's non-blocking descriptor
	 * (worker/connlog.c reports a failure and drops lines meanwhile). */
	if (slot < STATS_SLOTS && g->conf->log_connections)
		(void)logsink_open(m.foreground ? LOG_TARGET_STDERR : g->conf->log_target,
		    g->conf->log_file, g->conf->log_syslog_socket);
	/* Before worker_main: it asks for a parent-death signal, which the
	 * kernel clears when the credentials change. */
	if (slot >= STATS_SLOTS) /* our copy: only workers connect upstream */
		((struct gen *)g)->priv.net_admin = 0;
	if (priv_drop(&g->priv, err, sizeof(err)) == -1) {
		log_errx("worker %u: %s", index, err);
		_exit(WORKER_EXIT_CONFIG);
	}

	h.conf = g->conf;
	h.listen_fds = own_fds;
	h.extra_fds = extra_fds;
	h.extra_listeners = extra_li;
	h.nextra = nextra;
	h.stats = m.stats;
	h.slot = slot;
	h.index = index;
	h.generation = g->generation;
	/* Our parent's pid as it was before the fork, not getppid(): should
	 * the master have died already, getppid() would name the reaper, and
	 * the child's check that its master lives would pass. */
	h.master_pid = m.pid;
	h.listener_rows = g->listener_rows;
	h.server_rows = g->server_rows;
	h.command_fd = command_fd;
	h.handoff_fd = handoff_fd;
	h.admin_fd = slot == MASTER_ADMIN_SLOT ? m.admin_fd : -1;
	h.srclimit = slot < STATS_SLOTS && m.ledgers[slot] != NULL ? m.srclimit : NULL;
	h.srcledger = slot < STATS_SLOTS ? m.ledgers[slot] : NULL;
	if (slot == MASTER_ADMIN_SLOT)
		admin_main(&h);
	if (slot == STATS_SLOTS)
		checker_main(&h);
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

static void schedule_respawn(struct gen *g, unsigned index, int failed_young);
static void reload_maybe(void);
static int upgrade_reaped(pid_t pid, int status);
static void upgrade_tick(double now);
static void upgrade_say_ready(void);
static void starting_tick(void);
static void reload_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void start_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Fork worker index of generation g (m.cur or m.next). */
static void
spawn(struct gen *g, unsigned index)
{
	struct stats_slot *ss;
	sigset_t all, old;
	unsigned slot;
	pid_t pid;
	int cfd = -1, hsv[2] = { -1, -1 };

	for (slot = 0; slot < STATS_SLOTS; slot++)
		if (m.children[slot].pid == 0)
			break;
	if (slot == STATS_SLOTS) {
		log_errx("no free statistics slot for worker %u", index);
		schedule_respawn(g, index, 1);
		return;
	}
	/* The worker is the slot's only writer once forked; until then it is
	 * ours. */
	ss = &m.stats->slots[slot];
	memset(ss, 0, sizeof(*ss));
	ss->generation = g->generation;
	ss->index = index;
	__atomic_store_n(&ss->state, STATS_SLOT_STARTING, __ATOMIC_RELEASE);
	/* Without its command socket a worker still serves; only the control
	 * socket's session commands miss it. */
	control_worker_pair(slot, &cfd);
	/* Without its hand-off socket a worker serves too; its sessions just
	 * drain where they are on a reload (handoff.c). */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, hsv) == -1) {
		log_warn("hand-off socket for worker %u", index);
		hsv[0] = hsv[1] = -1;
	}

	/* Without its ledger a worker limits sources on its own. */
	if (m.srclimit != NULL && (m.ledgers[slot] = srclimit_ledger_create(m.srclimit)) == NULL)
		log_warn("per-source ledger for worker %u", index);

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		if (hsv[0] != -1)
			close(hsv[0]);
		child_become_worker(g, slot, index, cfd, hsv[1]);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (hsv[1] != -1)
		close(hsv[1]);
	if (pid == -1) {
		log_warn("fork for worker %u", index);
		if (hsv[0] != -1)
			close(hsv[0]);
		control_worker_failed(slot, cfd);
		srclimit_ledger_destroy(m.ledgers[slot]);
		m.ledgers[slot] = NULL;
		__atomic_store_n(&ss->state, STATS_SLOT_FREE, __ATOMIC_RELEASE);
		schedule_respawn(g, index, 1);
		return;
	}
	control_worker_forked(slot, cfd);
	m.children[slot] = (struct child){ .pid = pid, .generation = g->generation,
		.index = index, .started = mono_now(), .beat_seen = mono_now(),
		.drain_ms = g->conf->drain_timeout_ms, .hand_fd = hsv[0] };
	m.nchildren++;
	log_debug("worker %u started (pid %d, generation %u)", index, (int)pid, g->generation);
}

static void
schedule_respawn(struct gen *g, unsigned index, int failed_young)
{
	struct respawn *r = &g->respawn[index];
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
		r->at = mono_now() + delay;
		return;
	}
	spawn(g, index);
}

/* How many workers of generation g run (their slots say RUNNING). */
static unsigned
running_of(const struct gen *g)
{
	unsigned n = 0;

	for (unsigned i = 0; i < STATS_SLOTS; i++)
		if (m.children[i].pid != 0 && m.children[i].generation == g->generation &&
		    __atomic_load_n(&m.stats->slots[i].state, __ATOMIC_ACQUIRE) ==
		        STATS_SLOT_RUNNING)
			n++;
	return n;
}

/* --- helper processes ------------------------------------------------------
 * The health checker and the admin process: respawned like a worker when
 * they die, with the same back-off. A replaced one is stopped first and its
 * successor forked once it has exited (helper_reaped), so that the checker's
 * health area never has two writers. */

static void
helper_spawn(struct helper *h)
{
	sigset_t all, old;
	pid_t pid;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0)
		child_become_worker(&m.cur, h->slot, 0, -1, -1);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid == -1) {
		log_warn("fork for the %s", h->name);
		h->r.at = mono_now() + MASTER_BACKOFF_FIRST;
		return;
	}
	h->c = (struct child){ .pid = pid, .generation = m.cur.generation, .started = mono_now() };
	log_debug("%s started (pid %d, generation %u)", h->name, (int)pid, m.cur.generation);
}

/* Stop it (helper_reaped then forks its successor if it is wanted), or, when
 * none runs, start one if wanted. Forgets any pending respawn. */
static void
helper_replace(struct helper *h)
{
	memset(&h->r, 0, sizeof(h->r));
	if (h->c.pid != 0) {
		if (!h->c.quitting) {
			h->c.quitting = 1;
			h->c.kill_at = mono_now() + MASTER_KILL_GRACE;
			kill(h->c.pid, SIGTERM);
		}
		return;
	}
	if (h->wanted)
		helper_spawn(h);
}

static int
no_child_left(void)
{
	return m.nchildren == 0 && m.checker.c.pid == 0 && m.admin.c.pid == 0;
}

static void
helper_reaped(struct helper *h, struct ev_loop *loop, int status)
{
	struct child *c = &h->c;
	int expected = c->quitting || m.stopping != RUNNING;
	struct respawn *r = &h->r;

	if (WIFSIGNALED(status) && !expected)
		log_warnx("%s (pid %d) killed by signal %d", h->name, (int)c->pid,
		    WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		log_warnx("%s (pid %d) exited with status %d", h->name, (int)c->pid,
		    WEXITSTATUS(status));
	else
		log_info("%s (pid %d, generation %u) exited", h->name, (int)c->pid, c->generation);
	c->pid = 0;
	if (m.stopping != RUNNING) {
		if (no_child_left())
			ev_break(loop, EVBREAK_ALL);
		return;
	}
	if (!expected) {
		if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_CONFIG) {
			log_errx("the %s cannot run with this configuration; not restarting it",
			    h->name);
			return;
		}
		if (mono_now() - c->started < MASTER_CRASH_WINDOW) {
			unsigned shift = r->failures > 9 ? 9 : r->failures;
			ev_tstamp delay = MASTER_BACKOFF_FIRST * (double)(1u << shift);

			r->failures++;
			if (delay > MASTER_BACKOFF_MAX)
				delay = MASTER_BACKOFF_MAX;
			log_warnx("%s keeps failing (%u in a row): restarting it in %.1fs", h->name,
			    r->failures, delay);
			r->at = mono_now() + delay;
			return;
		}
		r->failures = 0;
	}
	if (h->wanted)
		helper_spawn(h);
}

static void
helper_tick(struct helper *h, double now)
{
	struct child *c = &h->c;

	if (c->pid != 0 && c->kill_at != 0 && now >= c->kill_at) {
		log_warnx("%s (pid %d) did not stop; killing it", h->name, (int)c->pid);
		kill(c->pid, SIGKILL);
		c->kill_at = 0;
	}
	if (c->pid == 0 && h->r.at != 0 && now >= h->r.at) {
		h->r.at = 0;
		if (h->wanted)
			helper_spawn(h);
	}
}

/* Start, or on reload replace, the checker for the current config: it runs
 * the health checks and resolves the servers with resolve = true. */
static void
checker_replace(void)
{
	const struct conf *c = m.cur.conf;

	m.checker.wanted = 0;
	for (unsigned i = 0; i < c->nupstreams; i++) {
		if (c->upstreams[i].health.enabled)
			m.checker.wanted = 1;
		for (unsigned j = 0; j < c->upstreams[i].nservers; j++)
			if (c->upstreams[i].servers[j].host != NULL)
				m.checker.wanted = 1;
	}
	helper_replace(&m.checker);
}

/* --- the admin process ----------------------------------------------------
 * Like the checker: respawned with back-off when it dies, replaced when a
 * reload changes its socket or its user. The master owns the socket, so a
 * bind error is a start or reload failure and the endpoint's queue survives
 * a respawn; the child only reads the segment. */

/* In every new child: only the admin process keeps an admin socket. */
static void
admin_child_close(unsigned slot)
{
	if (m.admin_next_fd != -1 && m.admin_next_fd != m.admin_fd)
		close(m.admin_next_fd);
	if (m.admin_fd != -1 && slot != MASTER_ADMIN_SLOT)
		close(m.admin_fd);
}

/* The socket for c's admin section: the current one when the address is
 * unchanged, else a new one (-1 with the reason in err), or none (*fd -1). */
static int
admin_open(const struct conf *c, int *fd, char *err, size_t errlen)
{
	*fd = -1;
	if (c->admin_address == NULL)
		return 0;
	if (m.admin_fd != -1 && m.cur.conf->admin_address != NULL &&
	    addr_equal((const struct sockaddr *)&c->admin_addr,
	        (const struct sockaddr *)&m.cur.conf->admin_addr)) {
		*fd = m.admin_fd;
		return 0;
	}
	/* After a hot upgrade, the old master's socket for it. */
	if ((*fd = inherit_take((const struct sockaddr *)&c->admin_addr)) != -1)
		return 0;
	*fd = net_listen((const struct sockaddr *)&c->admin_addr, c->admin_addrlen, 64);
	if (*fd == -1) {
		snprintf(err, errlen, "admin.listen: cannot listen on %s: %s", c->admin_address,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* At start: open the socket and fork the process; 0, or -1 with err. */
static int
admin_start(char *err, size_t errlen)
{
	if (admin_open(m.cur.conf, &m.admin_fd, err, errlen) == -1)
		return -1;
	m.admin.wanted = m.admin_fd != -1;
	if (m.admin.wanted)
		helper_spawn(&m.admin);
	return 0;
}

/* A reload: the next config's socket, kept until commit or failure. */
static int
admin_reload_open(const struct conf *next, char *err, size_t errlen)
{
	return admin_open(next, &m.admin_next_fd, err, errlen);
}

static void
admin_reload_abandon(void)
{
	if (m.admin_next_fd != -1 && m.admin_next_fd != m.admin_fd)
		close(m.admin_next_fd);
	m.admin_next_fd = -1;
}

/* The reload committed (m.cur is the new generation; old_priv what the
 * admin process ran as): move to the new socket, and restart the process
 * when its socket or its user changed. */
static void
admin_reload_commit(const struct priv *old_priv)
{
	int moved = m.admin_next_fd != m.admin_fd;

	if (moved && m.admin_fd != -1)
		close(m.admin_fd);
	m.admin_fd = m.admin_next_fd;
	m.admin_next_fd = -1;
	m.admin.wanted = m.admin_fd != -1;
	/* The one running serves on unless its socket or its user changed. */
	if (m.admin.c.pid != 0 && !moved && memcmp(old_priv, &m.cur.priv, sizeof(*old_priv)) == 0) {
		memset(&m.admin.r, 0, sizeof(m.admin.r));
		return;
	}
	helper_replace(&m.admin);
}

static void
child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	int status = w->rstatus;
	struct child *c = NULL;
	unsigned slot, lvl_expected;

	if (m.checker.c.pid != 0 && w->rpid == m.checker.c.pid) {
		helper_reaped(&m.checker, loop, status);
		return;
	}
	if (m.admin.c.pid != 0 && w->rpid == m.admin.c.pid) {
		helper_reaped(&m.admin, loop, status);
		return;
	}
	if (upgrade_reaped(w->rpid, status))
		return;
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
	if (m.ledgers[slot] != NULL) {
		/* Its connections died with it (or moved to a newer
		 * generation, which took their counts over): what its ledger
		 * still holds counts nobody's connection. */
		uint64_t back = srclimit_reconcile(m.srclimit, m.ledgers[slot]);

		if (back > 0)
			log_info("worker %u (pid %d): %" PRIu64 " per-source counts taken back",
			    c->index, (int)c->pid, back);
		srclimit_ledger_destroy(m.ledgers[slot]);
		m.ledgers[slot] = NULL;
	}
	control_worker_gone(slot);
	if (c->hand_fd != -1) {
		close(c->hand_fd);
		c->hand_fd = -1;
	}
	m.nchildren--;

	if (m.stopping != RUNNING) {
		c->pid = 0;
		if (no_child_left())
			ev_break(loop, EVBREAK_ALL);
		return;
	}
	if (!c->quitting && (c->generation == m.cur.generation ||
	                        (m.next.generation != 0 && c->generation == m.next.generation))) {
		struct gen *g = c->generation == m.cur.generation ? &m.cur : &m.next;
		unsigned index = c->index;
		/* A clean exit (an operator's TERM or QUIT to one worker) is
		 * no crash, however young the worker: replace it at once. */
		int young = mono_now() - c->started < MASTER_CRASH_WINDOW &&
		    !(WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_OK);

		c->pid = 0;
		if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_CONFIG) {
			/* A generation that is not serving yet fails as a whole:
			 * every worker has the same config. */
			if (g == &m.next)
				reload_fail("worker %u of generation %u cannot run with this "
				            "configuration", index, g->generation);
			else if (g->deadline != 0)
				start_fail("worker %u cannot run with this configuration", index);
			else
				log_errx("worker %u cannot run with this configuration; not "
				         "restarting it", index);
			return;
		}
		/* A start that failed for want of memory or descriptors is
		 * retried, with back-off however long it took. */
		if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_TEMPFAIL) {
			log_warnx("worker %u could not start (out of memory or descriptors)",
			    index);
			young = 1;
		}
		schedule_respawn(g, index, young);
		return;
	}
	c->pid = 0;
	/* An old generation is gone: a reload waiting for that may run. */
	reload_maybe();
}

static void
stop(enum stopping how)
{
	unsigned drain_ms = m.cur.conf->drain_timeout_ms;
	ev_tstamp grace;

	if (m.stopping == STOP_FAST || m.stopping == how)
		return;
	m.stopping = how;
	log_notice("%s stop: %u workers", how == STOP_FAST ? "fast" : "graceful", m.nchildren);
	/* After an upgrade systemd follows the new master (MAINPID). */
	if (!m.upgraded)
		notify_send("STOPPING=1\nSTATUS=%s stop", how == STOP_FAST ? "fast" : "graceful");
	/* Our copies of the listening sockets go first, so that once the
	 * workers close theirs new connections are refused, not queued. */
	if (m.next.generation != 0) {
		listen_close(m.next.conf, m.next.fds, m.cur.conf, m.cur.fds);
		m.next.fds = NULL;
	}
	listen_close(m.cur.conf, m.cur.fds, NULL, NULL);
	m.cur.fds = NULL;
	signal_children(how == STOP_FAST ? SIGTERM : SIGQUIT);
	/* Each worker drains by its own generation's timeout. */
	for (unsigned i = 0; i < STATS_SLOTS; i++)
		if (m.children[i].pid != 0 && m.children[i].drain_ms > drain_ms)
			drain_ms = m.children[i].drain_ms;
	grace = how == STOP_FAST ? MASTER_KILL_GRACE : drain_ms / 1000.0 + MASTER_KILL_GRACE;
	m.stop_deadline = mono_now() + grace;
	if (no_child_left())
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
	/* The workers reopen the file by name after us, as their own user. */
	if (!m.foreground)
		priv_own_log(&m.cur.priv, m.cur.conf);
	signal_children(SIGUSR1);
}

/* Give the generation's listeners and servers their stats rows, reusing the
 * rows of the same identities in earlier generations, so that old and new
 * workers add to one row. A full directory (or no memory) only costs detail:
 * the worker totals still count everything. */
static void
assign_stats_rows(struct gen *g)
{
	const struct conf *c = g->conf;
	unsigned n = 0, k = 0;
	uint16_t *lr, *sr;

	uint32_t oldest = g->generation;

	/* Rows only generations older than every live process had may go to
	 * new listeners and servers once the directory is full. */
	for (unsigned i = 0; i < STATS_SLOTS; i++)
		if (m.children[i].pid != 0 && m.children[i].generation < oldest)
			oldest = m.children[i].generation;
	if (m.checker.c.pid != 0 && m.checker.c.generation < oldest)
		oldest = m.checker.c.generation;
	stats_recycle_below(m.stats, oldest);
	for (unsigned u = 0; u < c->nupstreams; u++)
		n += c->upstreams[u].nservers;
	lr = calloc(c->nlisteners, sizeof(*lr));
	sr = calloc(n ? n : 1, sizeof(*sr));
	if (lr == NULL || sr == NULL) {
		log_warn("statistics rows for generation %u", g->generation);
		free(lr);
		free(sr);
		lr = sr = NULL;
	}
	for (unsigned i = 0; lr != NULL && i < c->nlisteners; i++) {
		const struct conf_listener *l = &c->listeners[i];

		lr[i] = (uint16_t)stats_listener_row(m.stats, (const struct sockaddr *)&l->addr,
		    l->addrlen, l->address, c->upstreams[l->upstream].name, g->generation);
		if (lr[i] == STATS_NO_ROW)
			log_warnx("statistics: no row left for listener %s (%u in use at most, "
			          "counting those of draining generations); it counts in the "
			          "totals only", l->address, STATS_LISTENERS);
	}
	for (unsigned u = 0; sr != NULL && u < c->nupstreams; u++) {
		const struct conf_upstream *up = &c->upstreams[u];

		for (unsigned i = 0; i < up->nservers; i++, k++) {
			const struct conf_server *sv = &up->servers[i];

			/* A slot of a resolved name is known by its text: its
			 * address is the checker's to change. */
			sr[k] = (uint16_t)stats_server_row(m.stats, up->name,
			    (const struct sockaddr *)&sv->addr, sv->host != NULL ? 0 : sv->addrlen,
			    sv->address, sv->weight, sv->backup, g->generation);
			if (sr[k] == STATS_NO_ROW)
				log_warnx("statistics: no row left for server %s of %s (%u in use "
				          "at most, counting those of draining generations); it "
				          "counts in the totals only", sv->address, up->name,
				    STATS_SERVERS);
		}
	}
	free(g->listener_rows);
	free(g->server_rows);
	g->listener_rows = lr;
	g->server_rows = sr;
}

static void
apply_log(const struct conf *c, const struct priv *p)
{
	if (m.foreground) {
		log_open(LOG_TARGET_STDERR, NULL, 0, c->log_level);
		return;
	}
	if (log_open(c->log_target, c->log_file, c->log_facility, c->log_level) == -1)
		log_warn("cannot open log file %s; keeping the previous log", c->log_file);
	else
		priv_own_log(p, c);
}

/* Generations other than the current one that still have a process. */
static unsigned
draining_generations(void)
{
	uint32_t seen[MASTER_MAX_DRAINING + 1];
	unsigned n = 0;

	for (unsigned i = 0; i < STATS_SLOTS && n <= MASTER_MAX_DRAINING; i++) {
		const struct child *c = &m.children[i];
		unsigned k;

		if (c->pid == 0 || c->generation == m.cur.generation)
			continue;
		for (k = 0; k < n && seen[k] != c->generation; k++)
			;
		if (k == n)
			seen[n++] = c->generation;
	}
	return n;
}

/* --- systemd ----------------------------------------------------------------
 * READY=1 once the first generation runs, RELOADING=1 and READY=1 around each
 * reload, STOPPING=1, and a STATUS= line with the connections open now. */

static void
status_line(char *buf, size_t len)
{
	struct stats_counters t;

	stats_total(m.stats, &t);
	snprintf(buf, len, "serving: %llu connections, generation %u, %u workers%s%s",
	    (unsigned long long)t.active, m.cur.generation, running_of(&m.cur),
	    m.reload_error[0] != '\0' ? "; last reload failed: " : "", m.reload_error);
}

/* Send the status line (with the assignments in `first`, may be "") now, or
 * with first == NULL only when it changed and MASTER_STATUS_EVERY passed. */
static void
status_notify(const char *first)
{
	char line[sizeof(m.status_sent)];
	double now = mono_now();

	if (!notify_enabled())
		return;
	if (first == NULL && now - m.status_at < MASTER_STATUS_EVERY)
		return;
	status_line(line, sizeof(line));
	if (first == NULL && strcmp(line, m.status_sent) == 0)
		return;
	notify_send("%sSTATUS=%s", first != NULL ? first : "", line);
	snprintf(m.status_sent, sizeof(m.status_sent), "%s", line);
	m.status_at = now;
}

/* Leave the SIGHUP pending and say why, once per wait. */
static void __attribute__((format(printf, 1, 2)))
reload_defer(const char *fmt, ...)
{
	char why[256];
	va_list ap;

	m.reload_pending = 1;
	if (m.reload_waiting)
		return;
	m.reload_waiting = 1;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warnx("reload deferred: %s", why);
}

/*
 * Every reload ends here exactly once, refused at once (the file, the
 * privileges, the listeners) or later (reload_fail, reload_commit): the
 * segment's reload figures, and whoever waits for the outcome, hear it.
 */
static void
reload_outcome(int ok, const char *why)
{
	struct stats_header *hdr = m.stats->hdr;

	if (ok)
		__atomic_store_n(&hdr->reloads_ok, hdr->reloads_ok + 1, __ATOMIC_RELAXED);
	else
		__atomic_store_n(&hdr->reloads_failed, hdr->reloads_failed + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&hdr->last_reload_ok, ok ? 1u : 0u, __ATOMIC_RELAXED);
	__atomic_store_n(&hdr->last_reload_ms, stats_now_ms(), __ATOMIC_RELAXED);
	if (m.undraining) {
		m.undraining = 0;
		if (ok) {
			__atomic_store_n(&hdr->node_state, STATS_NODE_SERVING, __ATOMIC_RELAXED);
			__atomic_store_n(&hdr->drain_started_ms, 0, __ATOMIC_RELAXED);
			log_notice("undrained: serving again, generation %u", m.cur.generation);
			master_title();
		}
		control_undrain_done(ok, why);
	}
	control_reload_done(m.reload_seq, ok, why);
	/* systemd waits for READY=1 after RELOADING=1, whatever the outcome;
	 * the reason of a failure stays in the status until a reload works. */
	snprintf(m.reload_error, sizeof(m.reload_error), "%s", ok || why == NULL ? "" : why);
	status_notify("READY=1\n");
}

/* A reload refused before any worker was forked. */
static void
reload_refused(const char *why)
{
	log_errx("reload failed, keeping the running configuration: %s", why);
	reload_outcome(0, why);
}

static void
reload(void)
{
	char err[PATH_MAX + 512];
	struct conf *next;
	struct gen *g;
	struct priv np;
	struct timespec ts;
	int *fds;

	m.reload_seq++;
	/* systemd holds the unit in "reloading" until READY=1 (reload_outcome);
	 * a deferred reload is still in progress. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
	    (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL,
	    m.cur.conf->path);
	next = conf_load(m.cur.conf->path, err, sizeof(err));
	if (next == NULL) {
		reload_refused(err);
		return;
	}
	if (priv_plan(next, &np, err, sizeof(err)) == -1) {
		reload_refused(err);
		conf_free(next);
		return;
	}
	if ((unsigned)free_slots() < next->workers) {
		reload_defer("%u statistics slots are held by draining workers and %u are "
		             "needed; it runs once enough have exited",
		    STATS_SLOTS - (unsigned)free_slots(), next->workers);
		conf_free(next);
		return;
	}
	if (admin_reload_open(next, err, sizeof(err)) == -1) {
		reload_refused(err);
		conf_free(next);
		return;
	}
	/* A drained node has no listeners left: all are opened afresh. */
	fds = listen_open(next, m.cur.fds != NULL ? m.cur.conf : NULL, m.cur.fds, err, sizeof(err));
	if (fds == NULL) {
		admin_reload_abandon();
		reload_refused(err);
		conf_free(next);
		return;
	}
	if (strcmp(next->pid_file, m.cur.conf->pid_file) != 0)
		log_warnx("pid_file changes take effect at restart; still using %s",
		    m.cur.conf->pid_file);
	if (strcmp(next->stats_file, m.cur.conf->stats_file) != 0)
		log_warnx("stats_file changes take effect at restart; still using %s",
		    m.cur.conf->stats_file);
	if ((next->control_socket == NULL) != (m.cur.conf->control_socket == NULL) ||
	    (next->control_socket != NULL &&
	        (strcmp(next->control_socket, m.cur.conf->control_socket) != 0 ||
	            next->control_mode != m.cur.conf->control_mode)))
		log_warnx("control changes take effect at restart; the control socket stays "
		          "as it was");
	/* The new workers log as the new config says from their first line. */
	apply_log(next, &np);
	master_check_fd_budget(next);

	/* The current generation serves on until every new worker runs; the
	 * kept sockets are shared, so no connection is refused meanwhile. */
	g = &m.next;
	memset(g, 0, sizeof(*g));
	g->generation = ++m.last_generation;
	g->conf = next;
	g->fds = fds;
	g->priv = np;
	g->deadline = mono_now() + MASTER_START_DEADLINE;
	assign_stats_rows(g);
	for (unsigned i = 0; i < next->workers; i++)
		spawn(g, i);
	log_info("reload: starting generation %u, %u workers; generation %u serves until "
	         "they run", g->generation, next->workers, m.cur.generation);
}

/* A master's hand-off message: kind, count, and nfds descriptors, on socket
 * to. Returns 0, or -1 with errno. */
static int
handoff_send_fds(int to, uint16_t kind, uint32_t count, const int *fds, unsigned nfds)
{
	struct handoff_msg msg;

	memset(&msg, 0, sizeof(msg));
	msg.magic = HANDOFF_MAGIC;
	msg.version = HANDOFF_VERSION;
	msg.kind = kind;
	msg.size = sizeof(msg);
	msg.count = count;
	return handoff_send(to, &msg, fds, nfds) == (ssize_t)sizeof(msg) ? 0 : -1;
}

/* Send one end of a hand-off channel to worker c (kind HANDOFF_CHAN_SEND
 * or _RECV). Returns 0, or -1 (logged). */
static int
handoff_give(struct child *c, uint16_t kind, int fd)
{
	if (handoff_send_fds(c->hand_fd, kind, 0, &fd, 1) == -1) {
		log_warn("hand-off: cannot reach worker %u (pid %d)", c->index, (int)c->pid);
		return -1;
	}
	return 0;
}

/* The reload committed: give every worker of older generations a channel to
 * every worker of the current one, on which it moves its sessions as it
 * drains (worker/handoff.c). A pair that cannot be joined leaves that old
 * worker's sessions to drain where they are. */
static void
handoff_connect(void)
{
	unsigned pairs = 0;

	for (unsigned o = 0; o < STATS_SLOTS; o++) {
		struct child *old = &m.children[o];

		if (old->pid == 0 || old->generation == m.cur.generation || old->hand_fd == -1)
			continue;
		for (unsigned n = 0; n < STATS_SLOTS; n++) {
			struct child *nw = &m.children[n];
			int sv[2];

			if (nw->pid == 0 || nw->generation != m.cur.generation || nw->hand_fd == -1)
				continue;
			if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
			        sv) == -1) {
				log_warn("hand-off: channel from worker %u to worker %u", old->index,
				    nw->index);
				continue;
			}
			if (handoff_give(nw, HANDOFF_CHAN_RECV, sv[1]) == 0 &&
			    handoff_give(old, HANDOFF_CHAN_SEND, sv[0]) == 0)
				pairs++;
			/* Theirs now (or nobody's): the kernel keeps what was sent. */
			close(sv[0]);
			close(sv[1]);
		}
	}
	if (pairs > 0)
		log_info("hand-off: %u channels from older generations to generation %u", pairs,
		    m.cur.generation);
}

/* Every worker of the next generation runs: it becomes the current one, and
 * the old generation drains. */
static void
reload_commit(void)
{
	struct gen *g = &m.next;
	double now = mono_now();
	struct priv old_priv = m.cur.priv;

	listen_commit(g->conf, g->fds);
	listen_close(m.cur.conf, m.cur.fds, g->conf, g->fds);
	conf_free(m.cur.conf);
	free(m.cur.listener_rows);
	free(m.cur.server_rows);
	if (memcmp(&g->priv, &m.cur.priv, sizeof(g->priv)) != 0)
		priv_log(&g->priv);
	/* sluicestat users follow the workers' group. */
	if (g->priv.gid != m.cur.priv.gid && priv_own_stats(&g->priv, m.stats_path) == -1)
		log_warn("cannot give %s to group %s", m.stats_path, g->priv.group);
	m.cur = *g;
	m.cur.deadline = 0;
	memset(g, 0, sizeof(*g));
	master_title();
	__atomic_store_n(&m.stats->hdr->generation, m.cur.generation, __ATOMIC_RELEASE);
	/* A level set at run time lasts until the config is read again. */
	__atomic_store_n(&m.stats->hdr->log_level, 0, __ATOMIC_RELAXED);
	handoff_connect();
	for (unsigned i = 0; i < STATS_SLOTS; i++) {
		struct child *c = &m.children[i];

		if (c->pid == 0 || c->generation == m.cur.generation)
			continue;
		if (!c->quitting) {
			c->quitting = 1;
			/* By its own drain timeout, which it obeys, not the new
			 * one's: a shorter one must not cut its connections. */
			c->kill_at = now + c->drain_ms / 1000.0 + MASTER_KILL_GRACE;
		}
		kill(c->pid, SIGQUIT);
	}
	checker_replace();
	admin_reload_commit(&old_priv);
	log_notice("reloaded %s: generation %u, %u workers", m.cur.conf->path, m.cur.generation,
	    m.cur.conf->workers);
	reload_outcome(1, NULL);
}

/* The next generation cannot run: stop its workers, forget it, and go on
 * with the current one as if the reload had never been asked for. */
static void
reload_fail(const char *fmt, ...)
{
	struct gen *g = &m.next;
	double now = mono_now();
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_errx("reload failed, keeping the running configuration: %s", why);
	reload_outcome(0, why);
	admin_reload_abandon();
	for (unsigned i = 0; i < STATS_SLOTS; i++) {
		struct child *c = &m.children[i];

		if (c->pid == 0 || c->generation != g->generation)
			continue;
		c->quitting = 1;
		c->kill_at = now + MASTER_KILL_GRACE;
		kill(c->pid, SIGTERM);
	}
	listen_close(g->conf, g->fds, m.cur.conf, m.cur.fds);
	conf_free(g->conf);
	free(g->listener_rows);
	free(g->server_rows);
	memset(g, 0, sizeof(*g));
	apply_log(m.cur.conf, &m.cur.priv);
}

/* The first generation cannot run: say why, to the starting command too,
 * and stop; master_run returns 1. */
static void
start_fail(const char *fmt, ...)
{
	char why[512], msg[520];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_errx("start failed: %s", why);
	notify_send("STATUS=start failed: %s", why);
	if (m.ready_fd != -1) {
		n = snprintf(msg, sizeof(msg), "0%s", why);
		if (write(m.ready_fd, msg, (size_t)n) != n)
			log_warn("telling the starting process why");
		close(m.ready_fd);
		m.ready_fd = -1;
	}
	m.cur.deadline = 0;
	m.status = 1;
	stop(STOP_FAST);
}

/* A starting generation is judged on every tick: the first one becomes
 * ready (the starting command is told), a reload's is committed, or either
 * fails at its deadline. */
static void
starting_tick(void)
{
	double now = mono_now();

	if (m.stopping != RUNNING)
		return;
	if (m.cur.deadline != 0) {
		if (running_of(&m.cur) >= m.cur.conf->workers) {
			m.cur.deadline = 0;
			listen_commit(m.cur.conf, m.cur.fds);
			log_notice("running: %u workers, generation %u", m.cur.conf->workers,
			    m.cur.generation);
			if (m.ready_fd != -1) {
				if (write(m.ready_fd, "1", 1) != 1)
					log_warn("telling the starting process we are ready");
				close(m.ready_fd);
				m.ready_fd = -1;
			}
			/* MAINPID: without -f, we are not the process systemd
			 * started (the unit runs us with -f; see sluiced(8)). */
			{
				char first[64];

				snprintf(first, sizeof(first), "READY=1\nMAINPID=%d\n",
				    (int)m.pid);
				status_notify(first);
			}
			if (m.from_fd != -1)
				upgrade_say_ready();
		} else if (now >= m.cur.deadline) {
			start_fail("the workers did not all start within %.0fs",
			    MASTER_START_DEADLINE);
			return;
		}
	}
	if (m.next.generation != 0) {
		if (running_of(&m.next) >= m.next.conf->workers)
			reload_commit();
		else if (now >= m.next.deadline)
			reload_fail("the workers of generation %u did not all start within %.0fs",
			    m.next.generation, MASTER_START_DEADLINE);
	}
}

/*
 * Reloads come from operators and scripts, sometimes many at once, and each
 * forks a generation and leaves the previous one draining for up to
 * timeouts.drain. Two bounds keep a storm from piling up processes, and
 * neither refuses a reload nor cuts a connection: requests closer than
 * MASTER_RELOAD_INTERVAL to the previous reload coalesce into one (the file
 * is read when it runs, so the last edit wins), and a reload waits while
 * MASTER_MAX_DRAINING older generations still drain, until one exits (at the
 * latest at its drain deadline). Called on SIGHUP, on every tick and when an
 * old worker exits.
 */
/* Whether a worker of a failed reload (a generation newer than the current
 * one, with none starting) lives on while the current config has a reuseport
 * listener: the sockets that reload added to a group are closed but live in
 * that worker, holding their places in the kernel's group until it exits, and
 * a reload adding sockets now would have them steered by the wrong places. */
static int
failed_alive(void)
{
	int rp = 0;

	for (unsigned i = 0; m.cur.conf != NULL && i < m.cur.conf->nlisteners; i++)
		rp |= m.cur.conf->listeners[i].reuseport;
	for (unsigned i = 0; rp && i < STATS_SLOTS; i++)
		if (m.children[i].pid != 0 && m.children[i].generation > m.cur.generation)
			return 1;
	return 0;
}

static void
reload_maybe(void)
{
	double now = mono_now();
	unsigned draining;

	if (!m.reload_pending)
		return;
	if (m.stopping != RUNNING) {
		m.reload_pending = 0;
		return;
	}
	/* One generation starts at a time: the next reload reads the file
	 * once this one is committed or has failed; and none while an upgrade
	 * is under way (the new binary reads the file itself). */
	if (m.next.generation != 0 || m.cur.deadline != 0 || m.up.phase != UPGRADE_NONE)
		return;
	if (now - m.last_reload < MASTER_RELOAD_INTERVAL)
		return;
	draining = draining_generations();
	if (draining >= MASTER_MAX_DRAINING) {
		reload_defer("%u older generations are still draining (at most %u); it runs "
		             "once one of them has exited",
		    draining, (unsigned)MASTER_MAX_DRAINING);
		return;
	}
	if (failed_alive()) {
		reload_defer("workers of a failed reload still hold reuseport sockets; it runs "
		             "once they have exited");
		return;
	}
	m.reload_pending = 0;
	m.reload_waiting = 0;
	m.last_reload = now;
	if (m.stats->hdr->node_state == STATS_NODE_DRAINED && !m.undraining) {
		m.reload_seq++;
		reload_refused("the node is drained (sluicectl drain): undrain it to serve again");
		return;
	}
	log_info("reloading %s", m.cur.conf->path);
	reload();
}

static void
hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (m.stopping != RUNNING)
		return;
	if (m.reload_pending) {
		log_debug("SIGHUP: a reload is already pending");
		return;
	}
	m.reload_pending = 1;
	reload_maybe();
	if (m.reload_pending && !m.reload_waiting)
		log_info("SIGHUP within %.1fs of the last reload: coalescing requests",
		    MASTER_RELOAD_INTERVAL);
}

/*
 * A worker stuck in a loop, or stopped, holds its connections and its share
 * of the accept queue hostage. Its heartbeat is judged by whether it moves,
 * on our monotonic clock, so a wall-clock step does not condemn everyone.
 */
static void
check_heartbeats(double now)
{
	/* If we ourselves did not run for a while (stopped, suspended), the
	 * workers' silence proves nothing: start counting afresh. */
	int fresh = now - m.last_tick > 2 * MASTER_TICK + 1.0;

	m.last_tick = now;
	for (unsigned i = 0; i < STATS_SLOTS; i++) {
		struct child *c = &m.children[i];
		const struct stats_slot *ss = &m.stats->slots[i];
		uint32_t state;
		uint64_t beat;

		if (c->pid == 0 || c->stuck)
			continue;
		state = __atomic_load_n(&ss->state, __ATOMIC_ACQUIRE);
		beat = __atomic_load_n(&ss->heartbeat_ms, __ATOMIC_RELAXED);
		/* Only a worker in its loop beats; one starting or exiting is
		 * judged by the drain and stop deadlines instead. */
		if (beat != c->beat || fresh ||
		    (state != STATS_SLOT_RUNNING && state != STATS_SLOT_DRAINING)) {
			c->beat = beat;
			c->beat_seen = now;
			continue;
		}
		if (now - c->beat_seen < MASTER_HEARTBEAT_STALE)
			continue;
		log_warnx("worker %u (pid %d, generation %u) is stuck: no heartbeat for %.1fs; "
		          "killing it",
		    c->index, (int)c->pid, c->generation, now - c->beat_seen);
		kill(c->pid, SIGKILL);
		c->stuck = 1;
	}
}

static void
respawn_due(struct gen *g, double now)
{
	for (unsigned i = 0; i < g->conf->workers; i++)
		if (g->respawn[i].at != 0 && now >= g->respawn[i].at) {
			g->respawn[i].at = 0;
			spawn(g, i);
		}
}

/* Counts in the per-source table that no worker's ledger holds are taken
 * back (srclimit_audit) every MASTER_SOURCE_AUDIT seconds, but only once no
 * session can be on its way between two workers: hand-offs run while an
 * older generation, a starting one or a hot upgrade exists, and a session
 * sent by a worker that died may still wait in its receiver's channel for
 * a moment after. */
#define MASTER_SOURCE_AUDIT 5.0
#define MASTER_SOURCE_QUIET 3.0

static void
source_audit(double now)
{
	struct srclimit_ledger *ls[STATS_SLOTS];
	unsigned n = 0;
	uint64_t fixed;

	if (m.srclimit == NULL)
		return;
	for (unsigned i = 0; i < STATS_SLOTS; i++) {
		const struct child *c = &m.children[i];

		if (c->pid != 0 && (c->generation != m.cur.generation || c->quitting))
			m.src_quiet_at = now + MASTER_SOURCE_QUIET;
		if (m.ledgers[i] != NULL)
			ls[n++] = m.ledgers[i];
	}
	if (m.next.generation != 0 || m.up.phase != UPGRADE_NONE || m.upgraded ||
	    m.from_fd != -1)
		m.src_quiet_at = now + MASTER_SOURCE_QUIET;
	if (now < m.src_quiet_at || now < m.src_audit_at)
		return;
	m.src_audit_at = now + MASTER_SOURCE_AUDIT;
	if ((fixed = srclimit_audit(m.srclimit, ls, n)) > 0)
		log_info("per-source table: %" PRIu64 " counts no worker held taken back", fixed);
}

/* The per-source table's figures into the segment's header (ours); the
 * slots in use, a walk of the table, once a second. */
#define MASTER_SOURCE_WALK 1.0

static void
source_publish(double now)
{
	struct stats_header *hdr = m.stats->hdr;
	struct srclimit_usage u;

	srclimit_usage(m.srclimit, &u);
	__atomic_store_n(&hdr->source_slots, u.slots, __ATOMIC_RELAXED);
	if (now >= m.src_walk_at) {
		m.src_walk_at = now + MASTER_SOURCE_WALK;
		__atomic_store_n(
		    &hdr->source_slots_used, srclimit_used(m.srclimit), __ATOMIC_RELAXED);
	}
	__atomic_store_n(&hdr->source_table_full, u.full, __ATOMIC_RELAXED);
	__atomic_store_n(&hdr->source_reconciled, u.reconciled, __ATOMIC_RELAXED);
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	double now = mono_now();

	if (m.stopping != RUNNING) {
		if (now >= m.stop_deadline) {
			log_warnx("stop: %u workers still running after the deadline; killing them",
			    m.nchildren);
			signal_children(SIGKILL);
			m.stop_deadline = now + MASTER_KILL_GRACE;
		}
		return;
	}
	respawn_due(&m.cur, now);
	if (m.next.generation != 0)
		respawn_due(&m.next, now);
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
	check_heartbeats(mono_now());
	source_audit(now);
	source_publish(now);
	upgrade_tick(now);
	helper_tick(&m.checker, now);
	helper_tick(&m.admin, now);
	starting_tick();
	reload_maybe();
	if (m.cur.deadline == 0)
		status_notify(NULL);
}

/* --- for the control socket (control.c) ----------------------------------- */

const struct conf *
master_conf(void)
{
	return m.cur.conf;
}

const uint16_t *
master_server_rows(void)
{
	return m.cur.server_rows;
}

int
master_child_info(unsigned slot, pid_t *pid, uint32_t *generation, unsigned *index)
{
	if (slot >= STATS_SLOTS || m.children[slot].pid == 0)
		return -1;
	*pid = m.children[slot].pid;
	*generation = m.children[slot].generation;
	*index = m.children[slot].index;
	return 0;
}

uint64_t
master_reload_seq(void)
{
	return m.reload_seq;
}

int
master_reload_request(char *err, size_t errlen)
{
	if (m.stopping != RUNNING) {
		snprintf(err, errlen, "stopping: no reload");
		return -1;
	}
	m.reload_pending = 1;
	reload_maybe();
	return 0;
}

void
master_set_log_level(enum log_level level)
{
	log_set_level(level);
	/* The children follow on their next tick. */
	__atomic_store_n(&m.stats->hdr->log_level, (uint32_t)level + 1, __ATOMIC_RELAXED);
	log_notice("log level set to %s", log_level_name(level));
}

/* The grace period is over: the current generation stops accepting and
 * drains (closing its listeners, as on a graceful stop), and no worker is
 * started until an undrain. The master stays. */
static void
drain_finish(void)
{
	struct stats_header *hdr = m.stats->hdr;
	double now = mono_now();

	__atomic_store_n(&hdr->node_state, STATS_NODE_DRAINED, __ATOMIC_RELAXED);
	if (m.next.generation != 0)
		reload_fail("the node drained while generation %u started", m.next.generation);
	listen_close(m.cur.conf, m.cur.fds, NULL, NULL);
	m.cur.fds = NULL;
	memset(m.cur.respawn, 0, sizeof(m.cur.respawn));
	for (unsigned i = 0; i < STATS_SLOTS; i++) {
		struct child *c = &m.children[i];

		if (c->pid == 0 || c->quitting)
			continue;
		c->quitting = 1;
		c->kill_at = now + c->drain_ms / 1000.0 + MASTER_KILL_GRACE;
		kill(c->pid, SIGQUIT);
	}
	log_notice("drained: listeners closed, %u workers finishing their connections",
	    m.nchildren);
	master_title();
}

static void
drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	if (m.stopping == RUNNING &&
	    __atomic_load_n(&m.stats->hdr->node_state, __ATOMIC_RELAXED) == STATS_NODE_DRAINING)
		drain_finish();
}

int
master_drain(unsigned grace_ms, char *err, size_t errlen)
{
	struct stats_header *hdr = m.stats->hdr;

	if (m.stopping != RUNNING) {
		snprintf(err, errlen, "stopping already");
		return -1;
	}
	if (m.cur.deadline != 0) {
		snprintf(err, errlen, "still starting; drain once the workers run");
		return -1;
	}
	if (hdr->node_state != STATS_NODE_SERVING) {
		snprintf(err, errlen, "already %s", stats_node_name(hdr->node_state));
		return -1;
	}
	__atomic_store_n(&hdr->drain_grace_ms, grace_ms, __ATOMIC_RELAXED);
	__atomic_store_n(&hdr->drain_started_ms, stats_now_ms(), __ATOMIC_RELAXED);
	__atomic_store_n(&hdr->node_state, STATS_NODE_DRAINING, __ATOMIC_RELAXED);
	log_notice("draining: health says 503 now; listeners close in %u.%03us", grace_ms / 1000,
	    grace_ms % 1000);
	master_title();
	if (grace_ms == 0) {
		drain_finish();
		return 0;
	}
	ev_timer_set(&m.drain_w, grace_ms / 1000.0, 0.);
	ev_timer_start(m.loop, &m.drain_w);
	return 0;
}

int
master_undrain(char *err, size_t errlen)
{
	struct stats_header *hdr = m.stats->hdr;

	if (m.stopping != RUNNING) {
		snprintf(err, errlen, "stopping: cannot undrain");
		return -1;
	}
	switch (hdr->node_state) {
	case STATS_NODE_SERVING:
		return 0;
	case STATS_NODE_DRAINING:
		ev_timer_stop(m.loop, &m.drain_w);
		__atomic_store_n(&hdr->node_state, STATS_NODE_SERVING, __ATOMIC_RELAXED);
		__atomic_store_n(&hdr->drain_started_ms, 0, __ATOMIC_RELAXED);
		log_notice("undrained before the listeners closed: serving on");
		master_title();
		return 0;
	default:
		/* The listeners are gone: a new generation opens them, as a
		 * reload would (reload_outcome ends it). */
		if (!m.undraining) {
			m.undraining = 1;
			m.reload_pending = 1;
			log_notice("undrain: starting a generation to serve again");
			reload_maybe();
		}
		(void)err;
		(void)errlen;
		return 1;
	}
}

/* --- hot binary upgrade ------------------------------------------------------
 * Old side: check the new binary's view of the config (-t), fork and exec it
 * with the listening sockets, the pid file's lock and a socketpair; when it
 * says its generation runs (UPGRADE_READY, with its workers' hand-off
 * sockets), join every one of our workers to every one of its workers as a
 * reload does, and stop gracefully: our workers hand their sessions over and
 * we exit once they have, leaving the pid file, the segment and the control
 * socket to the new master. Any failure before that leaves us serving.
 * New side (main.c started us with SLUICE_UPGRADE): say UPGRADE_READY once
 * the first generation runs, and when the old master is gone, add what its
 * workers counted since our start to our totals. */

static void
upgrade_reset(void)
{
	if (m.up.fd != -1) {
		ev_io_stop(m.loop, &m.up.io);
		close(m.up.fd);
		m.up.fd = -1;
	}
	if (m.up.check_fd != -1) {
		close(m.up.check_fd);
		m.up.check_fd = -1;
	}
	m.up.phase = UPGRADE_NONE;
}

static void __attribute__((format(printf, 1, 2)))
upgrade_fail(const char *fmt, ...)
{
	char why[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_errx("upgrade failed, this master keeps serving: %s", why);
	if (m.up.phase == UPGRADE_STARTING) {
		if (m.up.pid > 0 && kill(m.up.pid, 0) == 0)
			kill(m.up.pid, SIGKILL);
		/* It may have named itself in the pid file before it failed. */
		if (master_pidfile_write(m.cur.conf->pid_file) == -1)
			log_warn("cannot write pid file %s", m.cur.conf->pid_file);
	}
	/* The new master may have steered our reuseport listeners' clients
	 * to its own workers' sockets: back to ours. */
	if (m.cur.fds != NULL)
		listen_commit(m.cur.conf, m.cur.fds);
	upgrade_reset();
	control_upgrade_done(0, why);
}

/* A new binary: our exe, or the path the file at it was replaced by. */
static void
upgrade_exec(void)
{
	/* A reuseport listener passes every socket of its group. */
	unsigned n = 0, cap = (m.cur.fds != NULL ? listen_all(m.cur.conf, m.cur.fds, NULL) : 0) + 1;
	int sv[2], *fds = calloc(cap, sizeof(*fds));
	char *list = calloc(cap, 12), env[64];
	pid_t pid;

	if (fds == NULL || list == NULL) {
		free(fds);
		free(list);
		upgrade_fail("out of memory");
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1) {
		free(fds);
		free(list);
		upgrade_fail("socketpair: %s", strerror(errno));
		return;
	}
	if (m.cur.fds != NULL)
		n = listen_all(m.cur.conf, m.cur.fds, fds);
	if (m.admin_fd != -1)
		fds[n++] = m.admin_fd;
	for (unsigned i = 0; i < n; i++) {
		size_t used = strlen(list);

		snprintf(list + used, (size_t)cap * 12 - used, "%s%d", i ? "," : "", fds[i]);
	}
	snprintf(env, sizeof(env), "%d,%d,%d", sv[1], m.pid_fd, m.foreground);
	pid = fork();
	if (pid == 0) {
		char *argv[] = { (char *)"sluiced", (char *)"-c", m.cur.conf->path,
			m.foreground ? (char *)"-f" : NULL, NULL };
		sigset_t none;

		/* What the new master inherits: exactly these. */
		for (unsigned i = 0; i < n; i++)
			fcntl(fds[i], F_SETFD, 0);
		fcntl(sv[1], F_SETFD, 0);
		fcntl(m.pid_fd, F_SETFD, 0);
		setenv("SLUICE_UPGRADE", env, 1);
		setenv("SLUICE_UPGRADE_FDS", list, 1);
		if (notify_name() != NULL)
			setenv("NOTIFY_SOCKET", notify_name(), 1);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(m.exe, argv);
		_exit(127);
	}
	free(fds);
	free(list);
	close(sv[1]);
	if (pid == -1) {
		close(sv[0]);
		upgrade_fail("fork: %s", strerror(errno));
		return;
	}
	m.up.pid = pid;
	m.up.fd = sv[0];
	m.up.phase = UPGRADE_STARTING;
	m.up.term_sent = 0;
	ev_io_set(&m.up.io, m.up.fd, EV_READ);
	ev_io_start(m.loop, &m.up.io);
	log_notice("upgrade: new master started (pid %d, %s)", (int)pid, m.exe);
}

/* The -t check exited with status. */
static void
upgrade_checked(int status)
{
	char out[512];
	ssize_t n = m.up.check_fd != -1 ? read(m.up.check_fd, out, sizeof(out) - 1) : -1;

	out[n > 0 ? n : 0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	m.up.check_pid = 0;
	if (m.up.check_fd != -1) {
		close(m.up.check_fd);
		m.up.check_fd = -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		upgrade_fail("%s -t refuses the configuration: %s", m.exe,
		    out[0] ? out : "(no output)");
		return;
	}
	upgrade_exec();
}

/* MASTER_UPGRADE_DEADLINE, or the test hook's (tests/i_upgrade). */
static double
upgrade_deadline(void)
{
	const char *v = getenv("SLUICE_TEST_UPGRADE_DEADLINE_MS");

	return v != NULL && atoi(v) > 0 ? atoi(v) / 1000.0 : MASTER_UPGRADE_DEADLINE;
}

int
master_upgrade_request(char *err, size_t errlen)
{
	int p[2];
	pid_t pid;

	if (m.up.phase != UPGRADE_NONE) {
		snprintf(err, errlen, "an upgrade is already under way");
		return -1;
	}
	if (m.stopping != RUNNING || m.upgraded) {
		snprintf(err, errlen, "stopping");
		return -1;
	}
	/* A generation whose workers all run is judged now, not at the next
	 * tick. */
	starting_tick();
	if (m.cur.deadline != 0 || m.next.generation != 0 || m.cur.fds == NULL) {
		snprintf(err, errlen, "%s", m.cur.fds == NULL ? "the node is drained"
		                                              : "a generation is starting");
		return -1;
	}
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		char *argv[] = { (char *)"sluiced", (char *)"-t", (char *)"-c", m.cur.conf->path,
			NULL };

		dup2(p[1], 1);
		dup2(p[1], 2);
		execv(m.exe, argv);
		_exit(127);
	}
	close(p[1]);
	if (pid == -1) {
		close(p[0]);
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	m.up.check_pid = pid;
	m.up.check_fd = p[0];
	m.up.phase = UPGRADE_CHECKING;
	m.up.deadline = mono_now() + upgrade_deadline();
	log_notice("upgrade: checking %s with %s", m.cur.conf->path, m.exe);
	return 0;
}

/* The new master runs: join our workers to its workers, tell whoever asked,
 * and go. */
static void
upgrade_took_over(const int *fds, unsigned nfds)
{
	unsigned pairs = 0;

	for (unsigned o = 0; o < STATS_SLOTS; o++) {
		struct child *old = &m.children[o];

		if (old->pid == 0 || old->hand_fd == -1)
			continue;
		for (unsigned k = 0; k < nfds; k++) {
			int sv[2];

			if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
			        sv) == -1)
				continue;
			if (handoff_send_fds(fds[k], HANDOFF_CHAN_RECV, 0, &sv[1], 1) == 0 &&
			    handoff_give(old, HANDOFF_CHAN_SEND, sv[0]) == 0)
				pairs++;
			close(sv[0]);
			close(sv[1]);
		}
	}
	log_notice("upgraded: the new master (pid %d) serves; %u hand-off channels to its "
	           "workers; this master stops once its workers have handed over",
	    (int)m.up.pid, pairs);
	notify_send("MAINPID=%d\nREADY=1\nSTATUS=upgraded: new master pid %d", (int)m.up.pid,
	    (int)m.up.pid);
	m.upgraded = 1;
	listen_keep_files();
	m.up.phase = UPGRADE_NONE;
	{
		char text[96];

		snprintf(text, sizeof(text), "upgraded: new master pid %d", (int)m.up.pid);
		control_upgrade_done(1, text);
	}
	stop(STOP_GRACEFUL);
}

static void
up_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct handoff_msg msg;
	int fds[CONF_WORKERS_MAX], trunc;
	unsigned nfds = 0;
	ssize_t n = handoff_recv(io->fd, &msg, fds, CONF_WORKERS_MAX, &nfds, &trunc);

	if (n == -1 && errno == EAGAIN)
		return;
	if (n <= 0) {
		/* child_cb says how it ended; only the socket is gone here. */
		ev_io_stop(loop, io);
		return;
	}
	if (trunc || (size_t)n != sizeof(msg) || msg.magic != HANDOFF_MAGIC ||
	    msg.kind != HANDOFF_UPGRADE_READY) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		upgrade_fail("the new master sent a message we cannot read");
		return;
	}
	ev_io_stop(loop, io);
	upgrade_took_over(fds, nfds);
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
}

/* The upgrade's children exiting (1: it was one of them). */
static int
upgrade_reaped(pid_t pid, int status)
{
	if (m.up.check_pid != 0 && pid == m.up.check_pid) {
		upgrade_checked(status);
		return 1;
	}
	if (m.up.pid != 0 && pid == m.up.pid) {
		m.up.pid = 0;
		if (m.up.phase == UPGRADE_STARTING) {
			if (WIFEXITED(status))
				upgrade_fail("the new master exited with status %d before it ran "
				             "(see its log lines above)", WEXITSTATUS(status));
			else
				upgrade_fail("the new master was killed by signal %d before it ran",
				    WTERMSIG(status));
		}
		return 1;
	}
	return 0;
}

static void
upgrade_tick(double now)
{
	if (m.up.phase == UPGRADE_NONE || now < m.up.deadline)
		return;
	if (m.up.phase == UPGRADE_CHECKING) {
		kill(m.up.check_pid, SIGKILL);
		m.up.check_pid = 0;
		upgrade_fail("%s -t gave no answer within %.1fs", m.exe, upgrade_deadline());
		return;
	}
	upgrade_fail("the new master did not run its workers within %.1fs", upgrade_deadline());
}

static void
usr2_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	char err[256];

	if (master_upgrade_request(err, sizeof(err)) == -1)
		log_errx("upgrade refused: %s", err);
}

/* New side: our first generation runs. The pid file names us from now on. */
static void
upgrade_say_ready(void)
{
	int fds[CONF_WORKERS_MAX];
	unsigned n = 0;

	for (unsigned i = 0; i < STATS_SLOTS && n < CONF_WORKERS_MAX; i++)
		if (m.children[i].pid != 0 && m.children[i].generation == m.cur.generation &&
		    m.children[i].hand_fd != -1)
			fds[n++] = m.children[i].hand_fd;
	if (master_pidfile_write(m.cur.conf->pid_file) == -1)
		log_warn("cannot write pid file %s", m.cur.conf->pid_file);
	listen_own_inherited();
	if (handoff_send_fds(m.from_fd, HANDOFF_UPGRADE_READY, n, fds, n) == -1)
		log_warn("upgrade: cannot tell the old master we run");
	else
		log_notice("upgrade: running; the old master hands its sessions over");
}

/* The same per row: what the old workers counted since our start. */
static void
rows_delta_add(void)
{
	unsigned nl = m.old_seg->nlisteners > m.stats->nlisteners ? m.old_seg->nlisteners
	                                                           : m.stats->nlisteners;
	unsigned ns = m.old_seg->nservers > m.stats->nservers ? m.old_seg->nservers
	                                                       : m.stats->nservers;
	struct stats_listener_counters *l = calloc(nl, sizeof(*l));
	struct stats_server_counters *sv = calloc(ns, sizeof(*sv));

	if (l != NULL && sv != NULL && m.seeded_l != NULL && m.seeded_s != NULL) {
		uint64_t *a, *b;

		stats_row_totals(m.old_seg, l, sv);
		a = (uint64_t *)(void *)l;
		b = (uint64_t *)(void *)m.seeded_l;
		for (size_t i = 0; i < nl * sizeof(*l) / sizeof(uint64_t); i++)
			a[i] = a[i] >= b[i] ? a[i] - b[i] : 0;
		a = (uint64_t *)(void *)sv;
		b = (uint64_t *)(void *)m.seeded_s;
		for (size_t i = 0; i < ns * sizeof(*sv) / sizeof(uint64_t); i++)
			a[i] = a[i] >= b[i] ? a[i] - b[i] : 0;
		stats_rows_retired_add(m.stats, l, sv);
	}
	free(l);
	free(sv);
	free(m.seeded_l);
	free(m.seeded_s);
	m.seeded_l = NULL;
	m.seeded_s = NULL;
}

/* New side: the old master is gone. What its workers counted since our
 * start (their last sessions, bytes, closes) joins our totals. */
static void
from_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	char buf[64];
	ssize_t n = recv(io->fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		return;
	ev_io_stop(loop, io);
	close(m.from_fd);
	m.from_fd = -1;
	if (m.old_seg != NULL) {
		struct stats_counters now, delta;
		uint64_t *a = (uint64_t *)(void *)&now, *b = (uint64_t *)(void *)&m.seeded,
			 *d = (uint64_t *)(void *)&delta;

		stats_total(m.old_seg, &now);
		for (size_t i = 0; i < sizeof(now) / sizeof(uint64_t); i++)
			d[i] = a[i] >= b[i] ? a[i] - b[i] : 0;
		stats_retired_add(m.stats, &delta);
		rows_delta_add();
		stats_detach(m.old_seg);
		m.old_seg = NULL;
	}
	log_notice("upgrade: the old master has exited");
}

int
master_upgraded(void)
{
	return m.upgraded;
}

int
master_run(struct master_start *st)
{
	m.loop = EV_DEFAULT;
	m.cur.conf = st->conf;
	m.cur.fds = st->listen_fds;
	m.ready_fd = st->ready_fd;
	m.stats = st->stats;
	m.pid_fd = st->pid_fd;
	m.pid = getpid();
	m.admin_fd = m.admin_next_fd = -1;
	m.up.fd = m.up.check_fd = -1;
	m.from_fd = st->upgrade_fd;
	m.old_seg = st->old_seg;
	m.seeded = st->seeded;
	m.seeded_l = st->seeded_rows_l;
	m.seeded_s = st->seeded_rows_s;
	/* The binary a hot upgrade starts: whatever is at our path then. */
	{
		ssize_t n = readlink("/proc/self/exe", m.exe, sizeof(m.exe) - 1);

		m.exe[n > 0 ? n : 0] = '\0';
		if (n > 10 && strcmp(m.exe + n - 10, " (deleted)") == 0)
			m.exe[n - 10] = '\0';
	}
	ev_init(&m.up.io, up_cb);
	m.checker = (struct helper){ .name = "health checker", .slot = STATS_SLOTS };
	m.admin = (struct helper){ .name = "admin process", .slot = MASTER_ADMIN_SLOT };
	m.foreground = st->foreground;
	m.cur.priv = *st->priv;
	if ((m.stats_path = strdup(st->conf->stats_file)) == NULL)
		fatal("out of memory");
	m.last_tick = mono_now();
	m.cur.generation = m.last_generation = st->first_generation ? st->first_generation : 1;
	/* Ready (the starting command returns) once every worker runs. */
	m.cur.deadline = mono_now() + MASTER_START_DEADLINE;
	__atomic_store_n(&m.stats->hdr->generation, m.cur.generation, __ATOMIC_RELEASE);
	assign_stats_rows(&m.cur);
	master_title();
	notify_send("STATUS=starting: generation %u, %u workers", m.cur.generation,
	    m.cur.conf->workers);

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
	ev_signal_init(&m.sig_usr2, usr2_cb, SIGUSR2);
	ev_signal_start(m.loop, &m.sig_usr2);
	if (m.from_fd != -1) {
		ev_io_init(&m.from_w, from_cb, m.from_fd, EV_READ);
		ev_io_start(m.loop, &m.from_w);
	}
	ev_child_init(&m.child_w, child_cb, 0, 0);
	ev_child_start(m.loop, &m.child_w);
	ev_timer_init(&m.tick, tick_cb, MASTER_TICK, MASTER_TICK);
	ev_timer_start(m.loop, &m.tick);
	ev_init(&m.drain_w, drain_cb);
	control_start(m.loop, m.stats);

	/* Before the first fork: every worker inherits the same table. A
	 * reload keeps it (its size is read at start only); a hot upgrade's
	 * new master makes its own, and sessions handed over to it are
	 * counted there afresh. */
	{
		const struct conf *c = m.cur.conf;

		m.srclimit = srclimit_create(c->source_table ? c->source_table
		                                             : srclimit_auto_slots(c->max_connections));
		if (m.srclimit == NULL)
			log_warn("per-source table: limits per worker only");
		source_publish(mono_now());
	}
	for (unsigned i = 0; i < m.cur.conf->workers; i++)
		spawn(&m.cur, i);
	checker_replace();
	{
		char err[PATH_MAX + 256];

		if (admin_start(err, sizeof(err)) == -1)
			start_fail("%s", err);
	}
	/* An upgrade's inherited sockets the new config has no use for. */
	inherit_close_rest();
	log_notice("started: %u workers, %u listeners, generation %u", m.cur.conf->workers,
	    m.cur.conf->nlisteners, m.cur.generation);

	ev_run(m.loop, 0);

	log_notice(m.upgraded ? "stopped: the new master serves" : "stopped");
	control_close(!m.upgraded);
	listen_close(m.cur.conf, m.cur.fds, NULL, NULL);
	conf_free(m.cur.conf);
	free(m.cur.listener_rows);
	free(m.cur.server_rows);
	conf_free(m.next.conf);
	free(m.next.listener_rows);
	free(m.next.server_rows);
	free(m.stats_path);
	return m.status;
}
