"""The outbox's rows and how a run of them becomes one publish batch (pure, no I/O).

:class:`OutboxRow` is one committed op at its revision, as the store hands it out;
:func:`plan` turns consecutive rows into a :class:`Batch` (its revision range and the
coalesced ops); :class:`Churn` is what a batch removes, for the churn guard; and
:func:`first_removal` is where a held-back run can be cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sixpod.tenants import ops

__all__ = ["Batch", "Churn", "OutboxRow", "first_removal", "plan"]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    revision: int
    op: ops.Op
    forced: bool
    committed_at: float


@dataclass(frozen=True, slots=True)
class Batch:
    prev: int
    rev: int
    ts: float
    ops: list[ops.Op]
    forced: frozenset[tuple[str, ...]]
    """Objects whose last change in the batch was made with ``force``."""


def plan(prev: int, rows: Sequence[OutboxRow]) -> Batch:
    """One batch from consecutive outbox rows after revision ``prev``."""
    if not rows:
        raise ValueError("plan: no rows")
    last_forced = {ops.identity(r.op): r.forced for r in rows}
    return Batch(
        prev=prev,
        rev=rows[-1].revision,
        ts=rows[-1].committed_at,
        ops=ops.coalesce([r.op for r in rows]),
        forced=frozenset(k for k, forced in last_forced.items() if forced),
    )


@dataclass(frozen=True, slots=True)
class Churn:
    """What a batch removes from each app's upstream list, weighed against Redis."""

    removed: dict[str, list[str]]
    """Per app, the endpoints the batch deletes (not forced)."""
    added: dict[str, list[str]]
    """Per app, the endpoints the batch sets."""
    cleared: frozenset[str]
    """Apps the batch deletes (not forced): their whole list goes."""

    @classmethod
    def of(cls, batch: Batch) -> Churn:
        removed: dict[str, list[str]] = {}
        added: dict[str, list[str]] = {}
        cleared = set()
        for op in batch.ops:
            unforced = ops.identity(op) not in batch.forced
            if isinstance(op, ops.EndpointDeleted) and unforced:
                removed.setdefault(op.app, []).append(op.endpoint)
            elif isinstance(op, ops.EndpointSet):
                added.setdefault(op.app, []).append(op.endpoint)
            elif isinstance(op, ops.AppDeleted) and unforced:
                cleared.add(op.name)
        return cls(removed, added, frozenset(cleared))

    @property
    def apps(self) -> list[str]:
        return sorted(set(self.removed) | self.cleared)


def first_removal(rows: Sequence[OutboxRow], app: str | None) -> int:
    """Index of the first row that removes endpoints (of ``app``, or of any app)."""
    for i, row in enumerate(rows):
        op = row.op
        if isinstance(op, ops.EndpointDeleted) and (app is None or op.app == app):
            return i
        if isinstance(op, ops.AppDeleted) and (app is None or op.name == app):
            return i
    return len(rows)
