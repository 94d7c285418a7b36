"""QEMU's -kernel boot protocol for images that are neither a Linux Image nor a
Quire test guest (docs/guest-platform.md, "Booting other images").

tests/guests/qemuboot.c reports what it was given: its registers at entry, its
load address, where the device tree is and whether it lies above the image and
the initramfs, /chosen's bootargs and initrd. It runs as a raw binary and as an
ELF under Quire, and the same files on bare QEMU 10 (-kernel, -initrd, -append,
the same RAM size): every line must agree, except the DT's size (QEMU's blob is
its own, unpacked). The layout is also asserted by QEMU's rule itself
(hw/arm/boot.c): a raw image at RAM + 0x80000, the initrd at RAM + min(RAM / 2,
128 MiB), the DT after it 2 MiB aligned, x0 = the DT, x1-x3 = 0; an ELF at its
segments' addresses, x0 = 0, the DT at the RAM base.
"""
import re
import struct
import subprocess

import pytest

from conftest import BUILD, ROOT, run_until_off

GUESTS = BUILD / "guests"
RAW, ELF, INITRD = GUESTS / "qemuboot.bin", GUESTS / "qemuboot-elf", GUESTS / "initramfs.cpio.gz"
RAM = 0x40000000
MiB = 1 << 20


def qb_vm(kernel, mem_mib, **kw):
    return dict(kernel=kernel, vcpus=1, memory_mib=mem_mib, resident_limit_mib=mem_mib, **kw)


# (VM in the config, the same boot on bare QEMU)
CASES = [
    (qb_vm("qemuboot", 256, initramfs="linux_initrd", bootargs="quire raw boot"),
     ["-m", "256M", "-kernel", RAW, "-initrd", INITRD, "-append", "quire raw boot"]),
    (qb_vm("qemuboot", 64), ["-m", "64M", "-kernel", RAW]),
    (qb_vm("qemuboot_elf", 128, bootargs="quire elf boot"),
     ["-m", "128M", "-kernel", ELF, "-append", "quire elf boot"]),
]


def facts(text):
    """qemuboot's report ('qemuboot: ...' lines, \r and VM prefix gone) as an ordered list."""
    lines = [l.strip() for l in text.replace("\r", "").split("\n")]
    out = [l[len("qemuboot: "):] for l in lines if l.startswith("qemuboot: ")]
    assert out and out[-1] == "done", "qemuboot did not finish:\n" + text
    return out


def field(report, prefix):
    hits = [l for l in report if l.startswith(prefix)]
    assert len(hits) == 1, (prefix, report)
    return hits[0]


def hexval(report, key):
    return int(re.search(rf"\b{key}=(0x[0-9a-f]+)", " ".join(report)).group(1), 16)


def comparable(report):
    """Everything but the DT's size, which is each one's own."""
    return [re.sub(r" totalsize=\d+", "", l) for l in report]


def run_quire(boot, tmp_path):
    text = run_until_off(boot, tmp_path, [vm for vm, _ in CASES], smp=2, mem="1G", timeout=120)
    return [facts("\n".join(l[len(f"[vm{i}] "):] for l in text.split("\n") if l.startswith(f"[vm{i}] ")))
            for i in range(1, len(CASES) + 1)]


def run_qemu(args):
    r = subprocess.run(["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-nographic",
                        "-monitor", "none", *map(str, args)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    return facts(r.stdout)


def test_raw_and_elf_booted_as_qemu_boots_them(boot, tmp_path):
    raw256, raw64, elf = run_quire(boot, tmp_path)
    rd = INITRD.stat().st_size

    # A raw binary: at RAM + 0x80000; x0 = the DT, above the image and the initrd; x1-x3 = 0.
    for r in (raw256, raw64):
        assert hexval(r, "start") == RAM + 0x80000, r
        assert [hexval(r, f"x{i}") for i in (1, 2, 3)] == [0, 0, 0], r
        assert field(r, "data loaded") == "data loaded: yes"
        assert field(r, "dt via x0").startswith(f"dt via x0 at {hex(hexval(r, 'x0'))} "), r
        assert field(r, "dt above image") == "dt above image: yes"
    initrd_at = RAM + 128 * MiB
    assert hexval(raw256, "x0") == (initrd_at + rd + 2 * MiB - 1) // (2 * MiB) * (2 * MiB)
    assert field(raw256, "initrd=") == f"initrd={hex(initrd_at)}-{hex(initrd_at + rd)}"
    assert field(raw256, "dt above initrd") == "dt above initrd: yes"
    assert field(raw256, "bootargs") == 'bootargs="quire raw boot"'
    assert hexval(raw64, "x0") == RAM + 32 * MiB  # half of 64 MiB, no initrd
    assert field(raw64, "initrd=") == "initrd=none"
    assert field(raw64, "bootargs") == "bootargs=none"  # no bootargs in the config: none, as no -append

    # An ELF: at its segments (RAM + 2 MiB), x0 = 0, the DT at the RAM base below it.
    assert hexval(elf, "start") == RAM + 2 * MiB
    assert [hexval(elf, f"x{i}") for i in range(4)] == [0, 0, 0, 0], elf
    assert field(elf, "data loaded") == "data loaded: yes"  # its second segment
    assert field(elf, "dt at the RAM base").startswith(f"dt at the RAM base at {hex(RAM)} ")
    assert field(elf, "dt below image") == "dt below image: yes"
    assert field(elf, "bootargs") == 'bootargs="quire elf boot"'

    # And line for line what QEMU itself gives the same files.
    for (_, qemu_args), got in zip(CASES, (raw256, raw64, elf)):
        assert comparable(got) == comparable(run_qemu(qemu_args)), qemu_args


def hostile_elf(path, spoil):
    """qemuboot's ELF with one field spoiled: spoil(bytearray, phoff)."""
    b = bytearray(ELF.read_bytes())
    spoil(b, struct.unpack_from("<Q", b, 32)[0])
    path.write_bytes(bytes(b))
    return path


@pytest.mark.parametrize("spoil, says", [
    (lambda b, ph: struct.pack_into("<Q", b, ph + 24, 0x3ff00000), "bytes at 0x3ff00000) is not inside the VM's RAM"),
    (lambda b, ph: struct.pack_into("<Q", b, 32, 1 << 62), "at offset 0x4000000000000000) past its end"),
    (lambda b, ph: struct.pack_into("<H", b, 56, 0xffff), "has 65535 program headers"),
    (lambda b, ph: struct.pack_into("<Q", b, ph + 56 + 32, 0x10000), "segment 1 has p_filesz 0x10000 > p_memsz"),
    (lambda b, ph: struct.pack_into("<Q", b, ph + 56 + 24, 0x40200800), "overlapping segments"),
    (lambda b, ph: b.__setitem__(4, 1), "is 32-bit"),
    (lambda b, ph: b.__setitem__(5, 2), "is not little-endian"),
    (lambda b, ph: struct.pack_into("<H", b, 18, 62), "is for machine 62, not AArch64"),
], ids=["outside-ram", "phoff", "phnum", "filesz", "overlap", "elf32", "big-endian", "machine"])
def test_hostile_elf_refused_by_the_checker(tmp_path, spoil, says):
    """vmcheck, the build's run of the checker Quire runs at boot, names the VM and the reason."""
    evil = hostile_elf(tmp_path / "evil.elf", spoil)
    (tmp_path / "c.dts").write_text(
        '/dts-v1/;\n/ {\n\tcompatible = "quire,vm-config";\n\tmachine-memory-mib = <1024>;\n'
        '\tvms {\n\t\tweird {\n\t\t\tvcpus = <1>;\n\t\t\tmemory-mib = <64>;\n'
        '\t\t\tkernel = "evil";\n\t\t};\n\t};\n};\n')
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", tmp_path / "c.dtb", tmp_path / "c.dts"],
                   check=True)
    subprocess.run(["make", "-s", "build/tools/vmcheck"], cwd=ROOT, check=True)
    r = subprocess.run([BUILD / "tools" / "vmcheck", "--image", f"evil={evil}", tmp_path / "c.dtb"],
                       capture_output=True, text=True)
    assert r.returncode != 0, r.stdout
    assert "/vms/weird: property 'kernel': ELF image 'evil' " in r.stderr, r.stderr
    assert says in r.stderr, r.stderr
    # The file unspoiled passes.
    good = subprocess.run([BUILD / "tools" / "vmcheck", "--image", f"evil={ELF}", tmp_path / "c.dtb"],
                          capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
