/*
 * config: reads a jobd configuration file (libconfig syntax) into a plain
 * struct config and validates every key of SPEC §4 and §5: type, range,
 * unknown keys.  It owns the built-in defaults and the
 * "FILE:LINE: KEY: PROBLEM" messages; it knows nothing of the running daemon.
 *
 * Keys are described by tables (name, kind, field offset, range): a group is
 * walked member by member, so an unknown key is reported where it stands and
 * errors come in file order.  The first error stops the walk.
 *
 * libconfig 1.5 stores an integer literal above 2147483647 without the "L"
 * suffix as a wrapped 32-bit int and says nothing; the only key whose range
 * needs more, journal.max_bytes, must then be written with "L".
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define CF_NITEMS(a)		(sizeof (a) / sizeof (a)[0])
#define CF_MAX_QUEUES		256
#define CF_MAX_WORKERS		1024
#define CF_SUN_PATH_MAX		(sizeof ((struct sockaddr_un *)0)->sun_path)
#define CF_LISTEN_SHAPES \
	"must be \"\", \"unix:/path\", \"host:port\" or \"[v6addr]:port\""

/* Enum names, indexed by the enum values of config.h. */
static const char *const cf_policy_names[] = { "priority", "fifo", "lifo" };
static const char *const cf_on_crash_names[] = { "requeue", "fail" };
static const char *const cf_fsync_names[] = { "always", "batch", "off" };

/* What error messages need while a file is walked. */
struct cf_parse {
	const char	*path;		/* as given, when libconfig has none */
	char	       **cause;
};

enum cf_kind {
	CF_LONG,	/* long: libconfig int or int64 in min..max */
	CF_LLONG,	/* long long: likewise */
	CF_SECONDS,	/* double: int, int64 or float in min..max */
	CF_BOOL,	/* int: true or false */
	CF_STRING,	/* char *: any string */
	CF_PATH,	/* char *: a non-empty string */
	CF_STRV,	/* char **: array or list of non-empty strings */
	CF_FUNC,	/* fn does it all */
};

struct cf_key {
	const char	*name;
	enum cf_kind	 kind;
	size_t		 off;		/* of the field in the group's base */
	long long	 min;
	long long	 max;
	int		(*fn)(struct cf_parse *, const config_setting_t *,
			    const char *, void *);
};

/* Offsets of fields for the key tables. */
#define CF_CFG(f)	offsetof(struct config, f)
#define CF_Q(f)		offsetof(struct queue_config, f)

static int __attribute__((format(printf, 4, 5)))
cf_error(struct cf_parse *p, const config_setting_t *s, const char *key,
    const char *fmt, ...)
{
	const char *file;
	char *msg;
	va_list ap;

	/* Name the file libconfig read the setting from (an @include). */
	if ((file = config_setting_source_file(s)) == NULL)
		file = p->path;
	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	xasprintf(p->cause, "%s:%u: %s: %s", file,
	    (unsigned)config_setting_source_line(s), key, msg);
	free(msg);
	return -1;
}

static int
cf_integer(struct cf_parse *p, const config_setting_t *s, const char *key,
    long long min, long long max, long long *out)
{
	long long v;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = config_setting_get_int64(s);
		break;
	default:
		return cf_error(p, s, key, "must be an integer");
	}
	if (v < min || v > max)
		return cf_error(p, s, key, "must be %lld..%lld", min, max);
	*out = v;
	return 0;
}

static int
cf_seconds(struct cf_parse *p, const config_setting_t *s, const char *key,
    long long min, long long max, double *out)
{
	double v;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = (double)config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_FLOAT:
		v = config_setting_get_float(s);
		break;
	default:
		return cf_error(p, s, key, "must be a number");
	}
	if (!(v >= (double)min && v <= (double)max))	/* NaN too */
		return cf_error(p, s, key, "must be %lld..%lld", min, max);
	*out = v;
	return 0;
}

static int
cf_string(struct cf_parse *p, const config_setting_t *s, const char *key,
    int nonempty, const char **out)
{
	const char *v = NULL;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cf_error(p, s, key, "must be a string");
	v = config_setting_get_string(s);
	if (nonempty && *v == '\0')
		return cf_error(p, s, key, "must not be empty");
	*out = v;
	return 0;
}

/* A string that must be one of names; *out is its index. */
static int
cf_enum(struct cf_parse *p, const config_setting_t *s, const char *key,
    const char *const *names, size_t n, int *out)
{
	const char *v = NULL;
	char *allowed, *more;
	size_t i;

	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		v = config_setting_get_string(s);
	for (i = 0; v != NULL && i < n; i++) {
		if (strcmp(v, names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	allowed = xstrdup(names[0]);
	for (i = 1; i < n; i++) {
		xasprintf(&more, "%s, %s", allowed, names[i]);
		free(allowed);
		allowed = more;
	}
	cf_error(p, s, key, "must be one of %s", allowed);
	free(allowed);
	return -1;
}

static int
cf_strv(struct cf_parse *p, const config_setting_t *s, const char *key,
    char ***out)
{
	const config_setting_t *e;
	const char *v = NULL;
	char **sv = NULL, *ekey = NULL;
	int i, n, r = -1;

	if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
		cf_error(p, s, key, "must be a list of strings");
		goto out;
	}
	n = config_setting_length(s);
	sv = xcalloc((size_t)n + 1, sizeof *sv);
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		free(ekey);
		xasprintf(&ekey, "%s[%d]", key, i);
		if (cf_string(p, e, ekey, 1, &v) != 0)
			goto out;
		sv[i] = xstrdup(v);
	}
	strv_free(*out);
	*out = sv;
	sv = NULL;
	r = 0;
out:
	free(ekey);
	strv_free(sv);
	return r;
}

static void
cf_replace(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

static int
cf_apply(struct cf_parse *p, const config_setting_t *s, const char *key,
    const struct cf_key *k, void *base)
{
	void *field = (char *)base + k->off;
	const char *v = NULL;
	long long ll;

	switch (k->kind) {
	case CF_LONG:
	case CF_LLONG:
		if (cf_integer(p, s, key, k->min, k->max, &ll) != 0)
			return -1;
		if (k->kind == CF_LONG)
			*(long *)field = (long)ll;
		else
			*(long long *)field = ll;
		return 0;
	case CF_SECONDS:
		return cf_seconds(p, s, key, k->min, k->max, field);
	case CF_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			return cf_error(p, s, key, "must be true or false");
		*(int *)field = config_setting_get_bool(s) != 0;
		return 0;
	case CF_STRING:
	case CF_PATH:
		if (cf_string(p, s, key, k->kind == CF_PATH, &v) != 0)
			return -1;
		cf_replace(field, v);
		return 0;
	case CF_STRV:
		return cf_strv(p, s, key, field);
	case CF_FUNC:
		return k->fn(p, s, key, base);
	}
	return cf_error(p, s, key, "internal error: bad key kind");
}

/* Walk the members of group; prefix NULL at the top level. */
static int
cf_group(struct cf_parse *p, const config_setting_t *group,
    const char *prefix, const struct cf_key *keys, size_t nkeys, void *base)
{
	const config_setting_t *s;
	const char *name;
	char *key = NULL;
	int i, n, r = -1;
	size_t k;

	n = config_setting_length(group);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(group, (unsigned)i);
		name = config_setting_name(s);
		free(key);
		if (prefix != NULL)
			xasprintf(&key, "%s.%s", prefix, name);
		else
			key = xstrdup(name);
		for (k = 0; k < nkeys; k++) {
			if (strcmp(name, keys[k].name) == 0)
				break;
		}
		if (k == nkeys) {
			cf_error(p, s, key, "unknown key");
			goto out;
		}
		if (cf_apply(p, s, key, &keys[k], base) != 0)
			goto out;
	}
	r = 0;
out:
	free(key);
	return r;
}

static int
cf_socket(struct cf_parse *p, const config_setting_t *s, const char *key,
    void *base)
{
	struct config *cfg = base;
	const char *v = NULL;

	if (cf_string(p, s, key, 1, &v) != 0)
		return -1;
	if (strlen(v) >= CF_SUN_PATH_MAX) {
		return cf_error(p, s, key, "must be at most %zu bytes",
		    CF_SUN_PATH_MAX - 1);
	}
	cf_replace(&cfg->socket, v);
	return 0;
}

static int
cf_socket_mode(struct cf_parse *p, const config_setting_t *s,
    const char *key, void *base)
{
	struct config *cfg = base;
	const char *v = NULL, *cp;
	unsigned long mode = 0;

	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		v = config_setting_get_string(s);
	if (v == NULL || *v == '\0' || strspn(v, "01234567") != strlen(v)) {
		return cf_error(p, s, key,
		    "must be an octal string such as \"0660\"");
	}
	/* Stop as soon as it is too big: no overflow on long strings. */
	for (cp = v; *cp != '\0' && mode <= 07777; cp++)
		mode = mode * 8 + (unsigned long)(*cp - '0');
	if (mode > 07777)
		return cf_error(p, s, key, "must be at most \"07777\"");
	cfg->socket_mode = (mode_t)mode;
	return 0;
}

/* Check the shape of a status_listen value; NULL when fine, else why not. */
static const char *
cf_listen_problem(const char *v)
{
	struct in6_addr a6;
	const char *colon, *host, *end;
	char addr[INET6_ADDRSTRLEN + 1];
	size_t hostlen;
	long port;
	char *ep;

	if (*v == '\0')
		return NULL;
	if (strncmp(v, "unix:", 5) == 0) {
		if (v[5] != '/')
			return "unix socket path must be absolute";
		if (strlen(v + 5) >= CF_SUN_PATH_MAX)
			return "unix socket path is too long";
		return NULL;
	}
	if (*v == '[') {
		host = v + 1;
		if ((end = strchr(host, ']')) == NULL || end[1] != ':')
			return CF_LISTEN_SHAPES;
		hostlen = (size_t)(end - host);
		colon = end + 1;
		if (hostlen == 0 || hostlen >= sizeof addr)
			return "bad IPv6 address in brackets";
		memcpy(addr, host, hostlen);
		addr[hostlen] = '\0';
		if (inet_pton(AF_INET6, addr, &a6) != 1)
			return "bad IPv6 address in brackets";
	} else {
		if ((colon = strchr(v, ':')) == NULL)
			return CF_LISTEN_SHAPES;
		if (strchr(colon + 1, ':') != NULL)
			return "an IPv6 address needs brackets: \"[::1]:9750\"";
		hostlen = (size_t)(colon - v);
		if (hostlen == 0 || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789.-_") != hostlen)
			return CF_LISTEN_SHAPES;
	}
	port = 0;
	if (colon[1] >= '0' && colon[1] <= '9') {
		errno = 0;
		port = strtol(colon + 1, &ep, 10);
		if (*ep != '\0' || errno != 0)
			port = 0;
	}
	if (port < 1 || port > 65535)
		return "port must be 1..65535";
	return NULL;
}

static int
cf_status_listen(struct cf_parse *p, const config_setting_t *s,
    const char *key, void *base)
{
	struct config *cfg = base;
	const char *v = NULL, *problem;

	if (cf_string(p, s, key, 0, &v) != 0)
		return -1;
	if ((problem = cf_listen_problem(v)) != NULL)
		return cf_error(p, s, key, "%s", problem);
	cf_replace(&cfg->status_listen, v);
	return 0;
}

static int
cf_log_level(struct cf_parse *p, const config_setting_t *s, const char *key,
    void *base)
{
	struct config *cfg = base;
	const char *names[LOG_LEVEL_DEBUG + 1];
	int i, level = -1;

	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		level = log_level_parse(config_setting_get_string(s));
	if (level != -1) {
		cfg->log_level = level;
		return 0;
	}
	/* cf_enum fails with the list of names, taken from log.c. */
	for (i = 0; i <= LOG_LEVEL_DEBUG; i++)
		names[i] = log_level_name((enum log_level)i);
	return cf_enum(p, s, key, names, CF_NITEMS(names), &level);
}

static int
cf_fsync(struct cf_parse *p, const config_setting_t *s, const char *key,
    void *base)
{
	struct config *cfg = base;
	int i;

	if (cf_enum(p, s, key, cf_fsync_names, CF_NITEMS(cf_fsync_names),
	    &i) != 0)
		return -1;
	cfg->journal.fsync = (enum fsync_mode)i;
	return 0;
}

/* The journal group; base is still the struct config. */
static const struct cf_key cf_journal_keys[] = {
	{ "fsync", CF_FUNC, 0, 0, 0, cf_fsync },
	{ "batch_ms", CF_LONG, CF_CFG(journal.batch_ms), 1, 10000, NULL },
	{ "max_bytes", CF_LLONG, CF_CFG(journal.max_bytes),
	    65536, 1LL << 40, NULL },
};

static int
cf_journal(struct cf_parse *p, const config_setting_t *s, const char *key,
    void *base)
{
	if (!config_setting_is_group(s))
		return cf_error(p, s, key,
		    "must be a group such as { fsync = \"batch\"; }");
	return cf_group(p, s, key, cf_journal_keys, CF_NITEMS(cf_journal_keys),
	    base);
}

static int
cf_queue_name(struct cf_parse *p, const config_setting_t *s,
    const char *key, void *base)
{
	struct queue_config *q = base;
	const char *v = NULL;
	size_t len;

	if (cf_string(p, s, key, 0, &v) != 0)
		return -1;
	len = strlen(v);
	if (len < 1 || len > CONFIG_QUEUE_NAME_MAX ||
	    strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_.-") != len)
		return cf_error(p, s, key, "must match [A-Za-z0-9_.-]{1,64}");
	memcpy(q->name, v, len + 1);
	return 0;
}

/* "auto": one worker per online CPU, within the workers range. */
static int
cf_cpus(void)
{
	long n;

	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	if (n > CF_MAX_WORKERS)
		return CF_MAX_WORKERS;
	return (int)n;
}

static int
cf_workers(struct cf_parse *p, const config_setting_t *s, const char *key,
    void *base)
{
	struct queue_config *q = base;
	long long v;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		if (cf_integer(p, s, key, 1, CF_MAX_WORKERS, &v) != 0)
			return -1;
		q->workers = (int)v;
		q->workers_auto = 0;
		return 0;
	case CONFIG_TYPE_STRING:
		if (strcmp(config_setting_get_string(s), "auto") != 0)
			break;
		q->workers = cf_cpus();
		q->workers_auto = 1;
		return 0;
	}
	return cf_error(p, s, key, "must be 1..%d or \"auto\"", CF_MAX_WORKERS);
}

static int
cf_policy(struct cf_parse *p, const config_setting_t *s, const char *key,
    void *base)
{
	struct queue_config *q = base;
	int i;

	if (cf_enum(p, s, key, cf_policy_names, CF_NITEMS(cf_policy_names),
	    &i) != 0)
		return -1;
	q->policy = (enum policy)i;
	return 0;
}

static int
cf_on_crash(struct cf_parse *p, const config_setting_t *s, const char *key,
    void *base)
{
	struct queue_config *q = base;
	int i;

	if (cf_enum(p, s, key, cf_on_crash_names,
	    CF_NITEMS(cf_on_crash_names), &i) != 0)
		return -1;
	q->on_crash = (enum on_crash)i;
	return 0;
}

/* One queue group; base is its struct queue_config. */
static const struct cf_key cf_queue_keys[] = {
	{ "name", CF_FUNC, 0, 0, 0, cf_queue_name },
	{ "workers", CF_FUNC, 0, 0, 0, cf_workers },
	{ "capacity", CF_LONG, CF_Q(capacity), 1, 100000000, NULL },
	{ "policy", CF_FUNC, 0, 0, 0, cf_policy },
	{ "timeout", CF_SECONDS, CF_Q(timeout), 0, 31536000, NULL },
	{ "on_crash", CF_FUNC, 0, 0, 0, cf_on_crash },
};

static void
cf_queue_defaults(struct queue_config *q, const char *name)
{
	memset(q, 0, sizeof *q);
	snprintf(q->name, sizeof q->name, "%s", name);
	q->workers = cf_cpus();
	q->workers_auto = 1;
	q->capacity = 10000;
	q->policy = POLICY_PRIORITY;
	q->timeout = 0.0;
	q->on_crash = ON_CRASH_REQUEUE;
}

static int
cf_queues(struct cf_parse *p, const config_setting_t *s, const char *key,
    void *base)
{
	struct config *cfg = base;
	struct queue_config *qs = NULL;
	const config_setting_t *e, *name;
	char *qkey = NULL, *nkey = NULL;
	int i, j, n, r = -1;

	if (!config_setting_is_list(s) && !config_setting_is_array(s)) {
		cf_error(p, s, key, "must be a list of groups such as "
		    "( { name = \"default\"; } )");
		goto out;
	}
	n = config_setting_length(s);
	if (n < 1 || n > CF_MAX_QUEUES) {
		cf_error(p, s, key, "must hold 1..%d queues", CF_MAX_QUEUES);
		goto out;
	}
	qs = xcalloc((size_t)n, sizeof *qs);
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		free(qkey);
		xasprintf(&qkey, "%s[%d]", key, i);
		if (!config_setting_is_group(e)) {
			cf_error(p, e, qkey,
			    "must be a group such as { name = \"default\"; }");
			goto out;
		}
		cf_queue_defaults(&qs[i], "");
		if (cf_group(p, e, qkey, cf_queue_keys,
		    CF_NITEMS(cf_queue_keys), &qs[i]) != 0)
			goto out;
		free(nkey);
		xasprintf(&nkey, "%s.name", qkey);
		if (qs[i].name[0] == '\0') {
			cf_error(p, e, nkey, "missing");
			goto out;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(qs[j].name, qs[i].name) == 0) {
				name = config_setting_get_member(e, "name");
				cf_error(p, name, nkey,
				    "duplicate queue name \"%s\"", qs[i].name);
				goto out;
			}
		}
	}
	free(cfg->queues);
	cfg->queues = qs;
	cfg->nqueues = (size_t)n;
	qs = NULL;
	r = 0;
out:
	free(nkey);
	free(qkey);
	free(qs);
	return r;
}

/* Top level; base is the struct config. */
static const struct cf_key cf_top_keys[] = {
	{ "socket", CF_FUNC, 0, 0, 0, cf_socket },
	{ "socket_mode", CF_FUNC, 0, 0, 0, cf_socket_mode },
	{ "status_listen", CF_FUNC, 0, 0, 0, cf_status_listen },
	{ "state_dir", CF_PATH, CF_CFG(state_dir), 0, 0, NULL },
	{ "log_level", CF_FUNC, 0, 0, 0, cf_log_level },
	{ "max_connections", CF_LONG, CF_CFG(max_connections),
	    1, 1000000, NULL },
	{ "max_request_bytes", CF_LONG, CF_CFG(max_request_bytes),
	    1024, 67108864, NULL },
	{ "keep_finished", CF_LONG, CF_CFG(keep_finished), 0, 10000000, NULL },
	{ "output_tail_bytes", CF_LONG, CF_CFG(output_tail_bytes),
	    0, 16777216, NULL },
	{ "kill_grace", CF_SECONDS, CF_CFG(kill_grace), 0, 3600, NULL },
	{ "shutdown_timeout", CF_SECONDS, CF_CFG(shutdown_timeout),
	    0, 86400, NULL },
	{ "queues", CF_FUNC, 0, 0, 0, cf_queues },
	{ "journal", CF_FUNC, 0, 0, 0, cf_journal },
	{ "admin_group", CF_STRING, CF_CFG(admin_group), 0, 0, NULL },
	{ "allow_users", CF_STRV, CF_CFG(allow_users), 0, 0, NULL },
	{ "allow_groups", CF_STRV, CF_CFG(allow_groups), 0, 0, NULL },
	{ "min_uid", CF_LONG, CF_CFG(min_uid), 0, 2147483647, NULL },
	{ "allow_root_jobs", CF_BOOL, CF_CFG(allow_root_jobs), 0, 0, NULL },
	{ "max_jobs_per_user", CF_LONG, CF_CFG(max_jobs_per_user),
	    0, 100000000, NULL },
	{ "max_connections_per_user", CF_LONG, CF_CFG(max_connections_per_user),
	    0, 1000000, NULL },
	{ "status_job_details", CF_BOOL, CF_CFG(status_job_details),
	    0, 0, NULL },
	{ "status_max_clients", CF_LONG, CF_CFG(status_max_clients),
	    1, 1000000, NULL },
	{ "status_max_subscribers", CF_LONG, CF_CFG(status_max_subscribers),
	    0, 1000000, NULL },
	{ "status_idle_timeout", CF_SECONDS, CF_CFG(status_idle_timeout),
	    1, 86400, NULL },
	{ "subscriber_buffer_bytes", CF_LONG, CF_CFG(subscriber_buffer_bytes),
	    4096, 1073741824, NULL },
};

/* The built-in configuration of SPEC §4 and §5. */
static struct config *
cf_defaults(void)
{
	struct config *cfg;

	cfg = xcalloc(1, sizeof *cfg);
	cfg->socket = config_default_socket();
	cfg->socket_mode = 0660;
	cfg->status_listen = xstrdup("127.0.0.1:9750");
	cfg->state_dir = config_default_state_dir();
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->max_connections = 1024;
	cfg->max_request_bytes = 1048576;
	cfg->keep_finished = 10000;
	cfg->output_tail_bytes = 65536;
	cfg->kill_grace = 5.0;
	cfg->shutdown_timeout = 30.0;

	cfg->queues = xcalloc(1, sizeof *cfg->queues);
	cfg->nqueues = 1;
	cf_queue_defaults(&cfg->queues[0], "default");

	cfg->journal.fsync = FSYNC_ALWAYS;
	cfg->journal.batch_ms = 50;
	cfg->journal.max_bytes = 67108864;

	cfg->admin_group = xstrdup("");
	cfg->allow_users = xcalloc(1, sizeof *cfg->allow_users);
	cfg->allow_groups = xcalloc(1, sizeof *cfg->allow_groups);
	cfg->min_uid = 1000;
	cfg->allow_root_jobs = 0;
	cfg->max_jobs_per_user = 0;
	cfg->max_connections_per_user = 0;
	cfg->status_job_details = 0;

	cfg->status_max_clients = 1024;
	cfg->status_max_subscribers = 64;
	cfg->status_idle_timeout = 60.0;
	cfg->subscriber_buffer_bytes = 1048576;
	return cfg;
}

/*
 * libconfig says only "file I/O error" and leaves errno unreliable (a
 * directory opens fine and then reads nothing): find out why ourselves.
 */
static int
cf_io_errno(const char *path)
{
	struct stat sb;
	int fd, error;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno;
	if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode))
		error = EISDIR;
	else
		error = EIO;
	close(fd);
	return error;
}

int
config_load(const char *path, struct config **out, char **cause)
{
	struct config *cfg = NULL;
	struct cf_parse p;
	config_t lc;
	const char *file;
	int r = -1;

	*out = NULL;
	if (path == NULL) {
		*out = cf_defaults();
		return 0;
	}

	config_init(&lc);
	cfg = cf_defaults();
	cfg->path = xstrdup(path);
	if (config_read_file(&lc, path) != CONFIG_TRUE) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO) {
			xasprintf(cause, "%s: %s", path,
			    strerror(cf_io_errno(path)));
			goto out;
		}
		if ((file = config_error_file(&lc)) == NULL)
			file = path;
		xasprintf(cause, "%s:%d: %s", file, config_error_line(&lc),
		    config_error_text(&lc));
		goto out;
	}

	p.path = path;
	p.cause = cause;
	if (cf_group(&p, config_root_setting(&lc), NULL, cf_top_keys,
	    CF_NITEMS(cf_top_keys), cfg) != 0)
		goto out;

	*out = cfg;
	cfg = NULL;		/* the caller's now */
	r = 0;
out:
	config_destroy(&lc);
	config_free(cfg);
	return r;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->socket);
	free(cfg->status_listen);
	free(cfg->state_dir);
	free(cfg->queues);
	free(cfg->admin_group);
	strv_free(cfg->allow_users);
	strv_free(cfg->allow_groups);
	free(cfg);
}

const struct queue_config *
config_queue(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nqueues; i++) {
		if (strcmp(cfg->queues[i].name, name) == 0)
			return &cfg->queues[i];
	}
	return NULL;
}

const char *
config_policy_name(enum policy policy)
{
	if ((size_t)policy >= CF_NITEMS(cf_policy_names))
		return "unknown";
	return cf_policy_names[policy];
}

const char *
config_on_crash_name(enum on_crash on_crash)
{
	if ((size_t)on_crash >= CF_NITEMS(cf_on_crash_names))
		return "unknown";
	return cf_on_crash_names[on_crash];
}

const char *
config_fsync_name(enum fsync_mode mode)
{
	if ((size_t)mode >= CF_NITEMS(cf_fsync_names))
		return "unknown";
	return cf_fsync_names[mode];
}

/*
 * XDG base directory values that are not absolute are ignored, as that
 * specification asks.
 */
char *
config_default_socket(void)
{
	const char *dir;
	char *path;

	if ((dir = getenv("XDG_RUNTIME_DIR")) != NULL && *dir == '/')
		xasprintf(&path, "%s/jobd/jobd.sock", dir);
	else
		xasprintf(&path, "/tmp/jobd-%u/jobd.sock", (unsigned)getuid());
	return path;
}

char *
config_default_state_dir(void)
{
	const struct passwd *pw;
	const char *dir;
	char *path;

	if ((dir = getenv("XDG_STATE_HOME")) != NULL && *dir == '/') {
		xasprintf(&path, "%s/jobd", dir);
		return path;
	}
	if ((dir = getenv("HOME")) == NULL || *dir != '/') {
		if ((pw = getpwuid(getuid())) != NULL && pw->pw_dir[0] == '/')
			dir = pw->pw_dir;
		else
			dir = NULL;
	}
	if (dir != NULL)
		xasprintf(&path, "%s/.local/state/jobd", dir);
	else
		xasprintf(&path, "/tmp/jobd-%u/state", (unsigned)getuid());
	return path;
}
