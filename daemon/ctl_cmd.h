/*
 * ctl_cmd: what every jobctl command works with -- the run's context and a
 * command's table entry, jobctl's messages and exit statuses (SPEC §1),
 * parsing a command's options and words, and reading what a response
 * means (ok or error, the job record, the job's outcome).  No I/O but
 * stderr; the bottom layer of jobctl (ctl_fmt, ctl_conn and the commands
 * build on it).
 */
#ifndef JOBD_CTL_CMD_H
#define JOBD_CTL_CMD_H

#include <getopt.h>
#include <stdarg.h>

#include <jansson.h>

/*
 * Exit statuses of SPEC §1, besides EX_USAGE (64), EX_UNAVAILABLE (69: no
 * daemon, or the connection dropped) and EX_TEMPFAIL (75: -t ran out).
 */
#define CTL_EXIT_ERROR		1	/* the daemon answered with an error */
#define CTL_EXIT_TIMED_OUT	124	/* the job timed out, as timeout(1) */
#define CTL_EXIT_CANCELED	125
#define CTL_EXIT_NO_STATUS	127	/* failed without exit status or signal */

#ifndef nitems
#define nitems(a)		(sizeof (a) / sizeof (a)[0])
#endif

struct ctl;
struct ctl_conn;

/* A command: an entry of jobctl's command table (jobctl.c). */
struct ctl_cmd {
	const char	*name;
	/* Parses argv (argv[0] is the name), talks, returns the exit status. */
	int		(*exec)(struct ctl *, int, char **);
	const char	*args;		/* for usage lines */
	const char	*help;		/* one line for --help */
};

/* One run of jobctl: the global options, the command, the connection. */
struct ctl {
	const char		*socket_opt;	/* -s, or NULL */
	int			 json;		/* --json */
	const struct ctl_cmd	*cmd;
	struct ctl_conn		*conn;		/* NULL until the first request */
};

/* "jobctl: MESSAGE" on stderr, after what stdout holds so far. */
void	 ctl_cmd_vwarn(const char *, va_list)
	    __attribute__((format(printf, 1, 0)));
void	 ctl_cmd_warn(const char *, ...)
	    __attribute__((format(printf, 1, 2)));
/* The same, then exit with the status given. */
void	 ctl_cmd_exit(int, const char *, ...)
	    __attribute__((format(printf, 2, 3), noreturn));
/* "bad response from daemon", exit 1. */
void	 ctl_cmd_bad_response(void) __attribute__((noreturn));
/* A usage error in the current command: message, usage line, exit 64. */
void	 ctl_cmd_usage_error(struct ctl *, const char *, ...)
	    __attribute__((format(printf, 2, 3), noreturn));

/*
 * getopt_long for a command, with jobctl's own messages for an unknown
 * option or a missing argument; -h prints the command's usage and exits.
 * optstring starts with "+:" so options stop at the first operand.
 */
int	 ctl_cmd_getopt(struct ctl *, int, char **, const char *,
	    const struct option *);
/* After the options: move argc/argv to the operands, check min..max of
 * them (max < 0: no limit). */
void	 ctl_cmd_operands(struct ctl *, int *, char ***, int, int);
/* A command with no options but -h, and n operands (n < 0: any number). */
void	 ctl_cmd_noopts(struct ctl *, int *, char ***, int);

/* A whole decimal integer in [min, max] into *out; -1 when it is not. */
int	 ctl_cmd_parse_int(const char *, long long, long long, long long *);
/* -t's seconds ("5", "0.25"), or a usage error. */
double	 ctl_cmd_timeout(struct ctl *, const char *);
/* A job id operand, or a usage error; all of argv as ids (caller frees). */
json_int_t ctl_cmd_id(struct ctl *, const char *);
json_int_t *ctl_cmd_ids(struct ctl *, int, char **);
/* A JSON string from a command-line word, or a usage error naming what. */
json_t	*ctl_cmd_word(struct ctl *, const char *, const char *);
/* Adds -q's queue to a request when one was given (NULL: none). */
void	 ctl_cmd_set_queue(struct ctl *, json_t *, const char *);

/*
 * 0 for {"ok":true,...}.  For an error, says "jobctl: CODE: MESSAGE" and
 * returns the exit status: 75 for the daemon's timeout, else 1.
 */
int	 ctl_cmd_status(json_t *);
/* The "job" object of a successful get/wait/cancel response (borrowed). */
json_t	*ctl_cmd_job(json_t *);
/* The exit status a finished job stands for (SPEC §1). */
int	 ctl_cmd_outcome(json_t *);

#endif
