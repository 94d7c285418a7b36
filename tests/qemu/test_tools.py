"""Tools driving a VM to completion (issue 15, item 9).

quire.exit=last-vm: once every VM has stopped, Quire powers the machine off
(PSCI SYSTEM_OFF to the firmware), so QEMU exits by itself; a VM still
running, or one restarting, keeps it up. quire.console=raw: a single VM's
lines come out without the "[name] " prefix (docs/console.md).
"""
import re

import pexpect
import pytest

from conftest import boot_vms, memtest

SEQ, FILL_RESET = 1, 17
OFF_LINE = "quire: every VM has stopped; powering the machine off (quire.exit=last-vm)"


def expect_exit(con, timeout=30):
    """QEMU ends by itself (pexpect EOF) after Quire's last line; its exit status is 0."""
    con.expect_exact(OFF_LINE, timeout=timeout)
    try:
        con.child.expect(pexpect.EOF, timeout=timeout)
    except pexpect.TIMEOUT:
        pytest.fail("QEMU did not exit after the power-off line; console tail:\n" + str(con.child.before)[-2000:])
    con.child.close()
    assert con.child.exitstatus == 0, (con.child.exitstatus, con.child.signalstatus)


def test_qemu_exits_when_the_only_vm_stops(boot, tmp_path):
    con = boot_vms(boot, tmp_path, [memtest(SEQ, mem_mib=64)], smp=2, extra=("-append", "quire.exit=last-vm"))
    con.expect(r"\[vm1\] memtest: seq ok")
    con.expect(r"quire: vm1: \d+ pages returned to the pool")
    expect_exit(con)


def test_qemu_stays_up_while_a_vm_runs_or_restarts(boot, tmp_path):
    """One VM ends at once; the other resets itself over and over (each reset a teardown
    with a restart queued): QEMU stays up until the monitor kills the second."""
    vms = [memtest(SEQ, mem_mib=64, name="done"), memtest(FILL_RESET, mem_mib=64, name="churn")]
    con = boot_vms(boot, tmp_path, vms, smp=2, timeout=60,
                   extra=("-append", "quire.input=monitor quire.exit=last-vm"))
    con.expect(r"quire: done: \d+ pages returned to the pool")
    restarts = 0
    while restarts < 3:
        i = con.child.expect(["quire: churn restarted with fresh memory", re.escape(OFF_LINE), pexpect.EOF],
                             timeout=60)
        assert i == 0, "powered off while churn still runs:\n" + str(con.child.before)[-2000:]
        restarts += 1
    # A kill is refused while churn is between a reset and its restart: try again.
    for _ in range(10):
        con.child.sendline("kill churn")
        if con.expect(r"quire: kill churn: (ok|cannot)", timeout=30).group(1) == "ok":
            break
    else:
        pytest.fail("churn was never killed")
    expect_exit(con)


def test_raw_console_has_no_prefix(boot, tmp_path):
    con = boot_vms(boot, tmp_path, [memtest(SEQ, mem_mib=64)], smp=2,
                   extra=("-append", "quire.console=raw quire.exit=last-vm"))
    con.expect(r"quire: vm1: \d+ pages returned to the pool")
    text = con.child.before
    assert re.search(r"^memtest: seq ok", text, re.M), text
    assert "[vm1]" not in text, text
    expect_exit(con)


def test_raw_console_is_for_one_vm(boot, tmp_path):
    """With two VMs, quire.console=raw is ignored (said so): whose line is whose must show."""
    vms = [memtest(SEQ, mem_mib=64), memtest(SEQ, mem_mib=64)]
    con = boot_vms(boot, tmp_path, vms, smp=2, extra=("-append", "quire.console=raw quire.exit=last-vm"))
    con.expect_exact("quire: quire.console=raw ignored: it is for a single VM, and 2 are configured")
    con.expect(r"\[vm2\] memtest: seq ok")
    expect_exit(con)
