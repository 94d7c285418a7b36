/*
 * Stage-2 aborts (ESR_EL2 EC 0x20 and 0x24) decoded into core's portable
 * struct s2_fault (entry code: trap.c calls it). Pure C over the three
 * register values, so the host tests decode arm64 syndromes with it too.
 */
#include <arch/fault_decode.h>

#define EC_IABT_LOW 0x20
#define EC_DABT_LOW 0x24

#define ISS_ISV (1u << 24)
#define ISS_SAS_SHIFT 22
#define ISS_SSE (1u << 21)
#define ISS_SRT_SHIFT 16
#define ISS_SF (1u << 15)
#define ISS_AR (1u << 14)
#define ISS_FNV (1u << 10)
#define ISS_EA (1u << 9)
#define ISS_CM (1u << 8)
#define ISS_S1PTW (1u << 7)
#define ISS_WNR (1u << 6)
#define ESR_IL (1u << 25)

static enum fault_class classify(u8 fsc, u8 *level)
{
	*level = 0;
	switch (fsc & 0x3c) {
	case 0x00:
		*level = fsc & 3;
		return FAULT_ADDR_SIZE;
	case 0x04:
		*level = fsc & 3;
		return FAULT_TRANSLATION;
	case 0x08:
		*level = fsc & 3;
		return FAULT_ACCESS_FLAG;
	case 0x0c:
		*level = fsc & 3;
		return FAULT_PERMISSION;
	}
	/* 0x10-0x1f: external aborts and parity/ECC errors, on the access or the walk; 0x11 is a tag check. */
	if (fsc >= 0x10 && fsc <= 0x1f && fsc != 0x11)
		return FAULT_EXTERNAL;
	if (fsc == 0x21)
		return FAULT_ALIGNMENT;
	if (fsc == 0x30)
		return FAULT_TLB_CONFLICT;
	return FAULT_OTHER;
}

bool fault_decode(u64 esr, u64 far, u64 hpfar, struct s2_fault *f)
{
	u32 ec = (esr >> 26) & 0x3f, iss = esr & 0x1ffffff;

	if (ec != EC_IABT_LOW && ec != EC_DABT_LOW)
		return false;
	f->ec = ec;
	f->instr = ec == EC_IABT_LOW;
	f->fsc = iss & 0x3f;
	f->cls = classify(f->fsc, &f->level);
	f->ea = iss & ISS_EA;
	f->far_valid = !(iss & ISS_FNV);
	f->il = esr & ESR_IL;
	/*
	 * WnR, CM and the instruction syndrome exist only for data aborts. A fault
	 * on the stage-2 walk of a stage-1 table (S1PTW, from a data or an
	 * instruction abort) writes exactly when it is a permission fault: with
	 * FEAT_HAFDBS the walker writes the access and dirty flags into the
	 * table, and a read-only table page (shared, swapped in, an image's)
	 * faults like a store would. So KVM decides it too (kvm_is_write_fault);
	 * WnR says nothing reliable there.
	 */
	f->s1ptw = iss & ISS_S1PTW;
	if (f->s1ptw)
		f->write = f->cls == FAULT_PERMISSION;
	else
		f->write = !f->instr && (iss & ISS_WNR);
	f->cm = !f->instr && (iss & ISS_CM);
	f->isv = !f->instr && (iss & ISS_ISV);
	f->sas = f->isv ? (iss >> ISS_SAS_SHIFT) & 3 : 0;
	f->sse = f->isv && (iss & ISS_SSE);
	f->srt = f->isv ? (iss >> ISS_SRT_SHIFT) & 0x1f : 0;
	f->sf = f->isv && (iss & ISS_SF);
	f->ar = f->isv && (iss & ISS_AR);
	f->va = far;
	/* HPFAR_EL2.FIPA (bits [43:4]) holds IPA[51:12]; the page offset comes from FAR. */
	f->ipa.bits = ((hpfar >> 4) & 0xffffffffffUL) << 12 | (far & 0xfff);
	return true;
}
