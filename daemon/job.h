/*
 * job: the job record and the table that finds a record by id in O(1).
 * Owned by the loop thread alone: no worker ever sees a struct job (it gets
 * a struct work_item copy instead).
 */
#ifndef JOBD_JOB_H
#define JOBD_JOB_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "protocol.h"

struct waiter;

/* Submit fields most jobs leave out, kept apart to keep records small. */
struct job_extra {
	char		**env;		/* "KEY=VALUE", NULL-terminated, or NULL */
	char		*cwd;
	char		*stdin_data;	/* may hold NUL bytes */
	size_t		 stdin_len;
	char		*name;
};

/* What a job leaves when it reaches a final state. */
struct job_result {
	double		 finished_at;	/* CLOCK_REALTIME */
	int		 exit_code;	/* -1 = null */
	int		 signal;	/* 0 = null */
	char		*out;		/* tails, valid UTF-8 */
	size_t		 out_len;
	char		*err;
	size_t		 err_len;
	char		*error;		/* NULL = null */
	unsigned	 out_truncated:1;
	unsigned	 err_truncated:1;
	uint8_t		 state;		/* the final state, once decided */
};

/*
 * A job record.  A queue may hold millions, so the record is kept small
 * (SPEC targets under 200 bytes per queued job with its heap entry): the
 * command is a union, rare fields and results live in side allocations,
 * and the heap slot, the running job's stop fd and the finished list's
 * links share one union, since a job is in one of those states at a time.
 */
struct job {
	uint64_t	 id;
	uint64_t	 jseq;		/* newest journal record about it */
	/*
	 * The scheduler's queue.  It begins with the queue's name (a
	 * NUL-terminated string, see sched.c), which is all job.c reads.
	 */
	const void	*queue;
	union {
		char	**argv;		/* JOB_ARGV, NULL-terminated */
		char	*shell;		/* JOB_SHELL */
		double	 sleep;		/* JOB_SLEEP */
	} cmd;
	struct job_extra *extra;	/* NULL when the submit had none */
	struct job_result *result;	/* NULL until final */
	double		 submitted_at;	/* CLOCK_REALTIME; 0 = absent */
	double		 started_at;
	double		 timeout;	/* in force: the job's, else the queue's */
	int32_t		 priority;
	uint32_t	 attempts;
	uid_t		 uid;
	gid_t		 gid;
	uint8_t		 state;		/* enum job_state */
	uint8_t		 kind;		/* enum job_kind */
	unsigned	 cancel_requested:1;
	unsigned	 shutdown_killed:1;	/* stopped by the shutdown drain */

	LIST_HEAD(, waiter) waiters;	/* wait/cancel requests on this job */
	struct job	*hash_next;	/* jobtab chain */
	TAILQ_ENTRY(job) all_entry;	/* every record, in id order */
	union {
		size_t	 slot;		/* queued: position in the pending heap */
		int	 stop_fd;	/* running: the worker's stop eventfd */
		TAILQ_ENTRY(job) done_entry; /* final: finished, oldest first */
	} u;
};

TAILQ_HEAD(job_list, job);

/* A new record in state queued; spec is moved into it (left zeroed). */
struct job *job_new(uint64_t id, struct job_spec *spec, uid_t, gid_t);
/* The record's queue name. */
const char *job_queue_name(const struct job *);
/* Give the record its result (allocated on first use). */
struct job_result *job_result(struct job *);
/* Drop the record's result, if any. */
void	 job_free_result(struct job *);
void	 job_free(struct job *);

/* The record as SPEC §2 shows it.  details = 0 leaves out argv, shell,
 * stdout and stderr (SPEC §5, the status endpoint over TCP). */
json_t	*job_to_json(const struct job *, int details);

/* Id → record, O(1) on average. */
struct jobtab;

struct jobtab *jobtab_new(void);
void	 jobtab_free(struct jobtab *);
void	 jobtab_add(struct jobtab *, struct job *);
void	 jobtab_remove(struct jobtab *, struct job *);
struct job *jobtab_find(const struct jobtab *, uint64_t id);
size_t	 jobtab_count(const struct jobtab *);

#endif
