/* SPDX-License-Identifier: BSD-2-Clause */
/* i_cli.c — integration test of the sluiced command line: -V, -h, bad
 * options, -t on good and bad configs, the pid-file lock, and daemon mode.
 * Runs sluiced as a child of this test (and one daemon it forks away, which
 * it stops by the pid in its pid file); loopback ports only. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>

#include "harness.h"
#include "tap.h"

/* The daemon started without -f; killed at exit unless it stopped. */
static pid_t daemon_pid;

static void
kill_daemon(void)
{
	h_stop_sluiced(daemon_pid, SIGKILL, 2000);
	daemon_pid = 0;
}

static int
gone(const char *path)
{
	return access(path, F_OK) == -1 && errno == ENOENT;
}

/* Run a shell command line; its output (as redirected there) in *out. */
static int
sh(const char *cmd, char **out)
{
	char *argv[] = { "/bin/sh", "-c", (char *)cmd, NULL };

	return h_run(argv, out, 10000);
}

static int
contains(const char *hay, const char *needle)
{
	return hay != NULL && strstr(hay, needle) != NULL;
}

static int
contains_nocase(const char *hay, const char *needle)
{
	return hay != NULL && strcasestr(hay, needle) != NULL;
}

/* Explain a failure with what the program printed, line by line. */
static void
show(const char *what, const char *text)
{
	char *copy, *line, *save = NULL;

	diag("%s:", what);
	if (text == NULL || (copy = strdup(text)) == NULL)
		return;
	for (line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
		diag("  %s", line);
	free(copy);
}

static void
test_options(void)
{
	char cmd[8192], *out = NULL;
	const char *sluiced = h_sluiced();
	int r;

	snprintf(cmd, sizeof(cmd), "'%s' -V 2>/dev/null", sluiced);
	r = sh(cmd, &out);
	is(r, 0, "-V exits 0");
	ok(out != NULL && strncmp(out, "sluiced " PACKAGE_VERSION, strlen("sluiced " PACKAGE_VERSION)) == 0,
	    "-V prints \"sluiced %s\" on stdout", PACKAGE_VERSION);
	if (out == NULL || strncmp(out, "sluiced ", 8) != 0)
		show("-V said", out);
	free(out);

	snprintf(cmd, sizeof(cmd), "'%s' -h 2>/dev/null", sluiced);
	r = sh(cmd, &out);
	is(r, 0, "-h exits 0");
	ok(contains_nocase(out, "usage") && contains(out, "-c"), "-h prints usage on stdout");
	free(out);

	snprintf(cmd, sizeof(cmd), "'%s' -Z 2>&1 >/dev/null", sluiced);
	r = sh(cmd, &out);
	is(r, 2, "an unknown option exits 2");
	ok(contains_nocase(out, "usage"), "an unknown option prints usage on stderr");
	free(out);
}

static void
test_check(int ep)
{
	char cmd[8192], needle[4200], *out = NULL, *bad, *good;
	const char *sluiced = h_sluiced();
	int lp = h_free_port(), r, said;

	good = strdup(h_conf("good.conf", 1, lp, &ep, 1, NULL));
	snprintf(cmd, sizeof(cmd), "'%s' -t -c '%s' 2>/dev/null", sluiced, good);
	r = sh(cmd, &out);
	is(r, 0, "-t on a good config exits 0");
	snprintf(needle, sizeof(needle), "%s: configuration OK", good);
	ok(contains(out, needle), "-t says \"%s\" on stdout", needle);
	if (!contains(out, needle))
		show("-t said", out);
	free(out);
	ok(gone(h_pidfile()) && gone(h_statsfile()), "-t created neither pid file nor stats file");

	/* Line 5: a setting the timeouts group does not have. */
	bad = strdup(h_path("bad.conf"));
	h_write_file(bad,
	    "workers = 1;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "timeouts = { idle = \"5s\"; frobnicate = 3; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    h_pidfile(), h_statsfile(), ep, lp);
	snprintf(cmd, sizeof(cmd), "'%s' -t -c '%s' 2>&1 >/dev/null", sluiced, bad);
	r = sh(cmd, &out);
	is(r, 1, "-t on an unknown setting exits 1");
	snprintf(needle, sizeof(needle), "%s:5:", bad);
	ok(contains(out, needle), "stderr names the file and line (%s)", needle);
	ok(contains(out, "frobnicate"), "stderr names the setting");
	if (!contains(out, needle) || !contains(out, "frobnicate"))
		show("-t said", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "'%s' -t -c '%s' 2>/dev/null", sluiced, bad);
	r = sh(cmd, &out);
	ok(!contains(out, "configuration OK"), "-t on a bad config does not say OK on stdout");
	free(out);

	snprintf(cmd, sizeof(cmd), "'%s' -t -c /nonexistent/sluice.conf 2>&1 >/dev/null", sluiced);
	r = sh(cmd, &out);
	is(r, 1, "-t on a missing file exits 1");
	said = contains(out, "/nonexistent/sluice.conf") &&
	    (contains_nocase(out, "no such file") || contains_nocase(out, "cannot open") ||
		contains_nocase(out, "cannot read") || contains_nocase(out, "not found") ||
		contains_nocase(out, "does not exist"));
	ok(said, "the message names the file and says it is missing");
	if (r != 1 || !said)
		show("-t on a missing file said", out);
	free(out);
	free(bad);
	free(good);
}

static void
test_pidfile_lock(int ep)
{
	int lp1 = h_free_port(), lp2 = h_free_port(), r, status;
	char *conf2, *out = NULL, pidtext[32];
	pid_t first;
	size_t size = 3000;

	first = h_sluiced_start(h_conf("first.conf", 1, lp1, &ep, 1, NULL), lp1, 1);
	is(h_pidfile_pid(), first, "the pid file holds the foreground daemon's pid");

	/* Another port, the same pid file (h_conf always uses the same). */
	conf2 = strdup(h_conf("second.conf", 1, lp2, &ep, 1, NULL));
	{
		char *argv[] = { (char *)h_sluiced(), "-f", "-c", conf2, NULL };

		r = h_run(argv, &out, 10000);
	}
	is(r, 1, "a second sluiced on the same pid file exits 1");
	ok(contains(out, "another sluiced is running"), "it says another sluiced is running");
	snprintf(pidtext, sizeof(pidtext), "pid %ld", (long)first);
	ok(contains(out, pidtext), "it names the running one (%s)", pidtext);
	if (!contains(out, "another sluiced is running"))
		show("the second said", out);
	free(out);
	is(h_pidfile_pid(), first, "the pid file still holds the first daemon's pid");
	is(h_stats_running(NULL, 0, 0), 1, "the first daemon's stats segment is intact");
	ok(h_echo_many(lp1, 1, &size, 0, 10000) == 1, "the first daemon still relays");

	ok(kill(first, SIGTERM) == 0, "SIGTERM to the first daemon");
	r = h_wait_exit(first, 10000, &status);
	ok(r == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "the first daemon exited 0");
	if (r == -1)
		h_kill(first);
	free(conf2);
}

static void
test_daemon(int ep)
{
	int lp = h_free_port(), r, status = -1;
	char *conf = strdup(h_path("daemon.conf")), *log = strdup(h_path("daemon.log"));
	size_t sizes[2] = { 1000, 70000 };
	uint64_t end, t0;
	pid_t starter;

	/* Logging to a file: a daemon has no terminal to write to. */
	h_write_file(conf,
	    "workers = 1;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"file\"; file = \"%s\"; level = \"debug\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    h_pidfile(), h_statsfile(), log, ep, lp);
	{
		char *argv[] = { (char *)h_sluiced(), "-c", conf, NULL };

		starter = h_spawn(argv, h_path("daemon-start.log"));
	}
	t0 = h_now_ms();
	r = h_wait_exit(starter, 10000, &status);
	ok(r == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "sluiced without -f returns exit 0 (%llu ms)", (unsigned long long)(h_now_ms() - t0));
	if (r == -1)
		h_kill(starter);
	daemon_pid = h_pidfile_pid();
	ok(daemon_pid > 0 && daemon_pid != starter && h_alive(daemon_pid),
	    "the pid file holds a live pid (%d) other than the starter's (%d)", (int)daemon_pid,
	    (int)starter);
	if (daemon_pid > 0 && !h_is_sluiced(daemon_pid)) {
		diag("pid %d is not sluiced; leaving it alone", (int)daemon_pid);
		daemon_pid = 0;
	}
	if (daemon_pid <= 0 || daemon_pid == starter) {
		daemon_pid = 0;
		skip(4, "no daemon to talk to");
		goto out;
	}
	ok(h_echo_many(lp, 2, sizes, 0, 10000) == 2, "the daemon relays an echo round trip");

	ok(kill(daemon_pid, SIGTERM) == 0, "SIGTERM to the daemon");
	end = h_now_ms() + 10000;
	while (!gone(h_pidfile()) && h_now_ms() < end)
		h_nap(20);
	ok(gone(h_pidfile()), "the pid file disappears");
	end = h_now_ms() + 10000;
	while (h_port_refuses(lp) != 1 && h_now_ms() < end)
		h_nap(20);
	ok(h_port_refuses(lp) == 1, "the port refuses");
	end = h_now_ms() + 10000;
	while (h_alive(daemon_pid) && h_now_ms() < end)
		h_nap(20);
	if (!h_alive(daemon_pid))
		daemon_pid = 0;
	else
		diag("daemon pid %d still alive 10 s after SIGTERM", (int)daemon_pid);
out:
	kill_daemon();
	free(conf);
	free(log);
}

/* Start-up failure without -f: the starter reports it and exits 1. */
static void
test_daemon_failure(int ep)
{
	char *argv[4], *out = NULL, *conf, addr[64];
	int r;

	/* The echo backend holds this port: binding the listener fails. */
	conf = strdup(h_conf("busy.conf", 1, ep, &ep, 1, NULL));
	argv[0] = (char *)h_sluiced();
	argv[1] = "-c";
	argv[2] = conf;
	argv[3] = NULL;
	r = h_run(argv, &out, 10000);
	is(r, 1, "without -f, a listener that cannot bind makes sluiced exit 1");
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ep);
	ok(contains(out, addr), "the error names the address %s", addr);
	if (!contains(out, addr))
		show("it said", out);
	free(out);
	/* Whatever it may have left must not be running. */
	daemon_pid = h_pidfile_pid();
	if (daemon_pid > 0 && h_alive(daemon_pid) && h_is_sluiced(daemon_pid)) {
		ok(0, "no daemon is left running (pid %d)", (int)daemon_pid);
		kill_daemon();
	} else {
		ok(1, "no daemon is left running");
	}
	daemon_pid = 0;
	free(conf);
}

int
main(void)
{
	int ep = h_free_port();

	atexit(kill_daemon);
	h_echod_start(ep);
	test_options();
	test_check(ep);
	test_pidfile_lock(ep);
	test_daemon(ep);
	test_daemon_failure(ep);
	done_testing();
	return tap_exit();
}
