/* SPDX-License-Identifier: BSD-2-Clause */
/* session.h — the types of one relayed connection, shared by the session
 * core (relay.c), the byte mover (xfer.c) and the connection log
 * (connlog.c): types and tiny accessors only, no behaviour. Runs in a
 * worker. The size of struct session is the memory figure sluice is about:
 * an idle connection costs it and nothing else in user space (its sockets
 * are watched by sio.c's epoll set, not by libev). */
#ifndef SLUICE_SESSION_H
#define SLUICE_SESSION_H

#include <ev.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "conf.h"
#include "stats.h"
#include "wheel.h"
#include "worker.h"

/* SESSION_WAIT_FD: accepted, but no descriptor was left for the upstream
 * socket; it waits in ROOM_WAITFD (its connect deadline still runs) and
 * tries again when the worker's descriptor pause ends.
 * SESSION_PREREAD: an sni listener's session reading the TLS ClientHello
 * into its c2s buffer (ROOM_PREREAD) to choose its upstream; those bytes are
 * then relayed from there unchanged. */
enum session_state {
	SESSION_CONNECTING = 1,
	SESSION_RELAYING,
	SESSION_HEADER,
	SESSION_WAIT_FD,
	SESSION_PREREAD
};

/* s->flags: the state of each direction (xfer.c). */
#define F_C2S_EOF 0x01    /* client sent FIN */
#define F_C2S_SHUT 0x02   /* ... and the server's write side is shut */
#define F_S2C_EOF 0x04
#define F_S2C_SHUT 0x08
#define F_BULK 0x10       /* a read filled its buffer: reads take a bulk
                           * buffer when there is one (xfer.c) */
#define F_C2S_SPLICE 0x20 /* bulk seen: this direction relays by splice */
#define F_S2C_SPLICE 0x40
#define F_S2C_FIRST 0x80  /* the server's EOF came before the client's */

/* Why a session ends. Up to CLOSE_LIFETIME these are the close reasons the
 * stats slot counts as closed_<reason> (stats.h, STATS_CLOSE_REASONS; the
 * last of those, LOST, only the master counts, for a worker that died); the
 * rest are refusals, a session ended before relaying a byte, counted as
 * refused_<reason> (STATS_REFUSE_REASONS): a new one is
 * STATS_CLOSE_COUNT + its STATS_REFUSE_ value. */
enum close_reason {
	CLOSE_DONE = STATS_CLOSE_DONE,
	CLOSE_CLIENT_ERROR = STATS_CLOSE_CLIENT_ERROR,
	CLOSE_SERVER_ERROR = STATS_CLOSE_SERVER_ERROR,
	CLOSE_CONNECT_FAILED = STATS_CLOSE_CONNECT_FAILED,
	CLOSE_CONNECT_TIMEOUT = STATS_CLOSE_CONNECT_TIMEOUT,
	CLOSE_IDLE_TIMEOUT = STATS_CLOSE_IDLE_TIMEOUT,
	CLOSE_STARVED = STATS_CLOSE_STARVED,
	CLOSE_SHUTDOWN = STATS_CLOSE_SHUTDOWN,
	CLOSE_FIN_TIMEOUT = STATS_CLOSE_FIN_TIMEOUT,
	CLOSE_LIFETIME = STATS_CLOSE_LIFETIME,
	CLOSE_NO_SERVER = STATS_CLOSE_COUNT + STATS_REFUSE_NO_SERVER,
	CLOSE_NO_MEMORY = STATS_CLOSE_COUNT + STATS_REFUSE_NO_MEMORY,
	CLOSE_ACL_DENIED = STATS_CLOSE_COUNT + STATS_REFUSE_ACL_DENIED,
	CLOSE_PER_SOURCE_LIMIT = STATS_CLOSE_COUNT + STATS_REFUSE_PER_SOURCE_LIMIT,
	CLOSE_PROXY_REJECTED = STATS_CLOSE_COUNT + STATS_REFUSE_PROXY_REJECTED,
	CLOSE_TLS_REJECTED = STATS_CLOSE_COUNT + STATS_REFUSE_TLS_REJECTED,
	CLOSE_NO_ROUTE = STATS_CLOSE_COUNT + STATS_REFUSE_NO_ROUTE,
	/* Past the refusals: counted as proxy_rejected, logged as a timeout. */
	CLOSE_PROXY_TIMEOUT = STATS_CLOSE_COUNT + STATS_REFUSE_COUNT,
	/* Counted as tls_rejected, logged as a timeout. */
	CLOSE_PREREAD_TIMEOUT
};

/* Bytes of one direction that the destination could not take yet: in a
 * pooled buffer (buf, from off to len), or, once the direction relays by
 * splice, in a pooled pipe (len bytes). Either is held only while len > 0. */
struct half {
	union {
		char *buf;
		int pipe[2]; /* read end, write end */
	};
	uint32_t off, len;
};

struct session {
	struct wlink link; /* in w->rooms[where] (relay.c's room_* only) */
	double active;     /* w->now when bytes last moved (or the phase began) */
	struct half c2s, s2c;
	int cfd, sfd;      /* the client's socket; the server's, -1 before a connect */
	uint16_t listener, server_idx;
	uint8_t state, flags, where, tries;
	uint8_t io;        /* per side, what it waits for and is ready for (sio.h) */
	uint8_t iox;       /* in sio.c's run queue; a side's end seen (sio.h) */
};

#define SESSION_OF(l) ((struct session *)(void *)((char *)(l) - offsetof(struct session, link)))

/*
 * What the edge keeps per connection, past struct session in the same pooled
 * object, only when the config needs it (w->session_tail bytes, see
 * edge_session_extra): the client address, for the per-source count at close,
 * source hashing after a wait and the log (from the PROXY header when one was
 * accepted); and, with log.connections, the start time and byte counts.
 * With a control socket, every session has one, for sluicectl's session list
 * (and its id, for shutting one). Other configs pay nothing.
 */
struct session_tail {
	uint8_t addr[16];   /* IPv4 as the last 4 bytes */
	uint16_t port;      /* network order */
	uint8_t family;     /* AF_INET, AF_INET6, AF_UNIX (no address) or 0 */
	uint8_t pad;
	uint32_t start_ms;  /* log: w->now in ms, mod 2^32 (49 days) */
	uint64_t bytes_in;  /* log: client to server */
	uint64_t bytes_out; /* log: server to client */
	uint32_t id;        /* this worker's count of sessions at its start (never 0) */
	uint16_t upstream;  /* sni listeners: the upstream group the hello chose,
	                     * until then the listener's (in what was padding) */
	uint16_t sni_rule;  /* 1 + the sni rule that chose it, 0: none */
};
/* sni routing costs the configs that keep a tail nothing: its fields took
 * the padding after id. */
_Static_assert(sizeof(struct session_tail) == 48, "struct session_tail stays 48 bytes");

/* The session's tail, or NULL when the config keeps none. */
static inline struct session_tail *
session_tail_of(const struct worker *w, struct session *s)
{
	return w->session_tail > 0 ? (struct session_tail *)(s + 1) : NULL;
}

/* A session taken over from an older generation whose listener or server
 * this worker's config does not have (handoff.c): s->listener is then
 * w->nlisteners + its listener's segment row and s->server_idx its server's
 * segment row; w->lstats has entries for listener rows past the config's,
 * and w->sstats for server rows past w->nservers, so it counts in the rows
 * it always did. It relays like any other; it just has no upstream or edge
 * state here. */
static inline int
session_foreign(const struct worker *w, const struct session *s)
{
	return s->listener >= w->nlisteners;
}

/* The session's upstream group: on a listener with sni rules the one its
 * ClientHello chose (kept in the tail, which such configs always have),
 * else its listener's. Not for a foreign session, which has none here. */
static inline unsigned
session_upstream(const struct worker *w, const struct session *s)
{
	const struct conf_listener *l = &w->conf->listeners[s->listener];

	return l->nsni > 0 ? ((const struct session_tail *)(s + 1))->upstream : l->upstream;
}

/* The session's server row in our slot (valid once a server was picked). */
static inline struct stats_server_counters *
session_server_stats(const struct worker *w, const struct session *s)
{
	if (session_foreign(w, s))
		return w->sstats[w->nservers + s->server_idx];
	return w->sstats[w->sbase[session_upstream(w, s)] + s->server_idx];
}

static inline void
session_tail_set_client(struct session_tail *t, const struct sockaddr *sa)
{
	memset(t->addr, 0, sizeof(t->addr));
	t->family = 0;
	t->port = 0;
	if (sa->sa_family == AF_INET) {
		memcpy(t->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		t->port = ((const struct sockaddr_in *)sa)->sin_port;
		t->family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(t->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		t->port = ((const struct sockaddr_in6 *)sa)->sin6_port;
		t->family = AF_INET6;
	} else if (sa->sa_family == AF_UNIX) {
		t->family = AF_UNIX; /* no address: logged and listed as "unix:" */
	}
}

static inline void
session_tail_client(const struct session_tail *t, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (t->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, t->addr, 4);
		sin->sin_port = t->port;
	} else if (t->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, t->addr, 16);
		sin6->sin6_port = t->port;
	} else if (t->family == AF_UNIX) {
		ss->ss_family = AF_UNIX; /* unnamed: sun_path "" */
	}
}

/* relay.c: give a relay buffer back to the pool and wake the session that
 * has starved longest for one. Every buffer a session gave up goes back
 * through here. */
void relay_buffer_put(struct worker *, char *buf);

#endif
