/*
 * jobd: the daemon's main — command line, configuration, the event loop,
 * signals and the order of start-up and shutdown.
 *
 * Start: config → state_dir → sockets passed by systemd → scheduler (worker
 * threads) → control socket → status endpoint → READY=1 → loop.  Stop
 * (SIGTERM/SIGINT): STOPPING=1, the scheduler drains (no new submits, no
 * new starts, running jobs get shutdown_timeout), then the loop exits, the
 * connections close, the workers are joined, and jobd exits 0.
 *
 * Reload (SIGHUP, the reload op): the file is read again; if valid, its
 * contents replace the config in place (the one struct every module
 * points to), except the keys that need a restart, and the scheduler
 * applies the queues.  Everything runs on the loop thread, and worker
 * threads never read the config (a work item carries copies), so the
 * swap needs no lock.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "config.h"
#include "events.h"
#include "journal.h"
#include "log.h"
#include "persist.h"
#include "sched.h"
#include "server.h"
#include "status.h"
#include "systemd.h"
#include "util.h"
#include "version.h"

/* Time asked of systemd for the journal replay (EXTEND_TIMEOUT_USEC). */
#define REPLAY_EXTEND_USEC	(120ULL * 1000000)

#define EXIT_USAGE	64
#define EXIT_CONFIG	78

struct daemon {
	struct event_base *base;
	struct sched	*sched;
	struct config	*cfg;		/* in force; replaced in place by reload */
	int		 signals;	/* SIGTERM/SIGINT seen so far */
};

static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: jobd [-c FILE] [--check-config] [--recover] [--version] "
	    "[--help]\n");
	exit(status);
}

/* mkdir -p with mode for the last component and 0755 for the others. */
static int
make_dirs(const char *path, mode_t mode, char **cause)
{
	char *p = xstrdup(path), *s;
	int r = -1;

	for (s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) == -1 && errno != EEXIST) {
			xasprintf(cause, "%s: mkdir: %s", p, strerror(errno));
			goto out;
		}
		*s = '/';
	}
	if (mkdir(p, mode) == -1 && errno != EEXIST) {
		xasprintf(cause, "%s: mkdir: %s", p, strerror(errno));
		goto out;
	}
	r = 0;
out:
	free(p);
	return r;
}

/*
 * Make sure fds 0-2 are open (on /dev/null if they were closed), so no
 * socket or pipe of ours can land on them and leak into a job's stdio.
 */
static void
fds_standard(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) != -1 && fd <= 2)
		fcntl(fd, F_SETFD, 0);	/* keep it as a standard fd */
	if (fd > 2)
		close(fd);
}

/* jobd --recover: keep the valid part of a damaged journal, say what went. */
static int
recover_journal(struct config *cfg)
{
	char *dir, *report = NULL;
	int r;

	xasprintf(&dir, "%s/journal", cfg->state_dir);
	r = journal_recover(dir, &report);
	fprintf(r == 0 ? stdout : stderr, "jobd: recover: %s: %s\n", dir,
	    report != NULL ? report : "failed");
	free(report);
	free(dir);
	config_free(cfg);
	return r == 0 ? 0 : 1;
}

static void
on_drained(void *arg)
{
	/*
	 * Not at once: answers queued this turn (a wait on the last job, a
	 * long poll) still have to reach their clients.
	 */
	static const struct timeval flush = { 0, 200000 };
	struct daemon *d = arg;

	log_info("shutdown: no job running, exiting");
	event_base_loopexit(d->base, &flush);
}

static void
on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	if (d->signals++ == 0) {
		log_info("shutdown: %s received, draining (a second signal "
		    "stops running jobs at once)", strsignal((int)sig));
		sched_shutdown(d->sched, 0);
		/*
		 * SPEC §6: at the first signal; after sched_shutdown, so the
		 * STATUS= line it sends along already says "stopping".
		 */
		systemd_stopping();
	} else {
		log_info("shutdown: %s received again, stopping running jobs",
		    strsignal((int)sig));
		sched_shutdown(d->sched, 1);
	}
}

static void
swap_str(char **a, char **b)
{
	char *t = *a;

	*a = *b;
	*b = t;
}

/*
 * Put next's contents into cur, keeping the keys that need a restart as
 * they are in cur; next gets what cur held, for the caller to free.
 * Returns the names of those keys whose value differs in next.
 */
static json_t *
config_swap(struct config *cur, struct config *next)
{
	struct config held;
	json_t *ignored = json_array();

	if (strcmp(cur->socket, next->socket) != 0)
		json_array_append_new(ignored, json_string("socket"));
	if (cur->socket_mode != next->socket_mode)
		json_array_append_new(ignored, json_string("socket_mode"));
	if (strcmp(cur->status_listen, next->status_listen) != 0)
		json_array_append_new(ignored, json_string("status_listen"));
	if (strcmp(cur->state_dir, next->state_dir) != 0)
		json_array_append_new(ignored, json_string("state_dir"));
	if (cur->journal.fsync != next->journal.fsync)
		json_array_append_new(ignored, json_string("journal.fsync"));
	if (cur->journal.batch_ms != next->journal.batch_ms)
		json_array_append_new(ignored, json_string("journal.batch_ms"));
	if (cur->journal.max_bytes != next->journal.max_bytes)
		json_array_append_new(ignored, json_string("journal.max_bytes"));

	held = *cur;
	*cur = *next;
	*next = held;
	/* Back to what is in force: the strings trade places, so each
	 * struct still owns exactly what config_free will free. */
	swap_str(&cur->socket, &next->socket);
	swap_str(&cur->status_listen, &next->status_listen);
	swap_str(&cur->state_dir, &next->state_dir);
	cur->socket_mode = next->socket_mode;
	cur->journal = next->journal;
	return ignored;
}

/*
 * Reload (SIGHUP, the reload op): 0 with *ignored once the new config is
 * in force, or -1 with *cause (the old config stays).  SPEC §6: RELOADING=1
 * before, READY=1 after, failed or not.
 */
static int
daemon_reload(void *arg, json_t **ignored, char **cause)
{
	struct daemon *d = arg;
	struct config *next = NULL;
	int r = -1;

	*ignored = NULL;
	systemd_reloading();
	if (d->cfg->path == NULL) {
		log_info("reload: running on built-in defaults, no file to "
		    "read");
		*ignored = json_array();
		r = 0;
		goto out;
	}
	if (config_load(d->cfg->path, &next, cause) == -1) {
		log_error("reload: %s (the old config stays)", *cause);
		goto out;
	}
	*ignored = config_swap(d->cfg, next);
	log_set_level((enum log_level)d->cfg->log_level);
	/* server and status read d->cfg at use; sched copies queue figures. */
	sched_reconfigure(d->sched, d->cfg);
	if (json_array_size(*ignored) > 0)
		log_warn("reload: %s: applied, except keys that need a "
		    "restart (%zu changed)", d->cfg->path,
		    json_array_size(*ignored));
	else
		log_info("reload: %s: applied", d->cfg->path);
	r = 0;
out:
	config_free(next);	/* the old contents: nothing points there now */
	systemd_ready();
	return r;
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	json_t *ignored = NULL;
	char *cause = NULL;

	(void)sig;
	(void)what;
	log_info("reload: SIGHUP received");
	if (daemon_reload(arg, &ignored, &cause) == -1)
		free(cause);	/* already logged */
	json_decref(ignored);
}

/* Which file to read: -c, else the system file if present, else none. */
static const char *
config_path(const char *given)
{
	if (given != NULL)
		return given;
	if (access(CONFIG_SYSTEM_PATH, F_OK) == 0)
		return CONFIG_SYSTEM_PATH;
	return NULL;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "check-config", no_argument, NULL, 'k' },
		{ "recover", no_argument, NULL, 'r' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon d = { 0 };
	struct config *cfg = NULL;
	struct server *srv = NULL;
	struct status *status = NULL;
	struct persist *persist = NULL;
	struct events *events;
	struct event *sigterm, *sigint, *sighup;
	struct event_config *ec;
	const char *given = NULL;
	char *cause = NULL;
	int ch, check_only = 0, recover = 0, started;

	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			given = optarg;
			break;
		case 'k':
			check_only = 1;
			break;
		case 'r':
			recover = 1;
			break;
		case 'V':
			printf("jobd %s\n", JOBD_VERSION);
			return 0;
		case 'h':
			usage(0);
		default:
			usage(EXIT_USAGE);
		}
	}
	if (optind != argc)
		usage(EXIT_USAGE);

	if (config_load(config_path(given), &cfg, &cause) == -1) {
		fprintf(stderr, "jobd: %s\n", cause);
		free(cause);
		return EXIT_CONFIG;
	}
	if (check_only) {
		printf("ok\n");
		config_free(cfg);
		return 0;
	}
	log_init((enum log_level)cfg->log_level);
	d.cfg = cfg;
	if (recover)
		return recover_journal(cfg);
	if (make_dirs(cfg->state_dir, 0700, &cause) == -1)
		log_fatalx(1, "state_dir: %s", cause);

	/*
	 * A client that vanishes must not kill us with SIGPIPE; jobs get
	 * default dispositions back from spawn.c, which also sets their
	 * umask; jobd's own files get 022 too.
	 */
	signal(SIGPIPE, SIG_IGN);
	umask(022);
	fds_standard();
	/*
	 * SPEC §6: take the sockets systemd passed (if any) before anything
	 * binds; server_new and status_new use them instead of binding.
	 */
	if (systemd_listen_init(&cause) == -1)
		log_fatalx(1, "systemd: %s", cause);

	if ((ec = event_config_new()) == NULL)
		log_fatalx(1, "event_config_new failed");
	status_loop_config(ec);
	d.base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (d.base == NULL || status_loop_init(d.base) == -1)
		log_fatalx(1, "event_base_new failed");
	events = events_new();
	d.sched = sched_new(d.base, cfg, events, on_drained, &d);
	/*
	 * Sockets first (a second jobd on the same socket stops here), then
	 * the journal: its replay may start jobs, and its directory lock
	 * keeps a second jobd off the same state_dir.
	 */
	started = server_new(d.base, cfg, d.sched, events, &srv, &cause) == 0 &&
	    status_new(d.base, cfg, d.sched, srv, events, &status, &cause) == 0;
	if (started) {
		/* A large journal takes a while to replay: tell systemd. */
		systemd_extend_timeout(REPLAY_EXTEND_USEC);
		started = persist_open(d.base, cfg, d.sched, &persist,
		    &cause) == 0;
	}
	if (!started) {
		log_error("%s", cause);
		free(cause);
		status_free(status);
		server_free(srv);
		systemd_free();		/* an untaken passed socket; no READY=1 */
		event_base_loop(d.base, EVLOOP_NONBLOCK);
		sched_shutdown(d.sched, 1);
		sched_free(d.sched);
		events_free(events);
		event_base_free(d.base);
		config_free(cfg);
		return 1;
	}
	sigterm = evsignal_new(d.base, SIGTERM, on_stop_signal, &d);
	sigint = evsignal_new(d.base, SIGINT, on_stop_signal, &d);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	sighup = evsignal_new(d.base, SIGHUP, on_hup, &d);
	evsignal_add(sighup, NULL);
	server_set_reload(srv, daemon_reload, &d);
	log_info("jobd %s started (pid %ld)", JOBD_VERSION, (long)getpid());

	/*
	 * SPEC §6: STATUS=/WATCHDOG=1 timers, then READY=1 last, once every
	 * start-up step (the journal replay included) is done: the sockets
	 * are listening and the loop serves them right below.
	 */
	systemd_watch(d.base, d.sched);
	systemd_ready();
	event_base_dispatch(d.base);

	/*
	 * Order: close the clients (their parked requests are withdrawn), run
	 * the loop once so deferred frees happen, then join the workers.
	 */
	status_free(status);
	server_free(srv);
	event_base_loop(d.base, EVLOOP_NONBLOCK);
	systemd_free();		/* its timers, before the loop goes */
	sched_free(d.sched);
	persist_close(persist);	/* the journal is synced last */
	events_free(events);
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	event_base_free(d.base);
	config_free(cfg);
	log_info("stopped");
	return 0;
}
