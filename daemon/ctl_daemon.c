/*
 * ctl_daemon: jobctl's commands on the daemon and its queues: list, stats,
 * pause, resume, ping, reload and watch (SPEC §1; docs/jobctl.md shows
 * their output).  It owns their requests, the columns of the list and
 * stats tables, and watch's signal handling: the only signals jobctl
 * catches, and only inside ppoll (see ctl_conn_set_sigmask).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl_cmd.h"
#include "ctl_conn.h"
#include "ctl_daemon.h"
#include "ctl_fmt.h"
#include "protocol.h"

enum {
	OPT_WAIT = 256,
};

static const struct ctl_fmt_column list_cols[] = {
	{ "ID", 1, 0 },
	{ "QUEUE", 0, 20 },
	{ "STATE", 0, 0 },
	{ "PRIO", 1, 0 },
	{ "EXIT", 1, 0 },
	{ "AGE", 1, 0 },
	{ "NAME", 0, 20 },
	{ "COMMAND", 0, 0 },
};

/* A list row: the job's columns in list_cols order. */
static void
list_row(struct ctl_fmt_table *t, json_t *job)
{
	json_t *v;
	char age[32], *s;
	double secs;

	ctl_fmt_table_add_value(t, json_object_get(job, "id"));
	ctl_fmt_table_add_value(t, json_object_get(job, "queue"));
	ctl_fmt_table_add_value(t, json_object_get(job, "state"));
	ctl_fmt_table_add_value(t, json_object_get(job, "priority"));
	if (json_is_integer(v = json_object_get(job, "exit_code")))
		ctl_fmt_table_add_value(t, v);
	else if (json_is_integer(v = json_object_get(job, "signal")))
		ctl_fmt_table_add(t, "sig %" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
	else
		ctl_fmt_table_add(t, "-");
	if ((secs = ctl_fmt_age(ctl_fmt_str(job, "submitted_at", NULL))) >= 0) {
		ctl_fmt_duration(secs, age, sizeof age);
		ctl_fmt_table_add(t, "%s", age);
	} else
		ctl_fmt_table_add(t, "-");
	ctl_fmt_table_add_value(t, json_object_get(job, "name"));
	s = ctl_fmt_command(job);
	ctl_fmt_table_add(t, "%s", s);
	free(s);
}

int
ctl_daemon_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "queue", required_argument, NULL, 'q' },
		{ "state", required_argument, NULL, 'S' },
		{ "limit", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl_fmt_table *t = NULL;
	const char *queue = NULL, *state = NULL;
	long long limit = -1;
	json_t *req, *r, *jobs, *job;
	struct ctl_fmt_buf b = { NULL, 0, 0 };
	size_t i;
	int ch, status;

	while ((ch = ctl_cmd_getopt(ctl, argc, argv, "+:hq:S:n:",
	    longopts)) != -1) {
		switch (ch) {
		case 'q':
			queue = optarg;
			break;
		case 'S':
			state = optarg;
			if (protocol_state_parse(state) != -1)
				break;
			for (i = 0; i < JOB__STATES; i++)
				ctl_fmt_buf_printf(&b, "%s%s", i > 0 ? ", " : "",
				    protocol_state_name(i));
			ctl_cmd_usage_error(ctl, "-S: not a state: '%s' "
			    "(one of %s)", state, b.p);
		case 'n':
			if (ctl_cmd_parse_int(optarg, 1, PROTOCOL_LIMIT_MAX,
			    &limit) != 0)
				ctl_cmd_usage_error(ctl, "-n: not an integer "
				    "in 1..%d: '%s'", PROTOCOL_LIMIT_MAX,
				    optarg);
			break;
		}
	}
	ctl_cmd_operands(ctl, &argc, &argv, 0, 0);

	req = json_pack("{s:s}", "op", "list");
	ctl_cmd_set_queue(ctl, req, queue);
	if (state != NULL)
		json_object_set_new(req, "state", json_string(state));
	if (limit != -1)
		json_object_set_new(req, "limit", json_integer(limit));
	r = ctl_conn_call(ctl, req, -1);
	if ((status = ctl_cmd_status(r)) != 0 || ctl->json)
		goto out;
	if (!json_is_array(jobs = json_object_get(r, "jobs")))
		ctl_cmd_bad_response();

	t = ctl_fmt_table_new(list_cols, nitems(list_cols));
	json_array_foreach(jobs, i, job) {
		if (!json_is_object(job))
			ctl_cmd_bad_response();
		list_row(t, job);
	}
	ctl_fmt_table_print(t, ctl_fmt_term_width());
out:
	ctl_fmt_table_free(t);
	json_decref(r);
	return status;
}

static const struct ctl_fmt_column stats_cols[] = {
	{ "QUEUE", 0, 24 },
	{ "WORKERS", 1, 0 },
	{ "BUSY", 1, 0 },
	{ "QUEUED", 1, 0 },
	{ "RUNNING", 1, 0 },
	{ "UNFINISHED", 1, 0 },
	{ "PAUSED", 0, 0 },
	{ "SUBMITTED", 1, 0 },
	{ "SUCCEEDED", 1, 0 },
	{ "FAILED", 1, 0 },
	{ "TIMED_OUT", 1, 0 },
	{ "CANCELED", 1, 0 },
};

/* Counters shared by a queue row and the total row, in column order. */
static const char *const stats_counts[] = {
	"queued", "running", "unfinished", NULL,
	"submitted", "succeeded", "failed", "timed_out", "canceled",
};

static void
stats_row(struct ctl_fmt_table *t, const char *name, json_t *q,
    json_t *workers, json_t *busy, const char *paused)
{
	size_t i;

	ctl_fmt_table_add(t, "%s", name);
	ctl_fmt_table_add_value(t, workers);
	ctl_fmt_table_add_value(t, busy);
	for (i = 0; i < nitems(stats_counts); i++) {
		if (stats_counts[i] == NULL)
			ctl_fmt_table_add(t, "%s", paused);
		else
			ctl_fmt_table_add_value(t,
			    json_object_get(q, stats_counts[i]));
	}
}

/* "jobd VERSION, pid N, up DURATION, N connections" */
static void
stats_head(json_t *st)
{
	json_t *v;
	char up[32];

	printf("jobd %s", ctl_fmt_str(st, "version", "?"));
	if (json_is_integer(v = json_object_get(st, "pid")))
		printf(", pid %" JSON_INTEGER_FORMAT, json_integer_value(v));
	if (json_is_number(v = json_object_get(st, "uptime_s"))) {
		ctl_fmt_duration(json_number_value(v), up, sizeof up);
		printf(", up %s", up);
	}
	if (json_is_integer(v = json_object_get(st, "connections")))
		printf(", %" JSON_INTEGER_FORMAT " connection%s",
		    json_integer_value(v), json_integer_value(v) == 1 ? "" : "s");
	putchar('\n');
}

int
ctl_daemon_stats(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_fmt_table *t = NULL;
	json_t *r, *st, *queues, *q, *v, *workers, *busy;
	json_int_t nworkers = 0, nbusy = 0;
	const char *name;
	int status;

	ctl_cmd_noopts(ctl, &argc, &argv, 0);
	r = ctl_conn_call(ctl, json_pack("{s:s}", "op", "stats"), -1);
	if ((status = ctl_cmd_status(r)) != 0 || ctl->json)
		goto out;
	if (!json_is_object(st = json_object_get(r, "stats")) ||
	    !json_is_object(queues = json_object_get(st, "queues")))
		ctl_cmd_bad_response();

	stats_head(st);
	t = ctl_fmt_table_new(stats_cols, nitems(stats_cols));
	json_object_foreach(queues, name, q) {
		workers = json_object_get(q, "workers");
		busy = json_object_get(q, "busy");
		nworkers += json_integer_value(workers);
		nbusy += json_integer_value(busy);
		v = json_object_get(q, "paused");
		stats_row(t, name, q, workers, busy,
		    json_is_boolean(v) ? (json_is_true(v) ? "yes" : "no") : "-");
	}
	/* "(total)" cannot be a queue name: names are [A-Za-z0-9_.-]. */
	if (json_object_size(queues) > 1 &&
	    json_is_object(v = json_object_get(st, "totals"))) {
		workers = json_integer(nworkers);
		busy = json_integer(nbusy);
		stats_row(t, "(total)", v, workers, busy, "-");
		json_decref(workers);
		json_decref(busy);
	}
	ctl_fmt_table_print(t, 0);
out:
	ctl_fmt_table_free(t);
	json_decref(r);
	return status;
}

int
ctl_daemon_queue_op(struct ctl *ctl, int argc, char **argv)
{
	json_t *r;
	int status;

	ctl_cmd_noopts(ctl, &argc, &argv, 1);
	r = ctl_conn_call(ctl, json_pack("{s:s, s:o}", "op", ctl->cmd->name,
	    "queue", ctl_cmd_word(ctl, argv[0], "QUEUE")), -1);
	status = ctl_cmd_status(r);
	json_decref(r);
	return status;
}

int
ctl_daemon_ping(struct ctl *ctl, int argc, char **argv)
{
	json_t *r;
	int status;

	ctl_cmd_noopts(ctl, &argc, &argv, 0);
	r = ctl_conn_call(ctl, json_pack("{s:s}", "op", "ping"), -1);
	if ((status = ctl_cmd_status(r)) == 0 && !ctl->json)
		printf("jobd %s (pid %" JSON_INTEGER_FORMAT ")\n",
		    ctl_fmt_str(r, "version", "?"),
		    json_integer_value(json_object_get(r, "pid")));
	json_decref(r);
	return status;
}

int
ctl_daemon_reload(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "wait", no_argument, NULL, OPT_WAIT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	json_t *r, *ignored, *v;
	size_t i;
	int status;

	while (ctl_cmd_getopt(ctl, argc, argv, "+:h", longopts) != -1)
		continue;	/* --wait: reload always waits */
	ctl_cmd_operands(ctl, &argc, &argv, 0, 0);

	r = ctl_conn_call(ctl, json_pack("{s:s}", "op", "reload"), -1);
	if ((status = ctl_cmd_status(r)) != 0 || ctl->json)
		goto out;
	fputs("reloaded", stdout);
	ignored = json_object_get(r, "ignored");
	if (json_is_array(ignored) && json_array_size(ignored) > 0) {
		fputs("; ignored until restart:", stdout);
		json_array_foreach(ignored, i, v)
			printf("%s %s", i > 0 ? "," : "",
			    json_is_string(v) ? json_string_value(v) : "?");
	}
	putchar('\n');
out:
	json_decref(r);
	return status;
}

static void
watch_signal(int sig)
{
	(void)sig;	/* only to make ppoll return EINTR */
}

/*
 * Catch SIGINT and SIGTERM, but keep them blocked except inside ppoll, so
 * that one cannot slip in between a check and the wait.  *old gets the
 * mask ppoll is to use.
 */
static void
watch_signals(sigset_t *old)
{
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = watch_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, old);
	sigdelset(old, SIGINT);
	sigdelset(old, SIGTERM);
}

/*
 * Subscribe and print one line per event until the daemon closes the
 * connection or SIGINT/SIGTERM (both exit 0).
 */
int
ctl_daemon_watch(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "queue", required_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *queue = NULL, *line;
	sigset_t old;
	struct ctl_conn *c;
	json_t *req, *r, *ev;
	char *ev_line;
	size_t len;
	int ch, status;

	while ((ch = ctl_cmd_getopt(ctl, argc, argv, "+:hq:", longopts)) != -1)
		if (ch == 'q')
			queue = optarg;
	ctl_cmd_operands(ctl, &argc, &argv, 0, 0);

	req = json_pack("{s:s}", "op", "subscribe");
	ctl_cmd_set_queue(ctl, req, queue);
	c = ctl_conn_get(ctl);
	watch_signals(&old);
	ctl_conn_set_sigmask(c, &old);

	ctl_conn_send(c, req);
	if ((r = ctl_conn_reply(c, -1, &line, &len)) == NULL)
		return 0;
	status = ctl_cmd_status(r);
	json_decref(r);
	if (status != 0)
		return status;

	for (;;) {
		switch (ctl_conn_readline(c, -1, &ev_line, &len)) {
		case CTL_CONN_LINE:
			break;
		case CTL_CONN_EOF:
		case CTL_CONN_INTR:
		case CTL_CONN_TIMEOUT:
			return 0;
		}
		if (len == 0)
			continue;
		ev = ctl_conn_json(ev_line, len);
		if (ctl->json)
			ctl_fmt_put_line(ev_line, len);
		else
			ctl_fmt_put_event(ev);
		json_decref(ev);
		/* Each event as it comes; stop when nobody reads any more. */
		if (fflush(stdout) == EOF)
			return errno == EPIPE ? 0 : CTL_EXIT_ERROR;
	}
}
