/* SPDX-License-Identifier: BSD-2-Clause */
/* i_reload.c — integration test of SIGHUP: a valid reload starts a new
 * generation while the old one finishes its transfers, a broken config is
 * refused and changes nothing, and listeners come and go with the config.
 * Runs sluiced and echod as children of this test on loopback ports; it never
 * signals a process it did not start. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
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

#define NA 16               /* transfers opened before the first reload */
#define SIZE_A (2u << 20)
#define NB 8                /* transfers kept in flight across later reloads */
#define SIZE_B (2u << 20)

/* Transfers opened under generation 2 and kept moving, slowly, while the
 * test reloads around them; only pause_ms drives them. */
static struct h_xfer *bg;
static int bg_left = NB;

/* The poll interval of every wait below. The background transfers get a
 * fifth of it so they outlive several reloads, yet never sit idle long
 * enough for the idle timeout to close them. */
static void
pause_ms(int ms)
{
	uint64_t t0 = h_now_ms(), spent;

	if (bg != NULL && bg_left > 0)
		bg_left = h_xfer_run(bg, ms / 5 > 0 ? ms / 5 : 1);
	spent = h_now_ms() - t0;
	if (spent < (uint64_t)ms)
		h_nap(ms - (int)spent);
}

/* 1 when some line of the sluiced log holds every non-NULL needle. */
static int
log_has(const char *n1, const char *n2, const char *n3)
{
	char *text = h_read_file(h_path("sluiced.log")), *line, *save = NULL;
	int found = 0;

	if (text == NULL)
		return 0;
	for (line = strtok_r(text, "\n", &save); line != NULL && !found;
	     line = strtok_r(NULL, "\n", &save))
		found = strstr(line, n1) != NULL && (n2 == NULL || strstr(line, n2) != NULL) &&
		    (n3 == NULL || strstr(line, n3) != NULL);
	free(text);
	return found;
}

/* Lines of the file at path that hold needle. */
static int
count_lines(const char *path, const char *needle)
{
	char *text = h_read_file(path), *line, *save = NULL;
	int n = 0;

	if (text == NULL)
		return 0;
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
		n += strstr(line, needle) != NULL;
	free(text);
	return n;
}

static int
wait_log(const char *n1, const char *n2, const char *n3, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (log_has(n1, n2, n3))
			return 1;
		if (h_now_ms() >= end)
			return 0;
		pause_ms(25);
	}
}

/* Poll until the header says generation gen and `workers` of that
 * generation run; their pids go to pids. */
static int
wait_generation(uint64_t gen, int workers, pid_t *pids, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (h_stats_generation() == gen &&
		    h_stats_running(pids, 64, (uint32_t)gen) == workers)
			return 1;
		if (h_now_ms() >= end) {
			diag("generation %llu, %d running of it",
			    (unsigned long long)h_stats_generation(),
			    h_stats_running(pids, 64, (uint32_t)gen));
			return 0;
		}
		pause_ms(25);
	}
}

/* Poll port_refuses until it says want (1 refused, 0 accepts). */
static int
wait_port_state(int port, int want, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (h_port_refuses(port) == want)
			return 1;
		if (h_now_ms() >= end)
			return 0;
		pause_ms(25);
	}
}

/* Read until EOF or reset within timeout_ms, keeping the background
 * transfers moving meanwhile. Returns 0 on EOF/reset, -1 on timeout. */
static int
wait_eof(int fd, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	char buf[512];

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 0) == 1) {
			ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

			if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
				return 0;
			continue;
		}
		if (h_now_ms() >= end)
			return -1;
		pause_ms(25);
	}
}

static int
echo_ok(int port, int n)
{
	size_t sizes[16];

	for (int i = 0; i < n && i < 16; i++)
		sizes[i] = 10000 + 7777 * (size_t)i;
	return h_echo_many(port, n, sizes, 0, 20000) == n;
}

/*
 * A config of our own so the line numbers of broken settings are known.
 * Line 5 holds `line5` and line 6 holds `line6`; listeners as given.
 */
static void
write_conf(const char *path, const char *line5, const char *line6, int sa, int sb,
    const int *lports, int nl)
{
	char listeners[512];
	size_t off = 0;

	for (int i = 0; i < nl; i++)
		off += (size_t)snprintf(listeners + off, sizeof(listeners) - off,
		    "%s{ listen = \"127.0.0.1:%d\"; upstream = \"app\"; }",
		    i ? ", " : "", lports[i]);
	h_write_file(path,
	    "workers = 2;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "%s\n"
	    "%s\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( %s );\n",
	    h_pidfile(), h_statsfile(), line5, line6, sa, sb, listeners);
}

int
main(void)
{
	static const char timeouts2[] = "timeouts = { idle = \"4s\"; drain = \"60s\"; };";
	size_t sizes_a[NA], sizes_b[NB];
	pid_t gen1[64], gen2[64], now[64];
	char *conf, needle[600], echod_b_log[64];
	int pa, pb, lp, lq, ports[2], lports[2], status, fd;
	pid_t echo_a, master;
	struct h_xfer *xa;
	uint64_t total_a = (uint64_t)NA * SIZE_A, total_b = (uint64_t)NB * SIZE_B, t0, end, active;
	int unfinished, gen1_gone_early = 0, overlap, r, b_before;

	pa = h_free_port();
	echo_a = h_echod_start(pa);
	pb = h_free_port();
	h_echod_start(pb);
	lp = h_free_port();
	ports[0] = pa;
	ports[1] = pb;

	conf = strdup(h_conf("sluiced.conf", 2, lp, ports, 1,
	    "timeouts = { idle = \"60s\"; drain = \"60s\"; };"));
	master = h_sluiced_start(conf, lp, 2);
	is(h_stats_generation(), 1, "generation 1 at start");
	is(h_stats_running(gen1, 64, 1), 2, "two workers of generation 1 run");

	/* Paced transfers, all accepted by generation 1, part sent. */
	for (int i = 0; i < NA; i++)
		sizes_a[i] = SIZE_A;
	xa = h_xfer_start(lp, NA, sizes_a, 4096);
	end = h_now_ms() + 20000;
	while ((h_xfer_sent(xa) < total_a / 8 || h_stat("active") < NA) &&
	    h_xfer_sent(xa) < total_a && h_now_ms() < end)
		h_xfer_run(xa, 10);
	ok(h_xfer_sent(xa) > 0 && h_xfer_sent(xa) < total_a,
	    "transfers in flight before the reload (%llu of %llu bytes sent)",
	    (unsigned long long)h_xfer_sent(xa), (unsigned long long)total_a);
	active = h_stat("active");
	ok(active != UINT64_MAX && active >= NA, "generation 1 holds every transfer (%llu active)",
	    (unsigned long long)active);

	/* Valid reload: another idle timeout and a second server. echod logs
	 * a line per connection, the harness's readiness probe included. */
	snprintf(echod_b_log, sizeof(echod_b_log), "echod-%d.log", pb);
	b_before = count_lines(h_path(echod_b_log), "accepted");
	ok(strcmp(h_conf("sluiced.conf", 2, lp, ports, 2, timeouts2), conf) == 0,
	    "config rewritten in place");
	ok(kill(master, SIGHUP) == 0, "SIGHUP sent");
	/* The transfers are not driven here, so generation 1 surely still
	 * holds them when generation 2 is up. */
	ok(wait_generation(2, 2, gen2, 15000), "generation 2 runs two workers");
	ok(wait_log("reloaded", "generation 2", NULL, 5000), "log says reloaded: generation 2");
	/* Or has handed them to generation 2 already: idle between two paced
	 * chunks, a transfer moves at once. */
	ok((h_gen_slots(1, 0) >= 1 && (h_alive(gen1[0]) || h_alive(gen1[1]))) ||
	       h_stat("handed_out") > 0,
	    "generation 1 still holds its unfinished transfers, or handed them over");
	overlap = 0;
	for (int i = 0; i < 2; i++)
		overlap |= gen2[i] == gen1[0] || gen2[i] == gen1[1];
	ok(!overlap, "generation 2 workers are new processes");
	ok(echo_ok(lp, 8), "new connections work after the reload");
	end = h_now_ms() + 5000;
	while (count_lines(h_path(echod_b_log), "accepted") <= b_before && h_now_ms() < end)
		pause_ms(25);
	ok(count_lines(h_path(echod_b_log), "accepted") > b_before,
	    "the server added by the reload gets connections");

	/* Generation 2 carries these through every later reload. */
	for (int i = 0; i < NB; i++)
		sizes_b[i] = SIZE_B;
	bg = h_xfer_start(lp, NB, sizes_b, 1024);

	/* While any client of generation 1 is still sending, its worker must
	 * still be there, unless it handed its sessions to generation 2. */
	end = h_now_ms() + 40000;
	do {
		unfinished = h_xfer_run(xa, 20);
		if (h_xfer_sent(xa) < total_a && h_gen_slots(1, 0) == 0)
			gen1_gone_early = 1;
		pause_ms(2);
	} while (unfinished > 0 && h_now_ms() < end);
	is(unfinished, 0, "every generation 1 transfer ended");
	ok(!gen1_gone_early || h_stat("handed_out") >= NA,
	    "generation 1 stayed while its clients were sending, or handed them all over "
	    "(handed_out %llu)", (unsigned long long)h_stat("handed_out"));
	end = h_now_ms() + 20000;
	while (h_gen_slots(1, 0) != 0 && h_now_ms() < end)
		pause_ms(25);
	is(h_gen_slots(1, 0), 0, "generation 1 left the table after its transfers ended");
	is(h_stats_running(now, 64, 1), 0, "no RUNNING worker of generation 1");
	end = h_now_ms() + 5000;
	while ((h_alive(gen1[0]) || h_alive(gen1[1])) && h_now_ms() < end)
		pause_ms(25);
	ok(!h_alive(gen1[0]) && !h_alive(gen1[1]), "generation 1 processes exited");
	is(h_xfer_finish(xa, 30000), NA, "all transfers opened before the reload were good");

	/* The new idle timeout applies to generation 2. */
	fd = h_connect(lp, 5000);
	ok(fd != -1 && h_round_trip(fd, 5000) == 0, "an idle client made one round trip");
	t0 = h_now_ms();
	r = fd == -1 ? -1 : wait_eof(fd, 20000);
	ok(r == 0, "idle client closed by the reloaded idle timeout");
	ok(r == 0 && h_now_ms() - t0 >= 3000, "not before the 4 s idle timeout (%llu ms)",
	    (unsigned long long)(h_now_ms() - t0));
	if (fd != -1)
		close(fd);

	/* Broken configs: refused, logged with file and line, nothing changes. */
	diag("background transfers: %llu of %llu bytes sent before the broken reloads",
	    (unsigned long long)h_xfer_sent(bg), (unsigned long long)total_b);
	write_conf(conf, "oops = = 1;", timeouts2, pa, pb, &lp, 1);
	ok(kill(master, SIGHUP) == 0, "SIGHUP with a syntax error");
	snprintf(needle, sizeof(needle), "%s:5:", conf);
	ok(wait_log("reload failed", needle, NULL, 10000), "log: reload failed at %s", needle);
	is(h_stats_generation(), 2, "generation stays 2");
	is(h_stats_running(now, 64, 2), 2, "generation 2 still runs");
	ok(echo_ok(lp, 4), "new connections still work");

	write_conf(conf, "# an unknown setting on line 6",
	    "timeouts = { idle = \"4s\"; drain = \"60s\"; frobnicate = 1; };", pa, pb, &lp, 1);
	ok(kill(master, SIGHUP) == 0, "SIGHUP with an unknown setting");
	snprintf(needle, sizeof(needle), "%s:6:", conf);
	ok(wait_log("reload failed", needle, "frobnicate", 10000),
	    "log: reload failed at %s naming frobnicate", needle);
	is(h_stats_generation(), 2, "generation stays 2");
	ok(h_stats_running(now, 64, 2) == 2 &&
	    ((now[0] == gen2[0] && now[1] == gen2[1]) || (now[0] == gen2[1] && now[1] == gen2[0])),
	    "the same generation 2 workers run");
	ok(echo_ok(lp, 4), "new connections still work");

	/* A second listener comes with a reload and goes with the next. */
	do
		lq = h_free_port();
	while (lq == lp || lq == pa || lq == pb);
	lports[0] = lp;
	lports[1] = lq;
	ok(h_port_refuses(lq) == 1, "port %d refuses before the reload", lq);
	write_conf(conf, "# two listeners", timeouts2, pa, pb, lports, 2);
	ok(kill(master, SIGHUP) == 0, "SIGHUP adding a listener");
	ok(echo_ok(lp, 8), "the kept listener serves during the reload");
	ok(wait_generation(3, 2, now, 15000), "generation 3 runs two workers");
	ok(wait_port_state(lq, 0, 10000), "the added listener accepts");
	ok(echo_ok(lq, 4), "the added listener relays");

	write_conf(conf, "# one listener", timeouts2, pa, pb, &lp, 1);
	ok(kill(master, SIGHUP) == 0, "SIGHUP removing the listener");
	ok(wait_generation(4, 2, now, 15000), "generation 4 runs two workers");
	ok(wait_port_state(lq, 1, 15000), "the removed listener refuses");
	ok(echo_ok(lp, 4), "the kept listener still relays");

	diag("background transfers: %llu of %llu bytes sent before the final drive",
	    (unsigned long long)h_xfer_sent(bg), (unsigned long long)total_b);
	is(h_xfer_finish(bg, 30000), NB, "transfers opened under generation 2 were all good");
	bg = NULL;

	/* The server added by the first reload is in use: with the first
	 * echo backend gone every connection still gets through. */
	h_kill(echo_a);
	ok(echo_ok(lp, 8), "relaying still works through the added server alone");

	ok(kill(master, SIGTERM) == 0, "SIGTERM sent");
	ok(h_wait_exit(master, 10000, &status) == 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "master exited 0");
	free(conf);
	done_testing();
	return tap_exit();
}
