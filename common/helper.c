/* SPDX-License-Identifier: BSD-2-Clause */
/* helper.c — what the master's helper processes (the health checker and the
 * admin process) do alike, after the fork: let go of the listening sockets,
 * die with the master, stop on TERM/INT/QUIT, reopen the log on USR1. Runs
 * in those children only. */
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <ev.h>

#include "conf.h"
#include "heritage.h"
#include "log.h"

static ev_signal sig_term, sig_int, sig_quit, sig_usr1;

static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void
reopen_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (log_reopen() == -1)
		log_warn("reopening the log file");
}

void
helper_begin(const struct heritage *h)
{
	/* A helper never accepts: holding the listeners would keep a port
	 * open after a reload or a stop removed it. */
	for (unsigned i = 0; i < h->conf->nlisteners; i++)
		close(h->listen_fds[i]);
	/* An orphan has nobody to report to. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
}

void
helper_enter(struct ev_loop *loop, const struct heritage *h)
{
	sigset_t none;

	ev_signal_init(&sig_term, stop_cb, SIGTERM);
	ev_signal_init(&sig_int, stop_cb, SIGINT);
	ev_signal_init(&sig_quit, stop_cb, SIGQUIT);
	ev_signal_init(&sig_usr1, reopen_cb, SIGUSR1);
	ev_signal_start(loop, &sig_term);
	ev_signal_start(loop, &sig_int);
	ev_signal_start(loop, &sig_quit);
	ev_signal_start(loop, &sig_usr1);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	/* The master forks with every signal blocked; our watchers exist now. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Dead before the parent-death signal was asked for: no signal came. */
	if (getppid() != h->master_pid)
		exit(WORKER_EXIT_OK);
}
