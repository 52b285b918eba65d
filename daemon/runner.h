/*
 * runner: runs one job to its end on a worker thread (SPEC §2 "End of a
 * job", "Timeout", "Cancel", "Output", "Environment").
 *
 * Thread rule: a work item is built by the loop thread, then owned by one
 * worker until it is handed back through the completion queue; the runner
 * touches nothing else.  The loop may only write to the item's stop_fd
 * (an eventfd it owns) while the item is out.
 */
#ifndef JOBD_RUNNER_H
#define JOBD_RUNNER_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

/* Value written to stop_fd: a sum >= RUNNER_STOP_NOW means SIGKILL at once. */
#define RUNNER_STOP_GRACEFUL	1ULL
#define RUNNER_STOP_NOW		(1ULL << 20)

enum run_outcome {
	RUN_EXITED,		/* the main process exited: see exit_code */
	RUN_SIGNALED,		/* the main process was killed by a signal */
	RUN_TIMED_OUT,		/* the item's timeout expired and it was killed */
	RUN_STOPPED,		/* stop_fd asked it to stop and it was killed */
	RUN_SPAWN_FAILED,	/* no process ran: see error */
};

struct work_result {
	enum run_outcome outcome;
	int		 exit_code;	/* -1 when none */
	int		 signal;	/* 0 when none */
	char		*out;		/* stdout tail, valid UTF-8, NUL-terminated */
	size_t		 out_len;
	int		 out_truncated;
	char		*err;		/* stderr tail, as out */
	size_t		 err_len;
	int		 err_truncated;
	char		*error;		/* e.g. "spawn: No such file or directory" */
	double		 started_at;	/* CLOCK_REALTIME seconds */
	double		 finished_at;
};

struct work_item {
	uint64_t	 id;
	enum job_kind	 kind;
	char		**argv;		/* JOB_ARGV; JOB_SHELL: {"/bin/sh","-c",cmd} */
	double		 sleep;		/* JOB_SLEEP */
	/*
	 * Environment: base (shared, immutable while workers run) minus the
	 * keys set in env, plus env.  PATH for a bare program name is looked
	 * up in that merged environment, not in the daemon's, by the job's
	 * process itself (so as the job's user).
	 */
	char *const	*base_env;
	char		**env;		/* owned, "KEY=VALUE", may be NULL */
	char		*cwd;		/* owned; NULL means "/" */
	char		*stdin_data;	/* owned; NULL means /dev/null */
	size_t		 stdin_len;
	double		 timeout;	/* seconds, 0 = none */
	double		 kill_grace;	/* seconds from SIGTERM to SIGKILL */
	size_t		 tail_bytes;	/* output kept per stream */
	int		 stop_fd;	/* eventfd owned by the loop; -1 = none */

	/*
	 * Whom the job runs as (SPEC §5 "When jobd runs as root").  With
	 * run_as 0, as jobd itself.  With run_as 1, as uid with gid and the
	 * user's groups, looked up by the runner (NSS may block: never on
	 * the loop); base_env is then not used: the environment is HOME,
	 * USER, LOGNAME and SHELL from uid's passwd entry, the default PATH
	 * and lang as LANG, minus the keys set in env, plus env.
	 */
	int		 run_as;
	uid_t		 uid;		/* the owner's, from SO_PEERCRED */
	gid_t		 gid;
	const char	*lang;		/* shared like base_env; NULL = none */

	void		*cookie;	/* the loop's; the runner never touches it */
	struct work_item *next;		/* completion queue link */

	struct work_result result;	/* filled by runner_run */
};

/*
 * Run the item to its end and fill item->result.  Blocks (worker threads
 * only).  Never fails as a call: every problem becomes a result.
 */
void	 runner_run(struct work_item *);
/* Free what the item owns, the result included (stop_fd is not closed). */
void	 runner_item_free(struct work_item *);

/*
 * Replace every byte sequence that is not valid UTF-8 with U+FFFD.
 * Returns a malloc'd NUL-terminated copy; *outlen is its length.
 */
char	*runner_utf8_clean(const char *, size_t, size_t *outlen);

#endif
