/*
 * events: the subscriber list and the event object of SPEC §3 "/events".
 *
 * Thread rule: loop thread only.  Publishing costs nothing when nobody
 * listens; otherwise the line is built once per change, not per subscriber.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "events.h"
#include "util.h"

struct events {
	TAILQ_HEAD(, subscriber) subs;
	size_t		 count;
};

struct events *
events_new(void)
{
	struct events *ev = xcalloc(1, sizeof *ev);

	TAILQ_INIT(&ev->subs);
	return ev;
}

void
events_free(struct events *ev)
{
	free(ev);
}

void
events_subscribe(struct events *ev, struct subscriber *sub)
{
	TAILQ_INSERT_TAIL(&ev->subs, sub, entry);
	ev->count++;
}

void
events_unsubscribe(struct events *ev, struct subscriber *sub)
{
	TAILQ_REMOVE(&ev->subs, sub, entry);
	ev->count--;
}

size_t
events_count(const struct events *ev)
{
	return ev->count;
}

int
events_backlogged(struct bufferevent *bev, size_t limit)
{
	struct evbuffer *out = bufferevent_get_output(bev);

	if (evbuffer_get_length(out) <= limit)
		return 0;
	/* The socket is non-blocking: this writes what fits and returns. */
	evbuffer_write(out, bufferevent_getfd(bev));
	return evbuffer_get_length(out) > limit;
}

void
events_publish(struct events *ev, const struct job *j)
{
	struct subscriber *sub, *next;
	json_t *o;
	char *line;

	if (ev == NULL || TAILQ_EMPTY(&ev->subs))
		return;
	o = json_pack("{s:I,s:s,s:s,s:o}", "id", (json_int_t)j->id,
	    "queue", job_queue_name(j), "state", protocol_state_name(j->state),
	    "exit_code", j->result != NULL && j->result->exit_code >= 0 ?
	    json_integer(j->result->exit_code) : json_null());
	line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (line == NULL)
		return;
	/* deliver may unsubscribe (a reader too slow to keep): step first. */
	for (sub = TAILQ_FIRST(&ev->subs); sub != NULL; sub = next) {
		next = TAILQ_NEXT(sub, entry);
		if ((sub->queue == NULL ||
		    strcmp(sub->queue, job_queue_name(j)) == 0) &&
		    (sub->uid == -1 || (uid_t)sub->uid == j->uid))
			sub->deliver(sub, line, strlen(line));
	}
	free(line);
}
