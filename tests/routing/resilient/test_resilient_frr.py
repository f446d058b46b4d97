"""The FRR codec of the resilient-hashing helper, on captured and synthetic JSON."""

from __future__ import annotations

import json
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resilientkit import (
    JSON,
    V4,
    V6,
    fixture,
    frr_view,
    nodes,
)
from sixpod.routing.resilient.errors import ParseError
from sixpod.routing.resilient.frr import decode_frr_routes, format_frr_routes, parse_frr_routes
from sixpod.routing.resilient.model import (
    FrrView,
    Member,
)


def test_captured_frr_json_three_paths() -> None:
    view = frr_view("3paths")
    assert view.paths == {V4: nodes(1, 2, 3), V6: nodes(1, 2, 3)}
    assert view.unmirrored == {}


def test_captured_frr_json_after_a_node_left() -> None:
    assert frr_view("2paths").paths == {V4: nodes(1, 2), V6: nodes(1, 2)}


def test_only_configured_vips_are_read() -> None:
    other = IPv6Network("2001:db8:f::99/128")
    view = parse_frr_routes(
        fixture("frr84-bgp-3paths-ipv4.json"), fixture("frr84-bgp-3paths-ipv6.json"), [other]
    )
    assert view.paths == {other: frozenset()}


def test_format_round_trips_and_has_the_captured_shape() -> None:
    paths = {V4: nodes(1, 2, 3), V6: nodes(2)}
    text4, text6 = format_frr_routes(paths, ifindex={"swp1": 2, "swp2": 3, "swp3": 4})
    assert parse_frr_routes(text4, text6, [V4, V6]).paths == paths
    captured = json.loads(fixture("frr84-bgp-3paths-ipv4.json"))["203.0.113.10/32"][0]
    synthetic = json.loads(text4)["203.0.113.10/32"][0]
    assert set(synthetic) <= set(captured)
    assert set(synthetic["nexthops"][0]) <= set(captured["nexthops"][0])
    # the captured document formats back to itself, as far as the helper reads it
    view = frr_view("3paths")
    assert parse_frr_routes(*format_frr_routes(view.paths), [V4, V6]) == view


def _entry(*hops: dict[str, Any], selected: bool = True) -> dict[str, Any]:
    return {"prefix": "203.0.113.10/32", "selected": selected, "nexthops": list(hops)}


def _hop(n: int, **extra: Any) -> dict[str, Any]:
    return {"ip": f"2001:db8:ff:{n}::2", "afi": "ipv6", "interfaceName": f"swp{n}"} | extra


def _decode4(*entries: dict[str, Any]) -> FrrView:
    return decode_frr_routes({"203.0.113.10/32": list(entries)}, {}, [V4])


def test_selected_entry_and_active_next_hops_only() -> None:
    view = _decode4(
        _entry(_hop(5, active=True), selected=False),
        _entry(_hop(1, active=True), _hop(2), _hop(3, active=True, duplicate=True)),
    )
    assert view.paths[V4] == nodes(1)


def test_no_selected_entry_means_no_path() -> None:
    assert _decode4(_entry(_hop(1, active=True), selected=False)).paths[V4] == frozenset()


def test_recursive_next_hops_use_their_resolvers() -> None:
    view = _decode4(
        _entry(
            {"ip": "2001:db8:aa::1", "afi": "ipv6", "active": True, "recursive": True},
            _hop(1, resolver=True, active=True),
            {"interfaceName": "swp2", "resolver": True, "directlyConnected": True},
            {"ip": "2001:db8:aa::2", "afi": "ipv6", "recursive": True},
            _hop(4, resolver=True),
            _hop(3, active=True),
        )
    )
    assert view.paths[V4] == nodes(1, 3) | {Member(IPv6Address("2001:db8:aa::1"), "swp2")}


@pytest.mark.parametrize(
    ("hop", "reason"),
    [
        ({"ip": "198.51.100.1", "afi": "ipv4", "interfaceName": "swp1"}, "IPv4 gateway"),
        ({"unreachable": True, "blackhole": True}, "blackhole"),
        ({"directlyConnected": True, "interfaceName": "swp1"}, "without a gateway"),
        (_hop(2, interfaceName="a b"), "interface name 'a b'"),
    ],
)
def test_unmirrorable_next_hops_leave_the_vip_to_the_main_table(
    hop: dict[str, Any], reason: str
) -> None:
    view = _decode4(_entry(_hop(1, active=True), hop | {"active": True}))
    assert view.paths[V4] == frozenset()
    assert reason in view.unmirrored[V4]


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"203.0.113.10/32": {}},
        {"203.0.113.10/32": ["x"]},
        {"203.0.113.10/32": [{"selected": "yes"}]},
        {"203.0.113.10/32": [{"selected": True, "nexthops": {}}]},
        {"203.0.113.10/32": [{"selected": True, "nexthops": [{"active": 1}]}]},
        {"203.0.113.10/32": [{"selected": True, "nexthops": [_hop(1, active=True, ip=7)]}]},
        {"203.0.113.10/32": [{"selected": True, "nexthops": [_hop(1, active=True, ip="x")]}]},
        {"203.0.113.10/32": [{"selected": True, "nexthops": [_hop(1, interfaceName=3)]}]},
    ],
)
def test_malformed_frr_json_is_our_error(doc: object) -> None:
    with pytest.raises(ParseError):
        decode_frr_routes(doc, {}, [V4])


def test_frr_text_that_is_not_json() -> None:
    with pytest.raises(ParseError, match="IPv6 document is not JSON"):
        parse_frr_routes("{}", "% Unknown command", [V4])


HOPISH = st.fixed_dictionaries(
    {},
    optional={
        "ip": st.sampled_from(["2001:db8:ff:1::2", "198.51.100.1", "fe80::1", "zz", 3]),
        "interfaceName": st.sampled_from(["swp1", "eth 0", "", "x" * 20, None]),
        "active": st.booleans() | st.none(),
        "recursive": st.booleans(),
        "resolver": st.booleans(),
        "duplicate": st.booleans(),
        "unreachable": st.booleans(),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    doc=JSON
    | st.fixed_dictionaries(
        {
            "203.0.113.10/32": st.lists(
                st.fixed_dictionaries(
                    {"selected": st.booleans() | JSON, "nexthops": st.lists(HOPISH) | JSON}
                ),
                max_size=3,
            )
        }
    )
)
def test_garbage_frr_json_raises_only_our_error(doc: object) -> None:
    try:
        view = decode_frr_routes(doc, {}, [V4])
    except ParseError:
        return
    assert all(isinstance(m, Member) for m in view.paths[V4])
