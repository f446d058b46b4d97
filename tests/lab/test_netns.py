"""The lab's sandbox on the real kernel: namespaces, veth links, addresses and routes made
through netlink, checked by what the kernel then holds (``ip -j``, an independent reader);
nothing is added to the root namespace and everything goes at close."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import IPv4Interface, IPv6Address, IPv6Interface, ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest

from sixpod.lab.netns import LabError, Sandbox, existing_namespaces

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]


def ip_json(*args: str) -> Any:
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")


def root_namespace() -> tuple[Any, Any, Any]:
    """The root namespace's links, addresses and routes (that the sandbox must not touch)."""
    links = sorted(link["ifname"] for link in ip_json("link", "show"))
    addrs = sorted(
        (a["ifname"], i["local"]) for a in ip_json("addr", "show") for i in a["addr_info"]
    )
    routes = sorted(str(r) for r in ip_json("-6", "route", "show") + ip_json("route", "show"))
    return links, addrs, routes


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(prefix=f"sxn{secrets.token_hex(3)}-", workdir=tmp_path)
    try:
        yield sandbox
    finally:
        assert sandbox.close() == []
        assert existing_namespaces(sandbox.prefix) == []


def test_a_routed_pair_of_namespaces(box: Sandbox) -> None:
    before = root_namespace()
    tor = box.netns("tor", router=True)
    node = box.netns("node")
    assert existing_namespaces(box.prefix) == sorted([tor, node])
    box.veth(tor, "swp1", node, "eth0", mtu=9000)
    box.addr(tor, "swp1", IPv6Interface("2001:db8:ff:1::1/64"))
    box.addr(
        node,
        "eth0",
        IPv6Interface("2001:db8:ff:1::2/64"),
        IPv4Interface("198.51.100.2/24"),
    )
    box.addr(node, "lo", IPv6Interface("2001:db8:f::10/128"))
    gateway = IPv6Address("2001:db8:ff:1::1")
    box.route(node, ip_network("::/0"), via=gateway)
    box.route(node, ip_network("0.0.0.0/0"), via=gateway)  # RFC 8950: IPv4 via IPv6
    box.route(tor, ip_network("2001:db8:f::10/128"), via=ip_address("2001:db8:ff:1::2"))

    [swp1] = ip_json("-n", tor, "link", "show", "swp1")
    [eth0] = ip_json("-n", node, "link", "show", "eth0")
    for link in (swp1, eth0):
        assert link["mtu"] == 9000
        assert "UP" in link["flags"]
    [lo] = ip_json("-n", node, "link", "show", "lo")
    assert "UP" in lo["flags"]
    [info] = ip_json("-n", node, "addr", "show", "eth0")
    held = {(a["local"], a["prefixlen"]): a for a in info["addr_info"]}
    assert held[("2001:db8:ff:1::2", 64)].get("nodad") is True
    assert ("198.51.100.2", 24) in held
    routes6 = {r["dst"]: r for r in ip_json("-n", node, "-6", "route", "show")}
    assert routes6["default"]["gateway"] == "2001:db8:ff:1::1"
    [route4] = ip_json("-n", node, "-4", "route", "show", "default")
    assert route4["via"] == {"family": "inet6", "host": "2001:db8:ff:1::1"}
    # as `ip route add` makes them (routing daemons see the same kernel routes as before);
    # `ip -j` leaves out the protocol when it is that default one, boot
    assert {r.get("protocol", "boot") for r in (routes6["default"], route4)} == {"boot"}

    # the ToR answers across the link: a closed port is refused, not unreachable
    probe = (
        "import socket\ntry:\n socket.create_connection(('2001:db8:ff:1::1', 9), timeout=2)\n"
        "except OSError as e:\n print(type(e).__name__)"
    )
    out = subprocess.run(
        ["ip", "netns", "exec", node, sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "ConnectionRefusedError"

    box.link(node, "eth0", up=False)
    [eth0] = ip_json("-n", node, "link", "show", "eth0")
    assert "UP" not in eth0["flags"]
    assert root_namespace() == before


def test_a_netlink_refusal_is_a_lab_error_naming_the_namespace(box: Sandbox) -> None:
    node = box.netns("node")
    with pytest.raises(LabError, match=f"{node}: .*nosuch"):
        box.addr(node, "nosuch", IPv6Interface("2001:db8::1/64"))
    box.addr(node, "lo", IPv6Interface("2001:db8::1/128"))
    with pytest.raises(LabError, match=f"{node}: .*[Ee]xists"):
        box.addr(node, "lo", IPv6Interface("2001:db8::1/128"))
    for name in (f"{box.prefix}never", ""):  # "" would be the root namespace to pyroute2
        with pytest.raises(LabError, match="no namespace"):
            box.addr(name, "lo", IPv6Interface("2001:db8::1/128"))
