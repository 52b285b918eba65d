/*
 * protocol: the socket protocol's words (SPEC §2).  A request line becomes a
 * struct request through two tables, one of ops and one of fields (which op
 * takes which field, and how its value is checked and stored); results
 * become response lines.
 *
 * Pure: no I/O, no globals but const tables, no logging, so that a fuzzer
 * can call it.  Every error is a value (struct proto_error) whose message
 * names the offending field, is valid UTF-8, and never holds more than a
 * clipped copy of what the client sent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "protocol.h"
#include "util.h"

/*
 * Longest sleep, timeout, wait or block_timeout a request may ask for: 365
 * days, the same bound as a queue's timeout in the config (SPEC §4).  It
 * keeps every deadline far from overflowing a time_t or a timer.
 */
#define PROTOCOL_SECONDS_MAX	31536000.0

/* How many bytes of a client's own text (an op, a field) a message quotes. */
#define CLIP_BYTES		64
#define CLIP_SIZE		(CLIP_BYTES + sizeof "...")

/* Real numbers in responses: 15 digits read back as written (0.1, not
 * 0.10000000000000001) and are far finer than any duration needs. */
#define DUMP_FLAGS		(JSON_COMPACT | JSON_REAL_PRECISION(15))

#define OPBIT(op)		(1U << (op))

/* What an op cannot do without. */
#define NEED_ID			0x1
#define NEED_QUEUE		0x2
#define NEED_KIND		0x4	/* exactly one of argv, shell, sleep */

struct op_entry {
	const char	*name;
	int		 need;
};

static const struct op_entry op_table[OP__COUNT] = {
	[OP_PING] =		{ "ping",	0 },
	[OP_SUBMIT] =		{ "submit",	NEED_KIND },
	[OP_GET] =		{ "get",	NEED_ID },
	[OP_WAIT] =		{ "wait",	NEED_ID },
	[OP_JOIN] =		{ "join",	0 },
	[OP_CANCEL] =		{ "cancel",	NEED_ID },
	[OP_LIST] =		{ "list",	0 },
	[OP_STATS] =		{ "stats",	0 },
	[OP_PAUSE] =		{ "pause",	NEED_QUEUE },
	[OP_RESUME] =		{ "resume",	NEED_QUEUE },
	[OP_SUBSCRIBE] =	{ "subscribe",	0 },
	[OP_RELOAD] =		{ "reload",	0 },
};

static const char *const state_table[JOB__STATES] = {
	[JOB_QUEUED] =		"queued",
	[JOB_RUNNING] =		"running",
	[JOB_SUCCEEDED] =	"succeeded",
	[JOB_FAILED] =		"failed",
	[JOB_TIMED_OUT] =	"timed_out",
	[JOB_CANCELED] =	"canceled",
};

/* One parse in progress. */
struct parse {
	struct request		*req;
	struct proto_error	*err;
	int			 have;	/* NEED_* bits seen so far */
};

struct field {
	const char	*name;
	unsigned	 ops;	/* OPBIT()s of the ops that take it */
	int		(*parse)(struct parse *, const struct field *, json_t *);
	size_t		 off;	/* where the generic parsers store it */
};

static int	field_argv(struct parse *, const struct field *, json_t *);
static int	field_shell(struct parse *, const struct field *, json_t *);
static int	field_sleep(struct parse *, const struct field *, json_t *);
static int	field_queue(struct parse *, const struct field *, json_t *);
static int	field_priority(struct parse *, const struct field *, json_t *);
static int	field_seconds(struct parse *, const struct field *, json_t *);
static int	field_env(struct parse *, const struct field *, json_t *);
static int	field_cwd(struct parse *, const struct field *, json_t *);
static int	field_stdin(struct parse *, const struct field *, json_t *);
static int	field_string(struct parse *, const struct field *, json_t *);
static int	field_bool(struct parse *, const struct field *, json_t *);
static int	field_id(struct parse *, const struct field *, json_t *);
static int	field_state(struct parse *, const struct field *, json_t *);
static int	field_limit(struct parse *, const struct field *, json_t *);

#define REQ(m)	offsetof(struct request, m)

/* "op" and "tag" are every op's and are handled before this table. */
static const struct field field_table[] = {
	{ "argv",	OPBIT(OP_SUBMIT),	field_argv,	0 },
	{ "shell",	OPBIT(OP_SUBMIT),	field_shell,	0 },
	{ "sleep",	OPBIT(OP_SUBMIT),	field_sleep,	0 },
	{ "queue",	OPBIT(OP_SUBMIT),	field_queue,	REQ(job.queue) },
	{ "priority",	OPBIT(OP_SUBMIT),	field_priority,	0 },
	{ "timeout",	OPBIT(OP_SUBMIT),	field_seconds,	REQ(job.timeout) },
	{ "env",	OPBIT(OP_SUBMIT),	field_env,	0 },
	{ "cwd",	OPBIT(OP_SUBMIT),	field_cwd,	0 },
	{ "stdin",	OPBIT(OP_SUBMIT),	field_stdin,	0 },
	{ "name",	OPBIT(OP_SUBMIT),	field_string,	REQ(job.name) },
	{ "nowait",	OPBIT(OP_SUBMIT),	field_bool,	REQ(nowait) },
	{ "block_timeout", OPBIT(OP_SUBMIT),	field_seconds,	REQ(block_timeout) },
	{ "id",		OPBIT(OP_GET) | OPBIT(OP_WAIT) | OPBIT(OP_CANCEL),
						field_id,	0 },
	{ "timeout",	OPBIT(OP_WAIT) | OPBIT(OP_JOIN),
						field_seconds,	REQ(timeout) },
	{ "queue",	OPBIT(OP_JOIN) | OPBIT(OP_LIST) | OPBIT(OP_PAUSE) |
			OPBIT(OP_RESUME) | OPBIT(OP_SUBSCRIBE),
						field_queue,	REQ(queue) },
	{ "state",	OPBIT(OP_LIST),		field_state,	0 },
	{ "limit",	OPBIT(OP_LIST),		field_limit,	0 },
};

static void __attribute__((noreturn))
protocol_abort(void)
{
	/* Out of memory inside jansson: the same broken invariant as xmalloc. */
	abort();
}

static json_t *
jcheck(json_t *v)
{
	if (v == NULL)
		protocol_abort();
	return v;
}

/* Set o[key] = v, stealing v. */
static void
jset_new(json_t *o, const char *key, json_t *v)
{
	if (v == NULL || json_object_set_new(o, key, v) == -1)
		protocol_abort();
}

/*
 * Length of the well-formed UTF-8 sequence at p (n bytes available), or 0
 * when it is not one: the rules jansson applies (no overlong forms, no
 * surrogates, nothing above U+10FFFF).
 */
static size_t
utf8_seqlen(const unsigned char *p, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] < 0xc2)
		return 0;
	if (p[0] < 0xe0) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] < 0xf0) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] < 0xf5) {
		len = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * Copy at most CLIP_BYTES of a client's text for a message: cut at a
 * character boundary, control characters as '?', "..." when cut.
 */
static const char *
clip(char *buf, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0, n;

	while (i < len) {
		if ((n = utf8_seqlen(p + i, len - i)) == 0)
			n = 1;
		if (o + n > CLIP_BYTES) {
			memcpy(buf + o, "...", sizeof "...");
			return buf;
		}
		if (n == 1 && (p[i] < 0x20 || p[i] >= 0x7f))
			buf[o++] = '?';
		else {
			memcpy(buf + o, p + i, n);
			o += n;
		}
		i += n;
	}
	buf[o] = '\0';
	return buf;
}

/* Fill *err and return -1.  Invalid UTF-8 in the result becomes '?'. */
static int __attribute__((format(printf, 3, 4)))
fail(struct proto_error *err, const char *code, const char *fmt, ...)
{
	va_list ap;
	unsigned char *p;
	size_t len, i, n;

	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	err->code = code;

	/* vsnprintf may have cut a character, and jansson's text is raw. */
	p = (unsigned char *)err->message;
	len = strlen(err->message);
	for (i = 0; i < len; i += n) {
		if ((n = utf8_seqlen(p + i, len - i)) == 0) {
			p[i] = '?';
			n = 1;
		}
	}
	return -1;
}

/* The value of a string field as a C string: no NUL bytes inside. */
static int
cstring(struct parse *ps, const char *name, json_t *v, const char **out)
{
	const char *s;

	if (!json_is_string(v))
		return fail(ps->err, PROTO_BAD_REQUEST, "\"%s\" must be a string",
		    name);
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return fail(ps->err, PROTO_BAD_REQUEST,
		    "\"%s\" must not contain NUL bytes", name);
	*out = s;
	return 0;
}

/* Seconds: an integer or a real in 0..PROTOCOL_SECONDS_MAX. */
static int
seconds(struct parse *ps, const char *name, json_t *v, double *out)
{
	double d;

	if (!json_is_number(v))
		goto bad;
	d = json_number_value(v);
	if (!(d >= 0 && d <= PROTOCOL_SECONDS_MAX))
		goto bad;
	*out = d;
	return 0;
bad:
	return fail(ps->err, PROTO_BAD_REQUEST,
	    "\"%s\" must be a number of seconds in 0..%.0f", name,
	    PROTOCOL_SECONDS_MAX);
}

/* Record that a job kind was given; a second one is an error. */
static int
kind(struct parse *ps, enum job_kind k)
{
	if (ps->have & NEED_KIND)
		return fail(ps->err, PROTO_BAD_REQUEST,
		    "exactly one of \"argv\", \"shell\" or \"sleep\" is required");
	ps->have |= NEED_KIND;
	ps->req->job.kind = k;
	return 0;
}

static int
field_argv(struct parse *ps, const struct field *f, json_t *v)
{
	struct job_spec *job = &ps->req->job;
	json_t *elem;
	size_t i, n;

	if (kind(ps, JOB_ARGV) == -1)
		return -1;
	if (!json_is_array(v) || (n = json_array_size(v)) == 0)
		goto bad;
	json_array_foreach(v, i, elem) {
		if (!json_is_string(elem))
			goto bad;
	}

	/* Owned by the request at once, so a failure below frees it too. */
	job->argv = xcalloc(n + 1, sizeof *job->argv);
	json_array_foreach(v, i, elem) {
		if (strlen(json_string_value(elem)) != json_string_length(elem))
			return fail(ps->err, PROTO_BAD_REQUEST,
			    "\"%s[%zu]\" must not contain NUL bytes", f->name, i);
		job->argv[i] = xstrdup(json_string_value(elem));
	}
	if (*job->argv[0] == '\0')
		return fail(ps->err, PROTO_BAD_REQUEST,
		    "\"%s[0]\" must not be empty", f->name);
	return 0;
bad:
	return fail(ps->err, PROTO_BAD_REQUEST,
	    "\"%s\" must be a non-empty array of strings", f->name);
}

static int
field_shell(struct parse *ps, const struct field *f, json_t *v)
{
	const char *s;

	if (kind(ps, JOB_SHELL) == -1)
		return -1;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return fail(ps->err, PROTO_BAD_REQUEST,
		    "\"%s\" must be a non-empty string", f->name);
	if (cstring(ps, f->name, v, &s) == -1)
		return -1;
	ps->req->job.shell = xstrdup(s);
	return 0;
}

static int
field_sleep(struct parse *ps, const struct field *f, json_t *v)
{
	if (kind(ps, JOB_SLEEP) == -1)
		return -1;
	return seconds(ps, f->name, v, &ps->req->job.sleep);
}

static int
field_queue(struct parse *ps, const struct field *f, json_t *v)
{
	char **out = (char **)((char *)ps->req + f->off);
	const char *s;

	if (!json_is_string(v) || json_string_length(v) == 0)
		return fail(ps->err, PROTO_BAD_REQUEST,
		    "\"%s\" must be a non-empty string", f->name);
	if (cstring(ps, f->name, v, &s) == -1)
		return -1;
	*out = xstrdup(s);
	ps->have |= NEED_QUEUE;
	return 0;
}

static int
field_priority(struct parse *ps, const struct field *f, json_t *v)
{
	json_int_t n;

	if (!json_is_integer(v) ||
	    (n = json_integer_value(v)) < -PROTOCOL_PRIORITY_MAX ||
	    n > PROTOCOL_PRIORITY_MAX)
		return fail(ps->err, PROTO_BAD_REQUEST,
		    "\"%s\" must be an integer in %d..%d", f->name,
		    -PROTOCOL_PRIORITY_MAX, PROTOCOL_PRIORITY_MAX);
	ps->req->job.priority = n;
	return 0;
}

static int
field_seconds(struct parse *ps, const struct field *f, json_t *v)
{
	return seconds(ps, f->name, v, (double *)((char *)ps->req + f->off));
}

static int
field_env(struct parse *ps, const struct field *f, json_t *v)
{
	struct job_spec *job = &ps->req->job;
	char kbuf[CLIP_SIZE];
	const char *key, *s;
	json_t *val;
	size_t i = 0;

	if (!json_is_object(v))
		return fail(ps->err, PROTO_BAD_REQUEST,
		    "\"%s\" must be an object of strings", f->name);
	if (json_object_size(v) == 0)
		return 0;

	/* Owned by the request at once, so a failure below frees it too. */
	job->env = xcalloc(json_object_size(v) + 1, sizeof *job->env);
	json_object_foreach(v, key, val) {
		/* jansson refuses NUL bytes in keys, so key is all of it. */
		if (*key == '\0' || strchr(key, '=') != NULL)
			return fail(ps->err, PROTO_BAD_REQUEST,
			    "\"%s\" key \"%s\" must be non-empty and must not "
			    "contain '='", f->name,
			    clip(kbuf, key, strlen(key)));
		if (!json_is_string(val))
			return fail(ps->err, PROTO_BAD_REQUEST,
			    "\"%s.%s\" must be a string", f->name,
			    clip(kbuf, key, strlen(key)));
		s = json_string_value(val);
		if (strlen(s) != json_string_length(val))
			return fail(ps->err, PROTO_BAD_REQUEST,
			    "\"%s.%s\" must not contain NUL bytes", f->name,
			    clip(kbuf, key, strlen(key)));
		xasprintf(&job->env[i++], "%s=%s", key, s);
	}
	return 0;
}

static int
field_cwd(struct parse *ps, const struct field *f, json_t *v)
{
	const char *s;

	if (cstring(ps, f->name, v, &s) == -1)
		return -1;
	if (*s != '/')
		return fail(ps->err, PROTO_BAD_REQUEST,
		    "\"%s\" must be an absolute path", f->name);
	ps->req->job.cwd = xstrdup(s);
	return 0;
}

static int
field_stdin(struct parse *ps, const struct field *f, json_t *v)
{
	struct job_spec *job = &ps->req->job;

	if (!json_is_string(v))
		return fail(ps->err, PROTO_BAD_REQUEST,
		    "\"%s\" must be a string", f->name);
	/* Bytes, not a C string: NUL may be among them. */
	job->stdin_len = json_string_length(v);
	job->stdin_data = xmemdup(json_string_value(v), job->stdin_len);
	return 0;
}

static int
field_string(struct parse *ps, const struct field *f, json_t *v)
{
	char **out = (char **)((char *)ps->req + f->off);
	const char *s;

	if (cstring(ps, f->name, v, &s) == -1)
		return -1;
	*out = xstrdup(s);
	return 0;
}

static int
field_bool(struct parse *ps, const struct field *f, json_t *v)
{
	int *out = (int *)((char *)ps->req + f->off);

	if (!json_is_boolean(v))
		return fail(ps->err, PROTO_BAD_REQUEST,
		    "\"%s\" must be true or false", f->name);
	*out = json_is_true(v);
	return 0;
}

static int
field_id(struct parse *ps, const struct field *f, json_t *v)
{
	if (!json_is_integer(v) || json_integer_value(v) <= 0)
		return fail(ps->err, PROTO_BAD_REQUEST,
		    "\"%s\" must be a positive integer", f->name);
	ps->req->id = (uint64_t)json_integer_value(v);
	ps->have |= NEED_ID;
	return 0;
}

static int
field_state(struct parse *ps, const struct field *f, json_t *v)
{
	int state = -1;

	/* A NUL inside makes the C string shorter than the value: no match. */
	if (json_is_string(v) &&
	    strlen(json_string_value(v)) == json_string_length(v))
		state = protocol_state_parse(json_string_value(v));
	if (state == -1)
		return fail(ps->err, PROTO_BAD_REQUEST,
		    "\"%s\" must be one of queued, running, succeeded, failed, "
		    "timed_out, canceled", f->name);
	ps->req->state = state;
	return 0;
}

static int
field_limit(struct parse *ps, const struct field *f, json_t *v)
{
	json_int_t n;

	if (!json_is_integer(v) || (n = json_integer_value(v)) < 1 ||
	    n > PROTOCOL_LIMIT_MAX)
		return fail(ps->err, PROTO_BAD_REQUEST,
		    "\"%s\" must be an integer in 1..%d", f->name,
		    PROTOCOL_LIMIT_MAX);
	ps->req->limit = (long)n;
	return 0;
}

/* The table entry for key in op, or NULL when op does not take it. */
static const struct field *
field_find(enum op op, const char *key)
{
	size_t i;

	for (i = 0; i < sizeof field_table / sizeof field_table[0]; i++) {
		if ((field_table[i].ops & OPBIT(op)) &&
		    strcmp(field_table[i].name, key) == 0)
			return &field_table[i];
	}
	return NULL;
}

/*
 * The name of the key a JSON_REJECT_DUPLICATES parse stopped at.  jansson
 * reports the position just after the key's closing quote; walk back to the
 * opening one (the first quote not escaped by an odd run of backslashes)
 * and decode the literal.  NULL when that does not work out.
 */
static const char *
dup_key(char *buf, const char *line, size_t len, const json_error_t *jerr)
{
	json_t *lit = NULL;
	const char *out = NULL;
	size_t end, start, bs;

	if (jerr->position < 2 || (size_t)jerr->position > len ||
	    line[jerr->position - 1] != '"')
		goto done;
	end = (size_t)jerr->position - 1;
	for (start = end; start-- > 0;) {
		if (line[start] != '"')
			continue;
		for (bs = 0; bs < start && line[start - bs - 1] == '\\'; bs++)
			;
		if (bs % 2 == 0)
			break;
	}
	if (start == (size_t)-1)
		goto done;
	lit = json_loadb(line + start, end - start + 1, JSON_DECODE_ANY, NULL);
	if (lit != NULL && json_is_string(lit))
		out = clip(buf, json_string_value(lit), json_string_length(lit));
done:
	json_decref(lit);
	return out;
}

/* What parse leaves in a request before reading the fields. */
static void
request_init(struct request *req)
{
	memset(req, 0, sizeof *req);
	req->job.timeout = -1;
	req->block_timeout = -1;
	req->timeout = -1;
	req->state = -1;
	req->limit = PROTOCOL_LIMIT_DEFAULT;
}

/*
 * Parse: load the line (rejecting duplicate keys, allowing \u0000 for
 * stdin), keep the tag, find the op, reject unknown fields before looking
 * at any value (a typo is the most useful thing to report), then hand each
 * value to its field's parser and check what the op needs.  A null value is
 * skipped entirely: it counts as absent, for unknown names too.
 */
int
protocol_parse(const char *line, size_t len, struct request *req,
    struct proto_error *err)
{
	struct parse ps = { req, err, 0 };
	const struct field *f;
	char nbuf[CLIP_SIZE], obuf[CLIP_SIZE];
	const char *key, *opname, *dup = NULL;
	json_error_t jerr;
	json_t *root, *v, *tag;
	size_t i;
	int r = -1;

	request_init(req);
	err->code = NULL;
	err->message[0] = '\0';

	root = json_loadb(line, len,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (root == NULL && json_error_code(&jerr) == json_error_duplicate_key) {
		/*
		 * Valid JSON but for a repeated key: that is a bad request
		 * naming the key.  Load it again to find the tag to echo; if
		 * this fails, something else is wrong further on.
		 */
		if ((dup = dup_key(nbuf, line, len, &jerr)) == NULL)
			dup = "?";
		root = json_loadb(line, len, JSON_DECODE_ANY | JSON_ALLOW_NUL,
		    &jerr);
	}
	if (root == NULL) {
		fail(err, PROTO_BAD_JSON, "invalid JSON: %s at column %d",
		    jerr.text, jerr.column);
		goto out;
	}
	if (!json_is_object(root)) {
		fail(err, PROTO_BAD_REQUEST, "request must be a JSON object");
		goto out;
	}
	if ((tag = json_object_get(root, "tag")) != NULL)
		req->tag = json_incref(tag);	/* outlives root */
	if (dup != NULL) {
		fail(err, PROTO_BAD_REQUEST, "duplicate field \"%s\"", dup);
		goto out;
	}

	v = json_object_get(root, "op");
	if (v == NULL || json_is_null(v)) {
		fail(err, PROTO_BAD_REQUEST, "\"op\" is required");
		goto out;
	}
	if (!json_is_string(v)) {
		fail(err, PROTO_BAD_REQUEST, "\"op\" must be a string");
		goto out;
	}
	opname = json_string_value(v);
	for (i = 0; i < OP__COUNT; i++) {
		if (strlen(op_table[i].name) == json_string_length(v) &&
		    strcmp(op_table[i].name, opname) == 0)
			break;
	}
	if (i == OP__COUNT) {
		fail(err, PROTO_UNKNOWN_OP, "unknown op \"%s\"",
		    clip(obuf, opname, json_string_length(v)));
		goto out;
	}
	req->op = (enum op)i;

	json_object_foreach(root, key, v) {
		if (json_is_null(v) || strcmp(key, "op") == 0 ||
		    strcmp(key, "tag") == 0)
			continue;
		if (field_find(req->op, key) == NULL) {
			fail(err, PROTO_BAD_REQUEST,
			    "unknown field \"%s\" for op \"%s\"",
			    clip(nbuf, key, strlen(key)), op_table[req->op].name);
			goto out;
		}
	}
	json_object_foreach(root, key, v) {
		if (json_is_null(v) || strcmp(key, "op") == 0 ||
		    strcmp(key, "tag") == 0)
			continue;
		f = field_find(req->op, key);
		if (f->parse(&ps, f, v) == -1)
			goto out;
	}

	if ((op_table[req->op].need & NEED_KIND) && !(ps.have & NEED_KIND)) {
		fail(err, PROTO_BAD_REQUEST,
		    "exactly one of \"argv\", \"shell\" or \"sleep\" is required");
		goto out;
	}
	if ((op_table[req->op].need & NEED_ID) && !(ps.have & NEED_ID)) {
		fail(err, PROTO_BAD_REQUEST, "\"id\" is required");
		goto out;
	}
	if ((op_table[req->op].need & NEED_QUEUE) && !(ps.have & NEED_QUEUE)) {
		fail(err, PROTO_BAD_REQUEST, "\"queue\" is required");
		goto out;
	}
	if (req->op == OP_SUBMIT && req->job.queue == NULL)
		req->job.queue = xstrdup("default");
	r = 0;
out:
	if (r == -1) {
		/* Keep only the tag, for the error line. */
		tag = req->tag;
		req->tag = NULL;
		protocol_request_clear(req);
		req->tag = tag;
	}
	json_decref(root);
	return r;
}

void
protocol_job_spec_clear(struct job_spec *job)
{
	strv_free(job->argv);
	free(job->shell);
	free(job->queue);
	strv_free(job->env);
	free(job->cwd);
	free(job->stdin_data);
	free(job->name);
	memset(job, 0, sizeof *job);
}

void
protocol_request_clear(struct request *req)
{
	protocol_job_spec_clear(&req->job);
	free(req->queue);
	json_decref(req->tag);
	memset(req, 0, sizeof *req);
}

/* A growing buffer for json_dump_callback. */
struct line {
	char	*buf;
	size_t	 len;
	size_t	 size;
};

static int
line_add(const char *s, size_t n, void *arg)
{
	struct line *l = arg;

	/* Room for n bytes, then the '\n' and the NUL. */
	if (n > l->size - l->len - 2) {
		while (n > l->size - l->len - 2)
			l->size *= 2;
		l->buf = xreallocarray(l->buf, l->size, 1);
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return 0;
}

/*
 * Serialize o (consumed) as one line.  Compact output has no whitespace,
 * and jansson escapes control characters inside strings, so the '\n' added
 * here is the only one.  Fails only when jansson runs out of memory.
 */
static char *
line_dump(json_t *o, size_t *lenp)
{
	struct line l;

	l.size = 256;
	l.len = 0;
	l.buf = xmalloc(l.size);
	if (json_dump_callback(o, line_add, &l, DUMP_FLAGS) == -1)
		protocol_abort();
	json_decref(o);
	l.buf[l.len++] = '\n';
	l.buf[l.len] = '\0';
	if (lenp != NULL)
		*lenp = l.len;
	return l.buf;
}

/* A JSON string of s, with any invalid UTF-8 replaced by U+FFFD. */
static json_t *
json_string_fixed(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	json_t *v;
	char *copy;
	size_t len, i, o, n;

	if ((v = json_string(s)) != NULL)
		return v;
	len = strlen(s);
	copy = xreallocarray(NULL, len + 1, 3);
	for (i = o = 0; i < len; i += n) {
		if ((n = utf8_seqlen(p + i, len - i)) == 0) {
			memcpy(copy + o, "\xef\xbf\xbd", 3);
			o += 3;
			n = 1;
		} else {
			memcpy(copy + o, p + i, n);
			o += n;
		}
	}
	copy[o] = '\0';
	v = jcheck(json_string(copy));
	free(copy);
	return v;
}

/*
 * fields must be an object (a caller's broken invariant otherwise).  Its
 * "ok" and "tag" members are ours and are left out.  The tag is borrowed:
 * taking a reference changes only its count, hence the cast.
 */
char *
protocol_ok(json_t *fields, const json_t *tag, size_t *lenp)
{
	json_t *o, *v;
	const char *key;

	o = jcheck(json_object());
	jset_new(o, "ok", json_true());
	if (fields != NULL) {
		if (!json_is_object(fields))
			protocol_abort();
		json_object_foreach(fields, key, v) {
			if (strcmp(key, "ok") != 0 && strcmp(key, "tag") != 0)
				jset_new(o, key, json_incref(v));
		}
		json_decref(fields);
	}
	if (tag != NULL)
		jset_new(o, "tag", json_incref((json_t *)tag));
	return line_dump(o, lenp);
}

char *
protocol_error(const char *code, const char *message, const json_t *tag,
    size_t *lenp)
{
	json_t *o, *e;

	e = jcheck(json_object());
	jset_new(e, "code", json_string_fixed(code != NULL ? code :
	    PROTO_INTERNAL));
	jset_new(e, "message", json_string_fixed(message != NULL ? message :
	    ""));
	o = jcheck(json_object());
	jset_new(o, "ok", json_false());
	jset_new(o, "error", e);
	if (tag != NULL)
		jset_new(o, "tag", json_incref((json_t *)tag));
	return line_dump(o, lenp);
}

const char *
protocol_op_name(enum op op)
{
	if ((unsigned)op >= OP__COUNT)
		return "unknown";
	return op_table[op].name;
}

const char *
protocol_state_name(enum job_state state)
{
	if ((unsigned)state >= JOB__STATES)
		return "unknown";
	return state_table[state];
}

int
protocol_state_parse(const char *s)
{
	int i;

	for (i = 0; i < JOB__STATES; i++) {
		if (strcmp(state_table[i], s) == 0)
			return i;
	}
	return -1;
}

int
protocol_state_final(enum job_state state)
{
	switch (state) {
	case JOB_SUCCEEDED:
	case JOB_FAILED:
	case JOB_TIMED_OUT:
	case JOB_CANCELED:
		return 1;
	default:
		return 0;
	}
}
