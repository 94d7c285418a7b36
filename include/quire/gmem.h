/*
 * Guest memory as Quire's device models reach it (core/gmem.c): through
 * the same stage-2 paths a guest's own access takes, and never a page
 * outside the VM's RAM.
 */
#ifndef QUIRE_GMEM_H
#define QUIRE_GMEM_H
#include <quire/types.h>

struct vm;

/*
 * Copy len bytes between buf and guest-physical address ipa (to_guest:
 * into the guest). A page not filled yet is filled, one in swap is read
 * back, a shared one written to is copied first, as a vCPU's access would
 * have them. Returns:
 *   0        done;
 *   -EFAULT  some byte is outside the VM's RAM, or no page could be had for
 *            it (quota, memory): the device's error, not Quire's;
 *   -EAGAIN  a page is on its way from or to the swap disk: try again once
 *            swap_gen() has moved on from its value before the call (bytes
 *            before that page may have been copied);
 *   -EBUSY   a page stayed claimed by another changer: try again.
 * While bytes move, the page's leaf is claimed (S2E_BUSY): no merge,
 * eviction or balloon can take the page from under the copy.
 */
int gmem_copy(struct vm *vm, u64 ipa, void *buf, u64 len, bool to_guest, unsigned cpu);
#endif
