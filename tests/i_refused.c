/* SPDX-License-Identifier: BSD-2-Clause */
/* i_refused.c — integration test: an upstream that refuses connections.
 * The client must be closed at once (not at the connect timeout), each
 * attempt counted, the daemon must go on serving other listeners, and a
 * group with one dead and one live server must serve every client. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

#define NLIVE 10
#define NMIXED 20

static int
wait_active_zero(void)
{
	uint64_t deadline = h_now_ms() + 10000, v = UINT64_MAX;

	while (h_now_ms() < deadline) {
		v = h_stat("active");
		if (v == 0)
			return 1;
		poll(NULL, 0, 20);
	}
	diag("active is still %lld after 10 s", v == UINT64_MAX ? -1LL : (long long)v);
	return 0;
}

int
main(void)
{
	int dead = h_free_port(), live = h_free_port();
	int l_dead = h_free_port(), l_live = h_free_port(), l_mixed = h_free_port();
	size_t sizes[NMIXED];
	uint64_t before;
	const char *conf = h_path("sluice.conf");
	long ms;
	int fd;

	for (int i = 0; i < NMIXED; i++)
		sizes[i] = (size_t)(i * 1237) % 20000;
	h_echod_start(live);
	h_write_file(conf,
	    "workers = 2;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "timeouts = { connect = \"30s\"; };\n"
	    "upstreams = (\n"
	    "  { name = \"dead\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	    "  { name = \"live\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	    "  { name = \"mixed\"; servers = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\" ); } );\n"
	    "listeners = (\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"dead\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"live\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"mixed\"; } );\n",
	    h_pidfile(), h_statsfile(), dead, live, dead, live, l_dead, l_live, l_mixed);
	h_sluiced_start(conf, l_dead, 2);
	diag("nothing listens on %d; echod on %d", dead, live);

	fd = h_connect(l_dead, 5000);
	if (fd == -1)
		bail("cannot connect to sluiced on port %d: %s", l_dead, strerror(errno));
	ms = h_ms_until_closed(fd, 5000);
	ok(ms >= 0,
	    "a client whose upstream refuses is closed well before the "
	    "30 s connect timeout (%ld ms)",
	    ms);
	close(fd);
	ok(h_wait_stat("connect_failures", 2, 5000),
	    "connect_failures counts the first try and the retry");
	ok(h_wait_stat("closed", 1, 5000), "closed counts the client");

	is(h_echo_many(l_live, NLIVE, sizes, 0, 20000), NLIVE,
	    "the daemon still relays through another listener");

	before = h_stat("connect_failures");
	is(h_echo_many(l_mixed, NMIXED, sizes, 0, 20000), NMIXED,
	    "with servers [dead, live] every client is served");
	ok(h_stat("connect_failures") > before,
	    "the dead server was tried and counted (%llu failures before, %llu after)",
	    (unsigned long long)before, (unsigned long long)h_stat("connect_failures"));
	ok(h_wait_stat("closed", 1 + NLIVE + NMIXED, 10000), "every connection is closed");
	ok(wait_active_zero(), "none is active");
	is(h_stat("accepted"), 1 + NLIVE + NMIXED, "accepted counts every client");

	done_testing();
	return tap_exit();
}
