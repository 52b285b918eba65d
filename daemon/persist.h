/*
 * persist: the scheduler's side of the journal — which record each job
 * event writes, acknowledgements held until their record is durable,
 * replay at start, and compaction.  The journal (journal.c) stores bytes;
 * this module knows what they mean.
 *
 * Thread rule: loop thread only (the journal's writer thread is behind
 * journal.c's own hand-off).
 */
#ifndef JOBD_PERSIST_H
#define JOBD_PERSIST_H

#include <stdint.h>

#include <event2/event.h>

#include "config.h"
#include "job.h"
#include "journal.h"

struct persist;
struct sched;

/* Called once a record is durable (err 0) or could not be written. */
typedef void (*persist_done_fn)(struct sched *, struct job *, int err);

/*
 * Open state_dir's journal and replay it into s (sched_restore), then let
 * the scheduler settle jobs that were running at a crash.  -1 with *cause
 * (a damaged journal: the files are left untouched).
 */
int	 persist_open(struct event_base *, const struct config *,
	    struct sched *, struct persist **, char **cause);
/* Write and sync what is pending, stop the writer thread. */
void	 persist_close(struct persist *);

/*
 * Job events.  submit and finish call done when their record is durable
 * (or failed); 0, or -1 with errno ENOSPC/EIO when the record could not
 * even be queued (done is not called then).
 */
int	 persist_submit(struct persist *, struct job *, persist_done_fn);
void	 persist_start(struct persist *, struct job *);
int	 persist_finish(struct persist *, struct job *, persist_done_fn);
void	 persist_pause(struct persist *, const char *queue, int paused);

/* Journal figures for /status and /metrics. */
void	 persist_stats(const struct persist *, struct journal_stats *);

#endif
