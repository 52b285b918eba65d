/*
 * sched: the named queues and every job's life on the loop thread —
 * admission (capacity, backpressure), the pending heaps, dispatch to the
 * worker pools, completion, cancel, wait/join waiters, keep_finished, and
 * the drain at shutdown.
 *
 * Thread rule: everything here runs on the loop thread.  Workers are
 * reached only through each queue's workq (loop → worker) and the shared
 * completion queue (worker → loop); a running job is stopped by writing
 * its eventfd, which its worker polls.
 */
#ifndef JOBD_SCHED_H
#define JOBD_SCHED_H

#include <sys/queue.h>
#include <sys/types.h>

#include <event2/event.h>
#include <jansson.h>

#include "config.h"
#include "events.h"
#include "job.h"
#include "metrics.h"
#include "protocol.h"

struct sched;
struct jq;

enum waiter_kind {
	WAITER_SUBMIT,		/* a submit blocked on a full queue */
	WAITER_JOB,		/* wait or cancel: until the job is final */
	WAITER_JOIN,		/* until no unfinished job is left in scope */
};

/*
 * A request that cannot be answered yet.  The caller embeds it, fills kind,
 * done and arg, and hands it to sched_block_submit, sched_wait or
 * sched_join.  sched calls done exactly once — with status 0 (w->job is the
 * admitted or final job; NULL for join), ETIMEDOUT, or ESHUTDOWN (a blocked
 * submit refused because jobd is stopping) — unless the caller withdraws it
 * first with sched_withdraw.  done must not call back into sched.
 */
struct waiter {
	enum waiter_kind kind;
	void		(*done)(struct waiter *, int status);
	void		*arg;

	/* sched's own */
	struct sched	*sched;
	struct job	*job;
	struct jq	*queue;		/* submit: target; join: scope or NULL */
	long		 scope_uid;	/* join: only this owner's jobs; -1 all */
	struct job_spec	 spec;		/* submit: the job to admit */
	uid_t		 uid;
	gid_t		 gid;
	struct event	*timer;
	int		 active;
	TAILQ_ENTRY(waiter) entry;	/* blocked submits, joins */
	LIST_ENTRY(waiter) job_entry;	/* a job's waiters */
};

TAILQ_HEAD(waiter_list, waiter);

/* Result of sched_submit. */
enum submit_result {
	SUBMIT_ADMITTED,	/* w is answered when the record is durable */
	SUBMIT_BLOCKED,		/* w waits for room, then as ADMITTED */
	SUBMIT_FULL,		/* nowait, and the queue is full */
	SUBMIT_QUOTA,		/* nowait, and max_jobs_per_user is reached */
	SUBMIT_UNKNOWN_QUEUE,
	SUBMIT_SHUTTING_DOWN,
	SUBMIT_UNAVAILABLE,	/* the journal cannot take it (errno) */
};

/* One named queue's figures, for status and metrics. */
struct queue_info {
	const char	*name;
	enum policy	 policy;
	int		 workers;
	int		 busy;		/* workers running a job */
	long		 capacity;
	size_t		 queued;
	size_t		 running;
	int		 paused;
	uint64_t	 submitted;
	uint64_t	 finished[JOB__STATES];	/* by final state */
	const struct histogram *duration;	/* started → finished */
	const struct histogram *wait;		/* submitted → started */
};

/*
 * Build the queues and start their workers.  State changes are published
 * to events (may be NULL).  drained is called once, on the loop, when a
 * shutdown has finished every running job.
 */
struct sched *sched_new(struct event_base *, const struct config *,
	    struct events *, void (*drained)(void *), void *arg);
/* Join every worker thread (after drained) and free everything. */
void	 sched_free(struct sched *);

/*
 * Submit a job.  On SUBMIT_ADMITTED and SUBMIT_BLOCKED spec has moved into
 * w, and w's done is
 * called with 0 (w->job is the new job, its record durable), ETIMEDOUT
 * (still no room after block_timeout; < 0 waits for ever), ESHUTDOWN, or
 * ENOSPC/EIO (the journal could not write it: no job exists).  With
 * nowait a full queue or quota answers at once instead of waiting.
 */
enum submit_result sched_submit(struct sched *, struct job_spec *, uid_t,
	    gid_t, struct waiter *, int nowait, double block_timeout);

struct job *sched_find(struct sched *, uint64_t id);
/* Wait for a job to be final: 0 if it already is, 1 if w was parked. */
int	 sched_wait(struct sched *, struct job *, struct waiter *,
	    double timeout);
/*
 * Cancel: 0 canceled at once, 1 w parked until the job is final, -1
 * already final (conflict).  A job whose end is being written when the
 * cancel comes ends as it ended: w then sees a final state other than
 * canceled, which is a conflict too.
 */
int	 sched_cancel(struct sched *, struct job *, struct waiter *);
/*
 * Join a queue (NULL = all), counting one owner's jobs (uid) or all (-1):
 * 0 nothing unfinished, 1 w parked, -1 unknown queue.
 */
int	 sched_join(struct sched *, const char *queue, long uid,
	    struct waiter *, double timeout);
/* Journal: the persistence the scheduler writes to, and replay into it. */
struct persist;
struct jobrec;
void	 sched_set_persist(struct sched *, struct persist *);
struct persist *sched_persist(const struct sched *);
uint64_t sched_last_id(const struct sched *);
void	 sched_foreach_job(struct sched *, void (*)(void *, struct job *),
	    void *);
void	 sched_restore(struct sched *, uint64_t seq, struct jobrec *);
size_t	 sched_restore_unfinished(const struct sched *);
void	 sched_restore_done(struct sched *, uint64_t journal_seq);

/* Take back a parked waiter without calling done (its client is gone). */
void	 sched_withdraw(struct sched *, struct waiter *);

/*
 * Reload: from now on read cfg (the caller keeps it alive), and apply its
 * queues live — workers, capacity, policy, timeout and on_crash of each
 * queue; new queues start; a queue not in cfg refuses submits and leaves
 * the stats once its last job is over.  Jobs already running are never
 * stopped.
 */
void	 sched_reconfigure(struct sched *, const struct config *cfg);
/* Pause or resume a queue: 0, or -1 for an unknown queue. */
int	 sched_pause(struct sched *, const char *queue, int paused);
/*
 * Job records newest first (queue NULL = all, state -1 = any, uid -1 =
 * every owner), with or without details (see job_to_json).  -1 for an
 * unknown queue.
 */
int	 sched_list(struct sched *, const char *queue, int state, long uid,
	    long limit, int details, json_t **out);
int	 sched_has_queue(struct sched *, const char *);
size_t	 sched_nqueues(const struct sched *);
void	 sched_queue_info(const struct sched *, size_t, struct queue_info *);
/* When the scheduler started: CLOCK_REALTIME and CLOCK_MONOTONIC seconds. */
double	 sched_started_real(const struct sched *);
double	 sched_started_mono(const struct sched *);

/*
 * Begin (or, with now, hurry) the shutdown drain: refuse submits, start
 * nothing new, stop running jobs after shutdown_timeout (at once with now).
 */
void	 sched_shutdown(struct sched *, int now);
int	 sched_shutting_down(const struct sched *);

#endif
