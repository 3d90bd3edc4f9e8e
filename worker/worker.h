/* worker.h — the state of one worker process, shared by worker.c (loop,
 * accept, drain), relay.c (sessions) and upstream.c (server choice, connect).
 * Never included by master/: only heritage.h crosses the fork. */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <ev.h>
#include <stdint.h>

#include "wheel.h"

struct conf;
struct edge;
struct heritage;
struct pool;
struct session;
struct sockaddr;
struct stats_listener_counters;
struct stats_server_counters;
struct stats_slot;
struct up_group;

/* Empty pipes a worker keeps for zero-copy relaying. */
#define RELAY_IDLE_PIPES 32

/* The rooms of a worker's sessions: every open session is in exactly one,
 * a timing wheel that bounds how long it may stay there (relay.c moves it). */
enum session_room {
	ROOM_NONE,    /* closing, or not yet filed */
	ROOM_HEADER,  /* owes its PROXY header: timeouts.proxy_header from accept */
	ROOM_CONNECT, /* connecting upstream: timeouts.connect for all tries */
	ROOM_WAITFD,  /* no descriptor left to connect with: the same deadline */
	ROOM_IDLE,    /* relaying: timeouts.idle since bytes last moved */
	ROOM_STARVED, /* relaying, waiting for a relay buffer: the same idle deadline */
	ROOM_COUNT
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
	ev_timer fair_timer;    /* ends a fairness pause */

	/* Monotonic time in seconds, read once per loop iteration before any
	 * other callback (worker.c): every deadline and rate runs on it, so a
	 * step of the wall clock changes none. */
	double now;
	ev_check clock_w;

	/* Where sessions are (enum session_room; [ROOM_NONE] unused). The
	 * memory pause is on exactly while ROOM_STARVED holds a session. */
	struct wheel rooms[ROOM_COUNT];

	struct edge *edge;     /* rate buckets and the per-source table (edge.c) */
	size_t session_tail;   /* bytes each session carries past struct session
	                        * for the edge (edge_session_extra), 0 for none */

	struct up_group *groups; /* per upstream: balancing and passive health (upstream.c) */

	/* Empty pipes kept for splicing, so a bulk transfer does not pay
	 * pipe2+close per burst; capped because each costs two descriptors. */
	int pipes[RELAY_IDLE_PIPES][2];
	unsigned npipes;

	/* This worker's stats rows, resolved once at start so counting costs
	 * a relaxed store and no lookup (worker.c; a private sink row stands
	 * in where the segment has none). lstats is parallel to
	 * conf->listeners; the servers of listener li's upstream are
	 * sstats[sbase[li]] onwards, in config order. */
	struct stats_listener_counters **lstats;
	struct stats_server_counters **sstats;
	unsigned *sbase;
	int statm_fd; /* /proc/self/statm, read on the heartbeat for RSS */
};

/* relay.c ------------------------------------------------------------------ */

/* Prepare the wheels and pools' consumers. Call once before accepting. */
void relay_init(struct worker *);

/* Take ownership of an accepted client fd from listener li, whose peer
 * address accept gave, and start its session: admission (edge.c), the PROXY
 * header when the listener expects one, connect upstream, then relay. Never
 * fails loudly: a refused session is counted and its fd closed. */
void relay_start(struct worker *, int client_fd, unsigned li, const struct sockaddr *peer);

/* Try the upstream connect again for sessions that waited for a descriptor
 * (after a descriptor pause ends). */
void relay_retry_waiting(struct worker *);

/* Close every session at once (fast stop, end of drain). */
void relay_close_all(struct worker *);

/* upstream.c --------------------------------------------------------------- */

/* Set up w->groups (balancing state, source-hash rings) from w->conf once,
 * before accepting. Returns 0, or -1 with errno ENOMEM. */
int upstream_init(struct worker *);

/* Choose a server of listener li's upstream for a new session (failed < 0;
 * client, its address, is read only for source hashing), or for a retry after server
 * `failed` (the next usable one after it, so that retries visit distinct
 * servers whatever other sessions did meanwhile). Servers down (health
 * checks or passive marks) or full (max_connections) are skipped; backups
 * stand in only when no other server can. Returns the index, or -1 when no
 * server can take the session. */
int upstream_pick(struct worker *, unsigned li, const struct sockaddr *client, int failed);

/* Start a non-blocking connect to server `server` of li's upstream. On
 * success the server counts the session as active until upstream_release.
 * Returns the fd, or -1 with errno when the attempt failed at once. */
int upstream_connect(struct worker *, unsigned li, unsigned server);

/* The session that upstream_connect counted on server let it go (its connect
 * failed, or it closed). */
void upstream_release(struct worker *, unsigned li, unsigned server);

/* Outcome of a connect attempt, for passive health: a success clears the
 * server's failures; max_fails failures in a row (refused, unreachable,
 * timed out; why says which) mark it down for fail_timeout in this worker. */
void upstream_connected(struct worker *, unsigned li, unsigned server);
void upstream_failed(struct worker *, unsigned li, unsigned server, const char *why);

/* Connect attempts a session of listener li may make: 1 + retries. */
unsigned upstream_tries(const struct worker *, unsigned li);

/* Text of an upstream server address for logs. */
const char *upstream_name(const struct worker *, unsigned li, unsigned server);

/* edge.c ------------------------------------------------------------------- */

/* sizeof relay.c's struct session_tail: client address, start, byte counts. */
#define EDGE_TAIL_BYTES 40

/* Bytes each session object needs past struct session for the edge under
 * config c: 0 unless per-source limits, the connection log or source
 * balancing behind a PROXY-header listener need the client kept per
 * connection. */
size_t edge_session_extra(const struct conf *c);

/* Set up w->edge (rate buckets; the per-source table when a listener limits
 * sources) and w->session_tail, once before accepting. Returns 0, or -1 with
 * errno ENOMEM. */
int edge_init(struct worker *);

/* Admission right after accept: listener li's rate limit, then, for an
 * accept_proxy listener, the trusted list (the client is judged when its
 * header names it), else edge_admit_client. Returns -1 when admitted, else
 * the enum stats_refuse reason, with *why its name for the connection log. */
int edge_admit(struct worker *, unsigned li, const struct sockaddr *peer, const char **why);

/* Deny and allow lists, then the per-source limit for the client address.
 * Returns -1 when admitted (the client then counts against its source until
 * edge_release), else the enum stats_refuse reason and *why. */
int edge_admit_client(struct worker *, unsigned li, const struct sockaddr *client,
    const char **why);

/* A connection edge_admit_client counted has closed. */
void edge_release(struct worker *, unsigned li, const struct sockaddr *client);

/* One connection log line (log.connections), at info level: client (NULL or
 * AF_UNSPEC shows "-"), listener li, server index of li's upstream or -1,
 * how long it lasted, bytes each way, how it ended and why. Formats on the
 * stack; never allocates. */
void edge_log(const struct worker *, unsigned li, const struct sockaddr *client, int server,
    uint32_t duration_ms, uint64_t bytes_in, uint64_t bytes_out, const char *end,
    const char *reason);

/* worker.c ----------------------------------------------------------------- */

/* A session closed: resume accepting below the limit; finish a drain. */
void worker_session_closed(struct worker *);

/* Reasons accepting is paused; it resumes when none is left. New clients
 * wait in the kernel's listen queue meanwhile (or go to another worker). */
#define WORKER_PAUSE_LIMIT 0x1  /* this worker holds max_active connections */
#define WORKER_PAUSE_GLOBAL 0x2 /* the whole daemon holds limits.max_connections */
#define WORKER_PAUSE_FDS 0x4    /* accept failed with EMFILE/ENFILE */
#define WORKER_PAUSE_MEMORY 0x8 /* relay buffer budget spent: sessions starve */
#define WORKER_PAUSE_FAIR 0x10  /* well above the workers' mean load: sit out */

/* Stats slots [0, n) that may hold a live worker (including ones started
 * since the last full scan): what a reader of other workers' gauges walks. */
unsigned worker_slots(struct worker *);

/* Pause (on = 1) or resume (on = 0) accepting for one reason. */
void worker_pause(struct worker *, unsigned why, int on);

#endif
