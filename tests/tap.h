/* SPDX-License-Identifier: BSD-2-Clause */
/* tap.h — a small TAP producer for our tests (automake's tap-driver.sh reads
 * it). Header-only: each test program includes it once. */
#ifndef SLUICE_TAP_H
#define SLUICE_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static void __attribute__((unused))
plan(int n)
{
	printf("1..%d\n", n);
	fflush(stdout);
}

static void __attribute__((unused))
done_testing(void)
{
	printf("1..%d\n", tap_n);
	fflush(stdout);
}

static void __attribute__((format(printf, 1, 2))) __attribute__((unused))
diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("# ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	fflush(stdout);
}

static int __attribute__((format(printf, 2, 3))) __attribute__((unused))
ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (!cond)
		tap_failed++;
	return cond;
}

/* Compare integers; show both on failure. */
#define is(got, want, ...)                                                         \
	do {                                                                       \
		long long is_g_ = (long long)(got), is_w_ = (long long)(want);     \
		if (!ok(is_g_ == is_w_, __VA_ARGS__))                              \
			diag("  got %lld, want %lld", is_g_, is_w_);               \
	} while (0)

/* Compare strings; show both on failure. */
#define is_str(got, want, ...)                                                     \
	do {                                                                       \
		const char *is_g_ = (got), *is_w_ = (want);                        \
		if (!ok(is_g_ && is_w_ && strcmp(is_g_, is_w_) == 0, __VA_ARGS__)) \
			diag("  got \"%s\", want \"%s\"", is_g_ ? is_g_ : "(null)", \
			    is_w_ ? is_w_ : "(null)");                             \
	} while (0)

static void __attribute__((format(printf, 2, 3))) __attribute__((unused))
skip(int n, const char *fmt, ...)
{
	va_list ap;
	char why[256];

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	while (n-- > 0)
		printf("ok %d # SKIP %s\n", ++tap_n, why);
	fflush(stdout);
}

static void __attribute__((format(printf, 1, 2), noreturn)) __attribute__((unused))
bail(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(255);
}

/* Exit status for the end of main: non-zero when any test failed. */
static int __attribute__((unused))
tap_exit(void)
{
	return tap_failed ? 1 : 0;
}

#endif
