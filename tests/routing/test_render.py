"""ExaBGP and FRR configs: accepted by the real programs, and semantically checked."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sixpod.devices import Device, NodeDevice, TorDevice
from sixpod.inventory.load import load_inventory
from sixpod.inventory.lock import parse_lock
from sixpod.inventory.render import device_documents
from sixpod.routing.frrcheck import check_frr
from sixpod.routing.render import Paths, device_configs, exabgp_conf, frr_conf

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SIXPOD = str(Path(sys.executable).with_name("sixpod"))


def docs(name: str) -> dict[str, Device]:
    inv = load_inventory((EXAMPLES / f"{name}.yaml").read_text(), "pod.yaml").inventory
    lock = parse_lock((EXAMPLES / f"{name}.lock").read_text(), "pod.lock")[0]
    return device_documents(inv, lock)


def tors(name: str) -> list[dict[str, Any]]:
    return [d for d in docs(name).values() if isinstance(d, TorDevice)]


@pytest.mark.parametrize("example", ["small", "pod"])
def test_frr_config_passes_vtysh_check(example: str, tmp_path: Path) -> None:
    vtysh = shutil.which("vtysh")
    assert vtysh, "FRR's vtysh is needed (Debian package frr; scripts/setup installs it)"
    for doc in tors(example):
        conf = tmp_path / f"{doc.name}.conf"
        conf.write_text(frr_conf(doc))
        res = subprocess.run(
            [vtysh, "-C", "-f", str(conf)], capture_output=True, text=True, check=False
        )
        assert res.returncode == 0, res.stdout + res.stderr
        assert check_frr(conf.read_text(), doc) == []


def test_vtysh_check_rejects_garbage(tmp_path: Path) -> None:
    doc = tors("small")[0]
    conf = tmp_path / "bad.conf"
    conf.write_text(frr_conf(doc).replace(" neighbor NODES bfd\n", " neighbor NODES bfdx\n"))
    res = subprocess.run(
        ["vtysh", "-C", "-f", str(conf)], capture_output=True, text=True, check=False
    )
    assert res.returncode != 0


@pytest.mark.parametrize("example", ["small", "pod"])
def test_node_configs_pass_exabgp_validate(example: str, tmp_path: Path) -> None:
    exabgp = Path(sys.executable).with_name("exabgp")
    for doc in docs(example).values():
        if not isinstance(doc, NodeDevice):
            continue
        conf = tmp_path / f"{doc.name}.conf"
        conf.write_text(exabgp_conf(doc, Paths(sixpod=SIXPOD, etc=str(tmp_path))))
        res = subprocess.run(
            [str(exabgp), "validate", str(conf)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert res.returncode == 0, res.stdout + res.stderr


def test_exabgp_session_shape() -> None:
    doc = docs("small")["nodes/edge1/device.json"]
    text = exabgp_conf(doc)
    assert "neighbor 2001:db8:2ff::1 {" in text
    assert "local-address 2001:db8:2ff::2;" in text
    assert "local-as 64512;" in text
    assert "peer-as 64513;" in text
    assert "hold-time 9;" in text
    assert "ipv4 unicast ipv6;" in text
    assert "nexthop enable;" in text
    assert "fe80" not in text


def test_exabgp_conf_says_how_to_start_it_as_the_readme_does() -> None:
    """The rendered exabgp.conf names the README's node commands (ExaBGP's CLI pipes, then
    ExaBGP itself), so that an operator on the node finds them where the config is."""
    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme[readme.index("### Node setup") :]
    start = section.index("```sh\n") + len("```sh\n")
    block = section[start : section.index("```", start)]
    commands = [line.split(" #")[0].strip() for line in block.splitlines() if "exabgp" in line]
    assert len(commands) == 2
    text = exabgp_conf(docs("small")["nodes/edge1/device.json"])
    header = [line.removeprefix("#").strip() for line in text.splitlines() if line[:1] == "#"]
    for command in commands:
        assert command.replace("/etc/sixpod/NAME", "/etc/sixpod/edge1") in header


def test_frr_filters_per_node() -> None:
    text = frr_conf(tors("small")[0])
    assert "ipv6 prefix-list NODE-edge1-V6 seq 5 permit 2001:db8:200:1::/64" in text
    assert "ipv6 prefix-list NODE-app1-V6 seq 5 permit 2001:db8:200:3::/64" in text
    app_map = text[
        text.index("route-map FROM-app1 permit 10") : text.index("route-map FROM-app1 deny")
    ]
    assert "VIPS" not in app_map  # internal nodes may not announce VIPs
    assert "route-map FROM-edge1 permit 30\n match ipv6 address prefix-list VIPS-V6" in text
    assert " neighbor NODES capability extended-nexthop" in text
    assert " neighbor NODES bfd" in text
    assert "  maximum-paths 64" in text
    assert "multipath-relax" not in text  # all nodes share one ASN


def test_multipath_relax_when_node_asns_differ() -> None:
    tor = tors("small")[0]
    doc = replace(tor, neighbors=(replace(tor.neighbors[0], asn=64519), *tor.neighbors[1:]))
    text = frr_conf(doc)
    assert " bgp bestpath as-path multipath-relax" in text
    assert " neighbor 2001:db8:2ff:2::2 remote-as 64519" in text
    assert check_frr(text, doc) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("match community GSHUT", "match community NOPE", "community-list NOPE is referenced"),
        (
            " route-map FROM-edge1 in",
            " route-map FROM-edgeX in",
            "route-map FROM-edgeX is referenced",
        ),
        ("bfd profile NODES", "bfd profile FAST", "bfd-profile FAST is referenced"),
        ("peer-group NODES\n", "peer-group SERVERS\n", "peer-group SERVERS is referenced"),
        ("router bgp 64513", "router bgp 64514", "router bgp is not the rack's ASN 64513"),
        ("remote-as 64512", "remote-as 64515", "node remote-as [64515] differs"),
        (
            "permit 2001:db8:200:1::/64",
            "permit 2001:db8:200:9::/64",
            "NODE-edge1-V6 does not accept",
        ),
        ("permit 203.0.113.3/32", "permit 203.0.113.9/32", "VIPS-V4 does not list exactly"),
        ("permit 2001:db8:200:1::/64", "permit 2001:db8:200:1::/64 le 128", "accepts a range"),
        (" bgp ebgp-requires-policy\n", "", "ebgp-requires-policy is off"),
        (
            "  neighbor 2001:db8:2ff::2 route-map FROM-edge1 in\n",
            "",
            "ipv4: node edge1 is not filtered by FROM-edge1",
        ),
    ],
)
def test_semantic_check_catches(old: str, new: str, problem: str) -> None:
    doc = tors("small")[0]
    text = frr_conf(doc)
    assert old in text
    found = check_frr(text.replace(old, new, 1), doc)
    assert any(problem in p for p in found), found


def test_configs_are_written_beside_device_data() -> None:
    files = device_configs(docs("small"))
    assert sorted(files) == [
        "nodes/app1/announcer.yaml",
        "nodes/app1/bfdd.conf",
        "nodes/app1/exabgp.conf",
        "nodes/edge1/announcer.yaml",
        "nodes/edge1/bfdd.conf",
        "nodes/edge1/exabgp.conf",
        "nodes/edge2/announcer.yaml",
        "nodes/edge2/bfdd.conf",
        "nodes/edge2/exabgp.conf",
        "tors/r1-tor/frr.conf",
        "tors/r1-tor/resilient.yaml",
    ]


def test_every_rendered_daemon_serves_metrics_on_its_global_address_and_loopback() -> None:
    """Prometheus scrapes a node at its global uplink address and a ToR at its address on
    its first node's link; ``[::1]`` stays for the device's own tools and the lab."""
    from sixpod import addr
    from sixpod.edge.config import EdgeConfig
    from sixpod.edge.render import edge_files
    from sixpod.inventory.load import load_model
    from sixpod.monitoring import ports
    from sixpod.routing.config import AnnouncerConfig
    from sixpod.routing.resilient.config import TorResilientConfig

    documents = docs("small")
    files = device_configs(documents)
    seen = 0
    for path, doc in documents.items():
        folder = path.rsplit("/", 1)[0]
        if isinstance(doc, NodeDevice):
            here = addr.format_ip(doc.uplink.address)
            text = files[f"{folder}/announcer.yaml"]
            cfg = load_model(text, "announcer.yaml", AnnouncerConfig)
            assert [addr.format_endpoint(e) for e in cfg.metrics] == [
                f"[{here}]:{ports.ANNOUNCER}",
                f"[::1]:{ports.ANNOUNCER}",
            ]
            edge = edge_files(doc, Paths()).get("edge.yaml")
            if edge is not None:
                seen += 1
                ecfg = load_model(edge, "edge.yaml", EdgeConfig)
                assert [addr.format_endpoint(e) for e in ecfg.metrics] == [
                    f"[{here}]:{ports.EDGE}",
                    f"[::1]:{ports.EDGE}",
                ]
        else:
            assert isinstance(doc, TorDevice)
            first = min(doc.neighbors, key=lambda n: n.node)
            assert doc.address == first.local_address
            text = files[f"{folder}/resilient.yaml"]
            rcfg = load_model(text, "resilient.yaml", TorResilientConfig)
            assert [addr.format_endpoint(e) for e in rcfg.metrics] == [
                f"[{addr.format_ip(first.local_address)}]:{ports.RESILIENT}",
                f"[::1]:{ports.RESILIENT}",
            ]
    assert seen == 2


def test_a_tor_without_nodes_is_reached_on_its_upstream_link_or_not_at_all() -> None:
    [tor] = tors("small")
    assert isinstance(tor, TorDevice)
    bare = replace(tor, neighbors=())
    assert bare.address == (tor.upstreams[0].local.ip if tor.upstreams else None)
    assert replace(bare, upstreams=()).address is None
