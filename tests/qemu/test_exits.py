"""The exit profile (include/quire/exitprof.h, docs/memory.md "Where the
instructions go"): per VM and exit reason, exits and the counter ticks
Quire spent on them. The monitor's `exits`, a guest's mark (a WFI with
QUIRE_MARK_X0/X1) and the bootarg quire.exitmark=T print the same table.

memtest mode 33 makes exactly 300 exits of five kinds between two marks,
so the difference of the two tables is known to the exit; Linux shows the
reasons a real guest has, and a restart starts its VM's table again.
"""
import re

from conftest import Guest, boot_vms, focus, image, linux, memtest, monitor, run_until_off, vm_config

EXITS, BENCH_IDLE = 33, 32
N = 300
HEADER = re.compile(r"quire: exits (\w+) counter=(\d+) first_entry=(\d+) freq=(\d+) idle_ticks=(\d+) "
                    r"idle_work_ticks=(\d+)")
ROW = re.compile(r"^\s+([a-z0-9-]+)\s+(\d+)\s+(\d+)(?:\s+(\d+)\.(\d))?$")


def tables(text):
    """Every table in text, in order: {"counter", "first_entry", ..., "rows": {reason: (exits, ticks)}}."""
    out, cur = [], None
    for line in text.replace("\r", "").split("\n"):
        m = HEADER.search(line)
        if m:
            cur = dict(zip(("vm", "counter", "first_entry", "freq", "idle", "idle_work"),
                           [m.group(1)] + [int(x) for x in m.groups()[1:]]), rows={})
            out.append(cur)
            continue
        m = ROW.match(line)
        if cur is not None and m and m.group(1) != "reason":
            cur["rows"][m.group(1)] = (int(m.group(2)), int(m.group(3)))
            if m.group(1) == "total":
                cur = None
    return out


def check_sums(t):
    """The total row is the sum of the others, and Quire's ticks fit in the VM's life."""
    rows = {k: v for k, v in t["rows"].items() if k != "total"}
    assert t["rows"]["total"] == (sum(n for n, _ in rows.values()), sum(x for _, x in rows.values())), t
    assert 0 < t["first_entry"] <= t["counter"], t
    assert t["rows"]["total"][1] + t["idle"] + t["idle_work"] <= t["counter"] - t["first_entry"], t
    for reason, (n, ticks) in rows.items():
        assert n > 0, (reason, t)


def test_counts_are_exact_and_add_up(boot, tmp_path):
    out = run_until_off(boot, tmp_path, [memtest(EXITS, 1, 64)], smp=1)
    m = re.search(r"memtest: exits n=(\d+) ticks=(\d+) sum=\d+ done", out)
    assert m, out
    assert int(m.group(1)) == N
    guest_ticks = int(m.group(2))
    ts = tables(out)
    # Two marks bracket the loop; of the ten after it only two print (four in a VM's life).
    assert "memtest: exits spam done" in out
    assert len(ts) == 4, out
    a, b = ts[0], ts[1]
    for t in ts:
        check_sums(t)
    diff = {k: (b["rows"].get(k, (0, 0))[0] - a["rows"].get(k, (0, 0))[0],
                b["rows"].get(k, (0, 0))[1] - a["rows"].get(k, (0, 0))[1]) for k in b["rows"]}
    # Exactly the loop's exits, and the first mark's own (a WFI, counted once it has printed).
    for reason in ("fill", "mmio-vgic", "mmio-pl011", "hvc", "sysreg"):
        assert diff[reason][0] == N, (reason, diff)
        assert diff[reason][1] > 0, (reason, diff)
    assert diff["wfi"][0] == 1, diff
    assert diff["total"][0] == 5 * N + 1, diff
    # Quire's ticks between the marks fit in the guest's own measure of the same stretch.
    assert 0 < b["counter"] - a["counter"] <= guest_ticks
    assert diff["total"][1] <= b["counter"] - a["counter"]
    # A fill costs more than a trapped ID register read (which does next to nothing).
    assert diff["fill"][1] > diff["sysreg"][1]


def test_exitmark_bootarg(boot, tmp_path):
    """quire.exitmark=T prints every VM's table once, at counter T (on Quire's own timer, so also while
    every vCPU sleeps); a bad T is refused. Under -icount, so T falls where the guests are known to be:
    mode 32 sleeps its first second in WFI."""
    T = 20_000_000  # 0.32 s: both VMs asleep
    cfg = vm_config([memtest(BENCH_IDLE, 1, 64), memtest(BENCH_IDLE, 1, 64)], tmp_path / "vms.dtb")
    con = boot("--icount", "--image", image(), "--smp", "2", "--mem", "1G", "--", "-initrd", cfg,
               "-append", f"quire.input=monitor quire.exitmark={T}", timeout=90)
    con.expect(r"memtest: bench fill_ticks", timeout=90)
    assert f"printed at counter {T} (quire.exitmark)" in con.child.before
    # Mode 32 marks before and after its fills too; those come later.
    ts = [t for t in tables(con.child.before) if t["counter"] < 2 * T]
    assert sorted(t["vm"] for t in ts) == ["vm1", "vm2"], con.child.before
    for t in ts:
        check_sums(t)
        assert T <= t["counter"] < T + 62_500  # within a millisecond of T
        assert t["idle"] > 0  # asleep in WFI since it started: idle, not Quire's
    con.close()
    out = run_until_off(boot, tmp_path, [memtest(EXITS, 1, 64)], smp=1, extra=("-append", "quire.exitmark=12x"))
    assert "quire.exitmark ignored: not a decimal counter value" in out
    assert "(quire.exitmark)" not in out


def test_linux_reasons_and_restart(boot, tmp_path):
    """A Linux guest with 2 vCPUs: fills, the console, the timer and IPIs show; the table adds up,
    grows with work, and starts again when the VM restarts."""
    con = boot_vms(boot, tmp_path, [linux(2, 256)], smp=2, timeout=60)
    g = Guest(con, "vm1")
    g.wait_shell()
    g.sh("dd if=/dev/zero of=/tmp/x bs=1M count=32 2>/dev/null; rm /tmp/x")
    focus(con, "the monitor")
    t1 = tables(monitor(con, "exits vm1"))
    assert len(t1) == 1
    t1 = t1[0]
    check_sums(t1)
    for reason in ("fill", "mmio-pl011", "mmio-vgic", "irq-vtimer", "sgi-send", "irq-kick", "hvc", "wfi"):
        assert t1["rows"].get(reason, (0, 0))[0] > 0, (reason, t1)
    # 32 MiB written into tmpfs: at least that many pages filled.
    assert t1["rows"]["fill"][0] >= 32 * 256
    t2 = tables(monitor(con, "exits"))
    assert [t["vm"] for t in t2] == ["vm1"]
    assert t2[0]["rows"]["total"][0] >= t1["rows"]["total"][0]
    assert "no VM 'vm9'" in monitor(con, "exits vm9")
    monitor(con, "restart vm1")
    con.expect(r"quire: vm1: first instruction", timeout=60)
    t3 = tables(monitor(con, "exits vm1"))[0]
    check_sums(t3)
    assert t3["first_entry"] > t1["counter"]
    assert t3["rows"]["total"][0] < t1["rows"]["total"][0]
