/* SPDX-License-Identifier: BSD-2-Clause */
/* i_stuck.c — integration test of the heartbeat watch: a worker that stops
 * beating (here: stopped with SIGSTOP, as a worker stuck in a loop would be)
 * is logged, killed and replaced, while the other worker is left alone and
 * new connections keep working. Runs sluiced and echod as children of this
 * test on loopback ports; it stops and kills only workers of that sluiced. */
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

static int
has_pid(const pid_t *pids, int n, pid_t pid)
{
	for (int i = 0; i < n; i++)
		if (pids[i] == pid)
			return 1;
	return 0;
}

static int
echo_ok(int port, int n)
{
	size_t sizes[16];

	for (int i = 0; i < n && i < 16; i++)
		sizes[i] = 3000 + 777 * (size_t)i;
	return h_echo_many(port, n, sizes, 0, 20000) == n;
}

int
main(void)
{
	pid_t master, pids[64], stuck, other;
	char line[128];
	uint64_t t0, end;
	int ep, lp, n = 0, r, status;

	ep = h_free_port();
	h_echod_start(ep);
	lp = h_free_port();
	master = h_sluiced_start(h_conf("sluiced.conf", WORKERS, lp, &ep, 1, NULL), lp, WORKERS);
	is(h_stats_running(pids, 64, 0), WORKERS, "%d workers run", WORKERS);
	stuck = pids[0];
	other = pids[1];
	ok(echo_ok(lp, 4), "relaying works");

	/* A worker that beats is left alone, however long it runs. */
	h_nap(1500);
	ok(h_alive(stuck) && h_alive(other), "healthy workers are not touched");

	t0 = h_now_ms();
	ok(kill(stuck, SIGSTOP) == 0, "SIGSTOP worker pid %d", (int)stuck);
	snprintf(line, sizeof(line), "(pid %d, generation 1) is stuck: no heartbeat", (int)stuck);
	r = h_wait_file_contains(h_path("sluiced.log"), line, 30000);
	ok(r, "log: %s (after %llu ms)", line, (unsigned long long)(h_now_ms() - t0));
	end = h_now_ms() + 10000;
	while (h_alive(stuck) && h_now_ms() < end)
		h_nap(20);
	ok(!h_alive(stuck), "the stuck worker was killed");
	snprintf(line, sizeof(line), "(pid %d) killed by signal 9", (int)stuck);
	ok(h_wait_file_contains(h_path("sluiced.log"), line, 5000), "log: %s", line);
	end = h_now_ms() + 10000;
	for (;;) {
		n = h_stats_running(pids, 64, 0);
		if ((n == WORKERS && !has_pid(pids, n, stuck)) || h_now_ms() >= end)
			break;
		h_nap(20);
	}
	ok(n == WORKERS && !has_pid(pids, n, stuck), "a replacement runs: %d workers", n);
	ok(has_pid(pids, n, other) && h_alive(other), "the other worker (pid %d) kept running",
	    (int)other);
	ok(echo_ok(lp, 8), "new connections work");
	ok(h_alive(master), "the master runs on");

	ok(kill(master, SIGTERM) == 0, "SIGTERM sent");
	ok(h_wait_exit(master, 15000, &status) == 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "master exited 0");
	done_testing();
	return tap_exit();
}
