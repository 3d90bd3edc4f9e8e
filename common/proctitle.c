/* SPDX-License-Identifier: BSD-2-Clause */
/* proctitle.c — process titles (see proctitle.h). The argument strings the
 * kernel gave us, and the environment strings right after them, are one
 * contiguous area; once their contents live elsewhere, the area is ours to
 * write, and /proc/PID/cmdline shows what we wrote there. Never logs. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "proctitle.h"

extern char **environ;

static char *area;     /* start of the original argv strings */
static size_t area_len; /* bytes up to the end of the last contiguous string */

static char *copies; /* one block holding the moved strings */

/* Bytes the strings of v (n of them) take with their NULs. */
static size_t
strings_size(char *const *v, int n)
{
	size_t len = 0;

	for (int i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	return len;
}

/* Copy the n strings of v to *at and point v at the copies; *at moves on. */
static void
strings_move(char **v, int n, char **at)
{
	for (int i = 0; i < n; i++) {
		size_t len = strlen(v[i]) + 1;

		memcpy(*at, v[i], len);
		v[i] = *at;
		*at += len;
	}
}

void
proctitle_init(int argc, char **argv)
{
	char *start, *end, *at, **env;
	int n = 0;

	if (area != NULL || argc <= 0 || argv == NULL || argv[0] == NULL)
		return;
	/* The area: argv[0] and each following string that starts right after
	 * the previous one ends, arguments first, then the environment. */
	start = argv[0];
	end = argv[0] + strlen(argv[0]) + 1;
	for (int i = 1; i < argc && argv[i] == end; i++)
		end = argv[i] + strlen(argv[i]) + 1;
	for (int i = 0; environ != NULL && environ[i] != NULL; i++, n++)
		if (environ[i] == end)
			end = environ[i] + strlen(environ[i]) + 1;

	/* A new environ array, so that setenv and unsetenv never touch the
	 * kernel's, and one block with copies of every string. The block stays
	 * referenced here for the life of the process, even when unsetenv
	 * drops a string from environ. */
	env = calloc((size_t)n + 1, sizeof(*env));
	copies = malloc(strings_size(argv, argc) + strings_size(environ, n) + 1);
	if (env == NULL || copies == NULL) {
		free(env);
		free(copies);
		copies = NULL;
		return;
	}
	if (n > 0)
		memcpy(env, environ, (size_t)n * sizeof(*env));
	at = copies;
	strings_move(argv, argc, &at);
	strings_move(env, n, &at);
	environ = env;
	/* glibc's err() and warn() name the program through these. */
	program_invocation_name = argv[0];
	program_invocation_short_name = strrchr(argv[0], '/') != NULL
	                                    ? strrchr(argv[0], '/') + 1
	                                    : argv[0];
	area = start;
	area_len = (size_t)(end - start);
}

void
proctitle_set(const char *comm, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	int n;

	if (comm != NULL)
		(void)prctl(PR_SET_NAME, comm, 0, 0, 0); /* the kernel truncates */
	if (area == NULL || area_len < 2) {
		errno = saved;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(area, area_len, fmt, ap);
	va_end(ap);
	/* The rest of the area is NULs, so cmdline reads as one argument (ps
	 * shows nothing of the old arguments or the environment). */
	if (n >= 0 && (size_t)n < area_len)
		memset(area + n, '\0', area_len - (size_t)n);
	errno = saved;
}
