"""A badly behaved guest next to a well-behaved one (memtest mode 9, tests/guests/memtest.c).

vm1 loads and stores where it has neither RAM nor a device, touches device
registers that do not exist, makes unknown hypercalls over HVC and SMC, passes
PSCI nonsense, uses trapped and IMPLEMENTATION DEFINED system registers and
floods Quire with aborts. Each must come back as an error the guest handles
(abort, RAZ/WI, NOT_SUPPORTED, UNDEF); Quire logs each kind once and keeps
running, and vm2's memory test on the other CPU is not disturbed.
"""
import re


from conftest import memtest, run_until_off

HOSTILE, SEQ = 9, 1
VMS = [memtest(HOSTILE, limit_mib=16), memtest(SEQ)]
# One line per check in memtest's mode_hostile, in the order it runs them.
CHECKS = (["sea"] * 5 + ["mmio-unknown"] * 3 +
          ["pl011-id", "hvc-unknown", "smc-unknown", "smccc-hvc", "smccc-smc", "psci",
           "sysreg-razwi", "sysreg-undef", "mmio-ldp", "flood", "ram"])
# What Quire logs, once each, for vm1 (arch/arm64/trap.c, core/hypercall.c): the first
# offending access of each kind.
LOGGED = {
    "abort": r"read at IPA 0xa004000 \(VA 0xa004000, .*\): outside RAM and devices; "
             r"injecting a synchronous external abort \(logged once\)$",
    "hypercall": r"unknown hypercall 0x86000000: NOT_SUPPORTED \(logged once\)$",
    "device register": r"read of 4 bytes at device address 0x9000f00, no such register "
                       r"for that size: reads as zero \(logged once\)$",
    "system register": r"system register op0=3 op1=1 CRn=15 CRm=2 op2=1 \(read\) at 0x[0-9a-f]+ "
                       r"is not emulated; injecting UNDEF \(logged once\)$",
    "read-as-zero register": r"system register op0=3 op1=0 CRn=1 CRm=0 op2=1 \(write\) at "
                             r"0x[0-9a-f]+ is not implemented: reads as zero, writes ignored "
                             r"\(logged once\)$",
    "device pair": r"device access at IPA 0x9000018 by an instruction with no syndrome "
                   r"\(load/store pair or writeback\) cannot be emulated; injecting a synchronous "
                   r"external abort \(logged once\)$",
}


def run(boot, tmp_path):
    """Boot both VMs; the console text up to both power-offs and a little after."""
    return run_until_off(boot, tmp_path, VMS, smp=2)


def test_hostile_guest_is_contained(boot, tmp_path):
    out = run(boot, tmp_path)
    assert "QUIRE CRASH" not in out, out
    guest = {i: re.findall(rf"^\[vm{i}\] (.*)$", out, re.M) for i in (1, 2)}
    bad = [f"vm{i}: {l}" for i, ls in guest.items() for l in ls if "FAIL" in l]
    assert not bad, "\n".join(bad) + "\n\nconsole:\n" + out

    # The hostile VM: every check passed, and it got to say so.
    hostile = [l for l in guest[1] if l.startswith("memtest: hostile ")]
    summary = [l for l in hostile if re.match(r"memtest: hostile ok checks=\d+$", l)]
    assert summary == [f"memtest: hostile ok checks={len(CHECKS)}"], "\n".join(guest[1])
    names = [re.match(r"memtest: hostile (\S+) ok", l) for l in hostile if l not in summary]
    assert all(names), "\n".join(hostile)
    assert [m.group(1) for m in names] == CHECKS
    assert "memtest: hostile flood ok aborts=10000 of 10000 " in "\n".join(hostile)

    # The well-behaved VM next to it.
    assert "memtest: seq ok pages=4096 fills=4096" in guest[2], "\n".join(guest[2])
    for i in (1, 2):
        assert re.search(rf"^quire: vm{i} powered off", out, re.M), out

    # Quire logged each kind of misbehaviour exactly once, nothing else, and nothing for vm2.
    logged = re.findall(r"^quire: vm1 vCPU 0: (.*)$", out, re.M)
    for kind, pattern in LOGGED.items():
        hits = [l for l in logged if re.search(pattern, l)]
        assert len(hits) == 1, f"{kind}: {len(hits)} lines match {pattern!r} in:\n" + "\n".join(logged)
    assert len(logged) == len(LOGGED), "\n".join(logged)
    assert not re.search(r"^quire: vm2 vCPU", out, re.M), out
