/* SPDX-License-Identifier: BSD-2-Clause */
/* t_cidr.c — unit test for common/cidr.c: parsing good and bad prefixes,
 * matching IPv4, IPv6 and IPv4-mapped addresses at the prefix boundaries, and
 * formatting. Runs alone, no network. */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "cidr.h"
#include "tap.h"

static struct sockaddr_storage ss_buf;

/* "1.2.3.4" or "::1" as a sockaddr (port 1234, which must not matter). */
static const struct sockaddr *
sa(const char *text)
{
	memset(&ss_buf, 0, sizeof(ss_buf));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss_buf;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(1234);
		if (inet_pton(AF_INET6, text, &s6->sin6_addr) != 1)
			bail("t_cidr: bad test address %s", text);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss_buf;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(1234);
		if (inet_pton(AF_INET, text, &s4->sin_addr) != 1)
			bail("t_cidr: bad test address %s", text);
	}
	return (const struct sockaddr *)&ss_buf;
}

struct match {
	const char *cidr, *addr;
	int want;
};

static const struct match matches[] = {
    {"10.0.0.0/8", "10.0.0.0", 1},
    {"10.0.0.0/8", "10.255.255.255", 1},
    {"10.0.0.0/8", "11.0.0.0", 0},
    {"10.0.0.0/8", "9.255.255.255", 0},
    {"192.168.1.0/25", "192.168.1.127", 1},
    {"192.168.1.0/25", "192.168.1.128", 0},
    {"192.168.1.128/25", "192.168.1.128", 1},
    {"172.16.0.0/12", "172.31.255.255", 1},
    {"172.16.0.0/12", "172.32.0.0", 0},
    {"127.0.0.2", "127.0.0.2", 1},
    {"127.0.0.2", "127.0.0.1", 0},
    {"127.0.0.2/32", "127.0.0.3", 0},
    {"0.0.0.0/0", "203.0.113.5", 1},
    {"0.0.0.0/0", "::1", 0},
    {"127.0.0.0/8", "::ffff:127.0.0.9", 1},
    {"127.0.0.0/8", "::ffff:128.0.0.9", 0},
    {"::/0", "2001:db8::1", 1},
    {"::/0", "10.0.0.1", 1},
    {"::1", "::1", 1},
    {"::1/128", "::2", 0},
    {"2001:db8::/32", "2001:db8:ffff:ffff::1", 1},
    {"2001:db8::/32", "2001:db9::", 0},
    {"2001:db8:8000::/33", "2001:db8:8000::1", 1},
    {"2001:db8:8000::/33", "2001:db8:7fff::1", 0},
    {"fe80::/10", "febf::1", 1},
    {"fe80::/10", "fec0::1", 0},
    {"::ffff:0:0/96", "192.0.2.1", 1},
};

struct bad {
	const char *text, *error;
};

static const struct bad bads[] = {
    {"", "empty network"},
    {"/8", "missing address before \"/\""},
    {"10.0.0.0/", "invalid prefix length \"\""},
    {"10.0.0.0/33", "prefix length 33 is out of range 0..32"},
    {"::/129", "prefix length 129 is out of range 0..128"},
    {"10.0.0.0/-1", "invalid prefix length \"-1\""},
    {"10.0.0.0/8x", "invalid prefix length \"8x\""},
    {"10.0.0.0/1000", "invalid prefix length \"1000\""},
    {"10.0.0.0/8/8", "invalid prefix length \"8/8\""},
    {"10.0.0.1/8", "host bits set past /8 (did you mean 10.0.0.0/8?)"},
    {"192.168.1.1/24", "host bits set past /24 (did you mean 192.168.1.0/24?)"},
    {"2001:db8::1/32", "host bits set past /32 (did you mean 2001:db8::/32?)"},
    {"10.1/8", "invalid IPv4 address \"10.1\""},
    {"010.0.0.0/8", "invalid IPv4 address \"010.0.0.0\""},
    {"256.0.0.0/8", "invalid IPv4 address \"256.0.0.0\""},
    {"example.com/8", "invalid IPv4 address \"example.com\""},
    {"1::2::3/64", "invalid IPv6 address \"1::2::3\""},
    {"fe80::1%eth0", "invalid IPv6 address \"fe80::1%eth0\""},
    {" 10.0.0.0/8", "invalid IPv4 address \" 10.0.0.0\""},
};

struct fmt {
	const char *in, *out;
};

static const struct fmt fmts[] = {
    {"10.0.0.0/8", "10.0.0.0/8"},
    {"127.0.0.1", "127.0.0.1/32"},
    {"0.0.0.0/0", "0.0.0.0/0"},
    {"2001:DB8::/32", "2001:db8::/32"},
    {"::1", "::1/128"},
    {"::/0", "::/0"},
};

int
main(void)
{
	struct cidr c, list[3];
	char err[256], buf[CIDR_STRLEN];
	struct sockaddr_un un;

	for (size_t i = 0; i < sizeof(matches) / sizeof(matches[0]); i++) {
		const struct match *m = &matches[i];

		if (cidr_parse(m->cidr, &c, err, sizeof(err)) == -1) {
			ok(0, "%s parses (%s)", m->cidr, err);
			continue;
		}
		is(cidr_match(&c, sa(m->addr)), m->want, "%s %s %s", m->addr,
		    m->want ? "is in" : "is not in", m->cidr);
	}

	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		err[0] = '\0';
		errno = 0;
		ok(cidr_parse(bads[i].text, &c, err, sizeof(err)) == -1 && errno == EINVAL,
		    "\"%s\" is refused", bads[i].text);
		is_str(err, bads[i].error, "  with the reason for \"%s\"", bads[i].text);
	}

	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		if (cidr_parse(fmts[i].in, &c, err, sizeof(err)) == -1) {
			ok(0, "%s parses (%s)", fmts[i].in, err);
			continue;
		}
		is_str(cidr_format(&c, buf, sizeof(buf)), fmts[i].out, "%s formats as %s",
		    fmts[i].in, fmts[i].out);
	}

	if (cidr_parse("10.0.0.0/8", &list[0], err, sizeof(err)) == -1 ||
	    cidr_parse("2001:db8::/32", &list[1], err, sizeof(err)) == -1 ||
	    cidr_parse("127.0.0.2", &list[2], err, sizeof(err)) == -1)
		bail("t_cidr: list: %s", err);
	ok(cidr_match_any(list, 3, sa("10.9.8.7")), "a list matches its first prefix");
	ok(cidr_match_any(list, 3, sa("2001:db8::5")), "a list matches an IPv6 prefix");
	ok(cidr_match_any(list, 3, sa("127.0.0.2")), "a list matches its last prefix");
	ok(!cidr_match_any(list, 3, sa("127.0.0.1")), "a list matches nothing else");
	ok(!cidr_match_any(list, 0, sa("10.9.8.7")), "an empty list matches nothing");

	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	ok(!cidr_match(&list[0], (struct sockaddr *)&un), "a UNIX address matches no prefix");
	ok(!cidr_match_any(list, 3, (struct sockaddr *)&un), "... nor any list");
	{
		uint8_t key[16];

		errno = 0;
		ok(cidr_key((struct sockaddr *)&un, key) == -1 && errno == EAFNOSUPPORT,
		    "cidr_key refuses a UNIX address");
		ok(cidr_key(sa("192.0.2.1"), key) == 0 && key[10] == 0xff && key[11] == 0xff &&
		       key[12] == 192 && key[15] == 1,
		    "cidr_key maps IPv4 into IPv6");
	}

	done_testing();
	return tap_exit();
}
