/* SPDX-License-Identifier: BSD-2-Clause */
/* i_starve.c — a spent buffer budget never wedges a worker. Sessions that
 * wait for a relay buffer ("starving") pause accepting; however one leaves
 * (its client resets, its idle timeout, a stop), the pause must end with the
 * last of them, its idle deadline must keep running, and a stop must close
 * it. The budget is spent by clients of an accept_proxy listener that never
 * send their header: each holds one buffer for the (long) header timeout.
 * Functional assertions only. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

/* pool.max_memory is at least 64 buffers (conf.c); 512-byte buffers make
 * the least budget: 64 of them. */
#define BUDGET 64

struct rig {
	int pport, fport, eport; /* listeners: PROXY holders, flood, echo */
	int flood_lfd, echo_port;
	pid_t master, worker;
	int holders[BUDGET];
	int nholders;
};

static void
rig_start(struct rig *r, const char *name, const char *idle)
{
	char conf[64];

	r->pport = h_free_port();
	r->fport = h_free_port();
	r->eport = h_free_port();
	r->echo_port = h_free_port();
	h_echod_start(r->echo_port);
	{
		int flood = h_free_port();

		r->flood_lfd = h_listen(flood);
		snprintf(conf, sizeof(conf), "%s.conf", name);
		h_write_file(h_path(conf),
		    "workers = 1;\n"
		    "pid_file = \"%s\";\n"
		    "stats_file = \"%s\";\n"
		    "log = { target = \"stderr\"; level = \"debug\"; };\n"
		    "pool = { buffer_size = \"512\"; max_memory = \"32K\"; splice = false; };\n"
		    "timeouts = { idle = \"%s\"; proxy_header = \"120s\"; };\n"
		    "upstreams = ( { name = \"flood\"; servers = ( \"127.0.0.1:%d\" ); },\n"
		    "              { name = \"echo\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
		    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"echo\";\n"
		    "                accept_proxy = \"v1\"; trusted = ( \"127.0.0.1\" ); },\n"
		    "              { listen = \"127.0.0.1:%d\"; upstream = \"flood\"; },\n"
		    "              { listen = \"127.0.0.1:%d\"; upstream = \"echo\"; } );\n",
		    h_pidfile(), h_statsfile(), idle, flood, r->echo_port, r->pport, r->fport,
		    r->eport);
	}
	r->master = h_sluiced_start(h_path(conf), r->eport, 1);
	if (h_stats_running(&r->worker, 1, 0) != 1)
		bail("%s: no running worker", name);
	r->nholders = 0;
}

/* Clients that each hold one buffer (their PROXY header never comes). */
static int
rig_hold(struct rig *r, int n)
{
	uint64_t base = h_stat("accepted");

	for (int i = 0; i < n; i++) {
		int fd = h_connect(r->pport, 5000);

		if (fd == -1)
			return -1;
		r->holders[r->nholders++] = fd;
	}
	return h_wait_stat("accepted", base + (uint64_t)n, 10000) ? 0 : -1;
}

static void
rig_stop(struct rig *r)
{
	for (int i = 0; i < r->nholders; i++)
		close(r->holders[i]);
	close(r->flood_lfd);
	kill(r->master, SIGTERM);
	h_wait_exit(r->master, 10000, NULL);
}

/* A client that sends one byte and waits: its session reads it (the budget
 * is spent, so it starves), accepting pauses. Returns the fd or -1. */
static int
starving_client(struct rig *r, int port)
{
	uint64_t pauses = h_stat("accept_pauses");
	int fd = h_connect(port, 5000);

	if (fd == -1 || send(fd, "x", 1, MSG_NOSIGNAL) != 1)
		return -1;
	if (!h_wait_stat("accept_pauses", pauses + 1, 10000))
		return -1;
	return fd;
}

/* Is a new client on the echo listener accepted (its accept counted)? */
static int
accepting(struct rig *r, int *fd)
{
	uint64_t before = h_stat("accepted");

	*fd = h_connect(r->eport, 5000);
	return *fd != -1 && h_wait_stat("accepted", before + 1, 10000);
}

static void
reset_close(int fd)
{
	struct linger lg = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* Defect: only waking the last starving session lifted the memory pause. A
 * starving session that leaves by closing instead (its client resets while
 * bytes wait for it) left the worker paused for good. */
static void
reset_case(void)
{
	struct rig r;
	int x, b, fresh;
	char buf[4096];

	rig_start(&r, "reset", "10m");
	ok(rig_hold(&r, BUDGET - 1) == 0, "reset: %d clients hold a buffer each", BUDGET - 1);
	/* X: its server floods it, it never reads, so its session keeps the
	 * last buffer with bytes waiting for it. */
	x = h_connect(r.fport, 5000);
	b = h_accept(r.flood_lfd, 5000);
	ok(x != -1 && b != -1, "reset: a client of the flooding server is connected");
	fcntl(b, F_SETFL, O_NONBLOCK);
	memset(buf, 'f', sizeof(buf));
	{
		uint64_t end = h_now_ms() + 20000;

		while (h_stat("pool_buffers_used") < BUDGET && h_now_ms() < end) {
			struct pollfd p = { .fd = b, .events = POLLOUT };

			while (send(b, buf, sizeof(buf), MSG_NOSIGNAL) > 0)
				;
			poll(&p, 1, 100);
		}
	}
	is(h_stat("pool_buffers_used"), BUDGET, "reset: the buffer budget is spent");
	/* X sends a byte: no buffer to read it into, so it starves. */
	ok(send(x, "x", 1, MSG_NOSIGNAL) == 1 && h_wait_stat("accept_pauses", 1, 10000),
	    "reset: a session starves and accepting pauses");
	/* X's client resets: the send of its pending bytes fails, and the
	 * session closes while starving. */
	reset_close(x);
	ok(h_wait_stat("closed_client_error", 1, 10000), "reset: the starving session closed");
	ok(accepting(&r, &fresh), "reset: the worker accepts again after it left");
	ok(fresh != -1 && h_round_trip(fresh, 10000) == 0,
	    "reset: and serves the new client with the buffer it gave back");
	if (fresh != -1)
		close(fresh);
	close(b);
	rig_stop(&r);
}

/* Defect: a starving session left the idle wheel and had no deadline at all;
 * with nothing else freeing a buffer it stayed forever. */
static void
idle_case(void)
{
	struct rig r;
	int x, fresh;

	rig_start(&r, "idle", "1s");
	ok(rig_hold(&r, BUDGET) == 0, "idle: %d clients hold the whole budget", BUDGET);
	x = starving_client(&r, r.eport);
	ok(x != -1, "idle: a session starves and accepting pauses");
	ok(h_wait_stat("closed_starved", 1, 15000),
	    "idle: the starving session is closed by its idle timeout, counted as starved");
	ok(x != -1 && h_wait_closed(x, 10000), "idle: its client sees the close");
	ok(accepting(&r, &fresh), "idle: accepting resumes once it left");
	if (fresh != -1)
		close(fresh);
	if (x != -1)
		close(x);
	rig_stop(&r);
}

/* Defect: a stop walked the rooms in turn; closing a PROXY holder gave its
 * buffer back and woke the starving session into a room already walked, so
 * it was never closed or counted. */
static void
stop_case(void)
{
	struct rig r;
	int x, status;
	uint64_t end;
	int balanced = 0;

	rig_start(&r, "stop", "10m");
	ok(rig_hold(&r, BUDGET) == 0, "stop: %d clients hold the whole budget", BUDGET);
	x = starving_client(&r, r.eport);
	ok(x != -1, "stop: a session starves");
	/* A fast stop of the worker alone: it closes everything and exits;
	 * the master folds its counters and starts another. */
	kill(r.worker, SIGTERM);
	end = h_now_ms() + 15000;
	while (h_alive(r.worker) && h_now_ms() < end)
		h_nap(20);
	ok(!h_alive(r.worker), "stop: the worker exited");
	/* Every accepted session is closed and counted once the master has
	 * folded the exited worker (accepted = closed + active). */
	while (h_now_ms() < end && !balanced) {
		uint64_t a = h_stat("accepted"), c = h_stat("closed"), act = h_stat("active");

		balanced = a != UINT64_MAX && a == c + act && act == 0;
		if (!balanced)
			h_nap(50);
	}
	ok(balanced, "stop: every session was closed and counted (accepted %llu, closed %llu)",
	    (unsigned long long)h_stat("accepted"), (unsigned long long)h_stat("closed"));
	is(h_stat("closed_shutdown"), BUDGET + 1, "stop: all %d closed as shutdown", BUDGET + 1);
	status = h_wait_closed(x, 10000);
	ok(status, "stop: the starving client sees its connection closed");
	close(x);
	rig_stop(&r);
}

int
main(void)
{
	plan(18);
	reset_case();
	idle_case();
	stop_case();
	return tap_exit();
}
