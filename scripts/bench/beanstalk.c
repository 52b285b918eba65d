/*
 * beanstalk: the beanstalkd baseline of scripts/bench.sh.  One producer
 * connection pipelines COUNT `put` commands (32-byte body) while its reader
 * thread takes the INSERTED answers; NCONSUMERS threads, each on its own
 * connection, loop reserve → (optionally spawn /bin/true and wait for it)
 * → delete.  A consumer sends its delete and its next reserve in one
 * write, as a tuned client would.  Clock: first put written → last
 * DELETED read.
 *
 *	beanstalk [-x] ADDR NCONSUMERS COUNT
 *
 * ADDR is unix:/path or HOST:PORT (TCP, Nagle off).  -x: consumers
 * posix_spawn /bin/true per job and waitpid it before the delete (the
 * "beanstalkd with consumers that spawn" job runner).
 *
 * Prints: jobs= secs= rate= put_secs=
 */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>

#include "benchutil.h"

#define BODY	"0123456789abcdef0123456789abcdef"	/* 32 bytes */

extern char **environ;

static const char *addr;
static long count;
static int spawn_jobs;
static atomic_long deleted;
static double t_done;
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;

static int
bs_connect(void)
{
	struct addrinfo hints, *res;
	struct sockaddr_un sun;
	char host[256], *colon;
	int fd, one = 1, e;

	if (strncmp(addr, "unix:", 5) == 0) {
		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		if (strlen(addr + 5) >= sizeof sun.sun_path)
			die("%s: path too long", addr);
		strcpy(sun.sun_path, addr + 5);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			die("socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1)
			die("%s: connect: %s", addr, strerror(errno));
		return fd;
	}
	snprintf(host, sizeof host, "%s", addr);
	if ((colon = strrchr(host, ':')) == NULL)
		die("%s: want unix:/path or host:port", addr);
	*colon = '\0';
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	if ((e = getaddrinfo(host, colon + 1, &hints, &res)) != 0)
		die("%s: %s", addr, gai_strerror(e));
	if ((fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	if (connect(fd, res->ai_addr, res->ai_addrlen) == -1)
		die("%s: connect: %s", addr, strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	freeaddrinfo(res);
	return fd;
}

static void
run_true(void)
{
	char *argv[] = { "/bin/true", NULL };
	pid_t pid;
	int e, st;

	if ((e = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ)) != 0)
		die("posix_spawn: %s", strerror(e));
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
}

struct consumer {
	pthread_t	 t;
	int		 fd;
	struct rbuf	 rb;
};

static void *
consumer_main(void *arg)
{
	struct consumer *c = arg;
	unsigned long long id;
	char cmd[64], *line;
	size_t len, body;
	int n;

	c->rb.fd = c->fd;
	write_all(c->fd, "reserve\r\n", 9);
	for (;;) {
		/* EOF: the main thread shut the socket down, all is done. */
		if ((line = rbuf_line(&c->rb, &len)) == NULL)
			return NULL;
		if (strncmp(line, "DELETED", 7) == 0)
			continue;
		if (sscanf(line, "RESERVED %llu %zu", &id, &body) != 2)
			die("consumer: unexpected answer: %s", line);
		if (!rbuf_skip(&c->rb, body + 2))
			return NULL;
		if (spawn_jobs)
			run_true();
		n = snprintf(cmd, sizeof cmd, "delete %llu\r\nreserve\r\n", id);
		write_all(c->fd, cmd, (size_t)n);
		/* Count it once its DELETED is read. */
		if ((line = rbuf_line(&c->rb, &len)) == NULL)
			return NULL;
		if (strncmp(line, "DELETED", 7) != 0)
			die("consumer: delete answered %s", line);
		if (atomic_fetch_add(&deleted, 1) + 1 == count) {
			pthread_mutex_lock(&done_lock);
			t_done = now_s();
			pthread_cond_signal(&done_cv);
			pthread_mutex_unlock(&done_lock);
		}
	}
}

struct producer {
	int		 fd;
	double		 t_acked;
	struct rbuf	 rb;
};

static void *
producer_reader(void *arg)
{
	struct producer *p = arg;
	size_t len;
	char *line;
	long n;

	p->rb.fd = p->fd;
	for (n = 0; n < count; n++) {
		if ((line = rbuf_line(&p->rb, &len)) == NULL)
			die("producer: beanstalkd closed the connection");
		if (strncmp(line, "INSERTED", 8) != 0)
			die("producer: put answered %s", line);
	}
	p->t_acked = now_s();
	return NULL;
}

int
main(int argc, char **argv)
{
	static const char put[] = "put 0 0 60 32\r\n" BODY "\r\n";
	struct consumer *cons;
	struct producer *prod;
	struct sbuf stream = { 0 };
	pthread_t reader;
	long nconsumers, i;
	double t0;

	if (argc > 1 && strcmp(argv[1], "-x") == 0) {
		spawn_jobs = 1;
		argv++;
		argc--;
	}
	if (argc != 4)
		die("usage: beanstalk [-x] ADDR NCONSUMERS COUNT");
	addr = argv[1];
	nconsumers = atol(argv[2]);
	count = atol(argv[3]);
	if (nconsumers < 1 || count < 1)
		die("beanstalk: NCONSUMERS and COUNT must be positive");

	for (i = 0; i < count; i++)
		sbuf_add(&stream, put, sizeof put - 1);
	cons = calloc((size_t)nconsumers, sizeof *cons);
	prod = calloc(1, sizeof *prod);
	if (cons == NULL || prod == NULL)
		die("out of memory");
	/* Consumers connect and block in reserve before the clock starts. */
	for (i = 0; i < nconsumers; i++) {
		cons[i].fd = bs_connect();
		if (pthread_create(&cons[i].t, NULL, consumer_main,
		    &cons[i]) != 0)
			die("pthread_create failed");
	}
	prod->fd = bs_connect();
	usleep(100000);
	if (pthread_create(&reader, NULL, producer_reader, prod) != 0)
		die("pthread_create failed");

	t0 = now_s();
	write_all(prod->fd, stream.p, stream.len);
	pthread_mutex_lock(&done_lock);
	while (atomic_load(&deleted) < count)
		pthread_cond_wait(&done_cv, &done_lock);
	pthread_mutex_unlock(&done_lock);
	pthread_join(reader, NULL);

	/* Wake the consumers blocked in their last reserve. */
	for (i = 0; i < nconsumers; i++)
		shutdown(cons[i].fd, SHUT_RDWR);
	for (i = 0; i < nconsumers; i++)
		pthread_join(cons[i].t, NULL);
	printf("jobs=%ld secs=%.6f rate=%.1f put_secs=%.6f\n", count,
	    t_done - t0, (double)count / (t_done - t0), prod->t_acked - t0);
	return 0;
}
