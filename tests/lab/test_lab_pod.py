"""The lab reads FRR's selected next hops with the product's parser, not rules of its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labkit import render_small
from sixpod import devices
from sixpod.lab.pod import LabNode, LabPod, selected_hops
from sixpod.routing.resilient.errors import ParseError


def _hop(ip: str, dev: str, **flags: bool) -> dict[str, Any]:
    return {"ip": ip, "afi": "ipv6", "interfaceName": dev} | flags


def test_recursive_and_duplicate_hops_are_read_as_the_tor_helper_reads_them() -> None:
    entries = [
        {"protocol": "bgp", "selected": False, "nexthops": [_hop("2001:db8:ff:9::2", "swp9")]},
        {
            "protocol": "bgp",
            "selected": True,
            "nexthops": [
                # a recursive hop is not a path itself: its resolved hops are
                {"ip": "2001:db8:aa::1", "afi": "ipv6", "active": True, "recursive": True},
                _hop("2001:db8:ff:1::2", "swp1", resolver=True, active=True),
                _hop("2001:db8:ff:2::2", "swp2", active=True),
                _hop("2001:db8:ff:3::2", "swp3", active=True, duplicate=True),
                _hop("2001:db8:ff:4::2", "swp4"),  # not active
            ],
        },
    ]
    assert selected_hops("203.0.113.10/32", entries) == {"2001:db8:ff:1::2", "2001:db8:ff:2::2"}


def test_any_prefix_not_only_vips() -> None:
    entries = [{"selected": True, "nexthops": [_hop("2001:DB8:FF:1:0::2", "swp1", active=True)]}]
    assert selected_hops("2001:db8:1::/64", entries) == {"2001:db8:ff:1::2"}
    assert selected_hops("2001:db8:1::/64", []) == set()


def test_output_not_shaped_like_frrs_is_the_parsers_error() -> None:
    with pytest.raises(ParseError):
        selected_hops("203.0.113.10/32", {"selected": True})
    with pytest.raises(ParseError):
        selected_hops("203.0.113.10/32", [{"selected": "yes"}])


def _body(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        "\n".join(x for x in path.read_text().splitlines() if not x.startswith("#"))
    )
    return data


def test_the_lab_runs_the_rendered_node_files_with_only_its_own_edits(tmp_path: Path) -> None:
    """No node setup lives only in the lab: a node's directory is the rendered one, but for
    the lab's documented edits of announcer.yaml, edge.yaml and razor.yaml."""
    rendered = render_small(tmp_path)
    pod = LabPod(rendered=rendered, workdir=tmp_path / "lab", floor=1)
    pod.ctl_address = "2001:db8:200::2"
    doc = devices.load((rendered / "nodes/edge1/device.json").read_text())
    assert isinstance(doc, devices.NodeDevice)
    node = LabNode("edge1", "ns", doc, tmp_path / "lab/nodes/edge1", edge=True)
    etc = pod.node_files(node)
    src = rendered / "nodes/edge1"
    edited = {"announcer.yaml", "edge.yaml", "razor.yaml"}
    files = {p.relative_to(src) for p in src.rglob("*") if p.is_file()}
    assert files == {p.relative_to(etc) for p in etc.rglob("*") if p.is_file()}
    for f in files:
        if str(f) not in edited:
            assert (etc / f).read_bytes() == (src / f).read_bytes(), f
    ann, ann0 = _body(etc / "announcer.yaml"), _body(src / "announcer.yaml")
    assert {k for k in ann if ann.get(k) != ann0.get(k)} == {"checks", "drain_timeout", "floor"}
    assert ann["floor"]["redis"] == "[2001:db8:200::2]:6379"
    assert {c["interval"] for c in ann["checks"]} == {0.2}
    edge, edge0 = _body(etc / "edge.yaml"), _body(src / "edge.yaml")
    assert {k for k in edge if edge.get(k) != edge0.get(k)} | (set(edge0) - set(edge)) == {
        "workers", "check_interval", "stats_interval", "tls"
    }  # fmt: skip
    razor, razor0 = _body(etc / "razor.yaml"), _body(src / "razor.yaml")
    assert {k for k in razor if razor.get(k) != razor0.get(k)} == {"customer_zones"}
