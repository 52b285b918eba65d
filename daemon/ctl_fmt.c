/*
 * ctl_fmt: jobctl's human output, as docs/jobctl.md shows it.  It owns the
 * text helpers (a growing string, shell-quoted command lines, escaped and
 * cut display text), the text table of list and stats, durations and
 * ages, and the lines and records printed for jobs and events.
 *
 * Whatever a record holds, what is printed stays one line per value:
 * control characters are escaped in records and become '?' in tables.
 * Widths count UTF-8 characters as one column each.
 */
#include <sys/ioctl.h>

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl_cmd.h"
#include "ctl_fmt.h"
#include "util.h"

struct ctl_fmt_table {
	const struct ctl_fmt_column *cols;
	size_t		 ncols;
	char		**cells;	/* row after row */
	size_t		 ncells;
};

static void
buf_add(struct ctl_fmt_buf *b, const char *s, size_t n)
{
	if (b->size - b->len < n + 1) {
		b->size = (b->len + n + 1) * 2;
		b->p = xreallocarray(b->p, b->size, 1);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
ctl_fmt_buf_adds(struct ctl_fmt_buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
ctl_fmt_buf_printf(struct ctl_fmt_buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = xvasprintf(&s, fmt, ap);
	va_end(ap);
	buf_add(b, s, n);
	free(s);
}

char *
ctl_fmt_buf_take(struct ctl_fmt_buf *b)
{
	char *p = b->p != NULL ? b->p : xstrdup("");

	memset(b, 0, sizeof *b);
	return p;
}

/* A word as the shell would need it: bare when safe, else in '...'. */
static void
buf_add_quoted(struct ctl_fmt_buf *b, const char *w)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_";

	if (*w != '\0' && w[strspn(w, safe)] == '\0') {
		ctl_fmt_buf_adds(b, w);
		return;
	}
	ctl_fmt_buf_adds(b, "'");
	for (; *w != '\0'; w++) {
		if (*w == '\'')
			ctl_fmt_buf_adds(b, "'\\''");
		else
			buf_add(b, w, 1);
	}
	ctl_fmt_buf_adds(b, "'");
}

const char *
ctl_fmt_str(json_t *obj, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : dflt;
}

int
ctl_fmt_truncated(json_t *job, const char *stream)
{
	char *key;
	int truncated;

	xasprintf(&key, "%s_truncated", stream);
	truncated = json_is_true(json_object_get(job, key));
	free(key);
	return truncated;
}

char *
ctl_fmt_seconds(double s)
{
	char *p;
	size_t n;

	n = xasprintf(&p, "%.3f", s);
	while (n > 0 && p[n - 1] == '0')
		p[--n] = '\0';
	if (n > 0 && p[n - 1] == '.')
		p[--n] = '\0';
	return p;
}

/* A JSON scalar as text, "-" for null or absent (caller frees). */
static char *
value_text(json_t *v)
{
	char *s;

	switch (v == NULL ? JSON_NULL : json_typeof(v)) {
	case JSON_NULL:
		return xstrdup("-");
	case JSON_INTEGER:
		xasprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return s;
	case JSON_REAL:
		return ctl_fmt_seconds(json_real_value(v));
	case JSON_STRING:
		return xstrdup(json_string_value(v));
	case JSON_TRUE:
		return xstrdup("true");
	case JSON_FALSE:
		return xstrdup("false");
	default:
		if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
			return xstrdup("?");
		return s;
	}
}

char *
ctl_fmt_command(json_t *job)
{
	struct ctl_fmt_buf b = { NULL, 0, 0 };
	json_t *argv, *w;
	const char *shell;
	char *s;
	size_t i;

	if (json_is_array(argv = json_object_get(job, "argv"))) {
		json_array_foreach(argv, i, w) {
			if (i > 0)
				ctl_fmt_buf_adds(&b, " ");
			buf_add_quoted(&b, json_is_string(w) ?
			    json_string_value(w) : "?");
		}
	} else if ((shell = ctl_fmt_str(job, "shell", NULL)) != NULL)
		ctl_fmt_buf_adds(&b, shell);
	else if (json_is_number(json_object_get(job, "sleep"))) {
		s = value_text(json_object_get(job, "sleep"));
		ctl_fmt_buf_printf(&b, "sleep %s", s);
		free(s);
	}
	return ctl_fmt_buf_take(&b);
}

/* Write s with control characters escaped, so one value stays one line. */
static void
put_escaped(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\n')
			fputs("\\n", stdout);
		else if (*s == '\t')
			fputs("\\t", stdout);
		else if ((unsigned char)*s < 0x20 || *s == 0x7f)
			printf("\\x%02x", (unsigned char)*s);
		else
			putchar(*s);
	}
}

/* Display width, counting each UTF-8 character as one column. */
static size_t
text_width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* Byte length of the longest prefix of s at most width columns wide. */
static size_t
text_cut(const char *s, size_t width)
{
	size_t i, w = 0;

	for (i = 0; s[i] != '\0'; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80 && w++ == width)
			break;
	}
	return i;
}

size_t
ctl_fmt_term_width(void)
{
	struct winsize ws;
	const char *env;
	long long n;

	if ((env = getenv("COLUMNS")) != NULL &&
	    ctl_cmd_parse_int(env, 1, INT_MAX, &n) == 0)
		return n;
	if (!isatty(STDOUT_FILENO))
		return 0;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

struct ctl_fmt_table *
ctl_fmt_table_new(const struct ctl_fmt_column *cols, size_t ncols)
{
	struct ctl_fmt_table *t;

	t = xcalloc(1, sizeof *t);
	t->cols = cols;
	t->ncols = ncols;
	return t;
}

void
ctl_fmt_table_add(struct ctl_fmt_table *t, const char *fmt, ...)
{
	va_list ap;
	char *s, *p;

	va_start(ap, fmt);
	xvasprintf(&s, fmt, ap);
	va_end(ap);
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	t->cells = xreallocarray(t->cells, t->ncells + 1, sizeof *t->cells);
	t->cells[t->ncells++] = s;
}

void
ctl_fmt_table_add_value(struct ctl_fmt_table *t, json_t *v)
{
	char *s = value_text(v);

	ctl_fmt_table_add(t, "%s", s);
	free(s);
}

static void
table_print_row(const struct ctl_fmt_table *t, const size_t *width,
    char **row, size_t linewidth)
{
	size_t i, used = 0, w, n, pad;
	const char *s;

	for (i = 0; i < t->ncols; i++) {
		s = row[i];
		if (i > 0) {
			fputs("  ", stdout);
			used += 2;
		}
		w = width[i];
		if (i == t->ncols - 1) {
			w = SIZE_MAX;
			if (linewidth > 0)
				w = linewidth > used + 10 ? linewidth - used : 10;
		}
		n = text_cut(s, w);
		pad = 0;
		if ((i < t->ncols - 1 || t->cols[i].right) &&
		    text_width(s) < width[i])
			pad = width[i] - text_width(s);
		if (t->cols[i].right)
			printf("%*s", (int)pad, "");
		fwrite(s, 1, n, stdout);
		if (!t->cols[i].right)
			printf("%*s", (int)pad, "");
		used += width[i];
	}
	putchar('\n');
}

void
ctl_fmt_table_print(struct ctl_fmt_table *t, size_t linewidth)
{
	size_t *width, i, w, r, nrows = t->ncells / t->ncols;
	char **head;

	width = xcalloc(t->ncols, sizeof *width);
	head = xcalloc(t->ncols, sizeof *head);
	for (i = 0; i < t->ncols; i++) {
		head[i] = (char *)t->cols[i].head;
		width[i] = text_width(head[i]);
		for (r = 0; r < nrows; r++) {
			if ((w = text_width(t->cells[r * t->ncols + i])) >
			    width[i])
				width[i] = w;
		}
		if (t->cols[i].max != 0 && width[i] > t->cols[i].max)
			width[i] = t->cols[i].max;
	}
	table_print_row(t, width, head, linewidth);
	for (r = 0; r < nrows; r++)
		table_print_row(t, width, t->cells + r * t->ncols, linewidth);
	free(head);
	free(width);
}

void
ctl_fmt_table_free(struct ctl_fmt_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void
ctl_fmt_duration(double secs, char *buf, size_t len)
{
	long long s = secs > 0 ? (long long)secs : 0;

	if (s < 60)
		snprintf(buf, len, "%llds", s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

double
ctl_fmt_age(const char *s)
{
	struct tm tm;
	time_t t;

	memset(&tm, 0, sizeof tm);
	if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year,
	    &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	return now_real() - (double)t;
}

void
ctl_fmt_put_line(const char *line, size_t len)
{
	fwrite(line, 1, len, stdout);
	putchar('\n');
}

/* " exit N" and " signal N", each when the record has it. */
static void
put_exit(json_t *job)
{
	json_t *v;

	if (json_is_integer(v = json_object_get(job, "exit_code")))
		printf(" exit %" JSON_INTEGER_FORMAT, json_integer_value(v));
	if (json_is_integer(v = json_object_get(job, "signal")))
		printf(" signal %" JSON_INTEGER_FORMAT, json_integer_value(v));
}

void
ctl_fmt_put_job_line(json_t *job)
{
	const char *error;

	printf("%" JSON_INTEGER_FORMAT " %s",
	    json_integer_value(json_object_get(job, "id")),
	    ctl_fmt_str(job, "state", "?"));
	put_exit(job);
	if ((error = ctl_fmt_str(job, "error", NULL)) != NULL) {
		fputs(" error: ", stdout);
		put_escaped(error);
	}
	putchar('\n');
}

void
ctl_fmt_put_event(json_t *ev)
{
	char *id = value_text(json_object_get(ev, "id"));

	printf("%s %s %s", id, ctl_fmt_str(ev, "queue", "-"),
	    ctl_fmt_str(ev, "state", "-"));
	free(id);
	put_exit(ev);
	putchar('\n');
}

void
ctl_fmt_put_record(json_t *job)
{
	static const char *const order[] = {
		"id", "queue", "name", "state", "argv", "shell", "sleep",
		"priority", "attempts", "submitted_at", "started_at",
		"finished_at", "exit_code", "signal", "timeout", "owner",
		"stdout", "stderr", "error", NULL
	};
	const char *key;
	json_t *v;
	char *s;
	size_t i;
	int seen;

	for (i = 0; order[i] != NULL; i++) {
		key = order[i];
		if ((v = json_object_get(job, key)) == NULL || json_is_null(v))
			continue;
		printf("%s: ", key);
		if (strcmp(key, "argv") == 0) {
			s = ctl_fmt_command(job);
			put_escaped(s);
			free(s);
		} else if (strcmp(key, "signal") == 0 && json_is_integer(v))
			printf("%" JSON_INTEGER_FORMAT " (%s)",
			    json_integer_value(v),
			    strsignal((int)json_integer_value(v)));
		else if (strcmp(key, "owner") == 0 && json_is_object(v))
			printf("uid=%" JSON_INTEGER_FORMAT
			    " gid=%" JSON_INTEGER_FORMAT,
			    json_integer_value(json_object_get(v, "uid")),
			    json_integer_value(json_object_get(v, "gid")));
		else if ((strcmp(key, "stdout") == 0 ||
		    strcmp(key, "stderr") == 0) && json_is_string(v))
			printf("%zu bytes%s", json_string_length(v),
			    ctl_fmt_truncated(job, key) ? ", truncated" : "");
		else {
			s = value_text(v);
			put_escaped(s);
			free(s);
		}
		putchar('\n');
	}

	/* Fields this jobctl does not know yet, as they come. */
	json_object_foreach(job, key, v) {
		seen = strcmp(key, "stdout_truncated") == 0 ||
		    strcmp(key, "stderr_truncated") == 0;
		for (i = 0; !seen && order[i] != NULL; i++)
			seen = strcmp(key, order[i]) == 0;
		if (seen || json_is_null(v))
			continue;
		s = value_text(v);
		printf("%s: ", key);
		put_escaped(s);
		putchar('\n');
		free(s);
	}
}
