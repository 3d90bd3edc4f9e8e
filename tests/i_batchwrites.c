/* SPDX-License-Identifier: BSD-2-Clause */
/* i_batchwrites.c — pool.batch_writes: a message read waits in its buffer
 * and is written once the wake-up's other reads are done. Every byte still
 * arrives, in order, with its half-close after it, whether messages come
 * paced or in bulk, with splice on or off; round trips on many connections
 * at once all come back; and no relay buffer is left held afterwards, also
 * when clients reset with their message still waiting. Functional
 * assertions only. */
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

#define WAIT 20000
#define NRR 40
#define ROUNDS 50

static const size_t sizes[] = {
    1, 63, 64, 1000, 4095, 4096, 4097, 20000, 65536, 300000, 1 << 20, 7, 2 << 20, 128, 33333, 5};
#define NSIZES (int)(sizeof(sizes) / sizeof(sizes[0]))

/* All relay buffers back and no connection open. */
static int
settled(void)
{
	uint64_t end = h_now_ms() + WAIT;

	while (h_now_ms() < end) {
		if (h_stat("active") == 0 && h_stat("pool_buffers_used") == 0 &&
		    h_stat("pool_bulk_used") == 0)
			return 1;
		h_nap(20);
	}
	diag("active %llu, buffers in use %llu, bulk %llu", (unsigned long long)h_stat("active"),
	    (unsigned long long)h_stat("pool_buffers_used"),
	    (unsigned long long)h_stat("pool_bulk_used"));
	return 0;
}

/* Lockstep rounds of requests on NRR connections: how many answered all. */
static int
lockstep(int port, int rounds)
{
	int fds[NRR], good = 0;

	for (int i = 0; i < NRR; i++)
		fds[i] = h_connect(port, WAIT);
	for (int r = 0; r < rounds; r++) {
		/* Every connection's request goes out before any answer is
		 * read: the worker wakes to many reads at once. */
		for (int i = 0; i < NRR; i++)
			if (fds[i] != -1 && send(fds[i], "ping\n", 5, MSG_NOSIGNAL) != 5) {
				close(fds[i]);
				fds[i] = -1;
			}
		for (int i = 0; i < NRR; i++) {
			char buf[5];

			if (fds[i] != -1 && (h_read_n(fds[i], buf, 5, WAIT) != 5 ||
			                        memcmp(buf, "ping\n", 5) != 0)) {
				close(fds[i]);
				fds[i] = -1;
			}
		}
	}
	for (int i = 0; i < NRR; i++)
		if (fds[i] != -1) {
			good++;
			close(fds[i]);
		}
	return good;
}

static void
one_config(int eport, int splice)
{
	int port = h_free_port(), good;
	char extra[128], name[32];
	const char *conf;
	pid_t master;

	snprintf(extra, sizeof(extra), "pool = { batch_writes = true; splice = %s; };\n",
	    splice ? "true" : "false");
	snprintf(name, sizeof(name), "bw%d.conf", splice);
	conf = h_conf(name, 2, port, &eport, 1, extra);
	master = h_sluiced_start(conf, port, 2);

	is(h_echo_many(port, NSIZES, sizes, 1000, WAIT * 3), NSIZES,
	    "splice %s: %d paced transfers of 1 B to 2 MiB come back whole, then EOF",
	    splice ? "on" : "off", NSIZES);
	is(h_echo_many(port, NSIZES, sizes, 0, WAIT * 3), NSIZES, "  and as fast as they go");
	good = lockstep(port, ROUNDS);
	is(good, NRR,
	    "  %d connections x %d rounds of requests sent together: every answer "
	    "comes back",
	    NRR, ROUNDS);
	ok(settled(), "  every connection closed, no relay buffer left held");
	h_stop_sluiced(master, SIGTERM, WAIT);
}

/* Clients that reset right after sending, their message maybe still
 * waiting in its buffer for the end of the wake-up. */
static void
resets(int eport)
{
	int port = h_free_port();
	const char *conf =
	    h_conf("bwr.conf", 1, port, &eport, 1, "pool = { batch_writes = true; };\n");
	pid_t master = h_sluiced_start(conf, port, 1);

	for (int i = 0; i < 20; i++) {
		int fd = h_connect(port, WAIT);
		struct linger lg = {1, 0};

		if (fd == -1)
			continue;
		(void)send(fd, "ping\n", 5, MSG_NOSIGNAL);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
	}
	ok(settled(), "20 clients reset right after their message: nothing left held");
	is(lockstep(port, 5), NRR, "  and the next clients are served");
	h_stop_sluiced(master, SIGTERM, WAIT);
}

int
main(void)
{
	int eport = h_free_port();
	pid_t echo = h_echod_start(eport);

	one_config(eport, 1);
	one_config(eport, 0);
	resets(eport);
	h_kill(echo);
	done_testing();
	return tap_exit();
}
