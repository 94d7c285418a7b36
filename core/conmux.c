/*
 * The console multiplexer (docs/console.md). Output: every VM line starts
 * with "[name] " (unless quire.console=raw, for a single VM). The VM that has the input streams byte by byte, so its
 * prompt and echo show at once; the others are held a line at a time and
 * printed whole, so VMs booting together never shred each other's lines.
 * Everything is printed under the console lock, where the screen remembers
 * whose unfinished line the cursor is on (console.h); whoever prints next
 * ends it first, and a VM that goes on with an ended line starts it again
 * with its prefix.
 *
 * Input: bytes go to the VM that has the input, or to the monitor; Ctrl-A
 * three times in a row moves it on. Lock order: the input lock, then a
 * vPL011's lock, then the console lock (vpl011.c prints under its own lock,
 * so conmux_input must never hold the console lock while feeding a VM).
 */
#include <stdatomic.h>
#include <string.h>
#include <quire/conmux.h>
#include <quire/console.h>
#include <quire/monitor.h>
#include <quire/printf.h>
#include <quire/spinlock.h>
#include <quire/vdev.h>
#include <quire/vm.h>

#define CON_LINE 200 /* a held line is printed when it gets this long */

/* Where typed bytes go: a VM id, the monitor, or nowhere until conmux_start. */
#define TO_MONITOR 0u
#define TO_NOBODY 0xffu

/* A VM's console output; under the console lock. */
struct vmcon {
	/*
	 * The VM's current line: [0, shown) is on the screen, [shown, len) is
	 * held. Kept after it is shown, so the line (a shell prompt) can be
	 * drawn again when the input comes to this VM.
	 */
	char line[CON_LINE];
	unsigned len, shown;
	bool cr;      /* a '\r' is held: what it means depends on the next byte */
	bool midline; /* the VM has begun a line (someone may have ended it on the screen since) */
};

static struct vmcon cons[MAX_VMS];
/* Written under both the input and the console lock; read under either. */
static _Atomic unsigned focus = TO_NOBODY;
static spinlock_t input_lock = SPINLOCK_INIT;
static unsigned escapes; /* Ctrl-As in a row; input lock */
static bool raw; /* quire.console=raw: no prefix; set before any VM is made */

static struct vmcon *con_of(const struct vm *vm)
{
	return vm && vm->id >= 1 && vm->id <= MAX_VMS ? &cons[vm->id - 1] : NULL;
}

static unsigned focused(void)
{
	return atomic_load_explicit(&focus, memory_order_relaxed);
}

/* Console lock held, for this and the output helpers below. */
static void put_prefix(const struct vm *vm)
{
	if (raw)
		return;
	console_put(vm->id, '[');
	for (unsigned i = 0; i < sizeof(vm->name) && vm->name[i]; i++)
		console_put(vm->id, vm->name[i]);
	console_put(vm->id, ']');
	console_put(vm->id, ' ');
}

/*
 * One byte of a VM's output to the screen. Line ends become "\r\n" whatever
 * the guest sent ("\r\n" or a bare "\n"); a '\r' followed by more text (a
 * progress line drawn over itself) draws the prefix over again too, so no
 * line on the screen is without its prefix.
 */
static void put(const struct vm *vm, struct vmcon *st, char c)
{
	bool ours = console_line_owner() == vm->id;

	if (c == '\r') {
		st->cr = true;
		return;
	}
	if (c == '\n') {
		/* Someone else's output ended this line on the screen already; an empty one still shows. */
		if (ours || !st->midline) {
			if (!ours)
				put_prefix(vm);
			console_put(vm->id, '\r');
			console_put(vm->id, '\n');
		}
		st->cr = st->midline = false;
		return;
	}
	if (!ours) {
		put_prefix(vm);
	} else if (st->cr) {
		console_put(vm->id, '\r');
		put_prefix(vm);
	}
	st->cr = false;
	st->midline = true;
	console_put(vm->id, c);
}

static void show(const struct vm *vm, struct vmcon *st)
{
	for (; st->shown < st->len; st->shown++)
		put(vm, st, st->line[st->shown]);
}

void conmux_vm_output(struct vm *vm, char c)
{
	struct vmcon *st = con_of(vm);

	if (!st)
		return;
	console_lock();
	st->line[st->len++] = c;
	if (focused() == vm->id || c == '\n' || st->len == CON_LINE)
		show(vm, st);
	/* A new line; or one too long to keep: what follows continues it on the screen. */
	if (c == '\n' || st->len == CON_LINE)
		st->len = st->shown = 0;
	console_unlock();
}

void conmux_vm_reset(struct vm *vm)
{
	struct vmcon *st = con_of(vm);

	if (!st)
		return;
	console_lock();
	show(vm, st);
	/* End its line, or its first line after a restart would continue it unprefixed. */
	if (console_line_owner() == vm->id) {
		console_put(vm->id, '\r');
		console_put(vm->id, '\n');
	}
	memset(st, 0, sizeof(*st));
	console_unlock();
}

/*
 * Bytes typed for the VM with the input while its receive FIFO is full. The
 * UART is always read, so Ctrl-A gets through even while a VM does not read
 * its input; past this much, typed bytes are dropped, as on a real serial
 * line overrun. Input lock.
 */
#define HOLD 1024
static char hold[HOLD];
static unsigned hold_head, hold_len;

/* The input side: under the input lock. */
static struct vm *live_vm(unsigned id)
{
	struct vm *vm = vm_get(id);

	return vm && vm_state(vm) != VM_EMPTY ? vm : NULL;
}

/* After `from`: the next VM in id order, or after the last one the monitor. */
static unsigned next_target(unsigned from)
{
	unsigned t = from > MAX_VMS ? TO_MONITOR : from;

	do
		t = (t + 1) % (MAX_VMS + 1);
	while (t != TO_MONITOR && !live_vm(t));
	return t;
}

static void focus_on(unsigned to)
{
	struct vm *vm = to == TO_MONITOR ? NULL : live_vm(to);
	struct vmcon *st = con_of(vm);
	char msg[128];

	if (vm)
		q_snprintf(msg, sizeof(msg),
			   "quire: console input goes to %.*s (Ctrl-A three times to switch)\n",
			   (int)sizeof(vm->name), vm->name);
	else
		q_snprintf(msg, sizeof(msg), "quire: console input goes to the monitor (type 'help')\n");
	hold_len = 0; /* typed for the previous target, which never took it */
	console_lock();
	atomic_store_explicit(&focus, vm ? to : TO_MONITOR, memory_order_relaxed);
	console_puts(CONSOLE_QUIRE, msg);
	if (vm) {
		/* Show its line so far (a prompt, most likely), all of it if it is off the screen. */
		if (st->len && console_line_owner() != vm->id) {
			st->shown = 0;
			st->cr = st->midline = false;
		}
		show(vm, st);
	}
	console_unlock();
	if (!vm)
		monitor_enter();
}

/* A typed byte to whoever has the input; a VM that is not running does without. */
static void deliver(char c, unsigned cpu)
{
	unsigned to = focused();
	struct vm *vm;

	if (to == TO_MONITOR) {
		monitor_input(c, cpu);
	} else if ((vm = vm_get(to)) && vm_state(vm) == VM_RUNNING) {
		if (!hold_len && vpl011_room(vm))
			vpl011_input(vm, c);
		else if (hold_len < HOLD)
			hold[(hold_head + hold_len++) % HOLD] = c;
	}
}

void conmux_input_drain(void)
{
	unsigned to;
	struct vm *vm;

	spin_lock(&input_lock);
	to = focused();
	vm = to == TO_MONITOR ? NULL : vm_get(to);
	if (!vm || vm_state(vm) != VM_RUNNING)
		hold_len = 0;
	for (; hold_len && vpl011_room(vm); hold_len--) {
		vpl011_input(vm, hold[hold_head]);
		hold_head = (hold_head + 1) % HOLD;
	}
	spin_unlock(&input_lock);
}

void conmux_input(char c, unsigned cpu)
{
	spin_lock(&input_lock);
	if (c == CONMUX_ESCAPE) {
		if (++escapes == 3) {
			escapes = 0;
			focus_on(next_target(focused()));
		}
	} else {
		/* One or two Ctrl-As were meant for the target (beginning of line in a shell). */
		for (; escapes; escapes--)
			deliver(CONMUX_ESCAPE, cpu);
		deliver(c, cpu);
	}
	spin_unlock(&input_lock);
}

void conmux_raw(void)
{
	raw = true;
}

void conmux_start(bool monitor)
{
	spin_lock(&input_lock);
	focus_on(monitor ? TO_MONITOR : next_target(TO_MONITOR));
	spin_unlock(&input_lock);
}
