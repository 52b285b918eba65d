/*
 * status: the HTTP status endpoint (SPEC §3).
 *
 * Thread rule: loop thread only, like the control socket.  A long poll
 * parks a waiter on the job, an event stream subscribes to events; both
 * belong to the HTTP connection and are taken back when it closes, so a
 * client that leaves costs nothing afterwards.
 *
 * Limits: evhttp's own header and body caps and idle timeout; at most
 * status_max_clients connections (the next one gets 503 and is closed);
 * at most status_max_subscribers event subscribers (socket ones
 * included); a stream whose unread output passes subscriber_buffer_bytes
 * is ended with a final "dropped" event.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "auth.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "status.h"
#include "systemd.h"
#include "util.h"

#define KEEPALIVE_SECONDS	15
#define MAX_HEADERS_BYTES	16384
#define MAX_BODY_BYTES		4096
#define MAX_WAIT_SECONDS	31536000

struct hconn;

/* A request answered later: a long poll or an event stream. */
struct hpark {
	struct hconn	*hc;
	struct evhttp_request *req;
	struct waiter	 waiter;	/* long poll */
	struct subscriber sub;		/* event stream */
	struct event	*keepalive;	/* event stream */
	int		 details;
};

/* An HTTP connection that has sent a request. */
struct hconn {
	struct status	*st;
	struct evhttp_connection *evcon;
	struct hpark	*park;
	long		 scope;		/* uid whose jobs it sees; -1 all */
	TAILQ_ENTRY(hconn) entry;
};

struct status {
	struct event_base *base;
	const struct config *cfg;
	struct sched	*sched;
	struct server	*server;
	struct events	*events;
	struct evhttp	*http;
	struct evhttp_bound_socket *bound;
	struct event	*retry_ev;
	char		*unix_path;	/* when we bound a Unix socket */
	ino_t		 unix_ino;
	int		 local;		/* a Unix socket, bound or passed */
	TAILQ_HEAD(, hconn) conns;
	long		 nconns;
};

static void
reply_json(struct evhttp_request *req, int code, const char *reason,
    json_t *body)
{
	struct evbuffer *b = evbuffer_new();
	/* Reals as the socket protocol writes them (protocol.c). */
	char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));

	json_decref(body);
	if (text != NULL) {
		evbuffer_add(b, text, strlen(text));
		evbuffer_add(b, "\n", 1);
		free(text);
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

static void __attribute__((format(printf, 5, 6)))
reply_error(struct evhttp_request *req, int code, const char *reason,
    const char *errcode, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	reply_json(req, code, reason, json_pack("{s:{s:s,s:s}}", "error",
	    "code", errcode, "message", msg));
	free(msg);
}

/*
 * evhttp's idle timeout would cut a long poll or an event stream short:
 * a parked request lifts it, and it comes back when the request ends.
 */
static void
hconn_timeout(struct hconn *hc, int parked)
{
	struct timeval tv = { 0, 0 };

	tv.tv_sec = parked ? 10 * 365 * 86400 :
	    (time_t)hc->st->cfg->status_idle_timeout;
	evhttp_connection_set_timeout_tv(hc->evcon, &tv);
}

/* Take back whatever the connection had parked; the request is gone. */
static void
hpark_free(struct hpark *hp)
{
	struct status *st = hp->hc->st;

	if (hp->sub.deliver != NULL)
		events_unsubscribe(st->events, &hp->sub);
	sched_withdraw(st->sched, &hp->waiter);
	if (hp->keepalive != NULL)
		event_free(hp->keepalive);
	free(hp->sub.queue);
	hp->hc->park = NULL;
	free(hp);
}

static void
hconn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct hconn *hc = arg;

	(void)evcon;
	if (hc->park != NULL) {
		/*
		 * When the client leaves an unanswered request, evhttp detaches
		 * the request from the dying connection and leaves it to us:
		 * free it.  (At evhttp_free it is still attached: evhttp's.)
		 */
		if (evhttp_request_get_connection(hc->park->req) == NULL)
			evhttp_request_free(hc->park->req);
		hpark_free(hc->park);
	}
	TAILQ_REMOVE(&hc->st->conns, hc, entry);
	hc->st->nconns--;
	free(hc);
}

/*
 * SPEC §5: over a Unix socket the peer is known (SO_PEERCRED) and sees
 * only its own jobs unless it is an admin; over TCP nobody is known, and
 * job details are left out instead (details()).
 */
static long
peer_scope(struct status *st, struct evhttp_connection *evcon)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	struct peer p;
	int fd;

	if (!st->local)
		return -1;
	fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return -2;		/* unknown: sees nobody's jobs */
	auth_peer(st->cfg, cred.uid, cred.gid, &p);
	return auth_scope(&p);
}

/* Whether this connection may see a job of that owner. */
static int
hconn_sees(const struct hconn *hc, uid_t owner)
{
	return hc->scope == -1 || hc->scope == (long)owner;
}

static struct hconn *
hconn_get(struct status *st, struct evhttp_connection *evcon)
{
	struct hconn *hc;

	TAILQ_FOREACH(hc, &st->conns, entry)
		if (hc->evcon == evcon)
			return hc;
	if (st->nconns >= st->cfg->status_max_clients)
		return NULL;
	hc = xcalloc(1, sizeof *hc);
	hc->st = st;
	hc->evcon = evcon;
	hc->scope = peer_scope(st, evcon);
	/* Its next requests wait behind the job path (status.h). */
	bufferevent_priority_set(evhttp_connection_get_bufferevent(evcon),
	    LOOP_PRIO_STATUS);
	TAILQ_INSERT_TAIL(&st->conns, hc, entry);
	st->nconns++;
	evhttp_connection_set_closecb(evcon, hconn_closed, hc);
	return hc;
}

/*
 * Query parameters: every name must be one of allowed (a string of names
 * separated by spaces) and appear once.  0, or -1 after answering 400.
 */
static int
query_parse(struct evhttp_request *req, const char *allowed,
    struct evkeyvalq *q)
{
	const char *raw = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evkeyval *kv, *other;
	size_t n;
	const char *p;

	TAILQ_INIT(q);
	if (raw == NULL)
		return 0;
	if (evhttp_parse_query_str(raw, q) == -1) {
		reply_error(req, 400, "Bad Request", PROTO_BAD_REQUEST,
		    "malformed query string");
		return -1;
	}
	TAILQ_FOREACH(kv, q, next) {
		n = strlen(kv->key);
		for (p = allowed; *p != '\0'; p += strcspn(p, " "),
		    p += strspn(p, " "))
			if (strncmp(p, kv->key, n) == 0 &&
			    (p[n] == ' ' || p[n] == '\0') && n > 0)
				break;
		if (*p == '\0') {
			reply_error(req, 400, "Bad Request", PROTO_BAD_REQUEST,
			    "unknown query parameter \"%.64s\"", kv->key);
			goto fail;
		}
		for (other = TAILQ_NEXT(kv, next); other != NULL;
		    other = TAILQ_NEXT(other, next)) {
			if (strcmp(other->key, kv->key) == 0) {
				reply_error(req, 400, "Bad Request",
				    PROTO_BAD_REQUEST, "query parameter \"%s\" "
				    "given twice", kv->key);
				goto fail;
			}
		}
	}
	return 0;
fail:
	evhttp_clear_headers(q);
	return -1;
}

/* A whole number in min..max, or -1 after answering 400. */
static int
query_long(struct evhttp_request *req, const char *name, const char *value,
    long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (*value == '\0' || *end != '\0' || errno != 0 || v < min ||
	    v > max) {
		reply_error(req, 400, "Bad Request", PROTO_BAD_REQUEST,
		    "\"%s\" must be an integer in %ld..%ld", name, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static void
get_healthz(struct status *st, struct hconn *hc, struct evhttp_request *req)
{
	(void)st;
	(void)hc;
	reply_json(req, 200, "OK", json_pack("{s:b}", "ok", 1));
}

static void
get_status(struct status *st, struct hconn *hc, struct evhttp_request *req)
{
	(void)hc;
	reply_json(req, 200, "OK", metrics_status(st->sched,
	    server_connections(st->server)));
}

static void
get_metrics(struct status *st, struct hconn *hc, struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();

	(void)hc;
	metrics_prometheus(st->sched, server_connections(st->server), b);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

/* Job details over TCP only when the config says so (SPEC §5). */
static int
details(const struct status *st)
{
	return st->local || st->cfg->status_job_details;
}

static void
get_jobs(struct status *st, struct hconn *hc, struct evhttp_request *req)
{
	struct evkeyvalq q;
	const char *queue, *state;
	json_t *jobs;
	long limit = PROTOCOL_LIMIT_DEFAULT;
	int stnum = -1;

	if (query_parse(req, "queue state limit", &q) == -1)
		return;
	queue = evhttp_find_header(&q, "queue");
	state = evhttp_find_header(&q, "state");
	if (state != NULL && (stnum = protocol_state_parse(state)) == -1) {
		reply_error(req, 400, "Bad Request", PROTO_BAD_REQUEST,
		    "\"state\" must be one of queued, running, succeeded, "
		    "failed, timed_out, canceled");
		goto out;
	}
	if (evhttp_find_header(&q, "limit") != NULL &&
	    query_long(req, "limit", evhttp_find_header(&q, "limit"), 1,
	    PROTOCOL_LIMIT_MAX, &limit) == -1)
		goto out;
	if (sched_list(st->sched, queue, stnum, hc->scope, limit, details(st),
	    &jobs) == -1) {
		reply_error(req, 404, "Not Found", PROTO_UNKNOWN_QUEUE,
		    "no queue named \"%.64s\"", queue);
		goto out;
	}
	reply_json(req, 200, "OK", json_pack("{s:o}", "jobs", jobs));
out:
	evhttp_clear_headers(&q);
}

static void
longpoll_done(struct waiter *w, int status)
{
	struct hpark *hp = w->arg;

	(void)status;	/* finished or not, the answer is the record */
	reply_json(hp->req, 200, "OK", job_to_json(w->job, hp->details));
	hconn_timeout(hp->hc, 0);
	hpark_free(hp);
}

static void
get_job(struct status *st, struct hconn *hc, struct evhttp_request *req,
    const char *idstr)
{
	struct evkeyvalq q;
	struct hpark *hp;
	const char *wait;
	struct job *j;
	char *end;
	unsigned long long id;
	double secs;

	if (query_parse(req, "wait", &q) == -1)
		return;
	errno = 0;
	id = strtoull(idstr, &end, 10);
	if (*idstr < '1' || *idstr > '9' || *end != '\0' || errno != 0 ||
	    (j = sched_find(st->sched, (uint64_t)id)) == NULL ||
	    !hconn_sees(hc, j->uid)) {
		reply_error(req, 404, "Not Found", PROTO_NOT_FOUND,
		    "no job %.32s", idstr);
		goto out;
	}
	if ((wait = evhttp_find_header(&q, "wait")) != NULL) {
		secs = strtod(wait, &end);
		if (*wait == '\0' || *end != '\0' || !(secs >= 0) ||
		    secs > MAX_WAIT_SECONDS) {
			reply_error(req, 400, "Bad Request", PROTO_BAD_REQUEST,
			    "\"wait\" must be a number of seconds in "
			    "0..%d", MAX_WAIT_SECONDS);
			goto out;
		}
		hp = xcalloc(1, sizeof *hp);
		hp->hc = hc;
		hp->req = req;
		hp->details = details(st);
		hp->waiter.done = longpoll_done;
		hp->waiter.arg = hp;
		if (sched_wait(st->sched, j, &hp->waiter, secs) == 1) {
			hc->park = hp;
			hconn_timeout(hc, 1);
			goto out;
		}
		free(hp);
	}
	reply_json(req, 200, "OK", job_to_json(j, details(st)));
out:
	evhttp_clear_headers(&q);
}

static void
stream_end(struct hpark *hp, const char *why)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add_printf(b, "event: dropped\ndata: {\"dropped\":true,"
	    "\"reason\":\"%s\"}\n\n", why);
	evhttp_send_reply_chunk(hp->req, b);
	evbuffer_free(b);
	evhttp_send_reply_end(hp->req);
	hconn_timeout(hp->hc, 0);
	hpark_free(hp);
}

static void
stream_deliver(struct subscriber *sub, const char *line, size_t len)
{
	struct hpark *hp = sub->arg;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(hp->hc->evcon);
	struct evbuffer *b;

	/* A reader this far behind would grow us without bound: drop it. */
	if (events_backlogged(bev,
	    (size_t)hp->hc->st->cfg->subscriber_buffer_bytes)) {
		log_warn("status: dropping a slow /events reader");
		stream_end(hp, "slow reader: too many unread events");
		return;
	}
	b = evbuffer_new();
	evbuffer_add(b, "data: ", 6);
	evbuffer_add(b, line, len);
	evbuffer_add(b, "\n\n", 2);
	evhttp_send_reply_chunk(hp->req, b);
	evbuffer_free(b);
}

static void
stream_keepalive(evutil_socket_t fd, short what, void *arg)
{
	struct hpark *hp = arg;
	struct evbuffer *b = evbuffer_new();

	(void)fd;
	(void)what;
	evbuffer_add_printf(b, ": keep-alive\n\n");
	evhttp_send_reply_chunk(hp->req, b);
	evbuffer_free(b);
}

static void
get_events(struct status *st, struct hconn *hc, struct evhttp_request *req)
{
	struct timeval tv = { KEEPALIVE_SECONDS, 0 };
	struct evkeyvalq q;
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	const char *queue;
	struct hpark *hp;

	if (query_parse(req, "queue", &q) == -1)
		return;
	queue = evhttp_find_header(&q, "queue");
	if (queue != NULL && !sched_has_queue(st->sched, queue)) {
		reply_error(req, 404, "Not Found", PROTO_UNKNOWN_QUEUE,
		    "no queue named \"%.64s\"", queue);
		goto out;
	}
	if (events_count(st->events) >=
	    (size_t)st->cfg->status_max_subscribers) {
		reply_error(req, 503, "Service Unavailable", PROTO_UNAVAILABLE,
		    "too many event subscribers (status_max_subscribers)");
		goto out;
	}
	evhttp_add_header(h, "Content-Type", "text/event-stream");
	evhttp_add_header(h, "Cache-Control", "no-cache");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		evhttp_send_reply(req, 200, "OK", NULL);
		goto out;
	}
	hp = xcalloc(1, sizeof *hp);
	hp->hc = hc;
	hp->req = req;
	hp->sub.deliver = stream_deliver;
	hp->sub.arg = hp;
	hp->sub.queue = queue != NULL ? xstrdup(queue) : NULL;
	hp->sub.uid = hc->scope;
	hp->keepalive = event_new(st->base, -1, EV_PERSIST, stream_keepalive,
	    hp);
	evtimer_add(hp->keepalive, &tv);
	hc->park = hp;
	hconn_timeout(hc, 1);
	/*
	 * A stream carries job events as fast as jobs make them: written
	 * at the status priority it would fall behind in a flood and be
	 * dropped as a slow reader, so it keeps pace with the job path.
	 */
	bufferevent_priority_set(evhttp_connection_get_bufferevent(hc->evcon),
	    LOOP_PRIO_DEFAULT);
	evhttp_send_reply_start(req, 200, "OK");
	events_subscribe(st->events, &hp->sub);
out:
	evhttp_clear_headers(&q);
}

/* Paths without parameters of their own reject any query. */
static int
no_query(struct evhttp_request *req)
{
	struct evkeyvalq q;

	if (query_parse(req, "", &q) == -1)
		return -1;
	evhttp_clear_headers(&q);
	return 0;
}

static void
status_request(struct evhttp_request *req, void *arg)
{
	struct status *st = arg;
	struct hconn *hc;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));

	if ((hc = hconn_get(st, evhttp_request_get_connection(req))) == NULL) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		reply_error(req, 503, "Service Unavailable", PROTO_UNAVAILABLE,
		    "too many HTTP clients (status_max_clients)");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		reply_error(req, 405, "Method Not Allowed", PROTO_BAD_REQUEST,
		    "only GET and HEAD are served");
		return;
	}
	if (path == NULL || *path == '\0')
		path = "/";
	if (strcmp(path, "/healthz") == 0) {
		if (no_query(req) == 0)
			get_healthz(st, hc, req);
	} else if (strcmp(path, "/status") == 0) {
		if (no_query(req) == 0)
			get_status(st, hc, req);
	} else if (strcmp(path, "/metrics") == 0) {
		if (no_query(req) == 0)
			get_metrics(st, hc, req);
	} else if (strcmp(path, "/jobs") == 0) {
		get_jobs(st, hc, req);
	} else if (strncmp(path, "/jobs/", 6) == 0) {
		get_job(st, hc, req, path + 6);
	} else if (strcmp(path, "/events") == 0) {
		get_events(st, hc, req);
	} else {
		reply_error(req, 404, "Not Found", PROTO_NOT_FOUND,
		    "no such path: %.128s", path);
	}
}

static void
accept_retry(evutil_socket_t fd, short what, void *arg)
{
	struct status *st = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(evhttp_bound_socket_get_listener(st->bound));
}

static void
accept_error(struct evconnlistener *l, void *arg)
{
	struct status *st = arg;
	struct timeval tv = { 0, 100000 };

	/* Out of fds: pause accepting instead of spinning on the listener. */
	log_error("status: accept: %s", strerror(errno));
	evconnlistener_disable(l);
	evtimer_add(st->retry_ev, &tv);
}

/* "host:port" or "[v6]:port" (config.c has checked the shape). */
static int
status_bind_tcp(struct status *st, const char *spec, char **cause)
{
	const char *colon = strrchr(spec, ':');
	char *host;
	int port = atoi(colon + 1);

	if (spec[0] == '[')
		host = xstrndup(spec + 1, (size_t)(colon - spec) - 2);
	else
		host = xstrndup(spec, (size_t)(colon - spec));
	st->bound = evhttp_bind_socket_with_handle(st->http, host,
	    (ev_uint16_t)port);
	if (st->bound == NULL)
		xasprintf(cause, "status_listen %s: cannot listen: %s", spec,
		    strerror(errno));
	free(host);
	return st->bound == NULL ? -1 : 0;
}

static int
status_bind_unix(struct status *st, const char *path, char **cause)
{
	int fd;

	if (listen_unix(path, st->cfg->socket_mode, &fd, &st->unix_ino,
	    cause) == -1)
		return -1;
	if (listen(fd, 1024) == -1 || (st->bound =
	    evhttp_accept_socket_with_handle(st->http, fd)) == NULL) {
		xasprintf(cause, "status_listen unix:%s: listen: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	st->unix_path = xstrdup(path);
	st->local = 1;
	return 0;
}

/*
 * SPEC §6: serve the socket systemd passed, already listening (evhttp
 * calls no listen(2) on it), never unlinked.  Unix or TCP decides the job
 * details rule (SPEC §5), so ask the socket which it is.
 */
static int
status_adopt(struct status *st, int fd, char **cause)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    (st->bound = evhttp_accept_socket_with_handle(st->http,
	    fd)) == NULL) {
		xasprintf(cause, "status: passed socket (fd %d): %s", fd,
		    strerror(errno));
		close(fd);
		return -1;
	}
	st->local = ss.ss_family == AF_UNIX;
	return 0;
}

int
status_new(struct event_base *base, const struct config *cfg,
    struct sched *sched, struct server *server, struct events *events,
    struct status **out, char **cause)
{
	struct status *st;
	struct timeval idle;
	int r, fd;

	*out = NULL;
	/* A passed "status" socket replaces status_listen, even "". */
	fd = systemd_listen_fd("status");
	if (fd == -1 && cfg->status_listen[0] == '\0')
		return 0;
	st = xcalloc(1, sizeof *st);
	st->base = base;
	st->cfg = cfg;
	st->sched = sched;
	st->server = server;
	st->events = events;
	TAILQ_INIT(&st->conns);
	st->http = evhttp_new(base);
	evhttp_set_max_headers_size(st->http, MAX_HEADERS_BYTES);
	evhttp_set_max_body_size(st->http, MAX_BODY_BYTES);
	idle.tv_sec = (time_t)cfg->status_idle_timeout;
	idle.tv_usec = 0;
	evhttp_set_timeout_tv(st->http, &idle);
	evhttp_set_allowed_methods(st->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_gencb(st->http, status_request, st);
	if (fd != -1)
		r = status_adopt(st, fd, cause);
	else if (strncmp(cfg->status_listen, "unix:", 5) == 0)
		r = status_bind_unix(st, cfg->status_listen + 5, cause);
	else
		r = status_bind_tcp(st, cfg->status_listen, cause);
	if (r == -1) {
		evhttp_free(st->http);
		free(st);
		return -1;
	}
	st->retry_ev = evtimer_new(base, accept_retry, st);
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(st->bound),
	    accept_error);
	log_info("status: listening on %s", fd != -1 ?
	    "the status socket passed by systemd" : cfg->status_listen);
	*out = st;
	return 0;
}

void
status_loop_config(struct event_config *ec)
{
	event_config_set_max_dispatch_interval(ec, NULL,
	    STATUS_CALLBACKS_PER_TURN, LOOP_PRIO_STATUS);
}

int
status_loop_init(struct event_base *base)
{
	return event_base_priority_init(base, LOOP_PRIORITIES);
}

void
status_free(struct status *st)
{
	if (st == NULL)
		return;
	/* evhttp_free closes every connection; each closecb frees its hconn. */
	evhttp_free(st->http);
	event_free(st->retry_ev);
	if (st->unix_path != NULL)
		listen_unlink(st->unix_path, st->unix_ino);
	free(st->unix_path);
	free(st);
}
