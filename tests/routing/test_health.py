"""The announcer core: checks, node states, drain, floor, session; time is always an argument."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Address, IPv6Network
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from sixpod.addr import IPNetwork
from sixpod.routing.events import (
    GRACEFUL_SHUTDOWN,
    AskFloor,
    Cause,
    CheckChanged,
    CheckState,
    Event,
    JoinFloor,
    LeaveFloor,
    NodeState,
    Resync,
    Route,
    RouteState,
    RunCheck,
    StateChanged,
)
from sixpod.routing.health import Announcer, CheckSpec, CoreConfig, Severity

NH = IPv6Address("2001:db8:0:1::10")
NODE = IPv6Network("2001:db8:100:1::/64")
V4 = IPv4Network("192.0.2.10/32")
V6 = IPv6Network("2001:db8:ffff::10/128")
VIPS: tuple[IPNetwork, ...] = (V4, V6)
NODE_ROUTE = Route(NODE, NH)
VIP_ROUTES = frozenset({Route(V4, NH), Route(V6, NH)})
DRAIN_ROUTES = frozenset(Route(v, NH, 1000, (GRACEFUL_SHUTDOWN,)) for v in VIPS)


def spec(name: str = "http", **kw: Any) -> CheckSpec:
    values: dict[str, Any] = {
        "interval": 2.0,
        "fast_interval": 0.5,
        "timeout": 1.0,
        "rise": 2,
        "fall": 3,
        "severity": Severity.BROKEN,
    }
    values.update(kw)
    return CheckSpec(name=name, **values)


def config(*checks: CheckSpec, **kw: Any) -> CoreConfig:
    values: dict[str, Any] = {
        "node_prefix": NODE,
        "vips": VIPS,
        "next_hop": NH,
        "checks": checks,
        "drain_timeout": 30.0,
        "drain_med": 1000,
        "floor": 0,
        "floor_retry": 5.0,
    }
    values.update(kw)
    return CoreConfig(**values)


def events(a: Announcer) -> list[Event]:
    out = []
    while (event := a.next_event()) is not None:
        out.append(event)
    return out


def kinds(evs: Iterable[Event]) -> list[str]:
    return [type(e).__name__ for e in evs]


def status(a: Announcer, name: str = "http") -> Any:
    return next(c for c in a.checks if c.name == name)


class Driver:
    """Runs the core like an adapter would: fires timers, answers checks from a script."""

    def __init__(self, cfg: CoreConfig, now: float = 100.0) -> None:
        self.a = Announcer(config=cfg, now=now)
        self.now = now
        self.results: dict[str, bool] = {c.name: True for c in cfg.checks}
        self.log: list[Event] = events(self.a)

    def pump(self) -> list[Event]:
        out = events(self.a)
        self.log += out
        for event in out:
            if isinstance(event, RunCheck) and event.name in self.results:
                self.a.check_result(event.run_id, self.results[event.name], self.now, "scripted")
                out += self.pump()
        return out

    def until(self, t: float) -> list[Event]:
        """Fire every timer up to ``t``, answering checks at once."""
        out = []
        while (due := self.a.next_timer()) is not None and due <= t:
            self.now = max(self.now, due)
            self.a.handle_timer(self.now)
            out += self.pump()
        self.now = t
        return out

    def settle(self, **results: bool) -> list[Event]:
        """Set check results and run long enough for every rise/fall to complete."""
        self.results.update(results)
        return self.until(self.now + 60)

    def state(self) -> NodeState:
        return self.a.state

    def do(self, verb: str, *args: Any) -> list[Event]:
        getattr(self.a, verb)(*args, self.now)
        return self.pump()


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", " http"),
        ("interval", 0),
        ("interval", float("nan")),
        ("fast_interval", -1),
        ("fast_interval", 3.0),  # more than interval
        ("timeout", 0),
        ("rise", 0),
        ("rise", 1.5),
        ("fall", True),
        ("severity", "fatal"),
    ],
)
def test_check_spec_rejects_bad_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        spec(**{field: value})


def test_check_spec_converts_severity_string() -> None:
    assert spec(severity="degraded").severity is Severity.DEGRADED


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("node_prefix", IPv4Network("10.0.0.0/24")),
        ("vips", (IPv4Network("192.0.2.0/24"),)),
        ("vips", (V4, V4)),
        ("vips", [V4]),
        ("next_hop", IPv6Address("fe80::1")),
        ("checks", (spec(), spec())),
        ("drain_timeout", -1),
        ("drain_med", 2**32),
        ("drain_med", True),
        ("floor", -1),
        ("floor_retry", 0),
    ],
)
def test_core_config_rejects_bad_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        config(**{field: value})


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"med": -1}, "med"),
        ({"med": 2**32}, "med"),
        ({"communities": ("65536:0",)}, "communities"),
        ({"communities": ("01:2",)}, "communities"),
        ({"communities": ["65535:0"]}, "communities"),
        ({"next_hop": IPv6Network("2001:db8::/64")}, "next_hop"),
    ],
)
def test_route_rejects_bad_field(kw: dict[str, Any], field: str) -> None:
    values: dict[str, Any] = {"prefix": V4, "next_hop": NH}
    values.update(kw)
    with pytest.raises(ValueError, match=field):
        Route(**values)


def test_now_must_be_finite() -> None:
    with pytest.raises(ValueError, match="now"):
        Announcer(config=config(), now=float("inf"))
    a = Announcer(config=config(), now=0.0)
    with pytest.raises(ValueError, match="now"):
        a.handle_timer(float("nan"))


# --- per-check rise/fall -------------------------------------------------------------------


def run(a: Announcer, now: float) -> RunCheck:
    a.handle_timer(now)
    (event,) = [e for e in events(a) if isinstance(e, RunCheck)]
    return event


def results(a: Announcer, outcomes: Iterable[bool], start: float = 0.0) -> float:
    """Run the single check once per outcome, each at its due time; returns the time."""
    now = start
    for ok in outcomes:
        due = a.next_timer()
        assert due is not None
        now = max(now, due)
        assert a.check_result(run(a, now).run_id, ok, now)
    return now


def test_check_rises_from_init_after_rise_passes() -> None:
    a = Announcer(config=config(spec(rise=2)), now=0.0)
    results(a, [True])
    assert status(a).state is CheckState.INIT
    assert status(a).passes == 1
    now = results(a, [True])
    assert status(a).state is CheckState.PASSING
    assert status(a).since == now
    changed = [e for e in events(a) if isinstance(e, CheckChanged)]
    assert changed == [CheckChanged("http", CheckState.INIT, CheckState.PASSING, now, "")]


def test_check_falls_from_init_after_fall_failures() -> None:
    a = Announcer(config=config(spec(fall=3)), now=0.0)
    results(a, [False, False])
    assert status(a).state is CheckState.INIT
    results(a, [False])
    assert status(a).state is CheckState.FAILING


def test_fall_needs_consecutive_failures() -> None:
    a = Announcer(config=config(spec(rise=1, fall=3)), now=0.0)
    results(a, [True, False, False, True, False, False])
    assert status(a).state is CheckState.PASSING
    assert status(a).failures == 2
    results(a, [False])
    assert status(a).state is CheckState.FAILING


def test_rise_needs_consecutive_passes() -> None:
    a = Announcer(config=config(spec(rise=3, fall=1)), now=0.0)
    results(a, [False, True, True, False, True, True])
    assert status(a).state is CheckState.FAILING
    results(a, [True])
    assert status(a).state is CheckState.PASSING


def test_fast_interval_while_transitioning() -> None:
    a = Announcer(config=config(spec(interval=2.0, fast_interval=0.5, rise=2, fall=2)), now=0.0)
    assert a.next_timer() == 0.0  # first run due at once
    now = results(a, [True])  # INIT, one pass: transitioning
    assert a.next_timer() == now + 0.5
    now = results(a, [True])  # PASSING now: normal interval
    assert a.next_timer() == now + 2.0
    now = results(a, [True])  # agrees with PASSING
    assert a.next_timer() == now + 2.0
    now = results(a, [False])  # disagrees: converge fast
    assert a.next_timer() == now + 0.5
    now = results(a, [True])  # back in agreement
    assert a.next_timer() == now + 2.0


def test_timeout_counts_as_failure_and_late_result_is_ignored() -> None:
    a = Announcer(config=config(spec(timeout=1.0, fall=1, rise=1)), now=0.0)
    first = run(a, 0.0)
    assert first.deadline == 1.0
    assert a.next_timer() == 1.0
    a.handle_timer(0.9)
    assert not [e for e in events(a) if isinstance(e, RunCheck)]  # one run at a time
    a.handle_timer(1.0)
    assert status(a).state is CheckState.FAILING
    assert "timed out" in status(a).detail
    assert not status(a).running
    assert a.check_result(first.run_id, True, 1.2) is False
    assert status(a).state is CheckState.FAILING
    assert a.next_timer() == 3.0  # failing now: the normal interval from the timeout
    second = run(a, 3.0)
    assert second.run_id != first.run_id
    assert a.check_result(second.run_id, True, 3.1) is True
    assert a.check_result(second.run_id, True, 3.2) is False  # answered already
    assert status(a).state is CheckState.PASSING


def test_unknown_run_id_is_ignored() -> None:
    a = Announcer(config=config(spec()), now=0.0)
    assert a.check_result(12345, True, 0.0) is False
    assert events(a) == []


def test_time_never_runs_backwards() -> None:
    a = Announcer(config=config(spec(rise=1)), now=10.0)
    event = run(a, 10.0)
    a.check_result(event.run_id, True, 5.0)
    assert status(a).since == 10.0
    assert a.next_timer() == 12.0


# --- node: INIT, health, /64 ---------------------------------------------------------------


def test_init_announces_node_prefix_but_not_vips() -> None:
    d = Driver(config(spec("a", rise=2), spec("b", rise=5)))
    assert d.state() is NodeState.INIT
    assert d.a.desired() == {NODE_ROUTE}
    d.until(d.now + 1.0)  # a is PASSING, b still INIT
    assert status(d.a, "a").state is CheckState.PASSING
    assert d.state() is NodeState.INIT
    assert d.a.desired() == {NODE_ROUTE}
    out = d.settle()
    assert d.state() is NodeState.UP
    assert d.a.desired() == {NODE_ROUTE} | VIP_ROUTES
    assert kinds(e for e in out if not isinstance(e, RunCheck | CheckChanged)) == [
        "JoinFloor",
        "StateChanged",
    ]


def test_no_checks_means_up_at_once() -> None:
    a = Announcer(config=config(), now=3.0)
    assert a.state is NodeState.UP
    assert events(a) == [
        JoinFloor(),
        StateChanged(NodeState.INIT, NodeState.UP, "start; no checks", 3.0),
    ]
    assert a.next_timer() is None
    assert a.desired() == {NODE_ROUTE} | VIP_ROUTES


def test_vips_follow_health_and_node_prefix_stays() -> None:
    d = Driver(config(spec(severity="broken")))
    d.settle()
    assert d.state() is NodeState.UP
    out = d.settle(http=False)
    assert d.state() is NodeState.DOWN
    assert d.a.desired() == {NODE_ROUTE}
    assert LeaveFloor() in out
    assert AskFloor() not in out
    changed = [e for e in out if isinstance(e, StateChanged)]
    assert [(e.old, e.new) for e in changed] == [(NodeState.UP, NodeState.DOWN)]
    assert "http" in changed[0].reason
    out = d.settle(http=True)
    assert d.state() is NodeState.UP
    assert JoinFloor() in out
    assert d.a.desired() == {NODE_ROUTE} | VIP_ROUTES


def test_non_edge_node_announces_only_its_prefix_and_never_uses_the_floor() -> None:
    d = Driver(config(spec(severity="degraded"), vips=(), floor=3))
    d.settle()
    assert d.state() is NodeState.UP
    assert d.a.desired() == {NODE_ROUTE}
    d.settle(http=False)
    assert d.state() is NodeState.DOWN
    assert not [e for e in d.log if isinstance(e, AskFloor | JoinFloor | LeaveFloor)]


def test_without_node_prefix_only_vips() -> None:
    d = Driver(config(spec(), node_prefix=None))
    d.settle()
    assert d.a.desired() == VIP_ROUTES


def test_broken_check_never_asks_the_floor() -> None:
    d = Driver(config(spec("core", severity="broken"), spec("lag", severity="degraded"), floor=2))
    d.settle()
    out = d.settle(core=False)
    assert d.state() is NodeState.DOWN
    assert AskFloor() not in out
    assert d.a.desired() == {NODE_ROUTE}


# --- safety floor --------------------------------------------------------------------------


def degraded_up(floor: int = 2) -> Driver:
    d = Driver(config(spec("core"), spec("lag", severity="degraded"), floor=floor))
    d.settle()
    assert d.state() is NodeState.UP
    return d


def test_degraded_with_floor_zero_withdraws_at_once() -> None:
    d = degraded_up(floor=0)
    out = d.settle(lag=False)
    assert d.state() is NodeState.DOWN
    assert AskFloor() not in out
    assert LeaveFloor() in out
    assert d.a.desired() == {NODE_ROUTE}


def test_degraded_asks_floor_and_withdraws_when_granted() -> None:
    d = degraded_up()
    d.results["lag"] = False
    out = d.until(d.now + 5.0)  # fall=3 at the fast interval; the ask is not yet retried
    assert out.count(AskFloor()) == 1
    assert d.state() is NodeState.UP  # keeps announcing while asking
    assert d.a.desired() == {NODE_ROUTE} | VIP_ROUTES
    assert d.a.floor_held is False  # asked, not answered yet
    out = d.do("floor_answer", True)
    assert d.state() is NodeState.DOWN
    assert d.a.desired() == {NODE_ROUTE}
    assert kinds(out) == ["LeaveFloor", "StateChanged"]
    assert isinstance(out[-1], StateChanged)
    assert "floor granted" in out[-1].reason
    assert d.a.floor_held is False
    out = d.settle(lag=True)
    assert d.state() is NodeState.UP
    assert JoinFloor() in out


def test_degraded_floor_denied_holds_and_asks_again() -> None:
    d = Driver(config(spec("lag", severity="degraded", fall=1), floor=2, floor_retry=5.0))
    d.settle()
    d.results["lag"] = False
    out = d.until(d.now + 2.0)
    assert out.count(AskFloor()) == 1
    assert d.a.floor_held is False  # asked, not answered yet
    d.do("floor_answer", False)
    assert d.a.floor_held is True
    assert d.state() is NodeState.UP
    assert d.a.desired() == {NODE_ROUTE} | VIP_ROUTES
    denied_at = d.now
    out = d.until(denied_at + 4.9)
    assert AskFloor() not in out
    out = d.until(denied_at + 5.0)
    assert out.count(AskFloor()) == 1
    d.do("floor_answer", True)
    assert d.state() is NodeState.DOWN
    assert d.a.floor_held is False


def test_unanswered_ask_counts_as_denied_and_is_repeated() -> None:
    d = Driver(config(spec("lag", severity="degraded", fall=1), floor=1, floor_retry=3.0))
    d.settle()
    d.results["lag"] = False
    d.until(d.now + 2.0)
    asked = [e for e in d.log if isinstance(e, AskFloor)]
    assert len(asked) == 1
    out = d.until(d.now + 3.0)
    assert AskFloor() in out
    assert d.a.floor_held is True
    assert d.state() is NodeState.UP


def test_recovery_while_asking_cancels_and_a_late_grant_rejoins() -> None:
    d = degraded_up()
    d.settle(lag=False)
    d.do("floor_answer", False)
    assert d.a.floor_held
    d.settle(lag=True)
    assert d.a.floor_held is False
    assert d.state() is NodeState.UP
    before = d.until(d.now + 60)
    assert AskFloor() not in before
    out = d.do("floor_answer", True)  # the adapter removed us: re-register
    assert out == [JoinFloor()]
    assert d.state() is NodeState.UP
    assert d.do("floor_answer", False) == []


def test_grant_while_withdrawn_is_ignored() -> None:
    d = degraded_up()
    d.settle(core=False)
    assert d.state() is NodeState.DOWN
    assert d.do("floor_answer", True) == []


def test_degraded_at_start_does_not_announce_nor_ask() -> None:
    d = Driver(config(spec("lag", severity="degraded"), floor=2))
    out = d.settle(lag=False)
    assert d.state() is NodeState.DOWN
    assert not [e for e in out if isinstance(e, AskFloor | JoinFloor)]
    assert d.a.desired() == {NODE_ROUTE}


def test_broken_while_floor_held_withdraws_and_stops_asking() -> None:
    d = degraded_up()
    d.settle(lag=False)
    d.do("floor_answer", False)
    out = d.settle(core=False)
    assert d.state() is NodeState.DOWN
    assert d.a.floor_held is False
    assert AskFloor() not in out


# --- drain ---------------------------------------------------------------------------------


def test_drain_is_two_steps_and_node_prefix_is_not_drained() -> None:
    d = Driver(config(spec(), drain_timeout=30.0))
    d.settle()
    t0 = d.now
    out = d.do("drain")
    assert d.state() is NodeState.DRAINING
    assert kinds(out) == ["StateChanged"]  # still announced: no LeaveFloor yet
    assert d.a.desired() == {NODE_ROUTE} | DRAIN_ROUTES
    due = d.a.next_timer()
    assert due is not None
    assert due <= t0 + 30.0
    d.until(t0 + 29.9)
    assert d.state() is NodeState.DRAINING
    out = d.until(t0 + 30.0)
    assert d.state() is NodeState.DRAINED
    assert d.a.desired() == {NODE_ROUTE}
    assert LeaveFloor() in out
    d.settle()
    assert d.state() is NodeState.DRAINED  # health does not end a drain


def test_undrain_while_draining_restores_without_floor_events() -> None:
    d = Driver(config(spec()))
    d.settle()
    d.do("drain")
    out = d.do("undrain")
    assert d.state() is NodeState.UP
    assert kinds(out) == ["StateChanged"]
    assert d.a.desired() == {NODE_ROUTE} | VIP_ROUTES
    d.until(d.now + 60)
    assert d.state() is NodeState.UP  # drain timer cancelled


def test_undrain_after_drained_rejoins() -> None:
    d = Driver(config(spec(), drain_timeout=0.0))
    d.settle()
    d.do("drain")
    d.until(d.now)
    assert d.state() is NodeState.DRAINED
    out = d.do("undrain")
    assert d.state() is NodeState.UP
    assert kinds(out) == ["JoinFloor", "StateChanged"]
    assert out[-1] == StateChanged(
        NodeState.DRAINED, NodeState.UP, "undrain; checks passing", d.now
    )


def test_repeated_drain_does_not_extend_the_deadline() -> None:
    d = Driver(config(spec(), drain_timeout=30.0))
    d.settle()
    t0 = d.now
    d.do("drain")
    d.until(t0 + 20)
    assert d.do("drain") == []
    d.until(t0 + 30)
    assert d.state() is NodeState.DRAINED


def test_broken_check_during_drain_withdraws_at_once() -> None:
    d = Driver(config(spec(fall=1)))
    d.settle()
    d.do("drain")
    d.results["http"] = False
    d.until(d.now + 2.0)
    assert d.state() is NodeState.DRAINED
    assert d.a.desired() == {NODE_ROUTE}


def test_degraded_during_drain_does_not_ask_and_undrain_asks() -> None:
    d = degraded_up()
    d.do("drain")
    d.results["lag"] = False
    out = d.until(d.now + 8)
    assert status(d.a, "lag").state is CheckState.FAILING
    assert d.state() is NodeState.DRAINING
    assert AskFloor() not in out
    out = d.do("undrain")
    assert d.state() is NodeState.UP
    assert AskFloor() in out


def test_drain_before_checks_settle_goes_straight_to_drained() -> None:
    d = Driver(config(spec()))
    d.do("drain")
    assert d.state() is NodeState.DRAINED
    d.settle()
    assert d.state() is NodeState.DRAINED
    d.do("undrain")
    assert d.state() is NodeState.UP


# --- disable, enable, shutdown, session ----------------------------------------------------


def test_disable_withdraws_vips_and_keeps_node_prefix() -> None:
    d = Driver(config(spec(fall=1)))
    d.settle()
    out = d.do("disable")
    assert d.state() is NodeState.DISABLED
    assert kinds(out) == ["LeaveFloor", "StateChanged"]
    assert d.a.desired() == {NODE_ROUTE}
    out = d.settle(http=False)  # checks keep running while disabled
    assert any(isinstance(e, RunCheck) for e in out)
    assert status(d.a).state is CheckState.FAILING
    assert d.state() is NodeState.DISABLED
    d.do("enable")
    assert d.state() is NodeState.DOWN
    d.settle(http=True)
    assert d.state() is NodeState.UP


def test_enable_when_healthy_is_up_at_once() -> None:
    d = Driver(config(spec()))
    d.settle()
    d.do("disable")
    out = d.do("enable")
    assert d.state() is NodeState.UP
    assert out == [
        JoinFloor(),
        StateChanged(NodeState.DISABLED, NodeState.UP, "enable; checks passing", d.now),
    ]


def test_enable_when_degraded_stays_down_without_asking() -> None:
    d = degraded_up()
    d.do("disable")
    d.settle(lag=False)
    out = d.do("enable")
    assert d.state() is NodeState.DOWN
    assert AskFloor() not in out


@pytest.mark.parametrize("verb", ["undrain", "enable"])
def test_operator_command_out_of_place_is_ignored(verb: str) -> None:
    d = Driver(config(spec()))
    d.settle()
    assert d.do(verb) == []
    assert d.state() is NodeState.UP


def test_drain_and_enable_are_ignored_while_disabled_except_enable() -> None:
    d = Driver(config(spec()))
    d.settle()
    d.do("disable")
    assert d.do("drain") == []
    assert d.do("undrain") == []
    assert d.state() is NodeState.DISABLED


def test_shutdown_withdraws_everything_and_is_final() -> None:
    d = Driver(config(spec()))
    d.settle()
    event = run(d.a, d.a.next_timer() or d.now)
    out = d.do("shutdown")
    assert d.state() is NodeState.SHUTDOWN
    assert kinds(out) == ["LeaveFloor", "StateChanged"]
    assert d.a.desired() == frozenset()
    assert d.a.next_timer() is None
    assert d.a.check_result(event.run_id, True, d.now) is False
    for verb in ("enable", "undrain", "drain", "disable", "shutdown", "session_up", "handle_timer"):
        getattr(d.a, verb)(d.now + 1)
        assert events(d.a) == []
    d.a.floor_answer(True, d.now + 2)
    assert events(d.a) == []
    assert d.state() is NodeState.SHUTDOWN
    assert d.a.desired() == frozenset()


def test_shutdown_from_init_withdraws_node_prefix() -> None:
    a = Announcer(config=config(spec()), now=0.0)
    events(a)
    a.shutdown(1.0)
    assert events(a) == [StateChanged(NodeState.INIT, NodeState.SHUTDOWN, "shutdown", 1.0)]
    assert a.desired() == frozenset()


def test_session_up_emits_resync_and_desired_ignores_the_session() -> None:
    d = Driver(config(spec()))
    d.settle()
    before = d.a.desired()
    assert d.do("session_down") == []
    assert d.a.session_established is False
    assert d.a.desired() == before
    assert d.do("session_up") == [Resync()]
    assert d.a.session_established is True
    assert d.do("session_up") == [Resync()]
    assert d.a.desired() == before


# --- Hypothesis over (state, input) --------------------------------------------------------

check_params = st.tuples(
    st.sampled_from(list(Severity)),
    st.integers(1, 3),
    st.integers(1, 3),
    st.sampled_from([1.0, 2.0, 5.0]),
    st.sampled_from([0.25, 0.5, 1.0]),
    st.sampled_from([0.5, 1.0, 3.0]),
)


def make_checks(
    params: list[tuple[Severity, int, int, float, float, float]],
) -> tuple[CheckSpec, ...]:
    return tuple(
        CheckSpec(
            name=f"c{i}",
            severity=severity,
            rise=rise,
            fall=fall,
            interval=interval,
            fast_interval=min(fast, interval),
            timeout=timeout,
        )
        for i, (severity, rise, fall, interval, fast, timeout) in enumerate(params)
    )


# Mostly one broken and one degraded check, where the policy is most intricate.
checks_strategy = st.one_of(
    st.tuples(check_params, check_params).map(
        lambda pair: make_checks(
            [(Severity.BROKEN, *pair[0][1:]), (Severity.DEGRADED, *pair[1][1:])]
        )
    ),
    st.lists(check_params, max_size=3).map(make_checks),
)

config_strategy = st.builds(
    config,
    checks=checks_strategy,
    vips=st.sampled_from([VIPS, VIPS, (V6,), ()]),
    node_prefix=st.sampled_from([NODE, None]),
    drain_timeout=st.sampled_from([0.0, 1.0, 30.0]),
    floor=st.integers(0, 2),
    floor_retry=st.sampled_from([0.5, 2.0]),
)


class AnnouncerMachine(RuleBasedStateMachine):
    """Random inputs at advancing times; after each, the invariants of the policy hold."""

    @initialize(cfg=config_strategy, start=st.floats(0, 1e6))
    def start(self, cfg: CoreConfig, start: float) -> None:
        self.cfg = cfg
        self.now = start
        self.a = Announcer(config=cfg, now=start)
        self.outstanding: dict[int, RunCheck] = {}
        self.stale: list[int] = []
        self.last_run_id = 0
        self.state = NodeState.INIT
        self.check_states = {c.name: CheckState.INIT for c in cfg.checks}
        self.in_floor = False
        self.truth = {c.name: True for c in cfg.checks}  # what the world would answer
        self.pump()

    def pump(self) -> None:
        # Time advances only with handle_timer: a run past its deadline has timed out.
        for run_id, run in list(self.outstanding.items()):
            if run.deadline <= self.now or self.a.state is NodeState.SHUTDOWN:
                del self.outstanding[run_id]
                self.stale.append(run_id)
        for event in events(self.a):
            if isinstance(event, RunCheck):
                assert event.run_id > self.last_run_id
                self.last_run_id = event.run_id
                spec = next(c for c in self.cfg.checks if c.name == event.name)
                assert event.deadline == self.now + spec.timeout
                assert all(r.name != event.name for r in self.outstanding.values())
                self.outstanding[event.run_id] = event
            elif isinstance(event, StateChanged):
                assert event.old is self.state
                assert event.new is not event.old
                assert event.at == self.now
                self.state = event.new
            elif isinstance(event, CheckChanged):
                assert self.check_states[event.name] is event.old
                assert event.new is not CheckState.INIT
                self.check_states[event.name] = event.new
            elif isinstance(event, JoinFloor | LeaveFloor):
                assert self.cfg.vips
                self.in_floor = isinstance(event, JoinFloor)
            elif isinstance(event, AskFloor):
                assert self.cfg.floor > 0
                assert self.cfg.vips
        running = {r.name for r in self.outstanding.values()}
        assert {c.name for c in self.a.checks if c.running} == running

    @rule(dt=st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.5, 7.0]))
    def advance(self, dt: float) -> None:
        self.now += dt
        self.a.handle_timer(self.now)
        self.pump()

    def fire_next_timer(self) -> None:
        due = self.a.next_timer()
        if due is not None:
            self.now = max(self.now, due)
        self.a.handle_timer(self.now)
        self.pump()

    @precondition(lambda self: bool(self.outstanding))
    @rule(data=st.data(), ok=st.booleans())
    def answer(self, data: st.DataObject, ok: bool) -> None:
        run_id = data.draw(st.sampled_from(sorted(self.outstanding)))
        event = self.outstanding.pop(run_id)
        assert self.a.check_result(run_id, ok, self.now, "x") is True
        assert status(self.a, event.name).detail == "x"
        self.stale.append(run_id)
        self.pump()

    @precondition(lambda self: bool(self.truth))
    @rule(data=st.data())
    def flip(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.truth)))
        self.truth[name] = not self.truth[name]

    @rule(rounds=st.integers(1, 16))
    def converge(self, rounds: int) -> None:
        """Fire timers and answer every run truthfully: streaks long enough to move states."""
        for _ in range(rounds):
            self.fire_next_timer()
            for run_id, event in sorted(self.outstanding.items()):
                if self.a.check_result(run_id, self.truth[event.name], self.now):
                    del self.outstanding[run_id]
                    self.stale.append(run_id)
                self.pump()

    @precondition(lambda self: bool(self.stale))
    @rule(data=st.data(), ok=st.booleans())
    def late_answer(self, data: st.DataObject, ok: bool) -> None:
        run_id = data.draw(st.sampled_from(self.stale))
        before = self.a.checks
        assert self.a.check_result(run_id, ok, self.now) is False
        assert self.a.checks == before
        assert events(self.a) == []

    @rule(
        verb=st.sampled_from(
            ["drain", "undrain", "disable", "enable", "session_up", "session_down"]
        )
    )
    def operator(self, verb: str) -> None:
        getattr(self.a, verb)(self.now)
        self.pump()

    @rule(carries=st.sampled_from([frozenset({4, 6}), frozenset({6}), frozenset({4}), frozenset()]))
    def session_families(self, carries: frozenset[int]) -> None:
        self.a.negotiated(self.now, carries)
        self.pump()

    @rule()
    def drain(self) -> None:
        self.a.drain(self.now)
        self.pump()

    @rule(granted=st.booleans())
    def floor_answer(self, granted: bool) -> None:
        self.a.floor_answer(granted, self.now)
        self.pump()

    @precondition(lambda self: self.a.state is not NodeState.SHUTDOWN)
    @rule(dice=st.integers(0, 29))
    def shutdown(self, dice: int) -> None:
        if dice == 0:  # rare, so that sequences explore the live states
            self.a.shutdown(self.now)
            self.pump()

    @invariant()
    def policy_holds(self) -> None:
        a = self.a
        desired = a.desired()
        prefixes = {r.prefix for r in desired}
        vips = {r for r in desired if r.prefix in self.cfg.vips}
        # Bookkeeping from events matches the exposed state.
        assert a.state is self.state
        assert {c.name: c.state for c in a.checks} == self.check_states
        assert self.in_floor == a.vips_announced == bool(vips)
        # The node /64 is announced iff not shut down.
        node_announced = self.cfg.node_prefix in prefixes
        assert node_announced == (
            self.cfg.node_prefix is not None
            and a.state is not NodeState.SHUTDOWN
            and 6 in a.carries
        )
        # Only the families the session negotiated; the others are refused, never desired.
        carried = [v for v in self.cfg.vips if v.version in a.carries]
        refused = a.refused()
        assert desired.isdisjoint(refused)
        assert all(r.prefix.version not in a.carries for r in refused)
        # VIPs only in UP (plain) and DRAINING (less preferred), never with a broken check failing.
        broken = any(
            c.severity is Severity.BROKEN and c.state is CheckState.FAILING for c in a.checks
        )
        if broken:
            assert not vips
        if a.state is NodeState.UP:
            assert vips == {Route(v, NH) for v in carried}
        elif a.state is NodeState.DRAINING:
            assert vips == {Route(v, NH, 1000, (GRACEFUL_SHUTDOWN,)) for v in carried}
        else:
            assert not vips
        # Health decides the normal states.
        states = [c.state for c in a.checks]
        degraded = any(c.state is CheckState.FAILING for c in a.checks)
        if a.state is NodeState.UP:
            assert not broken
            assert CheckState.INIT not in states
            assert not degraded or (self.cfg.floor > 0 and bool(self.cfg.vips))
        normal = a.state in (NodeState.INIT, NodeState.UP, NodeState.DOWN)
        if normal and not broken and CheckState.INIT not in states and not degraded:
            assert a.state is NodeState.UP
        assert not a.floor_held or (a.state is NodeState.UP and degraded)
        # Timers are never in the past; nothing after shutdown.
        due = a.next_timer()
        assert due is None or due >= self.now
        if a.state is NodeState.SHUTDOWN:
            assert due is None
            assert desired == frozenset()
            assert not any(c.running for c in a.checks)
        assert len(prefixes) == len(desired)
        # explain() says the same as desired() and refused(), and covers every route.
        groups = a.explain()
        by_state = {
            state: {p for g in groups if g.state is state for p in g.prefixes}
            for state in RouteState
        }
        assert by_state[RouteState.ANNOUNCED] == prefixes
        assert by_state[RouteState.REFUSED] == {r.prefix for r in refused}
        covered = [p for g in groups for p in g.prefixes]
        assert sorted(map(str, covered)) == sorted(
            map(str, [*self.cfg.vips, *filter(None, [self.cfg.node_prefix])])
        )
        for g in groups:
            assert (g.cause is Cause.FAMILY) == (g.state is RouteState.REFUSED)
            assert (g.until is not None) == (g.kind == "vip" and a.state is NodeState.DRAINING)


def reasons(a: Announcer) -> dict[tuple[str, int], tuple[RouteState, Cause, str]]:
    return {(g.kind, g.version): (g.state, g.cause, g.reason) for g in a.explain()}


def test_explain_names_the_failing_check_with_its_detail() -> None:
    d = Driver(config(spec("http"), spec("disk", severity=Severity.DEGRADED)))
    assert reasons(d.a)[("vip", 4)] == (
        RouteState.WITHDRAWN,
        Cause.CHECKS_PENDING,
        "checks pending: http (0 of 2 passes), disk (0 of 2 passes)",
    )
    d.settle()
    assert reasons(d.a)[("vip", 6)] == (RouteState.ANNOUNCED, Cause.HEALTHY, "checks passing")
    d.settle(http=False)
    assert reasons(d.a)[("vip", 4)] == (
        RouteState.WITHDRAWN,
        Cause.CHECK_FAILING,
        "broken check failing: http (scripted)",
    )
    # The node /64 stays, whatever the checks say.
    assert reasons(d.a)[("node", 6)][:2] == (RouteState.ANNOUNCED, Cause.NODE_PREFIX)


def test_explain_drain_says_when_the_withdrawal_comes() -> None:
    d = Driver(config())
    d.settle()
    d.do("drain")
    [v4] = [g for g in d.a.explain() if g.kind == "vip" and g.version == 4]
    assert (v4.state, v4.cause, v4.until) == (RouteState.ANNOUNCED, Cause.DRAINING, d.now + 30)
    assert "MED 1000" in v4.reason
    d.until(d.now + 31)
    assert reasons(d.a)[("vip", 4)][:2] == (RouteState.WITHDRAWN, Cause.DRAINED)
    d.do("disable")
    assert reasons(d.a)[("vip", 4)][:2] == (RouteState.WITHDRAWN, Cause.DISABLED)


def test_explain_floor_holds_with_its_reason() -> None:
    d = Driver(config(spec("http", severity=Severity.DEGRADED), floor=2))
    d.settle()
    d.results["http"] = False
    evs = d.until(d.now + 4)  # fall 3: failing, and the floor asked (retry after 5 s)
    assert AskFloor() in evs
    assert reasons(d.a)[("vip", 4)] == (
        RouteState.ANNOUNCED,
        Cause.FLOOR,
        "degraded check failing: http (scripted); asking the floor (at least 2 nodes)",
    )
    d.a.floor_answer(False, d.now, "1 other node announces, 2 must remain")
    assert reasons(d.a)[("vip", 4)][2] == (
        "degraded check failing: http (scripted); the floor (at least 2 nodes) holds:"
        " 1 other node announces, 2 must remain"
    )


def test_explain_refuses_a_family_the_session_cannot_carry() -> None:
    d = Driver(config())
    d.settle()
    d.a.negotiated(d.now, frozenset({6}))
    state, cause, why = reasons(d.a)[("vip", 4)]
    assert (state, cause) == (RouteState.REFUSED, Cause.FAMILY)
    assert "RFC 8950" in why
    assert reasons(d.a)[("vip", 6)][:2] == (RouteState.ANNOUNCED, Cause.HEALTHY)
    d.a.shutdown(d.now)
    assert {r[:2] for r in reasons(d.a).values()} == {(RouteState.WITHDRAWN, Cause.SHUTDOWN)}


TestAnnouncerMachine = AnnouncerMachine.TestCase
TestAnnouncerMachine.settings = settings(
    max_examples=600,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_a_session_without_extended_next_hop_gets_no_ipv4_routes() -> None:
    """RFC 8950: IPv4 routes with the node's IPv6 next hop need the capability; a peer without
    it drops them as invalid, so they are refused (withdrawn), and come back with it."""
    d = Driver(config(spec()))
    d.settle()
    assert d.state() is NodeState.UP
    d.a.negotiated(d.now, frozenset({6}))
    assert d.pump() == []
    assert d.a.carries == frozenset({6})
    assert d.a.desired() == {NODE_ROUTE, Route(V6, NH)}
    assert d.a.refused() == {Route(V4, NH)}
    d.do("session_down")
    assert d.a.desired() == {NODE_ROUTE, Route(V6, NH)}  # until a session says otherwise
    d.a.negotiated(d.now, frozenset({4, 6}))
    assert d.pump() == []
    assert d.a.desired() == {NODE_ROUTE} | VIP_ROUTES
    assert d.a.refused() == frozenset()


def test_floor_membership_follows_the_families_the_session_carries() -> None:
    a = Announcer(config=config(vips=(V4,)), now=0.0)
    assert JoinFloor() in events(a)
    a.negotiated(1.0, frozenset({6}))
    assert events(a) == [LeaveFloor()]
    assert not a.vips_announced
    a.negotiated(2.0, frozenset({4, 6}))
    assert events(a) == [JoinFloor()]
    with pytest.raises(ValueError, match="carries"):
        a.negotiated(3.0, frozenset({5}))


def test_a_blackholed_vip_is_withdrawn_in_every_state_and_comes_back_when_released() -> None:
    d = Driver(config(spec()))
    d.settle()
    assert d.state() is NodeState.UP
    d.a.blackholed(d.now, frozenset({V4, IPv4Network("198.51.100.9/32")}), "DDoS on shop")
    # only this node's VIPs count; the other one is someone else's
    assert d.a.blackholed_vips == frozenset({V4})
    assert d.a.desired() == frozenset({NODE_ROUTE, Route(V6, NH)})
    [pulled] = [g for g in d.a.explain() if g.cause is Cause.BLACKHOLED]
    assert (pulled.prefixes, pulled.state) == ((V4,), RouteState.WITHDRAWN)
    assert "blackholed through the API" in pulled.reason
    assert "DDoS on shop" in pulled.reason
    # draining carries the rest less preferred, never the blackholed one
    d.do("drain")
    assert Route(V4, NH, 1000, (GRACEFUL_SHUTDOWN,)) not in d.a.desired()
    assert Route(V6, NH, 1000, (GRACEFUL_SHUTDOWN,)) in d.a.desired()
    d.do("undrain")
    d.a.blackholed(d.now, frozenset())
    assert d.a.desired() == frozenset({NODE_ROUTE}) | VIP_ROUTES
    assert not any(g.cause is Cause.BLACKHOLED for g in d.a.explain())
