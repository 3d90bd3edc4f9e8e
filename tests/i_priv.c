/* SPDX-License-Identifier: BSD-2-Clause */
/* i_priv.c — integration test of privileges, as root (skipped otherwise): the
 * master stays root, workers run as user/group for good (all ids, no caps, no
 * other groups), the stats file is 0640 for that group only, user = "root"
 * warns, no user means nobody, chroot confines, and -t catches mistakes.
 * Runs sluiced and echod children on loopback ports; signals only them. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"

#define WORKERS 2

static int ep, lp;

/* The value of `key` ("Uid:", ...) in /proc/PID/status, blanks collapsed to
 * single spaces, or "" when unreadable. */
static const char *
status_of(pid_t pid, const char *key)
{
	static char out[256];
	char path[64], *text, *p, *q;
	size_t n = 0;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((text = h_read_file(path)) == NULL)
		return out;
	for (p = strtok(text, "\n"); p != NULL; p = strtok(NULL, "\n")) {
		if (strncmp(p, key, strlen(key)) != 0)
			continue;
		for (q = p + strlen(key); *q != '\0' && n < sizeof(out) - 1; q++) {
			if (*q == ' ' || *q == '\t') {
				if (n > 0 && out[n - 1] != ' ')
					out[n++] = ' ';
				continue;
			}
			out[n++] = *q;
		}
		while (n > 0 && out[n - 1] == ' ')
			n--;
		out[n] = '\0';
		break;
	}
	free(text);
	return out;
}

static int
echo_ok(int port, int n)
{
	size_t sizes[16];

	for (int i = 0; i < n && i < 16; i++)
		sizes[i] = 2000 + 555 * (size_t)i;
	return h_echo_many(port, n, sizes, 0, 20000) == n;
}

static void
stop(pid_t master, const char *what)
{
	int status;

	ok(kill(master, SIGTERM) == 0 && h_wait_exit(master, 15000, &status) == 0 &&
	    WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: master stopped and exited 0",
	    what);
}

/* In a child switched to uid/gid (and only that group): 0 when the file
 * opens read-only, else the errno. */
static int
open_as(uid_t uid, gid_t gid, const char *path)
{
	pid_t pid;
	int st;

	fflush(stdout);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		int fd;

		if (setgroups(1, &gid) == -1 || setgid(gid) == -1 || setuid(uid) == -1)
			_exit(250);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		_exit(fd == -1 ? (errno & 0xff) : 0);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* sluiced -t on a config; its output in *out (caller frees). */
static int
check(const char *conf, char **out)
{
	char *argv[] = { (char *)h_sluiced(), "-t", "-c", (char *)conf, NULL };

	return h_run(argv, out, 10000);
}

int
main(void)
{
	const struct passwd *pw;
	const struct group *gr;
	char want[128], jail[PATH_MAX], root[PATH_MAX], *out;
	struct stat st;
	pid_t master, pids[64];
	uid_t nobody;
	gid_t nogroup;
	ssize_t len;
	int n, r;

	if (geteuid() != 0) {
		skip(1, "privilege tests need root");
		done_testing();
		return tap_exit();
	}
	if ((pw = getpwnam("nobody")) == NULL || (gr = getgrnam("nogroup")) == NULL)
		bail("no nobody user or nogroup group on this system");
	nobody = pw->pw_uid;
	nogroup = gr->gr_gid;
	/* Let other users reach the stats file inside our temporary directory
	 * (h_dir is 0700): only the file's own mode should decide. */
	if (chmod(h_dir(), 0711) == -1)
		bail("chmod %s: %s", h_dir(), strerror(errno));
	ep = h_free_port();
	h_echod_start(ep);
	lp = h_free_port();

	/* ---- user and group set ---- */
	master = h_sluiced_start(h_conf("user.conf", WORKERS, lp, &ep, 1,
	    "user = \"nobody\"; group = \"nogroup\";"), lp, WORKERS);
	n = h_stats_running(pids, 64, 0);
	is(n, WORKERS, "%d workers run", WORKERS);
	is_str(status_of(master, "Uid:"), "0 0 0 0", "the master stays root");
	snprintf(want, sizeof(want), "%lu %lu %lu %lu", (unsigned long)nobody,
	    (unsigned long)nobody, (unsigned long)nobody, (unsigned long)nobody);
	for (int i = 0; i < n; i++) {
		char gids[128], grp[32];

		snprintf(gids, sizeof(gids), "%lu %lu %lu %lu", (unsigned long)nogroup,
		    (unsigned long)nogroup, (unsigned long)nogroup, (unsigned long)nogroup);
		snprintf(grp, sizeof(grp), "%lu", (unsigned long)nogroup);
		is_str(status_of(pids[i], "Uid:"), want,
		    "worker pid %d: real, effective, saved and fs uid are nobody's", (int)pids[i]);
		is_str(status_of(pids[i], "Gid:"), gids,
		    "worker pid %d: real, effective, saved and fs gid are nogroup's", (int)pids[i]);
		is_str(status_of(pids[i], "Groups:"), grp,
		    "worker pid %d: no supplementary group but nogroup", (int)pids[i]);
		/* With every uid switched and no permitted capability, nothing
		 * can bring root back: setuid(0) fails (the worker checks it
		 * too, and refuses to run otherwise). */
		is_str(status_of(pids[i], "CapPrm:"), "0000000000000000",
		    "worker pid %d: no permitted capabilities", (int)pids[i]);
		is_str(status_of(pids[i], "CapEff:"), "0000000000000000",
		    "worker pid %d: no effective capabilities", (int)pids[i]);
	}
	ok(echo_ok(lp, 8), "the unprivileged workers relay");
	memset(&st, 0, sizeof(st));
	r = stat(h_statsfile(), &st);
	ok(r == 0 && (st.st_mode & 07777) == 0640, "the stats file is mode 0640 (%o)",
	    (unsigned)(st.st_mode & 07777));
	ok(st.st_uid == 0 && st.st_gid == nogroup, "it belongs to root and group nogroup");
	is(open_as(nobody, nogroup, h_statsfile()), 0, "a member of nogroup can read it");
	is(open_as(nobody - 1, nobody - 1, h_statsfile()), EACCES, "anyone else cannot (EACCES)");
	ok(h_file_contains(h_path("sluiced.log"),
	    "workers run as user nobody"), "log: workers run as user nobody");
	stop(master, "user nobody");

	/* ---- user = "root": allowed, but said loudly ---- */
	master = h_sluiced_start(h_conf("root.conf", WORKERS, lp, &ep, 1, "user = \"root\";"), lp,
	    WORKERS);
	n = h_stats_running(pids, 64, 0);
	ok(n == WORKERS && strcmp(status_of(pids[0], "Uid:"), "0 0 0 0") == 0,
	    "with user = \"root\" the workers run as root");
	ok(h_file_contains(h_path("sluiced.log"), "warning: workers run as root (user = \"root\")"),
	    "log: a warning says the workers run as root");
	ok(echo_ok(lp, 4), "root workers relay");
	stop(master, "user root");

	/* ---- no user: root workers need asking for, so "nobody" it is ---- */
	master = h_sluiced_start(h_conf("default.conf", WORKERS, lp, &ep, 1, NULL), lp, WORKERS);
	n = h_stats_running(pids, 64, 0);
	ok(n == WORKERS && strcmp(status_of(pids[0], "Uid:"), want) == 0 &&
	    strcmp(status_of(pids[n - 1], "Uid:"), want) == 0,
	    "without user the workers run as nobody");
	ok(h_file_contains(h_path("sluiced.log"), "user is not set: workers run as nobody"),
	    "log: says so");
	stop(master, "no user");

	/* ---- chroot ---- */
	snprintf(jail, sizeof(jail), "%s", h_path("jail"));
	if (mkdir(jail, 0755) == -1)
		bail("mkdir %s: %s", jail, strerror(errno));
	{
		char extra[PATH_MAX + 64], *saved = NULL;

		snprintf(extra, sizeof(extra), "user = \"nobody\"; chroot = \"%s\";", jail);
		/* LeakSanitizer reads /proc at exit, which an empty chroot has
		 * not: in a sanitizer build it would only report that. */
		if (getenv("LSAN_OPTIONS") != NULL)
			saved = strdup(getenv("LSAN_OPTIONS"));
		setenv("LSAN_OPTIONS", "detect_leaks=0", 1);
		master = h_sluiced_start(h_conf("jail.conf", WORKERS, lp, &ep, 1, extra), lp,
		    WORKERS);
		if (saved != NULL)
			setenv("LSAN_OPTIONS", saved, 1);
		else
			unsetenv("LSAN_OPTIONS");
		free(saved);
	}
	n = h_stats_running(pids, 64, 0);
	for (int i = 0; i < n; i++) {
		char link[64];

		snprintf(link, sizeof(link), "/proc/%ld/root", (long)pids[i]);
		len = readlink(link, root, sizeof(root) - 1);
		root[len > 0 ? len : 0] = '\0';
		is_str(root, jail, "worker pid %d is confined to the chroot", (int)pids[i]);
		is_str(status_of(pids[i], "Uid:"), want, "worker pid %d runs as nobody",
		    (int)pids[i]);
	}
	{
		char link[64];

		snprintf(link, sizeof(link), "/proc/%ld/root", (long)master);
		len = readlink(link, root, sizeof(root) - 1);
	}
	root[len > 0 ? len : 0] = '\0';
	is_str(root, "/", "the master is not confined");
	ok(echo_ok(lp, 8), "workers in the chroot relay");
	stop(master, "chroot");

	/* ---- mistakes are caught by -t ---- */
	r = check(h_conf("bad1.conf", 1, lp, &ep, 1, "user = \"no-such-user-sluice\";"), &out);
	ok(r == 1 && out && strstr(out, ": user: unknown user \"no-such-user-sluice\""),
	    "-t: an unknown user is an error: %s", out ? strtok(out, "\n") : "");
	free(out);
	r = check(h_conf("bad2.conf", 1, lp, &ep, 1, "group = \"no-such-group-sluice\";"), &out);
	ok(r == 1 && out && strstr(out, ": group: unknown group \"no-such-group-sluice\""),
	    "-t: an unknown group is an error: %s", out ? strtok(out, "\n") : "");
	free(out);
	r = check(h_conf("bad3.conf", 1, lp, &ep, 1, "chroot = \"var/empty\";"), &out);
	ok(r == 1 && out && strstr(out, ": chroot: must be an absolute path"),
	    "-t: a relative chroot is an error: %s", out ? strtok(out, "\n") : "");
	free(out);
	{
		char extra[PATH_MAX + 64];

		snprintf(extra, sizeof(extra), "chroot = \"%s\";", h_path("no-such-dir"));
		r = check(h_conf("bad4.conf", 1, lp, &ep, 1, extra), &out);
		ok(r == 1 && out && strstr(out, "No such file or directory"),
		    "-t: a missing chroot directory is an error: %s",
		    out ? strtok(out, "\n") : "");
		free(out);
	}
	h_write_file(h_path("bad5.conf"),
	    "chroot = \"%s\";\n"
	    "log = { target = \"file\"; file = \"%s\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    jail, h_path("x.log"), ep, lp);
	r = check(h_path("bad5.conf"), &out);
	ok(r == 1 && out && strstr(out, ":1: chroot: workers inside a chroot cannot reopen"),
	    "-t: chroot with a log file is an error: %s", out ? strtok(out, "\n") : "");
	free(out);
	done_testing();
	return tap_exit();
}
