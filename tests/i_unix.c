/* SPDX-License-Identifier: BSD-2-Clause */
/* i_unix.c — integration test of UNIX-domain sockets through the real
 * daemon: listeners on socket files (mode, owner and group applied, a stale
 * socket replaced, a regular file or a live socket refused, kept across a
 * reload, removed at stop) and servers behind them (TCP to UNIX, UNIX to
 * TCP, UNIX to UNIX, byte for byte with half-close; a full backlog failing
 * the connect at once; health checks marking one DOWN and UP). PROXY headers
 * across them: v1 UNKNOWN and v2 LOCAL from a UNIX front, the TCP client's
 * addresses to a UNIX server, a header accepted on a UNIX listener and
 * judged by its allow list. Every path is in the test's directory; only
 * loopback TCP; every process it starts is stopped by pid. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "proxy.h"
#include "stats.h"
#include "tap.h"

#define WAIT 10000 /* ms: a generous bound for anything that should be quick */

static char echo_sock[PATH_MAX], front[PATH_MAX], u2u[PATH_MAX], pp_sock[PATH_MAX],
    full_sock[PATH_MAX], pv1[PATH_MAX], pv2[PATH_MAX], pv2t[PATH_MAX], acc[PATH_MAX];
static int tcp_echo, p_tcp2unix, p_v1, p_v2, p_full;
static pid_t unix_echo;

static int
unix_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		bail("path too long for this test: %s", path);
	strcpy(sun->sun_path, path);
	return 0;
}

/* A blocking connection to the socket at path, or -1 with errno. */
static int
unix_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	unix_addr(path, &sun);
	if (fd == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Poll until the socket at path takes a connection. 0, or -1 on timeout. */
static int
unix_wait(const char *path, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	while (h_now_ms() < end) {
		int fd = unix_connect(path);

		if (fd != -1) {
			close(fd);
			return 0;
		}
		h_nap(20);
	}
	return -1;
}

/* A socket the test listens on itself (the PROXY server, the full one). */
static int
unix_listen(const char *path, int backlog)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	unix_addr(path, &sun);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, backlog) == -1)
		bail("listen on %s: %s", path, strerror(errno));
	/* The workers connect as nobody. */
	chmod(path, 0666);
	return fd;
}

static pid_t
unix_echod_start(void)
{
	char arg[PATH_MAX + 8];
	char *argv[] = {getenv("ECHOD"), "-v", "-l", arg, NULL};
	pid_t pid;

	if (argv[0] == NULL)
		bail("ECHOD is not set");
	snprintf(arg, sizeof(arg), "unix:%s", echo_sock);
	pid = h_spawn(argv, h_path("echod-unix.log"));
	if (unix_wait(echo_sock, WAIT) == -1)
		bail("echod does not accept on %s", echo_sock);
	/* The workers and the checker connect as nobody. */
	chmod(echo_sock, 0666);
	return pid;
}

/* Send size pseudo-random bytes on fd, half-close, and read back until EOF:
 * 1 when exactly the same bytes came back, then EOF. */
static int
echo_check(int fd, size_t size, unsigned seed)
{
	unsigned char *out = malloc(size + 1), *in = malloc(size + 1);
	size_t sent = 0, got = 0;
	uint64_t end = h_now_ms() + 20000;
	int good = 0, shut = 0;

	if (out == NULL || in == NULL)
		bail("out of memory");
	for (size_t i = 0; i < size; i++)
		out[i] = (unsigned char)((i * 131u + seed * 7u) >> 3);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (h_now_ms() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN | (sent < size ? POLLOUT : 0)};
		ssize_t n;

		if (sent == size && !shut) {
			shutdown(fd, SHUT_WR);
			shut = 1;
		}
		if (poll(&p, 1, 100) <= 0)
			continue;
		if ((p.revents & POLLOUT) && sent < size) {
			n = send(fd, out + sent, size - sent > 65536 ? 65536 : size - sent,
			    MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(fd, in + got, size + 1 - got);
			if (n == 0) {
				good = got == size && memcmp(in, out, size) == 0;
				break;
			}
			if (n < 0 && errno != EAGAIN) {
				diag("echo: read: %s", strerror(errno));
				break;
			}
			if (n > 0)
				got += (size_t)n;
		}
	}
	if (!good)
		diag("echo: sent %zu of %zu, got %zu back", sent, size, got);
	free(out);
	free(in);
	return good;
}

/* The server row "unix:path" of group: its counters and health. */
static int
server_row(const char *group, const char *path, struct stats_server_counters *c,
    struct stats_health *h)
{
	struct stats_seg seg;
	struct stats_snapshot *sn;
	char err[256], want[PATH_MAX + 8];
	int rc = -1;

	snprintf(want, sizeof(want), "unix:%s", path);
	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return -1;
	if ((sn = stats_snapshot_create(&seg)) != NULL) {
		for (unsigned i = 0; i < sn->nservers; i++) {
			const struct stats_server_entry *e = &seg.servers[sn->servers[i].row];

			if (strcmp(e->upstream, group) != 0 || strcmp(e->address, want) != 0)
				continue;
			if (c != NULL)
				*c = sn->servers[i].c;
			if (h != NULL)
				*h = sn->servers[i].health;
			rc = 0;
		}
		stats_snapshot_destroy(sn);
	}
	stats_detach(&seg);
	return rc;
}

static int
wait_health(const char *group, const char *path, uint32_t state)
{
	uint64_t end = h_now_ms() + WAIT;
	struct stats_health h;

	while (h_now_ms() < end) {
		if (server_row(group, path, NULL, &h) == 0 && h.state == state)
			return 1;
		h_nap(20);
	}
	diag("server %s of %s never reached health state %u", path, group, state);
	return 0;
}

/* Accept sluice's connection on the PROXY server and read a header of
 * versions, then want payload bytes into payload. Returns the header's
 * length (raw bytes in hdr), or -1. */
static int
pp_take(int lfd, int versions, uint8_t *hdr, struct proxy_info *info, char *payload, size_t want)
{
	int fd = h_accept(lfd, WAIT), rc;

	if (fd == -1) {
		diag("no connection on the PROXY server: %s", strerror(errno));
		return -1;
	}
	if ((rc = h_read_proxy(fd, versions, hdr, PROXY_HEADER_MAX, info, WAIT)) == -1)
		goto out;
	if (want > 0 && h_read_n(fd, payload, want, WAIT) != (ssize_t)want) {
		diag("payload missing after the header");
		rc = -1;
	}
out:
	close(fd);
	return rc;
}

static void
write_conf(const char *path, const char *front_mode)
{
	h_write_file(path,
	    "workers = 2;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; connections = true; };\n"
	    "control = { socket = \"%s\"; };\n"
	    "upstreams = (\n"
	    "  { name = \"tcp\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	    "  { name = \"unix\"; servers = ( \"unix:%s\" );\n"
	    "    health = { interval = \"200ms\"; timeout = \"200ms\"; rise = 1; fall = 1; }; },\n"
	    "  { name = \"pp\"; servers = ( \"unix:%s\" ); },\n"
	    "  { name = \"full\"; retries = 0; servers = ( \"unix:%s\" ); }\n"
	    ");\n"
	    "listeners = (\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"unix\"; },\n"
	    "  { listen = \"unix:%s\"; upstream = \"tcp\"; mode = \"%s\"; owner = \"nobody\";\n"
	    "    group = \"%s\"; },\n"
	    "  { listen = \"unix:%s\"; upstream = \"unix\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"pp\"; proxy_protocol = \"v1\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"pp\"; proxy_protocol = \"v2\"; },\n"
	    "  { listen = \"unix:%s\"; upstream = \"pp\"; proxy_protocol = \"v1\"; },\n"
	    "  { listen = \"unix:%s\"; upstream = \"pp\"; proxy_protocol = \"v2\"; },\n"
	    "  { listen = \"unix:%s\"; upstream = \"pp\"; proxy_protocol = \"v2\";\n"
	    "    proxy_tlv = ( { type = 0xE0; value = \"hi\"; } ); },\n"
	    "  { listen = \"unix:%s\"; upstream = \"pp\"; accept_proxy = \"any\";\n"
	    "    proxy_protocol = \"v1\"; allow = ( \"192.0.2.0/24\" ); },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"full\"; }\n"
	    ");\n",
	    h_pidfile(), h_statsfile(), h_path("ctl"), tcp_echo, echo_sock, pp_sock, full_sock, p_tcp2unix, front,
	    front_mode, getgrgid(getpwnam("nobody")->pw_gid)->gr_name, u2u, p_v1, p_v2, pv1, pv2, pv2t,
	    acc, p_full);
}

/* Bytes through each pairing of TCP and UNIX, with half-close. */
static void
test_relay(void)
{
	static const size_t sizes[] = {1, 70000, 1 << 20};
	int fd;

	for (unsigned i = 0; i < 3; i++) {
		fd = h_connect(p_tcp2unix, WAIT);
		ok(fd != -1 && echo_check(fd, sizes[i], i), "TCP to UNIX server: %zu bytes echo "
		                                               "byte for byte, then EOF",
		    sizes[i]);
		close(fd);
		fd = unix_connect(front);
		ok(fd != -1 && echo_check(fd, sizes[i], i + 10),
		    "UNIX listener to TCP server: %zu bytes echo byte for byte, then EOF", sizes[i]);
		close(fd);
		fd = unix_connect(u2u);
		ok(fd != -1 && echo_check(fd, sizes[i], i + 20),
		    "UNIX listener to UNIX server: %zu bytes echo byte for byte, then EOF",
		    sizes[i]);
		close(fd);
	}
}

static void
test_files(void)
{
	const struct passwd *pw = getpwnam("nobody");
	struct stat st;

	ok(lstat(front, &st) == 0 && S_ISSOCK(st.st_mode), "the stale socket file was replaced "
	                                                   "by a listening socket");
	is(st.st_mode & 07777, 0640, "its mode is the configured 0640");
	is(st.st_uid, pw->pw_uid, "its owner is nobody");
	is(st.st_gid, pw->pw_gid, "its group is nobody's");
	ok(lstat(u2u, &st) == 0 && S_ISSOCK(st.st_mode), "a listener without mode has a socket");
	is(st.st_mode & 07777, 0644, "whose mode is 0666 less the master's umask (022)");
	is(st.st_uid, 0, "owned by the master's user");
}

static void
test_proxy(int lfd)
{
	uint8_t hdr[PROXY_HEADER_MAX];
	struct proxy_info info;
	char payload[8];
	int fd, n;

	/* TCP client to a UNIX server: the header names the TCP ends. */
	fd = h_connect(p_v1, WAIT);
	if (fd == -1 || write(fd, "ab", 2) != 2)
		bail("connect to the v1 listener");
	n = pp_take(lfd, PROXY_V1, hdr, &info, payload, 2);
	{
		char want[128];

		snprintf(want, sizeof(want), "PROXY TCP4 127.0.0.1 127.0.0.1 %u %d\r\n",
		    h_local_port(fd), p_v1);
		ok(n > 0 && (size_t)n == strlen(want) && memcmp(hdr, want, (size_t)n) == 0,
		    "TCP to UNIX server, v1: the header carries the TCP client's addresses");
		if (n > 0)
			diag("  sent: %.*s", n - 2, hdr);
	}
	ok(n > 0 && memcmp(payload, "ab", 2) == 0, "and the client's bytes follow it");
	close(fd);

	fd = h_connect(p_v2, WAIT);
	if (fd == -1 || write(fd, "cd", 2) != 2)
		bail("connect to the v2 listener");
	n = pp_take(lfd, PROXY_V2, hdr, &info, payload, 2);
	ok(n == 28 && hdr[12] == 0x21 && hdr[13] == 0x11 && !info.local &&
	        ntohs(((struct sockaddr_in *)&info.src)->sin_port) == h_local_port(fd) &&
	        ntohs(((struct sockaddr_in *)&info.dst)->sin_port) == p_v2,
	    "TCP to UNIX server, v2: PROXY TCP4 with the client's address and port");
	ok(n > 0 && memcmp(payload, "cd", 2) == 0, "and the client's bytes follow it");
	close(fd);

	/* A UNIX client has no address: v1 UNKNOWN, v2 LOCAL. */
	fd = unix_connect(pv1);
	if (fd == -1 || write(fd, "ef", 2) != 2)
		bail("connect to %s", pv1);
	n = pp_take(lfd, PROXY_V1, hdr, &info, payload, 2);
	ok(n == 15 && memcmp(hdr, "PROXY UNKNOWN\r\n", 15) == 0,
	    "UNIX front, v1: the header is \"PROXY UNKNOWN\"");
	ok(n > 0 && memcmp(payload, "ef", 2) == 0, "and the client's bytes follow it");
	close(fd);

	fd = unix_connect(pv2);
	if (fd == -1 || write(fd, "gh", 2) != 2)
		bail("connect to %s", pv2);
	n = pp_take(lfd, PROXY_V2, hdr, &info, payload, 2);
	ok(n == 16 && hdr[12] == 0x20 && hdr[13] == 0 && info.local,
	    "UNIX front, v2: the header is LOCAL with no addresses");
	ok(n > 0 && memcmp(payload, "gh", 2) == 0, "and the client's bytes follow it");
	close(fd);

	/* With the listener's own TLVs (the header built another way): still
	 * LOCAL, and the TLV follows the fixed part. */
	fd = unix_connect(pv2t);
	if (fd == -1 || write(fd, "kl", 2) != 2)
		bail("connect to %s", pv2t);
	n = pp_take(lfd, PROXY_V2, hdr, &info, payload, 2);
	ok(n == 21 && hdr[12] == 0x20 && hdr[13] == 0 && info.local && hdr[16] == 0xE0 &&
	        hdr[17] == 0 && hdr[18] == 2 && memcmp(hdr + 19, "hi", 2) == 0,
	    "UNIX front, v2 with proxy_tlv: LOCAL, carrying the configured TLV (%d bytes)", n);
	ok(n > 0 && memcmp(payload, "kl", 2) == 0, "and the client's bytes follow it");
	close(fd);

	/* A header accepted on a UNIX listener names the real client. */
	fd = unix_connect(acc);
	{
		const char in[] = "PROXY TCP4 192.0.2.7 192.0.2.1 5555 80\r\nij";

		if (fd == -1 || write(fd, in, sizeof(in) - 1) != (ssize_t)sizeof(in) - 1)
			bail("connect to %s", acc);
	}
	n = pp_take(lfd, PROXY_V1, hdr, &info, payload, 2);
	ok(n > 0 && memcmp(hdr, "PROXY TCP4 192.0.2.7 192.0.2.1 5555 80\r\n", (size_t)n) == 0,
	    "accept_proxy on a UNIX listener: the client its header names goes on");
	ok(n > 0 && memcmp(payload, "ij", 2) == 0, "and its bytes follow");
	close(fd);

	/* The allow list judges the header's address. */
	{
		uint64_t before = h_stat("refused_acl_denied");
		const char in[] = "PROXY TCP4 198.51.100.7 192.0.2.1 5555 80\r\nkl";

		fd = unix_connect(acc);
		if (fd == -1 || write(fd, in, sizeof(in) - 1) != (ssize_t)sizeof(in) - 1)
			bail("connect to %s", acc);
		ok(h_wait_closed(fd, WAIT), "a header naming a client outside allow is closed");
		ok(h_wait_stat("refused_acl_denied", before + 1, WAIT),
		    "and counted as refused_acl_denied");
		close(fd);
	}
	{
		uint8_t local[16];
		uint64_t before = h_stat("refused_acl_denied");

		/* LOCAL: no IP address, so no network of allow holds it. */
		n = proxy_build(PROXY_V2, NULL, NULL, local, sizeof(local));
		fd = unix_connect(acc);
		if (n != 16 || fd == -1 || write(fd, local, 16) != 16)
			bail("LOCAL header to %s", acc);
		ok(h_wait_closed(fd, WAIT) && h_wait_stat("refused_acl_denied", before + 1, WAIT),
		    "a LOCAL header on a UNIX listener with allow is refused (no IP address)");
		close(fd);
	}
	{
		struct pollfd p = {.fd = lfd, .events = POLLIN};

		ok(poll(&p, 1, 0) == 0, "no refused client reached the server");
	}
}

/* A UNIX server whose backlog is full: the connect fails at once (EAGAIN),
 * counted, and the client is closed, never left hanging. */
static void
test_full(int lfd)
{
	struct stats_server_counters c;
	int a, b;

	(void)lfd;
	a = h_connect(p_full, WAIT);
	if (a == -1 || write(a, "x", 1) != 1)
		bail("connect to the full listener");
	{
		uint64_t end = h_now_ms() + WAIT;

		while (h_now_ms() < end && (server_row("full", full_sock, &c, NULL) != 0 ||
		                               c.connects < 1))
			h_nap(20);
	}
	ok(c.connects == 1 && c.connect_failures == 0,
	    "full: the first connection fills the backlog of one");
	b = h_connect(p_full, WAIT);
	if (b == -1)
		bail("connect to the full listener");
	ok(h_wait_closed(b, WAIT), "full: the next client is closed, not left waiting");
	ok(server_row("full", full_sock, &c, NULL) == 0 && c.connect_failures >= 1,
	    "full: counted as a connect failure (%llu)", (unsigned long long)c.connect_failures);
	ok(h_wait_file_contains(h_path("sluiced.log"), "Resource temporarily unavailable", WAIT),
	    "full: the log says why");
	close(a);
	close(b);
}

static void
test_logs(const char *conf)
{
	char *argv[] = {(char *)h_sluicestat(), "-c", (char *)conf, NULL};
	char *argj[] = {(char *)h_sluicestat(), "-c", (char *)conf, "--json", NULL};
	char *argp[] = {(char *)h_sluicestat(), "-c", (char *)conf, "--prometheus", NULL};
	char want[PATH_MAX + 32], *out = NULL;
	int rc;

	snprintf(want, sizeof(want), "client=unix: listener=unix:%s", front);
	ok(h_wait_file_contains(h_path("sluiced.log"), want, WAIT),
	    "the connection log writes a UNIX client as \"unix:\"");
	snprintf(want, sizeof(want), "unix:%s", front);
	rc = h_run(argv, &out, WAIT);
	ok(rc == 0 && out != NULL && strstr(out, want) != NULL,
	    "sluicestat lists the UNIX listener by its path");
	snprintf(want, sizeof(want), "unix:%s", echo_sock);
	ok(rc == 0 && out != NULL && strstr(out, want) != NULL,
	    "and the UNIX server by its path");
	free(out);
	out = NULL;
	rc = h_run(argj, &out, WAIT);
	ok(rc == 0 && out != NULL && strstr(out, want) != NULL, "sluicestat --json too");
	free(out);
	out = NULL;
	rc = h_run(argp, &out, WAIT);
	ok(rc == 0 && out != NULL && strstr(out, want) != NULL, "sluicestat --prometheus too");
	free(out);
	out = NULL;

	/* sluicectl's session list names a UNIX client "unix:". */
	{
		char *argc[] = {getenv("SLUICECTL"), "-S", (char *)h_path("ctl"), "show", "sessions",
		    NULL};
		char *argcj[] = {getenv("SLUICECTL"), "-S", (char *)h_path("ctl"), "--json", "show",
		    "sessions", NULL};
		int fd = unix_connect(front);

		if (argc[0] == NULL)
			bail("SLUICECTL is not set");
		ok(fd != -1 && h_round_trip(fd, WAIT) == 0, "a UNIX client is open");
		rc = h_run(argc, &out, WAIT);
		snprintf(want, sizeof(want), "unix:%s", front);
		ok(rc == 0 && out != NULL && strstr(out, " unix: ") != NULL &&
		        strstr(out, want) != NULL,
		    "sluicectl show sessions lists it as unix: on its listener");
		if (rc != 0 || out == NULL || strstr(out, " unix: ") == NULL)
			diag("%s", out != NULL ? out : "(no output)");
		free(out);
		out = NULL;
		rc = h_run(argcj, &out, WAIT);
		ok(rc == 0 && out != NULL && strstr(out, "\"client\":\"unix:\"") != NULL,
		    "and --json too");
		free(out);
		close(fd);
	}
}

/* A reload keeps the socket (same inode), its open connections and its
 * clients; a changed mode is applied to it. */
static void
test_reload(const char *conf, pid_t master)
{
	struct stat before, after;
	uint64_t gen = h_stats_generation(), end;
	int old = unix_connect(front), fresh;

	ok(old != -1 && h_round_trip(old, WAIT) == 0, "reload: a connection made before works");
	lstat(front, &before);
	write_conf(conf, "0660");
	kill(master, SIGHUP);
	end = h_now_ms() + 20000;
	while (h_now_ms() < end && h_stats_generation() <= gen)
		h_nap(20);
	ok(h_stats_generation() > gen, "reload: a new generation runs");
	ok(h_wait_file_contains(h_path("sluiced.log"), "reload", WAIT), "reload: logged");
	{
		pid_t pids[8];

		end = h_now_ms() + 20000;
		while (h_now_ms() < end && h_stats_running(pids, 8, (uint32_t)h_stats_generation()) < 2)
			h_nap(20);
	}
	ok(lstat(front, &after) == 0 && after.st_ino == before.st_ino,
	    "reload: the socket file is the same (kept, not made anew)");
	is(after.st_mode & 07777, 0660, "reload: the new mode is applied to the kept socket");
	ok(h_round_trip(old, WAIT) == 0, "reload: the connection made before still works");
	fresh = unix_connect(front);
	ok(fresh != -1 && echo_check(fresh, 5000, 99), "reload: a new connection is relayed");
	close(fresh);
	close(old);
}

static void
test_health(void)
{
	int fd;

	ok(wait_health("unix", echo_sock, STATS_HEALTH_UP), "health: the UNIX server is UP");
	h_kill(unix_echo);
	unlink(echo_sock);
	ok(wait_health("unix", echo_sock, STATS_HEALTH_DOWN),
	    "health: with its socket gone it is DOWN");
	{
		char want[PATH_MAX + 64];

		snprintf(want, sizeof(want), "server unix/unix:%s is DOWN: connect: No such file",
		    echo_sock);
		ok(h_wait_file_contains(h_path("sluiced.log"), want, WAIT),
		    "health: the log says why (no such file)");
	}
	fd = h_connect(p_tcp2unix, WAIT);
	ok(fd == -1 || h_wait_closed(fd, WAIT), "health: a client is not relayed meanwhile");
	if (fd != -1)
		close(fd);
	unix_echo = unix_echod_start();
	ok(wait_health("unix", echo_sock, STATS_HEALTH_UP), "health: back, it is UP again");
	fd = h_connect(p_tcp2unix, WAIT);
	ok(fd != -1 && echo_check(fd, 1000, 5), "health: and relays again");
	close(fd);
}

/* Another sluiced on the same paths: refused, leaving what is there. */
static void
test_refusals(void)
{
	char conf[PATH_MAX], regular[PATH_MAX], *out = NULL;
	char *argv[] = {(char *)h_sluiced(), "-f", "-c", conf, NULL};
	char *argt[] = {(char *)h_sluiced(), "-t", "-c", conf, NULL};
	struct stat st;
	char *text;
	int rc, port = h_free_port();

	snprintf(conf, sizeof(conf), "%s", h_path("other.conf"));
	snprintf(regular, sizeof(regular), "%s", h_path("regular"));
	h_write_file(regular, "precious\n");
	for (int i = 0; i < 2; i++) {
		h_write_file(conf,
		    "workers = 1;\npid_file = \"%s\";\nstats_file = \"%s\";\n"
		    "log = { target = \"stderr\"; };\n"
		    "upstreams = ({ name = \"a\"; servers = (\"127.0.0.1:%d\"); });\n"
		    "listeners = ({ listen = \"127.0.0.1:%d\"; upstream = \"a\"; },\n"
		    "  { listen = \"unix:%s\"; upstream = \"a\"; });\n",
		    h_path("other.pid"), h_path("other.stats"), tcp_echo, port,
		    i == 0 ? regular : front);
		rc = h_run(argv, &out, 20000);
		ok(rc != 0 && out != NULL &&
		        strstr(out, i == 0 ? "exists and is not a socket"
		                           : "another process listens on") != NULL,
		    "a second sluiced refuses %s", i == 0 ? "a regular file at the path"
		                                          : "a socket another process listens on");
		if (out != NULL && rc == 0)
			diag("%s", out);
		free(out);
		out = NULL;
	}
	text = h_read_file(regular);
	ok(text != NULL && strcmp(text, "precious\n") == 0 && lstat(regular, &st) == 0 &&
	        S_ISREG(st.st_mode),
	    "the regular file is untouched");
	free(text);
	{
		int fd = unix_connect(front);

		ok(fd != -1 && echo_check(fd, 100, 1), "the live listener still serves");
		close(fd);
	}

	/* -t refuses what the master could not set up. */
	h_write_file(conf,
	    "upstreams = ({ name = \"a\"; servers = (\"127.0.0.1:%d\"); });\n"
	    "listeners = ({ listen = \"unix:%s\"; upstream = \"a\";\n"
	    "  owner = \"no-such-user-sluice\"; });\n",
	    tcp_echo, h_path("t.sock"));
	rc = h_run(argt, &out, 20000);
	{
		char want[PATH_MAX + 64];

		snprintf(want, sizeof(want), "%s:3: listeners[0].owner: unknown user", conf);
		ok(rc != 0 && out != NULL && strstr(out, want) != NULL,
		    "-t refuses an unknown owner with FILE:LINE");
	}
	free(out);
	out = NULL;
	h_write_file(conf,
	    "upstreams = ({ name = \"a\"; servers = (\"unix:/%0120d\"); });\n"
	    "listeners = ({ listen = \"127.0.0.1:%d\"; upstream = \"a\"; });\n",
	    0, port);
	rc = h_run(argt, &out, 20000);
	{
		char want[PATH_MAX + 64];

		snprintf(want, sizeof(want), "%s:1: upstreams[0].servers[0]: invalid address", conf);
		ok(rc != 0 && out != NULL && strstr(out, want) != NULL &&
		        strstr(out, "at most 107 bytes") != NULL,
		    "-t refuses a server path too long for sun_path");
	}
	free(out);
	ok(lstat(h_path("t.sock"), &st) == -1 && errno == ENOENT, "-t created no socket file");
}

/* Send a PROXY header on a new connection to path, then echo a byte:
 * 1 when the client is served, 0 when it is closed. *fd keeps it open. */
static int
proxied(const char *path, const void *hdr, size_t len, int *fd)
{
	*fd = unix_connect(path);
	if (*fd == -1 || write(*fd, hdr, len) != (ssize_t)len)
		bail("PROXY header to %s: %s", path, strerror(errno));
	return h_round_trip(*fd, WAIT) == 0;
}

/* max_connections_per_source on a UNIX listener counts the addresses PROXY
 * headers name (one worker: the count is per worker); LOCAL names none,
 * and is not counted. */
static void
test_per_source(void)
{
	const char a[] = "PROXY TCP4 192.0.2.9 192.0.2.1 5555 80\r\n";
	const char b[] = "PROXY TCP4 192.0.2.10 192.0.2.1 5555 80\r\n";
	char conf[PATH_MAX], sock[PATH_MAX];
	uint8_t local[16];
	int port = h_free_port(), fd[6];
	uint64_t refused;
	pid_t pid;
	int status;

	snprintf(conf, sizeof(conf), "%s", h_path("ps.conf"));
	snprintf(sock, sizeof(sock), "%s", h_path("ps.sock"));
	h_write_file(conf,
	    "workers = 1;\npid_file = \"%s\";\nstats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "upstreams = ({ name = \"a\"; servers = (\"127.0.0.1:%d\"); });\n"
	    "listeners = ({ listen = \"127.0.0.1:%d\"; upstream = \"a\"; },\n"
	    "  { listen = \"unix:%s\"; upstream = \"a\"; accept_proxy = \"any\";\n"
	    "    max_connections_per_source = 1; });\n",
	    h_pidfile(), h_statsfile(), tcp_echo, port, sock);
	pid = h_sluiced_start(conf, port, 1);
	if (unix_wait(sock, WAIT) == -1)
		bail("%s does not accept", sock);
	if (proxy_build(PROXY_V2, NULL, NULL, local, sizeof(local)) != 16)
		bail("proxy_build LOCAL");
	ok(proxied(sock, a, sizeof(a) - 1, &fd[0]), "per source: a first client of 192.0.2.9");
	refused = h_stat("refused_per_source_limit");
	ok(!proxied(sock, a, sizeof(a) - 1, &fd[1]) &&
	        h_wait_stat("refused_per_source_limit", refused + 1, WAIT),
	    "per source: a second client the header names 192.0.2.9 is refused");
	ok(proxied(sock, b, sizeof(b) - 1, &fd[2]), "per source: 192.0.2.10 is another source");
	ok(proxied(sock, local, sizeof(local), &fd[3]) &&
	        proxied(sock, local, sizeof(local), &fd[4]),
	    "per source: LOCAL headers name no source and are not counted");
	close(fd[0]);
	close(fd[1]);
	{
		uint64_t end = h_now_ms() + WAIT;
		int served = 0;

		/* The close reaches the worker in its own time. */
		while (!served && h_now_ms() < end) {
			served = proxied(sock, a, sizeof(a) - 1, &fd[5]);
			close(fd[5]);
			if (!served)
				h_nap(50);
		}
		ok(served, "per source: once the first closed, 192.0.2.9 is served again");
	}
	for (int i = 2; i < 5; i++)
		close(fd[i]);
	kill(pid, SIGTERM);
	ok(h_wait_exit(pid, 20000, &status) == 0 && WIFEXITED(status) &&
	        WEXITSTATUS(status) == 0 && access(sock, F_OK) == -1,
	    "per source: sluiced stops and removes its socket file");
}

/* Copy file from to path to (by a rename, as a fresh build would be). */
static void
copy_file(const char *from, const char *to, mode_t mode)
{
	char tmp[PATH_MAX + 8], buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	ssize_t n;

	snprintf(tmp, sizeof(tmp), "%s.new", to);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (in == -1 || out == -1)
		bail("copy %s: %s", from, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			bail("copy %s: %s", from, strerror(errno));
	if (n < 0 || close(out) != 0 || chmod(tmp, mode) != 0 || rename(tmp, to) != 0)
		bail("copy %s: %s", from, strerror(errno));
	close(in);
}

static pid_t
wait_new_master(pid_t old, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	while (h_now_ms() < end) {
		pid_t now = h_pidfile_pid();

		if (now > 0 && now != old && h_wait_exit(old, 0, NULL) == 0)
			return now;
		h_nap(20);
	}
	return 0;
}

/* A hot upgrade takes the UNIX listener over: same socket file, its
 * connections handed over, the old master leaving the file to the new
 * one; a new master that fails to start leaves it to the old one. */
static void
test_upgrade(void)
{
	char bin[PATH_MAX], real[PATH_MAX], conf[PATH_MAX], bad[PATH_MAX], sock[PATH_MAX],
	    regular[PATH_MAX], lines[2 * PATH_MAX];
	char *argv[] = {bin, "-f", "-c", conf, NULL};
	int port = h_free_port(), idle, fd;
	struct stat before, st;
	pid_t old, now;

	snprintf(bin, sizeof(bin), "%s", h_path("sluiced"));
	snprintf(real, sizeof(real), "%s", h_path("sluiced.real"));
	snprintf(conf, sizeof(conf), "%s", h_path("up.conf"));
	snprintf(bad, sizeof(bad), "%s", h_path("up-bad.conf"));
	snprintf(sock, sizeof(sock), "%s", h_path("up.sock"));
	snprintf(regular, sizeof(regular), "%s", h_path("up-regular"));
	copy_file(h_sluiced(), bin, 0755);
	copy_file(h_sluiced(), real, 0755);
	snprintf(lines, sizeof(lines),
	    "workers = 1;\npid_file = \"%s\";\nstats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "upstreams = ({ name = \"a\"; servers = (\"127.0.0.1:%d\"); });\n"
	    "listeners = ({ listen = \"127.0.0.1:%d\"; upstream = \"a\"; },\n"
	    "  { listen = \"unix:%s\"; upstream = \"a\"; mode = \"0600\"; }",
	    h_pidfile(), h_statsfile(), tcp_echo, port, sock);
	h_write_file(conf, "%s);\n", lines);
	/* The same, and a listener the new master cannot open. */
	h_write_file(regular, "not a socket\n");
	h_write_file(bad, "%s,\n  { listen = \"unix:%s\"; upstream = \"a\"; });\n", lines,
	    regular);

	setenv("SLUICE_TEST_UPGRADE_DEADLINE_MS", "8000", 1);
	old = h_spawn(argv, h_path("upgrade.log"));
	unsetenv("SLUICE_TEST_UPGRADE_DEADLINE_MS");
	if (h_wait_port(port, WAIT) != 0 || unix_wait(sock, WAIT) != 0)
		bail("the upgrade test's sluiced did not start");
	{
		uint64_t end = h_now_ms() + WAIT;

		while (h_now_ms() < end && h_pidfile_pid() != old)
			h_nap(20);
	}
	idle = unix_connect(sock);
	ok(idle != -1 && h_round_trip(idle, WAIT) == 0, "upgrade: a UNIX client is served");
	lstat(sock, &before);

	/* The new binary passes -t, then starts on a config it cannot open. */
	h_write_file(h_path("script.new"),
	    "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = -t ] && exec %s \"$@\"; done\n"
	    "exec %s -f -c %s\n",
	    real, real, bad);
	if (chmod(h_path("script.new"), 0755) != 0 || rename(h_path("script.new"), bin) != 0)
		bail("install the script: %s", strerror(errno));
	kill(old, SIGUSR2);
	ok(h_wait_file_contains(h_path("upgrade.log"), "upgrade failed, this master keeps serving",
	       20000),
	    "upgrade: a new master that cannot open its listeners fails");
	ok(h_wait_file_contains(h_path("upgrade.log"), "exists and is not a socket", WAIT),
	    "upgrade: (it said why)");
	ok(lstat(sock, &st) == 0 && st.st_ino == before.st_ino,
	    "upgrade: the failed master left the old one's socket file");
	fd = unix_connect(sock);
	ok(fd != -1 && echo_check(fd, 1000, 3) && h_round_trip(idle, WAIT) == 0,
	    "upgrade: the old master serves on, new and old connections");
	close(fd);

	copy_file(real, bin, 0755);
	kill(old, SIGUSR2);
	now = wait_new_master(old, 40000);
	ok(now != 0, "upgrade: a new master (%d) replaced %d", (int)now, (int)old);
	ok(lstat(sock, &st) == 0 && st.st_ino == before.st_ino && (st.st_mode & 0777) == 0600,
	    "upgrade: the old master left the socket file, which the new one took over");
	ok(h_round_trip(idle, WAIT) == 0, "upgrade: the connection made before works");
	fd = unix_connect(sock);
	ok(fd != -1 && echo_check(fd, 100000, 4), "upgrade: the new master relays new clients");
	close(fd);
	close(idle);
	/* Not our child, and not h_sluiced() (a copy): by pid, polled. */
	if (now > 0)
		kill(now, SIGTERM);
	{
		uint64_t end = h_now_ms() + 20000;
		int gone = 0;

		/* h_wait_exit reaps it should it be our zombie, else polls. */
		while (now > 0 && !gone && h_now_ms() < end)
			if (!(gone = h_wait_exit(now, 0, NULL) == 0))
				h_nap(20);
		ok(gone, "upgrade: the new master stops on SIGTERM");
		if (now > 0 && !gone)
			kill(now, SIGKILL);
	}
	ok(lstat(sock, &st) == -1 && errno == ENOENT,
	    "upgrade: the new master removes the socket file when it stops");
}

int
main(void)
{
	static char conf[PATH_MAX]; /* h_path's buffers are reused */
	int pp, full;
	pid_t master, tcp_echod;
	struct stat st;
	int status;

	umask(022);
	/* Workers run as nobody: they must reach the servers' sockets here. */
	chmod(h_dir(), 0711);
	snprintf(echo_sock, sizeof(echo_sock), "%s", h_path("echo.sock"));
	snprintf(front, sizeof(front), "%s", h_path("front.sock"));
	snprintf(u2u, sizeof(u2u), "%s", h_path("u2u.sock"));
	snprintf(pp_sock, sizeof(pp_sock), "%s", h_path("pp.sock"));
	snprintf(full_sock, sizeof(full_sock), "%s", h_path("full.sock"));
	snprintf(pv1, sizeof(pv1), "%s", h_path("pv1.sock"));
	snprintf(pv2, sizeof(pv2), "%s", h_path("pv2.sock"));
	snprintf(pv2t, sizeof(pv2t), "%s", h_path("pv2t.sock"));
	snprintf(acc, sizeof(acc), "%s", h_path("acc.sock"));
	tcp_echo = h_free_port();
	p_tcp2unix = h_free_port();
	p_v1 = h_free_port();
	p_v2 = h_free_port();
	p_full = h_free_port();
	if (getpwnam("nobody") == NULL || getgrgid(getpwnam("nobody")->pw_gid) == NULL)
		bail("no user nobody with a group");

	tcp_echod = h_echod_start(tcp_echo);
	unix_echo = unix_echod_start();
	pp = unix_listen(pp_sock, 16);
	full = unix_listen(full_sock, 0);
	/* A dead master's socket file: bound, never listened on, closed. */
	{
		struct sockaddr_un sun;
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		unix_addr(front, &sun);
		if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
			bail("stale socket: %s", strerror(errno));
		close(fd);
	}
	snprintf(conf, sizeof(conf), "%s", h_path("unix.conf"));
	write_conf(conf, "0640");
	master = h_sluiced_start(conf, p_tcp2unix, 2);
	if (unix_wait(front, WAIT) == -1 || unix_wait(u2u, WAIT) == -1)
		bail("the UNIX listeners do not accept");

	test_files();
	test_relay();
	test_proxy(pp);
	test_full(full);
	test_logs(conf);
	test_reload(conf, master);
	test_health();
	test_refusals();

	/* A stop removes the socket files sluiced made, and only those. */
	kill(master, SIGTERM);
	ok(h_wait_exit(master, 20000, &status) == 0 && WIFEXITED(status) &&
	        WEXITSTATUS(status) == 0,
	    "sluiced stops on SIGTERM");
	ok(lstat(front, &st) == -1 && errno == ENOENT && lstat(u2u, &st) == -1 &&
	        lstat(pv1, &st) == -1 && lstat(pv2, &st) == -1 && lstat(acc, &st) == -1,
	    "stop: every UNIX listener's socket file is removed");
	ok(lstat(echo_sock, &st) == 0 && lstat(pp_sock, &st) == 0,
	    "stop: the servers' socket files (not sluiced's) are left");

	test_per_source();
	test_upgrade();

	close(pp);
	close(full);
	h_kill(unix_echo);
	h_kill(tcp_echod);
	done_testing();
	return tap_exit();
}
