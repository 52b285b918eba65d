/*
 * ctl_conn: jobctl's connection to jobd.  One blocking AF_UNIX stream, one
 * thread, no state kept between runs.  It owns choosing the socket,
 * connecting, writing request lines, and reading response lines of any
 * size: job records carry output tails of up to 16 MiB per stream, so the
 * read buffer grows to the longest line (up to LINE_MAX_BYTES).
 *
 * Reads wait in ppoll so that a deadline (wait/join -t) and SIGINT (watch)
 * can end them; writes block.  SIGPIPE plays no part: sends use
 * MSG_NOSIGNAL, and main ignores it besides.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "ctl_cmd.h"
#include "ctl_conn.h"
#include "ctl_fmt.h"
#include "util.h"

#define READ_CHUNK		65536
/* A response line longer than this is not one jobd sends. */
#define LINE_MAX_BYTES		((size_t)1 << 30)

/* One blocking connection and its read buffer. */
struct ctl_conn {
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

static void __attribute__((noreturn))
conn_lost(struct ctl_conn *c, int error)
{
	if (error == 0)
		error = c->write_errno;
	if (error != 0)
		ctl_cmd_exit(EX_UNAVAILABLE, "connection to %s lost: %s",
		    c->path, strerror(error));
	ctl_cmd_exit(EX_UNAVAILABLE, "connection to %s lost", c->path);
}

static struct ctl_conn *
conn_open(const char *path)
{
	struct sockaddr_un sun;
	struct ctl_conn *c;
	int fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path)
		ctl_cmd_exit(EX_UNAVAILABLE, "cannot connect to %s: %s", path,
		    strerror(ENAMETOOLONG));
	memcpy(sun.sun_path, path, strlen(path) + 1);

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		ctl_cmd_exit(EX_UNAVAILABLE, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1)
		ctl_cmd_exit(EX_UNAVAILABLE, "cannot connect to %s: %s", path,
		    strerror(errno));

	c = xcalloc(1, sizeof *c);
	c->fd = fd;
	c->path = xstrdup(path);
	c->size = READ_CHUNK;
	c->buf = xmalloc(c->size);
	return c;
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
	if (access(CTL_CONN_SYSTEM_SOCKET, F_OK) == 0)
		return xstrdup(CTL_CONN_SYSTEM_SOCKET);
	return config_default_socket();
}

struct ctl_conn *
ctl_conn_get(struct ctl *ctl)
{
	char *path;

	if (ctl->conn == NULL) {
		path = socket_path(ctl->socket_opt);
		ctl->conn = conn_open(path);
		free(path);
	}
	return ctl->conn;
}

void
ctl_conn_free(struct ctl_conn *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c->path);
	free(c->buf);
	free(c);
}

void
ctl_conn_set_sigmask(struct ctl_conn *c, const sigset_t *mask)
{
	c->sigmask = mask;
}

/*
 * A failed write is remembered, not fatal: the daemon may have answered
 * before closing (too_large), so the caller goes on to read, and EOF then
 * reports this error.
 */
void
ctl_conn_send(struct ctl_conn *c, json_t *req)
{
	char *s;
	const char *p;
	size_t len;
	ssize_t n;

	s = json_dumps(req, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(req);
	if (s == NULL)
		ctl_cmd_exit(CTL_EXIT_ERROR, "cannot encode the request");
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
static enum ctl_conn_read
conn_poll(struct ctl_conn *c, double deadline)
{
	struct pollfd pfd;
	struct timespec ts, *tsp;
	double left;
	int n;

	for (;;) {
		tsp = NULL;
		if (deadline >= 0) {
			if ((left = deadline - now_mono()) <= 0)
				return CTL_CONN_TIMEOUT;
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
			return CTL_CONN_LINE;
		if (n == -1) {
			if (errno != EINTR)
				conn_lost(c, errno);
			if (c->sigmask != NULL)
				return CTL_CONN_INTR;
		}
	}
}

enum ctl_conn_read
ctl_conn_readline(struct ctl_conn *c, double deadline, char **line,
    size_t *len)
{
	enum ctl_conn_read r;
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
			return CTL_CONN_LINE;
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
				ctl_cmd_bad_response();
			c->size *= 2;
			c->buf = xreallocarray(c->buf, c->size, 1);
		}

		if ((r = conn_poll(c, deadline)) != CTL_CONN_LINE)
			return r;
		n = read(c->fd, c->buf + c->end, c->size - c->end);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			conn_lost(c, errno);
		}
		if (n == 0)
			return CTL_CONN_EOF;	/* a partial line is lost too */
		c->end += n;
	}
}

json_t *
ctl_conn_json(const char *line, size_t len)
{
	json_error_t jerr;
	json_t *j;

	/* JSON_ALLOW_NUL: output tails may hold NUL bytes. */
	j = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
	if (j == NULL || !json_is_object(j))
		ctl_cmd_bad_response();
	return j;
}

json_t *
ctl_conn_reply(struct ctl_conn *c, double deadline, const char **linep,
    size_t *lenp)
{
	char *line;
	size_t len;

	do {
		switch (ctl_conn_readline(c, deadline, &line, &len)) {
		case CTL_CONN_LINE:
			break;
		case CTL_CONN_EOF:
			conn_lost(c, 0);
		case CTL_CONN_TIMEOUT:
		case CTL_CONN_INTR:
			return NULL;
		}
	} while (len == 0);
	*linep = line;
	*lenp = len;
	return ctl_conn_json(line, len);
}

json_t *
ctl_conn_answer(struct ctl *ctl, double deadline)
{
	const char *line;
	size_t len;
	json_t *r;

	r = ctl_conn_reply(ctl_conn_get(ctl), deadline, &line, &len);
	if (r != NULL && ctl->json)
		ctl_fmt_put_line(line, len);
	return r;
}

json_t *
ctl_conn_call(struct ctl *ctl, json_t *req, double deadline)
{
	ctl_conn_send(ctl_conn_get(ctl), req);
	return ctl_conn_answer(ctl, deadline);
}
