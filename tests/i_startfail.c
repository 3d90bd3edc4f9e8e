/* SPDX-License-Identifier: BSD-2-Clause */
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
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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
	char num[16];

	snprintf(num, sizeof(num), "%d", depth);
	h_preload("faultshim.so");
	setenv("FAULTSHIM_DEPTH", num, 1);
	setenv("FAULTSHIM_EPOLL_FILE", h_path("epoll.errno"), 1);
}

static void
shim_off(void)
{
	h_preload(NULL);
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
	char *log = strdup(h_path("sluiced.log"));
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
	free(log);
}

/* The pipe inodes among pid's descriptors ("pipe:[N]"), into ino. */
static int
pipes_of(pid_t pid, unsigned long *ino, int max)
{
	char path[64], link[PATH_MAX], target[256];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL && n < max) {
		ssize_t len;

		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
		if ((len = readlink(link, target, sizeof(target) - 1)) <= 0)
			continue;
		target[len] = '\0';
		if (sscanf(target, "pipe:[%lu]", &ino[n]) == 1)
			n++;
	}
	closedir(d);
	return n;
}

/* The pid in the pid file, when it runs sluiced; else 0. */
static pid_t
daemon_pid(void)
{
	char *s = h_read_file(h_pidfile()), exe[PATH_MAX], want[PATH_MAX], path[64];
	long pid = s ? strtol(s, NULL, 10) : 0;
	ssize_t n;

	free(s);
	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0 || realpath(h_sluiced(), want) == NULL)
		return 0;
	exe[n] = '\0';
	return strcmp(exe, want) == 0 ? (pid_t)pid : 0;
}

static void
stop_daemon(void)
{
	pid_t pid = daemon_pid();
	uint64_t end = h_now_ms() + 15000;

	if (pid == 0)
		return;
	kill(pid, SIGTERM);
	while (h_alive(pid) && h_now_ms() < end)
		h_nap(20);
	if (h_alive(pid))
		kill(pid, SIGKILL);
}

/*
 * A daemon start: the command returns once the workers run, and no worker
 * holds the readiness pipe (its write end would keep the starting command
 * waiting after a master's death). A pipe end a worker holds is its own
 * when it holds both ends (splice pipes), or the master's; any other is
 * inherited from the start.
 */
static void
ready_pipe(const char *conf)
{
	char *argv[] = { (char *)h_sluiced(), "-c", (char *)conf, NULL };
	unsigned long wp[64], mp[64];
	pid_t pids[16], master;
	char *out = NULL;
	int r, n, nm, foreign = 0;

	r = h_run(argv, &out, 30000);
	ok(r == 0, "daemon start: exit 0 (%s)", out ? out : "");
	free(out);
	master = daemon_pid();
	ok(master > 0, "the daemon runs (pid %d)", (int)master);
	n = h_stats_running(pids, 16, 1);
	is(n, WORKERS, "its %d workers are running when the command returns", WORKERS);
	nm = pipes_of(master, mp, 64);
	for (int i = 0; i < n; i++) {
		int k = pipes_of(pids[i], wp, 64);

		for (int a = 0; a < k; a++) {
			int twice = 0, masters = 0;

			for (int b = 0; b < k; b++)
				twice += b != a && wp[b] == wp[a];
			for (int b = 0; b < nm; b++)
				masters += mp[b] == wp[a];
			if (!twice && !masters) {
				diag("worker pid %d holds one end of pipe %lu", (int)pids[i], wp[a]);
				foreign++;
			}
		}
	}
	is(foreign, 0, "no worker holds the starting command's readiness pipe");
	stop_daemon();
}

/*
 * Workers that refuse the config (the injector's EINVAL, as a worker exits
 * for it): a daemon start exits 1 with the reason and leaves nothing
 * running; sluiced -f exits 1. Then a shortage that outlasts the start-up
 * deadline fails a start the same way.
 */
/* 1 when no process holds the pid file's lock (PID_FILE.lock). */
static int
pid_lock_free(void)
{
	char path[PATH_MAX];
	int fd, free_now;

	snprintf(path, sizeof(path), "%s.lock", h_pidfile());
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 1;
	free_now = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd);
	return free_now;
}

static void
refused(const char *conf, int lp)
{
	char *daemon[] = { (char *)h_sluiced(), "-c", (char *)conf, NULL };
	char *fg[] = { (char *)h_sluiced(), "-f", "-c", (char *)conf, NULL };
	char *log = strdup(h_path("sluiced.log"));
	uint64_t end;
	char *out = NULL;
	pid_t master;
	int r, status;

	fail_workers_with(EINVAL);
	shim_on(2);
	r = h_run(daemon, &out, 30000);
	shim_off();
	ok(r == 1 && out != NULL && strstr(out, "cannot run with this configuration") != NULL,
	    "daemon start with refusing workers: exit %d: %s", r,
	    out ? strstr(out, "sluiced: ") ? strstr(out, "sluiced: ") : out : "");
	free(out);
	end = h_now_ms() + 15000;
	while (daemon_pid() != 0 && h_now_ms() < end)
		h_nap(20);
	ok(daemon_pid() == 0, "no daemon is left running");
	is(h_port_refuses(lp), 1, "the port refuses");
	/* The pid file goes before the master has quite exited (a sanitizer
	 * build checks for leaks after it): the next start waits for its
	 * lock to be free, or it would find "another sluiced running". */
	end = h_now_ms() + 15000;
	while (!pid_lock_free() && h_now_ms() < end)
		h_nap(20);

	shim_on(1);
	master = h_spawn(fg, log);
	shim_off();
	r = h_wait_exit(master, 30000, &status);
	ok(r == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 1,
	    "sluiced -f with refusing workers exits 1");
	if (r != 0)
		h_kill(master);
	ok(h_file_contains(log, "master: error: start failed: worker"), "log: start failed");

	fail_workers_with(EMFILE);
	shim_on(2);
	r = h_run(daemon, &out, 60000);
	shim_off();
	ok(r == 1 && out != NULL && strstr(out, "did not all start within") != NULL,
	    "daemon start with workers short of descriptors for good: exit %d: %s", r,
	    out ? strstr(out, "sluiced: ") ? strstr(out, "sluiced: ") : out : "");
	free(out);
	end = h_now_ms() + 15000;
	while (daemon_pid() != 0 && h_now_ms() < end)
		h_nap(20);
	ok(daemon_pid() == 0, "no daemon is left running");
	fail_workers_with(0);
	free(log);
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
	atexit(stop_daemon);
	ready_pipe(conf);
	refused(conf, lp);
	done_testing();
	return tap_exit();
}
