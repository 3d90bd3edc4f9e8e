/* SPDX-License-Identifier: BSD-2-Clause */
/* i_finwait.c — integration test of timeouts.client_fin, server_fin,
 * max_lifetime and max_lifetime_jitter through the real daemon. The daemon
 * runs with tests/fakeclock.so preloaded and the test moves its monotonic
 * clock forward, so no step waits for real time to pass and nothing is
 * judged by how long it took: a half-closed session is closed once the other
 * side stayed silent longer than its fin timeout (every byte renews it), a
 * session that is not half-closed is not, half-closed sessions keep the idle
 * timeout when no fin timeout is set, and sessions end at their lifetime,
 * spread by the jitter. Closes are counted as closed_fin_timeout and
 * closed_lifetime, and bad values are refused by sluiced -t. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"
#include "uphelp.h"

#define WAIT_MS 20000

static char offset_file[512];

/* Move the daemon's monotonic clock to `seconds` ahead of the real one. */
static void
set_mono(int64_t seconds)
{
	int64_t v[2] = {0, seconds};
	int fd = open(offset_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd == -1 || pwrite(fd, v, sizeof(v), 0) != sizeof(v))
		bail("cannot write %s", offset_file);
	close(fd);
}

/* 1 when fd has neither EOF, a reset nor bytes waiting right now. */
static int
still_open(int fd)
{
	struct pollfd p = {fd, POLLIN, 0};

	return poll(&p, 1, 0) == 0;
}

/* A client through lport and the backend's end of it (accepted on lfd). */
static void
pair(int lport, int lfd, int *c, int *b)
{
	*c = h_connect(lport, 5000);
	*b = *c == -1 ? -1 : h_accept(lfd, WAIT_MS);
	if (*c == -1 || *b == -1)
		bail("no relayed connection");
}

/* A byte from one end arrives at the other. */
static int
relays(int from, int to)
{
	char ch = 'q';

	return write(from, &ch, 1) == 1 && h_read_n(to, &ch, 1, WAIT_MS) == 1 && ch == 'q';
}

/* sluiced -t on a file holding text: 1 when it fails naming want. */
static int
refused(const char *text, const char *want)
{
	char *argv[] = {(char *)h_sluiced(), "-t", "-c", NULL, NULL};
	char *out = NULL;
	int rc, good;

	argv[3] = (char *)up_conf("bad.conf", 1, "%s", text);
	rc = h_run(argv, &out, 20000);
	good = rc != 0 && out != NULL && strstr(out, argv[3]) != NULL && strstr(out, want) != NULL;
	if (!good)
		diag("sluiced -t: status %d: %s (wanted %s)", rc, out ? out : "", want);
	free(out);
	return good;
}

#define UPL                                                                              \
	"upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:9\" ); } );\n"           \
	"listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"app\"; } );\n"

static void
config_errors(void)
{
	ok(refused("timeouts = { client_fin = 0; };\n" UPL,
	       ":5: timeouts.client_fin: must be greater than 0"),
	    "client_fin 0 is refused with FILE:LINE");
	ok(refused("timeouts = { server_fin = \"soon\"; };\n" UPL,
	       ":5: timeouts.server_fin: invalid duration \"soon\""),
	    "server_fin \"soon\" is refused");
	ok(refused("timeouts = { max_lifetime = \"60d\"; };\n" UPL,
	       ":5: timeouts.max_lifetime: duration \"60d\" is too long"),
	    "max_lifetime of 60 days is refused");
	ok(refused("timeouts = { max_lifetime_jitter = \"10s\"; };\n" UPL,
	       ":5: timeouts.max_lifetime_jitter: applies only with max_lifetime"),
	    "a jitter without max_lifetime is refused");
	ok(refused("timeouts = { max_lifetime = \"40d\"; max_lifetime_jitter = \"10d\"; };\n" UPL,
	       ":5: timeouts.max_lifetime_jitter: max_lifetime plus its jitter exceeds 49 days"),
	    "a lifetime and jitter over 49 days are refused");
	ok(refused("timeouts = { client_fn = \"5s\"; };\n" UPL,
	       ":5: timeouts.client_fn: unknown setting"),
	    "a misspelt client_fin is refused");
}

/* client_fin and server_fin, and a session that is not half-closed. */
static void
fin_timeouts(void)
{
	int lport = h_free_port(), bport = h_free_port(), lfd = h_listen(bport);
	int ca, ba, cb, bb, cc, bc, ce, be;
	const char *conf;
	pid_t pid;

	set_mono(0);
	conf = up_conf("fin.conf", 1,
	    "timeouts = { idle = \"10m\"; client_fin = \"100s\"; server_fin = \"300s\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    bport, lport);
	h_preload("fakeclock.so");
	pid = h_sluiced_start(conf, lport, 1);
	h_preload(NULL);

	pair(lport, lfd, &ca, &ba); /* the client will send FIN */
	pair(lport, lfd, &cb, &bb); /* nobody sends FIN */
	pair(lport, lfd, &cc, &bc); /* the server will send FIN */
	pair(lport, lfd, &ce, &be); /* the client sends FIN, then bytes flow back */
	ok(relays(ca, ba) && relays(bb, cb) && relays(cc, bc) && relays(be, ce),
	    "four sessions relay");
	shutdown(ca, SHUT_WR);
	shutdown(ce, SHUT_WR);
	shutdown(bc, SHUT_WR);
	ok(h_wait_closed(ba, WAIT_MS) && h_wait_closed(be, WAIT_MS) && h_wait_closed(cc, WAIT_MS),
	    "the FINs were relayed: each session is half-closed");
	ok(relays(ba, ca) && relays(cc, bc), "half-closed sessions still relay the other way");

	set_mono(60);
	/* A byte 60s in renews E's client_fin; A stays silent. */
	ok(relays(be, ce), "E relays a byte 60s after its client's FIN");
	set_mono(120);
	ok(h_wait_closed(ca, WAIT_MS), "A, silent 120s after its client's FIN, is closed");
	ok(h_wait_stat("closed_fin_timeout", 1, WAIT_MS), "counted as closed_fin_timeout");
	ok(still_open(ce), "E, which moved a byte 60s ago, stays open (client_fin 100s)");
	ok(still_open(bc), "C stays open: server_fin is 300s");
	ok(relays(bb, cb), "B, never half-closed, relays");

	set_mono(420);
	ok(h_wait_closed(ce, WAIT_MS) && h_wait_closed(bc, WAIT_MS),
	    "past 300s more, E (client_fin) and C (server_fin) are closed");
	ok(h_wait_stat("closed_fin_timeout", 3, WAIT_MS), "three closed_fin_timeout in all");
	is(h_stat("closed_idle_timeout"), 0, "none counted as an idle timeout");
	ok(still_open(cb) && relays(cb, bb), "B, not half-closed, still relays (idle is 10m)");

	close(ca);
	close(ba);
	close(cb);
	close(bb);
	close(cc);
	close(bc);
	close(ce);
	close(be);
	up_stop(pid);

	/* Without fin timeouts, a half-closed session keeps the idle one. */
	set_mono(0);
	conf = up_conf("idle.conf", 1,
	    "timeouts = { idle = \"100s\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    bport, lport);
	h_preload("fakeclock.so");
	pid = h_sluiced_start(conf, lport, 1);
	h_preload(NULL);
	pair(lport, lfd, &ca, &ba);
	shutdown(ca, SHUT_WR);
	ok(h_wait_closed(ba, WAIT_MS), "without fin timeouts: the client's FIN was relayed");
	set_mono(150);
	ok(h_wait_closed(ca, WAIT_MS), "the half-closed session ends at the idle timeout");
	ok(h_wait_stat("closed_idle_timeout", 1, WAIT_MS) && h_stat("closed_fin_timeout") == 0,
	    "counted as closed_idle_timeout, as before");
	close(ca);
	close(ba);
	up_stop(pid);
	close(lfd);
}

#define NLIFE 20

/* max_lifetime with jitter: spread between 100 and 200 s. */
static void
lifetime(void)
{
	int lport = h_free_port(), eport = h_free_port(), fds[NLIFE], good = 0, closed = 0;
	uint64_t first;
	const char *conf;
	pid_t pid;

	h_echod_start(eport);
	set_mono(0);
	conf = up_conf("life.conf", 1,
	    "timeouts = { idle = \"1h\"; max_lifetime = \"100s\"; max_lifetime_jitter = \"100s\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    eport, lport);
	h_preload("fakeclock.so");
	pid = h_sluiced_start(conf, lport, 1);
	h_preload(NULL);
	for (int i = 0; i < NLIFE; i++) {
		fds[i] = h_connect(lport, 5000);
		good += fds[i] != -1 && up_echo(fds[i], WAIT_MS) == 0;
	}
	is(good, NLIFE, "%d sessions relay", NLIFE);

	set_mono(150);
	ok(h_wait_stat("closed_lifetime", 1, WAIT_MS),
	    "150s in, sessions whose jitter is under 50s end at their lifetime");
	first = h_stat("closed_lifetime");
	ok(first < NLIFE, "... but not all of them (%llu of %d): the jitter spreads them",
	    (unsigned long long)first, NLIFE);
	set_mono(201);
	ok(h_wait_stat("closed_lifetime", NLIFE, WAIT_MS),
	    "past lifetime plus jitter, every session has ended");
	for (int i = 0; i < NLIFE; i++)
		closed += fds[i] != -1 && h_wait_closed(fds[i], WAIT_MS);
	is(closed, NLIFE, "every client saw its session end");
	is(h_stat("closed_idle_timeout"), 0, "none counted as an idle timeout");
	is(h_count_lines(h_path("sluiced.log"), "session closed: max lifetime"), NLIFE,
	    "the log names the lifetime as the reason, once per session");
	for (int i = 0; i < NLIFE; i++)
		if (fds[i] != -1)
			close(fds[i]);
	up_stop(pid);
}

int
main(void)
{
	snprintf(offset_file, sizeof(offset_file), "%s", h_path("clock-offset"));
	set_mono(0);
	setenv("FAKECLOCK_FILE", offset_file, 1);
	config_errors();
	fin_timeouts();
	lifetime();
	done_testing();
	return tap_exit();
}
