"""A guest's disk (core/vdisk.c) against a driver that lies: memtest's mode 29
(tests/guests/vblk_hostile.c) drives its virtio-blk disk in slot 1 by hand,
first honestly, then with requests past the end, bad sizes, unknown types,
wild descriptors, broken chains and queues, odd but legal rings, and a read
over its own rings. The guest checks each answer itself (the status byte,
DEVICE_NEEDS_RESET with the configuration interrupt bit, the device working
again); here: that only its own device minded, that Quire said so once per
kind, and that the host disk holds exactly what the guest wrote in its own
partition and nothing else anywhere."""
import random
import re

from conftest import memtest, run_until_off
from test_vdisk import drive, mkdisk, partition

MODE = 29
SECTOR = 512
ALPHA_SECTORS = 8 << 11  # alpha:8M

# The cases mode 29 runs, in order, each a `case NAME: ok` line.
ANSWERED = ["past-end-read", "past-end-write", "sector-2^64-1", "sector-2^64-8-write", "size-0", "size-100",
            "size-100-write", "size-68k-write", "size-68k-read", "segs-17x4k-write", "segs-17x512-write",
            "type-discard", "type-0xdeadbeef"]
REFUSED = ["desc-outside-ram", "desc-wraps", "desc-len-4g", "desc-next-past-table", "desc-loop", "desc-indirect",
           "desc-readable-after-writable", "chain-65", "no-header-len-0", "no-header-writable-only", "no-status",
           "avail-head-past-table", "avail-idx-jump", "queue-num-0", "queue-num-3"]
HARMLESS = ["used-over-desc", "notify-storm", "config-write", "reset-in-flight", "framing-write", "framing-read",
            "desc-changed-in-flight", "queue-regs-while-ready", "features-unoffered", "burst-write", "burst-read",
            "burst-reset"]
CASES = ANSWERED + REFUSED + HARMLESS + ["data-over-rings"]


def mix(x):
    """vblk_hostile.c's mix (a 64-bit finalizer)."""
    m = (1 << 64) - 1
    x ^= x >> 33
    x = (x * 0xff51afd7ed558ccd) & m
    x ^= x >> 33
    x = (x * 0xc4ceb9fe1a85ec53) & m
    x ^= x >> 33
    return x


def fill(length, salt):
    """The bytes vblk_hostile.c's fill(buf, length, salt) writes."""
    return b"".join(mix(a ^ (salt << 40)).to_bytes(8, "little") for a in range(0, length, 8))


def alpha_expected(segs_taken):
    """alpha as the guest leaves it: its honest writes at sector 0 and at the last 4 KiB, 12 KiB of
    noise at sector 256, the framing write at sector 512, the burst's 32 x 64 KiB from sector 1024
    every 128, and (if Quire took it) the 17 x 512-byte write at sector 64; zeros elsewhere."""
    disk = bytearray(ALPHA_SECTORS * SECTOR)
    writes = [(0, fill(4096, 1)), ((ALPHA_SECTORS - 8) * SECTOR, fill(4096, 2)), (256 * SECTOR, fill(12288, 5)),
              (512 * SECTOR, fill(4096, 6))]
    writes += [((1024 + 128 * i) * SECTOR, fill(65536, 100 + i)) for i in range(32)]
    if segs_taken:
        writes.append((64 * SECTOR, fill(68 * 1024, 4)[:17 * 512]))
    for off, data in writes:
        disk[off:off + len(data)] = data
    return bytes(disk)


def test_hostile_blk_driver_is_contained(boot, tmp_path):
    """Every lie of mode 29 ends as Quire documents (IOERR, UNSUPP, or NEEDS_RESET and a reset
    brings the disk back); Quire logs one line per kind for that disk, nothing for the VM beside
    it, which runs to its end; and on the host disk only the hostile VM's partition changed, by
    exactly what it wrote."""
    beta = random.Random(29).randbytes(8 << 20)
    (tmp_path / "beta.pattern").write_bytes(beta)
    img = mkdisk(tmp_path, "swap:16M", "alpha:8M", f"beta:8M:file={tmp_path / 'beta.pattern'}")
    before = img.read_bytes()
    a_start, a_size = partition(img, "alpha")
    b_start, b_size = partition(img, "beta")
    assert a_size == ALPHA_SECTORS and b_size == 8 << 11
    assert before[b_start * SECTOR:(b_start + b_size) * SECTOR] == beta

    text = run_until_off(boot, tmp_path, [memtest(MODE, disk="alpha"), memtest(1, disk="beta")], smp=2,
                         extra=drive(img))
    after = img.read_bytes()
    tail = text[-4000:]

    # The guest's own verdicts: the honest driver, every case, the total.
    assert re.search(rf"\[vm1\] memtest: virtio-blk-hostile honest ok capacity={ALPHA_SECTORS} size_max=4096 "
                     r"seg_max=16 id=alpha\n", text), tail
    got = re.findall(r"\[vm1\] memtest: virtio-blk-hostile case (\S+): (\S+) got=(\S+)", text)
    assert [c for c, _, _ in got] == CASES, got
    assert all(v == "ok" for _, v, _ in got), [g for g in got if g[1] != "ok"]
    how = {c: g for c, _, g in got}
    assert all(how[c] == "IOERR" for c in ANSWERED if c not in ("segs-17x512-write", "type-discard",
                                                               "type-0xdeadbeef")), how
    assert how["type-discard"] == how["type-0xdeadbeef"] == "UNSUPP", how
    assert how["segs-17x512-write"] in ("OK", "IOERR"), how
    assert all(how[c] == "NEEDS_RESET" for c in REFUSED), how
    assert all(how[c] == "OK" for c in HARMLESS), how
    assert re.search(rf"\[vm1\] memtest: virtio-blk-hostile ok cases={len(CASES)}\n", text), tail
    assert re.search(r"\[vm2\] memtest: seq ok", text), tail
    # It powered off with 32 reads offered: Quire dropped their answers, and both VMs gave back every page.
    assert re.search(r"\[vm1\] memtest: virtio-blk-hostile powering off with 32 reads", text), tail
    for vm in ("vm1", "vm2"):
        assert re.search(rf"quire: {vm}: \d+ pages returned to the pool \(0 still held\)", text), tail
    assert "FAIL" not in text and "crash" not in text.lower(), tail

    # Quire's word on it: once per kind, for vm1's disk only.
    disk_lines = re.findall(r"quire: vm1: disk 'alpha': (.*)", text)
    assert disk_lines == [
        f"a request for 1 sectors at sector {ALPHA_SECTORS}, past its end ({ALPHA_SECTORS} sectors): "
        "I/O error (logged once)",
        "a request of 0 bytes (not 512 to 65536 in whole sectors): I/O error (logged once)",
    ], disk_lines
    broken = re.findall(r"quire: vm1: virtio-blk in slot 1: (.*); the device needs a reset \(logged once\)", text)
    assert broken == ["a descriptor's buffer is outside the VM's RAM"], broken
    assert not re.search(r"quire: vm1: virtio-(?!blk in slot 1: a descriptor's buffer)", text), tail
    assert "quire: vm2: disk" not in text and "quire: vm2: virtio" not in text, tail

    # The host disk: beta as mkdisk wrote it, alpha exactly what vm1 wrote, nothing else changed.
    assert len(after) == len(before)
    a0, a1 = a_start * SECTOR, (a_start + a_size) * SECTOR
    assert after[b_start * SECTOR:(b_start + b_size) * SECTOR] == beta, "beta changed"
    assert after[:a0] == before[:a0], "something before alpha changed"
    assert after[a1:] == before[a1:], "something after alpha changed"
    alpha = after[a0:a1]
    want = alpha_expected(how["segs-17x512-write"] == "OK")
    if alpha != want:
        first = next(i for i in range(len(alpha)) if alpha[i] != want[i])
        raise AssertionError(f"alpha differs from what vm1 wrote, first at byte {first} (sector {first // SECTOR})")
