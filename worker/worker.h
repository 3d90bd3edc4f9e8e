/* worker.h — the state of one worker process, shared by worker.c (loop,
 * accept, drain), relay.c (sessions) and upstream.c (server choice, connect).
 * Never included by master/: only heritage.h crosses the fork. */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <ev.h>
#include <stdint.h>

struct conf;
struct heritage;
struct pool;
struct session;
struct stats_slot;

/* Slots of a timeout wheel. A wheel of timeout T ticks every T/(WHEEL_SLOTS-2),
 * so a connection is closed at most one tick after its real deadline and never
 * before it. */
#define WHEEL_SLOTS 64

/* Empty pipes a worker keeps for zero-copy relaying. */
#define RELAY_IDLE_PIPES 32

/*
 * A single-revolution timing wheel: every session in it has a deadline within
 * one timeout from now, filed by the tick its deadline falls in. Activity costs
 * nothing (a session only records when it was last active); a session whose
 * slot comes due and that was active since is simply filed again. Per session:
 * two pointers and a timestamp.
 */
struct wheel {
	ev_timer timer;
	ev_tstamp timeout; /* seconds */
	ev_tstamp tick;    /* seconds per slot */
	uint64_t cursor;   /* next tick to process */
	unsigned count;    /* sessions filed */
	struct session *slot[WHEEL_SLOTS];
};

struct worker {
	struct ev_loop *loop;
	const struct conf *conf;
	const struct heritage *h;
	struct stats_slot *slot;
	struct pool *buffers;  /* relay buffers, conf->buffer_size each */
	struct pool *sessions; /* struct session objects */
	size_t buffer_size;

	unsigned active;     /* sessions open */
	unsigned max_active; /* this worker's cap: limits.max_connections_per_worker,
	                      * else what its descriptors can hold */
	int draining;        /* SIGQUIT seen: no accepts, exit when active == 0 */
	unsigned paused;     /* why accepting is paused: WORKER_PAUSE_* bits */
	unsigned slot_hw;    /* stats slots [0, slot_hw) may be live */

	/* Listeners are watched through a private epoll set (accept_epfd) in
	 * which each is registered EPOLLEXCLUSIVE and re-registered after every
	 * wake-up: the kernel then wakes one idle worker per connection, in
	 * turn, instead of all of them (thundering herd) or always the first. */
	int accept_epfd;
	ev_io accept_w;         /* readable accept_epfd */
	const int *listen_fds;  /* parallel to conf->listeners */
	ev_timer accept_resume; /* re-arms accepting after EMFILE/ENFILE */

	struct wheel connect_wheel; /* sessions connecting upstream */
	struct wheel idle_wheel;    /* sessions relaying */
	struct session *starved;    /* sessions waiting for a relay buffer */

	unsigned *rr; /* next server per upstream (round robin) */

	/* Empty pipes kept for splicing, so a bulk transfer does not pay
	 * pipe2+close per burst; capped because each costs two descriptors. */
	int pipes[RELAY_IDLE_PIPES][2];
	unsigned npipes;
};

/* relay.c ------------------------------------------------------------------ */

/* Prepare the wheels and pools' consumers. Call once before accepting. */
void relay_init(struct worker *);

/* Take ownership of an accepted client fd from listener li and start its
 * session: connect upstream, then relay. Never fails loudly: a refused session
 * is counted and its fd closed. */
void relay_start(struct worker *, int client_fd, unsigned li);

/* Close every session at once (fast stop, end of drain). */
void relay_close_all(struct worker *);

/* upstream.c --------------------------------------------------------------- */

/* Start a non-blocking connect to a server of listener li's upstream: the
 * next in this worker's round robin when failed < 0, else the server after
 * `failed` (a retry must not land on the server that just failed, whatever
 * other sessions did to the round robin meanwhile). *server is the index
 * tried. Returns the fd, or -1 with errno when the attempt failed at once. */
int upstream_connect(struct worker *, unsigned li, int failed, unsigned *server);

/* Text of an upstream server address for logs. */
const char *upstream_name(const struct worker *, unsigned li, unsigned server);

/* worker.c ----------------------------------------------------------------- */

/* A session closed: resume accepting below the limit; finish a drain. */
void worker_session_closed(struct worker *);

/* Reasons accepting is paused; it resumes when none is left. New clients
 * wait in the kernel's listen queue meanwhile (or go to another worker). */
#define WORKER_PAUSE_LIMIT 0x1  /* this worker holds max_active connections */
#define WORKER_PAUSE_GLOBAL 0x2 /* the whole daemon holds limits.max_connections */
#define WORKER_PAUSE_FDS 0x4    /* accept failed with EMFILE/ENFILE */
#define WORKER_PAUSE_MEMORY 0x8 /* relay buffer budget spent: sessions starve */

/* Pause (on = 1) or resume (on = 0) accepting for one reason. */
void worker_pause(struct worker *, unsigned why, int on);

#endif
