/* SPDX-License-Identifier: BSD-2-Clause */
/* harness.c — helpers for the integration tests (contract in harness.h):
 * temporary directory, free loopback ports, spawning sluiced and the echo
 * backend, sockets with deadlines, the stats segment, and multiplexed echo
 * transfers. Runs inside a test process only. It never signals a process it
 * did not start, never sleeps "long enough", and bounds every wait. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "harness.h"
#include "proxy.h"
#include "stats.h"

/*
 * harness.c does not include tap.h: its counters are static per translation
 * unit, and a second copy here would number results on its own. The harness
 * only ever explains (diag) or gives up (bail), in the same TAP syntax.
 */
static void h_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void h_bail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
h_diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("# ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	fflush(stdout);
}

static void
h_bail(const char *fmt, ...)
{
	va_list ap;

	fputs("Bail out! ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	exit(255);
}

/* ---- process registry and clean-up ----------------------------------- */

#define H_MAXPIDS 64

/* Read by the watchdog's signal handler, hence volatile. */
static volatile pid_t h_pids[H_MAXPIDS];
static pid_t h_owner;      /* the test process; forked children skip clean-up */
static char h_dirbuf[512]; /* short, so every path under it fits PATH_MAX */

static void
h_register(pid_t pid)
{
	for (int i = 0; i < H_MAXPIDS; i++) {
		if (h_pids[i] == 0) {
			h_pids[i] = pid;
			return;
		}
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	h_bail("harness: more than %d processes started", H_MAXPIDS);
}

static void
h_unregister(pid_t pid)
{
	for (int i = 0; i < H_MAXPIDS; i++)
		if (h_pids[i] == pid)
			h_pids[i] = 0;
}

void
h_nap(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * SIGTERM first so sluiced can stop its own workers (a SIGKILLed master
 * would orphan them), then SIGKILL whatever is left after grace_ms. Uses
 * only async-signal-safe calls: the watchdog runs it from a handler.
 */
static void
h_stop_all(int grace_ms)
{
	struct timespec ts = {0, 10 * 1000000L};
	int left, rounds = grace_ms / 10;

	for (int i = 0; i < H_MAXPIDS; i++)
		if (h_pids[i] > 0)
			kill(h_pids[i], SIGTERM);
	for (int r = 0; r <= rounds; r++) {
		left = 0;
		for (int i = 0; i < H_MAXPIDS; i++) {
			pid_t p = h_pids[i];

			if (p <= 0)
				continue;
			if (waitpid(p, NULL, WNOHANG) != 0)
				h_pids[i] = 0;
			else
				left++;
		}
		if (left == 0)
			return;
		nanosleep(&ts, NULL);
	}
	for (int i = 0; i < H_MAXPIDS; i++) {
		pid_t p = h_pids[i];

		if (p <= 0)
			continue;
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
		h_pids[i] = 0;
	}
}

static int
h_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

/* Sanitizer reports and failed invariant checks (debug builds' CHECK) from
 * the daemons go to their logs, and a worker that aborts is simply replaced:
 * without this check a sanitizer build would pass with errors in it. Sets
 * h_sanitizer_found when any *.log has one. */
static int h_sanitizer_found;

static int
h_sanitizer_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	static const char *const marks[] = { "AddressSanitizer", "LeakSanitizer",
		"UndefinedBehaviorSanitizer", "runtime error:", "Assertion `" };
	size_t n = strlen(path);
	char *text;

	if (flag != FTW_F || n < 4 || strcmp(path + n - 4, ".log") != 0)
		return 0;
	if ((text = h_read_file(path)) == NULL)
		return 0;
	for (unsigned i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		if (strstr(text, marks[i]) != NULL) {
			printf("# sanitizer report in %s:\n", path);
			h_sanitizer_found = 1;
			break;
		}
	free(text);
	return 0;
}

static void
h_cleanup(void)
{
	const char *keep;

	if (getpid() != h_owner)
		return;
	h_stop_all(2000);
	if (h_dirbuf[0] == '\0')
		return;
	nftw(h_dirbuf, h_sanitizer_cb, 16, FTW_PHYS);
	if (h_sanitizer_found) {
		printf("Bail out! a sanitizer reported errors in a daemon log (kept in %s)\n",
		    h_dirbuf);
		fflush(stdout);
		_exit(255);
	}
	keep = getenv("H_KEEP");
	if (keep && strcmp(keep, "1") == 0) {
		h_diag("H_KEEP=1: keeping %s", h_dirbuf);
		return;
	}
	nftw(h_dirbuf, h_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A hung test must not leave daemons behind or stall make check forever. */
static void
h_watchdog_cb(int sig)
{
	static const char msg[] = "Bail out! harness watchdog: test ran too long "
	                          "(H_WATCHDOG seconds)\n";

	(void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	h_stop_all(2000);
	_exit(255);
}

static void h_init(void) __attribute__((constructor));

static void
h_init(void)
{
	struct rlimit rl;
	const char *w = getenv("H_WATCHDOG");
	long secs = w ? strtol(w, NULL, 10) : 150;

	h_owner = getpid();
	signal(SIGPIPE, SIG_IGN);
	/* Transfers open many sockets at once. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (secs > 0) {
		signal(SIGALRM, h_watchdog_cb);
		alarm((unsigned)secs);
	}
	atexit(h_cleanup);
}

/* ---- files and directories --------------------------------------------- */

const char *
h_dir(void)
{
	const char *tmp;

	if (h_dirbuf[0] != '\0')
		return h_dirbuf;
	tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = "/tmp";
	if (snprintf(h_dirbuf, sizeof(h_dirbuf), "%s/sluice-%s.XXXXXX", tmp,
	        program_invocation_short_name) >= (int)sizeof(h_dirbuf)) {
		h_dirbuf[0] = '\0';
		h_bail("harness: TMPDIR %s is too long", tmp);
	}
	if (!mkdtemp(h_dirbuf)) {
		int e = errno;

		h_dirbuf[0] = '\0';
		h_bail("harness: mkdtemp in %s: %s", tmp, strerror(e));
	}
	return h_dirbuf;
}

const char *
h_path(const char *name)
{
	static char buf[8][PATH_MAX];
	static unsigned next;
	char *p = buf[next++ % 8];

	if (snprintf(p, PATH_MAX, "%s/%s", h_dir(), name) >= PATH_MAX)
		h_bail("harness: path too long: %s/%s", h_dir(), name);
	return p;
}

void
h_write_file(const char *path, const char *fmt, ...)
{
	char tmp[PATH_MAX];
	va_list ap;
	FILE *f;
	int bad;

	/* Replace atomically: a daemon re-reading the file (reload) never
	 * sees half of it. */
	snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
	f = fopen(tmp, "w");
	if (!f)
		h_bail("harness: cannot create %s: %s", tmp, strerror(errno));
	va_start(ap, fmt);
	bad = vfprintf(f, fmt, ap) < 0;
	va_end(ap);
	bad |= fclose(f) != 0;
	if (bad || rename(tmp, path) == -1) {
		int e = errno;

		unlink(tmp);
		h_bail("harness: cannot write %s: %s", path, strerror(e));
	}
}

char *
h_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

int
h_file_contains(const char *path, const char *needle)
{
	char *s = h_read_file(path);
	int found = s && strstr(s, needle) != NULL;

	free(s);
	return found;
}

uint64_t
h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
h_wait_file_contains(const char *path, const char *needle, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);

	for (;;) {
		if (h_file_contains(path, needle))
			return 1;
		if (h_now_ms() >= deadline)
			return 0;
		h_nap(20);
	}
}

/* The last `lines` lines of a log, as diagnostics, to explain a bail-out. */
static void
h_show_tail(const char *path, int lines)
{
	char *s = h_read_file(path), *p, *line;
	int n = 0;

	if (!s) {
		h_diag("(no %s)", path);
		return;
	}
	p = s + strlen(s);
	while (p > s && n <= lines) {
		p--;
		if (*p == '\n')
			n++;
	}
	if (*p == '\n')
		p++;
	h_diag("---- last lines of %s ----", path);
	for (line = strtok(p, "\n"); line; line = strtok(NULL, "\n"))
		h_diag("%s", line);
	h_diag("----");
	free(s);
}

/* ---- ports ------------------------------------------------------------- */

static int
h_port_bindable(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd, ok;

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return 0;
	ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

/*
 * Ports come from below the kernel's ephemeral range, so the source port of
 * some connection (the tests make thousands) cannot take one between now and
 * the moment sluiced binds it. Each process starts in its own block chosen by
 * pid: tests run in parallel by make check get different ports.
 */
int
h_free_port(void)
{
	enum { BASE = 10000, BLOCK = 20 };
	static int given[256], ngiven;
	int lo = 32768, hi = 60999, nblocks, start;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

	if (f) {
		if (fscanf(f, "%d %d", &lo, &hi) != 2)
			lo = 32768;
		fclose(f);
	}
	nblocks = lo > BASE + BLOCK ? (lo - BASE) / BLOCK : 0;
	start = nblocks > 0 ? BASE + (int)(getpid() % nblocks) * BLOCK : 0;
	for (int i = 0; nblocks > 0 && i < nblocks * BLOCK && i < 2000; i++) {
		int port = BASE + (start - BASE + i) % (nblocks * BLOCK), seen = 0;

		for (int j = 0; j < ngiven; j++)
			seen |= given[j] == port;
		if (seen || !h_port_bindable(port))
			continue;
		if (ngiven < (int)(sizeof(given) / sizeof(given[0])))
			given[ngiven++] = port;
		return port;
	}
	/* No room below the ephemeral range: let the kernel choose. */
	{
		struct sockaddr_in sin = {.sin_family = AF_INET};
		socklen_t len = sizeof(sin);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
		    getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
			h_bail("harness: no free port: %s", strerror(errno));
		close(fd);
		return ntohs(sin.sin_port);
	}
}

/* 1 when some socket is in LISTEN state on port (IPv4 or IPv6), judged from
 * /proc so that checking does not itself make a connection (which would
 * show in sluiced's counters); -1 when /proc cannot tell. */
static int
h_port_listening(int port)
{
	static const char *files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
	char line[512];
	int readable = 0;

	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "r");

		if (!f)
			continue;
		readable = 1;
		while (fgets(line, sizeof(line), f)) {
			char *colon, *sp;
			unsigned lport, st;

			/* "  0: 0100007F:1F90 00000000:0000 0A ..." */
			colon = strchr(line, ':');
			if (!colon || !(colon = strchr(colon + 1, ':')))
				continue;
			if (sscanf(colon + 1, "%x", &lport) != 1)
				continue;
			sp = strchr(colon, ' ');
			if (!sp || !(sp = strchr(sp + 1, ' ')))
				continue;
			if (sscanf(sp + 1, "%x", &st) != 1)
				continue;
			if ((int)lport == port && st == 0x0A) {
				fclose(f);
				return 1;
			}
		}
		fclose(f);
	}
	return readable ? 0 : -1;
}

/* ---- sockets ----------------------------------------------------------- */

int
h_connect(int port, int timeout_ms)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct pollfd pfd;
	int fd, err = 0, flags;
	socklen_t len = sizeof(err);

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		for (;;) {
			int r = poll(&pfd, 1, timeout_ms > 0 ? timeout_ms : 0);

			if (r == -1 && errno == EINTR)
				continue;
			if (r <= 0) {
				errno = r == 0 ? ETIMEDOUT : errno;
				goto fail;
			}
			break;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			goto fail;
		if (err != 0) {
			errno = err;
			goto fail;
		}
	}
	flags = fcntl(fd, F_GETFL);
	if (flags == -1 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1)
		goto fail;
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

int
h_wait_port(int port, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);

	for (;;) {
		uint64_t now = h_now_ms();
		int left = now < deadline ? (int)(deadline - now) : 0;
		int fd = h_connect(port, left < 1000 ? left : 1000);

		if (fd != -1) {
			close(fd);
			return 0;
		}
		if (h_now_ms() >= deadline)
			return -1;
		h_nap(20);
	}
}

/* ---- processes --------------------------------------------------------- */

/* In a freshly forked child, before exec: a clean signal state, the wanted
 * stdio, and none of the test's sockets (an inherited client socket would
 * keep a connection open after the test closes it). */
static void
h_child_setup(int outfd, pid_t parent)
{
	sigset_t none;
	int devnull;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	/* Should the test die without clean-up, its daemons stop too. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(127);
	devnull = open("/dev/null", O_RDONLY);
	if (devnull != -1 && devnull != STDIN_FILENO) {
		dup2(devnull, STDIN_FILENO);
		close(devnull);
	}
	if (outfd != -1) {
		dup2(outfd, STDOUT_FILENO);
		dup2(outfd, STDERR_FILENO);
	}
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
#endif
	{
		struct rlimit rl;
		long max = 65536;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max)
			max = (long)rl.rlim_cur;
		for (long fd = 3; fd < max; fd++)
			close((int)fd);
	}
}

pid_t
h_spawn(char *const argv[], const char *logfile)
{
	pid_t parent = getpid(), pid;
	int outfd = -1;

	if (logfile) {
		outfd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (outfd == -1)
			h_bail("harness: cannot open %s: %s", logfile, strerror(errno));
	}
	fflush(stdout);
	pid = fork();
	if (pid == -1)
		h_bail("harness: fork: %s", strerror(errno));
	if (pid == 0) {
		h_child_setup(outfd, parent);
		execvp(argv[0], argv);
		dprintf(
		    STDERR_FILENO, "harness: cannot execute %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (outfd != -1)
		close(outfd);
	h_register(pid);
	return pid;
}

/*
 * Waits for a child with waitpid; a process that is not our child (a daemon
 * that forked away) is polled until it is gone, and *status is then 0.
 */
int
h_wait_exit(pid_t pid, int timeout_ms, int *status)
{
	uint64_t deadline = h_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	int st = 0;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid) {
			h_unregister(pid);
			if (status)
				*status = st;
			return 0;
		}
		if (r == -1 && errno == ECHILD && !h_alive(pid)) {
			h_unregister(pid);
			if (status)
				*status = 0;
			return 0;
		}
		if (h_now_ms() >= deadline)
			return -1;
		h_nap(10);
	}
}

void
h_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	if (waitpid(pid, NULL, 0) == -1 && errno == ECHILD) {
		for (int i = 0; i < 500 && h_alive(pid); i++)
			h_nap(10);
	}
	h_unregister(pid);
}

int
h_alive(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	if (pid <= 0 || kill(pid, 0) == -1)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return 1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parentheses. */
	p = strrchr(buf, ')');
	if (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
		return 0;
	return 1;
}

int
h_run(char *const argv[], char **out, int timeout_ms)
{
	enum { OUT_MAX = 1 << 20 };
	uint64_t deadline = h_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	pid_t parent = getpid(), pid;
	char *buf = NULL;
	size_t len = 0;
	int p[2], st = 0, exited = 0, eof = 0;

	if (out)
		*out = NULL;
	if (pipe2(p, O_CLOEXEC) == -1)
		h_bail("harness: pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid == -1)
		h_bail("harness: fork: %s", strerror(errno));
	if (pid == 0) {
		h_child_setup(p[1], parent);
		execvp(argv[0], argv);
		dprintf(
		    STDERR_FILENO, "harness: cannot execute %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	h_register(pid);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	buf = malloc(OUT_MAX + 1);
	if (!buf)
		h_bail("harness: out of memory");
	/*
	 * Stop at the child's exit, not at EOF: a program that daemonizes
	 * leaves a grandchild that may hold the pipe open.
	 */
	while (!exited) {
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		uint64_t now = h_now_ms();

		if (now >= deadline)
			break;
		if (!eof && poll(&pfd, 1, 20) > 0) {
			ssize_t n;

			while ((n = read(p[0], buf + len, OUT_MAX - len)) > 0)
				len += (size_t)n;
			if (n == 0)
				eof = 1;
			if (len == OUT_MAX) {
				char sink[4096];

				while (read(p[0], sink, sizeof(sink)) > 0)
					;
			}
		} else if (eof) {
			h_nap(10);
		}
		if (waitpid(pid, &st, WNOHANG) == pid)
			exited = 1;
	}
	if (exited) {
		ssize_t n;

		while (len < OUT_MAX && (n = read(p[0], buf + len, OUT_MAX - len)) > 0)
			len += (size_t)n;
	} else {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	h_unregister(pid);
	close(p[0]);
	buf[len] = '\0';
	if (out)
		*out = buf;
	else
		free(buf);
	if (!exited)
		return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

const char *
h_sluiced(void)
{
	const char *p = getenv("SLUICED");

	if (!p || !*p)
		h_bail("SLUICED is not set (run through make check)");
	return p;
}

const char *
h_sluicestat(void)
{
	const char *p = getenv("SLUICESTAT");

	if (!p || !*p)
		h_bail("SLUICESTAT is not set (run through make check)");
	return p;
}

/* The echo backend logs one "accepted" line per connection (-v) into
 * h_path("echod-PORT.log"); tests count them to see who got traffic. */
pid_t
h_echod_start(int port)
{
	const char *echod = getenv("ECHOD");
	char addr[64], log[64];
	uint64_t deadline;
	pid_t pid;

	if (!echod || !*echod)
		h_bail("ECHOD is not set (run through make check)");
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	snprintf(log, sizeof(log), "echod-%d.log", port);
	{
		char *argv[] = {(char *)echod, "-v", "-l", addr, NULL};

		pid = h_spawn(argv, h_path(log));
	}
	deadline = h_now_ms() + 10000;
	for (;;) {
		int st;

		if (waitpid(pid, &st, WNOHANG) == pid) {
			h_unregister(pid);
			h_show_tail(h_path(log), 20);
			h_bail("echod on port %d exited (status %d) before accepting", port, st);
		}
		if (h_wait_port(port, 200) == 0)
			return pid;
		if (h_now_ms() >= deadline) {
			h_show_tail(h_path(log), 20);
			h_bail("echod on port %d does not accept after 10 s", port);
		}
	}
}

/* ---- config and sluiced ------------------------------------------------ */

const char *
h_pidfile(void)
{
	static char buf[PATH_MAX];

	if (!buf[0])
		snprintf(buf, sizeof(buf), "%s", h_path("sluiced.pid"));
	return buf;
}

const char *
h_statsfile(void)
{
	static char buf[PATH_MAX];

	if (!buf[0])
		snprintf(buf, sizeof(buf), "%s", h_path("stats"));
	return buf;
}

/*
 * Only the groups every test needs are written (no timeouts, pool or
 * limits): `extra` may add any of them, and libconfig rejects a setting
 * given twice. workers <= 0 writes "auto".
 */
const char *
h_conf(const char *name, int workers, int listen_port, const int *server_ports, int nservers,
    const char *extra)
{
	enum { MAXCONF = 16 };
	static char paths[MAXCONF][PATH_MAX];
	static unsigned next;
	char servers[4096] = "", w[32];
	char *path = paths[next++ % MAXCONF];
	size_t used = 0;

	for (int i = 0; i < nservers; i++) {
		int n = snprintf(servers + used, sizeof(servers) - used, "%s\"127.0.0.1:%d\"",
		    i ? ", " : "", server_ports[i]);

		if (n < 0 || (size_t)n >= sizeof(servers) - used)
			h_bail("harness: h_conf: too many servers");
		used += (size_t)n;
	}
	if (workers > 0)
		snprintf(w, sizeof(w), "%d", workers);
	else
		snprintf(w, sizeof(w), "\"auto\"");
	snprintf(path, PATH_MAX, "%s", h_path(name));
	h_write_file(path,
	    "# written by the test harness\n"
	    "workers = %s;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( %s ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n"
	    "%s\n",
	    w, h_pidfile(), h_statsfile(), servers, listen_port, extra ? extra : "");
	return path;
}

/* Running workers of the master `pid` (so a stale segment does not count),
 * or -1 when the segment is not there yet. */
static int
h_running_of(pid_t pid)
{
	struct stats_seg seg;
	char err[256];
	int n = 0;

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return -1;
	if (__atomic_load_n(&seg.hdr->master_pid, __ATOMIC_ACQUIRE) != pid) {
		stats_detach(&seg);
		return -1;
	}
	for (uint32_t i = 0; i < seg.nslots; i++)
		if (__atomic_load_n(&seg.slots[i].state, __ATOMIC_ACQUIRE) == STATS_SLOT_RUNNING)
			n++;
	stats_detach(&seg);
	return n;
}

pid_t
h_sluiced_start(const char *conf, int listen_port, int workers)
{
	char *argv[] = {(char *)h_sluiced(), "-f", "-c", (char *)conf, NULL};
	const char *log = h_path("sluiced.log");
	uint64_t deadline = h_now_ms() + 15000;
	int want = workers > 0 ? workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
	int running = -1, listening = 0;
	pid_t pid;

	if (want < 1)
		want = 1;
	pid = h_spawn(argv, log);
	for (;;) {
		int st;

		if (waitpid(pid, &st, WNOHANG) == pid) {
			h_unregister(pid);
			h_show_tail(log, 40);
			if (WIFEXITED(st))
				h_bail("sluiced exited with status %d while starting",
				    WEXITSTATUS(st));
			h_bail("sluiced was killed by signal %d while starting",
			    WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		}
		running = h_running_of(pid);
		if (running >= want) {
			listening = h_port_listening(listen_port);
			if (listening == -1)
				listening = h_wait_port(listen_port, 200) == 0;
			if (listening == 1)
				return pid;
		}
		if (h_now_ms() >= deadline) {
			h_show_tail(log, 40);
			h_bail("sluiced not ready after 15 s: %d of %d workers running, "
			       "port %d %s",
			    running < 0 ? 0 : running, want, listen_port,
			    listening == 1 ? "listening" : "not listening");
		}
		h_nap(20);
	}
}

/* ---- stats --------------------------------------------------------------- */

int
h_stats_total(struct stats_counters *out)
{
	struct stats_seg seg;
	char err[256];

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return -1;
	stats_total(&seg, out);
	stats_detach(&seg);
	return 0;
}

int
h_stats_running(pid_t *pids, int max, uint32_t gen)
{
	struct stats_seg seg;
	char err[256];
	int n = 0;

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return 0;
	for (uint32_t i = 0; i < seg.nslots; i++) {
		const struct stats_slot *s = &seg.slots[i];

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != STATS_SLOT_RUNNING)
			continue;
		if (gen != 0 && s->generation != gen)
			continue;
		if (pids) {
			if (n >= max)
				break;
			pids[n] = s->pid;
		}
		n++;
	}
	stats_detach(&seg);
	return n;
}

uint64_t
h_stats_generation(void)
{
	struct stats_seg seg;
	char err[256];
	uint64_t gen;

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return 0;
	gen = __atomic_load_n(&seg.hdr->generation, __ATOMIC_ACQUIRE);
	stats_detach(&seg);
	return gen;
}

static const struct stats_field *
h_field(const char *name)
{
	for (unsigned i = 0; i < stats_nfields; i++)
		if (strcmp(stats_fields[i].name, name) == 0)
			return &stats_fields[i];
	h_bail("harness: no stats counter named \"%s\"", name);
}

uint64_t
h_stat(const char *field)
{
	const struct stats_field *f = h_field(field);
	struct stats_counters c;
	uint64_t v;

	if (h_stats_total(&c) == -1)
		return UINT64_MAX;
	memcpy(&v, (const char *)&c + f->offset, sizeof(v));
	return v;
}

int
h_wait_stat(const char *field, uint64_t want, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	uint64_t v;

	for (;;) {
		v = h_stat(field);
		if (v != UINT64_MAX && v >= want)
			return 1;
		if (h_now_ms() >= deadline)
			break;
		h_nap(20);
	}
	if (v == UINT64_MAX)
		h_diag("%s: stats segment %s unreadable", field, h_statsfile());
	else
		h_diag("%s is %llu after %d ms, want >= %llu", field, (unsigned long long)v,
		    timeout_ms, (unsigned long long)want);
	return 0;
}

/* ---- echo transfers ------------------------------------------------------ */

/*
 * Connection i's payload is a pure function of (i, offset), so neither side
 * keeps a copy: the sender generates what it sends next, the reader
 * regenerates what it should have got back.
 */
static uint64_t
h_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void
h_payload(int idx, size_t off, unsigned char *buf, size_t len)
{
	uint64_t seed = h_mix((uint64_t)idx + 1);
	size_t i = 0;

	while (i < len) {
		uint64_t w = h_mix(seed ^ ((off + i) / 8));
		unsigned b = (unsigned)((off + i) % 8);

		for (; b < 8 && i < len; b++, i++)
			buf[i] = (unsigned char)(w >> (8 * b));
	}
}

enum h_xstate { HX_CONNECTING, HX_OPEN, HX_GOOD, HX_BAD };

struct h_xconn {
	int fd;
	enum h_xstate state;
	int shut;    /* our SHUT_WR is done */
	size_t size; /* bytes to send, and to get back */
	size_t sent, got;
	char why[200]; /* set when bad */
};

struct h_xfer {
	int n, left, port;
	size_t chunk;
	uint64_t sent;
	struct h_xconn *c;
	struct pollfd *pfd;
	int *idx; /* pfd[k] belongs to c[idx[k]] */
};

#define HX_IOBUF 65536
#define HX_ROUND_BYTES (256 * 1024) /* per connection per round, for fairness */

static unsigned char hx_in[HX_IOBUF], hx_want[HX_IOBUF];

static void hx_fail(struct h_xfer *, struct h_xconn *, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
hx_fail(struct h_xfer *x, struct h_xconn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	c->state = HX_BAD;
	close(c->fd);
	c->fd = -1;
	x->left--;
}

static void
hx_done(struct h_xfer *x, struct h_xconn *c)
{
	c->state = HX_GOOD;
	close(c->fd);
	c->fd = -1;
	x->left--;
}

static void
hx_shut(struct h_xfer *x, struct h_xconn *c)
{
	if (c->shut || c->sent < c->size)
		return;
	if (shutdown(c->fd, SHUT_WR) == -1) {
		if (errno == ENOTCONN)
			hx_fail(x, c,
			    "reset before our SHUT_WR, after sending %zu of %zu bytes "
			    "(got %zu back)",
			    c->sent, c->size, c->got);
		else
			hx_fail(x, c, "shutdown(SHUT_WR): %s after sending %zu bytes",
			    strerror(errno), c->sent);
		return;
	}
	c->shut = 1;
}

static void
hx_send(struct h_xfer *x, struct h_xconn *c, int i)
{
	size_t budget = x->chunk > 0 ? x->chunk : HX_ROUND_BYTES;

	while (budget > 0 && c->sent < c->size) {
		size_t len = c->size - c->sent;
		ssize_t n;

		if (len > budget)
			len = budget;
		if (len > HX_IOBUF)
			len = HX_IOBUF;
		h_payload(i, c->sent, hx_want, len);
		n = send(c->fd, hx_want, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			hx_fail(x, c, "send: %s after sending %zu of %zu bytes (got %zu back)",
			    strerror(errno), c->sent, c->size, c->got);
			return;
		}
		c->sent += (size_t)n;
		x->sent += (uint64_t)n;
		budget -= (size_t)n;
	}
	hx_shut(x, c);
}

static void
hx_recv(struct h_xfer *x, struct h_xconn *c, int i)
{
	size_t budget = HX_ROUND_BYTES;

	while (budget > 0) {
		ssize_t n = recv(c->fd, hx_in, sizeof(hx_in), 0);
		size_t expect, cmp;

		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			hx_fail(x, c, "%s after getting %zu of %zu bytes back (sent %zu)",
			    errno == ECONNRESET ? "reset" : strerror(errno), c->got, c->size,
			    c->sent);
			return;
		}
		if (n == 0) {
			if (c->got == c->size && c->shut)
				hx_done(x, c);
			else
				hx_fail(x, c, "EOF after getting %zu of %zu bytes back (sent %zu)",
				    c->got, c->size, c->sent);
			return;
		}
		expect = c->size - c->got;
		cmp = (size_t)n < expect ? (size_t)n : expect;
		h_payload(i, c->got, hx_want, cmp);
		if (memcmp(hx_in, hx_want, cmp) != 0) {
			size_t k = 0;

			while (hx_in[k] == hx_want[k])
				k++;
			hx_fail(x, c,
			    "mismatch at offset %zu: got 0x%02x, want 0x%02x "
			    "(sent %zu)",
			    c->got + k, hx_in[k], hx_want[k], c->sent);
			return;
		}
		if ((size_t)n > expect) {
			hx_fail(x, c, "got %zu bytes more than the %zu sent", (size_t)n - expect,
			    c->size);
			return;
		}
		c->got += (size_t)n;
		budget -= (size_t)n;
	}
}

struct h_xfer *
h_xfer_start(int port, int n, const size_t *sizes, size_t chunk)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct h_xfer *x = calloc(1, sizeof(*x));

	if (!x || n < 0)
		h_bail("harness: h_xfer_start: out of memory");
	x->n = x->left = n;
	x->port = port;
	x->chunk = chunk;
	x->c = calloc((size_t)n + 1, sizeof(*x->c));
	x->pfd = calloc((size_t)n + 1, sizeof(*x->pfd));
	x->idx = calloc((size_t)n + 1, sizeof(*x->idx));
	if (!x->c || !x->pfd || !x->idx)
		h_bail("harness: h_xfer_start: out of memory");
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < n; i++) {
		struct h_xconn *c = &x->c[i];

		c->size = sizes[i];
		c->state = HX_CONNECTING;
		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd == -1) {
			snprintf(c->why, sizeof(c->why), "socket: %s", strerror(errno));
			c->state = HX_BAD;
			x->left--;
			continue;
		}
		if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
			c->state = HX_OPEN;
			hx_shut(x, c);
		} else if (errno != EINPROGRESS) {
			hx_fail(x, c, "connect: %s", strerror(errno));
		}
	}
	return x;
}

/* One poll round over every unfinished transfer. */
static void
hx_round(struct h_xfer *x, int timeout_ms)
{
	uint64_t start = h_now_ms();
	int k = 0, r;

	for (int i = 0; i < x->n; i++) {
		struct h_xconn *c = &x->c[i];
		short ev;

		if (c->state == HX_CONNECTING)
			ev = POLLOUT;
		else if (c->state == HX_OPEN)
			ev = POLLIN | (c->sent < c->size ? POLLOUT : 0);
		else
			continue;
		x->pfd[k].fd = c->fd;
		x->pfd[k].events = ev;
		x->pfd[k].revents = 0;
		x->idx[k++] = i;
	}
	if (k == 0)
		return;
	r = poll(x->pfd, (nfds_t)k, timeout_ms);
	if (r == -1 && errno != EINTR)
		h_bail("harness: poll: %s", strerror(errno));
	for (int j = 0; r > 0 && j < k; j++) {
		struct h_xconn *c = &x->c[x->idx[j]];
		short re = x->pfd[j].revents;

		if (re == 0)
			continue;
		if (c->state == HX_CONNECTING) {
			int err = 0;
			socklen_t len = sizeof(err);

			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err != 0) {
				hx_fail(x, c, "connect to port %d: %s", x->port, strerror(err));
				continue;
			}
			c->state = HX_OPEN;
			hx_shut(x, c);
			continue;
		}
		if (re & (POLLIN | POLLHUP | POLLERR))
			hx_recv(x, c, x->idx[j]);
		if (c->state == HX_OPEN && (re & POLLOUT))
			hx_send(x, c, x->idx[j]);
	}
	/* Paced transfers take at least 1 ms a round, so a test can act while
	 * they are in flight. */
	if (x->chunk > 0 && h_now_ms() - start < 1)
		h_nap(1);
}

int
h_xfer_run(struct h_xfer *x, int ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)(ms > 0 ? ms : 0);

	do {
		uint64_t now = h_now_ms();
		int left = now < deadline ? (int)(deadline - now) : 0;

		hx_round(x, left < 100 ? left : 100);
	} while (x->left > 0 && h_now_ms() < deadline);
	return x->left;
}

uint64_t
h_xfer_sent(const struct h_xfer *x)
{
	return x->sent;
}

int
h_xfer_finish(struct h_xfer *x, int timeout_ms)
{
	enum { MAXDIAG = 20 };
	int good = 0, bad = 0;

	h_xfer_run(x, timeout_ms);
	for (int i = 0; i < x->n; i++) {
		struct h_xconn *c = &x->c[i];

		if (c->state == HX_CONNECTING)
			hx_fail(x, c, "timeout: still connecting after %d ms", timeout_ms);
		else if (c->state == HX_OPEN)
			hx_fail(x, c, "timeout: sent %zu of %zu bytes%s, got %zu back", c->sent,
			    c->size, c->shut ? " and SHUT_WR" : "", c->got);
		if (c->state == HX_GOOD) {
			good++;
			continue;
		}
		if (bad++ < MAXDIAG)
			h_diag(
			    "connection %d (%zu bytes, port %d): %s", i, c->size, x->port, c->why);
	}
	if (bad > MAXDIAG)
		h_diag("... and %d more bad connections", bad - MAXDIAG);
	free(x->c);
	free(x->pfd);
	free(x->idx);
	free(x);
	return good;
}

int
h_echo_many(int port, int n, const size_t *sizes, size_t chunk, int timeout_ms)
{
	return h_xfer_finish(h_xfer_start(port, n, sizes, chunk), timeout_ms);
}

/* ---- processes, descriptors and logs --------------------------------------- */

/* Parent and state of pid from /proc/PID/stat; -1 when it is gone. */
static int
h_proc_stat(long pid, long *ppid, char *state)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* "pid (comm) S ppid ...": comm may hold spaces and parentheses. */
	if ((p = strrchr(buf, ')')) == NULL || sscanf(p + 1, " %c %ld", state, ppid) != 2)
		return -1;
	return 0;
}

int
h_children(pid_t parent, pid_t *pids, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char *end, state;
		long pid = strtol(e->d_name, &end, 10), ppid;

		if (*end != '\0' || pid <= 0 || h_proc_stat(pid, &ppid, &state) == -1)
			continue;
		if (ppid != (long)parent || state == 'Z' || state == 'X')
			continue;
		if (pids != NULL && n < max)
			pids[n] = (pid_t)pid;
		n++;
	}
	closedir(d);
	return n;
}

int
h_fd_count(pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int
h_count_lines(const char *path, const char *needle)
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

int
h_port_refuses(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, err = 0, r;

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	r = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	if (r == -1 && errno == EINPROGRESS) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, 1000) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
			close(fd);
			return -1;
		}
		r = err == 0 ? 0 : -1;
		errno = err;
	}
	err = errno;
	close(fd);
	if (r == 0)
		return 0;
	return err == ECONNREFUSED ? 1 : -1;
}

/* ---- the edge: client source addresses, a backend played by the test ---- */

int
h_connect_from(const char *src, int port, int timeout_ms)
{
	struct sockaddr_in sin = {.sin_family = AF_INET}, from = {.sin_family = AF_INET};
	struct pollfd pfd = {.events = POLLOUT};
	socklen_t len = sizeof(int);
	int fd, err = 0, r;

	if (src != NULL && inet_pton(AF_INET, src, &from.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (src != NULL && bind(fd, (struct sockaddr *)&from, sizeof(from)) == -1)
		goto fail;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		do
			r = poll(&pfd, 1, timeout_ms > 0 ? timeout_ms : 0);
		while (r == -1 && errno == EINTR);
		if (r <= 0) {
			errno = r == 0 ? ETIMEDOUT : errno;
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			goto fail;
		if (err != 0) {
			errno = err;
			goto fail;
		}
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == -1)
		goto fail;
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

int
h_listen(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd, one = 1;

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(fd, 128) == -1)
		h_bail("harness: listen on 127.0.0.1:%d: %s", port, strerror(errno));
	return fd;
}

int
h_accept(int lfd, int timeout_ms)
{
	struct pollfd pfd = {.fd = lfd, .events = POLLIN};
	int r;

	do
		r = poll(&pfd, 1, timeout_ms > 0 ? timeout_ms : 0);
	while (r == -1 && errno == EINTR);
	if (r <= 0) {
		errno = r == 0 ? ETIMEDOUT : errno;
		return -1;
	}
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

ssize_t
h_read_n(int fd, void *buf, size_t want, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	size_t got = 0;

	while (got < want) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t now = h_now_ms();
		ssize_t n;

		if (now >= deadline)
			break;
		if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
			continue;
		n = recv(fd, (char *)buf + got, want - got, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return got > 0 ? (ssize_t)got : -1;
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int
h_read_proxy(int fd, int versions, uint8_t *hdr, size_t max, struct proxy_info *info,
    int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	struct proxy_parser p;
	size_t n = 0;

	proxy_parser_init(&p, versions);
	for (;;) {
		size_t used;
		uint8_t c;
		int rc;

		if (n >= max || h_now_ms() >= deadline ||
		    h_read_n(fd, &c, 1, (int)(deadline - h_now_ms())) != 1) {
			h_diag("PROXY header incomplete after %zu bytes", n);
			return -1;
		}
		hdr[n++] = c;
		rc = proxy_parse(&p, &c, 1, &used, info);
		if (rc == 1)
			return (int)n;
		if (rc == -1) {
			h_diag("bad PROXY header: %s", proxy_parse_error(&p));
			return -1;
		}
	}
}

int
h_wait_closed(int fd, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	char c;

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t now = h_now_ms();
		ssize_t n;

		if (now >= deadline)
			return 0;
		if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
			continue;
		n = recv(fd, &c, 1, MSG_DONTWAIT);
		if (n == 0 || (n == -1 && (errno == ECONNRESET || errno == EPIPE)))
			return 1;
		if (n == 1)
			return 0;
	}
}

int
h_wait_listening(int port, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);

	for (;;) {
		int r = h_port_listening(port);

		if (r == 1)
			return 0;
		if (r == -1)
			return h_wait_port(port, timeout_ms);
		if (h_now_ms() >= deadline)
			return -1;
		h_nap(20);
	}
}

int
h_round_trip(int fd, int timeout_ms)
{
	static const char msg[] = "hello, sluice\n";
	char buf[sizeof(msg)];
	size_t got = 0;
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(msg) - 1))
		return -1;
	while (got < sizeof(msg) - 1 && h_now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, (int)(end - h_now_ms())) <= 0)
			continue;
		n = recv(fd, buf + got, sizeof(msg) - 1 - got, MSG_DONTWAIT);
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
			return -1;
		if (n > 0)
			got += (size_t)n;
	}
	return got == sizeof(msg) - 1 && memcmp(buf, msg, got) == 0 ? 0 : -1;
}

long
h_ms_until_closed(int fd, int timeout_ms)
{
	uint64_t start = h_now_ms(), deadline = start + (uint64_t)timeout_ms;
	char c;

	while (h_now_ms() < deadline) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recv(fd, &c, 1, MSG_DONTWAIT);
		if (n == 0 || (n == -1 && errno == ECONNRESET))
			return (long)(h_now_ms() - start);
		if (n == 1) {
			h_diag("a byte arrived on a connection that should be closed");
			return -1;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			h_diag("recv: %s", strerror(errno));
			return -1;
		}
	}
	h_diag("still open after %d ms", timeout_ms);
	return -1;
}

void
h_preload(const char *name)
{
	static char saved[1024];
	static int have_saved = -1; /* -1: not preloading */
	char path[PATH_MAX], dir[PATH_MAX], opts[1200];
	const char *asan;

	if (name == NULL) {
		if (have_saved == -1)
			return;
		unsetenv("LD_PRELOAD");
		if (have_saved)
			setenv("ASAN_OPTIONS", saved, 1);
		else
			unsetenv("ASAN_OPTIONS");
		have_saved = -1;
		return;
	}
	snprintf(dir, sizeof(dir), "%s", h_sluiced());
	snprintf(path, sizeof(path), "%s/tests/%s", dirname(dir), name);
	if (access(path, R_OK) == -1)
		h_bail("harness: no %s (make check builds it): %s", path, strerror(errno));
	if (have_saved == -1) {
		asan = getenv("ASAN_OPTIONS");
		have_saved = asan != NULL;
		snprintf(saved, sizeof(saved), "%s", asan != NULL ? asan : "");
	}
	snprintf(opts, sizeof(opts), "%s%sverify_asan_link_order=0", saved, saved[0] ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
	setenv("LD_PRELOAD", path, 1);
}

int
h_is_sluiced(pid_t pid)
{
	char path[64], exe[4096], want[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%ld/exe", (long)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0 || realpath(h_sluiced(), want) == NULL)
		return 0;
	exe[n] = '\0';
	return strcmp(exe, want) == 0;
}

unsigned
h_local_port(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if (getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
		return 0;
	return ntohs(sin.sin_port);
}

static char h_resp[1 << 20];

const char *
h_http_last(void)
{
	return h_resp;
}

int
h_http(int port, const char *req, size_t len, const char **body)
{
	char *resp = h_resp;
	int fd = h_connect(port, 5000), status = 0;
	ssize_t n;
	char *b;

	*body = "";
	resp[0] = '\0';
	if (fd == -1)
		return -1;
	if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	n = h_read_n(fd, resp, sizeof(h_resp) - 1, 10000);
	close(fd);
	resp[n > 0 ? n : 0] = '\0';
	if (sscanf(resp, "HTTP/1.1 %d ", &status) != 1)
		status = 0;
	if ((b = strstr(resp, "\r\n\r\n")) != NULL)
		*body = b + 4;
	return status;
}

int
h_http_get(int port, const char *path, const char **body)
{
	char req[512];

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
	return h_http(port, req, strlen(req), body);
}

int
h_wait_http(int port, const char *path, int status, const char *prefix, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	const char *body = "";
	int st = -1;

	while (h_now_ms() < end) {
		st = h_http_get(port, path, &body);
		if (st == status && (prefix == NULL || strncmp(body, prefix, strlen(prefix)) == 0))
			return 1;
		h_nap(50);
	}
	h_diag("GET %s: last status %d, body \"%.200s\"", path, st, body);
	return 0;
}

pid_t
h_pidfile_pid(void)
{
	char *s = h_read_file(h_pidfile());
	long pid = s ? strtol(s, NULL, 10) : 0;

	free(s);
	return pid > 0 ? (pid_t)pid : 0;
}

void
h_stop_sluiced(pid_t pid, int sig, int wait_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)wait_ms;

	if (pid <= 0 || !h_alive(pid) || !h_is_sluiced(pid))
		return;
	kill(pid, sig);
	while (h_alive(pid) && h_now_ms() < end)
		h_nap(10);
	if (h_alive(pid))
		kill(pid, SIGKILL);
}

int
h_gen_slots(uint32_t gen, int holding)
{
	struct stats_seg seg;
	char err[256];
	int n = 0;

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return -1;
	for (uint32_t i = 0; i < seg.nslots; i++) {
		const struct stats_slot *s = &seg.slots[i];

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != STATS_SLOT_FREE &&
		    __atomic_load_n(&s->generation, __ATOMIC_RELAXED) == gen &&
		    (!holding || __atomic_load_n(&s->c.active, __ATOMIC_RELAXED) > 0))
			n++;
	}
	stats_detach(&seg);
	return n;
}
