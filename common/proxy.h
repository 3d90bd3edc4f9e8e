/* SPDX-License-Identifier: BSD-2-Clause */
/* proxy.h — the PROXY protocol (HAProxy's "The PROXY protocol, Versions 1 &
 * 2"): building the header sluice sends to an upstream, and a strict,
 * incremental parser for the header a trusted front sends us. Pure code used
 * by workers, tests and the fuzzer: never allocates, logs, blocks or exits. */
#ifndef SLUICE_PROXY_H
#define SLUICE_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Versions, as a bit set for the parser ("any" accepts both). */
#define PROXY_V1 1
#define PROXY_V2 2
#define PROXY_ANY (PROXY_V1 | PROXY_V2)

/* The longest v1 line, CRLF included (the spec's worst case). */
#define PROXY_V1_MAX 107
/* Fixed part of a v2 header: signature, version/command, family, length. */
#define PROXY_V2_FIXED 16
/* The longest v2 length field accepted: the address block plus TLVs. The
 * spec designs a header to fit in 536 bytes; four times that is "oversized". */
#define PROXY_V2_LEN_MAX 2048
/* Room proxy_build needs for any header it writes, either version. */
#define PROXY_HEADER_MAX 108
/* Room proxy_build_v2 needs for any header it writes (with TLVs). */
#define PROXY_V2_MAX (PROXY_V2_FIXED + PROXY_V2_LEN_MAX)
/* A v2 TLV's type and two length bytes. */
#define PROXY_TLV_HDR 3
/* What a v2 header holds besides the TLVs it carries, at the most: the fixed
 * part, the IPv6 address block and a CRC32c TLV. */
#define PROXY_V2_OVERHEAD (PROXY_V2_FIXED + 36 + PROXY_TLV_HDR + 4)
/* Where proxy_build_v2 may find TLVs already in its output buffer: at or
 * after the longest fixed part and address block. */
#define PROXY_V2_TLV_OFF (PROXY_V2_FIXED + 36)
/* TLV types with a meaning to the code (the spec's PP2_TYPE_*). */
#define PROXY_TLV_CRC32C 0x03
/* A set of TLV types: bit (t & 7) of byte t >> 3 for type t. */
#define PROXY_TLV_SET_BYTES 32
#define PROXY_TLV_IN(set, t) (((set)[(t) >> 3] >> ((t) & 7)) & 1)

/*
 * Parser state. The caller owns the storage (a stack variable, or memory it
 * borrowed for the connection); it is about 170 bytes and holds no pointer
 * into the caller's data (only to the caller's set of TLV types to keep), so
 * bytes may come from any number of reads.
 */
struct proxy_parser {
	const char *error;   /* why the header was refused, once it was */
	uint32_t crc;        /* v2: running CRC32c, the checksum TLV counted as zeros */
	uint32_t crc_want;   /* v2: the checksum the header carries */
	uint16_t pos;        /* header bytes consumed so far */
	uint16_t total;      /* v2: 16 + length, once the length is known */
	uint16_t tlv_left;   /* v2: value bytes left in the current TLV */
	uint8_t versions;    /* PROXY_V1 and/or PROXY_V2 accepted */
	uint8_t version;     /* 0 until the first byte tells which */
	uint8_t state;       /* internal: reading, done or failed */
	uint8_t tlv_hdr;     /* v2: bytes of the current TLV's type and length read */
	uint8_t tlv_type;
	uint8_t flags;       /* internal: v2 command, addresses kept, checksum seen */
	uint16_t sub_left;   /* v2: value bytes left in the current SSL sub-TLV */
	uint8_t ssl_fixed;   /* v2: bytes of the SSL TLV's client and verify fields read */
	uint8_t sub_hdr;     /* v2: bytes of the current SSL sub-TLV's type and length read */
	uint8_t sub_type;
	uint8_t text;        /* v2: encoding the current value must have (internal) */
	uint8_t utf8_need;   /* v2: continuation bytes the current UTF-8 character owes */
	uint8_t utf8_lo, utf8_hi; /* v2: the range its next continuation byte must be in */
	uint8_t keeping;     /* v2: the current TLV's bytes are being kept */
	uint16_t kept;       /* v2: bytes of kept TLVs so far */
	const uint8_t *keep; /* v2: the TLV types to keep (proxy_parser_keep), or NULL */
	uint8_t buf[PROXY_V1_MAX + 1]; /* the v1 line, or the v2 fixed part and addresses */
};

/* What a complete header says. */
struct proxy_info {
	int version; /* PROXY_V1 or PROXY_V2 */
	/* 1 when the header carries no usable addresses (v2 LOCAL command, an
	 * UNSPEC, UNIX or datagram family; v1 "UNKNOWN"): the spec says to use
	 * the connection's own endpoints. src and dst are then AF_UNSPEC. */
	int local;
	struct sockaddr_storage src, dst; /* AF_INET or AF_INET6, with ports */
	int crc;         /* v2: the header carried a CRC32c TLV (it matched) */
	size_t tlv_kept; /* v2: bytes of TLVs kept (proxy_parse_keep), else 0 */
};

/* Start parsing a new connection's header; versions is PROXY_V1, PROXY_V2 or
 * PROXY_ANY (the first byte tells them apart). */
void proxy_parser_init(struct proxy_parser *, int versions);

/*
 * Feed the next n bytes the connection delivered (n may be 0). Returns
 *   0  every byte belongs to a header that is not complete yet: feed more;
 *   1  the header is complete: *used is how many of these n bytes it took
 *      (the rest is the client's payload, to be relayed) and *out says what
 *      it carries;
 *  -1  these bytes cannot be a valid header (malformed or oversized): errno
 *      is EPROTO and proxy_parse_error() says why. The check is made byte by
 *      byte, so a bad header is refused as soon as its first bad byte comes.
 * After 1 or -1 the parser is finished: further calls return -1 (EINVAL).
 * A header whose connection ends while this returns 0 is truncated.
 */
int proxy_parse(struct proxy_parser *, const void *data, size_t n, size_t *used,
    struct proxy_info *out);

/*
 * Keep the v2 TLVs whose types are in set (PROXY_TLV_SET_BYTES bytes, see
 * PROXY_TLV_IN; the caller keeps it alive until the parse ends): each such
 * TLV, whole (type, length and value) and in the order received, is copied
 * by proxy_parse_keep. A CRC32c TLV is never kept, whatever the set says: a
 * checksum holds only for the header it was computed over (out->crc says
 * whether one came, so that a new one can be computed for a new header).
 * Call after proxy_parser_init, before the first byte.
 */
void proxy_parser_keep(struct proxy_parser *, const uint8_t *set);

/*
 * proxy_parse, copying the bytes of the TLVs proxy_parser_keep asked for to
 * keep_to[k] as each is judged, k counting from 0 over the whole header
 * (proxy_parser_kept says how many so far; on 1, out->tlv_kept). keep_to
 * may be the address of data's first byte less the count kept before this
 * call, data being what follows the kept bytes in the caller's buffer: a
 * byte is read before its copy is written and no copy lands past the byte
 * being read, so kept TLVs are gathered in place, read after read. With
 * keep_to NULL nothing is copied or counted (proxy_parse).
 */
int proxy_parse_keep(struct proxy_parser *, const void *data, size_t n, size_t *used,
    struct proxy_info *out, uint8_t *keep_to);

/* Bytes of kept TLVs so far. */
size_t proxy_parser_kept(const struct proxy_parser *);

/* After -1: a short static reason ("bad v2 signature", "v1 line longer than
 * 107 bytes", ...); NULL before. */
const char *proxy_parse_error(const struct proxy_parser *);

/*
 * Write a header of version (PROXY_V1 or PROXY_V2) saying the connection came
 * from src to dst into buf (PROXY_HEADER_MAX bytes always suffice). Both
 * AF_INET: TCP4; both AF_INET6: TCP6; one of each: the IPv4 one mapped into
 * IPv6. Any other family: v1 "PROXY UNKNOWN", v2 a PROXY command with the
 * UNSPEC family. src and dst both NULL: v1 "PROXY UNKNOWN", v2 the LOCAL
 * command (a connection made by the proxy itself, e.g. a health check).
 * Returns the length, or -1 with errno EINVAL (bad version, one address NULL)
 * or ENOSPC (buflen too small).
 */
int proxy_build(int version, const struct sockaddr *src, const struct sockaddr *dst, void *buf,
    size_t buflen);

/*
 * Write a v2 header into buf like proxy_build, carrying TLVs: first the
 * pass_len bytes at pass (complete TLVs, e.g. those kept from a front's
 * header), then the add_len bytes at add (complete TLVs, e.g. configured
 * ones), then, with crc set, a CRC32c TLV computed over the whole header
 * as the spec says (the checksum field zero while computing). pass may lie
 * inside buf at offset PROXY_V2_TLV_OFF or later (it is moved into place
 * before anything is written over it); add must not overlap buf. Returns
 * the length, or -1 with errno EINVAL (one address NULL), EMSGSIZE (the
 * length field would pass PROXY_V2_LEN_MAX) or ENOSPC (buflen too small).
 */
int proxy_build_v2(const struct sockaddr *src, const struct sockaddr *dst, const void *pass,
    size_t pass_len, const void *add, size_t add_len, int crc, void *buf, size_t buflen);

/* The type number of a TLV by its name in the spec, lower case without
 * "PP2_TYPE_" ("alpn", "authority", "crc32c", "noop", "unique_id", "ssl",
 * "netns"), or -1. */
int proxy_tlv_type(const char *name);

/*
 * Judge len bytes of TLVs as this parser judges them in a received header
 * (every TLV complete, the constraints the spec puts on known types): 0, or
 * -1 with *why a static reason. For configured TLVs, so that sluice never
 * sends what it would itself refuse. A CRC32c TLV among them is refused
 * (its value is computed, not configured).
 */
int proxy_tlv_check(const void *tlvs, size_t len, const char **why);

#endif
