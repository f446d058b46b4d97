"""The spine: every ToR's upstream session is up, racks reach each other's node /64s, the
client on the spine reaches the VIPs of both families over ECMP across ToRs, and no link
between the pod's namespaces carries IPv4 (RFC 8950)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit import TWO_RACKS, lab_pod_from
from sixpod.lab.netns import run, wait_for
from sixpod.lab.pod import WHOAMI_PORT

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
