/*
 * completion: the hand-back from worker threads to the loop thread.  A
 * worker appends its finished work item; the loop is woken through an
 * eventfd and takes the whole list at once, so one wake-up can carry many
 * completions.  The list's mutex is private to this file.
 */
#ifndef JOBD_COMPLETION_H
#define JOBD_COMPLETION_H

#include "runner.h"

struct completion;

struct completion *completion_new(void);
void	 completion_free(struct completion *);
/* The eventfd the loop watches for readability. */
int	 completion_fd(const struct completion *);
/* Worker side: hand back a finished item (ownership passes to the loop). */
void	 completion_push(struct completion *, struct work_item *);
/* Loop side: take every item handed back so far, oldest first, or NULL. */
struct work_item *completion_take(struct completion *);

#endif
