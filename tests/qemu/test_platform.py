"""The guest platform as QEMU virt shows it (issue 15), seen from the guests."""
import re
import time

import pytest

from conftest import Guest, boot_vms, focus, linux, memtest, monitor, run_until_off

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


def test_paused_vm_time_stands_still(boot, tmp_path):
    """A 2-vCPU Linux VM paused for 6 s: its clocks do not see the pause (its CNTVOFF_EL2 moves
    on at resume, as with QEMU and KVM), so it reports no lockup, and its time runs on after."""
    con = boot_vms(boot, tmp_path, [linux(2, 256)], smp=2, timeout=60)
    g = Guest(con, "vm1")
    g.wait_shell()
    t0 = float(g.sh("cat /proc/uptime").split()[0])
    focus(con, "the monitor")
    monitor(con, "pause vm1")
    time.sleep(6)
    monitor(con, "resume vm1")
    focus(con, "vm1")
    t1 = float(g.sh("cat /proc/uptime").split()[0])
    # A few monitor round trips and a shell command, not the 6 s of the pause.
    assert t1 - t0 < 3, (t0, t1)
    g.sh("sleep 1")
    t2 = float(g.sh("cat /proc/uptime").split()[0])
    assert 1 <= t2 - t1 < 3, (t1, t2)
    log = g.sh("dmesg | grep -ciE 'soft lockup|rcu.*stall|clocksource.*unstable' || true")
    assert log.split() == ["0"], g.sh("dmesg | tail -20")


IPI = 21


def test_ipis_reach_a_spinning_vcpu(boot, tmp_path):
    """65,536 IPIs to a vCPU that only spins with interrupts unmasked (no trap, no timer), the
    next sent once the handler counted the last (before its EOI: often still active): every one
    arrives, in order; then 14 SGIs at once, more than the 4 list registers hold."""
    out = run_until_off(boot, tmp_path, [memtest(IPI, vcpus=2, mem_mib=64)], smp=2, timeout=300)
    m = re.search(r"\[vm1\] memtest: ipi (ok|FAIL)[^\n]*", out)
    assert m and m.group(1) == "ok", out[-3000:]


VTIMER = 22


def test_vtimer_interrupt_follows_the_timer(boot, tmp_path):
    """The virtual timer fires with IRQs masked and is forwarded; the guest then turns the
    timer off (or masks it) and unmasks IRQs after an exit: the interrupt is not taken. Left
    on, it is taken once."""
    out = run_until_off(boot, tmp_path, [memtest(VTIMER, mem_mib=64)], smp=1)
    m = re.search(r"\[vm1\] memtest: vtimer (ok|FAIL)[^\n]*", out)
    assert m and m.group(1) == "ok", out[-3000:]


PTIMER = 24


@pytest.mark.parametrize("share_cpu", [False, True])
def test_physical_timer(boot, tmp_path, share_cpu):
    """The EL1 physical timer: its registers, its interrupt while spinning and in WFI, IMASK,
    signed TVAL; alone on a CPU and beside another VM's vCPU."""
    vms = [memtest(PTIMER, mem_mib=64, cpus=[0])]
    if share_cpu:
        vms.append(memtest(1, mem_mib=64, cpus=[0]))
    out = run_until_off(boot, tmp_path, vms, smp=1)
    m = re.search(r"\[vm1\] memtest: ptimer (ok|FAIL)[^\n]*", out)
    assert m and m.group(1) == "ok", out[-3000:]
