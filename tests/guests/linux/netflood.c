/*
 * netflood: a guest program that sends Ethernet broadcast frames as fast as
 * it can, to load a VM's virtio-net device and Quire's switch.
 *
 *   netflood IFACE SECONDS [SIZE]
 *
 * Sends frames of SIZE bytes (default 1514, at least 60; the Ethernet header
 * included, the FCS not) to ff:ff:ff:ff:ff:ff from IFACE's own MAC with
 * ethertype 0x88b5 (IEEE local experimental, so no stack takes them), on an
 * AF_PACKET raw socket bound to IFACE, for SECONDS seconds of
 * CLOCK_MONOTONIC. Then it prints
 *
 *   netflood: sent=N errors=E seconds=S
 *
 * N: frames the kernel took; E: sends it refused (ENOBUFS when the queue
 * is full, EAGAIN after a send blocked for 200 ms, ...), counted, not
 * fatal; the first one also prints "netflood: first error errno=X" on
 * stderr. S: the seconds it really ran, with milliseconds (e.g. 5.001).
 * Exit 0. A bad argument prints the usage, an interface that does not exist
 * "netflood: no interface IFACE", a socket that fails "netflood: socket
 * failed errno=X"; these exit 1. The frame's payload: a 64-bit frame
 * number (little-endian) at offset 14, then 0x5a bytes.
 *
 * Static, without libc, so it needs nothing from the guest:
 *   aarch64-linux-gnu-gcc -nostdlib -static -ffreestanding -O2 -o netflood netflood.c
 */
#include "nolibc.h"

#define AF_PACKET	17
#define SOCK_RAW	3
#define SOL_SOCKET	1
#define SO_SNDTIMEO	21	/* asm-generic/socket.h, a struct timeval on 64-bit */
#define SIOCGIFHWADDR	0x8927
#define SIOCGIFINDEX	0x8933
#define CLOCK_MONOTONIC	1
#define ETH_P_LOCAL	0x88b5	/* ETH_P_802_EX1 */
#define EINTR		4
#define EMSGSIZE	90

#define ETH_HLEN	14
#define MIN_FRAME	60
#define MAX_FRAME	65535

struct ifreq {
	char name[16];
	union {
		struct {
			unsigned short family;
			unsigned char data[14];
		} hwaddr;
		int ifindex;
		char pad[24];	/* the union's size: struct ifmap on 64-bit */
	};
};

struct sockaddr_ll {
	unsigned short family;
	unsigned short protocol;	/* big-endian */
	int ifindex;
	unsigned short hatype;
	unsigned char pkttype;
	unsigned char halen;
	unsigned char addr[8];
};

struct timespec {
	long sec, nsec;
};

static unsigned char frame[MAX_FRAME];

static unsigned short be16(unsigned short v)
{
	return (unsigned short)(v << 8 | v >> 8);
}

static unsigned long now_ns(void)
{
	struct timespec ts;

	sys6(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts, 0, 0, 0, 0);
	return (unsigned long)ts.sec * 1000000000UL + (unsigned long)ts.nsec;
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

void run(long argc, char **argv);
void run(long argc, char **argv)
{
	char buf[160], *p = buf;
	unsigned long seconds = 0, size = 1514;
	const char *iface = argc > 1 ? argv[1] : "";
	unsigned long len = 0;

	while (iface[len])
		len++;
	if (argc < 3 || argc > 4 || !len || len > 15 || !parse_num(argv[2], &seconds) || !seconds ||
	    (argc == 4 && !parse_num(argv[3], &size)) || size < MIN_FRAME || size > MAX_FRAME)
		say_exit(buf, put_str(p, "usage: netflood IFACE SECONDS [SIZE]  (SIZE 60..65535, default 1514)"), 1);

	/* Protocol 0: the socket only sends, so received frames never queue on it. */
	long fd = sys6(SYS_socket, AF_PACKET, SOCK_RAW, 0, 0, 0, 0);
	if (fd < 0)
		say_exit(buf, put_dec(put_str(p, "netflood: socket failed errno="), (unsigned long)-fd), 1);

	struct ifreq ifr = { 0 };
	for (unsigned long i = 0; i < len; i++)
		ifr.name[i] = iface[i];
	if (sys6(SYS_ioctl, fd, SIOCGIFINDEX, (long)&ifr, 0, 0, 0) < 0)
		say_exit(buf, put_str(put_str(p, "netflood: no interface "), iface), 1);
	int ifindex = ifr.ifindex;
	if (sys6(SYS_ioctl, fd, SIOCGIFHWADDR, (long)&ifr, 0, 0, 0) < 0)
		say_exit(buf, put_str(put_str(p, "netflood: no MAC address on "), iface), 1);

	struct sockaddr_ll sll = { .family = AF_PACKET, .protocol = be16(ETH_P_LOCAL), .ifindex = ifindex,
				   .halen = 6, .addr = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } };
	if (sys6(SYS_bind, fd, (long)&sll, sizeof(sll), 0, 0, 0) < 0)
		say_exit(buf, put_str(put_str(p, "netflood: cannot bind to "), iface), 1);
	/* A device that stops taking frames blocks a send; this bounds how long, so SECONDS holds. */
	static const long timeout[2] = { 0, 200000 };
	sys6(SYS_setsockopt, fd, SOL_SOCKET, SO_SNDTIMEO, (long)timeout, sizeof(timeout), 0);

	for (int i = 0; i < 6; i++) {
		frame[i] = 0xff;
		frame[6 + i] = ifr.hwaddr.data[i];
	}
	frame[12] = ETH_P_LOCAL >> 8;
	frame[13] = ETH_P_LOCAL & 0xff;
	for (unsigned long i = ETH_HLEN + 8; i < size; i++)
		frame[i] = 0x5a;

	unsigned long sent = 0, errors = 0, t0 = now_ns(), t = t0, end = t0 + seconds * 1000000000UL;
	for (; t < end; t = now_ns()) {
		unsigned long n = sent + errors;

		for (int i = 0; i < 8; i++)
			frame[ETH_HLEN + i] = (unsigned char)(n >> 8 * i);
		long r = sys6(SYS_sendto, fd, (long)frame, (long)size, 0, (long)&sll, sizeof(sll));
		if (r == (long)size) {
			sent++;
			continue;
		}
		if (r == -EINTR)
			continue;
		if (!errors++) {
			char *q = put_dec(put_str(buf, "netflood: first error errno="), (unsigned long)(r < 0 ? -r : 0));
			say(2, buf, r == -EMSGSIZE ? put_str(q, " (SIZE over the MTU)") : q);
		}
	}
	unsigned long ms = (t - t0) / 1000000;

	sys6(SYS_close, fd, 0, 0, 0, 0, 0);
	p = put_dec(put_str(p, "netflood: sent="), sent);
	p = put_dec(put_str(p, " errors="), errors);
	p = put_dec(put_str(p, " seconds="), ms / 1000);
	*p++ = '.';
	*p++ = (char)('0' + ms / 100 % 10);
	*p++ = (char)('0' + ms / 10 % 10);
	*p++ = (char)('0' + ms % 10);
	say_exit(buf, p, 0);
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
