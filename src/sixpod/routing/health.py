"""The announcer core: which BGP routes a node announces, from health checks and operator input.

Sans-IO, in the style of h11 and aioquic: no sockets, no clock, no logging. The adapter feeds
inputs (``handle_timer``, ``check_result``, ``floor_answer``, operator commands, session
up/down), drains :data:`~sixpod.routing.events.Event` values with :meth:`Announcer.next_event`,
re-arms a timer at :meth:`Announcer.next_timer` and converges BGP towards
:meth:`Announcer.desired` (see :mod:`sixpod.routing.routesync`).

Policy:

- The node /64 is announced in every state but SHUTDOWN. The VIPs are announced in UP, and
  less preferred (MED ``drain_med``, community GRACEFUL_SHUTDOWN, RFC 8326) in DRAINING.
- Checks run from construction (first run due at once), in every state but SHUTDOWN, so that
  ``enable``/``undrain`` find a settled verdict. The next run is scheduled from the result,
  ``interval`` later, or ``fast_interval`` later while the check is transitioning (in INIT,
  or after a result that disagrees with its state). No result by the deadline is a failure;
  a late result is ignored.
- A failing *broken* check withdraws the VIPs at once. Failing *degraded* checks withdraw them
  only once the pod-wide floor grants it (``AskFloor``/``floor_answer``), or at once when the
  floor is 0. A node that is not announcing (INIT, DOWN, after ``enable`` or ``undrain`` from
  DRAINED) does not start announcing while degraded, and does not ask.
- Floor membership mirrors "the VIPs are in the desired set": ``JoinFloor`` when they enter it,
  ``LeaveFloor`` when they leave it (also after a grant; the adapter treats it as idempotent).
  A grant arriving when it is no longer needed, while the VIPs are announced, emits
  ``JoinFloor`` again so that the pod's set stays true.
- Drain: UP goes to DRAINING (VIPs less preferred), then DRAINED after ``drain_timeout``; a
  failing broken check ends it early; from INIT or DOWN there is nothing to drain (DRAINED at
  once). ``disable`` keeps the node /64 so that the node's containers stay reachable; only
  ``shutdown`` withdraws it.
- A route goes into :meth:`Announcer.desired` only if the BGP session can carry its family:
  ``negotiated`` says which IP versions it can (IPv4 needs RFC 8950 extended next hop, as the
  node has only an IPv6 next hop); the rest is :meth:`Announcer.refused`, withdrawn rather
  than sent to a peer that would drop it as invalid. Until told otherwise, both are carried.
- A VIP blackholed through the API (:meth:`Announcer.blackholed`, from the VIP states in the
  node's Redis replica) is withdrawn in every state, on every node alike; the others are
  unaffected, and so is the floor.
- Only :meth:`Announcer.handle_timer` fires timers. Time never runs backwards inside the
  core: an earlier ``now`` than the last one seen is taken as the last one.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum, auto
from ipaddress import IPv4Network, IPv6Address, IPv6Network
from typing import Final

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
    RouteGroup,
    RouteState,
    RunCheck,
    StateChanged,
)
from sixpod.words import plural

__all__ = ["BOTH_FAMILIES", "Announcer", "CheckSpec", "CheckStatus", "CoreConfig", "Severity"]

_MAX_MED: Final = 2**32 - 1
_FAMILY_NEEDS: Final = {
    4: "IPv4 unicast with an IPv6 next hop (RFC 8950 extended next hop)",
    6: "IPv6 unicast",
}
BOTH_FAMILIES: Final = frozenset({4, 6})


class Severity(StrEnum):
    """What a failing check means for the VIPs."""

    BROKEN = "broken"
    """The node itself is broken: withdraw the VIPs at once."""
    DEGRADED = "degraded"
    """Withdraw only if the pod-wide safety floor allows it."""


def _number(value: object, field: str, *, minimum: float, strict: bool) -> None:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and (value > minimum if strict else value >= minimum)
    )
    if not ok:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ValueError(f"{field} must be a finite number {bound}, got {value!r}")


def _integer(value: object, field: str, *, minimum: int, maximum: int | None = None) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{field} must be an integer {bound}, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckSpec:
    """One health check, as the core schedules and judges it (the adapter knows how to run it).

    Times are in seconds. ``rise``/``fall`` count consecutive results.
    """

    name: str
    interval: float
    """Between a result and the next run, normally."""
    fast_interval: float
    """Between a result and the next run while transitioning; at most ``interval``."""
    timeout: float
    """From a run's start to its deadline; no result by then is a failure."""
    rise: int
    """Consecutive passes to become PASSING."""
    fall: int
    """Consecutive failures to become FAILING."""
    severity: Severity
    """``"broken"`` or ``"degraded"`` (strings are converted)."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip():
            raise ValueError(f"name must be non-empty, without outer spaces: {self.name!r}")
        _number(self.interval, "interval", minimum=0, strict=True)
        _number(self.fast_interval, "fast_interval", minimum=0, strict=True)
        if self.fast_interval > self.interval:
            raise ValueError(
                f"fast_interval {self.fast_interval!r} exceeds interval {self.interval!r}"
            )
        _number(self.timeout, "timeout", minimum=0, strict=True)
        _integer(self.rise, "rise", minimum=1)
        _integer(self.fall, "fall", minimum=1)
        try:
            severity = Severity(self.severity)
        except ValueError:
            raise ValueError(
                f"severity must be 'broken' or 'degraded', got {self.severity!r}"
            ) from None
        object.__setattr__(self, "severity", severity)


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreConfig:
    """What the announcer core needs to know about its node. Times are in seconds."""

    node_prefix: IPv6Network | None
    """The /64 delegated to the node's containers; None announces none."""
    vips: tuple[IPNetwork, ...]
    """The pod's anycast VIPs as host routes (/32, /128); empty on non-edge nodes."""
    next_hop: IPv6Address
    """The node's global uplink address; IPv4 routes use it too (RFC 8950)."""
    checks: tuple[CheckSpec, ...]
    """The health checks; names are unique. Empty: the node is healthy as soon as it starts."""
    drain_timeout: float
    """How long VIPs stay announced less preferred before a drain withdraws them."""
    drain_med: int
    """MED carried by the VIPs while draining (higher is less preferred)."""
    floor: int
    """Minimum number of nodes that must keep announcing the VIPs pod-wide; 0 disables."""
    floor_retry: float
    """Delay before asking the floor again after a denial or an unanswered ask."""

    def __post_init__(self) -> None:
        if self.node_prefix is not None and not isinstance(self.node_prefix, IPv6Network):
            raise ValueError(f"node_prefix must be an IPv6Network or None: {self.node_prefix!r}")
        if not isinstance(self.vips, tuple):
            raise ValueError(f"vips must be a tuple, got {self.vips!r}")
        for vip in self.vips:
            if not isinstance(vip, IPv4Network | IPv6Network):
                raise ValueError(f"vips: {vip!r} is not an IPv4Network or IPv6Network")
            if vip.prefixlen != vip.max_prefixlen:
                raise ValueError(f"vips: {vip} is not a host route (/32 or /128)")
        if len(set(self.vips)) != len(self.vips):
            raise ValueError("vips: duplicate entries")
        if not isinstance(self.next_hop, IPv6Address):
            raise ValueError(f"next_hop must be an IPv6Address, got {self.next_hop!r}")
        hop = self.next_hop
        if hop.is_unspecified or hop.is_multicast or hop.is_link_local:
            raise ValueError(f"next_hop must be a global unicast address, got {hop}")
        if not isinstance(self.checks, tuple) or not all(
            isinstance(c, CheckSpec) for c in self.checks
        ):
            raise ValueError("checks must be a tuple of CheckSpec")
        names = [c.name for c in self.checks]
        if len(set(names)) != len(names):
            raise ValueError(f"checks: duplicate names in {names}")
        _number(self.drain_timeout, "drain_timeout", minimum=0, strict=False)
        _integer(self.drain_med, "drain_med", minimum=0, maximum=_MAX_MED)
        _integer(self.floor, "floor", minimum=0)
        _number(self.floor_retry, "floor_retry", minimum=0, strict=True)


@dataclass(frozen=True, slots=True)
class CheckStatus:
    """A snapshot of one check, for metrics and status output."""

    name: str
    severity: Severity
    state: CheckState
    since: float
    """Time of the last state change (construction time while INIT)."""
    passes: int
    """Consecutive passes so far."""
    failures: int
    """Consecutive failures so far."""
    detail: str
    """Detail of the last result."""
    running: bool
    """A run is outstanding."""


# Per-check rise/fall (as HAProxy and ExaBGP's healthcheck count them): (state, passed) -> the
# state this result counts towards, or None when the result agrees with the state. Towards
# PASSING needs `rise` consecutive passes, towards FAILING `fall` consecutive failures; a result
# the other way resets the streak. INIT leaves only this way and is never re-entered.
_CHECK_TRANSITIONS: Final[Mapping[tuple[CheckState, bool], CheckState | None]] = {
    (CheckState.INIT, True): CheckState.PASSING,
    (CheckState.INIT, False): CheckState.FAILING,
    (CheckState.PASSING, True): None,
    (CheckState.PASSING, False): CheckState.FAILING,
    (CheckState.FAILING, True): CheckState.PASSING,
    (CheckState.FAILING, False): None,
}


class _Verdict(Enum):
    """The checks taken together."""

    PENDING = auto()  # some check is INIT and no broken check fails
    HEALTHY = auto()  # every check passes
    DEGRADED = auto()  # only degraded checks fail
    BROKEN = auto()  # a broken check fails


class _Trigger(Enum):
    HEALTHY = auto()  # verdict HEALTHY
    BROKEN = auto()  # verdict BROKEN
    DEGRADED = auto()  # verdict DEGRADED
    RELEASED = auto()  # verdict DEGRADED and the floor granted (or is disabled)
    DRAIN = auto()
    DRAIN_TIMEOUT = auto()
    UNDRAIN = auto()
    DISABLE = auto()
    ENABLE = auto()
    SHUTDOWN = auto()


_S = NodeState
_T = _Trigger
# Node state machine: state -> {trigger: next state}. Unlisted pairs change nothing (repeated
# operator commands; health news in operator states). After every input the health trigger is
# re-derived from the checks and applied until the state is stable, so ENABLE and UNDRAIN from
# DRAINED pass through INIT and settle on UP or DOWN within the same input. Drain is two-step
# (RFC 8326 graceful shutdown first, withdraw after drain_timeout); a broken check ends it early.
_NODE_TRANSITIONS: Final[Mapping[NodeState, Mapping[_Trigger, NodeState]]] = {
    _S.INIT: {
        _T.HEALTHY: _S.UP,
        _T.BROKEN: _S.DOWN,
        _T.DEGRADED: _S.DOWN,  # not announcing yet: do not start while degraded
        _T.DRAIN: _S.DRAINED,  # nothing announced, nothing to drain
        _T.DISABLE: _S.DISABLED,
        _T.SHUTDOWN: _S.SHUTDOWN,
    },
    _S.UP: {
        _T.BROKEN: _S.DOWN,
        _T.RELEASED: _S.DOWN,  # DEGRADED alone keeps UP while the floor is asked
        _T.DRAIN: _S.DRAINING,
        _T.DISABLE: _S.DISABLED,
        _T.SHUTDOWN: _S.SHUTDOWN,
    },
    _S.DOWN: {
        _T.HEALTHY: _S.UP,
        _T.DRAIN: _S.DRAINED,
        _T.DISABLE: _S.DISABLED,
        _T.SHUTDOWN: _S.SHUTDOWN,
    },
    _S.DRAINING: {
        _T.BROKEN: _S.DRAINED,
        _T.DRAIN_TIMEOUT: _S.DRAINED,
        _T.UNDRAIN: _S.UP,  # still announced: back to normal, degraded asks the floor
        _T.DISABLE: _S.DISABLED,
        _T.SHUTDOWN: _S.SHUTDOWN,
    },
    _S.DRAINED: {
        _T.UNDRAIN: _S.INIT,
        _T.DISABLE: _S.DISABLED,
        _T.SHUTDOWN: _S.SHUTDOWN,
    },
    _S.DISABLED: {
        _T.ENABLE: _S.INIT,
        _T.SHUTDOWN: _S.SHUTDOWN,
    },
    _S.SHUTDOWN: {},
}

_VERDICT_TRIGGER: Final[Mapping[_Verdict, _Trigger | None]] = {
    _Verdict.PENDING: None,
    _Verdict.HEALTHY: _T.HEALTHY,
    _Verdict.DEGRADED: _T.DEGRADED,
    _Verdict.BROKEN: _T.BROKEN,
}


class _Check:
    """Mutable per-check state."""

    __slots__ = (
        "deadline",
        "detail",
        "failures",
        "next_run",
        "passes",
        "run_id",
        "since",
        "spec",
        "state",
    )

    def __init__(self, spec: CheckSpec, now: float) -> None:
        self.spec = spec
        self.state = CheckState.INIT
        self.since = now
        self.passes = 0
        self.failures = 0
        self.detail = ""
        self.next_run = now
        self.run_id: int | None = None
        self.deadline = math.inf

    def status(self) -> CheckStatus:
        return CheckStatus(
            name=self.spec.name,
            severity=self.spec.severity,
            state=self.state,
            since=self.since,
            passes=self.passes,
            failures=self.failures,
            detail=self.detail,
            running=self.run_id is not None,
        )


class Announcer:
    """The announcer's pure core. See the module docstring for the policy.

    Every input takes ``now`` (seconds on a monotonic clock) and may queue events; drain them
    with :meth:`next_event` after each input, then re-arm the timer at :meth:`next_timer`.
    """

    def __init__(self, *, config: CoreConfig, now: float) -> None:
        _number(now, "now", minimum=-math.inf, strict=False)
        self._config = config
        self._vips_by_version = tuple(
            tuple(v for v in config.vips if v.version == version) for version in (4, 6)
        )
        self._now = float(now)
        self._state = NodeState.INIT
        self._since = self._now
        self._checks = [_Check(spec, self._now) for spec in config.checks]
        self._running: dict[int, _Check] = {}
        self._next_run_id = 1
        self._events: deque[Event] = deque()
        self._drain_deadline: float | None = None
        self._in_floor = False
        self._ask_at: float | None = None  # next (re)ask while the floor is being asked
        self._ask_outstanding = False
        self._floor_held = False
        self._floor_reason = ""  # the last denial, for explain()
        self._session = False
        self._carries: frozenset[int] = BOTH_FAMILIES
        self._blackholed: frozenset[IPNetwork] = frozenset()
        self._blackhole_reason = ""
        self._routes_key: tuple[NodeState, frozenset[int], frozenset[IPNetwork]] | None = None
        self._routes_cache: tuple[frozenset[Route], frozenset[Route]] = (frozenset(), frozenset())
        self._input(self._now, None, "start")

    # --- outputs -------------------------------------------------------------------------

    def next_event(self) -> Event | None:
        """The oldest queued event, or None."""
        return self._events.popleft() if self._events else None

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` must be called next, or None (nothing scheduled)."""
        if self._state is NodeState.SHUTDOWN:
            return None
        times = [c.deadline if c.run_id is not None else c.next_run for c in self._checks]
        if self._ask_at is not None:
            times.append(self._ask_at)
        if self._drain_deadline is not None:
            times.append(self._drain_deadline)
        return min(times, default=None)

    def desired(self) -> frozenset[Route]:
        """The routes the node should announce now: whether the BGP session is up does not
        matter, but only the families it negotiated are in (see :meth:`refused`)."""
        return self._routes()[0]

    def refused(self) -> frozenset[Route]:
        """The routes the node would announce but the session cannot carry."""
        return self._routes()[1]

    def _routes(self) -> tuple[frozenset[Route], frozenset[Route]]:
        """(desired, refused), computed once per (state, carried families): the adapter asks
        after every input, and a pod has up to 1,024 VIPs."""
        key = (self._state, self._carries, self._blackholed)
        if self._routes_key != key:
            wanted = self._wanted()
            self._routes_cache = (
                frozenset(r for r in wanted if r.prefix.version in self._carries),
                frozenset(r for r in wanted if r.prefix.version not in self._carries),
            )
            self._routes_key = key
        return self._routes_cache

    def _wanted(self) -> frozenset[Route]:
        config = self._config
        if self._state is NodeState.SHUTDOWN:
            return frozenset()
        routes: set[Route] = set()
        if config.node_prefix is not None:
            routes.add(Route(config.node_prefix, config.next_hop))
        vips = [v for v in config.vips if v not in self._blackholed]
        if self._state is NodeState.UP:
            routes.update(Route(vip, config.next_hop) for vip in vips)
        elif self._state is NodeState.DRAINING:
            routes.update(
                Route(vip, config.next_hop, config.drain_med, (GRACEFUL_SHUTDOWN,)) for vip in vips
            )
        return frozenset(routes)

    def explain(self) -> tuple[RouteGroup, ...]:
        """Every configured route with its state and why: the node /64, then the IPv4 and the
        IPv6 VIPs, one group each (the policy treats the VIPs of a family alike). The routes
        in state ANNOUNCED are :meth:`desired`, those REFUSED :meth:`refused`."""
        config = self._config
        groups = []
        if config.node_prefix is not None:
            if self._state is NodeState.SHUTDOWN:
                cause, why = Cause.SHUTDOWN, "the announcer is stopping: everything withdrawn"
            else:
                cause, why = Cause.NODE_PREFIX, "the node's own /64: announced unless stopping"
            groups.append(self._group("node", (config.node_prefix,), cause, why))
        for vips in self._vips_by_version:
            served = tuple(v for v in vips if v not in self._blackholed)
            pulled = tuple(v for v in vips if v in self._blackholed)
            if served:
                cause, why = self._vips_why()
                until = self._drain_deadline if self._state is NodeState.DRAINING else None
                groups.append(self._group("vip", served, cause, why, until))
            if pulled:
                why = "blackholed through the API: withdrawn by every node" + (
                    f" ({self._blackhole_reason})" if self._blackhole_reason else ""
                )
                groups.append(
                    RouteGroup(
                        kind="vip",
                        version=pulled[0].version,
                        state=RouteState.WITHDRAWN,
                        cause=Cause.BLACKHOLED,
                        reason=why,
                        prefixes=pulled,
                        until=None,
                    )
                )
        return tuple(groups)

    def _group(
        self,
        kind: str,
        prefixes: tuple[IPNetwork, ...],
        cause: Cause,
        why: str,
        until: float | None = None,
    ) -> RouteGroup:
        version = prefixes[0].version
        wanted = (
            self._state is not NodeState.SHUTDOWN
            if kind == "node"
            else self._state in (NodeState.UP, NodeState.DRAINING)
        )
        state = RouteState.ANNOUNCED if wanted else RouteState.WITHDRAWN
        if wanted and version not in self._carries:
            state, cause = RouteState.REFUSED, Cause.FAMILY
            why = f"the BGP session did not negotiate {_FAMILY_NEEDS[version]}"
        return RouteGroup(
            kind=kind,
            version=version,
            state=state,
            cause=cause,
            reason=why,
            prefixes=prefixes,
            until=until,
        )

    def _vips_why(self) -> tuple[Cause, str]:
        state = self._state
        if state is NodeState.SHUTDOWN:
            return Cause.SHUTDOWN, "the announcer is stopping: everything withdrawn"
        if state is NodeState.DISABLED:
            return Cause.DISABLED, "disabled by the operator (sixpod node enable restores)"
        if state is NodeState.DRAINED:
            return Cause.DRAINED, "drained by the operator (sixpod node undrain restores)"
        if state is NodeState.DRAINING:
            return Cause.DRAINING, (
                f"draining: announced less preferred (MED {self._config.drain_med},"
                " GRACEFUL_SHUTDOWN), withdrawn at the drain timeout"
            )
        verdict, why = self._verdict()
        failing = ", ".join(
            f"{c.spec.name} ({c.detail})" if c.detail else c.spec.name
            for c in self._checks
            if c.state is CheckState.FAILING
        )
        if state is NodeState.UP:
            if verdict is _Verdict.DEGRADED:
                floor = f"the floor (at least {plural(self._config.floor, 'node')})"
                if self._floor_held:
                    held = f": {self._floor_reason}" if self._floor_reason else ""
                    return Cause.FLOOR, f"degraded check failing: {failing}; {floor} holds{held}"
                return Cause.FLOOR, f"degraded check failing: {failing}; asking {floor}"
            return Cause.HEALTHY, why
        if verdict is _Verdict.PENDING:
            pending = ", ".join(
                f"{c.spec.name} ({c.passes} of {c.spec.rise} passes)"
                for c in self._checks
                if c.state is CheckState.INIT
            )
            return Cause.CHECKS_PENDING, f"checks pending: {pending}"
        if verdict is _Verdict.BROKEN:
            broken = ", ".join(
                f"{c.spec.name} ({c.detail})" if c.detail else c.spec.name
                for c in self._checks
                if c.state is CheckState.FAILING and c.spec.severity is Severity.BROKEN
            )
            return Cause.CHECK_FAILING, f"broken check failing: {broken}"
        if verdict is _Verdict.DEGRADED:
            how = "floor granted" if self._floor_active() else "no floor"
            return Cause.CHECK_FAILING, f"degraded check failing: {failing}; {how}"
        return Cause.CHECKS_PENDING, why  # DOWN or INIT while healthy: settles this input

    # --- metrics -------------------------------------------------------------------------

    @property
    def config(self) -> CoreConfig:
        """The configuration the core was built with."""
        return self._config

    @property
    def state(self) -> NodeState:
        """The node state."""
        return self._state

    @property
    def state_since(self) -> float:
        """Time of the last node state change."""
        return self._since

    @property
    def checks(self) -> tuple[CheckStatus, ...]:
        """A snapshot of every check, in configuration order."""
        return tuple(c.status() for c in self._checks)

    @property
    def drain_deadline(self) -> float | None:
        """While draining, when the drain timeout withdraws the VIPs; else None."""
        return self._drain_deadline

    @property
    def floor_reason(self) -> str:
        """The floor's last reason for holding the VIPs (see :meth:`explain`)."""
        return self._floor_reason

    @property
    def floor_held(self) -> bool:
        """Degraded, but kept announcing because the floor denied or did not answer."""
        return self._floor_held

    @property
    def vips_announced(self) -> bool:
        """The VIPs are in :meth:`desired` (plain or draining; at least one family)."""
        return self._state in (NodeState.UP, NodeState.DRAINING) and any(
            vip.version in self._carries for vip in self._config.vips
        )

    @property
    def carries(self) -> frozenset[int]:
        """The IP versions the last session negotiated (both until a session says otherwise)."""
        return self._carries

    @property
    def session_established(self) -> bool:
        """The last session event was ``session_up``."""
        return self._session

    # --- inputs --------------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        """Process everything due at or before ``now``: check deadlines and runs, floor
        retries, the drain timeout."""
        now = self._tick(now)
        if self._state is NodeState.SHUTDOWN:
            return
        for check in self._checks:
            if check.run_id is not None and check.deadline <= now:
                del self._running[check.run_id]
                self._record(check, False, now, f"timed out after {check.spec.timeout:g}s")
        for check in self._checks:
            if check.run_id is None and check.next_run <= now:
                check.run_id = self._next_run_id
                self._next_run_id += 1
                check.deadline = now + check.spec.timeout
                self._running[check.run_id] = check
                self._events.append(RunCheck(check.spec.name, check.run_id, check.deadline))
        if self._ask_at is not None and self._ask_at <= now:
            if self._ask_outstanding:
                self._floor_held = True  # no answer in time counts as a denial
                self._floor_reason = "the floor did not answer"
            self._ask(now)
        if self._drain_deadline is not None and self._drain_deadline <= now:
            self._input(now, _T.DRAIN_TIMEOUT, "drain timeout")

    def check_result(self, run_id: int, ok: bool, now: float, detail: str = "") -> bool:
        """Report the result of run ``run_id``. Returns False (and changes nothing) when the run
        is unknown, already timed out, or the core is shut down."""
        now = self._tick(now)
        check = self._running.pop(run_id, None)
        if check is None:
            return False
        self._record(check, bool(ok), now, detail)
        return True

    def floor_answer(self, granted: bool, now: float, reason: str = "") -> None:
        """Answer the last :class:`AskFloor`. ``granted`` means the adapter has removed this
        node from the pod's set; an answer nobody waits for is ignored, except that an
        unneeded grant while the VIPs are announced re-joins the floor. ``reason`` (the
        floor's, for humans) shows in :meth:`explain` while the floor holds the VIPs."""
        now = self._tick(now)
        if self._wants_release():
            if granted:
                self._input(now, _T.RELEASED, "degraded, floor granted")
            else:
                self._floor_held = True
                self._floor_reason = reason
                self._ask_outstanding = False
                self._ask_at = now + self._config.floor_retry
        elif granted and self._in_floor:
            self._events.append(JoinFloor())

    def drain(self, now: float) -> None:
        """Operator: announce the VIPs less preferred, withdraw them after ``drain_timeout``."""
        self._input(self._tick(now), _T.DRAIN, "drain")

    def undrain(self, now: float) -> None:
        """Operator: end a drain; back to normal evaluation."""
        self._input(self._tick(now), _T.UNDRAIN, "undrain")

    def disable(self, now: float) -> None:
        """Operator: withdraw the VIPs until ``enable``; the node /64 stays announced."""
        self._input(self._tick(now), _T.DISABLE, "disable")

    def enable(self, now: float) -> None:
        """Operator: end a disable; back to normal evaluation."""
        self._input(self._tick(now), _T.ENABLE, "enable")

    def shutdown(self, now: float) -> None:
        """Withdraw everything, for good: later inputs are ignored."""
        self._input(self._tick(now), _T.SHUTDOWN, "shutdown")

    def blackholed(self, now: float, vips: frozenset[IPNetwork], reason: str = "") -> None:
        """The VIPs blackholed through the API (the pod's state; those not of this node are
        ignored): withdrawn until they leave the set."""
        self._tick(now)
        self._blackholed = frozenset(v for v in vips if v in set(self._config.vips))
        self._blackhole_reason = reason

    @property
    def blackholed_vips(self) -> frozenset[IPNetwork]:
        return self._blackholed

    def negotiated(self, now: float, carries: frozenset[int]) -> None:
        """The BGP session being established can carry routes of the IP versions in
        ``carries`` (4, 6). Comes before ``session_up``; holds until the next one."""
        self._tick(now)
        if not isinstance(carries, frozenset) or not carries <= BOTH_FAMILIES:
            raise ValueError(f"carries must be a frozenset of 4 and 6, got {carries!r}")
        if self._state is not NodeState.SHUTDOWN:
            self._carries = carries
            self._input(self._now, None, "")  # floor membership follows what is announced

    def session_up(self, now: float) -> None:
        """The BGP session is established: emits :class:`Resync`."""
        self._tick(now)
        if self._state is not NodeState.SHUTDOWN:
            self._session = True
            self._events.append(Resync())

    def session_down(self, now: float) -> None:
        """The BGP session went down. Desired routes do not change."""
        self._tick(now)
        self._session = False

    # --- internals -----------------------------------------------------------------------

    def _tick(self, now: float) -> float:
        _number(now, "now", minimum=-math.inf, strict=False)
        self._now = max(self._now, float(now))
        return self._now

    def _verdict(self) -> tuple[_Verdict, str]:
        def failing(severity: Severity) -> list[str]:
            return [
                c.spec.name
                for c in self._checks
                if c.spec.severity is severity and c.state is CheckState.FAILING
            ]

        if broken := failing(Severity.BROKEN):
            return _Verdict.BROKEN, f"broken check failing: {', '.join(broken)}"
        if any(c.state is CheckState.INIT for c in self._checks):
            return _Verdict.PENDING, "checks pending"
        if degraded := failing(Severity.DEGRADED):
            return _Verdict.DEGRADED, f"degraded check failing: {', '.join(degraded)}"
        return _Verdict.HEALTHY, "checks passing" if self._checks else "no checks"

    def _floor_active(self) -> bool:
        return self._config.floor > 0 and bool(self._config.vips)

    def _wants_release(self) -> bool:
        return (
            self._state is NodeState.UP
            and self._floor_active()
            and self._verdict()[0] is _Verdict.DEGRADED
        )

    def _record(self, check: _Check, ok: bool, now: float, detail: str) -> None:
        check.run_id = None
        check.deadline = math.inf
        check.detail = detail
        if ok:
            check.passes += 1
            check.failures = 0
        else:
            check.failures += 1
            check.passes = 0
        spec = check.spec
        towards = _CHECK_TRANSITIONS[check.state, ok]
        transitioning = False
        if towards is not None:
            needed = spec.rise if towards is CheckState.PASSING else spec.fall
            if (check.passes if ok else check.failures) >= needed:
                old, check.state, check.since = check.state, towards, now
                self._events.append(CheckChanged(spec.name, old, towards, now, detail))
            else:
                transitioning = True
        check.next_run = now + (spec.fast_interval if transitioning else spec.interval)
        self._input(now, None, "")

    def _input(self, now: float, trigger: _Trigger | None, reason: str) -> None:
        """Apply ``trigger`` (None: health news only), settle on health, emit the effects."""
        old = self._state
        reasons = [reason] if reason else []
        if trigger is not None:
            new = _NODE_TRANSITIONS[old].get(trigger)
            if new is None:
                return
            self._state = new
        for _ in range(len(_NODE_TRANSITIONS)):  # bounded: the table has no health cycles
            verdict, why = self._verdict()
            health = _VERDICT_TRIGGER[verdict]
            if (
                self._state is NodeState.UP
                and verdict is _Verdict.DEGRADED
                and not self._floor_active()
            ):
                health, why = _T.RELEASED, f"{why}, no floor"
            new = _NODE_TRANSITIONS[self._state].get(health) if health is not None else None
            if new is None:
                break
            self._state = new
            reasons.append(why)
        if self._state is not old:
            self._since = now
        if self._state is NodeState.DRAINING:
            if old is not NodeState.DRAINING:
                self._drain_deadline = now + self._config.drain_timeout
        else:
            self._drain_deadline = None
        if self._state is NodeState.SHUTDOWN:
            self._running.clear()
            for check in self._checks:
                check.run_id = None
        announcing = self.vips_announced
        if announcing != self._in_floor:
            self._in_floor = announcing
            self._events.append(JoinFloor() if announcing else LeaveFloor())
        if not self._wants_release():
            self._ask_at = None
            self._ask_outstanding = False
            self._floor_held = False
        elif self._ask_at is None:
            self._ask(now)
        if self._state is not old:
            self._events.append(StateChanged(old, self._state, "; ".join(reasons), now))

    def _ask(self, now: float) -> None:
        self._events.append(AskFloor())
        self._ask_outstanding = True
        self._ask_at = now + self._config.floor_retry
