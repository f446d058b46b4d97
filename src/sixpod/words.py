"""Counts in English, for every message and output line: ``1 rack``, ``3 racks``."""

from __future__ import annotations

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
