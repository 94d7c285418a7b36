/*
 * vGICv2. The distributor is emulated here (trapped MMIO); the CPU
 * interface is the hardware's GICV frame mapped into the guest; Quire moves
 * pending interrupts into list registers on the vCPU's own physical CPU just
 * before it enters the guest, and retires them when the guest is done.
 *
 * One lock per VM guards the distributor state. Another CPU that makes an
 * interrupt pending for a vCPU marks it dirty and kicks its physical CPU
 * with an SGI; the list registers are only ever touched by that CPU.
 */
#include <string.h>
#include <quire/console.h>
#include <arch/cpu.h>
#include <arch/gic.h>
#include <arch/pmu.h>
#include <arch/sysreg.h>
#include <arch/vgic.h>

#define GICD_CTLR 0x000
#define GICD_TYPER 0x004
#define GICD_IIDR 0x008
#define GICD_IPRIORITYR 0x400
#define GICD_ITARGETSR 0x800
#define GICD_ICFGR 0xc00
#define GICD_SGIR 0xf00
#define GICD_CPENDSGIR 0xf10
#define GICD_SPENDSGIR 0xf20

static struct vgic vgics[MAX_VMS];

static struct vgic *vgic_of(struct vm *vm)
{
	return &vgics[vm->id - 1];
}

/*
 * A vCPU's interface, opaque to the compiler: in the switch code it is
 * inlined into, the compiler otherwise works the address out again (8
 * instructions) at each use rather than keep it in a register.
 */
static struct vgic_cpu *vgic_cpu_of(struct vgic *g, const struct vcpu *v)
{
	struct vgic_cpu *vc = &g->cpu[v->index];

	asm("" : "+r"(vc));
	return vc;
}

/* The same, with the vCPU's interface at hand (the list-register paths). */
static inline struct virq *irq_in(struct vgic *g, struct vgic_cpu *vc, unsigned intid)
{
	return intid < 32 ? &vc->priv[intid] : &g->spi[intid - 32];
}

static struct virq *irq_of(struct vgic *g, unsigned vcpu, unsigned intid)
{
	if (intid < 32)
		return &g->cpu[vcpu].priv[intid];
	if (intid < VGIC_NR_IRQS)
		return &g->spi[intid - 32];
	return NULL;
}

/*
 * The flush looks only at interrupts marked here, not at all VGIC_NR_IRQS.
 * Invariant (lock held): an interrupt that is pending (an SGI: from any
 * source), or level-sensitive with its line high, is marked. A mark may be stale; the flush drops it
 * when it finds neither holds.
 */
static void cand_mark(struct vgic *g, unsigned vcpu, unsigned intid)
{
	if (intid < 32)
		g->cpu[vcpu].ppi_cand |= 1UL << intid;
	else if (intid < VGIC_NR_IRQS)
		g->spi_cand[(intid - 32) / 64] |= 1UL << ((intid - 32) % 64);
}

void vgic_init(struct vm *vm)
{
	struct vgic *g = vgic_of(vm);

	memset(g, 0, sizeof(*g));
	for (unsigned c = 0; c < MAX_VCPUS; c++)
		for (unsigned i = 0; i < 32; i++) {
			g->cpu[c].priv[i].lr = -1;
			g->cpu[c].priv[i].edge = i < 16;
		}
	for (unsigned i = 0; i < VGIC_NR_IRQS - 32; i++) {
		g->spi[i].lr = -1;
		/* One CPU interface: every SPI goes to it, ITARGETSR is RAZ/WI (IHI 0048B 4.3.12). */
		g->spi[i].targets = vm->nvcpus == 1 ? 1 : 0;
	}
}

/* The CPU interfaces the VM has: a bit each in ITARGETSR, SGIR and [SC]PENDSGIR. */
static u8 vcpu_mask(const struct vm *vm)
{
	return (u8)((1u << vm->nvcpus) - 1);
}

static void mark_dirty(struct vm *vm, unsigned vcpu)
{
	struct vcpu *v = vm->vcpu[vcpu];

	if (!v)
		return;
	/* Sequentially consistent: ordered before vcpu_kick_irq's load of v->blocked. */
	atomic_store(&v->vgic_active, true);
	vcpu_kick_irq(v);
}

/* Kick every vCPU an SPI may go to. Lock held. */
static void spi_changed(struct vm *vm, struct virq *q)
{
	for (unsigned c = 0; c < vm->nvcpus; c++)
		if (q->targets & (1u << c))
			mark_dirty(vm, c);
}

void vgic_set_level(struct vm *vm, u32 intid, bool level)
{
	struct vgic *g = vgic_of(vm);
	struct virq *q = irq_of(g, 0, intid);

	/*
	 * The common case, on every access to a device's registers (the vPL011's
	 * for each character): no change, no lock. Only the device, under its own
	 * lock, sets its line, so a level seen equal stays equal.
	 */
	if (__atomic_load_n(&q->level, __ATOMIC_RELAXED) == level)
		return;
	spin_lock(&g->lock);
	if (q->level != level) {
		q->level = level;
		if (level) {
			/* Edge-triggered (GICD_ICFGR, as a virtio-mmio slot's is): the rising edge latches it. */
			if (q->edge)
				q->pending = true;
			cand_mark(g, 0, intid);
			spi_changed(vm, q);
		}
	}
	spin_unlock(&g->lock);
}

void vgic_set_ppi_level(struct vcpu *v, u32 intid, bool level)
{
	struct vgic *g = vgic_of(v->vm);
	struct virq *q = &g->cpu[v->index].priv[intid];

	if (q->level == level)
		return; /* the common case, on every timer look: no lock */
	spin_lock(&g->lock);
	q->level = level;
	if (level)
		cand_mark(g, v->index, intid);
	/* Rising: into a list register before entry; falling: withdrawn there if not taken yet. */
	atomic_store(&v->vgic_active, true);
	spin_unlock(&g->lock);
	if (level && v->pcpu != cpu_id())
		vcpu_kick_irq(v);
}

static int free_lr(struct vgic_cpu *vc);
static void lr_put(struct vgic_cpu *vc, struct virq *q, int i, unsigned intid, unsigned src);

/*
 * A physical PPI for the loaded vCPU (its timer's, its PMU's), left active:
 * straight into a free list register with the HW bit when it can go there
 * (enabled, not in one already), without waiting for a flush; else pending,
 * for the flush. Either way it is resampled on the entries that follow
 * while it is only pending (vgic_watch).
 *
 * The direct way takes no lock: everything it touches is this CPU's while
 * the vCPU is loaded here (its banked PPIs change only by its own traps,
 * its list-register bookkeeping only on this CPU, never concurrently with
 * this handler), except the distributor's enable, which another vCPU may
 * write meanwhile: either order is a valid one.
 */
static void forward_hw_ppi(struct vcpu *v, u32 intid)
{
	struct vgic *g = vgic_of(v->vm);
	struct vgic_cpu *vc = &g->cpu[v->index];
	struct virq *q = &vc->priv[intid];
	int i;

	q->hw = true;
	/* Its own list register again if the guest has finished with its last one there. */
	i = q->lr >= 0 ? (gich_read(GICH_LR(q->lr)) & GICH_LR_STATE ? -1 : q->lr) : free_lr(vc);
	if (i >= 0 && q->enabled && __atomic_load_n(&g->enabled, __ATOMIC_RELAXED)) {
		q->pending = false; /* in a list register now, as a flush would leave it */
		lr_put(vc, q, i, intid, 0);
		/*
		 * Any list register watched before is resampled one entry later: a
		 * line that dropped since the last exit lets the guest take one
		 * stale interrupt, as it may anyway between two exits.
		 */
		v->vgic_watch = VGIC_WATCH_NEXT;
		return;
	}
	spin_lock(&g->lock); /* ppi_cand is shared with the other CPUs' marks */
	q->pending = true;
	cand_mark(g, v->index, intid);
	spin_unlock(&g->lock);
	atomic_store_explicit(&v->vgic_active, true, memory_order_relaxed);
}

void vgic_forward_vtimer(struct vcpu *v)
{
	forward_hw_ppi(v, PPI_VTIMER);
}

void vgic_forward_pmu(struct vcpu *v)
{
	forward_hw_ppi(v, PPI_PMU);
}

/* --- the distributor ---------------------------------------------------- */

static u32 bits_read(struct vgic *g, unsigned vcpu, unsigned first, int what)
{
	u32 v = 0;

	for (unsigned i = 0; i < 32; i++) {
		struct virq *q = irq_of(g, vcpu, first + i);
		bool b;

		if (!q)
			break;
		switch (what) {
		case 0: b = q->enabled; break;
		case 1: b = q->pending || (q->level && !q->edge) || (first + i < 16 && g->cpu[vcpu].sgi_src[first + i]); break;
		default: b = false; break; /* active: lives in the list registers */
		}
		v |= (u32)b << i;
	}
	return v;
}

static void bits_write(struct vm *vm, struct vgic *g, unsigned vcpu, unsigned first, int what, u32 val)
{
	for (unsigned i = 0; i < 32; i++) {
		struct virq *q = irq_of(g, vcpu, first + i);

		if (!q)
			break;
		if (!(val & (1u << i)))
			continue;
		/* SGIs are made pending and cleared through [SC]PENDSGIR only. */
		if (first + i < 16 && (what == 2 || what == 3))
			continue;
		switch (what) {
		case 0: q->enabled = true; break;  /* ISENABLER */
		case 1: q->enabled = false; break; /* ICENABLER */
		case 2: q->pending = true; cand_mark(g, vcpu, first + i); break; /* ISPENDR */
		case 3: q->pending = false; break; /* ICPENDR */
		default: break;			   /* active bits: ignored */
		}
		if (what == 0 || what == 2) {
			if (first + i < 32)
				mark_dirty(vm, vcpu);
			else
				spi_changed(vm, q);
		}
	}
}

/* A mailbox word holds 8 SGIs of 8 sources each: one bit per (SGI, source vCPU). */
_Static_assert(MAX_VCPUS <= 8, "sgi_mail: 8 sources per SGI");

/*
 * GICD_SGIR, without the lock: each SGI goes into its target's mail, and
 * the target's CPU takes it, straight into a list register when it can
 * (vgic_take_sgis, on the kick) or in the flush before that vCPU's next
 * entry (a target on this CPU, not loaded, or blocked).
 */
static void send_sgi(struct vm *vm, unsigned from, u32 sgir)
{
	unsigned id = sgir & 0xf, filter = (sgir >> 24) & 3;
	u32 mask = (sgir >> 16) & 0xff;

	if (filter == 1)
		mask = vcpu_mask(vm) & ~(1u << from);
	else if (filter == 2)
		mask = 1u << from;
	else if (filter == 3)
		return; /* reserved */
	for (mask &= vcpu_mask(vm); mask; mask &= mask - 1) {
		struct vcpu *t = vm->vcpu[__builtin_ctz(mask)];

		if (!t)
			continue;
		/* Sequentially consistent: before vcpu_kick_irq's look at t (and t's at its mail). */
		atomic_fetch_or(&t->sgi_mail[id / 8], 1UL << ((id % 8) * 8 + from));
		if (t->pcpu == cpu_id())
			mark_dirty(vm, t->index); /* no kick will come here: the flush takes it */
		else
			vcpu_kick_irq(t);
	}
}

void vgic_sgir_write(struct vcpu *v, u32 sgir)
{
	send_sgi(v->vm, v->index, sgir);
}

/* The vCPU's mail into its pending SGIs: before anything looks at them. Lock held, on its CPU. */
static void mail_take(struct vgic_cpu *vc, struct vcpu *v)
{
	for (unsigned w = 0; w < ARRAY_SIZE(v->sgi_mail); w++) {
		u64 m = atomic_load_explicit(&v->sgi_mail[w], memory_order_relaxed);

		if (m)
			m = atomic_exchange(&v->sgi_mail[w], 0);
		for (; m; m &= m - 1) {
			unsigned b = __builtin_ctzl(m), id = w * 8 + b / 8;

			vc->sgi_src[id] |= 1u << (b % 8);
			vc->ppi_cand |= 1UL << id;
		}
	}
}

static bool byte_ok(u64 off)
{
	return (off >= GICD_IPRIORITYR && off < GICD_ICFGR) ||
	       (off >= GICD_CPENDSGIR && off < GICD_SPENDSGIR + 0x10);
}

/* Put byte b of an access in (read) or take it out (write). */
static void lane_put(u64 *val, unsigned b, u8 byte)
{
	*val = (b ? *val : 0) | (u64)byte << (8 * b);
}

static u8 lane_get(const u64 *val, unsigned b)
{
	return (u8)(*val >> (8 * b));
}

/*
 * One byte of IPRIORITYR or ITARGETSR. Lock held. Targets of SGIs and PPIs
 * are read-only and read as the accessing CPU interface; those of SPIs keep
 * only the CPU interfaces the VM has; with one CPU interface all of
 * ITARGETSR is RAZ/WI (IHI 0048B 4.3.12).
 */
static void byte_field(struct vm *vm, struct vgic *g, unsigned c, u64 off, bool write, u64 *val, unsigned b)
{
	bool prio = off < GICD_ITARGETSR;
	unsigned intid = off & 0x3ff;
	struct virq *q = irq_of(g, c, intid);
	u8 byte = 0;

	if (!q || (!prio && vm->nvcpus == 1)) {
		/* not implemented, or uniprocessor targets: RAZ/WI */
	} else if (prio) {
		if (write)
			q->prio = lane_get(val, b) & 0xf8; /* 5 bits, as the list registers hold */
		byte = q->prio;
	} else if (intid < 32) {
		byte = 1u << c;
	} else {
		if (write) {
			q->targets = lane_get(val, b) & vcpu_mask(vm);
			spi_changed(vm, q);
		}
		byte = q->targets;
	}
	if (!write)
		lane_put(val, b, byte);
}

/*
 * One byte of CPENDSGIR/SPENDSGIR: SGI (off & 0xf), a bit per source CPU
 * interface, banked per target (the accessing vCPU). Lock held. An SGI
 * already in a list register is the CPU interface's, not shown here.
 */
static void pendsgi_byte(struct vm *vm, struct vgic *g, unsigned c, u64 off, bool write, u64 *val, unsigned b)
{
	u16 *src = &g->cpu[c].sgi_src[off & 0xf];

	if (!write) {
		lane_put(val, b, (u8)*src);
	} else if (off >= GICD_SPENDSGIR) {
		*src |= lane_get(val, b) & vcpu_mask(vm);
		if (*src) {
			cand_mark(g, c, off & 0xf);
			mark_dirty(vm, c);
		}
	} else {
		*src &= ~lane_get(val, b);
	}
}

bool vgic_dist_access(struct vcpu *v, u64 off, unsigned size, bool write, u64 *val)
{
	struct vm *vm = v->vm;
	struct vgic *g = vgic_of(vm);
	unsigned c = v->index;
	bool ok = true;

	/* Word access everywhere; byte access to the byte-accessible ones only (IHI 0048B 4.1.4). */
	if ((size != 4 && !(size == 1 && byte_ok(off))) || (off & (size - 1)))
		return false;
	/* Constants first, without the lock (a guest polls TYPER, say, on every probe). */
	if (off == GICD_TYPER || off == GICD_IIDR || off >= 0xfd0) {
		if (write)
			return true; /* read-only: writes ignored */
		*val = off == GICD_TYPER ? (VGIC_NR_IRQS / 32 - 1) | (vm->nvcpus - 1) << 5 :
		       off == GICD_IIDR	 ? 0x0200043b /* Arm, GIC-400 revision */ :
		       off == 0xfe8	 ? 0x2b /* ICPIDR2: GICv2 */ : 0; /* other ID registers: RAZ */
		return true;
	}
	if (off == GICD_SGIR) {
		/* A guest's IPIs: no lock. Write-only: reads as zero. */
		if (write)
			vgic_sgir_write(v, (u32)*val);
		else
			*val = 0;
		return true;
	}
	spin_lock(&g->lock);
	mail_take(&g->cpu[c], v); /* [SC]PENDSGIR and ISPENDR0 show them */
	if (off >= GICD_IPRIORITYR && off < GICD_ICFGR) {
		for (unsigned b = 0; b < size; b++)
			byte_field(vm, g, c, off + b, write, val, b);
		spin_unlock(&g->lock);
		return true;
	}
	if (off >= GICD_CPENDSGIR && off < GICD_SPENDSGIR + 0x10) {
		for (unsigned b = 0; b < size; b++)
			pendsgi_byte(vm, g, c, off + b, write, val, b);
		spin_unlock(&g->lock);
		return true;
	}
	if (!write)
		*val = 0;
	if (off == GICD_CTLR) {
		if (write)
			g->enabled = *val & 1;
		else
			*val = g->enabled;
	} else if (off >= 0x100 && off < 0x400) {
		unsigned group = (off - 0x100) / 0x80, first = ((off & 0x7f) / 4) * 32;

		/* ISENABLER, ICENABLER, ISPENDR, ICPENDR, ISACTIVER, ICACTIVER */
		if (write)
			bits_write(vm, g, c, first, group, (u32)*val);
		else
			*val = bits_read(g, c, first, group / 2);
	} else if (off >= 0xc00 && off < 0xd00) {
		unsigned first = (off - 0xc00) / 4 * 16;

		for (unsigned i = 0; i < 16; i++) {
			struct virq *q = irq_of(g, c, first + i);

			if (!q)
				break;
			if (write && first + i >= 32) {
				q->edge = (*val >> (2 * i + 1)) & 1;
				cand_mark(g, c, first + i); /* now level-sensitive, perhaps with its line high */
			} else if (!write) {
				*val |= (u64)(q->edge ? 2 : 0) << (2 * i);
			}
		}
	} else if (off >= 0x080 && off < 0x100) {
		/* IGROUPR: everything is Group 0 here; RAZ/WI */
	} else {
		ok = false;
	}
	spin_unlock(&g->lock);
	return ok;
}

/* --- list registers ------------------------------------------------------ */

static u32 lr_value(struct virq *q, unsigned intid, unsigned src)
{
	u32 lr = intid | (u32)(q->prio >> 3) << GICH_LR_PRIO_SHIFT | GICH_LR_PENDING;

	if (q->hw)
		lr |= GICH_LR_HW | (u32)intid << GICH_LR_PHYS_SHIFT;
	else if (intid < 16)
		lr |= src << GICH_LR_PHYS_SHIFT;
	else if (!q->edge)
		lr |= GICH_LR_EOI; /* level: resample when the guest is done */
	return lr;
}

/* Interrupt intid (from src, an SGI's) into list register i. Lock held, or the CPU's own (forward_hw_ppi). */
static void lr_put(struct vgic_cpu *vc, struct virq *q, int i, unsigned intid, unsigned src)
{
	q->lr = i;
	vc->lr_irq[i] = intid;
	vc->lr_used |= 1u << i;
	if (q->hw || !q->edge)
		vc->lr_watch |= 1u << i;
	else
		vc->lr_watch &= ~(1u << i);
	gich_write(GICH_LR(i), lr_value(q, intid, src));
}

/*
 * Retire list registers the guest has finished with. A level-sensitive
 * interrupt still only pending in one whose line has dropped since (the
 * emulated timer masked, the UART drained) is withdrawn too: its pending
 * state follows its level. Lock held.
 */
static void sync_lrs(struct vgic *g, struct vgic_cpu *vc)
{
	for (u32 used = vc->lr_used; used; used &= used - 1) {
		unsigned i = __builtin_ctz(used);
		u32 state = gich_read(GICH_LR(i)) & GICH_LR_STATE;
		struct virq *q = irq_in(g, vc, vc->lr_irq[i]);

		if (state && (state != GICH_LR_PENDING || q->edge || q->hw || q->level || q->pending))
			continue;
		q->lr = -1;
		vc->lr_used &= ~(1u << i);
		gich_write(GICH_LR(i), 0);
	}
}

static inline bool wants_lr(struct vgic *g, struct virq *q, unsigned intid, unsigned vcpu)
{
	if (q->lr >= 0 || !q->enabled || !g->enabled)
		return false;
	if (intid >= 32 && !(q->targets & (1u << vcpu)))
		return false;
	return q->pending || (q->level && !q->edge);
}

static int free_lr(struct vgic_cpu *vc)
{
	unsigned i = __builtin_ctz(~vc->lr_used); /* never all ones: at most VGIC_MAX_LRS */

	return i < gich_nr_lrs() ? (int)i : -1;
}

/*
 * The virtual timer's interrupt is a level: CNTV_CTL_EL0 ENABLE and ISTATUS
 * set, IMASK clear; the PMU's too: an enabled overflow flag with PMCR_EL0.E.
 * Forwarded, it was latched pending; if the guest has since turned the
 * source off or masked it, the interrupt is no longer pending (the
 * architecture's level follows the output), so it goes, and the physical PPI
 * held active for it is released. Only a pending one: once the guest has
 * taken it, its own deactivation ends it (the HW bit). Called with the vCPU
 * loaded (its timer and PMU registers are the CPU's), before every entry
 * that syncs the list registers, so also after each load. Lock held.
 */
static inline void hw_ppi_resample(struct vgic_cpu *vc, u32 intid, bool (*level)(void))
{
	struct virq *q = &vc->priv[intid];

	if (!q->hw || level())
		return;
	if (q->lr >= 0) {
		if ((gich_read(GICH_LR(q->lr)) & GICH_LR_STATE) != GICH_LR_PENDING)
			return;
		gich_write(GICH_LR(q->lr), 0);
		vc->lr_used &= ~(1u << q->lr);
		q->lr = -1;
	} else if (!q->pending) {
		return;
	}
	q->pending = false;
	gic_deactivate_ppi(intid);
}

static bool vtimer_level(void)
{
	return (read_sysreg(cntv_ctl_el0) & 7) == 5;
}

/*
 * Interrupt base + b for each bit b of *cand & which, in INTID order, into
 * free list registers; false if some did not fit.
 */
static bool fill_marked(struct vgic *g, struct vgic_cpu *vc, unsigned vcpu, unsigned base, u64 *cand, u64 which)
{
	for (u64 bits = *cand & which; bits; bits &= bits - 1) {
		unsigned b = __builtin_ctzl(bits), id = base + b;
		struct virq *q = irq_in(g, vc, id);
		int i;

		if (!q->pending && !(q->level && !q->edge)) {
			*cand &= ~(1UL << b); /* a stale mark */
			continue;
		}
		/*
		 * An edge again while the last one is still in this vCPU's list
		 * register (its handler runs): pending and active there, as a GIC
		 * holds it (IHI 0048B 1.4.2). Left marked instead, it would wait
		 * for some other interrupt's flush once the guest is done, and a
		 * guest that then waits in WFI for it would sleep on.
		 */
		if (q->pending && q->edge && !q->hw && q->lr >= 0 && (vc->lr_used & (1u << q->lr)) &&
		    vc->lr_irq[q->lr] == (s16)id) {
			gich_write(GICH_LR(q->lr), gich_read(GICH_LR(q->lr)) | GICH_LR_PENDING);
			q->pending = false;
			continue;
		}
		if (!wants_lr(g, q, id, vcpu))
			continue;
		if ((i = free_lr(vc)) < 0)
			return false;
		q->pending = false;
		lr_put(vc, q, i, id, 0);
	}
	return true;
}

/* Does a list register in use hold a forwarded or a level-sensitive interrupt? */
static inline bool lrs_to_watch(struct vgic_cpu *vc)
{
	return vc->lr_used & vc->lr_watch;
}

/* Retire what the guest has finished with; withdraw what is pending only on a line that dropped. Lock held. */
static void resample(struct vgic *g, struct vgic_cpu *vc)
{
	sync_lrs(g, vc);
	hw_ppi_resample(vc, PPI_VTIMER, vtimer_level);
	hw_ppi_resample(vc, PPI_PMU, pmu_irq_level);
}

/*
 * SGIs into list registers: one per (SGI, source) pair, one pair at a time
 * per SGI. False if some did not fit. Lock held.
 */
/* Out of line: the flush then saves fewer registers (7 instructions less on each IPI). */
static __attribute__((noinline)) bool fill_sgis(struct vgic *g, struct vgic_cpu *vc)
{
	for (u64 bits = vc->ppi_cand & 0xffff; bits; bits &= bits - 1) {
		unsigned id = __builtin_ctzl(bits), src;
		struct virq *q = &vc->priv[id];
		int i;

		if (!vc->sgi_src[id]) {
			vc->ppi_cand &= ~(1UL << id); /* a stale mark */
			continue;
		}
		if (!q->enabled || !g->enabled)
			continue;
		if (q->lr < 0) {
			if ((i = free_lr(vc)) < 0)
				return false;
			src = __builtin_ctz(vc->sgi_src[id]);
			vc->sgi_src[id] &= ~(1u << src);
			lr_put(vc, q, i, id, src);
		}
		/*
		 * The same SGI again while one is in a list register (active, its
		 * handler running): ask for a maintenance interrupt when the guest
		 * deactivates that one, or a vCPU that never exits would not get it.
		 */
		if (vc->sgi_src[id]) {
			u32 lr = gich_read(GICH_LR(q->lr));

			if (lr & GICH_LR_STATE)
				gich_write(GICH_LR(q->lr), lr | GICH_LR_EOI);
		}
	}
	return true;
}

void vgic_flush_slow(struct vcpu *v)
{
	struct vgic *g = vgic_of(v->vm);
	struct vgic_cpu *vc = &g->cpu[v->index];
	bool left;

	/* Cleared before looking, so a concurrent mark_dirty is never lost. */
	atomic_store(&v->vgic_active, false);
	spin_lock(&g->lock);
	mail_take(vc, v);
	resample(g, vc);
	left = !fill_sgis(g, vc);
	if (!left && (vc->ppi_cand & ~0xffffUL))
		left = !fill_marked(g, vc, v->index, 0, &vc->ppi_cand, ~0xffffUL);
	for (unsigned w = 0; w < ARRAY_SIZE(g->spi_cand) && !left; w++)
		if (g->spi_cand[w])
			left = !fill_marked(g, vc, v->index, 32 + 64 * w, &g->spi_cand[w], ~0UL);
	/* More than fits: ask for a maintenance interrupt when the list registers drain. */
	gich_write(GICH_HCR, GICH_HCR_EN | (left ? GICH_HCR_UIE : 0));
	/*
	 * Flush again before the next entry while work is left; resample on each
	 * entry while a list register holds a forwarded or a level-sensitive
	 * interrupt (its pending state follows a line). An edge one the guest has
	 * finished with can wait: whatever needs its list register next marks an
	 * interrupt, and that brings the flush, which retires it first.
	 */
	if (left)
		atomic_store_explicit(&v->vgic_active, true, memory_order_relaxed);
	v->vgic_watch = lrs_to_watch(vc) ? VGIC_WATCH : 0;
	spin_unlock(&g->lock);
}

void vgic_resample(struct vcpu *v)
{
	struct vgic *g = vgic_of(v->vm);
	struct vgic_cpu *vc = &g->cpu[v->index];

	spin_lock(&g->lock);
	resample(g, vc);
	v->vgic_watch = lrs_to_watch(vc) ? VGIC_WATCH : 0;
	spin_unlock(&g->lock);
}

/*
 * SGI id from src straight into a list register, as forward_hw_ppi does for
 * a PPI, without the lock: the loaded vCPU's SGI state is its CPU's (the
 * mail is how others reach it). Only with none of that SGI queued before
 * it, so that the flush's order and its maintenance requests hold.
 */
static bool sgi_direct(struct vgic *g, struct vgic_cpu *vc, unsigned id, unsigned src)
{
	struct virq *q = &vc->priv[id];
	int i;

	if (vc->sgi_src[id] || !q->enabled || !__atomic_load_n(&g->enabled, __ATOMIC_RELAXED))
		return false;
	/* Its own list register again if the guest has finished with its last one there. */
	i = q->lr >= 0 ? (gich_read(GICH_LR(q->lr)) & GICH_LR_STATE ? -1 : q->lr) : free_lr(vc);
	if (i < 0)
		return false;
	lr_put(vc, q, i, id, src);
	return true;
}

/* Flattened: the IPI's delivery path, with its list-register write inline (10 instructions less). */
__attribute__((flatten)) void vgic_take_sgis(struct vcpu *v)
{
	struct vgic *g = vgic_of(v->vm);
	struct vgic_cpu *vc = &g->cpu[v->index];

	for (unsigned w = 0; w < ARRAY_SIZE(v->sgi_mail); w++) {
		u64 m = atomic_load_explicit(&v->sgi_mail[w], memory_order_relaxed), back = 0;

		if (!m)
			continue;
		for (m = atomic_exchange(&v->sgi_mail[w], 0); m; m &= m - 1) {
			unsigned b = __builtin_ctzl(m);

			if (!sgi_direct(g, vc, w * 8 + b / 8, b % 8))
				back |= 1UL << b;
		}
		if (back) {
			/* Back into the mail for the flush before the next entry, which queues them. */
			atomic_fetch_or(&v->sgi_mail[w], back);
			atomic_store_explicit(&v->vgic_active, true, memory_order_relaxed);
		}
	}
}

bool vgic_lr_pending(struct vcpu *v)
{
	struct vgic_cpu *vc = &vgic_of(v->vm)->cpu[v->index];

	for (u32 used = vc->lr_used; used; used &= used - 1)
		if (gich_read(GICH_LR(__builtin_ctz(used))) & GICH_LR_PENDING)
			return true;
	return false;
}

bool vgic_wake_pending(struct vcpu *v)
{
	struct vgic *g = vgic_of(v->vm);
	struct vgic_cpu *vc = &g->cpu[v->index];
	bool yes = false;

	spin_lock(&g->lock);
	for (unsigned i = 0; i < gich_nr_lrs() && !yes; i++)
		yes = (vc->lr_used & (1u << i)) && (vc->lr_val[i] & GICH_LR_PENDING);
	for (unsigned id = 0; id < 16 && !yes; id++)
		yes = (vc->sgi_src[id] || (atomic_load(&v->sgi_mail[id / 8]) >> (id % 8 * 8) & 0xff)) &&
		      vc->priv[id].enabled && g->enabled;
	for (u64 b = vc->ppi_cand & 0xffff0000UL; b && !yes; b &= b - 1) /* PPIs: 16-31 */
		yes = wants_lr(g, &vc->priv[__builtin_ctzl(b)], __builtin_ctzl(b), v->index);
	for (unsigned w = 0; w < ARRAY_SIZE(g->spi_cand) && !yes; w++)
		for (u64 b = g->spi_cand[w]; b && !yes; b &= b - 1) {
			unsigned id = 32 + 64 * w + __builtin_ctzl(b);

			yes = wants_lr(g, irq_of(g, v->index, id), id, v->index);
		}
	spin_unlock(&g->lock);
	return yes;
}

/*
 * The list registers of the vCPU on this CPU: what vgic_save and
 * vgic_restore move are only those in use (lr_used). Every other one is
 * zero whenever a vCPU is loaded: Quire writes zero into each it stops
 * using (sync_lrs, hw_ppi_resample, vgic_save, vgic_vcpu_stop), and into
 * all of them once per CPU before its first vCPU (vgic_cpu_init).
 */
void vgic_cpu_init(void)
{
	for (unsigned i = 0; i < gich_nr_lrs(); i++)
		gich_write(GICH_LR(i), 0); /* none without a GICH frame (gich_nr_lrs() 0) */
}

/*
 * vgic_save and vgic_restore take no lock: lr_val, vmcr, apr and the active
 * flags are the vCPU's interface, touched only on its own CPU (its run
 * queue's), as are the list registers themselves; the distributor state
 * the lock guards is not touched.
 */
void vgic_save(struct vcpu *v)
{
	struct vgic *g = vgic_of(v->vm);
	struct vgic_cpu *vc = vgic_cpu_of(g, v);

	for (u32 used = vc->lr_used; used; used &= used - 1) {
		unsigned i = __builtin_ctz(used);

		vc->lr_val[i] = gich_read(GICH_LR(i));
		gich_write(GICH_LR(i), 0);
	}
	vc->vmcr = gich_read(GICH_VMCR);
	vc->apr = gich_read(GICH_APR);
	gich_write(GICH_HCR, 0);
	/*
	 * Its timer was stopped by the caller; the next vCPU's must be able to
	 * fire. Only a forwarded PPI (hw: forward_hw_ppi) is ever left active
	 * for a vCPU, and each save deactivates it: one never forwarded cannot
	 * be active for this one, and its GICD_ISACTIVER read is spared.
	 */
	vc->timer_active = vc->priv[PPI_VTIMER].hw && gic_ppi_active(PPI_VTIMER);
	if (vc->timer_active)
		gic_deactivate_ppi(PPI_VTIMER);
	/* The same for the PMU's overflow interrupt, whose level pmu_put dropped. */
	vc->pmu_active = vc->priv[PPI_PMU].hw && gic_ppi_active(PPI_PMU);
	if (vc->pmu_active)
		gic_deactivate_ppi(PPI_PMU);
}

void vgic_restore(struct vcpu *v)
{
	struct vgic *g = vgic_of(v->vm);
	struct vgic_cpu *vc = vgic_cpu_of(g, v);

	gich_write(GICH_VMCR, vc->vmcr);
	gich_write(GICH_APR, vc->apr);
	/* A forwarded timer interrupt the guest has not deactivated stays active, as it was. */
	if (vc->timer_active)
		gic_activate_ppi(PPI_VTIMER);
	if (vc->pmu_active)
		gic_activate_ppi(PPI_PMU);
	for (u32 used = vc->lr_used; used; used &= used - 1) {
		unsigned i = __builtin_ctz(used);

		gich_write(GICH_LR(i), vc->lr_val[i]);
	}
	gich_write(GICH_HCR, GICH_HCR_EN);
	/*
	 * A flush before entry only if there may be work for it. Every mark of
	 * interrupt work sets vgic_active, which only a flush clears, so marks
	 * made while v was away are still there, but for SGIs: a sender on
	 * another CPU leaves them in the mail and kicks v's CPU (its interrupt
	 * takes them once v runs). Mail already here, and candidates a flush
	 * left (disabled, or another vCPU's SPIs), are looked at now, as every
	 * load looked before. List registers the guest finished with while it
	 * ran wait for the next flush, as they would had it stayed; those
	 * resampled on entry are by vgic_watch.
	 */
	u64 work = atomic_load_explicit(&v->sgi_mail[0], memory_order_relaxed) |
		   atomic_load_explicit(&v->sgi_mail[1], memory_order_relaxed) |
		   __atomic_load_n(&vc->ppi_cand, __ATOMIC_RELAXED);

	for (unsigned w = 0; w < ARRAY_SIZE(g->spi_cand); w++)
		work |= __atomic_load_n(&g->spi_cand[w], __ATOMIC_RELAXED);
	if (work)
		atomic_store(&v->vgic_active, true);
}

void vgic_vcpu_stop(struct vcpu *v)
{
	struct vgic *g = vgic_of(v->vm);
	struct vgic_cpu *vc = &g->cpu[v->index];

	spin_lock(&g->lock);
	for (unsigned i = 0; i < gich_nr_lrs(); i++) {
		if (vc->lr_used & (1u << i))
			irq_of(g, v->index, vc->lr_irq[i])->lr = -1;
		gich_write(GICH_LR(i), 0);
	}
	vc->lr_used = 0;
	v->vgic_watch = 0;
	vc->vmcr = vc->apr = 0;
	vc->timer_active = false;
	vc->pmu_active = false;
	spin_unlock(&g->lock);
	gich_write(GICH_VMCR, 0);
	gich_write(GICH_APR, 0);
	gich_write(GICH_HCR, 0);
	write_sysreg(0, cntv_ctl_el0);
	isb();
	gic_deactivate_ppi(PPI_VTIMER);
	gic_deactivate_ppi(PPI_PMU);
}
