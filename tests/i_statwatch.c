/* SPDX-License-Identifier: BSD-2-Clause */
/* i_statwatch.c — integration test of sluicestat -w, the live view, driven
 * through tmux: it draws the segment with rates, fits a resized terminal,
 * says when the master restarted or the segment is gone, and q and Ctrl-C
 * both end it with status 0 and the terminal as it was. Skipped when tmux is
 * not installed. Runs a private tmux server (its own socket in the test's
 * directory, killed at exit) and a segment this test makes; no daemon. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"

#define SCREEN_WAIT_MS 15000

static char tmux_path[4096];
static char sock[4096];
static int server_started;

/* tmux in PATH, or 0. */
static int
find_tmux(void)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;
	int found = 0;

	if (path == NULL)
		path = "/usr/bin:/bin";
	if ((copy = strdup(path)) == NULL)
		bail("out of memory");
	for (dir = strtok_r(copy, ":", &save); dir != NULL && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(tmux_path, sizeof(tmux_path), "%s/tmux", dir);
		found = access(tmux_path, X_OK) == 0;
	}
	free(copy);
	return found;
}

/* Run tmux with up to eight arguments on our server; its output in *out
 * (may be NULL). Returns its exit status. */
static int
tmux(char **out, const char *a1, const char *a2, const char *a3, const char *a4,
    const char *a5, const char *a6, const char *a7, const char *a8)
{
	char *argv[] = { tmux_path, "-S", sock, "-f", "/dev/null", (char *)a1, (char *)a2,
		(char *)a3, (char *)a4, (char *)a5, (char *)a6, (char *)a7, (char *)a8, NULL };
	char *text = NULL;
	int st = h_run(argv, &text, 10000);

	if (out)
		*out = text;
	else
		free(text);
	return st;
}

static void
tmux_cleanup(void)
{
	if (server_started)
		tmux(NULL, "kill-server", NULL, NULL, NULL, NULL, NULL, NULL, NULL);
}

/* The screen of session name as text (malloc'ed). */
static char *
capture(const char *name)
{
	char *text = NULL;

	tmux(&text, "capture-pane", "-p", "-t", name, NULL, NULL, NULL, NULL);
	return text ? text : strdup("");
}

/* Poll the screen until it contains needle (or, with absent, no longer
 * does). Returns 1, or 0 after the deadline with the screen in diag. */
static int
wait_screen(const char *name, const char *needle, int absent)
{
	uint64_t end = h_now_ms() + SCREEN_WAIT_MS;
	char *text = NULL;

	for (;;) {
		free(text);
		text = capture(name);
		if ((strstr(text, needle) != NULL) != absent) {
			free(text);
			return 1;
		}
		if (h_now_ms() >= end)
			break;
		h_nap(50);
	}
	diag("waited for the screen to %s \"%s\"; it shows:\n%s", absent ? "lose" : "show",
	    needle, text);
	free(text);
	return 0;
}

/* The per-second rate on the screen's "accepted" totals line, or -1. */
static double
accepted_rate(const char *screen)
{
	const char *p = screen;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, "accepted ", 9) == 0) {
			const char *slash = strstr(p, "/s");
			const char *eol = strchr(p, '\n');
			const char *q;

			if (slash == NULL || (eol != NULL && slash > eol))
				return -1;
			for (q = slash; q > p && q[-1] != ' '; q--)
				;
			return q[0] == '-' ? -1 : strtod(q, NULL);
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return -1;
}

/* Longest line and number of lines of a screen. */
static void
measure(const char *screen, size_t *widest, unsigned *lines)
{
	const char *p = screen;

	*widest = 0;
	*lines = 0;
	while (*p != '\0') {
		size_t len = strcspn(p, "\n");

		if (len > *widest)
			*widest = len;
		(*lines)++;
		p += len;
		if (*p == '\n')
			p++;
	}
}

static void
make_segment(struct stats_seg *seg, int64_t start_shift)
{
	struct sockaddr_in in;
	char err[512];

	if (stats_create(seg, h_path("stats"), 8, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);
	seg->hdr->start_ms += (uint64_t)start_shift;
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_port = htons(8080);
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	stats_listener_row(seg, (struct sockaddr *)&in, sizeof(in), "127.0.0.1:8080", "app", 1);
	in.sin_port = htons(9000);
	stats_server_row(seg, "app", (struct sockaddr *)&in, sizeof(in), "127.0.0.1:9000", 1, 0, 1);
	seg->slots[0].pid = 4242;
	seg->slots[0].generation = 1;
	seg->slots[0].heartbeat_ms = stats_now_ms();
	__atomic_store_n(&seg->slots[0].state, STATS_SLOT_RUNNING, __ATOMIC_RELEASE);
}

/* Start sluicestat -w in a new tmux session `name`, wrapped so that its exit
 * status and the terminal modes before and after land in files. */
static void
start_watch(const char *name)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd),
	    "stty -g > '%s.before'; '%s' -s '%s' -w 0.2; echo $? > '%s.status'; "
	    "stty -g > '%s.after'; exec cat",
	    h_path(name), h_sluicestat(), h_path("stats"), h_path(name), h_path(name));
	if (tmux(NULL, "new-session", "-d", "-x", "160", "-y", "50", "-s", name) != 0)
		bail("tmux new-session failed");
	server_started = 1;
	if (tmux(NULL, "respawn-pane", "-k", "-t", name, cmd, NULL, NULL, NULL) != 0)
		bail("tmux respawn-pane failed");
}

/* Wait for name's wrapper to record sluicestat's exit; check the status and
 * that the terminal modes came back. */
static void
check_exit(const char *name, const char *how)
{
	char status_path[4096], *status = NULL, *before, *after;
	uint64_t end = h_now_ms() + SCREEN_WAIT_MS;

	snprintf(status_path, sizeof(status_path), "%s.status", h_path(name));
	while (h_now_ms() < end) {
		if ((status = h_read_file(status_path)) != NULL && strchr(status, '\n') != NULL)
			break;
		free(status);
		status = NULL;
		h_nap(50);
	}
	is_str(status, "0\n", "%s: sluicestat exits 0", how);
	snprintf(status_path, sizeof(status_path), "%s.before", h_path(name));
	before = h_read_file(status_path);
	end = h_now_ms() + SCREEN_WAIT_MS;
	snprintf(status_path, sizeof(status_path), "%s.after", h_path(name));
	/* The shell creates the file before stty writes it. */
	while (((after = h_read_file(status_path)) == NULL || strchr(after, '\n') == NULL) &&
	    h_now_ms() < end) {
		free(after);
		after = NULL;
		h_nap(50);
	}
	ok(before != NULL && after != NULL && strcmp(before, after) == 0 && strlen(before) > 10,
	    "%s: the terminal modes are as before", how);
	ok(wait_screen(name, "master pid", 1), "%s: the live view left the screen", how);
	free(status);
	free(before);
	free(after);
}

int
main(void)
{
	struct stats_seg seg, old;
	char want[64], *screen;
	uint64_t end;
	double rate = -1;
	size_t widest;
	unsigned lines;

	if (!find_tmux()) {
		printf("1..0 # SKIP tmux is not installed (Debian package tmux)\n");
		return 0;
	}
	{
		char *argv[] = { (char *)h_sluicestat(), "-h", NULL };
		char *help = NULL;
		int no_watch;

		h_run(argv, &help, 10000);
		no_watch = help == NULL || strstr(help, "not in this build") != NULL;
		free(help);
		if (no_watch) {
			printf("1..0 # SKIP sluicestat was built without ncurses (no -w)\n");
			return 0;
		}
	}
	snprintf(sock, sizeof(sock), "%s", h_path("tmux.sock"));
	atexit(tmux_cleanup);
	make_segment(&seg, 0);

	start_watch("w");
	snprintf(want, sizeof(want), "master pid %d,", (int)getpid());
	ok(wait_screen("w", want, 0), "the live view shows the master");
	ok(wait_screen("w", "q quits", 0), "... with a hint line");
	ok(wait_screen("w", "127.0.0.1:9000", 0), "... and the server table");

	/* A worker counting: the accepted rate shows, per second. */
	end = h_now_ms() + SCREEN_WAIT_MS;
	while (h_now_ms() < end) {
		STATS_ADD(&seg.slots[0], accepted, 50);
		h_nap(50);
		screen = capture("w");
		rate = accepted_rate(screen);
		free(screen);
		if (rate > 100)
			break;
	}
	ok(rate > 100, "a counter moving at ~1000/s shows a rate (%.0f/s)", rate);
	ok(wait_screen("w", " | ", 0), "a wide terminal holds several blocks of totals");

	/* A small terminal: nothing wider, nothing longer, and it says so. */
	tmux(NULL, "resize-window", "-t", "w", "-x", "60", "-y", "12", NULL);
	end = h_now_ms() + SCREEN_WAIT_MS;
	widest = 999;
	lines = 999;
	while (h_now_ms() < end) {
		screen = capture("w");
		measure(screen, &widest, &lines);
		if (widest <= 60 && strstr(screen, "more lines") != NULL &&
		    strncmp(screen, "master pid", 10) == 0 && strstr(screen, " | ") == NULL) {
			free(screen);
			break;
		}
		free(screen);
		h_nap(50);
	}
	ok(widest <= 60 && lines <= 12, "resized to 60x12: the view fits (%zu wide, %u lines)",
	    widest, lines);
	ok(wait_screen("w", "more lines", 0), "... and says that more lines are hidden");
	tmux(NULL, "resize-window", "-t", "w", "-x", "160", "-y", "50", NULL);
	ok(wait_screen("w", " | ", 0), "resized back: the blocks of totals return");

	/* The master restarts: a new segment over the old one. */
	old = seg;
	make_segment(&seg, 5000);
	ok(wait_screen("w", "master restarted", 0), "a restarted master is said on screen");
	stats_detach(&old);

	/* The segment goes away, and comes back. */
	unlink(h_path("stats"));
	ok(wait_screen("w", "no statistics segment", 0), "a missing segment is said on screen");
	stats_detach(&seg);
	make_segment(&seg, 10000);
	ok(wait_screen("w", "no statistics segment", 1), "and the view resumes when it is back");

	tmux(NULL, "send-keys", "-t", "w", "q", NULL, NULL, NULL, NULL);
	check_exit("w", "q");

	start_watch("c");
	ok(wait_screen("c", want, 0), "a second live view runs");
	tmux(NULL, "send-keys", "-t", "c", "C-c", NULL, NULL, NULL, NULL);
	check_exit("c", "Ctrl-C");

	stats_detach(&seg);
	done_testing();
	return tap_exit();
}
