/* SPDX-License-Identifier: BSD-2-Clause */
/* admin.c — the admin process: answers HTTP/1.0 and 1.1 GET and HEAD for
 * /metrics (Prometheus text, common/prom.c) and /healthz (admin/healthz.c)
 * on the socket the master opened for admin.listen, one request per
 * connection. Runs as the workers' user with the whole stats segment
 * read-only; it never writes the segment, never blocks (non-blocking
 * sockets, bounded buffers, a deadline per connection, at most
 * ADMIN_MAX_CONNS at once) and never touches client traffic. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "admin.h"
#include "conf.h"
#include "healthz.h"
#include "heritage.h"
#include "log.h"
#include "prom.h"
#include "proctitle.h"
#include "stats.h"

enum conn_phase { CONN_FREE, CONN_READING, CONN_WRITING, CONN_LINGERING };

/* One client connection: its request head, then its response. */
struct conn {
	enum conn_phase phase;
	ev_io io;
	ev_timer deadline;
	char head[ADMIN_HEAD_MAX];
	size_t got;
	char *out; /* the whole response (malloc'd) */
	size_t outlen, sent;
};

static struct conn conns[ADMIN_MAX_CONNS];
static struct stats_seg *seg;
static pid_t master_pid;
static ev_io accept_w;
static ev_timer tick_w;

static void
conn_close(struct ev_loop *loop, struct conn *c)
{
	ev_io_stop(loop, &c->io);
	ev_timer_stop(loop, &c->deadline);
	close(c->io.fd);
	ev_io_set(&c->io, -1, 0);
	free(c->out);
	c->out = NULL;
	c->phase = CONN_FREE;
}

/* Status line, headers and (unless head_only) body, ready to send. */
static char *
response(int status, const char *reason, const char *type, const char *extra, const char *body,
    size_t bodylen, int head_only, size_t *len)
{
	char *out = NULL;
	FILE *fp = open_memstream(&out, len);

	if (fp == NULL)
		return NULL;
	fprintf(fp,
	    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sCache-Control: "
	    "no-store\r\nConnection: close\r\n\r\n",
	    status, reason, type, bodylen, extra != NULL ? extra : "");
	if (!head_only)
		fwrite(body, 1, bodylen, fp);
	if (fclose(fp) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* A short text answer: the line and a newline as the body. */
static char *
text_response(
    int status, const char *reason, const char *extra, const char *line, int head_only, size_t *len)
{
	char body[512];
	int n = snprintf(body, sizeof(body), "%s\n", line);

	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)sizeof(body) - 1;
	return response(
	    status, reason, "text/plain; charset=utf-8", extra, body, (size_t)n, head_only, len);
}

static char *
metrics_response(int head_only, size_t *len)
{
	struct stats_snapshot *sn = stats_snapshot_create(seg);
	char *body = NULL, *out;
	size_t bodylen = 0;
	FILE *fp;

	if (sn == NULL)
		return text_response(
		    500, "Internal Server Error", NULL, "out of memory", head_only, len);
	fp = open_memstream(&body, &bodylen);
	if (fp == NULL) {
		stats_snapshot_destroy(sn);
		return NULL;
	}
	prom_render(sn, getppid() == master_pid, fp);
	stats_snapshot_destroy(sn);
	if (fclose(fp) != 0) {
		free(body);
		return NULL;
	}
	out = response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", NULL, body, bodylen,
	    head_only, len);
	free(body);
	return out;
}

static char *
healthz_response(int head_only, size_t *len)
{
	struct stats_snapshot *sn = stats_snapshot_create(seg);
	char why[400];
	int ok;

	if (sn == NULL)
		return text_response(
		    500, "Internal Server Error", NULL, "out of memory", head_only, len);
	ok = healthz_judge(sn, why, sizeof(why));
	stats_snapshot_destroy(sn);
	if (ok && getppid() != master_pid) {
		snprintf(why, sizeof(why), "master not running");
		ok = 0;
	}
	return ok ? text_response(200, "OK", NULL, why, head_only, len)
	          : text_response(503, "Service Unavailable", NULL, why, head_only, len);
}

/* The response to a complete head (NUL-terminated, its end found). */
static char *
answer(char *head, size_t *len)
{
	char *method, *target, *version, *end, *sp;
	int head_only;

	end = strpbrk(head, "\r\n");
	if (end == NULL)
		return text_response(400, "Bad Request", NULL, "bad request line", 0, len);
	*end = '\0';
	method = head;
	if ((sp = strchr(method, ' ')) == NULL)
		return text_response(400, "Bad Request", NULL, "bad request line", 0, len);
	*sp = '\0';
	target = sp + 1;
	if ((sp = strchr(target, ' ')) == NULL)
		return text_response(400, "Bad Request", NULL, "bad request line", 0, len);
	*sp = '\0';
	version = sp + 1;
	if (*method == '\0' || *target != '/' ||
	    (strcmp(version, "HTTP/1.0") != 0 && strcmp(version, "HTTP/1.1") != 0))
		return text_response(400, "Bad Request", NULL, "bad request line", 0, len);
	for (const char *p = method; *p != '\0'; p++)
		if (*p < 'A' || *p > 'Z')
			return text_response(400, "Bad Request", NULL, "bad method", 0, len);
	head_only = strcmp(method, "HEAD") == 0;
	if (!head_only && strcmp(method, "GET") != 0)
		return text_response(
		    405, "Method Not Allowed", "Allow: GET, HEAD\r\n", "only GET and HEAD", 0, len);
	/* A query string changes nothing. */
	target[strcspn(target, "?")] = '\0';
	if (strcmp(target, "/metrics") == 0)
		return metrics_response(head_only, len);
	if (strcmp(target, "/healthz") == 0)
		return healthz_response(head_only, len);
	return text_response(404, "Not Found", NULL, "try /metrics or /healthz", head_only, len);
}

/* The end of the head: the blank line after the headers (bare LF too). */
static int
head_complete(const char *buf, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (buf[i] == '\n' && buf[i + 1] == '\n')
			return 1;
		if (i + 3 < n && memcmp(buf + i, "\r\n\r\n", 4) == 0)
			return 1;
	}
	return 0;
}

static void
conn_respond(struct ev_loop *loop, struct conn *c, char *out, size_t len)
{
	if (out == NULL) {
		log_warn("admin: building a response");
		conn_close(loop, c);
		return;
	}
	c->out = out;
	c->outlen = len;
	c->sent = 0;
	c->phase = CONN_WRITING;
	ev_io_stop(loop, &c->io);
	ev_io_set(&c->io, c->io.fd, EV_WRITE);
	ev_io_start(loop, &c->io);
}

static void
conn_read(struct ev_loop *loop, struct conn *c)
{
	size_t len = 0;
	char *out;
	ssize_t n;

	n = read(c->io.fd, c->head + c->got, sizeof(c->head) - 1 - c->got);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(loop, c);
		return;
	}
	c->got += (size_t)n;
	if (head_complete(c->head, c->got)) {
		c->head[c->got] = '\0';
		/* A NUL inside the head would hide the rest from the parser. */
		if (memchr(c->head, '\0', c->got) != NULL)
			out = text_response(400, "Bad Request", NULL, "NUL in request", 0, &len);
		else
			out = answer(c->head, &len);
	} else if (c->got == sizeof(c->head) - 1) {
		out = text_response(431, "Request Header Fields Too Large", NULL,
		    "request head over 4 KB", 0, &len);
	} else {
		return;
	}
	conn_respond(loop, c, out, len);
}

static void
conn_write(struct ev_loop *loop, struct conn *c)
{
	ssize_t n = send(c->io.fd, c->out + c->sent, c->outlen - c->sent, MSG_NOSIGNAL);

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == -1) {
		conn_close(loop, c);
		return;
	}
	c->sent += (size_t)n;
	if (c->sent < c->outlen)
		return;
	/* Sent: half-close, and read what the client still sends until it
	 * closes (or the deadline), so that closing with unread bytes does
	 * not reset the connection before it has read the response. */
	shutdown(c->io.fd, SHUT_WR);
	c->phase = CONN_LINGERING;
	ev_io_stop(loop, &c->io);
	ev_io_set(&c->io, c->io.fd, EV_READ);
	ev_io_start(loop, &c->io);
}

static void
conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	char sink[512];
	ssize_t n;

	switch (c->phase) {
	case CONN_READING:
		conn_read(loop, c);
		break;
	case CONN_WRITING:
		conn_write(loop, c);
		break;
	case CONN_LINGERING:
		n = read(w->fd, sink, sizeof(sink));
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
			conn_close(loop, c);
		break;
	default:
		break;
	}
}

static void
conn_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	conn_close(loop, w->data);
}

/* Over the limit: one write of a fixed answer, which a fresh socket's
 * buffer always takes, then close. What the client sent so far is read
 * first: closing with unread bytes would reset the connection, and the
 * reset could destroy the answer before the client reads it. */
static void
refuse_busy(int fd)
{
	static const char busy[] =
	    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
	    "Content-Length: 5\r\nConnection: close\r\n\r\nbusy\n";
	char sink[ADMIN_HEAD_MAX];

	(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(fd, SHUT_WR);
	(void)!recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
	close(fd);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	for (unsigned batch = 0; batch < ADMIN_MAX_CONNS * 2; batch++) {
		struct conn *c = NULL;
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			/* Out of descriptors or memory: the socket stays
			 * readable, so retrying now would spin. tick_cb starts
			 * accepting again. */
			log_warn("admin: accept (paused for %.0fs)", ADMIN_TICK);
			ev_io_stop(loop, w);
			return;
		}
		for (unsigned i = 0; i < ADMIN_MAX_CONNS; i++)
			if (conns[i].phase == CONN_FREE) {
				c = &conns[i];
				break;
			}
		if (c == NULL) {
			refuse_busy(fd);
			continue;
		}
		c->phase = CONN_READING;
		c->got = 0;
		ev_io_set(&c->io, fd, EV_READ);
		ev_io_start(loop, &c->io);
		ev_timer_set(&c->deadline, ADMIN_DEADLINE, 0);
		ev_timer_start(loop, &c->deadline);
	}
}

/* An orphan has nothing true to say: the parent-death signal covers most
 * cases, this the rest (it is cleared by a change of credentials). Also
 * resumes accepting after a pause (accept_cb), and follows a log level set
 * at run time. */
static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	if (getppid() != master_pid)
		ev_break(loop, EVBREAK_ALL);
	child_follow_log_level(seg);
	ev_io_start(loop, &accept_w);
}

void
admin_main(const struct heritage *h)
{
	struct ev_loop *loop = EV_DEFAULT;

	log_set_role("admin");
	proctitle_set("sluiced-admin", "sluiced: admin");
	seg = h->stats;
	master_pid = h->master_pid;
	helper_begin(h);
	for (unsigned i = 0; i < ADMIN_MAX_CONNS; i++) {
		ev_io_init(&conns[i].io, conn_io_cb, -1, 0);
		conns[i].io.data = &conns[i];
		ev_init(&conns[i].deadline, conn_deadline_cb);
		conns[i].deadline.data = &conns[i];
	}
	ev_io_init(&accept_w, accept_cb, h->admin_fd, EV_READ);
	ev_io_start(loop, &accept_w);
	ev_timer_init(&tick_w, tick_cb, ADMIN_TICK, ADMIN_TICK);
	ev_timer_start(loop, &tick_w);
	helper_enter(loop, h);
	log_debug("admin: serving %s, generation %u", h->conf->admin_address, h->generation);

	ev_run(loop, 0);

	for (unsigned i = 0; i < ADMIN_MAX_CONNS; i++)
		if (conns[i].phase != CONN_FREE)
			conn_close(loop, &conns[i]);
	exit(WORKER_EXIT_OK);
}
