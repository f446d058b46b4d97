"""The outbox's pure core: batch planning and the churn a batch carries."""

from __future__ import annotations

from sixpod.tenants import ops
from sixpod.tenants.outbox import Churn, OutboxRow, first_removal, plan

EP = [f"[2001:db8:200:1::{i:x}]:80" for i in range(1, 9)]


def test_plan_and_churn_count_only_unforced_removals() -> None:
    rows = [
        OutboxRow(5, ops.endpoint_deleted("a", EP[0]), False, 1.0),
        OutboxRow(6, ops.endpoint_deleted("a", EP[1]), True, 1.0),
        OutboxRow(7, ops.endpoint("b", EP[2], 1, "up"), False, 2.0),
        OutboxRow(8, ops.endpoint_deleted("b", EP[3]), False, 2.0),
        OutboxRow(9, ops.endpoint("b", EP[3], 1, "up"), False, 2.0),  # re-added: no loss
    ]
    b = plan(4, rows)
    assert (b.prev, b.rev, b.ts) == (4, 9, 2.0)
    churn = Churn.of(b)
    assert churn.removed == {"a": [EP[0]]}
    assert churn.added == {"b": [EP[2], EP[3]]}
    assert churn.apps == ["a"]
    assert first_removal(rows, "b") == 3
    assert first_removal(rows, None) == 0
