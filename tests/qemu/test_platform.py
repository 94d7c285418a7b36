"""The guest platform as QEMU virt shows it (issue 15), seen from bare-metal test guests."""
import re

from conftest import memtest, run_until_off

VIRTIO = 20


def test_empty_virtio_mmio_slots(boot, tmp_path):
    """All 32 slots at 0x0a000000 answer as empty version 2 transports; writes are ignored, a
    byte read of the config space reads as zero (logged once), and nothing aborts."""
    out = run_until_off(boot, tmp_path, [memtest(VIRTIO, mem_mib=64)], smp=1)
    m = re.search(r"\[vm1\] memtest: virtio (ok|FAIL)[^\n]*", out)
    assert m and m.group(1) == "ok", out
    assert "external abort" not in out and "QUIRE CRASH" not in out, out
    assert re.search(r"read of 1 bytes at device address 0xa000100, no such register for that size: "
                     r"reads as zero \(logged once\)", out), out
