"""The guest's GICv2 distributor (arch/arm64/vgic.c) as the GIC architecture
(IHI 0048B) has it: memtest mode 19 (tests/guests/memtest.c, mode_gicd)
probes its registers with byte, halfword and word accesses from EL1 and
prints a line per check, what it wanted and what it read.
"""
import re

import pytest

from conftest import memtest, run_until_off

GICD = 19


@pytest.mark.parametrize("vcpus", [1, 2])
def test_gicd(boot, tmp_path, vcpus):
    """1 vCPU: a uniprocessor GIC (ITARGETSR RAZ/WI); 2 vCPUs on 4 CPUs: banked target bytes, masks."""
    out = run_until_off(boot, tmp_path, [memtest(GICD, vcpus, 64)], smp=4)
    lines = [m.group(1) for m in re.finditer(r"^\[vm1\] (.*)$", out, re.M)]
    bad = [l for l in lines if "FAIL" in l]
    assert not bad, "\n".join(bad)
    ok = [m for m in (re.match(r"memtest: gicd ok checks=(\d+) vcpus=(\d+)$", l) for l in lines) if m]
    assert len(ok) == 1, "no ok line in:\n" + "\n".join(lines)
    assert int(ok[0].group(2)) == vcpus
    checks = [l for l in lines if re.match(r"memtest: gicd ok .*: want 0x[0-9a-f]+ got 0x[0-9a-f]+$", l)]
    assert len(checks) == int(ok[0].group(1)) >= 40
