"""The rpi4 build on QEMU raspi4b (BCM2711: GIC-400, PL011 UART0, four
Cortex-A72): the same guests as on virt, with the same guest platform.

The VM config comes as the boot module (-initrd), as on virt. raspi4b has
no virtio-mmio, so there is no swap disk: Quire says so at boot.
"""
import os
import subprocess

from conftest import ROOT, Guest, boot_vms, image, linux, memtest
from test_memory import SEQ, SMP, result, run_vms
from test_share import SHARE


def test_rpi4_linux_shell_two_vcpus(boot, tmp_path):
    con = boot_vms(boot, tmp_path, [linux(2, 512)], smp=None, timeout=90, platform="rpi4")
    con.expect(r"platform:\s+rpi4 \(Raspberry Pi 4 Model B\)")
    # QEMU's stand-in for the firmware's own armstub: the other CPUs wait on spin tables.
    con.expect(r"CPUs:\s+4 online of 4 in the DT, the others by spin tables")
    con.expect(r"swap disk: none \(no virtio-blk device in the 0 virtio-mmio slots of the device tree\); "
               r"swap is off")
    g = Guest(con, "vm1")
    g.wait_shell()
    assert g.sh("echo $((6*7))").split() == ["42"]
    assert int(g.sh("grep -c ^processor /proc/cpuinfo")) == 2
    assert g.sh("cat /sys/devices/system/cpu/online").strip() == "0-1"
    # The guest sees the virt-like platform Quire emulates, not the Pi's.
    assert "Quire virt guest" in g.sh("cat /proc/device-tree/model; echo")


def test_rpi4_on_demand_memory(boot, tmp_path):
    """Filling on first touch, and two vCPUs racing on first touches, on the Pi's CPUs."""
    lines = run_vms(boot, tmp_path, [memtest(SEQ, 1, 64), memtest(SMP, 2, 64)], smp=None, timeout=120,
                    platform="rpi4")
    m = result(lines[1], r"memtest: seq ok pages=(\d+) fills=(\d+)$")
    assert int(m.group(1)) == int(m.group(2)) == 4096
    m = result(lines[2], r"memtest: smp ok vcpus=(\d+) fills=(\d+) expected=(\d+)$")
    assert int(m.group(1)) == 2 and int(m.group(2)) == int(m.group(3)) == 2 * 2048 + 256


def test_rpi4_sharing(boot, tmp_path):
    """Merging identical and zero pages, then copy-on-write on every one, checked word by word."""
    out = run_vms(boot, tmp_path, [memtest(SHARE, 1, 64)], smp=None, timeout=150, platform="rpi4")[1]
    m = result(out, r"memtest: share ok pages=(\d+) merge_ticks=(\d+) cow_ticks=(\d+) touch_ticks=(\d+)")
    assert int(m.group(1)) == 512
    assert int(m.group(3)) > 10 * int(m.group(4))


def test_sdcard_boots_through_uboot(boot, tmp_path):
    """make sdcard's image: U-Boot (u-boot-rpi's rpi_4) finds boot.scr on the card, which loads
    and booti's quire.bin; Quire starts its built-in Linux VM, whose shell answers. Hands-free."""
    mksdcard = [str(ROOT / "scripts" / "mksdcard"), str(tmp_path / "bare.img"), image("rpi4")]
    # Firmware asked for where there is none: said plainly, and the card is still made.
    (tmp_path / "empty").mkdir()
    r = subprocess.run(mksdcard, capture_output=True, text=True,
                       env={**os.environ, "RPI_FIRMWARE": str(tmp_path / "empty")})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "has no start4.elf and fixup4.dat" in r.stderr and "a real Pi 4 needs them" in r.stderr, r.stderr
    # With it (stand-ins here: QEMU starts U-Boot itself), the files go on the card.
    fw = tmp_path / "fw"
    fw.mkdir()
    for name in ("start4.elf", "fixup4.dat"):
        (fw / name).write_bytes(name.encode())
    card = tmp_path / "sdcard.img"
    mksdcard[1] = str(card)
    r = subprocess.run(mksdcard, capture_output=True, text=True, env={**os.environ, "RPI_FIRMWARE": str(fw)})
    assert r.returncode == 0, r.stdout + r.stderr
    listing = subprocess.run(["mdir", "-i", f"{card}@@1M", "-b", "::"], capture_output=True, text=True,
                             check=True).stdout
    names = {l.rsplit("/", 1)[-1] for l in listing.split()}
    assert {"config.txt", "boot.scr", "quire.bin", "u-boot.bin", "bl31.bin", "bcm2711-rpi-4-b.dtb",
            "start4.elf", "fixup4.dat"} <= names
    config = subprocess.run(["mtype", "-i", f"{card}@@1M", "::config.txt"], capture_output=True, text=True,
                            check=True).stdout
    assert "arm_64bit=1" in config and "kernel=u-boot.bin" in config and "enable_uart=1" in config

    con = boot("--platform", "rpi4", "--boot", "uboot", "--sd", str(card), timeout=120)
    con.expect(r"U-Boot 20\d\d")
    con.expect(r"platform:\s+rpi4 \(Raspberry Pi 4 Model B\)")
    g = Guest(con, "linux")
    g.wait_shell()
    assert g.sh("echo $((6*7))").split() == ["42"]


def test_rpi4_cpus_by_psci_from_tfa(boot):
    """TF-A's BL31 as the armstub (--boot tfa): it runs at EL3, adds /psci to the DT and reserves
    itself; Quire starts the other CPUs with PSCI CPU_ON over SMC and runs its Linux VM."""
    con = boot("--platform", "rpi4", "--boot", "tfa", timeout=120)
    con.expect(r"NOTICE:  BL31: v\d")
    con.expect(r"running at EL2")
    con.expect(r"CPUs:\s+4 online of 4 in the DT, the others by PSCI CPU_ON over SMC")
    con.expect(r"reserved 0x0000000000-0x000007ffff\s+512 KiB \(atf@0\)")
    g = Guest(con, "linux")
    g.wait_shell()
    assert int(g.sh("grep -c ^processor /proc/cpuinfo")) == 2
