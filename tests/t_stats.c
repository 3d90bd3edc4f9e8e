/* t_stats.c — unit test of the statistics segment: layout, create/attach,
 * totals, folds and every reason a reader refuses a segment. Runs alone in
 * a private temporary directory, which it removes; it starts no daemon and
 * its only child processes are its own short-lived forks. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"
#include "tap.h"

#define NSLOTS 16

static char dir[] = "/tmp/t_stats.XXXXXX";

/* Names of files made in dir, so the clean-up knows them all. */
static const char *const file_names[] = {
	"seg", "umask0", "stale", "missing", "empty", "magic", "version",
	"hsize", "short", "long", "nslots", "race",
};
#define NFILES (sizeof(file_names) / sizeof(file_names[0]))

static const char *
path_of(const char *name)
{
	static char buf[8][256];
	static unsigned next;
	char *p = buf[next++ % 8];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static void
cleanup(void)
{
	unsigned i;

	for (i = 0; i < NFILES; i++)
		unlink(path_of(file_names[i]));
	rmdir(path_of("subdir"));
	rmdir(dir);
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
field_index(const char *name)
{
	unsigned i;

	for (i = 0; i < stats_nfields; i++)
		if (strcmp(stats_fields[i].name, name) == 0)
			return (int)i;
	return -1;
}

static void
test_layout(void)
{
	unsigned i, j, distinct = 1, aligned = 1, in_range = 1, named = 1;

	ok(sizeof(struct stats_slot) % 64 == 0, "slot size %zu is a multiple of 64",
	    sizeof(struct stats_slot));
	is(_Alignof(struct stats_slot), 64, "slots are cache-line aligned");
	ok(sizeof(struct stats_header) % 64 == 0, "header size %zu is a multiple of 64",
	    sizeof(struct stats_header));
	is(_Alignof(struct stats_header), 64, "header is cache-line aligned");
	is(stats_nfields, sizeof(struct stats_counters) / sizeof(uint64_t),
	    "stats_fields describes every field of struct stats_counters");

	for (i = 0; i < stats_nfields; i++) {
		if (stats_fields[i].offset % sizeof(uint64_t) != 0)
			aligned = 0;
		if (stats_fields[i].offset + sizeof(uint64_t) > sizeof(struct stats_counters))
			in_range = 0;
		if (stats_fields[i].name == NULL || stats_fields[i].name[0] == '\0' ||
		    stats_fields[i].help == NULL || stats_fields[i].help[0] == '\0')
			named = 0;
		for (j = 0; j < i; j++)
			if (stats_fields[i].offset == stats_fields[j].offset ||
			    strcmp(stats_fields[i].name, stats_fields[j].name) == 0)
				distinct = 0;
	}
	ok(distinct, "field offsets and names are distinct");
	ok(aligned, "field offsets are 8-byte aligned");
	ok(in_range, "field offsets are inside struct stats_counters");
	ok(named, "every field has a name and a help text");

	/* Spot checks that the X-macro expansion kept names, kinds and offsets
	 * together. */
	i = (unsigned)field_index("accepted");
	ok(field_index("accepted") >= 0 && stats_fields[i].kind == STATS_COUNTER &&
	    stats_fields[i].offset == offsetof(struct stats_counters, accepted),
	    "accepted: counter at its offset");
	i = (unsigned)field_index("bytes_out");
	ok(field_index("bytes_out") >= 0 && stats_fields[i].kind == STATS_COUNTER &&
	    stats_fields[i].offset == offsetof(struct stats_counters, bytes_out),
	    "bytes_out: counter at its offset");
	i = (unsigned)field_index("active");
	ok(field_index("active") >= 0 && stats_fields[i].kind == STATS_GAUGE &&
	    stats_fields[i].offset == offsetof(struct stats_counters, active),
	    "active: gauge at its offset");
	is(stats_fields[0].offset, 0, "the first field opens the struct");

	is_str(stats_state_name(STATS_SLOT_FREE), "free", "state name free");
	is_str(stats_state_name(STATS_SLOT_STARTING), "starting", "state name starting");
	is_str(stats_state_name(STATS_SLOT_RUNNING), "running", "state name running");
	is_str(stats_state_name(STATS_SLOT_DRAINING), "draining", "state name draining");
	is_str(stats_state_name(STATS_SLOT_EXITED), "exited", "state name exited");
	is_str(stats_state_name(99), "?", "unknown state is ?");
	is_str(stats_state_name(UINT32_MAX), "?", "huge state is ?");
}

static void
test_now(void)
{
	uint64_t a = (uint64_t)time(NULL) * 1000, b = stats_now_ms(),
		 c = (uint64_t)time(NULL) * 1000;

	/* time() reads the coarse clock, which may trail CLOCK_REALTIME by a
	 * tick: allow a second either side beyond the truncation. */
	ok(b + 1000 >= a && b <= c + 2000, "stats_now_ms is wall-clock milliseconds");
}

/* Write v at offset off of the file at path. */
static int
patch(const char *path, off_t off, const void *v, size_t len)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd == -1)
		return -1;
	n = pwrite(fd, v, len, off);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static int
make_seg(const char *path, unsigned nslots)
{
	struct stats_seg s;
	char err[256];

	if (stats_create(&s, path, nslots, err, sizeof(err)) == -1) {
		diag("stats_create %s: %s", path, err);
		return -1;
	}
	stats_detach(&s);
	return 0;
}

static void
test_create_attach(void)
{
	struct stats_seg w, r;
	struct stats_header *h;
	struct stat st;
	char err[256];
	uint64_t before, after;
	size_t want = sizeof(struct stats_header) + NSLOTS * sizeof(struct stats_slot);
	unsigned i, clean = 1;
	mode_t old;
	int fd;

	old = umask(077);
	before = stats_now_ms();
	if (stats_create(&w, path_of("seg"), NSLOTS, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);
	after = stats_now_ms();
	umask(old);
	h = w.hdr;

	memset(&st, 0, sizeof(st));
	if (stat(path_of("seg"), &st) == -1)
		diag("stat: %s", strerror(errno));
	ok((st.st_mode & 07777) == 0640, "created with mode 0640 under umask 077 (got %o)",
	    (unsigned)(st.st_mode & 07777));
	is(st.st_size, want, "file is header + %d slots", NSLOTS);
	is(w.size, want, "seg.size is the file size");
	ok(w.writable, "created segment is writable");
	ok(w.slots == (struct stats_slot *)(h + 1), "slots follow the header");
	ok(h->magic == STATS_MAGIC, "magic set");
	is(h->version, STATS_VERSION, "version set");
	is(h->header_size, sizeof(struct stats_header), "header_size set");
	is(h->size, want, "size set");
	is(h->nslots, NSLOTS, "nslots set");
	is(h->master_pid, getpid(), "master_pid is the creator");
	ok(h->start_ms >= before && h->start_ms <= after, "start_ms is creation time");
	is(h->generation, 1, "generation starts at 1");
	is(h->fold_seq, 0, "fold_seq starts at 0");
	for (i = 0; i < stats_nfields; i++)
		if (*(uint64_t *)((char *)&h->retired + stats_fields[i].offset) != 0)
			clean = 0;
	for (i = 0; i < NSLOTS; i++)
		if (w.slots[i].state != STATS_SLOT_FREE || w.slots[i].c.accepted != 0)
			clean = 0;
	ok(clean, "retired row and slots start zeroed and free");

	old = umask(0);
	memset(&st, 0, sizeof(st));
	if (make_seg(path_of("umask0"), 1) == -1 || stat(path_of("umask0"), &st) == -1)
		diag("umask0: %s", strerror(errno));
	umask(old);
	ok((st.st_mode & 07777) == 0640, "mode 0640 under umask 0 too (got %o)",
	    (unsigned)(st.st_mode & 07777));

	/* A stale file from an earlier run, wider mode and garbage inside. */
	fd = open(path_of("stale"), O_WRONLY | O_CREAT | O_TRUNC, 0666);
	if (fd != -1) {
		char junk[8192];

		memset(junk, 0xa5, sizeof(junk));
		if (write(fd, junk, sizeof(junk)) != (ssize_t)sizeof(junk))
			diag("short write of the stale file");
		fchmod(fd, 0666);
		close(fd);
	}
	{
		struct stats_seg s;

		ok(stats_create(&s, path_of("stale"), 2, err, sizeof(err)) == 0,
		    "create over a stale file");
		ok(stat(path_of("stale"), &st) == 0 && (st.st_mode & 07777) == 0640 &&
		    st.st_size == (off_t)s.size, "stale file resized and set to mode 0640");
		ok(s.slots[0].c.accepted == 0 && s.slots[1].state == STATS_SLOT_FREE &&
		    s.hdr->retired.bytes_in == 0, "stale content is gone");
		stats_detach(&s);
	}

	ok(stats_create(&r, path_of("subdir/x"), 4, err, sizeof(err)) == -1 &&
	    errno == ENOENT && strstr(err, path_of("subdir/x")) != NULL,
	    "create in a missing directory fails naming the path: %s", err);
	ok(stats_create(&r, path_of("nslots"), 0, err, sizeof(err)) == -1,
	    "create with 0 slots fails");

	ok(stats_attach(&r, path_of("seg"), err, sizeof(err)) == 0, "attach: %s",
	    "read-only mapping");
	ok(!r.writable, "attached segment is read-only");
	ok(r.hdr != w.hdr, "a second mapping");
	is(r.size, want, "attached size");
	is(r.hdr->nslots, NSLOTS, "attached nslots");
	ok(r.slots == (struct stats_slot *)(r.hdr + 1), "attached slots follow the header");

	/* The worker's side: publish the slot, then count with relaxed stores. */
	w.slots[3].pid = 4242;
	w.slots[3].generation = 1;
	__atomic_store_n(&w.slots[3].state, STATS_SLOT_RUNNING, __ATOMIC_RELEASE);
	STATS_ADD(&w.slots[3], accepted, 5);
	STATS_ADD(&w.slots[3], accepted, 2);
	STATS_ADD(&w.slots[3], bytes_in, 1000);
	STATS_SET(&w.slots[3], active, 3);
	is(STATS_GET(&r.slots[3], accepted), 7, "STATS_ADD visible to the reader");
	is(STATS_GET(&r.slots[3], bytes_in), 1000, "bytes_in visible to the reader");
	is(STATS_GET(&r.slots[3], active), 3, "STATS_SET visible to the reader");
	is(r.slots[3].pid, 4242, "pid visible to the reader");
	is(__atomic_load_n(&r.slots[3].state, __ATOMIC_ACQUIRE), STATS_SLOT_RUNNING,
	    "state visible to the reader");

	/* The reader's mapping must refuse writes: a child tries one. */
	{
		pid_t pid;
		int status = 0;

		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			/* Sanitizers and valgrind turn the fault into their own
			 * report and exit status; keep the report out of TAP. */
			int null = open("/dev/null", O_WRONLY);

			if (null != -1)
				dup2(null, 2);
			*(volatile uint64_t *)&r.slots[3].c.accepted = 99;
			_exit(0);
		}
		if (pid == -1 || waitpid(pid, &status, 0) != pid)
			bail("fork/waitpid: %s", strerror(errno));
		ok(!(WIFEXITED(status) && WEXITSTATUS(status) == 0),
		    "writing through the read-only mapping faults (status %#x)", status);
		is(STATS_GET(&w.slots[3], accepted), 7, "and changed nothing");
	}

	stats_detach(&r);
	ok(r.hdr == NULL, "detach clears the handle");
	stats_detach(&r);
	ok(1, "a second detach is harmless");
	stats_detach(&w);
	ok(stat(path_of("seg"), &st) == 0, "the file stays after detach");
}

static void
set_slot(struct stats_slot *s, uint32_t state, int32_t pid, uint64_t accepted,
    uint64_t bytes_in, uint64_t active)
{
	s->pid = pid;
	s->generation = 1;
	STATS_SET(s, accepted, accepted);
	STATS_SET(s, closed, accepted);
	STATS_SET(s, bytes_in, bytes_in);
	STATS_SET(s, active, active);
	__atomic_store_n(&s->state, state, __ATOMIC_RELEASE);
}

static void
test_total_fold(void)
{
	struct stats_seg w, r;
	struct stats_counters t;
	char err[256];
	unsigned i, zero;

	if (stats_create(&w, path_of("seg"), NSLOTS, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);
	if (stats_attach(&r, path_of("seg"), err, sizeof(err)) == -1)
		bail("stats_attach: %s", err);

	stats_total(&r, &t);
	ok(t.accepted == 0 && t.bytes_in == 0 && t.active == 0, "empty segment totals 0");

	set_slot(&w.slots[0], STATS_SLOT_RUNNING, 100, 10, 1000, 3);
	set_slot(&w.slots[5], STATS_SLOT_DRAINING, 105, 7, 500, 2);
	set_slot(&w.slots[NSLOTS - 1], STATS_SLOT_STARTING, 115, 1, 1, 1);
	/* A free slot with leftovers must not count. */
	STATS_SET(&w.slots[9], accepted, 1000);
	STATS_SET(&w.slots[9], active, 1000);
	w.hdr->retired.accepted = 4;
	w.hdr->retired.bytes_in = 40;

	stats_total(&r, &t);
	is(t.accepted, 10 + 7 + 1 + 4, "accepted: live slots + retired, free skipped");
	is(t.closed, 10 + 7 + 1, "closed: live slots");
	is(t.bytes_in, 1000 + 500 + 1 + 40, "bytes_in: live slots + retired");
	is(t.active, 3 + 2 + 1, "active gauge: live slots only");
	is(t.bytes_out, 0, "untouched field totals 0");

	stats_fold(&w, 0);
	is(w.hdr->fold_seq, 2, "a fold moves fold_seq by two, ending even");
	is(r.hdr->retired.accepted, 14, "fold adds accepted to retired");
	is(r.hdr->retired.bytes_in, 1040, "fold adds bytes_in to retired");
	is(r.hdr->retired.closed, 10, "fold adds closed to retired");
	is(r.hdr->retired.active, 0, "fold leaves gauges out of retired");
	is(r.slots[0].state, STATS_SLOT_FREE, "folded slot is free");
	zero = 1;
	for (i = 0; i < sizeof(struct stats_slot); i++)
		if (((const unsigned char *)&r.slots[0])[i] != 0)
			zero = 0;
	ok(zero, "folded slot is zeroed");

	stats_total(&r, &t);
	is(t.accepted, 22, "accepted total unchanged across the fold");
	is(t.closed, 18, "closed total unchanged across the fold");
	is(t.bytes_in, 1541, "bytes_in total unchanged across the fold");
	is(t.active, 3, "active drops by the folded worker's gauge");

	stats_fold(&w, 5);
	stats_fold(&w, NSLOTS - 1);
	stats_total(&r, &t);
	ok(t.accepted == 22 && t.bytes_in == 1541 && t.active == 0,
	    "every worker folded: counters kept, gauges 0");
	is(w.hdr->fold_seq, 6, "three folds, fold_seq 6");
	stats_fold(&w, 5);
	stats_total(&r, &t);
	is(t.accepted, 22, "folding a free slot adds nothing");
	stats_fold(&w, NSLOTS);
	is(w.hdr->fold_seq, 8, "out-of-range slot is ignored");

	/* A master that died mid-fold leaves fold_seq odd: readers still answer. */
	__atomic_store_n(&w.hdr->fold_seq, 9, __ATOMIC_RELEASE);
	{
		uint64_t t0 = mono_ms();

		stats_total(&r, &t);
		ok(t.accepted == 22, "odd fold_seq forever: total still returns (%llu ms)",
		    (unsigned long long)(mono_ms() - t0));
	}

	stats_detach(&r);
	stats_detach(&w);
}

/*
 * A child plays master and worker: publish a slot with one accepted
 * connection, fold it, again. Every consistent total is then the number of
 * connections so far, so it can never go backwards; a total read across a
 * fold without the sequence check can take retired from before the fold and
 * the slot from after it. Many live slots before the racing one widen that
 * window. The child acts once per read, right as it starts, so folds overlap
 * reads without ever starving one into the bounded-retry fallback. It stops
 * after RACE_ROUNDS or RACE_MS, whichever comes first, so a loaded machine
 * makes the test weaker, not slower or flaky.
 */
#define RACE_SLOTS 256
#define RACE_ROUNDS 20000
#define RACE_MS 3000

struct race {
	uint64_t reads; /* reader: reads started */
	uint64_t folds; /* child: folds completed */
};

static void
race_child(struct stats_seg *w, struct race *race)
{
	struct stats_slot *s = &w->slots[RACE_SLOTS - 1];
	uint64_t seen = 0, now, deadline = mono_ms() + RACE_MS;
	unsigned step;

	/* Each step waits for a read to start, so the slot stays published,
	 * then free, for about one read each. */
	for (step = 0; step < 2 * RACE_ROUNDS; step++) {
		while ((now = __atomic_load_n(&race->reads, __ATOMIC_ACQUIRE)) == seen) {
			if (mono_ms() > deadline)
				_exit(0);
			sched_yield();
		}
		seen = now;
		if (step % 2 == 0) {
			STATS_SET(s, accepted, 1);
			__atomic_store_n(&s->state, STATS_SLOT_RUNNING, __ATOMIC_RELEASE);
		} else {
			stats_fold(w, RACE_SLOTS - 1);
			__atomic_store_n(&race->folds, race->folds + 1, __ATOMIC_RELEASE);
		}
	}
	_exit(0);
}

static void
test_fold_race(void)
{
	struct stats_seg w, r;
	struct stats_counters t;
	struct race *race;
	char err[256];
	uint64_t last = 0, reads = 0, deadline, folds;
	int backwards = 0, status = 0, done = 0;
	unsigned i;
	pid_t pid;

	if (stats_create(&w, path_of("race"), RACE_SLOTS, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);
	if (stats_attach(&r, path_of("race"), err, sizeof(err)) == -1)
		bail("stats_attach: %s", err);
	for (i = 0; i < RACE_SLOTS - 1; i++)
		__atomic_store_n(&w.slots[i].state, STATS_SLOT_RUNNING, __ATOMIC_RELEASE);
	race = mmap(NULL, sizeof(*race), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	    -1, 0);
	if (race == MAP_FAILED)
		bail("mmap: %s", strerror(errno));
	memset(race, 0, sizeof(*race));

	fflush(stdout);
	pid = fork();
	if (pid == -1)
		bail("fork: %s", strerror(errno));
	if (pid == 0)
		race_child(&w, race);

	/* The signal to act goes out just before each read starts, and the
	 * system calls stay out of the way, so the fold lands mid-read. */
	deadline = mono_ms() + RACE_MS + 30000;
	for (;;) {
		__atomic_store_n(&race->reads, ++reads, __ATOMIC_RELEASE);
		stats_total(&r, &t);
		if (t.accepted < last || t.accepted > RACE_ROUNDS)
			backwards++;
		last = t.accepted;
		if (reads % 256 != 0)
			continue;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			done = 1;
			break;
		}
		if (mono_ms() > deadline)
			break;
	}
	if (!done) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	folds = __atomic_load_n(&race->folds, __ATOMIC_ACQUIRE);
	ok(done && WIFEXITED(status) && WEXITSTATUS(status) == 0 && folds >= 10,
	    "folding child finished (%llu folds)", (unsigned long long)folds);
	is(backwards, 0, "total never went backwards over %llu reads",
	    (unsigned long long)reads);
	stats_total(&r, &t);
	is(t.accepted, folds + (r.slots[RACE_SLOTS - 1].state != STATS_SLOT_FREE),
	    "final total counts every connection");
	is(r.hdr->fold_seq, 2 * folds, "fold_seq even after the last fold");

	munmap(race, sizeof(*race));
	stats_detach(&r);
	stats_detach(&w);
}

/* Attach must fail, name the path and contain want; the handle stays empty. */
static void
attach_fails(const char *name, const char *want, const char *what)
{
	struct stats_seg r;
	char err[512] = "";
	const char *p = path_of(name);
	int rc;

	memset(&r, 0x5a, sizeof(r));
	rc = stats_attach(&r, p, err, sizeof(err));
	ok(rc == -1 && strstr(err, p) != NULL && strstr(err, want) != NULL &&
	    r.hdr == NULL && strchr(err, '\n') == NULL, "%s refused: %s", what, err);
	if (rc == 0)
		stats_detach(&r);
}

static void
test_attach_errors(void)
{
	struct stats_seg r;
	char err[512], want[512];
	size_t size = sizeof(struct stats_header) + 4 * sizeof(struct stats_slot);
	uint64_t u64;
	uint32_t u32;
	int fd;

	errno = 0;
	ok(stats_attach(&r, path_of("missing"), err, sizeof(err)) == -1 && errno == ENOENT,
	    "missing file: -1 with ENOENT");
	snprintf(want, sizeof(want), "no statistics segment at %s (is sluiced running?)",
	    path_of("missing"));
	is_str(err, want, "missing file message");

	fd = open(path_of("empty"), O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd != -1)
		close(fd);
	snprintf(want, sizeof(want), "%s: truncated: 0 bytes, smaller than a header",
	    path_of("empty"));
	ok(stats_attach(&r, path_of("empty"), err, sizeof(err)) == -1, "empty file refused");
	is_str(err, want, "empty file message");

	if (make_seg(path_of("magic"), 4) == -1 || make_seg(path_of("version"), 4) == -1 ||
	    make_seg(path_of("hsize"), 4) == -1 || make_seg(path_of("short"), 4) == -1 ||
	    make_seg(path_of("long"), 4) == -1 || make_seg(path_of("nslots"), 4) == -1)
		bail("cannot make the segments to corrupt");

	ok(stats_attach(&r, path_of("magic"), err, sizeof(err)) == 0,
	    "the pristine copy attaches");
	stats_detach(&r);

	u64 = 0x4c4c4548ULL;
	ok(patch(path_of("magic"), offsetof(struct stats_header, magic), &u64, 8) == 0,
	    "patched magic");
	attach_fails("magic", "not a sluice statistics segment", "bad magic");

	u32 = 7;
	ok(patch(path_of("version"), offsetof(struct stats_header, version), &u32, 4) == 0,
	    "patched version");
	attach_fails("version", "layout version 7", "wrong version");

	u32 = sizeof(struct stats_header) + 64;
	ok(patch(path_of("hsize"), offsetof(struct stats_header, header_size), &u32, 4) == 0,
	    "patched header_size");
	attach_fails("hsize", "header", "header size mismatch");

	ok(truncate(path_of("short"), (off_t)size - 64) == 0, "truncated a segment");
	snprintf(want, sizeof(want), "truncated: %zu bytes, header says %zu", size - 64, size);
	attach_fails("short", want, "truncated file");

	ok(truncate(path_of("short"), 100) == 0, "truncated below a header");
	attach_fails("short", "truncated: 100 bytes, smaller than a header",
	    "file smaller than a header");

	ok(truncate(path_of("long"), (off_t)size + 4096) == 0, "grew a segment");
	snprintf(want, sizeof(want), "size %zu bytes, header says %zu", size + 4096, size);
	attach_fails("long", want, "file larger than its header says");

	u32 = 5;
	ok(patch(path_of("nslots"), offsetof(struct stats_header, nslots), &u32, 4) == 0,
	    "patched nslots");
	attach_fails("nslots", "slots", "nslots inconsistent with the size");

	ok(mkdir(path_of("subdir"), 0700) == 0, "made a directory");
	attach_fails("subdir", "", "a directory");
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		bail("mkdtemp: %s", strerror(errno));

	test_layout();
	test_now();
	test_create_attach();
	test_total_fold();
	test_fold_race();
	test_attach_errors();

	cleanup();
	{
		struct stat st;

		ok(stat(dir, &st) == -1 && errno == ENOENT, "temporary directory removed");
	}
	done_testing();
	return tap_exit();
}
