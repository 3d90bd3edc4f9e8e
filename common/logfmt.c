/* SPDX-License-Identifier: BSD-2-Clause */
/* logfmt.c — compile log.format into pieces once, render lines from them
 * (see logfmt.h). Compiled in the master at load; rendered in workers, where
 * it must never allocate or parse. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logfmt.h"

/* LOGFMT_LITERAL: text[off .. off + len) as is; else a field. */
#define LOGFMT_LITERAL 0xffff

struct logfmt_piece {
	uint16_t field;
	uint16_t len;
	uint32_t off;
};

struct logfmt {
	int json;
	unsigned npieces;
	struct logfmt_piece *pieces;
	char *text; /* the literals, unescaped ($$ became $) */
};

static const struct {
	const char *name;
	int num;
} logfmt_fields[] = {
#define LOGFMT_X_DESC(up, name, num) [LOGFMT_##up] = {#name, num},
	LOGFMT_FIELDS(LOGFMT_X_DESC)
#undef LOGFMT_X_DESC
};

const char *
logfmt_field_name(enum logfmt_field f)
{
	return logfmt_fields[f].name;
}

static int
logfmt_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_';
}

static int __attribute__((format(printf, 3, 4)))
logfmt_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	errno = EINVAL;
	return -1;
}

/* Append a literal byte to f->text, extending the last piece if it is a
 * literal. text has room for the whole spec, pieces for one per byte. */
static void
logfmt_literal(struct logfmt *f, size_t *used, char ch)
{
	struct logfmt_piece *p = f->npieces > 0 ? &f->pieces[f->npieces - 1] : NULL;

	if (p == NULL || p->field != LOGFMT_LITERAL) {
		p = &f->pieces[f->npieces++];
		p->field = LOGFMT_LITERAL;
		p->len = 0;
		p->off = (uint32_t)*used;
	}
	f->text[(*used)++] = ch;
	p->len++;
}

static int
logfmt_parse(struct logfmt *f, const char *spec, char *err, size_t errlen)
{
	size_t used = 0;
	const char *p = spec;

	while (*p != '\0') {
		const char *name;
		size_t n;
		int braced, i;

		if (*p != '$') {
			logfmt_literal(f, &used, *p++);
			continue;
		}
		p++;
		if (*p == '$') {
			logfmt_literal(f, &used, *p++);
			continue;
		}
		braced = *p == '{';
		name = p + braced;
		for (n = 0; logfmt_name_char(name[n]); n++)
			;
		if (n == 0)
			return logfmt_fail(err, errlen,
			    "\"$\" must start a field name ($name or ${name}); write $$ for a "
			    "dollar sign");
		if (braced && name[n] != '}')
			return logfmt_fail(err, errlen, "\"${%.*s\" is not closed by \"}\"", (int)n,
			    name);
		for (i = 0; i < LOGFMT_NFIELDS; i++)
			if (strlen(logfmt_fields[i].name) == n &&
			    strncmp(logfmt_fields[i].name, name, n) == 0)
				break;
		if (i == LOGFMT_NFIELDS)
			return logfmt_fail(err, errlen, "unknown field \"$%.*s\"", (int)n, name);
		f->pieces[f->npieces].field = (uint16_t)i;
		f->pieces[f->npieces].len = 0;
		f->pieces[f->npieces].off = 0;
		f->npieces++;
		p = name + n + braced;
	}
	return 0;
}

struct logfmt *
logfmt_compile(const char *spec, char *err, size_t errlen)
{
	size_t len = strlen(spec);
	struct logfmt *f;

	if (len > LOGFMT_TEXT_MAX) {
		logfmt_fail(err, errlen, "longer than %d characters", LOGFMT_TEXT_MAX);
		return NULL;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	if (strcmp(spec, "json") == 0) {
		f->json = 1;
		return f;
	}
	f->text = malloc(len + 1);
	f->pieces = calloc(len + 1, sizeof(*f->pieces));
	if (f->text == NULL || f->pieces == NULL) {
		logfmt_free(f);
		errno = ENOMEM;
		return NULL;
	}
	if (logfmt_parse(f, spec, err, errlen) == -1) {
		logfmt_free(f);
		errno = EINVAL;
		return NULL;
	}
	return f;
}

void
logfmt_free(struct logfmt *f)
{
	if (f == NULL)
		return;
	free(f->pieces);
	free(f->text);
	free(f);
}

int
logfmt_is_json(const struct logfmt *f)
{
	return f->json;
}

/* Where a line is built: n bytes of buf used, room for len - 1 of them. */
struct logfmt_out {
	char *buf;
	size_t n, len;
};

/* 0 when all of s went in; -1 (nothing added) when it did not fit. */
static int
logfmt_put(struct logfmt_out *o, const char *s, size_t n)
{
	if (n > o->len - 1 - o->n)
		return -1;
	memcpy(o->buf + o->n, s, n);
	o->n += n;
	return 0;
}

static int
logfmt_put_num(struct logfmt_out *o, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRIu64, v);

	return logfmt_put(o, num, (size_t)n);
}

/* s as a JSON string, quotes included. */
static int
logfmt_put_json(struct logfmt_out *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = o->n;
	int r = logfmt_put(o, "\"", 1);

	for (; r == 0 && *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};

		if (ch == '"' || ch == '\\') {
			esc[1] = (char)ch;
			r = logfmt_put(o, esc, 2);
		} else if (ch < 0x20 || ch == 0x7f) {
			r = logfmt_put(o, esc, 6);
		} else {
			r = logfmt_put(o, (const char *)&ch, 1);
		}
	}
	if (r == 0)
		r = logfmt_put(o, "\"", 1);
	if (r == -1)
		o->n = start;
	return r;
}

static size_t
logfmt_render_json(const struct logfmt_values *v, struct logfmt_out *o)
{
	/* Room for the closing brace is kept back from the start, so a line
	 * cut short still parses: it only lacks its last fields. */
	o->len--;
	logfmt_put(o, "{", 1);
	for (int i = 0; i < LOGFMT_NFIELDS; i++) {
		size_t mark = o->n;
		int r;

		if (logfmt_put(o, i > 0 ? ",\"" : "\"", i > 0 ? 2 : 1) == -1 ||
		    logfmt_put(o, logfmt_fields[i].name, strlen(logfmt_fields[i].name)) == -1 ||
		    logfmt_put(o, "\":", 2) == -1) {
			o->n = mark;
			break;
		}
		if (logfmt_fields[i].num)
			r = logfmt_put_num(o, v->num[i]);
		else if (v->str[i] == NULL)
			r = logfmt_put(o, "null", 4);
		else
			r = logfmt_put_json(o, v->str[i]);
		if (r == -1) {
			o->n = mark;
			break;
		}
	}
	o->len++;
	logfmt_put(o, "}", 1);
	return o->n;
}

size_t
logfmt_render(const struct logfmt *f, const struct logfmt_values *v, char *buf, size_t len)
{
	struct logfmt_out o = {.buf = buf, .n = 0, .len = len};

	if (len < 3) {
		if (len > 0)
			buf[0] = '\0';
		return 0;
	}
	if (f->json) {
		logfmt_render_json(v, &o);
		buf[o.n] = '\0';
		return o.n;
	}
	for (unsigned i = 0; i < f->npieces; i++) {
		const struct logfmt_piece *p = &f->pieces[i];
		const char *s;
		int r;

		if (p->field == LOGFMT_LITERAL) {
			r = logfmt_put(&o, f->text + p->off, p->len);
		} else if (logfmt_fields[p->field].num) {
			r = logfmt_put_num(&o, v->num[p->field]);
		} else {
			s = v->str[p->field] != NULL ? v->str[p->field] : "-";
			r = logfmt_put(&o, s, strlen(s));
		}
		if (r == -1)
			break;
	}
	buf[o.n] = '\0';
	return o.n;
}
