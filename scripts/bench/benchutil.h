/*
 * benchutil: the small helpers the benchmark clients share (clock, I/O,
 * a buffered line reader, percentiles).  Header-only: each client is one
 * .c file that scripts/bench.sh compiles with `cc -O2 -pthread`.
 *
 * Every client prints its figures as one line of key=value pairs on
 * stdout ("rate=123.4 secs=1.2 ..."), which the script picks apart; errors
 * go to stderr and exit 1.
 */
#ifndef BENCHUTIL_H
#define BENCHUTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Seconds on CLOCK_MONOTONIC. */
static inline double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void *
xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		die("out of memory (%zu bytes)", n);
	return p;
}

static inline void
write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("write: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
}

/* A growable byte buffer, to build a whole request stream up front. */
struct sbuf {
	char	*p;
	size_t	 len, cap;
};

static inline void
sbuf_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = b->cap ? b->cap * 2 : 65536;
		while (b->cap < b->len + n)
			b->cap *= 2;
		if ((b->p = realloc(b->p, b->cap)) == NULL)
			die("out of memory");
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* Buffered reads of lines and fixed-size blocks from one socket. */
struct rbuf {
	int	 fd;
	char	 buf[1 << 16];
	size_t	 start, end;
};

/* 1 = more bytes, 0 = EOF (or a shutdown socket), exits on an error. */
static inline int
rbuf_fill(struct rbuf *r)
{
	ssize_t n;

	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->end == sizeof r->buf)
		die("line longer than %zu bytes", sizeof r->buf);
	for (;;) {
		n = read(r->fd, r->buf + r->end, sizeof r->buf - r->end);
		if (n > 0) {
			r->end += (size_t)n;
			return 1;
		}
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == ECONNRESET || errno == ENOTCONN)
			return 0;
		die("read: %s", strerror(errno));
	}
}

/*
 * The next line without its '\n' (NUL-terminated in place; valid until the
 * next call), its length in *len; NULL at EOF.
 */
static inline char *
rbuf_line(struct rbuf *r, size_t *len)
{
	char *nl, *line;

	for (;;) {
		nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		if (nl != NULL)
			break;
		if (!rbuf_fill(r))
			return NULL;
	}
	line = r->buf + r->start;
	*nl = '\0';
	*len = (size_t)(nl - line);
	r->start = (size_t)(nl - r->buf) + 1;
	return line;
}

/* Skip n bytes (a body); 0 at EOF. */
static inline int
rbuf_skip(struct rbuf *r, size_t n)
{
	size_t k;

	while (n > 0) {
		if (r->start == r->end && !rbuf_fill(r))
			return 0;
		k = r->end - r->start < n ? r->end - r->start : n;
		r->start += k;
		n -= k;
	}
	return 1;
}

static inline int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of v[0..n), nearest rank; sorts v. */
static inline double
percentile(double *v, size_t n, double p)
{
	size_t k;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, cmp_double);
	k = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

#endif
