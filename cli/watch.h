/* SPDX-License-Identifier: BSD-2-Clause */
/* watch.h — sluicestat -w: the live view, redrawn in place with per-second
 * rates, like top. Runs in sluicestat only; reads the segment like every
 * other mode and restores the terminal on every way out it controls. */
#ifndef SLUICE_WATCH_H
#define SLUICE_WATCH_H

/* 1 when this sluicestat was built with ncurses, so -w works; else 0. */
int watch_available(void);

/*
 * Show the segment at path, a new reading every interval seconds (> 0),
 * sized to the terminal and redrawn when it is resized, until q, Ctrl-C,
 * SIGTERM or SIGHUP. A missing segment, or one replaced by a restarted
 * master, is said on screen and the view carries on. Needs a terminal on
 * stdin and stdout. Returns sluicestat's exit status: 0 after a clean
 * exit, 1 when the terminal cannot be driven, 2 without a terminal or
 * without ncurses (a message on stderr says which).
 */
int watch_run(const char *path, double interval);

#endif
