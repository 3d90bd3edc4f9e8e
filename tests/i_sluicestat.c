/* i_sluicestat.c — runs the real sluicestat (path in $SLUICESTAT) against
 * statistics segments this test builds itself with stats_create, so no
 * daemon is needed: the table, -1, every exit status and error message.
 * Everything lives in a private temporary directory, removed at the end;
 * the only processes started are sluicestat runs, each reaped by pid. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"
#include "tap.h"

#define RUN_TIMEOUT_MS 20000
#define NSLOTS 8

/* Fake worker pids: sluicestat shows them and never probes them. */
#define PID_A 31001
#define PID_B 31004
#define PID_GONE 31006

static char dir[] = "/tmp/i_sluicestat.XXXXXX";
static const char *sluicestat;

static const char *const file_names[] = {
	"stats", "version", "short", "garbage", "sluice.conf",
};
#define NFILES (sizeof(file_names) / sizeof(file_names[0]))

static const char *
path_of(const char *name)
{
	static char buf[8][256];
	static unsigned next;
	char *p = buf[next++ % 8];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct capture {
	char *buf;
	size_t len, cap;
	int fd;
};

/* Append what fd has; 0 at EOF, 1 while open. */
static int
capture_read(struct capture *c)
{
	char tmp[4096];
	ssize_t n;

	n = read(c->fd, tmp, sizeof(tmp));
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return 1;
	if (n <= 0)
		return 0;
	if (c->len + (size_t)n + 1 > c->cap) {
		c->cap = (c->len + (size_t)n + 1) * 2;
		c->buf = realloc(c->buf, c->cap);
		if (c->buf == NULL)
			bail("out of memory");
	}
	memcpy(c->buf + c->len, tmp, (size_t)n);
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	return 1;
}

/*
 * Run argv with stdout and stderr captured apart (*out and *err, malloc'ed,
 * never NULL). Returns the exit status, 128 + signal, or -1 when it did not
 * finish within RUN_TIMEOUT_MS (then it is killed and reaped).
 */
static int
run_cmd(char *const argv[], char **out, char **err)
{
	struct capture cap[2] = { { NULL, 0, 0, -1 }, { NULL, 0, 0, -1 } };
	int po[2], pe[2], status, open_fds = 2, i;
	uint64_t deadline = mono_ms() + RUN_TIMEOUT_MS;
	pid_t pid;

	if (pipe(po) == -1 || pipe(pe) == -1)
		bail("pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid == -1)
		bail("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	cap[0].fd = po[0];
	cap[1].fd = pe[0];

	while (open_fds > 0 && mono_ms() < deadline) {
		struct pollfd pfd[2];
		int n = 0;

		for (i = 0; i < 2; i++) {
			if (cap[i].fd == -1)
				continue;
			pfd[n].fd = cap[i].fd;
			pfd[n].events = POLLIN;
			n++;
		}
		if (poll(pfd, (nfds_t)n, 100) <= 0)
			continue;
		for (i = 0; i < 2; i++) {
			if (cap[i].fd == -1)
				continue;
			if (!capture_read(&cap[i])) {
				close(cap[i].fd);
				cap[i].fd = -1;
				open_fds--;
			}
		}
	}
	/* Both pipes closed means it exited or is about to; still bounded. */
	status = -1;
	while (mono_ms() < deadline) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		status = -1;
		poll(NULL, 0, 5);
	}
	if (status == -1) {
		diag("%s did not finish in %d ms; killing pid %d", argv[0], RUN_TIMEOUT_MS,
		    (int)pid);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	for (i = 0; i < 2; i++) {
		if (cap[i].fd != -1)
			close(cap[i].fd);
		if (cap[i].buf == NULL)
			cap[i].buf = strdup("");
	}
	*out = cap[0].buf;
	*err = cap[1].buf;
	if (status == -1)
		return -1;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static char *out_buf, *err_buf;

/* sluicestat with up to four arguments (NULL ends them early); its output
 * stays in out_buf and err_buf until the next run. */
static int
sluicestat_run(const char *a1, const char *a2, const char *a3, const char *a4)
{
	char *argv[6] = { (char *)sluicestat, (char *)a1, (char *)a2, (char *)a3,
		(char *)a4, NULL };

	free(out_buf);
	free(err_buf);
	return run_cmd(argv, &out_buf, &err_buf);
}

/* s without its line ends, for a TAP description (static buffer). */
static const char *
oneline(const char *s)
{
	static char buf[512];
	size_t i;

	snprintf(buf, sizeof(buf), "%s", s);
	for (i = 0; buf[i] != '\0'; i++)
		if (buf[i] == '\n')
			buf[i] = buf[i + 1] == '\0' ? '\0' : ' ';
	return buf;
}

static uint64_t
field_value(const struct stats_counters *c, unsigned f)
{
	return *(const uint64_t *)((const char *)c + stats_fields[f].offset);
}

/* The line of out that starts with word and a space, copied; NULL if none. */
static char *
line_starting(const char *out, const char *word)
{
	const char *p = out;
	size_t wl = strlen(word);

	while (p != NULL && *p != '\0') {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);

		if (len > wl && strncmp(p, word, wl) == 0 && p[wl] == ' ')
			return strndup(p, len);
		p = eol ? eol + 1 : NULL;
	}
	return NULL;
}

/* Split line on blanks into at most max words; returns how many. */
static int
split(char *line, char **words, int max)
{
	char *save = NULL, *w;
	int n = 0;

	for (w = strtok_r(line, " \t", &save); w != NULL && n < max;
	     w = strtok_r(NULL, " \t", &save))
		words[n++] = w;
	return n;
}

static void
fill_slot(struct stats_slot *s, uint32_t state, int32_t pid, uint64_t base)
{
	s->pid = pid;
	s->generation = 1;
	s->index = 0;
	s->started_ms = stats_now_ms();
	s->heartbeat_ms = s->started_ms;
	STATS_SET(s, accepted, base + 1);
	STATS_SET(s, closed, base);
	STATS_SET(s, bytes_in, base * 100 + 7);
	STATS_SET(s, bytes_out, base * 1000 + 9);
	STATS_SET(s, connect_failures, base / 2);
	STATS_SET(s, timeouts, 1);
	STATS_SET(s, active, 1);
	STATS_SET(s, pool_buffers_total, 16);
	STATS_SET(s, pool_buffers_used, 2);
	STATS_SET(s, pool_bytes_mapped, 65536);
	__atomic_store_n(&s->state, state, __ATOMIC_RELEASE);
}

static void
test_table(struct stats_seg *seg)
{
	struct stats_counters t;
	char *line, *words[64], want[64];
	int n, rc;
	unsigned f, match;

	stats_total(seg, &t);
	rc = sluicestat_run("-s", path_of("stats"), NULL, NULL);
	is(rc, 0, "sluicestat -s P exits 0");
	is_str(err_buf, "", "nothing on stderr for a live master");
	if (rc != 0)
		diag("stdout: %s\nstderr: %s", out_buf, err_buf);

	snprintf(want, sizeof(want), "master pid %d,", (int)getpid());
	ok(strncmp(out_buf, want, strlen(want)) == 0, "first line names the master pid");
	ok(strstr(out_buf, "generation 1,") != NULL, "header shows generation 1");
	ok(strstr(out_buf, "2 workers running") != NULL, "header counts 2 running workers");
	line = line_starting(out_buf, "master");
	ok(line != NULL && strstr(line, path_of("stats")) != NULL,
	    "header names the segment path");
	free(line);

	line = line_starting(out_buf, "slot");
	n = line ? split(line, words, 64) : 0;
	match = n == (int)(4 + stats_nfields) && strcmp(words[0], "slot") == 0 &&
	    strcmp(words[1], "pid") == 0 && strcmp(words[2], "gen") == 0 &&
	    strcmp(words[3], "state") == 0;
	for (f = 0; match && f < stats_nfields; f++)
		if (strcmp(words[4 + f], stats_fields[f].name) == 0)
			match = 1;
		else
			match = 0;
	ok(match, "column names: slot pid gen state, then every stats field in order");
	free(line);

	snprintf(want, sizeof(want), "%d", PID_A);
	line = line_starting(out_buf, "1");
	n = line ? split(line, words, 64) : 0;
	ok(n == (int)(4 + stats_nfields) && strcmp(words[1], want) == 0 &&
	    strcmp(words[3], "running") == 0 && strcmp(words[4], "11") == 0,
	    "slot 1 row: pid %d, running, accepted 11", PID_A);
	free(line);
	snprintf(want, sizeof(want), "%d", PID_B);
	line = line_starting(out_buf, "4");
	n = line ? split(line, words, 64) : 0;
	ok(n == (int)(4 + stats_nfields) && strcmp(words[1], want) == 0 &&
	    strcmp(words[3], "running") == 0 && strcmp(words[4], "21") == 0,
	    "slot 4 row: pid %d, running, accepted 21", PID_B);
	free(line);
	snprintf(want, sizeof(want), " %d ", PID_GONE);
	ok(strstr(out_buf, want) == NULL, "the folded worker has no row");

	line = line_starting(out_buf, "retired");
	n = line ? split(line, words, 64) : 0;
	match = n == (int)(4 + stats_nfields);
	for (f = 0; match && f < stats_nfields; f++) {
		if (stats_fields[f].kind == STATS_COUNTER)
			snprintf(want, sizeof(want), "%llu",
			    (unsigned long long)field_value(&seg->hdr->retired, f));
		else
			snprintf(want, sizeof(want), "-");
		match = strcmp(words[4 + f], want) == 0;
	}
	ok(match, "retired row: the folded counters, no gauges");
	free(line);

	line = line_starting(out_buf, "total");
	n = line ? split(line, words, 64) : 0;
	match = n == (int)(4 + stats_nfields);
	for (f = 0; match && f < stats_nfields; f++) {
		snprintf(want, sizeof(want), "%llu", (unsigned long long)field_value(&t, f));
		match = strcmp(words[4 + f], want) == 0;
		if (!match)
			diag("total %s: got %s, want %s", stats_fields[f].name, words[4 + f], want);
	}
	ok(match, "total row equals stats_total for every field");
	free(line);
	if (!match)
		diag("stdout:\n%s", out_buf);
}

static void
test_one(struct stats_seg *seg)
{
	struct stats_counters t;
	char want[64];
	unsigned f, good = 1;
	int rc;

	rc = sluicestat_run("-s", path_of("stats"), "-1", "accepted");
	is(rc, 0, "-1 accepted exits 0");
	is_str(out_buf, "33\n", "-1 accepted: slots + retired");
	rc = sluicestat_run("-s", path_of("stats"), "-1", "bytes_in");
	is(rc, 0, "-1 bytes_in exits 0");
	is_str(out_buf, "4021\n", "-1 bytes_in: slots + retired");
	rc = sluicestat_run("-1", "active", "-s", path_of("stats"));
	is_str(out_buf, "2\n", "-1 active: a gauge sums live slots only");

	stats_total(seg, &t);
	for (f = 0; f < stats_nfields; f++) {
		rc = sluicestat_run("-s", path_of("stats"), "-1", stats_fields[f].name);
		snprintf(want, sizeof(want), "%llu\n", (unsigned long long)field_value(&t, f));
		if (rc != 0 || strcmp(out_buf, want) != 0 || strcmp(err_buf, "") != 0) {
			diag("-1 %s: status %d, got \"%s\", want \"%s\"", stats_fields[f].name,
			    rc, out_buf, want);
			good = 0;
		}
	}
	ok(good, "-1 NAME prints the stats_total of each of the %u fields", stats_nfields);

	rc = sluicestat_run("-s", path_of("stats"), "-1", "generation");
	is(rc, 0, "-1 generation exits 0");
	is_str(out_buf, "1\n", "-1 generation prints 1");
	seg->hdr->generation = 3;
	sluicestat_run("-s", path_of("stats"), "-1", "generation");
	is_str(out_buf, "3\n", "-1 generation follows the header");

	sluicestat_run("-s", path_of("stats"), "-1", "workers");
	is_str(out_buf, "2\n", "-1 workers counts running slots");
	snprintf(want, sizeof(want), "%d\n", (int)getpid());
	sluicestat_run("-s", path_of("stats"), "-1", "master_pid");
	is_str(out_buf, want, "-1 master_pid");

	/* A worker counting while we read: the next run sees it. */
	STATS_ADD(&seg->slots[1], accepted, 5);
	sluicestat_run("-s", path_of("stats"), "-1", "accepted");
	is_str(out_buf, "38\n", "a live update shows in the next reading");

	/* A draining worker shows in the table but is not a running one. */
	__atomic_store_n(&seg->slots[4].state, STATS_SLOT_DRAINING, __ATOMIC_RELEASE);
	sluicestat_run("-s", path_of("stats"), "-1", "workers");
	is_str(out_buf, "1\n", "-1 workers leaves draining slots out");
	rc = sluicestat_run("-s", path_of("stats"), NULL, NULL);
	ok(rc == 0 && strstr(out_buf, "1 draining") != NULL &&
	    strstr(out_buf, "draining ") != NULL, "table shows the draining worker");
	sluicestat_run("-s", path_of("stats"), "-1", "accepted");
	is_str(out_buf, "38\n", "a draining worker still counts in the totals");
	__atomic_store_n(&seg->slots[4].state, STATS_SLOT_RUNNING, __ATOMIC_RELEASE);

	rc = sluicestat_run("-s", path_of("stats"), "-1", "bogus");
	is(rc, 2, "-1 bogus exits 2");
	is_str(out_buf, "", "-1 bogus prints nothing on stdout");
	ok(strstr(err_buf, "bogus") != NULL && strstr(err_buf, "accepted") != NULL &&
	    strstr(err_buf, "pool_bytes_mapped") != NULL && strstr(err_buf, "workers") != NULL,
	    "-1 bogus lists the valid names");
}

static void
test_stale(struct stats_seg *seg)
{
	pid_t dead;
	int rc, status;

	/* A pid that just exited and was reaped is as dead as we can make one. */
	fflush(stdout);
	dead = fork();
	if (dead == -1)
		bail("fork: %s", strerror(errno));
	if (dead == 0)
		_exit(0);
	if (waitpid(dead, &status, 0) != dead)
		bail("waitpid: %s", strerror(errno));
	seg->hdr->master_pid = dead;

	rc = sluicestat_run("-s", path_of("stats"), "-1", "accepted");
	is(rc, 0, "a stale segment still reads, exit 0");
	is_str(out_buf, "38\n", "stale segment: numbers still printed");
	ok(strstr(err_buf, "warning: master pid") != NULL &&
	    strstr(err_buf, "is not running (stale segment)") != NULL,
	    "stale segment: warning on stderr: %s", oneline(err_buf));
	rc = sluicestat_run("-s", path_of("stats"), NULL, NULL);
	ok(rc == 0 && strstr(out_buf, "total") != NULL && strstr(err_buf, "stale") != NULL,
	    "stale segment: table printed with the warning");
	seg->hdr->master_pid = getpid();
}

/* A master killed in the middle of a fold leaves fold_seq odd for good;
 * sluicestat must still answer, and promptly. */
static void
test_stuck_fold(struct stats_seg *seg)
{
	uint64_t saved = seg->hdr->fold_seq, t0;
	int rc;

	__atomic_store_n(&seg->hdr->fold_seq, saved + 1, __ATOMIC_RELEASE);
	t0 = mono_ms();
	rc = sluicestat_run("-s", path_of("stats"), "-1", "accepted");
	is(rc, 0, "odd fold_seq: -1 still exits 0 (%llu ms)",
	    (unsigned long long)(mono_ms() - t0));
	is_str(out_buf, "38\n", "odd fold_seq: -1 accepted still right");
	rc = sluicestat_run("-s", path_of("stats"), NULL, NULL);
	ok(rc == 0 && strstr(out_buf, "total") != NULL && strstr(out_buf, "31001") != NULL,
	    "odd fold_seq: the table still prints");
	__atomic_store_n(&seg->hdr->fold_seq, saved, __ATOMIC_RELEASE);
}

static void
test_errors(void)
{
	struct stats_seg s;
	char err[256];
	uint32_t v = 7;
	size_t size;
	int rc, fd;

	rc = sluicestat_run("-s", path_of("missing"), NULL, NULL);
	is(rc, 1, "missing segment exits 1");
	ok(strncmp(err_buf, "sluicestat: no statistics segment", 33) == 0 &&
	    strstr(err_buf, path_of("missing")) != NULL,
	    "missing segment: message names it: %s", oneline(err_buf));
	is_str(out_buf, "", "missing segment: nothing on stdout");
	rc = sluicestat_run("-s", path_of("missing"), "-1", "accepted");
	is(rc, 1, "-1 on a missing segment exits 1");
	is_str(out_buf, "", "-1 on a missing segment prints no number");

	if (stats_create(&s, path_of("version"), 2, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);
	stats_detach(&s);
	fd = open(path_of("version"), O_WRONLY);
	if (fd == -1 || pwrite(fd, &v, sizeof(v), offsetof(struct stats_header, version)) !=
	    (ssize_t)sizeof(v))
		bail("patch version: %s", strerror(errno));
	close(fd);
	rc = sluicestat_run("-s", path_of("version"), NULL, NULL);
	is(rc, 1, "other layout version exits 1");
	ok(strstr(err_buf, "layout version 7") != NULL, "other version: %s", oneline(err_buf));

	if (stats_create(&s, path_of("short"), 4, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);
	size = s.size;
	stats_detach(&s);
	if (truncate(path_of("short"), (off_t)size - 100) == -1)
		bail("truncate: %s", strerror(errno));
	rc = sluicestat_run("-s", path_of("short"), NULL, NULL);
	is(rc, 1, "truncated segment exits 1");
	ok(strstr(err_buf, "truncated") != NULL, "truncated: %s", oneline(err_buf));

	fd = open(path_of("garbage"), O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd == -1 || write(fd, "this is not a segment, it is a file of words. ", 46) != 46 ||
	    ftruncate(fd, 4096) == -1)
		bail("garbage: %s", strerror(errno));
	close(fd);
	rc = sluicestat_run("-s", path_of("garbage"), NULL, NULL);
	is(rc, 1, "a file that is not a segment exits 1");
	ok(strstr(err_buf, "not a sluice statistics segment") != NULL, "garbage: %s",
	    oneline(err_buf));
}

static void
test_usage(void)
{
	int rc;

	rc = sluicestat_run("-h", NULL, NULL, NULL);
	is(rc, 0, "-h exits 0");
	ok(strncmp(out_buf, "usage: sluicestat", 17) == 0, "-h prints usage on stdout");
	is_str(err_buf, "", "-h prints nothing on stderr");

	rc = sluicestat_run("-V", NULL, NULL, NULL);
	is(rc, 0, "-V exits 0");
	is_str(out_buf, "sluicestat 0.1.0\n", "-V prints the version");

	rc = sluicestat_run("-x", NULL, NULL, NULL);
	is(rc, 2, "a bad option exits 2");
	ok(strstr(err_buf, "usage: sluicestat") != NULL, "bad option: usage on stderr");
	is_str(out_buf, "", "bad option: nothing on stdout");

	rc = sluicestat_run("-s", NULL, NULL, NULL);
	is(rc, 2, "-s without its argument exits 2");
	rc = sluicestat_run("-s", path_of("stats"), "extra", NULL);
	is(rc, 2, "a stray argument exits 2");
	rc = sluicestat_run("-s", path_of("stats"), "-c", path_of("sluice.conf"));
	is(rc, 2, "-c and -s together exit 2");
}

static void
test_config(void)
{
	FILE *fp;
	int rc;

	fp = fopen(path_of("sluice.conf"), "w");
	if (fp == NULL)
		bail("config: %s", strerror(errno));
	fprintf(fp,
	    "workers = 1;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:9\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\"; } );\n",
	    path_of("sluiced.pid"), path_of("stats"));
	fclose(fp);

	rc = sluicestat_run("-c", path_of("sluice.conf"), "-1", "accepted");
	is(rc, 0, "-c CONFIG exits 0");
	is_str(out_buf, "38\n", "-c CONFIG reads the segment named by stats_file");
	if (rc != 0)
		diag("stderr: %s", err_buf);

	rc = sluicestat_run("-c", path_of("no.conf"), NULL, NULL);
	is(rc, 1, "-c with a missing config exits 1");
	ok(strncmp(err_buf, "sluicestat: ", 12) == 0 && strstr(err_buf, "no.conf") != NULL,
	    "missing config: message names it: %s", oneline(err_buf));
}

int
main(void)
{
	struct stats_seg seg;
	char err[256];
	unsigned i;

	sluicestat = getenv("SLUICESTAT");
	if (sluicestat == NULL || *sluicestat == '\0')
		bail("SLUICESTAT is not set (make check sets it)");
	if (access(sluicestat, X_OK) == -1)
		bail("%s: %s", sluicestat, strerror(errno));
	if (mkdtemp(dir) == NULL)
		bail("mkdtemp: %s", strerror(errno));

	if (stats_create(&seg, path_of("stats"), NSLOTS, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);
	/* Two live workers and one that exited and was folded. */
	fill_slot(&seg.slots[1], STATS_SLOT_RUNNING, PID_A, 10);
	fill_slot(&seg.slots[4], STATS_SLOT_RUNNING, PID_B, 20);
	fill_slot(&seg.slots[6], STATS_SLOT_RUNNING, PID_GONE, 0);
	STATS_ADD(&seg.slots[6], bytes_in, 1000);
	stats_fold(&seg, 6);

	test_table(&seg);
	test_one(&seg);
	test_stale(&seg);
	test_stuck_fold(&seg);
	test_errors();
	test_usage();
	test_config();

	stats_detach(&seg);
	free(out_buf);
	free(err_buf);
	for (i = 0; i < NFILES; i++)
		unlink(path_of(file_names[i]));
	ok(rmdir(dir) == 0, "temporary directory removed");
	done_testing();
	return tap_exit();
}
