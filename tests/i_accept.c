/* SPDX-License-Identifier: BSD-2-Clause */
/* i_accept.c — accept_workers: with more workers than that, only that many
 * take new connections at once (the `accepting` gauge), the others keep what
 * they hold; a worker 7/8 full hands its turn on, one that empties takes it
 * back, a killed worker's turn passes on, and no client is ever refused or
 * left unanswered on the way. Through the real sluiced with echod behind. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"

#define WORKERS 4
#define TURN 2
#define PER_WORKER 16 /* full at 14 */
#define MAXC 80

static int fds[MAXC];
static int nfds;

/* Per running slot: its connections open now. Returns how many running
 * workers hold any, and the most one holds in *most. */
static int
holding(unsigned *most)
{
	struct stats_seg seg;
	char err[256];
	int n = 0;

	*most = 0;
	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return -1;
	for (uint32_t i = 0; i < seg.nslots; i++) {
		const struct stats_slot *s = &seg.slots[i];
		unsigned a;

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != STATS_SLOT_RUNNING)
			continue;
		a = (unsigned)STATS_GET(s, active);
		if (a > 0)
			n++;
		if (a > *most)
			*most = a;
	}
	stats_detach(&seg);
	return n;
}

static void
show(const char *when)
{
	struct stats_seg seg;
	char err[256], line[256];
	size_t used = 0;

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return;
	for (uint32_t i = 0; i < seg.nslots; i++) {
		const struct stats_slot *s = &seg.slots[i];

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != STATS_SLOT_RUNNING)
			continue;
		used += (size_t)snprintf(line + used, sizeof(line) - used, " %u:%llu/%llu%s", i,
		    (unsigned long long)STATS_GET(s, active), (unsigned long long)STATS_GET(s, accepted),
		    STATS_GET(s, accepting) ? "*" : "");
		if (used >= sizeof(line))
			break;
	}
	stats_detach(&seg);
	diag("%s: slot:active/accepted(*accepting)%s", when, line);
}

/* The pid of a running worker that accepts now, or 0. */
static pid_t
accepting_pid(void)
{
	struct stats_seg seg;
	char err[256];
	pid_t pid = 0;

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return 0;
	for (uint32_t i = 0; i < seg.nslots && pid == 0; i++)
		if (__atomic_load_n(&seg.slots[i].state, __ATOMIC_ACQUIRE) == STATS_SLOT_RUNNING &&
		    STATS_GET(&seg.slots[i], accepting) == 1)
			pid = seg.slots[i].pid;
	stats_detach(&seg);
	return pid;
}

static int
wait_accepting(uint64_t want, int ms)
{
	uint64_t end = h_now_ms() + (uint64_t)ms, v;

	do {
		v = h_stat("accepting");
		if (v == want)
			return 1;
		h_nap(20);
	} while (h_now_ms() < end);
	diag("accepting is %llu, wanted %llu", (unsigned long long)v, (unsigned long long)want);
	return 0;
}

/* Open n more connections one after another; each must echo. Returns how
 * many did. */
static int
open_more(int lport, int n)
{
	int good = 0;

	for (int i = 0; i < n && nfds < MAXC; i++) {
		int fd = h_connect(lport, 5000);

		if (fd != -1 && h_round_trip(fd, 10000) == 0)
			good++;
		else
			diag("connection %d: %s", nfds, fd == -1 ? "connect failed" : "no echo");
		fds[nfds++] = fd;
	}
	return good;
}

static void
close_conns(int from, int to)
{
	for (int i = from; i < to && i < nfds; i++)
		if (fds[i] != -1) {
			close(fds[i]);
			fds[i] = -1;
		}
}

static void
test_turns(void)
{
	int lport = h_free_port(), eport = h_free_port();
	pid_t echod = h_echod_start(eport), master, pids[WORKERS];
	char extra[160];
	const char *conf;
	unsigned most;
	int n;

	snprintf(extra, sizeof(extra),
	    "accept_workers = %d;\nlimits = { max_connections_per_worker = %d; };\n", TURN,
	    PER_WORKER);
	conf = h_conf("turns.conf", WORKERS, lport, &eport, 1, extra);
	master = h_sluiced_start(conf, lport, WORKERS);
	nfds = 0;

	ok(wait_accepting(TURN, 10000), "%d of %d workers take new connections", TURN, WORKERS);

	/* 20 connections fit in two workers below full (2 x 14). */
	is(open_more(lport, 20), 20, "20 connections echo");
	n = holding(&most);
	show("after 20");
	is(n, TURN, "they sit in %d workers (most %u)", TURN, most);

	/* 50 in all need every worker (3 x 16 < 50); the turn passes on as
	 * workers fill, and nobody waits unanswered. */
	is(open_more(lport, 30), 30, "30 more echo while the turn passes on");
	n = holding(&most);
	ok(n == WORKERS && most <= PER_WORKER, "all %d workers hold some now (%d), none over %d (%u)",
	    WORKERS, n, PER_WORKER, most);
	is(h_stat("refused"), 0, "no client was refused");

	/* Emptying the first 20 brings their workers back below full: they
	 * take their turn back. */
	show("after 50");
	close_conns(0, 20);
	ok(h_wait_stat("closed", 20, 10000), "20 connections closed");
	show("after closing 20");
	ok(wait_accepting(TURN, 10000), "the turn settles on %d workers again", TURN);
	is(open_more(lport, 10), 10, "10 more echo");

	/* A worker killed while it is one of those accepting: its turn
	 * passes on (or to its replacement) and clients keep being served. */
	if (h_stats_running(pids, WORKERS, 0) == WORKERS) {
		pid_t victim = accepting_pid();

		ok(victim > 0 && kill(victim, SIGKILL) == 0, "killed accepting worker %d",
		    (int)victim);
		close_conns(20, nfds);
		ok(wait_accepting(TURN, 15000), "%d workers accept again after the kill", TURN);
		nfds = 0;
		is(open_more(lport, 20), 20, "20 new connections echo after the kill");
	} else
		ok(0, "could not list the running workers");
	close_conns(0, nfds);

	kill(master, SIGTERM);
	is(h_wait_exit(master, 15000, NULL), 0, "sluiced stopped");
	h_kill(echod);
}

/* The one worker whose turn it is runs out of descriptors: its turn must
 * pass on, or every client would wait for its shortage to end. */
static void
test_blocked(void)
{
	int lport = h_free_port(), eport = h_free_port();
	pid_t echod = h_echod_start(eport), master, victim;
	struct rlimit rl, low;
	const char *conf;

	/* Workers of our own uid, so that we may lower a limit of theirs. */
	conf = h_conf("blocked.conf", 3, lport, &eport, 1, "accept_workers = 1;\nuser = \"root\";\n");
	master = h_sluiced_start(conf, lport, 3);
	nfds = 0;
	ok(wait_accepting(1, 10000), "1 of 3 workers takes new connections");
	victim = accepting_pid();
	if (victim == 0 || prlimit(victim, RLIMIT_NOFILE, NULL, &rl) != 0)
		bail("no accepting worker to starve (%d: %s)", (int)victim, strerror(errno));
	low = rl;
	low.rlim_cur = (rlim_t)h_fd_count(victim);
	ok(prlimit(victim, RLIMIT_NOFILE, &low, NULL) == 0, "worker %d cut to the %llu descriptors "
	    "it holds", (int)victim, (unsigned long long)low.rlim_cur);
	is(open_more(lport, 10), 10, "10 clients are still served, by another worker");
	ok(h_stat("accept_blocked") >= 1, "the starved worker says it is blocked (%llu)",
	    (unsigned long long)h_stat("accept_blocked"));
	ok(prlimit(victim, RLIMIT_NOFILE, &rl, NULL) == 0, "its limit restored");
	is(open_more(lport, 5), 5, "5 more served");
	close_conns(0, nfds);
	kill(master, SIGTERM);
	is(h_wait_exit(master, 15000, NULL), 0, "sluiced stopped");
	h_kill(echod);
}

/* accept_workers at least workers: everyone accepts, as before. */
static void
test_all(void)
{
	int lport = h_free_port(), eport = h_free_port();
	pid_t echod = h_echod_start(eport), master;
	const char *conf;

	conf = h_conf("all.conf", WORKERS, lport, &eport, 1, "accept_workers = 4;\n");
	master = h_sluiced_start(conf, lport, WORKERS);
	ok(wait_accepting(WORKERS, 10000), "accept_workers = workers: all %d accept", WORKERS);
	nfds = 0;
	is(open_more(lport, 8), 8, "8 connections echo");
	close_conns(0, nfds);
	kill(master, SIGTERM);
	is(h_wait_exit(master, 15000, NULL), 0, "sluiced stopped");
	h_kill(echod);
}

/* Light load: a worker above the mean sits out a turn so that the others
 * take the next clients; when the other worker cannot (stopped), clients
 * must still be served at once by the one that can, long before the master
 * would replace the stopped one (5 s without a heartbeat). */
static void
test_light_stopped(void)
{
	int lport = h_free_port(), eport = h_free_port();
	pid_t echod = h_echod_start(eport), master, pids[2], idle = 0;
	const char *conf;
	int good = 0;

	conf = h_conf("light.conf", 2, lport, &eport, 1, "accept_workers = 2;\n");
	master = h_sluiced_start(conf, lport, 2);
	nfds = 0;
	is(open_more(lport, 1), 1, "light load: one client held");
	if (h_stats_running(pids, 2, 0) != 2)
		bail("2 workers do not run");
	{
		struct stats_seg seg;
		char err[256];

		if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
			bail("stats: %s", err);
		for (uint32_t i = 0; i < seg.nslots; i++)
			if (__atomic_load_n(&seg.slots[i].state, __ATOMIC_ACQUIRE) ==
			        STATS_SLOT_RUNNING &&
			    STATS_GET(&seg.slots[i], active) == 0)
				idle = seg.slots[i].pid;
		stats_detach(&seg);
	}
	ok(idle != 0 && kill(idle, SIGSTOP) == 0, "the worker holding none is stopped");
	for (int i = 0; i < 6 && nfds < MAXC; i++) {
		int fd = h_connect(lport, 2000);

		good += fd != -1 && h_round_trip(fd, 2000) == 0;
		fds[nfds++] = fd;
	}
	is(good, 6, "6 more clients are served within 2 s each by the worker above the mean");
	if (idle != 0)
		kill(idle, SIGCONT);
	ok(h_stats_running(pids, 2, 0) == 2 && (pids[0] == idle || pids[1] == idle),
	    "  the stopped worker was not replaced");
	close_conns(0, nfds);
	kill(master, SIGTERM);
	is(h_wait_exit(master, 15000, NULL), 0, "sluiced stopped");
	h_kill(echod);
}

/* sluiced -t refuses a bad accept_workers with file and line. */
static void
test_refused(void)
{
	int port = h_free_port();
	const char *conf = h_conf("bad.conf", 2, port, &port, 1, "accept_workers = 0;\n");
	char *out = NULL;
	char *argv[] = { (char *)h_sluiced(), "-t", "-c", (char *)conf, NULL };
	int st = h_run(argv, &out, 10000);

	ok(st != 0 && out != NULL && strstr(out, "bad.conf:") != NULL &&
	       strstr(out, "accept_workers: must be") != NULL,
	    "sluiced -t refuses accept_workers = 0 (%s)", out ? out : "no output");
	free(out);
}

int
main(void)
{
	test_refused();
	test_all();
	test_turns();
	test_blocked();
	test_light_stopped();
	done_testing();
	return tap_exit();
}
