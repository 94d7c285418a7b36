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


def fill(path, byte):
    path.write_bytes(bytes([byte]) * (1 << 20))
    return path


def image_bytes(img, part):
    start, size = partition(img, part)
    with open(img, "rb") as f:
        f.seek(start * 512)
        return f.read(size * 512)


def test_each_vm_sees_only_its_own_partition(boot, tmp_path):
    """Two VMs, two partitions filled with different bytes: each reads only its own, writes
    over all of it, and the host image shows each partition holding its own VM's bytes and
    the swap partition and the table untouched. Past the end, the guest reads nothing."""
    img = mkdisk(tmp_path, "swap:16M", "alpha:8M:file=" + str(fill(tmp_path / "a", 0xaa)),
                 "beta:8M:file=" + str(fill(tmp_path / "b", 0xbb)))
    before = img.read_bytes()
    vms = [linux(1, 256, disk="alpha", sharing="off"), linux(1, 256, disk="beta", sharing="off")]
    con = boot_disk(boot, tmp_path, img, vms, ["vm1", "vm2"])
    for name, mine in (("vm1", "aa"), ("vm2", "bb")):
        g = shell(con, name)
        assert g.sh("cat /sys/block/vda/size").strip() == str(8 << 11)
        # Its first MiB as the host image had it, nothing of the other's.
        assert g.sh("dd if=/dev/vda bs=64k count=16 2>/dev/null | xxd -p | tr -d '\\n' | "
                    f"tr -d {mine[0]} | wc -c").strip() == "0"
        # Its own byte over the whole partition, to the last sector.
        g.sh(f"dd if=/dev/zero bs=64k count=128 2>/dev/null | tr '\\000' '\\{'001' if name == 'vm1' else '002'}' "
             "> /tmp/p; dd if=/tmp/p of=/dev/vda bs=64k conv=fsync 2>/dev/null; sync")
        # Past the end: nothing (Linux stops at the capacity Quire gave it).
        assert g.sh("dd if=/dev/vda bs=512 skip=16384 count=1 2>/dev/null | wc -c").strip() == "0"
    con.close()
    after = img.read_bytes()
    a0, an = partition(img, "alpha")
    b0, bn = partition(img, "beta")
    assert image_bytes(img, "alpha") == b"\x01" * (an * 512)
    assert image_bytes(img, "beta") == b"\x02" * (bn * 512)
    # Everything else (the table, swap: no VM swapped) as it was.
    assert after[:a0 * 512] == before[:a0 * 512]
    assert after[b0 * 512 + bn * 512:] == before[b0 * 512 + bn * 512:]


def test_partitions_a_vm_cannot_have_refuse_that_vm_alone(boot, tmp_path):
    """A partition the disk lacks, the swap partition, one smaller than disk-min-mib: each such VM
    is not started, with the reason; the VM with a good disk runs."""
    from vmconfig import memtest
    img = mkdisk(tmp_path, "swap:16M", "alpha:8M", "beta:8M")
    vms = [memtest(1, disk="alpha"), memtest(1, disk="nosuch"), memtest(1, disk="swap"),
           memtest(1, disk="beta", disk_min_mib=9)]
    con = boot_vms(boot, tmp_path, vms, smp=2, extra=drive(img), whole_lines=True)
    con.expect(r"quire: vm1 powered off", timeout=60)
    out = con.child.before
    assert re.search(r"quire: vm2 not started: /vms/vm2: property 'disk' names partition 'nosuch', but the host "
                     r"disk's partitions for VMs are: 'alpha', 'beta'", out), out
    assert re.search(r"quire: vm3 not started: .*'swap', which is a Linux swap partition", out), out
    assert re.search(r"quire: vm4 not started: .*partition 'beta' of 8192 KiB, less than its 'disk-min-mib' "
                     r"\(9 MiB\)", out), out
    assert "memtest: seq ok" in out


def test_a_disk_without_a_partition_table_gives_no_vm_a_disk(boot, tmp_path):
    """A raw disk (no GPT) is all swap: a VM asking for a partition is not started; a disk whose
    GPT is corrupt is not used at all (not even for swap), said in one line."""
    raw = tmp_path / "raw.img"
    raw.write_bytes(b"\0" * (4 << 20))
    con = boot_vms(boot, tmp_path, [memtest_vm("alpha"), memtest_vm(None)], smp=2, extra=drive(raw),
                   whole_lines=True)
    con.expect(r"quire: vm2 powered off", timeout=60)
    out = con.child.before
    assert "disk: no partition table: all of it is swap" in out
    assert re.search(r"quire: vm1 not started: .*names partition 'alpha', but the host disk has no partition "
                     r"table", out), out
    con.close()
    img = mkdisk(tmp_path, "swap:16M", "alpha:8M")
    data = bytearray(img.read_bytes())
    data[512 + 40] ^= 0xff  # FirstUsableLBA, inside the CRC of the GPT header: it no longer matches
    img.write_bytes(bytes(data))
    con = boot_vms(boot, tmp_path, [memtest_vm("alpha"), memtest_vm(None)], smp=2, extra=drive(img),
                   whole_lines=True)
    con.expect(r"quire: vm2 powered off", timeout=60)
    out = con.child.before
    assert re.search(r"disk: partition table refused: .*CRC.*; no VM gets a disk, and swap is off", out), out
    assert "quire: vm1 not started" in out
    assert "swap: " not in out.split("disk: partition table refused")[1].split("quire: VM configuration")[0]


def memtest_vm(disk):
    from vmconfig import memtest
    return memtest(1, disk=disk) if disk else memtest(1)


def test_host_disk_errors_fail_only_that_request(boot, tmp_path):
    """blkdebug fails reads of one sector and writes of another inside alpha: vm1's requests
    there fail with an I/O error in the guest (logged once by Quire), its other requests work,
    and vm2 on beta, the same host disk, sees nothing of it."""
    img = mkdisk(tmp_path, "swap:16M", "alpha:16M", "beta:16M")
    a0, _ = partition(img, "alpha")
    conf = tmp_path / "blkdebug.conf"
    conf.write_text(f'[inject-error]\nevent = "read_aio"\niotype = "read"\nerrno = "5"\nsector = "{a0 + 4096}"\n'
                    f'once = "off"\n\n[inject-error]\nevent = "write_aio"\nerrno = "5"\nsector = "{a0 + 8192}"\n'
                    'once = "off"\n')
    vms = [linux(1, 256, disk="alpha", sharing="off"), linux(1, 256, disk="beta", sharing="off")]
    con = boot_vms(boot, tmp_path, vms, smp=2, timeout=120,
                   extra=("-drive", f"if=none,id=hd,format=raw,file=blkdebug:{conf}:{img}",
                          "-device", "virtio-blk-device,drive=hd"))
    wait_ready(con, ["vm1", "vm2"])
    g = shell(con, "vm1")
    bad_read = g.sh("dd if=/dev/vda of=/dev/null bs=4096 skip=512 count=1", ok=False)
    assert "I/O error" in bad_read or "Input/output error" in bad_read, bad_read
    bad_write = g.sh("dd if=/dev/zero of=/dev/vda bs=4096 seek=1024 count=1 conv=fsync", ok=False)
    assert "I/O error" in bad_write or "Input/output error" in bad_write, bad_write
    # Elsewhere its disk works: a pattern written and read back.
    g.sh("echo quire-disk-ok > /tmp/w; dd if=/tmp/w of=/dev/vda bs=512 seek=100 conv=fsync 2>/dev/null")
    g.sh("echo 3 > /proc/sys/vm/drop_caches")
    assert g.sh("dd if=/dev/vda bs=512 skip=100 count=1 2>/dev/null | head -1").strip() == "quire-disk-ok"
    h = shell(con, "vm2")
    h.sh("dd if=/dev/urandom of=/tmp/r bs=64k count=64 2>/dev/null; dd if=/tmp/r of=/dev/vda bs=64k conv=fsync "
         "2>/dev/null; echo 3 > /proc/sys/vm/drop_caches")
    assert h.sh("md5sum < /tmp/r").split()[0] == h.sh("dd if=/dev/vda bs=64k count=64 2>/dev/null | md5sum").split()[0]
    focus(con, "the monitor")
    s1, s2 = disk_stats(con, "vm1"), disk_stats(con, "vm2")
    assert int(s1["errors"]) >= 2 and int(s2["errors"]) == 0, (s1, s2)
    assert re.search(r"vm1\s+running", monitor(con, "list"))


def test_kill_and_restart_during_disk_io(boot, tmp_path):
    """A guest writes and reads its disk without pause; the monitor kills it, restarts it and
    restarts it again mid-stream, several times. Quire stays up, every teardown gives back all
    its pages, no bounce page is lost, and the disk works for the last life of the VM."""
    img = mkdisk(tmp_path, "swap:16M", "alpha:32M")
    con = boot_vms(boot, tmp_path, [linux(1, 256, disk="alpha", sharing="off")], smp=2, timeout=120,
                   extra=drive(img))
    wait_ready(con, ["vm1"])
    free_stopped = []
    for r in range(4):
        g = shell(con, "vm1")
        g.con.child.sendline("while :; do dd if=/dev/urandom of=/dev/vda bs=64k count=256 conv=fsync 2>/dev/null; "
                             "dd if=/dev/vda of=/dev/null bs=64k 2>/dev/null; done &")
        g.sh(f"sleep {1 + r % 2}")
        focus(con, "the monitor")
        monitor(con, "kill vm1" if r % 2 == 0 else "restart vm1")
        if r % 2 == 0:
            con.expect(r"quire: vm1: \d+ pages returned to the pool \(0 still held\)", timeout=60)
            free_stopped.append(pool_free_settled(con))
            monitor(con, "restart vm1")
        wait_ready(con, ["vm1"])
    g = shell(con, "vm1")
    g.sh("dd if=/dev/urandom of=/tmp/r bs=64k count=64 2>/dev/null; dd if=/tmp/r of=/dev/vda bs=64k conv=fsync "
         "2>/dev/null; echo 3 > /proc/sys/vm/drop_caches")
    assert g.sh("md5sum < /tmp/r").split()[0] == g.sh("dd if=/dev/vda bs=64k count=64 2>/dev/null | md5sum").split()[0]
    focus(con, "the monitor")
    monitor(con, "kill vm1")
    con.expect(r"quire: vm1: \d+ pages returned to the pool \(0 still held\)", timeout=60)
    free_stopped.append(pool_free_settled(con))
    # Every bounce page back: with the VM stopped, the pool is as free each time.
    assert len(set(free_stopped)) == 1, free_stopped


def pool_free_settled(con):
    """The pool's free pages once requests still on the host disk have completed (two equal looks)."""
    import time
    last = None
    for _ in range(20):
        now = int(re.search(r"quire: pool free=(\d+)", monitor(con, "stats")).group(1))
        if now == last:
            return now
        last = now
        time.sleep(0.5)
    return last
