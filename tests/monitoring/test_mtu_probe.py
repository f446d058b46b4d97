"""`sixpod probe mtu` on the real kernel: two nodes of examples/small.yaml cabled to a ToR
namespace as the inventory says, then one link set wrong each way (the ToR's port narrower:
it answers Packet Too Big; the node's side narrower: frames dropped, a black hole)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from ipaddress import IPv6Interface
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from labkit import ROOT, SIXPOD
from sixpod.devices import NodeDevice
from sixpod.inventory.load import load_inventory
from sixpod.inventory.lock import parse_lock
from sixpod.inventory.render import device_documents
from sixpod.lab.netns import Sandbox, existing_namespaces

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]


@pytest.fixture
def rack(tmp_path: Path) -> Iterator[tuple[Sandbox, Path, dict[str, str]]]:
    pod = tmp_path / "small.yaml"
    shutil.copy(ROOT / "examples" / "small.yaml", pod)
    shutil.copy(ROOT / "examples" / "small.lock", tmp_path / "small.lock")
    loaded = load_inventory(pod.read_text(), "small.yaml")
    lock, _ = parse_lock((tmp_path / "small.lock").read_text(), "small.lock")
    docs = device_documents(loaded.inventory, lock)
    box = Sandbox(prefix=f"sxm{secrets.token_hex(3)}-", workdir=tmp_path)
    try:
        tor = box.netns("tor", router=True)
        names = {"tor": tor}
        for d in docs.values():
            if isinstance(d, NodeDevice) and d.name in ("edge1", "app1"):
                ns = box.netns(d.name)
                names[d.name] = ns
                box.veth(tor, d.uplink.port, ns, "eth0", mtu=d.uplink.mtu)
                set_mtu(tor, d.uplink.port, 9216)  # the ToR's ports: the inventory's default
                box.addr(ns, "eth0", IPv6Interface((d.uplink.address, d.uplink.link.prefixlen)))
                box.addr(tor, d.uplink.port, IPv6Interface((d.uplink.peer.address, 64)))
                box.route(ns, d.uplink.link.supernet(new_prefix=32), via=d.uplink.peer.address)
        yield box, pod, names
    finally:
        assert box.close() == []
        assert existing_namespaces(box.prefix) == []


def set_mtu(ns: str, ifname: str, mtu: int) -> None:
    subprocess.run(["ip", "-n", ns, "link", "set", "dev", ifname, "mtu", str(mtu)], check=True)


def probe(ns: str, pod: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    r = subprocess.run(
        ["ip", "netns", "exec", ns, SIXPOD, "probe", "mtu", str(pod), "--from", "edge1",
         "--to", "app1", "--timeout", "0.3", "--json", *extra],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.stdout, r.stderr
    return r.returncode, json.loads(r.stdout)


def outcomes(doc: dict[str, Any]) -> dict[int, str]:
    return {p["size"]: p["outcome"] for p in doc["probes"]}


def test_a_path_as_the_inventory_says(rack: tuple[Sandbox, Path, dict[str, str]]) -> None:
    _, pod, ns = rack
    code, doc = probe(ns["edge1"], pod)
    assert code == 0, doc
    # 9216 is the ToR's ports: larger than edge1's own 9000, refused before it is sent
    assert outcomes(doc) == {1280: "passed", 1500: "passed", 9000: "passed", 9216: "too big here"}
    assert (doc["inventory_mtu"], doc["measured_mtu"]) == (9000, 9000)


def test_a_tor_port_narrower_than_the_inventory_answers_packet_too_big(
    rack: tuple[Sandbox, Path, dict[str, str]],
) -> None:
    _, pod, ns = rack
    set_mtu(ns["tor"], "swp3", 1500)
    metrics = pod.parent / "textfile"
    code, doc = probe(ns["edge1"], pod, "--textfile", str(metrics))
    assert code == 1
    samples = {
        s.name: s.value
        for f in text_string_to_metric_families((metrics / "sixpod_path_mtu_app1.prom").read_text())
        for s in f.samples
        if s.labels == {"to": "app1"}
    }
    assert samples["sixpod_path_mtu_ok"] == 0
    assert samples["sixpod_path_mtu_bytes"] == 1500
    assert samples["sixpod_path_mtu_inventory_bytes"] == 9000
    nine = next(p for p in doc["probes"] if p["size"] == 9000)
    assert (nine["outcome"], nine["reported_mtu"], nine["ok"]) == ("too big", 1500, False)
    assert nine["by"].startswith("2001:db8:")  # the ToR's address on edge1's link
    assert doc["measured_mtu"] == 1500
    # the table names it too
    r = subprocess.run(
        ["ip", "netns", "exec", ns["edge1"], SIXPOD, "probe", "mtu", str(pod),
         "--from", "edge1", "--to", "app1", "--timeout", "0.3"],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 1
    assert "Packet Too Big from 2001:db8:" in r.stdout
    assert "MTU 1500" in r.stdout
    assert "path carries 1500 bytes; the inventory says 9000 (edge1 uplink)" in r.stdout


def test_a_node_side_narrower_than_its_tor_port_is_a_black_hole_found_by_bisection(
    rack: tuple[Sandbox, Path, dict[str, str]],
) -> None:
    _, pod, ns = rack
    set_mtu(ns["app1"], "eth0", 4000)  # the ToR still sends up to 9216 onto the link
    code, doc = probe(ns["edge1"], pod)
    assert code == 1
    assert outcomes(doc)[9000] == "lost"
    assert outcomes(doc)[1500] == "passed"
    # a veth admits a VLAN tag's 4 bytes over its MTU (the kernel's is_skb_forwardable)
    assert 4000 <= doc["measured_mtu"] <= 4004


def test_run_on_another_host_or_unknown_node_is_a_clear_error(
    rack: tuple[Sandbox, Path, dict[str, str]],
) -> None:
    _, pod, ns = rack
    r = subprocess.run(
        ["ip", "netns", "exec", ns["app1"], SIXPOD, "probe", "mtu", str(pod), "--from", "edge1",
         "--to", "app1"],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1
    assert "is not an address of this host: run the probe on the node that holds it" in r.stderr
    r = subprocess.run(
        ["ip", "netns", "exec", ns["edge1"], SIXPOD, "probe", "mtu", str(pod), "--from", "edge1",
         "--to", "nope"],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1
    assert "no node named 'nope'" in r.stderr


def test_a_router_that_refuses_is_named_not_taken_for_a_black_hole(
    rack: tuple[Sandbox, Path, dict[str, str]],
) -> None:
    _, pod, ns = rack
    subprocess.run(
        ["ip", "netns", "exec", ns["tor"], "nft", "-f", "-"],
        input="table inet t { chain f { type filter hook forward priority 0; "
        "icmpv6 type echo-request reject with icmpv6 type admin-prohibited; }; }",
        text=True, check=True,
    )  # fmt: skip
    code, doc = probe(ns["edge1"], pod)
    assert code == 1
    first = doc["probes"][0]
    assert first["outcome"] == "unreachable"
    assert first["by"].startswith("2001:db8:")
