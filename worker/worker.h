/* SPDX-License-Identifier: BSD-2-Clause */
/* worker.h — the state of one worker process (struct worker) and what
 * worker.c (loop, accept, pauses, drain) offers the other worker modules.
 * Each module's API is in its own header: relay.h, xfer.h, connlog.h,
 * upstream.h, edge.h, wheel.h. Never included by master/: only heritage.h
 * crosses the fork. */
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
	ROOM_CLIENT_FIN, /* the client sent FIN: timeouts.client_fin since bytes last
	                  * moved (only when set; else such sessions stay in IDLE) */
	ROOM_SERVER_FIN, /* the server sent FIN: timeouts.server_fin, likewise */
	ROOM_PREREAD, /* owes its TLS ClientHello (sni listeners): timeouts.preread */
	ROOM_COUNT
};

struct worker {
	struct ev_loop *loop;
	const struct conf *conf;
	const struct heritage *h;
	struct stats_slot *slot;
	struct pool *buffers;  /* relay buffers, conf->buffer_size each */
	struct pool *bulk;     /* bulk buffers, conf->bulk_buffer_size each; NULL: none */
	struct pool *sessions; /* struct session objects */
	size_t buffer_size;

	unsigned active;     /* sessions open */
	unsigned max_active; /* this worker's cap: limits.max_connections_per_worker,
	                      * else what its descriptors can hold */
	int draining;        /* SIGQUIT seen: no accepts, exit when active == 0 */
	unsigned paused;     /* why accepting is paused: WORKER_PAUSE_* bits */
	unsigned slot_hw;    /* stats slots [0, slot_hw) may be live */
	unsigned duty_k;     /* workers that accept at once, when fewer than
	                      * this generation's workers; 0: all accept */
	unsigned duty_full;  /* connections at which a worker counts as full
	                      * and hands its turn to accept on (7/8 of max) */
	ev_timer duty_timer; /* an idle worker looks again whether it is its turn */

	/* Listeners are watched through a private epoll set (accept_epfd) in
	 * which each is registered EPOLLEXCLUSIVE and re-registered after every
	 * wake-up: the kernel then wakes one idle worker per connection, in
	 * turn, instead of all of them (thundering herd) or always the first. */
	int accept_epfd;
	ev_io accept_w;         /* readable accept_epfd */
	const int *listen_fds;  /* parallel to conf->listeners (a reuseport
	                         * listener: this worker's own socket) */
	/* Reuseport sockets (own and extra, heritage.h) are this worker's
	 * queue alone: they sit in a second epoll set (rp_epfd, -1: none),
	 * registered once, not exclusive, and only a limit or a shortage takes
	 * the worker off them, never the duty or fairness turns. */
	int rp_epfd;
	ev_io rp_w;             /* readable rp_epfd */
	ev_timer accept_resume; /* re-arms accepting after EMFILE/ENFILE */
	ev_timer fair_timer;    /* ends a fairness pause */
	int light_turn;         /* sat out a turn at light load: take one next */

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
	uint32_t session_seq;  /* the last session id given (session_tail.id) */

	struct up_group *groups; /* per upstream: balancing and passive health (upstream.c) */

	/* Empty pipes kept for splicing, so a bulk transfer does not pay
	 * pipe2+close per burst; capped because each costs two descriptors. */
	int pipes[RELAY_IDLE_PIPES][2];
	unsigned npipes;

	/* This worker's stats rows, resolved once at start so counting costs
	 * a relaxed store and no lookup (worker.c; a private sink row stands
	 * in where the segment has none). lstats is parallel to
	 * conf->listeners; the servers of upstream u are sstats[sbase[u]]
	 * onwards, in config order. */
	struct stats_listener_counters **lstats;
	struct stats_server_counters **sstats;
	unsigned *sbase;
	/* The config's listeners and servers (all groups). Past them, lstats
	 * and sbase have an entry per listener row of the segment and sstats
	 * one per server row, for sessions taken over from an older
	 * generation whose listener or server this config lacks (session.h,
	 * session_foreign). */
	unsigned nlisteners, nservers;
	int statm_fd; /* /proc/self/statm, read on the heartbeat for RSS */

	struct handoff *handoff; /* channels to other generations (handoff.c), or NULL */
	unsigned handoff_inflight; /* sessions handed over, not yet answered for */
};

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
#define WORKER_PAUSE_DUTY 0x20  /* not one of the accept_workers taking new
                                 * connections now (more workers than that) */

/* Stats slots [0, n) that may hold a live worker (including ones started
 * since the last full scan): what a reader of other workers' gauges walks. */
unsigned worker_slots(struct worker *);

/* Pause (on = 1) or resume (on = 0) accepting for one reason. */
void worker_pause(struct worker *, unsigned why, int on);

/* The segment rows of session s's listener and server (STATS_NO_ROW while
 * it has no server, or where the directory was full): the same in every
 * generation for the same listener or server. */
unsigned worker_listener_row(const struct worker *, const struct session *);
unsigned worker_server_row(const struct worker *, const struct session *);

#endif
