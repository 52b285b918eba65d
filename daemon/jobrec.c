/*
 * jobrec: the journal's job records, encoded compactly (varints, length-
 * prefixed strings, little-endian doubles) so that a million queued jobs
 * replay in well under the 3 s the recovery target allows; JSON would
 * cost several times more to decode.  Decoding trusts nothing: every
 * length is checked against what is left, C strings may not hold NUL.
 */
#include <stdlib.h>
#include <string.h>

#include "jobrec.h"
#include "util.h"

/* Flags of a SUBMIT or JOB payload. */
#define F_EXTRA		0x01	/* env, cwd, stdin, name follow */
#define F_RESULT	0x02	/* JOB: a result follows */

/* Flags of a result. */
#define R_OUT_TRUNC	0x01
#define R_ERR_TRUNC	0x02
#define R_ERROR		0x04

static void
put(struct jobrec_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = b->cap * 2 > b->len + n ? b->cap * 2 : b->len + n + 64;
		b->data = xreallocarray(b->data, b->cap, 1);
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
put_u8(struct jobrec_buf *b, unsigned v)
{
	unsigned char c = (unsigned char)v;

	put(b, &c, 1);
}

static void
put_varint(struct jobrec_buf *b, uint64_t v)
{
	unsigned char tmp[10];
	size_t n = 0;

	do {
		tmp[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			tmp[n] |= 0x80;
		n++;
	} while (v != 0);
	put(b, tmp, n);
}

/* Signed values: zigzag, so small negatives stay short. */
static void
put_svarint(struct jobrec_buf *b, int64_t v)
{
	put_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void
put_f64(struct jobrec_buf *b, double d)
{
	unsigned char tmp[8];
	uint64_t v;
	int i;

	memcpy(&v, &d, sizeof v);
	for (i = 0; i < 8; i++)
		tmp[i] = (unsigned char)(v >> (8 * i));
	put(b, tmp, 8);
}

static void
put_bytes(struct jobrec_buf *b, const char *s, size_t n)
{
	put_varint(b, n);
	put(b, s, n);
}

static void
put_str(struct jobrec_buf *b, const char *s)
{
	put_bytes(b, s, strlen(s));
}

/* A string that may be absent: presence byte, then the string. */
static void
put_ostr(struct jobrec_buf *b, const char *s)
{
	put_u8(b, s != NULL);
	if (s != NULL)
		put_str(b, s);
}

static void
put_strv(struct jobrec_buf *b, char *const *v)
{
	size_t i, n = strv_len(v);

	put_u8(b, v != NULL);
	if (v == NULL)
		return;
	put_varint(b, n);
	for (i = 0; i < n; i++)
		put_str(b, v[i]);
}

void
jobrec_buf_free(struct jobrec_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

static void
put_submit_fields(struct jobrec_buf *b, const struct job *j, unsigned flags)
{
	const struct job_extra *x = j->extra;

	if (x != NULL)
		flags |= F_EXTRA;
	put_varint(b, j->id);
	put_str(b, job_queue_name(j));
	put_u8(b, flags);
	put_u8(b, j->kind);
	switch (j->kind) {
	case JOB_ARGV:
		put_strv(b, j->cmd.argv);
		break;
	case JOB_SHELL:
		put_str(b, j->cmd.shell);
		break;
	case JOB_SLEEP:
		put_f64(b, j->cmd.sleep);
		break;
	}
	put_svarint(b, j->priority);
	put_f64(b, j->timeout);
	put_varint(b, j->uid);
	put_varint(b, j->gid);
	put_f64(b, j->submitted_at);
	if (x == NULL)
		return;
	put_strv(b, x->env);
	put_ostr(b, x->cwd);
	put_u8(b, x->stdin_data != NULL);
	if (x->stdin_data != NULL)
		put_bytes(b, x->stdin_data, x->stdin_len);
	put_ostr(b, x->name);
}

static void
put_result(struct jobrec_buf *b, const struct job *j)
{
	const struct job_result *r = j->result;
	unsigned flags = 0;

	/* The result's state: a final record is written before it applies. */
	put_u8(b, r->state);
	put_varint(b, j->attempts);
	put_f64(b, j->started_at);
	put_f64(b, r->finished_at);
	put_svarint(b, r->exit_code);
	put_varint(b, (uint64_t)r->signal);
	if (r->out_truncated)
		flags |= R_OUT_TRUNC;
	if (r->err_truncated)
		flags |= R_ERR_TRUNC;
	if (r->error != NULL)
		flags |= R_ERROR;
	put_u8(b, flags);
	put_bytes(b, r->out != NULL ? r->out : "", r->out != NULL ?
	    r->out_len : 0);
	put_bytes(b, r->err != NULL ? r->err : "", r->err != NULL ?
	    r->err_len : 0);
	if (r->error != NULL)
		put_str(b, r->error);
}

void
jobrec_submit(struct jobrec_buf *b, const struct job *j)
{
	b->len = 0;
	put_submit_fields(b, j, 0);
}

void
jobrec_start(struct jobrec_buf *b, const struct job *j)
{
	b->len = 0;
	put_varint(b, j->id);
	put_varint(b, j->attempts);
	put_f64(b, j->started_at);
}

void
jobrec_finish(struct jobrec_buf *b, const struct job *j)
{
	b->len = 0;
	put_varint(b, j->id);
	put_result(b, j);
}

void
jobrec_pause(struct jobrec_buf *b, const char *queue, int paused)
{
	b->len = 0;
	put_str(b, queue);
	put_u8(b, paused != 0);
}

void
jobrec_job(struct jobrec_buf *b, const struct job *j)
{
	b->len = 0;
	put_submit_fields(b, j, j->result != NULL ? F_RESULT : 0);
	if (j->result != NULL) {
		put_result(b, j);
	} else {
		put_u8(b, j->state);
		put_varint(b, j->attempts);
		put_f64(b, j->started_at);
	}
}

void
jobrec_ids(struct jobrec_buf *b, uint64_t last_id)
{
	b->len = 0;
	put_varint(b, last_id);
}

/* The decoding side: a cursor over the payload. */
struct rd {
	const unsigned char *p;
	size_t		 left;
	const char	*bad;		/* first problem, for the cause */
};

static int
get(struct rd *r, void *out, size_t n)
{
	if (r->bad != NULL || n > r->left) {
		if (r->bad == NULL)
			r->bad = "truncated";
		return -1;
	}
	memcpy(out, r->p, n);
	r->p += n;
	r->left -= n;
	return 0;
}

static unsigned
get_u8(struct rd *r)
{
	unsigned char c = 0;

	get(r, &c, 1);
	return c;
}

static uint64_t
get_varint(struct rd *r)
{
	uint64_t v = 0;
	unsigned shift = 0, c;

	do {
		c = get_u8(r);
		if (r->bad != NULL)
			return 0;
		if (shift > 63 || (shift == 63 && (c & 0x7e) != 0)) {
			r->bad = "varint overflow";
			return 0;
		}
		v |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
	} while (c & 0x80);
	return v;
}

static int64_t
get_svarint(struct rd *r)
{
	uint64_t v = get_varint(r);

	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static double
get_f64(struct rd *r)
{
	unsigned char tmp[8] = { 0 };
	uint64_t v = 0;
	double d;
	int i;

	get(r, tmp, 8);
	for (i = 0; i < 8; i++)
		v |= (uint64_t)tmp[i] << (8 * i);
	memcpy(&d, &v, sizeof d);
	return d;
}

/* Bytes that may hold NUL (stdin, output tails); NUL-terminated copy. */
static char *
get_bytes(struct rd *r, size_t *lenp)
{
	uint64_t n = get_varint(r);
	char *s;

	if (r->bad != NULL || n > r->left) {
		if (r->bad == NULL)
			r->bad = "string longer than the record";
		return NULL;
	}
	s = xmemdup(r->p, (size_t)n);
	r->p += n;
	r->left -= (size_t)n;
	*lenp = (size_t)n;
	return s;
}

static char *
get_str(struct rd *r)
{
	size_t n;
	char *s = get_bytes(r, &n);

	if (s != NULL && memchr(s, '\0', n) != NULL) {
		r->bad = "NUL byte in a string";
		free(s);
		return NULL;
	}
	return s;
}

static char *
get_ostr(struct rd *r)
{
	return get_u8(r) ? get_str(r) : NULL;
}

static char **
get_strv(struct rd *r)
{
	uint64_t n, i;
	char **v;

	if (!get_u8(r))
		return NULL;
	n = get_varint(r);
	if (r->bad != NULL || n > r->left) {	/* each string takes a byte */
		if (r->bad == NULL)
			r->bad = "array longer than the record";
		return NULL;
	}
	v = xcalloc((size_t)n + 1, sizeof *v);
	for (i = 0; i < n && r->bad == NULL; i++)
		v[i] = get_str(r);
	if (r->bad != NULL) {
		strv_free(v);
		return NULL;
	}
	return v;
}

static struct job *
get_submit_fields(struct rd *r, char **queue, unsigned *flagsp)
{
	struct job *j = xcalloc(1, sizeof *j);
	struct job_extra *x;
	unsigned flags;

	j->u.slot = (size_t)-1;
	LIST_INIT(&j->waiters);
	j->id = get_varint(r);
	*queue = get_str(r);
	*flagsp = flags = get_u8(r);
	j->kind = (uint8_t)get_u8(r);
	switch (j->kind) {
	case JOB_ARGV:
		if ((j->cmd.argv = get_strv(r)) == NULL && r->bad == NULL)
			r->bad = "argv missing";
		break;
	case JOB_SHELL:
		j->cmd.shell = get_str(r);
		break;
	case JOB_SLEEP:
		j->cmd.sleep = get_f64(r);
		break;
	default:
		j->kind = JOB_SLEEP;	/* nothing to free */
		if (r->bad == NULL)
			r->bad = "unknown job kind";
		break;
	}
	j->priority = (int32_t)get_svarint(r);
	j->timeout = get_f64(r);
	j->uid = (uid_t)get_varint(r);
	j->gid = (gid_t)get_varint(r);
	j->submitted_at = get_f64(r);
	j->state = JOB_QUEUED;
	if ((flags & F_EXTRA) && r->bad == NULL) {
		j->extra = x = xcalloc(1, sizeof *x);
		x->env = get_strv(r);
		x->cwd = get_ostr(r);
		if (get_u8(r))
			x->stdin_data = get_bytes(r, &x->stdin_len);
		x->name = get_ostr(r);
	}
	return j;
}

static void
get_state(struct rd *r, struct job *j)
{
	unsigned st = get_u8(r);

	if (st >= JOB__STATES) {
		if (r->bad == NULL)
			r->bad = "unknown job state";
		return;
	}
	j->state = (uint8_t)st;
	j->attempts = (uint32_t)get_varint(r);
	j->started_at = get_f64(r);
}

static void
get_result(struct rd *r, struct job *j)
{
	struct job_result *res = job_result(j);
	unsigned flags;

	get_state(r, j);
	res->finished_at = get_f64(r);
	res->exit_code = (int)get_svarint(r);
	res->signal = (int)get_varint(r);
	flags = get_u8(r);
	res->out_truncated = (flags & R_OUT_TRUNC) != 0;
	res->err_truncated = (flags & R_ERR_TRUNC) != 0;
	res->out = get_bytes(r, &res->out_len);
	res->err = get_bytes(r, &res->err_len);
	if (flags & R_ERROR)
		res->error = get_str(r);
	if (r->bad == NULL && !protocol_state_final(j->state))
		r->bad = "result of a job that is not final";
}

int
jobrec_decode(uint8_t type, const void *data, size_t len, struct jobrec *rec,
    char **cause)
{
	struct rd r = { data, len, NULL };
	unsigned flags = 0;

	memset(rec, 0, sizeof *rec);
	rec->type = (enum jobrec_type)type;
	switch (type) {
	case JOBREC_SUBMIT:
		rec->job = get_submit_fields(&r, &rec->queue_name, &flags);
		break;
	case JOBREC_JOB:
		rec->job = get_submit_fields(&r, &rec->queue_name, &flags);
		if (flags & F_RESULT)
			get_result(&r, rec->job);
		else
			get_state(&r, rec->job);
		break;
	case JOBREC_START:
		rec->job = xcalloc(1, sizeof *rec->job);
		rec->job->kind = JOB_SLEEP;
		rec->job->id = get_varint(&r);
		rec->job->attempts = (uint32_t)get_varint(&r);
		rec->job->started_at = get_f64(&r);
		break;
	case JOBREC_FINISH:
		rec->job = xcalloc(1, sizeof *rec->job);
		rec->job->kind = JOB_SLEEP;
		rec->job->id = get_varint(&r);
		get_result(&r, rec->job);
		break;
	case JOBREC_PAUSE:
		rec->queue_name = get_str(&r);
		rec->paused = get_u8(&r) != 0;
		break;
	case JOBREC_IDS:
		rec->last_id = get_varint(&r);
		break;
	default:
		r.bad = "unknown record type";
		break;
	}
	if (r.bad == NULL && r.left != 0)
		r.bad = "trailing bytes";
	if (r.bad == NULL && rec->job != NULL && rec->job->id == 0)
		r.bad = "job id 0";
	if (r.bad == NULL && (type == JOBREC_SUBMIT || type == JOBREC_JOB ||
	    type == JOBREC_PAUSE) && rec->queue_name == NULL)
		r.bad = "queue name missing";
	if (r.bad != NULL) {
		xasprintf(cause, "record type %u: %s", type, r.bad);
		jobrec_clear(rec);
		return -1;
	}
	return 0;
}

void
jobrec_clear(struct jobrec *rec)
{
	free(rec->queue_name);
	job_free(rec->job);
	memset(rec, 0, sizeof *rec);
}
