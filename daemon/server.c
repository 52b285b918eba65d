/*
 * server: the control socket's listener and connections.
 *
 * Thread rule: loop thread only.  A connection handles one request at a
 * time, in arrival order: a request that cannot be answered yet (a submit
 * into a full queue, wait, join, cancel of a running job) is parked and the
 * lines behind it stay in the input buffer until it is answered.  Input is
 * bounded by a read watermark and by max_request_bytes per line, output by
 * pausing request processing while a slow reader has much unread.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "listen.h"
#include "log.h"
#include "ops.h"
#include "server.h"
#include "systemd.h"
#include "util.h"

/* Stop taking requests while this much output is unread by the client. */
#define OUTPUT_HIGH	(4 * 1024 * 1024)
#define OUTPUT_LOW	(256 * 1024)
/* Requests taken from one connection before the loop turns again. */
#define LINES_PER_TURN	256

struct conn {
	struct server	*srv;
	struct bufferevent *bev;
	struct peer	 peer;		/* decided once, at accept */
	struct call	*parked;	/* holds back the requests behind it */
	TAILQ_HEAD(, call) calls;	/* unwritten answers, in request order */
	struct subscriber sub;		/* after `subscribe` */
	struct event	*resume_ev;	/* go on with the next request */
	unsigned	 eof:1;		/* the peer half-closed */
	unsigned	 closing:1;	/* flush the output, then close */
	unsigned	 dead:1;	/* closed; freed on the next turn */
	unsigned	 streaming:1;	/* subscribed: events out, input dropped */
	TAILQ_ENTRY(conn) entry;
};

struct server {
	struct event_base *base;
	const struct config *cfg;
	struct sched	*sched;
	struct events	*events;
	struct evconnlistener *listener;
	struct event	*retry_ev;	/* re-enable accept after EMFILE */
	char		*path;		/* the socket we bound; NULL if passed */
	ino_t		 ino;		/* its identity, to unlink only ours */
	int		 nconns;
	TAILQ_HEAD(, conn) conns;
	server_reload_fn reload;	/* main's; NULL = no reload */
	void		*reload_arg;
};

static void	conn_process(struct conn *);
static void	conn_resume_later(struct conn *);
static void	conn_close(struct conn *);

int
server_connections(const struct server *srv)
{
	return srv->nconns;
}

struct sched *
server_sched(const struct server *srv)
{
	return srv->sched;
}

const struct config *
server_config(const struct server *srv)
{
	return srv->cfg;
}

void
server_set_reload(struct server *srv, server_reload_fn fn, void *arg)
{
	srv->reload = fn;
	srv->reload_arg = arg;
}

int
server_reload(struct server *srv, json_t **ignored, char **cause)
{
	*ignored = NULL;
	if (srv->reload == NULL) {
		xasprintf(cause, "reload is not available");
		return -1;
	}
	return srv->reload(srv->reload_arg, ignored, cause);
}

/* Socket clients of one uid, for max_connections_per_user. */
static long
conns_of(const struct server *srv, uid_t uid)
{
	const struct conn *c;
	long n = 0;

	TAILQ_FOREACH(c, &srv->conns, entry)
		if (c->peer.uid == uid)
			n++;
	return n;
}

/*
 * Write an answer.  With nothing queued before it, straight to the
 * socket: the usual answer fits its buffer whole, and going through the
 * bufferevent would cost two epoll_ctl calls and a loop turn per answer
 * (arming and disarming its write event).  What does not fit, and any
 * error, is left to the bufferevent.
 */
static void
conn_write(struct conn *c, char *line, size_t len)
{
	struct evbuffer *out;
	ssize_t n = 0;

	if (c->dead)
		goto out;
	out = bufferevent_get_output(c->bev);
	if (evbuffer_get_length(out) == 0) {
		do
			n = send(bufferevent_getfd(c->bev), line, len,
			    MSG_DONTWAIT | MSG_NOSIGNAL);
		while (n == -1 && errno == EINTR);
		if (n == -1)
			n = 0;
	}
	if ((size_t)n < len && evbuffer_add(out, line + n, len - n) == -1)
		log_warn("server: write to client failed");
out:
	free(line);
}

static void
call_free(struct call *call)
{
	protocol_request_clear(&call->req);
	free(call->reply);
	free(call);
}

/* Free a call once it is both written and released by its handler. */
static void
call_release(struct call *call)
{
	call->released = 1;
	if (call->written)
		call_free(call);
}

/*
 * Write the answers at the head of the connection's list that are ready.
 * Answers leave in request order even when a later request was answered
 * first (a submit waiting for its journal record, then a ping).
 */
static void
conn_flush(struct conn *c)
{
	struct call *h;

	while ((h = TAILQ_FIRST(&c->calls)) != NULL) {
		if (h->deferred) {
			/* Everything before it is written: its turn. */
			h->deferred = 0;
			c->parked = NULL;
			switch (ops_run(h)) {
			case 1:
				c->parked = h;
				break;
			case 0:
				h->released = 1;
				break;
			}
			if (!h->answered)
				return;
		}
		if (!h->answered)
			return;
		TAILQ_REMOVE(&c->calls, h, entry);
		conn_write(c, h->reply, h->reply_len);
		h->reply = NULL;
		h->written = 1;
		if (h->released)
			call_free(h);
	}
}

static void
call_answer(struct call *call, char *line, size_t len)
{
	call->reply = line;
	call->reply_len = len;
	call->answered = 1;
	conn_flush(call->conn);
}

void
call_reply_ok(struct call *call, json_t *fields)
{
	size_t len;
	char *line = protocol_ok(fields, call->req.tag, &len);

	call_answer(call, line, len);
}

void
call_reply_error(struct call *call, const char *code, const char *fmt, ...)
{
	char *msg, *line;
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	line = protocol_error(code, msg, call->req.tag, &len);
	free(msg);
	call_answer(call, line, len);
}

int
call_peer_closed(const struct call *call)
{
	return call->conn->eof;
}

void
call_done(struct call *call)
{
	struct conn *c = call->conn;

	if (c->parked == call)
		c->parked = NULL;
	call_release(call);
	/* Not from here: we may be deep inside the scheduler's callbacks. */
	if (!c->dead)
		conn_resume_later(c);
}

/*
 * Go on with a connection's requests on the next loop turn.  A zero timer,
 * not event_active: active events run before the loop polls again, and
 * the point is to let pending writes (ours and other clients') happen.
 */
static void
conn_resume_later(struct conn *c)
{
	static const struct timeval now = { 0, 0 };

	evtimer_add(c->resume_ev, &now);
}

static void
conn_free_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	free(arg);
}

static void
conn_close(struct conn *c)
{
	struct server *srv = c->srv;
	struct call *call;

	if (c->dead)
		return;
	c->dead = 1;
	/* Unanswered calls are withdrawn; none is inside a handler now. */
	while ((call = TAILQ_FIRST(&c->calls)) != NULL) {
		TAILQ_REMOVE(&c->calls, call, entry);
		if (!call->answered && !call->deferred)
			sched_withdraw(srv->sched, &call->waiter);
		call_free(call);
	}
	c->parked = NULL;
	if (c->streaming) {
		events_unsubscribe(srv->events, &c->sub);
		free(c->sub.queue);
	}
	TAILQ_REMOVE(&srv->conns, c, entry);
	srv->nconns--;
	bufferevent_free(c->bev);
	event_free(c->resume_ev);
	/* Callers up the stack may still look at c: free it next turn. */
	event_base_once(srv->base, -1, EV_TIMEOUT, conn_free_later, c, NULL);
}

/* Answer too_large, then close once the answer is written. */
static void
conn_too_large(struct conn *c)
{
	struct call *call;
	size_t len;
	char *msg, *line;

	xasprintf(&msg, "request line longer than max_request_bytes (%ld)",
	    c->srv->cfg->max_request_bytes);
	line = protocol_error(PROTO_TOO_LARGE, msg, NULL, &len);
	free(msg);
	/* In order too: after the answers still owed to earlier lines. */
	call = xcalloc(1, sizeof *call);
	call->conn = c;
	TAILQ_INSERT_TAIL(&c->calls, call, entry);
	call->released = 1;
	call_answer(call, line, len);
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
}

static int
line_is_blank(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return 0;
	return 1;
}

static void
conn_handle_line(struct conn *c, const char *line, size_t len)
{
	struct call *call;
	struct proto_error err;
	int pending;

	if (line_is_blank(line, len))
		return;
	call = xcalloc(1, sizeof *call);
	call->conn = c;
	call->server = c->srv;
	call->peer = c->peer;
	pending = !TAILQ_EMPTY(&c->calls);
	TAILQ_INSERT_TAIL(&c->calls, call, entry);
	if (protocol_parse(line, len, &call->req, &err) == -1) {
		call_reply_error(call, err.code, "%s", err.message);
		call_release(call);
		return;
	}
	if (call->req.op == OP_SUBSCRIBE && pending) {
		/* Events must not overtake answers still owed: run it last. */
		call->deferred = 1;
		c->parked = call;
		return;
	}
	switch (ops_run(call)) {
	case 0:
		call_release(call);
		break;
	case 1:
		c->parked = call;
		break;
	}
}

/* Take complete lines off the input while nothing is parked. */
static void
conn_process(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t max = (size_t)c->srv->cfg->max_request_bytes, eol_len;
	struct evbuffer_ptr eol;
	unsigned char *line;
	int n;

	if (c->streaming) {
		/* SPEC §2: after subscribe, what the client sends is dropped. */
		evbuffer_drain(in, evbuffer_get_length(in));
		if (c->eof && !c->closing) {
			c->closing = 1;
			bufferevent_disable(c->bev, EV_READ);
		}
		if (c->closing && evbuffer_get_length(out) == 0)
			conn_close(c);
		return;
	}
	for (n = 0; !c->dead && !c->closing && !c->streaming &&
	    c->parked == NULL; n++) {
		if (evbuffer_get_length(out) > OUTPUT_HIGH)
			return;		/* the write callback resumes us */
		if (n == LINES_PER_TURN) {
			/* Fairness: other clients and the workers go first. */
			conn_resume_later(c);
			return;
		}
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (eol.pos == -1) {
			if (evbuffer_get_length(in) > max)
				conn_too_large(c);
			break;
		}
		if ((size_t)eol.pos > max) {
			conn_too_large(c);
			break;
		}
		line = evbuffer_pullup(in, eol.pos + 1);
		conn_handle_line(c, (const char *)line, (size_t)eol.pos);
		if (!c->dead)
			evbuffer_drain(in, (size_t)eol.pos + 1);
	}
	if (c->dead || c->streaming)
		return;
	/* A half-closed client is done once its last full line is answered. */
	if (c->eof && TAILQ_EMPTY(&c->calls) && !c->closing) {
		c->closing = 1;
		bufferevent_disable(c->bev, EV_READ);
	}
	if (c->closing && evbuffer_get_length(out) == 0)
		conn_close(c);
}

static void
conn_deliver(struct subscriber *sub, const char *line, size_t len)
{
	static const char dropped[] = "{\"event\":\"dropped\",\"reason\":"
	    "\"slow reader: too many unread events\"}\n";
	struct conn *c = sub->arg;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (c->closing)
		return;
	/* A reader this far behind would grow us without bound: drop it. */
	if (events_backlogged(c->bev,
	    (size_t)c->srv->cfg->subscriber_buffer_bytes)) {
		log_warn("server: dropping a slow subscriber");
		evbuffer_add(out, dropped, sizeof dropped - 1);
		c->closing = 1;
		bufferevent_disable(c->bev, EV_READ);
		return;
	}
	evbuffer_add(out, line, len);
	evbuffer_add(out, "\n", 1);
}

int
server_subscribe(struct call *call, const char *queue, long uid)
{
	struct conn *c = call->conn;
	struct server *srv = c->srv;

	if (events_count(srv->events) >=
	    (size_t)srv->cfg->status_max_subscribers)
		return -1;
	c->streaming = 1;
	c->sub.deliver = conn_deliver;
	c->sub.arg = c;
	c->sub.queue = queue != NULL ? xstrdup(queue) : NULL;
	c->sub.uid = uid;
	events_subscribe(srv->events, &c->sub);
	return 0;
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_process(arg);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_close(c);
	else
		conn_process(c);
}

static void
conn_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_process(arg);
}

/* Whether the peer closed both directions (not just its write side). */
static int
peer_gone(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR));
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if ((what & BEV_EVENT_EOF) && !peer_gone(bufferevent_getfd(bev))) {
		/*
		 * A half-close: the client still reads.  A submit blocked on a
		 * full queue is withdrawn (SPEC §2); the lines already sent
		 * are still answered.
		 */
		c->eof = 1;
		if (c->parked != NULL && !c->parked->deferred &&
		    c->parked->waiter.kind == WAITER_SUBMIT &&
		    !c->parked->answered) {
			sched_withdraw(c->srv->sched, &c->parked->waiter);
			TAILQ_REMOVE(&c->calls, c->parked, entry);
			call_free(c->parked);
			c->parked = NULL;
			conn_flush(c);
		}
		conn_process(c);
		return;
	}
	if (what & BEV_EVENT_ERROR)
		log_debug("server: client error: %s", strerror(errno));
	conn_close(c);
}

/* Refuse a client beyond max_connections with one error line. */
static void
refuse(int fd, const char *code, const char *msg)
{
	size_t len;
	char *line = protocol_error(code, msg, NULL, &len);

	/* A fresh socket's buffer has room for one short line. */
	if (write(fd, line, len) == -1)
		log_debug("server: refuse: %s", strerror(errno));
	free(line);
	close(fd);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct server *srv = arg;
	struct ucred cred;
	socklen_t credlen = sizeof cred;
	struct peer peer;
	struct conn *c;

	(void)l;
	(void)sa;
	(void)salen;
	if (srv->nconns >= srv->cfg->max_connections) {
		log_warn("server: max_connections (%ld) reached, refusing a "
		    "client", srv->cfg->max_connections);
		refuse(fd, PROTO_UNAVAILABLE, "too many connections");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) == -1) {
		log_warn("server: SO_PEERCRED: %s", strerror(errno));
		refuse(fd, PROTO_INTERNAL, "cannot read peer credentials");
		return;
	}
	auth_peer(srv->cfg, cred.uid, cred.gid, &peer);
	if (!peer.may_connect) {
		log_info("server: refusing uid %u: %s", (unsigned)cred.uid,
		    peer.why);
		refuse(fd, PROTO_FORBIDDEN, peer.why);
		return;
	}
	if (srv->cfg->max_connections_per_user > 0 && cred.uid != 0 &&
	    conns_of(srv, cred.uid) >= srv->cfg->max_connections_per_user) {
		refuse(fd, PROTO_UNAVAILABLE, "too many connections for this "
		    "user (max_connections_per_user)");
		return;
	}
	c = xcalloc(1, sizeof *c);
	c->srv = srv;
	c->peer = peer;
	TAILQ_INIT(&c->calls);
	c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->resume_ev = evtimer_new(srv->base, conn_resume, c);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	/*
	 * Read no further than one maximal line plus slack: a client that
	 * never sends a newline cannot grow the buffer past this.
	 */
	bufferevent_setwatermark(c->bev, EV_READ, 0,
	    (size_t)srv->cfg->max_request_bytes + 65536);
	bufferevent_setwatermark(c->bev, EV_WRITE, OUTPUT_LOW, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->nconns++;
}

static void
accept_retry(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(srv->listener);
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct server *srv = arg;
	struct timeval tv = { 0, 100000 };

	/* EMFILE and friends: pause accepting briefly instead of spinning. */
	log_error("server: accept: %s", strerror(errno));
	evconnlistener_disable(l);
	evtimer_add(srv->retry_ev, &tv);
}

int
server_new(struct event_base *base, const struct config *cfg,
    struct sched *sched, struct events *events, struct server **out,
    char **cause)
{
	struct server *srv = NULL;
	ino_t ino = 0;
	int fd, passed;

	*out = NULL;
	/*
	 * SPEC §6: a control socket passed by systemd replaces cfg->socket.
	 * It is already listening (backlog 0: no listen(2) again, systemd's
	 * Backlog= stays), and it is never unlinked (path stays NULL).
	 */
	fd = systemd_listen_fd("control");
	passed = fd != -1;
	if (!passed &&
	    listen_unix(cfg->socket, cfg->socket_mode, &fd, &ino, cause) == -1)
		return -1;
	srv = xcalloc(1, sizeof *srv);
	srv->base = base;
	srv->cfg = cfg;
	srv->sched = sched;
	srv->events = events;
	srv->path = passed ? NULL : xstrdup(cfg->socket);
	TAILQ_INIT(&srv->conns);
	srv->ino = ino;
	srv->listener = evconnlistener_new(base, accept_cb, srv,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
	    passed ? 0 : 1024, fd);
	if (srv->listener == NULL) {
		xasprintf(cause, "%s: listen: %s", cfg->socket,
		    strerror(errno));
		close(fd);
		free(srv->path);
		free(srv);
		return -1;
	}
	evconnlistener_set_error_cb(srv->listener, accept_error_cb);
	srv->retry_ev = evtimer_new(base, accept_retry, srv);
	log_info("server: listening on %s", srv->path != NULL ? srv->path :
	    "the control socket passed by systemd");
	*out = srv;
	return 0;
}

void
server_free(struct server *srv)
{
	struct conn *c;

	if (srv == NULL)
		return;
	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		conn_close(c);
	evconnlistener_free(srv->listener);
	event_free(srv->retry_ev);
	/* Remove the socket file only if it is still the one we bound. */
	if (srv->path != NULL)
		listen_unlink(srv->path, srv->ino);
	free(srv->path);
	free(srv);
}
