/*
 * config: the jobd configuration file (libconfig syntax, SPEC §4 and §5)
 * turned into a plain, validated struct.  Nothing here touches the running
 * daemon; the caller decides what to apply.
 */
#ifndef JOBD_CONFIG_H
#define JOBD_CONFIG_H

#include <sys/types.h>

enum policy {
	POLICY_PRIORITY,
	POLICY_FIFO,
	POLICY_LIFO,
};

enum on_crash {
	ON_CRASH_REQUEUE,
	ON_CRASH_FAIL,
};

enum fsync_mode {
	FSYNC_ALWAYS,
	FSYNC_BATCH,
	FSYNC_OFF,
};

#define CONFIG_QUEUE_NAME_MAX	64

struct queue_config {
	char		 name[CONFIG_QUEUE_NAME_MAX + 1];
	int		 workers;	/* resolved: "auto" became the CPU count */
	int		 workers_auto;	/* the file said "auto" (or nothing) */
	long		 capacity;
	enum policy	 policy;
	double		 timeout;	/* seconds, 0 = none */
	enum on_crash	 on_crash;
};

struct config {
	char		*path;		/* file it was read from; NULL = built-in */

	char		*socket;
	mode_t		 socket_mode;
	char		*status_listen;	/* "" = disabled */
	char		*state_dir;
	int		 log_level;	/* enum log_level */
	long		 max_connections;
	long		 max_request_bytes;
	long		 keep_finished;
	long		 output_tail_bytes;
	double		 kill_grace;
	double		 shutdown_timeout;

	struct queue_config *queues;
	size_t		 nqueues;

	struct {
		enum fsync_mode	 fsync;
		long		 batch_ms;
		long long	 max_bytes;
	} journal;

	/* SPEC §5: who may do what */
	char		*admin_group;	/* "" = none */
	char	       **allow_users;	/* NULL-terminated, never NULL */
	char	       **allow_groups;	/* NULL-terminated, never NULL */
	long		 min_uid;
	int		 allow_root_jobs;
	long		 max_jobs_per_user;
	long		 max_connections_per_user;
	int		 status_job_details;

	/* Limits of the status endpoint and of event subscribers. */
	long		 status_max_clients;	/* HTTP connections at once */
	long		 status_max_subscribers; /* /events + subscribe */
	double		 status_idle_timeout;	/* idle HTTP connection, s */
	long		 subscriber_buffer_bytes; /* unread events before drop */
};

/*
 * Read and validate a file.  path NULL gives the built-in defaults of
 * SPEC §4.  On error returns -1 and sets *cause (caller frees) to a message
 * of the form "FILE:LINE: KEY: PROBLEM", e.g.
 * "jobd.conf:12: queues[0].workers: must be 1..1024".
 */
int	 config_load(const char *path, struct config **out, char **cause);
void	 config_free(struct config *);

/* Look up a queue by name; NULL when there is none. */
const struct queue_config *config_queue(const struct config *, const char *);

const char *config_policy_name(enum policy);
const char *config_on_crash_name(enum on_crash);
const char *config_fsync_name(enum fsync_mode);

/* Built-in default paths of SPEC §1 (caller frees). */
char	*config_default_socket(void);
char	*config_default_state_dir(void);

/* The system config file jobd reads when no -c is given. */
#define CONFIG_SYSTEM_PATH "/etc/jobd/jobd.conf"

#endif
