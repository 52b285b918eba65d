/*
 * workq: a bounded, thread-safe FIFO of opaque items with task_done/join
 * accounting, the C form of Python's queue.Queue(maxsize).  It is the only
 * hand-off from the loop thread to the worker threads.  Its mutex and
 * condition variables are private; callers never hold a lock.
 */
#ifndef JOBD_WORKQ_H
#define JOBD_WORKQ_H

#include <stddef.h>

struct workq;

/* maxsize 0 means unbounded. */
struct workq *workq_new(size_t maxsize);
/* Free the queue; no thread may be using it any more. */
void	 workq_free(struct workq *);

/*
 * Append an item, blocking while the queue is full.  0 on success; -1 with
 * errno EPIPE once the queue is shut down.
 */
int	 workq_put(struct workq *, void *item);
/* As workq_put but never blocks: -1 with errno EAGAIN when full. */
int	 workq_put_nowait(struct workq *, void *item);
/*
 * Take the oldest item, blocking while empty, for at most timeout seconds
 * (< 0: no limit; 0: do not block).  0 on success; -1 with errno ETIMEDOUT,
 * or EPIPE when the queue is shut down and empty (items put before the
 * shutdown are still handed out).
 */
int	 workq_get(struct workq *, void **item, double timeout);
/* Mark one item taken by get as processed (Python's task_done). */
void	 workq_task_done(struct workq *);
/*
 * Block until every item ever put has been marked done, for at most
 * timeout seconds (< 0: no limit).  0 when done, -1 with errno ETIMEDOUT.
 */
int	 workq_join(struct workq *, double timeout);
/* Refuse further puts and wake every blocked get and put. */
void	 workq_shutdown(struct workq *);
/* Change the bound (reload); waking blocked puts if it grew. */
void	 workq_set_maxsize(struct workq *, size_t);

/* Items waiting now, and items put but not yet marked done. */
size_t	 workq_size(struct workq *);
size_t	 workq_unfinished(struct workq *);

#endif
