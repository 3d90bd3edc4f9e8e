/* SPDX-License-Identifier: BSD-2-Clause */
/* i_segprotect.c — integration test: in a running sluiced every worker can
 * write only its own slot and its own listener and server rows of the stats
 * segment, and the health checker only the health and resolved areas; every other page of
 * the mapping (header, directory, retired rows, other slots) is read-only to
 * them, while the master keeps all of it writable. Judged page by page from
 * /proc/PID/maps, the protection the kernel enforces, against the layout a
 * reader of the segment sees. Runs sluiced (2 workers, one health-checked
 * server) and an echo backend as children on loopback ports, stops them by
 * pid. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"
#include "uphelp.h"

#define WORKERS 2
#define WAIT_MS 15000

struct range {
	size_t from, to; /* file offsets, [from, to) */
};

/* Pages of the segment's mappings in pid: how many are mapped, how many
 * have the wrong protection (writable outside every range in w, or
 * read-only inside one), and how many straddle a range's edge. */
struct verdict {
	size_t mapped, wrong, straddling, writable;
};

static struct verdict
judge(pid_t pid, const char *file, size_t size, const struct range *w, int nw)
{
	struct verdict v = { 0, 0, 0, 0 };
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char maps[64], *text, *line, *save = NULL;

	snprintf(maps, sizeof(maps), "/proc/%d/maps", (int)pid);
	text = h_read_file(maps);
	if (text == NULL) {
		diag("cannot read %s", maps);
		v.wrong = 1;
		return v;
	}
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long start, end, off;
		char perms[8], path[PATH_MAX];

		path[0] = '\0';
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %4095s", &start, &end, perms, &off,
		        path) != 5 || strcmp(path, file) != 0)
			continue;
		for (unsigned long a = start; a < end; a += page) {
			size_t at = off + (a - start);
			int inside = 0, touches = 0;

			if (at >= size)
				continue;
			for (int i = 0; i < nw; i++) {
				if (at >= w[i].from && at + page <= w[i].to)
					inside = 1;
				else if (at < w[i].to && at + page > w[i].from)
					touches = 1;
			}
			v.mapped++;
			v.straddling += touches && !inside;
			v.writable += perms[1] == 'w';
			if ((perms[1] == 'w') != inside)
				v.wrong++;
		}
	}
	free(text);
	return v;
}

static void
check(const char *who, pid_t pid, const char *file, size_t size, const struct range *w, int nw,
    int all_writable)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct verdict v = judge(pid, file, size, w, nw);

	is(v.mapped, (size + page - 1) / page, "%s: the whole segment is mapped", who);
	if (all_writable) {
		is(v.writable, v.mapped, "%s: writes all of it", who);
		return;
	}
	is(v.straddling, 0, "%s: what it writes starts and ends on page boundaries", who);
	ok(v.wrong == 0 && v.writable > 0,
	    "%s: writable exactly where it writes (%zu of %zu pages writable, %zu wrong)", who,
	    v.writable, v.mapped, v.wrong);
}

int
main(void)
{
	struct range r[3];
	struct stats_seg seg;
	char err[512], file[PATH_MAX], who[64];
	pid_t master, kids[16], checker = 0;
	int e0, lport, nk, nworkers = 0;

	e0 = h_free_port();
	lport = h_free_port();
	h_echod_start(e0);
	master = h_sluiced_start(up_conf("segprotect.conf", WORKERS,
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:%d\" );\n"
	    "  health = { interval = \"200ms\"; timeout = \"200ms\"; rise = 1; fall = 1; }; } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    e0, lport), lport, WORKERS);
	ok(up_wait_health("app", e0, STATS_HEALTH_UP, WAIT_MS), "the checker publishes");

	if (realpath(h_statsfile(), file) == NULL)
		bail("realpath %s", h_statsfile());
	if (stats_attach(&seg, file, err, sizeof(err)) == -1)
		bail("%s", err);
	for (unsigned i = 0; i < seg.nslots; i++) {
		const struct stats_slot *s = &seg.slots[i];
		char *base = (char *)seg.hdr;

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != STATS_SLOT_RUNNING)
			continue;
		r[0].from = (size_t)((const char *)s - base);
		r[0].to = r[0].from + sizeof(*s);
		r[1].from = (size_t)((char *)stats_slot_listener(&seg, i, 0) - base);
		r[1].to = r[1].from + seg.listener_stride;
		r[2].from = (size_t)((char *)stats_slot_server(&seg, i, 0) - base);
		r[2].to = r[2].from + seg.server_stride;
		snprintf(who, sizeof(who), "worker in slot %u", i);
		check(who, s->pid, file, seg.size, r, 3, 0);
		nworkers++;
	}
	is(nworkers, WORKERS, "every worker judged");

	nk = h_children(master, kids, 16);
	for (int i = 0; i < nk; i++) {
		int worker = 0;

		for (unsigned k = 0; k < seg.nslots; k++)
			worker |= seg.slots[k].pid == kids[i] &&
			    seg.slots[k].state != STATS_SLOT_FREE;
		if (!worker)
			checker = kids[i];
	}
	ok(checker != 0, "found the checker");
	r[0].from = (size_t)((char *)seg.health - (char *)seg.hdr);
	/* The health area and, right after it, the resolved addresses. */
	r[0].to = (size_t)((char *)(seg.resolved + seg.nservers) - (char *)seg.hdr);
	if (checker != 0)
		check("checker", checker, file, seg.size, r, 1, 0);
	check("master", master, file, seg.size, r, 0, 1);
	stats_detach(&seg);

	up_stop(master);
	done_testing();
	return tap_exit();
}
