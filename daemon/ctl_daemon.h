/*
 * ctl_daemon: jobctl's commands on the daemon and its queues as a whole --
 * look at them (list, stats, watch, ping) and steer them (pause, resume,
 * reload).  Each is a ctl_cmd exec, as in ctl_job.h.
 */
#ifndef JOBD_CTL_DAEMON_H
#define JOBD_CTL_DAEMON_H

#include "ctl_cmd.h"

/* list [-q QUEUE] [-S STATE] [-n LIMIT]: a table of jobs. */
int	 ctl_daemon_list(struct ctl *, int, char **);
/* stats: a table of per-queue counters. */
int	 ctl_daemon_stats(struct ctl *, int, char **);
/* pause QUEUE and resume QUEUE: the op is the command's name. */
int	 ctl_daemon_queue_op(struct ctl *, int, char **);
/* ping: the daemon's version and pid. */
int	 ctl_daemon_ping(struct ctl *, int, char **);
/* reload [--wait]: answered once the new config is in force. */
int	 ctl_daemon_reload(struct ctl *, int, char **);
/* watch [-q QUEUE]: a line per job state change until closed or SIGINT. */
int	 ctl_daemon_watch(struct ctl *, int, char **);

#endif
