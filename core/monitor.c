/*
 * The monitor: a line editor on the console and the commands behind it
 * (docs/console.md). Command output is printk'd like any of Quire's lines;
 * the prompt line is written as CONSOLE_MONITOR, so other output ends it,
 * and the next keystroke draws it again with what was typed so far.
 */
#include <stdatomic.h>
#include <string.h>
#include <quire/console.h>
#include <quire/exitprof.h>
#include <quire/errno.h>
#include <quire/monitor.h>
#include <quire/balloon.h>
#include <quire/vdisk.h>
#include <quire/vnet.h>
#include <quire/clock.h>
#include <quire/pool.h>
#include <quire/share.h>
#include <quire/swap.h>
#include <quire/vm.h>

#define CTRL(x) ((x) & 0x1f)
#define DEL 0x7f
#define ESC 0x1b
#define MAX_ARGS 2 /* no command takes more words after its name */

enum esc_state { ESC_NONE, ESC_START, ESC_CSI };

/* Callers (the console multiplexer) serialize monitor_* calls, so no lock here. */
static struct {
	char buf[MONITOR_LINE]; /* always NUL-terminated */
	unsigned len;
	bool after_cr;
	enum esc_state esc; /* swallowing a terminal escape sequence (arrow keys...) */
} ed;

/* --- commands ------------------------------------------------------------ */

struct command {
	const char *name, *alias, *args, *help;
	void (*run)(const struct command *c, char **arg, unsigned cpu); /* arg: the words, NULL-ended */
	/* Lifecycle commands: the operation and the state it needs (vm.h). */
	int (*op)(struct vm *vm, unsigned cpu);
	const char *needs;
};

static void cmd_help(const struct command *c, char **arg, unsigned cpu);
static void cmd_list(const struct command *c, char **arg, unsigned cpu);
static void cmd_stats(const struct command *c, char **arg, unsigned cpu);
static void cmd_lifecycle(const struct command *c, char **arg, unsigned cpu);
static void cmd_share(const struct command *c, char **arg, unsigned cpu);
static void cmd_balloon(const struct command *c, char **arg, unsigned cpu);
static void cmd_net(const struct command *c, char **arg, unsigned cpu);
static void cmd_exits(const struct command *c, char **arg, unsigned cpu);
static int op_pause(struct vm *vm, unsigned cpu);
static int op_resume(struct vm *vm, unsigned cpu);
static int op_kill(struct vm *vm, unsigned cpu);

/* args: "" none, "[vm]" optional, "<vm>" required; one word each. */
static const struct command commands[] = {
	{ "help", NULL, "", "this list", cmd_help, NULL, NULL },
	{ "list", NULL, "", "the VMs: state, vCPUs, memory in MiB", cmd_list, NULL, NULL },
	{ "stats", "mem", "[vm]", "memory counters as key=value, of one VM or all and the pool",
	  cmd_stats, NULL, NULL },
	{ "share", NULL, "<vm> [pages]", "sharing counters of a VM; with pages, its scan rate per slice "
	  "(0 stops scanning it)", cmd_share, NULL, NULL },
	{ "balloon", NULL, "<vm> <MiB>", "ask its guest to give MiB of its memory back (0: take it all again)",
	  cmd_balloon, NULL, NULL },
	{ "net", NULL, "[vm]", "the switch's ports: frames, bytes and drops of one VM or all", cmd_net, NULL, NULL },
	{ "exits", NULL, "[vm]", "exits by reason, and the counter ticks Quire spent on them, of one VM or all",
	  cmd_exits, NULL, NULL },
	{ "pause", NULL, "<vm>", "stop running its vCPUs", cmd_lifecycle, op_pause, "a running VM" },
	{ "resume", NULL, "<vm>", "run a paused VM again", cmd_lifecycle, op_resume, "a paused VM" },
	{ "kill", NULL, "<vm>", "power it off; its memory goes back to the pool", cmd_lifecycle,
	  op_kill, "a running or paused VM" },
	{ "restart", NULL, "<vm>", "boot it again with fresh memory (once its teardown is done)", cmd_lifecycle,
	  vm_restart, "a VM that is not starting" },
	{ NULL, NULL, NULL, NULL, NULL, NULL, NULL },
};

static unsigned long mib(u64 bytes)
{
	return (unsigned long)(bytes >> 20);
}

static unsigned long pages_mib(u32 pages)
{
	return (unsigned long)pages >> (20 - PAGE_SHIFT);
}

/* The VM in slot id, if that slot holds one. */
static struct vm *slot(unsigned id)
{
	struct vm *vm = vm_get(id);

	return vm && vm_state(vm) != VM_EMPTY ? vm : NULL;
}

static struct vm *find(const char *name)
{
	struct vm *vm = vm_find(name);

	if (!vm || vm_state(vm) == VM_EMPTY) {
		printk("quire: no VM '%s'; 'list' shows them\n", name);
		return NULL;
	}
	return vm;
}

static void cmd_help(const struct command *c, char **arg, unsigned cpu)
{
	(void)c, (void)arg, (void)cpu;
	printk("quire: monitor commands (<vm> is a name or a number from 'list'):\n");
	for (const struct command *k = commands; k->name; k++)
		printk("  %-7s %-5s  %s%s%s\n", k->name, k->args, k->help, k->alias ? "; also: " : "",
		       k->alias ? k->alias : "");
	printk("Ctrl-A three times moves the console input on, to the next VM or here.\n");
}

static void cmd_list(const struct command *c, char **arg, unsigned cpu)
{
	unsigned n = 0;

	(void)c, (void)arg, (void)cpu;
	for (unsigned id = 1; id <= MAX_VMS; id++) {
		struct vm *vm = slot(id);

		if (!vm)
			continue;
		if (!n++)
			printk(" id  name             state     vcpus  mem_mib  resident_mib  limit_mib\n");
		printk("%3u  %-15.15s  %-8s  %5u  %7lu  %12lu  %9lu\n", id, vm->name,
		       vm_state_name(vm_state(vm)), vm->cfg.vcpus, mib(vm->cfg.mem_size),
		       pages_mib(atomic_load_explicit(&vm->pool.active, memory_order_relaxed)),
		       mib(vm->cfg.resident_limit));
	}
	if (!n)
		printk("quire: no VMs\n");
}

/* One line of key=value pairs, for people and for tests that parse it. */
static void stats_line(struct vm *vm)
{
	const struct vm_pool *p = &vm->pool;

	printk("quire: stats %s guest_mib=%lu resident=%u zero=%u shared=%u swapped=%u faults=%lu "
	       "tables=%u quota=%u charged=%u cow=%lu merged=%lu volatile=%u scans=%lu scan_rate=%u "
	       "swap_outs=%lu swap_ins=%lu swap_slots=%u swap_squeezed=%lu cache_flushes=%lu blocks=%u "
	       "block_fills=%lu splits=%lu\n",
	       vm->name, mib(vm->cfg.mem_size),
	       atomic_load_explicit(&p->active, memory_order_relaxed),
	       atomic_load_explicit(&p->zero, memory_order_relaxed),
	       atomic_load_explicit(&p->shared, memory_order_relaxed),
	       atomic_load_explicit(&p->swapped, memory_order_relaxed),
	       (unsigned long)atomic_load_explicit(&p->fills, memory_order_relaxed),
	       atomic_load_explicit(&p->pgtables, memory_order_relaxed), p->quota,
	       atomic_load_explicit(&p->charged, memory_order_relaxed),
	       (unsigned long)atomic_load(&vm->share.cow), (unsigned long)atomic_load(&vm->share.merged),
	       atomic_load(&vm->share.volatile_pages), (unsigned long)atomic_load(&vm->share.scans),
	       atomic_load(&vm->share.scan_pages), (unsigned long)atomic_load(&vm->swap.outs),
	       (unsigned long)atomic_load(&vm->swap.ins), atomic_load(&vm->swap.slots),
	       (unsigned long)atomic_load(&vm->swap.squeezed), (unsigned long)atomic_load(&vm->cache_flushes),
	       atomic_load(&vm->s2.blocks), (unsigned long)atomic_load(&vm->s2.block_fills),
	       (unsigned long)atomic_load(&vm->s2.splits));
}

/* The balloon's line, if the VM has one: Quire's side, then the guest's own figures (bytes, as MiB). */
static void balloon_line(struct vm *vm, unsigned cpu)
{
	struct balloon_info b;

	balloon_info(vm, &b, cpu);
	if (!b.present)
		return;
	printk("quire: balloon %s driver=%u target_mib=%lu policy_mib=%lu actual_mib=%lu inflated=%lu deflated=%lu "
	       "reported=%lu discarded=%lu oom_deflated=%lu policy_inflates=%lu guest_stats=%u guest_free_mib=%lu "
	       "guest_avail_mib=%lu guest_total_mib=%lu guest_major_faults=%lu\n",
	       vm->name, b.driver, pages_mib(b.target), pages_mib(b.policy), pages_mib(b.actual),
	       (unsigned long)b.inflated, (unsigned long)b.deflated, (unsigned long)b.reported,
	       (unsigned long)b.discarded, (unsigned long)b.oom_deflated, (unsigned long)b.policy_inflates, b.stats_valid,
	       mib(b.stats[BALLOON_S_MEMFREE]), mib(b.stats[BALLOON_S_AVAIL]), mib(b.stats[BALLOON_S_MEMTOT]),
	       (unsigned long)b.stats[BALLOON_S_MAJFLT]);
}

/* The disk's line, if the VM has one. */
static void disk_line(struct vm *vm)
{
	struct vdisk_info d;

	vdisk_info(vm, &d);
	if (!d.present)
		return;
	printk("quire: disk %s part=%s access=%s mib=%lu driver=%u reads=%lu writes=%lu flushes=%lu read_kib=%lu "
	       "written_kib=%lu errors=%lu inflight=%u\n", vm->name, d.part, d.ro ? "ro" : "rw",
	       (unsigned long)(d.sectors >> 11), d.driver, (unsigned long)d.reads, (unsigned long)d.writes,
	       (unsigned long)d.flushes, (unsigned long)(d.read_bytes >> 10), (unsigned long)(d.written_bytes >> 10),
	       (unsigned long)d.errors, d.inflight);
}

/* A VM's switch port, if it has one. */
static bool net_line(struct vm *vm)
{
	struct vsw_stats s;
	u8 m[6];
	bool up;

	if (!vnet_info(vm, &s, m, &up))
		return false;
	printk("quire: net %s mac=%02x:%02x:%02x:%02x:%02x:%02x up=%u tx_frames=%lu tx_bytes=%lu rx_frames=%lu "
	       "rx_bytes=%lu rx_drops=%lu tx_drops=%lu flood_drops=%lu\n", vm->name, m[0], m[1], m[2], m[3], m[4], m[5],
	       up, (unsigned long)s.tx_frames, (unsigned long)s.tx_bytes, (unsigned long)s.rx_frames,
	       (unsigned long)s.rx_bytes, (unsigned long)s.rx_drops, (unsigned long)s.tx_drops,
	       (unsigned long)s.flood_drops);
	return true;
}

static void cmd_net(const struct command *c, char **arg, unsigned cpu)
{
	struct vm *vm;
	unsigned n = 0;

	(void)c;
	(void)cpu;
	if (arg[0]) {
		if ((vm = find(arg[0])) && !net_line(vm))
			printk("quire: net %s: it has no network (net = \"on\" in its config)\n", vm->name);
		return;
	}
	for (unsigned id = 1; id <= MAX_VMS; id++)
		if ((vm = slot(id)))
			n += net_line(vm);
	if (!n)
		printk("quire: net: no VM has a network\n");
}

static void cmd_balloon(const struct command *c, char **arg, unsigned cpu)
{
	struct vm *vm = find(arg[0]);
	char *end = arg[1];
	u64 want = 0;

	(void)c;
	if (!vm)
		return;
	while (end && *end >= '0' && *end <= '9' && want <= mib(vm->cfg.mem_size))
		want = want * 10 + (u64)(*end++ - '0');
	if (!arg[1] || end == arg[1] || *end || want > mib(vm->cfg.mem_size)) {
		printk("quire: balloon %s: MiB must be a number from 0 to its %lu MiB of memory, not '%s'\n", vm->name,
		       mib(vm->cfg.mem_size), arg[1] ? arg[1] : "");
		return;
	}
	if (balloon_set_target(vm, (u32)(want << (20 - PAGE_SHIFT)))) {
		printk("quire: balloon %s: it has no balloon (balloon = \"on\" in its config)\n", vm->name);
		return;
	}
	printk("quire: balloon %s: asking its guest to hold %lu MiB in its balloon\n", vm->name, (unsigned long)want);
	balloon_line(vm, cpu);
}

static void swap_line(void)
{
	struct swap_stats st;

	swap_stats(&st);
	printk("quire: swap slots=%lu used=%lu outs=%lu ins=%lu out_reqs=%lu in_reqs=%lu zero=%lu waits=%lu errors=%lu "
	       "out_us=%lu in_us=%lu in_cpu_ticks=%lu clean=%lu ahead=%lu ahead_used=%lu lost=%lu\n",
	       (unsigned long)st.slots, (unsigned long)st.used, (unsigned long)st.outs, (unsigned long)st.ins,
	       (unsigned long)st.out_reqs, (unsigned long)st.in_reqs,
	       (unsigned long)st.zero, (unsigned long)st.waits, (unsigned long)st.errors,
	       (unsigned long)st.out_us, (unsigned long)st.in_us, (unsigned long)st.in_cpu_ticks,
	       (unsigned long)st.clean, (unsigned long)st.ahead, (unsigned long)st.ahead_used,
	       (unsigned long)st.lost);
}

static void share_line(void)
{
	struct share_stats st;

	share_stats(&st);
	printk("quire: share shared=%u sharing=%u zero=%u saved=%u volatile=%u cow=%lu scans=%lu scanned=%lu "
	       "merged=%lu scan_us=%lu hash=%s\n",
	       st.shared, st.sharing, st.zero, st.saved, st.volatile_pages, (unsigned long)st.cow,
	       (unsigned long)st.scans, (unsigned long)st.scanned, (unsigned long)st.merged,
	       (unsigned long)clock_ticks_us(st.scan_ticks), share_hash_name());
}

static void cmd_share(const struct command *c, char **arg, unsigned cpu)
{
	struct vm *vm = find(arg[0]);
	char *end = arg[1];
	unsigned long pages = 0;

	(void)c, (void)cpu;
	if (!vm)
		return;
	if (arg[1]) {
		while (*end >= '0' && *end <= '9' && pages <= 65536)
			pages = pages * 10 + (unsigned long)(*end++ - '0');
		if (end == arg[1] || *end || pages > 65536) {
			printk("quire: share %s: pages must be a number from 0 to 65536, not '%s'\n", vm->name, arg[1]);
			return;
		}
		if (share_set_rate(vm, (u32)pages)) {
			printk("quire: share %s: cannot, its sharing is off\n", vm->name);
			return;
		}
		printk("quire: share %s: scanning %lu pages per slice\n", vm->name, pages);
	}
	stats_line(vm);
}

static void cmd_exits(const struct command *c, char **arg, unsigned cpu)
{
	struct vm *vm;
	unsigned n = 0;

	(void)c, (void)cpu;
	if (arg[0]) {
		if ((vm = find(arg[0])))
			exit_table_print(vm, clock_ticks());
		return;
	}
	for (unsigned id = 1; id <= MAX_VMS; id++)
		if ((vm = slot(id)) && ++n)
			exit_table_print(vm, clock_ticks());
	if (!n)
		printk("quire: no VMs\n");
}

static void cmd_stats(const struct command *c, char **arg, unsigned cpu)
{
	const struct pool *vmm = NULL;
	unsigned n = 0;
	struct vm *vm;

	(void)c;
	if (arg[0]) {
		if ((vm = find(arg[0]))) {
			stats_line(vm);
			balloon_line(vm, cpu);
			disk_line(vm);
		}
		return;
	}
	for (unsigned id = 1; id <= MAX_VMS; id++) {
		if (!(vm = slot(id)))
			continue;
		stats_line(vm);
		balloon_line(vm, cpu);
		disk_line(vm);
		vmm = vmm ? vmm : vm->pool.vmm;
		n++;
	}
	if (!n)
		printk("quire: no VMs\n");
	/* Every VM draws on the one VMM pool; a VM is the way to it without an arch hook. */
	if (vmm) {
		u32 free = pool_free_pages(vmm);
		struct pool_zero_stats z;

		pool_zero_stats(vmm, &z);
		share_line();
		swap_line();
		printk("quire: pool free=%u free_mib=%lu used=%u prezeroed=%u prezero_cap=%u took_prezeroed=%lu "
		       "zeroed_on_take=%lu zeroed_idle=%lu runs=%u zeroed_runs=%u t_us=%lu\n", free, pages_mib(free),
		       vmm->ndesc - free, z.prezeroed, z.cap, (unsigned long)z.took_prezeroed,
		       (unsigned long)z.zeroed_on_take, (unsigned long)z.zeroed_idle, z.runs, z.zeroed_runs,
		       (unsigned long)clock_us());
	}
}

static void cmd_lifecycle(const struct command *c, char **arg, unsigned cpu)
{
	struct vm *vm = find(arg[0]);
	int rc;

	if (!vm)
		return;
	rc = c->op(vm, cpu);
	if (!rc && c->op == vm_restart && (vm_state(vm) == VM_STOPPING || vm_state(vm) == VM_REAPING))
		printk("quire: %s %s: ok, it is %s and restarts when its teardown is done\n", c->name, vm->name,
		       vm_state_name(vm_state(vm)));
	else if (!rc)
		printk("quire: %s %s: ok, it is %s now\n", c->name, vm->name, vm_state_name(vm_state(vm)));
	else if (rc == -EINVAL)
		printk("quire: %s %s: cannot, it is %s (%s needs %s)\n", c->name, vm->name,
		       vm_state_name(vm_state(vm)), c->name, c->needs);
	else
		printk("quire: %s %s: failed (error %d)\n", c->name, vm->name, rc);
}

static int op_pause(struct vm *vm, unsigned cpu)
{
	(void)cpu;
	return vm_pause(vm);
}

static int op_resume(struct vm *vm, unsigned cpu)
{
	(void)cpu;
	return vm_resume(vm);
}

static int op_kill(struct vm *vm, unsigned cpu)
{
	(void)cpu;
	return vm_kill(vm);
}


static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

void monitor_run(const char *line, unsigned cpu)
{
	char copy[MONITOR_LINE];
	char *word[MAX_ARGS + 3];
	size_t len = strnlen(line, sizeof(copy) - 1);
	unsigned n = 0;

	memcpy(copy, line, len);
	copy[len] = '\0';
	/* Split in place; one word more than any command takes is enough to refuse it. */
	for (char *p = copy; n < ARRAY_SIZE(word) - 1;) {
		while (is_space(*p))
			p++;
		if (!*p)
			break;
		word[n++] = p;
		while (*p && !is_space(*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	if (!n)
		return;
	word[n] = NULL;
	for (const struct command *c = commands; c->name; c++) {
		unsigned min = 0, max = 0;

		for (const char *a = c->args; *a; a++) {
			min += *a == '<';
			max += *a == '<' || *a == '[';
		}

		if (strcmp(word[0], c->name) && (!c->alias || strcmp(word[0], c->alias)))
			continue;
		if (n - 1 < min || n - 1 > max)
			printk("quire: usage: %s%s%s\n", c->name, max ? " " : "", c->args);
		else
			c->run(c, word + 1, cpu);
		return;
	}
	printk("quire: unknown command '%s'; 'help' lists them\n", word[0]);
}

/* --- the line editor ----------------------------------------------------- */

/* Lock held: make the prompt line the open line, drawing it again if anyone printed since. */
static void prompt_line(void)
{
	if (console_line_owner() != CONSOLE_MONITOR) {
		console_puts(CONSOLE_MONITOR, MONITOR_PROMPT);
		console_puts(CONSOLE_MONITOR, ed.buf);
	}
}

/* Show what a keystroke did, on the prompt line. */
static void echo(const char *s)
{
	console_lock();
	prompt_line();
	console_puts(CONSOLE_MONITOR, s);
	console_unlock();
}

static void clear(void)
{
	ed.len = 0;
	ed.buf[0] = '\0';
}

static void show_prompt(void)
{
	console_lock();
	prompt_line();
	console_unlock();
}

void monitor_enter(void)
{
	clear();
	ed.after_cr = false;
	ed.esc = ESC_NONE;
	console_lock();
	if (console_line_owner() == CONSOLE_MONITOR)
		console_puts(CONSOLE_MONITOR, "\n");
	prompt_line();
	console_unlock();
}

static void enter(unsigned cpu)
{
	char line[MONITOR_LINE];

	memcpy(line, ed.buf, sizeof(line));
	echo("\n");
	clear();
	monitor_run(line, cpu);
	show_prompt();
}

static void erase_line(void)
{
	console_lock();
	prompt_line();
	for (unsigned i = 0; i < ed.len; i++)
		console_puts(CONSOLE_MONITOR, "\b \b");
	console_unlock();
	clear();
}

/* Arrow keys and the like send ESC [ ... final or ESC O final: swallow them whole. */
static bool in_escape(unsigned char u)
{
	switch (ed.esc) {
	case ESC_START:
		ed.esc = u == '[' || u == 'O' ? ESC_CSI : ESC_NONE;
		return true;
	case ESC_CSI:
		/* Parameters and intermediates run 0x20-0x3f; a final byte 0x40-0x7e ends it. */
		if (u < 0x20 || u > 0x3f)
			ed.esc = ESC_NONE;
		return u >= 0x20 && u <= 0x7e;
	default:
		return false;
	}
}

void monitor_input(char c, unsigned cpu)
{
	unsigned char u = (unsigned char)c;
	bool after_cr = ed.after_cr;

	ed.after_cr = u == '\r';
	if (in_escape(u))
		return;
	switch (u) {
	case '\n':
		if (after_cr)
			return; /* the LF of a CR LF */
		/* fall through */
	case '\r':
		enter(cpu);
		return;
	case '\b':
	case DEL:
		if (ed.len) {
			echo("\b \b");
			ed.buf[--ed.len] = '\0';
		}
		return;
	case CTRL('U'):
		erase_line();
		return;
	case CTRL('C'):
		echo("^C\n");
		clear();
		show_prompt();
		return;
	case ESC:
		ed.esc = ESC_START;
		return;
	}
	/* Printable ASCII only; past the end of the line, typing just stops. */
	if (u < 0x20 || u > 0x7e || ed.len >= sizeof(ed.buf) - 1)
		return;
	echo((char[]){ c, '\0' });
	ed.buf[ed.len++] = c;
	ed.buf[ed.len] = '\0';
}
