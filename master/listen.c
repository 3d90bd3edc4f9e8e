/* SPDX-License-Identifier: BSD-2-Clause */
/* listen.c — open and diff the master's listening sockets, and set their
 * options (keepalive, fastopen, defer_accept, buffers), which the sockets
 * workers accept inherit: a client connection costs no system call for them.
 * UNIX listeners' socket files are created here (mode, owner) and removed
 * when their socket closes, never a file that is not a socket or one another
 * process listens on. Runs in the master at start and on reload; never
 * touches client traffic. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "inherit.h"
#include "listen.h"
#include "net.h"

/* The UNIX listeners whose socket file is ours to remove when they close:
 * those bound here, and (after listen_own_inherited) those an upgrade
 * passed. A master that was upgraded away removes none (listen_keep_files). */
struct fdset {
	int *fd;
	unsigned n, cap;
};
static struct fdset owned, inherited;
static int keep_files;

static void
fdset_add(struct fdset *set, int fd)
{
	int *grown;

	if (set->n == set->cap) {
		/* Out of memory: the file stays behind, a later start
		 * replaces it (a socket nobody listens on). */
		if ((grown = realloc(set->fd, (set->cap * 2 + 8) * sizeof(*grown))) == NULL)
			return;
		set->fd = grown;
		set->cap = set->cap * 2 + 8;
	}
	set->fd[set->n++] = fd;
}

/* 1 when fd was in set (and is no longer). */
static int
fdset_take(struct fdset *set, int fd)
{
	for (unsigned i = 0; i < set->n; i++)
		if (set->fd[i] == fd) {
			set->fd[i] = set->fd[--set->n];
			return 1;
		}
	return 0;
}

static const char *
unix_path(const struct conf_listener *l)
{
	return ((const struct sockaddr_un *)&l->addr)->sun_path;
}

/* Close a listener's socket fd, removing its socket file when it is ours. */
static void
listen_fd_close(const struct conf_listener *l, int fd)
{
	struct stat st;

	(void)fdset_take(&inherited, fd);
	if (fdset_take(&owned, fd) && !keep_files && l->addr.ss_family == AF_UNIX &&
	    lstat(unix_path(l), &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(unix_path(l));
	close(fd);
}

void
listen_keep_files(void)
{
	keep_files = 1;
}

void
listen_own_inherited(void)
{
	for (unsigned i = 0; i < inherited.n; i++)
		fdset_add(&owned, inherited.fd[i]);
	inherited.n = 0;
}

/* Mode and owner of a UNIX listener's socket file; umask_was is the
 * master's umask, for the default mode. Returns 0, or -1 with errno. */
static int
listen_unix_perms(const struct conf_listener *l, mode_t umask_was, const char **what)
{
	mode_t mode = l->unix_mode >= 0 ? (mode_t)l->unix_mode : 0666 & ~umask_was;

	*what = "owner";
	if ((l->unix_uid != (uid_t)-1 || l->unix_gid != (gid_t)-1) &&
	    chown(unix_path(l), l->unix_uid, l->unix_gid) == -1)
		return -1;
	*what = "mode";
	return chmod(unix_path(l), mode);
}

/* A new UNIX listening socket for l. A socket file already there is
 * replaced only when nothing listens on it (a dead master's); anything
 * else there is refused. bind runs under umask 0777, so that nobody can
 * connect before mode and owner are set. Returns the fd, or -1 with the
 * reason in err. */
static int
listen_unix_open(const struct conf_listener *l, char *err, size_t errlen)
{
	const char *path = unix_path(l), *what = NULL;
	struct stat st;
	mode_t was;
	int fd, probe, e;

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "cannot listen on %s: %s exists and is not a socket",
			    l->address, path);
			return -1;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (probe == -1)
			goto fail;
		e = connect(probe, (const struct sockaddr *)&l->addr, l->addrlen) == 0 ? 0 : errno;
		close(probe);
		/* EAGAIN: a full backlog, so someone listens. */
		if (e == 0 || e == EAGAIN || e == EINPROGRESS) {
			snprintf(err, errlen,
			    "cannot listen on %s: another process listens on %s", l->address, path);
			return -1;
		}
		if (e == ECONNREFUSED && unlink(path) == -1 && errno != ENOENT)
			goto fail;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	was = umask(0777);
	e = bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) == 0 ? 0 : errno;
	(void)umask(was);
	if (e != 0) {
		close(fd);
		errno = e;
		goto fail;
	}
	if (listen_unix_perms(l, was, &what) == 0) {
		what = NULL;
		if (listen(fd, (int)l->backlog) == 0) {
			fdset_add(&owned, fd);
			return fd;
		}
	}
	e = errno;
	(void)unlink(path);
	close(fd);
	errno = e;
fail:
	if (what != NULL)
		snprintf(err, errlen, "cannot listen on %s: setting %s: %s", l->address, what,
		    strerror(errno));
	else
		snprintf(err, errlen, "cannot listen on %s: %s", l->address, strerror(errno));
	return -1;
}

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
	mode_t was;
	int v;

	if (l->addr.ss_family == AF_UNIX && kept) {
		/* A new socket had them set before its listen(). */
		was = umask(0);
		(void)umask(was);
		if (listen_unix_perms(l, was, what) == -1)
			return -1;
	}
	*what = "rcvbuf";
	if (l->rcvbuf && set_int(fd, SOL_SOCKET, SO_RCVBUF, (int)l->rcvbuf) == -1)
		return -1;
	*what = "sndbuf";
	if (l->sndbuf && set_int(fd, SOL_SOCKET, SO_SNDBUF, (int)l->sndbuf) == -1)
		return -1;
	if (l->addr.ss_family == AF_UNIX)
		return 0; /* the rest is TCP's, and conf refuses it here */
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
	int written = 0;

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
				if (l->addr.ss_family == AF_UNIX)
					fdset_add(&inherited, fds[i]);
				(void)listen(fds[i], (int)l->backlog);
				if (listen_apply(fds[i], l, 1, &what) == 0)
					continue;
			} else if (pass == 0 && l->addr.ss_family == AF_UNIX) {
				fds[i] = listen_unix_open(l, err, errlen);
				written = fds[i] == -1;
				if (fds[i] != -1 && listen_apply(fds[i], l, 0, &what) == 0)
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
			if (!written)
				listen_error(l, what, err, errlen);
			for (unsigned j = 0; j < next->nlisteners; j++)
				if ((j < i || pass == 1) && fds[j] != -1 &&
				    find_fd(&next->listeners[j], prev, prev_fds) == -1)
					listen_fd_close(&next->listeners[j], fds[j]);
			if (pass == 0 && !kept && fds[i] != -1)
				listen_fd_close(l, fds[i]);
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
			listen_fd_close(&prev->listeners[i], prev_fds[i]);
	free(prev_fds);
}
