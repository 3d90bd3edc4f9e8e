/* stats.c — the shared-memory statistics segment: creation by the master
 * before its first fork, read-only attachment by sluicestat and the tests,
 * and the fold of an exited worker's counters into the retired row.
 * Runs in the master and in readers; never logs, never exits, and never
 * blocks a worker (readers only load, the master only folds reaped slots). */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"

/* A reader that keeps losing the race against folds still has to answer. */
#define STATS_TOTAL_PATIENCE_MS 500

const struct stats_field stats_fields[] = {
#define STATS_X_DESC(name, kind, help) \
	{ #name, STATS_##kind, help, offsetof(struct stats_counters, name) },
	STATS_WORKER_FIELDS(STATS_X_DESC)
#undef STATS_X_DESC
};
const unsigned stats_nfields = sizeof(stats_fields) / sizeof(stats_fields[0]);

_Static_assert(sizeof(struct stats_counters) % sizeof(uint64_t) == 0,
    "stats_counters holds only 64-bit fields");
_Static_assert(sizeof(stats_fields) / sizeof(stats_fields[0]) ==
    sizeof(struct stats_counters) / sizeof(uint64_t),
    "every counter has a descriptor");
_Static_assert(sizeof(struct stats_slot) % 64 == 0,
    "a slot fills whole cache lines, so no two writers share one");
_Static_assert(sizeof(struct stats_header) % 64 == 0,
    "the first slot starts on its own cache line");

static const char *const stats_state_names[] = {
	[STATS_SLOT_FREE] = "free",
	[STATS_SLOT_STARTING] = "starting",
	[STATS_SLOT_RUNNING] = "running",
	[STATS_SLOT_DRAINING] = "draining",
	[STATS_SLOT_EXITED] = "exited",
};

const char *
stats_state_name(uint32_t state)
{
	if (state >= sizeof(stats_state_names) / sizeof(stats_state_names[0]))
		return "?";
	return stats_state_names[state];
}

static uint64_t *
stats_field_ptr(struct stats_counters *c, unsigned i)
{
	return (uint64_t *)((char *)c + stats_fields[i].offset);
}

static const uint64_t *
stats_field_cptr(const struct stats_counters *c, unsigned i)
{
	return (const uint64_t *)((const char *)c + stats_fields[i].offset);
}

uint64_t
stats_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
stats_create(struct stats_seg *seg, const char *path, unsigned nslots,
    char *err, size_t errlen)
{
	struct stats_header *hdr;
	size_t size;
	void *map;
	int fd, saved;

	memset(seg, 0, sizeof(*seg));
	if (nslots == 0 ||
	    __builtin_mul_overflow((size_t)nslots, sizeof(struct stats_slot), &size) ||
	    __builtin_add_overflow(size, sizeof(*hdr), &size) || (off_t)size < 0) {
		snprintf(err, errlen, "%s: cannot hold %u worker slots", path, nslots);
		errno = EINVAL;
		return -1;
	}

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1) {
		saved = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	/* The umask must not decide who may read the counters; an old file
	 * left with other permissions gets ours too. */
	if (fchmod(fd, 0640) == -1) {
		saved = errno;
		snprintf(err, errlen, "%s: chmod: %s", path, strerror(saved));
		goto fail;
	}
	/* Truncating to zero first drops whatever a previous master left, so
	 * no stale slot or magic survives into the new segment. */
	if (ftruncate(fd, 0) == -1 || ftruncate(fd, (off_t)size) == -1) {
		saved = errno;
		snprintf(err, errlen, "%s: cannot size to %zu bytes: %s", path, size,
		    strerror(saved));
		goto fail;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		saved = errno;
		snprintf(err, errlen, "%s: mmap: %s", path, strerror(saved));
		goto fail;
	}
	close(fd);

	hdr = map;
	hdr->version = STATS_VERSION;
	hdr->header_size = sizeof(*hdr);
	hdr->size = size;
	hdr->nslots = nslots;
	hdr->master_pid = (int32_t)getpid();
	hdr->start_ms = stats_now_ms();
	hdr->generation = 1;
	hdr->fold_seq = 0;
	memset(&hdr->retired, 0, sizeof(hdr->retired));
	/* Readers trust nothing before the magic: it goes last, released. */
	__atomic_store_n(&hdr->magic, STATS_MAGIC, __ATOMIC_RELEASE);

	seg->hdr = hdr;
	seg->slots = (struct stats_slot *)((char *)map + sizeof(*hdr));
	seg->size = size;
	seg->writable = 1;
	return 0;

fail:
	close(fd);
	errno = saved;
	return -1;
}

/* Checks a mapped segment of size bytes; 0, or -1 with err and errno. */
static int
stats_check(const struct stats_header *hdr, size_t size, const char *path,
    char *err, size_t errlen)
{
	uint64_t want;

	if (__atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE) != STATS_MAGIC) {
		snprintf(err, errlen, "%s: not a sluice statistics segment", path);
		errno = EINVAL;
		return -1;
	}
	if (hdr->version != STATS_VERSION) {
		snprintf(err, errlen, "%s: layout version %" PRIu32 ", this reader knows %d",
		    path, hdr->version, STATS_VERSION);
		errno = EPROTO;
		return -1;
	}
	if (hdr->header_size != sizeof(*hdr)) {
		snprintf(err, errlen, "%s: header of %" PRIu32 " bytes, this reader knows %zu",
		    path, hdr->header_size, sizeof(*hdr));
		errno = EPROTO;
		return -1;
	}
	if (hdr->size != size) {
		if (size < hdr->size)
			snprintf(err, errlen, "%s: truncated: %zu bytes, header says %" PRIu64,
			    path, size, hdr->size);
		else
			snprintf(err, errlen, "%s: size %zu bytes, header says %" PRIu64,
			    path, size, hdr->size);
		errno = EINVAL;
		return -1;
	}
	/* In 64 bits, so a hostile nslots cannot wrap around to match. */
	want = sizeof(*hdr) + (uint64_t)hdr->nslots * sizeof(struct stats_slot);
	if (hdr->nslots == 0 || want != size) {
		snprintf(err, errlen, "%s: %" PRIu32 " slots need %" PRIu64
		    " bytes, segment has %zu", path, hdr->nslots, want, size);
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int
stats_attach(struct stats_seg *seg, const char *path, char *err, size_t errlen)
{
	struct stat st;
	size_t size;
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
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		saved = errno;
		snprintf(err, errlen, "%s: mmap: %s", path, strerror(saved));
		goto fail;
	}
	close(fd);

	if (stats_check(map, size, path, err, errlen) == -1) {
		saved = errno;
		munmap(map, size);
		errno = saved;
		return -1;
	}
	seg->hdr = map;
	seg->slots = (struct stats_slot *)((char *)map + sizeof(struct stats_header));
	seg->size = size;
	seg->writable = 0;
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

/* One pass over retired and the live slots, without regard to folds. */
static void
stats_sum(const struct stats_seg *seg, struct stats_counters *out)
{
	const struct stats_header *hdr = seg->hdr;
	unsigned i, f;

	memset(out, 0, sizeof(*out));
	for (f = 0; f < stats_nfields; f++) {
		if (stats_fields[f].kind == STATS_COUNTER)
			*stats_field_ptr(out, f) = __atomic_load_n(
			    stats_field_cptr(&hdr->retired, f), __ATOMIC_RELAXED);
	}
	for (i = 0; i < hdr->nslots; i++) {
		const struct stats_slot *s = &seg->slots[i];

		/* Acquire pairs with the release-store that published the slot:
		 * its reset fields are visible before we add them. */
		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == STATS_SLOT_FREE)
			continue;
		for (f = 0; f < stats_nfields; f++)
			*stats_field_ptr(out, f) += __atomic_load_n(
			    stats_field_cptr(&s->c, f), __ATOMIC_RELAXED);
	}
}

void
stats_total(const struct stats_seg *seg, struct stats_counters *out)
{
	const struct stats_header *hdr = seg->hdr;
	uint64_t before, after, give_up = 0;
	unsigned long tries;

	/* A fold moves counters from a slot to retired; a sum that overlaps it
	 * would count them twice or not at all, so it is taken again. The bound
	 * is in time, not tries: a master preempted mid-fold on a busy machine
	 * holds fold_seq odd for a scheduler tick, far longer than any number of
	 * spins, while one that died mid-fold must not hang readers. */
	for (tries = 0;; tries++) {
		if ((tries & 63) == 63) {
			uint64_t now = stats_now_ms();

			if (give_up == 0)
				give_up = now + STATS_TOTAL_PATIENCE_MS;
			else if (now > give_up)
				break;
			sched_yield();
		}
		before = __atomic_load_n(&hdr->fold_seq, __ATOMIC_ACQUIRE);
		if (before & 1)
			continue;
		stats_sum(seg, out);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		after = __atomic_load_n(&hdr->fold_seq, __ATOMIC_RELAXED);
		if (after == before)
			return;
	}
	stats_sum(seg, out);
}

void
stats_fold(struct stats_seg *seg, unsigned slot)
{
	struct stats_header *hdr = seg->hdr;
	struct stats_slot *s;
	uint64_t seq, v;
	unsigned f;

	if (!seg->writable || slot >= hdr->nslots)
		return;
	s = &seg->slots[slot];
	/* Only the master writes fold_seq, so a relaxed read is exact. The
	 * fence keeps the odd value ahead of the stores below: a reader that
	 * sees any of them also sees the fold under way. */
	seq = __atomic_load_n(&hdr->fold_seq, __ATOMIC_RELAXED);
	__atomic_store_n(&hdr->fold_seq, seq + 1, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_RELEASE);

	if (__atomic_load_n(&s->state, __ATOMIC_RELAXED) != STATS_SLOT_FREE) {
		for (f = 0; f < stats_nfields; f++) {
			if (stats_fields[f].kind != STATS_COUNTER)
				continue;
			v = __atomic_load_n(stats_field_ptr(&hdr->retired, f), __ATOMIC_RELAXED);
			v += __atomic_load_n(stats_field_ptr(&s->c, f), __ATOMIC_RELAXED);
			__atomic_store_n(stats_field_ptr(&hdr->retired, f), v, __ATOMIC_RELAXED);
		}
	}
	memset(s, 0, sizeof(*s));

	__atomic_store_n(&hdr->fold_seq, seq + 2, __ATOMIC_RELEASE);
}
