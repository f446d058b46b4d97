"""BGP sessions of a ToR, and whether a deploy left them as healthy as it found them (pure).

What "the expected prefix counts" means here: every session that was Established before a
deploy, and that the plan keeps, is Established again and accepts at least as many prefixes
as it did before (summed over IPv4 and IPv6 unicast). What a node announces depends on its
health checks at that moment, which the inventory cannot know; what it announced a moment
ago it should still be allowed to announce, so fewer is what a broken filter looks like.
A neighbor the plan adds is reported but not waited for: its node may not be set up yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sixpod import addr
from sixpod.fabric.errors import ParseError

ESTABLISHED = "Established"


@dataclass(frozen=True, slots=True)
class Session:
    peer: str
    state: str
    accepted: int
    """Prefixes accepted from the peer (``pfxRcd``), summed over the address families."""
    uptime_ms: int | None = None
    """How long it has been Established (``peerUptimeMsec``), if FRR says."""

    @property
    def up(self) -> bool:
        return self.state == ESTABLISHED


def parse_summary(doc: Any) -> dict[str, Session]:
    """``show bgp vrf default summary json``: one entry per address family, each with its
    ``peers``; a session appears once per family it carries."""
    if not isinstance(doc, Mapping):
        raise ParseError("bgp summary: expected a JSON object")
    states: dict[str, str] = {}
    counts: dict[str, int] = {}
    uptimes: dict[str, int] = {}
    for family, body in doc.items():
        if not isinstance(body, Mapping) or not isinstance(body.get("peers"), Mapping):
            continue
        for peer, info in body["peers"].items():
            if not isinstance(info, Mapping):
                raise ParseError(f"bgp summary: {family}: peer {peer!r:.40} is not an object")
            try:
                key = addr.format_ip(addr.parse_ip(str(peer)))
            except addr.AddressError:
                key = str(peer)  # an interface (unnumbered) peer
            state = info.get("state")
            pfx = info.get("pfxRcd", 0)
            if not isinstance(state, str) or not isinstance(pfx, int):
                raise ParseError(f"bgp summary: {family}: peer {key}: no state or pfxRcd")
            if states.get(key) != ESTABLISHED:
                states[key] = state
            counts[key] = counts.get(key, 0) + pfx
            up = info.get("peerUptimeMsec")
            if isinstance(up, int) and not isinstance(up, bool) and state == ESTABLISHED:
                uptimes[key] = min(up, uptimes.get(key, up))
    return {k: Session(k, states[k], counts[k], uptimes.get(k)) for k in sorted(states)}


def flapped(
    before: Mapping[str, Session], after: Mapping[str, Session], *, elapsed_ms: int
) -> list[str]:
    """Sessions Established before and after whose uptime is shorter than the time since
    the change: they went down and came back in between (reported, not a failure)."""
    out = []
    for peer, was in before.items():
        now = after.get(peer)
        up = now.uptime_ms if now is not None and now.up else None
        if was.up and up is not None and up < elapsed_ms:
            out.append(peer)
    return out


def problems(
    before: Mapping[str, Session], after: Mapping[str, Session], *, removed: Iterable[str] = ()
) -> list[str]:
    """Why the sessions after a deploy are worse than before (empty: healthy)."""
    gone = set(removed)
    out = []
    for peer, was in before.items():
        if not was.up or peer in gone:
            continue
        now = after.get(peer)
        if now is None or not now.up:
            out.append(f"{peer}: {now.state if now else 'gone'} (was {ESTABLISHED})")
        elif now.accepted < was.accepted:
            out.append(f"{peer}: accepts {now.accepted} prefixes (was {was.accepted})")
    return out
