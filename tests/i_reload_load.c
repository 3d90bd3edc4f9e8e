/* SPDX-License-Identifier: BSD-2-Clause */
/* i_reload_load.c — integration test of hitless reload under load: 20 SIGHUPs
 * (a listener added and removed, the upstream group changed) amid short and
 * long checksummed connections lose nothing; old generations exit; the master
 * leaks no descriptor; reload storms neither pile up processes nor lose the
 * last edit. Runs sluiced and echod children on loopback; signals only them. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"

#define WORKERS 2
#define RELOADS 20
#define MAX_DRAINING 4     /* README: at most 4 older generations drain at once */
#define RELOAD_INTERVAL_MS 500 /* README: SIGHUPs closer than this coalesce */
#define SHORT_PER_STEP 3
#define LONG_N 4
#define LONG_SIZE (1536u * 1024)
#define LONG_CHUNK 4096
#define MAX_BATCHES 256
#define MAX_PIDS 512

/* Every batch of transfers in flight, and the tally of those finished. */
struct batch {
	struct h_xfer *x;
	int n;
	int is_long;
};

static struct batch batches[MAX_BATCHES];
static int nbatches;
static unsigned long started_short, started_long, good_short, good_long;
static int lp, lq, l2_on; /* listeners; l2_on: short traffic to lq too */

/* Worker pids of every generation seen, to check they all exit. */
static pid_t seen_pids[MAX_PIDS];
static int nseen;

static void
batch_start(int port, int n, const size_t *sizes, size_t chunk, int is_long)
{
	if (nbatches == MAX_BATCHES)
		bail("more than %d batches in flight", MAX_BATCHES);
	batches[nbatches].x = h_xfer_start(port, n, sizes, chunk);
	batches[nbatches].n = n;
	batches[nbatches].is_long = is_long;
	nbatches++;
	if (is_long)
		started_long += (unsigned long)n;
	else
		started_short += (unsigned long)n;
}

static void
long_start(int port)
{
	size_t sizes[LONG_N];

	for (int i = 0; i < LONG_N; i++)
		sizes[i] = LONG_SIZE + 4099 * (size_t)i;
	batch_start(port, LONG_N, sizes, LONG_CHUNK, 1);
}

static void
short_start(int port)
{
	static unsigned k;
	size_t sizes[SHORT_PER_STEP];

	for (int i = 0; i < SHORT_PER_STEP; i++)
		sizes[i] = 100 + (size_t)((k++ * 977) % 16000);
	batch_start(port, SHORT_PER_STEP, sizes, 0, 0);
}

/* Drive every batch a little; tally and free those that ended. */
static void
drive(int slice_ms)
{
	for (int i = 0; i < nbatches;) {
		struct batch *b = &batches[i];

		if (h_xfer_run(b->x, slice_ms) > 0) {
			i++;
			continue;
		}
		if (b->is_long)
			good_long += (unsigned long)h_xfer_finish(b->x, 0);
		else
			good_short += (unsigned long)h_xfer_finish(b->x, 0);
		*b = batches[--nbatches];
	}
}

/* One step of load: new short connections, then everything driven. */
static void
load_step(void)
{
	short_start(lp);
	if (l2_on)
		short_start(lq);
	drive(2);
	/* A steady stream, not a flood: leave the other tests some CPU. */
	h_nap(1);
}

/* Keep the load running for about ms. */
static void
load_for(int ms)
{
	uint64_t end = h_now_ms() + (uint64_t)ms;

	do
		load_step();
	while (h_now_ms() < end);
}

static int
short_batches(void)
{
	int n = 0;

	for (int i = 0; i < nbatches; i++)
		n += !batches[i].is_long;
	return n;
}

static void
remember_pids(uint32_t gen)
{
	pid_t pids[64];
	int n = h_stats_running(pids, 64, gen);

	for (int i = 0; i < n; i++) {
		int known = 0;

		for (int j = 0; j < nseen; j++)
			known |= seen_pids[j] == pids[i];
		if (!known && nseen < MAX_PIDS)
			seen_pids[nseen++] = pids[i];
	}
}

/* Poll (with load running) until the header says generation gen and
 * WORKERS workers of it run. */
static int
wait_generation(uint64_t gen, int timeout_ms, int with_load)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (h_stats_generation() == gen &&
		    h_stats_running(NULL, 0, (uint32_t)gen) == WORKERS) {
			remember_pids((uint32_t)gen);
			return 1;
		}
		if (h_now_ms() >= end) {
			diag("generation %llu, %d running of generation %llu",
			    (unsigned long long)h_stats_generation(),
			    h_stats_running(NULL, 0, (uint32_t)gen), (unsigned long long)gen);
			return 0;
		}
		if (with_load)
			load_step();
		else
			h_nap(10);
	}
}

/* Poll until only generation gen's workers are RUNNING: older ones have
 * taken their SIGQUIT and closed their listeners, so a new client can only
 * be accepted by gen. */
static int
wait_only(uint64_t gen, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	while (h_stats_running(NULL, 0, 0) != h_stats_running(NULL, 0, (uint32_t)gen) ||
	    h_stats_running(NULL, 0, (uint32_t)gen) != WORKERS) {
		if (h_now_ms() >= end)
			return 0;
		h_nap(10);
	}
	return 1;
}

/* Slots not free whose generation is not gen. -1 when unreadable. */
static int
slots_not_of(uint32_t gen)
{
	struct stats_seg seg;
	char err[256];
	int n = 0;

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return -1;
	for (uint32_t i = 0; i < seg.nslots; i++) {
		const struct stats_slot *s = &seg.slots[i];

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != STATS_SLOT_FREE &&
		    __atomic_load_n(&s->generation, __ATOMIC_RELAXED) != gen)
			n++;
	}
	stats_detach(&seg);
	return n;
}

/* The config of this test: one or two listeners, the given servers. */
static void
write_conf(const char *path, int two_listeners, const int *servers, int nservers,
    const char *drain)
{
	char list[512] = "", l2[128] = "";
	size_t off = 0;

	for (int i = 0; i < nservers; i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s\"127.0.0.1:%d\"",
		    i ? ", " : "", servers[i]);
	if (two_listeners)
		snprintf(l2, sizeof(l2), ", { listen = \"127.0.0.1:%d\"; upstream = \"app\"; }", lq);
	h_write_file(path,
	    "workers = %d;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"info\"; };\n"
	    "timeouts = { idle = \"60s\"; drain = \"%s\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( %s ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; }%s );\n",
	    WORKERS, h_pidfile(), h_statsfile(), drain, list, lp, l2);
}

static int
echod_accepted(int port)
{
	char name[64];

	snprintf(name, sizeof(name), "echod-%d.log", port);
	return h_count_lines(h_path(name), "accepted");
}

/* Send n echo connections to port; 1 when all were good. */
static int
echo_ok(int port, int n)
{
	size_t sizes[16];

	for (int i = 0; i < n && i < 16; i++)
		sizes[i] = 1000 + 313 * (size_t)i;
	return h_echo_many(port, n, sizes, 0, 20000) == n;
}

/* Hold an idle relayed connection open: connect and make one round trip so
 * it is surely accepted and relayed. Returns the fd or -1. */
static int
hold_one(int port)
{
	int fd = h_connect(port, 5000);

	if (fd != -1 && h_round_trip(fd, 10000) == -1) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* 1 when fd sees EOF (or a reset) within timeout_ms. */
static int
wait_eof(int fd, int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	char buf[64];
	ssize_t n;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1)
		return 0;
	do
		n = recv(fd, buf, sizeof(buf), 0);
	while (n > 0 || (n == -1 && errno == EINTR));
	return n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Poll until no worker of another generation than gen is left, sampling
 * the master's children meanwhile into *max_children. */
static int
wait_old_gone(uint32_t gen, pid_t master, int timeout_ms, int *max_children)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		int kids = h_children(master, NULL, 0);

		if (max_children != NULL && kids > *max_children)
			*max_children = kids;
		if (slots_not_of(gen) == 0 && kids == WORKERS)
			return 1;
		if (h_now_ms() >= end) {
			diag("%d slots of older generations, %d children", slots_not_of(gen), kids);
			return 0;
		}
		h_nap(20);
	}
}

int
main(void)
{
	int pa, pb, pc, status, fds0, fds1, c0, kids, max_kids, held[64], nheld;
	int ab[2], bc[2], abc[3], a_only[1], c_only[1];
	/* h_path's buffers rotate: keep our own copy. */
	char *conf = strdup(h_path("sluiced.conf"));
	pid_t master;
	uint64_t gen, t0, storm_ms, gen_before;
	char needle[64];

	pa = h_free_port();
	h_echod_start(pa);
	pb = h_free_port();
	h_echod_start(pb);
	pc = h_free_port();
	h_echod_start(pc);
	lp = h_free_port();
	do
		lq = h_free_port();
	while (lq == lp || lq == pa || lq == pb || lq == pc);
	ab[0] = abc[0] = a_only[0] = pa;
	ab[1] = bc[0] = abc[1] = pb;
	bc[1] = abc[2] = c_only[0] = pc;

	write_conf(conf, 0, a_only, 1, "60s");
	/* Draining workers that keep their clients are what this test is
	 * about: the new generations greet with a hand-off version nobody
	 * speaks, so no session moves (tests/i_handoff covers the moves). */
	setenv("SLUICE_TEST_HANDOFF_VERSION", "0", 1);
	master = h_sluiced_start(conf, lp, WORKERS);
	unsetenv("SLUICE_TEST_HANDOFF_VERSION");
	remember_pids(1);
	/* The master's descriptors once it runs: reloads must leave it so. */
	fds0 = h_fd_count(master);
	ok(fds0 > 0, "master has %d descriptors open at start", fds0);
	is(h_children(master, NULL, 0), WORKERS, "the master has %d children", WORKERS);

	/* ---- 20 reloads under load ---- */
	long_start(lp);
	load_for(300);
	gen = 1;
	c0 = 0;
	for (int k = 1; k <= RELOADS; k++) {
		const char *what;

		switch (k) {
		case 1:
			write_conf(conf, 0, ab, 2, "60s");
			what = "upstream app becomes A, B";
			break;
		case 2:
			write_conf(conf, 1, ab, 2, "60s");
			what = "listener 2 added";
			break;
		case 7:
			write_conf(conf, 1, bc, 2, "60s");
			what = "upstream app becomes B, C (A removed)";
			c0 = echod_accepted(pc);
			break;
		case 9:
			/* Nobody accepts for a removed listener once its old
			 * workers close it: its short traffic stops first. */
			l2_on = 0;
			for (int i = 0; i < 2000 && short_batches() > 0; i++)
				drive(2);
			write_conf(conf, 0, bc, 2, "60s");
			what = "listener 2 removed";
			break;
		case 13:
			write_conf(conf, 0, abc, 3, "60s");
			what = "upstream app becomes A, B, C";
			break;
		case 17:
			write_conf(conf, 0, c_only, 1, "60s");
			what = "upstream app becomes C";
			break;
		default:
			what = "unchanged config";
			break;
		}
		if (k % 3 == 0)
			long_start(lp);
		ok(kill(master, SIGHUP) == 0, "reload %d: SIGHUP (%s)", k, what);
		gen++;
		if (!ok(wait_generation(gen, 20000, 1), "reload %d: generation %llu runs %d workers",
		        k, (unsigned long long)gen, WORKERS))
			break;
		if (k == 2) {
			uint64_t end = h_now_ms() + 10000;
			int r;

			while ((r = h_port_refuses(lq)) != 0 && h_now_ms() < end)
				load_step();
			ok(r == 0, "listener 2 accepts after the reload that added it");
			l2_on = 1;
			long_start(lq);
		}
		if (k == 8)
			long_start(lq); /* in flight when listener 2 goes */
		if (k == 9) {
			uint64_t end = h_now_ms() + 20000;
			int r;

			/* Its old workers keep only the connections they hold. */
			while ((r = h_port_refuses(lq)) != 1 && h_now_ms() < end)
				load_step();
			ok(r == 1, "listener 2 refuses after the reload that removed it");
		}
		/* The coalescing interval keeps reloads apart anyway; the load
		 * goes on meanwhile. */
		load_for(RELOAD_INTERVAL_MS + 50);
	}
	{
		uint64_t end = h_now_ms() + 90000;

		while (nbatches > 0 && h_now_ms() < end)
			drive(5);
	}
	is(nbatches, 0, "every transfer ended");
	diag("%lu short connections, %lu long transfers of %u KB", started_short, started_long,
	    LONG_SIZE / 1024);
	ok(started_short >= 300, "a steady stream of short connections ran (%lu)", started_short);
	ok(started_long >= (unsigned long)LONG_N * 6, "long transfers ran across the reloads (%lu)",
	    started_long);
	is(good_short, started_short,
	    "every short connection was good: none refused, reset, corrupted or lost");
	is(good_long, started_long,
	    "every long transfer was good: every byte came back intact, then EOF");
	is(h_stat("refused"), 0, "sluiced refused no connection");
	is(h_stat("connect_failures"), 0, "no upstream connect failed");
	ok(echod_accepted(pc) > c0, "the server added by a reload got connections (%d -> %d)", c0,
	    echod_accepted(pc));

	ok(wait_old_gone((uint32_t)gen, master, 30000, NULL),
	    "every older generation left the table once its transfers were done");
	{
		int alive = 0;

		for (int i = 0; i < nseen; i++) {
			pid_t p = seen_pids[i];
			uint64_t end = h_now_ms() + 5000;

			if (h_stats_running(NULL, 0, (uint32_t)gen) > 0) {
				pid_t cur[64];
				int n = h_stats_running(cur, 64, (uint32_t)gen), mine = 0;

				for (int j = 0; j < n; j++)
					mine |= cur[j] == p;
				if (mine)
					continue;
			}
			while (h_alive(p) && h_now_ms() < end)
				h_nap(10);
			alive += h_alive(p);
		}
		is(alive, 0, "all %d workers of older generations exited", nseen - WORKERS);
	}
	fds1 = h_fd_count(master);
	is(fds1, fds0, "the master has as many descriptors as at start (%d)", fds0);
	is(h_children(master, NULL, 0), WORKERS, "the master has %d children again", WORKERS);

	/* ---- an old generation that cannot drain stops at the drain timeout ---- */
	write_conf(conf, 0, c_only, 1, "1s");
	kill(master, SIGHUP);
	gen++;
	ok(wait_generation(gen, 20000, 0), "a reload sets timeouts.drain = 1s (generation %llu)",
	    (unsigned long long)gen);
	held[0] = wait_only(gen, 10000) ? hold_one(lp) : -1;
	ok(held[0] != -1, "an idle client is held by generation %llu", (unsigned long long)gen);
	write_conf(conf, 0, c_only, 1, "60s");
	h_nap(RELOAD_INTERVAL_MS);
	t0 = h_now_ms();
	kill(master, SIGHUP);
	gen++;
	ok(wait_generation(gen, 20000, 0), "the next reload starts generation %llu",
	    (unsigned long long)gen);
	ok(held[0] != -1 && wait_eof(held[0], 15000),
	    "the idle client is closed by the old generation's drain timeout");
	ok(wait_old_gone((uint32_t)gen, master, 15000, NULL),
	    "the old generation exited at its drain timeout (%llu ms)",
	    (unsigned long long)(h_now_ms() - t0));
	ok(h_count_lines(h_path("sluiced.log"), "drain timeout: closing 1 remaining") >= 1,
	    "log: drain timeout closed the remaining connection");
	if (held[0] != -1)
		close(held[0]);

	/* ---- a shorter drain in the next config does not cut the old one ---- */
	held[0] = wait_only(gen, 10000) ? hold_one(lp) : -1;
	ok(held[0] != -1, "an idle client is held by generation %llu (drain 60s)",
	    (unsigned long long)gen);
	write_conf(conf, 0, c_only, 1, "1s");
	h_nap(RELOAD_INTERVAL_MS);
	t0 = h_now_ms();
	kill(master, SIGHUP);
	gen++;
	ok(wait_generation(gen, 20000, 0), "a reload to timeouts.drain = 1s: generation %llu",
	    (unsigned long long)gen);
	/* The master would kill the old generation at the new drain timeout
	 * plus its 5 s grace if it used the new one: wait past that. */
	while (h_now_ms() < t0 + 1000 + 5000 + 1500)
		h_nap(50);
	ok(held[0] != -1 && h_round_trip(held[0], 10000) == 0,
	    "after %llu ms the client of the old generation is still served",
	    (unsigned long long)(h_now_ms() - t0));
	ok(slots_not_of((uint32_t)gen) >= 1, "the old generation's worker still drains");
	if (held[0] != -1)
		close(held[0]);
	ok(wait_old_gone((uint32_t)gen, master, 15000, NULL),
	    "it exits once its client has gone");
	write_conf(conf, 0, c_only, 1, "60s");

	/* ---- storm 1: 100 SIGHUPs within a second coalesce ---- */
	h_nap(RELOAD_INTERVAL_MS);
	gen_before = h_stats_generation();
	max_kids = 0;
	t0 = h_now_ms();
	for (int i = 0; i < 100; i++) {
		kill(master, SIGHUP);
		kids = h_children(master, NULL, 0);
		if (kids > max_kids)
			max_kids = kids;
		h_nap(9);
	}
	storm_ms = h_now_ms() - t0;
	/* Settle: a last coalesced reload may still be pending. */
	{
		uint64_t g = 0, end = h_now_ms() + 10000;

		while (h_now_ms() < end) {
			for (int i = 0; i < 40; i++) {
				kids = h_children(master, NULL, 0);
				if (kids > max_kids)
					max_kids = kids;
				h_nap(20);
			}
			if (h_stats_generation() == g)
				break;
			g = h_stats_generation();
		}
	}
	gen = h_stats_generation();
	ok(wait_generation(gen, 20000, 0) && wait_old_gone((uint32_t)gen, master, 20000, &max_kids),
	    "the storm settled on generation %llu with %d workers", (unsigned long long)gen,
	    WORKERS);
	diag("100 SIGHUPs in %llu ms made %llu reloads; at most %d processes under the master",
	    (unsigned long long)storm_ms, (unsigned long long)(gen - gen_before), max_kids);
	ok(gen - gen_before >= 1, "the storm reloaded at least once");
	ok(gen - gen_before <= 2 + storm_ms / RELOAD_INTERVAL_MS,
	    "the storm coalesced: %llu reloads for 100 SIGHUPs in %llu ms",
	    (unsigned long long)(gen - gen_before), (unsigned long long)storm_ms);
	ok(max_kids <= (MAX_DRAINING + 1) * WORKERS, "processes stayed bounded (%d <= %d)", max_kids,
	    (MAX_DRAINING + 1) * WORKERS);
	ok(h_count_lines(h_path("sluiced.log"), "coalescing") >= 1, "log: SIGHUPs were coalesced");

	/* ---- storm 2: with MAX_DRAINING generations draining, reloads wait ---- */
	nheld = 0;
	for (int i = 0; i < MAX_DRAINING; i++) {
		int fd = wait_only(gen, 10000) ? hold_one(lp) : -1;

		if (fd != -1)
			held[nheld++] = fd;
		h_nap(RELOAD_INTERVAL_MS + 50);
		kill(master, SIGHUP);
		gen++;
		if (!wait_generation(gen, 20000, 0))
			break;
	}
	is(nheld, MAX_DRAINING, "%d idle clients held, one by each of %d generations", nheld,
	    MAX_DRAINING);
	is(h_stats_generation(), gen, "generation %llu runs, %d older ones hold a client",
	    (unsigned long long)gen, MAX_DRAINING);
	/* The last edit must win: servers C only -> A only. */
	write_conf(conf, 0, a_only, 1, "60s");
	max_kids = 0;
	h_nap(RELOAD_INTERVAL_MS + 50);
	gen_before = h_stats_generation();
	for (int i = 0; i < 100; i++) {
		kill(master, SIGHUP);
		kids = h_children(master, NULL, 0);
		if (kids > max_kids)
			max_kids = kids;
		h_nap(9);
	}
	for (int i = 0; i < 50; i++) {
		kids = h_children(master, NULL, 0);
		if (kids > max_kids)
			max_kids = kids;
		h_nap(20);
	}
	is(h_stats_generation(), gen_before, "no reload while %d older generations drain",
	    MAX_DRAINING);
	ok(max_kids <= (MAX_DRAINING + 1) * WORKERS, "processes stayed bounded (%d <= %d)", max_kids,
	    (MAX_DRAINING + 1) * WORKERS);
	ok(h_count_lines(h_path("sluiced.log"), "reload deferred") >= 1,
	    "log: the reload was deferred");
	ok(echo_ok(lp, 4), "new connections work while the reload waits");
	c0 = echod_accepted(pa);
	for (int i = 0; i < nheld; i++)
		close(held[i]);
	gen++;
	ok(wait_generation(gen, 20000, 0), "once the clients left, the waiting reload ran "
	                                   "(generation %llu)", (unsigned long long)gen);
	ok(wait_old_gone((uint32_t)gen, master, 20000, NULL), "and only generation %llu is left",
	    (unsigned long long)gen);
	snprintf(needle, sizeof(needle), "generation %llu", (unsigned long long)gen);
	ok(h_count_lines(h_path("sluiced.log"), needle) >= 1, "log: reloaded, %s", needle);
	ok(echo_ok(lp, 6), "new connections work after the storm");
	ok(echod_accepted(pa) >= c0 + 6, "the last edit won: server A gets the new connections");
	is(h_fd_count(master), fds0, "the master still has %d descriptors", fds0);

	ok(kill(master, SIGTERM) == 0, "SIGTERM sent");
	ok(h_wait_exit(master, 15000, &status) == 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "master exited 0");
	free(conf);
	done_testing();
	return tap_exit();
}
