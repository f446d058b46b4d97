"""``sixpod node bootstrap`` in a fresh network namespace: the rendered network config is
applied (addresses, MTU, routes, sysctls), a second run changes nothing, --dry-run changes
nothing, and bad input is an error that changes nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nodekit import UPLINK, Pair, node_pair

pytestmark = pytest.mark.integration

TOR = "2001:db8:2ff::1"  # edge1's ToR in the small example


@pytest.fixture
def pair() -> Iterator[Pair]:
    yield from node_pair(TOR)


def snapshot(ns: str) -> dict[str, Any]:
    """Links, addresses, routes (both families) and the sysctls, as ``ip -j`` shows them."""

    def ip(*args: str) -> Any:
        out = subprocess.run(
            ["ip", "-n", ns, "-j", *args], capture_output=True, text=True, check=True
        ).stdout
        return json.loads(out or "[]")

    links = {x["ifname"]: (x["mtu"], x["operstate"], "UP" in x["flags"]) for x in ip("link")}
    addrs = sorted(
        (x["ifname"], a["local"], a["prefixlen"]) for x in ip("addr") for a in x["addr_info"]
    )
    routes = sorted(json.dumps(r, sort_keys=True) for r in ip("-6", "route") + ip("-4", "route"))
    sysctls = subprocess.run(
        ["ip", "netns", "exec", ns, "sysctl", "-n",
         f"net.ipv6.conf.{UPLINK}.accept_dad", "net.ipv6.conf.all.keep_addr_on_down",
         "net.ipv6.conf.all.forwarding"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return {"links": links, "addrs": addrs, "routes": routes, "sysctls": sysctls}


def bootstrap(pair: Pair, node_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return pair.run("node", "bootstrap", "--dir", str(node_dir), "--uplink", UPLINK, *extra)


def test_bootstrap_applies_the_network_config_once(pair: Pair, rendered: Path) -> None:
    node_dir = rendered / "nodes" / "edge1"
    first = bootstrap(pair, node_dir, "--json")
    assert first.returncode == 0, first.stderr
    changes = json.loads(first.stdout)["changes"]
    assert f"link {UPLINK} mtu 9000 (was 1500)" in changes
    assert f"route 0.0.0.0/0 via inet6 {TOR} dev {UPLINK}" in changes

    state = snapshot(pair.node)
    assert state["links"][UPLINK][0] == 9000
    assert state["links"][UPLINK][2]
    assert (UPLINK, "2001:db8:2ff::2", 64) in state["addrs"]
    assert ("lo", "2001:db8:200:1::1", 128) in state["addrs"]
    assert not [a for a in state["addrs"] if a[0] == UPLINK and ":" not in a[1]]  # no IPv4
    routes = [json.loads(r) for r in state["routes"]]
    v6 = [r for r in routes if r["dst"] == "default" and r.get("gateway") == TOR]
    v4 = [r for r in routes if r["dst"] == "default" and r.get("via", {}).get("host") == TOR]
    assert [r["dev"] for r in v6] == [UPLINK]
    assert [r["via"]["family"] for r in v4] == ["inet6"]
    assert any(r["dst"] == "2001:db8:200:1::/64" and r.get("type") == "unreachable" for r in routes)
    assert state["sysctls"] == ["0", "1", "1"]

    # the ToR answers on the link: the address is usable at once (no DAD)
    ping = subprocess.run(
        ["ip", "netns", "exec", pair.node, "python3", "-c",
         "import socket; s = socket.create_connection(('2001:db8:2ff::1', 9), timeout=2)"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Connection refused" in ping.stderr  # reached the ToR, which has nothing on port 9

    second = bootstrap(pair, node_dir)
    assert second.returncode == 0, second.stderr
    assert second.stdout == "edge1: network as configured, nothing to change\n"
    assert snapshot(pair.node) == state


def test_dry_run_changes_nothing(pair: Pair, rendered: Path) -> None:
    before = snapshot(pair.node)
    result = bootstrap(pair, rendered / "nodes" / "app1", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("app1: would change ")
    assert f"  link {UPLINK} mtu 9000 (was 1500)\n" in result.stdout
    assert snapshot(pair.node) == before


def test_a_route_elsewhere_is_replaced_and_other_addresses_are_kept(
    pair: Pair, rendered: Path
) -> None:
    node_dir = rendered / "nodes" / "edge1"
    subprocess.run(["ip", "-n", pair.node, "link", "set", UPLINK, "up"], check=True)
    subprocess.run(
        ["ip", "-n", pair.node, "addr", "add", "2001:db8:2ff::99/64", "dev", UPLINK, "nodad"],
        check=True,
    )
    subprocess.run(
        ["ip", "-n", pair.node, "route", "add", "default", "via", "2001:db8:2ff::98"], check=True
    )
    result = bootstrap(pair, node_dir)
    assert result.returncode == 0, result.stderr
    own = "2001:db8:200:1::1"  # edge1's own address: the source of its own traffic
    assert (
        f"route ::/0 via {TOR} dev {UPLINK} src {own} (replacing one via 2001:db8:2ff::98"
        in result.stdout
    )
    state = snapshot(pair.node)
    assert (UPLINK, "2001:db8:2ff::99", 64) in state["addrs"]  # not ours: kept
    defaults = [json.loads(r) for r in state["routes"] if '"dst": "default"' in r]
    assert sorted(r.get("gateway") or r["via"]["host"] for r in defaults) == [TOR, TOR]
    assert [r.get("prefsrc") for r in defaults if "gateway" in r] == [own]


def _copy(rendered: Path, tmp_path: Path, node: str = "edge1") -> Path:
    d = tmp_path / node
    shutil.copytree(rendered / "nodes" / node, d)
    return d


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('"2001:db8:2ff::2/64"', '"198.51.100.2/24"'),
            "links.0.addresses.0: '198.51.100.2/24' is IPv4: a node has no IPv4 on any link",
        ),
        (
            lambda t: t.replace('"via": "2001:db8:2ff::1"', '"via": "198.51.100.1"', 1),
            "routes.0.via: '198.51.100.1' is IPv4: gateways are IPv6",
        ),
        (lambda t: t.replace('"mtu": 9000', '"mtu": 9000, "mut": 1'), "unknown key 'mut'"),
        (lambda t: t.replace('"mtu": 9000', '"mtu": 900'), "mtu 900 is outside 1280-65535"),
        (lambda t: t.replace('"dev": "eth0"', '"dev": "eth9"', 1), "dev eth9 is not one of"),
        (lambda t: t.replace("2001:db8:2ff::2/64", "2001:db8:2ff::zz/64"), "links.0.addresses.0"),
        (lambda t: t[:-20], "not JSON"),
    ],
)
def test_bad_network_json_is_an_error_that_changes_nothing(
    pair: Pair, rendered: Path, tmp_path: Path, edit: Any, message: str
) -> None:
    d = _copy(rendered, tmp_path)
    path = d / "network.json"
    text = path.read_text()
    path.write_text(edit(text))
    before = snapshot(pair.node)
    result = bootstrap(pair, d)
    assert result.returncode == 1
    assert str(path) in result.stderr
    assert message in result.stderr
    assert snapshot(pair.node) == before


def test_missing_things_are_errors_that_change_nothing(
    pair: Pair, rendered: Path, tmp_path: Path
) -> None:
    before = snapshot(pair.node)
    result = bootstrap(pair, tmp_path / "nowhere")
    assert result.returncode == 1
    assert f"{tmp_path / 'nowhere'}: no such directory" in result.stderr

    d = _copy(rendered, tmp_path)
    (d / "network.json").unlink()
    result = bootstrap(pair, d)
    assert result.returncode == 1
    assert f"{d / 'network.json'}: missing" in result.stderr

    result = pair.run("node", "bootstrap", "--dir", str(rendered / "nodes" / "edge1"))
    assert result.returncode == 1  # the config's eth0: not in this namespace
    assert "no interface eth0 on this node" in result.stderr
    assert "--uplink" in result.stderr

    d = _copy(rendered, tmp_path, "app1")
    (d / "network.json").write_text((rendered / "nodes/edge1/network.json").read_text())
    result = bootstrap(pair, d)
    assert result.returncode == 1
    assert "for node edge1, but device.json is app1's" in result.stderr

    result = bootstrap(
        pair, rendered / "nodes/edge1", "--supervise", "--redis-primary", "198.51.100.1:6379"
    )
    assert result.returncode == 1
    assert "--redis-primary: '198.51.100.1:6379' is IPv4" in result.stderr

    d = _copy(rendered, tmp_path / "x")
    (d / "announcer.yaml").unlink()
    result = bootstrap(pair, d, "--supervise", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 1
    assert f"{d / 'announcer.yaml'}: missing" in result.stderr
    assert not (tmp_path / "run").exists()
    assert snapshot(pair.node) == before
