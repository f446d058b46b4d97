"""A node set up by bootstrap alone reaches its ToR: the rendered ToR config in FRR on one
side, ``sixpod node bootstrap --supervise`` on the other, and the BGP session comes up with
BFD and the node's /64 announced: the session is configured at bootstrap, from the
inventory, with nothing else done in the node namespace."""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sixpod import addr, devices
from sixpod.lab.frr import Frr
from sixpod.lab.netns import Sandbox, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def box() -> Iterator[Sandbox]:
    work = Path(tempfile.mkdtemp(prefix="sxb-tor-"))
    work.chmod(0o755)
    sandbox = Sandbox(prefix=f"sxb{secrets.token_hex(2)}-", workdir=work)
    try:
        yield sandbox
    finally:
        problems = sandbox.close()
        shutil.rmtree(work, ignore_errors=True)
        assert not problems


def test_the_session_comes_up_from_bootstrap_alone(box: Sandbox, rendered: Path) -> None:
    if not Path("/usr/lib/frr/bgpd").exists():
        pytest.skip("needs FRR")
    node_dir = rendered / "nodes" / "app1"
    doc = devices.load((node_dir / "device.json").read_text())
    assert isinstance(doc, devices.NodeDevice)
    tor_ns = box.netns("t", router=True)
    node_ns = box.netns("n")
    box.veth(tor_ns, doc.uplink.port, node_ns, "eth0")  # bootstrap sets the MTU and address
    tor = Frr(box, tor_ns, "r1-tor", rendered / "tors" / "r1-tor" / "frr.conf", ("bgpd", "bfdd"))
    tor.start()
    run = box.workdir / "app1"
    box.spawn(
        "app1-bootstrap",
        node_ns,
        [
            str(Path(sys.executable).with_name("sixpod")), "node", "bootstrap",
            "--dir", str(node_dir), "--supervise", "--run-dir", str(run / "run"),
            "--state-dir", str(run / "state"), "--log-dir", str(run / "logs"),
        ],
    )  # fmt: skip
    node = addr.format_ip(doc.uplink.address)

    def established() -> bool:
        peers = tor.json("show bgp summary json").get("ipv6Unicast", {}).get("peers", {})
        return bool(peers.get(node, {}).get("state") == "Established")

    def bfd_up() -> bool:
        return any(
            p.get("peer") == node and p.get("status") == "up"
            for p in tor.json("show bfd peers json")
        )

    prefix = addr.format_prefix(doc.prefix)

    def announced() -> bool:
        return prefix in tor.json("show ipv6 route bgp json")

    wait_for(established, timeout=60, what="the node's BGP session on the ToR")
    wait_for(bfd_up, timeout=30, what="BFD with the node")
    wait_for(announced, timeout=30, what=f"the node's {prefix} on the ToR")
