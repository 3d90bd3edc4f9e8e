/* relay.c — one relayed connection, a session: connect upstream, relay both
 * directions with back-pressure and half-close, connect and idle timeouts, and
 * the single teardown relay_close. Runs in a worker's loop. Never allocates
 * outside the pools, never blocks, never exits the process: a worker outlives
 * any one connection. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "net.h"
#include "pool.h"
#include "relay.h"
#include "stats.h"
#include "worker.h"

enum session_state { SESSION_CONNECTING = 1, SESSION_RELAYING };

/* Which list the session's links are in: always exactly one. */
enum session_where { IN_NONE, IN_CONNECT_WHEEL, IN_IDLE_WHEEL, IN_STARVED };

#define F_C2S_EOF 0x01  /* client sent FIN */
#define F_C2S_SHUT 0x02 /* ... and the server's write side is shut */
#define F_S2C_EOF 0x04
#define F_S2C_SHUT 0x08
#define F_STARVED 0x10 /* no relay buffer to be had: reading paused */
#define F_C2S_SPLICE 0x20 /* bulk seen: this direction relays by splice */
#define F_S2C_SPLICE 0x40

#define RELAY_CONNECT_TRIES 2 /* the first server, then the next one once */
#define RELAY_READS_PER_EVENT 4
/* Bytes one splice moves at most: the default pipe capacity (16 pages). */
#define RELAY_SPLICE_CHUNK (64 * 1024)

enum close_reason {
	CLOSE_DONE,
	CLOSE_CLIENT_ERROR,
	CLOSE_SERVER_ERROR,
	CLOSE_CONNECT_FAILED,
	CLOSE_CONNECT_TIMEOUT,
	CLOSE_IDLE_TIMEOUT,
	CLOSE_SHUTDOWN
};

static const char *const close_names[] = { "done", "client error", "server error",
	"connect failed", "connect timeout", "idle timeout", "shutdown" };

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
	ev_io client; /* data = this session */
	ev_io server;
	struct session *next, **pprev; /* wheel slot or starved list */
	ev_tstamp active;              /* last time bytes moved (or connect began) */
	struct half c2s, s2c;
	uint16_t listener, server_idx;
	uint8_t state, flags, where, tries;
};

size_t
relay_session_size(void)
{
	return sizeof(struct session);
}

static void relay_close(struct worker *, struct session *, enum close_reason);
static void session_update(struct worker *, struct session *);

/* --- lists --------------------------------------------------------------- */

static void
list_push(struct session **head, struct session *s)
{
	s->next = *head;
	if (*head != NULL)
		(*head)->pprev = &s->next;
	*head = s;
	s->pprev = head;
}

static void
list_unlink(struct session *s)
{
	*s->pprev = s->next;
	if (s->next != NULL)
		s->next->pprev = s->pprev;
	s->next = NULL;
	s->pprev = NULL;
}

static struct wheel *
wheel_of(struct worker *w, struct session *s)
{
	return s->where == IN_CONNECT_WHEEL ? &w->connect_wheel : &w->idle_wheel;
}

/* Take the session out of whatever list holds it. */
static void
session_unfile(struct worker *w, struct session *s)
{
	if (s->where == IN_NONE)
		return;
	if (s->where != IN_STARVED)
		wheel_of(w, s)->count--;
	list_unlink(s);
	s->where = IN_NONE;
}

/* --- timeout wheels ------------------------------------------------------ */

static void wheel_cb(struct ev_loop *, ev_timer *, int);

static void
wheel_init(struct wheel *wh, unsigned timeout_ms)
{
	memset(wh, 0, sizeof(*wh));
	wh->timeout = timeout_ms / 1000.0;
	wh->tick = wh->timeout / (WHEEL_SLOTS - 2);
	if (wh->tick < 0.001)
		wh->tick = 0.001;
	ev_init(&wh->timer, wheel_cb);
	/* libev runs callbacks due in one iteration by priority: I/O first, so
	 * a session whose bytes arrived during a stall is marked active before
	 * its timeout is judged. */
	ev_set_priority(&wh->timer, EV_MINPRI);
	wh->timer.data = wh;
}

static void
wheel_file(struct worker *w, struct session *s, enum session_where where)
{
	struct wheel *wh = where == IN_CONNECT_WHEEL ? &w->connect_wheel : &w->idle_wheel;
	/* Due in the first tick that starts at or after the deadline: never early. */
	uint64_t k = (uint64_t)((s->active + wh->timeout) / wh->tick) + 1;

	if (!ev_is_active(&wh->timer)) {
		wh->cursor = (uint64_t)(ev_now(w->loop) / wh->tick);
		ev_timer_set(&wh->timer, wh->tick, wh->tick);
		ev_timer_start(w->loop, &wh->timer);
	}
	if (k < wh->cursor)
		k = wh->cursor;
	list_push(&wh->slot[k % WHEEL_SLOTS], s);
	s->where = where;
	wh->count++;
}

static void
wheel_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = ev_userdata(loop);
	struct wheel *wh = t->data;
	ev_tstamp now = ev_now(loop);
	uint64_t due = (uint64_t)(now / wh->tick);
	int connect = wh == &w->connect_wheel;

	/* After a long stall every slot is due once; more rounds add nothing. */
	if (due > wh->cursor + WHEEL_SLOTS)
		wh->cursor = due - WHEEL_SLOTS;
	for (; wh->cursor <= due && wh->count > 0; wh->cursor++) {
		struct session *list = wh->slot[wh->cursor % WHEEL_SLOTS], *s;

		/* Detach the slot first: sessions filed again land in later
		 * slots, and closing one must not disturb this walk. */
		wh->slot[wh->cursor % WHEEL_SLOTS] = NULL;
		if (list != NULL)
			list->pprev = &list;
		while ((s = list) != NULL) {
			list_unlink(s);
			s->where = IN_NONE;
			wh->count--;
			if (s->active + wh->timeout <= now) {
				STATS_ADD(w->slot, timeouts, 1);
				relay_close(w, s, connect ? CLOSE_CONNECT_TIMEOUT : CLOSE_IDLE_TIMEOUT);
			} else {
				wheel_file(w, s, connect ? IN_CONNECT_WHEEL : IN_IDLE_WHEEL);
			}
		}
	}
	if (wh->count == 0)
		ev_timer_stop(loop, t);
}

/* --- watchers ------------------------------------------------------------ */

static void
io_want(struct ev_loop *loop, ev_io *io, int events)
{
	if ((io->events & (EV_READ | EV_WRITE)) == events && (events == 0 || ev_is_active(io)))
		return;
	ev_io_stop(loop, io);
	ev_io_modify(io, events);
	if (events != 0)
		ev_io_start(loop, io);
}

/* Watch for what each side can do next: read a direction only when nothing of
 * it is pending (back-pressure), write a side only when bytes wait for it. */
static void
session_update(struct worker *w, struct session *s)
{
	int ce = 0, se = 0;

	if ((s->flags & (F_C2S_SHUT | F_S2C_SHUT)) == (F_C2S_SHUT | F_S2C_SHUT)) {
		relay_close(w, s, CLOSE_DONE);
		return;
	}
	if (!(s->flags & (F_C2S_EOF | F_STARVED)) && s->c2s.len == 0)
		ce |= EV_READ;
	if (s->s2c.len != 0)
		ce |= EV_WRITE;
	if (!(s->flags & (F_S2C_EOF | F_STARVED)) && s->s2c.len == 0)
		se |= EV_READ;
	if (s->c2s.len != 0)
		se |= EV_WRITE;
	io_want(w->loop, &s->client, ce);
	io_want(w->loop, &s->server, se);
}

/* --- relaying ------------------------------------------------------------ */

/* No buffer left in the budget: pause reading until one comes back. */
static void
session_starve(struct worker *w, struct session *s)
{
	/* Out of buffer memory: new clients wait in the listen queue rather
	 * than add to the sessions waiting for a buffer. */
	if (w->starved == NULL)
		worker_pause(w, WORKER_PAUSE_MEMORY, 1);
	session_unfile(w, s);
	list_push(&w->starved, s);
	s->where = IN_STARVED;
	s->flags |= F_STARVED;
}

static void
buffer_put(struct worker *w, char *buf)
{
	struct session *s;

	pool_put(w->buffers, buf);
	if ((s = w->starved) != NULL) {
		session_unfile(w, s);
		s->flags &= ~F_STARVED;
		s->active = ev_now(w->loop);
		wheel_file(w, s, IN_IDLE_WHEEL);
		if (w->starved == NULL)
			worker_pause(w, WORKER_PAUSE_MEMORY, 0);
		session_update(w, s);
	}
}

/* The direction's source sent EOF and nothing is pending: pass the FIN on. */
static int
half_shut(struct worker *w, struct session *s, int c2s)
{
	int dst = c2s ? s->server.fd : s->client.fd;

	s->flags |= c2s ? F_C2S_SHUT : F_S2C_SHUT;
	if (shutdown(dst, SHUT_WR) == -1 && errno != ENOTCONN) {
		relay_close(w, s, c2s ? CLOSE_SERVER_ERROR : CLOSE_CLIENT_ERROR);
		return -1;
	}
	return 0;
}

static void
count_bytes(struct worker *w, int c2s, size_t n)
{
	if (c2s)
		STATS_ADD(w->slot, bytes_in, n);
	else
		STATS_ADD(w->slot, bytes_out, n);
}

/* --- zero-copy ------------------------------------------------------------
 * A direction that reads a full buffer is moving bulk data; from then on it
 * goes socket -> pipe -> socket with splice(2), never through user space. A
 * pipe is borrowed only while bytes sit in it: pipes cost two descriptors and
 * kernel pages, so idle and small-message connections hold none. */

static int
pipe_get(struct worker *w, int p[2])
{
	if (w->npipes > 0) {
		w->npipes--;
		p[0] = w->pipes[w->npipes][0];
		p[1] = w->pipes[w->npipes][1];
		return 0;
	}
	return pipe2(p, O_NONBLOCK | O_CLOEXEC);
}

/* Only an empty pipe may be reused: one with bytes left would carry them into
 * another connection. */
static void
pipe_put(struct worker *w, int p[2], int empty)
{
	if (empty && w->npipes < RELAY_IDLE_PIPES) {
		w->pipes[w->npipes][0] = p[0];
		w->pipes[w->npipes][1] = p[1];
		w->npipes++;
		return;
	}
	close(p[0]);
	close(p[1]);
}

static int
half_splice(struct worker *w, struct session *s, int c2s)
{
	int src = c2s ? s->client.fd : s->server.fd;
	int dst = c2s ? s->server.fd : s->client.fd;
	struct half *h = c2s ? &s->c2s : &s->s2c;

	for (int i = 0; i < RELAY_READS_PER_EVENT; i++) {
		ssize_t n, m;

		if (pipe_get(w, h->pipe) == -1) {
			/* Out of descriptors: this event goes through a buffer. */
			s->flags &= ~(c2s ? F_C2S_SPLICE : F_S2C_SPLICE);
			return 0;
		}
		n = splice(src, NULL, h->pipe[1], NULL, RELAY_SPLICE_CHUNK,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n <= 0) {
			pipe_put(w, h->pipe, 1);
			if (n == 0) {
				s->flags |= c2s ? F_C2S_EOF : F_S2C_EOF;
				return half_shut(w, s, c2s);
			}
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			relay_close(w, s, c2s ? CLOSE_CLIENT_ERROR : CLOSE_SERVER_ERROR);
			return -1;
		}
		s->active = ev_now(w->loop);
		m = splice(h->pipe[0], NULL, dst, NULL, (size_t)n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (m == -1) {
			if (errno != EAGAIN && errno != EINTR) {
				pipe_put(w, h->pipe, 0);
				relay_close(w, s, c2s ? CLOSE_SERVER_ERROR : CLOSE_CLIENT_ERROR);
				return -1;
			}
			m = 0;
		}
		count_bytes(w, c2s, (size_t)m);
		if (m < n) {
			h->off = 0;
			h->len = (uint32_t)(n - m);
			return 0;
		}
		pipe_put(w, h->pipe, 1);
		if (n < RELAY_SPLICE_CHUNK)
			return 0;
	}
	return 0;
}

static int
half_splice_flush(struct worker *w, struct session *s, int c2s)
{
	int dst = c2s ? s->server.fd : s->client.fd;
	struct half *h = c2s ? &s->c2s : &s->s2c;
	ssize_t m;

	m = splice(h->pipe[0], NULL, dst, NULL, h->len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (m == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		relay_close(w, s, c2s ? CLOSE_SERVER_ERROR : CLOSE_CLIENT_ERROR);
		return -1;
	}
	s->active = ev_now(w->loop);
	count_bytes(w, c2s, (size_t)m);
	h->len -= (uint32_t)m;
	if (h->len > 0)
		return 0;
	pipe_put(w, h->pipe, 1);
	if (s->flags & (c2s ? F_C2S_EOF : F_S2C_EOF))
		return half_shut(w, s, c2s);
	return 0;
}

/* Read from the direction's source and write straight on. Bytes the
 * destination cannot take stay in the pooled buffer they were read into;
 * otherwise the buffer goes back at once. Returns -1 once the session is
 * closed. */
static int
half_pump(struct worker *w, struct session *s, int c2s)
{
	int src = c2s ? s->client.fd : s->server.fd;
	int dst = c2s ? s->server.fd : s->client.fd;
	struct half *h = c2s ? &s->c2s : &s->s2c;

	for (int i = 0; i < RELAY_READS_PER_EVENT; i++) {
		char *buf = pool_get(w->buffers);
		ssize_t n, m;

		if (buf == NULL) {
			session_starve(w, s);
			return 0;
		}
		n = read(src, buf, w->buffer_size);
		if (n <= 0) {
			pool_put(w->buffers, buf);
			if (n == 0) {
				s->flags |= c2s ? F_C2S_EOF : F_S2C_EOF;
				return half_shut(w, s, c2s);
			}
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			log_debug("session %s read: %s", c2s ? "client" : "server", strerror(errno));
			relay_close(w, s, c2s ? CLOSE_CLIENT_ERROR : CLOSE_SERVER_ERROR);
			return -1;
		}
		s->active = ev_now(w->loop);
		m = send(dst, buf, (size_t)n, MSG_NOSIGNAL);
		if (m == -1) {
			if (errno != EAGAIN && errno != EINTR) {
				pool_put(w->buffers, buf);
				relay_close(w, s, c2s ? CLOSE_SERVER_ERROR : CLOSE_CLIENT_ERROR);
				return -1;
			}
			m = 0;
		}
		count_bytes(w, c2s, (size_t)m);
		if (m < n) {
			h->buf = buf;
			h->off = (uint32_t)m;
			h->len = (uint32_t)n;
			return 0;
		}
		buffer_put(w, buf);
		if ((size_t)n < w->buffer_size)
			return 0; /* short read: the socket is very likely drained */
		if (w->conf->splice) {
			/* A full buffer: bulk data. Splice from now on. */
			s->flags |= c2s ? F_C2S_SPLICE : F_S2C_SPLICE;
			return half_splice(w, s, c2s);
		}
	}
	return 0;
}

/* Write pending bytes of a direction; when they are all out, give the buffer
 * back and pass on an EOF that waited for them. */
static int
half_flush(struct worker *w, struct session *s, int c2s)
{
	int dst = c2s ? s->server.fd : s->client.fd;
	struct half *h = c2s ? &s->c2s : &s->s2c;
	ssize_t m;

	m = send(dst, h->buf + h->off, h->len - h->off, MSG_NOSIGNAL);
	if (m == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		relay_close(w, s, c2s ? CLOSE_SERVER_ERROR : CLOSE_CLIENT_ERROR);
		return -1;
	}
	s->active = ev_now(w->loop);
	count_bytes(w, c2s, (size_t)m);
	h->off += (uint32_t)m;
	if (h->off < h->len)
		return 0;
	h->off = h->len = 0;
	buffer_put(w, h->buf);
	h->buf = NULL;
	if (s->flags & (c2s ? F_C2S_EOF : F_S2C_EOF))
		return half_shut(w, s, c2s);
	return 0;
}

/* A direction relays by splice once it has seen bulk data, else through a
 * buffer; pending bytes sit in a pipe exactly when the splice flag is set. */
static int
half_move(struct worker *w, struct session *s, int c2s)
{
	if (s->flags & (c2s ? F_C2S_SPLICE : F_S2C_SPLICE))
		return half_splice(w, s, c2s);
	return half_pump(w, s, c2s);
}

static int
half_drain(struct worker *w, struct session *s, int c2s)
{
	if (s->flags & (c2s ? F_C2S_SPLICE : F_S2C_SPLICE))
		return half_splice_flush(w, s, c2s);
	return half_flush(w, s, c2s);
}

static void
client_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = ev_userdata(loop);
	struct session *s = io->data;

	if ((revents & EV_WRITE) && s->s2c.len && half_drain(w, s, 0) == -1)
		return;
	if ((revents & EV_READ) && !(s->flags & (F_C2S_EOF | F_STARVED)) && s->c2s.len == 0 &&
	    half_move(w, s, 1) == -1)
		return;
	session_update(w, s);
}

static int session_connect(struct worker *, struct session *);

static void
server_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = ev_userdata(loop);
	struct session *s = io->data;

	if (s->state == SESSION_CONNECTING) {
		if (net_connect_result(io->fd) == -1) {
			log_info("connect to %s failed: %s",
			    upstream_name(w, s->listener, s->server_idx), strerror(errno));
			STATS_ADD(w->slot, connect_failures, 1);
			ev_io_stop(loop, io);
			close(io->fd);
			io->fd = -1;
			if (s->tries >= RELAY_CONNECT_TRIES)
				relay_close(w, s, CLOSE_CONNECT_FAILED);
			else
				session_connect(w, s);
			return;
		}
		s->state = SESSION_RELAYING;
		session_unfile(w, s);
		s->active = ev_now(loop);
		wheel_file(w, s, IN_IDLE_WHEEL);
		session_update(w, s);
		return;
	}
	if ((revents & EV_WRITE) && s->c2s.len && half_drain(w, s, 1) == -1)
		return;
	if ((revents & EV_READ) && !(s->flags & (F_S2C_EOF | F_STARVED)) && s->s2c.len == 0 &&
	    half_move(w, s, 0) == -1)
		return;
	session_update(w, s);
}

/* Try servers until a connect is under way or the tries are spent. Returns -1
 * once the session is closed. */
static int
session_connect(struct worker *w, struct session *s)
{
	while (s->tries < RELAY_CONNECT_TRIES) {
		unsigned srv;
		int fd = upstream_connect(w, s->listener, s->tries ? s->server_idx : -1, &srv);

		s->tries++;
		s->server_idx = (uint16_t)srv;
		if (fd != -1) {
			ev_io_set(&s->server, fd, EV_WRITE);
			ev_io_start(w->loop, &s->server);
			/* The connect timeout runs from the latest attempt. */
			s->active = ev_now(w->loop);
			return 0;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* Our shortage, not the server's: stop taking clients we
			 * could not connect onwards either. */
			log_warn("connect to %s", upstream_name(w, s->listener, srv));
			worker_pause(w, WORKER_PAUSE_FDS, 1);
		}
		else
			log_info("connect to %s failed: %s", upstream_name(w, s->listener, srv),
			    strerror(errno));
		STATS_ADD(w->slot, connect_failures, 1);
	}
	relay_close(w, s, CLOSE_CONNECT_FAILED);
	return -1;
}

void
relay_start(struct worker *w, int fd, unsigned li)
{
	struct session *s = pool_get(w->sessions);

	STATS_ADD(w->slot, accepted, 1);
	if (s == NULL) {
		close(fd);
		STATS_ADD(w->slot, refused, 1);
		STATS_ADD(w->slot, closed, 1);
		return;
	}
	memset(s, 0, sizeof(*s));
	ev_io_init(&s->client, client_cb, fd, 0);
	s->client.data = s;
	ev_io_init(&s->server, server_cb, -1, 0);
	s->server.data = s;
	s->listener = (uint16_t)li;
	s->state = SESSION_CONNECTING;
	s->active = ev_now(w->loop);
	w->active++;
	STATS_SET(w->slot, active, w->active);
	wheel_file(w, s, IN_CONNECT_WHEEL);
	session_connect(w, s);
}

/* The one way out for a session: every error path ends here. */
static void
relay_close(struct worker *w, struct session *s, enum close_reason why)
{
	char *c2s, *s2c;

	log_debug("session closed: %s", close_names[why]);
	ev_io_stop(w->loop, &s->client);
	ev_io_stop(w->loop, &s->server);
	close(s->client.fd);
	if (s->server.fd != -1)
		close(s->server.fd);
	session_unfile(w, s);
	c2s = s2c = NULL;
	if (s->c2s.len != 0) {
		if (s->flags & F_C2S_SPLICE)
			pipe_put(w, s->c2s.pipe, 0);
		else
			c2s = s->c2s.buf;
	}
	if (s->s2c.len != 0) {
		if (s->flags & F_S2C_SPLICE)
			pipe_put(w, s->s2c.pipe, 0);
		else
			s2c = s->s2c.buf;
	}
	pool_put(w->sessions, s);
	w->active--;
	STATS_SET(w->slot, active, w->active);
	STATS_ADD(w->slot, closed, 1);
	/* Buffers go back last: giving one back may wake a starved session. */
	if (c2s != NULL)
		buffer_put(w, c2s);
	if (s2c != NULL)
		buffer_put(w, s2c);
	worker_session_closed(w);
}

void
relay_close_all(struct worker *w)
{
	struct wheel *wheels[] = { &w->connect_wheel, &w->idle_wheel };

	for (unsigned i = 0; i < 2; i++)
		for (unsigned k = 0; k < WHEEL_SLOTS; k++)
			while (wheels[i]->slot[k] != NULL)
				relay_close(w, wheels[i]->slot[k], CLOSE_SHUTDOWN);
	while (w->starved != NULL)
		relay_close(w, w->starved, CLOSE_SHUTDOWN);
}

void
relay_init(struct worker *w)
{
	wheel_init(&w->connect_wheel, w->conf->connect_timeout_ms);
	wheel_init(&w->idle_wheel, w->conf->idle_timeout_ms);
	w->starved = NULL;
}
