"""What the announcer tells ``sixpod node status``: a small JSON document in ``state_dir``.

Pure: :func:`node_status` builds the document from the core (:meth:`Announcer.explain` says
why each route is where it is), the route sync (what ExaBGP acknowledged), what the BGP
session negotiated and the last changes (:class:`Changes`); :func:`parse_status` reads it
back and :func:`format_status` renders it for an operator. Times in the document are UTC
wall-clock ISO 8601 strings of events (the session came up, a check changed, the drain ends),
never "now", so that an idle node does not rewrite it. The announcer writes it atomically
(write, then rename) when it changes.
"""

from __future__ import annotations

import functools
import json
import math
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from sixpod.addr import IPNetwork
from sixpod.routing.errors import DataError
from sixpod.routing.events import RouteState
from sixpod.routing.health import Announcer
from sixpod.routing.liveness import SpeakerState
from sixpod.routing.routesync import RouteSync
from sixpod.words import plural

__all__ = [
    "CHANGES_KEPT",
    "SCHEMA",
    "STATUS_FILE",
    "Changes",
    "StatusError",
    "format_status",
    "iso",
    "node_status",
    "parse_status",
    "route_list",
]

STATUS_FILE: Final = "status.json"
SCHEMA: Final = "sixpod.announcer-status/2"
CHANGES_KEPT: Final = 20
PENDING: Final = "pending"  # a route state of the document beyond RouteState: ExaBGP not there yet
_FAMILIES: Final = (("ipv4", 4), ("ipv6", 6))
_NEEDS: Final = {
    4: "IPv4 unicast with an IPv6 next hop (RFC 8950 extended next hop)",
    6: "IPv6 unicast",
}


class StatusError(DataError):
    """The status file is not one the announcer wrote."""


def iso(epoch: float) -> str:
    """``2026-12-04T02:10:03.123Z``: a wall-clock time in the document."""
    stamp = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _epoch(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class Changes:
    """The last :data:`CHANGES_KEPT` things the announcer changed, and why; oldest first."""

    def __init__(self, kept: int = CHANGES_KEPT) -> None:
        self._ring: deque[tuple[float, str]] = deque(maxlen=kept)
        self.seq = 0
        """Counts every change ever added (the ring forgets, this does not)."""

    def add(self, at: float, what: str) -> None:
        """Record ``what`` at wall-clock ``at`` (seconds since the epoch)."""
        self._ring.append((at, what))
        self.seq += 1

    def as_list(self) -> list[dict[str, str]]:
        return [{"at": iso(at), "what": what} for at, what in self._ring]


def node_status(
    *,
    node: str,
    pid: int,
    core: Announcer,
    sync: RouteSync,
    peer: str | None,
    carries: frozenset[int] | None,
    wall: Callable[[float], float],
    report_error: str | None = None,
    session_since: float | None = None,
    negotiated: dict[str, object] | None = None,
    changes: Changes | None = None,
    speaker: SpeakerState = SpeakerState.UNKNOWN,
    bfd_shutdown: bool | None = None,
) -> dict[str, Any]:
    """The status document. ``peer`` is the session's peer while it is up (else None);
    ``carries`` the IP versions it negotiated (None: ExaBGP did not say, or said it in a
    shape we do not understand: then ``report_error`` is why) and ``negotiated``
    all it reported (:meth:`~sixpod.routing.exabgp.Negotiated.capabilities`);
    ``session_since`` when the session last came up or went down (wall clock); ``wall``
    turns the core's clock into the wall clock; ``speaker`` is what the announcer knows of
    ExaBGP; ``bfd_shutdown`` whether it holds BFD down (None: untouched)."""
    refused = core.refused()
    problems = []
    for family, version in _FAMILIES:
        count = sum(1 for r in refused if r.prefix.version == version)
        if count:
            problems.append(
                f"{count} {family} routes not announced: the BGP session did not negotiate "
                f"{_NEEDS[version]}"
            )
    if carries is None and peer is not None:
        if report_error is not None:
            problems.append(
                f"ExaBGP's report of the negotiated capabilities was malformed ({report_error});"
                " routes of both families are sent unchecked"
            )
        else:
            problems.append("ExaBGP did not report the negotiated capabilities (api negotiated)")
    if speaker is SpeakerState.HUNG:
        problems.append(
            "ExaBGP does not answer (hung)"
            + ("; BFD shut down so that the ToR drops the session" if bfd_shutdown else "")
        )
    if peer is None:
        problems.append("BGP session down")
    return {
        "schema": SCHEMA,
        "node": node,
        "pid": pid,
        "state": core.state.value,
        "state_since": iso(wall(core.state_since)),
        "session": {
            "up": peer is not None,
            "peer": peer,
            "since": None if session_since is None else iso(session_since),
            "families": {
                family: None if carries is None else version in carries
                for family, version in _FAMILIES
            },
            "negotiated": negotiated,
        },
        "routes": {
            "announced": {family: sync.announced_count(version) for family, version in _FAMILIES},
            "refused": {
                family: sum(1 for r in refused if r.prefix.version == version)
                for family, version in _FAMILIES
            },
        },
        "route_groups": _groups(core, sync, up=peer is not None, wall=wall),
        "speaker": speaker.value,
        "bfd": {None: "untouched", True: "shutdown", False: "up"}[bfd_shutdown],
        "checks": {c.name: c.state.value for c in core.checks},
        "changes": [] if changes is None else changes.as_list(),
        "problems": problems,
    }


def _groups(
    core: Announcer, sync: RouteSync, *, up: bool, wall: Callable[[float], float]
) -> list[dict[str, Any]]:
    """The core's groups, split where ExaBGP has not caught up (state ``pending``)."""
    out: list[dict[str, Any]] = []
    for group in core.explain():
        family = f"ipv{group.version}"
        until = None if group.until is None else iso(wall(group.until))
        parts: dict[tuple[str, str], list[str]] = {}
        for prefix in group.prefixes:
            state, reason = group.state.value, group.reason
            if group.state is RouteState.ANNOUNCED and not (up and sync.settled(prefix)):
                state = PENDING
                reason += (
                    "; waiting for ExaBGP to acknowledge"
                    if up
                    else "; BGP session down: sent when it is up"
                )
            elif group.state is not RouteState.ANNOUNCED and sync.holds(prefix):
                state = PENDING
                reason += "; withdrawal not acknowledged yet"
            parts.setdefault((state, reason), []).append(_name(prefix))
        for (state, reason), prefixes in parts.items():
            out.append(
                {
                    "kind": group.kind,
                    "family": family,
                    "state": state,
                    "cause": group.cause.value,
                    "reason": reason,
                    "until": until,
                    "count": len(prefixes),
                    "prefixes": prefixes,
                }
            )
    return out


@functools.lru_cache(maxsize=4096)  # a pod's VIPs and node /64: str() is most of a rebuild
def _name(prefix: IPNetwork) -> str:
    return str(prefix)


def route_list(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every route of the document on its own, with its group's fields."""
    return [
        {k: v for k, v in g.items() if k not in ("count", "prefixes")} | {"prefix": p}
        for g in doc["route_groups"]
        for p in g["prefixes"]
    ]


def parse_status(text: str) -> dict[str, Any]:
    """A status document written by the announcer; :class:`StatusError` else (not JSON, cut
    short, another program's file, another version's schema)."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise StatusError(f"not JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("schema"), str):
        raise StatusError(f"not a {SCHEMA} document")
    if doc["schema"] != SCHEMA:
        if doc["schema"].startswith("sixpod.announcer-status/"):
            raise StatusError(
                f"written by another sixpod version ({doc['schema']}, this one reads {SCHEMA}):"
                " restart the announcer with this version"
            )
        raise StatusError(f"not a {SCHEMA} document")
    for key, kind in (
        ("node", str),
        ("state", str),
        ("session", dict),
        ("routes", dict),
        ("route_groups", list),
        ("checks", dict),
        ("changes", list),
        ("problems", list),
    ):
        if not isinstance(doc.get(key), kind):
            raise StatusError(f"{key!r} missing or not a {kind.__name__}")
    for group in doc["route_groups"]:
        if not isinstance(group, dict) or not isinstance(group.get("prefixes"), list):
            raise StatusError("'route_groups': an entry without prefixes")
    return doc


def _duration(seconds: float) -> str:
    """``45 s``, ``3 min 12 s``, ``2 h 5 min``, ``3 d 4 h``."""
    s = max(0, math.floor(seconds))
    for unit, size, sub, subsize in (("d", 86400, "h", 3600), ("h", 3600, "min", 60)):
        if s >= size:
            return f"{s // size} {unit} {s % size // subsize} {sub}"
    return f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s"


def _when(text: object, now: float, *, future: bool = False) -> str:
    at = _epoch(text)
    if at is None:
        return "?"
    span = _duration(at - now if future else now - at)
    return f"{text} (in {span})" if future else f"{text} ({span} ago)"


def format_status(doc: dict[str, Any], *, running: bool, now: float, each: bool = False) -> str:
    """The status for an operator, one fact per line; routes grouped by state and reason
    ("512 ipv4 VIPs announced: ...") unless ``each``. ``now`` is the wall clock."""

    def fam(value: object) -> str:
        if value is None:
            return "unknown"
        return "yes" if value is True else "NO" if value is False else "?"

    session = doc["session"]
    routes = {k: v if isinstance(v, dict) else {} for k, v in doc["routes"].items()}
    routes.setdefault("announced", {})
    routes.setdefault("refused", {})
    families = session.get("families") if isinstance(session.get("families"), dict) else {}
    since = session.get("since")
    if session.get("up"):
        link = f"up with {session.get('peer')}"
        if since:
            link += f" for {_duration(now - (_epoch(since) or now))} (since {since})"
    else:
        link = "down" + (f" since {since}" if since else "")
    lines = [
        f"node       {doc['node']}" + ("" if running else "  (announcer NOT running: last status)"),
        f"state      {doc['state']}"
        + (f" since {_when(doc['state_since'], now)}" if doc.get("state_since") else ""),
        f"session    {link}; carries ipv4: {fam(families.get('ipv4'))},"
        f" ipv6: {fam(families.get('ipv6'))}",
    ]
    caps = session.get("negotiated")
    if isinstance(caps, dict):
        words = [", ".join(caps.get("families") or []) or "no family"]
        if caps.get("nexthop"):
            words.append("next hop " + ", ".join(caps["nexthop"]))
        if caps.get("hold_time") is not None:
            words.append(f"hold time {caps['hold_time']} s")
        if caps.get("asn4") is not None:
            words.append(f"asn4 {'yes' if caps['asn4'] else 'no'}")
        if caps.get("refresh") is not None:
            words.append(f"route refresh {caps['refresh']}")
        lines.append("negotiated " + "; ".join(words))
    lines.append(
        "announced  "
        + ", ".join(f"{f} {routes['announced'].get(f, 0)}" for f, _ in _FAMILIES)
        + "; refused "
        + ", ".join(f"{f} {routes['refused'].get(f, 0)}" for f, _ in _FAMILIES)
    )
    for group in doc["route_groups"]:
        reason = group.get("reason", "")
        if group.get("until"):
            reason += f"; withdrawal at {_when(group['until'], now, future=True)}"
        if each:
            lines += [f"route      {p}  {group.get('state')}: {reason}" for p in group["prefixes"]]
            continue
        fam_name = group.get("family", "?")
        count = len(group["prefixes"])
        if group.get("kind") == "node":
            what = f"node prefix {', '.join(group['prefixes'])}"
        else:
            what = plural(count, f"{fam_name} VIP")
        lines.append(f"routes     {what} {group.get('state')}: {reason}")
    lines.append(f"speaker    ExaBGP {doc.get('speaker', '?')}; BFD {doc.get('bfd', '?')}")
    for name, state in doc["checks"].items():
        lines.append(f"check      {name}: {state}")
    for change in doc["changes"]:
        if isinstance(change, dict):
            lines.append(f"change     {change.get('at', '?')}  {change.get('what', '')}")
    for problem in doc["problems"]:
        lines.append(f"PROBLEM    {problem}")
    return "\n".join(lines) + "\n"
