"""The swap disk's driver (drivers/virtio_blk.c, docs/swap-disk.md).

Quire finds a virtio-blk device among the virtio-mmio slots, drives it
through one split virtqueue with several requests in flight, and takes
completions by interrupt. The raw bench (boot argument quire.bench=blk,
in the bench variant only: make BENCH=1) writes a pattern, reads it back
into cleared pages and checks every word; the tests also read the pattern
from the disk file itself. Without a usable
disk (none, too small, legacy) Quire says why in one line and runs without
swap; an I/O error the disk reports is a FAIL line, never a crash.
"""
import os
import re
import struct

import pexpect
import pytest

from conftest import image, memtest, vm_config

SEQ = 1
MIB = 8  # the bench's size here: quire.bench_blk_mib
GOLDEN = 0x9e3779b97f4a7c15  # bench/blk.c, pattern()
BENCH_LINE = (r"bench: blk (write|read) pages=(\d+) pages_per_req=(\d+) ticks=(\d+) freq=(\d+)"
              r"(?: verified=(\d))?\r*\n")


def disk(tmp_path, size, name="swap.img"):
    path = tmp_path / name
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def pattern(page, word, seed):
    return (((page << 32) | word) + seed) * GOLDEN % (1 << 64)


def bench_lines(con, n=4):
    """The bench's next n figure lines as (op, pages, per_req, ticks, freq, verified), and the text before each."""
    out = []
    for _ in range(n):
        m = con.expect(BENCH_LINE)
        out.append((con.child.before, m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)),
                    int(m.group(5)), m.group(6)))
    return out


def test_bench_writes_reads_and_verifies(boot, tmp_path):
    img = disk(tmp_path, 64 << 20)
    con = boot("--image", image(variant="-bench"), "--smp", "2", "--mem", "1G", "--disk", str(img), "--",
               "-append", f"quire.novm quire.bench=blk quire.bench_blk_mib={MIB}", timeout=60)
    m = con.expect(r"swap disk: virtio-blk at 0x([0-9a-f]{8}) \(INTID (\d+)\), 64 MiB \(131072 sectors\), "
                   r"(\d+) descriptors, up to (\d+) requests in flight \((\d+) of one page\)(, write cache \(flush\))?\r*\n")
    ndesc, depth = int(m.group(3)), int(m.group(4))
    assert int(m.group(2)) >= 32  # an SPI
    assert ndesc in (32, 64, 128, 256) and depth == ndesc // 18
    m = con.expect(r"bench: blk (\d+) MiB, (\d+) requests in flight, interrupt (\d+)")
    assert (int(m.group(1)), int(m.group(2))) == (MIB, depth)
    lines = bench_lines(con)
    assert [(l[1], l[3]) for l in lines] == [("write", 1), ("read", 1), ("write", 16), ("read", 16)]
    for before, op, pages, _, ticks, freq, verified in lines:
        assert "FAIL" not in before, before
        assert pages == MIB * 256 and ticks > 0 and freq > 0
        if op == "read":
            assert verified == "1"
    # The last pass (seed 2) is on the disk itself, word for word where we look.
    with open(img, "rb") as f:
        data = f.read((MIB << 20) + 4096)
    for page in (0, 1, 255, MIB * 256 - 1):
        for word in (0, 1, 511):
            got = struct.unpack_from("<Q", data, page * 4096 + word * 8)[0]
            assert got == pattern(page, word, 2), (page, word, hex(got))
    assert not any(data[MIB << 20:]), "the bench wrote past its MiB"


def test_no_disk_swap_off_vm_runs(boot, tmp_path):
    cfg = vm_config([memtest(SEQ, 1, 64)], tmp_path / "vms.dtb")
    con = boot("--image", image(), "--smp", "2", "--mem", "1G", "--", "-initrd", cfg, timeout=60)
    con.expect_exact("swap disk: none (no virtio-blk device in the 32 virtio-mmio slots of the device "
                     "tree); swap is off")
    con.expect(r"\[vm1\] memtest: seq (ok|FAIL)[^\r\n]*")
    assert con.child.match.group(1) == "ok", con.child.match.group(0)
    con.expect(r"quire: vm1 powered off")


def test_too_small_disk_swap_off(boot, tmp_path):
    img = disk(tmp_path, 512 << 10)
    con = boot("--image", image(), "--smp", "1", "--mem", "512M", "--disk", str(img), "--",
               "-append", "quire.novm")
    m = con.expect(r"swap disk: ([^\r\n]*)\r*\n")
    assert re.fullmatch(r"virtio-blk at 0x[0-9a-f]{8} \(INTID \d+\) has 512 KiB \(1024 sectors\), less than "
                        r"the 1 MiB Quire needs to swap; swap is off", m.group(1)), m.group(1)


def test_legacy_disk_swap_off(boot, tmp_path):
    img = disk(tmp_path, 64 << 20)
    # A later -global wins over the one scripts/qemu always gives.
    con = boot("--image", image(), "--smp", "1", "--mem", "512M", "--disk", str(img), "--",
               "-append", "quire.novm", "-global", "virtio-mmio.force-legacy=true")
    m = con.expect(r"swap disk: ([^\r\n]*)\r*\n")
    assert "legacy virtio-mmio device (Version 1)" in m.group(1), m.group(1)
    assert "-global virtio-mmio.force-legacy=false; swap is off" in m.group(1), m.group(1)


def test_read_error_is_reported_not_fatal(boot, tmp_path):
    img = disk(tmp_path, 16 << 20)
    conf = tmp_path / "blkdebug.conf"
    # Every read fails with EIO (5); writes go through.
    conf.write_text('[inject-error]\nevent = "read_aio"\niotype = "read"\nerrno = "5"\n')
    cfg = vm_config([memtest(SEQ, 1, 64)], tmp_path / "vms.dtb")
    con = boot("--image", image(variant="-bench"), "--smp", "2", "--mem", "1G",
               "--disk-spec", f"file=blkdebug:{conf}:{img}", "--",
               "-initrd", cfg, "-append", "quire.bench=blk quire.bench_blk_mib=2", timeout=60)
    con.expect(r"swap disk: virtio-blk at 0x[0-9a-f]{8} \(INTID \d+\), 16 MiB")
    lines = bench_lines(con)
    write1, read1 = lines[0], lines[1]
    assert "FAIL" not in write1[0], write1[0]
    m = re.search(r"bench: blk FAIL: (\d+) of (\d+) read requests failed with an I/O error", read1[0])
    assert m, read1[0]
    assert int(m.group(1)) > 0
    assert read1[6] == "0"
    assert lines[3][6] == "0"
    # Quire goes on: the VM configuration is started and the VM runs to its end.
    con.expect(r"\[vm1\] memtest: seq (ok|FAIL)[^\r\n]*")
    assert con.child.match.group(1) == "ok", con.child.match.group(0)
    con.expect(r"quire: vm1 powered off")
    assert "FATAL" not in con.child.before and "QUIRE CRASH" not in con.child.before
