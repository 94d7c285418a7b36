"""Issue 14: host DT values Quire used unchecked are refused with a line naming
the node and property, and Quire carries on (or halts with FATAL), never an
EL2 abort. The host tests (tests/host/test_machine.c) cover each check; these
boots show the refusals reach the console and nothing crashes."""
import subprocess

from conftest import image
from test_boot import shim_boot

CRASH = "*** QUIRE CRASH"


def edited_dtb(virt_dtb, tmp_path, name, extra_dts, memreserve=""):
    """QEMU virt's own DT with extra_dts laid over it (dtc merges nodes of the same path)."""
    dts = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", str(virt_dtb)], check=True,
                         capture_output=True, text=True).stdout
    if memreserve:
        dts = dts.replace("/dts-v1/;", "/dts-v1/;\n" + memreserve, 1)
    dtb = tmp_path / f"{name}.dtb"
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtb)], input=dts + extra_dts,
                   check=True, text=True)
    return dtb


def test_gicv_over_ram_and_psci_hvc_refused(boot, virt_dtb, tmp_path):
    """The GICV frame laid over RAM (a guest reached Quire's memory through
    it), PSCI over HVC (Quire would call itself), a /memory bank given twice
    and a reservation that wraps: each a refusal line, then a quiet boot with
    no VM and no crash. Entered through the shim: with -dtb QEMU rewrites
    /memory and /psci."""
    dtb = edited_dtb(virt_dtb, tmp_path, "gicv-over-ram", """
/ {
    intc@8000000 {
        reg = <0x0 0x8000000 0x0 0x10000>, <0x0 0x8010000 0x0 0x10000>,
              <0x0 0x8030000 0x0 0x10000>, <0x0 0x40000000 0x0 0x10000>;
    };
    psci { method = "hvc"; };
    memory@40000000 { reg = <0x0 0x40000000 0x0 0x40000000>, <0x0 0x40000000 0x0 0x20000000>; };
    cpus {
        cpu@1 { device_type = "cpu"; compatible = "arm,cortex-a72"; reg = <1>; enable-method = "psci"; };
    };
};
""", memreserve="/memreserve/ 0x7ff00000 0xffffffffffffff00;")
    con = shim_boot(boot, image(), 0x48000000,
                    extra=("-device", f"loader,file={dtb},addr=0x48000000,force-raw=on"))
    con.expect_exact("quire: host DT: /memory@40000000 reg: bank 0x40000000-0x5fffffff overlaps "
                     "0x40000000-0x7fffffff (/memory@40000000), merged")
    con.expect_exact("quire: host DT: /memreserve/ entry 0: 0xffffffffffffff00 bytes at 0x7ff00000 run past "
                     "the top of the address space; reserved to the end of RAM")
    con.expect_exact('quire: host DT: /psci method: "hvc" reaches no firmware from EL2')
    con.expect_exact("quire: host DT: /intc@8000000 reg: GICV frame 0x40000000+0x10000 overlaps RAM "
                     "0x40000000-0x7fffffff (/memory@40000000); the GIC is not used, so no VM can run")
    con.expect_exact("quire: CPU with MPIDR 0x1 not started: enable-method is psci but the DT has no "
                     "usable /psci node")
    con.expect(r"GIC:\s+none usable")
    con.expect(r"pool: \d+ pages")
    con.expect_exact("quire: no usable GIC in the host DT: VMs cannot run; starting no VM")
    rest = con.read_until_quiet(quiet=1.0, limit=5)
    assert CRASH not in rest, rest


def test_image_outside_declared_ram_is_fatal(boot, virt_dtb, tmp_path):
    """Quire's own image outside the RAM the DT declares: FATAL with the
    reason, not a silent death at the MMU switch."""
    dtb = edited_dtb(virt_dtb, tmp_path, "image-outside", """
/ { memory@40000000 { reg = <0x0 0x60000000 0x0 0x20000000>; }; };
""")
    con = shim_boot(boot, image(), 0x48000000,
                    extra=("-device", f"loader,file={dtb},addr=0x48000000,force-raw=on"))
    m = con.expect(r"Quire: FATAL: ([^\r\n]*)[\r\n]")
    assert "Quire's own image at 0x40400000-" in m.group(1) and "is not in the RAM the device tree declares" \
        in m.group(1), m.group(1)
    con.expect_exact("Quire: halting")


def test_corrupt_boot_module_is_refused(boot, tmp_path):
    """A boot module that is not a VM config is refused with the reason; the
    built-in VMs do not boot in its place."""
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\xd0\x0d\xfe\xed" + b"\xff" * 4092)
    con = boot("--image", image(), "--mem", "1G", "--", "-initrd", str(junk))
    m = con.expect(r"quire: VM configuration \(from the boot module\) refused: ([^\r\n]*)\r*\n")
    assert "the boot module at 0x" in m.group(1) and "is not a device tree: FDT_ERR_" in m.group(1), m.group(1)
    con.expect_exact("quire: starting no VM")
    rest = con.read_until_quiet(quiet=1.0, limit=5)
    assert "[vm1]" not in rest and CRASH not in rest, rest
