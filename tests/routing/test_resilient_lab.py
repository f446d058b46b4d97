"""Resilient hashing on the lab ToR: flows on other nodes stay put when one node leaves or
re-joins (real FRR, ExaBGP, announcer and `sixpod tor-resilient`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit import lab_pod
from sixpod.lab.netns import wait_for
from sixpod.lab.pod import LabPod, moved

pytestmark = pytest.mark.integration

VIPS = ("203.0.113.1", "2001:db8:2fe::2")
FLOWS = 60


@pytest.fixture
def three_edges(tmp_path: Path) -> Iterator[LabPod]:
    with lab_pod(tmp_path, all_edge=True) as pod:
        pod.wait_ready("r1")
        addresses = {n.address for n in pod.nodes.values()}
        for vip in VIPS:
            pod.wait_routes("r1", vip, addresses, timeout=60)
            wait_for(lambda v=vip: pod.resilient_paths("r1", v) == 3, timeout=20, what="group")
        yield pod


def test_flows_on_other_nodes_stay_when_one_leaves_and_rejoins(three_edges: LabPod) -> None:
    lab = three_edges
    app1 = lab.nodes["app1"]
    others = {n.address for n in lab.nodes.values() if n.name != "app1"}
    all_nodes = {n.address for n in lab.nodes.values()}
    flows = {vip: lab.flows(vip, FLOWS) for vip in VIPS}
    try:
        before = {vip: f.round() for vip, f in flows.items()}
        for vip, answers in before.items():
            assert None not in answers, f"every flow to {vip} connects"
            assert len(set(answers)) == 3, f"flows to {vip} spread over the 3 nodes: {answers}"
        app1.healthy(False)
        for vip in VIPS:
            lab.wait_routes("r1", vip, others, timeout=10)
            wait_for(lambda v=vip: lab.resilient_paths("r1", v) == 2, timeout=10, what="group")
        after_leave = {vip: f.round() for vip, f in flows.items()}
        app1.healthy(True)
        for vip in VIPS:
            lab.wait_routes("r1", vip, all_nodes, timeout=10)
            wait_for(lambda v=vip: lab.resilient_paths("r1", v) == 3, timeout=10, what="group")
        after_rejoin = {vip: f.round() for vip, f in flows.items()}
    finally:
        for f in flows.values():
            f.close()
    for vip in VIPS:
        n_moved, n_kept = moved(before[vip], after_leave[vip], "app1")
        assert n_kept > 0
        assert n_moved == 0, f"{vip}: {n_moved}/{n_kept} flows on other nodes moved on leave"
        n_moved, n_kept = moved(before[vip], after_rejoin[vip], "app1")
        assert n_moved == 0, f"{vip}: {n_moved}/{n_kept} flows on other nodes moved on re-join"
