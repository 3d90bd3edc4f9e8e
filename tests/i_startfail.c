/* i_startfail.c — integration test of workers that cannot start. A shortage
 * (EMFILE at worker start) passes: the worker exits "failure, respawn" and is
 * replaced with back-off until it runs. A refusal (a worker exiting with the
 * config status) makes the start fail: the starting command of a daemon
 * exits 1 with a message, "sluiced -f" exits non-zero, instead of a master
 * running with no worker. And a daemon reports ready only once its workers
 * run, which none of them delays by holding the readiness pipe. Worker
 * failures come from the fault injector (tests/faultshim.c). Runs sluiced
 * and echod as children of this test on loopback ports. */
#include <errno.h>
#include <dirent.h>
#include <limits.h>
#include <libgen.h>
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

/* Preload the fault injector into what we spawn next: the first
 * epoll_create1 of a process at fork depth `depth` (a worker) fails with the
 * errno in h_path("epoll.errno") while that file exists. */
static void
shim_on(int depth)
{
	char shim[PATH_MAX], bin[PATH_MAX], num[16];

	snprintf(bin, sizeof(bin), "%s", h_sluiced());
	snprintf(shim, sizeof(shim), "%s/tests/faultshim.so", dirname(bin));
	if (access(shim, R_OK) == -1)
		bail("no fault injector at %s: %s", shim, strerror(errno));
	snprintf(num, sizeof(num), "%d", depth);
	setenv("LD_PRELOAD", shim, 1);
	setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
	setenv("FAULTSHIM_DEPTH", num, 1);
	setenv("FAULTSHIM_EPOLL_FILE", h_path("epoll.errno"), 1);
}

static void
shim_off(void)
{
	unsetenv("LD_PRELOAD");
	unsetenv("ASAN_OPTIONS");
	unsetenv("FAULTSHIM_DEPTH");
	unsetenv("FAULTSHIM_EPOLL_FILE");
}

static void
fail_workers_with(int err)
{
	if (err == 0)
		unlink(h_path("epoll.errno"));
	else
		h_write_file(h_path("epoll.errno"), "%d\n", err);
}

static int
wait_running(int want, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	while (h_stats_running(NULL, 0, 0) != want && h_now_ms() < end)
		h_nap(20);
	return h_stats_running(NULL, 0, 0) == want;
}

static int
echo_ok(int port)
{
	size_t sizes[4] = { 1000, 2000, 3000, 4000 };

	return h_echo_many(port, 4, sizes, 0, 20000) == 4;
}

/* A shortage at start: respawned with back-off until it passes. */
static void
transient(const char *conf, int lp)
{
	char *argv[] = { (char *)h_sluiced(), "-f", "-c", (char *)conf, NULL };
	const char *log = h_path("sluiced.log");
	pid_t master;
	int status;

	fail_workers_with(EMFILE);
	shim_on(1);
	master = h_spawn(argv, log);
	shim_off();
	ok(h_wait_file_contains(log, "restarting it in", 15000),
	    "EMFILE at worker start: the workers are restarted with back-off");
	ok(h_file_contains(log, "exited with status 75"), "they exited 75 (EX_TEMPFAIL)");
	ok(!h_file_contains(log, "not restarting"), "none was given up");
	ok(h_alive(master), "the master waits for them");
	fail_workers_with(0);
	ok(wait_running(WORKERS, 30000), "once descriptors are back, %d workers run", WORKERS);
	ok(echo_ok(lp), "and relay");
	kill(master, SIGTERM);
	ok(h_wait_exit(master, 15000, &status) == 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "master exited 0");
}

int
main(void)
{
	int ep = h_free_port(), lp = h_free_port();
	const char *conf;

	/* Workers (nobody, when we are root) read the injector's file. */
	if (chmod(h_dir(), 0711) == -1)
		bail("chmod %s: %s", h_dir(), strerror(errno));
	h_echod_start(ep);
	conf = h_conf("sluiced.conf", WORKERS, lp, &ep, 1, NULL);
	transient(conf, lp);
	done_testing();
	return tap_exit();
}
