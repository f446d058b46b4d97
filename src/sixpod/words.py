"""Words for every message and output line: counts in English (``1 rack``, ``3 racks``), the
suggestion for a mistyped name (``did you mean 'role'?``) and what a file holds, in YAML's
terms (``the number 5``)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

# Words whose plural is not the word plus "s".
_IRREGULAR = {"entry": "entries", "address": "addresses", "prefix": "prefixes"}


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 rack``, ``3 racks``, ``0 nodes``, ``2 IPv4 VIPs``, ``1 address``, ``2 addresses``.

    The count's noun is the last word of ``word``; ``many`` overrides its plural.
    """
    if count == 1:
        return f"{count} {word}"
    if many is None:
        head, _, last = word.rpartition(" ")
        many = _IRREGULAR.get(last, last + "s")
        many = f"{head} {many}" if head else many
    return f"{count} {many}"


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely stands for, or None: case is ignored (``ROLE`` is
    ``role``), then the closest spelling (difflib, ratio >= 0.6) wins."""
    folded: dict[str, str] = {}
    for choice in choices:
        folded.setdefault(choice.casefold(), choice)
    key = word.casefold()
    if key in folded:
        return folded[key]
    found = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.6)
    return folded[found[0]] if found else None


def describe_value(value: Any) -> str:
    """What a file holds, in YAML's terms, for messages: ``text 'big'``, ``the number 5``."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    return repr(value)
