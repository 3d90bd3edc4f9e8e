/* SPDX-License-Identifier: BSD-2-Clause */
/* priv.h — who the workers run as: decided by the master from the config and
 * its own identity (at start and on each reload), applied by every new worker
 * before it touches a client. Never used by sluicestat or the tests' readers. */
#ifndef SLUICE_PRIV_H
#define SLUICE_PRIV_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

struct conf;

/* Why the plan is what it is, so the master can say so in its log. */
enum priv_why {
	PRIV_AS_CONFIGURED,   /* root master, `user` set to someone else: switch */
	PRIV_DEFAULT_USER,    /* root master, no `user`: switch to PRIV_DEFAULT_NAME */
	PRIV_ROOT_ASKED,      /* root master, user = "root": workers keep root */
	PRIV_NOT_ROOT,        /* master not root: workers keep its identity */
	PRIV_NOT_ROOT_IGNORED /* ... although user, group or chroot asked for more */
};

#define PRIV_DEFAULT_NAME "nobody"

struct priv {
	enum priv_why why;
	int setid; /* 1: setgroups/setgid/setuid to gid/uid */
	uid_t uid;
	gid_t gid;
	char user[64]; /* names, for the log */
	char group[64];
	char chroot[PATH_MAX]; /* "" or the directory to chroot into */
	int net_admin; /* 1: keep CAP_NET_ADMIN (and only it) across the
	                * switch: upstream mark or transparent needs it */
};

/* Decide what the workers of conf will run as, given our effective uid.
 * Looks up PRIV_DEFAULT_NAME when needed and checks that chroot is a
 * directory. Returns 0, or -1 with the reason in err (nothing changed). */
int priv_plan(const struct conf *, struct priv *, char *err, size_t errlen);

/* Log the plan: a warning for root workers or ignored settings, else info. */
void priv_log(const struct priv *);

/* In a new worker, before anything else: chroot, then setgroups, setgid and
 * setuid, then prove it cannot be undone (setuid(0) and setgid(0) must fail).
 * With net_admin, CAP_NET_ADMIN alone survives the switch (the caller clears
 * net_admin for children that never connect upstream).
 * Returns 0, or -1 with the reason in err: the worker must then exit with
 * WORKER_EXIT_CONFIG, never run with privileges it was meant to drop. */
int priv_drop(const struct priv *, char *err, size_t errlen);

/* Master: the workers reopen the log file by name after rotation (SIGUSR1),
 * so a file the master (re)created is handed to the workers' user. No-op
 * unless the plan switches user and conf logs to a file; failures are
 * logged, never fatal. */
void priv_own_log(const struct priv *, const struct conf *);

/* Master: give the statistics segment file to the workers' group, so its
 * mode 0640 lets that group read it (sluicestat). Workers need no
 * permission: they inherit the mapping. Returns 0, or -1 with errno. */
int priv_own_stats(const struct priv *, const char *path);

#endif
