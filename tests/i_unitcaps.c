/* SPDX-License-Identifier: BSD-2-Clause */
/* i_unitcaps.c — the systemd unit's capability set, tried for real: sluiced
 * runs as root under setpriv(1) with only the capabilities of the unit's
 * CapabilityBoundingSet= and with no_new_privs (NoNewPrivileges=yes), binds
 * a port below 1024, runs its workers and checker as nobody, relays, reloads
 * (the old workers, now another user, must hear SIGQUIT) and stops
 * gracefully. Needs root and setpriv; skipped otherwise. Runs sluiced and
 * echod as children of this test on loopback ports. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"

/* setpriv's --bounding-set argument from the unit's CapabilityBoundingSet=
 * line: "-all,+net_bind_service,...". Returns 0, or -1 when the unit has
 * no such line. */
static int
unit_caps(const char *unit, char *out, size_t len)
{
	char *text = h_read_file(unit), *line, *save = NULL, *tok, *save2 = NULL;
	int found = -1;

	if (text == NULL)
		return -1;
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "CapabilityBoundingSet=", 22) != 0)
			continue;
		snprintf(out, len, "-all");
		for (tok = strtok_r(line + 22, " ", &save2); tok != NULL;
		     tok = strtok_r(NULL, " ", &save2)) {
			size_t used = strlen(out);

			if (strncmp(tok, "CAP_", 4) != 0)
				continue;
			snprintf(out + used, len - used, ",+%s", tok + 4);
			for (char *p = out + used; *p != '\0'; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p - 'A' + 'a');
		}
		found = 0;
	}
	free(text);
	return found;
}

/* A port below 1024 on 127.0.0.1 that was free a moment ago, or -1. */
static int
low_port(void)
{
	for (int i = 0; i < 400; i++) {
		int port = 600 + (int)((getpid() + i * 7) % 400), fd, one = 1;
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		fd = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			return port;
		}
		close(fd);
	}
	return -1;
}

/* "Field:\tvalue" of /proc/PID/status, the first word of value as a
 * number (base 16 when hex), or -1. */
static long long
status_field(pid_t pid, const char *field, int hex)
{
	char path[64], *text, *p;
	long long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((text = h_read_file(path)) == NULL)
		return -1;
	for (p = text; p != NULL; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, field, strlen(field)) == 0 && p[strlen(field)] == ':') {
			v = strtoll(p + strlen(field) + 1, NULL, hex ? 16 : 10);
			break;
		}
	free(text);
	return v;
}

static int
wait_gen_running(uint32_t gen, int n, pid_t *pids, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	while (h_now_ms() < end) {
		if (h_stats_generation() == gen && h_stats_running(pids, 8, gen) == n)
			return 1;
		h_nap(25);
	}
	return 0;
}

int
main(void)
{
	char unit[4096], caps[512], setpriv[] = "/usr/bin/setpriv";
	const char *top = getenv("TOP_SRCDIR");
	int lport, bport = h_free_port(), fd, status = -1, gone;
	const char *conf;
	pid_t master, w1[8] = { 0 }, w2[8] = { 0 }, kids[8] = { 0 };
	int nkids;

	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root (capabilities and a port below 1024)\n");
		return 0;
	}
	if (access(setpriv, X_OK) == -1) {
		printf("1..0 # SKIP no %s (Debian: util-linux)\n", setpriv);
		return 0;
	}
	snprintf(unit, sizeof(unit), "%s/etc/sluiced.service.in", top != NULL ? top : ".");
	plan(10);
	ok(unit_caps(unit, caps, sizeof(caps)) == 0, "the unit's bounding set: %s", caps);
	lport = low_port();
	ok(lport > 0, "a free port below 1024: %d", lport);

	h_echod_start(bport);
	/* Workers (nobody) never read our directory; the master (root without
	 * CAP_DAC_OVERRIDE) owns it. */
	conf = strdup(h_path("caps.conf"));
	h_write_file(conf,
	    "workers = 2;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "user = \"nobody\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "timeouts = { drain = \"5s\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" );\n"
	    "    health = { interval = \"1s\"; }; } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    h_pidfile(), h_statsfile(), bport, lport);
	{
		char bset[600];
		char *argv[] = { setpriv, bset, "--no-new-privs", "--", (char *)h_sluiced(), "-f",
			"-c", (char *)conf, NULL };

		snprintf(bset, sizeof(bset), "--bounding-set=%s", caps);
		master = h_spawn(argv, h_path("sluiced.log"));
	}
	ok(wait_gen_running(1, 2, w1, 20000) && h_wait_port(lport, 10000) == 0,
	    "sluiced starts on port %d with the unit's capabilities only", lport);
	ok(status_field(master, "NoNewPrivs", 0) == 1 &&
	       status_field(master, "CapBnd", 1) == status_field(master, "CapEff", 1),
	    "the master runs with no_new_privs and just the bounding set (CapEff %llx)",
	    status_field(master, "CapEff", 1));
	ok(status_field(w1[0], "Uid", 0) == 65534 && status_field(w1[1], "Uid", 0) == 65534,
	    "its workers switched to nobody");
	fd = h_connect(lport, 5000);
	ok(fd != -1 && h_round_trip(fd, 5000) == 0, "a connection relays");
	if (fd != -1)
		close(fd);

	/* The old workers run as nobody: telling them to drain takes CAP_KILL. */
	kill(master, SIGHUP);
	ok(wait_gen_running(2, 2, w2, 20000), "SIGHUP: generation 2 runs");
	{
		uint64_t end = h_now_ms() + 20000;

		do {
			gone = !h_alive(w1[0]) && !h_alive(w1[1]);
			if (!gone)
				h_nap(25);
		} while (!gone && h_now_ms() < end);
	}
	ok(gone, "the old workers heard SIGQUIT and left");
	fd = h_connect(lport, 5000);
	ok(fd != -1 && h_round_trip(fd, 5000) == 0, "generation 2 relays");
	if (fd != -1)
		close(fd);

	nkids = h_children(master, kids, 8);
	kill(master, SIGQUIT);
	ok(h_wait_exit(master, 30000, &status) == 0 && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0,
	    "SIGQUIT: a graceful stop, exit 0");
	/* Should the capabilities fall short, the master could not signal its
	 * children (nor could the kernel's parent-death signal, which is
	 * checked against the dying master's rights): they are ours to end. */
	h_kill(master);
	for (int i = 0; i < 8; i++) {
		if (w1[i] > 0 && h_alive(w1[i]))
			kill(w1[i], SIGKILL);
		if (w2[i] > 0 && h_alive(w2[i]))
			kill(w2[i], SIGKILL);
		if (i < nkids && h_alive(kids[i]))
			kill(kids[i], SIGKILL);
	}
	free((char *)conf);
	return tap_failed != 0;
}
