"""ExaBGP's text API, as a sans-IO codec: route operations out, acknowledgements and events in.

ExaBGP 5 answers every command with a line ``done`` or ``error`` (in order), and, with the
JSON encoder, reports neighbor changes as one JSON object per line on the same stream. With
``api { negotiated; }`` it also reports, when the OPEN messages have been exchanged and before
the session is up, what the two speakers agreed on: the address families (RFC 4760) and the
families that may carry a next hop of another address family (RFC 8950 extended next hop).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from sixpod import addr
from sixpod.routing.errors import DataError
from sixpod.routing.events import Announce, Probe, RouteOp, Withdraw

PROBE_COMMAND = "# sixpod liveness probe"
"""A comment: ExaBGP answers ``done`` and changes nothing (see :mod:`sixpod.routing.liveness`)."""


class ExaBGPProtocolError(DataError):
    """ExaBGP sent something this codec does not understand, or acked nothing pending."""


class MalformedNegotiated(ExaBGPProtocolError):
    """ExaBGP reported what a session negotiated, in a shape this codec does not understand:
    the coming session's families are unknown (not the same as no report at all)."""

    def __init__(self, message: str, peer: str = "") -> None:
        super().__init__(message)
        self.peer = peer


@dataclass(frozen=True, slots=True)
class Acked:
    op: RouteOp | Probe
    ok: bool


@dataclass(frozen=True, slots=True)
class SessionUp:
    peer: str


@dataclass(frozen=True, slots=True)
class SessionDown:
    peer: str
    reason: str


@dataclass(frozen=True, slots=True)
class Negotiated:
    """The capabilities a session negotiated, as ExaBGP names them.

    ``families`` are ``"AFI SAFI"`` (``"ipv4 unicast"``); ``nexthop`` are ``"AFI SAFI NH-AFI"``
    (``"ipv4 unicast ipv6"``: IPv4 unicast routes may carry an IPv6 next hop, RFC 8950).
    """

    peer: str
    families: frozenset[str]
    nexthop: frozenset[str]
    hold_time: int | None = None
    """Seconds (the lower of both OPENs); None when ExaBGP did not say."""
    asn4: bool | None = None
    """Four-octet AS numbers (RFC 6793)."""
    refresh: str | None = None
    """Route refresh (RFC 2918/7313): ``"absent"``, ``"normal"`` or ``"enhanced"``."""
    message_size: int | None = None
    """Largest BGP message in bytes (4096, or 65535 with RFC 8654)."""

    def capabilities(self) -> dict[str, object]:
        """What the session negotiated, as ExaBGP names it (for ``sixpod node status``)."""
        return {
            "families": sorted(self.families),
            "nexthop": sorted(self.nexthop),
            "hold_time": self.hold_time,
            "asn4": self.asn4,
            "refresh": self.refresh,
            "message_size": self.message_size,
        }

    @property
    def carries(self) -> frozenset[int]:
        """The IP versions whose routes the node may announce over this session: IPv6 unicast
        with its own next hop, IPv4 unicast only with an IPv6 next hop (the node has no IPv4)."""
        out = set()
        if "ipv6 unicast" in self.families:
            out.add(6)
        if "ipv4 unicast" in self.families and "ipv4 unicast ipv6" in self.nexthop:
            out.add(4)
        return frozenset(out)


@dataclass(frozen=True, slots=True)
class Shutdown:
    """ExaBGP is stopping."""


Incoming = Acked | SessionUp | SessionDown | Negotiated | Shutdown


def _names(value: object, field: str, peer: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedNegotiated(f"negotiated {field}: not a list of names: {value!r:.80}", peer)
    return frozenset(" ".join(v.split()) for v in value)


def _typed(value: object, kind: type[int] | type[bool] | type[str]) -> Any:
    """``value`` if it is of ``kind`` (a bool is no int), else None: informational fields of
    another ExaBGP version's shape are left out rather than refused."""
    if kind is int and isinstance(value, bool):
        return None
    return value if isinstance(value, kind) else None


def command(op: RouteOp | Probe) -> str:
    """The ExaBGP command line for ``op`` (without the newline)."""
    if isinstance(op, Probe):
        return PROBE_COMMAND
    r = op.route
    words = [
        "announce" if isinstance(op, Announce) else "withdraw",
        "route",
        addr.for_exabgp(r.prefix),
        "next-hop",
        addr.for_exabgp(r.next_hop),
    ]
    if isinstance(op, Announce):
        if r.med is not None:
            words += ["med", str(r.med)]
        if r.communities:
            words += ["community", "[", *r.communities, "]"]
    return " ".join(words)


class ExaBGPCodec:
    """Track commands in flight; turn ExaBGP's lines into :data:`Incoming` events."""

    def __init__(self) -> None:
        self._in_flight: deque[RouteOp | Probe] = deque()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def send(self, op: RouteOp | Probe) -> bytes:
        self._in_flight.append(op)
        return (command(op) + "\n").encode()

    def receive_line(self, line: str) -> Incoming | None:
        """One line from ExaBGP; None for lines that need no action."""
        text = line.strip()
        if not text:
            return None
        if text in ("done", "error"):
            if not self._in_flight:
                raise ExaBGPProtocolError(f"ExaBGP acknowledged {text!r} with nothing in flight")
            return Acked(self._in_flight.popleft(), text == "done")
        if text == "shutdown":
            return Shutdown()
        if not text.startswith("{"):
            raise ExaBGPProtocolError(f"unexpected line from ExaBGP: {text[:80]!r}")
        try:
            msg = json.loads(text)
        except json.JSONDecodeError as e:
            raise ExaBGPProtocolError(f"bad JSON from ExaBGP: {e}") from None
        except RecursionError:  # nested deeper than the interpreter's stack
            raise ExaBGPProtocolError("bad JSON from ExaBGP: nested too deep") from None
        if not isinstance(msg, dict):
            return None
        if msg.get("type") == "notification" and msg.get("notification") == "shutdown":
            return Shutdown()
        if msg.get("type") not in ("state", "negotiated"):
            return None
        neighbor = msg.get("neighbor")
        if not isinstance(neighbor, dict):
            if msg["type"] == "negotiated":
                raise MalformedNegotiated("negotiated message without 'neighbor' object")
            return None
        address = neighbor.get("address")
        peer = str(address.get("peer", "")) if isinstance(address, dict) else ""
        if msg["type"] == "negotiated":
            caps = neighbor.get("negotiated")
            if not isinstance(caps, dict):
                raise MalformedNegotiated("negotiated message without 'negotiated' object", peer)
            return Negotiated(
                peer,
                _names(caps.get("families"), "families", peer),
                _names(caps.get("nexthop"), "nexthop", peer),
                hold_time=_typed(caps.get("hold_time"), int),
                asn4=_typed(caps.get("asn4"), bool),
                refresh=_typed(caps.get("refresh"), str),
                message_size=_typed(caps.get("message_size"), int),
            )
        state = neighbor.get("state")
        if state == "up":
            return SessionUp(peer)
        if state == "down":
            return SessionDown(peer, str(neighbor.get("reason", "")))
        return None

    def reset(self) -> list[RouteOp | Probe]:
        """Forget what is in flight (ExaBGP restarted); returns what was never acknowledged."""
        lost = list(self._in_flight)
        self._in_flight.clear()
        return lost


__all__ = [
    "PROBE_COMMAND",
    "Acked",
    "ExaBGPCodec",
    "ExaBGPProtocolError",
    "Incoming",
    "MalformedNegotiated",
    "Negotiated",
    "SessionDown",
    "SessionUp",
    "Shutdown",
    "Withdraw",
    "command",
]
