/* SPDX-License-Identifier: BSD-2-Clause */
/* i_sigstorm.c — integration test: signals in any order and number, while
 * verified echo traffic flows. A seeded random storm to the master (SIGHUP and
 * SIGUSR1 alone, in bursts of one kind, HUP during a reload, USR1 right after
 * a HUP and before it) and SIGUSR1 to single children (workers starting,
 * running or draining, the health checker), with transfers in flight
 * throughout and every byte checked; then USR1, QUIT and TERM to single
 * workers; then one QUIT or TERM ends it. Nothing may crash, hang, lose or
 * corrupt a byte. The seed is printed; SIGSTORM_SEED=N repeats a run,
 * SIGSTORM_EVENTS=N sizes the storm. Runs sluiced and echod as children of
 * this test on loopback ports and signals only them. */
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
#define CHILDREN (WORKERS + 1) /* and the health checker */
#define EVENTS 60      /* storm events by default; some are bursts */
#define BATCHES 3      /* transfer batches kept in flight */
#define BATCH_CONNS 3  /* connections per batch */
#define LONGS 6        /* slow single connections, each lasting seconds */
#define WAIT 20000     /* ms: bound for what should be quick */
#define SETTLE 60000   /* ms: bound for draining generations to leave */

static uint64_t rng;
static int lp;               /* sluiced's listener */
static const char *logpath; /* sluiced's log (stderr) */

/* Transfers: BATCHES handles, each replaced when it ends while the storm
 * runs, so that connections are always open across the signals; then LONGS
 * slots for slow connections opened now and then by the storm. Each of those
 * keeps the generation that accepted it draining for seconds, so reloads
 * pile up against the master's bound on draining generations and wait. */
static struct h_xfer *batch[BATCHES + LONGS];
static int batch_n[BATCHES + LONGS];
static int xfers_started, xfers_good;

static uint32_t
rnd(uint32_t below)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return below ? (uint32_t)(rng >> 11) % below : 0;
}

static void
batch_start(int i, int n)
{
	size_t sizes[16];

	for (int k = 0; k < n; k++)
		sizes[k] = 1 + 16384 + rnd(240 * 1024);
	/* Paced (4 KB per connection per round, at least 1 ms a round), so
	 * each stays open for many rounds, i.e. across several signals; the
	 * long ones at 64 bytes a round. */
	batch[i] = h_xfer_start(lp, n, sizes, i < BATCHES ? 4096 : 64);
	batch_n[i] = n;
	xfers_started += n;
}

/* Drive every batch for about ms milliseconds; a batch that has ended is
 * counted and, when refill is set, replaced by a new one. */
static void
traffic(int ms, int refill)
{
	uint64_t end = h_now_ms() + (uint64_t)ms;

	do {
		for (int i = 0; i < BATCHES + LONGS; i++) {
			if (batch[i] == NULL)
				continue;
			if (h_xfer_run(batch[i], 5) == 0) {
				xfers_good += h_xfer_finish(batch[i], 0);
				batch[i] = NULL;
				if (refill && i < BATCHES)
					batch_start(i, BATCH_CONNS);
			}
		}
	} while (h_now_ms() < end);
}

/* Let every batch end (bounded), counting the good transfers. */
static void
traffic_finish(void)
{
	for (int i = 0; i < BATCHES + LONGS; i++)
		if (batch[i] != NULL) {
			xfers_good += h_xfer_finish(batch[i], SETTLE);
			batch[i] = NULL;
		}
}

static void
sig(pid_t pid, int s, int *count)
{
	if (kill(pid, s) == 0)
		(*count)++;
}

/* Lines of the log that contain both a and b. */
static int
log_lines(const char *a, const char *b)
{
	char *text = h_read_file(logpath), *line, *save = NULL;
	int n = 0;

	if (text == NULL)
		return 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strstr(line, a) && (b == NULL || strstr(line, b)))
			n++;
	free(text);
	return n;
}

/* Worker exits the log reports as clean ("worker N (pid P, generation G)
 * exited") whose generation is at least gen: not retired by a reload. */
static int
exits_of_generation_at_least(uint64_t gen)
{
	char *text = h_read_file(logpath), *line, *save = NULL;
	int n = 0;

	if (text == NULL)
		return -1;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *p = strstr(line, "master: info: worker ");
		unsigned idx, g;
		int pid;

		if (p && sscanf(p, "master: info: worker %u (pid %d, generation %u) exited", &idx,
		             &pid, &g) == 3 && g >= gen) {
			diag("  %s", line);
			n++;
		}
	}
	free(text);
	return n;
}

/* "reloaded" lines after the master's "graceful stop" or "fast stop". */
static int
reloads_after_stop(void)
{
	char *text = h_read_file(logpath), *line, *save = NULL;
	int stopping = 0, n = 0;

	if (text == NULL)
		return -1;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, "master: notice: graceful stop") ||
		    strstr(line, "master: notice: fast stop"))
			stopping = 1;
		else if (stopping && strstr(line, "master: notice: reloaded "))
			n++;
	}
	free(text);
	return n;
}

/* A new client is relayed (one round trip) within the deadline. */
static int
fresh_client(void)
{
	int fd = h_connect(lp, WAIT), rc;

	if (fd == -1)
		return 0;
	rc = h_round_trip(fd, WAIT);
	close(fd);
	return rc == 0;
}

/* 1 when the log says a SIGHUP is waiting for its reload: the master's last
 * word on reloads is a coalesced, pending or deferred request rather than
 * "reloading" (which takes the request). Such a reload runs within 0.5 s or
 * once a draining generation exits, so the generation may still move. */
static int
reload_pending(void)
{
	char *text = h_read_file(logpath), *line, *save = NULL;
	int pending = 0;

	if (text == NULL)
		return 1;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, "master: info: reloading "))
			pending = 0;
		else if (strstr(line, "master: info: SIGHUP within ") ||
		         strstr(line, "master: debug: SIGHUP: a reload is already pending") ||
		         strstr(line, "master: warning: reload deferred: "))
			pending = 1;
	}
	free(text);
	return pending;
}

/* Until no reload is pending, the generation stops moving and exactly its
 * WORKERS workers are left, within SETTLE. Returns the generation, or 0. */
static uint64_t
settle(pid_t master)
{
	uint64_t end = h_now_ms() + SETTLE, gen = 0;

	while (h_now_ms() < end) {
		uint64_t g = h_stats_generation();

		if (g != 0 && g == gen && !reload_pending() &&
		    h_stats_running(NULL, 0, (uint32_t)g) == WORKERS &&
		    h_children(master, NULL, 0) == CHILDREN && h_stats_generation() == g)
			return g;
		gen = g;
		h_nap(300);
	}
	return 0;
}

/* The problems a log must not show, each with its count. */
static void
log_clean(const char *when)
{
	static const char *const bad[] = {"killed by signal", "exited with status", "keeps failing",
	    "is stuck", "still draining after the drain timeout", "did not stop",
	    "still running after the deadline", "cannot run", "is DOWN", "AddressSanitizer",
	    "runtime error"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		is(log_lines(bad[i], NULL), 0, "%s: the log never says \"%s\"", when, bad[i]);
}

static void
storm(pid_t master, int events, int *nhup, int *nusr1)
{
	for (int e = 0; e < events; e++) {
		uint32_t kind = rnd(9), k;
		pid_t kids[16];
		int nk;

		switch (kind) {
		case 0:
		case 1:
			sig(master, SIGHUP, nhup);
			break;
		case 2:
			sig(master, SIGUSR1, nusr1);
			break;
		case 3: /* a burst of HUPs: coalesced, never lost or piled up */
			for (k = 2 + rnd(5); k > 0; k--)
				sig(master, SIGHUP, nhup);
			break;
		case 4: /* a burst of USR1s */
			for (k = 2 + rnd(9); k > 0; k--)
				sig(master, SIGUSR1, nusr1);
			break;
		case 5: /* HUP during HUP: the second while the first's workers start */
			sig(master, SIGHUP, nhup);
			traffic((int)rnd(300), 1);
			sig(master, SIGHUP, nhup);
			break;
		case 6: /* USR1 during a reload: the master signals half-born workers */
			sig(master, SIGHUP, nhup);
			sig(master, SIGUSR1, nusr1);
			break;
		case 7: /* and the other way round */
			sig(master, SIGUSR1, nusr1);
			sig(master, SIGHUP, nhup);
			break;
		default: /* USR1 to one worker, maybe starting or draining */
			nk = h_children(master, kids, 16);
			if (nk > 0)
				sig(kids[rnd((uint32_t)nk)], SIGUSR1, nusr1);
			break;
		}
		/* Now and then a long connection, in a free slot. */
		k = BATCHES + rnd(LONGS);
		if (batch[k] == NULL && rnd(3) == 0)
			batch_start((int)k, 1);
		traffic((int)rnd(120), 1);
	}
}

/* Wait until generation gen runs WORKERS workers again, none of them gone1
 * or gone2. Returns how many it runs. */
static int
replaced(uint64_t gen, pid_t gone1, pid_t gone2)
{
	uint64_t end = h_now_ms() + WAIT;
	pid_t now[8];
	int n, found;

	do {
		n = h_stats_running(now, 8, (uint32_t)gen);
		found = 0;
		for (int i = 0; i < n; i++)
			found |= now[i] == gone1 || now[i] == gone2;
		if (n == WORKERS && !found)
			return n;
		h_nap(50);
	} while (h_now_ms() < end);
	return found ? 0 : n;
}

/* Signals to single workers: what worker.c and sluiced(8) say they do. */
static void
to_workers(pid_t master, uint64_t gen)
{
	pid_t pids[8], a, b, now[8];
	uint64_t end;
	char pfx[32], what[96];
	int n, before, ok_all;

	n = h_stats_running(pids, 8, (uint32_t)gen);
	if (n != WORKERS) {
		skip(14, "not %d running workers", WORKERS);
		return;
	}
	a = pids[0];
	b = pids[1];
	/* Young or old, a worker told to stop exits 0: no crash loop, no
	 * back-off (the storm's log check says so). */

	/* USR1: the worker reopens its log and carries on. */
	snprintf(pfx, sizeof(pfx), "[%d] ", (int)a);
	before = log_lines(pfx, "log file reopened");
	kill(a, SIGUSR1);
	end = h_now_ms() + WAIT;
	while (log_lines(pfx, "log file reopened") == before && h_now_ms() < end)
		h_nap(20);
	ok(log_lines(pfx, "log file reopened") > before, "USR1 to worker %d: it reopens its log",
	    (int)a);
	ok(h_alive(a) && h_stats_running(now, 8, (uint32_t)gen) == WORKERS &&
	       (now[0] == a || now[1] == a),
	    "  and keeps running");
	ok(fresh_client(), "  and clients are served");

	/* QUIT: the worker drains (its connections finish) and exits; the
	 * master replaces it, as for any worker that exits. */
	batch_start(0, 6);
	traffic(150, 0);
	kill(a, SIGQUIT);
	traffic_finish();
	is(xfers_good, xfers_started, "QUIT to worker %d with transfers in flight: all %d good",
	    (int)a, xfers_started);
	end = h_now_ms() + WAIT;
	while (h_alive(a) && h_now_ms() < end)
		h_nap(20);
	ok(!h_alive(a), "  it exits");
	snprintf(what, sizeof(what), "(pid %d, generation %llu) exited", (int)a,
	    (unsigned long long)gen);
	ok(h_wait_file_contains(logpath, what, WAIT), "  cleanly: \"%s\"", what);
	n = replaced(gen, a, a);
	ok(n == WORKERS, "  and the master replaces it (generation %llu has %d workers)",
	    (unsigned long long)gen, n);
	ok(fresh_client(), "  clients are served");

	/* TERM: the worker closes its connections and exits at once; it is
	 * replaced the same way. */
	kill(b, SIGTERM);
	end = h_now_ms() + WAIT;
	while (h_alive(b) && h_now_ms() < end)
		h_nap(20);
	ok(!h_alive(b), "TERM to worker %d: it exits", (int)b);
	snprintf(what, sizeof(what), "(pid %d, generation %llu) exited", (int)b,
	    (unsigned long long)gen);
	ok(h_wait_file_contains(logpath, what, WAIT), "  cleanly: \"%s\"", what);
	ok(replaced(gen, a, b) == WORKERS, "  and the master replaces it too");
	ok(fresh_client(), "  clients are served");
	is(h_children(master, NULL, 0), CHILDREN, "the master has %d children", CHILDREN);
	ok_all = log_lines("killed by signal", NULL) == 0 &&
	         log_lines("exited with status", NULL) == 0;
	ok(ok_all, "no worker died of a signal or failed");
}

int
main(void)
{
	const char *env = getenv("SIGSTORM_SEED"), *ev = getenv("SIGSTORM_EVENTS");
	pid_t master, kids[64];
	uint64_t seed, gen;
	int ep, nhup = 0, nusr1 = 0, events, status = 0, nkids, end_quit, gone, reloads, pre;
	int exited;
	uint64_t end;

	if (env && *env) {
		seed = strtoull(env, NULL, 0);
	} else {
		/* splitmix64's finalizer over time, pid and clock, so that runs
		 * started together still get unrelated seeds */
		seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid() << 32 ^
		       h_now_ms();
		seed = (seed ^ seed >> 30) * 0xBF58476D1CE4E5B9ULL;
		seed = (seed ^ seed >> 27) * 0x94D049BB133111EBULL;
		seed ^= seed >> 31;
	}
	if (seed == 0)
		seed = 1; /* xorshift's one fixed point */
	rng = seed;
	events = ev && *ev ? atoi(ev) : EVENTS;
	diag("seed %llu (repeat with SIGSTORM_SEED=%llu), %d events",
	    (unsigned long long)seed, (unsigned long long)seed, events);
	logpath = h_path("sluiced.log");

	ep = h_free_port();
	h_echod_start(ep);
	lp = h_free_port();
	/* h_conf's file, with health checks: the checker is a child too, which
	 * every reload replaces and every USR1 reaches. */
	h_write_file(h_path("sluiced.conf"),
	    "workers = %d;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" );\n"
	    "                health = { interval = \"500ms\"; timeout = \"250ms\"; }; } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n"
	    "timeouts = { drain = \"30s\"; };\n",
	    WORKERS, h_pidfile(), h_statsfile(), ep, lp);
	master = h_sluiced_start(h_path("sluiced.conf"), lp, WORKERS);
	ok(fresh_client(), "a client is served before the storm");

	for (int i = 0; i < BATCHES; i++)
		batch_start(i, BATCH_CONNS);
	sig(master, SIGHUP, &nhup); /* at least one reload, whatever the seed */
	storm(master, events, &nhup, &nusr1);
	traffic_finish();
	diag("sent %d HUP and %d USR1", nhup, nusr1);
	ok(h_alive(master), "the master survived %d HUP and %d USR1", nhup, nusr1);
	is(xfers_good, xfers_started, "all %d transfers through the storm got every byte back",
	    xfers_started);

	gen = settle(master);
	ok(gen != 0, "it settles: generation %llu with %d workers and the checker, nothing else",
	    (unsigned long long)gen, WORKERS);
	ok(fresh_client(), "a fresh client is served after the storm");
	reloads = log_lines("master: notice: reloaded ", NULL);
	is((long long)gen, 1 + reloads, "the generation counts the %d reloads logged", reloads);
	ok(reloads >= 1 && reloads <= nhup, "1 to %d reloads (HUPs coalesce)", nhup);
	log_clean("storm");
	is(exits_of_generation_at_least(gen), 0,
	    "every worker that exited was retired by a reload (an older generation)");

	xfers_started = xfers_good = 0;
	to_workers(master, gen);

	/* The end, by the seed: QUIT (graceful: transfers in flight complete,
	 * none is refused) or TERM (fast), maybe right after a last HUP, a
	 * burst of them or a USR1, so that it comes during a reload. */
	end_quit = rnd(2) == 0;
	pre = (int)rnd(4);
	xfers_started = xfers_good = 0;
	if (end_quit) {
		batch_start(0, 4);
		traffic(200, 0);
	}
	nkids = h_children(master, kids, 64);
	if (pre == 1 || pre == 2)
		for (int k = pre == 1 ? 1 : 4; k > 0; k--)
			sig(master, SIGHUP, &nhup);
	else if (pre == 3)
		sig(master, SIGUSR1, &nusr1);
	ok(kill(master, end_quit ? SIGQUIT : SIGTERM) == 0, "%s sent to the master%s",
	    end_quit ? "SIGQUIT" : "SIGTERM",
	    pre == 0 ? "" : pre == 1 ? " right after a HUP" : pre == 2 ? " after 4 HUPs" : " after a USR1");
	/* More signals while it stops: ignored (HUP) or harmless. */
	if (rnd(2)) {
		sig(master, SIGHUP, &nhup);
		sig(master, SIGUSR1, &nusr1);
		sig(master, end_quit ? SIGQUIT : SIGTERM, &nhup);
	}
	/* Every child it has until it exits is recorded, the ones a last
	 * reload forks too; the transfers are driven meanwhile. */
	end = h_now_ms() + SETTLE;
	exited = -1;
	while (exited == -1 && h_now_ms() < end) {
		pid_t now[64];
		int nn = h_children(master, now, 64);

		for (int i = 0; i < nn; i++) {
			int k = 0;

			while (k < nkids && kids[k] != now[i])
				k++;
			if (k == nkids && nkids < 64)
				kids[nkids++] = now[i];
		}
		traffic(10, 0);
		exited = h_wait_exit(master, 10, &status);
	}
	ok(exited == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "the master exits 0");
	if (end_quit) {
		traffic_finish();
		is(xfers_good, xfers_started, "  the %d transfers in flight at the QUIT completed",
		    xfers_started);
	}
	end = h_now_ms() + WAIT;
	do {
		gone = 1;
		for (int i = 0; i < nkids; i++)
			gone &= !h_alive(kids[i]);
		if (!gone)
			h_nap(20);
	} while (!gone && h_now_ms() < end);
	ok(nkids >= CHILDREN && gone, "all its %d children are gone", nkids);
	is(reloads_after_stop(), 0, "no reload ran once the stop had begun");
	ok(access(h_pidfile(), F_OK) == -1, "the pid file is removed");
	is(h_port_refuses(lp), 1, "the port refuses");
	log_clean("at the end");
	done_testing();
	return tap_exit();
}
