/*
 * A page leaves a running VM because its guest said it does not need it
 * (the balloon: an inflated or reported page): core/discard.c.
 */
#ifndef QUIRE_DISCARD_H
#define QUIRE_DISCARD_H
#include <quire/types.h>

struct vm;

/*
 * The page at ipa (page aligned, in the VM's RAM) leaves the VM: its leaf
 * is cleared by break-before-make and its machine page goes back to the
 * pool, uncharged; a shared page drops this VM's reference; a page out in
 * swap frees its slot. The next access fills a zeroed page, as a first one
 * does. 1 if something left, 0 if nothing was there; -EAGAIN if it is on
 * its way to or from the disk, -EBUSY if it is being changed (it stays: try
 * again once swap_gen() moves on, or at once).
 */
int vm_discard_page(struct vm *vm, u64 ipa, unsigned cpu);
#endif
