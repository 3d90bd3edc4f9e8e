/* SPDX-License-Identifier: BSD-2-Clause */
/* net.c — socket helpers for the master's listeners and the workers' upstream
 * connections. Never blocks (every socket is non-blocking), never logs. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

int
net_listen(const struct sockaddr *sa, socklen_t len, int backlog)
{
	return net_listen_v6only(sa, len, backlog, 1);
}

int
net_listen_v6only(const struct sockaddr *sa, socklen_t len, int backlog, int v6only)
{
	int fd, one = 1, e;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	/* A v6 listener takes v6 only, so "[::]:80" and "0.0.0.0:80" can
	 * coexist and mean what they say. */
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) == -1)
		goto fail;
	if (bind(fd, sa, len) == -1 || listen(fd, backlog) == -1)
		goto fail;
	/* Accepted sockets inherit it: relayed bytes go out at once without a
	 * setsockopt per connection. */
	net_nodelay(fd);
	return fd;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

int
net_connect(const struct sockaddr *sa, socklen_t len)
{
	return net_connect_prep(sa, len, NULL, NULL);
}

int
net_connect_prep(const struct sockaddr *sa, socklen_t len, int (*prep)(int, void *), void *arg)
{
	int fd, e;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	net_nodelay(fd);
	if (prep != NULL && prep(fd, arg) == -1)
		goto fail;
	if (connect(fd, sa, len) == 0 || errno == EINPROGRESS)
		return fd;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

int
net_connect_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return -1;
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

void
net_nodelay(int fd)
{
	int one = 1;

	/* Best effort: a relay that cannot set it still relays. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
