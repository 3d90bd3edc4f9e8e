/* SPDX-License-Identifier: BSD-2-Clause */
/* i_proxytlv.c — integration test of PROXY protocol v2 TLVs and PROXY
 * headers in health checks, through the real daemon. The test plays the
 * fronts (sending v2 headers with TLVs) and the upstream server (parsing
 * what sluice sends it): every TLV passed on, or a chosen subset, in order;
 * configured TLVs added, replacing the front's of their type; a CRC32c
 * recomputed over the new header and checked here independently; fronts
 * whose TLVs are malformed or too many for our header refused, counted,
 * never reaching the server, leaving no buffer held; TLV settings a v1
 * header cannot carry (and other bad ones) refused by `sluiced -t` with
 * FILE:LINE. Then health checks against an echod that requires the PROXY
 * protocol: UP with a v2 or v1 header (set, or inherited from the
 * listeners), DOWN without one. Only loopback traffic; every process it
 * starts is killed by pid. */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "proxy.h"
#include "crc32c.h"
#include "tap.h"
#include "uphelp.h"

#define WAIT 10000   /* ms: generous bound for anything that should be quick */
#define BIG_ADD 1000 /* bytes of the value the "big" listener adds */

static int backend; /* the test's own upstream listener */

/* --- building a front's header ---------------------------------------------- */

static size_t
tlv(uint8_t *out, uint8_t type, const void *value, size_t len)
{
	out[0] = type;
	out[1] = (uint8_t)(len >> 8);
	out[2] = (uint8_t)len;
	memcpy(out + 3, value, len);
	return 3 + len;
}

/* A v2 PROXY TCP4 header from 198.51.100.7:4242 to 192.0.2.1:443 carrying
 * the tlvs, with a correct CRC32c TLV last when crc is set. */
static size_t
front_header(uint8_t *out, const uint8_t *tlvs, size_t tlen, int crc)
{
	static const uint8_t sig[12] = {
	    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
	static const uint8_t addr[12] = {198, 51, 100, 7, 192, 0, 2, 1, 0x10, 0x92, 0x01, 0xBB};
	size_t len = 12 + tlen + (crc ? 7 : 0);
	uint32_t sum;

	memcpy(out, sig, 12);
	out[12] = 0x21;
	out[13] = 0x11;
	out[14] = (uint8_t)(len >> 8);
	out[15] = (uint8_t)len;
	memcpy(out + 16, addr, 12);
	memcpy(out + 28, tlvs, tlen);
	if (!crc)
		return 16 + len;
	tlv(out + 28 + tlen, PROXY_TLV_CRC32C, "\0\0\0\0", 4);
	sum = crc32c(out, 16 + len);
	out[16 + len - 4] = (uint8_t)(sum >> 24);
	out[16 + len - 3] = (uint8_t)(sum >> 16);
	out[16 + len - 2] = (uint8_t)(sum >> 8);
	out[16 + len - 1] = (uint8_t)sum;
	return 16 + len;
}

static int
send_all(int fd, const void *buf, size_t len)
{
	return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* Send in pieces with a pause between, so that sluice reads the header over
 * several reads (not guaranteed by TCP, but what a slow front does). */
static int
send_slowly(int fd, const uint8_t *buf, size_t len, size_t piece)
{
	for (size_t off = 0; off < len; off += piece) {
		if (send_all(fd, buf + off, piece < len - off ? piece : len - off) == -1)
			return -1;
		h_nap(20);
	}
	return 0;
}

/* --- what the server sees ----------------------------------------------------- */

struct seen {
	int fd;
	uint8_t header[PROXY_V2_MAX];
	size_t hlen;
	struct proxy_info info;
	char payload[64];
	size_t plen;
};

/* Accept the next connection sluice makes to the backend, take its v2
 * header (a byte at a time: it must end where the parser says) and want
 * payload bytes. */
static int
backend_take(size_t want, struct seen *sn)
{
	int hl;

	memset(sn, 0, sizeof(*sn));
	sn->fd = h_accept(backend, WAIT);
	if (sn->fd == -1) {
		diag("backend: no connection from sluice: %s", strerror(errno));
		return -1;
	}
	hl = h_read_proxy(sn->fd, PROXY_V2, sn->header, sizeof(sn->header), &sn->info, WAIT);
	if (hl == -1)
		return -1;
	sn->hlen = (size_t)hl;
	if (want > 0) {
		ssize_t n = h_read_n(sn->fd, sn->payload, want, WAIT);

		sn->plen = n > 0 ? (size_t)n : 0;
	}
	return 0;
}

static void
seen_close(struct seen *sn)
{
	if (sn->fd > 0)
		close(sn->fd);
	sn->fd = -1;
}

/* The TLVs of a v2 header as "type:len" words ("01:2 E1:6 03:4"), and the
 * offset of the n-th one's value in *val_off (n counted from 0; -1: none). */
static const char *
tlv_list(const struct seen *sn, int n, size_t *val_off)
{
	static char out[512];
	size_t i = PROXY_V2_FIXED + (sn->header[13] == 0x11 ? 12 : sn->header[13] == 0x21 ? 36 : 0);
	size_t o = 0;
	int k = 0;

	out[0] = '\0';
	while (i + 3 <= sn->hlen && o + 16 < sizeof(out)) {
		size_t vl = (size_t)sn->header[i + 1] << 8 | sn->header[i + 2];

		if (k == n && val_off != NULL)
			*val_off = i + 3;
		o += (size_t)snprintf(
		    out + o, sizeof(out) - o, "%s%02X:%zu", o ? " " : "", sn->header[i], vl);
		i += 3 + vl;
		k++;
	}
	return out;
}

static int
tlv_value_is(const struct seen *sn, int n, const void *want, size_t len)
{
	size_t off = 0;

	tlv_list(sn, n, &off);
	return off > 0 && off + len <= sn->hlen &&
	       ((size_t)sn->header[off - 2] << 8 | sn->header[off - 1]) == len &&
	       memcmp(sn->header + off, want, len) == 0;
}

/* The header's CRC32c TLV checked here: zero its field, compute, compare. */
static int
crc_ok(const struct seen *sn)
{
	uint8_t copy[PROXY_V2_MAX];
	size_t i = PROXY_V2_FIXED + (sn->header[13] == 0x11 ? 12 : 36);

	memcpy(copy, sn->header, sn->hlen);
	while (i + 3 <= sn->hlen) {
		size_t vl = (size_t)copy[i + 1] << 8 | copy[i + 2];

		if (copy[i] == PROXY_TLV_CRC32C && vl == 4) {
			uint32_t got = (uint32_t)copy[i + 3] << 24 | (uint32_t)copy[i + 4] << 16 |
			               (uint32_t)copy[i + 5] << 8 | copy[i + 6];

			memset(copy + i + 3, 0, 4);
			return crc32c(copy, sn->hlen) == got;
		}
		i += 3 + vl;
	}
	return 0;
}

static int
src_is_front(const struct seen *sn)
{
	const struct sockaddr_in *s = (const struct sockaddr_in *)&sn->info.src;

	return s->sin_family == AF_INET && s->sin_port == htons(4242) &&
	       s->sin_addr.s_addr == htonl(0xC6336407); /* 198.51.100.7 */
}

/* The front's TLVs most tests send. */
static size_t
front_tlvs(uint8_t *t)
{
	size_t n = 0;

	n += tlv(t + n, 0x01, "h2", 2);
	n += tlv(t + n, 0x02, "front.example", 13);
	n += tlv(t + n, 0x05, "uid-42", 6);
	n += tlv(t + n, 0xE1, "custom", 6);
	n += tlv(t + n, 0x04, "\0\0", 2);
	return n;
}

/* --- the tests ------------------------------------------------------------------ */

static void
test_pass_all(int lall)
{
	uint8_t t[256], h[512];
	size_t tl = front_tlvs(t), hl = front_header(h, t, tl, 1);
	struct seen sn;
	int c;

	for (int slow = 0; slow < 2; slow++) {
		c = h_connect(lall, WAIT);
		if (c == -1)
			bail("connect to the pass-all listener: %s", strerror(errno));
		memcpy(h + hl, "hello", 5);
		if (slow)
			send_slowly(c, h, hl + 5, 7);
		else
			send_all(c, h, hl + 5);
		ok(backend_take(5, &sn) == 0 && src_is_front(&sn) &&
		        memcmp(sn.payload, "hello", 5) == 0 && sn.plen == 5,
		    "pass all%s: the server gets the front's client, then its bytes",
		    slow ? " (header in 7-byte pieces)" : "");
		is_str(tlv_list(&sn, -1, NULL), "01:2 02:13 05:6 E1:6 04:2 03:4",
		    "  every TLV passed in order, a CRC32c last");
		ok(tlv_value_is(&sn, 1, "front.example", 13) && tlv_value_is(&sn, 3, "custom", 6),
		    "  values unchanged");
		ok(sn.info.crc && crc_ok(&sn),
		    "  the CRC32c is recomputed over our header (checked independently)");
		send_all(sn.fd, "pong", 4);
		{
			char b[4];

			ok(h_read_n(c, b, 4, WAIT) == 4 && memcmp(b, "pong", 4) == 0,
			    "  and the relay works both ways");
		}
		close(c);
		seen_close(&sn);
	}
}

static void
test_pass_some(int lsome)
{
	uint8_t t[256], h[512];
	size_t tl = front_tlvs(t), hl;
	struct seen sn;
	int c;

	hl = front_header(h, t, tl, 1);
	c = h_connect(lsome, WAIT);
	send_all(c, h, hl);
	send_all(c, "x", 1);
	ok(backend_take(1, &sn) == 0 && src_is_front(&sn) && sn.plen == 1,
	    "pass a subset: the server gets the header and the bytes");
	is_str(tlv_list(&sn, -1, NULL), "01:2 E1:6 E0:6 02:16 03:4",
	    "  alpn and 0xE1 passed, 0xE0 and authority added, CRC32c last");
	ok(tlv_value_is(&sn, 2, "sluice", 6) && tlv_value_is(&sn, 3, "override.example", 16),
	    "  the configured authority replaces the front's");
	ok(crc_ok(&sn), "  the CRC32c (front sent one, crc32c passed) matches");
	close(c);
	seen_close(&sn);

	/* The same without a checksum from the front: none is made up. */
	hl = front_header(h, t, tl, 0);
	c = h_connect(lsome, WAIT);
	send_all(c, h, hl);
	send_all(c, "y", 1);
	ok(backend_take(1, &sn) == 0, "  a front without a CRC32c is served");
	is_str(tlv_list(&sn, -1, NULL), "01:2 E1:6 E0:6 02:16", "  and none is made up");
	close(c);
	seen_close(&sn);

	/* A v1 front has no TLVs: ours are still added. */
	c = h_connect(lsome, WAIT);
	send_all(c, "PROXY TCP4 198.51.100.7 192.0.2.1 4242 443\r\nz", 45);
	ok(backend_take(1, &sn) == 0 && src_is_front(&sn),
	    "  a v1 front (accept_proxy any) is served");
	is_str(tlv_list(&sn, -1, NULL), "E0:6 02:16", "  with only our TLVs");
	close(c);
	seen_close(&sn);
}

static void
test_add(int ladd)
{
	struct seen sn;
	int c = h_connect(ladd, WAIT);
	unsigned cport = c != -1 ? h_local_port(c) : 0;
	const struct sockaddr_in *s = (const struct sockaddr_in *)&sn.info.src;

	int rc;

	send_all(c, "abc", 3);
	rc = backend_take(3, &sn);
	ok(rc == 0 && s->sin_family == AF_INET && ntohs(s->sin_port) == cport &&
	        memcmp(sn.payload, "abc", 3) == 0,
	    "no front: the header names the client (port %u)", cport);
	is_str(tlv_list(&sn, -1, NULL), "E2:3 03:4", "  with the configured TLV and a CRC32c");
	ok(tlv_value_is(&sn, 0, "\x00\xff\x10", 3), "  the hex value as configured");
	ok(crc_ok(&sn), "  and a CRC32c that matches");
	close(c);
	seen_close(&sn);
}

/* A front whose header sluice refuses: closed, counted, never at the server. */
static void
refused(int lport, const uint8_t *h, size_t hl, uint64_t *rej, const char *what)
{
	int c = h_connect(lport, WAIT);

	send_all(c, h, hl);
	ok(c != -1 && h_wait_closed(c, WAIT), "%s: closed", what);
	close(c);
	ok(h_wait_stat("refused_proxy_rejected", *rej + 1, WAIT),
	    "  and counted as proxy_rejected");
	*rej += 1;
}

static void
test_big(int lbig)
{
	static uint8_t t[2100], h[2200];
	static char add[BIG_ADD];
	uint64_t rej = h_stat("refused_proxy_rejected");
	struct seen sn;
	size_t tl, hl;
	int c, rc;

	/* 300 bytes passed and 1000 added: fits. */
	memset(t, 'p', sizeof(t));
	tl = tlv(t, 0xE4, t + 3, 297);
	hl = front_header(h, t, tl, 0);
	c = h_connect(lbig, WAIT);
	send_slowly(c, h, hl, 64);
	send_all(c, "q", 1);
	memset(add, 'x', sizeof(add));
	rc = backend_take(1, &sn);
	ok(rc == 0 && strcmp(tlv_list(&sn, -1, NULL), "E4:297 E3:1000") == 0 &&
	        tlv_value_is(&sn, 1, add, sizeof(add)) && sn.plen == 1 &&
	        sn.hlen == 16 + 12 + 300 + 3 + BIG_ADD,
	    "300 bytes of the front's TLVs and our 1000 make a %zu-byte header", sn.hlen);
	close(c);
	seen_close(&sn);

	/* 1200 + 1000 + the addresses pass the 2048 bytes a length may say. */
	memset(t, 'p', sizeof(t));
	tl = tlv(t, 0xE4, t + 3, 1197);
	hl = front_header(h, t, tl, 0);
	refused(lbig, h, hl, &rej,
	    "the front's 1200 bytes of TLVs and our 1000 do not fit a v2 header");
	ok(h_wait_file_contains(
	       h_path("sluiced.log"), "pass the 2048 bytes a v2 header may carry", WAIT),
	    "  the log says why");

	/* 1700 bytes to keep fill the 2560-byte buffer before the header ends. */
	memset(t, 'p', sizeof(t));
	tl = tlv(t, 0xE4, t + 3, 1697);
	hl = front_header(h, t, tl, 0);
	refused(lbig, h, hl, &rej, "a front whose TLVs to pass fill the buffer");
	ok(h_wait_file_contains(h_path("sluiced.log"), "its TLVs to pass on fill the buffer", WAIT),
	    "  the log says why");
}

static void
test_malformed(int lall)
{
	uint64_t rej = h_stat("refused_proxy_rejected");
	uint8_t t[64], h[256];
	size_t tl, hl;

	tl = tlv(t, 0x01, "h2", 2);
	tl += tlv(t + tl, 0x02, "\xC0\xAF", 2);
	hl = front_header(h, t, tl, 0);
	refused(lall, h, hl, &rej, "an AUTHORITY that is not UTF-8, after a TLV to pass");

	tl = tlv(t, 0xE1, "custom", 6);
	t[2] = 40; /* the value runs past the header's length */
	hl = front_header(h, t, tl, 0);
	refused(lall, h, hl, &rej, "a TLV whose value runs past the header");

	tl = tlv(t, 0x01, "h2", 2);
	hl = front_header(h, t, tl, 1);
	h[hl - 1] ^= 0x55;
	refused(lall, h, hl, &rej, "a CRC32c that does not match");

	hl = front_header(h, t, tl, 0);
	h[14] = 0x10; /* length 4096 + */
	refused(lall, h, hl, &rej, "a length past 2048 (oversized TLV section)");

	ok(h_wait_file_contains(h_path("sluiced.log"), "v2 AUTHORITY TLV is not valid UTF-8", WAIT),
	    "the log names a refused header's fault");
}

/* No buffer stays held and no session stays open once fronts are gone. */
static void
test_no_leak(void)
{
	uint64_t deadline = h_now_ms() + WAIT, used = 1, active = 1;

	while (h_now_ms() < deadline) {
		used = h_stat("pool_buffers_used");
		active = h_stat("active");
		if (used == 0 && active == 0)
			break;
		h_nap(20);
	}
	ok(used == 0 && active == 0,
	    "after every front left: no relay buffer held, no session open (%llu, %llu)",
	    (unsigned long long)used, (unsigned long long)active);
}

/* --- sluiced -t ------------------------------------------------------------------ */

static const char *cfg_head =
    "pid_file = \"/tmp/x.pid\"; stats_file = \"/tmp/x.stats\";\n"
    "upstreams = ( { name = \"be\"; servers = ( \"127.0.0.1:9\" ); } );\n";

/* sluiced -t on a config whose listener's settings start on line 6:
 * exit status and output. */
static int
check_conf(const char *pool, const char *listener, char **out)
{
	const char *path = h_path("check.conf");
	char *argv[] = {(char *)h_sluiced(), "-t", "-c", (char *)path, NULL};

	h_write_file(path,
	    "%s%s\nlisteners = (\n  { listen = \"127.0.0.1:9\"; upstream = \"be\";\n%s } );\n",
	    cfg_head, pool, listener);
	return h_run(argv, out, WAIT);
}

static void
conf_refused(const char *pool, const char *listener, const char *want, const char *what)
{
	char *out = NULL, where[512];
	int st = check_conf(pool, listener, &out);

	snprintf(where, sizeof(where), "%s:%s", h_path("check.conf"), want);
	ok(st != 0 && out != NULL && strstr(out, where) != NULL, "sluiced -t refuses %s", what);
	if (out == NULL || strstr(out, where) == NULL)
		diag("want \"%s\" in: %s", where, out ? out : "(nothing)");
	free(out);
}

static void
test_config(void)
{
	char *out = NULL, big[1600], line[3400];
	int st;

	st = check_conf("",
	    "  accept_proxy = \"any\"; trusted = ( \"127.0.0.1\" ); "
	    "proxy_protocol = \"v2\";\n"
	    "  proxy_tlv_pass = ( \"alpn\", 0xE1, \"crc32c\" );\n"
	    "  proxy_tlv = ( { type = 0xE0; value = \"x\"; }, { type = \"crc32c\"; },\n"
	    "                { type = \"unique_id\"; hex = \"0a0B\"; } );",
	    &out);
	ok(st == 0, "sluiced -t accepts a config with TLV settings");
	if (st != 0)
		diag("%s", out ? out : "");
	free(out);

	conf_refused("",
	    "  proxy_protocol = \"v1\"; proxy_tlv = ( { type = 0xE0; value = \"x\"; } );",
	    "6: listeners[0].proxy_tlv: applies only with proxy_protocol = \"v2\" (a v1 header "
	    "carries no TLVs)",
	    "proxy_tlv with a v1 header, naming FILE:LINE");
	conf_refused("",
	    "  accept_proxy = \"v2\"; trusted = ( \"127.0.0.1\" ); proxy_protocol = \"v1\";\n"
	    "  proxy_tlv_pass = true;",
	    "7: listeners[0].proxy_tlv_pass: applies only with proxy_protocol = \"v2\"",
	    "proxy_tlv_pass with a v1 header");
	conf_refused("", "  proxy_tlv = ( { type = 0xE0; } );",
	    "6: listeners[0].proxy_tlv: applies only with proxy_protocol = \"v2\" (no header is "
	    "sent)",
	    "proxy_tlv without proxy_protocol");
	conf_refused("", "  proxy_protocol = \"v2\"; proxy_tlv_pass = true;",
	    "6: listeners[0].proxy_tlv_pass: applies only with accept_proxy = \"v2\" or \"any\" "
	    "(there is no front header",
	    "proxy_tlv_pass without accept_proxy");
	conf_refused("",
	    "  accept_proxy = \"v1\"; trusted = ( \"127.0.0.1\" ); proxy_protocol = \"v2\";\n"
	    "  proxy_tlv_pass = true;",
	    "7: listeners[0].proxy_tlv_pass: applies only with accept_proxy",
	    "proxy_tlv_pass with accept_proxy v1");
#define V2 "  proxy_protocol = \"v2\";\n"
	conf_refused("",
	    V2 "  proxy_tlv = ( { type = 0xE0; value = \"a\"; },\n"
	       "    { type = 0xE0; value = \"b\"; } );",
	    "8: listeners[0].proxy_tlv[1].type: TLV type 0xE0 is set twice", "a type set twice");
	conf_refused("", V2 "  proxy_tlv = ( { type = 0; value = \"a\"; } );",
	    "7: listeners[0].proxy_tlv[0].type: must be between 1 and 255", "type 0");
	conf_refused("", V2 "  proxy_tlv = ( { type = 256; } );",
	    "7: listeners[0].proxy_tlv[0].type: must be between 1 and 255", "type 256");
	conf_refused("", V2 "  proxy_tlv = ( { type = \"aws\"; } );",
	    "7: listeners[0].proxy_tlv[0].type: unknown TLV type \"aws\"", "an unknown type name");
	conf_refused("", V2 "  proxy_tlv = ( { type = 0x22; value = \"cn\"; } );",
	    "7: listeners[0].proxy_tlv[0].type: 0x22 is an SSL sub-type", "an SSL sub-type");
	conf_refused("", V2 "  proxy_tlv = ( { type = \"crc32c\"; hex = \"00000000\"; } );",
	    "7: listeners[0].proxy_tlv[0].hex: the crc32c TLV's value is computed",
	    "a value for crc32c");
	conf_refused("", V2 "  proxy_tlv = ( { type = 0xE0; hex = \"abc\"; } );",
	    "7: listeners[0].proxy_tlv[0].hex: expected pairs of hex digits", "odd hex");
	conf_refused("", V2 "  proxy_tlv = ( { type = 0xE0; hex = \"zz\"; } );",
	    "7: listeners[0].proxy_tlv[0].hex: expected pairs of hex digits", "bad hex");
	conf_refused("", V2 "  proxy_tlv = ( { type = 0xE0; hex = \"00\"; value = \"a\"; } );",
	    "7: listeners[0].proxy_tlv[0].hex: a TLV has a value or a hex value, not both",
	    "value and hex together");
	conf_refused("", V2 "  proxy_tlv = ( { type = \"authority\"; hex = \"c0af\"; } );",
	    "7: listeners[0].proxy_tlv[0].hex: TLV type 0x02 refused: v2 AUTHORITY TLV is not "
	    "valid UTF-8",
	    "an authority that is not UTF-8");
	memset(big, 'u', 129);
	big[129] = '\0';
	snprintf(line, sizeof(line),
	    V2 "  proxy_tlv = ( { type = \"unique_id\"; value = \"%s\"; } );", big);
	conf_refused("", line,
	    "7: listeners[0].proxy_tlv[0].value: TLV type 0x05 refused: v2 UNIQUE_ID TLV is longer "
	    "than 128 bytes",
	    "a unique_id over 128 bytes");
	memset(big, 'v', 1500);
	big[1500] = '\0';
	snprintf(line, sizeof(line),
	    V2 "  proxy_tlv = ( { type = 0xE0; value = \"%s\"; },\n    { type = 0xE1; value = "
	       "\"%s\"; } );",
	    big, big);
	conf_refused("", line,
	    "8: listeners[0].proxy_tlv[1].value: the TLVs add up to more than the 2005 bytes",
	    "TLVs past what a v2 header can carry");
	memset(big, 'w', 300);
	big[300] = '\0';
	snprintf(line, sizeof(line), V2 "  proxy_tlv = ( { type = 0xE0; value = \"%s\"; } );", big);
	conf_refused("pool = { buffer_size = 512; };", line,
	    "7: listeners[0].proxy_tlv: 303 bytes of TLVs need pool.buffer_size of at least 618",
	    "TLVs too big for the buffer");
	conf_refused("",
	    "  accept_proxy = \"v2\"; trusted = ( \"127.0.0.1\" );" V2
	    "  proxy_tlv_pass = ( \"alpn\", 1 );",
	    "7: listeners[0].proxy_tlv_pass[1]: TLV type 0x01 is listed twice",
	    "a type listed twice to pass");
	conf_refused("",
	    "  accept_proxy = \"v2\"; trusted = ( \"127.0.0.1\" );" V2 "  proxy_tlv_pass = ( );",
	    "7: listeners[0].proxy_tlv_pass: an empty list passes nothing: say false",
	    "an empty pass list");
	conf_refused("", V2 "  proxy_tlv = ( { type = 0xE0; val = \"a\"; } );",
	    "7: listeners[0].proxy_tlv[0].val: unknown setting \"val\"", "an unknown TLV setting");
	{
		const char *path = h_path("check.conf");
		char *argv[] = {(char *)h_sluiced(), "-t", "-c", (char *)path, NULL}, want[512];

		h_write_file(path,
		    "pid_file = \"/tmp/x.pid\"; stats_file = \"/tmp/x.stats\";\n"
		    "upstreams = ( { name = \"be\"; servers = ( \"127.0.0.1:9\" );\n"
		    "  health = { send_proxy = \"v3\"; }; } );\n"
		    "listeners = ( { listen = \"127.0.0.1:9\"; upstream = \"be\"; } );\n");
		st = h_run(argv, &out, WAIT);
		snprintf(want, sizeof(want),
		    "%s:3: upstreams[0].health.send_proxy: unknown send_proxy \"v3\" (use v1, v2 "
		    "or "
		    "none)",
		    path);
		ok(st != 0 && out != NULL && strstr(out, want) != NULL,
		    "sluiced -t refuses health.send_proxy \"v3\"");
		if (out == NULL || strstr(out, want) == NULL)
			diag("want \"%s\" in: %s", want, out ? out : "(nothing)");
		free(out);
	}
#undef V2
}

/* --- health checks ---------------------------------------------------------------- */

static void
test_health(int eport)
{
	ok(up_wait_health("hv2", eport, STATS_HEALTH_UP, WAIT),
	    "health.send_proxy v2: a server requiring PROXY is UP");
	ok(up_wait_health("hv1", eport, STATS_HEALTH_UP, WAIT), "health.send_proxy v1: UP as well");
	ok(up_wait_health("hinherit", eport, STATS_HEALTH_UP, WAIT),
	    "send_proxy left out, the group's listener sending v1: checks send v1, UP");
	ok(up_wait_health("hnone", eport, STATS_HEALTH_DOWN, WAIT),
	    "health.send_proxy none: the same server is DOWN");
	ok(up_wait_health("hmixed", eport, STATS_HEALTH_DOWN, WAIT),
	    "send_proxy left out, the group's listeners sending v1 and v2: no header, DOWN");
	ok(h_wait_file_contains(
	       h_path("sluiced.log"), "is DOWN: closed before the expected reply", WAIT),
	    "  the log says the server closed the check");
	ok(h_wait_file_contains(h_path("echod-strict.log"), "PROXY header accepted", WAIT) &&
	        h_wait_file_contains(h_path("echod-strict.log"), "PROXY header refused", WAIT),
	    "echod -P saw headers accepted and a check without one refused");
}

int
main(void)
{
	int bport = h_free_port(), lall = h_free_port(), lsome = h_free_port();
	int ladd = h_free_port(), lbig = h_free_port(), lv1 = h_free_port(), eport = h_free_port();
	int lmix1 = h_free_port(), lmix2 = h_free_port();
	const char *conf;
	char addr[64], *add = malloc(BIG_ADD + 1);
	char *echod = getenv("ECHOD");

	crc_init();
	test_config();
	conf = h_path("sluice.conf"); /* h_path's buffers rotate: after test_config */

	if (echod == NULL || add == NULL)
		bail("ECHOD is not set (run through make check)");
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", eport);
	{
		char *argv[] = {echod, "-v", "-P", "-l", addr, NULL};

		h_spawn(argv, h_path("echod-strict.log"));
		if (h_wait_listening(eport, WAIT) == -1)
			bail("echod -P does not listen on %d", eport);
	}
	memset(add, 'x', BIG_ADD);
	add[BIG_ADD] = '\0';
	backend = h_listen(bport);
#define HC                                                                           \
	"health = { interval = \"200ms\"; timeout = \"200ms\"; rise = 1; fall = 1; " \
	"send = \"ping\\n\"; expect = \"ping\\n\";"
	h_write_file(conf,
	    "workers = 2;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "pool = { buffer_size = 2560; };\n"
	    "timeouts = { proxy_header = \"2s\"; };\n"
	    "upstreams = ( { name = \"be\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	    "  { name = \"hv2\"; servers = ( \"127.0.0.1:%d\" ); " HC
	    " send_proxy = \"v2\"; }; },\n"
	    "  { name = \"hv1\"; servers = ( \"127.0.0.1:%d\" ); " HC
	    " send_proxy = \"v1\"; }; },\n"
	    "  { name = \"hnone\"; servers = ( \"127.0.0.1:%d\" ); " HC
	    " send_proxy = \"none\"; }; },\n"
	    "  { name = \"hinherit\"; servers = ( \"127.0.0.1:%d\" ); " HC " }; },\n"
	    "  { name = \"hmixed\"; servers = ( \"127.0.0.1:%d\" ); " HC " }; } );\n"
	    "listeners = (\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"be\"; accept_proxy = \"v2\";\n"
	    "    trusted = ( \"127.0.0.1\" ); proxy_protocol = \"v2\"; proxy_tlv_pass = true; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"be\"; accept_proxy = \"any\";\n"
	    "    trusted = ( \"127.0.0.1\" ); proxy_protocol = \"v2\";\n"
	    "    proxy_tlv_pass = ( \"alpn\", 0xE1, \"crc32c\", \"authority\" );\n"
	    "    proxy_tlv = ( { type = 0xE0; value = \"sluice\"; },\n"
	    "                  { type = \"authority\"; value = \"override.example\"; } ); },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"be\"; proxy_protocol = \"v2\";\n"
	    "    proxy_tlv = ( { type = 0xE2; hex = \"00ff10\"; }, { type = \"crc32c\"; } ); },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"be\"; accept_proxy = \"v2\";\n"
	    "    trusted = ( \"127.0.0.1\" ); proxy_protocol = \"v2\"; proxy_tlv_pass = true;\n"
	    "    proxy_tlv = ( { type = 0xE3; value = \"%s\"; } ); },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"hinherit\"; proxy_protocol = \"v1\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"hmixed\"; proxy_protocol = \"v1\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"hmixed\"; proxy_protocol = \"v2\"; } );\n",
	    h_pidfile(), h_statsfile(), bport, eport, eport, eport, eport, eport, lall, lsome, ladd,
	    lbig, add, lv1, lmix1, lmix2);
#undef HC
	h_sluiced_start(conf, lall, 2);

	test_pass_all(lall);
	test_pass_some(lsome);
	test_add(ladd);
	test_big(lbig);
	test_malformed(lall);
	{
		int stray = -1;
		struct pollfd pfd = {.fd = backend, .events = POLLIN};

		if (poll(&pfd, 1, 0) == 1)
			stray = accept(backend, NULL, NULL);
		ok(stray == -1, "no refused front ever reached the server");
		if (stray != -1)
			close(stray);
	}
	test_no_leak();
	test_health(eport);

	free(add);
	done_testing();
	return tap_exit();
}
