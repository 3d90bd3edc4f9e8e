/* SPDX-License-Identifier: BSD-2-Clause */
/* i_splice.c — the zero-copy switch and the buffer path's bulk buffers: with
 * pool.splice on, bytes waiting for a slow server sit in a pipe (a worker
 * descriptor "pipe:[...]"); with it off in no pipe but in a bulk buffer
 * (pool_bulk_used), or with bulk_buffer_size = 0 in a small one; every way a
 * bulk transfer arrives byte-exact, and once it has drained the connection
 * holds no pipe and no buffer. A server resetting while its bytes wait in a
 * bulk buffer gives that buffer back. The test process is the backend, so it
 * decides when the server reads. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

/* More than the kernel buffers on the way can hold (client send buffer,
 * sluiced's two sockets): the rest must wait inside sluiced. */
#define BULK (32u << 20)

/* Descriptors of pid that are pipes. */
static int
count_pipes(pid_t pid)
{
	char dir[64], path[320], target[128];
	struct dirent *d;
	DIR *dp;
	int n = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	if ((dp = opendir(dir)) == NULL)
		return -1;
	while ((d = readdir(dp)) != NULL) {
		ssize_t len;

		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len > 0) {
			target[len] = '\0';
			if (strncmp(target, "pipe:", 5) == 0)
				n++;
		}
	}
	closedir(dp);
	return n;
}

static int
listen_on(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, small = 4096;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* A small receive buffer from the start (accepted sockets inherit it;
	 * shrinking it on a live connection makes TCP drop and back off). */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1 || listen(fd, 16) == -1)
		bail("backend listen on %d: %s", port, strerror(errno));
	return fd;
}

static unsigned char
pattern(size_t i)
{
	return (unsigned char)(i * 131 + (i >> 13));
}

enum mode { SPLICE_ON, SPLICE_OFF, SPLICE_OFF_NOBULK, SPLICE_OFF_RESET };

/* Poll a total until it satisfies cmp (1: >= want, 0: == want). */
static int
wait_stat(const char *field, uint64_t want, int at_least, int ms)
{
	uint64_t end = h_now_ms() + (uint64_t)ms, v;

	do {
		v = h_stat(field);
		if (at_least ? v >= want && v != UINT64_MAX : v == want)
			return 1;
		h_nap(50);
	} while (h_now_ms() < end);
	diag("%s is %llu, wanted %s%llu", field, (unsigned long long)v, at_least ? ">= " : "",
	    (unsigned long long)want);
	return 0;
}

static void
run(enum mode how)
{
	static const char *const names[] = { "splice on", "splice off", "splice off, no bulk",
		"splice off, server resets" };
	static const char *const extras[] = { "pool = { splice = true; };",
		"pool = { splice = false; };", "pool = { splice = false; bulk_buffer_size = 0; };",
		"pool = { splice = false; };" };
	const char *mode = names[how];
	int splice_on = how == SPLICE_ON;
	int lport = h_free_port(), sport = h_free_port();
	int lfd = listen_on(sport), cfd, bfd, pipes_during = -1, pipes_after = -1, good = 1;
	char extra[128], name[32];
	static unsigned char buf[1 << 16];
	size_t sent = 0, got = 0;
	uint64_t deadline;
	pid_t master, worker;
	const char *conf;

	snprintf(extra, sizeof(extra), "%s", extras[how]);
	snprintf(name, sizeof(name), "splice%d.conf", (int)how);
	conf = h_conf(name, 1, lport, &sport, 1, extra);
	master = h_sluiced_start(conf, lport, 1);
	if (h_stats_running(&worker, 1, 0) != 1)
		bail("no running worker");

	cfd = h_connect(lport, 5000);
	if (cfd == -1)
		bail("connect to sluiced failed");
	bfd = accept(lfd, NULL, NULL);
	if (bfd == -1)
		bail("accept from sluiced failed: %s", strerror(errno));

	/* Send the bulk while the backend does not read: sluiced must hold
	 * what neither socket can take, and look at how it holds it. */
	deadline = h_now_ms() + 20000;
	while (sent < BULK && h_now_ms() < deadline) {
		struct pollfd p = { .fd = cfd, .events = POLLOUT };
		size_t n = sizeof(buf) < BULK - sent ? sizeof(buf) : BULK - sent;
		ssize_t m;

		if (poll(&p, 1, 200) <= 0)
			break; /* sluiced stopped reading: back-pressure reached */
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(sent + i);
		m = send(cfd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (m > 0)
			sent += (size_t)m;
	}
	ok(sent > 0 && sent < BULK, "%s: the client is held back (%zu of %u bytes sent)", mode,
	    sent, BULK);
	pipes_during = count_pipes(worker);
	if (splice_on)
		ok(pipes_during >= 1, "%s: bytes waiting for the server sit in a pipe (%d pipe fds)",
		    mode, pipes_during);
	else
		is(pipes_during, 0, "%s: no pipe is used", mode);
	if (how == SPLICE_OFF || how == SPLICE_OFF_RESET)
		ok(wait_stat("pool_bulk_used", 1, 1, 5000),
		    "%s: the bytes held back wait in a bulk buffer", mode);
	if (how == SPLICE_OFF_NOBULK) {
		ok(wait_stat("pool_buffers_used", 1, 1, 5000),
		    "%s: the bytes held back wait in a small buffer", mode);
		ok(h_stat("pool_bulk_used") == 0 && h_stat("pool_bulk_bytes_mapped") == 0,
		    "%s: no bulk buffer exists", mode);
	}
	if (how == SPLICE_OFF_RESET) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		/* The server goes away with a reset while its bytes wait. */
		setsockopt(bfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(bfd);
		bfd = -1;
		ok(h_wait_stat("closed_server_error", 1, 10000), "%s: the session ends", mode);
		ok(wait_stat("pool_bulk_used", 0, 0, 5000) && wait_stat("pool_buffers_used", 0, 0, 5000),
		    "%s: its buffer went back", mode);
		close(cfd);
		/* The worker still serves: bytes through a fresh connection. */
		{
			char got4[4];
			int c2 = h_connect(lport, 5000), b2 = c2 == -1 ? -1 : h_accept(lfd, 5000);

			ok(c2 != -1 && b2 != -1 && send(c2, "ping", 4, MSG_NOSIGNAL) == 4 &&
			       h_read_n(b2, got4, 4, 5000) == 4 && memcmp(got4, "ping", 4) == 0,
			    "%s: the worker still relays", mode);
			if (c2 != -1)
				close(c2);
			if (b2 != -1)
				close(b2);
		}
		close(lfd);
		kill(master, SIGTERM);
		is(h_wait_exit(master, 10000, NULL), 0, "%s: sluiced stopped", mode);
		return;
	}

	/* Now the backend reads everything while the client sends the rest. */
	deadline = h_now_ms() + 30000;
	while (got < BULK && h_now_ms() < deadline) {
		struct pollfd p[2] = { { .fd = bfd, .events = POLLIN },
			{ .fd = cfd, .events = sent < BULK ? POLLOUT : 0 } };

		if (poll(p, 2, 500) <= 0)
			continue;
		if (p[1].revents & POLLOUT) {
			size_t n = sizeof(buf) < BULK - sent ? sizeof(buf) : BULK - sent;
			ssize_t m;

			for (size_t i = 0; i < n; i++)
				buf[i] = pattern(sent + i);
			m = send(cfd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (m > 0)
				sent += (size_t)m;
		}
		if (p[0].revents & (POLLIN | POLLHUP)) {
			ssize_t m = recv(bfd, buf, sizeof(buf), MSG_DONTWAIT);

			if (m == -1 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (m <= 0) {
				diag("server side: recv returned %zd (%s) after %zu bytes", m,
				    m ? strerror(errno) : "EOF", got);
				break;
			}
			for (ssize_t i = 0; i < m; i++)
				if (buf[i] != pattern(got + (size_t)i) && good) {
					diag("mismatch at offset %zu", got + (size_t)i);
					good = 0;
				}
			got += (size_t)m;
		}
	}
	ok(got == BULK && good, "%s: the server got all %u bytes intact (%zu)", mode, BULK, got);

	close(cfd);
	close(bfd);
	close(lfd);
	ok(h_wait_stat("closed", 1, 10000), "%s: the connection closed", mode);
	ok(wait_stat("pool_bulk_used", 0, 0, 5000) && wait_stat("pool_buffers_used", 0, 0, 5000),
	    "%s: no buffer is held after", mode);
	pipes_after = count_pipes(worker);
	/* Empty pipes may be kept for reuse, but the data is gone: every pipe
	 * left is in the worker's small idle cache. */
	ok(pipes_after >= 0 && pipes_after <= 2 * 32, "%s: no pipe beyond the idle cache (%d)",
	    mode, pipes_after);
	kill(master, SIGTERM);
	is(h_wait_exit(master, 10000, NULL), 0, "%s: sluiced stopped", mode);
}

int
main(void)
{
	run(SPLICE_ON);
	run(SPLICE_OFF);
	run(SPLICE_OFF_NOBULK);
	run(SPLICE_OFF_RESET);
	done_testing();
	return tap_exit();
}
