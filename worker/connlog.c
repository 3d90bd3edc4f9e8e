/* SPDX-License-Identifier: BSD-2-Clause */
/* connlog.c — the connection log (see connlog.h). Runs in a worker; formats
 * on the stack, never allocates and never blocks: lines go to the process's
 * log sink (common/logsink.h), a syslog datagram each, or through a bounded
 * queue flushed once per loop iteration to a file or stderr; what the log
 * cannot take is dropped and counted (log_dropped). Durations come from the
 * monotonic clock; only the start time shown is the wall clock's. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "connlog.h"
#include "heritage.h"
#include "log.h"
#include "logfmt.h"
#include "logsink.h"
#include "session.h"
#include "stats.h"
#include "upstream.h"
#include "worker.h"

/* What one worker may hold for a log that is slow to take it: about 400
 * lines. A regular file takes it all each iteration; a pipe or FIFO whose
 * reader stalls fills it, and further lines are dropped, not waited for. */
#define CONNLOG_QUEUE 65536
/* One line, header included (common/log.c's LOG_LINE_MAX). */
#define CONNLOG_LINE 2048

static struct {
	int on;                /* log.connections and a level that shows info */
	int pid;
	char role[32];         /* "worker N", as log_set_role has it */
	ev_prepare flush_w;    /* before the loop sleeps: write the queue */
	ev_io out_w;           /* the sink said EAGAIN: wait until writable */
	size_t qoff, qlen;     /* bytes queued: q[qoff .. qoff + qlen) */
	unsigned qlines;       /* lines (whole or started) queued */
	char q[CONNLOG_QUEUE];
} cl;

static void
connlog_dropped(struct worker *w, unsigned n)
{
	STATS_ADD(w->slot, log_dropped, n);
}

/* Remove the first n bytes of the queue (written), and their lines. */
static void
connlog_consume(size_t n)
{
	const char *p = cl.q + cl.qoff, *end = p + n;

	for (; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
		cl.qlines--;
	cl.qoff += n;
	cl.qlen -= n;
	if (cl.qlen == 0)
		cl.qoff = 0;
}

/* Forget the queue, counting its lines as dropped. */
static void
connlog_discard(struct worker *w)
{
	connlog_dropped(w, cl.qlines);
	cl.qoff = cl.qlen = 0;
	cl.qlines = 0;
}

static void
connlog_out_stop(struct worker *w)
{
	if (ev_is_active(&cl.out_w)) {
		ev_ref(w->loop);
		ev_io_stop(w->loop, &cl.out_w);
	}
}

/* Write what the sink takes now, whole lines at a time where a pipe would
 * mix longer writes with other processes' lines. 0 when the queue is
 * empty, 1 when the sink is full (EAGAIN), -1 when it failed: the queue
 * is then dropped and counted, there being nowhere to keep it. */
static int
connlog_flush(struct worker *w)
{
	size_t max = logsink_atomic_max();

	while (cl.qlen > 0) {
		const char *head = cl.q + cl.qoff;
		size_t n = cl.qlen;
		ssize_t r;

		if (n > max) {
			const char *nl = memrchr(head, '\n', max);

			n = nl != NULL ? (size_t)(nl - head) + 1 : max;
		}
		r = logsink_write(head, n);
		if (r > 0) {
			connlog_consume((size_t)r);
			continue;
		}
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		connlog_discard(w);
		return -1;
	}
	return 0;
}

static void
connlog_kick(struct worker *w)
{
	if (ev_is_active(&cl.out_w) || connlog_flush(w) != 1 || logsink_fd() == -1)
		return;
	ev_io_set(&cl.out_w, logsink_fd(), EV_WRITE);
	ev_io_start(w->loop, &cl.out_w);
	/* Waiting to write a log line must not keep a draining worker alive;
	 * connlog_fini counts what is left. */
	ev_unref(w->loop);
}

static void
connlog_prepare_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	if (cl.qlen > 0)
		connlog_kick(ev_userdata(loop));
}

static void
connlog_writable_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = ev_userdata(loop);

	connlog_out_stop(w);
	connlog_kick(w);
}

void
connlog_init(struct worker *w)
{
	const struct conf *c = w->conf;

	cl.on = c->log_connections && c->log_level >= LOG_LEVEL_INFO;
	if (!cl.on)
		return;
	cl.pid = (int)getpid();
	snprintf(cl.role, sizeof(cl.role), "worker %u", w->h->index);
	ev_prepare_init(&cl.flush_w, connlog_prepare_cb);
	ev_prepare_start(w->loop, &cl.flush_w);
	ev_unref(w->loop);
	ev_init(&cl.out_w, connlog_writable_cb);
	if (logsink_fd() == -1)
		log_warnx("connection log: cannot open the log (%s); its lines are dropped until "
		          "it can be reopened (SIGUSR1)", strerror(logsink_error()));
}

void
connlog_reopen(struct worker *w)
{
	if (!cl.on)
		return;
	/* The descriptor changes; the queue goes to the new one. */
	connlog_out_stop(w);
	if (logsink_reopen() == -1)
		log_warn("connection log: reopening the log");
	if (cl.qlen > 0)
		connlog_kick(w);
}

void
connlog_fini(struct worker *w)
{
	if (!cl.on)
		return;
	connlog_out_stop(w);
	if (connlog_flush(w) == 1)
		connlog_discard(w);
}

/* Hand one finished line (text, n bytes, its newline included for a
 * stream) to the sink or the queue; count it as dropped if neither takes
 * it now. */
static void
connlog_emit(struct worker *w, const char *text, size_t n)
{
	if (logsink_is_datagram()) {
		ssize_t r;

		do
			r = logsink_write(text, n);
		while (r == -1 && errno == EINTR);
		if (r != (ssize_t)n)
			connlog_dropped(w, 1);
		return;
	}
	if (n > sizeof(cl.q) - cl.qlen) {
		connlog_dropped(w, 1);
		return;
	}
	/* Written lines leave the queue by moving its start; the rest moves
	 * down only when the tail has no room left. */
	if (n > sizeof(cl.q) - cl.qoff - cl.qlen) {
		memmove(cl.q, cl.q + cl.qoff, cl.qlen);
		cl.qoff = 0;
	}
	memcpy(cl.q + cl.qoff + cl.qlen, text, n);
	cl.qlen += n;
	cl.qlines++;
}

/* The header common/log.c (or glibc's syslog(3), as log.c calls it) puts
 * before a line: "<PRI>Mmm dd hh:mm:ss sluiced[PID]: " for syslog (RFC
 * 3164, local time), else "YYYY-MM-DDThh:mm:ss.mmm [PID] ". Returns its
 * length. */
static size_t
connlog_header(const struct worker *w, const struct timespec *now, char *buf, size_t len)
{
	struct tm tm;
	size_t n;

	localtime_r(&now->tv_sec, &tm);
	if (logsink_is_datagram()) {
		n = (size_t)snprintf(buf, len, "<%d>", w->conf->log_facility | LOG_INFO);
		n += strftime(buf + n, len - n, "%h %e %T", &tm);
		n += (size_t)snprintf(buf + n, len - n, " sluiced[%d]: ", cl.pid);
		return n;
	}
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, len - n, ".%03ld [%d] ", now->tv_nsec / 1000000, cl.pid);
	return n;
}

/* Names of the refusal reasons. */
static const char *const refuse_names[] = {
#define REFUSE_X_NAME(up, name, help) [STATS_REFUSE_##up] = #name,
	STATS_REFUSE_REASONS(REFUSE_X_NAME)
#undef REFUSE_X_NAME
};

/* The name of the sni rule that routed s, for $sni: the hello's own name
 * is not kept (it would cost every session up to 255 bytes), but an exact
 * rule's name is that name. NULL for the default, a rule without a name
 * and listeners without rules. */
static const char *
connlog_sni(const struct worker *w, const struct session *s)
{
	const struct session_tail *t = (const struct session_tail *)(s + 1);
	const struct conf_listener *l;

	if (session_foreign(w, s))
		return NULL;
	l = &w->conf->listeners[s->listener];
	if (t->sni_rule == 0 || t->sni_rule > l->nsni)
		return NULL;
	return l->sni[t->sni_rule - 1].name;
}

/* How a session ended, in the connection log's words: end is one of
 * client_closed, server_closed, timeout, refused, reset, error, shutdown;
 * reason says more. */
void
connlog_session(struct worker *w, struct session *s, enum close_reason why, int err)
{
	struct session_tail *t = session_tail_of(w, s);
	uint32_t now_ms = (uint32_t)(uint64_t)(w->now * 1000.0);
	struct sockaddr_storage client;
	const char *end, *reason;
	int reset = err == ECONNRESET || err == EPIPE;

	switch (why) {
	case CLOSE_DONE:
		end = s->flags & F_S2C_FIRST ? "server_closed" : "client_closed";
		reason = "done";
		break;
	case CLOSE_CLIENT_ERROR:
		end = reset ? "reset" : "error";
		reason = reset ? "client_reset" : "client_error";
		break;
	case CLOSE_SERVER_ERROR:
		end = reset ? "reset" : "error";
		reason = reset ? "server_reset" : "server_error";
		break;
	case CLOSE_CONNECT_FAILED:
		end = "error";
		reason = "connect_failed";
		break;
	case CLOSE_CONNECT_TIMEOUT:
		end = "timeout";
		reason = "connect_timeout";
		break;
	case CLOSE_IDLE_TIMEOUT:
		end = "timeout";
		reason = "idle_timeout";
		break;
	case CLOSE_STARVED:
		end = "timeout";
		reason = "starved";
		break;
	case CLOSE_SHUTDOWN:
		end = "shutdown";
		reason = "shutdown";
		break;
	case CLOSE_FIN_TIMEOUT:
		end = "timeout";
		reason = "fin_timeout";
		break;
	case CLOSE_LIFETIME:
		end = "timeout";
		reason = "lifetime";
		break;
	case CLOSE_PROXY_TIMEOUT:
		end = "timeout";
		reason = "proxy_header_timeout";
		break;
	case CLOSE_PREREAD_TIMEOUT:
		end = "timeout";
		reason = "preread_timeout";
		break;
	default:
		end = "refused";
		reason = refuse_names[why - STATS_CLOSE_COUNT];
		break;
	}
	session_tail_client(t, &client);
	connlog_write(w, s->listener, session_foreign(w, s) ? 0 : session_upstream(w, s),
	    connlog_sni(w, s),
	    (struct sockaddr *)&client, s->tries > 0 ? (int)s->server_idx : -1,
	    now_ms - t->start_ms, t->bytes_in, t->bytes_out, end, reason);
}

/* The address alone of client, for $client_ip. */
static void
connlog_client_ip(const struct sockaddr *client, char *buf, size_t len)
{
	const void *a = client->sa_family == AF_INET
	                    ? (const void *)&((const struct sockaddr_in *)client)->sin_addr
	                    : (const void *)&((const struct sockaddr_in6 *)client)->sin6_addr;

	/* A UNIX client has no address to write. */
	if (client->sa_family == AF_UNIX ||
	    inet_ntop(client->sa_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "-");
}

void
connlog_write(struct worker *w, unsigned li, unsigned ui, const char *sni,
    const struct sockaddr *client, int server,
    uint32_t duration_ms, uint64_t bytes_in, uint64_t bytes_out, const char *end,
    const char *reason)
{
	const struct conf *c = w->conf;
	char ca[ADDR_STRLEN] = "-", ip[ADDR_STRLEN] = "-", start[48], line[CONNLOG_LINE];
	const char *sv, *laddr, *up;
	/* A UNIX client is written "unix:" ($client_ip "-"). */
	int have_client = client != NULL && (client->sa_family == AF_INET ||
	                                        client->sa_family == AF_INET6 ||
	                                        client->sa_family == AF_UNIX);
	struct timespec ts;
	struct tm tm;
	uint64_t now_ms, start_ms;
	time_t sec;
	size_t n, h;

	if (!cl.on)
		return;
	if (li < w->nlisteners) {
		sv = server >= 0 ? upstream_name(w, ui, (unsigned)server) : "-";
		laddr = c->listeners[li].address;
		up = c->upstreams[ui].name;
	} else {
		/* Taken over from an older generation, with a listener or
		 * server this config lacks: named as the segment's directory
		 * has them (server is then the server's row). */
		const struct stats_seg *seg = w->h->stats;

		laddr = seg->listeners[li - w->nlisteners].address;
		sv = server >= 0 ? seg->servers[server].address : "-";
		up = server >= 0 ? seg->servers[server].upstream
		                 : seg->listeners[li - w->nlisteners].upstream;
	}
	if (have_client)
		addr_format(client, ca, sizeof(ca));
	clock_gettime(CLOCK_REALTIME, &ts);
	now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	start_ms = now_ms - duration_ms;
	sec = (time_t)(start_ms / 1000);
	h = connlog_header(w, &ts, line, sizeof(line));
	if (c->log_format == NULL) {
		/* The classic line, byte for byte what log_info made of it. */
		localtime_r(&sec, &tm);
		n = strftime(start, sizeof(start), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(start + n, sizeof(start) - n, ".%03u", (unsigned)(start_ms % 1000));
		n = h + (size_t)snprintf(line + h, sizeof(line) - h,
		    "%s: info: connection client=%s listener=%s server=%s start=%s "
		    "duration=%u.%03u bytes_in=%llu bytes_out=%llu end=%s reason=%s",
		    cl.role, ca, laddr, sv, start, duration_ms / 1000,
		    duration_ms % 1000, (unsigned long long)bytes_in,
		    (unsigned long long)bytes_out, end, reason);
		if (n >= sizeof(line) - 1)
			n = sizeof(line) - 2;
	} else {
		struct logfmt_values v;

		gmtime_r(&sec, &tm);
		n = strftime(start, sizeof(start), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(start + n, sizeof(start) - n, ".%03uZ", (unsigned)(start_ms % 1000));
		if (have_client)
			connlog_client_ip(client, ip, sizeof(ip));
		memset(&v, 0, sizeof(v));
		v.str[LOGFMT_CLIENT] = have_client ? ca : NULL;
		v.str[LOGFMT_CLIENT_IP] = have_client ? ip : NULL;
		v.str[LOGFMT_LISTENER] = laddr;
		v.str[LOGFMT_UPSTREAM] = up;
		v.str[LOGFMT_SERVER] = server >= 0 ? sv : NULL;
		v.str[LOGFMT_START] = start;
		v.num[LOGFMT_DURATION_MS] = duration_ms;
		v.num[LOGFMT_BYTES_IN] = bytes_in;
		v.num[LOGFMT_BYTES_OUT] = bytes_out;
		v.str[LOGFMT_END] = end;
		v.str[LOGFMT_CLOSE_REASON] = reason;
		v.num[LOGFMT_WORKER] = w->h->index;
		v.num[LOGFMT_PID] = (uint64_t)cl.pid;
		v.str[LOGFMT_SNI] = sni;
		/* A format line is the operator's alone on a file or stderr
		 * (a JSON line must parse); syslog needs its header. */
		if (!logsink_is_datagram())
			h = 0;
		n = h + logfmt_render(c->log_format, &v, line + h, sizeof(line) - h - 1);
	}
	if (!logsink_is_datagram())
		line[n++] = '\n';
	connlog_emit(w, line, n);
}
