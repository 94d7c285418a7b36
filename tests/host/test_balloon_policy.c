/*
 * The balloon's policy (core/balloon_policy.c): whom it asks to inflate
 * when the machine runs short, how much, and when it lets balloons down
 * again; and its glue: it looks only at running VMs with a balloon, at
 * most every BALLOON_POLICY_MS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include <quire/balloon.h>
#include <quire/pool.h>
#include <quire/vm.h>

#define MARK 10000
#define MARGIN 1000

static struct balloon_plan plan(u64 free, const struct balloon_view *v, unsigned n)
{
	return balloon_plan(free, MARK, MARGIN, v, n);
}

static void inside_the_band_nothing_moves(void **state)
{
	struct balloon_view v[2] = { { .excess = 5000, .live = true }, { .excess = 100, .policy = 300, .live = true } };

	(void)state;
	assert_int_equal(plan(MARK, v, 2).vm, -1);
	assert_int_equal(plan(MARK + 2 * MARGIN, v, 2).vm, -1);
}

static void short_asks_the_vm_most_above_its_guarantee(void **state)
{
	struct balloon_view v[3] = {
		{ .excess = 3000, .live = true }, { .excess = 9000, .live = true }, { .excess = 20000, .live = false },
	};
	struct balloon_plan p;

	(void)state;
	/* 400 below the mark: up to the band's middle, 400 + 1000. A balloon without a driver is not asked. */
	p = plan(MARK - 400, v, 3);
	assert_int_equal(p.vm, 1);
	assert_int_equal(p.delta, 1400);
	/* Never more than the VM holds above its guarantee. */
	v[1].excess = 200;
	p = plan(MARK - 400, v, 3);
	assert_int_equal(p.vm, 0);
	assert_int_equal(p.delta, 1400);
	v[0].excess = 50;
	p = plan(MARK - 400, v, 3);
	assert_int_equal(p.vm, 1);
	assert_int_equal(p.delta, 200);
}

static void what_is_asked_already_counts(void **state)
{
	struct balloon_view v[2] = { { .excess = 5000, .pending = 600, .live = true }, { .excess = 5000, .live = true } };
	struct balloon_plan p;

	(void)state;
	/* 1400 wanted, 600 on its way: 800 more, from the VM with the most left to give. */
	p = plan(MARK - 400, v, 2);
	assert_int_equal(p.vm, 1);
	assert_int_equal(p.delta, 800);
	/* All of it on its way: nothing more. */
	v[1].pending = 800;
	assert_int_equal(plan(MARK - 400, v, 2).vm, -1);
}

static void nobody_above_the_guarantee_nobody_asked(void **state)
{
	struct balloon_view v[2] = { { .excess = 0, .live = true }, { .excess = 100, .pending = 100, .live = true } };

	(void)state;
	assert_int_equal(plan(0, v, 2).vm, -1);
}

static void plenty_lets_the_fullest_policy_balloon_down(void **state)
{
	struct balloon_view v[3] = { { .policy = 100, .live = true }, { .policy = 4000, .live = true }, { 0 } };
	struct balloon_plan p;

	(void)state;
	/* 500 above the band: down to its middle, 1500 of the 4000. */
	p = plan(MARK + 2 * MARGIN + 500, v, 3);
	assert_int_equal(p.vm, 1);
	assert_int_equal(p.delta, -1500);
	/* Only what the policy added: an operator's target is not the policy's to undo. */
	v[1].policy = 0;
	p = plan(MARK + 10 * MARGIN, v, 3);
	assert_int_equal(p.vm, 0);
	assert_int_equal(p.delta, -100);
	v[0].policy = 0;
	assert_int_equal(plan(MARK + 10 * MARGIN, v, 3).vm, -1);
}

/* The glue, over stubs: three VM slots, the clock and the pool under the test's control. */
static struct vm vms[3];
static enum vm_state states[3];
static struct balloon_view views[3];
static bool has_balloon[3];
static struct pool pool = { .ndesc = 32 * 4096, .low_water = 100 };
static u32 free_pages;
static u64 now;
static struct vm *moved;
static s64 moved_by;
static unsigned moves;

struct vm *vm_get(unsigned id)
{
	return id >= 1 && id <= 3 ? &vms[id - 1] : NULL;
}

enum vm_state vm_state(const struct vm *vm)
{
	return states[vm - vms];
}

bool balloon_view(struct vm *vm, struct balloon_view *out)
{
	*out = views[vm - vms];
	return has_balloon[vm - vms];
}

void balloon_policy_move(struct vm *vm, s64 delta, unsigned cpu)
{
	(void)cpu;
	moved = vm;
	moved_by = delta;
	moves++;
}

u32 pool_free_pages(const struct pool *p)
{
	(void)p;
	return free_pages;
}

u64 clock_ticks(void)
{
	return now;
}

u64 clock_freq(void)
{
	return 1000000;
}

static int glue_setup(void **state)
{
	(void)state;
	for (unsigned k = 0; k < 3; k++) {
		vms[k].pool.vmm = &pool;
		states[k] = VM_RUNNING;
		views[k] = (struct balloon_view){ .excess = 100000, .live = true };
		has_balloon[k] = true;
	}
	moves = 0;
	moved = NULL;
	now += 10 * 1000 * BALLOON_POLICY_MS; /* long after any earlier test's look */
	return 0;
}

static void glue_asks_a_running_vm_with_a_balloon(void **state)
{
	/* The margin: the pool's pages / BALLOON_MARGIN_DIV; the mark: low_water + margin. */
	u64 mark = pool.low_water + 32 * 4096 / BALLOON_MARGIN_DIV;

	(void)state;
	states[0] = VM_STOPPING;	      /* stopping: never asked, however much it holds */
	views[0].excess = 900000;
	has_balloon[1] = false;		      /* no balloon */
	views[2].excess = 7;
	free_pages = (u32)mark - 10;
	balloon_policy(0);
	assert_int_equal(moves, 1);
	assert_ptr_equal(moved, &vms[2]);
	assert_int_equal(moved_by, 7);
}

static void glue_looks_once_per_interval(void **state)
{
	(void)state;
	free_pages = 0;
	balloon_policy(0);
	assert_int_equal(moves, 1);
	/* Other fills, other CPUs, moments later: no second look. */
	now += 1000 * BALLOON_POLICY_MS - 1;
	balloon_policy(1);
	balloon_policy(0);
	assert_int_equal(moves, 1);
	now += 1;
	balloon_policy(1);
	assert_int_equal(moves, 2);
}

static void glue_without_balloons_does_nothing(void **state)
{
	(void)state;
	for (unsigned k = 0; k < 3; k++)
		has_balloon[k] = false;
	free_pages = 0;
	balloon_policy(0);
	assert_int_equal(moves, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(inside_the_band_nothing_moves),
		cmocka_unit_test(short_asks_the_vm_most_above_its_guarantee),
		cmocka_unit_test(what_is_asked_already_counts),
		cmocka_unit_test(nobody_above_the_guarantee_nobody_asked),
		cmocka_unit_test(plenty_lets_the_fullest_policy_balloon_down),
		cmocka_unit_test_setup(glue_asks_a_running_vm_with_a_balloon, glue_setup),
		cmocka_unit_test_setup(glue_looks_once_per_interval, glue_setup),
		cmocka_unit_test_setup(glue_without_balloons_does_nothing, glue_setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
