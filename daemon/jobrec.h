/*
 * jobrec: what jobd writes in its journal about jobs — the record types
 * and their binary encoding.  Pure functions over buffers: no I/O, no
 * globals, every decode bounds-checked (it reads what is on disk, so it is
 * fuzzed like the protocol).
 */
#ifndef JOBD_JOBREC_H
#define JOBD_JOBREC_H

#include <stddef.h>
#include <stdint.h>

#include "job.h"

enum jobrec_type {
	JOBREC_SUBMIT = 1,	/* a job was accepted (every submit field) */
	JOBREC_START = 2,	/* it was handed to a worker */
	JOBREC_FINISH = 3,	/* it reached a final state (with its result) */
	JOBREC_PAUSE = 4,	/* a queue was paused or resumed */
	JOBREC_JOB = 5,		/* snapshot: a whole record in its state */
	JOBREC_IDS = 6,		/* snapshot: the highest id ever given */
};

/* A growable output buffer. */
struct jobrec_buf {
	unsigned char	*data;
	size_t		 len;
	size_t		 cap;
};

void	 jobrec_buf_free(struct jobrec_buf *);

/* Encoders: append one record's payload to b (b->len reset first). */
void	 jobrec_submit(struct jobrec_buf *, const struct job *);
void	 jobrec_start(struct jobrec_buf *, const struct job *);
void	 jobrec_finish(struct jobrec_buf *, const struct job *);
void	 jobrec_pause(struct jobrec_buf *, const char *queue, int paused);
void	 jobrec_job(struct jobrec_buf *, const struct job *);
void	 jobrec_ids(struct jobrec_buf *, uint64_t last_id);

/*
 * A decoded record.  For SUBMIT and JOB, job is a new record (queue NULL;
 * the queue's name is in queue_name) owned by the caller; for START and
 * FINISH only the fields the record carries are set in it.
 */
struct jobrec {
	enum jobrec_type type;
	char		*queue_name;	/* SUBMIT, JOB, PAUSE (owned) */
	int		 paused;	/* PAUSE */
	uint64_t	 last_id;	/* IDS */
	struct job	*job;		/* SUBMIT, START, FINISH, JOB (owned) */
};

/* Decode a payload of the given type: 0, or -1 with *cause (caller frees). */
int	 jobrec_decode(uint8_t type, const void *, size_t, struct jobrec *,
	    char **cause);
void	 jobrec_clear(struct jobrec *);

#endif
