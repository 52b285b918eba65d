/*
 * ops: the socket protocol's operations (SPEC §2), one handler per op in a
 * table.  Handlers turn a parsed request into scheduler calls and the
 * scheduler's answers into response lines; parked calls are answered from
 * their waiter's done callback.
 *
 * Thread rule: loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "metrics.h"
#include "ops.h"
#include "util.h"
#include "version.h"

struct op_entry {
	int	(*handler)(struct call *);
};

static struct sched *
call_sched(struct call *call)
{
	return server_sched(call->server);
}

static json_t *
job_field(const struct job *j)
{
	return json_pack("{s:o}", "job", job_to_json(j, 1));
}

static int
op_ping(struct call *call)
{
	call_reply_ok(call, json_pack("{s:s,s:i}", "version", JOBD_VERSION,
	    "pid", (int)getpid()));
	return 0;
}

static void
submit_done(struct waiter *w, int status)
{
	struct call *call = w->arg;

	if (status == 0)
		call_reply_ok(call, json_pack("{s:I,s:s}", "id",
		    (json_int_t)w->job->id, "state", "queued"));
	else if (status == ETIMEDOUT)
		call_reply_error(call, PROTO_TIMEOUT, "queue \"%s\" is still "
		    "full after block_timeout", call->req.queue);
	else if (status == ESHUTDOWN)
		call_reply_error(call, PROTO_SHUTTING_DOWN,
		    "jobd is shutting down");
	else
		call_reply_error(call, PROTO_UNAVAILABLE, "journal: %s; "
		    "nothing was accepted, retry later", strerror(status));
	call_done(call);
}

static int
op_submit(struct call *call)
{
	struct request *req = &call->req;
	const struct peer *p = &call->peer;
	int closed = call_peer_closed(call);

	if (!p->may_submit) {
		call_reply_error(call, PROTO_FORBIDDEN, "%s", p->why);
		return 0;
	}
	/* The spec moves into the waiter; keep the name for the messages. */
	req->queue = xstrdup(req->job.queue);
	call->waiter.done = submit_done;
	call->waiter.arg = call;
	/* A client that half-closed cannot wait for room: it is withdrawn. */
	switch (sched_submit(call_sched(call), &req->job, p->uid, p->gid,
	    &call->waiter, req->nowait || closed, req->block_timeout)) {
	case SUBMIT_BLOCKED:
		return 1;		/* holds back this connection */
	case SUBMIT_ADMITTED:
		return 2;		/* answered in order, later lines go on */
	case SUBMIT_UNKNOWN_QUEUE:
		call_reply_error(call, PROTO_UNKNOWN_QUEUE,
		    "no queue named \"%s\"", req->queue);
		break;
	case SUBMIT_SHUTTING_DOWN:
		call_reply_error(call, PROTO_SHUTTING_DOWN,
		    "jobd is shutting down");
		break;
	case SUBMIT_UNAVAILABLE:
		call_reply_error(call, PROTO_UNAVAILABLE, "journal: %s; "
		    "nothing was accepted, retry later", strerror(errno));
		break;
	case SUBMIT_QUOTA:
		if (!closed || req->nowait)
			call_reply_error(call, PROTO_QUEUE_FULL, "uid %u has "
			    "max_jobs_per_user (%ld) unfinished jobs",
			    (unsigned)p->uid,
			    server_config(call->server)->max_jobs_per_user);
		break;
	case SUBMIT_FULL:
		if (!closed || req->nowait)
			call_reply_error(call, PROTO_QUEUE_FULL,
			    "queue \"%s\" is full", req->queue);
		break;
	}
	return 0;
}

/* Another user's job answers exactly like one that does not exist. */
static struct job *
find_job(struct call *call)
{
	struct job *j = sched_find(call_sched(call), call->req.id);

	if (j != NULL && !auth_owns(&call->peer, j->uid))
		j = NULL;
	if (j == NULL)
		call_reply_error(call, PROTO_NOT_FOUND, "no job %llu",
		    (unsigned long long)call->req.id);
	return j;
}

static int
op_get(struct call *call)
{
	struct job *j;

	if ((j = find_job(call)) != NULL)
		call_reply_ok(call, job_field(j));
	return 0;
}

static void
wait_done(struct waiter *w, int status)
{
	struct call *call = w->arg;

	if (status == 0)
		call_reply_ok(call, job_field(w->job));
	else
		call_reply_error(call, PROTO_TIMEOUT, "job %llu is not "
		    "finished", (unsigned long long)call->req.id);
	call_done(call);
}

static int
op_wait(struct call *call)
{
	struct job *j;

	if ((j = find_job(call)) == NULL)
		return 0;
	call->waiter.done = wait_done;
	call->waiter.arg = call;
	if (sched_wait(call_sched(call), j, &call->waiter,
	    call->req.timeout) == 1)
		return 1;
	call_reply_ok(call, job_field(j));
	return 0;
}

static void
cancel_conflict(struct call *call, const struct job *j)
{
	call_reply_error(call, PROTO_CONFLICT, "job %llu already %s",
	    (unsigned long long)j->id, protocol_state_name(j->state));
}

static void
cancel_done(struct waiter *w, int status)
{
	struct call *call = w->arg;

	(void)status;
	if (w->job->state == JOB_CANCELED)
		call_reply_ok(call, job_field(w->job));
	else
		cancel_conflict(call, w->job);	/* it ended first */
	call_done(call);
}

static int
op_cancel(struct call *call)
{
	struct job *j;

	if ((j = find_job(call)) == NULL)
		return 0;
	call->waiter.done = cancel_done;
	call->waiter.arg = call;
	switch (sched_cancel(call_sched(call), j, &call->waiter)) {
	case 1:
		return 1;
	case 0:
		call_reply_ok(call, job_field(j));
		break;
	default:
		cancel_conflict(call, j);
		break;
	}
	return 0;
}

static void
join_done(struct waiter *w, int status)
{
	struct call *call = w->arg;

	if (status == 0)
		call_reply_ok(call, NULL);
	else
		call_reply_error(call, PROTO_TIMEOUT, "unfinished jobs remain");
	call_done(call);
}

static int
op_join(struct call *call)
{
	call->waiter.done = join_done;
	call->waiter.arg = call;
	switch (sched_join(call_sched(call), call->req.queue,
	    auth_scope(&call->peer), &call->waiter, call->req.timeout)) {
	case 1:
		return 1;
	case 0:
		call_reply_ok(call, NULL);
		break;
	default:
		call_reply_error(call, PROTO_UNKNOWN_QUEUE,
		    "no queue named \"%s\"", call->req.queue);
		break;
	}
	return 0;
}

static int
op_list(struct call *call)
{
	json_t *jobs;

	if (sched_list(call_sched(call), call->req.queue, call->req.state,
	    auth_scope(&call->peer), call->req.limit, 1, &jobs) == -1)
		call_reply_error(call, PROTO_UNKNOWN_QUEUE,
		    "no queue named \"%s\"", call->req.queue);
	else
		call_reply_ok(call, json_pack("{s:o}", "jobs", jobs));
	return 0;
}

static int
op_stats(struct call *call)
{
	json_t *stats = metrics_status(call_sched(call),
	    server_connections(call->server));

	call_reply_ok(call, json_pack("{s:o}", "stats", stats));
	return 0;
}

static int
forbidden_unless_admin(struct call *call)
{
	if (call->peer.admin)
		return 0;
	call_reply_error(call, PROTO_FORBIDDEN, "op \"%s\" is for admins "
	    "(root, jobd's own user, admin_group)",
	    protocol_op_name(call->req.op));
	return -1;
}

static int
pause_or_resume(struct call *call, int paused)
{
	if (forbidden_unless_admin(call) == -1)
		return 0;
	if (sched_pause(call_sched(call), call->req.queue, paused) == -1)
		call_reply_error(call, PROTO_UNKNOWN_QUEUE,
		    "no queue named \"%s\"", call->req.queue);
	else
		call_reply_ok(call, NULL);
	return 0;
}

static int
op_pause(struct call *call)
{
	return pause_or_resume(call, 1);
}

static int
op_resume(struct call *call)
{
	return pause_or_resume(call, 0);
}

static int
op_subscribe(struct call *call)
{
	const char *queue = call->req.queue;

	if (queue != NULL && !sched_has_queue(call_sched(call), queue))
		call_reply_error(call, PROTO_UNKNOWN_QUEUE,
		    "no queue named \"%s\"", queue);
	else if (server_subscribe(call, queue, auth_scope(&call->peer)) == -1)
		call_reply_error(call, PROTO_UNAVAILABLE, "too many event "
		    "subscribers (status_max_subscribers)");
	else
		call_reply_ok(call, NULL);
	return 0;
}

/* Answered synchronously: the new config is in force when it returns. */
static int
op_reload(struct call *call)
{
	json_t *ignored;
	char *cause = NULL;

	if (forbidden_unless_admin(call) == -1)
		return 0;
	if (server_reload(call->server, &ignored, &cause) == -1) {
		call_reply_error(call, PROTO_BAD_REQUEST, "%s", cause);
		free(cause);
		return 0;
	}
	/* "o" steals ignored. */
	call_reply_ok(call, json_pack("{s:o}", "ignored", ignored));
	return 0;
}

static const struct op_entry op_table[OP__COUNT] = {
	[OP_PING] =		{ op_ping },
	[OP_SUBMIT] =		{ op_submit },
	[OP_GET] =		{ op_get },
	[OP_WAIT] =		{ op_wait },
	[OP_JOIN] =		{ op_join },
	[OP_CANCEL] =		{ op_cancel },
	[OP_LIST] =		{ op_list },
	[OP_STATS] =		{ op_stats },
	[OP_PAUSE] =		{ op_pause },
	[OP_RESUME] =		{ op_resume },
	[OP_SUBSCRIBE] =	{ op_subscribe },
	[OP_RELOAD] =		{ op_reload },
};

int
ops_run(struct call *call)
{
	return op_table[call->req.op].handler(call);
}
