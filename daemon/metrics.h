/*
 * metrics: what jobd reports about itself — the status body of SPEC §3
 * (also the socket's `stats`), and the Prometheus text exposition — built
 * from the scheduler's per-queue figures.  Also the histogram type the
 * scheduler fills.
 */
#ifndef JOBD_METRICS_H
#define JOBD_METRICS_H

#include <stdint.h>

#include <event2/buffer.h>
#include <jansson.h>

#define HISTOGRAM_BUCKETS 16

/* Upper bounds (seconds) of the finite buckets, shared by all histograms. */
extern const double histogram_bounds[HISTOGRAM_BUCKETS];

struct histogram {
	uint64_t	 bucket[HISTOGRAM_BUCKETS + 1];	/* last: +Inf */
	uint64_t	 count;
	double		 sum;
};

void	 histogram_observe(struct histogram *, double seconds);

struct sched;

/* The /status body (connections: socket protocol clients). */
json_t	*metrics_status(struct sched *, int connections);
/* Append the Prometheus text exposition to buf. */
void	 metrics_prometheus(struct sched *, int connections, struct evbuffer *);

#endif
