/*
 * pool: the worker threads of one named queue.  Each takes a work item
 * from the queue's workq, runs it with the runner, hands it back through
 * the completion queue and marks it done.
 */
#ifndef JOBD_POOL_H
#define JOBD_POOL_H

#include "completion.h"
#include "workq.h"

struct pool;

/* Start n threads; all signals stay blocked in them. */
struct pool *pool_new(const char *name, struct workq *, struct completion *,
	    int n);
/* How many threads the pool has. */
int	 pool_size(const struct pool *);
/*
 * Wait for every thread to exit.  The caller shuts the workq down first;
 * threads finish the item they hold, then leave.  Frees the pool.
 */
void	 pool_join(struct pool *);

#endif
