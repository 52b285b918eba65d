/*
 * check_protocol: the protocol module on its own.  Request lines go through
 * protocol_parse and every error must come back with the right code and a
 * message naming the field; every error and ok line must end with exactly
 * one '\n' and parse back as JSON.  A last test feeds mutated requests to
 * the parser (fixed seed) to show it never crashes and always explains a
 * failure.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "protocol.h"

/* Turn a response line back into JSON; it must be one line, '\n'-ended. */
static json_t *
reload_line(const char *line, size_t len)
{
	json_error_t jerr;
	json_t *o;

	ck_assert_uint_eq(strlen(line), len);
	ck_assert_uint_ge(len, 2);
	ck_assert_int_eq(line[len - 1], '\n');
	ck_assert_ptr_eq(memchr(line, '\n', len), line + len - 1);
	o = json_loadb(line, len - 1, JSON_ALLOW_NUL, &jerr);
	ck_assert_msg(o != NULL, "response does not parse: %s: %s", jerr.text,
	    line);
	ck_assert(json_is_object(o));
	return o;
}

/* The error line for a failed parse must echo the tag and parse back. */
static void
check_error_line(const struct proto_error *err, const json_t *tag)
{
	json_t *o, *e;
	size_t len;
	char *line;

	line = protocol_error(err->code, err->message, tag, &len);
	o = reload_line(line, len);
	ck_assert(json_is_false(json_object_get(o, "ok")));
	e = json_object_get(o, "error");
	ck_assert_str_eq(json_string_value(json_object_get(e, "code")),
	    err->code);
	ck_assert(json_is_string(json_object_get(e, "message")));
	if (tag == NULL)
		ck_assert_ptr_null(json_object_get(o, "tag"));
	else
		ck_assert(json_equal(json_object_get(o, "tag"), tag));
	json_decref(o);
	free(line);
}

static void
parse_okn(const char *line, size_t len, struct request *req)
{
	struct proto_error err;
	int r;

	r = protocol_parse(line, len, req, &err);
	ck_assert_msg(r == 0, "%.*s: %s: %s", (int)len, line,
	    err.code != NULL ? err.code : "(null)", err.message);
}

static void
parse_ok(const char *line, struct request *req)
{
	parse_okn(line, strlen(line), req);
}

/* Parse must fail with code and a message holding needle. */
static void
parse_badn(const char *line, size_t len, const char *code, const char *needle)
{
	struct request req;
	struct proto_error err;
	int r;

	r = protocol_parse(line, len, &req, &err);
	ck_assert_msg(r == -1, "%.*s: parsed", (int)len, line);
	ck_assert_msg(err.code != NULL && strcmp(err.code, code) == 0,
	    "%.*s: code %s, want %s (%s)", (int)len, line,
	    err.code != NULL ? err.code : "(null)", code, err.message);
	ck_assert_msg(strstr(err.message, needle) != NULL,
	    "%.*s: message \"%s\" lacks %s", (int)len, line, err.message,
	    needle);
	check_error_line(&err, req.tag);
	protocol_request_clear(&req);
}

static void
parse_bad(const char *line, const char *code, const char *needle)
{
	parse_badn(line, strlen(line), code, needle);
}

/* ---- each op with all its fields ---- */

START_TEST(test_ping)
{
	struct request req;

	parse_ok("{\"op\":\"ping\"}", &req);
	ck_assert_int_eq(req.op, OP_PING);
	ck_assert_ptr_null(req.tag);
	protocol_request_clear(&req);

	parse_ok(" \t{ \"op\" : \"ping\" }\r ", &req);
	ck_assert_int_eq(req.op, OP_PING);
	protocol_request_clear(&req);
}
END_TEST

START_TEST(test_submit_argv_all)
{
	struct request req;
	struct job_spec *job = &req.job;

	parse_ok("{\"op\":\"submit\",\"argv\":[\"tar\",\"czf\",\"x y\"],"
	    "\"queue\":\"batch\",\"priority\":-5,\"timeout\":1.5,"
	    "\"env\":{\"A\":\"1\",\"B\":\"x=y\",\"C\":\"\"},\"cwd\":\"/tmp\","
	    "\"stdin\":\"hello\\n\",\"name\":\"nightly\",\"nowait\":true,"
	    "\"block_timeout\":2,\"tag\":{\"k\":[1]}}", &req);
	ck_assert_int_eq(req.op, OP_SUBMIT);
	ck_assert_int_eq(job->kind, JOB_ARGV);
	ck_assert_ptr_nonnull(job->argv);
	ck_assert_str_eq(job->argv[0], "tar");
	ck_assert_str_eq(job->argv[1], "czf");
	ck_assert_str_eq(job->argv[2], "x y");
	ck_assert_ptr_null(job->argv[3]);
	ck_assert_ptr_null(job->shell);
	ck_assert_str_eq(job->queue, "batch");
	ck_assert_int_eq(job->priority, -5);
	ck_assert_double_eq(job->timeout, 1.5);
	ck_assert_str_eq(job->env[0], "A=1");
	ck_assert_str_eq(job->env[1], "B=x=y");
	ck_assert_str_eq(job->env[2], "C=");
	ck_assert_ptr_null(job->env[3]);
	ck_assert_str_eq(job->cwd, "/tmp");
	ck_assert_uint_eq(job->stdin_len, 6);
	ck_assert_mem_eq(job->stdin_data, "hello\n", 6);
	ck_assert_str_eq(job->name, "nightly");
	ck_assert_int_eq(req.nowait, 1);
	ck_assert_double_eq(req.block_timeout, 2.0);
	ck_assert(json_is_object(req.tag));
	ck_assert_ptr_null(req.queue);
	protocol_request_clear(&req);
}
END_TEST

START_TEST(test_submit_defaults)
{
	struct request req;
	struct job_spec *job = &req.job;

	parse_ok("{\"op\":\"submit\",\"argv\":[\"true\"]}", &req);
	ck_assert_str_eq(job->queue, "default");
	ck_assert_int_eq(job->priority, 0);
	ck_assert_double_lt(job->timeout, 0);
	ck_assert_double_lt(req.block_timeout, 0);
	ck_assert_ptr_null(job->env);
	ck_assert_ptr_null(job->cwd);
	ck_assert_ptr_null(job->stdin_data);
	ck_assert_uint_eq(job->stdin_len, 0);
	ck_assert_ptr_null(job->name);
	ck_assert_int_eq(req.nowait, 0);
	protocol_request_clear(&req);

	/* An empty env is no env; false is a boolean. */
	parse_ok("{\"op\":\"submit\",\"argv\":[\"true\"],\"env\":{},"
	    "\"nowait\":false,\"timeout\":0}", &req);
	ck_assert_ptr_null(job->env);
	ck_assert_int_eq(req.nowait, 0);
	ck_assert_double_eq(job->timeout, 0);
	protocol_request_clear(&req);
}
END_TEST

START_TEST(test_submit_shell_sleep)
{
	struct request req;

	parse_ok("{\"op\":\"submit\",\"shell\":\"echo hi | wc -c\"}", &req);
	ck_assert_int_eq(req.job.kind, JOB_SHELL);
	ck_assert_str_eq(req.job.shell, "echo hi | wc -c");
	ck_assert_ptr_null(req.job.argv);
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"submit\",\"sleep\":0.25}", &req);
	ck_assert_int_eq(req.job.kind, JOB_SLEEP);
	ck_assert_double_eq(req.job.sleep, 0.25);
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"submit\",\"sleep\":0}", &req);
	ck_assert_int_eq(req.job.kind, JOB_SLEEP);
	ck_assert_double_eq(req.job.sleep, 0);
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"submit\",\"sleep\":3}", &req);
	ck_assert_double_eq(req.job.sleep, 3);
	protocol_request_clear(&req);
}
END_TEST

START_TEST(test_id_ops)
{
	struct request req;

	parse_ok("{\"op\":\"get\",\"id\":42}", &req);
	ck_assert_int_eq(req.op, OP_GET);
	ck_assert_uint_eq(req.id, 42);
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"cancel\",\"id\":7}", &req);
	ck_assert_int_eq(req.op, OP_CANCEL);
	ck_assert_uint_eq(req.id, 7);
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"wait\",\"id\":9223372036854775807,\"timeout\":2.5}",
	    &req);
	ck_assert_int_eq(req.op, OP_WAIT);
	ck_assert_uint_eq(req.id, INT64_MAX);
	ck_assert_double_eq(req.timeout, 2.5);
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"wait\",\"id\":1}", &req);
	ck_assert_uint_eq(req.id, 1);
	ck_assert_double_lt(req.timeout, 0);
	protocol_request_clear(&req);
}
END_TEST

START_TEST(test_join)
{
	struct request req;

	parse_ok("{\"op\":\"join\",\"queue\":\"q\",\"timeout\":10}", &req);
	ck_assert_int_eq(req.op, OP_JOIN);
	ck_assert_str_eq(req.queue, "q");
	ck_assert_double_eq(req.timeout, 10);
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"join\"}", &req);
	ck_assert_ptr_null(req.queue);
	ck_assert_double_lt(req.timeout, 0);
	protocol_request_clear(&req);
}
END_TEST

START_TEST(test_list)
{
	struct request req;

	parse_ok("{\"op\":\"list\",\"queue\":\"q\",\"state\":\"timed_out\","
	    "\"limit\":5}", &req);
	ck_assert_int_eq(req.op, OP_LIST);
	ck_assert_str_eq(req.queue, "q");
	ck_assert_int_eq(req.state, JOB_TIMED_OUT);
	ck_assert_int_eq(req.limit, 5);
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"list\"}", &req);
	ck_assert_ptr_null(req.queue);
	ck_assert_int_eq(req.state, -1);
	ck_assert_int_eq(req.limit, PROTOCOL_LIMIT_DEFAULT);
	protocol_request_clear(&req);
}
END_TEST

START_TEST(test_list_states)
{
	static const char *const names[] = { "queued", "running", "succeeded",
	    "failed", "timed_out", "canceled" };
	struct request req;
	char line[128];
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(line, sizeof line, "{\"op\":\"list\",\"state\":\"%s\"}",
		    names[i]);
		parse_ok(line, &req);
		ck_assert_int_eq(req.state, (int)i);
		protocol_request_clear(&req);
	}
}
END_TEST

START_TEST(test_plain_ops)
{
	struct request req;

	parse_ok("{\"op\":\"stats\"}", &req);
	ck_assert_int_eq(req.op, OP_STATS);
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"reload\"}", &req);
	ck_assert_int_eq(req.op, OP_RELOAD);
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"pause\",\"queue\":\"default\"}", &req);
	ck_assert_int_eq(req.op, OP_PAUSE);
	ck_assert_str_eq(req.queue, "default");
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"resume\",\"queue\":\"b\"}", &req);
	ck_assert_int_eq(req.op, OP_RESUME);
	ck_assert_str_eq(req.queue, "b");
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"subscribe\"}", &req);
	ck_assert_int_eq(req.op, OP_SUBSCRIBE);
	ck_assert_ptr_null(req.queue);
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"subscribe\",\"queue\":\"b\"}", &req);
	ck_assert_str_eq(req.queue, "b");
	protocol_request_clear(&req);
}
END_TEST

/* The line need not end in a NUL: bytes past len are not read. */
START_TEST(test_not_terminated)
{
	static const char buf[] = "{\"op\":\"ping\"}garbage";
	struct request req;

	parse_okn(buf, strlen("{\"op\":\"ping\"}"), &req);
	ck_assert_int_eq(req.op, OP_PING);
	protocol_request_clear(&req);
}
END_TEST

/* ---- op, shape, JSON ---- */

START_TEST(test_op_errors)
{
	parse_bad("{}", PROTO_BAD_REQUEST, "\"op\"");
	parse_bad("{\"tag\":1}", PROTO_BAD_REQUEST, "\"op\"");
	parse_bad("{\"op\":null}", PROTO_BAD_REQUEST, "\"op\"");
	parse_bad("{\"op\":1}", PROTO_BAD_REQUEST, "\"op\"");
	parse_bad("{\"op\":[\"ping\"]}", PROTO_BAD_REQUEST, "\"op\"");
	parse_bad("{\"op\":true}", PROTO_BAD_REQUEST, "\"op\"");
	parse_bad("{\"op\":\"frob\"}", PROTO_UNKNOWN_OP, "\"frob\"");
	parse_bad("{\"op\":\"\"}", PROTO_UNKNOWN_OP, "unknown op");
	parse_bad("{\"op\":\"PING\"}", PROTO_UNKNOWN_OP, "\"PING\"");
	/* A NUL inside: not "ping", and shown without cutting the message. */
	parse_bad("{\"op\":\"ping\\u0000x\"}", PROTO_UNKNOWN_OP, "\"ping?x\"");
}
END_TEST

START_TEST(test_unknown_op_clipped)
{
	struct request req;
	struct proto_error err;
	char line[600];
	int n;

	/* A long name with multi-byte characters is cut at a boundary. */
	n = snprintf(line, sizeof line, "{\"op\":\"");
	while (n < 400)
		n += snprintf(line + n, sizeof line - n, "\xc3\xa9x");
	n += snprintf(line + n, sizeof line - n, "\"}");
	ck_assert_int_eq(protocol_parse(line, (size_t)n, &req, &err), -1);
	ck_assert_str_eq(err.code, PROTO_UNKNOWN_OP);
	ck_assert_ptr_nonnull(strstr(err.message, "...\""));
	ck_assert_uint_lt(strlen(err.message), 100);
	check_error_line(&err, req.tag);
	protocol_request_clear(&req);
}
END_TEST

START_TEST(test_not_object)
{
	parse_bad("[]", PROTO_BAD_REQUEST, "object");
	parse_bad("[{\"op\":\"ping\"}]", PROTO_BAD_REQUEST, "object");
	parse_bad("42", PROTO_BAD_REQUEST, "object");
	parse_bad("-1.5", PROTO_BAD_REQUEST, "object");
	parse_bad("\"ping\"", PROTO_BAD_REQUEST, "object");
	parse_bad("true", PROTO_BAD_REQUEST, "object");
	parse_bad("null", PROTO_BAD_REQUEST, "object");
}
END_TEST

START_TEST(test_bad_json)
{
	parse_bad("{", PROTO_BAD_JSON, "invalid JSON: ");
	parse_bad("", PROTO_BAD_JSON, "column");
	parse_bad("   ", PROTO_BAD_JSON, "column");
	parse_bad("{\"op\":}", PROTO_BAD_JSON, "column 7");
	parse_bad("{\"op\":\"ping\"} {}", PROTO_BAD_JSON, "invalid JSON: ");
	parse_bad("{\"op\":\"ping\",}", PROTO_BAD_JSON, "invalid JSON: ");
	parse_bad("{'op':'ping'}", PROTO_BAD_JSON, "invalid JSON: ");
	parse_bad("{\"op\":\"pi\nng\"}", PROTO_BAD_JSON, "invalid JSON: ");
	parse_bad("{\"op\":\"\xff\"}", PROTO_BAD_JSON, "invalid JSON: ");
	parse_bad("{\"op\":\"\xc3\"}", PROTO_BAD_JSON, "invalid JSON: ");
	parse_bad("{\"op\":\"\\ud800\"}", PROTO_BAD_JSON, "invalid JSON: ");
	parse_bad("{\"a\\u0000\":1}", PROTO_BAD_JSON, "invalid JSON: ");
	/* Integers beyond 64 bits are not representable: jansson refuses. */
	parse_bad("{\"op\":\"get\",\"id\":99999999999999999999}", PROTO_BAD_JSON,
	    "invalid JSON: ");
	parse_badn("{\"op\":\0\"ping\"}", 14, PROTO_BAD_JSON, "invalid JSON: ");
}
END_TEST

START_TEST(test_duplicate_key)
{
	struct request req;
	struct proto_error err;
	static const char line[] =
	    "{\"op\":\"submit\",\"tag\":5,\"priority\":1,\"argv\":[\"x\"],"
	    "\"priority\":2}";

	parse_bad("{\"op\":\"ping\",\"op\":\"stats\"}", PROTO_BAD_REQUEST,
	    "duplicate field \"op\"");
	parse_bad("{\"op\":\"submit\",\"argv\":[\"x\"],\"env\":{\"A\":\"1\","
	    "\"A\":\"2\"}}", PROTO_BAD_REQUEST, "\"A\"");
	parse_bad("{\"op\":\"ping\",\"q\\\"\\\\\":1,\"q\\\"\\\\\":2}",
	    PROTO_BAD_REQUEST, "duplicate field \"q\"\\\"");
	/* Other trouble after the duplicate: not JSON after all. */
	parse_bad("{\"op\":\"ping\",\"op\":\"ping\",", PROTO_BAD_JSON,
	    "invalid JSON");

	ck_assert_int_eq(protocol_parse(line, strlen(line), &req, &err), -1);
	ck_assert_str_eq(err.code, PROTO_BAD_REQUEST);
	ck_assert_str_eq(err.message, "duplicate field \"priority\"");
	ck_assert(json_integer_value(req.tag) == 5);
	protocol_request_clear(&req);
}
END_TEST

/* ---- fields ---- */

struct unknown {
	const char	*line;
	const char	*message;
};

static const struct unknown unknowns[] = {
	{ "{\"op\":\"submit\",\"argv\":[\"x\"],\"priorty\":1}",
	  "unknown field \"priorty\" for op \"submit\"" },
	{ "{\"op\":\"submit\",\"argv\":[\"x\"],\"id\":1}",
	  "unknown field \"id\" for op \"submit\"" },
	{ "{\"op\":\"submit\",\"argv\":[\"x\"],\"state\":\"queued\"}",
	  "unknown field \"state\" for op \"submit\"" },
	{ "{\"op\":\"submit\",\"argv\":[\"x\"],\"limit\":1}",
	  "unknown field \"limit\" for op \"submit\"" },
	{ "{\"op\":\"ping\",\"id\":1}", "unknown field \"id\" for op \"ping\"" },
	{ "{\"op\":\"get\",\"id\":1,\"timeout\":1}",
	  "unknown field \"timeout\" for op \"get\"" },
	{ "{\"op\":\"get\",\"id\":1,\"queue\":\"q\"}",
	  "unknown field \"queue\" for op \"get\"" },
	{ "{\"op\":\"wait\",\"id\":1,\"queue\":\"q\"}",
	  "unknown field \"queue\" for op \"wait\"" },
	{ "{\"op\":\"join\",\"id\":1}", "unknown field \"id\" for op \"join\"" },
	{ "{\"op\":\"cancel\",\"id\":1,\"timeout\":1}",
	  "unknown field \"timeout\" for op \"cancel\"" },
	{ "{\"op\":\"list\",\"timeout\":1}",
	  "unknown field \"timeout\" for op \"list\"" },
	{ "{\"op\":\"list\",\"shell\":\"x\"}",
	  "unknown field \"shell\" for op \"list\"" },
	{ "{\"op\":\"stats\",\"queue\":\"q\"}",
	  "unknown field \"queue\" for op \"stats\"" },
	{ "{\"op\":\"pause\",\"queue\":\"q\",\"id\":1}",
	  "unknown field \"id\" for op \"pause\"" },
	{ "{\"op\":\"resume\",\"queue\":\"q\",\"timeout\":1}",
	  "unknown field \"timeout\" for op \"resume\"" },
	{ "{\"op\":\"subscribe\",\"state\":\"queued\"}",
	  "unknown field \"state\" for op \"subscribe\"" },
	{ "{\"op\":\"reload\",\"queue\":\"q\"}",
	  "unknown field \"queue\" for op \"reload\"" },
	{ "{\"op\":\"ping\",\"Op\":\"ping\"}",
	  "unknown field \"Op\" for op \"ping\"" },
	/* Unknown names are reported before a bad value that comes first. */
	{ "{\"op\":\"submit\",\"priority\":\"x\",\"priorty\":1}",
	  "unknown field \"priorty\" for op \"submit\"" },
	{ "{\"op\":\"ping\",\"a\\nb\":1}", "unknown field \"a?b\" for op \"ping\"" },
};

START_TEST(test_unknown_field)
{
	const struct unknown *u = &unknowns[_i];
	struct request req;
	struct proto_error err;

	ck_assert_int_eq(protocol_parse(u->line, strlen(u->line), &req, &err),
	    -1);
	ck_assert_str_eq(err.code, PROTO_BAD_REQUEST);
	ck_assert_str_eq(err.message, u->message);
	check_error_line(&err, req.tag);
	protocol_request_clear(&req);
}
END_TEST

/* Wrong types and values for every field: the message names the field. */
struct badfield {
	const char	*line;
	const char	*needle;
};

#define SUB	"{\"op\":\"submit\",\"argv\":[\"x\"],"
#define SUBK	"{\"op\":\"submit\","

static const struct badfield badfields[] = {
	{ SUBK "\"argv\":\"ls\"}",		"\"argv\" must be a non-empty array of strings" },
	{ SUBK "\"argv\":[]}",			"\"argv\" must be a non-empty array of strings" },
	{ SUBK "\"argv\":[1]}",			"\"argv\" must be a non-empty array of strings" },
	{ SUBK "\"argv\":[\"a\",null]}",	"\"argv\" must be a non-empty array of strings" },
	{ SUBK "\"argv\":{}}",			"\"argv\" must be a non-empty array of strings" },
	{ SUBK "\"argv\":true}",		"\"argv\"" },
	{ SUBK "\"argv\":[\"\"]}",		"\"argv[0]\"" },
	{ SUBK "\"argv\":[\"a\",\"b\\u0000c\"]}", "\"argv[1]\" must not contain NUL" },
	{ SUBK "\"shell\":1}",			"\"shell\" must be a non-empty string" },
	{ SUBK "\"shell\":\"\"}",		"\"shell\" must be a non-empty string" },
	{ SUBK "\"shell\":[\"ls\"]}",		"\"shell\"" },
	{ SUBK "\"shell\":\"a\\u0000\"}",	"\"shell\" must not contain NUL" },
	{ SUBK "\"sleep\":\"1\"}",		"\"sleep\" must be a number" },
	{ SUBK "\"sleep\":-1}",			"\"sleep\"" },
	{ SUBK "\"sleep\":-0.001}",		"\"sleep\"" },
	{ SUBK "\"sleep\":true}",		"\"sleep\"" },
	{ SUBK "\"sleep\":31536000.5}",		"\"sleep\"" },
	{ SUBK "\"sleep\":1e300}",		"\"sleep\"" },
	{ SUB "\"queue\":1}",			"\"queue\" must be a non-empty string" },
	{ SUB "\"queue\":\"\"}",		"\"queue\" must be a non-empty string" },
	{ SUB "\"queue\":[\"q\"]}",		"\"queue\"" },
	{ SUB "\"queue\":\"q\\u0000\"}",	"\"queue\" must not contain NUL" },
	{ SUB "\"priority\":1.0}",		"\"priority\" must be an integer in -1000000..1000000" },
	{ SUB "\"priority\":\"1\"}",		"\"priority\" must be an integer" },
	{ SUB "\"priority\":true}",		"\"priority\"" },
	{ SUB "\"priority\":1000001}",		"\"priority\"" },
	{ SUB "\"priority\":-1000001}",		"\"priority\"" },
	{ SUB "\"priority\":9223372036854775807}", "\"priority\"" },
	{ SUB "\"timeout\":\"1\"}",		"\"timeout\" must be a number" },
	{ SUB "\"timeout\":-0.5}",		"\"timeout\"" },
	{ SUB "\"timeout\":false}",		"\"timeout\"" },
	{ SUB "\"timeout\":31536001}",		"\"timeout\"" },
	{ SUB "\"env\":[]}",			"\"env\" must be an object" },
	{ SUB "\"env\":\"A=1\"}",		"\"env\" must be an object" },
	{ SUB "\"env\":1}",			"\"env\"" },
	{ SUB "\"env\":{\"FOO\":1}}",		"\"env.FOO\" must be a string" },
	{ SUB "\"env\":{\"A\":\"x\",\"FOO\":null}}", "\"env.FOO\" must be a string" },
	{ SUB "\"env\":{\"FOO\":[\"x\"]}}",	"\"env.FOO\"" },
	{ SUB "\"env\":{\"FOO\":\"a\\u0000b\"}}", "\"env.FOO\" must not contain NUL" },
	{ SUB "\"env\":{\"A=B\":\"x\"}}",	"\"env\" key \"A=B\"" },
	{ SUB "\"env\":{\"\":\"x\"}}",		"\"env\" key \"\"" },
	{ SUB "\"cwd\":1}",			"\"cwd\" must be a string" },
	{ SUB "\"cwd\":\"tmp\"}",		"\"cwd\" must be an absolute path" },
	{ SUB "\"cwd\":\"\"}",			"\"cwd\" must be an absolute path" },
	{ SUB "\"cwd\":\"/a\\u0000b\"}",	"\"cwd\" must not contain NUL" },
	{ SUB "\"stdin\":1}",			"\"stdin\" must be a string" },
	{ SUB "\"stdin\":[\"x\"]}",		"\"stdin\"" },
	{ SUB "\"stdin\":true}",		"\"stdin\"" },
	{ SUB "\"name\":1}",			"\"name\" must be a string" },
	{ SUB "\"name\":{}}",			"\"name\"" },
	{ SUB "\"name\":\"a\\u0000\"}",		"\"name\" must not contain NUL" },
	{ SUB "\"nowait\":1}",			"\"nowait\" must be true or false" },
	{ SUB "\"nowait\":\"true\"}",		"\"nowait\"" },
	{ SUB "\"block_timeout\":-1}",		"\"block_timeout\"" },
	{ SUB "\"block_timeout\":\"x\"}",	"\"block_timeout\" must be a number" },
	{ SUB "\"block_timeout\":31536001}",	"\"block_timeout\"" },
	{ "{\"op\":\"get\",\"id\":\"1\"}",	"\"id\" must be a positive integer" },
	{ "{\"op\":\"get\",\"id\":0}",		"\"id\" must be a positive integer" },
	{ "{\"op\":\"get\",\"id\":-1}",		"\"id\"" },
	{ "{\"op\":\"get\",\"id\":1.5}",		"\"id\"" },
	{ "{\"op\":\"get\",\"id\":1.0}",		"\"id\"" },
	{ "{\"op\":\"get\",\"id\":true}",	"\"id\"" },
	{ "{\"op\":\"get\",\"id\":[1]}",		"\"id\"" },
	{ "{\"op\":\"cancel\",\"id\":\"x\"}",	"\"id\"" },
	{ "{\"op\":\"cancel\",\"id\":0}",	"\"id\"" },
	{ "{\"op\":\"wait\",\"id\":-5}",		"\"id\"" },
	{ "{\"op\":\"wait\",\"id\":1,\"timeout\":\"x\"}", "\"timeout\"" },
	{ "{\"op\":\"wait\",\"id\":1,\"timeout\":-1}", "\"timeout\"" },
	{ "{\"op\":\"wait\",\"id\":1,\"timeout\":4e7}", "\"timeout\"" },
	{ "{\"op\":\"join\",\"queue\":1}",	"\"queue\"" },
	{ "{\"op\":\"join\",\"queue\":\"\"}",	"\"queue\"" },
	{ "{\"op\":\"join\",\"timeout\":-1}",	"\"timeout\"" },
	{ "{\"op\":\"join\",\"timeout\":[]}",	"\"timeout\"" },
	{ "{\"op\":\"list\",\"queue\":1}",	"\"queue\"" },
	{ "{\"op\":\"list\",\"state\":\"done\"}", "\"state\" must be one of queued" },
	{ "{\"op\":\"list\",\"state\":1}",	"\"state\"" },
	{ "{\"op\":\"list\",\"state\":\"QUEUED\"}", "\"state\"" },
	{ "{\"op\":\"list\",\"state\":\"queued\\u0000x\"}", "\"state\"" },
	{ "{\"op\":\"list\",\"limit\":0}",	"\"limit\" must be an integer in 1..10000" },
	{ "{\"op\":\"list\",\"limit\":10001}",	"\"limit\"" },
	{ "{\"op\":\"list\",\"limit\":-1}",	"\"limit\"" },
	{ "{\"op\":\"list\",\"limit\":5.0}",	"\"limit\"" },
	{ "{\"op\":\"list\",\"limit\":\"5\"}",	"\"limit\"" },
	{ "{\"op\":\"pause\",\"queue\":1}",	"\"queue\"" },
	{ "{\"op\":\"pause\",\"queue\":\"\"}",	"\"queue\"" },
	{ "{\"op\":\"resume\",\"queue\":[]}",	"\"queue\"" },
	{ "{\"op\":\"subscribe\",\"queue\":1}",	"\"queue\"" },
	{ "{\"op\":\"subscribe\",\"queue\":\"a\\u0000\"}", "\"queue\" must not contain NUL" },
};

START_TEST(test_bad_field)
{
	parse_bad(badfields[_i].line, PROTO_BAD_REQUEST, badfields[_i].needle);
}
END_TEST

START_TEST(test_required)
{
	static const char *const one =
	    "exactly one of \"argv\", \"shell\" or \"sleep\" is required";

	parse_bad("{\"op\":\"submit\"}", PROTO_BAD_REQUEST, one);
	parse_bad("{\"op\":\"submit\",\"queue\":\"q\"}", PROTO_BAD_REQUEST, one);
	parse_bad("{\"op\":\"submit\",\"argv\":[\"x\"],\"shell\":\"x\"}",
	    PROTO_BAD_REQUEST, one);
	parse_bad("{\"op\":\"submit\",\"shell\":\"x\",\"sleep\":1}",
	    PROTO_BAD_REQUEST, one);
	parse_bad("{\"op\":\"submit\",\"sleep\":1,\"argv\":[\"x\"]}",
	    PROTO_BAD_REQUEST, one);
	parse_bad("{\"op\":\"get\"}", PROTO_BAD_REQUEST, "\"id\" is required");
	parse_bad("{\"op\":\"wait\",\"timeout\":1}", PROTO_BAD_REQUEST,
	    "\"id\" is required");
	parse_bad("{\"op\":\"cancel\"}", PROTO_BAD_REQUEST, "\"id\" is required");
	parse_bad("{\"op\":\"pause\"}", PROTO_BAD_REQUEST,
	    "\"queue\" is required");
	parse_bad("{\"op\":\"resume\"}", PROTO_BAD_REQUEST,
	    "\"queue\" is required");
}
END_TEST

START_TEST(test_null_is_absent)
{
	struct request req;

	parse_ok("{\"op\":\"submit\",\"argv\":null,\"shell\":\"x\","
	    "\"sleep\":null,\"priority\":null,\"queue\":null,\"env\":null,"
	    "\"cwd\":null,\"stdin\":null,\"name\":null,\"nowait\":null,"
	    "\"timeout\":null,\"block_timeout\":null}", &req);
	ck_assert_int_eq(req.job.kind, JOB_SHELL);
	ck_assert_str_eq(req.job.queue, "default");
	ck_assert_int_eq(req.job.priority, 0);
	ck_assert_double_lt(req.job.timeout, 0);
	ck_assert_ptr_null(req.job.stdin_data);
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"list\",\"state\":null,\"limit\":null,"
	    "\"queue\":null}", &req);
	ck_assert_int_eq(req.state, -1);
	ck_assert_int_eq(req.limit, PROTOCOL_LIMIT_DEFAULT);
	protocol_request_clear(&req);

	/* Absent, so not unknown either. */
	parse_ok("{\"op\":\"ping\",\"priorty\":null}", &req);
	protocol_request_clear(&req);

	parse_bad("{\"op\":\"get\",\"id\":null}", PROTO_BAD_REQUEST,
	    "\"id\" is required");
	parse_bad("{\"op\":\"pause\",\"queue\":null}", PROTO_BAD_REQUEST,
	    "\"queue\" is required");
	parse_bad("{\"op\":\"submit\",\"argv\":null}", PROTO_BAD_REQUEST,
	    "exactly one of");
}
END_TEST

START_TEST(test_boundaries)
{
	struct request req;

	parse_ok(SUB "\"priority\":1000000}", &req);
	ck_assert_int_eq(req.job.priority, 1000000);
	protocol_request_clear(&req);
	parse_ok(SUB "\"priority\":-1000000}", &req);
	ck_assert_int_eq(req.job.priority, -1000000);
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"list\",\"limit\":1}", &req);
	ck_assert_int_eq(req.limit, 1);
	protocol_request_clear(&req);
	parse_ok("{\"op\":\"list\",\"limit\":10000}", &req);
	ck_assert_int_eq(req.limit, 10000);
	protocol_request_clear(&req);

	parse_ok("{\"op\":\"get\",\"id\":1}", &req);
	ck_assert_uint_eq(req.id, 1);
	protocol_request_clear(&req);

	parse_ok(SUBK "\"sleep\":31536000}", &req);
	ck_assert_double_eq(req.job.sleep, 31536000);
	protocol_request_clear(&req);
	parse_ok(SUB "\"timeout\":31536000.0,\"block_timeout\":0.0}", &req);
	ck_assert_double_eq(req.job.timeout, 31536000);
	ck_assert_double_eq(req.block_timeout, 0);
	protocol_request_clear(&req);
	parse_ok("{\"op\":\"wait\",\"id\":3,\"timeout\":1e-3}", &req);
	ck_assert_double_eq(req.timeout, 0.001);
	protocol_request_clear(&req);

	parse_bad(SUB "\"priority\":1000001}", PROTO_BAD_REQUEST, "\"priority\"");
	parse_bad(SUB "\"priority\":-1000001}", PROTO_BAD_REQUEST, "\"priority\"");
	parse_bad("{\"op\":\"list\",\"limit\":0}", PROTO_BAD_REQUEST, "\"limit\"");
	parse_bad("{\"op\":\"list\",\"limit\":10001}", PROTO_BAD_REQUEST,
	    "\"limit\"");
	parse_bad("{\"op\":\"get\",\"id\":0}", PROTO_BAD_REQUEST, "\"id\"");
	parse_bad("{\"op\":\"get\",\"id\":-1}", PROTO_BAD_REQUEST, "\"id\"");
	parse_bad("{\"op\":\"get\",\"id\":1.5}", PROTO_BAD_REQUEST, "\"id\"");
}
END_TEST

START_TEST(test_env)
{
	struct request req;

	parse_ok(SUB "\"env\":{\"PATH\":\"/bin\",\"X\":\"caf\xc3\xa9\","
	    "\"E\":\"a\\nb\"}}", &req);
	ck_assert_str_eq(req.job.env[0], "PATH=/bin");
	ck_assert_str_eq(req.job.env[1], "X=caf\xc3\xa9");
	ck_assert_str_eq(req.job.env[2], "E=a\nb");
	ck_assert_ptr_null(req.job.env[3]);
	protocol_request_clear(&req);

	/* Failing half way leaves nothing behind (asan checks the leak). */
	parse_bad(SUB "\"env\":{\"A\":\"1\",\"B\":\"2\",\"C\":3}}",
	    PROTO_BAD_REQUEST, "\"env.C\" must be a string");
}
END_TEST

START_TEST(test_stdin_nul)
{
	static const char line[] =
	    "{\"op\":\"submit\",\"argv\":[\"cat\"],\"stdin\":\"a\\u0000b\\u0000\"}";
	struct request req;

	parse_ok(line, &req);
	ck_assert_uint_eq(req.job.stdin_len, 4);
	ck_assert_mem_eq(req.job.stdin_data, "a\0b\0", 4);
	protocol_request_clear(&req);

	parse_ok(SUB "\"stdin\":\"\"}", &req);
	ck_assert_ptr_nonnull(req.job.stdin_data);
	ck_assert_uint_eq(req.job.stdin_len, 0);
	protocol_request_clear(&req);
}
END_TEST

START_TEST(test_argv_nul)
{
	parse_bad("{\"op\":\"submit\",\"argv\":[\"a\\u0000\"]}", PROTO_BAD_REQUEST,
	    "\"argv[0]\" must not contain NUL bytes");
	parse_bad("{\"op\":\"submit\",\"argv\":[\"a\",\"b\",\"\\u0000\"]}",
	    PROTO_BAD_REQUEST, "\"argv[2]\"");
}
END_TEST

/* ---- tags ---- */

static const char *const tags[] = {
	"{\"a\":[1,2,{\"b\":null}]}",
	"17",
	"-0.5",
	"\"t-1\"",
	"null",
	"true",
	"[]",
};

/* The tag is kept on success and on every kind of parse error. */
START_TEST(test_tag_echo)
{
	static const char *const bodies[] = {
		"\"op\":\"ping\"",				/* ok */
		"\"op\":\"frob\"",				/* unknown_op */
		"\"op\":5",					/* bad op */
		"\"x\":1",					/* no op */
		"\"op\":\"submit\",\"priorty\":1",		/* unknown field */
		"\"op\":\"submit\",\"argv\":[\"x\"],\"priority\":0.5",
		"\"op\":\"get\"",				/* missing id */
		"\"op\":\"ping\",\"op\":\"ping\"",		/* duplicate */
	};
	struct request req;
	struct proto_error err;
	json_t *want, *o;
	char line[256], *out;
	size_t b, len;
	int r;

	want = json_loads(tags[_i], JSON_DECODE_ANY, NULL);
	ck_assert_ptr_nonnull(want);
	for (b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
		snprintf(line, sizeof line, "{\"tag\":%s,%s}", tags[_i],
		    bodies[b]);
		r = protocol_parse(line, strlen(line), &req, &err);
		ck_assert_int_eq(r, b == 0 ? 0 : -1);
		ck_assert_msg(req.tag != NULL && json_equal(req.tag, want),
		    "%s: tag lost", line);
		if (strcmp(tags[_i], "null") == 0)
			ck_assert_ptr_eq(req.tag, json_null());
		if (r == 0)
			out = protocol_ok(NULL, req.tag, &len);
		else
			out = protocol_error(err.code, err.message, req.tag, &len);
		o = reload_line(out, len);
		ck_assert(json_equal(json_object_get(o, "tag"), want));
		json_decref(o);
		free(out);
		protocol_request_clear(&req);
	}
	json_decref(want);
}
END_TEST

START_TEST(test_tag_absent)
{
	struct request req;
	struct proto_error err;
	char *out;
	size_t len;

	parse_ok("{\"op\":\"ping\"}", &req);
	ck_assert_ptr_null(req.tag);
	out = protocol_ok(NULL, req.tag, &len);
	ck_assert_str_eq(out, "{\"ok\":true}\n");
	ck_assert_uint_eq(len, strlen(out));
	free(out);
	protocol_request_clear(&req);

	ck_assert_int_eq(protocol_parse("{\"op\":1}", 8, &req, &err), -1);
	ck_assert_ptr_null(req.tag);
	protocol_request_clear(&req);

	/* A tag inside a non-object is no tag. */
	ck_assert_int_eq(protocol_parse("[{\"tag\":1}]", 11, &req, &err), -1);
	ck_assert_ptr_null(req.tag);
	protocol_request_clear(&req);
}
END_TEST

/* ---- responses ---- */

START_TEST(test_ok_line)
{
	json_t *fields, *tag, *o;
	void *iter;
	char *line;
	size_t len;

	fields = json_pack("{s:I,s:s}", "id", (json_int_t)42, "state", "queued");
	tag = json_integer(7);
	line = protocol_ok(fields, tag, &len);
	ck_assert_str_eq(line, "{\"ok\":true,\"id\":42,\"state\":\"queued\","
	    "\"tag\":7}\n");
	ck_assert_uint_eq(len, strlen(line));
	free(line);

	/* Nested fields, newlines and UTF-8 in strings, reals. */
	fields = json_pack("{s:{s:s,s:[s,s]},s:f,s:f,s:n}", "job",
	    "stdout", "line 1\nline 2\r\n", "argv", "caf\xc3\xa9", "\xe2\x80\xa8",
	    "timeout", 30.0, "uptime_s", 0.1, "error");
	line = protocol_ok(fields, tag, &len);
	ck_assert_int_eq(strncmp(line, "{\"ok\":true,", 11), 0);
	ck_assert_ptr_nonnull(strstr(line, "\"timeout\":30.0"));
	ck_assert_ptr_nonnull(strstr(line, "\"uptime_s\":0.1,"));
	o = reload_line(line, len);
	ck_assert(json_is_true(json_object_get(o, "ok")));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o,
	    "job"), "stdout")), "line 1\nline 2\r\n");
	ck_assert(json_is_null(json_object_get(o, "error")));
	ck_assert_int_eq(json_integer_value(json_object_get(o, "tag")), 7);
	/* "ok" first, "tag" last. */
	iter = json_object_iter(o);
	ck_assert_str_eq(json_object_iter_key(iter), "ok");
	while (json_object_iter_next(o, iter) != NULL)
		iter = json_object_iter_next(o, iter);
	ck_assert_str_eq(json_object_iter_key(iter), "tag");
	json_decref(o);
	free(line);

	/* The module's own keys win over the caller's. */
	fields = json_pack("{s:b,s:i,s:i}", "ok", 0, "tag", 99, "n", 1);
	line = protocol_ok(fields, NULL, &len);
	ck_assert_str_eq(line, "{\"ok\":true,\"n\":1}\n");
	free(line);

	line = protocol_ok(json_object(), json_null(), NULL);
	ck_assert_str_eq(line, "{\"ok\":true,\"tag\":null}\n");
	free(line);

	json_decref(tag);
}
END_TEST

START_TEST(test_ok_big)
{
	json_t *fields, *o;
	char *big, *line;
	size_t len;

	/* Larger than the first buffer: it must grow. */
	big = malloc(100001);
	ck_assert_ptr_nonnull(big);
	memset(big, 'x', 100000);
	big[100000] = '\0';
	fields = json_pack("{s:s}", "stdout", big);
	line = protocol_ok(fields, NULL, &len);
	ck_assert_uint_eq(len, 100000 + strlen("{\"ok\":true,\"stdout\":\"\"}\n"));
	o = reload_line(line, len);
	ck_assert_str_eq(json_string_value(json_object_get(o, "stdout")), big);
	json_decref(o);
	free(line);
	free(big);
}
END_TEST

START_TEST(test_error_line)
{
	json_t *tag, *o;
	char *line;
	size_t len;

	line = protocol_error(PROTO_NOT_FOUND, "no such job", NULL, &len);
	ck_assert_str_eq(line, "{\"ok\":false,\"error\":{\"code\":\"not_found\","
	    "\"message\":\"no such job\"}}\n");
	ck_assert_uint_eq(len, strlen(line));
	free(line);

	tag = json_pack("{s:[i,s]}", "k", 1, "v");
	line = protocol_error(PROTO_TIMEOUT, "two\nlines\t\"quoted\"", tag, &len);
	ck_assert_str_eq(line, "{\"ok\":false,\"error\":{\"code\":\"timeout\","
	    "\"message\":\"two\\nlines\\t\\\"quoted\\\"\"},"
	    "\"tag\":{\"k\":[1,\"v\"]}}\n");
	o = reload_line(line, len);
	json_decref(o);
	free(line);
	/* The tag was borrowed. */
	ck_assert_int_eq(tag->refcount, 1);
	json_decref(tag);

	/* Invalid UTF-8 in a message (say, a path) becomes U+FFFD. */
	line = protocol_error(PROTO_INTERNAL, "bad \xff byte \xc3", NULL, &len);
	ck_assert_ptr_nonnull(strstr(line, "bad \xef\xbf\xbd byte \xef\xbf\xbd\""));
	o = reload_line(line, len);
	json_decref(o);
	free(line);
}
END_TEST

/* ---- names and clearing ---- */

START_TEST(test_names)
{
	int i;

	ck_assert_str_eq(protocol_op_name(OP_PING), "ping");
	ck_assert_str_eq(protocol_op_name(OP_SUBMIT), "submit");
	ck_assert_str_eq(protocol_op_name(OP_SUBSCRIBE), "subscribe");
	ck_assert_str_eq(protocol_op_name(OP_RELOAD), "reload");
	for (i = 0; i < OP__COUNT; i++)
		ck_assert_ptr_nonnull(protocol_op_name((enum op)i));
	for (i = 0; i < JOB__STATES; i++)
		ck_assert_int_eq(protocol_state_parse(
		    protocol_state_name((enum job_state)i)), i);
	ck_assert_str_eq(protocol_state_name(JOB_TIMED_OUT), "timed_out");
	ck_assert_int_eq(protocol_state_parse("cancelled"), -1);
	ck_assert_int_eq(protocol_state_parse(""), -1);
	ck_assert(!protocol_state_final(JOB_QUEUED));
	ck_assert(!protocol_state_final(JOB_RUNNING));
	ck_assert(protocol_state_final(JOB_SUCCEEDED));
	ck_assert(protocol_state_final(JOB_FAILED));
	ck_assert(protocol_state_final(JOB_TIMED_OUT));
	ck_assert(protocol_state_final(JOB_CANCELED));
}
END_TEST

START_TEST(test_clear)
{
	static const char line[] = "{\"op\":\"submit\",\"tag\":\"t\","
	    "\"argv\":[\"a\"],\"cwd\":\"/\",\"env\":{\"A\":\"b\"},\"name\":\"n\","
	    "\"queue\":\"q\",\"stdin\":\"s\",\"priority\":1.5}";
	struct request req;
	struct job_spec job;
	struct proto_error err;

	memset(&req, 0, sizeof req);
	protocol_request_clear(&req);
	protocol_request_clear(&req);
	memset(&job, 0, sizeof job);
	protocol_job_spec_clear(&job);

	/* After a failure: only the tag is left, and clear frees it. */
	ck_assert_int_eq(protocol_parse(line, strlen(line), &req, &err), -1);
	ck_assert_str_eq(json_string_value(req.tag), "t");
	ck_assert_ptr_null(req.job.argv);
	ck_assert_ptr_null(req.job.queue);
	protocol_request_clear(&req);
	ck_assert_ptr_null(req.tag);
	protocol_request_clear(&req);
}
END_TEST

/* ---- mutations ---- */

static const char *const seeds[] = {
	"{\"op\":\"ping\",\"tag\":1}",
	"{\"op\":\"submit\",\"argv\":[\"tar\",\"czf\",\"x\"],\"queue\":\"batch\","
	    "\"priority\":-5,\"timeout\":1.5,\"env\":{\"A\":\"1\",\"B\":\"x\"},"
	    "\"cwd\":\"/tmp\",\"stdin\":\"hi\\u0000\",\"name\":\"n\","
	    "\"nowait\":true,\"block_timeout\":2,\"tag\":{\"k\":[1,null]}}",
	"{\"op\":\"submit\",\"shell\":\"echo h\\u00e9 | wc\",\"tag\":\"x\"}",
	"{\"op\":\"submit\",\"sleep\":0.5,\"queue\":null}",
	"{\"op\":\"get\",\"id\":42}",
	"{\"op\":\"wait\",\"id\":3,\"timeout\":2.5}",
	"{\"op\":\"join\",\"queue\":\"q\",\"timeout\":10}",
	"{\"op\":\"cancel\",\"id\":7,\"tag\":null}",
	"{\"op\":\"list\",\"queue\":\"q\",\"state\":\"running\",\"limit\":10}",
	"{\"op\":\"stats\"}",
	"{\"op\":\"pause\",\"queue\":\"default\"}",
	"{\"op\":\"resume\",\"queue\":\"default\"}",
	"{\"op\":\"subscribe\",\"queue\":\"q\"}",
	"{\"op\":\"reload\",\"tag\":[true]}",
};

/* Bytes that matter to JSON and UTF-8, plus some that do not. */
static const char alphabet[] = "{}[]:,\"\\ntrufalse0123456789-+.eE u\t\n\r"
    "\x01\x7f\x80\xbf\xc3\xa9\xe2\xed\xf0\xf4\xf5\xff";

static uint64_t
rnd(uint64_t *s)
{
	/* xorshift64*: deterministic, good enough to pick mutations. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static size_t
mutate(uint64_t *s, char *buf, size_t len, size_t size)
{
	size_t at, n, k, rounds = 1 + rnd(s) % 3;
	char c;

	while (rounds-- > 0) {
		at = len == 0 ? 0 : rnd(s) % len;
		/* The alphabet's closing NUL doubles as a raw NUL byte. */
		c = alphabet[rnd(s) % sizeof alphabet];
		switch (rnd(s) % 6) {
		case 0:		/* truncate */
			len = at;
			break;
		case 1:		/* replace */
			if (len > 0)
				buf[at] = c;
			break;
		case 2:		/* insert */
			if (len < size) {
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = c;
				len++;
			}
			break;
		case 3:		/* delete */
			if (len > 0) {
				memmove(buf + at, buf + at + 1, len - at - 1);
				len--;
			}
			break;
		case 4:		/* repeat a span */
			n = 1 + rnd(s) % 16;
			if (at + n > len)
				n = len - at;
			if (len + n <= size) {
				memmove(buf + at + n, buf + at, len - at);
				len += n;
			}
			break;
		default:	/* flip a bit */
			if (len > 0) {
				k = rnd(s) % 8;
				buf[at] = (char)(buf[at] ^ (1 << k));
			}
			break;
		}
	}
	return len;
}

/* Swap, add or drop whole fields: valid JSON that tests the checks. */
static size_t
mutate_fields(uint64_t *s, const char *seed, char *buf, size_t size)
{
	static const char *const keys[] = { "op", "tag", "argv", "shell",
	    "sleep", "queue", "priority", "timeout", "env", "cwd", "stdin",
	    "name", "nowait", "block_timeout", "id", "state", "limit", "x" };
	static const char *const values[] = { "null", "0", "-1", "1", "1.5",
	    "1e300", "1000001", "31536001", "\"\"", "\"x\"", "\"a\\u0000\"",
	    "\"/tmp\"", "\"queued\"", "[]", "[\"a\"]", "[\"\"]", "[1]", "{}",
	    "{\"A\":\"1\"}", "{\"A\":1}", "{\"A=\":\"1\"}", "true", "\"ping\"",
	    "\"submit\"", "\"get\"", "\"wait\"", "\"join\"", "\"cancel\"",
	    "\"list\"", "\"stats\"", "\"pause\"", "\"resume\"",
	    "\"subscribe\"", "\"reload\"" };
	json_t *o;
	const char *key;
	size_t n, rounds = 1 + rnd(s) % 3;

	o = json_loads(seed, JSON_ALLOW_NUL, NULL);
	ck_assert_ptr_nonnull(o);
	while (rounds-- > 0) {
		key = keys[rnd(s) % (sizeof keys / sizeof keys[0])];
		if (rnd(s) % 4 == 0)
			json_object_del(o, key);
		else
			json_object_set_new(o, key, json_loads(values[rnd(s) %
			    (sizeof values / sizeof values[0])],
			    JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL));
	}
	n = json_dumpb(o, buf, size, JSON_COMPACT);
	json_decref(o);
	ck_assert_uint_le(n, size);
	return n;
}

START_TEST(test_mutations)
{
	struct request req;
	struct proto_error err;
	uint64_t s = 0x6a6f6264ULL;	/* "jobd" */
	char buf[1024], *out;
	const char *seed;
	size_t i, len, outlen, nok = 0, nfail = 0;
	json_t *o;

	for (i = 0; i < 10000; i++) {
		seed = seeds[rnd(&s) % (sizeof seeds / sizeof seeds[0])];
		/* Half change fields, half bytes, a few both. */
		if (rnd(&s) % 2 == 0) {
			len = mutate_fields(&s, seed, buf, sizeof buf);
			if (rnd(&s) % 8 == 0)
				len = mutate(&s, buf, len, sizeof buf);
		} else {
			len = strlen(seed);
			memcpy(buf, seed, len);
			len = mutate(&s, buf, len, sizeof buf);
		}

		memset(&err, 0xa5, sizeof err);
		if (protocol_parse(buf, len, &req, &err) == 0) {
			nok++;
			ck_assert_int_lt(req.op, OP__COUNT);
			if (req.op == OP_SUBMIT) {
				ck_assert_ptr_nonnull(req.job.queue);
				if (req.job.kind == JOB_ARGV)
					ck_assert_ptr_nonnull(req.job.argv[0]);
				if (req.job.kind == JOB_SHELL)
					ck_assert_ptr_nonnull(req.job.shell);
			}
			out = protocol_ok(json_pack("{s:s}", "op",
			    protocol_op_name(req.op)), req.tag, &outlen);
		} else {
			nfail++;
			ck_assert_msg(strcmp(err.code, PROTO_BAD_JSON) == 0 ||
			    strcmp(err.code, PROTO_BAD_REQUEST) == 0 ||
			    strcmp(err.code, PROTO_UNKNOWN_OP) == 0,
			    "%zu: bad code", i);
			ck_assert_msg(err.message[0] != '\0' &&
			    memchr(err.message, '\0', sizeof err.message) != NULL,
			    "%zu: no message", i);
			ck_assert_ptr_null(req.job.argv);
			ck_assert_ptr_null(req.job.queue);
			ck_assert_ptr_null(req.queue);
			out = protocol_error(err.code, err.message, req.tag,
			    &outlen);
		}
		o = reload_line(out, outlen);
		json_decref(o);
		free(out);
		protocol_request_clear(&req);
	}
	/* The mix must exercise both outcomes. */
	ck_assert_uint_gt(nok, 500);
	ck_assert_uint_gt(nfail, 5000);
}
END_TEST

static Suite *
protocol_suite(void)
{
	Suite *s = suite_create("protocol");
	TCase *tc;

	tc = tcase_create("ops");
	tcase_add_test(tc, test_ping);
	tcase_add_test(tc, test_submit_argv_all);
	tcase_add_test(tc, test_submit_defaults);
	tcase_add_test(tc, test_submit_shell_sleep);
	tcase_add_test(tc, test_id_ops);
	tcase_add_test(tc, test_join);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_list_states);
	tcase_add_test(tc, test_plain_ops);
	tcase_add_test(tc, test_not_terminated);
	suite_add_tcase(s, tc);

	tc = tcase_create("shape");
	tcase_add_test(tc, test_op_errors);
	tcase_add_test(tc, test_unknown_op_clipped);
	tcase_add_test(tc, test_not_object);
	tcase_add_test(tc, test_bad_json);
	tcase_add_test(tc, test_duplicate_key);
	suite_add_tcase(s, tc);

	tc = tcase_create("fields");
	tcase_add_loop_test(tc, test_unknown_field, 0,
	    sizeof unknowns / sizeof unknowns[0]);
	tcase_add_loop_test(tc, test_bad_field, 0,
	    sizeof badfields / sizeof badfields[0]);
	tcase_add_test(tc, test_required);
	tcase_add_test(tc, test_null_is_absent);
	tcase_add_test(tc, test_boundaries);
	tcase_add_test(tc, test_env);
	tcase_add_test(tc, test_stdin_nul);
	tcase_add_test(tc, test_argv_nul);
	suite_add_tcase(s, tc);

	tc = tcase_create("tags");
	tcase_add_loop_test(tc, test_tag_echo, 0, sizeof tags / sizeof tags[0]);
	tcase_add_test(tc, test_tag_absent);
	suite_add_tcase(s, tc);

	tc = tcase_create("responses");
	tcase_add_test(tc, test_ok_line);
	tcase_add_test(tc, test_ok_big);
	tcase_add_test(tc, test_error_line);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_clear);
	suite_add_tcase(s, tc);

	tc = tcase_create("mutations");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_mutations);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(protocol_suite());
	int failed;

	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
