/* SPDX-License-Identifier: BSD-2-Clause */
/* i_stop.c — integration test of stopping sluiced: SIGTERM closes everything
 * at once and cleans up, SIGQUIT refuses new clients but lets transfers
 * finish, and timeouts.drain bounds how long a graceful stop may take.
 * Runs sluiced and echod as children of this test on loopback ports; it never
 * signals a process it did not start. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"

#define NHELD 4   /* idle clients held open across SIGTERM */
#define NQ 4      /* transfers in flight across SIGQUIT */
#define SIZE_Q (4u << 20)

/* Read until EOF or reset within timeout_ms, discarding data. Returns 0 on
 * EOF/reset, -1 on timeout. */
static int
wait_eof(int fd, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	char buf[512];

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = h_now_ms();
		int r;

		if (now >= end)
			return -1;
		r = poll(&pfd, 1, (int)(end - now));
		if (r == 1) {
			ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

			if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
				return 0;
		}
	}
}

/* Open client connections by the stats, 0 when unreadable. */
static uint64_t
active_now(void)
{
	uint64_t v = h_stat("active");

	return v == UINT64_MAX ? 0 : v;
}

static int
gone(const char *path)
{
	return access(path, F_OK) == -1 && errno == ENOENT;
}

/* Poll until none of the pids is alive. */
static int
wait_all_gone(const pid_t *pids, int n, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		int alive = 0;

		for (int i = 0; i < n; i++)
			alive += h_alive(pids[i]);
		if (alive == 0)
			return 1;
		if (h_now_ms() >= end)
			return 0;
		h_nap(20);
	}
}

static int
exited_zero(int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 1;
	if (WIFEXITED(status))
		diag("exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		diag("killed by signal %d", WTERMSIG(status));
	return 0;
}

/* SIGTERM with clients connected: everything closes and is cleaned up. */
static void
test_term(int echo_port)
{
	char *pidfile = strdup(h_pidfile()), *statsfile = strdup(h_statsfile());
	int lp = h_free_port(), fds[NHELD], status = 0, r, eofs = 0, trips = 0;
	pid_t master, workers[64];
	int nworkers;
	uint64_t t0;

	master = h_sluiced_start(h_conf("term.conf", 2, lp, &echo_port, 1, NULL), lp, 2);
	nworkers = h_stats_running(workers, 64, 0);
	is(nworkers, 2, "SIGTERM: two workers run");
	for (int i = 0; i < NHELD; i++) {
		fds[i] = h_connect(lp, 5000);
		trips += fds[i] != -1 && h_round_trip(fds[i], 5000) == 0;
	}
	is(trips, NHELD, "SIGTERM: %d clients made a round trip and stay connected", NHELD);
	ok(!gone(pidfile) && !gone(statsfile), "SIGTERM: pid file and stats file exist");

	ok(kill(master, SIGTERM) == 0, "SIGTERM sent");
	t0 = h_now_ms();
	r = h_wait_exit(master, 10000, &status);
	ok(r == 0, "SIGTERM: master exited within 10 s (%llu ms)",
	    (unsigned long long)(h_now_ms() - t0));
	ok(r == 0 && exited_zero(status), "SIGTERM: master exit status 0");
	if (r == -1)
		h_kill(master);
	ok(wait_all_gone(workers, nworkers, 5000), "SIGTERM: every worker is gone");
	ok(gone(pidfile), "SIGTERM: pid file removed");
	ok(gone(statsfile), "SIGTERM: stats file removed");
	for (int i = 0; i < NHELD; i++) {
		if (fds[i] == -1)
			continue;
		eofs += wait_eof(fds[i], 5000) == 0;
		close(fds[i]);
	}
	is(eofs, NHELD, "SIGTERM: every client saw EOF or reset");
	free(pidfile);
	free(statsfile);
}

/* SIGQUIT with transfers in flight: refuse new clients, finish the rest. */
static void
test_quit(int echo_port)
{
	int lp = h_free_port(), status = 0, r, refused = 0, checked_alive = 0;
	uint64_t total = (uint64_t)NQ * SIZE_Q, end;
	size_t sizes[NQ];
	struct h_xfer *x;
	pid_t master;

	master = h_sluiced_start(h_conf("quit.conf", 2, lp, &echo_port, 1, NULL), lp, 2);
	for (int i = 0; i < NQ; i++)
		sizes[i] = SIZE_Q;
	x = h_xfer_start(lp, NQ, sizes, 4096);
	end = h_now_ms() + 20000;
	while ((h_xfer_sent(x) < total / 16 || active_now() < NQ) && h_xfer_sent(x) < total &&
	    h_now_ms() < end)
		h_xfer_run(x, 10);
	ok(h_xfer_sent(x) > 0 && h_xfer_sent(x) < total,
	    "SIGQUIT: transfers in flight (%llu of %llu bytes sent)",
	    (unsigned long long)h_xfer_sent(x), (unsigned long long)total);

	ok(kill(master, SIGQUIT) == 0, "SIGQUIT sent");
	/* The transfers keep moving while we wait for the listener to close. */
	end = h_now_ms() + 10000;
	while (h_now_ms() < end) {
		h_xfer_run(x, 10);
		r = h_port_refuses(lp);
		if (r == 1) {
			refused = 1;
			break;
		}
	}
	ok(refused, "SIGQUIT: new connections are refused");
	/* A client still sending has its connection open: the daemon may not
	 * be gone yet. */
	if (h_xfer_sent(x) < total) {
		checked_alive = 1;
		ok(h_alive(master), "SIGQUIT: master still runs while transfers are in flight");
	}
	if (!checked_alive)
		skip(1, "transfers finished before the listener closed");
	is(h_xfer_finish(x, 30000), NQ, "SIGQUIT: every in-flight transfer finished good");
	r = h_wait_exit(master, 10000, &status);
	ok(r == 0 && exited_zero(status), "SIGQUIT: master exited 0 after the transfers");
	if (r == -1)
		h_kill(master);
	ok(gone(h_pidfile()), "SIGQUIT: pid file removed");
}

/* SIGQUIT with an idle client held open: timeouts.drain ends the wait. */
static void
test_drain_bound(int echo_port)
{
	int lp = h_free_port(), fd, status = 0, r, eof;
	uint64_t t0, t_eof;
	pid_t master;

	master = h_sluiced_start(h_conf("drain.conf", 2, lp, &echo_port, 1,
				     "timeouts = { drain = \"1s\"; idle = \"10m\"; };"),
	    lp, 2);
	fd = h_connect(lp, 5000);
	ok(fd != -1 && h_round_trip(fd, 5000) == 0, "drain: a client made a round trip and went silent");
	ok(kill(master, SIGQUIT) == 0, "drain: SIGQUIT sent");
	t0 = h_now_ms();
	eof = fd != -1 && wait_eof(fd, 10000) == 0;
	t_eof = h_now_ms() - t0;
	ok(eof, "drain: the held client saw EOF (%llu ms after SIGQUIT)",
	    (unsigned long long)t_eof);
	/* Graceful means the client is not cut before the drain time. */
	ok(eof && t_eof >= 700, "drain: not before the 1 s drain timeout");
	r = h_wait_exit(master, (int)(t_eof < 10000 ? 10000 - t_eof : 0) + 100, &status);
	ok(r == 0, "drain: master exited within 10 s of SIGQUIT (%llu ms)",
	    (unsigned long long)(h_now_ms() - t0));
	ok(r == 0 && exited_zero(status), "drain: master exit status 0");
	if (r == -1)
		h_kill(master);
	ok(gone(h_pidfile()), "drain: pid file removed");
	if (fd != -1)
		close(fd);
}

int
main(void)
{
	int echo_port = h_free_port();

	h_echod_start(echo_port);
	test_term(echo_port);
	test_quit(echo_port);
	test_drain_bound(echo_port);
	done_testing();
	return tap_exit();
}
