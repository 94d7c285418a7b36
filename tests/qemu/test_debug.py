"""Self-hosted debug and the PMU in guests (issue 15, item 5), seen from memtest modes 25-27."""
import re

import pytest

from conftest import memtest, run_until_off

DEBUG, PMU, DBG_HOSTILE = 25, 26, 27


def verdict(out, vm, mode):
    m = re.search(rf"\[{vm}\] memtest: {mode} (ok|FAIL)[^\n]*", out)
    assert m, out[-3000:]
    assert m.group(1) == "ok", m.group(0)
    return m.group(0)


def test_breakpoint_watchpoint_step_oslock(boot, tmp_path):
    """A breakpoint, a store watchpoint and software step (through an emulated MRS and MMIO
    read, each step exception at the next instruction) fire in the guest; the OS lock holds
    breakpoints back; every DBGB/DBGW register reads back. Two vCPUs on one CPU: the second
    sees zeros where the first has values, takes none of its breakpoints, and each keeps its own."""
    out = run_until_off(boot, tmp_path, [memtest(DEBUG, vcpus=2, mem_mib=64)], smp=1)
    line = verdict(out, "vm1", "debug")
    assert "breakpoints=3 steps=6 watchpoints=1 vcpus=2" in line, line
    assert "QUIRE CRASH" not in out, out


@pytest.mark.parametrize("share_cpu", [False, True])
def test_pmu(boot, tmp_path, share_cpu):
    """The cycle counter and an event counter count, an overflow of each raises INTID 23 once,
    the ID registers say what works. Beside a spinning VM on the same CPU the counters stop
    while the vCPU is off its CPU: the cycle counter sees about half of a spinning interval."""
    vms = [memtest(PMU, mem_mib=64, cpus=[0])]
    if share_cpu:
        vms.append(memtest(PMU, mem_mib=64, cpus=[0]))  # spins through the same interval
    out = run_until_off(boot, tmp_path, vms, smp=1)
    line = verdict(out, "vm1", "pmu")
    busy = int(re.search(r"busy=(\d+)", line).group(1))
    if share_cpu:
        assert busy < 800, line
        verdict(out, "vm2", "pmu")
    else:
        assert busy > 800, line


def test_pmu_inst_retired_under_icount(boot, tmp_path):
    """Under -icount QEMU counts INST_RETIRED: the guest's event counter gives the loop's
    instructions (2 per iteration, and the MRS that reads it; EL2 not counted).
    Only the count is checked here: under -icount QEMU 10 raises no overflow interrupt."""
    out = run_until_off(boot, tmp_path, [memtest(PMU, mem_mib=64)], smp=1,
                        extra=("-icount", "shift=0,align=off"), timeout=180)
    m = re.search(r"\[vm1\] memtest: pmu count event=0x8 count=(\d+) loop=(\d+)", out)
    assert m, out[-3000:]
    assert 0 <= int(m.group(1)) - 2 * int(m.group(2)) <= 8, m.group(0)


def test_hostile_debug_and_pmu(boot, tmp_path):
    """A VM aims breakpoints and a watchpoint at EL2, writes wild values to every debug and
    PMU register, locks the OS lock and leaves overflow interrupts pending; another VM on the
    same CPU, debugging, and one counting, are unaffected; each starts from zero state."""
    vms = [memtest(DEBUG, mem_mib=64, cpus=[0]), memtest(DBG_HOSTILE, mem_mib=64, cpus=[0]),
           memtest(PMU, mem_mib=64, cpus=[0]), memtest(DBG_HOSTILE, mem_mib=64, cpus=[0])]
    out = run_until_off(boot, tmp_path, vms, smp=1, timeout=180)
    verdict(out, "vm1", "debug")
    verdict(out, "vm2", "dbg-hostile")
    verdict(out, "vm3", "pmu")
    verdict(out, "vm4", "dbg-hostile")
    assert "QUIRE CRASH" not in out and "stopping the VM" not in out, out
