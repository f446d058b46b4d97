"""The names a ToR's (and a spine's) FRR config defines and references, built here once.

The renderer (:func:`sixpod.routing.render.frr_conf`) writes them and the semantic check
(:func:`sixpod.routing.frrcheck.check_frr`) looks for them, so the two cannot spell a
name differently.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_V4",
    "DEFAULT_V6",
    "FROM_UPSTREAM",
    "GSHUT_LIST",
    "NODES",
    "NODE_PREFIXES",
    "TORS",
    "TO_TORS",
    "TO_UPSTREAM",
    "UPSTREAMS",
    "VIPS_V4",
    "VIPS_V6",
    "node_list",
    "node_map",
    "tor_list",
    "tor_map",
]

NODES = "NODES"
"""The peer-group of the rack's nodes, and their BFD profile."""
UPSTREAMS = "UPSTREAMS"
"""The peer-group of the ToR's upstreams."""
FROM_UPSTREAM = "FROM-UPSTREAM"
"""Route-map in from the upstreams: a default route only."""
TO_UPSTREAM = "TO-UPSTREAM"
"""Route-map out to the upstreams: the VIPs and the node /64s."""
GSHUT_LIST = "GSHUT"
"""Community-list matching graceful-shutdown (RFC 8326): a draining node's VIPs."""
VIPS_V4 = "VIPS-V4"
"""Prefix-list of the rack's IPv4 VIPs (/32 each)."""
VIPS_V6 = "VIPS-V6"
"""Prefix-list of the rack's IPv6 VIPs (/128 each)."""
NODE_PREFIXES = "NODE-PREFIXES"
"""Prefix-list of any node /64 in the pod's aggregate (the one list that accepts a range)."""
DEFAULT_V4 = "DEFAULT-V4"
DEFAULT_V6 = "DEFAULT-V6"

TORS = "TORS"
"""A spine's peer-group of ToRs."""
TO_TORS = "TO-TORS"
"""A spine's route-map out to the ToRs: nothing but its default route (default-originate)."""


def node_list(node: str) -> str:
    """The prefix-list of what ``node`` may announce (its /64)."""
    return f"NODE-{node}-V6"


def node_map(node: str) -> str:
    """The route-map in from ``node``."""
    return f"FROM-{node}"


def tor_list(tor: str) -> str:
    """A spine's prefix-list of the node /64s of ``tor``'s rack."""
    return f"TOR-{tor}-V6"


def tor_map(tor: str) -> str:
    """A spine's route-map in from ``tor``."""
    return f"FROM-{tor}"
