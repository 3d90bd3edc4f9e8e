/* SPDX-License-Identifier: BSD-2-Clause */
/* i_handoff.c — integration test of session hand-off on reload: idle,
 * request/response and bulk connections survive reloads with every byte
 * checked while the old generation exits long before its drain timeout;
 * half-closed sessions and sessions whose server left the config move too;
 * and the failure paths: a new generation that speaks another version
 * (sessions stay and drain), damaged records (refused and counted, nothing
 * else harmed), a new generation too small to take them (given back), and a
 * new worker killed in the middle of the hand-off. Runs sluiced, echod and
 * a backend played by the test on loopback ports; signals only its own. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-const-variable"
#include "tls_hellos.h"
#pragma GCC diagnostic pop

/* Idle connections held across the reloads, request/response connections
 * used throughout, and reloads: make check's sizes; the proof
 * (2,000, 20 and 20) runs with I_HANDOFF_FULL=1. */
#define NIDLE_MAX 2000
#define NRR_MAX 20
static int NIDLE = 300, NRR = 8, NRELOADS = 5;
#define DRAIN "\"300s\"" /* far beyond every wait: an exit proves the hand-off */

static int idle[NIDLE_MAX], rr[NRR_MAX];
static struct h_xfer *bulk;
static int bulk_left;

/* Keep the request/response connections and the bulk transfers moving:
 * called between polls of every wait. Returns how many round trips failed. */
static int
traffic(void)
{
	int bad = 0;

	for (int i = 0; i < NRR; i++)
		if (rr[i] != -1 && h_round_trip(rr[i], 5000) != 0)
			bad++;
	if (bulk != NULL && bulk_left > 0)
		bulk_left = h_xfer_run(bulk, 5);
	return bad;
}

/* Reload sluiced (pid) and wait until generation gen runs `workers`
 * workers. Returns 1, or 0 on timeout. */
static int
reload_to(pid_t pid, uint64_t gen, int workers, int *rr_bad)
{
	uint64_t end = h_now_ms() + 30000;
	pid_t pids[64];

	kill(pid, SIGHUP);
	while (h_now_ms() < end) {
		*rr_bad += traffic();
		if (h_stats_generation() == gen && h_stats_running(pids, 64, (uint32_t)gen) == workers)
			return 1;
		h_nap(10);
	}
	diag("reload to generation %llu: the segment says generation %llu, %d running",
	    (unsigned long long)gen, (unsigned long long)h_stats_generation(),
	    h_stats_running(pids, 64, (uint32_t)gen));
	return 0;
}

/* Wait until no slot of generation gen is left (its workers exited).
 * Returns 1, or 0 when one is still there after timeout_ms. */
static int
wait_gen_gone(uint32_t gen, int timeout_ms, int *rr_bad)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (h_gen_slots(gen, 0) == 0)
			return 1;
		if (h_now_ms() >= end) {
			diag("generation %u still has %d slots", gen, h_gen_slots(gen, 0));
			return 0;
		}
		*rr_bad += traffic();
		h_nap(10);
	}
}

/* Round trips on every idle connection: how many failed. */
static int
idle_bad(int *fds, int n)
{
	int bad = 0;

	for (int i = 0; i < n; i++)
		if (fds[i] == -1 || h_round_trip(fds[i], 5000) != 0)
			bad++;
	return bad;
}

static void
open_many(int *fds, int n, int port)
{
	for (int i = 0; i < n; i++)
		if ((fds[i] = h_connect(port, 5000)) == -1)
			bail("connect %d: %s", i, strerror(errno));
}

static void
close_many(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] != -1) {
			close(fds[i]);
			fds[i] = -1;
		}
}

/* accepted + handed_in = closed + handed_out + active, on the totals. */
static int
balanced(void)
{
	struct stats_counters t;

	if (h_stats_total(&t) == -1)
		return 0;
	return t.accepted + t.handed_in == t.closed + t.handed_out + t.active;
}

static void
wait_balanced(int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	while (!balanced() && h_now_ms() < end)
		h_nap(20);
}

/* h_conf's config with the connection log on (h_conf fixes log itself). */
static const char *
conf_log(const char *name, int workers, int port, const int *servers, const char *extra)
{
	const char *path = h_conf(name, workers, port, servers, 1, extra);
	char *text = h_read_file(path), *at;

	if (text == NULL || (at = strstr(text, "level = \"debug\"; };")) == NULL)
		bail("conf_log: unexpected h_conf output");
	*at = '\0';
	h_write_file(path, "%slevel = \"debug\"; connections = true; };%s", text,
	    at + strlen("level = \"debug\"; };"));
	free(text);
	return path;
}

/* sluiced of the next part logs to a fresh file. */
static pid_t
start(const char *conf, int port, int workers)
{
	static int part;
	char keep[32];

	/* The last part's log stays beside, for a failure's post-mortem. */
	snprintf(keep, sizeof(keep), "sluiced-%d.log", part++);
	rename(h_path("sluiced.log"), h_path(keep));
	h_write_file(h_path("sluiced.log"), "%s", "");
	return h_sluiced_start(conf, port, workers);
}

static void
stop(pid_t pid)
{
	kill(pid, SIGTERM);
	if (h_wait_exit(pid, 10000, NULL) != 0)
		h_kill(pid);
}

/* --- 1. idle, request/response and bulk across NRELOADS reloads ----------- */

static void
test_reloads(int echo_port)
{
	int port = h_free_port(), rr_bad = 0, gone = 1, left = 1;
	const char *conf = conf_log("main.conf", 2, port, &echo_port,
	    "timeouts = { drain = " DRAIN "; idle = \"120s\"; };\n");
	size_t sizes[2] = { 24u << 20, 24u << 20 };
	pid_t pid = start(conf, port, 2);
	int fds0, fds1, good;
	uint64_t accepted;

	open_many(idle, NIDLE, port);
	open_many(rr, NRR, port);
	ok(idle_bad(idle, NIDLE) == 0 && traffic() == 0, "%d idle and %d rr connections work",
	    NIDLE, NRR);
	bulk = h_xfer_start(port, 2, sizes, 64 << 10);
	bulk_left = 2;
	fds0 = h_fd_count(pid);
	for (int r = 0; r < NRELOADS; r++) {
		uint32_t gen = (uint32_t)h_stats_generation();

		if (!reload_to(pid, gen + 1, 2, &rr_bad)) {
			ok(0, "reload %d: generation %u runs", r + 1, gen + 1);
			break;
		}
		gone &= wait_gen_gone(gen, 30000, &rr_bad);
		left &= idle_bad(idle, NIDLE) == 0;
	}
	ok(gone, "after each of %d reloads the old generation exited (drain timeout %s)",
	    NRELOADS, DRAIN);
	ok(left, "every idle connection answered after every reload");
	ok(rr_bad == 0, "no round trip failed during the reloads (%d failed)", rr_bad);
	good = h_xfer_finish(bulk, 60000);
	bulk = NULL;
	ok(good == 2, "both bulk transfers came back byte for byte (%d good)", good);
	ok(h_stat("handed_in") == h_stat("handed_out") && h_stat("handed_out") >= (uint64_t)NIDLE * NRELOADS,
	    "sessions moved: handed_out %llu = handed_in %llu (at least %d)",
	    (unsigned long long)h_stat("handed_out"), (unsigned long long)h_stat("handed_in"),
	    NIDLE * NRELOADS);
	ok(h_stat("closed_lost") == 0 && h_stat("closed_handoff_lost") == 0 &&
	       h_stat("handoff_rejected") == 0 && h_stat("closed_shutdown") == 0,
	    "nothing lost, refused or cut (lost %llu, rejected %llu, shutdown %llu)",
	    (unsigned long long)h_stat("closed_lost"),
	    (unsigned long long)h_stat("handoff_rejected"),
	    (unsigned long long)h_stat("closed_shutdown"));
	accepted = h_stat("accepted");
	ok(accepted == (uint64_t)NIDLE + NRR + 2,
	    "accepted counts each connection once (%llu)", (unsigned long long)accepted);
	fds1 = h_fd_count(pid);
	ok(fds0 == fds1, "the master's descriptors are unchanged (%d, then %d)", fds0, fds1);

	close_many(idle, NIDLE);
	close_many(rr, NRR);
	h_wait_stat("closed", accepted, 20000);
	ok(h_stat("active") == 0 && balanced(), "every session closed once and the counts balance");
	{
		/* The connection log never blocks a worker: a burst of closes
		 * it cannot take is dropped and counted (log_dropped). */
		uint64_t lines = (uint64_t)h_count_lines(h_path("sluiced.log"),
		    "info: connection client="), dropped = h_stat("log_dropped");

		ok(lines + dropped == accepted && lines > 0,
		    "one connection log line per connection (%llu lines + %llu dropped, %llu "
		    "connections)", (unsigned long long)lines, (unsigned long long)dropped,
		    (unsigned long long)accepted);
	}
	stop(pid);
}

/* --- 2. half-closed sessions and a server that left the config ----------- */

static void
test_halfclose_and_gone_server(int echo_port)
{
	int port = h_free_port(), bport = h_free_port(), lfd = h_listen(bport), rr_bad = 0;
	const char *conf = conf_log("half.conf", 1, port, &bport,
	    "timeouts = { drain = " DRAIN "; idle = \"120s\"; };\n");
	pid_t pid = start(conf, port, 1);
	int c = h_connect(port, 5000), b = h_accept(lfd, 5000);
	char buf[64];
	ssize_t n;

	if (c == -1 || b == -1)
		bail("half-close: no connection");
	/* The client says all it has to say and half-closes; the server has
	 * read it and its EOF, and answers later. */
	ok(write(c, "question", 8) == 8 && shutdown(c, SHUT_WR) == 0, "client sent and half-closed");
	n = h_read_n(b, buf, 9, 5000);
	ok(n == 8 && memcmp(buf, "question", 8) == 0, "server got the question, then EOF");

	/* The new config no longer has this server: the session must move
	 * and relay all the same. */
	conf_log("half.conf", 1, port, &echo_port,
	    "timeouts = { drain = " DRAIN "; idle = \"120s\"; };\n");
	ok(reload_to(pid, 2, 1, &rr_bad), "reloaded to a config without the server");
	ok(wait_gen_gone(1, 30000, &rr_bad), "the old generation exited");
	ok(h_stat("handed_in") == 1, "the half-closed session moved (handed_in %llu)",
	    (unsigned long long)h_stat("handed_in"));
	ok(write(b, "answer", 6) == 6 && shutdown(b, SHUT_WR) == 0, "server answers late and ends");
	n = h_read_n(c, buf, sizeof(buf), 5000);
	ok(n == 6 && memcmp(buf, "answer", 6) == 0, "client got the late answer");
	ok(h_wait_closed(c, 5000), "then EOF");
	close(c);
	close(b);
	close(lfd);
	h_wait_stat("closed", 1, 10000);
	{
		char needle[96];

		snprintf(needle, sizeof(needle), "server=127.0.0.1:%d", bport);
		ok(h_count_lines(h_path("sluiced.log"), needle) == 1 &&
		       h_count_lines(h_path("sluiced.log"), "bytes_in=8 bytes_out=6") == 1,
		    "its one log line names the server that left and counts every byte");
	}
	ok(balanced(), "the counts balance");
	stop(pid);
}

/* --- 3. another version: nothing moves, the old generation drains -------- */

static void
test_version_mismatch(int echo_port)
{
	int port = h_free_port(), rr_bad = 0, fds[20], reloads = 1, n1;
	const char *conf = h_conf("ver.conf", 2, port, &echo_port, 1,
	    "timeouts = { drain = " DRAIN "; };\n");
	pid_t pid;

	/* Every worker greets with version 99, and the senders speak ours. */
	setenv("SLUICE_TEST_HANDOFF_VERSION", "99", 1);
	pid = start(conf, port, 2);
	unsetenv("SLUICE_TEST_HANDOFF_VERSION");
	open_many(fds, 20, port);
	ok(reload_to(pid, 2, 2, &rr_bad), "reloaded");
	ok(h_wait_file_contains(h_path("sluiced.log"), "speaks version 99", 10000),
	    "the old workers say why their sessions stay");
	/* Those of its workers that hold a session (one of the two may hold
	 * none, as accepts spread, and exit at once). */
	n1 = h_gen_slots(1, 1);
	ok(n1 >= 1 && h_stat("handed_out") == 0, "nothing moved; generation 1 drains (%d workers)",
	    n1);
	/* Each reload gives generation 1's workers channels again (refused
	 * at the greeting): their slots are taken again, never piled up. */
	for (uint32_t g = 3; g <= 11; g++)
		reloads += reload_to(pid, g, 2, &rr_bad);
	ok(reloads == 10 && h_gen_slots(1, 1) == n1,
	    "after %d reloads generation 1 still drains, its workers alive (%d of %d)", reloads,
	    h_gen_slots(1, 1), n1);
	ok(idle_bad(fds, 20) == 0, "its sessions still relay");
	close_many(fds, 20);
	ok(wait_gen_gone(1, 20000, &rr_bad), "it exits once they end");
	ok(balanced(), "the counts balance");
	stop(pid);
}

/* --- 4. damaged records are refused; the rest move ------------------------ */

static void
test_corrupt(int echo_port)
{
	int port = h_free_port(), rr_bad = 0, fds[60], dead = 0, alive = 0;
	const char *conf = h_conf("bad.conf", 1, port, &echo_port, 1,
	    "timeouts = { drain = " DRAIN "; };\n");
	pid_t pid;
	uint64_t rej;

	setenv("SLUICE_TEST_HANDOFF_CORRUPT", "3", 1);
	pid = start(conf, port, 1);
	unsetenv("SLUICE_TEST_HANDOFF_CORRUPT");
	open_many(fds, 60, port);
	ok(idle_bad(fds, 60) == 0, "60 connections work");
	ok(reload_to(pid, 2, 1, &rr_bad), "reloaded");
	ok(wait_gen_gone(1, 30000, &rr_bad), "the old generation exited");
	rej = h_stat("handoff_rejected");
	for (int i = 0; i < 60; i++) {
		if (h_round_trip(fds[i], 5000) == 0)
			alive++;
		else
			dead++;
	}
	ok(rej == 20 && dead == 20 && alive == 40,
	    "every third record was refused (rejected %llu): those 20 connections closed, "
	    "the other %d relay",
	    (unsigned long long)rej, alive);
	ok(h_stat("closed_handoff_lost") == 20 && h_stat("closed_lost") == 0,
	    "the refused ones count as lost in the hand-off (%llu)",
	    (unsigned long long)h_stat("closed_handoff_lost"));
	ok(h_alive(pid) && h_gen_slots(2, 0) == 1,
	    "the new worker took no harm");
	close_many(fds, 60);
	wait_balanced(10000);
	ok(balanced(), "the counts balance");
	stop(pid);
}

/* --- 5. a new generation too small: sessions come back and stay ----------- */

static void
test_full(int echo_port)
{
	int port = h_free_port(), rr_bad = 0, fds[50];
	const char *conf = h_conf("full.conf", 1, port, &echo_port, 1,
	    "timeouts = { drain = " DRAIN "; };\n");
	pid_t pid = start(conf, port, 1);
	uint64_t end;

	open_many(fds, 50, port);
	h_conf("full.conf", 1, port, &echo_port, 1,
	    "timeouts = { drain = " DRAIN "; };\n"
	    "limits = { max_connections_per_worker = 10; };\n");
	ok(reload_to(pid, 2, 1, &rr_bad), "reloaded to a worker that holds 10");
	end = h_now_ms() + 20000;
	while (h_stat("handed_in") < 10 && h_now_ms() < end)
		h_nap(20);
	ok(h_stat("handed_in") == 10, "the new worker took 10 (handed_in %llu)",
	    (unsigned long long)h_stat("handed_in"));
	ok(idle_bad(fds, 50) == 0, "all 50 still relay, 40 in the old generation");
	ok(h_gen_slots(1, 0) == 1, "the old worker keeps what came back and drains");
	ok(h_stat("closed_lost") == 0 && h_stat("closed_handoff_lost") == 0, "nothing lost");
	close_many(fds, 50);
	ok(wait_gen_gone(1, 20000, &rr_bad), "it exits once they end");
	wait_balanced(10000);
	ok(balanced(), "the counts balance");
	stop(pid);
}

/* Sessions the old workers have sent so far, from their debug log lines
 * ("hand-off: walked N sessions, sent M; ..."). */
static unsigned long
log_sent(void)
{
	char *text = h_read_file(h_path("sluiced.log")), *p;
	unsigned long sum = 0, n;

	for (p = text; p != NULL && (p = strstr(p, "hand-off: walked ")) != NULL; p++)
		if (sscanf(p, "hand-off: walked %*u sessions, sent %lu", &n) == 1)
			sum += n;
	free(text);
	return sum;
}

/* --- 6. a new worker killed during the hand-off --------------------------- */

static void
test_kill_receiver(int echo_port)
{
	int port = h_free_port(), rr_bad = 0, fds[NIDLE_MAX], alive = 0;
	const char *conf = h_conf("kill.conf", 2, port, &echo_port, 1,
	    "timeouts = { drain = " DRAIN "; };\n");
	pid_t pid, pids[8];
	uint64_t lost;

	/* The new workers leave their channels unread for 3 s: sessions sent
	 * meanwhile wait in the kernel, in flight, when one of them dies. */
	setenv("SLUICE_TEST_HANDOFF_STALL_MS", "3000", 1);
	pid = start(conf, port, 2);
	unsetenv("SLUICE_TEST_HANDOFF_STALL_MS");
	open_many(fds, NIDLE, port);
	ok(reload_to(pid, 2, 2, &rr_bad), "reloaded");
	ok(h_wait_file_contains(h_path("sluiced.log"), "hand-off: 4 channels", 10000),
	    "the channels are made");
	/* Once the old workers have filled both windows (the debug log says
	 * what each walk sent), a receiver dies with them in flight. */
	{
		uint64_t end = h_now_ms() + 20000;
		unsigned long sent = 0;

		while ((sent = log_sent()) < 200 && h_now_ms() < end)
			h_nap(20);
		ok(sent >= 200, "the old workers sent %lu sessions, unread", sent);
	}
	if (h_stats_running(pids, 8, 2) >= 1)
		kill(pids[0], SIGKILL);
	ok(wait_gen_gone(1, 30000, &rr_bad), "the old generation still finishes");
	ok(h_wait_file_contains(h_path("sluiced.log"), "in flight lost with a receiver", 10000),
	    "the old worker counted the sessions in flight to the dead one");
	for (int i = 0; i < NIDLE; i++)
		alive += h_round_trip(fds[i], 5000) == 0;
	wait_balanced(10000);
	ok(balanced(), "the counts balance after the kill");
	/* In flight to it (the sender counts them) or taken by it (the master
	 * counts them when it folds the dead worker). */
	lost = h_stat("closed_lost") + h_stat("closed_handoff_lost");
	ok(h_stat("closed_handoff_lost") > 0 && (uint64_t)alive + lost == (uint64_t)NIDLE,
	    "every connection relays or is counted lost (%d relay, %llu lost in flight, %llu "
	    "with the worker)", alive, (unsigned long long)h_stat("closed_handoff_lost"),
	    (unsigned long long)h_stat("closed_lost"));
	{
		uint64_t end = h_now_ms() + 20000;

		while (h_stats_running(pids, 8, 2) < 2 && h_now_ms() < end)
			h_nap(20);
	}
	ok(h_stats_running(pids, 8, 2) == 2, "the killed worker was replaced");
	{
		int fresh = h_connect(port, 5000);

		ok(fresh != -1 && h_round_trip(fresh, 5000) == 0, "new clients are served");
		if (fresh != -1)
			close(fresh);
	}
	close_many(fds, NIDLE);
	stop(pid);
}

/* --- 7. a receiver out of descriptors ------------------------------------- */

static void
test_fd_short(int echo_port)
{
	int port = h_free_port(), rr_bad = 0, fds[40];
	const char *conf = h_conf("fds.conf", 1, port, &echo_port, 1,
	    "timeouts = { drain = " DRAIN "; };\n"
	    "user = \"root\";\n");
	pid_t pid, w[4];
	struct rlimit rl, low;
	uint64_t end;

	/* Workers of our own uid, so that we may lower a limit of theirs. */
	setenv("SLUICE_TEST_HANDOFF_STALL_MS", "2000", 1);
	pid = start(conf, port, 1);
	unsetenv("SLUICE_TEST_HANDOFF_STALL_MS");
	open_many(fds, 40, port);
	ok(reload_to(pid, 2, 1, &rr_bad) && h_stats_running(w, 4, 2) == 1, "reloaded");
	/* While the new worker leaves its channel unread, leave it room for
	 * one session at most. */
	if (prlimit(w[0], RLIMIT_NOFILE, NULL, &rl) != 0)
		bail("prlimit: %s", strerror(errno));
	low = rl;
	low.rlim_cur = (rlim_t)h_fd_count(w[0]) + 3;
	ok(prlimit(w[0], RLIMIT_NOFILE, &low, NULL) == 0, "the new worker's descriptors cut to %llu",
	    (unsigned long long)low.rlim_cur);
	end = h_now_ms() + 20000;
	while (h_stat("handed_in") < 1 && h_now_ms() < end)
		h_nap(20);
	ok(h_stat("handed_in") >= 1 && h_stat("handed_in") < 40 && h_gen_slots(1, 0) == 1,
	    "it took what it had room for (%llu); the rest wait",
	    (unsigned long long)h_stat("handed_in"));
	ok(prlimit(w[0], RLIMIT_NOFILE, &rl, NULL) == 0, "its limit restored");
	ok(wait_gen_gone(1, 30000, &rr_bad), "then it took the rest and the old generation exited");
	ok(h_stat("handoff_rejected") == 0 && h_stat("closed_handoff_lost") == 0,
	    "no record was cut for want of a descriptor (rejected %llu, lost %llu)",
	    (unsigned long long)h_stat("handoff_rejected"),
	    (unsigned long long)h_stat("closed_handoff_lost"));
	ok(idle_bad(fds, 40) == 0, "all 40 connections relay");
	close_many(fds, 40);
	stop(pid);
}

/* --- 8. a session an sni rule routed, then its group leaves the config ---- */

static void
sni_conf(const char *path, int port, int pa, int pb, int with_b)
{
	char b[128] = "";

	if (with_b)
		snprintf(b, sizeof(b), ",\n  { name = \"b\"; servers = ( \"127.0.0.1:%d\" ); }", pb);
	h_write_file(path,
	    "workers = 1;\npid_file = \"%s\";\nstats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; connections = true; };\n"
	    "timeouts = { drain = " DRAIN "; };\n"
	    "upstreams = ( { name = \"a\"; servers = ( \"127.0.0.1:%d\" ); }%s );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"a\";%s } );\n",
	    h_pidfile(), h_statsfile(), pa, b, port,
	    with_b ? " sni = ( { name = \"a.example.com\"; upstream = \"b\"; } );" : "");
}

static void
test_sni(void)
{
	int port = h_free_port(), pa = h_free_port(), pb = h_free_port(), rr_bad = 0;
	int la = h_listen(pa), lb = h_listen(pb), c, b, moved;
	unsigned char got[512];
	char needle[64];
	pid_t pid;

	sni_conf(h_path("sni.conf"), port, pa, pb, 1);
	pid = start(h_path("sni.conf"), port, 1);
	c = h_connect(port, 5000);
	ok(c != -1 && write(c, hello_openssl, hello_openssl_len) == (ssize_t)hello_openssl_len,
	    "a client sent a ClientHello for a.example.com");
	b = h_accept(lb, 5000);
	ok(b != -1 && h_read_n(b, got, hello_openssl_len, 5000) == (ssize_t)hello_openssl_len &&
	       memcmp(got, hello_openssl, hello_openssl_len) == 0,
	    "the sni rule routed it to upstream b, hello intact");
	moved = reload_to(pid, 2, 1, &rr_bad) && wait_gen_gone(1, 30000, &rr_bad);
	ok(moved && h_stat("handed_in") == 1, "after a reload it moved (handed_in %llu)",
	    (unsigned long long)h_stat("handed_in"));
	/* Now without upstream b or the rule: the session is foreign here. */
	sni_conf(h_path("sni.conf"), port, pa, pb, 0);
	moved = reload_to(pid, 3, 1, &rr_bad) && wait_gen_gone(2, 30000, &rr_bad);
	ok(moved && h_stat("handed_in") == 2,
	    "after a reload that removed its group it moved again (handed_in %llu)",
	    (unsigned long long)h_stat("handed_in"));
	ok(write(c, "more", 4) == 4 && h_read_n(b, got, 4, 5000) == 4 && memcmp(got, "more", 4) == 0,
	    "client bytes still reach the server of the removed group");
	ok(write(b, "reply", 5) == 5 && h_read_n(c, got, 5, 5000) == 5 &&
	       memcmp(got, "reply", 5) == 0,
	    "and its answers reach the client");
	close(c);
	h_wait_closed(b, 5000);
	close(b);
	h_wait_stat("closed", 1, 10000);
	snprintf(needle, sizeof(needle), "server=127.0.0.1:%d", pb);
	ok(h_count_lines(h_path("sluiced.log"), needle) == 1, "one log line names its server");
	ok(balanced() && h_stat("closed_lost") == 0 && h_stat("closed_handoff_lost") == 0,
	    "the counts balance, nothing lost");
	close(la);
	close(lb);
	stop(pid);
}

/* --- 9. a receiver that must drain before it read what it was sent ------- */

static void
test_receiver_drains(int echo_port)
{
	int port = h_free_port(), rr_bad = 0, fds[100], ok2, ok3;
	const char *conf = h_conf("rd.conf", 1, port, &echo_port, 1,
	    "timeouts = { drain = " DRAIN "; };\n");
	pid_t pid;

	/* Generation 2 leaves its channel unread for 3 s: generation 1's
	 * sessions wait in it when generation 3 makes generation 2 drain. */
	setenv("SLUICE_TEST_HANDOFF_STALL_MS", "3000", 1);
	pid = start(conf, port, 1);
	unsetenv("SLUICE_TEST_HANDOFF_STALL_MS");
	open_many(fds, 100, port);
	ok2 = reload_to(pid, 2, 1, &rr_bad);
	ok3 = reload_to(pid, 3, 1, &rr_bad);
	ok(ok2 && ok3, "two reloads, the second while generation 2 had read nothing");
	ok(wait_gen_gone(1, 30000, &rr_bad) && wait_gen_gone(2, 30000, &rr_bad),
	    "generations 1 and 2 exited");
	ok(h_stat("closed_handoff_lost") == 0 && h_stat("handed_in") == h_stat("handed_out"),
	    "no session was left unread in a channel (lost %llu)",
	    (unsigned long long)h_stat("closed_handoff_lost"));
	ok(idle_bad(fds, 100) == 0, "all 100 connections relay, in generation 3");
	close_many(fds, 100);
	wait_balanced(10000);
	ok(balanced(), "the counts balance");
	stop(pid);
}

/* --- 10. a sender slow to close what it sent ------------------------------ */

/* An epoll entry lives as long as its socket, not the descriptor. A sender
 * the scheduler stops between its send and its close still holds the
 * sockets it sent (the test hook keeps copies for 8 s); a receiver that
 * closes such a session meanwhile must take its sockets out of its epoll set
 * itself, or the next event on them reaches a freed session (ASan:
 * use-after-poison in sio.c, seen once in i_reuseport under load). */
static void
test_sender_holds(int echo_port)
{
	int port = h_free_port(), rr_bad = 0, fds[4], eof = 0;
	const char *conf = h_conf("hold.conf", 1, port, &echo_port, 1,
	    "timeouts = { drain = " DRAIN "; idle = \"3s\"; };\n");
	pid_t pid, recv1 = 0, recv2 = 0;

	setenv("SLUICE_TEST_HANDOFF_HOLD_MS", "8000", 1);
	pid = start(conf, port, 1);
	unsetenv("SLUICE_TEST_HANDOFF_HOLD_MS");
	open_many(fds, 4, port);
	ok(idle_bad(fds, 4) == 0 && reload_to(pid, 2, 1, &rr_bad) &&
	        h_wait_stat("handed_in", 4, 10000) && h_stats_running(&recv1, 1, 2) == 1,
	    "4 sessions handed over by a worker that keeps its copies of them");
	ok(h_wait_stat("closed_idle_timeout", 4, 10000),
	    "  the new worker closes them (idle timeout) while the old one holds them");
	for (int i = 0; i < 4; i++)
		(void)send(fds[i], "late", 4, MSG_NOSIGNAL);
	ok(wait_gen_gone(1, 30000, &rr_bad), "  the clients send on them; the old worker leaves");
	for (int i = 0; i < 4; i++)
		eof += h_wait_closed(fds[i], 10000) == 1;
	ok(eof == 4 && h_stats_running(&recv2, 1, 2) == 1 && recv2 == recv1,
	    "  every client sees its close, and the new worker lives on (%d of 4 closed)", eof);
	close_many(fds, 4);
	wait_balanced(10000);
	ok(balanced(), "  the counts balance");
	stop(pid);
}

int
main(void)
{
	int echo_port = h_free_port();
	pid_t echo = h_echod_start(echo_port);

	if (getenv("I_HANDOFF_FULL") != NULL) {
		NIDLE = NIDLE_MAX;
		NRR = NRR_MAX;
		NRELOADS = 20;
	}

	test_reloads(echo_port);
	test_halfclose_and_gone_server(echo_port);
	test_version_mismatch(echo_port);
	test_corrupt(echo_port);
	test_full(echo_port);
	test_kill_receiver(echo_port);
	test_fd_short(echo_port);
	test_sni();
	test_receiver_drains(echo_port);
	test_sender_holds(echo_port);
	h_kill(echo);
	done_testing();
	return tap_exit();
}
