/*
 * The switch (include/quire/vswitch.h). Locks: a port's ring lock and the
 * address table's lock are leaves, taken under the sending device's lock;
 * a ring has many producers (vsw_send, any CPU) and one consumer (its
 * port's owner, under its own lock), which reads the head slot outside the
 * ring lock: producers only ever write slots past the tail.
 */
#include <stdatomic.h>
#include <string.h>
#include <quire/errno.h>
#include <quire/pool.h>
#include <quire/vswitch.h>

#define SLOT_BYTES 2048 /* a frame's length, its source port, the frame */
#define SLOT_DATA 8
#define SLOTS_PER_PAGE (PAGE_SIZE / SLOT_BYTES)

_Static_assert(SLOT_DATA + VSW_FRAME_MAX <= SLOT_BYTES, "a frame fits a slot");
_Static_assert(VSW_QUEUE % SLOTS_PER_PAGE == 0, "a ring is whole pages");

struct vsw_port {
	bool made;
	_Atomic bool up;
	u8 mac[6];
	const struct vsw_port_ops *ops;
	void *ctx;
	spinlock_t lock;		/* the ring and the counters below it */
	u8 *slot[VSW_QUEUE];
	unsigned head;
	_Atomic unsigned count;
	u8 from[VSW_PORTS];		/* frames waiting here from each port */
	struct vsw_stats st;
	/* The sender's side: its owner's lock (it sends under it). */
	u32 flood_tokens;
	u64 flood_at;			/* microseconds when the tokens were last topped up */
};

static struct {
	struct pool *pool;
	struct vsw_port port[VSW_PORTS];
	spinlock_t lock;		/* the address table */
	struct {
		u8 mac[6];
		u8 port;
		bool valid;
	} mac[VSW_MACS];
	unsigned next;			/* the entry replaced next */
} sw;

void vsw_init(struct pool *p)
{
	sw.pool = p;
}

static bool is_multicast(const u8 *mac)
{
	return mac[0] & 1; /* broadcast is multicast too */
}

struct vsw_port *vsw_port_add(unsigned i, const u8 mac[6], const struct vsw_port_ops *ops, void *ctx,
			      unsigned cpu)
{
	struct vsw_port *p = i < VSW_PORTS ? &sw.port[i] : NULL;

	if (!p || !sw.pool)
		return NULL;
	spin_lock(&p->lock);
	for (unsigned k = 0; !p->made && k < VSW_QUEUE; k += SLOTS_PER_PAGE) {
		pidx_t pg;

		if (p->slot[k])
			continue; /* taken by a try that ran short */
		pg = pool_alloc(sw.pool, cpu);
		if (pg == PIDX_NONE) {
			spin_unlock(&p->lock);
			return NULL; /* the pages taken so far stay for the next try */
		}
		for (unsigned s = 0; s < SLOTS_PER_PAGE; s++)
			p->slot[k + s] = (u8 *)page_va(pool_pa(sw.pool, pg)) + s * SLOT_BYTES;
		p->made = k + SLOTS_PER_PAGE == VSW_QUEUE;
	}
	memcpy(p->mac, mac, 6);
	p->ops = ops;
	p->ctx = ctx;
	p->head = 0;
	atomic_store(&p->count, 0);
	memset(p->from, 0, sizeof(p->from));
	p->st = (struct vsw_stats){ 0 };
	p->flood_tokens = VSW_FLOOD_BURST;
	p->flood_at = 0;
	atomic_store(&p->up, false);
	spin_unlock(&p->lock);
	/* What was learned for this port's old life is forgotten with it. */
	spin_lock(&sw.lock);
	for (unsigned k = 0; k < VSW_MACS; k++)
		if (sw.mac[k].valid && sw.mac[k].port == i)
			sw.mac[k].valid = false;
	spin_unlock(&sw.lock);
	return p;
}

void *vsw_port_ctx(struct vsw_port *p)
{
	return p->ctx;
}

void vsw_port_up(struct vsw_port *p, bool up)
{
	atomic_store(&p->up, up);
}

static unsigned index_of(const struct vsw_port *p)
{
	return (unsigned)(p - sw.port);
}

/* A port's configured address, other than src's: a frame claiming it as its source is spoofed. */
static bool others_address(const struct vsw_port *src, const u8 *mac)
{
	for (unsigned i = 0; i < VSW_PORTS; i++)
		if (&sw.port[i] != src && sw.port[i].ops && !memcmp(sw.port[i].mac, mac, 6))
			return true;
	return false;
}

/* The port configured with address mac, or -1: a VM's address is known without learning, never evicted. */
static int configured(const u8 *mac)
{
	for (unsigned i = 0; i < VSW_PORTS; i++)
		if (sw.port[i].ops && !memcmp(sw.port[i].mac, mac, 6))
			return (int)i;
	return -1;
}

/* Learn src's address; the port the destination is configured on or was learned on (-1: unknown). */
static int learn_and_look(unsigned src, const u8 *dst, const u8 *from)
{
	int to = -1, have = -1, free_k = -1, own_k = -1;
	unsigned own = 0;

	spin_lock(&sw.lock);
	for (unsigned k = 0; k < VSW_MACS; k++) {
		if (!sw.mac[k].valid) {
			free_k = free_k < 0 ? (int)k : free_k;
			continue;
		}
		if (sw.mac[k].port == src && own++ == sw.next % (VSW_MACS / VSW_PORTS))
			own_k = (int)k;
		if (!memcmp(sw.mac[k].mac, dst, 6))
			to = sw.mac[k].port;
		if (!memcmp(sw.mac[k].mac, from, 6))
			have = (int)k;
	}
	if (have < 0) {
		/* At most VSW_MACS / VSW_PORTS addresses a port: one port cannot push the others' out. */
		have = own >= VSW_MACS / VSW_PORTS && own_k >= 0 ? own_k
		       : free_k >= 0 ? free_k : (int)(sw.next % VSW_MACS);
		sw.next++;
		memcpy(sw.mac[have].mac, from, 6);
		sw.mac[have].valid = true;
	}
	sw.mac[have].port = (u8)src; /* a move to another port is learned too */
	spin_unlock(&sw.lock);
	have = configured(dst);
	return have >= 0 ? have : to;
}

/* Copy the frame into d's ring, if d is up and has room for one more from src. */
static void deliver(struct vsw_port *d, unsigned src, const u8 *frame, unsigned len, unsigned cpu)
{
	bool queued = false;

	spin_lock(&d->lock);
	if (atomic_load(&d->up) && atomic_load(&d->count) < VSW_QUEUE && d->from[src] < VSW_QUEUE_PER_SOURCE) {
		u8 *s = d->slot[(d->head + atomic_load(&d->count)) % VSW_QUEUE];

		s[0] = (u8)len;
		s[1] = (u8)(len >> 8);
		s[2] = (u8)src;
		memcpy(s + SLOT_DATA, frame, len);
		d->from[src]++;
		/* The slot's bytes before the count that hands it to the consumer. */
		atomic_fetch_add_explicit(&d->count, 1, memory_order_release);
		queued = true;
	} else {
		d->st.rx_drops++;
	}
	spin_unlock(&d->lock);
	if (queued)
		d->ops->wake(d, cpu);
}

/* The flood budget of src, topped up by the time since it last looked. */
static bool flood_token(struct vsw_port *src, u64 now_us)
{
	u64 add = (now_us - src->flood_at) * VSW_FLOOD_FPS / 1000000;

	if (add) {
		src->flood_tokens = (u32)MIN((u64)VSW_FLOOD_BURST, src->flood_tokens + add);
		/* Keep the fraction of a token earned: only whole tokens' time is used up. */
		src->flood_at = src->flood_tokens == VSW_FLOOD_BURST ? now_us
								      : src->flood_at + add * 1000000 / VSW_FLOOD_FPS;
	}
	if (!src->flood_tokens)
		return false;
	src->flood_tokens--;
	return true;
}

void vsw_send(struct vsw_port *src, const u8 *frame, unsigned len, u64 now_us, unsigned cpu)
{
	unsigned s = index_of(src);
	const u8 *dst = frame, *from = frame + 6;
	int to;

	if (len < VSW_FRAME_MIN || len > VSW_FRAME_MAX || is_multicast(from) || others_address(src, from)) {
		spin_lock(&src->lock);
		src->st.tx_drops++;
		spin_unlock(&src->lock);
		return;
	}
	to = learn_and_look(s, dst, from);
	if ((is_multicast(dst) || to < 0) && !flood_token(src, now_us)) {
		spin_lock(&src->lock);
		src->st.tx_drops++;
		src->st.flood_drops++;
		spin_unlock(&src->lock);
		return;
	}
	spin_lock(&src->lock);
	src->st.tx_frames++;
	src->st.tx_bytes += len;
	spin_unlock(&src->lock);
	if (!is_multicast(dst) && to >= 0) {
		if ((unsigned)to != s)
			deliver(&sw.port[to], s, frame, len, cpu);
		return;
	}
	for (unsigned i = 0; i < VSW_PORTS; i++)
		if (i != s && sw.port[i].ops)
			deliver(&sw.port[i], s, frame, len, cpu);
}

const u8 *vsw_peek(struct vsw_port *p, unsigned *len)
{
	const u8 *s;

	if (!atomic_load_explicit(&p->count, memory_order_acquire))
		return NULL;
	s = p->slot[p->head];
	*len = s[0] | s[1] << 8;
	return s + SLOT_DATA;
}

static void take(struct vsw_port *p, bool delivered)
{
	const u8 *s = p->slot[p->head];

	spin_lock(&p->lock);
	if (delivered) {
		p->st.rx_frames++;
		p->st.rx_bytes += s[0] | s[1] << 8;
	} else {
		p->st.rx_drops++;
	}
	p->from[s[2]]--;
	p->head = (p->head + 1) % VSW_QUEUE;
	atomic_fetch_sub(&p->count, 1);
	spin_unlock(&p->lock);
}

void vsw_pop(struct vsw_port *p)
{
	take(p, true);
}

void vsw_drop(struct vsw_port *p)
{
	take(p, false);
}

void vsw_flush(struct vsw_port *p)
{
	spin_lock(&p->lock);
	p->st.rx_drops += atomic_load(&p->count);
	p->head = 0;
	atomic_store(&p->count, 0);
	memset(p->from, 0, sizeof(p->from));
	spin_unlock(&p->lock);
}

void vsw_port_stats(struct vsw_port *p, struct vsw_stats *out, u8 mac[6], bool *up)
{
	spin_lock(&p->lock);
	*out = p->st;
	memcpy(mac, p->mac, 6);
	*up = atomic_load(&p->up);
	spin_unlock(&p->lock);
}
