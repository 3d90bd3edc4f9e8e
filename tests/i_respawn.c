/* SPDX-License-Identifier: BSD-2-Clause */
/* i_respawn.c — integration test of worker replacement: a worker killed with
 * SIGKILL is logged and replaced at once, twice in a row, and the counters it
 * leaves behind stay in the totals. Runs sluiced and echod as children of
 * this test on loopback ports; it kills only workers of the sluiced it
 * started, by the pids their stats slots publish. */
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

static int
has_pid(const pid_t *pids, int n, pid_t pid)
{
	for (int i = 0; i < n; i++)
		if (pids[i] == pid)
			return 1;
	return 0;
}

/* 1 when line holds pid as a whole number. */
static int
line_has_pid(const char *line, pid_t pid)
{
	char num[32];
	size_t len = (size_t)snprintf(num, sizeof(num), "%ld", (long)pid);

	for (const char *p = strstr(line, num); p != NULL; p = strstr(p + 1, num))
		if ((p == line || p[-1] < '0' || p[-1] > '9') && (p[len] < '0' || p[len] > '9'))
			return 1;
	return 0;
}

/* 1 when some line of the sluiced log holds pid and needle. */
static int
log_has_pid(pid_t pid, const char *needle)
{
	char *text = h_read_file(h_path("sluiced.log")), *line, *save = NULL;
	int found = 0;

	if (text == NULL)
		return 0;
	for (line = strtok_r(text, "\n", &save); line != NULL && !found;
	     line = strtok_r(NULL, "\n", &save))
		found = strstr(line, needle) != NULL && line_has_pid(line, pid);
	free(text);
	return found;
}

static int
wait_log_pid(pid_t pid, const char *needle, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (log_has_pid(pid, needle))
			return 1;
		if (h_now_ms() >= end)
			return 0;
		h_nap(20);
	}
}

/* Poll until WORKERS workers run and none of them is `dead`; their pids go
 * to pids. */
static int
wait_replaced(pid_t dead, pid_t *pids, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	int n;

	for (;;) {
		n = h_stats_running(pids, 64, 0);
		if (n == WORKERS && !has_pid(pids, n, dead))
			return 1;
		if (h_now_ms() >= end) {
			diag("%d running, killed pid %d %s among them", n, (int)dead,
			    has_pid(pids, n, dead) ? "still" : "not");
			return 0;
		}
		h_nap(20);
	}
}

/*
 * From the slot of the RUNNING worker pid: how long it has been up and what
 * it accepted. Returns 0, or -1 when there is no such slot. *retired gets the
 * retired row's accepted either way (0 when the segment is unreadable).
 */
static int
worker_slot(pid_t pid, int64_t *age_ms, uint64_t *accepted, uint64_t *retired)
{
	struct stats_seg seg;
	char err[256];
	int found = -1;

	*retired = 0;
	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return -1;
	*retired = __atomic_load_n(&seg.hdr->retired.accepted, __ATOMIC_ACQUIRE);
	for (uint32_t i = 0; pid > 0 && i < seg.nslots; i++) {
		const struct stats_slot *s = &seg.slots[i];

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == STATS_SLOT_RUNNING &&
		    __atomic_load_n(&s->pid, __ATOMIC_RELAXED) == pid) {
			*age_ms = (int64_t)stats_now_ms() -
			    (int64_t)__atomic_load_n(&s->started_ms, __ATOMIC_RELAXED);
			*accepted = STATS_GET(s, accepted);
			found = 0;
			break;
		}
	}
	stats_detach(&seg);
	return found;
}

static uint64_t
retired_accepted(void)
{
	int64_t age;
	uint64_t acc, retired;

	worker_slot(0, &age, &acc, &retired);
	return retired;
}

static int
echo_ok(int port, int n)
{
	size_t sizes[16];

	for (int i = 0; i < n && i < 16; i++)
		sizes[i] = 20000 + 3333 * (size_t)i;
	return h_echo_many(port, n, sizes, 0, 20000) == n;
}

/*
 * Kill `victim` and check it is replaced. `other` is the worker that must be
 * left alone. Returns the replacement's pid, or 0.
 */
static pid_t
kill_and_check(const char *round, pid_t master, pid_t victim, pid_t other, int lp)
{
	pid_t pids[64], fresh = 0;
	uint64_t before, after, t0, end, own = 0, retired0 = 0, retired1;
	int64_t age;
	int replaced;

	if (worker_slot(victim, &age, &own, &retired0) == -1)
		diag("%s: no RUNNING slot for pid %d", round, (int)victim);
	if (own == 0)
		diag("%s: the victim accepted nothing, so folding is not really tested", round);
	before = h_stat("accepted");
	ok(before != UINT64_MAX && before > 0, "%s: accepted before the kill: %llu", round,
	    (unsigned long long)before);
	ok(kill(victim, SIGKILL) == 0, "%s: SIGKILL worker pid %d", round, (int)victim);
	t0 = h_now_ms();
	replaced = wait_replaced(victim, pids, 10000);
	ok(replaced, "%s: %d workers run again, pid %d not among them (%llu ms)", round, WORKERS,
	    (int)victim, (unsigned long long)(h_now_ms() - t0));
	ok(replaced && has_pid(pids, WORKERS, other), "%s: the other worker (pid %d) kept running",
	    round, (int)other);
	for (int i = 0; replaced && i < WORKERS; i++)
		if (pids[i] != other)
			fresh = pids[i];
	ok(!h_alive(victim), "%s: the killed worker is gone", round);
	ok(h_alive(master), "%s: the master still runs", round);
	ok(wait_log_pid(victim, "signal 9", 5000), "%s: log names pid %d and signal 9", round,
	    (int)victim);
	end = h_now_ms() + 5000;
	while ((retired1 = retired_accepted()) < retired0 + own && h_now_ms() < end)
		h_nap(20);
	ok(retired1 >= retired0 + own,
	    "%s: the victim's %llu accepted were folded into the retired row (%llu -> %llu)",
	    round, (unsigned long long)own, (unsigned long long)retired0,
	    (unsigned long long)retired1);
	after = h_stat("accepted");
	ok(after != UINT64_MAX && after >= before,
	    "%s: accepted did not go backwards (%llu -> %llu)", round,
	    (unsigned long long)before, (unsigned long long)after);
	ok(echo_ok(lp, 8), "%s: new connections work", round);
	ok(h_wait_stat("accepted", before + 8, 5000), "%s: accepted counts on from %llu", round,
	    (unsigned long long)before);
	return fresh;
}

int
main(void)
{
	int ep = h_free_port(), lp, status, r;
	pid_t master, pids[64], fresh, victim, other;
	uint64_t end, acc0, acc1, retired;
	int64_t age = -1;

	h_echod_start(ep);
	lp = h_free_port();
	master = h_sluiced_start(h_conf("sluiced.conf", WORKERS, lp, &ep, 1, NULL), lp, WORKERS);
	is(h_stats_running(pids, 64, 0), WORKERS, "%d workers run", WORKERS);
	ok(echo_ok(lp, 8), "relaying works before any kill");

	/* The victim is the worker that accepted most, so its death leaves
	 * counters that must be folded. */
	acc0 = acc1 = 0;
	worker_slot(pids[0], &age, &acc0, &retired);
	worker_slot(pids[1], &age, &acc1, &retired);
	victim = acc0 >= acc1 ? pids[0] : pids[1];
	other = acc0 >= acc1 ? pids[1] : pids[0];
	fresh = kill_and_check("first kill", master, victim, other, lp);
	ok(fresh > 0, "a replacement worker runs");

	/* The replacement must live past the crash-loop window, so its death
	 * is not a crash loop and is replaced at once too; meanwhile traffic
	 * until it has accepted something of its own. */
	end = h_now_ms() + 15000;
	age = -1;
	acc0 = 0;
	while (fresh > 0 && h_now_ms() < end) {
		if (worker_slot(fresh, &age, &acc0, &retired) == 0 && age >= 1500 && acc0 > 0)
			break;
		if (!echo_ok(lp, 4))
			break;
		h_nap(50);
	}
	ok(age >= 1500, "the replacement has run for %lld ms", (long long)age);
	if (acc0 == 0)
		diag("the replacement accepted nothing so far");
	if (fresh > 0) {
		pid_t second = kill_and_check("second kill", master, fresh, other, lp);

		ok(second > 0 && second != fresh && second != victim,
		    "the second replacement is a new process");
		/* A young worker told to stop exits 0: that is no crash, and
		 * no reason to hold its replacement back. */
		age = -1;
		if (second > 0)
			worker_slot(second, &age, &acc0, &retired);
		if (second > 0 && age >= 0 && age < 800) {
			int backoffs = h_count_lines(h_path("sluiced.log"), "keeps failing"), n;
			pid_t third = 0;

			kill(second, SIGTERM);
			end = h_now_ms() + 10000;
			while (h_now_ms() < end) {
				n = h_stats_running(pids, 64, 0);
				if (n == WORKERS && !has_pid(pids, n, second)) {
					third = has_pid(pids, n, other) ? (pids[0] == other ? pids[1] : pids[0])
					                                : pids[0];
					break;
				}
				h_nap(20);
			}
			ok(third > 0, "a young worker stopped with SIGTERM is replaced");
			is(h_count_lines(h_path("sluiced.log"), "keeps failing"), backoffs,
			    "its clean exit is not taken for a crash loop (no back-off)");
		} else {
			skip(2, "the second replacement is already %lld ms old", (long long)age);
		}
	} else {
		skip(14, "no replacement to kill");
	}

	ok(kill(master, SIGTERM) == 0, "SIGTERM sent");
	r = h_wait_exit(master, 10000, &status);
	ok(r == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "master exited 0");
	done_testing();
	return tap_exit();
}
