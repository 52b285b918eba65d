/*
 * ctl_job: jobctl's commands on jobs -- submit one, show one, write its
 * output, wait for some or for all, cancel some.  Each is a ctl_cmd exec:
 * it parses its words (usage errors exit 64 before anything is sent),
 * talks to the daemon and returns jobctl's exit status.
 */
#ifndef JOBD_CTL_JOB_H
#define JOBD_CTL_JOB_H

#include "ctl_cmd.h"

/* submit [-q QUEUE] [-p PRIO] [-t TIMEOUT] ... -- CMD [ARG...] */
int	 ctl_job_submit(struct ctl *, int, char **);
/* get ID: the record as "key: value" lines. */
int	 ctl_job_get(struct ctl *, int, char **);
/* logs ID: the stdout and stderr tails, byte for byte. */
int	 ctl_job_logs(struct ctl *, int, char **);
/* wait [-t TIMEOUT] ID...: exits with the jobs' outcome. */
int	 ctl_job_wait(struct ctl *, int, char **);
/* join [-q QUEUE] [-t TIMEOUT]: until no unfinished job is left. */
int	 ctl_job_join(struct ctl *, int, char **);
/* cancel ID... */
int	 ctl_job_cancel(struct ctl *, int, char **);

#endif
