/* SPDX-License-Identifier: BSD-2-Clause */
/* render.h — what sluicestat shows, made from a stats snapshot: the table
 * (one-shot, or the live view's screen with rates), JSON, Prometheus text,
 * and single values for scripts. Runs in sluicestat only; it reads
 * snapshots, never the segment itself, and never writes anywhere but the
 * stream or line sink it is given. */
#ifndef SLUICE_RENDER_H
#define SLUICE_RENDER_H

#include <stdint.h>
#include <stdio.h>

struct stats_snapshot;

/* One reading to show, and for rates the reading before it. */
struct render_ctx {
	const char *path;                  /* the segment, named in the header */
	const struct stats_snapshot *sn;
	const struct stats_snapshot *prev; /* NULL: no rates (one-shot) */
	double interval;                   /* seconds from prev to sn */
	uint64_t now_ms;                   /* CLOCK_REALTIME when sn was read */
	int master_running;                /* 0: the master's pid is gone */
	int brief;                         /* live view: totals of BRIEF fields only */
};

/* Gets the table one line at a time, without the newline. */
typedef void render_line_fn(void *arg, const char *line);

/*
 * The human view: a header line, the totals, then one table each for the
 * workers, the listeners and the servers. width 0 is the one-shot form:
 * exact totals with their meaning, every table as wide as it takes. A width
 * is the live form for a screen that wide: totals with per-second rates in
 * as many side-by-side blocks as fit, and rates in place of counters in the
 * per-row tables. Out of memory exits 1 (sluicestat has nothing to fall
 * back on).
 */
void render_table(const struct render_ctx *, unsigned width, render_line_fn *, void *arg);

/* Everything in the snapshot as one JSON object, newline-terminated. Its
 * "schema" member is this number, raised whenever a member is removed,
 * renamed or changes meaning (added members do not raise it). */
#define RENDER_JSON_SCHEMA 1
/* Everything in the snapshot as one JSON object, newline-terminated. */
void render_json(const struct render_ctx *, FILE *);

/* Prometheus text exposition format (HELP and TYPE for every family;
 * counters end in _total), for node_exporter's textfile collector. */
void render_prometheus(const struct render_ctx *, FILE *);

/* -1 NAME: 1 when NAME is a worker field or one of the extra names
 * (generation, workers, draining, master_pid, uptime_s), else 0. */
int render_one_known(const char *name);

/* "valid names: a b c ...\n" */
void render_one_names(FILE *);

/* The value of a known NAME, as a bare decimal number and a newline. */
void render_one(const struct render_ctx *, const char *name, FILE *);

#endif
