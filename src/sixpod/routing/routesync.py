"""Route sync: the operations that take BGP from what it has to what the announcer wants.

Pure and time-free. The adapter calls :meth:`RouteSync.plan` with the desired set after every
announcer input, sends the operations to ExaBGP in order, and reports each one back with
:meth:`RouteSync.acked` or :meth:`RouteSync.failed`. Operations in flight are not planned
again; a failed one is planned again by the next :meth:`RouteSync.plan`.

Order: announcements first, then withdrawals, each sorted by prefix, so that a change never
opens a gap. A route whose attributes changed is announced again, which replaces it in BGP
(same prefix); it is never withdrawn first.

:meth:`RouteSync.reset` on session loss: every desired route is announced again on the next
plan. Routes known before the reset are kept as "unsure" and withdrawn by the next plan unless
desired, because ExaBGP keeps routes received from its API process and re-sends them to the
peer when the session comes back.
"""

from __future__ import annotations

from collections.abc import Iterable

from sixpod.addr import IPNetwork
from sixpod.routing.events import Announce, Route, RouteOp, Withdraw

__all__ = ["RouteSync"]


class RouteSync:
    """Converge the announced routes towards a desired set, one acknowledged operation at a
    time."""

    def __init__(self) -> None:
        self._acked: dict[IPNetwork, Route] = {}  # BGP has it (acknowledged)
        self._unsure: dict[IPNetwork, Route] = {}  # BGP may have it (before a reset)
        self._pending: dict[IPNetwork, RouteOp] = {}  # sent, not yet acked or failed
        self._generation = 0

    @property
    def generation(self) -> int:
        """Counts the changes to what the sync knows (cheap: tells a reader to look again)."""
        return self._generation

    @property
    def announced(self) -> frozenset[Route]:
        """Routes acknowledged as announced since the last reset."""
        return frozenset(self._acked.values())

    def announced_count(self, version: int) -> int:
        """How many acknowledged routes are of IP ``version`` (cheap: no set is built)."""
        return sum(1 for prefix in self._acked if prefix.version == version)

    @property
    def pending(self) -> tuple[RouteOp, ...]:
        """Operations sent and not yet acknowledged or failed, in prefix order."""
        return tuple(sorted(self._pending.values(), key=lambda op: op.route.sort_key))

    @property
    def pending_count(self) -> int:
        """How many operations are in flight (cheap: no sorting)."""
        return len(self._pending)

    def holds(self, prefix: IPNetwork) -> bool:
        """BGP may have a route for ``prefix`` (acknowledged, unsure, or an operation for it is
        in flight)."""
        return prefix in self._acked or prefix in self._unsure or prefix in self._pending

    def settled(self, prefix: IPNetwork) -> bool:
        """BGP has the route for ``prefix``, acknowledged, and nothing about it is in flight
        or unsure."""
        return prefix in self._acked and prefix not in self._unsure and prefix not in self._pending

    def plan(self, desired: Iterable[Route]) -> list[RouteOp]:
        """The operations still needed to reach ``desired``; they become pending.

        Raises ValueError if ``desired`` holds two routes for one prefix.
        """
        wanted: dict[IPNetwork, Route] = {}
        for route in desired:
            if wanted.setdefault(route.prefix, route) != route:
                raise ValueError(f"desired: two routes for {route.prefix}")
        announce: list[RouteOp] = []
        for prefix, route in wanted.items():
            pending = self._pending.get(prefix)
            if pending is not None:
                if pending == Announce(route):
                    continue
            elif self._acked.get(prefix) == route and prefix not in self._unsure:
                continue
            announce.append(Announce(route))
        withdraw: list[RouteOp] = []
        for prefix in self._acked.keys() | self._unsure.keys() | self._pending.keys():
            if prefix in wanted:
                continue
            pending = self._pending.get(prefix)
            if isinstance(pending, Withdraw):
                continue
            if pending is not None:
                known = pending.route
            else:
                known = self._acked.get(prefix) or self._unsure[prefix]
            withdraw.append(Withdraw(known))
        announce.sort(key=lambda op: op.route.sort_key)
        withdraw.sort(key=lambda op: op.route.sort_key)
        ops = announce + withdraw
        self._generation += bool(ops)
        for op in ops:
            self._pending[op.route.prefix] = op
        return ops

    def acked(self, op: RouteOp) -> None:
        """ExaBGP accepted ``op``. An operation not pending (sent before a reset) still tells
        what BGP may have."""
        prefix = op.route.prefix
        self._generation += 1
        current = self._pending.get(prefix) == op
        if current:
            del self._pending[prefix]
        if isinstance(op, Withdraw):
            self._acked.pop(prefix, None)
            self._unsure.pop(prefix, None)
        elif current:
            self._acked[prefix] = op.route
            self._unsure.pop(prefix, None)
        elif self._acked.get(prefix) != op.route:
            self._unsure[prefix] = op.route

    def failed(self, op: RouteOp) -> None:
        """ExaBGP rejected ``op``: BGP is unchanged; the next plan retries it."""
        prefix = op.route.prefix
        self._generation += 1
        if self._pending.get(prefix) == op:
            del self._pending[prefix]

    def reset(self) -> None:
        """The session went down: re-announce everything desired on the next plan."""
        self._generation += 1
        self._unsure.update(self._acked)
        for op in self._pending.values():
            if isinstance(op, Announce):
                self._unsure[op.route.prefix] = op.route
        self._acked.clear()
        self._pending.clear()

    def converged(self, desired: Iterable[Route]) -> bool:
        """BGP has exactly ``desired``, acknowledged, and nothing is pending or unsure."""
        wanted = {route.prefix: route for route in desired}
        return not self._pending and not self._unsure and self._acked == wanted
