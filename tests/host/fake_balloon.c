/*
 * The balloon (and the guest disks) as the monitor's tests see them (beside
 * fake_vm.c): stand-ins for core/virtio_balloon.c and core/vdisk.c, in a
 * file of their own so that a test linking fake_vm.c can take the real
 * balloon instead.
 */
#include <string.h>
#include <quire/balloon.h>
#include <quire/vdisk.h>
#include <quire/vnet.h>
#include <quire/errno.h>
#include "fake_vm.h"

/* The balloon, as the monitor drives it: only the VM named "ballooned" has one; the target is recorded. */
u32 fake_balloon_target;

int balloon_set_target(struct vm *vm, u32 pages)
{
	if (strcmp(vm->name, "ballooned"))
		return -ENODEV;
	fake_balloon_target = pages;
	return 0;
}

void balloon_info(struct vm *vm, struct balloon_info *out, unsigned cpu)
{
	(void)cpu;
	*out = (struct balloon_info){ 0 };
	if (strcmp(vm->name, "ballooned"))
		return;
	*out = (struct balloon_info){ .present = true, .driver = true, .target = fake_balloon_target,
				      .actual = fake_balloon_target, .reported = 77, .stats_valid = true };
	out->stats[BALLOON_S_MEMFREE] = 100UL << 20;
}

/* The monitor's disk line: no fake VM has a disk. */
void vdisk_info(struct vm *vm, struct vdisk_info *out)
{
	(void)vm;
	*out = (struct vdisk_info){ 0 };
}

/* The monitor's net lines: no fake VM has a network. */
bool vnet_info(struct vm *vm, struct vsw_stats *st, u8 mac[6], bool *up)
{
	(void)vm, (void)st, (void)mac, (void)up;
	return false;
}
