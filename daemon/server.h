/*
 * server: the control socket — the listener, one connection per client,
 * line framing with max_request_bytes enforced while reading, and the
 * per-connection request FIFO (a parked request holds back only its own
 * connection).  What a request means is ops.c's business.
 */
#ifndef JOBD_SERVER_H
#define JOBD_SERVER_H

#include <sys/types.h>

#include <event2/event.h>
#include <jansson.h>

#include "auth.h"
#include "config.h"
#include "events.h"
#include "protocol.h"
#include "sched.h"

struct server;
struct conn;

/* One request in flight on a connection. */
struct call {
	struct conn	*conn;
	struct server	*server;
	struct request	 req;
	struct waiter	 waiter;	/* when the request is parked */
	struct peer	 peer;		/* who sent it (SO_PEERCRED, auth.c) */

	/* server.c's: answers leave in request order */
	char		*reply;		/* the answer line, until written */
	size_t		 reply_len;
	unsigned	 answered:1;
	unsigned	 written:1;	/* sent and out of the connection's list */
	unsigned	 released:1;	/* its handler is done with it */
	unsigned	 deferred:1;	/* runs once the calls before it are done */
	TAILQ_ENTRY(call) entry;
};

/*
 * Bind the control socket (replacing a stale socket file, refusing a live
 * daemon's) and start accepting.  -1 with *cause on failure.
 */
int	 server_new(struct event_base *, const struct config *, struct sched *,
	    struct events *, struct server **out, char **cause);
/* Close every connection (withdrawing parked requests) and the listener. */
void	 server_free(struct server *);
int	 server_connections(const struct server *);
const struct config *server_config(const struct server *);
struct sched *server_sched(const struct server *);

/*
 * The reload op's hook, set by main (which owns the config): it returns 0
 * with *ignored (a JSON array of the keys that need a restart, caller's)
 * once the new config is in force, or -1 with *cause (caller frees).
 */
typedef int (*server_reload_fn)(void *, json_t **ignored, char **cause);
void	 server_set_reload(struct server *, server_reload_fn, void *);
/* Run the hook; -1 with *cause when none is set. */
int	 server_reload(struct server *, json_t **ignored, char **cause);

/* Answer a call with {"ok":true, fields...} (fields stolen; may be NULL). */
void	 call_reply_ok(struct call *, json_t *fields);
/* Answer a call with an error. */
void	 call_reply_error(struct call *, const char *code, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/*
 * A parked call has been answered: release it and go on with the
 * connection's next request, on the next loop turn.
 */
void	 call_done(struct call *);
/*
 * Turn the call's connection into an event stream (the `subscribe` op,
 * already answered): from now on it only receives event lines, and what
 * the client sends is discarded.  -1 when status_max_subscribers are
 * already listening.
 */
int	 server_subscribe(struct call *, const char *queue, long uid);
/* Whether the client has half-closed (sent EOF) its side. */
int	 call_peer_closed(const struct call *);

#endif
