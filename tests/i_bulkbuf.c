/* SPDX-License-Identifier: BSD-2-Clause */
/* i_bulkbuf.c — the bulk buffers' budget spent: with splice off, 300 servers
 * stream to clients that do not read, so each session holds the bytes its
 * client cannot take. The first 256 wait in bulk buffers (all there are),
 * the rest fall back to small ones (pool_bulk_failed counts the refusals);
 * then the clients read, and every byte arrives in order, and every buffer
 * of both kinds goes back. The test process is both the clients and the
 * backend. */
#include <errno.h>
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

#define CONNS 300
#define BYTES (64u << 10) /* per connection, server to client */

static int cfd[CONNS], sfd[CONNS];
static size_t sent[CONNS], got[CONNS];
static int bad[CONNS];

static unsigned char
pattern(int c, size_t i)
{
	return (unsigned char)(i * 7 + (size_t)c * 13 + (i >> 11));
}

/* A client with a small receive buffer (set before connect, so the window
 * is small from the start). */
static int
small_client(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), small = 4096;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Push what the servers' sockets take now. Returns bytes sent. */
static size_t
push(void)
{
	static unsigned char buf[BYTES];
	size_t total = 0;

	for (int c = 0; c < CONNS; c++) {
		ssize_t m;

		if (sfd[c] == -1 || sent[c] == BYTES)
			continue;
		for (size_t i = sent[c]; i < BYTES; i++)
			buf[i - sent[c]] = pattern(c, i);
		m = send(sfd[c], buf, BYTES - sent[c], MSG_DONTWAIT | MSG_NOSIGNAL);
		if (m > 0) {
			sent[c] += (size_t)m;
			total += (size_t)m;
		}
		if (sent[c] == BYTES) {
			close(sfd[c]); /* FIN after the last byte */
			sfd[c] = -1;
		}
	}
	return total;
}

/* Read what the clients have. Returns 1 when every client saw EOF. */
static int
pull(void)
{
	static unsigned char buf[1 << 16];
	int open = 0;

	for (int c = 0; c < CONNS; c++) {
		ssize_t m;

		if (cfd[c] == -1)
			continue;
		m = recv(cfd[c], buf, sizeof(buf), MSG_DONTWAIT);
		if (m > 0) {
			for (ssize_t i = 0; i < m; i++)
				if (buf[i] != pattern(c, got[c] + (size_t)i))
					bad[c] = 1;
			got[c] += (size_t)m;
		} else if (m == 0 || (errno != EAGAIN && errno != EINTR)) {
			close(cfd[c]);
			cfd[c] = -1;
			continue;
		}
		open++;
	}
	return open == 0;
}

static int
wait_stat_eq(const char *field, uint64_t want, int ms)
{
	uint64_t end = h_now_ms() + (uint64_t)ms, v;

	do {
		if ((v = h_stat(field)) == want)
			return 1;
		h_nap(50);
	} while (h_now_ms() < end);
	diag("%s is %llu, wanted %llu", field, (unsigned long long)v, (unsigned long long)want);
	return 0;
}

int
main(void)
{
	int lport = h_free_port(), bport = h_free_port(), lfd = h_listen(bport), made = 0;
	const char *conf;
	pid_t master;
	uint64_t end, small_used;
	size_t total = 0, want = (size_t)CONNS * BYTES, have = 0;
	int intact = 1;

	/* 1K bulk buffers with a 1M budget: a quarter, 256K, is the least
	 * that has bulk buffers at all (256 of them). The listener's small
	 * send buffer keeps what the kernel holds per client small. */
	conf = h_conf("bulk.conf", 1, lport, &bport, 1,
	    "pool = { splice = false; buffer_size = 512; bulk_buffer_size = \"1K\"; "
	    "max_memory = \"1M\"; };\n"
	    "limits = { max_connections = 1000; };\n"
	    "timeouts = { idle = \"5m\"; };\n");
	{
		/* The listener's send buffer: the harness config has one
		 * listener; set it in place. */
		char *text = h_read_file(conf), *at = text ? strstr(text, "upstream = \"app\"; }") : NULL;

		if (at == NULL)
			bail("unexpected harness config");
		*at = '\0';
		h_write_file(conf, "%supstream = \"app\"; sndbuf = 4096; }%s", text,
		    at + strlen("upstream = \"app\"; }"));
		free(text);
	}
	master = h_sluiced_start(conf, lport, 1);

	for (int c = 0; c < CONNS; c++) {
		cfd[c] = small_client(lport);
		sfd[c] = cfd[c] == -1 ? -1 : h_accept(lfd, 5000);
		if (cfd[c] != -1 && sfd[c] != -1)
			made++;
		else
			diag("connection %d not made", c);
	}
	is(made, CONNS, "%d connections through sluiced", CONNS);

	/* Stream until nothing more fits anywhere: every session then holds
	 * bytes its client cannot take. */
	end = h_now_ms() + 60000;
	{
		uint64_t quiet_since = h_now_ms();

		while (h_now_ms() < end && h_now_ms() - quiet_since < 1500) {
			size_t m = push();

			total += m;
			if (m > 0)
				quiet_since = h_now_ms();
			else
				h_nap(20);
		}
	}
	diag("the servers' sockets took %zu of %zu bytes before the clients read", total, want);
	/* Pool figures are published once a second. */
	ok(wait_stat_eq("pool_bulk_used", 256, 5000), "all 256 bulk buffers hold waiting bytes");
	small_used = h_stat("pool_buffers_used");
	ok(h_stat("pool_bulk_failed") > 0 && small_used >= (uint64_t)(CONNS - 256),
	    "the rest wait in small buffers (%llu), the bulk refusals counted (%llu)",
	    (unsigned long long)small_used, (unsigned long long)h_stat("pool_bulk_failed"));
	is(h_stat("refused") + h_stat("closed"), 0, "nobody was refused or cut");

	/* Now the clients read everything, while the servers send the rest. */
	end = h_now_ms() + 120000;
	while (h_now_ms() < end) {
		push();
		if (pull())
			break;
		h_nap(5);
	}
	for (int c = 0; c < CONNS; c++) {
		have += got[c];
		if (bad[c] || got[c] != BYTES) {
			if (intact)
				diag("connection %d: %zu of %u bytes%s", c, got[c], BYTES,
				    bad[c] ? ", damaged" : "");
			intact = 0;
		}
	}
	ok(intact, "every client got its %u bytes in order (%zu of %zu in all)", BYTES, have, want);
	ok(h_wait_stat("closed", CONNS, 30000), "every session closed");
	ok(wait_stat_eq("pool_bulk_used", 0, 5000) && wait_stat_eq("pool_buffers_used", 0, 5000),
	    "every buffer of both kinds went back");
	close(lfd);
	kill(master, SIGTERM);
	is(h_wait_exit(master, 15000, NULL), 0, "sluiced stopped");
	done_testing();
	return tap_exit();
}
