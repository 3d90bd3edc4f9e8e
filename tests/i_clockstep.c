/* SPDX-License-Identifier: BSD-2-Clause */
/* i_clockstep.c — a step of the wall clock changes no deadline and no rate.
 * The daemon runs with tests/fakeclock.so preloaded, which shifts its
 * CLOCK_REALTIME (and gettimeofday, time) by an offset this test changes at
 * run time; the machine's clock is never touched. A step forward must not
 * close idle or header-waiting sessions, nor stretch the duration of a
 * health check under way, nor make the master kill a worker still within
 * its drain timeout; after a step back idle timeouts must still fire and a
 * rate-limited listener must still refill.
 * Functional assertions only: waits are for conditions (the worker has seen
 * the new time), bounded by deadlines. */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"

static char offset_file[PATH_MAX];

static void
set_offset(int64_t seconds)
{
	int fd = open(offset_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd == -1 || pwrite(fd, &seconds, sizeof(seconds), 0) != sizeof(seconds))
		bail("cannot write %s", offset_file);
	close(fd);
}

/* Wall-clock milliseconds as the worker last published them (its heartbeat,
 * once a second, from the shifted clock), or 0. */
static uint64_t
worker_wall_ms(pid_t worker)
{
	struct stats_seg seg;
	char err[256];
	uint64_t ms = 0;

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return 0;
	for (unsigned i = 0; i < seg.nslots; i++)
		if (seg.slots[i].pid == worker)
			ms = __atomic_load_n(&seg.slots[i].heartbeat_ms, __ATOMIC_RELAXED);
	stats_detach(&seg);
	return ms;
}

static uint64_t
real_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The longest last-check duration of any server, and the checks done, from
 * the health records. */
static uint32_t
check_duration_max(uint64_t *checks)
{
	struct stats_seg seg;
	char err[256];
	uint32_t max = 0;

	*checks = 0;
	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return UINT32_MAX;
	for (unsigned i = 0; i < seg.nservers; i++) {
		uint32_t d = __atomic_load_n(&seg.health[i].last_duration_ms, __ATOMIC_RELAXED);

		*checks += __atomic_load_n(&seg.health[i].checks, __ATOMIC_RELAXED);
		if (d > max)
			max = d;
	}
	stats_detach(&seg);
	return max;
}

/* Wait until the worker has published two heartbeats from the shifted clock
 * (so its loop has run at least a second of ticks since the step). */
static int
worker_sees(pid_t worker, int64_t offset)
{
	uint64_t end = h_now_ms() + 15000, first = 0;

	while (h_now_ms() < end) {
		uint64_t w = worker_wall_ms(worker);
		int64_t skew = (int64_t)w - (int64_t)real_wall_ms() - offset * 1000;

		if (w != 0 && skew > -5000 && skew < 5000) {
			if (first == 0)
				first = w;
			else if (w > first)
				return 1;
		}
		h_nap(50);
	}
	return 0;
}

int
main(void)
{
	int eport = h_free_port(), pport = h_free_port(), backend = h_free_port();
	int qport = h_free_port(), quiet = h_free_port(), quiet_lfd;
	uint64_t checks_at_step, checks;
	uint32_t longest;
	int i1, h1, i2, admitted = 0, refused = 0;
	char hdr[] = "PROXY TCP4 10.1.1.1 10.1.1.2 1234 80\r\n";
	pid_t master, worker;
	uint64_t end;

	plan(14);
	snprintf(offset_file, sizeof(offset_file), "%s", h_path("clock-offset"));
	set_offset(0);
	h_echod_start(backend);
	/* A server that accepts health checks and never answers them: every
	 * check lasts its whole timeout, so one is under way at the step. */
	quiet_lfd = h_listen(quiet);
	setenv("FAKECLOCK_FILE", offset_file, 1);
	h_preload("fakeclock.so");
	h_write_file(h_path("clock.conf"),
	    "workers = 1;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "timeouts = { idle = \"10s\"; proxy_header = \"15s\"; drain = \"120s\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	    "              { name = \"quiet\"; servers = ( \"127.0.0.1:%d\" );\n"
	    "                health = { interval = \"1s\"; timeout = \"1s\";\n"
	    "                           send = \"PING\\r\\n\"; expect = \"PONG\"; }; } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; rate_limit = 3; },\n"
	    "              { listen = \"127.0.0.1:%d\"; upstream = \"app\";\n"
	    "                accept_proxy = \"v1\"; trusted = ( \"127.0.0.1\" ); },\n"
	    "              { listen = \"127.0.0.1:%d\"; upstream = \"quiet\"; } );\n",
	    h_pidfile(), h_statsfile(), backend, quiet, eport, pport, qport);
	/* Draining workers that keep their clients are what this test is
	 * about: the new generations greet with a hand-off version nobody
	 * speaks, so no session moves (tests/i_handoff covers the moves). */
	setenv("SLUICE_TEST_HANDOFF_VERSION", "0", 1);
	master = h_sluiced_start(h_path("clock.conf"), eport, 1);
	unsetenv("SLUICE_TEST_HANDOFF_VERSION");
	h_preload(NULL);
	if (h_stats_running(&worker, 1, 0) != 1)
		bail("no running worker");

	/* Forward: an hour ahead. */
	i1 = h_connect(eport, 5000);
	h1 = h_connect(pport, 5000);
	ok(i1 != -1 && h_round_trip(i1, 5000) == 0 && h1 != -1,
	    "an idle relayed client and a client owing its PROXY header are connected");
	check_duration_max(&checks_at_step);
	set_offset(3600);
	ok(worker_sees(worker, 3600), "the worker's wall clock stepped an hour forward");
	/* Watch the checks that were under way at the step end, and a few
	 * more (each result stays published for a whole interval). */
	end = h_now_ms() + 15000;
	longest = 0;
	do {
		uint32_t d = check_duration_max(&checks);

		if (d > longest)
			longest = d;
		h_nap(50);
	} while (checks < checks_at_step + 3 && h_now_ms() < end);
	ok(checks >= checks_at_step + 3 && longest < 30000,
	    "health check durations do not take in the step (longest %u ms)", longest);
	ok(h_round_trip(i1, 5000) == 0, "the idle client is still relayed after the step");
	ok(send(h1, hdr, sizeof(hdr) - 1, MSG_NOSIGNAL) > 0 && h_round_trip(h1, 5000) == 0,
	    "the client owing its header may still send it");
	is(h_stat("closed_idle_timeout") + h_stat("refused_proxy_rejected"), 0,
	    "nothing was closed by the step");

	/* Back: an hour behind the real time, two behind the last step. */
	i2 = h_connect(eport, 5000);
	h_round_trip(i2, 5000);
	set_offset(-3600);
	ok(worker_sees(worker, -3600), "the worker's wall clock stepped two hours back");
	/* Spend the listener's tokens, then it must refill in real time. */
	for (int k = 0; k < 8 && !refused; k++) {
		int fd = h_connect(eport, 5000);

		refused += fd != -1 && h_round_trip(fd, 3000) != 0;
		if (fd != -1)
			close(fd);
	}
	end = h_now_ms() + 10000;
	while (refused && !admitted && h_now_ms() < end) {
		int fd = h_connect(eport, 5000);

		admitted = fd != -1 && h_round_trip(fd, 3000) == 0;
		if (fd != -1)
			close(fd);
		if (!admitted)
			h_nap(200);
	}
	ok(refused && admitted, "the rate limit still refills after the step back");
	ok(h_wait_closed(i2, 30000), "an idle client is still closed by the idle timeout");
	ok(h_stat("closed_idle_timeout") >= 1, "and counted as an idle timeout");
	close(i1);
	close(h1);

	/* The master's deadlines: a worker draining after a reload, with a
	 * client, must not be killed when the clock jumps past its drain
	 * timeout. */
	{
		int d1 = h_connect(eport, 5000);
		pid_t fresh_worker = 0;

		ok(d1 != -1 && h_round_trip(d1, 5000) == 0, "a client of the first generation");
		kill(master, SIGHUP);
		end = h_now_ms() + 15000;
		while (h_now_ms() < end && h_stats_running(&fresh_worker, 1, 2) != 1)
			h_nap(50);
		ok(fresh_worker != 0, "a reload started a second generation; the first drains");
		set_offset(3600);
		ok(worker_sees(fresh_worker, 3600) && worker_sees(worker, 3600),
		    "the workers' wall clock stepped two hours forward");
		ok(h_alive(worker) && h_round_trip(d1, 5000) == 0,
		    "the draining worker was not killed: its client is still relayed");
		if (d1 != -1)
			close(d1);
	}
	close(i2);
	close(quiet_lfd);
	kill(master, SIGTERM);
	h_wait_exit(master, 10000, NULL);
	return tap_exit();
}
