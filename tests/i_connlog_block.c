/* SPDX-License-Identifier: BSD-2-Clause */
/* i_connlog_block.c — integration test of a connection log that never blocks
 * a worker. A syslog socket the test binds (log.syslog_socket) gets RFC 3164
 * lines with the right priority, tag and worker pid; left unread it fills,
 * relaying goes on, and every line is either received or counted in
 * log_dropped. A log file that is a FIFO nobody reads: the same. A regular
 * file is reopened on SIGUSR1 after rotation, the syslog socket reconnected.
 * Workers in a chroot still reach the syslog socket (connected before it);
 * stderr a pipe nobody reads (foreground) drops and counts like the FIFO.
 * log.format with named fields and its JSON form (parsed by python3), an
 * unknown field refused by sluiced -t, and the classic line's exact shape.
 * Daemons are stopped by their pid file's pid; loopback only. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

#define WAIT 20000
#define WORKERS 2

static pid_t daemon_pid;
static const char *conf;

static void
stop_daemon(void)
{
	h_stop_sluiced(daemon_pid, SIGTERM, 10000);
	daemon_pid = 0;
}

/* sluiced -c conf, detached (it logs where the config says, not to stderr
 * as -f would). 1 when it runs its workers. */
static int
start_daemon(void)
{
	char *argv[] = {(char *)h_sluiced(), "-c", (char *)conf, NULL};
	char *out = NULL;
	uint64_t end = h_now_ms() + WAIT;
	int r = h_run(argv, &out, WAIT);

	if (r != 0)
		diag("sluiced exited %d: %s", r, out ? out : "");
	free(out);
	daemon_pid = h_pidfile_pid();
	if (r != 0 || daemon_pid <= 0 || !h_is_sluiced(daemon_pid))
		return 0;
	while (h_stats_running(NULL, 0, 0) != WORKERS && h_now_ms() < end)
		h_nap(20);
	return h_stats_running(NULL, 0, 0) == WORKERS;
}

/* n connections, each one echo round trip then closed. Returns how many
 * round trips succeeded. */
static int
round_trips(int port, int n)
{
	int good = 0;

	for (int i = 0; i < n; i++) {
		int fd = h_connect(port, WAIT);

		if (fd >= 0 && h_round_trip(fd, WAIT) == 0)
			good++;
		if (fd >= 0)
			close(fd);
	}
	return good;
}

/* One round trip from 127.0.0.2; its client text ("127.0.0.2:port") in
 * client. Returns 1 when it worked. */
static int
one_client(int port, char *client, size_t len)
{
	int fd = h_connect_from("127.0.0.2", port, WAIT), r;

	if (fd < 0)
		return 0;
	snprintf(client, len, "127.0.0.2:%u", h_local_port(fd));
	r = h_round_trip(fd, WAIT) == 0;
	close(fd);
	return r;
}

/* A non-blocking datagram socket bound at path for the workers (user nobody when we are
 * root) to send to. */
static int
bind_syslog(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), small = 4096;

	unlink(path);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(path, 0666) == -1)
		bail("syslog socket %s: %s", path, strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	return fd;
}

/* Receive one datagram within ms; its length, or -1. */
static ssize_t
recv_line(int fd, char *buf, size_t len, int ms)
{
	uint64_t end = h_now_ms() + (uint64_t)ms;

	for (;;) {
		ssize_t n = recv(fd, buf, len - 1, MSG_DONTWAIT);

		if (n >= 0) {
			buf[n] = '\0';
			return n;
		}
		if (h_now_ms() >= end)
			return -1;
		h_nap(5);
	}
}

/* Count the connection lines readable on fd now (datagrams or a stream). */
static unsigned
drain_count(int fd, int stream)
{
	static char carry[1 << 16];
	static size_t have;
	static int last_fd = -1;
	char buf[1 << 16];
	unsigned n = 0;
	ssize_t r;

	if (fd != last_fd)
		have = 0;
	last_fd = fd;

	while ((r = read(fd, buf, sizeof(buf) - 1)) > 0) {
		buf[r] = '\0';
		if (!stream) {
			n += strstr(buf, "info: connection client=") != NULL;
			continue;
		}
		for (ssize_t i = 0; i < r; i++) {
			if (have < sizeof(carry) - 1)
				carry[have++] = buf[i];
			if (buf[i] == '\n') {
				carry[have] = '\0';
				n += strstr(carry, "info: connection client=") != NULL;
				have = 0;
			}
		}
	}
	return n;
}

/* Every connection closed so far has its line received or counted as
 * dropped: poll (reading fd, which frees the way for queued lines) until
 * received + log_dropped = closed. Returns 1, with the figures. */
static int
all_accounted(int fd, int stream, unsigned *received, uint64_t *dropped, uint64_t closed)
{
	uint64_t end = h_now_ms() + WAIT;

	for (;;) {
		*received += drain_count(fd, stream);
		*dropped = h_stat("log_dropped");
		if (*received + *dropped == closed)
			return 1;
		if (h_now_ms() >= end) {
			diag("received %u + dropped %llu != closed %llu", *received,
			    (unsigned long long)*dropped, (unsigned long long)closed);
			return 0;
		}
		h_nap(20);
	}
}

/* 1 when pid is one of the running workers. */
static int
is_worker(pid_t pid)
{
	pid_t pids[16];
	int n = h_stats_running(pids, 16, 0);

	for (int i = 0; i < n; i++)
		if (pids[i] == pid)
			return 1;
	return 0;
}

/* "<158>Mmm dd hh:mm:ss sluiced[PID]: worker N: info: connection client=C "
 * and no newline: what glibc's syslog(3) sends for LOG_LOCAL3 | LOG_INFO. */
static int
rfc3164_ok(const char *line, const char *client)
{
	char mon[4], rest[64];
	unsigned pri, day, h, m, s, wi;
	int pid, off = 0;
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

	if (sscanf(line, "<%u>%3s %2u %2u:%2u:%2u sluiced[%d]: worker %u: info: %n", &pri, mon,
	        &day, &h, &m, &s, &pid, &wi, &off) != 8 || off == 0) {
		diag("  not RFC 3164: %s", line);
		return 0;
	}
	snprintf(rest, sizeof(rest), "connection client=%s ", client);
	if (pri != (19 << 3 | 6) || strstr(months, mon) == NULL || day < 1 || day > 31 ||
	    line[8] != ' ' || (day < 10 && line[9] != ' ') || !is_worker(pid) ||
	    strncmp(line + off, rest, strlen(rest)) != 0 || strchr(line, '\n') != NULL) {
		diag("  wrong header or body: %s", line);
		return 0;
	}
	return 1;
}

/* The line of path holding needle, polled for; copied into line. */
static int
find_line(const char *path, const char *needle, char *line, size_t len)
{
	uint64_t end = h_now_ms() + WAIT;

	for (;;) {
		char *text = h_read_file(path), *p;

		if (text != NULL && (p = strstr(text, needle)) != NULL) {
			while (p > text && p[-1] != '\n')
				p--;
			snprintf(line, len, "%.*s", (int)strcspn(p, "\n"), p);
			free(text);
			return 1;
		}
		free(text);
		if (h_now_ms() >= end) {
			diag("no line with %s in %s", needle, path);
			return 0;
		}
		h_nap(20);
	}
}

/* SIGHUP the foreground sluiced and wait for the next generation's
 * workers. */
static int
reload(pid_t master)
{
	uint64_t end = h_now_ms() + WAIT;
	uint32_t gen = (uint32_t)h_stats_generation() + 1;

	/* Until the old workers stopped running too: one that has not seen
	 * its SIGQUIT yet still accepts, and logs in the old format. */
	kill(master, SIGHUP);
	while ((h_stats_generation() < gen || h_stats_running(NULL, 0, gen) != WORKERS ||
	           h_stats_running(NULL, 0, 0) != WORKERS) &&
	       h_now_ms() < end)
		h_nap(20);
	return h_stats_generation() >= gen && h_stats_running(NULL, 0, gen) == WORKERS &&
	       h_stats_running(NULL, 0, 0) == WORKERS;
}

static void
write_conf_extra(const char *log, int echo, int lport, const char *extra)
{
	h_write_file(conf,
	    "workers = %d;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { %s };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n%s\n",
	    WORKERS, h_pidfile(), h_statsfile(), log, echo, lport, extra);
}

static void
write_conf(const char *log, int echo, int lport)
{
	write_conf_extra(log, echo, lport, "");
}

/* Poll until the segment shows WORKERS running workers. */
static int
wait_workers(void)
{
	uint64_t end = h_now_ms() + WAIT;

	while (h_stats_running(NULL, 0, 0) != WORKERS && h_now_ms() < end)
		h_nap(20);
	return h_stats_running(NULL, 0, 0) == WORKERS;
}

int
main(void)
{
	char *sock = strdup(h_path("log.sock")), *fifo = strdup(h_path("log.fifo"));
	char *file = strdup(h_path("conn.log")), *rotated = strdup(h_path("conn.log.1"));
	char *bad = strdup(h_path("bad.conf")), *out = NULL, *jail;
	char logset[1024], line[4096], client[64], want[1024], *qtext;
	int echo = h_free_port(), lport = h_free_port(), sfd, ffd, n, qlen = 10, r, pfd[2];
	unsigned received = 0;
	uint64_t dropped, closed;
	pid_t master;

	conf = strdup(h_path("sluiced.conf"));
	atexit(stop_daemon);
	/* Workers (nobody, when we are root) reconnect and reopen by name. */
	if (chmod(h_dir(), 0711) == -1)
		bail("chmod %s: %s", h_dir(), strerror(errno));
	h_echod_start(echo);
	if ((qtext = h_read_file("/proc/sys/net/unix/max_dgram_qlen")) != NULL)
		qlen = atoi(qtext);
	free(qtext);
	if (qlen < 1 || qlen > 1000)
		qlen = 1000;

	/* ---- syslog: well-formed lines, then a socket nobody reads ---- */
	sfd = bind_syslog(sock);
	snprintf(logset, sizeof(logset),
	    "target = \"syslog\"; facility = \"local3\"; connections = true; "
	    "syslog_socket = \"%s\";", sock);
	write_conf(logset, echo, lport);
	r = start_daemon();
	ok(r, "sluiced logs to the test's syslog socket (pid %d)", (int)daemon_pid);
	ok(one_client(lport, client, sizeof(client)), "a client is relayed");
	r = recv_line(sfd, line, sizeof(line), WAIT) > 0;
	ok(r && rfc3164_ok(line, client),
	    "its line arrives as RFC 3164: <158> (local3.info), timestamp, sluiced[worker pid]");
	diag("%s", line);
	received = 1;

	n = qlen + 300;
	ok(round_trips(lport, n) == n,
	    "%d more connections are relayed while nobody reads the log socket", n);
	closed = (uint64_t)n + 1;
	ok(h_wait_stat("closed", closed, WAIT), "all %llu closed", (unsigned long long)closed);
	ok(h_stat("log_dropped") > 0, "the socket filled up: log_dropped = %llu",
	    (unsigned long long)h_stat("log_dropped"));
	r = all_accounted(sfd, 0, &received, &dropped, closed);
	ok(r, "received %u + dropped %llu = %llu connections", received,
	    (unsigned long long)dropped, (unsigned long long)closed);

	/* The syslog daemon restarts (a new socket at the same path):
	 * SIGUSR1 reconnects. */
	close(sfd);
	sfd = bind_syslog(sock);
	kill(daemon_pid, SIGUSR1);
	r = 0;
	for (uint64_t end = h_now_ms() + WAIT; !r && h_now_ms() < end;) {
		if (!one_client(lport, client, sizeof(client)))
			break;
		r = recv_line(sfd, line, sizeof(line), 200) > 0 && strstr(line, client) != NULL;
	}
	ok(r, "after SIGUSR1 the lines reach the new socket");
	close(sfd);
	stop_daemon();

	/* ---- workers in a chroot: the socket was connected before it ---- */
	unlink(h_statsfile());
	jail = strdup(h_path("jail"));
	if (mkdir(jail, 0755) == -1)
		bail("mkdir %s: %s", jail, strerror(errno));
	sfd = bind_syslog(sock);
	snprintf(logset, sizeof(logset),
	    "target = \"syslog\"; facility = \"local3\"; connections = true; "
	    "syslog_socket = \"%s\";", sock);
	snprintf(want, sizeof(want), "user = \"nobody\"; chroot = \"%s\";", jail);
	write_conf_extra(logset, echo, lport, want);
	{
		/* LeakSanitizer reads /proc at exit, which the empty chroot
		 * has not: in a sanitizer build it would only report that. */
		char *saved = getenv("LSAN_OPTIONS") ? strdup(getenv("LSAN_OPTIONS")) : NULL;

		setenv("LSAN_OPTIONS", "detect_leaks=0", 1);
		r = start_daemon();
		if (saved != NULL)
			setenv("LSAN_OPTIONS", saved, 1);
		else
			unsetenv("LSAN_OPTIONS");
		free(saved);
	}
	ok(r, "sluiced runs its workers in a chroot without /dev/log or the socket");
	ok(one_client(lport, client, sizeof(client)), "a client is relayed");
	r = recv_line(sfd, line, sizeof(line), WAIT) > 0;
	ok(r && rfc3164_ok(line, client), "its line reaches the socket outside the chroot");
	close(sfd);
	stop_daemon();

	/* ---- foreground: stderr a pipe nobody reads ---- */
	unlink(h_statsfile());
	if (pipe2(pfd, O_CLOEXEC) == -1)
		bail("pipe: %s", strerror(errno));
	fcntl(pfd[0], F_SETPIPE_SZ, 4096);
	write_conf("target = \"stderr\"; connections = true;", echo, lport);
	{
		char *argv[] = {(char *)h_sluiced(), "-f", "-c", (char *)conf, NULL};

		/* The harness opens the path given for the output: the pipe. */
		snprintf(want, sizeof(want), "/proc/self/fd/%d", pfd[1]);
		master = h_spawn(argv, want);
	}
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	ok(wait_workers(), "sluiced -f with its stderr a pipe runs its workers");
	n = 1000;
	ok(round_trips(lport, n) == n, "%d connections are relayed while nobody reads stderr", n);
	ok(h_wait_stat("closed", (uint64_t)n, WAIT), "all %d closed", n);
	ok(h_stat("log_dropped") > 0, "the pipe filled up: log_dropped = %llu",
	    (unsigned long long)h_stat("log_dropped"));
	received = 0;
	r = all_accounted(pfd[0], 1, &received, &dropped, (uint64_t)n);
	ok(r, "once read: received %u + dropped %llu = %d connections", received,
	    (unsigned long long)dropped, n);
	kill(master, SIGTERM);
	/* Keep reading: the master's own lines still block on the pipe. */
	for (uint64_t end = h_now_ms() + WAIT; h_now_ms() < end;) {
		char buf[4096];
		ssize_t k = read(pfd[0], buf, sizeof(buf));

		if (k == 0)
			break;
		if (k < 0)
			h_nap(10);
	}
	ok(h_wait_exit(master, WAIT, NULL) == 0, "and it stops");
	close(pfd[0]);

	/* ---- a FIFO log file that is never read ---- */
	unlink(h_statsfile());
	if (mkfifo(fifo, 0666) == -1 || chmod(fifo, 0666) == -1)
		bail("mkfifo %s: %s", fifo, strerror(errno));
	/* A reader, so that opening for writing succeeds; the smallest pipe. */
	if ((ffd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1)
		bail("open %s: %s", fifo, strerror(errno));
	fcntl(ffd, F_SETPIPE_SZ, 4096);
	snprintf(logset, sizeof(logset),
	    "target = \"file\"; file = \"%s\"; connections = true;", fifo);
	write_conf(logset, echo, lport);
	r = start_daemon();
	ok(r, "sluiced logs to a FIFO (pid %d)", (int)daemon_pid);
	/* Two workers' queues of 64 KB and the pipe hold about 600 lines. */
	n = 1000;
	ok(round_trips(lport, n) == n, "%d connections are relayed while nobody reads the FIFO",
	    n);
	ok(h_wait_stat("closed", (uint64_t)n, WAIT), "all %d closed", n);
	ok(h_stat("log_dropped") > 0, "the FIFO filled up: log_dropped = %llu",
	    (unsigned long long)h_stat("log_dropped"));
	received = 0;
	r = all_accounted(ffd, 1, &received, &dropped, (uint64_t)n);
	ok(r, "once read: received %u + dropped %llu = %d connections", received,
	    (unsigned long long)dropped, n);
	stop_daemon();
	close(ffd);

	/* ---- a regular file, rotated: SIGUSR1 reopens it ---- */
	unlink(h_statsfile());
	snprintf(logset, sizeof(logset),
	    "target = \"file\"; file = \"%s\"; connections = true;", file);
	write_conf(logset, echo, lport);
	r = start_daemon();
	ok(r, "sluiced logs to a file (pid %d)", (int)daemon_pid);
	ok(one_client(lport, client, sizeof(client)), "a client is relayed");
	snprintf(want, sizeof(want), "connection client=%s ", client);
	ok(find_line(file, want, line, sizeof(line)), "its line is in the file");
	if (rename(file, rotated) == -1)
		bail("rename: %s", strerror(errno));
	kill(daemon_pid, SIGUSR1);
	r = 0;
	for (uint64_t end = h_now_ms() + WAIT; !r && h_now_ms() < end;) {
		if (!one_client(lport, client, sizeof(client)))
			break;
		snprintf(want, sizeof(want), "connection client=%s ", client);
		for (int i = 0; i < 10 && !r; i++, h_nap(20))
			r = h_file_contains(file, want);
	}
	ok(r, "after rotation and SIGUSR1 the lines go to the new file");
	ok(!h_file_contains(rotated, want), "  and not to the rotated one");
	stop_daemon();

	/* ---- log.format: refused unknown field, the classic line, fields, JSON ---- */
	h_write_file(bad,
	    "pid_file = \"%s\";\n"
	    "log = {\n"
	    "  connections = true;\n"
	    "  format = \"$client $bytes_inn\";\n"
	    "};\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    h_pidfile(), echo, lport);
	{
		char *argv[] = {(char *)h_sluiced(), "-t", "-c", bad, NULL};

		snprintf(want, sizeof(want), "%s:4: log.format: unknown field \"$bytes_inn\"", bad);
		r = h_run(argv, &out, WAIT);
		ok(r != 0 && out != NULL && strstr(out, want) != NULL,
		    "sluiced -t refuses an unknown field naming file, line and setting: %s",
		    out ? strtok(out, "\n") : "");
		free(out);
	}

	unlink(h_statsfile());
	write_conf("target = \"stderr\"; connections = true;", echo, lport);
	master = h_sluiced_start(conf, lport, WORKERS);
	ok(one_client(lport, client, sizeof(client)), "a client is relayed");
	snprintf(want, sizeof(want), "connection client=%s ", client);
	if (find_line(h_path("sluiced.log"), want, line, sizeof(line))) {
		unsigned y, mo, d, h, mi, s, ms, wi, ds, dms;
		int pid, off = 0;
		char lst[64], srv[64];
		unsigned long long bi, bo;

		r = sscanf(line,
		    "%4u-%2u-%2uT%2u:%2u:%2u.%3u [%d] worker %u: info: connection client=%*s "
		    "listener=%63s server=%63s start=%*4u-%*2u-%*2uT%*2u:%*2u:%*2u.%*3u "
		    "duration=%u.%3u bytes_in=%llu bytes_out=%llu end=client_closed reason=done%n",
		    &y, &mo, &d, &h, &mi, &s, &ms, &pid, &wi, lst, srv, &ds, &dms, &bi, &bo, &off);
		ok(r == 15 && off == (int)strlen(line) && line[4] == '-' && line[23] == ' ' &&
		       is_worker(pid) && bi == bo && bi > 0,
		    "without log.format the line is the classic one");
		diag("%s", line);
	} else {
		ok(0, "without log.format the line is the classic one");
	}

	write_conf("target = \"stderr\"; connections = true; format = "
	           "\"C=$client IP=$client_ip L=$listener U=$upstream S=$server T=$start "
	           "D=$duration_ms I=$bytes_in O=${bytes_out}B E=$end R=$close_reason W=$worker "
	           "P=$pid $$\";",
	    echo, lport);
	ok(reload(master), "reload to a log.format with every field");
	ok(one_client(lport, client, sizeof(client)), "a client is relayed");
	snprintf(want, sizeof(want), "C=%s IP=127.0.0.2 L=127.0.0.1:%d U=app S=127.0.0.1:%d T=",
	    client, lport, echo);
	if (find_line(h_path("sluiced.log"), want, line, sizeof(line))) {
		unsigned y, mo, d, h, mi, s, ms, wi;
		unsigned long long dur, bi, bo;
		int pid, off = 0;

		r = sscanf(strstr(line, " T=") + 1,
		    "T=%4u-%2u-%2uT%2u:%2u:%2u.%3uZ D=%llu I=%llu O=%lluB E=client_closed R=done "
		    "W=%u P=%d $%n",
		    &y, &mo, &d, &h, &mi, &s, &ms, &dur, &bi, &bo, &wi, &pid, &off);
		ok(r == 12 && strstr(line, " T=") + 1 + off == line + strlen(line) &&
		       strncmp(line, "C=", 2) == 0 && bi == bo && bi > 0 && wi < WORKERS &&
		       is_worker(pid),
		    "the line is the format's, every field filled, nothing before it");
		diag("%s", line);
	} else {
		ok(0, "the line is the format's");
	}

	write_conf("target = \"stderr\"; connections = true; format = \"json\";", echo, lport);
	ok(reload(master), "reload to log.format = \"json\"");
	ok(one_client(lport, client, sizeof(client)), "a client is relayed");
	snprintf(want, sizeof(want), "{\"client\":\"%s\",", client);
	if (find_line(h_path("sluiced.log"), want, line, sizeof(line))) {
		char script[1024], ports[64];
		char *argv[] = {"python3", "-c", script, line, ports, NULL};

		snprintf(ports, sizeof(ports), "%d %d", lport, echo);
		snprintf(script, sizeof(script),
		    "import json, sys\n"
		    "d = json.loads(sys.argv[1])\n"
		    "lp, ep = sys.argv[2].split()\n"
		    "assert d['client_ip'] == '127.0.0.2', d\n"
		    "assert d['listener'] == '127.0.0.1:' + lp, d\n"
		    "assert d['upstream'] == 'app' and d['server'] == '127.0.0.1:' + ep, d\n"
		    "assert d['start'].endswith('Z') and len(d['start']) == 24, d\n"
		    "for k in ('duration_ms', 'bytes_in', 'bytes_out', 'worker', 'pid'):\n"
		    "    assert type(d[k]) is int, k\n"
		    "assert d['bytes_in'] == d['bytes_out'] > 0, d\n"
		    "assert d['end'] == 'client_closed' and d['close_reason'] == 'done', d\n"
		    "print(d['pid'])\n");
		r = h_run(argv, &out, WAIT);
		ok(r == 0 && out != NULL && is_worker((pid_t)atoi(out)),
		    "the JSON line parses, with every field of the right type and value");
		if (r != 0)
			diag("python3: %s", out ? out : "");
		diag("%s", line);
		free(out);
	} else {
		ok(0, "the JSON line parses");
	}

	free(sock);
	free(fifo);
	free(file);
	free(rotated);
	free(bad);
	free(jail);
	done_testing();
	return tap_exit();
}
