"""The status document of `sixpod node status`: built from the core and the sync, read back,
rendered; time is an argument."""

from __future__ import annotations

import contextlib
import json
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sixpod.addr import IPNetwork
from sixpod.routing.events import Announce, Route
from sixpod.routing.health import Announcer, CheckSpec, CoreConfig, Severity
from sixpod.routing.routesync import RouteSync
from sixpod.routing.status import (
    CHANGES_KEPT,
    Changes,
    StatusError,
    format_status,
    node_status,
    parse_status,
    route_list,
)

NH = IPv6Address("2001:db8:2ff::2")
NODE = IPv6Network("2001:db8:200:1::/64")
V4S: tuple[IPNetwork, ...] = tuple(ip_network(f"203.0.113.{i}/32") for i in range(4))
V6S: tuple[IPNetwork, ...] = tuple(ip_network(f"2001:db8:2fe::{i + 1}/128") for i in range(4))
EPOCH = 1_796_349_600.0  # 2026-12-04T02:00:00Z, the wall clock at core time 0
PEER = "2001:db8:2ff::1"


def wall(t: float) -> float:
    return EPOCH + t


def core(*checks: CheckSpec, vips: tuple[IPNetwork, ...] = V4S + V6S) -> Announcer:
    cfg = CoreConfig(
        node_prefix=NODE,
        vips=vips,
        next_hop=NH,
        checks=checks,
        drain_timeout=30.0,
        drain_med=1000,
        floor=0,
        floor_retry=5.0,
    )
    return Announcer(config=cfg, now=0.0)


def converge(a: Announcer, sync: RouteSync) -> None:
    for op in sync.plan(a.desired()):
        sync.acked(op)


def doc(a: Announcer, sync: RouteSync, **kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "node": "edge1",
        "pid": 42,
        "core": a,
        "sync": sync,
        "peer": PEER,
        "carries": frozenset({4, 6}),
        "wall": wall,
    }
    return node_status(**(values | kw))


def groups(d: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    return [(g["kind"], g["family"], g["state"], g["count"]) for g in d["route_groups"]]


def test_healthy_node_groups_its_routes() -> None:
    a, sync = core(), RouteSync()
    converge(a, sync)
    d = doc(a, sync, session_since=EPOCH + 5)
    assert groups(d) == [
        ("node", "ipv6", "announced", 1),
        ("vip", "ipv4", "announced", 4),
        ("vip", "ipv6", "announced", 4),
    ]
    assert d["route_groups"][1]["reason"] == "no checks"
    assert d["session"]["since"] == "2026-12-04T02:00:05.000Z"
    text = format_status(parse_status(json.dumps(d)), running=True, now=EPOCH + 65)
    assert "session    up with 2001:db8:2ff::1 for 1 min 0 s (since 2026-12-04T02:00:05.000Z)" in (
        text
    )
    assert "routes     4 ipv4 VIPs announced: no checks" in text.splitlines()


def test_a_failing_check_withdraws_with_its_name_and_detail() -> None:
    a, sync = core(CheckSpec(name="edge", interval=1, fast_interval=1, timeout=1, rise=1,
                             fall=1, severity=Severity.BROKEN)), RouteSync()  # fmt: skip
    a.handle_timer(0.0)
    [run] = [e for e in iter(a.next_event, None) if hasattr(e, "run_id")]
    a.check_result(run.run_id, False, 0.5, "HTTP 503")  # type: ignore[attr-defined]
    converge(a, sync)
    d = doc(a, sync)
    [vip4] = [g for g in d["route_groups"] if g["family"] == "ipv4"]
    assert (vip4["state"], vip4["cause"]) == ("withdrawn", "check-failing")
    assert vip4["reason"] == "broken check failing: edge (HTTP 503)"
    lines = format_status(d, running=True, now=EPOCH + 1).splitlines()
    assert "routes     4 ipv4 VIPs withdrawn: broken check failing: edge (HTTP 503)" in lines
    assert "routes     node prefix 2001:db8:200:1::/64 announced: the node's own /64:" in (
        " ".join(lines)
    )


def test_drain_says_when_the_withdrawal_comes() -> None:
    a, sync = core(), RouteSync()
    a.drain(10.0)
    converge(a, sync)
    d = doc(a, sync)
    [vip4] = [g for g in d["route_groups"] if g["family"] == "ipv4"]
    assert (vip4["state"], vip4["cause"]) == ("announced", "draining")
    assert vip4["until"] == "2026-12-04T02:00:40.000Z"  # 10 + drain_timeout 30
    text = format_status(d, running=True, now=wall(28.0))
    assert "withdrawal at 2026-12-04T02:00:40.000Z (in 12 s)" in text


def test_routes_not_acknowledged_are_pending_and_split_from_the_rest() -> None:
    a, sync = core(), RouteSync()
    ops = sync.plan(a.desired())
    for op in ops[:2]:  # 203.0.113.0 and .1 acknowledged, the rest in flight
        sync.acked(op)
    d = doc(a, sync)
    assert ("vip", "ipv4", "announced", 2) in groups(d)
    assert ("vip", "ipv4", "pending", 2) in groups(d)
    [pending] = [g for g in d["route_groups"] if g["state"] == "pending" and g["family"] == "ipv4"]
    assert pending["reason"] == "no checks; waiting for ExaBGP to acknowledge"
    down = doc(a, sync, peer=None)
    assert ("vip", "ipv4", "pending", 4) in groups(down)
    assert "BGP session down" in down["problems"]


def test_refused_family_and_each_route() -> None:
    a, sync = core(), RouteSync()
    a.negotiated(0.0, frozenset({6}))
    converge(a, sync)
    d = doc(a, sync, carries=frozenset({6}))
    [vip4] = [g for g in d["route_groups"] if g["family"] == "ipv4"]
    assert (vip4["state"], vip4["cause"]) == ("refused", "family")
    each = route_list(d)
    assert len(each) == 1 + 4 + 4
    assert each[1] == {
        "kind": "vip",
        "family": "ipv4",
        "state": "refused",
        "cause": "family",
        "reason": vip4["reason"],
        "until": None,
        "prefix": "203.0.113.0/32",
    }
    text = format_status(d, running=True, now=EPOCH, each=True)
    assert sum(line.startswith("route      ") for line in text.splitlines()) == 9
    assert "route      203.0.113.3/32  refused: the BGP session did not negotiate" in text


def test_a_thousand_vips_stay_three_lines() -> None:
    v4 = tuple(IPv4Network(f"198.51.{i // 256}.{i % 256}/32") for i in range(512))
    v6 = tuple(IPv6Network(f"2001:db8:ffff::{i:x}/128") for i in range(1, 513))
    a, sync = core(vips=v4 + v6), RouteSync()
    converge(a, sync)
    text = format_status(doc(a, sync), running=True, now=EPOCH)
    routes = [line for line in text.splitlines() if line.startswith("routes ")]
    assert routes[1:] == [
        "routes     512 ipv4 VIPs announced: no checks",
        "routes     512 ipv6 VIPs announced: no checks",
    ]


def test_changes_are_a_bounded_ring_oldest_first() -> None:
    changes = Changes()
    for i in range(CHANGES_KEPT + 5):
        changes.add(EPOCH + i, f"change {i}")
    kept = changes.as_list()
    assert len(kept) == CHANGES_KEPT
    assert kept[0] == {"at": "2026-12-04T02:00:05.000Z", "what": "change 5"}
    assert changes.seq == CHANGES_KEPT + 5
    a, sync = core(), RouteSync()
    d = doc(a, sync, changes=changes)
    assert d["changes"] == kept
    text = format_status(d, running=True, now=EPOCH)
    assert "change     2026-12-04T02:00:24.000Z  change 24" in text


def test_negotiated_capabilities_are_shown_as_exabgp_names_them() -> None:
    a, sync = core(), RouteSync()
    caps = {
        "families": ["ipv4 unicast", "ipv6 unicast"],
        "nexthop": ["ipv4 unicast ipv6"],
        "hold_time": 9,
        "asn4": True,
        "refresh": "enhanced",
        "message_size": 65535,
    }
    d = doc(a, sync, negotiated=caps)
    assert d["session"]["negotiated"] == caps
    assert (
        "negotiated ipv4 unicast, ipv6 unicast; next hop ipv4 unicast ipv6; hold time 9 s;"
        " asn4 yes; route refresh enhanced"
    ) in format_status(d, running=True, now=EPOCH).splitlines()


def test_the_document_holds_no_now() -> None:
    """An idle node must not rewrite its status: the document is the same later."""
    a, sync = core(), RouteSync()
    converge(a, sync)
    a.handle_timer(100.0)
    assert doc(a, sync) == doc(a, sync)
    before = doc(a, sync)
    a.handle_timer(200.0)
    assert doc(a, sync) == before


def test_reader_refuses_foreign_and_old_files() -> None:
    a, sync = core(), RouteSync()
    good = json.dumps(doc(a, sync))
    assert parse_status(good)["node"] == "edge1"
    with pytest.raises(StatusError, match="not JSON"):
        parse_status(good[: len(good) // 2])  # half-written
    with pytest.raises(StatusError, match=r"not a sixpod\.announcer-status/2"):
        parse_status('{"schema": "something/else"}')
    with pytest.raises(StatusError, match="another sixpod version"):
        parse_status(good.replace("announcer-status/2", "announcer-status/1"))
    with pytest.raises(StatusError, match="'route_groups'"):
        parse_status(good.replace('"route_groups"', '"groups"'))


@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_reader_garbage_in_only_status_error_out(text: str) -> None:
    with contextlib.suppress(StatusError):
        parse_status(text)


def test_stale_routes_known_to_the_sync_are_not_listed_twice() -> None:
    a, sync = core(), RouteSync()
    sync.acked(Announce(Route(IPv4Network("192.0.2.99/32"), NH)))  # an old VIP (ledger)
    converge(a, sync)
    every = [r["prefix"] for r in route_list(doc(a, sync))]
    assert len(every) == len(set(every)) == 9
