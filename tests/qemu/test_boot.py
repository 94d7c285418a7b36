"""Issue 2: Quire boots at EL2, describes its machine, and reports crashes."""
import re
import subprocess

import pytest

from conftest import BUILD, image, memtest, run_until_off

SHIM = str(BUILD / "shim" / "jump.bin")
SHIM_ARGS = 0x47FFF000  # where build/shim/jump.bin reads x0 and the entry point


def shim_boot(boot, quire, dtb_addr, machine="virt,virtualization=on,gic-version=2",
              extra=(), load_at=0x40400000):
    """Enter Quire through the test shim with x0 = dtb_addr (see tests/shim/jump.S)."""
    return boot("--machine", machine, "--smp", "1", "--mem", "1G", "--",
                "-bios", SHIM,
                "-device", f"loader,file={quire},addr={load_at:#x},force-raw=on",
                "-device", f"loader,addr={SHIM_ARGS:#x},data={dtb_addr:#x},data-len=8",
                "-device", f"loader,addr={SHIM_ARGS + 8:#x},data={load_at:#x},data-len=8",
                *extra)


MEM_MIB = {"512M": 512, "2G": 2048, "3G": 3072}


@pytest.mark.parametrize("smp", [1, 2, 4])
@pytest.mark.parametrize("mem", ["512M", "2G", "3G"])
def test_banner_matches_qemu(boot, smp, mem):
    con = boot("--image", image(), "--smp", str(smp), "--mem", mem)
    con.expect(r"Quire \S+, an EL2 microhypervisor")
    con.expect(r"running at EL2[\r\n]")
    m = con.expect(r"CPUs:\s+(\d+) online of (\d+) in the DT")
    assert (int(m.group(1)), int(m.group(2))) == (smp, smp)
    m = con.expect(r"memory:\s+(\d+) MiB in (\d+) region")
    assert int(m.group(1)) == MEM_MIB[mem]
    m = con.expect(r"ram\s+0x(\w+)-0x(\w+)\s+(\d+) MiB")
    assert int(m.group(1), 16) == 0x40000000
    assert int(m.group(2), 16) - int(m.group(1), 16) + 1 == MEM_MIB[mem] << 20
    con.expect(r"GIC:\s+arm,cortex-a15-gic, distributor 0x8000000, CPU interface 0x8010000")
    con.expect(r"GIC virt:\s+GICH 0x8030000, GICV 0x8040000, maintenance INTID 25")
    con.expect(r"console:\s+/pl011@9000000 at 0x9000000")


def test_boot_through_uboot(boot):
    con = boot("--image", image(), "--boot", "uboot", "--smp", "2", timeout=60)
    con.expect(r"U-Boot 20\d\d")
    con.expect(r"Starting kernel")
    con.expect(r"running at EL2")
    m = con.expect(r"CPUs:\s+(\d+) online of (\d+)")
    assert m.group(1) == m.group(2) == "2"


def test_rpi4_on_raspi4b(boot):
    con = boot("--platform", "rpi4", "--image", image("rpi4"), timeout=60)
    con.expect(r"platform:\s+rpi4 \(Raspberry Pi 4 Model B\)")
    con.expect(r"running at EL2[\r\n]")
    m = con.expect(r"CPUs:\s+(\d+) online of (\d+)")
    assert m.group(1) == m.group(2) == "4"
    m = con.expect(r"memory:\s+(\d+) MiB in (\d+) region")
    assert int(m.group(1)) > 0
    # The low RAM bank below the VideoCore carve-out, and the firmware's page 0.
    con.expect(r"ram\s+0x0000000000-0x003bffffff\s+960 MiB")
    con.expect(r"reserved 0x0000000000-0x0000000fff")
    # GIC-400 found through /soc ranges (bus 0x40041000 -> CPU 0xff841000).
    con.expect(r"GIC:\s+arm,gic-400, distributor 0xff841000, CPU interface 0xff842000")
    con.expect(r"GIC virt:\s+GICH 0xff844000, GICV 0xff846000")
    # stdout-path names the mini UART; Quire drives the PL011 UART0.
    con.expect(r"console:\s+/soc/serial@7e201000 at 0xfe201000")


def test_crash_report_and_other_cpus_survive(boot):
    con = boot("--image", image(variant="-crashtest"), "--smp", "4")
    con.expect(r"CPUs:\s+4 online")
    m = con.expect(r"\*\*\* QUIRE CRASH on CPU (\d+) \(MPIDR 0x\w+\): synchronous, current EL")
    crashed = int(m.group(1))
    assert crashed == 3
    con.expect(r"EC 0x25: Data Abort taken without a change in Exception level")
    con.expect(r"ESR_EL2 0x96\w+\s+IL 1\s+ISS 0x\w+ \(Translation fault")
    con.expect(r"FAR_EL2 0x0000dead0000beef\s+ELR_EL2 0x\w+\s+SPSR_EL2 0x\w+")
    con.expect(r"x0\s+0x0000dead0000beef")
    con.expect(r"x30 ")
    con.expect(r"\*\*\* CPU 3 halted")
    alive = set()
    for _ in range(3):
        alive.add(int(con.expect(r"cpu(\d): alive after a crash")[1]))
    assert alive == {0, 1, 2}


def test_entered_at_el1_refuses(boot):
    con = boot("--image", image(), "--machine", "virt,gic-version=2", "--smp", "1")
    con.expect(r"entered at EL1; it must be entered at EL2")
    con.expect(r"refusing to run")
    assert "an EL2 microhypervisor" not in con.read_until_quiet(1.0, 3)


def test_entered_at_el3_drops_to_el2(boot):
    # QEMU puts its DT at the start of RAM for firmware.
    con = shim_boot(boot, image(), 0x40000000,
                    machine="virt,secure=on,virtualization=on,gic-version=2")
    con.expect(r"running at EL2 \(entered at EL3\)")
    con.expect(r"memory:\s+1024 MiB in 1 region")


def fatal_for_dtb(boot, dtb_path):
    con = shim_boot(boot, image(), 0x48000000,
                    extra=("-device", f"loader,file={dtb_path},addr=0x48000000,force-raw=on"))
    m = con.expect(r"Quire: FATAL: ([^\r\n]*)[\r\n]")
    con.expect(r"Quire: halting")
    return m.group(1)


def test_dt_without_memory_node(boot, virt_dtb, tmp_path):
    dtb = tmp_path / "nomem.dtb"
    dtb.write_bytes(virt_dtb.read_bytes())
    subprocess.run(["fdtput", "-r", str(dtb), "/memory@40000000"], check=True)
    assert "no memory node" in fatal_for_dtb(boot, dtb)


def test_dt_corrupt_structure(boot, virt_dtb, tmp_path):
    blob = bytearray(virt_dtb.read_bytes())
    off = int.from_bytes(blob[8:12], "big")  # off_dt_struct
    blob[off + 64:off + 96] = b"\xa5" * 32  # garbage tokens inside the structure block
    dtb = tmp_path / "corrupt.dtb"
    dtb.write_bytes(blob)
    assert re.search(r"device tree at 0x48000000 is corrupt: FDT_ERR_\w+", fatal_for_dtb(boot, dtb))


def test_dt_bad_magic(boot, virt_dtb, tmp_path):
    blob = bytearray(virt_dtb.read_bytes())
    blob[0:4] = b"\0\0\0\0"
    dtb = tmp_path / "badmagic.dtb"
    dtb.write_bytes(blob)
    assert "is not valid: FDT_ERR_BADMAGIC" in fatal_for_dtb(boot, dtb)


def test_no_dt_at_all(boot):
    con = shim_boot(boot, image(), 0)
    con.expect(r"Quire: FATAL: no device tree")


def test_cpus_that_never_start_are_left_behind(boot, tmp_path, virt_dtb):
    """A DT naming CPUs that are not there: one PSCI refuses, one spin table nobody reads.

    Quire starts all at once, says which did not come up and why, and runs
    its VM on the CPU it has.
    """
    dts = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", str(virt_dtb)], check=True,
                         capture_output=True, text=True).stdout
    dts = dts.replace("/dts-v1/;", "/dts-v1/;\n/memreserve/ 0x7fff0000 0x1000;", 1)
    dts += """
/ {
    cpus {
        cpu@1 { device_type = "cpu"; compatible = "arm,cortex-a72"; reg = <1>; enable-method = "psci"; };
        cpu@2 { device_type = "cpu"; compatible = "arm,cortex-a72"; reg = <2>;
                enable-method = "spin-table"; cpu-release-addr = <0 0x7fff0000>; };
    };
};
"""
    dtb = tmp_path / "ghost-cpus.dtb"
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtb)], input=dts, check=True, text=True)
    out = run_until_off(boot, tmp_path, [memtest(1)], 1, extra=("-dtb", str(dtb)))
    assert "quire: CPU with MPIDR 0x1 not started: PSCI CPU_ON failed" in out, out
    assert "quire: CPU 2 (MPIDR 0x2) did not come up within 500 ms" in out, out
    assert re.search(r"CPUs:\s+1 online of 3 in the DT, the others by PSCI and spin tables", out), out
    assert re.search(r"^\[vm1\] memtest: seq ok", out, re.M), out
