/* SPDX-License-Identifier: BSD-2-Clause */
/* i_health.c — integration test of active health checks through the real
 * daemon (2 workers and the checker process): a killed server is marked DOWN
 * and skipped by every worker without a connect attempt, and marked UP again
 * once restarted; send/expect checks pass on the right reply and fail on the
 * wrong one; a group with every server down closes clients at once and counts
 * them; a backup takes over while the primary is down and hands back; the
 * checker is respawned when killed and replaced on reload keeping what it
 * knew. Each state change is logged. Servers are identified by their rows in
 * the stats segment (the checks reach the backends too, so their own accept
 * logs cannot tell clients apart). */
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

#define WAIT_MS 15000
#define CHECK "health = { interval = \"200ms\"; timeout = \"200ms\"; rise = 2; fall = 2;"

static int e0, e1, e2, e3;
static int lhc, lok, lbad, lbk;
static pid_t master;

static uint64_t
connects(const char *group, int port)
{
	struct stats_server_counters c;

	if (up_server(group, port, &c, NULL) == -1)
		return UINT64_MAX;
	return c.connects;
}

/* n clients through lport, each echoing a byte. Returns how many were
 * served. */
static int
clients(int lport, int n)
{
	int good = 0;

	for (int i = 0; i < n; i++) {
		int fd = h_connect_from(NULL, lport, 5000);

		if (fd == -1)
			continue;
		good += up_echo(fd, 5000) == 0;
		close(fd);
	}
	return good;
}

static int
log_has(const char *fmt, int port)
{
	char needle[160];

	snprintf(needle, sizeof(needle), fmt, port);
	return h_wait_file_contains(h_path("sluiced.log"), needle, WAIT_MS);
}

/* The checker: the master's child that is not a worker; 0 if none. */
static pid_t
checker_pid(void)
{
	pid_t kids[64], workers[64];
	int nk = h_children(master, kids, 64), nw = h_stats_running(workers, 64, 0);

	for (int i = 0; i < nk && i < 64; i++) {
		int worker = 0;

		for (int k = 0; k < nw; k++)
			worker |= kids[i] == workers[k];
		if (!worker)
			return kids[i];
	}
	return 0;
}

static pid_t
wait_new_checker(pid_t old)
{
	uint64_t deadline = h_now_ms() + WAIT_MS;
	pid_t p = 0;

	while (h_now_ms() < deadline) {
		p = checker_pid();
		if (p != 0 && p != old && h_alive(p))
			return p;
		poll(NULL, 0, 20);
	}
	return 0;
}

static void
kill_and_restart(pid_t *e1pid)
{
	uint64_t f0, c0, c1;

	is(clients(lhc, 6), 6, "hc: clients are served while both servers are up");
	ok(connects("hc", e0) > 0 && connects("hc", e1) > 0, "hc: both servers took clients");

	h_kill(*e1pid);
	ok(up_wait_health("hc", e1, STATS_HEALTH_DOWN, WAIT_MS), "hc: the killed server is DOWN");
	ok(log_has("server hc/127.0.0.1:%d is DOWN: connect: Connection refused (2 failures)", e1),
	    "hc: log says it is DOWN, why, and after how many failures");
	{
		struct stats_health h;
		int r = up_server("hc", e1, NULL, &h);

		ok(r == 0 && h.last_result == STATS_CHECK_REFUSED && h.failures >= 2 &&
		        h.checks_failed >= 2,
		    "hc: its health shows the refused checks (%s, %u in a row)",
		    stats_check_name(h.last_result), h.failures);
	}
	f0 = h_stat("connect_failures");
	c0 = connects("hc", e0);
	c1 = connects("hc", e1);
	is(clients(lhc, 10), 10, "hc: with one server down every client is served");
	is(connects("hc", e0) - c0, 10, "hc: ... all by the live server");
	is(connects("hc", e1) - c1, 0, "hc: no worker tried the server the checker marked DOWN");
	is(h_stat("connect_failures") - f0, 0, "hc: so no connect failed");

	*e1pid = h_echod_start(e1);
	ok(up_wait_health("hc", e1, STATS_HEALTH_UP, WAIT_MS), "hc: restarted, it is UP again");
	ok(log_has("server hc/127.0.0.1:%d is UP", e1), "hc: log says it is UP");
	c1 = connects("hc", e1);
	is(clients(lhc, 10), 10, "hc: clients are served");
	ok(connects("hc", e1) > c1, "hc: the server is used again");
}

static void
send_expect(void)
{
	struct stats_health h;
	uint64_t r0, c0;
	long ms;
	int fd, r;

	ok(up_wait_health("ok", e2, STATS_HEALTH_UP, WAIT_MS),
	    "send/expect: a server that replies with the expected text is UP");
	r = up_server("ok", e2, NULL, &h);
	ok(r == 0 && h.last_result == STATS_CHECK_OK && h.checks > 0,
	    "send/expect: its last check passed (%s)", stats_check_name(h.last_result));
	is(clients(lok, 3), 3, "send/expect: its clients are served");

	ok(up_wait_health("bad", e2, STATS_HEALTH_DOWN, WAIT_MS),
	    "send/expect: the same server checked for another reply is DOWN");
	r = up_server("bad", e2, NULL, &h);
	ok(r == 0 && h.last_result == STATS_CHECK_BAD_REPLY,
	    "send/expect: its last check saw a bad reply (%s)", stats_check_name(h.last_result));
	ok(log_has("server bad/127.0.0.1:%d is DOWN: unexpected reply", e2),
	    "send/expect: log says DOWN: unexpected reply");

	/* Every server of "bad" is down: refused at once, counted. */
	r0 = h_stat("refused_no_server");
	c0 = connects("bad", e2);
	fd = h_connect_from(NULL, lbad, 5000);
	if (fd == -1)
		bail("connect to sluiced: %s", strerror(errno));
	ms = h_ms_until_closed(fd, 10000);
	close(fd);
	ok(ms >= 0 && ms < 5000,
	    "all down: the client is closed at once (%ld ms; connect timeout 30 s)", ms);
	ok(h_wait_stat("refused_no_server", r0 + 1, 5000),
	    "all down: counted as refused_no_server");
	is(connects("bad", e2) - c0, 0, "all down: no connect was attempted");
}

static void
backup(pid_t *e3pid)
{
	uint64_t p0 = connects("bk", e3), b0 = connects("bk", e2);

	is(clients(lbk, 5), 5, "backup: clients are served");
	ok(connects("bk", e3) - p0 == 5 && connects("bk", e2) - b0 == 0,
	    "backup: the primary takes them all while up");
	h_kill(*e3pid);
	ok(up_wait_health("bk", e3, STATS_HEALTH_DOWN, WAIT_MS), "backup: the primary is DOWN");
	p0 = connects("bk", e3);
	b0 = connects("bk", e2);
	is(clients(lbk, 5), 5, "backup: clients are still served");
	ok(connects("bk", e3) - p0 == 0 && connects("bk", e2) - b0 == 5,
	    "backup: ... by the backup only");
	*e3pid = h_echod_start(e3);
	ok(up_wait_health("bk", e3, STATS_HEALTH_UP, WAIT_MS), "backup: the primary is UP again");
	p0 = connects("bk", e3);
	b0 = connects("bk", e2);
	is(clients(lbk, 5), 5, "backup: clients are served");
	ok(connects("bk", e3) - p0 == 5 && connects("bk", e2) - b0 == 0,
	    "backup: the primary has them back");
}

/* Kill the checker: the master replaces it and checks go on. On reload a
 * new checker takes over what the old one knew: a DOWN server is never shown
 * UP in between. */
static void
checker_life(pid_t *e3pid)
{
	pid_t old = checker_pid(), next;
	struct stats_health h;
	char needle[96];
	int seen_up = 0;
	uint64_t until, checks0;

	ok(old != 0, "checker: a process besides the workers (pid %d)", (int)old);
	kill(old, SIGKILL);
	next = wait_new_checker(old);
	ok(next != 0, "checker: killed, it is replaced (pid %d)", (int)next);
	snprintf(needle, sizeof(needle), "health checker (pid %d) killed by signal 9", (int)old);
	ok(h_wait_file_contains(h_path("sluiced.log"), needle, WAIT_MS), "checker: log says \"%s\"",
	    needle);
	h_kill(*e3pid);
	ok(up_wait_health("bk", e3, STATS_HEALTH_DOWN, WAIT_MS),
	    "checker: the new one marks a killed server DOWN");

	/* A checker starting from nothing would show the server UP after its
	 * first failed check (fall is 2): watch until the new one has done two. */
	old = next;
	kill(master, SIGHUP);
	next = wait_new_checker(old);
	ok(next != 0, "reload: a new checker runs (pid %d)", (int)next);
	/* The old one has exited before the new one starts: every check
	 * counted from here is the new checker's. */
	up_server("bk", e3, NULL, &h);
	checks0 = h.checks;
	seen_up = h.state != STATS_HEALTH_DOWN;
	until = h_now_ms() + WAIT_MS;
	while (h_now_ms() < until) {
		if (up_server("bk", e3, NULL, &h) == 0 && h.state != STATS_HEALTH_DOWN)
			seen_up = 1;
		if (h.checks >= checks0 + 2)
			break;
		poll(NULL, 0, 10);
	}
	ok(!seen_up && h.checks >= checks0 + 2,
	    "reload: the server stays DOWN across the change of checker (%llu checks since)",
	    (unsigned long long)(h.checks - checks0));
	ok(!h_alive(old), "reload: the old checker is gone");
	*e3pid = h_echod_start(e3);
	ok(up_wait_health("bk", e3, STATS_HEALTH_UP, WAIT_MS),
	    "reload: and comes UP once it is back");
}

int
main(void)
{
	pid_t e1pid, e3pid;
	const char *conf;
	int ok_all;

	e0 = h_free_port();
	e1 = h_free_port();
	e2 = h_free_port();
	e3 = h_free_port();
	lhc = h_free_port();
	lok = h_free_port();
	lbad = h_free_port();
	lbk = h_free_port();
	h_echod_start(e0);
	e1pid = h_echod_start(e1);
	h_echod_start(e2);
	e3pid = h_echod_start(e3);
	conf = up_conf("health.conf", 2,
	    "timeouts = { connect = \"30s\"; };\n"
	    "upstreams = (\n"
	    "  { name = \"hc\"; servers = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\" );\n"
	    "    " CHECK " }; },\n"
	    "  { name = \"ok\"; servers = ( \"127.0.0.1:%d\" );\n"
	    "    " CHECK " send = \"PING\\r\\n\"; expect = \"PING\\r\"; }; },\n"
	    "  { name = \"bad\"; servers = ( \"127.0.0.1:%d\" );\n"
	    "    " CHECK " send = \"PING\\r\\n\"; expect = \"PONG\"; }; },\n"
	    "  { name = \"bk\"; servers = ( \"127.0.0.1:%d\",\n"
	    "      { address = \"127.0.0.1:%d\"; backup = true; } );\n"
	    "    " CHECK " }; } );\n"
	    "listeners = (\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"hc\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"ok\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"bad\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"bk\"; } );\n",
	    e0, e1, e2, e2, e3, e2, lhc, lok, lbad, lbk);
	master = h_sluiced_start(conf, lhc, 2);

	ok_all = up_wait_health("hc", e0, STATS_HEALTH_UP, WAIT_MS) &
	         up_wait_health("hc", e1, STATS_HEALTH_UP, WAIT_MS) &
	         up_wait_health("bk", e3, STATS_HEALTH_UP, WAIT_MS) &
	         up_wait_health("bk", e2, STATS_HEALTH_UP, WAIT_MS);
	ok(ok_all, "the checker publishes every server UP");

	kill_and_restart(&e1pid);
	send_expect();
	backup(&e3pid);
	checker_life(&e3pid);
	up_stop(master);
	done_testing();
	return tap_exit();
}
