/* sluicestat.c — prints what a running sluiced reports in its statistics
 * segment: one row per worker slot, the retired row and the totals, or one
 * total for scripts (-1). An operator's command, not part of the daemon: it
 * maps the segment read-only, never writes to it and never signals sluiced
 * (kill(pid, 0) only asks whether the master still exists). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "stats.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define DEFAULT_CONF SYSCONFDIR "/sluice.conf"
#define DEFAULT_STATS "/run/sluice/stats"

#define EXIT_USAGE 2

/* Readers retry while the master folds; give up after this many and show
 * what was read last rather than hang on a stopped master. */
#define SNAPSHOT_RETRIES 1000

/* Wide enough for any uint64_t in decimal, the fixed labels and the
 * field names. */
#define CELL_MAX 48

/* The slot columns printed before the counters. */
enum { COL_SLOT, COL_PID, COL_GEN, COL_STATE, COL_FIELDS };

/* What one slot showed when we read it. */
struct row {
	unsigned index;
	uint32_t state;
	uint32_t generation;
	int32_t pid;
	struct stats_counters c;
};

struct snapshot {
	struct row *rows; /* non-free slots, in slot order */
	unsigned nrows;
	struct stats_counters retired;
	struct stats_counters total;
	uint64_t generation;
	unsigned running, draining;
};

/* Names -1 accepts besides the fields of stats_fields. */
static const char *const extra_names[] = { "generation", "workers", "master_pid" };
#define NEXTRA (sizeof(extra_names) / sizeof(extra_names[0]))

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: sluicestat [-c CONFIG | -s PATH] [-1 NAME] [-h] [-V]\n"
	    "  -c CONFIG  read the segment named by stats_file in CONFIG\n"
	    "  -s PATH    read the segment at PATH\n"
	    "  -1 NAME    print only the total of NAME as a bare number\n"
	    "             (a field name, generation, workers or master_pid)\n"
	    "  -h         show this help\n"
	    "  -V         show the version\n"
	    "With neither -c nor -s: stats_file of %s if that exists,\n"
	    "else %s.\n",
	    DEFAULT_CONF, DEFAULT_STATS);
}

static uint64_t
field_value(const struct stats_counters *c, unsigned f)
{
	return *(const uint64_t *)((const char *)c + stats_fields[f].offset);
}

static void
valid_names(FILE *fp)
{
	unsigned f;

	fputs("valid names:", fp);
	for (f = 0; f < stats_nfields; f++)
		fprintf(fp, " %s", stats_fields[f].name);
	for (f = 0; f < NEXTRA; f++)
		fprintf(fp, " %s", extra_names[f]);
	fputc('\n', fp);
}

static int
known_name(const char *name)
{
	unsigned i;

	for (i = 0; i < stats_nfields; i++)
		if (strcmp(name, stats_fields[i].name) == 0)
			return 1;
	for (i = 0; i < NEXTRA; i++)
		if (strcmp(name, extra_names[i]) == 0)
			return 1;
	return 0;
}

/*
 * Where the segment is: -s, else stats_file of -c, else of the default config
 * when one is installed, else the built-in default. Returns a malloc'ed path,
 * or NULL after saying why on stderr.
 */
static char *
segment_path(const char *conf_path, const char *seg_path)
{
	struct conf *conf;
	char err[512];
	char *path;

	if (seg_path != NULL)
		return strdup(seg_path);
	if (conf_path == NULL) {
		if (access(DEFAULT_CONF, F_OK) == -1)
			return strdup(DEFAULT_STATS);
		conf_path = DEFAULT_CONF;
	}
	conf = conf_load(conf_path, err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "sluicestat: %s\n", err);
		return NULL;
	}
	path = strdup(conf->stats_file);
	conf_free(conf);
	return path;
}

/* A relaxed load of each field: a worker may be writing them right now. */
static void
load_counters(struct stats_counters *dst, const struct stats_counters *src)
{
	unsigned f;
	size_t off;

	for (f = 0; f < stats_nfields; f++) {
		off = stats_fields[f].offset;
		*(uint64_t *)((char *)dst + off) =
		    __atomic_load_n((const uint64_t *)((const char *)src + off), __ATOMIC_RELAXED);
	}
}

/*
 * Read every live slot, the retired row and the totals between two equal,
 * even values of fold_seq, so a worker folded meanwhile is neither missing
 * nor counted twice. rows must hold hdr->nslots entries.
 */
static void
take_snapshot(const struct stats_seg *seg, struct snapshot *sn)
{
	const struct stats_header *hdr = seg->hdr;
	struct row *r;
	uint64_t before;
	unsigned i;
	int tries, last;
	uint32_t state;

	for (tries = 1;; tries++) {
		/* The last try reads whatever is there: a master killed in the
		 * middle of a fold leaves fold_seq odd for good. */
		last = tries >= SNAPSHOT_RETRIES;
		before = __atomic_load_n(&hdr->fold_seq, __ATOMIC_ACQUIRE);
		if ((before & 1) && !last)
			continue;
		sn->nrows = sn->running = sn->draining = 0;
		for (i = 0; i < hdr->nslots; i++) {
			state = __atomic_load_n(&seg->slots[i].state, __ATOMIC_ACQUIRE);
			if (state == STATS_SLOT_FREE)
				continue;
			r = &sn->rows[sn->nrows++];
			r->index = i;
			r->state = state;
			r->generation = __atomic_load_n(&seg->slots[i].generation,
			    __ATOMIC_RELAXED);
			r->pid = __atomic_load_n(&seg->slots[i].pid, __ATOMIC_RELAXED);
			load_counters(&r->c, &seg->slots[i].c);
			if (state == STATS_SLOT_RUNNING)
				sn->running++;
			else if (state == STATS_SLOT_DRAINING)
				sn->draining++;
		}
		load_counters(&sn->retired, &hdr->retired);
		stats_total(seg, &sn->total);
		sn->generation = __atomic_load_n(&hdr->generation, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&hdr->fold_seq, __ATOMIC_RELAXED) == before || last)
			break;
	}
}

static void
format_uptime(char *buf, size_t len, uint64_t start_ms)
{
	uint64_t now = stats_now_ms(), s;

	s = now > start_ms ? (now - start_ms) / 1000 : 0;
	if (s >= 86400)
		snprintf(buf, len, "%" PRIu64 "d %02u:%02u:%02u", s / 86400,
		    (unsigned)(s % 86400 / 3600), (unsigned)(s % 3600 / 60), (unsigned)(s % 60));
	else
		snprintf(buf, len, "%u:%02u:%02u", (unsigned)(s / 3600),
		    (unsigned)(s % 3600 / 60), (unsigned)(s % 60));
}

static void
print_table(const char *path, const struct stats_seg *seg, const struct snapshot *sn)
{
	unsigned ncols = COL_FIELDS + stats_nfields;
	unsigned nrows = sn->nrows + 3; /* column names, slots, retired, total */
	char (*cell)[CELL_MAX];
	size_t *width;
	char up[64];
	unsigned r, c, f;

	cell = calloc((size_t)nrows * ncols, sizeof(*cell));
	width = calloc(ncols, sizeof(*width));
	if (cell == NULL || width == NULL) {
		fprintf(stderr, "sluicestat: out of memory\n");
		exit(1);
	}
#define CELL(r, c) cell[(size_t)(r) * ncols + (c)]

	snprintf(CELL(0, COL_SLOT), CELL_MAX, "slot");
	snprintf(CELL(0, COL_PID), CELL_MAX, "pid");
	snprintf(CELL(0, COL_GEN), CELL_MAX, "gen");
	snprintf(CELL(0, COL_STATE), CELL_MAX, "state");
	for (f = 0; f < stats_nfields; f++)
		snprintf(CELL(0, COL_FIELDS + f), CELL_MAX, "%s", stats_fields[f].name);

	for (r = 0; r < sn->nrows; r++) {
		const struct row *w = &sn->rows[r];

		snprintf(CELL(r + 1, COL_SLOT), CELL_MAX, "%u", w->index);
		snprintf(CELL(r + 1, COL_PID), CELL_MAX, "%" PRId32, w->pid);
		snprintf(CELL(r + 1, COL_GEN), CELL_MAX, "%" PRIu32, w->generation);
		snprintf(CELL(r + 1, COL_STATE), CELL_MAX, "%s", stats_state_name(w->state));
		for (f = 0; f < stats_nfields; f++)
			snprintf(CELL(r + 1, COL_FIELDS + f), CELL_MAX, "%" PRIu64,
			    field_value(&w->c, f));
	}

	r = sn->nrows + 1;
	snprintf(CELL(r, COL_SLOT), CELL_MAX, "retired");
	snprintf(CELL(r + 1, COL_SLOT), CELL_MAX, "total");
	for (c = COL_PID; c < COL_FIELDS; c++) {
		snprintf(CELL(r, c), CELL_MAX, "-");
		snprintf(CELL(r + 1, c), CELL_MAX, "-");
	}
	for (f = 0; f < stats_nfields; f++) {
		/* Gauges of exited workers are gone, not zero: say so. */
		if (stats_fields[f].kind == STATS_COUNTER)
			snprintf(CELL(r, COL_FIELDS + f), CELL_MAX, "%" PRIu64,
			    field_value(&sn->retired, f));
		else
			snprintf(CELL(r, COL_FIELDS + f), CELL_MAX, "-");
		snprintf(CELL(r + 1, COL_FIELDS + f), CELL_MAX, "%" PRIu64,
		    field_value(&sn->total, f));
	}

	for (r = 0; r < nrows; r++)
		for (c = 0; c < ncols; c++)
			if (strlen(CELL(r, c)) > width[c])
				width[c] = strlen(CELL(r, c));

	format_uptime(up, sizeof(up), seg->hdr->start_ms);
	printf("master pid %" PRId32 ", up %s, generation %" PRIu64 ", %u worker%s running",
	    seg->hdr->master_pid, up, sn->generation, sn->running,
	    sn->running == 1 ? "" : "s");
	if (sn->draining > 0)
		printf(", %u draining", sn->draining);
	printf(", segment %s\n", path);

	/* Labels and the state read left-aligned, numbers right-aligned. */
	for (r = 0; r < nrows; r++) {
		for (c = 0; c < ncols; c++) {
			int left = c == COL_SLOT || c == COL_STATE;

			printf("%s%*s", c == 0 ? "" : "  ", left ? -(int)width[c] : (int)width[c],
			    CELL(r, c));
		}
		putchar('\n');
	}
#undef CELL
	free(width);
	free(cell);
}

static void
print_one(const char *name, const struct stats_seg *seg, const struct snapshot *sn)
{
	unsigned f;

	if (strcmp(name, "generation") == 0) {
		printf("%" PRIu64 "\n", sn->generation);
		return;
	}
	if (strcmp(name, "workers") == 0) {
		printf("%u\n", sn->running);
		return;
	}
	if (strcmp(name, "master_pid") == 0) {
		printf("%" PRId32 "\n", seg->hdr->master_pid);
		return;
	}
	for (f = 0; f < stats_nfields; f++) {
		if (strcmp(name, stats_fields[f].name) == 0) {
			printf("%" PRIu64 "\n", field_value(&sn->total, f));
			return;
		}
	}
}

int
main(int argc, char **argv)
{
	const char *conf_path = NULL, *seg_path = NULL, *one = NULL;
	struct stats_seg seg;
	struct snapshot sn;
	char err[1024];
	char *path;
	pid_t master;
	int ch;

	opterr = 0;
	while ((ch = getopt(argc, argv, "c:s:1:hV")) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 's':
			seg_path = optarg;
			break;
		case '1':
			one = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("sluicestat %s\n", PACKAGE_VERSION);
			return 0;
		default:
			if (optopt == 'c' || optopt == 's' || optopt == '1')
				fprintf(stderr, "sluicestat: option -%c needs an argument\n",
				    optopt);
			else
				fprintf(stderr, "sluicestat: unknown option -%c\n", optopt);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluicestat: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (conf_path != NULL && seg_path != NULL) {
		fprintf(stderr, "sluicestat: -c and -s exclude each other\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	/* A misspelt name is the caller's mistake whatever state sluiced is in. */
	if (one != NULL && !known_name(one)) {
		fprintf(stderr, "sluicestat: unknown name \"%s\"; ", one);
		valid_names(stderr);
		return EXIT_USAGE;
	}

	path = segment_path(conf_path, seg_path);
	if (path == NULL)
		return 1;
	if (stats_attach(&seg, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "sluicestat: %s\n", err);
		free(path);
		return 1;
	}

	sn.rows = calloc(seg.hdr->nslots, sizeof(*sn.rows));
	if (sn.rows == NULL) {
		fprintf(stderr, "sluicestat: out of memory\n");
		return 1;
	}
	take_snapshot(&seg, &sn);

	/* The master removes the segment when it stops; one left behind by a
	 * killed master still reads, but its numbers no longer move. */
	master = seg.hdr->master_pid;
	if (master > 0 && kill(master, 0) == -1 && errno == ESRCH)
		fprintf(stderr, "warning: master pid %d is not running (stale segment)\n",
		    (int)master);

	if (one != NULL)
		print_one(one, &seg, &sn);
	else
		print_table(path, &seg, &sn);

	free(sn.rows);
	stats_detach(&seg);
	free(path);
	/* A full disk or a closed pipe must not look like a good reading. */
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "sluicestat: cannot write the output\n");
		return 1;
	}
	return 0;
}
