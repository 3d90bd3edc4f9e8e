/* SPDX-License-Identifier: BSD-2-Clause */
/* i_daemon.c — integration test of daemon habits: sluiced -s signals the master
 * found through the locked pid file (never a stale one's pid), and a daemon
 * logging to a file reopens it on SIGUSR1 so master and workers all write to
 * the new file after a rename. The daemon is not our child: it is stopped with
 * -s, or at exit by its pid file's pid once that is checked to run sluiced. */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"

#define WORKERS 2

static pid_t daemon_pid;
static volatile sig_atomic_t got_hup;
static char *conf;

static void
on_hup(int sig)
{
	got_hup++;
}

static void
kill_daemon(void)
{
	h_stop_sluiced(daemon_pid, SIGTERM, 5000);
	daemon_pid = 0;
}

/* sluiced [-s action] -c conf; output into *out (caller frees). */
static int
run(const char *action, char **out)
{
	char *with_s[] = { (char *)h_sluiced(), "-s", (char *)action, "-c", conf, NULL };
	char *start[] = { (char *)h_sluiced(), "-c", conf, NULL };

	return h_run(action ? with_s : start, out, 20000);
}

static int
wait_gone(pid_t pid, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	while (h_alive(pid) && h_now_ms() < end)
		h_nap(20);
	return !h_alive(pid);
}

static int
wait_running(int want, uint32_t gen, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	while (h_stats_running(NULL, 0, gen) != want && h_now_ms() < end)
		h_nap(20);
	return h_stats_running(NULL, 0, gen) == want;
}

/* Poll until a line of path is from pid (its "[PID] " tag) and holds needle. */
static int
wait_line(const char *path, pid_t pid, const char *needle, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	char tag[32];

	snprintf(tag, sizeof(tag), "[%d] ", (int)pid);
	for (;;) {
		char *text = h_read_file(path), *line, *save = NULL;
		int found = 0;

		for (line = text ? strtok_r(text, "\n", &save) : NULL; line != NULL && !found;
		     line = strtok_r(NULL, "\n", &save))
			found = strstr(line, tag) != NULL && strstr(line, needle) != NULL;
		free(text);
		if (found)
			return 1;
		if (h_now_ms() >= end)
			return 0;
		h_nap(20);
	}
}

static int
echo_ok(int port, int n)
{
	size_t sizes[16];

	for (int i = 0; i < n && i < 16; i++)
		sizes[i] = 1000 + 999 * (size_t)i;
	return h_echo_many(port, n, sizes, 0, 20000) == n;
}

/* Start the daemon; 1 when it runs with its workers. */
static int
start_daemon(void)
{
	char *out = NULL;
	int r = run(NULL, &out);

	if (r != 0)
		diag("sluiced exited %d: %s", r, out ? out : "");
	free(out);
	daemon_pid = h_pidfile_pid();
	return r == 0 && daemon_pid > 0 && h_is_sluiced(daemon_pid) &&
	    wait_running(WORKERS, 0, 15000);
}

int
main(void)
{
	char *log = strdup(h_path("sluice.log")), *old = strdup(h_path("sluice.log.1"));
	char *out = NULL;
	const struct passwd *pw = getpwnam("nobody");
	pid_t pids[64];
	struct stat st;
	int ep, lp, r, n;

	conf = strdup(h_path("sluiced.conf"));
	atexit(kill_daemon);
	/* Workers (nobody, when we are root) reopen the log by name: its
	 * directory must let them through, as /var/log does. */
	if (chmod(h_dir(), 0711) == -1)
		bail("chmod %s: %s", h_dir(), strerror(errno));
	ep = h_free_port();
	h_echod_start(ep);
	lp = h_free_port();
	h_write_file(conf,
	    "workers = %d;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"file\"; file = \"%s\"; level = \"debug\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    WORKERS, h_pidfile(), h_statsfile(), log, ep, lp);

	/* ---- -s with nothing running ---- */
	r = run("reload", &out);
	ok(r == 1 && out && strstr(out, "not running (no pid file"),
	    "-s reload without a daemon: exit 1, no pid file: %s", out ? strtok(out, "\n") : "");
	free(out);
	/* A stale pid file naming a live process (us): never signalled. */
	signal(SIGHUP, on_hup);
	h_write_file(h_pidfile(), "%ld\n", (long)getpid());
	r = run("reload", &out);
	ok(r == 1 && out && strstr(out, "is not locked"),
	    "-s reload with a stale pid file: exit 1, not locked: %s",
	    out ? strtok(out, "\n") : "");
	free(out);
	h_nap(50);
	is(got_hup, 0, "the pid in the stale file got no signal");
	unlink(h_pidfile());
	r = run("bogus", &out);
	ok(r == 2 && out && strstr(out, "unknown signal"), "-s bogus: exit 2, unknown signal");
	free(out);

	/* ---- a daemon logging to a file ---- */
	r = start_daemon();
	ok(r, "sluiced -c CONF detached and runs %d workers (pid %d)", WORKERS, (int)daemon_pid);
	ok(h_wait_file_contains(log, "master: notice: started", 5000), "it logs to its file");
	ok(echo_ok(lp, 4), "it relays");
	if (geteuid() == 0 && pw != NULL)
		ok(stat(log, &st) == 0 && st.st_uid == pw->pw_uid,
		    "the log file belongs to the workers' user (nobody), so they can reopen it");
	else
		skip(1, "not root: workers run as we do");

	r = run("reload", &out);
	ok(r == 0, "-s reload: exit 0 %s", out ? out : "");
	free(out);
	ok(h_wait_file_contains(log, "generation 2, 2 workers", 10000) &&
	    wait_running(WORKERS, 2, 10000), "the daemon reloaded: generation 2");

	/* ---- rotation: rename, reopen, and everybody writes to the new file ---- */
	n = h_stats_running(pids, 64, 2);
	is(n, WORKERS, "%d workers of generation 2", WORKERS);
	ok(rename(log, old) == 0, "log renamed away");
	r = run("reopen", &out);
	ok(r == 0, "-s reopen: exit 0 %s", out ? out : "");
	free(out);
	ok(h_wait_file_contains(log, "master: info: log file reopened", 10000),
	    "the master writes to a new file");
	for (int i = 0; i < n; i++) {
		ok(wait_line(log, pids[i], "info: log file reopened", 10000),
		    "worker pid %d reopened: it writes to the new file", (int)pids[i]);
	}
	/* At least: a worker of generation 1 still on its way out may say so too. */
	ok(h_count_lines(log, "info: log file reopened") >= 1 + n,
	    "the master and %d workers each said so in the new file", n);
	is(h_count_lines(old, "log file reopened"), 0, "nothing of that went to the old file");
	if (geteuid() == 0 && pw != NULL)
		ok(stat(log, &st) == 0 && st.st_uid == pw->pw_uid,
		    "the new file was handed to the workers' user too");
	else
		skip(1, "not root: workers run as we do");
	ok(echo_ok(lp, 4), "relaying goes on");
	/* The old generation logs its draining into the new file as well. */
	r = run("reload", &out);
	free(out);
	ok(r == 0 && wait_running(WORKERS, 3, 10000), "-s reload once more: generation 3");
	for (int i = 0; i < n; i++)
		ok(wait_line(log, pids[i], "draining", 5000) && wait_gone(pids[i], 10000),
		    "worker pid %d drained, logging to the new file", (int)pids[i]);

	/* ---- quit and stop ---- */
	r = run("quit", &out);
	free(out);
	ok(r == 0, "-s quit: exit 0");
	ok(wait_gone(daemon_pid, 20000), "the daemon stopped gracefully");
	ok(access(h_pidfile(), F_OK) == -1, "its pid file is gone");
	is(h_port_refuses(lp), 1, "the port refuses");
	ok(h_file_contains(log, "graceful stop"), "log: graceful stop");

	r = start_daemon();
	ok(r, "a second daemon runs (pid %d)", (int)daemon_pid);
	r = run("stop", &out);
	free(out);
	ok(r == 0, "-s stop: exit 0");
	ok(wait_gone(daemon_pid, 20000), "the daemon stopped fast");
	ok(access(h_pidfile(), F_OK) == -1, "its pid file is gone");
	ok(h_count_lines(log, "fast stop") >= 1, "log: fast stop");
	r = run("reload", &out);
	ok(r == 1 && out && strstr(out, "not running"), "-s reload after the stop: not running");
	free(out);
	daemon_pid = 0;

	free(log);
	free(old);
	free(conf);
	done_testing();
	return tap_exit();
}
