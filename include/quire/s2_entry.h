/*
 * What Quire keeps in invalid stage-2 leaves. The table walker looks only at
 * bit 0 of an invalid descriptor, so the other 63 bits are Quire's: a page
 * out on the swap disk costs no memory beyond the leaf it already had. The
 * arm64 tables and the host fake share this encoding; a valid leaf (bit 0
 * set) is the arch's own business.
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

#define S2E_VALID (1UL << 0)
#define S2E_BUSY (1UL << 1)
#define S2E_SWAP (1UL << 2)
#define S2E_SLOT_SHIFT 12
#define S2E_SLOT_MAX ((1UL << 36) - 1) /* 256 TiB of swap */

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
	return e >> S2E_SLOT_SHIFT;
}

static inline u64 s2e_make(u64 slot, bool transit)
{
	return slot << S2E_SLOT_SHIFT | S2E_SWAP | (transit ? S2E_BUSY : 0);
}
#endif
