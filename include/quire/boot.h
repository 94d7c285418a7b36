/* Core's part of booting (core/boot.c), which the arch's boot path calls once the CPU and the machine are up. */
#ifndef QUIRE_BOOT_H
#define QUIRE_BOOT_H
#include <quire/machine.h>

/*
 * The VMM pool over the RAM nobody else holds (the image, the DT at fdt,
 * reservations, the boot module), sharing, the swap disk, console input,
 * and the configured VMs, with ipa_bits of guest-physical space.
 */
void boot_core(const struct machine *m, paddr_t fdt, struct region image, unsigned ipa_bits);
/* Say why and halt this CPU: the machine cannot be used. */
void __noreturn boot_fatal(const char *why);
#endif
