/* SPDX-License-Identifier: BSD-2-Clause */
/* tls_hello.h — reads the server name (SNI) and the ALPN protocols of a TLS
 * ClientHello without terminating TLS, for routing before any upstream is
 * chosen. Pure code used by workers, tests and the fuzzer: never allocates,
 * logs, blocks or exits, and never writes the bytes it reads (they are
 * relayed unchanged). */
#ifndef SLUICE_TLS_HELLO_H
#define SLUICE_TLS_HELLO_H

#include <stddef.h>
#include <stdint.h>

/* The longest host name SNI may carry (RFC 6066: a DNS name). */
#define TLS_HELLO_NAME_MAX 255
/* ALPN protocol list bytes kept (wire form: a length byte, then the name);
 * a client's longer list keeps the protocols that fit whole. */
#define TLS_HELLO_ALPN_MAX 256

/* What a complete ClientHello says. */
struct tls_hello {
	char name[TLS_HELLO_NAME_MAX + 1]; /* host name, lower case, "" without SNI */
	size_t name_len;                   /* 0: no server_name extension (or no host_name) */
	uint8_t alpn[TLS_HELLO_ALPN_MAX];  /* ALPN protocol_name_list, wire form */
	size_t alpn_len;                   /* 0: no ALPN extension */
	size_t hello_len; /* bytes of the stream the hello took, headers included */
};

/*
 * Look at the first len bytes a client sent (every byte so far, from the
 * start of the connection; call again with more as they come: the answer
 * depends only on the bytes, never on how they were split into reads).
 * The ClientHello may span several TLS records (a fragmented handshake);
 * records are TLS plaintext records of content type handshake. SSL 2.0
 * compatible hellos are not TLS and are refused. Returns
 *   1  the ClientHello is complete and well formed: *out says what it
 *      carries (bytes after it are not looked at);
 *   0  the bytes so far are a valid beginning of one: read more;
 *  -1  these bytes are not a ClientHello (malformed), or it would not fit
 *      in max bytes of stream (oversized): *why says which, a short static
 *      text. Checked as far as the bytes go, so garbage is refused at its
 *      first bad byte rather than when the connection ends or times out.
 */
int tls_hello_parse(
    const void *data, size_t len, size_t max, struct tls_hello *out, const char **why);

/* 1 when the ALPN list of h names proto (exact bytes), else 0. */
int tls_hello_has_alpn(const struct tls_hello *h, const char *proto);

/* 1 when the host name fits pattern: an exact name, compared without regard
 * to case, or "*.suffix", which fits any name of one or more labels ending
 * in ".suffix" (not the suffix alone). Else 0. */
int tls_hello_name_match(const char *pattern, const char *name);

/* 0 when text is a name sluice accepts in a rule (what a ClientHello's
 * host_name must also be): 1 to 253 bytes of labels of 1 to 63 letters,
 * digits, '-' or '_', separated by single dots; with wildcard = 1 a leading
 * "*." label is allowed too. Else -1. */
int tls_hello_name_valid(const char *text, size_t len, int wildcard);

#endif
