"""Example pod texts and position helpers for the inventory tests."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SMALL = (EXAMPLES / "small.yaml").read_text()
FULL = (EXAMPLES / "pod.yaml").read_text()


def line_of(text: str, needle: str, nth: int = 0) -> int:
    """1-based number of the nth line containing needle."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth]
