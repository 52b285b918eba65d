/*
 * runner: runs one job to its end (SPEC §2 "End of a job", "Timeout",
 * "Cancel", "Output", "Environment"; §5 "Every job process", "When jobd
 * runs as root").  A process job is started by spawn.c in its own session
 * with fds 0-2 only, as jobd or as its owner, its output is kept as two
 * bounded tails, and it is over when its main process exits: then what the
 * pipes hold is drained and the rest of its process group is killed, so
 * strays cannot outlive it or hold the worker.  Both ways of starting it
 * share everything after the spawn.
 *
 * Thread rule: runner_run runs on a worker thread and touches only its work
 * item and what it creates for it (the child, its pipes, its pidfd).  The
 * loop thread may write the item's stop_fd while the item is out; the
 * runner only reads it.  Other workers spawn at the same time, so every
 * descriptor made here is close-on-exec from birth.  SIGPIPE is blocked in
 * every daemon thread: a job that closes its stdin early shows up as EPIPE.
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "spawn.h"
#include "util.h"

#define RUNNER_CHUNK		(64 * 1024)
#define RUNNER_DEFAULT_PATH	"/usr/local/bin:/usr/bin:/bin"
/* Without a pidfd the child is polled for at this interval. */
#define RUNNER_POLL_MS		20

/* The last max bytes of one output stream, as a ring. */
struct tail {
	int		 fd;		/* read end, -1 once closed */
	char		*buf;
	size_t		 size;		/* allocated; grows up to max */
	size_t		 max;		/* the item's tail_bytes */
	size_t		 pos;		/* where the next byte goes */
	size_t		 len;		/* bytes held */
	uint64_t	 total;		/* bytes produced */
};

/* One process job while it runs; on the worker's stack. */
struct run {
	struct work_item *item;
	pid_t		 pid;
	int		 pidfd;		/* -1: no pidfd_open, poll with waitid */
	int		 in_fd;		/* write end of stdin, -1 once closed */
	size_t		 in_off;
	struct tail	 out;
	struct tail	 err;
	int		 stop_fd;	/* item's, -1 once nothing more to do */
	uint64_t	 stop_sum;
	/* RUN_TIMED_OUT or RUN_STOPPED once one of them happened first. */
	enum run_outcome end;
	double		 deadline;	/* timeout (monotonic), 0 = none */
	double		 kill_at;	/* SIGKILL due (monotonic), 0 = none */
	int		 killed;
	char		*scratch;	/* RUNNER_CHUNK bytes */
};

enum { PF_PID, PF_OUT, PF_ERR, PF_IN, PF_STOP, PF__COUNT };

/*
 * Copy valid UTF-8 to out (when not NULL) and replace each maximal invalid
 * subpart (Unicode's "best practice": a truncated but well-begun sequence is
 * one U+FFFD, any other bad byte is one) with U+FFFD.  Returns the length.
 */
static size_t
utf8_scan(const unsigned char *s, size_t len, char *out)
{
	size_t		 i = 0, o = 0, n, k;
	unsigned char	 c, lo, hi;

	while (i < len) {
		c = s[i];
		lo = 0x80;
		hi = 0xbf;
		if (c < 0x80)
			n = 0;
		else if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;	/* overlong */
			else if (c == 0xed)
				hi = 0x9f;	/* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;	/* overlong */
			else if (c == 0xf4)
				hi = 0x8f;	/* above U+10FFFF */
		} else
			n = SIZE_MAX;		/* 80-c1, f5-ff: never valid */

		if (n != SIZE_MAX) {
			for (k = 1; k <= n; k++) {
				if (i + k >= len || s[i + k] < lo ||
				    s[i + k] > hi)
					break;
				lo = 0x80;
				hi = 0xbf;
			}
			if (k > n) {
				if (out != NULL)
					memcpy(out + o, s + i, n + 1);
				o += n + 1;
				i += n + 1;
				continue;
			}
		} else
			k = 1;
		if (out != NULL)
			memcpy(out + o, "\xef\xbf\xbd", 3);
		o += 3;
		i += k;
	}
	return o;
}

char *
runner_utf8_clean(const char *s, size_t len, size_t *outlen)
{
	size_t	 n;
	char	*out;

	n = utf8_scan((const unsigned char *)s, len, NULL);
	out = xmalloc(n + 1);
	utf8_scan((const unsigned char *)s, len, out);
	out[n] = '\0';
	if (outlen != NULL)
		*outlen = n;
	return out;
}

static void
tail_add(struct tail *t, const char *data, size_t n)
{
	size_t	 want, first;

	t->total += n;
	if (t->max == 0 || n == 0)
		return;
	if (n >= t->max) {
		data += n - t->max;
		n = t->max;
	}

	/* Grow while the ring has not wrapped yet: buf[0..len) is the data. */
	want = t->len + n < t->max ? t->len + n : t->max;
	if (want > t->size) {
		t->size = t->size * 2 > 4096 ? t->size * 2 : 4096;
		if (t->size < want)
			t->size = want;
		if (t->size > t->max)
			t->size = t->max;
		t->buf = xreallocarray(t->buf, t->size, 1);
	}

	first = t->max - t->pos < n ? t->max - t->pos : n;
	memcpy(t->buf + t->pos, data, first);
	memcpy(t->buf, data + first, n - first);
	t->pos = (t->pos + n) % t->max;
	t->len = want;
}

/* Read one chunk; close the stream at EOF or on an error. */
static void
tail_read(struct tail *t, char *scratch, size_t max)
{
	ssize_t	 n;

	if (t->fd == -1)
		return;
	n = read(t->fd, scratch, max < RUNNER_CHUNK ? max : RUNNER_CHUNK);
	if (n > 0) {
		tail_add(t, scratch, n);
		return;
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	close(t->fd);
	t->fd = -1;
}

/*
 * Read what the pipe holds now and no more: a background child may still
 * be writing, and it is not waited for.
 */
static void
tail_drain(struct tail *t, char *scratch)
{
	int	 avail;
	uint64_t before;

	if (t->fd == -1 || ioctl(t->fd, FIONREAD, &avail) == -1)
		return;
	while (avail > 0 && t->fd != -1) {
		before = t->total;
		tail_read(t, scratch, avail);
		if (t->total == before)
			break;
		avail -= (int)(t->total - before);
	}
}

/* Hand the tail over as valid UTF-8, oldest byte first; frees the ring. */
static void
tail_finish(struct tail *t, char **out, size_t *len, int *truncated)
{
	char	*flat;

	if (t->len == t->max && t->pos != 0) {
		flat = xmalloc(t->len);
		memcpy(flat, t->buf + t->pos, t->len - t->pos);
		memcpy(flat + t->len - t->pos, t->buf, t->pos);
		free(t->buf);
		t->buf = flat;
		t->pos = 0;
	}
	*out = runner_utf8_clean(t->buf != NULL ? t->buf : "", t->len, len);
	*truncated = t->total > t->max;
	free(t->buf);
	t->buf = NULL;
	if (t->fd != -1)
		close(t->fd);
	t->fd = -1;
}

/* Poll timeout in ms until the monotonic time at, rounded up. */
static int
runner_ms_until(double at)
{
	double	 d = (at - now_mono()) * 1000.0;

	if (d <= 0)
		return 0;
	if (d >= INT_MAX / 2)
		return INT_MAX / 2;
	return (int)d + 1;
}

static void
runner_kill(struct run *r)
{
	kill(-r->pid, SIGKILL);
	r->killed = 1;
	r->stop_fd = -1;	/* nothing left to escalate */
}

static void
runner_term(struct run *r)
{
	double	 grace = r->item->kill_grace > 0 ? r->item->kill_grace : 0;

	kill(-r->pid, SIGTERM);
	/* A stopped job would not see SIGTERM until SIGKILL (systemd does this). */
	kill(-r->pid, SIGCONT);
	r->kill_at = now_mono() + grace;
}

/*
 * Read the stop requests written since the last read.  The first one wins
 * over a later timeout; a sum reaching RUNNER_STOP_NOW escalates whatever
 * is in progress to SIGKILL.
 */
static void
runner_stop(struct run *r)
{
	uint64_t v;
	ssize_t	 n;

	n = read(r->stop_fd, &v, sizeof v);
	if (n != (ssize_t)sizeof v) {
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		r->stop_fd = -1;
		return;
	}
	r->stop_sum = r->stop_sum + v < r->stop_sum ? UINT64_MAX :
	    r->stop_sum + v;
	if (r->end == RUN_EXITED) {
		r->end = RUN_STOPPED;
		if (r->stop_sum < RUNNER_STOP_NOW)
			runner_term(r);
	}
	if (r->stop_sum >= RUNNER_STOP_NOW && !r->killed)
		runner_kill(r);
}

/* Whether a stop was asked before anything started; reads it if so. */
static int
runner_stop_pending(int fd)
{
	struct pollfd	 pfd = { .fd = fd, .events = POLLIN };
	uint64_t	 v;

	if (fd == -1 || poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
		return 0;
	return read(fd, &v, sizeof v) == (ssize_t)sizeof v;
}

static void
runner_write_stdin(struct run *r)
{
	struct work_item *item = r->item;
	size_t		 left = item->stdin_len - r->in_off;
	ssize_t		 n;

	n = write(r->in_fd, item->stdin_data + r->in_off,
	    left < RUNNER_CHUNK ? left : RUNNER_CHUNK);
	if (n > 0)
		r->in_off += n;
	else if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	/* Done, or the job closed its stdin (EPIPE): it gets no more. */
	if (n <= 0 || r->in_off == item->stdin_len) {
		close(r->in_fd);
		r->in_fd = -1;
	}
}

/* Whether the main process has exited; it stays a zombie until reaped. */
static int
runner_exited(struct run *r, short revents)
{
	siginfo_t	 si;

	if (r->pidfd != -1)
		return revents != 0;
	memset(&si, 0, sizeof si);
	if (waitid(P_PID, r->pid, &si, WEXITED|WNOHANG|WNOWAIT) == -1)
		return errno != EINTR;
	return si.si_pid != 0;
}

/* Serve pipes, stop requests and timers until the main process exits. */
static void
runner_loop(struct run *r)
{
	struct pollfd	 pfd[PF__COUNT];
	double		 next;
	int		 i, ms;

	for (;;) {
		for (i = 0; i < PF__COUNT; i++) {
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		pfd[PF_PID].fd = r->pidfd;
		pfd[PF_OUT].fd = r->out.fd;
		pfd[PF_ERR].fd = r->err.fd;
		pfd[PF_IN].fd = r->in_fd;
		pfd[PF_IN].events = POLLOUT;
		pfd[PF_STOP].fd = r->stop_fd;

		next = 0;
		if (r->end == RUN_EXITED && r->deadline > 0)
			next = r->deadline;
		if (!r->killed && r->kill_at > 0 &&
		    (next == 0 || r->kill_at < next))
			next = r->kill_at;
		ms = next > 0 ? runner_ms_until(next) : -1;
		if (r->pidfd == -1 && (ms == -1 || ms > RUNNER_POLL_MS))
			ms = RUNNER_POLL_MS;

		if (poll(pfd, PF__COUNT, ms) == -1) {
			if (errno == EINTR)
				continue;
			/* Cannot wait on it any more: end it, the reap follows. */
			runner_kill(r);
			return;
		}
		if (pfd[PF_OUT].revents != 0)
			tail_read(&r->out, r->scratch, RUNNER_CHUNK);
		if (pfd[PF_ERR].revents != 0)
			tail_read(&r->err, r->scratch, RUNNER_CHUNK);
		if (pfd[PF_IN].revents != 0)
			runner_write_stdin(r);
		if (pfd[PF_STOP].revents & POLLIN)
			runner_stop(r);
		else if (pfd[PF_STOP].revents != 0)
			r->stop_fd = -1;	/* POLLNVAL: not ours to fix */

		if (r->end == RUN_EXITED && r->deadline > 0 &&
		    now_mono() >= r->deadline) {
			r->end = RUN_TIMED_OUT;
			runner_term(r);
		}
		if (!r->killed && r->kill_at > 0 && now_mono() >= r->kill_at)
			runner_kill(r);

		if (runner_exited(r, pfd[PF_PID].revents))
			return;
	}
}

/*
 * The environment: base minus every key the job sets, plus the job's.  The
 * strings are borrowed; only the array is the caller's to free.
 */
static char **
runner_env(char *const *base, char *const *env)
{
	char	**envp;
	size_t	  i, j, n = 0, klen;
	char	 *eq;

	envp = xcalloc(strv_len(base) + strv_len(env) + 1, sizeof *envp);
	for (i = 0; base != NULL && base[i] != NULL; i++) {
		eq = strchr(base[i], '=');
		klen = eq != NULL ? (size_t)(eq - base[i]) : strlen(base[i]);
		for (j = 0; env != NULL && env[j] != NULL; j++) {
			if (strncmp(env[j], base[i], klen) == 0 &&
			    (env[j][klen] == '=' || env[j][klen] == '\0'))
				break;
		}
		if (env == NULL || env[j] == NULL)
			envp[n++] = base[i];
	}
	for (j = 0; env != NULL && env[j] != NULL; j++)
		envp[n++] = env[j];
	return envp;
}

/*
 * The base environment of a job run as its owner, from scratch: nothing
 * of the daemon's (or its supervisor's) passes but LANG.  Owned strings.
 */
static char **
runner_user_env(const struct work_item *item, const struct spawn_user *u)
{
	char	**v = xcalloc(7, sizeof *v);
	size_t	  n = 0;

	xasprintf(&v[n++], "HOME=%s", u->home);
	xasprintf(&v[n++], "USER=%s", u->name);
	xasprintf(&v[n++], "LOGNAME=%s", u->name);
	xasprintf(&v[n++], "SHELL=%s", u->shell);
	xasprintf(&v[n++], "PATH=%s", RUNNER_DEFAULT_PATH);
	if (item->lang != NULL && *item->lang != '\0')
		xasprintf(&v[n++], "LANG=%s", item->lang);
	return v;
}

/*
 * Start the child with stdin from the item or /dev/null and stdout and
 * stderr to pipes; spawn.c does the rest (session, signals, fds, umask,
 * NOFILE, the user when u is not NULL, cwd, PATH search).  Returns 0, or
 * -1 with the reason in *error.
 */
static int
runner_spawn(struct run *r, char **envp, const struct spawn_user *u,
    char **error)
{
	struct work_item	*item = r->item;
	struct spawn_req	 req;
	size_t			 i;
	int			 in[2] = { -1, -1 }, out[2] = { -1, -1 };
	int			 err[2] = { -1, -1 }, rc = -1;

	/* Close-on-exec from birth: other workers spawn concurrently. */
	if (pipe2(out, O_CLOEXEC) == -1 || pipe2(err, O_CLOEXEC) == -1 ||
	    (item->stdin_data != NULL && pipe2(in, O_CLOEXEC) == -1)) {
		xasprintf(error, "spawn: pipe: %s", strerror(errno));
		goto out;
	}

	memset(&req, 0, sizeof req);
	req.argv = item->argv;
	req.envp = envp;
	for (i = 0; envp[i] != NULL && req.path == NULL; i++) {
		if (strncmp(envp[i], "PATH=", 5) == 0)
			req.path = envp[i] + 5;
	}
	req.cwd = item->cwd;
	/* The daemon keeps 0-2 open, so the pipes are never 0-2 here. */
	req.fd[0] = in[0];
	req.fd[1] = out[1];
	req.fd[2] = err[1];
	if (u != NULL) {
		req.set_ids = 1;
		req.uid = item->uid;
		req.gid = item->gid;
		req.groups = u->groups;
		req.ngroups = u->ngroups;
	}
	if (spawn_start(&req, &r->pid, error) == 0)
		rc = 0;

out:
	if (in[0] != -1)
		close(in[0]);
	if (out[1] != -1)
		close(out[1]);
	if (err[1] != -1)
		close(err[1]);
	if (rc == -1) {
		if (in[1] != -1)
			close(in[1]);
		if (out[0] != -1)
			close(out[0]);
		if (err[0] != -1)
			close(err[0]);
		return -1;
	}
	r->in_fd = in[1];
	r->out.fd = out[0];
	r->err.fd = err[0];
	/* Only this side is nonblocking: the job's ends stay blocking. */
	util_set_nonblock(out[0]);
	util_set_nonblock(err[0]);
	if (in[1] != -1)
		util_set_nonblock(in[1]);
	return 0;
}

/*
 * The main process has exited and is a zombie: its pid, and so its process
 * group id, cannot be reused until it is reaped.  Drain, kill what is left
 * of the group while that holds, then reap.
 */
static void
runner_reap(struct run *r)
{
	struct work_result	*res = &r->item->result;
	int			 st;

	tail_drain(&r->out, r->scratch);
	tail_drain(&r->err, r->scratch);
	kill(-r->pid, SIGKILL);
	while (waitpid(r->pid, &st, 0) == -1) {
		if (errno != EINTR) {
			st = 0;		/* not ours any more: a broken invariant */
			break;
		}
	}
	res->finished_at = now_real();

	if (WIFEXITED(st)) {
		res->outcome = RUN_EXITED;
		res->exit_code = WEXITSTATUS(st);
	} else if (WIFSIGNALED(st)) {
		res->outcome = RUN_SIGNALED;
		res->signal = WTERMSIG(st);
	}
	if (r->end != RUN_EXITED)
		res->outcome = r->end;
}

/* A sleep job: no process, only the clock and stop_fd. */
static void
runner_sleep(struct work_item *item)
{
	struct work_result	*res = &item->result;
	struct pollfd		 pfd;
	double			 end;
	uint64_t		 v;
	int			 n;

	res->started_at = now_real();
	end = now_mono() + item->sleep;
	res->outcome = RUN_EXITED;
	if (item->timeout > 0 && item->timeout < item->sleep) {
		end = now_mono() + item->timeout;
		res->outcome = RUN_TIMED_OUT;
	}
	pfd.fd = item->stop_fd;
	pfd.events = POLLIN;
	while (now_mono() < end) {
		pfd.revents = 0;
		n = poll(&pfd, pfd.fd >= 0 ? 1 : 0, runner_ms_until(end));
		if (n == -1 && errno != EINTR)
			pfd.fd = -1;
		if (n <= 0)
			continue;
		if ((pfd.revents & POLLIN) &&
		    read(pfd.fd, &v, sizeof v) == (ssize_t)sizeof v) {
			res->outcome = RUN_STOPPED;
			break;
		}
		if (!(pfd.revents & POLLIN))
			pfd.fd = -1;
	}
	res->exit_code = res->outcome == RUN_EXITED ? 0 : -1;
	res->finished_at = now_real();
}

void
runner_run(struct work_item *item)
{
	struct work_result	*res = &item->result;
	struct run		 r;
	struct spawn_user	 user;
	char			**envp = NULL, **user_env = NULL;

	free(res->out);
	free(res->err);
	free(res->error);
	memset(res, 0, sizeof *res);
	res->exit_code = -1;

	memset(&r, 0, sizeof r);
	r.item = item;
	r.pid = -1;
	r.pidfd = r.in_fd = r.out.fd = r.err.fd = -1;
	r.out.max = r.err.max = item->tail_bytes;
	r.stop_fd = item->stop_fd;
	r.end = RUN_EXITED;
	memset(&user, 0, sizeof user);

	if (item->kind == JOB_SLEEP) {
		runner_sleep(item);
		goto out;
	}
	if (runner_stop_pending(item->stop_fd)) {
		/* Stopped before it started: nothing to kill. */
		res->started_at = res->finished_at = now_real();
		res->outcome = RUN_STOPPED;
		goto out;
	}

	res->started_at = now_real();
	if (item->run_as) {
		/* Here, not on the loop: NSS may take its time (LDAP...). */
		if (spawn_user_lookup(item->uid, item->gid, &user,
		    &res->error) == -1)
			goto failed;
		user_env = runner_user_env(item, &user);
		envp = runner_env(user_env, item->env);
	} else
		envp = runner_env(item->base_env, item->env);
	if (runner_spawn(&r, envp, item->run_as ? &user : NULL,
	    &res->error) == -1)
		goto failed;
	if (item->timeout > 0)
		r.deadline = now_mono() + item->timeout;
	/* Always close-on-exec; ENOSYS (before 5.3) falls back to waitid. */
	r.pidfd = (int)syscall(SYS_pidfd_open, r.pid, 0);
	if (r.in_fd != -1 && item->stdin_len == 0) {
		close(r.in_fd);
		r.in_fd = -1;
	}
	r.scratch = xmalloc(RUNNER_CHUNK);

	runner_loop(&r);
	runner_reap(&r);
	goto out;

failed:
	res->outcome = RUN_SPAWN_FAILED;
	res->finished_at = now_real();
out:
	tail_finish(&r.out, &res->out, &res->out_len, &res->out_truncated);
	tail_finish(&r.err, &res->err, &res->err_len, &res->err_truncated);
	if (r.in_fd != -1)
		close(r.in_fd);
	if (r.pidfd != -1)
		close(r.pidfd);
	free(r.scratch);
	free(envp);
	strv_free(user_env);
	spawn_user_clear(&user);
}

void
runner_item_free(struct work_item *item)
{
	if (item == NULL)
		return;
	strv_free(item->argv);
	strv_free(item->env);
	free(item->cwd);
	free(item->stdin_data);
	free(item->result.out);
	free(item->result.err);
	free(item->result.error);
	free(item);
}
