/* SPDX-License-Identifier: BSD-2-Clause */
/* i_titles.c — integration test of process titles: /proc/PID/cmdline and
 * /proc/PID/comm of the master, the workers and the health checker name their
 * role and generation, nothing of the original arguments shows, and after a
 * SIGHUP the master shows the new generation while an old worker that holds
 * a connection shows ", draining". Runs sluiced and echod as children of this
 * test on loopback ports. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"

/* /proc/PID/cmdline: the first string into title; *clean is 1 when every
 * byte after it is NUL (no old argument or environment string shows). */
static int
read_cmdline(pid_t pid, char *title, size_t len, int *clean)
{
	char path[64], buf[4096];
	size_t n, first;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	first = strlen(buf);
	if (len > 0) {
		size_t k = first < len - 1 ? first : len - 1;

		memcpy(title, buf, k);
		title[k] = '\0';
	}
	*clean = 1;
	for (size_t i = first; i < n; i++)
		if (buf[i] != '\0')
			*clean = 0;
	return 0;
}

static int
read_comm(pid_t pid, char *comm, size_t len)
{
	char path[64];
	char *text;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if ((text = h_read_file(path)) == NULL)
		return -1;
	text[strcspn(text, "\n")] = '\0';
	snprintf(comm, len, "%s", text);
	free(text);
	return 0;
}

/* Poll until pid's title is want (a worker sets it as it starts). */
static int
wait_title(pid_t pid, const char *want, char *got, size_t len, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	int clean;

	for (;;) {
		if (read_cmdline(pid, got, len, &clean) == 0 && strcmp(got, want) == 0 && clean)
			return 1;
		if (h_now_ms() >= end)
			return 0;
		h_nap(25);
	}
}

/* Title and comm of pid are as wanted. */
static void
check(pid_t pid, const char *want, const char *want_comm, const char *who)
{
	char title[512] = "", comm[64] = "";

	ok(wait_title(pid, want, title, sizeof(title), 10000), "%s: cmdline \"%s\" (got \"%s\")",
	    who, want, title);
	ok(read_comm(pid, comm, sizeof(comm)) == 0 && strcmp(comm, want_comm) == 0,
	    "%s: comm \"%s\" (got \"%s\")", who, want_comm, comm);
}

int
main(void)
{
	int lport = h_free_port(), bport = h_free_port(), aport = h_free_port(), fd, idx[2];
	const char *conf = strdup(h_path("titles.conf"));
	pid_t master, w[2], w2[2], kids[8], checker = 0, admin = 0;
	char want[128], title[512];
	int n, clean;

	plan(25);
	h_echod_start(bport);
	h_write_file(conf,
	    "workers = 2;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "timeouts = { drain = \"60s\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" );\n"
	    "    health = { interval = \"1s\"; }; } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n"
	    "admin = { listen = \"127.0.0.1:%d\"; };\n",
	    h_pidfile(), h_statsfile(), bport, lport, aport);
	/* The title of a draining worker that keeps a connection is checked
	 * below: no session moves to the new generation (a hand-off version
	 * nobody speaks). */
	setenv("SLUICE_TEST_HANDOFF_VERSION", "0", 1);
	master = h_sluiced_start(conf, lport, 2);
	unsetenv("SLUICE_TEST_HANDOFF_VERSION");

	check(master, "sluiced: master (generation 1)", "sluiced", "master");
	ok(read_cmdline(master, title, sizeof(title), &clean) == 0 && clean &&
	       strstr(title, "titles.conf") == NULL,
	    "master: nothing of its arguments or environment is left in cmdline");

	is(h_stats_running(w, 2, 1), 2, "two workers of generation 1 run");
	for (int i = 0; i < 2; i++) {
		char who[32];
		int clean_w = 0;

		idx[i] = -1;
		if (read_cmdline(w[i], title, sizeof(title), &clean_w) == 0)
			sscanf(title, "sluiced: worker %d", &idx[i]);
		snprintf(want, sizeof(want), "sluiced: worker %d (generation 1)", idx[i]);
		snprintf(who, sizeof(who), "worker pid %d", (int)w[i]);
		check(w[i], want, "sluiced-worker", who);
	}
	ok((idx[0] == 0 && idx[1] == 1) || (idx[0] == 1 && idx[1] == 0),
	    "the workers' titles carry their indexes 0 and 1 (%d, %d)", idx[0], idx[1]);

	/* The checker and the admin process are the master's children that
	 * are not workers, told apart by their short names. */
	{
		uint64_t end = h_now_ms() + 10000;

		while ((checker == 0 || admin == 0) && h_now_ms() < end) {
			n = h_children(master, kids, 8);
			for (int i = 0; i < n; i++) {
				char comm[64] = "";

				if (kids[i] == w[0] || kids[i] == w[1] ||
				    read_comm(kids[i], comm, sizeof(comm)) != 0)
					continue;
				if (strcmp(comm, "sluiced-admin") == 0)
					admin = kids[i];
				else if (strcmp(comm, "sluiced-checker") == 0)
					checker = kids[i];
			}
			if (checker == 0 || admin == 0)
				h_nap(25);
		}
	}
	ok(checker != 0, "the health checker runs (pid %d)", (int)checker);
	check(checker, "sluiced: checker", "sluiced-checker", "checker");
	ok(admin != 0, "the admin process runs (pid %d)", (int)admin);
	check(admin, "sluiced: admin", "sluiced-admin", "admin");

	/* A connection held open keeps its worker draining after the reload;
	 * the other old worker has none and leaves at once. */
	fd = h_connect(lport, 5000);
	ok(fd != -1 && h_round_trip(fd, 5000) == 0, "a connection relays, and stays open");
	kill(master, SIGHUP);
	{
		uint64_t end = h_now_ms() + 30000;

		while ((h_stats_generation() != 2 || h_stats_running(w2, 2, 2) != 2) &&
		       h_now_ms() < end)
			h_nap(25);
	}
	is(h_stats_running(w2, 2, 2), 2, "SIGHUP: two workers of generation 2 run");
	check(master, "sluiced: master (generation 2)", "sluiced", "master after the reload");
	for (int i = 0; i < 2; i++) {
		int k = -1, clean_w = 0;

		if (read_cmdline(w2[i], title, sizeof(title), &clean_w) == 0)
			sscanf(title, "sluiced: worker %d", &k);
		snprintf(want, sizeof(want), "sluiced: worker %d (generation 2)", k);
		ok(k >= 0 && k <= 1 && wait_title(w2[i], want, title, sizeof(title), 10000),
		    "new worker: \"%s\"", title);
	}
	{
		uint64_t end = h_now_ms() + 30000;
		int found = -1;

		/* The old worker with the connection stays, titled as draining;
		 * its sibling exits. */
		while (found == -1 && h_now_ms() < end) {
			for (int i = 0; i < 2; i++) {
				snprintf(want, sizeof(want),
				    "sluiced: worker %d (generation 1, draining)", idx[i]);
				if (h_alive(w[i]) && read_cmdline(w[i], title, sizeof(title),
				                         &clean) == 0 &&
				    strcmp(title, want) == 0 && !h_alive(w[1 - i]))
					found = i;
			}
			if (found == -1)
				h_nap(25);
		}
		ok(found != -1, "the old worker holding the connection: \"%s\"",
		    found != -1 ? title : "none found");
		if (found != -1) {
			char comm[64] = "";

			ok(read_comm(w[found], comm, sizeof(comm)) == 0 &&
			       strcmp(comm, "sluiced-worker") == 0,
			    "its comm is still \"sluiced-worker\"");
		} else {
			ok(0, "its comm is still \"sluiced-worker\"");
		}
	}
	ok(fd != -1 && h_round_trip(fd, 5000) == 0, "the draining worker still relays");
	if (fd != -1)
		close(fd);
	kill(master, SIGTERM);
	ok(h_wait_exit(master, 20000, NULL) == 0, "the master stops");
	free((char *)conf);
	return tap_failed != 0;
}
