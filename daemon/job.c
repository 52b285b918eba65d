/*
 * job: job records, their JSON form, and the id table.
 *
 * Thread rule: the loop thread owns every struct job; nothing here locks.
 */
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "util.h"

struct job *
job_new(uint64_t id, struct job_spec *spec, uid_t uid, gid_t gid)
{
	struct job *j = xcalloc(1, sizeof *j);

	j->id = id;
	j->state = JOB_QUEUED;
	j->kind = (uint8_t)spec->kind;
	switch (spec->kind) {
	case JOB_ARGV:
		j->cmd.argv = spec->argv;
		spec->argv = NULL;
		break;
	case JOB_SHELL:
		j->cmd.shell = spec->shell;
		spec->shell = NULL;
		break;
	case JOB_SLEEP:
		j->cmd.sleep = spec->sleep;
		break;
	}
	j->priority = (int32_t)spec->priority;
	if (spec->env != NULL || spec->cwd != NULL ||
	    spec->stdin_data != NULL || spec->name != NULL) {
		j->extra = xcalloc(1, sizeof *j->extra);
		j->extra->env = spec->env;
		j->extra->cwd = spec->cwd;
		j->extra->stdin_data = spec->stdin_data;
		j->extra->stdin_len = spec->stdin_len;
		j->extra->name = spec->name;
		spec->env = NULL;
		spec->cwd = spec->stdin_data = spec->name = NULL;
	}
	protocol_job_spec_clear(spec);	/* what is left: the queue name */
	j->uid = uid;
	j->gid = gid;
	j->u.slot = (size_t)-1;
	LIST_INIT(&j->waiters);
	return j;
}

const char *
job_queue_name(const struct job *j)
{
	return j->queue;	/* the queue struct begins with its name */
}

struct job_result *
job_result(struct job *j)
{
	if (j->result == NULL) {
		j->result = xcalloc(1, sizeof *j->result);
		j->result->exit_code = -1;
	}
	return j->result;
}

void
job_free_result(struct job *j)
{
	if (j->result == NULL)
		return;
	free(j->result->out);
	free(j->result->err);
	free(j->result->error);
	free(j->result);
	j->result = NULL;
}

void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	if (j->kind == JOB_ARGV)
		strv_free(j->cmd.argv);
	else if (j->kind == JOB_SHELL)
		free(j->cmd.shell);
	if (j->extra != NULL) {
		strv_free(j->extra->env);
		free(j->extra->cwd);
		free(j->extra->stdin_data);
		free(j->extra->name);
		free(j->extra);
	}
	job_free_result(j);
	free(j);
}

static json_t *
time_or_null(double t)
{
	char buf[UTIL_TIME_LEN];

	if (t == 0)
		return json_null();
	return json_string(util_format_time(t, buf, sizeof buf));
}

static json_t *
strv_to_json(char *const *v)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

json_t *
job_to_json(const struct job *j, int details)
{
	static const struct job_result none = { .exit_code = -1 };
	const struct job_result *r = j->result != NULL ? j->result : &none;
	const char *name = j->extra != NULL ? j->extra->name : NULL;
	json_t *o = json_object();

	/* json_object_set_new steals each new value. */
	json_object_set_new(o, "id", json_integer((json_int_t)j->id));
	json_object_set_new(o, "queue", json_string(job_queue_name(j)));
	json_object_set_new(o, "name", name != NULL ? json_string(name) :
	    json_null());
	json_object_set_new(o, "state",
	    json_string(protocol_state_name(j->state)));
	switch (j->kind) {
	case JOB_ARGV:
		if (details)
			json_object_set_new(o, "argv",
			    strv_to_json(j->cmd.argv));
		break;
	case JOB_SHELL:
		if (details)
			json_object_set_new(o, "shell",
			    json_string(j->cmd.shell));
		break;
	case JOB_SLEEP:
		json_object_set_new(o, "sleep", json_real(j->cmd.sleep));
		break;
	}
	json_object_set_new(o, "priority", json_integer(j->priority));
	json_object_set_new(o, "attempts", json_integer(j->attempts));
	json_object_set_new(o, "submitted_at", time_or_null(j->submitted_at));
	json_object_set_new(o, "started_at", time_or_null(j->started_at));
	json_object_set_new(o, "finished_at", time_or_null(r->finished_at));
	json_object_set_new(o, "exit_code", r->exit_code >= 0 ?
	    json_integer(r->exit_code) : json_null());
	json_object_set_new(o, "signal", r->signal > 0 ?
	    json_integer(r->signal) : json_null());
	json_object_set_new(o, "timeout", j->timeout > 0 ?
	    json_real(j->timeout) : json_null());
	if (details) {
		json_object_set_new(o, "stdout", r->out != NULL ?
		    json_stringn(r->out, r->out_len) : json_string(""));
		json_object_set_new(o, "stderr", r->err != NULL ?
		    json_stringn(r->err, r->err_len) : json_string(""));
	}
	json_object_set_new(o, "stdout_truncated",
	    json_boolean(r->out_truncated));
	json_object_set_new(o, "stderr_truncated",
	    json_boolean(r->err_truncated));
	json_object_set_new(o, "owner", json_pack("{s:I,s:I}",
	    "uid", (json_int_t)j->uid, "gid", (json_int_t)j->gid));
	json_object_set_new(o, "error", r->error != NULL ?
	    json_string(r->error) : json_null());
	return o;
}

/*
 * The id table: chained hashing on the id, grown by doubling so that the
 * average chain stays below one.  Ids are dense and increasing, so the
 * identity hash modulo a power of two spreads them evenly.
 */
struct jobtab {
	struct job	**buckets;
	size_t		  nbuckets;	/* a power of two */
	size_t		  count;
};

struct jobtab *
jobtab_new(void)
{
	struct jobtab *t = xcalloc(1, sizeof *t);

	t->nbuckets = 1024;
	t->buckets = xcalloc(t->nbuckets, sizeof *t->buckets);
	return t;
}

void
jobtab_free(struct jobtab *t)
{
	if (t == NULL)
		return;
	free(t->buckets);
	free(t);
}

static void
jobtab_grow(struct jobtab *t)
{
	size_t n = t->nbuckets * 2, i;
	struct job **b = xcalloc(n, sizeof *b), *j, *next;

	for (i = 0; i < t->nbuckets; i++) {
		for (j = t->buckets[i]; j != NULL; j = next) {
			next = j->hash_next;
			j->hash_next = b[j->id & (n - 1)];
			b[j->id & (n - 1)] = j;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

void
jobtab_add(struct jobtab *t, struct job *j)
{
	struct job **head;

	if (t->count >= t->nbuckets)
		jobtab_grow(t);
	head = &t->buckets[j->id & (t->nbuckets - 1)];
	j->hash_next = *head;
	*head = j;
	t->count++;
}

void
jobtab_remove(struct jobtab *t, struct job *j)
{
	struct job **p = &t->buckets[j->id & (t->nbuckets - 1)];

	for (; *p != NULL; p = &(*p)->hash_next) {
		if (*p == j) {
			*p = j->hash_next;
			j->hash_next = NULL;
			t->count--;
			return;
		}
	}
}

struct job *
jobtab_find(const struct jobtab *t, uint64_t id)
{
	struct job *j;

	for (j = t->buckets[id & (t->nbuckets - 1)]; j != NULL;
	    j = j->hash_next)
		if (j->id == id)
			return j;
	return NULL;
}

size_t
jobtab_count(const struct jobtab *t)
{
	return t->count;
}
