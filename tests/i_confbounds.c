/* SPDX-License-Identifier: BSD-2-Clause */
/* i_confbounds.c — integration test of settings a worker would refuse at
 * start: "sluiced -t", a start and a reload refuse them with FILE:LINE:
 * SETTING, instead of accepting a file on which no worker can run (sluiced
 * then ran with no worker, its port accepting and hanging). Runs sluiced and
 * echod as children of this test on loopback ports. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

#define WORKERS 2

static const struct bad {
	const char *what;
	const char *upstream_extra; /* inside the upstream group */
	const char *top_extra;      /* at the top level */
	const char *want;           /* in the message, after FILE:LINE: */
} bad[] = {
	{ "a pool budget beyond any worker's address space", "",
	    "pool = { max_memory = \"307200G\"; };", "pool.max_memory: must be at most 1024G" },
	{ "a budget of more chunks than a pool holds", "",
	    "pool = { buffer_size = 512; max_memory = \"129G\"; };",
	    "pool.max_memory: must be at most 128G with buffer_size 512" },
	{ "servers' weights beyond what a hash ring holds", "balance = \"source\";",
	    "", "upstreams[0].servers: the servers' weights add up to" },
};

/* conf with the given extras; with heavy, the echo server 4097 times with
 * weight 256: one weight unit beyond what conf.h allows an upstream. */
static void
write_conf(const char *path, int ep, int lp, const char *up_extra, const char *top_extra,
    int heavy)
{
	static char servers[512 * 1024];
	size_t used = 0;

	servers[0] = '\0';
	for (int i = 0; i < (heavy ? 4097 : 1); i++)
		used += (size_t)snprintf(servers + used, sizeof(servers) - used,
		    "%s{ address = \"127.0.0.1:%d\"; weight = %d; }", i ? ", " : "", ep,
		    heavy ? 256 : 1);
	h_write_file(path,
	    "workers = %d;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "%s\n"
	    "upstreams = ( { name = \"app\"; %s\n"
	    "  servers = ( %s ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    WORKERS, h_pidfile(), h_statsfile(), top_extra, up_extra, servers, lp);
}

int
main(void)
{
	char *conf = strdup(h_path("sluiced.conf")), *log = strdup(h_path("sluiced.log"));
	char *check[] = { (char *)h_sluiced(), "-t", "-c", (char *)conf, NULL };
	char *start[] = { (char *)h_sluiced(), "-f", "-c", (char *)conf, NULL };
	char *out = NULL, want[512];
	int ep = h_free_port(), lp = h_free_port(), r, status;
	pid_t master;

	h_echod_start(ep);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct bad *b = &bad[i];

		write_conf(conf, ep, lp, b->upstream_extra, b->top_extra, i == 2);
		snprintf(want, sizeof(want), "%s:", conf);
		r = h_run(check, &out, 20000);
		ok(r == 1 && out != NULL && strstr(out, want) != NULL && strstr(out, b->want),
		    "-t refuses %s: %s", b->what, out ? strtok(out, "\n") : "");
		free(out);
		r = h_run(start, &out, 20000);
		ok(r == 1 && out != NULL && strstr(out, b->want),
		    "so does a start (exit %d): %s", r, out ? strtok(out, "\n") : "");
		free(out);
	}

	/* A reload to such a file keeps the running configuration. */
	write_conf(conf, ep, lp, "", "", 0);
	master = h_sluiced_start(conf, lp, WORKERS);
	write_conf(conf, ep, lp, "", bad[0].top_extra, 0);
	ok(kill(master, SIGHUP) == 0, "SIGHUP with max_memory = 307200G");
	ok(h_wait_file_contains(log, "reload failed, keeping the running configuration", 10000),
	    "the reload is refused");
	ok(h_file_contains(log, "pool.max_memory: must be at most"), "and the log says why");
	is(h_stats_running(NULL, 0, 1), WORKERS, "generation 1 still runs");
	ok(h_port_refuses(lp) == 0, "and accepts");

	ok(kill(master, SIGTERM) == 0, "SIGTERM sent");
	ok(h_wait_exit(master, 15000, &status) == 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "master exited 0");
	free(conf);
	free(log);
	done_testing();
	return tap_exit();
}
