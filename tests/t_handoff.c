/* SPDX-License-Identifier: BSD-2-Clause */
/* t_handoff.c — unit test of handoff_check, the gate every hand-off message
 * passes before a worker acts on it: good messages of each kind pass, and
 * every way a message can be short, foreign, damaged or carry the wrong
 * descriptors is refused. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "handoff.h"
#include "tap.h"

static struct handoff_msg
msg(uint16_t kind)
{
	struct handoff_msg m;

	memset(&m, 0, sizeof(m));
	m.magic = HANDOFF_MAGIC;
	m.version = HANDOFF_VERSION;
	m.kind = kind;
	m.size = sizeof(m);
	if (kind == HANDOFF_SESSION || kind == HANDOFF_RETURN) {
		m.has_client = 1;
		m.family = AF_INET;
		m.flags = 0x05;
	}
	if (kind == HANDOFF_RETURN)
		m.count = HANDOFF_RET_FULL;
	return m;
}

#define PASSES(m, len, nfds, tr) (handoff_check(&(m), (len), (nfds), (tr)) == NULL)

int
main(void)
{
	struct handoff_msg m;
	const size_t sz = sizeof(m);

	m = msg(HANDOFF_SESSION);
	ok(PASSES(m, sz, 2, 0), "a session with two descriptors passes");
	ok(!PASSES(m, sz, 1, 0) && !PASSES(m, sz, 0, 0) && !PASSES(m, sz, 3, 0),
	    "a session with other than two descriptors is refused");
	ok(!PASSES(m, sz, 2, 1), "a truncated message is refused");
	ok(!PASSES(m, sz - 1, 2, 0) && !PASSES(m, 8, 2, 0) && !PASSES(m, 0, 2, 0),
	    "a short message is refused");
	m.size ^= 0x40;
	ok(!PASSES(m, sz, 2, 0), "a message that says another size is refused");
	m = msg(HANDOFF_SESSION);
	m.magic ^= 1;
	ok(!PASSES(m, sz, 2, 0), "bad magic is refused");
	m = msg(HANDOFF_SESSION);
	m.version = HANDOFF_VERSION + 1;
	ok(!PASSES(m, sz, 2, 0), "a session of another version is refused");
	m = msg(HANDOFF_SESSION);
	m.flags = 0x10;
	ok(!PASSES(m, sz, 2, 0), "unknown session flags are refused");
	m = msg(HANDOFF_SESSION);
	m.family = 99;
	ok(!PASSES(m, sz, 2, 0), "a client of an unknown family is refused");
	m.has_client = 2;
	ok(!PASSES(m, sz, 2, 0), "has_client other than 0 or 1 is refused");
	m = msg(HANDOFF_SESSION);
	m.has_client = 0;
	m.family = 0;
	ok(PASSES(m, sz, 2, 0), "a session without a client address passes");

	m = msg(HANDOFF_HELLO);
	ok(PASSES(m, sz, 0, 0), "a greeting passes");
	m.version = 99;
	ok(PASSES(m, 12, 0, 0), "a greeting of another version is read (short, too)");
	ok(!PASSES(m, sz, 1, 0), "a greeting with a descriptor is refused");

	m = msg(HANDOFF_ACK);
	m.count = 5;
	ok(PASSES(m, sz, 0, 0), "an acknowledgement passes");
	ok(!PASSES(m, sz, 2, 0), "an acknowledgement with descriptors is refused");

	m = msg(HANDOFF_RETURN);
	ok(PASSES(m, sz, 2, 0), "a return passes");
	m.count = 7;
	ok(!PASSES(m, sz, 2, 0), "a return with an unknown reason is refused");

	m = msg(HANDOFF_SESSION);
	m.kind = 99;
	ok(!PASSES(m, sz, 2, 0), "an unknown kind is refused");
	m.kind = HANDOFF_CHAN_SEND;
	ok(!PASSES(m, sz, 1, 0), "a master's channel message is not a peer message");

	done_testing();
	return tap_exit();
}
