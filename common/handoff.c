/* SPDX-License-Identifier: BSD-2-Clause */
/* handoff.c — hand-off messages on the wire (see handoff.h): sending and
 * reading one with its descriptors, and the one check every message passes
 * before a process acts on it. Never blocks, keeps no state. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handoff.h"

ssize_t
handoff_send(int fd, const struct handoff_msg *m, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(HANDOFF_FDS_MAX * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > HANDOFF_FDS_MAX) {
		errno = E2BIG;
		return -1;
	}
	if (nfds > 0) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	do
		n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	return n;
}

ssize_t
handoff_recv(int fd, struct handoff_msg *m, int *fds, unsigned max, unsigned *nfds,
    int *truncated)
{
	union {
		char buf[CMSG_SPACE((HANDOFF_FDS_MAX + 2) * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
		.msg_controllen = sizeof(u.buf) };
	ssize_t n;

	memset(m, 0, sizeof(*m));
	*nfds = 0;
	*truncated = 0;
	do
		n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n <= 0)
		return n;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int d;

			memcpy(&d, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*nfds < max) {
				fds[(*nfds)++] = d;
			} else {
				/* More than a message of its kind carries. */
				close(d);
				*truncated = 1;
			}
		}
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		*truncated = 1;
	return n;
}

const char *
handoff_check(const struct handoff_msg *m, size_t len, int nfds, int truncated)
{
	int want;

	if (truncated)
		return "truncated (data or descriptors cut)";
	if (len < 12)
		return "too short for a header";
	if (m->magic != HANDOFF_MAGIC)
		return "bad magic";
	if (m->kind == HANDOFF_HELLO)
		/* A greeting is read whatever its version: that is its point. */
		return nfds == 0 ? NULL : "descriptors on a greeting";
	if (m->version != HANDOFF_VERSION)
		return "another version";
	if (len != sizeof(*m) || m->size != sizeof(*m))
		return "wrong size";
	switch (m->kind) {
	case HANDOFF_SESSION:
	case HANDOFF_RETURN:
		want = 2;
		break;
	case HANDOFF_ACK:
	case HANDOFF_BYE:
		want = 0;
		break;
	default:
		return "unknown kind";
	}
	if (nfds != want)
		return want ? "not two descriptors" : "descriptors on an acknowledgement";
	if (want == 0)
		return NULL;
	if (m->flags & ~HANDOFF_FLAGS_MASK)
		return "unknown session flags";
	if (m->has_client > 1 ||
	    (m->has_client && m->family != AF_INET && m->family != AF_INET6))
		return "bad client address";
	if (m->kind == HANDOFF_RETURN && m->count != HANDOFF_RET_FULL &&
	    m->count != HANDOFF_RET_DRAINING)
		return "unknown return reason";
	return NULL;
}
