/*
 * ctl_conn: jobctl's one blocking connection to jobd (SPEC §2) -- which
 * socket, connecting, sending request lines, and reading response lines
 * of any size with a deadline.  A lost connection exits 69, a line that
 * is not a JSON object exits 1 (via ctl_cmd).
 */
#ifndef JOBD_CTL_CONN_H
#define JOBD_CTL_CONN_H

#include <signal.h>
#include <stddef.h>

#include <jansson.h>

#include "ctl_cmd.h"

/* Tried after -s and $JOBD_SOCKET, before the built-in default. */
#define CTL_CONN_SYSTEM_SOCKET	"/run/jobd/jobd.sock"

enum ctl_conn_read {
	CTL_CONN_LINE,
	CTL_CONN_EOF,
	CTL_CONN_TIMEOUT,		/* the deadline passed */
	CTL_CONN_INTR,			/* a signal let in by the sigmask */
};

/*
 * The run's connection, made on first use to -s, else $JOBD_SOCKET, else
 * CTL_CONN_SYSTEM_SOCKET if it exists, else jobd's default; exits 69 when
 * it cannot be made.  Owned by ctl.
 */
struct ctl_conn *ctl_conn_get(struct ctl *);
void	 ctl_conn_free(struct ctl_conn *);

/*
 * Wait for replies with this signal mask in place (ppoll), so that the
 * signals it lets in end a read with CTL_CONN_INTR; NULL: none.  The mask
 * is borrowed.
 */
void	 ctl_conn_set_sigmask(struct ctl_conn *, const sigset_t *);

/* Write one request line; req is consumed.  A failed write is told when
 * the connection then ends. */
void	 ctl_conn_send(struct ctl_conn *, json_t *);

/*
 * Read one line, without its '\n' (NUL-terminated in its place), valid
 * until the next read.  deadline is on the now_mono() clock, < 0 for none.
 */
enum ctl_conn_read ctl_conn_readline(struct ctl_conn *, double, char **,
	    size_t *);
/* A line from the daemon as a JSON object (new reference), or exit 1. */
json_t	*ctl_conn_json(const char *, size_t);
/*
 * Read one response (new reference): NULL when the deadline passed or a
 * signal came first.  Exits 69 when the connection ends before it.  The
 * raw line for --json goes to *linep and *lenp, valid until the next read.
 */
json_t	*ctl_conn_reply(struct ctl_conn *, double, const char **, size_t *);

/* Read one response; under --json the response line is printed. */
json_t	*ctl_conn_answer(struct ctl *, double);
/* Send req (consumed), then ctl_conn_answer. */
json_t	*ctl_conn_call(struct ctl *, json_t *, double);

#endif
