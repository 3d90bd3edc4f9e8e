/* SPDX-License-Identifier: BSD-2-Clause */
/* i_pidlock.c — integration test of the pid file's lock against other local
 * users: after a crash leaves a stale pid file, an unprivileged user (nobody)
 * who opens and locks what it can read must neither fool "sluiced -s" into
 * signalling the dead master's pid nor keep a new sluiced from starting.
 * Needs root (to become nobody in a forked child); skipped otherwise. Runs
 * sluiced and echod as children of this test on loopback ports and kills
 * only the processes it started. */
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

#define WORKERS 2

/*
 * Fork a child that becomes uid/gid, opens what it
 * can of the pid file and its lock file, takes an exclusive lock on each,
 * reports which (bit 0: pid file, bit 1: lock file) on a pipe and then holds
 * them until killed. Returns its pid; *locked gets the bits (-1 when it did
 * not report).
 */
static pid_t
lock_as(uid_t uid, gid_t gid, int *locked)
{
	char names[2][4096];
	int p[2], n = 0;
	pid_t pid;

	snprintf(names[0], sizeof(names[0]), "%s", h_pidfile());
	snprintf(names[1], sizeof(names[1]), "%s.lock", h_pidfile());
	if (pipe(p) == -1)
		bail("pipe: %s", strerror(errno));
	fflush(stdout);
	if ((pid = fork()) == -1)
		bail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		if (setgroups(0, NULL) == -1 || setgid(gid) == -1 || setuid(uid) == -1)
			_exit(1);
		for (int i = 0; i < 2; i++) {
			int fd = open(names[i], O_RDONLY);

			if (fd != -1 && flock(fd, LOCK_EX | LOCK_NB) == 0)
				n |= 1 << i;
		}
		(void)!write(p[1], &n, sizeof(n));
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], &n, sizeof(n)) != sizeof(n))
		n = -1;
	close(p[0]);
	*locked = n;
	return pid;
}

/* Spawn sluiced -f; 1 when it runs its workers within the deadline, 0 when
 * it exited (or never got there). */
static int
start(const char *conf, pid_t *master)
{
	char *argv[] = { (char *)h_sluiced(), "-f", "-c", (char *)conf, NULL };
	uint64_t end = h_now_ms() + 15000;

	*master = h_spawn(argv, h_path("sluiced.log"));
	while (h_now_ms() < end) {
		if (!h_alive(*master))
			return 0;
		if (h_stats_running(NULL, 0, 0) == WORKERS)
			return 1;
		h_nap(20);
	}
	return 0;
}

int
main(void)
{
	const struct passwd *pw = getpwnam("nobody");
	char *argv[] = { (char *)h_sluiced(), "-s", "reload", "-c", NULL, NULL };
	char *out = NULL;
	const char *conf;
	pid_t master, dead, locker;
	int ep, lp, locked, r, status;
	struct stat st;

	if (geteuid() != 0 || pw == NULL) {
		printf("1..0 # SKIP needs root and a user nobody\n");
		return 0;
	}
	/* nobody must reach the pid file, as it can in /run/sluice. */
	if (chmod(h_dir(), 0755) == -1)
		bail("chmod %s: %s", h_dir(), strerror(errno));
	ep = h_free_port();
	h_echod_start(ep);
	lp = h_free_port();
	conf = h_conf("sluiced.conf", WORKERS, lp, &ep, 1, NULL);
	argv[4] = (char *)conf;

	ok(start(conf, &master), "sluiced runs %d workers", WORKERS);
	if (stat(h_pidfile(), &st) == -1)
		st.st_mode = 0;
	ok((st.st_mode & 0044) == 0044,
	    "its pid file is readable by everyone (mode %03o)", (unsigned)(st.st_mode & 0777));
	/* A crash: the pid file stays behind, naming a dead process. */
	dead = master;
	h_kill(master);
	ok(!h_alive(dead), "the master crashed (SIGKILL)");
	for (uint64_t end = h_now_ms() + 15000; h_port_refuses(lp) != 1 && h_now_ms() < end;)
		h_nap(20);
	ok(access(h_pidfile(), F_OK) == 0, "the stale pid file is still there");

	locker = lock_as(pw->pw_uid, pw->pw_gid, &locked);
	ok(locked != -1 && (locked & 2) == 0, "nobody cannot lock the lock file (%s%s)",
	    locked & 1 ? "it did lock the pid file" : "it locked nothing",
	    locked & 2 ? ", and the lock file" : "");

	r = h_run(argv, &out, 10000);
	ok(r == 1 && out != NULL && strstr(out, "not running") != NULL,
	    "sluiced -s reload: not running (exit %d: %s)", r, out ? strtok(out, "\n") : "");
	free(out);

	ok(start(conf, &master), "a new sluiced starts despite nobody's locks");
	r = h_run(argv, &out, 10000);
	ok(r == 0, "sluiced -s reload reaches it (exit %d: %s)", r, out ? out : "");
	free(out);
	ok(h_wait_file_contains(h_path("sluiced.log"), "generation 2", 10000),
	    "and it reloaded");

	h_kill(locker);
	if (h_alive(master)) {
		kill(master, SIGTERM);
		ok(h_wait_exit(master, 15000, &status) == 0 && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0, "master exited 0");
	} else {
		ok(0, "master exited 0");
	}
	done_testing();
	return tap_exit();
}
