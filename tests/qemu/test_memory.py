"""On-demand guest memory: the memtest guest (tests/guests/memtest.c) under Quire.

Every first touch of a guest page is a stage-2 violation Quire fills from its
page pool. memtest counts the distinct pages it touches and compares them with
Quire's fill counter (MEM_STATS); the tests check its verdicts and figures.
Each test boots the default image with a VM configuration of its own,
passed as the boot module (QEMU -initrd), see conftest.vm_config.
"""
import os
import re
import subprocess
import time

import pytest

from conftest import boot_vms, memtest, monitor, quota_pages, run_until_off
from test_vms import wait_dirty_and_scan

SEQ, RANDOM, SPARSE, SMP, OUTSIDE, QUOTA, BENCH, BENCH_SMP = range(1, 9)
DIRTY, ZEROSCAN = 10, 11
PAGE = 4096
RAM_BASE = 0x40000000


def vm(vcpus, mem_mib, limit_mib, mode):
    return memtest(mode, vcpus, mem_mib, limit_mib)


def run_vms(boot, tmp_path, vms, smp, mem="1G", timeout=90, platform="qemu-virt"):
    """Boot Quire with these VMs, wait until every VM has powered off.

    Returns {vm number: [its console lines without the `[vmN] ` prefix]}, and
    fails on any `FAIL` line from a guest.
    """
    out = run_until_off(boot, tmp_path, vms, smp, mem, timeout, platform=platform)
    lines = {i: [] for i in range(1, len(vms) + 1)}
    for m in re.finditer(r"^\[vm(\d+)\] (.*)$", out, re.M):
        lines.setdefault(int(m.group(1)), []).append(m.group(2))
    bad = [f"vm{i}: {l}" for i, ls in lines.items() for l in ls if "FAIL" in l]
    assert not bad, "\n".join(bad)
    return lines


def result(lines, pattern):
    """The one guest line matching pattern (a regex anchored at its start)."""
    found = [m for m in (re.match(pattern, l) for l in lines) if m]
    assert len(found) == 1, f"{pattern!r} not found once in:\n" + "\n".join(lines)
    return found[0]


def image_pages(lines):
    """Pages of the guest image and its BSS, from memtest's first line."""
    m = result(lines, r"memtest: mode \d+ .* image=0x([0-9a-f]+)-0x([0-9a-f]+)$")
    return (int(m.group(2), 16) - int(m.group(1), 16)) // PAGE


def run_one(boot, tmp_path, smp, vcpus, mem_mib, limit_mib, mode, **kw):
    return run_vms(boot, tmp_path, [vm(vcpus, mem_mib, limit_mib, mode)], smp, **kw)[1]


@pytest.mark.parametrize("smp", [1, 4])
def test_seq(boot, tmp_path, smp):
    out = run_one(boot, tmp_path, smp, 1, 64, 64, SEQ)
    m = result(out, r"memtest: seq ok pages=(\d+) fills=(\d+)$")
    # 4 MiB word by word, then one word in each page of the next 12 MiB.
    assert int(m.group(1)) == int(m.group(2)) == 4096


@pytest.mark.parametrize("smp", [1, 4])
def test_random(boot, tmp_path, smp):
    out = run_one(boot, tmp_path, smp, 1, 256, 256, RANDOM)
    m = result(out, r"memtest: random ok distinct=(\d+) fills=(\d+)$")
    distinct, fills = int(m.group(1)), int(m.group(2))
    assert distinct == fills
    # 4096 draws from ~65000 pages: a few repeats, never many.
    assert 3800 <= distinct <= 4096


@pytest.mark.parametrize("smp", [1, 4])
def test_sparse_4g(boot, tmp_path, smp):
    """10 MiB spread over 4 GiB of guest RAM on a 1 GiB machine: only touched pages are backed."""
    out = run_one(boot, tmp_path, smp, 1, 4096, 32, SPARSE, mem="1G")
    m = result(out, r"memtest: sparse ok pages=(\d+) fills=(\d+) resident=(\d+) pgtables=(\d+)"
                    r" blocks2m=(\d+)$")
    pages, fills, resident, pgtables, blocks = map(int, m.groups())
    assert pages == fills == 2560
    # Resident: the touched pages plus at most the image and its BSS (all touched at entry;
    # the image is mapped shared and copied on write, its zero BSS pages may merge).
    img = image_pages(out)
    assert pages <= resident <= img + pages + 16, (resident, img)
    assert resident * PAGE < 11 << 20
    # One level-3 table per 2 MiB block with a page in it, plus a handful of upper levels.
    assert 0 < pgtables <= blocks + 16, (pgtables, blocks)


@pytest.mark.parametrize("smp,vcpus", [(1, 1), (2, 2), (4, 4)])
def test_smp(boot, tmp_path, smp, vcpus):
    """Every vCPU fills its own 8 MiB and races the others on the first touches of a shared 1 MiB."""
    out = run_one(boot, tmp_path, smp, vcpus, 64, 64, SMP)
    m = result(out, r"memtest: smp ok vcpus=(\d+) fills=(\d+) expected=(\d+)$")
    n, fills, expected = map(int, m.groups())
    assert n == vcpus
    assert fills == expected == vcpus * 2048 + 256


@pytest.mark.parametrize("smp", [1, 4])
def test_outside_ram_aborts(boot, tmp_path, smp):
    """Accesses outside RAM and devices come back to the guest as synchronous external aborts."""
    mem_mib = 64
    out = run_one(boot, tmp_path, smp, 1, mem_mib, 64, OUTSIDE)
    result(out, r"memtest: outside ok aborts=3$")
    fars = []
    for l in out:
        m = re.match(r"memtest: abort far=0x([0-9a-f]+) esr=0x([0-9a-f]+)$", l)
        if m:
            far, esr = int(m.group(1), 16), int(m.group(2), 16)
            assert esr >> 26 & 0x3f == 0x25 and esr & 0x3f == 0x10, hex(esr)
            fars.append(far)
    assert fars == [0x1000, RAM_BASE + (mem_mib << 20) + 0x40000000, 0x7f00000000]


def check_quota(out, quota):
    m = result(out, r"memtest: quota ok touched=(\d+) quota=(\d+) charged=(\d+) refused=(\d+)$")
    touched, q, charged, refused = map(int, m.groups())
    assert q == charged == quota
    assert refused >= 1
    # The quota also holds the image, BSS and stage-2 tables: about 45 pages here.
    assert quota - 100 <= touched < quota, touched
    m = result(out, r"memtest: abort far=0x([0-9a-f]+) esr=0x([0-9a-f]+)$")
    esr = int(m.group(2), 16)
    assert esr >> 26 & 0x3f == 0x25 and esr & 0x3f == 0x10, hex(esr)
    result(out, r"memtest: quota still running after the refusal$")


QUOTA_VM = dict(vm(1, 64, 1, QUOTA), sharing="off")  # merges would uncharge pages mid-check


def test_quota(boot, tmp_path):
    check_quota(run_one(boot, tmp_path, 1, 1, 64, 1, QUOTA), quota_pages(QUOTA_VM))


def test_quota_does_not_touch_another_vm(boot, tmp_path):
    """vm1 runs into its quota while vm2, on other CPUs, fills 16 MiB."""
    lines = run_vms(boot, tmp_path, [QUOTA_VM, vm(1, 64, 64, SEQ)], smp=4)
    check_quota(lines[1], quota_pages(QUOTA_VM))
    m = result(lines[2], r"memtest: seq ok pages=(\d+) fills=(\d+)$")
    assert int(m.group(1)) == int(m.group(2)) == 4096


@pytest.mark.parametrize("smp", [1, 4])
def test_bench(boot, tmp_path, smp):
    out = run_one(boot, tmp_path, smp, 1, 64, 64, BENCH)
    m = result(out, r"memtest: bench fill_ticks=(\d+) touch_ticks=(\d+) pages=(\d+) freq=(\d+)$")
    fill, touch, pages, freq = map(int, m.groups())
    assert pages == 4096 and freq > 0
    # A fill is a trip through EL2 and a page zeroed; a second touch is one store.
    assert fill > touch > 0
    print(f"fill {fill / freq / pages * 1e9:.0f} ns/page, touch {touch / freq / pages * 1e9:.0f} ns/page")


def test_bench_smp(boot, tmp_path):
    out = run_one(boot, tmp_path, 4, 4, 128, 128, BENCH_SMP)
    m = result(out, r"memtest: bench-smp vcpus=(\d+) fill_ticks=(\d+) pages_per_vcpu=(\d+) freq=(\d+)$")
    vcpus, fill, pages, freq = map(int, m.groups())
    assert vcpus == 4 and pages == 4096 and fill > 0 and freq > 0
    print(f"{vcpus * pages / (fill / freq):.0f} fills/s over {vcpus} vCPUs")


def test_reserved_memory_is_never_touched(boot, tmp_path, virt_dtb):
    """RAM the DT withholds, by /reserved-memory and by /memreserve/, stays as the firmware left it.

    Both regions hold random bytes when QEMU starts; a VM then takes nearly
    every page of the pool (each first touch zeroes a page and the guest
    writes into it). Afterwards QEMU's monitor reads the two regions back.
    """
    guards = {0x60000000: tmp_path / "guard-rsv.bin", 0x70000000: tmp_path / "guard-memreserve.bin"}
    for path in guards.values():
        path.write_bytes(os.urandom(1 << 20))
    dts = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", str(virt_dtb)], check=True,
                         capture_output=True, text=True).stdout
    dts = dts.replace("/dts-v1/;", "/dts-v1/;\n/memreserve/ 0x70000000 0x100000;", 1)
    dts = dts[:dts.rindex("};")] + """
    reserved-memory {
        #address-cells = <2>; #size-cells = <2>; ranges;
        guard@60000000 { reg = <0 0x60000000 0 0x100000>; no-map; };
    };
};
"""
    dtb = tmp_path / "guarded.dtb"
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtb)], input=dts, check=True, text=True)
    loads = [a for addr, path in guards.items()
             for a in ("-device", f"loader,file={path},addr={addr:#x},force-raw=on")]
    # 976 of the pool's ~981 MiB: every page near the guards is handed out.
    hog = dict(vm(1, 1024, 976, QUOTA), sharing="off")
    out = run_until_off(boot, tmp_path, [hog], 1, extra=("-dtb", str(dtb), *loads), timeout=180)
    assert re.search(r"reserved 0x0060000000-0x00600fffff\s+1 MiB \(guard@60000000\)", out), out
    assert re.search(r"reserved 0x0070000000-0x00700fffff\s+1 MiB \(memreserve\)", out), out
    lines = [m.group(1) for m in re.finditer(r"^\[vm1\] (.*)$", out, re.M)]
    m = result(lines, r"memtest: quota ok touched=(\d+) quota=(\d+) charged=(\d+) refused=\d+$")
    touched, quota, charged = map(int, m.groups())
    assert quota == charged == quota_pages(hog) and touched > quota - 1024, m.group(0)
    con = boot.started[-1]
    for addr, path in guards.items():
        dump = tmp_path / f"after-{addr:x}.bin"
        con.child.send("\x1dc")
        con.expect(r"\(qemu\) ")
        con.child.sendline(f'pmemsave {addr:#x} 0x100000 "{dump}"')
        con.expect(r"\(qemu\) ")
        con.child.send("\x1dc")
        assert dump.read_bytes() == path.read_bytes(), f"reserved RAM at {addr:#x} was written"


POOL_LINE = re.compile(r"quire: pool free=\d+ free_mib=\d+ used=\d+ prezeroed=(\d+) prezero_cap=(\d+) "
                       r"took_prezeroed=(\d+) zeroed_on_take=(\d+) zeroed_idle=(\d+) ")


def pool_zero(con):
    """(prezeroed, cap, took_prezeroed, zeroed_on_take, zeroed_idle) from the monitor's pool line."""
    out = monitor(con, "stats")
    m = POOL_LINE.search(out)
    assert m, out
    return tuple(int(x) for x in m.groups())


def test_prezeroed_pages_after_a_dirty_vm(boot, tmp_path):
    """Pages a dead VM left dirty are zeroed by idle CPUs, and a new VM's fresh pages read as zero.

    vm1 fills its 128 MiB with a pattern and powers off: its pages go back
    to the pool dirty. vm2 (CPU 1) scans its 16 MiB. With both off, the
    idle CPUs zero freed pages onto the pre-zeroed stack until it holds its
    cap (the monitor says when). Then vm2 restarts: every fill takes a
    pre-zeroed page, without zeroing it, and its scan reads only zeros.
    """
    vms = [memtest(DIRTY, mem_mib=128), memtest(ZEROSCAN, mem_mib=16, cpus=[1])]
    con = boot_vms(boot, tmp_path, vms, smp=2, mem="512M", timeout=120, whole_lines=True)
    wait_dirty_and_scan(con)
    # Wait for the zeroer to reach its cap (a state, polled), not for a time.
    deadline = time.monotonic() + 60
    while True:
        prezeroed, cap, took0, on_take0, idle = pool_zero(con)
        if prezeroed >= cap or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert cap > 4096 and prezeroed >= cap, (prezeroed, cap)
    assert idle >= cap
    con.child.sendline("restart vm2")
    m = con.expect(r"\[vm2\] memtest: zeroscan (ok|FAIL) pages=(\d+)[^\r\n]*\r*\n", timeout=120)
    assert m.group(1) == "ok", m.group(0)
    pages = int(m.group(2))
    con.expect(r"quire: vm2: \d+ pages returned to the pool")
    _, _, took, on_take, _ = pool_zero(con)
    # Every page vm2 scanned was a fill served pre-zeroed (its stage-2 tables too); none zeroed itself.
    assert took - took0 >= pages > 3000, (took, took0, pages)
    assert on_take == on_take0, (on_take, on_take0)
