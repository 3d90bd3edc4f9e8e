/* SPDX-License-Identifier: BSD-2-Clause */
/* i_reloadfail.c — integration test of a reload whose new generation cannot
 * start: its workers refuse the config (they exit with the config status) or
 * stay short of descriptors past the deadline. The running generation must
 * keep serving, untouched, the failed workers be stopped, and the master say
 * "reload failed, keeping the running configuration: ..."; once the cause is
 * gone a reload goes through. Worker failures come from the fault injector
 * (tests/faultshim.c). Runs sluiced and echod as children of this test on
 * loopback ports and signals only those. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

#define WORKERS 2

static void
shim_on(void)
{
	h_preload("faultshim.so");
	setenv("FAULTSHIM_DEPTH", "1", 1);
	setenv("FAULTSHIM_EPOLL_FILE", h_path("epoll.errno"), 1);
}

static void
shim_off(void)
{
	h_preload(NULL);
	unsetenv("FAULTSHIM_DEPTH");
	unsetenv("FAULTSHIM_EPOLL_FILE");
}

/* New workers fail their first epoll_create1 with err (0: they do not). */
static void
fail_workers_with(int err)
{
	if (err == 0)
		unlink(h_path("epoll.errno"));
	else
		h_write_file(h_path("epoll.errno"), "%d\n", err);
}

static int
echo_ok(int port)
{
	size_t sizes[4] = { 1000, 2000, 3000, 4000 };

	return h_echo_many(port, 4, sizes, 0, 20000) == 4;
}

static int
same_pids(const pid_t *a, const pid_t *b, int n)
{
	for (int i = 0; i < n; i++) {
		int found = 0;

		for (int k = 0; k < n; k++)
			found |= a[i] == b[k];
		if (!found || !h_alive(a[i]))
			return 0;
	}
	return 1;
}

/* Poll until exactly WORKERS slots are in use, all RUNNING: the failed
 * generation's workers are gone. */
static int
wait_only_running(int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	struct stats_seg seg;
	char err[256];

	for (;;) {
		int used = 0, running = 0;

		if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == 0) {
			for (uint32_t i = 0; i < seg.nslots; i++) {
				uint32_t st = __atomic_load_n(&seg.slots[i].state, __ATOMIC_ACQUIRE);

				used += st != STATS_SLOT_FREE;
				running += st == STATS_SLOT_RUNNING;
			}
			stats_detach(&seg);
			if (used == WORKERS && running == WORKERS)
				return 1;
		}
		if (h_now_ms() >= end) {
			diag("%d slots in use, %d running", used, running);
			return 0;
		}
		h_nap(20);
	}
}

/* One failing reload: err for the new workers, what the log must say. */
static void
failing_reload(pid_t master, int lp, const pid_t *gen1, int err, const char *why, int nth)
{
	char *log = strdup(h_path("sluiced.log"));
	pid_t now[16];
	int n;

	fail_workers_with(err);
	ok(kill(master, SIGHUP) == 0, "%s: SIGHUP", why);
	for (uint64_t end = h_now_ms() + 30000;
	     h_count_lines(log, "reload failed, keeping the running configuration") < nth &&
	     h_now_ms() < end;)
		h_nap(50);
	is(h_count_lines(log, "reload failed, keeping the running configuration"), nth,
	    "%s: the master says the reload failed", why);
	ok(h_file_contains(log, why), "%s: and why", why);
	ok(wait_only_running(15000), "%s: the new workers were stopped", why);
	n = h_stats_running(now, 16, 1);
	ok(n == WORKERS && same_pids(gen1, now, WORKERS),
	    "%s: the same %d workers of generation 1 run", why, WORKERS);
	is(h_stats_generation(), 1, "%s: the segment still says generation 1", why);
	ok(echo_ok(lp), "%s: and they serve", why);
	free(log);
}

int
main(void)
{
	int ep = h_free_port(), lp = h_free_port(), status, n;
	const char *conf;
	char *log = strdup(h_path("sluiced.log"));
	pid_t master, gen1[16], now[16];
	uint32_t gen;

	/* Workers (nobody, when we are root) read the injector's file. */
	if (chmod(h_dir(), 0711) == -1)
		bail("chmod %s: %s", h_dir(), strerror(errno));
	h_echod_start(ep);
	conf = h_conf("sluiced.conf", WORKERS, lp, &ep, 1, "timeouts = { drain = \"20s\"; };");
	shim_on();
	master = h_sluiced_start(conf, lp, WORKERS);
	shim_off();
	n = h_stats_running(gen1, 16, 1);
	is(n, WORKERS, "generation 1: %d workers", WORKERS);
	ok(echo_ok(lp), "generation 1 serves");

	failing_reload(master, lp, gen1, EINVAL,
	    "of generation 2 cannot run with this configuration", 1);
	failing_reload(master, lp, gen1, EMFILE, "did not all start within", 2);

	fail_workers_with(0);
	ok(kill(master, SIGHUP) == 0, "causes gone: SIGHUP");
	ok(h_wait_file_contains(log, "master: notice: reloaded", 20000), "the reload went through");
	gen = (uint32_t)h_stats_generation();
	ok(gen > 1, "the segment says generation %u", gen);
	for (uint64_t end = h_now_ms() + 20000;
	     h_stats_running(now, 16, gen) != WORKERS && h_now_ms() < end;)
		h_nap(20);
	is(h_stats_running(now, 16, gen), WORKERS, "%d workers of generation %u run", WORKERS, gen);
	for (uint64_t end = h_now_ms() + 20000;
	     (h_alive(gen1[0]) || h_alive(gen1[1])) && h_now_ms() < end;)
		h_nap(20);
	ok(!h_alive(gen1[0]) && !h_alive(gen1[1]), "generation 1 drained and left");
	ok(echo_ok(lp), "the new generation serves");

	ok(kill(master, SIGTERM) == 0, "SIGTERM sent");
	ok(h_wait_exit(master, 15000, &status) == 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "master exited 0");
	free(log);
	done_testing();
	return tap_exit();
}
