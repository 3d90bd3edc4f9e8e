/* SPDX-License-Identifier: BSD-2-Clause */
/* sluicestat.c — what a running sluiced reports in its statistics segment:
 * a one-shot table (totals, workers, listeners, servers and their health),
 * a live view (-w), JSON, Prometheus text, or one number for scripts (-1).
 * An operator's command, not part of the daemon: it maps the segment
 * read-only, never writes to it and never signals sluiced (kill(pid, 0)
 * only asks whether the master still exists). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "render.h"
#include "segread.h"
#include "stats.h"
#include "watch.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define DEFAULT_CONF SYSCONFDIR "/sluice.conf"
#define DEFAULT_STATS "/run/sluice/stats"

/* Exit statuses, as the usage text documents them. */
#define EXIT_READ 1  /* no segment, not one, another layout, unreadable config, output */
#define EXIT_USAGE 2 /* bad option or argument, unknown -1 name, -w without terminal */

#define WATCH_MIN 0.1
#define WATCH_MAX 86400.0

enum mode { MODE_TABLE, MODE_ONE, MODE_JSON, MODE_PROMETHEUS, MODE_WATCH };

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: sluicestat [-c CONFIG | -s PATH] [-w SECONDS | -1 NAME | --json |\n"
	    "                  --prometheus] [-h] [-V]\n"
	    "  -c CONFIG     read the segment named by stats_file in CONFIG\n"
	    "  -s PATH       read the segment at PATH\n"
	    "  -w SECONDS    live view, redrawn every SECONDS (0.1 or more) with rates\n"
	    "                per second; q or Ctrl-C quits%s\n"
	    "  -1 NAME       print one total as a bare number (a counter name, or\n"
	    "                generation, workers, draining, master_pid, start_ms, uptime_s)\n"
	    "  --json        everything as one JSON object\n"
	    "  --prometheus  Prometheus text format (node_exporter textfile collector)\n"
	    "  -h            show this help\n"
	    "  -V            show the version\n"
	    "With neither -c nor -s: stats_file of %s if that exists,\n"
	    "else %s. Without a mode: one table of totals, workers, listeners\n"
	    "and servers.\n"
	    "Exit status: 0 printed (a stale segment, whose master is gone, still prints,\n"
	    "with a warning on stderr); 1 no segment, not a segment, another layout\n"
	    "version, truncated, unreadable config or output error; 2 usage error\n"
	    "(bad option, unknown NAME, -w without a terminal or ncurses).\n",
	    watch_available() ? "" : " (not in this build: no ncurses)", DEFAULT_CONF,
	    DEFAULT_STATS);
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
	/* Only stats_file: no server name is resolved on the way. */
	conf = conf_peek(conf_path, err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "sluicestat: %s\n", err);
		return NULL;
	}
	path = strdup(conf->stats_file);
	conf_free(conf);
	return path;
}

static void
print_line(void *arg, const char *line)
{
	fprintf(arg, "%s\n", line);
}

/* Parse -w's argument: seconds, fractions allowed. */
static int
parse_interval(const char *text, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !(v >= WATCH_MIN && v <= WATCH_MAX))
		return -1;
	*out = v;
	return 0;
}

static int
set_mode(enum mode *mode, enum mode m)
{
	if (*mode != MODE_TABLE && *mode != m) {
		fprintf(stderr, "sluicestat: -w, -1, --json and --prometheus exclude each other\n");
		usage(stderr);
		return -1;
	}
	*mode = m;
	return 0;
}

/* One reading in the chosen one-shot mode; returns the exit status. */
static int
print_once(const char *path, enum mode mode, const char *one)
{
	struct stats_snapshot *sn;
	struct render_ctx ctx;
	char err[1024];
	pid_t master;

	sn = segread_snapshot(path, err, sizeof(err));
	if (sn == NULL) {
		fprintf(stderr, "sluicestat: %s\n", err);
		return EXIT_READ;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.path = path;
	ctx.sn = sn;
	ctx.now_ms = stats_now_ms();
	ctx.master_running = 1;
	/* The master removes the segment when it stops; one left behind by a
	 * killed master still reads, but its numbers no longer move. */
	master = sn->master_pid;
	if (master > 0 && kill(master, 0) == -1 && errno == ESRCH) {
		ctx.master_running = 0;
		fprintf(stderr, "warning: master pid %d is not running (stale segment)\n",
		    (int)master);
	}

	switch (mode) {
	case MODE_ONE:
		render_one(&ctx, one, stdout);
		break;
	case MODE_JSON:
		render_json(&ctx, stdout);
		break;
	case MODE_PROMETHEUS:
		render_prometheus(&ctx, stdout);
		break;
	default:
		render_table(&ctx, 0, print_line, stdout);
		break;
	}
	stats_snapshot_destroy(sn);
	/* A full disk or a closed pipe must not look like a good reading. */
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "sluicestat: cannot write the output\n");
		return EXIT_READ;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "prometheus", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf_path = NULL, *seg_path = NULL, *one = NULL;
	enum mode mode = MODE_TABLE;
	double interval = 1;
	char *path;
	int ch, rc;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "c:s:1:w:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 's':
			seg_path = optarg;
			break;
		case '1':
			one = optarg;
			if (set_mode(&mode, MODE_ONE) == -1)
				return EXIT_USAGE;
			break;
		case 'w':
			if (parse_interval(optarg, &interval) == -1) {
				fprintf(stderr, "sluicestat: -w wants seconds from %g to %g, not "
				                "\"%s\"\n", WATCH_MIN, WATCH_MAX, optarg);
				usage(stderr);
				return EXIT_USAGE;
			}
			if (set_mode(&mode, MODE_WATCH) == -1)
				return EXIT_USAGE;
			break;
		case 'J':
			if (set_mode(&mode, MODE_JSON) == -1)
				return EXIT_USAGE;
			break;
		case 'P':
			if (set_mode(&mode, MODE_PROMETHEUS) == -1)
				return EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("sluicestat %s\n", PACKAGE_VERSION);
			return 0;
		default:
			if (optopt == 'c' || optopt == 's' || optopt == '1' || optopt == 'w')
				fprintf(stderr, "sluicestat: option -%c needs an argument\n",
				    optopt);
			else if (optopt != 0)
				fprintf(stderr, "sluicestat: unknown option -%c\n", optopt);
			else
				fprintf(stderr, "sluicestat: unknown option %s\n", argv[optind - 1]);
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
	if (one != NULL && !render_one_known(one)) {
		fprintf(stderr, "sluicestat: unknown name \"%s\"; ", one);
		render_one_names(stderr);
		return EXIT_USAGE;
	}
	if (mode == MODE_WATCH && !watch_available())
		return watch_run(NULL, interval);

	path = segment_path(conf_path, seg_path);
	if (path == NULL)
		return EXIT_READ;
	if (mode == MODE_WATCH)
		rc = watch_run(path, interval);
	else
		rc = print_once(path, mode, one);
	free(path);
	return rc;
}
