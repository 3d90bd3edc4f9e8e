/* SPDX-License-Identifier: BSD-2-Clause */
/* t_srclimit.c — unit tests of the shared per-source table: the limit, the
 * release, sources and groups apart, slots reused by other sources, a full
 * table, the hand-off moves, and, with processes sharing one table as
 * workers do, a storm of counts that never passes the limit and ends at
 * zero, a storm of sources churning through a small table whose real
 * counts (kept apart from the table) never pass the limit, and processes
 * killed in the middle, in a count or a claim, whose ledgers the "master"
 * (this test) takes back. */
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "srclimit.h"
#include "tap.h"

#define PROCS 4
#define KEYS 8
#define LIMIT 3
#define ROUNDS 200000
/* The churn storm: many more sources than the small table has slots, each
 * at most CHURN_LIMIT, counted seldom and released soon (a quarter of the
 * slots live at a time), so that slots go free and are claimed by other
 * sources all the time. */
#define CHURN_KEYS 3000
#define CHURN_LIMIT 1
#define CHURN_HOT 16
#define CHURN_ROUNDS 300000

/* Shared with the storm's processes: the real count of each source, kept
 * outside the table. */
static unsigned *real;

static void
key_of(unsigned n, uint8_t key[16])
{
	memset(key, 0, 16);
	key[10] = key[11] = 0xff;
	key[12] = 10;
	key[13] = (uint8_t)(n >> 16);
	key[14] = (uint8_t)(n >> 8);
	key[15] = (uint8_t)n;
}

/* One "worker": random gets and puts on KEYS sources; fails (exit 1) if a
 * count it can see passes the limit. Puts everything back unless hold. */
static void
worker(struct srclimit *t, struct srclimit_ledger *l, unsigned seed, int hold, long rounds)
{
	unsigned held[KEYS] = {0};
	uint8_t key[16];

	srand(seed);
	for (long r = 0; r < rounds; r++) {
		unsigned k = (unsigned)rand() % KEYS;

		key_of(k, key);
		if (rand() % 2 == 0) {
			int rc = srclimit_get(t, l, key, 1, LIMIT, 0);

			if (rc == -1)
				_exit(2);
			if (rc == 1)
				held[k]++;
			if (srclimit_count(t, key, 1) > LIMIT)
				_exit(1);
		} else if (held[k] > 0) {
			if (srclimit_put(t, l, key, 1) != 1)
				_exit(3);
			held[k]--;
		}
	}
	if (!hold)
		for (unsigned k = 0; k < KEYS; k++)
			for (key_of(k, key); held[k] > 0; held[k]--)
				if (srclimit_put(t, l, key, 1) != 1)
					_exit(3);
	_exit(0);
}

/* One churning "worker": counts a source unless the table refuses it, and
 * checks against real that no source ever has more than CHURN_LIMIT
 * connections counted, however its slot came and went. */
static void
churner(struct srclimit *t, struct srclimit_ledger *l, unsigned seed)
{
	static unsigned char held[CHURN_KEYS];
	uint8_t key[16];

	srand(seed);
	for (long r = 0; r < CHURN_ROUNDS; r++) {
		/* Half the time one of a few hot sources, which every
		 * process counts and releases at once. */
		int hot = rand() % 2 == 0;
		unsigned k = hot ? (unsigned)rand() % CHURN_HOT : (unsigned)rand() % CHURN_KEYS;

		key_of(5000 + k, key);
		if (held[k] == 0 && (hot || rand() % 50 == 0)) {
			int rc = srclimit_get(t, l, key, 1, CHURN_LIMIT, 0);

			if (rc == 1) {
				held[k]++;
				if (__atomic_add_fetch(&real[k], 1, __ATOMIC_SEQ_CST) > CHURN_LIMIT)
					_exit(1);
			}
		} else if (held[k] > 0) {
			__atomic_sub_fetch(&real[k], 1, __ATOMIC_SEQ_CST);
			if (srclimit_put(t, l, key, 1) != 1)
				_exit(3);
			held[k]--;
		}
	}
	for (unsigned k = 0; k < CHURN_KEYS; k++)
		if (held[k] > 0) {
			key_of(5000 + k, key);
			__atomic_sub_fetch(&real[k], 1, __ATOMIC_SEQ_CST);
			if (srclimit_put(t, l, key, 1) != 1)
				_exit(3);
		}
	_exit(0);
}

/* One "worker" that only counts and releases sources it never saw, each a
 * claim of a slot, telling which through *at: killed, it leaves a claim in
 * progress behind more often than not. */
static void
claimer(struct srclimit *t, struct srclimit_ledger *l, unsigned base, volatile unsigned *at)
{
	uint8_t key[16];

	for (unsigned k = base;; k++) {
		*at = k;
		key_of(k, key);
		if (srclimit_get(t, l, key, 1, 1, 0) == 1)
			(void)srclimit_put(t, l, key, 1);
	}
}

/* The test pause: at its stage, tell the parent and wait for its word. */
static int pause_stage, pause_tell[2], pause_wait[2];

static void
pause_here(int stage)
{
	char c = 0;

	if (stage != pause_stage)
		return;
	if (write(pause_tell[1], &c, 1) != 1 || read(pause_wait[0], &c, 1) != 1)
		_exit(9);
}

/* A child counting key at limit 1, paused at stage; returns its pid once
 * it stands there. Its exit status is its srclimit_get's result + 1. */
static pid_t
paused_get(struct srclimit *t, struct srclimit_ledger *l, const uint8_t key[16], int stage)
{
	pid_t pid;
	char c;

	pause_stage = stage;
	if (pipe(pause_tell) != 0 || pipe(pause_wait) != 0)
		bail("pipe");
	if ((pid = fork()) == 0) {
		srclimit_test_pause = pause_here;
		_exit(srclimit_get(t, l, key, 1, 1, 0) + 1);
	}
	{
		struct pollfd p = { .fd = pause_tell[0], .events = POLLIN };

		if (poll(&p, 1, 10000) != 1 || read(pause_tell[0], &c, 1) != 1)
			bail("the paused child did not get there within 10 s");
	}
	return pid;
}

/* Let it go on; its srclimit_get's result. */
static int
paused_end(pid_t pid)
{
	char c = 0;
	int st;

	if (write(pause_wait[1], &c, 1) != 1 || waitpid(pid, &st, 0) != pid)
		bail("the paused child");
	close(pause_tell[0]);
	close(pause_tell[1]);
	close(pause_wait[0]);
	close(pause_wait[1]);
	return WIFEXITED(st) ? WEXITSTATUS(st) - 1 : -9;
}

int
main(void)
{
	struct srclimit *t = srclimit_create(0);
	struct srclimit_ledger *l, *l2, *ls[PROCS];
	struct srclimit_usage u;
	uint8_t a[16], b[16];
	pid_t pids[PROCS];
	int bad = 0, rc;
	unsigned total;

	ok(t != NULL, "table created");
	if (t == NULL)
		bail("srclimit_create failed");
	l = srclimit_ledger_create(t);
	l2 = srclimit_ledger_create(t);
	ok(l != NULL && l2 != NULL, "ledgers created");
	ok(srclimit_id(t) != 0, "the table has a nonzero id");
	srclimit_usage(t, &u);
	is(u.slots, SRCLIMIT_MIN_SLOTS, "the smallest table has %u slots", SRCLIMIT_MIN_SLOTS);

	key_of(1, a);
	key_of(2, b);
	ok(srclimit_get(t, l, a, 1, 2, 0) == 1 && srclimit_get(t, l2, a, 1, 2, 0) == 1,
	    "two workers count one source each");
	is(srclimit_get(t, l, a, 1, 2, 0), 0, "the third, from either, is refused at limit 2");
	is(srclimit_count(t, a, 1), 2, "the source counts 2");
	is(srclimit_get(t, l, a, 1, 2, 1), 1, "forced (a session taken over) counts anyway");
	is(srclimit_count(t, a, 1), 3, "  3 now");
	is(srclimit_get(t, l, b, 1, 2, 0), 1, "another source is apart");
	is(srclimit_get(t, l, a, 2, 2, 0), 1, "the same source in another group is apart");
	ok(srclimit_put(t, l, a, 1) == 1 && srclimit_put(t, l, a, 1) == 1,
	    "a worker releases what it counted");
	is(srclimit_put(t, l, a, 1), 0, "  and no more than that");
	is(srclimit_count(t, a, 1), 1, "  the other worker's count remains");
	ok(srclimit_move_out(t, l2, a, 1) == 1 && srclimit_count(t, a, 1) == 1,
	    "moving out leaves the count in the table");
	is(srclimit_put(t, l2, a, 1), 0, "  the sender cannot release it any more");
	ok(srclimit_move_in(t, l, a, 1) == 1 && srclimit_put(t, l, a, 1) == 1 &&
	        srclimit_count(t, a, 1) == 0,
	    "  the receiver takes it over and releases it");
	is(srclimit_move_in(t, l, a, 1), 0, "moving in a source with no count is refused");
	ok(srclimit_get(t, l, a, 1, 1, 0) == 1 && srclimit_put(t, l, a, 1) == 1,
	    "a source whose count fell to zero gets its slot back");
	srclimit_usage(t, &u);
	is(srclimit_used(t), 2, "two slots hold a count (a in group 2, b)");

	/* Reconcile: l2's worker "died" holding one of b. */
	ok(srclimit_get(t, l2, b, 1, 5, 0) == 1 && srclimit_count(t, b, 1) == 2,
	    "b counts 2, one in each ledger");
	is(srclimit_reconcile(t, l2), 1, "reconciling a dead worker takes back its 1");
	is(srclimit_count(t, b, 1), 1, "  b counts the live worker's 1");
	srclimit_ledger_destroy(l2);
	ok(srclimit_put(t, l, b, 1) == 1 && srclimit_put(t, l, a, 2) == 1, "the rest released");

	/* The audit: a count no ledger holds (a session lost in a hand-off). */
	l2 = srclimit_ledger_create(t);
	ok(srclimit_get(t, l, b, 1, 5, 0) == 1 && srclimit_get(t, l2, b, 1, 5, 0) == 1 &&
	        srclimit_move_out(t, l2, b, 1) == 1,
	    "b counts 2, one of them moved out and never moved in");
	{
		struct srclimit_ledger *both[2] = {l, l2};

		is(srclimit_audit(t, both, 2), 1, "the audit takes back the one no ledger holds");
		is(srclimit_count(t, b, 1), 1, "  b counts the one the ledger holds");
		is(srclimit_audit(t, both, 2), 0, "  a second audit finds nothing");
	}
	srclimit_ledger_destroy(l2);
	ok(srclimit_put(t, l, b, 1) == 1 && srclimit_count(t, b, 1) == 0, "  which is released");

	/* Slots go back to other sources: four tables' worth of sources,
	 * one at a time, never fill the smallest table. */
	{
		struct srclimit *f = srclimit_create(1);
		struct srclimit_ledger *fl = srclimit_ledger_create(f);
		unsigned n = 0;

		for (unsigned k = 1; k <= 4 * SRCLIMIT_MIN_SLOTS; k++) {
			key_of(1000 + k, a);
			if (srclimit_get(f, fl, a, 1, 1, 0) == 1 && srclimit_put(f, fl, a, 1) == 1)
				n++;
		}
		srclimit_usage(f, &u);
		ok(n == 4 * SRCLIMIT_MIN_SLOTS && u.full == 0 && srclimit_used(f) == 0,
		    "%u sources through %u slots, one at a time: all counted, none full, "
		    "none left (%llu full, %llu used)",
		    n, SRCLIMIT_MIN_SLOTS, (unsigned long long)u.full,
		    (unsigned long long)srclimit_used(f));

		/* A full table: held sources fill it; one with no slot is
		 * "not counted here". */
		unsigned first_full = 0;

		n = 0;
		for (unsigned k = 1; k < 4 * SRCLIMIT_MIN_SLOTS && first_full == 0; k++) {
			key_of(100000 + k, a);
			rc = srclimit_get(f, fl, a, 1, 1, 0);
			if (rc == -1)
				first_full = k;
			else if (rc == 1)
				n++;
		}
		srclimit_usage(f, &u);
		ok(first_full > 0 && u.full == 1 && srclimit_used(f) == n &&
		        n <= SRCLIMIT_MIN_SLOTS,
		    "a full table says so (after %u sources held, %llu slots used, %llu full)", n,
		    (unsigned long long)srclimit_used(f), (unsigned long long)u.full);
		key_of(100001, a);
		ok(srclimit_get(f, fl, a, 1, 2, 0) == 1,
		    "  a source that has its slot still counts");
		ok(srclimit_put(f, fl, a, 1) == 1, "  and releases");
		key_of(100000 + first_full, a);
		ok(srclimit_put(f, fl, a, 1) == 0,
		    "  releasing the one without a slot is \"not here\"");
		for (unsigned k = 1; k < first_full; k++) {
			key_of(100000 + k, a);
			(void)srclimit_put(f, fl, a, 1);
		}
		key_of(100000 + first_full, a);
		rc = srclimit_get(f, fl, a, 1, 1, 0);
		srclimit_usage(f, &u);
		ok(rc == 1 && srclimit_used(f) == 1, "  once the others left, it finds a slot");
		srclimit_ledger_destroy(fl);
		srclimit_destroy(f);
	}

	/* Two claims of one source, made to meet: x holds the slot where
	 * y's probe starts; a worker looks for y and finds the next slot
	 * free; x leaves; another worker claims y's first slot; the first
	 * then claims the next one. Without the second look, y would have
	 * two slots, each counting 1 at limit 1. */
	{
		struct srclimit *f = srclimit_create(1);
		struct srclimit_ledger *la = srclimit_ledger_create(f),
		                       *lb = srclimit_ledger_create(f);
		uint8_t x[16], y[16];
		unsigned kx = 300000, ky;
		pid_t pid;
		uint64_t full0;

		key_of(kx, x);
		for (ky = kx + 1; ky < kx + 100000; ky++) {
			key_of(ky, y);
			if (srclimit_home(f, y, 1) == srclimit_home(f, x, 1))
				break;
		}
		ok(srclimit_get(f, lb, x, 1, 1, 0) == 1,
		    "x counts in the slot y's probe starts at");
		pid = paused_get(f, la, y, 0);
		ok(srclimit_put(f, lb, x, 1) == 1 && srclimit_get(f, lb, y, 1, 1, 0) == 1,
		    "  one worker stands before claiming the next slot for y; x leaves; "
		    "another counts y in x's slot");
		rc = paused_end(pid);
		ok(rc == 0 && srclimit_count(f, y, 1) == 1,
		    "  the first claims, sees y settled before it, gives way: refused at "
		    "limit 1 (%d, y counts %u)",
		    rc, srclimit_count(f, y, 1));
		ok(srclimit_put(f, lb, y, 1) == 1 && srclimit_count(f, y, 1) == 0,
		    "  y released, its one slot at 0");

		/* A claim that does not end: a worker stopped in it. */
		pid = paused_get(f, la, x, 1);
		srclimit_usage(f, &u);
		full0 = u.full;
		rc = srclimit_get(f, lb, x, 1, 1, 0);
		srclimit_usage(f, &u);
		ok(rc == -1 && u.full == full0 + 1,
		    "a worker stopped in its claim of x: another waits a bounded time, then "
		    "x is \"not counted here\" (%d)",
		    rc);
		rc = paused_end(pid);
		ok(rc == 1 && srclimit_get(f, lb, x, 1, 1, 0) == 0,
		    "  the claim, let go, settles; x is at its limit of 1 (%d)", rc);
		srclimit_ledger_destroy(la);
		srclimit_ledger_destroy(lb);
		srclimit_destroy(f);
	}

	/* Sources churning through a small table in processes at once. */
	{
		struct srclimit *f = srclimit_create(1);
		struct srclimit_ledger *fls[PROCS];
		unsigned over = 0;

		real = mmap(NULL, CHURN_KEYS * sizeof(*real), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (f == NULL || real == MAP_FAILED)
			bail("churn table");
		for (int p = 0; p < PROCS; p++) {
			fls[p] = srclimit_ledger_create(f);
			if ((pids[p] = fork()) == 0)
				churner(f, fls[p], 17u + (unsigned)p);
		}
		for (int p = 0; p < PROCS; p++)
			if (waitpid(pids[p], &rc, 0) != pids[p] || !WIFEXITED(rc) ||
			    WEXITSTATUS(rc) != 0) {
				diag("churning process %d: status %d", p, rc);
				bad++;
			}
		for (unsigned k = 0; k < CHURN_KEYS; k++) {
			key_of(5000 + k, a);
			over += srclimit_count(f, a, 1);
		}
		srclimit_usage(f, &u);
		ok(bad == 0 && over == 0 && srclimit_used(f) == 0,
		    "%d processes churn %d sources through %u slots: none ever had more than "
		    "%d, all back at zero (%llu slots used)",
		    PROCS, CHURN_KEYS, SRCLIMIT_MIN_SLOTS, CHURN_LIMIT,
		    (unsigned long long)srclimit_used(f));
		bad = 0;

		/* Killed in a claim: the master withdraws it. */
		volatile unsigned *at = (volatile unsigned *)real;
		unsigned left = 0;

		for (int p = 0; p < 20; p++) {
			uint64_t full0;
			pid_t pid;

			*at = 0;
			srclimit_ledger_destroy(fls[0]);
			fls[0] = srclimit_ledger_create(f);
			if ((pid = fork()) == 0)
				claimer(f, fls[0], 200000u + 10000u * (unsigned)p, at);
			{
				/* Until the child is that far, within 10 s. */
				struct timespec t0, t1;

				clock_gettime(CLOCK_MONOTONIC, &t0);
				do
					clock_gettime(CLOCK_MONOTONIC, &t1);
				while (*at < 200000u + 10000u * (unsigned)p + 50u + (unsigned)p * 37u &&
				       t1.tv_sec - t0.tv_sec < 10);
			}
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			srclimit_reconcile(f, fls[0]);
			srclimit_ledger_destroy(fls[0]);
			fls[0] = srclimit_ledger_create(f);
			/* Killed between the table and its ledger: the audit's. */
			(void)srclimit_audit(f, fls, 1);
			srclimit_usage(f, &u);
			full0 = u.full;
			for (unsigned k = *at - 1; k <= *at + 1; k++) {
				key_of(k, a);
				if (srclimit_get(f, fls[0], a, 1, 1, 0) != 1 ||
				    srclimit_put(f, fls[0], a, 1) != 1)
					left++;
			}
			srclimit_usage(f, &u);
			left += u.full != full0;
		}
		srclimit_usage(f, &u);
		ok(left == 0 && srclimit_used(f) == 0,
		    "20 processes killed while counting new sources: every source counts "
		    "after the master reconciled (%u stuck, %llu used)",
		    left, (unsigned long long)srclimit_used(f));
		for (int p = 0; p < PROCS; p++)
			srclimit_ledger_destroy(fls[p]);
		srclimit_destroy(f);
	}

	/* Processes sharing the table, as workers do. */
	for (int p = 0; p < PROCS; p++) {
		ls[p] = srclimit_ledger_create(t);
		if ((pids[p] = fork()) == 0)
			worker(t, ls[p], 7u + (unsigned)p, 0, ROUNDS);
	}
	{
		/* Audits while they run: none may take back a count a
		 * ledger holds or is about to (a worker between its two
		 * writes). */
		uint64_t wrong = 0;
		int audits = 0, done = 0;

		while (done < PROCS) {
			wrong += srclimit_audit(t, ls, PROCS);
			audits++;
			done = 0;
			for (int p = 0; p < PROCS; p++)
				if (pids[p] != -1 && waitpid(pids[p], &rc, WNOHANG) == pids[p]) {
					if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
						diag("worker process %d: status %d", p, rc);
						bad++;
					}
					pids[p] = -1;
				}
			for (int p = 0; p < PROCS; p++)
				done += pids[p] == -1;
		}
		ok(wrong == 0, "%d audits during the storm took back nothing (%llu)", audits,
		    (unsigned long long)wrong);
	}
	for (int p = 0; p < PROCS; p++)
		if (pids[p] != -1 && (waitpid(pids[p], &rc, 0) != pids[p] || !WIFEXITED(rc) ||
		                         WEXITSTATUS(rc) != 0)) {
			diag("worker process %d: status %d", p, rc);
			bad++;
		}
	ok(bad == 0, "%d processes x %d rounds on %d sources: no count ever passed %d", PROCS,
	    ROUNDS, KEYS, LIMIT);
	total = 0;
	for (unsigned k = 0; k < KEYS; k++) {
		key_of(k, a);
		total += srclimit_count(t, a, 1);
	}
	is(total, 0, "every count is back at zero");

	/* Killed in the middle, or gone holding: the master takes it back. */
	for (int p = 0; p < PROCS; p++) {
		srclimit_ledger_destroy(ls[p]);
		ls[p] = srclimit_ledger_create(t);
		if ((pids[p] = fork()) == 0)
			worker(
			    t, ls[p], 70u + (unsigned)p, 1, p == 0 ? 100L * 1000 * 1000 : ROUNDS);
	}
	for (int p = 1; p < PROCS; p++)
		waitpid(pids[p], NULL, 0);
	usleep(20 * 1000);
	kill(pids[0], SIGKILL);
	waitpid(pids[0], &rc, 0);
	ok(WIFSIGNALED(rc),
	    "one process killed in the middle of its storm, the others exit holding");
	for (int p = 0; p < PROCS; p++) {
		srclimit_reconcile(t, ls[p]);
		srclimit_ledger_destroy(ls[p]);
	}
	total = 0;
	for (unsigned k = 0; k < KEYS; k++) {
		key_of(k, a);
		total += srclimit_count(t, a, 1);
	}
	srclimit_usage(t, &u);
	ok(total <= u.uncertain,
	    "reconciled: every count back at zero (%u left, %llu deaths mid-update)", total,
	    (unsigned long long)u.uncertain);
	ok(u.reconciled > 0, "  %llu counts taken back", (unsigned long long)u.reconciled);
	ok(srclimit_audit(t, &l, 1) == total && (total == 0 || srclimit_audit(t, &l, 1) == 0),
	    "  and what a death mid-update left, the audit takes back");
	srclimit_ledger_destroy(l);
	srclimit_destroy(t);
	done_testing();
	return tap_exit();
}
