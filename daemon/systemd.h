/*
 * systemd: SPEC §6 — socket activation (LISTEN_FDS / LISTEN_FDNAMES) and
 * the notify protocol (READY, STATUS, WATCHDOG, RELOADING, STOPPING,
 * EXTEND_TIMEOUT_USEC), on libsystemd.  Every function is a no-op when jobd
 * was not started that way (no LISTEN_PID for us, no NOTIFY_SOCKET).
 *
 * Thread rule: loop thread only (or main before the loop runs).
 */
#ifndef JOBD_SYSTEMD_H
#define JOBD_SYSTEMD_H

#include <stdint.h>

#include <event2/event.h>

#include "sched.h"

/*
 * Take the sockets passed to jobd (when LISTEN_PID is jobd's pid) and
 * remove LISTEN_* from the environment.  Those named "control" and
 * "status" are checked to be listening stream sockets (control: AF_UNIX;
 * status: AF_UNIX, AF_INET or AF_INET6) and made non-blocking and
 * close-on-exec; any other is closed with a warning.  -1 with *cause when
 * a named one is unusable.  Call once at start-up, before server_new.
 */
int	 systemd_listen_init(char **cause);
/*
 * The passed socket named name ("control" or "status"), which the caller
 * now owns; -1 when there is none (not socket-activated, or already taken).
 */
int	 systemd_listen_fd(const char *name);

/*
 * Start the loop timers: STATUS= every second when it changed, and
 * WATCHDOG=1 every WATCHDOG_USEC/2 when systemd asks for it.  sched gives
 * the counts for STATUS=.
 */
void	 systemd_watch(struct event_base *, struct sched *);
/* READY=1: start-up (or a reload) is complete and the sockets are served. */
void	 systemd_ready(void);
/* RELOADING=1 with MONOTONIC_USEC=now, in one datagram: a reload begins. */
void	 systemd_reloading(void);
/* STOPPING=1: the shutdown drain begins. */
void	 systemd_stopping(void);
/* EXTEND_TIMEOUT_USEC=usec: long start-up work (journal replay) goes on. */
void	 systemd_extend_timeout(uint64_t usec);
/* STATUS=<the line>, now, if it differs from the last one sent. */
void	 systemd_status(void);
/* Stop the timers and close passed sockets nobody took. */
void	 systemd_free(void);

#endif
