/*
 * jobd_submit: drives jobd over its socket protocol (docs/spec.md §2) for
 * scripts/bench.sh.  One connection; requests are pipelined.
 *
 *	jobd_submit SOCKET throughput true|sleep COUNT
 *		COUNT submits of {"argv":["/bin/true"]} or {"sleep":0}, written
 *		as fast as the socket takes them (the whole stream is built
 *		before the clock starts) while a reader thread consumes the
 *		answers, then {"op":"join"}.  Clock: first submit written →
 *		join answered.
 *		Prints: jobs= secs= rate= acked_secs= errors=
 *	jobd_submit SOCKET fill true|sleep COUNT
 *		Pauses queue "default", reads jobd's VmRSS, submits COUNT
 *		/bin/true (or sleep 0) jobs, which stay queued, waits for every
 *		answer, reads VmRSS again.  A sleep job carries no argv, so its
 *		figure is the record's cost alone.
 *		Prints: jobs= rss_before= rss_after= bytes_per_job= argv_bytes=
 *	jobd_submit SOCKET latency COUNT
 *		On an idle daemon, COUNT times each, one request at a time:
 *		ping round trip; a {"sleep":0} submit, its answer, then a wait
 *		on its id and that answer (two round trips: an upper bound on
 *		submit → start → finish); submit and join written together (one
 *		round trip).  100 warm-up rounds are not counted.
 *		Prints: ping_p50_us= ping_p99_us= wait_p50_us= wait_p99_us=
 *		        join_p50_us= join_p99_us=
 *	jobd_submit SOCKET acks CONNS DEPTH COUNT
 *		Acknowledged submits (issue 5): pauses queue "default" (the
 *		jobs stay queued: nothing but the submit path is measured),
 *		then CONNS connections, each submitting {"sleep":0} jobs with
 *		DEPTH of them in flight (DEPTH 1: submit, wait for the answer,
 *		submit the next; more: a new submit for each answer), COUNT in
 *		all (COUNT / CONNS each), all driven by one epoll thread.
 *		Clock: first submits written → last answer.  The journal's
 *		sync count (stats op) is read before and after.
 *		Prints: jobs= conns= depth= secs= rate= syncs= per_sync=
 *	jobd_submit SOCKET up
 *		Connects (retrying every millisecond for up to 10 minutes: a
 *		just-started jobd binds before it replays its journal) until a
 *		ping is answered, then reads the stats op.
 *		Prints: secs= queued= recovery_s=
 *
 * Any error answer makes it exit 1 (throughput counts them and goes on).
 */
#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <pthread.h>

#include "benchutil.h"

#define SUBMIT_TRUE	"{\"op\":\"submit\",\"argv\":[\"/bin/true\"]}\n"
#define SUBMIT_SLEEP	"{\"op\":\"submit\",\"sleep\":0}\n"
#define JOIN		"{\"op\":\"join\"}\n"
/* The bytes the argv of SUBMIT_TRUE needs: "/bin/true\0" and 2 pointers. */
#define ARGV_BYTES	(sizeof "/bin/true" + 2 * sizeof(char *))

static const char *sock_path;
static long connect_tries = 1000;	/* `up` waits longer */
static useconds_t connect_pause = 10000;

static int
jobd_connect(void)
{
	struct sockaddr_un sun;
	int fd, tries;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(sock_path) >= sizeof sun.sun_path)
		die("%s: socket path too long", sock_path);
	strcpy(sun.sun_path, sock_path);
	/* A daemon that was just started may not listen yet: retry for 10 s. */
	for (tries = 0;; tries++) {
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			die("socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0)
			return fd;
		if ((errno != ENOENT && errno != ECONNREFUSED) ||
		    tries >= connect_tries)
			die("%s: connect: %s", sock_path, strerror(errno));
		close(fd);
		usleep(connect_pause);
	}
}

static int
is_ok(const char *line)
{
	return strstr(line, "\"ok\":true") != NULL;
}

/* Send one request and return its answer line; exits on an error answer. */
static char *
request(int fd, struct rbuf *rb, const char *req)
{
	size_t len;
	char *line;

	write_all(fd, req, strlen(req));
	if ((line = rbuf_line(rb, &len)) == NULL)
		die("jobd closed the connection");
	if (!is_ok(line))
		die("jobd answered %s to %s", line, req);
	return line;
}

static unsigned long long
answer_id(const char *line)
{
	const char *p = strstr(line, "\"id\":");

	if (p == NULL)
		die("no id in %s", line);
	return strtoull(p + 5, NULL, 10);
}

/* The reader thread of a pipelined run: counts answers, notes times. */
struct reader {
	int	 fd;
	long	 expect;	/* answers before the last one */
	int	 last_is_join;
	long	 errors;
	double	 acked;		/* when the expect-th answer came */
	double	 done;		/* when the last answer came */
	struct rbuf rb;
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	long total = r->expect + (r->last_is_join ? 1 : 0), n;
	size_t len;
	char *line;

	r->rb.fd = r->fd;
	for (n = 0; n < total; n++) {
		if ((line = rbuf_line(&r->rb, &len)) == NULL)
			die("jobd closed the connection after %ld answers", n);
		if (!is_ok(line)) {
			if (r->errors++ == 0)
				fprintf(stderr, "jobd_submit: first error: %s\n",
				    line);
		}
		if (n + 1 == r->expect)
			r->acked = now_s();
	}
	r->done = now_s();
	return NULL;
}

/* Write the stream while a reader thread counts the answers. */
static void
pipelined(int fd, const struct sbuf *stream, struct reader *r, double *t0)
{
	pthread_t t;

	r->fd = fd;
	if (pthread_create(&t, NULL, reader_main, r) != 0)
		die("pthread_create failed");
	*t0 = now_s();
	write_all(fd, stream->p, stream->len);
	pthread_join(t, NULL);
}

static void
run_throughput(const char *kind, long count)
{
	const char *line = strcmp(kind, "sleep") == 0 ? SUBMIT_SLEEP :
	    SUBMIT_TRUE;
	struct sbuf stream = { 0 };
	struct reader *r = calloc(1, sizeof *r);
	double t0;
	long i;

	if (r == NULL)
		die("out of memory");
	if (strcmp(kind, "sleep") != 0 && strcmp(kind, "true") != 0)
		die("throughput: kind is true or sleep");
	for (i = 0; i < count; i++)
		sbuf_add(&stream, line, strlen(line));
	sbuf_add(&stream, JOIN, strlen(JOIN));
	r->expect = count;
	r->last_is_join = 1;
	pipelined(jobd_connect(), &stream, r, &t0);
	printf("jobs=%ld secs=%.6f rate=%.1f acked_secs=%.6f errors=%ld\n",
	    count, r->done - t0, (double)count / (r->done - t0),
	    r->acked - t0, r->errors);
	if (r->errors > 0)
		exit(1);
}

/* jobd's resident set in bytes, from /proc/PID/status. */
static long
vmrss(long pid)
{
	char path[64], buf[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		die("%s: %s", path, strerror(errno));
	while (fgets(buf, sizeof buf, f) != NULL)
		if (sscanf(buf, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	if (kb < 0)
		die("%s: no VmRSS", path);
	return kb * 1024;
}

static void
run_fill(const char *kind, long count)
{
	const char *submit = strcmp(kind, "sleep") == 0 ? SUBMIT_SLEEP :
	    SUBMIT_TRUE;
	struct sbuf stream = { 0 };
	struct reader *r = calloc(1, sizeof *r);
	struct rbuf *rb = calloc(1, sizeof *rb);
	long pid, before, after, i;
	double t0;
	char *line;
	int fd;

	if (r == NULL || rb == NULL)
		die("out of memory");
	if (strcmp(kind, "sleep") != 0 && strcmp(kind, "true") != 0)
		die("fill: kind is true or sleep");
	fd = jobd_connect();
	rb->fd = fd;
	line = request(fd, rb, "{\"op\":\"ping\"}\n");
	if ((line = strstr(line, "\"pid\":")) == NULL)
		die("no pid in the ping answer");
	pid = atol(line + 6);
	request(fd, rb, "{\"op\":\"pause\",\"queue\":\"default\"}\n");
	if (rb->start != rb->end)
		die("unexpected bytes after the pause answer");
	for (i = 0; i < count; i++)
		sbuf_add(&stream, submit, strlen(submit));
	usleep(200000);		/* let jobd settle before the first reading */
	before = vmrss(pid);
	r->expect = count;
	pipelined(fd, &stream, r, &t0);
	after = vmrss(pid);
	printf("jobs=%ld rss_before=%ld rss_after=%ld bytes_per_job=%.1f "
	    "argv_bytes=%zu secs=%.6f errors=%ld\n", count, before, after,
	    (double)(after - before) / (double)count,
	    strcmp(kind, "true") == 0 ? ARGV_BYTES : 0,
	    r->done - t0, r->errors);
	if (r->errors > 0)
		exit(1);
}

static void
run_latency(long count)
{
	double *ping = xmalloc((size_t)count * sizeof *ping);
	double *wait = xmalloc((size_t)count * sizeof *wait);
	double *join = xmalloc((size_t)count * sizeof *join);
	struct rbuf *rb = calloc(1, sizeof *rb);
	char req[128], *line;
	long i, warm = 100;
	size_t len;
	double t0;
	int fd;

	if (rb == NULL)
		die("out of memory");
	fd = jobd_connect();
	rb->fd = fd;
	for (i = -warm; i < count; i++) {
		t0 = now_s();
		request(fd, rb, "{\"op\":\"ping\"}\n");
		if (i >= 0)
			ping[i] = now_s() - t0;

		t0 = now_s();
		line = request(fd, rb, SUBMIT_SLEEP);
		snprintf(req, sizeof req, "{\"op\":\"wait\",\"id\":%llu}\n",
		    answer_id(line));
		request(fd, rb, req);
		if (i >= 0)
			wait[i] = now_s() - t0;

		t0 = now_s();
		write_all(fd, SUBMIT_SLEEP JOIN, strlen(SUBMIT_SLEEP JOIN));
		if ((line = rbuf_line(rb, &len)) == NULL || !is_ok(line))
			die("submit failed");
		if ((line = rbuf_line(rb, &len)) == NULL || !is_ok(line))
			die("join failed");
		if (i >= 0)
			join[i] = now_s() - t0;
	}
	printf("rounds=%ld ping_p50_us=%.1f ping_p99_us=%.1f "
	    "wait_p50_us=%.1f wait_p99_us=%.1f "
	    "join_p50_us=%.1f join_p99_us=%.1f\n", count,
	    percentile(ping, (size_t)count, 50) * 1e6,
	    percentile(ping, (size_t)count, 99) * 1e6,
	    percentile(wait, (size_t)count, 50) * 1e6,
	    percentile(wait, (size_t)count, 99) * 1e6,
	    percentile(join, (size_t)count, 50) * 1e6,
	    percentile(join, (size_t)count, 99) * 1e6);
}

/* The number after "KEY": in line (the first one after after, if given). */
static double
json_num(const char *line, const char *after, const char *key)
{
	char pat[64];
	const char *p = line;

	if (after != NULL && (p = strstr(line, after)) == NULL)
		die("no %s in %s", after, line);
	snprintf(pat, sizeof pat, "\"%s\":", key);
	if ((p = strstr(p, pat)) == NULL)
		die("no %s in the stats answer", key);
	return strtod(p + strlen(pat), NULL);
}

/* One client connection of run_acks. */
struct acker {
	int		 fd;
	long		 count;		/* submits it makes */
	long		 sent;
	long		 got;
	struct rbuf	 rb;
};

/* Answers that arrived on a's socket; 0 once a has all of its answers. */
static int
acker_read(struct acker *a)
{
	char *nl, *line;

	if (!rbuf_fill(&a->rb))
		die("jobd closed the connection");
	while ((nl = memchr(a->rb.buf + a->rb.start, '\n',
	    a->rb.end - a->rb.start)) != NULL) {
		line = a->rb.buf + a->rb.start;
		*nl = '\0';
		if (!is_ok(line))
			die("jobd answered %s to a submit", line);
		a->rb.start = (size_t)(nl - a->rb.buf) + 1;
		a->got++;
		if (a->sent < a->count) {
			write_all(a->fd, SUBMIT_SLEEP, strlen(SUBMIT_SLEEP));
			a->sent++;
		}
	}
	return a->got < a->count;
}

/*
 * CONNS clients, each a connection of its own with DEPTH submits in
 * flight, driven by one epoll thread (a thread per connection would spend
 * the 2 CPUs on switching between 64 client threads, not on jobd).
 */
static void
run_acks(long conns, long depth, long count)
{
	struct acker *a = calloc((size_t)conns, sizeof *a);
	struct rbuf *rb = calloc(1, sizeof *rb);
	struct epoll_event ev, evs[64];
	double t0, t1, syncs0, syncs1;
	long i, per = count / conns, total = 0, left = conns;
	int fd, ep, n, k;

	if (a == NULL || rb == NULL)
		die("out of memory");
	if (per < 1 || depth < 1)
		die("acks: COUNT must be at least CONNS, DEPTH at least 1");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));
	fd = jobd_connect();
	rb->fd = fd;
	request(fd, rb, "{\"op\":\"pause\",\"queue\":\"default\"}\n");
	syncs0 = json_num(request(fd, rb, "{\"op\":\"stats\"}\n"),
	    "\"journal\"", "syncs");
	/* Every connection is open before the clock starts. */
	for (i = 0; i < conns; i++) {
		a[i].fd = a[i].rb.fd = jobd_connect();
		a[i].count = per + (i < count % conns ? 1 : 0);
		total += a[i].count;
		ev.events = EPOLLIN;
		ev.data.ptr = &a[i];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, a[i].fd, &ev) == -1)
			die("epoll_ctl: %s", strerror(errno));
	}
	request(fd, rb, "{\"op\":\"ping\"}\n");
	t0 = now_s();
	for (i = 0; i < conns; i++)
		for (; a[i].sent < depth && a[i].sent < a[i].count; a[i].sent++)
			write_all(a[i].fd, SUBMIT_SLEEP, strlen(SUBMIT_SLEEP));
	while (left > 0) {
		if ((n = epoll_wait(ep, evs, 64, -1)) == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (k = 0; k < n; k++) {
			struct acker *c = evs[k].data.ptr;

			if (!acker_read(c)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				left--;
			}
		}
	}
	t1 = now_s();
	syncs1 = json_num(request(fd, rb, "{\"op\":\"stats\"}\n"),
	    "\"journal\"", "syncs");
	printf("jobs=%ld conns=%ld depth=%ld secs=%.6f rate=%.1f syncs=%.0f "
	    "per_sync=%.1f\n", total, conns, depth, t1 - t0,
	    (double)total / (t1 - t0), syncs1 - syncs0,
	    syncs1 > syncs0 ? (double)total / (syncs1 - syncs0) : 0.0);
}

static void
run_up(void)
{
	struct rbuf *rb = calloc(1, sizeof *rb);
	double t0 = now_s(), t1;
	char *line;
	int fd;

	if (rb == NULL)
		die("out of memory");
	connect_tries = 600000;
	connect_pause = 1000;
	fd = jobd_connect();
	rb->fd = fd;
	request(fd, rb, "{\"op\":\"ping\"}\n");
	t1 = now_s();
	line = request(fd, rb, "{\"op\":\"stats\"}\n");
	printf("secs=%.6f queued=%.0f recovery_s=%.6f\n", t1 - t0,
	    json_num(line, "\"totals\"", "queued"),
	    json_num(line, "\"journal\"", "recovery_s"));
}

int
main(int argc, char **argv)
{
	long count;

	if (argc < 3)
		die("usage: jobd_submit SOCKET throughput true|sleep COUNT\n"
		    "       jobd_submit SOCKET fill true|sleep COUNT\n"
		    "       jobd_submit SOCKET latency COUNT\n"
		    "       jobd_submit SOCKET acks CONNS DEPTH COUNT\n"
		    "       jobd_submit SOCKET up");
	sock_path = argv[1];
	if (strcmp(argv[2], "up") == 0 && argc == 3) {
		run_up();
		return 0;
	}
	if (argc < 4)
		die("jobd_submit: wrong arguments");
	count = atol(argv[argc - 1]);
	if (count < 1)
		die("jobd_submit: COUNT must be positive");
	if (strcmp(argv[2], "throughput") == 0 && argc == 5)
		run_throughput(argv[3], count);
	else if (strcmp(argv[2], "fill") == 0 && argc == 5)
		run_fill(argv[3], count);
	else if (strcmp(argv[2], "latency") == 0 && argc == 4)
		run_latency(count);
	else if (strcmp(argv[2], "acks") == 0 && argc == 6)
		run_acks(atol(argv[3]), atol(argv[4]), count);
	else
		die("jobd_submit: unknown mode or wrong arguments");
	return 0;
}
