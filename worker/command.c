/* SPDX-License-Identifier: BSD-2-Clause */
/* command.c — a worker's end of its socketpair with the master: the
 * master's control socket asks through it for the worker's sessions (to
 * list them) or to shut some. Requests are short lines; each answer is
 * "REQID LENGTH\n" and LENGTH bytes, built in one go into a buffer of its own
 * and written without blocking as the socket drains. Nothing here runs on the
 * relay path: the sessions are walked only when the master asks. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "command.h"
#include "conf.h"
#include "heritage.h"
#include "log.h"
#include "relay.h"
#include "session.h"
#include "stats.h"
#include "worker.h"

#define CMD_LINE_MAX 256        /* a request line, newline included */
#define CMD_REPLY_MAX (64u << 20) /* past this a listing is cut short, and says so */

static struct {
	ev_io rd, wr;
	char in[CMD_LINE_MAX];
	size_t inlen;
	char *out; /* the answer being written */
	size_t outlen, outoff, outcap;
	int fd;
} cmd = { .fd = -1 };

/* --- the answer ------------------------------------------------------------ */

static void __attribute__((format(printf, 1, 2)))
out_printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (cmd.out == NULL)
		return;
	for (;;) {
		size_t room = cmd.outcap - cmd.outlen;
		char *p;

		va_start(ap, fmt);
		n = vsnprintf(cmd.out + cmd.outlen, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			cmd.outlen += (size_t)n;
			return;
		}
		if (cmd.outcap * 2 > CMD_REPLY_MAX || (p = realloc(cmd.out, cmd.outcap * 2)) == NULL) {
			/* Cut at a line: what is there stays whole. */
			cmd.out[cmd.outlen] = '\0';
			cmd.outcap = 0;
			return;
		}
		cmd.out = p;
		cmd.outcap *= 2;
	}
}

static int
out_begin(void)
{
	cmd.outcap = 64 << 10;
	cmd.outlen = cmd.outoff = 0;
	/* Room for the "REQID LENGTH\n" put before it in out_end. */
	if ((cmd.out = malloc(cmd.outcap)) == NULL)
		return -1;
	cmd.outlen = 32;
	return 0;
}

static void requests(struct worker *);

/* Write what the answer has left. Returns 1 once it is all out (or cannot
 * be: the master is gone), 0 while the socket is full (flush_cb goes on). */
static int
flush(struct ev_loop *loop)
{
	while (cmd.outoff < cmd.outlen) {
		ssize_t n = write(cmd.fd, cmd.out + cmd.outoff, cmd.outlen - cmd.outoff);

		if (n > 0) {
			cmd.outoff += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(loop, &cmd.wr);
			return 0;
		}
		/* The master is gone or shut its end: nobody to answer. */
		break;
	}
	ev_io_stop(loop, &cmd.wr);
	free(cmd.out);
	cmd.out = NULL;
	cmd.outlen = cmd.outoff = cmd.outcap = 0;
	return 1;
}

static void
flush_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	if (!flush(loop))
		return;
	/* Requests that came while we wrote: first those already read. */
	ev_io_start(loop, &cmd.rd);
	requests(ev_userdata(loop));
}

/* Put the header before the body and start writing. */
static void
out_end(struct worker *w, const char *reqid)
{
	char head[32];
	int n;
	size_t body = cmd.outlen - 32;

	if (cmd.out == NULL) {
		/* No memory for the answer: an empty one still ends the wait. */
		n = snprintf(head, sizeof(head), "%s 0\n", reqid);
		if (write(cmd.fd, head, (size_t)n) != n)
			log_warn("answering the master");
		return;
	}
	n = snprintf(head, sizeof(head), "%s %zu\n", reqid, body);
	if (n <= 0 || (size_t)n >= sizeof(head))
		n = 0;
	cmd.outoff = 32 - (size_t)n;
	memcpy(cmd.out + cmd.outoff, head, (size_t)n);
	flush(w->loop);
}

/* --- which sessions -------------------------------------------------------- */

/* A filter the master sent: segment rows (so that one names the same server
 * or listener in every generation), STATS_NO_ROW for any; or one session. */
struct which {
	unsigned server_row, listener_row;
	uint32_t id;
};

static int
session_matches(struct worker *w, struct session *s, void *arg)
{
	const struct which *f = arg;
	const struct session_tail *t = session_tail_of(w, s);

	if (f->id != 0)
		return t != NULL && t->id == f->id;
	if (f->server_row != STATS_NO_ROW && worker_server_row(w, s) != f->server_row)
		return 0;
	if (f->listener_row != STATS_NO_ROW && worker_listener_row(w, s) != f->listener_row)
		return 0;
	return 1;
}

static const char *
session_state_name(const struct session *s)
{
	switch (s->where) {
	case ROOM_HEADER:
		return "header";
	case ROOM_PREREAD:
		return "preread";
	case ROOM_CONNECT:
		return "connecting";
	case ROOM_WAITFD:
		return "waiting_fd";
	case ROOM_STARVED:
		return "starved";
	default:
		if (s->flags & F_C2S_EOF)
			return s->flags & F_S2C_EOF ? "closing" : "client_fin";
		return s->flags & F_S2C_EOF ? "server_fin" : "relaying";
	}
}

/* One line per session, tab-separated: id, client, listener row, server
 * row, age and idle time in ms, bytes in and out, state. The master names
 * the rows and adds the worker. */
static void
list_one(struct worker *w, struct session *s)
{
	const struct session_tail *t = session_tail_of(w, s);
	struct sockaddr_storage ss;
	char client[ADDR_STRLEN];
	unsigned lrow = worker_listener_row(w, s);
	uint32_t now32 = (uint32_t)(uint64_t)(w->now * 1000.0);

	if (t == NULL)
		return;
	session_tail_client(t, &ss);
	if (t->family == 0 || addr_format((struct sockaddr *)&ss, client, sizeof(client)) == NULL)
		snprintf(client, sizeof(client), "-");
	out_printf("%u.%" PRIu32 "\t%s\t%u\t%u\t%" PRIu32 "\t%.0f\t%" PRIu64 "\t%" PRIu64 "\t%s\n",
	    w->h->slot, t->id, client, lrow, worker_server_row(w, s), now32 - t->start_ms,
	    (w->now - s->active) * 1000.0, t->bytes_in, t->bytes_out, session_state_name(s));
}

static void
list_sessions(struct worker *w, const struct which *f)
{
	for (unsigned r = ROOM_NONE + 1; r < ROOM_COUNT; r++)
		for (unsigned k = 0; k < WHEEL_SLOTS; k++)
			for (struct wlink *l = w->rooms[r].slot[k]; l != NULL; l = l->next) {
				struct session *s = SESSION_OF(l);

				if (session_matches(w, s, (void *)f))
					list_one(w, s);
				if (cmd.outcap == 0)
					return;
			}
}

/* --- requests -------------------------------------------------------------- */

/* "REQID VERB [ARGS]": L [SERVER_ROW [LISTENER_ROW]] lists sessions; K ID
 * shuts one (ID as listed, "SLOT.N"); KS SERVER_ROW shuts a server's. The
 * answer to L is the listing, to K and KS the number shut. */
static void
request(struct worker *w, char *line)
{
	char reqid[16], verb[4];
	unsigned a = STATS_NO_ROW, b = STATS_NO_ROW, slot;
	struct which f = { STATS_NO_ROW, STATS_NO_ROW, 0 };
	int n, got;

	got = sscanf(line, "%15s %3s", reqid, verb);
	if (got != 2) {
		log_warnx("the master sent a request we cannot read");
		return;
	}
	if (out_begin() == -1)
		log_warn("answering the master");
	if (strcmp(verb, "L") == 0) {
		sscanf(line, "%*s %*s %u %u", &a, &b);
		f.server_row = a;
		f.listener_row = b;
		list_sessions(w, &f);
		if (cmd.outcap == 0 && cmd.out != NULL)
			log_warnx("session list cut short at %u bytes", CMD_REPLY_MAX);
	} else if (strcmp(verb, "K") == 0) {
		if (sscanf(line, "%*s %*s %u.%" SCNu32, &slot, &f.id) == 2 && slot == w->h->slot &&
		    f.id != 0)
			n = relay_shut_where(w, session_matches, &f);
		else
			n = 0;
		out_printf("%d\n", n);
	} else if (strcmp(verb, "KS") == 0) {
		if (sscanf(line, "%*s %*s %u", &a) == 1 && a != STATS_NO_ROW) {
			f.server_row = a;
			n = relay_shut_where(w, session_matches, &f);
		} else {
			n = 0;
		}
		out_printf("%d\n", n);
		if (n > 0)
			log_notice("shut %d sessions on the operator's request", n);
	}
	out_end(w, reqid);
}

/* Answer the whole lines read so far, one at a time: once an answer has to
 * wait for the socket, the rest wait for it (flush_cb comes back here). */
static void
requests(struct worker *w)
{
	char *nl;

	while (cmd.out == NULL && cmd.fd != -1 && (nl = memchr(cmd.in, '\n', cmd.inlen)) != NULL) {
		size_t len = (size_t)(nl - cmd.in) + 1;

		*nl = '\0';
		request(w, cmd.in);
		memmove(cmd.in, cmd.in + len, cmd.inlen - len);
		cmd.inlen -= len;
	}
}

static void
read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = ev_userdata(loop);
	ssize_t n;

	/* While an answer is being written, the next request waits. */
	if (cmd.out != NULL) {
		ev_io_stop(loop, &cmd.rd);
		return;
	}
	n = read(cmd.fd, cmd.in + cmd.inlen, sizeof(cmd.in) - cmd.inlen);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		/* The master closed its end (it died, or let us go). */
		ev_io_stop(loop, &cmd.rd);
		ev_io_stop(loop, &cmd.wr);
		close(cmd.fd);
		cmd.fd = -1;
		return;
	}
	if (n < 0)
		return;
	cmd.inlen += (size_t)n;
	requests(w);
	if (cmd.out == NULL && cmd.inlen == sizeof(cmd.in)) {
		log_warnx("the master sent an overlong request; dropping it");
		cmd.inlen = 0;
	}
}

void
command_init(struct worker *w, int fd)
{
	if (fd < 0)
		return;
	cmd.fd = fd;
	ev_io_init(&cmd.rd, read_cb, fd, EV_READ);
	ev_io_init(&cmd.wr, flush_cb, fd, EV_WRITE);
	ev_io_start(w->loop, &cmd.rd);
}
