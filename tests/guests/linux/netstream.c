/*
 * netstream: a guest program for TCP throughput and integrity between VMs,
 * with data that costs little to make and check (not /dev/urandom).
 *
 *   netstream recv PORT MIB
 *   netstream send IP PORT MIB
 *
 * recv listens on 0.0.0.0:PORT, prints "netstream: listening port=PORT",
 * accepts one connection, reads it to EOF, checks every byte against the
 * stream below and closes it. Then it prints
 *
 *   netstream: recv ok bytes=N ticks=T cntfrq=F sum=HEX           exit 0
 *   netstream: recv FAIL bytes=N first_bad_at=OFF                  exit 2
 *
 * FAIL if a byte differs (OFF: the first one's offset) or N is not MIB MiB
 * (OFF: where the stream ended early, or MIB MiB if it went on).
 *
 * send connects to IP:PORT (trying again for 10 s while it is refused, so
 * it may start before recv listens), sends MIB MiB of the stream, shuts its
 * side down, waits for recv to close, and prints
 *
 *   netstream: sent bytes=N ticks=T cntfrq=F sum=HEX                exit 0
 *
 * or "netstream: connect failed errno=X" / "netstream: send failed errno=X
 * bytes=N" (exit 1). A bad argument prints the usage (exit 1).
 *
 * T: CNTVCT_EL0 ticks from the connection (recv: accepted; send: connected)
 * to its end (recv: EOF; send: recv closed, so all of it arrived, not only
 * went into the socket buffer); F: CNTFRQ_EL0, so MiB/s = MIB * F / T.
 *
 * The stream: xorshift64 (13, 7, 17) from the seed 0x51756972654e6574
 * ("QuireNet"), each word after a step, little-endian. HEX: 16 hex digits
 * of a 64-bit FNV-1a over the stream's words rather than bytes (h = 0xcbf29ce484222325;
 * h = (h ^ word) * 0x100000001b3), as sent, and as received when ok: both
 * ends make the stream and the sum with the one function stream_next.
 *
 * Static, without libc, so it needs nothing from the guest:
 *   aarch64-linux-gnu-gcc -nostdlib -static -ffreestanding -O2 -o netstream netstream.c
 */
#include <stdbool.h>
#include "nolibc.h"

#define AF_INET		2
#define SOCK_STREAM	1
#define SOL_SOCKET	1
#define SO_REUSEADDR	2
#define SHUT_WR		1
#define MSG_NOSIGNAL	0x4000	/* a closed peer is an error here, not a SIGPIPE */
#define SYS_nanosleep	101
#define EINTR		4
#define ECONNREFUSED	111

#define SEED		0x51756972654e6574UL
#define FNV_OFFSET	0xcbf29ce484222325UL
#define FNV_PRIME	0x100000001b3UL

#define BUF		(64 * 1024UL)
#define WORDS		(BUF / 8)

struct sockaddr_in {
	unsigned short family;
	unsigned short port;	/* big-endian */
	unsigned int addr;	/* big-endian */
	unsigned char zero[8];
};

struct stream {
	unsigned long x;	/* the generator's state */
	unsigned long sum;
};

/* Buffers of their own for the stream and what recv reads. */
static unsigned long gen[WORDS], got[WORDS];

/* The next n words of the stream into w, each folded into the sum: the same code at both ends. */
static void stream_next(struct stream *s, unsigned long *w, unsigned long n)
{
	unsigned long x = s->x, h = s->sum;

	for (unsigned long i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
		h = (h ^ x) * FNV_PRIME;
	}
	s->x = x;
	s->sum = h;
}

static unsigned long cntvct(void)
{
	unsigned long v;

	/* The ISB keeps the read from being taken early (Arm ARM D12.1: reads of the counter are not ordered). */
	__asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v) : : "memory");
	return v;
}

static unsigned long cntfrq(void)
{
	unsigned long v;

	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(v));
	return v;
}

static void say(int fd, char *buf, char *end)
{
	*end++ = '\n';
	sys6(SYS_write, fd, (long)buf, end - buf, 0, 0, 0);
}

static __attribute__((noreturn)) void say_exit(char *buf, char *end, int code)
{
	say(1, buf, end);
	sys6(SYS_exit, code, 0, 0, 0, 0, 0);
	__builtin_unreachable();
}

static __attribute__((noreturn)) void usage(void)
{
	char buf[120];

	say_exit(buf, put_str(buf, "usage: netstream send IP PORT MIB | netstream recv PORT MIB"), 1);
}

static unsigned short be16(unsigned long v)
{
	return (unsigned short)((v & 0xff) << 8 | (v >> 8 & 0xff));
}

static unsigned short parse_port(const char *s)
{
	unsigned long v;

	if (!parse_num(s, &v) || !v || v > 65535)
		usage();
	return be16(v);
}

static unsigned long parse_mib(const char *s)
{
	unsigned long v;

	if (!parse_num(s, &v) || !v || v > (1UL << 20))
		usage();
	return v;
}

/* A.B.C.D as the address in memory (network order). */
static unsigned int parse_ip(const char *s)
{
	unsigned int addr = 0;

	for (int i = 0; i < 4; i++) {
		unsigned long v = 0;
		int digits = 0;

		for (; *s >= '0' && *s <= '9' && digits < 4; s++, digits++)
			v = v * 10 + (unsigned long)(*s - '0');
		if (!digits || digits > 3 || v > 255 || *s != (i < 3 ? '.' : '\0'))
			usage();
		s++;
		addr |= (unsigned int)v << 8 * i;
	}
	return addr;
}

static __attribute__((noreturn)) void print_done(const char *what, unsigned long bytes, unsigned long ticks, unsigned long sum)
{
	char buf[160], *p = buf;

	p = put_dec(put_str(put_str(p, what), " bytes="), bytes);
	p = put_dec(put_str(p, " ticks="), ticks);
	p = put_dec(put_str(p, " cntfrq="), cntfrq());
	p = put_hex64(put_str(p, " sum="), sum);
	say_exit(buf, p, 0);
}

static __attribute__((noreturn)) void do_send(unsigned int ip, unsigned short port, unsigned long mib)
{
	static const long tenth[2] = { 0, 100000000 };
	struct sockaddr_in sin = { .family = AF_INET, .port = port, .addr = ip };
	struct stream s = { SEED, FNV_OFFSET };
	unsigned long total = mib << 20, done = 0;
	char buf[120], *p = buf;
	long fd, r;

	for (int tries = 0;; tries++) {
		fd = sys6(SYS_socket, AF_INET, SOCK_STREAM, 0, 0, 0, 0);
		if (fd < 0)
			say_exit(buf, put_dec(put_str(p, "netstream: socket failed errno="), (unsigned long)-fd), 1);
		r = sys6(SYS_connect, fd, (long)&sin, sizeof(sin), 0, 0, 0);
		if (!r)
			break;
		sys6(SYS_close, fd, 0, 0, 0, 0, 0);
		if (r != -ECONNREFUSED || tries == 100)
			say_exit(buf, put_dec(put_str(p, "netstream: connect failed errno="), (unsigned long)-r), 1);
		sys6(SYS_nanosleep, (long)tenth, 0, 0, 0, 0, 0);
	}
	unsigned long t0 = cntvct();

	while (done < total) {
		unsigned long n = total - done < BUF ? total - done : BUF;

		stream_next(&s, gen, n / 8);
		for (unsigned long off = 0; off < n;) {
			r = sys6(SYS_sendto, fd, (long)gen + (long)off, (long)(n - off), MSG_NOSIGNAL, 0, 0);
			if (r == -EINTR)
				continue;
			if (r <= 0) {
				p = put_dec(put_str(p, "netstream: send failed errno="), (unsigned long)-r);
				say_exit(buf, put_dec(put_str(p, " bytes="), done + off), 1);
			}
			off += (unsigned long)r;
		}
		done += n;
	}
	/* recv closes once it has read all of it: until then the data may sit in our buffers. */
	sys6(SYS_shutdown, fd, SHUT_WR, 0, 0, 0, 0);
	do
		r = sys6(SYS_read, fd, (long)got, BUF, 0, 0, 0);
	while (r > 0 || r == -EINTR);
	unsigned long t1 = cntvct();

	sys6(SYS_close, fd, 0, 0, 0, 0, 0);
	print_done("netstream: sent", total, t1 - t0, s.sum);
}

/* The offset in [0, n) of the first byte of a that is not b's, or n. */
static unsigned long first_diff(const unsigned long *a, const unsigned long *b, unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n / 8; i++)
		if (a[i] != b[i])
			return i * 8 + (unsigned long)__builtin_ctzl(a[i] ^ b[i]) / 8; /* little-endian */
	for (i *= 8; i < n; i++)
		if (((const unsigned char *)a)[i] != ((const unsigned char *)b)[i])
			return i;
	return n;
}

static __attribute__((noreturn)) void do_recv(unsigned short port, unsigned long mib)
{
	static const int one = 1;
	struct sockaddr_in sin = { .family = AF_INET, .port = port };
	struct stream s = { SEED, FNV_OFFSET };
	unsigned long total = mib << 20, bytes = 0, bad = 0;
	bool eof = false, is_bad = false;
	char buf[160], *p = buf;
	long r;

	long lfd = sys6(SYS_socket, AF_INET, SOCK_STREAM, 0, 0, 0, 0);
	if (lfd < 0)
		say_exit(buf, put_dec(put_str(p, "netstream: socket failed errno="), (unsigned long)-lfd), 1);
	/* A test may run recv on the same port again straight after one (TIME_WAIT). */
	sys6(SYS_setsockopt, lfd, SOL_SOCKET, SO_REUSEADDR, (long)&one, sizeof(one), 0);
	r = sys6(SYS_bind, lfd, (long)&sin, sizeof(sin), 0, 0, 0);
	if (!r)
		r = sys6(SYS_listen, lfd, 1, 0, 0, 0, 0);
	if (r)
		say_exit(buf, put_dec(put_str(p, "netstream: cannot listen errno="), (unsigned long)-r), 1);
	say(1, buf, put_dec(put_str(p, "netstream: listening port="), be16(port)));
	long fd;
	do
		fd = sys6(SYS_accept, lfd, 0, 0, 0, 0, 0);
	while (fd == -EINTR);
	if (fd < 0)
		say_exit(buf, put_dec(put_str(p, "netstream: accept failed errno="), (unsigned long)-fd), 1);
	sys6(SYS_close, lfd, 0, 0, 0, 0, 0);
	unsigned long t0 = cntvct();

	while (!eof) {
		/* Whole buffers, so the stream's words line up with got's (only the last may be short). */
		unsigned long fill = 0;

		while (fill < BUF) {
			r = sys6(SYS_read, fd, (long)got + (long)fill, (long)(BUF - fill), 0, 0, 0);
			if (r == -EINTR)
				continue;
			if (r <= 0) {
				if (r < 0)
					say(2, buf, put_dec(put_str(buf, "netstream: read failed errno="), (unsigned long)-r));
				eof = true;
				break;
			}
			fill += (unsigned long)r;
		}
		if (!is_bad && fill) {
			stream_next(&s, gen, (fill + 7) / 8);
			unsigned long at = first_diff(got, gen, fill);

			if (at < fill) {
				is_bad = true;
				bad = bytes + at;
			}
		}
		bytes += fill;
	}
	unsigned long t1 = cntvct();

	sys6(SYS_close, fd, 0, 0, 0, 0, 0);
	if (!is_bad && bytes != total) {
		is_bad = true;
		bad = bytes < total ? bytes : total;
	}
	if (is_bad) {
		p = put_dec(put_str(p, "netstream: recv FAIL bytes="), bytes);
		say_exit(buf, put_dec(put_str(p, " first_bad_at="), bad), 2);
	}
	print_done("netstream: recv ok", bytes, t1 - t0, s.sum);
}

void run(long argc, char **argv);
void run(long argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	if (argc == 5 && mode[0] == 's' && mode[1] == 'e' && mode[2] == 'n' && mode[3] == 'd' && !mode[4])
		do_send(parse_ip(argv[2]), parse_port(argv[3]), parse_mib(argv[4]));
	if (argc == 4 && mode[0] == 'r' && mode[1] == 'e' && mode[2] == 'c' && mode[3] == 'v' && !mode[4])
		do_recv(parse_port(argv[2]), parse_mib(argv[3]));
	usage();
}

/* The kernel starts a static program with sp at argc, then the argv pointers. */
__asm__(
	"	.text\n"
	"	.globl	_start\n"
	"	.type	_start, %function\n"
	"_start:\n"
	"	ldr	x0, [sp]\n"
	"	add	x1, sp, #8\n"
	"	bl	run\n"
	"	.size	_start, . - _start\n");
