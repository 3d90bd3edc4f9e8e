/* SPDX-License-Identifier: BSD-2-Clause */
/* srclimit.h — the per-source connection counts every worker of one master
 * shares, so that max_connections_per_source holds across workers exactly:
 * a table of 64-bit words in memory the master maps shared before the first
 * fork, changed only by compare-and-swap (no lock, no syscall), and one
 * ledger per worker saying which of those counts are its own, so that the
 * master can take back what a worker that died held. The master creates and
 * reconciles; workers count; nothing here logs or allocates per connection.
 *
 * A word is a source's tag (39 bits of a keyed hash of its address and
 * limit group), a pending bit and its count (24 bits). Lookups probe
 * linearly from the source's home slot, at most SRCLIMIT_PROBE slots, to
 * the first slot never used. A slot whose count fell to zero is free: its
 * own source takes it back by counting into it, any other by a claim. A
 * claim marks the slot pending, then looks along the probe again for
 * another slot of its source and gives way by a fixed rule (srclimit.c,
 * claim), which keeps one slot per source without a lock (checked in debug
 * builds); a slot never goes back to never-used, so probes never shorten.
 * The table thus holds as many sources at once as it has slots, and fills
 * only when SRCLIMIT_PROBE slots in a row hold live sources; then a source
 * is "not counted here" and the caller falls back to its own per-worker
 * count (counted as source_table_full).
 */
#ifndef SLUICE_SRCLIMIT_H
#define SLUICE_SRCLIMIT_H

#include <stdint.h>

#define SRCLIMIT_PROBE 64 /* slots a lookup looks at, at most */
#define SRCLIMIT_MIN_SLOTS 1024
#define SRCLIMIT_MAX_SLOTS (1u << 24)
#define SRCLIMIT_COUNT_MAX ((1u << 24) - 1)

struct srclimit;
struct srclimit_ledger;

/* What the table shows (srclimit_usage). */
struct srclimit_usage {
	uint64_t slots;      /* capacity */
	uint64_t full;       /* times a source found no slot (counted per worker) */
	uint64_t reconciled; /* counts taken back from workers that died */
	uint64_t uncertain;  /* workers that died in the middle of an update */
};

/* Master: a table of the power of two of slots at least nslots (clamped to
 * SRCLIMIT_MIN_SLOTS..SRCLIMIT_MAX_SLOTS), mapped shared and anonymous so
 * children inherit it across fork and nothing else can open it; untouched
 * pages cost no memory. Returns NULL with errno. */
struct srclimit *srclimit_create(unsigned nslots);
void srclimit_destroy(struct srclimit *);

/* The slots an automatic limits.source_table gives for max_connections. */
unsigned srclimit_auto_slots(unsigned max_connections);

/* A random nonzero identity of this table: a session handed over between
 * workers of the same table keeps its count (srclimit_move_*). */
uint32_t srclimit_id(const struct srclimit *);

/* Master, before forking a worker: its ledger (a count per slot, zero),
 * shared with the master, which keeps it after the worker died to take its
 * counts back. NULL with errno. */
struct srclimit_ledger *srclimit_ledger_create(const struct srclimit *);
void srclimit_ledger_destroy(struct srclimit_ledger *);

/* Worker: count one more connection of source key (16 bytes, IPv4 mapped
 * into IPv6) in limit group `group`, unless it already has `limit` (force:
 * whatever the limit, for a session that exists already). Returns 1 when
 * counted, 0 when refused at the limit, -1 when the source has no slot (the
 * table is full where it hashes, or another worker's claim of the source
 * did not end: that worker stopped): nothing counted, the caller decides. */
int srclimit_get(struct srclimit *, struct srclimit_ledger *, const uint8_t key[16], uint32_t group,
    unsigned limit, int force);

/* Worker: a connection srclimit_get counted has closed. Returns 1, or 0
 * when this worker holds no count of that source (it was counted
 * elsewhere: the caller's fallback). */
int srclimit_put(
    struct srclimit *, struct srclimit_ledger *, const uint8_t key[16], uint32_t group);

/* Worker, handing a session to another worker of the same table: its count
 * stays in the table and leaves this worker's ledger (move_out; 1, or 0 when
 * this worker held none). The receiver takes it into its ledger (move_in; 1,
 * or 0 when the source has no count in the table: count it afresh). */
int srclimit_move_out(
    struct srclimit *, struct srclimit_ledger *, const uint8_t key[16], uint32_t group);
int srclimit_move_in(
    struct srclimit *, struct srclimit_ledger *, const uint8_t key[16], uint32_t group);

/* Worker: 1 when this worker's ledger holds a count of the source (a
 * session it hands over then leaves its count behind), else 0. */
int srclimit_holds(
    const struct srclimit *, const struct srclimit_ledger *, const uint8_t key[16], uint32_t group);

/* Worker: the count of the source now, all workers together (for tests
 * and logs). */
unsigned srclimit_count(const struct srclimit *, const uint8_t key[16], uint32_t group);

/* Master, after reaping the ledger's worker: subtract every count it held
 * from the table, and withdraw a claim it died in. Returns the connections
 * taken back. */
uint64_t srclimit_reconcile(struct srclimit *, struct srclimit_ledger *);

/* Master, now and then, while no session is on its way between two
 * workers (a hand-off): counts the table holds that none of the n ledgers
 * (every worker's, alive or not yet reconciled; n <= SRCLIMIT_AUDIT_MAX)
 * does are taken back: a worker killed between its two writes of one update,
 * a session lost in a hand-off. A slot is judged only when no worker was in
 * an update while it was read. Returns the counts taken back (added to
 * reconciled). */
#define SRCLIMIT_AUDIT_MAX 512
uint64_t srclimit_audit(struct srclimit *, struct srclimit_ledger *const *ls, unsigned n);

void srclimit_usage(const struct srclimit *, struct srclimit_usage *out);

/* The slots that hold a count now, counted by walking the slots in memory:
 * the master's, now and then (2^20 slots, all in memory, take a few
 * milliseconds). */
uint64_t srclimit_used(const struct srclimit *);

/* Tests only: the slot where the source's probe starts, and a function a
 * worker calls between looking for a free slot and claiming it (stage 0)
 * and between marking it claimed and looking again (stage 1); NULL. */
uint32_t srclimit_home(const struct srclimit *, const uint8_t key[16], uint32_t group);
extern void (*srclimit_test_pause)(int stage);

#endif
