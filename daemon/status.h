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
 * Listen on cfg->status_listen ("" = disabled: *out is NULL and 0 is
 * returned).  -1 with *cause when it cannot listen.
 */
int	 status_new(struct event_base *, const struct config *, struct sched *,
	    struct server *, struct events *, struct status **out,
	    char **cause);
/* Close every HTTP client (ending streams and long polls) and the listener. */
void	 status_free(struct status *);

#endif
