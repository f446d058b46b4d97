"""A lab pod (small example) for the routing integration tests; always torn down."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sixpod.lab.netns import existing_namespaces
from sixpod.lab.pod import LabPod

ROOT = Path(__file__).resolve().parents[1]
SIXPOD = str(Path(sys.executable).with_name("sixpod"))


SPINE_UPSTREAM = (
    "ports: [swp1-swp8], upstreams: [{name: spine1, port: swp8, asn: 65000, "
    'address: "2001:db8:2fd:1::1", local: "2001:db8:2fd:1::2/64"}]}'
)


def small_with_spine() -> str:
    """examples/small.yaml with its ToR under a spine (``spine1``, as in examples/pod.yaml).

    The example itself stays without one: its goldens and check messages are shared by many
    tests; the lab tests add the spine here."""
    text = (ROOT / "examples" / "small.yaml").read_text()
    assert "ports: [swp1-swp8]}" in text
    return text.replace("ports: [swp1-swp8]}", SPINE_UPSTREAM, 1)


def render_small(dest: Path, *, all_edge: bool = False) -> Path:
    """Render examples/small.yaml under a spine (with ``all_edge``, app1 becomes a third edge
    node); upstreams are not allocated, so examples/small.lock still covers it."""
    pod = dest / "small.yaml"
    text = small_with_spine()
    pod.write_text(text.replace("role: internal", "role: edge") if all_edge else text)
    shutil.copy(ROOT / "examples" / "small.lock", dest / "small.lock")
    out = dest / "rendered"
    subprocess.run([SIXPOD, "render", str(pod), "--out", str(out)], check=True, capture_output=True)
    return out


@contextmanager
def lab_pod(workdir: Path, *, all_edge: bool = False, **options: object) -> Iterator[LabPod]:
    rendered = render_small(workdir, all_edge=all_edge)
    options.setdefault("lock", workdir / "small.lock")  # the controller: the edges' state
    options.setdefault("floor", 0)  # off unless a test asks (the example's is 1)
    options.setdefault("monitoring", False)  # Prometheus and exporters: where a test asks
    pod = LabPod(rendered=rendered, workdir=workdir / "lab", **options)  # type: ignore[arg-type]
    try:
        pod.up()
        yield pod
    finally:
        problems = pod.down()
        assert problems == []
        assert existing_namespaces(pod.prefix) == []
        for proc in pod.box.processes:
            assert not proc.alive()


@contextmanager
def settled_lab(workdir: Path, **options: object) -> Iterator[LabPod]:
    """:func:`lab_pod`, once its spine and r1's sessions are up, every VIP is on both edge
    nodes and every edge serves (what a test of drills starts from)."""
    with lab_pod(workdir, **options) as pod:
        pod.wait_spine("spine1")
        pod.wait_ready("r1")
        edges = {n.address for n in pod.nodes.values() if n.edge}
        for vip in pod.tors["r1"].doc.vips.all:
            pod.wait_routes("r1", str(vip), edges, timeout=60)
        pod.wait_edges()
        yield pod


@contextmanager
def lab_pod_from(workdir: Path, pod_yaml: str, **options: object) -> Iterator[LabPod]:
    """A lab of the pod ``pod_yaml`` (allocated and rendered here); always torn down."""
    pod = workdir / "pod.yaml"
    pod.write_text(pod_yaml)
    out = workdir / "rendered"
    for verb in (["allocate", str(pod)], ["render", str(pod), "--out", str(out)]):
        subprocess.run([SIXPOD, *verb], check=True, capture_output=True)
    options.setdefault("lock", workdir / "pod.lock")  # the controller: the edges' state
    options.setdefault("monitoring", False)  # Prometheus and exporters: where a test asks
    lab = LabPod(rendered=out, workdir=workdir / "lab", **options)  # type: ignore[arg-type]
    try:
        lab.up()
        yield lab
    finally:
        problems = lab.down()
        assert problems == []
        assert existing_namespaces(lab.prefix) == []


# Two racks under one spine, every VIP on both: what the spine and kill-tor tests bring up.
TWO_RACKS = """\
pod:
  name: lab2
  aggregate: 2001:db8:200::/56
  links: 2001:db8:2ff::/60
  asns: {first: 64512, last: 64520}
  vips:
    ipv4: {pools: [203.0.113.0/28], count: 2}
    ipv6: {pools: [2001:db8:2fe::/124], count: 2}

racks:
  - name: r1
    tor:
      name: r1-tor
      ports: [swp1-swp8]
      upstreams:
        - {name: spine1, port: swp8, asn: 65000,
           address: "2001:db8:2fd:1::1", local: "2001:db8:2fd:1::2/64"}
  - name: r2
    tor:
      name: r2-tor
      ports: [swp1-swp8]
      upstreams:
        - {name: spine1, port: swp8, asn: 65000,
           address: "2001:db8:2fd:2::1", local: "2001:db8:2fd:2::2/64"}

nodes:
  - {name: edge1, rack: r1, role: edge, port: swp1}
  - {name: app1, rack: r1, role: internal, port: swp2}
  - {name: edge2, rack: r2, role: edge, port: swp1}
"""
