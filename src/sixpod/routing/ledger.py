"""The routes a node may have left in ExaBGP, kept in ``state_dir`` across announcer restarts.

ExaBGP keeps every route its API process announced, also when that process dies and ExaBGP
starts it again: only a restart of ExaBGP itself (which drops the session) forgets them. A new
announcer therefore assumes ExaBGP holds every route in this ledger as well as every route its
own configuration could announce, and withdraws those it does not want. Without the ledger, a
VIP removed from the configuration before an announcer-only restart stayed announced until
ExaBGP restarted.

The ledger holds the configured routes plus those not yet acknowledged as withdrawn. This
module is the pure codec (:func:`format_ledger` / :func:`parse_ledger`); the announcer reads
and writes the file (atomically, by rename).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from ipaddress import IPv6Address
from typing import Final

from sixpod import addr
from sixpod.routing.errors import DataError
from sixpod.routing.events import Route

__all__ = ["LEDGER_FILE", "SCHEMA", "LedgerError", "format_ledger", "parse_ledger"]

LEDGER_FILE: Final = "announced.json"
SCHEMA: Final = "sixpod.announced/1"


class LedgerError(DataError):
    """The ledger file is not one this codec wrote (the announcer then ignores it)."""


def format_ledger(routes: Iterable[Route]) -> str:
    """The ledger text for ``routes`` (prefix and next hop only; attributes do not matter to a
    withdrawal)."""
    body = [
        {"prefix": addr.format_prefix(r.prefix), "next_hop": addr.format_ip(r.next_hop)}
        for r in sorted({Route(r.prefix, r.next_hop) for r in routes}, key=lambda r: r.sort_key)
    ]
    return json.dumps({"schema": SCHEMA, "routes": body}, indent=1) + "\n"


def parse_ledger(text: str) -> frozenset[Route]:
    """The routes in a ledger written by :func:`format_ledger`; :class:`LedgerError` else."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise LedgerError(f"not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise LedgerError(f"not a {SCHEMA} document")
    entries = doc.get("routes")
    if not isinstance(entries, list):
        raise LedgerError("'routes' is not a list")
    routes: set[Route] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            raise LedgerError(f"route {entry!r} is not an object")
        prefix, hop = entry.get("prefix"), entry.get("next_hop")
        if not isinstance(prefix, str) or not isinstance(hop, str):
            raise LedgerError(f"route {entry!r}: prefix and next_hop must be strings")
        try:
            next_hop = addr.parse_ip(hop)
            if not isinstance(next_hop, IPv6Address):
                raise ValueError("next_hop is not IPv6")
            routes.add(Route(addr.parse_prefix(prefix), next_hop))
        except ValueError as e:
            raise LedgerError(f"route {entry!r}: {e}") from None
    return frozenset(routes)
