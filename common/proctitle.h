/* SPDX-License-Identifier: BSD-2-Clause */
/* proctitle.h — process titles for ps, top and systemctl status: rewrites
 * the memory of argv (what /proc/PID/cmdline shows) and sets the kernel's
 * short name (/proc/PID/comm, 15 bytes). Runs in every sluiced process; not
 * thread-safe, never call it from a signal handler. */
#ifndef SLUICE_PROCTITLE_H
#define SLUICE_PROCTITLE_H

/* Once, first thing in main, before anything keeps a pointer into argv or
 * environ: copies the argument and environment strings elsewhere (argv[i]
 * and environ then point at the copies, so getopt's optarg and getenv keep
 * working) and keeps their original, contiguous memory for the title. */
void proctitle_init(int argc, char **argv);

/* Show the title made from fmt as the whole command line (truncated to the
 * memory the original argv and environment strings had), and comm, when
 * not NULL, as the short name (truncated to 15 bytes). Before
 * proctitle_init, or when that found no usable memory, only comm is set. */
void proctitle_set(const char *comm, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The titles sluiced uses, so that ps shows one vocabulary:
 *   comm "sluiced"          "sluiced: master (generation G)"
 *   comm "sluiced-worker"   "sluiced: worker I (generation G[, draining])"
 *   comm "sluiced-checker"  "sluiced: checker"
 *   comm "sluiced-admin"    "sluiced: admin"
 * The master keeps the program's own name as comm, so `pgrep -x sluiced`
 * and `killall sluiced` find the master alone. */

#endif
