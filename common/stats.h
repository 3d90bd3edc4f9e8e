/* SPDX-License-Identifier: BSD-2-Clause */
/* stats.h — layout of the shared-memory statistics segment, its creation
 * (master, before the first fork) and read-only attachment (sluicestat, tests).
 * Workers write only their own slot and its rows, with relaxed atomic stores
 * and no syscalls or locks; readers never block writers. What a child may
 * write sits on pages of its own, and the child's mapping of everything else
 * is made read-only right after fork (stats_protect_worker/_checker). */
#ifndef SLUICE_STATS_H
#define SLUICE_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define STATS_MAGIC 0x31454349554c53ULL /* "SLUICE1" little-endian */
#define STATS_VERSION 12 /* 10: bulk pools, accepting; 11: the resolved addresses area
                            * (live DNS); 12: the per-source table's figures */
/* The unit of write protection: each region one child writes (a worker's
 * slot, its listener rows, its server rows; the checker's health area)
 * starts and ends on a multiple of this, which must be a multiple of the
 * system's page size (stats_protect_* refuse larger pages). */
#define STATS_PAGE 4096
#define STATS_SLOTS 512     /* worker slots: current and draining generations */
#define STATS_LISTENERS 64  /* listener addresses in use at once (all generations) */
#define STATS_SERVERS 256   /* upstream servers in use at once (all generations) */
#define STATS_NO_ROW 0xffffu /* a listener or server without a row (directory full) */
#define STATS_NAME_MAX 64   /* upstream name, NUL included */
#define STATS_ADDR_MAX 128  /* address text as written in the config, NUL included */

/*
 * Every figure, declared once per kind of row; the structs, the descriptor
 * tables (and through them aggregation, the CLI table, JSON and Prometheus
 * names and help) are expanded from these lists.
 *
 * Worker slot: X(name, kind, view, help). kind COUNTER only grows for the life
 * of a worker and is folded into the retired row when the worker exits; GAUGE
 * is a current value, gone with the worker. view BRIEF: a column of the
 * per-worker table; DETAIL: in the totals only. Pool and RSS figures are
 * published once a second (the worker's heartbeat), everything else as it
 * happens.
 */
#define STATS_WORKER_FIELDS(X)                                                                \
	X(accepted, COUNTER, BRIEF, "client connections accepted")                            \
	X(active, GAUGE, BRIEF, "client connections open now")                                \
	X(closed, COUNTER, BRIEF, "client connections closed (every closed_* and refusal)")   \
	X(refused, COUNTER, BRIEF, "client connections refused (every refused_* reason)")     \
	X(bytes_in, COUNTER, BRIEF, "bytes relayed client to server")                         \
	X(bytes_out, COUNTER, BRIEF, "bytes relayed server to client")                        \
	X(connect_failures, COUNTER, BRIEF, "upstream connect attempts that failed")          \
	X(timeouts, COUNTER, BRIEF, "connections closed by the connect or idle timeout")      \
	X(handed_out, COUNTER, DETAIL, "sessions handed to a newer generation's worker on reload") \
	X(handed_in, COUNTER, DETAIL, "sessions taken over from an older generation's worker") \
	X(handoff_rejected, COUNTER, DETAIL, "hand-off messages refused as unreadable") \
	X(accept_pauses, COUNTER, DETAIL, "times accepting paused on EMFILE/ENFILE or the limit") \
	X(accepting, GAUGE, BRIEF, "1 while the worker takes new connections (its turn, not paused)") \
	X(accept_blocked, GAUGE, DETAIL, "1 while out of descriptors or relay buffers: its turn to accept passes on") \
	X(log_dropped, COUNTER, DETAIL, "connection log lines dropped: the log could not take them") \
	X(pool_buffers_total, GAUGE, DETAIL, "relay buffers carved from the pool")            \
	X(pool_buffers_used, GAUGE, BRIEF, "relay buffers holding data now")                  \
	X(pool_buffers_free, GAUGE, DETAIL, "relay buffers carved and free")                  \
	X(pool_buffers_high_water, GAUGE, DETAIL, "most relay buffers in use at once, per worker") \
	X(pool_buffers_failed, COUNTER, DETAIL, "relay buffer takes refused by the budget")   \
	X(pool_buffers_bytes_mapped, GAUGE, DETAIL, "bytes mapped for relay buffers")         \
	X(pool_bulk_used, GAUGE, DETAIL, "bulk buffers (pool.bulk_buffer_size) holding data now") \
	X(pool_bulk_high_water, GAUGE, DETAIL, "most bulk buffers in use at once, per worker") \
	X(pool_bulk_failed, COUNTER, DETAIL, "bulk buffer takes refused by their budget (a small buffer served)") \
	X(pool_bulk_bytes_mapped, GAUGE, DETAIL, "bytes mapped for bulk buffers")            \
	X(pool_sessions_total, GAUGE, DETAIL, "session objects carved from the pool")         \
	X(pool_sessions_used, GAUGE, DETAIL, "session objects in use now")                    \
	X(pool_sessions_free, GAUGE, DETAIL, "session objects carved and free")               \
	X(pool_sessions_high_water, GAUGE, DETAIL, "most session objects in use at once, per worker") \
	X(pool_sessions_failed, COUNTER, DETAIL, "session takes refused by the budget")       \
	X(pool_sessions_bytes_mapped, GAUGE, DETAIL, "bytes mapped for session objects")      \
	X(pool_bytes_mapped, GAUGE, DETAIL, "bytes all pools have mapped")                   \
	X(rss_bytes, GAUGE, BRIEF, "resident memory of the worker processes")

/*
 * Why a session closed: X(ENUM, name, help). The order is that of
 * worker/relay.c's enum close_reason, which is defined from this list. Each
 * becomes a COUNTER "closed_<name>" of the worker slot.
 */
#define STATS_CLOSE_REASONS(X)                                                          \
	X(DONE, done, "sessions closed after both directions finished")                 \
	X(CLIENT_ERROR, client_error, "sessions closed by a client error or reset")     \
	X(SERVER_ERROR, server_error, "sessions closed by a server error or reset")     \
	X(CONNECT_FAILED, connect_failed, "sessions closed because no connect succeeded") \
	X(CONNECT_TIMEOUT, connect_timeout, "sessions closed by the connect timeout")   \
	X(IDLE_TIMEOUT, idle_timeout, "sessions closed by the idle timeout")            \
	X(STARVED, starved, "sessions closed by the idle timeout while waiting for a relay " \
	    "buffer (pool.max_memory spent)")                                          \
	X(SHUTDOWN, shutdown, "sessions closed by a fast stop or the end of a drain")    \
	X(FIN_TIMEOUT, fin_timeout, "half-closed sessions closed by timeouts.client_fin or " \
	    "timeouts.server_fin")                                                      \
	X(LIFETIME, lifetime, "sessions closed at timeouts.max_lifetime")               \
	X(LOST, lost, "sessions open in a worker that died (counted when the master folds it)") \
	X(HANDOFF_LOST, handoff_lost, "sessions lost in a hand-off to a newer generation: "        \
	              "the receiver died with them in flight, or could not read their record")

/*
 * Why a connection was refused (closed before relaying a byte): X(ENUM, name,
 * help), each a COUNTER "refused_<name>" of the worker slot. Refusing counts
 * refused_by[reason], refused and closed in the slot and refused in the
 * listener row; it counts no close reason. So, up to the events under way
 * as it is read, accepted = active + closed = active + sum(closed_*) + refused.
 */
#define STATS_REFUSE_REASONS(X)                                                            \
	X(NO_MEMORY, no_memory, "refused: the session pool was empty")                     \
	X(ACL_DENIED, acl_denied, "refused: the client address is not allowed")            \
	X(RATE_LIMITED, rate_limited, "refused: over the listener's connection rate")      \
	X(PER_SOURCE_LIMIT, per_source_limit, "refused: too many connections from one source") \
	X(NO_SERVER, no_server, "refused: every server of the upstream group is down")     \
	X(PROXY_REJECTED, proxy_rejected, "refused: bad PROXY protocol header")            \
	X(TLS_REJECTED, tls_rejected, "refused: malformed, oversized or unfinished TLS ClientHello") \
	X(NO_ROUTE, no_route, "refused: no sni rule takes the ClientHello and no default")

/* Listener row: X(name, kind, help). Connections accepted on one address. */
#define STATS_LISTENER_FIELDS(X)                                              \
	X(accepted, COUNTER, "client connections accepted on this listener")  \
	X(active, GAUGE, "its client connections open now")                   \
	X(refused, COUNTER, "its client connections refused (any reason)")    \
	X(bytes_in, COUNTER, "bytes relayed from its clients to servers")     \
	X(bytes_out, COUNTER, "bytes relayed from servers to its clients")

/* Server row: X(name, kind, help). Traffic to one server of one group. */
#define STATS_SERVER_FIELDS(X)                                                  \
	X(connects, COUNTER, "connect attempts to this server")                 \
	X(connect_failures, COUNTER, "connect attempts to this server that failed") \
	X(active, GAUGE, "relayed connections to this server open now")         \
	X(bytes_in, COUNTER, "bytes relayed to this server")                    \
	X(bytes_out, COUNTER, "bytes relayed from this server")                 \
	X(timeouts, COUNTER, "its connections closed by the connect or idle timeout") \
	X(marked_down, GAUGE, "1 while this worker has the server marked down after failed connects") \
	STATS_CONNECT_FIELDS(X)

/* The connect-time histogram of a server row (last in its fields: readers
 * find it by offset, see common/prom.c): connects that succeeded, the
 * microseconds they took in all, and per bucket those that took more than the
 * bucket before's bound and at most the bucket's own (STATS_CONNECT_BOUNDS_US;
 * longer ones only in connected). Measured from the session's first connect
 * attempt, so a retry includes the attempts before it; at the worker loop's
 * clock resolution. */
#define STATS_CONNECT_BUCKETS 8
/* Server fields before the histogram: those shown as one figure each (the
 * sluicestat table, Prometheus counters and gauges). */
#define STATS_SERVER_PLAIN_FIELDS \
	((unsigned)(offsetof(struct stats_server_counters, connected) / sizeof(uint64_t)))
#define STATS_CONNECT_BOUNDS_US { 1000, 5000, 10000, 50000, 100000, 500000, 1000000, 5000000 }
#define STATS_CONNECT_FIELDS(X)                                                    \
	X(connected, COUNTER, "connects to this server that succeeded")            \
	X(connect_us_sum, COUNTER, "microseconds the connects that succeeded took") \
	X(connect_le_1ms, COUNTER, "connects that took at most 1 ms")              \
	X(connect_le_5ms, COUNTER, "connects that took over 1 ms and at most 5 ms") \
	X(connect_le_10ms, COUNTER, "connects that took over 5 ms and at most 10 ms") \
	X(connect_le_50ms, COUNTER, "connects that took over 10 ms and at most 50 ms") \
	X(connect_le_100ms, COUNTER, "connects that took over 50 ms and at most 100 ms") \
	X(connect_le_500ms, COUNTER, "connects that took over 100 ms and at most 500 ms") \
	X(connect_le_1s, COUNTER, "connects that took over 500 ms and at most 1 s") \
	X(connect_le_5s, COUNTER, "connects that took over 1 s and at most 5 s")

enum stats_kind { STATS_COUNTER, STATS_GAUGE };
enum stats_view { STATS_BRIEF, STATS_DETAIL };

enum stats_close {
#define STATS_X_ENUM(up, name, help) STATS_CLOSE_##up,
	STATS_CLOSE_REASONS(STATS_X_ENUM)
#undef STATS_X_ENUM
	STATS_CLOSE_COUNT
};

enum stats_refuse {
#define STATS_X_ENUM(up, name, help) STATS_REFUSE_##up,
	STATS_REFUSE_REASONS(STATS_X_ENUM)
#undef STATS_X_ENUM
	STATS_REFUSE_COUNT
};

struct stats_counters {
#define STATS_X_FIELD(name, kind, view, help) uint64_t name;
	STATS_WORKER_FIELDS(STATS_X_FIELD)
#undef STATS_X_FIELD
	uint64_t closed_by[STATS_CLOSE_COUNT];   /* "closed_<reason>" */
	uint64_t refused_by[STATS_REFUSE_COUNT]; /* "refused_<reason>" */
};

struct stats_listener_counters {
#define STATS_X_FIELD(name, kind, help) uint64_t name;
	STATS_LISTENER_FIELDS(STATS_X_FIELD)
#undef STATS_X_FIELD
};

struct stats_server_counters {
#define STATS_X_FIELD(name, kind, help) uint64_t name;
	STATS_SERVER_FIELDS(STATS_X_FIELD)
#undef STATS_X_FIELD
};

/* Describes one 64-bit field of a counters struct, for code that walks them
 * all: name (as sluicestat -1, JSON and, prefixed, Prometheus spell it). */
struct stats_field {
	const char *name;
	enum stats_kind kind;
	enum stats_view view;
	const char *help;
	size_t offset; /* in its counters struct */
};
extern const struct stats_field stats_fields[]; /* struct stats_counters */
extern const unsigned stats_nfields;
extern const struct stats_field stats_listener_fields[]; /* struct stats_listener_counters */
extern const unsigned stats_listener_nfields;
extern const struct stats_field stats_server_fields[]; /* struct stats_server_counters */
extern const unsigned stats_server_nfields;

/* The field's value in the counters struct c it describes. */
uint64_t stats_field_get(const void *c, const struct stats_field *);

/* Index of the field called name in the table of n fields, or -1. */
int stats_field_find(const struct stats_field *table, unsigned n, const char *name);

enum stats_slot_state {
	STATS_SLOT_FREE = 0,
	STATS_SLOT_STARTING,
	STATS_SLOT_RUNNING,
	STATS_SLOT_DRAINING,
	STATS_SLOT_EXITED
};

/* "free", "starting", "running", "draining", "exited", or "?". */
const char *stats_state_name(uint32_t state);

/*
 * One per worker, a page each. While the worker lives it is the only writer
 * of every field and of the slot's listener and server rows (the only pages
 * of the segment it can write); the master writes the slot only before
 * forking the worker (reset, generation, state STARTING) and after reaping it
 * (fold, state FREE). Readers take nothing here as an index.
 */
struct stats_slot {
	uint32_t state;      /* enum stats_slot_state; release-stored last */
	uint32_t generation; /* master: reload generation the worker belongs to */
	int32_t pid;         /* worker: getpid() at start */
	uint32_t index;      /* master: worker number within its generation */
	uint64_t started_ms; /* worker: CLOCK_REALTIME at start, ms */
	uint64_t heartbeat_ms; /* worker: CLOCK_REALTIME, refreshed every second */
	struct stats_counters c;
} __attribute__((aligned(STATS_PAGE)));

/*
 * Directory entries: one per distinct listener address and per distinct
 * (upstream name, server address) in use, so that every generation adds to
 * the same row. Written by the master only, inside a fold_seq bracket. An
 * entry no live process uses may be recycled for a new identity once the
 * directory is full (stats_recycle_below); while any process uses it, its
 * row index stays valid.
 */
struct stats_listener_entry {
	uint32_t generation;       /* the latest generation whose config has it */
	uint32_t first_generation; /* the generation that added it */
	char address[STATS_ADDR_MAX];  /* as written in that config */
	char upstream[STATS_NAME_MAX]; /* the group it relays to there */
	struct sockaddr_storage addr;  /* identity */
};

struct stats_server_entry {
	uint32_t generation;       /* the latest generation whose config has it */
	uint32_t first_generation;
	uint32_t weight;           /* in that config */
	uint32_t backup;           /* 1: a backup server there */
	char upstream[STATS_NAME_MAX]; /* identity, with addr */
	char address[STATS_ADDR_MAX];  /* as written */
	struct sockaddr_storage addr;  /* resolved: identity */
};

enum stats_health_state {
	STATS_HEALTH_UNKNOWN = 0, /* not checked (yet, or no checks configured) */
	STATS_HEALTH_UP,
	STATS_HEALTH_DOWN
};

enum stats_check_result {
	STATS_CHECK_NONE = 0, /* no check done yet */
	STATS_CHECK_OK,
	STATS_CHECK_REFUSED,   /* connect refused or reset */
	STATS_CHECK_TIMEOUT,   /* no connect or no reply within the timeout */
	STATS_CHECK_BAD_REPLY, /* the reply did not start with the expected text */
	STATS_CHECK_ERROR      /* anything else; last_errno says what */
};

/* "unknown", "up", "down", or "?". */
const char *stats_health_name(uint32_t state);

/* An operator's state for a server (sluicectl set server ... state): READY
 * takes new connections; DRAIN takes none and lets its sessions finish;
 * MAINT takes none either, and its sessions may be shut by the operator. */
enum stats_admin_state {
	STATS_ADMIN_READY = 0,
	STATS_ADMIN_DRAIN,
	STATS_ADMIN_MAINT
};
/* "ready", "drain", "maint", or "?"; and back: the state, or -1. */
const char *stats_admin_name(uint32_t state);
int stats_admin_parse(const char *name);

#define STATS_WEIGHT_CONFIG UINT32_MAX /* admin weight: the config's */

/*
 * The operator's word on one server entry (same index as its row): WRITTEN BY
 * THE MASTER ONLY (control socket, state file); workers read it on every pick,
 * one relaxed load each field, and readers show it. A row that is new or
 * recycled starts READY with the config's weight. Survives reloads with the
 * row; the master's state file carries it across restarts.
 */
struct stats_server_admin {
	uint32_t state;  /* enum stats_admin_state */
	uint32_t weight; /* STATS_WEIGHT_CONFIG, or 0..CONF_WEIGHT_MAX set at run time */
};

/* The node as a whole, for the balancer in front (/healthz): SERVING, or
 * DRAINING (sluicectl drain: /healthz says 503 while the listeners still
 * accept for the grace period), then DRAINED (listeners closed, sessions
 * finishing). */
enum stats_node_state {
	STATS_NODE_SERVING = 0,
	STATS_NODE_DRAINING,
	STATS_NODE_DRAINED
};
/* "serving", "draining", "drained", or "?". */
const char *stats_node_name(uint32_t state);
/* "none", "ok", "refused", "timeout", "bad_reply", "error", or "?". */
const char *stats_check_name(uint32_t result);

/*
 * Health of one server entry (same index as its row). WRITTEN BY THE HEALTH
 * CHECKER ONLY, through stats_health_publish; workers and readers only read
 * (stats_health_read, stats_health_state). Entries never checked stay zero:
 * state UNKNOWN, last_result NONE.
 */
struct stats_health {
	uint64_t seq;            /* odd while the checker writes the rest */
	uint32_t state;          /* enum stats_health_state */
	uint32_t last_result;    /* enum stats_check_result */
	int32_t last_errno;      /* with STATS_CHECK_ERROR/REFUSED/TIMEOUT, else 0 */
	uint32_t successes;      /* consecutive successful checks */
	uint32_t failures;       /* consecutive failed checks */
	uint32_t last_duration_ms; /* how long the last check took */
	uint64_t last_check_ms;  /* CLOCK_REALTIME of the last check's end */
	uint64_t last_change_ms; /* CLOCK_REALTIME of the last change of state */
	uint64_t checks;         /* checks done */
	uint64_t checks_failed;  /* of which failed */
} __attribute__((aligned(64)));

/* A resolved entry's address (enum stats_addr_state). */
enum stats_addr_state {
	STATS_ADDR_NONE = 0, /* never resolved: the config's address (libc at load), if any */
	STATS_ADDR_PRESENT,  /* the address below, from the last good answer */
	STATS_ADDR_ABSENT    /* no address now: takes no new connection (drains) */
};
/* "none", "present", "absent", or "?". */
const char *stats_addr_name(uint32_t state);

/*
 * The address of one server entry that is a slot of a resolved name (a
 * server with resolve = true; same index as its row). WRITTEN BY THE CHECKER
 * ONLY, through stats_resolved_publish, after each answer that changes it;
 * workers read it on every pick (stats_resolved_try) and never resolve.
 * Entries of fixed addresses stay zero (NONE). A reload keeps the record
 * with the row: the new generation starts from the last good set.
 */
struct stats_resolved {
	uint64_t seq;        /* odd while the checker writes the rest */
	uint32_t state;      /* enum stats_addr_state */
	uint16_t family;     /* AF_INET or AF_INET6 while PRESENT */
	uint16_t port;       /* network byte order */
	uint8_t addr[16];    /* 4 bytes for AF_INET */
	uint32_t ttl_s;      /* the answer's TTL, clamped to dns.min_ttl..max_ttl */
	uint32_t changes;    /* times it took another address or state */
	uint64_t since_ms;   /* CLOCK_REALTIME when it took this address or state */
	uint64_t answer_ms;  /* CLOCK_REALTIME of the last good answer for its name */
} __attribute__((aligned(64)));

/* At offset 0 of the segment. Written by the master only (read-only to every
 * child). Readers take the counts and sizes once, at attach (struct
 * stats_seg), and the entries in use only up to those counts. */
struct stats_header {
	uint64_t magic;       /* STATS_MAGIC, release-stored last at creation */
	uint32_t version;     /* STATS_VERSION */
	uint32_t header_size; /* sizeof(struct stats_header) */
	uint64_t size;        /* bytes of the whole segment */
	uint32_t nslots;
	int32_t master_pid;
	uint64_t start_ms;   /* master start, CLOCK_REALTIME ms */
	uint64_t generation; /* reload generation, 1 at start */
	/* Odd while the master folds a slot into retired or changes the
	 * directory; readers that see it odd, or changed across their read,
	 * read again. */
	uint64_t fold_seq;
	uint32_t nlisteners;     /* capacity of the listener directory and rows */
	uint32_t nservers;       /* capacity of the server directory, health and rows */
	uint32_t listeners_used; /* directory entries in use; release-stored */
	uint32_t servers_used;
	/* The node and its reloads (master). */
	uint32_t node_state;       /* enum stats_node_state */
	uint32_t log_level;        /* enum log_level + 1 set at run time, 0: the config's */
	uint64_t drain_started_ms; /* CLOCK_REALTIME of the drain, 0 when serving */
	uint64_t drain_grace_ms;   /* listeners close this long after it */
	uint64_t reloads_ok;       /* reloads committed */
	uint64_t reloads_failed;   /* reloads refused or failed */
	uint64_t last_reload_ms;   /* CLOCK_REALTIME of the last reload's outcome, 0: none */
	uint32_t last_reload_ok;   /* 1 when that outcome was success */
	uint32_t pad;
	/* The shared per-source table (common/srclimit.h), copied by the
	 * master every tick: its slots, those holding a count (counted once a
	 * second), the connections counted per worker because their source
	 * found no slot, and the counts taken back from workers that died. */
	uint64_t source_slots;
	uint64_t source_slots_used;
	uint64_t source_table_full;
	uint64_t source_reconciled;
	/* Lifetime totals of listener and server rows recycled for other
	 * identities (stats_recycle_below): with these, the rows' sums never
	 * go backwards. */
	struct stats_listener_counters listeners_recycled;
	struct stats_server_counters servers_recycled;
	struct stats_counters retired; /* folded counters of exited workers */
} __attribute__((aligned(64)));

/*
 * A mapping of the segment. Areas after the header, in this order: listener
 * directory, server directory, server admin states, server health, resolved
 * addresses, retired
 * listener rows, retired server rows, worker slots, then per slot its nlisteners listener rows, then
 * per slot its nservers server rows. Areas start on a cache line; the health
 * and resolved areas (together), each slot, and each slot's block of listener rows and of server rows
 * start and end on a STATS_PAGE boundary, so that each can be the only
 * writable part of its writer's mapping.
 *
 * The counts and sizes here are private: validated against the mapped size
 * once, at create or attach, and never taken from the shared header again,
 * so nothing another process writes there can move a loop bound or an index
 * outside the mapping.
 */
struct stats_seg {
	struct stats_header *hdr;
	struct stats_slot *slots; /* nslots of them */
	struct stats_listener_entry *listeners;
	struct stats_server_entry *servers;
	struct stats_server_admin *admin;               /* parallel to servers */
	struct stats_health *health;                    /* parallel to servers */
	struct stats_resolved *resolved;                /* parallel to servers */
	struct stats_listener_counters *listener_retired; /* parallel to listeners */
	struct stats_server_counters *server_retired;     /* parallel to servers */
	char *listener_rows; /* per slot: stride listener_stride bytes */
	char *server_rows;
	size_t listener_stride, server_stride;
	size_t size;
	unsigned nslots, nlisteners, nservers; /* capacities, as validated */
	/* Directory entries in use. The master's own count (it is their only
	 * writer); readers reload hdr's and clamp it to the capacity. */
	unsigned listeners_used, servers_used;
	/* Master: entries whose generation is below this are used by no live
	 * process and may be recycled (stats_recycle_below). */
	uint32_t recycle_below;
	int writable;
};

/* Master: create (or replace) the segment file at path, mode 0640, sized for
 * nslots slots, STATS_LISTENERS listeners and STATS_SERVERS servers, mapped
 * shared read-write, header filled. A new file is renamed over path, so a
 * reader still mapping an old one keeps reading it, never a half-made one.
 * Returns 0, or -1 with errno and a reason in err. */
int stats_create(struct stats_seg *, const char *path, unsigned nslots,
    char *err, size_t errlen);

/* Reader: map path read-only and check magic, version and size (on a copy of
 * the header read with pread: a file truncated meanwhile cannot make this
 * fault; reading the mapping afterwards can, see cli/segread.c). The counts
 * checked are kept in seg. Returns 0, or
 * -1 with a one-line reason in err naming path ("no statistics segment at P
 * (is sluiced running?)", "P: layout version 7, this reader knows 3",
 * "P: truncated: 100 bytes, header says 4096", ...). */
int stats_attach(struct stats_seg *, const char *path, char *err, size_t errlen);

/* Unmap (both kinds). The file stays. */
void stats_detach(struct stats_seg *);

/* A child of the master, right after fork, on its copy of the master's
 * mapping: make every page read-only except, for the worker of slot `slot`,
 * its slot and its listener and server rows (stats_protect_worker), or for
 * the health checker the health and resolved areas (stats_protect_checker). The hot path
 * stays plain stores; a stray write elsewhere faults. The worker's seg is no
 * longer writable for the master's functions (fold, rows). Returns 0, or -1
 * with errno: EINVAL (slot out of range, not a created mapping), EOPNOTSUPP
 * (pages larger than STATS_PAGE), or mprotect's. */
int stats_protect_worker(struct stats_seg *, unsigned slot);
int stats_protect_checker(struct stats_seg *);
/* The admin process (admin/admin.c), a reader only: every page read-only.
 * Same returns as above. */
int stats_protect_reader(struct stats_seg *);

/* Slot slot's listener row `row` and server row. Unchecked: slot <
 * seg->nslots and row < seg->nlisteners (seg->nservers) are the caller's. */
struct stats_listener_counters *stats_slot_listener(const struct stats_seg *, unsigned slot,
    unsigned row);
struct stats_server_counters *stats_slot_server(const struct stats_seg *, unsigned slot,
    unsigned row);

/* Sum of retired and every non-free slot, consistent with respect to the
 * master's folds: retries while one is under way, for up to half a second;
 * past that (a master that died mid-fold) the sum may be off by one fold. */
void stats_total(const struct stats_seg *, struct stats_counters *out);

/* Master: add the COUNTERs of add to the retired row (a hot upgrade carries
 * the old segment's totals over, so that totals stay monotonic). */
void stats_retired_add(struct stats_seg *, const struct stats_counters *add);

/* A hot upgrade, new master: copy the old segment's directory (listener and
 * server entries, operators' states and weights) so that every identity
 * keeps its row number, which sessions handed over name; the per-row totals
 * (retired plus every live slot's row) into lo and so, arrays of
 * seg->nlisteners and seg->nservers; and add such totals to the retired rows
 * (COUNTERs only). */
void stats_inherit(struct stats_seg *dst, const struct stats_seg *src);
void stats_row_totals(const struct stats_seg *, struct stats_listener_counters *lo,
    struct stats_server_counters *so);
void stats_rows_retired_add(struct stats_seg *, const struct stats_listener_counters *lo,
    const struct stats_server_counters *so);

/* Master, after reaping the slot's worker: add its COUNTERs (slot and rows)
 * to the retired rows, zero the slot and its rows and mark it free. */
void stats_fold(struct stats_seg *, unsigned slot);

/*
 * Master, at start and on every reload, for each listener and server of the
 * new config: the row of that identity, reusing the entry an earlier
 * generation made for the same address (listeners) or the same upstream name
 * and address (servers), else taking a new one; the entry is stamped with
 * generation and the config's text. Returns the row, or STATS_NO_ROW when the
 * directory is full (the caller's figures then go to the worker totals only).
 */
unsigned stats_listener_row(struct stats_seg *, const struct sockaddr *, socklen_t,
    const char *address, const char *upstream, uint32_t generation);
unsigned stats_server_row(struct stats_seg *, const char *upstream, const struct sockaddr *,
    socklen_t, const char *address, unsigned weight, int backup, uint32_t generation);

/* Master, before assigning the rows of a new generation: entries whose
 * latest generation is below `generation` (the oldest generation any live
 * worker or checker has) belong to nobody now. While the directory has
 * room they keep their identity (a server that comes back finds its row);
 * once it is full, a new identity takes the oldest of them: its retired
 * totals move to the header's recycled rows and its health and admin
 * records start afresh. So the directory bounds the listeners and servers
 * in use at once, not in the master's life. */
void stats_recycle_below(struct stats_seg *, uint32_t generation);

/* The checker: publish h (its seq ignored) as the health of server row `row`.
 * Readers never see half of it. Out-of-range rows are ignored. */
void stats_health_publish(struct stats_seg *, unsigned row, const struct stats_health *h);

/* Readers: a consistent copy of row's health (zeroed when out of range).
 * Returns 1, or 0 when the checker kept writing for half a second (it died
 * mid-write): then the copy is what was there and may mix two records. */
int stats_health_read(const struct stats_seg *, unsigned row, struct stats_health *out);

/* Workers: the state alone (enum stats_health_state), one load, no retry. */
uint32_t stats_health_state(const struct stats_seg *, unsigned row);

/* The checker: publish r (its seq ignored) as the address of server row
 * `row`; readers never see half of it. Out-of-range rows are ignored. */
void stats_resolved_publish(struct stats_seg *, unsigned row, const struct stats_resolved *r);

/* Readers and the checker: a consistent copy of row's record (zeroed when
 * out of range), with the patience of stats_health_read. Returns 1, or 0
 * when it could not be read whole. */
int stats_resolved_read(const struct stats_seg *, unsigned row, struct stats_resolved *out);

/* Workers: row's address into *ss and *len (port included) when its state
 * is PRESENT. A few tries and no system call: a record being rewritten
 * just then counts as absent for this pick. Returns the state (enum
 * stats_addr_state) read, or STATS_ADDR_ABSENT when it could not be read
 * whole; *len is 0 unless PRESENT. */
struct sockaddr_storage;
uint32_t stats_resolved_try(const struct stats_seg *, unsigned row, struct sockaddr_storage *ss,
    socklen_t *len);

/* Readers: 1 when server entry e is a slot of a resolved name (its
 * address is the checker's, in stats_resolved), else 0. */
int stats_entry_resolved(const struct stats_server_entry *e);

/* Readers: r's address as "a.b.c.d:port" or "[v6]:port" into buf (at
 * least ADDR_STRLEN bytes), or "" when r is not PRESENT. Returns buf. */
char *stats_resolved_format(const struct stats_resolved *r, char *buf, size_t len);

/* Master: set row's admin state and weight (STATS_WEIGHT_CONFIG: the
 * config's). Out-of-range rows are ignored. */
void stats_admin_set(struct stats_seg *, unsigned row, uint32_t state, uint32_t weight);

/* Anyone: row's admin record, one relaxed load per field (READY with the
 * config's weight when out of range). */
struct stats_server_admin stats_admin_get(const struct stats_seg *, unsigned row);

/* What one non-free slot showed. */
struct stats_worker_view {
	unsigned slot;
	uint32_t state, generation, index;
	int32_t pid;
	uint64_t started_ms, heartbeat_ms;
	struct stats_counters c;
};

struct stats_listener_view {
	unsigned row;
	struct stats_listener_entry entry;
	struct stats_listener_counters c; /* retired + live slots */
};

struct stats_server_view {
	unsigned row;
	struct stats_server_entry entry;
	struct stats_health health;
	struct stats_resolved resolved; /* zero for a fixed address */
	struct stats_server_admin admin;
	struct stats_server_counters c; /* retired + live slots */
};

/* Everything a reader shows, read between two equal even fold_seq values. */
struct stats_snapshot {
	int32_t master_pid;
	uint64_t start_ms;
	uint64_t generation;
	int settled; /* 0: a fold never finished within the patience; may be off */
	uint32_t node_state, last_reload_ok;
	uint64_t drain_started_ms, drain_grace_ms;
	uint64_t reloads_ok, reloads_failed, last_reload_ms;
	uint64_t source_slots, source_slots_used, source_table_full, source_reconciled;
	unsigned running, draining;
	struct stats_counters retired, total;
	struct stats_listener_counters listeners_recycled;
	struct stats_server_counters servers_recycled;
	unsigned nworkers;
	struct stats_worker_view *workers; /* by slot */
	unsigned nlisteners;
	struct stats_listener_view *listeners; /* by row */
	unsigned nservers;
	struct stats_server_view *servers; /* by row */
	unsigned cap_workers, cap_listeners, cap_servers; /* storage, in views */
};

/* Reader: take a snapshot of seg. Returns a new one (free with
 * stats_snapshot_destroy), or NULL with errno ENOMEM. Bounded in time: every
 * retry it makes (folds, health records) shares one patience of half a
 * second, past which it reads once more and marks itself unsettled. */
struct stats_snapshot *stats_snapshot_create(const struct stats_seg *);
void stats_snapshot_destroy(struct stats_snapshot *);

/* stats_snapshot_create in two steps, for a caller that must own the storage
 * before any byte of the segment is read (to free it if the read is cut
 * short: sluicestat on a file truncated under it). alloc: empty storage
 * sized by seg's validated counts, NULL with ENOMEM. fill: a reading of seg
 * into sn, never past the storage's size whatever seg it is given. */
struct stats_snapshot *stats_snapshot_alloc(const struct stats_seg *);
void stats_snapshot_fill(const struct stats_seg *, struct stats_snapshot *sn);

/* Worker-side updates: single writer, relaxed, no lock prefix. STATS_ADD and
 * friends take a slot; STATS_ROW_* a listener or server row of that slot. */
#define STATS_ADD(slot, field, n) STATS_ROW_ADD(&(slot)->c, field, n)
#define STATS_SET(slot, field, v) STATS_ROW_SET(&(slot)->c, field, v)
#define STATS_GET(slot, field) __atomic_load_n(&(slot)->c.field, __ATOMIC_RELAXED)
#define STATS_ROW_ADD(row, field, n)                                                   \
	__atomic_store_n(&(row)->field,                                                \
	    __atomic_load_n(&(row)->field, __ATOMIC_RELAXED) + (uint64_t)(n),      \
	    __ATOMIC_RELAXED)
#define STATS_ROW_SUB(row, field, n)                                                   \
	__atomic_store_n(&(row)->field,                                                \
	    __atomic_load_n(&(row)->field, __ATOMIC_RELAXED) - (uint64_t)(n),      \
	    __ATOMIC_RELAXED)
#define STATS_ROW_SET(row, field, v) __atomic_store_n(&(row)->field, (uint64_t)(v), __ATOMIC_RELAXED)

/* Worker: one connect to row's server that succeeded after `seconds`. */
static inline void
stats_connect_observe(struct stats_server_counters *row, double seconds)
{
	static const uint64_t bounds[STATS_CONNECT_BUCKETS] = STATS_CONNECT_BOUNDS_US;
	uint64_t *bucket = &row->connect_le_1ms;
	uint64_t us = seconds > 0 ? (uint64_t)(seconds * 1e6) : 0;

	STATS_ROW_ADD(row, connected, 1);
	STATS_ROW_ADD(row, connect_us_sum, us);
	for (unsigned b = 0; b < STATS_CONNECT_BUCKETS; b++)
		if (us <= bounds[b]) {
			__atomic_store_n(&bucket[b],
			    __atomic_load_n(&bucket[b], __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
			break;
		}
}

/* CLOCK_REALTIME in milliseconds. */
uint64_t stats_now_ms(void);

#endif
