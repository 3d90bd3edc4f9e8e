/* SPDX-License-Identifier: BSD-2-Clause */
/* main.c — sluiced's entry: options, config check (-t), the pid file and its
 * lock, listeners and the stats segment, daemonizing, then the master loop.
 * Runs in the master before any worker exists. Start-up errors go to stderr
 * (and the log) and exit 1; nothing here runs after the loop but clean-up. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "control.h"
#include "inherit.h"
#include "listen.h"
#include "log.h"
#include "master.h"
#include "notify.h"
#include "priv.h"
#include "proctitle.h"
#include "stats.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

static int foreground;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: sluiced [-f] [-t] [-c FILE] [-s SIGNAL] [-V] [-h]\n"
	    "  -c FILE  configuration file (default %s/sluice.conf)\n"
	    "  -f       stay in the foreground and log to stderr\n"
	    "  -t       check the configuration, print the first error and exit\n"
	    "  -s SIGNAL  signal the running master (found through the pid file):\n"
	    "           reload (HUP), stop (TERM), quit (QUIT), reopen (USR1) or\n"
	    "           upgrade (USR2)\n"
	    "  -V       print the version and exit\n"
	    "  -h       print this help and exit\n"
	    "signals: HUP reload, TERM/INT fast stop, QUIT graceful stop, USR1 reopen log,\n"
	    "         USR2 hot upgrade of the binary\n",
	    SYSCONFDIR);
}

/* Before the daemon detaches, the operator must see why it did not start. */
static void __attribute__((format(printf, 1, 2), noreturn))
startup_fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "sluiced: %s\n", msg);
	if (!foreground)
		log_errx("%s", msg);
	exit(1);
}

/* Create the directory a run file lives in when it is missing (one level,
 * like /run/sluice), so a fresh machine needs no set-up step. */
static void
make_parent_dir(const char *path)
{
	char buf[PATH_MAX];
	char *dir;

	snprintf(buf, sizeof(buf), "%s", path);
	dir = dirname(buf);
	if (mkdir(dir, 0755) == -1 && errno != EEXIST)
		startup_fail("cannot create directory %s: %s", dir, strerror(errno));
}

/* The lock that says a master runs is a file of its own next to the pid
 * file, PID_FILE.lock, mode 0600. flock() works on a descriptor opened
 * read-only, so locking the world-readable pid file itself let any local
 * user take the lock: block every start, or make "sluiced -s" believe a dead
 * master runs and signal whatever process has its pid now. */
static void
lockfile_name(const char *pid_file, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "%s.lock", pid_file) >= len)
		startup_fail("pid file name too long: %s", pid_file);
}

/* Take the lock (start-up), or fail saying who holds it. Returns the
 * locked descriptor, which the master keeps open and no child inherits. */
static int
pidfile_lock(const char *path)
{
	char lock[PATH_MAX], buf[32];
	struct stat st;
	ssize_t n;
	int fd, pfd;

	make_parent_dir(path);
	lockfile_name(path, lock, sizeof(lock));
	fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		startup_fail("cannot open lock file %s: %s", lock, strerror(errno));
	/* Someone else's file would be someone else's lock. */
	if (fstat(fd, &st) == -1)
		startup_fail("cannot check lock file %s: %s", lock, strerror(errno));
	if (st.st_uid != geteuid())
		startup_fail("lock file %s belongs to uid %ld, not to us", lock, (long)st.st_uid);
	if ((st.st_mode & 077) != 0 && fchmod(fd, 0600) == -1)
		startup_fail("cannot make lock file %s private: %s", lock, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno != EWOULDBLOCK)
			startup_fail("cannot lock %s: %s", lock, strerror(errno));
		n = -1;
		if ((pfd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
			n = pread(pfd, buf, sizeof(buf) - 1, 0);
			close(pfd);
		}
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		startup_fail("another sluiced is running (pid %s, pid file %s)",
		    buf[0] ? buf : "unknown", path);
	}
	return fd;
}

/* Write our pid, readable by everyone; only the lock says we run. */
int
master_pidfile_write(const char *path)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd == -1)
		return -1;
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static void
pidfile_write(const char *path)
{
	if (master_pidfile_write(path) == -1)
		startup_fail("cannot write pid file %s: %s", path, strerror(errno));
}

/* Started by an old master for a hot upgrade (SLUICE_UPGRADE="FD,PIDFD,FG":
 * our socketpair with it, the pid file's lock, whether it runs in the
 * foreground; SLUICE_UPGRADE_FDS: its listening sockets). Returns 1 and
 * fills the three, or 0 for a plain start. Neither variable reaches our
 * children. */
static int
upgrade_env(int *fd, int *pid_fd, int *fg)
{
	const char *v = getenv("SLUICE_UPGRADE"), *list = getenv("SLUICE_UPGRADE_FDS");

	if (v == NULL)
		return 0;
	if (sscanf(v, "%d,%d,%d", fd, pid_fd, fg) != 3 || *fd < 0 || *pid_fd < 0 ||
	    inherit_init(list != NULL ? list : "") == -1)
		startup_fail("SLUICE_UPGRADE is set but unreadable: %s", v);
	fcntl(*fd, F_SETFD, FD_CLOEXEC);
	fcntl(*pid_fd, F_SETFD, FD_CLOEXEC);
	unsetenv("SLUICE_UPGRADE");
	unsetenv("SLUICE_UPGRADE_FDS");
	return 1;
}

/* Detach. The starting process exits 0 only when the daemon says its
 * workers run ("1" on the pipe), and 1 with the daemon's reason ("0" and
 * the text) or when the daemon died first, so scripts and service managers
 * can rely on its status. Returns the pipe's write end in the daemon. */
static int
daemonize(void)
{
	char msg[600];
	size_t len = 0;
	ssize_t n;
	int p[2], nul;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1)
		startup_fail("pipe: %s", strerror(errno));
	if ((pid = fork()) == -1)
		startup_fail("fork: %s", strerror(errno));
	if (pid != 0) {
		close(p[1]);
		while (len < sizeof(msg) - 1 &&
		       ((n = read(p[0], msg + len, sizeof(msg) - 1 - len)) > 0 ||
		           (n == -1 && errno == EINTR))) {
			if (n > 0)
				len += (size_t)n;
			if (msg[0] == '1')
				_exit(0);
		}
		msg[len] = '\0';
		if (len > 1 && msg[0] == '0')
			fprintf(stderr, "sluiced: %s; see the log\n", msg + 1);
		else
			fprintf(stderr, "sluiced: the daemon exited during start-up; see the log\n");
		_exit(1);
	}
	close(p[0]);
	if (setsid() == -1)
		startup_fail("setsid: %s", strerror(errno));
	if (chdir("/") == -1)
		startup_fail("chdir /: %s", strerror(errno));
	if ((nul = open("/dev/null", O_RDWR)) != -1) {
		dup2(nul, STDIN_FILENO);
		dup2(nul, STDOUT_FILENO);
		dup2(nul, STDERR_FILENO);
		if (nul > STDERR_FILENO)
			close(nul);
	}
	return p[1];
}

/* -s: the signals an operator may send by name. */
static const struct {
	const char *name;
	int sig;
} signal_names[] = {
	{ "reload", SIGHUP },
	{ "stop", SIGTERM },
	{ "quit", SIGQUIT },
	{ "reopen", SIGUSR1 },
	{ "upgrade", SIGUSR2 },
};

static int
signal_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
		if (strcmp(name, signal_names[i].name) == 0)
			return signal_names[i].sig;
	return 0;
}

/*
 * sluiced -s: signal the master named by conf's pid file. It is running only
 * while it holds the lock file, so a stale pid file left by a crash (whose pid
 * may belong to someone else by now) is never signalled. Returns the exit
 * status.
 */
static int
signal_master(const struct conf *conf, const char *action, int sig)
{
	const char *path = conf->pid_file;
	char lock[PATH_MAX], buf[32];
	ssize_t n;
	long pid;
	char *end;
	int fd, lfd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			fprintf(stderr, "sluiced: not running (no pid file %s)\n", path);
		else
			fprintf(stderr, "sluiced: cannot open pid file %s: %s\n", path,
			    strerror(errno));
		return 1;
	}
	lockfile_name(path, lock, sizeof(lock));
	lfd = open(lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (lfd == -1 && errno == ENOENT) {
		fprintf(stderr, "sluiced: not running (pid file %s is not locked)\n", path);
		close(fd);
		return 1;
	}
	if (lfd == -1) {
		fprintf(stderr, "sluiced: cannot open lock file %s: %s\n", lock, strerror(errno));
		close(fd);
		return 1;
	}
	if (flock(lfd, LOCK_SH | LOCK_NB) == 0) {
		fprintf(stderr, "sluiced: not running (pid file %s is not locked)\n", path);
		close(lfd);
		close(fd);
		return 1;
	}
	if (errno != EWOULDBLOCK) {
		fprintf(stderr, "sluiced: cannot check the lock on %s: %s\n", lock,
		    strerror(errno));
		close(lfd);
		close(fd);
		return 1;
	}
	close(lfd);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	pid = strtol(buf, &end, 10);
	if (n <= 0 || pid <= 1 || (*end != '\n' && *end != '\0')) {
		fprintf(stderr, "sluiced: pid file %s holds no pid (is the master still "
		                "starting?)\n", path);
		return 1;
	}
	if (kill((pid_t)pid, sig) == -1) {
		fprintf(stderr, "sluiced: cannot send %s to pid %ld: %s\n", action, pid,
		    strerror(errno));
		return 1;
	}
	return 0;
}

/*
 * path made absolute by prefixing the working directory, with symbolic links
 * left as they are: a reload must read what the name means then (a
 * Kubernetes ConfigMap or a "current -> release/N" switch replaces the link),
 * not the file it pointed to at start. Returns 0, or -1 with errno.
 */
static int
absolute_path(const char *path, char *out, size_t len)
{
	char cwd[PATH_MAX];
	int n;

	if (path[0] == '/')
		n = snprintf(out, len, "%s", path);
	else if (getcwd(cwd, sizeof(cwd)) == NULL)
		return -1;
	else
		n = snprintf(out, len, "%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", path);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Processes each get the full descriptor budget: take the hard limit. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	const char *path = SYSCONFDIR "/sluice.conf";
	char abspath[PATH_MAX], err[1024];
	struct master_start st;
	struct stats_seg seg;
	struct conf *conf;
	struct priv priv;
	int test = 0, opt, rc, sig = 0, upgrade, up_fd = -1, up_pid_fd = -1, up_fg = 0;
	struct stats_seg old_seg;
	char *pid_file, *stats_file;
	const char *action = NULL;

	/* Before getopt keeps pointers into argv: the title needs its memory. */
	proctitle_init(argc, argv);
	while ((opt = getopt(argc, argv, "c:fts:Vh")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 't':
			test = 1;
			break;
		case 's':
			action = optarg;
			if ((sig = signal_by_name(action)) == 0) {
				fprintf(stderr, "sluiced: -s %s: unknown signal (use reload, stop, "
				                "quit, reopen or upgrade)\n", action);
				usage(stderr);
				return 2;
			}
			break;
		case 'V':
			printf("sluiced %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	/* Neither checking nor signalling starts a daemon: errors go to stderr. */
	foreground |= test || action != NULL;
	upgrade = !test && action == NULL && upgrade_env(&up_fd, &up_pid_fd, &up_fg);

	/* Reloads re-read the file after chdir("/"): keep an absolute path. */
	if (absolute_path(path, abspath, sizeof(abspath)) == -1)
		startup_fail("cannot read configuration %s: %s", path, strerror(errno));
	/* -s needs only pid_file: a DNS outage must not block a stop. */
	conf = action != NULL ? conf_peek(abspath, err, sizeof(err))
	                      : conf_load(abspath, err, sizeof(err));
	if (conf == NULL)
		startup_fail("%s", err);
	if (action != NULL) {
		rc = signal_master(conf, action, sig);
		conf_free(conf);
		return rc;
	}
	if (priv_plan(conf, &priv, err, sizeof(err)) == -1)
		startup_fail("%s", err);
	if (test) {
		printf("%s: configuration OK\n", path);
		conf_free(conf);
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	/* Before the first fork: no child may inherit $NOTIFY_SOCKET. */
	notify_init();
	log_set_role("master");
	if (foreground)
		log_open(LOG_TARGET_STDERR, NULL, 0, conf->log_level);
	else if (log_open(conf->log_target, conf->log_file, conf->log_facility,
	             conf->log_level) == -1)
		startup_fail("cannot open log file %s: %s", conf->log_file, strerror(errno));
	else
		priv_own_log(&priv, conf);
	priv_log(&priv);

	pid_file = strdup(conf->pid_file);
	stats_file = strdup(conf->stats_file);
	if (pid_file == NULL || stats_file == NULL)
		startup_fail("out of memory");
	memset(&st, 0, sizeof(st));
	st.upgrade_fd = -1;
	/* An upgrade holds the lock already: the old master's descriptor is
	 * ours too. */
	st.pid_fd = upgrade ? up_pid_fd : pidfile_lock(pid_file);
	if ((st.listen_fds = listen_open(conf, NULL, NULL, err, sizeof(err))) == NULL)
		startup_fail("%s", err);
	make_parent_dir(stats_file);
	/* The old master's totals go on in our segment: read them before ours
	 * replaces its file (its mapping stays for the final count). */
	if (upgrade && stats_attach(&old_seg, stats_file, err, sizeof(err)) == 0) {
		stats_total(&old_seg, &st.seeded);
		st.old_seg = &old_seg;
	} else if (upgrade) {
		log_warnx("upgrade: the old statistics cannot be read (%s); totals start over", err);
	}
	if (stats_create(&seg, stats_file, STATS_SLOTS, err, sizeof(err)) == -1)
		startup_fail("%s", err);
	if (st.old_seg != NULL) {
		/* Same rows for the same listeners and servers (sessions handed
		 * over name them), and every total carried on. */
		unsigned nl = old_seg.nlisteners > seg.nlisteners ? old_seg.nlisteners : seg.nlisteners;
		unsigned ns = old_seg.nservers > seg.nservers ? old_seg.nservers : seg.nservers;

		stats_inherit(&seg, &old_seg);
		stats_retired_add(&seg, &st.seeded);
		st.seeded_rows_l = calloc(nl, sizeof(*st.seeded_rows_l));
		st.seeded_rows_s = calloc(ns, sizeof(*st.seeded_rows_s));
		if (st.seeded_rows_l == NULL || st.seeded_rows_s == NULL)
			startup_fail("out of memory");
		stats_row_totals(&old_seg, st.seeded_rows_l, st.seeded_rows_s);
		stats_rows_retired_add(&seg, st.seeded_rows_l, st.seeded_rows_s);
		st.first_generation = __atomic_load_n(&old_seg.hdr->generation, __ATOMIC_RELAXED) + 1;
	}
	if (priv_own_stats(&priv, stats_file) == -1)
		log_warn("cannot give %s to group %s: sluicestat needs root to read it", stats_file,
		    priv.group);
	master_check_fd_budget(conf);
	if (conf->control_socket != NULL)
		make_parent_dir(conf->control_socket);
	if (control_open(conf, err, sizeof(err)) == -1)
		startup_fail("%s", err);

	if (upgrade) {
		/* Detached already; the pid file names us once we run. */
		st.ready_fd = -1;
		st.upgrade_fd = up_fd;
		foreground = up_fg;
	} else {
		st.ready_fd = foreground ? -1 : daemonize();
		pidfile_write(pid_file);
	}
	seg.hdr->master_pid = getpid();

	st.conf = conf;
	st.stats = &seg;
	st.foreground = foreground;
	st.priv = &priv;
	rc = master_run(&st);

	/* After a hot upgrade both are the new master's. */
	if (!master_upgraded()) {
		unlink(stats_file);
		unlink(pid_file);
	}
	stats_detach(&seg);
	free(pid_file);
	free(stats_file);
	return rc;
}
