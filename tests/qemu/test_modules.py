"""Item 8 of issue 15: guest images supplied at boot as boot modules in the
host DT's /chosen (Xen's dom0less binding, docs/config.md "Boot modules"),
not only built into quire.bin.

The module is a copy of the memtest guest with one string changed
("memtest: seq ok" -> "modtest: seq ok"): only bytes that came from the
module print that line, so it shows the VM booted the module and not the
memtest quire.bin carries.
"""
import os
import re
import subprocess

import pexpect
import pytest

from conftest import BUILD, ROOT, image, memtest, vm_config
from test_memory import SEQ

MEMTEST = BUILD / "guests" / "memtest.bin"


def patched_memtest(tmp_path):
    data = MEMTEST.read_bytes()
    assert data.count(b"memtest: seq ok") == 1
    out = tmp_path / "modtest.bin"
    out.write_bytes(data.replace(b"memtest: seq ok", b"modtest: seq ok"))
    return out


def on(kernel, vm):
    """The VM dict with another kernel image."""
    return {**vm, "kernel": kernel}


def wait_lines(con, want, timeout=90):
    """Console text until every pattern in want has matched (in any order)."""
    text, left = [], list(want)
    while left:
        try:
            con.expect("|".join(f"(?:{w})" for w in left), timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF):
            pytest.fail(f"never saw {left}; console:\n" + "".join(text) + str(con.child.before))
        text.append(con.child.before + con.child.after)
        left = [w for w in left if not re.search(w, con.child.after)]
    return "".join(text).replace("\r", "")


def test_vm_boots_a_module_from_qemu_loader(boot, tmp_path):
    """QEMU's -device loader puts the image in RAM, QEMU's own DT gets a
    /chosen/module node (scripts/qemu --module); vm1 boots it by name; vm2
    names a module that is not there and is refused alone; vm3, on the
    built-in memtest, runs beside vm1."""
    mod = patched_memtest(tmp_path)
    cfg = vm_config([on("module:mt2", memtest(SEQ, 1, 64)),
                     on("module:nothere", memtest(SEQ, 1, 64)),
                     memtest(SEQ, 1, 64)], tmp_path / "vms.dtb")
    con = boot("--image", image(), "--smp", "2", "--mem", "1G",
               "--module", f"raw:mt2={mod}@0x50000000", "--", "-initrd", cfg,
               "-append", "quire.input=monitor", timeout=90)
    # Kept out of the page pool, named in the banner's reservations.
    end = 0x50000000 + mod.stat().st_size - 1
    con.expect(rf"reserved 0x0050000000-0x{end:010x}\s+\d+ KiB \(module:mt2\)")
    out = wait_lines(con, [
        r"quire: vm2 not started: /vms/vm2: property 'kernel' names boot module 'nothere', but the "
        r"host DT's /chosen gives only: mt2",
        r"quire: vm1: module:mt2, 1 vCPU",
        r"\[vm1\] modtest: seq ok pages=4096 fills=4096",
        r"\[vm3\] memtest: seq ok pages=4096 fills=4096",
    ])
    assert "[vm2]" not in out
    assert "quire: VM configuration (" not in out, out  # not refused whole
    assert "*** QUIRE CRASH" not in out


def test_hostile_module_refused_and_boot_goes_on(boot, tmp_path):
    """A module that does not start on a page is refused with the node and property named;
    a VM naming it is refused alone and the built-in VM runs."""
    mod = patched_memtest(tmp_path)
    cfg = vm_config([on("module:bad", memtest(SEQ, 1, 64)), memtest(SEQ, 1, 64)], tmp_path / "vms.dtb")
    con = boot("--image", image(), "--smp", "2", "--mem", "1G",
               "--module", f"raw:bad={mod}@0x50000800", "--", "-initrd", cfg,
               "-append", "quire.input=monitor", timeout=90)
    con.expect(rf"quire: host DT: /chosen/module@50000800 reg: 0x50000800\+{mod.stat().st_size:#x} does not "
               r"start on a 4 KiB page; not used")
    out = wait_lines(con, [
        r"quire: vm1 not started: /vms/vm1: property 'kernel' names boot module 'bad', but the host DT's "
        r"/chosen gives none",
        r"\[vm2\] memtest: seq ok",
    ])
    assert "*** QUIRE CRASH" not in out


def test_uboot_loads_modules_from_the_sd_card(boot, tmp_path):
    """The U-Boot flow on the Pi 4 (raspi4b): the SD card carries a second kernel and a VM
    config beside quire.bin; the boot script loads both into RAM and describes them in
    /chosen with U-Boot's fdt commands before booti. The config module replaces the
    built-in one; vm1 boots the kernel module, vm2 names a module the card lacks and is
    refused alone."""
    mod = patched_memtest(tmp_path)
    cfg = vm_config([on("module:mt2", memtest(SEQ, 1, 64)), on("module:nothere", memtest(SEQ, 1, 64))],
                    tmp_path / "vms.dtb")
    card = tmp_path / "sdcard.img"
    (tmp_path / "fw").mkdir()
    r = subprocess.run([str(ROOT / "scripts" / "mksdcard"), str(card), image("rpi4"), "uboot",
                        "--module", f"kernel:mt2={mod}@0x10000000",
                        "--module", f"config:vms={cfg}@0x0f000000"],
                       capture_output=True, text=True, env={**os.environ, "RPI_FIRMWARE": str(tmp_path / "fw")})
    assert r.returncode == 0, r.stdout + r.stderr
    listing = subprocess.run(["mdir", "-i", f"{card}@@1M", "-b", "::"], capture_output=True, text=True,
                             check=True).stdout
    assert {"mt2.mod", "vms.mod"} <= {l.rsplit("/", 1)[-1] for l in listing.split()}

    con = boot("--platform", "rpi4", "--boot", "uboot", "--sd", str(card), timeout=120)
    # (U-Boot's own lines go to its video console by then: Quire's banner shows what it loaded.)
    con.expect(r"platform:\s+rpi4 \(Raspberry Pi 4 Model B\)")
    con.expect(r"reserved 0x000f000000-0x000f000\w+\s+\d+ B \(module:vms\)")
    con.expect(rf"reserved 0x0010000000-0x{0x10000000 + mod.stat().st_size - 1:010x}\s+\d+ KiB \(module:mt2\)")
    out = wait_lines(con, [
        r"quire: vm2 not started: /vms/vm2: property 'kernel' names boot module 'nothere', but the "
        r"host DT's /chosen gives only: mt2",
        r"quire: VM configuration from the boot module: 1 VM,",
        r"quire: vm1: module:mt2, 1 vCPU",
        r"\[vm1\] modtest: seq ok pages=4096 fills=4096",
    ], timeout=120)
    assert "*** QUIRE CRASH" not in out
