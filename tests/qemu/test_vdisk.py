"""Guests' disks (issue 18): partitions of Quire's host disk, named in its GPT
(scripts/mkdisk), given to VMs as virtio-blk disks (disk = "NAME" in the VM
config). Linux guests load Debian's virtio_blk from the initramfs, make
filesystems, write, sync and read back; what they wrote is checked on the host
image itself, at the partition's offset, with debugfs."""
import json
import pathlib
import re
import subprocess

import pytest

from conftest import Guest, boot_vms, focus, monitor
from test_vms import wait_ready
from vmconfig import linux

ROOT = pathlib.Path(__file__).resolve().parents[2]


def mkdisk(tmp_path, *parts, name="disk.img"):
    """A host disk with a GPT (scripts/mkdisk NAME:SIZE[:CONTENT]...); its path."""
    img = tmp_path / name
    subprocess.run([str(ROOT / "scripts" / "mkdisk"), str(img), *parts], check=True, capture_output=True)
    return img


def partition(img, name):
    """(first sector, sectors) of the partition named name, as sfdisk reads the table."""
    table = json.loads(subprocess.run(["/usr/sbin/sfdisk", "--json", str(img)], check=True,
                                      capture_output=True, text=True).stdout)
    for p in table["partitiontable"]["partitions"]:
        if p.get("name") == name:
            return p["start"], p["size"]
    raise KeyError(name)


def host_file(tmp_path, img, part, path):
    """The bytes of file path in the ext2/4 filesystem of partition part of the host image."""
    start, size = partition(img, part)
    raw = tmp_path / f"{part}.ext"
    with open(img, "rb") as f:
        f.seek(start * 512)
        raw.write_bytes(f.read(size * 512))
    out = tmp_path / "dumped"
    out.unlink(missing_ok=True)
    subprocess.run(["/usr/sbin/debugfs", "-R", f"dump {path} {out}", str(raw)], check=True, capture_output=True)
    return out.read_bytes()


def drive(img, extra=""):
    return ("-drive", f"if=none,id=hd,format=raw,file={img}{extra}", "-device", "virtio-blk-device,drive=hd")


def disk_stats(con, vm):
    out = monitor(con, f"stats {vm}")
    m = re.search(rf"quire: disk {vm} (.*)", out)
    return dict(re.findall(r"(\w+)=(\S+)", m.group(1))) if m else None


def boot_disk(boot, tmp_path, img, vms, names, smp=2, timeout=120):
    con = boot_vms(boot, tmp_path, vms, smp=smp, timeout=timeout, extra=drive(img))
    wait_ready(con, names)
    return con


def shell(con, name):
    focus(con, name)
    g = Guest(con, name)
    g.sh("stty columns 4000")
    return g


def test_disk_persists_across_a_vm_reset_and_a_new_boot(boot, tmp_path):
    """mke2fs, files, sync; after `restart` of the VM and after a whole new Quire boot the files
    read back with the same checksums, and the host image holds them at the partition's offset."""
    img = mkdisk(tmp_path, "swap:64M", "alpha:64M")
    vms = [linux(1, 256, disk="alpha", sharing="off")]
    con = boot_disk(boot, tmp_path, img, vms, ["vm1"])
    g = shell(con, "vm1")
    # The whole partition and nothing else: 64 MiB in 512-byte sectors.
    assert g.sh("cat /sys/block/vda/size").strip() == str(64 << 11)
    assert g.sh("cat /sys/block/vda/ro").strip() == "0"
    g.sh("mke2fs -q /dev/vda && mount /dev/vda /mnt")
    g.sh("dd if=/dev/urandom of=/mnt/big bs=64k count=96 2>/dev/null; echo hello > /mnt/small")
    g.sh("sync")
    sums = g.sh("md5sum /mnt/big /mnt/small")
    g.sh("umount /mnt")
    focus(con, "the monitor")
    st = disk_stats(con, "vm1")
    assert st["part"] == "alpha" and st["access"] == "rw" and int(st["writes"]) > 0, st
    assert int(st["errors"]) == 0, st
    monitor(con, "restart vm1", until=r"quire> ")
    wait_ready(con, ["vm1"])
    g = shell(con, "vm1")
    g.sh("mount /dev/vda /mnt")
    assert g.sh("md5sum /mnt/big /mnt/small") == sums
    g.sh("umount /mnt; sync")
    con.close()
    # The bytes are on the host disk, in the partition, where ext2 put them.
    big = host_file(tmp_path, img, "alpha", "/big")
    assert len(big) == 96 * 65536
    import hashlib
    assert hashlib.md5(big).hexdigest() in sums
    assert host_file(tmp_path, img, "alpha", "/small") == b"hello\n"
    # A whole new Quire on the same disk.
    con = boot_disk(boot, tmp_path, img, vms, ["vm1"])
    g = shell(con, "vm1")
    g.sh("mount -o ro /dev/vda /mnt")
    assert g.sh("md5sum /mnt/big /mnt/small") == sums
