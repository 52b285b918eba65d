/*
 * check_journal: the journal on its own, in temporary directories: the
 * record format, round trips, group commit and the fsync modes, torn tails
 * and damage, recover, compaction and a crash at each of its steps, the
 * fault seam (ENOSPC, EIO), and the replay time of a million records.
 *
 * Records carry "key value" text so that a test can compare the logical
 * state two replays produce (snapshot records stand for the newest record
 * of their key, with that record's seq).
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "util.h"

#define NKEYS	10

/* -- Helpers ----------------------------------------------------------- */

struct got {
	size_t		 n;
	size_t		 cap;
	uint64_t	*seq;
	uint8_t		*type;
	char	       **data;
	size_t		*len;
	int		 fail_at;	/* fail at this record (from 1) */
};

static int
collect(void *arg, uint64_t seq, uint8_t type, const void *data, size_t len,
    char **cause)
{
	struct got	*g = arg;

	if (g->fail_at != 0 && (size_t)g->fail_at == g->n + 1) {
		xasprintf(cause, "callback says no");
		return -1;
	}
	if (g->n == g->cap) {
		g->cap = g->cap == 0 ? 64 : g->cap * 2;
		g->seq = xreallocarray(g->seq, g->cap, sizeof *g->seq);
		g->type = xreallocarray(g->type, g->cap, sizeof *g->type);
		g->data = xreallocarray(g->data, g->cap, sizeof *g->data);
		g->len = xreallocarray(g->len, g->cap, sizeof *g->len);
	}
	g->seq[g->n] = seq;
	g->type[g->n] = type;
	g->data[g->n] = xmemdup(data, len);
	g->len[g->n] = len;
	g->n++;
	return 0;
}

static void
got_free(struct got *g)
{
	size_t	i;

	for (i = 0; i < g->n; i++)
		free(g->data[i]);
	free(g->seq);
	free(g->type);
	free(g->data);
	free(g->len);
	memset(g, 0, sizeof *g);
}

static int
count_cb(void *arg, uint64_t seq, uint8_t type, const void *data, size_t len,
    char **cause)
{
	uint64_t	*n = arg;

	(void)seq;
	(void)type;
	(void)data;
	(void)len;
	(void)cause;
	(*n)++;
	return 0;
}

/*
 * Each test runs in its own process (CK_FORK) with a fresh temporary
 * directory T, the journal in J and the fault file path in F.
 */
static char	T[256], J[300], F[300];

static void
setup(void)
{
	const char	*base = getenv("TMPDIR");

	snprintf(T, sizeof T, "%s/check_journal.XXXXXX",
	    base != NULL ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(T));
	snprintf(J, sizeof J, "%s/journal", T);
	snprintf(F, sizeof F, "%s/fault", T);
}

static void
teardown(void)
{
	char	cmd[300];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", T);
	if (system(cmd) != 0)
		ck_abort_msg("%s failed", cmd);
}

/* A path, formatted into one of a few static buffers. */
static const char *
pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *
pathf(const char *fmt, ...)
{
	static char	buf[8][400];
	static int	next;
	char		*p = buf[next++ % 8];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(p, sizeof buf[0], fmt, ap);
	va_end(ap);
	return p;
}

static const char *
seg_path(uint64_t seq)
{
	return pathf("%s/seg-%020llu.log", J, (unsigned long long)seq);
}

static const char *
snap_path(uint64_t seq)
{
	return pathf("%s/snap-%020llu.log", J, (unsigned long long)seq);
}

static unsigned char *
read_file(const char *path, size_t *len)
{
	unsigned char	*buf;
	struct stat	 sb;
	int		 fd;

	ck_assert_msg((fd = open(path, O_RDONLY)) != -1, "%s: %s", path,
	    strerror(errno));
	ck_assert_int_eq(fstat(fd, &sb), 0);
	*len = (size_t)sb.st_size;
	buf = xmalloc(*len + 1);
	ck_assert_int_eq(read(fd, buf, *len), (ssize_t)*len);
	close(fd);
	return buf;
}

static void
write_file(const char *path, const void *buf, size_t len)
{
	int	fd;

	ck_assert_msg((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) !=
	    -1, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static int
exists(const char *path)
{
	struct stat	sb;

	return stat(path, &sb) == 0;
}

static long long
file_size(const char *path)
{
	struct stat	sb;

	ck_assert_int_eq(stat(path, &sb), 0);
	return (long long)sb.st_size;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file's name and contents, sorted: to prove nothing changed. */
static char *
dir_dump(const char *dir, size_t *len)
{
	struct dirent	*de;
	char		**names = NULL, *out = NULL, *p;
	unsigned char	*data;
	size_t		 n = 0, i, dlen, olen = 0;
	DIR		*d;

	ck_assert_ptr_nonnull(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		names = xreallocarray(names, n + 2, sizeof *names);
		names[n++] = xstrdup(de->d_name);
		names[n] = NULL;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof *names, name_cmp);
	for (i = 0; i < n; i++) {
		p = xstrdup(pathf("%s/%s", dir, names[i]));
		data = read_file(p, &dlen);
		out = xreallocarray(out, olen + strlen(names[i]) + 1 + dlen, 1);
		memcpy(out + olen, names[i], strlen(names[i]) + 1);
		olen += strlen(names[i]) + 1;
		memcpy(out + olen, data, dlen);
		olen += dlen;
		free(data);
		free(p);
	}
	strv_free(names);
	*len = olen;
	return out;
}

static size_t
count_files(const char *dir, const char *suffix)
{
	struct dirent	*de;
	size_t		 n = 0, l, m = strlen(suffix);
	DIR		*d;

	ck_assert_ptr_nonnull(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		l = strlen(de->d_name);
		if (de->d_name[0] != '.' && l >= m &&
		    strcmp(de->d_name + l - m, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static struct journal_opts
opts_mode(enum fsync_mode mode)
{
	struct journal_opts	o;

	memset(&o, 0, sizeof o);
	o.fsync = mode;
	o.batch_ms = 50;
	o.max_bytes = 64 * 1024 * 1024;
	return o;
}

static struct journal *
jopen(const char *jdir, const struct journal_opts *o, struct got *g)
{
	struct journal	*j = NULL;
	char		*cause = NULL;

	if (journal_open(jdir, o, g != NULL ? collect : NULL, g, &j,
	    &cause) != 0)
		ck_abort_msg("journal_open: %s", cause);
	ck_assert_ptr_nonnull(j);
	return j;
}

/* Open must fail; the cause, for the caller to check and free. */
static char *
jopen_fails(const char *jdir, const struct journal_opts *o)
{
	struct journal	*j = NULL;
	struct got	 g = { 0 };
	char		*cause = NULL;

	ck_assert_int_eq(journal_open(jdir, o, collect, &g, &j, &cause), -1);
	ck_assert_ptr_null(j);
	ck_assert_ptr_nonnull(cause);
	got_free(&g);
	return cause;
}

struct prog {
	uint64_t	 durable;
	int		 fatal;
	uint64_t	 from;
	uint64_t	 to;
};

/* Progress until durable >= seq, a failed batch or a fatal error. */
static struct prog
wait_for(struct journal *j, uint64_t seq)
{
	struct pollfd	pfd = { journal_fd(j), POLLIN, 0 };
	struct prog	p;
	double		deadline = now_mono() + 20;

	for (;;) {
		memset(&p, 0, sizeof p);
		p.durable = journal_progress(j, &p.fatal, &p.from, &p.to);
		if (p.durable >= seq || p.fatal != 0 || p.from != 0)
			return p;
		ck_assert_msg(now_mono() < deadline, "no progress to %llu",
		    (unsigned long long)seq);
		poll(&pfd, 1, 100);
	}
}

/* Progress until n compactions are done. */
static void
wait_compactions(struct journal *j, uint64_t n)
{
	struct journal_stats	st;
	struct pollfd		pfd = { journal_fd(j), POLLIN, 0 };
	struct prog		p;
	double			deadline = now_mono() + 20;

	for (;;) {
		p.durable = journal_progress(j, &p.fatal, &p.from, &p.to);
		ck_assert_int_eq(p.fatal, 0);
		journal_stats(j, &st);
		if (st.compactions >= n)
			return;
		ck_assert_msg(now_mono() < deadline, "compaction never ended");
		poll(&pfd, 1, 100);
	}
}

/* Payload of record i: "key value" plus padding of varying length. */
static size_t
payload(uint64_t i, char *buf, size_t len)
{
	int	n;

	n = snprintf(buf, len, "%llu %llu %.*s", (unsigned long long)(i %
	    NKEYS), (unsigned long long)i, (int)(i % 37),
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	return (size_t)n;
}

static uint64_t
append_n(struct journal *j, uint64_t first, uint64_t n)
{
	char		buf[128];
	uint64_t	i, seq = 0;
	size_t		len;

	for (i = first; i < first + n; i++) {
		len = payload(i, buf, sizeof buf);
		ck_assert_int_eq(journal_append(j, (uint8_t)(i & 0xff), buf,
		    len, &seq), 0);
	}
	return seq;
}

/* Append records first..first+n-1, commit, wait until durable. */
static uint64_t
append_sync(struct journal *j, uint64_t first, uint64_t n)
{
	uint64_t	seq = append_n(j, first, n);
	struct prog	p;

	journal_commit(j);
	p = wait_for(j, seq);
	ck_assert_int_eq(p.fatal, 0);
	ck_assert_uint_eq(p.from, 0);
	ck_assert_uint_ge(p.durable, seq);
	return seq;
}

/* Records first..first+n-1 in g, from index at, with seq == i. */
static void
check_records(const struct got *g, size_t at, uint64_t first, uint64_t n)
{
	char		buf[128];
	uint64_t	i;
	size_t		len;

	ck_assert_uint_ge(g->n, at + n);
	for (i = first; i < first + n; i++, at++) {
		len = payload(i, buf, sizeof buf);
		ck_assert_uint_eq(g->seq[at], i);
		ck_assert_uint_eq(g->type[at], i & 0xff);
		ck_assert_uint_eq(g->len[at], len);
		ck_assert_mem_eq(g->data[at], buf, len);
	}
}

/*
 * The logical state: per key, the value of its newest record (by seq).
 * A snapshot record and the segment record it stands for agree.
 */
struct state {
	uint64_t	seq[NKEYS];
	uint64_t	value[NKEYS];
};

static void
state_of(const struct got *g, struct state *st)
{
	unsigned long long	key, value;
	char			text[160];
	size_t			i;

	memset(st, 0, sizeof *st);
	for (i = 0; i < g->n; i++) {
		snprintf(text, sizeof text, "%.*s", (int)g->len[i],
		    g->data[i]);
		ck_assert_int_eq(sscanf(text, "%llu %llu", &key, &value), 2);
		ck_assert_uint_lt(key, NKEYS);
		if (g->seq[i] > st->seq[key]) {
			st->seq[key] = g->seq[i];
			st->value[key] = value;
		}
	}
}

/* Add one snapshot record per key of st. */
static void
snapshot_state(struct journal *j, const struct state *st)
{
	char		buf[128];
	size_t		len;
	uint64_t	k;

	for (k = 0; k < NKEYS; k++) {
		if (st->seq[k] == 0)
			continue;
		len = payload(st->value[k], buf, sizeof buf);
		ck_assert_int_eq(journal_compact_add(j, 0x55, st->seq[k], buf,
		    len), 0);
	}
}

/* The state after records 1..n with seq == i. */
static void
state_upto(uint64_t n, struct state *st)
{
	uint64_t	i;

	memset(st, 0, sizeof *st);
	for (i = 1; i <= n; i++) {
		st->seq[i % NKEYS] = i;
		st->value[i % NKEYS] = i;
	}
}

/* -- Format ------------------------------------------------------------ */

START_TEST(test_crc32c)
{
	const char	*s = "123456789";
	uint32_t	 c;

	ck_assert_uint_eq(journal_crc32c(0, s, 9), 0xe3069283U);
	c = journal_crc32c(0, s, 4);
	ck_assert_uint_eq(journal_crc32c(c, s + 4, 5), 0xe3069283U);
	ck_assert_uint_eq(journal_crc32c(0, "", 0), 0);
}
END_TEST

START_TEST(test_decode)
{
	unsigned char		buf[256], bad[256];
	struct journal_rec	rec;
	size_t			size, i, cut;
	int			bit;

	size = journal_encode(buf, 42, 7, "hello", 5);
	ck_assert_uint_eq(size, JOURNAL_RECORD_SIZE(5));
	ck_assert_int_eq(journal_decode(buf, size, &rec), JOURNAL_DECODE_OK);
	ck_assert_uint_eq(rec.seq, 42);
	ck_assert_uint_eq(rec.type, 7);
	ck_assert_uint_eq(rec.len, 5);
	ck_assert_uint_eq(rec.size, size);
	ck_assert_int_eq(rec.end, 0);
	ck_assert_mem_eq(rec.data, "hello", 5);
	/* Extra bytes after the record do not matter. */
	ck_assert_int_eq(journal_decode(buf, sizeof buf, &rec),
	    JOURNAL_DECODE_OK);
	/* Every cut is short (not bad), every bit flip is caught. */
	for (cut = 0; cut < size; cut++)
		ck_assert_int_eq(journal_decode(buf, cut, &rec),
		    JOURNAL_DECODE_SHORT);
	for (i = 0; i < size; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(bad, buf, size);
			bad[i] ^= (unsigned char)(1 << bit);
			ck_assert_int_ne(journal_decode(bad, size, &rec),
			    JOURNAL_DECODE_OK);
		}
	}
	/* A length above the bound is bad before anything is read. */
	memcpy(bad, buf, size);
	bad[7] = 0x7f;
	ck_assert_int_eq(journal_decode(bad, size, &rec),
	    JOURNAL_DECODE_LENGTH);
	bad[0] = 'X';
	ck_assert_int_eq(journal_decode(bad, size, &rec), JOURNAL_DECODE_MAGIC);
	/* An empty payload. */
	size = journal_encode(buf, 1, 0, NULL, 0);
	ck_assert_int_eq(journal_decode(buf, size, &rec), JOURNAL_DECODE_OK);
	ck_assert_uint_eq(rec.len, 0);
}
END_TEST

/* -- Round trips ------------------------------------------------------- */

START_TEST(test_round_trip)
{
	struct journal_opts	 o = opts_mode(FSYNC_ALWAYS);
	struct journal_stats	 st;
	struct journal		*j;
	struct got		 g = { 0 };
	struct stat		 sb;
	uint64_t		 seq;

	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, 0);
	ck_assert_int_eq(stat(J, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
	append_n(j, 1, 3);
	journal_commit(j);
	append_n(j, 4, 3);
	journal_commit(j);
	seq = append_sync(j, 7, 4);
	ck_assert_uint_eq(seq, 10);
	journal_stats(j, &st);
	ck_assert_uint_eq(st.records, 10);
	ck_assert_uint_ge(st.syncs, 1);
	ck_assert_uint_eq(st.bytes, (uint64_t)file_size(seg_path(1)));
	journal_close(j);

	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, 10);
	check_records(&g, 0, 1, 10);
	journal_stats(j, &st);
	ck_assert_uint_eq(st.records, 10);
	ck_assert_uint_eq(st.torn_bytes, 0);
	ck_assert_uint_eq(append_sync(j, 11, 1), 11);
	journal_close(j);
	got_free(&g);

	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, 11);
	check_records(&g, 0, 1, 11);
	journal_close(j);
	journal_close(NULL);
	got_free(&g);
}
END_TEST

START_TEST(test_many_batches)
{
	struct journal_opts	 o = opts_mode(FSYNC_ALWAYS);
	struct journal		*j;
	struct got		 g = { 0 };
	uint64_t		 next = 1, seq = 0, b;
	struct prog		 p;

	j = jopen(J, &o, NULL);
	for (b = 0; b < 300; b++) {
		seq = append_n(j, next, 1 + b % 50);
		next += 1 + b % 50;
		journal_commit(j);
		/* Look now and then: the loop does not wait for the disk. */
		if (b % 7 == 0) {
			p.durable = journal_progress(j, &p.fatal, &p.from,
			    &p.to);
			ck_assert_int_eq(p.fatal, 0);
			ck_assert_uint_le(p.durable, seq);
		}
	}
	p = wait_for(j, seq);
	ck_assert_uint_eq(p.durable, seq);
	journal_close(j);
	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, next - 1);
	check_records(&g, 0, 1, next - 1);
	journal_close(j);
	got_free(&g);
}
END_TEST

START_TEST(test_callback_fails)
{
	struct journal_opts	 o = opts_mode(FSYNC_OFF);
	struct journal		*j;
	struct got		 g = { 0 };
	char			*cause = NULL, *before, *after;
	size_t			 lb, la;

	j = jopen(J, &o, NULL);
	append_sync(j, 1, 5);
	journal_close(j);
	before = dir_dump(J, &lb);
	g.fail_at = 3;
	ck_assert_int_eq(journal_open(J, &o, collect, &g, &j, &cause), -1);
	ck_assert_str_eq(cause, "callback says no");
	after = dir_dump(J, &la);
	ck_assert_uint_eq(la, lb);
	ck_assert_mem_eq(after, before, lb);
	free(before);
	free(after);
	free(cause);
	got_free(&g);
}
END_TEST

START_TEST(test_locked)
{
	struct journal_opts	 o = opts_mode(FSYNC_OFF);
	struct journal		*j;
	char			*cause;

	j = jopen(J, &o, NULL);
	cause = jopen_fails(J, &o);
	ck_assert_ptr_nonnull(strstr(cause, "in use"));
	free(cause);
	journal_close(j);
	journal_close(jopen(J, &o, NULL));
}
END_TEST

START_TEST(test_too_large)
{
	struct journal_opts	 o = opts_mode(FSYNC_OFF);
	struct journal		*j;
	uint64_t		 seq;

	j = jopen(J, &o, NULL);
	ck_assert_int_eq(journal_append(j, 1, "", JOURNAL_MAX_PAYLOAD + 1,
	    &seq), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	journal_close(j);
}
END_TEST

/* -- Torn tails and damage --------------------------------------------- */

/* A journal of n records in seg-1; the offset where record n starts. */
static long long
make_journal(const char *jdir, uint64_t n)
{
	struct journal_opts	 o = opts_mode(FSYNC_OFF);
	struct journal		*j;
	char			 buf[128];
	long long		 off = 0;
	uint64_t		 i;

	j = jopen(jdir, &o, NULL);
	append_sync(j, 1, n);
	journal_close(j);
	for (i = 1; i < n; i++)
		off += (long long)JOURNAL_RECORD_SIZE(payload(i, buf,
		    sizeof buf));
	return off;
}

START_TEST(test_torn_tail)
{
	struct journal_opts	 o = opts_mode(FSYNC_ALWAYS);
	struct journal_stats	 st;
	struct journal		*j;
	struct got		 g = { 0 };
	char			*seg = xstrdup(seg_path(1));
	unsigned char		*orig, *buf;
	size_t			 size, cut, k;
	long long		 last;

	last = make_journal(J, 20);
	orig = read_file(seg, &size);
	/* Cut anywhere inside the last record. */
	for (cut = (size_t)last; cut < size; cut++) {
		write_file(seg, orig, cut);
		j = jopen(J, &o, &g);
		ck_assert_uint_eq(g.n, 19);
		check_records(&g, 0, 1, 19);
		journal_stats(j, &st);
		ck_assert_uint_eq(st.torn_bytes, cut - (size_t)last);
		journal_close(j);
		ck_assert_int_eq(file_size(seg), last);
		got_free(&g);
	}
	/* Garbage after a whole journal: random bytes, then zeros. */
	buf = xmalloc(size + 4096);
	memcpy(buf, orig, size);
	srandom(1);
	for (k = 1; k <= 300; k += 37) {
		size_t	i;

		for (i = 0; i < k; i++)
			buf[size + i] = (unsigned char)random();
		write_file(seg, buf, size + k);
		j = jopen(J, &o, &g);
		ck_assert_uint_eq(g.n, 20);
		journal_stats(j, &st);
		ck_assert_uint_eq(st.torn_bytes, k);
		journal_close(j);
		got_free(&g);
	}
	memset(buf + size, 0, 4096);
	write_file(seg, buf, size + 4096);
	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, 20);
	journal_stats(j, &st);
	ck_assert_uint_eq(st.torn_bytes, 4096);
	journal_close(j);
	got_free(&g);
	/* A cut record, then zeros, as a crash on ext4 can leave. */
	memset(buf + last + 5, 0, 4096);
	write_file(seg, buf, (size_t)last + 5 + 4096);
	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, 19);
	journal_stats(j, &st);
	ck_assert_uint_eq(st.torn_bytes, 5 + 4096);
	/* Appending after the cut goes on cleanly. */
	ck_assert_uint_eq(append_sync(j, 20, 2), 21);
	journal_close(j);
	got_free(&g);
	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, 21);
	check_records(&g, 0, 1, 21);
	journal_close(j);
	got_free(&g);
	free(buf);
	free(orig);
	free(seg);
}
END_TEST

START_TEST(test_corrupt_middle)
{
	struct journal_opts	 o = opts_mode(FSYNC_ALWAYS);
	char			*seg = xstrdup(seg_path(1));
	char			*cause, *before, *after;
	char			 want[64], buf[128];
	unsigned char		*orig, *bad;
	size_t			 size, lb, la, at;
	long long		 off = 0;
	uint64_t		 i;
	int			 where;

	make_journal(J, 20);
	orig = read_file(seg, &size);
	for (i = 1; i < 5; i++)
		off += (long long)JOURNAL_RECORD_SIZE(payload(i, buf,
		    sizeof buf));
	/* In the payload, the seq, the magic, the checksum of record 5. */
	for (where = 0; where < 4; where++) {
		bad = xmemdup(orig, size);
		at = (size_t)off + (where == 0 ? 20 : where == 1 ? 9 :
		    where == 2 ? 0 : JOURNAL_RECORD_SIZE(payload(5, buf,
		    sizeof buf)) - 1);
		bad[at] ^= 0x10;
		write_file(seg, bad, size);
		before = dir_dump(J, &lb);
		cause = jopen_fails(J, &o);
		snprintf(want, sizeof want, "offset %lld:", off);
		ck_assert_msg(strstr(cause, want) != NULL, "%s", cause);
		ck_assert_ptr_nonnull(strstr(cause, seg));
		ck_assert_ptr_nonnull(strstr(cause, "--recover"));
		after = dir_dump(J, &la);
		ck_assert_uint_eq(la, lb);
		ck_assert_mem_eq(after, before, lb);
		free(before);
		free(after);
		free(cause);
		free(bad);
	}
	free(orig);
	free(seg);
}
END_TEST

/* seg-1 holds 1..10 and seg-11 holds 11..20. */
static void
make_two_segments(const char *jdir)
{
	struct journal_opts	 o = opts_mode(FSYNC_OFF);
	struct journal		*j;

	j = jopen(jdir, &o, NULL);
	append_sync(j, 1, 10);
	ck_assert_int_eq(journal_compact_begin(j), 0);
	journal_close(j);		/* the compaction is abandoned */
	j = jopen(jdir, &o, NULL);
	append_sync(j, 11, 10);
	journal_close(j);
	ck_assert(exists(seg_path(11)));
	ck_assert_uint_eq(count_files(jdir, ".tmp"), 0);
}

START_TEST(test_damage_older_segment)
{
	struct journal_opts	 o = opts_mode(FSYNC_ALWAYS);
	struct journal		*j;
	struct got		 g = { 0 };
	char			*seg1 = xstrdup(seg_path(1));
	char			*cause, *b, *a;
	unsigned char		*orig;
	size_t			 size, lb, la;

	make_two_segments(J);
	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, 20);
	check_records(&g, 0, 1, 20);
	journal_close(j);
	got_free(&g);

	/* A torn end in an older segment is damage, not a torn tail. */
	orig = read_file(seg1, &size);
	write_file(seg1, orig, size - 3);
	b = dir_dump(J, &lb);
	cause = jopen_fails(J, &o);
	ck_assert_ptr_nonnull(strstr(cause, seg1));
	a = dir_dump(J, &la);
	ck_assert_uint_eq(la, lb);
	ck_assert_mem_eq(a, b, lb);
	free(cause);
	free(a);
	free(b);
	/* So is a flipped byte in its last record. */
	orig[size - 2] ^= 1;
	write_file(seg1, orig, size);
	cause = jopen_fails(J, &o);
	ck_assert_ptr_nonnull(strstr(cause, "bad checksum"));
	free(cause);
	free(orig);
	free(seg1);
}
END_TEST

/* The newest segment is empty: the one before it is the tail. */
START_TEST(test_torn_before_empty_segment)
{
	struct journal_opts	 o = opts_mode(FSYNC_ALWAYS);
	struct journal		*j;
	struct got		 g = { 0 };
	char			*seg1 = xstrdup(seg_path(1));
	unsigned char		*orig;
	size_t			 size;

	j = jopen(J, &o, NULL);
	append_sync(j, 1, 10);
	ck_assert_int_eq(journal_compact_begin(j), 0);
	journal_close(j);
	ck_assert_int_eq(file_size(seg_path(11)), 0);
	orig = read_file(seg1, &size);
	write_file(seg1, orig, size - 7);
	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, 9);
	/* Seq 10 was cut: the next record still goes in seg-11. */
	ck_assert_uint_eq(append_sync(j, 11, 1), 11);
	journal_close(j);
	got_free(&g);
	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, 10);
	check_records(&g, 0, 1, 9);
	check_records(&g, 9, 11, 1);
	journal_close(j);
	got_free(&g);
	free(orig);
	free(seg1);
}
END_TEST

START_TEST(test_seq_out_of_order)
{
	struct journal_opts	 o = opts_mode(FSYNC_OFF);
	unsigned char		 buf[512];
	char			*cause;
	size_t			 len = 0;

	ck_assert_int_eq(mkdir(J, 0700), 0);
	len += journal_encode(buf + len, 1, 1, "a", 1);
	len += journal_encode(buf + len, 2, 1, "b", 1);
	len += journal_encode(buf + len, 2, 1, "c", 1);
	len += journal_encode(buf + len, 3, 1, "d", 1);
	write_file(seg_path(1), buf, len);
	cause = jopen_fails(J, &o);
	ck_assert_ptr_nonnull(strstr(cause, "out of order"));
	ck_assert_ptr_nonnull(strstr(cause, "offset 44:"));
	free(cause);
	/* A record below its segment's name is out of place too. */
	len = journal_encode(buf, 4, 1, "a", 1);
	write_file(seg_path(1), buf, len);
	write_file(seg_path(5), buf, len);
	cause = jopen_fails(J, &o);
	ck_assert_ptr_nonnull(strstr(cause, "out of order"));
	free(cause);
}
END_TEST

START_TEST(test_tmp_removed)
{
	struct journal_opts	 o = opts_mode(FSYNC_OFF);
	struct journal		*j;
	char			*stray, *other;

	ck_assert_int_eq(mkdir(J, 0700), 0);
	stray = xstrdup(pathf("%s/snap-00000000000000000005.tmp", J));
	other = xstrdup(pathf("%s/README", J));
	write_file(stray, "junk", 4);
	write_file(other, "mine", 4);
	j = jopen(J, &o, NULL);
	journal_close(j);
	ck_assert(!exists(stray));
	ck_assert(exists(other));
	free(stray);
	free(other);
}
END_TEST

/*
 * Power loss, emulated: a child appends in fsync = always and reports
 * each acknowledged seq through a pipe; it is killed mid-stream; the
 * newest segment is cut anywhere after the last acknowledged record, with
 * garbage after the cut in some rounds.  Every acknowledged record must
 * come back, and what comes back after them is an unbroken run.
 */
START_TEST(test_power_loss)
{
	struct journal_opts	 o = opts_mode(FSYNC_ALWAYS);
	struct journal_rec	 rec;
	struct journal		*j;
	struct got		 g = { 0 };
	unsigned char		*file, junk[512];
	uint64_t		 acked, v, next, i;
	size_t			 size, off, cut, k;
	ssize_t			 n;
	pid_t			 pid;
	int			 p[2], round, status;

	srandom(7);
	for (round = 0; round < 12; round++) {
		ck_assert_int_eq(pipe(p), 0);
		if ((pid = fork()) == 0) {
			close(p[0]);
			j = jopen(J, &o, &g);
			next = g.n + 1;
			for (;;) {
				v = append_sync(j, next, 1 + next % 7);
				next = v + 1;
				if (write(p[1], &v, sizeof v) != sizeof v)
					_exit(1);
			}
		}
		close(p[1]);
		/* Let it run for a while, then pull the plug. */
		for (k = 0; k < 20 + (size_t)random() % 200; k++)
			ck_assert_int_eq(read(p[0], &v, sizeof v), sizeof v);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		acked = v;
		while ((n = read(p[0], &v, sizeof v)) == sizeof v)
			acked = v;
		close(p[0]);

		/* Find the end of the last acknowledged record. */
		file = read_file(seg_path(1), &size);
		for (off = 0; off < size; off += rec.size) {
			ck_assert_int_eq(journal_decode(file + off,
			    size - off, &rec), JOURNAL_DECODE_OK);
			if (rec.seq == acked)
				break;
		}
		ck_assert_uint_lt(off, size);
		off += rec.size;
		cut = off + (size_t)random() % (size - off + 1);
		k = round % 3 == 0 ? (size_t)random() % sizeof junk : 0;
		for (i = 0; i < k; i++)
			junk[i] = (unsigned char)random();
		file = xreallocarray(file, cut + k + 1, 1);
		memcpy(file + cut, junk, k);
		write_file(seg_path(1), file, cut + k);
		free(file);

		j = jopen(J, &o, &g);
		ck_assert_uint_ge(g.n, acked);
		for (i = 0; i < g.n; i++)
			if (g.seq[i] != i + 1)
				ck_abort_msg("round %d: record %llu has seq "
				    "%llu", round, (unsigned long long)i + 1,
				    (unsigned long long)g.seq[i]);
		journal_close(j);
		got_free(&g);
	}
}
END_TEST

/* Reserved room moves to the new segment when compaction begins. */
START_TEST(test_reserve_across_rotation)
{
	struct journal_opts	 o = opts_mode(FSYNC_ALWAYS);
	struct journal		*j;
	struct got		 g = { 0 };
	struct state		 st;
	uint64_t		 seq;

	o.fault_file = F;
	j = jopen(J, &o, NULL);
	append_sync(j, 1, 10);
	ck_assert_int_eq(journal_reserve(j, 3 * JOURNAL_RECORD_SIZE(20)), 0);
	ck_assert_int_eq(journal_compact_begin(j), 0);
	state_upto(10, &st);
	snapshot_state(j, &st);
	ck_assert_int_eq(journal_compact_end(j), 0);
	wait_compactions(j, 1);
	append_sync(j, 11, 1);
	write_file(F, "enospc", 6);
	/* It would need a new segment, which needs room. */
	ck_assert_int_eq(journal_compact_begin(j), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(journal_append(j, 1, "12345678901234567890", 20,
	    &seq), -1);
	/* Three promised records, then nothing more. */
	ck_assert_int_eq(journal_reserve(j, -3 * (long long)
	    JOURNAL_RECORD_SIZE(20)), 0);
	for (seq = 0; seq < 3; seq++)
		ck_assert_int_eq(journal_append(j, 2, "abcdefghijabcdefghij",
		    20, NULL), 0);
	ck_assert_int_eq(journal_append(j, 1, "x", 1, &seq), -1);
	journal_commit(j);
	ck_assert_uint_eq(wait_for(j, 14).durable, 14);
	journal_close(j);
	ck_assert(exists(seg_path(11)));
	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, NKEYS + 4);
	ck_assert_uint_eq(g.seq[NKEYS + 3], 14);
	journal_close(j);
	got_free(&g);
}
END_TEST

/* -- Recover ----------------------------------------------------------- */

START_TEST(test_recover)
{
	struct journal_opts	 o = opts_mode(FSYNC_ALWAYS);
	struct journal		*j;
	struct got		 g = { 0 };
	char			*seg1 = xstrdup(seg_path(1));
	char			*report = NULL;
	char			*damaged, *dropped, buf[128];
	unsigned char		*orig, *copy;
	size_t			 size, csize;
	long long		 off = 0;
	uint64_t		 i;

	make_two_segments(J);
	/* Damage record 4 of seg-1: 1..3 stay, 4..20 go. */
	for (i = 1; i < 4; i++)
		off += (long long)JOURNAL_RECORD_SIZE(payload(i, buf,
		    sizeof buf));
	orig = read_file(seg1, &size);
	orig[off + 18] ^= 0xff;
	write_file(seg1, orig, size);
	free(jopen_fails(J, &o));

	ck_assert_int_eq(journal_recover(J, &report), 0);
	/* Record 4 cannot be read; 5..20 can, and are dropped. */
	ck_assert_msg(strstr(report, "kept 3 records, dropped 16") != NULL,
	    "%s", report);
	ck_assert_ptr_nonnull(strstr(report, "offset 81: bad checksum"));
	ck_assert_ptr_nonnull(strstr(report, "seg-00000000000000000001.log"));
	free(report);
	/* The damaged file is kept as it was; the later one set aside. */
	xasprintf(&damaged, "%s.damaged", seg1);
	copy = read_file(damaged, &csize);
	ck_assert_uint_eq(csize, size);
	ck_assert_mem_eq(copy, orig, size);
	xasprintf(&dropped, "%s.dropped", seg_path(11));
	ck_assert(exists(dropped));
	ck_assert(!exists(seg_path(11)));
	ck_assert_int_eq(file_size(seg1), off);
	free(damaged);
	free(dropped);

	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, 3);
	check_records(&g, 0, 1, 3);
	/* Seqs of dropped records are not given again. */
	ck_assert_uint_eq(append_sync(j, 21, 1), 21);
	journal_close(j);
	got_free(&g);

	ck_assert_int_eq(journal_recover(J, &report), 0);
	ck_assert_ptr_nonnull(strstr(report, "no damage"));
	free(report);
	/* A second damage: its copy gets a name of its own. */
	free(orig);
	orig = read_file(seg1, &size);
	orig[size - 1] ^= 1;
	write_file(seg1, orig, size);
	ck_assert_int_eq(journal_recover(J, &report), 0);
	ck_assert_ptr_nonnull(strstr(report, "kept 2 records"));
	free(report);
	xasprintf(&report, "%s.damaged.1", seg1);
	ck_assert(exists(report));
	free(report);
	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, 2);
	journal_close(j);
	got_free(&g);

	ck_assert_int_eq(journal_recover("/nonexistent/journal", &report), 0);
	free(report);
	free(orig);
	free(copy);
	free(seg1);
}
END_TEST

/* -- Compaction -------------------------------------------------------- */

/* Compaction with appends going on, then a replay of the result. */
START_TEST(test_compaction_switch)
{
	struct journal_opts	 o = opts_mode(FSYNC_ALWAYS);
	struct journal_stats	 st;
	struct journal		*j;
	struct got		 g = { 0 };
	struct state		 want, have;
	size_t			 i;

	j = jopen(J, &o, NULL);
	append_sync(j, 1, 100);
	ck_assert_int_eq(journal_compact_begin(j), 0);
	ck_assert_int_eq(journal_compact_begin(j), -1);
	ck_assert_int_eq(errno, EBUSY);
	append_sync(j, 101, 5);
	/* The live state as the caller sees it now: up to 105. */
	state_upto(105, &want);
	snapshot_state(j, &want);
	ck_assert_int_eq(journal_compact_end(j), 0);
	append_n(j, 106, 1);
	journal_commit(j);
	wait_compactions(j, 1);
	ck_assert_int_eq(wait_for(j, 106).durable, 106);
	journal_stats(j, &st);
	ck_assert_uint_eq(st.compactions, 1);
	ck_assert_uint_eq(st.bytes, (uint64_t)(file_size(snap_path(100)) +
	    file_size(seg_path(101))));
	journal_close(j);

	ck_assert(exists(snap_path(100)));
	ck_assert(!exists(seg_path(1)));
	ck_assert(exists(seg_path(101)));
	ck_assert_uint_eq(count_files(J, ".log"), 2);
	ck_assert_uint_eq(count_files(J, ".tmp"), 0);

	j = jopen(J, &o, &g);
	/* Snapshot records first (type 0x55), then 101..106. */
	ck_assert_uint_eq(g.n, NKEYS + 6);
	for (i = 0; i < NKEYS; i++)
		ck_assert_uint_eq(g.type[i], 0x55);
	check_records(&g, NKEYS, 101, 6);
	state_of(&g, &have);
	state_upto(106, &want);
	ck_assert_mem_eq(&have, &want, sizeof want);
	/* Seqs go on after everything seen. */
	ck_assert_uint_eq(append_sync(j, 107, 1), 107);
	journal_close(j);
	got_free(&g);
}
END_TEST

/* A second compaction removes the first snapshot too. */
START_TEST(test_compaction_twice)
{
	struct journal_opts	 o = opts_mode(FSYNC_BATCH);
	struct journal		*j;
	struct got		 g = { 0 };
	struct state		 want, have;
	uint64_t		 round, n = 0;

	o.max_bytes = 65536;
	j = jopen(J, &o, NULL);
	for (round = 1; round <= 2; round++) {
		while (!journal_needs_compaction(j)) {
			append_sync(j, n + 1, 100);
			n += 100;
		}
		ck_assert_int_eq(journal_compact_begin(j), 0);
		state_upto(n, &want);
		snapshot_state(j, &want);
		ck_assert_int_eq(journal_compact_end(j), 0);
		ck_assert(!journal_needs_compaction(j));
		wait_compactions(j, round);
		ck_assert(!journal_needs_compaction(j));
	}
	journal_close(j);
	ck_assert_uint_eq(count_files(J, ".log"), 2);
	ck_assert(exists(snap_path(n)));
	ck_assert(exists(seg_path(n + 1)));
	j = jopen(J, &o, &g);
	state_of(&g, &have);
	state_upto(n, &want);
	ck_assert_mem_eq(&have, &want, sizeof want);
	journal_close(j);
	got_free(&g);
}
END_TEST

static const char *const crash_steps[] = {
	"rotate", "snap-data", "snap-sync", "rename", "dirsync", "unlink",
};

/*
 * Three segments (1..30, 31..60, 61..90), then in a child: 91..95,
 * compaction begins, 96..100, the snapshot, end; the writer exits at the
 * step.  Reopening must give the state of 1..100 whatever the step.
 */
START_TEST(test_compaction_crash)
{
	struct journal_opts	 o = opts_mode(FSYNC_ALWAYS);
	struct journal		*j;
	struct got		 g = { 0 };
	struct state		 want, have;
	const char		*step = crash_steps[_i];
	char			*text, done[300];
	unsigned char		*d;
	size_t			 dlen;
	uint64_t		 n;
	pid_t			 pid;
	int			 status;

	snprintf(done, sizeof done, "%s/durable", T);
	j = jopen(J, &o, NULL);
	for (n = 0; n < 90; n += 30) {
		append_sync(j, n + 1, 30);
		ck_assert_int_eq(journal_compact_begin(j), 0);
		journal_close(j);
		j = jopen(J, &o, NULL);
	}
	journal_close(j);
	ck_assert_uint_eq(count_files(J, ".log"), 4);

	xasprintf(&text, "crash %s\n", step);
	write_file(F, text, strlen(text));
	o.fault_file = F;
	if ((pid = fork()) == 0) {
		j = jopen(J, &o, NULL);
		append_sync(j, 91, 5);
		write_file(done, "95", 2);
		ck_assert_int_eq(journal_compact_begin(j), 0);
		append_sync(j, 96, 5);
		write_file(done, "100", 3);
		state_upto(100, &want);
		snapshot_state(j, &want);
		ck_assert_int_eq(journal_compact_end(j), 0);
		wait_compactions(j, 1);
		_exit(0);
	}
	ck_assert_int_ne(pid, -1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 70,
	    "%s: status %d", step, status);

	/* Everything the child saw durable must be there. */
	d = read_file(done, &dlen);
	d[dlen] = '\0';
	n = strtoull((char *)d, NULL, 10);
	free(d);
	ck_assert_uint_eq(n, strcmp(step, "rotate") == 0 ? 95 : 100);
	o.fault_file = NULL;
	j = jopen(J, &o, &g);
	state_of(&g, &have);
	state_upto(n, &want);
	ck_assert_msg(memcmp(&have, &want, sizeof want) == 0,
	    "%s: another state", step);
	ck_assert_uint_eq(count_files(J, ".tmp"), 0);
	if (exists(snap_path(95))) {
		/* The snapshot counts: everything it covers is gone. */
		ck_assert(!exists(seg_path(1)));
		ck_assert(!exists(seg_path(61)));
		ck_assert_uint_eq(count_files(J, ".log"), 2);
	} else
		ck_assert_uint_eq(count_files(J, ".log"), 5);
	/* Seqs go on; the state after one more is still right. */
	ck_assert_uint_eq(append_sync(j, n + 1, 1), n + 1);
	journal_close(j);
	got_free(&g);
	j = jopen(J, &o, &g);
	state_of(&g, &have);
	state_upto(n + 1, &want);
	ck_assert_mem_eq(&have, &want, sizeof want);
	journal_close(j);
	got_free(&g);
	free(text);
}
END_TEST

START_TEST(test_snapshot_damage)
{
	struct journal_opts	 o = opts_mode(FSYNC_ALWAYS);
	struct journal		*j;
	struct got		 g = { 0 };
	struct state		 want;
	char			*snap;
	char			*cause, *report;
	unsigned char		*orig;
	size_t			 size;

	j = jopen(J, &o, NULL);
	append_sync(j, 1, 50);
	ck_assert_int_eq(journal_compact_begin(j), 0);
	state_upto(50, &want);
	snapshot_state(j, &want);
	ck_assert_int_eq(journal_compact_end(j), 0);
	wait_compactions(j, 1);
	append_sync(j, 51, 5);
	journal_close(j);
	snap = xstrdup(snap_path(50));
	orig = read_file(snap, &size);

	/* Without its end record a snapshot is damaged, never torn. */
	write_file(snap, orig, size - JOURNAL_RECORD_SIZE(8));
	cause = jopen_fails(J, &o);
	ck_assert_ptr_nonnull(strstr(cause, "no end record"));
	ck_assert_ptr_nonnull(strstr(cause, snap));
	free(cause);

	/* A flipped byte in its third record; recover keeps two. */
	orig[2 * 40 + 30] ^= 4;
	write_file(snap, orig, size);
	cause = jopen_fails(J, &o);
	ck_assert_ptr_nonnull(strstr(cause, snap));
	free(cause);
	ck_assert_int_eq(journal_recover(J, &report), 0);
	ck_assert_ptr_nonnull(strstr(report, "dropped"));
	free(report);
	j = jopen(J, &o, &g);
	ck_assert_uint_le(g.n, 3);
	ck_assert_uint_ge(g.n, 1);
	journal_close(j);
	got_free(&g);
	free(orig);
	free(snap);
}
END_TEST

/* -- Faults ------------------------------------------------------------ */

START_TEST(test_enospc_reserve)
{
	struct journal_opts	 o = opts_mode(FSYNC_ALWAYS);
	struct journal		*j;
	struct got		 g = { 0 };
	char			 big[79];
	uint64_t		 seq;

	memset(big, 'f', sizeof big);
	o.fault_file = F;
	j = jopen(J, &o, NULL);
	append_sync(j, 1, 3);
	/* A job accepted: room for its final record (100 bytes). */
	ck_assert_int_eq(journal_reserve(j, JOURNAL_RECORD_SIZE(sizeof big)),
	    0);
	write_file(F, "enospc\n", 7);
	/* The disk is full: new work is refused at once. */
	ck_assert_int_eq(journal_append(j, 1, "new job", 7, &seq), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(journal_reserve(j, 50), -1);
	ck_assert_int_eq(errno, ENOSPC);
	/* The accepted job's final record still goes in. */
	ck_assert_int_eq(journal_reserve(j,
	    -(long long)JOURNAL_RECORD_SIZE(sizeof big)), 0);
	ck_assert_int_eq(journal_append(j, 9, big, sizeof big, &seq), 0);
	ck_assert_uint_eq(seq, 4);
	journal_commit(j);
	ck_assert_uint_eq(wait_for(j, 4).durable, 4);
	ck_assert_int_eq(journal_append(j, 1, "x", 1, &seq), -1);
	ck_assert_int_eq(errno, ENOSPC);
	/* Room again. */
	ck_assert_int_eq(unlink(F), 0);
	ck_assert_int_eq(journal_reserve(j, 100), 0);
	ck_assert_uint_eq(append_sync(j, 5, 1), 5);
	journal_close(j);
	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, 5);
	ck_assert_uint_eq(g.seq[3], 4);
	ck_assert_uint_eq(g.len[3], sizeof big);
	check_records(&g, 4, 5, 1);
	journal_close(j);
	got_free(&g);
}
END_TEST

START_TEST(test_enospc_write)
{
	struct journal_opts	 o = opts_mode(FSYNC_ALWAYS);
	struct journal_stats	 st;
	struct journal		*j;
	struct got		 g = { 0 };
	struct prog		 p;
	long long		 size;

	o.fault_file = F;
	j = jopen(J, &o, NULL);
	append_sync(j, 1, 3);
	size = file_size(seg_path(1));
	write_file(F, "enospc-write\n", 13);
	/* Two batches queued: the second waits until the first is seen. */
	append_n(j, 4, 5);
	journal_commit(j);
	append_n(j, 9, 2);
	journal_commit(j);
	p = wait_for(j, 100);
	ck_assert_int_eq(p.fatal, 0);
	ck_assert_uint_eq(p.durable, 3);
	ck_assert_uint_eq(p.from, 4);
	ck_assert_uint_eq(p.to, 8);
	ck_assert_int_eq(file_size(seg_path(1)), size);
	p = wait_for(j, 100);
	ck_assert_uint_eq(p.from, 9);
	ck_assert_uint_eq(p.to, 10);
	ck_assert_int_eq(file_size(seg_path(1)), size);
	journal_stats(j, &st);
	ck_assert_uint_eq(st.bytes, (uint64_t)size);
	/* The disk has room again: seqs go on after the failed ones. */
	ck_assert_int_eq(unlink(F), 0);
	ck_assert_uint_eq(append_sync(j, 11, 2), 12);
	journal_close(j);
	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, 5);
	check_records(&g, 0, 1, 3);
	check_records(&g, 3, 11, 2);
	journal_close(j);
	got_free(&g);
}
END_TEST

START_TEST(test_eio)
{
	struct journal_opts	 o = opts_mode(_i == 0 ? FSYNC_ALWAYS :
	    FSYNC_OFF);
	struct journal		*j;
	struct prog		 p;
	uint64_t		 seq;

	o.fault_file = F;
	j = jopen(J, &o, NULL);
	append_sync(j, 1, 3);
	write_file(F, "eio\n", 4);
	append_n(j, 4, 2);
	journal_commit(j);
	p = wait_for(j, 5);
	ck_assert_int_eq(p.fatal, EIO);
	ck_assert_uint_eq(p.durable, 3);
	ck_assert_int_eq(journal_append(j, 1, "x", 1, &seq), -1);
	ck_assert_int_eq(errno, EIO);
	ck_assert_int_eq(journal_reserve(j, 1), -1);
	ck_assert_int_eq(journal_compact_begin(j), -1);
	journal_close(j);
}
END_TEST

/* -- fsync modes ------------------------------------------------------- */

/* always: nothing is reported before its fdatasync returned. */
START_TEST(test_fsync_always)
{
	struct journal_opts	 o = opts_mode(FSYNC_ALWAYS);
	struct journal_stats	 st;
	struct journal		*j;
	struct prog		 p;
	uint64_t		 seq = 0;
	double			 t0;
	int			 i;

	o.fault_file = F;
	j = jopen(J, &o, NULL);
	write_file(F, "slow\n", 5);
	t0 = now_mono();
	/* Twenty turns while the disk is slow: a few syncs cover them. */
	for (i = 0; i < 20; i++) {
		seq = append_n(j, (uint64_t)i * 3 + 1, 3);
		journal_commit(j);
		p.durable = journal_progress(j, &p.fatal, &p.from, &p.to);
		if (now_mono() - t0 < 0.15)
			ck_assert_uint_eq(p.durable, 0);
	}
	p = wait_for(j, seq);
	ck_assert_uint_eq(p.durable, seq);
	ck_assert(now_mono() - t0 >= 0.2);
	journal_stats(j, &st);
	ck_assert_uint_ge(st.syncs, 1);
	ck_assert_uint_le(st.syncs, 3);
	ck_assert(st.last_sync_s > 0);
	journal_close(j);
}
END_TEST

/* batch: written is reported at once, syncs are at most every batch_ms. */
START_TEST(test_fsync_batch)
{
	struct journal_opts	 o = opts_mode(FSYNC_BATCH);
	struct journal_stats	 st;
	struct journal		*j;
	struct prog		 p;
	struct timespec		 ts = { 0, 700 * 1000 * 1000 };
	uint64_t		 i;
	double			 t0, elapsed;

	o.batch_ms = 400;
	j = jopen(J, &o, NULL);
	t0 = now_mono();
	for (i = 0; i < 30; i++)
		append_sync(j, i * 2 + 1, 2);
	elapsed = now_mono() - t0;
	journal_stats(j, &st);
	/* One sync at once, then at most one per 400 ms. */
	ck_assert_uint_ge(st.syncs, 1);
	ck_assert_uint_le(st.syncs, 1 + (uint64_t)(elapsed / 0.4) + 1);
	/* The last writes are synced within batch_ms, unasked. */
	nanosleep(&ts, NULL);
	p.durable = journal_progress(j, &p.fatal, &p.from, &p.to);
	ck_assert_uint_eq(p.durable, 60);
	journal_stats(j, &st);
	ck_assert_uint_ge(st.syncs, 2);
	journal_close(j);
}
END_TEST

/* off: never syncs while running. */
START_TEST(test_fsync_off)
{
	struct journal_opts	 o = opts_mode(FSYNC_OFF);
	struct journal_stats	 st;
	struct journal		*j;
	struct got		 g = { 0 };
	uint64_t		 i;

	j = jopen(J, &o, NULL);
	for (i = 0; i < 50; i++)
		append_sync(j, i * 2 + 1, 2);
	journal_stats(j, &st);
	ck_assert_uint_eq(st.syncs, 0);
	journal_close(j);
	j = jopen(J, &o, &g);
	ck_assert_uint_eq(g.n, 100);
	journal_close(j);
	got_free(&g);
}
END_TEST

/* -- Scale ------------------------------------------------------------- */

START_TEST(test_replay_million)
{
	struct journal_opts	 o = opts_mode(FSYNC_OFF);
	struct journal_stats	 st;
	struct journal		*j;
	char			 data[60], *cause = NULL;
	uint64_t		 i, seq = 0, n = 0;
	double			 t0, t_append, t_open;

	memset(data, 'q', sizeof data);
	j = jopen(J, &o, NULL);
	t0 = now_mono();
	/* No ck_assert in here: each one is a write(2) in CK_FORK mode. */
	for (i = 0; i < 1000000; i++) {
		memcpy(data, &i, sizeof i);
		if (journal_append(j, 1, data, sizeof data, &seq) != 0)
			ck_abort_msg("append: %s", strerror(errno));
		if (i % 1000 == 999)
			journal_commit(j);
	}
	t_append = now_mono() - t0;
	journal_commit(j);
	ck_assert_uint_eq(wait_for(j, seq).durable, 1000000);
	journal_close(j);

	t0 = now_mono();
	ck_assert_int_eq(journal_open(J, &o, count_cb, &n, &j, &cause), 0);
	t_open = now_mono() - t0;
	ck_assert_uint_eq(n, 1000000);
	journal_stats(j, &st);
	printf("journal: 1,000,000 records of 60 bytes (%.1f MB): append "
	    "%.3f s, replay %.3f s (open %.3f s)\n", (double)st.bytes / 1e6,
	    t_append, st.replay_s, t_open);
	journal_close(j);
}
END_TEST

static Suite *
journal_suite(void)
{
	Suite	*s = suite_create("journal");
	TCase	*tc;

#define NEW_TCASE(name) do {						\
	tc = tcase_create(name);					\
	tcase_add_checked_fixture(tc, setup, teardown);			\
} while (0)

	NEW_TCASE("format");
	tcase_add_test(tc, test_crc32c);
	tcase_add_test(tc, test_decode);
	suite_add_tcase(s, tc);

	NEW_TCASE("basic");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_many_batches);
	tcase_add_test(tc, test_callback_fails);
	tcase_add_test(tc, test_locked);
	tcase_add_test(tc, test_too_large);
	suite_add_tcase(s, tc);

	NEW_TCASE("damage");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_torn_tail);
	tcase_add_test(tc, test_corrupt_middle);
	tcase_add_test(tc, test_damage_older_segment);
	tcase_add_test(tc, test_torn_before_empty_segment);
	tcase_add_test(tc, test_seq_out_of_order);
	tcase_add_test(tc, test_tmp_removed);
	tcase_add_test(tc, test_power_loss);
	tcase_add_test(tc, test_recover);
	suite_add_tcase(s, tc);

	NEW_TCASE("compaction");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_compaction_switch);
	tcase_add_test(tc, test_compaction_twice);
	tcase_add_loop_test(tc, test_compaction_crash, 0,
	    (int)(sizeof crash_steps / sizeof crash_steps[0]));
	tcase_add_test(tc, test_snapshot_damage);
	suite_add_tcase(s, tc);

	NEW_TCASE("faults");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_enospc_reserve);
	tcase_add_test(tc, test_enospc_write);
	tcase_add_test(tc, test_reserve_across_rotation);
	tcase_add_loop_test(tc, test_eio, 0, 2);
	tcase_add_test(tc, test_fsync_always);
	tcase_add_test(tc, test_fsync_batch);
	tcase_add_test(tc, test_fsync_off);
	suite_add_tcase(s, tc);

	NEW_TCASE("scale");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_replay_million);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(journal_suite());
	int	 failed;

	log_init(LOG_LEVEL_ERROR);	/* torn-tail warnings are expected */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
