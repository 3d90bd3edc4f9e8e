/* SPDX-License-Identifier: BSD-2-Clause */
/* i_watchfail.c — the kernel refusing to watch a session's socket (epoll's
 * max_user_watches, ENOSPC, or memory, ENOMEM), injected by faultshim into
 * the workers' epoll_ctl. A client whose socket cannot be watched is refused
 * and counted; one whose upstream socket cannot be is closed without the
 * server being blamed; neither leaks a session object, and the clients after
 * the fault are served. Sessions a reload hands to new workers that cannot
 * watch them go back to the old workers and keep relaying: none is lost,
 * and they move once the new workers can take them. Functional assertions
 * only. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

#define WAIT 10000
#define TRIES 8
#define HELD 6

static const char *watch;

/* Clients that connect while the fault holds: each must be closed by the
 * proxy without an echo. Returns how many were. */
static int
refused_clients(int port, int n)
{
	int closed = 0;

	for (int i = 0; i < n; i++) {
		int fd = h_connect(port, WAIT);

		if (fd == -1)
			continue;
		closed += h_round_trip(fd, WAIT) != 0;
		close(fd);
	}
	return closed;
}

/* Every session object back in its pool, no client open. */
static int
nothing_held(void)
{
	uint64_t end = h_now_ms() + WAIT;

	while (h_now_ms() < end) {
		if (h_stat("active") == 0 && h_stat("pool_sessions_used") == 0)
			return 1;
		h_nap(20);
	}
	diag("active %llu, session objects in use %llu", (unsigned long long)h_stat("active"),
	    (unsigned long long)h_stat("pool_sessions_used"));
	return 0;
}

static int
served(int port)
{
	int fd = h_connect(port, WAIT), rc;

	rc = fd != -1 && h_round_trip(fd, WAIT) == 0;
	if (fd != -1)
		close(fd);
	return rc;
}

/* Every held client still echoes. */
static int
all_echo(const int *fds, int n)
{
	int good = 0;

	for (int i = 0; i < n; i++)
		good += fds[i] != -1 && h_round_trip(fds[i], WAIT) == 0;
	if (good != n)
		diag("%d of %d held clients echo", good, n);
	return good == n;
}

int
main(void)
{
	int port = h_free_port(), eport = h_free_port(), held[HELD];
	const char *conf;
	uint64_t refused0, closed0, failures0;
	pid_t master;
	int given;

	h_echod_start(eport);
	watch = strdup(h_path("watch.errno")); /* h_path's buffer is reused */
	conf = h_conf("watchfail.conf", 2, port, &eport, 1, "user = \"root\";\n");
	h_preload("faultshim.so");
	setenv("FAULTSHIM_DEPTH", "1", 1);
	setenv("FAULTSHIM_WATCH_FILE", watch, 1);
	master = h_sluiced_start(conf, port, 2);
	h_preload(NULL);
	unsetenv("FAULTSHIM_DEPTH");
	unsetenv("FAULTSHIM_WATCH_FILE");
	ok(served(port), "a client is served before any fault");

	/* The client's socket. */
	refused0 = h_stat("refused_no_memory");
	h_write_file(watch, "%d %d 0\n", ENOSPC, port);
	is(refused_clients(port, TRIES), TRIES,
	    "with no epoll watch left for client sockets, %d clients are closed unserved", TRIES);
	ok(h_wait_stat("refused_no_memory", refused0 + TRIES, WAIT),
	    "  each counted as refused for want of memory");
	ok(nothing_held(), "  no session object or connection is left behind");
	unlink(watch);
	ok(served(port), "  the fault gone, the next client is served");

	/* The upstream socket. */
	closed0 = h_stat("closed");
	failures0 = h_stat("connect_failures");
	h_write_file(watch, "%d %d 0\n", ENOMEM, -port);
	is(refused_clients(port, TRIES), TRIES,
	    "with no memory to watch upstream sockets, %d clients are closed unserved", TRIES);
	ok(h_wait_stat("closed", closed0 + TRIES, WAIT) && nothing_held(),
	    "  all closed, no session object or connection left behind");
	unlink(watch);
	ok(served(port) && h_stat("connect_failures") == failures0 &&
	        !h_file_contains(h_path("sluiced.log"), "is DOWN"),
	    "  the fault gone, the next client is served; the server was not blamed");

	/* A reload whose new workers cannot watch the sockets handed to them. */
	for (int i = 0; i < HELD; i++)
		held[i] = h_connect(port, WAIT);
	ok(all_echo(held, HELD), "%d clients held open", HELD);
	given = h_count_lines(h_path("sluiced.log"), "a session given back");
	h_write_file(watch, "%d %d 1\n", ENOSPC, port);
	kill(master, SIGHUP);
	{
		uint64_t end = h_now_ms() + WAIT;

		while (h_now_ms() < end &&
		       h_count_lines(h_path("sluiced.log"), "a session given back") == given)
			h_nap(20);
	}
	ok(h_count_lines(h_path("sluiced.log"), "a session given back") > given,
	    "a reload: the new workers cannot watch the sessions offered to them and give them "
	    "back");
	ok(all_echo(held, HELD) && h_stat("handoff_rejected") == 0,
	    "  every held client still echoes through its old worker, none rejected");
	unlink(watch);
	{
		uint64_t end = h_now_ms() + 30000;

		while (h_now_ms() < end && (h_gen_slots(1, 0) != 0 || h_stat("handed_in") < HELD))
			h_nap(50);
	}
	ok(h_gen_slots(1, 0) == 0 && h_stat("handed_in") >= HELD,
	    "  the fault gone, the sessions move to the new workers and the old ones leave "
	    "(%llu handed in)",
	    (unsigned long long)h_stat("handed_in"));
	ok(all_echo(held, HELD), "  and every held client still echoes");
	is(h_count_lines(h_path("sluiced.log"), "lost"), 0, "no session was lost");
	for (int i = 0; i < HELD; i++)
		if (held[i] != -1)
			close(held[i]);
	h_stop_sluiced(master, SIGTERM, WAIT);
	done_testing();
	return tap_exit();
}
