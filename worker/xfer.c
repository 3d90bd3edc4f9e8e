/* SPDX-License-Identifier: BSD-2-Clause */
/* xfer.c — the byte mover (see xfer.h). Runs in a worker's loop. A byte
 * crosses user space at most once (the buffer path) or never (splice); a
 * buffer or pipe is held only while bytes wait in it. Never closes a
 * session: every outcome is reported to relay.c. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "pool.h"
#include "session.h"
#include "sio.h"
#include "stats.h"
#include "worker.h"
#include "xfer.h"

#define XFER_READS_PER_EVENT 4

/* The direction's source and destination sides (sio.h). */
#define SRC(c2s) ((c2s) ? SIO_CLIENT : SIO_SERVER)
#define DST(c2s) ((c2s) ? SIO_SERVER : SIO_CLIENT)

/* The error of the direction's source or destination, as a report. */
static enum xfer_result
src_error(int c2s)
{
	return c2s ? XFER_CLIENT_ERROR : XFER_SERVER_ERROR;
}

static enum xfer_result
dst_error(int c2s)
{
	return c2s ? XFER_SERVER_ERROR : XFER_CLIENT_ERROR;
}

/* The connection log says which side closed first. */
static void
mark_eof(struct session *s, int c2s)
{
	if (!c2s && !(s->flags & F_C2S_EOF))
		s->flags |= F_S2C_FIRST;
	s->flags |= c2s ? F_C2S_EOF : F_S2C_EOF;
}

/* The direction's source sent EOF and nothing is pending: pass the FIN on.
 * When the other direction is shut already, the session closes as soon as
 * this returns (session_update) and close(2) sends the same FIN: each side's
 * EOF has been read, so no unread byte turns it into a reset. One system
 * call per relayed connection saved. */
static enum xfer_result
half_shut(struct session *s, int c2s)
{
	int dst = c2s ? s->sfd : s->cfd;

	s->flags |= c2s ? F_C2S_SHUT : F_S2C_SHUT;
	if (s->flags & (c2s ? F_S2C_SHUT : F_C2S_SHUT))
		return XFER_OK;
	if (shutdown(dst, SHUT_WR) == -1 && errno != ENOTCONN)
		return dst_error(c2s);
	return XFER_OK;
}

/* Three relaxed stores to lines only this worker writes: slot, listener row
 * and server row. No lock, no syscall. */
static void
count_bytes(struct worker *w, struct session *s, int c2s, size_t n)
{
	struct session_tail *t = session_tail_of(w, s);

	if (t != NULL) {
		if (c2s)
			t->bytes_in += n;
		else
			t->bytes_out += n;
	}
	if (c2s) {
		STATS_ADD(w->slot, bytes_in, n);
		STATS_ROW_ADD(w->lstats[s->listener], bytes_in, n);
		STATS_ROW_ADD(session_server_stats(w, s), bytes_in, n);
	} else {
		STATS_ADD(w->slot, bytes_out, n);
		STATS_ROW_ADD(w->lstats[s->listener], bytes_out, n);
		STATS_ROW_ADD(session_server_stats(w, s), bytes_out, n);
	}
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
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1)
		return -1;
	/* A larger pipe moves more per splice; refused (over
	 * /proc/sys/fs/pipe-max-size for an unprivileged user) is harmless. */
	(void)fcntl(p[1], F_SETPIPE_SZ, XFER_SPLICE_CHUNK);
	return 0;
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

static enum xfer_result
half_splice(struct worker *w, struct session *s, int c2s)
{
	int src = c2s ? s->cfd : s->sfd;
	int dst = c2s ? s->sfd : s->cfd;
	struct half *h = c2s ? &s->c2s : &s->s2c;

	for (int i = 0; i < XFER_READS_PER_EVENT; i++) {
		ssize_t n, m;

		if (pipe_get(w, h->pipe) == -1) {
			/* Out of descriptors: this event goes through a buffer. */
			s->flags &= ~(c2s ? F_C2S_SPLICE : F_S2C_SPLICE);
			return XFER_OK;
		}
		n = splice(src, NULL, h->pipe[1], NULL, XFER_SPLICE_CHUNK,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n <= 0) {
			pipe_put(w, h->pipe, 1);
			if (n == 0) {
				sio_dry(s, SRC(c2s), SIO_R);
				mark_eof(s, c2s);
				return half_shut(s, c2s);
			}
			/* A short splice proves nothing (the pipe may be what
			 * was short): only EAGAIN says the socket is dry. */
			if (errno == EAGAIN)
				sio_dry(s, SRC(c2s), SIO_R);
			if (errno == EAGAIN || errno == EINTR)
				return XFER_OK;
			return src_error(c2s);
		}
		s->active = w->now;
		m = splice(h->pipe[0], NULL, dst, NULL, (size_t)n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (m == -1) {
			if (errno != EAGAIN && errno != EINTR) {
				int err = errno;

				/* Not pending (len stays 0): the pipe goes now. */
				pipe_put(w, h->pipe, 0);
				errno = err;
				return dst_error(c2s);
			}
			if (errno == EAGAIN)
				sio_dry(s, DST(c2s), SIO_W);
			m = 0;
		}
		count_bytes(w, s, c2s, (size_t)m);
		if (m < n) {
			h->off = 0;
			h->len = (uint32_t)(n - m);
			return XFER_OK;
		}
		pipe_put(w, h->pipe, 1);
		if (n < XFER_SPLICE_CHUNK)
			return XFER_OK;
	}
	return XFER_OK;
}

static enum xfer_result
half_splice_flush(struct worker *w, struct session *s, int c2s)
{
	int dst = c2s ? s->sfd : s->cfd;
	struct half *h = c2s ? &s->c2s : &s->s2c;
	ssize_t m;

	m = splice(h->pipe[0], NULL, dst, NULL, h->len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (m == -1) {
		if (errno == EAGAIN)
			sio_dry(s, DST(c2s), SIO_W);
		if (errno == EAGAIN || errno == EINTR)
			return XFER_OK;
		return dst_error(c2s);
	}
	s->active = w->now;
	count_bytes(w, s, c2s, (size_t)m);
	h->len -= (uint32_t)m;
	if (h->len > 0)
		return XFER_OK;
	pipe_put(w, h->pipe, 1);
	if (s->flags & (c2s ? F_C2S_EOF : F_S2C_EOF))
		return half_shut(s, c2s);
	return XFER_OK;
}

/* --- the buffer path ------------------------------------------------------
 * A read goes into a small buffer (pool.buffer_size) until one fills it; the
 * session then reads into a bulk buffer (pool.bulk_buffer_size, 32K) while
 * they fill, and back into small ones when a read comes up short: 8 times
 * fewer read/send pairs per byte of bulk, and a stalled peer of a chatty
 * connection still pins only a small buffer. Either kind is held only while
 * bytes wait in it. When one pool is spent the other is tried, so a session
 * starves only when both are. */

static char *
pool_get_if(struct pool *p)
{
	return p != NULL ? pool_get(p) : NULL;
}

static char *
buffer_get(struct worker *w, struct session *s, size_t *cap)
{
	char *buf;

	if ((s->flags & F_BULK) && (buf = pool_get_if(w->bulk)) != NULL) {
		*cap = w->conf->bulk_buffer_size;
		return buf;
	}
	if ((buf = pool_get(w->buffers)) != NULL) {
		*cap = w->buffer_size;
		return buf;
	}
	if ((buf = pool_get_if(w->bulk)) != NULL)
		*cap = w->conf->bulk_buffer_size;
	return buf;
}

/* Read from the direction's source and write straight on. Bytes the
 * destination cannot take stay in the pooled buffer they were read into;
 * otherwise the buffer goes back at once. */
static enum xfer_result
half_pump(struct worker *w, struct session *s, int c2s)
{
	int src = c2s ? s->cfd : s->sfd;
	int dst = c2s ? s->sfd : s->cfd;
	struct half *h = c2s ? &s->c2s : &s->s2c;

	for (int i = 0; i < XFER_READS_PER_EVENT; i++) {
		size_t cap;
		char *buf = buffer_get(w, s, &cap);
		ssize_t n, m;

		if (buf == NULL)
			return XFER_STARVED;
		n = read(src, buf, cap);
		/* A short read took all there was: a stream socket's read
		 * gathers every queued byte up to cap, and bytes that come
		 * after it bring an edge of their own. */
		if (n == 0 || (n == -1 && errno == EAGAIN) || (n > 0 && (size_t)n < cap))
			sio_dry(s, SRC(c2s), SIO_R);
		if (n <= 0) {
			int err = errno;

			pool_put(pool_owns(w->bulk, buf) ? w->bulk : w->buffers, buf);
			if (n == 0) {
				mark_eof(s, c2s);
				return half_shut(s, c2s);
			}
			if (err == EAGAIN || err == EINTR)
				return XFER_OK;
			log_debug("session %s read: %s", c2s ? "client" : "server", strerror(err));
			errno = err;
			return src_error(c2s);
		}
		s->active = w->now;
		if ((size_t)n < cap && w->conf->batch_writes) {
			/* pool.batch_writes: a short read (a message, not bulk)
			 * waits in its buffer and is written from sio.c's queue
			 * once this wake-up's other reads are done (the
			 * destination waits for writing, and is ready). A send
			 * wakes its reader, which on a busy machine takes the
			 * CPU from the reads still to do; HAProxy's tasks run
			 * in this order too. It halves the rr tail on a loaded
			 * 2-core machine and costs about 12% more CPU per
			 * message, as the worker more often finds nothing left
			 * to read and sleeps (doc/design-notes.md). */
			if ((size_t)n < w->buffer_size)
				s->flags &= ~F_BULK; /* the bulk went quiet */
			h->buf = buf;
			h->off = 0;
			h->len = (uint32_t)n;
			return XFER_OK;
		}
		m = send(dst, buf, (size_t)n, MSG_NOSIGNAL);
		if (m == -1) {
			if (errno != EAGAIN && errno != EINTR) {
				int err = errno;

				pool_put(pool_owns(w->bulk, buf) ? w->bulk : w->buffers, buf);
				errno = err;
				return dst_error(c2s);
			}
			if (errno == EAGAIN)
				sio_dry(s, DST(c2s), SIO_W);
			m = 0;
		} else if (m < n) {
			/* A short send filled the socket's buffer (and asked the
			 * kernel for an edge when it has room again). */
			sio_dry(s, DST(c2s), SIO_W);
		}
		count_bytes(w, s, c2s, (size_t)m);
		if (m < n) {
			h->buf = buf;
			h->off = (uint32_t)m;
			h->len = (uint32_t)n;
			return XFER_OK;
		}
		relay_buffer_put(w, buf);
		if ((size_t)n < cap) {
			if ((size_t)n < w->buffer_size)
				s->flags &= ~F_BULK; /* the bulk went quiet */
			return XFER_OK; /* short read: the socket is very likely drained */
		}
		if (w->conf->splice) {
			/* A full buffer: bulk data. Splice from now on. */
			s->flags |= c2s ? F_C2S_SPLICE : F_S2C_SPLICE;
			return half_splice(w, s, c2s);
		}
		s->flags |= F_BULK;
	}
	return XFER_OK;
}

/* Write pending bytes of a direction; when they are all out, give the buffer
 * back and pass on an EOF that waited for them. */
static enum xfer_result
half_flush(struct worker *w, struct session *s, int c2s)
{
	int dst = c2s ? s->sfd : s->cfd;
	struct half *h = c2s ? &s->c2s : &s->s2c;
	ssize_t m;
	char *buf;

	m = send(dst, h->buf + h->off, h->len - h->off, MSG_NOSIGNAL);
	if (m == -1) {
		if (errno == EAGAIN)
			sio_dry(s, DST(c2s), SIO_W);
		if (errno == EAGAIN || errno == EINTR)
			return XFER_OK;
		return dst_error(c2s);
	}
	if ((uint32_t)m < h->len - h->off)
		sio_dry(s, DST(c2s), SIO_W);
	s->active = w->now;
	count_bytes(w, s, c2s, (size_t)m);
	h->off += (uint32_t)m;
	if (h->off < h->len)
		return XFER_OK;
	buf = h->buf;
	h->buf = NULL;
	h->off = h->len = 0;
	relay_buffer_put(w, buf);
	if (s->flags & (c2s ? F_C2S_EOF : F_S2C_EOF))
		return half_shut(s, c2s);
	return XFER_OK;
}

/* A direction relays by splice once it has seen bulk data, else through a
 * buffer; pending bytes sit in a pipe exactly when the splice flag is set. */
enum xfer_result
xfer_move(struct worker *w, struct session *s, int c2s)
{
	if (s->flags & (c2s ? F_C2S_SPLICE : F_S2C_SPLICE))
		return half_splice(w, s, c2s);
	return half_pump(w, s, c2s);
}

enum xfer_result
xfer_drain(struct worker *w, struct session *s, int c2s)
{
	if (s->flags & (c2s ? F_C2S_SPLICE : F_S2C_SPLICE))
		return half_splice_flush(w, s, c2s);
	return half_flush(w, s, c2s);
}

void
xfer_release(struct worker *w, struct session *s, char **c2s_buf, char **s2c_buf)
{
	*c2s_buf = *s2c_buf = NULL;
	if (s->c2s.len != 0) {
		if (s->flags & F_C2S_SPLICE)
			pipe_put(w, s->c2s.pipe, 0);
		else
			*c2s_buf = s->c2s.buf;
	}
	if (s->s2c.len != 0) {
		if (s->flags & F_S2C_SPLICE)
			pipe_put(w, s->s2c.pipe, 0);
		else
			*s2c_buf = s->s2c.buf;
	}
	s->c2s.len = s->s2c.len = 0;
}
