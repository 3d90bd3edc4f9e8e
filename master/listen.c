/* SPDX-License-Identifier: BSD-2-Clause */
/* listen.c — open and diff the master's listening sockets. Runs in the master
 * at start and on reload; never touches client traffic. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "inherit.h"
#include "listen.h"
#include "net.h"

static int
find_fd(const struct conf_listener *l, const struct conf *c, const int *fds)
{
	if (c == NULL || fds == NULL)
		return -1;
	for (unsigned i = 0; i < c->nlisteners; i++)
		if (addr_equal((const struct sockaddr *)&l->addr,
		        (const struct sockaddr *)&c->listeners[i].addr))
			return fds[i];
	return -1;
}

int *
listen_open(const struct conf *next, const struct conf *prev, const int *prev_fds,
    char *err, size_t errlen)
{
	int *fds = calloc(next->nlisteners, sizeof(*fds));

	if (fds == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (unsigned i = 0; i < next->nlisteners; i++) {
		const struct conf_listener *l = &next->listeners[i];

		fds[i] = find_fd(l, prev, prev_fds);
		if (fds[i] != -1) {
			/* listen() again only changes the backlog. */
			(void)listen(fds[i], (int)l->backlog);
			continue;
		}
		/* After a hot upgrade, the old master's socket for it. */
		fds[i] = inherit_take((const struct sockaddr *)&l->addr);
		if (fds[i] != -1) {
			(void)listen(fds[i], (int)l->backlog);
			continue;
		}
		fds[i] = net_listen((const struct sockaddr *)&l->addr, l->addrlen, (int)l->backlog);
		if (fds[i] == -1) {
			snprintf(err, errlen, "cannot listen on %s: %s", l->address, strerror(errno));
			for (unsigned j = 0; j < i; j++)
				if (find_fd(&next->listeners[j], prev, prev_fds) == -1)
					close(fds[j]);
			free(fds);
			return NULL;
		}
	}
	return fds;
}

void
listen_close(const struct conf *prev, int *prev_fds, const struct conf *next,
    const int *next_fds)
{
	if (prev_fds == NULL)
		return;
	for (unsigned i = 0; i < prev->nlisteners; i++)
		if (find_fd(&prev->listeners[i], next, next_fds) == -1)
			close(prev_fds[i]);
	free(prev_fds);
}
