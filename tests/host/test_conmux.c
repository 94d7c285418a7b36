/*
 * The console multiplexer against fake VMs and a captured screen: prefixes,
 * the VM with the input streaming while the others are held a line at a
 * time, lines ended when output interleaves (Quire's own printk too), the
 * flush on a focus switch, Ctrl-A three times around the VMs and the
 * monitor, one or two Ctrl-As passed on, flow control, and random bytes.
 *
 * VMs: alpha (1), beta (2), slot 3 empty, gamma (4), slot 5 created but
 * VM_EMPTY. alpha has the input at the start of every test. The locked
 * test and then the raw one (no prefix) run last: neither can be turned off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <quire/conmux.h>
#include <quire/console.h>

#include "fake_vm.h"

#define SWITCH_TO(name) "quire: console input goes to " name " (Ctrl-A three times to switch)\r\n"
#define SWITCH_TO_MONITOR "quire: console input goes to the monitor (type 'help')\r\n"

static struct vm *alpha, *beta, *gamma_;

static void out(struct vm *vm, const char *s)
{
	for (; *s; s++)
		conmux_vm_output(vm, *s);
}

/* Two VMs writing byte by byte in turns. */
static void out_interleaved(struct vm *va, const char *a, struct vm *vb, const char *b)
{
	while (*a || *b) {
		if (*a)
			conmux_vm_output(va, *a++);
		if (*b)
			conmux_vm_output(vb, *b++);
	}
}

static void type(const char *s)
{
	for (; *s; s++)
		conmux_input(*s, 3);
}

static void escape(void)
{
	type("\x01\x01\x01");
}

/* Forget every VM's line, then start with alpha having the input. */
static int setup(void **state)
{
	(void)state;
	screen_attach();
	for (unsigned id = 1; id <= MAX_VMS; id++) {
		struct vm tmp = { .id = id };

		conmux_vm_reset(&tmp);
	}
	fake_vm_reset();
	alpha = fake_vm_add(1, "alpha");
	beta = fake_vm_add(2, "beta");
	gamma_ = fake_vm_add(4, "gamma");
	fake_vm_add(5, "ghost");
	fake_state[4] = VM_EMPTY;
	conmux_start(false);
	conmux_input('\0', 0); /* a Ctrl-A left over from a previous test goes with it */
	memset(fake_nrx, 0, sizeof(fake_nrx));
	screen_attach();
	return 0;
}

static void start_announces_the_escape(void **state)
{
	(void)state;
	conmux_start(false);
	assert_string_equal(screen, SWITCH_TO("alpha"));
}

static void start_without_vms_goes_to_the_monitor(void **state)
{
	(void)state;
	fake_vm_reset();
	conmux_start(false);
	assert_string_equal(screen, SWITCH_TO_MONITOR "quire> ");
	/* Around and around: there is nothing else. */
	screen_clear();
	escape();
	assert_string_equal(screen, "\r\n" SWITCH_TO_MONITOR "quire> ");
}

/* quire.input=monitor: no VM streams, so every VM's lines come out whole. */
static void start_at_the_monitor_holds_every_line(void **state)
{
	(void)state;
	conmux_start(true);
	assert_string_equal(screen, SWITCH_TO_MONITOR "quire> ");
	screen_clear();
	out_interleaved(alpha, "alpha line\n", beta, "beta line\n");
	assert_string_equal(screen, "\r\n[beta] beta line\r\n[alpha] alpha line\r\n");
}

static void focused_vm_streams(void **state)
{
	(void)state;
	out(alpha, "~ # ");
	assert_string_equal(screen, "[alpha] ~ # ");
	out(alpha, "l");
	assert_string_equal(screen, "[alpha] ~ # l");
	out(alpha, "s\r\n");
	assert_string_equal(screen, "[alpha] ~ # ls\r\n");
}

static void others_are_line_buffered(void **state)
{
	(void)state;
	out(beta, "booting");
	out(gamma_, "starting");
	assert_string_equal(screen, "");
	out(beta, " done\r\n");
	assert_string_equal(screen, "[beta] booting done\r\n");
	out(gamma_, "\r\n");
	assert_string_equal(screen, "[beta] booting done\r\n[gamma] starting\r\n");
}

/* Held lines from VMs writing byte by byte in turns come out whole. */
static void interleaved_bytes_never_shred(void **state)
{
	(void)state;
	out_interleaved(beta, "beta line one\r\n", gamma_, "gamma line one, longer\r\n");
	assert_string_equal(screen, "[beta] beta line one\r\n[gamma] gamma line one, longer\r\n");
}

static void line_ends_become_crlf(void **state)
{
	(void)state;
	out(beta, "bare\nlf\n");
	out(beta, "cr\r\r\n");
	assert_string_equal(screen, "[beta] bare\r\n[beta] lf\r\n[beta] cr\r\n");
}

static void empty_lines_keep_their_prefix(void **state)
{
	(void)state;
	out(beta, "\r\n\n");
	assert_string_equal(screen, "[beta] \r\n[beta] \r\n");
}

/* A '\r' starts no prefix: in "\r\n" it is part of the line end; at a line start it waits. */
static void cr_starts_no_prefix(void **state)
{
	(void)state;
	out(alpha, "x\r\n\r");
	assert_string_equal(screen, "[alpha] x\r\n");
	out(alpha, "y");
	assert_string_equal(screen, "[alpha] x\r\n[alpha] y");
}

/* A line drawn over itself keeps its prefix. */
static void cr_redraw_keeps_the_prefix(void **state)
{
	(void)state;
	out(alpha, "10%\r20%\r\n");
	assert_string_equal(screen, "[alpha] 10%\r[alpha] 20%\r\n");
}

static void other_vm_ends_an_open_line(void **state)
{
	(void)state;
	out(alpha, "~ # ");
	out(beta, "hello\r\n");
	assert_string_equal(screen, "[alpha] ~ # \r\n[beta] hello\r\n");
	/* alpha goes on: its prefix again. */
	out(alpha, "ls");
	assert_string_equal(screen, "[alpha] ~ # \r\n[beta] hello\r\n[alpha] ls");
	out(alpha, "\r\n");
	assert_string_equal(screen, "[alpha] ~ # \r\n[beta] hello\r\n[alpha] ls\r\n");
}

/* The line was ended for it already: its own line end adds no empty line. */
static void ended_line_needs_no_second_end(void **state)
{
	(void)state;
	out(alpha, "abc");
	out(beta, "x\n");
	out(alpha, "\r\n");
	out(alpha, "next\r\n");
	assert_string_equal(screen, "[alpha] abc\r\n[beta] x\r\n[alpha] next\r\n");
}

static void printk_ends_an_open_line(void **state)
{
	(void)state;
	out(alpha, "~ # ");
	printk("quire: beta powered off\n");
	out(alpha, "x");
	assert_string_equal(screen, "[alpha] ~ # \r\nquire: beta powered off\r\n[alpha] x");
}

static void crash_write_ends_an_open_line(void **state)
{
	(void)state;
	out(alpha, "~ # ");
	console_write_crash("panic\n");
	assert_string_equal(screen, "[alpha] ~ # \r\npanic\r\n");
}

/* Quire's unfinished line is ended by a VM's output too. */
static void vm_ends_quires_open_line(void **state)
{
	(void)state;
	console_write("quire: working...");
	out(beta, "b\n");
	assert_string_equal(screen, "quire: working...\r\n[beta] b\r\n");
}

static void held_line_printed_when_full(void **state)
{
	char line[451], want[600];

	(void)state;
	memset(line, 'x', 450);
	line[450] = '\0';
	out(beta, line);
	/* Two full buffers of 200 out, 50 still held. */
	snprintf(want, sizeof(want), "[beta] %.400s", line);
	assert_string_equal(screen, want);
	out(beta, "\n");
	snprintf(want, sizeof(want), "[beta] %s\r\n", line);
	assert_string_equal(screen, want);
}

static void long_line_interrupted_gets_its_prefix_again(void **state)
{
	char line[201], want[600];

	(void)state;
	memset(line, 'x', 200);
	line[200] = '\0';
	out(beta, line);
	out(gamma_, "g\n");
	out(beta, "yy\n");
	snprintf(want, sizeof(want), "[beta] %s\r\n[gamma] g\r\n[beta] yy\r\n", line);
	assert_string_equal(screen, want);
}

static void switch_flushes_the_new_targets_line(void **state)
{
	(void)state;
	out(alpha, "~ # ");
	out(beta, "login: ");
	assert_string_equal(screen, "[alpha] ~ # ");
	escape();
	assert_string_equal(screen, "[alpha] ~ # \r\n" SWITCH_TO("beta") "[beta] login: ");
	/* beta now streams. */
	out(beta, "r");
	assert_string_equal(screen, "[alpha] ~ # \r\n" SWITCH_TO("beta") "[beta] login: r");
}

/* Coming back to a VM whose prompt was ended on the screen shows the prompt again. */
static void switch_back_shows_the_prompt_again(void **state)
{
	(void)state;
	out(alpha, "~ # ");
	escape(); /* beta */
	out(alpha, "\a");
	escape(); /* gamma */
	escape(); /* the monitor */
	escape(); /* alpha */
	assert_non_null(strstr(screen, SWITCH_TO("alpha") "[alpha] ~ # \a"));
}

/* A VM whose last line is complete has nothing to show: no lone prefix. */
static void switch_shows_no_empty_line(void **state)
{
	(void)state;
	out(beta, "done\n");
	screen_clear();
	escape();
	assert_string_equal(screen, SWITCH_TO("beta"));
}

static void escape_cycles_vms_then_the_monitor(void **state)
{
	(void)state;
	escape();
	assert_string_equal(screen, SWITCH_TO("beta"));
	screen_clear();
	escape(); /* slot 3 is empty, slot 5 holds a VM_EMPTY one */
	assert_string_equal(screen, SWITCH_TO("gamma"));
	screen_clear();
	escape();
	assert_string_equal(screen, SWITCH_TO_MONITOR "quire> ");
	screen_clear();
	escape();
	assert_string_equal(screen, "\r\n" SWITCH_TO("alpha"));
	assert_int_equal(fake_nrx[0] + fake_nrx[1] + fake_nrx[3], 0);
}

/* A VM that stopped keeps its place; one whose slot emptied drops out of the cycle. */
static void escape_skips_emptied_slots(void **state)
{
	(void)state;
	fake_state[1] = VM_STOPPED;
	escape();
	assert_string_equal(screen, SWITCH_TO("beta"));
	screen_clear();
	fake_state[1] = VM_EMPTY;
	fake_state[3] = VM_EMPTY;
	escape();
	assert_string_equal(screen, SWITCH_TO_MONITOR "quire> ");
}

static void input_goes_to_the_focused_vm(void **state)
{
	(void)state;
	type("ls\r");
	assert_int_equal(fake_nrx[0], 3);
	assert_memory_equal(fake_rx[0], "ls\r", 3);
	escape();
	type("id\r");
	assert_int_equal(fake_nrx[0], 3);
	assert_int_equal(fake_nrx[1], 3);
	assert_memory_equal(fake_rx[1], "id\r", 3);
}

static void one_or_two_ctrl_a_pass_through(void **state)
{
	(void)state;
	type("\x01x");
	type("\x01\x01y");
	assert_int_equal(fake_nrx[0], 5);
	assert_memory_equal(fake_rx[0], "\x01x\x01\x01y", 5);
	assert_string_equal(screen, "");
	/* The fourth Ctrl-A starts counting again, after the switch. */
	type("\x01\x01\x01\x01q");
	assert_int_equal(fake_nrx[0], 5);
	assert_int_equal(fake_nrx[1], 2);
	assert_memory_equal(fake_rx[1], "\x01q", 2);
	assert_string_equal(screen, SWITCH_TO("beta"));
}

static void not_running_vm_drops_input(void **state)
{
	(void)state;
	fake_state[0] = VM_PAUSED;
	type("abc");
	fake_state[0] = VM_STOPPING;
	type("def");
	fake_state[0] = VM_STOPPED;
	type("ghi");
	assert_int_equal(fake_nrx[0], 0);
	assert_string_equal(screen, "");
	fake_state[0] = VM_RUNNING;
	type("j");
	assert_int_equal(fake_nrx[0], 1);
}

/* A full FIFO holds bytes back (in order) instead of stopping the UART: Ctrl-A still gets through. */
static void full_fifo_holds_input(void **state)
{
	(void)state;
	fake_room[0] = false;
	type("ab");
	assert_int_equal(fake_nrx[0], 0);
	fake_room[0] = true;
	conmux_input_drain();
	assert_int_equal(fake_nrx[0], 2);
	assert_memory_equal(fake_rx[0], "ab", 2);
	fake_room[0] = false;
	type("c");
	escape(); /* to beta, though alpha never read its input */
	assert_string_equal(screen, "quire: console input goes to beta (Ctrl-A three times to switch)\r\n");
	fake_room[0] = true;
	conmux_input_drain(); /* what alpha did not take is gone */
	assert_int_equal(fake_nrx[0], 2);
	type("d");
	assert_int_equal(fake_nrx[1], 1);
}

/* Past the hold buffer typed bytes are dropped, like a serial overrun; nothing overflows. */
static void hold_overflow_drops(void **state)
{
	(void)state;
	fake_room[0] = false;
	for (int i = 0; i < 5000; i++)
		conmux_input('x', 0);
	fake_room[0] = true;
	conmux_input_drain();
	assert_true(fake_nrx[0] > 0);
	assert_true(fake_nrx[0] <= 1024);
}

static void reset_prints_what_was_held(void **state)
{
	(void)state;
	out(beta, "partial");
	conmux_vm_reset(beta);
	assert_string_equal(screen, "[beta] partial\r\n");
	out(beta, "new\n");
	assert_string_equal(screen, "[beta] partial\r\n[beta] new\r\n");
}

/* After a restart the VM's first line starts with its prefix, not on the old line. */
static void reset_ends_the_open_line(void **state)
{
	(void)state;
	out(alpha, "~ # ");
	conmux_vm_reset(alpha);
	out(alpha, "Booting Linux\r\n");
	assert_string_equal(screen, "[alpha] ~ # \r\n[alpha] Booting Linux\r\n");
	/* A line ended by someone else: nothing more to end. */
	screen_clear();
	out(alpha, "x");
	printk("quire: hi\n");
	conmux_vm_reset(alpha);
	assert_string_equal(screen, "[alpha] x\r\nquire: hi\r\n");
}

static void monitor_gets_the_input(void **state)
{
	(void)state;
	escape();
	escape();
	escape();
	screen_clear();
	type("list\r");
	assert_non_null(strstr(screen, "list\r\n id  name"));
	assert_non_null(strstr(screen, "  1  alpha "));
	assert_true(nscreen > 7 && !strcmp(screen + nscreen - 7, "quire> "));
	screen_clear();
	type("pause 2\r");
	assert_string_equal(fake_calls, "pause:beta ");
	assert_int_equal(fake_state[1], VM_PAUSED);
	assert_int_equal(fake_nrx[0] + fake_nrx[1] + fake_nrx[3], 0);
}

/* VM output while the monitor has the input: the prompt line is ended, and drawn again. */
static void vm_output_ends_the_prompt_line(void **state)
{
	(void)state;
	escape();
	escape();
	escape();
	type("li");
	screen_clear();
	out(alpha, "tick\n");
	type("s");
	assert_string_equal(screen, "\r\n[alpha] tick\r\nquire> lis");
}

/* Every piece of the screen between line ends and '\r's starts with a prefix or is Quire's. */
static void check_pieces(void)
{
	static const char *const ok[] = { "[alpha] ", "[beta] ", "[gamma] ", "quire" };
	size_t i = 0;

	while (i < nscreen) {
		size_t end = i;
		bool good = false;

		while (end < nscreen && screen[end] != '\r' && screen[end] != '\n')
			end++;
		if (end == i) {
			i++;
			continue;
		}
		for (unsigned k = 0; k < 4; k++)
			good |= end - i >= strlen(ok[k]) && !memcmp(screen + i, ok[k], strlen(ok[k]));
		if (!good)
			fail_msg("unprefixed piece at %zu: \"%.*s\"", i, (int)(end - i), screen + i);
		i = end;
	}
}

/* Random output from three VMs, switches and resets: every line keeps its prefix. */
static void random_output_always_prefixed(void **state)
{
	struct vm *vms[] = { alpha, beta, gamma_ };

	(void)state;
	srand(42);
	for (int round = 0; round < 200; round++) {
		screen_attach(); /* ends the open line: the screen starts with a whole one */
		for (int i = 0; i < 2000; i++) {
			int r = rand() % 1000;

			if (r < 3)
				escape();
			else if (r < 5)
				conmux_vm_reset(vms[rand() % 3]);
			else if (r < 8)
				printk("quire: event %d\n", i);
			else
				conmux_vm_output(vms[rand() % 3], (char)(r < 100 ? "\r\n\t\b\x1b"[r % 5] : rand()));
		}
		check_pieces();
	}
}

/* Any bytes in, any bytes out, any state: no crash, no overflow (ASan, UBSan). */
static void random_bytes_everywhere(void **state)
{
	struct vm *vms[] = { alpha, beta, gamma_ };
	static const char *const words[] = { "help\r", "list\r", "stats\r", "mem 9\r", "pause 1\r",
					     "resume alpha\r", "kill beta\r", "restart 4\r", "\x01\x01\x01" };

	(void)state;
	srand(7);
	for (long i = 0; i < 300000; i++) {
		int r = rand() % 100;

		if (i % 4096 == 0)
			screen_clear();
		if (r < 40)
			conmux_input((char)rand(), (unsigned)(rand() % 8));
		else if (r < 43)
			type(words[rand() % 9]);
		else if (r < 90)
			conmux_vm_output(vms[rand() % 3], (char)rand());
		else if (r < 92)
			fake_state[rand() % 5] = (enum vm_state)(rand() % 5);
		else if (r < 94)
			fake_room[rand() % 5] = rand() & 1;
		else if (r < 95)
			conmux_vm_reset(vms[rand() % 3]);
		else
			conmux_input_drain();
		if (i % 997 == 0)
			fake_nrx[0] = fake_nrx[1] = fake_nrx[3] = 0;
	}
}

/* ---- with locking --------------------------------------------------------- */

#define LINES 300

static void *vm_writer(void *arg)
{
	struct vm *vm = arg;
	char line[64];

	for (int i = 0; i < LINES; i++) {
		snprintf(line, sizeof(line), "%s line %d\r\n", vm->name, i);
		out(vm, line);
	}
	return NULL;
}

static void *quire_writer(void *arg)
{
	(void)arg;
	for (int i = 0; i < LINES; i++)
		printk("quire: line %d\n", i);
	return NULL;
}

/*
 * alpha streams (it has the input), beta and gamma are held a line at a
 * time, Quire printk's, all at once: the held lines and Quire's come out
 * whole and in order, alpha's bytes all arrive in order, each piece prefixed.
 */
static void cpus_printing_at_once(void **state)
{
	pthread_t t[4];
	char want[LINES * 32], got[LINES * 32];
	size_t nwant = 0, ngot = 0;
	int next_b = 0, next_g = 0, next_q = 0;

	(void)state;
	console_enable_locking();
	assert_int_equal(pthread_create(&t[0], NULL, vm_writer, alpha), 0);
	assert_int_equal(pthread_create(&t[1], NULL, vm_writer, beta), 0);
	assert_int_equal(pthread_create(&t[2], NULL, vm_writer, gamma_), 0);
	assert_int_equal(pthread_create(&t[3], NULL, quire_writer, NULL), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	check_pieces();

	for (int i = 0; i < LINES; i++)
		nwant += snprintf(want + nwant, sizeof(want) - nwant, "alpha line %d", i);
	for (char *line = screen, *end; *line; line = end + 2) {
		int n, used = 0;

		end = strstr(line, "\r\n");
		assert_non_null(end);
		*end = '\0';
		if (!strncmp(line, "[alpha] ", 8)) {
			memcpy(got + ngot, line + 8, strlen(line + 8));
			ngot += strlen(line + 8);
		} else if (sscanf(line, "[beta] beta line %d%n", &n, &used) == 1 && !line[used]) {
			assert_int_equal(n, next_b++);
		} else if (sscanf(line, "[gamma] gamma line %d%n", &n, &used) == 1 && !line[used]) {
			assert_int_equal(n, next_g++);
		} else if (sscanf(line, "quire: line %d%n", &n, &used) == 1 && !line[used]) {
			assert_int_equal(n, next_q++);
		} else {
			fail_msg("mangled line \"%s\"", line);
		}
	}
	assert_int_equal(next_b, LINES);
	assert_int_equal(next_g, LINES);
	assert_int_equal(next_q, LINES);
	assert_int_equal(ngot, nwant);
	assert_memory_equal(got, want, nwant);
}

/* ---- quire.console=raw: runs last, it cannot be turned off ---------------- */

/* A single VM's lines as it wrote them (line ends still "\r\n"); Quire's own still end them. */
static void raw_lines_have_no_prefix(void **state)
{
	(void)state;
	conmux_raw();
	out(alpha, "memtest: seq ok\n");
	assert_string_equal(screen, "memtest: seq ok\r\n");
	out(alpha, "~ # ");
	printk("quire: note\n");
	out(alpha, "x\r\n10%\r20%\r\n");
	out(beta, "held\n");
	assert_string_equal(screen, "memtest: seq ok\r\n~ # \r\nquire: note\r\nx\r\n10%\r20%\r\nheld\r\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(start_announces_the_escape, setup),
		cmocka_unit_test_setup(start_without_vms_goes_to_the_monitor, setup),
		cmocka_unit_test_setup(start_at_the_monitor_holds_every_line, setup),
		cmocka_unit_test_setup(focused_vm_streams, setup),
		cmocka_unit_test_setup(others_are_line_buffered, setup),
		cmocka_unit_test_setup(interleaved_bytes_never_shred, setup),
		cmocka_unit_test_setup(line_ends_become_crlf, setup),
		cmocka_unit_test_setup(empty_lines_keep_their_prefix, setup),
		cmocka_unit_test_setup(cr_starts_no_prefix, setup),
		cmocka_unit_test_setup(cr_redraw_keeps_the_prefix, setup),
		cmocka_unit_test_setup(other_vm_ends_an_open_line, setup),
		cmocka_unit_test_setup(ended_line_needs_no_second_end, setup),
		cmocka_unit_test_setup(printk_ends_an_open_line, setup),
		cmocka_unit_test_setup(crash_write_ends_an_open_line, setup),
		cmocka_unit_test_setup(vm_ends_quires_open_line, setup),
		cmocka_unit_test_setup(held_line_printed_when_full, setup),
		cmocka_unit_test_setup(long_line_interrupted_gets_its_prefix_again, setup),
		cmocka_unit_test_setup(switch_flushes_the_new_targets_line, setup),
		cmocka_unit_test_setup(switch_back_shows_the_prompt_again, setup),
		cmocka_unit_test_setup(switch_shows_no_empty_line, setup),
		cmocka_unit_test_setup(escape_cycles_vms_then_the_monitor, setup),
		cmocka_unit_test_setup(escape_skips_emptied_slots, setup),
		cmocka_unit_test_setup(input_goes_to_the_focused_vm, setup),
		cmocka_unit_test_setup(one_or_two_ctrl_a_pass_through, setup),
		cmocka_unit_test_setup(not_running_vm_drops_input, setup),
		cmocka_unit_test_setup(full_fifo_holds_input, setup),
		cmocka_unit_test_setup(hold_overflow_drops, setup),
		cmocka_unit_test_setup(reset_prints_what_was_held, setup),
		cmocka_unit_test_setup(reset_ends_the_open_line, setup),
		cmocka_unit_test_setup(monitor_gets_the_input, setup),
		cmocka_unit_test_setup(vm_output_ends_the_prompt_line, setup),
		cmocka_unit_test_setup(random_output_always_prefixed, setup),
		cmocka_unit_test_setup(random_bytes_everywhere, setup),
		cmocka_unit_test_setup(cpus_printing_at_once, setup),
		cmocka_unit_test_setup(raw_lines_have_no_prefix, setup),
	};

	alarm(120); /* a deadlock fails the run instead of hanging it */
	return cmocka_run_group_tests_name("conmux", tests, NULL, NULL);
}
