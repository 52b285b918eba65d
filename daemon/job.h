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

struct job {
	uint64_t	 id;
	const char	*queue_name;	/* the named queue's own string */
	void		*queue;		/* the scheduler's queue (opaque here) */
	enum job_state	 state;
	struct job_spec	 spec;		/* what was submitted; spec.queue is NULL */
	double		 timeout;	/* in force: the job's, else the queue's */
	int		 attempts;
	uid_t		 uid;
	gid_t		 gid;
	double		 submitted_at;	/* CLOCK_REALTIME; 0 = absent */
	double		 started_at;
	double		 finished_at;
	int		 exit_code;	/* -1 = null */
	int		 signal;	/* 0 = null */
	char		*out;		/* tails, valid UTF-8; NULL until final */
	size_t		 out_len;
	char		*err;
	size_t		 err_len;
	unsigned	 out_truncated:1;
	unsigned	 err_truncated:1;
	unsigned	 cancel_requested:1;
	unsigned	 shutdown_killed:1;	/* stopped by the shutdown drain */
	char		*error;		/* NULL = null */

	size_t		 slot;		/* position in the pending heap */
	int		 stop_fd;	/* eventfd while running, else -1 */
	TAILQ_HEAD(, waiter) waiters;	/* wait/cancel requests on this job */

	struct job	*hash_next;	/* jobtab chain */
	TAILQ_ENTRY(job) all_entry;	/* every record, in id order */
	TAILQ_ENTRY(job) done_entry;	/* finished records, oldest first */
};

TAILQ_HEAD(job_list, job);

/* A new record in state queued; spec is moved into it (left zeroed). */
struct job *job_new(uint64_t id, struct job_spec *spec, uid_t, gid_t);
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
