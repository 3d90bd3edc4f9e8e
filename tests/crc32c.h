/* SPDX-License-Identifier: BSD-2-Clause */
/* crc32c.h — CRC32c (Castagnoli) for the tests, with a table: written apart
 * from sluice's bitwise one in common/proxy.c, so that the two check each
 * other. Header-only; each test that includes it has its own table. */
#ifndef SLUICE_TESTS_CRC32C_H
#define SLUICE_TESTS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

static uint32_t crc_table[256];

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}

/* After crc_init. */
static uint32_t
crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;

	while (n--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

#endif
