/* SPDX-License-Identifier: BSD-2-Clause */
/* xfer.h — moves one direction of a session's bytes: read from its source
 * and write straight on, keeping what the destination cannot take in a
 * pooled buffer, or, once the direction moves bulk, in a pooled pipe
 * (splice, zero-copy). Runs in a worker's loop. Reports what it found and
 * never decides a session's fate: it never closes a session nor moves it
 * between rooms (relay.c does both). */
#ifndef SLUICE_XFER_H
#define SLUICE_XFER_H

struct session;
struct worker;

/* Bytes one splice moves at most, and the capacity asked of each pipe. */
#define XFER_SPLICE_CHUNK (256 * 1024)

enum xfer_result {
	XFER_OK,           /* moved what could be moved: watch and come back */
	XFER_STARVED,      /* no relay buffer in the budget: reading must wait */
	XFER_CLIENT_ERROR, /* the client's socket failed (errno says how) */
	XFER_SERVER_ERROR  /* the server's socket failed (errno says how) */
};

/* Read the direction (c2s: client to server) and write on, a few reads per
 * event. On EOF with nothing pending the FIN is passed on (shutdown). */
enum xfer_result xfer_move(struct worker *, struct session *, int c2s);

/* Write what is pending for the direction; once it is all out the buffer
 * or pipe goes back, and an EOF that waited for it is passed on. */
enum xfer_result xfer_drain(struct worker *, struct session *, int c2s);

/* At teardown: give back the pipes the session holds and return its
 * buffers (NULL where none) for the caller to give back once the session
 * itself is gone. */
void xfer_release(struct worker *, struct session *, char **c2s_buf, char **s2c_buf);

#endif
