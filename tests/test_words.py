"""Counts and suggestions in messages."""

from __future__ import annotations

import pytest

from sixpod.words import plural, suggest


@pytest.mark.parametrize(
    ("word", "choices", "guess"),
    [
        ("ROLE", ["rack", "role"], "role"),  # case alone: difflib would find nothing
        ("Rack", ["rack", "role"], "rack"),
        ("interal", ["edge", "internal"], "internal"),
        ("rak", ["rack", "role"], "rack"),
        ("colour", ["name", "links"], None),
    ],
)
def test_suggest_ignores_case_then_spelling(
    word: str, choices: list[str], guess: str | None
) -> None:
    assert suggest(word, choices) == guess


def test_plural() -> None:
    assert (plural(1, "rack"), plural(2, "address")) == ("1 rack", "2 addresses")
