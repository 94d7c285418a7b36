"""A guest's network device (core/vnet.c) and Quire's switch (core/vswitch.c) against a driver
that lies: memtest's mode 30 (tests/guests/vnet_hostile.c) drives its virtio-net device in slot 2
by hand, first honestly, then with frames too big and too small, wild descriptors on both queues,
receive buffers too small or none at all, spoofed sources, a broadcast storm and a reset with
frames waiting for it. Its peer on the switch, mode 31 (net-echo), answers its pings and counts
every frame it should not have seen. The guests check each answer themselves; here: the switch's
counters from the monitor, and that Quire said so once per kind, for vm1's device only."""
import re

from conftest import memtest, monitor, run_until_off

HOSTILE, ECHO = 30, 31
MAC1, MAC2 = "02:00:00:00:00:01", "02:00:00:00:00:02"

# The cases mode 30 runs, in order, each a `case NAME: ok got=HOW` line.
DROPPED = ["tx-1519", "tx-9000", "tx-65535", "tx-header-only", "tx-short-header", "tx-13", "tx-frame-13",
           "tx-zero-len-desc"]
WILD = ["desc-outside-ram", "desc-wraps", "desc-next-past-table", "desc-loop", "desc-indirect"]
REFUSED = [f"tx-{w}" for w in WILD] + ["tx-avail-idx-jump"] + [f"rx-{w}" for w in WILD] + ["rx-avail-idx-jump"]
CASES = (["honest"] + DROPPED + REFUSED + ["rx-small-buffer", "rx-no-buffers", "spoof-peer-src",
                                            "spoof-multicast-src", "broadcast-storm", "reset-with-queued",
                                            "mac-table-flood"])
GOT = {**{c: "DROPPED" for c in DROPPED}, **{c: "NEEDS_RESET" for c in REFUSED}, "honest": "PONG",
       "rx-small-buffer": "EMPTY", "rx-no-buffers": "KEPT", "spoof-peer-src": "DROPPED",
       "spoof-multicast-src": "DROPPED", "broadcast-storm": "LIMITED", "reset-with-queued": "FLUSHED",
       "mac-table-flood": "SENT"}
SHARE = 32  # VSW_QUEUE_PER_SOURCE


def net_counters(out, vm):
    m = re.search(rf"quire: net {vm} mac=(\S+) up=\d+ (.*)", out)
    assert m, out
    return m.group(1), {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}


def test_hostile_net_driver_is_contained(boot, tmp_path):
    """Every lie of mode 30 ends as Quire documents (dropped and counted, or NEEDS_RESET and a reset
    brings the device back); the peer never sees a frame it must not, and answers to the end;
    Quire logs one line per kind for vm1's device and nothing for vm2's."""
    vms = [memtest(HOSTILE, net="on", net_mac=MAC1), memtest(ECHO, net="on", net_mac=MAC2)]
    text = run_until_off(boot, tmp_path, vms, smp=2, timeout=300)
    tail = text[-4000:]

    # The guests' own verdicts.
    assert re.search(rf"\[vm1\] memtest: virtio-net-hostile honest ok mac={MAC1} link=1 ", text), tail
    got = re.findall(r"\[vm1\] memtest: virtio-net-hostile case (\S+): (\S+) got=(\S+)", text)
    assert [c for c, _, _ in got] == CASES, got
    assert all(v == "ok" for _, v, _ in got), [g for g in got if g[1] != "ok"]
    assert {c: g for c, _, g in got} == GOT, got
    assert re.search(rf"\[vm1\] memtest: virtio-net-hostile ok cases={len(CASES)}\n", text), tail
    m = re.search(r"\[vm1\] memtest: virtio-net-hostile rx_frames=(\d+) rx_empty=(\d+) tx_dropped=(\d+) "
                  r"peer_bad=0\n", text)
    assert m, tail
    rx_got, tx_dropped = int(m.group(1)), int(m.group(3))
    kept = int(re.search(r"rx-no-buffers: (\d+) of the peer's \d+ frames kept", text).group(1))
    assert 0 < kept <= SHARE, kept
    storm_seen = int(re.search(r"broadcast-storm: 10000 broadcasts in \d+ ms, the peer saw (\d+)", text).group(1))
    m = re.search(r"\[vm2\] memtest: net-echo ok frames=(\d+) bad=0 storm=(\d+) sent=(\d+) pings=(\d+) "
                  r"rx_frames=(\d+)\n", text)
    assert m, tail
    assert int(m.group(2)) == storm_seen, (m.group(0), storm_seen)
    echo_frames, echo_sent, echo_pings = int(m.group(1)), int(m.group(3)), int(m.group(4))
    assert echo_sent == 200 + 80 + 1000, m.group(0)
    for vm in ("vm1", "vm2"):
        assert re.search(rf"quire: {vm}: \d+ pages returned to the pool \(0 still held\)", text), tail
    assert "FAIL" not in text and "crash" not in text.lower(), tail

    # The switch's word on it, from the monitor (both VMs are off; their ports keep their counters).
    con = boot.started[-1]
    out = monitor(con, "net")
    mac, v1 = net_counters(out, "vm1")
    assert mac == MAC1, out
    mac, v2 = net_counters(out, "vm2")
    assert mac == MAC2, out
    # Every frame of a bad size or with a source it may not use: a tx_drop, apart from storm control's.
    assert v1["tx_drops"] - v1["flood_drops"] == tx_dropped == 12, (v1, tx_dropped)
    # Storm control: most of the 10000 broadcasts, and nothing else of vm1's.
    assert v1["flood_drops"] >= 10000 // 2, v1
    # 200 frames while it had no buffers: all but the share kept for it dropped (more: resets, the power-off).
    assert v1["rx_drops"] >= 200 - kept, v1
    # The honest peer: every frame it sent (DATA, a PONG per PING and one for END) counted, it received
    # all it counted, and it sent only unicast to known addresses: nothing for storm control.
    assert v2["tx_frames"] + v2["tx_drops"] == echo_sent + echo_pings + 1, (v2, echo_sent, echo_pings)
    assert v2["rx_frames"] == echo_frames, (v2, echo_frames)

    # Quire's log: once per kind, for vm1's device only.
    sizes = re.findall(r"quire: vm1: virtio-net: (.*)", text)
    assert sizes == ["a frame of 1519 bytes (not 14 to 1518), dropped (logged once)"], sizes
    broken = re.findall(r"quire: vm1: virtio-net in slot 2: (.*); the device needs a reset \(logged once\)", text)
    assert broken == ["a descriptor's buffer is outside the VM's RAM"], broken
    assert not re.search(r"quire: vm2: virtio", text), tail
    assert not re.search(r"quire: vm1: virtio-(?!net)", text), tail

    # Last, the expectations Quire does not meet yet (all the above hold).
    # Frames the switch counts as vm1's are those its guest received.
    # BUG: a frame dropped for a receive buffer too small for it (rx-small-buffer) is counted in
    # rx_frames (core/vnet.c rx() calls vsw_pop, which counts a frame taken) and not in rx_drops.
    assert v1["rx_frames"] == rx_got, (v1, rx_got)
    # BUG: vm1's 64 frames from made-up sources (mac-table-flood) evict every learned address from the
    # switch's 64-entry table (core/vswitch.c learn_and_look, oldest replaced, configured ports' addresses
    # not pinned): vm2's 1000 unicast frames to vm1 become unknown unicast, flooded to every port and
    # charged to vm2's flood budget, so an honest VM loses frames to storm control.
    assert v2["tx_drops"] == v2["flood_drops"] == 0, v2
