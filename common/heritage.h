/* SPDX-License-Identifier: BSD-2-Clause */
/* heritage.h — everything a child (worker or health checker) inherits from
 * the master across fork, in one struct, and the children's entry points. The
 * only header shared by master/, worker/ and checker/. */
#ifndef SLUICE_HERITAGE_H
#define SLUICE_HERITAGE_H

#include <stdint.h>
#include <sys/types.h>

struct conf;
struct stats_seg;
struct srclimit;
struct srclimit_ledger;

#include <errno.h>

/* Worker (and checker) exit statuses the master understands. */
#define WORKER_EXIT_OK 0
#define WORKER_EXIT_FAILURE 1
#define WORKER_EXIT_TEMPFAIL 75 /* EX_TEMPFAIL: could not start for want of memory or
                                 * descriptors; respawn with back-off */
#define WORKER_EXIT_CONFIG 78   /* EX_CONFIG: cannot run with this config; do not respawn */

/* The exit status of a child whose start-up failed with err: a shortage
 * (memory, descriptors, buffers) passes, so TEMPFAIL; anything else is a
 * refusal of the config, which conf.c should have caught, so CONFIG. */
static inline int
heritage_exit_status(int err)
{
	switch (err) {
	case ENOMEM:
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case EAGAIN:
		return WORKER_EXIT_TEMPFAIL;
	default:
		return WORKER_EXIT_CONFIG;
	}
}

struct heritage {
	const struct conf *conf;  /* the generation's config (master's copy) */
	/* Parallel to conf->listeners: the listening socket, for a reuseport
	 * listener this worker's own (-1 in a helper). */
	const int *listen_fds;
	/* A worker's other reuseport sockets, which it accepts as well (left
	 * over from a larger worker count, master/listen.c), and the listener
	 * of each. */
	const int *extra_fds;
	const unsigned *extra_listeners;
	unsigned nextra;
	/* Mapped shared; in the child only its own slot and rows (the
	 * checker: the health area) are writable, see stats_protect_worker. */
	struct stats_seg *stats;
	unsigned slot;            /* this worker's stats slot */
	unsigned index;           /* worker number within its generation */
	uint32_t generation;
	pid_t master_pid;         /* the master, as it was before the fork: a child
	                           * whose getppid() differs is an orphan */
	/* Stats rows of this generation (stats_listener_row/stats_server_row),
	 * the same for every generation that has the same listener or server,
	 * STATS_NO_ROW where the directory was full. listener_rows is parallel
	 * to conf->listeners; server_rows to every server of every upstream in
	 * config order (upstream 0's servers, then upstream 1's, ...). Also the
	 * index of a server's health in the segment. NULL: no rows at all. */
	const uint16_t *listener_rows;
	const uint16_t *server_rows;
	int command_fd; /* a worker's end of its socketpair with the master
	                 * (control socket requests, worker/command.c); -1: none */
	/* A worker's SOCK_SEQPACKET socket with the master on which it gets
	 * the channels of session hand-off after a reload (worker/handoff.c);
	 * -1 in helpers and when it could not be made. */
	int handoff_fd;
	/* The admin endpoint's listening socket (conf->admin_address), opened
	 * by the master; -1 in every child but the admin process. */
	int admin_fd;
	/* The master's per-source table (common/srclimit.h), shared by every
	 * worker, and this worker's ledger in it; NULL: none (each worker
	 * then limits sources on its own). */
	struct srclimit *srclimit;
	struct srclimit_ledger *srcledger;
};

/* In a child, now and then (a worker's heartbeat, the checker's checks):
 * take the log level an operator set at run time (sluicectl set log level),
 * which the master publishes in the segment's header. */
#include "log.h"
#include "stats.h"
static inline void
child_follow_log_level(const struct stats_seg *seg)
{
	uint32_t v = __atomic_load_n(&seg->hdr->log_level, __ATOMIC_RELAXED);

	if (v != 0 && v - 1 <= LOG_LEVEL_DEBUG && (enum log_level)(v - 1) != log_get_level())
		log_set_level((enum log_level)(v - 1));
}

/* Helper processes (the checker, the admin process; common/helper.c).
 * helper_begin, first thing: close the listeners, die with the master.
 * helper_enter, once its own watchers are set up, just before ev_run: stop
 * on TERM, INT and QUIT, reopen the log on USR1, ignore HUP, unblock the
 * signals the fork blocked, and exit at once if the master is gone. */
struct ev_loop;
void helper_begin(const struct heritage *);
void helper_enter(struct ev_loop *, const struct heritage *);

/* Run a worker until it is told to stop; never returns. Called in the child
 * right after fork, once the master has stopped its own watchers, called
 * ev_loop_fork on the default loop, closed what the worker must not hold and
 * dropped privileges (master/priv.c). Every signal is still blocked: the
 * worker unblocks them once its own signal watchers are started. */
void worker_main(const struct heritage *) __attribute__((noreturn));

/* Run the health checker (checker/checker.c) until told to stop; never returns.
 * Forked like a worker, one per generation whose config has health checks;
 * slot and index are unused. It writes only the stats segment's health area. */
void checker_main(const struct heritage *) __attribute__((noreturn));

/* Run the admin process (admin/admin.c): /metrics and /healthz over HTTP on
 * admin_fd, read from the stats segment, until told to stop; never returns.
 * Forked like the checker, one per master while the config has an admin
 * section; it writes nothing in the segment. */
void admin_main(const struct heritage *) __attribute__((noreturn));

#endif
