/* SPDX-License-Identifier: BSD-2-Clause */
/* listen.c — open and diff the master's listening sockets, and set their
 * options (keepalive, fastopen, defer_accept, buffers), which the sockets
 * workers accept inherit: a client connection costs no system call for them.
 * Runs in the master at start and on reload; never touches client traffic. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

/* The kernel's keepalive setting name (tcp_keepalive_time, _intvl,
 * _probes), or 0 when unreadable. */
static int
sysctl_keepalive(const char *name)
{
	char path[128];
	FILE *f;
	int v = 0;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/tcp_keepalive_%s", name);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	if (fscanf(f, "%d", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

static int
set_int(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof(v));
}

/* Put l's options on its listening socket fd. A kept socket (reload) also
 * has what l no longer asks for turned back off, or to the kernel's values;
 * buffer sizes cannot be unset, and stay until a restart. Returns 0, or -1
 * with errno and the option's name in *what. */
static int
listen_apply(int fd, const struct conf_listener *l, int kept, const char **what)
{
	const struct conf_keepalive *k = &l->keepalive;
	int v;

	*what = "rcvbuf";
	if (l->rcvbuf && set_int(fd, SOL_SOCKET, SO_RCVBUF, (int)l->rcvbuf) == -1)
		return -1;
	*what = "sndbuf";
	if (l->sndbuf && set_int(fd, SOL_SOCKET, SO_SNDBUF, (int)l->sndbuf) == -1)
		return -1;
	*what = "fastopen";
	if ((l->fastopen || kept) && set_int(fd, IPPROTO_TCP, TCP_FASTOPEN, (int)l->fastopen) == -1)
		return -1;
	*what = "defer_accept";
	if ((l->defer_accept_s || kept) &&
	    set_int(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, (int)l->defer_accept_s) == -1)
		return -1;
	*what = "keepalive";
	if ((k->enabled || kept) && set_int(fd, SOL_SOCKET, SO_KEEPALIVE, k->enabled) == -1)
		return -1;
	if (!k->enabled)
		return 0;
	/* Members left out take the kernel's values: on a kept socket they
	 * may still hold an older config's. */
	v = k->idle_s ? (int)k->idle_s : kept ? sysctl_keepalive("time") : 0;
	if (v > 0 && set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, v) == -1)
		return -1;
	v = k->interval_s ? (int)k->interval_s : kept ? sysctl_keepalive("intvl") : 0;
	if (v > 0 && set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, v) == -1)
		return -1;
	v = k->count ? (int)k->count : kept ? sysctl_keepalive("probes") : 0;
	if (v > 0 && set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, v) == -1)
		return -1;
	return 0;
}

/* A kept IPv6 socket's V6ONLY was fixed at bind: only a new socket could
 * change it, and the old one holds the port. Returns 0, or -1 (EEXIST when
 * it differs from l's). */
static int
listen_v6only_kept(int fd, const struct conf_listener *l, const char **what)
{
	int v;
	socklen_t len = sizeof(v);

	if (l->addr.ss_family != AF_INET6)
		return 0;
	*what = "v6only";
	if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len) == -1)
		return -1;
	if (!v != !l->v6only) {
		errno = EEXIST;
		return -1;
	}
	return 0;
}

static void
listen_error(const struct conf_listener *l, const char *what, char *err, size_t errlen)
{
	if (what != NULL && errno == EEXIST)
		snprintf(err, errlen,
		    "cannot listen on %s: v6only cannot change on a socket kept across a "
		    "reload (restart sluiced)",
		    l->address);
	else if (what != NULL)
		snprintf(err, errlen, "cannot listen on %s: setting %s: %s", l->address, what,
		    strerror(errno));
	else
		snprintf(err, errlen, "cannot listen on %s: %s", l->address, strerror(errno));
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
	/* New sockets first, kept ones changed only once every new one is
	 * open: a reload that fails leaves the running listeners as they
	 * were (v6only, which cannot change, is checked before anything). */
	for (int pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < next->nlisteners; i++) {
			const struct conf_listener *l = &next->listeners[i];
			const char *what = NULL;
			int kept = find_fd(l, prev, prev_fds) != -1;

			if (pass == 0 && kept) {
				fds[i] = find_fd(l, prev, prev_fds);
				if (listen_v6only_kept(fds[i], l, &what) == 0)
					continue;
			} else if (pass == 0 &&
			           (fds[i] = inherit_take((const struct sockaddr *)&l->addr)) != -1) {
				/* After a hot upgrade, the old master's socket for it:
				 * as a kept one, with this config's options. */
				(void)listen(fds[i], (int)l->backlog);
				if (listen_apply(fds[i], l, 1, &what) == 0)
					continue;
			} else if (pass == 0) {
				fds[i] = net_listen_v6only((const struct sockaddr *)&l->addr,
				    l->addrlen, (int)l->backlog, l->v6only);
				if (fds[i] != -1 && listen_apply(fds[i], l, 0, &what) == 0)
					continue;
			} else if (kept) {
				/* listen() again only changes the backlog. */
				(void)listen(fds[i], (int)l->backlog);
				if (listen_apply(fds[i], l, 1, &what) == 0)
					continue;
			} else {
				continue;
			}
			listen_error(l, what, err, errlen);
			for (unsigned j = 0; j < next->nlisteners; j++)
				if ((j < i || pass == 1) && fds[j] != -1 &&
				    find_fd(&next->listeners[j], prev, prev_fds) == -1)
					close(fds[j]);
			if (pass == 0 && !kept && fds[i] != -1)
				close(fds[i]);
			free(fds);
			return NULL;
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
