/*
 * pending: one named queue's jobs that are accepted but not started, as a
 * binary heap ordered by the queue's policy.  Owned by the loop thread
 * alone; no locking.  Every operation is O(log n) except set_policy.
 *
 * Each entry carries a caller-owned "slot": the heap keeps *slot equal to
 * the entry's current position, so the caller can remove it later (cancel
 * of a queued job) without a search.
 */
#ifndef JOBD_PENDING_H
#define JOBD_PENDING_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct pending;

struct pending *pending_new(enum policy);
void	 pending_free(struct pending *);

/*
 * Add an item.  priority matters for POLICY_PRIORITY only (lower first);
 * seq is the submission sequence (strictly increasing per caller) and
 * breaks ties: earlier first for priority and fifo, later first for lifo.
 */
void	 pending_push(struct pending *, void *item, int64_t priority,
	    uint64_t seq, size_t *slot);
/* The item that would be popped next, or NULL when empty. */
void	*pending_peek(const struct pending *);
void	*pending_pop(struct pending *);
/* Remove the entry whose slot value is given; returns its item. */
void	*pending_remove(struct pending *, size_t slot);
size_t	 pending_len(const struct pending *);
/* Change the order (O(n) re-heap); used by reload. */
void	 pending_set_policy(struct pending *, enum policy);

#endif
