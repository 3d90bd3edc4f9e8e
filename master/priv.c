/* SPDX-License-Identifier: BSD-2-Clause */
/* priv.c — what the workers run as: the master plans it from the config (at
 * start and reload) and hands the log and stats files to that identity; each
 * new worker applies it (chroot, setgroups, setgid, setuid) before it serves
 * anyone. A worker that cannot drop what it was told to drop must not run. */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "priv.h"

static void
name_of_uid(uid_t uid, char *buf, size_t len)
{
	const struct passwd *pw = getpwuid(uid);

	if (pw != NULL)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "%lu", (unsigned long)uid);
}

static void
name_of_gid(gid_t gid, char *buf, size_t len)
{
	const struct group *gr = getgrgid(gid);

	if (gr != NULL)
		snprintf(buf, len, "%s", gr->gr_name);
	else
		snprintf(buf, len, "%lu", (unsigned long)gid);
}

/* The setting of c that needs CAP_NET_ADMIN in the workers ("upstreams[0].mark"
 * into buf), or NULL when none does. */
static const char *
net_admin_setting(const struct conf *c, char *buf, size_t len)
{
	for (unsigned i = 0; i < c->nupstreams; i++) {
		const struct conf_upstream *u = &c->upstreams[i];

		if (u->mark || u->source.transparent) {
			snprintf(buf, len, "upstreams[%u].%s", i, u->mark ? "mark" : "transparent");
			return buf;
		}
		for (unsigned j = 0; j < u->nservers; j++)
			if (u->servers[j].source.transparent) {
				snprintf(buf, len, "upstreams[%u].servers[%u].transparent", i, j);
				return buf;
			}
	}
	return NULL;
}

/* 1 when this process has CAP_NET_ADMIN in its effective set. */
static int
have_net_admin(void)
{
	struct __user_cap_header_struct hd = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &hd, d) == -1)
		return 0;
	return (d[CAP_TO_INDEX(CAP_NET_ADMIN)].effective & CAP_TO_MASK(CAP_NET_ADMIN)) != 0;
}

int
priv_plan(const struct conf *c, struct priv *p, char *err, size_t errlen)
{
	const struct passwd *pw;
	struct stat st;
	char what[64];

	memset(p, 0, sizeof(*p));
	/* Workers of a master that is not root keep its identity and its
	 * capabilities: without CAP_NET_ADMIN every connect would fail. */
	if (geteuid() != 0 && net_admin_setting(c, what, sizeof(what)) != NULL &&
	    !have_net_admin()) {
		snprintf(err, errlen,
		    "%s: %s: needs CAP_NET_ADMIN, which sluiced lacks (it does not run as "
		    "root)",
		    c->path, what);
		return -1;
	}
	if (geteuid() != 0) {
		/* Nothing to drop and no right to switch: like nginx, run the
		 * workers as ourselves and say the settings were ignored. */
		int more = (c->user != NULL && c->uid != geteuid()) ||
		           (c->group != NULL && c->gid != getegid()) || c->chroot != NULL;

		p->why = more ? PRIV_NOT_ROOT_IGNORED : PRIV_NOT_ROOT;
		p->uid = geteuid();
		p->gid = getegid();
		name_of_uid(p->uid, p->user, sizeof(p->user));
		name_of_gid(p->gid, p->group, sizeof(p->group));
		return 0;
	}
	if (c->user == NULL) {
		/* Root workers need an explicit user = "root"; without one
		 * they get the account meant for running with no rights. */
		if ((pw = getpwnam(PRIV_DEFAULT_NAME)) == NULL) {
			snprintf(err, errlen,
			    "%s: user: not set, and there is no \"%s\" account "
			    "to run the workers as; set user",
			    c->path, PRIV_DEFAULT_NAME);
			return -1;
		}
		p->why = PRIV_DEFAULT_USER;
		p->uid = pw->pw_uid;
		p->gid = c->group != NULL ? c->gid : pw->pw_gid;
		snprintf(p->user, sizeof(p->user), "%s", PRIV_DEFAULT_NAME);
	} else {
		p->uid = c->uid;
		p->gid = c->gid;
		p->why = c->uid == 0 ? PRIV_ROOT_ASKED : PRIV_AS_CONFIGURED;
		snprintf(p->user, sizeof(p->user), "%s", c->user);
	}
	p->setid = p->why != PRIV_ROOT_ASKED;
	/* SO_MARK and IP_TRANSPARENT need CAP_NET_ADMIN: workers that switch
	 * user keep that one capability when an upstream or server asks. */
	p->net_admin = p->setid && net_admin_setting(c, what, sizeof(what)) != NULL;
	if (!p->setid)
		p->gid = getegid();
	name_of_gid(p->gid, p->group, sizeof(p->group));
	if (c->chroot != NULL) {
		if (stat(c->chroot, &st) == -1) {
			snprintf(
			    err, errlen, "%s: chroot: %s: %s", c->path, c->chroot, strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			snprintf(
			    err, errlen, "%s: chroot: %s: not a directory", c->path, c->chroot);
			return -1;
		}
		snprintf(p->chroot, sizeof(p->chroot), "%s", c->chroot);
	}
	return 0;
}

void
priv_log(const struct priv *p)
{
	const char *in = p->chroot[0] != '\0' ? " inside " : "";

	switch (p->why) {
	case PRIV_AS_CONFIGURED:
		log_info("workers run as user %s (uid %lu), group %s (gid %lu)%s%s", p->user,
		    (unsigned long)p->uid, p->group, (unsigned long)p->gid, in, p->chroot);
		break;
	case PRIV_DEFAULT_USER:
		log_notice("user is not set: workers run as %s (uid %lu), group %s (gid %lu)%s%s",
		    p->user, (unsigned long)p->uid, p->group, (unsigned long)p->gid, in, p->chroot);
		break;
	case PRIV_ROOT_ASKED:
		log_warnx("workers run as root (user = \"root\"): a flaw in a worker would "
		          "hand over the whole machine%s%s",
		    in, p->chroot);
		break;
	case PRIV_NOT_ROOT:
		log_debug("workers run as %s, like the master", p->user);
		break;
	case PRIV_NOT_ROOT_IGNORED:
		log_warnx("user, group and chroot need sluiced started as root; ignoring them: "
		          "workers run as %s, like the master",
		    p->user);
		break;
	}
}

int
priv_drop(const struct priv *p, char *err, size_t errlen)
{
	if (p->chroot[0] != '\0' && (chroot(p->chroot) == -1 || chdir("/") == -1)) {
		snprintf(err, errlen, "chroot %s: %s", p->chroot, strerror(errno));
		return -1;
	}
	if (!p->setid)
		return 0;
	/* Keep the permitted set across setuid, to narrow it to
	 * CAP_NET_ADMIN below; nothing else survives. */
	if (p->net_admin && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == -1) {
		snprintf(err, errlen, "cannot keep CAP_NET_ADMIN: %s", strerror(errno));
		return -1;
	}
	/* Supplementary groups first (root's would survive setgid), the
	 * group before the user (afterwards we may no longer change it). As
	 * root, setuid sets the real, effective and saved uid alike. */
	if (setgroups(1, &p->gid) == -1 || setgid(p->gid) == -1 || setuid(p->uid) == -1) {
		snprintf(err, errlen, "cannot switch to user %s, group %s: %s", p->user, p->group,
		    strerror(errno));
		return -1;
	}
	if (p->net_admin) {
		struct __user_cap_header_struct hd = {_LINUX_CAPABILITY_VERSION_3, 0};
		struct __user_cap_data_struct d[2];

		memset(d, 0, sizeof(d));
		d[CAP_TO_INDEX(CAP_NET_ADMIN)].effective = CAP_TO_MASK(CAP_NET_ADMIN);
		d[CAP_TO_INDEX(CAP_NET_ADMIN)].permitted = CAP_TO_MASK(CAP_NET_ADMIN);
		if (syscall(SYS_capset, &hd, d) == -1 || prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == -1) {
			snprintf(err, errlen, "cannot keep CAP_NET_ADMIN: %s", strerror(errno));
			return -1;
		}
	}
	if (getuid() != p->uid || geteuid() != p->uid || getgid() != p->gid ||
	    getegid() != p->gid) {
		snprintf(err, errlen, "switching to user %s, group %s left other ids in place",
		    p->user, p->group);
		return -1;
	}
	/* A drop that can be undone is no drop: prove root is out of reach. */
	if (p->uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
		snprintf(err, errlen, "could regain root after switching to user %s", p->user);
		return -1;
	}
	if (p->gid != 0 && (setgid(0) != -1 || setegid(0) != -1)) {
		snprintf(err, errlen, "could regain group 0 after switching to group %s", p->group);
		return -1;
	}
	return 0;
}

void
priv_own_log(const struct priv *p, const struct conf *c)
{
	if (!p->setid || c->log_target != LOG_TARGET_FILE || c->log_file == NULL)
		return;
	if (chown(c->log_file, p->uid, (gid_t)-1) == -1)
		log_warn("cannot give %s to user %s: workers will not be able to reopen it",
		    c->log_file, p->user);
}

int
priv_own_stats(const struct priv *p, const char *path)
{
	if (!p->setid)
		return 0;
	return chown(path, (uid_t)-1, p->gid);
}
