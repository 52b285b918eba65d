/*
 * jobctl: the command-line client of jobd (SPEC §1).  It speaks the socket
 * protocol of SPEC §2 over one blocking AF_UNIX connection, one thread, and
 * keeps no state between runs.
 *
 * It owns: parsing the command line, turning a command into request lines,
 * reading response lines of any size (job records carry output tails of up
 * to 16 MiB per stream), and turning responses into human output, --json
 * output and an exit status.  docs/jobctl.md shows the output formats.
 * SIGPIPE is ignored (a closed socket is "connection lost"); only watch
 * catches signals, and only inside ppoll (see conn_poll).
 *
 * Layout: diagnostics and number parsing; the connection (conn_*); replies
 * and job outcomes (reply_*, job_outcome); text and table helpers; one
 * cmd_* per command; the command table, usage and main.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "protocol.h"
#include "util.h"
#include "version.h"

/* Tried after -s and $JOBD_SOCKET, before the built-in default. */
#define JOBCTL_SYSTEM_SOCKET	"/run/jobd/jobd.sock"

/*
 * Exit statuses of SPEC §1, besides EX_USAGE (64), EX_UNAVAILABLE (69: no
 * daemon, or the connection dropped) and EX_TEMPFAIL (75: -t ran out).
 */
#define EXIT_ERROR		1	/* the daemon answered with an error */
#define EXIT_TIMED_OUT		124	/* the job timed out, as timeout(1) */
#define EXIT_CANCELED		125
#define EXIT_NO_STATUS		127	/* failed without exit status or signal */

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

#define READ_CHUNK		65536
/* A response line longer than this is not one jobd sends. */
#define LINE_MAX_BYTES		((size_t)1 << 30)

#ifndef nitems
#define nitems(a)		(sizeof (a) / sizeof (a)[0])
#endif

/* Command table entry; see ctl_cmds near the end. */
struct ctl;
struct ctl_cmd {
	const char	*name;
	int		(*exec)(struct ctl *, int, char **);
	const char	*args;		/* for usage lines */
	const char	*help;		/* one line for --help */
};

/* One blocking connection and its read buffer. */
struct conn {
	int		 fd;
	char		*path;		/* for messages */
	int		 write_errno;	/* first failed write, told at EOF */
	const sigset_t	*sigmask;	/* ppoll mask (watch); NULL: none */

	char		*buf;
	size_t		 size;
	size_t		 start;		/* first byte not handed out */
	size_t		 end;		/* one past the last byte read */
	size_t		 scan;		/* bytes after start without '\n' */
};

enum conn_read {
	CONN_LINE,
	CONN_EOF,
	CONN_TIMEOUT,
	CONN_INTR,
};

struct ctl {
	const char		*socket_opt;	/* -s, or NULL */
	int			 json;		/* --json */
	const struct ctl_cmd	*cmd;
	struct conn		*conn;
};

/* "jobctl: MESSAGE" on stderr, after what stdout holds so far. */
static void __attribute__((format(printf, 1, 0)))
ctl_vwarn(const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs("jobctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void __attribute__((format(printf, 1, 2)))
ctl_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctl_vwarn(fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 2, 3), noreturn))
ctl_exit(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctl_vwarn(fmt, ap);
	va_end(ap);
	exit(status);
}

static void __attribute__((noreturn))
bad_response(void)
{
	ctl_exit(EXIT_ERROR, "bad response from daemon");
}

/* A usage error in the current command: message, its usage line, exit 64. */
static void __attribute__((format(printf, 2, 3), noreturn))
usage_error(struct ctl *ctl, const char *fmt, ...)
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

/* A whole decimal integer in [min, max]. */
static int
parse_int(const char *s, long long min, long long max, long long *out)
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

static json_int_t
parse_id(struct ctl *ctl, const char *s)
{
	long long v;

	if (parse_int(s, 1, LLONG_MAX, &v) != 0)
		usage_error(ctl, "not a job id: '%s'", s);
	return v;
}

static json_int_t *
parse_ids(struct ctl *ctl, int argc, char **argv)
{
	json_int_t *ids;
	int i;

	ids = xreallocarray(NULL, argc, sizeof *ids);
	for (i = 0; i < argc; i++)
		ids[i] = parse_id(ctl, argv[i]);
	return ids;
}

/*
 * getopt_long for a command, with jobctl's own messages for an unknown
 * option or a missing argument; -h prints the command's usage and exits.
 * optstring starts with "+:" so options stop at the first operand.
 */
static int
cmd_getopt(struct ctl *ctl, int argc, char **argv, const char *optstring,
    const struct option *longopts)
{
	int ch;

	ch = getopt_long(argc, argv, optstring, longopts, NULL);
	switch (ch) {
	case 'h':
		printf("usage: jobctl %s %s\n", ctl->cmd->name, ctl->cmd->args);
		exit(0);
	case ':':
		usage_error(ctl, "option %s needs an argument", argv[optind - 1]);
	case '?':
		if (optopt != 0)
			usage_error(ctl, "unknown option -%c", optopt);
		usage_error(ctl, "unknown option %s", argv[optind - 1]);
	}
	return ch;
}

/*
 * After the options: leave *argc and *argv on the operands, and check
 * there are min to max of them (max < 0: no limit).
 */
static void
cmd_operands(struct ctl *ctl, int *argc, char ***argv, int min, int max)
{
	*argc -= optind;
	*argv += optind;
	if (max >= 0 && *argc > max)
		usage_error(ctl, "unexpected argument '%s'", (*argv)[max]);
	if (*argc < min)
		usage_error(ctl, "missing argument");
}

/* A command with no options but -h, and n operands (< 0: any number). */
static void
cmd_noopts(struct ctl *ctl, int *argc, char ***argv, int n)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};

	while (cmd_getopt(ctl, *argc, *argv, "+:h", longopts) != -1)
		continue;
	cmd_operands(ctl, argc, argv, n < 0 ? 0 : n, n);
}

/* A JSON string from a command-line word; the protocol is UTF-8 only. */
static json_t *
word_string(struct ctl *ctl, const char *s, const char *what)
{
	json_t *j;

	if ((j = json_string(s)) == NULL)
		usage_error(ctl, "%s is not valid UTF-8", what);
	return j;
}

/*
 * The connection.  Reads wait in ppoll so that a deadline (wait/join -t)
 * and SIGINT (watch) can end them; writes block.
 */

static void __attribute__((noreturn))
conn_lost(struct conn *c, int error)
{
	if (error == 0)
		error = c->write_errno;
	if (error != 0)
		ctl_exit(EX_UNAVAILABLE, "connection to %s lost: %s", c->path,
		    strerror(error));
	ctl_exit(EX_UNAVAILABLE, "connection to %s lost", c->path);
}

static struct conn *
conn_open(const char *path)
{
	struct sockaddr_un sun;
	struct conn *c;
	int fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path)
		ctl_exit(EX_UNAVAILABLE, "cannot connect to %s: %s", path,
		    strerror(ENAMETOOLONG));
	memcpy(sun.sun_path, path, strlen(path) + 1);

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		ctl_exit(EX_UNAVAILABLE, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1)
		ctl_exit(EX_UNAVAILABLE, "cannot connect to %s: %s", path,
		    strerror(errno));

	c = xcalloc(1, sizeof *c);
	c->fd = fd;
	c->path = xstrdup(path);
	c->size = READ_CHUNK;
	c->buf = xmalloc(c->size);
	return c;
}

static void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c->path);
	free(c->buf);
	free(c);
}

/*
 * Write one request line; req is consumed.  A failed write is remembered,
 * not fatal: the daemon may have answered before closing (too_large), so
 * the caller goes on to read, and EOF then reports this error.
 */
static void
conn_send(struct conn *c, json_t *req)
{
	char *s;
	const char *p;
	size_t len;
	ssize_t n;

	s = json_dumps(req, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(req);
	if (s == NULL)
		ctl_exit(EXIT_ERROR, "cannot encode the request");
	len = strlen(s);
	s[len++] = '\n';	/* replaces the NUL; the length is known */
	p = s;
	while (len > 0 && c->write_errno == 0) {
		/* MSG_NOSIGNAL: a closed socket is EPIPE, not a signal. */
		if ((n = send(c->fd, p, len, MSG_NOSIGNAL)) == -1) {
			if (errno != EINTR)
				c->write_errno = errno;
			continue;
		}
		p += n;
		len -= n;
	}
	free(s);
}

/* Wait until the socket is readable, the deadline passes or a signal. */
static enum conn_read
conn_poll(struct conn *c, double deadline)
{
	struct pollfd pfd;
	struct timespec ts, *tsp;
	double left;
	int n;

	for (;;) {
		tsp = NULL;
		if (deadline >= 0) {
			if ((left = deadline - now_mono()) <= 0)
				return CONN_TIMEOUT;
			ts.tv_sec = (time_t)left;
			ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
			tsp = &ts;
		}
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		/*
		 * In watch, SIGINT is blocked except inside ppoll, so it
		 * cannot slip in between a check and the wait.
		 */
		n = ppoll(&pfd, 1, tsp, c->sigmask);
		if (n > 0)
			return CONN_LINE;
		if (n == -1) {
			if (errno != EINTR)
				conn_lost(c, errno);
			if (c->sigmask != NULL)
				return CONN_INTR;
		}
	}
}

/*
 * Read one line, without its '\n' (NUL-terminated in its place).  *line
 * stays valid until the next call.  deadline is on the now_mono() clock,
 * < 0 for none.
 */
static enum conn_read
conn_readline(struct conn *c, double deadline, char **line, size_t *len)
{
	enum conn_read r;
	char *nl;
	ssize_t n;

	for (;;) {
		nl = memchr(c->buf + c->start + c->scan, '\n',
		    c->end - c->start - c->scan);
		if (nl != NULL) {
			*line = c->buf + c->start;
			*len = nl - *line;
			*nl = '\0';
			c->start += *len + 1;
			c->scan = 0;
			return CONN_LINE;
		}
		c->scan = c->end - c->start;

		/* Keep the partial line at the front; grow for long ones. */
		if (c->start > 0) {
			memmove(c->buf, c->buf + c->start, c->end - c->start);
			c->end -= c->start;
			c->start = 0;
		}
		if (c->size - c->end < READ_CHUNK / 2) {
			if (c->size >= LINE_MAX_BYTES)
				bad_response();
			c->size *= 2;
			c->buf = xreallocarray(c->buf, c->size, 1);
		}

		if ((r = conn_poll(c, deadline)) != CONN_LINE)
			return r;
		n = read(c->fd, c->buf + c->end, c->size - c->end);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			conn_lost(c, errno);
		}
		if (n == 0)
			return CONN_EOF;	/* a partial line is lost too */
		c->end += n;
	}
}

/* A line from the daemon as a JSON object, or exit 1. */
static json_t *
line_json(const char *line, size_t len)
{
	json_error_t jerr;
	json_t *j;

	/* JSON_ALLOW_NUL: output tails may hold NUL bytes. */
	j = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
	if (j == NULL || !json_is_object(j))
		bad_response();
	return j;
}

/*
 * Read one response: NULL when the deadline passed first.  Exits 69 when
 * the connection ends before it, 1 when it is not a JSON object.
 * *linep and *lenp give the raw line for --json, valid until the next
 * read.
 */
static json_t *
conn_reply(struct conn *c, double deadline, const char **linep, size_t *lenp)
{
	char *line;
	size_t len;

	do {
		switch (conn_readline(c, deadline, &line, &len)) {
		case CONN_LINE:
			break;
		case CONN_EOF:
			conn_lost(c, 0);
		case CONN_TIMEOUT:
		case CONN_INTR:
			return NULL;
		}
	} while (len == 0);
	*linep = line;
	*lenp = len;
	return line_json(line, len);
}

/* -s > $JOBD_SOCKET > /run/jobd/jobd.sock if it exists > jobd's default. */
static char *
socket_path(const char *opt)
{
	const char *env;

	if (opt != NULL)
		return xstrdup(opt);
	if ((env = getenv("JOBD_SOCKET")) != NULL && *env != '\0')
		return xstrdup(env);
	if (access(JOBCTL_SYSTEM_SOCKET, F_OK) == 0)
		return xstrdup(JOBCTL_SYSTEM_SOCKET);
	return config_default_socket();
}

static struct conn *
ctl_connect(struct ctl *ctl)
{
	char *path;

	if (ctl->conn == NULL) {
		path = socket_path(ctl->socket_opt);
		ctl->conn = conn_open(path);
		free(path);
	}
	return ctl->conn;
}

/* Write a response line unchanged (--json). */
static void
put_line(const char *line, size_t len)
{
	fwrite(line, 1, len, stdout);
	putchar('\n');
}

/*
 * One request, one response; under --json the response line is printed.
 * NULL when the deadline passed first.
 */
static json_t *
ctl_call(struct ctl *ctl, json_t *req, double deadline)
{
	struct conn *c = ctl_connect(ctl);
	const char *line;
	size_t len;
	json_t *r;

	conn_send(c, req);
	if ((r = conn_reply(c, deadline, &line, &len)) != NULL && ctl->json)
		put_line(line, len);
	return r;
}

/*
 * 0 for {"ok":true,...}.  For an error, says "jobctl: CODE: MESSAGE" and
 * returns the exit status: 75 for the daemon's timeout, else 1.
 */
static int
reply_status(json_t *r)
{
	json_t *ok, *err;
	const char *code, *msg;

	ok = json_object_get(r, "ok");
	if (!json_is_boolean(ok))
		bad_response();
	if (json_is_true(ok))
		return 0;
	err = json_object_get(r, "error");
	code = json_string_value(json_object_get(err, "code"));
	msg = json_string_value(json_object_get(err, "message"));
	if (code == NULL)
		code = "error";
	if (msg != NULL && *msg != '\0')
		ctl_warn("%s: %s", code, msg);
	else
		ctl_warn("%s", code);
	return strcmp(code, PROTO_TIMEOUT) == 0 ? EX_TEMPFAIL : EXIT_ERROR;
}

/* The "job" object of a successful get/wait/cancel response (borrowed). */
static json_t *
reply_job(json_t *r)
{
	json_t *job = json_object_get(r, "job");

	if (!json_is_object(job) || !json_is_integer(json_object_get(job, "id")))
		bad_response();
	return job;
}

/* A string member of an object (borrowed), NULL when absent or not one. */
static const char *
obj_str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* The exit status a finished job stands for (SPEC §1). */
static int
job_outcome(json_t *job)
{
	json_t *code = json_object_get(job, "exit_code");
	json_t *sig = json_object_get(job, "signal");
	const char *state = obj_str(job, "state");

	if (state == NULL)
		bad_response();
	if (strcmp(state, "succeeded") == 0)
		return 0;
	if (strcmp(state, "timed_out") == 0)
		return EXIT_TIMED_OUT;
	if (strcmp(state, "canceled") == 0)
		return EXIT_CANCELED;
	if (strcmp(state, "failed") != 0) {
		ctl_warn("job %" JSON_INTEGER_FORMAT " is still %s",
		    json_integer_value(json_object_get(job, "id")), state);
		return EXIT_ERROR;
	}
	/* Clamped so that no odd value can read as success. */
	if (json_is_integer(code) && json_integer_value(code) > 0)
		return json_integer_value(code) > 255 ? 255 :
		    (int)json_integer_value(code);
	if (json_is_integer(sig) && json_integer_value(sig) > 0)
		return json_integer_value(sig) > 127 ? 255 :
		    128 + (int)json_integer_value(sig);
	return EXIT_NO_STATUS;
}

/*
 * Text helpers: a growing string, shell-quoted command lines, escaped and
 * truncated display text.
 */

struct buf {
	char	*p;
	size_t	 len;
	size_t	 size;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->size - b->len < n + 1) {
		b->size = (b->len + n + 1) * 2;
		b->p = xreallocarray(b->p, b->size, 1);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = xvasprintf(&s, fmt, ap);
	va_end(ap);
	buf_add(b, s, n);
	free(s);
}

/* The string built so far, never NULL; the caller frees it. */
static char *
buf_take(struct buf *b)
{
	char *p = b->p != NULL ? b->p : xstrdup("");

	memset(b, 0, sizeof *b);
	return p;
}

/* A word as the shell would need it: bare when safe, else in '...'. */
static void
buf_add_quoted(struct buf *b, const char *w)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_";

	if (*w != '\0' && w[strspn(w, safe)] == '\0') {
		buf_adds(b, w);
		return;
	}
	buf_adds(b, "'");
	for (; *w != '\0'; w++) {
		if (*w == '\'')
			buf_adds(b, "'\\''");
		else
			buf_add(b, w, 1);
	}
	buf_adds(b, "'");
}

/* Seconds without trailing zeros: 30, 0.5, 1.25. */
static char *
seconds_text(double s)
{
	char *p;
	size_t n;

	n = xasprintf(&p, "%.3f", s);
	while (n > 0 && p[n - 1] == '0')
		p[--n] = '\0';
	if (n > 0 && p[n - 1] == '.')
		p[--n] = '\0';
	return p;
}

/* A JSON number (or other scalar) as text; "-" for null or absent. */
static char *
value_text(json_t *v)
{
	char *s;

	switch (v == NULL ? JSON_NULL : json_typeof(v)) {
	case JSON_NULL:
		return xstrdup("-");
	case JSON_INTEGER:
		xasprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return s;
	case JSON_REAL:
		return seconds_text(json_real_value(v));
	case JSON_STRING:
		return xstrdup(json_string_value(v));
	case JSON_TRUE:
		return xstrdup("true");
	case JSON_FALSE:
		return xstrdup("false");
	default:
		if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
			return xstrdup("?");
		return s;
	}
}

/* The job's command: quoted argv words, the shell string, or "sleep N". */
static char *
job_command(json_t *job)
{
	struct buf b = { NULL, 0, 0 };
	json_t *argv, *w;
	const char *shell;
	char *s;
	size_t i;

	if (json_is_array(argv = json_object_get(job, "argv"))) {
		json_array_foreach(argv, i, w) {
			if (i > 0)
				buf_adds(&b, " ");
			buf_add_quoted(&b, json_is_string(w) ?
			    json_string_value(w) : "?");
		}
	} else if ((shell = obj_str(job, "shell")) != NULL)
		buf_adds(&b, shell);
	else if (json_is_number(json_object_get(job, "sleep"))) {
		s = value_text(json_object_get(job, "sleep"));
		buf_printf(&b, "sleep %s", s);
		free(s);
	}
	return buf_take(&b);
}

/* Write s with control characters escaped, so one value stays one line. */
static void
put_escaped(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\n')
			fputs("\\n", stdout);
		else if (*s == '\t')
			fputs("\\t", stdout);
		else if ((unsigned char)*s < 0x20 || *s == 0x7f)
			printf("\\x%02x", (unsigned char)*s);
		else
			putchar(*s);
	}
}

/* Display width, counting each UTF-8 character as one column. */
static size_t
text_width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* Byte length of the longest prefix of s at most width columns wide. */
static size_t
text_cut(const char *s, size_t width)
{
	size_t i, w = 0;

	for (i = 0; s[i] != '\0'; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80 && w++ == width)
			break;
	}
	return i;
}

/* Columns the output may use: $COLUMNS, else the terminal's; 0 = any. */
static size_t
term_width(void)
{
	struct winsize ws;
	const char *env;
	long long n;

	if ((env = getenv("COLUMNS")) != NULL &&
	    parse_int(env, 1, INT_MAX, &n) == 0)
		return n;
	if (!isatty(STDOUT_FILENO))
		return 0;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/*
 * A text table: columns sized to their widest cell (up to a cap), two
 * spaces apart.  The last column is padded only when right-aligned, and
 * is cut to the line width given (keeping at least 10 columns of it).
 */
struct column {
	const char	*head;
	int		 right;		/* right-aligned (numbers) */
	size_t		 max;		/* widest it may get; 0: no cap */
};

struct table {
	const struct column *cols;
	size_t		 ncols;
	char		**cells;	/* row after row */
	size_t		 ncells;
};

/* Append a cell (rows fill left to right); control bytes become '?'. */
static void __attribute__((format(printf, 2, 3)))
table_add(struct table *t, const char *fmt, ...)
{
	va_list ap;
	char *s, *p;

	va_start(ap, fmt);
	xvasprintf(&s, fmt, ap);
	va_end(ap);
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	t->cells = xreallocarray(t->cells, t->ncells + 1, sizeof *t->cells);
	t->cells[t->ncells++] = s;
}

/* Append a cell from a JSON value (borrowed); "-" for null or absent. */
static void
table_add_value(struct table *t, json_t *v)
{
	char *s = value_text(v);

	table_add(t, "%s", s);
	free(s);
}

static void
table_print_row(const struct table *t, const size_t *width, char **row,
    size_t linewidth)
{
	size_t i, used = 0, w, n, pad;
	const char *s;

	for (i = 0; i < t->ncols; i++) {
		s = row[i];
		if (i > 0) {
			fputs("  ", stdout);
			used += 2;
		}
		w = width[i];
		if (i == t->ncols - 1) {
			w = SIZE_MAX;
			if (linewidth > 0)
				w = linewidth > used + 10 ? linewidth - used : 10;
		}
		n = text_cut(s, w);
		pad = 0;
		if ((i < t->ncols - 1 || t->cols[i].right) &&
		    text_width(s) < width[i])
			pad = width[i] - text_width(s);
		if (t->cols[i].right)
			printf("%*s", (int)pad, "");
		fwrite(s, 1, n, stdout);
		if (!t->cols[i].right)
			printf("%*s", (int)pad, "");
		used += width[i];
	}
	putchar('\n');
}

static void
table_print(struct table *t, size_t linewidth)
{
	size_t *width, i, w, r, nrows = t->ncells / t->ncols;
	char **head;

	width = xcalloc(t->ncols, sizeof *width);
	head = xcalloc(t->ncols, sizeof *head);
	for (i = 0; i < t->ncols; i++) {
		head[i] = (char *)t->cols[i].head;
		width[i] = text_width(head[i]);
		for (r = 0; r < nrows; r++) {
			if ((w = text_width(t->cells[r * t->ncols + i])) >
			    width[i])
				width[i] = w;
		}
		if (t->cols[i].max != 0 && width[i] > t->cols[i].max)
			width[i] = t->cols[i].max;
	}
	table_print_row(t, width, head, linewidth);
	for (r = 0; r < nrows; r++)
		table_print_row(t, width, t->cells + r * t->ncols, linewidth);
	free(head);
	free(width);
}

static void
table_free(struct table *t)
{
	size_t i;

	for (i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
}

/* "45s", "12m05s", "3h02m", "5d03h". */
static void
duration_text(double secs, char *buf, size_t len)
{
	long long s = secs > 0 ? (long long)secs : 0;

	if (s < 60)
		snprintf(buf, len, "%llds", s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

/* Seconds since an RFC 3339 UTC time; -1 when it cannot be read. */
static double
time_age(const char *s)
{
	struct tm tm;
	time_t t;

	memset(&tm, 0, sizeof tm);
	if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year,
	    &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	return now_real() - (double)t;
}

/* "ID STATE[ exit N][ signal N][ error: ...]": wait's line per job. */
static void
put_job_line(json_t *job)
{
	json_t *v;

	printf("%" JSON_INTEGER_FORMAT " %s",
	    json_integer_value(json_object_get(job, "id")),
	    obj_str(job, "state") != NULL ? obj_str(job, "state") : "?");
	if (json_is_integer(v = json_object_get(job, "exit_code")))
		printf(" exit %" JSON_INTEGER_FORMAT, json_integer_value(v));
	if (json_is_integer(v = json_object_get(job, "signal")))
		printf(" signal %" JSON_INTEGER_FORMAT, json_integer_value(v));
	if (obj_str(job, "error") != NULL) {
		fputs(" error: ", stdout);
		put_escaped(obj_str(job, "error"));
	}
	putchar('\n');
}

/* get's "key: value" lines, in record order; null fields left out. */
static void
put_record(json_t *job)
{
	static const char *const order[] = {
		"id", "queue", "name", "state", "argv", "shell", "sleep",
		"priority", "attempts", "submitted_at", "started_at",
		"finished_at", "exit_code", "signal", "timeout", "owner",
		"stdout", "stderr", "error", NULL
	};
	const char *key;
	json_t *v, *trunc;
	char *s;
	size_t i;
	int seen;

	for (i = 0; order[i] != NULL; i++) {
		key = order[i];
		if ((v = json_object_get(job, key)) == NULL || json_is_null(v))
			continue;
		printf("%s: ", key);
		if (strcmp(key, "argv") == 0) {
			s = job_command(job);
			put_escaped(s);
			free(s);
		} else if (strcmp(key, "signal") == 0 && json_is_integer(v))
			printf("%" JSON_INTEGER_FORMAT " (%s)",
			    json_integer_value(v),
			    strsignal((int)json_integer_value(v)));
		else if (strcmp(key, "owner") == 0 && json_is_object(v))
			printf("uid=%" JSON_INTEGER_FORMAT
			    " gid=%" JSON_INTEGER_FORMAT,
			    json_integer_value(json_object_get(v, "uid")),
			    json_integer_value(json_object_get(v, "gid")));
		else if ((strcmp(key, "stdout") == 0 ||
		    strcmp(key, "stderr") == 0) && json_is_string(v)) {
			xasprintf(&s, "%s_truncated", key);
			trunc = json_object_get(job, s);
			free(s);
			printf("%zu bytes%s", json_string_length(v),
			    json_is_true(trunc) ? ", truncated" : "");
		} else {
			s = value_text(v);
			put_escaped(s);
			free(s);
		}
		putchar('\n');
	}

	/* Fields this jobctl does not know yet, as they come. */
	json_object_foreach(job, key, v) {
		seen = strcmp(key, "stdout_truncated") == 0 ||
		    strcmp(key, "stderr_truncated") == 0;
		for (i = 0; !seen && order[i] != NULL; i++)
			seen = strcmp(key, order[i]) == 0;
		if (seen || json_is_null(v))
			continue;
		s = value_text(v);
		printf("%s: ", key);
		put_escaped(s);
		putchar('\n');
		free(s);
	}
}

/*
 * The commands.  Each parses its arguments (usage errors exit 64 before
 * any connection is made), talks to the daemon and returns the exit
 * status.
 */

enum {
	OPT_NOWAIT = 256,
	OPT_WAIT,
	OPT_SHELL,
};

/* -C DIR made absolute against the client's working directory. */
static char *
absolute_dir(struct ctl *ctl, const char *dir)
{
	char *cwd, *path;

	if (*dir == '\0')
		usage_error(ctl, "-C: empty directory");
	if (*dir == '/')
		return xstrdup(dir);
	if ((cwd = getcwd(NULL, 0)) == NULL)
		ctl_exit(EXIT_ERROR, "getcwd: %s", strerror(errno));
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

static int
cmd_submit(struct ctl *ctl, int argc, char **argv)
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
	int ch, i, have_prio = 0, nowait = 0, wait = 0, shell = 0, status;
	json_t *req, *env = NULL, *words, *r = NULL, *r2 = NULL;
	struct buf b = { NULL, 0, 0 };
	struct conn *c;
	json_int_t id;
	char *key, *s;
	size_t len;

	while ((ch = cmd_getopt(ctl, argc, argv, "+:hq:p:t:n:e:C:",
	    longopts)) != -1) {
		switch (ch) {
		case 'q':
			queue = optarg;
			break;
		case 'p':
			if (parse_int(optarg, -PROTOCOL_PRIORITY_MAX,
			    PROTOCOL_PRIORITY_MAX, &prio) != 0)
				usage_error(ctl, "-p: not an integer in "
				    "-%d..%d: '%s'", PROTOCOL_PRIORITY_MAX,
				    PROTOCOL_PRIORITY_MAX, optarg);
			have_prio = 1;
			break;
		case 't':
			if (parse_seconds(optarg, &timeout) != 0)
				usage_error(ctl, "-t: not a number of seconds: "
				    "'%s'", optarg);
			break;
		case 'n':
			name = optarg;
			break;
		case 'e':
			if ((eq = strchr(optarg, '=')) == NULL || eq == optarg)
				usage_error(ctl, "-e: expected KEY=VALUE with a "
				    "non-empty KEY: '%s'", optarg);
			if (env == NULL)
				env = json_object();
			key = xstrndup(optarg, eq - optarg);
			/* set_new consumes the value even when it fails. */
			if (json_object_set_new(env, key,
			    word_string(ctl, eq + 1, "-e value")) != 0)
				usage_error(ctl, "-e: KEY is not valid UTF-8");
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
	if (argc == 0)
		usage_error(ctl, "missing command (put it after --)");
	else if (shell) {
		for (i = 0; i < argc; i++) {
			if (i > 0)
				buf_adds(&b, " ");
			buf_adds(&b, argv[i]);
		}
		s = buf_take(&b);
		json_object_set_new(req, "shell",
		    word_string(ctl, s, "the command"));
		free(s);
	} else {
		words = json_array();
		for (i = 0; i < argc; i++)
			json_array_append_new(words,
			    word_string(ctl, argv[i], "the command"));
		json_object_set_new(req, "argv", words);
	}
	if (queue != NULL)
		json_object_set_new(req, "queue", word_string(ctl, queue, "-q"));
	if (have_prio)
		json_object_set_new(req, "priority", json_integer(prio));
	if (timeout >= 0)
		json_object_set_new(req, "timeout", json_real(timeout));
	if (name != NULL)
		json_object_set_new(req, "name", word_string(ctl, name, "-n"));
	if (env != NULL)
		json_object_set_new(req, "env", env);
	if (cwd != NULL) {
		/* Without -C the daemon runs the job in "/" (SPEC §2). */
		s = absolute_dir(ctl, cwd);
		json_object_set_new(req, "cwd", word_string(ctl, s, "-C"));
		free(s);
	}
	if (nowait)
		json_object_set_new(req, "nowait", json_true());

	c = ctl_connect(ctl);
	conn_send(c, req);
	r = conn_reply(c, -1, &line, &len);
	if (ctl->json && (!wait || !json_is_true(json_object_get(r, "ok"))))
		put_line(line, len);
	if ((status = reply_status(r)) != 0)
		goto out;
	if (!json_is_integer(json_object_get(r, "id")))
		bad_response();
	id = json_integer_value(json_object_get(r, "id"));
	if (!ctl->json)
		printf("%" JSON_INTEGER_FORMAT "\n", id);
	if (!wait)
		goto out;

	/* The id is out before the wait, for whoever reads it live. */
	fflush(stdout);
	conn_send(c, json_pack("{s:s, s:I}", "op", "wait", "id", id));
	r2 = conn_reply(c, -1, &line, &len);
	if (ctl->json)
		put_line(line, len);
	if ((status = reply_status(r2)) == 0)
		status = job_outcome(reply_job(r2));
out:
	json_decref(r2);
	json_decref(r);
	return status;
}

static int
cmd_get(struct ctl *ctl, int argc, char **argv)
{
	json_t *r;
	int status;

	cmd_noopts(ctl, &argc, &argv, 1);
	r = ctl_call(ctl, json_pack("{s:s, s:I}", "op", "get", "id",
	    parse_id(ctl, argv[0])), -1);
	if ((status = reply_status(r)) == 0 && !ctl->json)
		put_record(reply_job(r));
	json_decref(r);
	return status;
}

/* Send a wait, carrying the time left until end (< 0: no -t). */
static void
wait_send(struct conn *c, json_int_t id, double end)
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
	conn_send(c, req);
}

/*
 * wait: one pipelined wait per id.  With -t each carries the time left,
 * and the whole command ends by then (plus DEADLINE_GRACE).
 */
static int
cmd_wait(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	double timeout = -1, end = -1;
	json_int_t *ids;
	struct conn *c;
	const char *line;
	json_t *r;
	char *s;
	size_t len;
	int ch, i, sent, st, status = 0;

	while ((ch = cmd_getopt(ctl, argc, argv, "+:ht:", longopts)) != -1) {
		if (ch == 't' && parse_seconds(optarg, &timeout) != 0)
			usage_error(ctl, "-t: not a number of seconds: '%s'",
			    optarg);
	}
	cmd_operands(ctl, &argc, &argv, 1, -1);
	ids = parse_ids(ctl, argc, argv);

	if (timeout >= 0)
		end = now_mono() + timeout;
	c = ctl_connect(ctl);
	for (i = sent = 0; i < argc; i++) {
		for (; sent < argc && sent - i < PIPELINE_MAX; sent++)
			wait_send(c, ids[sent], end);
		r = conn_reply(c, end >= 0 ? end + DEADLINE_GRACE : -1, &line,
		    &len);
		if (r == NULL) {
			s = seconds_text(timeout);
			ctl_warn("timeout: job %" JSON_INTEGER_FORMAT
			    " still unfinished after %s s", ids[i], s);
			free(s);
			status = EX_TEMPFAIL;
			break;
		}
		if (ctl->json)
			put_line(line, len);
		if ((st = reply_status(r)) == EX_TEMPFAIL) {
			/* The time is up; the rest would say the same. */
			json_decref(r);
			status = st;
			break;
		}
		if (st == 0) {
			if (!ctl->json)
				put_job_line(reply_job(r));
			st = job_outcome(reply_job(r));
		}
		if (status == 0)
			status = st;
		json_decref(r);
	}
	free(ids);
	return status;
}

static int
cmd_join(struct ctl *ctl, int argc, char **argv)
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

	while ((ch = cmd_getopt(ctl, argc, argv, "+:hq:t:", longopts)) != -1) {
		if (ch == 'q')
			queue = optarg;
		else if (ch == 't' && parse_seconds(optarg, &timeout) != 0)
			usage_error(ctl, "-t: not a number of seconds: '%s'",
			    optarg);
	}
	cmd_operands(ctl, &argc, &argv, 0, 0);

	req = json_pack("{s:s}", "op", "join");
	if (queue != NULL)
		json_object_set_new(req, "queue", word_string(ctl, queue, "-q"));
	if (timeout >= 0) {
		json_object_set_new(req, "timeout", json_real(timeout));
		end = now_mono() + timeout + DEADLINE_GRACE;
	}
	if ((r = ctl_call(ctl, req, end)) == NULL) {
		s = seconds_text(timeout);
		ctl_warn("timeout: jobs still unfinished after %s s", s);
		free(s);
		return EX_TEMPFAIL;
	}
	status = reply_status(r);
	json_decref(r);
	return status;
}

/* cancel: one pipelined cancel per id; an error does not stop the rest. */
static int
cmd_cancel(struct ctl *ctl, int argc, char **argv)
{
	json_int_t *ids;
	struct conn *c;
	const char *line;
	json_t *r;
	size_t len;
	int i, sent, status = 0;

	cmd_noopts(ctl, &argc, &argv, -1);
	if (argc == 0)
		usage_error(ctl, "missing job id");
	ids = parse_ids(ctl, argc, argv);
	c = ctl_connect(ctl);
	for (i = sent = 0; i < argc; i++) {
		for (; sent < argc && sent - i < PIPELINE_MAX; sent++)
			conn_send(c, json_pack("{s:s, s:I}", "op", "cancel",
			    "id", ids[sent]));
		r = conn_reply(c, -1, &line, &len);
		if (ctl->json)
			put_line(line, len);
		if (reply_status(r) != 0)
			status = EXIT_ERROR;
		else if (!ctl->json)
			printf("%" JSON_INTEGER_FORMAT " canceled\n", ids[i]);
		json_decref(r);
	}
	free(ids);
	return status;
}

static const struct column list_cols[] = {
	{ "ID", 1, 0 },
	{ "QUEUE", 0, 20 },
	{ "STATE", 0, 0 },
	{ "PRIO", 1, 0 },
	{ "EXIT", 1, 0 },
	{ "AGE", 1, 0 },
	{ "NAME", 0, 20 },
	{ "COMMAND", 0, 0 },
};

static int
cmd_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "queue", required_argument, NULL, 'q' },
		{ "state", required_argument, NULL, 'S' },
		{ "limit", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct table t = { list_cols, nitems(list_cols), NULL, 0 };
	const char *queue = NULL, *state = NULL;
	long long limit = -1;
	json_t *req, *r, *jobs, *job, *v;
	struct buf b = { NULL, 0, 0 };
	char age[32], *s;
	double secs;
	size_t i;
	int ch, status;

	while ((ch = cmd_getopt(ctl, argc, argv, "+:hq:S:n:", longopts)) != -1) {
		switch (ch) {
		case 'q':
			queue = optarg;
			break;
		case 'S':
			state = optarg;
			if (protocol_state_parse(state) != -1)
				break;
			for (i = 0; i < JOB__STATES; i++)
				buf_printf(&b, "%s%s", i > 0 ? ", " : "",
				    protocol_state_name(i));
			usage_error(ctl, "-S: not a state: '%s' (one of %s)",
			    state, b.p);
		case 'n':
			if (parse_int(optarg, 1, PROTOCOL_LIMIT_MAX,
			    &limit) != 0)
				usage_error(ctl, "-n: not an integer in 1..%d: "
				    "'%s'", PROTOCOL_LIMIT_MAX, optarg);
			break;
		}
	}
	cmd_operands(ctl, &argc, &argv, 0, 0);

	req = json_pack("{s:s}", "op", "list");
	if (queue != NULL)
		json_object_set_new(req, "queue", word_string(ctl, queue, "-q"));
	if (state != NULL)
		json_object_set_new(req, "state", json_string(state));
	if (limit != -1)
		json_object_set_new(req, "limit", json_integer(limit));
	r = ctl_call(ctl, req, -1);
	if ((status = reply_status(r)) != 0 || ctl->json)
		goto out;
	if (!json_is_array(jobs = json_object_get(r, "jobs")))
		bad_response();

	json_array_foreach(jobs, i, job) {
		if (!json_is_object(job))
			bad_response();
		table_add_value(&t, json_object_get(job, "id"));
		table_add_value(&t, json_object_get(job, "queue"));
		table_add_value(&t, json_object_get(job, "state"));
		table_add_value(&t, json_object_get(job, "priority"));
		if (json_is_integer(v = json_object_get(job, "exit_code")))
			table_add_value(&t, v);
		else if (json_is_integer(v = json_object_get(job, "signal")))
			table_add(&t, "sig %" JSON_INTEGER_FORMAT,
			    json_integer_value(v));
		else
			table_add(&t, "-");
		if ((secs = time_age(obj_str(job, "submitted_at"))) >= 0) {
			duration_text(secs, age, sizeof age);
			table_add(&t, "%s", age);
		} else
			table_add(&t, "-");
		table_add_value(&t, json_object_get(job, "name"));
		s = job_command(job);
		table_add(&t, "%s", s);
		free(s);
	}
	table_print(&t, term_width());
out:
	table_free(&t);
	json_decref(r);
	return status;
}

/*
 * logs: the output tails, byte for byte (they may hold NUL bytes).  Notes
 * about truncation go to stderr only when it is a terminal, so that a
 * redirected stderr holds exactly the job's.
 */
static int
cmd_logs(struct ctl *ctl, int argc, char **argv)
{
	static const char *const streams[] = { "stdout", "stderr" };
	json_t *r, *job, *v;
	const char *state;
	char *key;
	size_t i;
	int status;

	cmd_noopts(ctl, &argc, &argv, 1);
	r = ctl_call(ctl, json_pack("{s:s, s:I}", "op", "get", "id",
	    parse_id(ctl, argv[0])), -1);
	if ((status = reply_status(r)) != 0 || ctl->json)
		goto out;
	job = reply_job(r);

	if (isatty(STDERR_FILENO)) {
		state = obj_str(job, "state");
		if (state != NULL && (strcmp(state, "queued") == 0 ||
		    strcmp(state, "running") == 0))
			ctl_warn("(job %s is %s: its output is kept when it "
			    "ends)", argv[0], state);
		for (i = 0; i < nitems(streams); i++) {
			xasprintf(&key, "%s_truncated", streams[i]);
			v = json_object_get(job, streams[i]);
			if (json_is_true(json_object_get(job, key)))
				ctl_warn("(%s truncated; this is its last %zu "
				    "bytes)", streams[i], json_string_length(v));
			free(key);
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

static const struct column stats_cols[] = {
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
stats_row(struct table *t, const char *name, json_t *q, json_t *workers,
    json_t *busy, const char *paused)
{
	size_t i;

	table_add(t, "%s", name);
	table_add_value(t, workers);
	table_add_value(t, busy);
	for (i = 0; i < nitems(stats_counts); i++) {
		if (stats_counts[i] == NULL)
			table_add(t, "%s", paused);
		else
			table_add_value(t, json_object_get(q, stats_counts[i]));
	}
}

static int
cmd_stats(struct ctl *ctl, int argc, char **argv)
{
	struct table t = { stats_cols, nitems(stats_cols), NULL, 0 };
	json_t *r, *st, *queues, *q, *v, *workers, *busy;
	json_int_t nworkers = 0, nbusy = 0;
	const char *name;
	char up[32];
	int status;

	cmd_noopts(ctl, &argc, &argv, 0);
	r = ctl_call(ctl, json_pack("{s:s}", "op", "stats"), -1);
	if ((status = reply_status(r)) != 0 || ctl->json)
		goto out;
	if (!json_is_object(st = json_object_get(r, "stats")) ||
	    !json_is_object(queues = json_object_get(st, "queues")))
		bad_response();

	printf("jobd %s", obj_str(st, "version") != NULL ?
	    obj_str(st, "version") : "?");
	if (json_is_integer(v = json_object_get(st, "pid")))
		printf(", pid %" JSON_INTEGER_FORMAT, json_integer_value(v));
	if (json_is_number(v = json_object_get(st, "uptime_s"))) {
		duration_text(json_number_value(v), up, sizeof up);
		printf(", up %s", up);
	}
	if (json_is_integer(v = json_object_get(st, "connections")))
		printf(", %" JSON_INTEGER_FORMAT " connection%s",
		    json_integer_value(v), json_integer_value(v) == 1 ? "" : "s");
	putchar('\n');

	json_object_foreach(queues, name, q) {
		workers = json_object_get(q, "workers");
		busy = json_object_get(q, "busy");
		nworkers += json_integer_value(workers);
		nbusy += json_integer_value(busy);
		v = json_object_get(q, "paused");
		stats_row(&t, name, q, workers, busy,
		    json_is_boolean(v) ? (json_is_true(v) ? "yes" : "no") : "-");
	}
	/* "(total)" cannot be a queue name: names are [A-Za-z0-9_.-]. */
	if (json_object_size(queues) > 1 &&
	    json_is_object(v = json_object_get(st, "totals"))) {
		workers = json_integer(nworkers);
		busy = json_integer(nbusy);
		stats_row(&t, "(total)", v, workers, busy, "-");
		json_decref(workers);
		json_decref(busy);
	}
	table_print(&t, 0);
out:
	table_free(&t);
	json_decref(r);
	return status;
}

/* pause and resume: the op is the command's name. */
static int
cmd_queue_op(struct ctl *ctl, int argc, char **argv)
{
	json_t *r;
	int status;

	cmd_noopts(ctl, &argc, &argv, 1);
	r = ctl_call(ctl, json_pack("{s:s, s:o}", "op", ctl->cmd->name,
	    "queue", word_string(ctl, argv[0], "QUEUE")), -1);
	status = reply_status(r);
	json_decref(r);
	return status;
}

static int
cmd_ping(struct ctl *ctl, int argc, char **argv)
{
	json_t *r;
	int status;

	cmd_noopts(ctl, &argc, &argv, 0);
	r = ctl_call(ctl, json_pack("{s:s}", "op", "ping"), -1);
	if ((status = reply_status(r)) == 0 && !ctl->json)
		printf("jobd %s (pid %" JSON_INTEGER_FORMAT ")\n",
		    obj_str(r, "version") != NULL ? obj_str(r, "version") : "?",
		    json_integer_value(json_object_get(r, "pid")));
	json_decref(r);
	return status;
}

/* reload: the daemon answers once the new config is in force. */
static int
cmd_reload(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "wait", no_argument, NULL, OPT_WAIT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	json_t *r, *ignored, *v;
	size_t i;
	int status;

	while (cmd_getopt(ctl, argc, argv, "+:h", longopts) != -1)
		continue;	/* --wait: reload always waits */
	cmd_operands(ctl, &argc, &argv, 0, 0);

	r = ctl_call(ctl, json_pack("{s:s}", "op", "reload"), -1);
	if ((status = reply_status(r)) != 0 || ctl->json)
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
 * watch: subscribe and print one line per event until the daemon closes
 * the connection or SIGINT/SIGTERM (both exit 0).
 */
static int
cmd_watch(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "queue", required_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *queue = NULL, *line;
	struct sigaction sa;
	sigset_t block, old;
	struct conn *c;
	json_t *req, *r, *ev, *v;
	char *ev_line, *id;
	size_t len;
	int ch, status;

	while ((ch = cmd_getopt(ctl, argc, argv, "+:hq:", longopts)) != -1)
		if (ch == 'q')
			queue = optarg;
	cmd_operands(ctl, &argc, &argv, 0, 0);

	req = json_pack("{s:s}", "op", "subscribe");
	if (queue != NULL)
		json_object_set_new(req, "queue", word_string(ctl, queue, "-q"));
	c = ctl_connect(ctl);

	/* Blocked but for ppoll: see conn_poll. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = watch_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	sigdelset(&old, SIGINT);
	sigdelset(&old, SIGTERM);
	c->sigmask = &old;

	conn_send(c, req);
	if ((r = conn_reply(c, -1, &line, &len)) == NULL)
		return 0;
	status = reply_status(r);
	json_decref(r);
	if (status != 0)
		return status;

	for (;;) {
		switch (conn_readline(c, -1, &ev_line, &len)) {
		case CONN_LINE:
			break;
		case CONN_EOF:
		case CONN_INTR:
		case CONN_TIMEOUT:
			return 0;
		}
		if (len == 0)
			continue;
		ev = line_json(ev_line, len);
		if (ctl->json)
			put_line(ev_line, len);
		else {
			id = value_text(json_object_get(ev, "id"));
			printf("%s %s %s", id, obj_str(ev, "queue") != NULL ?
			    obj_str(ev, "queue") : "-", obj_str(ev, "state") !=
			    NULL ? obj_str(ev, "state") : "-");
			free(id);
			if (json_is_integer(v = json_object_get(ev, "exit_code")))
				printf(" exit %" JSON_INTEGER_FORMAT,
				    json_integer_value(v));
			if (json_is_integer(v = json_object_get(ev, "signal")))
				printf(" signal %" JSON_INTEGER_FORMAT,
				    json_integer_value(v));
			putchar('\n');
		}
		json_decref(ev);
		/* Each event as it comes; stop when nobody reads any more. */
		if (fflush(stdout) == EOF)
			return errno == EPIPE ? 0 : EXIT_ERROR;
	}
}

static const struct ctl_cmd ctl_cmds[] = {
	{ "submit", cmd_submit,
	    "[-q QUEUE] [-p PRIO] [-t TIMEOUT] [-n NAME] [-e KEY=VAL]...\n"
	    "\t[-C DIR] [--nowait] [--wait] [--shell] -- CMD [ARG...]",
	    "queue a job; print its id" },
	{ "get", cmd_get, "ID", "show a job" },
	{ "wait", cmd_wait, "[-t TIMEOUT] ID...",
	    "wait for jobs; exit with their outcome" },
	{ "join", cmd_join, "[-q QUEUE] [-t TIMEOUT]",
	    "wait until no unfinished job is left" },
	{ "cancel", cmd_cancel, "ID...", "cancel jobs" },
	{ "list", cmd_list, "[-q QUEUE] [-S STATE] [-n LIMIT]",
	    "list jobs, newest first" },
	{ "logs", cmd_logs, "ID", "write a job's stdout and stderr tails" },
	{ "stats", cmd_stats, "", "per-queue counters" },
	{ "pause", cmd_queue_op, "QUEUE", "start no more jobs from a queue" },
	{ "resume", cmd_queue_op, "QUEUE", "start jobs from a queue again" },
	{ "ping", cmd_ping, "", "check that the daemon answers" },
	{ "watch", cmd_watch, "[-q QUEUE]", "print job state changes" },
	{ "reload", cmd_reload, "[--wait]",
	    "re-read the daemon's config" },
};

static void
usage(FILE *f, int full)
{
	const struct ctl_cmd *cmd;
	size_t i;
	int n;

	fprintf(f, "usage: jobctl [-s SOCKET] [--json] COMMAND [ARGS]\n");
	fprintf(f, "       jobctl --help | --version\n\ncommands:\n");
	for (i = 0; i < nitems(ctl_cmds); i++) {
		cmd = &ctl_cmds[i];
		n = fprintf(f, "  %s%s%s", cmd->name, *cmd->args != '\0' ?
		    " " : "", cmd->args);
		if (full && strchr(cmd->args, '\n') == NULL && n < 40)
			fprintf(f, "%*s%s", 40 - n, "", cmd->help);
		else if (full)
			fprintf(f, "\n%40s%s", "", cmd->help);
		fputc('\n', f);
	}
	if (!full)
		return;
	fprintf(f, "\n"
	    "  COMMAND -h                            the command's usage\n"
	    "\noptions:\n"
	    "  -s SOCKET   daemon socket (default: $JOBD_SOCKET, else\n"
	    "              %s if it exists, else jobd's default)\n"
	    "  --json      print the daemon's JSON response lines unchanged\n"
	    "\nexit status: 0 ok; 1 the daemon answered with an error;"
	    " 64 usage;\n"
	    "  69 the daemon cannot be reached; 75 wait/join -t ran out;\n"
	    "  submit --wait and wait: the job's exit code, 128+signal,\n"
	    "  124 timed out, 125 canceled, 127 failed without a status\n",
	    JOBCTL_SYSTEM_SOCKET);
}

static void __attribute__((format(printf, 1, 2), noreturn))
main_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctl_vwarn(fmt, ap);
	va_end(ap);
	usage(stderr, 0);
	exit(EX_USAGE);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl ctl;
	size_t i;
	int ch, status;

	memset(&ctl, 0, sizeof ctl);
	/* Belt and braces with MSG_NOSIGNAL: EPIPE is "connection lost". */
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;

	while ((ch = getopt_long(argc, argv, "+:s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (*optarg == '\0')
				main_usage_error("-s: empty socket path");
			ctl.socket_opt = optarg;
			break;
		case 'j':
			ctl.json = 1;
			break;
		case 'h':
			usage(stdout, 1);
			return 0;
		case 'V':
			printf("jobctl %s\n", JOBD_VERSION);
			return 0;
		case ':':
			main_usage_error("option %s needs an argument",
			    argv[optind - 1]);
		default:
			if (optopt != 0)
				main_usage_error("unknown option -%c", optopt);
			main_usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind == argc)
		main_usage_error("missing command");
	for (i = 0; i < nitems(ctl_cmds); i++) {
		if (strcmp(argv[optind], ctl_cmds[i].name) == 0)
			ctl.cmd = &ctl_cmds[i];
	}
	if (ctl.cmd == NULL)
		main_usage_error("unknown command '%s'", argv[optind]);

	argc -= optind;
	argv += optind;
	optind = 0;	/* GNU getopt: start afresh on the command's words */
	status = ctl.cmd->exec(&ctl, argc, argv);

	conn_free(ctl.conn);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		/* A reader that went away early (| head) is not an error. */
		if (errno != EPIPE) {
			ctl_warn("stdout: %s", strerror(errno));
			if (status == 0)
				status = EXIT_ERROR;
		}
	}
	return status;
}
