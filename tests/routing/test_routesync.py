"""Route sync: from what BGP has to what the announcer wants, announce first, no gaps."""

from __future__ import annotations

from collections import deque
from ipaddress import IPv4Network, IPv6Address, IPv6Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sixpod.addr import IPNetwork
from sixpod.routing.events import GRACEFUL_SHUTDOWN, Announce, Route, RouteOp, Withdraw
from sixpod.routing.routesync import RouteSync

NH = IPv6Address("2001:db8:0:1::10")
P4 = IPv4Network("192.0.2.10/32")
P4B = IPv4Network("192.0.2.9/32")
P6 = IPv6Network("2001:db8:ffff::10/128")
NODE = IPv6Network("2001:db8:100:1::/64")


def r(prefix: IPNetwork, med: int | None = None) -> Route:
    return Route(prefix, NH, med, (GRACEFUL_SHUTDOWN,) if med is not None else ())


def apply_all(sync: RouteSync, ops: list[RouteOp]) -> None:
    for op in ops:
        sync.acked(op)


def synced(routes: set[Route]) -> RouteSync:
    sync = RouteSync()
    apply_all(sync, sync.plan(routes))
    assert sync.converged(routes)
    return sync


def test_first_plan_announces_everything_sorted_ipv4_first() -> None:
    sync = RouteSync()
    ops = sync.plan({r(P6), r(NODE), r(P4), r(P4B)})
    assert ops == [Announce(r(P4B)), Announce(r(P4)), Announce(r(NODE)), Announce(r(P6))]
    assert sync.pending == tuple(ops)
    assert sync.announced == frozenset()
    apply_all(sync, ops)
    assert sync.announced == {r(P4), r(P4B), r(NODE), r(P6)}
    assert sync.pending == ()


def test_announce_before_withdraw() -> None:
    sync = synced({r(P4), r(NODE)})
    ops = sync.plan({r(P6), r(NODE)})
    assert ops == [Announce(r(P6)), Withdraw(r(P4))]


def test_changed_attributes_are_reannounced_not_withdrawn() -> None:
    sync = synced({r(P4), r(P6), r(NODE)})
    ops = sync.plan({r(P4, 1000), r(P6, 1000), r(NODE)})
    assert ops == [Announce(r(P4, 1000)), Announce(r(P6, 1000))]
    apply_all(sync, ops)
    assert sync.plan({r(P4), r(P6), r(NODE)}) == [Announce(r(P4)), Announce(r(P6))]


def test_converged_plan_is_empty() -> None:
    sync = synced({r(P4), r(NODE)})
    assert sync.plan({r(P4), r(NODE)}) == []


def test_pending_operations_are_not_planned_again() -> None:
    sync = RouteSync()
    first = sync.plan({r(P4)})
    assert sync.plan({r(P4)}) == []
    assert sync.plan({r(P4, 7)}) == [Announce(r(P4, 7))]  # superseded while in flight
    sync.acked(first[0])
    assert not sync.converged({r(P4, 7)})
    sync.acked(Announce(r(P4, 7)))
    assert sync.converged({r(P4, 7)})


def test_withdraw_in_flight_then_wanted_again() -> None:
    sync = synced({r(P4)})
    (withdraw,) = sync.plan(set())
    assert withdraw == Withdraw(r(P4))
    assert sync.plan(set()) == []
    (announce,) = sync.plan({r(P4)})
    assert announce == Announce(r(P4))
    sync.acked(withdraw)
    sync.acked(announce)
    assert sync.converged({r(P4)})


def test_failed_operation_is_retried() -> None:
    sync = RouteSync()
    (op,) = sync.plan({r(P4)})
    sync.failed(op)
    assert sync.pending == ()
    assert sync.plan({r(P4)}) == [op]
    sync.acked(op)
    (withdraw,) = sync.plan(set())
    sync.failed(withdraw)
    assert sync.announced == {r(P4)}
    assert sync.plan(set()) == [withdraw]


def test_reset_reannounces_desired_and_withdraws_what_bgp_may_still_have() -> None:
    sync = synced({r(P4), r(P6), r(NODE)})
    sync.reset()
    assert sync.announced == frozenset()
    ops = sync.plan({r(P4), r(NODE)})
    assert ops == [Announce(r(P4)), Announce(r(NODE)), Withdraw(r(P6))]
    apply_all(sync, ops)
    assert sync.converged({r(P4), r(NODE)})


def test_reset_forgets_pending_and_a_late_ack_stays_unsure() -> None:
    sync = RouteSync()
    (op,) = sync.plan({r(P4)})
    sync.reset()
    assert sync.pending == ()
    sync.acked(op)  # from before the reset
    assert sync.announced == frozenset()
    assert sync.plan({r(P4)}) == [op]  # announced again on the new session
    assert sync.plan(set()) == [Withdraw(r(P4))]


def test_two_routes_for_one_prefix_are_rejected() -> None:
    with pytest.raises(ValueError, match="two routes"):
        RouteSync().plan({r(P4), r(P4, 1000)})


# --- Hypothesis ----------------------------------------------------------------------------

PREFIXES: list[IPNetwork] = [
    P4,
    P4B,
    P6,
    NODE,
    IPv4Network("198.51.100.1/32"),
    IPv6Network("2001:db8:ffff::11/128"),
]
route_sets = st.dictionaries(st.sampled_from(PREFIXES), st.sampled_from([None, 0, 1000])).map(
    lambda d: {r(p, med) for p, med in d.items()}
)


def check_plan(ops: list[RouteOp], desired: set[Route]) -> None:
    wanted = {route.prefix for route in desired}
    announces = [op for op in ops if isinstance(op, Announce)]
    withdraws = [op for op in ops if isinstance(op, Withdraw)]
    assert ops == announces + withdraws  # announce first
    for group in (announces, withdraws):
        keys = [op.route.sort_key for op in group]
        assert keys == sorted(keys)
        assert len({op.route.prefix for op in group}) == len(group)
    assert all(op.route in desired for op in announces)
    assert not any(op.route.prefix in wanted for op in withdraws)  # never a gap


@given(start=route_sets, desired=route_sets)
def test_converges_from_any_announced_set_to_any_desired_set(
    start: set[Route], desired: set[Route]
) -> None:
    sync = synced(start)
    ops = sync.plan(desired)
    check_plan(ops, desired)
    unchanged = start & desired
    assert not any(op.route in unchanged for op in ops)  # nothing sent needlessly
    apply_all(sync, ops)
    assert sync.converged(desired)
    assert sync.announced == desired
    assert sync.plan(desired) == []


@settings(max_examples=300)
@given(
    start=route_sets,
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("desire"), route_sets),
            st.sampled_from([("ack",), ("fail",), ("reset",), ("plan",)]),
        ),
        max_size=30,
    ),
    final=route_sets,
)
def test_fake_exabgp_converges_after_any_interleaving(
    start: set[Route], steps: list[tuple[object, ...]], final: set[Route]
) -> None:
    """A fake ExaBGP applies operations in order and keeps its routes across a reset."""
    bgp: dict[IPNetwork, Route] = {}
    wire: deque[RouteOp] = deque()
    sync = RouteSync()
    desired = start

    def execute(op: RouteOp, ok: bool) -> None:
        if ok:
            if isinstance(op, Announce):
                bgp[op.route.prefix] = op.route
            else:
                bgp.pop(op.route.prefix, None)
            sync.acked(op)
        else:
            sync.failed(op)

    for step in steps:
        if step[0] == "desire":
            desired = step[1]  # type: ignore[assignment]
        elif step[0] == "plan":
            ops = sync.plan(desired)
            check_plan(ops, desired)
            wire.extend(ops)
        elif step[0] in ("ack", "fail") and wire:
            execute(wire.popleft(), step[0] == "ack")
        elif step[0] == "reset":
            sync.reset()
    while wire:  # the rest of the wire is delivered
        execute(wire.popleft(), True)
    ops = sync.plan(final)  # one round is enough once the wire is empty
    check_plan(ops, final)
    for op in ops:
        execute(op, True)
    assert sync.plan(final) == []
    assert sync.converged(final)
    assert bgp == {route.prefix: route for route in final}
