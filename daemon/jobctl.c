/*
 * jobctl: the command-line client of jobd (SPEC §1).  It speaks the socket
 * protocol of SPEC §2 over one blocking AF_UNIX connection, one thread, and
 * keeps no state between runs.  docs/jobctl.md shows the output formats.
 *
 * This file owns the global options, the command table, --help and main.
 * The rest is layered below it:
 *   ctl_job, ctl_daemon  the commands (jobs; the daemon and its queues)
 *   ctl_conn             the connection: socket, requests, response lines
 *   ctl_fmt              human output: tables, records, escaping, ages
 *   ctl_cmd              the run's context, messages, exit statuses,
 *                        parsing a command's words, reading a response
 * SIGPIPE is ignored (a closed socket is "connection lost"); only watch
 * catches signals, and only inside ppoll (see ctl_conn_set_sigmask).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ctl_cmd.h"
#include "ctl_conn.h"
#include "ctl_daemon.h"
#include "ctl_job.h"
#include "version.h"

static const struct ctl_cmd ctl_cmds[] = {
	{ "submit", ctl_job_submit,
	    "[-q QUEUE] [-p PRIO] [-t TIMEOUT] [-n NAME] [-e KEY=VAL]...\n"
	    "\t[-C DIR] [--nowait] [--wait] [--shell] -- CMD [ARG...]",
	    "queue a job; print its id" },
	{ "get", ctl_job_get, "ID", "show a job" },
	{ "wait", ctl_job_wait, "[-t TIMEOUT] ID...",
	    "wait for jobs; exit with their outcome" },
	{ "join", ctl_job_join, "[-q QUEUE] [-t TIMEOUT]",
	    "wait until no unfinished job is left" },
	{ "cancel", ctl_job_cancel, "ID...", "cancel jobs" },
	{ "list", ctl_daemon_list, "[-q QUEUE] [-S STATE] [-n LIMIT]",
	    "list jobs, newest first" },
	{ "logs", ctl_job_logs, "ID", "write a job's stdout and stderr tails" },
	{ "stats", ctl_daemon_stats, "", "per-queue counters" },
	{ "pause", ctl_daemon_queue_op, "QUEUE",
	    "start no more jobs from a queue" },
	{ "resume", ctl_daemon_queue_op, "QUEUE",
	    "start jobs from a queue again" },
	{ "ping", ctl_daemon_ping, "", "check that the daemon answers" },
	{ "watch", ctl_daemon_watch, "[-q QUEUE]", "print job state changes" },
	{ "reload", ctl_daemon_reload, "[--wait]",
	    "re-read the daemon's config" },
};

static void
usage(FILE *f, int full)
{
	const struct ctl_cmd *cmd;
	size_t i;
	int n;

	fprintf(f, "usage: jobctl [-s SOCKET] [--json] COMMAND [ARGS]\n");
	fprintf(f, "       jobctl --help | --version\n\ncommands:\n");
	for (i = 0; i < nitems(ctl_cmds); i++) {
		cmd = &ctl_cmds[i];
		n = fprintf(f, "  %s%s%s", cmd->name, *cmd->args != '\0' ?
		    " " : "", cmd->args);
		if (full && strchr(cmd->args, '\n') == NULL && n < 40)
			fprintf(f, "%*s%s", 40 - n, "", cmd->help);
		else if (full)
			fprintf(f, "\n%40s%s", "", cmd->help);
		fputc('\n', f);
	}
	if (!full)
		return;
	fprintf(f, "\n"
	    "  COMMAND -h                            the command's usage\n"
	    "\noptions:\n"
	    "  -s SOCKET   daemon socket (default: $JOBD_SOCKET, else\n"
	    "              %s if it exists, else jobd's default)\n"
	    "  --json      print the daemon's JSON response lines unchanged\n"
	    "\nexit status: 0 ok; 1 the daemon answered with an error;"
	    " 64 usage;\n"
	    "  69 the daemon cannot be reached; 75 wait/join -t ran out;\n"
	    "  submit --wait and wait: the job's exit code, 128+signal,\n"
	    "  124 timed out, 125 canceled, 127 failed without a status\n",
	    CTL_CONN_SYSTEM_SOCKET);
}

/* A usage error before the command: message, the command list, exit 64. */
static void __attribute__((format(printf, 1, 2), noreturn))
main_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctl_cmd_vwarn(fmt, ap);
	va_end(ap);
	usage(stderr, 0);
	exit(EX_USAGE);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl ctl;
	size_t i;
	int ch, status;

	memset(&ctl, 0, sizeof ctl);
	/* Belt and braces with MSG_NOSIGNAL: EPIPE is "connection lost". */
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;

	while ((ch = getopt_long(argc, argv, "+:s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (*optarg == '\0')
				main_usage_error("-s: empty socket path");
			ctl.socket_opt = optarg;
			break;
		case 'j':
			ctl.json = 1;
			break;
		case 'h':
			usage(stdout, 1);
			return 0;
		case 'V':
			printf("jobctl %s\n", JOBD_VERSION);
			return 0;
		case ':':
			main_usage_error("option %s needs an argument",
			    argv[optind - 1]);
		default:
			if (optopt != 0)
				main_usage_error("unknown option -%c", optopt);
			main_usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind == argc)
		main_usage_error("missing command");
	for (i = 0; i < nitems(ctl_cmds); i++) {
		if (strcmp(argv[optind], ctl_cmds[i].name) == 0)
			ctl.cmd = &ctl_cmds[i];
	}
	if (ctl.cmd == NULL)
		main_usage_error("unknown command '%s'", argv[optind]);

	argc -= optind;
	argv += optind;
	optind = 0;	/* GNU getopt: start afresh on the command's words */
	status = ctl.cmd->exec(&ctl, argc, argv);

	ctl_conn_free(ctl.conn);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		/* A reader that went away early (| head) is not an error. */
		if (errno != EPIPE) {
			ctl_cmd_warn("stdout: %s", strerror(errno));
			if (status == 0)
				status = CTL_EXIT_ERROR;
		}
	}
	return status;
}
