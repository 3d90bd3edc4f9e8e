/* stats.h — layout of the shared-memory statistics segment, its creation
 * (master, before the first fork) and read-only attachment (sluicestat, tests).
 * Workers write only their own slot, with relaxed atomic stores and no
 * syscalls or locks; readers never block writers. */
#ifndef SLUICE_STATS_H
#define SLUICE_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STATS_MAGIC 0x31454349554c53ULL /* "SLUICE1" little-endian */
#define STATS_VERSION 1
#define STATS_SLOTS 512 /* worker slots: current and draining generations */

/*
 * Every per-worker figure, declared once. X(name, kind, help):
 * kind COUNTER only grows for the life of a worker and is folded into the
 * retired row when the worker exits; GAUGE is a current value, zero once the
 * worker is gone. Struct fields, aggregation, the CLI and its names are all
 * expanded from this list.
 */
#define STATS_WORKER_FIELDS(X)                                                     \
	X(accepted, COUNTER, "client connections accepted")                        \
	X(closed, COUNTER, "client connections closed")                            \
	X(bytes_in, COUNTER, "bytes relayed client to server")                     \
	X(bytes_out, COUNTER, "bytes relayed server to client")                    \
	X(connect_failures, COUNTER, "upstream connect attempts that failed")      \
	X(timeouts, COUNTER, "connections closed by the connect or idle timeout")  \
	X(refused, COUNTER, "connections refused (no upstream, no memory)")        \
	X(accept_pauses, COUNTER, "times accepting paused on EMFILE/ENFILE/limit") \
	X(active, GAUGE, "client connections open now")                            \
	X(pool_buffers_total, GAUGE, "relay buffers carved from the pool")         \
	X(pool_buffers_used, GAUGE, "relay buffers holding data now")              \
	X(pool_bytes_mapped, GAUGE, "bytes the pools have mapped")

enum stats_kind { STATS_COUNTER, STATS_GAUGE };

struct stats_counters {
#define STATS_X_FIELD(name, kind, help) uint64_t name;
	STATS_WORKER_FIELDS(STATS_X_FIELD)
#undef STATS_X_FIELD
};

/* Describes one field of stats_counters, for readers that walk them all. */
struct stats_field {
	const char *name;
	enum stats_kind kind;
	const char *help;
	size_t offset; /* in struct stats_counters */
};
extern const struct stats_field stats_fields[];
extern const unsigned stats_nfields;

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
 * One per worker. While the worker lives it is the only writer of every field;
 * the master writes the slot only before forking the worker (reset, generation,
 * state STARTING) and after reaping it (fold, state FREE).
 */
struct stats_slot {
	uint32_t state;      /* enum stats_slot_state; release-stored last */
	uint32_t generation; /* reload generation the worker belongs to */
	int32_t pid;         /* worker: getpid() at start */
	uint32_t index;      /* master: worker number within its generation */
	uint64_t started_ms; /* worker: CLOCK_REALTIME at start, ms */
	uint64_t heartbeat_ms; /* worker: CLOCK_REALTIME, refreshed every second */
	struct stats_counters c;
} __attribute__((aligned(64)));

/* At offset 0 of the segment. Written by the master only. */
struct stats_header {
	uint64_t magic;       /* STATS_MAGIC, release-stored last at creation */
	uint32_t version;     /* STATS_VERSION */
	uint32_t header_size; /* sizeof(struct stats_header) */
	uint64_t size;        /* bytes of the whole segment */
	uint32_t nslots;
	int32_t master_pid;
	uint64_t start_ms;   /* master start, CLOCK_REALTIME ms */
	uint64_t generation; /* reload generation, 1 at start */
	/* Odd while the master folds a slot into retired; readers that see it
	 * odd, or changed across their read, read again. */
	uint64_t fold_seq;
	struct stats_counters retired; /* folded counters of exited workers */
} __attribute__((aligned(64)));

struct stats_seg {
	struct stats_header *hdr;
	struct stats_slot *slots; /* hdr->nslots of them */
	size_t size;
	int writable;
};

/* Master: create (or replace) the segment file at path, mode 0640, sized for
 * nslots, mapped shared read-write, header filled. Returns 0, or -1 with errno
 * and a reason in err. */
int stats_create(struct stats_seg *, const char *path, unsigned nslots,
    char *err, size_t errlen);

/* Reader: map path read-only and check magic, version and size. Returns 0, or
 * -1 with a one-line reason in err naming path ("no statistics segment at P
 * (is sluiced running?)", "P: layout version 7, this reader knows 1",
 * "P: truncated: 100 bytes, header says 4096", ...). */
int stats_attach(struct stats_seg *, const char *path, char *err, size_t errlen);

/* Unmap (both kinds). The file stays. */
void stats_detach(struct stats_seg *);

/* Sum of retired and every non-free slot, consistent with respect to the
 * master's folds: retries while one is under way, for up to half a second;
 * past that (a master that died mid-fold) the sum may be off by one fold. */
void stats_total(const struct stats_seg *, struct stats_counters *out);

/* Master, after reaping the slot's worker: add its COUNTERs to retired and
 * mark the slot free. */
void stats_fold(struct stats_seg *, unsigned slot);

/* Worker-side updates: single writer, relaxed, no lock prefix. */
#define STATS_ADD(slot, field, n)                                                     \
	__atomic_store_n(&(slot)->c.field,                                            \
	    __atomic_load_n(&(slot)->c.field, __ATOMIC_RELAXED) + (uint64_t)(n), \
	    __ATOMIC_RELAXED)
#define STATS_SET(slot, field, v) \
	__atomic_store_n(&(slot)->c.field, (uint64_t)(v), __ATOMIC_RELAXED)
#define STATS_GET(slot, field) __atomic_load_n(&(slot)->c.field, __ATOMIC_RELAXED)

/* CLOCK_REALTIME in milliseconds. */
uint64_t stats_now_ms(void);

#endif
