/* SPDX-License-Identifier: BSD-2-Clause */
/* handoff.c — the one check every hand-off message passes before a worker
 * acts on it (see handoff.h). Pure: no I/O, no state. */
#include <sys/socket.h>

#include "handoff.h"

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
