/*
 * Run queues (core/sched.c): round robin from the vCPU that ran last, and
 * sched_pick_switch, a switch's single look at its queue, against the three
 * looks it stands for (sched_pick, sched_next_deadline without the vCPU
 * picked, sched_stopped) over every mix of vCPU states on one queue.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <quire/sched.h>
#include <quire/swap.h>

#define NV 4

static struct vm vms[NV];
static struct vcpu vcpus[NV];
static u64 deadline[NV]; /* each vCPU's virtual-timer deadline */
static bool wakes[NV];	 /* a blocked vCPU's interrupt waiting */

/* The arch and swap as sched.c sees them. */
bool vcpu_wake_pending(struct vcpu *v, u64 now)
{
	return wakes[v - vcpus] || deadline[v - vcpus] <= now;
}

u64 vcpu_timer_deadline(struct vcpu *v)
{
	return deadline[v - vcpus];
}

u64 swap_gen(void)
{
	return 7;
}

static int setup(void **state)
{
	(void)state;
	memset(vms, 0, sizeof(vms));
	memset(vcpus, 0, sizeof(vcpus));
	for (unsigned i = 0; i < NV; i++) {
		vms[i].id = i + 1;
		vcpus[i].vm = &vms[i];
		atomic_store(&vcpus[i].state, VCPU_RUNNING);
		deadline[i] = 1000 + 100 * i;
		wakes[i] = false;
		sched_add(&vcpus[i], 0);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (unsigned i = 0; i < NV; i++)
		sched_remove(&vcpus[i]);
	return 0;
}

/* Round robin: each runnable vCPU in turn, the current one last, a blocked one skipped. */
static void test_round_robin(void **state)
{
	(void)state;
	struct vcpu *cur = &vcpus[0];

	for (unsigned k = 0; k < 2 * NV; k++) {
		struct vcpu *next = sched_pick(0, cur, 0);

		assert_non_null(next);
		assert_ptr_not_equal(next, cur);
		assert_ptr_equal(next, &vcpus[(cur - vcpus + 1) % NV]);
		cur = next;
	}
	atomic_store(&vcpus[2].blocked, true);
	cur = &vcpus[1];
	assert_ptr_equal(sched_pick(0, cur, 0), &vcpus[3]);
	/* The others blocked too, and an interrupt for it: runnable again. */
	atomic_store(&vcpus[0].blocked, true);
	atomic_store(&vcpus[1].blocked, true);
	wakes[2] = true;
	assert_ptr_equal(sched_pick(0, &vcpus[3], 0), &vcpus[2]);
	/* Or its timer due (and the one before it in turn not yet). */
	wakes[2] = false;
	assert_null(sched_pick(0, &vcpus[3], 0));
	assert_ptr_equal(sched_pick(0, &vcpus[3], deadline[0]), &vcpus[0]);
}

/* Alone: nobody to pick. */
static void test_alone(void **state)
{
	(void)state;
	u64 dl;
	bool stopped;

	for (unsigned i = 1; i < NV; i++)
		atomic_store(&vcpus[i].state, VCPU_OFF);
	assert_null(sched_pick(0, &vcpus[0], 0));
	assert_null(sched_pick_switch(0, &vcpus[0], 0, &dl, &stopped));
	assert_false(stopped);
	assert_int_equal(dl, ~0UL);
}

/* The queue afresh (round robin from its first entry), then moved on by picks. */
static void requeue(unsigned picks)
{
	teardown(NULL);
	for (unsigned i = 0; i < NV; i++)
		sched_add(&vcpus[i], 0);
	for (unsigned s = 0; s < picks; s++)
		sched_pick(0, NULL, 0);
}

/* The reference: what sched_resched looked at before, one lock each. */
static struct vcpu *reference(struct vcpu *cur, u64 now, u64 *dl, bool *stopped)
{
	struct vcpu *out[NV];
	struct vcpu *next = sched_pick(0, cur, now);
	u64 t = ~0UL;

	*stopped = sched_stopped(0, cur, out, NV) > 0;
	for (unsigned i = 0; i < NV; i++)
		if (&vcpus[i] != cur && &vcpus[i] != next)
			t = MIN(t, sched_blocked_deadline(&vcpus[i]));
	*dl = t;
	/* With no blocked vCPU picked, the same as sched_next_deadline's. */
	if (!next || !atomic_load(&next->blocked))
		assert_int_equal(t, sched_next_deadline(0, cur));
	return next;
}

/* Every mix of blocked, woken, paused, off, dead and starting vCPUs: the single look agrees with the three. */
static void test_switch_look_agrees(void **state)
{
	(void)state;
	unsigned mixes = 1;

	for (unsigned i = 0; i < NV; i++)
		mixes *= 6;
	for (unsigned m = 0; m < mixes; m++) {
		unsigned code = m;

		for (unsigned i = 0; i < NV; i++, code /= 6) {
			unsigned k = code % 6;

			atomic_store(&vcpus[i].blocked, k == 1 || k == 2);
			wakes[i] = k == 2;
			atomic_store(&vms[i].paused, k == 3);
			atomic_store(&vms[i].off, k == 4 || k == 5);
			atomic_store(&vcpus[i].state, k == 5 ? VCPU_DEAD : i == 3 && m % 7 == 0 ? VCPU_START
													: VCPU_RUNNING);
		}
		for (unsigned c = 0; c < NV; c++) {
			struct vcpu *cur = &vcpus[c];
			u64 now = 1100 + 10 * (m % 40), dl, ref_dl;
			bool stopped, ref_stopped;
			struct vcpu *ref, *got;
			/* Both from the same round-robin position. */
			unsigned before = m % NV;

			requeue(before);
			ref = reference(cur, now, &ref_dl, &ref_stopped);
			requeue(before);
			got = sched_pick_switch(0, cur, now, &dl, &stopped);
			assert_ptr_equal(got, ref);
			assert_int_equal(dl, ref_dl);
			assert_int_equal(stopped, ref_stopped);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_robin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_switch_look_agrees, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
