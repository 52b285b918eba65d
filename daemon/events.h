/*
 * events: job state changes fanned out to subscribers (the socket's
 * `subscribe` op and the status endpoint's /events).  One JSON object per
 * change — queued, running, and each final state — built once and handed
 * to every interested subscriber.
 */
#ifndef JOBD_EVENTS_H
#define JOBD_EVENTS_H

#include <sys/queue.h>

#include <stddef.h>

#include "job.h"

struct events;

struct subscriber {
	/* Take one event line (JSON, no newline).  May unsubscribe itself. */
	void		(*deliver)(struct subscriber *, const char *, size_t);
	void		*arg;
	char		*queue;		/* only this queue; NULL = all */
	long		 uid;		/* only this owner's jobs; -1 = all */

	TAILQ_ENTRY(subscriber) entry;	/* events' own */
};

struct events *events_new(void);
void	 events_free(struct events *);
void	 events_subscribe(struct events *, struct subscriber *);
void	 events_unsubscribe(struct events *, struct subscriber *);
size_t	 events_count(const struct events *);
/* Tell every subscriber that j entered its current state. */
void	 events_publish(struct events *, const struct job *);

#endif
