/* SPDX-License-Identifier: BSD-2-Clause */
/* i_overload.c — overload without harm: the per-worker and global connection
 * limits stop accepting at the limit and resume below it (waiting clients are
 * served, not refused); running out of descriptors pauses accepting instead of
 * spinning and loses no client; a spent buffer budget makes relays wait, never
 * abort, and every byte still arrives. Functional assertions only. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

/* Is an echo already waiting on fd within timeout_ms (data sent earlier)? */
static int
echo_arrives(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[16];

	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	return recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0;
}

/* n clients each with one round trip done; the (n+1)th connects (the kernel
 * queues it) but must not be served until one of the n leaves. */
static void
limit_case(const char *what, int workers, const char *extra, int n)
{
	int port = h_free_port(), eport = h_free_port(), fds[16], extra_fd, good = 0;
	pid_t master;
	char name[32];

	h_echod_start(eport);
	snprintf(name, sizeof(name), "%s.conf", what);
	master = h_sluiced_start(h_conf(name, workers, port, &eport, 1, extra), port, workers);
	for (int i = 0; i < n; i++) {
		fds[i] = h_connect(port, 5000);
		good += fds[i] != -1 && h_round_trip(fds[i], 5000) == 0;
	}
	is(good, n, "%s: %d clients served up to the limit", what, n);
	extra_fd = h_connect(port, 5000);
	ok(extra_fd != -1 && send(extra_fd, "wait\n", 5, MSG_NOSIGNAL) == 5,
	    "%s: one more client connects (queued by the kernel)", what);
	ok(!echo_arrives(extra_fd, 500), "%s: and is not served at the limit", what);
	ok(h_stat("accept_pauses") >= 1, "%s: the pause is counted", what);
	close(fds[0]);
	ok(echo_arrives(extra_fd, 10000), "%s: served once a client leaves", what);
	close(extra_fd);
	for (int i = 1; i < n; i++)
		close(fds[i]);
	kill(master, SIGTERM);
	is(h_wait_exit(master, 10000, NULL), 0, "%s: sluiced stopped", what);
}

/* Worker CPU seconds (utime + stime) from /proc, in clock ticks. */
static long
cpu_ticks(pid_t pid)
{
	char path[64], *text, *p;
	long ut = -1, st = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((text = h_read_file(path)) == NULL)
		return -1;
	/* Fields 14 and 15, counted after the ")" that ends the name. */
	if ((p = strrchr(text, ')')) != NULL)
		sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st);
	free(text);
	return ut < 0 ? -1 : ut + st;
}

/* Descriptors run out: accepting pauses (no busy loop), clients already in
 * are served, and the ones that waited are served once others leave. */
static void
fd_case(void)
{
	int port = h_free_port(), eport = h_free_port(), fds[40], done[40] = { 0 }, served = 0,
	    alive = 0;
	struct rlimit rl = { 64, 64 };
	long t0, t1;
	pid_t master, worker;

	h_echod_start(eport);
	/* sluiced inherits this; our own 40 clients fit in it too. */
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		bail("setrlimit: %s", strerror(errno));
	master = h_sluiced_start(h_conf("fds.conf", 1, port, &eport, 1,
	                             "limits = { max_connections_per_worker = 1000; };"),
	    port, 1);
	ok(h_file_contains(h_path("sluiced.log"), "cannot fit"),
	    "fds: start-up warns that the limits cannot fit in the descriptors");
	h_stats_running(&worker, 1, 0);
	for (int i = 0; i < 40; i++) {
		fds[i] = h_connect(port, 5000);
		if (fds[i] != -1 && send(fds[i], "ping\n", 5, MSG_NOSIGNAL) == 5)
			alive++;
	}
	is(alive, 40, "fds: 40 clients connect (the kernel queues what is not accepted)");
	ok(h_wait_stat("accept_pauses", 1, 10000), "fds: accepting paused on EMFILE");
	for (int i = 0; i < 40; i++)
		if (fds[i] != -1 && echo_arrives(fds[i], 50))
			served += done[i] = 1;
	ok(served > 0 && served < 40, "fds: some clients served, the rest wait (%d served)",
	    served);
	/* While the limit holds, the worker must not spin: over a second it
	 * may use a small part of a second, never most of it. */
	t0 = cpu_ticks(worker);
	{
		uint64_t end = h_now_ms() + 1000;

		while (h_now_ms() < end)
			poll(NULL, 0, (int)(end - h_now_ms()));
	}
	t1 = cpu_ticks(worker);
	ok(t0 >= 0 && t1 - t0 < sysconf(_SC_CLK_TCK) / 2,
	    "fds: no busy loop while out of descriptors (%ld ticks in 1 s)", t1 - t0);
	/* Let the served ones go; the waiting ones must get their turn. */
	for (int i = 0; i < 40; i++)
		if (fds[i] != -1 && done[i]) {
			close(fds[i]);
			fds[i] = -1;
		}
	{
		int later = 0, waiting = 0;

		for (int i = 0; i < 40; i++)
			if (fds[i] != -1) {
				waiting++;
				if (echo_arrives(fds[i], 10000))
					later++;
				else
					diag("waiting client %d was not served", i);
				close(fds[i]);
				fds[i] = -1;
			}
		/* None lost: a client accepted without a descriptor for its
		 * server waited for one instead of being closed. */
		ok(waiting > 0 && later == waiting, "fds: the %d waiting clients were served (%d)",
		    waiting, later);
	}
	ok(h_alive(master), "fds: sluiced kept running");
	kill(master, SIGTERM);
	is(h_wait_exit(master, 10000, NULL), 0, "fds: sluiced stopped");
}

static int
listen_small(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, small = 4096;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1 || listen(fd, 128) == -1)
		bail("listen: %s", strerror(errno));
	return fd;
}

/* The buffer budget is spent: sessions wait for buffers, new clients wait in
 * the listen queue, nothing aborts, and every byte arrives once the server
 * reads. The test is the server, and does not read at first. */
static void
memory_case(void)
{
/* More per connection than the kernel buffers on the way hold (a few
 * hundred KB), so bytes wait inside sluiced, and more connections than the
 * budget has buffers, so some sessions must wait for one. */
#define MEM_CONNS 80
#define MEM_BYTES (4 * 1024 * 1024)
	int port = h_free_port(), sport = h_free_port(), lfd = listen_small(sport);
	int cfd[MEM_CONNS], bfd[MEM_CONNS], nb = 0, complete = 0;
	size_t sent[MEM_CONNS] = { 0 }, got[MEM_CONNS] = { 0 };
	static unsigned char buf[65536];
	uint64_t end;
	pid_t master;

	memset(buf, 'm', sizeof(buf));
	/* 64 buffers of 4 KB, no splice: buffers are the only place bytes can
	 * wait inside sluiced. */
	master = h_sluiced_start(h_conf("mem.conf", 1, port, &sport, 1,
	                             "pool = { buffer_size = \"4K\"; max_memory = \"256K\"; "
	                             "splice = false; };"),
	    port, 1);
	for (int i = 0; i < MEM_CONNS; i++) {
		cfd[i] = h_connect(port, 5000);
		bfd[i] = -1;
	}
	/* Push while the server does not read, accepting what sluiced opens. */
	end = h_now_ms() + 2000;
	while (h_now_ms() < end) {
		int moved = 0;

		for (int i = 0; i < MEM_CONNS; i++) {
			ssize_t m;

			if (cfd[i] == -1 || sent[i] == MEM_BYTES)
				continue;
			m = send(cfd[i], buf,
			    MEM_BYTES - sent[i] < sizeof(buf) ? MEM_BYTES - sent[i] : sizeof(buf),
			    MSG_DONTWAIT | MSG_NOSIGNAL);
			if (m > 0) {
				sent[i] += (size_t)m;
				moved = 1;
			}
		}
		if (nb < MEM_CONNS) {
			struct pollfd p = { .fd = lfd, .events = POLLIN };

			if (poll(&p, 1, 0) == 1 && (bfd[nb] = accept(lfd, NULL, NULL)) != -1)
				nb++;
		}
		if (!moved)
			poll(NULL, 0, 10);
	}
	/* The budget held: pool figures are published once a second. */
	ok(h_wait_stat("pool_buffers_total", 64, 5000), "memory: the 64-buffer budget was reached");
	ok(h_stat("pool_buffers_total") <= 64, "memory: buffers stay within the budget (%llu)",
	    (unsigned long long)h_stat("pool_buffers_total"));
	ok(h_stat("pool_bytes_mapped") <= 256 * 1024 + 2 * 64 * 1024 + 4096,
	    "memory: pool memory within the budget plus the session chunks (%llu bytes)",
	    (unsigned long long)h_stat("pool_bytes_mapped"));
	ok(h_alive(master), "memory: sluiced alive at the budget");
	/* Now the server reads everything; the clients finish sending. */
	end = h_now_ms() + 30000;
	while (complete < MEM_CONNS && h_now_ms() < end) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };

		if (nb < MEM_CONNS && poll(&p, 1, 0) == 1 && (bfd[nb] = accept(lfd, NULL, NULL)) != -1)
			nb++;
		int moved = 0;

		complete = 0;
		for (int i = 0; i < MEM_CONNS; i++) {
			ssize_t m;

			if (cfd[i] != -1 && sent[i] < MEM_BYTES) {
				m = send(cfd[i], buf,
				    MEM_BYTES - sent[i] < sizeof(buf) ? MEM_BYTES - sent[i] : sizeof(buf),
				    MSG_DONTWAIT | MSG_NOSIGNAL);
				if (m > 0)
					sent[i] += (size_t)m;
			}
			if (i < nb && bfd[i] != -1) {
				while ((m = recv(bfd[i], buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
					got[i] += (size_t)m;
					moved = 1;
				}
				memset(buf, 'm', sizeof(buf));
			}
		}
		for (int i = 0; i < nb; i++)
			complete += got[i] == MEM_BYTES;
		if (complete < MEM_CONNS && !moved)
			poll(NULL, 0, 1);
	}
	{
		size_t total = 0;

		for (int i = 0; i < nb; i++)
			total += got[i];
		is(total, (size_t)MEM_CONNS * MEM_BYTES, "memory: every byte arrived (%d of %d done)",
		    complete, MEM_CONNS);
	}
	ok(h_alive(master), "memory: sluiced never aborted");
	for (int i = 0; i < MEM_CONNS; i++) {
		if (cfd[i] != -1)
			close(cfd[i]);
		if (i < nb && bfd[i] != -1)
			close(bfd[i]);
	}
	close(lfd);
	kill(master, SIGTERM);
	is(h_wait_exit(master, 10000, NULL), 0, "memory: sluiced stopped");
}

int
main(void)
{
	limit_case("per-worker", 1, "limits = { max_connections_per_worker = 3; };", 3);
	limit_case("global", 2, "limits = { max_connections = 4; };", 4);
	memory_case();
	fd_case(); /* last: it lowers this process's descriptor limit for good */
	done_testing();
	return tap_exit();
}
