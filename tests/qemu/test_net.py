"""The network between VMs (issue 18): each VM with net = "on" has a virtio-net device,
a port of Quire's switch. The test guest's /init gives eth0 the address in quire.ip=
(bootargs); busybox ping, and the initramfs's netstream (a TCP stream checked byte by
byte) and netflood (broadcast frames as fast as it can), drive it."""
import re

from conftest import Guest, boot_vms, focus, monitor
from test_vms import wait_ready
from vmconfig import linux

BOOTARGS = "console=ttyAMA0 earlycon=pl011,mmio32,0x9000000 panic=-1"


def net_vms(n, mem=192):
    return [linux(1, mem, net="on", sharing="off", bootargs=f"{BOOTARGS} quire.ip=10.0.0.{i}/24")
            for i in range(1, n + 1)]


def boot_net(boot, tmp_path, n, smp=2, mem="1G"):
    con = boot_vms(boot, tmp_path, net_vms(n), smp=smp, mem=mem, timeout=180)
    wait_ready(con, [f"vm{i}" for i in range(1, n + 1)])
    return con


def shell(con, name):
    focus(con, name)
    g = Guest(con, name)
    g.sh("stty columns 4000")
    return g


def net_stats(con):
    focus(con, "the monitor")
    out = monitor(con, "net")
    return {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)\b", m.group(2))}
            for m in re.finditer(r"quire: net (\w+) mac=\S+ (.*)", out)}


def ping_each_other(con, n):
    """Every VM pings every other (their addresses from /init, quire.ip=); then the ports' counters."""
    for i in range(1, n + 1):
        g = shell(con, f"vm{i}")
        assert re.search(rf"inet 10\.0\.0\.{i}/24", g.sh("ip addr show eth0"))
        for j in range(1, n + 1):
            if j != i:
                out = g.sh(f"ping -c 2 -W 5 10.0.0.{j}", ok=False, timeout=30)
                assert "2 packets received" in out, out
    st = net_stats(con)
    assert len(st) == n, st
    for name, s in st.items():
        # (rx_drops may count what a neighbour sent before this port's driver was up.)
        assert s["up"] == 1 and s["tx_frames"] > 0 and s["rx_frames"] > 0, (name, s)
        assert s["tx_drops"] == 0, (name, s)


def stream(src, dst, mib, port=5000, timeout=600):
    """netstream from src to dst (10.0.0.N of dst's name): the receiver's and sender's lines."""
    n = int(dst.name[2:])
    dst.con.child.sendline(f"netstream recv {port} {mib} > /tmp/recv.txt 2>&1 &")
    focus(src.con, src.name)
    out = src.sh(f"netstream send 10.0.0.{n} {port} {mib}", timeout=timeout)
    focus(dst.con, dst.name)
    got = dst.sh("sleep 1; cat /tmp/recv.txt")
    return got, out


def test_tcp_stream_of_64_mib_arrives_intact(boot, tmp_path):
    con = boot_net(boot, tmp_path, 2)
    g1, g2 = shell(con, "vm1"), shell(con, "vm2")
    focus(con, "vm2")
    got, sent = stream(g1, g2, 64)
    m_sent = re.search(r"netstream: sent bytes=(\d+) .*sum=(\w+)", sent)
    m_got = re.search(r"netstream: recv ok bytes=(\d+) .*sum=(\w+)", got)
    assert m_sent and m_got, (sent, got)
    assert int(m_got.group(1)) == 64 << 20 and m_got.group(2) == m_sent.group(2)


def test_four_ping_then_a_flooding_vm_and_a_deaf_one_do_not_stop_a_stream(boot, tmp_path):
    """vm3 floods broadcast frames, vm4 stops taking frames (eth0 down): the stream from vm1
    to vm2 completes intact; storm control drops vm3's excess, vm4's ring drops its own. First
    the four ping each other (one boot for both)."""
    con = boot_net(boot, tmp_path, 4)
    ping_each_other(con, 4)
    g4 = shell(con, "vm4")
    g4.sh("ip link set eth0 down")
    g3 = shell(con, "vm3")
    g3.con.child.sendline("netflood eth0 40 > /tmp/flood.txt 2>&1 &")
    g3.sh("sleep 1")
    g1, g2 = shell(con, "vm1"), shell(con, "vm2")
    focus(con, "vm2")
    got, sent = stream(g1, g2, 16)
    m_sent = re.search(r"netstream: sent bytes=(\d+) .*sum=(\w+)", sent)
    m_got = re.search(r"netstream: recv ok bytes=(\d+) .*sum=(\w+)", got)
    assert m_sent and m_got and m_got.group(2) == m_sent.group(2), (sent, got)
    st = net_stats(con)
    assert st["vm3"]["flood_drops"] > 0, st["vm3"]
    assert st["vm4"]["rx_drops"] > 0, st["vm4"]
    # The flooder is still answered: ping from vm1 to vm3 works through the storm.
    g1 = shell(con, "vm1")
    assert "received" in g1.sh("ping -c 1 -W 5 10.0.0.3", ok=False, timeout=30)
