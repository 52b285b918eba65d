/*
 * sched: named queues, job life cycle, waiters and the shutdown drain.
 *
 * Thread rule: the loop thread owns every struct jq, struct job, pending
 * heap and waiter here.  A job crosses to a worker only as a self-contained
 * struct work_item (a copy), put into its queue's workq while a worker is
 * free, and comes back through the completion queue.  The loop never blocks
 * on either: it puts only while busy < workers, so put_nowait has room.
 *
 * Reload (sched_reconfigure) changes a queue's figures in place; a queue
 * gone from the config is "removed" (no new submits) and, once it holds
 * no job, "retired" (its workers leave, stats no longer list it).  Its
 * struct stays until sched_free: finished job records point to it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "completion.h"
#include "jobrec.h"
#include "log.h"
#include "pending.h"
#include "persist.h"
#include "pool.h"
#include "runner.h"
#include "sched.h"
#include "util.h"
#include "workq.h"

extern char **environ;

/*
 * Unfinished jobs per owner, for join's scope and max_jobs_per_user.  A
 * handful of users is the common case, so a small array searched in order
 * beats a hash; entries leave when their count drops to zero.
 */
struct ucount {
	uid_t		 uid;
	size_t		 n;
};

struct users {
	struct ucount	*v;
	size_t		 len;
	size_t		 cap;
};

/* First member: job.c reads a job's queue name through its queue pointer. */
struct jq {
	struct queue_config cfg;
	struct sched	*sched;
	struct pending	*pending;	/* accepted, not started */
	struct workq	*workq;		/* hand-off to this queue's workers */
	struct pool	*pool;
	int		 busy;		/* items out with workers */
	size_t		 incoming;	/* submits waiting for their record */
	size_t		 finishing;	/* final states waiting for theirs */
	int		 paused;
	int		 removed;	/* not in the config any more */
	int		 retired;	/* removed and empty: workers gone */
	uint64_t	 submitted;
	uint64_t	 finished[JOB__STATES];	/* by final state */
	struct users	 users;		/* unfinished jobs per owner */
	struct histogram duration;	/* started → finished */
	struct histogram wait;		/* submitted → started */
	struct waiter_list blocked;	/* submits waiting for room, in order */
};

_Static_assert(offsetof(struct jq, cfg) == 0 &&
    offsetof(struct queue_config, name) == 0,
    "a struct jq must begin with its queue's name (job_queue_name)");

struct sched {
	struct event_base *base;
	const struct config *cfg;
	struct jq	**queues;	/* every queue ever, retired ones too */
	size_t		 nqueues;

	struct jobtab	*tab;
	struct job_list	 all;		/* every record, oldest id first */
	struct job_list	 done;		/* finished records, oldest first */
	size_t		 ndone;
	uint64_t	 last_id;

	struct completion *completion;
	struct event	*completion_ev;
	struct event	*trim_ev;
	struct waiter_list joins;
	struct users	 users;		/* unfinished jobs per owner, all queues */
	struct events	*events;
	struct persist	*persist;	/* the journal */

	char		**base_env;	/* immutable while workers run */
	char		*lang;		/* jobd's LANG, for jobs run as users */
	int		 run_as;	/* jobd is root: jobs run as owners */
	double		 started_real;
	double		 started_mono;

	int		 shutting_down;
	int		 drained_called;
	struct event	*shutdown_ev;
	void		(*drained)(void *);
	void		*drained_arg;
};

static void	sched_dispatch(struct sched *, struct jq *);
static void	sched_dispatch_all(struct sched *);
static void	sched_check_drained(struct sched *);
static void	sched_finish_durably(struct sched *, struct job *);
static void	sched_check_joins(struct sched *);
static void	jq_set_workers(struct jq *, int);

/*
 * The base environment of every job: the daemon's own, without what
 * belongs to its supervisor or loader (SPEC §2 "Environment").
 */
static int
env_is_private(const char *entry)
{
	static const char *const exact[] = {
		"NOTIFY_SOCKET", "JOURNAL_STREAM", "INVOCATION_ID",
	};
	static const char *const prefix[] = { "LISTEN_", "WATCHDOG_", "LD_" };
	static const char suffix[] = "_DIRECTORY";
	const char *eq = strchr(entry, '=');
	size_t len = eq != NULL ? (size_t)(eq - entry) : strlen(entry), i;

	for (i = 0; i < sizeof exact / sizeof exact[0]; i++)
		if (len == strlen(exact[i]) &&
		    strncmp(entry, exact[i], len) == 0)
			return 1;
	for (i = 0; i < sizeof prefix / sizeof prefix[0]; i++)
		if (strncmp(entry, prefix[i], strlen(prefix[i])) == 0)
			return 1;
	return len >= sizeof suffix - 1 &&
	    strncmp(entry + len - (sizeof suffix - 1), suffix,
	    sizeof suffix - 1) == 0;
}

static char **
env_base(void)
{
	size_t n = strv_len(environ), i, k = 0;
	char **env = xcalloc(n + 1, sizeof *env);

	for (i = 0; i < n; i++)
		if (!env_is_private(environ[i]))
			env[k++] = xstrdup(environ[i]);
	return env;
}

static struct jq *
sched_queue(struct sched *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nqueues; i++)
		if (!s->queues[i]->removed &&
		    strcmp(s->queues[i]->cfg.name, name) == 0)
			return s->queues[i];
	return NULL;
}

/* Accepted and not final (a final state counts once it is durable). */
static size_t
jq_unfinished(const struct jq *q)
{
	return pending_len(q->pending) + (size_t)q->busy + q->finishing;
}

/* Whether the queue holds its capacity of not-started jobs. */
static int
jq_full(const struct jq *q)
{
	return pending_len(q->pending) + q->incoming >=
	    (size_t)q->cfg.capacity;
}

static size_t
users_count(const struct users *u, uid_t uid)
{
	size_t i;

	for (i = 0; i < u->len; i++)
		if (u->v[i].uid == uid)
			return u->v[i].n;
	return 0;
}

static void
users_add(struct users *u, uid_t uid, int delta)
{
	size_t i;

	for (i = 0; i < u->len && u->v[i].uid != uid; i++)
		continue;
	if (i == u->len) {
		if (u->len == u->cap) {
			u->cap = u->cap == 0 ? 4 : u->cap * 2;
			u->v = xreallocarray(u->v, u->cap, sizeof *u->v);
		}
		u->v[u->len].uid = uid;
		u->v[u->len++].n = 0;
	}
	u->v[i].n += (size_t)delta;
	if (u->v[i].n == 0)
		u->v[i] = u->v[--u->len];
}

/* Whether uid may have one more unfinished job (max_jobs_per_user). */
static int
quota_room(const struct sched *s, uid_t uid)
{
	return uid == 0 || s->cfg->max_jobs_per_user == 0 ||
	    users_count(&s->users, uid) < (size_t)s->cfg->max_jobs_per_user;
}

/* Complete a parked waiter: it leaves every list before done runs. */
static void
waiter_finish(struct waiter *w, int status)
{
	if (w->timer != NULL) {
		event_free(w->timer);
		w->timer = NULL;
	}
	w->active = 0;
	w->done(w, status);
}

static void
waiter_unlink(struct sched *s, struct waiter *w)
{
	switch (w->kind) {
	case WAITER_SUBMIT:
		TAILQ_REMOVE(&w->queue->blocked, w, entry);
		protocol_job_spec_clear(&w->spec);
		break;
	case WAITER_JOB:
		LIST_REMOVE(w, job_entry);
		break;
	case WAITER_JOIN:
		TAILQ_REMOVE(&s->joins, w, entry);
		break;
	}
}

static void
waiter_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct waiter *w = arg;

	(void)fd;
	(void)what;
	waiter_unlink(w->sched, w);
	waiter_finish(w, ETIMEDOUT);
}

static void
waiter_park(struct sched *s, struct waiter *w, double timeout)
{
	struct timeval tv;

	w->sched = s;
	w->active = 1;
	w->timer = NULL;
	if (timeout < 0)
		return;
	tv.tv_sec = (time_t)timeout;
	tv.tv_usec = (suseconds_t)((timeout - (double)tv.tv_sec) * 1e6);
	w->timer = evtimer_new(s->base, waiter_timeout, w);
	evtimer_add(w->timer, &tv);
}

void
sched_withdraw(struct sched *s, struct waiter *w)
{
	if (!w->active)
		return;
	waiter_unlink(s, w);
	if (w->timer != NULL) {
		event_free(w->timer);
		w->timer = NULL;
	}
	w->active = 0;
}

/* Answer every waiter parked on a job. */
static void
job_answer(struct job *j, int status)
{
	struct waiter *w;

	while ((w = LIST_FIRST(&j->waiters)) != NULL) {
		LIST_REMOVE(w, job_entry);
		waiter_finish(w, status);
	}
}

/* Put an accepted job where the scheduler sees it (replay too). */
static void
job_insert(struct sched *s, struct job *j)
{
	struct jq *q = (struct jq *)j->queue;

	jobtab_add(s->tab, j);
	TAILQ_INSERT_TAIL(&s->all, j, all_entry);
	if (j->state == JOB_QUEUED)
		pending_push(q->pending, j, j->priority, j->id, &j->u.slot);
	if (j->id > s->last_id)
		s->last_id = j->id;
}

/* The submit record is durable (or the disk refused it). */
static void
submit_durable(struct sched *s, struct job *j, int err)
{
	struct jq *q = (struct jq *)j->queue;

	q->incoming--;
	if (err != 0) {
		/* Never acknowledged, so no job exists: take it back. */
		users_add(&q->users, j->uid, -1);
		users_add(&s->users, j->uid, -1);
		job_answer(j, err);
		job_free(j);
		sched_dispatch_all(s);
		return;
	}
	job_insert(s, j);
	q->submitted++;
	events_publish(s->events, j);
	job_answer(j, 0);
	sched_dispatch(s, q);
}

/*
 * Accept the submit parked in w: make the job, write its record, and
 * answer w when the record is durable.  -1 with errno when the journal
 * cannot take the record (w is untouched then, its spec consumed).
 */
static int
sched_admit(struct sched *s, struct jq *q, struct waiter *w)
{
	double timeout = w->spec.timeout >= 0 ? w->spec.timeout :
	    q->cfg.timeout;
	struct job *j = job_new(++s->last_id, &w->spec, w->uid, w->gid);
	int error;

	j->queue = q;
	j->timeout = timeout;
	j->submitted_at = now_real();
	if (persist_submit(s->persist, j, submit_durable) == -1) {
		/*
		 * The id goes back: ids and submit records stay one to one,
		 * so an id is never above its record's journal seq (see
		 * sched_restore_done).
		 */
		error = errno;
		s->last_id--;
		job_free(j);
		errno = error;
		return -1;
	}
	q->incoming++;
	users_add(&q->users, j->uid, 1);
	users_add(&s->users, j->uid, 1);
	/* From now on w waits for the record, as a wait waits for a job. */
	if (w->timer != NULL) {
		event_free(w->timer);
		w->timer = NULL;
	}
	w->kind = WAITER_JOB;
	w->job = j;
	w->sched = s;
	w->active = 1;
	LIST_INSERT_HEAD(&j->waiters, w, job_entry);
	return 0;
}

static void
trim_finished(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;
	struct job *j;

	(void)fd;
	(void)what;
	while (s->ndone > (size_t)s->cfg->keep_finished &&
	    (j = TAILQ_FIRST(&s->done)) != NULL) {
		TAILQ_REMOVE(&s->done, j, u.done_entry);
		TAILQ_REMOVE(&s->all, j, all_entry);
		jobtab_remove(s->tab, j);
		s->ndone--;
		job_free(j);
	}
}

/*
 * A job reached a final state: count it, answer its waiters, and keep it
 * among the finished.  Dropping the oldest finished records is deferred to
 * the next loop turn, so callers may still use j until they return.
 */
static void
job_finish(struct sched *s, struct job *j, enum job_state state)
{
	struct jq *q = (struct jq *)j->queue;
	struct job_result *r = job_result(j);

	j->state = r->state = (uint8_t)state;
	if (r->finished_at == 0)
		r->finished_at = now_real();
	users_add(&q->users, j->uid, -1);
	users_add(&s->users, j->uid, -1);
	q->finished[state]++;
	if (j->started_at != 0)
		histogram_observe(&q->duration, r->finished_at - j->started_at);
	events_publish(s->events, j);
	job_answer(j, 0);
	TAILQ_INSERT_TAIL(&s->done, j, u.done_entry);
	if (++s->ndone > (size_t)s->cfg->keep_finished)
		event_active(s->trim_ev, 0, 0);
}

static struct work_item *
work_item_new(struct sched *s, struct job *j)
{
	struct work_item *it = xcalloc(1, sizeof *it);
	const struct job_extra *x;

	it->id = j->id;
	it->kind = j->kind;
	switch (j->kind) {
	case JOB_ARGV:
		it->argv = strv_dup(j->cmd.argv);
		break;
	case JOB_SHELL:
		it->argv = xcalloc(4, sizeof *it->argv);
		it->argv[0] = xstrdup("/bin/sh");
		it->argv[1] = xstrdup("-c");
		it->argv[2] = xstrdup(j->cmd.shell);
		break;
	case JOB_SLEEP:
		it->sleep = j->cmd.sleep;
		break;
	}
	it->base_env = s->base_env;
	it->run_as = s->run_as;
	it->uid = j->uid;
	it->gid = j->gid;
	it->lang = s->lang;
	if ((x = j->extra) != NULL) {
		it->env = strv_dup(x->env);
		it->cwd = x->cwd != NULL ? xstrdup(x->cwd) : NULL;
		if (x->stdin_data != NULL) {
			it->stdin_data = xmemdup(x->stdin_data, x->stdin_len);
			it->stdin_len = x->stdin_len;
		}
	}
	it->timeout = j->timeout;
	it->kill_grace = s->cfg->kill_grace;
	it->tail_bytes = (size_t)s->cfg->output_tail_bytes;
	it->cookie = j;
	return it;
}

/* Hand a job to a free worker of its queue. */
static void
sched_start(struct sched *s, struct jq *q, struct job *j)
{
	struct work_item *it = work_item_new(s, j);

	if ((it->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		log_warn("sched: job %llu: eventfd: %s (it cannot be canceled)",
		    (unsigned long long)j->id, strerror(errno));
	j->u.stop_fd = it->stop_fd;
	j->state = JOB_RUNNING;
	j->started_at = now_real();
	j->attempts++;
	q->busy++;
	/* busy < workers = the workq's bound, so this never blocks or fails. */
	if (workq_put_nowait(q->workq, it) == -1)
		log_fatalx(1, "sched: %s: workq full with a free worker",
		    q->cfg.name);
	histogram_observe(&q->wait, j->started_at - j->submitted_at);
	persist_start(s->persist, j);
	events_publish(s->events, j);
	log_debug("sched: job %llu started on queue %s",
	    (unsigned long long)j->id, q->cfg.name);
}

/*
 * Start jobs while the queue has free workers, then let blocked submits in
 * while it has room, in arrival order; repeat while either made progress.
 */
static void
sched_dispatch(struct sched *s, struct jq *q)
{
	struct waiter *w, *next;
	struct job *j;
	int admitted;

	do {
		while (!s->shutting_down && !q->paused &&
		    q->busy < q->cfg.workers &&
		    (j = pending_pop(q->pending)) != NULL)
			sched_start(s, q, j);
		/*
		 * Arrival order, except that a submit held back by its
		 * owner's quota does not hold back other users'.
		 */
		admitted = 0;
		for (w = TAILQ_FIRST(&q->blocked); w != NULL && !jq_full(q);
		    w = next) {
			next = TAILQ_NEXT(w, entry);
			if (!quota_room(s, w->uid))
				continue;
			TAILQ_REMOVE(&q->blocked, w, entry);
			if (sched_admit(s, q, w) == -1)
				waiter_finish(w, errno);
			admitted = 1;
		}
	} while (admitted && !s->shutting_down && !q->paused &&
	    q->busy < q->cfg.workers);
	/* A removed queue that has run its last job retires. */
	if (q->removed && !q->retired && jq_unfinished(q) == 0 &&
	    q->incoming == 0 && TAILQ_EMPTY(&q->blocked)) {
		q->retired = 1;
		jq_set_workers(q, 0);
		log_info("queue %s: removed, no job left: retired",
		    q->cfg.name);
	}
}

/* After a job ends anywhere: its owner's quota may let a submit in too. */
static void
sched_dispatch_all(struct sched *s)
{
	size_t i;

	for (i = 0; i < s->nqueues; i++)
		sched_dispatch(s, s->queues[i]);
}

static void
sched_check_drained(struct sched *s)
{
	size_t i;

	if (!s->shutting_down || s->drained_called)
		return;
	for (i = 0; i < s->nqueues; i++)
		if (s->queues[i]->busy > 0 || s->queues[i]->finishing > 0)
			return;
	s->drained_called = 1;
	s->drained(s->drained_arg);
}

static enum job_state
result_state(const struct job *j, const struct work_result *r)
{
	if (j->cancel_requested)
		return JOB_CANCELED;
	switch (r->outcome) {
	case RUN_EXITED:
		return r->exit_code == 0 ? JOB_SUCCEEDED : JOB_FAILED;
	case RUN_TIMED_OUT:
		return JOB_TIMED_OUT;
	case RUN_SIGNALED:
	case RUN_STOPPED:
	case RUN_SPAWN_FAILED:
		break;
	}
	return JOB_FAILED;
}

/* The final record is durable: now the world may see the final state. */
static void
finish_durable(struct sched *s, struct job *j, int err)
{
	struct jq *q = (struct jq *)j->queue;

	q->finishing--;
	if (err != 0)
		log_error("journal: job %llu: final state not written: %s",
		    (unsigned long long)j->id, strerror(err));
	job_finish(s, j, j->result->state);
	sched_dispatch_all(s);		/* its owner's quota has room */
	sched_check_joins(s);
	sched_check_drained(s);
}

/* Write j's final state (decided in j->result->state), then apply it. */
static void
sched_finish_durably(struct sched *s, struct job *j)
{
	struct jq *q = (struct jq *)j->queue;

	if (j->result->finished_at == 0)
		j->result->finished_at = now_real();
	q->finishing++;
	if (persist_finish(s->persist, j, finish_durable) == -1) {
		log_error("journal: job %llu: final state not written: %s",
		    (unsigned long long)j->id, strerror(errno));
		q->finishing--;
		job_finish(s, j, j->result->state);
	}
}

/* A worker handed an item back: the job is over. */
static void
sched_complete(struct sched *s, struct work_item *it)
{
	struct job *j = it->cookie;
	struct work_result *r = &it->result;
	struct jq *q = (struct jq *)j->queue;
	struct job_result *jr = job_result(j);

	q->busy--;
	if (j->u.stop_fd != -1)
		close(j->u.stop_fd);
	j->u.stop_fd = -1;
	if (r->started_at != 0)
		j->started_at = r->started_at;
	jr->finished_at = r->finished_at;
	jr->exit_code = r->exit_code;
	jr->signal = r->signal;
	/* Take the result's strings instead of copying them. */
	jr->out = r->out;
	jr->out_len = r->out_len;
	jr->out_truncated = r->out_truncated != 0;
	jr->err = r->err;
	jr->err_len = r->err_len;
	jr->err_truncated = r->err_truncated != 0;
	jr->error = r->error;
	r->out = r->err = r->error = NULL;
	jr->state = (uint8_t)result_state(j, r);
	runner_item_free(it);		/* r is gone from here on */
	if (j->shutdown_killed && !j->cancel_requested) {
		/*
		 * Not journaled: at the next start the job is one that was
		 * running at a crash, and its queue's on_crash applies.
		 */
		free(jr->error);
		jr->error = xstrdup("killed at shutdown");
		job_finish(s, j, JOB_FAILED);
		return;
	}
	sched_finish_durably(s, j);
}

static void
completion_ready(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;
	struct work_item *it, *next;

	(void)fd;
	(void)what;
	for (it = completion_take(s->completion); it != NULL; it = next) {
		next = it->next;
		sched_complete(s, it);
	}
	sched_dispatch_all(s);
	sched_check_joins(s);
	sched_check_drained(s);
}

/* Make a queue and start its workers. */
static struct jq *
jq_new(struct sched *s, const struct queue_config *qc)
{
	struct jq *q = xcalloc(1, sizeof *q);

	q->cfg = *qc;
	q->sched = s;
	q->pending = pending_new(q->cfg.policy);
	q->workq = workq_new((size_t)q->cfg.workers);
	TAILQ_INIT(&q->blocked);
	q->pool = pool_new(q->cfg.name, q->workq, s->completion,
	    q->cfg.workers);
	s->queues = xreallocarray(s->queues, s->nqueues + 1,
	    sizeof *s->queues);
	s->queues[s->nqueues++] = q;
	log_info("queue %s: %d workers, capacity %ld, policy %s",
	    q->cfg.name, q->cfg.workers, q->cfg.capacity,
	    config_policy_name(q->cfg.policy));
	return q;
}

/*
 * Give a queue n worker threads (0 once retired).  The workq must hold
 * the items of up to n busy workers plus every retire marker not yet
 * taken, so its bound is raised before the markers go in; the loop still
 * puts jobs only while busy < cfg.workers, so it never blocks.
 */
static void
jq_set_workers(struct jq *q, int n)
{
	int live = pool_size(q->pool);
	int markers = live > n ? live - n : 0;
	int bound = n + pool_retiring(q->pool) + markers;

	workq_set_maxsize(q->workq, (size_t)(bound > 0 ? bound : 1));
	pool_resize(q->pool, n);
}

struct sched *
sched_new(struct event_base *base, const struct config *cfg,
    struct events *events, void (*drained)(void *), void *arg)
{
	struct sched *s = xcalloc(1, sizeof *s);
	size_t i;

	s->base = base;
	s->events = events;
	s->cfg = cfg;
	s->started_real = now_real();
	s->started_mono = now_mono();
	s->drained = drained;
	s->drained_arg = arg;
	s->tab = jobtab_new();
	TAILQ_INIT(&s->all);
	TAILQ_INIT(&s->done);
	TAILQ_INIT(&s->joins);
	s->base_env = env_base();
	s->lang = getenv("LANG") != NULL ? xstrdup(getenv("LANG")) : NULL;
	s->run_as = geteuid() == 0;
	s->completion = completion_new();
	s->completion_ev = event_new(base, completion_fd(s->completion),
	    EV_READ | EV_PERSIST, completion_ready, s);
	event_add(s->completion_ev, NULL);
	s->trim_ev = event_new(base, -1, 0, trim_finished, s);

	for (i = 0; i < cfg->nqueues; i++)
		jq_new(s, &cfg->queues[i]);
	return s;
}

void
sched_free(struct sched *s)
{
	struct work_item *it, *next;
	struct job *j;
	size_t i;

	if (s == NULL)
		return;
	/*
	 * Stop order: refuse new work in every workq, let each worker finish
	 * the item it holds and leave, then free what the loop owns.
	 */
	for (i = 0; i < s->nqueues; i++)
		workq_shutdown(s->queues[i]->workq);
	for (i = 0; i < s->nqueues; i++)
		pool_join(s->queues[i]->pool);
	for (it = completion_take(s->completion); it != NULL; it = next) {
		next = it->next;
		j = it->cookie;
		if (j->u.stop_fd != -1)
			close(j->u.stop_fd);
		j->u.stop_fd = -1;
		runner_item_free(it);
	}
	for (i = 0; i < s->nqueues; i++) {
		workq_free(s->queues[i]->workq);
		pending_free(s->queues[i]->pending);
		free(s->queues[i]->users.v);
		free(s->queues[i]);
	}
	free(s->users.v);
	free(s->queues);
	while ((j = TAILQ_FIRST(&s->all)) != NULL) {
		TAILQ_REMOVE(&s->all, j, all_entry);
		job_free(j);
	}
	jobtab_free(s->tab);
	event_free(s->completion_ev);
	event_free(s->trim_ev);
	if (s->shutdown_ev != NULL)
		event_free(s->shutdown_ev);
	completion_free(s->completion);
	strv_free(s->base_env);
	free(s->lang);
	free(s);
}

static int
user_blocked(const struct jq *q, uid_t uid)
{
	const struct waiter *w;

	TAILQ_FOREACH(w, &q->blocked, entry)
		if (w->uid == uid)
			return 1;
	return 0;
}

enum submit_result
sched_submit(struct sched *s, struct job_spec *spec, uid_t uid, gid_t gid,
    struct waiter *w, int nowait, double block_timeout)
{
	struct jq *q;
	int quota;

	if (s->shutting_down)
		return SUBMIT_SHUTTING_DOWN;
	if ((q = sched_queue(s, spec->queue)) == NULL)
		return SUBMIT_UNKNOWN_QUEUE;
	/*
	 * Blocked submits that could go in have gone in (dispatch admits them
	 * as soon as there is room), so with room in the queue those left
	 * wait for their owner's quota: only that owner's newcomer queues
	 * behind them, to keep its order.
	 */
	quota = !quota_room(s, uid) || user_blocked(q, uid);
	if (nowait && (jq_full(q) || quota))
		return jq_full(q) ? SUBMIT_FULL : SUBMIT_QUOTA;
	w->spec = *spec;
	memset(spec, 0, sizeof *spec);
	w->uid = uid;
	w->gid = gid;
	w->queue = q;
	w->job = NULL;
	if (jq_full(q) || quota) {
		w->kind = WAITER_SUBMIT;
		TAILQ_INSERT_TAIL(&q->blocked, w, entry);
		waiter_park(s, w, block_timeout);
		return SUBMIT_BLOCKED;
	}
	if (sched_admit(s, q, w) == -1) {
		protocol_job_spec_clear(&w->spec);
		return SUBMIT_UNAVAILABLE;
	}
	return SUBMIT_ADMITTED;
}

struct job *
sched_find(struct sched *s, uint64_t id)
{
	return jobtab_find(s->tab, id);
}

int
sched_wait(struct sched *s, struct job *j, struct waiter *w, double timeout)
{
	if (protocol_state_final(j->state))
		return 0;
	w->kind = WAITER_JOB;
	w->job = j;
	w->queue = NULL;
	LIST_INSERT_HEAD(&j->waiters, w, job_entry);
	waiter_park(s, w, timeout);
	return 1;
}

int
sched_cancel(struct sched *s, struct job *j, struct waiter *w)
{
	static const uint64_t stop = RUNNER_STOP_GRACEFUL;
	struct jq *q = (struct jq *)j->queue;

	if (protocol_state_final(j->state))
		return -1;
	if (j->state == JOB_QUEUED && !j->cancel_requested) {
		/* Out of the heap now; canceled once its record is durable. */
		pending_remove(q->pending, j->u.slot);
		j->u.slot = (size_t)-1;
		job_result(j)->state = JOB_CANCELED;
		j->cancel_requested = 1;
		sched_finish_durably(s, j);
		sched_dispatch_all(s);
		sched_check_joins(s);
		if (protocol_state_final(j->state))
			return 0;	/* the journal could not hold it back */
	} else if (j->state == JOB_RUNNING && j->result == NULL &&
	    !j->cancel_requested) {
		/* Its worker sees the eventfd, kills the group, reports. */
		if (j->u.stop_fd != -1 &&
		    write(j->u.stop_fd, &stop, sizeof stop) == -1)
			log_warn("sched: job %llu: cancel: %s",
			    (unsigned long long)j->id, strerror(errno));
		j->cancel_requested = 1;
	}
	w->kind = WAITER_JOB;
	w->job = j;
	w->queue = NULL;
	LIST_INSERT_HEAD(&j->waiters, w, job_entry);
	waiter_park(s, w, -1);
	return 1;
}

/* Unfinished jobs of one queue or all (scope NULL), of one owner or all. */
static size_t
sched_unfinished(struct sched *s, struct jq *scope, long uid)
{
	size_t i, n = 0;

	if (scope != NULL)
		return uid == -1 ? jq_unfinished(scope) :
		    users_count(&scope->users, (uid_t)uid);
	if (uid != -1)
		return users_count(&s->users, (uid_t)uid);
	for (i = 0; i < s->nqueues; i++)
		n += jq_unfinished(s->queues[i]);
	return n;
}

int
sched_join(struct sched *s, const char *queue, long uid, struct waiter *w,
    double timeout)
{
	struct jq *q = NULL;

	if (queue != NULL && (q = sched_queue(s, queue)) == NULL)
		return -1;
	if (sched_unfinished(s, q, uid) == 0)
		return 0;
	w->kind = WAITER_JOIN;
	w->scope_uid = uid;
	w->queue = q;
	w->job = NULL;
	TAILQ_INSERT_TAIL(&s->joins, w, entry);
	waiter_park(s, w, timeout);
	return 1;
}

static void
sched_check_joins(struct sched *s)
{
	struct waiter *w, *next;

	for (w = TAILQ_FIRST(&s->joins); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (sched_unfinished(s, w->queue, w->scope_uid) == 0) {
			TAILQ_REMOVE(&s->joins, w, entry);
			waiter_finish(w, 0);
		}
	}
}

int
sched_pause(struct sched *s, const char *queue, int paused)
{
	struct jq *q;

	if ((q = sched_queue(s, queue)) == NULL)
		return -1;
	if (q->paused != paused)
		persist_pause(s->persist, q->cfg.name, paused);
	q->paused = paused;
	if (!paused)
		sched_dispatch(s, q);
	log_info("queue %s: %s", q->cfg.name, paused ? "paused" : "resumed");
	return 0;
}

int
sched_list(struct sched *s, const char *queue, int state, long uid,
    long limit, int details, json_t **out)
{
	struct jq *q = NULL;
	struct job *j;
	json_t *a;

	*out = NULL;
	if (queue != NULL && (q = sched_queue(s, queue)) == NULL)
		return -1;
	a = json_array();
	TAILQ_FOREACH_REVERSE(j, &s->all, job_list, all_entry) {
		if (json_array_size(a) >= (size_t)limit)
			break;
		if ((q != NULL && j->queue != q) ||
		    (state != -1 && (int)j->state != state) ||
		    (uid != -1 && j->uid != (uid_t)uid))
			continue;
		json_array_append_new(a, job_to_json(j, details));
	}
	*out = a;
	return 0;
}

void
sched_set_persist(struct sched *s, struct persist *p)
{
	s->persist = p;
}

struct persist *
sched_persist(const struct sched *s)
{
	return s->persist;
}

uint64_t
sched_last_id(const struct sched *s)
{
	return s->last_id;
}

void
sched_foreach_job(struct sched *s, void (*fn)(void *, struct job *),
    void *arg)
{
	struct job *j;

	TAILQ_FOREACH(j, &s->all, all_entry)
		fn(arg, j);
}

/*
 * Replay one journal record.  Records about a job that are not newer
 * than what it already reflects (a snapshot overlapping the segments
 * after it) are skipped.  Replayed finishes are not counted: status
 * counters count since start.
 */
void
sched_restore(struct sched *s, uint64_t seq, struct jobrec *rec)
{
	struct job *j = NULL, *r = rec->job;
	struct jq *q = NULL;

	if (rec->queue_name != NULL &&
	    (q = sched_queue(s, rec->queue_name)) == NULL) {
		log_warn("journal: record %llu: queue %s is not in the config; "
		    "its record is left out", (unsigned long long)seq,
		    rec->queue_name);
		return;
	}
	if (r != NULL)
		j = jobtab_find(s->tab, r->id);
	switch (rec->type) {
	case JOBREC_SUBMIT:
	case JOBREC_JOB:
		if (j != NULL)
			return;		/* already known from a snapshot */
		rec->job = NULL;	/* the record becomes the job */
		r->queue = q;
		r->jseq = seq;
		if (r->result != NULL)
			r->result->state = r->state;
		job_insert(s, r);
		if (protocol_state_final(r->state)) {
			TAILQ_INSERT_TAIL(&s->done, r, u.done_entry);
			s->ndone++;
		} else {
			users_add(&q->users, r->uid, 1);
			users_add(&s->users, r->uid, 1);
		}
		break;
	case JOBREC_START:
		if (j == NULL || seq <= j->jseq || j->state != JOB_QUEUED)
			return;
		pending_remove(((struct jq *)j->queue)->pending, j->u.slot);
		j->u.slot = (size_t)-1;
		j->state = JOB_RUNNING;
		j->attempts = r->attempts;
		j->started_at = r->started_at;
		j->jseq = seq;
		break;
	case JOBREC_FINISH:
		if (j == NULL || seq <= j->jseq ||
		    protocol_state_final(j->state))
			return;
		q = (struct jq *)j->queue;
		if (j->state == JOB_QUEUED)
			pending_remove(q->pending, j->u.slot);
		job_free_result(j);
		j->result = r->result;
		r->result = NULL;
		j->state = r->state;
		j->result->state = r->state;
		j->attempts = r->attempts;
		j->started_at = r->started_at;
		j->jseq = seq;
		users_add(&q->users, j->uid, -1);
		users_add(&s->users, j->uid, -1);
		TAILQ_INSERT_TAIL(&s->done, j, u.done_entry);
		s->ndone++;
		break;
	case JOBREC_PAUSE:
		q->paused = rec->paused;
		break;
	case JOBREC_IDS:
		if (rec->last_id > s->last_id)
			s->last_id = rec->last_id;
		break;
	}
}

size_t
sched_restore_unfinished(const struct sched *s)
{
	const struct job *j;
	size_t n = 0;

	TAILQ_FOREACH(j, &s->all, all_entry)
		n += !protocol_state_final(j->state);
	return n;
}

/*
 * After replay: a job still running was interrupted by a crash (or killed
 * at a shutdown).  Its queue's on_crash says whether it runs again —
 * attempts then counts the interrupted run — or ends failed.
 */
void
sched_restore_done(struct sched *s, uint64_t journal_seq)
{
	struct job *j;
	struct jq *q;

	/*
	 * Ids are never reused, not even for jobs whose records --recover
	 * dropped: every id is at most its submit record's seq, and the
	 * journal never reuses seqs, so continuing above them is safe.
	 */
	if (journal_seq > s->last_id)
		s->last_id = journal_seq;

	TAILQ_FOREACH(j, &s->all, all_entry) {
		if (j->state != JOB_RUNNING)
			continue;
		q = (struct jq *)j->queue;
		if (q->cfg.on_crash == ON_CRASH_REQUEUE) {
			log_info("journal: job %llu was running when jobd "
			    "stopped; queued again", (unsigned long long)j->id);
			j->state = JOB_QUEUED;
			j->started_at = 0;
			pending_push(q->pending, j, j->priority, j->id,
			    &j->u.slot);
		} else {
			log_info("journal: job %llu was running when jobd "
			    "stopped; failed (on_crash = fail)",
			    (unsigned long long)j->id);
			job_result(j)->state = JOB_FAILED;
			j->result->error = xstrdup("interrupted: jobd stopped "
			    "while the job was running");
			sched_finish_durably(s, j);
		}
	}
	if (s->ndone > (size_t)s->cfg->keep_finished)
		event_active(s->trim_ev, 0, 0);
	sched_dispatch_all(s);
}

int
sched_has_queue(struct sched *s, const char *name)
{
	return sched_queue(s, name) != NULL;
}

/* The i-th queue that status lists (retired ones are left out). */
static const struct jq *
sched_listed(const struct sched *s, size_t i)
{
	size_t k;

	for (k = 0; k < s->nqueues; k++)
		if (!s->queues[k]->retired && i-- == 0)
			return s->queues[k];
	return NULL;
}

size_t
sched_nqueues(const struct sched *s)
{
	size_t i, n = 0;

	for (i = 0; i < s->nqueues; i++)
		n += !s->queues[i]->retired;
	return n;
}

void
sched_queue_info(const struct sched *s, size_t i, struct queue_info *qi)
{
	const struct jq *q = sched_listed(s, i);

	qi->name = q->cfg.name;
	qi->policy = q->cfg.policy;
	qi->workers = q->cfg.workers;
	qi->busy = q->busy;
	qi->capacity = q->cfg.capacity;
	qi->queued = pending_len(q->pending);
	qi->running = (size_t)q->busy;
	qi->paused = q->paused;
	qi->submitted = q->submitted;
	memcpy(qi->finished, q->finished, sizeof qi->finished);
	qi->duration = &q->duration;
	qi->wait = &q->wait;
}

double
sched_started_real(const struct sched *s)
{
	return s->started_real;
}

double
sched_started_mono(const struct sched *s)
{
	return s->started_mono;
}

/* Find a queue by name, removed and retired ones too. */
static struct jq *
sched_queue_any(struct sched *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nqueues; i++)
		if (strcmp(s->queues[i]->cfg.name, name) == 0)
			return s->queues[i];
	return NULL;
}

/*
 * Reload one queue's figures.  A new default timeout reaches the jobs not
 * yet started that took the old default (a job record keeps only the
 * timeout in force, so one that asked for that same value explicitly
 * changes too); running jobs keep theirs.
 */
static void
jq_apply(struct sched *s, struct jq *q, const struct queue_config *qc)
{
	struct job *j;

	if (q->removed) {
		q->removed = q->retired = 0;
		log_info("queue %s: back in the config", q->cfg.name);
	}
	if (qc->policy != q->cfg.policy)
		pending_set_policy(q->pending, qc->policy);
	if (qc->timeout != q->cfg.timeout)
		TAILQ_FOREACH(j, &s->all, all_entry)
			if (j->queue == q && j->state == JOB_QUEUED &&
			    j->timeout == q->cfg.timeout)
				j->timeout = qc->timeout;
	jq_set_workers(q, qc->workers);
	q->cfg = *qc;
	log_info("queue %s: %d workers, capacity %ld, policy %s",
	    q->cfg.name, q->cfg.workers, q->cfg.capacity,
	    config_policy_name(q->cfg.policy));
}

void
sched_reconfigure(struct sched *s, const struct config *cfg)
{
	struct jq *q;
	size_t i;

	s->cfg = cfg;
	for (i = 0; i < s->nqueues; i++) {
		q = s->queues[i];
		if (!q->removed && config_queue(cfg, q->cfg.name) == NULL) {
			/* Its jobs still run; dispatch retires it when empty. */
			q->removed = 1;
			log_info("queue %s: removed from the config; no new "
			    "submits", q->cfg.name);
		}
	}
	for (i = 0; i < cfg->nqueues; i++) {
		if ((q = sched_queue_any(s, cfg->queues[i].name)) == NULL)
			jq_new(s, &cfg->queues[i]);
		else
			jq_apply(s, q, &cfg->queues[i]);
	}
	if (s->ndone > (size_t)cfg->keep_finished)
		event_active(s->trim_ev, 0, 0);
	/* More workers, more room, another order: start what now may. */
	sched_dispatch_all(s);
	sched_check_joins(s);
}

static void
sched_stop_running(struct sched *s, uint64_t how)
{
	struct job *j;

	TAILQ_FOREACH(j, &s->all, all_entry) {
		if (j->state != JOB_RUNNING || j->u.stop_fd == -1)
			continue;
		j->shutdown_killed = 1;
		if (write(j->u.stop_fd, &how, sizeof how) == -1)
			log_warn("sched: job %llu: stop: %s",
			    (unsigned long long)j->id, strerror(errno));
	}
}

static void
shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;

	(void)fd;
	(void)what;
	log_info("shutdown: shutdown_timeout reached, stopping running jobs");
	sched_stop_running(s, RUNNER_STOP_GRACEFUL);
}

void
sched_shutdown(struct sched *s, int now)
{
	struct timeval tv;
	struct waiter *w;
	double t = s->cfg->shutdown_timeout;
	size_t i;

	if (!s->shutting_down) {
		s->shutting_down = 1;
		/* Blocked submits were never acknowledged: refuse them now. */
		for (i = 0; i < s->nqueues; i++) {
			while ((w = TAILQ_FIRST(&s->queues[i]->blocked)) !=
			    NULL) {
				waiter_unlink(s, w);
				waiter_finish(w, ESHUTDOWN);
			}
		}
		tv.tv_sec = (time_t)t;
		tv.tv_usec = (suseconds_t)((t - (double)tv.tv_sec) * 1e6);
		s->shutdown_ev = evtimer_new(s->base, shutdown_timeout, s);
		evtimer_add(s->shutdown_ev, &tv);
	}
	if (now)
		sched_stop_running(s, RUNNER_STOP_NOW);
	sched_check_drained(s);
}

int
sched_shutting_down(const struct sched *s)
{
	return s->shutting_down;
}
