/*
 * status: the read-only HTTP status endpoint of SPEC §3 on libevent's
 * evhttp, on the same loop as the control socket: /healthz, /status,
 * /jobs, /jobs/ID (with long poll), /events (Server-Sent Events) and
 * /metrics.  Nothing served here changes jobd's state.
 */
#ifndef JOBD_STATUS_H
#define JOBD_STATUS_H

#include <event2/event.h>

#include "config.h"
#include "events.h"
#include "sched.h"
#include "server.h"

struct status;

/*
 * The loop's priorities (issue 4: pollers must not slow the jobs).  The
 * job path (control socket, completions, journal, timers, event streams)
 * runs at libevent's default, LOOP_PRIO_DEFAULT; requests to the status
 * endpoint run below it, and at most STATUS_CALLBACKS_PER_TURN of them
 * between two looks at the job path.  status_loop_config() applies this to
 * the event_config the loop is made from; status_loop_init() to the base.
 */
#define LOOP_PRIORITIES			3
#define LOOP_PRIO_DEFAULT		(LOOP_PRIORITIES / 2)
#define LOOP_PRIO_STATUS		(LOOP_PRIORITIES - 1)
#define STATUS_CALLBACKS_PER_TURN	1

void	 status_loop_config(struct event_config *);
int	 status_loop_init(struct event_base *);

/*
 * Listen on cfg->status_listen ("" = disabled: *out is NULL and 0 is
 * returned).  -1 with *cause when it cannot listen.
 */
int	 status_new(struct event_base *, const struct config *, struct sched *,
	    struct server *, struct events *, struct status **out,
	    char **cause);
/* Close every HTTP client (ending streams and long polls) and the listener. */
void	 status_free(struct status *);

#endif
