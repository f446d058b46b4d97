"""The output rule's helpers: English counts, and the cells tables and JSON share."""

from __future__ import annotations

import pytest

from sixpod.cli.output import cell, flatten, plural


@pytest.mark.parametrize(
    ("count", "word", "text"),
    [
        (1, "rack", "1 rack"),
        (0, "rack", "0 racks"),
        (3, "node", "3 nodes"),
        (1, "IPv4 VIP", "1 IPv4 VIP"),
        (512, "IPv6 VIP", "512 IPv6 VIPs"),
        (2, "address", "2 addresses"),
        (2, "edge node", "2 edge nodes"),
        (1, "operation", "1 operation"),
        (2, "entry", "2 entries"),
    ],
)
def test_plural(count: int, word: str, text: str) -> None:
    assert plural(count, word) == text


def test_plural_with_an_explicit_form() -> None:
    assert plural(2, "child", "children") == "2 children"


def test_cells() -> None:
    assert [cell(v) for v in (None, "", True, False, 3, {}, {"a": 1}, [1, 2])] == [
        "-", "-", "yes", "no", "3", "-", '{"a":1}', "[1,2]",
    ]  # fmt: skip
    assert flatten({"a": {"b": 1, "c": {}}, "d": None}) == {"a.b": 1, "a.c": {}, "d": None}
