/* SPDX-License-Identifier: BSD-2-Clause */
/* t_conf.c — unit test for common/conf.c: a full file, a minimal file with
 * defaults, one bad file per kind of mistake (exact "FILE:LINE: SETTING:
 * reason" text), the size and duration parsers, and etc/sluice.conf. Writes
 * only inside its own mkdtemp directory and removes it; no network. */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "tap.h"

static char tmpdir[PATH_MAX];
static char conf_path[PATH_MAX + 32];
static char include_path[PATH_MAX + 32];

/* A valid tail for cases whose mistake is above it. */
#define UP "upstreams = ({ name = \"app\"; servers = (\"127.0.0.1:9000\"); });\n"
#define LS "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\"; });\n"

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) == EOF)
		bail("cannot write %s", path);
}

static struct conf *
load_text(const char *text, char *err, size_t errlen)
{
	write_file(conf_path, text);
	return conf_load(conf_path, err, errlen);
}

/* want is what follows the file name: ":LINE: SETTING: reason". */
static void
bad(const char *text, const char *want, const char *what)
{
	char err[1024], full[PATH_MAX + 2048];
	struct conf *conf;

	strcpy(err, "(no error)");
	conf = load_text(text, err, sizeof(err));
	snprintf(full, sizeof(full), "%s%s", conf_path, want);
	if (!ok(conf == NULL, "rejected: %s", what))
		conf_free(conf);
	is_str(err, full, "  message for: %s", what);
}

static int
addr_is(const struct sockaddr_storage *ss, const char *want)
{
	char buf[ADDR_STRLEN];

	addr_format((const struct sockaddr *)ss, buf, sizeof(buf));
	if (strcmp(buf, want) != 0) {
		diag("  address %s, want %s", buf, want);
		return 0;
	}
	return 1;
}

static int
is_loopback(const struct sockaddr_storage *ss, unsigned port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127 && ntohs(sin->sin_port) == port;
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) && ntohs(sin6->sin6_port) == port;
	return 0;
}

static void
test_full(void)
{
	static const char text[] =
	    "# every setting, none at its default\n"
	    "workers = 3;\n"
	    "pid_file = \"/tmp/sluice-test/sluiced.pid\";\n"
	    "stats_file = \"/tmp/sluice-test/stats\";\n"
	    "log = { target = \"file\"; file = \"/var/log/sluice.log\";\n"
	    "        facility = \"local3\"; level = \"debug\"; };\n"
	    "pool = { buffer_size = \"16K\"; max_memory = 1048576; splice = false;\n"
	    "         batch_writes = true; };\n"
	    "limits = { max_connections = 5000; };\n"
	    "timeouts = { connect = \"250ms\"; idle = 90; drain = \"2m\"; };\n"
	    "upstreams = (\n"
	    "  { name = \"app\"; balance = \"roundrobin\";\n"
	    "    servers = ( { address = \"127.0.0.1:9000\"; weight = 3; }, \"127.0.0.1:9001\" ); "
	    "},\n"
	    "  { name = \"web-2.b_x\"; servers = [ \"localhost:9002\", \"[::1]:9003\" ]; }\n"
	    ");\n"
	    "listeners = (\n"
	    "  { listen = \"127.0.0.1:8080\"; upstream = \"app\"; },\n"
	    "  { listen = \"[::1]:8081\"; upstream = \"web-2.b_x\"; backlog = 128; },\n"
	    "  { listen = \"*:8082\"; upstream = \"app\"; backlog = 65535; },\n"
	    "  { listen = \"[::]:8082\"; upstream = \"app\"; }\n"
	    ");\n";
	char err[1024] = "";
	struct conf *c;

	c = load_text(text, err, sizeof(err));
	if (!ok(c != NULL, "full config loads")) {
		diag("  error: %s", err);
		return;
	}
	is_str(c->path, conf_path, "path is the file loaded");
	is(c->workers, 3, "workers");
	is(c->workers_auto, 0, "workers_auto is 0 for a number");
	is_str(c->pid_file, "/tmp/sluice-test/sluiced.pid", "pid_file");
	is_str(c->stats_file, "/tmp/sluice-test/stats", "stats_file");
	is(c->log_target, LOG_TARGET_FILE, "log.target");
	is_str(c->log_file, "/var/log/sluice.log", "log.file");
	is(c->log_facility, LOG_LOCAL3, "log.facility");
	is(c->log_level, LOG_LEVEL_DEBUG, "log.level");
	is(c->buffer_size, 16384, "pool.buffer_size from \"16K\"");
	is(c->max_memory, 1048576, "pool.max_memory from an integer");
	is(c->splice, 0, "pool.splice = false turns zero-copy off");
	is(c->batch_writes, 1, "pool.batch_writes = true");
	is(c->max_connections, 5000, "limits.max_connections");
	is(c->connect_timeout_ms, 250, "timeouts.connect from \"250ms\"");
	is(c->idle_timeout_ms, 90000, "timeouts.idle from an integer (seconds)");
	is(c->drain_timeout_ms, 120000, "timeouts.drain from \"2m\"");

	is(c->nupstreams, 2, "two upstreams");
	is_str(c->upstreams[0].name, "app", "upstreams[0].name");
	is(c->upstreams[0].nservers, 2, "upstreams[0] has two servers");
	is_str(c->upstreams[0].servers[0].address, "127.0.0.1:9000", "server address as written");
	ok(addr_is(&c->upstreams[0].servers[0].addr, "127.0.0.1:9000"), "server 0 parsed");
	is(c->upstreams[0].servers[0].addrlen, sizeof(struct sockaddr_in), "server 0 addrlen");
	is(c->upstreams[0].servers[0].weight, 3, "server 0 weight");
	is_str(c->upstreams[0].servers[1].address, "127.0.0.1:9001", "a bare string is a server");
	ok(addr_is(&c->upstreams[0].servers[1].addr, "127.0.0.1:9001"), "server 1 parsed");
	is(c->upstreams[0].servers[1].weight, 1, "a bare server has weight 1");
	is_str(c->upstreams[1].name, "web-2.b_x", "upstreams[1].name with . - _");
	is(c->upstreams[1].nservers, 2, "an array of strings is a server list");
	is_str(c->upstreams[1].servers[0].address, "localhost:9002", "host name kept as written");
	ok(is_loopback(&c->upstreams[1].servers[0].addr, 9002), "localhost resolved to loopback");
	ok(addr_is(&c->upstreams[1].servers[1].addr, "[::1]:9003"), "IPv6 server parsed");
	is(c->upstreams[1].servers[1].addrlen, sizeof(struct sockaddr_in6), "IPv6 addrlen");

	is(c->nlisteners, 4, "four listeners");
	is_str(c->listeners[0].address, "127.0.0.1:8080", "listeners[0].address");
	ok(addr_is(&c->listeners[0].addr, "127.0.0.1:8080"), "listeners[0] parsed");
	is(c->listeners[0].upstream, 0, "listeners[0] -> app");
	is(c->listeners[0].backlog, 511, "listeners[0] default backlog");
	ok(addr_is(&c->listeners[1].addr, "[::1]:8081"), "listeners[1] parsed");
	is(c->listeners[1].upstream, 1, "listeners[1] -> web-2.b_x");
	is(c->listeners[1].backlog, 128, "listeners[1].backlog");
	is_str(c->listeners[2].address, "*:8082", "wildcard kept as written");
	ok(addr_is(&c->listeners[2].addr, "0.0.0.0:8082"), "\"*\" is 0.0.0.0");
	is(c->listeners[2].backlog, 65535, "backlog 65535");
	ok(addr_is(&c->listeners[3].addr, "[::]:8082"), "[::] beside 0.0.0.0 on one port is fine");
	conf_free(c);
}

static void
test_minimal(void)
{
	char err[1024] = "";
	struct conf *c;
	long cpus;

	c = load_text(UP LS, err, sizeof(err));
	if (!ok(c != NULL, "minimal config loads")) {
		diag("  error: %s", err);
		return;
	}
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus < 1)
		cpus = 1;
	if (cpus > CONF_WORKERS_MAX)
		cpus = CONF_WORKERS_MAX;
	is(c->workers, cpus, "workers defaults to the online CPUs");
	is(c->workers_auto, 1, "workers_auto when missing");
	ok(conf_fd_capacity(c, 20000, 0) - conf_fd_capacity(c, 20000, 40) == 20,
	    "40 extra listening sockets (reuseport, after a shrink) cost 20 connections of "
	    "a worker's descriptor budget");
	is_str(c->pid_file, "/run/sluice/sluiced.pid", "default pid_file");
	is_str(c->stats_file, "/run/sluice/stats", "default stats_file");
	is(c->log_target, LOG_TARGET_SYSLOG, "default log.target");
	ok(c->log_file == NULL, "no log file");
	is(c->log_facility, LOG_DAEMON, "default log.facility");
	is(c->log_level, LOG_LEVEL_INFO, "default log.level");
	is(c->buffer_size, 4096, "default pool.buffer_size");
	is(c->max_memory, 256 * 1024 * 1024, "default pool.max_memory");
	is(c->splice, 1, "default pool.splice is on");
	is(c->batch_writes, 0, "default pool.batch_writes is off");
	is(c->bulk_buffer_size, 32 * 1024, "default pool.bulk_buffer_size");
	is(c->bulk_memory, 64 * 1024 * 1024, "bulk buffers have a quarter of max_memory");
	is(c->accept_workers, cpus, "accept_workers defaults to the online CPUs");
	is(c->max_connections_per_worker, 0, "default per-worker limit: from descriptors");
	is(c->max_connections, 10000, "default limits.max_connections");
	is(c->source_table, 0, "default limits.source_table: from max_connections");
	is(c->connect_timeout_ms, 5000, "default timeouts.connect");
	is(c->idle_timeout_ms, 600000, "default timeouts.idle");
	is(c->drain_timeout_ms, 30000, "default timeouts.drain");
	is(c->nupstreams, 1, "one upstream");
	is(c->upstreams[0].servers[0].weight, 1, "default weight");
	is(c->nlisteners, 1, "one listener");
	is(c->listeners[0].backlog, 511, "default backlog");
	is(c->listeners[0].upstream, 0, "listener -> upstream 0");
	conf_free(c);

	c = load_text(
	    "workers = \"auto\";\nlog = { target = \"stderr\"; file = \"/x.log\"; };\n" UP LS, err,
	    sizeof(err));
	ok(c != NULL && c->workers_auto == 1 && c->workers == (unsigned)cpus, "workers = \"auto\"");
	ok(c != NULL && c->log_target == LOG_TARGET_STDERR && c->log_file == NULL,
	    "log.file is ignored unless target is \"file\"");
	conf_free(c);

	c = load_text("pool = { buffer_size = 512; max_memory = \"1G\"; };\n"
	              "timeouts = { connect = \"49d\"; idle = 1; drain = \"1ms\"; };\n" UP LS,
	    err, sizeof(err));
	ok(c != NULL && c->buffer_size == 512 && c->max_memory == 1024UL * 1024 * 1024,
	    "pool bounds: 512 bytes, 1G");
	ok(c != NULL && c->connect_timeout_ms == 49U * 86400000 && c->idle_timeout_ms == 1000 &&
	        c->drain_timeout_ms == 1,
	    "timeout bounds: 49d, 1 s, 1ms");
	conf_free(c);
	conf_free(NULL);
	ok(1, "conf_free(NULL) is harmless");
}

struct bad_case {
	const char *text;
	const char *want;
	const char *what;
};

static const struct bad_case bad_cases[] = {
    /* libconfig syntax */
    {"workers = ;\n", ":1: syntax error", "syntax error"},
    {"workers = 1;\nworkers = 2;\n", ":2: syntax error: duplicate setting name",
        "setting given twice"},
    /* unknown settings at every level */
    {"wrkers = 2;\n" UP LS,
        ":1: wrkers: unknown setting \"wrkers\" (expected workers, accept_workers, pid_file, "
        "stats_file, user, group, chroot, log, pool, limits, timeouts, upstreams, listeners, "
        "control, admin or dns)",
        "unknown top-level setting"},
    {"timeouts = {\n  connect = \"1s\";\n  idel = \"5s\";\n};\n" UP LS,
        ":3: timeouts.idel: unknown setting \"idel\" (expected connect, idle, drain, "
        "proxy_header, client_fin, server_fin, max_lifetime, max_lifetime_jitter or preread)",
        "unknown setting in a group"},
    {"log = { colour = true; };\n" UP LS,
        ":1: log.colour: unknown setting \"colour\" (expected target, file, facility, "
        "level, connections, format or syslog_socket)",
        "unknown log setting"},
    {"pool = { buffers = 4; };\n" UP LS,
        ":1: pool.buffers: unknown setting \"buffers\" (expected buffer_size, max_memory, splice, bulk_buffer_size or batch_writes)",
        "unknown pool setting"},
    {"limits = { max_conns = 4; };\n" UP LS,
        ":1: limits.max_conns: unknown setting \"max_conns\" (expected max_connections, max_connections_per_worker or source_table)",
        "unknown limits setting"},
    {"upstreams = ({ name = \"app\";\n  servers = (\"127.0.0.1:9000\");\n  check = true; });\n" LS,
        ":3: upstreams[0].check: unknown setting \"check\" (expected name, balance, servers, "
        "retries, max_fails, fail_timeout, health, keepalive, mark, source or transparent)",
        "unknown upstream setting"},
    {"upstreams = ({ name = \"app\"; servers = (\n  \"127.0.0.1:9000\",\n"
     "  { address = \"127.0.0.1:9001\"; spare = true; } ); });\n" LS,
        ":3: upstreams[0].servers[1].spare: unknown setting \"spare\" (expected address, "
        "weight, max_connections, backup, source, transparent, resolve or max_addresses)",
        "unknown server setting"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\";\n  proxy = true; });\n",
        ":3: listeners[0].proxy: unknown setting \"proxy\" (expected listen, upstream, backlog, "
        "proxy_protocol, accept_proxy, trusted, allow, deny, max_connections_per_source, "
        "rate_limit, v6only, fastopen, defer_accept, rcvbuf, sndbuf, keepalive, sni, "
        "proxy_tlv_pass, proxy_tlv, mode, owner, group or reuseport)",
        "unknown listener setting"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\";\n  reuseport = 1; });\n",
        ":3: listeners[0].reuseport: expected true or false", "reuseport not a boolean"},
    /* UNIX listeners and servers */
#define UL(extra) UP "listeners = ({ listen = \"unix:/run/x.sock\"; upstream = \"app\";\n" extra " });\n"
    {UL("mode = \"0999\";"), ":3: listeners[0].mode: must be octal permission bits as a string, "
        "such as \"0660\"", "unix mode not octal"},
    {UL("mode = 660;"), ":3: listeners[0].mode: must be octal permission bits as a string, "
        "such as \"0660\"", "unix mode as an int"},
    {UL("mode = \"01777\";"), ":3: listeners[0].mode: must be octal permission bits as a string, "
        "such as \"0660\"", "unix mode with sticky bits"},
    {UL("owner = \"no-such-user-x\";"), ":3: listeners[0].owner: unknown user \"no-such-user-x\"",
        "unix owner unknown"},
    {UL("group = \"no-such-group-x\";"),
        ":3: listeners[0].group: unknown group \"no-such-group-x\"", "unix group unknown"},
    {UL("fastopen = 16;"), ":3: listeners[0].fastopen: applies only to a TCP listen address",
        "fastopen on a unix listener"},
    {UL("reuseport = true;"),
        ":3: listeners[0].reuseport: applies only to a TCP listen address (Linux binds a UNIX "
        "socket file to one socket only: there is no reuseport group to spread connections "
        "over)",
        "reuseport on a unix listener"},
    {UL("keepalive = { idle = 5; };"),
        ":3: listeners[0].keepalive: applies only to a TCP listen address",
        "keepalive on a unix listener"},
    {UL("allow = (\"10.0.0.0/8\");"), ":3: listeners[0].allow: on a UNIX listener applies only "
        "with accept_proxy (a UNIX client has no IP address; the PROXY header names one)",
        "allow on a unix listener without accept_proxy"},
    {UL("accept_proxy = \"v1\"; trusted = (\"10.0.0.0/8\");"),
        ":3: listeners[0].trusted: does not apply to a UNIX listener (the socket's mode and "
        "owner say who may connect, and send a PROXY header)",
        "trusted on a unix listener"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\"; mode = \"0600\"; });\n",
        ":2: listeners[0].mode: applies only to a UNIX (\"unix:/path\") listen address",
        "mode on a TCP listener"},
    {UP "listeners = ({ listen = \"unix:run/x.sock\"; upstream = \"app\"; });\n",
        ":2: listeners[0].listen: invalid address \"unix:run/x.sock\": a UNIX socket path must "
        "be absolute (\"unix:/run/app.sock\")", "relative unix path"},
    {UP "listeners = ({ listen = \"unix:/a/" "0123456789012345678901234567890123456789"
        "0123456789012345678901234567890123456789" "01234567890123456789012345678\"; "
        "upstream = \"app\"; });\n",
        ":2: listeners[0].listen: invalid address \"unix:/a/0123456789012345678901234567890"
        "123456789012345678901234567890123456789012345678901234567890123456789012345678\": "
        "a UNIX socket path has at most 107 bytes (this one 112)", "unix path too long"},
    {UP "listeners = ({ listen = \"unix:/run/x.sock\"; upstream = \"app\"; },\n"
        "  { listen = \"unix:/run/x.sock\"; upstream = \"app\"; });\n",
        ":3: listeners[1].listen: duplicate listener address unix:/run/x.sock (also listeners[0])",
        "duplicate unix listener"},
    {"control = { socket = \"/run/x.sock\"; };\n" UP
        "listeners = ({ listen = \"unix:/run/x.sock\"; upstream = \"app\"; });\n",
        ":3: listeners[0].listen: unix:/run/x.sock is also control.socket",
        "unix listener on the control socket"},
    {"upstreams = ({ name = \"app\"; source = \"127.0.0.1\";\n"
        "  servers = (\"unix:/run/app.sock\"); });\n" LS,
        ":1: upstreams[0].source: applies only to TCP servers, and server unix:/run/app.sock is "
        "a UNIX socket", "source with a unix server"},
    {"upstreams = ({ name = \"app\"; keepalive = { idle = 5; };\n"
        "  servers = (\"unix:/run/app.sock\"); });\n" LS,
        ":1: upstreams[0].keepalive: applies only to TCP servers, and server unix:/run/app.sock "
        "is a UNIX socket", "keepalive with a unix server"},
    {"upstreams = ({ name = \"app\";\n  servers = ({ address = \"unix:/run/app.sock\"; "
        "transparent = true; }); });\n" LS,
        ":2: upstreams[0].servers[0].transparent: applies only to TCP servers, and server "
        "unix:/run/app.sock is a UNIX socket", "transparent on a unix server"},
    {UP "admin = { listen = \"unix:/run/admin.sock\"; };\n" LS,
        ":2: admin.listen: invalid address \"unix:/run/admin.sock\": a UNIX socket is not "
        "allowed here", "unix admin endpoint"},
#undef UL
    /* workers */
    {"workers = 0;\n" UP LS, ":1: workers: must be \"auto\" or between 1 and 128", "workers 0"},
    {"\nworkers = 129;\n" UP LS, ":2: workers: must be \"auto\" or between 1 and 128",
        "workers over the maximum"},
    {"workers = \"many\";\n" UP LS, ":1: workers: must be \"auto\" or an integer between 1 and 128",
        "workers garbage"},
    {"\naccept_workers = 0;\n" UP LS, ":2: accept_workers: must be \"auto\" or between 1 and 128",
        "accept_workers 0"},
    {"accept_workers = \"all\";\n" UP LS,
        ":1: accept_workers: must be \"auto\" or an integer between 1 and 128",
        "accept_workers garbage"},
    /* paths */
    {"pid_file = \"run/sluiced.pid\";\n" UP LS, ":1: pid_file: must be an absolute path",
        "relative pid_file"},
    {"stats_file = 5;\n" UP LS, ":1: stats_file: expected a string", "stats_file not a string"},
    /* log */
    {"log = {\n  target = \"file\";\n};\n" UP LS,
        ":1: log.file: file is required when target is \"file\"", "log file missing"},
    {"log = {\n  target = \"console\";\n};\n" UP LS,
        ":2: log.target: unknown target \"console\" (use syslog, stderr or file)", "bad target"},
    {"log = { level = \"verbose\"; };\n" UP LS,
        ":1: log.level: unknown level \"verbose\" (use error, warning, notice, info or debug)",
        "bad level"},
    {"log = { facility = \"local8\"; };\n" UP LS,
        ":1: log.facility: unknown facility \"local8\" (use daemon, user, local0, local1, local2, "
        "local3, local4, local5, local6 or local7)",
        "bad facility"},
    {"log = { target = \"file\"; file = \"sluice.log\"; };\n" UP LS,
        ":1: log.file: must be an absolute path", "relative log file"},
    {"log = \"syslog\";\n" UP LS, ":1: log: expected a group { ... }", "log not a group"},
    /* pool */
    {"pool = {\n  buffer_size = 100;\n};\n" UP LS,
        ":2: pool.buffer_size: must be between 512 and 1048576 bytes", "buffer too small"},
    {"pool = { buffer_size = \"2M\"; };\n" UP LS,
        ":1: pool.buffer_size: must be between 512 and 1048576 bytes", "buffer too big"},
    {"pool = {\n  bulk_buffer_size = \"4K\";\n};\n" UP LS,
        ":2: pool.bulk_buffer_size: must be 0 (none) or above buffer_size (4096) and at most "
        "1048576 bytes", "bulk buffer not above buffer_size"},
    {"pool = { bulk_buffer_size = \"2M\"; };\n" UP LS,
        ":1: pool.bulk_buffer_size: must be 0 (none) or above buffer_size (4096) and at most "
        "1048576 bytes", "bulk buffer too big"},
    {"pool = { buffer_size = \"4X\"; };\n" UP LS,
        ":1: pool.buffer_size: invalid size \"4X\" (use bytes, or a number with K, M or G)",
        "size garbage"},
    {"pool = { buffer_size = -4096; };\n" UP LS, ":1: pool.buffer_size: must not be negative",
        "negative size"},
    {"pool = { buffer_size = 4.5; };\n" UP LS,
        ":1: pool.buffer_size: expected a size (bytes, or a string such as \"4K\")",
        "size of the wrong type"},
    {"pool = { splice = \"yes\"; };\n" UP LS,
        ":1: pool.splice: expected true or false",
        "splice not a boolean"},
    {"pool = {\n  batch_writes = 1;\n};\n" UP LS,
        ":2: pool.batch_writes: expected true or false",
        "batch_writes not a boolean"},
    {"limits = { max_connections_per_worker = -1; };\n" UP LS,
        ":1: limits.max_connections_per_worker: must be between 0 and 10000000",
        "negative per-worker limit"},
    {"limits = { source_table = 20000000; };\n" UP LS,
        ":1: limits.source_table: must be between 0 and 16777216",
        "per-source table too large"},
    {"pool = { max_memory = \"64K\"; };\n" UP LS,
        ":1: pool.max_memory: must be at least 64 * buffer_size (262144 bytes)",
        "max_memory below 64 buffers"},
    {"pool = { max_memory = \"99999999999G\"; };\n" UP LS,
        ":1: pool.max_memory: size \"99999999999G\" is too large", "size overflow"},
    /* limits */
    {"limits = { max_connections = 0; };\n" UP LS,
        ":1: limits.max_connections: must be between 1 and 10000000", "max_connections 0"},
    {"limits = { max_connections = 10000001; };\n" UP LS,
        ":1: limits.max_connections: must be between 1 and 10000000", "max_connections too big"},
    {"limits = { max_connections = \"10\"; };\n" UP LS,
        ":1: limits.max_connections: expected an integer", "max_connections a string"},
    /* timeouts */
    {"timeouts = {\n  idle = \"10x\";\n};\n" UP LS,
        ":2: timeouts.idle: invalid duration \"10x\" (use ms, s, m, h or d)", "duration garbage"},
    {"timeouts = { connect = \"0s\"; };\n" UP LS, ":1: timeouts.connect: must be greater than 0",
        "zero duration string"},
    {"timeouts = { connect = 0; };\n" UP LS, ":1: timeouts.connect: must be greater than 0",
        "zero duration integer"},
    {"timeouts = { drain = \"50d\"; };\n" UP LS,
        ":1: timeouts.drain: duration \"50d\" is too long (at most 49 days)", "duration too long"},
    {"timeouts = { drain = 5000000; };\n" UP LS,
        ":1: timeouts.drain: 5000000 seconds is too long (at most 49 days)",
        "integer duration too long"},
    {"timeouts = { drain = 1.5; };\n" UP LS,
        ":1: timeouts.drain: expected a duration (seconds, or a string such as \"5s\")",
        "duration of the wrong type"},
    {"timeouts = 5;\n" UP LS, ":1: timeouts: expected a group { ... }", "timeouts not a group"},
    /* upstreams */
    {"workers = 1;\n" LS, ": upstreams: at least one upstream is required", "no upstreams"},
    {"upstreams = ();\n" LS, ":1: upstreams: at least one upstream is required", "empty upstreams"},
    {"upstreams = \"app\";\n" LS, ":1: upstreams: expected a list ( ... ) of upstreams",
        "upstreams not a list"},
    {"upstreams = ( \"app\" );\n" LS,
        ":1: upstreams[0]: expected a group { name = \"...\"; servers = ( ... ); }",
        "upstream not a group"},
    {"upstreams = (\n  { servers = (\"127.0.0.1:9000\"); });\n" LS,
        ":2: upstreams[0].name: an upstream needs a name", "upstream without a name"},
    {"upstreams = ({ name = \"a b\"; servers = (\"127.0.0.1:9000\"); });\n" LS,
        ":1: upstreams[0].name: invalid name \"a b\" (use 1 to 63 characters from A-Z a-z 0-9 _ . "
        "-)",
        "bad upstream name"},
    {"upstreams = ({ name = \"\"; servers = (\"127.0.0.1:9000\"); });\n" LS,
        ":1: upstreams[0].name: invalid name \"\" (use 1 to 63 characters from A-Z a-z 0-9 _ . -)",
        "empty upstream name"},
    {"upstreams = (\n  { name = \"app\"; servers = (\"127.0.0.1:9000\"); },\n"
     "  { name = \"app\"; servers = (\"127.0.0.1:9001\"); });\n" LS,
        ":3: upstreams[1].name: duplicate upstream name \"app\" (also upstreams[0])",
        "duplicate upstream"},
    {"upstreams = ({ name = \"app\"; balance = \"fastest\"; servers = (\"127.0.0.1:9000\"); "
     "});\n" LS,
        ":1: upstreams[0].balance: unknown balance \"fastest\" (use roundrobin, leastconn, "
        "source or random)",
        "unknown balance"},
    {"upstreams = (\n  { name = \"app\"; });\n" LS,
        ":2: upstreams[0].servers: at least one server is required", "no servers"},
    {"upstreams = ({ name = \"app\";\n  servers = (); });\n" LS,
        ":2: upstreams[0].servers: at least one server is required", "empty servers"},
    {"upstreams = ({ name = \"app\"; servers = (\n  \"127.0.0.1:9000\",\n"
     "  { address = \"127.0.0.1:70000\"; } ); });\n" LS,
        ":3: upstreams[0].servers[1].address: invalid address \"127.0.0.1:70000\": port 70000 is "
        "out of range 1..65535",
        "server port out of range"},
    {"upstreams = ({ name = \"app\"; servers = (\n  \"nohost\" ); });\n" LS,
        ":2: upstreams[0].servers[0]: invalid address \"nohost\": missing port",
        "bare server without port"},
    {"upstreams = ({ name = \"app\"; servers = (\"bad..host:80\"); });\n" LS,
        ":1: upstreams[0].servers[0]: invalid address \"bad..host:80\": cannot resolve "
        "\"bad..host\": Name or service not known",
        "unresolvable server"},
    {"upstreams = ({ name = \"app\"; servers = (\n  { address = \"127.0.0.1:9000\"; weight = 0; "
     "}); });\n" LS,
        ":2: upstreams[0].servers[0].weight: must be between 1 and 256", "weight 0"},
    {"upstreams = ({ name = \"app\"; servers = (\n  { weight = 2; }); });\n" LS,
        ":2: upstreams[0].servers[0].address: a server needs an address", "server without address"},
    {"upstreams = ({ name = \"app\"; servers = (\n  { address = 9000; }); });\n" LS,
        ":2: upstreams[0].servers[0].address: expected a string", "server address not a string"},
    {"upstreams = ({ name = \"app\"; servers = [ 9000 ]; });\n" LS,
        ":1: upstreams[0].servers[0]: expected \"host:port\" or a group { address = \"host:port\"; "
        "}",
        "server of the wrong type"},
    /* listeners */
    {UP, ": listeners: at least one listener is required", "no listeners"},
    {UP "listeners = (\n  { upstream = \"app\"; });\n",
        ":3: listeners[0].listen: a listener needs an address", "listener without address"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\";\n  upstream = \"nope\"; });\n",
        ":3: listeners[0].upstream: upstream \"nope\" is not defined", "undefined upstream"},
    {UP "listeners = (\n  { listen = \"127.0.0.1:8080\"; });\n",
        ":3: listeners[0].upstream: a listener needs an upstream", "listener without upstream"},
    {UP "listeners = (\n  { listen = \"127.0.0.1:8080\"; upstream = \"app\"; },\n"
        "  { listen = \"127.0.0.1:8080\"; upstream = \"app\"; });\n",
        ":4: listeners[1].listen: duplicate listener address 127.0.0.1:8080 (also listeners[0])",
        "duplicate listener"},
    {UP "listeners = (\n  { listen = \"*:8080\"; upstream = \"app\"; },\n"
        "  { listen = \"127.0.0.1:8080\"; upstream = \"app\"; });\n",
        ":4: listeners[1].listen: address 127.0.0.1:8080 overlaps 0.0.0.0:8080 (listeners[0])",
        "listener inside a wildcard"},
    {UP "listeners = ({ listen = \"localhost:8080\"; upstream = \"app\"; });\n",
        ":2: listeners[0].listen: invalid address \"localhost:8080\": \"localhost\" is not a "
        "numeric "
        "address (use an IPv4 address, \"[IPv6]\" or \"*\")",
        "listener host name"},
    {UP "listeners = ({ listen = \"::1:8080\"; upstream = \"app\"; });\n",
        ":2: listeners[0].listen: invalid address \"::1:8080\": IPv6 addresses need brackets, "
        "e.g. \"[::1]:80\"",
        "IPv6 listener without brackets"},
    {UP "listeners = ({ listen = \"127.0.0.1:0\"; upstream = \"app\"; });\n",
        ":2: listeners[0].listen: invalid address \"127.0.0.1:0\": port 0 is out of range 1..65535",
        "listener port 0"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\"; backlog = 0; });\n",
        ":2: listeners[0].backlog: must be between 1 and 65535", "backlog 0"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\"; backlog = 65536; });\n",
        ":2: listeners[0].backlog: must be between 1 and 65535", "backlog too big"},
    {UP "listeners = ( \"127.0.0.1:8080\" );\n",
        ":2: listeners[0]: expected a group { listen = \"host:port\"; upstream = \"...\"; }",
        "listener not a group"},
    /* the edge: PROXY protocol, access lists, limits, connection log */
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\";\n"
        "  proxy_protocol = \"v3\"; });\n",
        ":3: listeners[0].proxy_protocol: unknown proxy_protocol \"v3\" (use v1 or v2)",
        "proxy_protocol v3"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\";\n"
        "  proxy_protocol = \"any\"; });\n",
        ":3: listeners[0].proxy_protocol: unknown proxy_protocol \"any\" (use v1 or v2)",
        "proxy_protocol any (sending needs one version)"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\";\n"
        "  accept_proxy = \"v2\"; });\n",
        ":2: listeners[0].trusted: accept_proxy needs the networks allowed to send the header, "
        "e.g. trusted = ( \"10.0.0.0/8\" )",
        "accept_proxy without trusted"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\";\n"
        "  trusted = ( \"10.0.0.0/8\" ); });\n",
        ":3: listeners[0].trusted: trusted applies only with accept_proxy",
        "trusted without accept_proxy"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\";\n"
        "  accept_proxy = true; trusted = ( \"::1\" ); });\n",
        ":3: listeners[0].accept_proxy: expected a string", "accept_proxy a boolean"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\";\n"
        "  allow = ( \"10.0.0.1/8\" ); });\n",
        ":3: listeners[0].allow[0]: invalid network \"10.0.0.1/8\": host bits set past /8 "
        "(did you mean 10.0.0.0/8?)",
        "allow with host bits"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\";\n"
        "  deny = ( \"::1\", \"2001:db8::/129\" ); });\n",
        ":3: listeners[0].deny[1]: invalid network \"2001:db8::/129\": prefix length 129 is "
        "out of range 0..128",
        "deny prefix too long"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\";\n"
        "  deny = ( 10 ); });\n",
        ":3: listeners[0].deny[0]: expected a string", "deny entry not a string"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\";\n"
        "  allow = \"10.0.0.0/8\"; });\n",
        ":3: listeners[0].allow: expected a list ( \"10.0.0.0/8\", \"::1\", ... )",
        "allow not a list"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\";\n"
        "  allow = ( ); });\n",
        ":3: listeners[0].allow: at least one network is required", "empty allow"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\";\n"
        "  rate_limit = -1; });\n",
        ":3: listeners[0].rate_limit: must be between 0 and 10000000", "negative rate_limit"},
    {UP "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\";\n"
        "  max_connections_per_source = \"5\"; });\n",
        ":3: listeners[0].max_connections_per_source: expected an integer",
        "max_connections_per_source a string"},
    {"log = { connections = \"yes\"; };\n" UP LS,
        ":1: log.connections: expected true or false", "log.connections not a boolean"},
    {"log = {\n connections = true;\n format = \"$client $nosuch\"; };\n" UP LS,
        ":3: log.format: unknown field \"$nosuch\"", "log.format with an unknown field"},
    {"log = { format = \"cost: 5$\"; };\n" UP LS,
        ":1: log.format: \"$\" must start a field name ($name or ${name}); write $$ "
        "for a dollar sign",
        "log.format with a lone $"},
    {"log = { format = \"${client\"; };\n" UP LS,
        ":1: log.format: \"${client\" is not closed by \"}\"", "log.format with an open ${"},
    {"log = { format = 7; };\n" UP LS, ":1: log.format: expected a string",
        "log.format not a string"},
    {"log = { syslog_socket = \"dev/log\"; };\n" UP LS,
        ":1: log.syslog_socket: must be an absolute path", "relative log.syslog_socket"},
    {"log = { syslog_socket = \"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"; };\n" UP LS,
        ":1: log.syslog_socket: longer than 107 characters", "log.syslog_socket too long"},
    {"timeouts = { proxy_header = \"0s\"; };\n" UP LS,
        ":1: timeouts.proxy_header: must be greater than 0", "proxy_header timeout 0"},
    {UP LS "admin = { };\n", ":3: admin.listen: the admin endpoint needs an address",
        "admin without listen"},
    {UP LS "admin = { listen = \"127.0.0.1:99999\"; };\n",
        ":3: admin.listen: invalid address \"127.0.0.1:99999\": port 99999 is out of range "
        "1..65535",
        "admin port out of range"},
    {UP LS "admin = { listen = \"localhost:9145\"; };\n",
        ":3: admin.listen: invalid address \"localhost:9145\": \"localhost\" is not a "
        "numeric address (use an IPv4 address, \"[IPv6]\" or \"*\")",
        "admin host name"},
    {UP LS "admin = { listen = \"127.0.0.1:8080\"; };\n",
        ":3: admin.listen: address 127.0.0.1:8080 is also listeners[0]'s",
        "admin on a listener's address"},
    {UP LS "admin = { listen = \"127.0.0.1:9145\"; port = 1; };\n",
        ":3: admin.port: unknown setting \"port\" (expected listen)", "unknown admin setting"},
    {UP LS "admin = \"127.0.0.1:9145\";\n", ":3: admin: expected a group { ... }",
        "admin not a group"},
};

/* admin.listen is read; without the section there is no endpoint. */
static void
test_admin(void)
{
	char err[1024];
	struct conf *c;

	c = load_text(UP LS "admin = { listen = \"127.0.0.1:9145\"; };\n", err, sizeof(err));
	if (!ok(c != NULL, "a config with an admin section loads"))
		diag("  error: %s", err);
	ok(c != NULL && c->admin_address != NULL &&
	       strcmp(c->admin_address, "127.0.0.1:9145") == 0 && c->admin_addrlen > 0 &&
	       ((struct sockaddr_in *)&c->admin_addr)->sin_port == htons(9145),
	    "admin.listen is read and parsed");
	conf_free(c);
	c = load_text(UP LS, err, sizeof(err));
	ok(c != NULL && c->admin_address == NULL, "no admin section: no admin endpoint");
	conf_free(c);
}

/* Every edge setting of a listener, and their defaults on another. */
/* Bulk buffers have a quarter of max_memory when that holds 256 of them,
 * else none; accept_workers is read as written. */
static void
test_bulk(void)
{
	static const struct {
		const char *text;
		size_t bulk, share;
		const char *name;
	} cases[] = {
		{"pool = { max_memory = \"32M\"; };\n", 32768, 8u << 20, "32M: 8M of bulk buffers"},
		{"pool = { max_memory = \"31M\"; };\n", 32768, 0, "31M: too little for 256 bulk buffers"},
		{"pool = { bulk_buffer_size = 0; };\n", 0, 0, "bulk_buffer_size 0: none"},
		{"pool = { buffer_size = \"64K\"; };\n", 0, 0, "buffer_size 64K: the default is none"},
		{"pool = { bulk_buffer_size = \"1M\"; };\n", 1u << 20, 0,
		    "1M bulk buffers in 256M: too few"},
		{"pool = { bulk_buffer_size = \"1M\"; max_memory = \"1G\"; };\n", 1u << 20,
		    256u << 20, "1M bulk buffers in 1G: 256M"},
	};
	char err[1024];
	struct conf *c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512];

		snprintf(text, sizeof(text), "%s%s%s", cases[i].text, UP, LS);
		c = load_text(text, err, sizeof(err));
		if (!ok(c != NULL, "%s: loads", cases[i].name)) {
			diag("  error: %s", err);
			continue;
		}
		ok(c->bulk_buffer_size == cases[i].bulk && c->bulk_memory == cases[i].share,
		    "%s (%zu, %zu)", cases[i].name, c->bulk_buffer_size, c->bulk_memory);
		conf_free(c);
	}
	snprintf(err, sizeof(err), "workers = 8;\naccept_workers = 3;\n%s%s", UP, LS);
	c = load_text(err, err, sizeof(err));
	if (ok(c != NULL, "accept_workers = 3 loads"))
		ok(c->workers == 8 && c->accept_workers == 3, "accept_workers is read");
	conf_free(c);
}

static void
test_edge(void)
{
	char err[1024];
	struct conf *c;

	c = load_text("log = { connections = true; };\n"
		      "timeouts = { proxy_header = \"1500ms\"; };\n" UP
		      "listeners = (\n"
		      "  { listen = \"127.0.0.1:8080\"; upstream = \"app\";\n"
		      "    proxy_protocol = \"v2\"; accept_proxy = \"any\";\n"
		      "    trusted = ( \"10.0.0.0/8\", \"::1\" );\n"
		      "    allow = [ \"0.0.0.0/0\" ]; deny = ( \"192.0.2.0/24\", \"2001:db8::/32\", "
		      "\"127.0.0.2\" );\n"
		      "    max_connections_per_source = 10; rate_limit = 100; },\n"
		      "  { listen = \"127.0.0.1:8081\"; upstream = \"app\"; proxy_protocol = \"v1\"; "
		      "accept_proxy = \"v1\"; trusted = ( \"::/0\" ); } );\n",
	    err, sizeof(err));
	if (!ok(c != NULL, "a config with every edge setting loads")) {
		diag("  error: %s", err);
		return;
	}
	ok(c->log_connections == 1 && c->proxy_header_timeout_ms == 1500,
	    "log.connections and timeouts.proxy_header are read");
	ok(c->listeners[0].proxy_send == 2 && c->listeners[0].proxy_accept == 3 &&
	       c->listeners[1].proxy_send == 1 && c->listeners[1].proxy_accept == 1,
	    "proxy_protocol and accept_proxy are read (v2/any, v1/v1)");
	ok(c->listeners[0].ntrusted == 2 && c->listeners[0].nallow == 1 &&
	       c->listeners[0].ndeny == 3 && c->listeners[1].ntrusted == 1,
	    "trusted, allow (an array) and deny lists are read");
	ok(c->listeners[0].max_per_source == 10 && c->listeners[0].rate_limit == 100 &&
	       c->listeners[1].max_per_source == 0 && c->listeners[1].rate_limit == 0,
	    "max_connections_per_source and rate_limit are read, 0 by default");
	conf_free(c);

	c = load_text(UP LS, err, sizeof(err));
	ok(c != NULL && c->log_connections == 0 && c->proxy_header_timeout_ms == 5000 &&
	       c->listeners[0].proxy_send == 0 && c->listeners[0].proxy_accept == 0 &&
	       c->listeners[0].nallow == 0 && c->listeners[0].ndeny == 0 &&
	       c->listeners[0].ntrusted == 0,
	    "edge defaults: no log lines, 5 s header deadline, no PROXY, no lists");
	conf_free(c);
}

/* UNIX listeners and servers: their settings, and what TCP ones default to. */
static void
test_unix(void)
{
	char err[1024];
	struct conf *c;

	c = load_text("upstreams = ({ name = \"app\"; servers = (\"unix:/run/app.sock\",\n"
		      "  { address = \"unix:/run/b.sock\"; weight = 2; }); });\n"
		      "listeners = (\n"
		      "  { listen = \"unix:/run/x.sock\"; upstream = \"app\"; mode = \"0660\";\n"
		      "    owner = \"root\"; group = \"root\"; accept_proxy = \"v2\";\n"
		      "    allow = ( \"10.0.0.0/8\" ); max_connections_per_source = 3;\n"
		      "    rate_limit = 50; backlog = 64; rcvbuf = \"64K\"; },\n"
		      "  { listen = \"unix:/run/y.sock\"; upstream = \"app\"; proxy_protocol = \"v1\"; },\n"
		      "  { listen = \"127.0.0.1:8080\"; upstream = \"app\"; } );\n",
	    err, sizeof(err));
	if (!ok(c != NULL, "a config with UNIX listeners and servers loads")) {
		diag("  error: %s", err);
		return;
	}
	ok(c->upstreams[0].servers[0].addr.ss_family == AF_UNIX &&
	       strcmp(c->upstreams[0].servers[1].address, "unix:/run/b.sock") == 0 &&
	       c->upstreams[0].servers[1].weight == 2,
	    "UNIX servers are read, bare or as a group");
	ok(c->listeners[0].addr.ss_family == AF_UNIX && c->listeners[0].unix_mode == 0660 &&
	       c->listeners[0].unix_uid == 0 && c->listeners[0].unix_gid == 0,
	    "a UNIX listener's mode, owner and group are read and looked up");
	ok(c->listeners[0].proxy_accept == 2 && c->listeners[0].ntrusted == 0 &&
	       c->listeners[0].nallow == 1 && c->listeners[0].max_per_source == 3 &&
	       c->listeners[0].rate_limit == 50 && c->listeners[0].backlog == 64 &&
	       c->listeners[0].rcvbuf == 65536,
	    "accept_proxy without trusted, allow, per-source and rate limits, backlog, rcvbuf");
	ok(c->listeners[1].unix_mode == -1 && c->listeners[1].unix_uid == (uid_t)-1 &&
	       c->listeners[1].unix_gid == (gid_t)-1 && c->listeners[1].proxy_send == 1,
	    "mode, owner and group default to unset");
	ok(c->listeners[2].unix_mode == -1 && c->listeners[2].unix_uid == (uid_t)-1,
	    "and are unset on a TCP listener");
	conf_free(c);
}

static void
test_control(void)
{
	char err[1024];
	struct conf *c;

	c = load_text(UP LS "control = { socket = \"/run/sluice/ctl\"; };\n", err, sizeof(err));
	if (!ok(c != NULL, "a control group with the socket alone loads"))
		diag("  error: %s", err);
	ok(c != NULL && strcmp(c->control_socket, "/run/sluice/ctl") == 0 &&
	       c->control_mode == 0660 && c->control_group == NULL &&
	       strcmp(c->state_file, "/run/sluice/server-state") == 0,
	    "control defaults: mode 0660, the master's group, server-state beside the socket");
	conf_free(c);
	c = load_text(UP LS "control = { socket = \"/a/ctl\"; mode = \"0600\"; group = \"root\"; "
	                    "state_file = \"/var/lib/sluice/state\"; };\n",
	    err, sizeof(err));
	ok(c != NULL && c->control_mode == 0600 && strcmp(c->control_group, "root") == 0 &&
	       c->control_gid == 0 && strcmp(c->state_file, "/var/lib/sluice/state") == 0,
	    "control settings are read");
	conf_free(c);
	c = load_text(UP LS, err, sizeof(err));
	ok(c != NULL && c->control_socket == NULL && c->state_file == NULL,
	    "no control group: no control socket");
	conf_free(c);
	c = load_text(UP LS "control = { socket = \"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"; };\n",
	    err, sizeof(err));
	ok(c == NULL && strstr(err, "control.socket: a UNIX socket path has at most 107 bytes") != NULL,
	    "a socket path too long for sockaddr_un is refused (%s)", err);
	conf_free(c);
}

static void
test_bad(void)
{
	size_t i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		bad(bad_cases[i].text, bad_cases[i].want, bad_cases[i].what);
}

static void
test_files(void)
{
	char err[1024], want[PATH_MAX + 2048], missing[PATH_MAX + 32];
	struct conf *c;

	snprintf(missing, sizeof(missing), "%s/missing.conf", tmpdir);
	errno = 0;
	c = conf_load(missing, err, sizeof(err));
	snprintf(want, sizeof(want), "%s: cannot open: %s", missing, strerror(ENOENT));
	ok(c == NULL && errno == ENOENT, "a missing file fails with ENOENT");
	is_str(err, want, "  and says so");

	c = conf_load(tmpdir, err, sizeof(err));
	snprintf(want, sizeof(want), "%s: is a directory", tmpdir);
	ok(c == NULL, "a directory is not a config file");
	is_str(err, want, "  and says so");

	/* @include is relative to the including file, and errors inside an
	 * included file name that file. */
	write_file(include_path, UP);
	c = load_text("@include \"up.inc\"\n" LS, err, sizeof(err));
	ok(c != NULL && c->nupstreams == 1, "@include next to the file works");
	if (c == NULL)
		diag("  error: %s", err);
	conf_free(c);
	write_file(
	    include_path, "\nupstreams = ({ name = \"app\"; servers = (\"127.0.0.1:0\"); });\n");
	c = load_text("@include \"up.inc\"\n" LS, err, sizeof(err));
	snprintf(want, sizeof(want),
	    "%s:2: upstreams[0].servers[0]: invalid address "
	    "\"127.0.0.1:0\": port 0 is out of range 1..65535",
	    include_path);
	ok(c == NULL, "an error in an included file fails the load");
	is_str(err, want, "  and names the included file and its line");
	unlink(include_path);
}

static void
test_example(void)
{
	const char *top = getenv("TOP_SRCDIR");
	char path[PATH_MAX], err[1024] = "";
	const char *load;
	struct conf *c;

	snprintf(path, sizeof(path), "%s/etc/sluice.conf", top != NULL && *top != '\0' ? top : ".");
	/* The example's workers run as the "sluice" system user (sysusers.d,
	 * created by the package). It is named whether or not it exists here;
	 * without it, the rest is checked on a copy that does not set it. */
	load = path;
	c = conf_peek(path, err, sizeof(err));
	ok(c != NULL && c->user != NULL && strcmp(c->user, "sluice") == 0,
	    "example runs its workers as user sluice");
	conf_free(c);
	if (getpwnam("sluice") == NULL) {
		char *text = NULL, *at;
		size_t len = 0;
		FILE *f = fopen(path, "r");

		if (f == NULL || getdelim(&text, &len, '\0', f) == -1)
			bail("cannot read %s", path);
		fclose(f);
		if ((at = strstr(text, "\nuser = \"sluice\";")) != NULL)
			at[1] = '#';
		write_file(conf_path, text);
		free(text);
		load = conf_path;
	}
	c = conf_load(load, err, sizeof(err));
	if (!ok(c != NULL, "%s loads", path)) {
		diag("  error: %s", err);
		return;
	}
	ok(c->nlisteners == 1 && addr_is(&c->listeners[0].addr, "127.0.0.1:8080"),
	    "example listens on 127.0.0.1:8080");
	ok(c->nupstreams == 1 && strcmp(c->upstreams[0].name, "demo") == 0 &&
	        c->upstreams[0].nservers == 1 &&
	        addr_is(&c->upstreams[0].servers[0].addr, "127.0.0.1:9000"),
	    "example upstream demo -> 127.0.0.1:9000");
	ok(c->workers_auto && c->log_target == LOG_TARGET_SYSLOG &&
	        strcmp(c->pid_file, "/run/sluice/sluiced.pid") == 0 &&
	        strcmp(c->stats_file, "/run/sluice/stats") == 0,
	    "example workers, log, pid and stats files");
	/* The example documents the defaults, so it must equal them. */
	ok(c->buffer_size == 4096 && c->max_memory == 256UL * 1024 * 1024 &&
	        c->max_connections == 10000 && c->connect_timeout_ms == 5000 &&
	        c->idle_timeout_ms == 600000 && c->drain_timeout_ms == 30000 &&
	        c->log_facility == LOG_DAEMON && c->log_level == LOG_LEVEL_INFO &&
	        c->listeners[0].backlog == 511 && c->upstreams[0].servers[0].weight == 1,
	    "example shows the defaults");
	conf_free(c);
}

struct size_case {
	const char *text;
	int rc, err;
	uint64_t value;
};

static const struct size_case size_cases[] = {
    {"4096", 0, 0, 4096},
    {"0", 0, 0, 0},
    {"4K", 0, 0, 4096},
    {"4k", 0, 0, 4096},
    {"4KB", 0, 0, 4096},
    {"4kb", 0, 0, 4096},
    {"512B", 0, 0, 512},
    {"256M", 0, 0, 256ULL << 20},
    {"1G", 0, 0, 1ULL << 30},
    {"1g", 0, 0, 1ULL << 30},
    {"18446744073709551615", 0, 0, UINT64_MAX},
    {"17179869183G", 0, 0, 17179869183ULL << 30},
    {"", -1, EINVAL, 0},
    {"-1", -1, EINVAL, 0},
    {"+4", -1, EINVAL, 0},
    {" 4K", -1, EINVAL, 0},
    {"4K ", -1, EINVAL, 0},
    {"4 K", -1, EINVAL, 0},
    {"4X", -1, EINVAL, 0},
    {"K", -1, EINVAL, 0},
    {"4.5K", -1, EINVAL, 0},
    {"1T", -1, EINVAL, 0},
    {"4KK", -1, EINVAL, 0},
    {"0x10", -1, EINVAL, 0},
    {"18446744073709551616", -1, ERANGE, 0},
    {"17179869184G", -1, ERANGE, 0},
    {"99999999999999999999999K", -1, ERANGE, 0},
};

static const struct size_case duration_cases[] = {
    {"500ms", 0, 0, 500},
    {"5s", 0, 0, 5000},
    {"10m", 0, 0, 600000},
    {"1h", 0, 0, 3600000},
    {"2d", 0, 0, 172800000},
    {"30", 0, 0, 30000},
    {"0", 0, 0, 0},
    {"0ms", 0, 0, 0},
    {"49d", 0, 0, 4233600000ULL},
    {"4294967295ms", 0, 0, 4294967295ULL},
    {"", -1, EINVAL, 0},
    {"10x", -1, EINVAL, 0},
    {"-5s", -1, EINVAL, 0},
    {"5 s", -1, EINVAL, 0},
    {" 5s", -1, EINVAL, 0},
    {"1.5s", -1, EINVAL, 0},
    {"s", -1, EINVAL, 0},
    {"ms", -1, EINVAL, 0},
    {"5sec", -1, EINVAL, 0},
    {"5S", -1, EINVAL, 0},
    {"5mss", -1, EINVAL, 0},
    {"50d", -1, ERANGE, 0},
    {"4294967296ms", -1, ERANGE, 0},
    {"4294968", -1, ERANGE, 0},
    {"99999999999999999999999s", -1, ERANGE, 0},
};

static void
test_parsers(void)
{
	uint64_t v;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
		const struct size_case *t = &size_cases[i];

		v = 12345;
		errno = 0;
		rc = conf_parse_size(t->text, &v);
		if (t->rc == 0)
			ok(rc == 0 && v == t->value, "size \"%s\" = %llu", t->text,
			    (unsigned long long)t->value);
		else
			ok(rc == -1 && errno == t->err && v == 12345, "size \"%s\" fails with %s",
			    t->text, t->err == ERANGE ? "ERANGE" : "EINVAL");
	}
	for (i = 0; i < sizeof(duration_cases) / sizeof(duration_cases[0]); i++) {
		const struct size_case *t = &duration_cases[i];

		v = 12345;
		errno = 0;
		rc = conf_parse_duration(t->text, &v);
		if (t->rc == 0)
			ok(rc == 0 && v == t->value, "duration \"%s\" = %llu ms", t->text,
			    (unsigned long long)t->value);
		else
			ok(rc == -1 && errno == t->err && v == 12345,
			    "duration \"%s\" fails with %s", t->text,
			    t->err == ERANGE ? "ERANGE" : "EINVAL");
	}
	ok(conf_parse_size(NULL, &v) == -1 && errno == EINVAL, "size NULL fails");
	ok(conf_parse_duration(NULL, &v) == -1 && errno == EINVAL, "duration NULL fails");
}

int
main(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/t_conf.XXXXXX",
	    base != NULL && *base != '\0' ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		bail("mkdtemp %s: %s", tmpdir, strerror(errno));
	snprintf(conf_path, sizeof(conf_path), "%s/sluice.conf", tmpdir);
	snprintf(include_path, sizeof(include_path), "%s/up.inc", tmpdir);

	test_parsers();
	test_full();
	test_minimal();
	test_bad();
	test_bulk();
	test_edge();
	test_unix();
	test_control();
	test_admin();
	test_files();
	test_example();

	unlink(conf_path);
	unlink(include_path);
	if (rmdir(tmpdir) == -1)
		diag("cannot remove %s: %s", tmpdir, strerror(errno));
	done_testing();
	return tap_exit();
}
