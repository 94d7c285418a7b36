# Quire: build, run, test and benchmark. See README.md.
#   make [PLATFORM=qemu-virt|rpi4] [VMS=dts/vms/<name>.dts]
#                                      build build/<platform>/quire.{elf,bin} (other VMS: in
#                                      build/<platform>/vms-<name>/), the VM config checked first
#   make run [SMP=4 MEM=2G BOOT=direct|uboot|tfa PLATFORM=... DISK=disk.img]
#                                      on qemu-virt the host disk is DISK, else build/disk.img
#                                      (made by 'make disk' the first time, then kept: it is the VM's)
#   make disk [DISK_IMG=build/disk.img] [DISK_PARTS="swap:256M linux:64M:ext4"]
#                                      a raw disk with a GPT: Quire's swap and the VMs' disks
#                                      (scripts/mkdisk, docs/swap-disk.md)
#   make test                          host unit tests, the arch/core layering check, QEMU tests
#   make bench                         figures -> build/bench/results.json
#   make BENCH=1                       the bench variant, build/<platform>-bench/ (make bench builds it)

PLATFORM ?= qemu-virt
CROSS ?= aarch64-linux-gnu-
QUIRE_CACHE ?= $(HOME)/.cache/quire
ARM64 := $(QUIRE_CACHE)/arm64
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

ifneq ($(filter $(PLATFORM),qemu-virt rpi4),$(PLATFORM))
$(error PLATFORM must be qemu-virt or rpi4, not '$(PLATFORM)')
endif

# Variants for tests and benchmarks get their own build directory; so does each VM configuration's image.
# CRASH_TEST=1: a CPU faults on purpose. BENCH=1: the boot-time benchmarks (bench/, quire.bench=),
# which no other image carries. NOPROF=1: no exit profile (make bench measures its cost).
VARIANT := $(if $(CRASH_TEST),-crashtest)$(if $(BENCH),-bench)$(if $(NOPROF),-noprof)
B := build/$(PLATFORM)$(VARIANT)
# The platform's own config is its default (the Pi has no disk for a VM); others build beside it.
DEFAULT_VMS := dts/vms/$(if $(filter rpi4,$(PLATFORM)),rpi4,default).dts
VMS ?= $(DEFAULT_VMS)
VMS_NAME := $(basename $(notdir $(VMS)))
O := $(B)$(if $(filter $(DEFAULT_VMS),$(VMS)),,/vms-$(VMS_NAME))

CC := $(CROSS)gcc
GCC_INC := $(shell $(CC) -print-file-name=include 2>/dev/null)

CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror \
	-ffreestanding -fno-builtin -nostdinc -isystem $(GCC_INC) \
	-march=armv8-a -mgeneral-regs-only -mstrict-align -mno-outline-atomics \
	-fpie -fno-plt -fno-stack-protector -flto -fno-tree-loop-distribute-patterns \
	-Iinclude -Iinclude/libc -Iarch/arm64/include -I$(ARM64)/include \
	-DQUIRE_VERSION='"$(VERSION)"' $(if $(CRASH_TEST),-DQUIRE_TEST_CRASH) $(if $(BENCH),-DQUIRE_BENCH) \
	$(if $(NOPROF),-DQUIRE_NO_EXIT_PROF)
ASFLAGS := -D__ASSEMBLER__ -Ulinux -Iinclude -Iarch/arm64/include
LDFLAGS := -nostdlib -static-pie -Wl,--no-dynamic-linker -Wl,-z,norelro \
	-Wl,-z,max-page-size=4096 -Wl,--build-id=none -Wl,--no-warn-rwx-segments -T arch/arm64/quire.ld

SRCS := $(filter-out arch/arm64/guest_images.S,$(wildcard arch/arm64/*.S arch/arm64/*.c core/*.c \
	pool/*.c lib/*.c drivers/*.c)) $(wildcard platform/$(PLATFORM)/*.c) $(if $(BENCH),$(wildcard bench/*.c))
OBJS := $(patsubst %,$(B)/obj/%.o,$(SRCS))
# The guest images and the VM configuration differ per configuration; the rest is shared.
IMG_OBJ := $(O)/obj/arch/arm64/guest_images.S.o

.PHONY: all setup run test test-host test-qemu bench clean images disk sdcard FORCE
all: $(O)/quire.bin

setup:
	@scripts/setup

# V=1 shows the full commands.
Q := $(if $(V),,@)

$(B)/obj/%.c.o: %.c | setup
	@mkdir -p $(dir $@)
	@echo "  CC      $(B)/$<"
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/obj/%.S.o: %.S | setup
	@mkdir -p $(dir $@)
	@echo "  AS      $(B)/$<"
	$(Q)$(CC) $(CFLAGS) $(ASFLAGS) -MMD -MP -c $< -o $@

$(O)/quire.elf: $(OBJS) $(IMG_OBJ) arch/arm64/quire.ld
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $(OBJS) $(IMG_OBJ) $(ARM64)/lib/libfdt.a -lgcc -o $@

$(O)/quire.bin: $(O)/quire.elf scripts/finish-image
	@echo "  IMAGE   $@"
	$(Q)scripts/finish-image $< $@

# Guests carried in quire.bin (arch/arm64/guest_images.S): the memtest
# test guest, Debian's arm64 kernel, the initramfs, the guest DT template,
# qemuboot as a raw and an ELF image (booted as QEMU's -kernel boots them),
# and the VM configuration, which vmcheck checks against them first.
GUEST_MEMTEST := build/guests/memtest.bin
GUEST_QEMUBOOT := build/guests/qemuboot.bin
GUEST_QEMUBOOT_ELF := build/guests/qemuboot-elf
GUEST_KERNEL := $(ARM64)/Image
# The linux-tools configuration's image carries the initramfs with gdb and perf instead.
GUEST_INITRD := build/guests/$(if $(filter linux-tools,$(VMS_NAME)),initramfs-tools.cpio.xz,initramfs.cpio.gz)
GUEST_DTB := build/dts/guest-virt.dtb
VMS_DTB := $(O)/vms.dtb
VMCHECK := build/tools/vmcheck
IMAGES := memtest=$(GUEST_MEMTEST) linux=$(GUEST_KERNEL) linux_initrd=$(GUEST_INITRD) \
	qemuboot=$(GUEST_QEMUBOOT) qemuboot_elf=$(GUEST_QEMUBOOT_ELF)
$(IMG_OBJ): ASFLAGS += -DGUEST_MEMTEST=$(GUEST_MEMTEST) -DGUEST_KERNEL=$(GUEST_KERNEL) \
	-DGUEST_INITRD=$(GUEST_INITRD) -DGUEST_DTB=$(GUEST_DTB) -DVMS_DTB=$(VMS_DTB) \
	-DGUEST_QEMUBOOT=$(GUEST_QEMUBOOT) -DGUEST_QEMUBOOT_ELF=$(GUEST_QEMUBOOT_ELF)
$(IMG_OBJ): arch/arm64/guest_images.S $(GUEST_MEMTEST) $(GUEST_KERNEL) $(GUEST_INITRD) $(GUEST_DTB) \
		$(GUEST_QEMUBOOT) $(GUEST_QEMUBOOT_ELF) $(O)/vms.checked
	@mkdir -p $(dir $@)
	@echo "  AS      $@"
	$(Q)$(CC) $(CFLAGS) $(ASFLAGS) -c $< -o $@
$(VMS_DTB): $(VMS) | setup
	@mkdir -p $(dir $@)
	@echo "  DTC     $@"
	$(Q)dtc -q -I dts -O dtb -o $@ $<
# A bad configuration stops the build here, with the checker's message.
$(O)/vms.checked: $(VMS_DTB) $(VMCHECK) $(GUEST_MEMTEST) $(GUEST_KERNEL) $(GUEST_INITRD) \
		$(GUEST_QEMUBOOT) $(GUEST_QEMUBOOT_ELF)
	@echo "  VMCHECK $(VMS)"
	$(Q)$(VMCHECK) $(addprefix --image ,$(IMAGES)) $(VMS_DTB) > $@ || { cat $@; rm -f $@; exit 1; }
	$(Q)$(if $(V),cat $@)
$(VMCHECK): $(wildcard tools/*.c tools/Makefile core/vmconfig* core/linux_layout.c core/image_layout.c lib/printf.c include/quire/*.h) | setup
	$(Q)$(MAKE) -s -C tools
build/guests/memtest.bin: FORCE | setup
	$(Q)$(MAKE) -s -C tests/guests
# Debian's kernel is fetched by setup.
$(GUEST_KERNEL): | setup ;
# Made by the same tests/guests make (qemuboot.c, QEMU's -kernel protocol).
$(GUEST_QEMUBOOT) $(GUEST_QEMUBOOT_ELF): build/guests/memtest.bin ;
build/guests/initramfs.cpio.gz: scripts/mkinitramfs $(filter-out %/bptest.c,$(wildcard tests/guests/linux/*)) | setup
	@echo "  CPIO    $@"
	$(Q)scripts/mkinitramfs $@
build/guests/initramfs-tools.cpio.xz: scripts/mkinitramfs $(wildcard tests/guests/linux/*) \
		$(wildcard $(QUIRE_CACHE)/arm64-tools/stamp) | setup
	@echo "  CPIO    $@"
	$(Q)scripts/mkinitramfs --tools $@
build/dts/%.dtb: dts/%.dts
	@mkdir -p $(dir $@)
	@echo "  DTC     $@"
	$(Q)dtc -q -I dts -O dtb -o $@ $<

-include $(OBJS:.o=.d)

# Everything the tests boot.
images:
	$(MAKE) PLATFORM=qemu-virt
	$(MAKE) PLATFORM=qemu-virt VMS=dts/vms/four-linux.dts
	$(MAKE) PLATFORM=qemu-virt VMS=dts/vms/linux-tools.dts
	$(MAKE) PLATFORM=rpi4
	$(MAKE) PLATFORM=qemu-virt CRASH_TEST=1
	$(MAKE) PLATFORM=qemu-virt BENCH=1
	$(MAKE) -C tests/shim

# A disk image with a GPT (scripts/mkdisk, docs/swap-disk.md): PART is NAME:SIZE[:CONTENT],
# NAME swap for Quire's swap, CONTENT ext4=DIR, ext4, file=IMG or zero.
DISK_IMG ?= build/disk.img
DISK_PARTS ?= swap:256M linux:64M:ext4
disk:
	@mkdir -p $(dir $(DISK_IMG))
	scripts/mkdisk $(DISK_IMG) $(DISK_PARTS)

# Made once, never over an existing image: what the VM wrote on it is kept from one run to the next.
$(DISK_IMG):
	@mkdir -p $(dir $@)
	scripts/mkdisk $@ $(DISK_PARTS)

RUN_DISK := $(if $(DISK),$(DISK),$(if $(filter qemu-virt,$(PLATFORM)),$(DISK_IMG)))
run: setup all $(if $(DISK),,$(RUN_DISK))
	scripts/qemu --platform $(PLATFORM) --image $(O)/quire.bin $(if $(BOOT),--boot $(BOOT)) $(if $(SMP),--smp $(SMP)) \
		$(if $(MEM),--mem $(MEM)) $(if $(MACHINE),--machine $(MACHINE)) $(if $(RUN_DISK),--disk $(RUN_DISK)) \
		$(if $(SD),--sd $(SD)) $(if $(APPEND),-- -append "$(APPEND)")

test: setup
	$(MAKE) test-host
	$(MAKE) images
	$(MAKE) test-qemu

test-host: setup
	$(MAKE) -C tests/host
	scripts/layering

test-qemu:
	/usr/bin/python3 -m pytest -v --durations=30 tests/qemu $(PYTEST_ARGS)

# An SD card image for a Raspberry Pi 4 (docs/rpi4.md): SDCARD_BOOT=uboot (default) or direct;
# RPI_FIRMWARE=dir adds the Pi's start4.elf and fixup4.dat.
sdcard: setup all
	@[ "$(PLATFORM)" = rpi4 ] || { echo "make sdcard: PLATFORM=rpi4 only"; exit 2; }
	scripts/mksdcard $(O)/sdcard.img $(O)/quire.bin $(or $(SDCARD_BOOT),uboot)

bench: setup
	$(MAKE) images
	/usr/bin/python3 scripts/bench

clean:
	rm -rf build

# For scripts/layering: a variable's value.
print-%:
	@echo $($*)
