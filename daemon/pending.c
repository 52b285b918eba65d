/*
 * pending: the jobs of one named queue that are accepted but not started,
 * kept in an array-backed binary min-heap ordered by the queue's policy.
 *
 * The loop thread owns every pending structure; nothing here is shared
 * with the workers, so there is no lock.
 *
 * An entry is 32 bytes (item, priority, seq, slot pointer) so a queue of a
 * million jobs costs about 32 MB plus the slack of geometric growth; the
 * job record itself stays with the caller.  Every time an entry moves the
 * heap writes its new index through the slot pointer, which is what lets
 * a cancel remove a queued job in O(log n) without searching.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "pending.h"
#include "util.h"

/* Slot value of an entry that is no longer in any heap. */
#define PENDING_NOSLOT		((size_t)-1)
/* Never shrink below this many entries: small queues are the common case. */
#define PENDING_MINCAP		16

struct pending_entry {
	void		*item;
	int64_t		 priority;
	uint64_t	 seq;
	size_t		*slot;		/* caller-owned; NULL if it never removes */
};
_Static_assert(sizeof(struct pending_entry) <= 32,
    "pending entries must stay compact: a queue may hold a million");

struct pending {
	struct pending_entry	*e;
	size_t			 len;
	size_t			 cap;
	enum policy		 policy;
};

static int	pending_before(enum policy, const struct pending_entry *,
		    const struct pending_entry *);
static void	pending_place(struct pending *, size_t,
		    const struct pending_entry *);
static void	pending_up(struct pending *, size_t);
static void	pending_down(struct pending *, size_t);
static void	pending_resize(struct pending *, size_t);

/* Whether a must leave the heap before b under this policy. */
static int
pending_before(enum policy policy, const struct pending_entry *a,
    const struct pending_entry *b)
{
	switch (policy) {
	case POLICY_PRIORITY:
		if (a->priority != b->priority)
			return a->priority < b->priority;
		return a->seq < b->seq;
	case POLICY_FIFO:
		return a->seq < b->seq;
	case POLICY_LIFO:
		return a->seq > b->seq;
	}
	abort();	/* config only produces the three policies above */
}

/* Store an entry at index i and tell its owner where it now lives. */
static void
pending_place(struct pending *p, size_t i, const struct pending_entry *pe)
{
	p->e[i] = *pe;
	if (pe->slot != NULL)
		*pe->slot = i;
}

/*
 * Move the entry at i towards the root while it beats its parent.  The
 * entry is held aside and parents slide down into the hole, so each level
 * costs one copy rather than a swap.
 */
static void
pending_up(struct pending *p, size_t i)
{
	struct pending_entry	pe = p->e[i];
	size_t			parent;

	while (i > 0) {
		parent = (i - 1) / 2;
		if (!pending_before(p->policy, &pe, &p->e[parent]))
			break;
		pending_place(p, i, &p->e[parent]);
		i = parent;
	}
	pending_place(p, i, &pe);
}

/* Move the entry at i towards the leaves while a child beats it. */
static void
pending_down(struct pending *p, size_t i)
{
	struct pending_entry	pe = p->e[i];
	size_t			child;

	for (;;) {
		child = 2 * i + 1;
		if (child >= p->len)
			break;
		if (child + 1 < p->len &&
		    pending_before(p->policy, &p->e[child + 1], &p->e[child]))
			child++;
		if (!pending_before(p->policy, &p->e[child], &pe))
			break;
		pending_place(p, i, &p->e[child]);
		i = child;
	}
	pending_place(p, i, &pe);
}

static void
pending_resize(struct pending *p, size_t cap)
{
	p->e = xreallocarray(p->e, cap, sizeof *p->e);
	p->cap = cap;
}

struct pending *
pending_new(enum policy policy)
{
	struct pending	*p;

	p = xcalloc(1, sizeof *p);
	p->policy = policy;
	pending_resize(p, PENDING_MINCAP);
	return p;
}

/*
 * The items and their slots belong to the caller and are left untouched:
 * the caller may already have freed them when it frees the heap.
 */
void
pending_free(struct pending *p)
{
	if (p == NULL)
		return;
	free(p->e);
	free(p);
}

void
pending_push(struct pending *p, void *item, int64_t priority, uint64_t seq,
    size_t *slot)
{
	struct pending_entry	pe;

	/*
	 * Grow by half rather than doubling: with a million queued jobs the
	 * spare capacity stays near 16 bytes per entry instead of 32.
	 */
	if (p->len == p->cap)
		pending_resize(p, p->cap + p->cap / 2);

	pe.item = item;
	pe.priority = priority;
	pe.seq = seq;
	pe.slot = slot;
	pending_place(p, p->len++, &pe);
	pending_up(p, p->len - 1);
}

void *
pending_peek(const struct pending *p)
{
	if (p->len == 0)
		return NULL;
	return p->e[0].item;
}

void *
pending_pop(struct pending *p)
{
	if (p->len == 0)
		return NULL;
	return pending_remove(p, 0);
}

/*
 * A slot that is out of range (PENDING_NOSLOT included, the value left
 * behind by an earlier pop or remove) gives NULL, so a caller can cancel
 * a job without first asking whether it is still queued.
 */
void *
pending_remove(struct pending *p, size_t slot)
{
	struct pending_entry	gone, last;

	if (slot >= p->len)
		return NULL;

	gone = p->e[slot];
	last = p->e[--p->len];
	if (slot != p->len) {
		/*
		 * The last entry fills the hole.  It may belong above or below
		 * it: the hole can be in a different subtree from where the
		 * last entry came, so try both directions (at most one moves).
		 */
		pending_place(p, slot, &last);
		if (slot > 0 &&
		    pending_before(p->policy, &last, &p->e[(slot - 1) / 2]))
			pending_up(p, slot);
		else
			pending_down(p, slot);
	}
	if (gone.slot != NULL)
		*gone.slot = PENDING_NOSLOT;

	/*
	 * Give memory back after a burst drains, but only at a quarter full
	 * and only down to half, so pushes and pops around one size do not
	 * reallocate every time.
	 */
	if (p->cap > PENDING_MINCAP && p->len < p->cap / 4)
		pending_resize(p, p->cap / 2 < PENDING_MINCAP ?
		    PENDING_MINCAP : p->cap / 2);

	return gone.item;
}

size_t
pending_len(const struct pending *p)
{
	return p->len;
}

/* Floyd's bottom-up heap construction: O(n), slots kept by pending_down. */
void
pending_set_policy(struct pending *p, enum policy policy)
{
	size_t	i;

	if (p->policy == policy)
		return;
	p->policy = policy;
	for (i = p->len / 2; i > 0; i--)
		pending_down(p, i - 1);
}
