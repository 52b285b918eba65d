/*
 * ctl_fmt: jobctl's human output (docs/jobctl.md) -- a growing string,
 * display text for JSON values and job commands, text tables, durations
 * and ages, and the lines and records that wait, watch and get print.
 * Writes to stdout only; knows no connection.
 */
#ifndef JOBD_CTL_FMT_H
#define JOBD_CTL_FMT_H

#include <stddef.h>

#include <jansson.h>

/* A growing NUL-terminated string; { NULL, 0, 0 } is an empty one. */
struct ctl_fmt_buf {
	char	*p;		/* NULL until something is added */
	size_t	 len;
	size_t	 size;
};

/* Append a string, or printf-formatted text. */
void	 ctl_fmt_buf_adds(struct ctl_fmt_buf *, const char *);
void	 ctl_fmt_buf_printf(struct ctl_fmt_buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* The string built so far, never NULL; the caller frees it.  The buffer
 * is empty again. */
char	*ctl_fmt_buf_take(struct ctl_fmt_buf *);

/* A string member of an object (borrowed), dflt when absent or not one. */
const char *ctl_fmt_str(json_t *, const char *, const char *);
/* Whether a job record says its "stdout" or "stderr" tail was cut. */
int	 ctl_fmt_truncated(json_t *, const char *);

/* Seconds without trailing zeros: 30, 0.5, 1.25 (caller frees). */
char	*ctl_fmt_seconds(double);
/* A job's command: quoted argv words, the shell string, or "sleep N". */
char	*ctl_fmt_command(json_t *);
/* Columns the output may use: $COLUMNS, else the terminal's; 0 = any. */
size_t	 ctl_fmt_term_width(void);
/* "45s", "12m05s", "3h02m", "5d03h" into buf. */
void	 ctl_fmt_duration(double, char *, size_t);
/* Seconds since an RFC 3339 UTC time; -1 when it cannot be read. */
double	 ctl_fmt_age(const char *);

/*
 * A text table: columns sized to their widest cell (up to a cap), two
 * spaces apart.  The last column is padded only when right-aligned, and
 * is cut to the line width given (keeping at least 10 columns of it).
 */
struct ctl_fmt_column {
	const char	*head;
	int		 right;		/* right-aligned (numbers) */
	size_t		 max;		/* widest it may get; 0: no cap */
};
struct ctl_fmt_table;

/* A table with these columns (borrowed: they must outlive it). */
struct ctl_fmt_table *ctl_fmt_table_new(const struct ctl_fmt_column *,
	    size_t);
/* Append a cell (rows fill left to right); control bytes become '?'. */
void	 ctl_fmt_table_add(struct ctl_fmt_table *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Append a cell from a JSON value (borrowed); "-" for null or absent. */
void	 ctl_fmt_table_add_value(struct ctl_fmt_table *, json_t *);
/* Print heads and rows; linewidth 0: no limit. */
void	 ctl_fmt_table_print(struct ctl_fmt_table *, size_t);
void	 ctl_fmt_table_free(struct ctl_fmt_table *);

/* Write a response line unchanged (--json). */
void	 ctl_fmt_put_line(const char *, size_t);
/* wait's line per job: "ID STATE[ exit N][ signal N][ error: ...]". */
void	 ctl_fmt_put_job_line(json_t *);
/* watch's line per event: "ID QUEUE STATE[ exit N][ signal N]". */
void	 ctl_fmt_put_event(json_t *);
/* get's "key: value" lines, in record order; null fields left out. */
void	 ctl_fmt_put_record(json_t *);

#endif
