/* SPDX-License-Identifier: BSD-2-Clause */
/* i_forkrace.c — integration test of a master that dies just as it forks a
 * child: the child (a worker, or the health checker) must notice that its
 * parent is gone and exit, not run on as an orphan holding the port. The
 * fault injector (tests/faultshim.c) makes the new child SIGKILL the master
 * before fork returns in it. This test is a child subreaper, so the orphans
 * come to it; it kills only the processes it started and their children. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

/* Our live children that run sluiced (orphans reparented to us), into pids. */
static int
sluiced_children(pid_t *pids, int max)
{
	pid_t all[64];
	int n = h_children(getpid(), all, 64), k = 0;

	for (int i = 0; i < n && i < 64; i++)
		if (h_is_sluiced(all[i]) && k < max)
			pids[k++] = all[i];
	return k;
}

static void
reap_orphans(void)
{
	pid_t pids[16];
	int n = sluiced_children(pids, 16);

	for (int i = 0; i < n; i++)
		h_kill(pids[i]);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* Environment that preloads the fault injector into what we spawn next. */
static void
shim_on(int kill_at_fork)
{
	char num[16];

	snprintf(num, sizeof(num), "%d", kill_at_fork);
	h_preload("faultshim.so");
	setenv("FAULTSHIM_DEPTH", "1", 1);
	setenv("FAULTSHIM_KILL_PARENT", num, 1);
}

static void
shim_off(void)
{
	h_preload(NULL);
	unsetenv("FAULTSHIM_DEPTH");
	unsetenv("FAULTSHIM_KILL_PARENT");
}

/*
 * Start sluiced -f on conf with the master killed by the child of its
 * kill_at-th fork; check that the master died, then that every child it
 * left exits by itself and the port is closed. what names the child.
 */
static void
race(const char *what, const char *conf, int kill_at, int lp)
{
	char *argv[] = { (char *)h_sluiced(), "-f", "-c", (char *)conf, NULL };
	pid_t master, left[16];
	uint64_t end;
	int status, n;

	shim_on(kill_at);
	master = h_spawn(argv, h_path("sluiced.log"));
	shim_off();
	ok(h_wait_exit(master, 15000, &status) == 0 && WIFSIGNALED(status) &&
	    WTERMSIG(status) == SIGKILL, "%s: the master died as it forked the %s", what, what);
	end = h_now_ms() + 15000;
	while ((n = sluiced_children(left, 16)) > 0 && h_now_ms() < end)
		h_nap(20);
	ok(n == 0, "%s: the orphaned %s noticed and exited (%d left)", what, what, n);
	end = h_now_ms() + 5000;
	while (h_port_refuses(lp) != 1 && h_now_ms() < end)
		h_nap(20);
	is(h_port_refuses(lp), 1, "%s: nothing holds the port", what);
	reap_orphans();
}

int
main(void)
{
	int ep, lp;
	char *conf;

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		bail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	atexit(reap_orphans);
	ep = h_free_port();
	h_echod_start(ep);

	/* One worker, no checker: the first fork is the worker's. */
	lp = h_free_port();
	race("worker", h_conf("worker.conf", 1, lp, &ep, 1, NULL), 1, lp);

	/* One worker, then the checker: the second fork is the checker's. */
	lp = h_free_port();
	conf = strdup(h_path("checker.conf"));
	h_write_file(conf,
	    "workers = 1;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" );\n"
	    "  health = { interval = \"1s\"; }; } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    h_pidfile(), h_statsfile(), ep, lp);
	race("checker", conf, 2, lp);
	free(conf);

	done_testing();
	return tap_exit();
}
