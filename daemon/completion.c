/*
 * completion: worker → loop hand-back (STYLE.md "Threads").
 *
 * Thread rule: workers call completion_push; only the loop thread calls
 * completion_take.  The mutex guards the list alone and is never held while
 * calling out.  The eventfd is written only on the empty → non-empty edge,
 * so a burst of completions costs the loop one wake-up.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "completion.h"
#include "log.h"
#include "util.h"

struct completion {
	pthread_mutex_t	 lock;
	struct work_item *head;
	struct work_item *tail;
	int		 fd;
};

struct completion *
completion_new(void)
{
	struct completion *c = xcalloc(1, sizeof *c);

	pthread_mutex_init(&c->lock, NULL);
	if ((c->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		log_fatalx(1, "completion: eventfd: %s", strerror(errno));
	return c;
}

void
completion_free(struct completion *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int
completion_fd(const struct completion *c)
{
	return c->fd;
}

void
completion_push(struct completion *c, struct work_item *item)
{
	uint64_t one = 1;
	int was_empty;

	item->next = NULL;
	pthread_mutex_lock(&c->lock);
	was_empty = c->head == NULL;
	if (was_empty)
		c->head = item;
	else
		c->tail->next = item;
	c->tail = item;
	pthread_mutex_unlock(&c->lock);

	/*
	 * Only the first item after the loop emptied the list needs a wake-up:
	 * the loop takes everything that is there when it wakes.
	 */
	if (was_empty && write(c->fd, &one, sizeof one) == -1 &&
	    errno != EAGAIN)
		log_error("completion: write eventfd: %s", strerror(errno));
}

struct work_item *
completion_take(struct completion *c)
{
	struct work_item *list;
	uint64_t n;

	/* Reset the counter before taking, so a push after it wakes us again. */
	if (read(c->fd, &n, sizeof n) == -1 && errno != EAGAIN)
		log_error("completion: read eventfd: %s", strerror(errno));
	pthread_mutex_lock(&c->lock);
	list = c->head;
	c->head = c->tail = NULL;
	pthread_mutex_unlock(&c->lock);
	return list;
}
