/*
 * check_config: the config loader on its own.  Each test runs in a fresh
 * temporary directory (a checked fixture, so in the forked child) and
 * writes "jobd.conf" there, so error messages start with "jobd.conf:LINE:"
 * and can be compared whole.
 */
#include <sys/stat.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define CONF	"jobd.conf"

static char tmpdir[64];

static void
setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/check_config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_int_eq(chdir(tmpdir), 0);
}

static void
teardown(void)
{
	unlink(CONF);
	rmdir("sub");
	if (chdir("/") == 0)
		rmdir(tmpdir);
}

static void
write_conf(const char *text)
{
	FILE *f;

	f = fopen(CONF, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

/* Load text that must be valid. */
static struct config *
load_ok(const char *text)
{
	struct config *cfg = NULL;
	char *cause = NULL;
	int r;

	write_conf(text);
	r = config_load(CONF, &cfg, &cause);
	ck_assert_msg(r == 0, "config_load failed: %s", cause);
	ck_assert_ptr_null(cause);
	ck_assert_ptr_nonnull(cfg);
	return cfg;
}

/* Load text that must be refused; returns the message (caller frees). */
static char *
load_fail(const char *text)
{
	struct config *cfg = (struct config *)&cfg;	/* not NULL */
	char *cause = NULL;

	write_conf(text);
	ck_assert_int_eq(config_load(CONF, &cfg, &cause), -1);
	ck_assert_ptr_null(cfg);
	ck_assert_ptr_nonnull(cause);
	return cause;
}

#define ck_assert_load_error(text, want) do {				\
	char *cause_ = load_fail(text);					\
	ck_assert_str_eq(cause_, want);					\
	free(cause_);							\
} while (0)

static int
cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

/* Every default of SPEC §4 and §5 (socket and state_dir aside). */
static void
check_defaults(const struct config *cfg)
{
	const struct queue_config *q;

	ck_assert_int_eq(cfg->socket_mode, 0660);
	ck_assert_str_eq(cfg->status_listen, "127.0.0.1:9750");
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_INFO);
	ck_assert_int_eq(cfg->max_connections, 1024);
	ck_assert_int_eq(cfg->max_request_bytes, 1048576);
	ck_assert_int_eq(cfg->keep_finished, 10000);
	ck_assert_int_eq(cfg->output_tail_bytes, 65536);
	ck_assert_double_eq(cfg->kill_grace, 5.0);
	ck_assert_double_eq(cfg->shutdown_timeout, 30.0);

	ck_assert_uint_eq(cfg->nqueues, 1);
	q = &cfg->queues[0];
	ck_assert_str_eq(q->name, "default");
	ck_assert_int_eq(q->workers, cpus());
	ck_assert_int_eq(q->workers_auto, 1);
	ck_assert_int_eq(q->capacity, 10000);
	ck_assert_int_eq(q->policy, POLICY_PRIORITY);
	ck_assert_double_eq(q->timeout, 0.0);
	ck_assert_int_eq(q->on_crash, ON_CRASH_REQUEUE);

	ck_assert_int_eq(cfg->journal.fsync, FSYNC_ALWAYS);
	ck_assert_int_eq(cfg->journal.batch_ms, 50);
	ck_assert_int_eq(cfg->journal.max_bytes, 67108864);

	ck_assert_str_eq(cfg->admin_group, "");
	ck_assert_ptr_nonnull(cfg->allow_users);
	ck_assert_ptr_null(cfg->allow_users[0]);
	ck_assert_ptr_nonnull(cfg->allow_groups);
	ck_assert_ptr_null(cfg->allow_groups[0]);
	ck_assert_int_eq(cfg->min_uid, 1000);
	ck_assert_int_eq(cfg->allow_root_jobs, 0);
	ck_assert_int_eq(cfg->max_jobs_per_user, 0);
	ck_assert_int_eq(cfg->max_connections_per_user, 0);
	ck_assert_int_eq(cfg->status_job_details, 0);

	ck_assert_int_eq(cfg->status_max_clients, 1024);
	ck_assert_int_eq(cfg->status_max_subscribers, 64);
	ck_assert_double_eq(cfg->status_idle_timeout, 60.0);
	ck_assert_int_eq(cfg->subscriber_buffer_bytes, 1048576);
}

START_TEST(test_builtin)
{
	struct config *cfg = NULL;
	char *cause = NULL;

	setenv("XDG_RUNTIME_DIR", "/run/user/4321", 1);
	setenv("XDG_STATE_HOME", "/home/u/.state", 1);
	ck_assert_int_eq(config_load(NULL, &cfg, &cause), 0);
	ck_assert_ptr_null(cause);
	ck_assert_ptr_null(cfg->path);
	ck_assert_str_eq(cfg->socket, "/run/user/4321/jobd/jobd.sock");
	ck_assert_str_eq(cfg->state_dir, "/home/u/.state/jobd");
	check_defaults(cfg);
	config_free(cfg);
	config_free(NULL);
}
END_TEST

START_TEST(test_empty_file)
{
	struct config *cfg;

	cfg = load_ok("");
	ck_assert_str_eq(cfg->path, CONF);
	check_defaults(cfg);
	config_free(cfg);

	cfg = load_ok("# only a comment\n\n");
	check_defaults(cfg);
	config_free(cfg);
}
END_TEST

START_TEST(test_default_paths)
{
	char *s;

	setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
	s = config_default_socket();
	ck_assert_str_eq(s, "/run/user/7/jobd/jobd.sock");
	free(s);

	/* Unset, empty or relative: the /tmp fallback. */
	unsetenv("XDG_RUNTIME_DIR");
	s = config_default_socket();
	ck_assert_int_eq(strncmp(s, "/tmp/jobd-", 10), 0);
	ck_assert_uint_eq(strtoul(s + 10, NULL, 10), getuid());
	ck_assert_ptr_nonnull(strstr(s, "/jobd.sock"));
	free(s);
	setenv("XDG_RUNTIME_DIR", "", 1);
	s = config_default_socket();
	ck_assert_int_eq(strncmp(s, "/tmp/jobd-", 10), 0);
	free(s);

	setenv("XDG_STATE_HOME", "/xdg/state", 1);
	s = config_default_state_dir();
	ck_assert_str_eq(s, "/xdg/state/jobd");
	free(s);
	setenv("XDG_STATE_HOME", "", 1);
	setenv("HOME", "/home/alice", 1);
	s = config_default_state_dir();
	ck_assert_str_eq(s, "/home/alice/.local/state/jobd");
	free(s);
	unsetenv("XDG_STATE_HOME");
	unsetenv("HOME");
	s = config_default_state_dir();
	ck_assert_ptr_nonnull(strstr(s, "/jobd"));
	ck_assert_int_eq(s[0], '/');
	free(s);
}
END_TEST

START_TEST(test_spec_example)
{
	struct config *cfg;
	const struct queue_config *q;

	cfg = load_ok(
	    "socket = \"/run/jobd/jobd.sock\";\n"
	    "socket_mode = \"0660\";            # octal, as a string\n"
	    "status_listen = \"127.0.0.1:9750\";\n"
	    "state_dir = \"/var/lib/jobd\";\n"
	    "log_level = \"info\";              # error | warning | info | debug\n"
	    "max_connections = 1024;\n"
	    "max_request_bytes = 1048576;\n"
	    "keep_finished = 10000;           # finished jobs kept for get/list\n"
	    "output_tail_bytes = 65536;       # per stream, per job\n"
	    "kill_grace = 5.0;                # seconds from SIGTERM to SIGKILL\n"
	    "queues = (\n"
	    "  { name = \"default\"; workers = 4; capacity = 10000; "
	    "policy = \"priority\"; timeout = 0.0; }\n"
	    ");\n");
	ck_assert_str_eq(cfg->socket, "/run/jobd/jobd.sock");
	ck_assert_int_eq(cfg->socket_mode, 0660);
	ck_assert_str_eq(cfg->status_listen, "127.0.0.1:9750");
	ck_assert_str_eq(cfg->state_dir, "/var/lib/jobd");
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_INFO);
	ck_assert_int_eq(cfg->max_connections, 1024);
	ck_assert_int_eq(cfg->max_request_bytes, 1048576);
	ck_assert_int_eq(cfg->keep_finished, 10000);
	ck_assert_int_eq(cfg->output_tail_bytes, 65536);
	ck_assert_double_eq(cfg->kill_grace, 5.0);
	ck_assert_double_eq(cfg->shutdown_timeout, 30.0);
	ck_assert_uint_eq(cfg->nqueues, 1);
	q = config_queue(cfg, "default");
	ck_assert_ptr_eq(q, &cfg->queues[0]);
	ck_assert_int_eq(q->workers, 4);
	ck_assert_int_eq(q->workers_auto, 0);
	ck_assert_int_eq(q->capacity, 10000);
	ck_assert_int_eq(q->policy, POLICY_PRIORITY);
	ck_assert_double_eq(q->timeout, 0.0);
	ck_assert_ptr_null(config_queue(cfg, "other"));
	config_free(cfg);
}
END_TEST

START_TEST(test_every_key)
{
	struct config *cfg;
	const struct queue_config *q;

	cfg = load_ok(
	    "socket = \"run/jobd.sock\";\n"
	    "socket_mode = \"600\";\n"
	    "status_listen = \"unix:/run/jobd/status.sock\";\n"
	    "state_dir = \"state\";\n"
	    "log_level = \"debug\";\n"
	    "max_connections = 1000000;\n"
	    "max_request_bytes = 1024;\n"
	    "keep_finished = 0;\n"
	    "output_tail_bytes = 0;\n"
	    "kill_grace = 0.25;\n"
	    "shutdown_timeout = 86400;\n"
	    "journal = { fsync = \"batch\"; batch_ms = 10000;"
	    " max_bytes = 1099511627776L; };\n"
	    "queues = (\n"
	    "  { name = \"a\"; workers = 1; capacity = 100000000;"
	    " policy = \"lifo\"; timeout = 31536000; on_crash = \"fail\"; },\n"
	    "  { name = \"B-2_x.y\"; workers = \"auto\"; capacity = 1L;"
	    " policy = \"fifo\"; timeout = 1.5; on_crash = \"requeue\"; }\n"
	    ");\n"
	    "admin_group = \"wheel\";\n"
	    "allow_users = [ \"alice\", \"bob\" ];\n"
	    "allow_groups = ( \"staff\" );\n"
	    "min_uid = 2147483647;\n"
	    "allow_root_jobs = true;\n"
	    "max_jobs_per_user = 100000000;\n"
	    "max_connections_per_user = 1000000;\n"
	    "status_job_details = true;\n"
	    "status_max_clients = 7;\n"
	    "status_max_subscribers = 0;\n"
	    "status_idle_timeout = 2;\n"
	    "subscriber_buffer_bytes = 4096;\n");
	ck_assert_str_eq(cfg->socket, "run/jobd.sock");
	ck_assert_int_eq(cfg->socket_mode, 0600);
	ck_assert_str_eq(cfg->status_listen, "unix:/run/jobd/status.sock");
	ck_assert_str_eq(cfg->state_dir, "state");
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_DEBUG);
	ck_assert_int_eq(cfg->max_connections, 1000000);
	ck_assert_int_eq(cfg->max_request_bytes, 1024);
	ck_assert_int_eq(cfg->keep_finished, 0);
	ck_assert_int_eq(cfg->output_tail_bytes, 0);
	ck_assert_double_eq(cfg->kill_grace, 0.25);
	ck_assert_double_eq(cfg->shutdown_timeout, 86400.0);
	ck_assert_int_eq(cfg->journal.fsync, FSYNC_BATCH);
	ck_assert_int_eq(cfg->journal.batch_ms, 10000);
	ck_assert_int_eq(cfg->journal.max_bytes, 1LL << 40);

	ck_assert_uint_eq(cfg->nqueues, 2);
	q = &cfg->queues[0];
	ck_assert_str_eq(q->name, "a");
	ck_assert_int_eq(q->workers, 1);
	ck_assert_int_eq(q->workers_auto, 0);
	ck_assert_int_eq(q->capacity, 100000000);
	ck_assert_int_eq(q->policy, POLICY_LIFO);
	ck_assert_double_eq(q->timeout, 31536000.0);
	ck_assert_int_eq(q->on_crash, ON_CRASH_FAIL);
	q = config_queue(cfg, "B-2_x.y");
	ck_assert_ptr_eq(q, &cfg->queues[1]);
	ck_assert_int_eq(q->workers, cpus());
	ck_assert_int_eq(q->workers_auto, 1);
	ck_assert_int_eq(q->capacity, 1);
	ck_assert_int_eq(q->policy, POLICY_FIFO);
	ck_assert_double_eq(q->timeout, 1.5);
	ck_assert_int_eq(q->on_crash, ON_CRASH_REQUEUE);

	ck_assert_str_eq(cfg->admin_group, "wheel");
	ck_assert_uint_eq(strv_len(cfg->allow_users), 2);
	ck_assert_str_eq(cfg->allow_users[0], "alice");
	ck_assert_str_eq(cfg->allow_users[1], "bob");
	ck_assert_ptr_null(cfg->allow_users[2]);
	ck_assert_uint_eq(strv_len(cfg->allow_groups), 1);
	ck_assert_str_eq(cfg->allow_groups[0], "staff");
	ck_assert_int_eq(cfg->min_uid, 2147483647);
	ck_assert_int_eq(cfg->allow_root_jobs, 1);
	ck_assert_int_eq(cfg->max_jobs_per_user, 100000000);
	ck_assert_int_eq(cfg->max_connections_per_user, 1000000);
	ck_assert_int_eq(cfg->status_job_details, 1);
	ck_assert_int_eq(cfg->status_max_clients, 7);
	ck_assert_int_eq(cfg->status_max_subscribers, 0);
	ck_assert_double_eq(cfg->status_idle_timeout, 2.0);
	ck_assert_int_eq(cfg->subscriber_buffer_bytes, 4096);
	config_free(cfg);
}
END_TEST

START_TEST(test_minimal_queue)
{
	struct config *cfg;
	const struct queue_config *q;

	cfg = load_ok("queues = ( { name = \"default\"; workers = 2; } );\n");
	ck_assert_uint_eq(cfg->nqueues, 1);
	q = &cfg->queues[0];
	ck_assert_str_eq(q->name, "default");
	ck_assert_int_eq(q->workers, 2);
	ck_assert_int_eq(q->workers_auto, 0);
	ck_assert_int_eq(q->capacity, 10000);
	ck_assert_int_eq(q->policy, POLICY_PRIORITY);
	ck_assert_double_eq(q->timeout, 0.0);
	ck_assert_int_eq(q->on_crash, ON_CRASH_REQUEUE);
	ck_assert_int_eq(cfg->max_connections, 1024);
	config_free(cfg);

	/* A queue that is not called "default" replaces it. */
	cfg = load_ok("queues = ( { name = \"batch\"; } );\n");
	ck_assert_uint_eq(cfg->nqueues, 1);
	ck_assert_ptr_null(config_queue(cfg, "default"));
	ck_assert_int_eq(config_queue(cfg, "batch")->workers_auto, 1);
	config_free(cfg);
}
END_TEST

START_TEST(test_numbers)
{
	struct config *cfg;

	/* Integers where seconds are expected; int64 where integers are. */
	cfg = load_ok("kill_grace = 7;\nshutdown_timeout = 60L;\n"
	    "queues = ( { name = \"q\"; timeout = 30; workers = 3L; } );\n"
	    "max_connections = 0x10;\nmin_uid = 0;\n");
	ck_assert_double_eq(cfg->kill_grace, 7.0);
	ck_assert_double_eq(cfg->shutdown_timeout, 60.0);
	ck_assert_double_eq(cfg->queues[0].timeout, 30.0);
	ck_assert_int_eq(cfg->queues[0].workers, 3);
	ck_assert_int_eq(cfg->max_connections, 16);
	ck_assert_int_eq(cfg->min_uid, 0);
	config_free(cfg);
}
END_TEST

/* A text and the whole message it must give. */
struct bad {
	const char	*text;
	const char	*want;
};

static const struct bad ranges[] = {
	{ "max_connections = 0;",
	  CONF ":1: max_connections: must be 1..1000000" },
	{ "max_connections = 1000001;",
	  CONF ":1: max_connections: must be 1..1000000" },
	{ "max_request_bytes = 1023;",
	  CONF ":1: max_request_bytes: must be 1024..67108864" },
	{ "max_request_bytes = 67108865;",
	  CONF ":1: max_request_bytes: must be 1024..67108864" },
	{ "keep_finished = -1;",
	  CONF ":1: keep_finished: must be 0..10000000" },
	{ "keep_finished = 10000001;",
	  CONF ":1: keep_finished: must be 0..10000000" },
	{ "output_tail_bytes = 16777217;",
	  CONF ":1: output_tail_bytes: must be 0..16777216" },
	{ "kill_grace = 3600.5;", CONF ":1: kill_grace: must be 0..3600" },
	{ "kill_grace = -1;", CONF ":1: kill_grace: must be 0..3600" },
	{ "shutdown_timeout = 86401;",
	  CONF ":1: shutdown_timeout: must be 0..86400" },
	{ "shutdown_timeout = -0.001;",
	  CONF ":1: shutdown_timeout: must be 0..86400" },
	{ "\n\nqueues = (\n  { name = \"a\"; },\n  { name = \"b\";\n"
	  "    workers = 0; }\n);\n",
	  CONF ":6: queues[1].workers: must be 1..1024" },
	{ "queues = ( { name = \"a\"; workers = 1025; } );",
	  CONF ":1: queues[0].workers: must be 1..1024" },
	{ "queues = ( { name = \"a\"; capacity = 0; } );",
	  CONF ":1: queues[0].capacity: must be 1..100000000" },
	{ "queues = ( { name = \"a\"; capacity = 100000001; } );",
	  CONF ":1: queues[0].capacity: must be 1..100000000" },
	{ "queues = ( { name = \"a\";\n timeout = 31536000.5; } );",
	  CONF ":2: queues[0].timeout: must be 0..31536000" },
	{ "queues = ( { name = \"a\"; timeout = -1; } );",
	  CONF ":1: queues[0].timeout: must be 0..31536000" },
	{ "journal = {\n  fsync = \"off\";\n  batch_ms = 0;\n};",
	  CONF ":3: journal.batch_ms: must be 1..10000" },
	{ "journal = { batch_ms = 10001; };",
	  CONF ":1: journal.batch_ms: must be 1..10000" },
	{ "journal = { max_bytes = 65535; };",
	  CONF ":1: journal.max_bytes: must be 65536..1099511627776" },
	{ "journal = { max_bytes = 1099511627777L; };",
	  CONF ":1: journal.max_bytes: must be 65536..1099511627776" },
	{ "min_uid = -1;", CONF ":1: min_uid: must be 0..2147483647" },
	{ "min_uid = 2147483648L;", CONF ":1: min_uid: must be 0..2147483647" },
	{ "max_jobs_per_user = 100000001;",
	  CONF ":1: max_jobs_per_user: must be 0..100000000" },
	{ "max_jobs_per_user = -1;",
	  CONF ":1: max_jobs_per_user: must be 0..100000000" },
	{ "max_connections_per_user = 1000001;",
	  CONF ":1: max_connections_per_user: must be 0..1000000" },
	{ "status_max_clients = 0;",
	  CONF ":1: status_max_clients: must be 1..1000000" },
	{ "status_max_subscribers = -1;",
	  CONF ":1: status_max_subscribers: must be 0..1000000" },
	{ "status_idle_timeout = 0.5;",
	  CONF ":1: status_idle_timeout: must be 1..86400" },
	{ "subscriber_buffer_bytes = 4095;",
	  CONF ":1: subscriber_buffer_bytes: must be 4096..1073741824" },
};

START_TEST(test_ranges)
{
	ck_assert_load_error(ranges[_i].text, ranges[_i].want);
}
END_TEST

static const struct bad types[] = {
	{ "socket = 5;", CONF ":1: socket: must be a string" },
	{ "socket = \"\";", CONF ":1: socket: must not be empty" },
	{ "state_dir = \"\";", CONF ":1: state_dir: must not be empty" },
	{ "state_dir = true;", CONF ":1: state_dir: must be a string" },
	{ "status_listen = 9750;", CONF ":1: status_listen: must be a string" },
	{ "log_level = \"verbose\";",
	  CONF ":1: log_level: must be one of error, warning, info, debug" },
	{ "log_level = 3;",
	  CONF ":1: log_level: must be one of error, warning, info, debug" },
	{ "max_connections = 10.0;",
	  CONF ":1: max_connections: must be an integer" },
	{ "max_connections = \"10\";",
	  CONF ":1: max_connections: must be an integer" },
	{ "kill_grace = \"5\";", CONF ":1: kill_grace: must be a number" },
	{ "kill_grace = [ 5 ];", CONF ":1: kill_grace: must be a number" },
	{ "allow_root_jobs = 1;",
	  CONF ":1: allow_root_jobs: must be true or false" },
	{ "status_job_details = \"yes\";",
	  CONF ":1: status_job_details: must be true or false" },
	{ "queues = 5;", CONF ":1: queues: must be a list of groups such as "
	  "( { name = \"default\"; } )" },
	{ "queues = { name = \"a\"; };", CONF ":1: queues: must be a list of "
	  "groups such as ( { name = \"default\"; } )" },
	{ "queues = ( { name = \"a\"; },\n  5 );", CONF ":2: queues[1]: must "
	  "be a group such as { name = \"default\"; }" },
	{ "journal = 5;", CONF ":1: journal: must be a group such as "
	  "{ fsync = \"batch\"; }" },
	{ "queues = ( { name = \"a\"; policy = \"random\"; } );",
	  CONF ":1: queues[0].policy: must be one of priority, fifo, lifo" },
	{ "queues = ( { name = \"a\"; policy = 1; } );",
	  CONF ":1: queues[0].policy: must be one of priority, fifo, lifo" },
	{ "queues = ( { name = \"a\"; on_crash = \"ignore\"; } );",
	  CONF ":1: queues[0].on_crash: must be one of requeue, fail" },
	{ "journal = { fsync = \"sometimes\"; };",
	  CONF ":1: journal.fsync: must be one of always, batch, off" },
	{ "journal = { fsync = true; };",
	  CONF ":1: journal.fsync: must be one of always, batch, off" },
	{ "queues = ( { name = \"a\"; workers = \"many\"; } );",
	  CONF ":1: queues[0].workers: must be 1..1024 or \"auto\"" },
	{ "queues = ( { name = \"a\"; workers = 2.0; } );",
	  CONF ":1: queues[0].workers: must be 1..1024 or \"auto\"" },
	{ "queues = ( { name = \"a\"; capacity = 5.0; } );",
	  CONF ":1: queues[0].capacity: must be an integer" },
	{ "queues = ( { name = \"a\"; timeout = \"1\"; } );",
	  CONF ":1: queues[0].timeout: must be a number" },
	{ "queues = ( { name = 5; } );",
	  CONF ":1: queues[0].name: must be a string" },
	{ "admin_group = 0;", CONF ":1: admin_group: must be a string" },
	{ "allow_users = \"alice\";",
	  CONF ":1: allow_users: must be a list of strings" },
	{ "allow_users = ( \"alice\",\n 5 );",
	  CONF ":2: allow_users[1]: must be a string" },
	{ "allow_groups = [ \"\" ];",
	  CONF ":1: allow_groups[0]: must not be empty" },
	{ "socket_mode = 660;",
	  CONF ":1: socket_mode: must be an octal string such as \"0660\"" },
};

START_TEST(test_types)
{
	ck_assert_load_error(types[_i].text, types[_i].want);
}
END_TEST

START_TEST(test_unknown_keys)
{
	ck_assert_load_error("log_level = \"info\";\ncolour = \"blue\";\n",
	    CONF ":2: colour: unknown key");
	ck_assert_load_error("queues = (\n  { name = \"a\";\n"
	    "    worker = 2; }\n);\n",
	    CONF ":3: queues[0].worker: unknown key");
	ck_assert_load_error("journal = {\n  fsync = \"off\";\n  sync = 1;\n};\n",
	    CONF ":3: journal.sync: unknown key");
	/* Unknown keys are reported even with a value of any type. */
	ck_assert_load_error("extra = { a = 1; };\n",
	    CONF ":1: extra: unknown key");
	/* In file order: the first problem wins. */
	ck_assert_load_error("typo = 1;\nmax_connections = 0;\n",
	    CONF ":1: typo: unknown key");
}
END_TEST

START_TEST(test_queue_names)
{
	static const char *const bad[] = {
		"", "a b", "a/b", "caf\xc3\xa9", "a:b",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	struct config *cfg;
	char *text;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(asprintf(&text,
		    "queues = ( { name = \"ok\"; },\n { name = \"%s\"; } );",
		    bad[i]) > 0, 1);
		ck_assert_load_error(text, CONF ":2: queues[1].name: "
		    "must match [A-Za-z0-9_.-]{1,64}");
		free(text);
	}

	/* 64 characters is the longest. */
	cfg = load_ok("queues = ( { name = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"; } );");
	ck_assert_uint_eq(strlen(cfg->queues[0].name), 64);
	config_free(cfg);

	ck_assert_load_error("queues = (\n { workers = 2; }\n);",
	    CONF ":2: queues[0].name: missing");
	ck_assert_load_error("queues = (\n { name = \"x\"; },\n { name = \"y\"; },"
	    "\n { workers = 1;\n   name = \"x\"; }\n);",
	    CONF ":5: queues[2].name: duplicate queue name \"x\"");
}
END_TEST

START_TEST(test_queue_count)
{
	struct config *cfg;
	char *text, *more;
	int i;

	ck_assert_load_error("\nqueues = ();",
	    CONF ":2: queues: must hold 1..256 queues");
	ck_assert_load_error("queues = [];",
	    CONF ":1: queues: must hold 1..256 queues");

	text = strdup("queues = ( { name = \"q0\"; }");
	for (i = 1; i < 256; i++) {
		ck_assert_int_eq(asprintf(&more, "%s, { name = \"q%d\"; }",
		    text, i) > 0, 1);
		free(text);
		text = more;
	}
	ck_assert_int_eq(asprintf(&more, "%s );", text) > 0, 1);
	cfg = load_ok(more);
	ck_assert_uint_eq(cfg->nqueues, 256);
	ck_assert_str_eq(cfg->queues[255].name, "q255");
	ck_assert_ptr_eq(config_queue(cfg, "q128"), &cfg->queues[128]);
	config_free(cfg);
	free(more);

	ck_assert_int_eq(asprintf(&more, "%s, { name = \"q256\"; } );",
	    text) > 0, 1);
	ck_assert_load_error(more, CONF ":1: queues: must hold 1..256 queues");
	free(more);
	free(text);
}
END_TEST

START_TEST(test_workers_auto)
{
	struct config *cfg;

	cfg = load_ok("queues = ( { name = \"a\"; workers = \"auto\"; },"
	    " { name = \"b\"; workers = 1024; } );");
	ck_assert_int_eq(cfg->queues[0].workers, cpus());
	ck_assert_int_eq(cfg->queues[0].workers_auto, 1);
	ck_assert_int_eq(cfg->queues[1].workers, 1024);
	ck_assert_int_eq(cfg->queues[1].workers_auto, 0);
	config_free(cfg);
}
END_TEST

START_TEST(test_socket_mode)
{
	static const struct {
		const char	*text;
		mode_t		 mode;
	} good[] = {
		{ "0660", 0660 }, { "660", 0660 }, { "0600", 0600 },
		{ "0", 0 }, { "07777", 07777 }, { "4755", 04755 },
		{ "000000770", 0770 },
	};
	static const char *const bad[] = {
		"", "0668", "rw-rw----", "0x1ff", "-660", " 660", "0660 ",
	};
	struct config *cfg;
	char *text;
	size_t i;

	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		ck_assert_int_eq(asprintf(&text, "socket_mode = \"%s\";",
		    good[i].text) > 0, 1);
		cfg = load_ok(text);
		ck_assert_int_eq(cfg->socket_mode, good[i].mode);
		config_free(cfg);
		free(text);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(asprintf(&text, "socket_mode = \"%s\";",
		    bad[i]) > 0, 1);
		ck_assert_load_error(text, CONF ":1: socket_mode: "
		    "must be an octal string such as \"0660\"");
		free(text);
	}
	ck_assert_load_error("socket_mode = \"10000\";",
	    CONF ":1: socket_mode: must be at most \"07777\"");
	ck_assert_load_error("socket_mode = \"7777777777777777777777777\";",
	    CONF ":1: socket_mode: must be at most \"07777\"");
}
END_TEST

START_TEST(test_status_listen)
{
	static const char *const good[] = {
		"", "127.0.0.1:9750", "localhost:1", "0.0.0.0:65535",
		"my-host.example.com:8080", "[::1]:9750", "[fe80::1:2]:80",
		"[::ffff:127.0.0.1]:9750", "unix:/run/jobd/status.sock",
	};
	static const struct {
		const char	*value;
		const char	*problem;
	} bad[] = {
#define SHAPES	"must be \"\", \"unix:/path\", \"host:port\" or \"[v6addr]:port\""
		{ "127.0.0.1", SHAPES },
		{ ":9750", SHAPES },
		{ "ho st:80", SHAPES },
		{ "[::1]", SHAPES },
		{ "[::1]9750", SHAPES },
		{ "127.0.0.1:0", "port must be 1..65535" },
		{ "127.0.0.1:65536", "port must be 1..65535" },
		{ "localhost:http", "port must be 1..65535" },
		{ "localhost:+80", "port must be 1..65535" },
		{ "localhost:80x", "port must be 1..65535" },
		{ "localhost:", "port must be 1..65535" },
		{ "[::1]:", "port must be 1..65535" },
		{ "localhost:99999999999999999999999", "port must be 1..65535" },
		{ "::1:9750", "an IPv6 address needs brackets: \"[::1]:9750\"" },
		{ "[zz::1]:80", "bad IPv6 address in brackets" },
		{ "[]:80", "bad IPv6 address in brackets" },
		{ "unix:", "unix socket path must be absolute" },
		{ "unix:run/status.sock", "unix socket path must be absolute" },
#undef SHAPES
	};
	struct config *cfg;
	char *text, *want, longpath[200];
	size_t i;

	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		ck_assert_int_eq(asprintf(&text, "status_listen = \"%s\";",
		    good[i]) > 0, 1);
		cfg = load_ok(text);
		ck_assert_str_eq(cfg->status_listen, good[i]);
		config_free(cfg);
		free(text);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(asprintf(&text, "\nstatus_listen = \"%s\";",
		    bad[i].value) > 0, 1);
		ck_assert_int_eq(asprintf(&want, CONF ":2: status_listen: %s",
		    bad[i].problem) > 0, 1);
		ck_assert_load_error(text, want);
		free(want);
		free(text);
	}

	memset(longpath, 'x', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	ck_assert_int_eq(asprintf(&text, "status_listen = \"unix:%s\";",
	    longpath) > 0, 1);
	ck_assert_load_error(text,
	    CONF ":1: status_listen: unix socket path is too long");
	free(text);
	ck_assert_int_eq(asprintf(&text, "socket = \"%s\";", longpath) > 0, 1);
	ck_assert_load_error(text, CONF ":1: socket: must be at most 107 bytes");
	free(text);
}
END_TEST

START_TEST(test_log_levels)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	static const int levels[] = {
		LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_INFO,
		LOG_LEVEL_DEBUG,
	};
	struct config *cfg;
	char *text;
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		ck_assert_int_eq(asprintf(&text, "log_level = \"%s\";",
		    names[i]) > 0, 1);
		cfg = load_ok(text);
		ck_assert_int_eq(cfg->log_level, levels[i]);
		config_free(cfg);
		free(text);
	}
	ck_assert_load_error("log_level = \"INFO\";",
	    CONF ":1: log_level: must be one of error, warning, info, debug");
}
END_TEST

START_TEST(test_section5)
{
	struct config *cfg;

	cfg = load_ok("admin_group = \"\";\nallow_users = [];\n"
	    "allow_groups = ();\nallow_root_jobs = false;\n");
	ck_assert_str_eq(cfg->admin_group, "");
	ck_assert_ptr_nonnull(cfg->allow_users);
	ck_assert_ptr_null(cfg->allow_users[0]);
	ck_assert_ptr_nonnull(cfg->allow_groups);
	ck_assert_ptr_null(cfg->allow_groups[0]);
	ck_assert_int_eq(cfg->allow_root_jobs, 0);
	config_free(cfg);

	cfg = load_ok("allow_users = ( \"alice\" );\n"
	    "allow_groups = [ \"jobs\", \"staff\", \"wheel\" ];\n");
	ck_assert_uint_eq(strv_len(cfg->allow_users), 1);
	ck_assert_str_eq(cfg->allow_users[0], "alice");
	ck_assert_uint_eq(strv_len(cfg->allow_groups), 3);
	ck_assert_str_eq(cfg->allow_groups[2], "wheel");
	config_free(cfg);

	ck_assert_load_error("allow_groups = ( ( \"a\" ) );",
	    CONF ":1: allow_groups[0]: must be a string");
}
END_TEST

START_TEST(test_file_errors)
{
	struct config *cfg = (struct config *)&cfg;
	char *cause = NULL;

	ck_assert_int_eq(config_load("missing.conf", &cfg, &cause), -1);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(cause, "missing.conf: No such file or directory");
	free(cause);

	ck_assert_int_eq(mkdir("sub", 0700), 0);
	cause = NULL;
	ck_assert_int_eq(config_load("sub", &cfg, &cause), -1);
	ck_assert_str_eq(cause, "sub: Is a directory");
	free(cause);

	cause = NULL;
	ck_assert_int_eq(config_load("sub/jobd.conf", &cfg, &cause), -1);
	ck_assert_str_eq(cause, "sub/jobd.conf: No such file or directory");
	free(cause);
}
END_TEST

START_TEST(test_syntax_errors)
{
	ck_assert_load_error("log_level = \"info\";\nmax_connections = ;\n",
	    CONF ":2: syntax error");
	ck_assert_load_error("queues = (\n  { name = \"a\"; } }\n);\n",
	    CONF ":2: syntax error");
	ck_assert_load_error("kill_grace = 1;\n\nkill_grace = 2;\n",
	    CONF ":3: duplicate setting name");
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(config_policy_name(POLICY_PRIORITY), "priority");
	ck_assert_str_eq(config_policy_name(POLICY_FIFO), "fifo");
	ck_assert_str_eq(config_policy_name(POLICY_LIFO), "lifo");
	ck_assert_str_eq(config_on_crash_name(ON_CRASH_REQUEUE), "requeue");
	ck_assert_str_eq(config_on_crash_name(ON_CRASH_FAIL), "fail");
	ck_assert_str_eq(config_fsync_name(FSYNC_ALWAYS), "always");
	ck_assert_str_eq(config_fsync_name(FSYNC_BATCH), "batch");
	ck_assert_str_eq(config_fsync_name(FSYNC_OFF), "off");
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_builtin);
	tcase_add_test(tc, test_empty_file);
	tcase_add_test(tc, test_default_paths);
	tcase_add_test(tc, test_spec_example);
	tcase_add_test(tc, test_every_key);
	tcase_add_test(tc, test_minimal_queue);
	tcase_add_test(tc, test_numbers);
	tcase_add_loop_test(tc, test_ranges, 0,
	    (int)(sizeof ranges / sizeof ranges[0]));
	tcase_add_loop_test(tc, test_types, 0,
	    (int)(sizeof types / sizeof types[0]));
	tcase_add_test(tc, test_unknown_keys);
	tcase_add_test(tc, test_queue_names);
	tcase_add_test(tc, test_queue_count);
	tcase_add_test(tc, test_workers_auto);
	tcase_add_test(tc, test_socket_mode);
	tcase_add_test(tc, test_status_listen);
	tcase_add_test(tc, test_log_levels);
	tcase_add_test(tc, test_section5);
	tcase_add_test(tc, test_file_errors);
	tcase_add_test(tc, test_syntax_errors);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
