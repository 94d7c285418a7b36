/*
 * What Quire keeps in invalid stage-2 leaves. A table walker ignores the
 * rest of an invalid descriptor, so those bits are Quire's: a page out on
 * the swap disk costs no memory beyond the leaf it already had. Which bits
 * they are is the arch's (arch/s2_desc.h: S2E_VALID, the bits that make a
 * descriptor valid, and S2E_BUSY, S2E_SWAP, S2E_SLOT_SHIFT, S2E_SLOT_MAX);
 * these helpers are the same everywhere. A valid leaf is the arch's own
 * business.
 *
 *   0                         empty: a fault fills it
 *   S2E_BUSY                  claimed for a moment (merge, copy-on-write): a fault retries
 *   slot << 12 | S2E_SWAP     the page is in swap slot `slot`
 *   slot << 12 | S2E_SWAP | S2E_BUSY
 *                             the page is in transit to or from that slot: a fault waits for the disk
 */
#ifndef QUIRE_S2_ENTRY_H
#define QUIRE_S2_ENTRY_H
#include <quire/types.h>
#include <arch/s2_desc.h>

static inline bool s2e_swapped(u64 e)
{
	return (e & (S2E_VALID | S2E_BUSY | S2E_SWAP)) == S2E_SWAP;
}

static inline bool s2e_transit(u64 e)
{
	return (e & (S2E_VALID | S2E_BUSY | S2E_SWAP)) == (S2E_SWAP | S2E_BUSY);
}

static inline u64 s2e_slot(u64 e)
{
	return e >> S2E_SLOT_SHIFT & S2E_SLOT_MAX;
}

static inline u64 s2e_make(u64 slot, bool transit)
{
	return slot << S2E_SLOT_SHIFT | S2E_SWAP | (transit ? S2E_BUSY : 0);
}
#endif
