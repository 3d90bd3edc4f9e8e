/* SPDX-License-Identifier: BSD-2-Clause */
/* t_addr.c — unit test for common/addr.c: parsing good and bad "host:port"
 * text, formatting round trips and address equality. Runs alone with no
 * daemon; must never resolve a name through the network (only /etc/hosts
 * "localhost" and names glibc rejects before sending a query). */
#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"
#include "tap.h"

struct good {
	const char *text;
	int flags;
	int family;
	const char *formatted;
};

struct bad {
	const char *text;
	int flags;
	const char *error;
};

#define NW (ADDR_NUMERIC | ADDR_WILDCARD)

static const struct good goods[] = {
    {"127.0.0.1:80", 0, AF_INET, "127.0.0.1:80"},
    {"1.2.3.4:65535", ADDR_NUMERIC, AF_INET, "1.2.3.4:65535"},
    {"10.0.0.1:1", NW, AF_INET, "10.0.0.1:1"},
    {"127.0.0.1:00080", 0, AF_INET, "127.0.0.1:80"},
    {"*:80", NW, AF_INET, "0.0.0.0:80"},
    {"0.0.0.0:8080", ADDR_WILDCARD, AF_INET, "0.0.0.0:8080"},
    {"[::1]:80", ADDR_NUMERIC, AF_INET6, "[::1]:80"},
    {"[::]:8080", NW, AF_INET6, "[::]:8080"},
    {"[2001:db8::1]:443", 0, AF_INET6, "[2001:db8::1]:443"},
    {"[::ffff:127.0.0.1]:9000", ADDR_NUMERIC, AF_INET6, "[::ffff:127.0.0.1]:9000"},
};

static const struct bad bads[] = {
    {"", 0, "empty address"},
    {"127.0.0.1", 0, "missing port"},
    {"127.0.0.1:", NW, "missing port"},
    {"127.0.0.1:0", 0, "port 0 is out of range 1..65535"},
    {"127.0.0.1:70000", 0, "port 70000 is out of range 1..65535"},
    {"127.0.0.1:99999999999999999999", 0, "port 99999999999999999999 is out of range 1..65535"},
    {"127.0.0.1:http", 0, "invalid port \"http\" (use a number 1..65535)"},
    {"127.0.0.1:-1", 0, "invalid port \"-1\" (use a number 1..65535)"},
    {"127.0.0.1: 80", 0, "invalid port \" 80\" (use a number 1..65535)"},
    {"127.0.0.1:80x", 0, "invalid port \"80x\" (use a number 1..65535)"},
    {"::1:80", 0, "IPv6 addresses need brackets, e.g. \"[::1]:80\""},
    {"fe80::1", NW, "IPv6 addresses need brackets, e.g. \"[::1]:80\""},
    {"[::1]", 0, "missing port"},
    {"[::1", 0, "missing \"]\" after IPv6 address"},
    {"[::1]80", 0, "expected \":port\" after \"]\""},
    {"[::1]:", 0, "missing port"},
    {"[1.2.3.4]:80", 0, "invalid IPv6 address \"1.2.3.4\""},
    {"[zz::1]:80", 0, "invalid IPv6 address \"zz::1\""},
    {"[]:80", 0, "missing host"},
    {":80", NW, "missing host"},
    {"*:80", ADDR_NUMERIC, "wildcard \"*\" is not allowed here"},
    {"*:80", 0, "wildcard \"*\" is not allowed here"},
    {"0.0.0.0:80", 0, "wildcard address \"0.0.0.0\" is not allowed here"},
    {"[::]:80", ADDR_NUMERIC, "wildcard address \"::\" is not allowed here"},
    {"localhost:80", NW,
        "\"localhost\" is not a numeric address (use an IPv4 address, \"[IPv6]\" or \"*\")"},
    {"127.1:80", ADDR_NUMERIC,
        "\"127.1\" is not a numeric address (use an IPv4 address, \"[IPv6]\" or \"*\")"},
    {"999.1.1.1:80", ADDR_NUMERIC,
        "\"999.1.1.1\" is not a numeric address (use an IPv4 address, \"[IPv6]\" or \"*\")"},
};

static void
test_good(void)
{
	struct sockaddr_storage ss, again;
	socklen_t len, len2;
	char err[256], buf[ADDR_STRLEN];
	size_t i;

	for (i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		const struct good *g = &goods[i];
		int rc;

		err[0] = '\0';
		rc = addr_parse(g->text, g->flags, &ss, &len, err, sizeof(err));
		if (!ok(rc == 0, "parse \"%s\"", g->text)) {
			diag("  error: %s", err);
			continue;
		}
		is(ss.ss_family, g->family, "\"%s\" family", g->text);
		is(len,
		    g->family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6),
		    "\"%s\" length", g->text);
		is_str(addr_format((struct sockaddr *)&ss, buf, sizeof(buf)), g->formatted,
		    "\"%s\" formats", g->text);
		/* What addr_format writes must parse back to the same address. */
		rc = addr_parse(buf, NW, &again, &len2, err, sizeof(err));
		ok(rc == 0 && len2 == len &&
		        addr_equal((struct sockaddr *)&ss, (struct sockaddr *)&again),
		    "\"%s\" round-trips", buf);
	}
}

static void
test_bad(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct bad *b = &bads[i];

		strcpy(err, "(unset)");
		is(addr_parse(b->text, b->flags, &ss, &len, err, sizeof(err)), -1,
		    "\"%s\" (flags %d) is rejected", b->text, b->flags);
		is_str(err, b->error, "\"%s\" error text", b->text);
	}
	memset(err, 'x', sizeof(err));
	err[0] = '\0';
	ok(addr_parse(NULL, 0, &ss, &len, err, sizeof(err)) == -1 &&
	        strcmp(err, "empty address") == 0,
	    "NULL text is rejected");
	ok(addr_parse("1.2.3.4", 0, &ss, &len, NULL, 0) == -1, "a NULL error buffer is fine");
	ok(addr_parse("1.2.3.4:0", 0, &ss, &len, err, 8) == -1 && strlen(err) == 7,
	    "a short error buffer is truncated, not overrun");
}

static void
test_names(void)
{
	char longname[2100], err[256], want[256], buf[ADDR_STRLEN];
	struct sockaddr_storage ss;
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	socklen_t len;
	int rc, loopback = 0;

	/* /etc/hosts: never leaves the machine. */
	rc = addr_parse("localhost:9000", 0, &ss, &len, err, sizeof(err));
	if (!ok(rc == 0, "localhost:9000 resolves"))
		diag("  error: %s", err);
	if (rc == 0 && ss.ss_family == AF_INET) {
		sin = (struct sockaddr_in *)&ss;
		loopback =
		    (ntohl(sin->sin_addr.s_addr) >> 24) == 127 && ntohs(sin->sin_port) == 9000;
	} else if (rc == 0 && ss.ss_family == AF_INET6) {
		sin6 = (struct sockaddr_in6 *)&ss;
		loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) && ntohs(sin6->sin6_port) == 9000;
	}
	ok(loopback, "localhost:9000 is a loopback address with port 9000");

	/* glibc refuses an empty label before sending any query. */
	snprintf(want, sizeof(want), "cannot resolve \"bad..host\": %s", gai_strerror(EAI_NONAME));
	is(addr_parse("bad..host:80", 0, &ss, &len, err, sizeof(err)), -1,
	    "an unresolvable name is rejected");
	is_str(err, want, "its error names the host and gai_strerror's reason");

	memset(longname, 'a', sizeof(longname));
	strcpy(longname + 2000, ":80");
	is(addr_parse(longname, 0, &ss, &len, err, sizeof(err)), -1,
	    "a 2000-byte host is rejected");
	is_str(err, "host name is too long", "with a reason");

	if (if_nametoindex("lo") == 0) {
		skip(2, "no interface \"lo\" for a scoped address");
		return;
	}
	rc = addr_parse("[fe80::1%lo]:80", ADDR_NUMERIC, &ss, &len, err, sizeof(err));
	ok(rc == 0 && ((struct sockaddr_in6 *)&ss)->sin6_scope_id == if_nametoindex("lo"),
	    "a scoped link-local address keeps its scope");
	is_str(rc == 0 ? addr_format((struct sockaddr *)&ss, buf, sizeof(buf)) : "",
	    "[fe80::1%lo]:80", "and formats with it");
}

static void
test_equal(void)
{
	struct sockaddr_storage a, b;
	socklen_t len;
	char err[256], buf[ADDR_STRLEN];
	struct sockaddr_storage un;

#define P(text, ss) addr_parse((text), ADDR_NUMERIC | ADDR_WILDCARD, (ss), &len, err, sizeof(err))
	P("127.0.0.1:80", &a);
	P("127.0.0.1:80", &b);
	is(addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b), 1,
	    "same IPv4 address and port");
	P("127.0.0.1:81", &b);
	is(addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b), 0, "IPv4: other port");
	P("127.0.0.2:80", &b);
	is(addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b), 0, "IPv4: other address");
	P("*:80", &b);
	P("0.0.0.0:80", &a);
	is(addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b), 1, "\"*\" equals 0.0.0.0");
	P("[::ffff:127.0.0.1]:80", &a);
	P("127.0.0.1:80", &b);
	is(addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b), 0,
	    "a v4-mapped IPv6 address is another family");
	P("[::1]:80", &a);
	P("[0:0::1]:80", &b);
	is(addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b), 1,
	    "same IPv6 address and port");
	P("[::1]:81", &b);
	is(addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b), 0, "IPv6: other port");
	P("[::2]:80", &b);
	is(addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b), 0, "IPv6: other address");
	is(addr_equal((struct sockaddr *)&a, NULL), 0, "NULL is equal to nothing");
#undef P

	memset(&un, 0, sizeof(un));
	un.ss_family = AF_UNIX;
	is(addr_equal((struct sockaddr *)&un, (struct sockaddr *)&un), 0,
	    "unnamed UNIX sockets are never equal");
	is_str(addr_format((struct sockaddr *)&un, buf, sizeof(buf)), "unix:",
	    "an unnamed UNIX socket formats as \"unix:\"");
	un.ss_family = AF_APPLETALK;
	is(addr_equal((struct sockaddr *)&un, (struct sockaddr *)&un), 0,
	    "unsupported families are never equal");
	snprintf(err, sizeof(err), "(family %d)", AF_APPLETALK);
	is_str(addr_format((struct sockaddr *)&un, buf, sizeof(buf)), err,
	    "an unsupported family formats as a placeholder");
}

static void
test_unix(void)
{
	struct sockaddr_storage a, b;
	struct sockaddr_un *sun = (struct sockaddr_un *)&a;
	socklen_t len, len2;
	char err[256], buf[ADDR_STRLEN], path[200];

	ok(addr_parse("unix:/run/app.sock", ADDR_UNIX, &a, &len, err, sizeof(err)) == 0,
	    "unix:/run/app.sock parses with ADDR_UNIX");
	is(a.ss_family, AF_UNIX, "as AF_UNIX");
	is_str(sun->sun_path, "/run/app.sock", "with its path");
	is(len, offsetof(struct sockaddr_un, sun_path) + sizeof("/run/app.sock"),
	    "its length covers the path and its NUL");
	is_str(addr_format((struct sockaddr *)&a, buf, sizeof(buf)), "unix:/run/app.sock",
	    "and formats back");
	ok(addr_parse(buf, ADDR_UNIX | ADDR_NUMERIC | ADDR_WILDCARD, &b, &len2, err, sizeof(err)) ==
	            0 &&
	        len2 == len && addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b),
	    "round-trips, and equals itself");
	addr_parse("unix:/run/other.sock", ADDR_UNIX, &b, &len2, err, sizeof(err));
	is(addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b), 0, "another path differs");

	is(addr_parse("unix:/run/app.sock", ADDR_NUMERIC | ADDR_WILDCARD, &a, &len, err,
	       sizeof(err)),
	    -1, "without ADDR_UNIX it is refused");
	is_str(err, "a UNIX socket is not allowed here", "saying so");
	is(addr_parse("unix:", ADDR_UNIX, &a, &len, err, sizeof(err)), -1, "unix: alone");
	is_str(err, "missing path after \"unix:\"", "needs a path");
	is(addr_parse("unix:run/app.sock", ADDR_UNIX, &a, &len, err, sizeof(err)), -1,
	    "a relative path");
	is_str(err, "a UNIX socket path must be absolute (\"unix:/run/app.sock\")",
	    "is refused");
	is(addr_parse("unix:/run/", ADDR_UNIX, &a, &len, err, sizeof(err)), -1, "a directory");
	is_str(err, "a UNIX socket path must name a file, not a directory", "is refused");

	/* 107 bytes fit sun_path with the NUL; 108 do not. */
	memset(path, 'a', sizeof(path));
	memcpy(path, "unix:/", 6);
	path[5 + 107] = '\0';
	ok(addr_parse(path, ADDR_UNIX, &a, &len, err, sizeof(err)) == 0 &&
	        strlen(sun->sun_path) == 107,
	    "a 107-byte path fits");
	is_str(addr_format((struct sockaddr *)&a, buf, sizeof(buf)), path,
	    "and formats whole in ADDR_STRLEN");
	path[5 + 107] = 'a';
	path[5 + 108] = '\0';
	is(addr_parse(path, ADDR_UNIX, &a, &len, err, sizeof(err)), -1, "a 108-byte path");
	is_str(err, "a UNIX socket path has at most 107 bytes (this one 108)", "is too long");

	/* What the kernel returns: only len bytes are written. */
	memset(&a, 'x', sizeof(a));
	a.ss_family = AF_UNIX;
	addr_unix_terminate(&a, (socklen_t)offsetof(struct sockaddr_un, sun_path));
	is_str(addr_format((struct sockaddr *)&a, buf, sizeof(buf)), "unix:",
	    "an unnamed peer is terminated");
	memset(&a, 'x', sizeof(a));
	a.ss_family = AF_UNIX;
	memcpy(sun->sun_path, "/p", 2);
	addr_unix_terminate(&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 2));
	is_str(sun->sun_path, "/p", "a path without its NUL is terminated");
	memset(&a, 'x', sizeof(a));
	a.ss_family = AF_UNIX;
	addr_unix_terminate(&a, (socklen_t)sizeof(a) + 50);
	is(strlen(sun->sun_path), sizeof(sun->sun_path) - 1, "an overlong length stays inside");
}

int
main(void)
{
	test_good();
	test_bad();
	test_names();
	test_equal();
	test_unix();
	done_testing();
	return tap_exit();
}
