"""scripts/mkdisk: a raw disk with a GPT (no QEMU). The table is read back with sfdisk --json,
the filesystems with debugfs, from a copy of the partition (debugfs takes no offset)."""
import json
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MKDISK = ROOT / "scripts" / "mkdisk"
MIB = 1 << 20
SWAP_TYPE = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
DATA_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
SBIN_PATH = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"


def tool(name):
    path = shutil.which(name, path=SBIN_PATH)
    assert path, f"{name} not found (Debian packages fdisk, e2fsprogs)"
    return path


def mkdisk(*args):
    return subprocess.run([str(MKDISK), *map(str, args)], capture_output=True, text=True, timeout=60)


def table(img):
    out = subprocess.run([tool("sfdisk"), "--json", str(img)], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)["partitiontable"]


def partition(img, part, dest):
    """The bytes of one partition (an entry of sfdisk --json) in a file of their own."""
    with open(img, "rb") as f:
        f.seek(part["start"] * 512)
        data = f.read(part["size"] * 512)
    dest.write_bytes(data)
    return data


def debugfs(img, request):
    r = subprocess.run([tool("debugfs"), "-R", request, str(img)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture
def rootfs(tmp_path):
    d = tmp_path / "rootfs"
    (d / "etc").mkdir(parents=True)
    (d / "hello.txt").write_text("hello from mkdisk\n")
    (d / "etc" / "motd").write_text("nested\n")
    return d


def test_layout_and_contents(tmp_path, rootfs):
    blob = os.urandom(3000)
    (tmp_path / "blob").write_bytes(blob)
    img = tmp_path / "disk.img"
    r = mkdisk(img, "swap:8M", f"alpha:16M:ext4={rootfs}", "beta:8M:ext4", "scratch:1500K",
               f"raw-1_X:1M:file={tmp_path / 'blob'}")
    assert r.returncode == 0, r.stderr

    t = table(img)
    assert t["label"] == "gpt"
    assert t["sectorsize"] == 512
    parts = t["partitions"]
    assert [p["name"] for p in parts] == ["swap", "alpha", "beta", "scratch", "raw-1_X"]
    assert [p["type"] for p in parts] == [SWAP_TYPE] + [DATA_TYPE] * 4
    # 1500K is rounded up to 2 MiB.
    assert [p["size"] * 512 // MIB for p in parts] == [8, 16, 8, 2, 1]
    # The first at 1 MiB, each MiB-aligned and right after the one before.
    assert parts[0]["start"] == 2048
    for a, b in zip(parts, parts[1:]):
        assert b["start"] == a["start"] + a["size"]
    assert all(p["start"] % 2048 == 0 and p["size"] % 2048 == 0 for p in parts)
    # Room for the backup GPT after the last; the image is sparse.
    assert img.stat().st_size == (8 + 16 + 8 + 2 + 1 + 2) * MIB
    assert t["lastlba"] >= parts[-1]["start"] + parts[-1]["size"] - 1
    assert img.stat().st_blocks * 512 < img.stat().st_size // 2

    # One summary line per partition: index, name, start sector, sectors, content.
    lines = [line.split() for line in r.stdout.splitlines()[1:]]
    assert len(lines) == 5
    for i, (line, p) in enumerate(zip(lines, parts), 1):
        assert line[:2] == [str(i), p["name"]]
        assert str(p["start"]) in line and str(p["size"]) in line
    assert f"ext4={rootfs}" in lines[1] and "zero" in lines[3]

    # ext4=DIR: a filesystem holding DIR's files.
    data = partition(img, parts[1], tmp_path / "alpha.img")
    assert data[1024 + 56:1024 + 58] == b"\x53\xef"
    assert debugfs(tmp_path / "alpha.img", "cat /hello.txt") == "hello from mkdisk\n"
    assert debugfs(tmp_path / "alpha.img", "cat /etc/motd") == "nested\n"
    # ext4: an empty filesystem (only lost+found).
    data = partition(img, parts[2], tmp_path / "beta.img")
    assert data[1024 + 56:1024 + 58] == b"\x53\xef"
    names = debugfs(tmp_path / "beta.img", "ls -p /").split()
    assert not any("hello" in n for n in names) and any("lost+found" in n for n in names)
    # zero and file=: the swap and scratch partitions read as zeros, raw holds the file's bytes.
    assert partition(img, parts[0], tmp_path / "swap.img") == bytes(8 * MIB)
    assert partition(img, parts[3], tmp_path / "scratch.img") == bytes(2 * MIB)
    data = partition(img, parts[4], tmp_path / "raw.img")
    assert data[:len(blob)] == blob and data[len(blob):] == bytes(MIB - len(blob))


def test_no_swap_partition(tmp_path):
    img = tmp_path / "d.img"
    r = mkdisk(img, "only:1M")
    assert r.returncode == 0, r.stderr
    parts = table(img)["partitions"]
    assert [(p["name"], p["type"], p["start"], p["size"]) for p in parts] == \
        [("only", DATA_TYPE, 2048, 2048)]


REFUSALS = [
    (["a:1M", "a:2M"], "used twice"),
    (["swap:1M", "swap:2M"], "more than one swap"),
    (["bad.name:1M"], "bad name"),
    (["x" * 37 + ":1M"], "bad name"),
    (["a:1M", ":1M"], "bad name"),
    (["a:0M"], "bad size"),
    (["a:12X"], "bad size"),
    (["a:-1M"], "bad size"),
    (["a"], "NAME:SIZE"),
    (["a:1M:ext4={tmp}/nonexistent"], "no such directory"),
    (["a:1M:file={tmp}/nonexistent"], "no such file"),
    (["a:1M:file={tmp}/big"], "more than the partition"),
    (["a:1M:bogus"], "bad content"),
    (["swap:1M:ext4"], "swap partition cannot hold a filesystem"),
    ([f"p{i}:1M" for i in range(17)], "more than the 16"),
    (["a:4M:ext4={tmp}/fat"], "mke2fs could not make"),
]


@pytest.mark.parametrize("parts,message", REFUSALS, ids=[m for _, m in REFUSALS])
def test_refusals(tmp_path, parts, message):
    (tmp_path / "big").write_bytes(bytes(MIB + 1))
    (tmp_path / "fat").mkdir()
    (tmp_path / "fat" / "f").write_bytes(os.urandom(5 * MIB))
    img = tmp_path / "out.img"
    r = mkdisk(img, *(p.format(tmp=tmp_path) for p in parts))
    assert r.returncode != 0
    assert r.stderr.startswith("mkdisk: ") and message in r.stderr, r.stderr
    assert not img.exists() and not (tmp_path / "out.img.tmp").exists()


def test_usage():
    r = mkdisk("only.img")
    assert r.returncode != 0 and "NAME:SIZE[:CONTENT]" in r.stderr
