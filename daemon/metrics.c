/*
 * metrics: the status body (SPEC §3, also the socket's `stats`) and the
 * Prometheus exposition, both from the same per-queue figures so that they
 * always agree.  Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "persist.h"
#include "protocol.h"
#include "sched.h"
#include "util.h"
#include "version.h"

/* From 1 ms to 1 h: command jobs take milliseconds to hours. */
const double histogram_bounds[HISTOGRAM_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 60, 600, 3600,
};

void
histogram_observe(struct histogram *h, double seconds)
{
	size_t i;

	if (seconds < 0)
		seconds = 0;
	for (i = 0; i < HISTOGRAM_BUCKETS; i++)
		if (seconds <= histogram_bounds[i])
			break;
	h->bucket[i]++;		/* i == HISTOGRAM_BUCKETS: +Inf only */
	h->count++;
	h->sum += seconds;
}

static void
counts_set(json_t *o, size_t queued, size_t running, uint64_t submitted,
    const uint64_t *finished)
{
	json_object_set_new(o, "queued", json_integer((json_int_t)queued));
	json_object_set_new(o, "running", json_integer((json_int_t)running));
	json_object_set_new(o, "unfinished",
	    json_integer((json_int_t)(queued + running)));
	json_object_set_new(o, "submitted", json_integer((json_int_t)submitted));
	json_object_set_new(o, "succeeded",
	    json_integer((json_int_t)finished[JOB_SUCCEEDED]));
	json_object_set_new(o, "failed",
	    json_integer((json_int_t)finished[JOB_FAILED]));
	json_object_set_new(o, "timed_out",
	    json_integer((json_int_t)finished[JOB_TIMED_OUT]));
	json_object_set_new(o, "canceled",
	    json_integer((json_int_t)finished[JOB_CANCELED]));
}

/* Journal figures (an addition to SPEC §3's body; issue 5). */
static json_t *
journal_json(struct sched *s)
{
	struct journal_stats js;

	memset(&js, 0, sizeof js);
	if (sched_persist(s) != NULL)
		persist_stats(sched_persist(s), &js);
	return json_pack("{s:I,s:I,s:I,s:I,s:f,s:f,s:I}",
	    "bytes", (json_int_t)js.bytes,
	    "records", (json_int_t)js.records,
	    "syncs", (json_int_t)js.syncs,
	    "compactions", (json_int_t)js.compactions,
	    "last_fsync_s", js.last_sync_s,
	    "recovery_s", js.replay_s,
	    "torn_bytes", (json_int_t)js.torn_bytes);
}

json_t *
metrics_status(struct sched *s, int connections)
{
	json_t *body = json_object(), *queues = json_object(), *qo, *totals;
	uint64_t finished[JOB__STATES] = { 0 }, submitted = 0;
	size_t queued = 0, running = 0, i, k;
	struct queue_info qi;
	char buf[UTIL_TIME_LEN];

	for (i = 0; i < sched_nqueues(s); i++) {
		sched_queue_info(s, i, &qi);
		qo = json_object();
		json_object_set_new(qo, "policy",
		    json_string(config_policy_name(qi.policy)));
		json_object_set_new(qo, "workers", json_integer(qi.workers));
		json_object_set_new(qo, "busy", json_integer(qi.busy));
		json_object_set_new(qo, "capacity", json_integer(qi.capacity));
		counts_set(qo, qi.queued, qi.running, qi.submitted, qi.finished);
		json_object_set_new(qo, "paused", json_boolean(qi.paused));
		json_object_set_new(queues, qi.name, qo);
		queued += qi.queued;
		running += qi.running;
		submitted += qi.submitted;
		for (k = 0; k < JOB__STATES; k++)
			finished[k] += qi.finished[k];
	}
	totals = json_object();
	counts_set(totals, queued, running, submitted, finished);
	json_object_set_new(body, "version", json_string(JOBD_VERSION));
	json_object_set_new(body, "pid", json_integer(getpid()));
	json_object_set_new(body, "started_at", json_string(
	    util_format_time(sched_started_real(s), buf, sizeof buf)));
	json_object_set_new(body, "uptime_s",
	    json_real(now_mono() - sched_started_mono(s)));
	json_object_set_new(body, "connections", json_integer(connections));
	json_object_set_new(body, "journal", journal_json(s));
	json_object_set_new(body, "queues", queues);
	json_object_set_new(body, "totals", totals);
	return body;
}

static void
family(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

static void
histogram_lines(struct evbuffer *b, const char *name, const char *queue,
    const struct histogram *h)
{
	uint64_t cumulative = 0;
	size_t i;

	for (i = 0; i < HISTOGRAM_BUCKETS; i++) {
		cumulative += h->bucket[i];
		evbuffer_add_printf(b, "%s_bucket{queue=\"%s\",le=\"%g\"} %llu\n",
		    name, queue, histogram_bounds[i],
		    (unsigned long long)cumulative);
	}
	evbuffer_add_printf(b, "%s_bucket{queue=\"%s\",le=\"+Inf\"} %llu\n",
	    name, queue, (unsigned long long)h->count);
	evbuffer_add_printf(b, "%s_sum{queue=\"%s\"} %.9g\n", name, queue,
	    h->sum);
	evbuffer_add_printf(b, "%s_count{queue=\"%s\"} %llu\n", name, queue,
	    (unsigned long long)h->count);
}

/*
 * Queue names are [A-Za-z0-9_.-] (config.c checks), so they need no
 * escaping inside a label value.
 */
void
metrics_prometheus(struct sched *s, int connections, struct evbuffer *b)
{
	size_t n = sched_nqueues(s), i;
	struct queue_info *qi = xcalloc(n, sizeof *qi);
	struct journal_stats js;
	int st;

	for (i = 0; i < n; i++)
		sched_queue_info(s, i, &qi[i]);

	family(b, "jobd_jobs_submitted_total", "counter",
	    "Jobs accepted since jobd started.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(b, "jobd_jobs_submitted_total{queue=\"%s\"} "
		    "%llu\n", qi[i].name, (unsigned long long)qi[i].submitted);
	family(b, "jobd_jobs_finished_total", "counter",
	    "Jobs that reached a final state since jobd started.");
	for (i = 0; i < n; i++)
		for (st = JOB_SUCCEEDED; st < JOB__STATES; st++)
			evbuffer_add_printf(b, "jobd_jobs_finished_total{queue="
			    "\"%s\",state=\"%s\"} %llu\n", qi[i].name,
			    protocol_state_name(st),
			    (unsigned long long)qi[i].finished[st]);
	family(b, "jobd_jobs_queued", "gauge", "Jobs accepted, not started.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(b, "jobd_jobs_queued{queue=\"%s\"} %zu\n",
		    qi[i].name, qi[i].queued);
	family(b, "jobd_jobs_running", "gauge", "Jobs in state running.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(b, "jobd_jobs_running{queue=\"%s\"} %zu\n",
		    qi[i].name, qi[i].running);
	family(b, "jobd_workers", "gauge", "Worker threads of the queue.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(b, "jobd_workers{queue=\"%s\"} %d\n",
		    qi[i].name, qi[i].workers);
	family(b, "jobd_workers_busy", "gauge", "Workers running a job.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(b, "jobd_workers_busy{queue=\"%s\"} %d\n",
		    qi[i].name, qi[i].busy);
	family(b, "jobd_queue_capacity", "gauge",
	    "Most jobs the queue holds before submits wait.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(b, "jobd_queue_capacity{queue=\"%s\"} %ld\n",
		    qi[i].name, qi[i].capacity);
	family(b, "jobd_queue_paused", "gauge", "1 when the queue is paused.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(b, "jobd_queue_paused{queue=\"%s\"} %d\n",
		    qi[i].name, qi[i].paused ? 1 : 0);
	family(b, "jobd_job_duration_seconds", "histogram",
	    "Time from a job's start to its end.");
	for (i = 0; i < n; i++)
		histogram_lines(b, "jobd_job_duration_seconds", qi[i].name,
		    qi[i].duration);
	family(b, "jobd_job_wait_seconds", "histogram",
	    "Time a job spent queued before it started.");
	for (i = 0; i < n; i++)
		histogram_lines(b, "jobd_job_wait_seconds", qi[i].name,
		    qi[i].wait);
	memset(&js, 0, sizeof js);
	if (sched_persist(s) != NULL)
		persist_stats(sched_persist(s), &js);
	family(b, "jobd_journal_bytes", "gauge",
	    "Bytes of journal on disk.");
	evbuffer_add_printf(b, "jobd_journal_bytes %llu\n",
	    (unsigned long long)js.bytes);
	family(b, "jobd_journal_records_total", "counter",
	    "Journal records written since start, and replayed at start.");
	evbuffer_add_printf(b, "jobd_journal_records_total %llu\n",
	    (unsigned long long)js.records);
	family(b, "jobd_journal_syncs_total", "counter",
	    "fdatasync calls on the journal since start.");
	evbuffer_add_printf(b, "jobd_journal_syncs_total %llu\n",
	    (unsigned long long)js.syncs);
	family(b, "jobd_journal_compactions_total", "counter",
	    "Journal compactions since start.");
	evbuffer_add_printf(b, "jobd_journal_compactions_total %llu\n",
	    (unsigned long long)js.compactions);
	family(b, "jobd_journal_last_fsync_seconds", "gauge",
	    "Duration of the last journal fdatasync.");
	evbuffer_add_printf(b, "jobd_journal_last_fsync_seconds %.9g\n",
	    js.last_sync_s);
	family(b, "jobd_journal_recovery_seconds", "gauge",
	    "Time the journal replay took at start.");
	evbuffer_add_printf(b, "jobd_journal_recovery_seconds %.9g\n",
	    js.replay_s);
	family(b, "jobd_connections", "gauge",
	    "Clients connected to the control socket.");
	evbuffer_add_printf(b, "jobd_connections %d\n", connections);
	family(b, "jobd_uptime_seconds", "gauge", "Seconds since jobd started.");
	evbuffer_add_printf(b, "jobd_uptime_seconds %.3f\n",
	    now_mono() - sched_started_mono(s));
	free(qi);
}
