/* Fake VMs and a captured screen for the console tests; see fake_vm.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <quire/console.h>
#include <quire/errno.h>
#include <quire/vcpu.h>
#include <quire/vdev.h>

#include <quire/clock.h>
#include <quire/share.h>
#include <quire/swap.h>
#include "fake_vm.h"

struct vm fake_vms[MAX_VMS];
struct vcpu fake_vcpus[MAX_VMS][MAX_VCPUS];
enum vm_state fake_state[MAX_VMS];
char fake_rx[MAX_VMS][FAKE_RX_MAX];
size_t fake_nrx[MAX_VMS];
bool fake_room[MAX_VMS];
int fake_fail_rc;
char fake_calls[512];
u32 fake_free_pages;
unsigned fake_input_resumed;
char screen[1 << 20];
size_t nscreen;

static struct pool fake_pool;

void fake_vm_reset(void)
{
	memset(fake_vms, 0, sizeof(fake_vms));
	memset(fake_state, 0, sizeof(fake_state));
	memset(fake_nrx, 0, sizeof(fake_nrx));
	for (unsigned i = 0; i < MAX_VMS; i++)
		fake_room[i] = true;
	fake_fail_rc = 0;
	fake_calls[0] = '\0';
	fake_free_pages = 0;
	fake_input_resumed = 0;
	fake_rate_set = -1;
	fake_pool.ndesc = 5000;
}

struct vm *fake_vm_add(unsigned id, const char *name)
{
	struct vm *vm = &fake_vms[id - 1];

	memset(vm, 0, sizeof(*vm));
	vm->id = id;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	snprintf(vm->cfg.name, sizeof(vm->cfg.name), "%s", name);
	vm->cfg.vcpus = 2;
	vm->nvcpus = 2;
	for (unsigned i = 0; i < 2; i++) {
		memset(&fake_vcpus[id - 1][i], 0, sizeof(fake_vcpus[id - 1][i]));
		fake_vcpus[id - 1][i].vm = vm;
		fake_vcpus[id - 1][i].index = i;
		vm->vcpu[i] = &fake_vcpus[id - 1][i];
	}
	vm->cfg.mem_size = 256ULL << 20;
	vm->cfg.resident_limit = 128ULL << 20;
	vm->pool.vmm = &fake_pool;
	vm->pool.vm_id = id;
	vm->pool.quota = 33000;
	vm->cfg.sharing = SHARE_SELF;
	atomic_store(&vm->share.scan_pages, 64);
	fake_state[id - 1] = VM_RUNNING;
	return vm;
}

/* --- vm.h ------------------------------------------------------------------ */

enum vm_state vm_state(const struct vm *vm)
{
	return vm && vm->id ? fake_state[vm->id - 1] : VM_EMPTY;
}

const char *vm_state_name(enum vm_state s)
{
	static const char *const names[] = { "empty", "starting", "running", "paused", "stopping", "reaping",
					     "stopped" };

	return s <= VM_STOPPED ? names[s] : "?";
}

struct vm *vm_get(unsigned id)
{
	return id >= 1 && id <= MAX_VMS && fake_vms[id - 1].id ? &fake_vms[id - 1] : NULL;
}

struct vm *vm_find(const char *name)
{
	char *end;
	unsigned long id = strtoul(name, &end, 10);

	if (*name >= '0' && *name <= '9' && !*end)
		return id <= MAX_VMS ? vm_get((unsigned)id) : NULL;
	for (unsigned i = 0; i < MAX_VMS; i++)
		if (fake_vms[i].id && !strcmp(fake_vms[i].name, name))
			return &fake_vms[i];
	return NULL;
}

static void log_call(const char *op, struct vm *vm, int cpu)
{
	size_t n = strlen(fake_calls);

	if (cpu < 0)
		snprintf(fake_calls + n, sizeof(fake_calls) - n, "%s:%s ", op, vm->name);
	else
		snprintf(fake_calls + n, sizeof(fake_calls) - n, "%s:%s/cpu%d ", op, vm->name, cpu);
}

/* The state rules of vm.h: `from` is a bit set of states the operation applies to. */
static int transition(struct vm *vm, unsigned from, enum vm_state to)
{
	if (fake_fail_rc)
		return fake_fail_rc;
	if (!(from & (1u << vm_state(vm))))
		return -EINVAL;
	fake_state[vm->id - 1] = to;
	return 0;
}

int vm_pause(struct vm *vm)
{
	log_call("pause", vm, -1);
	return transition(vm, 1u << VM_RUNNING, VM_PAUSED);
}

int vm_resume(struct vm *vm)
{
	log_call("resume", vm, -1);
	return transition(vm, 1u << VM_PAUSED, VM_RUNNING);
}

int vm_kill(struct vm *vm)
{
	log_call("kill", vm, -1);
	return transition(vm, 1u << VM_RUNNING | 1u << VM_PAUSED, VM_STOPPING);
}

int vm_restart(struct vm *vm, unsigned cpu)
{
	log_call("restart", vm, (int)cpu);
	/* One that is stopping restarts later (vm.c): it stays as it is for now. */
	if (vm_state(vm) == VM_STOPPING || vm_state(vm) == VM_REAPING)
		return transition(vm, 1u << vm_state(vm), vm_state(vm));
	return transition(vm, 1u << VM_RUNNING | 1u << VM_PAUSED | 1u << VM_STOPPED, VM_RUNNING);
}

/* --- vdev.h, pool.h ---------------------------------------------------------- */

bool vpl011_room(struct vm *vm)
{
	return fake_room[vm->id - 1];
}

void vpl011_input(struct vm *vm, char c)
{
	unsigned i = vm->id - 1;

	if (fake_room[i] && fake_nrx[i] < FAKE_RX_MAX)
		fake_rx[i][fake_nrx[i]++] = c;
}

void console_input_resume(void)
{
	fake_input_resumed++;
}

u32 pool_free_pages(const struct pool *p)
{
	(void)p;
	return fake_free_pages;
}

void pool_zero_stats(const struct pool *p, struct pool_zero_stats *st)
{
	(void)p;
	*st = (struct pool_zero_stats){ .prezeroed = 300, .cap = 4096, .took_prezeroed = 2000, .zeroed_on_take = 600,
					.zeroed_idle = 2300, .runs = 7, .zeroed_runs = 2 };
}

/* --- the screen -------------------------------------------------------------- */

static void screen_putc(char c)
{
	if (nscreen < sizeof(screen) - 1)
		screen[nscreen++] = c;
	screen[nscreen] = '\0';
}

void screen_clear(void)
{
	nscreen = 0;
	screen[0] = '\0';
}

void screen_attach(void)
{
	unsigned o;

	console_set_output(screen_putc);
	console_lock();
	if ((o = console_line_owner()) != CONSOLE_NOBODY) {
		console_put(o, '\r');
		console_put(o, '\n');
	}
	console_unlock();
	screen_clear();
}

/* Sharing and time, as the monitor shows them: fixed values the tests can look for. */
int fake_rate_set = -1;

void share_stats(struct share_stats *st)
{
	*st = (struct share_stats){ .shared = 11, .sharing = 22, .zero = 33, .saved = 43, .scans = 5,
				    .scan_ticks = 62500 };
}

int share_set_rate(struct vm *vm, u32 pages)
{
	if (vm->cfg.sharing == SHARE_OFF)
		return -1;
	fake_rate_set = (int)pages;
	atomic_store(&vm->share.scan_pages, pages);
	return 0;
}

const char *share_hash_name(void)
{
	return "fake";
}

u64 clock_ticks_us(u64 ticks)
{
	return ticks / 62; /* about 62.5 MHz, as on QEMU virt */
}

void swap_stats(struct swap_stats *st)
{
	*st = (struct swap_stats){ .slots = 1000, .used = 12, .outs = 34, .ins = 22, .zero = 5, .waits = 40 };
}

u64 clock_us(void)
{
	return 1234567;
}

u64 clock_ticks(void)
{
	return 77160000;
}

u64 clock_freq(void)
{
	return 62500000;
}

int bootargs_u64(const char *bootargs, const char *key, u64 *val)
{
	(void)bootargs, (void)key, (void)val;
	return 0;
}
