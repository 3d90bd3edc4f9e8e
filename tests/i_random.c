/* SPDX-License-Identifier: BSD-2-Clause */
/* i_random.c — integration test of balance = "random" (two random choices)
 * through the real daemon with 2 workers: held clients never go to the one
 * server that holds the most connections over all workers, the load stays
 * spread, a server an operator drains (sluicectl) or weighs 0 takes nobody
 * new, and a weight of 3 draws about three times the clients. Echo backends
 * log each accept; clients go one at a time, so the log that moved tells
 * which server took a client. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"
#include "uphelp.h"

#define NS 3
#define HELD 30

static int ports[NS];
static char sockpath[256];

/* sluicectl -S SOCKET words...: its exit status. */
static int
ctl(const char *first, ...)
{
	const char *p = getenv("SLUICECTL");
	char *argv[16], *out = NULL;
	int argc = 0, rc;
	va_list ap;
	char *w;

	if (p == NULL)
		bail("SLUICECTL is not set (run through make check)");
	argv[argc++] = (char *)p;
	argv[argc++] = "-S";
	argv[argc++] = sockpath;
	argv[argc++] = (char *)first;
	va_start(ap, first);
	while ((w = va_arg(ap, char *)) != NULL && argc < 15)
		argv[argc++] = w;
	va_end(ap);
	argv[argc] = NULL;
	rc = h_run(argv, &out, 20000);
	if (rc != 0)
		diag("sluicectl %s: status %d: %s", first, rc, out ? out : "");
	free(out);
	return rc;
}

/* Active connections of each server over all workers. */
static void
loads(uint64_t *l)
{
	struct stats_server_counters c;

	for (int i = 0; i < NS; i++) {
		if (up_server("rnd", ports[i], &c, NULL) == -1)
			bail("no server rows in the stats segment");
		l[i] = c.active;
	}
}

int
main(void)
{
	int lport = h_free_port(), fds[HELD], where[HELD], n[NS] = {0}, bad = 0, unserved = 0;
	uint64_t l[NS], hi, lo;
	char name[NS][64];
	const char *conf;
	pid_t pid;

	for (int i = 0; i < NS; i++) {
		ports[i] = h_free_port();
		h_echod_start(ports[i]);
		snprintf(name[i], sizeof(name[i]), "rnd/127.0.0.1:%d", ports[i]);
	}
	snprintf(sockpath, sizeof(sockpath), "%s", h_path("ctl.sock"));
	conf = up_conf("random.conf", 2,
	    "timeouts = { connect = \"30s\"; };\n"
	    "control = { socket = \"%s\"; mode = \"0600\"; };\n"
	    "upstreams = ( { name = \"rnd\"; balance = \"random\";\n"
	    "    servers = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\", \"127.0.0.1:%d\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"rnd\"; } );\n",
	    sockpath, ports[0], ports[1], ports[2], lport);
	pid = h_sluiced_start(conf, lport, 2);

	/* Held clients, one at a time: with the loads settled before each,
	 * a server that alone holds the most never wins its pair. */
	for (int i = 0; i < HELD; i++) {
		int max = -1, ties = 0;

		loads(l);
		for (int k = 0; k < NS; k++) {
			if (max == -1 || l[k] > l[max]) {
				max = k;
				ties = 0;
			} else if (l[k] == l[max]) {
				ties++;
			}
		}
		where[i] = up_client(lport, NULL, ports, NS, &fds[i]);
		if (where[i] < 0) {
			unserved++;
			continue;
		}
		n[where[i]]++;
		if (ties == 0 && where[i] == max) {
			bad++;
			diag("client %d went to server %d holding the most (%llu/%llu/%llu)", i,
			    where[i], (unsigned long long)l[0], (unsigned long long)l[1],
			    (unsigned long long)l[2]);
		}
		if (!up_wait_server_active("rnd", ports[where[i]], l[where[i]] + 1, 10000))
			bail("the server row did not count the held client");
	}
	is(unserved, 0, "every held client was served");
	is(bad, 0, "no client went to the one server holding the most connections");
	loads(l);
	hi = lo = l[0];
	for (int k = 1; k < NS; k++) {
		hi = l[k] > hi ? l[k] : hi;
		lo = l[k] < lo ? l[k] : lo;
	}
	/* Two choices never pick a server that alone holds the most (checked
	 * above for every client), but a tie lets two servers move ahead
	 * together while the pair drawn leaves out the third: 11/8/11 was
	 * seen in CI. A spread of 5 or more over 30 clients would take many
	 * such draws in a row. */
	ok(hi - lo <= 4, "%d held clients spread within 4 of each other (%llu/%llu/%llu)", HELD,
	    (unsigned long long)l[0], (unsigned long long)l[1], (unsigned long long)l[2]);
	for (int i = 0; i < HELD; i++)
		if (where[i] >= 0)
			close(fds[i]);
	for (int k = 0; k < NS; k++)
		if (!up_wait_server_active("rnd", ports[k], 0, 10000))
			bail("held clients did not close");

	/* Drained by the operator: nobody new. */
	ok(ctl("set", "server", name[1], "state", "drain", NULL) == 0, "server 1 set to drain");
	memset(n, 0, sizeof(n));
	for (int i = 0; i < 20; i++) {
		int s = up_client(lport, NULL, ports, NS, NULL);

		if (s >= 0)
			n[s]++;
	}
	ok(n[1] == 0 && n[0] + n[2] == 20, "a drained server takes no client (%d/%d/%d)", n[0],
	    n[1], n[2]);
	ok(ctl("set", "server", name[1], "state", "ready", NULL) == 0, "server 1 ready again");

	/* Weight 0 from the operator: nobody new either. */
	ok(ctl("set", "server", name[2], "weight", "0", NULL) == 0, "server 2 weight 0");
	memset(n, 0, sizeof(n));
	for (int i = 0; i < 20; i++) {
		int s = up_client(lport, NULL, ports, NS, NULL);

		if (s >= 0)
			n[s]++;
	}
	ok(n[2] == 0 && n[0] + n[1] == 20, "a server of weight 0 takes no client (%d/%d/%d)",
	    n[0], n[1], n[2]);

	/* Weights 3 and 1, clients held: shares fill 3:1 (30 and 10 of 40,
	 * within a few: the loads are per weight, as in least connections). */
	ok(ctl("set", "server", name[0], "weight", "3", NULL) == 0, "server 0 weight 3");
	memset(n, 0, sizeof(n));
	unserved = 0;
	{
		int held[40];

		for (int i = 0; i < 40; i++) {
			int s = up_client(lport, NULL, ports, NS, &held[i]);

			if (s < 0) {
				unserved++;
				held[i] = -1;
				continue;
			}
			n[s]++;
			if (!up_wait_server_active("rnd", ports[s], (uint64_t)n[s], 10000))
				bail("the server row did not count the held client");
		}
		ok(unserved == 0 && n[2] == 0 && n[0] >= 27 && n[0] <= 33,
		    "weights 3 and 1 (and 0) fill 30 and 10 of 40 held clients, within 3 "
		    "(%d/%d/%d)",
		    n[0], n[1], n[2]);
		for (int i = 0; i < 40; i++)
			if (held[i] != -1)
				close(held[i]);
	}

	up_stop(pid);
	done_testing();
	return tap_exit();
}
