"""Plan, deploy and roll back with real FRR: a ToR namespace peered with a node namespace
(FRR's bgpd standing in for the node's ExaBGP), the ToR reloaded by frr-reload.py."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv6Interface
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fabkit import EXAMPLES, sandbox

from sixpod.cli import cli
from sixpod.fabric.config import FabricConfig
from sixpod.fabric.deploy import deploy, devices_for
from sixpod.lab.frr import Frr
from sixpod.lab.netns import Sandbox, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not Path("/usr/lib/frr/frr-reload.py").exists(),
        reason="frr-reload.py is not installed (Debian frr-pythontools)",
    ),
]

EDGE1 = "2001:db8:2ff::2"
NODE_CONF = """\
frr defaults datacenter
hostname edge1
router bgp 64512
 bgp router-id 10.0.0.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 2001:db8:2ff::1 remote-as 64513
 neighbor 2001:db8:2ff::1 timers 3 9
 neighbor 2001:db8:2ff::1 timers connect 1
 address-family ipv6 unicast
  network 2001:db8:200:1::/64
  network 2001:db8:2fe::1/128
  neighbor 2001:db8:2ff::1 activate
 exit-address-family
exit
"""


@dataclass
class Pair:
    tor: Frr
    node: Frr
    config: Path
    log: Path
    pod: Path

    def sixpod(self, *args: str) -> Any:
        return CliRunner().invoke(cli, [*args, str(self.pod), "--config", str(self.config)])

    def edge1(self) -> dict[str, Any]:
        doc = self.tor.json(f"show bgp neighbors {EDGE1} json")
        return dict(doc[EDGE1])

    def accepted(self) -> int:
        doc = self.tor.json("show bgp vrf default summary json")
        return sum(
            af["peers"].get(EDGE1, {}).get("pfxRcd", 0)
            for af in doc.values()
            if isinstance(af, dict) and "peers" in af
        )


def _pod(tmp: Path, extra: str = "") -> Path:
    pod = tmp / "pod.yaml"
    pod.write_text((EXAMPLES / "small.yaml").read_text() + extra)
    shutil.copy(EXAMPLES / "small.lock", tmp / "pod.lock")
    r = CliRunner().invoke(cli, ["allocate", str(pod)])
    assert r.exit_code == 0, r.stderr
    return pod


ETC_FRR = Path("/etc/frr/frr.conf")


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    etc = ETC_FRR.read_bytes() if ETC_FRR.exists() else None
    with sandbox(tmp_path, "sxd") as box:
        yield _start(box, tmp_path)
    assert (ETC_FRR.read_bytes() if ETC_FRR.exists() else None) == etc  # the machine's own


def _start(box: Sandbox, tmp: Path) -> Pair:
    pod = _pod(tmp)
    r = CliRunner().invoke(cli, ["render", str(pod), "--out", str(tmp / "out")])
    assert r.exit_code == 0, r.stderr
    t, n = box.netns("tor", router=True), box.netns("node")
    box.veth(t, "swp1", n, "eth0")
    box.addr(n, "eth0", IPv6Interface(f"{EDGE1}/64"))
    node_conf = tmp / "node.conf"
    node_conf.write_text(NODE_CONF)
    tor = Frr(box, t, "tor", tmp / "out/tors/r1-tor/frr.conf", ("bgpd", "bfdd", "staticd"))
    node = Frr(box, n, "node", node_conf, ("bgpd",))
    tor.start()
    node.start()
    config = tmp / "fabric.yaml"
    log = tmp / "deploy.log"
    config.write_text(
        json.dumps(
            {
                "tors": {
                    "r1-tor": {
                        "netns": t,
                        "vty_socket": str(tor.rundir),
                        "confdir": str(tor.rundir),  # never the machine's /etc/frr
                    }
                },
                "log": str(log),
                "deadline": 15.0,
                "settle": 7.0,
            }
        )
    )
    p = Pair(tor, node, config, log, pod)
    wait_for(lambda: p.accepted() == 2, timeout=30, what="edge1's session and its 2 prefixes")
    return p


def test_plan_and_a_good_deploy_add_one_neighbor_and_flap_nothing(
    pair: Pair, tmp_path: Path
) -> None:
    before = pair.edge1()["connectionsEstablished"]
    _pod(tmp_path, "  - {name: app2, rack: r1, role: internal, port: swp4}\n")
    r = pair.sixpod("fabric", "plan", "--json")
    assert r.exit_code == 0, r.stderr
    (plan,) = json.loads(r.stdout)
    assert plan["verdict"] == "changes"
    assert plan["added_neighbors"] == ["2001:db8:2ff:3::2"]
    assert plan["removed_neighbors"] == []
    assert any("NODE-app2-V6" in line for line in plan["delta"])
    assert any("2001:db8:200:4::/64" in line for line in plan["delta"])  # its prefix list

    r = pair.sixpod("fabric", "deploy", "--json")
    assert r.exit_code == 0, r.stderr
    (done,) = json.loads(r.stdout)
    assert done["result"] == "deployed"
    assert done["detail"] == []  # no session flapped
    assert "2001:db8:2ff:3::2" in pair.tor.vtysh("show running-config no-header")
    assert pair.edge1()["connectionsEstablished"] == before  # edge1 never flapped
    assert pair.accepted() == 2
    (entry,) = [json.loads(line) for line in pair.log.read_text().splitlines()]
    assert entry["result"] == "deployed"
    assert entry["tor"] == "r1-tor"
    assert entry["who"]
    assert entry["when"].endswith("Z")
    assert entry["what"] == str(pair.pod)
    assert any("2001:db8:2ff:3::2" in line for line in entry["diff"])

    r = pair.sixpod("fabric", "plan", "--json")
    assert r.exit_code == 0
    (after,) = json.loads(r.stdout)
    # Nothing left to change but the hostname: FRR daemons started outside watchfrr (the
    # lab's) never show the hostname vtysh gave them back in `show running-config`.
    assert {ln for ln in after["delta"] if "hostname" not in ln} <= {
        "Lines To Delete",
        "Lines To Add",
    }


def test_a_deploy_that_breaks_a_session_is_rolled_back(pair: Pair) -> None:
    cfg = FabricConfig.model_validate(json.loads(pair.config.read_text()))
    running = pair.tor.vtysh("show running-config no-header")
    good = (pair.config.parent / "out/tors/r1-tor/frr.conf").read_text()
    broken = good.replace(
        "ipv6 prefix-list NODE-edge1-V6 seq 5 permit", "ipv6 prefix-list NODE-edge1-V6 seq 5 deny"
    )
    assert broken != good
    (out,) = deploy(devices_for(["r1-tor"], cfg), {"r1-tor": broken}, cfg, what="broken")
    assert out.result == "rolled-back"
    assert "2001:db8:2ff::2: accepts 1 prefixes (was 2)" in out.detail
    assert "seq 5 permit 2001:db8:200:1::/64" in pair.tor.vtysh("show running-config no-header")
    wait_for(lambda: pair.accepted() == 2, timeout=15, what="edge1's prefixes back")
    now = pair.tor.vtysh("show running-config no-header")
    assert sorted(now.splitlines()) == sorted(running.splitlines())  # the same, re-ordered
    (entry,) = [json.loads(line) for line in pair.log.read_text().splitlines()]
    assert entry["result"] == "rolled-back"
    assert entry["what"] == "broken"


def test_a_plan_removing_router_bgp_is_refused_and_nothing_changes(pair: Pair) -> None:
    cfg = FabricConfig.model_validate(json.loads(pair.config.read_text()))
    running = pair.tor.vtysh("show running-config no-header")
    good = (pair.config.parent / "out/tors/r1-tor/frr.conf").read_text()
    no_bgp = good.split("router bgp")[0]
    (out,) = deploy(devices_for(["r1-tor"], cfg), {"r1-tor": no_bgp}, cfg, what="no bgp")
    assert out.result == "refused"
    assert out.plan is not None
    assert "bgp-removed: removes router bgp 64513" in out.plan.summary
    garbage = good.replace("router bgp 64513", "router bgpp 64513")
    (bad,) = deploy(devices_for(["r1-tor"], cfg), {"r1-tor": garbage}, cfg, what="garbage")
    assert bad.result == "invalid"
    assert bad.plan is not None
    assert bad.plan.delta == ()  # never a delta from a config that does not parse
    assert pair.tor.vtysh("show running-config no-header") == running
    assert pair.accepted() == 2
    results = [json.loads(line)["result"] for line in pair.log.read_text().splitlines()]
    assert results == ["refused", "invalid"]


def _firewall(pair: Pair) -> str | None:
    from sixpod.fabric.tools import Tor

    cfg = FabricConfig.model_validate(json.loads(pair.config.read_text()))
    return Tor("r1-tor", cfg).firewall()


def test_deploy_with_the_firewall_loads_it_and_keeps_the_sessions(pair: Pair) -> None:
    before = pair.edge1()["connectionsEstablished"]
    assert _firewall(pair) is None
    r = pair.sixpod("fabric", "deploy", "--firewall", "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    (done,) = json.loads(r.stdout)
    assert done["result"] == "deployed"
    assert done["detail"] == ["firewall loaded"]
    loaded = _firewall(pair)
    assert loaded is not None
    assert 'iifname "swp1" ip6 saddr 2001:db8:2ff::2 tcp dport 179 accept' in loaded
    assert pair.edge1()["connectionsEstablished"] == before  # the session never dropped
    assert pair.accepted() == 2


DROP_ALL = """\
table inet sixpod_tor
delete table inet sixpod_tor
table inet sixpod_tor {
    chain input {
        type filter hook input priority filter; policy drop;
    }
}
"""


def test_a_firewall_that_drops_the_sessions_is_rolled_back(pair: Pair) -> None:
    cfg = FabricConfig.model_validate(json.loads(pair.config.read_text()))
    running = pair.tor.vtysh("show running-config no-header")
    (out,) = deploy(
        devices_for(["r1-tor"], cfg), {"r1-tor": running}, cfg, firewalls={"r1-tor": DROP_ALL}
    )
    assert out.result == "rolled-back", out.detail
    assert any(d.startswith(f"with the new firewall: {EDGE1}: ") for d in out.detail)
    assert _firewall(pair) is None  # none before, none after
    wait_for(lambda: pair.accepted() == 2, timeout=30, what="edge1's session back")
    (entry,) = [json.loads(line) for line in pair.log.read_text().splitlines()]
    assert entry["result"] == "rolled-back"
