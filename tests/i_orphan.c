/* SPDX-License-Identifier: BSD-2-Clause */
/* i_orphan.c — integration test of the master's death: SIGKILL the master
 * and its workers stop accepting at once (the port refuses), finish the
 * transfers they hold, and exit; no orphan keeps the port, and a new sluiced
 * starts on the same pid file and port. Runs sluiced and echod as children of
 * this test on loopback ports; it kills only the processes it started. */
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
#define NX 4
#define SIZE_X (2u << 20)

int
main(void)
{
	size_t sizes[NX];
	pid_t master, pids[64];
	struct h_xfer *x;
	const char *conf;
	uint64_t end, active = 0;
	int ep, lp, n, r, left, status;

	ep = h_free_port();
	h_echod_start(ep);
	lp = h_free_port();
	conf = h_conf("sluiced.conf", WORKERS, lp, &ep, 1,
	    "timeouts = { idle = \"60s\"; drain = \"30s\"; };");
	master = h_sluiced_start(conf, lp, WORKERS);
	n = h_stats_running(pids, 64, 0);
	is(n, WORKERS, "%d workers run", WORKERS);

	for (int i = 0; i < NX; i++)
		sizes[i] = SIZE_X + 777 * (size_t)i;
	/* Paced slowly enough to be in flight for seconds. */
	x = h_xfer_start(lp, NX, sizes, 1024);
	end = h_now_ms() + 20000;
	while (((active = h_stat("active")) < NX || active == UINT64_MAX) && h_now_ms() < end)
		h_xfer_run(x, 10);
	is(active, NX, "%d transfers in flight", NX);

	h_kill(master);
	ok(!h_alive(master), "the master was SIGKILLed");
	/* The workers hold the only copies of the listening socket: once they
	 * drain, nobody accepts. The transfers keep moving meanwhile. */
	end = h_now_ms() + 10000;
	while ((r = h_port_refuses(lp)) != 1 && h_now_ms() < end)
		h_xfer_run(x, 20);
	ok(r == 1, "the port refuses new connections");
	left = h_xfer_run(x, 1);
	ok(left > 0, "transfers were still in flight then (%d of %d)", left, NX);
	ok(h_alive(pids[0]) || h_alive(pids[1]), "the orphaned workers finish their work");
	is(h_xfer_finish(x, 60000), NX, "every transfer in flight completed intact");
	end = h_now_ms() + 10000;
	while ((h_alive(pids[0]) || h_alive(pids[1])) && h_now_ms() < end)
		h_nap(20);
	ok(!h_alive(pids[0]) && !h_alive(pids[1]), "both workers exited once drained");
	is(h_port_refuses(lp), 1, "nothing listens on the port");

	/* The pid file is stale but unlocked, the port free: a new master
	 * starts in the same place. */
	master = h_sluiced_start(conf, lp, WORKERS);
	ok(h_alive(master), "a new sluiced starts on the same pid file and port");
	ok(kill(master, SIGTERM) == 0, "SIGTERM sent");
	ok(h_wait_exit(master, 15000, &status) == 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "master exited 0");
	done_testing();
	return tap_exit();
}
