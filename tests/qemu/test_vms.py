"""Several VMs at once: scheduling, the console multiplexer and monitor, lifecycle, isolation.

Guests' lines come out as `[name] ...`; Ctrl-A three times moves the input
between the VMs and Quire's monitor (docs/console.md).
"""
import hashlib
import re
import subprocess

import pexpect
import pytest

from conftest import (BOOT_TIMEOUT, BUILD, ROOT, Guest, boot_vms, focus, image, linux, memtest,
                      monitor, vm_config)

FOUR = ["alpha", "beta", "gamma", "delta"]
DIRTY, ZEROSCAN = 10, 11


def wait_ready(con, names, timeout=BOOT_TIMEOUT):
    """Wait until every named Linux VM's /init said it is ready.

    The VM with the input streams its output, so another VM's line may cut
    one of its lines in two (each piece keeps the prefix): join the pieces.
    """
    left, seen = set(names), {}
    while left:
        try:
            m = con.expect(r"\[(\w+)\] ([^\r\n]*)\r*\n", timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF):
            pytest.fail(f"{sorted(left)} never got to /init; console tail:\n"
                        + str(con.child.before)[-3000:])
        name = m.group(1)
        seen[name] = (seen.get(name, "") + m.group(2))[-200:]
        if "quire-init: ready" in seen[name]:
            left.discard(name)


def pattern_md5(name, size):
    """md5 of `yes <name>-pattern | head -c size`."""
    line = f"{name}-pattern\n".encode()
    data = (line * (size // len(line) + 1))[:size]
    return hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("smp", [4, 2])
def test_four_linux_two_vcpus_each(boot, smp):
    """dts/vms/four-linux.dts: 8 vCPUs on 4 and on 2 CPUs; each VM keeps its own memory pattern."""
    con = boot("--image", str(BUILD / "qemu-virt" / "vms-four-linux" / "quire.bin"),
               "--smp", str(smp), "--mem", "1G", timeout=60)
    wait_ready(con, FOUR)
    size = 8 << 20
    guests = {}
    for name in FOUR:
        focus(con, name)
        g = guests[name] = Guest(con, name)
        g.sh("stty columns 4000")
        assert g.sh("echo $((6*7))").split() == ["42"]
        assert int(g.sh("grep -c ^processor /proc/cpuinfo")) == 2
        g.sh(f"yes {name}-pattern | head -c {size} > /tmp/p", timeout=120)
    # All four patterns are in memory at once now; each VM reads back its own.
    for name in FOUR:
        focus(con, name)
        assert guests[name].sh("md5sum /tmp/p", timeout=120).split()[0] == pattern_md5(name, size)
    # Their network (net = "on", quire.ip= in their bootargs): each reaches the next.
    for i, name in enumerate(FOUR):
        focus(con, name)
        # Three tries: 8 vCPUs on 2 CPUs, one echo (and its ARP) has once taken over 5 s.
        out = guests[name].sh(f"ping -c 3 -W 5 10.0.0.{(i + 1) % 4 + 1}", ok=False, timeout=60)
        assert re.search(r"3 packets transmitted, [1-3] packets received", out), out
    text = con.read_until_quiet(quiet=0.5, limit=3)
    assert "QUIRE CRASH" not in text


def stats(con, name):
    out = monitor(con, f"stats {name}")
    m = re.search(rf"quire: stats {name} (.*)", out)
    assert m, out
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


def test_kill_restart_from_monitor(boot, tmp_path):
    """Kill a VM while two others copy memory; its pages go back; restarted, it boots again."""
    vms = [linux(1, 256, name="victim"), linux(1, 256, name="worker1"), linux(1, 256, name="worker2")]
    con = boot_vms(boot, tmp_path, vms, smp=2, mem="1G", timeout=60)
    wait_ready(con, ["victim", "worker1", "worker2"])
    for name in ("worker1", "worker2"):
        focus(con, name)
        Guest(con, name).sh("(dd if=/dev/urandom of=/tmp/a bs=1M count=48 2>/dev/null; cp /tmp/a /tmp/b;"
                            " cmp /tmp/a /tmp/b && echo WORK-$((40+2))-OK) &")
    focus(con, "the monitor")
    before = stats(con, "victim")
    assert before["resident"] > 1000, before
    listing = monitor(con, "list")
    assert re.search(r"victim\s+running", listing), listing
    con.child.sendline("kill victim")
    m = con.expect(r"quire: victim: (\d+) pages returned to the pool \((\d+) still held\)", timeout=60)
    assert int(m.group(1)) >= before["resident"] and m.group(2) == "0"
    after = stats(con, "victim")
    assert after["resident"] == 0 and after["charged"] == 0 and after["tables"] == 0, after
    assert re.search(r"victim\s+stopped", monitor(con, "list"))
    # Pausing and resuming a worker in the middle of its copy does not hurt it.
    monitor(con, "pause worker2")
    assert re.search(r"worker2\s+paused", monitor(con, "list"))
    monitor(con, "resume worker2")
    done = set()
    while len(done) < 2:
        done.add(con.expect(r"\[(worker\d)\] WORK-42-OK", timeout=300).group(1))
    monitor(con, "restart victim", until=r"quire: victim: linux, 1 vCPU")
    wait_ready(con, ["victim"])
    focus(con, "victim")
    g = Guest(con, "victim")
    assert g.sh("echo $((6*7))").split() == ["42"]
    assert "QUIRE CRASH" not in con.read_until_quiet(quiet=0.5, limit=2)


def wait_dirty_and_scan(con):
    """Until both memtests (DIRTY, ZEROSCAN) said ok and powered off with their pages back in the pool."""
    done, returned = set(), set()
    while len(done) < 2 or len(returned) < 2:
        m = con.expect(r"\[(vm\d)\] memtest: (dirty|zeroscan) (ok|FAIL)[^\r\n]*\r*\n|"
                       r"quire: (vm\d): \d+ pages returned to the pool")
        if m.group(4):
            returned.add(m.group(4))
            continue
        assert m.group(3) == "ok", m.group(0)
        done.add(m.group(1))


def test_pages_of_a_dead_vm_read_as_zero(boot, tmp_path):
    """A VM booted right after another released its pages finds only zeros in its RAM.

    vm1 fills 320 MiB with a non-zero pattern and powers off; vm2 (affinity:
    CPU 1) scans its 96 MiB. Once both are off, the monitor restarts vm2: its
    pages now come from the top of the pool's free stacks, where vm1's pages
    went last, and its scan must read every byte as zero.
    """
    vms = [memtest(DIRTY, mem_mib=320), memtest(ZEROSCAN, mem_mib=96, cpus=[1])]
    con = boot_vms(boot, tmp_path, vms, smp=2, mem="512M", timeout=120)
    con.expect(r"quire: vm2: memtest, 1 vCPU on CPU 1,")
    wait_dirty_and_scan(con)
    focus(con, "the monitor")
    con.child.sendline("restart vm2")
    m = con.expect(r"\[vm2\] memtest: zeroscan (ok|FAIL)[^\r\n]*\r*\n", timeout=120)
    assert m.group(1) == "ok", m.group(0)
    assert re.search(r"pages=24\d\d\d", m.group(0)), m.group(0)


def test_bad_config_is_refused_at_boot(boot, tmp_path):
    """Resident limits the machine cannot meet: no VM starts, the monitor still answers."""
    cfg = vm_config([linux(2, 512, name="big1"), linux(2, 512, name="big2")], tmp_path / "bad.dtb")
    con = boot("--image", image(), "--smp", "2", "--mem", "512M", "--", "-initrd", cfg)
    m = con.expect(r"quire: VM configuration \(from the boot module\) refused: ([^\r\n]*)\r*\n")
    assert "cannot all be met at once" in m.group(1), m.group(1)
    con.expect_exact("quire: starting no VM")
    con.expect_exact("quire: console input goes to the monitor")
    assert "quire: no VMs" in monitor(con, "list")


def test_bad_config_is_refused_at_build_time(tmp_path):
    """make VMS=<bad config> stops at vmcheck with its message."""
    bad = tmp_path / "bad.dts"
    bad.write_text('/dts-v1/;\n/ {\n\tcompatible = "quire,vm-config";\n\tmachine-memory-mib = <1024>;\n'
                   '\tvms {\n\t\tweb {\n\t\t\tvcpus = <1>;\n\t\t\tmemory-mib = <64>;\n'
                   '\t\t\tkernel = "nosuch";\n\t\t};\n\t};\n};\n')
    r = subprocess.run(["make", "-s", f"VMS={bad}"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0
    assert re.search(r"vmcheck: .*/vms/web: .*'nosuch'", r.stderr + r.stdout), r.stderr + r.stdout
