/* SPDX-License-Identifier: BSD-2-Clause */
/* handoff.h — the wire format of session hand-off: on a reload, a worker of
 * the old generation passes each of its established sessions to a worker of
 * the new one, over a SOCK_SEQPACKET socketpair per (old, new) pair that the
 * master made, as one fixed-size record with the session's two descriptors
 * attached (SCM_RIGHTS). Both ends run on the same host (same byte order);
 * the version is checked before any session moves. Used by worker/handoff.c
 * and the unit test; pure data and one pure check, no I/O. */
#ifndef SLUICE_HANDOFF_H
#define SLUICE_HANDOFF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HANDOFF_MAGIC 0x4f484c53u /* "SLHO" */
/* Bump on any change of struct handoff_msg or of what a field means: a
 * worker only sends sessions to one that greets it with its own version. */
#define HANDOFF_VERSION 1

/* What flows where. The receiver (new) greets with HELLO as soon as it has
 * the channel; the sender (old) moves sessions with SESSION only after a
 * HELLO of its own version. Every SESSION is answered by either an ACK
 * (count taken, rejected) or a RETURN carrying the session back. A receiver
 * that starts draining says BYE and exits only once every sender has closed
 * its channel, so that no session is left unread in one. */
enum handoff_kind {
	HANDOFF_HELLO = 1,   /* new -> old: the version it speaks */
	HANDOFF_SESSION = 2, /* old -> new: one session, two descriptors */
	HANDOFF_ACK = 3,     /* new -> old: taken (count) and unreadable (rejected) */
	HANDOFF_RETURN = 4,  /* new -> old: one session back (reason), two descriptors */
	HANDOFF_BYE = 5,     /* new -> old: it drains itself; send nothing more, and
	                      * close the channel once every session is answered for */
	/* master -> worker, on the worker's own hand-off socket, with one
	 * descriptor: a channel to send sessions on, or to receive them on. */
	HANDOFF_CHAN_SEND = 16,
	HANDOFF_CHAN_RECV = 17,
	/* new master -> old master in a hot upgrade: its first generation runs;
	 * count descriptors, its workers' hand-off sockets, attached. */
	HANDOFF_UPGRADE_READY = 18,
};

/* Why a session came back. FULL and DRAINING say the receiver cannot take
 * any now; the sender stops offering it sessions for a while. */
enum handoff_return {
	HANDOFF_RET_FULL = 1,     /* at its connection or memory limit */
	HANDOFF_RET_DRAINING = 2, /* it is leaving too */
};

/* Session flags carried (the F_* bits of worker/session.h that describe the
 * direction state; the receiver keeps exactly these). */
#define HANDOFF_FLAGS_MASK 0xefu

/* One message; every kind has the same size. */
struct handoff_msg {
	uint32_t magic;   /* HANDOFF_MAGIC */
	uint16_t version; /* HANDOFF_VERSION of the writer */
	uint16_t kind;    /* enum handoff_kind */
	uint32_t size;    /* sizeof(struct handoff_msg) of the writer */
	uint32_t count;   /* ACK: sessions taken; RETURN: enum handoff_return */
	uint32_t rejected; /* ACK: sessions that could not be read (descriptors closed) */
	/* SESSION and RETURN: the session. Rows are the stats segment's, the
	 * same in every generation for the same listener or server. */
	uint32_t listener_row, server_row;
	uint32_t flags;     /* F_* direction state, within HANDOFF_FLAGS_MASK */
	int64_t active_us;  /* CLOCK_MONOTONIC when bytes last moved, microseconds */
	uint32_t start_ms;  /* CLOCK_MONOTONIC at accept, ms mod 2^32 (0: unknown) */
	uint32_t has_client; /* 1: the client address below is known */
	uint64_t bytes_in, bytes_out; /* relayed so far, for the connection log */
	uint8_t addr[16];   /* the client (from a PROXY header if one came) */
	uint16_t port;      /* network order */
	uint8_t family;     /* AF_INET, AF_INET6 */
	uint8_t pad;
	/* SESSION and RETURN: the srclimit_id of the per-source table the
	 * session's count stays in while it moves (0: none; it was padding,
	 * zero from older writers, so no version change: a receiver of
	 * another table counts the session afresh either way). */
	uint32_t source_table;
};

/* Descriptors one message carries at most (a master's list of its workers'
 * sockets; the kernel's SCM_MAX_FD is 253). */
#define HANDOFF_FDS_MAX 128

/* Send m with nfds descriptors (0..HANDOFF_FDS_MAX) without blocking, as
 * one datagram of a SOCK_SEQPACKET socket. Returns what sendmsg does (EINTR
 * retried), errno set on -1. */
ssize_t handoff_send(int fd, const struct handoff_msg *m, const int *fds, unsigned nfds);

/* Read one message without blocking into m (zeroed first), its descriptors
 * (close-on-exec) into fds, at most max of them: more are closed and the
 * message is truncated, as it is when the kernel cut data or descriptors.
 * Returns what recvmsg does (EINTR retried). */
ssize_t handoff_recv(int fd, struct handoff_msg *m, int *fds, unsigned max, unsigned *nfds,
    int *truncated);

/* Is msg (len bytes read, nfds descriptors attached, truncated: the kernel
 * cut data or descriptors) a message a reader may act on? Returns NULL, or
 * why not. A reader that gets a reason closes the descriptors it got. */
const char *handoff_check(const struct handoff_msg *msg, size_t len, int nfds, int truncated);

#endif
