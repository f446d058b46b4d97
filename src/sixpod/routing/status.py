"""What the announcer tells ``sixpod node status``: a small JSON document in ``state_dir``.

Pure: :func:`node_status` builds the document from the core, the route sync and what the BGP
session negotiated; :func:`parse_status` reads it back and :func:`format_status` renders it for
an operator. The announcer writes it (atomically) when it changes; the document holds no
timestamps, so that an idle node does not rewrite it.
"""

from __future__ import annotations

import json
from typing import Any, Final

from sixpod.routing.health import Announcer
from sixpod.routing.liveness import SpeakerState
from sixpod.routing.sync import RouteSync

__all__ = [
    "SCHEMA",
    "STATUS_FILE",
    "StatusError",
    "format_status",
    "node_status",
    "parse_status",
]

STATUS_FILE: Final = "status.json"
SCHEMA: Final = "sixpod.announcer-status/1"
_FAMILIES: Final = (("ipv4", 4), ("ipv6", 6))
_NEEDS: Final = {
    4: "IPv4 unicast with an IPv6 next hop (RFC 8950 extended next hop)",
    6: "IPv6 unicast",
}


class StatusError(Exception):
    """The status file is not one the announcer wrote."""


def node_status(
    *,
    node: str,
    pid: int,
    core: Announcer,
    sync: RouteSync,
    peer: str | None,
    carries: frozenset[int] | None,
    speaker: SpeakerState = SpeakerState.UNKNOWN,
    bfd_shutdown: bool | None = None,
) -> dict[str, Any]:
    """The status document. ``peer`` is the session's peer while it is up (else None);
    ``carries`` the IP versions it negotiated (None: ExaBGP did not say); ``speaker`` what the
    announcer knows of ExaBGP; ``bfd_shutdown`` whether it holds BFD down (None: untouched)."""
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
        "session": {
            "up": peer is not None,
            "peer": peer,
            "families": {
                family: None if carries is None else version in carries
                for family, version in _FAMILIES
            },
        },
        "routes": {
            "announced": {family: sync.announced_count(version) for family, version in _FAMILIES},
            "refused": {
                family: sum(1 for r in refused if r.prefix.version == version)
                for family, version in _FAMILIES
            },
        },
        "speaker": speaker.value,
        "bfd": {None: "untouched", True: "shutdown", False: "up"}[bfd_shutdown],
        "checks": {c.name: c.state.value for c in core.checks},
        "problems": problems,
    }


def parse_status(text: str) -> dict[str, Any]:
    """A status document written by the announcer; :class:`StatusError` else."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise StatusError(f"not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise StatusError(f"not a {SCHEMA} document")
    for key, kind in (("node", str), ("state", str), ("session", dict), ("routes", dict)):
        if not isinstance(doc.get(key), kind):
            raise StatusError(f"{key!r} missing or not a {kind.__name__}")
    if not isinstance(doc.get("problems"), list) or not isinstance(doc.get("checks"), dict):
        raise StatusError("'problems' or 'checks' missing")
    return doc


def format_status(doc: dict[str, Any], *, running: bool) -> str:
    """The status for an operator, one fact per line."""

    def fam(value: object) -> str:
        if value is None:
            return "unknown"
        return "yes" if value is True else "NO" if value is False else "?"

    session = doc["session"]
    routes = doc["routes"]
    families = session.get("families", {})
    lines = [
        f"node       {doc['node']}" + ("" if running else "  (announcer NOT running: last status)"),
        f"state      {doc['state']}",
        "session    "
        + (f"up with {session.get('peer')}" if session.get("up") else "down")
        + f"; carries ipv4: {fam(families.get('ipv4'))}, ipv6: {fam(families.get('ipv6'))}",
        "announced  "
        + ", ".join(f"{f} {routes['announced'].get(f, 0)}" for f, _ in _FAMILIES)
        + "; refused "
        + ", ".join(f"{f} {routes['refused'].get(f, 0)}" for f, _ in _FAMILIES),
    ]
    lines.append(f"speaker    ExaBGP {doc.get('speaker', '?')}; BFD {doc.get('bfd', '?')}")
    for name, state in doc["checks"].items():
        lines.append(f"check      {name}: {state}")
    for problem in doc["problems"]:
        lines.append(f"PROBLEM    {problem}")
    return "\n".join(lines) + "\n"
