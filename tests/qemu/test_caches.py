"""Caches as a guest sees them (issue 14): set/way maintenance around turning caches off and on.

QEMU does not model caches, so no test here can see stale data; what this
shows is that the traps are taken and emulated (every SCTLR_EL1 write reads
back as written, the guest runs on) and that Quire cleans the VM to PoC at
each step KVM would: the first set/way operation, caches off, caches on.
"""
import re

from conftest import boot_vms, memtest, monitor

SETWAY = 18


def test_set_way_then_caches_off_and_on(boot, tmp_path):
    con = boot_vms(boot, tmp_path, [memtest(SETWAY, mem_mib=64), memtest(1, mem_mib=64, name="other")],
                   smp=2, whole_lines=True)
    con.expect(r"quire: vm1 vCPU 0: set/way cache maintenance: first operation: (\d+) pages cleaned")
    assert int(con.child.match.group(1)) > 64, con.child.match.group(0)
    m = con.expect(r"\[vm1\] memtest: setway (ok|FAIL)[^\r\n]*")
    assert m.group(1) == "ok", m.group(0)
    con.expect(r"quire: vm1: \d+ pages returned to the pool \(0 still held\)")
    con.expect(r"\[other\] memtest: seq ok")
    out = monitor(con, "stats")
    flushes = {n: int(v) for n, v in re.findall(r"quire: stats (\w+) .*cache_flushes=(\d+)", out)}
    # The first DC CISW, caches off, caches on; the last write (off again) is no longer trapped.
    assert flushes == {"vm1": 3, "other": 0}, out
