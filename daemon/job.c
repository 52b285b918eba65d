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
	j->spec = *spec;
	memset(spec, 0, sizeof *spec);
	free(j->spec.queue);		/* the queue's own name is used instead */
	j->spec.queue = NULL;
	j->uid = uid;
	j->gid = gid;
	j->exit_code = -1;
	j->slot = (size_t)-1;
	j->stop_fd = -1;
	TAILQ_INIT(&j->waiters);
	return j;
}

void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	protocol_job_spec_clear(&j->spec);
	free(j->out);
	free(j->err);
	free(j->error);
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
	json_t *o = json_object();
	int final = protocol_state_final(j->state);

	/* json_object_set_new steals each new value. */
	json_object_set_new(o, "id", json_integer((json_int_t)j->id));
	json_object_set_new(o, "queue", json_string(j->queue_name));
	json_object_set_new(o, "name", j->spec.name != NULL ?
	    json_string(j->spec.name) : json_null());
	json_object_set_new(o, "state",
	    json_string(protocol_state_name(j->state)));
	switch (j->spec.kind) {
	case JOB_ARGV:
		if (details)
			json_object_set_new(o, "argv",
			    strv_to_json(j->spec.argv));
		break;
	case JOB_SHELL:
		if (details)
			json_object_set_new(o, "shell",
			    json_string(j->spec.shell));
		break;
	case JOB_SLEEP:
		json_object_set_new(o, "sleep", json_real(j->spec.sleep));
		break;
	}
	json_object_set_new(o, "priority",
	    json_integer((json_int_t)j->spec.priority));
	json_object_set_new(o, "attempts", json_integer(j->attempts));
	json_object_set_new(o, "submitted_at", time_or_null(j->submitted_at));
	json_object_set_new(o, "started_at", time_or_null(j->started_at));
	json_object_set_new(o, "finished_at", time_or_null(j->finished_at));
	json_object_set_new(o, "exit_code", j->exit_code >= 0 ?
	    json_integer(j->exit_code) : json_null());
	json_object_set_new(o, "signal", j->signal > 0 ?
	    json_integer(j->signal) : json_null());
	json_object_set_new(o, "timeout", j->timeout > 0 ?
	    json_real(j->timeout) : json_null());
	if (details) {
		json_object_set_new(o, "stdout", final && j->out != NULL ?
		    json_stringn(j->out, j->out_len) : json_string(""));
		json_object_set_new(o, "stderr", final && j->err != NULL ?
		    json_stringn(j->err, j->err_len) : json_string(""));
	}
	json_object_set_new(o, "stdout_truncated",
	    json_boolean(j->out_truncated));
	json_object_set_new(o, "stderr_truncated",
	    json_boolean(j->err_truncated));
	json_object_set_new(o, "owner", json_pack("{s:I,s:I}",
	    "uid", (json_int_t)j->uid, "gid", (json_int_t)j->gid));
	json_object_set_new(o, "error", j->error != NULL ?
	    json_string(j->error) : json_null());
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
