/* SPDX-License-Identifier: BSD-2-Clause */
/* wheel.c — timing wheels (see wheel.h). Runs in a worker's loop. Never
 * allocates; never frees or closes what it files. */
#include <stddef.h>
#include <string.h>

#include "check.h"
#include "wheel.h"

static void
wheel_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct wheel *wh = t->data;

	wheel_expire(wh, *wh->clock);
}

void
wheel_init(struct wheel *wh, struct ev_loop *loop, unsigned timeout_ms, const double *clock,
    wheel_due_fn *due, void *data)
{
	memset(wh, 0, sizeof(*wh));
	wh->loop = loop;
	wh->clock = clock;
	wh->due = due;
	wh->data = data;
	wh->timeout = (timeout_ms ? timeout_ms : 1) / 1000.0;
	wh->tick = wh->timeout / (WHEEL_SLOTS - 2);
	if (wh->tick < 0.001)
		wh->tick = 0.001;
	ev_init(&wh->timer, wheel_cb);
	/* libev runs the callbacks due in one iteration by priority: I/O
	 * first, so a session whose bytes arrived during a stall is marked
	 * active before its timeout is judged. */
	ev_set_priority(&wh->timer, EV_MINPRI);
	wh->timer.data = wh;
}

void
wheel_file(struct wheel *wh, struct wlink *l, double since)
{
	/* Due in the first tick that starts at or after the deadline. */
	uint64_t k = (uint64_t)((since + wh->timeout) / wh->tick) + 1;
	struct wlink **head;

	CHECK(l->pprev == NULL);
	if (!ev_is_active(&wh->timer)) {
		wh->cursor = (uint64_t)(*wh->clock / wh->tick);
		ev_timer_set(&wh->timer, wh->tick, wh->tick);
		ev_timer_start(wh->loop, &wh->timer);
	}
	/* Never behind the cursor, and never in the slot a walk is taking
	 * links from (the one before the cursor): a link filed too early is
	 * only looked at again, never judged before its deadline. */
	if (k < wh->cursor)
		k = wh->cursor;
	if (k > wh->cursor + WHEEL_SLOTS - 2)
		k = wh->cursor + WHEEL_SLOTS - 2;
	head = &wh->slot[k % WHEEL_SLOTS];
	l->next = *head;
	if (*head != NULL)
		(*head)->pprev = &l->next;
	*head = l;
	l->pprev = head;
	wh->count++;
}

void
wheel_unlink(struct wheel *wh, struct wlink *l)
{
	CHECK(l->pprev != NULL && *l->pprev == l && wh->count > 0);
	*l->pprev = l->next;
	if (l->next != NULL)
		l->next->pprev = l->pprev;
	l->next = NULL;
	l->pprev = NULL;
	/* The timer stops at its next tick if nothing is filed by then:
	 * stopping it here would restart the cursor under a walk. */
	wh->count--;
}

struct wlink *
wheel_first(const struct wheel *wh)
{
	if (wh->count == 0)
		return NULL;
	for (unsigned i = 0; i < WHEEL_SLOTS; i++) {
		struct wlink *l = wh->slot[(wh->cursor + i) % WHEEL_SLOTS];

		if (l != NULL)
			return l;
	}
	CHECK(!"a wheel with a count holds no link");
	return NULL;
}

void
wheel_expire(struct wheel *wh, double now)
{
	uint64_t due = (uint64_t)(now / wh->tick);

	/* After a long stall every slot is due once; more rounds add nothing. */
	if (due > wh->cursor + WHEEL_SLOTS)
		wh->cursor = due - WHEEL_SLOTS;
	while (wh->cursor <= due && wh->count > 0) {
		struct wlink **head = &wh->slot[wh->cursor % WHEEL_SLOTS], *l;

		/* Advance first: from here on wheel_file puts nothing in this
		 * slot, so the walk ends however the callbacks shuffle links. */
		wh->cursor++;
		while ((l = *head) != NULL) {
			wh->due(wh, l, now);
			if (*head == l) {
				CHECK(!"a due callback left its link in the slot");
				wheel_unlink(wh, l);
			}
		}
	}
	if (wh->count == 0)
		ev_timer_stop(wh->loop, &wh->timer);
}

int
wheel_verify(const struct wheel *wh)
{
	unsigned n = 0;

	for (unsigned k = 0; k < WHEEL_SLOTS; k++) {
		struct wlink *const *pp = &wh->slot[k];

		for (const struct wlink *l = *pp; l != NULL; pp = &l->next, l = l->next) {
			if (l->pprev != pp || ++n > wh->count)
				return -1;
		}
	}
	if (n != wh->count)
		return -1;
	if (n > 0 && !ev_is_active(&wh->timer))
		return -1;
	return 0;
}
