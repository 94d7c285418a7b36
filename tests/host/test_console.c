/*
 * console_write / printk through a capturing putc hook: "\n" becomes "\r\n",
 * printk formats, the open line (whoever prints ends someone else's
 * unfinished line first), and with locking on, lines from several threads
 * never interleave and a crash report gets out past a dead lock holder.
 *
 * The console's state is global and locking cannot be turned off again, so
 * the tests run in order: unlocked ones first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <quire/console.h>

static char cap[1 << 18];
static size_t ncap;
static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;

/* Set by the thread that should stall inside the hook, as a dead lock holder would. */
static _Thread_local bool stall_here;
static atomic_bool stall = false, stalled = false;

static void capture(char c)
{
	if (stall_here && atomic_load(&stall)) {
		atomic_store(&stalled, true);
		while (atomic_load(&stall))
			sched_yield();
	}
	pthread_mutex_lock(&cap_lock);
	if (ncap < sizeof(cap) - 1)
		cap[ncap++] = c;
	cap[ncap] = '\0';
	pthread_mutex_unlock(&cap_lock);
}

static int setup(void **state)
{
	unsigned o;

	(void)state;
	/* Start on a fresh line: end whatever line the last test left open. */
	console_lock();
	if ((o = console_line_owner()) != CONSOLE_NOBODY) {
		console_put(o, '\r');
		console_put(o, '\n');
	}
	console_unlock();
	ncap = 0;
	cap[0] = '\0';
	console_set_output(capture);
	return 0;
}

static void no_output_set(void **state)
{
	(void)state;
	console_set_output(NULL);
	console_write("dropped\n");
	printk("dropped %d\n", 1);
	console_write_crash("dropped\n");
	assert_int_equal(ncap, 0);
}

static void newline_becomes_crlf(void **state)
{
	(void)state;
	console_write("a\nb\n\nc");
	assert_string_equal(cap, "a\r\nb\r\n\r\nc");
}

static void plain_text_unchanged(void **state)
{
	(void)state;
	console_write("");
	assert_int_equal(ncap, 0);
	console_write("no newline\there");
	assert_string_equal(cap, "no newline\there");
}

/* An existing "\r\n" gets a second '\r': callers write bare "\n". */
static void crlf_input(void **state)
{
	(void)state;
	console_write("x\r\n");
	assert_string_equal(cap, "x\r\r\n");
}

static void printk_formats(void **state)
{
	(void)state;
	printk("cpu%u: %s at 0x%lx, %d\n", 2u, "online", 0x40000000UL, -1);
	assert_string_equal(cap, "cpu2: online at 0x40000000, -1\r\n");
}

static void printk_multiline(void **state)
{
	(void)state;
	printk("one\ntwo %s\n", "three");
	assert_string_equal(cap, "one\r\ntwo three\r\n");
}

/* printk formats into a fixed buffer: long messages are cut, not overflowed. */
static void printk_long_message_truncated(void **state)
{
	char msg[1000];

	(void)state;
	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	printk("%s%s", msg, "tail");
	assert_true(ncap > 0 && ncap < sizeof(msg));
	assert_int_equal(strspn(cap, "x"), ncap);
}

static void crash_write_unlocked(void **state)
{
	(void)state;
	console_write_crash("panic: test\n");
	assert_string_equal(cap, "panic: test\r\n");
}

static char other[64];
static size_t nother;

static void other_putc(char c)
{
	if (nother < sizeof(other) - 1)
		other[nother++] = c;
}

static void output_can_be_switched(void **state)
{
	(void)state;
	console_set_output(other_putc);
	console_write("to other\n");
	console_set_output(capture);
	console_write("back\n");
	assert_string_equal(other, "to other\r\n");
	assert_string_equal(cap, "back\r\n");
}

static void open_line_owner(void **state)
{
	(void)state;
	assert_int_equal(console_line_owner(), CONSOLE_NOBODY);
	console_write("partial");
	assert_int_equal(console_line_owner(), CONSOLE_QUIRE);
	console_write(" more\n");
	assert_int_equal(console_line_owner(), CONSOLE_NOBODY);
	assert_string_equal(cap, "partial more\r\n");
}

/* What a VM left unfinished (written as VM 3) is ended before Quire's line. */
static void quire_ends_a_vm_line(void **state)
{
	(void)state;
	console_lock();
	console_put(3, 'x');
	console_put(3, 'y');
	console_unlock();
	assert_int_equal(console_line_owner(), 3);
	printk("quire: %s\n", "hello");
	assert_string_equal(cap, "xy\r\nquire: hello\r\n");
	/* A crash report too. */
	console_lock();
	console_put(3, 'z');
	console_unlock();
	console_write_crash("panic\n");
	assert_string_equal(cap, "xy\r\nquire: hello\r\nz\r\npanic\r\n");
}

static void vm_ends_quires_line(void **state)
{
	(void)state;
	console_write("quire: working...");
	console_lock();
	console_put(2, 'b');
	console_puts(2, "c\n");
	console_unlock();
	assert_string_equal(cap, "quire: working...\r\nbc\r\n");
	assert_int_equal(console_line_owner(), CONSOLE_NOBODY);
}

/* ---- with locking --------------------------------------------------------- */

static void locked_writes(void **state)
{
	(void)state;
	console_enable_locking();
	console_write("first\n");
	printk("second %d\n", 2);
	console_write("third\n");
	assert_string_equal(cap, "first\r\nsecond 2\r\nthird\r\n");
}

/* A crash write takes a free lock and gives it back: later writes do not hang. */
static void crash_write_releases_lock(void **state)
{
	(void)state;
	console_write_crash("crash\n");
	console_write("after\n");
	console_write_crash("crash again\n");
	console_write("after again\n");
	assert_string_equal(cap, "crash\r\nafter\r\ncrash again\r\nafter again\r\n");
}

#define LINES_PER_THREAD 300
#define MAX_THREADS 4

static void *writer(void *arg)
{
	int id = (int)(intptr_t)arg;

	for (int i = 0; i < LINES_PER_THREAD; i++)
		printk("[thread %d line %d %s]\n", id, i, "payload-payload-payload");
	return NULL;
}

static void threads_do_not_interleave(void **state)
{
	pthread_t t[MAX_THREADS];
	int next[MAX_THREADS] = { 0 }, lines = 0;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	/* A ticket lock spins: more threads than CPUs would only be slow. */
	int n = cpus < 2 ? 2 : cpus > MAX_THREADS ? MAX_THREADS : (int)cpus;
	char *line, *save;

	(void)state;
	for (int i = 0; i < n; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i), 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);

	assert_true(ncap < sizeof(cap) - 1);
	/* Every line whole, and each thread's lines in its order. */
	for (line = strtok_r(cap, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
		int id, i, used = 0, len = strlen(line);

		if (len < 2 || line[len - 1] != '\r' ||
		    sscanf(line, "[thread %d line %d payload-payload-payload]%n", &id, &i, &used) != 2 ||
		    used != len - 1)
			fail_msg("mangled line \"%s\"", line);
		assert_in_range(id, 0, n - 1);
		assert_int_equal(i, next[id]);
		next[id]++;
	}
	assert_int_equal(lines, n * LINES_PER_THREAD);
}

static void *stalled_holder(void *arg)
{
	(void)arg;
	stall_here = true;
	console_write("held\n");
	return NULL;
}

/* A CPU died holding the lock (here: stalls inside putc); the crash report still gets out. */
static void crash_write_past_dead_holder(void **state)
{
	pthread_t t;

	(void)state;
	atomic_store(&stall, true);
	assert_int_equal(pthread_create(&t, NULL, stalled_holder, NULL), 0);
	while (!atomic_load(&stalled))
		sched_yield();
	console_write_crash("panic: other cpu stuck\n");
	assert_string_equal(cap, "panic: other cpu stuck\r\n");

	/* The holder comes back; the lock still works afterwards. */
	atomic_store(&stall, false);
	assert_int_equal(pthread_join(t, NULL), 0);
	console_write("done\n");
	assert_string_equal(cap, "panic: other cpu stuck\r\nheld\r\ndone\r\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(no_output_set, setup),
		cmocka_unit_test_setup(newline_becomes_crlf, setup),
		cmocka_unit_test_setup(plain_text_unchanged, setup),
		cmocka_unit_test_setup(crlf_input, setup),
		cmocka_unit_test_setup(printk_formats, setup),
		cmocka_unit_test_setup(printk_multiline, setup),
		cmocka_unit_test_setup(printk_long_message_truncated, setup),
		cmocka_unit_test_setup(crash_write_unlocked, setup),
		cmocka_unit_test_setup(output_can_be_switched, setup),
		cmocka_unit_test_setup(open_line_owner, setup),
		cmocka_unit_test_setup(quire_ends_a_vm_line, setup),
		cmocka_unit_test_setup(vm_ends_quires_line, setup),
		cmocka_unit_test_setup(locked_writes, setup),
		cmocka_unit_test_setup(crash_write_releases_lock, setup),
		cmocka_unit_test_setup(threads_do_not_interleave, setup),
		cmocka_unit_test_setup(crash_write_past_dead_holder, setup),
	};

	alarm(120); /* a deadlock fails the run instead of hanging it */
	return cmocka_run_group_tests_name("console", tests, NULL, NULL);
}
