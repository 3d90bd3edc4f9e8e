/* SPDX-License-Identifier: BSD-2-Clause */
/* i_upgrade.c — integration test of the hot binary upgrade: sluiced runs
 * from a copy of the binary under test, which the test replaces with a fresh
 * copy before each of three upgrades (SIGUSR2, sluiced -s upgrade, sluicectl
 * upgrade). Idle, request/response and bulk connections survive all three
 * with every byte checked; the pid file names each new master; totals never
 * go down. Then the failures: a binary that refuses the config, one that
 * dies at start, and one that never runs its workers: each time the running
 * master keeps serving and says why. Signals only processes it started (a
 * master's pid is checked against the copy's path before each signal). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"

/* make check's sizes; the proof (2,000 idle and 20 rr connections)
 * runs with I_UPGRADE_FULL=1. */
#define NIDLE_MAX 2000
#define NRR_MAX 20
static int NIDLE = 200, NRR = 8;

static char bin[PATH_MAX], ctl[PATH_MAX];
static int idle[NIDLE_MAX], rr[NRR_MAX];
static struct h_xfer *bulk;
static int bulk_left;

static const char *
sluicectl(void)
{
	const char *p = getenv("SLUICECTL");

	if (p == NULL)
		bail("SLUICECTL is not set (run through make check)");
	return p;
}

static int
traffic(void)
{
	int bad = 0;

	for (int i = 0; i < NRR; i++)
		if (h_round_trip(rr[i], 5000) != 0)
			bad++;
	if (bulk != NULL && bulk_left > 0)
		bulk_left = h_xfer_run(bulk, 5);
	return bad;
}

/* Copy the binary under test to bin, by a new file renamed over it: a fresh
 * build, as far as the running master can tell. */
static void
install_binary(const char *from)
{
	char tmp[PATH_MAX + 8], *data;
	FILE *in = fopen(from, "rb"), *out;
	long n;

	snprintf(tmp, sizeof(tmp), "%s.new", bin);
	if (in == NULL || fseek(in, 0, SEEK_END) != 0 || (n = ftell(in)) <= 0)
		bail("read %s: %s", from, strerror(errno));
	rewind(in);
	if ((data = malloc((size_t)n)) == NULL || fread(data, 1, (size_t)n, in) != (size_t)n)
		bail("read %s", from);
	fclose(in);
	if ((out = fopen(tmp, "wb")) == NULL || fwrite(data, 1, (size_t)n, out) != (size_t)n ||
	    fclose(out) != 0 || chmod(tmp, 0755) != 0 || rename(tmp, bin) != 0)
		bail("install %s: %s", bin, strerror(errno));
	free(data);
}

/* A shell script as the "new binary". */
static void
install_script(const char *body)
{
	char tmp[PATH_MAX + 8];

	snprintf(tmp, sizeof(tmp), "%s.new", bin);
	h_write_file(tmp, "#!/bin/sh\n%s\n", body);
	if (chmod(tmp, 0755) != 0 || rename(tmp, bin) != 0)
		bail("install script: %s", strerror(errno));
}

/* The master named by the pid file, if it runs our copy. */
static pid_t
master_pid(void)
{
	char path[64], exe[PATH_MAX];
	pid_t pid = h_pidfile_pid();
	ssize_t n;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return 0;
	exe[n] = '\0';
	return strncmp(exe, bin, strlen(bin)) == 0 ? pid : 0;
}

static int
gone(pid_t pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &st) != 0)
		return 1;
	/* A zombie our test reaps (the first master is our child). */
	return h_wait_exit(pid, 0, NULL) == 0;
}

static int
idle_bad(void)
{
	int bad = 0;

	for (int i = 0; i < NIDLE; i++)
		if (h_round_trip(idle[i], 5000) != 0)
			bad++;
	return bad;
}

/* Ask for an upgrade by way (0 SIGUSR2, 1 sluiced -s upgrade, 2 sluicectl
 * upgrade), wait until a new master names itself in the pid file and the
 * old one is gone. Returns the new master's pid, or 0. */
static pid_t
upgrade(pid_t old, int way, const char *conf, int *rr_bad, char **ctl_out)
{
	char *argv_s[] = { bin, "-s", "upgrade", "-c", (char *)conf, NULL };
	char *argv_c[] = { (char *)sluicectl(), "-S", ctl, "upgrade", NULL };
	uint64_t end = h_now_ms() + 40000;
	pid_t now = 0;
	int rc = 0;

	if (way == 0)
		kill(old, SIGUSR2);
	else if (way == 1)
		rc = h_run(argv_s, NULL, 20000);
	else
		rc = h_run(argv_c, ctl_out, 70000);
	if (rc != 0)
		diag("the upgrade command exited %d", rc);
	while (h_now_ms() < end) {
		*rr_bad += traffic();
		now = master_pid();
		if (now != 0 && now != old && gone(old))
			return now;
		h_nap(20);
	}
	diag("pid file names %d; old master %d %s", (int)now, (int)old,
	    gone(old) ? "gone" : "still there");
	return 0;
}

static void
stop_master(void)
{
	pid_t pid = master_pid();
	uint64_t end = h_now_ms() + 10000;

	if (pid == 0)
		return;
	kill(pid, SIGTERM);
	while (!gone(pid) && h_now_ms() < end)
		h_nap(20);
	if (!gone(pid))
		kill(pid, SIGKILL);
}

int
main(void)
{
	int echo_port = h_free_port(), port = h_free_port(), aport = h_free_port(), rr_bad = 0, good;
	pid_t echo = h_echod_start(echo_port), m0, m, prev;
	size_t sizes[2] = { 16u << 20, 16u << 20 };
	uint64_t accepted_before, bytes_before, acc0;
	int fd0;
	char extra[PATH_MAX + 256], *out = NULL;
	const char *conf;
	char *argv[5];

	if (getenv("I_UPGRADE_FULL") != NULL) {
		NIDLE = NIDLE_MAX;
		NRR = NRR_MAX;
	}
	snprintf(bin, sizeof(bin), "%s/sluiced", h_dir());
	snprintf(ctl, sizeof(ctl), "%s/ctl", h_dir());
	snprintf(extra, sizeof(extra),
	    "timeouts = { drain = \"300s\"; idle = \"120s\"; };\ncontrol = { socket = \"%s\"; };\n"
	    "admin = { listen = \"127.0.0.1:%d\"; };\n",
	    ctl, aport);
	conf = h_conf("up.conf", 2, port, &echo_port, 1, extra);
	install_binary(h_sluiced());
	/* Every master of the test gives a new binary 8 s to run (not 30). */
	setenv("SLUICE_TEST_UPGRADE_DEADLINE_MS", "8000", 1);
	argv[0] = bin;
	argv[1] = "-f";
	argv[2] = "-c";
	argv[3] = (char *)conf;
	argv[4] = NULL;
	m0 = h_spawn(argv, h_path("sluiced.log"));
	unsetenv("SLUICE_TEST_UPGRADE_DEADLINE_MS");
	if (h_wait_port(port, 10000) != 0)
		bail("sluiced did not start");
	{
		uint64_t end = h_now_ms() + 10000;

		pid_t pids[8];

		/* An upgrade is refused while a generation starts. */
		while ((master_pid() != m0 || h_stats_running(pids, 8, 0) != 2) && h_now_ms() < end)
			h_nap(20);
	}
	ok(master_pid() == m0, "sluiced runs from a copy of the binary (%s)", bin);
	for (int i = 0; i < NIDLE; i++)
		if ((idle[i] = h_connect(port, 5000)) == -1)
			bail("connect: %s", strerror(errno));
	for (int i = 0; i < NRR; i++)
		if ((rr[i] = h_connect(port, 5000)) == -1)
			bail("connect: %s", strerror(errno));
	ok(idle_bad() == 0 && traffic() == 0, "%d idle and %d rr connections work", NIDLE, NRR);
	bulk = h_xfer_start(port, 2, sizes, 32 << 10);
	bulk_left = 2;
	{
		uint64_t end = h_now_ms() + 10000;

		while (h_stat("active") < (uint64_t)(NIDLE + NRR + 2) && h_now_ms() < end)
			traffic();
	}
	acc0 = h_stat("accepted");
	fd0 = h_fd_count(m0);

	prev = m0;
	for (int way = 0; way < 3; way++) {
		static const char *const how[] = { "SIGUSR2", "sluiced -s upgrade",
			"sluicectl upgrade" };

		accepted_before = h_stat("accepted");
		bytes_before = h_stat("bytes_in");
		install_binary(h_sluiced());
		m = upgrade(prev, way, conf, &rr_bad, way == 2 ? &out : NULL);
		ok(m != 0, "upgrade %d (%s): a new master (pid %d) replaced pid %d", way + 1, how[way],
		    (int)m, (int)prev);
		if (way == 2)
			ok(out != NULL && strstr(out, "upgraded: new master pid") != NULL,
			    "sluicectl says: %s", out != NULL ? out : "(nothing)");
		ok(idle_bad() == 0, "every idle connection answers after upgrade %d", way + 1);
		ok(h_wait_http(aport, "/healthz", 200, "ok", 10000),
		    "the admin endpoint (its socket inherited) says ok after upgrade %d", way + 1);
		ok(h_stat("accepted") >= accepted_before && h_stat("bytes_in") >= bytes_before,
		    "totals did not go down (accepted %llu -> %llu)",
		    (unsigned long long)accepted_before, (unsigned long long)h_stat("accepted"));
		if (m == 0)
			break;
		prev = m;
	}
	free(out);
	out = NULL;
	good = h_xfer_finish(bulk, 60000);
	bulk = NULL;
	ok(good == 2, "both bulk transfers came back byte for byte across the upgrades");
	ok(rr_bad == 0, "no round trip failed (%d)", rr_bad);
	ok(h_stat("accepted") == acc0 && h_stat("closed_lost") == 0 &&
	       h_stat("closed_handoff_lost") == 0,
	    "accepted counts each connection once (%llu, %llu before the upgrades), none lost "
	    "(%llu)", (unsigned long long)h_stat("accepted"), (unsigned long long)acc0,
	    (unsigned long long)h_stat("closed_lost"));
	ok(h_stat("handed_in") == h_stat("handed_out"), "every session sent was taken (%llu)",
	    (unsigned long long)h_stat("handed_in"));
	{
		uint64_t end = h_now_ms() + 10000;

		/* The new master closes its end of the upgrade once the old one
		 * has gone. */
		while (h_count_lines(h_path("sluiced.log"), "the old master has exited") < 3 &&
		       h_now_ms() < end)
			h_nap(20);
		ok(h_fd_count(master_pid()) == fd0,
		    "the third master holds as many descriptors as the first (%d, %d)",
		    h_fd_count(master_pid()), fd0);
	}

	/* Failures: the running master stays and says why. */
	{
		struct {
			const char *script, *log, *what;
		} bad[] = {
			{ "echo 'broken: configuration refused' >&2; exit 1",
			  "refuses the configuration", "a binary that refuses the config" },
			{ "case \" $* \" in *' -t '*) exit 0;; esac; exit 3",
			  "exited with status 3 before it ran", "a binary that dies at start" },
			{ "case \" $* \" in *' -t '*) exit 0;; esac; exec sleep 60",
			  "did not run its workers within", "a binary that never runs" },
		};
		pid_t cur = master_pid();

		for (unsigned k = 0; k < 3; k++) {
			char *argv_c[] = { (char *)sluicectl(), "-S", ctl, "upgrade", NULL };
			int rc;

			install_script(bad[k].script);
			rc = h_run(argv_c, &out, 70000);
			ok(rc == 1 && out != NULL && strstr(out, bad[k].log) != NULL,
			    "%s: sluicectl exits 1 and says why (%d: %s)", bad[k].what, rc,
			    out != NULL ? out : "");
			free(out);
			out = NULL;
			ok(master_pid() == cur && idle_bad() == 0 && traffic() == 0,
			    "%s: the running master serves on", bad[k].what);
		}
	}

	for (int i = 0; i < NIDLE; i++)
		close(idle[i]);
	for (int i = 0; i < NRR; i++)
		close(rr[i]);
	stop_master();
	h_kill(echo);
	done_testing();
	return tap_exit();
}
