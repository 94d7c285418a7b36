/*
 * The hypercall ABI guests see (HVC #0 or SMC #0, SMC Calling Convention:
 * function ID in w0, arguments in x1..x3, results in x0..x3).
 *
 * PSCI (Arm DEN0022) and Quire's own calls in the SMCCC vendor-specific
 * hypervisor service range (owner 6). Unknown IDs return SMCCC_NOT_SUPPORTED.
 */
#ifndef QUIRE_HYPERCALL_H
#define QUIRE_HYPERCALL_H

#define SMCCC_NOT_SUPPORTED (-1)

#define SMCCC_VERSION 0x80000000
#define SMCCC_ARCH_FEATURES 0x80000001
#define PSCI_VERSION 0x84000000
#define PSCI_AFFINITY_INFO_64 0xc4000004
#define PSCI_MIGRATE_INFO_TYPE 0x84000006
#define PSCI_FEATURES 0x8400000a
#define PSCI_CPU_OFF 0x84000002
#define PSCI_CPU_ON_64 0xc4000003
#define PSCI_SYSTEM_OFF 0x84000008
#define PSCI_SYSTEM_RESET 0x84000009
#define PSCI_RET_SUCCESS 0
#define PSCI_RET_INVALID_PARAMS (-2)
#define PSCI_RET_NOT_SUPPORTED (-1)
#define PSCI_RET_ALREADY_ON (-4)

/* Write the byte in x1 to the VM's console. */
#define QUIRE_HC_PUTC 0xc6000001
/*
 * Memory counters of the calling VM: x0 = 0, x1 = violations answered with a
 * new page (fills), x2 = data pages mapped now, x3 = stage-2 table pages.
 */
#define QUIRE_HC_MEM_STATS 0xc6000002
/* The caller VM's 2 MiB blocks: x1 mapped now (unsplit), x2 filled since it started, x3 split since. */
#define QUIRE_HC_BLOCK_STATS 0xc6000008
/* x0 = 0, x1 = page quota, x2 = pages charged now, x3 = violations refused for the quota. */
#define QUIRE_HC_MEM_QUOTA 0xc6000003
/* Give up the rest of the time slice to another vCPU on this CPU, if one can run; x0 = 0. */
#define QUIRE_HC_YIELD 0xc6000004
/*
 * Sharing counters, all of the calling VM. x1 selects: 0 = x1 guest pages
 * mapped to the zero page, x2 = mapped to a shared or image page, x3 = COW
 * breaks; 1 = x1 full scans, x2 = volatile pages in the last one, x3 = scan
 * rate (pages per slice); 3 = x1 pages merged so far, x2 = pages hashed,
 * x3 = 0. x0 = 0, or SMCCC_NOT_SUPPORTED (x1..x3 = 0) for another x1. 2
 * gave machine-wide figures and is retired: those are the monitor's
 * (`stats`), never a guest's (docs/guest-platform.md, "What hypercalls
 * reveal").
 */
#define QUIRE_HC_SHARE_STATS 0xc6000005
/* The caller VM's swap: x1 pages written out, x2 pages read back, x3 pages on the disk now. */
#define QUIRE_HC_SWAP_STATS 0xc6000006
/*
 * The exit-profile mark: a WFI at EL1 with x0 = QUIRE_MARK_X0 and x1 =
 * QUIRE_MARK_X1 makes Quire print the VM's exit profile (the monitor's
 * `exits`) and return at once, as a WFI may: a guest brackets what it
 * measures (elsewhere it is a plain WFI). Not at EL0: Linux traps EL0's WFI
 * to itself. Only the first QUIRE_EXIT_MARKS of a VM's life print, so a
 * guest cannot fill the console. For a guest that cannot be changed, the
 * bootarg quire.exitmark=T prints every VM's profile at counter T instead.
 */
#define QUIRE_MARK_X0 0x4b52414d51554952UL /* "QUIRMARK" */
#define QUIRE_MARK_X1 0x6b72616d65786974UL /* "tixemark" */
#define QUIRE_EXIT_MARKS 4

#endif
