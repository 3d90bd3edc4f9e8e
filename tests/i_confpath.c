/* SPDX-License-Identifier: BSD-2-Clause */
/* i_confpath.c — integration test of the configuration path: sluiced started
 * on a symbolic link, given relative to its working directory (as a
 * Kubernetes ConfigMap or a "current -> release/N" layout has it), re-reads
 * the link on reload, so switching the link to another file and reloading
 * puts that file in effect. Runs sluiced and echod as children of this test
 * on loopback ports; it signals only the processes it started. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

#define WORKERS 2

/* Point link at target atomically, as a deployment switch does. */
static void
relink(const char *target, const char *link)
{
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s.new", link);
	unlink(tmp);
	if (symlink(target, tmp) == -1 || rename(tmp, link) == -1)
		bail("symlink %s -> %s: %s", link, target, strerror(errno));
}

static int
echo_ok(int port)
{
	size_t sizes[4] = { 1000, 2000, 3000, 4000 };

	return h_echo_many(port, 4, sizes, 0, 20000) == 4;
}

int
main(void)
{
	int ep = h_free_port(), pa, pb, status;
	pid_t master;
	uint64_t end;

	h_echod_start(ep);
	pa = h_free_port();
	pb = h_free_port();
	h_conf("release-1.conf", WORKERS, pa, &ep, 1, NULL);
	h_conf("release-2.conf", WORKERS, pb, &ep, 1, NULL);
	if (chdir(h_dir()) == -1)
		bail("chdir %s: %s", h_dir(), strerror(errno));
	relink("release-1.conf", "current.conf");

	/* Relative on purpose: sluiced must make it absolute itself. */
	master = h_sluiced_start("current.conf", pa, WORKERS);
	ok(echo_ok(pa), "started through the link: release 1's port %d relays", pa);
	is(h_port_refuses(pb), 1, "release 2's port %d is closed", pb);

	relink("release-2.conf", "current.conf");
	ok(kill(master, SIGHUP) == 0, "link switched to release 2, SIGHUP sent");
	ok(h_wait_file_contains(h_path("sluiced.log"), "generation 2", 10000),
	    "the master reloaded");
	end = h_now_ms() + 10000;
	while (h_port_refuses(pb) != 0 && h_now_ms() < end)
		h_nap(20);
	ok(echo_ok(pb), "release 2 is in effect: port %d relays", pb);
	end = h_now_ms() + 10000;
	while (h_port_refuses(pa) != 1 && h_now_ms() < end)
		h_nap(20);
	is(h_port_refuses(pa), 1, "release 1's port %d is closed", pa);
	ok(!h_file_contains(h_path("sluiced.log"), "reload failed"), "no reload failed");

	/* And back, which a path pinned at start would never see either. */
	relink("release-1.conf", "current.conf");
	ok(kill(master, SIGHUP) == 0, "link switched back to release 1, SIGHUP sent");
	end = h_now_ms() + 10000;
	while (h_port_refuses(pa) != 0 && h_now_ms() < end)
		h_nap(50);
	ok(echo_ok(pa), "release 1 is in effect again: port %d relays", pa);

	ok(kill(master, SIGTERM) == 0, "SIGTERM sent");
	ok(h_wait_exit(master, 15000, &status) == 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "master exited 0");
	done_testing();
	return tap_exit();
}
