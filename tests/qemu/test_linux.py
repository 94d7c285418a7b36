"""Linux as a Quire guest: Debian's arm64 cloud kernel with the busybox
initramfs of scripts/mkinitramfs (tests/guests/linux/), console on the
emulated PL011.

The VM comes from a VM config passed as the boot module (conftest.vm_config).
Its console lines come out of Quire's console multiplexer as `[vm1] ...`,
and what we type reaches it (it has the input from the start).
/init prints `quire-init: ready` and starts a shell with the prompt '~ # '.

Commands are written so their output cannot be mistaken for their echo:
every command ends with `echo "<$((N))>rc=$?"`, whose output `<N>rc=0` is not
in the echoed line.
"""
import itertools
import re
import time

import pexpect
import pytest

from conftest import BOOT_TIMEOUT, Guest, boot_vms, linux

VCPUS = [1, 2]
MEM_MIB = 512


def boot_linux(boot, tmp_path, vcpus, mem_mib=MEM_MIB, host_mem="1G"):
    con = boot_vms(boot, tmp_path, [linux(vcpus, mem_mib)], smp=vcpus, mem=host_mem, timeout=60)
    g = Guest(con, "vm1")
    g.wait_shell()
    return g


@pytest.mark.parametrize("vcpus", VCPUS)
def test_shell(boot, tmp_path, vcpus):
    g = boot_linux(boot, tmp_path, vcpus)
    assert g.sh("echo $((6*7))").split() == ["42"]
    # Job control: the shell has the console as its controlling terminal.
    g.sh("sleep 100 &")
    out = g.sh("jobs; kill %1; wait %1", ok=False)
    assert re.search(r"\[1\]\+\s+Running\s+sleep 100", out), out
    assert g.sh("tty").strip() == "/dev/ttyAMA0"


def test_random_pool_seeded(boot, tmp_path):
    """Quire's /chosen/rng-seed (core/entropy.c): the guest's random pool is ready before its first
    log line's clock moves, and Linux has wiped the seed from the DT it shows."""
    g = boot_linux(boot, tmp_path, 1)
    assert re.search(r"\[\s*0\.000000\] random: crng init done", g.sh("dmesg | grep crng")), g.sh("dmesg | head -40")
    seed = g.sh("od -An -tx1 /sys/firmware/devicetree/base/chosen/rng-seed 2>/dev/null; true")
    assert not seed.strip() or set(seed.split()) == {"00"}, seed


@pytest.mark.parametrize("vcpus", VCPUS)
def test_cpus(boot, tmp_path, vcpus):
    g = boot_linux(boot, tmp_path, vcpus)
    assert int(g.sh("grep -c ^processor /proc/cpuinfo")) == vcpus
    online = g.sh("cat /sys/devices/system/cpu/online").strip()
    assert online == ("0" if vcpus == 1 else f"0-{vcpus - 1}")


@pytest.mark.parametrize("vcpus,mem_mib", [(1, 512), (2, 512), (1, 256)])
def test_meminfo(boot, tmp_path, vcpus, mem_mib):
    g = boot_linux(boot, tmp_path, vcpus, mem_mib)
    m = re.search(r"MemTotal:\s+(\d+) kB", g.sh("cat /proc/meminfo"))
    assert m
    total_kib = int(m.group(1))
    # All of the VM's RAM, less the kernel image and early reservations.
    assert (mem_mib - 64) * 1024 <= total_kib <= mem_mib * 1024


def uptime(g):
    return float(g.sh("cat /proc/uptime").split()[0])


@pytest.mark.parametrize("vcpus", VCPUS)
def test_timer(boot, tmp_path, vcpus):
    g = boot_linux(boot, tmp_path, vcpus)
    # Guest time advances with the host's.
    t0, host0 = uptime(g), time.monotonic()
    g.sh("sleep 2")
    t1, host1 = uptime(g), time.monotonic()
    assert 1.9 <= t1 - t0 <= host1 - host0 + 0.5, (t0, t1, host1 - host0)
    # A 1 s sleep (a timer interrupt) takes about 1 s of guest time and of ours.
    for _ in range(2):
        host0 = time.monotonic()
        out = g.sh("time sleep 1")
        host = time.monotonic() - host0
        m = re.search(r"real\s+(\d+)m\s*([\d.]+)s", out)
        assert m, out
        real = int(m.group(1)) * 60 + float(m.group(2))
        assert 0.9 <= real <= 1.5, out
        assert host >= 0.9, host


def irq_counts(text, *names):
    """Per-CPU counts of the /proc/interrupts line naming one of names."""
    for line in text.splitlines():
        if any(n in line for n in names):
            fields = line.split(":", 1)[1].split()
            counts = list(itertools.takewhile(str.isdigit, fields))
            return [int(c) for c in counts]
    raise AssertionError(f"no {names} line in /proc/interrupts:\n{text}")


@pytest.mark.parametrize("vcpus", VCPUS)
def test_interrupts(boot, tmp_path, vcpus):
    g = boot_linux(boot, tmp_path, vcpus)
    g.sh("sleep 1")
    out = g.sh("cat /proc/interrupts")
    header = out.splitlines()[0].split()
    assert header == [f"CPU{i}" for i in range(vcpus)], out
    timer = irq_counts(out, "arch_timer")
    assert len(timer) == vcpus and all(c > 0 for c in timer), out
    uart = irq_counts(out, "uart-pl011", "pl011", "ttyAMA")
    assert sum(uart) > 0, out
    # Its DT lists QEMU virt's 32 virtio-mmio slots (empty for now), SPIs 16-47, edge-triggered.
    assert g.sh("ls -d /proc/device-tree/virtio_mmio@* | wc -l").split() == ["32"]
    node = "/proc/device-tree/virtio_mmio@a003e00"
    assert g.sh(f"cat {node}/compatible").strip().rstrip("\x00") == "virtio,mmio"
    assert g.sh(f"od -An -tx1 {node}/interrupts").split() == \
        "00 00 00 00 00 00 00 2f 00 00 00 01".split()


@pytest.mark.parametrize("vcpus", VCPUS)
def test_memory(boot, tmp_path, vcpus):
    """~360 MiB of the 512 MiB VM in tmpfs: guest pages Quire fills on demand."""
    g = boot_linux(boot, tmp_path, vcpus)
    mib = 180
    g.sh(f"dd if=/dev/urandom of=/tmp/a bs=1M count={mib} 2>/dev/null", timeout=180)
    g.sh("cp /tmp/a /tmp/b", timeout=120)
    out = g.sh("cmp /tmp/a /tmp/b && echo SAME$((1+1))", timeout=120)
    assert "SAME2" in out.split(), out
    size = g.sh("stat -c %s /tmp/b").strip()
    assert int(size) == mib << 20
    # And the data stays put after the memory is reused.
    a = g.sh("md5sum /tmp/a", timeout=120).split()[0]
    g.sh("rm /tmp/b")
    g.sh(f"dd if=/dev/zero of=/tmp/z bs=1M count={mib} 2>/dev/null && rm /tmp/z", timeout=120)
    assert g.sh("md5sum /tmp/a", timeout=120).split()[0] == a


@pytest.mark.parametrize("vcpus", VCPUS)
def test_poweroff(boot, tmp_path, vcpus):
    g = boot_linux(boot, tmp_path, vcpus)
    g.con.child.sendline("poweroff -f")
    try:
        g.con.expect(r"quire: vm1 powered off", timeout=60)
    except (pexpect.TIMEOUT, pexpect.EOF):
        pytest.fail("no power-off; console tail:\n" + g.tail())


@pytest.mark.parametrize("vcpus", VCPUS)
def test_reboot(boot, tmp_path, vcpus):
    g = boot_linux(boot, tmp_path, vcpus)
    g.sh("echo before > /tmp/mark")
    g.con.child.sendline("reboot -f")
    g.con.expect_exact("quire: vm1 restarted with fresh memory", timeout=60)
    # A fresh boot: /init again, a new shell, an empty /tmp.
    g.wait_shell()
    assert g.sh("echo $((2+3))").split() == ["5"]
    assert g.sh("test -e /tmp/mark || echo fresh$((1+1))").split() == ["fresh2"]
    assert int(g.sh("grep -c ^processor /proc/cpuinfo")) == vcpus
    assert uptime(g) < BOOT_TIMEOUT


def test_empty_bootargs(boot, tmp_path):
    """bootargs = "" is an empty command line (not Quire's default): the kernel finds its
    console through the DT's stdout-path, and /proc/cmdline is empty."""
    con = boot_vms(boot, tmp_path, [linux(1, MEM_MIB, bootargs="")], smp=1, timeout=60)
    g = Guest(con, "vm1")
    g.wait_shell()
    assert g.sh("wc -c < /proc/cmdline").split() == ["1"]  # just its newline
