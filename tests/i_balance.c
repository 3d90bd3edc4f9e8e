/* SPDX-License-Identifier: BSD-2-Clause */
/* i_balance.c — integration test of the balancing methods through the real
 * daemon: smooth weighted round robin (exact shares with one worker), backup
 * servers used only once the primary is down, least connections over all
 * workers (2), per-server max_connections over all workers and a group whose
 * only server is full, and source hashing that keeps each client address on
 * its server when another server is removed by reload or dies. Echo backends
 * log each accept; clients go one at a time, so the log that moved tells
 * which server took a client. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"
#include "uphelp.h"

#define NSRC 16

/* Part one, one worker: weights and backup. */
static void
one_worker(void)
{
	int e0 = h_free_port(), e1 = h_free_port(), e3 = h_free_port();
	int lw = h_free_port(), lb = h_free_port();
	int ports[3] = {e0, e1, e3}, count[3] = {0, 0, 0}, bad = 0;
	pid_t pid, e3pid;
	uint64_t f0;
	const char *conf;
	char needle[128];

	h_echod_start(e0);
	h_echod_start(e1);
	e3pid = h_echod_start(e3);
	conf = up_conf("one.conf", 1,
	    "upstreams = (\n"
	    "  { name = \"wrr\"; balance = \"roundrobin\";\n"
	    "    servers = ( { address = \"127.0.0.1:%d\"; weight = 1; },\n"
	    "                { address = \"127.0.0.1:%d\"; weight = 3; } ); },\n"
	    "  { name = \"bk\"; max_fails = 1; fail_timeout = \"60s\";\n"
	    "    servers = ( \"127.0.0.1:%d\",\n"
	    "                { address = \"127.0.0.1:%d\"; backup = true; } ); } );\n"
	    "listeners = (\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"wrr\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"bk\"; } );\n",
	    e0, e1, e3, e1, lw, lb);
	pid = h_sluiced_start(conf, lw, 1);

	for (int i = 0; i < 40; i++) {
		int s = up_client(lw, NULL, ports, 2, NULL);

		if (s < 0)
			bad++;
		else
			count[s]++;
	}
	is(bad, 0, "wrr: every client was served");
	is(count[0], 10, "wrr: weight 1 of 4 gets exactly 10 of 40 clients");
	is(count[1], 30, "wrr: weight 3 of 4 gets exactly 30 of 40 clients");

	memset(count, 0, sizeof(count));
	for (int i = 0; i < 8; i++) {
		int s = up_client(lb, NULL, ports, 3, NULL);

		if (s >= 0)
			count[s]++;
	}
	ok(count[2] == 8 && count[1] == 0,
	    "backup: while the primary is up it takes every client (%d), the backup none (%d)",
	    count[2], count[1]);

	h_kill(e3pid);
	f0 = h_stat("connect_failures");
	memset(count, 0, sizeof(count));
	for (int i = 0; i < 8; i++) {
		int s = up_client(lb, NULL, ports, 3, NULL);

		if (s >= 0)
			count[s]++;
	}
	is(count[1], 8, "backup: with the primary dead every client goes to the backup");
	is(h_stat("connect_failures") - f0, 1,
	    "backup: one failed try marked the primary down; it is not tried again");
	snprintf(needle, sizeof(needle), "server bk/127.0.0.1:%d is DOWN", e3);
	ok(h_count_lines(h_path("sluiced.log"), needle) == 1, "backup: log says \"%s\"", needle);
	up_stop(pid);
}

#define LC_MAX 40

/* The slot whose row moved up by exactly one between two readings, or -1. */
static int
moved_slot(const uint64_t *before, const uint64_t *after, int n)
{
	int slot = -1;

	for (int i = 0; i < n; i++)
		if (after[i] == before[i] + 1)
			slot = slot == -1 ? i : -2;
	return slot < 0 ? -1 : slot;
}

/* Held least-connections clients: where each went and which worker (stats
 * slot) relays it. */
static int lc_fd[LC_MAX], lc_where[LC_MAX], lc_slot[LC_MAX], lc_n;
static int lc_good, lc_bad, lc_telling;

/* One more held client on lport. It must go to a server with the fewest
 * active connections over all workers; a step where the worker that took it
 * would have chosen the other server by its own connections alone "tells"
 * the two ways of counting apart. */
static void
lc_client(int lport, const int *ports)
{
	static uint64_t a0[STATS_SLOTS], b0[STATS_SLOTS], a1[STATS_SLOTS], b1[STATS_SLOTS];
	struct stats_server_counters ca, cb;
	uint64_t la, lb;
	int s, slot, n, fd = -1;

	if (lc_n == LC_MAX)
		bail("lc: too many clients");
	if (up_server("lc", ports[0], &ca, NULL) == -1 ||
	    up_server("lc", ports[1], &cb, NULL) == -1)
		bail("lc: no server rows in the stats segment");
	la = ca.active;
	lb = cb.active;
	n = up_server_active_by_slot("lc", ports[0], a0, STATS_SLOTS);
	up_server_active_by_slot("lc", ports[1], b0, STATS_SLOTS);
	s = up_client(lport, NULL, ports, 2, &fd);
	lc_fd[lc_n] = fd;
	lc_where[lc_n] = s;
	lc_slot[lc_n] = -1;
	lc_n++;
	if (s < 0) {
		lc_bad++;
		return;
	}
	if ((s == 0 && la <= lb) || (s == 1 && lb <= la)) {
		lc_good++;
	} else {
		lc_bad++;
		diag("lc: a client went to server %d with loads %llu/%llu", s,
		    (unsigned long long)la, (unsigned long long)lb);
	}
	if (!up_wait_server_active("lc", ports[s], (s == 0 ? la : lb) + 1, 5000))
		return;
	up_server_active_by_slot("lc", ports[0], a1, STATS_SLOTS);
	up_server_active_by_slot("lc", ports[1], b1, STATS_SLOTS);
	slot = moved_slot(s == 0 ? a0 : b0, s == 0 ? a1 : b1, n);
	lc_slot[lc_n - 1] = slot;
	if (slot >= 0 && a0[slot] != b0[slot] && (a0[slot] < b0[slot]) != (s == 0))
		lc_telling++;
	if (getenv("LC_DEBUG"))
		diag("lc: global %llu/%llu -> %d by slot %d (own %llu/%llu)",
		    (unsigned long long)la, (unsigned long long)lb, s, slot,
		    slot >= 0 ? (unsigned long long)a0[slot] : 0ULL,
		    slot >= 0 ? (unsigned long long)b0[slot] : 0ULL);
}

static void
lc_close(int i)
{
	if (lc_fd[i] != -1)
		close(lc_fd[i]);
	lc_fd[i] = -1;
	lc_where[i] = -1;
}

/* Active clients of server s among those held. */
static uint64_t
lc_held(int s)
{
	uint64_t n = 0;

	for (int i = 0; i < lc_n; i++)
		n += lc_fd[i] != -1 && lc_where[i] == s;
	return n;
}

/*
 * Least connections with 2 workers: every new client must go to a server
 * with the fewest active connections over all workers. After the first
 * clients, the test closes some so that one worker relays only server 0's
 * clients and the other only server 1's: each worker alone would then send
 * the next client to the server it does not use, whatever the totals say.
 */
static void
leastconn(int lport, const int *ports)
{
	int x = -1, y = -1, n;

	for (int i = 0; i < 10; i++)
		lc_client(lport, ports);
	for (int i = 0; i < lc_n && y == -1; i++) {
		if (lc_slot[i] < 0)
			continue;
		if (x == -1)
			x = lc_slot[i];
		else if (lc_slot[i] != x)
			y = lc_slot[i];
	}
	if (y != -1) {
		for (int i = 0; i < lc_n; i++)
			if ((lc_slot[i] == x && lc_where[i] == 1) ||
			    (lc_slot[i] == y && lc_where[i] == 0))
				lc_close(i);
		ok(up_wait_server_active("lc", ports[0], lc_held(0), 10000) &&
		        up_wait_server_active("lc", ports[1], lc_held(1), 10000),
		    "leastconn: one worker now relays only server 0's clients, the other only "
		    "server 1's (%llu/%llu)",
		    (unsigned long long)lc_held(0), (unsigned long long)lc_held(1));
	} else {
		skip(1, "every client was taken by one worker");
	}
	for (int i = 0; i < 12; i++)
		lc_client(lport, ports);
	is(lc_bad, 0, "leastconn: each of %d held clients went to a least loaded server", lc_n);
	diag("leastconn: %d steps were ones a per-worker count would have got wrong", lc_telling);

	/* Free server 0 entirely: the next clients must all go there until it
	 * catches up. */
	for (int i = 0; i < lc_n; i++)
		if (lc_where[i] == 0)
			lc_close(i);
	ok(up_wait_server_active("lc", ports[0], 0, 10000), "leastconn: server 0's clients closed");
	n = (int)lc_held(1);
	{
		int to0 = 0;

		for (int i = 0; i < n && lc_n < LC_MAX; i++) {
			lc_client(lport, ports);
			to0 += lc_where[lc_n - 1] == 0;
		}
		is(to0, n, "leastconn: the next %d clients all went to the emptied server", n);
	}
	for (int i = 0; i < lc_n; i++)
		lc_close(i);
	ok(up_wait_server_active("lc", ports[0], 0, 10000) &&
	        up_wait_server_active("lc", ports[1], 0, 10000),
	    "leastconn: every client closed");
}

/* max_connections counts every worker's connections. */
static void
max_connections(int lmc, int lfull, const int *ports)
{
	int fds[8], count[3] = {0, 0, 0}, held, fd;
	uint64_t r0;
	long ms;

	for (int i = 0; i < 8; i++) {
		int s = up_client(lmc, NULL, ports, 2, &fds[i]);

		if (s >= 0)
			count[s]++;
		else
			fds[i] = -1;
	}
	is(count[0], 2, "max_connections: the server limited to 2 holds exactly 2 of 8 clients");
	is(count[1], 6, "max_connections: the other server takes the remaining 6");
	for (int i = 0; i < 8; i++)
		if (fds[i] != -1)
			close(fds[i]);

	/* A group whose only server is full refuses at once. */
	held = -1;
	ok(up_client(lfull, NULL, ports + 2, 1, &held) == 0, "full: the first client is served");
	r0 = h_stat("refused_no_server");
	fd = h_connect_from(NULL, lfull, 5000);
	if (fd == -1)
		bail("connect to sluiced: %s", strerror(errno));
	ms = h_ms_until_closed(fd, 5000);
	close(fd);
	ok(ms >= 0, "full: a second client is closed at once (%ld ms)", ms);
	ok(h_wait_stat("refused_no_server", r0 + 1, 5000), "full: it counts as refused_no_server");
	close(held);
	ok(up_wait_server_active("full", ports[2], 0, 10000), "full: the first client closed");
	ok(up_client(lfull, NULL, ports + 2, 1, NULL) == 0,
	    "full: with room again a new client is served");
}

/* Source hashing: the same address always lands on the same server; a
 * server removed by reload, or dead, moves only its own clients. */
static void
source(pid_t master, int lsrc, const int *ports, pid_t e1pid)
{
	int first[NSRC], again = 0, used[3] = {0, 0, 0}, nused = 0, kept, moved, bad;
	char src[NSRC][32];
	pid_t pids[8];
	const char *conf;

	for (int i = 0; i < NSRC; i++) {
		snprintf(src[i], sizeof(src[i]), "127.0.0.%d", 20 + i);
		first[i] = up_client(lsrc, src[i], ports, 3, NULL);
		if (first[i] >= 0 && !used[first[i]]++)
			nused++;
	}
	for (int i = 0; i < NSRC; i++)
		again += up_client(lsrc, src[i], ports, 3, NULL) == first[i];
	is(again, NSRC, "source: each of %d client addresses returns to its server", NSRC);
	ok(nused >= 2, "source: the addresses spread over the servers (%d/%d/%d)", used[0], used[1],
	    used[2]);

	/* Reload (the same file, rewritten) without the third server. */
	conf = up_conf("two.conf", 2,
	    "upstreams = ( { name = \"src\"; balance = \"source\"; max_fails = 1;\n"
	    "    fail_timeout = \"60s\";\n"
	    "    servers = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"src\"; } );\n",
	    ports[0], ports[1], lsrc);
	(void)conf;
	kill(master, SIGHUP);
	{
		uint64_t deadline = h_now_ms() + 15000;

		while (h_now_ms() < deadline &&
		       (h_stats_generation() < 2 || h_stats_running(pids, 8, 2) < 2 ||
		           h_stats_running(pids, 8, 1) > 0))
			poll(NULL, 0, 20);
		ok(h_stats_generation() == 2 && h_stats_running(pids, 8, 1) == 0,
		    "source: reloaded without the third server; the old workers stopped "
		    "accepting");
	}
	kept = moved = bad = 0;
	for (int i = 0; i < NSRC; i++) {
		int s = up_client(lsrc, src[i], ports, 3, NULL);

		if (first[i] == 2 && (s == 0 || s == 1))
			moved++;
		else if (first[i] != 2 && s == first[i])
			kept++;
		else
			bad++;
	}
	is(bad, 0, "source: after the reload no client changed server needlessly");
	is(kept, NSRC - used[2], "source: %d clients kept their server", kept);
	diag("source: %d clients of the removed server moved", moved);

	/* Server 1 dies: its clients move to server 0, the others stay. */
	h_kill(e1pid);
	kept = moved = bad = 0;
	for (int i = 0; i < NSRC; i++) {
		int s = up_client(lsrc, src[i], ports, 3, NULL);

		if (first[i] == 0 && s == 0)
			kept++;
		else if (first[i] != 0 && s == 0)
			moved++;
		else
			bad++;
	}
	is(bad, 0, "source: with server 1 dead every client is served by server 0");
	is(kept, used[0], "source: server 0's own %d clients never left it", used[0]);
}

static void
two_workers(void)
{
	int e0 = h_free_port(), e1 = h_free_port(), e2 = h_free_port();
	int llc = h_free_port(), lmc = h_free_port(), lfull = h_free_port(), lsrc = h_free_port();
	int ports[3] = {e0, e1, e2};
	pid_t pid, e1pid;
	const char *conf;

	h_echod_start(e0);
	e1pid = h_echod_start(e1);
	h_echod_start(e2);
	conf = up_conf("two.conf", 2,
	    "timeouts = { connect = \"30s\"; };\n"
	    "upstreams = (\n"
	    "  { name = \"lc\"; balance = \"leastconn\";\n"
	    "    servers = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\" ); },\n"
	    "  { name = \"mc\";\n"
	    "    servers = ( { address = \"127.0.0.1:%d\"; max_connections = 2; },\n"
	    "                \"127.0.0.1:%d\" ); },\n"
	    "  { name = \"full\";\n"
	    "    servers = ( { address = \"127.0.0.1:%d\"; max_connections = 1; } ); },\n"
	    "  { name = \"src\"; balance = \"source\"; max_fails = 1; fail_timeout = \"60s\";\n"
	    "    servers = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\", \"127.0.0.1:%d\" ); } );\n"
	    "listeners = (\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"lc\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"mc\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"full\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"src\"; } );\n",
	    e0, e1, e0, e1, e2, e0, e1, e2, llc, lmc, lfull, lsrc);
	pid = h_sluiced_start(conf, llc, 2);
	leastconn(llc, ports);
	max_connections(lmc, lfull, ports);
	source(pid, lsrc, ports, e1pid);
	up_stop(pid);
}

int
main(void)
{
	one_worker();
	two_workers();
	done_testing();
	return tap_exit();
}
