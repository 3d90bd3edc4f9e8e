/* SPDX-License-Identifier: BSD-2-Clause */
/* i_acl.c — integration test of access control through the real daemon:
 * allow and deny lists (IPv4 from several 127.0.0.x sources, and IPv6 on
 * ::1), the per-source concurrent connection limit, and the per-listener rate
 * limit; each refusal closed at once and counted by reason. One worker, so
 * that per-worker limits are the daemon's. Loopback only; sluiced and echod
 * are killed by pid. */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

#define WAIT 10000
#define BURST 50

/* 1 when a byte sent on fd comes back (the echo backend is reachable through
 * sluice), 0 when the connection is closed instead. */
static int
echoes(int fd)
{
	char c = 0;

	if (fd == -1)
		return 0;
	if (send(fd, "e", 1, MSG_NOSIGNAL) != 1)
		return 0;
	return h_read_n(fd, &c, 1, WAIT) == 1 && c == 'e';
}

/* Connect from src; 1 when the connection relays, 0 when sluice refuses it
 * (closed without a byte). */
static int
admitted(const char *src, int port)
{
	int fd = h_connect_from(src, port, WAIT), r;

	if (fd == -1)
		bail("connect from %s to %d: %s", src, port, strerror(errno));
	r = echoes(fd);
	if (!r && !h_wait_closed(fd, WAIT))
		diag("  connection from %s neither relayed nor closed", src);
	close(fd);
	return r;
}

static int
connect6(int port)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin6.sin6_addr = in6addr_loopback;
	sin6.sin6_port = htons((uint16_t)port);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == -1) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

static int
ipv6_works(void)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), ok6;

	sin6.sin6_addr = in6addr_loopback;
	ok6 = fd != -1 && bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
	if (fd != -1)
		close(fd);
	return ok6;
}

static int
wait_active(uint64_t want)
{
	uint64_t deadline = h_now_ms() + WAIT, v = 0;

	while (h_now_ms() < deadline) {
		v = h_stat("active");
		if (v == want)
			return 1;
		poll(NULL, 0, 20);
	}
	diag("active is %llu, want %llu", (unsigned long long)v, (unsigned long long)want);
	return 0;
}

int
main(void)
{
	int echo = h_free_port(), la = h_free_port(), ld = h_free_port(), ls = h_free_port();
	int lr = h_free_port(), l6a = h_free_port(), l6d = h_free_port();
	int v6 = ipv6_works(), fds[BURST], held[3], relayed = 0, refused = 0;
	const char *conf = h_path("sluice.conf");
	char v6conf[512] = "";
	uint64_t acl0;

	h_echod_start(echo);
	if (v6)
		snprintf(v6conf, sizeof(v6conf),
		    ",\n  { listen = \"[::1]:%d\"; upstream = \"app\";\n"
		    "    allow = ( \"::1/128\" ); deny = ( \"127.0.0.0/8\" ); },\n"
		    "  { listen = \"[::1]:%d\"; upstream = \"app\"; deny = ( \"::/0\" ); }",
		    l6a, l6d);
	h_write_file(conf,
	    "workers = 1;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = (\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"app\";\n"
	    "    allow = ( \"127.0.0.2\", \"127.0.0.16/28\" ); deny = ( \"127.0.0.20\" ); },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"app\"; deny = ( \"127.0.0.4\" ); },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"app\"; max_connections_per_source = 2; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"app\"; rate_limit = 5; }%s );\n",
	    h_pidfile(), h_statsfile(), echo, la, ld, ls, lr, v6conf);
	h_sluiced_start(conf, la, 1);

	/* allow and deny */
	ok(admitted("127.0.0.2", la), "allow: 127.0.0.2 (listed) is relayed");
	ok(admitted("127.0.0.17", la), "allow: 127.0.0.17 (in 127.0.0.16/28) is relayed");
	ok(!admitted("127.0.0.3", la), "allow: 127.0.0.3 (not listed) is refused");
	ok(!admitted("127.0.0.20", la), "deny wins over allow: 127.0.0.20 is refused");
	ok(!admitted("127.0.0.4", ld), "deny: 127.0.0.4 is refused");
	ok(admitted("127.0.0.5", ld), "deny: 127.0.0.5 is relayed");
	ok(h_wait_stat("refused_acl_denied", 3, WAIT), "three refusals counted as acl_denied");
	is(h_stat("refused_acl_denied"), 3, "  exactly three");

	acl0 = h_stat("refused_acl_denied");
	if (v6) {
		int fd = connect6(l6a);

		ok(echoes(fd), "IPv6: ::1 (allowed as ::1/128) is relayed");
		if (fd != -1)
			close(fd);
		fd = connect6(l6d);
		ok(fd != -1 && !echoes(fd), "IPv6: ::1 under deny ::/0 is refused");
		if (fd != -1)
			close(fd);
		ok(h_wait_stat("refused_acl_denied", acl0 + 1, WAIT), "  and counted");
	} else {
		skip(3, "no IPv6 loopback here");
	}

	/* per-source limit: two at once from 127.0.0.6, not three */
	held[0] = h_connect_from("127.0.0.6", ls, WAIT);
	held[1] = h_connect_from("127.0.0.6", ls, WAIT);
	ok(echoes(held[0]) && echoes(held[1]), "per source: two connections from 127.0.0.6 relay");
	ok(!admitted("127.0.0.6", ls), "  a third at once is refused");
	ok(h_wait_stat("refused_per_source_limit", 1, WAIT), "  and counted as per_source_limit");
	held[2] = h_connect_from("127.0.0.7", ls, WAIT);
	ok(echoes(held[2]), "  another source (127.0.0.7) is not affected");
	close(held[0]);
	ok(wait_active(2), "  one of the two closes");
	ok(admitted("127.0.0.6", ls), "  then 127.0.0.6 may connect again");
	close(held[1]);
	close(held[2]);
	ok(wait_active(0), "  all closed: the table is empty again");
	held[0] = h_connect_from("127.0.0.6", ls, WAIT);
	held[1] = h_connect_from("127.0.0.6", ls, WAIT);
	ok(echoes(held[0]) && echoes(held[1]), "  and 127.0.0.6 gets both its connections back");
	close(held[0]);
	close(held[1]);
	ok(wait_active(0), "  which close");

	/* rate limit: 5 a second, a burst of 50 */
	for (int i = 0; i < BURST; i++)
		fds[i] = h_connect_from("127.0.0.9", lr, WAIT);
	for (int i = 0; i < BURST; i++) {
		if (echoes(fds[i]))
			relayed++;
		else if (fds[i] != -1 && h_wait_closed(fds[i], WAIT))
			refused++;
		if (fds[i] != -1)
			close(fds[i]);
	}
	diag("rate_limit = 5: %d of %d relayed, %d refused", relayed, BURST, refused);
	ok(relayed >= 1 && refused >= 1 && relayed + refused == BURST,
	    "rate limit: of a burst of %d some are relayed and some refused", BURST);
	ok(h_wait_stat("refused_rate_limited", (uint64_t)refused, WAIT),
	    "  every one refused is counted as rate_limited");
	is(h_stat("refused_rate_limited"), refused, "  exactly those");

	ok(wait_active(0), "nothing left open");
	ok(h_stat("refused") == h_stat("refused_acl_denied") + h_stat("refused_per_source_limit") +
	                           h_stat("refused_rate_limited"),
	    "refused is the sum of its reasons");
	ok(h_stat("accepted") == h_stat("closed"), "accepted = closed: every refusal was closed");

	done_testing();
	return tap_exit();
}
