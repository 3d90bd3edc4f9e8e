/* SPDX-License-Identifier: BSD-2-Clause */
/* i_signals.c — integration test of a signal storm: 99 mixed SIGHUPs and
 * SIGUSR1s, then SIGQUIT. The master stays consistent (right worker count,
 * one generation per logged reload, no worker killed by an early signal, no
 * descriptor leaked) and the QUIT stops everything cleanly. Runs sluiced and
 * echod as children of this test on loopback ports; signals only them. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"

#define WORKERS 2
#define STORM 99

/* Slots in use (any state but free). */
static int
slots_used(void)
{
	struct stats_seg seg;
	char err[256];
	int n = 0;

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return -1;
	for (uint32_t i = 0; i < seg.nslots; i++)
		n += __atomic_load_n(&seg.slots[i].state, __ATOMIC_ACQUIRE) != STATS_SLOT_FREE;
	stats_detach(&seg);
	return n;
}

static int
echo_ok(int port, int n)
{
	size_t sizes[16];

	for (int i = 0; i < n && i < 16; i++)
		sizes[i] = 700 + 901 * (size_t)i;
	return h_echo_many(port, n, sizes, 0, 20000) == n;
}

int
main(void)
{
	const char *log = h_path("sluiced.log");
	pid_t master, pids[64];
	uint64_t gen, end, seed = 0x5eed;
	int ep, lp, fds0, nhup = 0, nusr1 = 0, n, settled = 0, status, reloads;

	ep = h_free_port();
	h_echod_start(ep);
	lp = h_free_port();
	master = h_sluiced_start(h_conf("sluiced.conf", WORKERS, lp, &ep, 1,
	    "timeouts = { drain = \"10s\"; };"), lp, WORKERS);
	fds0 = h_fd_count(master);
	ok(echo_ok(lp, 4), "relaying works before the storm");

	for (int i = 0; i < STORM; i++) {
		int sig;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		sig = (seed >> 33) % 2 ? SIGHUP : SIGUSR1;
		if (kill(master, sig) == -1)
			break;
		if (sig == SIGHUP)
			nhup++;
		else
			nusr1++;
		/* Irregular gaps: some signals coalesce, and a HUP followed at
		 * once by a USR1 makes the master fork workers and signal
		 * them in one go, before they can have set up anything. */
		if ((seed >> 20) % 3 != 0)
			h_nap((int)((seed >> 40) % 25));
		if (i % 25 == 24)
			echo_ok(lp, 2);
	}
	is(nhup + nusr1, STORM, "%d signals sent: %d HUP, %d USR1", STORM, nhup, nusr1);
	ok(h_alive(master), "the master survived the storm");

	/* Settled: the generation no longer moves, and only its workers are
	 * left (old ones drained, nothing pending). */
	end = h_now_ms() + 30000;
	gen = 0;
	while (h_now_ms() < end) {
		uint64_t g = h_stats_generation();

		if (g == gen && h_stats_running(NULL, 0, (uint32_t)g) == WORKERS &&
		    slots_used() == WORKERS && h_children(master, NULL, 0) == WORKERS) {
			settled = 1;
			break;
		}
		gen = g;
		h_nap(700);
	}
	ok(settled, "the master settled on generation %llu", (unsigned long long)gen);
	n = h_stats_running(pids, 64, (uint32_t)gen);
	is(n, WORKERS, "%d workers run, all of generation %llu", WORKERS, (unsigned long long)gen);
	is(slots_used(), WORKERS, "no other worker holds a slot");
	is(h_children(master, NULL, 0), WORKERS, "the master has exactly %d children", WORKERS);
	reloads = h_count_lines(log, "master: notice: reloaded ");
	is((long long)gen, 1 + reloads, "the header's generation matches the %d reloads logged",
	    reloads);
	ok(reloads >= 1 && reloads <= nhup, "some reloads happened, no more than SIGHUPs (%d)",
	    nhup);
	ok(h_count_lines(log, "master: info: log file reopened") >= 1, "the log was reopened");
	is(h_count_lines(log, "killed by signal"), 0, "no worker was killed by a signal");
	is(h_count_lines(log, "exited with status"), 0, "no worker failed");
	is(h_count_lines(log, "keeps failing"), 0, "no crash-loop back-off");
	is(h_fd_count(master), fds0, "the master holds as many descriptors as before (%d)", fds0);
	ok(echo_ok(lp, 8), "relaying works after the storm");

	/* The hundredth signal: QUIT. */
	ok(kill(master, SIGQUIT) == 0, "SIGQUIT sent");
	ok(h_wait_exit(master, 30000, &status) == 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "master exited 0");
	end = h_now_ms() + 5000;
	while ((h_alive(pids[0]) || h_alive(pids[1])) && h_now_ms() < end)
		h_nap(10);
	ok(!h_alive(pids[0]) && !h_alive(pids[1]), "its workers are gone");
	ok(access(h_pidfile(), F_OK) == -1, "the pid file is removed");
	is(h_port_refuses(lp), 1, "the port refuses");
	done_testing();
	return tap_exit();
}
