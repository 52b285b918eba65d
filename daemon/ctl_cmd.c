/*
 * ctl_cmd: what every jobctl command works with.  It owns jobctl's
 * messages on stderr and the exits they lead to, the parsing of a
 * command's options and words (a usage error exits 64 before any
 * connection is made), and reading a response: ok or error, the job
 * record, the exit status a finished job stands for (SPEC §1).
 *
 * Kept apart from the commands so that the connection (ctl_conn) and the
 * output (ctl_fmt) can report and exit the same way without knowing any
 * command.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <jansson.h>

#include "ctl_cmd.h"
#include "protocol.h"
#include "util.h"

void
ctl_cmd_vwarn(const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs("jobctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
ctl_cmd_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctl_cmd_vwarn(fmt, ap);
	va_end(ap);
}

void
ctl_cmd_exit(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctl_cmd_vwarn(fmt, ap);
	va_end(ap);
	exit(status);
}

void
ctl_cmd_bad_response(void)
{
	ctl_cmd_exit(CTL_EXIT_ERROR, "bad response from daemon");
}

void
ctl_cmd_usage_error(struct ctl *ctl, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "jobctl: %s: ", ctl->cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: jobctl %s %s\n", ctl->cmd->name,
	    ctl->cmd->args);
	exit(EX_USAGE);
}

int
ctl_cmd_getopt(struct ctl *ctl, int argc, char **argv, const char *optstring,
    const struct option *longopts)
{
	int ch;

	ch = getopt_long(argc, argv, optstring, longopts, NULL);
	switch (ch) {
	case 'h':
		printf("usage: jobctl %s %s\n", ctl->cmd->name, ctl->cmd->args);
		exit(0);
	case ':':
		ctl_cmd_usage_error(ctl, "option %s needs an argument",
		    argv[optind - 1]);
	case '?':
		if (optopt != 0)
			ctl_cmd_usage_error(ctl, "unknown option -%c", optopt);
		ctl_cmd_usage_error(ctl, "unknown option %s", argv[optind - 1]);
	}
	return ch;
}

void
ctl_cmd_operands(struct ctl *ctl, int *argc, char ***argv, int min, int max)
{
	*argc -= optind;
	*argv += optind;
	if (max >= 0 && *argc > max)
		ctl_cmd_usage_error(ctl, "unexpected argument '%s'",
		    (*argv)[max]);
	if (*argc < min)
		ctl_cmd_usage_error(ctl, "missing argument");
}

void
ctl_cmd_noopts(struct ctl *ctl, int *argc, char ***argv, int n)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};

	while (ctl_cmd_getopt(ctl, *argc, *argv, "+:h", longopts) != -1)
		continue;
	ctl_cmd_operands(ctl, argc, argv, n < 0 ? 0 : n, n);
}

int
ctl_cmd_parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (*s == '\0' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Seconds: "5", "0.25", ".5", "2." -- no sign, exponent, inf or nan. */
static int
parse_seconds(const char *s, double *out)
{
	const char *p = s;
	int digits = 0;
	double v;

	for (; isdigit((unsigned char)*p); p++)
		digits++;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			digits++;
	if (digits == 0 || *p != '\0')
		return -1;
	v = strtod(s, NULL);
	if (!isfinite(v))
		return -1;
	*out = v;
	return 0;
}

double
ctl_cmd_timeout(struct ctl *ctl, const char *arg)
{
	double v;

	if (parse_seconds(arg, &v) != 0)
		ctl_cmd_usage_error(ctl, "-t: not a number of seconds: '%s'",
		    arg);
	return v;
}

json_int_t
ctl_cmd_id(struct ctl *ctl, const char *s)
{
	long long v;

	if (ctl_cmd_parse_int(s, 1, LLONG_MAX, &v) != 0)
		ctl_cmd_usage_error(ctl, "not a job id: '%s'", s);
	return v;
}

json_int_t *
ctl_cmd_ids(struct ctl *ctl, int argc, char **argv)
{
	json_int_t *ids;
	int i;

	ids = xreallocarray(NULL, argc, sizeof *ids);
	for (i = 0; i < argc; i++)
		ids[i] = ctl_cmd_id(ctl, argv[i]);
	return ids;
}

/* The protocol is UTF-8 only, and json_string checks it. */
json_t *
ctl_cmd_word(struct ctl *ctl, const char *s, const char *what)
{
	json_t *j;

	if ((j = json_string(s)) == NULL)
		ctl_cmd_usage_error(ctl, "%s is not valid UTF-8", what);
	return j;
}

void
ctl_cmd_set_queue(struct ctl *ctl, json_t *req, const char *queue)
{
	if (queue != NULL)
		json_object_set_new(req, "queue",
		    ctl_cmd_word(ctl, queue, "-q"));
}

int
ctl_cmd_status(json_t *r)
{
	json_t *ok, *err;
	const char *code, *msg;

	ok = json_object_get(r, "ok");
	if (!json_is_boolean(ok))
		ctl_cmd_bad_response();
	if (json_is_true(ok))
		return 0;
	err = json_object_get(r, "error");
	code = json_string_value(json_object_get(err, "code"));
	msg = json_string_value(json_object_get(err, "message"));
	if (code == NULL)
		code = "error";
	if (msg != NULL && *msg != '\0')
		ctl_cmd_warn("%s: %s", code, msg);
	else
		ctl_cmd_warn("%s", code);
	return strcmp(code, PROTO_TIMEOUT) == 0 ? EX_TEMPFAIL : CTL_EXIT_ERROR;
}

json_t *
ctl_cmd_job(json_t *r)
{
	json_t *job = json_object_get(r, "job");

	if (!json_is_object(job) || !json_is_integer(json_object_get(job, "id")))
		ctl_cmd_bad_response();
	return job;
}

int
ctl_cmd_outcome(json_t *job)
{
	json_t *code = json_object_get(job, "exit_code");
	json_t *sig = json_object_get(job, "signal");
	const char *state = json_string_value(json_object_get(job, "state"));

	if (state == NULL)
		ctl_cmd_bad_response();
	if (strcmp(state, "succeeded") == 0)
		return 0;
	if (strcmp(state, "timed_out") == 0)
		return CTL_EXIT_TIMED_OUT;
	if (strcmp(state, "canceled") == 0)
		return CTL_EXIT_CANCELED;
	if (strcmp(state, "failed") != 0) {
		ctl_cmd_warn("job %" JSON_INTEGER_FORMAT " is still %s",
		    json_integer_value(json_object_get(job, "id")), state);
		return CTL_EXIT_ERROR;
	}
	/* Clamped so that no odd value can read as success. */
	if (json_is_integer(code) && json_integer_value(code) > 0)
		return json_integer_value(code) > 255 ? 255 :
		    (int)json_integer_value(code);
	if (json_is_integer(sig) && json_integer_value(sig) > 0)
		return json_integer_value(sig) > 127 ? 255 :
		    128 + (int)json_integer_value(sig);
	return CTL_EXIT_NO_STATUS;
}
