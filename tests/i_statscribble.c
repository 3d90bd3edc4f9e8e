/* SPDX-License-Identifier: BSD-2-Clause */
/* i_statscribble.c — integration test: sluicestat reading a segment that
 * another process keeps rewriting (random bytes anywhere, the header's
 * counts changed and restored, sequence numbers left odd, the file truncated
 * and grown back, a new file renamed over it) never crashes, hangs or trips
 * a sanitizer: every run ends within its deadline with status 0 (printed) or
 * 1 (refused, with its message). Runs the real sluicestat in every one-shot
 * mode against a segment this test makes; the scribbler is its own fork,
 * killed by pid at the end. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"

#define NSLOTS 8
#define RUN_MS 20000    /* one sluicestat run, at most */
#define SCRIBBLE_MS 4000 /* how long runs are started for */

static uint64_t rng = 88172645463325252ULL;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* A segment with something in every area. */
static void
make(const char *path, struct stats_seg *seg)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct stats_health h;
	char err[512];

	if (stats_create(seg, path, NSLOTS, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);
	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(0x7f000001);
	for (unsigned i = 0; i < 3; i++) {
		in->sin_port = htons((uint16_t)(9000 + i));
		stats_listener_row(seg, (struct sockaddr *)&ss, sizeof(*in), "127.0.0.1:900x", "app",
		    1);
		stats_server_row(seg, "app", (struct sockaddr *)&ss, sizeof(*in), "127.0.0.1:900x",
		    1, 0, 1);
	}
	memset(&h, 0, sizeof(h));
	h.state = STATS_HEALTH_UP;
	stats_health_publish(seg, 1, &h);
	for (unsigned i = 0; i < NSLOTS; i += 2) {
		seg->slots[i].pid = 1000 + (int)i;
		STATS_ADD(&seg->slots[i], accepted, 7);
		STATS_ROW_ADD(stats_slot_listener(seg, i, 1), accepted, 7);
		STATS_ROW_ADD(stats_slot_server(seg, i, 2), connects, 7);
		__atomic_store_n(&seg->slots[i].state, STATS_SLOT_RUNNING, __ATOMIC_RELEASE);
	}
}

/* The other process: forever, until killed. */
static void __attribute__((noreturn))
scribble(const char *path)
{
	struct stats_header saved;
	struct stats_seg seg;
	unsigned char *p;
	size_t size;
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	rng ^= (uint64_t)getpid();
	make(path, &seg);
	for (;;) {
		p = (unsigned char *)seg.hdr;
		size = seg.size;
		saved = *seg.hdr;
		fd = open(path, O_RDWR | O_CLOEXEC);
		for (unsigned round = 0; round < 200 && fd != -1; round++) {
			unsigned what = (unsigned)(rnd() % 16);

			/* Bytes anywhere, and some in the header. */
			for (unsigned i = 0; i < 16; i++)
				p[rnd() % size] = (unsigned char)rnd();
			for (unsigned i = 0; i < 4; i++)
				p[rnd() % sizeof(saved)] = (unsigned char)rnd();
			if (what < 6) {
				/* Counts a reader validated, changed under it. */
				seg.hdr->nslots = (uint32_t)rnd();
				seg.hdr->nlisteners = (uint32_t)rnd() & 0xffff;
				seg.hdr->nservers = (uint32_t)rnd() & 0xffff;
				seg.hdr->listeners_used = (uint32_t)rnd();
				seg.hdr->servers_used = (uint32_t)rnd();
				seg.hdr->fold_seq = rnd();
				seg.health[rnd() % seg.nservers].seq = rnd() | 1;
				usleep(200);
			} else if (what < 9) {
				/* Shorter, then whole again: a reader's pages vanish. */
				if (ftruncate(fd, (off_t)(rnd() % size)) == 0) {
					usleep(500);
					if (ftruncate(fd, (off_t)size) == -1)
						_exit(3);
				}
			}
			/* Mostly a header that attaches, so readers get past it. */
			if (rnd() % 4 != 0)
				memcpy(p, &saved, sizeof(saved));
			usleep(100);
		}
		if (fd != -1)
			close(fd);
		/* A new file renamed over the old, as a restarted master does. */
		stats_detach(&seg);
		make(path, &seg);
	}
}

int
main(void)
{
	static const char *const modes[][3] = {
		{ NULL }, { "--json", NULL }, { "--prometheus", NULL }, { "-1", "accepted" },
	};
	unsigned runs = 0, printed = 0, refused = 0, bad = 0, shrank = 0;
	struct stats_seg seg;
	const char *path = h_path("stats");
	uint64_t end;
	pid_t pid;
	int status;

	make(path, &seg);
	stats_detach(&seg);
	fflush(stdout);
	pid = fork();
	if (pid == -1)
		bail("fork: %s", strerror(errno));
	if (pid == 0)
		scribble(path);

	end = h_now_ms() + SCRIBBLE_MS;
	while (h_now_ms() < end) {
		const char *const *m = modes[runs % 4];
		char *argv[] = { (char *)h_sluicestat(), "-s", (char *)path, (char *)m[0],
			(char *)m[1], NULL };
		char *out = NULL;
		int rc = h_run(argv, &out, RUN_MS);

		runs++;
		printed += rc == 0;
		refused += rc == 1;
		shrank += out != NULL && strstr(out, "changed size while being read") != NULL;
		/* A refusal is one of its documented messages, nothing else. */
		if ((rc != 0 && rc != 1) || out == NULL ||
		    (rc == 1 && strncmp(out, "sluicestat: ", 12) != 0) ||
		    strstr(out, "Sanitizer") != NULL || strstr(out, "runtime error") != NULL) {
			if (bad++ < 3)
				diag("run %u (%s): status %d: %.1500s", runs, m[0] ? m[0] : "table",
				    rc, out ? out : "");
		}
		free(out);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the scribbler ran until stopped");
	ok(runs >= 4, "sluicestat ran %u times (%u printed, %u refused, %u of them cut short "
	    "by the file shrinking)", runs, printed, refused, shrank);
	is(bad, 0, "every run exited 0 or 1 in time, without a sanitizer report");
	unlink(path);
	done_testing();
	return tap_exit();
}
