/* SPDX-License-Identifier: BSD-2-Clause */
/* i_crash.c — integration test of crash safety: a worker SIGKILLed under load
 * loses only its own connections and is replaced at once while the other and
 * new connections carry on; one that keeps dying young is restarted with the
 * logged doubling back-off. Runs sluiced and echod children on loopback; it
 * kills only workers of that sluiced, by the pids their slots publish. */
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
#define NLONG 12
#define LONG_SIZE (2u << 20)
#define BACKOFF_ROUNDS 4

struct wslot {
	pid_t pid;
	uint32_t index;
	uint64_t started_ms;
	uint64_t active;
};

/* RUNNING workers, from their slots. Returns how many (up to max). */
static int
workers(struct wslot *out, int max)
{
	struct stats_seg seg;
	char err[256];
	int n = 0;

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return 0;
	for (uint32_t i = 0; i < seg.nslots && n < max; i++) {
		const struct stats_slot *s = &seg.slots[i];

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != STATS_SLOT_RUNNING)
			continue;
		out[n].pid = __atomic_load_n(&s->pid, __ATOMIC_RELAXED);
		out[n].index = __atomic_load_n(&s->index, __ATOMIC_RELAXED);
		out[n].started_ms = __atomic_load_n(&s->started_ms, __ATOMIC_RELAXED);
		out[n].active = STATS_GET(s, active);
		n++;
	}
	stats_detach(&seg);
	return n;
}

/* Poll until a RUNNING worker with this index and a pid other than `not`
 * shows up; fills *w. Returns 1, or 0 on timeout. */
static int
wait_worker(uint32_t index, pid_t not, struct wslot *w, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	struct wslot all[64];

	for (;;) {
		int n = workers(all, 64);

		for (int i = 0; i < n; i++)
			if (all[i].index == index && all[i].pid != not && all[i].pid > 0) {
				*w = all[i];
				return 1;
			}
		if (h_now_ms() >= end)
			return 0;
		h_nap(2);
	}
}

static int
echo_ok(int port, int n)
{
	size_t sizes[16];

	for (int i = 0; i < n && i < 16; i++)
		sizes[i] = 5000 + 1111 * (size_t)i;
	return h_echo_many(port, n, sizes, 0, 20000) == n;
}

int
main(void)
{
	char line[160];
	struct wslot ws[64], victim, other, w, prev;
	size_t sizes[NLONG];
	struct h_xfer *x;
	uint64_t end, active, kill_ms;
	int ep, lp, n, good, status;
	pid_t master;

	ep = h_free_port();
	h_echod_start(ep);
	lp = h_free_port();
	master = h_sluiced_start(h_conf("sluiced.conf", WORKERS, lp, &ep, 1,
	    "timeouts = { idle = \"60s\"; drain = \"60s\"; };"), lp, WORKERS);

	/* ---- a worker killed under load ---- */
	for (int i = 0; i < NLONG; i++)
		sizes[i] = LONG_SIZE + 1000 * (size_t)i;
	x = h_xfer_start(lp, NLONG, sizes, 2048);
	end = h_now_ms() + 20000;
	while (((active = h_stat("active")) < NLONG || active == UINT64_MAX) && h_now_ms() < end)
		h_xfer_run(x, 10);
	is(active, NLONG, "%d long transfers in flight", NLONG);
	n = workers(ws, 64);
	is(n, WORKERS, "%d workers run", WORKERS);
	victim = ws[0].active >= ws[1].active ? ws[0] : ws[1];
	other = ws[0].active >= ws[1].active ? ws[1] : ws[0];
	diag("worker %u (pid %d) holds %llu, worker %u (pid %d) holds %llu", victim.index,
	    (int)victim.pid, (unsigned long long)victim.active, other.index, (int)other.pid,
	    (unsigned long long)other.active);
	ok(victim.active > 0, "the victim holds connections of its own");
	ok(kill(victim.pid, SIGKILL) == 0, "SIGKILL worker %u (pid %d)", victim.index,
	    (int)victim.pid);
	ok(echo_ok(lp, 8), "new connections work right after the kill");
	memset(&w, 0, sizeof(w));
	n = wait_worker(victim.index, victim.pid, &w, 10000);
	ok(n, "worker %u is replaced (pid %d)", victim.index, (int)w.pid);
	good = h_xfer_finish(x, 60000);
	is(good, NLONG - (int)victim.active,
	    "only the victim's %llu transfers were lost; the other %llu ended intact",
	    (unsigned long long)victim.active, (unsigned long long)other.active);
	ok(h_alive(other.pid), "the other worker (pid %d) kept running", (int)other.pid);
	snprintf(line, sizeof(line), "(pid %d) killed by signal 9", (int)victim.pid);
	ok(h_wait_file_contains(h_path("sluiced.log"), line, 5000), "log: %s", line);
	ok(echo_ok(lp, 8), "new connections work with the replacement");
	/* The victim's sessions never closed: the master counts them closed
	 * as lost when it folds the slot, so the totals still balance. */
	{
		uint64_t acc = h_stat("accepted"), cl = h_stat("closed"), act = h_stat("active");

		ok(acc == cl + act, "accepted = closed + active after the kill (%llu = %llu + %llu)",
		    (unsigned long long)acc, (unsigned long long)cl, (unsigned long long)act);
		ok(h_stat("closed_lost") >= victim.active, "closed_lost counts the victim's %llu",
		    (unsigned long long)victim.active);
	}

	/* ---- a worker that dies young over and over backs off ---- */
	/* The replacement above lived; wait until it is past the crash window
	 * so the first kill here is an ordinary death, replaced at once. */
	end = h_now_ms() + 10000;
	while (h_now_ms() < end && wait_worker(victim.index, 0, &w, 1000) &&
	    stats_now_ms() < w.started_ms + 1500)
		h_nap(50);
	prev = w;
	kill(prev.pid, SIGKILL);
	n = wait_worker(victim.index, prev.pid, &w, 10000);
	ok(n, "a worker that ran for a while is replaced at once (pid %d)", (int)w.pid);
	for (int round = 1; round <= BACKOFF_ROUNDS; round++) {
		unsigned delay_ms = 100u << (round - 1);
		char want[128];

		/* Kill it at once, well inside the one-second crash window. */
		kill_ms = stats_now_ms();
		kill(w.pid, SIGKILL);
		diag("round %d: pid %d killed %lld ms after it started", round, (int)w.pid,
		    (long long)kill_ms - (long long)w.started_ms);
		snprintf(want, sizeof(want), "worker %u keeps failing (%d in a row): restarting it "
		    "in %.1fs", victim.index, round, delay_ms / 1000.0);
		ok(h_wait_file_contains(h_path("sluiced.log"), want, 5000), "log: %s", want);
		prev = w;
		if (!ok(wait_worker(victim.index, prev.pid, &w, 20000),
		        "round %d: restarted after the back-off", round))
			break;
		ok(w.started_ms >= kill_ms + delay_ms,
		    "round %d: not sooner than %u ms after the crash (%lld ms)", round, delay_ms,
		    (long long)w.started_ms - (long long)kill_ms);
		ok(h_alive(other.pid) && echo_ok(lp, 2),
		    "round %d: the other worker serves meanwhile", round);
	}
	/* The last one is left alone: it stays. */
	h_nap(1200);
	ok(h_alive(w.pid), "the last replacement (pid %d) keeps running", (int)w.pid);
	ok(echo_ok(lp, 8), "new connections work after the crash loop");
	is(workers(ws, 64), WORKERS, "%d workers run in the end", WORKERS);

	ok(kill(master, SIGTERM) == 0, "SIGTERM sent");
	ok(h_wait_exit(master, 15000, &status) == 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "master exited 0");
	done_testing();
	return tap_exit();
}
