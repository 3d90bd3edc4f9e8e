/* SPDX-License-Identifier: BSD-2-Clause */
/* t_logfmt.c — unit test for common/logfmt.c: compiling log.format (fields,
 * ${name}, $$, refusals), rendering text and JSON lines (escaping, null for
 * a missing string, numbers bare), and lines cut at a small buffer (JSON
 * still closed). Runs alone. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "logfmt.h"
#include "tap.h"

static struct logfmt_values vals;

static void
fill(void)
{
	memset(&vals, 0, sizeof(vals));
	vals.str[LOGFMT_CLIENT] = "192.0.2.1:4242";
	vals.str[LOGFMT_CLIENT_IP] = "192.0.2.1";
	vals.str[LOGFMT_LISTENER] = "0.0.0.0:80";
	vals.str[LOGFMT_UPSTREAM] = "app";
	vals.str[LOGFMT_SERVER] = NULL;
	vals.str[LOGFMT_START] = "2026-12-07T14:00:00.123Z";
	vals.num[LOGFMT_DURATION_MS] = 1500;
	vals.num[LOGFMT_BYTES_IN] = 10;
	vals.num[LOGFMT_BYTES_OUT] = 18446744073709551615ULL;
	vals.str[LOGFMT_END] = "refused";
	vals.str[LOGFMT_CLOSE_REASON] = "acl_denied";
	vals.num[LOGFMT_WORKER] = 3;
	vals.num[LOGFMT_PID] = 77;
}

static void
renders(const char *spec, const char *want, size_t len)
{
	char err[256] = "", buf[4096];
	struct logfmt *f = logfmt_compile(spec, err, sizeof(err));
	size_t n;

	if (f == NULL) {
		ok(0, "compile %s: %s", spec, err);
		return;
	}
	n = logfmt_render(f, &vals, buf, len);
	ok(n == strlen(buf) && strcmp(buf, want) == 0, "%s (buffer %zu) renders %s", spec, len,
	    want);
	if (strcmp(buf, want) != 0)
		diag("  got %s", buf);
	logfmt_free(f);
}

static void
refused(const char *spec, const char *want)
{
	char err[256] = "";
	struct logfmt *f = logfmt_compile(spec, err, sizeof(err));

	ok(f == NULL && errno == EINVAL && strcmp(err, want) == 0, "refused %s: %s", spec, err);
	logfmt_free(f);
}

int
main(void)
{
	char big[LOGFMT_TEXT_MAX + 2];

	fill();
	renders("$client -> $listener -> $server $duration_ms ms in=$bytes_in out=$bytes_out "
	        "$close_reason",
	    "192.0.2.1:4242 -> 0.0.0.0:80 -> - 1500 ms in=10 out=18446744073709551615 acl_denied",
	    4096);
	renders("${bytes_in}B $$ $$$pid w$worker", "10B $ $77 w3", 4096);
	renders("", "", 4096);
	renders("plain", "plain", 4096);
	renders("$client_ip/$upstream/$start/$end", "192.0.2.1/app/2026-12-07T14:00:00.123Z/refused",
	    4096);
	renders("$client $client_ip", "192.0.2.1:4242", 15);
	renders("json",
	    "{\"client\":\"192.0.2.1:4242\",\"client_ip\":\"192.0.2.1\",\"listener\":\"0.0.0.0:80\","
	    "\"upstream\":\"app\",\"server\":null,\"start\":\"2026-12-07T14:00:00.123Z\","
	    "\"duration_ms\":1500,\"bytes_in\":10,\"bytes_out\":18446744073709551615,"
	    "\"end\":\"refused\",\"close_reason\":\"acl_denied\",\"worker\":3,\"pid\":77,"
	    "\"sni\":null}",
	    4096);
	vals.str[LOGFMT_LISTENER] = "a\"b\\c\n\x01\x7f";
	renders("json",
	    "{\"client\":\"192.0.2.1:4242\",\"client_ip\":\"192.0.2.1\","
	    "\"listener\":\"a\\\"b\\\\c\\u000a\\u0001\\u007f\","
	    "\"upstream\":\"app\",\"server\":null,\"start\":\"2026-12-07T14:00:00.123Z\","
	    "\"duration_ms\":1500,\"bytes_in\":10,\"bytes_out\":18446744073709551615,"
	    "\"end\":\"refused\",\"close_reason\":\"acl_denied\",\"worker\":3,\"pid\":77,"
	    "\"sni\":null}",
	    4096);
	fill();
	/* Cut short: whole fields only, and the object closed. */
	renders("json", "{\"client\":\"192.0.2.1:4242\"}", 50);
	renders("json", "{}", 5);

	refused("$nosuch", "unknown field \"$nosuch\"");
	refused("${client", "\"${client\" is not closed by \"}\"");
	refused("${}", "\"$\" must start a field name ($name or ${name}); write $$ for a dollar sign");
	refused("a $ b", "\"$\" must start a field name ($name or ${name}); write $$ for a dollar sign");
	refused("$Client", "unknown field \"$Client\"");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	refused(big, "longer than 1024 characters");
	is_str(logfmt_field_name(LOGFMT_CLOSE_REASON), "close_reason", "field names");

	done_testing();
	return tap_exit();
}
