/*
 * listen: binding jobd's own Unix sockets (the control socket, and the
 * status endpoint's when it is a Unix socket): directory checks, stale
 * socket files, and refusing to start beside a live daemon.
 */
#ifndef JOBD_LISTEN_H
#define JOBD_LISTEN_H

#include <sys/types.h>

/*
 * Bind a non-blocking, close-on-exec stream socket at path with mode.  A
 * socket file nobody listens on is stale and replaced; one a live process
 * answers on makes this fail.  *inop identifies the socket file, for
 * listen_unlink.  The caller calls listen(2) (libevent does).
 */
int	 listen_unix(const char *path, mode_t mode, int *fdp, ino_t *inop,
	    char **cause);
/* Unlink path if it is still the socket whose inode listen_unix gave. */
void	 listen_unlink(const char *path, ino_t ino);

#endif
