/* SPDX-License-Identifier: BSD-2-Clause */
/* conf.c — read a libconfig file and validate every setting into a struct
 * conf, or explain the first problem as "FILE:LINE: SETTING: reason". Runs in
 * the master (start, -t, SIGHUP reload); must never log, exit, open sockets
 * or touch the running daemon: a failed reload has to leave nothing behind. */
#include <ctype.h>
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <libconfig.h>

#include "addr.h"
#include "cidr.h"
#include "conf.h"
#include "logfmt.h"
#include "pool.h"
#include "proxy.h"
#include "tls_hello.h"

#define CONF_DEFAULT_PID_FILE "/run/sluice/sluiced.pid"
#define CONF_DEFAULT_STATS_FILE "/run/sluice/stats"
#define CONF_DEFAULT_SYSLOG_SOCKET "/dev/log"
/* sizeof(struct sockaddr_un.sun_path), NUL included. */
#define CONF_UNIX_PATH_MAX 108
#define CONF_BUFFER_MIN 512
#define CONF_BUFFER_MAX (1024 * 1024)
/* A worker needs room for a useful number of buffers, not just one. */
#define CONF_MEMORY_BUFFERS 64
#define CONF_MAX_CONNECTIONS 10000000
#define CONF_WEIGHT_MAX 256
/* Each retry is one more server within the same connect timeout. */
#define CONF_RETRIES_MAX 32
#define CONF_FAILS_MAX 1000
/* health.send and health.expect fit in one small read and write. */
#define CONF_CHECK_TEXT_MAX 512
#define CONF_BACKLOG_MAX 65535
/* The kernel's bounds: MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT. */
#define CONF_KEEPALIVE_S_MAX 32767
#define CONF_KEEPALIVE_COUNT_MAX 127
#define CONF_FASTOPEN_MAX 65535
#define CONF_DEFER_ACCEPT_S_MAX 3600
/* Socket buffers: the kernel doubles what it is given, into an int. */
#define CONF_SOCKBUF_MIN 1024
#define CONF_SOCKBUF_MAX (512 * 1024 * 1024)
/* Rules of one listener's sni list: tried one by one per connection. */
#define CONF_SNI_RULES_MAX 1024
/* Buffer room past a header with configured TLVs, for reading a client. */
#define CONF_TLV_READ_MIN 256
/* Timeouts are stored as unsigned milliseconds: about 49.7 days. */
#define CONF_DURATION_MAX_MS UINT32_MAX

static struct conf *conf_read(const char *path, int peek, char *err, size_t errlen);

/* Where errors go while one file is being checked. */
struct conf_ctx {
	const char *path;
	char *err;
	size_t errlen;
	const char *dir; /* where @include looks */
	int peek;        /* conf_peek: no name lookups (DNS, users, groups) */
	const struct conf_dns *dns; /* the file's dns group, read before upstreams */
};

struct conf_name {
	const char *name;
	int value;
};

static const char *const conf_top_keys[] = {"workers", "accept_workers", "pid_file", "stats_file", "user",
    "group", "chroot", "log", "pool", "limits", "timeouts", "upstreams", "listeners", "control",
    "admin", "dns", NULL};
static const char *const conf_control_keys[] = {"socket", "mode", "group", "state_file", NULL};
static const char *const conf_admin_keys[] = {"listen", NULL};
static const char *const conf_log_keys[] = {"target", "file", "facility", "level",
    "connections", "format", "syslog_socket", NULL};
static const char *const conf_pool_keys[] = {"buffer_size", "max_memory", "splice",
    "bulk_buffer_size", "batch_writes", NULL};
static const char *const conf_limits_keys[] = {"max_connections", "max_connections_per_worker",
    "source_table", NULL};
static const char *const conf_timeouts_keys[] = {"connect", "idle", "drain", "proxy_header",
    "client_fin", "server_fin", "max_lifetime", "max_lifetime_jitter", "preread", NULL};
static const char *const conf_upstream_keys[] = {"name", "balance", "servers", "retries",
    "max_fails", "fail_timeout", "health", "keepalive", "mark", "source", "transparent", NULL};
static const char *const conf_server_keys[] = {"address", "weight", "max_connections", "backup",
    "source", "transparent", "resolve", "max_addresses", NULL};
static const char *const conf_dns_keys[] = {"nameservers", "timeout", "min_ttl", "max_ttl",
    "retry", "family", "init_addr", NULL};
static const char *const conf_health_keys[] = {"interval", "timeout", "rise", "fall", "send",
    "expect", "send_proxy", NULL};
static const char *const conf_listener_keys[] = {"listen", "upstream", "backlog",
    "proxy_protocol", "accept_proxy", "trusted", "allow", "deny", "max_connections_per_source",
    "rate_limit", "v6only", "fastopen", "defer_accept", "rcvbuf", "sndbuf", "keepalive", "sni",
    "proxy_tlv_pass", "proxy_tlv", "mode", "owner", "group", "reuseport", NULL};
static const char *const conf_tlv_keys[] = {"type", "value", "hex", NULL};
static const char *const conf_keepalive_keys[] = {"idle", "interval", "count", NULL};
static const char *const conf_sni_keys[] = {"name", "alpn", "upstream", NULL};

static const struct conf_name conf_balances[] = {
    {"roundrobin", CONF_BALANCE_ROUNDROBIN},
    {"leastconn", CONF_BALANCE_LEASTCONN},
    {"source", CONF_BALANCE_SOURCE},
    {"random", CONF_BALANCE_RANDOM},
    {NULL, 0},
};

static const struct conf_name conf_targets[] = {
    {"syslog", LOG_TARGET_SYSLOG},
    {"stderr", LOG_TARGET_STDERR},
    {"file", LOG_TARGET_FILE},
    {NULL, 0},
};

static const struct conf_name conf_facilities[] = {
    {"daemon", LOG_DAEMON},
    {"user", LOG_USER},
    {"local0", LOG_LOCAL0},
    {"local1", LOG_LOCAL1},
    {"local2", LOG_LOCAL2},
    {"local3", LOG_LOCAL3},
    {"local4", LOG_LOCAL4},
    {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6},
    {"local7", LOG_LOCAL7},
    {NULL, 0},
};

/* Parsed here rather than with log_level_parse so that conf stays free of
 * the logger (the CLI and tests link conf without log.c). */
static const struct conf_name conf_levels[] = {
    {"error", LOG_LEVEL_ERROR},
    {"warning", LOG_LEVEL_WARNING},
    {"notice", LOG_LEVEL_NOTICE},
    {"info", LOG_LEVEL_INFO},
    {"debug", LOG_LEVEL_DEBUG},
    {NULL, 0},
};

/* "upstreams[0].servers[1].address": the name users see in errors. */
static void
conf_setting_path(const config_setting_t *s, char *buf, size_t len)
{
	const config_setting_t *parent = config_setting_parent(s);
	size_t n;

	buf[0] = '\0';
	if (parent == NULL)
		return;
	conf_setting_path(parent, buf, len);
	n = strlen(buf);
	if (n + 1 >= len)
		return;
	if (config_setting_is_group(parent))
		snprintf(buf + n, len - n, "%s%s", n > 0 ? "." : "", config_setting_name(s));
	else
		snprintf(buf + n, len - n, "[%d]", config_setting_index(s));
}

/* Settings and syntax errors from an @include name their own file, which
 * libconfig records as written in the directive: relative to the include
 * directory, not to the daemon's working directory. */
static void
conf_file_name(const struct conf_ctx *c, const char *src, char *buf, size_t len)
{
	if (src == NULL || strcmp(src, c->path) == 0)
		snprintf(buf, len, "%s", c->path);
	else if (src[0] != '/' && c->dir != NULL)
		snprintf(buf, len, "%s/%s", c->dir, src);
	else
		snprintf(buf, len, "%s", src);
}

/* Report a problem with setting s or, when missing is set, with the absent
 * member missing of group s (the line is then the group's). Returns -1. */
static int __attribute__((format(printf, 4, 5)))
conf_fail(struct conf_ctx *c, const config_setting_t *s, const char *missing, const char *fmt, ...)
{
	char where[256], reason[2048], file[PATH_MAX + 256];
	unsigned line;
	size_t n;
	va_list ap;

	if (c->err == NULL || c->errlen == 0) {
		errno = EINVAL;
		return -1;
	}
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	conf_setting_path(s, where, sizeof(where));
	if (missing != NULL) {
		n = strlen(where);
		snprintf(where + n, sizeof(where) - n, "%s%s", n > 0 ? "." : "", missing);
	}
	conf_file_name(c, config_setting_source_file(s), file, sizeof(file));
	line = config_setting_source_line(s);
	if (line > 0)
		snprintf(c->err, c->errlen, "%s:%u: %s: %s", file, line, where, reason);
	else
		snprintf(c->err, c->errlen, "%s: %s: %s", file, where, reason);
	errno = EINVAL;
	return -1;
}

static int
conf_nomem(struct conf_ctx *c)
{
	if (c->err != NULL && c->errlen > 0)
		snprintf(c->err, c->errlen, "%s: out of memory", c->path);
	errno = ENOMEM;
	return -1;
}

static int
conf_strdup(struct conf_ctx *c, const char *text, char **out)
{
	*out = strdup(text);
	return *out == NULL ? conf_nomem(c) : 0;
}

/* "a, b or c" for error messages. */
static void
conf_join(const char *const *names, char *buf, size_t len)
{
	const char *sep;
	size_t n = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; names[i] != NULL && n < len; i++) {
		sep = ", ";
		if (i == 0)
			sep = "";
		else if (names[i + 1] == NULL)
			sep = " or ";
		snprintf(buf + n, len - n, "%s%s", sep, names[i]);
		n = strlen(buf);
	}
}

/* Unknown settings are errors, not ignored: a typo such as "idel" would
 * otherwise silently leave the default in force. */
static int
conf_check_keys(struct conf_ctx *c, const config_setting_t *group, const char *const *known)
{
	const config_setting_t *m;
	const char *name;
	char list[256];
	int i, k, n;

	n = config_setting_length(group);
	for (i = 0; i < n; i++) {
		m = config_setting_get_elem(group, (unsigned)i);
		name = config_setting_name(m);
		for (k = 0; known[k] != NULL; k++)
			if (strcmp(name, known[k]) == 0)
				break;
		if (known[k] == NULL) {
			conf_join(known, list, sizeof(list));
			return conf_fail(
			    c, m, NULL, "unknown setting \"%s\" (expected %s)", name, list);
		}
	}
	return 0;
}

/* The optional group name of parent, checked for unknown members; *out is
 * NULL when it is absent. */
static int
conf_group(struct conf_ctx *c, config_setting_t *parent, const char *name, const char *const *known,
    config_setting_t **out)
{
	config_setting_t *g;

	*out = NULL;
	g = config_setting_get_member(parent, name);
	if (g == NULL)
		return 0;
	if (!config_setting_is_group(g))
		return conf_fail(c, g, NULL, "expected a group { ... }");
	if (conf_check_keys(c, g, known) == -1)
		return -1;
	*out = g;
	return 0;
}

/* A list that must have at least one element; what says what it holds. */
static int
conf_list(struct conf_ctx *c, config_setting_t *parent, const char *name, const char *what,
    config_setting_t **out)
{
	config_setting_t *l;

	l = config_setting_get_member(parent, name);
	if (l == NULL)
		return conf_fail(c, parent, name, "at least one %s is required", what);
	if (!config_setting_is_list(l) && !config_setting_is_array(l))
		return conf_fail(c, l, NULL, "expected a list ( ... ) of %ss", what);
	if (config_setting_length(l) == 0)
		return conf_fail(c, l, NULL, "at least one %s is required", what);
	*out = l;
	return 0;
}

static int
conf_string(struct conf_ctx *c, const config_setting_t *s, const char **out)
{
	*out = NULL;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return conf_fail(c, s, NULL, "expected a string");
	*out = config_setting_get_string(s);
	return 0;
}

static int
conf_is_int(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT ||
	       config_setting_type(s) == CONFIG_TYPE_INT64;
}

/* Note that libconfig 1.5 itself wraps a plain integer literal beyond 32 bits
 * (3000000000 reads as negative); sizes that large belong in strings. */
static int
conf_int(struct conf_ctx *c, const config_setting_t *s, long long min, long long max, unsigned *out)
{
	long long v;

	if (!conf_is_int(s))
		return conf_fail(c, s, NULL, "expected an integer");
	v = config_setting_get_int64(s);
	if (v < min || v > max)
		return conf_fail(c, s, NULL, "must be between %lld and %lld", min, max);
	*out = (unsigned)v;
	return 0;
}

static int
conf_bool(struct conf_ctx *c, const config_setting_t *s, int *out)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return conf_fail(c, s, NULL, "expected true or false");
	*out = config_setting_get_bool(s);
	return 0;
}

/* One of names, by value; the message lists the choices. */
static int
conf_choice(struct conf_ctx *c, const config_setting_t *s, const char *what,
    const struct conf_name *names, int *out)
{
	const char *text, *list[16];
	char choices[256];
	int i;

	if (conf_string(c, s, &text) == -1)
		return -1;
	for (i = 0; names[i].name != NULL; i++) {
		if (strcmp(text, names[i].name) == 0) {
			*out = names[i].value;
			return 0;
		}
	}
	for (i = 0; names[i].name != NULL && i < 15; i++)
		list[i] = names[i].name;
	list[i] = NULL;
	conf_join(list, choices, sizeof(choices));
	return conf_fail(c, s, NULL, "unknown %s \"%s\" (use %s)", what, text, choices);
}

/* Paths are resolved by the daemon after it may have changed directory, so
 * a relative one would mean different files at start and at reload. */
static int
conf_abs_path(struct conf_ctx *c, const config_setting_t *s, char **out)
{
	const char *text;

	if (conf_string(c, s, &text) == -1)
		return -1;
	if (text[0] != '/')
		return conf_fail(c, s, NULL, "must be an absolute path");
	free(*out);
	return conf_strdup(c, text, out);
}

static int
conf_size(struct conf_ctx *c, const config_setting_t *s, uint64_t *out)
{
	const char *text;
	long long v;

	if (conf_is_int(s)) {
		v = config_setting_get_int64(s);
		if (v < 0)
			return conf_fail(c, s, NULL, "must not be negative");
		*out = (uint64_t)v;
		return 0;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return conf_fail(c, s, NULL, "expected a size (bytes, or a string such as \"4K\")");
	text = config_setting_get_string(s);
	if (conf_parse_size(text, out) == 0)
		return 0;
	if (errno == ERANGE)
		return conf_fail(c, s, NULL, "size \"%s\" is too large", text);
	return conf_fail(
	    c, s, NULL, "invalid size \"%s\" (use bytes, or a number with K, M or G)", text);
}

/* A timeout: more than zero, at most CONF_DURATION_MAX_MS. */
static int
conf_timeout(struct conf_ctx *c, const config_setting_t *s, unsigned *out)
{
	const char *text;
	uint64_t ms;
	long long v;

	if (conf_is_int(s)) {
		v = config_setting_get_int64(s);
		if (v <= 0)
			return conf_fail(c, s, NULL, "must be greater than 0");
		if (v > (long long)(CONF_DURATION_MAX_MS / 1000))
			return conf_fail(
			    c, s, NULL, "%lld seconds is too long (at most 49 days)", v);
		*out = (unsigned)(v * 1000);
		return 0;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return conf_fail(
		    c, s, NULL, "expected a duration (seconds, or a string such as \"5s\")");
	text = config_setting_get_string(s);
	if (conf_parse_duration(text, &ms) == -1) {
		if (errno == ERANGE)
			return conf_fail(
			    c, s, NULL, "duration \"%s\" is too long (at most 49 days)", text);
		return conf_fail(
		    c, s, NULL, "invalid duration \"%s\" (use ms, s, m, h or d)", text);
	}
	if (ms == 0)
		return conf_fail(c, s, NULL, "must be greater than 0");
	*out = (unsigned)ms;
	return 0;
}

/* A duration in whole seconds, 1..max: what socket options take. */
static int
conf_seconds(struct conf_ctx *c, const config_setting_t *s, unsigned max, unsigned *out)
{
	unsigned ms;

	if (conf_timeout(c, s, &ms) == -1)
		return -1;
	if (ms % 1000 != 0)
		return conf_fail(c, s, NULL, "must be whole seconds");
	if (ms / 1000 > max)
		return conf_fail(c, s, NULL, "must be at most %u seconds", max);
	*out = ms / 1000;
	return 0;
}

/* keepalive = { idle; interval; count; } of a listener or an upstream. */
static int
conf_keepalive(struct conf_ctx *c, config_setting_t *parent, struct conf_keepalive *k)
{
	config_setting_t *g, *s;

	if (conf_group(c, parent, "keepalive", conf_keepalive_keys, &g) == -1)
		return -1;
	if (g == NULL)
		return 0;
	k->enabled = 1;
	if ((s = config_setting_get_member(g, "idle")) != NULL &&
	    conf_seconds(c, s, CONF_KEEPALIVE_S_MAX, &k->idle_s) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "interval")) != NULL &&
	    conf_seconds(c, s, CONF_KEEPALIVE_S_MAX, &k->interval_s) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "count")) != NULL &&
	    conf_int(c, s, 1, CONF_KEEPALIVE_COUNT_MAX, &k->count) == -1)
		return -1;
	return 0;
}

/* Online CPUs, within 1..CONF_WORKERS_MAX. */
static unsigned
conf_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (n > CONF_WORKERS_MAX)
		n = CONF_WORKERS_MAX;
	return (unsigned)n;
}

static int
conf_workers(struct conf_ctx *c, config_setting_t *root, struct conf *conf)
{
	config_setting_t *s;
	long long v;

	s = config_setting_get_member(root, "workers");
	if (s != NULL && conf_is_int(s)) {
		v = config_setting_get_int64(s);
		if (v < 1 || v > CONF_WORKERS_MAX)
			return conf_fail(
			    c, s, NULL, "must be \"auto\" or between 1 and %d", CONF_WORKERS_MAX);
		conf->workers = (unsigned)v;
		conf->workers_auto = 0;
		return 0;
	}
	if (s != NULL && (config_setting_type(s) != CONFIG_TYPE_STRING ||
	                     strcmp(config_setting_get_string(s), "auto") != 0))
		return conf_fail(c, s, NULL, "must be \"auto\" or an integer between 1 and %d",
		    CONF_WORKERS_MAX);
	/* One worker per core: more would only add context switches. */
	conf->workers = conf_cpus();
	conf->workers_auto = 1;
	return 0;
}

/* accept_workers: "auto" (the online CPUs) or 1..CONF_WORKERS_MAX. */
static int
conf_accept_workers(struct conf_ctx *c, config_setting_t *root, struct conf *conf)
{
	config_setting_t *s = config_setting_get_member(root, "accept_workers");
	long long v;

	conf->accept_workers = conf_cpus();
	if (s == NULL)
		return 0;
	if (conf_is_int(s)) {
		v = config_setting_get_int64(s);
		if (v < 1 || v > CONF_WORKERS_MAX)
			return conf_fail(
			    c, s, NULL, "must be \"auto\" or between 1 and %d", CONF_WORKERS_MAX);
		conf->accept_workers = (unsigned)v;
		return 0;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING ||
	    strcmp(config_setting_get_string(s), "auto") != 0)
		return conf_fail(c, s, NULL, "must be \"auto\" or an integer between 1 and %d",
		    CONF_WORKERS_MAX);
	return 0;
}

/* log.format and log.syslog_socket: how the connection log writes its
 * lines. The format is compiled here, once, so that -t and a reload refuse
 * an unknown field and workers never parse it. */
static int
conf_log_connlog(struct conf_ctx *c, config_setting_t *g, struct conf *conf)
{
	config_setting_t *s;
	const char *text;
	char why[256];

	if ((s = config_setting_get_member(g, "syslog_socket")) != NULL) {
		if (conf_abs_path(c, s, &conf->log_syslog_socket) == -1)
			return -1;
		if (strlen(conf->log_syslog_socket) >= CONF_UNIX_PATH_MAX)
			return conf_fail(c, s, NULL, "longer than %d characters",
			    CONF_UNIX_PATH_MAX - 1);
	}
	if ((s = config_setting_get_member(g, "format")) != NULL) {
		if (conf_string(c, s, &text) == -1)
			return -1;
		why[0] = '\0';
		if ((conf->log_format = logfmt_compile(text, why, sizeof(why))) == NULL)
			return errno == ENOMEM ? conf_nomem(c) : conf_fail(c, s, NULL, "%s", why);
	}
	return 0;
}

static int
conf_log(struct conf_ctx *c, config_setting_t *root, struct conf *conf)
{
	config_setting_t *g, *s;
	int v;

	conf->log_target = LOG_TARGET_SYSLOG;
	conf->log_facility = LOG_DAEMON;
	conf->log_level = LOG_LEVEL_INFO;
	if (conf_strdup(c, CONF_DEFAULT_SYSLOG_SOCKET, &conf->log_syslog_socket) == -1)
		return -1;
	if (conf_group(c, root, "log", conf_log_keys, &g) == -1)
		return -1;
	if (g == NULL)
		return 0;
	if (conf_log_connlog(c, g, conf) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "target")) != NULL) {
		if (conf_choice(c, s, "target", conf_targets, &v) == -1)
			return -1;
		conf->log_target = (enum log_target)v;
	}
	if ((s = config_setting_get_member(g, "facility")) != NULL) {
		if (conf_choice(c, s, "facility", conf_facilities, &v) == -1)
			return -1;
		conf->log_facility = v;
	}
	if ((s = config_setting_get_member(g, "level")) != NULL) {
		if (conf_choice(c, s, "level", conf_levels, &v) == -1)
			return -1;
		conf->log_level = (enum log_level)v;
	}
	if ((s = config_setting_get_member(g, "connections")) != NULL &&
	    conf_bool(c, s, &conf->log_connections) == -1)
		return -1;
	s = config_setting_get_member(g, "file");
	/* A file with another target is still checked but not kept: switching
	 * target to stderr for a while should not require deleting it. */
	if (s != NULL && conf_abs_path(c, s, &conf->log_file) == -1)
		return -1;
	if (conf->log_target != LOG_TARGET_FILE) {
		free(conf->log_file);
		conf->log_file = NULL;
	} else if (conf->log_file == NULL) {
		return conf_fail(c, g, "file", "file is required when target is \"file\"");
	}
	return 0;
}

/* A size for messages: "64G", "512M", "4K" when exact, else bytes. */
static void
conf_size_text(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "GMK";
	uint64_t mult = (uint64_t)1 << 30;

	for (int i = 0; i < 3; i++, mult >>= 10)
		if (v >= mult && v % mult == 0) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(v / mult), units[i]);
			return;
		}
	snprintf(buf, len, "%llu bytes", (unsigned long long)v);
}

/* The bulk buffers' share of max_memory (conf.h): a quarter, in whole
 * chunks, when that is CONF_BULK_MIN_CHUNKS chunks or more and the small
 * buffers' pool still takes the rest; else none. max_memory itself was
 * checked against the small pool's bounds, which the rest (>= 3/4 of it,
 * and at least 16 x 64K) stays within. */
static void
conf_bulk_share(struct conf *conf)
{
	size_t chunk = conf->bulk_buffer_size * CONF_BULK_PER_CHUNK;
	size_t share, small_chunk = conf->buffer_size * CONF_BUFFERS_PER_CHUNK;

	conf->bulk_memory = 0;
	if (conf->bulk_buffer_size == 0)
		return;
	share = conf->max_memory / 4 / chunk * chunk;
	if (share / chunk < CONF_BULK_MIN_CHUNKS ||
	    share < pool_min_bytes(conf->bulk_buffer_size, chunk) ||
	    share > pool_max_bytes(conf->bulk_buffer_size, chunk) ||
	    conf->max_memory - share < pool_min_bytes(conf->buffer_size, small_chunk))
		return;
	conf->bulk_memory = share;
}

static int
conf_pool(struct conf_ctx *c, config_setting_t *root, struct conf *conf)
{
	config_setting_t *g, *s;
	uint64_t v, min;
	size_t chunk;
	char most[32];

	conf->buffer_size = 4096;
	conf->max_memory = (size_t)256 * 1024 * 1024;
	conf->bulk_buffer_size = 32 * 1024;
	conf->splice = 1;
	if (conf_group(c, root, "pool", conf_pool_keys, &g) == -1)
		return -1;
	if (g == NULL) {
		conf_bulk_share(conf);
		return 0;
	}
	if ((s = config_setting_get_member(g, "splice")) != NULL && conf_bool(c, s, &conf->splice) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "batch_writes")) != NULL &&
	    conf_bool(c, s, &conf->batch_writes) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "buffer_size")) != NULL) {
		if (conf_size(c, s, &v) == -1)
			return -1;
		if (v < CONF_BUFFER_MIN || v > CONF_BUFFER_MAX)
			return conf_fail(c, s, NULL, "must be between %d and %d bytes",
			    CONF_BUFFER_MIN, CONF_BUFFER_MAX);
		conf->buffer_size = (size_t)v;
	}
	if ((s = config_setting_get_member(g, "bulk_buffer_size")) != NULL) {
		if (conf_size(c, s, &v) == -1)
			return -1;
		if (v != 0 && (v <= conf->buffer_size || v > CONF_BUFFER_MAX))
			return conf_fail(c, s, NULL, "must be 0 (none) or above buffer_size (%zu) "
			    "and at most %d bytes", conf->buffer_size, CONF_BUFFER_MAX);
		conf->bulk_buffer_size = (size_t)v;
	} else if (conf->bulk_buffer_size <= conf->buffer_size)
		conf->bulk_buffer_size = 0; /* the default is no bigger than buffer_size */
	min = (uint64_t)conf->buffer_size * CONF_MEMORY_BUFFERS;
	s = config_setting_get_member(g, "max_memory");
	if (s != NULL) {
		if (conf_size(c, s, &v) == -1)
			return -1;
		if (v > SIZE_MAX)
			return conf_fail(c, s, NULL, "is too large for this machine");
		conf->max_memory = (size_t)v;
	}
	if (conf->max_memory < min)
		return conf_fail(c, s != NULL ? s : g, s != NULL ? NULL : "max_memory",
		    "must be at least %d * buffer_size (%llu bytes)", CONF_MEMORY_BUFFERS,
		    (unsigned long long)min);
	/* What a worker's pool_create would refuse, refused here: -t and a
	 * reload must not accept a budget no worker can set up. */
	chunk = conf->buffer_size * CONF_BUFFERS_PER_CHUNK;
	if (conf->max_memory < pool_min_bytes(conf->buffer_size, chunk) ||
	    conf->max_memory > pool_max_bytes(conf->buffer_size, chunk)) {
		conf_size_text(pool_max_bytes(conf->buffer_size, chunk), most, sizeof(most));
		return conf_fail(c, s != NULL ? s : g, s != NULL ? NULL : "max_memory",
		    "must be at most %s with buffer_size %zu (a worker's buffer pool holds "
		    "%u chunks of %d buffers at most)",
		    most, conf->buffer_size, POOL_MAX_CHUNKS, CONF_BUFFERS_PER_CHUNK);
	}
	conf_bulk_share(conf);
	return 0;
}

static int
conf_limits(struct conf_ctx *c, config_setting_t *root, struct conf *conf)
{
	config_setting_t *g, *s;

	conf->max_connections = 10000;
	if (conf_group(c, root, "limits", conf_limits_keys, &g) == -1)
		return -1;
	if (g != NULL && (s = config_setting_get_member(g, "max_connections")) != NULL &&
	    conf_int(c, s, 1, CONF_MAX_CONNECTIONS, &conf->max_connections) == -1)
		return -1;
	if (g != NULL && (s = config_setting_get_member(g, "max_connections_per_worker")) != NULL &&
	    conf_int(c, s, 0, CONF_MAX_CONNECTIONS, &conf->max_connections_per_worker) == -1)
		return -1;
	/* Slots of the shared per-source table (common/srclimit.h), 0: from
	 * max_connections. Read at start only. */
	if (g != NULL && (s = config_setting_get_member(g, "source_table")) != NULL)
		return conf_int(c, s, 0, 1 << 24, &conf->source_table);
	return 0;
}

/* client_fin, server_fin, max_lifetime and its jitter: all off unless set. */
static int
conf_timeouts_more(struct conf_ctx *c, config_setting_t *g, struct conf *conf)
{
	config_setting_t *s, *j;

	if ((s = config_setting_get_member(g, "client_fin")) != NULL &&
	    conf_timeout(c, s, &conf->client_fin_timeout_ms) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "server_fin")) != NULL &&
	    conf_timeout(c, s, &conf->server_fin_timeout_ms) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "max_lifetime")) != NULL &&
	    conf_timeout(c, s, &conf->max_lifetime_ms) == -1)
		return -1;
	if ((j = config_setting_get_member(g, "max_lifetime_jitter")) == NULL)
		return 0;
	if (s == NULL)
		return conf_fail(c, j, NULL, "applies only with max_lifetime");
	if (conf_timeout(c, j, &conf->max_lifetime_jitter_ms) == -1)
		return -1;
	/* Deadlines are kept in unsigned milliseconds: 49 days at most. */
	if ((uint64_t)conf->max_lifetime_ms + conf->max_lifetime_jitter_ms > CONF_DURATION_MAX_MS)
		return conf_fail(c, j, NULL, "max_lifetime plus its jitter exceeds 49 days");
	return 0;
}

static int
conf_timeouts(struct conf_ctx *c, config_setting_t *root, struct conf *conf)
{
	config_setting_t *g, *s;

	conf->connect_timeout_ms = 5 * 1000;
	conf->idle_timeout_ms = 10 * 60 * 1000;
	conf->drain_timeout_ms = 30 * 1000;
	conf->proxy_header_timeout_ms = 5 * 1000;
	conf->preread_timeout_ms = 5 * 1000;
	if (conf_group(c, root, "timeouts", conf_timeouts_keys, &g) == -1)
		return -1;
	if (g == NULL)
		return 0;
	if ((s = config_setting_get_member(g, "connect")) != NULL &&
	    conf_timeout(c, s, &conf->connect_timeout_ms) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "idle")) != NULL &&
	    conf_timeout(c, s, &conf->idle_timeout_ms) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "drain")) != NULL &&
	    conf_timeout(c, s, &conf->drain_timeout_ms) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "proxy_header")) != NULL &&
	    conf_timeout(c, s, &conf->proxy_header_timeout_ms) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "preread")) != NULL &&
	    conf_timeout(c, s, &conf->preread_timeout_ms) == -1)
		return -1;
	return conf_timeouts_more(c, g, conf);
}

/* user, group and chroot: who the workers run as and where. Names are looked
 * up now so that -t and a reload catch a typo; the master decides whether it
 * can switch (it must run as root). Needs conf_log done: a worker inside a
 * chroot could not reopen a log file named outside it. */
static int
conf_user(struct conf_ctx *c, config_setting_t *root, struct conf *conf)
{
	config_setting_t *s;
	const struct passwd *pw = NULL;
	const struct group *gr = NULL;
	const char *text;

	/* conf_peek: names kept, not looked up (NSS may mean LDAP). */
	if ((s = config_setting_get_member(root, "user")) != NULL) {
		if (conf_string(c, s, &text) == -1)
			return -1;
		if (!c->peek && (*text == '\0' || (pw = getpwnam(text)) == NULL))
			return conf_fail(c, s, NULL, "unknown user \"%s\"", text);
		if (!c->peek) {
			conf->uid = pw->pw_uid;
			conf->gid = pw->pw_gid;
		}
		if (conf_strdup(c, text, &conf->user) == -1)
			return -1;
	}
	if ((s = config_setting_get_member(root, "group")) != NULL) {
		if (conf_string(c, s, &text) == -1)
			return -1;
		if (!c->peek && (*text == '\0' || (gr = getgrnam(text)) == NULL))
			return conf_fail(c, s, NULL, "unknown group \"%s\"", text);
		if (!c->peek)
			conf->gid = gr->gr_gid;
		if (conf_strdup(c, text, &conf->group) == -1)
			return -1;
	}
	if ((s = config_setting_get_member(root, "chroot")) != NULL) {
		if (conf_abs_path(c, s, &conf->chroot) == -1)
			return -1;
		if (conf->log_target == LOG_TARGET_FILE)
			return conf_fail(c, s, NULL,
			    "workers inside a chroot cannot reopen log.file; log to "
			    "\"syslog\" or \"stderr\" instead");
	}
	return 0;
}

/* Permission bits, written as an octal string ("0660"): the only form,
 * since libconfig reads an integer 0660 as decimal 660. */
static int
conf_mode(struct conf_ctx *c, config_setting_t *s, unsigned long *out)
{
	const char *text;
	char *end;

	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		text = config_setting_get_string(s);
		errno = 0;
		*out = strtoul(text, &end, 8);
		if (*text >= '0' && *text <= '7' && *end == '\0' && errno == 0 && *out <= 0777)
			return 0;
	}
	return conf_fail(c, s, NULL, "must be octal permission bits as a string, such as \"0660\"");
}

/* A group name in *text, looked up now so that -t catches a typo: *gid is
 * set unless the config is only peeked at. */
static int
conf_gid(struct conf_ctx *c, config_setting_t *s, const char **text, gid_t *gid)
{
	const struct group *gr;

	if (conf_string(c, s, text) == -1)
		return -1;
	if (c->peek)
		return 0;
	if (**text == '\0' || (gr = getgrnam(*text)) == NULL)
		return conf_fail(c, s, NULL, "unknown group \"%s\"", *text);
	*gid = gr->gr_gid;
	return 0;
}

/* control = { socket; mode; group; state_file; }: the master's control
 * socket. The group is looked up now, like user and group, so that -t
 * catches a typo. */
static int
conf_control(struct conf_ctx *c, config_setting_t *root, struct conf *conf)
{
	config_setting_t *g, *s;
	const char *text;
	unsigned long mode;
	size_t n;

	if (conf_group(c, root, "control", conf_control_keys, &g) == -1)
		return -1;
	if (g == NULL)
		return 0;
	if ((s = config_setting_get_member(g, "socket")) == NULL)
		return conf_fail(c, g, "socket", "socket is required in control");
	if (conf_abs_path(c, s, &conf->control_socket) == -1)
		return -1;
	/* sockaddr_un's path, NUL included, is 108 bytes. */
	if (strlen(conf->control_socket) > 107)
		return conf_fail(c, s, NULL, "a UNIX socket path has at most 107 bytes");
	conf->control_mode = 0660;
	if ((s = config_setting_get_member(g, "mode")) != NULL) {
		if (conf_mode(c, s, &mode) == -1)
			return -1;
		if ((mode & 0600) != 0600)
			return conf_fail(c, s, NULL,
			    "must let the owner read and write (0600 at least): the master "
			    "and root use it");
		conf->control_mode = (unsigned)mode;
	}
	if ((s = config_setting_get_member(g, "group")) != NULL) {
		if (conf_gid(c, s, &text, &conf->control_gid) == -1 ||
		    conf_strdup(c, text, &conf->control_group) == -1)
			return -1;
	}
	if ((s = config_setting_get_member(g, "state_file")) != NULL)
		return conf_abs_path(c, s, &conf->state_file);
	/* Beside the socket: a directory the master can already write. */
	n = strrchr(conf->control_socket, '/') - conf->control_socket;
	if ((conf->state_file = malloc(n + sizeof("/server-state"))) == NULL)
		return conf_nomem(c);
	memcpy(conf->state_file, conf->control_socket, n);
	strcpy(conf->state_file + n, "/server-state");
	return 0;
}

static int
conf_valid_name(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n >= CONF_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		        (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
			return 0;
	}
	return 1;
}

/* A source address: numeric IPv4 or IPv6 (brackets allowed), no port. */
static int
conf_source_addr(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(text);

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return 0;
	}
	if (n >= 2 && n < sizeof(buf) + 2 && text[0] == '[' && text[n - 1] == ']') {
		memcpy(buf, text + 1, n - 2);
		buf[n - 2] = '\0';
		text = buf;
	}
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

/* source (an address or a list of them) and transparent of an upstream or
 * a server group g. */
static int
conf_source(struct conf_ctx *c, config_setting_t *g, struct conf_source *src)
{
	config_setting_t *s, *t, *e;
	const char *text;
	unsigned n;

	if ((t = config_setting_get_member(g, "transparent")) != NULL &&
	    conf_bool(c, t, &src->transparent) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "source")) == NULL)
		return 0;
	if (src->transparent)
		return conf_fail(c, s, NULL,
		    "cannot go with transparent (which connects from the client's address)");
	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		n = 1;
	else if (config_setting_is_list(s) || config_setting_is_array(s))
		n = (unsigned)config_setting_length(s);
	else
		return conf_fail(c, s, NULL, "expected an address or a list ( \"10.0.0.5\", ... )");
	if (n == 0)
		return conf_fail(c, s, NULL, "at least one address is required");
	if ((src->addr = calloc(n, sizeof(*src->addr))) == NULL)
		return conf_nomem(c);
	src->n = n;
	for (unsigned i = 0; i < n; i++) {
		e = config_setting_type(s) == CONFIG_TYPE_STRING ? s : config_setting_get_elem(s, i);
		if (conf_string(c, e, &text) == -1)
			return -1;
		if (conf_source_addr(text, &src->addr[i]) == -1)
			return conf_fail(c, e, NULL,
			    "invalid source address \"%s\" (a numeric IPv4 or IPv6 address, "
			    "without a port)",
			    text);
	}
	return 0;
}

/* Every source address of src must be of the server's family: a socket
 * cannot bind one family and connect to another. */
static int
conf_source_family(struct conf_ctx *c, config_setting_t *g, const struct conf_source *src,
    const struct conf_server *srv)
{
	for (unsigned i = 0; i < src->n; i++)
		if (srv->addrlen > 0 && src->addr[i].ss_family != srv->addr.ss_family)
			return conf_fail(c, config_setting_get_member(g, "source"), NULL,
			    "source address %u is %s but server %s is %s", i + 1,
			    src->addr[i].ss_family == AF_INET ? "IPv4" : "IPv6", srv->address,
			    srv->addr.ss_family == AF_INET ? "IPv4" : "IPv6");
	return 0;
}

static void
conf_server_free(struct conf_server *srv)
{
	free(srv->address);
	free(srv->host);
	free(srv->source.addr);
}

/* resolve and max_addresses of server group e: host_slots is the number of
 * slots (0: a fixed address). */
static int
conf_server_resolve(struct conf_ctx *c, config_setting_t *e, struct conf_server *srv)
{
	config_setting_t *r = config_setting_get_member(e, "resolve"), *m;
	int on = 0;

	m = config_setting_get_member(e, "max_addresses");
	if (r != NULL && conf_bool(c, r, &on) == -1)
		return -1;
	if (!on) {
		if (m != NULL)
			return conf_fail(c, m, NULL, "goes only with resolve = true");
		return 0;
	}
	if (c->dns == NULL || !c->dns->enabled)
		return conf_fail(c, r, NULL,
		    "needs a dns group (dns = { nameservers = ( \"ADDR\" ); };)");
	srv->host_slots = 4;
	if (m != NULL && conf_int(c, m, 1, CONF_DNS_ADDRESSES_MAX, &srv->host_slots) == -1)
		return -1;
	return 0;
}

/* A host name as DNS asks it: labels of 1 to 63 of A-Z a-z 0-9 - _,
 * 253 characters at most, not all digits and dots (that is an address). */
static int
conf_host_valid(const char *h, size_t len)
{
	size_t label = 0;
	int alpha = 0;

	if (len > 0 && h[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)h[i];

		if (ch == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum(ch) && ch != '-' && ch != '_')
			return 0;
		if (!isdigit(ch))
			alpha = 1;
		if (++label > 63)
			return 0;
	}
	return label > 0 && alpha;
}

/* The first addresses of a resolved name, from libc (dns.init_addr
 * "libc"): up to slots distinct ones into srv[0..slots), each with port.
 * A name libc cannot resolve leaves them all empty: the checker's first
 * answer fills them. */
static void
conf_host_libc(const struct conf_dns *dns, const char *host, uint16_t port,
    struct conf_server *srv, unsigned slots)
{
	struct addrinfo hints, *res, *ai;
	unsigned k = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = dns->family;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return;
	for (ai = res; ai != NULL && k < slots; ai = ai->ai_next) {
		unsigned j;

		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(srv[k].addr))
			continue;
		for (j = 0; j < k; j++)
			if (addr_equal((const struct sockaddr *)&srv[j].addr, ai->ai_addr))
				break;
		if (j < k)
			continue;
		memcpy(&srv[k].addr, ai->ai_addr, ai->ai_addrlen);
		srv[k].addrlen = ai->ai_addrlen;
		if (ai->ai_family == AF_INET)
			((struct sockaddr_in *)&srv[k].addr)->sin_port = htons(port);
		else
			((struct sockaddr_in6 *)&srv[k].addr)->sin6_port = htons(port);
		/* Compared with the port in: a second address differs. */
		for (j = 0; j < k; j++)
			if (addr_equal((const struct sockaddr *)&srv[j].addr,
			        (const struct sockaddr *)&srv[k].addr))
				break;
		if (j == k)
			k++;
		else
			srv[k].addrlen = 0;
	}
	freeaddrinfo(res);
}

/* The address of a server with resolve = true: "name:port", kept as text;
 * its slots are made by conf_server_slots. */
static int
conf_server_host(struct conf_ctx *c, config_setting_t *a, const char *text,
    struct conf_server *srv)
{
	const char *colon = strrchr(text, ':');
	unsigned long port;
	char *end;

	if (colon == NULL || colon[1] == '\0')
		return conf_fail(c, a, NULL, "invalid address \"%s\": missing port", text);
	if (!conf_host_valid(text, (size_t)(colon - text)))
		return conf_fail(c, a, NULL,
		    "invalid address \"%s\": resolve = true needs a host name (labels of "
		    "A-Z a-z 0-9 - _) and a port, such as \"app.example:8080\"", text);
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || errno != 0 || port == 0 || port > 65535 || colon[1] == '-' ||
	    colon[1] == '+')
		return conf_fail(c, a, NULL,
		    "invalid address \"%s\": port is out of range 1..65535", text);
	if (strlen(text) > CONF_DNS_ADDRESS_MAX)
		return conf_fail(c, a, NULL, "invalid address \"%s\": longer than %d bytes", text,
		    CONF_DNS_ADDRESS_MAX);
	srv->port = (uint16_t)port;
	if (conf_strdup(c, text, &srv->address) == -1)
		return -1;
	srv->host = strndup(text, (size_t)(colon - text));
	if (srv->host == NULL)
		return conf_nomem(c);
	return 0;
}

/* Server *tmp of a resolved name becomes its host_slots entries at
 * servers[at..): the same settings, each its own copy, named
 * "name:port#k" (k from 1), with libc's first addresses when asked for. */
static int
conf_server_slots(struct conf_ctx *c, struct conf_server *tmp, struct conf_server *servers,
    unsigned at)
{
	char name[CONF_DNS_ADDRESS_MAX + 8];

	for (unsigned k = 0; k < tmp->host_slots; k++) {
		struct conf_server *s = &servers[at + k];

		*s = *tmp;
		s->host_slot = k;
		s->address = s->host = NULL;
		s->source.addr = NULL;
		snprintf(name, sizeof(name), "%s#%u", tmp->address, k + 1);
		if ((s->address = strdup(name)) == NULL || (s->host = strdup(tmp->host)) == NULL)
			return conf_nomem(c);
		if (tmp->source.n > 0) {
			s->source.addr = calloc(tmp->source.n, sizeof(*s->source.addr));
			if (s->source.addr == NULL)
				return conf_nomem(c);
			memcpy(s->source.addr, tmp->source.addr,
			    tmp->source.n * sizeof(*s->source.addr));
		}
	}
	if (!c->peek && c->dns->init_libc)
		conf_host_libc(c->dns, tmp->host, tmp->port, servers + at, tmp->host_slots);
	return 0;
}

/* A UNIX server (e its setting) takes none of the group's TCP options:
 * its socket has no source address and no TCP keepalive to set. */
static int
conf_server_unix(struct conf_ctx *c, config_setting_t *g, config_setting_t *e,
    const struct conf_upstream *up, const struct conf_server *srv)
{
	const char *opt = NULL;
	config_setting_t *s = e;

	if (srv->addr.ss_family != AF_UNIX)
		return 0;
	if (config_setting_is_group(e) && (srv->source.n > 0 || srv->source.transparent)) {
		opt = srv->source.n > 0 ? "source" : "transparent";
		s = config_setting_get_member(e, opt);
	} else if (up->source.n > 0 || up->source.transparent) {
		opt = up->source.n > 0 ? "source" : "transparent";
		s = config_setting_get_member(g, opt);
	} else if (up->keepalive.enabled) {
		opt = "keepalive";
		s = config_setting_get_member(g, opt);
	}
	if (opt == NULL)
		return 0;
	return conf_fail(c, s, NULL, "applies only to TCP servers, and server %s is a UNIX socket",
	    srv->address);
}

/* One element of servers: a bare "host:port" string or a group. */
static int
conf_server(struct conf_ctx *c, config_setting_t *e, struct conf_server *srv)
{
	config_setting_t *a = e, *w;
	const char *text;
	char why[1200];

	srv->weight = 1;
	if (config_setting_is_group(e)) {
		if (conf_check_keys(c, e, conf_server_keys) == -1)
			return -1;
		a = config_setting_get_member(e, "address");
		if (a == NULL)
			return conf_fail(c, e, "address", "a server needs an address");
		if ((w = config_setting_get_member(e, "weight")) != NULL &&
		    conf_int(c, w, 1, CONF_WEIGHT_MAX, &srv->weight) == -1)
			return -1;
		if ((w = config_setting_get_member(e, "max_connections")) != NULL &&
		    conf_int(c, w, 0, CONF_MAX_CONNECTIONS, &srv->max_connections) == -1)
			return -1;
		if ((w = config_setting_get_member(e, "backup")) != NULL &&
		    conf_bool(c, w, &srv->backup) == -1)
			return -1;
		if (conf_source(c, e, &srv->source) == -1)
			return -1;
		if (conf_server_resolve(c, e, srv) == -1)
			return -1;
	} else if (config_setting_type(e) != CONFIG_TYPE_STRING) {
		return conf_fail(
		    c, e, NULL, "expected \"host:port\" or a group { address = \"host:port\"; }");
	}
	if (conf_string(c, a, &text) == -1)
		return -1;
	if (srv->host_slots > 0)
		return conf_server_host(c, a, text, srv);
	/* Names are resolved once, here: a worker must never block on DNS.
	 * conf_peek's readers need no address, and must not wait for DNS. */
	if (c->peek)
		return conf_strdup(c, text, &srv->address);
	if (addr_parse(text, ADDR_UNIX, &srv->addr, &srv->addrlen, why, sizeof(why)) == -1)
		return conf_fail(c, a, NULL, "invalid address \"%s\": %s", text, why);
	if (conf_strdup(c, text, &srv->address) == -1)
		return -1;
	if (srv->addr.ss_family == AF_UNIX)
		return 0; /* conf_server_unix, once the group's options are known */
	return conf_source_family(c, e, &srv->source, srv);
}

/* A string of printable text (libconfig's escapes such as \r\n allowed),
 * for health.send and health.expect. */
static int
conf_check_text(struct conf_ctx *c, const config_setting_t *s, char **out)
{
	const char *text;

	if (conf_string(c, s, &text) == -1)
		return -1;
	if (*text == '\0')
		return conf_fail(c, s, NULL, "must not be empty");
	if (strlen(text) > CONF_CHECK_TEXT_MAX)
		return conf_fail(c, s, NULL, "is longer than %d bytes", CONF_CHECK_TEXT_MAX);
	return conf_strdup(c, text, out);
}

/* health.send_proxy before the listeners are read. */
#define CONF_HEALTH_PROXY_INHERIT 0x80

static const struct conf_name conf_health_proxy_names[] = {
    {"v1", PROXY_V1},
    {"v2", PROXY_V2},
    {"none", 0},
    {NULL, 0},
};

/* health = { interval; timeout; rise; fall; send_proxy; send; expect; }:
 * active checks. */
static int
conf_health(struct conf_ctx *c, config_setting_t *g, struct conf_upstream *up)
{
	struct conf_health *h = &up->health;
	config_setting_t *hg, *s, *t;

	h->interval_ms = 2000;
	h->timeout_ms = 1000;
	h->rise = 2;
	h->fall = 3;
	if (conf_group(c, g, "health", conf_health_keys, &hg) == -1)
		return -1;
	if (hg == NULL)
		return 0;
	h->enabled = 1;
	if ((s = config_setting_get_member(hg, "interval")) != NULL &&
	    conf_timeout(c, s, &h->interval_ms) == -1)
		return -1;
	if ((t = config_setting_get_member(hg, "timeout")) != NULL &&
	    conf_timeout(c, t, &h->timeout_ms) == -1)
		return -1;
	/* One check at a time per server: a check must end before the next. */
	if (h->timeout_ms > h->interval_ms)
		return conf_fail(c, t != NULL ? t : hg, t != NULL ? NULL : "timeout",
		    "must not be longer than health.interval (%u ms)", h->interval_ms);
	if ((s = config_setting_get_member(hg, "rise")) != NULL &&
	    conf_int(c, s, 1, CONF_FAILS_MAX, &h->rise) == -1)
		return -1;
	if ((s = config_setting_get_member(hg, "fall")) != NULL &&
	    conf_int(c, s, 1, CONF_FAILS_MAX, &h->fall) == -1)
		return -1;
	/* Unset: conf_health_proxy decides once the listeners are known. */
	h->send_proxy = CONF_HEALTH_PROXY_INHERIT;
	if ((s = config_setting_get_member(hg, "send_proxy")) != NULL) {
		int v;

		if (conf_choice(c, s, "send_proxy", conf_health_proxy_names, &v) == -1)
			return -1;
		h->send_proxy = (unsigned)v;
	}
	if ((s = config_setting_get_member(hg, "send")) != NULL &&
	    conf_check_text(c, s, &h->send) == -1)
		return -1;
	if ((s = config_setting_get_member(hg, "expect")) != NULL &&
	    conf_check_text(c, s, &h->expect) == -1)
		return -1;
	return 0;
}

static int
conf_upstream(struct conf_ctx *c, config_setting_t *g, struct conf *conf, unsigned idx)
{
	struct conf_upstream *up = &conf->upstreams[idx];
	config_setting_t *s, *list;
	const char *text;
	unsigned long long total = 0;
	unsigned i, n;

	if (!config_setting_is_group(g))
		return conf_fail(
		    c, g, NULL, "expected a group { name = \"...\"; servers = ( ... ); }");
	if (conf_check_keys(c, g, conf_upstream_keys) == -1)
		return -1;

	if ((s = config_setting_get_member(g, "name")) == NULL)
		return conf_fail(c, g, "name", "an upstream needs a name");
	if (conf_string(c, s, &text) == -1)
		return -1;
	if (!conf_valid_name(text))
		return conf_fail(c, s, NULL,
		    "invalid name \"%s\" (use 1 to %d characters from A-Z a-z 0-9 _ . -)", text,
		    CONF_NAME_MAX - 1);
	for (i = 0; i < idx; i++)
		if (strcmp(conf->upstreams[i].name, text) == 0)
			return conf_fail(c, s, NULL,
			    "duplicate upstream name \"%s\" (also upstreams[%u])", text, i);
	snprintf(up->name, sizeof(up->name), "%s", text);

	up->balance = CONF_BALANCE_ROUNDROBIN;
	if ((s = config_setting_get_member(g, "balance")) != NULL) {
		int v;

		if (conf_choice(c, s, "balance", conf_balances, &v) == -1)
			return -1;
		up->balance = (enum conf_balance)v;
	}
	up->retries = 1;
	if ((s = config_setting_get_member(g, "retries")) != NULL &&
	    conf_int(c, s, 0, CONF_RETRIES_MAX, &up->retries) == -1)
		return -1;
	up->max_fails = 3;
	if ((s = config_setting_get_member(g, "max_fails")) != NULL &&
	    conf_int(c, s, 0, CONF_FAILS_MAX, &up->max_fails) == -1)
		return -1;
	up->fail_timeout_ms = 10 * 1000;
	if ((s = config_setting_get_member(g, "fail_timeout")) != NULL &&
	    conf_timeout(c, s, &up->fail_timeout_ms) == -1)
		return -1;
	if (conf_health(c, g, up) == -1 || conf_keepalive(c, g, &up->keepalive) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "mark")) != NULL &&
	    conf_int(c, s, 1, UINT32_MAX, &up->mark) == -1)
		return -1;
	if (conf_source(c, g, &up->source) == -1)
		return -1;

	if (conf_list(c, g, "servers", "server", &list) == -1)
		return -1;
	n = (unsigned)config_setting_length(list);
	up->servers = calloc(n, sizeof(*up->servers));
	if (up->servers == NULL)
		return conf_nomem(c);
	for (i = 0; i < n; i++) {
		struct conf_server tmp = { 0 };
		unsigned at = up->nservers;
		int rc = conf_server(c, config_setting_get_elem(list, i), &tmp);

		if (tmp.host_slots > 1) {
			/* A resolved name takes max_addresses entries. */
			struct conf_server *more = realloc(up->servers,
			    (at + tmp.host_slots + (n - i - 1)) * sizeof(*more));

			if (more == NULL) {
				conf_server_free(&tmp);
				return conf_nomem(c);
			}
			up->servers = more;
			memset(more + at, 0, (tmp.host_slots + (n - i - 1)) * sizeof(*more));
		}
		if (rc == 0 && tmp.host_slots > 0) {
			rc = conf_server_slots(c, &tmp, up->servers, at);
			/* Even on failure every slot's copies are owned by the list. */
			up->nservers += tmp.host_slots;
			conf_server_free(&tmp);
			if (rc == -1)
				return -1;
		} else {
			up->servers[at] = tmp;
			up->nservers++;
			if (rc == -1 || conf_server_unix(c, g, config_setting_get_elem(list, i), up,
			                    &up->servers[at]) == -1)
				return -1;
		}
		for (unsigned k = at; k < up->nservers; k++) {
			if (up->servers[k].source.n == 0 && !up->servers[k].source.transparent &&
			    conf_source_family(c, g, &up->source, &up->servers[k]) == -1)
				return -1;
			total += up->servers[k].weight;
		}
	}
	if (total > CONF_UPSTREAM_WEIGHT_MAX)
		return conf_fail(c, list, NULL,
		    "the servers' weights add up to %llu, more than %d (fewer servers or "
		    "smaller weights)", total, CONF_UPSTREAM_WEIGHT_MAX);
	return 0;
}

/* Two listeners that bind() would refuse side by side: the same address,
 * or a wildcard and a specific address of one family on one port. */
static int
conf_listeners_clash(const struct conf_listener *a, const struct conf_listener *b, int *same)
{
	const struct sockaddr_in *a4, *b4;
	const struct sockaddr_in6 *a6, *b6;

	*same = addr_equal((const struct sockaddr *)&a->addr, (const struct sockaddr *)&b->addr);
	if (*same)
		return 1;
	if (a->addr.ss_family == AF_UNIX || b->addr.ss_family == AF_UNIX)
		return 0;
	if (a->addr.ss_family != b->addr.ss_family) {
		/* IPv6 listeners are V6ONLY unless told otherwise. */
		const struct conf_listener *v6 = a->addr.ss_family == AF_INET6 ? a : b;
		const struct conf_listener *v4 = v6 == a ? b : a;

		a6 = (const struct sockaddr_in6 *)&v6->addr;
		b4 = (const struct sockaddr_in *)&v4->addr;
		if (v6->v6only || a6->sin6_port != b4->sin_port)
			return 0;
		/* A dual-stack "[::]:P" also holds IPv4's port P; one on
		 * "[::ffff:a.b.c.d]:P" holds a.b.c.d:P. */
		return IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr) ||
		       b4->sin_addr.s_addr == htonl(INADDR_ANY) ||
		       memcmp(&a6->sin6_addr.s6_addr[12], &b4->sin_addr, 4) == 0;
	}
	if (a->addr.ss_family == AF_INET) {
		a4 = (const struct sockaddr_in *)&a->addr;
		b4 = (const struct sockaddr_in *)&b->addr;
		return a4->sin_port == b4->sin_port &&
		       (a4->sin_addr.s_addr == htonl(INADDR_ANY) ||
		           b4->sin_addr.s_addr == htonl(INADDR_ANY));
	}
	a6 = (const struct sockaddr_in6 *)&a->addr;
	b6 = (const struct sockaddr_in6 *)&b->addr;
	return a6->sin6_port == b6->sin6_port &&
	       (IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&b6->sin6_addr));
}

/* A list of networks ("10.0.0.0/8", "::1", ...) for allow, deny, trusted;
 * absent leaves *out NULL and *n 0, an empty list is an error. */
static int
conf_cidrs(struct conf_ctx *c, config_setting_t *g, const char *name, struct cidr **out,
    unsigned *n)
{
	config_setting_t *l, *e;
	const char *text;
	char why[256];
	unsigned i, len;

	if ((l = config_setting_get_member(g, name)) == NULL)
		return 0;
	if (!config_setting_is_list(l) && !config_setting_is_array(l))
		return conf_fail(c, l, NULL, "expected a list ( \"10.0.0.0/8\", \"::1\", ... )");
	len = (unsigned)config_setting_length(l);
	if (len == 0)
		return conf_fail(c, l, NULL, "at least one network is required");
	if ((*out = calloc(len, sizeof(**out))) == NULL)
		return conf_nomem(c);
	*n = len;
	for (i = 0; i < len; i++) {
		e = config_setting_get_elem(l, i);
		if (conf_string(c, e, &text) == -1)
			return -1;
		if (cidr_parse(text, &(*out)[i], why, sizeof(why)) == -1)
			return conf_fail(c, e, NULL, "invalid network \"%s\": %s", text, why);
	}
	return 0;
}

static const struct conf_name conf_proxy_send[] = {
    {"v1", PROXY_V1},
    {"v2", PROXY_V2},
    {NULL, 0},
};

static const struct conf_name conf_proxy_accept[] = {
    {"v1", PROXY_V1},
    {"v2", PROXY_V2},
    {"any", PROXY_ANY},
    {NULL, 0},
};

/* A TLV type: a number 1..255 or the spec's name of one. */
static int
conf_tlv_type(struct conf_ctx *c, const config_setting_t *s, unsigned *out)
{
	const char *text;
	int t;

	if (conf_is_int(s))
		return conf_int(c, s, 1, 255, out);
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return conf_fail(c, s, NULL, "expected a TLV type: a number 0x01..0xFF or a name");
	text = config_setting_get_string(s);
	if ((t = proxy_tlv_type(text)) == -1)
		return conf_fail(c, s, NULL,
		    "unknown TLV type \"%s\" (use alpn, authority, crc32c, noop, unique_id, ssl, "
		    "netns or a number 0x01..0xFF)", text);
	*out = (unsigned)t;
	return 0;
}

/* proxy_tlv_pass = true | false | ( types ): the TLVs of an accepted front
 * header passed on in ours. */
static int
conf_tlv_pass(struct conf_ctx *c, config_setting_t *s, struct conf_listener *l)
{
	unsigned n, t;

	if (config_setting_type(s) == CONFIG_TYPE_BOOL) {
		if (!config_setting_get_bool(s))
			return 0;
		if ((l->tlv_pass = malloc(PROXY_TLV_SET_BYTES)) == NULL)
			return conf_nomem(c);
		memset(l->tlv_pass, 0xFF, PROXY_TLV_SET_BYTES);
		return 0;
	}
	if (!config_setting_is_list(s) && !config_setting_is_array(s))
		return conf_fail(c, s, NULL,
		    "expected true, false or a list of TLV types ( \"alpn\", 0xE0, ... )");
	n = (unsigned)config_setting_length(s);
	if (n == 0)
		return conf_fail(c, s, NULL, "an empty list passes nothing: say false");
	if ((l->tlv_pass = calloc(1, PROXY_TLV_SET_BYTES)) == NULL)
		return conf_nomem(c);
	for (unsigned i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);

		if (conf_tlv_type(c, e, &t) == -1)
			return -1;
		if (PROXY_TLV_IN(l->tlv_pass, t))
			return conf_fail(c, e, NULL, "TLV type 0x%02X is listed twice", t);
		l->tlv_pass[t >> 3] |= (uint8_t)(1u << (t & 7));
	}
	return 0;
}

/* A hex string ("c0ffee", even length) into out; returns its byte count or
 * -1. */
static long
conf_hex(const char *text, uint8_t *out, size_t room)
{
	size_t n = strlen(text);

	if (n % 2 != 0 || n / 2 > room)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		char pair[3] = {text[i], text[i + 1], '\0'};

		if (!isxdigit((unsigned char)pair[0]) || !isxdigit((unsigned char)pair[1]))
			return -1;
		out[i / 2] = (uint8_t)strtoul(pair, NULL, 16);
	}
	return (long)(n / 2);
}

/* proxy_tlv = ( { type = 0xE0; value = "text"; }, { type = "unique_id";
 * hex = "0a0b"; }, { type = "crc32c"; } ): TLVs added to our header,
 * encoded once here. Each type at most once; each value judged by the
 * parser's own rules, so that nothing is sent that sluice would refuse. */
static int
conf_tlv_add(struct conf_ctx *c, config_setting_t *list, struct conf_listener *l)
{
	static uint8_t buf[PROXY_V2_LEN_MAX];
	uint8_t seen[PROXY_TLV_SET_BYTES] = {0};
	size_t len = 0, most = PROXY_V2_LEN_MAX - (PROXY_V2_OVERHEAD - PROXY_V2_FIXED);
	const char *why;
	unsigned n;

	if (!config_setting_is_list(list) || config_setting_length(list) == 0)
		return conf_fail(c, list, NULL,
		    "expected a list ( { type = 0xE0; value = \"...\"; }, ... ) of TLVs");
	n = (unsigned)config_setting_length(list);
	for (unsigned i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(list, i), *s, *v, *h;
		unsigned t;
		long vl = 0;

		if (!config_setting_is_group(e))
			return conf_fail(c, e, NULL,
			    "expected a group { type = 0xE0; value = \"...\"; } or { ...; hex = \"...\"; }");
		if (conf_check_keys(c, e, conf_tlv_keys) == -1)
			return -1;
		if ((s = config_setting_get_member(e, "type")) == NULL)
			return conf_fail(c, e, "type", "a TLV needs a type");
		if (conf_tlv_type(c, s, &t) == -1)
			return -1;
		if (t >= 0x21 && t <= 0x25)
			return conf_fail(c, s, NULL,
			    "0x%02X is an SSL sub-type, carried inside an ssl (0x20) TLV", t);
		if (PROXY_TLV_IN(seen, t))
			return conf_fail(c, s, NULL, "TLV type 0x%02X is set twice", t);
		seen[t >> 3] |= (uint8_t)(1u << (t & 7));
		v = config_setting_get_member(e, "value");
		h = config_setting_get_member(e, "hex");
		if (v != NULL && h != NULL)
			return conf_fail(c, h, NULL, "a TLV has a value or a hex value, not both");
		if (t == PROXY_TLV_CRC32C) {
			if (v != NULL || h != NULL)
				return conf_fail(c, v != NULL ? v : h, NULL,
				    "the crc32c TLV's value is computed over each header, not set");
			l->tlv_crc = 1;
			continue;
		}
		if (len + PROXY_TLV_HDR > most)
			return conf_fail(c, e, NULL,
			    "the TLVs add up to more than the %zu bytes a v2 header leaves them", most);
		if (v != NULL) {
			const char *text;

			if (conf_string(c, v, &text) == -1)
				return -1;
			vl = (long)strlen(text);
			if ((size_t)vl > most - len - PROXY_TLV_HDR)
				return conf_fail(c, v, NULL,
				    "the TLVs add up to more than the %zu bytes a v2 header leaves them",
				    most);
			memcpy(buf + len + PROXY_TLV_HDR, text, (size_t)vl);
		} else if (h != NULL) {
			const char *text;

			if (conf_string(c, h, &text) == -1)
				return -1;
			if (strlen(text) / 2 > most - len - PROXY_TLV_HDR)
				return conf_fail(c, h, NULL,
				    "the TLVs add up to more than the %zu bytes a v2 header leaves them",
				    most);
			vl = conf_hex(text, buf + len + PROXY_TLV_HDR, most - len - PROXY_TLV_HDR);
			if (vl == -1)
				return conf_fail(c, h, NULL,
				    "expected pairs of hex digits (\"c0ffee\")");
		}
		buf[len] = (uint8_t)t;
		buf[len + 1] = (uint8_t)(vl >> 8);
		buf[len + 2] = (uint8_t)vl;
		if (proxy_tlv_check(buf + len, PROXY_TLV_HDR + (size_t)vl, &why) == -1)
			return conf_fail(c, v != NULL ? v : h != NULL ? h : e, NULL,
			    "TLV type 0x%02X refused: %s", t, why);
		len += PROXY_TLV_HDR + (size_t)vl;
	}
	if (len > 0) {
		if ((l->tlv_add = malloc(len)) == NULL)
			return conf_nomem(c);
		memcpy(l->tlv_add, buf, len);
		l->tlv_add_len = (unsigned)len;
	}
	/* A configured TLV replaces the front's of its type. */
	if (l->tlv_pass != NULL)
		for (unsigned b = 0; b < PROXY_TLV_SET_BYTES; b++)
			l->tlv_pass[b] &= (uint8_t)~seen[b];
	return 0;
}

/* The v2 TLV settings of one listener, after proxy_protocol and
 * accept_proxy: TLVs exist only in v2, and only a front's header has TLVs
 * to pass on. */
static int
conf_listener_tlv(struct conf_ctx *c, config_setting_t *g, const struct conf *conf,
    struct conf_listener *l)
{
	config_setting_t *pass = config_setting_get_member(g, "proxy_tlv_pass");
	config_setting_t *add = config_setting_get_member(g, "proxy_tlv");
	config_setting_t *s = pass != NULL ? pass : add;

	if (s == NULL)
		return 0;
	if (l->proxy_send != PROXY_V2)
		return conf_fail(c, s, NULL,
		    "applies only with proxy_protocol = \"v2\" (%s)",
		    l->proxy_send == PROXY_V1 ? "a v1 header carries no TLVs"
		                              : "no header is sent");
	if (pass != NULL) {
		if (!(l->proxy_accept & PROXY_V2))
			return conf_fail(c, pass, NULL,
			    "applies only with accept_proxy = \"v2\" or \"any\" (%s)",
			    l->proxy_accept ? "a v1 header carries no TLVs"
			                    : "there is no front header to pass TLVs from");
		if (conf_tlv_pass(c, pass, l) == -1)
			return -1;
	}
	if (add != NULL && conf_tlv_add(c, add, l) == -1)
		return -1;
	/* The worker reads a front's header after the outgoing header's room
	 * and needs a useful read beyond it. */
	if (l->tlv_add_len > 0 &&
	    conf->buffer_size < PROXY_V2_OVERHEAD + l->tlv_add_len + CONF_TLV_READ_MIN)
		return conf_fail(c, add, NULL,
		    "%u bytes of TLVs need pool.buffer_size of at least %u (it is %zu)",
		    l->tlv_add_len, PROXY_V2_OVERHEAD + l->tlv_add_len + CONF_TLV_READ_MIN,
		    conf->buffer_size);
	return 0;
}

/* The edge of a UNIX listener. Its peers have no IP address: the socket
 * file's mode and owner say who may connect, so accept_proxy needs no
 * trusted list (and takes none), and allow, deny and per-source limits
 * judge the address a PROXY header names, so they need accept_proxy. */
static int
conf_listener_unix_edge(struct conf_ctx *c, config_setting_t *g, const struct conf_listener *l)
{
	static const char *const need_proxy[] = {"allow", "deny", "max_connections_per_source"};

	if (l->ntrusted > 0)
		return conf_fail(c, config_setting_get_member(g, "trusted"), NULL,
		    "does not apply to a UNIX listener (the socket's mode and owner say who may "
		    "connect, and send a PROXY header)");
	for (unsigned i = 0; i < 3 && !l->proxy_accept; i++)
		if (config_setting_get_member(g, need_proxy[i]) != NULL)
			return conf_fail(c, config_setting_get_member(g, need_proxy[i]), NULL,
			    "on a UNIX listener applies only with accept_proxy (a UNIX client "
			    "has no IP address; the PROXY header names one)");
	return 0;
}

/* mode, owner and group of a UNIX listener's socket file, and the TCP
 * options it cannot take. Names are looked up now, like user and group,
 * so that -t catches a typo. */
static int
conf_listener_unix(struct conf_ctx *c, config_setting_t *g, struct conf_listener *l)
{
	static const char *const unix_only[] = {"mode", "owner", "group"};
	static const char *const tcp_only[] = {"fastopen", "defer_accept", "keepalive"};
	config_setting_t *s;
	const struct passwd *pw = NULL;
	const char *text;
	unsigned long mode;

	l->unix_mode = -1;
	l->unix_uid = (uid_t)-1;
	l->unix_gid = (gid_t)-1;
	for (unsigned i = 0; i < 3; i++) {
		const char *name = l->addr.ss_family == AF_UNIX ? tcp_only[i] : unix_only[i];

		if ((s = config_setting_get_member(g, name)) != NULL)
			return conf_fail(c, s, NULL, "applies only to a %s listen address",
			    l->addr.ss_family == AF_UNIX ? "TCP" : "UNIX (\"unix:/path\")");
	}
	if (l->addr.ss_family != AF_UNIX)
		return 0;
	if ((s = config_setting_get_member(g, "mode")) != NULL) {
		if (conf_mode(c, s, &mode) == -1)
			return -1;
		l->unix_mode = (int)mode;
	}
	if ((s = config_setting_get_member(g, "owner")) != NULL) {
		if (conf_string(c, s, &text) == -1)
			return -1;
		if (!c->peek && (*text == '\0' || (pw = getpwnam(text)) == NULL))
			return conf_fail(c, s, NULL, "unknown user \"%s\"", text);
		if (!c->peek)
			l->unix_uid = pw->pw_uid;
	}
	if ((s = config_setting_get_member(g, "group")) != NULL &&
	    conf_gid(c, s, &text, &l->unix_gid) == -1)
		return -1;
	return 0;
}

/* PROXY protocol, access lists and limits of one listener. */
static int
conf_listener_edge(struct conf_ctx *c, config_setting_t *g, struct conf_listener *l)
{
	config_setting_t *s;
	int v;

	if ((s = config_setting_get_member(g, "proxy_protocol")) != NULL) {
		if (conf_choice(c, s, "proxy_protocol", conf_proxy_send, &v) == -1)
			return -1;
		l->proxy_send = (unsigned)v;
	}
	if ((s = config_setting_get_member(g, "accept_proxy")) != NULL) {
		if (conf_choice(c, s, "accept_proxy", conf_proxy_accept, &v) == -1)
			return -1;
		l->proxy_accept = (unsigned)v;
	}
	if (conf_cidrs(c, g, "trusted", &l->trusted, &l->ntrusted) == -1 ||
	    conf_cidrs(c, g, "allow", &l->allow, &l->nallow) == -1 ||
	    conf_cidrs(c, g, "deny", &l->deny, &l->ndeny) == -1)
		return -1;
	if (l->addr.ss_family == AF_UNIX) {
		if (conf_listener_unix_edge(c, g, l) == -1)
			return -1;
	} else if (l->proxy_accept && l->ntrusted == 0) {
		/* Trusting every client to name its own address would let anyone
		 * spoof one: the trusted fronts must be listed, even if as ::/0. */
		return conf_fail(c, g, "trusted",
		    "accept_proxy needs the networks allowed to send the header, e.g. "
		    "trusted = ( \"10.0.0.0/8\" )");
	} else if (!l->proxy_accept && l->ntrusted > 0) {
		return conf_fail(c, config_setting_get_member(g, "trusted"), NULL,
		    "trusted applies only with accept_proxy");
	}
	if ((s = config_setting_get_member(g, "max_connections_per_source")) != NULL &&
	    conf_int(c, s, 0, CONF_MAX_CONNECTIONS, &l->max_per_source) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "rate_limit")) != NULL &&
	    conf_int(c, s, 0, CONF_MAX_CONNECTIONS, &l->rate_limit) == -1)
		return -1;
	return 0;
}

/* v6only: only for an IPv6 address; default on, so that "[::]:P" and
 * "0.0.0.0:P" can both be listeners and mean what they say. */
static int
conf_listener_v6only(struct conf_ctx *c, config_setting_t *g, struct conf_listener *l)
{
	config_setting_t *s;
	const struct in6_addr *a6;

	l->v6only = 1;
	if ((s = config_setting_get_member(g, "v6only")) == NULL)
		return 0;
	if (conf_bool(c, s, &l->v6only) == -1)
		return -1;
	if (l->addr.ss_family != AF_INET6)
		return conf_fail(c, s, NULL, "applies only to an IPv6 listen address");
	a6 = &((const struct sockaddr_in6 *)&l->addr)->sin6_addr;
	/* bind() makes any other IPv6 address IPv6-only, whatever we ask. */
	if (!l->v6only && !IN6_IS_ADDR_UNSPECIFIED(a6) && !IN6_IS_ADDR_V4MAPPED(a6))
		return conf_fail(c, s, NULL,
		    "false applies only to [::] or an IPv4-mapped address such as "
		    "[::ffff:127.0.0.1] (the kernel keeps any other IPv6 address IPv6-only)");
	return 0;
}

/* reuseport: one SO_REUSEPORT socket per worker (master/listen.c). TCP
 * only: Linux has no reuseport group for UNIX sockets (a socket file is
 * bound by one socket, a second bind gets EADDRINUSE). */
static int
conf_listener_reuseport(struct conf_ctx *c, config_setting_t *g, struct conf_listener *l)
{
	config_setting_t *s;

	if ((s = config_setting_get_member(g, "reuseport")) == NULL)
		return 0;
	if (conf_bool(c, s, &l->reuseport) == -1)
		return -1;
	if (l->reuseport && l->addr.ss_family == AF_UNIX)
		return conf_fail(c, s, NULL,
		    "applies only to a TCP listen address (Linux binds a UNIX socket "
		    "file to one socket only: there is no reuseport group to spread "
		    "connections over)");
	return 0;
}

/* Options of the listening socket, which accepted sockets inherit. */
static int
conf_listener_sockopts(struct conf_ctx *c, config_setting_t *g, struct conf_listener *l)
{
	config_setting_t *s;
	const char *const bufs[] = {"rcvbuf", "sndbuf"};
	unsigned *const out[] = {&l->rcvbuf, &l->sndbuf};
	uint64_t v;

	if ((s = config_setting_get_member(g, "fastopen")) != NULL &&
	    conf_int(c, s, 0, CONF_FASTOPEN_MAX, &l->fastopen) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "defer_accept")) != NULL &&
	    conf_seconds(c, s, CONF_DEFER_ACCEPT_S_MAX, &l->defer_accept_s) == -1)
		return -1;
	for (unsigned i = 0; i < 2; i++) {
		if ((s = config_setting_get_member(g, bufs[i])) == NULL)
			continue;
		if (conf_size(c, s, &v) == -1)
			return -1;
		if (v < CONF_SOCKBUF_MIN || v > CONF_SOCKBUF_MAX)
			return conf_fail(c, s, NULL, "must be between 1K and 512M");
		*out[i] = (unsigned)v;
	}
	return conf_keepalive(c, g, &l->keepalive);
}

/* The index of the upstream named by string setting s. */
static int
conf_upstream_ref(struct conf_ctx *c, const config_setting_t *s, const struct conf *conf,
    unsigned *out)
{
	const char *text;

	if (conf_string(c, s, &text) == -1)
		return -1;
	for (unsigned i = 0; i < conf->nupstreams; i++)
		if (strcmp(conf->upstreams[i].name, text) == 0) {
			*out = i;
			return 0;
		}
	return conf_fail(c, s, NULL, "upstream \"%s\" is not defined", text);
}

/* sni = ( { name = "a.example.com"; alpn = "h2"; upstream = "a"; }, ... ):
 * each rule names a host (exact, or "*." and a suffix) and/or an ALPN
 * protocol, and an upstream. */
static int
conf_listener_sni(struct conf_ctx *c, config_setting_t *g, const struct conf *conf,
    struct conf_listener *l)
{
	config_setting_t *list = config_setting_get_member(g, "sni"), *e, *s;
	unsigned n;

	if (list == NULL)
		return 0;
	if (!config_setting_is_list(list) || config_setting_length(list) == 0)
		return conf_fail(c, list, NULL,
		    "expected a list ( { name = \"host\"; upstream = \"...\"; }, ... ) of rules");
	n = (unsigned)config_setting_length(list);
	if (n > CONF_SNI_RULES_MAX)
		return conf_fail(c, list, NULL, "more than %u rules", CONF_SNI_RULES_MAX);
	if ((l->sni = calloc(n, sizeof(*l->sni))) == NULL)
		return conf_nomem(c);
	l->nsni = n;
	for (unsigned i = 0; i < n; i++) {
		struct conf_sni_rule *r = &l->sni[i];
		const char *text;

		e = config_setting_get_elem(list, i);
		if (!config_setting_is_group(e))
			return conf_fail(c, e, NULL,
			    "expected a group { name = \"host\"; upstream = \"...\"; }");
		if (conf_check_keys(c, e, conf_sni_keys) == -1)
			return -1;
		if ((s = config_setting_get_member(e, "name")) != NULL) {
			if (conf_string(c, s, &text) == -1)
				return -1;
			if (tls_hello_name_valid(text, strlen(text), 1) == -1)
				return conf_fail(c, s, NULL,
				    "\"%s\" is not a host name (labels of letters, digits, '-' "
				    "and '_'; a wildcard only as \"*.\" in front)", text);
			if (conf_strdup(c, text, &r->name) == -1)
				return -1;
			for (char *p = r->name; *p != '\0'; p++)
				*p = (char)tolower((unsigned char)*p);
		}
		if ((s = config_setting_get_member(e, "alpn")) != NULL) {
			if (conf_string(c, s, &text) == -1)
				return -1;
			if (text[0] == '\0' || strlen(text) > 255)
				return conf_fail(c, s, NULL, "an ALPN protocol is 1 to 255 bytes");
			if (conf_strdup(c, text, &r->alpn) == -1)
				return -1;
		}
		if (r->name == NULL && r->alpn == NULL)
			return conf_fail(c, e, "name", "a rule needs a name, an alpn or both");
		if ((s = config_setting_get_member(e, "upstream")) == NULL)
			return conf_fail(c, e, "upstream", "a rule needs an upstream");
		if (conf_upstream_ref(c, s, conf, &r->upstream) == -1)
			return -1;
		/* A session keeps the chosen group in 16 bits. */
		if (r->upstream > UINT16_MAX)
			return conf_fail(c, s, NULL, "sni rules can name only the first 65536 upstreams");
		/* The same name and alpn twice: the second could never match. */
		for (unsigned k = 0; k < i; k++) {
			const struct conf_sni_rule *o = &l->sni[k];

			if ((o->name == NULL) == (r->name == NULL) &&
			    (o->name == NULL || strcmp(o->name, r->name) == 0) &&
			    (o->alpn == NULL) == (r->alpn == NULL) &&
			    (o->alpn == NULL || strcmp(o->alpn, r->alpn) == 0))
				return conf_fail(c, e, NULL, "the same name and alpn as sni[%u]", k);
		}
	}
	return 0;
}

static int
conf_listener(struct conf_ctx *c, config_setting_t *g, struct conf *conf, unsigned idx)
{
	struct conf_listener *l = &conf->listeners[idx];
	config_setting_t *s;
	const char *text;
	char why[1200], mine[ADDR_STRLEN], theirs[ADDR_STRLEN];
	unsigned i;
	int same;

	if (!config_setting_is_group(g))
		return conf_fail(
		    c, g, NULL, "expected a group { listen = \"host:port\"; upstream = \"...\"; }");
	if (conf_check_keys(c, g, conf_listener_keys) == -1)
		return -1;

	if ((s = config_setting_get_member(g, "listen")) == NULL)
		return conf_fail(c, g, "listen", "a listener needs an address");
	if (conf_string(c, s, &text) == -1)
		return -1;
	if (addr_parse(text, ADDR_NUMERIC | ADDR_WILDCARD | ADDR_UNIX, &l->addr, &l->addrlen, why,
	        sizeof(why)) == -1)
		return conf_fail(c, s, NULL, "invalid address \"%s\": %s", text, why);
	if (conf_listener_v6only(c, g, l) == -1 || conf_listener_unix(c, g, l) == -1 ||
	    conf_listener_reuseport(c, g, l) == -1)
		return -1;
	if (l->addr.ss_family == AF_UNIX && conf->control_socket != NULL &&
	    strcmp(text + sizeof(ADDR_UNIX_PREFIX) - 1, conf->control_socket) == 0)
		return conf_fail(c, s, NULL, "%s is also control.socket", text);
	for (i = 0; i < idx; i++) {
		if (!conf_listeners_clash(l, &conf->listeners[i], &same))
			continue;
		addr_format((const struct sockaddr *)&l->addr, mine, sizeof(mine));
		if (same)
			return conf_fail(c, s, NULL,
			    "duplicate listener address %s (also listeners[%u])", mine, i);
		addr_format(
		    (const struct sockaddr *)&conf->listeners[i].addr, theirs, sizeof(theirs));
		return conf_fail(
		    c, s, NULL, "address %s overlaps %s (listeners[%u])", mine, theirs, i);
	}
	if (conf_strdup(c, text, &l->address) == -1)
		return -1;

	if (conf_listener_sni(c, g, conf, l) == -1)
		return -1;
	/* With sni rules the upstream is the default, and may be left out:
	 * then a hello no rule takes is refused. */
	if ((s = config_setting_get_member(g, "upstream")) == NULL) {
		if (l->nsni == 0)
			return conf_fail(c, g, "upstream", "a listener needs an upstream");
		l->upstream = l->sni[0].upstream;
	} else {
		if (conf_upstream_ref(c, s, conf, &l->upstream) == -1)
			return -1;
		if (l->nsni > 0 && l->upstream > UINT16_MAX)
			return conf_fail(c, s, NULL, "sni rules can name only the first 65536 upstreams");
		l->sni_default = 1;
	}

	l->backlog = 511;
	if ((s = config_setting_get_member(g, "backlog")) != NULL &&
	    conf_int(c, s, 1, CONF_BACKLOG_MAX, &l->backlog) == -1)
		return -1;
	if (conf_listener_sockopts(c, g, l) == -1)
		return -1;
	if (conf_listener_edge(c, g, l) == -1)
		return -1;
	return conf_listener_tlv(c, g, conf, l);
}

/* health.send_proxy left out: like HAProxy, checks carry the header the
 * servers get in traffic, when every listener that can send them clients
 * (by default or by an sni rule) sends the same version; else none. */
static void
conf_health_proxy(struct conf *conf)
{
	for (unsigned u = 0; u < conf->nupstreams; u++) {
		struct conf_health *h = &conf->upstreams[u].health;
		unsigned v = CONF_HEALTH_PROXY_INHERIT;

		if (h->send_proxy != CONF_HEALTH_PROXY_INHERIT)
			continue;
		for (unsigned i = 0; i < conf->nlisteners && v != 0; i++) {
			const struct conf_listener *l = &conf->listeners[i];
			int uses = (l->nsni == 0 || l->sni_default) && l->upstream == u;

			for (unsigned k = 0; k < l->nsni && !uses; k++)
				uses = l->sni[k].upstream == u;
			if (!uses)
				continue;
			if (v == CONF_HEALTH_PROXY_INHERIT)
				v = l->proxy_send;
			else if (v != l->proxy_send)
				v = 0;
		}
		h->send_proxy = v == CONF_HEALTH_PROXY_INHERIT ? 0 : v;
	}
}

static const struct conf_name conf_dns_families[] = {
    {"any", AF_UNSPEC},
    {"ipv4", AF_INET},
    {"ipv6", AF_INET6},
    {NULL, 0},
};

static const struct conf_name conf_dns_inits[] = {
    {"libc", 1},
    {"none", 0},
    {NULL, 0},
};

/* One nameserver: a numeric address, with a port or without (53). */
static int
conf_nameserver(struct conf_ctx *c, config_setting_t *e, struct sockaddr_storage *ss)
{
	const char *text;
	char with[128];
	socklen_t len;

	if (conf_string(c, e, &text) == -1)
		return -1;
	if (addr_parse(text, ADDR_NUMERIC, ss, &len, NULL, 0) == 0)
		return 0;
	/* Without a port: "10.0.0.1" or "::1". */
	snprintf(with, sizeof(with), strchr(text, ':') != NULL ? "[%s]:53" : "%s:53", text);
	if (strlen(text) < 100 && text[0] != '[' &&
	    addr_parse(with, ADDR_NUMERIC, ss, &len, NULL, 0) == 0)
		return 0;
	return conf_fail(c, e, NULL,
	    "invalid nameserver \"%s\" (a numeric address, with a port or without, such "
	    "as \"10.0.0.53\" or \"[::1]:5353\")", text);
}

/* dns = { nameservers; timeout; min_ttl; max_ttl; retry; family;
 * init_addr; }: optional, required by servers with resolve = true. */
static int
conf_dns(struct conf_ctx *c, config_setting_t *root, struct conf_dns *d)
{
	config_setting_t *g, *s, *mn;
	unsigned n;
	int v;

	d->timeout_ms = 2000;
	d->min_ttl_ms = 1000;
	d->max_ttl_ms = 300 * 1000;
	d->retry_ms = 5000;
	d->family = AF_UNSPEC;
	d->init_libc = 1;
	if (conf_group(c, root, "dns", conf_dns_keys, &g) == -1)
		return -1;
	if (g == NULL)
		return 0;
	d->enabled = 1;
	if ((s = config_setting_get_member(g, "nameservers")) == NULL)
		return conf_fail(c, g, "nameservers", "dns needs nameservers = ( \"ADDR[:PORT]\" )");
	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		n = 1;
	else if (config_setting_is_list(s) || config_setting_is_array(s))
		n = (unsigned)config_setting_length(s);
	else
		return conf_fail(c, s, NULL, "expected an address or a list ( \"127.0.0.1:53\", ... )");
	if (n == 0)
		return conf_fail(c, s, NULL, "at least one nameserver is required");
	if (n > CONF_DNS_NAMESERVERS_MAX)
		return conf_fail(c, s, NULL, "at most %d nameservers", CONF_DNS_NAMESERVERS_MAX);
	if ((d->ns = calloc(n, sizeof(*d->ns))) == NULL)
		return conf_nomem(c);
	d->nns = n;
	for (unsigned i = 0; i < n; i++)
		if (conf_nameserver(c,
		        config_setting_type(s) == CONFIG_TYPE_STRING ? s
		                                                    : config_setting_get_elem(s, i),
		        &d->ns[i]) == -1)
			return -1;
	if ((s = config_setting_get_member(g, "timeout")) != NULL &&
	    conf_timeout(c, s, &d->timeout_ms) == -1)
		return -1;
	if ((mn = config_setting_get_member(g, "min_ttl")) != NULL &&
	    conf_timeout(c, mn, &d->min_ttl_ms) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "max_ttl")) != NULL &&
	    conf_timeout(c, s, &d->max_ttl_ms) == -1)
		return -1;
	if (d->min_ttl_ms > d->max_ttl_ms)
		return conf_fail(c, s != NULL ? s : mn, NULL,
		    "dns.min_ttl (%u ms) must not be longer than dns.max_ttl (%u ms)", d->min_ttl_ms,
		    d->max_ttl_ms);
	if ((s = config_setting_get_member(g, "retry")) != NULL &&
	    conf_timeout(c, s, &d->retry_ms) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "family")) != NULL) {
		if (conf_choice(c, s, "family", conf_dns_families, &v) == -1)
			return -1;
		d->family = v;
	}
	if ((s = config_setting_get_member(g, "init_addr")) != NULL) {
		if (conf_choice(c, s, "init_addr", conf_dns_inits, &v) == -1)
			return -1;
		d->init_libc = v;
	}
	return 0;
}

/* admin = { listen = "ADDR:PORT"; }: optional; a numeric address that no
 * listener has (its socket would be the listener's). */
static int
conf_admin(struct conf_ctx *c, config_setting_t *root, struct conf *conf)
{
	config_setting_t *g, *s;
	const char *text;
	char why[1200];

	if (conf_group(c, root, "admin", conf_admin_keys, &g) == -1)
		return -1;
	if (g == NULL)
		return 0;
	if ((s = config_setting_get_member(g, "listen")) == NULL)
		return conf_fail(c, g, "listen", "the admin endpoint needs an address");
	if (conf_string(c, s, &text) == -1)
		return -1;
	if (addr_parse(text, ADDR_NUMERIC | ADDR_WILDCARD, &conf->admin_addr,
	        &conf->admin_addrlen, why, sizeof(why)) == -1)
		return conf_fail(c, s, NULL, "invalid address \"%s\": %s", text, why);
	for (unsigned i = 0; i < conf->nlisteners; i++)
		if (addr_equal((const struct sockaddr *)&conf->admin_addr,
		        (const struct sockaddr *)&conf->listeners[i].addr))
			return conf_fail(c, s, NULL, "address %s is also listeners[%u]'s", text, i);
	return conf_strdup(c, text, &conf->admin_address);
}

static int
conf_build(struct conf_ctx *c, config_setting_t *root, struct conf *conf)
{
	config_setting_t *list, *s;
	unsigned i, n;

	if (conf_check_keys(c, root, conf_top_keys) == -1)
		return -1;
	if (conf_strdup(c, c->path, &conf->path) == -1 || conf_workers(c, root, conf) == -1 ||
	    conf_accept_workers(c, root, conf) == -1)
		return -1;

	if (conf_strdup(c, CONF_DEFAULT_PID_FILE, &conf->pid_file) == -1 ||
	    conf_strdup(c, CONF_DEFAULT_STATS_FILE, &conf->stats_file) == -1)
		return -1;
	if ((s = config_setting_get_member(root, "pid_file")) != NULL &&
	    conf_abs_path(c, s, &conf->pid_file) == -1)
		return -1;
	if ((s = config_setting_get_member(root, "stats_file")) != NULL &&
	    conf_abs_path(c, s, &conf->stats_file) == -1)
		return -1;

	if (conf_log(c, root, conf) == -1 || conf_user(c, root, conf) == -1 ||
	    conf_pool(c, root, conf) == -1 ||
	    conf_limits(c, root, conf) == -1 || conf_timeouts(c, root, conf) == -1 ||
	    conf_control(c, root, conf) == -1)
		return -1;

	/* dns before upstreams: a server with resolve = true needs it. */
	if (conf_dns(c, root, &conf->dns) == -1)
		return -1;
	c->dns = &conf->dns;
	/* Upstreams before listeners: a listener names one. */
	if (conf_list(c, root, "upstreams", "upstream", &list) == -1)
		return -1;
	n = (unsigned)config_setting_length(list);
	conf->upstreams = calloc(n, sizeof(*conf->upstreams));
	if (conf->upstreams == NULL)
		return conf_nomem(c);
	conf->nupstreams = n;
	for (i = 0; i < n; i++)
		if (conf_upstream(c, config_setting_get_elem(list, i), conf, i) == -1)
			return -1;

	if (conf_list(c, root, "listeners", "listener", &list) == -1)
		return -1;
	n = (unsigned)config_setting_length(list);
	conf->listeners = calloc(n, sizeof(*conf->listeners));
	if (conf->listeners == NULL)
		return conf_nomem(c);
	conf->nlisteners = n;
	for (i = 0; i < n; i++)
		if (conf_listener(c, config_setting_get_elem(list, i), conf, i) == -1)
			return -1;
	conf_health_proxy(conf);
	return conf_admin(c, root, conf);
}

/* libconfig reports only "file I/O error"; say which one. */
static int
conf_check_file(struct conf_ctx *c)
{
	struct stat st;
	int fd, saved;

	fd = open(c->path, O_RDONLY | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1) {
		saved = errno;
		if (fd != -1)
			close(fd);
		if (c->err != NULL && c->errlen > 0)
			snprintf(
			    c->err, c->errlen, "%s: cannot open: %s", c->path, strerror(saved));
		errno = saved;
		return -1;
	}
	close(fd);
	if (S_ISDIR(st.st_mode)) {
		if (c->err != NULL && c->errlen > 0)
			snprintf(c->err, c->errlen, "%s: is a directory", c->path);
		errno = EISDIR;
		return -1;
	}
	return 0;
}

struct conf *
conf_load(const char *path, char *err, size_t errlen)
{
	return conf_read(path, 0, err, errlen);
}

struct conf *
conf_peek(const char *path, char *err, size_t errlen)
{
	return conf_read(path, 1, err, errlen);
}

static struct conf *
conf_read(const char *path, int peek, char *err, size_t errlen)
{
	struct conf_ctx c = {path, err, errlen, NULL, peek, NULL};
	struct conf *conf;
	config_t cfg;
	char dir[PATH_MAX], efile[PATH_MAX + 256];
	const char *slash;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (path == NULL || *path == '\0') {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "no configuration file given");
		errno = EINVAL;
		return NULL;
	}
	if (conf_check_file(&c) == -1)
		return NULL;

	config_init(&cfg);
	/* @include "x" means next to this file, not the daemon's cwd. */
	slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	config_set_include_dir(&cfg, dir);
	c.dir = dir;

	if (config_read_file(&cfg, path) == CONFIG_FALSE) {
		conf_file_name(&c, config_error_file(&cfg), efile, sizeof(efile));
		if (err != NULL && errlen > 0) {
			if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
				snprintf(err, errlen, "%s: cannot read: %s", efile,
				    config_error_text(&cfg));
			else if (strcmp(config_error_text(&cfg), "syntax error") == 0)
				snprintf(err, errlen, "%s:%d: syntax error", efile,
				    config_error_line(&cfg));
			else
				snprintf(err, errlen, "%s:%d: syntax error: %s", efile,
				    config_error_line(&cfg), config_error_text(&cfg));
		}
		config_destroy(&cfg);
		errno = EINVAL;
		return NULL;
	}

	conf = calloc(1, sizeof(*conf));
	if (conf == NULL) {
		conf_nomem(&c);
	} else if (conf_build(&c, config_root_setting(&cfg), conf) == -1) {
		conf_free(conf);
		conf = NULL;
	}
	config_destroy(&cfg);
	return conf;
}

void
conf_free(struct conf *conf)
{
	unsigned i, j;

	if (conf == NULL)
		return;
	for (i = 0; i < conf->nupstreams; i++) {
		for (j = 0; j < conf->upstreams[i].nservers; j++)
			conf_server_free(&conf->upstreams[i].servers[j]);
		free(conf->upstreams[i].source.addr);
		free(conf->upstreams[i].servers);
		free(conf->upstreams[i].health.send);
		free(conf->upstreams[i].health.expect);
	}
	free(conf->upstreams);
	free(conf->dns.ns);
	for (i = 0; i < conf->nlisteners; i++) {
		free(conf->listeners[i].address);
		free(conf->listeners[i].trusted);
		free(conf->listeners[i].allow);
		free(conf->listeners[i].deny);
		free(conf->listeners[i].tlv_pass);
		free(conf->listeners[i].tlv_add);
		for (unsigned k = 0; k < conf->listeners[i].nsni; k++) {
			free(conf->listeners[i].sni[k].name);
			free(conf->listeners[i].sni[k].alpn);
		}
		free(conf->listeners[i].sni);
	}
	free(conf->listeners);
	free(conf->path);
	free(conf->pid_file);
	free(conf->stats_file);
	free(conf->log_file);
	free(conf->log_syslog_socket);
	logfmt_free(conf->log_format);
	free(conf->user);
	free(conf->group);
	free(conf->chroot);
	free(conf->control_socket);
	free(conf->control_group);
	free(conf->state_file);
	free(conf->admin_address);
	free(conf);
}

/* Digits with no sign, blank or base prefix; ERANGE past UINT64_MAX. */
static int
conf_digits(const char **p, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;
	int overflow = 0;
	unsigned d;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			overflow = 1;
		else
			v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return overflow ? 1 : 0;
}

int
conf_parse_size(const char *text, uint64_t *out)
{
	const char *p = text;
	uint64_t v, mult = 1;
	int rc;

	if (text == NULL || (rc = conf_digits(&p, &v)) == -1) {
		errno = EINVAL;
		return -1;
	}
	switch (*p) {
	case 'k':
	case 'K':
		mult = 1024;
		p++;
		break;
	case 'm':
	case 'M':
		mult = 1024 * 1024;
		p++;
		break;
	case 'g':
	case 'G':
		mult = 1024 * 1024 * 1024;
		p++;
		break;
	}
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p != '\0') {
		errno = EINVAL;
		return -1;
	}
	if (rc == 1 || v > UINT64_MAX / mult) {
		errno = ERANGE;
		return -1;
	}
	*out = v * mult;
	return 0;
}

int
conf_parse_duration(const char *text, uint64_t *ms)
{
	const char *p = text;
	uint64_t v, mult;
	int rc;

	if (text == NULL || (rc = conf_digits(&p, &v)) == -1) {
		errno = EINVAL;
		return -1;
	}
	if (strcmp(p, "") == 0 || strcmp(p, "s") == 0)
		mult = 1000;
	else if (strcmp(p, "ms") == 0)
		mult = 1;
	else if (strcmp(p, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(p, "h") == 0)
		mult = 60 * 60 * 1000;
	else if (strcmp(p, "d") == 0)
		mult = 24 * 60 * 60 * 1000;
	else {
		errno = EINVAL;
		return -1;
	}
	if (rc == 1 || v > CONF_DURATION_MAX_MS / mult) {
		errno = ERANGE;
		return -1;
	}
	*ms = v * mult;
	return 0;
}

unsigned
conf_fd_capacity(const struct conf *c, unsigned long nofile, unsigned extra_listen)
{
	/* Listeners (and the extra reuseport sockets a worker took over after
	 * the workers shrank), the log and stats descriptors, stdio, slack, and
	 * the idle pipe cache a worker keeps for splicing (two each). */
	unsigned long reserve = 32 + c->nlisteners + extra_listen + 2 * 32;

	return nofile > reserve ? (unsigned)((nofile - reserve) / 2) : 0;
}
