/* SPDX-License-Identifier: BSD-2-Clause */
/* handoff_worker.h — a worker's side of session hand-off between
 * generations (handoff.c; the wire format is common/handoff.h). */
#ifndef SLUICE_HANDOFF_WORKER_H
#define SLUICE_HANDOFF_WORKER_H

struct worker;

/* Listen for channels on fd, the worker's hand-off socket with the master
 * (-1: none, and the worker neither sends nor takes sessions). */
void handoff_init(struct worker *, int fd);

/* The worker started draining: offer its sessions to the newer generation
 * on the channels it has or will get, and give back any offered to it. */
void handoff_drain(struct worker *);

/* 1 while a draining worker must not exit yet: a sender has not closed its
 * channel to us, and sessions it sent may still be unread in it. */
int handoff_busy(const struct worker *);

/* At exit: close every channel. */
void handoff_fini(struct worker *);

#endif
