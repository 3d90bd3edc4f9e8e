/* SPDX-License-Identifier: BSD-2-Clause */
/* t_srclimit.c — unit tests of the shared per-source table: the limit, the
 * release, sources and groups apart, a full table, the hand-off moves, and,
 * with processes sharing one table as workers do, a storm of counts that
 * never passes the limit and ends at zero, and a process killed in the
 * middle whose ledger the "master" (this test) takes back. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "srclimit.h"
#include "tap.h"

#define PROCS 4
#define KEYS 8
#define LIMIT 3
#define ROUNDS 200000

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
	is(u.used, 3, "three slots used (a in two groups, b)");

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
		struct srclimit_ledger *both[2] = { l, l2 };

		is(srclimit_audit(t, both, 2), 1, "the audit takes back the one no ledger holds");
		is(srclimit_count(t, b, 1), 1, "  b counts the one the ledger holds");
		is(srclimit_audit(t, both, 2), 0, "  a second audit finds nothing");
	}
	srclimit_ledger_destroy(l2);
	ok(srclimit_put(t, l, b, 1) == 1 && srclimit_count(t, b, 1) == 0, "  which is released");

	/* A full table: a source with no slot is "not counted here". */
	{
		struct srclimit *f = srclimit_create(1);
		struct srclimit_ledger *fl = srclimit_ledger_create(f);
		unsigned n = 0, first_full = 0;

		for (unsigned k = 1; k < 4 * SRCLIMIT_MIN_SLOTS && first_full == 0; k++) {
			key_of(1000 + k, a);
			rc = srclimit_get(f, fl, a, 1, 1, 0);
			if (rc == -1)
				first_full = k;
			else if (rc == 1 && srclimit_put(f, fl, a, 1) == 1)
				n++;
		}
		srclimit_usage(f, &u);
		ok(first_full > 0 && u.full == 1 && u.used == n && n <= SRCLIMIT_MIN_SLOTS,
		    "a full table says so (after %u sources, %llu slots used, %llu full)", n,
		    (unsigned long long)u.used, (unsigned long long)u.full);
		key_of(1001, a);
		ok(srclimit_get(f, fl, a, 1, 1, 0) == 1,
		    "  a source that has its slot still counts");
		key_of(1000 + first_full, a);
		ok(srclimit_put(f, fl, a, 1) == 0,
		    "  releasing the one without a slot is \"not here\"");
		srclimit_ledger_destroy(fl);
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
		if (pids[p] != -1 &&
		    (waitpid(pids[p], &rc, 0) != pids[p] || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)) {
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
