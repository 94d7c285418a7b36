"""QEMU integration test harness: boot an image with scripts/qemu and read its console."""
import itertools
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pexpect
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
from vmconfig import linux, memtest, quota_pages, vm_config  # noqa: E402,F401  (re-exported)

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
CACHE = pathlib.Path(os.environ.get("QUIRE_CACHE", pathlib.Path.home() / ".cache" / "quire"))
LOGS = BUILD / "test-logs"
PROMPT = "~ # "
BOOT_TIMEOUT = 180          # reset to the shell; ~10-20 s under TCG, more on a busy host


class Console:
    """A running QEMU with the console on a pty; every byte is logged."""

    def __init__(self, args, log_path, timeout):
        self.log = open(log_path, "w", encoding="utf-8", errors="replace")
        self.child = pexpect.spawn(str(ROOT / "scripts" / "qemu"), args, cwd=str(ROOT),
                                   encoding="utf-8", codec_errors="replace",
                                   timeout=timeout, logfile=self.log)

    def expect(self, pattern, timeout=-1):
        """Wait for a regular expression; returns the match (timeout -1: the boot's)."""
        self.child.expect(pattern, timeout=timeout)
        return self.child.match

    def expect_exact(self, text, timeout=-1):
        self.child.expect_exact(text, timeout=timeout)

    def read_until_quiet(self, quiet=1.0, limit=30):
        """Everything printed until nothing new arrives for `quiet` seconds."""
        # What the last expect read past its match first (read_nonblocking reads only the pipe).
        out = [self.child.buffer]
        self.child.buffer = self.child.string_type()
        try:
            for _ in range(int(limit / quiet)):
                out.append(self.child.read_nonblocking(65536, timeout=quiet))
        except (pexpect.TIMEOUT, pexpect.EOF):
            pass
        return "".join(out)

    def close(self):
        self.child.close(force=True)
        self.log.close()


@pytest.fixture
def boot(request):
    """boot(*scripts_qemu_args, timeout=30) -> Console; QEMU is killed after the test."""
    started = []
    LOGS.mkdir(parents=True, exist_ok=True)

    def _boot(*args, timeout=30):
        name = request.node.name.replace("/", "_")
        con = Console(list(args), LOGS / f"{name}.{len(started)}.log", timeout)
        started.append(con)
        return con

    _boot.started = started  # for a test that needs the console a helper booted
    yield _boot
    for con in started:
        con.close()


class Guest:
    """A Linux VM under Quire, driven through its shell (it must have the console input)."""

    def __init__(self, con, name):
        self.con = con
        self.name = name
        self.seq = itertools.count(1)

    def wait_shell(self, timeout=BOOT_TIMEOUT):
        try:
            self.con.expect_exact(f"[{self.name}] quire-init: ready", timeout=timeout)
            self.con.expect_exact(PROMPT, timeout=60)
        except (pexpect.TIMEOUT, pexpect.EOF):
            pytest.fail("no shell; console tail:\n" + self.tail())
        # No line wrapping in the echo of long commands.
        self.sh("stty columns 4000")

    def quire_view(self):
        """The monitor's list and stats, for a test that timed out (best effort)."""
        try:
            focus(self.con, "the monitor", tries=4)
            return monitor(self.con, "list", timeout=10) + monitor(self.con, "stats", timeout=10)
        except BaseException as e:  # noqa: B036 (pytest's Failed too: this is only a diagnosis)
            return f"(no monitor: {type(e).__name__})"

    def tail(self):
        return str(self.con.child.before)[-3000:]

    def sh(self, cmd, timeout=60, ok=True):
        """Run one shell command line; returns its output (\\r removed)."""
        n = next(self.seq)
        sep = " " if cmd.rstrip().endswith("&") else "; "
        line = f'{cmd}{sep}echo "<$(({n}))>rc=$?"'
        self.con.child.sendline(line)
        try:
            m = self.con.expect(rf"<{n}>rc=(\d+)\r*\n", timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF):
            tail = self.tail()
            pytest.fail(f"no end of {cmd!r} within {timeout} s; console tail:\n" + tail +
                        "\nQuire's view:\n" + self.quire_view())
        out = self.con.child.before
        # Drop everything up to the end of the echoed command line.
        echo_end = out.rfind('rc=$?"')
        if echo_end >= 0:
            out = out[echo_end + len('rc=$?"'):]
        # Quire's console multiplexer starts each of the VM's lines with its name;
        # lines of other VMs and of Quire may come in between.
        lines = out.replace("\r", "").split("\n")
        prefix = f"[{self.name}] "
        out = "\n".join([lines[0]] + [l[len(prefix):] for l in lines[1:] if l.startswith(prefix)])
        out = out.lstrip("\n")
        if ok:
            assert m.group(1) == "0", f"{cmd!r} failed (exit {m.group(1)}):\n{out}"
        return out


CTRL_A3 = "\x01\x01\x01"


def focus(con, target, tries=10):
    """Move the console input (Ctrl-A three times, docs/console.md) to a VM or 'the monitor'."""
    for _ in range(tries):
        con.child.send(CTRL_A3)
        m = con.expect(r"quire: console input goes to (the monitor|\S+) \(")
        if m.group(1) == target:
            return
    pytest.fail(f"the console input never reached {target}")


def monitor(con, command, until=r"quire> ", timeout=30):
    """Run a monitor command (the monitor has the input); its output up to the next prompt."""
    con.child.sendline(command)
    con.expect_exact(command, timeout=timeout)
    con.expect(until, timeout=timeout)
    return con.child.before.replace("\r", "")


def boot_vms(boot, tmp_path, vms, smp, mem="1G", timeout=90, extra=(), whole_lines=False, platform="qemu-virt"):
    """Boot the default image with these VMs as the boot-module config.

    whole_lines: the console input starts at the monitor, so no VM streams
    and every VM line is printed whole (a streaming VM's line is cut when
    another VM prints, docs/console.md). platform "rpi4": the rpi4 build on
    raspi4b, whose CPUs and memory are the board's (smp and mem unused).
    """
    cfg = vm_config(vms, tmp_path / "vms.dtb")
    if whole_lines:
        extra = ("-append", "quire.input=monitor", *extra)
    machine = (("--platform", "rpi4", "--image", image("rpi4")) if platform == "rpi4" else
               ("--image", image(), "--smp", str(smp), "--mem", mem))
    return boot(*machine, "--", "-initrd", cfg, *extra, timeout=timeout)


def run_until_off(boot, tmp_path, vms, smp, mem="1G", timeout=90, extra=(), platform="qemu-virt"):
    """Boot Quire with these VMs and wait until every VM has powered off and
    its pages went back to the pool.

    Returns the console text (without \r) up to the last of those lines and
    whatever follows without a pause. Waiting for the lines themselves, not
    for a quiet console: a slow host can pause QEMU longer than any gap.
    """
    con = boot_vms(boot, tmp_path, vms, smp, mem, timeout, extra, whole_lines=True, platform=platform)
    text, off, back = [], set(), set()
    want = set(range(1, len(vms) + 1))
    while off != want or back != want:
        try:
            m = con.expect(r"quire: vm(\d+) powered off|quire: vm(\d+): \d+ pages returned to the pool")
        except (pexpect.TIMEOUT, pexpect.EOF):
            pytest.fail(f"VMs {sorted(want - off)} did not power off, {sorted(want - back)} kept pages; "
                        "console:\n" + "".join(text) + str(con.child.before))
        text.append(con.child.before + con.child.after)
        if m.group(1):
            off.add(int(m.group(1)))
        else:
            back.add(int(m.group(2)))
    text.append(con.read_until_quiet(quiet=0.5, limit=3))
    return "".join(text).replace("\r", "")


def image(platform="qemu-virt", variant=""):
    path = BUILD / f"{platform}{variant}" / "quire.bin"
    if not path.exists():
        pytest.fail(f"{path} is not built: run `make images`")
    return str(path)


@pytest.fixture(scope="session")
def virt_dtb(tmp_path_factory):
    """The device tree QEMU virt generates, as a file tests can edit."""
    out = tmp_path_factory.mktemp("dt") / "virt.dtb"
    subprocess.run(["qemu-system-aarch64", "-M",
                    f"virt,virtualization=on,gic-version=2,dumpdtb={out}",
                    "-cpu", "cortex-a72", "-smp", "1", "-m", "1G", "-nographic"],
                   check=True, capture_output=True)
    return out


def have(tool):
    return shutil.which(tool) is not None
