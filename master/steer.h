/* SPDX-License-Identifier: BSD-2-Clause */
/* steer.h — steering a reuseport group's new clients in turn (steer.c). */
#ifndef SLUICE_STEER_H
#define SLUICE_STEER_H

/* Load an eBPF socket-filter program that returns 0, 1, ..., n - 1, 0, ...
 * at successive SYNs: attached with SO_ATTACH_REUSEPORT_EBPF, each of a
 * group's first n sockets gets every n-th new client. Returns the program's
 * descriptor (the caller closes it once attached), or -1 with errno
 * (EPERM: no BPF for this user; ENOSYS, EINVAL: the kernel cannot). */
int steer_rr_prog(unsigned n);

#endif
