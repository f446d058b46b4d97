"""Events and values of the routing package: small frozen dataclasses, validated when built.

The announcer core (:mod:`sixpod.routing.health`) emits :data:`Event` values; the route sync
(:mod:`sixpod.routing.routesync`) emits :data:`RouteOp` values. Adapters dispatch on the type.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Address, IPv6Network
from typing import Final, TypeAlias

from sixpod.addr import IPNetwork

__all__ = [
    "GRACEFUL_SHUTDOWN",
    "Announce",
    "AskFloor",
    "Cause",
    "CheckChanged",
    "CheckState",
    "Event",
    "JoinFloor",
    "LeaveFloor",
    "NodeState",
    "Probe",
    "Resync",
    "Route",
    "RouteGroup",
    "RouteOp",
    "RouteState",
    "RunCheck",
    "SpeakerAlive",
    "SpeakerEvent",
    "SpeakerHung",
    "StateChanged",
    "Withdraw",
]

GRACEFUL_SHUTDOWN: Final = "65535:0"
"""The well-known GRACEFUL_SHUTDOWN community (RFC 8326): peers lower the route's preference."""

_MAX_MED: Final = 2**32 - 1
_COMMUNITY = re.compile(r"(0|[1-9][0-9]{0,4}):(0|[1-9][0-9]{0,4})")


class NodeState(StrEnum):
    """What the node announces; values are Prometheus label values.

    - ``INIT``: checks not settled yet (after start, ``enable``, or ``undrain`` when drained);
      the node /64 is announced, the VIPs are not.
    - ``UP``: the VIPs are announced: every check passes, or degraded checks fail but the
      pod-wide floor has not released the node.
    - ``DOWN``: the VIPs are withdrawn for health: a broken check fails, or degraded checks
      fail and the floor released the node (or the node was not announcing when they failed).
    - ``DRAINING``: operator drain, step one: the VIPs are announced less preferred (MED and
      GRACEFUL_SHUTDOWN) until the drain timeout.
    - ``DRAINED``: operator drain, step two: the VIPs are withdrawn until ``undrain``.
    - ``DISABLED``: operator disable: the VIPs are withdrawn, the node /64 stays announced.
    - ``SHUTDOWN``: final: everything is withdrawn and every input is ignored.
    """

    INIT = "init"
    UP = "up"
    DOWN = "down"
    DRAINING = "draining"
    DRAINED = "drained"
    DISABLED = "disabled"
    SHUTDOWN = "shutdown"


class CheckState(StrEnum):
    """State of one health check (rise/fall over consecutive results)."""

    INIT = "init"
    PASSING = "passing"
    FAILING = "failing"


class RouteState(StrEnum):
    """What the node does with a route, as ``sixpod node status`` shows it."""

    ANNOUNCED = "announced"
    """Wanted in BGP (also while draining, less preferred)."""
    WITHDRAWN = "withdrawn"
    """Not wanted: health, operator, or shutdown."""
    REFUSED = "refused"
    """Wanted, but the BGP session did not negotiate its family."""


class Cause(StrEnum):
    """Why a route is in its :class:`RouteState` (machine-readable; the reason says more)."""

    NODE_PREFIX = "node-prefix"  # the node /64: announced in every state but shutdown
    HEALTHY = "healthy"  # every check passes (or there are none)
    FLOOR = "floor"  # degraded checks fail, the pod-wide floor keeps the VIPs (or is asked)
    CHECKS_PENDING = "checks-pending"  # a check has no verdict yet
    CHECK_FAILING = "check-failing"  # a broken check fails, or degraded ones and released
    DRAINING = "draining"  # operator drain, step one: less preferred until the timeout
    DRAINED = "drained"  # operator drain, step two
    DISABLED = "disabled"  # operator disable
    SHUTDOWN = "shutdown"  # the announcer is stopping
    FAMILY = "family"  # the session cannot carry the route's IP version
    BLACKHOLED = "blackholed"  # the VIP is blackholed through the API (under attack)


def _finite(value: float, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{field} must be a finite number, got {value!r}")


@dataclass(frozen=True, slots=True)
class Route:
    """One BGP route as the node announces it.

    ``prefix`` is an IPv4 or IPv6 prefix; ``next_hop`` is always the node's IPv6 uplink address
    (IPv4 routes use it too, RFC 8950). ``med`` is the MULTI_EXIT_DISC or None;
    ``communities`` are canonical ``"ASN:value"`` standard communities, e.g. ``("65535:0",)``.
    A route is identified in BGP by its prefix; the other fields are its attributes.
    """

    prefix: IPNetwork
    next_hop: IPv6Address
    med: int | None = None
    communities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, IPv4Network | IPv6Network):
            raise ValueError(f"prefix must be an IPv4Network or IPv6Network, got {self.prefix!r}")
        if not isinstance(self.next_hop, IPv6Address):
            raise ValueError(f"next_hop must be an IPv6Address, got {self.next_hop!r}")
        if self.med is not None and (
            isinstance(self.med, bool)
            or not isinstance(self.med, int)
            or not 0 <= self.med <= _MAX_MED
        ):
            raise ValueError(f"med must be None or an integer 0..{_MAX_MED}, got {self.med!r}")
        if not isinstance(self.communities, tuple):
            raise ValueError(f"communities must be a tuple, got {self.communities!r}")
        for community in self.communities:
            match = _COMMUNITY.fullmatch(community) if isinstance(community, str) else None
            if match is None or max(int(match[1]), int(match[2])) > 0xFFFF:
                raise ValueError(
                    f"communities: {community!r} is not a canonical 'ASN:value' community"
                )

    @property
    def sort_key(self) -> tuple[int, int, int, int, tuple[str, ...]]:
        """Total order: IPv4 before IPv6, then by address, length and attributes."""
        med = -1 if self.med is None else self.med
        prefix = self.prefix
        return (
            prefix.version,
            int(prefix.network_address),
            prefix.prefixlen,
            med,
            self.communities,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteGroup:
    """Routes of one kind and IP version that share a state and its reason.

    ``kind`` is ``"vip"`` or ``"node"`` (the node /64); ``until`` is, while draining, when the
    withdrawal comes (the core's clock), else None.
    """

    kind: str
    version: int
    state: RouteState
    cause: Cause
    reason: str
    prefixes: tuple[IPNetwork, ...]
    until: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("vip", "node"):
            raise ValueError(f"kind must be 'vip' or 'node', got {self.kind!r}")
        if self.version not in (4, 6):
            raise ValueError(f"version must be 4 or 6, got {self.version!r}")
        if not isinstance(self.state, RouteState) or not isinstance(self.cause, Cause):
            raise ValueError(f"state and cause must be enums: {self.state!r}, {self.cause!r}")
        if not isinstance(self.prefixes, tuple) or not self.prefixes:
            raise ValueError("prefixes must be a non-empty tuple")
        if any(p.version != self.version for p in self.prefixes):
            raise ValueError(f"prefixes must all be IPv{self.version}")
        if self.until is not None:
            _finite(self.until, "until")


@dataclass(frozen=True, slots=True)
class RunCheck:
    """Run check ``name`` now; report with ``check_result(run_id, ...)`` before ``deadline``."""

    name: str
    run_id: int
    deadline: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if isinstance(self.run_id, bool) or not isinstance(self.run_id, int) or self.run_id < 0:
            raise ValueError(f"run_id must be a non-negative integer, got {self.run_id!r}")
        _finite(self.deadline, "deadline")


@dataclass(frozen=True, slots=True)
class AskFloor:
    """Ask the pod-wide floor whether this node may withdraw its VIPs (degraded checks only).

    Answer with ``floor_answer(granted, now)``. Granting means the adapter has already removed
    the node from the pod's set of announcing nodes.
    """


@dataclass(frozen=True, slots=True)
class JoinFloor:
    """The node announces its VIPs (again): add it to the pod's set of announcing nodes."""


@dataclass(frozen=True, slots=True)
class LeaveFloor:
    """The node withdrew its VIPs: remove it from the pod's set (idempotent)."""


@dataclass(frozen=True, slots=True)
class Resync:
    """The BGP session came up: send the whole desired set again."""


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The node moved from ``old`` to ``new`` at time ``at``; ``reason`` is for humans."""

    old: NodeState
    new: NodeState
    reason: str
    at: float

    def __post_init__(self) -> None:
        if not isinstance(self.old, NodeState) or not isinstance(self.new, NodeState):
            raise ValueError(f"old and new must be NodeState, got {self.old!r}, {self.new!r}")
        _finite(self.at, "at")


@dataclass(frozen=True, slots=True)
class CheckChanged:
    """Check ``name`` moved from ``old`` to ``new`` at ``at``; ``detail`` of the last result."""

    name: str
    old: CheckState
    new: CheckState
    at: float
    detail: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.old, CheckState) or not isinstance(self.new, CheckState):
            raise ValueError(f"old and new must be CheckState, got {self.old!r}, {self.new!r}")
        _finite(self.at, "at")


@dataclass(frozen=True, slots=True)
class Announce:
    """Announce ``route`` (replaces any route with the same prefix)."""

    route: Route


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Withdraw the route for ``route.prefix``."""

    route: Route


@dataclass(frozen=True, slots=True)
class Probe:
    """Send ExaBGP a command that changes nothing, to hear from it (see
    :mod:`sixpod.routing.liveness`); report it with ``sent`` and its answer with ``acked``."""


@dataclass(frozen=True, slots=True)
class SpeakerHung:
    """ExaBGP has left a command unanswered for ``silent`` seconds: it is hung (stopped,
    deadlocked), though its TCP session may stay up until the hold timer."""

    silent: float

    def __post_init__(self) -> None:
        _finite(self.silent, "silent")


@dataclass(frozen=True, slots=True)
class SpeakerAlive:
    """ExaBGP answers (the first answer after start, or again after :class:`SpeakerHung`)."""


SpeakerEvent: TypeAlias = Probe | SpeakerHung | SpeakerAlive
Event: TypeAlias = (
    RunCheck | AskFloor | JoinFloor | LeaveFloor | Resync | StateChanged | CheckChanged
)
RouteOp: TypeAlias = Announce | Withdraw
