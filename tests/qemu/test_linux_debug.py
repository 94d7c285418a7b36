"""Self-hosted debug and the PMU, seen from Linux (issue 15, item 5).

The image build/qemu-virt/vms-linux-tools/quire.bin (dts/vms/linux-tools.dts)
boots one Linux VM, "linux", with 2 vCPUs, whose initramfs carries Debian's
arm64 gdb and perf (scripts/mkinitramfs --tools) and /bin/bptest
(tests/guests/linux/bptest.c: bp_loop sums 1..N in a four-instruction loop and
stores each partial sum in bp_watched).

In the guest, gdb sets a hardware breakpoint (hbreak), single-steps with
stepi, and sets a hardware watchpoint; perf stat counts cycles and
instructions. Each needs the debug registers, MDSCR_EL1 and the PMU as the
architecture describes them, and a PMU node in the guest DT.

QEMU runs with -icount shift=0,align=off: TCG's PMU implements the
instructions event (INST_RETIRED) only under -icount, and there one cycle is
one instruction, so the counts can be checked closely. On one CPU: under
-icount QEMU runs the CPUs round-robin and its PMU counts instructions off
the one global instruction clock, so with two CPUs a guest's counter also
counted whatever the other CPU ran meanwhile (its idle work, the sharing
scanner), about 3 % more at EL0. (The VM keeps its 2 vCPUs, which share the
CPU; a vCPU's counters stop while the other runs.)

Each test runs twice: under Quire ("quire"), and with the same kernel and
initramfs on bare QEMU ("bare-qemu": -M virt without virtualization, so the
kernel runs at EL1 on QEMU's own debug and PMU hardware and QEMU's DT). The
bare run shows that the tools and the assertions are right; where only the
Quire run fails, Quire is at fault.
"""
import re
import time

import pexpect
import pytest

from conftest import BOOT_TIMEOUT, BUILD, CACHE, LOGS, PROMPT, Console, Guest

IMAGE = BUILD / "qemu-virt" / "vms-linux-tools" / "quire.bin"
INITRD = BUILD / "guests" / "initramfs-tools.cpio.xz"
KERNEL = CACHE / "arm64" / "Image"
BPTEST = "/bin/bptest"
N = 1_000_000           # bp_loop iterations for perf stat
LOOP_INSNS = 4          # add, str, subs, b.ne


class BareGuest(Guest):
    """Linux straight on QEMU: its console lines come without Quire's `[name] `."""

    def wait_shell(self, timeout=BOOT_TIMEOUT):
        try:
            self.con.expect_exact("quire-init: ready", timeout=timeout)
            self.con.expect_exact(PROMPT, timeout=60)
        except (pexpect.TIMEOUT, pexpect.EOF):
            pytest.fail("no shell; console tail:\n" + self.tail())
        self.sh("stty columns 4000")

    def sh(self, cmd, timeout=60, ok=True):
        n = next(self.seq)
        self.con.child.sendline(f'{cmd}; echo "<$(({n}))>rc=$?"')
        try:
            m = self.con.expect(rf"<{n}>rc=(\d+)\r*\n", timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF):
            pytest.fail(f"no end of {cmd!r} within {timeout} s; console tail:\n" + self.tail())
        out = self.con.child.before
        out = out[out.rfind('rc=$?"') + len('rc=$?"'):].replace("\r", "").lstrip("\n")
        if ok:
            assert m.group(1) == "0", f"{cmd!r} failed (exit {m.group(1)}):\n{out}"
        return out


@pytest.fixture(scope="module", params=["quire", "bare-qemu"])
def guest(request):
    """One boot per module and platform: the guest's shell, input on its console."""
    for f in (IMAGE, INITRD):
        if not f.exists():
            pytest.fail(f"{f} is not built: run `make images`")
    LOGS.mkdir(parents=True, exist_ok=True)
    common = ["--smp", "1", "--mem", "1G", "--icount"]
    if request.param == "quire":
        args = ["--image", str(IMAGE), *common]
    else:
        args = ["--machine", "virt", "--image", str(KERNEL), *common,
                "--", "-initrd", str(INITRD), "-append", "console=ttyAMA0"]
    con = Console(args, LOGS / f"test_linux_debug.{request.param}.log", timeout=60)
    try:
        g = Guest(con, "linux") if request.param == "quire" else BareGuest(con, "")
        t0 = time.monotonic()
        g.wait_shell(BOOT_TIMEOUT)
        print(f"{request.param}: shell after {time.monotonic() - t0:.1f} s")
        yield g
    finally:
        con.close()


def gdb(g, *commands, args=""):
    """Run gdb in batch mode on bptest with these commands; its output."""
    ex = " ".join(f"-ex '{c}'" for c in commands)
    return g.sh(f"gdb -batch -nx {ex} --args {BPTEST} {args} 2>&1", timeout=120, ok=False)


def bp_loop_address(g):
    out = gdb(g, 'printf "bp_loop=%#lx\\n", (long)&bp_loop')
    m = re.search(r"bp_loop=(0x[0-9a-f]+)", out)
    assert m, out
    return int(m.group(1), 16)


def test_stepi(guest):
    """Single step alone (MDSCR_EL1.SS, no breakpoint): from _start, stopped at exec by starti."""
    out = gdb(guest, "starti", 'printf "start pc=%#lx main=%#lx\\n", $pc, (long)&bp_main',
              *["stepi", 'printf "step pc=%#lx\\n", $pc'] * 3, "continue")
    m = re.search(r"start pc=(0x[0-9a-f]+) main=(0x[0-9a-f]+)", out)
    assert m, out
    start, main = int(m.group(1), 16), int(m.group(2), 16)
    # _start: mov x0, sp; bl bp_main.
    pcs = [int(p, 16) for p in re.findall(r"step pc=(0x[0-9a-f]+)", out)]
    assert pcs == [start + 4, main, main + 4], out
    assert "bptest: n=3 sum=6" in out, out
    assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", out), out


def test_hbreak_and_stepi(guest):
    loop = bp_loop_address(guest)
    steps = 7
    cmds = ["starti", "hbreak *bp_loop", "continue",
            'printf "stop pc=%#lx x0=%ld\\n", $pc, $x0']
    cmds += ["stepi", 'printf "step pc=%#lx\\n", $pc'] * steps
    cmds += ["delete", "continue"]
    out = gdb(guest, *cmds, args="3")
    # A hardware breakpoint (not an inserted BRK), hit at bp_loop with n = 3.
    assert f"Hardware assisted breakpoint 1 at {loop:#x}" in out, out
    assert re.search(rf"Breakpoint 1, 0x0*{loop:x} in bp_loop \(\)", out), out
    assert f"stop pc={loop:#x} x0=3" in out, out
    # Each stepi runs one instruction: the set-up, then the loop (+12 to +24) and round again.
    pcs = [int(p, 16) for p in re.findall(r"step pc=(0x[0-9a-f]+)", out)]
    assert pcs == [loop + off for off in (4, 8, 12, 16, 20, 24, 12)], out
    # And the program then runs to its end undisturbed.
    assert "bptest: n=3 sum=6" in out, out
    assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", out), out


def test_hardware_watchpoint(guest):
    loop = bp_loop_address(guest)
    out = gdb(guest, "watch bp_watched", "run", "continue", "continue", "continue", args="3")
    assert "Hardware watchpoint 1: bp_watched" in out, out
    # Each store of a partial sum (3, 3+2, 3+2+1) stops after the STR at bp_loop+16.
    changes = re.findall(r"Old value = (\d+)\s+New value = (\d+)", out)
    assert changes == [("0", "3"), ("3", "5"), ("5", "6")], out
    stops = re.findall(r"(0x[0-9a-f]+) in bp_loop \(\)", out)
    assert [int(s, 16) for s in stops] == [loop + 20] * 3, out
    assert "bptest: n=3 sum=6" in out, out
    assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", out), out


def perf_stat(g, events):
    """perf stat of bptest N: {event: count} (a string such as '<not supported>' if uncounted)."""
    out = g.sh(f"perf stat -e {events} {BPTEST} {N} 2>&1", timeout=120, ok=False)
    assert f"bptest: n={N} sum={N * (N + 1) // 2}" in out, out
    counts = {}
    for ev in events.split(","):
        m = re.search(rf"^\s*([\d,]+|<[^>]+>)\s+{re.escape(ev)}\s", out, re.M)
        assert m, f"no {ev} line:\n{out}"
        v = m.group(1)
        counts[ev] = int(v.replace(",", "")) if v[0].isdigit() else v
    return counts, out


def test_perf_stat(guest):
    pmu = guest.sh("dmesg | grep -i -e 'hw perfevents' -e pmu -e hw-breakpoint", ok=False)
    counts, out = perf_stat(guest, "cycles,instructions")
    for ev, v in counts.items():
        assert isinstance(v, int) and v > 0, f"{ev}: {v}\n{out}\ndmesg:\n{pmu}"
    # The whole run, kernel (exec, exit) included: at least bp_loop's instructions.
    assert LOOP_INSNS * N <= counts["instructions"] <= 10 * LOOP_INSNS * N, out

    counts, out = perf_stat(guest, "cycles:u,instructions:u")
    for ev, v in counts.items():
        assert isinstance(v, int) and v > 0, f"{ev}: {v}\n{out}\ndmesg:\n{pmu}"
    # At EL0 bptest runs little besides bp_loop (bare QEMU: 4 N + ~500); no
    # guest-kernel or Quire instructions may count there.
    insns = counts["instructions:u"]
    assert LOOP_INSNS * N <= insns <= LOOP_INSNS * N + 100_000, out
    # Cycles: an instructions-per-cycle between 1/8 and 8 (under -icount QEMU gives 1).
    assert insns / 8 <= counts["cycles:u"] <= insns * 8, out
