/*
 * listen: binding Unix sockets the way a daemon should: make the
 * directory, refuse one owned by someone else, replace a stale socket file,
 * never unlink a live daemon's socket or something that is not a socket.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"
#include "util.h"

/* Create the socket's directory if missing, and refuse one owned by others. */
static int
socket_dir(const char *path, char **cause)
{
	char *dir = xstrdup(path), *slash, *p;
	struct stat sb;
	int r = -1;

	if ((slash = strrchr(dir, '/')) == NULL || slash == dir) {
		r = 0;
		goto out;
	}
	*slash = '\0';
	for (p = dir + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
				xasprintf(cause, "%s: mkdir: %s", dir,
				    strerror(errno));
				goto out;
			}
			*p = c;
			if (c == '\0')
				break;
		}
	}
	if (stat(dir, &sb) == -1) {
		xasprintf(cause, "%s: %s", dir, strerror(errno));
		goto out;
	}
	if (sb.st_uid != geteuid() && sb.st_uid != 0) {
		xasprintf(cause, "%s: owned by uid %u, not by jobd's user",
		    dir, (unsigned)sb.st_uid);
		goto out;
	}
	r = 0;
out:
	free(dir);
	return r;
}

/*
 * Bind path.  A socket file nobody listens on is stale and replaced; one a
 * live daemon answers on is left alone and the start fails.
 */
int
listen_unix(const char *path, mode_t mode, int *fdp, ino_t *inop,
    char **cause)
{
	struct sockaddr_un sun;
	struct stat sb;
	int fd = -1, probe = -1, r = -1;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		xasprintf(cause, "%s: socket path too long", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if (socket_dir(path, cause) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		xasprintf(cause, "socket: %s", strerror(errno));
		goto out;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		if (errno != EADDRINUSE) {
			xasprintf(cause, "%s: bind: %s", path, strerror(errno));
			goto out;
		}
		if (lstat(path, &sb) == 0 && !S_ISSOCK(sb.st_mode)) {
			xasprintf(cause, "%s: exists and is not a socket", path);
			goto out;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe != -1 && connect(probe, (struct sockaddr *)&sun,
		    sizeof sun) == 0) {
			xasprintf(cause, "%s: another jobd is already "
			    "listening on this socket", path);
			goto out;
		}
		log_info("server: replacing stale socket %s", path);
		if (unlink(path) == -1 ||
		    bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
			xasprintf(cause, "%s: bind: %s", path, strerror(errno));
			goto out;
		}
	}
	if (chmod(path, mode) == -1 || lstat(path, &sb) == -1) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		goto out;
	}
	*inop = sb.st_ino;
	*fdp = fd;
	fd = -1;
	r = 0;
out:
	if (probe != -1)
		close(probe);
	if (fd != -1)
		close(fd);
	return r;
}

void
listen_unlink(const char *path, ino_t ino)
{
	struct stat sb;

	if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode) && sb.st_ino == ino)
		unlink(path);
}
