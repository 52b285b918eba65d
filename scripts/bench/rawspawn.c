/*
 * rawspawn: the machine's limit for exec jobs.  NTHREADS threads share a
 * counter of COUNT jobs; each thread posix_spawns /bin/true and waitpids
 * it, one at a time, until the counter runs out.  Nothing else happens, so
 * no job runner on this machine can beat this rate with NTHREADS workers.
 *
 *	rawspawn [-r] NTHREADS COUNT
 *
 * -r spawns with the same recipe as jobd's runner instead of a bare
 * posix_spawn: stdout/stderr pipes, stdin from /dev/null, own session,
 * empty signal mask and default dispositions, closefrom(3), chdir("/"), an
 * eventfd per job, a pidfd polled with the pipes, the group killed after
 * the exit.  The gap between the two rates is what the recipe costs; the
 * gap between -r and jobd is what jobd's own machinery costs.
 *
 * COUNT/10 jobs (at most 500) run first, untimed, to warm the caches.
 *
 * Prints: jobs=N secs=S rate=JOBS_PER_S
 */
#define _GNU_SOURCE
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>

#include "benchutil.h"

extern char **environ;

static atomic_long left;
static int recipe;

static void
spawn_bare(void)
{
	char *argv[] = { "/bin/true", NULL };
	pid_t pid;
	int e, st;

	if ((e = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ)) != 0)
		die("posix_spawn: %s", strerror(e));
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
}

static void
spawn_recipe(void)
{
	char *argv[] = { "/bin/true", NULL }, buf[4096];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	struct pollfd pfd[3];
	int out[2], err[2], e, st, pidfd, stop;
	sigset_t set;
	pid_t pid;

	if ((stop = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    pipe2(out, O_CLOEXEC) == -1 || pipe2(err, O_CLOEXEC) == -1)
		die("pipe2: %s", strerror(errno));
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_init(&fa);
	sigemptyset(&set);
	posix_spawnattr_setsigmask(&attr, &set);
	memset(&set, 0xff, sizeof set);
	posix_spawnattr_setsigdefault(&attr, &set);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawn_file_actions_addchdir_np(&fa, "/");
	e = posix_spawn(&pid, argv[0], &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(out[1]);
	close(err[1]);
	if (e != 0)
		die("posix_spawn: %s", strerror(e));
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	pfd[0] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = out[0], .events = POLLIN };
	pfd[2] = (struct pollfd){ .fd = stop, .events = POLLIN };
	for (;;) {
		if (poll(pfd, 3, -1) == -1 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (pfd[1].revents != 0 && read(out[0], buf, sizeof buf) <= 0)
			pfd[1].fd = -1;
		if (pfd[0].revents != 0)
			break;
	}
	kill(-pid, SIGKILL);
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	close(pidfd);
	close(out[0]);
	close(err[0]);
	close(stop);
}

static void *
worker(void *arg)
{
	(void)arg;
	while (atomic_fetch_sub(&left, 1) > 0) {
		if (recipe)
			spawn_recipe();
		else
			spawn_bare();
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t *t;
	long n, count, i;
	double t0, t1;

	if (argc > 1 && strcmp(argv[1], "-r") == 0) {
		recipe = 1;
		argv++;
		argc--;
	}
	if (argc != 3)
		die("usage: rawspawn [-r] NTHREADS COUNT");
	n = atol(argv[1]);
	count = atol(argv[2]);
	if (n < 1 || count < 1)
		die("rawspawn: NTHREADS and COUNT must be positive");
	t = xmalloc((size_t)n * sizeof *t);
	for (i = 0; i < (count / 10 < 500 ? count / 10 : 500); i++) {
		if (recipe)
			spawn_recipe();
		else
			spawn_bare();
	}
	atomic_store(&left, count);
	t0 = now_s();
	for (i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, worker, NULL) != 0)
			die("pthread_create failed");
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	t1 = now_s();
	printf("jobs=%ld secs=%.6f rate=%.1f\n", count, t1 - t0,
	    (double)count / (t1 - t0));
	return 0;
}
