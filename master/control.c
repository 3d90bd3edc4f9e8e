/* SPDX-License-Identifier: BSD-2-Clause */
/* control.c — the master's control socket. One command per connection: the
 * client writes a line, the master answers with a status line ("ok" or
 * "error: REASON") and a body (text, or JSON when the line starts with
 * "json"), then closes. Everything is non-blocking and bounded: at most
 * CTL_CLIENTS clients, a line of at most CTL_LINE_MAX bytes, a deadline per
 * client, answers written as the client reads them. Commands about sessions
 * ask every worker over its command socketpair (worker/command.c), one
 * request at a time, and answer once all have replied or their deadline
 * passed. Runs in the master only. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "config.h"
#include "conf.h"
#include "control.h"
#include "log.h"
#include "master.h"
#include "stats.h"

#define CTL_CLIENTS 16           /* connected at once; more are told "busy" */
#define CTL_LINE_MAX 1024        /* a command line, newline included */
#define CTL_DEADLINE 10.0        /* seconds a client may take, answer included */
#define CTL_RELOAD_DEADLINE 60.0 /* ... when it waits for a reload or undrain */
#define CTL_WORKER_DEADLINE 5.0  /* seconds every worker has to answer */
#define CTL_REPLY_MAX (64u << 20) /* bytes a worker's answer may have */
#define CTL_ACCEPT_PAUSE 1.0      /* seconds without accepting after an accept error */
#define CTL_STATE_VERSION "# sluice server-state 1"

/* A growing text buffer, for answers. */
struct buf {
	char *p;
	size_t len, cap;
	int failed; /* out of memory or past a bound: cut */
};

static void __attribute__((format(printf, 2, 3)))
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		char *p;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if (b->p != NULL && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap ? b->cap : 4096;

			while (cap - b->len <= (size_t)n)
				cap *= 2;
			if ((p = realloc(b->p, cap)) == NULL) {
				b->failed = 1;
				return;
			}
			b->p = p;
			b->cap = cap;
		}
	}
}

/* s as a JSON string, quotes included. */
static void
buf_json_str(struct buf *b, const char *s)
{
	buf_printf(b, "\"");
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			buf_printf(b, "\\%c", ch);
		else if (ch < 0x20)
			buf_printf(b, "\\u%04x", ch);
		else
			buf_printf(b, "%c", ch);
	}
	buf_printf(b, "\"");
}

enum wait_kind { WAIT_NONE, WAIT_RELOAD, WAIT_UNDRAIN, WAIT_UPGRADE, WAIT_WORKERS, WAIT_WRITE };

struct client {
	int fd; /* -1: the entry is free */
	ev_io io;
	ev_timer deadline;
	char in[CTL_LINE_MAX];
	size_t inlen;
	struct buf out;
	size_t outoff;
	int json;
	enum wait_kind wait;
	uint64_t ticket; /* WAIT_RELOAD: answered by a reload numbered above it */
	/* WAIT_WORKERS: the request to send every worker, and what to make of
	 * the answers. */
	char verb[4];
	unsigned arg_server, arg_listener, only_slot;
	int arg_worker;       /* index filter, -1: any */
	char arg_client[64];  /* client address filter, "": any */
	struct client *next_waiting;
};

/* One worker's command socket, and what it answers to the request under way. */
struct wsock {
	int fd; /* -1: none */
	ev_io io;
	int asked;        /* the request under way was sent to it and not answered */
	char head[48];    /* "REQID LENGTH\n" as it comes in */
	size_t headlen;
	uint64_t want;    /* body bytes still to come, of the answer being read */
	int keep;         /* the answer being read is for the request under way */
	struct buf body;
};

static struct {
	struct ev_loop *loop;
	struct stats_seg *seg;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *state_file;
	ev_io accept_w;
	struct client clients[CTL_CLIENTS];
	struct wsock workers[STATS_SLOTS];
	/* The request to the workers under way, and those waiting for it. */
	struct client *asking;
	struct client *queue, **queue_tail;
	unsigned reqid;
	ev_timer worker_deadline;
	ev_timer accept_resume; /* accepting paused after an error (descriptors) */
} ctl = { .fd = -1 };

static void client_write(struct client *);
static void ask_next(void);
static void asking_end(struct client *);

/* --- the socket ------------------------------------------------------------ */

int
control_open(const struct conf *c, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd;

	for (unsigned i = 0; i < STATS_SLOTS; i++)
		ctl.workers[i].fd = -1;
	for (unsigned i = 0; i < CTL_CLIENTS; i++)
		ctl.clients[i].fd = -1;
	if (c->control_socket == NULL)
		return 0;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", c->control_socket);
	/* We hold the pid file's lock: a socket left there is a dead master's.
	 * Anything else there is not ours to remove. */
	if (lstat(c->control_socket, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "control socket %s: exists and is not a socket",
			    c->control_socket);
			return -1;
		}
		unlink(c->control_socket);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "control socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(c->control_socket, (mode_t)c->control_mode) == -1 ||
	    (c->control_group != NULL && chown(c->control_socket, (uid_t)-1, c->control_gid) == -1) ||
	    listen(fd, 16) == -1) {
		snprintf(err, errlen, "control socket %s: %s", c->control_socket, strerror(errno));
		close(fd);
		return -1;
	}
	ctl.fd = fd;
	snprintf(ctl.path, sizeof(ctl.path), "%s", c->control_socket);
	if (c->state_file != NULL && (ctl.state_file = strdup(c->state_file)) == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		ctl.fd = -1;
		return -1;
	}
	return 0;
}

void
control_child_forget(int keep)
{
	/* The child goes on with the master's loop: our watchers leave it
	 * before their descriptors close (the numbers will be reused). */
	if (ctl.loop != NULL) {
		ev_io_stop(ctl.loop, &ctl.accept_w);
		ev_timer_stop(ctl.loop, &ctl.worker_deadline);
		ev_timer_stop(ctl.loop, &ctl.accept_resume);
	}
	if (ctl.fd != -1)
		close(ctl.fd);
	ctl.fd = -1;
	for (unsigned i = 0; i < CTL_CLIENTS; i++) {
		struct client *cl = &ctl.clients[i];

		if (cl->fd == -1)
			continue;
		ev_io_stop(ctl.loop, &cl->io);
		ev_timer_stop(ctl.loop, &cl->deadline);
		close(cl->fd);
		cl->fd = -1;
	}
	for (unsigned i = 0; i < STATS_SLOTS; i++) {
		struct wsock *ws = &ctl.workers[i];

		if (ws->fd == -1)
			continue;
		if (ctl.loop != NULL)
			ev_io_stop(ctl.loop, &ws->io);
		if (ws->fd != keep)
			close(ws->fd);
		ws->fd = -1;
	}
}

/* --- the state file -------------------------------------------------------- *
 * Lines "server UPSTREAM ADDRESS STATE WEIGHT" (WEIGHT "-" for the config's)
 * for every server whose admin record is not the default, written whole to a
 * temporary file and renamed over the old one, so a crash leaves one or the
 * other. */

static void
state_save(void)
{
	const struct stats_seg *seg = ctl.seg;
	char tmp[4096];
	FILE *fp;
	int fd;

	if (ctl.state_file == NULL)
		return;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", ctl.state_file) >= sizeof(tmp))
		return;
	if ((fd = mkstemp(tmp)) == -1 || (fp = fdopen(fd, "w")) == NULL) {
		log_warn("cannot write the state file %s", ctl.state_file);
		if (fd != -1) {
			close(fd);
			unlink(tmp);
		}
		return;
	}
	fprintf(fp, "%s\n", CTL_STATE_VERSION);
	for (unsigned r = 0; r < seg->servers_used; r++) {
		struct stats_server_admin a = stats_admin_get(seg, r);

		if (a.state == STATS_ADMIN_READY && a.weight == STATS_WEIGHT_CONFIG)
			continue;
		if (a.weight == STATS_WEIGHT_CONFIG)
			fprintf(fp, "server %s %s %s -\n", seg->servers[r].upstream,
			    seg->servers[r].address, stats_admin_name(a.state));
		else
			fprintf(fp, "server %s %s %s %" PRIu32 "\n", seg->servers[r].upstream,
			    seg->servers[r].address, stats_admin_name(a.state), a.weight);
	}
	if (fflush(fp) != 0 || fsync(fd) != 0 || fclose(fp) != 0) {
		log_warn("cannot write the state file %s", ctl.state_file);
		unlink(tmp);
		return;
	}
	if (rename(tmp, ctl.state_file) == -1) {
		log_warn("cannot replace the state file %s", ctl.state_file);
		unlink(tmp);
	}
}

/* The row of server ADDRESS (as written in the config) of UPSTREAM in the
 * running config, or STATS_NO_ROW. */
static unsigned
server_row(const char *upstream, const char *address)
{
	const struct conf *c = master_conf();
	const uint16_t *rows = master_server_rows();
	unsigned k = 0;

	for (unsigned u = 0; u < c->nupstreams; u++)
		for (unsigned i = 0; i < c->upstreams[u].nservers; i++, k++)
			if (strcmp(c->upstreams[u].name, upstream) == 0 &&
			    strcmp(c->upstreams[u].servers[i].address, address) == 0)
				return rows != NULL ? rows[k] : STATS_NO_ROW;
	return STATS_NO_ROW;
}

static void
state_load(void)
{
	char line[512], up[STATS_NAME_MAX], addr[STATS_ADDR_MAX], state[16], weight[16];
	unsigned lineno = 0, applied = 0;
	FILE *fp;

	if (ctl.state_file == NULL)
		return;
	if ((fp = fopen(ctl.state_file, "r")) == NULL) {
		if (errno != ENOENT)
			log_warn("cannot read the state file %s", ctl.state_file);
		return;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		unsigned row;
		int st;
		char *end;
		unsigned long wt = STATS_WEIGHT_CONFIG;

		lineno++;
		if (lineno == 1) {
			if (strncmp(line, CTL_STATE_VERSION, strlen(CTL_STATE_VERSION)) != 0) {
				log_warnx("%s: not a state file this version knows; ignoring it",
				    ctl.state_file);
				break;
			}
			continue;
		}
		if (sscanf(line, "server %63s %127s %15s %15s", up, addr, state, weight) != 4 ||
		    (st = stats_admin_parse(state)) == -1) {
			log_warnx("%s:%u: unreadable line; ignoring it", ctl.state_file, lineno);
			continue;
		}
		if (strcmp(weight, "-") != 0) {
			errno = 0;
			wt = strtoul(weight, &end, 10);
			if (*end != '\0' || errno != 0 || wt > 256) {
				log_warnx("%s:%u: bad weight; ignoring the line", ctl.state_file, lineno);
				continue;
			}
		}
		if ((row = server_row(up, addr)) == STATS_NO_ROW) {
			log_info("%s:%u: server %s/%s is not in the configuration; dropping its state",
			    ctl.state_file, lineno, up, addr);
			continue;
		}
		stats_admin_set(ctl.seg, row, (uint32_t)st, (uint32_t)wt);
		applied++;
	}
	fclose(fp);
	if (applied > 0)
		log_notice("applied %u server states from %s", applied, ctl.state_file);
}

/* --- clients --------------------------------------------------------------- */

static void
client_free(struct client *cl)
{
	struct client **pp;

	if (cl->fd == -1)
		return;
	ev_io_stop(ctl.loop, &cl->io);
	ev_timer_stop(ctl.loop, &cl->deadline);
	close(cl->fd);
	cl->fd = -1;
	free(cl->out.p);
	memset(&cl->out, 0, sizeof(cl->out));
	for (pp = &ctl.queue; *pp != NULL; pp = &(*pp)->next_waiting)
		if (*pp == cl) {
			*pp = cl->next_waiting;
			break;
		}
	ctl.queue_tail = &ctl.queue;
	while (*ctl.queue_tail != NULL)
		ctl.queue_tail = &(*ctl.queue_tail)->next_waiting;
	cl->wait = WAIT_NONE;
	/* Its request to the workers, if under way, ends unanswered. */
	if (ctl.asking == cl)
		asking_end(NULL);
}

static void
write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	client_write(io->data);
}

/* Write the answer; free the client once it is all out. */
static void
client_write(struct client *cl)
{
	cl->wait = WAIT_WRITE;
	while (cl->outoff < cl->out.len) {
		ssize_t n = send(cl->fd, cl->out.p + cl->outoff, cl->out.len - cl->outoff,
		    MSG_NOSIGNAL);

		if (n > 0) {
			cl->outoff += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_stop(ctl.loop, &cl->io);
			ev_io_init(&cl->io, write_cb, cl->fd, EV_WRITE);
			cl->io.data = cl;
			ev_io_start(ctl.loop, &cl->io);
			return;
		}
		break;
	}
	client_free(cl);
}

/* Answer: status line, then body (may be empty). */
static void
reply(struct client *cl, const char *body)
{
	buf_printf(&cl->out, "ok\n%s", body != NULL ? body : "");
	if (cl->out.failed) {
		free(cl->out.p);
		memset(&cl->out, 0, sizeof(cl->out));
		buf_printf(&cl->out, "error: out of memory\n");
	}
	client_write(cl);
}

static void __attribute__((format(printf, 2, 3)))
reply_error(struct client *cl, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	free(cl->out.p);
	memset(&cl->out, 0, sizeof(cl->out));
	buf_printf(&cl->out, "error: %s\n", why);
	client_write(cl);
}

static void
deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct client *cl = t->data;

	switch (cl->wait) {
	case WAIT_RELOAD:
	case WAIT_UNDRAIN:
	case WAIT_UPGRADE:
		reply_error(cl, "no outcome within %.0fs; the %s may still be under way "
		                "(see the log and `show info`)", CTL_RELOAD_DEADLINE,
		    cl->wait == WAIT_UPGRADE ? "upgrade" : "reload");
		break;
	case WAIT_WORKERS:
		reply_error(cl, "the workers did not answer in time");
		break;
	default:
		/* Silent or slow: let it go. */
		client_free(cl);
		break;
	}
}

/* --- asking the workers ---------------------------------------------------- */

static void
wsock_reset_answer(struct wsock *ws)
{
	ws->headlen = 0;
	ws->want = 0;
	ws->keep = 0;
	free(ws->body.p);
	memset(&ws->body, 0, sizeof(ws->body));
}

static int
asked_left(void)
{
	int n = 0;

	for (unsigned i = 0; i < STATS_SLOTS; i++)
		n += ctl.workers[i].fd != -1 && ctl.workers[i].asked;
	return n;
}

static void answer_workers(struct client *);

/* The request under way is over: every worker answered, its time ran out,
 * or its client left (cl NULL). Answer the client with what came, forget
 * the answers, and send the next request. Late answers to this one are read
 * and dropped (their REQID is old). */
static void
asking_end(struct client *cl)
{
	ev_timer_stop(ctl.loop, &ctl.worker_deadline);
	ctl.asking = NULL;
	if (cl != NULL)
		answer_workers(cl);
	for (unsigned i = 0; i < STATS_SLOTS; i++) {
		struct wsock *ws = &ctl.workers[i];

		ws->asked = 0;
		if (ws->keep == 1 && ws->want > 0)
			ws->keep = 0; /* the rest of a late answer is dropped */
		if (ws->keep == 2)
			ws->keep = 0;
		if (ws->keep == 0) {
			free(ws->body.p);
			memset(&ws->body, 0, sizeof(ws->body));
		}
	}
	ask_next();
}

static void
asking_done(void)
{
	asking_end(ctl.asking);
}

static void
worker_deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	log_warnx("control: %d workers did not answer within %.0fs", asked_left(),
	    CTL_WORKER_DEADLINE);
	asking_done();
}

static void
wsock_close(unsigned slot)
{
	struct wsock *ws = &ctl.workers[slot];

	if (ws->fd == -1)
		return;
	ev_io_stop(ctl.loop, &ws->io);
	close(ws->fd);
	ws->fd = -1;
	ws->asked = 0;
	wsock_reset_answer(ws);
}

static void
wsock_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct wsock *ws = io->data;
	char tmp[65536];
	ssize_t n;

	n = read(ws->fd, tmp, sizeof(tmp));
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		unsigned s = (unsigned)(ws - ctl.workers);

		wsock_close(s);
		if (ctl.asking != NULL && asked_left() == 0)
			asking_done();
		return;
	}
	if (n < 0)
		return;
	for (ssize_t i = 0; i < n;) {
		if (ws->want == 0 && !(ws->headlen > 0 && ws->head[ws->headlen - 1] == '\n')) {
			/* The header, byte by byte up to its newline. */
			char ch = tmp[i++];
			unsigned id;
			unsigned long long len;

			if (ws->headlen == sizeof(ws->head) - 1) {
				log_warnx("control: a worker's answer is unreadable; closing its "
				          "command socket");
				wsock_close((unsigned)(ws - ctl.workers));
				return;
			}
			ws->head[ws->headlen++] = ch;
			if (ch != '\n')
				continue;
			ws->head[ws->headlen] = '\0';
			if (sscanf(ws->head, "%u %llu", &id, &len) != 2 || len > CTL_REPLY_MAX) {
				log_warnx("control: a worker's answer is unreadable; closing its "
				          "command socket");
				wsock_close((unsigned)(ws - ctl.workers));
				return;
			}
			ws->keep = ws->asked && id == ctl.reqid;
			ws->want = len;
			free(ws->body.p);
			memset(&ws->body, 0, sizeof(ws->body));
			if (len == 0)
				goto complete;
			continue;
		}
		{
			size_t take = (size_t)n - (size_t)i;

			if (take > ws->want)
				take = (size_t)ws->want;
			if (ws->keep)
				buf_printf(&ws->body, "%.*s", (int)take, tmp + i);
			i += (ssize_t)take;
			ws->want -= take;
			if (ws->want > 0)
				continue;
		}
complete:
		ws->headlen = 0;
		if (ws->keep) {
			ws->asked = 0;
			ws->keep = 0;
			/* The body stays until the answer is made. */
			ws->keep = 2;
			if (ctl.asking != NULL && asked_left() == 0)
				asking_done();
		}
	}
}

int
control_worker_pair(unsigned slot, int *child_fd)
{
	int sv[2];

	*child_fd = -1;
	if (ctl.fd == -1 || slot >= STATS_SLOTS)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("control: command socket for the worker of slot %u", slot);
		return -1;
	}
	wsock_close(slot);
	ctl.workers[slot].fd = sv[0];
	*child_fd = sv[1];
	return 0;
}

void
control_worker_forked(unsigned slot, int child_fd)
{
	struct wsock *ws;

	if (child_fd != -1)
		close(child_fd);
	if (slot >= STATS_SLOTS || (ws = &ctl.workers[slot])->fd == -1)
		return;
	ev_io_init(&ws->io, wsock_cb, ws->fd, EV_READ);
	ws->io.data = ws;
	ev_io_start(ctl.loop, &ws->io);
}

void
control_worker_failed(unsigned slot, int child_fd)
{
	if (child_fd != -1)
		close(child_fd);
	if (slot < STATS_SLOTS)
		wsock_close(slot);
}

void
control_worker_gone(unsigned slot)
{
	if (slot >= STATS_SLOTS)
		return;
	wsock_close(slot);
	if (ctl.asking != NULL && asked_left() == 0)
		asking_done();
}

/* Send the first waiting client's request to the workers. */
static void
ask_next(void)
{
	struct client *cl;
	char line[96];
	unsigned asked = 0;

	while (ctl.asking == NULL && (cl = ctl.queue) != NULL) {
		ctl.queue = cl->next_waiting;
		if (ctl.queue == NULL)
			ctl.queue_tail = &ctl.queue;
		cl->next_waiting = NULL;
		ctl.reqid++;
		if (strcmp(cl->verb, "L") == 0)
			snprintf(line, sizeof(line), "%u L %u %u\n", ctl.reqid, cl->arg_server,
			    cl->arg_listener);
		else if (strcmp(cl->verb, "KS") == 0)
			snprintf(line, sizeof(line), "%u KS %u\n", ctl.reqid, cl->arg_server);
		else
			snprintf(line, sizeof(line), "%u K %s\n", ctl.reqid, cl->arg_client);
		for (unsigned i = 0; i < STATS_SLOTS; i++) {
			struct wsock *ws = &ctl.workers[i];
			pid_t pid;
			uint32_t gen;
			unsigned index;

			ws->asked = 0;
			if (ws->fd == -1 || master_child_info(i, &pid, &gen, &index) == -1)
				continue;
			if (cl->only_slot != STATS_NO_ROW && i != cl->only_slot)
				continue;
			if (cl->arg_worker >= 0 && index != (unsigned)cl->arg_worker)
				continue;
			/* A line this short goes whole into an empty socket
			 * buffer, and ours hold no more than one request. */
			if (send(ws->fd, line, strlen(line), MSG_NOSIGNAL) != (ssize_t)strlen(line)) {
				log_warn("control: asking the worker of slot %u", i);
				continue;
			}
			ws->asked = 1;
			asked++;
		}
		if (asked == 0) {
			/* No worker to ask: the answer is an empty one. */
			answer_workers(cl);
			continue;
		}
		ctl.asking = cl;
		ev_timer_set(&ctl.worker_deadline, CTL_WORKER_DEADLINE, 0.);
		ev_timer_start(ctl.loop, &ctl.worker_deadline);
	}
}

static void
ask_workers(struct client *cl)
{
	cl->wait = WAIT_WORKERS;
	cl->next_waiting = NULL;
	*ctl.queue_tail = cl;
	ctl.queue_tail = &cl->next_waiting;
	ask_next();
}

/* Text of row r of the server directory: "UPSTREAM/ADDRESS", or "-". */
static void
server_text(unsigned r, char *buf, size_t len)
{
	if (r >= ctl.seg->servers_used)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%s/%s", ctl.seg->servers[r].upstream, ctl.seg->servers[r].address);
}

/* The host part of a client address text: "1.2.3.4:5" -> "1.2.3.4",
 * "[::1]:5" -> "::1". */
static void
host_of(const char *addr, char *buf, size_t len)
{
	const char *end;

	if (addr[0] == '[' && (end = strchr(addr, ']')) != NULL) {
		snprintf(buf, len, "%.*s", (int)(end - addr - 1), addr + 1);
		return;
	}
	end = strrchr(addr, ':');
	snprintf(buf, len, "%.*s", end ? (int)(end - addr) : (int)strlen(addr), addr);
}

static void
answer_sessions(struct client *cl, struct buf *b)
{
	unsigned count = 0;

	if (cl->json)
		buf_printf(b, "{\"sessions\":[");
	else
		buf_printf(b, "%-10s %-6s %-4s %-22s %-22s %-30s %9s %9s %12s %12s %s\n", "id",
		    "worker", "gen", "client", "listener", "server", "age_s", "idle_s", "bytes_in",
		    "bytes_out", "state");
	for (unsigned i = 0; i < STATS_SLOTS; i++) {
		struct wsock *ws = &ctl.workers[i];
		pid_t pid;
		uint32_t gen;
		unsigned index;
		char *line, *save = NULL;

		if (ws->keep != 2 || ws->body.p == NULL)
			continue;
		if (master_child_info(i, &pid, &gen, &index) == -1)
			continue;
		for (line = strtok_r(ws->body.p, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			char id[32], client[80], host[80], state[24], stext[STATS_NAME_MAX + STATS_ADDR_MAX];
			unsigned lrow, srow;
			unsigned long long age, idle, bin, bout;
			const char *ltext;

			if (sscanf(line, "%31s %79s %u %u %llu %llu %llu %llu %23s", id, client, &lrow,
			        &srow, &age, &idle, &bin, &bout, state) != 9)
				continue;
			host_of(client, host, sizeof(host));
			if (cl->arg_client[0] != '\0' && strcmp(host, cl->arg_client) != 0)
				continue;
			ltext = lrow < ctl.seg->listeners_used ? ctl.seg->listeners[lrow].address : "-";
			server_text(srow, stext, sizeof(stext));
			if (cl->json) {
				buf_printf(b, "%s{\"id\":", count ? "," : "");
				buf_json_str(b, id);
				buf_printf(b, ",\"worker\":%u,\"generation\":%" PRIu32 ",\"pid\":%d,"
				              "\"client\":", index, gen, (int)pid);
				buf_json_str(b, client);
				buf_printf(b, ",\"listener\":");
				buf_json_str(b, ltext);
				buf_printf(b, ",\"server\":");
				buf_json_str(b, stext);
				buf_printf(b, ",\"age_ms\":%llu,\"idle_ms\":%llu,\"bytes_in\":%llu,"
				              "\"bytes_out\":%llu,\"state\":", age, idle, bin, bout);
				buf_json_str(b, state);
				buf_printf(b, "}");
			} else {
				buf_printf(b, "%-10s %-6u %-4" PRIu32 " %-22s %-22s %-30s %9.1f %9.1f %12llu "
				              "%12llu %s\n", id, index, gen, client, ltext, stext,
				    age / 1000.0, idle / 1000.0, bin, bout, state);
			}
			count++;
		}
	}
	if (cl->json)
		buf_printf(b, "],\"count\":%u}\n", count);
}

/* The workers answered (or their time ran out): make the client's answer. */
static void
answer_workers(struct client *cl)
{
	struct buf b = { 0 };
	unsigned long total = 0;

	if (strcmp(cl->verb, "L") == 0) {
		answer_sessions(cl, &b);
	} else {
		for (unsigned i = 0; i < STATS_SLOTS; i++)
			if (ctl.workers[i].keep == 2 && ctl.workers[i].body.p != NULL)
				total += strtoul(ctl.workers[i].body.p, NULL, 10);
		if (strcmp(cl->verb, "K") == 0 && total == 0) {
			reply_error(cl, "no session %s", cl->arg_client);
			return;
		}
		if (cl->json)
			buf_printf(&b, "{\"shut\":%lu}\n", total);
		else
			buf_printf(&b, "%lu sessions shut\n", total);
	}
	if (b.failed) {
		free(b.p);
		reply_error(cl, "out of memory");
		return;
	}
	reply(cl, b.p != NULL ? b.p : "");
	free(b.p);
}

/* --- commands -------------------------------------------------------------- */

/* "UPSTREAM/ADDRESS" of the running config: its row, or an error answered. */
static int
parse_server(struct client *cl, const char *arg, unsigned *row)
{
	char up[STATS_NAME_MAX];
	const char *slash = strchr(arg, '/');

	if (slash == NULL || slash == arg || (size_t)(slash - arg) >= sizeof(up) || slash[1] == '\0') {
		reply_error(cl, "servers are named UPSTREAM/ADDRESS, as in the configuration");
		return -1;
	}
	memcpy(up, arg, (size_t)(slash - arg));
	up[slash - arg] = '\0';
	if ((*row = server_row(up, slash + 1)) == STATS_NO_ROW) {
		reply_error(cl, "no server %s in the running configuration", arg);
		return -1;
	}
	return 0;
}

static void
cmd_show_info(struct client *cl)
{
	struct stats_snapshot *sn = stats_snapshot_create(ctl.seg);
	const struct conf *c = master_conf();
	struct buf b = { 0 };
	uint64_t now = stats_now_ms();

	if (sn == NULL) {
		reply_error(cl, "out of memory");
		return;
	}
	if (cl->json) {
		buf_printf(&b, "{\"version\":\"%s\",\"pid\":%d,\"uptime_s\":%" PRIu64 ","
		               "\"generation\":%" PRIu64 ",\"workers\":%u,\"workers_running\":%u,"
		               "\"workers_draining\":%u,\"node\":\"%s\",\"active\":%" PRIu64 ","
		               "\"accepted\":%" PRIu64 ",\"reloads_ok\":%" PRIu64 ","
		               "\"reloads_failed\":%" PRIu64 ",\"last_reload_ms\":%" PRIu64 ","
		               "\"last_reload_ok\":%s,\"log_level\":\"%s\",\"config\":",
		    PACKAGE_VERSION, (int)getpid(), (now - sn->start_ms) / 1000, sn->generation,
		    c->workers, sn->running, sn->draining, stats_node_name(sn->node_state),
		    sn->total.active, sn->total.accepted, sn->reloads_ok, sn->reloads_failed,
		    sn->last_reload_ms, sn->last_reload_ok ? "true" : "false",
		    log_level_name(log_get_level()));
		buf_json_str(&b, c->path);
		buf_printf(&b, "}\n");
	} else {
		buf_printf(&b, "version: %s\npid: %d\nuptime: %" PRIu64 "s\ngeneration: %" PRIu64
		               "\nworkers: %u (%u running, %u draining)\nnode: %s\n"
		               "active: %" PRIu64 "\naccepted: %" PRIu64 "\nreloads: %" PRIu64
		               " ok, %" PRIu64 " failed%s\nlog level: %s\nconfig: %s\n",
		    PACKAGE_VERSION, (int)getpid(), (now - sn->start_ms) / 1000, sn->generation,
		    c->workers, sn->running, sn->draining, stats_node_name(sn->node_state),
		    sn->total.active, sn->total.accepted, sn->reloads_ok, sn->reloads_failed,
		    sn->last_reload_ms == 0 ? "" : sn->last_reload_ok ? " (last ok)" : " (last failed)",
		    log_level_name(log_get_level()), c->path);
	}
	stats_snapshot_destroy(sn);
	reply(cl, b.failed ? NULL : b.p);
	free(b.p);
}

static void
cmd_show_servers(struct client *cl, const char *upstream)
{
	struct stats_snapshot *sn;
	const struct conf *c = master_conf();
	const uint16_t *rows = master_server_rows();
	struct buf b = { 0 };
	unsigned k = 0, count = 0, found = upstream == NULL;

	for (unsigned u = 0; u < c->nupstreams; u++)
		if (upstream != NULL && strcmp(c->upstreams[u].name, upstream) == 0)
			found = 1;
	if (!found) {
		reply_error(cl, "no upstream %s in the running configuration", upstream);
		return;
	}
	if ((sn = stats_snapshot_create(ctl.seg)) == NULL) {
		reply_error(cl, "out of memory");
		return;
	}
	if (cl->json)
		buf_printf(&b, "{\"servers\":[");
	else
		buf_printf(&b, "%-32s %-6s %6s %-8s %8s %10s %10s %14s %14s\n", "server", "state",
		    "weight", "health", "active", "connects", "failures", "bytes_in", "bytes_out");
	for (unsigned u = 0; u < c->nupstreams; u++)
		for (unsigned i = 0; i < c->upstreams[u].nservers; i++, k++) {
			const struct conf_upstream *up = &c->upstreams[u];
			unsigned r = rows != NULL ? rows[k] : STATS_NO_ROW;
			struct stats_server_view v;
			char name[STATS_NAME_MAX + STATS_ADDR_MAX];
			uint32_t weight;

			if (upstream != NULL && strcmp(up->name, upstream) != 0)
				continue;
			memset(&v, 0, sizeof(v));
			v.admin.weight = STATS_WEIGHT_CONFIG;
			if (r < sn->nservers)
				v = sn->servers[r];
			weight = v.admin.weight == STATS_WEIGHT_CONFIG ? up->servers[i].weight
			                                               : v.admin.weight;
			snprintf(name, sizeof(name), "%s/%s", up->name, up->servers[i].address);
			if (cl->json) {
				buf_printf(&b, "%s{\"server\":", count ? "," : "");
				buf_json_str(&b, name);
				buf_printf(&b, ",\"upstream\":");
				buf_json_str(&b, up->name);
				buf_printf(&b, ",\"address\":");
				buf_json_str(&b, up->servers[i].address);
				buf_printf(&b, ",\"state\":\"%s\",\"weight\":%" PRIu32 ","
				               "\"config_weight\":%u,\"backup\":%s,\"health\":\"%s\","
				               "\"active\":%" PRIu64 ",\"connects\":%" PRIu64 ","
				               "\"connect_failures\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ","
				               "\"bytes_out\":%" PRIu64 "}",
				    stats_admin_name(v.admin.state), weight, up->servers[i].weight,
				    up->servers[i].backup ? "true" : "false",
				    up->health.enabled ? stats_health_name(v.health.state) : "unchecked",
				    v.c.active, v.c.connects, v.c.connect_failures, v.c.bytes_in,
				    v.c.bytes_out);
			} else {
				buf_printf(&b, "%-32s %-6s %6" PRIu32 " %-8s %8" PRIu64 " %10" PRIu64
				               " %10" PRIu64 " %14" PRIu64 " %14" PRIu64 "\n",
				    name, stats_admin_name(v.admin.state), weight,
				    up->health.enabled ? stats_health_name(v.health.state) : "-",
				    v.c.active, v.c.connects, v.c.connect_failures, v.c.bytes_in,
				    v.c.bytes_out);
			}
			count++;
		}
	if (cl->json)
		buf_printf(&b, "]}\n");
	stats_snapshot_destroy(sn);
	reply(cl, b.failed ? NULL : b.p);
	free(b.p);
}

static void
cmd_set_server(struct client *cl, const char *name, const char *what, const char *value)
{
	struct stats_server_admin a;
	unsigned row;
	char *end;

	if (parse_server(cl, name, &row) == -1)
		return;
	a = stats_admin_get(ctl.seg, row);
	if (strcmp(what, "state") == 0) {
		int st = stats_admin_parse(value);

		if (st == -1) {
			reply_error(cl, "state must be ready, drain or maint");
			return;
		}
		a.state = (uint32_t)st;
	} else if (strcmp(what, "weight") == 0) {
		unsigned long wt;

		errno = 0;
		wt = strtoul(value, &end, 10);
		if (*value < '0' || *value > '9' || *end != '\0' || errno != 0 || wt > 256) {
			reply_error(cl, "weight must be an integer from 0 to 256");
			return;
		}
		a.weight = (uint32_t)wt;
	} else {
		reply_error(cl, "set server NAME state ready|drain|maint, or weight N");
		return;
	}
	stats_admin_set(ctl.seg, row, a.state, a.weight);
	state_save();
	if (a.weight == STATS_WEIGHT_CONFIG)
		log_notice("control: server %s set to %s, the config's weight", name,
		    stats_admin_name(a.state));
	else
		log_notice("control: server %s set to %s, weight %" PRIu32, name,
		    stats_admin_name(a.state), a.weight);
	reply(cl, NULL);
}

static void
cmd_reload(struct client *cl)
{
	char err[256];

	/* Waiting first: a reload refused at once answers before the
	 * request returns (control_reload_done). */
	cl->wait = WAIT_RELOAD;
	cl->ticket = master_reload_seq();
	ev_timer_stop(ctl.loop, &cl->deadline);
	ev_timer_set(&cl->deadline, CTL_RELOAD_DEADLINE, 0.);
	ev_timer_start(ctl.loop, &cl->deadline);
	if (master_reload_request(err, sizeof(err)) == -1 && cl->fd != -1 &&
	    cl->wait == WAIT_RELOAD)
		reply_error(cl, "%s", err);
}

void
control_reload_done(uint64_t seq, int ok, const char *why)
{
	for (unsigned i = 0; i < CTL_CLIENTS; i++) {
		struct client *cl = &ctl.clients[i];

		if (cl->fd == -1 || cl->wait != WAIT_RELOAD || seq <= cl->ticket)
			continue;
		if (ok) {
			char body[96];

			snprintf(body, sizeof(body), "reloaded: generation %" PRIu64 "\n",
			    __atomic_load_n(&ctl.seg->hdr->generation, __ATOMIC_RELAXED));
			reply(cl, body);
		} else {
			reply_error(cl, "reload failed, the running configuration is kept: %s",
			    why != NULL ? why : "see the log");
		}
	}
}

static void
cmd_upgrade(struct client *cl)
{
	char err[256];

	cl->wait = WAIT_UPGRADE;
	ev_timer_stop(ctl.loop, &cl->deadline);
	ev_timer_set(&cl->deadline, CTL_RELOAD_DEADLINE, 0.);
	ev_timer_start(ctl.loop, &cl->deadline);
	if (master_upgrade_request(err, sizeof(err)) == -1 && cl->fd != -1 &&
	    cl->wait == WAIT_UPGRADE)
		reply_error(cl, "upgrade refused: %s", err);
}

void
control_upgrade_done(int ok, const char *text)
{
	for (unsigned i = 0; i < CTL_CLIENTS; i++) {
		struct client *cl = &ctl.clients[i];
		char body[256];

		if (cl->fd == -1 || cl->wait != WAIT_UPGRADE)
			continue;
		if (ok) {
			snprintf(body, sizeof(body), "%s\n", text != NULL ? text : "upgraded");
			reply(cl, body);
		} else {
			reply_error(cl, "upgrade failed, this master keeps serving: %s",
			    text != NULL ? text : "see the log");
		}
	}
}

void
control_undrain_done(int ok, const char *why)
{
	for (unsigned i = 0; i < CTL_CLIENTS; i++) {
		struct client *cl = &ctl.clients[i];

		if (cl->fd == -1 || cl->wait != WAIT_UNDRAIN)
			continue;
		if (ok)
			reply(cl, "serving\n");
		else
			reply_error(cl, "undrain failed, the node stays drained: %s",
			    why != NULL ? why : "see the log");
	}
}

static void
cmd_drain(struct client *cl, char **argv, int argc)
{
	uint64_t grace = 0;
	char err[256];

	if (argc == 3 && strcmp(argv[1], "--grace") == 0) {
		if (conf_parse_duration(argv[2], &grace) == -1) {
			reply_error(cl, "--grace takes a duration such as 10s");
			return;
		}
	} else if (argc != 1) {
		reply_error(cl, "drain [--grace DURATION]");
		return;
	}
	if (master_drain((unsigned)grace, err, sizeof(err)) == -1) {
		reply_error(cl, "%s", err);
		return;
	}
	if (cl->json)
		reply(cl, "{\"node\":\"draining\"}\n");
	else
		reply(cl, "draining\n");
}

static void
cmd_undrain(struct client *cl)
{
	char err[256];
	int rc;

	/* Waiting first: a generation refused at once answers before
	 * master_undrain returns (control_undrain_done). */
	cl->wait = WAIT_UNDRAIN;
	ev_timer_stop(ctl.loop, &cl->deadline);
	ev_timer_set(&cl->deadline, CTL_RELOAD_DEADLINE, 0.);
	ev_timer_start(ctl.loop, &cl->deadline);
	rc = master_undrain(err, sizeof(err));
	if (cl->fd == -1 || cl->wait != WAIT_UNDRAIN)
		return;
	if (rc == -1)
		reply_error(cl, "%s", err);
	else if (rc == 0)
		reply(cl, cl->json ? "{\"node\":\"serving\"}\n" : "serving\n");
}

static void
cmd_show_sessions(struct client *cl, char **argv, int argc)
{
	strcpy(cl->verb, "L");
	cl->arg_server = cl->arg_listener = cl->only_slot = STATS_NO_ROW;
	cl->arg_worker = -1;
	cl->arg_client[0] = '\0';
	for (int i = 2; i < argc; i += 2) {
		if (i + 1 >= argc) {
			reply_error(cl, "%s needs a value", argv[i]);
			return;
		}
		if (strcmp(argv[i], "server") == 0) {
			if (parse_server(cl, argv[i + 1], &cl->arg_server) == -1)
				return;
		} else if (strcmp(argv[i], "listener") == 0) {
			unsigned r;

			for (r = 0; r < ctl.seg->listeners_used; r++)
				if (strcmp(ctl.seg->listeners[r].address, argv[i + 1]) == 0)
					break;
			if (r == ctl.seg->listeners_used) {
				reply_error(cl, "no listener %s", argv[i + 1]);
				return;
			}
			cl->arg_listener = r;
		} else if (strcmp(argv[i], "worker") == 0) {
			char *end;
			unsigned long n = strtoul(argv[i + 1], &end, 10);

			if (*argv[i + 1] == '\0' || *end != '\0' || n >= CONF_WORKERS_MAX) {
				reply_error(cl, "worker takes a worker number");
				return;
			}
			cl->arg_worker = (int)n;
		} else if (strcmp(argv[i], "client") == 0) {
			snprintf(cl->arg_client, sizeof(cl->arg_client), "%s", argv[i + 1]);
		} else {
			reply_error(cl, "show sessions [server U/S] [listener ADDR] [worker N] "
			                "[client IP]");
			return;
		}
	}
	ask_workers(cl);
}

static void
cmd_shutdown(struct client *cl, char **argv, int argc)
{
	cl->arg_server = cl->arg_listener = cl->only_slot = STATS_NO_ROW;
	cl->arg_worker = -1;
	cl->arg_client[0] = '\0';
	if (argc == 3 && strcmp(argv[1], "session") == 0) {
		unsigned slot;
		uint32_t n;
		char rest;

		if (sscanf(argv[2], "%u.%" SCNu32 "%c", &slot, &n, &rest) != 2 ||
		    slot >= STATS_SLOTS || n == 0) {
			reply_error(cl, "a session id is SLOT.N, as show sessions lists it");
			return;
		}
		strcpy(cl->verb, "K");
		cl->only_slot = slot;
		snprintf(cl->arg_client, sizeof(cl->arg_client), "%u.%" PRIu32, slot, n);
		ask_workers(cl);
		return;
	}
	if (argc == 4 && strcmp(argv[1], "sessions") == 0 && strcmp(argv[2], "server") == 0) {
		if (parse_server(cl, argv[3], &cl->arg_server) == -1)
			return;
		strcpy(cl->verb, "KS");
		ask_workers(cl);
		return;
	}
	reply_error(cl, "shutdown session ID, or shutdown sessions server UPSTREAM/ADDRESS");
}

static const char help_text[] =
    "show info\n"
    "show servers [UPSTREAM]\n"
    "show sessions [server UPSTREAM/ADDRESS] [listener ADDRESS] [worker N] [client IP]\n"
    "set server UPSTREAM/ADDRESS state ready|drain|maint\n"
    "set server UPSTREAM/ADDRESS weight 0..256\n"
    "shutdown session ID\n"
    "shutdown sessions server UPSTREAM/ADDRESS\n"
    "set log level error|warning|notice|info|debug\n"
    "reload\n"
    "drain [--grace DURATION]\n"
    "undrain\n"
    "upgrade\n"
    "help\n";

static void
command(struct client *cl, char *line)
{
	char *argv[12], *save = NULL, *tok;
	int argc = 0;

	for (tok = strtok_r(line, " \t\r", &save); tok != NULL && argc < 12;
	     tok = strtok_r(NULL, " \t\r", &save))
		argv[argc++] = tok;
	if (argc > 0 && strcmp(argv[0], "json") == 0) {
		cl->json = 1;
		memmove(argv, argv + 1, (size_t)--argc * sizeof(*argv));
	}
	if (tok != NULL || argc == 0) {
		reply_error(cl, argc == 0 ? "empty command; try help" : "too many words");
		return;
	}
	if (strcmp(argv[0], "help") == 0 && argc == 1)
		reply(cl, help_text);
	else if (strcmp(argv[0], "show") == 0 && argc == 2 && strcmp(argv[1], "info") == 0)
		cmd_show_info(cl);
	else if (strcmp(argv[0], "show") == 0 && argc <= 3 && argc >= 2 &&
	         strcmp(argv[1], "servers") == 0)
		cmd_show_servers(cl, argc == 3 ? argv[2] : NULL);
	else if (strcmp(argv[0], "show") == 0 && argc >= 2 && strcmp(argv[1], "sessions") == 0)
		cmd_show_sessions(cl, argv, argc);
	else if (strcmp(argv[0], "set") == 0 && argc == 5 && strcmp(argv[1], "server") == 0)
		cmd_set_server(cl, argv[2], argv[3], argv[4]);
	else if (strcmp(argv[0], "set") == 0 && argc == 4 && strcmp(argv[1], "log") == 0 &&
	         strcmp(argv[2], "level") == 0) {
		int lvl = log_level_parse(argv[3]);

		if (lvl == -1) {
			reply_error(cl, "level must be error, warning, notice, info or debug");
			return;
		}
		master_set_log_level((enum log_level)lvl);
		reply(cl, NULL);
	} else if (strcmp(argv[0], "shutdown") == 0)
		cmd_shutdown(cl, argv, argc);
	else if (strcmp(argv[0], "reload") == 0 && argc == 1)
		cmd_reload(cl);
	else if (strcmp(argv[0], "drain") == 0)
		cmd_drain(cl, argv, argc);
	else if (strcmp(argv[0], "undrain") == 0 && argc == 1)
		cmd_undrain(cl);
	else if (strcmp(argv[0], "upgrade") == 0 && argc == 1)
		cmd_upgrade(cl);
	else
		reply_error(cl, "unknown command \"%s\"; try help", argv[0]);
}

static void
read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct client *cl = io->data;
	ssize_t n;
	char *nl;

	n = recv(cl->fd, cl->in + cl->inlen, sizeof(cl->in) - cl->inlen, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		cl->inlen += (size_t)n;
	nl = memchr(cl->in, '\n', cl->inlen);
	if (nl == NULL && n > 0 && cl->inlen < sizeof(cl->in))
		return;
	/* A line, or all the client will send (EOF without a newline). */
	ev_io_stop(loop, &cl->io);
	if (nl == NULL && cl->inlen == sizeof(cl->in)) {
		reply_error(cl, "command too long (%d bytes at most)", CTL_LINE_MAX - 1);
		return;
	}
	if (nl == NULL && cl->inlen == 0) {
		client_free(cl);
		return;
	}
	if (nl != NULL)
		*nl = '\0';
	else
		cl->in[cl->inlen] = '\0';
	if (memchr(cl->in, '\0', nl != NULL ? (size_t)(nl - cl->in) : cl->inlen) != NULL &&
	    strlen(cl->in) != (nl != NULL ? (size_t)(nl - cl->in) : cl->inlen)) {
		reply_error(cl, "a command is text");
		return;
	}
	command(cl, cl->in);
}

static void
accept_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	ev_io_start(loop, &ctl.accept_w);
}

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	for (int k = 0; k < CTL_CLIENTS; k++) {
		struct client *cl = NULL;
		int fd = accept4(ctl.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			/* Out of descriptors or memory: the socket stays readable,
			 * and retrying at once would spin the master. */
			log_warn("control: accept (paused for %.0fs)", CTL_ACCEPT_PAUSE);
			ev_io_stop(loop, &ctl.accept_w);
			ev_timer_set(&ctl.accept_resume, CTL_ACCEPT_PAUSE, 0.);
			ev_timer_start(loop, &ctl.accept_resume);
			return;
		}
		for (unsigned i = 0; i < CTL_CLIENTS; i++)
			if (ctl.clients[i].fd == -1) {
				cl = &ctl.clients[i];
				break;
			}
		if (cl == NULL) {
			static const char busy[] = "error: busy: too many control clients\n";

			(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		memset(cl, 0, sizeof(*cl));
		cl->fd = fd;
		ev_io_init(&cl->io, read_cb, fd, EV_READ);
		cl->io.data = cl;
		ev_io_start(loop, &cl->io);
		ev_timer_init(&cl->deadline, deadline_cb, CTL_DEADLINE, 0.);
		cl->deadline.data = cl;
		ev_timer_start(loop, &cl->deadline);
	}
}

void
control_start(struct ev_loop *loop, struct stats_seg *seg)
{
	ctl.loop = loop;
	ctl.seg = seg;
	ctl.queue = NULL;
	ctl.queue_tail = &ctl.queue;
	ev_timer_init(&ctl.worker_deadline, worker_deadline_cb, CTL_WORKER_DEADLINE, 0.);
	ev_init(&ctl.accept_resume, accept_resume_cb);
	if (ctl.fd == -1)
		return;
	state_load();
	ev_io_init(&ctl.accept_w, accept_cb, ctl.fd, EV_READ);
	ev_io_start(loop, &ctl.accept_w);
}

void
control_close(int remove_socket)
{
	for (unsigned i = 0; i < CTL_CLIENTS; i++)
		client_free(&ctl.clients[i]);
	for (unsigned i = 0; i < STATS_SLOTS; i++)
		wsock_close(i);
	if (ctl.fd != -1) {
		ev_io_stop(ctl.loop, &ctl.accept_w);
		close(ctl.fd);
		ctl.fd = -1;
		if (remove_socket)
			unlink(ctl.path);
	}
	ev_timer_stop(ctl.loop, &ctl.worker_deadline);
	ev_timer_stop(ctl.loop, &ctl.accept_resume);
	free(ctl.state_file);
	ctl.state_file = NULL;
}
