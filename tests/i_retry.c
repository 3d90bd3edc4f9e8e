/* SPDX-License-Identifier: BSD-2-Clause */
/* i_retry.c — integration test: a failed connect is retried on the next
 * server of the group up to `retries` times (2, 1 and 0), each failure
 * counted; the connect timeout bounds the whole chain of tries, not each;
 * passive marking after max_fails failures in a row skips a dead server; and
 * a group whose every server is marked down closes clients at once and counts
 * them as refused_no_server. One worker, so round robin order is exact. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"
#include "uphelp.h"

/* Clients served out of n on lport (connect, echo a byte, close). */
static int
served(int lport, const int *echo, int n)
{
	int good = 0;

	for (int i = 0; i < n; i++)
		good += up_client(lport, NULL, echo, 1, NULL) == 0;
	return good;
}

/* A client on lport that must be closed without being served: 1 if so. */
static int
refused_fast(int lport, long *ms)
{
	int fd = h_connect_from(NULL, lport, 5000);

	*ms = -1;
	if (fd == -1) {
		diag("connect to sluiced: %s", strerror(errno));
		return 0;
	}
	*ms = h_ms_until_closed(fd, 10000);
	close(fd);
	return *ms >= 0;
}

int
main(void)
{
	int e0 = h_free_port(), d1 = h_free_port(), d2 = h_free_port(), b1 = h_free_port();
	int l2 = h_free_port(), l1 = h_free_port(), l0 = h_free_port(), lp = h_free_port();
	int ld = h_free_port(), lt = h_free_port();
	struct stats_server_counters c1, c2, ce;
	struct up_hole hole;
	uint64_t f0, closed0, refused0;
	const char *conf;
	long ms;
	int fd, have_hole, before, r;

	h_echod_start(e0);
	have_hole = up_blackhole(b1, &hole) == 0;
	diag("echod on %d; nothing on %d and %d; blackhole on %d%s", e0, d1, d2, b1,
	    have_hole ? "" : " (not available)");
	conf = up_conf("retry.conf", 1,
	    "timeouts = { connect = \"2s\"; };\n"
	    "upstreams = (\n"
	    "  { name = \"r2\"; retries = 2; max_fails = 0;\n"
	    "    servers = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\", \"127.0.0.1:%d\" ); },\n"
	    "  { name = \"r1\"; max_fails = 0;\n"
	    "    servers = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\", \"127.0.0.1:%d\" ); },\n"
	    "  { name = \"r0\"; retries = 0; max_fails = 0;\n"
	    "    servers = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\" ); },\n"
	    "  { name = \"passive\"; max_fails = 2; fail_timeout = \"60s\";\n"
	    "    servers = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\" ); },\n"
	    "  { name = \"dead\"; retries = 0; max_fails = 1; fail_timeout = \"60s\";\n"
	    "    servers = ( \"127.0.0.1:%d\" ); },\n"
	    "  { name = \"chain\"; retries = 2; max_fails = 0;\n"
	    "    servers = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\" ); } );\n"
	    "listeners = (\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"r2\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"r1\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"r0\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"passive\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"dead\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"chain\"; } );\n",
	    d1, d2, e0, d1, d2, e0, d1, e0, d1, e0, d1, b1, e0, l2, l1, l0, lp, ld, lt);
	h_sluiced_start(conf, l2, 1);

	/* Round robin over [d1, d2, e0] starts on d1: clients start on d1, d2,
	 * e0 in turn, and a retry walks on to the next server. */
	f0 = h_stat("connect_failures");
	is(served(l2, &e0, 9), 9, "retries 2: every client reaches the live third server");
	is(h_stat("connect_failures") - f0, 9,
	    "retries 2: 2 + 1 + 0 failures per round of three clients");
	if (up_server("r2", d1, &c1, NULL) == 0 && up_server("r2", d2, &c2, NULL) == 0 &&
	    up_server("r2", e0, &ce, NULL) == 0) {
		ok(c1.connects == 3 && c1.connect_failures == 3,
		    "retries 2: the first server was tried by the 3 clients that started there "
		    "(%llu)",
		    (unsigned long long)c1.connects);
		ok(c2.connects == 6 && c2.connect_failures == 6,
		    "retries 2: the second by those 3 and by the 3 that started on it (%llu)",
		    (unsigned long long)c2.connects);
		is(ce.connects, 9, "retries 2: the live server got every client once");
	} else {
		ok(0, "retries 2: server rows in the stats segment");
		skip(2, "no server rows");
	}

	f0 = h_stat("connect_failures");
	closed0 = h_stat("closed_connect_failed");
	is(served(l1, &e0, 9), 6, "retries 1: clients starting on the first dead server fail");
	is(h_stat("connect_failures") - f0, 9, "retries 1: 2 + 1 + 0 failures per round");
	ok(h_wait_stat("closed_connect_failed", closed0 + 3, 5000),
	    "retries 1: the 3 clients that ran out of tries are counted closed_connect_failed");

	f0 = h_stat("connect_failures");
	is(served(l0, &e0, 4), 2, "retries 0: a client that starts on the dead server is closed");
	is(h_stat("connect_failures") - f0, 2, "retries 0: one failure each, no retry");

	/* max_fails 2: the dead server is tried twice (each time rescued by the
	 * retry), then marked down and skipped. */
	f0 = h_stat("connect_failures");
	is(served(lp, &e0, 10), 10, "passive: every client is served");
	is(h_stat("connect_failures") - f0, 2,
	    "passive: after 2 failures in a row the dead server is not tried again");
	{
		char needle[128];

		snprintf(needle, sizeof(needle), "server passive/127.0.0.1:%d is DOWN for 60s", d1);
		ok(h_count_lines(h_path("sluiced.log"), needle) == 1, "passive: log says \"%s\"",
		    needle);
	}
	{
		struct stats_server_counters sc;

		/* The mark is published: sluicestat and the other workers see
		 * it in the segment, not only this worker's memory. */
		ok(up_server("passive", d1, &sc, NULL) == 0 && sc.marked_down == 1,
		    "passive: the mark is published in the server's row (marked_down = 1)");
	}

	/* A group whose only server is marked down refuses at once. */
	f0 = h_stat("connect_failures");
	refused0 = h_stat("refused_no_server");
	r = refused_fast(ld, &ms);
	ok(r, "dead: the first client is closed (%ld ms)", ms);
	is(h_stat("connect_failures") - f0, 1, "dead: its one try failed and marked the server");
	r = refused_fast(ld, &ms);
	ok(r && ms < 5000, "dead: the next client is closed at once, with no connect (%ld ms)", ms);
	is(h_stat("connect_failures") - f0, 1, "dead: ... no connect attempt was made");
	ok(h_wait_stat("refused_no_server", refused0 + 1, 5000),
	    "dead: it is counted as refused_no_server");

	/* The connect timeout (2 s) bounds the chain: a try that hangs uses it
	 * all up, and the live server after it is never tried. */
	if (have_hole) {
		uint64_t t0 = h_stat("closed_connect_timeout"), start;

		before = up_accepted(e0);
		fd = h_connect_from(NULL, lt, 5000);
		if (fd == -1)
			bail("connect to sluiced: %s", strerror(errno));
		start = h_now_ms();
		ms = h_ms_until_closed(fd, 15000);
		close(fd);
		ok(ms >= 0, "chain: a client whose first server hangs is closed (%ld ms)", ms);
		diag("chain: closed %llu ms after the connect began (timeout 2 s, 3 tries)",
		    (unsigned long long)(h_now_ms() - start));
		ok(h_wait_stat("closed_connect_timeout", t0 + 1, 5000),
		    "chain: it is counted closed_connect_timeout");
		is(up_accepted(e0) - before, 0,
		    "chain: the retry to the live server never happened: the timeout covers "
		    "every try");
		if (up_server("chain", e0, &ce, NULL) == 0)
			is(ce.connects, 0, "chain: the live server's row shows no connect");
		else
			ok(0, "chain: the live server has a row");
		up_blackhole_close(&hole);
	} else {
		skip(4, "connects to a full accept queue complete on this kernel");
	}

	done_testing();
	return tap_exit();
}
