/* SPDX-License-Identifier: BSD-2-Clause */
/* watch.c — sluicestat -w: a live, top-like view of the statistics segment
 * drawn with ncurses: re-reads the segment every interval, shows rates
 * between readings, fits the terminal and follows its resizes, says when the
 * master restarted. Runs in sluicestat only; maps the segment read-only and
 * never signals sluiced (kill(pid, 0) only asks whether it exists). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "render.h"
#include "segread.h"
#include "stats.h"
#include "watch.h"

#ifndef HAVE_NCURSES

int
watch_available(void)
{
	return 0;
}

int
watch_run(const char *path, double interval)
{
	fprintf(stderr, "sluicestat: -w is not available: this sluicestat was built "
	                "without ncurses (Debian package libncurses-dev)\n");
	return 2;
}

#else

#include <curses.h>

/* Keys are polled this often, so q and signals act within this. */
#define WATCH_SLICE_MS 200
/* A message about the master stays on screen this long. */
#define WATCH_NOTICE_MS 30000

static volatile sig_atomic_t stop_requested;

static void
on_stop_signal(int sig)
{
	stop_requested = 1;
}

static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The lines of one screen, collected from render_table. */
struct lines {
	char **v;
	unsigned n, cap;
};

static void
lines_add(void *arg, const char *line)
{
	struct lines *l = arg;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (l->v == NULL)
			goto oom;
	}
	if ((l->v[l->n] = strdup(line)) == NULL)
		goto oom;
	l->n++;
	return;
oom:
	endwin();
	fprintf(stderr, "sluicestat: out of memory\n");
	exit(1);
}

static void
lines_clear(struct lines *l)
{
	for (unsigned i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

/* What the view knows between readings. */
struct watch {
	const char *path;
	double interval;
	struct stats_snapshot *sn, *prev; /* this reading and the one before */
	double sn_at, prev_at;            /* mono_now() of each */
	uint64_t sn_ms;                   /* CLOCK_REALTIME of sn */
	int master_running;
	int32_t master_pid; /* identity of the master last seen, to tell a restart */
	uint64_t master_start;
	char problem[640]; /* why there is no reading now ("" when there is) */
	char notice[256];  /* about the master (restart), shown for a while */
	double notice_until;
};

static void
watch_forget(struct watch *wv)
{
	stats_snapshot_destroy(wv->sn);
	stats_snapshot_destroy(wv->prev);
	wv->sn = wv->prev = NULL;
}

/* A new reading. The segment is attached afresh each time: a restarted
 * master renames a new file over the old one, which a kept mapping would
 * never show. */
static void
watch_read(struct watch *wv)
{
	struct stats_snapshot *sn;
	char err[512];
	pid_t pid;

	sn = segread_snapshot(wv->path, err, sizeof(err));
	if (sn == NULL) {
		int why = errno;

		snprintf(wv->problem, sizeof(wv->problem), "%s; trying again every %gs", err,
		    wv->interval);
		if (why != ENOMEM)
			watch_forget(wv);
		return;
	}
	wv->problem[0] = '\0';
	if (wv->master_pid != 0 &&
	    (sn->master_pid != wv->master_pid || sn->start_ms != wv->master_start)) {
		/* Totals of the new master start from zero: no rate spans
		 * the two. */
		snprintf(wv->notice, sizeof(wv->notice),
		    "master restarted: pid %" PRId32 " is now pid %" PRId32
		    "; its totals start again from zero", wv->master_pid, sn->master_pid);
		wv->notice_until = mono_now() + WATCH_NOTICE_MS / 1000.0;
		watch_forget(wv);
	}
	wv->master_pid = sn->master_pid;
	wv->master_start = sn->start_ms;
	pid = sn->master_pid;
	wv->master_running = !(pid > 0 && kill(pid, 0) == -1 && errno == ESRCH);

	stats_snapshot_destroy(wv->prev);
	wv->prev = wv->sn;
	wv->prev_at = wv->sn_at;
	wv->sn = sn;
	wv->sn_at = mono_now();
	wv->sn_ms = stats_now_ms();
}

/* Draw what is known, fitted to the terminal as it is now. */
static void
watch_draw(struct watch *wv, struct lines *l)
{
	char hint[768];
	int rows = LINES, cols = COLS;

	lines_clear(l);
	if (wv->sn != NULL) {
		struct render_ctx ctx = {
			.path = wv->path,
			.sn = wv->sn,
			.prev = wv->prev,
			.interval = wv->prev ? wv->sn_at - wv->prev_at : 0,
			.now_ms = wv->sn_ms,
			.master_running = wv->master_running,
		};

		render_table(&ctx, cols > 0 ? (unsigned)cols : 80, lines_add, l);
		if (l->n > (unsigned)rows) {
			/* Short of lines: the detail totals go first. */
			lines_clear(l);
			ctx.brief = 1;
			render_table(&ctx, cols > 0 ? (unsigned)cols : 80, lines_add, l);
		}
	} else {
		lines_add(l, "sluicestat");
		lines_add(l, "");
	}
	/* The second line (blank in the table) tells what is going on. */
	if (wv->problem[0] != '\0')
		snprintf(hint, sizeof(hint), "%s", wv->problem);
	else if (wv->notice[0] != '\0' && mono_now() < wv->notice_until)
		snprintf(hint, sizeof(hint), "%s", wv->notice);
	else if (!wv->master_running)
		snprintf(hint, sizeof(hint), "master pid %" PRId32 " is not running: these "
		    "numbers no longer move (stale segment)", wv->master_pid);
	else
		snprintf(hint, sizeof(hint), "every %gs from %s; rates per second; q quits",
		    wv->interval, wv->path);
	if (l->n > 1) {
		free(l->v[1]);
		if ((l->v[1] = strdup(hint)) == NULL)
			lines_add(l, ""); /* exits: out of memory */
	}

	erase();
	for (int r = 0; r < rows && (unsigned)r < l->n; r++) {
		/* Writing the bottom-right cell would scroll the screen. */
		int room = r == rows - 1 ? cols - 1 : cols;

		if (r == rows - 1 && l->n > (unsigned)rows) {
			mvprintw(r, 0, "%.*s", room > 0 ? room : 0, "");
			attron(A_REVERSE);
			mvprintw(r, 0, "-- %u more lines: make the window taller --",
			    l->n - (unsigned)r);
			attroff(A_REVERSE);
			break;
		}
		if (r == 0)
			attron(A_BOLD);
		if (room > 0)
			mvaddnstr(r, 0, l->v[r], room);
		if (r == 0)
			attroff(A_BOLD);
	}
	refresh();
}

int
watch_available(void)
{
	return 1;
}

int
watch_run(const char *path, double interval)
{
	struct watch wv = { .path = path, .interval = interval, .master_running = 1 };
	struct lines l = { NULL, 0, 0 };
	struct sigaction sa;
	SCREEN *scr;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "sluicestat: -w needs a terminal; scripts want -1, --json or "
		                "--prometheus\n");
		return 2;
	}
	/* newterm, unlike initscr, returns NULL on a terminal it cannot drive
	 * instead of exiting on its own. */
	scr = newterm(NULL, stdout, stdin);
	if (scr == NULL) {
		fprintf(stderr, "sluicestat: cannot drive this terminal (TERM=%s)\n",
		    getenv("TERM") ? getenv("TERM") : "unset");
		return 1;
	}
	set_term(scr);
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	/* After newterm, which installs its own handlers for these: ours only
	 * set a flag, so the loop ends and endwin restores the terminal. No
	 * SA_RESTART, so a wait for a key ends early. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	while (!stop_requested) {
		double deadline;

		watch_read(&wv);
		watch_draw(&wv, &l);
		deadline = mono_now() + interval;
		while (!stop_requested) {
			double left = deadline - mono_now();
			int ch, ms;

			if (left <= 0)
				break;
			ms = (int)(left * 1000) + 1;
			timeout(ms < WATCH_SLICE_MS ? ms : WATCH_SLICE_MS);
			ch = getch();
			if (ch == 'q' || ch == 'Q' || ch == 3 /* ^C without ISIG */)
				stop_requested = 1;
			else if (ch == KEY_RESIZE || ch == 12 /* ^L */)
				watch_draw(&wv, &l);
		}
	}

	endwin();
	delscreen(scr);
	lines_clear(&l);
	free(l.v);
	watch_forget(&wv);
	return 0;
}

#endif
