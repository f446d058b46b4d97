"""Prometheus in the lab: the small lab (spine, ToR, two edge nodes, an internal node, the
controller) brought up with Debian's Prometheus in ctl and the exporters its rendered config
scrapes; every target up, ``lab status --json`` reporting them; then the MTU drill (a ToR
port narrower than the node behind it: the probe and the PathMtuDiffers alert catch it)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from labkit import SIXPOD, settled_lab
from sixpod.lab import drills, monitoring
from sixpod.lab.netns import LabError, wait_for
from sixpod.lab.pod import LabPod

pytestmark = [
    pytest.mark.integration,
    pytest.mark.lab_suite,  # with the drills; `lab up`'s every-target-up runs in test_lab_cli
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
    "sixpod-controller",  # the lab's own: in ctl
    "sixpod-razor",  # the lab's own: on every edge node
}


def drill_mtu(lab: LabPod, *args: str) -> subprocess.CompletedProcess[str]:
    """`sixpod lab drill mtu ARGS` on the lab, which must behave (exit 0)."""
    argv = [SIXPOD, "lab", "drill", "mtu", *args, "--workdir", str(lab.workdir)]
    r = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    print(r.stdout, r.stderr)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPod]:
    with settled_lab(tmp_path_factory.mktemp("prom"), monitoring=True) as pod:
        yield pod


def all_up(pod: LabPod) -> bool:
    try:
        targets = monitoring.targets(pod)
    except LabError:
        return False
    return bool(targets) and all(t["health"] == "up" for t in targets)


def answers(pod: LabPod, url: str) -> bool:
    try:
        return bool(pod.scrape(pod.ctl_ns, url))
    except LabError:
        return False


def test_every_target_is_up(lab: LabPod) -> None:
    try:
        targets = monitoring.wait_all_up(lab, timeout=90)
    finally:
        for t in monitoring.targets(lab):
            print(t["job"], t["instance"], t["health"], t["last_error"])
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
    # every daemon's metrics at its device's global address: Razor's and the controller's too
    assert len(monitoring.query(lab, 'sixpod_razor_workers_up{job="sixpod-razor"}')) == 2
    assert monitoring.query(lab, 'sixpod_publisher_active{job="sixpod-controller"} == 1')


def test_lab_status_json_reports_the_targets(lab: LabPod) -> None:
    lab.save()  # `sixpod lab status` attaches to a saved lab, as after `sixpod lab up`
    wait_for(lambda: all_up(lab), timeout=90, interval=1, what="every target up")
    r = subprocess.run(
        [SIXPOD, "lab", "status", "--json", "--workdir", str(lab.workdir)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert set(status) >= {"spines", "racks", "client", "prometheus"}
    targets = status["prometheus"]["targets"]
    assert {t["job"] for t in targets} == JOBS
    assert all(t["health"] == "up" for t in targets), targets
    assert status["prometheus"]["url"] == monitoring.PROMETHEUS_URL
    ctl = status["controller"]
    assert set(ctl["nodes"]) == {"edge1", "edge2", "app1"}
    assert {n["state"] for n in ctl["nodes"].values()} == {"active"}
    assert len(ctl["vips"]) == 8
    assert ctl["apps"]["count"] == 0
    assert ctl["publisher_active"] is True
    assert set(status["edges"]) == {"edge1", "edge2"}
    for edge in status["edges"].values():
        assert edge["link"] == "up"
        assert edge["nginx_ready"] is True
        assert edge["replica_revision"] is not None
        assert edge["nginx_revision"] == edge["replica_revision"]
    human = subprocess.run(
        [SIXPOD, "lab", "status", "--workdir", str(lab.workdir)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    print(human.stdout)
    assert human.returncode == 0, human.stderr
    for title in ("Prometheus", "nodes (controller", "VIPs (controller)", "edges"):
        assert title in human.stdout


def show(result: drills.DrillResult) -> None:
    print("\n".join(result.lines))
    print(result.to_json())


def test_mtu_drill(lab: LabPod) -> None:
    """`sixpod lab drill mtu --json` (the registry, the command line): app1's ToR port at
    1500 in front of its 9000; the probe from edge1 measures 1500 and PathMtuDiffers fires,
    then resolves once the port is put back."""
    lab.save()
    r = drill_mtu(lab, "--json")
    result = json.loads(r.stdout)
    assert result["drill"] == "mtu"
    assert result["ok"] is True, result["problems"]
    f = result["figures"]
    assert (f["node"], f["probed_from"], f["port"]) == ("app1", "edge1", "swp3")
    assert (f["node_mtu"], f["port_mtu"], f["wrong_mtu"]) == (9000, 9000, 1500)
    assert f["probe_caught"] is True
    assert f["measured_mtu"] == 1500
    assert f["fired_s"] is not None
    assert f["resolved_s"] is not None
    assert f["probe_ok_after"] is True
    assert lab.exec(lab.tors["r1"].ns, "cat", "/sys/class/net/swp3/mtu").strip() == "9000"
    # the human form: its lines and figures
    r = drill_mtu(lab, "--node", "edge2")
    assert "PathMtuDiffers firing for edge2" in r.stdout
    assert "drill mtu: the pod behaved" in r.stdout


@pytest.mark.parametrize("drill", ["kill-edge", "kill-tor"])
def test_every_target_up_again_after_a_drill_kills_a_device(lab: LabPod, drill: str) -> None:
    """A drill that kills every process of a namespace starts the device's exporters again
    with its own processes."""
    result = drills.DRILLS[drill](lab)
    show(result)
    assert result.ok, result.problems
    killed = result.figures.get("node") or result.figures["tor"]
    # its exporters answer again (every process of its namespace was SIGKILLed)
    exporters = [t for t in monitoring.targets(lab) if t["device"] == killed]
    assert {t["job"] for t in exporters} >= {"node"}
    for t in exporters:
        if t["job"] in ("node", "frr"):
            url = f"http://{t['instance']}/metrics"
            wait_for(lambda url=url: answers(lab, url), timeout=60, interval=0.5, what=url)
    try:
        wait_for(lambda: all_up(lab), timeout=120, interval=1, what="every target up again")
    finally:
        for t in monitoring.targets(lab):
            print(t["job"], t["instance"], t["health"], t["last_error"])
