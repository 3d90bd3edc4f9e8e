/* SPDX-License-Identifier: BSD-2-Clause */
/* i_statsload.c — integration test: sluicestat stays consistent under load.
 * While echo transfers run through sluiced, through a reload that adds a
 * server and a worker killed with SIGKILL, the real sluicestat (--json) is
 * run again and again: no total, listener row or server row may ever go
 * backwards, the master never changes, and at the end every figure equals
 * exactly what the transfers sent and got back. Runs sluiced and two echo
 * backends as children on loopback ports; kills only workers of the sluiced
 * it started, by the pids their stats slots publish. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"

#define WORKERS 2
#define NA 10 /* transfers running through the reload */
#define NB 6  /* started right after it, on the new generation */
#define NC 8  /* after the crash */
#define CHUNK 1024  /* bytes per connection per round: keeps them in flight */
#define STEP_MS 10  /* transfers driven between two readings */
#define MAX_SERVERS 4

/* What one reading of sluicestat --json says, the parts we check. */
struct reading {
	int32_t master_pid;
	uint64_t generation;
	uint64_t accepted, closed, active, bytes_in, bytes_out, closed_done, refused;
	uint64_t l_accepted, l_bytes_in, l_bytes_out; /* listener row 0 */
	unsigned nservers;
	uint64_t s_connects[MAX_SERVERS], s_bytes_in[MAX_SERVERS], s_bytes_out[MAX_SERVERS];
	char s_address[MAX_SERVERS][64];
};

static struct reading last;
static int have_last;
static unsigned polls, backwards, bad_polls;
static int32_t first_master;

/* The number after "key": in text from `from` on, or UINT64_MAX. */
static uint64_t
num_after(const char *from, const char *key)
{
	char pat[96];
	const char *p;

	if (from == NULL)
		return UINT64_MAX;
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(from, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : UINT64_MAX;
}

/* Parse what we need; 0, or -1 when something is missing. */
static int
parse(const char *json, struct reading *r)
{
	const char *totals = strstr(json, "\"totals\": {");
	const char *listeners = strstr(json, "\"listeners\": [");
	const char *servers = strstr(json, "\"servers\": [");
	const char *p;

	memset(r, 0, sizeof(*r));
	if (totals == NULL || listeners == NULL || servers == NULL ||
	    strstr(json, "\"settled\": true") == NULL)
		return -1;
	r->master_pid = (int32_t)num_after(strstr(json, "\"master\": "), "pid");
	r->generation = num_after(json, "generation");
	r->accepted = num_after(totals, "accepted");
	r->closed = num_after(totals, "closed");
	r->active = num_after(totals, "active");
	r->bytes_in = num_after(totals, "bytes_in");
	r->bytes_out = num_after(totals, "bytes_out");
	r->closed_done = num_after(totals, "closed_done");
	r->refused = num_after(totals, "refused");
	p = strstr(listeners, "\"counters\": ");
	if (p == NULL || p > servers)
		return -1;
	r->l_accepted = num_after(p, "accepted");
	r->l_bytes_in = num_after(p, "bytes_in");
	r->l_bytes_out = num_after(p, "bytes_out");
	for (p = strstr(servers, "\"address\": \""); p != NULL && r->nservers < MAX_SERVERS;
	     p = strstr(p + 1, "\"address\": \"")) {
		const char *c = strstr(p, "\"counters\": ");
		unsigned i = r->nservers++;

		sscanf(p + strlen("\"address\": \""), "%63[^\"]", r->s_address[i]);
		r->s_connects[i] = num_after(c, "connects");
		r->s_bytes_in[i] = num_after(c, "bytes_in");
		r->s_bytes_out[i] = num_after(c, "bytes_out");
	}
	if (r->accepted == UINT64_MAX || r->bytes_out == UINT64_MAX || r->l_bytes_out == UINT64_MAX)
		return -1;
	return 0;
}

#define MONO(field)                                                                      \
	do {                                                                             \
		if (r.field < last.field) {                                              \
			diag("poll %u: " #field " went from %llu to %llu", polls,        \
			    (unsigned long long)last.field, (unsigned long long)r.field); \
			backwards++;                                                     \
		}                                                                        \
	} while (0)

/* Run sluicestat --json once; check it against the reading before. Returns
 * 0 with *out, or -1 when the run or its output was bad (counted). */
static int
poll_stats(struct reading *out)
{
	char *argv[] = { (char *)h_sluicestat(), "-s", (char *)h_statsfile(), "--json", NULL };
	struct reading r;
	char *text = NULL;
	int st = h_run(argv, &text, 20000);

	polls++;
	if (st != 0 || text == NULL || parse(text, &r) == -1) {
		diag("poll %u: sluicestat --json exited %d: %.300s", polls, st, text ? text : "");
		bad_polls++;
		free(text);
		return -1;
	}
	free(text);
	if (first_master == 0)
		first_master = r.master_pid;
	if (r.master_pid != first_master) {
		diag("poll %u: master pid %d, was %d", polls, (int)r.master_pid, (int)first_master);
		bad_polls++;
	}
	if (have_last) {
		MONO(generation);
		MONO(accepted);
		MONO(closed);
		MONO(bytes_in);
		MONO(bytes_out);
		MONO(closed_done);
		MONO(l_accepted);
		MONO(l_bytes_in);
		MONO(l_bytes_out);
		if (r.nservers < last.nservers) {
			diag("poll %u: %u servers, were %u", polls, r.nservers, last.nservers);
			backwards++;
		}
		for (unsigned i = 0; i < last.nservers && i < r.nservers; i++) {
			MONO(s_connects[i]);
			MONO(s_bytes_in[i]);
			MONO(s_bytes_out[i]);
		}
	}
	last = r;
	have_last = 1;
	if (out)
		*out = r;
	return 0;
}

/* Drive transfers for about ms, reading the stats once. Returns how many
 * transfers are unfinished. */
static int
step(struct h_xfer *x, int ms)
{
	int left = x ? h_xfer_run(x, ms) : 0;

	if (x == NULL)
		h_nap(ms);
	poll_stats(NULL);
	return left;
}

static size_t *
sizes_for(int n, unsigned seed, uint64_t *total)
{
	size_t *sizes = calloc((size_t)n, sizeof(*sizes));

	if (sizes == NULL)
		bail("out of memory");
	for (int i = 0; i < n; i++) {
		sizes[i] = 64 * 1024 + (size_t)((seed * 2654435761u + (unsigned)i * 40503u) % (256 * 1024));
		*total += sizes[i];
	}
	return sizes;
}

static void
write_conf(const char *path, int lp, const int *ports, int nports)
{
	char servers[256] = "";

	for (int i = 0; i < nports; i++) {
		size_t len = strlen(servers);

		snprintf(servers + len, sizeof(servers) - len, "%s\"127.0.0.1:%d\"", i ? ", " : "",
		    ports[i]);
	}
	h_write_file(path,
	    "workers = %d;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"info\"; };\n"
	    "timeouts = { drain = \"60s\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( %s ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    WORKERS, h_pidfile(), h_statsfile(), servers, lp);
}

/* Poll (reading stats each time) until `want` workers run, none of them
 * `dead`. */
static int
wait_workers(pid_t dead, int want, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	pid_t pids[64];

	for (;;) {
		int n = h_stats_running(pids, 64, 0), found = 0;

		for (int i = 0; i < n; i++)
			found |= pids[i] == dead;
		if (n == want && !found)
			return 1;
		if (h_now_ms() >= end)
			return 0;
		step(NULL, 30);
	}
}

int
main(void)
{
	int ep[2] = { h_free_port(), h_free_port() }, lp = h_free_port(), good, status;
	uint64_t sent_a = 0, sent_b = 0, sent_c = 0, sent, end;
	size_t *sa, *sb, *sc;
	struct reading base, fin, r;
	struct h_xfer *xa, *xb = NULL, *xc;
	const char *conf = h_path("sluice.conf");
	pid_t master, pids[64], victim;
	int reloaded = 0, left_a = NA, left_b = NB, n, seen_gen2 = 0;
	uint64_t s_in = 0, s_out = 0, s_conn = 0;

	h_echod_start(ep[0]);
	h_echod_start(ep[1]);
	write_conf(conf, lp, ep, 1);
	master = h_sluiced_start(conf, lp, WORKERS);
	sa = sizes_for(NA, 1, &sent_a);
	sb = sizes_for(NB, 2, &sent_b);
	sc = sizes_for(NC, 3, &sent_c);

	if (poll_stats(&base) == -1)
		bail("sluicestat --json does not read the segment");
	ok(base.generation == 1 && base.nservers == 1 && base.master_pid == (int32_t)master,
	    "sluicestat --json reads generation 1, one server, master pid %d", (int)master);

	/* Phase 1: transfers through a reload that adds a server; a second
	 * batch starts on the new generation while the old one drains. */
	xa = h_xfer_start(lp, NA, sa, CHUNK);
	end = h_now_ms() + 120000;
	while ((left_a > 0 || xb == NULL || left_b > 0) && h_now_ms() < end) {
		if (left_a > 0)
			left_a = h_xfer_run(xa, STEP_MS);
		if (xb != NULL && left_b > 0)
			left_b = h_xfer_run(xb, STEP_MS);
		if (left_a == 0 && (xb == NULL || left_b == 0))
			h_nap(STEP_MS);
		poll_stats(NULL);
		if (!reloaded && h_xfer_sent(xa) >= sent_a / 3) {
			write_conf(conf, lp, ep, 2);
			kill(master, SIGHUP);
			reloaded = 1;
		}
		if (reloaded && xb == NULL && last.generation == 2) {
			seen_gen2 = 1;
			xb = h_xfer_start(lp, NB, sb, CHUNK);
		}
	}
	ok(reloaded && seen_gen2, "reloaded to generation 2 while transfers ran");
	good = h_xfer_finish(xa, 30000);
	is(good, NA, "every transfer begun before the reload completed intact");
	good = xb ? h_xfer_finish(xb, 30000) : 0;
	is(good, NB, "every transfer begun after the reload completed intact");

	/* The old generation drains and is folded while we keep reading. */
	end = h_now_ms() + 30000;
	while (h_now_ms() < end && (poll_stats(&r) == -1 || r.active != 0 || h_gen_slots(1, 0) != 0))
		h_nap(20);
	is(h_gen_slots(1, 0), 0, "the old generation's workers exited and were folded");

	/* Phase 2: a worker of the new generation killed; readings go on
	 * while the master folds it and starts another. */
	n = h_stats_running(pids, 64, 2);
	victim = n > 0 ? pids[0] : 0;
	ok(victim > 0, "a worker of generation 2 to kill (pid %d)", (int)victim);
	if (victim > 0)
		kill(victim, SIGKILL);
	ok(wait_workers(victim, WORKERS, 20000), "the killed worker was replaced");

	/* Phase 3: more transfers on the replacement. */
	xc = h_xfer_start(lp, NC, sc, CHUNK);
	end = h_now_ms() + 120000;
	while (step(xc, STEP_MS) > 0 && h_now_ms() < end)
		;
	good = h_xfer_finish(xc, 30000);
	is(good, NC, "every transfer after the crash completed intact");

	/* Quiet: every session closed. */
	end = h_now_ms() + 20000;
	while (h_now_ms() < end && (poll_stats(&r) == -1 || r.active != 0 || r.closed != r.accepted))
		h_nap(20);
	if (poll_stats(&fin) == -1)
		bail("the last reading failed");

	diag("%u readings of sluicestat --json", polls);
	ok(polls >= 20, "sluicestat read the segment %u times along the way", polls);
	is(bad_polls, 0, "every reading settled, parsed, and named the same master");
	is(backwards, 0, "no total, listener or server figure ever went backwards");

	sent = sent_a + sent_b + sent_c;
	is(fin.accepted - base.accepted, NA + NB + NC, "accepted: exactly the %d connections",
	    NA + NB + NC);
	is(fin.closed - base.closed, NA + NB + NC, "closed: all of them");
	is(fin.closed_done - base.closed_done, NA + NB + NC, "closed_done: all of them");
	is(fin.refused - base.refused, 0, "refused: none");
	is(fin.active, 0, "active: none left");
	is(fin.bytes_in - base.bytes_in, sent, "bytes_in: exactly the %llu bytes sent",
	    (unsigned long long)sent);
	is(fin.bytes_out - base.bytes_out, sent, "bytes_out: exactly the bytes echoed back");
	is(fin.l_accepted - base.l_accepted, NA + NB + NC, "listener row: accepted");
	is(fin.l_bytes_in - base.l_bytes_in, sent, "listener row: bytes_in");
	is(fin.l_bytes_out - base.l_bytes_out, sent, "listener row: bytes_out");
	is(fin.nservers, 2, "two server rows: the first kept across the reload, one added");
	for (unsigned i = 0; i < fin.nservers; i++) {
		s_in += fin.s_bytes_in[i] - (i < base.nservers ? base.s_bytes_in[i] : 0);
		s_out += fin.s_bytes_out[i] - (i < base.nservers ? base.s_bytes_out[i] : 0);
		s_conn += fin.s_connects[i] - (i < base.nservers ? base.s_connects[i] : 0);
	}
	is(s_in, sent, "server rows: bytes_in adds up");
	is(s_out, sent, "server rows: bytes_out adds up");
	is(s_conn, NA + NB + NC, "server rows: one connect per connection");
	ok(fin.s_bytes_in[1] > 0 && fin.s_bytes_in[0] > base.s_bytes_in[0],
	    "both servers carried traffic");

	kill(master, SIGTERM);
	ok(h_wait_exit(master, 20000, &status) == 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "sluiced stopped, exit 0");
	free(sa);
	free(sb);
	free(sc);
	done_testing();
	return tap_exit();
}
