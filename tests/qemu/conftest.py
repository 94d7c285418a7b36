"""QEMU integration test harness: boot an image with scripts/qemu and read its console."""
import os
import pathlib
import shutil
import subprocess

import pexpect
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
CACHE = pathlib.Path(os.environ.get("QUIRE_CACHE", pathlib.Path.home() / ".cache" / "quire"))
LOGS = BUILD / "test-logs"


class Console:
    """A running QEMU with the console on a pty; every byte is logged."""

    def __init__(self, args, log_path, timeout):
        self.log = open(log_path, "w", encoding="utf-8", errors="replace")
        self.child = pexpect.spawn(str(ROOT / "scripts" / "qemu"), args, cwd=str(ROOT),
                                   encoding="utf-8", codec_errors="replace",
                                   timeout=timeout, logfile=self.log)

    def expect(self, pattern, timeout=None):
        """Wait for a regular expression; returns the match."""
        self.child.expect(pattern, timeout=timeout)
        return self.child.match

    def expect_exact(self, text, timeout=None):
        self.child.expect_exact(text, timeout=timeout)

    def read_until_quiet(self, quiet=1.0, limit=30):
        """Everything printed until nothing new arrives for `quiet` seconds."""
        out = []
        try:
            for _ in range(int(limit / quiet)):
                out.append(self.child.read_nonblocking(65536, timeout=quiet))
        except (pexpect.TIMEOUT, pexpect.EOF):
            pass
        return "".join(out)

    def close(self):
        self.child.close(force=True)
        self.log.close()


@pytest.fixture
def boot(request):
    """boot(*scripts_qemu_args, timeout=30) -> Console; QEMU is killed after the test."""
    started = []
    LOGS.mkdir(parents=True, exist_ok=True)

    def _boot(*args, timeout=30):
        name = request.node.name.replace("/", "_")
        con = Console(list(args), LOGS / f"{name}.{len(started)}.log", timeout)
        started.append(con)
        return con

    yield _boot
    for con in started:
        con.close()


def run_until_off(boot, words, smp, mem="1G", timeout=90):
    """Boot Quire with these vm= words and wait until every VM has powered off.

    Returns the console text (without \r) up to the last power-off and a
    little after, so lines Quire prints then are in it too.
    """
    con = boot("--image", image(), "--smp", str(smp), "--mem", mem, "--",
               "-append", " ".join(words), timeout=timeout)
    text, off = [], set()
    want = set(range(1, len(words) + 1))
    while off != want:
        try:
            m = con.expect(r"quire: vm(\d+) powered off")
        except (pexpect.TIMEOUT, pexpect.EOF):
            pytest.fail(f"VMs {sorted(want - off)} did not power off; console:\n"
                        + "".join(text) + str(con.child.before))
        text.append(con.child.before + con.child.after)
        off.add(int(m.group(1)))
    text.append(con.read_until_quiet(quiet=0.5, limit=3))
    return "".join(text).replace("\r", "")


def image(platform="qemu-virt", variant=""):
    path = BUILD / f"{platform}{variant}" / "quire.bin"
    if not path.exists():
        pytest.fail(f"{path} is not built: run `make images`")
    return str(path)


@pytest.fixture(scope="session")
def virt_dtb(tmp_path_factory):
    """The device tree QEMU virt generates, as a file tests can edit."""
    out = tmp_path_factory.mktemp("dt") / "virt.dtb"
    subprocess.run(["qemu-system-aarch64", "-M",
                    f"virt,virtualization=on,gic-version=2,dumpdtb={out}",
                    "-cpu", "cortex-a72", "-smp", "1", "-m", "1G", "-nographic"],
                   check=True, capture_output=True)
    return out


def have(tool):
    return shutil.which(tool) is not None
