/*
 * spawn: starts one job process (SPEC §5 "Every job process", "When jobd
 * runs as root"), and looks up the user a job runs as.  posix_spawn can
 * neither change credentials nor set rlimits, so the child is made here:
 * raw system calls only between clone and execve.
 *
 * Thread rule: no state; called on worker threads, many at once.  The NSS
 * lookups may block (LDAP...), so they belong on a worker, never the loop.
 */
#ifndef JOBD_SPAWN_H
#define JOBD_SPAWN_H

#include <sys/types.h>

#include <stddef.h>

/* A user's passwd entry and groups, as a job running as them needs them. */
struct spawn_user {
	char	*name;
	char	*home;
	char	*shell;		/* "/bin/sh" when the entry's is empty */
	gid_t	*groups;	/* supplementary groups */
	size_t	 ngroups;
};

struct spawn_req {
	char *const	*argv;	/* argv[0]: a path, or a bare name for path */
	char *const	*envp;
	const char	*path;	/* searched for a bare argv[0]; NULL: default */
	const char	*cwd;	/* NULL: "/" */
	int		 fd[3];	/* become 0-2 (never 0-2 themselves); -1: /dev/null */
	int		 set_ids;	/* become uid, gid and groups first */
	uid_t		 uid;
	gid_t		 gid;
	const gid_t	*groups;
	size_t		 ngroups;
};

/*
 * Look up uid's passwd entry and groups: the database's (as `id -G NAME`)
 * plus gid.  0, or -1 with a "spawn: ..." message in *cause.
 */
int	 spawn_user_lookup(uid_t uid, gid_t gid, struct spawn_user *,
	    char **cause);
/* Free what the lookup filled in (a cleared struct is fine). */
void	 spawn_user_clear(struct spawn_user *);

/*
 * Start the process in its own session as the request says, searching
 * path as the process itself (after any change of user).  0 with its pid,
 * or -1 with a "spawn: ..." message in *cause; no process is left then.
 */
int	 spawn_start(const struct spawn_req *, pid_t *pid, char **cause);

#endif
