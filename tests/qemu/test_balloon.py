"""virtio-balloon (issue 17): a Linux guest under Quire with balloon = "on" in its
config loads Debian's virtio_mmio and virtio_balloon from the initramfs. Pages it
frees come back to the pool by free page reporting; 'balloon <vm> <MiB>' inflates
and deflates it. Quire's own counters (monitor 'stats') and the guest's own view
(/proc, free) are checked against each other."""
import pathlib
import re
import time

from conftest import Guest, boot_vms, focus, memtest, monitor, run_until_off
from test_swap import disk, drive
from test_vms import wait_ready
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


def allocfree(g, mib, rounds=1, timeout=300):
    """Run the guest's allocfree (tests/guests/linux/allocfree.c); its figures, or None if it failed."""
    out = g.sh(f"allocfree {mib} {rounds}", timeout=timeout, ok=False)
    m = re.search(r"allocfree: ok (.*)", out)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))} if m else None


def test_freed_memory_comes_back(boot, tmp_path):
    """300 MiB taken, written and freed by a guest program: within seconds of guest time Quire
    holds about what it held before, and the pool has the pages again."""
    con, g = boot_balloon(boot, tmp_path)
    g.sh("sleep 3")  # boot's own frees reported first
    focus(con, "the monitor")
    before, _ = stats(con)
    free_before = pool_free(con)
    focus(con, "vm1")
    a = allocfree(g, 300)
    assert a and a["mib"] == 300, a
    deadline = time.time() + 60
    while True:
        g.sh("sleep 2")
        focus(con, "the monitor")
        after, b = stats(con)
        if after["resident"] <= before["resident"] * 1.1 or time.time() > deadline:
            break
        focus(con, "vm1")
    # Within 10 %: the test guest's /init has Linux report free blocks from 128 KiB (at its
    # default, 2 MiB, the guest kept 7.5 MiB more: 13.6 %).
    assert after["resident"] <= before["resident"] * 1.1, (before, after, b)
    # 300 MiB went in and came out again: the guest reported at least 90 % of it. Pages filled:
    # a fault each, but a 2 MiB block is one fault for 512 (docs/memory.md, "2 MiB blocks").
    filled = after["faults"] - before["faults"] + 511 * (after["block_fills"] - before["block_fills"])
    assert filled >= 300 * 256 * 0.9, (before, after)
    assert b["reported"] >= 300 * 256 * 0.9 and b["discarded"] >= 300 * 256 * 0.9, b
    # The pool rose by as much: back to within 10 % of the 300 MiB of where it was.
    assert pool_free(con) >= free_before - 300 * 256 * 0.1
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


def console_log(con):
    """Everything the console printed so far (its log file)."""
    con.log.flush()
    return pathlib.Path(con.log.name).read_text(errors="replace")


def meminfo(g, key):
    return int(re.search(rf"{key}:\s+(\d+) kB", g.sh("cat /proc/meminfo")).group(1)) // 1024


def test_memtotal_follows_the_balloon(boot, tmp_path):
    """Without deflate on OOM, Linux takes the balloon's pages out of MemTotal: 'balloon vm1 160'
    shrinks it and the VM's resident memory by 160 MiB; 'balloon vm1 0' gives them back."""
    con = boot_vms(boot, tmp_path, [linux(1, MEM_MIB, balloon="on", balloon_deflate_on_oom="off",
                                          sharing="off")], smp=2, timeout=120)
    g = Guest(con, "vm1")
    g.wait_shell()
    g.sh("sleep 3")
    total0 = meminfo(g, "MemTotal")
    # Fill most of the guest's free memory with page cache the guest can drop, so that inflating
    # has resident pages to take back.
    g.sh("dd if=/dev/urandom of=/tmp/c bs=1M count=200 2>/dev/null && rm /tmp/c", timeout=300)
    focus(con, "the monitor")
    resident0 = stats(con)[0]["resident"]
    monitor(con, "balloon vm1 160")
    b = balloon_settles(con, 160)
    assert b["actual_mib"] == 160 and b["inflated"] == 160 * 256, b
    focus(con, "vm1")
    assert total0 - meminfo(g, "MemTotal") in range(159, 162), (total0, meminfo(g, "MemTotal"))
    # No page the guest gave up stays with Quire (the freed 200 MiB may have gone by reporting already).
    focus(con, "the monitor")
    st, b = stats(con)
    assert st["resident"] <= resident0 and st["resident"] <= (MEM_MIB - 160) * 256, (resident0, st, b)
    monitor(con, "balloon vm1 0")
    b = balloon_settles(con, 0)
    assert b["actual_mib"] == 0 and b["oom_deflated"] == 0, b
    focus(con, "vm1")
    assert meminfo(g, "MemTotal") == total0
    # And the guest can have it all again.
    assert allocfree(g, 300)["mib"] == 300


def test_deflate_on_oom(boot, tmp_path):
    """A guest with most of its memory in the balloon that needs more takes it back by itself
    (deflate on OOM): its program succeeds, Quire's target follows it down, logged once."""
    con, g = boot_balloon(boot, tmp_path)
    focus(con, "the monitor")
    monitor(con, "balloon vm1 384")
    b = balloon_settles(con, 384)
    assert b["actual_mib"] == 384, b
    focus(con, "vm1")
    # 512 MiB, 384 in the balloon: 300 more fit only if the guest deflates.
    a = allocfree(g, 300, timeout=600)
    assert a and a["mib"] == 300, g.tail()
    focus(con, "the monitor")
    _, b = stats(con)
    assert b["oom_deflated"] >= 150 * 256 and b["actual_mib"] <= 384 - 150, b
    assert b["target_mib"] == b["actual_mib"], b  # followed down, not asked again
    focus(con, "vm1")
    assert allocfree(g, 64)["mib"] == 64
    assert console_log(con).count("by itself (deflate on OOM); the target follows it down (logged once)") == 1


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


FOUR_MIB = 768


def four_in_one_gib(boot, tmp_path, balloon, rounds):
    """Four 768 MiB Linux VMs in a 1 GiB machine (resident-min 64 MiB, swap behind it): the first
    `rounds` of them, one after another, each take 600 MiB, write it and free it. Returns each
    one's allocfree figures, the VMs' stats and the pool's free pages after each (the monitor's)."""
    names = [f"vm{i}" for i in range(1, 5)]
    vms = [linux(1, FOUR_MIB, balloon=balloon, sharing="off", swap_mib=FOUR_MIB, resident_min_mib=64)
           for _ in names]
    con = boot_vms(boot, tmp_path, vms, smp=2, mem="1G", timeout=120,
                   extra=drive(f"file={disk(tmp_path, 4 * FOUR_MIB)}"))
    wait_ready(con, names)
    ran, frees = [], []
    for name in names[:rounds]:
        focus(con, name)
        g = Guest(con, name)
        g.sh("stty columns 4000")
        ran.append(allocfree(g, 600, timeout=600))
        if balloon == "on":
            # Its 600 MiB back in the pool (free page reporting) before the next one starts.
            g.sh("sleep 12")
        focus(con, "the monitor")
        frees.append(pool_free(con))
    per_vm = {n: stats(con, n)[0] for n in names}
    return ran, per_vm, frees, con


def test_four_guests_in_one_gib_take_600_mib_each(boot, tmp_path):
    """With the balloon, what each guest frees comes back to the pool, so four guests one after
    another each get 600 MiB of a 1 GiB machine; the disk is hardly needed."""
    ran, per_vm, frees, con = four_in_one_gib(boot, tmp_path, "on", 4)
    assert all(a and a["mib"] == 600 for a in ran), ran
    # Each guest's 600 MiB went back: nobody holds it afterwards, and little went to the disk.
    for name, st in per_vm.items():
        assert st["resident"] < 200 * 256, (name, st)
    outs = sum(st["swap_outs"] for st in per_vm.values())
    assert outs < 4 * 600 * 256 // 20, (outs, per_vm)
    assert min(frees) >= max(frees) - 100 * 256, frees
    assert "QUIRE CRASH" not in console_log(con)


def test_four_guests_without_balloon_must_swap(boot, tmp_path):
    """The same machine without the balloon: the first guest keeps its freed 600 MiB, so the
    second one's 600 MiB must go to the disk."""
    ran, per_vm, _, _ = four_in_one_gib(boot, tmp_path, "off", 2)
    assert per_vm["vm1"]["resident"] >= 600 * 256 * 0.9, per_vm["vm1"]
    assert sum(st["swap_outs"] for st in per_vm.values()) >= 100 * 256, per_vm


def test_policy_inflates_before_swap_and_lets_down_after(boot, tmp_path):
    """The balloon's policy: vm1 holds 500 MiB, half of it freed in 64 KiB pieces free page
    reporting never hands over (resident in Quire, free in the guest). vm2 then takes 500 MiB of
    a 1 GiB machine: Quire asks vm1 to inflate before it swaps, vm1's kept memory is intact, and
    once vm2 has freed its 500 MiB the policy lets vm1's balloon down again."""
    names = ["vm1", "vm2"]
    vms = [linux(1, FOUR_MIB, balloon="on", sharing="off", swap_mib=FOUR_MIB, resident_min_mib=64)
           for _ in names]
    con = boot_vms(boot, tmp_path, vms, smp=2, mem="1G", timeout=120,
                   extra=drive(f"file={disk(tmp_path, 2 * FOUR_MIB)}"))
    wait_ready(con, names)
    focus(con, "vm1")
    g1 = Guest(con, "vm1")
    g1.sh("stty columns 4000")
    g1.sh("allocfree -h 500 > /tmp/held 2>&1 &")
    deadline = time.time() + 120
    while "holding" not in g1.sh("cat /tmp/held"):
        assert time.time() < deadline, g1.sh("cat /tmp/held")
        g1.sh("sleep 1")
    g1.sh("sleep 5")  # what reporting would hand over, it has
    focus(con, "the monitor")
    held, b0 = stats(con, "vm1")
    assert held["resident"] >= 500 * 256, held  # the 250 MiB of pieces are still Quire's
    assert b0["policy_inflates"] == 0, b0
    free0 = pool_free(con)
    focus(con, "vm2")
    g2 = Guest(con, "vm2")
    g2.sh("stty columns 4000")
    assert allocfree(g2, 500, timeout=600)["mib"] == 500
    focus(con, "the monitor")
    st1, b1 = stats(con, "vm1")
    st2, _ = stats(con, "vm2")
    # vm1 gave back pages it did not use, asked by the policy, not by anyone at the monitor.
    assert b1["policy_inflates"] >= 1 and b1["inflated"] >= 64 * 256, b1
    assert st1["resident"] <= held["resident"] - 64 * 256, (held, st1, b1)
    # vm2 needed more than the pool had free; the balloon gave back more than that shortfall. (The
    # disk still takes some: vm2 may fault faster than vm1 inflates, 1 MiB per notify; measured
    # 54 to 175 MiB swapped against 270 to 300 MiB ballooned. Not asserted: see docs/memory.md.)
    shortfall = 500 * 256 - free0
    print(f"policy: free before {free0} shortfall {shortfall} swapped {st1['swap_outs'] + st2['swap_outs']} "
          f"balloon {b1}")
    assert shortfall > 0 and b1["discarded"] - b0["discarded"] > shortfall, (free0, shortfall, b0, b1)
    # vm1's own memory is untouched.
    focus(con, "vm1")
    g1.sh("touch /tmp/allocfree-check")
    deadline = time.time() + 60
    while "held ok" not in g1.sh("cat /tmp/held"):
        assert time.time() < deadline and "wrong" not in g1.sh("cat /tmp/held"), g1.sh("cat /tmp/held")
        g1.sh("sleep 1")
    # vm2's 500 MiB comes back by reporting: plenty again, the policy lets vm1's balloon down.
    deadline = time.time() + 90
    while True:
        g1.sh("sleep 2")
        focus(con, "the monitor")
        _, b1 = stats(con, "vm1")
        if b1["policy_mib"] == 0 and b1["target_mib"] == 0 or time.time() > deadline:
            break
        focus(con, "vm1")
    assert b1["policy_mib"] == 0 and b1["target_mib"] == 0, b1
    assert "QUIRE CRASH" not in console_log(con)
