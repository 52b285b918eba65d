/*
 * spawn: starts one job process the way SPEC §5 wants every job process:
 * its own session, default signal dispositions and an empty mask, fds 0-2
 * only, umask 022, the NOFILE soft limit at 1024 (or the hard limit if
 * lower), and -- when jobd runs as root -- the submitter's groups, gid and
 * uid, set in that order and checked, before the cwd is entered and the
 * program is searched for as that user.
 *
 * Why not posix_spawn: it cannot change credentials or rlimits.  Why
 * clone(CLONE_VM|CLONE_VFORK) rather than fork: the daemon is
 * multithreaded and may be large; fork copies its page tables for every
 * job, a vfork-style child borrows the parent's memory until execve (as
 * glibc's posix_spawn does).  Measured with `true` jobs through the runner
 * (one worker, 4 KiB pages): clone ~600 us a job like posix_spawn, fork
 * ~750 us in a small process, ~22 ms with 200 MB resident, ~60 ms with
 * 1 GB.  The price: the child shares memory with the parent thread, which
 * sleeps in clone meanwhile.  From clone to execve the child only calls
 * syscall(2) (its errno is that sleeping thread's, which is harmless) on
 * data built before the clone: no malloc, no locks, no libc state, no
 * sanitizer interceptor.  Under ThreadSanitizer the child is made with
 * fork: TSan intercepts clone and runs its post-fork bookkeeping in the
 * child, which with CLONE_VM rewrites the parent's TSan state (the parent
 * then dies at its next pthread_create, "starting new threads after
 * multi-threaded fork is not supported").
 *
 * Errors in the child: it writes {stage, errno} to an O_CLOEXEC pipe and
 * exits 127; the parent reads the pipe (EOF: execve succeeded), reaps the
 * child and turns the pair into a message.
 *
 * Thread rule: no state of its own; every call owns what it creates, and
 * every descriptor is close-on-exec from birth, since other workers spawn
 * at the same time.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/capability.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spawn.h"
#include "util.h"

#define SPAWN_DEFAULT_PATH	"/usr/local/bin:/usr/bin:/bin"
#define SPAWN_NOFILE		1024
#define SPAWN_STACK		(32 * 1024)
/* The kernel's sigset_t, for the raw rt_sig* calls (glibc's is larger). */
#define SPAWN_KSIGSET		(_NSIG / 8)

/* fork under TSan (see above); -DSPAWN_FORK=1 forces it, to compare. */
#if !defined(SPAWN_FORK) && defined(__SANITIZE_THREAD__)
#define SPAWN_FORK 1
#endif
#if !defined(SPAWN_FORK) && defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPAWN_FORK 1
#endif
#endif

/*
 * The child runs on borrowed memory: no ASan shadow writes or UBSan
 * reports from it (GCC and clang both skip instrumenting such functions).
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define CHILD	__attribute__((no_sanitize("address", "undefined")))
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define CHILD	__attribute__((no_sanitize("address", "undefined")))
#endif
#endif
#ifndef CHILD
#define CHILD
#endif

/* 32-bit x86 and arm: the plain calls take 16-bit ids. */
#ifdef SYS_setresuid32
#define SYS_SETGROUPS	SYS_setgroups32
#define SYS_SETRESGID	SYS_setresgid32
#define SYS_SETRESUID	SYS_setresuid32
#define SYS_GETRESGID	SYS_getresgid32
#define SYS_GETRESUID	SYS_getresuid32
#define SYS_SETUID	SYS_setuid32
#else
#define SYS_SETGROUPS	SYS_setgroups
#define SYS_SETRESGID	SYS_setresgid
#define SYS_SETRESUID	SYS_setresuid
#define SYS_GETRESGID	SYS_getresgid
#define SYS_GETRESUID	SYS_getresuid
#define SYS_SETUID	SYS_setuid
#endif
#ifndef SYS_close_range
#define SYS_close_range	436
#endif

/* Where the child failed; the parent's message depends on it. */
enum {
	ST_SETSID,
	ST_SIGNALS,
	ST_FDS,
	ST_CLOSE,
	ST_RLIMIT,
	ST_SETGROUPS,
	ST_SETGID,
	ST_SETUID,
	ST_CHECK_IDS,
	ST_CHECK_ROOT,
	ST_CHECK_CAPS,
	ST_CHDIR,
	ST_EXEC,
	ST__COUNT
};

static const char *const spawn_stage[ST__COUNT] = {
	[ST_SETSID] = "setsid",
	[ST_SIGNALS] = "sigaction",
	[ST_FDS] = "dup2",
	[ST_CLOSE] = "close_range",
	[ST_RLIMIT] = "setrlimit",
	[ST_SETGROUPS] = "setgroups",
	[ST_SETGID] = "setgid",
	[ST_SETUID] = "setuid",
};

/* Everything the child reads, built before the clone. */
struct child {
	const struct spawn_req *req;
	const char	*cwd;
	char		**cand;		/* execve candidates, NULL-terminated */
	int		 search;	/* cand comes from a PATH search */
	int		 errfd;		/* write end of the error pipe */
	uint64_t	 nofile[2];	/* struct rlimit64 for prlimit64 */
	long		 maxfd;		/* close loop bound without close_range */
	unsigned long	 ksa[8];	/* zeroed kernel sigaction: SIG_DFL */
	unsigned long	 kmask[2];	/* empty kernel sigset */
};

static CHILD __attribute__((noreturn)) void
child_fail(const struct child *c, int stage, int err)
{
	int	 msg[2];

	msg[0] = stage;
	msg[1] = err;
	syscall(SYS_write, (long)c->errfd, msg, sizeof msg);
	for (;;)
		syscall(SYS_exit_group, 127L);
}

/* Close every fd from 3 up but the error pipe. */
static CHILD void
child_close(const struct child *c)
{
	unsigned int	 e = (unsigned int)c->errfd;
	long		 fd;

	if ((e == 3 || syscall(SYS_close_range, 3L, (long)e - 1, 0L) == 0) &&
	    syscall(SYS_close_range, (long)e + 1, (long)~0U, 0L) == 0)
		return;
	if (errno != ENOSYS)
		child_fail(c, ST_CLOSE, errno);
	for (fd = 3; fd < c->maxfd; fd++) {	/* before Linux 5.9 */
		if (fd != c->errfd)
			syscall(SYS_close, fd);
	}
}

/*
 * Groups, gid, uid, in that order (the uid last: after it nothing else may
 * be changed), then make sure they hold and cannot be undone.
 */
static CHILD void
child_ids(const struct child *c)
{
	const struct spawn_req		*req = c->req;
	struct __user_cap_header_struct	 hdr;
	struct __user_cap_data_struct	 cap[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
	uid_t				 ru, eu, su;
	gid_t				 rg, eg, sg;

	if (syscall(SYS_SETGROUPS, (long)req->ngroups, req->groups) == -1)
		child_fail(c, ST_SETGROUPS, errno);
	if (syscall(SYS_SETRESGID, (long)req->gid, (long)req->gid,
	    (long)req->gid) == -1)
		child_fail(c, ST_SETGID, errno);
	if (syscall(SYS_SETRESUID, (long)req->uid, (long)req->uid,
	    (long)req->uid) == -1)
		child_fail(c, ST_SETUID, errno);

	if (syscall(SYS_GETRESUID, &ru, &eu, &su) == -1 ||
	    syscall(SYS_GETRESGID, &rg, &eg, &sg) == -1 ||
	    ru != req->uid || eu != req->uid || su != req->uid ||
	    rg != req->gid || eg != req->gid || sg != req->gid)
		child_fail(c, ST_CHECK_IDS, 0);
	if (req->uid == 0)
		return;			/* root jobs, if the config allows them */
	if (syscall(SYS_SETUID, 0L) != -1)
		child_fail(c, ST_CHECK_ROOT, 0);
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	hdr.pid = 0;
	if (syscall(SYS_capget, &hdr, cap) == -1 ||
	    (cap[0].effective | cap[1].effective | cap[0].permitted |
	    cap[1].permitted) != 0)
		child_fail(c, ST_CHECK_CAPS, 0);
}

/* execve each candidate in turn, as execvp does; never returns. */
static CHILD __attribute__((noreturn)) void
child_exec(const struct child *c)
{
	char	**p;
	int	  err = ENOENT, e;

	for (p = c->cand; *p != NULL; p++) {
		syscall(SYS_execve, *p, c->req->argv, c->req->envp);
		e = errno;
		if (!c->search) {
			err = e;
			break;
		}
		if (e == EACCES)
			err = EACCES;	/* unless a later one runs */
		else if (e != ENOENT && e != ENOTDIR && e != ESTALE &&
		    e != ENODEV && e != ETIMEDOUT) {
			err = e;
			break;
		}
	}
	child_fail(c, ST_EXEC, err);
}

/* The child, in SPEC order; only raw system calls from here to execve. */
static CHILD int
child_main(void *arg)
{
	const struct child	*c = arg;
	const struct spawn_req	*req = c->req;
	long			 fd, i;
	int			 sig;

	if (syscall(SYS_setsid) == -1)
		child_fail(c, ST_SETSID, errno);
	/* Every signal was blocked before the clone, so none lands between. */
	for (sig = 1; sig < _NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP &&
		    syscall(SYS_rt_sigaction, (long)sig, c->ksa, NULL,
		    (long)SPAWN_KSIGSET) == -1)
			child_fail(c, ST_SIGNALS, errno);
	}
	if (syscall(SYS_rt_sigprocmask, (long)SIG_SETMASK, c->kmask, NULL,
	    (long)SPAWN_KSIGSET) == -1)
		child_fail(c, ST_SIGNALS, errno);

	for (i = 0; i < 3; i++) {
		if ((fd = req->fd[i]) == -1 && (fd = syscall(SYS_openat,
		    (long)AT_FDCWD, "/dev/null", i == 0 ? (long)O_RDONLY :
		    (long)O_WRONLY)) == -1)
			child_fail(c, ST_FDS, errno);
		/* dup3 clears close-on-exec on the copy. */
		if (fd != i && syscall(SYS_dup3, fd, i, 0L) == -1)
			child_fail(c, ST_FDS, errno);
	}
	child_close(c);
	syscall(SYS_umask, 022L);
	if (syscall(SYS_prlimit64, 0L, (long)RLIMIT_NOFILE, c->nofile,
	    NULL) == -1)
		child_fail(c, ST_RLIMIT, errno);
	if (req->set_ids)
		child_ids(c);
	/* As the job's user: a directory they cannot enter fails here. */
	if (syscall(SYS_chdir, c->cwd) == -1)
		child_fail(c, ST_CHDIR, errno);
	child_exec(c);
}

/*
 * The paths to try: argv[0] itself when it has a slash (relative to the
 * cwd, entered first), else each PATH entry's; an empty entry is the cwd.
 */
static int
spawn_candidates(struct child *c)
{
	const char	*name, *path, *p, *end;
	size_t		 n = 1, i = 0;

	if (c->req->argv == NULL || (name = c->req->argv[0]) == NULL ||
	    *name == '\0')
		return -1;
	if (strchr(name, '/') != NULL) {
		c->cand = xcalloc(2, sizeof *c->cand);
		c->cand[0] = xstrdup(name);
		return 0;
	}
	c->search = 1;
	path = c->req->path != NULL ? c->req->path : SPAWN_DEFAULT_PATH;
	for (p = path; *p != '\0'; p++)
		n += *p == ':';
	c->cand = xcalloc(n + 1, sizeof *c->cand);
	for (p = path;; p = end + 1) {
		end = strchrnul(p, ':');
		if (end == p)
			c->cand[i++] = xstrdup(name);
		else {
			xasprintf(&c->cand[i++], "%.*s/%s", (int)(end - p), p,
			    name);
		}
		if (*end == '\0')
			break;
	}
	return 0;
}

static void
spawn_cause(const struct child *c, const int msg[2], char **cause)
{
	unsigned long	 uid = c->req->uid, gid = c->req->gid;

	switch (msg[0]) {
	case ST_EXEC:
		xasprintf(cause, "spawn: %s", strerror(msg[1]));
		break;
	case ST_CHDIR:
		xasprintf(cause, "spawn: chdir %s: %s", c->cwd,
		    strerror(msg[1]));
		break;
	case ST_CHECK_IDS:
		xasprintf(cause, "spawn: setuid: ids are not uid %lu gid %lu "
		    "after the switch", uid, gid);
		break;
	case ST_CHECK_ROOT:
		xasprintf(cause, "spawn: setuid: uid %lu could regain root",
		    uid);
		break;
	case ST_CHECK_CAPS:
		xasprintf(cause, "spawn: setuid: uid %lu kept capabilities",
		    uid);
		break;
	default:
		if (msg[0] < 0 || msg[0] >= ST__COUNT ||
		    spawn_stage[msg[0]] == NULL)
			xasprintf(cause, "spawn: child stage %d: %s", msg[0],
			    strerror(msg[1]));
		else {
			xasprintf(cause, "spawn: %s: %s", spawn_stage[msg[0]],
			    strerror(msg[1]));
		}
		break;
	}
}

int
spawn_start(const struct spawn_req *req, pid_t *pidp, char **cause)
{
	struct child	 c;
	struct rlimit	 rl;
	sigset_t	 all, old;
	int		 pfd[2] = { -1, -1 }, msg[2], r = -1, e;
	ssize_t		 n;
	pid_t		 pid;
	size_t		 i;
#ifndef SPAWN_FORK
	/* The child's stack: this thread sleeps in clone while it is used. */
	char		 stack[SPAWN_STACK] __attribute__((aligned(16)));
#endif

	*pidp = -1;
	*cause = NULL;
	memset(&c, 0, sizeof c);
	c.req = req;
	c.cwd = req->cwd != NULL ? req->cwd : "/";
	if (spawn_candidates(&c) == -1) {
		xasprintf(cause, "spawn: %s", strerror(ENOENT));
		goto out;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		xasprintf(cause, "spawn: getrlimit: %s", strerror(errno));
		goto out;
	}
	c.nofile[0] = rl.rlim_max < SPAWN_NOFILE ? rl.rlim_max : SPAWN_NOFILE;
	c.nofile[1] = rl.rlim_max;
	c.maxfd = rl.rlim_cur > INT_MAX ? INT_MAX : (long)rl.rlim_cur;
	if (pipe2(pfd, O_CLOEXEC) == -1) {
		xasprintf(cause, "spawn: pipe: %s", strerror(errno));
		goto out;
	}
	c.errfd = pfd[1];

	/*
	 * Block everything until the child has reset its dispositions: a
	 * signal caught in between would run the daemon's handler in the
	 * child (on shared memory, with CLONE_VM).
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
#ifdef SPAWN_FORK
	if ((pid = fork()) == 0)
		child_main(&c);
#else
	pid = clone(child_main, stack + sizeof stack,
	    CLONE_VM|CLONE_VFORK|SIGCHLD, &c);
#endif
	e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(pfd[1]);
	if (pid == -1) {
#ifdef SPAWN_FORK
		xasprintf(cause, "spawn: fork: %s", strerror(e));
#else
		xasprintf(cause, "spawn: clone: %s", strerror(e));
#endif
		goto out;
	}

	/* EOF: the write end went away with a successful execve. */
	while ((n = read(pfd[0], msg, sizeof msg)) == -1 && errno == EINTR)
		;
	if (n != 0) {
		if (n != (ssize_t)sizeof msg) {
			msg[0] = -1;
			msg[1] = n == -1 ? errno : EIO;
			kill(pid, SIGKILL);
		}
		while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
			;
		spawn_cause(&c, msg, cause);
		goto out;
	}
	*pidp = pid;
	r = 0;
out:
	if (pfd[0] != -1)
		close(pfd[0]);
	for (i = 0; c.cand != NULL && c.cand[i] != NULL; i++)
		free(c.cand[i]);
	free(c.cand);
	return r;
}

int
spawn_user_lookup(uid_t uid, gid_t gid, struct spawn_user *u, char **cause)
{
	struct passwd	 pw, *res = NULL;
	char		*buf = NULL;
	size_t		 size, i;
	long		 max;
	int		 e, n, r = -1;

	memset(u, 0, sizeof *u);
	*cause = NULL;
	max = sysconf(_SC_GETPW_R_SIZE_MAX);
	size = max > 0 ? (size_t)max : 4096;
	for (;;) {
		buf = xreallocarray(buf, size, 1);
		if ((e = getpwuid_r(uid, &pw, buf, size, &res)) != ERANGE ||
		    size >= 1024 * 1024)
			break;
		size *= 2;
	}
	if (res == NULL) {
		/* NSS modules may say "not found" with any of these. */
		if (e == 0 || e == ENOENT || e == ESRCH || e == EBADF ||
		    e == EPERM) {
			xasprintf(cause, "spawn: uid %lu has no passwd entry",
			    (unsigned long)uid);
		} else {
			xasprintf(cause, "spawn: getpwuid_r: uid %lu: %s",
			    (unsigned long)uid, strerror(e));
		}
		goto out;
	}
	u->name = xstrdup(pw.pw_name);
	u->home = xstrdup(pw.pw_dir);
	u->shell = xstrdup(*pw.pw_shell != '\0' ? pw.pw_shell : "/bin/sh");

	/*
	 * The user's groups as a login gives them (`id -G NAME`: the database's
	 * with pw_gid), plus the gid the job runs with when it differs (the
	 * submitter's effective gid, e.g. under newgrp).
	 */
	n = 32;
	for (;;) {
		u->groups = xreallocarray(u->groups, (size_t)n + 1,
		    sizeof *u->groups);
		e = n;
		if (getgrouplist(u->name, pw.pw_gid, u->groups, &e) != -1)
			break;
		n = e > n ? e : n * 2;
		if (n > 1024 * 1024) {
			xasprintf(cause, "spawn: getgrouplist: %s: too many "
			    "groups", u->name);
			goto out;
		}
	}
	u->ngroups = (size_t)e;
	for (i = 0; i < u->ngroups && u->groups[i] != gid; i++)
		;
	if (i == u->ngroups)
		u->groups[u->ngroups++] = gid;	/* room for one more above */
	r = 0;
out:
	free(buf);
	if (r == -1)
		spawn_user_clear(u);
	return r;
}

void
spawn_user_clear(struct spawn_user *u)
{
	free(u->name);
	free(u->home);
	free(u->shell);
	free(u->groups);
	memset(u, 0, sizeof *u);
}
