/*
 * journal: jobd's write-ahead log.  It owns the files under the journal
 * directory, the writer thread and the records' on-disk format; it knows
 * nothing about jobs (jobrec.c gives the records their meaning).
 *
 * Files (DIR is created 0700 and held with flock(2), so two daemons never
 * share it):
 *   seg-SEQ.log   a segment: records in seq order; SEQ is the next seq when
 *                 it was created, so every record in it has a seq >= SEQ and
 *                 below the next segment's SEQ.
 *   snap-SEQ.log  a snapshot: the live state summing up every record with
 *                 seq <= SEQ, closed by an end record.  Only the newest one
 *                 counts; older ones and the segments it covers are removed.
 *   *.tmp         a snapshot or a copy being written: removed at open.
 *   *.damaged, *.dropped   set aside by journal_recover: ignored.
 *
 * Record, little-endian: u32 magic ("JBJ1", or "JBE1" for a snapshot's end
 * record), u32 payload length (at most JOURNAL_MAX_PAYLOAD), u64 seq, u8
 * type, the payload, u32 CRC-32C of everything before it.  CRC-32C rather
 * than a 64-bit hash: it is what ext4, iSCSI and LevelDB's log use, it
 * catches every burst of up to 32 bits and leaves 2^-32 for random damage,
 * which the magic, the length bound and the seq order checks shrink
 * further; a slicing-by-8 table does about 2 GB/s, enough for replay.
 * The per-record magic is what tells a torn tail from damage.
 *
 * Torn tail or damage.  Only the tail segment (the newest non-empty one)
 * can end in a torn write: the writer syncs a segment before it writes
 * the first record of the next one, in every fsync mode.  A record that
 * fails to decode in the tail, with no valid record anywhere after it, is
 * a torn tail: it is cut off (ftruncate) with a warning.  Anything else -
 * a bad record followed by a valid one, a bad record in an older segment
 * or in a snapshot, a seq out of order - is damage: journal_open refuses,
 * names the file and offset, and changes nothing.
 *
 * Durability.  The loop appends into a batch in memory; journal_commit
 * queues it for the writer thread, which write()s each batch, syncs per
 * mode (always: one fdatasync for everything it took in one go - group
 * commit; batch: at most every batch_ms; off: only when switching
 * segments and at close), then publishes the durable seq and writes the
 * eventfd.  A new segment's directory entry is synced before records in
 * it are reported.  A failed fdatasync (or fsync of the directory) is
 * fatal: the page cache may have dropped the data, so nothing after it can
 * be promised.  A write that fails with ENOSPC is cut off again
 * (ftruncate, fdatasync) and its seq range reported; seqs are not reused,
 * so seqs have gaps.
 *
 * Room.  Every appended record and every reservation lies in space
 * allocated beforehand with fallocate(FALLOC_FL_KEEP_SIZE), 1 MiB at a
 * time, by the loop: a full disk then fails journal_append or
 * journal_reserve at once instead of a write the caller has promised.
 * Writes into fallocated blocks do not fail with ENOSPC on ext4 and xfs
 * (both keep a reserve for converting unwritten extents) nor on tmpfs.  On
 * a file system without fallocate (EOPNOTSUPP) reservations are not
 * guaranteed, and a full disk shows up as a failed batch.
 *
 * Compaction.  begin: the loop creates a new segment (fallocating the
 * reserved room in it) and queues the switch; the snapshot's seq S is the
 * last seq appended before it.  add: records are encoded into a buffer
 * handed to the writer every 1 MiB, which writes them to snap-S.tmp.
 * end: the writer writes the end record, fsyncs the file, renames it to
 * snap-S.log, fsyncs the directory and only then removes segments with
 * SEQ <= S and older snapshots.  Every step leaves a journal that replays
 * to the same state: before the rename the .tmp is ignored and the old
 * segments are complete; after it the snapshot wins and open removes
 * whatever is left of what it covers.  A job queued for a long time is
 * written into each snapshot, so it pins no old file.
 *
 * Recover.  journal_recover keeps the longest valid prefix of the history,
 * as Kafka and PostgreSQL do: later records may describe changes to what
 * was lost (a job finished whose submit was damaged), so a damaged file's
 * valid prefix is kept (copied into its place), the file itself is copied
 * aside as FILE.damaged, every later segment is renamed FILE.dropped, and
 * an empty segment named past every seq seen is created so seqs are never
 * reused.  Nothing is deleted.
 *
 * Thread rule: the loop thread owns struct journal's loop fields, the
 * batch being filled and the current segment's room accounting; the
 * writer thread owns the file offsets, the snapshot .tmp and the w_
 * fields.  Queued batches, results and the fault counters cross under mu,
 * the only lock; neither side does I/O while holding it.
 */
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "util.h"

#define J_MAGIC		0x314a424aU	/* "JBJ1" on disk: a record */
#define J_MAGIC_END	0x3145424aU	/* "JBE1": ends a snapshot */
#define J_HDR		17		/* magic, length, seq, type */
#define J_CHUNK		(1024 * 1024)	/* preallocation step */
#define J_SNAP_FLUSH	(1024 * 1024)	/* snapshot hand-over size */
#define J_NSPARE	4		/* batch buffers kept for reuse */
#define J_CRASH_EXIT	70
/* Seqs count from 1: 2^63 is centuries away, anything above is damage. */
#define J_SEQ_MAX	((uint64_t)INT64_MAX)

enum jfault {
	JFAULT_NONE,
	JFAULT_ENOSPC,
	JFAULT_ENOSPC_WRITE,
	JFAULT_EIO,
	JFAULT_SLOW,
	JFAULT_CRASH,
};

enum jop_kind {
	JOP_DATA,		/* records for the writer's current segment */
	JOP_ROTATE,		/* sync the segment, go on in op->seg */
	JOP_SNAP_DATA,		/* snapshot records for snap-S.tmp */
	JOP_SNAP_END,		/* sync, rename, clean up */
	JOP_SNAP_ABORT,		/* drop the .tmp */
};

enum { J_IDLE, J_ADDING, J_WRITING };	/* compaction, loop side */

struct jseg {
	int		 fd;
	uint64_t	 name;		/* SEQ in seg-SEQ.log */
	long long	 alloc_end;	/* set by the loop under mu */
	struct jseg	*next;
};

struct jop {
	enum jop_kind	 kind;
	unsigned char	*buf;
	size_t		 len;
	size_t		 cap;
	uint64_t	 first;		/* DATA: seqs of its records */
	uint64_t	 last;
	uint64_t	 snap_seq;	/* SNAP_*: S */
	struct jseg	*seg;		/* ROTATE: the new segment */
	struct jop	*next;
};

struct jfail {
	uint64_t	 from;
	uint64_t	 to;
	long long	 bytes;
	uint64_t	 seg;
};

struct journal {
	char		*dir;
	int		 dirfd;
	int		 efd;
	struct journal_opts opts;	/* fault_file is our copy */
	pthread_t	 thread;
	int		 mu_init;
	struct jseg	*segs;		/* every segment, freed at close */

	/* Loop thread only. */
	struct jop	*cur;		/* the batch being filled */
	struct jseg	*seg;		/* where appends go */
	uint64_t	 next_seq;
	long long	 end;		/* seg's size once all is written */
	long long	 alloc;		/* room allocated in seg: [0, alloc) */
	long long	 reserved;
	int		 faulted;	/* fault "enospc" seen */
	int		 no_falloc;
	int		 fatal;
	int		 compacting;
	struct jop	*snap;		/* snapshot records being gathered */
	uint64_t	 snap_seq;
	uint64_t	 snap_count;
	long long	 snap_base;	/* old_bytes the snapshot replaces */
	long long	 snap_bytes;	/* size of the newest snapshot */
	long long	 old_bytes;	/* segments before seg */
	long long	 retry_at;	/* after a failed compaction */
	struct journal_stats st;

	/* Shared with the writer, under mu. */
	pthread_mutex_t	 mu;
	pthread_cond_t	 cond;
	struct jop	*q_head;
	struct jop     **q_tail;
	struct jop	*spare;
	int		 nspare;
	int		 stopping;
	int		 notified;	/* eventfd written, not yet read */
	uint64_t	 p_durable;
	int		 p_fatal;
	struct jfail	 p_fail;	/* from == 0: none */
	int		 p_hold;	/* writer waits until p_fail is read */
	int		 p_compact;	/* 1 done, -1 failed, 0 nothing new */
	int		 p_snap_abort;	/* a batch the snapshot covers failed */
	long long	 p_snap_bytes;
	uint64_t	 p_syncs;
	double		 p_sync_s;

	/* Writer thread only. */
	struct jseg	*w_seg;
	long long	 w_off;
	int		 w_dirty;
	uint64_t	 w_written;
	uint64_t	 w_synced;
	double		 w_last_sync;
	uint64_t	 w_syncs;
	double		 w_sync_s;
	int		 w_fatal;
	int		 w_fault;
	char		 w_crash[32];
	int		 w_tmpfd;
	long long	 w_tmpoff;
	uint64_t	 w_snap_seq;
	int		 w_snap_failed;
};

static void	 journal_free(struct journal *);

/* -- Format ------------------------------------------------------------ */

static uint32_t		crc_table[8][256];
static pthread_once_t	crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	uint32_t	c;
	int		i, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78U & (0U - (c & 1)));
		crc_table[0][i] = c;
	}
	for (i = 0; i < 256; i++) {
		for (k = 1; k < 8; k++) {
			c = crc_table[k - 1][i];
			crc_table[k][i] = (c >> 8) ^ crc_table[0][c & 0xff];
		}
	}
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void
put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

uint32_t
journal_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char	*p = buf;
	uint32_t		 lo, hi;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len >= 8) {		/* slicing-by-8 */
		lo = crc ^ get32(p);
		hi = get32(p + 4);
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		    crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		    crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		    crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

static size_t
encode(unsigned char *p, uint32_t magic, uint64_t seq, uint8_t type,
    const void *data, size_t len)
{
	put32(p, magic);
	put32(p + 4, (uint32_t)len);
	put64(p + 8, seq);
	p[16] = type;
	if (len > 0)
		memcpy(p + J_HDR, data, len);
	put32(p + J_HDR + len, journal_crc32c(0, p, J_HDR + len));
	return JOURNAL_RECORD_SIZE(len);
}

size_t
journal_encode(void *buf, uint64_t seq, uint8_t type, const void *data,
    size_t len)
{
	return encode(buf, J_MAGIC, seq, type, data, len);
}

int
journal_decode(const void *buf, size_t len, struct journal_rec *rec)
{
	const unsigned char	*p = buf;
	uint32_t		 magic, plen;

	memset(rec, 0, sizeof *rec);
	if (len < 4)
		return JOURNAL_DECODE_SHORT;
	magic = get32(p);
	if (magic != J_MAGIC && magic != J_MAGIC_END)
		return JOURNAL_DECODE_MAGIC;
	if (len < J_HDR)
		return JOURNAL_DECODE_SHORT;
	plen = get32(p + 4);
	if (plen > JOURNAL_MAX_PAYLOAD)
		return JOURNAL_DECODE_LENGTH;
	/* plen is bounded, so this cannot overflow. */
	if (len - J_HDR < (size_t)plen + 4)
		return JOURNAL_DECODE_SHORT;
	if (journal_crc32c(0, p, J_HDR + plen) != get32(p + J_HDR + plen))
		return JOURNAL_DECODE_CHECKSUM;
	rec->seq = get64(p + 8);
	rec->type = p[16];
	rec->end = magic == J_MAGIC_END;
	rec->data = p + J_HDR;
	rec->len = plen;
	rec->size = JOURNAL_RECORD_SIZE(plen);
	return JOURNAL_DECODE_OK;
}

static const char *
decode_why(int rc)
{
	switch (rc) {
	case JOURNAL_DECODE_SHORT:
		return "record cut short";
	case JOURNAL_DECODE_MAGIC:
		return "no record here (bad magic)";
	case JOURNAL_DECODE_LENGTH:
		return "record length out of range";
	default:
		return "bad checksum";
	}
}

/* Whether a valid record starts anywhere in p[from, size). */
static int
valid_after(const unsigned char *p, size_t size, size_t from)
{
	struct journal_rec	 rec;
	const unsigned char	*q;

	while (from + 4 <= size) {
		/* Both magics start with "JB". */
		if ((q = memchr(p + from, 'J', size - from)) == NULL)
			return 0;
		from = (size_t)(q - p);
		if (journal_decode(p + from, size - from, &rec) ==
		    JOURNAL_DECODE_OK)
			return 1;
		from++;
	}
	return 0;
}

/*
 * Count the valid records in p[from, size), skipping what is not one;
 * *skipped counts the bytes that are not part of any.
 */
static uint64_t
count_valid(const unsigned char *p, size_t size, size_t from, uint64_t *top,
    uint64_t *skipped)
{
	struct journal_rec	rec;
	uint64_t		n = 0;

	while (from < size) {
		if (journal_decode(p + from, size - from, &rec) !=
		    JOURNAL_DECODE_OK) {
			(*skipped)++;
			from++;
			continue;
		}
		if (!rec.end) {
			n++;
			if (rec.seq > *top && rec.seq < J_SEQ_MAX)
				*top = rec.seq;
		}
		from += rec.size;
	}
	return n;
}

/* -- Small helpers ----------------------------------------------------- */

static void
seg_name(char *buf, size_t len, uint64_t seq)
{
	snprintf(buf, len, "seg-%020llu.log", (unsigned long long)seq);
}

static void
snap_name(char *buf, size_t len, uint64_t seq, const char *ext)
{
	snprintf(buf, len, "snap-%020llu.%s", (unsigned long long)seq, ext);
}

/* "seg-", "snap-": 20 digits and ".log"; 0 and the seq, or -1. */
static int
parse_name(const char *name, const char *prefix, uint64_t *seq)
{
	size_t		plen = strlen(prefix), i;
	uint64_t	v = 0, d;

	if (strncmp(name, prefix, plen) != 0 || strlen(name) != plen + 24 ||
	    strcmp(name + plen + 20, ".log") != 0)
		return -1;
	for (i = plen; i < plen + 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		d = (uint64_t)(name[i] - '0');
		if (v > (J_SEQ_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*seq = v;
	return 0;
}

static int
has_suffix(const char *s, const char *suffix)
{
	size_t	n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The first word of the fault file (and a second one into arg). */
static int
read_fault(const char *path, char *arg, size_t arglen)
{
	char	buf[64], word[32], second[32];
	ssize_t	n;
	int	fd, f = JFAULT_NONE;

	if (path == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return JFAULT_NONE;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return JFAULT_NONE;
	buf[n] = '\0';
	second[0] = '\0';
	if (sscanf(buf, "%31s %31s", word, second) < 1)
		return JFAULT_NONE;
	if (strcmp(word, "enospc") == 0)
		f = JFAULT_ENOSPC;
	else if (strcmp(word, "enospc-write") == 0)
		f = JFAULT_ENOSPC_WRITE;
	else if (strcmp(word, "eio") == 0)
		f = JFAULT_EIO;
	else if (strcmp(word, "slow") == 0)
		f = JFAULT_SLOW;
	else if (strcmp(word, "crash") == 0)
		f = JFAULT_CRASH;
	if (arg != NULL)
		snprintf(arg, arglen, "%s", second);
	return f;
}

static int
fsync_retry(int fd, int data)
{
	int	r;

	do
		r = data ? fdatasync(fd) : fsync(fd);
	while (r == -1 && errno == EINTR);
	return r;
}

static int
write_all(int fd, long long off, const void *buf, size_t len, size_t *done)
{
	const unsigned char	*p = buf;
	ssize_t			 n;

	*done = 0;
	while (*done < len) {
		n = pwrite(fd, p + *done, len - *done,
		    (off_t)off + (off_t)*done);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			errno = ENOSPC;
			return -1;
		}
		*done += (size_t)n;
	}
	return 0;
}

static void
buf_reserve(struct jop *op, size_t more)
{
	size_t	cap = op->cap == 0 ? 65536 : op->cap;

	if (op->len + more <= op->cap)
		return;
	while (cap < op->len + more)
		cap *= 2;
	op->buf = xreallocarray(op->buf, cap, 1);
	op->cap = cap;
}

static void
op_free(struct jop *op)
{
	if (op != NULL) {
		free(op->buf);
		free(op);
	}
}

/* A clean op, from the spare list when it has one.  Caller holds mu. */
static struct jop *
op_get_locked(struct journal *j, enum jop_kind kind)
{
	struct jop	*op;

	if ((op = j->spare) != NULL) {
		j->spare = op->next;
		j->nspare--;
	} else
		op = xcalloc(1, sizeof *op);
	op->kind = kind;
	op->len = 0;
	op->first = op->last = op->snap_seq = 0;
	op->seg = NULL;
	op->next = NULL;
	return op;
}

/*
 * Give ops back; keeps a few buffers so a busy loop does not malloc.  The
 * spare list is shared with the loop's journal_push: under mu, and the
 * ones not kept are freed after unlocking.
 */
static void
op_put_list(struct journal *j, struct jop *list)
{
	struct jop	*op, *drop = NULL;

	pthread_mutex_lock(&j->mu);
	while ((op = list) != NULL) {
		list = op->next;
		if (j->nspare < J_NSPARE && op->cap <= 16 * J_SNAP_FLUSH) {
			op->next = j->spare;
			j->spare = op;
			j->nspare++;
		} else {
			op->next = drop;
			drop = op;
		}
	}
	pthread_mutex_unlock(&j->mu);
	while ((op = drop) != NULL) {
		drop = op->next;
		op_free(op);
	}
}

/*
 * Queue op for the writer and return a fresh one of the same kind for the
 * loop to fill.  One lock per loop turn; the writer never holds mu during
 * I/O, so this never waits for the disk.
 */
static struct jop *
journal_push(struct journal *j, struct jop *op)
{
	struct jop	*fresh;

	pthread_mutex_lock(&j->mu);
	op->next = NULL;
	*j->q_tail = op;
	j->q_tail = &op->next;
	fresh = op_get_locked(j, op->kind);
	pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->mu);
	return fresh;
}

/* -- Writer thread ----------------------------------------------------- */

static void
w_crash(struct journal *j, const char *step)
{
	if (j->w_fault == JFAULT_CRASH && strcmp(j->w_crash, step) == 0)
		_exit(J_CRASH_EXIT);
}

static void
w_fatal(struct journal *j, int error, const char *what, const char *name)
{
	if (j->w_fatal == 0) {
		log_error("journal: %s/%s: %s: %s; the journal stops: what "
		    "the kernel held may be lost, so nothing more can be "
		    "promised", j->dir, name, what, strerror(error));
		j->w_fatal = error;
	}
}

/* fdatasync the current segment if anything was written since the last. */
static int
w_sync(struct journal *j)
{
	struct timespec	ts = { 0, 200 * 1000 * 1000 };
	char		name[64];
	double		t0;
	int		r;

	if (!j->w_dirty || j->w_fatal != 0)
		return j->w_fatal != 0 ? -1 : 0;
	if (j->w_fault == JFAULT_SLOW)
		nanosleep(&ts, NULL);
	t0 = now_mono();
	if (j->w_fault == JFAULT_EIO) {
		errno = EIO;
		r = -1;
	} else
		r = fsync_retry(j->w_seg->fd, 1);
	if (r == -1) {
		seg_name(name, sizeof name, j->w_seg->name);
		w_fatal(j, errno, "fdatasync", name);
		return -1;
	}
	j->w_last_sync = now_mono();
	j->w_sync_s = j->w_last_sync - t0;
	j->w_syncs++;
	j->w_dirty = 0;
	j->w_synced = j->w_written;
	return 0;
}

/*
 * Write one batch at the end of the current segment.  0; 1 when it failed
 * for want of room and was cut off again (fail says what); -1 when fatal.
 */
static int
w_data(struct journal *j, struct jop *op, struct jfail *fail)
{
	struct jseg	*seg = j->w_seg;
	char		 name[64];
	size_t		 done = 0;
	long long	 alloc_end;
	int		 error, r;

	if (j->w_fault == JFAULT_ENOSPC_WRITE) {
		/* Half a batch, then a full disk: exercise the cut. */
		r = write_all(seg->fd, j->w_off, op->buf, op->len / 2, &done);
		if (r == 0)
			errno = ENOSPC;
		r = -1;
	} else if (j->w_fault == JFAULT_EIO &&
	    j->opts.fsync == FSYNC_OFF) {
		errno = EIO;
		r = -1;
	} else
		r = write_all(seg->fd, j->w_off, op->buf, op->len, &done);
	if (r == 0) {
		j->w_off += (long long)op->len;
		j->w_dirty = 1;
		j->w_written = op->last;
		return 0;
	}
	error = errno;
	seg_name(name, sizeof name, seg->name);
	if (error != ENOSPC && error != EDQUOT && error != EFBIG) {
		w_fatal(j, error, "write", name);
		return -1;
	}
	if (done > 0) {
		/*
		 * Part of the batch is in the file: cut it off and make the
		 * cut durable, or a crash could bring back records the loop
		 * is about to report as not written.
		 */
		if (ftruncate(seg->fd, (off_t)j->w_off) == -1) {
			w_fatal(j, errno, "ftruncate", name);
			return -1;
		}
		if (fsync_retry(seg->fd, 1) == -1) {
			w_fatal(j, errno, "fdatasync", name);
			return -1;
		}
		/*
		 * Truncating freed the preallocated room: take it back.
		 * alloc_end is the loop's, so read it under mu.
		 */
		pthread_mutex_lock(&j->mu);
		alloc_end = seg->alloc_end;
		pthread_mutex_unlock(&j->mu);
		if (alloc_end > j->w_off &&
		    fallocate(seg->fd, FALLOC_FL_KEEP_SIZE, (off_t)j->w_off,
		    (off_t)(alloc_end - j->w_off)) == -1 &&
		    errno != EOPNOTSUPP)
			log_error("journal: %s/%s: fallocate: %s; room "
			    "kept for accepted jobs is lost", j->dir, name,
			    strerror(errno));
	}
	log_warn("journal: %s/%s: write: %s; records %llu..%llu not written",
	    j->dir, name, strerror(error), (unsigned long long)op->first,
	    (unsigned long long)op->last);
	fail->from = op->first;
	fail->to = op->last;
	fail->bytes = (long long)op->len;
	fail->seg = seg->name;
	return 1;
}

/* Sync the segment (every mode: only the tail may be torn), switch. */
static void
w_rotate(struct journal *j, struct jop *op)
{
	struct jseg	*old = j->w_seg;
	char		 name[64];

	if (w_sync(j) == -1)
		return;
	close(old->fd);
	old->fd = -1;		/* the loop let go of it before op */
	j->w_seg = op->seg;
	j->w_off = 0;
	if (fsync_retry(j->dirfd, 0) == -1) {
		seg_name(name, sizeof name, j->w_seg->name);
		w_fatal(j, errno, "fsync of the directory", name);
		return;
	}
	w_crash(j, "rotate");
}

/* Remove the .tmp; w_snap_failed stays until the END or ABORT. */
static void
w_snap_drop(struct journal *j)
{
	char	name[64];

	if (j->w_tmpfd != -1) {
		close(j->w_tmpfd);
		j->w_tmpfd = -1;
		snap_name(name, sizeof name, j->w_snap_seq, "tmp");
		unlinkat(j->dirfd, name, 0);
	}
}

static void
w_snap_fail(struct journal *j, int error)
{
	char	name[64];

	snap_name(name, sizeof name, j->w_snap_seq, "tmp");
	log_warn("journal: %s/%s: %s; compaction abandoned", j->dir, name,
	    strerror(error));
	j->w_snap_failed = error;
	w_snap_drop(j);
}

/* Remove the segments and snapshots that snapshot s covers. */
static void
w_remove_covered(struct journal *j, uint64_t s)
{
	struct dirent	*de;
	DIR		*d;
	uint64_t	 seq;
	int		 fd, removed = 0;

	if ((fd = openat(j->dirfd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		log_warn("journal: %s: %s; old files stay until the next start",
		    j->dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if ((parse_name(de->d_name, "seg-", &seq) == 0 && seq <= s) ||
		    (parse_name(de->d_name, "snap-", &seq) == 0 && seq < s)) {
			if (unlinkat(j->dirfd, de->d_name, 0) == -1)
				log_warn("journal: %s/%s: unlink: %s", j->dir,
				    de->d_name, strerror(errno));
			else if (removed++ == 0)
				w_crash(j, "unlink");
		}
	}
	closedir(d);
}

/* Snapshot work: 1 when a snapshot was completed, -1 failed, 0 neither. */
static int
w_snap(struct journal *j, struct jop *op)
{
	char	tmp[64], final[64];
	size_t	done;
	int	abort_it;

	snap_name(tmp, sizeof tmp, op->snap_seq, "tmp");
	snap_name(final, sizeof final, op->snap_seq, "log");
	if (op->kind == JOP_SNAP_ABORT) {
		w_snap_drop(j);
		j->w_snap_failed = 0;
		return 0;
	}
	if (op->kind == JOP_SNAP_DATA) {
		if (j->w_snap_failed || j->w_fatal != 0)
			return 0;
		if (j->w_tmpfd == -1) {
			j->w_snap_seq = op->snap_seq;
			j->w_tmpoff = 0;
			if ((j->w_tmpfd = openat(j->dirfd, tmp, O_WRONLY |
			    O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1) {
				w_snap_fail(j, errno);
				return 0;
			}
		}
		if (j->w_fault == JFAULT_ENOSPC ||
		    j->w_fault == JFAULT_ENOSPC_WRITE) {
			w_snap_fail(j, ENOSPC);
			return 0;
		}
		if (write_all(j->w_tmpfd, j->w_tmpoff, op->buf, op->len,
		    &done) == -1) {
			w_snap_fail(j, errno);
			return 0;
		}
		/* Start writeback now so the final fsync is short. */
		sync_file_range(j->w_tmpfd, (off_t)j->w_tmpoff, (off_t)op->len,
		    SYNC_FILE_RANGE_WRITE);
		j->w_tmpoff += (long long)op->len;
		w_crash(j, "snap-data");
		return 0;
	}

	/* JOP_SNAP_END.  p_snap_abort is set by the loop: under mu. */
	pthread_mutex_lock(&j->mu);
	abort_it = j->p_snap_abort;
	pthread_mutex_unlock(&j->mu);
	if (abort_it || j->w_snap_failed || j->w_fatal != 0 ||
	    j->w_tmpfd == -1)
		goto failed;
	if (fsync_retry(j->w_tmpfd, 0) == -1) {
		w_snap_fail(j, errno);
		goto failed;
	}
	w_crash(j, "snap-sync");
	close(j->w_tmpfd);
	j->w_tmpfd = -1;
	if (renameat(j->dirfd, tmp, j->dirfd, final) == -1) {
		log_warn("journal: %s/%s: rename: %s; compaction abandoned",
		    j->dir, tmp, strerror(errno));
		unlinkat(j->dirfd, tmp, 0);
		goto failed;
	}
	w_crash(j, "rename");
	if (fsync_retry(j->dirfd, 0) == -1) {
		/* The rename may or may not last: keep everything. */
		w_fatal(j, errno, "fsync of the directory", final);
		return -1;
	}
	w_crash(j, "dirsync");
	w_remove_covered(j, op->snap_seq);
	j->w_snap_failed = 0;
	return 1;

failed:
	w_snap_drop(j);
	j->w_snap_failed = 0;
	return -1;
}

/*
 * Publish what the writer did: durable seq, a failure (the writer then
 * holds until the loop read it), a compaction result, ops to put back at
 * the head of the queue.  Writes the eventfd only when the loop has read
 * the previous wake-up: the loop drains the eventfd before it looks.
 */
static void
w_publish(struct journal *j, const struct jfail *fail, struct jop *back,
    int compact)
{
	struct jop	*last;
	uint64_t	 durable, one = 1;
	int		 wake = 0;

	durable = j->opts.fsync == FSYNC_ALWAYS ? j->w_synced : j->w_written;
	pthread_mutex_lock(&j->mu);
	if (back != NULL) {
		for (last = back; last->next != NULL; last = last->next)
			;
		if (j->q_head == NULL)
			j->q_tail = &last->next;
		last->next = j->q_head;
		j->q_head = back;
	}
	if (durable != j->p_durable || j->w_fatal != j->p_fatal ||
	    (fail != NULL && fail->from != 0) || compact != 0)
		wake = 1;
	j->p_durable = durable;
	j->p_fatal = j->w_fatal;
	j->p_syncs = j->w_syncs;
	j->p_sync_s = j->w_sync_s;
	if (fail != NULL && fail->from != 0) {
		j->p_fail = *fail;
		j->p_hold = 1;
	}
	if (compact != 0) {
		j->p_compact = compact;
		j->p_snap_bytes = j->w_tmpoff;
	}
	if (wake && !j->notified)
		j->notified = 1;
	else
		wake = 0;
	pthread_mutex_unlock(&j->mu);
	if (wake && write(j->efd, &one, sizeof one) == -1) {
		/* EAGAIN: the counter is full, the loop is woken anyway */
	}
}

/*
 * One round over the ops taken from the queue.  Segment ops first, in
 * order, then the sync, then the snapshot ops: acknowledgements do not
 * wait for snapshot writing.  A snapshot's END always comes after its
 * ROTATE in the queue, so the segments it removes are synced and closed.
 */
static void
w_round(struct journal *j, struct jop *ops)
{
	struct jop	*op, *next, *snaps = NULL, **stail = &snaps;
	struct jop	*done = NULL, *back = NULL;
	struct jfail	 fail;
	int		 compact = 0, r;

	memset(&fail, 0, sizeof fail);
	j->w_fault = read_fault(j->opts.fault_file, j->w_crash,
	    sizeof j->w_crash);
	for (op = ops; op != NULL; op = next) {
		next = op->next;
		op->next = NULL;
		if (op->kind == JOP_SNAP_DATA || op->kind == JOP_SNAP_END ||
		    op->kind == JOP_SNAP_ABORT) {
			*stail = op;
			stail = &op->next;
			continue;
		}
		if (j->w_fatal == 0 && op->kind == JOP_ROTATE)
			w_rotate(j, op);
		else if (j->w_fatal == 0) {
			r = w_data(j, op, &fail);
			if (r == 1) {
				/* The rest waits until the loop saw it. */
				back = next;
				next = NULL;
			}
		}
		op->next = done;
		done = op;
	}
	if (j->opts.fsync == FSYNC_ALWAYS)
		w_sync(j);
	else if (j->opts.fsync == FSYNC_BATCH &&
	    now_mono() >= j->w_last_sync + (double)j->opts.batch_ms / 1000.0)
		w_sync(j);
	w_publish(j, &fail, back, 0);

	for (op = snaps; op != NULL; op = op->next) {
		if ((r = w_snap(j, op)) != 0)
			compact = r;
	}
	if (compact != 0 || j->w_fatal != 0)
		w_publish(j, NULL, NULL, compact);
	op_put_list(j, done);
	op_put_list(j, snaps);
}

static void *
journal_writer(void *arg)
{
	struct journal	*j = arg;
	struct jop	*ops;
	struct timespec	 ts;
	double		 due;

	/*
	 * mu guards the queue and the flags; it is dropped for every round
	 * and every sync, so the loop's journal_push never waits on I/O.
	 */
	pthread_mutex_lock(&j->mu);
	for (;;) {
		if (j->q_head != NULL && (!j->p_hold || j->stopping)) {
			ops = j->q_head;
			j->q_head = NULL;
			j->q_tail = &j->q_head;
			pthread_mutex_unlock(&j->mu);
			w_round(j, ops);
			pthread_mutex_lock(&j->mu);
			continue;
		}
		if (j->w_dirty && j->w_fatal == 0 &&
		    j->opts.fsync == FSYNC_BATCH) {
			due = j->w_last_sync +
			    (double)j->opts.batch_ms / 1000.0;
			if (j->stopping || now_mono() >= due) {
				pthread_mutex_unlock(&j->mu);
				w_sync(j);
				w_publish(j, NULL, NULL, 0);
				pthread_mutex_lock(&j->mu);
				continue;
			}
			ts.tv_sec = (time_t)due;
			ts.tv_nsec = (long)((due - (double)ts.tv_sec) * 1e9);
			pthread_cond_timedwait(&j->cond, &j->mu, &ts);
			continue;
		}
		if (j->stopping)
			break;
		pthread_cond_wait(&j->cond, &j->mu);
	}
	pthread_mutex_unlock(&j->mu);
	/* Closing: what was written is synced, whatever the mode. */
	w_sync(j);
	w_snap_drop(j);
	w_publish(j, NULL, NULL, 0);
	return NULL;
}

/* -- Replay ------------------------------------------------------------ */

struct jfile {
	char		*name;
	uint64_t	 seq;
	long long	 size;
};

struct jscan {
	const char	*dir;
	int		 dirfd;
	struct jfile	*segs;		/* by seq */
	size_t		 nsegs;
	struct jfile	*snaps;		/* by seq */
	size_t		 nsnaps;
	char	       **tmps;
	size_t		 ntmps;
	struct jfile	*snap;		/* the newest snapshot, or NULL */
	size_t		 first;		/* first segment to read */
	size_t		 tail;		/* newest non-empty one, or nsegs */
	journal_replay_fn fn;
	void		*arg;
	uint64_t	 last;		/* seq of the last segment record */
	uint64_t	 top;		/* highest seq seen */
	uint64_t	 kept;		/* records replayed */
	uint64_t	 file_kept;	/* data records read in this file */
	int		 end_seen;
	struct jfile	*bad;		/* damage: file, offset, reason */
	long long	 bad_off;
	const char	*why;
	long long	 torn_off;	/* cut the tail here, or -1 */
	long long	 torn_len;
};

static int
jfile_cmp(const void *a, const void *b)
{
	const struct jfile	*x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void
scan_clear(struct jscan *s)
{
	size_t	i;

	for (i = 0; i < s->nsegs; i++)
		free(s->segs[i].name);
	for (i = 0; i < s->nsnaps; i++)
		free(s->snaps[i].name);
	strv_free(s->tmps);
	free(s->segs);
	free(s->snaps);
	s->segs = s->snaps = NULL;
	s->tmps = NULL;
	s->nsegs = s->nsnaps = s->ntmps = 0;
}

static void
jfile_add(struct jfile **v, size_t *n, const char *name, uint64_t seq,
    long long size)
{
	*v = xreallocarray(*v, *n + 1, sizeof **v);
	(*v)[*n].name = xstrdup(name);
	(*v)[*n].seq = seq;
	(*v)[*n].size = size;
	(*n)++;
}

/* List the directory and decide what replay reads. */
static int
scan_list(struct jscan *s, char **cause)
{
	struct dirent	*de;
	struct stat	 sb;
	DIR		*d = NULL;
	uint64_t	 seq;
	size_t		 i;
	int		 fd, r = -1;

	if ((fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		xasprintf(cause, "journal: %s: %s", s->dir, strerror(errno));
		if (fd != -1)
			close(fd);
		goto out;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (has_suffix(de->d_name, ".tmp")) {
			s->tmps = xreallocarray(s->tmps, s->ntmps + 2,
			    sizeof *s->tmps);
			s->tmps[s->ntmps++] = xstrdup(de->d_name);
			s->tmps[s->ntmps] = NULL;
			continue;
		}
		if (parse_name(de->d_name, "seg-", &seq) == -1 &&
		    parse_name(de->d_name, "snap-", &seq) == -1)
			continue;
		if (fstatat(s->dirfd, de->d_name, &sb, 0) == -1) {
			xasprintf(cause, "journal: %s/%s: %s", s->dir,
			    de->d_name, strerror(errno));
			goto out;
		}
		if (!S_ISREG(sb.st_mode)) {
			xasprintf(cause, "journal: %s/%s: not a regular file",
			    s->dir, de->d_name);
			goto out;
		}
		if (de->d_name[1] == 'e')
			jfile_add(&s->segs, &s->nsegs, de->d_name, seq,
			    (long long)sb.st_size);
		else
			jfile_add(&s->snaps, &s->nsnaps, de->d_name, seq,
			    (long long)sb.st_size);
	}
	if (errno != 0) {
		xasprintf(cause, "journal: %s: readdir: %s", s->dir,
		    strerror(errno));
		goto out;
	}
	if (s->nsegs > 0)
		qsort(s->segs, s->nsegs, sizeof *s->segs, jfile_cmp);
	if (s->nsnaps > 0)
		qsort(s->snaps, s->nsnaps, sizeof *s->snaps, jfile_cmp);
	s->snap = s->nsnaps > 0 ? &s->snaps[s->nsnaps - 1] : NULL;
	/* A segment is covered when the next one starts at or before S+1. */
	s->first = 0;
	if (s->snap != NULL) {
		while (s->first + 1 < s->nsegs &&
		    s->segs[s->first + 1].seq <= s->snap->seq + 1)
			s->first++;
	}
	s->tail = s->nsegs;
	for (i = s->nsegs; i > s->first; i--) {
		if (s->segs[i - 1].size > 0) {
			s->tail = i - 1;
			break;
		}
	}
	r = 0;
out:
	if (d != NULL)
		closedir(d);
	return r;
}

/*
 * Check one record of a snapshot (snap) or a segment; NULL when good, else
 * why it is damage (never a torn tail: it decoded).
 */
static const char *
scan_check(struct jscan *s, struct jfile *f, int snap,
    const struct journal_rec *rec)
{
	struct jfile	*next;

	if (rec->seq > J_SEQ_MAX)
		return "sequence number out of range";
	if (snap) {
		if (s->end_seen)
			return "data after the snapshot's end record";
		if (rec->end && (rec->seq != f->seq || rec->len != 8 ||
		    get64(rec->data) != s->file_kept))
			return "snapshot end record does not match";
		return NULL;
	}
	if (rec->end)
		return "snapshot end record in a segment";
	next = f + 1 < s->segs + s->nsegs ? f + 1 : NULL;
	if (rec->seq <= s->last || rec->seq < f->seq ||
	    (next != NULL && rec->seq >= next->seq))
		return "sequence number out of order";
	return NULL;
}

/*
 * Read one file through the callback.  0 when it is good (or only torn,
 * s->torn_off set), 1 on damage (s->bad set), -1 on an error (*cause).
 */
static int
scan_file(struct jscan *s, struct jfile *f, int snap, char **cause)
{
	struct journal_rec	 rec;
	struct stat		 sb;
	const unsigned char	*p = NULL;
	const char		*why = NULL;
	size_t			 size = 0, off = 0;
	int			 fd, rc = JOURNAL_DECODE_OK, r = -1;

	s->file_kept = 0;
	s->end_seen = 0;
	if ((fd = openat(s->dirfd, f->name, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &sb) == -1) {
		xasprintf(cause, "journal: %s/%s: %s", s->dir, f->name,
		    strerror(errno));
		goto out;
	}
	size = (size_t)sb.st_size;
	if (size > 0 && (p = mmap(NULL, size, PROT_READ,
	    MAP_PRIVATE | MAP_POPULATE, fd, 0)) == MAP_FAILED) {
		p = NULL;
		xasprintf(cause, "journal: %s/%s: mmap: %s", s->dir, f->name,
		    strerror(errno));
		goto out;
	}
	if (p != NULL)
		madvise((void *)p, size, MADV_SEQUENTIAL);
	while (off < size) {
		if ((rc = journal_decode(p + off, size - off, &rec)) !=
		    JOURNAL_DECODE_OK) {
			why = decode_why(rc);
			break;
		}
		if ((why = scan_check(s, f, snap, &rec)) != NULL)
			break;
		if (rec.seq > s->top)
			s->top = rec.seq;
		if (rec.end) {
			s->end_seen = 1;
			off += rec.size;
			continue;
		}
		if (!snap)
			s->last = rec.seq;
		if (snap || s->snap == NULL || rec.seq > s->snap->seq) {
			if (s->fn != NULL && s->fn(s->arg, rec.seq, rec.type,
			    rec.data, rec.len, cause) == -1)
				goto out;
			s->kept++;
		}
		s->file_kept++;
		off += rec.size;
	}
	if (why == NULL && snap && !s->end_seen)
		why = "snapshot has no end record";
	r = 0;
	if (why == NULL)
		goto out;
	if (!snap && rc != JOURNAL_DECODE_OK && f == &s->segs[s->tail] &&
	    !valid_after(p, size, off + 1)) {
		s->torn_off = (long long)off;
		s->torn_len = (long long)(size - off);
		goto out;
	}
	s->bad = f;
	s->bad_off = (long long)off;
	s->why = why;
	r = 1;
out:
	if (p != NULL)
		munmap((void *)p, size);
	if (fd != -1)
		close(fd);
	return r;
}

/* Replay everything: 0, 1 on damage (s->bad), -1 on an error. */
static int
scan_all(struct jscan *s, char **cause)
{
	size_t	i;
	int	r;

	s->torn_off = -1;
	if (s->snap != NULL && (r = scan_file(s, s->snap, 1, cause)) != 0)
		return r;
	for (i = s->first; i < s->nsegs; i++) {
		if ((r = scan_file(s, &s->segs[i], 0, cause)) != 0)
			return r;
	}
	return 0;
}

static int
scan_open(struct jscan *s, const char *dir, int create, char **cause)
{
	memset(s, 0, sizeof *s);
	s->dir = dir;
	s->dirfd = -1;
	s->torn_off = -1;
	if (create && mkdir(dir, 0700) == -1 && errno != EEXIST) {
		xasprintf(cause, "journal: %s: mkdir: %s", dir,
		    strerror(errno));
		return -1;
	}
	if ((s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1) {
		xasprintf(cause, "journal: %s: %s", dir, strerror(errno));
		return -1;
	}
	/* Held as long as dirfd is open: one daemon per journal. */
	if (flock(s->dirfd, LOCK_EX | LOCK_NB) == -1) {
		xasprintf(cause, "journal: %s: %s", dir, errno == EWOULDBLOCK ?
		    "in use by another process" : strerror(errno));
		return -1;
	}
	return scan_list(s, cause);
}

/* -- Loop side: room --------------------------------------------------- */

/* Allocate seg up to offset to; EOPNOTSUPP turns preallocation off. */
static int
journal_falloc(struct journal *j, long long to)
{
	int	r;

	if (to <= j->alloc)
		return 0;
	do
		r = fallocate(j->seg->fd, FALLOC_FL_KEEP_SIZE, (off_t)j->alloc,
		    (off_t)(to - j->alloc));
	while (r == -1 && errno == EINTR);
	if (r == -1 && (errno == EOPNOTSUPP || errno == ENOSYS)) {
		log_warn("journal: %s: fallocate: %s; a full disk may lose "
		    "records of accepted jobs", j->dir, strerror(errno));
		j->no_falloc = 1;
		return 0;
	}
	if (r == -1)
		return -1;
	/* The writer reads it to restore room after cutting a batch. */
	pthread_mutex_lock(&j->mu);
	j->seg->alloc_end = to;
	pthread_mutex_unlock(&j->mu);
	j->alloc = to;
	return 0;
}

/*
 * Make sure n more bytes fit in allocated room after everything appended
 * and reserved, so a full disk fails here rather than in the writer.
 */
static int
journal_room(struct journal *j, long long n)
{
	long long	need = j->end + j->reserved + n;

	if (j->opts.fault_file != NULL &&
	    read_fault(j->opts.fault_file, NULL, 0) == JFAULT_ENOSPC) {
		/* The disk filled up just now: spare room is gone. */
		if (!j->faulted && j->alloc > j->end + j->reserved)
			j->alloc = j->end + j->reserved;
		j->faulted = 1;
		if (need <= j->alloc)
			return 0;
		errno = ENOSPC;
		return -1;
	}
	j->faulted = 0;
	if (need <= j->alloc || j->no_falloc)
		return 0;
	/* A chunk ahead; on a nearly full disk, just what is needed. */
	if (journal_falloc(j, need + J_CHUNK) == 0 ||
	    (errno == ENOSPC && journal_falloc(j, need) == 0))
		return 0;
	return -1;
}

int
journal_reserve(struct journal *j, long long n)
{
	if (j->fatal != 0) {
		errno = EIO;
		return -1;
	}
	if (n <= 0) {
		j->reserved -= -n < j->reserved ? -n : j->reserved;
		return 0;
	}
	if (journal_room(j, n) == -1)
		return -1;
	j->reserved += n;
	return 0;
}

int
journal_append(struct journal *j, uint8_t type, const void *data,
    size_t len, uint64_t *seq)
{
	size_t	size;

	if (j->fatal != 0) {
		errno = EIO;
		return -1;
	}
	if (len > JOURNAL_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	size = JOURNAL_RECORD_SIZE(len);
	if ((j->opts.fault_file != NULL ||
	    j->end + j->reserved + (long long)size > j->alloc) &&
	    journal_room(j, (long long)size) == -1)
		return -1;
	buf_reserve(j->cur, size);
	encode(j->cur->buf + j->cur->len, J_MAGIC, j->next_seq, type, data,
	    len);
	j->cur->len += size;
	if (j->cur->first == 0)
		j->cur->first = j->next_seq;
	j->cur->last = j->next_seq;
	j->end += (long long)size;
	j->st.records++;
	if (seq != NULL)
		*seq = j->next_seq;
	j->next_seq++;
	return 0;
}

void
journal_commit(struct journal *j)
{
	if (j->cur->len > 0)
		j->cur = journal_push(j, j->cur);
}

int
journal_fd(const struct journal *j)
{
	return j->efd;
}

uint64_t
journal_progress(struct journal *j, int *fatal, uint64_t *failed_from,
    uint64_t *failed_to)
{
	struct jfail	fail;
	uint64_t	durable, v;
	int		compact;

	/* Drain first: a wake-up posted after we look is then not lost. */
	if (read(j->efd, &v, sizeof v) == -1) {
		/* EAGAIN: nothing new posted */
	}
	pthread_mutex_lock(&j->mu);
	j->notified = 0;
	durable = j->p_durable;
	if (j->p_fatal != 0)
		j->fatal = j->p_fatal;
	fail = j->p_fail;
	memset(&j->p_fail, 0, sizeof j->p_fail);
	if (fail.from != 0 && j->compacting != J_IDLE &&
	    fail.from <= j->snap_seq)
		j->p_snap_abort = 1;	/* the snapshot saw those records */
	if (j->p_hold) {
		j->p_hold = 0;
		pthread_cond_signal(&j->cond);
	}
	compact = j->p_compact;
	j->p_compact = 0;
	if (compact == 1)
		j->snap_bytes = j->p_snap_bytes;
	j->st.syncs = j->p_syncs;
	j->st.last_sync_s = j->p_sync_s;
	pthread_mutex_unlock(&j->mu);

	if (fail.from != 0) {
		if (fail.seg == j->seg->name)
			j->end -= fail.bytes;
		else
			j->old_bytes -= fail.bytes;
	}
	if (compact != 0 && j->compacting == J_WRITING) {
		j->compacting = J_IDLE;
		if (compact == 1) {
			j->st.compactions++;
			j->old_bytes -= j->snap_base;
			if (j->old_bytes < 0)
				j->old_bytes = 0;
		} else
			j->retry_at = j->snap_bytes + j->old_bytes + j->end +
			    j->opts.max_bytes / 2;
	}
	*fatal = j->fatal;
	*failed_from = fail.from;
	*failed_to = fail.to;
	return durable;
}

void
journal_stats(const struct journal *j, struct journal_stats *st)
{
	*st = j->st;
	st->bytes = (uint64_t)(j->snap_bytes + j->old_bytes + j->end);
}

int
journal_needs_compaction(const struct journal *j)
{
	long long	log = j->old_bytes + j->end;

	/*
	 * Past max_bytes, and at least half of it log that a snapshot
	 * would shrink: a live state larger than max_bytes must not make
	 * every turn a compaction.
	 */
	return j->compacting == J_IDLE && j->fatal == 0 &&
	    j->snap_bytes + log > j->opts.max_bytes && log > j->snap_bytes &&
	    j->snap_bytes + log >= j->retry_at;
}

/* -- Loop side: compaction --------------------------------------------- */

int
journal_compact_begin(struct journal *j)
{
	struct jseg	*seg = NULL, *old = j->seg;
	long long	 old_alloc = j->alloc;
	char		 name[64];
	int		 fd = -1, error, r = -1;

	if (j->fatal != 0 || j->compacting != J_IDLE) {
		errno = j->fatal != 0 ? EIO : EBUSY;
		return -1;
	}
	j->snap_seq = j->next_seq - 1;
	if (j->seg->name <= j->snap_seq) {
		/* Segment SEQ <= S would be removed: start a new one. */
		if (read_fault(j->opts.fault_file, NULL, 0) == JFAULT_ENOSPC) {
			errno = ENOSPC;	/* as its fallocate would */
			goto out;
		}
		seg_name(name, sizeof name, j->next_seq);
		if ((fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600)) == -1)
			goto out;
		seg = xcalloc(1, sizeof *seg);
		seg->fd = fd;
		seg->name = j->next_seq;
		/* Move the reservations over: they must stay allocated. */
		j->seg = seg;
		j->alloc = 0;
		if (journal_falloc(j, j->reserved + J_CHUNK) == -1 &&
		    (errno != ENOSPC || journal_falloc(j, j->reserved) == -1)) {
			error = errno;
			j->seg = old;
			j->alloc = old_alloc;
			unlinkat(j->dirfd, name, 0);
			errno = error;
			goto out;
		}
		journal_commit(j);	/* the old segment's last batch */
		seg->next = j->segs;
		j->segs = seg;
		j->old_bytes += j->end;
		j->end = 0;
		j->cur->kind = JOP_ROTATE;
		j->cur->seg = seg;
		j->cur = journal_push(j, j->cur);
		j->cur->kind = JOP_DATA;
		seg = NULL;
		fd = -1;
	}
	/* p_snap_abort and the spare list are shared with the writer. */
	pthread_mutex_lock(&j->mu);
	j->p_snap_abort = 0;
	if (j->snap == NULL)
		j->snap = op_get_locked(j, JOP_SNAP_DATA);
	pthread_mutex_unlock(&j->mu);
	j->snap->snap_seq = j->snap_seq;
	j->snap_count = 0;
	j->snap_base = j->old_bytes;
	j->compacting = J_ADDING;
	r = 0;
out:
	if (fd != -1)
		close(fd);
	free(seg);
	return r;
}

int
journal_compact_add(struct journal *j, uint8_t type, uint64_t seq,
    const void *data, size_t len)
{
	if (j->compacting != J_ADDING || seq >= j->next_seq) {
		errno = EINVAL;
		return -1;
	}
	if (len > JOURNAL_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	buf_reserve(j->snap, JOURNAL_RECORD_SIZE(len));
	j->snap->len += encode(j->snap->buf + j->snap->len, J_MAGIC, seq, type,
	    data, len);
	j->snap_count++;
	if (j->snap->len >= J_SNAP_FLUSH) {
		j->snap = journal_push(j, j->snap);
		j->snap->snap_seq = j->snap_seq;
	}
	return 0;
}

int
journal_compact_end(struct journal *j)
{
	unsigned char	count[8];

	if (j->compacting != J_ADDING) {
		errno = EINVAL;
		return -1;
	}
	put64(count, j->snap_count);
	buf_reserve(j->snap, JOURNAL_RECORD_SIZE(sizeof count));
	j->snap->len += encode(j->snap->buf + j->snap->len, J_MAGIC_END,
	    j->snap_seq, 0, count, sizeof count);
	j->snap = journal_push(j, j->snap);
	j->snap->kind = JOP_SNAP_END;
	j->snap->snap_seq = j->snap_seq;
	j->snap = journal_push(j, j->snap);
	j->snap->kind = JOP_SNAP_DATA;
	j->compacting = J_WRITING;
	return 0;
}

/* -- Open and close ---------------------------------------------------- */

/* After a good replay: cut the torn tail, remove what is covered. */
static int
journal_tidy(struct journal *j, struct jscan *s, char **cause)
{
	struct jfile	*t;
	size_t		 i;
	int		 fd = -1, r = -1;

	/* The newest snapshot's rename must last before older files go. */
	if (fsync_retry(j->dirfd, 0) == -1) {
		xasprintf(cause, "journal: %s: fsync: %s", j->dir,
		    strerror(errno));
		goto out;
	}
	if (s->torn_off != -1) {
		t = &s->segs[s->tail];
		if ((fd = openat(j->dirfd, t->name, O_WRONLY | O_CLOEXEC)) ==
		    -1 || ftruncate(fd, (off_t)s->torn_off) == -1 ||
		    fsync_retry(fd, 1) == -1) {
			xasprintf(cause, "journal: %s/%s: cutting the torn "
			    "tail: %s", j->dir, t->name, strerror(errno));
			goto out;
		}
		t->size = s->torn_off;
		log_warn("journal: %s/%s: torn tail at offset %lld: cut %lld "
		    "bytes", j->dir, t->name, s->torn_off, s->torn_len);
		j->st.torn_bytes = (uint64_t)s->torn_len;
	}
	for (i = 0; i < s->ntmps; i++)
		unlinkat(j->dirfd, s->tmps[i], 0);
	for (i = 0; s->snap != NULL && i + 1 < s->nsnaps; i++)
		unlinkat(j->dirfd, s->snaps[i].name, 0);
	for (i = 0; i < s->first; i++)
		unlinkat(j->dirfd, s->segs[i].name, 0);
	r = 0;
out:
	if (fd != -1)
		close(fd);
	return r;
}

/* Open the newest segment for appends, or create the first one. */
static int
journal_start_segment(struct journal *j, struct jscan *s, char **cause)
{
	struct jseg	*seg;
	struct jfile	*last;
	char		 name[64];
	size_t		 i;
	int		 created = 0;

	seg = xcalloc(1, sizeof *seg);
	seg->next = j->segs;
	j->segs = seg;
	if (s->nsegs > 0) {
		last = &s->segs[s->nsegs - 1];
		seg->name = last->seq;
		snprintf(name, sizeof name, "%s", last->name);
		seg->fd = openat(j->dirfd, name, O_WRONLY | O_CLOEXEC);
		j->end = last->size;
	} else {
		seg->name = j->next_seq;
		seg_name(name, sizeof name, seg->name);
		seg->fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		created = 1;
	}
	if (seg->fd == -1 || (created && fsync_retry(j->dirfd, 0) == -1)) {
		xasprintf(cause, "journal: %s/%s: %s", j->dir, name,
		    strerror(errno));
		if (seg->fd != -1)
			close(seg->fd);
		seg->fd = -1;
		return -1;
	}
	j->seg = j->w_seg = seg;
	j->w_off = j->end;
	j->alloc = j->end;
	for (i = s->first; i + 1 < s->nsegs; i++)
		j->old_bytes += s->segs[i].size;
	/* A full disk is not fatal here: appends will try again. */
	(void)journal_falloc(j, j->end + J_CHUNK);
	return 0;
}

int
journal_open(const char *dir, const struct journal_opts *opts,
    journal_replay_fn fn, void *arg, struct journal **out, char **cause)
{
	struct journal		*j;
	struct jscan		 s;
	pthread_condattr_t	 ca;
	sigset_t		 all, old;
	double			 t0 = now_mono();
	int			 r = -1, rc;

	*out = NULL;
	j = xcalloc(1, sizeof *j);
	j->dir = xstrdup(dir);
	j->dirfd = j->efd = j->w_tmpfd = -1;
	j->opts = *opts;
	if (opts->fault_file != NULL)
		j->opts.fault_file = xstrdup(opts->fault_file);
	if (j->opts.batch_ms <= 0)
		j->opts.batch_ms = 1;
	pthread_mutex_init(&j->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cond, &ca);
	pthread_condattr_destroy(&ca);
	j->mu_init = 1;
	j->q_tail = &j->q_head;

	rc = scan_open(&s, dir, 1, cause);
	j->dirfd = s.dirfd;		/* j owns it; s borrows it */
	if (rc == -1)
		goto out;
	s.fn = fn;
	s.arg = arg;
	if ((rc = scan_all(&s, cause)) == -1)
		goto out;
	if (rc == 1) {
		xasprintf(cause, "journal: %s/%s: offset %lld: %s; run jobd "
		    "--recover", dir, s.bad->name, s.bad_off, s.why);
		goto out;
	}
	if (journal_tidy(j, &s, cause) == -1)
		goto out;

	j->next_seq = s.top + 1;
	if (s.snap != NULL && j->next_seq <= s.snap->seq)
		j->next_seq = s.snap->seq + 1;
	if (s.nsegs > 0 && j->next_seq < s.segs[s.nsegs - 1].seq)
		j->next_seq = s.segs[s.nsegs - 1].seq;
	if (j->next_seq == 0)
		j->next_seq = 1;
	j->snap_bytes = s.snap != NULL ? s.snap->size : 0;
	if (journal_start_segment(j, &s, cause) == -1)
		goto out;
	j->st.records = s.kept;

	if ((j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) {
		xasprintf(cause, "journal: eventfd: %s", strerror(errno));
		goto out;
	}
	j->cur = xcalloc(1, sizeof *j->cur);
	j->w_written = j->w_synced = j->p_durable = j->next_seq - 1;

	/* The writer takes no signals: the loop handles them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&j->thread, NULL, journal_writer, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		xasprintf(cause, "journal: pthread_create: %s", strerror(rc));
		goto out;
	}
	j->st.replay_s = now_mono() - t0;
	*out = j;
	j = NULL;
	r = 0;
out:
	scan_clear(&s);
	journal_free(j);
	return r;
}

static void
journal_free(struct journal *j)
{
	struct jseg	*seg;
	struct jop	*op;

	if (j == NULL)
		return;
	while ((seg = j->segs) != NULL) {
		j->segs = seg->next;
		if (seg->fd != -1)
			close(seg->fd);
		free(seg);
	}
	while ((op = j->q_head) != NULL) {
		j->q_head = op->next;
		op_free(op);
	}
	while ((op = j->spare) != NULL) {
		j->spare = op->next;
		op_free(op);
	}
	op_free(j->cur);
	op_free(j->snap);
	if (j->mu_init) {
		pthread_mutex_destroy(&j->mu);
		pthread_cond_destroy(&j->cond);
	}
	if (j->efd != -1)
		close(j->efd);
	if (j->dirfd != -1)
		close(j->dirfd);	/* releases the flock */
	free((char *)j->opts.fault_file);
	free(j->dir);
	free(j);
}

void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	if (j->compacting == J_ADDING) {
		/* Never finished: the writer removes the .tmp. */
		j->snap->kind = JOP_SNAP_ABORT;
		j->snap = journal_push(j, j->snap);
		j->compacting = J_IDLE;
	}
	journal_commit(j);
	/* Shutdown order: queue the rest, ask the writer to stop, join. */
	pthread_mutex_lock(&j->mu);
	j->stopping = 1;
	pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->mu);
	pthread_join(j->thread, NULL);
	journal_free(j);
}

/* -- Recover ----------------------------------------------------------- */

/* Copy the first len bytes of from into a new file to (fsynced). */
static int
copy_prefix(int dirfd, const char *from, const char *to, long long len)
{
	char		buf[65536];
	long long	off = 0;
	ssize_t		n;
	size_t		done;
	int		in, out = -1, r = -1;

	if ((in = openat(dirfd, from, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if ((out = openat(dirfd, to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1)
		goto out;
	while (off < len) {
		n = pread(in, buf, (size_t)(len - off) < sizeof buf ?
		    (size_t)(len - off) : sizeof buf, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			goto out;
		}
		if (write_all(out, off, buf, (size_t)n, &done) == -1)
			goto out;
		off += n;
	}
	if (fsync_retry(out, 0) == -1)
		goto out;
	r = 0;
out:
	if (out != -1)
		close(out);
	close(in);
	return r;
}

/* A name that does not exist yet: name.SUFFIX, or name.SUFFIX.N. */
static int
free_name(int dirfd, const char *name, const char *suffix, char *to,
    size_t len)
{
	struct stat	sb;
	int		i;

	for (i = 0; i < 1000; i++) {
		if (i == 0)
			snprintf(to, len, "%s.%s", name, suffix);
		else
			snprintf(to, len, "%s.%s.%d", name, suffix, i);
		if (fstatat(dirfd, to, &sb, AT_SYMLINK_NOFOLLOW) == -1 &&
		    errno == ENOENT)
			return 0;
	}
	errno = EEXIST;
	return -1;
}

/* Count what is dropped at and after from; the highest seq seen. */
static int
count_dropped(struct jscan *s, struct jfile *f, long long from,
    uint64_t *dropped, uint64_t *top, uint64_t *skipped)
{
	struct stat	 sb;
	void		*p = NULL;
	int		 fd, r = -1;

	if ((fd = openat(s->dirfd, f->name, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &sb) == -1)
		goto out;
	if (f->seq > *top)
		*top = f->seq;
	if (sb.st_size > 0 && (p = mmap(NULL, (size_t)sb.st_size, PROT_READ,
	    MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
		p = NULL;
		goto out;
	}
	if (p != NULL)
		*dropped += count_valid(p, (size_t)sb.st_size, (size_t)from,
		    top, skipped);
	r = 0;
out:
	if (p != NULL)
		munmap(p, (size_t)sb.st_size);
	if (fd != -1)
		close(fd);
	return r;
}

/* A snapshot's prefix needs its own end record to be a snapshot again. */
static int
end_snapshot(int dirfd, const char *name, long long off, uint64_t seq,
    uint64_t count)
{
	unsigned char	rec[JOURNAL_RECORD_SIZE(8)], n[8];
	size_t		done;
	int		fd, r = -1;

	if ((fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC)) == -1)
		return -1;
	put64(n, count);
	encode(rec, J_MAGIC_END, seq, 0, n, sizeof n);
	if (write_all(fd, off, rec, sizeof rec, &done) == 0 &&
	    fsync_retry(fd, 0) == 0)
		r = 0;
	close(fd);
	return r;
}

/*
 * The damage is at s->bad, s->bad_off.  Every step leaves a journal that
 * either still fails to open (run --recover again) or opens to the kept
 * prefix: the damaged file is copied aside before anything is renamed, and
 * its prefix replaces it in one rename, last.
 */
static int
recover_damage(struct jscan *s, char **report)
{
	struct jfile	*bad = s->bad, *later;
	char		 keep[320], damaged[320], aside[320], bump[64];
	uint64_t	 dropped = 0, top = s->top, kept_in_file = s->file_kept;
	uint64_t	 skipped = 0;
	size_t		 i, nlater;
	int		 fd, end_seen = s->end_seen, r = -1;
	const char	*step = NULL;

	if (bad == s->snap) {
		later = s->nsegs > 0 ? s->segs + s->first : NULL;
		nlater = s->nsegs - s->first;
	} else {
		later = bad + 1;
		nlater = (size_t)(s->segs + s->nsegs - later);
	}
	step = "reading";
	if (count_dropped(s, bad, s->bad_off, &dropped, &top, &skipped) == -1)
		goto out;
	for (i = 0; i < nlater; i++) {
		if (count_dropped(s, &later[i], 0, &dropped, &top,
		    &skipped) == -1)
			goto out;
	}

	/* 1. The whole damaged file, copied aside (nothing is deleted). */
	step = "copying the damaged file";
	snprintf(keep, sizeof keep, "%s.damaged.tmp", bad->name);
	if (copy_prefix(s->dirfd, bad->name, keep, bad->size) == -1 ||
	    free_name(s->dirfd, bad->name, "damaged", damaged,
	    sizeof damaged) == -1 ||
	    renameat(s->dirfd, keep, s->dirfd, damaged) == -1)
		goto out;

	/* 2. Its valid prefix, ready under a .tmp name. */
	step = "copying the valid part";
	snprintf(keep, sizeof keep, "%s.keep.tmp", bad->name);
	if (copy_prefix(s->dirfd, bad->name, keep, s->bad_off) == -1)
		goto out;
	if (bad == s->snap && !end_seen && end_snapshot(s->dirfd, keep,
	    s->bad_off, bad->seq, kept_in_file) == -1)
		goto out;

	/* 3. Later segments build on what was lost: set them aside. */
	step = "moving later segments aside";
	for (i = 0; i < nlater; i++) {
		if (free_name(s->dirfd, later[i].name, "dropped", aside,
		    sizeof aside) == -1 ||
		    renameat(s->dirfd, later[i].name, s->dirfd, aside) == -1)
			goto out;
	}

	/* 4. An empty segment past every seq seen: seqs are not reused. */
	step = "creating a segment";
	seg_name(bump, sizeof bump, top + 1);
	if ((fd = openat(s->dirfd, bump, O_WRONLY | O_CREAT | O_CLOEXEC,
	    0600)) == -1)
		goto out;
	close(fd);

	/* 5. The prefix takes the damaged file's place; make it last. */
	step = "replacing the damaged file";
	if (renameat(s->dirfd, keep, s->dirfd, bad->name) == -1 ||
	    fsync_retry(s->dirfd, 0) == -1)
		goto out;

	xasprintf(report, "journal: %s: kept %llu records, dropped %llu "
	    "and %llu unreadable bytes (damaged: %s at offset %lld: %s); the "
	    "damaged file is now %s, %zu later segment%s renamed *.dropped",
	    s->dir, (unsigned long long)s->kept, (unsigned long long)dropped,
	    (unsigned long long)skipped, bad->name, s->bad_off, s->why,
	    damaged, nlater, nlater == 1 ? "" : "s");
	r = 0;
out:
	if (r == -1)
		xasprintf(report, "journal: %s/%s: recover: %s: %s", s->dir,
		    bad->name, step, strerror(errno));
	return r;
}

int
journal_recover(const char *dir, char **report)
{
	struct jscan	s;
	char		*cause = NULL;
	int		r = -1, rc;

	*report = NULL;
	if (access(dir, F_OK) == -1 && errno == ENOENT) {
		xasprintf(report, "journal: %s: no journal, nothing to recover",
		    dir);
		return 0;
	}
	if (scan_open(&s, dir, 0, &cause) == -1 ||
	    (rc = scan_all(&s, &cause)) == -1) {
		*report = cause;
		goto out;
	}
	if (rc == 0) {
		if (s.torn_off != -1)
			xasprintf(report, "journal: %s: no damage found (%llu "
			    "records); a torn tail of %lld bytes in %s will be "
			    "cut at start", dir, (unsigned long long)s.kept,
			    s.torn_len, s.segs[s.tail].name);
		else
			xasprintf(report, "journal: %s: no damage found (%llu "
			    "records)", dir, (unsigned long long)s.kept);
		r = 0;
		goto out;
	}
	r = recover_damage(&s, report);
out:
	if (s.dirfd != -1)
		close(s.dirfd);
	scan_clear(&s);
	return r;
}

uint64_t
journal_last_seq(const struct journal *j)
{
	return j->next_seq - 1;
}
