"""The spine: every ToR's upstream session is up, racks reach each other's node /64s, the
client on the spine reaches the VIPs of both families over ECMP across ToRs, and no link
between the pod's namespaces carries IPv4 (RFC 8950). Each node is built by the product's
own ``sixpod node bootstrap --supervise``: its addresses and routes are the bootstrap's, and
its daemons are the supervisor's children."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit import TWO_RACKS, lab_pod_from
from nodekit import netns_pids
from sixpod.lab.netns import run, wait_for
from sixpod.lab.pod import WHOAMI_PORT, LabPod

pytestmark = pytest.mark.integration


def test_spine_joins_racks_and_carries_the_client(tmp_path: Path) -> None:
    with lab_pod_from(tmp_path, TWO_RACKS) as lab:
        [spine] = lab.spines.values()
        lab.wait_spine(spine.name, timeout=60)
        tors = {d.tor for d in spine.doc.downlinks}
        assert tors == {"r1-tor", "r2-tor"}
        for rack in lab.tors:
            lab.wait_ready(rack, timeout=60)
        # the spine spreads every VIP over both ToRs (each rack has an edge node)
        for vip in [*map(str, spine.doc.vips.ipv4), *map(str, spine.doc.vips.ipv6)]:
            wait_for(
                lambda vip=vip: lab.spine_routes(spine.name, vip) == tors,  # type: ignore[misc]
                timeout=60,
                interval=0.2,
                what=f"{vip} over both ToRs on the spine",
            )
        # ... and learns each node /64 from its own rack's ToR only
        for d in spine.doc.downlinks:
            for p in d.prefixes:
                wait_for(
                    lambda p=p, d=d: (
                        lab.spine_routes(spine.name, str(p))  # type: ignore[misc]
                        == {d.tor}
                    ),
                    timeout=30,
                    what=f"{p} via {d.tor}",
                )
        # node /64s across racks: app1 (r1) and edge2 (r2), from their own addresses
        app1, edge2 = lab.nodes["app1"], lab.nodes["edge2"]
        a, b = lab.own_address(app1.doc), lab.own_address(edge2.doc)
        assert a is not None
        assert b is not None
        assert lab.reach(app1.ns, str(b), WHOAMI_PORT) == "open"  # edge2's whoami
        assert lab.reach(edge2.ns, str(a), WHOAMI_PORT) == "refused"  # app1 answers RST
        # the client, on the spine, reaches a VIP of each family
        for vip in (spine.doc.vips.ipv4[0], spine.doc.vips.ipv6[0]):
            assert lab.whoami(str(vip)) in {"edge1", "edge2"}
        # IPv4 lives only on the client's link and on VIPs (loopbacks): none on a pod link
        client_port = f"swp{len(spine.doc.downlinks) + 1}"
        namespaces = [spine.ns, lab.ctl_ns]
        namespaces += [t.ns for t in lab.tors.values()] + [n.ns for n in lab.nodes.values()]
        for ns in namespaces:
            links = json.loads(run(["ip", "-n", ns, "-j", "-4", "addr", "show"]) or "[]")
            with_v4 = {
                link["ifname"] for link in links if link["ifname"] != "lo" and link.get("addr_info")
            }
            assert with_v4 <= ({client_port} if ns == spine.ns else set()), (ns, with_v4)
        assert_nodes_are_the_bootstraps(lab)


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def assert_nodes_are_the_bootstraps(lab: LabPod) -> None:
    """Per node namespace: one ``sixpod node bootstrap --supervise`` (the lab's spawn), whose
    descendants are every other process there but the lab's whoami and lldpd; its
    ``supervisor.json`` names its own children as the daemons; the addresses and routes are
    the ones it applied."""
    for node in lab.nodes.values():
        assert node.boot is not None
        pids = set(netns_pids([node.ns]))
        boots = [
            p
            for p in pids
            if {"bootstrap", "--supervise"} <= set(_cmdline(p)) and _ppid(p) not in pids
        ]
        assert boots == [node.boot.pid], (node.name, boots)
        state = node.supervisor_state()
        assert state["pid"] == node.boot.pid
        want = {"zebra", "bfdd", "exabgp"} | ({"redis", "edge", "razor"} if node.edge else set())
        assert set(state["services"]) == want
        for name, svc in state["services"].items():
            assert svc["pid"] in pids, (node.name, name)
            assert _ppid(svc["pid"]) == node.boot.pid, (node.name, name)
        # the lab's own: its test app, and lldpd (the fabric's cabling check, see lab/fabric.py)
        lab_own = {node.whoami.pid} if node.whoami is not None else set()
        lab_own |= {p.pid for p in lab.box.processes if p.name == f"{node.name}-lldpd"}

        def descends(pid: int, roots: set[int]) -> bool:
            try:
                while pid > 1:
                    if pid in roots:
                        return True
                    pid = _ppid(pid)
            except OSError:
                return True  # gone meanwhile (a check's process)
            return False

        strays = {p for p in pids if not descends(p, {node.boot.pid}) and not descends(p, lab_own)}
        assert not strays, (node.name, {p: _cmdline(p) for p in strays})
        # the network config is the bootstrap's: it says so in its log, the kernel agrees
        own = lab.own_address(node.doc)
        log = node.boot.log.read_text()
        assert f"address {own}/128 on lo (nodad)" in log
        assert f"address {node.address}/64 on eth0 (nodad)" in log
        routes = json.loads(run(["ip", "-n", node.ns, "-j", "-6", "route", "show", "default"]))
        assert routes[0]["prefsrc"] == str(own)
