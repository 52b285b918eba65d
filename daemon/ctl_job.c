/*
 * ctl_job: jobctl's commands on jobs: submit, get, logs, wait, join and
 * cancel (SPEC §1; docs/jobctl.md shows their output).  It owns building
 * their requests, the pipelining of wait and cancel, and the deadline of
 * wait -t and join -t; the connection is ctl_conn's, the output ctl_fmt's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl_cmd.h"
#include "ctl_conn.h"
#include "ctl_fmt.h"
#include "ctl_job.h"
#include "protocol.h"
#include "util.h"

/*
 * With -t, the daemon is told the time left and answers "timeout" itself;
 * jobctl gives up on its own this much later, so that the daemon's answer
 * normally wins but a daemon that serves pipelined waits one after another
 * cannot stretch the command beyond -t.
 */
#define DEADLINE_GRACE		0.5

/*
 * wait and cancel pipeline their requests, at most this many ahead of the
 * replies.  That many short lines always fit in the socket buffer, so a
 * send never blocks while replies (job records of many MB) wait to be
 * read: jobd stops reading a client that leaves its replies unread, and
 * the two would wait on each other.
 */
#define PIPELINE_MAX		64

enum {
	OPT_NOWAIT = 256,
	OPT_WAIT,
	OPT_SHELL,
};

/* One request per id, sent ahead of the replies (wait, cancel). */
struct batch {
	const json_int_t *ids;
	int		 n;
	int		 sent;		/* requests sent so far */
	double		 end;		/* wait -t: time up; < 0: none */
	json_t		*(*request)(json_int_t, double end);
};

/*
 * The reply to the request for ids[i], once what may go ahead of it is
 * sent; NULL when deadline passed first.  Printed under --json.
 */
static json_t *
batch_reply(struct ctl *ctl, struct batch *b, int i, double deadline)
{
	struct ctl_conn *c = ctl_conn_get(ctl);

	for (; b->sent < b->n && b->sent - i < PIPELINE_MAX; b->sent++)
		ctl_conn_send(c, b->request(b->ids[b->sent], b->end));
	return ctl_conn_answer(ctl, deadline);
}

/* A wait, carrying the time left until end (< 0: no -t). */
static json_t *
wait_request(json_int_t id, double end)
{
	json_t *req;
	double left;

	req = json_pack("{s:s, s:I}", "op", "wait", "id", id);
	if (end >= 0) {
		if ((left = end - now_mono()) < 0)
			left = 0;
		/* whole milliseconds keep the line short */
		json_object_set_new(req, "timeout",
		    json_real((double)(long long)(left * 1000) / 1000));
	}
	return req;
}

static json_t *
cancel_request(json_int_t id, double end)
{
	(void)end;
	return json_pack("{s:s, s:I}", "op", "cancel", "id", id);
}

/* -C DIR made absolute against the client's working directory. */
static char *
absolute_dir(struct ctl *ctl, const char *dir)
{
	char *cwd, *path;

	if (*dir == '\0')
		ctl_cmd_usage_error(ctl, "-C: empty directory");
	if (*dir == '/')
		return xstrdup(dir);
	if ((cwd = getcwd(NULL, 0)) == NULL)
		ctl_cmd_exit(CTL_EXIT_ERROR, "getcwd: %s", strerror(errno));
	while (dir[0] == '.' && dir[1] == '/') {
		for (dir += 2; *dir == '/'; dir++)
			continue;
	}
	if (*dir == '\0' || strcmp(dir, ".") == 0)
		return cwd;
	xasprintf(&path, "%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", dir);
	free(cwd);
	return path;
}

/* The job's command: the words as argv, or joined for the shell. */
static void
submit_command(struct ctl *ctl, json_t *req, int argc, char **argv,
    int shell)
{
	struct ctl_fmt_buf b = { NULL, 0, 0 };
	json_t *words;
	char *s;
	int i;

	if (argc == 0)
		ctl_cmd_usage_error(ctl, "missing command (put it after --)");
	else if (shell) {
		for (i = 0; i < argc; i++) {
			if (i > 0)
				ctl_fmt_buf_adds(&b, " ");
			ctl_fmt_buf_adds(&b, argv[i]);
		}
		s = ctl_fmt_buf_take(&b);
		json_object_set_new(req, "shell",
		    ctl_cmd_word(ctl, s, "the command"));
		free(s);
	} else {
		words = json_array();
		for (i = 0; i < argc; i++)
			json_array_append_new(words,
			    ctl_cmd_word(ctl, argv[i], "the command"));
		json_object_set_new(req, "argv", words);
	}
}

int
ctl_job_submit(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "queue", required_argument, NULL, 'q' },
		{ "priority", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "name", required_argument, NULL, 'n' },
		{ "env", required_argument, NULL, 'e' },
		{ "cwd", required_argument, NULL, 'C' },
		{ "nowait", no_argument, NULL, OPT_NOWAIT },
		{ "wait", no_argument, NULL, OPT_WAIT },
		{ "shell", no_argument, NULL, OPT_SHELL },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *queue = NULL, *name = NULL, *cwd = NULL, *eq, *line;
	double timeout = -1;
	long long prio = 0;
	int ch, have_prio = 0, nowait = 0, wait = 0, shell = 0, status;
	json_t *req, *env = NULL, *r = NULL, *r2 = NULL;
	struct ctl_conn *c;
	json_int_t id;
	char *key, *s;
	size_t len;

	while ((ch = ctl_cmd_getopt(ctl, argc, argv, "+:hq:p:t:n:e:C:",
	    longopts)) != -1) {
		switch (ch) {
		case 'q':
			queue = optarg;
			break;
		case 'p':
			if (ctl_cmd_parse_int(optarg, -PROTOCOL_PRIORITY_MAX,
			    PROTOCOL_PRIORITY_MAX, &prio) != 0)
				ctl_cmd_usage_error(ctl, "-p: not an integer "
				    "in -%d..%d: '%s'", PROTOCOL_PRIORITY_MAX,
				    PROTOCOL_PRIORITY_MAX, optarg);
			have_prio = 1;
			break;
		case 't':
			timeout = ctl_cmd_timeout(ctl, optarg);
			break;
		case 'n':
			name = optarg;
			break;
		case 'e':
			if ((eq = strchr(optarg, '=')) == NULL || eq == optarg)
				ctl_cmd_usage_error(ctl, "-e: expected "
				    "KEY=VALUE with a non-empty KEY: '%s'",
				    optarg);
			if (env == NULL)
				env = json_object();
			key = xstrndup(optarg, eq - optarg);
			/* set_new consumes the value even when it fails. */
			if (json_object_set_new(env, key,
			    ctl_cmd_word(ctl, eq + 1, "-e value")) != 0)
				ctl_cmd_usage_error(ctl,
				    "-e: KEY is not valid UTF-8");
			free(key);
			break;
		case 'C':
			cwd = optarg;
			break;
		case OPT_NOWAIT:
			nowait = 1;
			break;
		case OPT_WAIT:
			wait = 1;
			break;
		case OPT_SHELL:
			shell = 1;
			break;
		}
	}
	argc -= optind;
	argv += optind;

	req = json_object();
	json_object_set_new(req, "op", json_string("submit"));
	submit_command(ctl, req, argc, argv, shell);
	ctl_cmd_set_queue(ctl, req, queue);
	if (have_prio)
		json_object_set_new(req, "priority", json_integer(prio));
	if (timeout >= 0)
		json_object_set_new(req, "timeout", json_real(timeout));
	if (name != NULL)
		json_object_set_new(req, "name",
		    ctl_cmd_word(ctl, name, "-n"));
	if (env != NULL)
		json_object_set_new(req, "env", env);
	if (cwd != NULL) {
		/* Without -C the daemon runs the job in "/" (SPEC §2). */
		s = absolute_dir(ctl, cwd);
		json_object_set_new(req, "cwd", ctl_cmd_word(ctl, s, "-C"));
		free(s);
	}
	if (nowait)
		json_object_set_new(req, "nowait", json_true());

	/* With --wait, --json prints the submit response only if it failed. */
	c = ctl_conn_get(ctl);
	ctl_conn_send(c, req);
	r = ctl_conn_reply(c, -1, &line, &len);
	if (ctl->json && (!wait || !json_is_true(json_object_get(r, "ok"))))
		ctl_fmt_put_line(line, len);
	if ((status = ctl_cmd_status(r)) != 0)
		goto out;
	if (!json_is_integer(json_object_get(r, "id")))
		ctl_cmd_bad_response();
	id = json_integer_value(json_object_get(r, "id"));
	if (!ctl->json)
		printf("%" JSON_INTEGER_FORMAT "\n", id);
	if (!wait)
		goto out;

	/* The id is out before the wait, for whoever reads it live. */
	fflush(stdout);
	r2 = ctl_conn_call(ctl, wait_request(id, -1), -1);
	if ((status = ctl_cmd_status(r2)) == 0)
		status = ctl_cmd_outcome(ctl_cmd_job(r2));
out:
	json_decref(r2);
	json_decref(r);
	return status;
}

/* get and logs: the daemon's answer to "get" for the one operand, an id. */
static json_t *
get_job(struct ctl *ctl, int *argc, char ***argv)
{
	ctl_cmd_noopts(ctl, argc, argv, 1);
	return ctl_conn_call(ctl, json_pack("{s:s, s:I}", "op", "get", "id",
	    ctl_cmd_id(ctl, (*argv)[0])), -1);
}

int
ctl_job_get(struct ctl *ctl, int argc, char **argv)
{
	json_t *r;
	int status;

	r = get_job(ctl, &argc, &argv);
	if ((status = ctl_cmd_status(r)) == 0 && !ctl->json)
		ctl_fmt_put_record(ctl_cmd_job(r));
	json_decref(r);
	return status;
}

/*
 * The tails go out byte for byte (they may hold NUL bytes).  Notes about
 * truncation go to stderr only when it is a terminal, so that a
 * redirected stderr holds exactly the job's.
 */
int
ctl_job_logs(struct ctl *ctl, int argc, char **argv)
{
	static const char *const streams[] = { "stdout", "stderr" };
	json_t *r, *job, *v;
	const char *state;
	size_t i;
	int status;

	r = get_job(ctl, &argc, &argv);
	if ((status = ctl_cmd_status(r)) != 0 || ctl->json)
		goto out;
	job = ctl_cmd_job(r);

	if (isatty(STDERR_FILENO)) {
		state = ctl_fmt_str(job, "state", NULL);
		if (state != NULL && (strcmp(state, "queued") == 0 ||
		    strcmp(state, "running") == 0))
			ctl_cmd_warn("(job %s is %s: its output is kept when "
			    "it ends)", argv[0], state);
		for (i = 0; i < nitems(streams); i++) {
			v = json_object_get(job, streams[i]);
			if (ctl_fmt_truncated(job, streams[i]))
				ctl_cmd_warn("(%s truncated; this is its last "
				    "%zu bytes)", streams[i],
				    json_string_length(v));
		}
	}
	if (json_is_string(v = json_object_get(job, "stdout")))
		fwrite(json_string_value(v), 1, json_string_length(v), stdout);
	fflush(stdout);
	if (json_is_string(v = json_object_get(job, "stderr")))
		fwrite(json_string_value(v), 1, json_string_length(v), stderr);
out:
	json_decref(r);
	return status;
}

/*
 * One pipelined wait per id.  With -t each carries the time left, and the
 * whole command ends by then (plus DEADLINE_GRACE).
 */
int
ctl_job_wait(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct batch b = { NULL, 0, 0, -1, wait_request };
	double timeout = -1;
	json_int_t *ids;
	json_t *r;
	char *s;
	int ch, i, st, status = 0;

	while ((ch = ctl_cmd_getopt(ctl, argc, argv, "+:ht:", longopts)) != -1)
		if (ch == 't')
			timeout = ctl_cmd_timeout(ctl, optarg);
	ctl_cmd_operands(ctl, &argc, &argv, 1, -1);
	b.ids = ids = ctl_cmd_ids(ctl, argc, argv);
	b.n = argc;

	if (timeout >= 0)
		b.end = now_mono() + timeout;
	for (i = 0; i < argc; i++) {
		r = batch_reply(ctl, &b, i,
		    b.end >= 0 ? b.end + DEADLINE_GRACE : -1);
		if (r == NULL) {
			s = ctl_fmt_seconds(timeout);
			ctl_cmd_warn("timeout: job %" JSON_INTEGER_FORMAT
			    " still unfinished after %s s", ids[i], s);
			free(s);
			status = EX_TEMPFAIL;
			break;
		}
		if ((st = ctl_cmd_status(r)) == EX_TEMPFAIL) {
			/* The time is up; the rest would say the same. */
			json_decref(r);
			status = st;
			break;
		}
		if (st == 0) {
			if (!ctl->json)
				ctl_fmt_put_job_line(ctl_cmd_job(r));
			st = ctl_cmd_outcome(ctl_cmd_job(r));
		}
		if (status == 0)
			status = st;
		json_decref(r);
	}
	free(ids);
	return status;
}

int
ctl_job_join(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "queue", required_argument, NULL, 'q' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *queue = NULL;
	double timeout = -1, end = -1;
	json_t *req, *r;
	char *s;
	int ch, status;

	while ((ch = ctl_cmd_getopt(ctl, argc, argv, "+:hq:t:",
	    longopts)) != -1) {
		if (ch == 'q')
			queue = optarg;
		else if (ch == 't')
			timeout = ctl_cmd_timeout(ctl, optarg);
	}
	ctl_cmd_operands(ctl, &argc, &argv, 0, 0);

	req = json_pack("{s:s}", "op", "join");
	ctl_cmd_set_queue(ctl, req, queue);
	if (timeout >= 0) {
		json_object_set_new(req, "timeout", json_real(timeout));
		end = now_mono() + timeout + DEADLINE_GRACE;
	}
	if ((r = ctl_conn_call(ctl, req, end)) == NULL) {
		s = ctl_fmt_seconds(timeout);
		ctl_cmd_warn("timeout: jobs still unfinished after %s s", s);
		free(s);
		return EX_TEMPFAIL;
	}
	status = ctl_cmd_status(r);
	json_decref(r);
	return status;
}

/* One pipelined cancel per id; an error does not stop the rest. */
int
ctl_job_cancel(struct ctl *ctl, int argc, char **argv)
{
	struct batch b = { NULL, 0, 0, -1, cancel_request };
	json_int_t *ids;
	json_t *r;
	int i, status = 0;

	ctl_cmd_noopts(ctl, &argc, &argv, -1);
	if (argc == 0)
		ctl_cmd_usage_error(ctl, "missing job id");
	b.ids = ids = ctl_cmd_ids(ctl, argc, argv);
	b.n = argc;
	for (i = 0; i < argc; i++) {
		r = batch_reply(ctl, &b, i, -1);
		if (ctl_cmd_status(r) != 0)
			status = CTL_EXIT_ERROR;
		else if (!ctl->json)
			printf("%" JSON_INTEGER_FORMAT " canceled\n", ids[i]);
		json_decref(r);
	}
	free(ids);
	return status;
}
