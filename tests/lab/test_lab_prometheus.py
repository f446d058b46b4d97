"""Prometheus in the lab: the small lab (spine, ToR, two edge nodes, an internal node, the
controller) brought up with Debian's Prometheus in ctl and the exporters its rendered config
scrapes; every target up, ``lab status --json`` reporting them; then the MTU drill (a ToR
port narrower than the node behind it: the probe and the PathMtuDiffers alert catch it)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from labkit import lab_pod
from sixpod.lab import drills, monitoring
from sixpod.lab.netns import LabError, wait_for
from sixpod.lab.pod import LabPod

pytestmark = [
    pytest.mark.integration,
    pytest.mark.lab_suite,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

JOBS = {
    "sixpod-announcer",
    "sixpod-edge",
    "sixpod-resilient",
    "node",
    "frr",
    "vips-ip6",
    "vips-ip4",
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPod]:
    with lab_pod(tmp_path_factory.mktemp("prom")) as pod:
        pod.wait_spine("spine1")
        pod.wait_ready("r1")
        edges = {n.address for n in pod.nodes.values() if n.edge}
        for vip in pod.tors["r1"].doc.vips.all:
            pod.wait_routes("r1", str(vip), edges, timeout=60)
        pod.wait_edges()
        yield pod


def all_up(pod: LabPod) -> bool:
    try:
        targets = monitoring.targets(pod)
    except LabError:
        return False
    return bool(targets) and all(t["health"] == "up" for t in targets)


def test_every_target_is_up(lab: LabPod) -> None:
    try:
        wait_for(lambda: all_up(lab), timeout=90, interval=1, what="every target up")
    finally:
        for t in monitoring.targets(lab):
            print(t["job"], t["instance"], t["health"], t["last_error"])
    targets = monitoring.targets(lab)
    assert {t["job"] for t in targets} == JOBS
    devices = {t["device"] for t in targets if t["job"] == "node"}
    assert devices == {"edge1", "edge2", "app1", "r1-tor"}
    # the scrapes carry what each exporter reads in its own namespace
    assert monitoring.query(lab, 'frr_bgp_peer_state{job="frr"} == 1')  # the ToR's sessions
    wait_for(
        lambda: len(monitoring.query(lab, "probe_success == 1")) == 8,
        timeout=60,
        interval=1,
        what="every VIP probed over HTTP by the blackbox exporter (4 ip6, 4 ip4)",
    )
    up = monitoring.query(lab, 'up{job="node"}')
    assert len(up) == 4


def show(result: drills.DrillResult) -> None:
    print("\n".join(result.lines))
    print(result.to_json())
