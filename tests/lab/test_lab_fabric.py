"""The fabric in a running lab (small example pod under a spine, lldpd on the ToR and every
node): a moved cable is reported by ``sixpod fabric lldp``; a plan that replaces ``router
bgp`` is refused without a delta; a deploy that breaks the sessions is rolled back; a new
server is proposed from LLDP, passes ``sixpod ci``, is planned as exactly its own lines and
deployed with no other session flapping.

The tests share one lab and run in this file's order; each leaves the lab as it found it,
but the last, which adds a node."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from labkit import lab_pod
from sixpod.cli import cli
from sixpod.lab import fabric
from sixpod.lab.netns import wait_for
from sixpod.lab.pod import LabPod

pytestmark = [
    pytest.mark.integration,
    pytest.mark.lab_suite,  # about 100 s: with the drills (SIXPOD_LAB_SUITES=1, scripts/check)
    pytest.mark.skipif(shutil.which("lldpd") is None, reason="lldpd is not installed"),
    pytest.mark.skipif(
        not Path("/usr/lib/frr/frr-reload.py").exists(),
        reason="frr-reload.py is not installed (Debian frr-pythontools)",
    ),
]

RACK = "r1"
EXPECTED = {("swp1", "ok", "edge1"), ("swp2", "ok", "edge2"), ("swp3", "ok", "app1")}


@dataclass
class Fab:
    lab: LabPod
    pod: Path
    """The lab's pod.yaml (small.yaml under a spine) with its lock beside it."""
    config: Path
    """``WORKDIR/fabric.yaml``, written by the lab."""

    def sixpod(self, *args: str, pod: Path | None = None) -> Result:
        return CliRunner().invoke(cli, [*args, str(pod or self.pod), "--config", str(self.config)])

    def lldp(self, pod: Path | None = None) -> tuple[int, dict[str, Any]]:
        r = self.sixpod("fabric", "lldp", "--json", pod=pod)
        assert r.exit_code in (0, 1), r.stderr
        return r.exit_code, json.loads(r.stdout)

    def findings(self, pod: Path | None = None) -> set[tuple[str, str, str | None]]:
        return {(f["port"], f["status"], f["node"]) for f in self.lldp(pod)[1]["findings"]}

    def neighbors(self) -> dict[str, dict[str, Any]]:
        """The ToR's BGP neighbors (``show bgp neighbors json``) by address."""
        doc = self.lab.tors[RACK].frr.json("show bgp neighbors json")
        return {k: v for k, v in doc.items() if isinstance(v, dict) and "bgpState" in v}

    def established_counts(self) -> dict[str, int]:
        return {k: int(v["connectionsEstablished"]) for k, v in self.neighbors().items()}

    def running(self) -> str:
        return self.lab.tors[RACK].frr.vtysh("show running-config no-header")

    def copy_pod(self, name: str) -> Path:
        """A copy of the pod and its lock in a folder of its own (a pull request's tree)."""
        folder = self.pod.parent / name
        folder.mkdir()
        shutil.copy(self.pod, folder / self.pod.name)
        shutil.copy(self.pod.with_suffix(".lock"), folder / self.pod.with_suffix(".lock").name)
        return folder / self.pod.name


@pytest.fixture(scope="module")
def fab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fab]:
    workdir = tmp_path_factory.mktemp("fabric")
    with lab_pod(workdir) as lab:
        lab.wait_spine("spine1", timeout=120)
        lab.wait_ready(RACK, timeout=120)
        config = lab.workdir / fabric.CONFIG
        assert config.exists()
        f = Fab(lab, workdir / "small.yaml", config)
        wait_for(lambda: f.findings() == EXPECTED, timeout=60, what="every node seen by LLDP")
        yield f


def test_lldp_sees_every_node_on_its_port(fab: Fab) -> None:
    code, doc = fab.lldp()
    assert code == 0
    assert doc["ok"] is True
    assert {f["chassis"] for f in doc["findings"]} == {
        f"local sixpod:lab1:{n}" for n in ("edge1", "edge2", "app1")
    }


def test_a_moved_cable_is_reported_on_its_wrong_port(fab: Fab) -> None:
    fabric.move_cable(fab.lab, RACK, "swp3", "swp6")
    try:
        want = {
            ("swp1", "ok", "edge1"),
            ("swp2", "ok", "edge2"),
            ("swp6", "wrong-port", "app1"),  # seen, so not also missing
        }
        wait_for(lambda: fab.findings() == want, timeout=30, what="app1 seen on swp6")
        r = fab.sixpod("fabric", "lldp")
        assert r.exit_code == 1
        assert "app1 belongs on r1-tor swp3" in r.stdout
        assert "1 cabling mismatch" in r.stderr
    finally:
        fabric.move_cable(fab.lab, RACK, "swp6", "swp3")
    wait_for(lambda: fab.findings() == EXPECTED, timeout=30, what="app1 back on swp3")


def test_a_plan_that_replaces_router_bgp_is_refused_without_a_delta(fab: Fab) -> None:
    pod = fab.copy_pod("renumbered")
    lock = pod.with_suffix(".lock")
    lock.write_text(lock.read_text().replace("r1: {asn: 64513}", "r1: {asn: 64514}"))
    running = fab.running()
    r = fab.sixpod("fabric", "plan", pod=pod)
    assert r.exit_code == 1, r.stderr
    assert "r1-tor: refused: " in r.stdout
    assert "bgp-removed: replaces router bgp 64513 with router bgp 64514" in r.stdout
    assert "Lines To" not in r.stdout  # never a delta
    assert "no router bgp" not in r.stdout
    r = fab.sixpod("fabric", "deploy", "--json", pod=pod)
    assert r.exit_code == 1
    assert [o["result"] for o in json.loads(r.stdout)] == ["refused"]
    assert fab.running() == running


def test_a_deploy_that_breaks_the_sessions_is_rolled_back(fab: Fab) -> None:
    pod = fab.copy_pod("wrong-asn")
    lock = pod.with_suffix(".lock")
    lock.write_text(lock.read_text().replace("node_asn: 64512", "node_asn: 64519"))
    nodes = {n.address for n in fab.lab.nodes.values()}
    assert fab.lab.established(RACK) >= nodes
    r = fab.sixpod("fabric", "plan", pod=pod)
    assert r.exit_code == 0, r.stdout + r.stderr  # the guard cannot see a wrong AS
    assert "neighbor NODES remote-as 64519" in r.stdout
    r = fab.sixpod("fabric", "deploy", "--json", pod=pod)
    assert r.exit_code == 1
    (out,) = json.loads(r.stdout)
    assert out["result"] == "rolled-back", out
    assert "rolled back to the config it ran before" in out["detail"]
    for n in nodes:
        assert any(d.startswith(f"{n}: ") and "was Established" in d for d in out["detail"])
    assert "neighbor NODES remote-as 64512" in fab.running()
    wait_for(lambda: fab.lab.established(RACK) >= nodes, timeout=60, what="the sessions back")
    log = (fab.lab.workdir / fabric.DEPLOY_LOG).read_text().splitlines()
    assert [json.loads(line)["result"] for line in log] == ["refused", "rolled-back"]


def test_a_new_server_is_proposed_checked_planned_and_deployed(fab: Fab) -> None:
    lab = fab.lab
    deployed = fab.pod.parent / "deployed"
    shutil.copytree(lab.rendered, deployed)  # what the lab's ToR was last given

    lldpd = fabric.cable_server(lab, RACK, "swp5", "app2")
    wait_for(lambda: ("swp5", "new", None) in fab.findings(), timeout=30, what="app2 seen on swp5")
    code, doc = fab.lldp()
    assert code == 1
    (proposal,) = doc["proposals"]
    assert proposal.startswith("  - {name: app2, rack: r1, role: internal, port: swp5}")

    pod = fab.copy_pod("add-app2")
    pod.write_text(pod.read_text() + proposal + "\n")
    r = CliRunner().invoke(cli, ["allocate", str(pod)])
    assert r.exit_code == 0, r.stderr
    r = fab.sixpod("ci", "--deployed", str(deployed), pod=pod)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "r1-tor: changes" in r.stdout

    r = fab.sixpod("fabric", "plan", "--json", pod=pod)
    assert r.exit_code == 0, r.stderr
    (plan,) = json.loads(r.stdout)
    link = re.search(r'app2: \{.*node: "([0-9a-f:]+)"', pod.with_suffix(".lock").read_text())
    assert link is not None
    app2 = link.group(1)
    assert plan["verdict"] == "changes"
    assert plan["added_neighbors"] == [app2]
    assert plan["removed_neighbors"] == []
    # The lab's FRR daemons keep the machine's hostname whatever hostname line they are
    # given (see test_deploy_frr): every plan puts the ToR's name in its place. Every other
    # line is app2's, all of them added.
    delta = plan["delta"]
    adds = delta[delta.index("Lines To Add") + 1 :]
    assert all(
        "hostname" in ln for ln in delta[: delta.index("Lines To Add")] if ln != "Lines To Delete"
    )
    headings = {"router bgp 64513", " address-family ipv4 unicast", " address-family ipv6 unicast"}
    own = [ln for ln in adds if ln not in headings and "hostname" not in ln]
    assert own
    for line in own:
        mine = ("app2", app2, app2.rsplit(":", 1)[0], "interface swp5")  # its port, its /64
        assert any(m in line for m in mine), line
    assert any(f"neighbor {app2} peer-group NODES" in ln for ln in own)
    assert any("ipv6 prefix-list NODE-app2-V6 seq 5 permit" in ln for ln in own)

    rendered = pod.parent / "rendered"
    r = CliRunner().invoke(cli, ["render", str(pod), "--out", str(rendered)])
    assert r.exit_code == 0, r.stderr
    fabric.provision(lab, rendered, "app2", lldpd)
    before = fab.established_counts()
    assert app2 not in lab.established(RACK)

    # with its firewall: app2's new session must pass the rendered rules (the others are
    # kept by conntrack, and must not drop either)
    r = fab.sixpod("fabric", "deploy", "--firewall", "--json", pod=pod)
    assert r.exit_code == 0, r.stdout + r.stderr
    (done,) = json.loads(r.stdout)
    assert done["result"] == "deployed"
    assert done["detail"] == ["firewall loaded"]  # and no session flapped
    table = lab.exec(lab.tors[RACK].ns, "nft", "list", "table", "inet", "sixpod_tor")
    assert f'iifname "swp5" ip6 saddr {app2} tcp dport 179 accept comment "node app2"' in table
    wait_for(lambda: app2 in lab.established(RACK), timeout=60, what="app2's BGP session")
    after = fab.established_counts()
    assert {k: after[k] for k in before} == before  # no other session went down and back
    code, doc = fab.lldp(pod)
    assert code == 0, doc
    assert ("swp5", "ok", "app2") in fab.findings(pod)
