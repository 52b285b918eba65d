/*
 * check_pending: the per-queue heap on its own.  Items are small test
 * records that remember their priority, sequence and slot, so every test
 * can check the order of pops and that each live slot still names its
 * entry (by removing through it).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "pending.h"

#define NOSLOT	((size_t)-1)

struct titem {
	int		 id;
	int64_t		 prio;
	uint64_t	 seq;
	size_t		 slot;
	int		 live;
};

static uint64_t next_seq;

static void
tpush(struct pending *p, struct titem *t, int id, int64_t prio)
{
	t->id = id;
	t->prio = prio;
	t->seq = ++next_seq;
	t->live = 1;
	pending_push(p, t, prio, t->seq, &t->slot);
}

/* The reference order, written independently of pending.c. */
static int
tbefore(enum policy pol, const struct titem *a, const struct titem *b)
{
	if (pol == POLICY_LIFO)
		return a->seq > b->seq;
	if (pol == POLICY_PRIORITY && a->prio != b->prio)
		return a->prio < b->prio;
	return a->seq < b->seq;
}

/*
 * Every live item's slot is below len and no two share one: the slots are
 * a permutation of 0..len-1.  Dead items have NOSLOT.  Problems are
 * counted and asserted once: in CK_FORK mode every ck_assert writes a
 * record, too slow for a loop over thousands of items.
 */
static void
check_slots(struct pending *p, struct titem *t, size_t n)
{
	size_t	 len = pending_len(p), i, live = 0, bad = 0;
	char	*seen;

	seen = calloc(len == 0 ? 1 : len, 1);
	ck_assert_ptr_nonnull(seen);
	for (i = 0; i < n; i++) {
		if (!t[i].live) {
			bad += t[i].slot != NOSLOT;
			continue;
		}
		live++;
		if (t[i].slot >= len || seen[t[i].slot])
			bad++;
		else
			seen[t[i].slot] = 1;
	}
	free(seen);
	ck_assert_msg(bad == 0 && live == len,
	    "slots: %zu bad, %zu live, len %zu", bad, live, len);
}

/* Pop everything and check the ids come out in the expected order. */
static void
check_pops(struct pending *p, const int *want, size_t n)
{
	struct titem	*t;
	size_t		 i;

	for (i = 0; i < n; i++) {
		t = pending_peek(p);
		ck_assert_ptr_nonnull(t);
		ck_assert_ptr_eq(pending_pop(p), t);
		ck_assert_int_eq(t->id, want[i]);
		ck_assert_uint_eq(t->slot, NOSLOT);
		t->live = 0;
	}
	ck_assert_uint_eq(pending_len(p), 0);
	ck_assert_ptr_null(pending_pop(p));
}

/* Priorities with ties; ids are the submission order. */
static const int64_t order_prio[] = { 3, 1, 2, 1, 3, 0, 2, 1 };
#define ORDER_N	(sizeof order_prio / sizeof order_prio[0])

static void
push_order(struct pending *p, struct titem *t)
{
	size_t	i;

	for (i = 0; i < ORDER_N; i++)
		tpush(p, &t[i], (int)i, order_prio[i]);
	ck_assert_uint_eq(pending_len(p), ORDER_N);
	check_slots(p, t, ORDER_N);
}

START_TEST(test_empty)
{
	struct pending	*p = pending_new(POLICY_PRIORITY);
	struct titem	 t;

	ck_assert_uint_eq(pending_len(p), 0);
	ck_assert_ptr_null(pending_peek(p));
	ck_assert_ptr_null(pending_pop(p));
	ck_assert_ptr_null(pending_remove(p, 0));
	ck_assert_ptr_null(pending_remove(p, NOSLOT));

	/* Empty again after one entry, and a stale slot removes nothing. */
	tpush(p, &t, 1, 0);
	ck_assert_ptr_eq(pending_pop(p), &t);
	ck_assert_uint_eq(t.slot, NOSLOT);
	ck_assert_ptr_null(pending_remove(p, t.slot));
	ck_assert_ptr_null(pending_peek(p));
	ck_assert_ptr_null(pending_pop(p));
	pending_free(p);
	pending_free(NULL);
}
END_TEST

START_TEST(test_order_priority)
{
	static const int want[ORDER_N] = { 5, 1, 3, 7, 2, 6, 0, 4 };
	struct pending	*p = pending_new(POLICY_PRIORITY);
	struct titem	 t[ORDER_N];

	push_order(p, t);
	check_pops(p, want, ORDER_N);
	pending_free(p);
}
END_TEST

START_TEST(test_order_fifo)
{
	static const int want[ORDER_N] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	struct pending	*p = pending_new(POLICY_FIFO);
	struct titem	 t[ORDER_N];

	push_order(p, t);
	check_pops(p, want, ORDER_N);
	pending_free(p);
}
END_TEST

START_TEST(test_order_lifo)
{
	static const int want[ORDER_N] = { 7, 6, 5, 4, 3, 2, 1, 0 };
	struct pending	*p = pending_new(POLICY_LIFO);
	struct titem	 t[ORDER_N];

	push_order(p, t);
	check_pops(p, want, ORDER_N);
	pending_free(p);
}
END_TEST

/* Extreme priorities must compare, not subtract. */
START_TEST(test_order_extremes)
{
	static const int want[] = { 1, 3, 2, 0 };
	struct pending	*p = pending_new(POLICY_PRIORITY);
	struct titem	 t[4];

	tpush(p, &t[0], 0, INT64_MAX);
	tpush(p, &t[1], 1, INT64_MIN);
	tpush(p, &t[2], 2, 0);
	tpush(p, &t[3], 3, INT64_MIN);
	check_pops(p, want, 4);
	pending_free(p);
}
END_TEST

static struct titem *
find_at(struct titem *t, size_t n, size_t slot)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (t[i].live && t[i].slot == slot)
			return &t[i];
	ck_abort_msg("no item at slot %zu", slot);
	return NULL;
}

static void
remove_at(struct pending *p, struct titem *t, size_t n, size_t slot)
{
	struct titem	*victim = find_at(t, n, slot);

	ck_assert_ptr_eq(pending_remove(p, slot), victim);
	ck_assert_uint_eq(victim->slot, NOSLOT);
	victim->live = 0;
	check_slots(p, t, n);
}

/*
 * Remove the root, the last leaf and entries in between, then check the
 * rest still pops in order.  Priorities are chosen so that the entry moved
 * into a hole sometimes has to go up and sometimes down.
 */
START_TEST(test_remove)
{
	enum policy	 pol = (enum policy)_i;
	struct pending	*p = pending_new(pol);
	struct titem	 t[31], *prev, *cur;
	size_t		 i, len;

	for (i = 0; i < 31; i++)
		tpush(p, &t[i], (int)i, (int64_t)((i * 7) % 5));
	check_slots(p, t, 31);

	remove_at(p, t, 31, 0);				/* top */
	remove_at(p, t, 31, pending_len(p) - 1);	/* bottom */
	remove_at(p, t, 31, pending_len(p) / 2);	/* middle */
	remove_at(p, t, 31, 1);
	remove_at(p, t, 31, 2);
	remove_at(p, t, 31, pending_len(p) - 3);
	ck_assert_uint_eq(pending_len(p), 25);

	/* Every live slot still names its own entry. */
	for (i = 0; i < 31; i++) {
		if (!t[i].live)
			continue;
		ck_assert_ptr_eq(pending_remove(p, t[i].slot), &t[i]);
		ck_assert_uint_eq(t[i].slot, NOSLOT);
		len = pending_len(p);
		pending_push(p, &t[i], t[i].prio, t[i].seq, &t[i].slot);
		ck_assert_uint_eq(pending_len(p), len + 1);
		check_slots(p, t, 31);
	}

	prev = NULL;
	while ((cur = pending_pop(p)) != NULL) {
		if (prev != NULL)
			ck_assert(tbefore(pol, prev, cur));
		cur->live = 0;
		check_slots(p, t, 31);
		prev = cur;
	}
	pending_free(p);
}
END_TEST

START_TEST(test_set_policy)
{
	struct pending	*p = pending_new(POLICY_PRIORITY);
	struct titem	 t[ORDER_N], *x;
	size_t		 i;

	push_order(p, t);
	/* priority: 5 (prio 0) then 1 (prio 1, oldest) */
	ck_assert_int_eq(((struct titem *)pending_pop(p))->id, 5);
	ck_assert_int_eq(((struct titem *)pending_pop(p))->id, 1);
	t[5].live = t[1].live = 0;

	pending_set_policy(p, POLICY_LIFO);
	check_slots(p, t, ORDER_N);
	ck_assert_int_eq(((struct titem *)pending_peek(p))->id, 7);
	ck_assert_int_eq(((struct titem *)pending_pop(p))->id, 7);
	t[7].live = 0;

	pending_set_policy(p, POLICY_FIFO);
	check_slots(p, t, ORDER_N);
	ck_assert_int_eq(((struct titem *)pending_pop(p))->id, 0);
	t[0].live = 0;

	/* Same policy again changes nothing. */
	pending_set_policy(p, POLICY_FIFO);
	pending_set_policy(p, POLICY_PRIORITY);
	check_slots(p, t, ORDER_N);
	/* left: 2 (prio 2), 3 (1), 4 (3), 6 (2) */
	{
		static const int want[] = { 3, 2, 6, 4 };

		for (i = 0; i < 4; i++) {
			x = pending_pop(p);
			ck_assert_int_eq(x->id, want[i]);
			x->live = 0;
			check_slots(p, t, ORDER_N);
		}
	}
	ck_assert_ptr_null(pending_pop(p));
	pending_free(p);
}
END_TEST

/* xorshift64*: the same sequence on every libc. */
static uint64_t rng_state;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

#define RAND_OPS	10000
#define RAND_MAX_ITEMS	RAND_OPS

static struct titem *
ref_min(enum policy pol, struct titem *t, size_t n)
{
	struct titem	*best = NULL;
	size_t		 i;

	for (i = 0; i < n; i++)
		if (t[i].live && (best == NULL || tbefore(pol, &t[i], best)))
			best = &t[i];
	return best;
}

/*
 * 10,000 random pushes, pops, removes and policy changes against a linear
 * scan.  Priorities come from a small range so ties are common.  Pops are
 * biased down near the end so the heap also drains and shrinks.
 */
START_TEST(test_random)
{
	enum policy	 pol = POLICY_PRIORITY;
	struct pending	*p = pending_new(pol);
	struct titem	*t, *want, *got;
	size_t		 n = 0, live = 0, k, i, op;

	t = calloc(RAND_MAX_ITEMS, sizeof *t);
	ck_assert_ptr_nonnull(t);
	rng_state = 0x9e3779b97f4a7c15ULL;

	for (op = 0; op < RAND_OPS; op++) {
		k = rng() % 100;
		if (op > RAND_OPS * 3 / 4 && k < 50)
			k += 50;	/* drain phase: no pushes */
		if (k < 50 || live == 0) {
			tpush(p, &t[n], (int)n, (int64_t)(rng() % 8) - 4);
			n++;
			live++;
		} else if (k < 75) {
			want = ref_min(pol, t, n);
			ck_assert_ptr_eq(pending_peek(p), want);
			got = pending_pop(p);
			ck_assert_msg(got == want,
			    "op %zu: popped id %d, expected id %d", op,
			    got->id, want->id);
			got->live = 0;
			live--;
		} else if (k < 98) {
			/* Remove a random live item through its slot. */
			i = rng() % n;
			while (!t[i].live)
				i = (i + 1) % n;
			ck_assert_ptr_eq(pending_remove(p, t[i].slot), &t[i]);
			t[i].live = 0;
			live--;
		} else
			pol = (enum policy)(rng() % 3);
		pending_set_policy(p, pol);
		ck_assert_uint_eq(pending_len(p), live);
		if (op % 16 == 0 || live < 64)
			check_slots(p, t, n);
	}
	check_slots(p, t, n);

	while ((want = ref_min(pol, t, n)) != NULL) {
		ck_assert_ptr_eq(pending_pop(p), want);
		want->live = 0;
	}
	ck_assert_uint_eq(pending_len(p), 0);
	check_slots(p, t, n);
	pending_free(p);
	free(t);
}
END_TEST

/*
 * Grow to a large size and drain again, through the growth and shrink
 * paths, with callers that pass no slot.
 */
START_TEST(test_large)
{
	struct pending	*p = pending_new(POLICY_FIFO);
	uintptr_t	 i;
	const uintptr_t	 n = 200000;
	size_t		 bad = 0;

	for (i = 1; i <= n; i++)
		pending_push(p, (void *)i, 0, i, NULL);
	ck_assert_uint_eq(pending_len(p), n);
	pending_set_policy(p, POLICY_LIFO);
	for (i = n; i > n / 2; i--)
		bad += pending_pop(p) != (void *)i;
	pending_set_policy(p, POLICY_FIFO);
	for (i = 1; i <= n / 2; i++)
		bad += pending_pop(p) != (void *)i;
	ck_assert_uint_eq(bad, 0);
	ck_assert_ptr_null(pending_pop(p));
	pending_free(p);
}
END_TEST

static Suite *
pending_suite(void)
{
	Suite	*s = suite_create("pending");
	TCase	*tc;

	tc = tcase_create("order");
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_order_priority);
	tcase_add_test(tc, test_order_fifo);
	tcase_add_test(tc, test_order_lifo);
	tcase_add_test(tc, test_order_extremes);
	tcase_add_test(tc, test_set_policy);
	suite_add_tcase(s, tc);

	tc = tcase_create("remove");
	tcase_add_loop_test(tc, test_remove, POLICY_PRIORITY, POLICY_LIFO + 1);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_random);
	tcase_add_test(tc, test_large);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(pending_suite());
	int	 failed;

	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
