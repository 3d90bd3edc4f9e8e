/* SPDX-License-Identifier: BSD-2-Clause */
/* t_wheel.c — the timing wheel: deadlines never early and at most a tick
 * late, callbacks that close, move and re-file links during a walk, the
 * earliest link, counts and links that stay consistent, long stalls. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "wheel.h"

struct item {
	struct wlink link;
	double since;   /* when it was filed (its deadline is since + timeout) */
	double fired;   /* when the wheel handed it over, 0 before */
	int action;     /* what the callback does, see due() */
	struct item *other;
};

enum { DROP, REFILE_LATER, DROP_OTHER, REFILE_SAME };

static double clock_now;
static struct wheel wh;
static unsigned early, calls;

#define ITEM(l) ((struct item *)((char *)(l) - offsetof(struct item, link)))

static void
due(struct wheel *w, struct wlink *l, double now)
{
	struct item *it = ITEM(l);

	calls++;
	if (now < it->since + w->timeout) {
		/* Looked at early (clamped): re-filed, never judged. */
		wheel_unlink(w, l);
		wheel_file(w, l, it->since);
		return;
	}
	if (it->fired == 0)
		it->fired = now;
	switch (it->action) {
	case DROP:
		wheel_unlink(w, l);
		break;
	case REFILE_LATER:
		/* Active since: filed again from now. */
		wheel_unlink(w, l);
		it->since = now;
		it->action = DROP;
		wheel_file(w, l, it->since);
		break;
	case DROP_OTHER:
		wheel_unlink(w, l);
		if (it->other->link.pprev != NULL)
			wheel_unlink(w, &it->other->link);
		break;
	case REFILE_SAME:
		/* The worst case: re-filed with a deadline already past. It
		 * must land in a later slot, not the one being walked. */
		wheel_unlink(w, l);
		it->action = DROP;
		wheel_file(w, l, it->since - 10 * w->timeout);
		break;
	}
}

static void
run_until(double end, double step)
{
	while (clock_now < end) {
		clock_now += step;
		wheel_expire(&wh, clock_now);
	}
}

int
main(void)
{
	struct ev_loop *loop = ev_default_loop(0);
	enum { N = 1000 };
	struct item *items = calloc(N, sizeof(*items));
	unsigned late = 0;

	plan(16);
	clock_now = 1000.0;
	wheel_init(&wh, loop, 620, &clock_now, due, NULL); /* tick 10 ms */
	ok(wh.count == 0 && wheel_first(&wh) == NULL && !ev_is_active(&wh.timer),
	    "a new wheel is empty and its timer stopped");

	/* Deadlines spread over a whole timeout, filed in random order. */
	srand(7);
	for (int i = 0; i < N; i++) {
		items[i].since = clock_now - (double)(rand() % 600) / 1000.0;
		wheel_file(&wh, &items[i].link, items[i].since);
	}
	is(wh.count, N, "every filed link is counted");
	ok(ev_is_active(&wh.timer), "filing starts the tick timer");
	ok(wheel_verify(&wh) == 0, "links and count are consistent after filing");
	{
		struct item *first = ITEM(wheel_first(&wh));
		double min = 1e18;

		for (int i = 0; i < N; i++)
			if (items[i].since < min)
				min = items[i].since;
		ok(first->since - min < 2 * wh.tick, "wheel_first gives the soonest deadline, to a tick");
	}
	run_until(clock_now + 2.0, 0.003);
	for (int i = 0; i < N; i++) {
		if (items[i].fired == 0 || items[i].fired < items[i].since + wh.timeout)
			early++;
		else if (items[i].fired > items[i].since + wh.timeout + 2 * wh.tick + 0.003)
			late++;
	}
	is(early, 0, "no link is handed over before its deadline (or missed)");
	is(late, 0, "every link is handed over within a tick of its deadline");
	ok(wh.count == 0 && !ev_is_active(&wh.timer), "an emptied wheel stops its timer");

	/* Callbacks that re-file, drop others, and re-file into the past,
	 * all in one slot. */
	memset(items, 0, N * sizeof(*items));
	for (int i = 0; i < 30; i++) {
		items[i].since = clock_now;
		items[i].action = i % 3 == 0 ? REFILE_LATER : i % 3 == 1 ? DROP_OTHER : REFILE_SAME;
		items[i].other = &items[(i + 7) % 30];
		wheel_file(&wh, &items[i].link, items[i].since);
	}
	calls = 0;
	run_until(clock_now + wh.timeout + 2 * wh.tick, 0.001);
	ok(wheel_verify(&wh) == 0, "links stay consistent when callbacks shuffle a due slot");
	ok(calls >= 10 && calls < 200, "the walk of a slot ends (%u callbacks)", calls);
	run_until(clock_now + 3 * wh.timeout, 0.004);
	ok(wh.count == 0 && wheel_verify(&wh) == 0, "re-filed links come due later and leave");

	/* A stall of many revolutions: every link is due once, at once. */
	for (int i = 0; i < 50; i++) {
		items[i].since = clock_now;
		items[i].fired = 0;
		items[i].action = DROP;
		wheel_file(&wh, &items[i].link, items[i].since);
	}
	clock_now += 10 * wh.timeout;
	wheel_expire(&wh, clock_now);
	is(wh.count, 0, "after a long stall every overdue link is handed over in one walk");

	/* Unlinking from anywhere: head, middle, tail of a slot. */
	for (int i = 0; i < 5; i++)
		wheel_file(&wh, &items[i].link, clock_now);
	wheel_unlink(&wh, &items[2].link);
	wheel_unlink(&wh, &items[4].link);
	wheel_unlink(&wh, &items[0].link);
	ok(wheel_verify(&wh) == 0 && wh.count == 2, "unlinking head, middle and tail");
	ok(items[2].link.pprev == NULL, "an unlinked link reads as unfiled");
	/* A filing far in the future is clamped to the wheel's reach, and then
	 * only looked at early, never handed over early. */
	items[9].since = clock_now + 100.0;
	items[9].action = DROP;
	items[9].fired = 0;
	wheel_file(&wh, &items[9].link, items[9].since);
	run_until(clock_now + 2 * wh.timeout, 0.005);
	ok(items[9].fired == 0 && items[9].link.pprev != NULL,
	    "a link filed beyond the wheel's reach is not handed over early");
	/* Items 1 and 3 came due meanwhile and were dropped. */
	wheel_unlink(&wh, &items[9].link);
	wheel_expire(&wh, clock_now + wh.tick);
	ok(wh.count == 0 && !ev_is_active(&wh.timer), "an emptied wheel stops its timer at the next tick");
	free(items);
	return tap_exit();
}
