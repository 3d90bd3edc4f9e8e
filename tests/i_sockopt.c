/* SPDX-License-Identifier: BSD-2-Clause */
/* i_sockopt.c — integration test of the socket options through the real
 * daemon: a listener's rcvbuf, sndbuf, fastopen, defer_accept, keepalive and
 * v6only are on its listening socket in the master and on the client sockets
 * a worker accepted from it (inherited, nothing set per connection); an
 * upstream's keepalive and mark are on the worker's sockets to its servers.
 * The test reads them with getsockopt on the very descriptors of sluiced
 * (pidfd_getfd, as root) and cross-checks with ss(8). A reload changes the
 * options of a kept listening socket, refuses to change its v6only, and bad
 * values are refused by sluiced -t with FILE:LINE and the setting. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"
#include "uphelp.h"

#define WAIT_MS 15000

/* A copy of the socket of process pid whose local port is lport and, when
 * rport is not 0, whose peer port is rport (any family): the caller closes
 * it. -1 when there is none. */
static int
grab(pid_t pid, int lport, int rport)
{
	char dir[64];
	struct dirent *e;
	DIR *d;
	int pfd, found = -1;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd == -1 || (d = opendir(dir)) == NULL) {
		diag("pidfd_open/opendir for %d: %s", (int)pid, strerror(errno));
		if (pfd != -1)
			close(pfd);
		return -1;
	}
	while (found == -1 && (e = readdir(d)) != NULL) {
		struct sockaddr_storage a;
		socklen_t al = sizeof(a);
		int fd, n = atoi(e->d_name), port;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		fd = (int)syscall(SYS_pidfd_getfd, pfd, n, 0);
		if (fd == -1)
			continue;
		if (getsockname(fd, (struct sockaddr *)&a, &al) == -1 ||
		    (a.ss_family != AF_INET && a.ss_family != AF_INET6)) {
			close(fd);
			continue;
		}
		port = ntohs(a.ss_family == AF_INET ? ((struct sockaddr_in *)&a)->sin_port
		                                    : ((struct sockaddr_in6 *)&a)->sin6_port);
		if (port == lport && rport != 0) {
			al = sizeof(a);
			if (getpeername(fd, (struct sockaddr *)&a, &al) == -1)
				port = -1;
			else if (ntohs(a.ss_family == AF_INET
			                   ? ((struct sockaddr_in *)&a)->sin_port
			                   : ((struct sockaddr_in6 *)&a)->sin6_port) != rport)
				port = -1;
		} else if (port == lport) {
			int v = 0;
			socklen_t vl = sizeof(v);

			/* The listening socket, not an accepted one. */
			if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) == -1 || !v)
				port = -1;
		}
		if (port == lport)
			found = fd;
		else
			close(fd);
	}
	closedir(d);
	close(pfd);
	return found;
}

/* sluiced -t -c a file holding text: 1 when it fails naming want. */
static int
refused(const char *text, const char *want)
{
	char *argv[] = {(char *)h_sluiced(), "-t", "-c", NULL, NULL};
	char *out = NULL;
	const char *path;
	int rc, good;

	path = up_conf("bad.conf", 1, "%s", text);
	argv[3] = (char *)path;
	rc = h_run(argv, &out, 20000);
	good = rc != 0 && out != NULL && strstr(out, path) != NULL && strstr(out, want) != NULL;
	if (!good)
		diag("sluiced -t: status %d: %s (wanted %s)", rc, out ? out : "", want);
	free(out);
	return good;
}

#define UP "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:9\" ); } );\n"

static void
config_errors(void)
{
	ok(refused(UP "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\";\n"
	              "  keepalive = { idle = \"1500ms\"; }; } );\n",
	       ":7: listeners[0].keepalive.idle: must be whole seconds"),
	    "keepalive.idle of 1.5s is refused with FILE:LINE");
	ok(refused(UP "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\";\n"
	              "  keepalive = { count = 128; }; } );\n",
	       ":7: listeners[0].keepalive.count: must be between 1 and 127"),
	    "keepalive.count 128 is refused");
	ok(refused(UP "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\";\n"
	              "  keepalive = { interval = \"10h\"; }; } );\n",
	       ":7: listeners[0].keepalive.interval: must be at most 32767 seconds"),
	    "keepalive.interval over 32767s is refused");
	ok(refused(UP "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\";\n"
	              "  keepalive = true; } );\n",
	       ":7: listeners[0].keepalive: expected a group"),
	    "keepalive = true is refused (a group is expected)");
	ok(refused(UP "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\";\n"
	              "  keepalive = { probes = 3; }; } );\n",
	       ":7: listeners[0].keepalive.probes: unknown setting"),
	    "an unknown keepalive member is refused");
	ok(refused(UP "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\";\n"
	              "  v6only = false; } );\n",
	       ":7: listeners[0].v6only: applies only to an IPv6 listen address"),
	    "v6only on an IPv4 listener is refused");
	ok(refused(UP "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\";\n"
	              "  fastopen = 70000; } );\n",
	       ":7: listeners[0].fastopen: must be between 0 and 65535"),
	    "fastopen 70000 is refused");
	ok(refused(UP "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\";\n"
	              "  defer_accept = \"2h\"; } );\n",
	       ":7: listeners[0].defer_accept: must be at most 3600 seconds"),
	    "defer_accept of 2h is refused");
	ok(refused(UP "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\";\n"
	              "  rcvbuf = 100; } );\n",
	       ":7: listeners[0].rcvbuf: must be between 1K and 512M"),
	    "rcvbuf of 100 bytes is refused");
	ok(refused(UP "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\";\n"
	              "  sndbuf = \"1G\"; } );\n",
	       ":7: listeners[0].sndbuf: must be between 1K and 512M"),
	    "sndbuf of 1G is refused");
	ok(refused("upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:9\" );\n"
	           "  mark = 0; } );\n"
	           "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\"; } );\n",
	       ":6: upstreams[0].mark: must be between 1 and 4294967295"),
	    "mark 0 is refused");
	ok(refused("upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:9\" );\n"
	           "  keepalive = { idle = 0; }; } );\n"
	           "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\"; } );\n",
	       ":6: upstreams[0].keepalive.idle: must be greater than 0"),
	    "an upstream's keepalive.idle 0 is refused");
	ok(refused(UP "listeners = ( { listen = \"[::1]:9\"; upstream = \"app\";\n"
	              "  v6only = false; } );\n",
	       ":7: listeners[0].v6only: false applies only to [::] or an IPv4-mapped address"),
	    "v6only = false on [::1] (which the kernel keeps IPv6-only) is refused");
	ok(refused(UP "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\"; },\n"
	              "  { listen = \"[::ffff:127.0.0.1]:9\"; upstream = \"app\"; v6only = false; } );\n",
	       ":7: listeners[1].listen: address [::ffff:127.0.0.1]:9 overlaps 127.0.0.1:9"),
	    "a dual-stack [::ffff:127.0.0.1]:P beside 127.0.0.1:P is refused as overlapping");
	ok(refused(UP "listeners = ( { listen = \"0.0.0.0:9\"; upstream = \"app\"; },\n"
	              "  { listen = \"[::]:9\"; upstream = \"app\"; v6only = false; } );\n",
	       ":7: listeners[1].listen: address [::]:9 overlaps 0.0.0.0:9"),
	    "a dual-stack [::]:P beside 0.0.0.0:P is refused as overlapping");
}

/* sluiced -t run as nobody (setpriv) on text: its status, output in *out. */
static int
test_as_nobody(const char *text, char **out)
{
	const char *path = up_conf("nobody-t.conf", 1, "%s", text);
	char *argv[] = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=-all", (char *)h_sluiced(), "-t", "-c", (char *)path, NULL};

	/* Our own directory, readable a moment for nobody. */
	if (chmod(h_dir(), 0755) == -1 || chmod(path, 0644) == -1)
		bail("chmod: %s", strerror(errno));
	return h_run(argv, out, 20000);
}

static void
not_root(void)
{
	char *out = NULL;
	int rc;

	if (access("/usr/bin/setpriv", X_OK) != 0) {
		skip(2, "setpriv(1) is not installed");
		return;
	}
	rc = test_as_nobody(UP "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\"; } );\n",
	    &out);
	ok(rc == 0, "sluiced -t as nobody accepts a config without mark (%d: %s)", rc,
	    out ? out : "");
	free(out);
	out = NULL;
	rc = test_as_nobody("upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:9\" );\n"
	                    "  mark = 5; } );\n"
	                    "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\"; } );\n",
	    &out);
	ok(rc != 0 && out != NULL &&
	        strstr(out, "upstreams[0].mark: needs CAP_NET_ADMIN, which sluiced lacks") != NULL,
	    "sluiced -t as nobody refuses a mark it could not set (%d: %s)", rc, out ? out : "");
	free(out);
	chmod(h_dir(), 0700);
}

int
main(void)
{
	int lp = h_free_port(), l6 = h_free_port(), bp = h_free_port(), lfd, c, b, fd;
	char body[2048], buf[4];
	const char *conf;
	pid_t pid, wp[4];
	char *out = NULL;
	char *ss[] = {"/usr/bin/ss", "-tnie", "state", "established", NULL};

	config_errors();
	not_root();

	lfd = h_listen(bp);
	snprintf(body, sizeof(body),
	    "user = \"root\";\n"
	    "upstreams = ( { name = \"app\"; mark = 42;\n"
	    "  keepalive = { idle = \"91s\"; interval = \"17s\"; count = 6; };\n"
	    "  servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = (\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"app\"; rcvbuf = \"64K\";\n"
	    "    sndbuf = \"32K\"; fastopen = 128; defer_accept = \"5s\";\n"
	    "    keepalive = { idle = \"77s\"; interval = \"13s\"; count = 4; }; },\n"
	    "  { listen = \"[::ffff:127.0.0.1]:%d\"; upstream = \"app\"; v6only = false; } );\n",
	    bp, lp, l6);
	conf = up_conf("sockopt.conf", 1, "%s", body);
	pid = h_sluiced_start(conf, lp, 1);

	/* The listening socket, in the master. */
	fd = grab(pid, lp, 0);
	ok(fd != -1, "the master holds the listening socket");
	is(up_sockopt(fd, SOL_SOCKET, SO_RCVBUF), 2 * 65536, "listener: rcvbuf 64K (doubled by the kernel)");
	is(up_sockopt(fd, SOL_SOCKET, SO_SNDBUF), 2 * 32768, "listener: sndbuf 32K (doubled by the kernel)");
	is(up_sockopt(fd, IPPROTO_TCP, TCP_FASTOPEN), 128, "listener: fastopen queue 128");
	ok(up_sockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT) >= 5,
	    "listener: defer_accept at least 5s (the kernel rounds up to a retransmission: %d)",
	    up_sockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT));
	is(up_sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 1, "listener: keepalive on");
	ok(up_sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE) == 77 && up_sockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL) == 13 &&
	        up_sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT) == 4,
	    "listener: keepalive idle 77, interval 13, count 4");
	if (fd != -1)
		close(fd);
	fd = grab(pid, l6, 0);
	is(up_sockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY), 0,
	    "[::ffff:127.0.0.1] listener with v6only = false: V6ONLY off");
	is(up_sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 0, "a listener without keepalive has it off");
	is(up_sockopt(fd, IPPROTO_TCP, TCP_FASTOPEN), 0, "a listener without fastopen has it off");
	if (fd != -1)
		close(fd);
	/* An IPv4 client reaches the dual-stack listener. */
	c = h_connect(l6, 5000);
	ok(c != -1 && write(c, "y", 1) == 1, "an IPv4 client connects to the dual-stack listener");
	b = h_accept(lfd, WAIT_MS);
	ok(b != -1 && h_read_n(b, buf, 1, WAIT_MS) == 1 && buf[0] == 'y',
	    "... and is relayed");
	if (c != -1)
		close(c);
	if (b != -1)
		close(b);

	/* A relayed connection: the client's socket in the worker inherited
	 * the listener's options; the server's got the upstream's. */
	c = h_connect(lp, 5000);
	if (c == -1)
		bail("connect to sluiced failed");
	if (write(c, "x", 1) != 1) /* defer_accept: accepted once data came */
		bail("write failed");
	b = h_accept(lfd, WAIT_MS);
	ok(b != -1, "the backend got the relayed connection");
	ok(b != -1 && h_read_n(b, buf, 1, WAIT_MS) == 1 && buf[0] == 'x', "the byte was relayed");
	if (h_stats_running(wp, 4, 0) != 1)
		bail("expected one running worker");
	fd = grab(wp[0], lp, (int)h_local_port(c));
	ok(fd != -1, "the worker holds the accepted client socket");
	is(up_sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 1, "accepted socket: keepalive inherited");
	ok(up_sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE) == 77 && up_sockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL) == 13 &&
	        up_sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT) == 4,
	    "accepted socket: keepalive idle 77, interval 13, count 4 inherited");
	is(up_sockopt(fd, SOL_SOCKET, SO_RCVBUF), 2 * 65536, "accepted socket: rcvbuf inherited");
	is(up_sockopt(fd, SOL_SOCKET, SO_MARK), 0, "accepted socket: no mark (the mark is upstream's)");
	if (fd != -1)
		close(fd);
	fd = up_grab_peer(wp[0], bp);
	ok(fd != -1, "the worker holds the socket to the server");
	is(up_sockopt(fd, SOL_SOCKET, SO_MARK), 42, "upstream socket: mark 42");
	is(up_sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 1, "upstream socket: keepalive on");
	ok(up_sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE) == 91 && up_sockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL) == 17 &&
	        up_sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT) == 6,
	    "upstream socket: keepalive idle 91, interval 17, count 6");
	if (fd != -1)
		close(fd);

	/* ss(8) sees the same: keepalive timers on both of sluiced's
	 * sockets, and the mark on the one to the server. */
	if (access(ss[0], X_OK) == 0 && h_run(ss, &out, 10000) == 0 && out != NULL) {
		char cl[64], sv[64], *line;
		int ka_client = 0, ka_server = 0, mark = 0;

		snprintf(cl, sizeof(cl), "127.0.0.1:%d", lp);
		snprintf(sv, sizeof(sv), "127.0.0.1:%d", bp);
		for (line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
			char local[64], peer[64];
			int ka = strstr(line, "timer:(keepalive") != NULL;

			/* Recv-Q Send-Q Local Peer ... (no State column). */
			if (sscanf(line, "%*s %*s %63s %63s", local, peer) != 2)
				continue;
			if (strcmp(local, cl) == 0 && ka)
				ka_client = 1;
			if (strcmp(peer, sv) == 0 && ka) {
				ka_server = 1;
				mark |= strstr(line, "fwmark:0x2a") != NULL;
			}
		}
		ok(ka_client && ka_server, "ss shows keepalive timers on both sides (%d/%d)",
		    ka_client, ka_server);
		ok(mark, "ss shows fwmark 0x2a on the socket to the server");
		if (!(ka_client && ka_server && mark))
			diag("ss said:\n%s", out);
	} else {
		skip(2, "ss(8) not usable here");
	}
	free(out);
	out = NULL;
	close(c);
	if (b != -1)
		close(b);

	/* Reload: the kept listening socket takes the new values, and loses
	 * what is no longer asked for. */
	snprintf(body, sizeof(body),
	    "user = \"root\";\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = (\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"app\"; defer_accept = \"1s\";\n"
	    "    keepalive = { idle = \"55s\"; }; },\n"
	    "  { listen = \"[::ffff:127.0.0.1]:%d\"; upstream = \"app\"; v6only = false; } );\n",
	    bp, lp, l6);
	up_conf("sockopt.conf", 1, "%s", body);
	kill(pid, SIGHUP);
	{
		uint64_t deadline = h_now_ms() + WAIT_MS;

		while (h_now_ms() < deadline && h_stats_generation() < 2)
			h_nap(20);
	}
	is(h_stats_generation(), 2, "reloaded");
	fd = grab(pid, lp, 0);
	is(up_sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE), 55, "kept listener: keepalive idle now 55");
	ok(up_sockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL) != 13 && up_sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT) != 4,
	    "kept listener: interval and count back to the kernel's");
	is(up_sockopt(fd, IPPROTO_TCP, TCP_FASTOPEN), 0, "kept listener: fastopen off");
	if (fd != -1)
		close(fd);

	/* v6only cannot change on a kept socket: the reload is refused. */
	snprintf(body, sizeof(body),
	    "user = \"root\";\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = (\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"app\"; },\n"
	    "  { listen = \"[::ffff:127.0.0.1]:%d\"; upstream = \"app\"; } );\n",
	    bp, lp, l6);
	up_conf("sockopt.conf", 1, "%s", body);
	kill(pid, SIGHUP);
	ok(h_wait_file_contains(h_path("sluiced.log"),
	       "v6only cannot change on a socket kept across a reload", WAIT_MS),
	    "a reload that changes a kept listener's v6only is refused, saying why");
	is(h_stats_generation(), 2, "the running generation stays");
	fd = grab(pid, l6, 0);
	is(up_sockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY), 0, "the dual-stack listener is unchanged");
	if (fd != -1)
		close(fd);

	up_stop(pid);

	/* Workers that switch user keep CAP_NET_ADMIN alone, for the mark. */
	snprintf(body, sizeof(body),
	    "upstreams = ( { name = \"app\"; mark = 7; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    bp, lp);
	pid = h_sluiced_start(up_conf("nobody.conf", 1, "%s", body), lp, 1);
	c = h_connect(lp, 5000);
	b = h_accept(lfd, WAIT_MS);
	ok(c != -1 && b != -1 && write(c, "z", 1) == 1 && h_read_n(b, buf, 1, WAIT_MS) == 1,
	    "a worker running as nobody relays with a mark");
	if (h_stats_running(wp, 4, 0) != 1)
		bail("expected one running worker");
	fd = up_grab_peer(wp[0], bp);
	is(up_sockopt(fd, SOL_SOCKET, SO_MARK), 7, "its upstream socket has mark 7");
	if (fd != -1)
		close(fd);
	{
		char path[64], *st, *cap, *uid;

		snprintf(path, sizeof(path), "/proc/%d/status", (int)wp[0]);
		st = h_read_file(path);
		cap = st ? strstr(st, "CapEff:") : NULL;
		uid = st ? strstr(st, "Uid:") : NULL;
		ok(uid != NULL && strncmp(uid, "Uid:\t65534\t65534\t65534", 21) == 0,
		    "the worker runs as nobody");
		ok(cap != NULL && strncmp(cap, "CapEff:\t0000000000001000", 24) == 0,
		    "its only effective capability is CAP_NET_ADMIN");
		cap = st ? strstr(st, "CapPrm:") : NULL;
		ok(cap != NULL && strncmp(cap, "CapPrm:\t0000000000001000", 24) == 0,
		    "and the only permitted one");
		free(st);
	}
	if (c != -1)
		close(c);
	if (b != -1)
		close(b);
	close(lfd);
	up_stop(pid);
	done_testing();
	return tap_exit();
}
