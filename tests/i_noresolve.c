/* SPDX-License-Identifier: BSD-2-Clause */
/* i_noresolve.c — integration test of the tools that only need file names
 * from the configuration: "sluiced -s" (also the logrotate hook's reopen)
 * and "sluicestat -c" read pid_file and stats_file without resolving any
 * server name, so a DNS outage cannot block stop, reload, log reopening or
 * statistics. The daemon starts from a valid config; the file is then edited
 * to name a server that does not resolve (.invalid, RFC 6761). Runs sluiced
 * and echod as children of this test on loopback ports. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

#define WORKERS 2

static void
write_conf(const char *path, int ep, int lp, const char *more_servers)
{
	h_write_file(path,
	    "workers = %d;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\"%s ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    WORKERS, h_pidfile(), h_statsfile(), ep, more_servers, lp);
}

int
main(void)
{
	char *conf = strdup(h_path("sluiced.conf")), *log = strdup(h_path("sluiced.log"));
	char *reopen[] = { (char *)h_sluiced(), "-s", "reopen", "-c", (char *)conf, NULL };
	char *reload[] = { (char *)h_sluiced(), "-s", "reload", "-c", (char *)conf, NULL };
	char *stat[] = { (char *)h_sluicestat(), "-c", (char *)conf, NULL };
	char *check[] = { (char *)h_sluiced(), "-t", "-c", (char *)conf, NULL };
	char *out = NULL;
	int ep = h_free_port(), lp = h_free_port(), r, status;
	pid_t master;

	h_echod_start(ep);
	write_conf(conf, ep, lp, "");
	master = h_sluiced_start(conf, lp, WORKERS);
	write_conf(conf, ep, lp, ", \"nonexistent.invalid:80\"");

	r = h_run(check, &out, 20000);
	ok(r == 1 && out != NULL && strstr(out, "nonexistent.invalid") != NULL,
	    "sluiced -t still resolves servers and refuses the name: %s",
	    out ? strtok(out, "\n") : "");
	free(out);

	r = h_run(reopen, &out, 20000);
	ok(r == 0, "sluiced -s reopen works with the edited file (exit %d: %s)", r,
	    out ? out : "");
	free(out);
	ok(h_wait_file_contains(log, "master: info: log file reopened", 10000),
	    "the master got SIGUSR1");

	r = h_run(stat, &out, 20000);
	ok(r == 0 && out != NULL && strstr(out, "workers") != NULL,
	    "sluicestat -c reads the segment named by the edited file (exit %d)", r);
	if (r != 0)
		diag("%s", out ? out : "");
	free(out);

	r = h_run(reload, &out, 20000);
	ok(r == 0, "sluiced -s reload works with the edited file (exit %d: %s)", r,
	    out ? out : "");
	free(out);
	ok(h_wait_file_contains(log, "reload failed, keeping the running configuration", 10000),
	    "the master itself refuses the unresolvable server at reload");
	is(h_stats_running(NULL, 0, 1), WORKERS, "generation 1 still runs");

	ok(kill(master, SIGTERM) == 0, "SIGTERM sent");
	ok(h_wait_exit(master, 15000, &status) == 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "master exited 0");
	free(conf);
	free(log);
	done_testing();
	return tap_exit();
}
