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

#include <event2/bufferevent.h>

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
/*
 * Whether a subscriber's connection is too far behind to keep: more than
 * limit bytes unwritten even after offering them to the kernel now.  One
 * busy loop turn may produce more events than the limit for a reader that
 * keeps up; only a reader whose socket buffer is full as well is slow.
 */
int	 events_backlogged(struct bufferevent *, size_t limit);
/* Tell every subscriber that j entered its current state. */
void	 events_publish(struct events *, const struct job *);

#endif
