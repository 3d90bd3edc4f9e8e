/* SPDX-License-Identifier: BSD-2-Clause */
/* i_timeout.c — integration test: the idle timeout closes a silent
 * connection but not a talking one, and the connect timeout closes a client
 * whose upstream never completes the handshake (a listener whose accept
 * queue the test fills and never drains). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "harness.h"
#include "tap.h"

#define FILL_MAX 64

/* Send msg and read the same bytes back within 5 s. Returns 0, or -1 after
 * a diag saying what happened instead. */
static int
round_trip(int fd, const char *msg, const char *who)
{
	size_t len = strlen(msg), got = 0;
	uint64_t deadline = h_now_ms() + 5000;
	char buf[128];

	if (send(fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len) {
		diag("%s: send: %s", who, strerror(errno));
		return -1;
	}
	while (got < len) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (h_now_ms() >= deadline) {
			diag("%s: echo of \"%s\" incomplete after 5 s (%zu bytes)", who, msg, got);
			return -1;
		}
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		if (n == 0 || (n == -1 && errno != EAGAIN)) {
			diag("%s: %s during a round trip", who, n == 0 ? "EOF" : strerror(errno));
			return -1;
		}
		if (n > 0)
			got += (size_t)n;
	}
	if (memcmp(buf, msg, len) != 0) {
		diag("%s: echo differs from \"%s\"", who, msg);
		return -1;
	}
	return 0;
}

/* Whether fd has been closed by the peer: 1 on EOF or reset, 0 while open,
 * -1 (after a diag) when data arrives that nobody sent. */
static int
peer_closed(int fd, int wait_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char c;
	ssize_t n;

	if (poll(&pfd, 1, wait_ms) <= 0)
		return 0;
	n = recv(fd, &c, 1, MSG_DONTWAIT);
	if (n == 0 || (n == -1 && errno == ECONNRESET))
		return 1;
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	diag("unexpected %s on a silent connection", n == 1 ? "byte" : strerror(errno));
	return -1;
}

static void
idle_timeout(void)
{
	int echo = h_free_port(), lport = h_free_port(), status, a, b;
	int b_trips = 0, b_ok = 1, ticks = 0;
	long a_closed = -1;
	uint64_t a_last, b_start, b_last, next_b, deadline, timeouts_seen = 0;
	const char *conf;
	pid_t pid;

	h_echod_start(echo);
	conf = h_conf("idle.conf", 2, lport, &echo, 1, "timeouts = { idle = \"1s\"; };");
	pid = h_sluiced_start(conf, lport, 2);

	a = h_connect(lport, 5000);
	b = h_connect(lport, 5000);
	if (a == -1 || b == -1)
		bail("cannot connect to sluiced: %s", strerror(errno));
	ok(round_trip(a, "hello from a", "a") == 0, "idle: the silent connection echoes once");
	a_last = h_now_ms();
	b_start = next_b = b_last = a_last;
	deadline = a_last + 10000;

	/*
	 * b talks every 200 ms for at least 2.5 s, and goes on until a was
	 * closed and counted, so that b's own idle timer cannot have run out
	 * when the counter is read.
	 */
	while (h_now_ms() < deadline && ticks++ < 2000) {
		uint64_t now = h_now_ms();
		int r;

		if (b_ok && now >= next_b) {
			char msg[32];

			snprintf(msg, sizeof(msg), "b says %d", b_trips);
			if (round_trip(b, msg, "b") == -1) {
				b_ok = 0;
				diag("b: the round trip began %llu ms after the previous one "
				     "ended and failed after %llu ms",
				    (unsigned long long)(now - b_last),
				    (unsigned long long)(h_now_ms() - now));
			} else {
				b_trips++;
				b_last = h_now_ms();
			}
			next_b += 200;
			continue;
		}
		if (a_closed < 0) {
			r = peer_closed(a, 20);
			if (r == 1)
				a_closed = (long)(h_now_ms() - a_last);
			else if (r == -1)
				break;
		} else {
			if (timeouts_seen == 0 && h_stat("timeouts") >= 1)
				timeouts_seen = h_stat("timeouts");
			poll(NULL, 0, 20);
		}
		if (!b_ok || (a_closed >= 0 && timeouts_seen > 0 && now - b_start >= 2500))
			break;
	}
	ok(a_closed >= 0, "idle: the silent connection is closed within 10 s (%ld ms)", a_closed);
	ok(a_closed >= 800, "idle: ... but not before its 1 s idle time");
	ok(b_ok && h_now_ms() - b_start >= 2500,
	    "idle: the talking connection stays open (%d round trips in %llu ms)", b_trips,
	    (unsigned long long)(h_now_ms() - b_start));
	is(timeouts_seen, 1, "idle: timeouts counts exactly the silent connection");
	close(a);
	close(b);
	ok(h_wait_stat("closed", 2, 10000), "idle: both connections are closed");
	is(h_stat("timeouts"), 1, "idle: closing the talking one is not a timeout");

	/* Phase two needs another config in the same pid and stats files. */
	kill(pid, SIGTERM);
	if (h_wait_exit(pid, 10000, &status) == -1) {
		h_kill(pid);
		bail("sluiced did not stop within 10 s of SIGTERM");
	}
}

/*
 * A listener that never accepts, with backlog 0: once its accept queue holds
 * a connection, the kernel drops further SYNs, so connects to it hang. Fills
 * the queue with our own connections (kept in fds). Returns the listener, or
 * -1 when connects never started to hang.
 */
static int
blackhole(int port, int *fds, int *nfds)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd == -1 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(lfd, 0) == -1)
		bail("cannot listen on port %d: %s", port, strerror(errno));
	*nfds = 0;
	while (*nfds < FILL_MAX) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};

		if (fd == -1)
			bail("socket: %s", strerror(errno));
		fds[(*nfds)++] = fd;
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			continue;
		if (errno != EINPROGRESS)
			bail("connect to the blackhole: %s", strerror(errno));
		if (poll(&pfd, 1, 200) == 0) {
			diag("connect attempt %d to a full accept queue hangs", *nfds);
			return lfd;
		}
	}
	close(lfd);
	return -1;
}

static void
connect_timeout(void)
{
	int hole = h_free_port(), lport = h_free_port(), fds[FILL_MAX], nfds, lfd, fd;
	const char *conf;
	long ms = -1;
	uint64_t start;

	lfd = blackhole(hole, fds, &nfds);
	if (lfd == -1) {
		skip(3,
		    "connects to a full accept queue (listen backlog 0) still "
		    "complete within 200 ms on this kernel after %d attempts",
		    FILL_MAX);
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return;
	}
	/* A long idle time: only the connect timeout may close this client. */
	conf = h_conf(
	    "connect.conf", 1, lport, &hole, 1, "timeouts = { connect = \"1s\"; idle = \"1h\"; };");
	h_sluiced_start(conf, lport, 1);

	fd = h_connect(lport, 5000);
	if (fd == -1)
		bail("cannot connect to sluiced: %s", strerror(errno));
	start = h_now_ms();
	for (int i = 0; i < 500 && h_now_ms() - start < 10000; i++) {
		int r = peer_closed(fd, 20);

		if (r == 1) {
			ms = (long)(h_now_ms() - start);
			break;
		}
		if (r == -1)
			break;
	}
	ok(ms >= 0,
	    "connect: a client whose upstream never answers is closed within 10 s "
	    "(%ld ms)",
	    ms);
	ok(ms >= 800, "connect: ... but not before the 1 s connect timeout");
	ok(h_wait_stat("timeouts", 1, 5000), "connect: timeouts counts it");
	close(fd);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	close(lfd);
}

int
main(void)
{
	idle_timeout();
	connect_timeout();
	done_testing();
	return tap_exit();
}
