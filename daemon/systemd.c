/*
 * systemd: SPEC §6 — the sockets systemd passes (socket activation) and
 * what jobd tells it back (sd_notify), on libsystemd.
 *
 * Why libsystemd and not an in-tree copy of the two protocols: Debian 12
 * ships it (libsystemd0 is on every systemd machine, libsystemd-dev is
 * already in scripts/deps.sh), and it is the reference implementation of
 * the fine print: LISTEN_PID matching, LISTEN_FDNAMES with their count
 * check, "@" abstract NOTIFY_SOCKET names, WATCHDOG_PID, sd_is_socket_*
 * checks.  The cost is a shared library (and, in 252, its compression and
 * crypto libraries) in jobd's address space.  The protocols are stable and
 * documented for reimplementation; if that cost ever matters, only this
 * file changes: nothing else in jobd includes <systemd/...>.
 *
 * Owns: passed sockets until server.c or status.c take them, and two loop
 * timers (STATUS= refresh, WATCHDOG=1).  The state is per process, like
 * the environment it comes from, so it is static here.
 *
 * Thread rule: loop thread only (or main before the loop runs).  The
 * watchdog ping runs from a timer on the loop itself, so a wedged loop
 * stops pinging and systemd notices.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "systemd.h"
#include "util.h"

#define STATUS_PERIOD_S	1
#define STATUS_MAX	256

enum { SD_CONTROL, SD_STATUS, SD_NSOCKETS };
static const char *const socket_names[SD_NSOCKETS] = { "control", "status" };

static struct {
	int		 fds[SD_NSOCKETS];	/* passed, not yet taken: -1 */
	struct sched	*sched;			/* for STATUS=; NULL before watch */
	struct event	*status_ev;
	struct event	*watchdog_ev;
	char		 last_status[STATUS_MAX];
	int		 failing;	/* the last sd_notify failed (logged) */
} sd = { .fds = { -1, -1 } };

/* Send one datagram; a failure is logged once until a send works again. */
static void
notify(const char *msg)
{
	int r = sd_notify(0, msg);

	if (r < 0) {
		if (!sd.failing)
			log_warn("systemd: sd_notify: %s", strerror(-r));
		sd.failing = 1;
	} else
		sd.failing = 0;
}

static void __attribute__((format(printf, 1, 2)))
notifyf(const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	notify(msg);
	free(msg);
}

/* "/run/jobd/jobd.sock" or "127.0.0.1:9750", for the log. */
static void
socket_describe(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t sslen = sizeof ss;
	char host[INET6_ADDRSTRLEN];

	memset(&ss, 0, sizeof ss);
	snprintf(buf, len, "?");
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1)
		return;
	if (ss.ss_family == AF_UNIX && sun->sun_path[0] != '\0')
		snprintf(buf, len, "%.*s", (int)sizeof sun->sun_path,
		    sun->sun_path);
	else if (ss.ss_family == AF_UNIX)
		snprintf(buf, len, "@%.*s", (int)sizeof sun->sun_path - 1,
		    sun->sun_path + 1);
	else if (ss.ss_family == AF_INET &&
	    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host) != NULL)
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
	else if (ss.ss_family == AF_INET6 &&
	    inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host) != NULL)
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
}

/*
 * A passed socket must be a listening stream socket of a family its user
 * serves: the control socket needs SO_PEERCRED, so AF_UNIX.  Inherited fds
 * are blocking; libevent's accept loop would hang on one.
 */
static int
socket_check(int fd, int which, char **cause)
{
	int r;

	r = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
	if (r == 0 && which == SD_STATUS)
		r = sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0);
	if (r < 0) {
		xasprintf(cause, "passed fd %d (\"%s\"): %s", fd,
		    socket_names[which], strerror(-r));
		return -1;
	}
	if (r == 0) {
		xasprintf(cause, "passed fd %d (\"%s\") is not a listening "
		    "%s stream socket", fd, socket_names[which],
		    which == SD_CONTROL ? "Unix" : "Unix or TCP");
		return -1;
	}
	if (util_set_nonblock(fd) == -1 || util_set_cloexec(fd) == -1) {
		xasprintf(cause, "passed fd %d (\"%s\"): fcntl: %s", fd,
		    socket_names[which], strerror(errno));
		return -1;
	}
	return 0;
}

int
systemd_listen_init(char **cause)
{
	char **names = NULL, where[256];
	int n, i = 0, fd, which, r = -1;

	*cause = NULL;
	/*
	 * unset_environment = 1: LISTEN_* leave our environment here, so no
	 * child can take them for its own (sched.c filters them as well).
	 * A LISTEN_PID that is not ours yields 0 fds.
	 */
	n = sd_listen_fds_with_names(1, &names);
	if (n < 0) {
		xasprintf(cause, "LISTEN_FDS/LISTEN_FDNAMES: %s", strerror(-n));
		n = 0;
		goto out;
	}
	for (i = 0; i < n; i++) {
		fd = SD_LISTEN_FDS_START + i;
		for (which = 0; which < SD_NSOCKETS; which++)
			if (strcmp(names[i], socket_names[which]) == 0)
				break;
		if (which == SD_NSOCKETS || sd.fds[which] != -1) {
			log_warn("systemd: closing passed fd %d named \"%s\": "
			    "jobd uses one socket named \"control\" and one "
			    "named \"status\"", fd, names[i]);
			close(fd);
			continue;
		}
		if (socket_check(fd, which, cause) == -1)
			goto out;
		sd.fds[which] = fd;
		socket_describe(fd, where, sizeof where);
		log_info("systemd: socket \"%s\" passed as fd %d (%s)",
		    socket_names[which], fd, where);
	}
	r = 0;
out:
	if (r == -1) {
		/* The start fails: give back every fd from here on. */
		for (; i < n; i++)
			close(SD_LISTEN_FDS_START + i);
		systemd_free();
	}
	strv_free(names);
	return r;
}

int
systemd_listen_fd(const char *name)
{
	int which, fd;

	for (which = 0; which < SD_NSOCKETS; which++) {
		if (strcmp(name, socket_names[which]) == 0) {
			/* Ownership moves to the caller. */
			fd = sd.fds[which];
			sd.fds[which] = -1;
			return fd;
		}
	}
	return -1;
}

/* "3 queued, 1 running, 1/4 workers busy", summed over the queues. */
static void
status_line(char *buf, size_t len)
{
	struct queue_info qi;
	size_t i, queued = 0, running = 0;
	long workers = 0, busy = 0;

	for (i = 0; i < sched_nqueues(sd.sched); i++) {
		sched_queue_info(sd.sched, i, &qi);
		queued += qi.queued;
		running += qi.running;
		workers += qi.workers;
		busy += qi.busy;
	}
	snprintf(buf, len, "%s%zu queued, %zu running, %ld/%ld workers busy",
	    sched_shutting_down(sd.sched) ? "stopping: " : "", queued,
	    running, busy, workers);
}

void
systemd_status(void)
{
	char line[STATUS_MAX];

	if (sd.sched == NULL)
		return;
	status_line(line, sizeof line);
	if (strcmp(line, sd.last_status) == 0)
		return;
	notifyf("STATUS=%s", line);
	memcpy(sd.last_status, line, sizeof line);
}

static void
status_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	systemd_status();
}

static void
watchdog_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify("WATCHDOG=1");
}

void
systemd_watch(struct event_base *base, struct sched *sched)
{
	struct timeval tv = { STATUS_PERIOD_S, 0 };
	uint64_t usec = 0;

	if (getenv("NOTIFY_SOCKET") == NULL)
		return;		/* nobody listens: no timers at all */
	sd.sched = sched;
	sd.last_status[0] = '\0';
	systemd_status();
	sd.status_ev = event_new(base, -1, EV_PERSIST, status_tick, NULL);
	event_add(sd.status_ev, &tv);
	/* > 0 only while WATCHDOG_USEC is set and WATCHDOG_PID, if set, is us. */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		usec /= 2;
		tv.tv_sec = (time_t)(usec / 1000000);
		tv.tv_usec = (suseconds_t)(usec % 1000000);
		sd.watchdog_ev = event_new(base, -1, EV_PERSIST, watchdog_tick,
		    NULL);
		event_add(sd.watchdog_ev, &tv);
		log_info("systemd: watchdog ping every %.3f s",
		    (double)usec / 1e6);
	}
}

void
systemd_ready(void)
{
	log_debug("systemd: READY=1");
	notify("READY=1");
}

void
systemd_reloading(void)
{
	struct timespec ts;

	/* systemd ≥ 253 wants both in one datagram to time the reload. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	log_debug("systemd: RELOADING=1");
	notifyf("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000ULL);
}

void
systemd_stopping(void)
{
	log_debug("systemd: STOPPING=1");
	notify("STOPPING=1");
	systemd_status();	/* "stopping: ..." at once, not in a second */
}

void
systemd_extend_timeout(uint64_t usec)
{
	notifyf("EXTEND_TIMEOUT_USEC=%llu", (unsigned long long)usec);
}

void
systemd_free(void)
{
	int which;

	if (sd.status_ev != NULL)
		event_free(sd.status_ev);
	if (sd.watchdog_ev != NULL)
		event_free(sd.watchdog_ev);
	sd.status_ev = sd.watchdog_ev = NULL;
	sd.sched = NULL;
	for (which = 0; which < SD_NSOCKETS; which++) {
		if (sd.fds[which] != -1)
			close(sd.fds[which]);
		sd.fds[which] = -1;
	}
}
