/* SPDX-License-Identifier: BSD-2-Clause */
/* render.c — turns a stats snapshot into sluicestat's outputs: the table
 * (one-shot or the live screen, with rates), JSON, Prometheus text and
 * single values. Every column, key and metric name comes from the field
 * tables that stats.h expands from its lists, so a counter added there shows
 * up here untouched. Runs in sluicestat only; never reads the segment. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "prom.h"
#include "render.h"
#include "stats.h"

/* Names -1 accepts besides the worker fields. */
static const char *const extra_names[] = {
	"generation", "workers", "draining", "master_pid", "start_ms", "uptime_s",
	"source_slots", "source_slots_used", "source_table_full", "source_reconciled",
};
#define NEXTRA (sizeof(extra_names) / sizeof(extra_names[0]))

/* Live view: blocks of totals side by side are separated by this. */
#define BLOCK_GAP " | "

static void __attribute__((noreturn))
out_of_memory(void)
{
	fprintf(stderr, "sluicestat: out of memory\n");
	exit(1);
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL)
		out_of_memory();
	return p;
}

/* --- numbers ------------------------------------------------------------- */

/* Up to five digits as they are, then three significant digits and a unit. */
static void
fmt_compact(char *buf, size_t len, double v)
{
	static const char units[] = "kMGTPE";
	unsigned u = 0;

	if (v < 0)
		v = 0;
	if (v < 100000) {
		snprintf(buf, len, v < 10 && v != (double)(uint64_t)v ? "%.1f" : "%.0f", v);
		return;
	}
	v /= 1000;
	while (v >= 1000 && u < sizeof(units) - 2) {
		v /= 1000;
		u++;
	}
	snprintf(buf, len, v < 10 ? "%.2f%c" : v < 100 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

/* A wall-clock age: "0.4s" below ten seconds, then "12s", "5m", "3h", "2d". */
static void
fmt_age(char *buf, size_t len, uint64_t now_ms, uint64_t then_ms)
{
	uint64_t ms = now_ms > then_ms ? now_ms - then_ms : 0, s = ms / 1000;

	if (ms < 10000)
		snprintf(buf, len, "%.1fs", (double)ms / 1000);
	else if (s < 120)
		snprintf(buf, len, "%" PRIu64 "s", s);
	else if (s < 7200)
		snprintf(buf, len, "%" PRIu64 "m", s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%" PRIu64 "h", s / 3600);
	else
		snprintf(buf, len, "%" PRIu64 "d", s / 86400);
}

static void
fmt_uptime(char *buf, size_t len, uint64_t now_ms, uint64_t start_ms)
{
	uint64_t s = now_ms > start_ms ? (now_ms - start_ms) / 1000 : 0;

	if (s >= 86400)
		snprintf(buf, len, "%" PRIu64 "d %02u:%02u:%02u", s / 86400,
		    (unsigned)(s % 86400 / 3600), (unsigned)(s % 3600 / 60), (unsigned)(s % 60));
	else
		snprintf(buf, len, "%u:%02u:%02u", (unsigned)(s / 3600),
		    (unsigned)(s % 3600 / 60), (unsigned)(s % 60));
}

/* Per-second rate of a counter between two readings, or "-" when there is
 * no earlier reading to compare with (or it went backwards: not the same
 * thing any more). */
static void
fmt_rate(char *buf, size_t len, const struct render_ctx *ctx, int have_prev, uint64_t now,
    uint64_t before)
{
	if (!have_prev || now < before || ctx->interval <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	fmt_compact(buf, len, (double)(now - before) / ctx->interval);
}

/* --- tables -------------------------------------------------------------- */

struct table {
	unsigned ncols, nrows, cap;
	char **cell;          /* nrows * ncols; NULL reads as "" */
	unsigned char *right; /* per column: right-aligned */
};

static void
table_init(struct table *t, unsigned ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->right = xcalloc(ncols, 1);
}

static void
table_fini(struct table *t)
{
	for (size_t i = 0; i < (size_t)t->nrows * t->ncols; i++)
		free(t->cell[i]);
	free(t->cell);
	free(t->right);
}

static void __attribute__((format(printf, 4, 5)))
table_set(struct table *t, unsigned row, unsigned col, const char *fmt, ...)
{
	va_list ap;
	char **slot;

	if (row >= t->cap) {
		unsigned cap = t->cap ? t->cap * 2 : 16;

		while (cap <= row)
			cap *= 2;
		t->cell = realloc(t->cell, (size_t)cap * t->ncols * sizeof(*t->cell));
		if (t->cell == NULL)
			out_of_memory();
		memset(t->cell + (size_t)t->cap * t->ncols, 0,
		    (size_t)(cap - t->cap) * t->ncols * sizeof(*t->cell));
		t->cap = cap;
	}
	if (row >= t->nrows)
		t->nrows = row + 1;
	slot = &t->cell[(size_t)row * t->ncols + col];
	free(*slot);
	va_start(ap, fmt);
	if (vasprintf(slot, fmt, ap) == -1)
		out_of_memory();
	va_end(ap);
}

static const char *
table_get(const struct table *t, unsigned row, unsigned col)
{
	const char *s = t->cell[(size_t)row * t->ncols + col];

	return s ? s : "";
}

/* The table as lines (malloc'ed, *n of them): columns padded to their
 * widest cell, two spaces apart, no trailing blanks. */
static char **
table_lines(const struct table *t, unsigned *n)
{
	size_t *width = xcalloc(t->ncols, sizeof(*width)), total = 1;
	char **lines = xcalloc(t->nrows, sizeof(*lines));
	unsigned r, c;

	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++)
			if (strlen(table_get(t, r, c)) > width[c])
				width[c] = strlen(table_get(t, r, c));
	for (c = 0; c < t->ncols; c++)
		total += width[c] + 2;
	for (r = 0; r < t->nrows; r++) {
		char *line = xcalloc(total, 1), *p = line;

		for (c = 0; c < t->ncols; c++) {
			int w = (int)width[c];

			p += sprintf(p, "%s%*s", c == 0 ? "" : "  ", t->right[c] ? w : -w,
			    table_get(t, r, c));
		}
		while (p > line && p[-1] == ' ')
			*--p = '\0';
		lines[r] = line;
	}
	free(width);
	*n = t->nrows;
	return lines;
}

static void
free_lines(char **lines, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

static void
table_emit(const struct table *t, render_line_fn *out, void *arg)
{
	unsigned n;
	char **lines = table_lines(t, &n);

	for (unsigned i = 0; i < n; i++)
		out(arg, lines[i]);
	free_lines(lines, n);
}

/* --- the human view ------------------------------------------------------ */

static void
emit_header(const struct render_ctx *ctx, unsigned width, render_line_fn *out, void *arg)
{
	const struct stats_snapshot *sn = ctx->sn;
	char up[64], line[1024];
	int n;

	fmt_uptime(up, sizeof(up), ctx->now_ms, sn->start_ms);
	n = snprintf(line, sizeof(line),
	    "master pid %" PRId32 ", up %s, generation %" PRIu64 ", %u worker%s running",
	    sn->master_pid, up, sn->generation, sn->running, sn->running == 1 ? "" : "s");
	if (sn->draining > 0 && n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, ", %u draining", sn->draining);
	if (!ctx->master_running && n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, ", master not running");
	if (width == 0 && n > 0 && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, ", segment %s", ctx->path);
	out(arg, line);
}

/* One-shot totals: counter, exact total, meaning. */
static void
emit_totals(const struct render_ctx *ctx, render_line_fn *out, void *arg)
{
	struct table t;

	table_init(&t, 3);
	t.right[1] = 1;
	table_set(&t, 0, 0, "counter");
	table_set(&t, 0, 1, "total");
	table_set(&t, 0, 2, "meaning");
	for (unsigned f = 0; f < stats_nfields; f++) {
		table_set(&t, f + 1, 0, "%s", stats_fields[f].name);
		table_set(&t, f + 1, 1, "%" PRIu64, stats_field_get(&ctx->sn->total, &stats_fields[f]));
		table_set(&t, f + 1, 2, "%s", stats_fields[f].help);
	}
	table_emit(&t, out, arg);
	table_fini(&t);
}

/* Live totals: counter, total, rate; in as many blocks side by side as the
 * width holds, filled column by column. */
static void
emit_totals_live(const struct render_ctx *ctx, unsigned width, render_line_fn *out, void *arg)
{
	const struct stats_snapshot *sn = ctx->sn, *prev = ctx->prev;
	unsigned nlines, blocks, per_block, b, r, gap = (unsigned)strlen(BLOCK_GAP);
	size_t bw, linelen;
	struct table t;
	char **lines, buf[64], *row;

	table_init(&t, 3);
	t.right[1] = t.right[2] = 1;
	for (unsigned f = 0, n = 0; f < stats_nfields; f++) {
		uint64_t v = stats_field_get(&sn->total, &stats_fields[f]);

		if (ctx->brief && stats_fields[f].view != STATS_BRIEF)
			continue;
		table_set(&t, n, 0, "%s", stats_fields[f].name);
		fmt_compact(buf, sizeof(buf), (double)v);
		table_set(&t, n, 1, "%s", buf);
		if (stats_fields[f].kind == STATS_COUNTER) {
			fmt_rate(buf, sizeof(buf), ctx, prev != NULL, v,
			    prev ? stats_field_get(&prev->total, &stats_fields[f]) : 0);
			table_set(&t, n, 2, "%s/s", buf);
		}
		n++;
	}
	lines = table_lines(&t, &nlines);
	bw = 0;
	for (r = 0; r < nlines; r++)
		if (strlen(lines[r]) > bw)
			bw = strlen(lines[r]);
	blocks = width > bw ? (unsigned)((width + gap) / (bw + gap)) : 1;
	if (blocks == 0)
		blocks = 1;
	per_block = (nlines + blocks - 1) / blocks;
	linelen = blocks * (bw + gap) + 1;
	row = xcalloc(linelen, 1);
	for (r = 0; r < per_block; r++) {
		char *p = row;

		for (b = 0; b < blocks; b++) {
			unsigned i = b * per_block + r;

			if (i >= nlines)
				break;
			p += sprintf(p, "%s%-*s", b ? BLOCK_GAP : "", (int)bw, lines[i]);
		}
		while (p > row && p[-1] == ' ')
			*--p = '\0';
		out(arg, row);
	}
	free(row);
	free_lines(lines, nlines);
	table_fini(&t);
}

/* Fields of a table as columns from column first on: the value (one-shot),
 * or in the live view a rate for counters (prev_c NULL: no earlier reading
 * of this row). */
static void
set_fields(const struct render_ctx *ctx, struct table *t, unsigned row, unsigned first,
    const struct stats_field *fields, unsigned n, int brief_only, const void *c,
    const void *prev_c, int live)
{
	unsigned col = first;
	char buf[64];

	for (unsigned f = 0; f < n; f++) {
		uint64_t v;

		if (brief_only && fields[f].view != STATS_BRIEF)
			continue;
		v = stats_field_get(c, &fields[f]);
		if (!live)
			table_set(t, row, col, "%" PRIu64, v);
		else if (fields[f].kind == STATS_COUNTER) {
			fmt_rate(buf, sizeof(buf), ctx, prev_c != NULL, v,
			    prev_c ? stats_field_get(prev_c, &fields[f]) : 0);
			table_set(t, row, col, "%s", buf);
		} else {
			fmt_compact(buf, sizeof(buf), (double)v);
			table_set(t, row, col, "%s", buf);
		}
		t->right[col] = 1;
		col++;
	}
}

static void
set_field_names(struct table *t, unsigned first, const struct stats_field *fields, unsigned n,
    int brief_only, int live)
{
	unsigned col = first;

	for (unsigned f = 0; f < n; f++) {
		if (brief_only && fields[f].view != STATS_BRIEF)
			continue;
		table_set(t, 0, col++, "%s%s", fields[f].name,
		    live && fields[f].kind == STATS_COUNTER ? "/s" : "");
	}
}

static unsigned
count_brief(void)
{
	unsigned n = 0;

	for (unsigned f = 0; f < stats_nfields; f++)
		n += stats_fields[f].view == STATS_BRIEF;
	return n;
}

static const struct stats_worker_view *
prev_worker(const struct render_ctx *ctx, const struct stats_worker_view *v)
{
	if (ctx->prev == NULL)
		return NULL;
	for (unsigned i = 0; i < ctx->prev->nworkers; i++) {
		const struct stats_worker_view *p = &ctx->prev->workers[i];

		if (p->slot == v->slot && p->pid == v->pid && p->generation == v->generation)
			return p;
	}
	return NULL;
}

enum { W_SLOT, W_PID, W_GEN, W_STATE, W_BEAT, W_FIELDS };

static void
emit_workers(const struct render_ctx *ctx, int live, render_line_fn *out, void *arg)
{
	const struct stats_snapshot *sn = ctx->sn;
	unsigned r, c;
	struct table t;
	char buf[64];

	table_init(&t, W_FIELDS + count_brief());
	t.right[W_PID] = t.right[W_GEN] = t.right[W_BEAT] = 1;
	table_set(&t, 0, W_SLOT, "slot");
	table_set(&t, 0, W_PID, "pid");
	table_set(&t, 0, W_GEN, "gen");
	table_set(&t, 0, W_STATE, "state");
	table_set(&t, 0, W_BEAT, "beat");
	set_field_names(&t, W_FIELDS, stats_fields, stats_nfields, 1, live);
	for (r = 0; r < sn->nworkers; r++) {
		const struct stats_worker_view *w = &sn->workers[r], *p = prev_worker(ctx, w);

		table_set(&t, r + 1, W_SLOT, "%u", w->slot);
		table_set(&t, r + 1, W_PID, "%" PRId32, w->pid);
		table_set(&t, r + 1, W_GEN, "%" PRIu32, w->generation);
		table_set(&t, r + 1, W_STATE, "%s", stats_state_name(w->state));
		if (w->heartbeat_ms != 0)
			fmt_age(buf, sizeof(buf), ctx->now_ms, w->heartbeat_ms);
		else
			snprintf(buf, sizeof(buf), "-");
		table_set(&t, r + 1, W_BEAT, "%s", buf);
		set_fields(ctx, &t, r + 1, W_FIELDS, stats_fields, stats_nfields, 1, &w->c,
		    p ? &p->c : NULL, live);
	}
	if (!live) {
		/* Gauges of exited workers are gone, not zero: say so. */
		r = sn->nworkers + 1;
		table_set(&t, r, W_SLOT, "retired");
		table_set(&t, r + 1, W_SLOT, "total");
		for (c = W_PID; c < W_FIELDS; c++) {
			table_set(&t, r, c, "-");
			table_set(&t, r + 1, c, "-");
		}
		set_fields(ctx, &t, r, W_FIELDS, stats_fields, stats_nfields, 1, &sn->retired, NULL, 0);
		set_fields(ctx, &t, r + 1, W_FIELDS, stats_fields, stats_nfields, 1, &sn->total, NULL,
		    0);
		c = W_FIELDS;
		for (unsigned f = 0; f < stats_nfields; f++) {
			if (stats_fields[f].view != STATS_BRIEF)
				continue;
			if (stats_fields[f].kind == STATS_GAUGE)
				table_set(&t, r, c, "-");
			c++;
		}
	}
	table_emit(&t, out, arg);
	table_fini(&t);
}

static const char *
entry_status(const struct stats_snapshot *sn, uint32_t generation)
{
	return generation == sn->generation ? "current" : "removed";
}

enum { L_ADDR, L_UPSTREAM, L_STATUS, L_FIELDS };

static void
emit_listeners(const struct render_ctx *ctx, int live, render_line_fn *out, void *arg)
{
	const struct stats_snapshot *sn = ctx->sn;
	struct table t;

	table_init(&t, L_FIELDS + stats_listener_nfields);
	table_set(&t, 0, L_ADDR, "listener");
	table_set(&t, 0, L_UPSTREAM, "upstream");
	table_set(&t, 0, L_STATUS, "status");
	set_field_names(&t, L_FIELDS, stats_listener_fields, stats_listener_nfields, 0, live);
	for (unsigned r = 0; r < sn->nlisteners; r++) {
		const struct stats_listener_view *l = &sn->listeners[r];
		const struct stats_listener_view *p =
		    ctx->prev && r < ctx->prev->nlisteners ? &ctx->prev->listeners[r] : NULL;

		table_set(&t, r + 1, L_ADDR, "%s", l->entry.address);
		table_set(&t, r + 1, L_UPSTREAM, "%s", l->entry.upstream);
		table_set(&t, r + 1, L_STATUS, "%s", entry_status(sn, l->entry.generation));
		set_fields(ctx, &t, r + 1, L_FIELDS, stats_listener_fields, stats_listener_nfields, 0,
		    &l->c, p ? &p->c : NULL, live);
	}
	table_emit(&t, out, arg);
	table_fini(&t);
}

enum { S_UPSTREAM, S_ADDR, S_WEIGHT, S_STATUS, S_HEALTH, S_STREAK, S_LAST, S_CHECKS,
	S_CHANGED, S_FIELDS };

static void
set_health(const struct render_ctx *ctx, struct table *t, unsigned row,
    const struct stats_health *h)
{
	char age[32];

	table_set(t, row, S_HEALTH, "%s", stats_health_name(h->state));
	if (h->successes > 0)
		table_set(t, row, S_STREAK, "%" PRIu32 " ok", h->successes);
	else if (h->failures > 0)
		table_set(t, row, S_STREAK, "%" PRIu32 " failed", h->failures);
	else
		table_set(t, row, S_STREAK, "-");
	if (h->last_result == STATS_CHECK_NONE) {
		table_set(t, row, S_LAST, "-");
	} else {
		fmt_age(age, sizeof(age), ctx->now_ms, h->last_check_ms);
		if (h->last_errno != 0)
			table_set(t, row, S_LAST, "%s (%s) %s ago", stats_check_name(h->last_result),
			    strerror(h->last_errno), age);
		else
			table_set(t, row, S_LAST, "%s %s ago", stats_check_name(h->last_result), age);
	}
	table_set(t, row, S_CHECKS, "%" PRIu64 "/%" PRIu64, h->checks, h->checks_failed);
	if (h->last_change_ms != 0) {
		fmt_age(age, sizeof(age), ctx->now_ms, h->last_change_ms);
		table_set(t, row, S_CHANGED, "%s ago", age);
	} else {
		table_set(t, row, S_CHANGED, "-");
	}
}

static void
emit_servers(const struct render_ctx *ctx, int live, render_line_fn *out, void *arg)
{
	const struct stats_snapshot *sn = ctx->sn;
	struct table t;

	table_init(&t, S_FIELDS + STATS_SERVER_PLAIN_FIELDS);
	t.right[S_WEIGHT] = t.right[S_CHECKS] = 1;
	table_set(&t, 0, S_UPSTREAM, "upstream");
	table_set(&t, 0, S_ADDR, "server");
	table_set(&t, 0, S_WEIGHT, "weight");
	table_set(&t, 0, S_STATUS, "status");
	table_set(&t, 0, S_HEALTH, "health");
	table_set(&t, 0, S_STREAK, "streak");
	table_set(&t, 0, S_LAST, "last_check");
	table_set(&t, 0, S_CHECKS, "checks/failed");
	table_set(&t, 0, S_CHANGED, "changed");
	/* The connect histogram stays in JSON and Prometheus: ten more
	 * columns would drown the table. */
	set_field_names(&t, S_FIELDS, stats_server_fields, STATS_SERVER_PLAIN_FIELDS, 0, live);
	for (unsigned r = 0; r < sn->nservers; r++) {
		const struct stats_server_view *s = &sn->servers[r];
		const struct stats_server_view *p =
		    ctx->prev && r < ctx->prev->nservers ? &ctx->prev->servers[r] : NULL;

		table_set(&t, r + 1, S_UPSTREAM, "%s", s->entry.upstream);
		if (stats_entry_resolved(&s->entry)) {
			char a[ADDR_STRLEN];

			/* A slot of a resolved name: where it points now. */
			if (s->resolved.state == STATS_ADDR_PRESENT)
				table_set(&t, r + 1, S_ADDR, "%s = %s", s->entry.address,
				    stats_resolved_format(&s->resolved, a, sizeof(a)));
			else
				table_set(&t, r + 1, S_ADDR, "%s (%s)", s->entry.address,
				    s->resolved.state == STATS_ADDR_NONE ? "not resolved yet"
				                                         : "no address");
		} else {
			table_set(&t, r + 1, S_ADDR, "%s", s->entry.address);
		}
		table_set(&t, r + 1, S_WEIGHT, "%" PRIu32 "%s", s->entry.weight,
		    s->entry.backup ? " backup" : "");
		table_set(&t, r + 1, S_STATUS, "%s", entry_status(sn, s->entry.generation));
		set_health(ctx, &t, r + 1, &s->health);
		set_fields(ctx, &t, r + 1, S_FIELDS, stats_server_fields, STATS_SERVER_PLAIN_FIELDS, 0,
		    &s->c, p ? &p->c : NULL, live);
	}
	table_emit(&t, out, arg);
	table_fini(&t);
}

void
render_table(const struct render_ctx *ctx, unsigned width, render_line_fn *out, void *arg)
{
	int live = width > 0;

	emit_header(ctx, width, out, arg);
	out(arg, "");
	if (live)
		emit_totals_live(ctx, width, out, arg);
	else
		emit_totals(ctx, out, arg);
	out(arg, "");
	emit_workers(ctx, live, out, arg);
	out(arg, "");
	emit_listeners(ctx, live, out, arg);
	out(arg, "");
	emit_servers(ctx, live, out, arg);
}

/* --- JSON ---------------------------------------------------------------- */

static void
json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(fp, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(fp, "\\u%04x", ch);
		else
			fputc(ch, fp);
	}
	fputc('"', fp);
}

static void
json_counters(FILE *fp, const char *indent, const void *c, const struct stats_field *fields,
    unsigned n)
{
	fputs("{\n", fp);
	for (unsigned f = 0; f < n; f++)
		fprintf(fp, "%s  \"%s\": %" PRIu64 "%s\n", indent, fields[f].name,
		    stats_field_get(c, &fields[f]), f + 1 < n ? "," : "");
	fprintf(fp, "%s}", indent);
}

static void
json_health(FILE *fp, const struct stats_health *h)
{
	fprintf(fp, "{\"state\": \"%s\", \"successes\": %" PRIu32 ", \"failures\": %" PRIu32
	    ", \"last_result\": \"%s\", \"last_errno\": %" PRId32 ", \"last_check_ms\": %" PRIu64
	    ", \"last_change_ms\": %" PRIu64 ", \"last_duration_ms\": %" PRIu32
	    ", \"checks\": %" PRIu64 ", \"checks_failed\": %" PRIu64 "}",
	    stats_health_name(h->state), h->successes, h->failures,
	    stats_check_name(h->last_result), h->last_errno, h->last_check_ms,
	    h->last_change_ms, h->last_duration_ms, h->checks, h->checks_failed);
}

void
render_json(const struct render_ctx *ctx, FILE *fp)
{
	const struct stats_snapshot *sn = ctx->sn;
	unsigned i;

	fprintf(fp, "{\n  \"schema\": %d,\n  \"segment\": ", RENDER_JSON_SCHEMA);
	json_string(fp, ctx->path);
	fprintf(fp, ",\n  \"master\": {\"pid\": %" PRId32 ", \"start_ms\": %" PRIu64
	    ", \"running\": %s},\n", sn->master_pid, sn->start_ms,
	    ctx->master_running ? "true" : "false");
	fprintf(fp, "  \"time_ms\": %" PRIu64 ",\n  \"generation\": %" PRIu64
	    ",\n  \"settled\": %s,\n  \"workers_running\": %u,\n  \"workers_draining\": %u,\n",
	    ctx->now_ms, sn->generation, sn->settled ? "true" : "false", sn->running, sn->draining);
	fputs("  \"totals\": ", fp);
	json_counters(fp, "  ", &sn->total, stats_fields, stats_nfields);
	fputs(",\n  \"retired\": ", fp);
	json_counters(fp, "  ", &sn->retired, stats_fields, stats_nfields);

	fputs(",\n  \"workers\": [", fp);
	for (i = 0; i < sn->nworkers; i++) {
		const struct stats_worker_view *w = &sn->workers[i];

		fprintf(fp, "%s\n    {\"slot\": %u, \"pid\": %" PRId32 ", \"generation\": %" PRIu32
		    ", \"index\": %" PRIu32 ", \"state\": \"%s\", \"started_ms\": %" PRIu64
		    ", \"heartbeat_ms\": %" PRIu64 ",\n     \"counters\": ",
		    i ? "," : "", w->slot, w->pid, w->generation, w->index,
		    stats_state_name(w->state), w->started_ms, w->heartbeat_ms);
		json_counters(fp, "     ", &w->c, stats_fields, stats_nfields);
		fputs("}", fp);
	}
	fputs(sn->nworkers ? "\n  ],\n" : "],\n", fp);

	fputs("  \"listeners\": [", fp);
	for (i = 0; i < sn->nlisteners; i++) {
		const struct stats_listener_view *l = &sn->listeners[i];

		fprintf(fp, "%s\n    {\"row\": %u, \"address\": ", i ? "," : "", l->row);
		json_string(fp, l->entry.address);
		fputs(", \"upstream\": ", fp);
		json_string(fp, l->entry.upstream);
		fprintf(fp, ", \"generation\": %" PRIu32 ", \"first_generation\": %" PRIu32
		    ", \"current\": %s,\n     \"counters\": ", l->entry.generation,
		    l->entry.first_generation, l->entry.generation == sn->generation ? "true" : "false");
		json_counters(fp, "     ", &l->c, stats_listener_fields, stats_listener_nfields);
		fputs("}", fp);
	}
	fputs(sn->nlisteners ? "\n  ],\n" : "],\n", fp);

	fputs("  \"servers\": [", fp);
	for (i = 0; i < sn->nservers; i++) {
		const struct stats_server_view *s = &sn->servers[i];

		fprintf(fp, "%s\n    {\"row\": %u, \"upstream\": ", i ? "," : "", s->row);
		json_string(fp, s->entry.upstream);
		fputs(", \"address\": ", fp);
		json_string(fp, s->entry.address);
		fprintf(fp, ", \"weight\": %" PRIu32 ", \"backup\": %s, \"generation\": %" PRIu32
		    ", \"first_generation\": %" PRIu32 ", \"current\": %s,\n     \"health\": ",
		    s->entry.weight, s->entry.backup ? "true" : "false", s->entry.generation,
		    s->entry.first_generation, s->entry.generation == sn->generation ? "true" : "false");
		json_health(fp, &s->health);
		if (stats_entry_resolved(&s->entry)) {
			char a[ADDR_STRLEN];

			fprintf(fp, ",\n     \"resolved\": {\"state\": \"%s\", \"address\": ",
			    stats_addr_name(s->resolved.state));
			json_string(fp, stats_resolved_format(&s->resolved, a, sizeof(a)));
			fprintf(fp, ", \"ttl_s\": %" PRIu32 ", \"changes\": %" PRIu32
			    ", \"since_ms\": %" PRIu64 ", \"answer_ms\": %" PRIu64 "}",
			    s->resolved.ttl_s, s->resolved.changes, s->resolved.since_ms,
			    s->resolved.answer_ms);
		}
		fputs(",\n     \"counters\": ", fp);
		json_counters(fp, "     ", &s->c, stats_server_fields, stats_server_nfields);
		fputs("}", fp);
	}
	fputs(sn->nservers ? "\n  ]\n}\n" : "]\n}\n", fp);
}

/* --- Prometheus ---------------------------------------------------------- */

void
render_prometheus(const struct render_ctx *ctx, FILE *fp)
{
	prom_render(ctx->sn, ctx->master_running, fp);
}

/* --- single values ------------------------------------------------------- */

int
render_one_known(const char *name)
{
	if (stats_field_find(stats_fields, stats_nfields, name) >= 0)
		return 1;
	for (unsigned i = 0; i < NEXTRA; i++)
		if (strcmp(name, extra_names[i]) == 0)
			return 1;
	return 0;
}

void
render_one_names(FILE *fp)
{
	fputs("valid names:", fp);
	for (unsigned f = 0; f < stats_nfields; f++)
		fprintf(fp, " %s", stats_fields[f].name);
	for (unsigned i = 0; i < NEXTRA; i++)
		fprintf(fp, " %s", extra_names[i]);
	fputc('\n', fp);
}

void
render_one(const struct render_ctx *ctx, const char *name, FILE *fp)
{
	const struct stats_snapshot *sn = ctx->sn;
	int f = stats_field_find(stats_fields, stats_nfields, name);

	if (f >= 0)
		fprintf(fp, "%" PRIu64 "\n", stats_field_get(&sn->total, &stats_fields[f]));
	else if (strcmp(name, "generation") == 0)
		fprintf(fp, "%" PRIu64 "\n", sn->generation);
	else if (strcmp(name, "workers") == 0)
		fprintf(fp, "%u\n", sn->running);
	else if (strcmp(name, "draining") == 0)
		fprintf(fp, "%u\n", sn->draining);
	else if (strcmp(name, "master_pid") == 0)
		fprintf(fp, "%" PRId32 "\n", sn->master_pid);
	else if (strcmp(name, "start_ms") == 0)
		fprintf(fp, "%" PRIu64 "\n", sn->start_ms);
	else if (strcmp(name, "source_slots") == 0)
		fprintf(fp, "%" PRIu64 "\n", sn->source_slots);
	else if (strcmp(name, "source_slots_used") == 0)
		fprintf(fp, "%" PRIu64 "\n", sn->source_slots_used);
	else if (strcmp(name, "source_table_full") == 0)
		fprintf(fp, "%" PRIu64 "\n", sn->source_table_full);
	else if (strcmp(name, "source_reconciled") == 0)
		fprintf(fp, "%" PRIu64 "\n", sn->source_reconciled);
	else if (strcmp(name, "uptime_s") == 0)
		fprintf(fp, "%" PRIu64 "\n",
		    ctx->now_ms > sn->start_ms ? (ctx->now_ms - sn->start_ms) / 1000 : 0);
}
