# Quire: build, run, test and benchmark. See README.md.
#   make [PLATFORM=qemu-virt|rpi4]     build build/<platform>/quire.{elf,bin}
#   make run [SMP=4 MEM=2G BOOT=direct|uboot PLATFORM=...]
#   make test                          host unit tests + QEMU integration tests
#   make bench                         figures -> build/bench/results.json

PLATFORM ?= qemu-virt
CROSS ?= aarch64-linux-gnu-
QUIRE_CACHE ?= $(HOME)/.cache/quire
ARM64 := $(QUIRE_CACHE)/arm64
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

ifneq ($(filter $(PLATFORM),qemu-virt rpi4),$(PLATFORM))
$(error PLATFORM must be qemu-virt or rpi4, not '$(PLATFORM)')
endif

# Test-only variants get their own build directory.
VARIANT := $(if $(CRASH_TEST),-crashtest)
B := build/$(PLATFORM)$(VARIANT)

CC := $(CROSS)gcc
GCC_INC := $(shell $(CC) -print-file-name=include 2>/dev/null)

CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror \
	-ffreestanding -fno-builtin -nostdinc -isystem $(GCC_INC) \
	-march=armv8-a -mgeneral-regs-only -mstrict-align -mno-outline-atomics \
	-fpie -fno-plt -fno-stack-protector -flto -fno-tree-loop-distribute-patterns \
	-Iinclude -Iinclude/libc -Iarch/arm64/include -I$(ARM64)/include \
	-DQUIRE_VERSION='"$(VERSION)"' $(if $(CRASH_TEST),-DQUIRE_TEST_CRASH)
ASFLAGS := -D__ASSEMBLER__ -Ulinux -Iinclude -Iarch/arm64/include
LDFLAGS := -nostdlib -static-pie -Wl,--no-dynamic-linker -Wl,-z,norelro \
	-Wl,-z,max-page-size=4096 -Wl,--build-id=none -Wl,--no-warn-rwx-segments -T arch/arm64/quire.ld

SRCS := $(wildcard arch/arm64/*.S arch/arm64/*.c core/*.c pool/*.c lib/*.c drivers/*.c) \
	$(wildcard platform/$(PLATFORM)/*.c)
OBJS := $(patsubst %,$(B)/obj/%.o,$(SRCS))

.PHONY: all setup run test test-host test-qemu bench clean images FORCE
all: $(B)/quire.bin

setup:
	@scripts/setup

# V=1 shows the full commands.
Q := $(if $(V),,@)

$(B)/obj/%.c.o: %.c | setup
	@mkdir -p $(dir $@)
	@echo "  CC      $(B)/$<"
	$(Q)$(CC) $(CFLAGS) -MMD -c $< -o $@

$(B)/obj/%.S.o: %.S | setup
	@mkdir -p $(dir $@)
	@echo "  AS      $(B)/$<"
	$(Q)$(CC) $(CFLAGS) $(ASFLAGS) -MMD -c $< -o $@

$(B)/quire.elf: $(OBJS) arch/arm64/quire.ld
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $(OBJS) $(ARM64)/lib/libfdt.a -lgcc -o $@

$(B)/quire.bin: $(B)/quire.elf scripts/finish-image
	@echo "  IMAGE   $@"
	$(Q)scripts/finish-image $< $@

# Guests carried in quire.bin (arch/arm64/guest_images.S): the memtest
# test guest, Debian's arm64 kernel, the initramfs and the guest DT template.
GUEST_MEMTEST := build/guests/memtest.bin
GUEST_KERNEL := $(ARM64)/Image
GUEST_INITRD := build/guests/initramfs.cpio.gz
GUEST_DTB := build/dts/guest-virt.dtb
$(B)/obj/arch/arm64/guest_images.S.o: ASFLAGS += -DGUEST_MEMTEST=$(GUEST_MEMTEST) \
	-DGUEST_KERNEL=$(GUEST_KERNEL) -DGUEST_INITRD=$(GUEST_INITRD) -DGUEST_DTB=$(GUEST_DTB)
$(B)/obj/arch/arm64/guest_images.S.o: $(GUEST_MEMTEST) $(GUEST_KERNEL) $(GUEST_INITRD) $(GUEST_DTB)
build/guests/memtest.bin: FORCE
	$(Q)$(MAKE) -s -C tests/guests
build/guests/initramfs.cpio.gz: scripts/mkinitramfs $(wildcard tests/guests/linux/*) | setup
	@echo "  CPIO    $@"
	$(Q)scripts/mkinitramfs $@
build/dts/%.dtb: dts/%.dts
	@mkdir -p $(dir $@)
	@echo "  DTC     $@"
	$(Q)dtc -q -I dts -O dtb -o $@ $<

-include $(OBJS:.o=.d)

# Everything the tests boot.
images:
	$(MAKE) PLATFORM=qemu-virt
	$(MAKE) PLATFORM=rpi4
	$(MAKE) PLATFORM=qemu-virt CRASH_TEST=1
	$(MAKE) -C tests/shim

run: setup all
	scripts/qemu --platform $(PLATFORM) $(if $(BOOT),--boot $(BOOT)) $(if $(SMP),--smp $(SMP)) \
		$(if $(MEM),--mem $(MEM)) $(if $(MACHINE),--machine $(MACHINE)) \
		$(if $(APPEND),-- -append "$(APPEND)")

test: setup
	$(MAKE) test-host
	$(MAKE) images
	$(MAKE) test-qemu

test-host: setup
	$(MAKE) -C tests/host

test-qemu:
	/usr/bin/python3 -m pytest -v tests/qemu $(PYTEST_ARGS)

bench: setup
	$(MAKE) images
	/usr/bin/python3 scripts/bench

clean:
	rm -rf build
