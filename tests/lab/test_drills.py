"""The drills (``sixpod lab drill NAME``) against one small lab: spine, ToR, two edge nodes,
an internal node and the controller; torn down at the end leaving nothing behind (labkit).

The lab has a floor of one node, as a production pod should: without it, the edges' redis
check withdraws every edge when the Redis primary stops (the redis-down drill says so)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit import TWO_RACKS, lab_pod_from, settled_lab
from sixpod.lab import drills
from sixpod.lab.netns import wait_for
from sixpod.lab.pod import LabPod

pytestmark = [pytest.mark.integration, pytest.mark.lab_suite]


def test_kill_tor_other_racks_keep_serving(tmp_path: Path) -> None:
    """Two racks sharing every VIP: r2's ToR dies; edge2 is unreachable, edge1 serves every
    VIP through the spine; the ToR comes back and r2's VIPs with it. (Runs before the
    module's lab comes up: one lab at a time.)"""
    with lab_pod_from(tmp_path, TWO_RACKS) as pod:
        pod.wait_spine("spine1", timeout=60)
        for rack in pod.tors:
            pod.wait_ready(rack, timeout=60)
        for vip in pod.spines["spine1"].doc.vips.all:
            wait_for(
                lambda vip=vip: pod.spine_routes("spine1", str(vip)) == {"r1-tor", "r2-tor"},
                timeout=60,
                what=f"{vip} over both ToRs",
            )
        result = drills.kill_tor(pod, rack="r2")
        show(result)
        assert result.ok, result.problems
        f = result.figures
        assert f["spines_withdrawn_s"] is not None
        assert f["spines_withdrawn_s"] < 3
        assert f["nodes_unreachable"] == 1  # edge2 (r1's app1 stays reachable)
        assert f["vips_shared"] == 4
        assert f["vips_lost"] == 0
        assert f["sampled_served"] == f["sampled"] == 4
        assert f["restored_s"] is not None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPod]:
    with settled_lab(tmp_path_factory.mktemp("drills"), floor=1) as pod:
        yield pod


def show(result: drills.DrillResult) -> None:
    print("\n".join(result.lines))
    print(result.to_json())


def test_kill_edge(lab: LabPod) -> None:
    result = drills.kill_edge(lab, node="edge2")
    show(result)
    assert result.ok, result.problems
    f = result.figures
    assert f["node"] == "edge2"
    assert f["vips"] == 8
    assert 0 < f["own_flows"] < drills.FLOWS
    assert f["own_flows_broken"] == f["own_flows"]  # a TCP flow cannot move off a dead node
    assert f["other_flows"] == drills.FLOWS - f["own_flows"]
    assert f["other_flows_broken"] == 0
    assert f["other_flows_broken_rejoin"] == 0
    assert f["new_flows_served"] == drills.FLOWS
    assert 0 < f["withdrawn_s"] < 3  # the session closes (or BFD): never the 9 s hold timer
    assert f["rejoined_s"] is not None
    # the node is whole again: every VIP over both edge nodes
    edges = {n.address for n in lab.nodes.values() if n.edge}
    for vip in lab.tors["r1"].doc.vips.all:
        assert lab.routes("r1", str(vip)) == edges


def test_blackhole_vip(lab: LabPod) -> None:
    result = drills.blackhole_vip(lab)
    show(result)
    assert result.ok, result.problems
    f = result.figures
    vip = f["vip"]
    assert vip not in (lab.nameserver(4), lab.nameserver(6))
    assert f["announcers"] == 2
    for key in (
        "withdrawn_tor_s",
        "withdrawn_spine_s",
        "announcers_reported_s",
        "razor_stopped_s",
        "released_tor_s",
        "released_spine_s",
        "released_razor_s",
    ):
        assert f[key] is not None, key
        assert f[key] < 10, key
    assert drills.BLACKHOLE_APP in f["suspects"]
    assert f["api_state"] == "blackholed"
    # released: back over both edge nodes and on the spine; the drill's app is gone
    edges = {n.address for n in lab.nodes.values() if n.edge}
    assert lab.routes("r1", vip) == edges
    assert lab.spine_routes("spine1", vip) == {"r1-tor"}
    assert drills.BLACKHOLE_APP not in lab.api("app", "list")


def test_redis_down(lab: LabPod) -> None:
    result = drills.redis_down(lab)
    show(result)
    assert result.ok, result.problems
    f = result.figures
    assert f["requests_ok_during"] > 0
    assert f["requests_failed_during"] == 0
    assert f["vip_paths_fewest_during"] == f["vip_paths_before"] == 2
    assert f["changes_acknowledged"] == 1
    assert f["changes_lost"] == 0
    assert f["converged_replicas_s"] is not None
    assert f["converged_traffic_s"] is not None
    assert f["requests_failed_return"] == 0
    assert "drill-redis" not in lab.api("app", "list")


def test_controller_restart(lab: LabPod) -> None:
    result = drills.controller_restart(lab)
    show(result)
    assert result.ok, result.problems
    f = result.figures
    assert f["acknowledged"] >= drills.KILL_AFTER
    assert f["failed"] > 0  # the controller did die mid-burst
    assert f["lost"] == 0
    assert f["stored"] >= f["acknowledged"]
    assert f["edges_converged_s"] is not None
    assert lab.publisher_active()


def test_drain_edge(lab: LabPod) -> None:
    result = drills.drain_edge(lab, node="edge1")
    show(result)
    assert result.ok, result.problems
    f = result.figures
    assert f["out_of_ecmp_s"] is not None
    assert f["withdrawn_s"] is not None
    assert f["out_of_ecmp_s"] <= f["withdrawn_s"]  # graceful shutdown first, then withdrawal
    assert f["new_connections_to_drained"] == 0
    assert f["pool_requests"] > 0
    assert f["pool_failed_after_retry"] == 0
    assert f["other_flows_broken"] == 0
    assert f["other_flows_broken_undrain"] == 0
    assert f["back_in_ecmp_s"] is not None


def test_kill_tor_of_the_only_rack(lab: LabPod) -> None:
    """One rack: its nodes and every VIP are lost while the ToR is down (said so), and all
    come back with it."""
    result = drills.kill_tor(lab)
    show(result)
    assert result.ok, result.problems
    f = result.figures
    assert f["nodes_unreachable"] == 3
    assert f["vips_lost"] == 8
    assert f["vips_shared"] == 0
    assert any("this pod has one rack" in line for line in result.lines)
    assert f["restored_s"] is not None
