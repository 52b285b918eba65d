/*
 * auth: who may do what (SPEC §5), decided from a peer's SO_PEERCRED
 * credentials and the config — never from the socket file's mode.
 */
#ifndef JOBD_AUTH_H
#define JOBD_AUTH_H

#include <sys/types.h>

#include "config.h"

/* What one connected peer may do, decided once at accept. */
struct peer {
	uid_t		 uid;
	gid_t		 gid;
	unsigned	 admin:1;	/* all jobs; pause, resume, reload */
	unsigned	 may_connect:1;
	unsigned	 may_submit:1;
	char		 why[160];	/* why not, for the forbidden message */
};

/*
 * Decide for a peer.  Reads the password and group databases (NSS), so it
 * may block on a remote directory; it runs once per connection.
 */
void	 auth_peer(const struct config *, uid_t, gid_t, struct peer *);
/* Whether the peer may see and act on jobs owned by uid. */
int	 auth_owns(const struct peer *, uid_t owner);
/* The uid whose jobs the peer sees, or -1 for all (admins). */
long	 auth_scope(const struct peer *);

#endif
