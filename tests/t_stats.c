/* SPDX-License-Identifier: BSD-2-Clause */
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
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "stats.h"
#include "tap.h"

#define NSLOTS 16

static char dir[] = "/tmp/t_stats.XXXXXX";

/* Names of files made in dir, so the clean-up knows them all. */
static const char *const file_names[] = {
	"seg", "umask0", "stale", "missing", "empty", "magic", "version",
	"hsize", "short", "long", "nslots", "race", "dir", "rows", "health", "replace",
	"hostile", "odd", "recycle",
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
	is(_Alignof(struct stats_slot), STATS_PAGE, "a slot is a page of its own");
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
	i = (unsigned)field_index("closed_done");
	ok(field_index("closed_done") >= 0 && stats_fields[i].kind == STATS_COUNTER &&
	    stats_fields[i].offset == offsetof(struct stats_counters, closed_by[STATS_CLOSE_DONE]),
	    "closed_done: counter at closed_by[DONE]");
	i = (unsigned)field_index("closed_shutdown");
	ok(field_index("closed_shutdown") >= 0 &&
	    stats_fields[i].offset == offsetof(struct stats_counters,
	        closed_by[STATS_CLOSE_SHUTDOWN]), "closed_shutdown: at closed_by[SHUTDOWN]");
	is(STATS_CLOSE_COUNT, 12,
	    "twelve close reasons (session.h's enum close_reason, lost and handoff_lost)");
	{
		static const char *const refusals[] = { "refused_no_memory", "refused_acl_denied",
			"refused_rate_limited", "refused_per_source_limit", "refused_no_server",
			"refused_proxy_rejected", "refused_tls_rejected", "refused_no_route" };
		unsigned k, found = 0;

		for (k = 0; k < sizeof(refusals) / sizeof(refusals[0]); k++) {
			int fi = field_index(refusals[k]);

			if (fi >= 0 && stats_fields[fi].kind == STATS_COUNTER &&
			    stats_fields[fi].offset ==
			        offsetof(struct stats_counters, refused_by[0]) + k * sizeof(uint64_t))
				found++;
		}
		is(found, 8, "every refusal reason is a counter at refused_by[reason]");
		is(STATS_REFUSE_COUNT, 8, "eight refusal reasons");
	}
	{
		static const char *const kept[] = { "accepted", "closed", "active", "bytes_in",
			"bytes_out", "connect_failures", "timeouts", "refused", "accept_pauses",
			"pool_buffers_total", "pool_buffers_used", "pool_bytes_mapped", "rss_bytes" };
		unsigned k, found = 0;

		for (k = 0; k < sizeof(kept) / sizeof(kept[0]); k++)
			found += field_index(kept[k]) >= 0;
		is(found, sizeof(kept) / sizeof(kept[0]), "the names tests and scripts use are kept");
	}
	is(stats_listener_nfields, sizeof(struct stats_listener_counters) / sizeof(uint64_t),
	    "stats_listener_fields describes every listener field");
	is(stats_server_nfields, sizeof(struct stats_server_counters) / sizeof(uint64_t),
	    "stats_server_fields describes every server field");
	ok(stats_field_find(stats_listener_fields, stats_listener_nfields, "accepted") >= 0 &&
	    stats_field_find(stats_listener_fields, stats_listener_nfields, "bytes_out") >= 0 &&
	    stats_field_find(stats_server_fields, stats_server_nfields, "connects") >= 0 &&
	    stats_field_find(stats_server_fields, stats_server_nfields, "timeouts") >= 0 &&
	    stats_field_find(stats_server_fields, stats_server_nfields, "nope") == -1,
	    "stats_field_find finds listener and server fields, not others");
	is(sizeof(struct stats_health), 64, "a server's health is one cache line");
	is_str(stats_health_name(STATS_HEALTH_UNKNOWN), "unknown", "health name unknown");
	is_str(stats_health_name(STATS_HEALTH_UP), "up", "health name up");
	is_str(stats_health_name(STATS_HEALTH_DOWN), "down", "health name down");
	is_str(stats_health_name(7), "?", "unknown health is ?");
	is_str(stats_check_name(STATS_CHECK_NONE), "none", "check name none");
	is_str(stats_check_name(STATS_CHECK_BAD_REPLY), "bad_reply", "check name bad_reply");
	is_str(stats_check_name(99), "?", "unknown check result is ?");

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

/* Every area starts on a cache line, inside the file, after the one before. */
static void
test_areas(const struct stats_seg *w)
{
	const struct stats_header *h = w->hdr;
	size_t off[] = {
		(size_t)((const char *)w->listeners - (const char *)h),
		(size_t)((const char *)w->servers - (const char *)h),
		(size_t)((const char *)w->health - (const char *)h),
		(size_t)((const char *)w->listener_retired - (const char *)h),
		(size_t)((const char *)w->server_retired - (const char *)h),
		(size_t)((const char *)w->slots - (const char *)h),
		(size_t)(w->listener_rows - (const char *)h),
		(size_t)(w->server_rows - (const char *)h),
	};
	size_t end[] = {
		off[0] + h->nlisteners * sizeof(struct stats_listener_entry),
		off[1] + h->nservers * sizeof(struct stats_server_entry),
		off[2] + h->nservers * sizeof(struct stats_health),
		off[3] + h->nlisteners * sizeof(struct stats_listener_counters),
		off[4] + h->nservers * sizeof(struct stats_server_counters),
		off[5] + h->nslots * sizeof(struct stats_slot),
		off[6] + h->nslots * w->listener_stride,
		off[7] + h->nslots * w->server_stride,
	};
	unsigned i, n = sizeof(off) / sizeof(off[0]), aligned = 1, ordered = 1;

	for (i = 0; i < n; i++) {
		if (off[i] % 64 != 0)
			aligned = 0;
		if (off[i] < (i ? end[i - 1] : sizeof(struct stats_header)))
			ordered = 0;
	}
	ok(aligned && w->listener_stride % 64 == 0 && w->server_stride % 64 == 0,
	    "every area and every slot's block of rows starts on a cache line");
	ok(ordered, "areas follow the header in order without overlapping");
	is(end[n - 1], w->size, "the last area ends the file");
	ok(off[2] % STATS_PAGE == 0 && off[3] % STATS_PAGE == 0 && off[5] % STATS_PAGE == 0 &&
	    off[6] % STATS_PAGE == 0 && off[7] % STATS_PAGE == 0 &&
	    w->listener_stride % STATS_PAGE == 0 && w->server_stride % STATS_PAGE == 0,
	    "the health area, each slot and each slot's rows own whole pages");
	ok(w->listener_stride >= h->nlisteners * sizeof(struct stats_listener_counters) &&
	    w->server_stride >= h->nservers * sizeof(struct stats_server_counters),
	    "a slot's rows hold every listener and server");
	ok((char *)stats_slot_listener(w, 1, 0) - (char *)stats_slot_listener(w, 0, 0) ==
	    (ptrdiff_t)w->listener_stride &&
	    (char *)stats_slot_server(w, 2, 3) - (char *)stats_slot_server(w, 2, 0) ==
	    (ptrdiff_t)(3 * sizeof(struct stats_server_counters)),
	    "stats_slot_listener/server index slot and row");
}

static struct sockaddr_storage
sa_of(const char *ip, int port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &in->sin_addr);
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss)), sizeof(struct sockaddr_in)

/* The master's directory: one row per identity, reused across generations. */
static void
test_directory(void)
{
	struct sockaddr_storage l1 = sa_of("127.0.0.1", 8080), l2 = sa_of("127.0.0.2", 8080),
				s1 = sa_of("127.0.0.1", 9000), s2 = sa_of("127.0.0.1", 9001);
	struct stats_seg w, r;
	char err[256];
	unsigned a, b, c, d, e, i, full;
	uint64_t seq;

	if (stats_create(&w, path_of("dir"), 2, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);
	if (stats_attach(&r, path_of("dir"), err, sizeof(err)) == -1)
		bail("stats_attach: %s", err);

	seq = w.hdr->fold_seq;
	a = stats_listener_row(&w, SA(l1), "127.0.0.1:8080", "app", 1);
	b = stats_listener_row(&w, SA(l2), "127.0.0.2:8080", "app", 1);
	is(a, 0, "first listener gets row 0");
	is(b, 1, "second listener gets row 1");
	is(r.hdr->listeners_used, 2, "two listener entries in use");
	ok(w.hdr->fold_seq > seq && w.hdr->fold_seq % 2 == 0,
	    "directory writes move fold_seq and leave it even");
	is_str(r.listeners[0].address, "127.0.0.1:8080", "entry keeps the address text");
	is_str(r.listeners[0].upstream, "app", "entry keeps the upstream");
	ok(r.listeners[0].generation == 1 && r.listeners[0].first_generation == 1,
	    "entry stamped with generation 1");

	/* Generation 2: the same address (as written differently) and a new
	 * upstream keep the row. */
	a = stats_listener_row(&w, SA(l1), "127.0.0.1:08080", "web", 2);
	is(a, 0, "the same address keeps its row in a later generation");
	ok(r.listeners[0].generation == 2 && r.listeners[0].first_generation == 1 &&
	    strcmp(r.listeners[0].upstream, "web") == 0 &&
	    strcmp(r.listeners[0].address, "127.0.0.1:08080") == 0,
	    "the entry follows the newest config, first generation kept");
	ok(r.listeners[1].generation == 1, "a listener gone from the config keeps generation 1");
	is(r.hdr->listeners_used, 2, "no new entry for a known listener");

	c = stats_server_row(&w, "app", SA(s1), "127.0.0.1:9000", 1, 0, 1);
	d = stats_server_row(&w, "app", SA(s2), "localhost:9001", 3, 1, 1);
	e = stats_server_row(&w, "other", SA(s1), "127.0.0.1:9000", 1, 0, 1);
	ok(c == 0 && d == 1 && e == 2, "servers: a row per (upstream, address): %u %u %u", c, d, e);
	ok(r.servers[1].weight == 3 && r.servers[1].backup == 1 &&
	    strcmp(r.servers[1].address, "localhost:9001") == 0 &&
	    strcmp(r.servers[1].upstream, "app") == 0, "server entry keeps weight, backup, text");
	is(stats_server_row(&w, "app", SA(s1), "127.0.0.1:9000", 5, 0, 2), 0,
	    "a known server keeps its row in generation 2");
	ok(r.servers[0].weight == 5 && r.servers[0].generation == 2 &&
	    r.servers[0].first_generation == 1, "and its entry follows the new weight");
	is(r.hdr->servers_used, 3, "three server entries");
	{
		struct stats_server_admin adm = stats_admin_get(&r, 1);

		ok(adm.state == STATS_ADMIN_READY && adm.weight == STATS_WEIGHT_CONFIG,
		    "a new server row starts ready, with the config's weight");
		stats_admin_set(&w, 1, STATS_ADMIN_DRAIN, 7);
		adm = stats_admin_get(&r, 1);
		ok(adm.state == STATS_ADMIN_DRAIN && adm.weight == 7,
		    "the master's admin state and weight reach a reader");
		stats_admin_set(&r, 1, STATS_ADMIN_MAINT, 1);
		adm = stats_admin_get(&r, 1);
		ok(adm.state == STATS_ADMIN_DRAIN && adm.weight == 7,
		    "a read-only mapping cannot set them");
		is(stats_server_row(&w, "app", SA(s2), "localhost:9001", 3, 1, 2), 1,
		    "the drained server keeps its row in a later generation");
		adm = stats_admin_get(&r, 1);
		ok(adm.state == STATS_ADMIN_DRAIN && adm.weight == 7, "and its admin state with it");
		adm = stats_admin_get(&r, STATS_SERVERS);
		ok(adm.state == STATS_ADMIN_READY && adm.weight == STATS_WEIGHT_CONFIG,
		    "an out-of-range row reads as ready with the config's weight");
		ok(stats_admin_parse("maint") == STATS_ADMIN_MAINT &&
		    stats_admin_parse("ready") == STATS_ADMIN_READY &&
		    stats_admin_parse("up") == -1 &&
		    strcmp(stats_admin_name(STATS_ADMIN_DRAIN), "drain") == 0 &&
		    strcmp(stats_admin_name(9), "?") == 0,
		    "admin state names both ways");
		stats_admin_set(&w, 1, STATS_ADMIN_READY, STATS_WEIGHT_CONFIG);
	}

	is(stats_listener_row(&r, SA(l1), "x", "y", 3), STATS_NO_ROW,
	    "a read-only mapping cannot take rows");

	full = 1;
	for (i = 2; i < STATS_LISTENERS; i++) {
		struct sockaddr_storage l = sa_of("127.0.1.1", 1000 + (int)i);

		if (stats_listener_row(&w, SA(l), "many", "app", 1) != i)
			full = 0;
	}
	ok(full, "rows up to the capacity are handed out in order");
	{
		struct sockaddr_storage l = sa_of("127.0.2.1", 1);

		is(stats_listener_row(&w, SA(l), "one too many", "app", 1), STATS_NO_ROW,
		    "a full directory answers STATS_NO_ROW");
		is(stats_listener_row(&w, SA(l1), "127.0.0.1:8080", "app", 4), 0,
		    "a full directory still finds known listeners");
	}
	stats_detach(&r);
	stats_detach(&w);
}

/* A full directory recycles the entries no live generation uses: the oldest
 * goes to the new identity, its totals to the recycled rows, its health and
 * admin records start afresh; entries still in use, and a known identity,
 * are never taken. */
static void
test_recycle(void)
{
	struct stats_snapshot *sn;
	struct stats_seg w, r;
	struct stats_health h;
	char err[256], text[32];
	unsigned i, row, ok_rows = 1;

	if (stats_create(&w, path_of("recycle"), 4, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);
	if (stats_attach(&r, path_of("recycle"), err, sizeof(err)) == -1)
		bail("stats_attach: %s", err);
	/* Generation 1 fills the server directory; 2 and 3 come later. */
	for (i = 0; i < STATS_SERVERS; i++) {
		struct sockaddr_storage a = sa_of("10.1.0.1", 1000 + (int)i);

		snprintf(text, sizeof(text), "10.1.0.1:%u", 1000 + i);
		if (stats_server_row(&w, "old", SA(a), text, 1, 0, i < 10 ? 2 : 1) != i)
			ok_rows = 0;
	}
	ok(ok_rows, "the directory fills in order");
	w.server_retired[5].connects = 7;
	w.server_retired[5].bytes_in = 700;
	w.server_retired[11].connects = 11;
	stats_admin_set(&w, 5, STATS_ADMIN_MAINT, 9);
	memset(&h, 0, sizeof(h));
	h.state = STATS_HEALTH_DOWN;
	stats_health_publish(&w, 5, &h);
	{
		struct sockaddr_storage n = sa_of("10.2.0.1", 1);

		is(stats_server_row(&w, "new", SA(n), "10.2.0.1:1", 1, 0, 3), STATS_NO_ROW,
		    "full, with every generation still live: no row");
		stats_recycle_below(&w, 2);
		row = stats_server_row(&w, "new", SA(n), "10.2.0.1:1", 1, 0, 3);
		ok(row >= 10 && row < STATS_SERVERS,
		    "with generation 1 gone, a generation-1 row is recycled (%u)", row);
	}
	{
		struct sockaddr_storage back = sa_of("10.1.0.1", 1005);

		is(stats_server_row(&w, "old", SA(back), "10.1.0.1:1005", 1, 0, 3), 5,
		    "a known identity keeps its row, unused or not");
		ok(stats_admin_get(&r, 5).state == STATS_ADMIN_MAINT,
		    "and its admin state");
	}
	{
		struct sockaddr_storage n2 = sa_of("10.2.0.1", 2);
		unsigned row2;

		row2 = stats_server_row(&w, "new", SA(n2), "10.2.0.1:2", 1, 0, 3);
		ok(row2 != 5 && row2 != row && row2 >= 10, "the next new one takes another (%u)", row2);
		/* Fill until only rows of generation >= 2 are left. */
		for (i = 3; i < 400; i++) {
			struct sockaddr_storage n3 = sa_of("10.3.0.1", (int)i);

			snprintf(text, sizeof(text), "10.3.0.1:%u", i);
			if (stats_server_row(&w, "new", SA(n3), text, 1, 0, 3) == STATS_NO_ROW)
				break;
		}
		ok(i < 400, "recycling stops when only rows in use are left (%u more)", i - 3);
		for (i = 0; i < 10; i++)
			if (strcmp(w.servers[i].upstream, "old") != 0)
				ok_rows = 0;
		ok(ok_rows && strcmp(w.servers[5].upstream, "old") == 0,
		    "generation-2 rows and the known one were never taken");
	}
	sn = stats_snapshot_create(&r);
	ok(sn != NULL && sn->servers_recycled.connects == 11 + 0 &&
	        sn->servers_recycled.bytes_in == 0,
	    "a recycled row's totals moved to the recycled row (connects %llu)",
	    sn ? (unsigned long long)sn->servers_recycled.connects : 0ULL);
	ok(sn != NULL && r.hdr->servers_used == STATS_SERVERS, "the count of entries stays");
	stats_snapshot_destroy(sn);
	{
		struct stats_health got;

		stats_health_read(&r, row, &got);
		ok(got.state == STATS_HEALTH_UNKNOWN && stats_admin_get(&r, row).state ==
		        STATS_ADMIN_READY && stats_admin_get(&r, row).weight == STATS_WEIGHT_CONFIG,
		    "a recycled row starts unknown, ready, with the config's weight");
	}
	stats_detach(&r);
	stats_detach(&w);
}

/* Listener and server rows of a slot fold into the retired rows like the
 * slot's counters; gauges vanish with the worker. */
static void
test_rows_fold(void)
{
	struct sockaddr_storage l1 = sa_of("127.0.0.1", 8080), s1 = sa_of("127.0.0.1", 9000);
	struct stats_listener_counters *lr;
	struct stats_server_counters *sr;
	struct stats_snapshot *sn;
	struct stats_seg w, r;
	char err[256];
	unsigned i, zero;

	if (stats_create(&w, path_of("rows"), 4, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);
	if (stats_attach(&r, path_of("rows"), err, sizeof(err)) == -1)
		bail("stats_attach: %s", err);
	stats_listener_row(&w, SA(l1), "127.0.0.1:8080", "app", 1);
	stats_server_row(&w, "app", SA(s1), "127.0.0.1:9000", 1, 0, 1);

	for (i = 0; i < 3; i++) {
		w.slots[i].pid = 100 + (int)i;
		w.slots[i].generation = 1;
		__atomic_store_n(&w.slots[i].state, STATS_SLOT_RUNNING, __ATOMIC_RELEASE);
		lr = stats_slot_listener(&w, i, 0);
		sr = stats_slot_server(&w, i, 0);
		STATS_ROW_ADD(lr, accepted, 10 * (i + 1));
		STATS_ROW_ADD(lr, active, 2);
		STATS_ROW_ADD(lr, active, 1);
		STATS_ROW_SUB(lr, active, 1);
		STATS_ROW_ADD(lr, bytes_in, 1000);
		STATS_ROW_ADD(sr, connects, 5);
		STATS_ROW_SET(sr, active, 1);
		STATS_ROW_ADD(sr, bytes_out, 7);
		STATS_ADD(&w.slots[i], accepted, 10 * (i + 1));
		STATS_ADD(&w.slots[i], closed_by[STATS_CLOSE_IDLE_TIMEOUT], 1);
		STATS_ADD(&w.slots[i], refused_by[STATS_REFUSE_NO_SERVER], 2);
	}
	/* A free slot's leftovers never count. */
	STATS_ROW_ADD(stats_slot_listener(&w, 3, 0), accepted, 1000);

	sn = stats_snapshot_create(&r);
	if (sn == NULL)
		bail("stats_snapshot_create: %s", strerror(errno));
	ok(sn->settled, "snapshot settled");
	is(sn->nworkers, 3, "snapshot: three workers");
	is(sn->running, 3, "snapshot: three running");
	ok(sn->nlisteners == 1 && sn->nservers == 1, "snapshot: one listener, one server");
	is(sn->listeners[0].c.accepted, 60, "listener accepted sums the live slots");
	is(sn->listeners[0].c.active, 6, "listener active gauge sums the live slots");
	is(sn->listeners[0].c.bytes_in, 3000, "listener bytes_in");
	is_str(sn->listeners[0].entry.address, "127.0.0.1:8080", "snapshot copies the entry");
	is(sn->servers[0].c.connects, 15, "server connects");
	is(sn->servers[0].c.active, 3, "server active gauge");
	is(sn->servers[0].c.bytes_out, 21, "server bytes_out");
	is(sn->total.accepted, 60, "worker total accepted");
	is(sn->total.closed_by[STATS_CLOSE_IDLE_TIMEOUT], 3, "closed_idle_timeout total");
	is(sn->total.refused_by[STATS_REFUSE_NO_SERVER], 6, "refused_no_server total");
	is(sn->workers[1].pid, 101, "snapshot: worker rows by slot");
	ok(sn->master_pid == getpid() && sn->generation == 1 && sn->start_ms == r.hdr->start_ms,
	    "snapshot: master identity and generation");
	stats_snapshot_destroy(sn);

	stats_fold(&w, 1);
	sn = stats_snapshot_create(&r);
	if (sn == NULL)
		bail("stats_snapshot_create: %s", strerror(errno));
	is(sn->listeners[0].c.accepted, 60, "listener accepted unchanged across the fold");
	is(sn->listeners[0].c.active, 4, "listener active drops by the folded slot's");
	is(sn->servers[0].c.connects, 15, "server connects unchanged across the fold");
	is(sn->servers[0].c.active, 2, "server active drops by the folded slot's");
	is(sn->total.closed_by[STATS_CLOSE_IDLE_TIMEOUT], 3, "close reasons kept across the fold");
	is(sn->nworkers, 2, "two workers left");
	stats_snapshot_destroy(sn);
	is(r.listener_retired[0].accepted, 20, "retired listener row holds the slot's counters");
	is(r.listener_retired[0].active, 0, "retired listener row holds no gauge");
	is(r.server_retired[0].bytes_out, 7, "retired server row holds the slot's bytes");
	zero = 1;
	for (i = 0; i < sizeof(struct stats_listener_counters); i++)
		if (((const unsigned char *)stats_slot_listener(&r, 1, 0))[i] != 0)
			zero = 0;
	for (i = 0; i < sizeof(struct stats_server_counters); i++)
		if (((const unsigned char *)stats_slot_server(&r, 1, 0))[i] != 0)
			zero = 0;
	ok(zero, "the folded slot's rows are zeroed");

	stats_fold(&w, 0);
	stats_fold(&w, 2);
	sn = stats_snapshot_create(&r);
	ok(sn != NULL && sn->listeners[0].c.accepted == 60 && sn->listeners[0].c.active == 0 &&
	    sn->servers[0].c.bytes_out == 21 && sn->nworkers == 0,
	    "all folded: counters kept, gauges 0");
	stats_snapshot_destroy(sn);
	stats_detach(&r);
	stats_detach(&w);
}

/* The checker's area: whole records, never half of one. */
static void
test_health(void)
{
	struct stats_health h, got;
	struct stats_seg w, r;
	char err[256];
	uint64_t deadline;
	unsigned torn = 0, reads = 0, unsettled = 0;
	int status = 0;
	pid_t pid;

	if (stats_create(&w, path_of("health"), 2, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);
	if (stats_attach(&r, path_of("health"), err, sizeof(err)) == -1)
		bail("stats_attach: %s", err);

	stats_health_read(&r, 3, &got);
	ok(got.state == STATS_HEALTH_UNKNOWN && got.last_result == STATS_CHECK_NONE &&
	    got.checks == 0, "an unchecked server reads unknown, no result");
	is(stats_health_state(&r, 3), STATS_HEALTH_UNKNOWN, "stats_health_state: unknown");

	memset(&h, 0, sizeof(h));
	h.state = STATS_HEALTH_DOWN;
	h.last_result = STATS_CHECK_REFUSED;
	h.last_errno = ECONNREFUSED;
	h.failures = 3;
	h.last_check_ms = 1000;
	h.last_change_ms = 900;
	h.last_duration_ms = 2;
	h.checks = 10;
	h.checks_failed = 4;
	stats_health_publish(&w, 3, &h);
	stats_health_read(&r, 3, &got);
	ok(got.state == STATS_HEALTH_DOWN && got.last_result == STATS_CHECK_REFUSED &&
	    got.last_errno == ECONNREFUSED && got.failures == 3 && got.successes == 0 &&
	    got.last_check_ms == 1000 && got.last_change_ms == 900 && got.last_duration_ms == 2 &&
	    got.checks == 10 && got.checks_failed == 4, "published health reads back whole");
	ok(got.seq == 2, "one publication moves seq by two (%llu)", (unsigned long long)got.seq);
	is(stats_health_state(&r, 3), STATS_HEALTH_DOWN, "stats_health_state: down");
	stats_health_publish(&r, 4, &h);
	stats_health_read(&r, 4, &got);
	is(got.checks, 0, "a read-only mapping cannot publish");
	stats_health_publish(&w, STATS_SERVERS, &h);
	stats_health_read(&r, STATS_SERVERS, &got);
	ok(got.checks == 0 && stats_health_state(&r, STATS_SERVERS) == STATS_HEALTH_UNKNOWN,
	    "out-of-range rows are ignored and read empty");

	/* A child publishes records whose fields all derive from one number;
	 * any mix of two records is caught. */
	fflush(stdout);
	pid = fork();
	if (pid == -1)
		bail("fork: %s", strerror(errno));
	if (pid == 0) {
		uint64_t end = mono_ms() + 1000;

		for (uint64_t n = 1; mono_ms() < end; n++) {
			h.checks = n;
			h.checks_failed = n * 3;
			h.last_check_ms = n * 5;
			h.successes = (uint32_t)n;
			h.failures = (uint32_t)(n * 7);
			stats_health_publish(&w, 5, &h);
			/* A checker publishes now and then, not back to back:
			 * leave readers a moment between records. */
			if (n % 16 == 0)
				sched_yield();
		}
		_exit(0);
	}
	deadline = mono_ms() + 30000;
	while (waitpid(pid, &status, WNOHANG) == 0 && mono_ms() < deadline) {
		if (!stats_health_read(&r, 5, &got))
			unsettled++;
		reads++;
		if (got.checks_failed != got.checks * 3 || got.last_check_ms != got.checks * 5 ||
		    got.successes != (uint32_t)got.checks ||
		    got.failures != (uint32_t)(got.checks * 7))
			torn++;
	}
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "publishing child finished");
	is(unsettled, 0, "every read settled");
	is(torn, 0, "no torn health record in %u reads", reads);
	stats_detach(&r);
	stats_detach(&w);
}

/*
 * Counts a worker (or anyone who can write the file) changed after create or
 * attach: the master's fold, row allocation and health publication, and the
 * readers, must keep to the counts they validated. Each case runs in a child,
 * so an overflow (a fault or a sanitizer report) fails that case alone; a
 * child exits 0 when it stayed in bounds and its answers were sane, 2 when an
 * answer was wrong.
 */
struct hostile {
	struct stats_seg w, r;
	unsigned which;
};

static void
hostile_scribble(struct stats_header *h)
{
	h->nslots = 65535;
	h->nlisteners = 65535;
	h->nservers = 65535;
	__atomic_store_n(&h->listeners_used, 65000, __ATOMIC_RELEASE);
	__atomic_store_n(&h->servers_used, 65000, __ATOMIC_RELEASE);
}

static int
hostile_case(struct hostile *x)
{
	struct sockaddr_storage l = sa_of("127.0.3.1", 7000), s = sa_of("127.0.3.2", 7001);
	struct stats_snapshot *sn;
	struct stats_counters total;
	struct stats_health h;
	unsigned row;

	memset(&h, 0, sizeof(h));
	switch (x->which) {
	case 0: /* fold of a slot number past the real slots (what follows
		 * them is slot 0's rows) */
		for (unsigned i = NSLOTS; i < NSLOTS + 8; i++)
			stats_fold(&x->w, i);
		stats_fold(&x->w, 60000);
		return stats_slot_listener(&x->w, 0, 1)->accepted == 1 ? 0 : 2;
	case 1: /* fold of a live slot: its rows, as many as the directory says */
		stats_fold(&x->w, 1);
		return x->w.slots[1].state == STATS_SLOT_FREE ? 0 : 2;
	case 2: /* a new listener row */
		row = stats_listener_row(&x->w, SA(l), "127.0.3.1:7000", "app", 2);
		return row == 2 && x->w.hdr->listeners_used == 3 ? 0 : 2;
	case 3: /* a new server row */
		row = stats_server_row(&x->w, "app", SA(s), "127.0.3.2:7001", 1, 0, 2);
		return row == 2 && x->w.hdr->servers_used == 3 ? 0 : 2;
	case 4: /* the checker publishing past the real servers */
		h.checks = 1;
		stats_health_publish(&x->w, 60000, &h);
		return 0;
	case 5: /* totals, by the master and by a reader */
		stats_total(&x->w, &total);
		stats_total(&x->r, &total);
		return total.accepted == 30 ? 0 : 2;
	case 6: /* a reader's snapshot */
		sn = stats_snapshot_create(&x->r);
		if (sn == NULL)
			return 2;
		row = sn->nworkers <= NSLOTS && sn->nlisteners <= STATS_LISTENERS &&
		    sn->nservers <= STATS_SERVERS && sn->total.accepted == 30;
		stats_snapshot_destroy(sn);
		return row ? 0 : 2;
	case 7: /* a reader's health of a row past the real servers */
		stats_health_read(&x->r, 60000, &h);
		return h.checks == 0 && stats_health_state(&x->r, 60000) == STATS_HEALTH_UNKNOWN
		    ? 0 : 2;
	}
	return 2;
}

static void
test_hostile_counts(void)
{
	static const char *const what[] = {
		"stats_fold ignores a slot past its own count of slots",
		"stats_fold walks only the rows it handed out",
		"stats_listener_row searches only the entries it made",
		"stats_server_row searches only the entries it made",
		"stats_health_publish ignores a row past its own count of servers",
		"stats_total reads only the slots validated at create or attach",
		"a snapshot reads only what was validated at attach",
		"stats_health_read/state ignore a row past the validated count",
	};
	struct sockaddr_storage l1 = sa_of("127.0.0.1", 8080), l2 = sa_of("127.0.0.2", 8080),
				s1 = sa_of("127.0.0.1", 9000), s2 = sa_of("127.0.0.1", 9001);
	struct hostile x;
	char err[256];

	for (x.which = 0; x.which < sizeof(what) / sizeof(what[0]); x.which++) {
		int status = 0;
		pid_t pid;

		if (stats_create(&x.w, path_of("hostile"), NSLOTS, err, sizeof(err)) == -1)
			bail("stats_create: %s", err);
		if (stats_attach(&x.r, path_of("hostile"), err, sizeof(err)) == -1)
			bail("stats_attach: %s", err);
		stats_listener_row(&x.w, SA(l1), "127.0.0.1:8080", "app", 1);
		stats_listener_row(&x.w, SA(l2), "127.0.0.2:8080", "app", 1);
		stats_server_row(&x.w, "app", SA(s1), "127.0.0.1:9000", 1, 0, 1);
		stats_server_row(&x.w, "app", SA(s2), "127.0.0.1:9001", 1, 0, 1);
		for (unsigned i = 0; i < 2; i++) {
			x.w.slots[i].pid = 100 + (int)i;
			STATS_ADD(&x.w.slots[i], accepted, 10 * (i + 1));
			STATS_ROW_ADD(stats_slot_listener(&x.w, i, 1), accepted, 1);
			__atomic_store_n(&x.w.slots[i].state, STATS_SLOT_RUNNING,
			    __ATOMIC_RELEASE);
		}
		/* What a worker writing the whole segment could do. */
		hostile_scribble(x.w.hdr);

		fflush(stdout);
		pid = fork();
		if (pid == -1)
			bail("fork: %s", strerror(errno));
		if (pid == 0)
			_exit(hostile_case(&x));
		if (waitpid(pid, &status, 0) == -1)
			bail("waitpid: %s", strerror(errno));
		ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s (child %s %d)",
		    what[x.which], WIFEXITED(status) ? "exit" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		stats_detach(&x.r);
		stats_detach(&x.w);
	}
}

/* Health records left mid-write (odd seq) by a dead or hostile checker cost a
 * snapshot one patience in all, not half a second each: with 64 of them a
 * snapshot used to take half a minute. Judged against a generous deadline,
 * in a child so that a hang is reported rather than suffered. */
static void
test_odd_records(void)
{
	struct stats_seg w, r;
	char err[256];
	uint64_t deadline;
	int status = -1, settled = -1;
	pid_t pid;
	int p[2];

	if (stats_create(&w, path_of("odd"), 2, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);
	for (unsigned i = 0; i < 64; i++) {
		struct sockaddr_storage s = sa_of("127.0.4.1", 2000 + (int)i);

		stats_server_row(&w, "app", SA(s), "x", 1, 0, 1);
		w.health[i].seq = 1;
	}
	if (stats_attach(&r, path_of("odd"), err, sizeof(err)) == -1)
		bail("stats_attach: %s", err);
	if (pipe(p) == -1)
		bail("pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid == -1)
		bail("fork: %s", strerror(errno));
	if (pid == 0) {
		struct stats_snapshot *sn = stats_snapshot_create(&r);
		char c = sn != NULL && sn->nservers == 64 ? (char)('0' + sn->settled) : 'x';

		_exit(write(p[1], &c, 1) == 1 ? 0 : 1);
	}
	close(p[1]);
	deadline = mono_ms() + 10000;
	while (mono_ms() < deadline && waitpid(pid, &status, WNOHANG) == 0)
		poll(NULL, 0, 10);
	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		status = -1;
	} else {
		char c = 0;

		if (read(p[0], &c, 1) == 1)
			settled = c;
	}
	close(p[0]);
	ok(status == 0, "a snapshot over 64 half-written health records ends in time");
	ok(settled == '1', "and its sum of folds is still settled (%c)", settled > 0 ? settled : '-');
	stats_detach(&r);
	stats_detach(&w);
}

/* A restarted master makes a new file: a reader of the old one keeps it,
 * and a new attach tells the two masters apart. */
static void
test_replace(void)
{
	struct stats_seg a, b, old, fresh;
	char err[256];

	if (stats_create(&a, path_of("replace"), 2, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);
	STATS_ADD(&a.slots[0], accepted, 5);
	__atomic_store_n(&a.slots[0].state, STATS_SLOT_RUNNING, __ATOMIC_RELEASE);
	if (stats_attach(&old, path_of("replace"), err, sizeof(err)) == -1)
		bail("stats_attach: %s", err);
	a.hdr->start_ms -= 1000; /* the same pid, an earlier start: another master */

	if (stats_create(&b, path_of("replace"), 2, err, sizeof(err)) == -1)
		bail("stats_create over: %s", err);
	is(STATS_GET(&old.slots[0], accepted), 5, "a reader of the replaced file still reads it");
	if (stats_attach(&fresh, path_of("replace"), err, sizeof(err)) == -1)
		bail("stats_attach: %s", err);
	ok(fresh.hdr->start_ms != old.hdr->start_ms, "the new file is another master's (start)");
	is(STATS_GET(&fresh.slots[0], accepted), 0, "and starts from zero");
	{
		struct stat st;
		char probe[512];

		snprintf(probe, sizeof(probe), "%s", path_of("replace"));
		ok(stat(probe, &st) == 0 && (st.st_mode & 07777) == 0640,
		    "the replacement has mode 0640");
	}
	stats_detach(&fresh);
	stats_detach(&old);
	stats_detach(&b);
	stats_detach(&a);
}

static void
test_create_attach(void)
{
	struct stats_seg w, r;
	struct stats_header *h;
	struct stat st;
	char err[256];
	uint64_t before, after;
	size_t want;
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
	want = w.size;

	memset(&st, 0, sizeof(st));
	if (stat(path_of("seg"), &st) == -1)
		diag("stat: %s", strerror(errno));
	ok((st.st_mode & 07777) == 0640, "created with mode 0640 under umask 077 (got %o)",
	    (unsigned)(st.st_mode & 07777));
	is(st.st_size, want, "seg.size is the file size");
	ok(want >= sizeof(struct stats_header) + NSLOTS * sizeof(struct stats_slot) +
	    NSLOTS * (STATS_LISTENERS * sizeof(struct stats_listener_counters) +
	    STATS_SERVERS * sizeof(struct stats_server_counters)),
	    "file holds header, slots and every slot's rows (%zu bytes)", want);
	ok(st.st_blocks * 512 < (off_t)want / 4, "the file is sparse (%lld of %zu bytes used)",
	    (long long)st.st_blocks * 512, want);
	ok(w.writable, "created segment is writable");
	test_areas(&w);
	ok(h->magic == STATS_MAGIC, "magic set");
	is(h->version, STATS_VERSION, "version set");
	is(h->header_size, sizeof(struct stats_header), "header_size set");
	is(h->size, want, "size set");
	is(h->nslots, NSLOTS, "nslots set");
	is(h->nlisteners, STATS_LISTENERS, "listener capacity set");
	is(h->nservers, STATS_SERVERS, "server capacity set");
	ok(h->listeners_used == 0 && h->servers_used == 0, "the directory starts empty");
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
	ok((char *)r.slots - (char *)r.hdr == (char *)w.slots - (char *)w.hdr &&
	    r.listener_rows - (char *)r.hdr == w.listener_rows - (char *)w.hdr &&
	    r.server_rows - (char *)r.hdr == w.server_rows - (char *)w.hdr &&
	    (char *)r.health - (char *)r.hdr == (char *)w.health - (char *)w.hdr,
	    "reader and creator agree on the layout");

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
			STATS_ROW_SET(stats_slot_listener(w, RACE_SLOTS - 1, 0), accepted, 1);
			STATS_ROW_SET(stats_slot_server(w, RACE_SLOTS - 1, 0), bytes_in, 1);
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
	struct sockaddr_storage l1 = sa_of("127.0.0.1", 80), s1 = sa_of("127.0.0.1", 81);
	uint64_t last = 0, reads = 0, deadline, folds, seq0, last_sn = 0, snaps = 0;
	int backwards = 0, status = 0, done = 0, torn = 0;
	unsigned i;
	pid_t pid;

	if (stats_create(&w, path_of("race"), RACE_SLOTS, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);
	if (stats_attach(&r, path_of("race"), err, sizeof(err)) == -1)
		bail("stats_attach: %s", err);
	for (i = 0; i < RACE_SLOTS - 1; i++)
		__atomic_store_n(&w.slots[i].state, STATS_SLOT_RUNNING, __ATOMIC_RELEASE);
	stats_listener_row(&w, SA(l1), "127.0.0.1:80", "app", 1);
	stats_server_row(&w, "app", SA(s1), "127.0.0.1:81", 1, 0, 1);
	seq0 = w.hdr->fold_seq;
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
		if (reads % 4 == 0) {
			/* A snapshot agrees with itself: the slot, its listener
			 * row and its server row move together. */
			struct stats_snapshot *sn = stats_snapshot_create(&r);

			if (sn == NULL)
				bail("stats_snapshot_create: %s", strerror(errno));
			if (sn->total.accepted != sn->listeners[0].c.accepted ||
			    sn->total.accepted != sn->servers[0].c.bytes_in)
				torn++;
			if (sn->listeners[0].c.accepted < last_sn)
				backwards++;
			last_sn = sn->listeners[0].c.accepted;
			stats_snapshot_destroy(sn);
			snaps++;
		} else {
			stats_total(&r, &t);
			if (t.accepted < last || t.accepted > RACE_ROUNDS)
				backwards++;
			last = t.accepted;
		}
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
	is(r.hdr->fold_seq, seq0 + 2 * folds, "fold_seq even after the last fold");
	is(torn, 0, "every one of %llu snapshots agreed with itself", (unsigned long long)snaps);

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
	size_t size;
	struct stat st;
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

	if (stat(path_of("short"), &st) == -1)
		bail("stat: %s", strerror(errno));
	size = (size_t)st.st_size;
	ok(stats_attach(&r, path_of("magic"), err, sizeof(err)) == 0,
	    "the pristine copy attaches");
	stats_detach(&r);

	u64 = 0x4c4c4548ULL;
	ok(patch(path_of("magic"), offsetof(struct stats_header, magic), &u64, 8) == 0,
	    "patched magic");
	attach_fails("magic", "not a sluice statistics segment", "bad magic");

	u32 = STATS_VERSION + 1;
	ok(patch(path_of("version"), offsetof(struct stats_header, version), &u32, 4) == 0,
	    "patched version");
	{
		char msg[64];

		snprintf(msg, sizeof(msg), "layout version %u", STATS_VERSION + 1);
		attach_fails("version", msg, "wrong version");
	}

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
	test_directory();
	test_rows_fold();
	test_recycle();
	test_health();
	test_replace();
	test_fold_race();
	test_attach_errors();
	test_hostile_counts();
	test_odd_records();

	cleanup();
	{
		struct stat st;

		ok(stat(dir, &st) == -1 && errno == ENOENT, "temporary directory removed");
	}
	done_testing();
	return tap_exit();
}
