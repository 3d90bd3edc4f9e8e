/* SPDX-License-Identifier: BSD-2-Clause */
/* inherit.c — the listening sockets a new master inherits from the old one in
 * a hot binary upgrade: the listeners, the admin endpoint. Each address the
 * new config keeps is taken over (by its bound address), so not one
 * connection is refused across the upgrade; the rest are closed once the
 * new master has opened what it needs. A UNIX listener is found by its
 * path. Runs in the master at start only. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "inherit.h"

#define INHERIT_MAX 4096 /* reuseport listeners pass a socket per worker */

static int fds[INHERIT_MAX];
static unsigned nfds;

int
inherit_init(const char *text)
{
	const char *p = text;

	nfds = 0;
	while (*p != '\0') {
		char *end;
		long v = strtol(p, &end, 10);

		if (end == p || v < 0 || v > 1 << 24 || nfds == INHERIT_MAX ||
		    (*end != ',' && *end != '\0')) {
			errno = EINVAL;
			return -1;
		}
		/* Ours from now on: no child of ours may inherit it. */
		if (fcntl((int)v, F_SETFD, FD_CLOEXEC) == 0)
			fds[nfds++] = (int)v;
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
}

int
inherit_take(const struct sockaddr *addr)
{
	for (unsigned i = 0; i < nfds; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = fds[i];

		memset(&ss, 0, sizeof(ss));
		if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
			continue;
		addr_unix_terminate(&ss, len);
		if (!addr_equal((const struct sockaddr *)&ss, addr))
			continue;
		/* In order: a reuseport listener's sockets come one by one,
		 * as they joined the kernel's group (listen.c). */
		memmove(&fds[i], &fds[i + 1], (--nfds - i) * sizeof(fds[0]));
		return fd;
	}
	return -1;
}

void
inherit_close_rest(void)
{
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	nfds = 0;
}
