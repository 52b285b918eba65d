/*
 * statuspoll: the status-endpoint load of issue 4 for scripts/bench.sh.
 * CLIENTS threads, each on its own keep-alive HTTP/1.1 connection to
 * HOST:PORT (loopback), send GET /status, read the whole answer and send
 * the next at once, without pause, until SIGTERM or SIGINT, or SECONDS
 * have passed (a bound, so that it can never outlive the script).
 *
 *	statuspoll HOST PORT CLIENTS SECONDS
 *		Prints "ready" once every client has had one answer, and at
 *		the end: answers= secs= rate= errors= cpu_s= (its own CPU
 *		time, the share of the machine it took from jobd)
 */
#define _GNU_SOURCE
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "benchutil.h"

static const char REQ[] = "GET /status HTTP/1.1\r\nHost: bench\r\n\r\n";
static struct sockaddr_in addr;
static atomic_long answers, errors, ready;

static int
http_connect(void)
{
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == -1)
		die("connect: %s", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/* Read one answer: 1 = 200 with its body read, 0 = the peer closed. */
static int
one_answer(struct rbuf *rb, int *status)
{
	long clen = -1;
	size_t len;
	char *line;

	if ((line = rbuf_line(rb, &len)) == NULL)
		return 0;
	*status = len > 12 ? atoi(line + 9) : 0;
	while ((line = rbuf_line(rb, &len)) != NULL) {
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len == 0)
			break;
		if (strncasecmp(line, "Content-Length:", 15) == 0)
			clen = atol(line + 15);
	}
	if (line == NULL)
		return 0;
	if (clen < 0)
		die("an answer without Content-Length");
	return rbuf_skip(rb, (size_t)clen);
}

static void *
client_main(void *arg)
{
	struct rbuf *rb = calloc(1, sizeof *rb);
	int first = 1, status;

	(void)arg;
	if (rb == NULL)
		die("out of memory");
	rb->fd = http_connect();
	for (;;) {
		write_all(rb->fd, REQ, sizeof REQ - 1);
		if (!one_answer(rb, &status)) {
			/* Closed by the server: reconnect. */
			close(rb->fd);
			rb->fd = http_connect();
			rb->start = rb->end = 0;
			atomic_fetch_add(&errors, 1);
			continue;
		}
		if (status != 200)
			atomic_fetch_add(&errors, 1);
		else
			atomic_fetch_add(&answers, 1);
		if (first) {
			first = 0;
			atomic_fetch_add(&ready, 1);
		}
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	struct timespec ts = { 0, 0 };
	struct rusage ru;
	long clients, i, secs, a0;
	sigset_t set;
	pthread_t t;
	double t0, t1;

	if (argc != 5 || (clients = atol(argv[3])) < 1 ||
	    (secs = atol(argv[4])) < 1)
		die("usage: statuspoll HOST PORT CLIENTS SECONDS");
	addr.sin_family = AF_INET;
	addr.sin_port = htons((unsigned short)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1)
		die("%s: not an IPv4 address", argv[1]);
	if (ntohl(addr.sin_addr.s_addr) >> 24 != 127)
		die("%s: loopback only", argv[1]);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < clients; i++)
		if (pthread_create(&t, NULL, client_main, NULL) != 0)
			die("pthread_create failed");
	t0 = now_s();
	while (atomic_load(&ready) < clients) {
		if (now_s() - t0 > 10)
			die("statuspoll: no answer after 10 s");
		usleep(1000);
	}
	printf("ready\n");
	fflush(stdout);
	a0 = atomic_load(&answers);
	t0 = now_s();
	ts.tv_sec = secs;
	sigtimedwait(&set, NULL, &ts);
	t1 = now_s();
	getrusage(RUSAGE_SELF, &ru);
	printf("answers=%ld secs=%.3f rate=%.1f errors=%ld cpu_s=%.3f\n",
	    atomic_load(&answers) - a0, t1 - t0,
	    (double)(atomic_load(&answers) - a0) / (t1 - t0),
	    atomic_load(&errors), (double)ru.ru_utime.tv_sec +
	    (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	    (double)ru.ru_stime.tv_usec / 1e6);
	fflush(stdout);
	_exit(0);
}
