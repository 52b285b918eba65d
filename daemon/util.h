/*
 * util: allocation that cannot return NULL, formatted strings, clocks and
 * time formatting.  Shared by jobd and jobctl; no state, thread-safe.
 */
#ifndef JOBD_UTIL_H
#define JOBD_UTIL_H

#include <stdarg.h>
#include <stddef.h>

/* Allocate or abort: out of memory in these is a broken invariant. */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
void	*xmemdup(const void *, size_t);

/* Like asprintf(3) but aborts on failure; returns the length. */
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	 xvasprintf(char **, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));

/* Free a NULL-terminated array of strings and the array itself. */
void	 strv_free(char **);
/* Deep copy of a NULL-terminated array of strings (NULL stays NULL). */
char	**strv_dup(char *const *);
size_t	 strv_len(char *const *);

/* Seconds since the epoch (CLOCK_REALTIME) and since boot (CLOCK_MONOTONIC). */
double	 now_real(void);
double	 now_mono(void);

/*
 * Format a CLOCK_REALTIME time as RFC 3339 UTC with milliseconds,
 * "2026-11-22T01:11:42.123Z", into buf (at least UTIL_TIME_LEN bytes).
 */
#define UTIL_TIME_LEN 32
char	*util_format_time(double, char *buf, size_t len);

/* Set or clear O_NONBLOCK / FD_CLOEXEC; -1 with errno on failure. */
int	 util_set_nonblock(int fd);
int	 util_set_cloexec(int fd);

#endif
