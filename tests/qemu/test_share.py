"""Sharing identical pages, copy-on-write (docs/memory.md, "Sharing").

A memtest VM writes pages Quire should merge (alike, and zeroed) and pages
it should not; the scanner merges them while the VM polls its sharing
counters, then every merged page is written (copy-on-write) and every word
checked. Four identical Linux VMs in one sharing domain save machine pages;
then each writes its own pattern over most of its memory and checks it. A
VM whose sharing is off never maps anything shared.
"""
import hashlib
import re
import time

import pytest

from conftest import Guest, boot_vms, focus, linux, memtest, monitor
from test_memory import result, run_vms
from test_vms import FOUR, wait_ready

SHARE, NOSHARE = 13, 14


def test_memtest_merge_and_cow(boot, tmp_path):
    # 2 CPUs: the VM's vCPU polls on one, the scanner runs on the idle other.
    out = run_vms(boot, tmp_path, [memtest(SHARE, 1, 64)], smp=2, timeout=120)[1]
    m = result(out, r"memtest: share ok pages=(\d+) merge_ticks=(\d+) cow_ticks=(\d+) touch_ticks=(\d+)")
    assert int(m.group(1)) == 512
    # A copy-on-write break costs a trap and a copy; a write to the copy costs nothing. Host time:
    # usually 50x and more, but a host hiccup in the 2 ms touch loop once made it 6x (a write that
    # did not trap would be 1x).
    assert int(m.group(3)) > 3 * int(m.group(4))


def test_memtest_sharing_off_never_merges(boot, tmp_path):
    # The same pages beside a sharing VM doing the same: only the sharing one merges.
    vms = [memtest(NOSHARE, 1, 64, sharing="off"), memtest(SHARE, 1, 64)]
    out = run_vms(boot, tmp_path, vms, smp=3, timeout=120)
    result(out[1], r"memtest: noshare ok pages=1536$")
    result(out[2], r"memtest: share ok ")




CHUNKS = 150  # MiB of each VM's 384


def write(name, word):
    """Shell: /tmp/p = CHUNKS copies of 1 MiB of `yes <name>-<word>` (busybox yes alone is slow)."""
    return (f"yes {name}-{word} | head -c 1048576 > /tmp/c; "
            f"for i in $(seq {CHUNKS}); do cat /tmp/c; done > /tmp/p")


def chunks_md5(name, word):
    return hashlib.md5(pattern_bytes(name, word) * CHUNKS).hexdigest()


def pattern_bytes(name, word):
    line = f"{name}-{word}\n".encode()
    return (line * ((1 << 20) // len(line) + 1))[:1 << 20]


def md5(g):
    """md5sum of /tmp/p in guest g (the kernel may log a line of its own in between)."""
    out = g.sh("md5sum /tmp/p", timeout=120)
    m = re.search(r"^([0-9a-f]{32})  /tmp/p$", out, re.M)
    assert m, out
    return m.group(1)


def totals(con):
    """The monitor's sharing and pool lines as dicts, and every VM's stats by name."""
    out = monitor(con, "stats")
    share = dict(re.findall(r"(\w+)=(\d+)", re.search(r"quire: share ([^\n]*)", out).group(1)))
    pool = dict(re.findall(r"(\w+)=(\d+)", re.search(r"quire: pool ([^\n]*)", out).group(1)))
    vms = {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
           for m in re.finditer(r"quire: stats (\w+) ([^\n]*)", out)}
    return {k: int(v) for k, v in share.items()}, {k: int(v) for k, v in pool.items()}, vms


def wait_scans(con, scans, timeout=120):
    """Poll the monitor until every sharing VM has done `scans` full scans more than now."""
    start = totals(con)[0]["scans"]
    deadline = time.time() + timeout
    while time.time() < deadline:
        share, pool, vms = totals(con)
        if share["scans"] >= start + scans:
            return share, pool, vms
        time.sleep(1)
    pytest.fail(f"fewer than {scans} full scans in {timeout} s: {share}")


def test_four_linux_one_domain(boot, tmp_path):
    """Four identical Linux VMs in one domain share most of their pages, and never each other's data."""
    vms = [linux(1, 384, name=n, sharing="domain", share_domain="web") for n in FOUR]
    con = boot_vms(boot, tmp_path, vms, smp=4, mem="2G", timeout=60)
    wait_ready(con, FOUR)
    focus(con, "the monitor")
    share, pool, per_vm = wait_scans(con, 2)
    # Half the machine pages the four would use without sharing, or better.
    assert share["saved"] >= pool["used"], (share, pool)
    assert share["shared"] > 0 and share["sharing"] > share["shared"], share
    for name, st in per_vm.items():
        assert st["merged"] > 0 and st["zero"] > 0 and st["shared"] > 0, (name, st)
    # Each VM writes its own pattern over most of its free memory, then checks it.
    guests = {}
    for name in FOUR:
        focus(con, name)
        g = guests[name] = Guest(con, name)
        g.sh("stty columns 4000")
        g.sh(f"({write(name, 'pattern')}; echo WROTE-$((6*7))) &")
    done = set()
    while len(done) < 4:
        # A background job's line may follow the shell's prompt on the same console line.
        done.add(con.expect(r"\[(\w+)\] [^\r\n]*?WROTE-42", timeout=300).group(1))
    # The patterns repeat every few pages: the scanner merges them within each VM (same domain,
    # different contents across VMs), and a second pattern written over them breaks the sharing.
    focus(con, "the monitor")
    before = totals(con)[0]
    share, pool, _ = wait_scans(con, 2, timeout=240)
    assert share["merged"] > before["merged"] + 4 * CHUNKS * 256 // 2, (before, share)
    for name in FOUR:
        focus(con, name)
        assert md5(guests[name]) == chunks_md5(name, "pattern")
        guests[name].sh(write(name, "second"), timeout=300)
    for name in FOUR:
        focus(con, name)
        assert md5(guests[name]) == chunks_md5(name, "second")
    focus(con, "the monitor")
    share = totals(con)[0]
    assert share["cow"] > before["cow"] + 4 * CHUNKS * 256 // 2, (before, share)
    assert "QUIRE CRASH" not in con.read_until_quiet(quiet=0.5, limit=2)
