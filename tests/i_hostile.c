/* SPDX-License-Identifier: BSD-2-Clause */
/* i_hostile.c — hostile peers at every state of a session, while verified
 * streams run beside them: clients that reset while owing a PROXY header,
 * half way through one, with garbage, while their bytes wait for a server
 * that does not read, after a half-close, a connect flood; servers that
 * reset mid-stream, accept and close at once, or never accept. The daemon
 * must keep serving, lose no byte of the verified streams, and end with
 * every session closed and counted, its buffers back and its descriptors at
 * their baseline. Functional assertions only. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

#define STREAMS 12

static void
reset_close(int fd)
{
	struct linger lg = { 1, 0 };

	if (fd == -1)
		return;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* A listening socket whose accept queue is full and never served: further
 * connects to it stay pending (their SYNs are dropped). */
static int
full_listener(int port, int *filler)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(fd, 0) == -1)
		bail("full_listener: %s", strerror(errno));
	/* A backlog of 0 still queues one connection: fill it. */
	*filler = h_connect(port, 2000);
	return fd;
}

/* Play the "bad" backend for n connections: each is accepted, reads what
 * comes for a moment, then is reset (odd ones) or closed at once (even). */
static void
bad_backend(int lfd, int n)
{
	for (int i = 0; i < n; i++) {
		int fd = h_accept(lfd, 5000);
		char buf[4096];

		if (fd == -1)
			return;
		if (i % 2) {
			h_read_n(fd, buf, 1000, 500);
			reset_close(fd);
		} else {
			close(fd);
		}
	}
}

int
main(void)
{
	int eport = h_free_port(), pport = h_free_port(), bport = h_free_port();
	int cport = h_free_port(), echo = h_free_port(), bad = h_free_port(), stuck = h_free_port();
	int bad_lfd, stuck_lfd, filler, good, fresh, fds_before, fds_after, settled = 0;
	size_t sizes[STREAMS];
	struct h_xfer *x;
	pid_t master, workers[2];
	char big[65536];

	plan(10);
	h_echod_start(echo);
	bad_lfd = h_listen(bad);
	stuck_lfd = full_listener(stuck, &filler);
	h_write_file(h_path("hostile.conf"),
	    "workers = 2;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; connections = true; };\n"
	    "pool = { buffer_size = \"1K\"; max_memory = \"128K\"; };\n"
	    "timeouts = { connect = \"1s\"; proxy_header = \"2s\"; idle = \"30s\"; };\n"
	    "upstreams = ( { name = \"echo\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	    "              { name = \"bad\"; servers = ( \"127.0.0.1:%d\" ); retries = 0; },\n"
	    "              { name = \"stuck\"; servers = ( \"127.0.0.1:%d\" ); retries = 0; } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"echo\"; },\n"
	    "              { listen = \"127.0.0.1:%d\"; upstream = \"echo\";\n"
	    "                accept_proxy = \"any\"; trusted = ( \"127.0.0.1\" ); },\n"
	    "              { listen = \"127.0.0.1:%d\"; upstream = \"bad\"; },\n"
	    "              { listen = \"127.0.0.1:%d\"; upstream = \"stuck\"; } );\n",
	    h_pidfile(), h_statsfile(), echo, bad, stuck, eport, pport, bport, cport);
	master = h_sluiced_start(h_path("hostile.conf"), eport, 2);
	if (h_stats_running(workers, 2, 0) != 2)
		bail("two workers did not start");
	fds_before = h_fd_count(workers[0]) + h_fd_count(workers[1]);

	/* Verified streams, paced so they run through everything below. */
	for (int i = 0; i < STREAMS; i++)
		sizes[i] = (size_t)(200000 + 150000 * i);
	x = h_xfer_start(eport, STREAMS, sizes, 16384);
	memset(big, 'h', sizeof(big));

	for (int round = 0; round < 3; round++) {
		int fd[12], k = 0;

		/* PROXY listener: reset before any byte, mid-header, garbage,
		 * a v2 signature cut short. */
		fd[k++] = h_connect(pport, 2000);
		fd[k] = h_connect(pport, 2000);
		send(fd[k++], "PROXY TCP4 10.0.0.1 10.0.0", 26, MSG_NOSIGNAL);
		fd[k] = h_connect(pport, 2000);
		send(fd[k++], "GET / HTTP/1.0\r\n\r\n", 18, MSG_NOSIGNAL);
		fd[k] = h_connect(pport, 2000);
		send(fd[k++], "\r\n\r\n\0\r\nQUIT\n\x21\x11\x00", 15, MSG_NOSIGNAL);
		/* Relaying: bytes waiting for the client, which resets; and a
		 * client that half-closes, then resets. */
		fd[k] = h_connect(eport, 2000);
		for (int j = 0; j < 8; j++)
			send(fd[k], big, sizeof(big), MSG_NOSIGNAL | MSG_DONTWAIT);
		k++;
		fd[k] = h_connect(eport, 2000);
		send(fd[k], "half\n", 5, MSG_NOSIGNAL);
		shutdown(fd[k++], SHUT_WR);
		/* A server that resets or closes at once, and one that never
		 * accepts (the session sits connecting until its timeout). */
		fd[k] = h_connect(bport, 2000);
		send(fd[k++], big, 2000, MSG_NOSIGNAL);
		fd[k] = h_connect(bport, 2000);
		send(fd[k++], "x", 1, MSG_NOSIGNAL);
		fd[k] = h_connect(cport, 2000);
		send(fd[k++], "never\n", 6, MSG_NOSIGNAL);
		h_xfer_run(x, 50);
		bad_backend(bad_lfd, 2);
		h_xfer_run(x, 50);
		for (int j = 0; j < k; j++)
			reset_close(fd[j]);
		/* A connect flood: open and drop at once. */
		for (int j = 0; j < 100; j++) {
			int f = h_connect(eport, 2000);

			if (j % 2)
				reset_close(f);
			else if (f != -1)
				close(f);
		}
		h_xfer_run(x, 300);
	}
	good = h_xfer_finish(x, 120000);
	is(good, STREAMS, "every verified stream came back intact beside the hostile peers");
	fresh = h_connect(eport, 5000);
	ok(fresh != -1 && h_round_trip(fresh, 5000) == 0, "a new client is served");
	if (fresh != -1)
		close(fresh);
	fresh = h_connect(pport, 5000);
	ok(fresh != -1 && send(fresh, "PROXY UNKNOWN\r\n", 15, MSG_NOSIGNAL) == 15 &&
	        h_round_trip(fresh, 5000) == 0,
	    "a new PROXY client is served");
	if (fresh != -1)
		close(fresh);

	/* Everything settles: no session open, every one counted. */
	{
		uint64_t end = h_now_ms() + 20000;

		while (!settled && h_now_ms() < end) {
			uint64_t a = h_stat("accepted"), c = h_stat("closed"), act = h_stat("active");

			settled = a != UINT64_MAX && act == 0 && a == c;
			if (!settled)
				h_nap(100);
		}
	}
	ok(settled, "every session closed and counted (accepted %llu, closed %llu, active %llu)",
	    (unsigned long long)h_stat("accepted"), (unsigned long long)h_stat("closed"),
	    (unsigned long long)h_stat("active"));
	ok(h_stat("refused_proxy_rejected") >= 6, "bad headers were refused and counted");
	ok(h_stat("closed_connect_timeout") >= 3, "connects that never completed timed out");
	{
		/* Pool figures are published once a second: poll. */
		uint64_t end = h_now_ms() + 5000;

		while ((h_stat("pool_buffers_used") != 0 || h_stat("pool_bulk_used") != 0) &&
		       h_now_ms() < end)
			h_nap(100);
		is(h_stat("pool_buffers_used"), 0, "every relay buffer is back in the pools");
		is(h_stat("pool_bulk_used"), 0, "every bulk buffer is back in the pools");
	}
	fds_after = h_fd_count(workers[0]) + h_fd_count(workers[1]);
	ok(fds_after <= fds_before + 2 * 32 * 2,
	    "the workers hold no descriptor of a closed session (%d before, %d after, idle pipes "
	    "aside)",
	    fds_before, fds_after);
	ok(h_alive(workers[0]) && h_alive(workers[1]), "no worker died");
	close(filler);
	close(stuck_lfd);
	close(bad_lfd);
	kill(master, SIGTERM);
	h_wait_exit(master, 10000, NULL);
	return tap_exit();
}
