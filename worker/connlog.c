/* SPDX-License-Identifier: BSD-2-Clause */
/* connlog.c — the connection log (see connlog.h). Runs in a worker; formats
 * on the stack and never allocates. Durations come from the monotonic
 * clock; only the start time shown is the wall clock's. */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "addr.h"
#include "conf.h"
#include "connlog.h"
#include "log.h"
#include "session.h"
#include "stats.h"
#include "upstream.h"
#include "worker.h"

/* Names of the refusal reasons. */
static const char *const refuse_names[] = {
#define REFUSE_X_NAME(up, name, help) [STATS_REFUSE_##up] = #name,
	STATS_REFUSE_REASONS(REFUSE_X_NAME)
#undef REFUSE_X_NAME
};

/* How a session ended, in the connection log's words: end is one of
 * client_closed, server_closed, timeout, refused, reset, error, shutdown;
 * reason says more. */
void
connlog_session(const struct worker *w, struct session *s, enum close_reason why, int err)
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
	case CLOSE_SHUTDOWN:
		end = "shutdown";
		reason = "shutdown";
		break;
	case CLOSE_PROXY_TIMEOUT:
		end = "timeout";
		reason = "proxy_header_timeout";
		break;
	default:
		end = "refused";
		reason = refuse_names[why - STATS_CLOSE_COUNT];
		break;
	}
	session_tail_client(t, &client);
	connlog_write(w, s->listener, (struct sockaddr *)&client,
	    s->tries > 0 ? (int)s->server_idx : -1, now_ms - t->start_ms, t->bytes_in,
	    t->bytes_out, end, reason);
}

void
connlog_write(const struct worker *w, unsigned li, const struct sockaddr *client, int server,
    uint32_t duration_ms, uint64_t bytes_in, uint64_t bytes_out, const char *end,
    const char *reason)
{
	char ca[ADDR_STRLEN] = "-", start[48];
	struct timespec ts;
	struct tm tm;
	uint64_t now_ms, start_ms;
	time_t sec;
	size_t n;

	if (client != NULL && (client->sa_family == AF_INET || client->sa_family == AF_INET6))
		addr_format(client, ca, sizeof(ca));
	clock_gettime(CLOCK_REALTIME, &ts);
	now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	start_ms = now_ms - duration_ms;
	sec = (time_t)(start_ms / 1000);
	localtime_r(&sec, &tm);
	n = strftime(start, sizeof(start), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(start + n, sizeof(start) - n, ".%03u", (unsigned)(start_ms % 1000));
	log_info("connection client=%s listener=%s server=%s start=%s duration=%u.%03u "
		 "bytes_in=%llu bytes_out=%llu end=%s reason=%s",
	    ca, w->conf->listeners[li].address, server >= 0 ? upstream_name(w, li, (unsigned)server) : "-",
	    start, duration_ms / 1000, duration_ms % 1000, (unsigned long long)bytes_in,
	    (unsigned long long)bytes_out, end, reason);
}
