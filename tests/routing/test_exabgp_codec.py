"""ExaBGP text API codec: commands out, acks and JSON events in (lines captured from 5.0.15)."""

from __future__ import annotations

import contextlib
from ipaddress import IPv6Address, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sixpod.routing.events import GRACEFUL_SHUTDOWN, Announce, Route, Withdraw
from sixpod.routing.exabgp import (
    Acked,
    ExaBGPCodec,
    ExaBGPProtocolError,
    MalformedNegotiated,
    Negotiated,
    SessionDown,
    SessionUp,
    Shutdown,
    command,
)

NH = IPv6Address("2001:db8:2ff::2")
UP = (
    '{ "exabgp": "5.0.0", "time": 1795691137.0, "host" : "vm", "pid" : 9637, "ppid" : 9601, '
    '"counter": 5, "type": "state", "neighbor": { "address": { "local": "2001:db8:2ff::2", '
    '"peer": "2001:db8:2ff::1" }, "asn": { "local": 64512, "peer": 64513 }, '
    '"router-id": "2.255.0.0" , "state": "up" } }'
)
DOWN = UP.replace('"state": "up"', '"state": "down", "reason": "closing connection"')
CONNECTED = UP.replace('"state": "up"', '"state": "connected"')
# Captured from ExaBGP 5.0.15 against FRR 8.4 with `capability extended-nexthop`.
NEGOTIATED = (
    '{ "exabgp": "5.0.0", "time": 1796347074.4551077, "host" : "vm", "pid" : 9458, '
    '"ppid" : 9101, "counter": 2, "type": "negotiated", "neighbor": { "address": { "local": '
    '"2001:db8:2ff::2", "peer": "2001:db8:2ff::1" }, "asn": { "local": 64512, "peer": 64513 }, '
    '"router-id": "2.255.0.0" , "negotiated": { "message_size": 65535, "hold_time": 9, '
    '"asn4": true, "multisession": false, "operational": false, "refresh": "enhanced", '
    '"families": ["ipv4 unicast", "ipv6 unicast"], "nexthop": ["ipv4 unicast ipv6"], '
    '"add_path": {"send": [], "receive": []} }  } }'
)
# The same FRR with `no neighbor NODES capability extended-nexthop`.
NEGOTIATED_NO_ENHE = NEGOTIATED.replace('["ipv4 unicast ipv6"]', "[]")
SHUTDOWN = (
    '{ "exabgp": "5.0.0", "time": 1795691090.8, "host" : "vm", "pid" : 7964, "ppid" : 7929, '
    '"type": "notification", "notification": "shutdown" }'
)


def route(prefix: str, **kw: object) -> Route:
    return Route(ip_network(prefix), NH, **kw)  # type: ignore[arg-type]


def test_commands() -> None:
    assert (
        command(Announce(route("203.0.113.0/32")))
        == "announce route 203.0.113.0/32 next-hop 2001:db8:2ff::2"
    )
    assert (
        command(Announce(route("2001:db8:2fe::1/128", med=1000, communities=(GRACEFUL_SHUTDOWN,))))
        == "announce route 2001:db8:2fe::1/128 next-hop 2001:db8:2ff::2 med 1000 "
        "community [ 65535:0 ]"
    )
    assert (
        command(Withdraw(route("2001:db8:200:1::/64", med=5)))
        == "withdraw route 2001:db8:200:1::/64 next-hop 2001:db8:2ff::2"
    )


def test_acks_in_order_and_events_interleaved() -> None:
    codec = ExaBGPCodec()
    a, b = Announce(route("203.0.113.0/32")), Withdraw(route("203.0.113.1/32"))
    assert codec.send(a).endswith(b"\n")
    codec.send(b)
    assert codec.receive_line(CONNECTED + "\n") is None
    assert codec.receive_line("done\n") == Acked(a, True)
    assert codec.receive_line(UP) == SessionUp("2001:db8:2ff::1")
    assert codec.receive_line("error") == Acked(b, False)
    assert codec.receive_line(DOWN) == SessionDown("2001:db8:2ff::1", "closing connection")
    assert codec.receive_line(SHUTDOWN) == Shutdown()
    assert codec.in_flight == 0


def test_ack_with_nothing_in_flight() -> None:
    with pytest.raises(ExaBGPProtocolError, match="nothing in flight"):
        ExaBGPCodec().receive_line("done")


@pytest.mark.parametrize(
    "line", ["bogus", "{not json", "[1, 2", '{"type": "state", "neighbor": "x"}']
)
def test_garbage_is_ignored_or_our_error(line: str) -> None:
    with contextlib.suppress(ExaBGPProtocolError):
        assert ExaBGPCodec().receive_line(line) is None


@given(st.text())
def test_arbitrary_lines_raise_only_our_error(line: str) -> None:
    with contextlib.suppress(ExaBGPProtocolError):
        ExaBGPCodec().receive_line(line)


def test_reset_returns_unacked() -> None:
    codec = ExaBGPCodec()
    a = Announce(route("203.0.113.0/32"))
    codec.send(a)
    assert codec.reset() == [a]
    assert codec.in_flight == 0


def test_negotiated_capabilities() -> None:
    codec = ExaBGPCodec()
    both = codec.receive_line(NEGOTIATED)
    assert both == Negotiated(
        "2001:db8:2ff::1",
        frozenset({"ipv4 unicast", "ipv6 unicast"}),
        frozenset({"ipv4 unicast ipv6"}),
        hold_time=9,
        asn4=True,
        refresh="enhanced",
        message_size=65535,
    )
    assert isinstance(both, Negotiated)
    assert both.carries == {4, 6}
    assert both.capabilities() == {  # for `sixpod node status`, as ExaBGP names them
        "families": ["ipv4 unicast", "ipv6 unicast"],
        "nexthop": ["ipv4 unicast ipv6"],
        "hold_time": 9,
        "asn4": True,
        "refresh": "enhanced",
        "message_size": 65535,
    }
    # Fields of another ExaBGP version's shape are left out, not an error.
    odd = NEGOTIATED.replace('"hold_time": 9', '"hold_time": "nine"').replace(
        '"asn4": true', '"asn4": 1'
    )
    other = codec.receive_line(odd)
    assert isinstance(other, Negotiated)
    assert (other.hold_time, other.asn4, other.carries) == (None, None, {4, 6})
    plain = codec.receive_line(NEGOTIATED_NO_ENHE)
    assert isinstance(plain, Negotiated)
    assert plain.carries == {6}  # IPv4 routes have only the node's IPv6 next hop
    v6_only = NEGOTIATED.replace('["ipv4 unicast", "ipv6 unicast"]', '["ipv6 unicast"]')
    assert codec.receive_line(v6_only).carries == {6}  # type: ignore[union-attr]
    v4_only = NEGOTIATED.replace('["ipv4 unicast", "ipv6 unicast"]', '["ipv4 unicast"]')
    assert codec.receive_line(v4_only).carries == {4}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "line",
    [
        NEGOTIATED.replace('"negotiated": {', '"negotiated": [{').replace("}  } }", "}]  } }"),
        NEGOTIATED.replace('"families": ["ipv4 unicast", "ipv6 unicast"]', '"families": "ipv4"'),
        NEGOTIATED.replace('"nexthop": ["ipv4 unicast ipv6"]', '"nexthop": [4]'),
        NEGOTIATED.replace('"nexthop": ["ipv4 unicast ipv6"]', '"nexthop": "ipv4 unicast ipv6"'),
        '{"type": "negotiated", "neighbor": []}',
    ],
)
def test_malformed_negotiated_is_our_error(line: str) -> None:
    """Told apart from other protocol errors: the coming session's families are unknown."""
    with pytest.raises(MalformedNegotiated, match="negotiated") as e:
        ExaBGPCodec().receive_line(line)
    assert isinstance(e.value, ExaBGPProtocolError)
    assert e.value.peer in ("2001:db8:2ff::1", "")


def test_json_nested_too_deep_is_our_error() -> None:
    with pytest.raises(ExaBGPProtocolError, match="nested too deep"):
        ExaBGPCodec().receive_line('{"a": ' + "[" * 100_000)
