/* SPDX-License-Identifier: BSD-2-Clause */
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
#include <arpa/inet.h>
#include <netinet/in.h>

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
	STATS_SET(s, closed_by[STATS_CLOSE_IDLE_TIMEOUT], 1);
	STATS_SET(s, refused_by[STATS_REFUSE_NO_MEMORY], base ? 1 : 0);
	STATS_SET(s, rss_bytes, 1 << 20);
	__atomic_store_n(&s->state, state, __ATOMIC_RELEASE);
}

/* Listener row 0 and server row 0 of the slot, as a worker counts them. */
static void
fill_rows(struct stats_seg *seg, unsigned slot, uint64_t base)
{
	struct stats_listener_counters *l = stats_slot_listener(seg, slot, 0);
	struct stats_server_counters *s = stats_slot_server(seg, slot, 0);

	STATS_ROW_SET(l, accepted, base + 1);
	STATS_ROW_SET(l, active, 1);
	STATS_ROW_SET(l, bytes_in, base * 100 + 7);
	STATS_ROW_SET(l, bytes_out, base * 1000 + 9);
	STATS_ROW_SET(s, connects, base + 2);
	STATS_ROW_SET(s, active, 1);
	STATS_ROW_SET(s, bytes_in, base * 100 + 7);
	STATS_ROW_SET(s, timeouts, 1);
}

static struct sockaddr_storage
sa_of(const char *ip, int port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &in->sin_addr);
	return ss;
}

/* The directory a master would have made: two listeners (one of an older
 * generation), three servers (a backup, and one whose upstream name needs
 * escaping), and the health of the first server. */
static void
fill_directory(struct stats_seg *seg)
{
	struct sockaddr_storage l1 = sa_of("127.0.0.1", 8080), l2 = sa_of("127.0.0.9", 8080),
				s1 = sa_of("127.0.0.1", 9000), s2 = sa_of("127.0.0.1", 9001);
	struct stats_health h;

	if (stats_listener_row(seg, (struct sockaddr *)&l1, sizeof(struct sockaddr_in),
	        "127.0.0.1:8080", "app", 1) != 0 ||
	    stats_listener_row(seg, (struct sockaddr *)&l2, sizeof(struct sockaddr_in),
	        "127.0.0.9:8080", "app", 0) != 1 ||
	    stats_server_row(seg, "app", (struct sockaddr *)&s1, sizeof(struct sockaddr_in),
	        "127.0.0.1:9000", 1, 0, 1) != 0 ||
	    stats_server_row(seg, "app", (struct sockaddr *)&s2, sizeof(struct sockaddr_in),
	        "127.0.0.1:9001", 1, 1, 1) != 1 ||
	    stats_server_row(seg, "we\"ird\\name", (struct sockaddr *)&s1,
	        sizeof(struct sockaddr_in), "127.0.0.1:9000", 2, 0, 1) != 2)
		bail("cannot fill the directory");
	memset(&h, 0, sizeof(h));
	h.state = STATS_HEALTH_DOWN;
	h.last_result = STATS_CHECK_REFUSED;
	h.last_errno = ECONNREFUSED;
	h.failures = 3;
	h.last_check_ms = stats_now_ms() - 3000;
	h.last_change_ms = stats_now_ms() - 60000;
	h.checks = 10;
	h.checks_failed = 4;
	stats_health_publish(seg, 0, &h);
}

/* Index of the BRIEF worker field f among the worker table's columns. */
static unsigned
brief_count(void)
{
	unsigned f, n = 0;

	for (f = 0; f < stats_nfields; f++)
		n += stats_fields[f].view == STATS_BRIEF;
	return n;
}

#define W_FIELDS 5 /* slot pid gen state beat */

static void
test_table(struct stats_seg *seg)
{
	struct stats_snapshot *sn = stats_snapshot_create(seg);
	char *line, *words[64], want[64];
	int n, rc;
	unsigned f, c, match, nb = brief_count();

	if (sn == NULL)
		bail("stats_snapshot_create: %s", strerror(errno));
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

	/* Totals: a line per field, its total and its meaning. */
	match = 1;
	for (f = 0; f < stats_nfields; f++) {
		line = line_starting(out_buf, stats_fields[f].name);
		n = line ? split(line, words, 64) : 0;
		snprintf(want, sizeof(want), "%llu",
		    (unsigned long long)field_value(&sn->total, f));
		if (n < 3 || strcmp(words[1], want) != 0 ||
		    strncmp(words[2], stats_fields[f].help, strlen(words[2])) != 0) {
			diag("totals line for %s: %s", stats_fields[f].name, line ? line : "missing");
			match = 0;
		}
		free(line);
	}
	ok(match, "a totals line for each of the %u fields: name, total, meaning", stats_nfields);
	line = line_starting(out_buf, "closed_idle_timeout");
	ok(line != NULL && strstr(line, " 3 ") != NULL, "closed_idle_timeout total is 3");
	free(line);
	line = line_starting(out_buf, "refused_no_memory");
	ok(line != NULL && strstr(line, " 2 ") != NULL, "refused_no_memory total is 2");
	free(line);

	/* Workers: identity columns, then the BRIEF fields in list order. */
	line = line_starting(out_buf, "slot");
	n = line ? split(line, words, 64) : 0;
	match = n == (int)(W_FIELDS + nb) && strcmp(words[0], "slot") == 0 &&
	    strcmp(words[1], "pid") == 0 && strcmp(words[2], "gen") == 0 &&
	    strcmp(words[3], "state") == 0 && strcmp(words[4], "beat") == 0;
	for (f = 0, c = W_FIELDS; match && f < stats_nfields; f++)
		if (stats_fields[f].view == STATS_BRIEF)
			match = strcmp(words[c++], stats_fields[f].name) == 0;
	ok(match, "worker columns: slot pid gen state beat, then every brief field in order");
	free(line);

	snprintf(want, sizeof(want), "%d", PID_A);
	line = line_starting(out_buf, "1");
	n = line ? split(line, words, 64) : 0;
	ok(n == (int)(W_FIELDS + nb) && strcmp(words[1], want) == 0 &&
	    strcmp(words[3], "running") == 0 && strcmp(words[5], "11") == 0 &&
	    strchr(words[4], 's') != NULL, "slot 1 row: pid %d, running, a heartbeat age, "
	    "accepted 11", PID_A);
	free(line);
	snprintf(want, sizeof(want), "%d", PID_B);
	line = line_starting(out_buf, "4");
	n = line ? split(line, words, 64) : 0;
	ok(n == (int)(W_FIELDS + nb) && strcmp(words[1], want) == 0 &&
	    strcmp(words[3], "running") == 0 && strcmp(words[5], "21") == 0,
	    "slot 4 row: pid %d, running, accepted 21", PID_B);
	free(line);
	snprintf(want, sizeof(want), " %d ", PID_GONE);
	ok(strstr(out_buf, want) == NULL, "the folded worker has no row");

	line = line_starting(out_buf, "retired");
	n = line ? split(line, words, 64) : 0;
	match = n == (int)(W_FIELDS + nb);
	for (f = 0, c = W_FIELDS; match && f < stats_nfields; f++) {
		if (stats_fields[f].view != STATS_BRIEF)
			continue;
		if (stats_fields[f].kind == STATS_COUNTER)
			snprintf(want, sizeof(want), "%llu",
			    (unsigned long long)field_value(&seg->hdr->retired, f));
		else
			snprintf(want, sizeof(want), "-");
		match = strcmp(words[c++], want) == 0;
	}
	ok(match, "retired row: the folded counters, no gauges");
	free(line);

	line = line_starting(out_buf, "total");
	n = line ? split(line, words, 64) : 0;
	match = n == (int)(W_FIELDS + nb);
	for (f = 0, c = W_FIELDS; match && f < stats_nfields; f++) {
		if (stats_fields[f].view != STATS_BRIEF)
			continue;
		snprintf(want, sizeof(want), "%llu", (unsigned long long)field_value(&sn->total, f));
		match = strcmp(words[c++], want) == 0;
		if (!match)
			diag("total %s: got %s, want %s", stats_fields[f].name, words[c - 1], want);
	}
	ok(match, "total row equals the snapshot's total for every brief field");
	free(line);

	/* Listeners: address, upstream, status, then every listener field. */
	line = line_starting(out_buf, "listener");
	n = line ? split(line, words, 64) : 0;
	match = n == (int)(3 + stats_listener_nfields) && strcmp(words[1], "upstream") == 0 &&
	    strcmp(words[2], "status") == 0;
	for (f = 0; match && f < stats_listener_nfields; f++)
		match = strcmp(words[3 + f], stats_listener_fields[f].name) == 0;
	ok(match, "listener columns: listener upstream status, then every listener field");
	free(line);
	line = line_starting(out_buf, "127.0.0.1:8080");
	n = line ? split(line, words, 64) : 0;
	match = n == (int)(3 + stats_listener_nfields) && strcmp(words[1], "app") == 0 &&
	    strcmp(words[2], "current") == 0;
	for (f = 0; match && f < stats_listener_nfields; f++) {
		snprintf(want, sizeof(want), "%llu", (unsigned long long)stats_field_get(
		    &sn->listeners[0].c, &stats_listener_fields[f]));
		match = strcmp(words[3 + f], want) == 0;
	}
	ok(match && sn->listeners[0].c.accepted == 33 && sn->listeners[0].c.active == 2,
	    "listener row: app, current, accepted 33 (live + retired), active 2, ...");
	free(line);
	line = line_starting(out_buf, "127.0.0.9:8080");
	n = line ? split(line, words, 64) : 0;
	ok(n >= 3 && strcmp(words[2], "removed") == 0,
	    "a listener of an older generation shows as removed");
	free(line);

	/* Servers: the health of the checked one, the counters at the end. */
	line = line_starting(out_buf, "upstream");
	n = line ? split(line, words, 64) : 0;
	match = n == (int)(9 + STATS_SERVER_PLAIN_FIELDS) && strcmp(words[1], "server") == 0 &&
	    strcmp(words[4], "health") == 0;
	for (f = 0; match && f < STATS_SERVER_PLAIN_FIELDS; f++)
		match = strcmp(words[9 + f], stats_server_fields[f].name) == 0;
	ok(match, "server columns: upstream server weight status health streak last_check "
	    "checks/failed changed, then every server field but the connect histogram");
	free(line);
	ok(strstr(out_buf, "127.0.0.1:9000") != NULL && strstr(out_buf, " down ") != NULL &&
	    strstr(out_buf, "3 failed") != NULL && strstr(out_buf, "refused (") != NULL &&
	    strstr(out_buf, "10/4") != NULL && strstr(out_buf, " unknown ") != NULL,
	    "server rows show health: down, 3 failed, last check refused, 10/4 checks; "
	    "the unchecked one unknown");
	{
		const char *p = strstr(out_buf, "127.0.0.1:9000");
		char *l2 = p ? strndup(p, strcspn(p, "\n")) : NULL;

		n = l2 ? split(l2, words, 64) : 0;
		match = n > (int)STATS_SERVER_PLAIN_FIELDS;
		for (f = 0; match && f < STATS_SERVER_PLAIN_FIELDS; f++) {
			snprintf(want, sizeof(want), "%llu", (unsigned long long)stats_field_get(
			    &sn->servers[0].c, &stats_server_fields[f]));
			match = strcmp(words[n - (int)STATS_SERVER_PLAIN_FIELDS + (int)f], want) == 0;
		}
		ok(match && sn->servers[0].c.connects == 36,
		    "server row ends with its counters (connects 36, live + retired)");
		free(l2);
	}
	if (!ok(strstr(out_buf, "1 backup") != NULL, "a backup server says so"))
		diag("stdout:\n%s", out_buf);
	stats_snapshot_destroy(sn);
}

/* --- a JSON syntax check, enough to know the output parses ---------------- */

static const char *json_value(const char *p, int depth);

static const char *
json_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *
json_str(const char *p)
{
	if (*p++ != '"')
		return NULL;
	for (; *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", p[i]) || p[i] == '\0')
						return NULL;
				p += 4;
			} else if (!strchr("\"\\/bfnrt", *p) || *p == '\0') {
				return NULL;
			}
		}
	}
	return p + 1;
}

static const char *
json_num(const char *p)
{
	const char *s = p;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p > s ? p : NULL;
}

static const char *
json_value(const char *p, int depth)
{
	if (depth > 32)
		return NULL;
	p = json_ws(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		int object = *p == '{';

		p = json_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (object) {
				p = json_str(json_ws(p));
				if (p == NULL)
					return NULL;
				p = json_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			p = json_value(p, depth + 1);
			if (p == NULL)
				return NULL;
			p = json_ws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (*p == '"')
		return json_str(p);
	if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
		return p + 4;
	if (strncmp(p, "false", 5) == 0)
		return p + 5;
	return json_num(p);
}

/* The number after "key": at or after from, or UINT64_MAX. */
static uint64_t
json_u64_after(const char *from, const char *key)
{
	char pat[128];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = from ? strstr(from, pat) : NULL;
	return p ? strtoull(p + strlen(pat), NULL, 10) : UINT64_MAX;
}

static void
test_json(struct stats_seg *seg)
{
	struct stats_snapshot *sn = stats_snapshot_create(seg);
	const char *end, *totals;
	unsigned f, good = 1;
	int rc;

	if (sn == NULL)
		bail("stats_snapshot_create: %s", strerror(errno));
	rc = sluicestat_run("-s", path_of("stats"), "--json", NULL);
	is(rc, 0, "--json exits 0");
	end = json_value(out_buf, 0);
	ok(end != NULL && *json_ws(end) == '\0', "--json prints one valid JSON value");
	ok(strncmp(out_buf, "{\n  \"schema\": 1,\n", 15) == 0, "the JSON opens with its schema number");
	if (end == NULL)
		diag("stdout:\n%s", out_buf);
	ok(out_buf[0] == '{', "... an object");
	totals = strstr(out_buf, "\"totals\": {");
	for (f = 0; f < stats_nfields; f++)
		if (json_u64_after(totals, stats_fields[f].name) != field_value(&sn->total, f))
			good = 0;
	ok(totals != NULL && good, "totals hold every field's total");
	ok(strstr(out_buf, "\"master\": {\"pid\": ") != NULL &&
	    strstr(out_buf, "\"running\": true") != NULL, "the master and that it runs");
	is(json_u64_after(out_buf, "generation"), 1, "generation 1");
	ok(strstr(out_buf, "\"address\": \"127.0.0.1:8080\"") != NULL &&
	    strstr(out_buf, "\"current\": false") != NULL, "listeners, current or not");
	ok(strstr(out_buf, "\"state\": \"down\"") != NULL &&
	    strstr(out_buf, "\"last_result\": \"refused\"") != NULL &&
	    json_u64_after(strstr(out_buf, "\"health\": "), "checks") == 10,
	    "servers with their health");
	ok(strstr(out_buf, "\"slot\": 1, \"pid\": 31001") != NULL, "workers by slot and pid");
	ok(strstr(out_buf, "\"upstream\": \"we\\\"ird\\\\name\"") != NULL,
	    "strings are escaped");
	stats_snapshot_destroy(sn);
}

/* --- Prometheus text format ----------------------------------------------- */

static int
prom_name_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
		    ch == ':' || (i > 0 && ch >= '0' && ch <= '9')))
			return 0;
	}
	return n > 0;
}

/* Checks the whole exposition; returns the number of problems (diag says
 * each). */
static int
prom_check(const char *text)
{
	char families[256][128], types[256][32];
	unsigned nfam = 0, i;
	int bad = 0;
	const char *p = text;

	while (*p != '\0') {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char line[1024];

		if (eol == NULL) {
			diag("prometheus: last line without a newline");
			return bad + 1;
		}
		snprintf(line, sizeof(line), "%.*s", (int)len, p);
		p = eol + 1;
		if (strncmp(line, "# HELP ", 7) == 0) {
			size_t n = strcspn(line + 7, " ");

			if (!prom_name_ok(line + 7, n) || nfam == 256) {
				diag("prometheus: bad HELP: %s", line);
				bad++;
				continue;
			}
			for (i = 0; i < nfam; i++)
				if (strlen(families[i]) == n && strncmp(families[i], line + 7, n) == 0) {
					diag("prometheus: family twice: %s", line);
					bad++;
				}
			snprintf(families[nfam], sizeof(families[0]), "%.*s", (int)n, line + 7);
			types[nfam][0] = '\0';
			nfam++;
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			char name[128], type[32];

			if (nfam == 0 || sscanf(line + 7, "%127s %31s", name, type) != 2 ||
			    strcmp(name, families[nfam - 1]) != 0 ||
			    (strcmp(type, "counter") != 0 && strcmp(type, "gauge") != 0 &&
			        strcmp(type, "histogram") != 0)) {
				diag("prometheus: TYPE not right after its HELP: %s", line);
				bad++;
				continue;
			}
			snprintf(types[nfam - 1], sizeof(types[0]), "%s", type);
			if (strcmp(type, "counter") == 0 &&
			    (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total") != 0)) {
				diag("prometheus: counter without _total: %s", name);
				bad++;
			}
			if (strcmp(type, "gauge") == 0 && strlen(name) >= 6 &&
			    strcmp(name + strlen(name) - 6, "_total") == 0) {
				diag("prometheus: gauge named like a counter: %s", name);
				bad++;
			}
		} else if (line[0] == '#' || line[0] == '\0') {
			diag("prometheus: stray line: \"%s\"", line);
			bad++;
		} else {
			size_t n = strcspn(line, "{ ");
			const char *v = line + n;
			char *endp;
			size_t fn = nfam ? strlen(families[nfam - 1]) : 0;
			/* A histogram's samples are its _bucket, _sum and _count. */
			int hist = nfam && strcmp(types[nfam - 1], "histogram") == 0 && n > fn &&
			    strncmp(line, families[nfam - 1], fn) == 0 &&
			    ((n - fn == 7 && strncmp(line + fn, "_bucket", 7) == 0) ||
			        (n - fn == 4 && strncmp(line + fn, "_sum", 4) == 0) ||
			        (n - fn == 6 && strncmp(line + fn, "_count", 6) == 0));

			if (nfam == 0 || types[nfam - 1][0] == '\0' ||
			    (!hist && (fn != n || strncmp(line, families[nfam - 1], n) != 0))) {
				diag("prometheus: sample outside its family: %s", line);
				bad++;
				continue;
			}
			if (*v == '{') {
				/* label="value" pairs, values with \\ \" \n escapes */
				v++;
				while (*v != '}') {
					size_t k = strcspn(v, "=");

					if (!prom_name_ok(v, k) || v[k] != '=' || v[k + 1] != '"')
						break;
					v += k + 2;
					while (*v != '"' && *v != '\0')
						v += *v == '\\' ? 2 : 1;
					if (*v != '"')
						break;
					v++;
					if (*v == ',')
						v++;
				}
				if (*v != '}') {
					diag("prometheus: bad labels: %s", line);
					bad++;
					continue;
				}
				v++;
			}
			if (*v != ' ') {
				diag("prometheus: no value: %s", line);
				bad++;
				continue;
			}
			strtod(v + 1, &endp);
			if (endp == v + 1 || *endp != '\0') {
				diag("prometheus: bad value: %s", line);
				bad++;
			}
		}
	}
	for (i = 0; i < nfam; i++)
		if (types[i][0] == '\0') {
			diag("prometheus: no TYPE for %s", families[i]);
			bad++;
		}
	return bad;
}

static void
test_prometheus(void)
{
	int rc;

	rc = sluicestat_run("-s", path_of("stats"), "--prometheus", NULL);
	is(rc, 0, "--prometheus exits 0");
	is(prom_check(out_buf), 0, "--prometheus is valid text exposition format");
	ok(strstr(out_buf, "\nsluice_accepted_total 33\n") != NULL, "accepted as a counter");
	ok(strstr(out_buf, "# TYPE sluice_active gauge\nsluice_active 2\n") != NULL,
	    "active as a gauge");
	ok(strstr(out_buf, "# TYPE sluice_pool_buffers gauge\n") != NULL,
	    "a gauge named *_total (pool_buffers_total) drops the suffix");
	ok(strstr(out_buf, "sluice_closed_total{reason=\"idle_timeout\"} 3\n") != NULL &&
	    strstr(out_buf, "sluice_refused_total{reason=\"no_memory\"} 2\n") != NULL,
	    "close and refusal reasons are labels of one counter each");
	ok(strstr(out_buf, "sluice_listener_accepted_total{listener=\"127.0.0.1:8080\","
	                   "upstream=\"app\"} 33\n") != NULL, "listener rows carry labels");
	ok(strstr(out_buf, "sluice_server_state{upstream=\"app\",server=\"127.0.0.1:9000\","
	                   "state=\"down\"} 1\n") != NULL &&
	    strstr(out_buf, "sluice_server_state{upstream=\"app\",server=\"127.0.0.1:9000\","
	                    "state=\"up\"} 0\n") != NULL, "server health as a state set");
	ok(strstr(out_buf, "sluice_server_checks_total{upstream=\"app\",server=\"127.0.0.1:9000\"}"
	                   " 10\n") != NULL, "server health checks as a counter");
	ok(strstr(out_buf, "upstream=\"we\\\"ird\\\\name\"") != NULL, "label values are escaped");
	ok(strstr(out_buf, "\nsluice_up 1\n") != NULL &&
	    strstr(out_buf, "sluice_workers{state=\"running\"} 2\n") != NULL,
	    "sluice_up and the workers by state");
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
	char err[256], want[64];
	uint32_t v = STATS_VERSION + 1;
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
	snprintf(want, sizeof(want), "layout version %u", (unsigned)STATS_VERSION + 1);
	ok(strstr(err_buf, want) != NULL, "other version: %s", oneline(err_buf));

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

	sluicestat_run("-h", NULL, NULL, NULL);
	ok(strstr(out_buf, "Exit status: 0") != NULL && strstr(out_buf, "; 1 ") != NULL &&
	    strstr(out_buf, "; 2 usage error") != NULL, "-h documents the exit statuses");
	ok(strstr(out_buf, "-w SECONDS") != NULL && strstr(out_buf, "--json") != NULL &&
	    strstr(out_buf, "--prometheus") != NULL && strstr(out_buf, "-1 NAME") != NULL,
	    "-h lists every output mode");

	rc = sluicestat_run("-s", path_of("stats"), "-w", "1");
	is(rc, 2, "-w without a terminal exits 2");
	ok(strstr(err_buf, "terminal") != NULL || strstr(err_buf, "ncurses") != NULL,
	    "-w without a terminal says why: %s", oneline(err_buf));
	is_str(out_buf, "", "-w without a terminal prints nothing on stdout");
	rc = sluicestat_run("-s", path_of("stats"), "-w", "0");
	is(rc, 2, "-w 0 exits 2");
	rc = sluicestat_run("-s", path_of("stats"), "-w", "soon");
	is(rc, 2, "-w soon exits 2");
	ok(strstr(err_buf, "\"soon\"") != NULL, "-w soon: the message quotes it");
	rc = sluicestat_run("-s", path_of("stats"), "--json", "--prometheus");
	is(rc, 2, "--json and --prometheus together exit 2");
	rc = sluicestat_run("--json", "-1", "accepted", NULL);
	is(rc, 2, "--json and -1 together exit 2");
	rc = sluicestat_run("--bogus", NULL, NULL, NULL);
	is(rc, 2, "an unknown long option exits 2");
	ok(strstr(err_buf, "--bogus") != NULL, "... and names it: %s", oneline(err_buf));
	rc = sluicestat_run("-s", path_of("missing"), "--json", NULL);
	ok(rc == 1 && out_buf[0] == '\0', "--json on a missing segment exits 1, prints nothing");
	rc = sluicestat_run("-s", path_of("missing"), "--prometheus", NULL);
	ok(rc == 1 && out_buf[0] == '\0', "--prometheus on a missing segment exits 1");
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
	fill_directory(&seg);
	fill_slot(&seg.slots[1], STATS_SLOT_RUNNING, PID_A, 10);
	fill_slot(&seg.slots[4], STATS_SLOT_RUNNING, PID_B, 20);
	fill_slot(&seg.slots[6], STATS_SLOT_RUNNING, PID_GONE, 0);
	fill_rows(&seg, 1, 10);
	fill_rows(&seg, 4, 20);
	fill_rows(&seg, 6, 0);
	STATS_ADD(&seg.slots[6], bytes_in, 1000);
	stats_fold(&seg, 6);

	test_table(&seg);
	test_json(&seg);
	test_prometheus();
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
