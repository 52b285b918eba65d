/*
 * fsyncloop: the one-sync-per-record baseline of issue 5 for
 * scripts/bench.sh.  One thread appends COUNT records of 100 bytes to a
 * new file in DIR (give it jobd's state_dir: the same disk and file
 * system), each with one write(2) and one fdatasync(2), as a journal that
 * acknowledges every record on its own would.  The file is allocated
 * beforehand with fallocate(FALLOC_FL_KEEP_SIZE), as jobd's journal
 * segments are, so each fdatasync also carries the new file size, as
 * jobd's do.  10% of COUNT (at most 100) records first, not timed.  The
 * file is removed at the end.
 *
 *	fsyncloop DIR COUNT
 *		Prints: records= secs= rate= sync_us=
 */
#define _GNU_SOURCE
#include <fcntl.h>

#include "benchutil.h"

#define RECORD	100

int
main(int argc, char **argv)
{
	char path[4096], rec[RECORD];
	long count, warm, i;
	double t0, t1;
	int fd;

	if (argc != 3 || (count = atol(argv[2])) < 1)
		die("usage: fsyncloop DIR COUNT");
	warm = count / 10 < 100 ? count / 10 : 100;
	snprintf(path, sizeof path, "%s/fsyncloop.%ld", argv[1], (long)getpid());
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1)
		die("%s: %s", path, strerror(errno));
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0,
	    (off_t)(count + warm) * RECORD) == -1 && errno != EOPNOTSUPP)
		die("%s: fallocate: %s", path, strerror(errno));
	memset(rec, 'x', sizeof rec);
	rec[RECORD - 1] = '\n';
	t0 = now_s();
	for (i = -warm; i < count; i++) {
		if (i == 0)
			t0 = now_s();
		write_all(fd, rec, sizeof rec);
		if (fdatasync(fd) == -1)
			die("%s: fdatasync: %s", path, strerror(errno));
	}
	t1 = now_s();
	close(fd);
	unlink(path);
	printf("records=%ld secs=%.6f rate=%.1f sync_us=%.1f\n", count,
	    t1 - t0, (double)count / (t1 - t0), (t1 - t0) / (double)count * 1e6);
	return 0;
}
