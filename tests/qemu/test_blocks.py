"""2 MiB stage-2 blocks (docs/memory.md, "2 MiB blocks").

A fault that continues a sequential walk into a new 2 MiB block of a VM's
RAM maps the whole block from a pool run. memtest's blocks mode checks the
fills it took, that every word of every block page was zero, and that code
it copies into a block runs (the first fetch splits the block). A VM booted
on a dead VM's dirty runs reads them as zero. Sharing with copy-on-write,
swap and a Linux guest's balloon each split blocks while guests check every
word they wrote.
"""
import re

from conftest import Guest, boot_vms, focus, memtest, monitor
from test_balloon import allocfree, balloon_settles, stats
from test_memory import result, run_vms
from test_swap import disk, drive, until_reaped, vm_lines
from vmconfig import linux

BLOCKS, DIRTY, SHARE, SWAP = 34, 10, 13, 15
BLOCK_LINE = r"memtest: blocks ok pages=(\d+) fills=(\d+) block_fills=(\d+) blocks=(\d+) splits=(\d+)"


def vm_stats(text, vm="vm1"):
    """The last 'quire: stats' line of vm in text, as a dict."""
    lines = re.findall(rf"quire: stats {vm} (.*)", text)
    assert lines, text[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}


def test_fill_ahead_maps_zeroed_blocks(boot, tmp_path):
    out = run_vms(boot, tmp_path, [memtest(BLOCKS, 1, 64, blocks="on")], smp=2, timeout=120)[1]
    pages, fills, block_fills, blocks, splits = (int(x) for x in result(out, BLOCK_LINE).groups())
    # 32 MiB from a 2 MiB boundary: the first block page by page, the 15 after it at once.
    assert (pages, block_fills, blocks, splits) == (8192, 15, 15, 1)
    assert fills == 512 + 15


def test_blocks_off_by_config_and_by_bootarg(boot, tmp_path):
    # The same walk without blocks: memtest's check then fails, with no block filled.
    # The input at the monitor, so the guest's line is printed whole.
    for vm, args in ((memtest(BLOCKS, 1, 64, blocks="off"), "quire.input=monitor"),
                     (memtest(BLOCKS, 1, 64, blocks="on"), "quire.input=monitor quire.blocks=off")):
        con = boot_vms(boot, tmp_path, [vm], smp=2, extra=("-append", args))
        if "blocks=off" in args:
            con.expect(r"stage2: 2 MiB blocks off \(quire.blocks=off\)")
        m = con.expect(r"memtest: blocks (ok|FAIL)[^\r\n]*\r*\n")
        assert m.group(1) == "FAIL" and "block_fills=0 " in m.group(0), m.group(0)
        con.close()


def test_blocks_from_a_dead_vms_dirty_runs_read_as_zero(boot, tmp_path):
    """vm1 writes a pattern over 128 MiB (in blocks) and powers off: its blocks go back to the
    pool as whole runs, dirty. With the idle zeroer off, vm2's restart takes them and the fault
    path zeroes them: every word of every page must read zero (memtest checks)."""
    vms = [memtest(DIRTY, 1, 128, blocks="on"), memtest(BLOCKS, 1, 64, blocks="on", cpus=[1])]
    con = boot_vms(boot, tmp_path, vms, smp=2, mem="512M", timeout=120,
                   extra=("-append", "quire.input=monitor quire.prezero=off"))
    done = set()
    while len(done) < 4:
        m = con.expect(r"\[(vm\d)\] memtest: (dirty|blocks) (ok|FAIL)[^\r\n]*\r*\n|"
                       r"quire: (vm\d): \d+ pages returned to the pool")
        assert m.group(3) != "FAIL", m.group(0)
        done.add(m.group(4) or m.group(1) + "-done")
    text = monitor(con, "stats")
    s1 = vm_stats(text, "vm1")
    assert s1["block_fills"] >= 60, s1  # 128 MiB written in order, less the image's block
    runs = int(re.search(r"quire: pool .* runs=(\d+) zeroed_runs=(\d+)", text).group(1))
    zeroed_runs = int(re.search(r"zeroed_runs=(\d+)", text).group(1))
    assert zeroed_runs == 0 and runs >= s1["block_fills"], text
    con.child.sendline("restart vm2")
    m = con.expect(r"\[vm2\] memtest: blocks (ok|FAIL)[^\r\n]*\r*\n")
    assert m.group(1) == "ok", m.group(0)


def test_share_and_copy_on_write_split_blocks(boot, tmp_path):
    """memtest's share mode in blocks: the scanner merges alike and zero pages of blocks, each
    merge splits its block, the writes after break the sharing again; every word checked."""
    text = until_reaped(boot, tmp_path, [memtest(SHARE, 1, 64, blocks="on")], (), timeout=120)
    lines = vm_lines(text, 1)
    result(lines, r"memtest: share ok pages=512 ")
    s = vm_stats(text)
    assert s["block_fills"] >= 1 and s["splits"] >= 1 and s["cow"] >= 1, s


def test_swap_splits_blocks(boot, tmp_path):
    """memtest's swap mode in blocks, 120 MiB through a 16 MiB resident limit: eviction splits
    blocks; every page read back is checked by the guest."""
    img = disk(tmp_path, 256)
    vm = memtest(SWAP, 1, 128, 16, swap_mib=256, blocks="on")
    text = until_reaped(boot, tmp_path, [vm], drive(f"file={img}"), timeout=300)
    lines = vm_lines(text, 1)
    assert not [l for l in lines if "FAIL" in l], lines
    m = result(lines, r"memtest: swap ok pages=(\d+) max_resident=(\d+) outs=(\d+)")
    assert int(m.group(2)) <= 16 * 256 and int(m.group(3)) > 0
    s = vm_stats(text)
    assert s["block_fills"] >= 1 and s["splits"] >= 1, s


def test_linux_balloon_splits_blocks(boot, tmp_path):
    """A Linux guest's memory in blocks; a 128 MiB balloon takes pages out of them (each split),
    then gives them back, and the guest's program still reads back every page it writes."""
    con = boot_vms(boot, tmp_path, [linux(1, 512, balloon="on", sharing="off")], smp=2, timeout=120)
    g = Guest(con, "vm1")
    g.wait_shell()
    a = allocfree(g, 200)
    assert a and a["mib"] == 200, a
    focus(con, "the monitor")
    s0, _ = stats(con)
    assert s0["block_fills"] >= 1, s0
    monitor(con, "balloon vm1 128")
    balloon_settles(con, 128)
    s1, _ = stats(con)
    assert s1["splits"] > s0["splits"], (s0, s1)
    monitor(con, "balloon vm1 0")
    balloon_settles(con, 0)
    focus(con, "vm1")
    a = allocfree(g, 300)
    assert a and a["mib"] == 300, a
