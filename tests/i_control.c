/* SPDX-License-Identifier: BSD-2-Clause */
/* i_control.c — integration test of the control socket and sluicectl through
 * the real daemon: show info and servers (text and JSON); a server set to
 * drain or maint takes no new connection while its open ones go on, weight
 * changes the shares and weight 0 empties one; the states live through a
 * reload and a restart (state file), a damaged state file is skipped; show
 * sessions lists what is open with its bytes, filters by server; shutdown
 * session closes exactly one, shutdown sessions server closes a server's;
 * reload answers with the outcome, a broken config with FILE:LINE while the
 * old generation serves on; drain turns the node to draining at once and
 * closes the listeners after the grace while open streams finish, undrain
 * serves again (before and after the listeners closed); set log level
 * reaches the workers; /healthz follows the drain and the servers' states
 * (admin endpoint); a stopped worker cannot hang show sessions; hostile
 * clients (too many, overlong, binary, silent) cost nothing; -t refuses
 * bad control settings and a non-socket in the socket's place. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"
#include "uphelp.h"

#define WAIT_MS 15000

static int e0, e1, lport, aport;
static pid_t master;
static char conf[512], sockpath[256];

static const char *
sluicectl(void)
{
	const char *p = getenv("SLUICECTL");

	if (p == NULL)
		bail("SLUICECTL is not set (run through make check)");
	return p;
}

/* Run sluicectl -S SOCKET with the words of ap (NULL-terminated); its output
 * in *out (may be NULL). Returns its exit status. */
static int
vctl(char **out, va_list ap)
{
	char *argv[16];
	int argc = 0;
	char *w;

	argv[argc++] = (char *)sluicectl();
	argv[argc++] = "-S";
	argv[argc++] = sockpath;
	while ((w = va_arg(ap, char *)) != NULL && argc < 15)
		argv[argc++] = w;
	argv[argc] = NULL;
	return h_run(argv, out, 20000);
}

static int
ctl(char **out, ...)
{
	va_list ap;
	int rc;

	va_start(ap, out);
	rc = vctl(out, ap);
	va_end(ap);
	return rc;
}

/* ctl, and its output freed: 1 when the status is want and the output holds
 * needle (NULL: anything). */
#define CTL_IS(want, needle, ...) ctl_is(want, needle, __VA_ARGS__, (char *)NULL)
static int
ctl_is(int want, const char *needle, ...)
{
	char *out = NULL, *first;
	va_list ap;
	int rc, good;

	va_start(ap, needle);
	first = va_arg(ap, char *);
	va_end(ap);
	va_start(ap, needle);
	rc = vctl(&out, ap);
	va_end(ap);
	good = rc == want && (needle == NULL || (out != NULL && strstr(out, needle) != NULL));
	if (!good)
		diag("sluicectl %s ...: status %d, output: %s", first ? first : "", rc,
		    out ? out : "(none)");
	free(out);
	return good;
}

static int
json_valid(const char *text)
{
	char path[512];
	char *argv[] = { "/usr/bin/python3", "-c",
		"import json,sys; json.load(open(sys.argv[1]))", path, NULL };

	snprintf(path, sizeof(path), "%s", h_path("answer.json"));
	h_write_file(path, "%s", text);
	return h_run(argv, NULL, 10000) == 0;
}

static uint64_t
connects(int port)
{
	struct stats_server_counters c;

	if (up_server("app", port, &c, NULL) == -1)
		return UINT64_MAX;
	return c.connects;
}

/* n short clients through the listener: how many each backend took. */
static void
spread(int n, int *n0, int *n1)
{
	uint64_t c0 = connects(e0), c1 = connects(e1);

	for (int i = 0; i < n; i++) {
		int fd = h_connect(lport, 5000);

		if (fd != -1) {
			up_echo(fd, 5000);
			close(fd);
		}
	}
	*n0 = (int)(connects(e0) - c0);
	*n1 = (int)(connects(e1) - c1);
}

static void
start(void)
{
	char *argv[] = { (char *)h_sluiced(), "-f", "-c", conf, NULL };
	pid_t pids[4];

	master = h_spawn(argv, h_path("sluiced.log"));
	if (h_wait_port(lport, WAIT_MS) == -1)
		bail("sluiced did not start listening");
	for (uint64_t t0 = h_now_ms(); h_stats_running(pids, 4, 0) < 1; h_nap(20))
		if (h_now_ms() - t0 > WAIT_MS)
			bail("no worker running");
	for (uint64_t t0 = h_now_ms(); access(sockpath, F_OK) != 0; h_nap(20))
		if (h_now_ms() - t0 > WAIT_MS)
			bail("no control socket");
}

static void
stop(void)
{
	int status;

	kill(master, SIGTERM);
	if (h_wait_exit(master, WAIT_MS, &status) == -1)
		bail("sluiced did not stop");
}

static void
test_show(void)
{
	char *out = NULL;
	struct stat st;

	ok(CTL_IS(0, "node: serving", "show", "info"), "show info says the node serves");
	ok(CTL_IS(0, "app/127.0.0.1:", "show", "servers"), "show servers lists the servers");
	ok(CTL_IS(0, "app/127.0.0.1:", "show", "servers", "app"), "show servers UPSTREAM");
	ok(CTL_IS(1, "no upstream nope", "show", "servers", "nope"),
	    "show servers of an unknown upstream is refused");
	ctl(&out, "--json", "show", "servers", NULL);
	ok(out != NULL && json_valid(out) && strstr(out, "\"state\":\"ready\"") != NULL,
	    "show servers --json is JSON");
	free(out);
	out = NULL;
	ctl(&out, "--json", "show", "info", NULL);
	ok(out != NULL && json_valid(out) && strstr(out, "\"node\":\"serving\"") != NULL,
	    "show info --json is JSON");
	free(out);
	ok(CTL_IS(1, "unknown command", "frobnicate"), "an unknown command: status 1, one line");
	ok(CTL_IS(0, "show sessions", "help"), "help lists the commands");
	ok(stat(sockpath, &st) == 0 && (st.st_mode & 0777) == 0600 && S_ISSOCK(st.st_mode),
	    "the socket has the configured mode (0600)");
}

static void
test_server_state(void)
{
	char e0name[64], e1name[64];
	int n0, n1, fd;

	snprintf(e0name, sizeof(e0name), "app/127.0.0.1:%d", e0);
	snprintf(e1name, sizeof(e1name), "app/127.0.0.1:%d", e1);
	spread(8, &n0, &n1);
	ok(n0 == 4 && n1 == 4, "both servers ready: 4 and 4 of 8 (%d/%d)", n0, n1);

	/* An open connection to e0 goes on through its drain. */
	fd = h_connect(lport, 5000);
	ok(fd != -1 && up_echo(fd, 5000) == 0, "a connection open before the drain");
	ok(CTL_IS(0, NULL, "set", "server", e1name, "state", "drain"), "set e1 to drain");
	ok(CTL_IS(0, "drain", "show", "servers"), "show servers says drain");
	spread(6, &n0, &n1);
	ok(n0 == 6 && n1 == 0, "a drained server takes no new connection (%d/%d)", n0, n1);
	ok(fd != -1 && up_echo(fd, 5000) == 0, "the connection open before goes on");
	if (fd != -1)
		close(fd);
	ok(CTL_IS(0, NULL, "set", "server", e1name, "state", "ready"), "set e1 ready");
	spread(8, &n0, &n1);
	ok(n1 > 0, "ready again, it takes connections (%d/%d)", n0, n1);

	ok(CTL_IS(0, NULL, "set", "server", e0name, "weight", "3"), "weight 3 for e0");
	spread(16, &n0, &n1);
	ok(n0 == 12 && n1 == 4, "weights 3 and 1: 12 and 4 of 16 (%d/%d)", n0, n1);
	ok(CTL_IS(0, NULL, "set", "server", e0name, "weight", "0"), "weight 0 for e0");
	spread(5, &n0, &n1);
	ok(n0 == 0 && n1 == 5, "weight 0 takes nothing (%d/%d)", n0, n1);
	ok(CTL_IS(1, "0 to 256", "set", "server", e0name, "weight", "257"), "weight 257 refused");
	ok(CTL_IS(1, "0 to 256", "set", "server", e0name, "weight", "-1"), "weight -1 refused");
	ok(CTL_IS(1, "ready, drain or maint", "set", "server", e0name, "state", "up"),
	    "an unknown state is refused");
	ok(CTL_IS(1, "no server app/10.9.9.9:1", "set", "server", "app/10.9.9.9:1", "state",
	       "drain"), "an unknown server is refused");
	ok(CTL_IS(1, "UPSTREAM/ADDRESS", "set", "server", "nobody", "state", "drain"),
	    "a server name without its upstream is refused");

	/* Kept across a reload and a restart. */
	ok(CTL_IS(0, NULL, "set", "server", e1name, "state", "maint"), "set e1 to maint");
	ok(CTL_IS(0, "reloaded: generation", "reload"), "reload answers once it is done");
	ok(CTL_IS(0, "maint", "show", "servers"), "maint lives through the reload");
	stop();
	start();
	ok(CTL_IS(0, "maint", "show", "servers"), "and through a restart (the state file)");
	spread(3, &n0, &n1);
	ok(n0 == 0 && n1 == 0, "after the restart, weight 0 and maint leave no server: clients "
	                       "are refused (%d/%d)", n0, n1);
	{
		char why[128];

		snprintf(why, sizeof(why), "listener 127.0.0.1:%d: no usable server in upstream app",
		    lport);
		ok(h_wait_http(aport, "/healthz", 503, why, WAIT_MS),
		    "/healthz says 503: no usable server");
	}
	ok(CTL_IS(0, NULL, "set", "server", e1name, "state", "ready"), "e1 ready");
	ok(CTL_IS(0, NULL, "set", "server", e0name, "weight", "1"), "e0 weight 1");
	ok(h_wait_http(aport, "/healthz", 200, "ok", WAIT_MS), "/healthz says 200 again");

	/* A damaged state file is skipped line by line. */
	stop();
	h_write_file(h_path("server-state"),
	    "# sluice server-state 1\nserver app 127.0.0.1:%d drain -\ngarbage here\n"
	    "server app 127.0.0.1:%d drain 999\nserver gone 10.0.0.1:1 maint -\n", e0, e1);
	start();
	ok(CTL_IS(0, NULL, "show", "servers"), "a damaged state file does not stop the start");
	{
		char *out = NULL;
		char line0[96];

		ctl(&out, "show", "servers", NULL);
		snprintf(line0, sizeof(line0), "%s ", e0name);
		ok(out != NULL && strstr(out, line0) != NULL &&
		       strstr(strstr(out, line0), "drain") != NULL,
		    "its good line applies");
		free(out);
	}
	ok(h_count_lines(h_path("sluiced.log"), "unreadable line") >= 1 &&
	       h_count_lines(h_path("sluiced.log"), "bad weight") >= 1,
	    "its bad lines are logged and skipped");
	ok(CTL_IS(0, NULL, "set", "server", e0name, "state", "ready"), "e0 ready");
}

static void
test_sessions(void)
{
	char e0name[64], *out = NULL, id[32] = "";
	int fds[4], n = 0, closed;

	snprintf(e0name, sizeof(e0name), "app/127.0.0.1:%d", e0);
	for (int i = 0; i < 4; i++) {
		fds[i] = h_connect(lport, 5000);
		if (fds[i] != -1 && up_echo(fds[i], 5000) == 0)
			n++;
	}
	ok(n == 4, "four open sessions");
	ctl(&out, "show", "sessions", NULL);
	{
		int lines = 0;

		for (char *p = out; p != NULL && (p = strchr(p, '\n')) != NULL; p++)
			lines++;
		ok(lines == 5 && strstr(out, "relaying") != NULL,
		    "show sessions lists them, a line each (%d lines)", lines - 1);
		if (out != NULL && strchr(out, '\n') != NULL)
			sscanf(strchr(out, '\n') + 1, "%31s", id);
	}
	free(out);
	out = NULL;
	ctl(&out, "--json", "show", "sessions", NULL);
	ok(out != NULL && json_valid(out) && strstr(out, "\"count\":4") != NULL &&
	       strstr(out, "\"bytes_in\":1") != NULL,
	    "show sessions --json: four, with their bytes");
	free(out);
	out = NULL;
	ctl(&out, "--json", "show", "sessions", "server", e0name, NULL);
	ok(out != NULL && strstr(out, "\"count\":2") != NULL, "filtered by server: two");
	free(out);
	out = NULL;
	ctl(&out, "--json", "show", "sessions", "client", "127.0.0.1", "worker", "0", NULL);
	ok(out != NULL && strstr(out, "\"count\":4") != NULL, "filtered by client and worker: four");
	free(out);
	out = NULL;
	ctl(&out, "--json", "show", "sessions", "client", "10.9.9.9", NULL);
	ok(out != NULL && strstr(out, "\"count\":0") != NULL, "another client: none");
	free(out);
	ok(CTL_IS(1, "show sessions [", "show", "sessions", "colour", "red"),
	    "an unknown filter is refused");

	ok(id[0] != '\0' && CTL_IS(0, "1 sessions shut", "shutdown", "session", id),
	    "shutdown session %s", id);
	closed = 0;
	for (int i = 0; i < 4; i++)
		if (fds[i] != -1 && h_wait_closed(fds[i], 100))
			closed++;
	ok(closed == 1, "exactly one client was closed (%d)", closed);
	ok(CTL_IS(1, "no session", "shutdown", "session", id), "the same id again: no session");
	ok(CTL_IS(1, "SLOT.N", "shutdown", "session", "xyz"), "a malformed id is refused");
	ok(CTL_IS(0, "sessions shut", "shutdown", "sessions", "server", e0name),
	    "shutdown sessions server");
	closed = 0;
	for (int i = 0; i < 4; i++)
		if (fds[i] != -1 && h_wait_closed(fds[i], 3000))
			closed++;
	ok(closed >= 2 && closed <= 3, "that closed the server's sessions (%d of 4 closed)", closed);
	n = 0;
	for (int i = 0; i < 4; i++) {
		if (fds[i] != -1 && up_echo(fds[i], 200) == 0)
			n++;
		if (fds[i] != -1)
			close(fds[i]);
	}
	ok(n == 4 - closed, "and no other (%d still serve)", n);
	ok(up_wait_server_active("app", e0, 0, WAIT_MS) && up_wait_server_active("app", e1, 0, WAIT_MS),
	    "every count back to 0");

	/* A stopped worker holds its answer back; the rest still answer. */
	{
		pid_t pids[4];
		int nw = h_stats_running(pids, 4, 0);
		uint64_t t0;
		int rc;

		kill(pids[0], SIGSTOP);
		t0 = h_now_ms();
		rc = ctl(NULL, "show", "sessions", NULL);
		ok(rc == 0 && h_now_ms() - t0 < 15000 && nw == 1,
		    "show sessions answers with the worker stopped (status %d)", rc);
		/* The master may have replaced it for its stale heartbeat. */
		if (h_alive(pids[0]))
			kill(pids[0], SIGCONT);
		for (t0 = h_now_ms(); h_stats_running(pids, 4, 0) < 1 && h_now_ms() - t0 < WAIT_MS;)
			h_nap(20);
	}
}

/* 1 when the master's title (/proc/PID/cmdline) holds needle. */
static int
master_title_has(const char *needle)
{
	char path[64], *t;
	int has;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)master);
	t = h_read_file(path);
	has = t != NULL && strstr(t, needle) != NULL;
	free(t);
	return has;
}

static void
test_reload_drain(void)
{
	char bad[2048];
	int fd, status;
	long until;

	/* A broken config: the error with its line, the old one serves. */
	h_write_file(h_path("broken.conf"), "workers = \"many\";\n");
	snprintf(bad, sizeof(bad), "cp %s %s.good && cp %s %s", conf, conf, h_path("broken.conf"),
	    conf);
	status = system(bad);
	ok(status == 0 && CTL_IS(1, ".conf:1: workers", "reload"),
	    "a reload of a broken config fails with FILE:LINE and the setting");
	snprintf(bad, sizeof(bad), "cp %s.good %s", conf, conf);
	status = system(bad);
	fd = h_connect(lport, 5000);
	ok(status == 0 && fd != -1 && up_echo(fd, 5000) == 0, "the old generation serves on");
	ok(CTL_IS(0, "1 failed", "show", "info"), "show info counts the failed reload");

	/* Drain, undrained in the grace. */
	ok(CTL_IS(0, "draining", "drain", "--grace", "30s"), "drain --grace 30s");
	ok(CTL_IS(0, "node: draining", "show", "info"), "the node is draining at once");
	ok(h_wait_http(aport, "/healthz", 503, "draining", WAIT_MS), "/healthz: 503 draining");
	ok(master_title_has(", draining)"), "the master's title says draining");
	ok(h_port_refuses(lport) == 0, "the listener still accepts in the grace period");
	ok(CTL_IS(1, "already draining", "drain"), "a second drain is refused");
	ok(CTL_IS(0, "serving", "undrain"), "undrain in the grace");
	ok(CTL_IS(0, "node: serving", "show", "info"), "serving again");
	ok(h_wait_http(aport, "/healthz", 200, "ok", WAIT_MS), "/healthz: 200 again");

	/* Drain to the end: the listeners close, the open stream finishes. */
	ok(CTL_IS(0, "draining", "drain", "--grace", "300ms"), "drain --grace 300ms");
	until = 0;
	for (uint64_t t0 = h_now_ms(); h_now_ms() - t0 < WAIT_MS; h_nap(50))
		if (h_port_refuses(lport) == 1) {
			until = 1;
			break;
		}
	ok(until, "after the grace the listener refuses");
	ok(CTL_IS(0, "node: drained", "show", "info"), "the node is drained");
	ok(h_wait_http(aport, "/healthz", 503, "drained", WAIT_MS), "/healthz: 503 drained");
	ok(master_title_has(", drained)"), "the master's title says drained");
	ok(fd != -1 && up_echo(fd, 5000) == 0, "a stream open before the drain goes on");
	if (fd != -1)
		close(fd);
	kill(master, SIGHUP);
	ok(h_wait_file_contains(h_path("sluiced.log"), "undrain it to serve again", WAIT_MS),
	    "a SIGHUP while drained is refused with the reason");
	ok(CTL_IS(0, "serving", "undrain"), "undrain once drained");
	fd = h_connect(lport, 5000);
	ok(fd != -1 && up_echo(fd, 5000) == 0, "a new generation serves");
	if (fd != -1)
		close(fd);
	ok(CTL_IS(0, "node: serving", "show", "info"), "and the node says so");
	ok(h_wait_http(aport, "/healthz", 200, "ok", WAIT_MS), "and /healthz: 200");
	ok(!master_title_has("drain"), "and the master's title no longer says drain");
}

static void
test_log_level(void)
{
	int fd, before = h_count_lines(h_path("sluiced.log"), "debug: session closed");

	ok(CTL_IS(0, NULL, "set", "log", "level", "debug"), "set log level debug");
	ok(CTL_IS(1, "level must be", "set", "log", "level", "loud"), "an unknown level is refused");
	/* The workers take it on their heartbeat (each second). */
	for (uint64_t t0 = h_now_ms(); h_now_ms() - t0 < WAIT_MS; h_nap(200)) {
		fd = h_connect(lport, 5000);
		if (fd != -1) {
			up_echo(fd, 5000);
			close(fd);
		}
		if (h_count_lines(h_path("sluiced.log"), "debug: session closed") > before)
			break;
	}
	ok(h_count_lines(h_path("sluiced.log"), "debug: session closed") > before,
	    "the workers log at debug level now");
	ok(CTL_IS(0, NULL, "set", "log", "level", "info"), "back to info");
}

/* A raw client of the socket. */
static int
raw_connect(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (strlen(sockpath) >= sizeof(sun.sun_path))
		bail("socket path too long: %s", sockpath);
	memcpy(sun.sun_path, sockpath, strlen(sockpath) + 1);
	if (fd != -1 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
test_hostile(void)
{
	int silent[16], fd, n = 0;
	char buf[256], big[4096];
	ssize_t got;

	for (int i = 0; i < 16; i++)
		silent[i] = raw_connect();
	fd = raw_connect();
	got = fd != -1 ? h_read_n(fd, buf, sizeof(buf) - 1, 5000) : -1;
	if (got > 0)
		buf[got] = '\0';
	ok(got > 0 && strstr(buf, "busy") != NULL, "a 17th client is told the socket is busy");
	if (fd != -1)
		close(fd);
	for (int i = 0; i < 16; i++)
		if (silent[i] != -1)
			close(silent[i]);
	for (uint64_t t0 = h_now_ms(); h_now_ms() - t0 < WAIT_MS; h_nap(50))
		if (ctl(NULL, "show", "info", NULL) == 0) {
			n = 1;
			break;
		}
	ok(n, "once they leave, commands are answered again");

	memset(big, 'a', sizeof(big));
	fd = raw_connect();
	if (fd != -1)
		(void)!send(fd, big, sizeof(big), MSG_NOSIGNAL);
	got = fd != -1 ? h_read_n(fd, buf, sizeof(buf) - 1, 5000) : -1;
	if (got > 0)
		buf[got] = '\0';
	ok(got > 0 && strstr(buf, "too long") != NULL, "an overlong line gets an error");
	if (fd != -1)
		close(fd);

	fd = raw_connect();
	if (fd != -1)
		(void)!send(fd, "show\0info\n", 10, MSG_NOSIGNAL);
	got = fd != -1 ? h_read_n(fd, buf, sizeof(buf) - 1, 5000) : -1;
	if (got > 0)
		buf[got] = '\0';
	ok(got > 0 && strncmp(buf, "error:", 6) == 0, "a NUL in the line gets an error");
	if (fd != -1)
		close(fd);

	fd = raw_connect();
	if (fd != -1)
		close(fd);
	ok(CTL_IS(0, "node: serving", "show", "info") && h_alive(master),
	    "a client that leaves at once does no harm");
}

/* Out of descriptors (the fault shim fails the master's accepts with
 * EMFILE): the master pauses accepting instead of spinning on the readable
 * socket, and answers once descriptors are back. */
static void
test_accept_pause(void)
{
	int fd, lines;

	stop();
	h_preload("faultshim.so");
	setenv("FAULTSHIM_DEPTH", "0", 1);
	setenv("FAULTSHIM_ACCEPT_FILE", h_path("accept.errno"), 1);
	start();
	h_preload(NULL);
	unsetenv("FAULTSHIM_DEPTH");
	unsetenv("FAULTSHIM_ACCEPT_FILE");
	h_write_file(h_path("accept.errno"), "%d\n", EMFILE);
	fd = raw_connect();
	if (fd != -1)
		(void)!send(fd, "show info\n", 10, MSG_NOSIGNAL);
	ok(h_wait_file_contains(h_path("sluiced.log"), "control: accept (paused", WAIT_MS),
	    "out of descriptors, the master pauses accepting and says so");
	/* Time for a spin to show, were there one. */
	h_nap(300);
	lines = h_count_lines(h_path("sluiced.log"), "control: accept");
	unlink(h_path("accept.errno"));
	ok(lines <= 3, "  without spinning (%d accept warnings)", lines);
	{
		char buf[256];
		ssize_t got = fd != -1 ? h_read_n(fd, buf, sizeof(buf) - 1, WAIT_MS) : -1;

		if (got > 0)
			buf[got] = '\0';
		if (got <= 0 || strncmp(buf, "ok\nversion:", 11) != 0)
			diag("got %zd: %.60s", got, got > 0 ? buf : "");
		ok(got > 0 && strncmp(buf, "ok\nversion:", 11) == 0,
		    "the waiting client is answered once descriptors are back");
	}
	if (fd != -1)
		close(fd);
	ok(CTL_IS(0, "node: serving", "show", "info"), "and sluicectl too");
}

static void
test_refused_configs(void)
{
	static const struct {
		const char *body, *needle;
	} cases[] = {
		{ "control = { socket = \"relative/ctl\"; };", "control.socket" },
		{ "control = { socket = \"/tmp/x\"; mode = \"999\"; };", "control.mode" },
		{ "control = { socket = \"/tmp/x\"; mode = \"0400\"; };", "control.mode" },
		{ "control = { socket = \"/tmp/x\"; group = \"no-such-group-here\"; };",
		    "control.group" },
		{ "control = { mode = \"0600\"; };", "socket" },
		{ "control = { socket = \"/tmp/x\"; colour = 1; };", "colour" },
	};
	int ports[1] = { e0 };

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *c = h_conf("refused.conf", 1, h_free_port(), ports, 1, cases[i].body);
		char *argv[] = { (char *)h_sluiced(), "-t", "-c", (char *)c, NULL };
		char *out = NULL;
		int rc = h_run(argv, &out, 10000);

		ok(rc != 0 && out != NULL && strstr(out, "refused.conf:") != NULL &&
		       strstr(out, cases[i].needle) != NULL,
		    "-t refuses %s", cases[i].body);
		if (rc == 0 || out == NULL || strstr(out, cases[i].needle) == NULL)
			diag("status %d: %s", rc, out ? out : "");
		free(out);
	}
	/* A file that is not a socket stands where the socket goes. */
	{
		char body[512], *out = NULL;
		const char *c;
		char *argv[5];

		h_write_file(h_path("notasocket"), "precious\n");
		snprintf(body, sizeof(body), "control = { socket = \"%s\"; };", h_path("notasocket"));
		c = h_conf("nsock.conf", 1, h_free_port(), ports, 1, body);
		argv[0] = (char *)h_sluiced();
		argv[1] = "-f";
		argv[2] = "-c";
		argv[3] = (char *)c;
		argv[4] = NULL;
		ok(h_run(argv, &out, 15000) == 1 && out != NULL &&
		       strstr(out, "is not a socket") != NULL &&
		       h_file_contains(h_path("notasocket"), "precious"),
		    "a start over a file that is not a socket fails and leaves it");
		free(out);
	}
}

int
main(void)
{
	int ports[2];
	char extra[1024];

	e0 = h_free_port();
	e1 = h_free_port();
	lport = h_free_port();
	aport = h_free_port();
	ports[0] = e0;
	ports[1] = e1;
	h_echod_start(e0);
	h_echod_start(e1);
	if ((size_t)snprintf(sockpath, sizeof(sockpath), "%s", h_path("control")) >= 108)
		bail("the test directory's path is too long for a socket");
	snprintf(extra, sizeof(extra),
	    "control = { socket = \"%s\"; mode = \"0600\"; state_file = \"%s\"; };\n"
	    "admin = { listen = \"127.0.0.1:%d\"; };", sockpath, h_path("server-state"), aport);
	/* As h_conf writes it, but logging at info: set log level has
	 * something to change. */
	snprintf(conf, sizeof(conf), "%s", h_path("sluice.conf"));
	h_write_file(conf,
	    "workers = 1;\npid_file = \"%s\";\nstats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"info\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n%s\n",
	    h_pidfile(), h_statsfile(), e0, e1, lport, extra);
	(void)ports;
	start();

	test_show();
	test_server_state();
	test_sessions();
	test_log_level();
	test_hostile();
	test_reload_drain();
	test_accept_pause();
	stop();
	ok(access(sockpath, F_OK) == -1 && errno == ENOENT, "the socket is removed at exit");
	test_refused_configs();
	done_testing();
}
