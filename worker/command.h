/* SPDX-License-Identifier: BSD-2-Clause */
/* command.h — a worker's end of its command socketpair with the master
 * (command.c): the control socket's session listing and shutdowns. */
#ifndef SLUICE_COMMAND_H
#define SLUICE_COMMAND_H

struct worker;

/* Answer the master's requests on fd (non-blocking, the worker's end of the
 * socketpair the master made for it), from the worker's loop. fd -1: none. */
void command_init(struct worker *, int fd);

#endif
