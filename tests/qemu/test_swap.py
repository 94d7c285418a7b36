"""Swap to a virtio-blk disk past a VM's resident limit (docs/memory.md, "Swap").

memtest's swap mode writes, verifies, rewrites at random and verifies 400
MiB of a 512 MiB VM that may hold 64 MiB; every word says which page and
which generation it belongs to, so a page read back from the wrong slot or
a stale copy fails the guest. Two such VMs run at once on one disk. A disk
error and a full swap space each stop the VM concerned, with a message,
while a VM beside it finishes its own work; with swap-full = "wait" the VM
waits instead, until the monitor kills it.
"""
import os
import re

import pytest

from conftest import boot_vms, memtest, monitor, run_until_off
from test_memory import result

SWAP, SEQ = 15, 1
LIMIT_PAGES = 64 * 256


def disk(tmp_path, mib, name="swap.img"):
    path = tmp_path / name
    path.touch()
    os.truncate(path, mib << 20)
    return path


def drive(spec):
    return ("-drive", f"if=none,id=swap,format=raw,{spec}", "-device", "virtio-blk-device,drive=swap")


def vm_lines(out, n):
    return [m.group(1) for m in re.finditer(rf"^\[vm{n}\] (.*)$", out, re.M)]


def until_reaped(boot, tmp_path, vms, extra, timeout, mem="1G"):
    """Boot, wait until every VM's memory went back to the pool (powered off or stopped); the
    text, with the monitor's stats after that."""
    con = boot_vms(boot, tmp_path, vms, smp=2, mem=mem, timeout=timeout, extra=extra, whole_lines=True)
    text = []
    for _ in vms:
        con.expect(r"quire: vm\d+: \d+ pages returned to the pool")
        text.append(con.child.before + con.child.after)
    text.append(con.read_until_quiet(quiet=0.5, limit=3))
    text.append(monitor(con, "stats"))
    return "".join(text).replace("\r", "")


def swap_vm(**kw):
    return memtest(SWAP, 1, 512, 64, swap_mib=kw.pop("swap_mib", 512), **kw)


def test_two_vms_swap_400_mib_each(boot, tmp_path):
    img = disk(tmp_path, 1100)
    out = run_until_off(boot, tmp_path, [swap_vm(), swap_vm()], smp=2, timeout=400,
                        extra=drive(f"file={img}"))
    # No partition table: all of the disk is swap, but its first 4 KiB (where a GPT would be read).
    assert re.search(r"^disk: no partition table: all of it is swap", out, re.M)
    assert re.search(r"^swap: 281599 slots of 4 KiB \(1099 MiB\)", out, re.M)
    for n in (1, 2):
        lines = vm_lines(out, n)
        assert not [l for l in lines if "FAIL" in l], lines
        m = result(lines, r"memtest: swap ok pages=(\d+) max_resident=(\d+) outs=(\d+) ins=(\d+) swapped=(\d+)")
        pages, max_resident, outs, ins, swapped = (int(x) for x in m.groups())
        assert pages == 102400
        # Sampled by the guest all along: never above the limit, and the limit is used.
        assert LIMIT_PAGES - 64 <= max_resident <= LIMIT_PAGES
        # Most of the 400 MiB went out and came back (every 16th page is zero: no disk for it).
        assert outs > pages * 3 // 4 and ins > pages // 2
        assert swapped > pages // 2
        off = re.search(rf"quire: vm{n} powered off \(faults served \d+, resident (\d+) pages", out)
        assert int(off.group(1)) <= LIMIT_PAGES
        assert re.search(rf"quire: vm{n}: \d+ pages returned to the pool \(0 still held\)", out)


def test_overcommitted_limits_evict_below_them(boot, tmp_path):
    """Two VMs that swap, limits 192 MiB each on a 384 MiB machine, each kept only 32 MiB.

    Their limits add up to more than the machine: admitted for resident-min.
    Both stress 250 MiB at once; when free pages near what is promised, the
    one wanting more evicts below its limit. Neither sees a wrong word or an
    abort, and everything goes back.
    """
    img = disk(tmp_path, 600)
    vms = [memtest(SWAP, 1, 256, 192, swap_mib=256, resident_min_mib=32) for _ in range(2)]
    out = until_reaped(boot, tmp_path, vms, drive(f"file={img}"), 300, mem="384M")
    m = re.search(r"on (\d+) MiB of machine memory .*; resident limits with stage-2 tables (\d+) MiB, "
                  r"guaranteed (\d+) MiB", out)
    machine, limits, kept = (int(x) for x in m.groups())
    assert kept < machine < limits, m.group(0)
    peaks = []
    for n in (1, 2):
        lines = vm_lines(out, n)
        assert not [l for l in lines if "FAIL" in l], lines
        m = result(lines, r"memtest: swap ok pages=(\d+) max_resident=(\d+) outs=(\d+)")
        assert int(m.group(1)) > 192 * 256 and int(m.group(3)) > 0
        peaks.append(int(m.group(2)))
        assert re.search(rf"quire: vm{n}: \d+ pages returned to the pool \(0 still held\)", out)
    assert "external abort" not in out and "QUIRE CRASH" not in out
    # Both at their limit at once would not fit: they wrote out below it.
    squeezed = [int(x) for x in re.findall(r"quire: stats vm\d .* swap_squeezed=(\d+)", out)]
    assert len(squeezed) == 2 and sum(squeezed) > 0, squeezed


# Every write fails (EIO): the first page swapped out stops the VM. Or writes go through and
# every read after the first write fails: the first page read back stops it (the boot's read of
# a partition table comes before, and must work: a disk that cannot read it is not used at all).
# Either way all its slots go back.
DISK_ERRORS = {"write": 'event = "write_aio"\n',
               "read": 'event = "read_aio"\niotype = "read"\nstate = "2"\n'}
AFTER_FIRST_WRITE = '[set-state]\nevent = "write_aio"\nstate = "1"\nnew_state = "2"\n\n'



@pytest.mark.parametrize("op", DISK_ERRORS)
def test_swap_disk_error_stops_only_that_vm(boot, tmp_path, op):
    img = disk(tmp_path, 600)
    conf = tmp_path / "blkdebug.conf"
    conf.write_text((AFTER_FIRST_WRITE if op == "read" else "") +
                    f'[inject-error]\n{DISK_ERRORS[op]}errno = "5"\nonce = "off"\n')
    out = until_reaped(boot, tmp_path, [swap_vm(), memtest(SEQ, 1, 64)], drive(f"file=blkdebug:{conf}:{img}"), 200)
    assert re.search(rf"quire: vm1: swap disk {op} error at sector \d+ \(\d+ pages\); stopping the VM", out)
    assert "quire: vm1 stopped" in out
    assert not [l for l in vm_lines(out, 1) if "swap ok" in l or "FAIL" in l]
    result(vm_lines(out, 2), r"memtest: seq ok")
    assert re.search(r"quire: vm1: \d+ pages returned to the pool \(0 still held\)", out)
    assert re.search(r"quire: swap slots=\d+ used=0 ", out)


def test_swap_space_full_stops_the_vm(boot, tmp_path):
    img = disk(tmp_path, 600)
    out = until_reaped(boot, tmp_path, [swap_vm(swap_mib=32), memtest(SEQ, 1, 64)], drive(f"file={img}"), 200)
    assert re.search(r"quire: vm1: at its resident limit \(16384 pages\) with no swap space left "
                     r"\(8192 of 8192 slots of its own", out)
    assert not [l for l in vm_lines(out, 1) if "swap ok" in l]
    result(vm_lines(out, 2), r"memtest: seq ok")
    assert re.search(r"quire: vm1: \d+ pages returned to the pool \(0 still held\)", out)


def test_swap_space_full_waits_by_policy(boot, tmp_path):
    img = disk(tmp_path, 600)
    vms = [swap_vm(swap_mib=32, swap_full="wait"), memtest(SEQ, 1, 64)]
    con = boot_vms(boot, tmp_path, vms, smp=2, timeout=200, extra=drive(f"file={img}"), whole_lines=True)
    seen = set()
    while len(seen) < 2:
        seen.add(con.expect(r"quire: vm1: at its resident limit \(16384 pages\) with no swap space left \(8192 of "
                            r"8192 slots of its own; \d+ of \d+ on the disk in use\); waiting for space "
                            r"\(swap-full = \"wait\"\)|\[vm2\] memtest: seq ok").group(0)[:6])
    # Waiting, not stopped, holding its slots; the VM beside it finished.
    assert re.search(r"vm1\s+running", monitor(con, "list"))
    st = monitor(con, "stats vm1")
    assert re.search(r"swap_slots=8192\b", st), st
    con.child.sendline("kill vm1")
    con.expect(r"quire: vm1: \d+ pages returned to the pool \(0 still held\)")
    assert re.search(r"quire: swap slots=\d+ used=0 ", monitor(con, "stats"))
    assert "QUIRE CRASH" not in con.read_until_quiet(quiet=0.5, limit=2)


def test_swap_mib_without_a_disk_is_a_hard_limit(boot, tmp_path):
    con = boot_vms(boot, tmp_path, [swap_vm()], smp=2, timeout=60)
    con.expect(r"quire: vm1: swap-mib is set but there is no swap disk: its resident limit is a hard limit")
    con.expect(r"page quota exhausted; injecting a synchronous external abort")
