"""Fixtures every test may use (the edge under test, with its pod and namespace: edgekit),
and the rule that marks a test ``integration``: it runs real programs (its module says so,
or it takes a fixture that starts one)."""

from __future__ import annotations

import pytest

from edgekit import edge, netns, pod  # noqa: F401

REAL_FIXTURES = frozenset(
    {"postgres", "primary", "replica", "edge", "netns", "lab", "fresh", "floored"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & REAL_FIXTURES or "[postgresql" in item.nodeid:
            item.add_marker(pytest.mark.integration)
