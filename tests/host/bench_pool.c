/*
 * Host micro-benchmark of the VMM page pool (not a test): ns per
 * pool_alloc + pool_free pair, each thread on its own CPU index, against a
 * free list under a pthread mutex doing the same work. Each round takes
 * ROUND pages and gives them back (more than a per-CPU cache holds, so the
 * pool's refills and spills reach its global lock-free stack). The figure is
 * per thread: wall time over the pairs one thread did, best of REPEAT runs.
 *
 *   make -C tests/host bench && ../../build/host/bench_pool
 * prints {"pool_host_ns_1t":..,"pool_host_ns_2t":..,"mutex_host_ns_1t":..,"mutex_host_ns_2t":..}
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <quire/pool.h>

#define PAGES 65536
#define ROUND 128
#define RUN_MS 100
#define REPEAT 3

static u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/* ---- the pool ------------------------------------------------------------ */

static struct pool pool;

/* ---- the mutex-protected free list ---------------------------------------- */

struct node {
	struct node *next;
};

static struct node nodes[PAGES];
static struct node *mhead;
static pthread_mutex_t mlock = PTHREAD_MUTEX_INITIALIZER;

static struct node *mutex_alloc(void)
{
	struct node *n;

	pthread_mutex_lock(&mlock);
	n = mhead;
	if (n)
		mhead = n->next;
	pthread_mutex_unlock(&mlock);
	return n;
}

static void mutex_free(struct node *n)
{
	pthread_mutex_lock(&mlock);
	n->next = mhead;
	mhead = n;
	pthread_mutex_unlock(&mlock);
}

/* ---- driver ---------------------------------------------------------------- */

static _Atomic bool stop;
static pthread_barrier_t barrier;

struct worker {
	unsigned cpu;
	bool use_mutex;
	u64 pairs;
	u64 ns;
};

static void *worker(void *arg)
{
	struct worker *w = arg;
	pidx_t held[ROUND];
	struct node *nheld[ROUND];
	u64 t0, pairs = 0;

	pthread_barrier_wait(&barrier);
	t0 = now_ns();
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		if (w->use_mutex) {
			for (int k = 0; k < ROUND; k++)
				nheld[k] = mutex_alloc();
			for (int k = ROUND; k-- > 0;)
				mutex_free(nheld[k]);
		} else {
			for (int k = 0; k < ROUND; k++)
				held[k] = pool_alloc(&pool, w->cpu);
			for (int k = ROUND; k-- > 0;)
				pool_free(&pool, w->cpu, held[k], false);
		}
		pairs += ROUND;
	}
	w->ns = now_ns() - t0;
	w->pairs = pairs;
	return NULL;
}

static double run(unsigned nthreads, bool use_mutex)
{
	double best = 1e30;

	for (int rep = 0; rep < REPEAT; rep++) {
		pthread_t t[2];
		struct worker w[2];
		struct timespec ts = { 0, RUN_MS * 1000000L };
		double ns = 0;

		atomic_store(&stop, false);
		pthread_barrier_init(&barrier, NULL, nthreads + 1);
		for (unsigned k = 0; k < nthreads; k++) {
			w[k] = (struct worker){ .cpu = k, .use_mutex = use_mutex };
			if (pthread_create(&t[k], NULL, worker, &w[k])) {
				perror("pthread_create");
				exit(1);
			}
		}
		pthread_barrier_wait(&barrier);
		nanosleep(&ts, NULL);
		atomic_store(&stop, true);
		for (unsigned k = 0; k < nthreads; k++) {
			pthread_join(t[k], NULL);
			ns += (double)w[k].ns / (double)w[k].pairs;
		}
		pthread_barrier_destroy(&barrier);
		ns /= nthreads;
		if (ns < best)
			best = ns;
	}
	return best;
}

/* pool.c's idle zeroer calls it; the benchmark never pre-zeroes, nor touches page memory. */
void page_zero(paddr_t pa)
{
	(void)pa;
}

int main(void)
{
	struct machine m = { .nmem = 1, .mem = { { 0x40000000, (u64)PAGES * PAGE_SIZE } },
			     .mem_total = (u64)PAGES * PAGE_SIZE };
	void *desc = malloc(pool_desc_bytes(&m));
	double p1, p2, m1, m2;

	/* The pool never touches page memory: the machine addresses need no backing. */
	if (!desc || pool_init(&pool, &m, NULL, 0, desc) != PAGES) {
		fprintf(stderr, "bench_pool: pool_init failed\n");
		return 1;
	}
	for (int k = PAGES; k-- > 0;)
		mutex_free(&nodes[k]);
	p1 = run(1, false);
	p2 = run(2, false);
	m1 = run(1, true);
	m2 = run(2, true);
	if (pool_free_pages(&pool) != PAGES) {
		fprintf(stderr, "bench_pool: pages lost\n");
		return 1;
	}
	printf("{\"pool_host_ns_1t\":%.1f,\"pool_host_ns_2t\":%.1f,\"mutex_host_ns_1t\":%.1f,\"mutex_host_ns_2t\":%.1f}\n",
	       p1, p2, m1, m2);
	free(desc);
	return 0;
}
