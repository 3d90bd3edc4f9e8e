/* SPDX-License-Identifier: BSD-2-Clause */
/* stats.c — the shared-memory statistics segment: creation by the master
 * before its first fork, the directory of listener and server rows, read-only
 * attachment and snapshots for sluicestat and the tests, the fold of an
 * exited worker into the retired rows, the health checker's area, and the
 * write protection a child puts on its mapping after fork.
 * Runs in the master, the checker and readers; never logs, never exits, and
 * never blocks a worker (readers only load, the master only folds reaped
 * slots and writes the directory, which workers never read). */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include "addr.h"
#include "stats.h"

/* A reader that keeps losing the race against folds still has to answer. */
#define STATS_TOTAL_PATIENCE_MS 500
/* Row indexes are 16-bit, STATS_NO_ROW excluded. */
#define STATS_ROWS_MAX (STATS_NO_ROW - 1)
#define STATS_SLOTS_MAX 65536
#define STATS_LINE 64

const struct stats_field stats_fields[] = {
#define STATS_X_DESC(name, kind, view, help) \
	{ #name, STATS_##kind, STATS_##view, help, offsetof(struct stats_counters, name) },
	STATS_WORKER_FIELDS(STATS_X_DESC)
#undef STATS_X_DESC
#define STATS_X_DESC(up, name, help)                          \
	{ "closed_" #name, STATS_COUNTER, STATS_DETAIL, help, \
	    offsetof(struct stats_counters, closed_by[STATS_CLOSE_##up]) },
	STATS_CLOSE_REASONS(STATS_X_DESC)
#undef STATS_X_DESC
#define STATS_X_DESC(up, name, help)                           \
	{ "refused_" #name, STATS_COUNTER, STATS_DETAIL, help, \
	    offsetof(struct stats_counters, refused_by[STATS_REFUSE_##up]) },
	STATS_REFUSE_REASONS(STATS_X_DESC)
#undef STATS_X_DESC
};
const unsigned stats_nfields = sizeof(stats_fields) / sizeof(stats_fields[0]);

const struct stats_field stats_listener_fields[] = {
#define STATS_X_DESC(name, kind, help) \
	{ #name, STATS_##kind, STATS_BRIEF, help, offsetof(struct stats_listener_counters, name) },
	STATS_LISTENER_FIELDS(STATS_X_DESC)
#undef STATS_X_DESC
};
const unsigned stats_listener_nfields =
    sizeof(stats_listener_fields) / sizeof(stats_listener_fields[0]);

const struct stats_field stats_server_fields[] = {
#define STATS_X_DESC(name, kind, help) \
	{ #name, STATS_##kind, STATS_BRIEF, help, offsetof(struct stats_server_counters, name) },
	STATS_SERVER_FIELDS(STATS_X_DESC)
#undef STATS_X_DESC
};
const unsigned stats_server_nfields = sizeof(stats_server_fields) / sizeof(stats_server_fields[0]);

/* The sums below walk counters structs as arrays of 64-bit words. */
_Static_assert(sizeof(struct stats_counters) ==
    sizeof(stats_fields) / sizeof(stats_fields[0]) * sizeof(uint64_t),
    "every worker field is a described 64-bit counter");
_Static_assert(sizeof(struct stats_listener_counters) ==
    sizeof(stats_listener_fields) / sizeof(stats_listener_fields[0]) * sizeof(uint64_t),
    "every listener field is a described 64-bit counter");
_Static_assert(sizeof(struct stats_server_counters) ==
    sizeof(stats_server_fields) / sizeof(stats_server_fields[0]) * sizeof(uint64_t),
    "every server field is a described 64-bit counter");
_Static_assert(sizeof(struct stats_slot) % STATS_LINE == 0,
    "a slot fills whole cache lines, so no two writers share one");
_Static_assert(sizeof(struct stats_header) % STATS_LINE == 0,
    "the areas after the header start on their own cache line");
_Static_assert(sizeof(struct stats_health) == STATS_LINE,
    "one server's health is one cache line");
_Static_assert(sizeof(struct stats_resolved) == STATS_LINE,
    "one server's resolved address is one cache line");
_Static_assert(STATS_LISTENERS <= STATS_ROWS_MAX && STATS_SERVERS <= STATS_ROWS_MAX,
    "row indexes fit 16 bits");

static const char *const stats_state_names[] = {
	[STATS_SLOT_FREE] = "free",
	[STATS_SLOT_STARTING] = "starting",
	[STATS_SLOT_RUNNING] = "running",
	[STATS_SLOT_DRAINING] = "draining",
	[STATS_SLOT_EXITED] = "exited",
};

static const char *const stats_health_names[] = {
	[STATS_HEALTH_UNKNOWN] = "unknown",
	[STATS_HEALTH_UP] = "up",
	[STATS_HEALTH_DOWN] = "down",
};

static const char *const stats_check_names[] = {
	[STATS_CHECK_NONE] = "none",
	[STATS_CHECK_OK] = "ok",
	[STATS_CHECK_REFUSED] = "refused",
	[STATS_CHECK_TIMEOUT] = "timeout",
	[STATS_CHECK_BAD_REPLY] = "bad_reply",
	[STATS_CHECK_ERROR] = "error",
};

static const char *const stats_addr_names[] = {
	[STATS_ADDR_NONE] = "none",
	[STATS_ADDR_PRESENT] = "present",
	[STATS_ADDR_ABSENT] = "absent",
};

static const char *const stats_admin_names[] = {
	[STATS_ADMIN_READY] = "ready",
	[STATS_ADMIN_DRAIN] = "drain",
	[STATS_ADMIN_MAINT] = "maint",
};

static const char *const stats_node_names[] = {
	[STATS_NODE_SERVING] = "serving",
	[STATS_NODE_DRAINING] = "draining",
	[STATS_NODE_DRAINED] = "drained",
};

#define NAME_OF(table, i) \
	((i) < sizeof(table) / sizeof((table)[0]) && (table)[i] != NULL ? (table)[i] : "?")

const char *
stats_state_name(uint32_t state)
{
	return NAME_OF(stats_state_names, state);
}

const char *
stats_health_name(uint32_t state)
{
	return NAME_OF(stats_health_names, state);
}

const char *
stats_check_name(uint32_t result)
{
	return NAME_OF(stats_check_names, result);
}

const char *
stats_addr_name(uint32_t state)
{
	return NAME_OF(stats_addr_names, state);
}

const char *
stats_admin_name(uint32_t state)
{
	return NAME_OF(stats_admin_names, state);
}

int
stats_admin_parse(const char *name)
{
	for (unsigned i = 0; i < sizeof(stats_admin_names) / sizeof(stats_admin_names[0]); i++)
		if (strcmp(name, stats_admin_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *
stats_node_name(uint32_t state)
{
	return NAME_OF(stats_node_names, state);
}

uint64_t
stats_field_get(const void *c, const struct stats_field *f)
{
	return __atomic_load_n((const uint64_t *)((const char *)c + f->offset), __ATOMIC_RELAXED);
}

int
stats_field_find(const struct stats_field *table, unsigned n, const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(table[i].name, name) == 0)
			return (int)i;
	return -1;
}

uint64_t
stats_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

_Static_assert(sizeof(struct stats_slot) == STATS_PAGE,
    "a slot is one page: the only one of the slot area its worker can write");

/* Where each area starts, in bytes from the header. */
struct stats_layout {
	uint64_t listeners, servers, admin, health, resolved, listener_retired, server_retired, slots;
	uint64_t listener_rows, server_rows, listener_stride, server_stride, size;
	unsigned nslots, nlisteners, nservers;
};

static uint64_t
stats_align(uint64_t n)
{
	return (n + STATS_LINE - 1) / STATS_LINE * STATS_LINE;
}

static uint64_t
stats_page_align(uint64_t n)
{
	return (n + STATS_PAGE - 1) / STATS_PAGE * STATS_PAGE;
}

/* Computes the layout; -1 when a count is out of range (then no product
 * below can overflow 64 bits either). */
static int
stats_layout(uint64_t nslots, uint64_t nl, uint64_t ns, struct stats_layout *lo)
{
	uint64_t at = sizeof(struct stats_header);

	if (nslots == 0 || nslots > STATS_SLOTS_MAX || nl > STATS_ROWS_MAX || ns > STATS_ROWS_MAX)
		return -1;
	lo->nslots = (unsigned)nslots;
	lo->nlisteners = (unsigned)nl;
	lo->nservers = (unsigned)ns;
	lo->listeners = at;
	at = stats_align(at + nl * sizeof(struct stats_listener_entry));
	lo->servers = at;
	at = stats_align(at + ns * sizeof(struct stats_server_entry));
	lo->admin = at;
	at = stats_align(at + ns * sizeof(struct stats_server_admin));
	/* Pages of their own: the checker's, then each worker's. */
	at = stats_page_align(at);
	lo->health = at;
	at = at + ns * sizeof(struct stats_health);
	lo->resolved = at;
	at = stats_page_align(at + ns * sizeof(struct stats_resolved));
	lo->listener_retired = at;
	at = stats_align(at + nl * sizeof(struct stats_listener_counters));
	lo->server_retired = at;
	at = stats_page_align(at + ns * sizeof(struct stats_server_counters));
	lo->slots = at;
	at += nslots * sizeof(struct stats_slot);
	lo->listener_stride = stats_page_align(nl * sizeof(struct stats_listener_counters));
	lo->server_stride = stats_page_align(ns * sizeof(struct stats_server_counters));
	lo->listener_rows = at;
	at += nslots * lo->listener_stride;
	lo->server_rows = at;
	at += nslots * lo->server_stride;
	lo->size = at;
	return 0;
}

static void
stats_map(struct stats_seg *seg, void *map, const struct stats_layout *lo, int writable)
{
	char *base = map;

	seg->hdr = map;
	seg->listeners = (struct stats_listener_entry *)(base + lo->listeners);
	seg->servers = (struct stats_server_entry *)(base + lo->servers);
	seg->admin = (struct stats_server_admin *)(base + lo->admin);
	seg->health = (struct stats_health *)(base + lo->health);
	seg->resolved = (struct stats_resolved *)(base + lo->resolved);
	seg->listener_retired = (struct stats_listener_counters *)(base + lo->listener_retired);
	seg->server_retired = (struct stats_server_counters *)(base + lo->server_retired);
	seg->slots = (struct stats_slot *)(base + lo->slots);
	seg->listener_rows = base + lo->listener_rows;
	seg->server_rows = base + lo->server_rows;
	seg->listener_stride = lo->listener_stride;
	seg->server_stride = lo->server_stride;
	seg->size = lo->size;
	seg->nslots = lo->nslots;
	seg->nlisteners = lo->nlisteners;
	seg->nservers = lo->nservers;
	seg->listeners_used = seg->servers_used = 0;
	seg->writable = writable;
}

int
stats_create(struct stats_seg *seg, const char *path, unsigned nslots,
    char *err, size_t errlen)
{
	struct stats_layout lo;
	struct stats_header *hdr;
	char *tmp;
	void *map;
	int fd, saved;

	memset(seg, 0, sizeof(*seg));
	if (stats_layout(nslots, STATS_LISTENERS, STATS_SERVERS, &lo) == -1 ||
	    (off_t)lo.size < 0 || (uint64_t)(size_t)lo.size != lo.size) {
		snprintf(err, errlen, "%s: cannot hold %u worker slots", path, nslots);
		errno = EINVAL;
		return -1;
	}
	/* Made aside and renamed into place: a reader of the previous segment
	 * (sluicestat -w) keeps its file and never maps one being sized. */
	if (asprintf(&tmp, "%s.XXXXXX", path) == -1) {
		snprintf(err, errlen, "%s: out of memory", path);
		errno = ENOMEM;
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd == -1) {
		saved = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(saved));
		free(tmp);
		errno = saved;
		return -1;
	}
	/* The umask must not decide who may read the counters. */
	if (fchmod(fd, 0640) == -1) {
		saved = errno;
		snprintf(err, errlen, "%s: chmod: %s", path, strerror(saved));
		goto fail;
	}
	/* Sparse: rows never written cost no memory or disk. */
	if (ftruncate(fd, (off_t)lo.size) == -1) {
		saved = errno;
		snprintf(err, errlen, "%s: cannot size to %" PRIu64 " bytes: %s", path, lo.size,
		    strerror(saved));
		goto fail;
	}
	map = mmap(NULL, (size_t)lo.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		saved = errno;
		snprintf(err, errlen, "%s: mmap: %s", path, strerror(saved));
		goto fail;
	}

	hdr = map;
	hdr->version = STATS_VERSION;
	hdr->header_size = sizeof(*hdr);
	hdr->size = lo.size;
	hdr->nslots = nslots;
	hdr->master_pid = (int32_t)getpid();
	hdr->start_ms = stats_now_ms();
	hdr->generation = 1;
	hdr->nlisteners = STATS_LISTENERS;
	hdr->nservers = STATS_SERVERS;
	/* Readers trust nothing before the magic: it goes last, released. */
	__atomic_store_n(&hdr->magic, STATS_MAGIC, __ATOMIC_RELEASE);

	if (rename(tmp, path) == -1) {
		saved = errno;
		snprintf(err, errlen, "%s: rename: %s", path, strerror(saved));
		munmap(map, (size_t)lo.size);
		goto fail;
	}
	close(fd);
	free(tmp);
	stats_map(seg, map, &lo, 1);
	return 0;

fail:
	close(fd);
	unlink(tmp);
	free(tmp);
	errno = saved;
	return -1;
}

/* Checks a mapped segment of size bytes and fills *lo; 0, or -1 with err and
 * errno. */
static int
stats_check(const struct stats_header *hdr, size_t size, const char *path,
    struct stats_layout *lo, char *err, size_t errlen)
{
	/* Each field is loaded once: what is checked is what is used, however
	 * the file changes meanwhile. */
	uint32_t version, header_size, nslots, nl, ns;
	uint64_t hsize;

	if (__atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE) != STATS_MAGIC) {
		snprintf(err, errlen, "%s: not a sluice statistics segment", path);
		errno = EINVAL;
		return -1;
	}
	version = __atomic_load_n(&hdr->version, __ATOMIC_RELAXED);
	header_size = __atomic_load_n(&hdr->header_size, __ATOMIC_RELAXED);
	hsize = __atomic_load_n(&hdr->size, __ATOMIC_RELAXED);
	nslots = __atomic_load_n(&hdr->nslots, __ATOMIC_RELAXED);
	nl = __atomic_load_n(&hdr->nlisteners, __ATOMIC_RELAXED);
	ns = __atomic_load_n(&hdr->nservers, __ATOMIC_RELAXED);
	if (version != STATS_VERSION) {
		snprintf(err, errlen, "%s: layout version %" PRIu32 ", this reader knows %d",
		    path, version, STATS_VERSION);
		errno = EPROTO;
		return -1;
	}
	if (header_size != sizeof(*hdr)) {
		snprintf(err, errlen, "%s: header of %" PRIu32 " bytes, this reader knows %zu",
		    path, header_size, sizeof(*hdr));
		errno = EPROTO;
		return -1;
	}
	if (hsize != size) {
		if (size < hsize)
			snprintf(err, errlen, "%s: truncated: %zu bytes, header says %" PRIu64,
			    path, size, hsize);
		else
			snprintf(err, errlen, "%s: size %zu bytes, header says %" PRIu64,
			    path, size, hsize);
		errno = EINVAL;
		return -1;
	}
	/* In 64 bits with bounded counts, so hostile counts cannot wrap around
	 * to match. */
	if (stats_layout(nslots, nl, ns, lo) == -1 || lo->size != size) {
		snprintf(err, errlen, "%s: %" PRIu32 " slots, %" PRIu32 " listeners and %" PRIu32
		    " servers do not fit a segment of %zu bytes", path, nslots, nl, ns, size);
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int
stats_attach(struct stats_seg *seg, const char *path, char *err, size_t errlen)
{
	struct stats_header hdr;
	struct stats_layout lo;
	struct stat st;
	size_t size;
	ssize_t n;
	void *map;
	int fd, saved;

	memset(seg, 0, sizeof(*seg));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		saved = errno;
		if (saved == ENOENT)
			snprintf(err, errlen, "no statistics segment at %s (is sluiced running?)",
			    path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		saved = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(saved));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		saved = EINVAL;
		snprintf(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if ((uint64_t)st.st_size < sizeof(struct stats_header)) {
		saved = EINVAL;
		snprintf(err, errlen, "%s: truncated: %jd bytes, smaller than a header",
		    path, (intmax_t)st.st_size);
		goto fail;
	}
	size = (size_t)st.st_size;
	/* The header is checked in a copy read with pread, not through the
	 * mapping: a file truncated meanwhile makes a short read here, never
	 * a fault, so attaching cannot be killed by one. */
	n = pread(fd, &hdr, sizeof(hdr), 0);
	if (n != (ssize_t)sizeof(hdr)) {
		saved = n == -1 ? errno : EINVAL;
		snprintf(err, errlen, "%s: %s", path,
		    n == -1 ? strerror(saved) : "truncated while being read");
		goto fail;
	}
	if (stats_check(&hdr, size, path, &lo, err, errlen) == -1) {
		saved = errno;
		goto fail;
	}
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		saved = errno;
		snprintf(err, errlen, "%s: mmap: %s", path, strerror(saved));
		goto fail;
	}
	close(fd);
	stats_map(seg, map, &lo, 0);
	return 0;

fail:
	close(fd);
	errno = saved;
	return -1;
}

void
stats_detach(struct stats_seg *seg)
{
	if (seg->hdr != NULL)
		munmap(seg->hdr, seg->size);
	memset(seg, 0, sizeof(*seg));
}

/* Everything read-only, then [from, from + len) writable again. */
static int
stats_protect(struct stats_seg *seg, const size_t *from, const size_t *len, unsigned n)
{
	long page = sysconf(_SC_PAGESIZE);

	if (seg->hdr == NULL || !seg->writable) {
		errno = EINVAL;
		return -1;
	}
	if (page <= 0 || STATS_PAGE % page != 0) {
		errno = EOPNOTSUPP;
		return -1;
	}
	if (mprotect(seg->hdr, seg->size, PROT_READ) == -1)
		return -1;
	for (unsigned i = 0; i < n; i++)
		if (len[i] != 0 &&
		    mprotect((char *)seg->hdr + from[i], len[i], PROT_READ | PROT_WRITE) == -1)
			return -1;
	return 0;
}

int
stats_protect_worker(struct stats_seg *seg, unsigned slot)
{
	const char *base = (const char *)seg->hdr;
	size_t from[3], len[3];

	if (slot >= seg->nslots) {
		errno = EINVAL;
		return -1;
	}
	from[0] = (size_t)((const char *)&seg->slots[slot] - base);
	len[0] = sizeof(struct stats_slot);
	from[1] = (size_t)((const char *)stats_slot_listener(seg, slot, 0) - base);
	len[1] = seg->listener_stride;
	from[2] = (size_t)((const char *)stats_slot_server(seg, slot, 0) - base);
	len[2] = seg->server_stride;
	if (stats_protect(seg, from, len, 3) == -1)
		return -1;
	seg->writable = 0;
	return 0;
}

int
stats_protect_reader(struct stats_seg *seg)
{
	if (stats_protect(seg, NULL, NULL, 0) == -1)
		return -1;
	seg->writable = 0;
	return 0;
}

int
stats_protect_checker(struct stats_seg *seg)
{
	size_t from = (size_t)((const char *)seg->health - (const char *)seg->hdr);
	size_t len = (size_t)stats_page_align(seg->nservers *
	    (sizeof(struct stats_health) + sizeof(struct stats_resolved)));

	/* Still "writable": stats_health_publish is what it calls. */
	return stats_protect(seg, &from, &len, 1);
}

struct stats_listener_counters *
stats_slot_listener(const struct stats_seg *seg, unsigned slot, unsigned row)
{
	return (struct stats_listener_counters *)(seg->listener_rows +
	    (size_t)slot * seg->listener_stride) + row;
}

struct stats_server_counters *
stats_slot_server(const struct stats_seg *seg, unsigned slot, unsigned row)
{
	return (struct stats_server_counters *)(seg->server_rows +
	    (size_t)slot * seg->server_stride) + row;
}

/* dst += src, word by word; src may be changing under a writer. */
static void
stats_add_words(void *dst, const void *src, size_t bytes)
{
	uint64_t *d = dst;
	const uint64_t *s = src;

	for (size_t i = 0; i < bytes / sizeof(uint64_t); i++)
		d[i] += __atomic_load_n(&s[i], __ATOMIC_RELAXED);
}

static int
stats_slot_live(const struct stats_slot *s)
{
	/* Acquire pairs with the release-store that published the slot: its
	 * reset fields are visible before we add them. */
	return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != STATS_SLOT_FREE;
}

/* One pass over retired and the live slots, without regard to folds. The
 * retired row holds no gauges, so adding all of it is right. */
static void
stats_sum(const struct stats_seg *seg, struct stats_counters *out)
{
	const struct stats_header *hdr = seg->hdr;

	memset(out, 0, sizeof(*out));
	stats_add_words(out, &hdr->retired, sizeof(*out));
	for (unsigned i = 0; i < seg->nslots; i++)
		if (stats_slot_live(&seg->slots[i]))
			stats_add_words(out, &seg->slots[i].c, sizeof(*out));
}

/* CLOCK_MONOTONIC in milliseconds: patience must not stretch with a step
 * of the wall clock. */
static uint64_t
stats_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The reading side of a sequence lock: call read(arg) until it ran while seq
 * stayed the same even value, and store that value in *seen (may be NULL).
 * Bounded in time, not tries: a writer preempted mid-write on a busy machine
 * holds seq odd for a scheduler tick, far longer than any number of spins,
 * while one that died mid-write must not hang readers. *give_up is the
 * deadline (0: none yet; set to STATS_TOTAL_PATIENCE_MS from the first wait),
 * shared by every read of one reading, so that many records left odd (a
 * dead or hostile writer) cost one patience, not one each. Returns 1 when
 * the read is consistent, 0 when patience ran out (read once more
 * regardless). */
static int
seq_read(const uint64_t *seq, void (*read)(void *), void *arg, uint64_t *seen,
    uint64_t *give_up)
{
	uint64_t before, after;

	for (unsigned long tries = 0;; tries++) {
		if ((tries & 63) == 63) {
			uint64_t now = stats_mono_ms();

			if (*give_up == 0)
				*give_up = now + STATS_TOTAL_PATIENCE_MS;
			else if (now > *give_up)
				break;
			sched_yield();
		}
		before = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
		if (before & 1)
			continue;
		read(arg);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		after = __atomic_load_n(seq, __ATOMIC_RELAXED);
		if (after == before) {
			if (seen != NULL)
				*seen = before;
			return 1;
		}
	}
	read(arg);
	if (seen != NULL)
		*seen = __atomic_load_n(seq, __ATOMIC_RELAXED);
	return 0;
}

struct settled_read {
	const struct stats_seg *seg;
	void (*read)(const struct stats_seg *, void *);
	void *arg;
};

static void
settled_read_cb(void *p)
{
	const struct settled_read *r = p;

	r->read(r->seg, r->arg);
}

/* read(seg, arg) consistent with respect to the master's folds, within the
 * patience *give_up (see seq_read). */
static int
stats_read_settled(const struct stats_seg *seg, void (*read)(const struct stats_seg *, void *),
    void *arg, uint64_t *give_up)
{
	struct settled_read r = { seg, read, arg };

	return seq_read(&seg->hdr->fold_seq, settled_read_cb, &r, NULL, give_up);
}

static void
stats_total_read(const struct stats_seg *seg, void *out)
{
	stats_sum(seg, out);
}

void
stats_total(const struct stats_seg *seg, struct stats_counters *out)
{
	uint64_t give_up = 0;

	stats_read_settled(seg, stats_total_read, out, &give_up);
}

/* The master's multi-field writes are bracketed by an odd fold_seq. Only the
 * master writes it, so a relaxed read is exact; the fence keeps the odd value
 * ahead of the stores that follow: a reader that sees any of them also sees
 * the write under way. */
static uint64_t
stats_write_begin(struct stats_header *hdr)
{
	uint64_t seq = __atomic_load_n(&hdr->fold_seq, __ATOMIC_RELAXED);

	__atomic_store_n(&hdr->fold_seq, seq + 1, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	return seq;
}

static void
stats_write_end(struct stats_header *hdr, uint64_t seq)
{
	__atomic_store_n(&hdr->fold_seq, seq + 2, __ATOMIC_RELEASE);
}

/* retired += the COUNTERs of live, then live = 0. Rows never written stay
 * untouched, so folding costs no memory for the sparse parts. */
static void
stats_fold_row(void *retired, void *live, const struct stats_field *fields, unsigned n,
    size_t bytes)
{
	uint64_t *l = live, v;
	int dirty = 0;

	for (size_t i = 0; i < bytes / sizeof(uint64_t); i++)
		if (__atomic_load_n(&l[i], __ATOMIC_RELAXED) != 0)
			dirty = 1;
	if (!dirty)
		return;
	for (unsigned f = 0; f < n; f++) {
		uint64_t *r = (uint64_t *)((char *)retired + fields[f].offset);

		if (fields[f].kind != STATS_COUNTER)
			continue;
		v = __atomic_load_n(r, __ATOMIC_RELAXED) + stats_field_get(live, &fields[f]);
		__atomic_store_n(r, v, __ATOMIC_RELAXED);
	}
	memset(live, 0, bytes);
}

void
stats_retired_add(struct stats_seg *seg, const struct stats_counters *add)
{
	struct stats_header *hdr = seg->hdr;
	uint64_t seq;

	if (!seg->writable)
		return;
	seq = stats_write_begin(hdr);
	for (unsigned f = 0; f < stats_nfields; f++) {
		uint64_t *r = (uint64_t *)((char *)&hdr->retired + stats_fields[f].offset);

		if (stats_fields[f].kind != STATS_COUNTER)
			continue;
		__atomic_store_n(r,
		    __atomic_load_n(r, __ATOMIC_RELAXED) + stats_field_get(add, &stats_fields[f]),
		    __ATOMIC_RELAXED);
	}
	stats_write_end(hdr, seq);
}

/* Directory entries in use, as a reader may trust them. */
static unsigned
stats_used(const struct stats_seg *seg, int servers)
{
	unsigned n = __atomic_load_n(servers ? &seg->hdr->servers_used : &seg->hdr->listeners_used,
	    __ATOMIC_ACQUIRE);
	unsigned cap = servers ? seg->nservers : seg->nlisteners;

	return n < cap ? n : cap;
}

void
stats_row_totals(const struct stats_seg *seg, struct stats_listener_counters *lo,
    struct stats_server_counters *so)
{
	unsigned nl = stats_used(seg, 0), ns = stats_used(seg, 1);

	memset(lo, 0, sizeof(*lo) * seg->nlisteners);
	memset(so, 0, sizeof(*so) * seg->nservers);
	for (unsigned r = 0; r < nl; r++)
		stats_add_words(&lo[r], &seg->listener_retired[r], sizeof(*lo));
	for (unsigned r = 0; r < ns; r++)
		stats_add_words(&so[r], &seg->server_retired[r], sizeof(*so));
	for (unsigned i = 0; i < seg->nslots; i++) {
		if (!stats_slot_live(&seg->slots[i]))
			continue;
		for (unsigned r = 0; r < nl; r++)
			stats_add_words(&lo[r], stats_slot_listener(seg, i, r), sizeof(*lo));
		for (unsigned r = 0; r < ns; r++)
			stats_add_words(&so[r], stats_slot_server(seg, i, r), sizeof(*so));
	}
}

void
stats_inherit(struct stats_seg *dst, const struct stats_seg *src)
{
	unsigned nl = stats_used(src, 0), ns = stats_used(src, 1);
	uint64_t seq;

	if (!dst->writable)
		return;
	nl = nl < dst->nlisteners ? nl : dst->nlisteners;
	ns = ns < dst->nservers ? ns : dst->nservers;
	seq = stats_write_begin(dst->hdr);
	memcpy(dst->listeners, src->listeners, nl * sizeof(*dst->listeners));
	memcpy(dst->servers, src->servers, ns * sizeof(*dst->servers));
	for (unsigned r = 0; r < ns; r++)
		stats_admin_set(dst, r, __atomic_load_n(&src->admin[r].state, __ATOMIC_RELAXED),
		    __atomic_load_n(&src->admin[r].weight, __ATOMIC_RELAXED));
	dst->listeners_used = nl;
	dst->servers_used = ns;
	__atomic_store_n(&dst->hdr->listeners_used, nl, __ATOMIC_RELEASE);
	__atomic_store_n(&dst->hdr->servers_used, ns, __ATOMIC_RELEASE);
	stats_write_end(dst->hdr, seq);
}

void
stats_rows_retired_add(struct stats_seg *seg, const struct stats_listener_counters *lo,
    const struct stats_server_counters *so)
{
	uint64_t seq;

	if (!seg->writable)
		return;
	seq = stats_write_begin(seg->hdr);
	for (unsigned r = 0; r < seg->listeners_used; r++)
		for (unsigned f = 0; f < stats_listener_nfields; f++) {
			uint64_t *d = (uint64_t *)((char *)&seg->listener_retired[r] +
			                           stats_listener_fields[f].offset);

			if (stats_listener_fields[f].kind == STATS_COUNTER)
				*d += stats_field_get(&lo[r], &stats_listener_fields[f]);
		}
	for (unsigned r = 0; r < seg->servers_used; r++)
		for (unsigned f = 0; f < stats_server_nfields; f++) {
			uint64_t *d = (uint64_t *)((char *)&seg->server_retired[r] +
			                           stats_server_fields[f].offset);

			if (stats_server_fields[f].kind == STATS_COUNTER)
				*d += stats_field_get(&so[r], &stats_server_fields[f]);
		}
	stats_write_end(seg->hdr, seq);
}

void
stats_fold(struct stats_seg *seg, unsigned slot)
{
	struct stats_header *hdr = seg->hdr;
	struct stats_slot *s;
	uint64_t seq;

	if (!seg->writable || slot >= seg->nslots)
		return;
	s = &seg->slots[slot];
	seq = stats_write_begin(hdr);
	if (__atomic_load_n(&s->state, __ATOMIC_RELAXED) != STATS_SLOT_FREE) {
		/* Sessions came by accept or by hand-off from an older
		 * generation, and left by a close or by hand-off to a newer one. */
		uint64_t in = __atomic_load_n(&s->c.accepted, __ATOMIC_RELAXED) +
		              __atomic_load_n(&s->c.handed_in, __ATOMIC_RELAXED);
		uint64_t out = __atomic_load_n(&s->c.closed, __ATOMIC_RELAXED) +
		               __atomic_load_n(&s->c.handed_out, __ATOMIC_RELAXED);

		/* Its writer is gone: sessions it still had open (it was
		 * killed) will never close. Count them closed as lost, so that
		 * accepted + handed_in = closed + handed_out + active holds
		 * across crashes too. */
		if (in > out) {
			uint64_t *lost = &s->c.closed_by[STATS_CLOSE_LOST];

			__atomic_store_n(&s->c.closed,
			    __atomic_load_n(&s->c.closed, __ATOMIC_RELAXED) + (in - out),
			    __ATOMIC_RELAXED);
			__atomic_store_n(lost, __atomic_load_n(lost, __ATOMIC_RELAXED) + (in - out),
			    __ATOMIC_RELAXED);
		}
		stats_fold_row(&hdr->retired, &s->c, stats_fields, stats_nfields, sizeof(s->c));
		/* Workers write only rows the directory handed out. Rows past
		 * those are never read: on tmpfs even a read fault on a hole
		 * would allocate a page. */
		for (unsigned r = 0; r < seg->listeners_used; r++)
			stats_fold_row(&seg->listener_retired[r], stats_slot_listener(seg, slot, r),
			    stats_listener_fields, stats_listener_nfields,
			    sizeof(struct stats_listener_counters));
		for (unsigned r = 0; r < seg->servers_used; r++)
			stats_fold_row(&seg->server_retired[r], stats_slot_server(seg, slot, r),
			    stats_server_fields, stats_server_nfields,
			    sizeof(struct stats_server_counters));
	}
	memset(s, 0, sizeof(*s));
	stats_write_end(hdr, seq);
}

static void
stats_copy_text(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src != NULL ? src : "");
}

void
stats_recycle_below(struct stats_seg *seg, uint32_t generation)
{
	seg->recycle_below = generation;
}

/* A directory entry no live process uses any more (the latest generation
 * that had it is older than every live one), for a new identity when the
 * directory is full: the oldest such, or `used` when there is none. Its
 * retired totals move to the recycled row (inside the caller's fold_seq
 * bracket), so sums never go backwards; the slots' rows of it are zero, as
 * no live worker's config has it. */
static unsigned
stats_recycle(struct stats_seg *seg, int servers)
{
	unsigned used = servers ? seg->servers_used : seg->listeners_used, best = used;
	uint32_t best_gen = UINT32_MAX;

	for (unsigned r = 0; r < used; r++) {
		uint32_t g = servers ? seg->servers[r].generation : seg->listeners[r].generation;

		if (g < seg->recycle_below && g < best_gen) {
			best = r;
			best_gen = g;
		}
	}
	if (best == used)
		return used;
	if (servers) {
		stats_fold_row(&seg->hdr->servers_recycled, &seg->server_retired[best],
		    stats_server_fields, stats_server_nfields, sizeof(struct stats_server_counters));
		memset(&seg->health[best], 0, sizeof(seg->health[best]));
		memset(&seg->resolved[best], 0, sizeof(seg->resolved[best]));
	} else {
		stats_fold_row(&seg->hdr->listeners_recycled, &seg->listener_retired[best],
		    stats_listener_fields, stats_listener_nfields,
		    sizeof(struct stats_listener_counters));
	}
	return best;
}

unsigned
stats_listener_row(struct stats_seg *seg, const struct sockaddr *sa, socklen_t len,
    const char *address, const char *upstream, uint32_t generation)
{
	struct stats_header *hdr = seg->hdr;
	struct stats_listener_entry *e;
	unsigned used, row;
	uint64_t seq;
	int fresh;

	if (!seg->writable || len > sizeof(e->addr))
		return STATS_NO_ROW;
	used = seg->listeners_used;
	for (row = 0; row < used; row++)
		if (addr_equal((const struct sockaddr *)&seg->listeners[row].addr, sa))
			break;
	fresh = row == used;
	seq = stats_write_begin(hdr);
	if (row == used && used >= seg->nlisteners && (row = stats_recycle(seg, 0)) == used) {
		stats_write_end(hdr, seq);
		return STATS_NO_ROW;
	}
	e = &seg->listeners[row];
	if (fresh) {
		memset(e, 0, sizeof(*e));
		memcpy(&e->addr, sa, len);
		e->first_generation = generation;
	}
	e->generation = generation;
	stats_copy_text(e->address, sizeof(e->address), address);
	stats_copy_text(e->upstream, sizeof(e->upstream), upstream);
	if (row == used)
		seg->listeners_used = used + 1;
	/* Readers see the count only once the entry is written. Stored even
	 * when unchanged: it is ours, whatever else the file says. */
	__atomic_store_n(&hdr->listeners_used, seg->listeners_used, __ATOMIC_RELEASE);
	stats_write_end(hdr, seq);
	return row;
}

unsigned
stats_server_row(struct stats_seg *seg, const char *upstream, const struct sockaddr *sa,
    socklen_t len, const char *address, unsigned weight, int backup, uint32_t generation)
{
	struct stats_header *hdr = seg->hdr;
	struct stats_server_entry *e;
	unsigned used, row;
	uint64_t seq;
	int fresh;

	if (!seg->writable || len > sizeof(e->addr) || upstream == NULL)
		return STATS_NO_ROW;
	used = seg->servers_used;
	/* A slot of a resolved name has no address of its own (len 0): its
	 * identity is its text, "name:port#k". */
	for (row = 0; row < used; row++)
		if (strncmp(seg->servers[row].upstream, upstream, STATS_NAME_MAX) == 0 &&
		    (len == 0 ? seg->servers[row].addr.ss_family == AF_UNSPEC && address != NULL &&
		                    strncmp(seg->servers[row].address, address,
		                        STATS_ADDR_MAX - 1) == 0
		              : addr_equal((const struct sockaddr *)&seg->servers[row].addr, sa)))
			break;
	fresh = row == used;
	seq = stats_write_begin(hdr);
	if (row == used && used >= seg->nservers && (row = stats_recycle(seg, 1)) == used) {
		stats_write_end(hdr, seq);
		return STATS_NO_ROW;
	}
	e = &seg->servers[row];
	if (fresh) {
		memset(e, 0, sizeof(*e));
		memcpy(&e->addr, sa, len);
		stats_copy_text(e->upstream, sizeof(e->upstream), upstream);
		e->first_generation = generation;
		__atomic_store_n(&seg->admin[row].state, STATS_ADMIN_READY, __ATOMIC_RELAXED);
		__atomic_store_n(&seg->admin[row].weight, STATS_WEIGHT_CONFIG, __ATOMIC_RELAXED);
	}
	e->generation = generation;
	e->weight = weight;
	e->backup = backup != 0;
	stats_copy_text(e->address, sizeof(e->address), address);
	if (row == used)
		seg->servers_used = used + 1;
	__atomic_store_n(&hdr->servers_used, seg->servers_used, __ATOMIC_RELEASE);
	stats_write_end(hdr, seq);
	return row;
}

/* Field-by-field relaxed copy of a health record; seq left out. */
static void
stats_health_copy(struct stats_health *dst, const struct stats_health *src)
{
#define COPY(f) __atomic_store_n(&dst->f, __atomic_load_n(&src->f, __ATOMIC_RELAXED), \
	    __ATOMIC_RELAXED)
	COPY(state);
	COPY(last_result);
	COPY(last_errno);
	COPY(successes);
	COPY(failures);
	COPY(last_duration_ms);
	COPY(last_check_ms);
	COPY(last_change_ms);
	COPY(checks);
	COPY(checks_failed);
#undef COPY
}

void
stats_health_publish(struct stats_seg *seg, unsigned row, const struct stats_health *h)
{
	struct stats_health *dst;
	uint64_t seq;

	if (!seg->writable || row >= seg->nservers)
		return;
	dst = &seg->health[row];
	/* The checker is the only writer: its own seq read is exact. One
	 * killed mid-write left it odd; start from the next even value so
	 * readers are not fooled into trusting a half-written record. */
	seq = __atomic_load_n(&dst->seq, __ATOMIC_RELAXED);
	seq += seq & 1;
	__atomic_store_n(&dst->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	stats_health_copy(dst, h);
	__atomic_store_n(&dst->seq, seq + 2, __ATOMIC_RELEASE);
}

struct health_read {
	struct stats_health *out;
	const struct stats_health *src;
};

static void
health_read_cb(void *p)
{
	const struct health_read *r = p;

	stats_health_copy(r->out, r->src);
}

static int
stats_health_read_within(const struct stats_seg *seg, unsigned row, struct stats_health *out,
    uint64_t *give_up)
{
	struct health_read r = { out, NULL };
	uint64_t seen;
	int settled;

	memset(out, 0, sizeof(*out));
	if (row >= seg->nservers)
		return 1;
	r.src = &seg->health[row];
	/* A checker that died mid-write leaves what is there to take. */
	settled = seq_read(&r.src->seq, health_read_cb, &r, &seen, give_up);
	out->seq = seen;
	return settled;
}

int
stats_health_read(const struct stats_seg *seg, unsigned row, struct stats_health *out)
{
	uint64_t give_up = 0;

	return stats_health_read_within(seg, row, out, &give_up);
}

uint32_t
stats_health_state(const struct stats_seg *seg, unsigned row)
{
	if (row >= seg->nservers)
		return STATS_HEALTH_UNKNOWN;
	return __atomic_load_n(&seg->health[row].state, __ATOMIC_RELAXED);
}

/* Field-by-field relaxed copy of a resolved record; seq left out. */
static void
stats_resolved_copy(struct stats_resolved *dst, const struct stats_resolved *src)
{
#define COPY(f) __atomic_store_n(&dst->f, __atomic_load_n(&src->f, __ATOMIC_RELAXED), \
	    __ATOMIC_RELAXED)
	COPY(state);
	COPY(family);
	COPY(port);
	for (unsigned i = 0; i < sizeof(dst->addr); i++)
		COPY(addr[i]);
	COPY(ttl_s);
	COPY(changes);
	COPY(since_ms);
	COPY(answer_ms);
#undef COPY
}

void
stats_resolved_publish(struct stats_seg *seg, unsigned row, const struct stats_resolved *r)
{
	struct stats_resolved *dst;
	uint64_t seq;

	if (!seg->writable || row >= seg->nservers)
		return;
	dst = &seg->resolved[row];
	/* As stats_health_publish: one writer, a seq left odd is skipped. */
	seq = __atomic_load_n(&dst->seq, __ATOMIC_RELAXED);
	seq += seq & 1;
	__atomic_store_n(&dst->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	stats_resolved_copy(dst, r);
	__atomic_store_n(&dst->seq, seq + 2, __ATOMIC_RELEASE);
}

struct resolved_read {
	struct stats_resolved *out;
	const struct stats_resolved *src;
};

static void
resolved_read_cb(void *p)
{
	const struct resolved_read *r = p;

	stats_resolved_copy(r->out, r->src);
}

static int
stats_resolved_read_within(const struct stats_seg *seg, unsigned row,
    struct stats_resolved *out, uint64_t *give_up)
{
	struct resolved_read r = { out, NULL };
	uint64_t seen;
	int settled;

	memset(out, 0, sizeof(*out));
	if (row >= seg->nservers)
		return 1;
	r.src = &seg->resolved[row];
	settled = seq_read(&r.src->seq, resolved_read_cb, &r, &seen, give_up);
	out->seq = seen;
	return settled;
}

int
stats_resolved_read(const struct stats_seg *seg, unsigned row, struct stats_resolved *out)
{
	uint64_t give_up = 0;

	return stats_resolved_read_within(seg, row, out, &give_up);
}

uint32_t
stats_resolved_try(const struct stats_seg *seg, unsigned row, struct sockaddr_storage *ss,
    socklen_t *len)
{
	const struct stats_resolved *src;

	*len = 0;
	if (row >= seg->nservers)
		return STATS_ADDR_ABSENT;
	src = &seg->resolved[row];
	for (unsigned tries = 0; tries < 4; tries++) {
		uint64_t before = __atomic_load_n(&src->seq, __ATOMIC_ACQUIRE), after;
		uint32_t state;
		uint16_t family, port;
		uint8_t a[16];

		if (before & 1)
			continue;
		state = __atomic_load_n(&src->state, __ATOMIC_RELAXED);
		family = __atomic_load_n(&src->family, __ATOMIC_RELAXED);
		port = __atomic_load_n(&src->port, __ATOMIC_RELAXED);
		for (unsigned i = 0; i < sizeof(a); i++)
			a[i] = __atomic_load_n(&src->addr[i], __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		after = __atomic_load_n(&src->seq, __ATOMIC_RELAXED);
		if (after != before)
			continue;
		if (state != STATS_ADDR_PRESENT)
			return state == STATS_ADDR_NONE ? STATS_ADDR_NONE : STATS_ADDR_ABSENT;
		memset(ss, 0, sizeof(*ss));
		if (family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)ss;

			sin->sin_family = AF_INET;
			sin->sin_port = port;
			memcpy(&sin->sin_addr, a, 4);
			*len = sizeof(*sin);
		} else if (family == AF_INET6) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = port;
			memcpy(&sin6->sin6_addr, a, 16);
			*len = sizeof(*sin6);
		} else {
			return STATS_ADDR_ABSENT;
		}
		return STATS_ADDR_PRESENT;
	}
	return STATS_ADDR_ABSENT;
}

int
stats_entry_resolved(const struct stats_server_entry *e)
{
	return e->addr.ss_family == AF_UNSPEC;
}

char *
stats_resolved_format(const struct stats_resolved *r, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct stats_seg one = { 0 };

	buf[0] = '\0';
	/* Through the workers' reader, on a private copy. */
	one.resolved = (struct stats_resolved *)r;
	one.nservers = 1;
	if (stats_resolved_try(&one, 0, &ss, &sl) == STATS_ADDR_PRESENT)
		addr_format((const struct sockaddr *)&ss, buf, len);
	return buf;
}

void
stats_admin_set(struct stats_seg *seg, unsigned row, uint32_t state, uint32_t weight)
{
	if (!seg->writable || row >= seg->nservers)
		return;
	__atomic_store_n(&seg->admin[row].state, state, __ATOMIC_RELAXED);
	__atomic_store_n(&seg->admin[row].weight, weight, __ATOMIC_RELAXED);
}

struct stats_server_admin
stats_admin_get(const struct stats_seg *seg, unsigned row)
{
	struct stats_server_admin a = { STATS_ADMIN_READY, STATS_WEIGHT_CONFIG };

	if (row < seg->nservers) {
		a.state = __atomic_load_n(&seg->admin[row].state, __ATOMIC_RELAXED);
		a.weight = __atomic_load_n(&seg->admin[row].weight, __ATOMIC_RELAXED);
	}
	return a;
}

/* A snapshot being taken, and the patience of every read it makes. */
struct snapshot_read {
	struct stats_snapshot *sn;
	uint64_t give_up;
};

/* One pass of a snapshot (see stats_read_settled), into its storage: every
 * bound is the smaller of the attach's count and the storage's. */
static void
stats_snapshot_read(const struct stats_seg *seg, void *arg)
{
	const struct stats_header *hdr = seg->hdr;
	struct snapshot_read *ctx = arg;
	struct stats_snapshot *sn = ctx->sn;
	unsigned i, r, nl, ns, nslots;

	sn->master_pid = __atomic_load_n(&hdr->master_pid, __ATOMIC_RELAXED);
	sn->start_ms = __atomic_load_n(&hdr->start_ms, __ATOMIC_RELAXED);
	sn->generation = __atomic_load_n(&hdr->generation, __ATOMIC_RELAXED);
	sn->node_state = __atomic_load_n(&hdr->node_state, __ATOMIC_RELAXED);
	sn->drain_started_ms = __atomic_load_n(&hdr->drain_started_ms, __ATOMIC_RELAXED);
	sn->drain_grace_ms = __atomic_load_n(&hdr->drain_grace_ms, __ATOMIC_RELAXED);
	sn->reloads_ok = __atomic_load_n(&hdr->reloads_ok, __ATOMIC_RELAXED);
	sn->reloads_failed = __atomic_load_n(&hdr->reloads_failed, __ATOMIC_RELAXED);
	sn->last_reload_ms = __atomic_load_n(&hdr->last_reload_ms, __ATOMIC_RELAXED);
	sn->last_reload_ok = __atomic_load_n(&hdr->last_reload_ok, __ATOMIC_RELAXED);
	sn->source_slots = __atomic_load_n(&hdr->source_slots, __ATOMIC_RELAXED);
	sn->source_slots_used = __atomic_load_n(&hdr->source_slots_used, __ATOMIC_RELAXED);
	sn->source_table_full = __atomic_load_n(&hdr->source_table_full, __ATOMIC_RELAXED);
	sn->source_reconciled = __atomic_load_n(&hdr->source_reconciled, __ATOMIC_RELAXED);
	/* Indexes from the file: bounded by the storage sized at attach. */
	nl = __atomic_load_n(&hdr->listeners_used, __ATOMIC_ACQUIRE);
	ns = __atomic_load_n(&hdr->servers_used, __ATOMIC_ACQUIRE);
	if (nl > seg->nlisteners)
		nl = seg->nlisteners;
	if (nl > sn->cap_listeners)
		nl = sn->cap_listeners;
	if (ns > seg->nservers)
		ns = seg->nservers;
	if (ns > sn->cap_servers)
		ns = sn->cap_servers;
	nslots = seg->nslots < sn->cap_workers ? seg->nslots : sn->cap_workers;

	sn->nworkers = sn->running = sn->draining = 0;
	for (i = 0; i < nslots; i++) {
		const struct stats_slot *s = &seg->slots[i];
		struct stats_worker_view *v;
		uint32_t state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

		if (state == STATS_SLOT_FREE)
			continue;
		v = &sn->workers[sn->nworkers++];
		memset(v, 0, sizeof(*v));
		v->slot = i;
		v->state = state;
		v->generation = __atomic_load_n(&s->generation, __ATOMIC_RELAXED);
		v->index = __atomic_load_n(&s->index, __ATOMIC_RELAXED);
		v->pid = __atomic_load_n(&s->pid, __ATOMIC_RELAXED);
		v->started_ms = __atomic_load_n(&s->started_ms, __ATOMIC_RELAXED);
		v->heartbeat_ms = __atomic_load_n(&s->heartbeat_ms, __ATOMIC_RELAXED);
		stats_add_words(&v->c, &s->c, sizeof(v->c));
		if (state == STATS_SLOT_RUNNING)
			sn->running++;
		else if (state == STATS_SLOT_DRAINING)
			sn->draining++;
	}

	memset(&sn->retired, 0, sizeof(sn->retired));
	stats_add_words(&sn->retired, &hdr->retired, sizeof(sn->retired));
	memset(&sn->listeners_recycled, 0, sizeof(sn->listeners_recycled));
	stats_add_words(&sn->listeners_recycled, &hdr->listeners_recycled,
	    sizeof(sn->listeners_recycled));
	memset(&sn->servers_recycled, 0, sizeof(sn->servers_recycled));
	stats_add_words(&sn->servers_recycled, &hdr->servers_recycled,
	    sizeof(sn->servers_recycled));
	sn->total = sn->retired;
	for (i = 0; i < sn->nworkers; i++)
		stats_add_words(&sn->total, &sn->workers[i].c, sizeof(sn->total));

	sn->nlisteners = nl;
	for (r = 0; r < nl; r++) {
		struct stats_listener_view *v = &sn->listeners[r];

		memset(v, 0, sizeof(*v));
		v->row = r;
		memcpy(&v->entry, &seg->listeners[r], sizeof(v->entry));
		v->entry.address[sizeof(v->entry.address) - 1] = '\0';
		v->entry.upstream[sizeof(v->entry.upstream) - 1] = '\0';
		stats_add_words(&v->c, &seg->listener_retired[r], sizeof(v->c));
		for (i = 0; i < sn->nworkers; i++)
			stats_add_words(&v->c, stats_slot_listener(seg, sn->workers[i].slot, r),
			    sizeof(v->c));
	}
	sn->nservers = ns;
	for (r = 0; r < ns; r++) {
		struct stats_server_view *v = &sn->servers[r];

		memset(v, 0, sizeof(*v));
		v->row = r;
		memcpy(&v->entry, &seg->servers[r], sizeof(v->entry));
		v->entry.address[sizeof(v->entry.address) - 1] = '\0';
		v->entry.upstream[sizeof(v->entry.upstream) - 1] = '\0';
		stats_health_read_within(seg, r, &v->health, &ctx->give_up);
		stats_resolved_read_within(seg, r, &v->resolved, &ctx->give_up);
		v->admin = stats_admin_get(seg, r);
		stats_add_words(&v->c, &seg->server_retired[r], sizeof(v->c));
		for (i = 0; i < sn->nworkers; i++)
			stats_add_words(&v->c, stats_slot_server(seg, sn->workers[i].slot, r),
			    sizeof(v->c));
	}
}

struct stats_snapshot *
stats_snapshot_alloc(const struct stats_seg *seg)
{
	struct stats_snapshot *sn = calloc(1, sizeof(*sn));

	if (sn == NULL)
		return NULL;
	/* Sized by the attach's counts; the reads stay within these. */
	sn->cap_workers = seg->nslots;
	sn->cap_listeners = seg->nlisteners;
	sn->cap_servers = seg->nservers;
	sn->workers = calloc(seg->nslots ? seg->nslots : 1, sizeof(*sn->workers));
	sn->listeners = calloc(seg->nlisteners ? seg->nlisteners : 1, sizeof(*sn->listeners));
	sn->servers = calloc(seg->nservers ? seg->nservers : 1, sizeof(*sn->servers));
	if (sn->workers == NULL || sn->listeners == NULL || sn->servers == NULL) {
		stats_snapshot_destroy(sn);
		errno = ENOMEM;
		return NULL;
	}
	return sn;
}

void
stats_snapshot_fill(const struct stats_seg *seg, struct stats_snapshot *sn)
{
	struct snapshot_read ctx = { sn, 0 };

	sn->settled = stats_read_settled(seg, stats_snapshot_read, &ctx, &ctx.give_up);
}

struct stats_snapshot *
stats_snapshot_create(const struct stats_seg *seg)
{
	struct stats_snapshot *sn = stats_snapshot_alloc(seg);

	if (sn != NULL)
		stats_snapshot_fill(seg, sn);
	return sn;
}

void
stats_snapshot_destroy(struct stats_snapshot *sn)
{
	if (sn == NULL)
		return;
	free(sn->workers);
	free(sn->listeners);
	free(sn->servers);
	free(sn);
}
