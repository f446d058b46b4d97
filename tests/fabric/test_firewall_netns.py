"""The rendered ToR firewall, loaded in a test namespace: BGP only from the link's peer,
Packet Too Big accepted from anyone (RFC 4890)."""

from __future__ import annotations

import shutil
from ipaddress import IPv6Interface
from pathlib import Path

import pytest
from fabkit import in_ns, rendered, sandbox, tor

from sixpod.lab.netns import run, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("nft") is None, reason="nftables is not installed"),
]

LISTENER = """
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 179)); s.listen(16); print("ready", flush=True)
while True:
    c, _ = s.accept(); c.close()
"""

CONNECT = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); s.settimeout(1.5)
try:
    s.connect(("{dst}", 179)); print("connected")
except OSError as e:
    print("failed", e)
"""

# The ToR's side of a UDP flow; it prints the path MTU its socket learns.
FLOW = """
import socket, time
IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO, IPV6_MTU = 23, 2, 24
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)
s.bind(("{src}", 40000)); s.connect(("{dst}", 40001)); s.send(b"x")
print("ready", s.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU), flush=True)
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    mtu = s.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU)
    if mtu < 1500:
        break
    time.sleep(0.05)
print("mtu", mtu, flush=True)
"""

PTB = """
import socket
tor, other, mtu = "{tor}", "{other}", {mtu}
inner = bytes([0x60, 0, 0, 0]) + (24).to_bytes(2, "big") + bytes([17, 64])
inner += socket.inet_pton(socket.AF_INET6, tor) + socket.inet_pton(socket.AF_INET6, other)
inner += (40000).to_bytes(2, "big") + (40001).to_bytes(2, "big") + (24).to_bytes(2, "big")
inner += bytes(2) + bytes(16)
ptb = bytes([2, 0, 0, 0]) + mtu.to_bytes(4, "big") + inner  # the kernel fills the checksum
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.sendto(ptb, (tor, 0)); print("sent")
"""


def _log_has(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text()


def test_firewall_blocks_bgp_from_a_non_peer_and_passes_packet_too_big(tmp_path: Path) -> None:
    files = rendered("small")
    doc = tor(files, "r1-tor")
    n1, n2 = doc.neighbors[1], doc.neighbors[2]  # edge1 on swp1, edge2 on swp2
    assert (n1.port, n2.port) == ("swp1", "swp2")
    stranger = n2.link.network_address + 0x99  # on edge2's link, not its peer address
    conf = tmp_path / "nftables.conf"
    conf.write_text(files["tors/r1-tor/nftables.conf"])
    with sandbox(tmp_path, "sxw") as box:
        t, peer, other = box.netns("tor", router=True), box.netns("peer"), box.netns("other")
        box.veth(t, "swp1", peer, "eth0")
        box.veth(t, "swp2", other, "eth0")
        box.addr(t, "swp1", IPv6Interface(f"{n1.local_address}/64"))
        box.addr(t, "swp2", IPv6Interface(f"{n2.local_address}/64"))
        box.addr(peer, "eth0", IPv6Interface(f"{n1.address}/64"))
        box.addr(other, "eth0", IPv6Interface(f"{stranger}/64"))
        listener = box.spawn("bgp", t, ["python3", "-c", LISTENER])
        wait_for(lambda: _log_has(listener.log, "ready"), timeout=10, what="the listener")

        def bgp_from(ns: str, dst: object) -> str:
            return in_ns(ns, CONNECT.format(dst=dst)).stdout

        assert "connected" in bgp_from(other, n2.local_address)  # no firewall yet
        run(["ip", "netns", "exec", t, "nft", "-f", str(conf)])
        assert "connected" in bgp_from(peer, n1.local_address)
        assert "failed" in bgp_from(other, n2.local_address)

        flow = box.spawn(
            "flow", t, ["python3", "-c", FLOW.format(src=n2.local_address, dst=stranger)]
        )
        wait_for(lambda: _log_has(flow.log, "ready 1500"), timeout=10, what="the flow")
        sent = in_ns(other, PTB.format(tor=n2.local_address, other=stranger, mtu=1400))
        assert "sent" in sent.stdout, sent.stderr
        flow.popen.wait(15)
        assert "mtu 1400" in flow.log.read_text()


def test_a_tor_that_cannot_be_reached_is_no_proof_of_no_firewall(tmp_path: Path) -> None:
    # `ip netns exec` into a namespace that is not there also says "No such file or
    # directory": an error, never "this ToR runs no firewall" (a rollback would load none)
    from sixpod.fabric.config import FabricConfig
    from sixpod.fabric.errors import ToolError
    from sixpod.fabric.tools import Tor

    cfg = FabricConfig.model_validate({"tors": {"t": {"netns": "sx-nowhere-tor"}}})
    with pytest.raises(ToolError, match="sx-nowhere-tor"):
        Tor("t", cfg).firewall()
    bad = tmp_path / "nft.conf"
    bad.write_text("table inet x { chain c { drop } }\n")
    assert Tor("t", cfg).check_firewall(bad)  # refused, with what went wrong
