/* SPDX-License-Identifier: BSD-2-Clause */
/* listen.c — open and diff the master's listening sockets, and set their
 * options (keepalive, fastopen, defer_accept, buffers), which the sockets
 * workers accept inherit: a client connection costs no system call for them.
 * UNIX listeners' socket files are created here (mode, owner) and removed
 * when their socket closes, never a file that is not a socket or one another
 * process listens on. A reuseport listener is a group of SO_REUSEPORT
 * sockets, one per worker, kept across reloads and upgrades so that no queue
 * closes while clients wait in it. Runs in the master at start and on reload
 * (and listen_child in a child right after fork); never touches client
 * traffic. */
#include <errno.h>
#include <linux/filter.h>
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
#include "log.h"
#include "net.h"
#include "steer.h"

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

/*
 * Reuseport groups. A reuseport listener's sockets sit in the kernel's group
 * in the order they called listen(); the steering program attached to the
 * group returns an index in that order, so sockets are opened in order and
 * closed only from the end (the kernel moves the last one into a hole).
 * Socket k is worker k's; a group never shrinks while its listener lives,
 * since closing a socket resets the clients queued on it: after the worker
 * count went down, socket k (k >= workers) is steered no new client and
 * worker k mod workers accepts what is left in it. fd[0] is the one in the
 * generations' fds arrays, by which the group is found.
 */
struct group {
	int fd[CONF_WORKERS_MAX];
	unsigned n;       /* sockets open */
	unsigned settled; /* those a running generation uses: a reload that
	                   * fails closes the ones past it */
};
static struct group **groups;
static unsigned ngroups;

static struct group *
group_of(int fd0)
{
	for (unsigned i = 0; i < ngroups; i++)
		if (groups[i]->fd[0] == fd0)
			return groups[i];
	return NULL;
}

static struct group *
group_create(void)
{
	struct group **grown, *g;

	if ((grown = realloc(groups, (ngroups + 1) * sizeof(*grown))) == NULL)
		return NULL;
	groups = grown;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	groups[ngroups++] = g;
	return g;
}

/* Close g's sockets from the end down to keep of them. */
static void
group_trim(struct group *g, unsigned keep)
{
	while (g->n > keep)
		close(g->fd[--g->n]);
	if (g->settled > g->n)
		g->settled = g->n;
}

static void
group_destroy(struct group *g)
{
	group_trim(g, 0);
	for (unsigned i = 0; i < ngroups; i++)
		if (groups[i] == g) {
			groups[i] = groups[--ngroups];
			break;
		}
	free(g);
}

/* New clients go to sockets 0..n-1 only: in turn, by an eBPF program
 * (steer.c), so that a burst is dealt evenly whoever runs first; where BPF is
 * not to be had (no privilege, an old kernel), at random by a cBPF program
 * (a SYN carries no payload and the flow hash may be 0 on loopback; the
 * random number is the kernel's own, SKF_AD_RANDOM). The first failure to
 * load is logged once. Returns 0, or -1 with errno. */
static int
group_steer(const struct group *g, unsigned n)
{
	static int ebpf_failed;
	struct sock_filter code[] = {
		{ BPF_LD | BPF_W | BPF_ABS, 0, 0, (uint32_t)(SKF_AD_OFF + SKF_AD_RANDOM) },
		{ BPF_ALU | BPF_MOD | BPF_K, 0, 0, n },
		{ BPF_RET | BPF_A, 0, 0, 0 },
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

	if (!ebpf_failed) {
		int pfd = steer_rr_prog(n), rc = -1, err;

		if (pfd != -1) {
			rc = setsockopt(g->fd[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &pfd,
			    sizeof(pfd));
			err = errno;
			close(pfd);
			errno = err;
		}
		if (rc == 0)
			return 0;
		ebpf_failed = 1;
		log_notice("reuseport: no eBPF program (%s): new clients go to a random "
		           "worker's socket rather than to each in turn",
		    strerror(errno));
	}
	return setsockopt(g->fd[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog));
}

static int
is_reuseport(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &len) == 0 && v != 0;
}

/* A new SO_REUSEPORT listening socket for l, at the port its group's first
 * socket has (the same as l's unless l's port is 0). Returns the fd, or -1
 * with errno. */
static int
reuseport_open(const struct conf_listener *l, int first)
{
	struct sockaddr_storage ss = l->addr;
	socklen_t len = l->addrlen;
	int fd, one = 1, v6only = l->v6only, e;

	if (first != -1 && getsockname(first, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    (ss.ss_family == AF_INET6 &&
	        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) == -1) ||
	    bind(fd, (const struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, (int)l->backlog) == -1) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	net_nodelay(fd);
	return fd;
}

static int listen_apply(int fd, const struct conf_listener *l, int kept, const char **what);

/* Grow g to want sockets, each with l's options. Returns 0, or -1 with
 * errno (and *what) and g as it was. */
static int
group_grow(struct group *g, const struct conf_listener *l, unsigned want, const char **what)
{
	unsigned was = g->n;

	while (g->n < want) {
		int fd;

		*what = NULL;
		if ((fd = reuseport_open(l, g->n > 0 ? g->fd[0] : -1)) == -1)
			goto fail;
		g->fd[g->n++] = fd;
		if (listen_apply(fd, l, 0, what) == -1)
			goto fail;
	}
	return 0;
fail: {
	int e = errno;

	group_trim(g, was);
	errno = e;
	return -1;
}
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
	struct group *g = group_of(fd);
	struct stat st;

	if (g != NULL) {
		group_destroy(g);
		return;
	}
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

/* Pass 0 of a reuseport listener l: its group, kept from the running
 * config (fd kept), taken over from an upgrade, or new, and grown to
 * workers sockets. Returns its fd[0], or -1 with errno and *what, or with
 * the reason in err (*written set). */
static int
group_open(const struct conf_listener *l, int kept, unsigned workers, const char **what,
    int *written, char *err, size_t errlen)
{
	struct group *g;
	int fd;

	if (kept != -1) {
		g = group_of(kept);
		if (listen_v6only_kept(kept, l, what) == -1 || group_grow(g, l, workers, what) == -1)
			return -1;
		return kept;
	}
	if ((g = group_create()) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	/* After a hot upgrade, the old master's sockets for it, in their
	 * group's order: kept ones, with this config's options. Its steering
	 * stays until our workers run (listen_commit). */
	while (g->n < CONF_WORKERS_MAX &&
	       (fd = inherit_take((const struct sockaddr *)&l->addr)) != -1) {
		g->fd[g->n++] = fd;
		if (!is_reuseport(fd)) {
			snprintf(err, errlen,
			    "cannot listen on %s: reuseport cannot change in a hot upgrade "
			    "(restart sluiced)",
			    l->address);
			*written = 1;
			goto fail;
		}
		(void)listen(fd, (int)l->backlog);
		if (listen_apply(fd, l, 1, what) == -1)
			goto fail;
	}
	g->settled = g->n;
	if (g->n > 0 && listen_v6only_kept(g->fd[0], l, what) == -1)
		goto fail;
	if (group_grow(g, l, workers, what) == -1)
		goto fail;
	if (g->settled == 0) {
		/* A new group: all of it is this config's. */
		*what = "reuseport steering";
		if (group_steer(g, workers) == -1)
			goto fail;
		g->settled = g->n;
	}
	return g->fd[0];
fail: {
	int e = errno;

	group_destroy(g);
	errno = e;
	return -1;
}
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
			struct group *g = kept ? group_of(find_fd(l, prev, prev_fds)) : NULL;

			if (pass == 0 && kept && (g != NULL) != (l->reuseport != 0)) {
				/* The kept socket holds the port: a socket of the
				 * other kind could not bind beside it. */
				snprintf(err, errlen,
				    "cannot listen on %s: reuseport cannot change on a listener "
				    "kept across a reload (restart sluiced)",
				    l->address);
				written = 1;
				fds[i] = -1;
			} else if (pass == 0 && l->reuseport) {
				fds[i] = group_open(l, find_fd(l, prev, prev_fds), next->workers, &what,
				    &written, err, errlen);
				if (fds[i] != -1)
					continue;
			} else if (pass == 1 && g != NULL) {
				for (unsigned k = 0; k < g->n; k++) {
					(void)listen(g->fd[k], (int)l->backlog);
					if (listen_apply(g->fd[k], l, 1, &what) == -1)
						break;
					what = NULL;
				}
				if (what == NULL)
					continue;
			} else if (pass == 0 && kept) {
				fds[i] = find_fd(l, prev, prev_fds);
				if (listen_v6only_kept(fds[i], l, &what) == 0)
					continue;
			} else if (pass == 0 &&
			           (fds[i] = inherit_take((const struct sockaddr *)&l->addr)) != -1) {
				/* After a hot upgrade, the old master's socket for it:
				 * as a kept one, with this config's options. */
				if (l->addr.ss_family == AF_UNIX)
					fdset_add(&inherited, fds[i]);
				if (is_reuseport(fds[i])) {
					snprintf(err, errlen,
					    "cannot listen on %s: reuseport cannot change in a hot "
					    "upgrade (restart sluiced)",
					    l->address);
					written = 1;
				} else {
					(void)listen(fds[i], (int)l->backlog);
					if (listen_apply(fds[i], l, 1, &what) == 0)
						continue;
				}
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
			for (unsigned j = 0; j < next->nlisteners; j++) {
				struct group *gj;

				if (!(j < i || pass == 1) || fds[j] == -1)
					continue;
				if (find_fd(&next->listeners[j], prev, prev_fds) == -1)
					listen_fd_close(&next->listeners[j], fds[j]);
				else if ((gj = group_of(fds[j])) != NULL)
					group_trim(gj, gj->settled); /* what it grew by */
			}
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
	for (unsigned i = 0; i < prev->nlisteners; i++) {
		struct group *g;

		if (find_fd(&prev->listeners[i], next, next_fds) == -1)
			listen_fd_close(&prev->listeners[i], prev_fds[i]);
		else if ((g = group_of(prev_fds[i])) != NULL)
			group_trim(g, g->settled); /* a failed reload's sockets */
	}
	free(prev_fds);
}

void
listen_commit(const struct conf *c, const int *fds)
{
	for (unsigned i = 0; i < c->nlisteners; i++) {
		struct group *g = group_of(fds[i]);

		if (g == NULL)
			continue;
		g->settled = g->n;
		/* Without it, new clients go to every socket of the group, each
		 * one accepted by someone still: the spread is all we lose. */
		if (group_steer(g, c->workers) == -1)
			log_warn("listener %s: cannot steer new clients to its %u workers' "
			         "sockets", c->listeners[i].address, c->workers);
	}
}

unsigned
listen_all(const struct conf *c, const int *fds, int *out)
{
	unsigned n = 0;

	for (unsigned i = 0; fds != NULL && i < c->nlisteners; i++) {
		const struct group *g = group_of(fds[i]);

		if (g == NULL) {
			if (out != NULL)
				out[n] = fds[i];
			n++;
			continue;
		}
		for (unsigned k = 0; k < g->n; k++, n++)
			if (out != NULL)
				out[n] = g->fd[k];
	}
	return n;
}

int
listen_child(const struct conf *c, const int *fds, int index, int starting, int **own,
    int **extra, unsigned **extra_li, unsigned *nextra)
{
	unsigned n = 0, cap = 0, nl = fds != NULL ? c->nlisteners : 0;

	*own = NULL;
	*extra = NULL;
	*extra_li = NULL;
	*nextra = 0;
	for (unsigned i = 0; i < nl; i++) {
		const struct group *g = group_of(fds[i]);

		if (g != NULL && index >= 0)
			cap += g->n;
	}
	/* No fds (a drained node): *own stays NULL, as the generation's was. */
	if ((nl > 0 && (*own = malloc(nl * sizeof(**own))) == NULL) ||
	    (*extra = malloc((cap + 1) * sizeof(**extra))) == NULL ||
	    (*extra_li = malloc((cap + 1) * sizeof(**extra_li))) == NULL)
		return -1;
	for (unsigned i = 0; i < nl; i++) {
		const struct group *g = group_of(fds[i]);
		/* A running generation's workers do not take the sockets a
		 * reload under way added: should it fail, they close. */
		unsigned upto = g == NULL ? 0 : starting ? g->n : g->settled;

		(*own)[i] = g == NULL ? fds[i] : -1;
		if (g == NULL || index < 0)
			continue;
		if ((unsigned)index < g->n)
			(*own)[i] = g->fd[index];
		for (unsigned k = c->workers; k < upto; k++)
			if (k % c->workers == (unsigned)index) {
				(*extra)[n] = g->fd[k];
				(*extra_li)[n++] = i;
			}
	}
	*nextra = n;
	/* Every other reuseport socket, of any generation, is not ours: held
	 * here it would outlive the master's close (and its clients). */
	for (unsigned gi = 0; gi < ngroups; gi++)
		for (unsigned k = 0; k < groups[gi]->n; k++) {
			int fd = groups[gi]->fd[k], mine = 0;

			for (unsigned i = 0; i < nl && !mine; i++)
				mine = (*own)[i] == fd;
			for (unsigned j = 0; j < n && !mine; j++)
				mine = (*extra)[j] == fd;
			if (!mine)
				close(fd);
		}
	return 0;
}
