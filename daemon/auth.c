/*
 * auth: SPEC §5's rules, in one place.
 *
 * Admins are uid 0, jobd's own uid and members of admin_group.  When jobd
 * runs as root anyone may connect, and jobs run as their submitters, so
 * root's own jobs and system accounts (uid < min_uid) are refused unless
 * the config allows them.  When jobd runs as an ordinary user only that
 * user, root and the users allow_users / allow_groups name may connect.
 * A non-empty allow list limits who may submit (admins always may).
 *
 * Group membership is the group database's, as `id -G NAME` shows it.
 * Loop thread; the NSS lookups may block on a remote directory.
 */
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "util.h"

#define MAX_GROUPS	1024

static int
strv_has(char *const *v, const char *s)
{
	size_t i;

	for (i = 0; s != NULL && v != NULL && v[i] != NULL; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

static int
in_group(const char *group, const gid_t *gids, int ngids)
{
	struct group gr, *res = NULL;
	char buf[4096];
	int i;

	if (group == NULL || *group == '\0' ||
	    getgrnam_r(group, &gr, buf, sizeof buf, &res) != 0 || res == NULL)
		return 0;
	for (i = 0; i < ngids; i++)
		if (gids[i] == gr.gr_gid)
			return 1;
	return 0;
}

static int
in_any_group(char *const *groups, const gid_t *gids, int ngids)
{
	size_t i;

	for (i = 0; groups != NULL && groups[i] != NULL; i++)
		if (in_group(groups[i], gids, ngids))
			return 1;
	return 0;
}

void
auth_peer(const struct config *cfg, uid_t uid, gid_t gid, struct peer *p)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	gid_t gids[MAX_GROUPS];
	int ngids = 0, listed, as_root = geteuid() == 0;
	const char *name = NULL;

	memset(p, 0, sizeof *p);
	p->uid = uid;
	p->gid = gid;
	gids[ngids++] = gid;
	if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res != NULL) {
		name = pw.pw_name;
		ngids = MAX_GROUPS;
		if (getgrouplist(name, pw.pw_gid, gids, &ngids) == -1)
			ngids = MAX_GROUPS;	/* the first MAX_GROUPS */
	}
	p->admin = uid == 0 || uid == geteuid() ||
	    in_group(cfg->admin_group, gids, ngids);
	listed = strv_has(cfg->allow_users, name) ||
	    in_any_group(cfg->allow_groups, gids, ngids);

	p->may_connect = as_root || p->admin || listed;
	if (!p->may_connect) {
		snprintf(p->why, sizeof p->why, "uid %u may not use this jobd "
		    "(it runs as uid %u; see allow_users, allow_groups)",
		    (unsigned)uid, (unsigned)geteuid());
		return;
	}
	p->may_submit = 1;
	if (as_root && uid == 0 && !cfg->allow_root_jobs &&
	    !strv_has(cfg->allow_users, name)) {
		p->may_submit = 0;
		snprintf(p->why, sizeof p->why, "jobs of root are refused "
		    "(allow_root_jobs)");
	} else if (as_root && uid != 0 && uid < (uid_t)cfg->min_uid &&
	    !strv_has(cfg->allow_users, name)) {
		p->may_submit = 0;
		snprintf(p->why, sizeof p->why, "uid %u is below min_uid %ld",
		    (unsigned)uid, cfg->min_uid);
	} else if ((cfg->allow_users[0] != NULL ||
	    cfg->allow_groups[0] != NULL) && !listed && !p->admin) {
		p->may_submit = 0;
		snprintf(p->why, sizeof p->why, "uid %u is not in allow_users "
		    "or allow_groups", (unsigned)uid);
	}
}

int
auth_owns(const struct peer *p, uid_t owner)
{
	return p->admin || p->uid == owner;
}

long
auth_scope(const struct peer *p)
{
	return p->admin ? -1 : (long)p->uid;
}
