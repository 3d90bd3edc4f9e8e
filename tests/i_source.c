/* SPDX-License-Identifier: BSD-2-Clause */
/* i_source.c — integration test of upstream source addresses through the
 * real daemon. Part one, on loopback: an upstream's list of sources is used
 * in turn, a server's own source wins over its group's, and the worker's
 * socket has IP_BIND_ADDRESS_NO_PORT (read with getsockopt on sluiced's
 * descriptor, pidfd_getfd); the backend, played by the test, checks the
 * peer address. Part two, transparent, in a network namespace the test
 * creates for itself (unshare; it goes away with the test): 10.7.0.0/24 is
 * routed to the host but is no address of it, so a plain bind to 10.7.0.2
 * fails; a client from 10.7.0.2 is relayed and the backend sees 10.7.0.2,
 * the client's own address, from workers running as nobody (which keep
 * CAP_NET_ADMIN alone for it). Bad settings are refused by sluiced -t. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"
#include "uphelp.h"

#define WAIT_MS 15000

/* The peer address of fd as text ("" when unknown), in a static buffer. */
static const char *
peer_of(int fd)
{
	static char buf[INET_ADDRSTRLEN];
	struct sockaddr_in a;
	socklen_t l = sizeof(a);

	buf[0] = '\0';
	if (fd != -1 && getpeername(fd, (struct sockaddr *)&a, &l) == 0)
		inet_ntop(AF_INET, &a.sin_addr, buf, sizeof(buf));
	return buf;
}

/* One client through lport; the backend's end (accepted on lfd) after a
 * byte went through, or -1. The client stays open in *c. */
static int
relayed(int lport, int lfd, int *c)
{
	char ch;
	int b;

	*c = h_connect(lport, 5000);
	if (*c == -1 || write(*c, "s", 1) != 1)
		return -1;
	b = h_accept(lfd, WAIT_MS);
	if (b != -1 && (h_read_n(b, &ch, 1, WAIT_MS) != 1 || ch != 's')) {
		close(b);
		return -1;
	}
	return b;
}

static int
refused(const char *text, const char *want)
{
	char *argv[] = {(char *)h_sluiced(), "-t", "-c", NULL, NULL};
	char *out = NULL;
	int rc, good;

	argv[3] = (char *)up_conf("bad.conf", 1, "%s", text);
	rc = h_run(argv, &out, 20000);
	good = rc != 0 && out != NULL && strstr(out, argv[3]) != NULL && strstr(out, want) != NULL;
	if (!good)
		diag("sluiced -t: status %d: %s (wanted %s)", rc, out ? out : "", want);
	free(out);
	return good;
}

#define LS "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\"; } );\n"

static void
config_errors(void)
{
	ok(refused("upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:9\" );\n"
	           "  source = \"127.0.0.300\"; } );\n" LS,
	       ":6: upstreams[0].source: invalid source address \"127.0.0.300\""),
	    "an invalid source is refused with FILE:LINE");
	ok(refused("upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:9\" );\n"
	           "  source = ( \"127.0.0.5\", \"127.0.0.6:80\" ); } );\n" LS,
	       ":6: upstreams[0].source[1]: invalid source address \"127.0.0.6:80\""),
	    "a source with a port is refused, naming the element");
	ok(refused("upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:9\" );\n"
	           "  source = \"::1\"; } );\n" LS,
	       ":6: upstreams[0].source: source address 1 is IPv6 but server 127.0.0.1:9 is IPv4"),
	    "a source of another family than a server is refused");
	ok(refused("upstreams = ( { name = \"app\"; servers = (\n"
	           "  { address = \"[::1]:9\"; source = \"127.0.0.5\"; } ); } );\n" LS,
	       ":6: upstreams[0].servers[0].source: source address 1 is IPv4 but server [::1]:9"),
	    "a server's own source of another family is refused");
	ok(refused("upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:9\" );\n"
	           "  source = ( ); } );\n" LS,
	       ":6: upstreams[0].source: at least one address is required"),
	    "an empty source list is refused");
	ok(refused("upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:9\" );\n"
	           "  transparent = true; source = \"127.0.0.5\"; } );\n" LS,
	       ":6: upstreams[0].source: cannot go with transparent"),
	    "source and transparent together are refused");
	ok(refused("upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:9\" );\n"
	           "  transparent = \"yes\"; } );\n" LS,
	       ":6: upstreams[0].transparent: expected true or false"),
	    "transparent must be a boolean");
}

static void
sources(void)
{
	int l1 = h_free_port(), l2 = h_free_port(), bp = h_free_port(), lfd = h_listen(bp);
	int c[6], b[6], turn = 1, fd;
	char body[2048];
	pid_t pid, wp[2];

	snprintf(body, sizeof(body),
	    "upstreams = (\n"
	    "  { name = \"list\"; source = ( \"127.0.0.5\", \"127.0.0.6\" );\n"
	    "    servers = ( \"127.0.0.1:%d\" ); },\n"
	    "  { name = \"own\"; source = \"127.0.0.5\";\n"
	    "    servers = ( { address = \"127.0.0.1:%d\"; source = \"[127.0.0.7]\"; } ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"list\"; },\n"
	    "              { listen = \"127.0.0.1:%d\"; upstream = \"own\"; } );\n",
	    bp, bp, l1, l2);
	/* [127.0.0.7] is not IPv6: refused; fix it after checking that. */
	ok(refused(body, "invalid source address \"[127.0.0.7]\""),
	    "an IPv4 source in brackets is refused");
	snprintf(body, sizeof(body),
	    "upstreams = (\n"
	    "  { name = \"list\"; source = ( \"127.0.0.5\", \"127.0.0.6\" );\n"
	    "    servers = ( \"127.0.0.1:%d\" ); },\n"
	    "  { name = \"own\"; source = \"127.0.0.5\";\n"
	    "    servers = ( { address = \"127.0.0.1:%d\"; source = \"127.0.0.7\"; } ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"list\"; },\n"
	    "              { listen = \"127.0.0.1:%d\"; upstream = \"own\"; } );\n",
	    bp, bp, l1, l2);
	pid = h_sluiced_start(up_conf("source.conf", 1, "%s", body), l1, 1);
	for (int i = 0; i < 4; i++) {
		const char *want = i % 2 ? "127.0.0.6" : "127.0.0.5";

		b[i] = relayed(l1, lfd, &c[i]);
		if (strcmp(peer_of(b[i]), want) != 0) {
			diag("connection %d came from %s, not %s", i, peer_of(b[i]), want);
			turn = 0;
		}
	}
	ok(turn, "the group's sources are used in turn: .5, .6, .5, .6");
	if (h_stats_running(wp, 2, 0) != 1)
		bail("expected one running worker");
	fd = up_grab_peer(wp[0], bp);
	is(up_sockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT), 1,
	    "the worker's upstream socket has IP_BIND_ADDRESS_NO_PORT");
	is(up_sockopt(fd, IPPROTO_IP, IP_TRANSPARENT), 0, "and no IP_TRANSPARENT");
	if (fd != -1)
		close(fd);
	b[4] = relayed(l2, lfd, &c[4]);
	b[5] = relayed(l2, lfd, &c[5]);
	ok(strcmp(peer_of(b[4]), "127.0.0.7") == 0 && strcmp(peer_of(b[5]), "127.0.0.7") == 0,
	    "a server's own source wins over its group's (%s)", peer_of(b[4]));
	for (int i = 0; i < 6; i++) {
		if (c[i] != -1)
			close(c[i]);
		if (b[i] != -1)
			close(b[i]);
	}
	up_stop(pid);
	close(lfd);
}

/* Run /usr/sbin/ip with the words of argv (NULL-terminated). */
static int
ip(char **words)
{
	char *argv[12], *out = NULL;
	int n = 0, rc;

	argv[n++] = "/usr/sbin/ip";
	while (*words != NULL && n < 11)
		argv[n++] = *words++;
	argv[n] = NULL;
	rc = h_run(argv, &out, 10000);
	if (rc != 0)
		diag("ip %s %s: status %d: %s", argv[1], argv[2], rc, out ? out : "");
	free(out);
	return rc;
}

static void
transparent(void)
{
	int lp, bp, lfd, c, b, fd, one = 1, plain;
	struct sockaddr_in a;
	char ch = 0;
	pid_t pid, wp[2];

	/* A network namespace of our own: loopback up, and 10.7.0.0/24
	 * delivered here (a local route in a table of its own) without being
	 * an address of ours, as a TPROXY setup has it. */
	if (unshare(CLONE_NEWNET) == -1) {
		skip(7, "unshare(CLONE_NEWNET): %s", strerror(errno));
		return;
	}
	{
		char *up[] = {"link", "set", "lo", "up", NULL};
		char *route[] = {"route", "add", "local", "10.7.0.0/24", "dev", "lo", "table", "100",
			NULL};
		char *rule[] = {"rule", "add", "to", "10.7.0.0/24", "lookup", "100", NULL};

		if (ip(up) != 0 || ip(route) != 0 || ip(rule) != 0)
			bail("cannot set up the namespace's loopback and routes");
	}
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	inet_pton(AF_INET, "10.7.0.2", &a.sin_addr);
	plain = socket(AF_INET, SOCK_STREAM, 0);
	ok(bind(plain, (struct sockaddr *)&a, sizeof(a)) == -1 && errno == EADDRNOTAVAIL,
	    "in the test's namespace 10.7.0.2 is no address of ours (a plain bind fails)");
	close(plain);

	lp = h_free_port();
	bp = h_free_port();
	lfd = h_listen(bp);
	pid = h_sluiced_start(up_conf("transparent.conf", 1,
	                          "upstreams = ( { name = \"app\"; transparent = true;\n"
	                          "  servers = ( \"127.0.0.1:%d\" ); } );\n"
	                          "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; "
	                          "} );\n",
	                          bp, lp),
	    lp, 1);

	/* The client itself needs IP_TRANSPARENT to use 10.7.0.2. */
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c == -1 || setsockopt(c, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one)) == -1 ||
	    bind(c, (struct sockaddr *)&a, sizeof(a)) == -1)
		bail("client from 10.7.0.2: %s", strerror(errno));
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	a.sin_port = htons((uint16_t)lp);
	ok(connect(c, (struct sockaddr *)&a, sizeof(a)) == 0 && write(c, "t", 1) == 1,
	    "a client from 10.7.0.2 connects to sluiced");
	b = h_accept(lfd, WAIT_MS);
	ok(b != -1 && h_read_n(b, &ch, 1, WAIT_MS) == 1 && ch == 't', "its byte is relayed");
	is_str(peer_of(b), "10.7.0.2", "the server sees the client's own address");
	ok(b != -1 && write(b, "u", 1) == 1 && h_read_n(c, &ch, 1, WAIT_MS) == 1 && ch == 'u',
	    "and the answer comes back to the client");
	if (h_stats_running(wp, 2, 0) != 1)
		bail("expected one running worker");
	fd = up_grab_peer(wp[0], bp);
	is(up_sockopt(fd, IPPROTO_IP, IP_TRANSPARENT), 1, "the worker's socket has IP_TRANSPARENT");
	if (fd != -1)
		close(fd);
	{
		char path[64], *st = NULL, *cap, *uid;

		snprintf(path, sizeof(path), "/proc/%d/status", (int)wp[0]);
		st = h_read_file(path);
		uid = st ? strstr(st, "Uid:") : NULL;
		cap = st ? strstr(st, "CapEff:") : NULL;
		ok(uid != NULL && strncmp(uid, "Uid:\t65534\t", 10) == 0 && cap != NULL &&
		        strncmp(cap, "CapEff:\t0000000000001000", 24) == 0,
		    "the worker runs as nobody with CAP_NET_ADMIN alone");
		free(st);
	}
	close(c);
	if (b != -1)
		close(b);
	up_stop(pid);
	close(lfd);
}

int
main(void)
{
	config_errors();
	sources();
	transparent();
	done_testing();
	return tap_exit();
}
