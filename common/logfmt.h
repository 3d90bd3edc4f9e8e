/* SPDX-License-Identifier: BSD-2-Clause */
/* logfmt.h — log.format: the connection log line as the operator wrote it,
 * compiled once at load into pieces (literal text or a named field) and
 * rendered per line without parsing or allocating. A pure library: conf.c
 * compiles (so sluiced -t refuses an unknown field), a worker renders. */
#ifndef SLUICE_LOGFMT_H
#define SLUICE_LOGFMT_H

#include <stddef.h>
#include <stdint.h>

/* The fields a line can name, as $name or ${name}. Each is a string or a
 * number; a missing string shows as "-" (null in JSON). */
#define LOGFMT_FIELDS(X)                                                        \
	X(CLIENT, client, 0)             /* address:port, the PROXY one if any */ \
	X(CLIENT_IP, client_ip, 0)       /* address alone */                      \
	X(LISTENER, listener, 0)         /* listener address as configured */     \
	X(UPSTREAM, upstream, 0)         /* upstream group name */                \
	X(SERVER, server, 0)             /* server address as configured */       \
	X(START, start, 0)               /* ISO-8601 UTC, ms */                   \
	X(DURATION_MS, duration_ms, 1)                                            \
	X(BYTES_IN, bytes_in, 1)         /* client to server */                   \
	X(BYTES_OUT, bytes_out, 1)       /* server to client */                   \
	X(END, end, 0)                   /* client_closed, timeout, refused, ... */ \
	X(CLOSE_REASON, close_reason, 0) /* done, client_reset, acl_denied, ... */ \
	X(WORKER, worker, 1)             /* worker index in its generation */     \
	X(PID, pid, 1)                                                            \
	X(SNI, sni, 0)                   /* the name of the sni rule that routed it */

enum logfmt_field {
#define LOGFMT_X_ENUM(up, name, num) LOGFMT_##up,
	LOGFMT_FIELDS(LOGFMT_X_ENUM)
#undef LOGFMT_X_ENUM
	LOGFMT_NFIELDS
};

/* Longest format text accepted; a rendered line is cut at the caller's
 * buffer (JSON lines are closed even then). */
#define LOGFMT_TEXT_MAX 1024

struct logfmt;

/* One line's values, indexed by enum logfmt_field: str for string fields
 * (NULL shows "-"), num for number fields. */
struct logfmt_values {
	const char *str[LOGFMT_NFIELDS];
	uint64_t num[LOGFMT_NFIELDS];
};

/* Compile spec: "json" for one JSON object per line with every field, or
 * text where $name or ${name} names a field and $$ is a dollar sign.
 * Returns a new format (free with logfmt_free), or NULL with the reason in
 * err (unknown field, lone $, unclosed ${, too long) and errno EINVAL, or
 * ENOMEM. */
struct logfmt *logfmt_compile(const char *spec, char *err, size_t errlen);

void logfmt_free(struct logfmt *);

/* 1 when the format is the JSON form. */
int logfmt_is_json(const struct logfmt *);

/* Render one line into buf (len > 0), NUL-terminated, without a newline.
 * Returns its length (at most len - 1). */
size_t logfmt_render(const struct logfmt *, const struct logfmt_values *, char *buf, size_t len);

/* The field's name ("client", ...). */
const char *logfmt_field_name(enum logfmt_field);

#endif
