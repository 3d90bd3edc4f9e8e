/* SPDX-License-Identifier: BSD-2-Clause */
/* wheel.h — timing wheels: the lists a worker files its sessions in, by
 * deadline. Knows nothing of sessions: it files links embedded in the
 * caller's objects and calls back for those that come due. Runs in one
 * worker's loop; never allocates, never closes anything itself.
 *
 * A wheel of timeout T ticks every T / (WHEEL_SLOTS - 2) seconds while it
 * holds links; a link filed at `since` is handed to the due callback at the
 * first tick at or after since + T, never before (and at most a tick after,
 * unless the loop stalled). Filing and unlinking are O(1); a link costs two
 * pointers. The walk of a due slot takes links from the live slot one by
 * one, and nothing can be filed into the slot being walked, so a callback
 * may close, move or re-file any link (its own or others) at any time. */
#ifndef SLUICE_WHEEL_H
#define SLUICE_WHEEL_H

#include <ev.h>
#include <stdint.h>

#define WHEEL_SLOTS 64

/* The caller's handle in a wheel: filed exactly when pprev != NULL. */
struct wlink {
	struct wlink *next, **pprev;
};

struct wheel;

/* A filed link whose deadline tick came: the callback must take it out of
 * this slot (wheel_unlink, or wheel_file again once unlinked). now is the
 * owner's clock as the walk began. */
typedef void wheel_due_fn(struct wheel *, struct wlink *, double now);

struct wheel {
	ev_timer timer;      /* ticks while count > 0, and once more after */
	struct ev_loop *loop;
	const double *clock; /* the owner's monotonic time, seconds */
	wheel_due_fn *due;
	void *data;          /* the owner's */
	double timeout;      /* seconds */
	double tick;         /* seconds per slot */
	uint64_t cursor;     /* next tick to walk */
	unsigned count;      /* links filed */
	struct wlink *slot[WHEEL_SLOTS];
};

/* Set up an empty wheel of timeout_ms (0 is taken as 1 ms) in loop, reading
 * time from *clock and calling due for links that come due. */
void wheel_init(struct wheel *, struct ev_loop *, unsigned timeout_ms, const double *clock,
    wheel_due_fn *due, void *data);

/* File an unfiled link with the deadline since + timeout. Starts the tick
 * timer when the wheel was empty. */
void wheel_file(struct wheel *, struct wlink *, double since);

/* Take a link out of this wheel (it must be filed in it). An emptied
 * wheel's timer stops at its next tick. */
void wheel_unlink(struct wheel *, struct wlink *);

/* A link of the earliest non-empty slot (the soonest deadline, to a tick),
 * or NULL when the wheel is empty. At most WHEEL_SLOTS loads. */
struct wlink *wheel_first(const struct wheel *);

/* Hand every link of the slots due by now to the due callback. The tick
 * timer calls it; tests call it with a time of their own. */
void wheel_expire(struct wheel *, double now);

/* 0 when every filed link's pprev points at what points at it and the links
 * number count; -1 otherwise. O(count): for assertions and tests. */
int wheel_verify(const struct wheel *);

#endif
