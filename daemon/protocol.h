/*
 * protocol: the socket protocol's words (SPEC §2).  Pure functions from a
 * request line to a struct request, and from a result to a response line.
 * No I/O, no globals, no logging: callable from a fuzzer.
 */
#ifndef JOBD_PROTOCOL_H
#define JOBD_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum op {
	OP_PING,
	OP_SUBMIT,
	OP_GET,
	OP_WAIT,
	OP_JOIN,
	OP_CANCEL,
	OP_LIST,
	OP_STATS,
	OP_PAUSE,
	OP_RESUME,
	OP_SUBSCRIBE,
	OP_RELOAD,
	OP__COUNT
};

enum job_kind {
	JOB_ARGV,
	JOB_SHELL,
	JOB_SLEEP,
};

enum job_state {
	JOB_QUEUED,
	JOB_RUNNING,
	JOB_SUCCEEDED,
	JOB_FAILED,
	JOB_TIMED_OUT,
	JOB_CANCELED,
	JOB__STATES
};

#define PROTOCOL_PRIORITY_MAX	1000000
#define PROTOCOL_LIMIT_MAX	10000
#define PROTOCOL_LIMIT_DEFAULT	100

/* What a submit carries.  Strings and arrays are owned by the struct. */
struct job_spec {
	enum job_kind	 kind;
	char		**argv;		/* JOB_ARGV: NULL-terminated, argc >= 1 */
	char		*shell;		/* JOB_SHELL */
	double		 sleep;		/* JOB_SLEEP: seconds >= 0 */
	char		*queue;		/* never NULL after parse: "default" */
	int64_t		 priority;
	double		 timeout;	/* < 0: not given (the queue's applies) */
	char		**env;		/* "KEY=VALUE", NULL-terminated; NULL = none */
	char		*cwd;		/* absolute path or NULL */
	char		*stdin_data;	/* may hold NUL bytes; NULL = none */
	size_t		 stdin_len;
	char		*name;		/* NULL = none */
};

struct request {
	enum op		 op;
	json_t		*tag;		/* own reference; NULL when absent */

	/* submit */
	struct job_spec	 job;
	int		 nowait;
	double		 block_timeout;	/* < 0: not given */

	/* get, wait, cancel */
	uint64_t	 id;
	/* wait, join: < 0 when not given */
	double		 timeout;
	/* join, list, pause, resume, subscribe: NULL = all (list/join/subscribe) */
	char		*queue;
	/* list */
	int		 state;		/* enum job_state, or -1 for any */
	long		 limit;
};

/* Error codes of SPEC §2, as they appear on the wire. */
#define PROTO_BAD_JSON		"bad_json"
#define PROTO_BAD_REQUEST	"bad_request"
#define PROTO_UNKNOWN_OP	"unknown_op"
#define PROTO_UNKNOWN_QUEUE	"unknown_queue"
#define PROTO_NOT_FOUND		"not_found"
#define PROTO_QUEUE_FULL	"queue_full"
#define PROTO_TIMEOUT		"timeout"
#define PROTO_TOO_LARGE		"too_large"
#define PROTO_CONFLICT		"conflict"
#define PROTO_FORBIDDEN		"forbidden"
#define PROTO_SHUTTING_DOWN	"shutting_down"
#define PROTO_UNAVAILABLE	"unavailable"
#define PROTO_INTERNAL		"internal"

struct proto_error {
	const char	*code;		/* one of PROTO_* */
	char		 message[256];
};

/*
 * Parse one request line (without its '\n'; need not be NUL-terminated).
 * On success returns 0 and fills *req (release with protocol_request_clear).
 * On failure returns -1 and fills *err; req->tag is still set when the line
 * was a JSON object with a "tag", so the error can echo it.
 */
int	 protocol_parse(const char *line, size_t len, struct request *req,
	    struct proto_error *err);
/* Free what a parsed request owns and zero it. */
void	 protocol_request_clear(struct request *);
void	 protocol_job_spec_clear(struct job_spec *);

/*
 * Build a success line: {"ok":true, <fields...>, "tag":...}\n.  fields may
 * be NULL; it is consumed (its reference is stolen).  tag is borrowed and
 * NULL when absent.  Returns a malloc'd line; *lenp is its length.
 */
char	*protocol_ok(json_t *fields, const json_t *tag, size_t *lenp);
/* Build an error line: {"ok":false,"error":{"code":..,"message":..},"tag":..}\n */
char	*protocol_error(const char *code, const char *message,
	    const json_t *tag, size_t *lenp);

const char *protocol_op_name(enum op);
const char *protocol_state_name(enum job_state);
/* -1 when the word is not a state. */
int	 protocol_state_parse(const char *);
/* True for succeeded, failed, timed_out, canceled. */
int	 protocol_state_final(enum job_state);

#endif
