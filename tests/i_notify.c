/* SPDX-License-Identifier: BSD-2-Clause */
/* i_notify.c — integration test of the systemd notify protocol: the test
 * plays systemd, binding the datagram socket named by $NOTIFY_SOCKET, and
 * checks READY=1 comes only once the workers run and from the master,
 * RELOADING=1 then READY=1 around each reload (a failed one saying why in
 * STATUS=), STATUS= lines with the connections open, STOPPING=1, the abstract
 * namespace, and that a socket nobody listens on changes nothing. Runs
 * sluiced and echod as children of this test on loopback ports. */
#include <errno.h>
#include <poll.h>
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
#include "stats.h"
#include "tap.h"

static int nfd = -1;          /* our end: the socket systemd would bind */
static pid_t from_other;      /* a sender that was not the master, or 0 */
static pid_t master;

/* Bind a datagram socket at path (or, when abstract, at "\0" + path) that
 * receives the sender's credentials, as systemd's does. */
static int
notify_bind(const char *path, int abstract)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd, one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path + (abstract ? 1 : 0), sizeof(sa.sun_path) - 1, "%s", path);
	/* One more byte: the leading NUL of an abstract name, or the path's
	 * terminating one. */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&sa, len) == -1) {
		printf("Bail out! notify socket %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

/* One datagram within timeout_ms into buf (NUL-terminated); its sender's
 * pid goes to *pid. Returns 1, or 0 on timeout. */
static int
notify_recv(char *buf, size_t len, pid_t *pid, int timeout_ms)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} c;
	struct pollfd pfd = { .fd = nfd, .events = POLLIN };
	struct iovec iov = { .iov_base = buf, .iov_len = len - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
		.msg_controllen = sizeof(c.buf) };
	struct cmsghdr *cm;
	ssize_t n;

	*pid = 0;
	if (poll(&pfd, 1, timeout_ms) != 1)
		return 0;
	n = recvmsg(nfd, &mh, MSG_DONTWAIT);
	if (n < 0)
		return 0;
	buf[n] = '\0';
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS) {
			struct ucred cred;

			memcpy(&cred, CMSG_DATA(cm), sizeof(cred));
			*pid = cred.pid;
		}
	if (master != 0 && *pid != master)
		from_other = *pid;
	return 1;
}

/* 1 when the datagram holds the assignment line `line` (e.g. "READY=1"). */
static int
has_line(const char *msg, const char *line)
{
	size_t len = strlen(line);

	for (const char *p = msg; p != NULL; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, line, len) == 0 && (p[len] == '\n' || p[len] == '\0'))
			return 1;
	return 0;
}

/* Receive datagrams until one holds `line` and (when not NULL) `needle`,
 * within timeout_ms; it is left in out. Every datagram on the way that
 * holds `not_before` counts into *early (may be NULL). Returns 1 or 0. */
static int
wait_msg(const char *line, const char *needle, char *out, size_t len, int timeout_ms,
    const char *not_before, int *early)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	pid_t pid;

	for (;;) {
		uint64_t now = h_now_ms();

		if (now >= end)
			return 0;
		if (!notify_recv(out, len, &pid, (int)(end - now)))
			continue;
		if ((line == NULL || has_line(out, line)) &&
		    (needle == NULL || strstr(out, needle) != NULL))
			return 1;
		if (early != NULL && not_before != NULL && has_line(out, not_before))
			(*early)++;
	}
}

/* The value of KEY= in msg, or "" (static buffer). */
static const char *
value_of(const char *msg, const char *key)
{
	static char v[512];
	size_t klen = strlen(key);

	v[0] = '\0';
	for (const char *p = msg; p != NULL; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			snprintf(v, sizeof(v), "%.*s", (int)strcspn(p + klen + 1, "\n"),
			    p + klen + 1);
			break;
		}
	return v;
}

static void
write_conf(const char *path, int workers, int lport, int bport, const char *line7)
{
	h_write_file(path,
	    "# i_notify\n"
	    "workers = %d;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "timeouts = { drain = \"1s\"; };\n"
	    "%s\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    workers, h_pidfile(), h_statsfile(), line7, bport, lport);
}

static pid_t
start(const char *conf)
{
	char *argv[] = { (char *)h_sluiced(), "-f", "-c", (char *)conf, NULL };

	return h_spawn(argv, h_path("sluiced.log"));
}

/* Stop with SIGTERM; 1 when STOPPING=1 came and the master exited 0. */
static int
stop_and_check(pid_t pid)
{
	char msg[1024];
	int got, status = -1;

	kill(pid, SIGTERM);
	got = wait_msg("STOPPING=1", NULL, msg, sizeof(msg), 20000, NULL, NULL);
	if (h_wait_exit(pid, 20000, &status) == -1)
		return 0;
	return got && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int
main(void)
{
	int lport = h_free_port(), bport = h_free_port(), early = 0, fd, status;
	const char *conf = strdup(h_path("notify.conf"));
	char msg[1024], abstract[64];
	pid_t pids[8], pid;

	plan(20);
	h_echod_start(bport);
	write_conf(conf, 2, lport, bport, "");

	/* --- READY=1 waits for the workers ------------------------------------
	 * While the fault injector makes every worker's set-up fail for want of
	 * descriptors (EMFILE: retried with back-off), none runs; READY=1 must
	 * not come. Once the fault is gone, it comes with every worker running. */
	/* Workers (nobody, when we are root) read the injector's file. */
	if (chmod(h_dir(), 0711) == -1) {
		printf("Bail out! chmod %s: %s\n", h_dir(), strerror(errno));
		return 1;
	}
	nfd = notify_bind(h_path("notify.sock"), 0);
	setenv("NOTIFY_SOCKET", h_path("notify.sock"), 1);
	h_write_file(h_path("epoll.errno"), "%d\n", EMFILE);
	h_preload("faultshim.so");
	setenv("FAULTSHIM_EPOLL_FILE", h_path("epoll.errno"), 1);
	master = pid = start(conf);
	h_preload(NULL);
	unsetenv("FAULTSHIM_EPOLL_FILE");
	unsetenv("NOTIFY_SOCKET");
	{
		uint64_t end = h_now_ms() + 1500;
		int ready = 0, running = 0;
		pid_t from;

		while (h_now_ms() < end) {
			if (notify_recv(msg, sizeof(msg), &from, 50) && has_line(msg, "READY=1"))
				ready = 1;
			running |= h_stats_running(NULL, 0, 1) == 2;
		}
		ok(!ready && !running, "no READY=1 while the workers cannot start (ready %d, "
		                       "all running %d)", ready, running);
	}
	unlink(h_path("epoll.errno"));
	ok(wait_msg("READY=1", NULL, msg, sizeof(msg), 30000, NULL, NULL),
	    "READY=1 once the workers can start");
	is(h_stats_running(pids, 8, 1), 2, "both workers of generation 1 run when it comes");
	is(atoi(value_of(msg, "MAINPID")), pid, "MAINPID is the master's pid");
	ok(strstr(value_of(msg, "STATUS"), "generation 1, 2 workers") != NULL,
	    "its STATUS names the generation and the workers: %s", value_of(msg, "STATUS"));

	/* --- STATUS= follows the connections --------------------------------- */
	fd = h_connect(lport, 5000);
	ok(fd != -1 && h_round_trip(fd, 5000) == 0, "a connection relays");
	ok(wait_msg(NULL, "STATUS=serving: 1 connections", msg, sizeof(msg), 20000, NULL, NULL),
	    "a STATUS line counts the open connection");
	close(fd);
	ok(wait_msg(NULL, "STATUS=serving: 0 connections", msg, sizeof(msg), 20000, NULL, NULL),
	    "and its close");

	/* --- reloads ----------------------------------------------------------- */
	kill(pid, SIGHUP);
	ok(wait_msg("RELOADING=1", NULL, msg, sizeof(msg), 20000, "READY=1", &early) &&
	       atoll(value_of(msg, "MONOTONIC_USEC")) > 0 && early == 0,
	    "SIGHUP: RELOADING=1 with MONOTONIC_USEC first (%s)", value_of(msg, "MONOTONIC_USEC"));
	ok(wait_msg("READY=1", NULL, msg, sizeof(msg), 30000, NULL, NULL) &&
	       strstr(value_of(msg, "STATUS"), "generation 2") != NULL,
	    "then READY=1, serving generation 2: %s", value_of(msg, "STATUS"));

	/* A broken file (line 7): systemd still gets READY=1, and the reason. */
	write_conf(conf, 2, lport, bport, "bogus_setting = 1;");
	kill(pid, SIGHUP);
	ok(wait_msg("RELOADING=1", NULL, msg, sizeof(msg), 20000, NULL, NULL),
	    "a failing reload starts with RELOADING=1");
	ok(wait_msg("READY=1", NULL, msg, sizeof(msg), 30000, NULL, NULL),
	    "and ends with READY=1 too");
	ok(strstr(value_of(msg, "STATUS"), "reload failed") != NULL &&
	       strstr(value_of(msg, "STATUS"), "notify.conf:7") != NULL &&
	       strstr(value_of(msg, "STATUS"), "bogus_setting") != NULL,
	    "whose STATUS says why, with file, line and setting: %s", value_of(msg, "STATUS"));
	ok(strstr(value_of(msg, "STATUS"), "generation 2") != NULL,
	    "and that generation 2 still serves");
	write_conf(conf, 2, lport, bport, "");
	kill(pid, SIGHUP);
	ok(wait_msg("READY=1", NULL, msg, sizeof(msg), 30000, NULL, NULL) &&
	       strstr(value_of(msg, "STATUS"), "generation 3") != NULL &&
	       strstr(value_of(msg, "STATUS"), "failed") == NULL,
	    "a good reload clears the failure: %s", value_of(msg, "STATUS"));

	ok(stop_and_check(pid), "SIGTERM: STOPPING=1, and the master exits 0");
	ok(from_other == 0, "every datagram came from the master (not pid %d)", (int)from_other);
	close(nfd);

	/* --- an abstract socket ---------------------------------------------- */
	snprintf(abstract, sizeof(abstract), "sluice-i_notify-%d", (int)getpid());
	nfd = notify_bind(abstract, 1);
	{
		char env[80];

		snprintf(env, sizeof(env), "@%s", abstract);
		setenv("NOTIFY_SOCKET", env, 1);
	}
	master = pid = start(conf);
	unsetenv("NOTIFY_SOCKET");
	ok(wait_msg("READY=1", NULL, msg, sizeof(msg), 30000, NULL, NULL) &&
	       stop_and_check(pid),
	    "NOTIFY_SOCKET=@name (abstract): READY=1, then STOPPING=1");
	close(nfd);

	/* --- nobody listening ------------------------------------------------ */
	master = 0;
	setenv("NOTIFY_SOCKET", h_path("nobody.sock"), 1);
	pid = h_sluiced_start(conf, lport, 2);
	unsetenv("NOTIFY_SOCKET");
	fd = h_connect(lport, 5000);
	ok(fd != -1 && h_round_trip(fd, 5000) == 0,
	    "with no listener at NOTIFY_SOCKET, sluiced serves");
	if (fd != -1)
		close(fd);
	kill(pid, SIGHUP);
	{
		uint64_t end = h_now_ms() + 30000;

		while ((h_stats_generation() != 2 || h_stats_running(NULL, 0, 2) != 2) &&
		       h_now_ms() < end)
			h_nap(25);
	}
	status = h_stats_running(NULL, 0, 2);
	kill(pid, SIGTERM);
	ok(status == 2 && h_wait_exit(pid, 20000, &status) == 0 && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0,
	    "reloads and stops as usual");
	free((char *)conf);
	return tap_failed != 0;
}
