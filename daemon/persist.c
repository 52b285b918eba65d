/*
 * persist: job events → journal records, and acknowledgements held until
 * their record is durable.
 *
 * Every submit and every final state is written before anyone is told:
 * the scheduler hands the job here with a callback, the record goes into
 * the journal's current batch, the batch is committed once per loop turn
 * (group commit: one fdatasync for the whole turn with fsync = always),
 * and when the writer thread reports progress the callbacks of every
 * record now durable run, in order.  A record the disk refused (ENOSPC)
 * gets its callback with the error, and the scheduler takes the job back.
 *
 * Room for a job's final record is reserved when the job is accepted, so
 * jobs already accepted can still finish on a full disk: their final
 * record then loses its output tails if the full one does not fit.
 *
 * Compaction runs when the journal has passed max_bytes and no record is
 * in flight (every record written so far is reflected in the records the
 * snapshot is made from).  It is done in one loop turn.
 *
 * Thread rule: loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jobrec.h"
#include "log.h"
#include "persist.h"
#include "sched.h"
#include "util.h"

/* Room kept per accepted job for its final record without output. */
#define FINISH_RESERVE	((long long)JOURNAL_RECORD_SIZE(128))

struct ack {
	uint64_t	 seq;
	struct job	*job;
	persist_done_fn	 fn;
};

struct persist {
	struct event_base *base;
	const struct config *cfg;
	struct sched	*sched;
	struct journal	*journal;
	struct event	*progress_ev;	/* the writer made progress */
	struct event	*commit_ev;	/* end of a turn with appends */
	int		 commit_armed;
	struct ack	*acks;		/* ring, oldest first, seq increasing */
	size_t		 head;
	size_t		 len;
	size_t		 cap;
	struct jobrec_buf buf;
};

static void
ack_push(struct persist *p, uint64_t seq, struct job *j, persist_done_fn fn)
{
	size_t i;
	struct ack *grown;

	if (p->len == p->cap) {
		grown = xcalloc(p->cap == 0 ? 64 : p->cap * 2, sizeof *grown);
		for (i = 0; i < p->len; i++)
			grown[i] = p->acks[(p->head + i) % p->cap];
		free(p->acks);
		p->acks = grown;
		p->cap = p->cap == 0 ? 64 : p->cap * 2;
		p->head = 0;
	}
	p->acks[(p->head + p->len) % p->cap] = (struct ack){ seq, j, fn };
	p->len++;
}

static void
commit_turn(evutil_socket_t fd, short what, void *arg)
{
	struct persist *p = arg;

	(void)fd;
	(void)what;
	p->commit_armed = 0;
	journal_commit(p->journal);
}

/* Append a record and make sure this turn's batch gets committed. */
static int
append(struct persist *p, enum jobrec_type type, uint64_t *seq)
{
	if (journal_append(p->journal, (uint8_t)type, p->buf.data, p->buf.len,
	    seq) == -1)
		return -1;
	if (!p->commit_armed) {
		p->commit_armed = 1;
		event_active(p->commit_ev, 0, 0);
	}
	return 0;
}

int
persist_submit(struct persist *p, struct job *j, persist_done_fn fn)
{
	uint64_t seq;

	/* Room for its final record first: a full disk refuses the job. */
	if (journal_reserve(p->journal, FINISH_RESERVE) == -1)
		return -1;
	jobrec_submit(&p->buf, j);
	if (append(p, JOBREC_SUBMIT, &seq) == -1) {
		journal_reserve(p->journal, -FINISH_RESERVE);
		return -1;
	}
	j->jseq = seq;
	ack_push(p, seq, j, fn);
	return 0;
}

void
persist_start(struct persist *p, struct job *j)
{
	uint64_t seq;

	jobrec_start(&p->buf, j);
	if (append(p, JOBREC_START, &seq) == 0)
		j->jseq = seq;
	else
		log_warn("journal: job %llu: start not recorded: %s",
		    (unsigned long long)j->id, strerror(errno));
}

int
persist_finish(struct persist *p, struct job *j, persist_done_fn fn)
{
	struct job_result *full = j->result, bare;
	uint64_t seq;
	int r;

	/* The reserved room is used now, for this record. */
	journal_reserve(p->journal, -FINISH_RESERVE);
	jobrec_finish(&p->buf, j);
	if ((r = append(p, JOBREC_FINISH, &seq)) == -1 && errno == ENOSPC) {
		/* Disk full: the reserved room holds the record without tails. */
		bare = *full;
		bare.out = bare.err = bare.error = NULL;
		bare.out_len = bare.err_len = 0;
		bare.out_truncated = full->out_len > 0 || full->out_truncated;
		bare.err_truncated = full->err_len > 0 || full->err_truncated;
		j->result = &bare;
		jobrec_finish(&p->buf, j);
		j->result = full;
		log_warn("journal: job %llu: disk full, final record kept "
		    "without its output", (unsigned long long)j->id);
		r = append(p, JOBREC_FINISH, &seq);
	}
	if (r == -1)
		return -1;
	j->jseq = seq;
	ack_push(p, seq, j, fn);
	return 0;
}

void
persist_pause(struct persist *p, const char *queue, int paused)
{
	uint64_t seq;

	jobrec_pause(&p->buf, queue, paused);
	if (append(p, JOBREC_PAUSE, &seq) == -1)
		log_warn("journal: pause of %s not recorded: %s", queue,
		    strerror(errno));
}

static void
snapshot_job(void *arg, struct job *j)
{
	struct persist *p = arg;

	jobrec_job(&p->buf, j);
	journal_compact_add(p->journal, JOBREC_JOB, j->jseq, p->buf.data,
	    p->buf.len);
}

/*
 * Replace the journal's history by the live state: every record, the
 * paused queues and the id counter.  Only with nothing in flight, so the
 * records the snapshot is made from are all the journal holds.
 */
static void
compact(struct persist *p)
{
	struct queue_info qi;
	size_t i;

	if (p->len != 0 || !journal_needs_compaction(p->journal))
		return;
	if (journal_compact_begin(p->journal) == -1) {
		log_warn("journal: compaction: %s", strerror(errno));
		return;
	}
	sched_foreach_job(p->sched, snapshot_job, p);
	for (i = 0; i < sched_nqueues(p->sched); i++) {
		sched_queue_info(p->sched, i, &qi);
		if (!qi.paused)
			continue;
		jobrec_pause(&p->buf, qi.name, 1);
		journal_compact_add(p->journal, JOBREC_PAUSE, 0, p->buf.data,
		    p->buf.len);
	}
	jobrec_ids(&p->buf, sched_last_id(p->sched));
	journal_compact_add(p->journal, JOBREC_IDS, 0, p->buf.data, p->buf.len);
	if (journal_compact_end(p->journal) == -1)
		log_warn("journal: compaction: %s", strerror(errno));
	else
		log_info("journal: compacted");
}

static void
progress(evutil_socket_t fd, short what, void *arg)
{
	struct persist *p = arg;
	uint64_t durable, failed_from = 0, failed_to = 0;
	struct ack a;
	int fatal = 0, err;

	(void)fd;
	(void)what;
	durable = journal_progress(p->journal, &fatal, &failed_from,
	    &failed_to);
	if (fatal != 0)
		log_fatalx(1, "journal: %s: cannot sync; exiting so that a "
		    "restart replays the journal", strerror(fatal));
	while (p->len > 0) {
		a = p->acks[p->head];
		if (failed_from != 0 && a.seq >= failed_from &&
		    a.seq <= failed_to)
			err = ENOSPC;
		else if (a.seq <= durable)
			err = 0;
		else
			break;
		p->head = (p->head + 1) % p->cap;
		p->len--;
		a.fn(p->sched, a.job, err);
	}
	compact(p);
}

struct replay {
	struct sched	*sched;
	uint64_t	 records;
};

static int
replay_record(void *arg, uint64_t seq, uint8_t type, const void *data,
    size_t len, char **cause)
{
	struct replay *rp = arg;
	struct jobrec rec;
	char *why = NULL;

	if (jobrec_decode(type, data, len, &rec, &why) == -1) {
		xasprintf(cause, "journal: record %llu: %s",
		    (unsigned long long)seq, why);
		free(why);
		return -1;
	}
	rp->records++;
	sched_restore(rp->sched, seq, &rec);
	jobrec_clear(&rec);
	return 0;
}

int
persist_open(struct event_base *base, const struct config *cfg,
    struct sched *s, struct persist **out, char **cause)
{
	struct journal_opts opts = {
		.fsync = cfg->journal.fsync,
		.batch_ms = cfg->journal.batch_ms,
		.max_bytes = cfg->journal.max_bytes,
		.fault_file = getenv("JOBD_JOURNAL_FAULTS"),
	};
	struct replay rp = { s, 0 };
	struct persist *p;
	char *dir;
	double t0 = now_mono();
	size_t unfinished;

	*out = NULL;
	xasprintf(&dir, "%s/journal", cfg->state_dir);
	p = xcalloc(1, sizeof *p);
	p->base = base;
	p->cfg = cfg;
	p->sched = s;
	if (journal_open(dir, &opts, replay_record, &rp, &p->journal,
	    cause) == -1) {
		free(dir);
		free(p);
		return -1;
	}
	free(dir);
	p->progress_ev = event_new(base, journal_fd(p->journal),
	    EV_READ | EV_PERSIST, progress, p);
	event_add(p->progress_ev, NULL);
	p->commit_ev = event_new(base, -1, 0, commit_turn, p);
	sched_set_persist(s, p);
	/* Room for every unfinished job's final record, then settle them. */
	unfinished = sched_restore_unfinished(s);
	if (journal_reserve(p->journal, FINISH_RESERVE *
	    (long long)unfinished) == -1)
		log_warn("journal: cannot reserve room for %zu jobs' final "
		    "records: %s", unfinished, strerror(errno));
	sched_restore_done(s, journal_last_seq(p->journal));
	log_info("journal: replayed %llu records in %.3f s, %zu jobs "
	    "unfinished", (unsigned long long)rp.records, now_mono() - t0,
	    unfinished);
	*out = p;
	return 0;
}

void
persist_close(struct persist *p)
{
	if (p == NULL)
		return;
	journal_close(p->journal);	/* writes and syncs what is left */
	event_free(p->progress_ev);
	event_free(p->commit_ev);
	free(p->acks);
	jobrec_buf_free(&p->buf);
	free(p);
}

void
persist_stats(const struct persist *p, struct journal_stats *st)
{
	journal_stats(p->journal, st);
}
