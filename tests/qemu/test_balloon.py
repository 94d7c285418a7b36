"""virtio-balloon (issue 17): a Linux guest under Quire with balloon = "on" in its
config loads Debian's virtio_mmio and virtio_balloon from the initramfs. Pages it
frees come back to the pool by free page reporting; 'balloon <vm> <MiB>' inflates
and deflates it. Quire's own counters (monitor 'stats') and the guest's own view
(/proc, free) are checked against each other."""
import re
import time

from conftest import Guest, boot_vms, focus, memtest, monitor, run_until_off
from vmconfig import linux

MEM_MIB = 512


def stats(con, vm="vm1"):
    """The VM's stats and balloon lines as dicts (the monitor has the input)."""
    out = monitor(con, f"stats {vm}")
    s = dict(re.findall(r"(\w+)=(\d+)", re.search(r"quire: stats \S+ (.*)", out).group(1)))
    b = re.search(r"quire: balloon \S+ (.*)", out)
    return {k: int(v) for k, v in s.items()}, {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", b.group(1))} if b else None


def pool_free(con):
    return int(re.search(r"quire: pool free=(\d+)", monitor(con, "stats")).group(1))


def boot_balloon(boot, tmp_path, balloon="on"):
    con = boot_vms(boot, tmp_path, [linux(1, MEM_MIB, balloon=balloon, sharing="off")], smp=2, timeout=120)
    g = Guest(con, "vm1")
    g.wait_shell()
    return con, g


def test_driver_finds_the_balloon(boot, tmp_path):
    con, g = boot_balloon(boot, tmp_path)
    assert "virtio_balloon" in g.sh("lsmod")
    # virtio-mmio slot 0 holds a device of ID 5 (the balloon), with the features Quire offers.
    dev = g.sh("for d in /sys/bus/virtio/devices/*; do cat $d/device $d/features; done").split()
    assert dev[0] == "0x0005", dev
    feats = dev[1]
    assert feats[1] == "1" and feats[2] == "1" and feats[5] == "1", feats  # STATS_VQ, DEFLATE_ON_OOM, REPORTING
    assert feats[32] == "1" and feats[0] == "0" and feats[3] == "0", feats  # VERSION_1; no MUST_TELL_HOST, hints
    focus(con, "the monitor")
    _, b = stats(con)
    assert b is not None and b["driver"] == 1
    # The stats queue: the guest's own MemTotal, as /proc/meminfo has it, within a MiB.
    assert b["guest_stats"] == 1
    focus(con, "vm1")
    total_kib = int(re.search(r"MemTotal:\s+(\d+)", g.sh("cat /proc/meminfo")).group(1))
    assert abs(b["guest_total_mib"] - total_kib // 1024) <= 1


def test_freed_memory_comes_back(boot, tmp_path):
    """200 MiB written and freed in the guest: within seconds Quire holds about what it held before."""
    con, g = boot_balloon(boot, tmp_path)
    g.sh("sleep 3")  # boot's own frees reported first
    focus(con, "the monitor")
    before, _ = stats(con)
    free_before = pool_free(con)
    focus(con, "vm1")
    g.sh("dd if=/dev/urandom of=/tmp/x bs=1M count=200 2>/dev/null", timeout=300)
    focus(con, "the monitor")
    full, _ = stats(con)
    assert full["resident"] - before["resident"] >= 200 * 256 * 0.95, (before, full)
    focus(con, "vm1")
    g.sh("rm /tmp/x")
    deadline = time.time() + 60
    while True:
        g.sh("sleep 2")
        focus(con, "the monitor")
        after, b = stats(con)
        if after["resident"] <= before["resident"] * 1.1 or time.time() > deadline:
            break
        focus(con, "vm1")
    assert after["resident"] <= before["resident"] * 1.1, (before, after, b)
    assert b["reported"] >= 200 * 256 * 0.9 and b["discarded"] >= 200 * 256 * 0.9, b
    # The pool got them: free pages back to within 10 % of the 200 MiB of where they were.
    assert pool_free(con) >= free_before - 200 * 256 * 0.1
    # The guest can use the memory again: its next touch is a fresh zeroed page.
    focus(con, "vm1")
    g.sh("dd if=/dev/zero of=/tmp/y bs=1M count=100 2>/dev/null && cmp -n 104857600 /tmp/y /dev/zero && rm /tmp/y",
         timeout=300)


def balloon_settles(con, mib, within=60):
    """The balloon line once the guest's balloon holds mib MiB (or the last one after `within` seconds)."""
    deadline = time.time() + within
    while True:
        _, b = stats(con)
        if b["actual_mib"] == mib or time.time() > deadline:
            return b
        time.sleep(1)


def used_mib(g):
    return int(g.sh("free -m | awk '/Mem:/ {print $3}'"))


def test_inflate_and_deflate(boot, tmp_path):
    con, g = boot_balloon(boot, tmp_path)
    used0 = used_mib(g)
    focus(con, "the monitor")
    assert "asking its guest to hold 128 MiB" in monitor(con, "balloon vm1 128")
    b = balloon_settles(con, 128)
    assert b["target_mib"] == 128 and b["actual_mib"] == 128 and b["inflated"] == 128 * 256, b
    focus(con, "vm1")
    # The balloon's pages are the guest's no more: with deflate-on-OOM Linux counts them as used.
    used1 = used_mib(g)
    assert used1 - used0 >= 120, (used0, used1)
    focus(con, "the monitor")
    monitor(con, "balloon vm1 0")
    b = balloon_settles(con, 0)
    assert b["actual_mib"] == 0 and b["deflated"] == 128 * 256, b
    focus(con, "vm1")
    used2 = used_mib(g)
    assert used2 - used0 <= 8, (used0, used2)


def test_balloon_refusals(boot, tmp_path):
    """A VM without a balloon, and wild sizes: refused with a clear message, the guest unharmed."""
    con, g = boot_balloon(boot, tmp_path, balloon="off")
    assert g.sh("ls /sys/bus/virtio/devices/ | wc -l").strip() == "0"
    focus(con, "the monitor")
    assert "it has no balloon" in monitor(con, "balloon vm1 10")
    assert "must be a number from 0 to its 512 MiB" in monitor(con, "balloon vm1 513")
    assert "must be a number" in monitor(con, "balloon vm1 12x")
    assert "no VM 'nosuch'" in monitor(con, "balloon nosuch 1")
    focus(con, "vm1")
    assert g.sh("echo alive").strip() == "alive"


def test_hostile_driver_is_contained(boot, tmp_path):
    """A bare-metal driver that lies to its balloon in every way memtest's mode 28 knows:
    each lie resets only that device (the guest checks NEEDS_RESET and the interrupt
    status itself), one log line, and a healthy VM beside it runs to its end."""
    text = run_until_off(boot, tmp_path, [memtest(28, balloon="on"), memtest(1)], smp=2)
    assert re.search(r"\[vm1\] memtest: virtio-hostile ok cases=14", text), text[-3000:]
    assert re.search(r"\[vm2\] memtest: seq ok", text), text[-3000:]
    logged = re.findall(r"quire: vm1: virtio-balloon in slot 0: (.*); the device needs a reset \(logged once\)", text)
    assert logged == ["a queue made ready with a bad size, or areas outside RAM or misaligned"], logged
    assert "quire: vm2: virtio" not in text
    assert "FAIL" not in text and "crash" not in text.lower()
