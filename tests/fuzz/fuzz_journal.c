/*
 * fuzz_journal: libFuzzer target for what the journal reads from disk.
 *
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -iquote daemon \
 *       tests/fuzz/fuzz_journal.c daemon/journal.c daemon/util.c \
 *       daemon/log.c -lpthread
 *
 * Each input is checked twice.  First journal_decode directly, at every
 * offset: a record it accepts must lie inside the input and carry a
 * checksum that an independent bit-by-bit CRC-32C agrees with.  Then as a
 * file: bit 0 of the input's first byte picks a segment or a snapshot;
 * with bit 1 clear the rest is the file as is, with bit 1 set it is a
 * recipe for records with good checksums (length, seq step, type,
 * payload), then a flipped bit and a cut, so that replay sees long valid
 * runs with damage in them, which random bytes alone would rarely give.
 * The file goes into a fresh journal directory and journal_open replays
 * it.  Every record delivered must appear, checksum and all, in the file;
 * when open refuses, journal_recover must leave a journal that opens.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "util.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	dir[256];

struct input {
	const uint8_t	*data;
	size_t		 size;
	size_t		 delivered;
};

/* CRC-32C one bit at a time: shares nothing with journal.c's tables. */
static uint32_t
crc_slow(const uint8_t *p, size_t n)
{
	uint32_t	c = 0xffffffffU;
	int		k;

	while (n-- > 0) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78U : c >> 1;
	}
	return ~c;
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static void
put_le(uint8_t *p, uint64_t v, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Append one record, encoded here without journal.c's help. */
static void
add_record(uint8_t **buf, size_t *len, uint32_t magic, uint64_t seq,
    uint8_t type, const uint8_t *payload, size_t plen)
{
	uint8_t	*r;

	*buf = xreallocarray(*buf, *len + plen + 21, 1);
	r = *buf + *len;
	put_le(r, magic, 4);
	put_le(r + 4, plen, 4);
	put_le(r + 8, seq, 8);
	r[16] = type;
	if (plen > 0)
		memcpy(r + 17, payload, plen);
	put_le(r + 17 + plen, crc_slow(r, 17 + plen), 4);
	*len += plen + 21;
}

/* The recipe: records of [len % 64][signed seq step][type][payload]. */
static uint8_t *
build(const uint8_t *p, size_t n, int snap, size_t *len)
{
	uint8_t		*buf = NULL, count[8];
	uint64_t	 seq = 1, nrec = 0;
	size_t		 plen, at;

	*len = 0;
	while (n >= 3) {
		plen = p[0] % 64;
		seq += (uint64_t)(int64_t)(int8_t)p[1];
		if (plen > n - 3)
			plen = n - 3;
		add_record(&buf, len, 0x314a424aU, seq, p[2], p + 3, plen);
		nrec++;
		p += 3 + plen;
		n -= 3 + plen;
	}
	if (snap) {
		put_le(count, nrec, 8);
		add_record(&buf, len, 0x3145424aU, 0, 0, count, sizeof count);
	}
	/* What is left: a bit to flip, then bytes to cut off the end. */
	if (n >= 1 && *len > 0) {
		at = ((size_t)p[0] * 131) % (*len * 8);
		if (p[0] & 1)
			buf[at / 8] ^= (uint8_t)(1 << (at % 8));
	}
	if (n >= 2)
		*len -= (size_t)p[1] % 40 < *len ? (size_t)p[1] % 40 : *len;
	return buf;
}

static void
check_decoder(const uint8_t *data, size_t size)
{
	struct journal_rec	rec;
	const uint8_t		*r;
	size_t			off;

	for (off = 0; off < size; off++) {
		if (journal_decode(data + off, size - off, &rec) !=
		    JOURNAL_DECODE_OK)
			continue;
		r = data + off;
		if (rec.size > size - off || rec.size != rec.len + 21 ||
		    (const uint8_t *)rec.data != r + 17 ||
		    rec.len > JOURNAL_MAX_PAYLOAD)
			abort();
		if (crc_slow(r, rec.size - 4) != le32(r + rec.size - 4))
			abort();
	}
}

/* A delivered record must be, byte for byte, a valid record of the input. */
static int
check_record(void *arg, uint64_t seq, uint8_t type, const void *data,
    size_t len, char **cause)
{
	struct input	*in = arg;
	uint8_t		*rec;
	size_t		 size = len + 21;

	(void)cause;
	if (len > in->size)
		abort();
	rec = xmalloc(size);
	put_le(rec, 0x314a424aU, 4);		/* "JBJ1" */
	put_le(rec + 4, len, 4);
	put_le(rec + 8, seq, 8);
	rec[16] = type;
	memcpy(rec + 17, data, len);
	put_le(rec + 17 + len, crc_slow(rec, 17 + len), 4);
	if (memmem(in->data, in->size, rec, size) == NULL)
		abort();
	free(rec);
	in->delivered++;
	return 0;
}

static void
empty_dir(void)
{
	struct dirent	*de;
	DIR		*d;
	int		 fd;

	if ((d = opendir(dir)) == NULL)
		return;
	fd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			unlinkat(fd, de->d_name, 0);
	}
	closedir(d);
}

static void
check_replay(const uint8_t *data, size_t size)
{
	struct journal_opts	 o;
	struct journal		*j = NULL;
	struct input		 in = { data + 1, size - 1, 0 };
	char			 path[400], *cause = NULL, *report = NULL;
	uint8_t			*built = NULL;
	size_t			 blen;
	int			 fd;

	memset(&o, 0, sizeof o);
	o.fsync = FSYNC_OFF;
	o.batch_ms = 50;
	o.max_bytes = 1 << 20;
	empty_dir();
	/* Snapshot 0 (its end record must say seq 0) or segment 1. */
	if (data[0] & 1)
		snprintf(path, sizeof path, "%s/snap-%020d.log", dir, 0);
	else
		snprintf(path, sizeof path, "%s/seg-%020d.log", dir, 1);
	if (data[0] & 2) {
		built = build(data + 1, size - 1, data[0] & 1, &blen);
		in.data = built;
		in.size = blen;
		check_decoder(built, blen);
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    (in.size > 0 && write(fd, in.data, in.size) != (ssize_t)in.size))
		abort();
	close(fd);

	if (journal_open(dir, &o, check_record, &in, &j, &cause) == 0) {
		journal_close(j);
		free(built);
		return;
	}
	free(cause);
	cause = NULL;
	if (journal_recover(dir, &report) != 0)
		abort();
	free(report);
	in.delivered = 0;
	if (journal_open(dir, &o, check_record, &in, &j, &cause) != 0) {
		fprintf(stderr, "open after recover: %s\n", cause);
		abort();
	}
	journal_close(j);
	free(built);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char	*base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") :
	    "/tmp";

	(void)argc;
	(void)argv;
	log_init(LOG_LEVEL_ERROR);	/* torn tails are the common case */
	snprintf(dir, sizeof dir, "%s/fuzz_journal.XXXXXX", base);
	if (mkdtemp(dir) == NULL)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_decoder(data, size);
	if (size >= 1)
		check_replay(data, size);
	return 0;
}
