/* SPDX-License-Identifier: BSD-2-Clause */
/* i_bench_smoke.c — integration test: the benchmark tools work. bench/load in
 * each mode (hold, rr, cps, bulk with sink and echo checking) runs for a
 * second or two with small counts through sluiced (2 workers) in front of
 * bench/backend, and every connection and byte must be verified; then the
 * checks are shown to bite (a wrong stream is reported bad); and bench/compare
 * --costs, which gives the cost rows of bench/compare (system calls, context
 * switches, bytes through user space), counts sluiced's process tree during an
 * rr load and reports every field as a number. Functional results only: no
 * rate, latency or cost is asserted beyond being counted. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

static char load_path[PATH_MAX], backend_path[PATH_MAX], compare_path[PATH_MAX];

/* bench/ sits next to sluiced in the build tree. */
static void
find_tools(void)
{
	char path[PATH_MAX];
	const char *dir;

	snprintf(path, sizeof(path), "%s", h_sluiced());
	dir = dirname(path);
	snprintf(load_path, sizeof(load_path), "%s/bench/load", dir);
	snprintf(backend_path, sizeof(backend_path), "%s/bench/backend", dir);
	if (access(load_path, X_OK) != 0 || access(backend_path, X_OK) != 0)
		bail("bench tools not built: %s, %s", load_path, backend_path);
	/* bench/compare is a script in the source tree. */
	dir = getenv("TOP_SRCDIR");
	snprintf(compare_path, sizeof(compare_path), "%s/bench/compare", dir ? dir : ".");
	if (access(compare_path, X_OK) != 0)
		bail("bench/compare not found: %s", compare_path);
}

/* The value of key in the line of out that starts with tag ("result ",
 * "costs "): a non-negative decimal number (its whole part), else -1
 * (missing, or not a number). */
static long long
line_field(const char *out, const char *tag, const char *key)
{
	const char *line = NULL, *p, *eol;
	char pat[64], *end;
	long long v;

	for (p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, tag, strlen(tag)) == 0) {
			line = p;
			break;
		}
	if (!line)
		return -1;
	eol = strchr(line, '\n');
	snprintf(pat, sizeof(pat), " %s=", key);
	p = strstr(line, pat);
	if (!p || (eol && p > eol))
		return -1;
	p += strlen(pat);
	if (*p < '0' || *p > '9')
		return -1;
	v = strtoll(p, &end, 10);
	if (*end == '.' && end[1] >= '0' && end[1] <= '9')
		for (end++; *end >= '0' && *end <= '9'; end++)
			;
	if (*end != ' ' && *end != '\n' && *end != '\0')
		return -1;
	return v;
}

/* The value of key in load's "result ..." line, or -1. */
static long long
result_field(const char *out, const char *key)
{
	return line_field(out, "result ", key);
}

/* Run load with the arguments given (NULL-terminated, mode first); returns
 * its exit status and leaves its output in *out (caller frees). Shows the
 * output when the status is not the one expected. */
static int
run_load(char **out, int expect, char *const args[])
{
	char *argv[32], *line, *save = NULL, *copy;
	int n = 0, st;

	argv[n++] = load_path;
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	st = h_run(argv, out, 90000);
	if (st != expect) {
		diag("load %s exited %d, expected %d:", args[0], st, expect);
		copy = strdup(*out ? *out : "(no output)");
		for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			diag("  %s", line);
		free(copy);
	}
	return st;
}

static pid_t
backend_start(const char *mode, int port, int procs)
{
	char p[16], n[16], log[64];
	char *argv[] = {backend_path, "-m", (char *)mode, "-p", p, "-P", n, "-T", "600", NULL};
	pid_t pid;

	snprintf(p, sizeof(p), "%d", port);
	snprintf(n, sizeof(n), "%d", procs);
	snprintf(log, sizeof(log), "backend-%d.log", port);
	pid = h_spawn(argv, h_path(log));
	if (h_wait_port(port, 10000) == -1)
		bail("bench/backend did not listen on %d", port);
	return pid;
}

int
main(void)
{
	int echo_port = h_free_port(), sink_port = h_free_port();
	int lport = h_free_port(), sink_lport = h_free_port();
	char target[64], sink_target[64], direct_sink[64], *out = NULL;
	const char *conf = h_path("bench.conf");
	pid_t echo_pid, sink_pid;
	uint64_t deadline;
	int st;

	find_tools();
	echo_pid = backend_start("echo", echo_port, 2);
	sink_pid = backend_start("sink", sink_port, 1);
	h_write_file(conf,
	    "workers = 2;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"info\"; };\n"
	    "upstreams = ( { name = \"echo\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	    "              { name = \"sink\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"echo\"; },\n"
	    "              { listen = \"127.0.0.1:%d\"; upstream = \"sink\"; } );\n",
	    h_pidfile(), h_statsfile(), echo_port, sink_port, lport, sink_lport);
	h_sluiced_start(conf, lport, 2);
	if (h_wait_port(sink_lport, 10000) == -1)
		bail("sluiced does not listen on %d", sink_lport);
	snprintf(target, sizeof(target), "127.0.0.1:%d", lport);
	snprintf(sink_target, sizeof(sink_target), "127.0.0.1:%d", sink_lport);
	snprintf(direct_sink, sizeof(direct_sink), "127.0.0.1:%d", sink_port);

	/* hold: 2 processes, 3 source addresses, a short hold between the checks. */
	st = run_load(&out, 0,
	    (char *const[]){"hold", "-a", target, "-c", "300", "-P", "2", "-s", "127.0.0.2,3", "-d",
	        "0.3", "-q", "-t", "60", NULL});
	is(st, 0, "hold exits 0");
	is(result_field(out, "verified_open"), 300, "hold: all 300 connections echoed when opened");
	is(result_field(out, "verified_end"), 300, "hold: all 300 echoed again at the end");
	is(result_field(out, "ok"), 1, "hold: ok=1");
	free(out);

	st = run_load(&out, 0,
	    (char *const[]){"rr", "-a", target, "-c", "8", "-P", "2", "-d", "1", "-q", NULL});
	is(st, 0, "rr exits 0");
	ok(result_field(out, "ops") > 0, "rr: round trips were made and verified");
	is(result_field(out, "errors"), 0, "rr: no errors");
	ok(result_field(out, "p99_us") >= 0 && strstr(out, " p999_us=") != NULL,
	    "rr: the latency percentiles are reported");
	free(out);

	st = run_load(&out, 0,
	    (char *const[]){
	        "cps", "-a", target, "-c", "4", "-d", "1", "-s", "127.0.0.2,2", "-q", NULL});
	is(st, 0, "cps exits 0");
	ok(result_field(out, "ops") > 0, "cps: connections were made and verified");
	is(result_field(out, "errors") + result_field(out, "bad"), 0, "cps: no errors");
	free(out);

	st = run_load(
	    &out, 0, (char *const[]){"bulk", "-a", sink_target, "-c", "2", "-m", "8", "-q", NULL});
	is(st, 0, "bulk (sink) exits 0");
	is(result_field(out, "verified"), 2, "bulk: the sink verified both 8 MiB streams");
	is(result_field(out, "bytes"), 2 * 8 << 20, "bulk: every byte counted");
	free(out);

	st = run_load(&out, 0,
	    (char *const[]){"bulk", "-a", target, "-c", "2", "-m", "8", "-k", "echo", "-q", NULL});
	is(st, 0, "bulk (echo) exits 0");
	is(result_field(out, "verified"), 2, "bulk: both echoed streams came back exact");
	free(out);

	/* The checks bite: an echo is not a sink report, a sink is not an echo. */
	st = run_load(
	    &out, 1, (char *const[]){"bulk", "-a", target, "-c", "1", "-m", "1", "-q", NULL});
	is(st, 1, "bulk expecting a sink report from an echo backend fails");
	is(result_field(out, "bad"), 1, "... and counts the stream bad");
	free(out);
	st = run_load(&out, 1,
	    (char *const[]){
	        "bulk", "-a", direct_sink, "-c", "1", "-m", "1", "-k", "echo", "-q", NULL});
	is(st, 1, "bulk expecting an echo from a sink fails");
	free(out);

	/* The cost counters: an rr load under bench/compare --costs, counting
	 * sluiced's master and workers. */
	{
		char pid[32];
		char *argv[] = {compare_path, "--costs", pid, "--", load_path, "rr", "-a", target,
		    "-c", "8", "-d", "1", "-q", NULL};
		long long perf;

		snprintf(pid, sizeof(pid), "%d", (int)h_pidfile_pid());
		st = h_run(argv, &out, 90000);
		is(st, 0, "compare --costs runs the rr load and exits with its status");
		ok(result_field(out, "ops") > 0, "... the load's result line comes through");
		perf = line_field(out, "costs ", "perf");
		ok(perf == 0 || perf == 1, "costs line says whether perf counted (%lld)", perf);
		ok(line_field(out, "costs ", "ctxsw") > 0,
		    "context switches of sluiced's workers are counted (%lld)",
		    line_field(out, "costs ", "ctxsw"));
		if (perf == 1) {
			static const char *const keys[] = {
			    "epoll_ctl", "futex", "mm", "ubytes_in", "ubytes_out"};

			ok(line_field(out, "costs ", "syscalls") > 0,
			    "perf counted sluiced's system calls (%lld)",
			    line_field(out, "costs ", "syscalls"));
			for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
				ok(line_field(out, "costs ", keys[i]) >= 0,
				    "costs field %s is a number (%lld)", keys[i],
				    line_field(out, "costs ", keys[i]));
		} else {
			skip(6, "perf cannot count here (not root, or no tracepoints)");
		}
		if (st != 0 || perf < 0)
			diag("compare --costs said: %s", out ? out : "(nothing)");
		free(out);
	}

	/* Every relayed connection ends: nothing is left active in sluiced. */
	deadline = h_now_ms() + 20000;
	while (h_stat("active") != 0 && h_now_ms() < deadline)
		usleep(20000);
	is(h_stat("active"), 0, "sluiced holds no connection afterwards");
	ok(h_stat("accepted") >= 300, "sluiced accepted the load's connections (%llu)",
	    (unsigned long long)h_stat("accepted"));

	h_kill(echo_pid);
	h_kill(sink_pid);
	done_testing();
	return tap_exit();
}
