/* SPDX-License-Identifier: BSD-2-Clause */
/* relay.c — the session core: one relayed connection from accept to its
 * single teardown, relay_close. Admission and the PROXY header, the upstream
 * connect and its retries, the rooms a session waits in (timeouts), and what
 * each side waits for (sio.c watches the sockets); xfer.c moves the bytes
 * and reports, connlog.c writes the log line. Runs in a worker's loop.
 * Never allocates outside the pools, never blocks, never exits the process:
 * a worker outlives any one connection. */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "check.h"
#include "conf.h"
#include "connlog.h"
#include "edge.h"
#include "handoff.h"
#include "heritage.h"
#include "log.h"
#include "net.h"
#include "pool.h"
#include "proxy.h"
#include "relay.h"
#include "session.h"
#include "sio.h"
#include "stats.h"
#include "tls_hello.h"
#include "upstream.h"
#include "worker.h"
#include "xfer.h"

static const char *const close_names[] = {
	[CLOSE_DONE] = "done",
	[CLOSE_CLIENT_ERROR] = "client error",
	[CLOSE_SERVER_ERROR] = "server error",
	[CLOSE_CONNECT_FAILED] = "connect failed",
	[CLOSE_CONNECT_TIMEOUT] = "connect timeout",
	[CLOSE_IDLE_TIMEOUT] = "idle timeout",
	[CLOSE_STARVED] = "idle timeout waiting for a buffer",
	[CLOSE_SHUTDOWN] = "shutdown",
	[CLOSE_FIN_TIMEOUT] = "half-closed timeout",
	[CLOSE_LIFETIME] = "max lifetime",
	[CLOSE_NO_SERVER] = "no server",
	[CLOSE_NO_MEMORY] = "no memory",
	[CLOSE_ACL_DENIED] = "acl denied",
	[CLOSE_PER_SOURCE_LIMIT] = "per-source limit",
	[CLOSE_PROXY_REJECTED] = "PROXY header rejected",
	[CLOSE_TLS_REJECTED] = "TLS ClientHello rejected",
	[CLOSE_NO_ROUTE] = "no sni rule",
	[CLOSE_PROXY_TIMEOUT] = "PROXY header timeout",
	[CLOSE_PREREAD_TIMEOUT] = "TLS ClientHello timeout",
};

size_t
relay_session_size(void)
{
	return sizeof(struct session);
}

static uint32_t
now_ms32(struct worker *w)
{
	return (uint32_t)(uint64_t)(w->now * 1000.0);
}

static void relay_close(struct worker *, struct session *, enum close_reason);
static void session_update(struct worker *, struct session *);

/* --- where a session is --------------------------------------------------
 * Every open session is in exactly one room (enum session_room), a timing
 * wheel that bounds its stay; s->where names it. Only these functions touch
 * s->link and s->where, and the memory pause follows ROOM_STARVED here, so
 * no way in or out of it can forget the pause. */

/* Debug builds: the rooms hold exactly the open sessions, every accepted
 * connection is open or counted closed, and the worker pauses for memory
 * exactly while a session starves. */
static void
rooms_check(const struct worker *w)
{
#if CHECKING
	unsigned n = 0;

	for (unsigned r = ROOM_NONE + 1; r < ROOM_COUNT; r++)
		n += w->rooms[r].count;
	/* Sessions handed to a newer generation stay ours (in active, in no
	 * room) until it answers for them. */
	CHECK(n + w->handoff_inflight == w->active);
	CHECK(STATS_GET(w->slot, accepted) + STATS_GET(w->slot, handed_in) ==
	      STATS_GET(w->slot, closed) + STATS_GET(w->slot, handed_out) + w->active);
	CHECK(!(w->paused & WORKER_PAUSE_MEMORY) == !w->rooms[ROOM_STARVED].count);
#else
	(void)w;
#endif
}

/* The rooms of a relaying session, where timeouts.max_lifetime applies. */
static int
room_relaying(enum session_room r)
{
	return r == ROOM_IDLE || r == ROOM_STARVED || r == ROOM_CLIENT_FIN ||
	       r == ROOM_SERVER_FIN;
}

/* When a session must go at timeouts.max_lifetime (w->now's scale): from
 * its accept (the tail's start, which such configs always keep), plus a
 * jitter of its own drawn from its id, so that sessions accepted together
 * do not all end together and reconnect in one burst. */
static double
session_death(struct worker *w, struct session *s)
{
	const struct session_tail *t = session_tail_of(w, s);
	const struct conf *c = w->conf;
	uint32_t age_ms = now_ms32(w) - t->start_ms; /* wraps after 49 days */
	uint64_t x = t->id * 0x9e3779b97f4a7c15ULL, life = c->max_lifetime_ms;

	if (c->max_lifetime_jitter_ms) {
		x ^= x >> 31;
		x *= 0xbf58476d1ce4e5b9ULL;
		x ^= x >> 29;
		life += x % ((uint64_t)c->max_lifetime_jitter_ms + 1);
	}
	return w->now + ((double)life - age_ms) / 1000.0;
}

/* Each room's timeout in seconds (relay_init). A room's wheel has the same
 * timeout, except that with timeouts.max_lifetime the relaying rooms' wheels
 * look no further ahead than the lifetime: a session is then looked at
 * again at least that often, so it ends within a wheel tick (1/62) of its
 * lifetime however long the idle timeout. */
static double room_limit[ROOM_COUNT];

/* File s in room r's wheel at its deadline: room_limit[r] after s->active,
 * or sooner when its lifetime ends first. wheel_file takes the deadline
 * less the wheel's timeout, and looks at a link due past its horizon again
 * early (room_due files it once more). */
static void
room_file(struct worker *w, struct session *s, enum session_room r)
{
	struct wheel *wh = &w->rooms[r];
	double deadline = s->active + room_limit[r];

	if (w->conf->max_lifetime_ms && room_relaying(r)) {
		double death = session_death(w, s);

		deadline = death < deadline ? death : deadline;
	}
	wheel_file(wh, &s->link, deadline - wh->timeout);
}

static void
room_enter(struct worker *w, struct session *s, enum session_room r)
{
	CHECK(s->where == ROOM_NONE && r != ROOM_NONE);
	/* Out of buffer memory: new clients wait in the listen queue rather
	 * than add to the sessions waiting for a buffer. */
	if (r == ROOM_STARVED && w->rooms[r].count == 0)
		worker_pause(w, WORKER_PAUSE_MEMORY, 1);
	room_file(w, s, r);
	s->where = (uint8_t)r;
}

static void
room_leave(struct worker *w, struct session *s)
{
	enum session_room r = (enum session_room)s->where;

	if (r == ROOM_NONE)
		return;
	wheel_unlink(&w->rooms[r], &s->link);
	s->where = ROOM_NONE;
	/* Woken, closed or timed out: the last starving session to leave, by
	 * whatever way, ends the pause. */
	if (r == ROOM_STARVED && w->rooms[r].count == 0)
		worker_pause(w, WORKER_PAUSE_MEMORY, 0);
}

static void
room_move(struct worker *w, struct session *s, enum session_room r)
{
	room_leave(w, s);
	room_enter(w, s, r);
}

/* Same room, deadline from s->active again (no pause changes). */
static void
room_refile(struct worker *w, struct session *s)
{
	wheel_unlink(&w->rooms[s->where], &s->link);
	room_file(w, s, (enum session_room)s->where);
}

/* A session's slot came due: close it if its deadline passed, else file it
 * again (it was active since it was filed). */
static void
room_due(struct wheel *wh, struct wlink *l, double now)
{
	struct worker *w = wh->data;
	struct session *s = SESSION_OF(l);

	if (w->conf->max_lifetime_ms && room_relaying((enum session_room)s->where) &&
	    session_death(w, s) <= now) {
		relay_close(w, s, CLOSE_LIFETIME);
		return;
	}
	if (s->active + room_limit[s->where] > now) {
		room_refile(w, s);
		return;
	}
	switch ((enum session_room)s->where) {
	case ROOM_HEADER:
		/* The header deadline runs from accept: a header trickled in a
		 * byte at a time does not extend it. */
		relay_close(w, s, CLOSE_PROXY_TIMEOUT);
		return;
	case ROOM_PREREAD:
		/* Likewise from the start of the preread. */
		log_info("client on %s: no complete TLS ClientHello in time",
		    w->conf->listeners[s->listener].address);
		relay_close(w, s, CLOSE_PREREAD_TIMEOUT);
		return;
	case ROOM_CONNECT:
	case ROOM_WAITFD:
		STATS_ADD(w->slot, timeouts, 1);
		if (s->tries > 0)
			STATS_ROW_ADD(session_server_stats(w, s), timeouts, 1);
		if (s->where == ROOM_CONNECT && s->sfd != -1)
			upstream_failed(w, session_upstream(w, s), s->server_idx, "connect timeout");
		relay_close(w, s, CLOSE_CONNECT_TIMEOUT);
		return;
	case ROOM_CLIENT_FIN:
	case ROOM_SERVER_FIN:
		STATS_ADD(w->slot, timeouts, 1);
		STATS_ROW_ADD(session_server_stats(w, s), timeouts, 1);
		relay_close(w, s, CLOSE_FIN_TIMEOUT);
		return;
	default:
		STATS_ADD(w->slot, timeouts, 1);
		if (s->tries > 0)
			STATS_ROW_ADD(session_server_stats(w, s), timeouts, 1);
		/* A starving session's peers may be anything but idle: the
		 * buffer budget is what stopped it, and the count says so. */
		relay_close(w, s, s->where == ROOM_STARVED ? CLOSE_STARVED : CLOSE_IDLE_TIMEOUT);
		return;
	}
}

/* --- what each side waits for (sio.c watches) ---------------------------- */

/* One side sent FIN: with timeouts.client_fin (the client's) or server_fin
 * (the server's) set, the other side has that long, counted from now and
 * renewed by every byte, to finish; without, the idle timeout goes on. */
static void
session_half_closed(struct worker *w, struct session *s)
{
	const struct conf *c = w->conf;
	enum session_room r;

	if ((s->flags & (F_C2S_EOF | F_S2C_EOF)) == (F_C2S_EOF | F_S2C_EOF))
		return; /* both ended: only pending bytes keep it open */
	if (s->flags & F_C2S_EOF) {
		if (c->client_fin_timeout_ms == 0)
			return;
		r = ROOM_CLIENT_FIN;
	} else {
		if (c->server_fin_timeout_ms == 0)
			return;
		r = ROOM_SERVER_FIN;
	}
	s->active = w->now;
	room_move(w, s, r);
}

/* Watch for what each side can do next: read a direction only when nothing of
 * it is pending (back-pressure), write a side only when bytes wait for it. */
static void
session_update(struct worker *w, struct session *s)
{
	int ce = 0, se = 0, starved = s->where == ROOM_STARVED;

	if ((s->flags & (F_C2S_SHUT | F_S2C_SHUT)) == (F_C2S_SHUT | F_S2C_SHUT)) {
		relay_close(w, s, CLOSE_DONE);
		return;
	}
	if (s->where == ROOM_IDLE && (s->flags & (F_C2S_EOF | F_S2C_EOF)))
		session_half_closed(w, s);
	if (!(s->flags & F_C2S_EOF) && !starved && s->c2s.len == 0)
		ce |= EV_READ;
	if (s->s2c.len != 0)
		ce |= EV_WRITE;
	if (!(s->flags & F_S2C_EOF) && !starved && s->s2c.len == 0)
		se |= EV_READ;
	if (s->c2s.len != 0)
		se |= EV_WRITE;
	sio_want(w, s, SIO_CLIENT, ce);
	sio_want(w, s, SIO_SERVER, se);
}

/* --- buffers and transfers ---------------------------------------------- */

/* No buffer left in the budget: pause reading until one comes back (the
 * room pauses accepting too). The idle deadline keeps running: a starving
 * session whose peer never reads must not pin its other buffer forever. */
static void
session_starve(struct worker *w, struct session *s)
{
	room_move(w, s, ROOM_STARVED);
}

/* Give a buffer back and wake the starving session that has waited longest
 * (the soonest idle deadline). */
void
relay_buffer_put(struct worker *w, char *buf)
{
	struct wlink *l;

	pool_put(pool_owns(w->bulk, buf) ? w->bulk : w->buffers, buf);
	if ((l = wheel_first(&w->rooms[ROOM_STARVED])) != NULL) {
		struct session *s = SESSION_OF(l);

		s->active = w->now;
		room_move(w, s, ROOM_IDLE);
		session_update(w, s);
	}
}

/* A refusal counts as refused, by reason and on its listener; the caller
 * counts it as closed too, never as a close reason. */
static void
count_refused(struct worker *w, unsigned li, enum stats_refuse why)
{
	STATS_ADD(w->slot, refused_by[why], 1);
	STATS_ADD(w->slot, refused, 1);
	STATS_ROW_ADD(w->lstats[li], refused, 1);
}

static void session_header(struct worker *, struct session *);
static void session_preread(struct worker *, struct session *);

/* Act on what a transfer step reported: a starving session waits for a
 * buffer, a failed socket ends it. Returns -1 once the session is closed. */
static int
session_xfer(struct worker *w, struct session *s, enum xfer_result r)
{
	switch (r) {
	case XFER_OK:
		return 0;
	case XFER_STARVED:
		session_starve(w, s);
		return 0;
	case XFER_CLIENT_ERROR:
		relay_close(w, s, CLOSE_CLIENT_ERROR);
		return -1;
	case XFER_SERVER_ERROR:
		relay_close(w, s, CLOSE_SERVER_ERROR);
		return -1;
	}
	return 0;
}

static void
client_io(struct worker *w, struct session *s, int revents)
{
	if (s->state == SESSION_HEADER) {
		session_header(w, s);
		return;
	}
	if (s->state == SESSION_PREREAD) {
		session_preread(w, s);
		return;
	}
	if ((revents & EV_WRITE) && s->s2c.len && session_xfer(w, s, xfer_drain(w, s, 0)) == -1)
		return;
	if ((revents & EV_READ) && !(s->flags & F_C2S_EOF) && s->where != ROOM_STARVED &&
	    s->c2s.len == 0 && session_xfer(w, s, xfer_move(w, s, 1)) == -1)
		return;
	session_update(w, s);
}

static int session_connect(struct worker *, struct session *, const struct sockaddr *);
static int session_send_proxy(struct worker *, struct session *);

static void
server_io(struct worker *w, struct session *s, int revents)
{
	if (s->state == SESSION_CONNECTING) {
		unsigned ui = session_upstream(w, s);

		if (net_connect_result(s->sfd) == -1) {
			log_info("connect to %s failed: %s", upstream_name(w, ui, s->server_idx),
			    strerror(errno));
			STATS_ADD(w->slot, connect_failures, 1);
			STATS_ROW_ADD(session_server_stats(w, s), connect_failures, 1);
			upstream_failed(w, ui, s->server_idx, strerror(errno));
			sio_forget(w, s, SIO_SERVER);
			close(s->sfd);
			s->sfd = -1;
			upstream_release(w, ui, s->server_idx);
			if (s->tries >= upstream_tries(w, ui))
				relay_close(w, s, CLOSE_CONNECT_FAILED);
			else
				session_connect(w, s, NULL);
			return;
		}
		upstream_connected(w, ui, s->server_idx);
		STATS_ROW_ADD(session_server_stats(w, s), active, 1);
		/* s->active still holds when the first attempt began. */
		stats_connect_observe(session_server_stats(w, s), w->now - s->active);
		s->state = SESSION_RELAYING;
		/* Before any client byte: the header goes first. */
		if (w->conf->listeners[s->listener].proxy_send && session_send_proxy(w, s) == -1)
			return;
		s->active = w->now;
		room_move(w, s, ROOM_IDLE);
		session_update(w, s);
		return;
	}
	if ((revents & EV_WRITE) && s->c2s.len && session_xfer(w, s, xfer_drain(w, s, 1)) == -1)
		return;
	if ((revents & EV_READ) && !(s->flags & F_S2C_EOF) && s->where != ROOM_STARVED &&
	    s->s2c.len == 0 && session_xfer(w, s, xfer_move(w, s, 0)) == -1)
		return;
	session_update(w, s);
}

void
relay_io(struct worker *w, struct session *s, int side, unsigned revents)
{
	if (side == SIO_CLIENT)
		client_io(w, s, (int)revents);
	else
		server_io(w, s, (int)revents);
}

static const struct sockaddr *session_client(struct worker *, struct session *,
    struct sockaddr_storage *);

/* Try servers until a connect is under way or the tries (1 + the group's
 * retries) are spent. The connect timeout bounds the whole chain: s->active
 * keeps the time the first attempt began. client is the client's address
 * for the first try (source hashing: the PROXY header's client when one was
 * accepted), NULL for retries (which look it up again for a transparent
 * server). Returns -1 once the session is closed. */
static int
session_connect(struct worker *w, struct session *s, const struct sockaddr *client)
{
	unsigned ui = session_upstream(w, s), tries = upstream_tries(w, ui);
	struct sockaddr_storage ss;

	while (s->tries < tries) {
		int srv = upstream_pick(w, ui, client, s->tries ? s->server_idx : -1);
		int fd;

		if (srv == -1) {
			if (s->tries > 0)
				break;
			/* Every server is down or full: say so at once rather
			 * than let the client wait for a connect timeout. */
			log_debug("no server of %s can take a client",
			    w->conf->upstreams[ui].name);
			relay_close(w, s, CLOSE_NO_SERVER);
			return -1;
		}
		if (client == NULL && upstream_wants_client(w, ui, (unsigned)srv))
			client = session_client(w, s, &ss);
		fd = upstream_connect(w, ui, (unsigned)srv, client);
		if (fd == -1 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		                    errno == ENOMEM)) {
			/* Our shortage, not the server's: no try spent, no
			 * failure counted. Take no more clients meanwhile. */
			log_warn("connect to %s: waiting for a descriptor",
			    upstream_name(w, ui, (unsigned)srv));
			/* upstream_connect counted nothing: nothing to release. */
			s->state = SESSION_WAIT_FD;
			room_move(w, s, ROOM_WAITFD);
			worker_pause(w, WORKER_PAUSE_FDS, 1);
			return 0;
		}
		s->tries++;
		s->server_idx = (uint16_t)srv;
		STATS_ROW_ADD(session_server_stats(w, s), connects, 1);
		if (fd != -1) {
			s->sfd = fd;
			if (sio_add(w, s, SIO_SERVER) == 0) {
				sio_want(w, s, SIO_SERVER, EV_WRITE);
				return 0;
			}
			/* The kernel's watch limit or memory: ours, like a
			 * descriptor shortage, but there is nothing to wait
			 * for; this client is refused. */
			log_warn("connect to %s: cannot watch the socket",
			    upstream_name(w, ui, (unsigned)srv));
			close(fd);
			s->sfd = -1;
			upstream_release(w, ui, (unsigned)srv);
			break;
		}
		STATS_ADD(w->slot, connect_failures, 1);
		STATS_ROW_ADD(session_server_stats(w, s), connect_failures, 1);
		if (errno == EADDRNOTAVAIL) {
			/* No local port left: not the server's fault either. */
			log_warn("connect to %s", upstream_name(w, ui, (unsigned)srv));
			continue;
		}
		log_info("connect to %s failed: %s", upstream_name(w, ui, (unsigned)srv),
		    strerror(errno));
		upstream_failed(w, ui, (unsigned)srv, strerror(errno));
	}
	relay_close(w, s, CLOSE_CONNECT_FAILED);
	return -1;
}

/* --- the edge: admission and the PROXY protocol --------------------------- */

/* A connection's two ends as a PROXY header names them. Ends without IP
 * addresses (a UNIX listener's client) go as none: "PROXY UNKNOWN" in v1,
 * LOCAL in v2, so the server keeps its own view of the connection. */
static int
ends_inet(const struct sockaddr *src, const struct sockaddr *dst)
{
	return src != NULL && dst != NULL &&
	       (src->sa_family == AF_INET || src->sa_family == AF_INET6) &&
	       (dst->sa_family == AF_INET || dst->sa_family == AF_INET6);
}

static int
proxy_build_ends(int version, const struct sockaddr *src, const struct sockaddr *dst, void *buf,
    size_t len)
{
	if (!ends_inet(src, dst))
		src = dst = NULL;
	return proxy_build(version, src, dst, buf, len);
}

/* A client refused before it had a session (rate, lists, untrusted front,
 * no session memory): counted, logged when connections are, closed. */
static void
relay_refuse(struct worker *w, int fd, unsigned li, const struct sockaddr *peer,
    enum stats_refuse why, const char *name)
{
	char a[ADDR_STRLEN];

	close(fd);
	count_refused(w, li, why);
	STATS_ADD(w->slot, closed, 1);
	log_debug("client %s on %s refused: %s", addr_format(peer, a, sizeof(a)),
	    w->conf->listeners[li].address, name);
	if (w->conf->log_connections)
		connlog_write(w, li, w->conf->listeners[li].upstream, NULL, peer, -1, 0, 0, 0,
		    "refused", name);
}

/* The outgoing header of a listener that does not read one: from the client's
 * connection as the kernel sees it, with the listener's v2 TLVs (built here,
 * on the stack: nothing is kept for it while connecting). For accept_proxy
 * listeners
 * session_header already put it in front of the pending client bytes, from
 * what the client's header said. Returns -1 once the session is closed. */
static int
session_send_proxy(struct worker *w, struct session *s)
{
	const struct conf_listener *l = &w->conf->listeners[s->listener];
	struct sockaddr_storage src, dst;
	socklen_t sl = sizeof(src), dl = sizeof(dst);
	char hdr[PROXY_V2_MAX]; /* on the stack for this call only */
	const char *p;
	ssize_t m;
	int n;

	if (l->proxy_accept) {
		/* c2s holds [header | payload]: the header is [0, off). */
		p = s->c2s.buf;
		n = (int)s->c2s.off;
	} else {
		if (getpeername(s->cfd, (struct sockaddr *)&src, &sl) == -1 ||
		    getsockname(s->cfd, (struct sockaddr *)&dst, &dl) == -1) {
			relay_close(w, s, CLOSE_CLIENT_ERROR);
			return -1;
		}
		if (l->tlv_add_len > 0 || l->tlv_crc) {
			int ip = ends_inet((struct sockaddr *)&src, (struct sockaddr *)&dst);

			n = proxy_build_v2(ip ? (struct sockaddr *)&src : NULL,
			    ip ? (struct sockaddr *)&dst : NULL, NULL, 0, l->tlv_add, l->tlv_add_len,
			    l->tlv_crc, hdr, sizeof(hdr));
		} else
			n = proxy_build_ends((int)l->proxy_send, (struct sockaddr *)&src,
			    (struct sockaddr *)&dst, hdr, sizeof(hdr));
		p = hdr;
	}
	/* A fresh connection's send buffer always takes a header this small
	 * (the spec relies on it too): a short write means the peer is gone. */
	m = n > 0 ? send(s->sfd, p, (size_t)n, MSG_NOSIGNAL) : -1;
	if (m != n) {
		if (m >= 0)
			errno = EPIPE;
		relay_close(w, s, CLOSE_SERVER_ERROR);
		return -1;
	}
	if (l->proxy_accept) {
		s->c2s.off = (uint32_t)n;
		if (s->c2s.off == s->c2s.len) {
			char *buf = s->c2s.buf;

			s->c2s.buf = NULL;
			s->c2s.off = s->c2s.len = 0;
			relay_buffer_put(w, buf);
		}
	}
	return 0;
}

/* --- sni listeners: the TLS ClientHello ------------------------------------
 * c2s.buf holds [outgoing PROXY header, if any, in [0, off) | the client's
 * bytes so far in [off, len)]: the hello is read there, bounded by the
 * buffer, and the same bytes are relayed from there once an upstream is
 * chosen. Nothing is kept between reads but the bytes themselves. */

/* Judge the bytes read so far. Returns 0 while the hello is incomplete,
 * else 1 once the session moved on (connecting, or closed). */
static int
session_preread_check(struct worker *w, struct session *s)
{
	const struct conf_listener *l = &w->conf->listeners[s->listener];
	struct session_tail *t = session_tail_of(w, s);
	struct sockaddr_storage ss;
	char ca[ADDR_STRLEN];
	struct tls_hello hello;
	const char *why;
	int rc, rule;

	CHECK(t != NULL); /* edge_session_extra: sni listeners keep a tail */
	rc = tls_hello_parse(s->c2s.buf + s->c2s.off, s->c2s.len - s->c2s.off,
	    w->buffer_size - s->c2s.off, &hello, &why);
	if (rc == 0) {
		sio_want(w, s, SIO_CLIENT, EV_READ);
		return 0;
	}
	session_tail_client(t, &ss);
	addr_format((struct sockaddr *)&ss, ca, sizeof(ca));
	if (rc == -1) {
		log_info("TLS ClientHello from %s on %s refused: %s", ca, l->address, why);
		errno = EPROTO;
		relay_close(w, s, CLOSE_TLS_REJECTED);
		return 1;
	}
	rule = edge_sni_route(w, s->listener, &hello);
	if (rule == -1 && !l->sni_default) {
		log_info("client %s on %s: no sni rule takes server name \"%s\"", ca, l->address,
		    hello.name_len ? hello.name : "(none)");
		relay_close(w, s, CLOSE_NO_ROUTE);
		return 1;
	}
	t->upstream = (uint16_t)(rule >= 0 ? l->sni[rule].upstream : l->upstream);
	t->sni_rule = (uint16_t)(rule + 1);
	log_debug("client %s on %s: server name \"%s\" goes to %s (%s)", ca, l->address,
	    hello.name_len ? hello.name : "(none)", w->conf->upstreams[t->upstream].name,
	    rule >= 0 ? "sni rule" : "default");
	sio_want(w, s, SIO_CLIENT, 0);
	s->state = SESSION_CONNECTING;
	s->active = w->now;
	room_move(w, s, ROOM_CONNECT);
	session_connect(w, s, (struct sockaddr *)&ss);
	return 1;
}

/* The client of an sni listener sent more of its hello. */
static void
session_preread(struct worker *w, struct session *s)
{
	ssize_t n;

	/* Never full here: a hello that would fill the buffer was refused. */
	n = read(s->cfd, s->c2s.buf + s->c2s.len, w->buffer_size - s->c2s.len);
	if (n == 0 || (n == -1 && errno == EAGAIN) ||
	    (n > 0 && (size_t)n < w->buffer_size - s->c2s.len))
		sio_dry(s, SIO_CLIENT, SIO_R);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		struct sockaddr_storage ss;
		char ca[ADDR_STRLEN];

		session_tail_client(session_tail_of(w, s), &ss);
		log_info("TLS ClientHello from %s on %s refused: %s",
		    addr_format((struct sockaddr *)&ss, ca, sizeof(ca)),
		    w->conf->listeners[s->listener].address,
		    n == 0 ? "truncated (the connection ended)" : strerror(errno));
		relay_close(w, s, n == 0 ? CLOSE_TLS_REJECTED : CLOSE_CLIENT_ERROR);
		return;
	}
	s->c2s.len += (uint32_t)n;
	session_preread_check(w, s);
}

/* The parser lives at the start of the buffer the session borrows while its
 * header comes; reads land after it, and after the v2 TLVs the listener
 * passes on, which the parser gathers there (proxy_parse_keep). */
#define HEADER_AREA ((sizeof(struct proxy_parser) + 15) & ~(size_t)15)
_Static_assert(HEADER_AREA >= PROXY_HEADER_MAX, "the outgoing header fits the parser's room");
_Static_assert(HEADER_AREA >= PROXY_V2_TLV_OFF, "kept TLVs lie where proxy_build_v2 takes them");
_Static_assert(HEADER_AREA + 256 <= 512, "a 512-byte buffer (the least) still reads 256");

/* How much the next read of a header may take, k bytes of TLVs being kept:
 * what follows them in the buffer, and no more than leaves room for the
 * outgoing header and the bytes after the front's. That header is at most
 * PROXY_V2_OVERHEAD + the kept TLVs (of this read too, each from a byte it
 * used) + the configured ones, so reading at most size - k - OVERHEAD -
 * configured keeps it and the rest within the buffer. 0: the kept TLVs
 * leave no room (conf.c makes sure that k = 0 leaves some). */
static size_t
header_room(const struct worker *w, const struct conf_listener *l, size_t k)
{
	size_t ours = PROXY_V2_OVERHEAD + l->tlv_add_len;
	size_t before = ours > HEADER_AREA ? ours : HEADER_AREA;

	return w->buffer_size > before + k ? w->buffer_size - before - k : 0;
}

/* v2 with TLVs: build the outgoing header at the start of buf from the
 * front's kept TLVs (at HEADER_AREA), the listener's and a checksum, and
 * put the rest bytes at *src after it. The rest goes to the end of the
 * buffer first, out of the header's way (header_room keeps the two apart).
 * Returns the header's length, or -1 (EMSGSIZE: the TLVs pass the v2
 * length limit). */
static int
header_with_tlvs(struct worker *w, const struct conf_listener *l, char *buf,
    const struct sockaddr *client, const struct sockaddr *dst, const struct proxy_info *info,
    const char *src, size_t rest)
{
	char *park = buf + w->buffer_size - rest;
	int crc = l->tlv_crc ||
	          (l->tlv_pass != NULL && info->crc && PROXY_TLV_IN(l->tlv_pass, PROXY_TLV_CRC32C));
	int hl;

	memmove(park, src, rest);
	if (!ends_inet(client, dst))
		client = dst = NULL; /* a UNIX listener's LOCAL client: LOCAL on */
	hl = proxy_build_v2(client, dst, buf + HEADER_AREA, info->tlv_kept, l->tlv_add,
	    l->tlv_add_len, crc, buf, w->buffer_size - rest);
	if (hl > 0)
		memmove(buf + hl, park, rest);
	return hl;
}

/* An accept_proxy client's bytes, until its header is complete: then judge
 * the address it names, put the outgoing header (if any) and the bytes after
 * the client's header in front of the relay, and connect upstream. */
static void
session_header(struct worker *w, struct session *s)
{
	const struct conf_listener *l = &w->conf->listeners[s->listener];
	struct session_tail *t = session_tail_of(w, s);
	char *buf = s->c2s.buf, *area = buf + HEADER_AREA, peer_text[ADDR_STRLEN];
	struct proxy_parser *p = (struct proxy_parser *)(void *)buf;
	struct sockaddr_storage peer, local;
	socklen_t plen = sizeof(peer), llen = sizeof(local);
	const struct sockaddr *client, *dst;
	struct proxy_info info;
	size_t used = 0, rest, hl = 0, k = proxy_parser_kept(p), room = header_room(w, l, k);
	const char *why;
	ssize_t n;
	int rc, refuse, err;

	if (room == 0) {
		if (getpeername(s->cfd, (struct sockaddr *)&peer, &plen) == -1)
			memset(&peer, 0, sizeof(peer));
		log_info("PROXY header from %s on %s refused: its TLVs to pass on fill the buffer",
		    addr_format((struct sockaddr *)&peer, peer_text, sizeof(peer_text)),
		    l->address);
		errno = EMSGSIZE;
		relay_close(w, s, CLOSE_PROXY_REJECTED);
		return;
	}
	/* After the TLVs kept so far: the parser gathers new ones behind them. */
	n = read(s->cfd, area + k, room);
	err = errno;
	if (n == 0 || (n == -1 && err == EAGAIN) || (n > 0 && (size_t)n < room))
		sio_dry(s, SIO_CLIENT, SIO_R);
	if (n == -1 && (err == EAGAIN || err == EINTR))
		return;
	rc = n > 0 ? proxy_parse_keep(p, area + k, (size_t)n, &used, &info, (uint8_t *)area) : -1;
	if (rc == 0)
		return;
	/* The front's own address: for logs, and the client of a LOCAL header. */
	if ((rc == -1 || info.local) &&
	    getpeername(s->cfd, (struct sockaddr *)&peer, &plen) == -1)
		memset(&peer, 0, sizeof(peer));
	else if (rc == -1 || info.local)
		addr_unix_terminate(&peer, plen);
	if (rc == -1) {
		addr_format((struct sockaddr *)&peer, peer_text, sizeof(peer_text));
		log_info("PROXY header from %s on %s refused: %s", peer_text, l->address,
		    n > 0 ? proxy_parse_error(p)
			  : n == 0 ? "truncated (the connection ended)" : strerror(err));
		errno = err;
		relay_close(w, s, CLOSE_PROXY_REJECTED);
		return;
	}

	/* LOCAL and UNKNOWN: the spec says to use the real endpoints. */
	client = info.local ? (struct sockaddr *)&peer : (struct sockaddr *)&info.src;
	if ((refuse = edge_admit_client(w, s->listener, client, &why)) != -1) {
		log_debug("client %s (by PROXY header) on %s refused: %s",
		    addr_format(client, peer_text, sizeof(peer_text)), l->address, why);
		if (t != NULL)
			session_tail_set_client(t, client);
		relay_close(w, s, refuse == STATS_REFUSE_ACL_DENIED ? CLOSE_ACL_DENIED
		                                                    : CLOSE_PER_SOURCE_LIMIT);
		return;
	}
	if (t != NULL)
		session_tail_set_client(t, client);
	if (l->proxy_send) {
		if (info.local) {
			if (getsockname(s->cfd, (struct sockaddr *)&local, &llen) == -1)
				memset(&local, 0, sizeof(local));
			dst = (struct sockaddr *)&local;
		} else {
			dst = (struct sockaddr *)&info.dst;
		}
		rest = (size_t)n - used;
		if (l->tlv_pass != NULL || l->tlv_add_len > 0 || l->tlv_crc) {
			rc = header_with_tlvs(w, l, buf, client, dst, &info, area + k + used, rest);
			if (rc == -1) {
				log_info(
				    "client %s on %s refused: its PROXY header's TLVs and ours "
				    "pass the %d bytes a v2 header may carry",
				    addr_format(client, peer_text, sizeof(peer_text)), l->address,
				    PROXY_V2_LEN_MAX);
				relay_close(w, s, CLOSE_PROXY_REJECTED);
				return;
			}
			s->c2s.off = (uint32_t)rc;
			s->c2s.len = (uint32_t)((size_t)rc + rest);
			goto moved;
		}
		/* The parser's state is spent; its room takes the new header
		 * (PROXY_HEADER_MAX <= HEADER_AREA), which session_send_proxy
		 * writes first once connected. */
		rc = proxy_build_ends((int)l->proxy_send, client, dst, buf, HEADER_AREA);
		hl = rc > 0 ? (size_t)rc : 0;
	}
	rest = (size_t)n - used;
	if (hl + rest > 0) {
		memmove(buf + hl, area + k + used, rest);
		s->c2s.off = (uint32_t)hl;
		s->c2s.len = (uint32_t)(hl + rest);
	} else if (l->nsni == 0) {
		s->c2s.buf = NULL;
		relay_buffer_put(w, buf);
	}
moved:
	if (l->nsni > 0) {
		/* The ClientHello follows the PROXY header: read it into the
		 * same buffer (kept even when empty), after the outgoing header
		 * and what came so far. */
		s->state = SESSION_PREREAD;
		s->active = w->now;
		room_move(w, s, ROOM_PREREAD);
		session_preread_check(w, s);
		return;
	}
	sio_want(w, s, SIO_CLIENT, 0);
	s->state = SESSION_CONNECTING;
	s->active = w->now;
	room_move(w, s, ROOM_CONNECT);
	session_connect(w, s, client);
}

void
relay_start(struct worker *w, int fd, unsigned li, const struct sockaddr *peer)
{
	const struct conf_listener *l = &w->conf->listeners[li];
	struct session_tail *t;
	struct session *s;
	const char *why;
	int refuse;

	STATS_ADD(w->slot, accepted, 1);
	STATS_ROW_ADD(w->lstats[li], accepted, 1);
	if ((refuse = edge_admit(w, li, peer, &why)) != -1) {
		relay_refuse(w, fd, li, peer, (enum stats_refuse)refuse, why);
		return;
	}
	s = pool_get(w->sessions);
	if (s == NULL) {
		if (!l->proxy_accept)
			edge_release(w, li, peer);
		relay_refuse(w, fd, li, peer, STATS_REFUSE_NO_MEMORY, "no_memory");
		return;
	}
	memset(s, 0, sizeof(*s));
	s->cfd = fd;
	s->sfd = -1;
	if (sio_add(w, s, SIO_CLIENT) == -1) {
		log_warn("cannot watch a client socket");
		pool_put(w->sessions, s);
		if (!l->proxy_accept)
			edge_release(w, li, peer);
		relay_refuse(w, fd, li, peer, STATS_REFUSE_NO_MEMORY, "no_memory");
		return;
	}
	s->listener = (uint16_t)li;
	s->state = SESSION_CONNECTING;
	s->active = w->now;
	if ((t = session_tail_of(w, s)) != NULL) {
		memset(t, 0, sizeof(*t));
		session_tail_set_client(t, peer);
		t->start_ms = now_ms32(w);
		if (++w->session_seq == 0)
			w->session_seq = 1;
		t->id = w->session_seq;
		t->upstream = (uint16_t)l->upstream; /* read only on sni listeners */
	}
	w->active++;
	STATS_SET(w->slot, active, w->active);
	STATS_ROW_ADD(w->lstats[li], active, 1);
	if (l->proxy_accept) {
		/* Nothing upstream until the header is in: it lives in a
		 * borrowed buffer, under the header deadline. */
		s->c2s.buf = pool_get(w->buffers);
		if (s->c2s.buf == NULL) {
			s->state = SESSION_HEADER;
			relay_close(w, s, CLOSE_NO_MEMORY);
			return;
		}
		proxy_parser_init((struct proxy_parser *)(void *)s->c2s.buf, (int)l->proxy_accept);
		if (l->tlv_pass != NULL)
			proxy_parser_keep((struct proxy_parser *)(void *)s->c2s.buf, l->tlv_pass);
		s->state = SESSION_HEADER;
		room_enter(w, s, ROOM_HEADER);
		sio_want(w, s, SIO_CLIENT, EV_READ);
		rooms_check(w);
		return;
	}
	if (l->nsni > 0) {
		/* Nothing upstream until the ClientHello says where. */
		s->c2s.buf = pool_get(w->buffers);
		s->state = SESSION_PREREAD;
		if (s->c2s.buf == NULL) {
			relay_close(w, s, CLOSE_NO_MEMORY);
			return;
		}
		room_enter(w, s, ROOM_PREREAD);
		sio_want(w, s, SIO_CLIENT, EV_READ);
		rooms_check(w);
		return;
	}
	room_enter(w, s, ROOM_CONNECT);
	session_connect(w, s, peer);
	rooms_check(w);
}

/* The one way out for a session: every error path ends here. */
static void
relay_close(struct worker *w, struct session *s, enum close_reason why)
{
	int err = errno;
	char *c2s, *s2c;

	if (why == CLOSE_CLIENT_ERROR || why == CLOSE_SERVER_ERROR || why == CLOSE_CONNECT_FAILED)
		log_debug("session closed: %s: %s", close_names[why], strerror(err));
	else
		log_debug("session closed: %s", close_names[why]);
	if (why < (enum close_reason)STATS_CLOSE_LOST)
		STATS_ADD(w->slot, closed_by[why], 1);
	else if (why == CLOSE_PROXY_TIMEOUT)
		count_refused(w, s->listener, STATS_REFUSE_PROXY_REJECTED);
	else if (why == CLOSE_PREREAD_TIMEOUT)
		count_refused(w, s->listener, STATS_REFUSE_TLS_REJECTED);
	else
		count_refused(w, s->listener, (enum stats_refuse)(why - STATS_CLOSE_COUNT));
	if (w->session_tail > 0) {
		struct sockaddr_storage client;

		if (w->conf->log_connections)
			connlog_session(w, s, why, err);
		/* A session counts against its source from admission on; one
		 * refused while its PROXY header was read never did. */
		if (s->state != SESSION_HEADER && !session_foreign(w, s)) {
			session_tail_client(session_tail_of(w, s), &client);
			edge_release(w, s->listener, (struct sockaddr *)&client);
		}
	}
	STATS_ROW_SUB(w->lstats[s->listener], active, 1);
	if (s->state == SESSION_RELAYING)
		STATS_ROW_SUB(session_server_stats(w, s), active, 1);
	sio_forget(w, s, SIO_ALL);
	close(s->cfd);
	if (s->sfd != -1) {
		close(s->sfd);
		if (!session_foreign(w, s))
			upstream_release(w, session_upstream(w, s), s->server_idx);
	}
	room_leave(w, s);
	if (s->state == SESSION_HEADER || s->state == SESSION_PREREAD) {
		c2s = s->c2s.buf; /* the header parser's or the hello's buffer */
		s2c = NULL;
	} else {
		xfer_release(w, s, &c2s, &s2c);
	}
	pool_put(w->sessions, s);
	w->active--;
	STATS_SET(w->slot, active, w->active);
	STATS_ADD(w->slot, closed, 1);
	/* Buffers go back last: giving one back may wake a starved session. */
	if (c2s != NULL)
		relay_buffer_put(w, c2s);
	if (s2c != NULL)
		relay_buffer_put(w, s2c);
	worker_session_closed(w);
	rooms_check(w);
}

/* The client's address for source hashing: the PROXY header's when one was
 * accepted (kept in the tail, which such configs always have), else the
 * connection's peer. NULL when neither can be had. */
static const struct sockaddr *
session_client(struct worker *w, struct session *s, struct sockaddr_storage *ss)
{
	struct session_tail *t = session_tail_of(w, s);
	socklen_t len = sizeof(*ss);

	if (t != NULL) {
		session_tail_client(t, ss);
		return (struct sockaddr *)ss;
	}
	if (getpeername(s->cfd, (struct sockaddr *)ss, &len) == -1)
		return NULL;
	return (struct sockaddr *)ss;
}

void
relay_retry_waiting(struct worker *w)
{
	struct wlink *l;

	/* Soonest deadline first. A session that finds no descriptor again
	 * goes back to ROOM_WAITFD and pauses the worker, which ends the
	 * walk: the rest wait, still filed, for the next try. */
	while (!(w->paused & WORKER_PAUSE_FDS) &&
	       (l = wheel_first(&w->rooms[ROOM_WAITFD])) != NULL) {
		struct session *s = SESSION_OF(l);
		struct sockaddr_storage ss;
		const struct sockaddr *client = NULL;

		/* A first try hashes the client (source balancing); a retry
		 * goes to the server after the one that failed. */
		if (s->tries == 0)
			client = session_client(w, s, &ss);
		s->state = SESSION_CONNECTING;
		room_move(w, s, ROOM_CONNECT);
		session_connect(w, s, client);
	}
	rooms_check(w);
}

int
relay_shut_where(struct worker *w, int (*match)(struct worker *, struct session *, void *),
    void *arg)
{
	unsigned n = 0, pass;

	/* A close may wake starved sessions into rooms or slots this pass has
	 * walked: pass again until one closes nobody. A slot is walked afresh
	 * after each close, its links having changed. */
	do {
		pass = 0;
		for (unsigned r = ROOM_NONE + 1; r < ROOM_COUNT; r++)
			for (unsigned k = 0; k < WHEEL_SLOTS; k++) {
				struct wlink *l = w->rooms[r].slot[k];

				while (l != NULL) {
					struct session *s = SESSION_OF(l);

					if (!match(w, s, arg)) {
						l = l->next;
						continue;
					}
					relay_close(w, s, CLOSE_SHUTDOWN);
					pass++;
					l = w->rooms[r].slot[k];
				}
			}
		n += pass;
	} while (pass > 0);
	rooms_check(w);
	return (int)n;
}

void
relay_close_all(struct worker *w)
{
	unsigned before;

	/* Closing one session gives buffers back, which wakes starving ones
	 * into rooms this walk may have passed: walk again until no room
	 * holds anyone (each pass closes at least one, or nothing is left). */
	do {
		before = w->active;
		for (unsigned r = ROOM_NONE + 1; r < ROOM_COUNT; r++)
			for (unsigned k = 0; k < WHEEL_SLOTS; k++) {
				struct wlink *l;

				while ((l = w->rooms[r].slot[k]) != NULL)
					relay_close(w, SESSION_OF(l), CLOSE_SHUTDOWN);
			}
	} while (w->active > 0 && w->active < before);
	CHECK(w->active == 0);
	rooms_check(w);
}

/* --- hand-off: sessions moving between generations (handoff.c) ---------- */

int
relay_movable(const struct worker *w, const struct session *s)
{
	return s->state == SESSION_RELAYING &&
	       (s->where == ROOM_IDLE || s->where == ROOM_CLIENT_FIN ||
	           s->where == ROOM_SERVER_FIN) &&
	       s->c2s.len == 0 &&
	       s->s2c.len == 0 &&
	       worker_listener_row(w, s) < w->h->stats->nlisteners &&
	       worker_server_row(w, s) < w->h->stats->nservers;
}

void
relay_export(const struct worker *w, const struct session *s, struct handoff_msg *m)
{
	const struct session_tail *t = session_tail_of(w, (struct session *)s);

	memset(m, 0, sizeof(*m));
	m->magic = HANDOFF_MAGIC;
	m->version = HANDOFF_VERSION;
	m->kind = HANDOFF_SESSION;
	m->size = sizeof(*m);
	m->listener_row = worker_listener_row(w, s);
	m->server_row = worker_server_row(w, s);
	m->flags = s->flags & HANDOFF_FLAGS_MASK;
	m->active_us = (int64_t)(s->active * 1e6);
	if (t != NULL) {
		m->start_ms = t->start_ms;
		m->bytes_in = t->bytes_in;
		m->bytes_out = t->bytes_out;
		if (t->family == AF_INET || t->family == AF_INET6) {
			m->has_client = 1;
			m->family = t->family;
			memcpy(m->addr, t->addr, sizeof(m->addr));
			m->port = t->port;
			if (!session_foreign(w, s)) {
				struct sockaddr_storage client;

				session_tail_client(t, &client);
				m->source_table = edge_handoff_table(w, s->listener,
				    (struct sockaddr *)&client);
			}
		}
	}
}

void
relay_detach(struct worker *w, struct session *s)
{
	struct session_tail *t = session_tail_of(w, s);

	CHECK(relay_movable(w, s));
	if (t != NULL && !session_foreign(w, s)) {
		struct sockaddr_storage client;

		session_tail_client(t, &client);
		edge_detach(w, s->listener, (struct sockaddr *)&client);
	}
	STATS_ROW_SUB(w->lstats[s->listener], active, 1);
	STATS_ROW_SUB(session_server_stats(w, s), active, 1);
	/* The receiver holds its own descriptors for both sockets now, so
	 * closing ours would leave the sockets in our epoll set (an entry
	 * lives as long as the socket, not the descriptor). */
	sio_detach(w, s);
	close(s->cfd);
	close(s->sfd);
	if (!session_foreign(w, s))
		upstream_release(w, session_upstream(w, s), s->server_idx);
	room_leave(w, s);
	pool_put(w->sessions, s);
	w->handoff_inflight++;
	rooms_check(w);
}

void
relay_handed(struct worker *w, unsigned taken, unsigned lost)
{
	CHECK(taken + lost <= w->handoff_inflight);
	w->handoff_inflight -= taken + lost;
	w->active -= taken + lost;
	STATS_SET(w->slot, active, w->active);
	STATS_ADD(w->slot, handed_out, taken);
	/* Sessions the receiver could not read, or that went down with it:
	 * their sockets are closed. */
	STATS_ADD(w->slot, closed, lost);
	STATS_ADD(w->slot, closed_by[STATS_CLOSE_HANDOFF_LOST], lost);
	rooms_check(w);
	worker_session_closed(w);
}

/* Which of our listeners and servers have these rows: the listener, the
 * upstream group and the server's index in it. A session keeps its
 * listener's group unless the listener routes by sni (then any group the
 * listener's rules may have chosen). Returns 0, or -1 for a foreign
 * session (session_foreign) where this config lacks either. */
static int
adopt_map(const struct worker *w, unsigned lrow, unsigned srow, unsigned *li, unsigned *ui,
    unsigned *srv)
{
	const struct heritage *h = w->h;
	const struct conf *c = w->conf;

	if (h->listener_rows == NULL || h->server_rows == NULL)
		return -1;
	for (unsigned i = 0; i < w->nlisteners; i++) {
		if (h->listener_rows[i] != lrow)
			continue;
		for (unsigned u = 0; u < c->nupstreams; u++) {
			if (c->listeners[i].nsni == 0 && u != c->listeners[i].upstream)
				continue;
			for (unsigned k = 0; k < c->upstreams[u].nservers; k++)
				if (h->server_rows[w->sbase[u] + k] == srow) {
					*li = i;
					*ui = u;
					*srv = k;
					return 0;
				}
		}
	}
	return -1;
}

int
relay_adopt(struct worker *w, const struct handoff_msg *m, int cfd, int sfd, int back)
{
	struct session_tail *t;
	struct session *s;
	unsigned li, ui = 0, srv;

	if (m->listener_row >= w->h->stats->nlisteners || m->server_row >= w->h->stats->nservers) {
		errno = EINVAL;
		return -1;
	}
	if ((s = pool_get(w->sessions)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if (adopt_map(w, m->listener_row, m->server_row, &li, &ui, &srv) == -1) {
		li = w->nlisteners + m->listener_row;
		srv = m->server_row;
	}
	memset(s, 0, sizeof(*s));
	s->cfd = cfd;
	s->sfd = sfd;
	/* The sender closes its descriptors after sending: until then a close
	 * of ours would not take the sockets out of our epoll set. */
	sio_shared(s);
	if (sio_add(w, s, SIO_CLIENT) == -1 || sio_add(w, s, SIO_SERVER) == -1) {
		int err = errno;

		/* The descriptors stay the caller's: take them out again. */
		sio_detach(w, s);
		pool_put(w->sessions, s);
		errno = err;
		return -1;
	}
	s->listener = (uint16_t)li;
	s->server_idx = (uint16_t)srv;
	s->state = SESSION_RELAYING;
	s->flags = (uint8_t)(m->flags & HANDOFF_FLAGS_MASK);
	s->tries = 1;
	/* Both ends read CLOCK_MONOTONIC: the idle deadline runs on. */
	s->active = (double)m->active_us / 1e6;
	if (s->active > w->now)
		s->active = w->now;
	if ((t = session_tail_of(w, s)) != NULL) {
		memset(t, 0, sizeof(*t));
		if (m->has_client) {
			t->family = m->family;
			memcpy(t->addr, m->addr, sizeof(t->addr));
			t->port = m->port;
		} else if (!session_foreign(w, s) && !w->conf->listeners[li].proxy_accept) {
			/* The sender kept no client (its config needed none):
			 * the socket's peer is the client here, and ours may
			 * count it against its source. */
			struct sockaddr_storage peer;
			socklen_t plen = sizeof(peer);

			if (getpeername(cfd, (struct sockaddr *)&peer, &plen) == 0)
				session_tail_set_client(t, (struct sockaddr *)&peer);
		}
		/* 0: the sender kept no start (its config logged nothing). */
		t->start_ms = m->start_ms != 0 ? m->start_ms : now_ms32(w);
		t->bytes_in = m->bytes_in;
		t->bytes_out = m->bytes_out;
		if (++w->session_seq == 0)
			w->session_seq = 1;
		t->id = w->session_seq;
		/* The group an sni rule chose (the rule itself is not carried:
		 * $sni is empty for a moved session). */
		t->upstream = (uint16_t)ui;
	}
	if (back) {
		/* Ours again: it never left active (relay_detach). */
		CHECK(w->handoff_inflight > 0);
		w->handoff_inflight--;
	} else {
		w->active++;
		STATS_SET(w->slot, active, w->active);
		STATS_ADD(w->slot, handed_in, 1);
	}
	STATS_ROW_ADD(w->lstats[li], active, 1);
	STATS_ROW_ADD(session_server_stats(w, s), active, 1);
	if (!session_foreign(w, s)) {
		upstream_adopt(w, ui, srv);
		if (t != NULL && t->family != 0) {
			struct sockaddr_storage client;

			session_tail_client(t, &client);
			edge_adopt(w, li, (struct sockaddr *)&client, m->source_table);
		}
	} else if (t != NULL && t->family != 0) {
		struct sockaddr_storage client;

		session_tail_client(t, &client);
		edge_forget(w, m->listener_row, (struct sockaddr *)&client, m->source_table);
	}
	room_enter(w, s, ROOM_IDLE);
	session_update(w, s);
	rooms_check(w);
	return 0;
}

int
relay_init(struct worker *w)
{
	const struct conf *c = w->conf;
	const unsigned timeout_ms[ROOM_COUNT] = {
		[ROOM_HEADER] = c->proxy_header_timeout_ms,
		[ROOM_CONNECT] = c->connect_timeout_ms,
		[ROOM_WAITFD] = c->connect_timeout_ms,
		[ROOM_IDLE] = c->idle_timeout_ms,
		[ROOM_STARVED] = c->idle_timeout_ms,
		[ROOM_CLIENT_FIN] = c->client_fin_timeout_ms,
		[ROOM_SERVER_FIN] = c->server_fin_timeout_ms,
		[ROOM_PREREAD] = c->preread_timeout_ms,
	};

	for (unsigned r = ROOM_NONE + 1; r < ROOM_COUNT; r++) {
		unsigned ms = timeout_ms[r];

		room_limit[r] = ms / 1000.0;
		if (c->max_lifetime_ms && room_relaying((enum session_room)r) &&
		    c->max_lifetime_ms < ms)
			ms = c->max_lifetime_ms;
		wheel_init(&w->rooms[r], w->loop, ms, &w->now, room_due, w);
	}
	return sio_init(w);
}
