/*
 * The monitor against fake VMs and a captured screen: every command with its
 * errors (monitor_run), then the line editor (monitor_input): echo, CR/LF,
 * backspace, Ctrl-U, Ctrl-C, escape sequences, overlong lines, the prompt
 * drawn again after other output, and random bytes.
 *
 * VMs: alpha (1), beta (2), slot 3 empty, gamma (4) stopped, slot 5
 * created but VM_EMPTY ("ghost").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <quire/console.h>
#include <quire/errno.h>
#include <quire/monitor.h>

#include "fake_vm.h"

static struct vm *alpha, *beta, *gamma_;

static void type(const char *s)
{
	for (; *s; s++)
		monitor_input(*s, 3);
}

static void run(const char *line)
{
	monitor_run(line, 3);
}

static bool starts_with(const char *s, const char *head)
{
	return !strncmp(s, head, strlen(head));
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && !strcmp(s + n - t, tail);
}

static int setup(void **state)
{
	(void)state;
	fake_vm_reset();
	alpha = fake_vm_add(1, "alpha");
	beta = fake_vm_add(2, "beta");
	gamma_ = fake_vm_add(4, "gamma");
	fake_state[3] = VM_STOPPED;
	fake_vm_add(5, "ghost");
	fake_state[4] = VM_EMPTY;
	atomic_store(&alpha->pool.active, 2560);
	atomic_store(&alpha->pool.pgtables, 12);
	atomic_store(&alpha->pool.charged, 2600);
	atomic_store(&alpha->pool.fills, 5678);
	atomic_store(&alpha->pool.zero, 3);
	atomic_store(&alpha->pool.shared, 4);
	atomic_store(&alpha->pool.swapped, 5);
	alpha->pool.quota = 41000;
	beta->cfg.vcpus = 1;
	beta->cfg.mem_size = 64ULL << 20;
	beta->cfg.resident_limit = 32ULL << 20;
	fake_free_pages = 1000;
	screen_attach();
	monitor_enter();
	screen_clear();
	return 0;
}

/* For the commands: as after Enter, no prompt line open. */
static int setup_run(void **state)
{
	setup(state);
	screen_attach();
	return 0;
}

/* ---- commands --------------------------------------------------------- */

static void help_lists_every_command(void **state)
{
	static const char *const names[] = { "help", "list", "stats", "exits", "[vm]", "mem", "pause",
					     "resume", "kill", "restart", "<vm>", "Ctrl-A" };

	(void)state;
	run("help");
	assert_true(starts_with(screen, "quire: monitor commands"));
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strstr(screen, names[i]))
			fail_msg("help does not mention %s:\n%s", names[i], screen);
}

static void list_shows_every_vm(void **state)
{
	(void)state;
	run("list");
	assert_string_equal(screen,
		" id  name             state     vcpus  mem_mib  resident_mib  limit_mib\r\n"
		"  1  alpha            running       2      256            10        128\r\n"
		"  2  beta             running       1       64             0         32\r\n"
		"  4  gamma            stopped       2      256             0        128\r\n");
}

static void list_without_vms(void **state)
{
	(void)state;
	fake_vm_reset();
	run("list");
	assert_string_equal(screen, "quire: no VMs\r\n");
	screen_clear();
	run("stats");
	assert_string_equal(screen, "quire: no VMs\r\n");
}

static void stats_of_all_and_the_pool(void **state)
{
	(void)state;
	run("stats");
	assert_string_equal(screen,
		"quire: stats alpha guest_mib=256 resident=2560 zero=3 shared=4 swapped=5 faults=5678 "
		"tables=12 quota=41000 charged=2600 cow=0 merged=0 volatile=0 scans=0 scan_rate=64 "
		"swap_outs=0 swap_ins=0 swap_slots=0 swap_squeezed=0 cache_flushes=0 blocks=0 block_fills=0 splits=0\r\n"
		"quire: stats beta guest_mib=64 resident=0 zero=0 shared=0 swapped=0 faults=0 "
		"tables=0 quota=33000 charged=0 cow=0 merged=0 volatile=0 scans=0 scan_rate=64 "
		"swap_outs=0 swap_ins=0 swap_slots=0 swap_squeezed=0 cache_flushes=0 blocks=0 block_fills=0 splits=0\r\n"
		"quire: stats gamma guest_mib=256 resident=0 zero=0 shared=0 swapped=0 faults=0 "
		"tables=0 quota=33000 charged=0 cow=0 merged=0 volatile=0 scans=0 scan_rate=64 "
		"swap_outs=0 swap_ins=0 swap_slots=0 swap_squeezed=0 cache_flushes=0 blocks=0 block_fills=0 splits=0\r\n"
		"quire: share shared=11 sharing=22 zero=33 saved=43 volatile=0 cow=0 scans=5 scanned=0 "
		"merged=0 scan_us=1008 hash=fake\r\n"
		"quire: swap slots=1000 used=12 outs=34 ins=22 out_reqs=0 in_reqs=0 zero=5 waits=40 errors=0 out_us=0 in_us=0 "
		"in_cpu_ticks=0 clean=0 ahead=0 ahead_used=0 lost=0\r\n"
		"quire: pool free=1000 free_mib=3 used=4000 prezeroed=300 prezero_cap=4096 took_prezeroed=2000 "
		"zeroed_on_take=600 zeroed_idle=2300 runs=7 zeroed_runs=2 t_us=1234567\r\n");
}

/* 'exits': the two vCPUs' counters summed per reason, only reasons seen, a total that adds up. */
static void exits_of_one_vm(void **state)
{
	(void)state;
	alpha->vcpu[0]->prof.k[EXIT_FILL] = (struct exit_stat){ 100, 4000 };
	alpha->vcpu[1]->prof.k[EXIT_FILL] = (struct exit_stat){ 50, 2000 };
	alpha->vcpu[1]->prof.k[EXIT_MMIO_PL011] = (struct exit_stat){ 3, 10 };
	alpha->vcpu[0]->prof.idle_ticks = 7;
	alpha->vcpu[1]->prof.idle_work_ticks = 9;
	atomic_store(&alpha->first_entry, 1000);
	screen_clear();
	run("exits alpha");
	assert_string_equal(screen,
		"quire: exits alpha counter=77160000 first_entry=1000 freq=62500000 idle_ticks=7 idle_work_ticks=9\r\n"
		"  reason             exits        ticks ticks/exit\r\n"
		"  fill                 150         6000         40.0\r\n"
		"  mmio-pl011             3           10          3.3\r\n"
		"  total                153         6010\r\n");
}

/* 'exits' alone: every VM that is not empty (a stopped one keeps its last life's table); errors. */
static void exits_of_all_and_errors(void **state)
{
	(void)state;
	beta->vcpu[0]->prof.k[EXIT_HVC] = (struct exit_stat){ 1, 2 };
	screen_clear();
	run("exits");
	assert_non_null(strstr(screen, "quire: exits alpha "));
	assert_non_null(strstr(screen, "quire: exits beta "));
	assert_non_null(strstr(screen, "quire: exits gamma "));
	assert_null(strstr(screen, "ghost"));
	assert_non_null(strstr(screen, "  hvc                    1            2          2.0\r\n"));
	/* A VM being built: its vCPU count set, its vCPUs not yet (a restart racing the command). */
	gamma_->vcpu[1] = NULL;
	fake_state[3] = VM_STARTING;
	screen_clear();
	run("exits gamma");
	assert_non_null(strstr(screen, "quire: exits gamma "));
	screen_clear();
	run("exits nosuch");
	assert_string_equal(screen, "quire: no VM 'nosuch'; 'list' shows them\r\n");
}

/* 'share': a VM's counters, and its scan rate set; refused for bad numbers and VMs that never share. */
static void share_rate(void **state)
{
	(void)state;
	screen_clear();
	run("share alpha 128");
	assert_true(starts_with(screen, "quire: share alpha: scanning 128 pages per slice\r\nquire: stats alpha "));
	assert_true(ends_with(screen, "scan_rate=128 swap_outs=0 swap_ins=0 swap_slots=0 swap_squeezed=0 cache_flushes=0 blocks=0 block_fills=0 splits=0\r\n"));
	assert_int_equal(fake_rate_set, 128);
	screen_clear();
	run("share 2");
	assert_true(starts_with(screen, "quire: stats beta "));
	screen_clear();
	run("share alpha 0");
	assert_int_equal(fake_rate_set, 0);
	fake_rate_set = -1;
	screen_clear();
	run("share alpha 65537");
	assert_string_equal(screen, "quire: share alpha: pages must be a number from 0 to 65536, not '65537'\r\n");
	screen_clear();
	run("share alpha 12x");
	assert_string_equal(screen, "quire: share alpha: pages must be a number from 0 to 65536, not '12x'\r\n");
	screen_clear();
	run("share alpha 99999999999999999999");
	assert_true(starts_with(screen, "quire: share alpha: pages must be a number"));
	assert_int_equal(fake_rate_set, -1);
	fake_vms[1].cfg.sharing = SHARE_OFF;
	screen_clear();
	run("share beta 10");
	assert_string_equal(screen, "quire: share beta: cannot, its sharing is off\r\n");
	screen_clear();
	run("share");
	assert_string_equal(screen, "quire: usage: share <vm> [pages]\r\n");
	screen_clear();
	run("share alpha 1 2");
	assert_string_equal(screen, "quire: usage: share <vm> [pages]\r\n");
	screen_clear();
	run("share nosuch 5");
	assert_true(starts_with(screen, "quire: no VM 'nosuch'"));
}

/* The line parses as key=value pairs. */
static void stats_parse(void **state)
{
	unsigned long mib, res, zero, shared, swapped, faults, tables, quota, charged;
	char name[16];

	(void)state;
	run("stats alpha");
	assert_int_equal(sscanf(screen,
				"quire: stats %15s guest_mib=%lu resident=%lu zero=%lu shared=%lu swapped=%lu "
				"faults=%lu tables=%lu quota=%lu charged=%lu",
				name, &mib, &res, &zero, &shared, &swapped, &faults, &tables, &quota, &charged),
			 10);
	assert_string_equal(name, "alpha");
	assert_int_equal(res, 2560);
	assert_int_equal(faults, 5678);
	assert_int_equal(charged, 2600);
	assert_null(strstr(screen, "beta"));
	assert_null(strstr(screen, "pool"));
}

static void stats_by_number_and_alias(void **state)
{
	(void)state;
	run("mem 2");
	assert_true(starts_with(screen, "quire: stats beta "));
	assert_int_equal(strchr(screen, '\n') - screen + 1, (long)nscreen);
	screen_clear();
	run("  stats\t 4  ");
	assert_true(starts_with(screen, "quire: stats gamma "));
}

static void stats_errors(void **state)
{
	(void)state;
	run("stats zeta");
	assert_string_equal(screen, "quire: no VM 'zeta'; 'list' shows them\r\n");
	screen_clear();
	run("stats 3"); /* an empty slot */
	assert_string_equal(screen, "quire: no VM '3'; 'list' shows them\r\n");
	screen_clear();
	run("stats ghost"); /* a slot that is VM_EMPTY */
	assert_string_equal(screen, "quire: no VM 'ghost'; 'list' shows them\r\n");
	screen_clear();
	run("stats alpha beta");
	assert_string_equal(screen, "quire: usage: stats [vm]\r\n");
	assert_string_equal(fake_calls, "");
}

static void pause_and_resume(void **state)
{
	(void)state;
	run("pause alpha");
	assert_string_equal(screen, "quire: pause alpha: ok, it is paused now\r\n");
	assert_int_equal(fake_state[0], VM_PAUSED);
	screen_clear();
	run("pause 1");
	assert_string_equal(screen, "quire: pause alpha: cannot, it is paused (pause needs a running VM)\r\n");
	screen_clear();
	run("resume 1");
	assert_string_equal(screen, "quire: resume alpha: ok, it is running now\r\n");
	screen_clear();
	run("resume alpha");
	assert_string_equal(screen, "quire: resume alpha: cannot, it is running (resume needs a paused VM)\r\n");
	assert_string_equal(fake_calls, "pause:alpha pause:alpha resume:alpha resume:alpha ");
}

static void kill_and_restart(void **state)
{
	(void)state;
	run("kill beta");
	assert_string_equal(screen, "quire: kill beta: ok, it is stopping now\r\n");
	screen_clear();
	run("kill beta");
	assert_string_equal(screen,
			    "quire: kill beta: cannot, it is stopping (kill needs a running or paused VM)\r\n");
	screen_clear();
	run("restart beta");
	assert_string_equal(screen, "quire: restart beta: ok, it is stopping and restarts when its teardown "
				    "is done\r\n");
	screen_clear();
	fake_state[1] = VM_STARTING;
	run("restart beta");
	assert_string_equal(screen, "quire: restart beta: cannot, it is starting "
				    "(restart needs a VM that is not starting)\r\n");
	screen_clear();
	run("restart gamma");
	assert_string_equal(screen, "quire: restart gamma: ok, it is running now\r\n");
	/* The CPU the monitor runs on is passed on. */
	assert_string_equal(fake_calls, "kill:beta kill:beta restart:beta/cpu3 restart:beta/cpu3 restart:gamma/cpu3 ");
}

static void lifecycle_failure_is_reported(void **state)
{
	(void)state;
	fake_fail_rc = -ENOMEM;
	run("restart gamma");
	assert_string_equal(screen, "quire: restart gamma: failed (error -12)\r\n");
}

static void lifecycle_usage_and_unknown_vm(void **state)
{
	static const char *const cmds[] = { "pause", "resume", "kill", "restart" };
	char line[64], want[96];

	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		screen_clear();
		run(cmds[i]);
		snprintf(want, sizeof(want), "quire: usage: %s <vm>\r\n", cmds[i]);
		assert_string_equal(screen, want);
		screen_clear();
		snprintf(line, sizeof(line), "%s alpha beta", cmds[i]);
		run(line);
		assert_string_equal(screen, want);
		screen_clear();
		snprintf(line, sizeof(line), "%s 99", cmds[i]);
		run(line);
		assert_string_equal(screen, "quire: no VM '99'; 'list' shows them\r\n");
	}
	assert_string_equal(fake_calls, "");
}

static void unknown_and_empty(void **state)
{
	(void)state;
	run("frobnicate now");
	assert_string_equal(screen, "quire: unknown command 'frobnicate'; 'help' lists them\r\n");
	screen_clear();
	run("LIST");
	assert_string_equal(screen, "quire: unknown command 'LIST'; 'help' lists them\r\n");
	screen_clear();
	run("help me");
	assert_string_equal(screen, "quire: usage: help\r\n");
	screen_clear();
	run("");
	run("   \t ");
	assert_string_equal(screen, "");
}

/* monitor_run takes any string: longer ones are cut, never overflowed. */
static void overlong_run_line(void **state)
{
	char line[4000];

	(void)state;
	memset(line, 'k', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	run(line);
	assert_true(starts_with(screen, "quire: unknown command 'kkk"));
	assert_true(strlen(screen) < 200);
	screen_clear();
	memset(line, ' ', 200);
	strcpy(line + 200, "list");
	run(line); /* "list" is past the cut */
	assert_string_equal(screen, "");
}

/* ---- the line editor -------------------------------------------------- */

static void enter_shows_the_prompt(void **state)
{
	(void)state;
	screen_attach();
	monitor_enter();
	assert_string_equal(screen, "quire> ");
	/* Entered again on its own prompt line: a fresh one. */
	screen_clear();
	monitor_enter();
	assert_string_equal(screen, "\r\nquire> ");
}

static void typing_echoes_and_cr_runs(void **state)
{
	(void)state;
	type("stats 2");
	assert_string_equal(screen, "stats 2");
	type("\r");
	assert_true(starts_with(screen, "stats 2\r\nquire: stats beta "));
	assert_true(ends_with(screen, "scans=0 scan_rate=64 swap_outs=0 swap_ins=0 swap_slots=0 swap_squeezed=0 cache_flushes=0 blocks=0 block_fills=0 splits=0\r\nquire> "));
}

/* CR LF is one Enter; LF alone is one too; a second CR is an empty line. */
static void cr_lf_handling(void **state)
{
	(void)state;
	type("frob\r\n");
	assert_string_equal(screen, "frob\r\nquire: unknown command 'frob'; 'help' lists them\r\nquire> ");
	screen_clear();
	type("frob\n");
	assert_string_equal(screen, "frob\r\nquire: unknown command 'frob'; 'help' lists them\r\nquire> ");
	screen_clear();
	type("\r\r\n\n");
	assert_string_equal(screen, "\r\nquire> \r\nquire> \r\nquire> ");
}

static void backspace_and_del(void **state)
{
	(void)state;
	type("lisx\x7f");
	assert_string_equal(screen, "lisx\b \b");
	type("t\b\bst\r");
	assert_true(starts_with(screen, "lisx\b \bt\b \b\b \bst\r\n id  name"));
	/* Nothing to take back: nothing happens. */
	screen_clear();
	type("\x7f\b\x7f");
	assert_string_equal(screen, "");
}

static void ctrl_u_erases_the_line(void **state)
{
	(void)state;
	type("kill alpha\x15");
	assert_string_equal(screen, "kill alpha\b \b\b \b\b \b\b \b\b \b\b \b\b \b\b \b\b \b\b \b");
	type("list\r");
	assert_string_equal(fake_calls, "");
	assert_non_null(strstr(screen, "  1  alpha "));
}

static void ctrl_c_abandons_the_line(void **state)
{
	(void)state;
	type("kill alpha\x03");
	assert_string_equal(screen, "kill alpha^C\r\nquire> ");
	type("\r");
	assert_string_equal(fake_calls, "");
}

/* Arrow keys (ESC [ A), longer CSI (ESC [ 1 ; 5 C), SS3 (ESC O P) and other controls: nothing. */
static void escape_sequences_and_controls_ignored(void **state)
{
	(void)state;
	type("\x1b[A\x1b[1;5C\x1bOP\x1bx\x01\x02\t\x80\xff" "list\x1b[D\r");
	assert_true(starts_with(screen, "list\r\n id  name"));
}

/* Typing stops at the end of the line: what is shown is what runs. */
static void overlong_typing_stops(void **state)
{
	char want[MONITOR_LINE + 64];

	(void)state;
	for (int i = 0; i < 500; i++)
		monitor_input('a', 0);
	assert_int_equal(nscreen, MONITOR_LINE - 1);
	assert_int_equal(strspn(screen, "a"), MONITOR_LINE - 1);
	screen_clear();
	type("\r");
	snprintf(want, sizeof(want), "\r\nquire: unknown command '%.*s'; 'help' lists them\r\nquire> ",
		 MONITOR_LINE - 1,
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_string_equal(screen, want);
	/* And the editor works again at once. */
	screen_clear();
	type("list\r");
	assert_true(starts_with(screen, "list\r\n id"));
}

/* Others printed over the prompt line: the next keystroke draws it again, then echoes. */
static void prompt_drawn_again_after_other_output(void **state)
{
	(void)state;
	type("li");
	printk("quire: beta powered off\n");
	type("s");
	assert_string_equal(screen, "li\r\nquire: beta powered off\r\nquire> lis");
	/* A Quire line ends the prompt line first. */
	screen_clear();
	printk("quire: gamma restarted\n");
	assert_string_equal(screen, "\r\nquire: gamma restarted\r\n");
	screen_clear();
	type("t\r");
	assert_true(starts_with(screen, "quire> list\r\n id"));
}

/* The command output and the next prompt, with the command line shown once. */
static void enter_after_other_output_shows_the_line(void **state)
{
	(void)state;
	type("frob");
	printk("quire: tick\n");
	type("\r");
	assert_string_equal(screen, "frob\r\nquire: tick\r\nquire> frob\r\n"
				    "quire: unknown command 'frob'; 'help' lists them\r\nquire> ");
}

/* Random bytes, and random mixes of command words: no crash, no overflow (ASan, UBSan). */
static void random_input(void **state)
{
	static const char *const words[] = { "help", "list", "stats", "mem", "pause", "resume", "kill",
					     "restart", "alpha", "beta", "gamma", "1", "2", "3", "4",
					     "ghost", " ", "\t", "\r", "\n", "\r\n", "\x7f", "\x15",
					     "\x03", "\x1b[", "\x1b" };
	(void)state;
	srand(1234);
	for (long i = 0; i < 400000; i++) {
		if (i % 4096 == 0)
			screen_clear();
		if (rand() % 3)
			monitor_input((char)rand(), (unsigned)i);
		else
			type(words[rand() % (sizeof(words) / sizeof(words[0]))]);
		if (i % 5000 == 0) {
			for (unsigned k = 0; k < 5; k++)
				fake_state[k] = (enum vm_state)(rand() % 5);
			fake_fail_rc = rand() % 4 ? 0 : -ENOMEM;
			fake_calls[0] = '\0';
		}
	}
	/* Still in order afterwards. */
	fake_fail_rc = 0;
	type("\x15\x03");
	screen_clear();
	type("help\r");
	assert_true(starts_with(screen, "help\r\nquire: monitor commands"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(help_lists_every_command, setup_run),
		cmocka_unit_test_setup(list_shows_every_vm, setup_run),
		cmocka_unit_test_setup(list_without_vms, setup_run),
		cmocka_unit_test_setup(stats_of_all_and_the_pool, setup_run),
		cmocka_unit_test_setup(stats_parse, setup_run),
		cmocka_unit_test_setup(share_rate, setup_run),
		cmocka_unit_test_setup(exits_of_one_vm, setup_run),
		cmocka_unit_test_setup(exits_of_all_and_errors, setup_run),
		cmocka_unit_test_setup(stats_by_number_and_alias, setup_run),
		cmocka_unit_test_setup(stats_errors, setup_run),
		cmocka_unit_test_setup(pause_and_resume, setup_run),
		cmocka_unit_test_setup(kill_and_restart, setup_run),
		cmocka_unit_test_setup(lifecycle_failure_is_reported, setup_run),
		cmocka_unit_test_setup(lifecycle_usage_and_unknown_vm, setup_run),
		cmocka_unit_test_setup(unknown_and_empty, setup_run),
		cmocka_unit_test_setup(overlong_run_line, setup_run),
		cmocka_unit_test_setup(enter_shows_the_prompt, setup),
		cmocka_unit_test_setup(typing_echoes_and_cr_runs, setup),
		cmocka_unit_test_setup(cr_lf_handling, setup),
		cmocka_unit_test_setup(backspace_and_del, setup),
		cmocka_unit_test_setup(ctrl_u_erases_the_line, setup),
		cmocka_unit_test_setup(ctrl_c_abandons_the_line, setup),
		cmocka_unit_test_setup(escape_sequences_and_controls_ignored, setup),
		cmocka_unit_test_setup(overlong_typing_stops, setup),
		cmocka_unit_test_setup(prompt_drawn_again_after_other_output, setup),
		cmocka_unit_test_setup(enter_after_other_output_shows_the_line, setup),
		cmocka_unit_test_setup(random_input, setup),
	};

	return cmocka_run_group_tests_name("monitor", tests, NULL, NULL);
}
