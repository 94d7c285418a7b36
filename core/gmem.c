/*
 * Guest memory for device models (include/quire/gmem.h). Each page is
 * claimed while its bytes move, so nothing can unmap, merge, evict or
 * reuse it meanwhile; when it is not mapped as the copy needs, the device
 * takes the fault its vCPU would have taken, through violation_handle.
 */
#include <string.h>
#include <quire/errno.h>
#include <quire/fault.h>
#include <quire/gmem.h>
#include <quire/vm.h>

/* Claims found busy before a copy gives up with -EBUSY: a changer holds a leaf for microseconds. */
#define GMEM_TRIES 64

/* The fault a vCPU's access to page would take, handled as one. */
static int touch(struct vm *vm, ipa_t page, bool write, enum fault_class cls, unsigned cpu)
{
	struct s2_fault f = { .ec = 0x24, .write = write, .cls = cls, .level = 3, .ipa = page };

	switch (violation_handle(vm, &f, cpu)) {
	case VIO_MAPPED:
	case VIO_RACED:
		return 0;
	case VIO_WAIT:
		return -EAGAIN;
	default:
		return -EFAULT;
	}
}

static int page_copy(struct vm *vm, ipa_t page, u64 off, u8 *buf, u64 n, bool to_guest, unsigned cpu)
{
	for (unsigned tries = 0; tries < GMEM_TRIES; tries++) {
		struct s2_slot slot;
		struct s2_leaf old;
		int rc;

		if (s2_claim(vm, page, &slot, &old) == 0) {
			bool ok = !to_guest || (old.prot & S2_W);

			if (ok) {
				u8 *p = (u8 *)page_va(old.pa) + off;

				if (to_guest)
					memcpy(p, buf, n);
				else
					memcpy(buf, p, n);
			}
			/* The same page back, young (the device used it), never executable (s2_install). */
			s2_install(vm, &slot, old.pa, old.prot);
			if (ok)
				return 0;
			/* Read-only (shared, the zero page, a clean copy of a swap slot): copy-on-write first. */
			rc = touch(vm, page, true, FAULT_PERMISSION, cpu);
		} else {
			/* Empty, in swap, or claimed by another changer meanwhile. */
			rc = touch(vm, page, to_guest, FAULT_TRANSLATION, cpu);
		}
		if (rc)
			return rc;
	}
	return -EBUSY;
}

int gmem_copy(struct vm *vm, u64 ipa, void *buf, u64 len, bool to_guest, unsigned cpu)
{
	u8 *b = buf;

	if (!len)
		return 0;
	/* Whole range first: a wrap past 2^64, or any byte outside RAM, and nothing is copied. */
	if (ipa + len < ipa || !vm_in_ram(vm, IPA(ipa)) || !vm_in_ram(vm, IPA(ipa + len - 1)))
		return -EFAULT;
	for (u64 done = 0; done < len;) {
		u64 a = ipa + done, off = a & (PAGE_SIZE - 1), n = MIN(len - done, PAGE_SIZE - off);
		int rc = page_copy(vm, IPA(a - off), off, b + done, n, to_guest, cpu);

		if (rc)
			return rc;
		done += n;
	}
	return 0;
}
