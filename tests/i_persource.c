/* SPDX-License-Identifier: BSD-2-Clause */
/* i_persource.c — integration test of max_connections_per_source counted
 * over all workers (common/srclimit.c) through the real daemon: with four
 * workers, each able to hold only a few connections, one source gets
 * exactly the limit however its connections spread, others are unaffected,
 * closing frees; a worker killed with SIGKILL gives its counts back; a
 * reload that hands sessions over keeps the counts exact; an open/close
 * storm from several processes ends with every count back at zero; a full
 * table falls back to per-worker limits and says so. Loopback sources
 * 127.0.0.x only; sluiced and echod are killed by pid. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"

#define WAIT 10000
#define LIMIT 5
#define PER_WORKER 3 /* limits.max_connections_per_worker: LIMIT needs two workers */
#define WORKERS 4
#define MAXFD 64

static int port;

/* 1 when a byte sent on fd comes back, 0 when the connection is closed. */
static int
echoes(int fd)
{
	char c = 0;

	if (fd == -1 || send(fd, "e", 1, MSG_NOSIGNAL) != 1)
		return 0;
	return h_read_n(fd, &c, 1, WAIT) == 1 && c == 'e';
}

/* Open n connections from src at once, then keep those that relay in
 * held[] (the others, refused, are closed). All are judged together within
 * one deadline: one that neither echoes nor closes by then (sluice holding
 * it unaccepted, say) is closed and counts as not relayed. Returns how many
 * relay. */
static int
open_many(const char *src, int n, int *held)
{
	struct pollfd pfd[MAXFD];
	int state[MAXFD], kept = 0, open = n; /* state: 0 open, 1 relays, -1 refused */
	uint64_t end = h_now_ms() + WAIT;

	for (int i = 0; i < n; i++) {
		if ((pfd[i].fd = h_connect_from(src, port, WAIT)) == -1)
			bail("connect from %s: %s", src, strerror(errno));
		pfd[i].events = POLLIN;
		state[i] = 0;
		if (send(pfd[i].fd, "e", 1, MSG_NOSIGNAL) != 1) {
			state[i] = -1;
			open--;
		}
	}
	while (open > 0 && h_now_ms() < end) {
		for (int i = 0; i < n; i++)
			pfd[i].events = state[i] == 0 ? POLLIN : 0;
		if (poll(pfd, (nfds_t)n, 50) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			char c = 0;

			if (state[i] != 0 || pfd[i].revents == 0)
				continue;
			state[i] = recv(pfd[i].fd, &c, 1, MSG_DONTWAIT) == 1 && c == 'e' ? 1 : -1;
			open--;
		}
	}
	if (open > 0)
		diag("%s: %d of %d connections neither relayed nor were refused", src, open, n);
	for (int i = 0; i < n; i++) {
		if (state[i] == 1)
			held[kept++] = pfd[i].fd;
		else
			close(pfd[i].fd);
	}
	return kept;
}

static void
close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] != -1)
			close(fds[i]);
}

static int
wait_active(uint64_t want)
{
	uint64_t deadline = h_now_ms() + WAIT, v = 0;

	while (h_now_ms() < deadline) {
		if ((v = h_stat("active")) == want)
			return 1;
		h_nap(20);
	}
	diag("active is %llu, want %llu", (unsigned long long)v, (unsigned long long)want);
	return 0;
}

/* A header field of the segment (the per-source table's figures). */
static uint64_t
hdr_field(size_t off)
{
	struct stats_seg seg;
	char err[256];
	uint64_t v;

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return UINT64_MAX;
	v = __atomic_load_n((uint64_t *)(void *)((char *)seg.hdr + off), __ATOMIC_RELAXED);
	stats_detach(&seg);
	return v;
}
#define HDR(f) hdr_field(offsetof(struct stats_header, f))

/* Running workers that hold connections now: how many, and the pid of one. */
static int
holders(pid_t *one)
{
	struct stats_seg seg;
	char err[256];
	int n = 0;

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return -1;
	for (unsigned i = 0; i < seg.nslots; i++) {
		const struct stats_slot *s = &seg.slots[i];

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == STATS_SLOT_RUNNING &&
		    __atomic_load_n(&s->c.active, __ATOMIC_RELAXED) > 0) {
			n++;
			if (one != NULL)
				*one = s->pid;
		}
	}
	stats_detach(&seg);
	return n;
}

/* Keep the connections of fds that still relay (compacted), close the rest. */
static int
keep_live(int *fds, int n)
{
	int k = 0;

	for (int i = 0; i < n; i++) {
		if (echoes(fds[i]))
			fds[k++] = fds[i];
		else
			close(fds[i]);
	}
	return k;
}

/* The source may open exactly `room` more: open room + 2 at once. */
static int
exactly_room(const char *src, int room, int *held)
{
	int got = open_many(src, room + 2, held);

	if (got != room)
		diag("%s: %d of %d relayed, want %d", src, got, room + 2, room);
	return got == room;
}

/* Open/close from src as fast as possible for ms milliseconds, in a child. */
static pid_t
storm(const char *src, int ms)
{
	pid_t pid = fork();

	if (pid == 0) {
		uint64_t end = h_now_ms() + (uint64_t)ms;
		int fds[LIMIT + 3];

		while (h_now_ms() < end) {
			int n = 0;

			for (int i = 0; i < LIMIT + 3; i++)
				if ((fds[n] = h_connect_from(src, port, 2000)) != -1)
					n++;
			/* Some get refused, some relay: read or see the close. */
			for (int i = 0; i < n; i++)
				if (i % 2 == 0)
					(void)echoes(fds[i]);
			for (int i = 0; i < n; i++)
				close(fds[i]);
		}
		_exit(0);
	}
	return pid;
}

/* SIGHUP and wait until generation gen runs `workers` and every older one
 * has left (its sessions handed over). */
static int
reload_to(pid_t pid, uint32_t gen, int workers)
{
	uint64_t end = h_now_ms() + 30000;
	pid_t pids[16];

	kill(pid, SIGHUP);
	while (h_now_ms() < end) {
		if (h_stats_generation() == gen && h_stats_running(pids, 16, gen) == workers &&
		    h_gen_slots(gen - 1, 0) == 0)
			return 1;
		h_nap(20);
	}
	diag("generation %llu, %d slots of %u left", (unsigned long long)h_stats_generation(),
	    h_gen_slots(gen - 1, 0), gen - 1);
	return 0;
}

static void
write_conf(const char *conf, int echo, int limit, const char *extra)
{
	h_write_file(conf,
	    "workers = %d;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "%s"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\";\n"
	    "                max_connections_per_source = %d; } );\n",
	    WORKERS, h_pidfile(), h_statsfile(), extra, echo, port, limit);
}

int
main(void)
{
	int echo = h_free_port(), held[MAXFD], other[MAXFD], more[MAXFD], n, k;
	const char *conf = h_path("sluice.conf");
	pid_t pid, victim = 0, storms[4];
	uint64_t refused0, rec0;
	char extra[256];

	plan(41);
	port = h_free_port();
	h_echod_start(echo);
	snprintf(extra, sizeof(extra),
	    "limits = { max_connections_per_worker = %d; source_table = 1024; };\n", PER_WORKER);
	write_conf(conf, echo, LIMIT, extra);
	pid = h_sluiced_start(conf, port, WORKERS);
	ok(HDR(source_slots) == 1024, "the table has limits.source_table slots (%llu)",
	    (unsigned long long)HDR(source_slots));

	/* Exactly LIMIT over all workers, from 30 at once. */
	n = open_many("127.0.0.2", 30, held);
	is(n, LIMIT, "one source opening 30 at once gets exactly the limit over all workers");
	ok(holders(NULL) >= 2, "  spread over %d workers (each holds at most %d)", holders(NULL),
	    PER_WORKER);
	ok(h_wait_stat("refused_per_source_limit", 30 - LIMIT, WAIT),
	    "  the other %d are refused and counted as per_source_limit", 30 - LIMIT);
	is(h_stat("refused_per_source_limit"), 30 - LIMIT, "  exactly those");
	k = open_many("127.0.0.3", 2, other);
	is(k, 2, "another source is not affected");
	close_all(other, k);

	/* Closing frees, wherever the connection was. */
	close(held[0]);
	close(held[1]);
	ok(wait_active(LIMIT - 2), "two of the source's connections close");
	ok(exactly_room("127.0.0.2", 2, more), "  then exactly two more relay");
	close_all(more, 2);
	close_all(held + 2, LIMIT - 2);
	ok(wait_active(0), "all closed");
	ok(exactly_room("127.0.0.2", LIMIT, held), "  and the source has its whole limit again");
	close_all(held, LIMIT);
	ok(wait_active(0), "  which closes");

	/* A worker killed: its counts come back. */
	n = open_many("127.0.0.4", LIMIT, held);
	ok(n == LIMIT && holders(&victim) >= 2, "%d connections of 127.0.0.4 on %d workers", n,
	    holders(NULL));
	rec0 = HDR(source_reconciled);
	kill(victim, SIGKILL);
	{
		uint64_t end = h_now_ms() + WAIT;

		while (h_alive(victim) && h_now_ms() < end)
			h_nap(10);
	}
	k = keep_live(held, n);
	ok(k < LIMIT && k > 0, "  SIGKILL to one worker: %d of them cut, %d left", LIMIT - k, k);
	{
		/* The master takes the dead worker's counts back once it reaps
		 * it: until then the source may get fewer, never more. */
		uint64_t end = h_now_ms() + WAIT;
		int got = 0, over = 0;

		while (k + got < LIMIT && h_now_ms() < end) {
			int fd = h_connect_from("127.0.0.4", port, WAIT);

			if (echoes(fd))
				held[k + got++] = fd;
			else if (fd != -1)
				close(fd);
			h_nap(20);
		}
		k += got;
		over = open_many("127.0.0.4", 3, more);
		close_all(more, over);
		ok(k == LIMIT && over == 0,
		    "  the cut ones' places come back, and no more (%d, %d over)", k, over);
	}
	{
		uint64_t end = h_now_ms() + WAIT;

		while (HDR(source_reconciled) < rec0 + 1 && h_now_ms() < end)
			h_nap(20);
	}
	ok(HDR(source_reconciled) >= rec0 + 1, "  counted as reconciled (%llu)",
	    (unsigned long long)HDR(source_reconciled));
	close_all(held, k);
	ok(wait_active(0), "  all closed");
	ok(exactly_room("127.0.0.4", LIMIT, held), "  then the source has its whole limit");
	close_all(held, LIMIT);
	ok(wait_active(0), "  which closes");
	{
		pid_t pids[16];
		uint64_t end = h_now_ms() + WAIT;

		while (h_stats_running(pids, 16, 0) != WORKERS && h_now_ms() < end)
			h_nap(20);
	}

	/* A reload with hand-off: the count follows the session. */
	n = open_many("127.0.0.5", LIMIT, held);
	refused0 = h_stat("refused_per_source_limit");
	kill(pid, SIGHUP);
	{
		uint64_t end = h_now_ms() + 30000;
		pid_t pids[16];

		while (h_now_ms() < end &&
		       !(h_stats_generation() == 2 && h_stats_running(pids, 16, 2) == WORKERS &&
		           h_gen_slots(1, 0) == 0))
			h_nap(20);
		ok(h_stats_generation() == 2 && h_gen_slots(1, 0) == 0,
		    "reload: generation 2 runs, generation 1 left (sessions handed over: %llu)",
		    (unsigned long long)h_stat("handed_in"));
	}
	ok(h_stat("handed_in") >= 1, "  sessions were handed over");
	is(keep_live(held, n), LIMIT, "  the source's %d connections still relay", LIMIT);
	is(open_many("127.0.0.5", 3, more), 0, "  and it still gets no more");
	ok(h_wait_stat("refused_per_source_limit", refused0 + 3, WAIT),
	    "  (refused as per_source_limit)");
	close_all(held, LIMIT);
	ok(wait_active(0), "  closing them all");
	ok(exactly_room("127.0.0.5", LIMIT, held), "  lets exactly the limit in again");
	close_all(held, LIMIT);

	/* A storm of opens and closes from four processes. */
	storms[0] = storm("127.0.0.6", 2000);
	storms[1] = storm("127.0.0.6", 2000);
	storms[2] = storm("127.0.0.7", 2000);
	storms[3] = storm("127.0.0.8", 2000);
	for (int i = 0; i < 4; i++)
		waitpid(storms[i], NULL, 0);
	ok(wait_active(0), "a storm of opens and closes from four processes ends");
	ok(exactly_room("127.0.0.6", LIMIT, held) && (close_all(held, LIMIT), 1) &&
	        exactly_room("127.0.0.7", LIMIT, more) && (close_all(more, LIMIT), 1),
	    "  with every count back at zero");

	/* A reload that lifts the limit, and one that sets it again: the
	 * sessions handed over are counted as they are, never taken from
	 * another session's count. */
	write_conf(conf, echo, 0, extra);
	ok(reload_to(pid, 3, WORKERS), "reload to a config without the limit");
	n = open_many("127.0.0.9", LIMIT + 2, held);
	is(n, LIMIT + 2, "  a source opens %d", LIMIT + 2);
	write_conf(conf, echo, LIMIT, extra);
	ok(reload_to(pid, 4, WORKERS) && keep_live(held, n) == LIMIT + 2,
	    "  reload with the limit again: all %d still relay, handed over", LIMIT + 2);
	close_all(held, 3);
	ok(wait_active(LIMIT - 1) && exactly_room("127.0.0.9", 1, more),
	    "  with %d left after closing 3, exactly one more relays", LIMIT - 1);
	close_all(held + 3, LIMIT - 1);
	close(more[0]);
	ok(wait_active(0) && exactly_room("127.0.0.9", LIMIT, held) && (close_all(held, LIMIT), 1),
	    "  all closed: the whole limit again");

	/* Sources rotating through more addresses than the table has
	 * slots, one connection at a time: each slot goes back when its
	 * source leaves, so none is ever "not counted here", and the limit
	 * stays exact over the workers afterwards. */
	{
		char src[32];
		uint64_t full0 = HDR(source_table_full);
		int relayed = 0, i;

		for (i = 0; i < 1300; i++) {
			int fd;

			snprintf(src, sizeof(src), "127.0.%d.%d", 10 + i / 200, 1 + i % 200);
			fd = h_connect_from(src, port, WAIT);
			relayed += echoes(fd);
			if (fd != -1)
				close(fd);
		}
		ok(relayed == i && HDR(source_table_full) == full0,
		    "%d of %d distinct sources, one after another, relay through 1024 slots: "
		    "none found the table full (%llu)",
		    relayed, i, (unsigned long long)(HDR(source_table_full) - full0));
		ok(wait_active(0) && exactly_room("127.0.0.77", LIMIT, held) &&
		        (close_all(held, LIMIT), 1),
		    "  then a new source still gets exactly its limit of %d over the workers",
		    LIMIT);
		{
			uint64_t end = h_now_ms() + WAIT;

			while (HDR(source_slots_used) != 0 && h_now_ms() < end)
				h_nap(20);
		}
		ok(HDR(source_slots_used) == 0 && HDR(source_table_full) == full0,
		    "  and once all closed, no slot holds a count (%llu)",
		    (unsigned long long)HDR(source_slots_used));
	}
	ok(wait_active(0), "  every connection closed");
	h_kill(pid);

	/* Sessions lost in a hand-off (every second record damaged, a test
	 * hook): their counts, left in the table by the sender, come back
	 * through the master's audit. */
	port = h_free_port();
	h_write_file(conf,
	    "workers = 2;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\";\n"
	    "                max_connections_per_source = %d; } );\n",
	    h_pidfile(), h_statsfile(), echo, port, LIMIT);
	setenv("SLUICE_TEST_HANDOFF_CORRUPT", "2", 1);
	pid = h_sluiced_start(conf, port, 2);
	unsetenv("SLUICE_TEST_HANDOFF_CORRUPT");
	n = open_many("127.0.1.1", LIMIT, held);
	rec0 = HDR(source_reconciled);
	kill(pid, SIGHUP);
	{
		uint64_t end = h_now_ms() + 30000;

		while (h_now_ms() < end && !(h_stats_generation() == 2 && h_gen_slots(1, 0) == 0))
			h_nap(20);
	}
	k = keep_live(held, n);
	ok(n == LIMIT && k < LIMIT, "a reload that loses sessions in the hand-off: %d of %d left",
	    k, n);
	ok(h_stat("closed_handoff_lost") >= (uint64_t)(LIMIT - k),
	    "  counted as handoff_lost (%llu)", (unsigned long long)h_stat("closed_handoff_lost"));
	{
		uint64_t end = h_now_ms() + 30000;

		while (HDR(source_reconciled) < rec0 + (uint64_t)(LIMIT - k) && h_now_ms() < end)
			h_nap(50);
	}
	ok(HDR(source_reconciled) >= rec0 + (uint64_t)(LIMIT - k),
	    "  the master's audit takes their counts back (%llu)",
	    (unsigned long long)(HDR(source_reconciled) - rec0));
	ok(exactly_room("127.0.1.1", LIMIT - k, held + k), "  then exactly their places come back");
	close_all(held, LIMIT);
	ok(wait_active(0), "  all closed");
	h_kill(pid);
	return tap_exit();
}
