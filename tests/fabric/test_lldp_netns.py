"""LLDP cabling with the real lldpd: a ToR namespace and node namespaces joined by veths.

Each scenario's ``lldpcli -f json0 show neighbors`` is also the fixture the unit tests read
(``SIXPOD_UPDATE_GOLDEN=1`` captures them again)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from fabkit import EXAMPLES, rendered, sandbox, start_lldpd

from sixpod.cli import cli
from sixpod.fabric.render import lldpd_conf
from sixpod.lab import netns

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("lldpd") is None, reason="lldpd is not installed"),
]
FIXTURES = Path(__file__).parent / "fixtures"

# scenario -> [(namespace, the ToR port it is cabled to, lldpd.conf of the device)]
# small.yaml puts edge1 on swp1, edge2 on swp2, app1 on swp3; swp4-swp8 are free.
SCENARIOS: dict[str, list[tuple[str, str, str]]] = {
    "mixed": [
        ("edge1", "swp1", lldpd_conf("lab1", "edge1", "node")),  # right
        ("app1", "swp2", lldpd_conf("lab1", "app1", "node")),  # wrong port; edge2 missing
        ("web7", "swp5", "configure system hostname web7.example.net\n"),  # new, free port
    ],
    "unconfigured": [
        ("edge1", "swp1", lldpd_conf("lab1", "edge1", "node")),
        ("edge2", "swp2", "configure system hostname edge2\n"),  # right port, no identity
        ("mystery", "swp3", "configure system hostname mystery\n"),  # on app1's port
    ],
    "none": [],
}


def _capture(tmp_path: Path, scenario: str) -> str:
    with sandbox(tmp_path, "sxl") as box:
        tor = box.netns("tor")
        sock = start_lldpd(box, tor, "tor", lldpd_conf("lab1", "r1-tor", "ToR"))
        for name, port, conf in SCENARIOS[scenario]:
            ns = box.netns(name)
            box.veth(tor, port, ns, "eth0")
            start_lldpd(box, ns, name, conf)
        want = len(SCENARIOS[scenario])
        argv = ["lldpcli", "-u", str(sock), "-f", "json0", "show", "neighbors"]

        def count() -> int:
            doc = json.loads(netns.run(argv))
            return sum(len(b.get("interface", [])) for b in doc["lldp"])

        netns.wait_for(lambda: count() == want, timeout=20, what=f"{want} LLDP neighbors")
        text = netns.run(argv)
        config = tmp_path / "fabric.yaml"
        config.write_text(json.dumps({"tors": {"r1-tor": {"lldp_socket": str(sock)}}}))
        r = CliRunner().invoke(
            cli, ["fabric", "lldp", str(EXAMPLES / "small.yaml"), "--config", str(config), "--json"]
        )
    if os.environ.get("SIXPOD_UPDATE_GOLDEN"):
        (FIXTURES / f"lldp-{scenario}.json").write_text(text)
    return r.stdout + "\n" + str(r.exit_code)


def test_mixed_cabling_is_reported_with_a_proposal(tmp_path: Path) -> None:
    out, code = _capture(tmp_path, "mixed").rsplit("\n", 1)
    assert code == "1"
    doc = json.loads(out)
    status = {(f["port"], f["status"], f["node"]) for f in doc["findings"]}
    assert status == {
        ("swp1", "ok", "edge1"),
        ("swp2", "wrong-port", "app1"),
        ("swp2", "missing", "edge2"),
        ("swp5", "new", None),
    }
    assert doc["proposals"][0].startswith("  - {name: web7, rack: r1, role: internal, port: swp5}")
    assert rendered("small")  # the fixture's pod still renders


def test_unconfigured_and_unknown(tmp_path: Path) -> None:
    out, code = _capture(tmp_path, "unconfigured").rsplit("\n", 1)
    assert code == "1"
    status = {(f["port"], f["status"], f["node"]) for f in json.loads(out)["findings"]}
    assert ("swp2", "unconfigured", "edge2") in status
    assert ("swp3", "unknown", "app1") in status
    assert ("swp3", "missing", "app1") in status


def test_no_neighbors_means_every_node_missing(tmp_path: Path) -> None:
    out, code = _capture(tmp_path, "none").rsplit("\n", 1)
    assert code == "1"
    assert {f["status"] for f in json.loads(out)["findings"]} == {"missing"}
