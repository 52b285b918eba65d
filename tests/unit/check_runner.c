/*
 * check_runner: the runner on real processes.  Each test builds work items
 * by hand, runs them on the test's thread (or a few threads), and checks
 * the result; timings are only bounded generously from above.
 */
#include <sys/types.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "util.h"

static char	**base_env;

static char **
strv_make(const char *first, ...)
{
	va_list		 ap;
	const char	*s;
	char		**v = NULL;
	size_t		 n = 0;

	va_start(ap, first);
	for (s = first; s != NULL; s = va_arg(ap, const char *)) {
		v = xreallocarray(v, n + 2, sizeof *v);
		v[n++] = xstrdup(s);
	}
	va_end(ap);
	v = xreallocarray(v, n + 1, sizeof *v);
	v[n] = NULL;
	return v;
}

static struct work_item *
item_new(enum job_kind kind)
{
	struct work_item *item = xcalloc(1, sizeof *item);

	item->id = 1;
	item->kind = kind;
	item->base_env = base_env;
	item->kill_grace = 1;
	item->tail_bytes = 65536;
	item->stop_fd = -1;
	return item;
}

static struct work_item *
item_shell(const char *cmd)
{
	struct work_item *item = item_new(JOB_SHELL);

	item->argv = strv_make("/bin/sh", "-c", cmd, NULL);
	return item;
}

static void
item_stdin(struct work_item *item, const char *data, size_t len)
{
	item->stdin_data = xmemdup(data, len);
	item->stdin_len = len;
}

/* Run and return the seconds it took. */
static double
run(struct work_item *item)
{
	double	 t0 = now_mono();

	runner_run(item);
	ck_assert_ptr_nonnull(item->result.out);
	ck_assert_ptr_nonnull(item->result.err);
	ck_assert_int_eq(item->result.out[item->result.out_len], '\0');
	ck_assert_int_eq(item->result.err[item->result.err_len], '\0');
	ck_assert(item->result.started_at > 0);
	ck_assert(item->result.finished_at >= item->result.started_at);
	return now_mono() - t0;
}

/* Whether pid has died (gone, or a zombie nobody reaped yet). */
static int
pid_gone(pid_t pid)
{
	char	 path[64], buf[512], *p;
	FILE	*f;
	int	 i, zombie;

	for (i = 0; i < 500; i++) {
		if (kill(pid, 0) == -1 && errno == ESRCH)
			return 1;
		snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
		zombie = 0;
		if ((f = fopen(path, "r")) != NULL) {
			if (fgets(buf, sizeof buf, f) != NULL &&
			    (p = strrchr(buf, ')')) != NULL)
				zombie = p[1] == ' ' && p[2] == 'Z';
			fclose(f);
		}
		if (zombie)
			return 1;
		usleep(10000);
	}
	return 0;
}

/* Writes up to two values to an eventfd after delays, as the loop would. */
struct stopper {
	pthread_t	 thread;
	int		 fd;
	double		 delay[2];
	uint64_t	 value[2];
};

static void *
stopper_main(void *arg)
{
	struct stopper	*s = arg;
	int		 i;

	for (i = 0; i < 2; i++) {
		if (s->value[i] == 0)
			continue;
		usleep((useconds_t)(s->delay[i] * 1e6));
		if (write(s->fd, &s->value[i], sizeof s->value[i]) !=
		    (ssize_t)sizeof s->value[i])
			abort();
	}
	return NULL;
}

static void
stopper_start(struct stopper *s, struct work_item *item, double d0,
    uint64_t v0, double d1, uint64_t v1)
{
	s->fd = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(s->fd, 0);
	s->delay[0] = d0;
	s->value[0] = v0;
	s->delay[1] = d1;
	s->value[1] = v1;
	item->stop_fd = s->fd;
	ck_assert_int_eq(pthread_create(&s->thread, NULL, stopper_main, s), 0);
}

static void
stopper_join(struct stopper *s)
{
	pthread_join(s->thread, NULL);
	close(s->fd);
}

START_TEST(test_true)
{
	struct work_item *item = item_new(JOB_ARGV);

	item->argv = strv_make("true", NULL);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_int_eq(item->result.exit_code, 0);
	ck_assert_int_eq(item->result.signal, 0);
	ck_assert_str_eq(item->result.out, "");
	ck_assert_str_eq(item->result.err, "");
	ck_assert_int_eq(item->result.out_truncated, 0);
	ck_assert_ptr_null(item->result.error);
	runner_item_free(item);
}
END_TEST

START_TEST(test_exit_code)
{
	struct work_item *item = item_shell("exit 3");

	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_int_eq(item->result.exit_code, 3);
	ck_assert_int_eq(item->result.signal, 0);
	runner_item_free(item);
}
END_TEST

START_TEST(test_signaled)
{
	struct work_item *item = item_shell("kill -9 $$");

	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_SIGNALED);
	ck_assert_int_eq(item->result.signal, 9);
	ck_assert_int_eq(item->result.exit_code, -1);
	ck_assert_ptr_null(item->result.error);
	runner_item_free(item);
}
END_TEST

START_TEST(test_stdout_stderr)
{
	struct work_item *item = item_shell("echo out; echo err >&2; echo more");

	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_str_eq(item->result.out, "out\nmore\n");
	ck_assert_str_eq(item->result.err, "err\n");
	ck_assert_uint_eq(item->result.err_len, 4);
	ck_assert_int_eq(item->result.out_truncated, 0);
	ck_assert_int_eq(item->result.err_truncated, 0);
	runner_item_free(item);
}
END_TEST

START_TEST(test_stdin_small)
{
	struct work_item *item = item_new(JOB_ARGV);

	item->argv = strv_make("cat", NULL);
	item_stdin(item, "hello\0world", 11);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_int_eq(item->result.exit_code, 0);
	ck_assert_uint_eq(item->result.out_len, 11);
	ck_assert_mem_eq(item->result.out, "hello\0world", 11);
	runner_item_free(item);
}
END_TEST

START_TEST(test_stdin_large)
{
	struct work_item *item = item_new(JOB_ARGV);
	size_t		 i, n = 1 << 20;
	char		*data = xmalloc(n);

	for (i = 0; i < n; i++)
		data[i] = 'a' + (char)(i % 26);
	item->argv = strv_make("cat", NULL);
	item->tail_bytes = 2 * n;
	item_stdin(item, data, n);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_int_eq(item->result.exit_code, 0);
	ck_assert_uint_eq(item->result.out_len, n);
	ck_assert_int_eq(item->result.out_truncated, 0);
	ck_assert(memcmp(item->result.out, data, n) == 0);
	free(data);
	runner_item_free(item);
}
END_TEST

/* The job stops reading early: EPIPE, not a hang or a signal. */
START_TEST(test_stdin_unread)
{
	struct work_item *item = item_new(JOB_ARGV);
	size_t		 n = 4 << 20;
	char		*data = xmalloc(n);

	memset(data, 'x', n);
	item->argv = strv_make("head", "-c", "10", NULL);
	item_stdin(item, data, n);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_int_eq(item->result.exit_code, 0);
	ck_assert_str_eq(item->result.out, "xxxxxxxxxx");
	free(data);
	runner_item_free(item);
}
END_TEST

START_TEST(test_stdin_empty)
{
	struct work_item *item;
	double		 t;

	/* No stdin: /dev/null, never the daemon's own. */
	item = item_new(JOB_ARGV);
	item->argv = strv_make("cat", NULL);
	t = run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_int_eq(item->result.exit_code, 0);
	ck_assert_str_eq(item->result.out, "");
	ck_assert(t < 10);
	runner_item_free(item);

	/* An empty string: a pipe closed at once. */
	item = item_new(JOB_ARGV);
	item->argv = strv_make("cat", NULL);
	item_stdin(item, "", 0);
	run(item);
	ck_assert_int_eq(item->result.exit_code, 0);
	ck_assert_str_eq(item->result.out, "");
	runner_item_free(item);
}
END_TEST

START_TEST(test_tail_truncated)
{
	struct work_item *item;
	char		 want[101];

	item = item_shell("head -c 1000000 /dev/zero | tr '\\0' a; echo x >&2");
	item->tail_bytes = 100;
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	memset(want, 'a', 100);
	want[100] = '\0';
	ck_assert_str_eq(item->result.out, want);
	ck_assert_int_eq(item->result.out_truncated, 1);
	ck_assert_str_eq(item->result.err, "x\n");
	ck_assert_int_eq(item->result.err_truncated, 0);
	runner_item_free(item);
}
END_TEST

/* Many writes of odd sizes wrap the ring at every offset. */
START_TEST(test_tail_ring)
{
	struct work_item *item;
	char		*all = NULL, *p;
	size_t		 len = 0, i;
	FILE		*f;

	f = open_memstream(&all, &len);
	for (i = 1; i <= 30000; i++)
		fprintf(f, "%zu\n", i);
	fclose(f);

	item = item_shell("i=1; while [ $i -le 30000 ]; do echo $i; "
	    "i=$((i+1)); done");
	item->tail_bytes = 1000;
	run(item);
	ck_assert_uint_eq(item->result.out_len, 1000);
	ck_assert_int_eq(item->result.out_truncated, 1);
	p = all + len - 1000;
	ck_assert(memcmp(item->result.out, p, 1000) == 0);
	runner_item_free(item);

	/* Exactly tail_bytes is not truncated; one more is. */
	item = item_shell("printf abc; printf xyz >&2");
	item->tail_bytes = 3;
	run(item);
	ck_assert_str_eq(item->result.out, "abc");
	ck_assert_int_eq(item->result.out_truncated, 0);
	runner_item_free(item);
	item = item_shell("printf ab; printf cd");
	item->tail_bytes = 3;
	run(item);
	ck_assert_str_eq(item->result.out, "bcd");
	ck_assert_int_eq(item->result.out_truncated, 1);
	runner_item_free(item);
	free(all);
}
END_TEST

START_TEST(test_tail_zero)
{
	struct work_item *item;

	item = item_shell("echo hi");
	item->tail_bytes = 0;
	run(item);
	ck_assert_str_eq(item->result.out, "");
	ck_assert_int_eq(item->result.out_truncated, 1);
	ck_assert_int_eq(item->result.err_truncated, 0);
	runner_item_free(item);
}
END_TEST

START_TEST(test_output_huge)
{
	struct work_item *item;
	struct rusage	 ru;

	item = item_shell("head -c 200000000 /dev/zero | tr '\\0' a");
	item->tail_bytes = 4096;
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_int_eq(item->result.exit_code, 0);
	ck_assert_uint_eq(item->result.out_len, 4096);
	ck_assert_int_eq(item->result.out_truncated, 1);
	ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
	ck_assert_int_lt(ru.ru_maxrss, 150 * 1024);	/* KiB */
	runner_item_free(item);
}
END_TEST

START_TEST(test_utf8_output)
{
	struct work_item *item;

	item = item_shell("printf '\\377ok\\303'");
	run(item);
	ck_assert_str_eq(item->result.out, "\xef\xbf\xbdok\xef\xbf\xbd");
	runner_item_free(item);

	/* A character cut by the tail: "€€" tail 4 is AC E2 82 AC. */
	item = item_shell("printf '\\342\\202\\254\\342\\202\\254'");
	item->tail_bytes = 4;
	run(item);
	ck_assert_str_eq(item->result.out, "\xef\xbf\xbd\xe2\x82\xac");
	ck_assert_int_eq(item->result.out_truncated, 1);
	runner_item_free(item);
}
END_TEST

static void
check_clean(const char *in, size_t len, const char *want, size_t wantlen)
{
	size_t	 n;
	char	*out;

	out = runner_utf8_clean(in, len, &n);
	ck_assert_uint_eq(n, wantlen);
	ck_assert_mem_eq(out, want, wantlen);
	ck_assert_int_eq(out[n], '\0');
	free(out);
}

#define CLEAN(in, want) \
	check_clean(in, sizeof in - 1, want, sizeof want - 1)
#define R "\xef\xbf\xbd"

START_TEST(test_utf8_clean)
{
	char	*out;

	CLEAN("", "");
	CLEAN("plain ascii", "plain ascii");
	CLEAN("a\0b", "a\0b");					/* NUL is valid */
	CLEAN("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
	    "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");		/* é € 😀 */
	CLEAN("\xef\xbf\xbf\xf4\x8f\xbf\xbf", "\xef\xbf\xbf\xf4\x8f\xbf\xbf");
	CLEAN("\xff", R);
	CLEAN("\x80x", R "x");
	CLEAN("\xc0\x80", R R);					/* overlong NUL */
	CLEAN("\xc1\xbf", R R);
	CLEAN("\xe0\x80\xaf", R R R);				/* overlong */
	CLEAN("\xf0\x80\x80\xaf", R R R R);
	CLEAN("\xed\xa0\x80", R R R);				/* surrogate */
	CLEAN("\xed\x9f\xbf", "\xed\x9f\xbf");			/* U+D7FF */
	CLEAN("\xf4\x90\x80\x80", R R R R);			/* > U+10FFFF */
	CLEAN("\xf5\x80", R R);
	CLEAN("a\xf0\x9f\x98", "a" R);				/* cut at end */
	CLEAN("\x98\x80z", R R "z");				/* cut at start */
	CLEAN("\xe2\x82x", R "x");				/* cut inside */
	CLEAN("\xe2\xe2\x82\xac", R "\xe2\x82\xac");
	ck_assert_ptr_nonnull(out = runner_utf8_clean("", 0, NULL));
	ck_assert_str_eq(out, "");
	free(out);
}
END_TEST

START_TEST(test_missing_program)
{
	struct work_item *item;

	item = item_new(JOB_ARGV);
	item->argv = strv_make("no-such-program-jobd", "x", NULL);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_SPAWN_FAILED);
	ck_assert_str_eq(item->result.error, "spawn: No such file or directory");
	ck_assert_int_eq(item->result.exit_code, -1);
	ck_assert_int_eq(item->result.signal, 0);
	ck_assert_str_eq(item->result.out, "");
	runner_item_free(item);

	item = item_new(JOB_ARGV);
	item->argv = strv_make("/nonexistent/prog", NULL);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_SPAWN_FAILED);
	ck_assert_str_eq(item->result.error, "spawn: No such file or directory");
	runner_item_free(item);
}
END_TEST

/* A temp dir holding an executable "myprog" and a non-executable "noexec". */
static char *
make_bindir(void)
{
	char	*dir = xstrdup("/tmp/check_runner.XXXXXX"), *path;
	FILE	*f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	xasprintf(&path, "%s/myprog", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs("#!/bin/sh\necho myprog-ran \"$@\"\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0755), 0);
	free(path);
	xasprintf(&path, "%s/noexec", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs("#!/bin/sh\necho no\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0644), 0);
	free(path);
	return dir;
}

static void
remove_bindir(char *dir)
{
	char	*cmd;

	xasprintf(&cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	free(dir);
}

START_TEST(test_path_from_env)
{
	struct work_item *item;
	char		*dir = make_bindir(), *kv;

	/* Not found through the base PATH (the daemon's)... */
	item = item_new(JOB_ARGV);
	item->argv = strv_make("myprog", "arg", NULL);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_SPAWN_FAILED);
	runner_item_free(item);

	/* ...but through the job's. */
	xasprintf(&kv, "PATH=/nonexistent:%s:/usr/bin:/bin", dir);
	item = item_new(JOB_ARGV);
	item->argv = strv_make("myprog", "arg", NULL);
	item->env = strv_make(kv, NULL);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_int_eq(item->result.exit_code, 0);
	ck_assert_str_eq(item->result.out, "myprog-ran arg\n");
	runner_item_free(item);

	/* Found but not executable. */
	item = item_new(JOB_ARGV);
	item->argv = strv_make("noexec", NULL);
	item->env = strv_make(kv, NULL);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_SPAWN_FAILED);
	ck_assert_str_eq(item->result.error, "spawn: Permission denied");
	runner_item_free(item);

	free(kv);
	remove_bindir(dir);
}
END_TEST

START_TEST(test_cwd)
{
	struct work_item *item;

	item = item_new(JOB_ARGV);
	item->argv = strv_make("pwd", NULL);
	item->cwd = xstrdup("/tmp");
	run(item);
	ck_assert_str_eq(item->result.out, "/tmp\n");
	runner_item_free(item);

	item = item_new(JOB_ARGV);
	item->argv = strv_make("pwd", NULL);
	run(item);
	ck_assert_str_eq(item->result.out, "/\n");
	runner_item_free(item);

	item = item_new(JOB_ARGV);
	item->argv = strv_make("pwd", NULL);
	item->cwd = xstrdup("/nonexistent-jobd-dir");
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_SPAWN_FAILED);
	ck_assert_str_eq(item->result.error,
	    "spawn: chdir /nonexistent-jobd-dir: No such file or directory");
	ck_assert_int_eq(item->result.exit_code, -1);
	runner_item_free(item);
}
END_TEST

START_TEST(test_env)
{
	struct work_item *item;

	item = item_shell("echo $JOBD_BASE $JOBD_X $JOBD_NEW; "
	    "env | grep -c '^JOBD_X='");
	item->env = strv_make("JOBD_X=new", "JOBD_NEW=1", NULL);
	run(item);
	ck_assert_str_eq(item->result.out, "base new 1\n1\n");
	runner_item_free(item);

	/* A key that is a prefix of a base key does not remove it. */
	item = item_shell("echo $JOBD_BASE $JOBD_X $JOBD_");
	item->env = strv_make("JOBD_=p", NULL);
	run(item);
	ck_assert_str_eq(item->result.out, "base old p\n");
	runner_item_free(item);
}
END_TEST

START_TEST(test_timeout)
{
	struct work_item *item = item_new(JOB_ARGV);
	double		 t;

	item->argv = strv_make("sleep", "30", NULL);
	item->timeout = 0.3;
	t = run(item);
	ck_assert_int_eq(item->result.outcome, RUN_TIMED_OUT);
	ck_assert_int_eq(item->result.signal, SIGTERM);
	ck_assert_int_eq(item->result.exit_code, -1);
	ck_assert_ptr_null(item->result.error);
	ck_assert(t < 10);
	runner_item_free(item);
}
END_TEST

START_TEST(test_timeout_ignores_term)
{
	struct work_item *item = item_shell("trap '' TERM; sleep 30");
	double		 t;

	item->timeout = 0.3;
	item->kill_grace = 0.5;
	t = run(item);
	ck_assert_int_eq(item->result.outcome, RUN_TIMED_OUT);
	ck_assert_int_eq(item->result.signal, SIGKILL);
	ck_assert(t >= 0.75);
	ck_assert(t < 10);
	runner_item_free(item);
}
END_TEST

START_TEST(test_timeout_exit0)
{
	struct work_item *item;

	item = item_shell("trap 'echo bye; exit 0' TERM; sleep 30 & wait");
	item->timeout = 0.3;
	item->kill_grace = 5;
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_TIMED_OUT);
	ck_assert_int_eq(item->result.exit_code, 0);
	ck_assert_int_eq(item->result.signal, 0);
	ck_assert_str_eq(item->result.out, "bye\n");
	runner_item_free(item);
}
END_TEST

START_TEST(test_timeout_grandchild)
{
	struct work_item *item = item_shell("sleep 30 & echo $!; sleep 30");
	long		 pid;
	double		 t;

	item->timeout = 0.3;
	t = run(item);
	ck_assert_int_eq(item->result.outcome, RUN_TIMED_OUT);
	ck_assert(t < 10);
	ck_assert_int_eq(sscanf(item->result.out, "%ld", &pid), 1);
	ck_assert(pid_gone((pid_t)pid));
	runner_item_free(item);
}
END_TEST

START_TEST(test_background_holds_pipes)
{
	struct work_item *item = item_shell("sleep 30 & echo $!; echo done");
	char		*nl;
	long		 pid;
	double		 t;

	t = run(item);
	ck_assert(t < 10);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_int_eq(item->result.exit_code, 0);
	ck_assert_int_eq(sscanf(item->result.out, "%ld", &pid), 1);
	ck_assert_ptr_nonnull(nl = strchr(item->result.out, '\n'));
	ck_assert_str_eq(nl + 1, "done\n");
	ck_assert(pid_gone((pid_t)pid));
	runner_item_free(item);
}
END_TEST

START_TEST(test_stop_graceful)
{
	struct work_item *item = item_new(JOB_ARGV);
	struct stopper	 s;
	double		 t;

	item->argv = strv_make("sleep", "30", NULL);
	item->timeout = 20;
	stopper_start(&s, item, 0.3, RUNNER_STOP_GRACEFUL, 0, 0);
	t = run(item);
	stopper_join(&s);
	ck_assert_int_eq(item->result.outcome, RUN_STOPPED);
	ck_assert_int_eq(item->result.signal, SIGTERM);
	ck_assert(t < 10);
	runner_item_free(item);
}
END_TEST

START_TEST(test_stop_now)
{
	struct work_item *item = item_shell("trap '' TERM; sleep 30");
	struct stopper	 s;
	double		 t;

	item->kill_grace = 30;
	stopper_start(&s, item, 0.3, RUNNER_STOP_NOW, 0, 0);
	t = run(item);
	stopper_join(&s);
	ck_assert_int_eq(item->result.outcome, RUN_STOPPED);
	ck_assert_int_eq(item->result.signal, SIGKILL);
	ck_assert(t < 10);
	runner_item_free(item);
}
END_TEST

START_TEST(test_stop_escalates)
{
	struct work_item *item = item_shell("trap '' TERM; sleep 30");
	struct stopper	 s;
	double		 t;

	item->kill_grace = 30;
	stopper_start(&s, item, 0.2, RUNNER_STOP_GRACEFUL, 0.3,
	    RUNNER_STOP_NOW);
	t = run(item);
	stopper_join(&s);
	ck_assert_int_eq(item->result.outcome, RUN_STOPPED);
	ck_assert_int_eq(item->result.signal, SIGKILL);
	ck_assert(t < 10);
	runner_item_free(item);
}
END_TEST

/* A timeout came first: a later stop may hurry the kill but not the state. */
START_TEST(test_timeout_then_stop)
{
	struct work_item *item = item_shell("trap '' TERM; sleep 30");
	struct stopper	 s;
	double		 t;

	item->timeout = 0.2;
	item->kill_grace = 30;
	stopper_start(&s, item, 0.8, RUNNER_STOP_NOW, 0, 0);
	t = run(item);
	stopper_join(&s);
	ck_assert_int_eq(item->result.outcome, RUN_TIMED_OUT);
	ck_assert_int_eq(item->result.signal, SIGKILL);
	ck_assert(t < 10);
	runner_item_free(item);
}
END_TEST

START_TEST(test_stop_before_start)
{
	struct work_item *item = item_new(JOB_ARGV);
	uint64_t	 v = RUNNER_STOP_GRACEFUL;
	int		 fd = eventfd(0, EFD_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, &v, sizeof v), sizeof v);
	item->argv = strv_make("sleep", "30", NULL);
	item->stop_fd = fd;
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_STOPPED);
	ck_assert_int_eq(item->result.exit_code, -1);
	ck_assert_int_eq(item->result.signal, 0);
	ck_assert_ptr_null(item->result.error);
	close(fd);
	runner_item_free(item);
}
END_TEST

START_TEST(test_only_fds_0_2)
{
	struct work_item *item = item_shell("ls /proc/$$/fd");
	int		 fd;

	/* A descriptor the daemon leaked without close-on-exec. */
	ck_assert_int_ge(fd = open("/dev/null", O_RDONLY), 0);
	ck_assert_int_eq(dup2(fd, 40), 40);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_str_eq(item->result.out, "0\n1\n2\n");
	close(fd);
	close(40);
	runner_item_free(item);
}
END_TEST

START_TEST(test_signals_reset)
{
	struct work_item *item;
	sigset_t	 set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGPIPE);
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);

	item = item_new(JOB_ARGV);
	item->argv = strv_make("grep", "-E", "^Sig(Blk|Ign)",
	    "/proc/self/status", NULL);
	run(item);
	ck_assert_str_eq(item->result.out,
	    "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
	runner_item_free(item);

	/* yes dies of SIGPIPE (128 + 13) rather than seeing EPIPE. */
	item = item_shell("(yes; echo $? >&2) | head -1");
	run(item);
	ck_assert_int_eq(item->result.exit_code, 0);
	ck_assert_str_eq(item->result.out, "y\n");
	ck_assert_str_eq(item->result.err, "141\n");
	runner_item_free(item);
}
END_TEST

START_TEST(test_own_session)
{
	struct work_item *item = item_shell("cut -d' ' -f1,5,6 /proc/$$/stat");
	long		 pid, pgid, sid;

	run(item);
	ck_assert_int_eq(sscanf(item->result.out, "%ld %ld %ld", &pid, &pgid,
	    &sid), 3);
	ck_assert_int_eq(pgid, pid);
	ck_assert_int_eq(sid, pid);
	ck_assert_int_ne(pgid, getpgrp());
	runner_item_free(item);
}
END_TEST

START_TEST(test_sleep)
{
	struct work_item *item;
	struct stopper	 s;
	double		 t;

	item = item_new(JOB_SLEEP);
	item->sleep = 0.2;
	t = run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_int_eq(item->result.exit_code, 0);
	ck_assert_str_eq(item->result.out, "");
	ck_assert_str_eq(item->result.err, "");
	ck_assert(t >= 0.19 && t < 10);
	runner_item_free(item);

	item = item_new(JOB_SLEEP);
	item->sleep = 0;
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_int_eq(item->result.exit_code, 0);
	runner_item_free(item);

	item = item_new(JOB_SLEEP);
	item->sleep = 30;
	item->timeout = 0.2;
	t = run(item);
	ck_assert_int_eq(item->result.outcome, RUN_TIMED_OUT);
	ck_assert_int_eq(item->result.exit_code, -1);
	ck_assert(t < 10);
	runner_item_free(item);

	item = item_new(JOB_SLEEP);
	item->sleep = 0.2;
	item->timeout = 30;
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	runner_item_free(item);

	item = item_new(JOB_SLEEP);
	item->sleep = 30;
	stopper_start(&s, item, 0.2, RUNNER_STOP_GRACEFUL, 0, 0);
	t = run(item);
	stopper_join(&s);
	ck_assert_int_eq(item->result.outcome, RUN_STOPPED);
	ck_assert_int_eq(item->result.exit_code, -1);
	ck_assert(t < 10);
	runner_item_free(item);
}
END_TEST

/* Workers run jobs side by side; none may hold another's pipes open. */
#define NWORKERS 4

static void *
worker_main(void *arg)
{
	runner_run(arg);
	return NULL;
}

START_TEST(test_concurrent)
{
	struct work_item *items[NWORKERS];
	pthread_t	 threads[NWORKERS];
	size_t		 n = 256 * 1024;
	char		*data = xmalloc(n);
	int		 i;

	for (i = 0; i < NWORKERS; i++) {
		memset(data, 'a' + i, n);
		items[i] = item_new(JOB_ARGV);
		items[i]->argv = strv_make("cat", NULL);
		items[i]->tail_bytes = n;
		item_stdin(items[i], data, n);
	}
	for (i = 0; i < NWORKERS; i++) {
		ck_assert_int_eq(pthread_create(&threads[i], NULL, worker_main,
		    items[i]), 0);
	}
	for (i = 0; i < NWORKERS; i++) {
		pthread_join(threads[i], NULL);
		memset(data, 'a' + i, n);
		ck_assert_int_eq(items[i]->result.outcome, RUN_EXITED);
		ck_assert_uint_eq(items[i]->result.out_len, n);
		ck_assert(memcmp(items[i]->result.out, data, n) == 0);
		runner_item_free(items[i]);
	}
	free(data);
}
END_TEST

START_TEST(test_item_free)
{
	struct work_item *item = item_new(JOB_ARGV);

	runner_item_free(NULL);
	item->argv = strv_make("echo", "x", NULL);
	item->env = strv_make("A=1", NULL);
	item->cwd = xstrdup("/");
	item_stdin(item, "in", 2);
	runner_run(item);
	ck_assert_str_eq(item->result.out, "x\n");
	runner_item_free(item);
}
END_TEST

/* SPEC §5: umask 022 and NOFILE 1024 whatever the daemon's are. */
START_TEST(test_process_limits)
{
	struct work_item *item;
	struct rlimit	 rl;
	char		 want[64];

	umask(077);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;		/* as a daemon raising its own */
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	snprintf(want, sizeof want, "%lu\n0022\n", rl.rlim_max < 1024 ?
	    (unsigned long)rl.rlim_max : 1024UL);
	item = item_shell("ulimit -n; umask");
	run(item);
	ck_assert_str_eq(item->result.out, want);
	runner_item_free(item);

	/* A hard limit below 1024 is the soft limit then. */
	rl.rlim_cur = rl.rlim_max = 512;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	item = item_shell("ulimit -n; ulimit -Hn");
	run(item);
	ck_assert_str_eq(item->result.out, "512\n512\n");
	runner_item_free(item);
}
END_TEST

/*
 * Jobs run as their owner (SPEC §5 "When jobd runs as root").  These need
 * root, and CI runs them as root: not being root is a failure, not a skip.
 */
#define NOBODY		65534
#define NO_SUCH_UID	54321

static void
root_setup(void)
{
	ck_assert_msg(geteuid() == 0, "the run_as tests must run as root "
	    "(CI does); euid is %ld", (long)geteuid());
	ck_assert_msg(getpwuid(NOBODY) != NULL, "uid %d (nobody) has no "
	    "passwd entry", NOBODY);
}

static struct work_item *
item_user(uid_t uid, gid_t gid, const char *cmd)
{
	struct work_item *item = item_shell(cmd);

	item->run_as = 1;
	item->uid = uid;
	item->gid = gid;
	return item;
}

/* The first line of a command's output, without its newline. */
static char *
command_line(const char *cmd)
{
	char	 buf[4096];
	FILE	*f;

	ck_assert_ptr_nonnull(f = popen(cmd, "r"));
	ck_assert_ptr_nonnull(fgets(buf, sizeof buf, f));
	ck_assert_int_eq(pclose(f), 0);
	buf[strcspn(buf, "\n")] = '\0';
	return xstrdup(buf);
}

/* Whether a word is one of the space-separated words of s. */
static int
has_word(const char *s, const char *word)
{
	size_t	 n = strlen(word);

	for (; (s = strstr(s, word)) != NULL; s += n) {
		if ((s[n] == ' ' || s[n] == '\n' || s[n] == '\0'))
			return 1;
	}
	return 0;
}

START_TEST(test_user_ids)
{
	struct work_item *item;
	char		*groups, *want;

	groups = command_line("id -G nobody");
	xasprintf(&want, "%d\n%d\n%s\nnobody\n", NOBODY, NOBODY, groups);
	item = item_user(NOBODY, NOBODY, "id -u; id -g; id -G; id -un");
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_str_eq(item->result.err, "");
	ck_assert_str_eq(item->result.out, want);
	runner_item_free(item);
	free(want);

	/* The owner's gid (the submitter's egid) wins; the groups stay. */
	item = item_user(NOBODY, 100, "id -u; id -g; id -G");
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert(strncmp(item->result.out, "65534\n100\n", 10) == 0);
	ck_assert(has_word(item->result.out + 10, "100"));
	ck_assert(has_word(item->result.out + 10, groups));
	runner_item_free(item);
	free(groups);

	/* Root jobs (allow_root_jobs) go through the same path. */
	item = item_user(0, 0, "id -u; id -g");
	run(item);
	ck_assert_str_eq(item->result.out, "0\n0\n");
	runner_item_free(item);
}
END_TEST

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The job's `env`, sorted, one string with a newline after each. */
static char *
env_sorted(const char *out)
{
	char	*copy = xstrdup(out), *line, *save = NULL, **v = NULL, *all;
	size_t	 n = 0, i, len = 0;

	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		v = xreallocarray(v, n + 1, sizeof *v);
		v[n++] = line;
		len += strlen(line) + 1;
	}
	qsort(v, n, sizeof *v, cmp_str);
	all = xcalloc(len + 1, 1);
	for (i = 0; i < n; i++) {
		strcat(all, v[i]);
		strcat(all, "\n");
	}
	free(v);
	free(copy);
	return all;
}

START_TEST(test_user_env)
{
	struct work_item *item;
	struct passwd	*pw;
	char		**env, *want, *got;

	ck_assert_ptr_nonnull(pw = getpwuid(NOBODY));
	/* What the daemon's base would pass: none of it may reach the job. */
	env = strv_make("PATH=/daemon/bin", "HOME=/root", "USER=root",
	    "LD_PRELOAD=/tmp/evil.so", "NOTIFY_SOCKET=/run/systemd/notify",
	    "JOBD_BASE=base", "LANG=xx_daemon_env", NULL);

	item = item_new(JOB_ARGV);
	item->argv = strv_make("env", NULL);
	item->base_env = env;
	item->run_as = 1;
	item->uid = NOBODY;
	item->gid = NOBODY;
	item->lang = "C.UTF-8";
	item->env = strv_make("JOBD_X=1", "SHELL=/bin/bash", NULL);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	xasprintf(&want, "HOME=%s\nJOBD_X=1\nLANG=C.UTF-8\nLOGNAME=%s\n"
	    "PATH=/usr/local/bin:/usr/bin:/bin\nSHELL=/bin/bash\nUSER=%s\n",
	    pw->pw_dir, pw->pw_name, pw->pw_name);
	got = env_sorted(item->result.out);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	runner_item_free(item);

	/* No LANG when the daemon has none; the shell from the entry. */
	item = item_new(JOB_ARGV);
	item->argv = strv_make("env", NULL);
	item->base_env = env;
	item->run_as = 1;
	item->uid = NOBODY;
	item->gid = NOBODY;
	run(item);
	xasprintf(&want, "HOME=%s\nLOGNAME=%s\n"
	    "PATH=/usr/local/bin:/usr/bin:/bin\nSHELL=%s\nUSER=%s\n",
	    pw->pw_dir, pw->pw_name, *pw->pw_shell != '\0' ? pw->pw_shell :
	    "/bin/sh", pw->pw_name);
	got = env_sorted(item->result.out);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	runner_item_free(item);
	strv_free(env);
}
END_TEST

/* SPEC §5 "Every job process", as another user, from a hostile parent. */
START_TEST(test_user_process)
{
	struct work_item *item;
	struct rlimit	 rl;
	sigset_t	 set;
	long		 pid, pgid, sid;
	char		 want[64];
	int		 fd;

	umask(077);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	ck_assert_int_ge(fd = open("/dev/null", O_RDONLY), 0);
	ck_assert_int_eq(dup2(fd, 40), 40);	/* leaked, no close-on-exec */
	sigfillset(&set);
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);

	snprintf(want, sizeof want, "%lu\n0022\n0\n1\n2\n",
	    rl.rlim_max < 1024 ? (unsigned long)rl.rlim_max : 1024UL);
	item = item_user(NOBODY, NOBODY, "ulimit -n; umask; ls /proc/$$/fd");
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_str_eq(item->result.out, want);
	runner_item_free(item);

	item = item_new(JOB_ARGV);
	item->argv = strv_make("grep", "-E", "^(Sig(Blk|Ign)|Cap(Prm|Eff|Amb)):",
	    "/proc/self/status", NULL);
	item->run_as = 1;
	item->uid = NOBODY;
	item->gid = NOBODY;
	run(item);
	ck_assert_str_eq(item->result.out,
	    "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
	    "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
	    "CapAmb:\t0000000000000000\n");
	runner_item_free(item);

	item = item_user(NOBODY, NOBODY, "cut -d' ' -f1,5,6 /proc/$$/stat");
	run(item);
	ck_assert_int_eq(sscanf(item->result.out, "%ld %ld %ld", &pid, &pgid,
	    &sid), 3);
	ck_assert_int_eq(pgid, pid);
	ck_assert_int_eq(sid, pid);
	runner_item_free(item);

	/* Input and both outputs, as for any job. */
	item = item_user(NOBODY, NOBODY, "cat; echo err >&2");
	item_stdin(item, "hello", 5);
	run(item);
	ck_assert_str_eq(item->result.out, "hello");
	ck_assert_str_eq(item->result.err, "err\n");
	runner_item_free(item);
	close(fd);
	close(40);
}
END_TEST

/* Whether this process has no child left, reaped or not. */
static int
no_children(void)
{
	return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

/* The cwd is entered as the job's user, not as root. */
START_TEST(test_user_cwd)
{
	struct work_item *item;
	char		*dir = xstrdup("/tmp/check_runner.XXXXXX"), *want;

	ck_assert_ptr_nonnull(mkdtemp(dir));	/* 0700, root's */
	item = item_user(NOBODY, NOBODY, "pwd");
	item->cwd = xstrdup(dir);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_SPAWN_FAILED);
	xasprintf(&want, "spawn: chdir %s: Permission denied", dir);
	ck_assert_str_eq(item->result.error, want);
	ck_assert_int_eq(item->result.exit_code, -1);
	ck_assert_int_eq(item->result.signal, 0);
	ck_assert_str_eq(item->result.out, "");
	ck_assert(no_children());
	runner_item_free(item);
	free(want);

	/* jobd itself may enter it. */
	item = item_shell("pwd");
	item->cwd = xstrdup(dir);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	xasprintf(&want, "%s\n", dir);
	ck_assert_str_eq(item->result.out, want);
	runner_item_free(item);
	free(want);

	item = item_user(NOBODY, NOBODY, "pwd");
	item->cwd = xstrdup("/tmp");
	run(item);
	ck_assert_str_eq(item->result.out, "/tmp\n");
	runner_item_free(item);

	item = item_user(NOBODY, NOBODY, "pwd");
	item->cwd = xstrdup("/nonexistent-jobd-dir");
	run(item);
	ck_assert_str_eq(item->result.error,
	    "spawn: chdir /nonexistent-jobd-dir: No such file or directory");
	runner_item_free(item);

	ck_assert_int_eq(rmdir(dir), 0);
	free(dir);
}
END_TEST

static void
write_script(const char *dir, const char *name, const char *body,
    mode_t mode)
{
	char	*path;
	FILE	*f;

	xasprintf(&path, "%s/%s", dir, name);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	ck_assert_int_eq(chmod(path, mode), 0);
	free(path);
}

static struct work_item *
item_user_argv(const char *prog, const char *path)
{
	struct work_item *item = item_new(JOB_ARGV);

	item->argv = strv_make(prog, NULL);
	item->run_as = 1;
	item->uid = NOBODY;
	item->gid = NOBODY;
	if (path != NULL) {
		item->env = xcalloc(2, sizeof *item->env);
		xasprintf(&item->env[0], "PATH=%s", path);
	}
	return item;
}

/* The program is searched for and run as the job's user. */
START_TEST(test_user_exec)
{
	struct work_item *item;
	char		*a = xstrdup("/tmp/check_runner.XXXXXX");
	char		*b = xstrdup("/tmp/check_runner.XXXXXX");
	char		*path, *prog;

	ck_assert_ptr_nonnull(mkdtemp(a));
	ck_assert_ptr_nonnull(mkdtemp(b));
	ck_assert_int_eq(chmod(a, 0755), 0);
	ck_assert_int_eq(chmod(b, 0755), 0);
	write_script(a, "rootonly", "echo root", 0700);
	write_script(a, "jobd-which", "echo a", 0700);
	write_script(b, "jobd-which", "echo b", 0755);
	xasprintf(&path, "%s:%s", a, b);
	xasprintf(&prog, "%s/rootonly", a);

	item = item_user_argv(prog, NULL);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_SPAWN_FAILED);
	ck_assert_str_eq(item->result.error, "spawn: Permission denied");
	ck_assert(no_children());
	runner_item_free(item);

	item = item_user_argv("rootonly", path);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_SPAWN_FAILED);
	ck_assert_str_eq(item->result.error, "spawn: Permission denied");
	runner_item_free(item);

	/* Root would run a's; the user cannot, so b's runs. */
	item = item_user_argv("jobd-which", path);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert_str_eq(item->result.out, "b\n");
	runner_item_free(item);
	item = item_user_argv("jobd-which", path);
	item->run_as = 0;
	run(item);
	ck_assert_str_eq(item->result.out, "a\n");
	runner_item_free(item);

	item = item_user_argv("no-such-program-jobd", NULL);
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_SPAWN_FAILED);
	ck_assert_str_eq(item->result.error, "spawn: No such file or directory");
	runner_item_free(item);

	free(prog);
	free(path);
	remove_bindir(a);
	remove_bindir(b);
}
END_TEST

START_TEST(test_user_no_passwd)
{
	struct work_item *item;

	ck_assert_msg(getpwuid(NO_SUCH_UID) == NULL, "uid %d has a passwd "
	    "entry here", NO_SUCH_UID);
	item = item_user(NO_SUCH_UID, NO_SUCH_UID, "true");
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_SPAWN_FAILED);
	ck_assert_str_eq(item->result.error,
	    "spawn: uid 54321 has no passwd entry");
	ck_assert_int_eq(item->result.exit_code, -1);
	ck_assert(no_children());
	runner_item_free(item);
}
END_TEST

/* A daemon that is not root cannot switch: the child says where it failed. */
START_TEST(test_user_not_root)
{
	struct work_item *item;

	ck_assert_int_eq(setgroups(0, NULL), 0);
	ck_assert_int_eq(setresgid(NOBODY, NOBODY, NOBODY), 0);
	ck_assert_int_eq(setresuid(NOBODY, NOBODY, NOBODY), 0);
	item = item_user(0, 0, "true");
	run(item);
	ck_assert_int_eq(item->result.outcome, RUN_SPAWN_FAILED);
	ck_assert_str_eq(item->result.error,
	    "spawn: setgroups: Operation not permitted");
	ck_assert(no_children());
	runner_item_free(item);
}
END_TEST

START_TEST(test_user_timeout)
{
	struct work_item *item;
	struct stopper	 s;
	long		 pid;
	double		 t;

	item = item_user(NOBODY, NOBODY, "sleep 30 & echo $!; sleep 30");
	item->timeout = 0.3;
	t = run(item);
	ck_assert_int_eq(item->result.outcome, RUN_TIMED_OUT);
	ck_assert_int_eq(item->result.signal, SIGTERM);
	ck_assert(t < 10);
	ck_assert_int_eq(sscanf(item->result.out, "%ld", &pid), 1);
	ck_assert(pid_gone((pid_t)pid));
	runner_item_free(item);

	item = item_user(NOBODY, NOBODY, "trap '' TERM; sleep 30 & echo $!; "
	    "sleep 30");
	stopper_start(&s, item, 0.3, RUNNER_STOP_GRACEFUL, 0, 0);
	item->kill_grace = 0.3;
	t = run(item);
	stopper_join(&s);
	ck_assert_int_eq(item->result.outcome, RUN_STOPPED);
	ck_assert_int_eq(item->result.signal, SIGKILL);
	ck_assert(t < 10);
	ck_assert_int_eq(sscanf(item->result.out, "%ld", &pid), 1);
	ck_assert(pid_gone((pid_t)pid));
	runner_item_free(item);

	/* A stray that keeps the pipes open does not hold the worker. */
	item = item_user(NOBODY, NOBODY, "sleep 30 & echo $!");
	t = run(item);
	ck_assert_int_eq(item->result.outcome, RUN_EXITED);
	ck_assert(t < 10);
	ck_assert_int_eq(sscanf(item->result.out, "%ld", &pid), 1);
	ck_assert(pid_gone((pid_t)pid));
	runner_item_free(item);
}
END_TEST

/* Workers spawn as users and as jobd side by side. */
START_TEST(test_user_concurrent)
{
	struct work_item *items[NWORKERS * 2];
	pthread_t	 threads[NWORKERS * 2];
	size_t		 n = 64 * 1024;
	char		*data = xmalloc(n), want[64];
	int		 i, round;

	for (round = 0; round < 5; round++) {
		for (i = 0; i < NWORKERS * 2; i++) {
			memset(data, 'a' + i, n);
			items[i] = item_shell("cat; id -u >&2");
			items[i]->run_as = i % 2;
			items[i]->uid = NOBODY;
			items[i]->gid = NOBODY;
			items[i]->tail_bytes = n;
			item_stdin(items[i], data, n);
		}
		for (i = 0; i < NWORKERS * 2; i++) {
			ck_assert_int_eq(pthread_create(&threads[i], NULL,
			    worker_main, items[i]), 0);
		}
		for (i = 0; i < NWORKERS * 2; i++) {
			pthread_join(threads[i], NULL);
			memset(data, 'a' + i, n);
			ck_assert_int_eq(items[i]->result.outcome, RUN_EXITED);
			ck_assert_uint_eq(items[i]->result.out_len, n);
			ck_assert(memcmp(items[i]->result.out, data, n) == 0);
			snprintf(want, sizeof want, "%d\n", i % 2 ? NOBODY : 0);
			ck_assert_str_eq(items[i]->result.err, want);
			runner_item_free(items[i]);
		}
	}
	free(data);
}
END_TEST

static Suite *
runner_suite(void)
{
	Suite	*s = suite_create("runner");
	TCase	*tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_true);
	tcase_add_test(tc, test_exit_code);
	tcase_add_test(tc, test_signaled);
	tcase_add_test(tc, test_stdout_stderr);
	tcase_add_test(tc, test_stdin_small);
	tcase_add_test(tc, test_stdin_large);
	tcase_add_test(tc, test_stdin_unread);
	tcase_add_test(tc, test_stdin_empty);
	tcase_add_test(tc, test_tail_truncated);
	tcase_add_test(tc, test_tail_ring);
	tcase_add_test(tc, test_tail_zero);
	tcase_add_test(tc, test_output_huge);
	tcase_add_test(tc, test_utf8_output);
	tcase_add_test(tc, test_utf8_clean);
	tcase_add_test(tc, test_missing_program);
	tcase_add_test(tc, test_path_from_env);
	tcase_add_test(tc, test_cwd);
	tcase_add_test(tc, test_env);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_timeout_ignores_term);
	tcase_add_test(tc, test_timeout_exit0);
	tcase_add_test(tc, test_timeout_grandchild);
	tcase_add_test(tc, test_background_holds_pipes);
	tcase_add_test(tc, test_stop_graceful);
	tcase_add_test(tc, test_stop_now);
	tcase_add_test(tc, test_stop_escalates);
	tcase_add_test(tc, test_timeout_then_stop);
	tcase_add_test(tc, test_stop_before_start);
	tcase_add_test(tc, test_only_fds_0_2);
	tcase_add_test(tc, test_signals_reset);
	tcase_add_test(tc, test_own_session);
	tcase_add_test(tc, test_sleep);
	tcase_add_test(tc, test_concurrent);
	tcase_add_test(tc, test_item_free);
	tcase_add_test(tc, test_process_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("as_user");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, root_setup, NULL);
	tcase_add_test(tc, test_user_ids);
	tcase_add_test(tc, test_user_env);
	tcase_add_test(tc, test_user_process);
	tcase_add_test(tc, test_user_cwd);
	tcase_add_test(tc, test_user_exec);
	tcase_add_test(tc, test_user_no_passwd);
	tcase_add_test(tc, test_user_not_root);
	tcase_add_test(tc, test_user_timeout);
	tcase_add_test(tc, test_user_concurrent);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr;
	sigset_t set;
	int	 failed;

	/* As in the daemon: a job closing its stdin is EPIPE, not a signal. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	base_env = strv_make("PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/",
	    "LANG=C", "JOBD_BASE=base", "JOBD_X=old", NULL);

	sr = srunner_create(runner_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	strv_free(base_env);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
