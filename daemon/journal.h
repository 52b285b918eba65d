/*
 * journal: jobd's write-ahead log in state_dir — append-only segment files
 * of checksummed records, a writer thread that does the write(2) and
 * fdatasync(2) so the loop never waits on the disk, group commit, replay
 * with torn-tail and corruption detection, --recover, and compaction by
 * snapshot.  It stores opaque records (a type byte and a payload); what
 * they mean is the scheduler's business (see jobrec.h).
 *
 * Thread rule: every function here is for the loop thread, except what
 * the writer thread does inside journal.c.  The only lock is the one
 * guarding the hand-off between the two, private to journal.c.
 */
#ifndef JOBD_JOURNAL_H
#define JOBD_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct journal;

struct journal_opts {
	enum fsync_mode	 fsync;		/* always, batch or off */
	long		 batch_ms;	/* batch: sync at most this often */
	long long	 max_bytes;	/* journal_needs_compaction threshold */
	const char	*fault_file;	/* test seam, see below; NULL = none */
};

struct journal_stats {
	uint64_t	 bytes;		/* on disk, all segments */
	uint64_t	 records;	/* appended since start + replayed */
	uint64_t	 compactions;
	double		 last_sync_s;	/* duration of the last fdatasync */
	double		 replay_s;	/* how long replay took at start */
	uint64_t	 torn_bytes;	/* cut off the newest segment at start */
	uint64_t	 syncs;		/* fdatasync calls on segments so far */
};

/*
 * Replay callback: one valid record, oldest first.  seq is the record's
 * sequence number (strictly increasing across segments and restarts).
 * Return 0 to go on, -1 to stop replay with *cause set.
 */
typedef int (*journal_replay_fn)(void *arg, uint64_t seq, uint8_t type,
    const void *data, size_t len, char **cause);

/*
 * Open (creating if needed) the journal under dir and replay it through fn.
 * A torn tail on the newest segment is cut off with a warning.  Damage
 * anywhere else — a bad checksum or length that is followed by valid
 * records — fails with *cause naming the file and byte offset and leaves
 * every file untouched.  Starts the writer thread.
 */
int	 journal_open(const char *dir, const struct journal_opts *,
	    journal_replay_fn, void *arg, struct journal **out, char **cause);
/* Stop the writer thread after it has written and synced everything. */
void	 journal_close(struct journal *);

/*
 * `jobd --recover`: keep the valid prefix of a damaged journal, move each
 * damaged file aside (FILE.damaged), and say in *report how many records
 * were dropped.  0, or -1 with *report holding the reason.
 */
int	 journal_recover(const char *dir, char **report);

/*
 * Append one record to the current batch (memory only; never blocks) and
 * return its sequence number.  -1 with errno ENOSPC when the disk cannot
 * take it (see journal_reserve), EIO after a fatal write error, or
 * EMSGSIZE when len > JOURNAL_MAX_PAYLOAD.  The record takes
 * JOURNAL_RECORD_SIZE(len) bytes of room.
 */
int	 journal_append(struct journal *, uint8_t type, const void *data,
	    size_t len, uint64_t *seq);
/*
 * Keep room on disk for n more bytes of future records (fallocate), so
 * that records promised now (a job's final record, reserved when the job
 * is accepted) can be written even when the disk fills up.  A negative n
 * gives room back.  -1 with errno ENOSPC when the room cannot be had.
 * To use reserved room, give it back just before appending the record it
 * was kept for: room given back stays allocated, so an append of at most
 * that many bytes right after it cannot fail with ENOSPC.
 */
int	 journal_reserve(struct journal *, long long n);
/*
 * Hand the current batch to the writer thread (call once per loop turn,
 * after the turn's appends).  With fsync = always the writer syncs once
 * for the whole batch (group commit).
 */
void	 journal_commit(struct journal *);

/* The eventfd the loop watches: readable when the writer made progress. */
int	 journal_fd(const struct journal *);
/*
 * Loop side, after journal_fd was readable: the highest sequence number
 * now durable under the fsync mode (always: synced; batch and off:
 * written), and the first fatal error (0 = none; EIO on a failed
 * fdatasync means the process must exit).  Records of a batch whose
 * write failed (ENOSPC) are reported through *failed_from: every record
 * with seq >= *failed_from up to the batch's end was not written (0 when
 * none failed); the journal is back to its state before that batch.
 * After a failed batch the writer writes nothing more until this call has
 * reported it, so a report never spans records that were written.
 */
uint64_t journal_progress(struct journal *, int *fatal,
	    uint64_t *failed_from, uint64_t *failed_to);

/* Whether the journal has grown past max_bytes. */
int	 journal_needs_compaction(const struct journal *);
/*
 * Compaction, in steps the loop can spread over several turns:
 *   journal_compact_begin: later appends go to a fresh segment; records
 *     written before it can be replaced by a snapshot.
 *   journal_compact_add: add one snapshot record (the live state as the
 *     caller sees it now; it carries the seq of the newest record it
 *     summarises, so replay can skip older records about the same thing).
 *   journal_compact_end: the writer thread writes the snapshot file,
 *     fsyncs it, renames it into place, fsyncs the directory, and only then
 *     removes the segments it replaces.
 * A crash at any point leaves a journal that replays to the same state.
 */
int	 journal_compact_begin(struct journal *);
int	 journal_compact_add(struct journal *, uint8_t type, uint64_t seq,
	    const void *data, size_t len);
int	 journal_compact_end(struct journal *);

void	 journal_stats(const struct journal *, struct journal_stats *);
/* The highest sequence number ever given (0 for a new journal). */
uint64_t journal_last_seq(const struct journal *);

/*
 * Test seam (beanstalkd's falloc): when opts.fault_file names a file and
 * that file exists, its first word injects a fault until it is removed.
 * Read by the writer before each batch, and by journal_reserve and
 * journal_append; absent = normal.
 *   "enospc"        the disk is full: no new room can be allocated, so
 *                   journal_reserve and appends beyond the room already
 *                   reserved (or given back) fail with ENOSPC at once, and
 *                   snapshot writes fail; writes into allocated room still
 *                   succeed, as on ext4 and xfs.
 *   "enospc-write"  every segment write fails with ENOSPC after writing
 *                   half (a file system without fallocate): the batch is
 *                   cut off again and reported through journal_progress.
 *   "eio"           the next fdatasync fails with EIO (fsync = off: the
 *                   next write), which is fatal.
 *   "slow"          every fdatasync takes 200 ms longer.
 *   "crash STEP"    the writer calls _exit(70) right after STEP: rotate,
 *                   snap-data, snap-sync, rename, dirsync or unlink.
 */

/*
 * The record format, for tests, the fuzz target and sizing reservations
 * (journal.c's top comment describes it).
 */
#define JOURNAL_MAX_PAYLOAD	 (64 * 1024 * 1024)
#define JOURNAL_RECORD_SIZE(len) ((size_t)(len) + 21)

struct journal_rec {
	uint64_t	 seq;
	uint8_t		 type;
	int		 end;	/* a snapshot's end record, not data */
	const void	*data;	/* points into the decoded buffer */
	size_t		 len;	/* payload bytes */
	size_t		 size;	/* bytes the whole record takes */
};

enum journal_decode_result {
	JOURNAL_DECODE_OK,
	JOURNAL_DECODE_SHORT,	/* the buffer ends inside the record */
	JOURNAL_DECODE_MAGIC,	/* no record starts here */
	JOURNAL_DECODE_LENGTH,	/* length above JOURNAL_MAX_PAYLOAD */
	JOURNAL_DECODE_CHECKSUM,
};

/* Decode the record at the start of buf; pure, never reads past len. */
int	 journal_decode(const void *buf, size_t len, struct journal_rec *);
/* Encode a data record into buf (JOURNAL_RECORD_SIZE(len) bytes). */
size_t	 journal_encode(void *buf, uint64_t seq, uint8_t type,
	    const void *data, size_t len);
/* CRC-32C (Castagnoli) of buf, continuing from crc (0 to start). */
uint32_t journal_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
