"""The ToR's whole render: interfaces (ifupdown2) and nftables, golden files and real tools."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fabkit import rendered, tor
from hypothesis import given
from hypothesis import strategies as st

from sixpod.fabric.errors import ParseError
from sixpod.fabric.interfaces import format_interfaces, parse_interfaces, tor_interfaces
from sixpod.fabric.render import chassis_id, parse_chassis_id

GOLDEN = Path(__file__).parent / "golden"
FABRIC = ("interfaces", "nftables.conf", "lldpd.conf")


def test_examples_pod_tor_files_match_golden() -> None:
    """examples/pod.yaml has per-port MTUs and upstreams: its r2-tor files are the goldens
    (small's are in tests/inventory/golden with the rest of its render)."""
    files = rendered("pod")
    for name in FABRIC:
        got = files[f"tors/r2-tor/{name}"]
        golden = GOLDEN / "pod-r2-tor" / name
        if os.environ.get("SIXPOD_UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(got)
        assert got == golden.read_text(), name
    node = files["nodes/r2-edge1/lldpd.conf"]
    assert "configure system chassisid sixpod:ams1:r2-edge1\n" in node


def test_interfaces_carry_every_port_with_its_mtu() -> None:
    files = rendered("pod")
    doc = tor(files, "r2-tor")
    parsed = {i.name: i for i in parse_interfaces(files["tors/r2-tor/interfaces"])}
    assert parsed["lo"].method == "inet loopback"
    for port in doc.ports:
        assert parsed[port.name].auto
        assert parsed[port.name].mtu == port.mtu
    assert {p.mtu for p in doc.ports} == {9000, 9216}  # port_mtu differs from the ToR's mtu
    for n in doc.neighbors:
        assert parsed[n.port].option("alias") == f"node {n.node}"


def test_interfaces_round_trip() -> None:
    for name, text in rendered("pod").items():
        if name.endswith("/interfaces"):
            ifaces = parse_interfaces(text)
            assert parse_interfaces(format_interfaces(ifaces)) == ifaces
            doc = tor(rendered("pod"), name.split("/")[1])
            assert ifaces == tor_interfaces(doc)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("    mtu 9000\n", "outside an iface stanza"),
        ("iface swp1\n    mtu 90000\n", "mtu '90000'"),
        ("iface swp1\n    mtu jumbo\n", "mtu 'jumbo'"),
        ("iface swp1\n    colour blue\n", "unknown option 'colour'"),
        ("iface swp1\n    mtu 9000\n    mtu 1500\n", "given twice"),
        ("iface swp1\niface swp1\n", "defined twice"),
        ("iface swp1 inet dhcp\n", "unsupported method"),
        ("ifac swp1\n", "unknown keyword"),
        ("source /etc/network/interfaces.d/*\n", "sources nothing"),
        ("auto\n", "names no interface"),
        ("iface 1bad\n", "not an interface name"),
    ],
)
def test_interfaces_parser_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message) as e:
        parse_interfaces(text, "t")
    assert str(e.value).startswith("t:")


@given(st.text(max_size=200))
def test_interfaces_parser_garbage_gives_only_our_error(text: str) -> None:
    with contextlib.suppress(ParseError):
        parse_interfaces(text)


def test_chassis_id_round_trip() -> None:
    assert parse_chassis_id(chassis_id("ams1", "r1-edge1")) == ("ams1", "r1-edge1")
    assert parse_chassis_id("00:11:22:33:44:55") is None
    assert parse_chassis_id("sixpod:x") is None


@pytest.mark.skipif(shutil.which("nft") is None, reason="nftables is not installed")
@pytest.mark.parametrize("pod", ["small", "pod"])
def test_nftables_files_pass_nft_check(pod: str, tmp_path: Path) -> None:
    """`nft -c -f` only parses and checks against the kernel; nothing is loaded."""
    for name, text in rendered(pod).items():
        if name.endswith("nftables.conf"):
            path = tmp_path / name.replace("/", "_")
            path.write_text(text)
            res = subprocess.run(
                ["nft", "-c", "-f", str(path)], capture_output=True, text=True, check=False
            )
            assert res.returncode == 0, (name, res.stderr)
